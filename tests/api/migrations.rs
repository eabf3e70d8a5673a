//! Upgrading a database that an earlier schema version wrote.

use mio_tests::{TestApp, workspace_root};
use reqwest::Method;
use serde_json::json;

/// The API token of the account in `tests/fixtures/schema_v1.sql`.
const V1_TOKEN: &str = "mio_0w3ge1r70w3ge1r70w3ge1r70w3ge1r70w3ge1r70w3ge1r70w3g";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_upgrades_without_losing_rows() {
    let mut app = TestApp::spawn().await;
    // The state directory gets a version-1 database before any request reaches a component.
    let fixture = std::fs::read_to_string(workspace_root().join("tests/fixtures/schema_v1.sql"))
        .expect("fixture");
    let pool = mio_host::sqlite::open(app.state_dir()).expect("database");
    mio_host::sqlite::run_batch(&pool, &fixture).expect("version 1 schema and rows");
    drop(pool);
    app.restart().await;

    let (status, page) = app
        .call(Method::GET, "/api/v1/customers", Some(V1_TOKEN), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let customers = page["data"].as_array().expect("data");
    assert_eq!(customers.len(), 2);
    assert_eq!(customers[0]["name"], "Ada Lovelace");
    assert_eq!(customers[0]["email"], "Ada@Example.com");
    assert_eq!(
        customers[0]["notifications"],
        json!({"email": true, "sms": false})
    );
    assert_eq!(customers[0]["created_at"], "2026-01-15T08:05:00.000Z");
    assert_eq!(customers[1]["name"], "Grace Hopper");

    // The version-2 tables work for the old account and its customers.
    let (status, settings) = app
        .call(
            Method::GET,
            "/api/v1/settings/automations",
            Some(V1_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["configured"], false);
    let (status, booking) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(V1_TOKEN),
            Some(json!({
                "customer_id": customers[1]["id"], "service_type": "standard",
                "start_at": "2030-05-01T14:00:00Z", "end_at": "2030-05-01T16:00:00Z",
                "amount_cents": 9_000, "currency": "cad"
            })),
        )
        .await;
    assert_eq!(status, 201, "{booking}");

    // Restarting (a second instance migrating the same file) changes nothing.
    app.restart().await;
    let (_, again) = app
        .call(Method::GET, "/api/v1/customers", Some(V1_TOKEN), None)
        .await;
    assert_eq!(again, page);
}
