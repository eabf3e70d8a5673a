//! What the payment benchmarks share: an app with MioPay, rules and one customer with a card
//! on its own fake Stripe (webhook endpoint included), set up over HTTP; jobs seeded straight
//! into its SQLite file (by the million: HTTP would take hours); and ticking. Each benchmark
//! binary uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use mio_tests::fake_stripe::FakeStripe;
use mio_tests::{Options, TestApp};

// Shared with the integration tests: the Stripe variables, furnishing an account to charge,
// ticking, Stripe's events, the clock.
#[path = "../../api/support.rs"]
pub mod shared;

use shared::{now_millis, tick};

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
/// set to the fake's, and its webhook endpoint to the app's. Set up over HTTP, as the tests do.
pub async fn start_with(options: Options) -> (FakeStripe, TestApp, String, String) {
    let stripe = FakeStripe::start().await;
    let app = shared::spawn_on_stripe(options, &stripe).await;
    let (account, token) = app.create_account("Bench Cleaning").await;
    let customer =
        shared::furnish(&app, &stripe, &token, STRIPE_ACCOUNT, STRIPE_CUSTOMER, CARD).await;
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
    let due = now_millis() + due_in_minutes * 60_000;
    let start = due + 24 * 60 * 60_000;
    let db = database(app.state_dir());
    db.execute(SEED_BOOKINGS, (count, prefix, account, customer, start))
        .expect("bookings seeded");
    db.execute(SEED_JOBS, (count, prefix, account, customer, due))
        .expect("jobs seeded");
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
