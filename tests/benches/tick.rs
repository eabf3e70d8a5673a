//! Benchmark (not a test): the scheduled tick through the real scheduled-tick component in
//! mio-host, charging against the fake Stripe.
//!
//! 1. Throughput: 1,000 due payment jobs, `POST /api/v1/internal/tick` until none is left;
//!    prints charges/s.
//! 2. Scaling: the same 100 due jobs among 10,000 and then 1,000,000 stored bookings (each with
//!    a job planned for later); prints the time of the tick that charges them. A claim that
//!    scanned bookings or jobs would grow with the store; an indexed one does not.
//!
//! Run: `cargo bench -p mio-tests --bench tick` (after `scripts/test` or a wasm build). Rows are
//! seeded with recursive-CTE inserts straight into the app's SQLite file. Loops are bounded; the
//! servers listen on 127.0.0.1 and stop when the benchmark ends.

use std::time::{Duration, Instant};

mod support;

use support::{seed, start, tick, tick_until_idle};

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
}

fn row(case: &str, charges: i64, elapsed: Duration) {
    println!(
        "{case:<44} {charges:>10} {:>12.2?} {:>12.0}",
        elapsed,
        charges as f64 / elapsed.as_secs_f64()
    );
}
