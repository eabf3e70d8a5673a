//! Benchmark (not a test): verified Stripe events through the real stripe-webhook component in
//! mio-host.
//!
//! 1,000 due payment jobs are charged against the fake Stripe, each answered with a `500` after
//! the charge went through (so each attempt is left unknown and its `payment_intent.succeeded`
//! event is what settles it). Then those 1,000 events are delivered one after another, signed
//! by the fake as Stripe signs them: each delivery is a real HTTP request that verifies the
//! signature, de-duplicates, maps the connected account and settles the attempt, job, booking
//! balance and activity. Prints the time of one verified event (median and p99 of the 1,000)
//! and of the 1,000 in a row, then the same 1,000 delivered again (all duplicates).
//!
//! Run: `cargo bench -p mio-tests --bench webhook` (after `scripts/test` or a wasm build). The
//! servers listen on 127.0.0.1 and stop when the benchmark ends; every loop is bounded.

use std::time::{Duration, Instant};

use mio_tests::fake_stripe::{FakeStripe, Outcome};

mod support;

use support::shared::events_of;
use support::{database, seed, start, tick_until_idle};

const EVENTS: usize = 1_000;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (stripe, app, account, customer) = start().await;
    seed(&app, &account, &customer, "due", EVENTS as i64, -60);
    stripe.push_outcomes(std::iter::repeat_n(Outcome::ChargeThenServerError, EVENTS));
    tick_until_idle(&app).await;
    assert_eq!(
        stripe.succeeded_charges().len(),
        EVENTS,
        "each job charged once"
    );
    let ids = events_of(&stripe, "payment_intent.succeeded");
    assert_eq!(ids.len(), EVENTS);

    println!("stripe-webhook: verified payment_intent.succeeded events, one after another");
    println!(
        "{:<40} {:>8} {:>12} {:>10} {:>10} {:>10}",
        "case", "events", "total", "events/s", "p50", "p99"
    );
    let first = deliver_all(&stripe, &ids).await;
    row("1,000 events, each settling an attempt", &first);
    let settled: i64 = database(app.state_dir())
        .query_row(
            "SELECT count(*) FROM automation_jobs WHERE status = 'succeeded'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(settled, EVENTS as i64, "every event settled its job");
    let again = deliver_all(&stripe, &ids).await;
    row("the same 1,000 again (duplicates)", &again);
}

/// Delivers `ids` in order; returns each delivery's time.
async fn deliver_all(stripe: &FakeStripe, ids: &[String]) -> Vec<Duration> {
    let mut times = Vec::with_capacity(ids.len());
    for id in ids {
        let started = Instant::now();
        let status = stripe.deliver(id).await;
        times.push(started.elapsed());
        assert_eq!(status, 200, "{id}");
    }
    times
}

fn row(case: &str, times: &[Duration]) {
    let total: Duration = times.iter().sum();
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{case:<40} {:>8} {:>12.2?} {:>10.0} {:>10.2?} {:>10.2?}",
        times.len(),
        total,
        times.len() as f64 / total.as_secs_f64(),
        at(0.5),
        at(0.99)
    );
}
