//! Bookings through HTTP, and the automation runs they plan (`GET /bookings/{id}/automations`).

use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

/// A new account's token.
pub(crate) async fn account(app: &TestApp) -> String {
    app.create_account("Sparkle Cleaning").await.1
}

/// Rules with payment `trigger` + `offset_minutes` for everyone, feedback 2 h after completion.
pub(crate) fn rules(trigger: &str, offset_minutes: i64) -> Value {
    json!({
        "payment": {"enabled": true, "trigger": trigger, "offset_minutes": offset_minutes},
        "feedback": {"enabled": true, "delay_minutes": 120}
    })
}

/// `PUT /settings/automations`, expecting 200.
pub(crate) async fn put_rules(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, answer) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A new customer's id.
pub(crate) async fn customer(app: &TestApp, token: &str, name: &str) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Whole minutes from now, `days` ahead.
pub(crate) fn days_ahead(days: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::days(days))
        .duration_trunc(Duration::minutes(1))
        .expect("truncates")
}

pub(crate) fn rfc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("{value} is no time")),
    )
    .expect("RFC 3339")
    .with_timezone(&Utc)
}

/// A one-hour `service_type` visit for `customer_id` starting at `start`.
pub(crate) fn visit(customer_id: &str, service_type: &str, start: DateTime<Utc>) -> Value {
    json!({
        "customer_id": customer_id,
        "service_type": service_type,
        "start_at": rfc(start),
        "end_at": rfc(start + Duration::hours(1)),
        "amount_cents": 12_000,
        "currency": "CAD",
    })
}

/// `POST /bookings`, expecting 201.
pub(crate) async fn book(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, booking) = app
        .call(Method::POST, "/api/v1/bookings", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{booking}");
    booking
}

/// The booking's runs.
pub(crate) async fn runs(app: &TestApp, token: &str, booking_id: &str) -> Vec<Value> {
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/bookings/{booking_id}/automations"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a bare array").clone()
}

/// The one run of `automation`.
pub(crate) async fn run_of(
    app: &TestApp,
    token: &str,
    booking_id: &str,
    automation: &str,
) -> Value {
    let all = runs(app, token, booking_id).await;
    let mut matching = all.iter().filter(|r| r["automation"] == automation);
    let run = matching
        .next()
        .unwrap_or_else(|| panic!("no {automation} run in {all:?}"))
        .clone();
    assert!(matching.next().is_none(), "one {automation} run: {all:?}");
    run
}

async fn post(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    app.call(Method::POST, path, Some(token), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_on_for_all_customers_plans_a_charge_a_day_before_a_new_booking() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let start = days_ahead(3);

    let booking = book(&app, &token, visit(&customer_id, "standard", start)).await;
    assert!(booking["id"].as_str().expect("id").starts_with("bkg_"));
    assert_eq!(booking["status"], "scheduled");
    assert_eq!(booking["currency"], "cad");
    assert_eq!(booking["balance_due_cents"], 12_000);
    assert_eq!(booking["completed_at"], Value::Null);
    assert_eq!(booking["series_id"], Value::Null);
    assert_eq!(instant(&booking["start_at"]), start);

    let run = run_of(&app, &token, booking["id"].as_str().expect("id"), "payment").await;
    assert!(run["id"].as_str().expect("id").starts_with("job_"));
    assert_eq!(run["status"], "scheduled");
    assert_eq!(run["attempts"], 0);
    assert_eq!(run["late"], false);
    assert_eq!(run["rule_source"]["kind"], "account");
    assert_eq!(instant(&run["due_at"]), start - Duration::hours(24));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rules_no_runs_and_feedback_waits_for_completion() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let booking = book(&app, &token, visit(&customer_id, "standard", days_ahead(3))).await;
    assert_eq!(
        runs(&app, &token, booking["id"].as_str().expect("id")).await,
        Vec::<Value>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_service_type_timing_beats_the_account_timing() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let mut body = rules("before_start", 24 * 60);
    body["payment"]["service_types"] =
        json!({"deep_clean": {"trigger": "after_end", "offset_minutes": 90}});
    put_rules(&app, &token, body).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let start = days_ahead(4);

    let deep = book(&app, &token, visit(&customer_id, "deep_clean", start)).await;
    let run = run_of(&app, &token, deep["id"].as_str().expect("id"), "payment").await;
    assert_eq!(
        instant(&run["due_at"]),
        start + Duration::hours(1) + Duration::minutes(90)
    );
    assert_eq!(run["rule_source"]["kind"], "service_type");

    let standard = book(&app, &token, visit(&customer_id, "standard", start)).await;
    let run = run_of(
        &app,
        &token,
        standard["id"].as_str().expect("id"),
        "payment",
    )
    .await;
    assert_eq!(instant(&run["due_at"]), start - Duration::hours(24));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescheduling_a_booking_moves_its_planned_charge() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let booking = book(&app, &token, visit(&customer_id, "standard", days_ahead(3))).await;
    let id = booking["id"].as_str().expect("id");
    let before = run_of(&app, &token, id, "payment").await;

    let later = days_ahead(10);
    let (status, moved) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/bookings/{id}"),
            Some(&token),
            Some(json!({
                "start_at": rfc(later),
                "end_at": rfc(later + Duration::hours(2)),
                "amount_cents": 15_000
            })),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(instant(&moved["start_at"]), later);
    assert_eq!(moved["amount_cents"], 15_000);
    assert_eq!(moved["balance_due_cents"], 15_000);

    let after = run_of(&app, &token, id, "payment").await;
    assert_eq!(after["id"], before["id"], "the same run, moved");
    assert_eq!(after["status"], "scheduled");
    assert_eq!(instant(&after["due_at"]), later - Duration::hours(24));

    let (status, problem) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/bookings/{id}"),
            Some(&token),
            Some(json!({"start_at": rfc(later)})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "end_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_booking_cancels_its_planned_charge_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let booking = book(&app, &token, visit(&customer_id, "standard", days_ahead(3))).await;
    let id = booking["id"].as_str().expect("id");

    let (status, cancelled) = post(&app, &token, &format!("/api/v1/bookings/{id}/cancel")).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    assert_eq!(
        run_of(&app, &token, id, "payment").await["status"],
        "cancelled"
    );

    let (status, again) = post(&app, &token, &format!("/api/v1/bookings/{id}/cancel")).await;
    assert_eq!((status, &again), (200, &cancelled), "unchanged");

    let (status, problem) = post(&app, &token, &format!("/api/v1/bookings/{id}/complete")).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/conflict");
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/bookings/{id}"),
            Some(&token),
            Some(json!({"amount_cents": 1})),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_booking_plans_the_feedback_request_after_the_delay() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("after_complete", 30)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let booking = book(&app, &token, visit(&customer_id, "standard", days_ahead(1))).await;
    let id = booking["id"].as_str().expect("id");
    assert!(
        runs(&app, &token, id).await.is_empty(),
        "nothing before completion"
    );

    let (status, completed) = post(&app, &token, &format!("/api/v1/bookings/{id}/complete")).await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["status"], "completed");
    let completed_at = instant(&completed["completed_at"]);

    let feedback = run_of(&app, &token, id, "feedback").await;
    assert_eq!(feedback["status"], "scheduled");
    assert_eq!(
        instant(&feedback["due_at"]),
        completed_at + Duration::minutes(120)
    );
    let payment = run_of(&app, &token, id, "payment").await;
    assert_eq!(
        instant(&payment["due_at"]),
        completed_at + Duration::minutes(30)
    );

    let (status, again) = post(&app, &token, &format!("/api/v1/bookings/{id}/complete")).await;
    assert_eq!((status, &again), (200, &completed), "unchanged");
    assert_eq!(runs(&app, &token, id).await.len(), 2);
    let (status, _) = post(&app, &token, &format!("/api/v1/bookings/{id}/cancel")).await;
    assert_eq!(status, 409, "a completed booking cannot be cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_customer_cancels_their_bookings_and_runs_and_the_id_answers_404() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let other = customer(&app, &token, "Grace").await;
    let open = book(&app, &token, visit(&customer_id, "standard", days_ahead(3))).await;
    let done = book(&app, &token, visit(&customer_id, "standard", days_ahead(2))).await;
    let done_id = done["id"].as_str().expect("id");
    post(
        &app,
        &token,
        &format!("/api/v1/bookings/{done_id}/complete"),
    )
    .await;
    let kept = book(&app, &token, visit(&other, "standard", days_ahead(3))).await;

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{customer_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);

    let open_id = open["id"].as_str().expect("id");
    let (_, booking) = app
        .call(
            Method::GET,
            &format!("/api/v1/bookings/{open_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(booking["status"], "cancelled");
    for run in runs(&app, &token, open_id).await {
        assert_eq!(run["status"], "cancelled", "{run}");
    }
    for run in runs(&app, &token, done_id).await {
        assert_eq!(
            run["status"], "cancelled",
            "pending runs of the completed one too: {run}"
        );
    }
    let (_, booking) = app
        .call(
            Method::GET,
            &format!("/api/v1/bookings/{done_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(booking["status"], "completed", "history is kept");

    let kept_run = run_of(&app, &token, kept["id"].as_str().expect("id"), "payment").await;
    assert_eq!(
        kept_run["status"], "scheduled",
        "another customer is untouched"
    );

    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(&token),
            Some(visit(&customer_id, "standard", days_ahead(5))),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "customer_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_series_of_four_creates_four_bookings_each_with_a_charge() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let mut body = visit(&customer_id, "standard", days_ahead(3));
    body["recurrence"] = json!({"frequency": "weekly", "count": 4});

    let created = book(&app, &token, body).await;
    let series_id = created["series_id"].as_str().expect("series id");
    assert!(series_id.starts_with("ser_"));
    let bookings = created["bookings"].as_array().expect("bookings");
    assert_eq!(bookings.len(), 4);
    let first = instant(&bookings[0]["start_at"]);
    for (n, booking) in bookings.iter().enumerate() {
        assert_eq!(booking["series_id"], series_id);
        let start = instant(&booking["start_at"]);
        // Toronto keeps the wall-clock time; across a DST change the UTC hour shifts by one.
        let days = (start - first).num_hours() as f64 / 24.0;
        assert!((days - 7.0 * n as f64).abs() <= 1.0 / 24.0, "{days}");
        let run = run_of(&app, &token, booking["id"].as_str().expect("id"), "payment").await;
        assert_eq!(instant(&run["due_at"]), start - Duration::hours(24));
    }

    let (status, page) = app
        .call(
            Method::GET,
            &format!("/api/v1/bookings?customer_id={customer_id}&limit=3"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().expect("data").len(), 3);
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let (_, rest) = app
        .call(
            Method::GET,
            &format!("/api/v1/bookings?customer_id={customer_id}&limit=3&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(rest["data"][0]["id"], bookings[3]["id"]);
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_inside_its_own_offset_window_is_due_now_and_marked_late() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let before = Utc::now() - Duration::seconds(1);
    let booking = book(
        &app,
        &token,
        visit(&customer_id, "standard", Utc::now() + Duration::hours(2)),
    )
    .await;
    let after = Utc::now() + Duration::seconds(1);
    let run = run_of(&app, &token, booking["id"].as_str().expect("id"), "payment").await;
    assert_eq!(run["late"], true);
    assert_eq!(run["status"], "scheduled");
    let due = instant(&run["due_at"]);
    assert!(
        before <= due && due <= after,
        "{due} not within the request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_list_by_status_and_time_and_other_accounts_answer_404() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let soon = book(&app, &token, visit(&customer_id, "standard", days_ahead(1))).await;
    let later = book(&app, &token, visit(&customer_id, "standard", days_ahead(8))).await;
    let soon_id = soon["id"].as_str().expect("id");
    post(&app, &token, &format!("/api/v1/bookings/{soon_id}/cancel")).await;

    let list = |query: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let (status, page) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/bookings?{query}"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|b| b["id"].clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(String::new()).await,
        [soon["id"].clone(), later["id"].clone()]
    );
    assert_eq!(list("status=scheduled".into()).await, [later["id"].clone()]);
    let from = rfc(days_ahead(5)).replace('+', "%2B");
    assert_eq!(list(format!("from={from}")).await, [later["id"].clone()]);
    assert_eq!(list(format!("to={from}")).await, [soon["id"].clone()]);

    let (status, problem) = app
        .call(
            Method::GET,
            "/api/v1/bookings?status=done&from=yesterday",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["status", "from"]);

    let stranger = app.create_account("Someone Else").await.1;
    let later_id = later["id"].as_str().expect("id");
    for (method, path) in [
        (Method::GET, format!("/api/v1/bookings/{later_id}")),
        (
            Method::GET,
            format!("/api/v1/bookings/{later_id}/automations"),
        ),
        (
            Method::POST,
            format!("/api/v1/bookings/{later_id}/complete"),
        ),
        (Method::POST, format!("/api/v1/bookings/{later_id}/cancel")),
    ] {
        let (status, _) = app.call(method, &path, Some(&stranger), None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(&stranger),
            Some(visit(&customer_id, "standard", days_ahead(2))),
        )
        .await;
    assert_eq!(status, 400, "another account's customer: {problem}");
    assert_eq!(problem["errors"][0]["field"], "customer_id");
    assert_eq!(list(String::new()).await.len(), 2, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_booking_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(&token),
            Some(json!({"service_type": "standard"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "customer_id",
            "start_at",
            "end_at",
            "amount_cents",
            "currency"
        ]
    );

    let customer_id = customer(&app, &token, "Ada").await;
    let start = days_ahead(2);
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(&token),
            Some(json!({
                "customer_id": customer_id, "service_type": " ",
                "start_at": rfc(start), "end_at": rfc(start - Duration::hours(1)),
                "amount_cents": -5, "currency": "dollars",
                "recurrence": {"frequency": "daily"}
            })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["errors"].as_array().expect("errors").len() >= 5,
        "{problem}"
    );
    let (_, page) = app
        .call(Method::GET, "/api/v1/bookings", Some(&token), None)
        .await;
    assert_eq!(page["data"], json!([]));
}
