//! Benchmark (not a test): the scheduled tick through the real scheduled-tick component in
//! mio-host, charging against the fake Stripe.
//!
//! 1. Throughput: 1,000 due payment jobs, `POST /api/v1/internal/tick` until none is left;
//!    prints charges/s.
//! 2. Scaling: the same 100 due jobs among 10,000 and then 1,000,000 stored bookings (each with
//!    a job planned for later); prints the time of the tick that charges them. A claim that
//!    scanned bookings or jobs would grow with the store; an indexed one does not.
//!
//! 3. Against a Stripe that answers in 300 ms: due jobs drained by cron-style runs with 1, 8, 32
//!    and 64 requests in flight (`tick_concurrency`); then 1,000 jobs with two hosts ticking on
//!    one state directory (no job charged twice); then the API's latency (`GET
//!    /api/v1/customers/{id}`, p50/p99) while a backlog drains.
//!
//! Run: `cargo bench -p mio-tests --bench tick` (after `scripts/test` or a wasm build). Rows are
//! seeded with recursive-CTE inserts straight into the app's SQLite file. Loops are bounded; the
//! servers listen on 127.0.0.1 and stop when the benchmark ends.

use std::time::{Duration, Instant};

mod support;

use mio_tests::TestApp;
use reqwest::Method;
use support::shared::{in_flight, on_stripe, tick};
use support::{seed, start, start_with, tick_until_idle};

const STRIPE_LATENCY: Duration = Duration::from_millis(300);

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!("scheduled tick against the fake Stripe");
    println!(
        "{:<44} {:>10} {:>12} {:>12}",
        "case", "charges", "time", "charges/s"
    );

    let (stripe, app, account, customer) = start().await;
    seed(&app, &account, &customer, "due", 1_000, -60);
    let (charged, ticks, elapsed) = tick_until_idle(&app).await;
    assert_eq!(
        stripe.succeeded_charges().len(),
        1_000,
        "every due job charged once"
    );
    row(&format!("1,000 due jobs ({ticks} ticks)"), charged, elapsed);
    drop(app);

    for stored in [10_000, 1_000_000] {
        let (stripe, app, account, customer) = start().await;
        let seeding = Instant::now();
        seed(&app, &account, &customer, "later", stored, 30 * 24 * 60);
        seed(&app, &account, &customer, "due", 100, -60);
        let seeded = seeding.elapsed();
        let (charged, ticks, elapsed) = tick_until_idle(&app).await;
        assert_eq!(stripe.succeeded_charges().len(), 100);
        row(
            &format!("100 due among {stored} bookings ({ticks} ticks)"),
            charged,
            elapsed,
        );
        println!("    (seeded {stored} bookings and jobs in {seeded:.1?})");
        let idle = Instant::now();
        let summary = tick(&app).await;
        assert_eq!(summary["claimed"], 0);
        println!(
            "    idle tick with nothing due among {stored} bookings: {:.2?}",
            idle.elapsed()
        );
    }

    println!();
    println!("against a Stripe answering in {STRIPE_LATENCY:?}");
    for (n, jobs) in [(1, 50), (8, 300), (32, 1_000), (64, 1_000)] {
        let (stripe, app, account, customer) = start_with(in_flight(n)).await;
        stripe.set_latency(STRIPE_LATENCY);
        seed(&app, &account, &customer, "due", jobs, -60);
        let (charged, ticks, elapsed) = tick_until_idle(&app).await;
        assert_eq!(
            stripe.succeeded_charges().len(),
            usize::try_from(jobs).expect("small")
        );
        row(
            &format!("{jobs} due, {n} in flight ({ticks} runs)"),
            charged,
            elapsed,
        );
    }

    // Two hosts on one state directory, both ticking.
    let (stripe, app, account, customer) = start_with(in_flight(64)).await;
    stripe.set_latency(STRIPE_LATENCY);
    let replica = app.replica(on_stripe(in_flight(64), &stripe)).await;
    seed(&app, &account, &customer, "due", 1_000, -60);
    let started = Instant::now();
    let (a, b) = tokio::join!(tick_until_idle(&app), tick_until_idle(&replica));
    let elapsed = started.elapsed();
    let per_job = stripe.charges_per_metadata("mio_job_id");
    assert_eq!(per_job.len(), 1_000, "every job charged");
    assert!(per_job.values().all(|n| *n == 1), "a job charged twice");
    row(
        &format!("1,000 due, 2 hosts x 64 ({}+{} runs)", a.1, b.1),
        a.0 + b.0,
        elapsed,
    );
    drop(replica);
    drop(app);

    // The API while a backlog drains.
    let (stripe, app, account, customer) = start_with(in_flight(64)).await;
    stripe.set_latency(STRIPE_LATENCY);
    let (reader, token) = reader(&app).await;
    let idle = latencies(&app, &reader, &token).await;
    seed(&app, &account, &customer, "due", 1_000, -60);
    let (busy, (charged, _, _)) =
        tokio::join!(latencies(&app, &reader, &token), tick_until_idle(&app));
    assert_eq!(charged, 1_000, "the backlog drained meanwhile");
    assert_eq!(stripe.succeeded_charges().len(), 1_000);
    println!(
        "GET /api/v1/customers/{{id}}: idle p50 {:.2?} p99 {:.2?}; while 1,000 charges drain p50 {:.2?} p99 {:.2?}",
        idle.0, idle.1, busy.0, busy.1
    );
}

/// A second business with one customer, whose reads the benchmark times: (customer, token).
async fn reader(app: &TestApp) -> (String, String) {
    let (_, token) = app.create_account("Reader Cleaning").await;
    let (status, customer) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(serde_json::json!({"name": "Grace"})),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    (customer["id"].as_str().expect("id").to_owned(), token)
}

/// p50 and p99 of 500 `GET /api/v1/customers/{id}`, one at a time.
async fn latencies(app: &TestApp, customer: &str, token: &str) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(500);
    for _ in 0..500 {
        let started = Instant::now();
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/customers/{customer}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200);
        times.push(started.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn row(case: &str, charges: i64, elapsed: Duration) {
    println!(
        "{case:<44} {charges:>10} {:>12.2?} {:>12.0}",
        elapsed,
        charges as f64 / elapsed.as_secs_f64()
    );
}
