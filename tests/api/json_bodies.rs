//! How every JSON body is read (`mio_shared::json::decode`), over HTTP: an object and nothing
//! else, at the top and inside; a number with a zero fraction as the integer it is; a key once.
//! Found by Schemathesis (`scripts/fuzz-api`).

use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

async fn customer(app: &TestApp, token: &str) -> String {
    let (status, customer) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": "Ada", "notifications": {"email": true, "sms": true}})),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    customer["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_level_array_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, account_token) = app.create_account("Arrays").await;
    let token = Some(account_token.as_str());
    let path = "/api/v1/settings/notifications";
    let (status, _) = app
        .call(
            Method::PUT,
            path,
            token,
            Some(json!({"webhook": {"url": "https://hooks.example.com/mio",
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})),
        )
        .await;
    // The default allow-list is https on port 443: this URL is inside it.
    assert_eq!(status, 200);
    let (_, before) = app.call(Method::GET, path, token, None).await;
    assert!(before["webhook"].is_object(), "{before}");

    // serde reads `[null, null]` as a struct whose first fields are null: here that switched
    // every channel off.
    let (status, problem) = app
        .call(Method::PUT, path, token, Some(json!([null, null])))
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/malformed-json");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("must be a JSON object, not an array")),
        "{problem}"
    );
    let (_, after) = app.call(Method::GET, path, token, None).await;
    assert_eq!(after, before, "nothing changed");

    let (status, problem) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{}", customer(&app, &account_token).await),
            token,
            Some(json!(["Grace"])),
        )
        .await;
    assert_eq!(
        (status, &problem["type"]),
        (400, &json!("/problems/malformed-json"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_does_not_stand_for_a_nested_object() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Nested arrays").await;
    let id = customer(&app, &token).await;
    let path = format!("/api/v1/customers/{id}");
    // Read field by field, `[false, false]` turned both channels off.
    let (status, problem) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"notifications": [false, false]})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "notifications");
    let (_, stored) = app.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(stored["notifications"], json!({"email": true, "sms": true}));

    let (status, problem) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            Some(&token),
            Some(json!({
                "payment": [true, "before_start", 60],
                "feedback": {"enabled": false, "delay_minutes": 0}
            })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        problem["errors"],
        json!([{"field": "payment", "message": "invalid type: sequence, expected a JSON object"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_with_a_zero_fraction_is_the_integer_the_document_allows() {
    let app = TestApp::spawn().await;
    let (_, account_token) = app.create_account("Integral").await;
    let token = Some(account_token.as_str());
    // The document says `integer`, and JSON Schema counts 1440.0 as one.
    let rules = |offset: Value| {
        json!({
            "payment": {"enabled": true, "trigger": "before_start", "offset_minutes": offset},
            "feedback": {"enabled": false, "delay_minutes": 120.0}
        })
    };
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            token,
            Some(rules(json!(1440.0))),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment"]["offset_minutes"], 1440);
    assert_eq!(body["feedback"]["delay_minutes"], 120);

    let id = customer(&app, &account_token).await;
    let (status, entry) = app
        .call(
            Method::PUT,
            &format!("/api/v1/customers/{id}/automations/payment"),
            token,
            Some(json!({"state": "enabled",
                "timing": {"trigger": "after_end", "offset_minutes": 4498.0}})),
        )
        .await;
    assert_eq!(status, 200, "{entry}");

    // A fraction is still not a whole number of minutes.
    let (status, problem) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            token,
            Some(rules(json!(1440.5))),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "payment.offset_minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_given_twice_in_a_nested_map_is_refused() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Twice").await;
    // Only raw text can repeat a key; a map kept the last one silently.
    let body = r#"{"payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 60,
        "service_types": {"deep_clean": {"trigger": "before_start", "offset_minutes": 30},
                          "deep_clean": {"trigger": "after_end", "offset_minutes": 0}}},
        "feedback": {"enabled": false, "delay_minutes": 0}}"#;
    let response = app
        .client
        .put(app.url("/api/v1/settings/automations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["errors"],
        json!([{"field": "payment.service_types.deep_clean", "message": "is given more than once"}])
    );
    let (_, rules) = app
        .call(
            Method::GET,
            "/api/v1/settings/automations",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(rules["configured"], false, "nothing was stored");
}
