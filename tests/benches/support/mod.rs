//! What the payment benchmarks share: an app with MioPay, rules and one customer with a card
//! on its own fake Stripe (webhook endpoint included), jobs seeded straight into its SQLite
//! file, and ticking. Each benchmark binary uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio_tests::fake_stripe::FakeStripe;
use mio_tests::{Options, TICK_TOKEN, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

pub const STRIPE_ACCOUNT: &str = "acct_1BenchBiz";
pub const STRIPE_CUSTOMER: &str = "cus_Bench1";
pub const CARD: &str = "pm_card_bench";
/// No run needs more ticks than this (each charges what its time budget allows).
pub const MAX_TICKS: usize = 200;

// ?1 count, ?2 id prefix, ?3 account, ?4 customer, ?5 start (ms).
pub const SEED_BOOKINGS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
     WHERE i < ?1) \
     INSERT INTO bookings (id, account_id, customer_id, service_type, start_at, end_at, \
     amount_cents, currency, status, created_at, updated_at) \
     SELECT 'bkg_' || ?2 || i, ?3, ?4, 'standard', ?5, ?5 + 7200000, 12500, 'cad', \
     'scheduled', 'x', 'x' FROM n";

// ?1 count, ?2 id prefix, ?3 account, ?4 customer, ?5 due (ms).
pub const SEED_JOBS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
     WHERE i < ?1) \
     INSERT INTO automation_jobs (id, account_id, customer_id, booking_id, automation, phase, \
     status, due_at, created_at, updated_at) \
     SELECT 'job_' || ?2 || i, ?3, ?4, 'bkg_' || ?2 || i, 'payment', 'charge', 'scheduled', ?5, \
     'x', 'x' FROM n";

/// An app with MioPay, rules and one customer with a card, on its own fake Stripe.
pub async fn start() -> (FakeStripe, TestApp, String, String) {
    start_with(Options::default()).await
}

/// [`start`] with `options` (e.g. `SPIN_VARIABLE_TICK_CONCURRENCY`); the Stripe variables are
/// set to the fake's.
pub async fn start_with(mut options: Options) -> (FakeStripe, TestApp, String, String) {
    let stripe = FakeStripe::start().await;
    stripe.add_payment_method(
        Some(STRIPE_ACCOUNT),
        STRIPE_CUSTOMER,
        CARD,
        "visa",
        "4242",
        12,
        2030,
    );
    options.variables.insert(
        "SPIN_VARIABLE_STRIPE_SECRET_KEY".into(),
        stripe.secret_key().to_owned(),
    );
    options
        .variables
        .insert("SPIN_VARIABLE_STRIPE_API_BASE".into(), stripe.url());
    options.variables.insert(
        "SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET".into(),
        stripe.webhook_secret().to_owned(),
    );
    let app = TestApp::spawn_with(options).await;
    stripe.set_webhook_url(app.url("/webhooks/stripe"));
    let (account, token) = app.create_account("Bench Cleaning").await;
    for (path, body) in [
        (
            "/api/v1/settings/miopay",
            json!({"enabled": true, "stripe_account_id": STRIPE_ACCOUNT}),
        ),
        (
            "/api/v1/settings/automations",
            json!({
                "payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440},
                "feedback": {"enabled": false, "delay_minutes": 60}
            }),
        ),
    ] {
        let (status, answer) = app.call(Method::PUT, path, Some(&token), Some(body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (status, answer) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "Ada", "stripe_customer_id": STRIPE_CUSTOMER})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let customer = answer["id"].as_str().expect("customer id").to_owned();
    database(app.state_dir())
        .execute(
            "INSERT INTO payment_methods (customer_id, account_id, payment_method_id, brand, \
             last4, exp_month, exp_year, updated_at) VALUES (?1, ?2, ?3, 'visa', '4242', 12, \
             2030, 'x')",
            (&customer, &account, CARD),
        )
        .expect("card stored");
    (stripe, app, account, customer)
}

pub fn database(state_dir: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(state_dir.join("sqlite_db.db")).expect("database");
    db.busy_timeout(Duration::from_secs(30)).expect("timeout");
    db
}

/// `count` bookings with one payment job each, due `due_in_minutes` from now.
pub fn seed(
    app: &TestApp,
    account: &str,
    customer: &str,
    prefix: &str,
    count: i64,
    due_in_minutes: i64,
) {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("in range");
    let due = now + due_in_minutes * 60_000;
    let start = due + 24 * 60 * 60_000;
    let db = database(app.state_dir());
    db.execute(SEED_BOOKINGS, (count, prefix, account, customer, start))
        .expect("bookings seeded");
    db.execute(SEED_JOBS, (count, prefix, account, customer, due))
        .expect("jobs seeded");
}

pub async fn tick(app: &TestApp) -> Value {
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

/// Ticks until one claims nothing; returns (charges, ticks, time).
pub async fn tick_until_idle(app: &TestApp) -> (i64, usize, Duration) {
    let started = Instant::now();
    let mut charged = 0;
    for ticks in 1..=MAX_TICKS {
        let summary = tick(app).await;
        charged += summary["succeeded"].as_i64().expect("count");
        if summary["claimed"] == 0 {
            return (charged, ticks, started.elapsed());
        }
    }
    panic!("still claiming after {MAX_TICKS} ticks");
}
