//! Benchmark (not a test): `GET /api/v1/customers/{id}` through the real customer-api component
//! in mio-host, over real HTTP, against a database of 10,000 customers; plus the cost of
//! instantiating a component for one request.
//!
//! Run: `cargo bench -p mio-tests --bench customers` (after `scripts/test` or a wasm build).
//! Prints requests/s and p50/p99 latency at concurrency 1 and 8. Loops are bounded; the server
//! listens on 127.0.0.1 and stops when the benchmark ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio_tests::TestApp;
use serde_json::json;
use tokio::sync::Semaphore;

const CUSTOMERS: usize = 10_000;
const REQUESTS: usize = 5_000;
const INSTANTIATIONS: u32 = 2_000;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let app = Arc::new(TestApp::spawn().await);
    let (_, token) = app.create_account("Bench Cleaning").await;
    let token: Arc<str> = Arc::from(token);

    let seeded = Instant::now();
    let ids = Arc::new(seed(&app, &token).await);
    println!(
        "seeded {} customers over HTTP in {:.1?}",
        ids.len(),
        seeded.elapsed()
    );

    // Warm-up: connection pool, SQLite page cache.
    run(&app, &token, &ids, 500, 8).await;
    for concurrency in [1, 8] {
        let (wall, mut latencies) = run(&app, &token, &ids, REQUESTS, concurrency).await;
        latencies.sort();
        println!(
            "GET /api/v1/customers/{{id}}  concurrency {concurrency}: {:>7.0} req/s  p50 {:>8.2?}  p99 {:>8.2?}  ({REQUESTS} requests)",
            REQUESTS as f64 / wall.as_secs_f64(),
            percentile(&latencies, 50),
            percentile(&latencies, 99),
        );
    }

    let started = Instant::now();
    for _ in 0..INSTANTIATIONS {
        app.app()
            .instantiate_only("customer-api")
            .await
            .expect("instantiate");
    }
    println!(
        "instantiate customer-api (fresh store + instance, no request): {:.1?} per instance ({INSTANTIATIONS} runs)",
        started.elapsed() / INSTANTIATIONS
    );
}

async fn seed(app: &Arc<TestApp>, token: &Arc<str>) -> Vec<String> {
    let permits = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::with_capacity(CUSTOMERS);
    for i in 0..CUSTOMERS {
        let (app, token, permits) = (Arc::clone(app), Arc::clone(token), Arc::clone(&permits));
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.expect("semaphore");
            let body = json!({
                "name": format!("Customer {i:05}"),
                "email": format!("customer{i}@example.com"),
                "phone": format!("+1 416 555 {:04}", i % 10_000),
                "service_address": format!("{i} Queen St W, Toronto"),
                "notes": "Seeded by the benchmark",
            });
            let res = app
                .client
                .post(app.url("/api/v1/customers"))
                .bearer_auth(&*token)
                .json(&body)
                .send()
                .await
                .expect("create");
            assert_eq!(res.status(), 201);
            let v: serde_json::Value = res.json().await.expect("json");
            v["id"].as_str().expect("id").to_owned()
        }));
    }
    let mut ids = Vec::with_capacity(CUSTOMERS);
    for t in tasks {
        ids.push(t.await.expect("seed task"));
    }
    ids
}

async fn run(
    app: &Arc<TestApp>,
    token: &Arc<str>,
    ids: &Arc<Vec<String>>,
    requests: usize,
    concurrency: usize,
) -> (Duration, Vec<Duration>) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for i in 0..requests {
        let (app, token, ids, permits) = (
            Arc::clone(app),
            Arc::clone(token),
            Arc::clone(ids),
            Arc::clone(&permits),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.expect("semaphore");
            // A fixed stride walks the ids in a scattered but repeatable order.
            let id = &ids[(i * 7919) % ids.len()];
            let t = Instant::now();
            let res = app
                .client
                .get(app.url(&format!("/api/v1/customers/{id}")))
                .bearer_auth(&*token)
                .send()
                .await
                .expect("get");
            assert_eq!(res.status(), 200);
            res.bytes().await.expect("body");
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        latencies.push(t.await.expect("request task"));
    }
    (started.elapsed(), latencies)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
    sorted[index]
}
