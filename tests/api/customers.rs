use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, customer) = app
        .call(Method::POST, "/api/v1/customers", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{customer}");
    customer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_create_get_list_update_delete_round_trip() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Acme Repairs").await;
    let token = token.as_str();

    let created = create(
        &app,
        token,
        json!({
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+1 416 555 0100",
            "service_address": "1 Analytical Way, Toronto",
            "notes": "Gate code 1234",
            "notifications": {"email": true, "sms": false}
        }),
    )
    .await;
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("cus_"), "{id}");
    assert_eq!(created["name"], "Ada Lovelace");
    assert_eq!(created["primary_payment_method"], Value::Null);
    assert_eq!(created["notifications"]["sms"], false);

    let (status, fetched) = app
        .call(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);

    let (status, list) = app
        .call(Method::GET, "/api/v1/customers", Some(token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().expect("data").len(), 1);
    assert_eq!(list["next_cursor"], Value::Null);

    let (status, updated) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{id}"),
            Some(token),
            Some(json!({"phone": null, "notes": "Dog in the yard"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["phone"], Value::Null);
    assert_eq!(updated["notes"], "Dog in the yard");
    assert_eq!(updated["email"], "ada@example.com");

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, problem) = app
        .call(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 404, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_every_customer_once_in_stable_order() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Pager").await;
    let mut created = Vec::new();
    for i in 0..7 {
        let c = create(&app, &token, json!({"name": format!("Customer {i}")})).await;
        created.push(c["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/customers?limit=3&cursor={c}"),
            None => "/api/v1/customers?limit=3".to_owned(),
        };
        let (status, page) = app.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= 3);
        seen.extend(
            data.iter()
                .map(|c| c["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every customer once, in creation order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_name_email_and_phone() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Search").await;
    create(
        &app,
        &token,
        json!({"name": "Grace Hopper", "email": "grace@navy.mil"}),
    )
    .await;
    create(
        &app,
        &token,
        json!({"name": "Alan Turing", "phone": "+44 20 7946 0000"}),
    )
    .await;
    for (q, expected) in [
        ("hopper", "Grace Hopper"),
        ("NAVY", "Grace Hopper"),
        ("7946", "Alan Turing"),
    ] {
        let (status, page) = app
            .call(
                Method::GET,
                &format!("/api/v1/customers?q={q}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let names: Vec<&str> = page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, vec![expected], "q={q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_survive_a_host_restart_on_the_same_state_dir() {
    let mut app = TestApp::spawn().await;
    let (_, token) = app.create_account("Durable").await;
    let created = create(&app, &token, json!({"name": "Persisted Person"})).await;
    let id = created["id"].as_str().expect("id").to_owned();
    app.restart().await;
    let (status, fetched) = app
        .call(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_bad_token_gets_401_problem() {
    let app = TestApp::spawn().await;
    app.create_account("Real").await;
    for token in [
        None,
        Some("not-a-token"),
        Some("mio_0000000000000000000000000000000000000000"),
    ] {
        let res = {
            let mut req = app.client.get(app.url("/api/v1/customers"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.expect("request")
        };
        assert_eq!(res.status(), 401, "token {token:?}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "token {token:?}"
        );
        assert!(res.headers().contains_key("www-authenticate"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_customer_answers_404_and_is_untouched() {
    let app = TestApp::spawn().await;
    let (_, token_a) = app.create_account("A").await;
    let (_, token_b) = app.create_account("B").await;
    let customer = create(&app, &token_a, json!({"name": "Private Person"})).await;
    let path = format!("/api/v1/customers/{}", customer["id"].as_str().expect("id"));

    let (status, _) = app.call(Method::GET, &path, Some(&token_b), None).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token_b),
            Some(json!({"name": "Hijacked"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.call(Method::DELETE, &path, Some(&token_b), None).await;
    assert_eq!(status, 404);
    let (_, list_b) = app
        .call(Method::GET, "/api/v1/customers", Some(&token_b), None)
        .await;
    assert_eq!(list_b["data"], json!([]));

    let (status, still) = app.call(Method::GET, &path, Some(&token_a), None).await;
    assert_eq!(status, 200);
    assert_eq!(still, customer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_get_400_problem_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Strict").await;
    let cases: Vec<(&str, String)> = vec![
        ("malformed json", "{\"name\": ".to_owned()),
        ("wrong type", json!({"name": 42}).to_string()),
        (
            "unknown field",
            json!({"name": "X", "nickname": "Y"}).to_string(),
        ),
        (
            "missing name",
            json!({"email": "x@example.com"}).to_string(),
        ),
        ("blank name", json!({"name": "   "}).to_string()),
        (
            "bad email",
            json!({"name": "X", "email": "not-an-email"}).to_string(),
        ),
    ];
    for (what, body) in cases {
        let res = app
            .client
            .post(app.url("/api/v1/customers"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 400, "{what}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let problem: Value = res.json().await.expect("problem json");
        assert_eq!(problem["status"], 400, "{what}: {problem}");
        assert!(
            problem["type"].is_string() && problem["detail"].is_string(),
            "{what}: {problem}"
        );
    }
    let (_, list) = app
        .call(Method::GET, "/api/v1/customers", Some(&token), None)
        .await;
    assert_eq!(list["data"], json!([]), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_patch_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Strict").await;
    let customer = create(
        &app,
        &token,
        json!({"name": "Keep Me", "email": "keep@example.com"}),
    )
    .await;
    let path = format!("/api/v1/customers/{}", customer["id"].as_str().expect("id"));
    let (status, problem) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"name": "New Name", "email": "broken"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (_, after) = app.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(after, customer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_rejected_with_413() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Big").await;
    let notes = "x".repeat(2 << 20);
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "Big", "notes": notes})),
        )
        .await;
    assert_eq!(status, 413, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_customer_id_and_bad_limit_get_clear_errors() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Ids").await;
    let (status, _) = app
        .call(
            Method::GET,
            "/api/v1/customers/not-an-id",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        status, 404,
        "a path segment that cannot be a customer id names no customer"
    );
    for limit in ["0", "201", "ten"] {
        let (status, problem) = app
            .call(
                Method::GET,
                &format!("/api/v1/customers?limit={limit}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 400, "limit={limit}: {problem}");
    }
    let (status, _) = app
        .call(
            Method::GET,
            "/api/v1/customers?cursor=garbage!!",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 400);
}

/// The hot routes run their statement before the token is checked on its own
/// (`mio_platform::owner`): a well-formed token that names no account must still get 401 from
/// each of them, ahead of any 400 or 404, and must write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_token_on_the_hot_routes_gets_401_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Real").await;
    let ada = create(&app, &token, json!({"name": "Ada"})).await;
    let ada_id = ada["id"].as_str().expect("id");
    let stranger = mio_shared::ApiToken::from_random(&[7; 32]);
    let stranger = Some(stranger.expose_secret());
    let bookings_of_ada = format!("/api/v1/bookings?customer_id={ada_id}");
    let booking = json!({"customer_id": ada_id, "service_type": "standard",
        "start_at": "2030-01-01T10:00:00Z", "end_at": "2030-01-01T12:00:00Z",
        "amount_cents": 12500, "currency": "cad"});
    let requests = [
        (
            Method::POST,
            "/api/v1/customers".to_owned(),
            Some(json!({"name": "Eve"})),
        ),
        (
            Method::POST,
            "/api/v1/customers".to_owned(),
            Some(json!({"name": ""})),
        ),
        (
            Method::POST,
            "/api/v1/bookings".to_owned(),
            Some(booking.clone()),
        ),
        (
            Method::POST,
            "/api/v1/bookings".to_owned(),
            Some(json!({"customer_id": ada_id})),
        ),
        (Method::GET, format!("/api/v1/customers/{ada_id}"), None),
        (Method::GET, "/api/v1/customers?limit=nope".to_owned(), None),
        (Method::GET, "/api/v1/activity".to_owned(), None),
    ];
    for (method, path, body) in requests {
        let (status, answer) = app.call(method.clone(), &path, stranger, body).await;
        assert_eq!(status, 401, "{method} {path}: {answer}");
        assert_eq!(answer["status"], 401, "{method} {path}: {answer}");
    }
    let (_, customers) = app
        .call(Method::GET, "/api/v1/customers", Some(&token), None)
        .await;
    let names: Vec<&str> = customers["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Ada"]);
    let count_bookings = || async {
        let (_, page) = app
            .call(Method::GET, &bookings_of_ada, Some(&token), None)
            .await;
        page["data"].as_array().map(Vec::len)
    };
    assert_eq!(count_bookings().await, Some(0));
    // The same booking under the account's own token is created and counted.
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(&token),
            Some(booking),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(count_bookings().await, Some(1));
}
