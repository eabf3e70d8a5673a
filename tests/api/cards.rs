//! The card on file, against the fake Stripe delivering signed events: the request-a-card link,
//! a saved card becoming primary, and what Stripe changes later (removed and updated cards,
//! refunds, disputes, an account that cannot charge), each only ever for its own account.

use crate::support::{events_of, openapi};
use crate::tick::{Biz, CARD, PRICE, STRIPE_ACCOUNT, setup};
use crate::webhook::{deliver_all, miopay_settings, post_signed, stored_event, without_events};
use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

/// A second customer, with no Stripe customer and no card yet; returns its id.
async fn new_customer(biz: &Biz) -> String {
    let (status, customer) = biz
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"name": "Grace Hopper", "email": "grace@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    customer["id"].as_str().expect("id").to_owned()
}

/// `POST /api/v1/customers/{customer}/payment-method-requests` with `body`, and the
/// `Idempotency-Key` `key` if given: status and answer.
pub(crate) async fn post_request(
    biz: &Biz,
    customer: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = biz
        .app
        .client
        .post(biz.app.url(&format!(
            "/api/v1/customers/{customer}/payment-method-requests"
        )))
        .bearer_auth(&biz.token)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// A request for a card link (not sent), with `key` if given: status and answer.
async fn request_link(biz: &Biz, customer: &str, key: Option<&str>) -> (u16, Value) {
    let body = json!({"return_url": "https://sparkle.example/card-saved"});
    post_request(biz, customer, &body, key).await
}

/// [`request_link`], which must succeed; the Stripe Checkout Session it opened.
async fn open_session(biz: &Biz, customer: &str) -> String {
    let (status, request) = request_link(biz, customer, None).await;
    assert_eq!(status, 201, "{request}");
    let session = biz
        .stripe
        .checkout_sessions()
        .into_iter()
        .find(|s| s["url"] == request["url"])
        .unwrap_or_else(|| panic!("no Checkout Session behind {request}"));
    session["id"].as_str().expect("session id").to_owned()
}

async fn customer(biz: &Biz, id: &str) -> Value {
    biz.get(&format!("/api/v1/customers/{id}")).await
}

/// The warning codes of the customer's payment automation.
async fn payment_warnings(biz: &Biz, customer: &str) -> Vec<String> {
    let view = biz
        .get(&format!("/api/v1/customers/{customer}/automations"))
        .await;
    mio_tests::assert_documented(
        &openapi(&biz.app).await,
        &Method::GET,
        "/api/v1/customers/{id}/automations",
        200,
        &view,
    );
    view["automations"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["automation"] == "payment")
        .expect("the payment entry")["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["code"].as_str().expect("code").to_owned())
        .collect()
}

/// The ids of a page of payment-method requests, as listed.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// `GET /api/v1/customers/{customer}/payment-method-requests` on `app` as `token`: every request
/// stored for the customer (a single page), and the customer's Stripe customer id.
async fn stored_requests(app: &TestApp, token: &str, customer: &str) -> (Vec<Value>, Value) {
    let path = format!("/api/v1/customers/{customer}");
    let (status, listed) = app
        .call(
            Method::GET,
            &format!("{path}/payment-method-requests?limit=200"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["next_cursor"], Value::Null, "{listed}");
    let (status, found) = app.call(Method::GET, &path, Some(token), None).await;
    assert_eq!(status, 200, "{found}");
    (
        listed["data"].as_array().expect("data").clone(),
        found["stripe_customer_id"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_link_saves_a_card_that_the_next_charge_uses() {
    let biz = setup().await;
    let grace = new_customer(&biz).await;
    assert_eq!(
        payment_warnings(&biz, &grace).await,
        ["no_primary_card"],
        "payment is on but cannot succeed yet"
    );
    let (status, request) = request_link(&biz, &grace, None).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["status"], "open");
    assert!(
        request["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("pmr_"))
    );
    let url = request["url"].as_str().expect("url");
    let sessions = biz.stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["url"], url);
    assert_eq!(sessions[0]["mode"], "setup");
    let stripe_customer = customer(&biz, &grace).await["stripe_customer_id"]
        .as_str()
        .expect("a Stripe customer was created and linked")
        .to_owned();
    assert_eq!(sessions[0]["customer"], stripe_customer.as_str());
    let doc = openapi(&biz.app).await;
    let template = "/api/v1/customers/{id}/payment-method-requests";
    mio_tests::assert_documented(&doc, &Method::POST, template, 201, &request);

    let session = sessions[0]["id"].as_str().expect("session id");
    biz.stripe
        .complete_checkout_session(session, "pm_card_saved", "mastercard", "4444", 8, 2031);
    deliver_all(&biz).await;

    let card = &customer(&biz, &grace).await["primary_payment_method"];
    assert_eq!(card["id"], "pm_card_saved");
    assert_eq!(card["last4"], "4444");
    assert_eq!(
        (card["exp_month"].clone(), card["exp_year"].clone()),
        (json!(8), json!(2031))
    );
    let listed = biz
        .get(&format!(
            "/api/v1/customers/{grace}/payment-method-requests"
        ))
        .await;
    assert_eq!(ids(&listed), [request["id"].as_str().expect("id")]);
    assert_eq!(listed["data"][0]["status"], "completed", "{listed}");
    mio_tests::assert_documented(&doc, &Method::GET, template, 200, &listed);
    let activity = biz.customer_activity(&grace).await;
    assert_eq!(activity.len(), 1, "{activity:?}");
    assert!(activity[0].1.starts_with("Card added"), "{}", activity[0].1);
    assert!(payment_warnings(&biz, &grace).await.is_empty());

    let booking = biz.booking_of(&grace, 2).await;
    assert_eq!(biz.tick().await["succeeded"], 1);
    let charges = biz.stripe.succeeded_charges();
    let grace_charges: Vec<_> = charges
        .iter()
        .filter(|c| c.metadata.get("mio_booking_id") == Some(&booking))
        .collect();
    assert_eq!(grace_charges.len(), 1);
    assert_eq!(
        grace_charges[0].payment_method.as_deref(),
        Some("pm_card_saved")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_makes_one_stripe_customer_and_one_session() {
    let biz = setup().await;
    let grace = new_customer(&biz).await;
    let (first_status, first) = request_link(&biz, &grace, Some("link-1")).await;
    let (again_status, again) = request_link(&biz, &grace, Some("link-1")).await;
    assert_eq!((first_status, again_status), (201, 201));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["url"], again["url"]);
    assert_eq!(biz.stripe.requests_to("POST", "/v1/customers").len(), 1);
    assert_eq!(biz.stripe.checkout_sessions().len(), 1);
    // Every POST to Stripe carried a key derived from our ids.
    let posts: Vec<_> = biz
        .stripe
        .requests_to("POST", "/v1/customers")
        .into_iter()
        .chain(biz.stripe.requests_to("POST", "/v1/checkout/sessions"))
        .collect();
    assert!(posts.len() >= 2, "a customer and a session were made");
    for post in posts {
        let key = post.idempotency_key.expect("a key");
        assert!(key.starts_with("mio-"), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_typed_with_spaces_and_brackets_reaches_stripe_within_its_limit() {
    let biz = setup().await;
    // 22 characters as typed: Stripe refuses a customer `phone` over 20.
    let (status, customer) = biz
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"name": "Ivy", "phone": "+44 (20) 7946-0958 123"})),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    let ivy = customer["id"].as_str().expect("id").to_owned();
    open_session(&biz, &ivy).await;
    let created = biz.stripe.customers();
    let phones: Vec<&str> = created.iter().filter_map(|c| c["phone"].as_str()).collect();
    assert_eq!(phones, ["+442079460958123"]);
    // The customer keeps the number as typed.
    assert_eq!(customer["phone"], "+44 (20) 7946-0958 123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_miopay_a_request_is_a_conflict_and_nothing_is_stored() {
    let biz = setup().await;
    let grace = new_customer(&biz).await;
    biz.ok(
        Method::PUT,
        "/api/v1/settings/miopay",
        json!({"enabled": false}),
    )
    .await;
    let (status, problem) = request_link(&biz, &grace, None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(biz.stripe.requests_to("POST", "/v1/customers").is_empty());
    assert_eq!(
        stored_requests(&biz.app, &biz.token, &grace).await,
        (vec![], Value::Null),
        "no request stored, no Stripe customer linked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_stripe_cannot_be_reached_the_request_is_502_and_nothing_is_stored() {
    // An app whose Stripe base points at a closed port.
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Offline Cleaning").await;
    let (status, answer) = app
        .call(
            Method::PUT,
            "/api/v1/settings/miopay",
            Some(&token),
            Some(json!({"enabled": true, "stripe_account_id": STRIPE_ACCOUNT})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "Grace Hopper"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let (status, problem) = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{id}/payment-method-requests"),
            Some(&token),
            Some(json!({"return_url": "https://sparkle.example/ok"})),
        )
        .await;
    assert_eq!(status, 502, "{problem}");
    assert_eq!(problem["type"], "/problems/upstream-unavailable");
    assert_eq!(
        stored_requests(&app, &token, id).await,
        (vec![], Value::Null),
        "nothing half-stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_completion_events_in_either_order_change_the_card_once() {
    let biz = setup().await;
    let grace = new_customer(&biz).await;
    let session = open_session(&biz, &grace).await;
    biz.stripe
        .complete_checkout_session(&session, "pm_card_saved", "visa", "1881", 1, 2030);
    let completed = events_of(&biz.stripe, "checkout.session.completed");
    let succeeded = events_of(&biz.stripe, "setup_intent.succeeded");
    assert_eq!((completed.len(), succeeded.len()), (1, 1));
    for id in [&completed[0], &succeeded[0], &completed[0], &succeeded[0]] {
        assert_eq!(biz.stripe.deliver(id).await, 200);
    }
    assert_eq!(
        customer(&biz, &grace).await["primary_payment_method"]["id"],
        "pm_card_saved"
    );
    let activity = biz.customer_activity(&grace).await;
    assert_eq!(activity.len(), 1, "one change, one entry: {activity:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_card_fails_the_next_run_without_calling_stripe() {
    let biz = setup().await;
    biz.stripe.detach_payment_method(Some(STRIPE_ACCOUNT), CARD);
    deliver_all(&biz).await;
    assert_eq!(
        customer(&biz, &biz.customer).await["primary_payment_method"],
        Value::Null
    );
    let activity = biz.customer_activity(&biz.customer).await;
    assert!(
        activity
            .iter()
            .any(|(_, summary, _)| summary.contains("removed")),
        "{activity:?}"
    );
    let booking = biz.booking(2).await;
    assert_eq!(biz.tick().await["failed"], 1);
    let entries = biz.activity(&booking).await;
    assert_eq!(entries[0].2["message"], "no primary card");
    assert!(
        biz.stripe
            .requests_to("POST", "/v1/payment_intents")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_puts_the_amount_back_on_the_balance_once() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(biz.balance(&booking).await, 0);
    let pi = biz.stripe.succeeded_charges()[0].id.clone();
    biz.stripe.refund(&pi, Some(2_500));
    deliver_all(&biz).await;
    let refunded = events_of(&biz.stripe, "charge.refunded");
    assert_eq!(refunded.len(), 1, "{refunded:?}");
    assert_eq!(biz.stripe.deliver(&refunded[0]).await, 200, "a repeat");
    assert_eq!(biz.balance(&booking).await, 2_500);
    // (Matched from the start: the charge's own entry says "125.00 CAD".)
    let entries = biz.activity(&booking).await;
    let refunds: Vec<_> = entries
        .iter()
        .filter(|(_, summary, _)| summary.starts_with("Refunded 25.00 CAD"))
        .collect();
    assert_eq!(
        refunds.len(),
        1,
        "one entry for the refund, however often it arrives: {entries:?}"
    );
    assert_eq!(refunds[0].2["amount_refunded_cents"], 2_500);
    // A later run of the booking's payment charges only what is due again.
    biz.sql(
        "UPDATE automation_jobs SET status = 'retrying', next_attempt_at = 0 \
         WHERE booking_id = ?1",
        &[&booking],
    );
    assert_eq!(biz.tick().await["succeeded"], 1);
    let amounts: Vec<i64> = biz
        .stripe
        .succeeded_charges()
        .iter()
        .map(|c| c.amount)
        .collect();
    assert_eq!(amounts, [PRICE, 2_500]);
    assert_eq!(biz.balance(&booking).await, 0);
    biz.stripe.dispute(&pi, "fraudulent");
    deliver_all(&biz).await;
    assert!(
        biz.activity(&booking)
            .await
            .iter()
            .any(|(_, summary, _)| summary.contains("disputed")),
        "a dispute is in the activity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_cannot_charge_fails_runs_until_stripe_enables_it_again() {
    let biz = setup().await;
    biz.stripe.set_charges_enabled(STRIPE_ACCOUNT, false);
    deliver_all(&biz).await;
    let miopay = miopay_settings(&biz).await;
    assert_eq!(miopay["ready"], false, "{miopay}");
    let booking = biz.booking(2).await;
    assert_eq!(biz.tick().await["failed"], 1);
    let message = biz.activity(&booking).await[0].2["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(message.contains("cannot charge"), "{message}");
    assert!(
        biz.stripe
            .requests_to("POST", "/v1/payment_intents")
            .is_empty()
    );

    biz.stripe.set_charges_enabled(STRIPE_ACCOUNT, true);
    deliver_all(&biz).await;
    let next = biz.booking(3).await;
    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(biz.balance(&next).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_another_accounts_objects_change_nothing() {
    let biz = setup().await;
    // Another business whose connected account holds a card with the same id.
    biz.other_business("acct_1OtherBiz").await;
    biz.stripe.add_payment_method(
        Some("acct_1OtherBiz"),
        "cus_OtherStripe",
        CARD,
        "visa",
        "4242",
        12,
        2030,
    );
    let before = customer(&biz, &biz.customer).await;
    let snapshot_before = without_events(&biz, Some(&biz.account));
    biz.stripe
        .detach_payment_method(Some("acct_1OtherBiz"), CARD);
    biz.stripe.set_charges_enabled("acct_1OtherBiz", false);
    deliver_all(&biz).await;
    assert_eq!(
        without_events(&biz, Some(&biz.account)),
        snapshot_before,
        "the other account's events changed none of our rows"
    );

    // A saved-card event naming our customer, but for the other connected account.
    let grace = new_customer(&biz).await;
    let session = open_session(&biz, &grace).await;
    biz.stripe
        .complete_checkout_session(&session, "pm_card_saved", "visa", "1881", 1, 2030);
    let succeeded = events_of(&biz.stripe, "setup_intent.succeeded");
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    let mut event = stored_event(&biz, &succeeded[0]);
    event["id"] = json!("evt_foreign_setup");
    event["account"] = json!("acct_1OtherBiz");
    let (status, answer) = post_signed(&biz, &event).await;
    assert_eq!(status, 200, "{answer}");

    assert_eq!(
        customer(&biz, &biz.customer).await,
        before,
        "our card stays"
    );
    assert_eq!(
        customer(&biz, &grace).await["primary_payment_method"],
        Value::Null,
        "another account's event saved no card"
    );
    let miopay = miopay_settings(&biz).await;
    assert_eq!(miopay["ready"], true, "{miopay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_cards_deleted_stripe_customers_and_a_disconnect_show_up_in_state() {
    let biz = setup().await;
    biz.stripe
        .update_card(Some(STRIPE_ACCOUNT), CARD, 9, 2034, Some("1111"), true);
    deliver_all(&biz).await;
    let card = &customer(&biz, &biz.customer).await["primary_payment_method"];
    assert_eq!(
        (
            card["last4"].clone(),
            card["exp_month"].clone(),
            card["exp_year"].clone()
        ),
        (json!("1111"), json!(9), json!(2034))
    );

    // The business deletes the Stripe customer in Stripe itself.
    let stripe_customer = customer(&biz, &biz.customer).await["stripe_customer_id"].clone();
    let response = biz
        .app
        .client
        .delete(format!(
            "{}/v1/customers/{}",
            biz.stripe.url(),
            stripe_customer.as_str().expect("linked")
        ))
        .bearer_auth(biz.stripe.secret_key())
        .header("stripe-account", STRIPE_ACCOUNT)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status().as_u16(), 200);
    deliver_all(&biz).await;
    let after = customer(&biz, &biz.customer).await;
    assert_eq!(after["stripe_customer_id"], Value::Null);
    assert_eq!(after["primary_payment_method"], Value::Null);

    biz.stripe.deauthorize(STRIPE_ACCOUNT);
    deliver_all(&biz).await;
    let miopay = miopay_settings(&biz).await;
    assert_eq!(miopay["ready"], false, "{miopay}");
    assert!(
        miopay["reason"]
            .as_str()
            .is_some_and(|r| r.contains("disconnected")),
        "{miopay}"
    );
    // Connecting the account anew forgets the old connection's state.
    biz.ok(
        Method::PUT,
        "/api/v1/settings/miopay",
        json!({"enabled": true, "stripe_account_id": STRIPE_ACCOUNT}),
    )
    .await;
    let miopay = miopay_settings(&biz).await;
    assert_eq!(miopay["ready"], true, "{miopay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_newest_first_in_pages() {
    let biz = setup().await;
    let grace = new_customer(&biz).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let (status, request) = request_link(&biz, &grace, None).await;
        assert_eq!(status, 201, "{request}");
        made.push(request["id"].as_str().expect("id").to_owned());
    }
    let path = format!("/api/v1/customers/{grace}/payment-method-requests");
    let first = biz.get(&format!("{path}?limit=2")).await;
    assert_eq!(ids(&first), [made[2].clone(), made[1].clone()]);
    let cursor = first["next_cursor"].as_str().expect("more");
    let second = biz.get(&format!("{path}?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second), [made[0].clone()]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, problem) = biz
        .call(Method::GET, &format!("{path}?limit=0"), None)
        .await;
    assert_eq!(status, 400, "{problem}");
}
