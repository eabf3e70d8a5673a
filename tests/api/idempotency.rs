//! `Idempotency-Key` on the six creating POSTs (customers, import, bookings, complete, cancel,
//! card links), against the real component, its SQLite file and the fake Stripe: a retry of the
//! same request replays the first answer and makes nothing more; another request with the key is
//! refused (422); a key held by a running request answers 409 until that run is dead; two
//! requests at once make one thing; keys are per account and expire after 24 hours; answers
//! that judge the request are kept, failures release the key.
//!
//! Every check reads what was made through the list routes. Where a second run of a route would
//! answer the same as the first (complete, cancel, a card link found by its derived id), the
//! stored state is changed behind the API's back first, so that a run would answer differently
//! than the replay does. Time moves by rewriting the key's instants in the SQLite file.

use crate::bookings::{book, customer, days_ahead, visit};
use crate::support::{database, now_millis, openapi};
use crate::tick::{Biz, setup};
use mio_tests::{TestApp, assert_documented};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The routes that take a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Customer,
    Import,
    Booking,
    Complete,
    Cancel,
    CardLink,
}

const ALL: [Kind; 6] = [
    Kind::Customer,
    Kind::Import,
    Kind::Booking,
    Kind::Complete,
    Kind::Cancel,
    Kind::CardLink,
];

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const JSON: &str = "application/json";
const CSV: &str = "text/csv";

/// One request as sent: its path and its body with the body's media type (none: no body).
#[derive(Debug, Clone)]
struct Req {
    path: String,
    body: Option<(&'static str, Vec<u8>)>,
}

impl Req {
    fn json(path: String, body: Value) -> Req {
        Req {
            path,
            body: Some((JSON, serde_json::to_vec(&body).expect("json"))),
        }
    }

    /// SHA-256 of method, path and body, each after a line feed but the first, in hex: what
    /// the API documents as making two requests the same.
    fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(format!("POST\n{}\n", self.path).as_bytes());
        if let Some((_, bytes)) = &self.body {
            hash.update(bytes);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An answer as the client sees it.
#[derive(Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    replayed: Option<String>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("location", &self.location)
            .field("replayed", &self.replayed)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The same answer, not counting the replay mark.
    fn unmarked(&self) -> Answer {
        Answer {
            replayed: None,
            ..self.clone()
        }
    }

    fn is_fresh_success(&self) -> bool {
        (200..300).contains(&self.status) && self.replayed.is_none()
    }

    fn problem_type(&self) -> Value {
        self.json()["type"].clone()
    }
}

/// POSTs `req` as `token` with these `Idempotency-Key` values (each its own header line).
async fn send_keys(app: &TestApp, token: &str, req: &Req, keys: Vec<HeaderValue>) -> Answer {
    let mut request = app.client.post(app.url(&req.path)).bearer_auth(token);
    for key in keys {
        request = request.header("idempotency-key", key);
    }
    if let Some((media, bytes)) = &req.body {
        request = request.header("content-type", *media).body(bytes.clone());
    }
    let response = request.send().await.expect("request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, location, replayed) = (
        header("content-type"),
        header("location"),
        header("idempotent-replayed"),
    );
    Answer {
        status: response.status().as_u16(),
        content_type,
        location,
        replayed,
        body: response.bytes().await.expect("body").to_vec(),
    }
}

/// POSTs `req` as `token`, with the key `key` when given.
async fn send(app: &TestApp, token: &str, req: &Req, key: Option<&str>) -> Answer {
    let keys = key
        .map(|k| HeaderValue::from_str(k).expect("a header value"))
        .into_iter()
        .collect();
    send_keys(app, token, req, keys).await
}

/// An account as these tests use it: its token and one customer (with a Stripe customer and
/// MioPay on for the main one).
struct Tenant {
    token: String,
    customer: String,
}

impl Tenant {
    fn main(biz: &Biz) -> Tenant {
        Tenant {
            token: biz.token.clone(),
            customer: biz.customer.clone(),
        }
    }

    /// A second business: MioPay on (its own connected account) and one customer.
    async fn other(biz: &Biz) -> Tenant {
        let token = biz.other_business("acct_1OtherIdem").await;
        let customer = customer(&biz.app, &token, "Bo Other").await;
        Tenant { token, customer }
    }
}

/// A booking of the tenant's customer, `days` ahead; its id.
async fn booking(app: &TestApp, tenant: &Tenant, days: i64) -> String {
    let booking = book(
        app,
        &tenant.token,
        visit(&tenant.customer, "standard", days_ahead(days)),
    )
    .await;
    booking["id"].as_str().expect("booking id").to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

impl Kind {
    /// The route as the OpenAPI document writes it.
    fn template(self) -> &'static str {
        match self {
            Kind::Customer => "/api/v1/customers",
            Kind::Import => "/api/v1/customers/import",
            Kind::Booking => "/api/v1/bookings",
            Kind::Complete => "/api/v1/bookings/{id}/complete",
            Kind::Cancel => "/api/v1/bookings/{id}/cancel",
            Kind::CardLink => "/api/v1/customers/{id}/payment-method-requests",
        }
    }

    fn success(self) -> u16 {
        match self {
            Kind::Customer | Kind::Booking | Kind::CardLink => 201,
            Kind::Import | Kind::Complete | Kind::Cancel => 200,
        }
    }

    /// A request of this route for the tenant, and another request of it (another body; for
    /// the routes without one, another booking's path). `tag` keeps the names of several calls
    /// apart.
    async fn requests(self, app: &TestApp, tenant: &Tenant, tag: &str) -> (Req, Req) {
        let customer = &tenant.customer;
        match self {
            Kind::Customer => (
                Req::json(
                    "/api/v1/customers".into(),
                    json!({"name": format!("Idem Ada {tag}")}),
                ),
                Req::json(
                    "/api/v1/customers".into(),
                    json!({"name": format!("Idem Grace {tag}")}),
                ),
            ),
            Kind::Import => {
                // No e-mail: a second run would add a second customer, not update the first.
                let csv = |name: &str| Req {
                    path: "/api/v1/customers/import".into(),
                    body: Some((
                        CSV,
                        format!("name,notes\n{name} {tag},imported\n").into_bytes(),
                    )),
                };
                (csv("Idem Ida"), csv("Idem Ivy"))
            }
            Kind::Booking => {
                let body = |amount: i64| {
                    let mut visit = visit(customer, "standard", days_ahead(5));
                    visit["amount_cents"] = json!(amount);
                    visit
                };
                (
                    Req::json("/api/v1/bookings".into(), body(9_000)),
                    Req::json("/api/v1/bookings".into(), body(9_001)),
                )
            }
            Kind::Complete | Kind::Cancel => {
                let action = if self == Kind::Complete {
                    "complete"
                } else {
                    "cancel"
                };
                let (one, two) = (booking(app, tenant, 3).await, booking(app, tenant, 4).await);
                let req = |id: &str| Req {
                    path: format!("/api/v1/bookings/{id}/{action}"),
                    body: None,
                };
                (req(&one), req(&two))
            }
            Kind::CardLink => {
                let path = format!("/api/v1/customers/{customer}/payment-method-requests");
                (
                    Req::json(
                        path.clone(),
                        json!({"return_url": format!("https://sparkle.example/{tag}/one")}),
                    ),
                    Req::json(
                        path,
                        json!({"return_url": format!("https://sparkle.example/{tag}/two")}),
                    ),
                )
            }
        }
    }

    /// What this route makes or changes in the tenant's account, as the list routes show it.
    async fn made(self, app: &TestApp, tenant: &Tenant) -> Value {
        let token = &tenant.token;
        let pick = |page: Value, fields: &[&str]| -> Value {
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|item| fields.iter().map(|f| item[*f].clone()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
                .into()
        };
        match self {
            Kind::Customer | Kind::Import => pick(
                get(app, token, "/api/v1/customers?limit=200").await,
                &["id", "name", "updated_at"],
            ),
            Kind::Booking | Kind::Complete | Kind::Cancel => pick(
                get(
                    app,
                    token,
                    &format!("/api/v1/bookings?customer_id={}&limit=200", tenant.customer),
                )
                .await,
                &["id", "status", "amount_cents", "updated_at"],
            ),
            Kind::CardLink => pick(
                get(
                    app,
                    token,
                    &format!(
                        "/api/v1/customers/{}/payment-method-requests?limit=200",
                        tenant.customer
                    ),
                )
                .await,
                &["id", "status", "url"],
            ),
        }
    }

    /// Changes, behind the API's back, what a second run of the route would answer (complete,
    /// cancel and card links would otherwise answer the same when run again).
    fn tamper(self, app: &TestApp, first: &Value) {
        let id = first["id"].as_str().unwrap_or_default().to_owned();
        let (statement, state) = match self {
            Kind::Customer | Kind::Import | Kind::Booking => return,
            // A run would now answer 409: a cancelled booking cannot be completed, a completed
            // one cannot be cancelled.
            Kind::Complete => ("UPDATE bookings SET status = ?2 WHERE id = ?1", "cancelled"),
            Kind::Cancel => ("UPDATE bookings SET status = ?2 WHERE id = ?1", "completed"),
            // A run would find the request and show it completed.
            Kind::CardLink => (
                "UPDATE payment_method_requests SET status = ?2 WHERE id = ?1",
                "completed",
            ),
        };
        let changed = database(app)
            .execute(statement, [id.as_str(), state])
            .expect("tampering");
        assert_eq!(changed, 1, "{self:?}: nothing to tamper with in {first}");
    }
}

/// Puts a key row into the app's database as a request in flight would leave it: claimed at
/// `started_ms`, first used then too, bound to `req`.
fn claim_behind_the_apis_back(app: &TestApp, account: &str, key: &str, req: &Req, started_ms: i64) {
    database(app)
        .execute(
            "INSERT INTO idempotency_keys (account_id, idempotency_key, fingerprint, state, owner, \
             first_used_at, started_at) VALUES (?1, ?2, ?3, 'in_progress', 'a-run-in-flight', \
             ?4, ?4)",
            rusqlite::params![account, key, req.fingerprint(), started_ms],
        )
        .expect("a claimed key");
}

/// Moves a key's instants `ms` into the past (as if that much time had passed).
fn age_key(app: &TestApp, key: &str, ms: i64) {
    let changed = database(app)
        .execute(
            "UPDATE idempotency_keys SET first_used_at = first_used_at - ?2, \
             started_at = started_at - ?2 WHERE idempotency_key = ?1",
            rusqlite::params![key, ms],
        )
        .expect("aging a key");
    assert!(changed >= 1, "no key {key} to age");
}

async fn assert_problem(app: &TestApp, kind: Kind, answer: &Answer, status: u16, problem: &str) {
    assert_eq!(answer.status, status, "{kind:?}: {:?}", answer.json());
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json"),
        "{kind:?}"
    );
    assert_eq!(answer.problem_type(), problem, "{kind:?}");
    assert_eq!(
        answer.replayed, None,
        "{kind:?}: a refusal is never a replay"
    );
    assert_documented(
        &openapi(app).await,
        &Method::POST,
        kind.template(),
        status,
        &answer.json(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_and_request_replays_the_first_answer_and_makes_nothing_more() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    let doc = openapi(app).await;
    for kind in ALL {
        let (req, _) = kind.requests(app, &tenant, "replay").await;
        let key = format!("replay-{kind:?}");
        let first = send(app, &tenant.token, &req, Some(&key)).await;
        assert_eq!(first.status, kind.success(), "{kind:?}: {:?}", first.json());
        assert_eq!(
            first.replayed, None,
            "{kind:?}: the first answer is not a replay"
        );
        assert_documented(
            &doc,
            &Method::POST,
            kind.template(),
            first.status,
            &first.json(),
        );
        let made = kind.made(app, &tenant).await;

        let again = send(app, &tenant.token, &req, Some(&key)).await;
        assert_eq!(again.replayed.as_deref(), Some("true"), "{kind:?}");
        assert_eq!(
            again.unmarked(),
            first,
            "{kind:?}: status, type, location and body"
        );
        assert_eq!(
            kind.made(app, &tenant).await,
            made,
            "{kind:?} made something more"
        );

        // Even when a run would now answer otherwise, the replay is the first answer.
        kind.tamper(app, &first.json());
        let tampered = kind.made(app, &tenant).await;
        let third = send(app, &tenant.token, &req, Some(&key)).await;
        assert_eq!(third.unmarked(), first, "{kind:?}: the request ran again");
        assert_eq!(kind.made(app, &tenant).await, tampered, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_request_is_refused_with_422_and_nothing_is_written() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    for kind in ALL {
        let (req, other) = kind.requests(app, &tenant, "mismatch").await;
        let key = format!("mismatch-{kind:?}");
        let first = send(app, &tenant.token, &req, Some(&key)).await;
        assert_eq!(first.status, kind.success(), "{kind:?}: {:?}", first.json());
        let made = kind.made(app, &tenant).await;
        let refused = send(app, &tenant.token, &other, Some(&key)).await;
        assert_problem(app, kind, &refused, 422, "/problems/idempotency-key-reused").await;
        assert_eq!(
            kind.made(app, &tenant).await,
            made,
            "{kind:?}: something was written"
        );
    }
    // A key is bound to its route as well: the customer key on the bookings route.
    let (booking, _) = Kind::Booking.requests(app, &tenant, "route").await;
    let before = Kind::Booking.made(app, &tenant).await;
    let refused = send(app, &tenant.token, &booking, Some("mismatch-Customer")).await;
    assert_problem(
        app,
        Kind::Booking,
        &refused,
        422,
        "/problems/idempotency-key-reused",
    )
    .await;
    assert_eq!(Kind::Booking.made(app, &tenant).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_held_by_a_running_request_answers_409_until_that_run_is_dead() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    for kind in ALL {
        let (req, _) = kind.requests(app, &tenant, "in-use").await;
        let key = format!("in-use-{kind:?}");
        let made = kind.made(app, &tenant).await;
        claim_behind_the_apis_back(app, &biz.account, &key, &req, now_millis());
        let busy = send(app, &tenant.token, &req, Some(&key)).await;
        assert_problem(app, kind, &busy, 409, "/problems/idempotency-key-in-use").await;
        assert_eq!(
            kind.made(app, &tenant).await,
            made,
            "{kind:?}: a 409 ran the request"
        );

        // A minute later that run is dead (the host ends a request after 30 s): a retry takes
        // the key over and runs the request, once.
        age_key(app, &key, 61_000);
        let taken = send(app, &tenant.token, &req, Some(&key)).await;
        assert!(taken.is_fresh_success(), "{kind:?}: {taken:?}");
        let made_once = kind.made(app, &tenant).await;
        assert_ne!(made_once, made, "{kind:?}: the take-over made nothing");
        let again = send(app, &tenant.token, &req, Some(&key)).await;
        assert_eq!(again.unmarked(), taken, "{kind:?}");
        assert_eq!(kind.made(app, &tenant).await, made_once, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_requests_at_once_with_one_key_run_once() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    for kind in ALL {
        for round in 0..3 {
            let (req, _) = kind.requests(app, &tenant, &format!("race-{round}")).await;
            let key = format!("race-{kind:?}-{round}");
            let made = kind.made(app, &tenant).await;
            let (a, b) = tokio::join!(
                send(app, &tenant.token, &req, Some(&key)),
                send(app, &tenant.token, &req, Some(&key))
            );
            let (ran, other) = match (a.is_fresh_success(), b.is_fresh_success()) {
                (true, false) => (a, b),
                (false, true) => (b, a),
                _ => panic!("{kind:?}: exactly one must run: {a:?} {b:?}"),
            };
            assert_eq!(ran.status, kind.success(), "{kind:?}");
            // The other arrived while the first ran (409), or after it answered (a replay).
            if other.status == 409 {
                assert_problem(app, kind, &other, 409, "/problems/idempotency-key-in-use").await;
            } else {
                assert_eq!(
                    other.replayed.as_deref(),
                    Some("true"),
                    "{kind:?}: {other:?}"
                );
                assert_eq!(other.unmarked(), ran, "{kind:?}");
            }
            let after = kind.made(app, &tenant).await;
            assert_ne!(after, made, "{kind:?}: nothing was made");
            // One new customer, booking or link per round, never two (complete and cancel
            // change a booking made beforehand).
            let rows = |made: &Value| made.as_array().expect("rows").len();
            let made_here = if matches!(kind, Kind::Complete | Kind::Cancel) {
                0
            } else {
                1
            };
            assert_eq!(rows(&after), rows(&made) + made_here, "{kind:?}: {after}");
            // Once more: replayed, nothing more made.
            let again = send(app, &tenant.token, &req, Some(&key)).await;
            assert_eq!(again.unmarked(), ran, "{kind:?}");
            assert_eq!(kind.made(app, &tenant).await, after, "{kind:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_link_waiting_on_stripe_holds_its_key() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    let (req, _) = Kind::CardLink.requests(app, &tenant, "slow").await;
    let arrived = biz.stripe.api_request_times().len();
    biz.stripe.hold();
    let first = send(app, &tenant.token, &req, Some("slow-link"));
    let second = async {
        // Once the first request has reached Stripe it holds the key, and Stripe holds it until
        // the second has had its answer.
        while biz.stripe.api_request_times().len() == arrived {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let second = send(app, &tenant.token, &req, Some("slow-link")).await;
        biz.stripe.release();
        second
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, 201, "{:?}", first.json());
    assert_problem(
        app,
        Kind::CardLink,
        &second,
        409,
        "/problems/idempotency-key-in-use",
    )
    .await;
    let third = send(app, &tenant.token, &req, Some("slow-link")).await;
    assert_eq!(third.unmarked(), first);
    assert_eq!(biz.stripe.checkout_sessions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_same_key_is_independent() {
    let biz = setup().await;
    let app = &biz.app;
    let (alpha, bravo) = (Tenant::main(&biz), Tenant::other(&biz).await);
    for kind in ALL {
        let key = format!("shared-{kind:?}");
        let (a_req, _) = kind.requests(app, &alpha, "alpha").await;
        let first = send(app, &alpha.token, &a_req, Some(&key)).await;
        assert!(first.is_fresh_success(), "{kind:?}: {first:?}");
        let alpha_made = kind.made(app, &alpha).await;

        // Bravo's request with the same key runs as its own: neither a replay of Alpha's
        // answer (the customer and import bodies are the very same bytes) nor a 422 (the
        // other routes' ids differ).
        let (b_req, _) = kind.requests(app, &bravo, "alpha").await;
        let bravo_before = kind.made(app, &bravo).await;
        let theirs = send(app, &bravo.token, &b_req, Some(&key)).await;
        assert!(theirs.is_fresh_success(), "{kind:?}: {theirs:?}");
        assert_ne!(kind.made(app, &bravo).await, bravo_before, "{kind:?}");
        assert_eq!(kind.made(app, &alpha).await, alpha_made, "{kind:?}");

        // Each account's retry replays its own answer.
        let again = send(app, &alpha.token, &a_req, Some(&key)).await;
        assert_eq!(again.unmarked(), first, "{kind:?}");
        let theirs_again = send(app, &bravo.token, &b_req, Some(&key)).await;
        assert_eq!(theirs_again.unmarked(), theirs, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_expires_24_hours_after_its_first_use_and_is_then_purged() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    for kind in ALL {
        let (req, other) = kind.requests(app, &tenant, "expiry").await;
        let key = format!("expiry-{kind:?}");
        let first = send(app, &tenant.token, &req, Some(&key)).await;
        assert!(first.is_fresh_success(), "{kind:?}: {first:?}");
        // A minute before the 24 hours are over, the key is still bound.
        age_key(app, &key, DAY_MS - 60_000);
        let bound = send(app, &tenant.token, &other, Some(&key)).await;
        assert_eq!(bound.status, 422, "{kind:?}: {:?}", bound.json());
        // Then it is free: another request with it runs.
        age_key(app, &key, 60_000);
        let made = kind.made(app, &tenant).await;
        let fresh = send(app, &tenant.token, &other, Some(&key)).await;
        assert!(fresh.is_fresh_success(), "{kind:?}: {fresh:?}");
        assert_ne!(kind.made(app, &tenant).await, made, "{kind:?}");
        // And that new use is bound to its own request from now on.
        let again = send(app, &tenant.token, &other, Some(&key)).await;
        assert_eq!(again.unmarked(), fresh, "{kind:?}");
    }
    // A day later every one of them has expired; the next new key deletes them.
    let keys = |app: &TestApp| -> i64 {
        database(app)
            .query_row("SELECT count(*) FROM idempotency_keys", [], |row| {
                row.get(0)
            })
            .expect("count")
    };
    assert_eq!(keys(app), 6);
    database(app)
        .execute(
            "UPDATE idempotency_keys SET first_used_at = first_used_at - ?1, \
             started_at = started_at - ?1",
            [DAY_MS],
        )
        .expect("a day passes");
    let (req, _) = Kind::Customer.requests(app, &tenant, "after").await;
    let fresh = send(app, &tenant.token, &req, Some("the-next-day")).await;
    assert_eq!(fresh.status, 201);
    assert_eq!(keys(app), 1, "the expired keys were purged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_judge_the_request_are_kept_and_failures_release_the_key() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    let customers = || Kind::Customer.made(app, &tenant);

    // A validation error is kept: the same request gets it again, a corrected one is refused.
    let invalid = Req::json("/api/v1/customers".into(), json!({"name": ""}));
    let made = customers().await;
    let first = send(app, &tenant.token, &invalid, Some("kept-400")).await;
    assert_eq!(first.status, 400, "{:?}", first.json());
    let again = send(app, &tenant.token, &invalid, Some("kept-400")).await;
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(again.unmarked(), first);
    let (valid, _) = Kind::Customer.requests(app, &tenant, "kept").await;
    let corrected = send(app, &tenant.token, &valid, Some("kept-400")).await;
    assert_eq!(corrected.status, 422);
    assert_eq!(customers().await, made);

    // So is a 409 on the booking's state.
    let (cancel, _) = Kind::Cancel.requests(app, &tenant, "kept").await;
    let id = cancel
        .path
        .split('/')
        .nth(4)
        .expect("the booking id")
        .to_owned();
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/bookings/{id}/complete"),
            Some(&tenant.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let conflict = send(app, &tenant.token, &cancel, Some("kept-409")).await;
    assert_eq!(conflict.problem_type(), "/problems/conflict");
    let again = send(app, &tenant.token, &cancel, Some("kept-409")).await;
    assert_eq!(again.unmarked(), conflict);
    assert_eq!(again.replayed.as_deref(), Some("true"));

    // Stripe failing (502) is not kept: the same request with the key runs again, once.
    let (link, _) = Kind::CardLink.requests(app, &tenant, "released").await;
    biz.stripe.revoke_secret_key();
    let failed = send(app, &tenant.token, &link, Some("released-502")).await;
    assert_eq!(failed.status, 502, "{:?}", failed.json());
    assert!(
        Kind::CardLink
            .made(app, &tenant)
            .await
            .as_array()
            .expect("rows")
            .is_empty()
    );
    biz.stripe.restore_secret_key();
    let retried = send(app, &tenant.token, &link, Some("released-502")).await;
    assert!(retried.is_fresh_success(), "{retried:?}");
    let again = send(app, &tenant.token, &link, Some("released-502")).await;
    assert_eq!(again.unmarked(), retried);
    assert_eq!(biz.stripe.checkout_sessions().len(), 1);
    // Released, the key stays bound to its request.
    let (_, other_link) = Kind::CardLink.requests(app, &tenant, "released").await;
    biz.stripe.revoke_secret_key();
    let failed = send(app, &tenant.token, &other_link, Some("released-again")).await;
    assert_eq!(failed.status, 502);
    biz.stripe.restore_secret_key();
    let refused = send(app, &tenant.token, &link, Some("released-again")).await;
    assert_eq!(refused.status, 422, "{:?}", refused.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_repeated_key_is_refused_with_400_and_no_key_changes_nothing() {
    let biz = setup().await;
    let app = &biz.app;
    let tenant = Tenant::main(&biz);
    let bad: Vec<Vec<HeaderValue>> = vec![
        vec![
            HeaderValue::from_static("one"),
            HeaderValue::from_static("two"),
        ],
        vec![
            HeaderValue::from_static("same"),
            HeaderValue::from_static("same"),
        ],
        vec![HeaderValue::from_static("")],
        vec![HeaderValue::from_str(&"k".repeat(256)).expect("header")],
        vec![HeaderValue::from_static("tab\there")],
        vec![HeaderValue::from_bytes("clé".as_bytes()).expect("header")],
    ];
    for kind in ALL {
        let (req, _) = kind.requests(app, &tenant, "bad-key").await;
        let made = kind.made(app, &tenant).await;
        for keys in &bad {
            let answer = send_keys(app, &tenant.token, &req, keys.clone()).await;
            assert_problem(app, kind, &answer, 400, "/problems/validation").await;
            assert_eq!(
                answer.json()["errors"][0]["field"],
                "Idempotency-Key",
                "{keys:?}"
            );
        }
        assert_eq!(kind.made(app, &tenant).await, made, "{kind:?}");
        // The longest key is fine.
        let name = format!("{kind:?}");
        let longest = format!("{}{name}", "k".repeat(255 - name.len()));
        let answer = send(app, &tenant.token, &req, Some(&longest)).await;
        assert!(answer.is_fresh_success(), "{kind:?}: {answer:?}");
    }
    // Without a key, the same request runs every time.
    let keys = || -> i64 {
        database(app)
            .query_row("SELECT count(*) FROM idempotency_keys", [], |row| {
                row.get(0)
            })
            .expect("count")
    };
    let stored = keys();
    let (req, _) = Kind::Customer.requests(app, &tenant, "no-key").await;
    let made = Kind::Customer.made(app, &tenant).await;
    let first = send(app, &tenant.token, &req, None).await;
    let second = send(app, &tenant.token, &req, None).await;
    assert!(first.is_fresh_success() && second.is_fresh_success());
    assert_ne!(first.body, second.body);
    let rows = |made: &Value| made.as_array().expect("rows").len();
    assert_eq!(
        rows(&Kind::Customer.made(app, &tenant).await),
        rows(&made) + 2
    );
    assert_eq!(keys(), stored, "no key, no row");
}
