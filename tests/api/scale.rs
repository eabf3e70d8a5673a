//! Charging at platform scale: a tick keeps many Stripe requests in flight against a fake
//! Stripe with latency and faults, slows down on 429s, deals claims fairly across businesses,
//! and two hosts on one database never charge a job twice.

use crate::support::{furnish, in_flight, in_hours, on_stripe, tick};
use crate::tick::{Biz, setup_with};
use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// `count` bookings starting within the day for `customer` of the account `token`: each has a
/// payment job due now. Created over HTTP, 8 at a time.
async fn due_bookings(app: &TestApp, token: &str, customer: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(8) {
        let calls = chunk.iter().map(|n| {
            let hours = 1 + i64::try_from(*n % 20).expect("small");
            app.call(
                Method::POST,
                "/api/v1/bookings",
                Some(token),
                Some(json!({
                    "customer_id": customer,
                    "service_type": "standard",
                    "start_at": in_hours(hours),
                    "end_at": in_hours(hours + 2),
                    "amount_cents": 9_900,
                    "currency": "cad"
                })),
            )
        });
        for (status, booking) in futures::future::join_all(calls).await {
            assert_eq!(status, 201, "{booking}");
            ids.push(booking["id"].as_str().expect("id").to_owned());
        }
    }
    ids
}

/// Payment jobs by status (of every booking: read from the app's SQLite file, as no route
/// lists the jobs of all bookings at once).
fn job_statuses(biz: &Biz) -> Vec<(String, i64)> {
    let db = biz.db();
    let mut statement = db
        .prepare(
            "SELECT status, count(*) FROM automation_jobs WHERE automation = 'payment' \
             GROUP BY status ORDER BY status",
        )
        .expect("query");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("statuses")
}

/// Ticks until no payment job is due or waiting (retries made due at once), at most `rounds`.
async fn drain(biz: &Biz, apps: &[&TestApp], rounds: usize) {
    for _ in 0..rounds {
        for app in apps {
            tick(app).await;
        }
        biz.sql(
            "UPDATE automation_jobs SET next_attempt_at = 0 \
             WHERE status IN ('retrying', 'unknown')",
            &[],
        );
        let open: i64 = biz
            .db()
            .query_row(
                "SELECT count(*) FROM automation_jobs WHERE automation = 'payment' \
                 AND status NOT IN ('succeeded', 'failed', 'skipped', 'cancelled')",
                [],
                |row| row.get(0),
            )
            .expect("count");
        if open == 0 {
            return;
        }
    }
    panic!("not drained: {:?}", job_statuses(biz));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_with_faults_is_charged_once_per_job() {
    let biz = setup_with(in_flight(64)).await;
    let bookings = due_bookings(&biz.app, &biz.token, &biz.customer, 500).await;
    biz.stripe.set_latency(Duration::from_millis(200));
    biz.stripe.set_random_faults(0.05, 7);

    let started = Instant::now();
    let first = tick(&biz.app).await;
    let first_run = started.elapsed();
    // 500 charges one after another at 0.2 s would take 100 s; in flight together, one run
    // takes a few seconds.
    assert!(
        first["claimed"].as_u64().unwrap_or(0) >= 500,
        "one run claimed the whole backlog: {first}"
    );
    drain(&biz, &[&biz.app], 20).await;

    assert_eq!(job_statuses(&biz), vec![("succeeded".to_owned(), 500)]);
    let per_job = biz.stripe.charges_per_metadata("mio_job_id");
    assert_eq!(per_job.len(), 500, "every job charged");
    assert!(
        per_job.values().all(|n| *n == 1),
        "a job charged twice: {:?}",
        per_job.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(biz.stripe.succeeded_charges().len(), 500);
    for booking in bookings.iter().take(5) {
        assert_eq!(biz.balance(booking).await, 0);
    }
    eprintln!("first run: {first} in {first_run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_slows_the_whole_run_and_fails_nobody() {
    let biz = setup_with(in_flight(32)).await;
    due_bookings(&biz.app, &biz.token, &biz.customer, 300).await;
    biz.stripe.set_latency(Duration::from_millis(100));

    let ticking = tick(&biz.app);
    let limiting = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = Instant::now();
        biz.stripe.rate_limit_for(Duration::from_secs(10));
        at
    };
    let (summary, limited_at) = tokio::join!(ticking, limiting);
    eprintln!("run: {summary}");

    // The rate before the 429s and during them.
    let times = biz.stripe.api_request_times();
    let rate = |from: Instant, to: Instant| {
        let n = times.iter().filter(|t| **t >= from && **t < to).count();
        n as f64 / (to - from).as_secs_f64()
    };
    let before = rate(limited_at - Duration::from_millis(250), limited_at);
    let during = rate(
        limited_at + Duration::from_secs(1),
        limited_at + Duration::from_secs(9),
    );
    assert!(
        during < before / 4.0,
        "the run did not slow down: {before:.0}/s before, {during:.0}/s while limited"
    );
    drain(&biz, &[&biz.app], 30).await;
    let statuses = job_statuses(&biz);
    assert_eq!(
        statuses,
        vec![("succeeded".to_owned(), 300)],
        "no job failed"
    );
    let per_job = biz.stripe.charges_per_metadata("mio_job_id");
    assert_eq!(per_job.len(), 300, "every job charged");
    assert!(per_job.values().all(|n| *n == 1), "a job charged twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_business_backlog_does_not_starve_another() {
    let biz = setup_with(in_flight(8)).await;
    // Account A: a backlog of 1,000, older than B's jobs.
    due_bookings(&biz.app, &biz.token, &biz.customer, 1_000).await;
    biz.sql(
        "UPDATE automation_jobs SET due_at = due_at - 86400000 WHERE account_id = ?1",
        &[&biz.account],
    );
    // Account B: 10 due jobs on its own Stripe account.
    let other_account = "acct_1OtherBiz";
    let (_, token) = biz.app.create_account("Other Cleaning").await;
    let b_customer = furnish(
        &biz.app,
        &biz.stripe,
        &token,
        other_account,
        "cus_Bea456",
        "pm_card_bea",
    )
    .await;
    let b_bookings = due_bookings(&biz.app, &token, &b_customer, 10).await;
    biz.stripe.set_latency(Duration::from_millis(50));

    // One run, cut short: B's jobs are among the first it charges.
    let first = tick(&biz.app).await;
    eprintln!("first run: {first}");
    let charged_b: HashSet<String> = biz
        .stripe
        .succeeded_charges()
        .iter()
        .filter(|c| c.account.as_deref() == Some(other_account))
        .map(|c| c.metadata["mio_booking_id"].clone())
        .collect();
    assert_eq!(
        charged_b,
        b_bookings.iter().cloned().collect(),
        "B waited behind A's backlog"
    );
    let charged_b_first: usize = biz
        .stripe
        .succeeded_charges()
        .iter()
        .take(40)
        .filter(|c| c.account.as_deref() == Some(other_account))
        .count();
    assert_eq!(charged_b_first, 10, "B's jobs are dealt in with A's first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_database_charge_each_job_once_and_serve_the_api() {
    let biz = setup_with(in_flight(32)).await;
    due_bookings(&biz.app, &biz.token, &biz.customer, 300).await;
    biz.stripe.set_latency(Duration::from_millis(100));
    let replica = biz.app.replica(on_stripe(in_flight(32), &biz.stripe)).await;

    let stop = std::sync::atomic::AtomicBool::new(false);
    async fn ticker(app: &TestApp, stop: &std::sync::atomic::AtomicBool) {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick(app).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let writer = |n: usize| {
        let app = if n.is_multiple_of(2) {
            &biz.app
        } else {
            &replica
        };
        let token = &biz.token;
        let stop = &stop;
        async move {
            let mut failures = Vec::new();
            let mut writes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, answer) = app
                    .call(
                        Method::POST,
                        "/api/v1/customers",
                        Some(token),
                        Some(json!({"name": format!("Client {n}-{writes}")})),
                    )
                    .await;
                writes += 1;
                if status >= 500 {
                    failures.push(answer);
                }
            }
            (writes, failures)
        }
    };
    let watcher = async {
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if biz.stripe.succeeded_charges().len() >= 300 {
                break;
            }
        }
        // A last round after everything was charged.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let (_, _, _, writes) = tokio::join!(
        ticker(&biz.app, &stop),
        ticker(&replica, &stop),
        watcher,
        futures::future::join_all((0..8).map(writer)),
    );
    let total_writes: usize = writes.iter().map(|(n, _)| n).sum();
    let failures: Vec<&Value> = writes.iter().flat_map(|(_, f)| f).collect();
    assert!(failures.is_empty(), "API 5xx under load: {failures:?}");
    assert!(total_writes > 50, "the API was barely used: {total_writes}");

    drain(&biz, &[&biz.app, &replica], 20).await;
    let per_job = biz.stripe.charges_per_metadata("mio_job_id");
    assert_eq!(per_job.len(), 300);
    assert!(per_job.values().all(|n| *n == 1), "a job charged twice");
    assert_eq!(biz.stripe.succeeded_charges().len(), 300);
    assert_eq!(job_statuses(&biz), vec![("succeeded".to_owned(), 300)]);
}
