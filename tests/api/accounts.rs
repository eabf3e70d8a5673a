use mio_tests::{ADMIN_TOKEN, TestApp};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_route_creates_account_and_shows_token_once() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/admin/accounts",
            Some(ADMIN_TOKEN),
            Some(json!({"name": "Sparkle Cleaning", "timezone": "America/Toronto"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["account"]["name"], "Sparkle Cleaning");
    assert_eq!(body["account"]["timezone"], "America/Toronto");
    let token = body["api_token"].as_str().expect("token");
    assert!(token.len() >= 32, "token too short: {token}");

    // The token works, and it is not stored in clear anywhere in the database.
    let (status, _) = app
        .call(Method::GET, "/api/v1/customers", Some(token), None)
        .await;
    assert_eq!(status, 200);
    let db = std::fs::read(app.state_dir().join("sqlite_db.db")).expect("database file");
    let needle = token.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle),
        "the API token is stored in clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_route_rejects_wrong_or_missing_admin_token() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "A", "timezone": "UTC"});
    for token in [None, Some("wrong"), Some("")] {
        let (status, problem) = app
            .call(
                Method::POST,
                "/api/v1/admin/accounts",
                token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 401, "token {token:?}: {problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_with_unknown_timezone_is_rejected() {
    let app = TestApp::spawn().await;
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/admin/accounts",
            Some(ADMIN_TOKEN),
            Some(json!({"name": "A", "timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "timezone", "{problem}");
}
