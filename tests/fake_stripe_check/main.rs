//! Drives the fake Stripe (`mio_tests::fake_stripe`) over real HTTP and checks that it speaks
//! Stripe's wire format and does what the charging tests rely on.

use std::time::Duration;

use mio_tests::fake_stripe::{FakeStripe, Outcome};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

const ACCT_A: &str = "acct_1TestBusinessA";
const ACCT_B: &str = "acct_1TestBusinessB";

/// A fake with one card in each of two connected accounts.
async fn fake() -> FakeStripe {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(Some(ACCT_A), "cus_A", "pm_A", "visa", "4242", 12, 2034);
    fake.add_payment_method(Some(ACCT_B), "cus_B", "pm_B", "mastercard", "4444", 1, 2031);
    fake
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The parameters the charging code sends for a booking.
fn charge_form(job: &str) -> Vec<(String, String)> {
    [
        ("amount", "12500"),
        ("currency", "usd"),
        ("customer", "cus_A"),
        ("payment_method", "pm_A"),
        ("confirm", "true"),
        ("off_session", "true"),
        ("metadata[account_id]", "acc_1"),
        ("metadata[booking_id]", "bkg_1"),
        ("metadata[job_id]", job),
        ("description", "Booking bkg_1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `POST /v1/payment_intents` on account A.
async fn create(
    fake: &FakeStripe,
    form: &[(String, String)],
    key: Option<&str>,
) -> reqwest::Result<Response> {
    create_on(fake, &client(), ACCT_A, form, key).await
}

async fn create_on(
    fake: &FakeStripe,
    client: &Client,
    account: &str,
    form: &[(String, String)],
    key: Option<&str>,
) -> reqwest::Result<Response> {
    let mut req = client
        .post(format!("{}/v1/payment_intents", fake.url()))
        .bearer_auth(fake.secret_key())
        .header("Stripe-Account", account)
        .form(form);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.send().await
}

async fn get(fake: &FakeStripe, account: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut req = client()
        .get(format!("{}{path}", fake.url()))
        .bearer_auth(fake.secret_key());
    if let Some(account) = account {
        req = req.header("Stripe-Account", account);
    }
    let res = req.send().await.expect("GET answered");
    let status = res.status();
    (status, res.json().await.expect("JSON body"))
}

async fn json(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.expect("JSON body"))
}

/// Waits (up to 10 s) for `done`, for effects of requests the client already gave up on.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn requests_without_the_secret_key_are_refused_with_401_and_stripes_error_object() {
    let fake = fake().await;
    let url = format!("{}/v1/payment_methods/pm_A", fake.url());

    let res = client().get(&url).send().await.expect("answered");
    assert!(header(&res, "request-id").is_some_and(|id| id.starts_with("req_")));
    let (status, body) = json(res).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    let res = client()
        .get(&url)
        .bearer_auth("sk_test_not_the_right_one")
        .send()
        .await
        .expect("answered");
    let (status, body) = json(res).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");

    assert!(fake.secret_key().starts_with("sk_test_fake_"));
    let (status, _) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 200, "the bearer key is accepted");
}

#[tokio::test]
async fn http_basic_auth_with_the_key_as_user_name_is_accepted_as_stripe_does() {
    let fake = fake().await;
    let res = client()
        .get(format!("{}/v1/payment_methods/pm_A", fake.url()))
        .basic_auth(fake.secret_key(), Some(""))
        .header("Stripe-Account", ACCT_A)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_successful_off_session_charge_answers_a_succeeded_payment_intent() {
    let fake = fake().await;
    let res = create(&fake, &charge_form("job_1"), Some("job_1-attempt-1"))
        .await
        .expect("answered");
    assert_eq!(
        header(&res, "idempotency-key").as_deref(),
        Some("job_1-attempt-1")
    );
    assert!(header(&res, "idempotent-replayed").is_none());
    let (status, pi) = json(res).await;
    assert_eq!(status, 200);
    assert!(pi["id"].as_str().is_some_and(|id| id.starts_with("pi_")));
    assert_eq!(pi["object"], "payment_intent");
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["amount"], 12500);
    assert_eq!(pi["amount_received"], 12500);
    assert_eq!(pi["currency"], "usd");
    assert_eq!(pi["customer"], "cus_A");
    assert_eq!(pi["payment_method"], "pm_A");
    assert_eq!(pi["livemode"], false);
    assert!(pi["created"].as_i64().is_some_and(|t| t > 1_600_000_000));
    assert!(
        pi["latest_charge"]
            .as_str()
            .is_some_and(|c| c.starts_with("ch_"))
    );
    assert_eq!(pi["metadata"]["booking_id"], "bkg_1");
    assert_eq!(pi["metadata"]["job_id"], "job_1");
    assert_eq!(pi["description"], "Booking bkg_1");

    let charges = fake.charges();
    assert_eq!(charges.len(), 1);
    let charge = &charges[0];
    assert_eq!(charge.id, pi["id"].as_str().expect("id"));
    assert_eq!(charge.account.as_deref(), Some(ACCT_A));
    assert_eq!(charge.amount, 12500);
    assert_eq!(charge.currency, "usd");
    assert_eq!(charge.customer.as_deref(), Some("cus_A"));
    assert_eq!(charge.payment_method.as_deref(), Some("pm_A"));
    assert_eq!(
        charge.metadata.get("job_id").map(String::as_str),
        Some("job_1")
    );
    assert_eq!(charge.idempotency_key.as_deref(), Some("job_1-attempt-1"));
    assert_eq!(charge.status, "succeeded");

    let (status, again) = get(
        &fake,
        Some(ACCT_A),
        &format!("/v1/payment_intents/{}", charge.id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again, pi, "retrieve answers the same object");
}

#[tokio::test]
async fn form_bodies_with_nested_keys_are_decoded_into_a_nested_structure() {
    let fake = fake().await;
    let body = "amount=2000&currency=usd&customer=cus_A&payment_method=pm_A&confirm=true\
                &off_session=true&payment_method_types%5B%5D=card\
                &metadata%5Bbooking_id%5D=bkg%2042&metadata[job_id]=job_9";
    let res = client()
        .post(format!("{}/v1/payment_intents", fake.url()))
        .bearer_auth(fake.secret_key())
        .header("Stripe-Account", ACCT_A)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("answered");
    let (status, pi) = json(res).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["metadata"]["booking_id"], "bkg 42");
    assert_eq!(pi["payment_method_types"], serde_json::json!(["card"]));

    let recorded = fake.requests_to("POST", "/v1/payment_intents");
    assert_eq!(recorded.len(), 1);
    let form = &recorded[0].form;
    assert_eq!(form["amount"], "2000");
    assert_eq!(form["metadata"]["booking_id"], "bkg 42");
    assert_eq!(form["metadata"]["job_id"], "job_9");
    assert_eq!(form["payment_method_types"][0], "card");
    assert_eq!(recorded[0].stripe_account.as_deref(), Some(ACCT_A));
    assert_eq!(recorded[0].status, Some(200));
    assert!(recorded[0].header("Authorization").is_some());
}

#[tokio::test]
async fn unknown_missing_and_malformed_parameters_are_refused_like_stripe_with_param() {
    let fake = fake().await;

    let mut form = charge_form("job_1");
    form.push(("colour".into(), "red".into()));
    let (status, body) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "parameter_unknown");
    assert_eq!(body["error"]["param"], "colour");

    let form: Vec<_> = charge_form("job_1")
        .into_iter()
        .filter(|(k, _)| k != "amount")
        .collect();
    let (status, body) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "parameter_missing");
    assert_eq!(body["error"]["param"], "amount");

    let mut form = charge_form("job_1");
    form[0].1 = "12.50".into();
    let (status, body) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "parameter_invalid_integer");
    assert_eq!(body["error"]["param"], "amount");

    let mut form = charge_form("job_1");
    form[4].1 = "yes".into();
    let (status, body) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "confirm");

    let res = client()
        .post(format!("{}/v1/payment_intents", fake.url()))
        .bearer_auth(fake.secret_key())
        .header("Stripe-Account", ACCT_A)
        .json(&serde_json::json!({"amount": 100}))
        .send()
        .await
        .expect("answered");
    let (status, body) = json(res).await;
    assert_eq!(status, 400, "JSON bodies are not Stripe's format: {body}");

    assert!(fake.charges().is_empty(), "nothing was created");
}

#[tokio::test]
async fn objects_belong_to_their_connected_account_and_others_get_404_resource_missing() {
    let fake = fake().await;
    let (_, pi) = json(
        create(&fake, &charge_form("job_1"), None)
            .await
            .expect("answered"),
    )
    .await;
    let path = format!("/v1/payment_intents/{}", pi["id"].as_str().expect("id"));

    let (status, _) = get(&fake, Some(ACCT_A), &path).await;
    assert_eq!(status, 200);
    for other in [Some(ACCT_B), None] {
        let (status, body) = get(&fake, other, &path).await;
        assert_eq!(status, 404, "{other:?}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "resource_missing");
    }

    let (status, pm) = get(&fake, Some(ACCT_B), "/v1/payment_methods/pm_B").await;
    assert_eq!(status, 200);
    assert_eq!(pm["customer"], "cus_B");
    let (status, body) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_B").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");

    // Charging account B's card from account A: the card does not exist there.
    let mut form = charge_form("job_2");
    form[2].1 = "cus_B".into();
    form[3].1 = "pm_B".into();
    let (status, body) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["param"], "customer");

    let (status, body) = get(&fake, Some("not_an_account"), &path).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "account_invalid");
}

#[tokio::test]
async fn a_retrieved_payment_method_is_a_card_with_brand_last4_and_expiry() {
    let fake = fake().await;
    let (status, pm) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 200);
    assert_eq!(pm["id"], "pm_A");
    assert_eq!(pm["object"], "payment_method");
    assert_eq!(pm["type"], "card");
    assert_eq!(pm["customer"], "cus_A");
    assert_eq!(pm["livemode"], false);
    assert_eq!(pm["card"]["brand"], "visa");
    assert_eq!(pm["card"]["last4"], "4242");
    assert_eq!(pm["card"]["exp_month"], 12);
    assert_eq!(pm["card"]["exp_year"], 2034);
}

#[tokio::test]
async fn a_declined_card_answers_402_card_error_with_the_payment_intent_embedded() {
    let fake = fake().await;
    fake.push_outcomes([
        Outcome::decline("insufficient_funds"),
        Outcome::decline("stolen_card"),
    ]);

    for (job, decline_code) in [("job_1", "insufficient_funds"), ("job_2", "stolen_card")] {
        let (status, body) = json(
            create(&fake, &charge_form(job), Some(job))
                .await
                .expect("answered"),
        )
        .await;
        assert_eq!(status, 402);
        let error = &body["error"];
        assert_eq!(error["type"], "card_error");
        assert_eq!(error["code"], "card_declined");
        assert_eq!(error["decline_code"], decline_code);
        assert!(
            error["charge"]
                .as_str()
                .is_some_and(|c| c.starts_with("ch_"))
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(error["payment_method"]["id"], "pm_A");
        let pi = &error["payment_intent"];
        assert_eq!(pi["object"], "payment_intent");
        assert_eq!(pi["status"], "requires_payment_method");
        assert_eq!(pi["amount_received"], 0);
        assert_eq!(pi["metadata"]["job_id"], job);
        assert_eq!(pi["last_payment_error"]["decline_code"], decline_code);
        assert_eq!(pi["last_payment_error"]["code"], "card_declined");
    }
    let charges = fake.charges();
    assert_eq!(charges.len(), 2);
    assert!(
        charges
            .iter()
            .all(|c| c.status == "requires_payment_method")
    );
    assert!(fake.succeeded_charges().is_empty());
}

#[tokio::test]
async fn authentication_required_off_session_answers_402_with_the_intent_in_requires_payment_method()
 {
    let fake = fake().await;
    fake.push_outcome(Outcome::RequireAuthentication);
    let (status, body) = json(
        create(&fake, &charge_form("job_1"), Some("k1"))
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(body["error"]["type"], "card_error");
    assert_eq!(body["error"]["code"], "authentication_required");
    assert_eq!(body["error"]["decline_code"], "authentication_required");
    let pi = &body["error"]["payment_intent"];
    assert_eq!(pi["status"], "requires_payment_method");
    assert_eq!(pi["last_payment_error"]["code"], "authentication_required");
    assert_eq!(fake.charges()[0].status, "requires_payment_method");
}

#[tokio::test]
async fn authentication_required_on_session_answers_200_in_requires_action() {
    let fake = fake().await;
    fake.push_outcome(Outcome::RequireAuthentication);
    let form: Vec<_> = charge_form("job_1")
        .into_iter()
        .filter(|(k, _)| k != "off_session")
        .collect();
    let (status, pi) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 200);
    assert_eq!(pi["status"], "requires_action");
    assert_eq!(pi["next_action"]["type"], "use_stripe_sdk");
    assert!(fake.succeeded_charges().is_empty());
}

#[tokio::test]
async fn the_same_key_and_parameters_replay_the_saved_answer_byte_for_byte_without_a_second_charge()
{
    let fake = fake().await;
    let form = charge_form("job_1");
    let first = create(&fake, &form, Some("job_1:1"))
        .await
        .expect("answered");
    let first_request = header(&first, "request-id").expect("request id");
    assert_eq!(
        header(&first, "original-request").as_deref(),
        Some(first_request.as_str())
    );
    let (first_status, first_body) = (first.status(), first.bytes().await.expect("body"));

    let second = create(&fake, &form, Some("job_1:1"))
        .await
        .expect("answered");
    assert_eq!(
        header(&second, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&second, "original-request").as_deref(),
        Some(first_request.as_str())
    );
    assert_ne!(
        header(&second, "request-id").as_deref(),
        Some(first_request.as_str())
    );
    assert_eq!(second.status(), first_status);
    assert_eq!(second.bytes().await.expect("body"), first_body);

    assert_eq!(fake.charges().len(), 1, "exactly one charge");
    let recorded = fake.requests_to("POST", "/v1/payment_intents");
    assert_eq!(recorded.len(), 2);
    assert!(!recorded[0].replayed);
    assert!(recorded[1].replayed);
    assert_eq!(recorded[0].idempotency_key, recorded[1].idempotency_key);
}

#[tokio::test]
async fn reusing_a_key_with_other_parameters_is_a_400_idempotency_error() {
    let fake = fake().await;
    let form = charge_form("job_1");
    create(&fake, &form, Some("job_1:1"))
        .await
        .expect("answered");
    let mut changed = form.clone();
    changed[0].1 = "9999".into();
    let (status, body) = json(
        create(&fake, &changed, Some("job_1:1"))
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");
    assert_eq!(fake.charges().len(), 1);
}

#[tokio::test]
async fn keys_are_scoped_per_account() {
    let fake = fake().await;
    let client = client();
    create_on(
        &fake,
        &client,
        ACCT_A,
        &charge_form("job_1"),
        Some("same-key"),
    )
    .await
    .expect("answered");
    let mut form_b = charge_form("job_1");
    form_b[2].1 = "cus_B".into();
    form_b[3].1 = "pm_B".into();
    let res = create_on(&fake, &client, ACCT_B, &form_b, Some("same-key"))
        .await
        .expect("answered");
    assert_eq!(res.status(), 200);
    assert!(header(&res, "idempotent-replayed").is_none());
    assert_eq!(fake.succeeded_charges().len(), 2);
}

#[tokio::test]
async fn a_decline_is_saved_and_replayed_for_the_same_key() {
    let fake = fake().await;
    fake.push_outcomes([Outcome::decline("insufficient_funds"), Outcome::Succeed]);
    let form = charge_form("job_1");
    let (status, first) = json(create(&fake, &form, Some("k")).await.expect("answered")).await;
    assert_eq!(status, 402);
    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    let (status, second) = json(res).await;
    assert_eq!(status, 402);
    assert_eq!(second, first);
    assert_eq!(
        fake.pending_outcomes(),
        1,
        "the replay did not use the next outcome"
    );
    assert_eq!(fake.charges().len(), 1);
}

#[tokio::test]
async fn a_429_rate_limit_is_not_saved_so_a_retry_with_the_same_key_executes() {
    let fake = fake().await;
    fake.push_outcome(Outcome::RateLimit);
    let form = charge_form("job_1");
    let (status, body) = json(create(&fake, &form, Some("k")).await.expect("answered")).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "rate_limit");
    assert!(fake.charges().is_empty());

    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert!(header(&res, "idempotent-replayed").is_none());
    let (status, pi) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(fake.succeeded_charges().len(), 1);
}

#[tokio::test]
async fn a_500_after_execution_began_is_saved_and_replayed_as_stripe_documents() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ServerError);
    let form = charge_form("job_1");
    let (status, first) = json(create(&fake, &form, Some("k")).await.expect("answered")).await;
    assert_eq!(status, 500);
    assert_eq!(first["error"]["type"], "api_error");

    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    let (status, second) = json(res).await;
    assert_eq!(status, 500);
    assert_eq!(second, first);
    assert!(fake.charges().is_empty(), "a 500 created nothing here");

    let res = create(&fake, &form, Some("k2")).await.expect("answered");
    assert_eq!(res.status(), 200, "a new key executes");
}

#[tokio::test]
async fn a_500_in_front_of_the_idempotency_layer_is_not_saved() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ServerErrorBeforeExecution);
    let form = charge_form("job_1");
    let (status, body) = json(create(&fake, &form, Some("k")).await.expect("answered")).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert!(header(&res, "idempotent-replayed").is_none());
    assert_eq!(res.status(), 200);
    assert_eq!(fake.succeeded_charges().len(), 1);
}

#[tokio::test]
async fn a_hung_request_times_out_at_the_client_while_other_requests_are_served() {
    let fake = fake().await;
    fake.push_outcome(Outcome::Hang);
    let impatient = Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let form = charge_form("job_1");
    let hung = create_on(&fake, &impatient, ACCT_A, &form, Some("k"));
    let other = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await
    };
    let (hung, (other_status, _)) = tokio::join!(hung, other);
    let err = hung.expect_err("the hung request never answers");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(other_status, 200);
    eventually("the hung request reached the fake", || {
        fake.pending_outcomes() == 0
    })
    .await;
    assert!(fake.charges().is_empty());

    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(res.status(), 200, "nothing was saved for the hung request");
    assert!(header(&res, "idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_dropped_connection_after_charging_records_the_charge_and_the_retry_replays_it() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ChargeThenDropConnection);
    let form = charge_form("job_1");
    let err = create(&fake, &form, Some("job_1:1"))
        .await
        .expect_err("no answer");
    assert!(
        !err.is_timeout(),
        "the connection was closed, not timed out: {err}"
    );
    let charges = fake.succeeded_charges();
    assert_eq!(charges.len(), 1, "the charge went through");
    assert_eq!(charges[0].idempotency_key.as_deref(), Some("job_1:1"));
    let recorded = fake.requests_to("POST", "/v1/payment_intents");
    assert_eq!(recorded[0].status, None, "no answer was sent");

    let res = create(&fake, &form, Some("job_1:1"))
        .await
        .expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    let (status, pi) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(pi["id"].as_str(), Some(charges[0].id.as_str()));
    assert_eq!(fake.charges().len(), 1, "still exactly one charge");
}

#[tokio::test]
async fn a_charge_that_then_hangs_went_through_although_the_client_timed_out() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ChargeThenHang);
    let impatient = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = create_on(&fake, &impatient, ACCT_A, &charge_form("job_1"), Some("k"))
        .await
        .expect_err("no answer");
    assert!(err.is_timeout());
    eventually("the charge is recorded", || {
        fake.succeeded_charges().len() == 1
    })
    .await;
    assert_eq!(fake.charges()[0].idempotency_key.as_deref(), Some("k"));
}

#[tokio::test]
async fn a_second_request_while_the_key_is_executing_gets_409_idempotency_key_in_use() {
    let fake = fake().await;
    fake.push_outcome(Outcome::SucceedAfter(Duration::from_millis(1500)));
    let form = charge_form("job_1");
    let slow = create(&fake, &form, Some("k"));
    let concurrent = async {
        eventually("the slow request started executing", || {
            fake.pending_outcomes() == 0
        })
        .await;
        json(create(&fake, &form, Some("k")).await.expect("answered")).await
    };
    let (slow, (status, body)) = tokio::join!(slow, concurrent);
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "idempotency_key_in_use");
    assert_eq!(slow.expect("answered").status(), 200);
    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(fake.charges().len(), 1);
}

#[tokio::test]
async fn expired_idempotency_keys_execute_again_as_after_stripes_24_hours() {
    let fake = fake().await;
    let form = charge_form("job_1");
    create(&fake, &form, Some("k")).await.expect("answered");
    fake.expire_idempotency_keys();
    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert!(header(&res, "idempotent-replayed").is_none());
    assert_eq!(
        fake.succeeded_charges().len(),
        2,
        "Stripe would charge twice too"
    );
}

#[tokio::test]
async fn search_by_metadata_finds_the_charge_made_before_a_dropped_connection() {
    let fake = fake().await;
    create(&fake, &charge_form("job_other"), Some("k0"))
        .await
        .expect("answered");
    fake.push_outcome(Outcome::ChargeThenDropConnection);
    create(&fake, &charge_form("job_1"), Some("k1"))
        .await
        .expect_err("dropped");

    let query = "metadata['job_id']:'job_1'";
    let res = client()
        .get(format!("{}/v1/payment_intents/search", fake.url()))
        .query(&[("query", query)])
        .bearer_auth(fake.secret_key())
        .header("Stripe-Account", ACCT_A)
        .send()
        .await
        .expect("answered");
    let (status, result) = json(res).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["object"], "search_result");
    assert_eq!(result["url"], "/v1/payment_intents/search");
    assert_eq!(result["has_more"], false);
    assert_eq!(result["next_page"], Value::Null);
    let data = result["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["metadata"]["job_id"], "job_1");
    assert_eq!(data[0]["status"], "succeeded");

    let (status, other_account) = get(
        &fake,
        Some(ACCT_B),
        "/v1/payment_intents/search?query=metadata%5B%27job_id%27%5D%3A%27job_1%27",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(other_account["data"], serde_json::json!([]));

    let (status, both) = get(
        &fake,
        Some(ACCT_A),
        "/v1/payment_intents/search?query=status%3A%27succeeded%27%20AND%20amount%3E%3D12500&limit=1",
    )
    .await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(both["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(both["has_more"], true);
    let page = both["next_page"].as_str().expect("next page");
    let (status, rest) = get(
        &fake,
        Some(ACCT_A),
        &format!("/v1/payment_intents/search?query=status%3A%27succeeded%27&limit=1&page={page}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));

    let (status, body) = get(
        &fake,
        Some(ACCT_A),
        "/v1/payment_intents/search?query=colour%3A%27red%27",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "query");
}

#[tokio::test]
async fn search_lags_behind_writes_when_told_to_while_list_does_not() {
    let fake = fake().await;
    fake.set_search_delay(Duration::from_secs(60));
    create(&fake, &charge_form("job_1"), None)
        .await
        .expect("answered");
    let (_, result) = get(
        &fake,
        Some(ACCT_A),
        "/v1/payment_intents/search?query=metadata%5B%27job_id%27%5D%3A%27job_1%27",
    )
    .await;
    assert_eq!(result["data"], serde_json::json!([]));

    let (status, list) = get(
        &fake,
        Some(ACCT_A),
        "/v1/payment_intents?customer=cus_A&limit=10",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn unknown_endpoints_answer_404_with_stripes_error_object() {
    let fake = fake().await;
    for (method, path) in [
        ("GET", "/v1/charges"),
        ("DELETE", "/v1/payment_intents"),
        ("GET", "/"),
    ] {
        let res = client()
            .request(
                method.parse().expect("method"),
                format!("{}{path}", fake.url()),
            )
            .bearer_auth(fake.secret_key())
            .send()
            .await
            .expect("answered");
        assert!(header(&res, "request-id").is_some());
        let (status, body) = json(res).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn every_answer_carries_a_distinct_request_id() {
    let fake = fake().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let res = client()
            .get(format!("{}/v1/payment_methods/pm_A", fake.url()))
            .bearer_auth(fake.secret_key())
            .header("Stripe-Account", ACCT_A)
            .send()
            .await
            .expect("answered");
        ids.push(header(&res, "request-id").expect("request id"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[2].request_id, ids[2]);
}
