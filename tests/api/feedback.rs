//! The public rating page behind a feedback link (component `feedback`) and the ratings it
//! stores, as the business reads them: `GET /api/v1/feedback`, the booking's `rating`, the
//! Automations Activity.
//!
//! Links are created by the tick when it sends a rating request; here each one is written
//! into the app's real SQLite file the way the tick writes it (only the SHA-256 of the token,
//! valid for 30 days), for a booking created and completed over HTTP.

use crate::support::{database, now_millis, openapi};
use hmac::{Hmac, Mac};
use mio_tests::{TestApp, assert_documented};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const DAY: i64 = 86_400_000;
/// 2026-03-03T14:30:00Z: 9:30 AM on a Tuesday in Toronto.
const VISIT_START: &str = "2026-03-03T14:30:00Z";
const VISIT_DATE: &str = "Tuesday, March 3, 2026 at 9:30 AM";
const FORM: &str = "application/x-www-form-urlencoded";
/// The secret the links of these tests are derived with (as the tick derives them).
const LINK_SECRET: &[u8] = b"test-feedback-link-secret-32-bytes!!";

/// `base64url(HMAC-SHA256(secret, "mio-feedback-link-v1:" + job_id))`, unpadded: the token the
/// tick puts in the link.
fn link_token(job_id: &str) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(LINK_SECRET).expect("any key length");
    mac.update(b"mio-feedback-link-v1:");
    mac.update(job_id.as_bytes());
    base64url(&mac.finalize().into_bytes())
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// What is stored of a token: lower-case hex SHA-256.
pub(crate) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One business (account) with one customer.
struct Biz {
    account: String,
    token: String,
    customer: String,
}

/// A page or a JSON answer, with its headers.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// An app with a business `name`, a completed `service` visit of its customer "Ada", and that
/// visit's rating link, expiring `expires_in` ms from now: (app, business, booking, token).
async fn visit(name: &str, service: &str, expires_in: i64) -> (TestApp, Biz, String, String) {
    let app = TestApp::spawn().await;
    let biz = business(&app, name, "Ada").await;
    let booking = biz.completed_booking(&app, service).await;
    let token = biz.link(&app, &booking, &biz.customer, expires_in);
    (app, biz, booking, token)
}

async fn business(app: &TestApp, name: &str, customer: &str) -> Biz {
    let (account, token) = app.create_account(name).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": customer})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Biz {
        account,
        token,
        customer: body["id"].as_str().expect("id").to_owned(),
    }
}

impl Biz {
    /// A `service` visit at [`VISIT_START`], completed over HTTP; its id.
    async fn completed_booking(&self, app: &TestApp, service: &str) -> String {
        self.completed_booking_of(app, &self.customer.clone(), service)
            .await
    }

    async fn completed_booking_of(&self, app: &TestApp, customer: &str, service: &str) -> String {
        let (status, booking) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(&self.token),
                Some(json!({
                    "customer_id": customer,
                    "service_type": service,
                    "start_at": VISIT_START,
                    "end_at": "2026-03-03T16:30:00Z",
                    "amount_cents": 12_000,
                    "currency": "cad"
                })),
            )
            .await;
        assert_eq!(status, 201, "{booking}");
        let id = booking["id"].as_str().expect("id").to_owned();
        let (status, body) = self
            .api(
                app,
                Method::POST,
                &format!("/api/v1/bookings/{id}/complete"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    }

    /// The rating link of `booking`, as the tick writes it, expiring `expires_in` ms from now;
    /// its token.
    fn link(&self, app: &TestApp, booking: &str, customer: &str, expires_in: i64) -> String {
        let job = format!("job_of_{booking}");
        let token = link_token(&job);
        database(app)
            .execute(
                "INSERT INTO feedback_requests (token_hash, account_id, customer_id, booking_id, \
                 job_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    token_hash(&token),
                    self.account,
                    customer,
                    booking,
                    job,
                    now_millis() + expires_in,
                    now_millis()
                ],
            )
            .expect("link inserted");
        token
    }

    async fn api(&self, app: &TestApp, method: Method, path: &str) -> (u16, Value) {
        app.call(method, path, Some(&self.token), None).await
    }

    async fn ok(&self, app: &TestApp, path: &str) -> Value {
        let (status, body) = self.api(app, Method::GET, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The rating of `booking` as the business sees it on the booking (rating, comment), and
    /// how many feedback entries the booking's activity has.
    async fn stored(&self, app: &TestApp, booking: &str) -> (Option<i64>, Option<String>, usize) {
        let rating = &self.ok(app, &format!("/api/v1/bookings/{booking}")).await["rating"];
        let activity = self
            .ok(
                app,
                &format!("/api/v1/activity?booking_id={booking}&automation=feedback&limit=200"),
            )
            .await;
        (
            rating["rating"].as_i64(),
            rating["comment"].as_str().map(str::to_owned),
            activity["data"].as_array().expect("entries").len(),
        )
    }
}

async fn send(app: &TestApp, method: Method, path: &str, body: Option<(&str, String)>) -> Answer {
    let mut request = app.client.request(method, app.url(path));
    if let Some((media, body)) = body {
        request = request.header("content-type", media).body(body);
    }
    let response = request.send().await.expect("request");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

async fn page(app: &TestApp, token: &str) -> Answer {
    send(app, Method::GET, &format!("/feedback/{token}"), None).await
}

async fn post_form(app: &TestApp, token: &str, fields: &[(&str, &str)]) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    send(
        app,
        Method::POST,
        &format!("/feedback/{token}"),
        Some((FORM, body)),
    )
    .await
}

async fn post_json(app: &TestApp, token: &str, body: Value) -> Answer {
    send(
        app,
        Method::POST,
        &format!("/feedback/{token}"),
        Some(("application/json", body.to_string())),
    )
    .await
}

fn assert_is_page(answer: &Answer) {
    assert_eq!(
        answer.header("content-type"),
        "text/html; charset=utf-8",
        "{}",
        answer.body
    );
    let csp = answer.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'sha256-",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("referrer-policy"), "no-referrer");
    assert!(
        answer.body.starts_with("<!doctype html>"),
        "{}",
        answer.body
    );
    let lower = answer.body.to_ascii_lowercase();
    for outside in ["http://", "https://", "src=", "href=", "<script", "url("] {
        assert!(!lower.contains(outside), "{outside} in {}", answer.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rating_page_shows_the_visit_and_loads_nothing_from_anywhere() {
    let (app, biz, booking, token) =
        visit("Sparkle & Shine <Cleaning>", "Deep clean", 30 * DAY).await;

    let answer = page(&app, &token).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_is_page(&answer);
    let html = &answer.body;
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("name=\"viewport\""), "{html}");
    assert!(
        html.contains("Sparkle &amp; Shine &lt;Cleaning&gt;"),
        "{html}"
    );
    assert!(!html.contains("<Cleaning>"), "{html}");
    assert!(
        html.contains(&format!("Deep clean on {VISIT_DATE}")),
        "{html}"
    );
    assert!(html.contains("<fieldset><legend>"), "{html}");
    for n in 1..=5 {
        assert!(
            html.contains(&format!("type=\"radio\" id=\"rating-{n}\" name=\"rating\"")),
            "{html}"
        );
    }
    assert!(
        html.contains("<textarea id=\"comment\" name=\"comment\""),
        "{html}"
    );
    assert!(html.contains("maxlength=\"2000\""), "{html}");
    assert!(
        !html.contains(&token),
        "the token never appears in the page"
    );
    assert_eq!(
        biz.stored(&app, &booking).await,
        (None, None, 0),
        "a visit stores nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_rating_is_stored_once_and_shows_in_activity_on_the_booking_and_in_the_list() {
    let (app, biz, booking, token) = visit("Sparkle Cleaning", "Deep clean", 30 * DAY).await;
    let doc = openapi(&app).await;

    let answer = post_form(
        &app,
        &token,
        &[("rating", "4"), ("comment", "  Spotless!\r\nThanks ")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_is_page(&answer);
    assert!(answer.body.contains("Thank you!"), "{}", answer.body);
    assert!(
        answer.body.contains("Your rating of 4 out of 5"),
        "{}",
        answer.body
    );
    let comment = "Spotless!\nThanks";
    assert_eq!(
        biz.stored(&app, &booking).await,
        (Some(4), Some(comment.into()), 1)
    );

    let activity = biz
        .ok(&app, &format!("/api/v1/activity?booking_id={booking}"))
        .await;
    let entries = activity["data"].as_array().expect("entries");
    let rated: Vec<&Value> = entries
        .iter()
        .filter(|e| e["automation"] == "feedback")
        .collect();
    assert_eq!(rated.len(), 1, "{activity}");
    assert_eq!(rated[0]["status"], "success");
    assert_eq!(rated[0]["customer_id"], biz.customer.as_str());
    assert_eq!(
        rated[0]["details"],
        json!({"rating": 4, "comment": comment})
    );

    let path = format!("/api/v1/bookings/{booking}");
    let got = biz.ok(&app, &path).await;
    assert_documented(&doc, &Method::GET, "/api/v1/bookings/{id}", 200, &got);
    assert_eq!(got["rating"]["rating"], 4, "{got}");
    assert_eq!(got["rating"]["comment"], comment, "{got}");
    let received_at = got["rating"]["received_at"].as_str().expect("received_at");
    assert!(received_at.ends_with('Z'), "{received_at}");
    assert_eq!(rated[0]["occurred_at"], received_at);

    let list = biz.ok(&app, "/api/v1/feedback").await;
    assert_documented(&doc, &Method::GET, "/api/v1/feedback", 200, &list);
    assert_eq!(
        list,
        json!({
            "data": [{
                "booking_id": booking,
                "customer_id": biz.customer,
                "rating": 4,
                "comment": comment,
                "received_at": received_at
            }],
            "next_cursor": null,
            "summary": {
                "count": 1,
                "average": 4.0,
                "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
            }
        })
    );

    // The link now says so, and a second answer changes nothing.
    let again = page(&app, &token).await;
    assert_eq!(again.status, 200);
    assert!(
        again.body.contains("We already have your rating"),
        "{}",
        again.body
    );
    let second = post_form(
        &app,
        &token,
        &[("rating", "1"), ("comment", "Changed my mind")],
    )
    .await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert_is_page(&second);
    assert!(
        second.body.contains("We already have your rating"),
        "{}",
        second.body
    );
    assert_eq!(
        biz.stored(&app, &booking).await,
        (Some(4), Some(comment.into()), 1)
    );
    assert_eq!(biz.ok(&app, &path).await["rating"], got["rating"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_rating_answers_json_and_a_second_one_is_a_conflict() {
    let (app, biz, booking, token) = visit("Sparkle Cleaning", "Window wash", 30 * DAY).await;
    let doc = openapi(&app).await;
    let template = "/feedback/{token}";

    let answer = post_json(&app, &token, json!({"rating": 5})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .header("content-type")
            .starts_with("application/json")
    );
    let body = answer.json();
    assert_documented(&doc, &Method::POST, template, 200, &body);
    assert_eq!(body["rating"], 5);
    assert_eq!(body["comment"], Value::Null);
    let received_at = body["received_at"].as_str().expect("received_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(received_at).is_ok() && received_at.ends_with('Z'),
        "{received_at}"
    );
    assert_eq!(biz.stored(&app, &booking).await, (Some(5), None, 1));

    let second = post_json(&app, &token, json!({"rating": 2, "comment": "again"})).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert_eq!(second.header("content-type"), "application/problem+json");
    let problem = second.json();
    assert_documented(&doc, &Method::POST, template, 409, &problem);
    assert_eq!(problem["type"], "/problems/conflict");
    assert_eq!(biz.stored(&app, &booking).await, (Some(5), None, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_rating_shows_the_form_again_and_stores_nothing() {
    let (app, biz, booking, token) = visit("Sparkle Cleaning", "Deep clean", 30 * DAY).await;
    let doc = openapi(&app).await;

    for rating in ["0", "6", "x", "4.5", ""] {
        let answer = post_form(
            &app,
            &token,
            &[("rating", rating), ("comment", "Kind <b>staff</b>")],
        )
        .await;
        assert_eq!(answer.status, 422, "rating {rating:?}: {}", answer.body);
        assert_is_page(&answer);
        let html = &answer.body;
        assert!(
            html.contains(
                "<p class=\"error\" id=\"rating-error\">Please choose a rating from 1 to 5.</p>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<form method=\"post\">"),
            "the form again: {html}"
        );
        assert!(
            html.contains(">\nKind &lt;b&gt;staff&lt;/b&gt;</textarea>"),
            "the comment is kept: {html}"
        );
    }
    let missing = post_form(&app, &token, &[("comment", "No stars")]).await;
    assert_eq!(missing.status, 422, "{}", missing.body);
    let long = "é".repeat(2001);
    let too_long = post_form(&app, &token, &[("rating", "5"), ("comment", &long)]).await;
    assert_eq!(too_long.status, 422, "{}", too_long.body);
    assert!(
        too_long.body.contains("id=\"comment-error\""),
        "{}",
        too_long.body
    );
    assert!(
        too_long.body.contains("value=\"5\" required checked>"),
        "{}",
        too_long.body
    );

    for body in [
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": "x"}),
        json!({"rating": 4.5}),
        json!({"comment": "no rating"}),
        json!({"rating": 3, "comment": long}),
    ] {
        let answer = post_json(&app, &token, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        assert_eq!(answer.header("content-type"), "application/problem+json");
        let problem = answer.json();
        assert_documented(&doc, &Method::POST, "/feedback/{token}", 422, &problem);
        assert_eq!(problem["type"], "/problems/invalid-feedback", "{problem}");
        assert_eq!(problem["status"], 422);
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        let expected = if body.get("rating").is_some_and(|r| r == 3) {
            "comment"
        } else {
            "rating"
        };
        assert!(fields.contains(&expected), "{problem}");
    }
    let malformed = send(
        &app,
        Method::POST,
        &format!("/feedback/{token}"),
        Some(("application/json", "{\"rating\": ".into())),
    )
    .await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert_eq!(malformed.json()["type"], "/problems/malformed-json");

    assert_eq!(
        biz.stored(&app, &booking).await,
        (None, None, 0),
        "nothing stored"
    );
    let got = biz.ok(&app, &format!("/api/v1/bookings/{booking}")).await;
    assert_eq!(got["rating"], Value::Null);
    // The link still takes a valid rating.
    let answer = post_form(&app, &token, &[("rating", "3")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(biz.stored(&app, &booking).await, (Some(3), None, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_malformed_and_expired_links_are_not_found_and_store_nothing() {
    let (app, biz, booking, expired) = visit("Sparkle Cleaning", "Deep clean", -1).await;
    let doc = openapi(&app).await;

    let unknown = link_token("job_that_was_never_sent");
    for path in [
        format!("/feedback/{unknown}"),
        format!("/feedback/{expired}"),
        "/feedback/short".to_owned(),
        format!("/feedback/{unknown}/more"),
        format!("/feedback/{}", &unknown[..42]),
        "/feedback/".to_owned(),
    ] {
        let answer = send(&app, Method::GET, &path, None).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert_is_page(&answer);
        assert!(
            answer.body.contains("This link does not work"),
            "{}",
            answer.body
        );
    }
    let answer = post_form(&app, &expired, &[("rating", "5")]).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_is_page(&answer);
    for token in [&expired, &unknown] {
        let answer = post_json(&app, token, json!({"rating": 5})).await;
        assert_eq!(answer.status, 404, "{}", answer.body);
        let problem = answer.json();
        assert_documented(&doc, &Method::POST, "/feedback/{token}", 404, &problem);
        assert_eq!(problem["type"], "/problems/not-found");
    }
    // An unusable link is reported before anything wrong with the answer.
    let answer = post_json(&app, &unknown, json!({"rating": 9})).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(biz.stored(&app, &booking).await, (None, None, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_media_types_and_oversized_answers_are_refused() {
    let (app, biz, booking, token) = visit("Sparkle Cleaning", "Deep clean", 30 * DAY).await;
    let doc = openapi(&app).await;
    let path = format!("/feedback/{token}");

    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let answer = send(&app, method.clone(), &path, None).await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), "GET, POST");
        assert_documented(&doc, &method, "/feedback/{token}", 405, &answer.json());
    }
    let answer = send(
        &app,
        Method::POST,
        &path,
        Some(("text/plain", "rating=5".into())),
    )
    .await;
    assert_eq!(answer.status, 415, "{}", answer.body);
    assert_documented(
        &doc,
        &Method::POST,
        "/feedback/{token}",
        415,
        &answer.json(),
    );

    let huge = format!("rating=5&comment={}", "a".repeat(40 * 1024));
    let answer = send(&app, Method::POST, &path, Some((FORM, huge))).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_is_page(&answer);
    let huge = json!({"rating": 5, "comment": "a".repeat(40 * 1024)}).to_string();
    let answer = send(&app, Method::POST, &path, Some(("application/json", huge))).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_documented(
        &doc,
        &Method::POST,
        "/feedback/{token}",
        413,
        &answer.json(),
    );
    assert_eq!(biz.stored(&app, &booking).await, (None, None, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_business_never_sees_another_business_ratings() {
    let app = TestApp::spawn().await;
    let sparkle = business(&app, "Sparkle Cleaning", "Ada").await;
    let other = business(&app, "Other Cleaning", "Bob").await;
    let ours = sparkle.completed_booking(&app, "Deep clean").await;
    let theirs = other.completed_booking(&app, "Windows").await;
    for (biz, booking, stars) in [(&sparkle, &ours, "5"), (&other, &theirs, "1")] {
        let token = biz.link(&app, booking, &biz.customer, 30 * DAY);
        assert_eq!(
            post_form(&app, &token, &[("rating", stars)]).await.status,
            200
        );
    }

    let list = sparkle.ok(&app, "/api/v1/feedback").await;
    let bookings: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["booking_id"].as_str())
        .collect();
    assert_eq!(bookings, [ours.as_str()], "{list}");
    assert_eq!(list["summary"]["count"], 1);
    assert_eq!(list["summary"]["average"], 5.0);

    let filtered = sparkle
        .ok(
            &app,
            &format!("/api/v1/feedback?customer_id={}", other.customer),
        )
        .await;
    assert_eq!(filtered["data"], json!([]));
    assert_eq!(filtered["summary"]["count"], 0);
    assert_eq!(filtered["summary"]["average"], Value::Null);
    let (status, _) = sparkle
        .api(&app, Method::GET, &format!("/api/v1/bookings/{theirs}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.call(Method::GET, "/api/v1/feedback", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_pages_and_summarises_the_whole_filter() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let biz = business(&app, "Sparkle Cleaning", "Ada").await;
    let (status, bob) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&biz.token),
            Some(json!({"name": "Bob"})),
        )
        .await;
    assert_eq!(status, 201);
    let bob = bob["id"].as_str().expect("id").to_owned();
    // (customer, stars, received day of March 2026)
    let plan = [
        (biz.customer.clone(), "5", 1),
        (bob.clone(), "2", 2),
        (biz.customer.clone(), "4", 3),
        (bob.clone(), "5", 4),
    ];
    let mut bookings = Vec::new();
    for (customer, stars, day) in &plan {
        let booking = biz.completed_booking_of(&app, customer, "Deep clean").await;
        let token = biz.link(&app, &booking, customer, 30 * DAY);
        assert_eq!(
            post_form(&app, &token, &[("rating", stars)]).await.status,
            200
        );
        // Spread the ratings over March (the trigger fires on `rating` only).
        database(&app)
            .execute(
                "UPDATE feedback_requests SET received_at = ?2 WHERE booking_id = ?1",
                rusqlite::params![booking, 1_772_323_200_000 + (day - 1) * DAY],
            )
            .expect("moved");
        bookings.push(booking);
    }
    let ids = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["booking_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let pick =
        |order: &[usize]| -> Vec<String> { order.iter().map(|i| bookings[*i].clone()).collect() };
    let summary = |count: u64, average: Value, d: [u64; 5]| {
        json!({"count": count, "average": average,
               "distribution": {"1": d[0], "2": d[1], "3": d[2], "4": d[3], "5": d[4]}})
    };

    let first = biz.ok(&app, "/api/v1/feedback?limit=3").await;
    assert_documented(&doc, &Method::GET, "/api/v1/feedback", 200, &first);
    assert_eq!(ids(&first), pick(&[3, 2, 1]));
    assert_eq!(first["summary"], summary(4, json!(4.0), [0, 1, 0, 1, 2]));
    let cursor = first["next_cursor"].as_str().expect("another page");
    let second = biz
        .ok(&app, &format!("/api/v1/feedback?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), pick(&[0]));
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(
        second["summary"], first["summary"],
        "the summary is the whole filter's"
    );

    let good = biz.ok(&app, "/api/v1/feedback?min_rating=4").await;
    assert_eq!(ids(&good), pick(&[3, 2, 0]));
    assert_eq!(good["summary"], summary(3, json!(4.67), [0, 0, 0, 1, 2]));

    let bobs = biz
        .ok(&app, &format!("/api/v1/feedback?customer_id={bob}"))
        .await;
    assert_eq!(ids(&bobs), pick(&[3, 1]));
    assert_eq!(bobs["summary"], summary(2, json!(3.5), [0, 1, 0, 0, 1]));

    let window = biz
        .ok(
            &app,
            "/api/v1/feedback?from=2026-03-02T00:00:00Z&to=2026-03-03T19:00:00-05:00",
        )
        .await;
    assert_eq!(ids(&window), pick(&[2, 1]));
    assert_eq!(window["summary"], summary(2, json!(3.0), [0, 1, 0, 1, 0]));

    let (status, problem) = biz
        .api(
            &app,
            Method::GET,
            "/api/v1/feedback?min_rating=6&from=yesterday&limit=0&customer_id=bob",
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_documented(&doc, &Method::GET, "/api/v1/feedback", status, &problem);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["min_rating", "from", "limit", "customer_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_a_stored_rating_cost_two_sqlite_calls_each() {
    let (app, _, _, token) = visit("Sparkle Cleaning", "Deep clean", 30 * DAY).await;
    let mut before = app.calls_after("feedback", 0).await;
    for what in ["page", "rating"] {
        let answer = match what {
            "page" => page(&app, &token).await,
            _ => post_form(&app, &token, &[("rating", "5")]).await,
        };
        assert_eq!(answer.status, 200, "{what}: {}", answer.body);
        let after = app.calls_after("feedback", before.invocations + 1).await;
        // Open the connection; one statement (the read, or the guarded write).
        assert_eq!(after.calls.sqlite - before.calls.sqlite, 2, "{what}");
        assert_eq!(
            (
                after.calls.key_value - before.calls.key_value,
                after.calls.variables - before.calls.variables,
                after.calls.outbound_http - before.calls.outbound_http,
            ),
            (0, 0, 0),
            "{what}"
        );
        before = after;
    }
}
