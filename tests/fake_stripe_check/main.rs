//! Drives the fake Stripe (`mio_tests::fake_stripe`) over real HTTP and checks that it speaks
//! Stripe's wire format and does what the charging tests rely on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mio_tests::fake_stripe::{FakeStripe, Outcome};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;

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
        // Without it, API versions from 2023-08-16 on enable automatic payment methods, and a
        // confirmation then needs a return_url.
        ("payment_method_types[]", "card"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Where and how requests reach a fake: its URL and secret key, and the client to send with
/// (cloneable into spawned tasks). Every request of these checks is built by
/// [`Target::request`].
#[derive(Clone)]
struct Target {
    url: String,
    key: String,
    client: Client,
}

impl Target {
    fn of(fake: &FakeStripe, client: Client) -> Target {
        Target {
            url: fake.url(),
            key: fake.secret_key().to_owned(),
            client,
        }
    }

    /// `method path` with the secret key as bearer auth, on connected account `account`
    /// (`None`: the platform, no `Stripe-Account`).
    fn request(&self, method: Method, path: &str, account: Option<&str>) -> RequestBuilder {
        let req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key);
        match account {
            Some(account) => req.header("Stripe-Account", account),
            None => req,
        }
    }

    /// `POST /v1/payment_intents` on account A; `Err` when no answer came (dropped, timed out).
    async fn create(
        &self,
        form: &[(String, String)],
        key: &str,
    ) -> reqwest::Result<(StatusCode, bool, Value)> {
        let res = keyed(
            self.request(Method::POST, "/v1/payment_intents", Some(ACCT_A))
                .form(form),
            Some(key),
        )
        .send()
        .await?;
        let replayed = header(&res, "idempotent-replayed").as_deref() == Some("true");
        let status = res.status();
        let body = res.json().await?;
        Ok((status, replayed, body))
    }
}

/// [`Target::request`] for `fake` with a fresh [`client`].
fn request(fake: &FakeStripe, method: Method, path: &str, account: Option<&str>) -> RequestBuilder {
    Target::of(fake, client()).request(method, path, account)
}

/// `req` with `Idempotency-Key: key`, if any.
fn keyed(req: RequestBuilder, key: Option<&str>) -> RequestBuilder {
    match key {
        Some(key) => req.header("Idempotency-Key", key),
        None => req,
    }
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
    let req = Target::of(fake, client.clone())
        .request(Method::POST, "/v1/payment_intents", Some(account))
        .form(form);
    keyed(req, key).send().await
}

async fn get(fake: &FakeStripe, account: Option<&str>, path: &str) -> (StatusCode, Value) {
    let res = request(fake, Method::GET, path, account)
        .send()
        .await
        .expect("GET answered");
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
    let res = request(&fake, Method::POST, "/v1/payment_intents", Some(ACCT_A))
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

    let res = request(&fake, Method::POST, "/v1/payment_intents", Some(ACCT_A))
        .json(&serde_json::json!({"amount": 100}))
        .send()
        .await
        .expect("answered");
    let (status, body) = json(res).await;
    assert_eq!(status, 400, "JSON bodies are not Stripe's format: {body}");

    assert!(fake.charges().is_empty(), "nothing was created");
}

#[tokio::test]
async fn payment_intent_parameters_outside_stripes_documented_limits_are_refused_and_create_nothing()
 {
    let fake = fake().await;
    let many_keys: Vec<(String, String)> = (0..48)
        .map(|n| (format!("metadata[k{n}]"), "v".to_owned()))
        .collect();
    let many_keys: Vec<(&str, &str)> = many_keys
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let long_value = "v".repeat(501);
    let long_description = "d".repeat(1001);
    let long_suffix = "s".repeat(23);
    // (what is removed, what is added, the `param` refused, its `code` if Stripe documents one)
    type Case<'a> = (
        &'a [&'a str],
        Vec<(&'a str, &'a str)>,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            &["amount"],
            vec![("amount", "49")],
            "amount",
            Some("amount_too_small"),
        ),
        (
            &["amount"],
            vec![("amount", "100000000")],
            "amount",
            Some("amount_too_large"),
        ),
        (
            &["amount"],
            vec![("amount", "0")],
            "amount",
            Some("parameter_invalid_integer"),
        ),
        (&["currency"], vec![("currency", "USD")], "currency", None),
        (
            &["currency"],
            vec![("currency", "dollars")],
            "currency",
            None,
        ),
        (&["confirm"], vec![], "off_session", None),
        (
            &["confirm", "off_session"],
            vec![("error_on_requires_action", "true")],
            "error_on_requires_action",
            None,
        ),
        (
            &["off_session"],
            vec![("off_session", "maybe")],
            "off_session",
            None,
        ),
        (
            &[],
            vec![("metadata[note]", &long_value)],
            "metadata[note]",
            None,
        ),
        (&[], many_keys.clone(), "metadata", None),
        (
            &["description"],
            vec![("description", &long_description)],
            "description",
            None,
        ),
        (
            &[],
            vec![("statement_descriptor_suffix", &long_suffix)],
            "statement_descriptor_suffix",
            None,
        ),
        (
            &[],
            vec![("capture_method", "later")],
            "capture_method",
            None,
        ),
    ];
    for (without, extra, param, code) in &cases {
        let form = form_with(charge_form("job_1"), without, extra);
        let (status, body) = json(create(&fake, &form, Some("k")).await.expect("answered")).await;
        assert_eq!(status, 400, "{param}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["param"], *param, "{body}");
        if let Some(code) = code {
            assert_eq!(body["error"]["code"], *code, "{body}");
        }
    }
    assert!(fake.charges().is_empty(), "nothing was created");
    assert!(fake.events().is_empty());

    // At each limit: accepted, and (refusals save nothing) under the same key.
    let longest_key = format!("metadata[{}]", "k".repeat(40));
    let at_limits: Vec<(&str, String)> = vec![
        ("amount", "50".to_owned()),
        ("description", "d".repeat(1000)),
        ("metadata[note]", "v".repeat(500)),
        (longest_key.as_str(), "v".to_owned()),
        ("statement_descriptor_suffix", "s".repeat(22)),
    ];
    let mut extra: Vec<(&str, &str)> = at_limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // 3 metadata keys in the charge form, 2 above, 45 more: 50.
    extra.extend(many_keys.iter().take(45).copied());
    let form = form_with(charge_form("job_1"), &["amount", "description"], &extra);
    let (status, pi) = json(create(&fake, &form, Some("k")).await.expect("answered")).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["amount"], 50);
    assert_eq!(pi["metadata"].as_object().map(Map::len), Some(50));
    assert_eq!(fake.succeeded_charges().len(), 1);

    // `limit` of list and search: 1 to 100.
    for path in [
        "/v1/payment_intents?limit=0",
        "/v1/payment_intents?limit=101",
        "/v1/payment_intents/search?query=status%3A%27succeeded%27&limit=0",
        "/v1/payment_intents/search?query=status%3A%27succeeded%27&limit=101",
    ] {
        let (status, body) = get(&fake, Some(ACCT_A), path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["param"], "limit", "{path}: {body}");
    }
    let (status, list) = get(&fake, Some(ACCT_A), "/v1/payment_intents?limit=100").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
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
    let res = request(
        &fake,
        Method::GET,
        "/v1/payment_intents/search",
        Some(ACCT_A),
    )
    .query(&[("query", query)])
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
        let res = request(&fake, method.parse().expect("method"), path, None)
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
        let res = request(&fake, Method::GET, "/v1/payment_methods/pm_A", Some(ACCT_A))
            .send()
            .await
            .expect("answered");
        ids.push(header(&res, "request-id").expect("request id"));
    }
    // All three distinct (a `dedup` would only catch neighbours).
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[2].request_id, ids[2]);
}

// ---------------------------------------------------------------------------------------------
// Events and webhooks

/// A form with `name` removed and `extra` added.
fn form_with(
    form: Vec<(String, String)>,
    without: &[&str],
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    form.into_iter()
        .filter(|(k, _)| !without.contains(&k.as_str()))
        .chain(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .collect()
}

/// The events of `kind`, oldest first.
fn events_of(fake: &FakeStripe, kind: &str) -> Vec<Value> {
    fake.events()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn event_types(fake: &FakeStripe) -> Vec<String> {
    fake.events()
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

fn event_id(event: &Value) -> String {
    event["id"].as_str().expect("event id").to_owned()
}

/// One webhook POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivered {
    method: String,
    headers: BTreeMap<String, String>,
    body: Bytes,
}

impl Delivered {
    fn event_id(&self) -> String {
        let event: Value = serde_json::from_slice(&self.body).expect("JSON event");
        event_id(&event)
    }
}

/// A webhook endpoint: records what it receives and answers the scripted statuses (then 200).
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Delivered>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("receiver binds");
        let url = format!(
            "http://{}/webhooks/stripe",
            listener.local_addr().expect("address")
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(VecDeque::new()));
        let (rec, st) = (Arc::clone(&received), Arc::clone(&statuses));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rec, st) = (Arc::clone(&rec), Arc::clone(&st));
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (rec, st) = (Arc::clone(&rec), Arc::clone(&st));
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = match body.collect().await {
                                Ok(collected) => collected.to_bytes(),
                                Err(_) => Bytes::new(),
                            };
                            let headers = parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.as_str().to_owned(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect();
                            rec.lock().expect("receiver lock").push(Delivered {
                                method: parts.method.as_str().to_owned(),
                                headers,
                                body,
                            });
                            let status = st.lock().expect("receiver lock").pop_front();
                            let mut response =
                                hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                            *response.status_mut() =
                                hyper::StatusCode::from_u16(status.unwrap_or(200))
                                    .expect("a valid status");
                            response.headers_mut().insert(
                                "location",
                                hyper::header::HeaderValue::from_static("/elsewhere"),
                            );
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url,
            received,
            statuses,
        }
    }

    fn answer(&self, statuses: impl IntoIterator<Item = u16>) {
        self.statuses
            .lock()
            .expect("receiver lock")
            .extend(statuses);
    }

    fn received(&self) -> Vec<Delivered> {
        self.received.lock().expect("receiver lock").clone()
    }
}

/// The receiving side of Stripe's signature scheme, written independently of the fake: parse
/// `t=…,v1=…`, recompute HMAC-SHA256 over `"{t}.{payload}"` with the `whsec_…` string as key, and
/// accept timestamps within Stripe's default 5-minute tolerance.
fn verify_signature(secret: &str, header: &str, payload: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits");
    if (now - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    signatures.contains(&expected)
}

#[tokio::test]
async fn each_fake_has_its_own_whsec_webhook_signing_secret() {
    let (a, b) = (FakeStripe::start().await, FakeStripe::start().await);
    for fake in [&a, &b] {
        let rest = fake
            .webhook_secret()
            .strip_prefix("whsec_")
            .expect("whsec_ prefix");
        assert!(rest.len() >= 24, "{rest}");
        assert!(rest.bytes().all(|c| c.is_ascii_alphanumeric()), "{rest}");
    }
    assert_ne!(a.webhook_secret(), b.webhook_secret());
}

#[test]
fn the_signature_header_is_t_and_v1_hex_hmac_sha256_of_timestamp_dot_payload() {
    // Computed independently: HMAC-SHA256(key = "whsec_test_secret",
    // message = "1700000000.{\"id\": \"evt_1\"}"), hex.
    assert_eq!(
        FakeStripe::signature_header("whsec_test_secret", 1_700_000_000, r#"{"id": "evt_1"}"#),
        "t=1700000000,v1=33aa1568c6627d0d2d42556693c208077ca8f8b437ac8d9d6ebb6c2c650033eb"
    );
    let other_payload =
        FakeStripe::signature_header("whsec_test_secret", 1_700_000_000, r#"{"id": "evt_2"}"#);
    assert!(
        !other_payload
            .ends_with("33aa1568c6627d0d2d42556693c208077ca8f8b437ac8d9d6ebb6c2c650033eb")
    );
}

#[tokio::test]
async fn a_successful_charge_records_created_then_succeeded_then_charge_succeeded_events() {
    let fake = fake().await;
    let res = create(&fake, &charge_form("job_1"), Some("job_1:1"))
        .await
        .expect("answered");
    let request_id = header(&res, "request-id").expect("request id");
    let (status, pi) = json(res).await;
    assert_eq!(status, 200);

    assert_eq!(
        event_types(&fake),
        [
            "payment_intent.created",
            "payment_intent.succeeded",
            "charge.succeeded"
        ]
    );
    let events = fake.events();
    for event in &events {
        assert!(
            event["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("evt_"))
        );
        assert_eq!(event["object"], "event");
        assert_eq!(
            event["account"], ACCT_A,
            "a Connect event names its account"
        );
        assert_eq!(event["api_version"], "2024-06-20");
        assert!(event["created"].as_i64().is_some_and(|t| t > 1_600_000_000));
        assert_eq!(event["livemode"], false);
        assert_eq!(event["pending_webhooks"], 1);
        assert_eq!(event["request"]["id"], request_id.as_str());
        assert_eq!(event["request"]["idempotency_key"], "job_1:1");
    }
    let ids: Vec<String> = events.iter().map(event_id).collect();
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );

    let created = &events[0]["data"]["object"];
    assert_eq!(created["id"], pi["id"]);
    assert_eq!(created["object"], "payment_intent");
    assert_eq!(
        created["status"], "requires_confirmation",
        "the object as created, before confirmation"
    );
    assert_eq!(created["amount_received"], 0);
    assert_eq!(
        events[1]["data"]["object"], pi,
        "payment_intent.succeeded carries the PaymentIntent exactly as the API answered it"
    );

    let charge = &events[2]["data"]["object"];
    assert_eq!(charge["id"], pi["latest_charge"]);
    assert!(
        charge["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ch_"))
    );
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["amount"], 12500);
    assert_eq!(charge["currency"], "usd");
    assert_eq!(charge["payment_intent"], pi["id"]);
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["paid"], true);
    assert_eq!(charge["captured"], true);
    assert_eq!(charge["metadata"]["job_id"], "job_1");

    for id in &ids {
        let payload = fake.event_payload(id).expect("payload");
        let parsed: Value = serde_json::from_str(&payload).expect("the payload is JSON");
        assert_eq!(&event_id(&parsed), id);
    }
    assert_eq!(fake.event_payload("evt_unknown"), None);
}

#[tokio::test]
async fn a_decline_records_payment_failed_with_the_intent_exactly_as_embedded_in_the_402() {
    let fake = fake().await;
    fake.push_outcome(Outcome::decline("insufficient_funds"));
    let (status, body) = json(
        create(&fake, &charge_form("job_1"), Some("k"))
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(
        event_types(&fake),
        [
            "payment_intent.created",
            "payment_intent.payment_failed",
            "charge.failed"
        ]
    );
    let failed = &events_of(&fake, "payment_intent.payment_failed")[0];
    assert_eq!(failed["data"]["object"], body["error"]["payment_intent"]);
    assert_eq!(
        failed["data"]["object"]["status"],
        "requires_payment_method"
    );
    assert_eq!(
        failed["data"]["object"]["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );
    let charge = &events_of(&fake, "charge.failed")[0]["data"]["object"];
    assert_eq!(charge["id"], body["error"]["charge"]);
    assert_eq!(charge["status"], "failed");
    assert_eq!(charge["paid"], false);
    assert_eq!(charge["failure_code"], "card_declined");
    assert!(events_of(&fake, "payment_intent.succeeded").is_empty());
}

#[tokio::test]
async fn authentication_failures_record_payment_failed_off_session_and_requires_action_on_session()
{
    let fake = fake().await;
    fake.push_outcome(Outcome::RequireAuthentication);
    let (status, body) = json(
        create(&fake, &charge_form("job_1"), None)
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 402);
    let failed = events_of(&fake, "payment_intent.payment_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["object"], body["error"]["payment_intent"]);
    assert_eq!(
        failed[0]["data"]["object"]["last_payment_error"]["code"],
        "authentication_required"
    );
    assert_eq!(failed[0]["request"]["idempotency_key"], Value::Null);

    fake.push_outcome(Outcome::RequireAuthentication);
    let on_session = form_with(charge_form("job_2"), &["off_session"], &[]);
    let (status, pi) = json(create(&fake, &on_session, None).await.expect("answered")).await;
    assert_eq!(status, 200);
    let action = events_of(&fake, "payment_intent.requires_action");
    assert_eq!(action.len(), 1);
    assert_eq!(action[0]["data"]["object"], pi);
    assert_eq!(action[0]["data"]["object"]["status"], "requires_action");
    assert_eq!(events_of(&fake, "payment_intent.created").len(), 2);
}

#[tokio::test]
async fn manual_capture_records_amount_capturable_updated_and_an_uncaptured_charge() {
    let fake = fake().await;
    let form = form_with(charge_form("job_1"), &[], &[("capture_method", "manual")]);
    let (status, pi) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 200);
    assert_eq!(pi["status"], "requires_capture");
    assert_eq!(
        event_types(&fake),
        [
            "payment_intent.created",
            "payment_intent.amount_capturable_updated",
            "charge.succeeded"
        ]
    );
    let charge = &events_of(&fake, "charge.succeeded")[0]["data"]["object"];
    assert_eq!(charge["captured"], false);
    assert_eq!(charge["amount_captured"], 0);
    assert_eq!(charge["paid"], true);
}

#[tokio::test]
async fn replays_refusals_and_a_500_that_created_nothing_record_no_events() {
    let fake = fake().await;
    let form = charge_form("job_1");
    create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(fake.events().len(), 3);

    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(fake.events().len(), 3, "a replay executes nothing");

    let bad = form_with(form.clone(), &["amount"], &[]);
    let (status, _) = json(create(&fake, &bad, Some("k2")).await.expect("answered")).await;
    assert_eq!(status, 400);
    fake.push_outcome(Outcome::ServerError);
    let (status, _) = json(create(&fake, &form, Some("k3")).await.expect("answered")).await;
    assert_eq!(status, 500);
    fake.push_outcome(Outcome::RateLimit);
    let (status, _) = json(create(&fake, &form, Some("k4")).await.expect("answered")).await;
    assert_eq!(status, 429);
    assert_eq!(fake.events().len(), 3);
}

#[tokio::test]
async fn platform_events_have_no_account_and_carry_the_requests_stripe_version() {
    let fake = fake().await;
    fake.add_payment_method(None, "cus_P", "pm_P", "visa", "4242", 1, 2035);
    let form = form_with(
        charge_form("job_1"),
        &["customer", "payment_method"],
        &[("customer", "cus_P"), ("payment_method", "pm_P")],
    );
    let res = request(&fake, Method::POST, "/v1/payment_intents", None)
        .header("Stripe-Version", "2025-03-31.basil")
        .form(&form)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        header(&res, "stripe-version").as_deref(),
        Some("2025-03-31.basil")
    );
    assert_eq!(res.status(), 200);
    let events = fake.events();
    assert_eq!(events.len(), 3);
    for event in &events {
        assert!(
            event.get("account").is_none(),
            "a platform event has no account field: {event}"
        );
        assert_eq!(event["api_version"], "2025-03-31.basil");
    }
}

#[tokio::test]
async fn deliver_posts_the_payload_with_stripes_headers_and_a_signature_that_verifies() {
    let fake = fake().await;
    let receiver = Receiver::start().await;
    fake.set_webhook_url(&receiver.url);
    create(&fake, &charge_form("job_1"), None)
        .await
        .expect("answered");
    let succeeded = event_id(&events_of(&fake, "payment_intent.succeeded")[0]);

    assert_eq!(fake.deliver(&succeeded).await, 200);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.headers.get("content-type").map(String::as_str),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        got.headers.get("user-agent").map(String::as_str),
        Some("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
    );
    let payload = fake.event_payload(&succeeded).expect("payload");
    assert_eq!(got.body, payload.as_bytes());
    let signature = got.headers.get("stripe-signature").expect("signed");
    assert!(signature.starts_with("t="), "{signature}");
    assert!(verify_signature(
        fake.webhook_secret(),
        signature,
        &got.body
    ));
    assert!(
        !verify_signature("whsec_someone_else", signature, &got.body),
        "the signature depends on the secret"
    );
    let mut tampered = got.body.to_vec();
    tampered.push(b' ');
    assert!(!verify_signature(
        fake.webhook_secret(),
        signature,
        &tampered
    ));
    let event: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(event["type"], "payment_intent.succeeded");
    assert_eq!(fake.deliveries(), [(succeeded, 200)]);
}

#[tokio::test]
async fn every_delivery_of_an_event_sends_the_same_bytes_in_any_order_any_number_of_times() {
    let fake = fake().await;
    let receiver = Receiver::start().await;
    fake.set_webhook_url(&receiver.url);
    create(&fake, &charge_form("job_1"), None)
        .await
        .expect("answered");
    let ids: Vec<String> = fake.events().iter().map(event_id).collect();

    // Newest first, then the first one twice: a duplicate and a reordering.
    for id in [&ids[2], &ids[0], &ids[0], &ids[1]] {
        assert_eq!(fake.deliver(id).await, 200);
    }
    let received = receiver.received();
    let order: Vec<String> = received.iter().map(Delivered::event_id).collect();
    assert_eq!(
        order,
        [
            ids[2].clone(),
            ids[0].clone(),
            ids[0].clone(),
            ids[1].clone()
        ]
    );
    assert_eq!(
        received[1].body, received[2].body,
        "a resend is byte-identical"
    );
    for got in &received {
        let signature = got.headers.get("stripe-signature").expect("signed");
        assert!(verify_signature(
            fake.webhook_secret(),
            signature,
            &got.body
        ));
    }
    assert_eq!(fake.deliveries().len(), 4);
    assert!(
        fake.deliver_pending().await.is_empty(),
        "everything was answered 2xx already"
    );
}

#[tokio::test]
async fn deliver_pending_sends_oldest_first_and_retries_only_what_did_not_get_a_2xx() {
    let fake = fake().await;
    let receiver = Receiver::start().await;
    fake.set_webhook_url(&receiver.url);
    create(&fake, &charge_form("job_1"), None)
        .await
        .expect("answered");
    let ids: Vec<String> = fake.events().iter().map(event_id).collect();

    receiver.answer([200, 500, 200]);
    let first = fake.deliver_pending().await;
    assert_eq!(
        first,
        [
            (ids[0].clone(), 200),
            (ids[1].clone(), 500),
            (ids[2].clone(), 200)
        ]
    );
    let second = fake.deliver_pending().await;
    assert_eq!(second, [(ids[1].clone(), 200)], "only the failed one again");
    assert!(fake.deliver_pending().await.is_empty());
    assert_eq!(fake.deliveries().len(), 4);

    // Events recorded later are pending in turn.
    fake.push_outcome(Outcome::decline("generic_decline"));
    create(&fake, &charge_form("job_2"), None)
        .await
        .expect("answered");
    let third: Vec<String> = fake
        .deliver_pending()
        .await
        .into_iter()
        .map(|(id, status)| {
            assert_eq!(status, 200);
            id
        })
        .collect();
    assert_eq!(third.len(), 3);
    assert_eq!(
        third,
        fake.events()[3..].iter().map(event_id).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_does_not_count_as_received() {
    let fake = fake().await;
    let receiver = Receiver::start().await;
    fake.set_webhook_url(&receiver.url);
    create(&fake, &charge_form("job_1"), None)
        .await
        .expect("answered");
    let first = event_id(&fake.events()[0]);
    receiver.answer([302]);
    assert_eq!(fake.deliver(&first).await, 302);
    assert_eq!(
        receiver.received().len(),
        1,
        "the Location was not followed"
    );
    let pending = fake.deliver_pending().await;
    assert_eq!(
        pending.len(),
        3,
        "the 302'd event is still pending: {pending:?}"
    );
    assert_eq!(pending[0], (first, 200));
}

#[tokio::test]
#[should_panic(expected = "no webhook URL")]
async fn deliver_without_a_webhook_url_panics_with_a_clear_message() {
    let fake = fake().await;
    create(&fake, &charge_form("job_1"), None)
        .await
        .expect("answered");
    let id = event_id(&fake.events()[0]);
    fake.deliver(&id).await;
}

#[tokio::test]
async fn cancel_intent_cancels_an_intent_awaiting_action_and_records_payment_intent_canceled() {
    let fake = fake().await;
    fake.push_outcome(Outcome::RequireAuthentication);
    let on_session = form_with(charge_form("job_1"), &["off_session"], &[]);
    let (_, pi) = json(create(&fake, &on_session, None).await.expect("answered")).await;
    let id = pi["id"].as_str().expect("id");

    fake.cancel_intent(id);
    let (status, now) = get(&fake, Some(ACCT_A), &format!("/v1/payment_intents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(now["status"], "canceled");
    assert_eq!(now["cancellation_reason"], "abandoned");
    assert!(
        now["canceled_at"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000)
    );
    assert_eq!(now["next_action"], Value::Null);
    assert_eq!(fake.charges()[0].status, "canceled");

    let canceled = events_of(&fake, "payment_intent.canceled");
    assert_eq!(canceled.len(), 1);
    assert_eq!(canceled[0]["data"]["object"], now);
    assert_eq!(canceled[0]["account"], ACCT_A);
    assert_eq!(
        canceled[0]["request"],
        json!({"id": null, "idempotency_key": null}),
        "no API request caused it"
    );
}

#[tokio::test]
#[should_panic(
    expected = "You cannot cancel this PaymentIntent because it has a status of succeeded"
)]
async fn cancel_intent_refuses_a_succeeded_intent_as_stripe_does() {
    let fake = fake().await;
    let (_, pi) = json(
        create(&fake, &charge_form("job_1"), None)
            .await
            .expect("answered"),
    )
    .await;
    fake.cancel_intent(pi["id"].as_str().expect("id"));
}

#[tokio::test]
#[should_panic(expected = "No such payment_intent: 'pi_nope'")]
async fn cancel_intent_panics_on_an_unknown_id() {
    let fake = fake().await;
    fake.cancel_intent("pi_nope");
}

// ---------------------------------------------------------------------------------------------
// Automatic payment methods and return_url

const RETURN_URL_MESSAGE: &str = "This PaymentIntent is configured to accept payment methods \
    enabled in your Dashboard. Because some of these payment methods might redirect your \
    customer off of your page, you must provide a `return_url`.";

/// `POST /v1/payment_intents` on account A with `Stripe-Version: version` (none: no header).
async fn create_versioned(
    fake: &FakeStripe,
    version: Option<&str>,
    form: &[(String, String)],
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = request(fake, Method::POST, "/v1/payment_intents", Some(ACCT_A)).form(form);
    if let Some(version) = version {
        req = req.header("Stripe-Version", version);
    }
    json(keyed(req, key).send().await.expect("answered")).await
}

/// The booking charge without `payment_method_types`.
fn charge_form_without_types(job: &str) -> Vec<(String, String)> {
    form_with(charge_form(job), &["payment_method_types[]"], &[])
}

#[tokio::test]
async fn confirming_without_payment_method_types_on_2023_08_16_or_later_needs_a_return_url() {
    let fake = fake().await;
    let form = charge_form_without_types("job_1");
    for version in [
        None,
        Some("2023-08-16"),
        Some("2024-06-20"),
        Some("2025-03-31.basil"),
    ] {
        let (status, body) = create_versioned(&fake, version, &form, Some("k")).await;
        assert_eq!(status, 400, "{version:?}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "return_url");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.starts_with(RETURN_URL_MESSAGE), "{message}");
        assert!(
            message.contains("`automatic_payment_methods[allow_redirects]` to `never`"),
            "{message}"
        );
    }
    assert!(fake.charges().is_empty(), "nothing was created");
    assert!(fake.events().is_empty());

    // Nothing was saved under the key: the same key with fixed parameters executes.
    let res = create(&fake, &charge_form("job_1"), Some("k"))
        .await
        .expect("answered");
    assert!(header(&res, "idempotent-replayed").is_none());
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn before_2023_08_16_no_payment_method_types_still_means_card_only() {
    let fake = fake().await;
    let form = charge_form_without_types("job_1");
    for version in ["2023-08-15", "2022-11-15"] {
        let (status, pi) = create_versioned(&fake, Some(version), &form, None).await;
        assert_eq!(status, 200, "{version}: {pi}");
        assert_eq!(pi["status"], "succeeded");
        assert_eq!(pi["payment_method_types"], json!(["card"]));
        assert_eq!(pi["automatic_payment_methods"], Value::Null);
        assert_eq!(pi["payment_method_configuration_details"], Value::Null);
    }
}

#[tokio::test]
async fn explicit_card_payment_method_types_confirm_without_a_return_url_on_any_version() {
    let fake = fake().await;
    let (status, pi) = create_versioned(&fake, None, &charge_form("job_1"), None).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["payment_method_types"], json!(["card"]));
    assert_eq!(pi["automatic_payment_methods"], Value::Null);
}

#[tokio::test]
async fn without_confirm_the_default_automatic_payment_methods_are_reported_and_need_no_return_url()
{
    let fake = fake().await;
    let form = form_with(
        charge_form_without_types("job_1"),
        &["confirm", "off_session"],
        &[],
    );
    let (status, pi) = create_versioned(&fake, None, &form, None).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["status"], "requires_confirmation");
    assert_eq!(
        pi["automatic_payment_methods"],
        json!({"enabled": true, "allow_redirects": "always"})
    );
    assert_eq!(pi["payment_method_types"], json!(["card"]));
    assert!(
        pi["payment_method_configuration_details"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("pmc_"))
    );
}

#[tokio::test]
async fn allow_redirects_never_confirms_without_a_return_url() {
    let fake = fake().await;
    let form = form_with(
        charge_form_without_types("job_1"),
        &[],
        &[
            ("automatic_payment_methods[enabled]", "true"),
            ("automatic_payment_methods[allow_redirects]", "never"),
        ],
    );
    let (status, pi) = create_versioned(&fake, None, &form, None).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(
        pi["automatic_payment_methods"],
        json!({"enabled": true, "allow_redirects": "never"})
    );

    // Explicitly enabled with redirects allowed (the default): a return_url is needed again.
    let form = form_with(
        charge_form_without_types("job_2"),
        &[],
        &[("automatic_payment_methods[enabled]", "true")],
    );
    let (status, body) = create_versioned(&fake, None, &form, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "return_url");
}

#[tokio::test]
async fn a_return_url_satisfies_redirecting_payment_methods_and_3ds_then_redirects_to_it() {
    let fake = fake().await;
    let form = form_with(
        charge_form_without_types("job_1"),
        &[],
        &[("return_url", "https://mio.example/return")],
    );
    let (status, pi) = create_versioned(&fake, None, &form, None).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["automatic_payment_methods"]["allow_redirects"], "always");

    fake.push_outcome(Outcome::RequireAuthentication);
    let on_session = form_with(
        charge_form_without_types("job_2"),
        &["off_session"],
        &[("return_url", "https://mio.example/return")],
    );
    let (status, pi) = create_versioned(&fake, None, &on_session, None).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["status"], "requires_action");
    assert_eq!(pi["next_action"]["type"], "redirect_to_url");
    assert_eq!(
        pi["next_action"]["redirect_to_url"]["return_url"],
        "https://mio.example/return"
    );
    assert!(
        pi["next_action"]["redirect_to_url"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
}

#[tokio::test]
async fn conflicting_or_malformed_payment_method_parameters_are_refused_like_stripe() {
    let fake = fake().await;
    // (form, the `param` Stripe names, a part of its message)
    type Case<'a> = (Vec<(String, String)>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            form_with(
                charge_form("job_1"),
                &[],
                &[("automatic_payment_methods[enabled]", "true")],
            ),
            None,
            "You may only specify one of these parameters: automatic_payment_methods, \
             payment_method_types.",
        ),
        (
            form_with(
                charge_form("job_1"),
                &["confirm", "off_session"],
                &[("return_url", "https://mio.example/return")],
            ),
            Some("return_url"),
            "return_url can only be passed when confirm=true",
        ),
        (
            form_with(
                charge_form_without_types("job_1"),
                &[],
                &[("return_url", "not a url")],
            ),
            Some("return_url"),
            "Not a valid URL",
        ),
        (
            form_with(
                charge_form_without_types("job_1"),
                &[],
                &[("automatic_payment_methods[allow_redirects]", "never")],
            ),
            Some("automatic_payment_methods[enabled]"),
            "Missing required param",
        ),
        (
            form_with(
                charge_form_without_types("job_1"),
                &[],
                &[
                    ("automatic_payment_methods[enabled]", "false"),
                    ("automatic_payment_methods[allow_redirects]", "never"),
                ],
            ),
            Some("automatic_payment_methods[allow_redirects]"),
            "can only be set when",
        ),
        (
            form_with(
                charge_form_without_types("job_1"),
                &[],
                &[
                    ("automatic_payment_methods[enabled]", "true"),
                    ("automatic_payment_methods[allow_redirects]", "sometimes"),
                ],
            ),
            Some("automatic_payment_methods[allow_redirects]"),
            "must be one of always or never",
        ),
        (
            form_with(
                charge_form_without_types("job_1"),
                &[],
                &[("automatic_payment_methods[enabled]", "yes")],
            ),
            Some("automatic_payment_methods[enabled]"),
            "Invalid boolean",
        ),
    ];
    for (form, param, message) in cases {
        let (status, body) = create_versioned(&fake, None, &form, None).await;
        assert_eq!(status, 400, "{message}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"].as_str(), param, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{body}"
        );
    }
    assert!(fake.charges().is_empty());

    // Disabled automatic payment methods fall back to cards and confirm without a return_url.
    let form = form_with(
        charge_form_without_types("job_2"),
        &[],
        &[("automatic_payment_methods[enabled]", "false")],
    );
    let (status, pi) = create_versioned(&fake, None, &form, None).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["automatic_payment_methods"], Value::Null);
    assert_eq!(pi["payment_method_types"], json!(["card"]));
}

#[tokio::test]
async fn a_malformed_stripe_version_is_refused_and_runs_nothing() {
    let fake = fake().await;
    for version in ["latest", "2024-6-20", "2024-06-20."] {
        let (status, body) =
            create_versioned(&fake, Some(version), &charge_form("job_1"), Some("k")).await;
        assert_eq!(status, 400, "{version}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    assert!(fake.charges().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Credential failures

#[tokio::test]
async fn a_revoked_secret_key_gets_401_invalid_api_key_before_anything_runs() {
    let fake = fake().await;
    fake.push_outcome(Outcome::decline("insufficient_funds"));
    fake.revoke_secret_key();

    let res = create(&fake, &charge_form("job_1"), Some("k"))
        .await
        .expect("answered");
    assert!(header(&res, "idempotent-replayed").is_none());
    let (status, body) = json(res).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("Invalid API Key provided: sk_test_"),
        "{message}"
    );
    assert!(message.contains("****"), "{message}");
    assert!(
        !message.contains(fake.secret_key()),
        "the key is redacted: {message}"
    );
    let (status, _) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 401, "GETs too");
    assert_eq!(fake.pending_outcomes(), 1, "no scripted outcome was used");
    assert!(fake.charges().is_empty());
    assert!(fake.events().is_empty());

    fake.restore_secret_key();
    let res = create(&fake, &charge_form("job_1"), Some("k"))
        .await
        .expect("answered");
    assert!(
        header(&res, "idempotent-replayed").is_none(),
        "the 401 was not saved under the key"
    );
    assert_eq!(res.status(), 402, "the scripted decline is still next");
}

#[tokio::test]
async fn a_revoked_connected_account_gets_403_account_invalid_and_other_accounts_still_work() {
    let fake = fake().await;
    fake.revoke_account(ACCT_A);

    let (status, body) = json(
        create(&fake, &charge_form("job_1"), Some("k"))
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "account_invalid");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("The provided key 'sk_test_"),
        "{message}"
    );
    assert!(!message.contains(fake.secret_key()), "redacted: {message}");
    assert!(
        message.ends_with(&format!(
            "' does not have access to account '{ACCT_A}' (or that account does not exist). \
             Application access may have been revoked."
        )),
        "{message}"
    );
    let (status, _) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 403);
    let (status, _) = get(&fake, Some(ACCT_B), "/v1/payment_methods/pm_B").await;
    assert_eq!(status, 200, "another account is not affected");
    assert!(fake.charges().is_empty());
    assert!(fake.events().is_empty());

    fake.restore_account(ACCT_A);
    let res = create(&fake, &charge_form("job_1"), Some("k"))
        .await
        .expect("answered");
    assert!(
        header(&res, "idempotent-replayed").is_none(),
        "nothing was saved"
    );
    assert_eq!(res.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Slow and indeterminate answers

#[tokio::test]
async fn charge_then_trickle_sends_200_and_headers_then_the_body_one_byte_per_interval() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ChargeThenTrickle(Duration::from_millis(100)));
    // No overall timeout: the headers arrive, the body never ends.
    let started = Instant::now();
    let mut res = create_on(
        &fake,
        &Client::new(),
        ACCT_A,
        &charge_form("job_1"),
        Some("k"),
    )
    .await
    .expect("headers arrive");
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "idempotency-key").as_deref(), Some("k"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        fake.succeeded_charges().len(),
        1,
        "charged before answering"
    );

    let mut body = Vec::new();
    for _ in 0..5 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), res.chunk())
            .await
            .expect("a byte within the interval")
            .expect("the stream is healthy")
            .expect("the body has not ended");
        assert_eq!(chunk.len(), 1, "one byte at a time");
        body.extend_from_slice(&chunk);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "five bytes take four intervals"
    );
    assert_eq!(body, b"{\n  \"");
    drop(res);

    // The result was saved under the key: the retry replays the whole JSON at once.
    let res = create(&fake, &charge_form("job_1"), Some("k"))
        .await
        .expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    let (status, pi) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(pi["id"].as_str(), Some(fake.charges()[0].id.as_str()));
    assert_eq!(fake.charges().len(), 1);
    assert_eq!(
        fake.requests_to("POST", "/v1/payment_intents")[0].status,
        Some(200)
    );
}

#[tokio::test]
async fn a_client_with_a_timeout_gives_up_on_a_trickling_answer_although_it_was_charged() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ChargeThenTrickle(Duration::from_millis(50)));
    let impatient = Client::builder()
        .timeout(Duration::from_millis(600))
        .build()
        .expect("client");
    let res = create_on(&fake, &impatient, ACCT_A, &charge_form("job_1"), Some("k"))
        .await
        .expect("headers arrive in time");
    let err = res.bytes().await.expect_err("the body never ends");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(fake.succeeded_charges().len(), 1);
    let (status, _) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 200, "the fake still serves other requests");
}

#[tokio::test]
async fn charge_then_server_error_charges_but_answers_and_replays_a_saved_500() {
    let fake = fake().await;
    fake.push_outcome(Outcome::ChargeThenServerError);
    let form = charge_form("job_1");
    let res = create(&fake, &form, Some("k")).await.expect("answered");
    let request_id = header(&res, "request-id").expect("request id");
    let (status, first) = json(res).await;
    assert_eq!(status, 500);
    assert_eq!(first["error"]["type"], "api_error");

    let charges = fake.succeeded_charges();
    assert_eq!(charges.len(), 1, "the charge went through");
    assert_eq!(charges[0].idempotency_key.as_deref(), Some("k"));
    assert_eq!(
        event_types(&fake),
        [
            "payment_intent.created",
            "payment_intent.succeeded",
            "charge.succeeded"
        ]
    );
    assert_eq!(
        fake.events()[1]["request"]["id"],
        request_id.as_str(),
        "the webhook names the request that got the 500"
    );

    let res = create(&fake, &form, Some("k")).await.expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(
        header(&res, "original-request").as_deref(),
        Some(request_id.as_str())
    );
    let (status, second) = json(res).await;
    assert_eq!(status, 500, "the saved 500 is replayed, not the success");
    assert_eq!(second, first);
    assert_eq!(fake.charges().len(), 1);
    assert_eq!(fake.events().len(), 3, "the replay recorded nothing");

    let (status, pi) = get(
        &fake,
        Some(ACCT_A),
        &format!("/v1/payment_intents/{}", charges[0].id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(pi["status"], "succeeded", "looking it up tells the truth");
}

// ---------------------------------------------------------------------------------------------
// Card on file: customers, Checkout Sessions in setup mode, SetupIntents, payment methods

/// `POST path` with `form`, on `account` (`None`: the platform).
async fn post_to(
    fake: &FakeStripe,
    account: Option<&str>,
    path: &str,
    form: &[(&str, &str)],
    key: Option<&str>,
) -> Response {
    keyed(request(fake, Method::POST, path, account).form(form), key)
        .send()
        .await
        .expect("POST answered")
}

async fn post(
    fake: &FakeStripe,
    account: Option<&str>,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    json(post_to(fake, account, path, form, None).await).await
}

async fn delete(fake: &FakeStripe, account: Option<&str>, path: &str) -> (StatusCode, Value) {
    json(
        request(fake, Method::DELETE, path, account)
            .send()
            .await
            .expect("DELETE answered"),
    )
    .await
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

/// What the card-on-file flow sends to start a hosted setup page for `cus_A`.
const SETUP_SESSION: &[(&str, &str)] = &[
    ("mode", "setup"),
    ("customer", "cus_A"),
    ("currency", "usd"),
    (
        "success_url",
        "https://app.example/cards/saved?session={CHECKOUT_SESSION_ID}",
    ),
    ("cancel_url", "https://app.example/cards"),
    ("metadata[customer_id]", "c_1"),
    ("setup_intent_data[metadata][customer_id]", "c_1"),
    ("setup_intent_data[description]", "Card on file"),
    ("client_reference_id", "c_1"),
];

/// Creates the setup session on account A and returns it.
async fn setup_session(fake: &FakeStripe) -> Value {
    let (status, session) = post(fake, Some(ACCT_A), "/v1/checkout/sessions", SETUP_SESSION).await;
    assert_eq!(status, 200, "{session}");
    session
}

fn id_of(object: &Value) -> String {
    object["id"].as_str().expect("an id").to_owned()
}

fn assert_refused(status: StatusCode, body: &Value, param: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["param"], param, "{body}");
}

#[tokio::test]
async fn creating_a_customer_answers_a_cus_object_and_records_customer_created_on_its_account() {
    let fake = fake().await;
    let res = post_to(
        &fake,
        Some(ACCT_A),
        "/v1/customers",
        &[
            ("email", "ada@example.com"),
            ("name", "Ada Lovelace"),
            ("phone", "+15555550100"),
            ("description", "Client of business A"),
            ("metadata[client_id]", "c_1"),
        ],
        Some("client-c_1"),
    )
    .await;
    let request_id = header(&res, "request-id").expect("request id");
    let (status, customer) = json(res).await;
    assert_eq!(status, 200, "{customer}");
    assert!(id_of(&customer).starts_with("cus_"));
    assert_eq!(customer["object"], "customer");
    assert_eq!(customer["email"], "ada@example.com");
    assert_eq!(customer["name"], "Ada Lovelace");
    assert_eq!(customer["phone"], "+15555550100");
    assert_eq!(customer["description"], "Client of business A");
    assert_eq!(customer["metadata"], json!({"client_id": "c_1"}));
    assert_eq!(customer["livemode"], false);
    assert!(
        customer["created"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000)
    );
    assert_eq!(
        customer["invoice_settings"]["default_payment_method"],
        Value::Null
    );

    let path = format!("/v1/customers/{}", id_of(&customer));
    assert_eq!(
        get(&fake, Some(ACCT_A), &path).await,
        (StatusCode::OK, customer.clone())
    );
    let (status, body) = get(&fake, Some(ACCT_B), &path).await;
    assert_eq!(status, 404, "another account does not see it");
    assert_eq!(body["error"]["code"], "resource_missing");

    let events = events_of(&fake, "customer.created");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["account"], ACCT_A);
    assert_eq!(events[0]["data"]["object"], customer);
    assert_eq!(events[0]["request"]["id"], request_id.as_str());
    assert_eq!(events[0]["request"]["idempotency_key"], "client-c_1");
}

#[tokio::test]
async fn customer_parameters_are_validated_like_stripe_and_refusals_create_nothing() {
    let fake = fake().await;
    let (status, body) = post(&fake, Some(ACCT_A), "/v1/customers", &[("colour", "red")]).await;
    assert_refused(status, &body, "colour");
    assert_eq!(body["error"]["code"], "parameter_unknown");

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/customers",
        &[("address[line1]", "1 Main St")],
    )
    .await;
    assert_refused(status, &body, "address");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("does not implement"), "{message}");

    let long_email = format!("{}@example.com", "a".repeat(520));
    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/customers",
        &[("email", &long_email)],
    )
    .await;
    assert_refused(status, &body, "email");

    let long_key = format!("metadata[{}]", "k".repeat(41));
    let (status, body) = post(&fake, Some(ACCT_A), "/v1/customers", &[(&long_key, "v")]).await;
    assert_refused(status, &body, &long_key);

    assert_eq!(fake.customers().len(), 2, "only the two seeded customers");
    assert!(fake.events().is_empty());
}

#[tokio::test]
async fn customer_field_lengths_follow_stripes_spec_so_a_phone_over_20_characters_is_refused() {
    let fake = fake().await;
    let path = "/v1/customers";
    // A number as people write it, 22 characters with its punctuation (15 digits).
    let formatted = "+44 (20) 7946-0958 123";
    assert_eq!(formatted.chars().count(), 22);
    let long_name = "n".repeat(257);
    let long_description = "d".repeat(5001);
    for (name, value) in [
        ("phone", formatted),
        ("name", long_name.as_str()),
        ("description", long_description.as_str()),
    ] {
        let (status, body) = post(&fake, Some(ACCT_A), path, &[(name, value)]).await;
        assert_refused(status, &body, name);
    }
    assert_eq!(fake.customers().len(), 2, "only the two seeded customers");

    let digits_only = "+442079460958123";
    let twenty = "+44 20 7946 0958 123";
    assert_eq!(twenty.chars().count(), 20);
    let name = "n".repeat(256);
    let description = "d".repeat(5000);
    for phone in [digits_only, twenty] {
        let (status, customer) = post(
            &fake,
            Some(ACCT_A),
            path,
            &[
                ("phone", phone),
                ("name", &name),
                ("description", &description),
            ],
        )
        .await;
        assert_eq!(status, 200, "{customer}");
        assert_eq!(customer["phone"], phone);
    }
    assert_eq!(fake.customers().len(), 4);
}

#[tokio::test]
async fn customers_seeded_by_add_payment_method_are_retrievable_and_listed_with_their_account() {
    let fake = fake().await;
    fake.add_payment_method(None, "cus_P", "pm_P", "amex", "0005", 3, 2030);
    let (status, customer) = get(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(status, 200, "{customer}");
    assert_eq!(customer["object"], "customer");
    assert_eq!(customer["id"], "cus_A");
    let (status, _) = get(&fake, None, "/v1/customers/cus_P").await;
    assert_eq!(status, 200, "a platform customer is on the platform");
    let (status, _) = get(&fake, None, "/v1/customers/cus_A").await;
    assert_eq!(status, 404, "and not cus_A, which is account A's");

    let listed: Vec<(Value, Value)> = fake
        .customers()
        .iter()
        .map(|c| (c["id"].clone(), c["_account"].clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (json!("cus_A"), json!(ACCT_A)),
            (json!("cus_B"), json!(ACCT_B)),
            (json!("cus_P"), Value::Null),
        ]
    );
}

#[tokio::test]
async fn deleting_a_customer_answers_the_deleted_stub_records_customer_deleted_and_detaches_its_cards()
 {
    let fake = fake().await;
    let (_, before) = get(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    let (status, body) = delete(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"id": "cus_A", "object": "customer", "deleted": true})
    );

    let deleted = events_of(&fake, "customer.deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["account"], ACCT_A);
    assert_eq!(
        deleted[0]["data"]["object"], before,
        "the customer as it was"
    );
    assert!(
        events_of(&fake, "payment_method.detached").is_empty(),
        "Stripe documents no detach events for a deleted customer"
    );

    let (status, stub) = get(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(
        status, 200,
        "a deleted customer is still retrievable as a stub"
    );
    assert_eq!(stub["deleted"], true);
    let (_, pm) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(pm["customer"], Value::Null, "its card was detached");

    let (status, body) = delete(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(status, 404, "deleting twice: {body}");
    assert_eq!(body["error"]["code"], "resource_missing");

    let (status, body) = json(
        create(&fake, &charge_form("job_1"), None)
            .await
            .expect("answered"),
    )
    .await;
    assert_refused(status, &body, "customer");
    assert_eq!(body["error"]["code"], "resource_missing");

    let listed = fake.customers();
    let cus_a = listed.iter().find(|c| c["id"] == "cus_A").expect("cus_A");
    assert_eq!(cus_a["deleted"], true);
}

#[tokio::test]
async fn deleting_another_accounts_customer_is_404_and_deletes_nothing() {
    let fake = fake().await;
    let (status, body) = delete(&fake, Some(ACCT_B), "/v1/customers/cus_A").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "resource_missing");
    let (status, customer) = get(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(status, 200);
    assert!(customer.get("deleted").is_none());
    assert!(fake.events().is_empty());
}

#[tokio::test]
async fn a_customer_post_replays_under_its_key_per_account_and_refuses_other_parameters() {
    let fake = fake().await;
    let form = [("email", "ada@example.com")];
    let first = post_to(&fake, Some(ACCT_A), "/v1/customers", &form, Some("k1")).await;
    let first_id = header(&first, "request-id").expect("request id");
    let first_body = first.bytes().await.expect("body");

    let again = post_to(&fake, Some(ACCT_A), "/v1/customers", &form, Some("k1")).await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header(&again, "original-request"), Some(first_id));
    assert_eq!(
        again.bytes().await.expect("body"),
        first_body,
        "byte for byte"
    );

    let (status, body) = json(
        post_to(
            &fake,
            Some(ACCT_A),
            "/v1/customers",
            &[("email", "grace@example.com")],
            Some("k1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");

    let other = post_to(&fake, Some(ACCT_B), "/v1/customers", &form, Some("k1")).await;
    assert!(
        header(&other, "idempotent-replayed").is_none(),
        "keys are per account"
    );
    assert_eq!(other.status(), 200);

    assert_eq!(
        fake.customers().len(),
        4,
        "two seeded, one per account created"
    );
    assert_eq!(events_of(&fake, "customer.created").len(), 2);
}

#[tokio::test]
async fn a_setup_mode_checkout_session_is_created_open_with_a_hosted_url_and_no_setup_intent_yet() {
    let fake = fake().await;
    let before = unix_now();
    let session = setup_session(&fake).await;
    let id = id_of(&session);
    assert!(id.starts_with("cs_test_"), "{id}");
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["mode"], "setup");
    assert_eq!(session["status"], "open");
    assert_eq!(
        session["url"],
        format!("https://checkout.stripe.com/c/pay/{id}")
    );
    assert_eq!(session["customer"], "cus_A");
    assert_eq!(session["setup_intent"], Value::Null);
    assert_eq!(
        session["success_url"],
        "https://app.example/cards/saved?session={CHECKOUT_SESSION_ID}"
    );
    assert_eq!(session["cancel_url"], "https://app.example/cards");
    assert_eq!(session["client_reference_id"], "c_1");
    assert_eq!(session["metadata"], json!({"customer_id": "c_1"}));
    assert_eq!(session["payment_method_types"], json!(["card"]));
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["livemode"], false);
    let created = session["created"].as_i64().expect("created");
    assert!(created >= before);
    assert_eq!(
        session["expires_at"].as_i64(),
        Some(created + 24 * 60 * 60),
        "24 hours by default"
    );

    let path = format!("/v1/checkout/sessions/{id}");
    assert_eq!(
        get(&fake, Some(ACCT_A), &path).await,
        (StatusCode::OK, session.clone())
    );
    let (status, body) = get(&fake, Some(ACCT_B), &path).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");

    assert!(
        fake.events().is_empty(),
        "Stripe has no event for a created session"
    );
    let listed = fake.checkout_sessions();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["_account"], ACCT_A);
}

#[tokio::test]
async fn checkout_session_parameters_are_refused_as_stripe_refuses_them() {
    let fake = fake().await;
    let path = "/v1/checkout/sessions";
    let without = |names: &[&str]| -> Vec<(&str, &str)> {
        SETUP_SESSION
            .iter()
            .copied()
            .filter(|(k, _)| !names.contains(k))
            .collect()
    };
    fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        SETUP_SESSION.iter().chain(extra).copied().collect()
    }

    let (status, body) = post(&fake, Some(ACCT_A), path, &without(&["mode"])).await;
    assert_refused(status, &body, "mode");
    assert_eq!(body["error"]["code"], "parameter_missing");

    let mut payment = without(&["mode"]);
    payment.push(("mode", "payment"));
    let (status, body) = post(&fake, Some(ACCT_A), path, &payment).await;
    assert_refused(status, &body, "mode");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("setup mode only"), "{message}");

    let (status, body) = post(&fake, Some(ACCT_A), path, &without(&["success_url"])).await;
    assert_refused(status, &body, "success_url");
    assert_eq!(body["error"]["code"], "parameter_missing");

    let mut bad_url = without(&["success_url"]);
    bad_url.push(("success_url", "not a url"));
    let (status, body) = post(&fake, Some(ACCT_A), path, &bad_url).await;
    assert_refused(status, &body, "success_url");

    let (status, body) = post(&fake, Some(ACCT_A), path, &without(&["currency"])).await;
    assert_refused(status, &body, "currency");

    let mut card_only = without(&["currency"]);
    card_only.push(("payment_method_types[]", "card"));
    let (status, body) = post(&fake, Some(ACCT_A), path, &card_only).await;
    assert_eq!(
        status, 200,
        "with payment_method_types, currency is optional: {body}"
    );
    assert_eq!(body["currency"], Value::Null);

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        path,
        &with(&[("payment_method_types[]", "sepa_debit")]),
    )
    .await;
    assert_refused(status, &body, "payment_method_types[0]");

    let mut unknown_customer = without(&["customer"]);
    unknown_customer.push(("customer", "cus_nobody"));
    let (status, body) = post(&fake, Some(ACCT_A), path, &unknown_customer).await;
    assert_refused(status, &body, "customer");
    assert_eq!(body["error"]["code"], "resource_missing");
    let (status, body) = post(&fake, Some(ACCT_B), path, SETUP_SESSION).await;
    assert_refused(status, &body, "customer");
    assert_eq!(
        body["error"]["code"], "resource_missing",
        "account A's customer does not exist on B"
    );

    for offset in [10 * 60, 25 * 60 * 60] {
        let at = (unix_now() + offset).to_string();
        let (status, body) = post(
            &fake,
            Some(ACCT_A),
            path,
            &with(&[("expires_at", at.as_str())]),
        )
        .await;
        assert_refused(status, &body, "expires_at");
    }
    let at = unix_now() + 60 * 60;
    let at_text = at.to_string();
    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        path,
        &with(&[("expires_at", at_text.as_str())]),
    )
    .await;
    assert_eq!(
        status, 200,
        "an hour is within 30 minutes to 24 hours: {body}"
    );
    assert_eq!(body["expires_at"], at);

    let (status, body) = post(&fake, Some(ACCT_A), path, &with(&[("colour", "red")])).await;
    assert_refused(status, &body, "colour");
    assert_eq!(body["error"]["code"], "parameter_unknown");
    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        path,
        &with(&[("setup_intent_data[colour]", "red")]),
    )
    .await;
    assert_refused(status, &body, "setup_intent_data[colour]");
    assert_eq!(body["error"]["code"], "parameter_unknown");
    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        path,
        &with(&[("line_items[0][price]", "price_1")]),
    )
    .await;
    assert_refused(status, &body, "line_items");

    // Lowercase ISO codes only; URLs of at most 5000 characters; a SetupIntent description of
    // at most 1000.
    let mut upper = without(&["currency"]);
    upper.push(("currency", "USD"));
    let (status, body) = post(&fake, Some(ACCT_A), path, &upper).await;
    assert_refused(status, &body, "currency");
    let long_url = format!("https://app.example/{}", "a".repeat(5000));
    let mut long_success = without(&["success_url"]);
    long_success.push(("success_url", long_url.as_str()));
    let (status, body) = post(&fake, Some(ACCT_A), path, &long_success).await;
    assert_refused(status, &body, "success_url");
    let mut long_cancel = without(&["cancel_url"]);
    long_cancel.push(("cancel_url", long_url.as_str()));
    let (status, body) = post(&fake, Some(ACCT_A), path, &long_cancel).await;
    assert_refused(status, &body, "cancel_url");
    let long_description = "d".repeat(1001);
    let mut described = without(&["setup_intent_data[description]"]);
    described.push(("setup_intent_data[description]", long_description.as_str()));
    let (status, body) = post(&fake, Some(ACCT_A), path, &described).await;
    assert_refused(status, &body, "setup_intent_data[description]");
    let long_reference = "r".repeat(201);
    let mut referenced = without(&["client_reference_id"]);
    referenced.push(("client_reference_id", long_reference.as_str()));
    let (status, body) = post(&fake, Some(ACCT_A), path, &referenced).await;
    assert_refused(status, &body, "client_reference_id");

    assert_eq!(
        fake.checkout_sessions().len(),
        2,
        "only the two accepted ones"
    );
}

#[tokio::test]
async fn a_refused_checkout_session_is_not_saved_under_its_key_and_an_accepted_one_replays() {
    let fake = fake().await;
    let path = "/v1/checkout/sessions";
    let no_currency: Vec<(&str, &str)> = SETUP_SESSION
        .iter()
        .copied()
        .filter(|(k, _)| *k != "currency")
        .collect();
    let res = post_to(&fake, Some(ACCT_A), path, &no_currency, Some("setup-c_1")).await;
    assert_eq!(res.status(), 400);

    // A refusal is not saved, so the same key with corrected parameters runs for real.
    let first = post_to(&fake, Some(ACCT_A), path, SETUP_SESSION, Some("setup-c_1")).await;
    assert!(header(&first, "idempotent-replayed").is_none());
    let (status, session) = json(first).await;
    assert_eq!(status, 200);

    let again = post_to(&fake, Some(ACCT_A), path, SETUP_SESSION, Some("setup-c_1")).await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let (_, replayed) = json(again).await;
    assert_eq!(replayed["id"], session["id"]);
    assert_eq!(fake.checkout_sessions().len(), 1, "one session, not two");
}

#[tokio::test]
async fn completing_a_checkout_session_saves_the_card_and_records_four_events_in_order() {
    let fake = fake().await;
    let session = setup_session(&fake).await;
    let id = id_of(&session);
    let setup_intent_id = fake.complete_checkout_session(&id, "pm_saved", "visa", "1881", 8, 2031);
    assert!(setup_intent_id.starts_with("seti_"), "{setup_intent_id}");

    assert_eq!(
        event_types(&fake),
        [
            "setup_intent.created",
            "payment_method.attached",
            "setup_intent.succeeded",
            "checkout.session.completed"
        ]
    );
    for event in fake.events() {
        assert_eq!(event["account"], ACCT_A, "{event}");
        assert_eq!(event["request"]["id"], Value::Null, "{event}");
    }
    let created = &events_of(&fake, "setup_intent.created")[0]["data"]["object"];
    assert_eq!(created["status"], "requires_payment_method");
    assert_eq!(created["payment_method"], Value::Null);

    let (status, completed) =
        get(&fake, Some(ACCT_A), &format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(completed["status"], "complete");
    assert_eq!(completed["setup_intent"], setup_intent_id.as_str());
    assert_eq!(
        completed["url"],
        Value::Null,
        "only an open session has a url"
    );
    assert_eq!(
        events_of(&fake, "checkout.session.completed")[0]["data"]["object"],
        completed
    );

    let seti_path = format!("/v1/setup_intents/{setup_intent_id}");
    let (status, setup_intent) = get(&fake, Some(ACCT_A), &seti_path).await;
    assert_eq!(status, 200, "{setup_intent}");
    assert_eq!(setup_intent["object"], "setup_intent");
    assert_eq!(setup_intent["status"], "succeeded");
    assert_eq!(setup_intent["payment_method"], "pm_saved");
    assert_eq!(setup_intent["customer"], "cus_A");
    assert_eq!(setup_intent["usage"], "off_session");
    assert_eq!(setup_intent["metadata"], json!({"customer_id": "c_1"}));
    assert_eq!(setup_intent["description"], "Card on file");
    assert_eq!(
        events_of(&fake, "setup_intent.succeeded")[0]["data"]["object"],
        setup_intent
    );
    let (status, _) = get(&fake, Some(ACCT_B), &seti_path).await;
    assert_eq!(status, 404, "the SetupIntent is account A's");

    let (status, pm) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_saved").await;
    assert_eq!(status, 200);
    assert_eq!(pm["customer"], "cus_A");
    assert_eq!(pm["card"]["last4"], "1881");
    assert_eq!(pm["card"]["exp_month"], 8);
    assert_eq!(pm["card"]["exp_year"], 2031);
    assert_eq!(
        events_of(&fake, "payment_method.attached")[0]["data"]["object"],
        pm
    );

    // The saved card can then be charged off-session.
    let form = form_with(
        charge_form("job_1"),
        &["payment_method"],
        &[("payment_method", "pm_saved")],
    );
    let (status, pi) = json(create(&fake, &form, None).await.expect("answered")).await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["status"], "succeeded");
}

#[tokio::test]
async fn expiring_a_checkout_session_records_checkout_session_expired() {
    let fake = fake().await;
    let id = id_of(&setup_session(&fake).await);
    fake.expire_checkout_session(&id);
    let (_, session) = get(&fake, Some(ACCT_A), &format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(session["status"], "expired");
    assert_eq!(session["url"], Value::Null);
    assert_eq!(session["setup_intent"], Value::Null);
    let events = fake.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "checkout.session.expired");
    assert_eq!(events[0]["account"], ACCT_A);
    assert_eq!(events[0]["data"]["object"], session);
}

#[tokio::test]
#[should_panic(expected = "only an open one can be completed")]
async fn complete_checkout_session_panics_on_an_expired_session() {
    let fake = fake().await;
    let id = id_of(&setup_session(&fake).await);
    fake.expire_checkout_session(&id);
    fake.complete_checkout_session(&id, "pm_late", "visa", "4242", 1, 2030);
}

#[tokio::test]
#[should_panic(expected = "No such checkout.session")]
async fn complete_checkout_session_panics_on_an_unknown_session() {
    let fake = fake().await;
    fake.complete_checkout_session("cs_test_nope", "pm_x", "visa", "4242", 1, 2030);
}

#[tokio::test]
async fn detaching_a_payment_method_answers_it_without_customer_and_it_cannot_be_used_again() {
    let fake = fake().await;
    let path = "/v1/payment_methods/pm_A/detach";
    let res = post_to(&fake, Some(ACCT_A), path, &[], Some("detach-pm_A")).await;
    let request_id = header(&res, "request-id").expect("request id");
    let (status, pm) = json(res).await;
    assert_eq!(status, 200, "{pm}");
    assert_eq!(pm["id"], "pm_A");
    assert_eq!(pm["customer"], Value::Null);

    let events = events_of(&fake, "payment_method.detached");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["account"], ACCT_A);
    assert_eq!(events[0]["data"]["object"], pm);
    assert!(
        events[0]["data"].get("previous_attributes").is_none(),
        "Stripe documents previous_attributes only for *.updated events"
    );
    assert_eq!(events[0]["request"]["id"], request_id.as_str());

    let (_, retrieved) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(retrieved["customer"], Value::Null);

    let again = post_to(&fake, Some(ACCT_A), path, &[], Some("detach-pm_A")).await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(again.status(), 200, "the same key replays the detach");
    let (status, body) = post(&fake, Some(ACCT_A), path, &[]).await;
    assert_refused(status, &body, "payment_method");
    assert_eq!(events_of(&fake, "payment_method.detached").len(), 1);

    let (status, body) = json(
        create(&fake, &charge_form("job_1"), None)
            .await
            .expect("answered"),
    )
    .await;
    assert_refused(status, &body, "payment_method");
    assert!(fake.charges().is_empty());

    let (status, body) = post(&fake, Some(ACCT_B), path, &[]).await;
    assert_eq!(status, 404, "account B has no pm_A: {body}");
    assert_eq!(body["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn detach_payment_method_helper_records_the_same_event_without_a_request() {
    let fake = fake().await;
    fake.detach_payment_method(Some(ACCT_B), "pm_B");
    let events = fake.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "payment_method.detached");
    assert_eq!(events[0]["account"], ACCT_B);
    assert_eq!(events[0]["request"]["id"], Value::Null);
    assert_eq!(events[0]["data"]["object"]["customer"], Value::Null);
    let (_, pm) = get(&fake, Some(ACCT_B), "/v1/payment_methods/pm_B").await;
    assert_eq!(pm["customer"], Value::Null);
}

#[tokio::test]
async fn update_card_records_automatically_updated_or_updated_with_previous_attributes() {
    let fake = fake().await;
    fake.update_card(Some(ACCT_A), "pm_A", 9, 2038, Some("1111"), true);
    let event = &fake.events()[0];
    assert_eq!(event["type"], "payment_method.automatically_updated");
    assert_eq!(event["account"], ACCT_A);
    assert_eq!(
        event["data"]["previous_attributes"],
        json!({"card": {"exp_month": 12, "exp_year": 2034, "last4": "4242"}})
    );
    let card = &event["data"]["object"]["card"];
    assert_eq!(
        (card["exp_month"].clone(), card["exp_year"].clone()),
        (json!(9), json!(2038))
    );
    assert_eq!(card["last4"], "1111");
    let (_, pm) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(pm, event["data"]["object"], "the API shows the new card");

    fake.update_card(Some(ACCT_A), "pm_A", 10, 2038, None, false);
    let event = &fake.events()[1];
    assert_eq!(event["type"], "payment_method.updated");
    assert_eq!(
        event["data"]["previous_attributes"],
        json!({"card": {"exp_month": 9}}),
        "only what changed"
    );
}

// ---------------------------------------------------------------------------------------------
// Refunds, disputes, connected accounts

/// Charges `charge_form(job)` on account A and returns the PaymentIntent.
async fn charged(fake: &FakeStripe, job: &str) -> Value {
    let (status, pi) = json(
        create(fake, &charge_form(job), None)
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 200, "{pi}");
    pi
}

#[tokio::test]
async fn a_full_refund_by_payment_intent_answers_a_succeeded_refund_and_marks_the_charge_refunded()
{
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    let charge_id = pi["latest_charge"].as_str().expect("charge id");
    let pi_id = id_of(&pi);
    let events_before = fake.events().len();

    let (status, refund) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[
            ("payment_intent", &pi_id),
            ("reason", "requested_by_customer"),
            ("metadata[booking_id]", "bkg_1"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refund}");
    assert!(id_of(&refund).starts_with("re_"));
    assert_eq!(refund["object"], "refund");
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["amount"], 12500, "all of it by default");
    assert_eq!(refund["charge"], charge_id);
    assert_eq!(refund["payment_intent"], pi_id.as_str());
    assert_eq!(refund["currency"], "usd");
    assert_eq!(refund["reason"], "requested_by_customer");
    assert_eq!(refund["metadata"], json!({"booking_id": "bkg_1"}));

    let (status, charge) = get(&fake, Some(ACCT_A), &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(status, 200, "{charge}");
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["amount"], 12500);
    assert_eq!(charge["amount_captured"], 12500);
    assert_eq!(charge["amount_refunded"], 12500);
    assert_eq!(charge["refunded"], true);
    assert_eq!(charge["paid"], true);
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["payment_intent"], pi_id.as_str());
    assert_eq!(
        charge["metadata"]["job_id"], "job_1",
        "the PaymentIntent's metadata is on its charge"
    );

    let types: Vec<String> = event_types(&fake).split_off(events_before);
    assert_eq!(types, ["refund.created", "charge.refunded"]);
    assert_eq!(
        events_of(&fake, "refund.created")[0]["data"]["object"],
        refund
    );
    let refunded = &events_of(&fake, "charge.refunded")[0];
    assert_eq!(refunded["data"]["object"], charge);
    assert_eq!(refunded["account"], ACCT_A);
}

#[tokio::test]
async fn partial_refunds_add_up_and_refunding_more_than_is_left_is_refused_with_stripes_message() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    let charge_id = pi["latest_charge"].as_str().expect("charge id").to_owned();

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("charge", &charge_id), ("amount", "20000")],
    )
    .await;
    assert_refused(status, &body, "amount");
    assert_eq!(
        body["error"]["message"],
        "Refund amount ($200.00) is greater than charge amount ($125.00)"
    );

    let (status, first) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("charge", &charge_id), ("amount", "5000")],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["amount"], 5000);
    let (_, charge) = get(&fake, Some(ACCT_A), &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["amount_refunded"], 5000);
    assert_eq!(charge["refunded"], false, "partly refunded");

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("charge", &charge_id), ("amount", "8000")],
    )
    .await;
    assert_refused(status, &body, "amount");
    assert_eq!(
        body["error"]["message"],
        "Refund amount ($80.00) is greater than unrefunded amount on charge ($75.00)"
    );

    let (status, rest) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("charge", &charge_id)],
    )
    .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["amount"], 7500, "what is left");
    let (_, charge) = get(&fake, Some(ACCT_A), &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["amount_refunded"], 12500);
    assert_eq!(charge["refunded"], true);

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("charge", &charge_id)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "charge_already_refunded");
    assert_eq!(events_of(&fake, "refund.created").len(), 2);
}

#[tokio::test]
async fn refunds_are_refused_for_missing_unknown_failed_or_foreign_payments_and_bad_parameters() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    let pi_id = id_of(&pi);
    fake.push_outcome(Outcome::decline("insufficient_funds"));
    let (status, declined) = json(
        create(&fake, &charge_form("job_2"), None)
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 402);
    let declined_id = declined["error"]["payment_intent"]["id"]
        .as_str()
        .expect("declined intent")
        .to_owned();

    let (status, body) = post(&fake, Some(ACCT_A), "/v1/refunds", &[("amount", "100")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "parameter_missing");

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("payment_intent", "pi_nope")],
    )
    .await;
    assert_refused(status, &body, "payment_intent");
    assert_eq!(body["error"]["code"], "resource_missing");

    let (status, body) = post(
        &fake,
        Some(ACCT_B),
        "/v1/refunds",
        &[("payment_intent", &pi_id)],
    )
    .await;
    assert_refused(status, &body, "payment_intent");
    assert_eq!(
        body["error"]["code"], "resource_missing",
        "account A's intent does not exist on B"
    );

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("payment_intent", &declined_id)],
    )
    .await;
    assert_refused(status, &body, "payment_intent");

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("payment_intent", &pi_id), ("reason", "changed_my_mind")],
    )
    .await;
    assert_refused(status, &body, "reason");

    let (status, body) = post(
        &fake,
        Some(ACCT_A),
        "/v1/refunds",
        &[("payment_intent", &pi_id), ("colour", "red")],
    )
    .await;
    assert_refused(status, &body, "colour");
    assert_eq!(body["error"]["code"], "parameter_unknown");

    assert!(events_of(&fake, "refund.created").is_empty());
    let (_, charge) = get(
        &fake,
        Some(ACCT_A),
        &format!(
            "/v1/charges/{}",
            pi["latest_charge"].as_str().expect("charge")
        ),
    )
    .await;
    assert_eq!(charge["amount_refunded"], 0, "nothing was refunded");
}

#[tokio::test]
async fn a_refund_replays_under_its_idempotency_key_without_refunding_twice() {
    let fake = fake().await;
    let pi_id = id_of(&charged(&fake, "job_1").await);
    let form = [("payment_intent", pi_id.as_str()), ("amount", "1000")];
    let (status, first) =
        json(post_to(&fake, Some(ACCT_A), "/v1/refunds", &form, Some("refund-1")).await).await;
    assert_eq!(status, 200);
    let again = post_to(&fake, Some(ACCT_A), "/v1/refunds", &form, Some("refund-1")).await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let (_, replayed) = json(again).await;
    assert_eq!(replayed, first);

    let other = [("payment_intent", pi_id.as_str()), ("amount", "2000")];
    let (status, body) =
        json(post_to(&fake, Some(ACCT_A), "/v1/refunds", &other, Some("refund-1")).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");

    assert_eq!(events_of(&fake, "refund.created").len(), 1);
    let charged_event = &events_of(&fake, "charge.refunded")[0];
    assert_eq!(charged_event["data"]["object"]["amount_refunded"], 1000);
}

#[tokio::test]
async fn the_refund_helper_follows_the_same_rules_and_records_the_same_events() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    let refund_id = fake.refund(&id_of(&pi), Some(2500));
    assert!(refund_id.starts_with("re_"), "{refund_id}");
    let created = &events_of(&fake, "refund.created")[0];
    assert_eq!(created["data"]["object"]["id"], refund_id.as_str());
    assert_eq!(created["data"]["object"]["amount"], 2500);
    assert_eq!(created["account"], ACCT_A);
    assert_eq!(created["request"]["id"], Value::Null);
    let refunded = &events_of(&fake, "charge.refunded")[0]["data"]["object"];
    assert_eq!(refunded["amount_refunded"], 2500);
    assert_eq!(refunded["refunded"], false);

    fake.refund(&id_of(&pi), None);
    let (_, charge) = get(
        &fake,
        Some(ACCT_A),
        &format!(
            "/v1/charges/{}",
            pi["latest_charge"].as_str().expect("charge")
        ),
    )
    .await;
    assert_eq!(charge["amount_refunded"], 12500);
    assert_eq!(charge["refunded"], true);
}

#[tokio::test]
#[should_panic(expected = "is greater than charge amount")]
async fn the_refund_helper_panics_on_a_refund_stripe_would_refuse() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    fake.refund(&id_of(&pi), Some(99_999));
}

#[tokio::test]
async fn charges_are_retrievable_from_their_account_only_and_failed_attempts_have_one_too() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    let path = format!(
        "/v1/charges/{}",
        pi["latest_charge"].as_str().expect("charge")
    );
    let (status, charge) = get(&fake, Some(ACCT_A), &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        events_of(&fake, "charge.succeeded")[0]["data"]["object"],
        charge,
        "the charge.succeeded object is the charge"
    );
    let (status, body) = get(&fake, Some(ACCT_B), &path).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");

    fake.push_outcome(Outcome::decline("generic_decline"));
    let (_, declined) = json(
        create(&fake, &charge_form("job_2"), None)
            .await
            .expect("answered"),
    )
    .await;
    let failed_id = declined["error"]["charge"].as_str().expect("failed charge");
    let (status, failed) = get(&fake, Some(ACCT_A), &format!("/v1/charges/{failed_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["paid"], false);
    assert_eq!(failed["amount_captured"], 0);
}

#[tokio::test]
async fn dispute_records_charge_dispute_created_with_a_needs_response_dispute() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    let charge_id = pi["latest_charge"].as_str().expect("charge");
    let dispute_id = fake.dispute(&id_of(&pi), "fraudulent");
    assert!(dispute_id.starts_with("dp_"), "{dispute_id}");
    let events = events_of(&fake, "charge.dispute.created");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["account"], ACCT_A);
    let dispute = &events[0]["data"]["object"];
    assert_eq!(dispute["id"], dispute_id.as_str());
    assert_eq!(dispute["object"], "dispute");
    assert_eq!(dispute["amount"], 12500);
    assert_eq!(dispute["currency"], "usd");
    assert_eq!(dispute["charge"], charge_id);
    assert_eq!(dispute["payment_intent"], pi["id"]);
    assert_eq!(dispute["reason"], "fraudulent");
    assert_eq!(dispute["status"], "needs_response");
    let (_, charge) = get(&fake, Some(ACCT_A), &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["disputed"], true);
}

#[tokio::test]
#[should_panic(expected = "is not a dispute reason")]
async fn dispute_panics_on_a_reason_stripe_does_not_have() {
    let fake = fake().await;
    let pi = charged(&fake, "job_1").await;
    fake.dispute(&id_of(&pi), "i_changed_my_mind");
}

#[tokio::test]
async fn disabling_charges_records_account_updated_and_refuses_confirmed_payment_intents() {
    let fake = fake().await;
    fake.set_charges_enabled(ACCT_A, false);
    let events = fake.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "account.updated");
    assert_eq!(event["account"], ACCT_A);
    let account = &event["data"]["object"];
    assert_eq!(account["id"], ACCT_A);
    assert_eq!(account["object"], "account");
    assert_eq!(account["charges_enabled"], false);
    assert_eq!(account["payouts_enabled"], true);
    assert_eq!(account["details_submitted"], true);
    assert_eq!(
        account["requirements"]["disabled_reason"],
        "requirements.past_due"
    );
    assert_eq!(
        event["data"]["previous_attributes"]["charges_enabled"],
        true
    );

    fake.push_outcome(Outcome::Succeed);
    let res = create(&fake, &charge_form("job_1"), Some("job_1-a1"))
        .await
        .expect("answered");
    let (status, body) = json(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("This Connect account cannot currently make live charges."),
        "{message}"
    );
    assert!(fake.charges().is_empty(), "nothing was created");
    assert_eq!(fake.pending_outcomes(), 1, "the script was not used");

    let unconfirmed = form_with(charge_form("job_1"), &["confirm", "off_session"], &[]);
    let (status, _) = json(create(&fake, &unconfirmed, None).await.expect("answered")).await;
    assert_eq!(status, 200, "creating without confirming is still possible");
    let (status, _) = json(
        create_on(
            &fake,
            &client(),
            ACCT_B,
            &form_with(
                charge_form("job_1"),
                &["customer", "payment_method"],
                &[("customer", "cus_B"), ("payment_method", "pm_B")],
            ),
            None,
        )
        .await
        .expect("answered"),
    )
    .await;
    assert_eq!(status, 200, "account B is not affected");

    fake.set_charges_enabled(ACCT_A, true);
    let updated = events_of(&fake, "account.updated");
    assert_eq!(updated.len(), 2);
    assert_eq!(updated[1]["data"]["object"]["charges_enabled"], true);
    assert_eq!(
        updated[1]["data"]["object"]["requirements"]["disabled_reason"],
        Value::Null
    );
    assert_eq!(
        updated[1]["data"]["previous_attributes"]["charges_enabled"],
        false
    );
    let res = create(&fake, &charge_form("job_1"), Some("job_1-a1"))
        .await
        .expect("answered");
    assert!(
        header(&res, "idempotent-replayed").is_none(),
        "the refusal was not saved under the key"
    );
    assert_eq!(res.status(), 200);

    fake.set_charges_enabled(ACCT_A, true);
    assert_eq!(
        events_of(&fake, "account.updated").len(),
        2,
        "no change, no event"
    );
}

#[tokio::test]
async fn deauthorize_records_account_application_deauthorized_then_the_account_gets_403() {
    let fake = fake().await;
    fake.deauthorize(ACCT_A);
    let events = fake.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "account.application.deauthorized");
    assert_eq!(events[0]["account"], ACCT_A);
    let application = &events[0]["data"]["object"];
    assert_eq!(application["object"], "application");
    assert!(
        application["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ca_")),
        "{application}"
    );
    assert_eq!(
        application["name"],
        mio_tests::fake_stripe::APPLICATION_NAME
    );

    let (status, body) = get(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "account_invalid");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("Application access may have been revoked.")),
        "{body}"
    );
    let (status, _) = get(&fake, Some(ACCT_B), "/v1/customers/cus_B").await;
    assert_eq!(status, 200, "other accounts are not affected");
    fake.restore_account(ACCT_A);
    let (status, _) = get(&fake, Some(ACCT_A), "/v1/customers/cus_A").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn card_on_file_events_are_delivered_signed_like_the_payment_intent_events() {
    let fake = fake().await;
    let receiver = Receiver::start().await;
    fake.set_webhook_url(&receiver.url);
    let id = id_of(&setup_session(&fake).await);
    fake.complete_checkout_session(&id, "pm_saved", "visa", "4242", 1, 2032);
    fake.set_charges_enabled(ACCT_B, false);
    let results = fake.deliver_pending().await;
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|(_, status)| *status == 200));
    let received = receiver.received();
    assert_eq!(received.len(), 5);
    for delivered in &received {
        let signature = delivered.headers.get("stripe-signature").expect("signed");
        assert!(verify_signature(
            fake.webhook_secret(),
            signature,
            &delivered.body
        ));
        assert_eq!(
            fake.event_payload(&delivered.event_id()).as_deref(),
            std::str::from_utf8(&delivered.body).ok()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Under load: latency, random faults, rate limiting, arrivals, charges per metadata value

/// What a test needs to send requests from spawned tasks (a `FakeStripe` is not `'static`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_every_answer_and_64_requests_in_flight_wait_side_by_side() {
    let fake = fake().await;
    let latency = Duration::from_millis(200);
    fake.set_latency(latency);

    let started = Instant::now();
    let (status, _) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= latency, "a GET waits too");

    let target = Target::of(&fake, client());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64 {
        let target = target.clone();
        tasks.spawn(async move {
            let job = format!("job_{n}");
            let sent = Instant::now();
            let answer = target.create(&charge_form(&job), &job).await;
            (answer, sent.elapsed())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (answer, took) = joined.expect("task");
        let (status, _, pi) = answer.expect("answered");
        assert_eq!(status, 200, "{pi}");
        assert!(
            took >= latency,
            "answered after {took:?}, before the latency"
        );
    }
    let elapsed = started.elapsed();
    eprintln!("64 concurrent creates with {latency:?} latency: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "64 concurrent requests with 200 ms latency took {elapsed:?}: they were serialized"
    );
    assert_eq!(fake.charges_per_metadata("job_id").len(), 64);

    fake.set_latency(Duration::ZERO);
    let started = Instant::now();
    get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert!(started.elapsed() < latency, "zero latency again");
}

#[tokio::test]
async fn a_request_that_reached_the_fake_executes_even_if_the_client_stops_waiting_for_it() {
    let fake = fake().await;
    fake.set_latency(Duration::from_millis(400));
    let impatient = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let err = create_on(&fake, &impatient, ACCT_A, &charge_form("job_1"), Some("k"))
        .await
        .expect_err("the client gives up first");
    assert!(err.is_timeout(), "{err}");
    assert!(fake.charges().is_empty(), "not executed before the latency");
    eventually("the charge went through after the latency", || {
        fake.succeeded_charges().len() == 1
    })
    .await;
    fake.set_latency(Duration::ZERO);
    let res = create(&fake, &charge_form("job_1"), Some("k"))
        .await
        .expect("answered");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(fake.succeeded_charges().len(), 1);
}

/// Sends a create for each of `jobs` keys (key = job id) from `workers` tasks, retrying the
/// same key after a `500` or a dropped connection until it gets a `200`; returns how many
/// `200`s were idempotent replays.
async fn charge_all_with_retries(target: &Target, jobs: usize, workers: usize) -> usize {
    let next = Arc::new(Mutex::new(0..jobs));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let target = target.clone();
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut replays = 0;
            loop {
                let Some(n) = next.lock().expect("lock").next() else {
                    return replays;
                };
                let job = format!("job_{n}");
                let form = charge_form(&job);
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 50, "{job} never went through");
                    match target.create(&form, &job).await {
                        Ok((status, replayed, body)) if status == 200 => {
                            assert_eq!(body["status"], "succeeded");
                            replays += usize::from(replayed);
                            break;
                        }
                        Ok((status, _, body)) => {
                            assert_eq!(status, 500, "{body}");
                            assert_eq!(body["error"]["type"], "api_error");
                        }
                        Err(e) => assert!(!e.is_timeout(), "dropped, not hung: {e}"),
                    }
                }
            }
        });
    }
    let mut replays = 0;
    while let Some(joined) = tasks.join_next().await {
        replays += joined.expect("task");
    }
    replays
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_hit_about_rate_of_executions_and_same_key_retries_never_charge_twice() {
    let fake = fake().await;
    let rate = 0.3;
    fake.set_random_faults(rate, 42);
    let jobs = 400;
    let replays = charge_all_with_retries(&Target::of(&fake, client()), jobs, 16).await;

    let faults = fake.injected_faults();
    let drops = faults
        .iter()
        .filter(|(_, f)| *f == Outcome::ChargeThenDropConnection)
        .count();
    let errors = faults
        .iter()
        .filter(|(_, f)| *f == Outcome::ServerErrorBeforeExecution)
        .count();
    assert_eq!(drops + errors, faults.len());
    // Draws: every request that got as far as executing, never a replay. Each job executed once
    // with a charge (plain, or then dropped), plus once per 500 it got before that.
    let draws = jobs + errors;
    #[allow(clippy::cast_precision_loss)]
    let observed = faults.len() as f64 / draws as f64;
    assert!(
        (rate - 0.1..=rate + 0.1).contains(&observed),
        "{} faults in {draws} draws: {observed}",
        faults.len()
    );
    assert!(
        drops > 0 && errors > 0,
        "both kinds: {drops} drops, {errors} 500s"
    );
    assert_eq!(
        replays, drops,
        "the retry after each dropped connection is a replay of the charge it made"
    );

    // Exactly one charge per key and per job, although some keys were sent several times.
    let per_job = fake.charges_per_metadata("job_id");
    assert_eq!(per_job.len(), jobs);
    assert!(per_job.values().all(|&n| n == 1), "a job was charged twice");
    let charges = fake.succeeded_charges();
    assert_eq!(charges.len(), jobs);
    let keys: std::collections::HashSet<_> =
        charges.iter().map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), jobs);
    // Each fault is a request the fake recorded: a dropped one has no status, a 500 has 500.
    let requests = fake.requests_to("POST", "/v1/payment_intents");
    let by_id: BTreeMap<_, _> = requests
        .iter()
        .map(|r| (r.request_id.as_str(), r))
        .collect();
    for (request_id, fault) in &faults {
        let status = by_id[request_id.as_str()].status;
        match fault {
            Outcome::ChargeThenDropConnection => assert_eq!(status, None),
            _ => assert_eq!(status, Some(500)),
        }
    }
}

#[tokio::test]
async fn the_same_seed_injects_the_same_faults_and_rate_zero_injects_none() {
    async fn kinds(rate: f64, seed: u64) -> Vec<Outcome> {
        let fake = fake().await;
        fake.set_random_faults(rate, seed);
        let target = Target::of(&fake, client());
        for n in 0..60 {
            let job = format!("job_{n}");
            let _ = target.create(&charge_form(&job), &job).await;
        }
        fake.injected_faults().into_iter().map(|(_, f)| f).collect()
    }
    let first = kinds(0.5, 7).await;
    assert!(!first.is_empty());
    assert_eq!(kinds(0.5, 7).await, first);
    assert_ne!(kinds(0.5, 8).await, first);
    assert!(kinds(0.0, 7).await.is_empty());
}

#[tokio::test]
async fn scripted_outcomes_take_precedence_over_random_faults() {
    let fake = fake().await;
    fake.set_random_faults(1.0, 1);
    fake.push_outcome(Outcome::Succeed);
    let (status, _) = json(
        create(&fake, &charge_form("job_1"), Some("k1"))
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(fake.injected_faults().is_empty());
    // With rate 1 every execution is faulted, and replays are not: the 200 above replays.
    let res = create(&fake, &charge_form("job_1"), Some("k1"))
        .await
        .expect("a replay is never faulted");
    assert_eq!(header(&res, "idempotent-replayed").as_deref(), Some("true"));
    assert!(fake.injected_faults().is_empty());
    let _ = create(&fake, &charge_form("job_2"), Some("k2")).await;
    assert_eq!(fake.injected_faults().len(), 1);
}

#[tokio::test]
async fn rate_limit_for_answers_429_rate_limit_in_the_window_saves_nothing_and_then_lets_through() {
    let fake = fake().await;
    let form = charge_form("job_1");
    let res = create(&fake, &charge_form("job_0"), Some("k0"))
        .await
        .expect("answered");
    assert_eq!(res.status(), 200, "before the window");

    let window = Duration::from_millis(600);
    let window_start = Instant::now();
    fake.rate_limit_for(window);
    fake.push_outcome(Outcome::decline("insufficient_funds"));
    let res = create(&fake, &form, Some("k1")).await.expect("answered");
    assert!(
        header(&res, "stripe-should-retry").is_none(),
        "Stripe does not document Stripe-Should-Retry on a 429"
    );
    assert!(header(&res, "idempotent-replayed").is_none());
    let (status, body) = json(res).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "rate_limit");
    let (status, body) = get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    assert_eq!(status, 429, "every API request: {body}");
    let res = client()
        .get(format!("{}/v1/payment_methods/pm_A", fake.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        res.status(),
        429,
        "even without a key: the limiter comes first"
    );
    assert_eq!(fake.pending_outcomes(), 1, "no scripted outcome used");
    assert_eq!(fake.succeeded_charges().len(), 1, "nothing executed");

    tokio::time::sleep_until((window_start + window).into()).await;
    let res = create(&fake, &form, Some("k1")).await.expect("answered");
    assert!(
        header(&res, "idempotent-replayed").is_none(),
        "the 429 was not saved under the key"
    );
    let (status, body) = json(res).await;
    assert_eq!(
        status, 402,
        "the same key executes, with the queued outcome"
    );
    assert_eq!(body["error"]["decline_code"], "insufficient_funds");
    let statuses: Vec<_> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(200), Some(429), Some(429), Some(429), Some(402)]
    );
}

#[tokio::test]
async fn api_request_times_records_every_arrival_in_order() {
    let fake = fake().await;
    let before = Instant::now();
    fake.rate_limit_for(Duration::from_millis(300));
    for _ in 0..5 {
        get(&fake, Some(ACCT_A), "/v1/payment_methods/pm_A").await;
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let after_window = Instant::now();
    for n in 0..3 {
        let job = format!("job_{n}");
        create(&fake, &charge_form(&job), Some(&job))
            .await
            .expect("answered");
    }
    let after = Instant::now();

    let times = fake.api_request_times();
    assert_eq!(times.len(), 8);
    assert_eq!(times.len(), fake.requests().len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in arrival order");
    assert!(times.iter().all(|t| (before..=after).contains(t)));
    let (during, later): (Vec<Instant>, Vec<Instant>) =
        times.iter().partition(|t| **t < after_window);
    assert_eq!((during.len(), later.len()), (5, 3));
    let limited = fake
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(limited, 5);
}

#[tokio::test]
async fn charges_per_metadata_counts_succeeded_intents_per_value_and_shows_duplicates() {
    let fake = fake().await;
    // Two attempts of job_1 with two keys: Stripe charges twice, and so does the fake.
    create(&fake, &charge_form("job_1"), Some("job_1:1"))
        .await
        .expect("answered");
    create(&fake, &charge_form("job_1"), Some("job_1:2"))
        .await
        .expect("answered");
    // A replay is not a charge.
    create(&fake, &charge_form("job_2"), Some("job_2:1"))
        .await
        .expect("answered");
    create(&fake, &charge_form("job_2"), Some("job_2:1"))
        .await
        .expect("answered");
    // Neither is a decline.
    fake.push_outcome(Outcome::decline("generic_decline"));
    create(&fake, &charge_form("job_3"), Some("job_3:1"))
        .await
        .expect("answered");

    let per_job = fake.charges_per_metadata("job_id");
    assert_eq!(
        per_job,
        std::collections::HashMap::from([("job_1".to_owned(), 2), ("job_2".to_owned(), 1)])
    );
    assert_eq!(
        fake.charges_per_metadata("booking_id"),
        std::collections::HashMap::from([("bkg_1".to_owned(), 3)])
    );
    assert!(fake.charges_per_metadata("no_such_key").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_requests_from_64_connections_are_served_without_slowing_down() {
    let fake = fake().await;
    let customers = 500;
    let seeding = Instant::now();
    for n in 0..customers {
        fake.add_payment_method(
            Some(ACCT_A),
            &format!("cus_{n}"),
            &format!("pm_{n}"),
            "visa",
            "4242",
            12,
            2034,
        );
    }
    let seeding = seeding.elapsed();
    let target = Target::of(&fake, client());
    let jobs = 5_000;
    let next = Arc::new(Mutex::new(0..jobs));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let target = target.clone();
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            loop {
                let Some(n) = next.lock().expect("lock").next() else {
                    return;
                };
                let job = format!("job_{n}");
                let customer = format!("cus_{}", n % customers);
                let pm = format!("pm_{}", n % customers);
                let form = form_with(
                    charge_form(&job),
                    &["customer", "payment_method"],
                    &[("customer", &customer), ("payment_method", &pm)],
                );
                let (status, _, pi) = target.create(&form, &job).await.expect("answered");
                assert_eq!(status, 200, "{pi}");
                // The app's reconciliation: retrieve by id, then search by metadata.
                let id = pi["id"].as_str().expect("id");
                let res = target
                    .request(
                        Method::GET,
                        &format!("/v1/payment_intents/{id}"),
                        Some(ACCT_A),
                    )
                    .send()
                    .await
                    .expect("answered");
                assert_eq!(res.status(), 200);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    let elapsed = started.elapsed();
    let last = jobs - 1;
    let (status, found) = get(
        &fake,
        Some(ACCT_A),
        &format!("/v1/payment_intents/search?query=metadata%5B%27job_id%27%5D%3A%27job_{last}%27"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["data"].as_array().map(Vec::len), Some(1));
    let per_job = fake.charges_per_metadata("job_id");
    assert_eq!(per_job.len(), jobs);
    assert!(per_job.values().all(|&n| n == 1));
    let times = fake.api_request_times();
    assert_eq!(times.len(), 2 * jobs + 1);
    // "Without slowing down": with 5,000 intents stored, the last quarter of the requests is
    // served at about the rate of the second (the first holds the warm-up). Per-request work
    // that grew with the stored state (scans, clones of every intent) would stretch the last
    // quarter; 3× leaves room for a busy machine, not for that.
    let quarter = times.len() / 4;
    let second = times[2 * quarter] - times[quarter];
    let last = times[4 * quarter - 1] - times[3 * quarter];
    eprintln!(
        "seeded {customers} cards in {seeding:?}; {} requests in {elapsed:?}; second quarter \
         {second:?}, last quarter {last:?}",
        2 * jobs
    );
    assert!(
        last <= second * 3 + Duration::from_millis(500),
        "the last quarter took {last:?}, the second {second:?}: later requests got slower"
    );
    // A hang guard only.
    assert!(elapsed < Duration::from_secs(120), "{elapsed:?}");
}

#[tokio::test]
async fn a_held_request_is_recorded_but_neither_executed_nor_answered_until_released() {
    let fake = fake().await;
    fake.hold();
    let target = Target::of(&fake, client());
    let pending = tokio::spawn(async move { target.create(&charge_form("job_held"), "k").await });
    while fake.api_request_times().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Arrived, yet nothing ran and no answer came.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "a held request is not answered");
    assert!(
        fake.charges_per_metadata("job_id").is_empty(),
        "nor executed"
    );

    fake.release();
    let (status, _, pi) = pending.await.expect("task").expect("answered");
    assert_eq!(status, 200, "{pi}");
    assert_eq!(fake.charges_per_metadata("job_id").len(), 1);
}
