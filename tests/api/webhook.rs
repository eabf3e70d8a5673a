//! The `stripe-webhook` component and exactly-once charging under Stripe's real rules, against
//! the fake Stripe: signatures, duplicates and order, lost answers settled by webhook or never,
//! resends that are the stored request, requests Stripe accepts, refused credentials, and an
//! answer that never ends.

use std::time::Duration;

use crate::support::{events_of, openapi, unix_now};
use crate::tick::{Biz, CARD, PRICE, STRIPE_ACCOUNT, setup, setup_with};
use mio_tests::Options;
use mio_tests::fake_stripe::{FakeStripe, Outcome};
use reqwest::Method;
use serde_json::{Value, json};

/// Every row of the tables a webhook may touch, as text: equal snapshots, nothing changed.
/// (No route shows every row, so this reads the app's SQLite file.)
pub(crate) fn snapshot(biz: &Biz) -> String {
    snapshot_of(biz, None)
}

/// [`snapshot`] of one account's rows only (`None`: every account's).
pub(crate) fn snapshot_of(biz: &Biz, account: Option<&str>) -> String {
    let db = biz.db();
    let mut out = String::new();
    for table in [
        "automation_jobs",
        "payment_attempts",
        "payment_requests",
        "bookings",
        "activity",
        "stripe_events",
        "miopay_status",
        "customers",
        "payment_methods",
        "payment_refunds",
        "payment_method_requests",
    ] {
        let mut statement = db
            .prepare(&format!(
                "SELECT * FROM {table} WHERE ?1 IS NULL OR account_id = ?1 ORDER BY rowid"
            ))
            .expect("query");
        let columns = statement.column_count();
        let rows = statement
            .query_map([account], |row| {
                (0..columns)
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("rows")
            .collect::<Result<Vec<_>, _>>()
            .expect("values");
        out.push_str(&format!("{table}: {rows:?}\n"));
    }
    out
}

/// [`snapshot_of`] without the ids of the events received: what an event changed besides being
/// remembered.
pub(crate) fn without_events(biz: &Biz, account: Option<&str>) -> Vec<String> {
    snapshot_of(biz, account)
        .lines()
        .filter(|l| !l.starts_with("stripe_events"))
        .map(str::to_owned)
        .collect()
}

/// Delivers every event the fake has not delivered yet; each must be answered 200, and there
/// must be at least one.
pub(crate) async fn deliver_all(biz: &Biz) {
    let delivered = biz.stripe.deliver_pending().await;
    assert!(!delivered.is_empty(), "Stripe had no event to deliver");
    for (id, status) in delivered {
        assert_eq!(status, 200, "{id}");
    }
}

/// POSTs `payload` to the app's webhook with `signature` (none when `None`).
async fn post(biz: &Biz, payload: &str, signature: Option<String>) -> (u16, Value) {
    let mut request = biz
        .app
        .client
        .post(biz.app.url("/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.expect("delivery");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// POSTs `event` to the app's webhook, signed now as Stripe signs.
pub(crate) async fn post_signed(biz: &Biz, event: &Value) -> (u16, Value) {
    let payload = event.to_string();
    let signature = FakeStripe::signature_header(biz.stripe.webhook_secret(), unix_now(), &payload);
    post(biz, &payload, Some(signature)).await
}

/// The fake's event `id`, as it sends it (to be altered and sent by [`post_signed`]).
pub(crate) fn stored_event(biz: &Biz, id: &str) -> Value {
    serde_json::from_str(&biz.stripe.event_payload(id).expect("payload")).expect("json")
}

/// `GET /api/v1/settings/miopay`.
pub(crate) async fn miopay_settings(biz: &Biz) -> Value {
    biz.get("/api/v1/settings/miopay").await
}

/// A booking whose charge went through at Stripe but whose answer was a 500: unknown here.
async fn charged_but_unknown(biz: &Biz) -> String {
    let booking = biz.booking(2).await;
    biz.stripe.push_outcome(Outcome::ChargeThenServerError);
    let summary = biz.tick().await;
    assert_eq!(summary["unknown"], 1, "{summary}");
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
    booking
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_settled_by_the_webhook_once_however_often_it_arrives() {
    let biz = setup().await;
    let booking = charged_but_unknown(&biz).await;
    assert_eq!(
        biz.balance(&booking).await,
        PRICE,
        "not known to be paid yet"
    );

    deliver_all(&biz).await;
    assert_eq!(biz.job(&booking).await.0, "succeeded");
    assert_eq!(biz.balance(&booking).await, 0);
    let after_first = snapshot(&biz);

    // The same event twice more changes nothing.
    let succeeded = events_of(&biz.stripe, "payment_intent.succeeded");
    assert_eq!(succeeded.len(), 1);
    for _ in 0..2 {
        assert_eq!(biz.stripe.deliver(&succeeded[0]).await, 200);
    }
    assert_eq!(
        snapshot(&biz),
        after_first,
        "a repeated event changes nothing"
    );

    assert_eq!(
        biz.stripe.succeeded_charges().len(),
        1,
        "one charge at Stripe"
    );
    let statuses: Vec<String> = biz
        .activity(&booking)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(statuses, ["retrying", "success"]);
    let summary = biz.tick().await;
    assert_eq!(summary["claimed"], 0, "nothing left to charge: {summary}");
    assert_eq!(
        biz.stripe.requests_to("POST", "/v1/payment_intents").len(),
        1,
        "never sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_or_body_is_refused_with_400_and_changes_nothing() {
    let biz = setup().await;
    let booking = charged_but_unknown(&biz).await;
    let id = &events_of(&biz.stripe, "payment_intent.succeeded")[0];
    let payload = biz.stripe.event_payload(id).expect("payload");
    let before = snapshot(&biz);

    let secret = biz.stripe.webhook_secret().to_owned();
    let now = unix_now();
    let tampered = payload.replacen("succeeded", "succeedeD", 1);
    let oversized = format!(
        "{},\"pad\":\"{}\"}}",
        &payload[..payload.len() - 1],
        "x".repeat(1 << 20)
    );
    let cases: Vec<(&str, String, Option<String>)> = vec![
        (
            "tampered body",
            tampered.clone(),
            Some(FakeStripe::signature_header(&secret, now, &payload)),
        ),
        (
            "wrong secret",
            payload.clone(),
            Some(FakeStripe::signature_header("whsec_wrong", now, &payload)),
        ),
        (
            "stale timestamp",
            payload.clone(),
            Some(FakeStripe::signature_header(&secret, now - 301, &payload)),
        ),
        ("missing header", payload.clone(), None),
        (
            "garbled header",
            payload.clone(),
            Some("t=soon,v1=nothex".into()),
        ),
        ("no v1", payload.clone(), Some(format!("t={now}"))),
        (
            "over 1 MiB",
            oversized.clone(),
            Some(FakeStripe::signature_header(&secret, now, &oversized)),
        ),
        (
            "signed but not an event",
            "[1,2,3]".into(),
            Some(FakeStripe::signature_header(&secret, now, "[1,2,3]")),
        ),
    ];
    for (what, body, signature) in cases {
        let (status, problem) = post(&biz, &body, signature).await;
        assert_eq!(status, 400, "{what}: {problem}");
        assert_eq!(problem["type"], "/problems/invalid-webhook", "{what}");
        assert!(problem["detail"].as_str().is_some(), "{what}");
        assert_eq!(snapshot(&biz), before, "{what}: nothing changed");
    }
    assert_eq!(biz.job(&booking).await.0, "unknown");

    // During a secret roll Stripe signs twice; one right v1 is enough.
    let right = FakeStripe::signature_header(&secret, now, &payload);
    let right_v1 = right.split(',').nth(1).expect("t=…,v1=…");
    let rotated = format!("t={now},v1={},{right_v1}", "f".repeat(64));
    let (status, body) = post(&biz, &payload, Some(rotated)).await;
    assert_eq!((status, body), (200, json!({"received": true})));
    assert_eq!(biz.job(&booking).await.0, "succeeded");
    let doc = openapi(&biz.app).await;
    mio_tests::assert_documented(
        &doc,
        &Method::POST,
        "/webhooks/stripe",
        200,
        &json!({"received": true}),
    );
    let (status, problem) = post(&biz, &payload, None).await;
    assert_eq!(status, 400, "{problem}");
    mio_tests::assert_documented(&doc, &Method::POST, "/webhooks/stripe", status, &problem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_any_order_end_in_the_same_state_and_a_late_failure_never_undoes_a_success() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    // Attempt 1 is soft-declined; attempt 2 charges but its answer is a 500.
    biz.stripe
        .push_outcome(Outcome::decline("insufficient_funds"));
    assert_eq!(biz.tick().await["retrying"], 1);
    biz.make_retry_due(&booking);
    biz.stripe.push_outcome(Outcome::ChargeThenServerError);
    assert_eq!(biz.tick().await["unknown"], 1);

    // Newest first, each twice.
    let mut ids: Vec<String> = biz
        .stripe
        .events()
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    let kinds = ["payment_intent.payment_failed", "payment_intent.succeeded"];
    for kind in kinds {
        assert_eq!(
            events_of(&biz.stripe, kind).len(),
            1,
            "one {kind} among {ids:?}"
        );
    }
    ids.reverse();
    for id in ids.iter().chain(ids.iter()) {
        assert_eq!(biz.stripe.deliver(id).await, 200, "{id}");
    }
    assert_eq!(biz.job(&booking).await.0, "succeeded");
    assert_eq!(biz.balance(&booking).await, 0);

    // A payment_failed for the succeeded PaymentIntent, arriving after it: Success stays.
    let succeeded = &events_of(&biz.stripe, "payment_intent.succeeded")[0];
    let mut event = stored_event(&biz, succeeded);
    event["id"] = json!("evt_late_failure");
    event["type"] = json!("payment_intent.payment_failed");
    event["data"]["object"]["status"] = json!("requires_payment_method");
    event["data"]["object"]["last_payment_error"] = json!({
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined."
    });
    let before = without_events(&biz, None);
    let (status, answer) = post_signed(&biz, &event).await;
    assert_eq!((status, answer), (200, json!({"received": true})));
    assert_eq!(biz.job(&booking).await.0, "succeeded");
    assert_eq!(biz.balance(&booking).await, 0);
    // The attempts' ledger (no route shows it).
    let ledger: Vec<(i64, Option<String>)> = {
        let db = biz.db();
        let mut statement = db
            .prepare("SELECT attempt, outcome FROM payment_attempts ORDER BY attempt")
            .expect("query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("ledger")
    };
    assert_eq!(
        ledger,
        [(1, Some("declined".into())), (2, Some("succeeded".into()))]
    );
    assert_eq!(
        without_events(&biz, None),
        before,
        "only the event's id was remembered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_can_never_touch_another_accounts_data() {
    let biz = setup().await;
    let booking = charged_but_unknown(&biz).await;
    // A second business on its own connected account.
    biz.other_business("acct_1OtherBiz").await;

    let id = &events_of(&biz.stripe, "payment_intent.succeeded")[0];
    let original = stored_event(&biz, id);
    let before = without_events(&biz, None);
    for (n, account) in ["acct_1OtherBiz", "acct_1NobodyKnows"].iter().enumerate() {
        // Our job's metadata, but sent for another connected account.
        let mut event = original.clone();
        event["id"] = json!(format!("evt_foreign_{n}"));
        event["account"] = json!(account);
        let (status, body) = post_signed(&biz, &event).await;
        assert_eq!(
            (status, body),
            (200, json!({"received": true})),
            "{account}"
        );
    }
    assert_eq!(without_events(&biz, None), before);
    assert_eq!(
        biz.job(&booking).await.0,
        "unknown",
        "still waiting for its own proof"
    );

    // The real one settles it.
    assert_eq!(biz.stripe.deliver(id).await, 200);
    assert_eq!(biz.job(&booking).await.0, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_is_the_first_request_byte_for_byte_after_the_customer_changed() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe.push_outcome(Outcome::ChargeThenDropConnection);
    assert_eq!(biz.tick().await["unknown"], 1);

    // In between, the business changes the customer's Stripe id, card and the booking's price.
    biz.stripe.add_payment_method(
        Some(STRIPE_ACCOUNT),
        "cus_NewStripeId",
        "pm_card_new",
        "mastercard",
        "4444",
        1,
        2031,
    );
    biz.ok(
        Method::PATCH,
        &format!("/api/v1/customers/{}", biz.customer),
        json!({"stripe_customer_id": "cus_NewStripeId"}),
    )
    .await;
    biz.ok(
        Method::PUT,
        &format!("/api/v1/customers/{}/payment-method", biz.customer),
        json!({"payment_method_id": "pm_card_new"}),
    )
    .await;
    biz.ok(
        Method::PATCH,
        &format!("/api/v1/bookings/{booking}"),
        json!({"amount_cents": PRICE + 500}),
    )
    .await;

    biz.make_retry_due(&booking);
    assert_eq!(biz.tick().await["succeeded"], 1);
    let posts = biz.stripe.requests_to("POST", "/v1/payment_intents");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].raw_body, posts[1].raw_body, "byte for byte");
    assert_eq!(posts[0].idempotency_key, posts[1].idempotency_key);
    assert_eq!(posts[0].stripe_account, posts[1].stripe_account);
    assert!(posts[1].replayed, "Stripe replayed the first result");
    assert_eq!(posts[1].status, Some(200));
    let charges = biz.stripe.succeeded_charges();
    assert_eq!(charges.len(), 1, "no second charge");
    assert_eq!(charges[0].payment_method.as_deref(), Some(CARD));
    assert_eq!(charges[0].amount, PRICE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_refuses_a_charge_that_could_redirect_but_accepts_ours() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    assert_eq!(biz.tick().await["succeeded"], 1);
    let ours = &biz.stripe.requests_to("POST", "/v1/payment_intents")[0];
    assert_eq!(ours.status, Some(200));
    assert_eq!(ours.form["payment_method_types"], json!(["card"]));
    assert_eq!(
        ours.header("content-length"),
        Some(ours.raw_body.len().to_string().as_str()),
        "sent with its length, not chunked"
    );
    assert_eq!(ours.header("transfer-encoding"), None);
    assert_eq!(biz.job(&booking).await.0, "succeeded");

    // The same charge without `payment_method_types`, on the same API version.
    let body: String = form_urlencoded::parse(ours.raw_body.as_bytes())
        .filter(|(key, _)| key != "payment_method_types[]")
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut form, (key, value)| {
                form.append_pair(&key, &value);
                form
            },
        )
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", biz.stripe.url()))
        .bearer_auth(biz.stripe.secret_key())
        .header("stripe-account", STRIPE_ACCOUNT)
        .header(
            "stripe-version",
            ours.header("stripe-version").expect("we send a version"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["param"], "return_url", "{error}");
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_platform_key_leaves_jobs_retrying_not_failed() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe.revoke_secret_key();
    for _ in 0..3 {
        let summary = biz.tick().await;
        assert_eq!(summary["failed"], 0, "{summary}");
        assert_eq!(biz.job(&booking).await.0, "retrying");
        biz.make_retry_due(&booking);
    }
    let activity = biz.activity(&booking).await;
    let (status, summary, _) = activity.last().expect("an entry");
    assert_eq!(status, "retrying");
    assert!(summary.contains("stripe_secret_key"), "{summary}");
    assert!(summary.contains("not the customer's card"), "{summary}");
    assert!(biz.stripe.charges().is_empty());

    biz.stripe.restore_secret_key();
    assert_eq!(biz.tick().await["succeeded"], 1);
    let (_, attempts, _) = biz.job(&booking).await;
    assert_eq!(
        attempts, 1,
        "the same attempt, never executed, was sent again"
    );
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_account_that_revoked_access_marks_miopay_not_ready_until_it_works_again() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe.revoke_account(STRIPE_ACCOUNT);
    let summary = biz.tick().await;
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(biz.job(&booking).await.0, "retrying");
    let miopay = miopay_settings(&biz).await;
    assert_eq!(miopay["ready"], false, "{miopay}");
    assert!(
        miopay["reason"]
            .as_str()
            .is_some_and(|r| r.contains("refused access")),
        "{miopay}"
    );
    mio_tests::assert_documented(
        &openapi(&biz.app).await,
        &Method::GET,
        "/api/v1/settings/miopay",
        200,
        &miopay,
    );

    biz.stripe.restore_account(STRIPE_ACCOUNT);
    biz.make_retry_due(&booking);
    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(miopay_settings(&biz).await["ready"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_never_ends_is_cut_off_while_the_job_is_still_leased() {
    // A host with no request timeout (as Spin by default).
    let mut options = Options::default();
    options.limits.request_timeout = Duration::from_secs(3600);
    let biz = setup_with(options).await;
    let booking = biz.booking(2).await;
    biz.stripe
        .push_outcome(Outcome::ChargeThenTrickle(Duration::from_millis(500)));

    // Neither the host nor the fake ever ends this exchange: the tick answering at all (the
    // test client would give up after 60 s) shows it cut the answer off itself, well inside
    // the job's 2-minute lease.
    let summary = biz.tick().await;
    assert_eq!(summary["unknown"], 1, "{summary}");
    assert_eq!(biz.job(&booking).await.0, "unknown");
    assert_eq!(biz.tick().await["claimed"], 0, "waiting for its backoff");

    // The charge went through; the resend gets the saved result.
    biz.make_retry_due(&booking);
    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
    assert_eq!(biz.balance(&booking).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_dies_mid_request_is_never_resent_as_if_nothing_ran() {
    // A host that stops a request after 3 s, and a Stripe that charges but never answers: the
    // tick dies with its request in flight, before it could store anything about the answer.
    let mut options = Options::default();
    options.limits.request_timeout = Duration::from_secs(3);
    let biz = setup_with(options).await;
    let booking = biz.booking(2).await;
    biz.stripe.push_outcome(Outcome::ChargeThenHang);
    let (status, answer) = biz
        .app
        .call(
            Method::POST,
            "/api/v1/internal/tick",
            Some(mio_tests::TICK_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 500, "the host stopped the run: {answer}");
    assert_eq!(biz.stripe.succeeded_charges().len(), 1, "Stripe charged");
    assert_eq!(biz.job(&booking).await.0, "running", "left leased");

    // A day later Stripe has pruned the key, and the lease long expired: a resend would
    // execute anew. The attempt must be settled by proof instead.
    biz.stripe.expire_idempotency_keys();
    let a_day_ago = crate::support::now_millis() - 25 * 3600 * 1000;
    biz.sql(
        "UPDATE payment_attempts SET started_at = ?1 WHERE booking_id = ?2",
        &[&a_day_ago.to_string(), &booking],
    );
    biz.sql(
        "UPDATE automation_jobs SET lease_until = 0 WHERE booking_id = ?1",
        &[&booking],
    );
    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(
        biz.stripe.succeeded_charges().len(),
        1,
        "never charged twice"
    );
    assert_eq!(
        biz.stripe.requests_to("POST", "/v1/payment_intents").len(),
        1,
        "nothing was sent again"
    );
    assert_eq!(biz.balance(&booking).await, 0);
}
