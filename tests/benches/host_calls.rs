//! Benchmark (not a test): host calls per request on the routes a business hits most, through
//! the real components in mio-host. A host call (a SQLite statement, a key-value operation, a
//! variable read, an outbound request) is a round trip into the host; a production Spin host
//! pays far more for each than mio-host does, so calls per request are the portable measure.
//!
//! Run: `cargo bench -p mio-tests --bench host_calls` (after `scripts/test` or a wasm build).
//! Every route is called a fixed number of times; the server listens on 127.0.0.1 and stops
//! when the benchmark ends.

use mio_tests::{TICK_TOKEN, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

const CALLS: u64 = 20;

/// A measured route: label, component, method, path, body, bearer token.
type Route<'a> = (
    &'a str,
    &'a str,
    Method,
    String,
    Option<Value>,
    Option<&'a str>,
);

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Bench Cleaning").await;
    let put = |path: &'static str, body: Value| {
        let app = &app;
        let token = &token;
        async move {
            let (status, answer) = app.call(Method::PUT, path, Some(token), Some(body)).await;
            assert_eq!(status, 200, "{path}: {answer}");
        }
    };
    put(
        "/api/v1/settings/automations",
        json!({"payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440},
               "feedback": {"enabled": true, "delay_minutes": 60}}),
    )
    .await;
    let (status, customer) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "Ada", "email": "ada@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    let id = customer["id"].as_str().expect("id").to_owned();

    println!("host calls per request (mean of {CALLS} requests each)");
    println!(
        "{:<48} {:>6} {:>8} {:>10} {:>10} {:>9}",
        "route", "total", "sqlite", "key-value", "variables", "outbound"
    );
    let customer_path = format!("/api/v1/customers/{id}");
    let automations_path = format!("{customer_path}/automations");
    let routes: Vec<Route<'_>> = vec![
        (
            "GET /api/v1/customers/{id}",
            "customer-api",
            Method::GET,
            customer_path.clone(),
            None,
            Some(&token),
        ),
        (
            "GET /api/v1/customers?limit=50",
            "customer-api",
            Method::GET,
            "/api/v1/customers?limit=50".into(),
            None,
            Some(&token),
        ),
        (
            "POST /api/v1/customers",
            "customer-api",
            Method::POST,
            "/api/v1/customers".into(),
            Some(json!({"name": "Grace"})),
            Some(&token),
        ),
        (
            "GET /api/v1/activity",
            "customer-api",
            Method::GET,
            "/api/v1/activity".into(),
            None,
            Some(&token),
        ),
        (
            "GET /api/v1/feedback",
            "customer-api",
            Method::GET,
            "/api/v1/feedback".into(),
            None,
            Some(&token),
        ),
        (
            "GET /api/v1/customers/{id}/automations",
            "override-toggle",
            Method::GET,
            automations_path,
            None,
            Some(&token),
        ),
        (
            "POST /api/v1/bookings",
            "customer-api",
            Method::POST,
            "/api/v1/bookings".into(),
            Some(json!({"customer_id": id, "service_type": "standard",
                        "start_at": "2030-01-01T10:00:00Z", "end_at": "2030-01-01T12:00:00Z",
                        "amount_cents": 12500, "currency": "cad"})),
            Some(&token),
        ),
        (
            "POST /api/v1/internal/tick (nothing due)",
            "scheduled-tick",
            Method::POST,
            "/api/v1/internal/tick".into(),
            None,
            Some(TICK_TOKEN),
        ),
    ];
    for (label, component, method, path, body, bearer) in routes {
        let before = app
            .app()
            .host_calls()
            .get(component)
            .copied()
            .unwrap_or_default();
        for _ in 0..CALLS {
            let (status, answer) = app.call(method.clone(), &path, bearer, body.clone()).await;
            assert!(status < 300, "{label}: {status} {answer}");
        }
        let after = app.calls_after(component, before.invocations + CALLS).await;
        assert_eq!(after.invocations - before.invocations, CALLS, "{label}");
        let per = |f: fn(&mio_host::HostCalls) -> u64| {
            (f(&after.calls) - f(&before.calls)) as f64 / CALLS as f64
        };
        println!(
            "{label:<48} {:>6.1} {:>8.1} {:>10.1} {:>10.1} {:>9.1}",
            per(mio_host::HostCalls::total),
            per(|c| c.sqlite),
            per(|c| c.key_value),
            per(|c| c.variables),
            per(|c| c.outbound_http),
        );
    }
}
