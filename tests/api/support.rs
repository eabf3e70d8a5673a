//! What several test files share, and the benchmarks and the browser test with them
//! (`tests/benches/support` and `tests/browser/main.rs` include this file): an app on a fake
//! Stripe, an account set up to charge (customers, a card on file, bookings), the tick, the
//! served OpenAPI document, Stripe's events, the app's SQLite file (for what HTTP cannot set
//! up or show), and the clock. Only `mio_tests` and external crates are used here, so that the
//! benchmarks and the browser test can include it.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Duration, SecondsFormat, Utc};
use mio_tests::fake_stripe::FakeStripe;
use mio_tests::{Options, TICK_TOKEN, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

/// `options` with the Stripe variables (secret key, API base, webhook secret) set to `stripe`'s.
pub(crate) fn on_stripe(mut options: Options, stripe: &FakeStripe) -> Options {
    for (name, value) in [
        ("STRIPE_SECRET_KEY", stripe.secret_key().to_owned()),
        ("STRIPE_API_BASE", stripe.url()),
        ("STRIPE_WEBHOOK_SECRET", stripe.webhook_secret().to_owned()),
    ] {
        options
            .variables
            .insert(format!("SPIN_VARIABLE_{name}"), value);
    }
    options
}

/// Starts an app with `options` talking to `stripe`, whose events are then delivered to the
/// app's webhook endpoint.
pub(crate) async fn spawn_on_stripe(options: Options, stripe: &FakeStripe) -> TestApp {
    let app = TestApp::spawn_with(on_stripe(options, stripe)).await;
    stripe.set_webhook_url(app.url("/webhooks/stripe"));
    app
}

/// Default options, with a tick that keeps up to `n` requests in flight.
pub(crate) fn in_flight(n: usize) -> Options {
    let mut options = Options::default();
    options
        .variables
        .insert("SPIN_VARIABLE_TICK_CONCURRENCY".into(), n.to_string());
    options
}

/// Sets up the account of `token` to charge: MioPay on with `stripe_account`, "charge 24 hours
/// before start" (feedback off), and a customer "Ada" whose Stripe customer holds `card` as the
/// primary card. Returns the customer's id.
pub(crate) async fn furnish(
    app: &TestApp,
    stripe: &FakeStripe,
    token: &str,
    stripe_account: &str,
    stripe_customer: &str,
    card: &str,
) -> String {
    put_ok(
        app,
        token,
        "/api/v1/settings/miopay",
        json!({"enabled": true, "stripe_account_id": stripe_account}),
    )
    .await;
    put_ok(
        app,
        token,
        "/api/v1/settings/automations",
        json!({
            "payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440},
            "feedback": {"enabled": false, "delay_minutes": 60}
        }),
    )
    .await;
    let customer = create_customer(
        app,
        token,
        json!({"name": "Ada", "stripe_customer_id": stripe_customer}),
    )
    .await;
    give_card(
        app,
        stripe,
        token,
        stripe_account,
        &customer,
        stripe_customer,
        card,
    )
    .await;
    customer
}

/// `PUT path` with `body` as `token`; the answer (a 200 is asserted).
pub(crate) async fn put_ok(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, answer) = app.call(Method::PUT, path, Some(token), Some(body)).await;
    assert_eq!(status, 200, "PUT {path}: {answer}");
    answer
}

/// `POST /api/v1/customers` with `body` as `token`; the new customer's id (a 201 is asserted).
pub(crate) async fn create_customer(app: &TestApp, token: &str, body: Value) -> String {
    let (status, customer) = app
        .call(Method::POST, "/api/v1/customers", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{customer}");
    customer["id"].as_str().expect("customer id").to_owned()
}

/// Makes a Visa ending 4242 (12/2030), `card` on `stripe`, the primary card of `customer`, whose
/// Stripe customer on `stripe_account` is `stripe_customer` (`PUT
/// /api/v1/customers/{id}/payment-method`; a 200 is asserted).
pub(crate) async fn give_card(
    app: &TestApp,
    stripe: &FakeStripe,
    token: &str,
    stripe_account: &str,
    customer: &str,
    stripe_customer: &str,
    card: &str,
) {
    stripe.add_payment_method(
        Some(stripe_account),
        stripe_customer,
        card,
        "visa",
        "4242",
        12,
        2030,
    );
    put_ok(
        app,
        token,
        &format!("/api/v1/customers/{customer}/payment-method"),
        json!({"payment_method_id": card}),
    )
    .await;
}

/// A two-hour "standard" visit of `customer` for `amount_cents` CAD, starting in `hours` (with
/// "charge 24 hours before start", its charge is due now when that is under 24); its id (a 201
/// is asserted).
pub(crate) async fn book(
    app: &TestApp,
    token: &str,
    customer: &str,
    hours: i64,
    amount_cents: i64,
) -> String {
    let (status, booking) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(token),
            Some(json!({
                "customer_id": customer,
                "service_type": "standard",
                "start_at": in_hours(hours),
                "end_at": in_hours(hours + 2),
                "amount_cents": amount_cents,
                "currency": "cad"
            })),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    booking["id"].as_str().expect("booking id").to_owned()
}

/// `POST /api/v1/internal/tick` with the tick token; its summary (a 200 is asserted).
pub(crate) async fn tick(app: &TestApp) -> Value {
    let (status, summary) = app
        .call(
            Method::POST,
            "/api/v1/internal/tick",
            Some(TICK_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    summary
}

/// The OpenAPI document the app serves (a 200 is asserted).
pub(crate) async fn openapi(app: &TestApp) -> Value {
    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200, "{doc}");
    doc
}

/// The ids of `stripe`'s events of `kind`, oldest first.
pub(crate) fn events_of(stripe: &FakeStripe, kind: &str) -> Vec<String> {
    stripe
        .events()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["id"].as_str().expect("event id").to_owned())
        .collect()
}

/// A connection to the app's SQLite file, waiting up to 5 s for the app's writers.
pub(crate) fn database(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(app.state_dir().join("sqlite_db.db"))
        .expect("the app's database");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

/// `hours` from now, RFC 3339 in UTC to the second.
pub(crate) fn in_hours(hours: i64) -> String {
    (Utc::now() + Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("in range")
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    now_millis() / 1000
}
