//! `GET/PUT /api/v1/settings/automations` and `/settings/miopay`, and re-planning on a rules
//! change.

use crate::bookings::{
    account, book, customer, days_ahead, instant, put_rules, rules, run_of, visit,
};
use chrono::Duration;
use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

async fn get_rules(app: &TestApp, token: &str) -> Value {
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/settings/automations",
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_before_the_first_put_say_not_configured_and_propose_defaults() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let body = get_rules(&app, &token).await;
    assert_eq!(body["configured"], false);
    assert_eq!(body["timezone"], "America/Toronto");
    assert_eq!(body["payment"]["trigger"], "before_start");
    assert_eq!(body["payment"]["offset_minutes"], 1440);
    assert_eq!(body["feedback"]["stale_after_minutes"], 7 * 24 * 60);

    let mut wanted = rules("after_end", 60);
    wanted["payment"]["local_time"] = json!("09:00");
    wanted["payment"]["service_types"] =
        json!({"deep_clean": {"trigger": "before_start", "offset_minutes": 2880}});
    let stored = put_rules(&app, &token, wanted).await;
    assert_eq!(stored["configured"], true);
    assert_eq!(stored["payment"]["trigger"], "after_end");
    assert_eq!(stored["payment"]["local_time"], "09:00");
    assert_eq!(
        stored["payment"]["service_types"]["deep_clean"]["offset_minutes"],
        2880
    );
    assert_eq!(stored["feedback"]["delay_minutes"], 120);
    assert_eq!(get_rules(&app, &token).await, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_are_refused_with_every_field_error_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let (status, problem) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            Some(&token),
            Some(json!({
                "payment": {"enabled": true, "trigger": "whenever", "offset_minutes": -1,
                            "local_time": "9am"},
                "feedback": {"enabled": true, "delay_minutes": 600, "stale_after_minutes": 60}
            })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "payment.trigger",
            "payment.offset_minutes",
            "payment.local_time",
            "feedback.stale_after_minutes"
        ]
    );

    let (status, problem) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            Some(&token),
            Some(json!({"payment": {"enabled": true}, "colour": "red"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "colour");
    assert_eq!(
        get_rules(&app, &token).await["configured"],
        false,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_change_replans_existing_bookings_runs() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    put_rules(&app, &token, rules("before_start", 24 * 60)).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let start = days_ahead(5);
    let booking = book(&app, &token, visit(&customer_id, "standard", start)).await;
    let id = booking["id"].as_str().expect("id");
    let first = run_of(&app, &token, id, "payment").await;

    put_rules(&app, &token, rules("before_start", 120)).await;
    let moved = run_of(&app, &token, id, "payment").await;
    assert_eq!(moved["id"], first["id"]);
    assert_eq!(instant(&moved["due_at"]), start - Duration::minutes(120));

    let mut off = rules("before_start", 120);
    off["payment"]["enabled"] = json!(false);
    put_rules(&app, &token, off).await;
    assert_eq!(
        run_of(&app, &token, id, "payment").await["status"],
        "cancelled"
    );

    put_rules(&app, &token, rules("after_end", 0)).await;
    let back = run_of(&app, &token, id, "payment").await;
    assert_eq!(
        back["status"], "scheduled",
        "re-enabling brings the run back"
    );
    assert_eq!(instant(&back["due_at"]), start + Duration::hours(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_rules_put_plans_runs_for_upcoming_bookings_made_before_it() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let customer_id = customer(&app, &token, "Ada").await;
    let start = days_ahead(3);
    let mut ids = Vec::new();
    for n in 0..3 {
        let booking = book(
            &app,
            &token,
            visit(&customer_id, "standard", start + Duration::days(n)),
        )
        .await;
        ids.push(booking["id"].as_str().expect("id").to_owned());
    }
    put_rules(&app, &token, rules("before_start", 60)).await;
    for (n, id) in ids.iter().enumerate() {
        let run = run_of(&app, &token, id, "payment").await;
        assert_eq!(
            instant(&run["due_at"]),
            start + Duration::days(n as i64) - Duration::hours(1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_miopay_needs_a_stripe_account_id() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let (status, body) = app
        .call(Method::GET, "/api/v1/settings/miopay", Some(&token), None)
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"enabled": false, "stripe_account_id": null, "ready": false,
                   "reason": "MioPay is off"})
        )
    );

    for bad in [
        json!({"enabled": true}),
        json!({"enabled": true, "stripe_account_id": "cus_123"}),
    ] {
        let (status, problem) = app
            .call(
                Method::PUT,
                "/api/v1/settings/miopay",
                Some(&token),
                Some(bad),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "stripe_account_id");
    }

    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/settings/miopay",
            Some(&token),
            Some(json!({"enabled": true, "stripe_account_id": "acct_1Abc234"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"enabled": true, "stripe_account_id": "acct_1Abc234", "ready": true})
        )
    );
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/settings/miopay",
            Some(&token),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"enabled": false, "stripe_account_id": "acct_1Abc234", "ready": false,
                   "reason": "MioPay is off"})
        ),
        "turning it off keeps the account id"
    );
}

/// Whoever names a connected account can charge through it with the platform's key, so a
/// Stripe account another business already has is refused, and nothing of either changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_account_serves_one_business() {
    let app = TestApp::spawn().await;
    let (first, second) = (account(&app).await, account(&app).await);
    let put = |token: String, body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                "/api/v1/settings/miopay",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let (status, _) = put(
        first.clone(),
        json!({"enabled": true, "stripe_account_id": "acct_1Shared"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = put(
        second.clone(),
        json!({"enabled": true, "stripe_account_id": "acct_1Own"}),
    )
    .await;
    assert_eq!(status, 200);

    for body in [
        json!({"enabled": true, "stripe_account_id": "acct_1Shared"}),
        json!({"enabled": false, "stripe_account_id": "acct_1Shared"}),
    ] {
        let (status, problem) = put(second.clone(), body).await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem["type"], "/problems/conflict");
    }
    let miopay = |token: String| {
        let app = &app;
        async move {
            app.call(Method::GET, "/api/v1/settings/miopay", Some(&token), None)
                .await
        }
    };
    assert_eq!(
        miopay(second.clone()).await,
        (
            200,
            json!({"enabled": true, "stripe_account_id": "acct_1Own", "ready": true})
        ),
        "the refused request changed nothing"
    );
    assert_eq!(
        miopay(first.clone()).await.1["stripe_account_id"],
        "acct_1Shared"
    );

    // Once the first business lets it go, the other may connect it; naming its own account
    // again, or turning MioPay off without naming one, is never refused.
    let (status, _) = put(
        first.clone(),
        json!({"enabled": false, "stripe_account_id": null}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = put(
        second.clone(),
        json!({"enabled": true, "stripe_account_id": "acct_1Shared"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = put(
        second.clone(),
        json!({"enabled": true, "stripe_account_id": "acct_1Shared"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = put(first, json!({"enabled": false})).await;
    assert_eq!(status, 200);
}
