//! `PUT /api/v1/customers/{id}/payment-method`: the card is looked up on the business's
//! connected Stripe account (the fake) and becomes the customer's primary card.

use crate::support::openapi;
use mio_tests::fake_stripe::FakeStripe;
use mio_tests::{Options, TestApp, assert_documented};
use reqwest::Method;
use serde_json::{Value, json};

const ACCT: &str = "acct_1Business";
const STRIPE_CUSTOMER: &str = "cus_StripeAda";
const ROUTE: &str = "/api/v1/customers/{id}/payment-method";

/// An app whose Stripe is `fake`.
async fn app_with(fake: &FakeStripe) -> TestApp {
    let mut options = Options::default();
    options.variables.insert(
        "SPIN_VARIABLE_STRIPE_SECRET_KEY".into(),
        fake.secret_key().to_owned(),
    );
    options
        .variables
        .insert("SPIN_VARIABLE_STRIPE_API_BASE".into(), fake.url());
    TestApp::spawn_with(options).await
}

/// An account (MioPay on when `miopay`) with one customer linked to `stripe_customer`;
/// returns (token, customer id).
async fn setup(app: &TestApp, miopay: bool, stripe_customer: Option<&str>) -> (String, String) {
    let (_, token) = app.create_account("Sparkle Cleaning").await;
    if miopay {
        let (status, body) = app
            .call(
                Method::PUT,
                "/api/v1/settings/miopay",
                Some(&token),
                Some(json!({"enabled": true, "stripe_account_id": ACCT})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, customer) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "Ada", "stripe_customer_id": stripe_customer})),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    (token, customer["id"].as_str().expect("id").to_owned())
}

async fn put_card(app: &TestApp, doc: &Value, token: &str, id: &str, pm: &str) -> (u16, Value) {
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/customers/{id}/payment-method"),
            Some(token),
            Some(json!({"payment_method_id": pm})),
        )
        .await;
    assert_documented(doc, &Method::PUT, ROUTE, status, &body);
    (status, body)
}

async fn get_customer(app: &TestApp, doc: &Value, token: &str, id: &str) -> Value {
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_documented(doc, &Method::GET, "/api/v1/customers/{id}", status, &body);
    assert_eq!(status, 200, "{body}");
    body
}

fn field_error(problem: &Value) -> (&str, &str) {
    (
        problem["errors"][0]["field"].as_str().unwrap_or_default(),
        problem["errors"][0]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_of_the_customer_is_stored_and_shown_on_the_customer() {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_visa",
        "visa",
        "4242",
        12,
        2030,
    );
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;

    let (status, customer) = put_card(&app, &doc, &token, &id, "pm_visa").await;
    assert_eq!(status, 200, "{customer}");
    let card = json!({"id": "pm_visa", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030});
    assert_eq!(customer["primary_payment_method"], card);
    assert_eq!(
        get_customer(&app, &doc, &token, &id).await["primary_payment_method"],
        card
    );
    let (status, list) = app
        .call(Method::GET, "/api/v1/customers", Some(&token), None)
        .await;
    assert_documented(&doc, &Method::GET, "/api/v1/customers", status, &list);
    assert_eq!(list["data"][0]["primary_payment_method"], card);
    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{id}"),
            Some(&token),
            Some(json!({"notes": "gate code 12"})),
        )
        .await;
    assert_documented(
        &doc,
        &Method::PATCH,
        "/api/v1/customers/{id}",
        status,
        &patched,
    );
    assert_eq!(patched["primary_payment_method"], card);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_carries_the_connected_account_and_the_platform_key() {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_visa",
        "visa",
        "4242",
        12,
        2030,
    );
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;
    assert_eq!(put_card(&app, &doc, &token, &id, "pm_visa").await.0, 200);

    let requests = fake.requests_to("GET", "/v1/payment_methods/pm_visa");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].stripe_account.as_deref(), Some(ACCT));
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {}", fake.secret_key()).as_str())
    );
    assert_eq!(requests[0].status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_card_makes_the_new_one_the_primary() {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_visa",
        "visa",
        "4242",
        12,
        2030,
    );
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_amex",
        "amex",
        "0005",
        3,
        2031,
    );
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;
    assert_eq!(put_card(&app, &doc, &token, &id, "pm_visa").await.0, 200);

    let (status, customer) = put_card(&app, &doc, &token, &id, "pm_amex").await;
    assert_eq!(status, 200, "{customer}");
    let shown = get_customer(&app, &doc, &token, &id).await["primary_payment_method"].clone();
    assert_eq!(
        shown,
        json!({"id": "pm_amex", "brand": "amex", "last4": "0005", "exp_month": 3, "exp_year": 2031})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_of_another_stripe_customer_is_refused_and_nothing_changes() {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_visa",
        "visa",
        "4242",
        12,
        2030,
    );
    fake.add_payment_method(
        Some(ACCT),
        "cus_SomeoneElse",
        "pm_other",
        "visa",
        "1111",
        1,
        2029,
    );
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;
    let before = put_card(&app, &doc, &token, &id, "pm_visa").await.1;

    let (status, problem) = put_card(&app, &doc, &token, &id, "pm_other").await;
    assert_eq!(status, 400, "{problem}");
    let (field, message) = field_error(&problem);
    assert_eq!(field, "payment_method_id");
    assert!(message.contains("belongs to another customer"), "{message}");
    assert_eq!(get_customer(&app, &doc, &token, &id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_malformed_payment_method_is_a_field_error() {
    let fake = FakeStripe::start().await;
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;

    let (status, problem) = put_card(&app, &doc, &token, &id, "pm_nowhere").await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        field_error(&problem),
        (
            "payment_method_id",
            "no such payment method on the connected Stripe account"
        )
    );
    let (status, problem) = put_card(&app, &doc, &token, &id, "card/../x").await;
    assert_eq!(
        (status, field_error(&problem).0),
        (400, "payment_method_id")
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "a malformed id never reaches Stripe"
    );
    assert_eq!(
        get_customer(&app, &doc, &token, &id).await["primary_payment_method"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_unreachable_answers_502_and_nothing_changes() {
    // The default options point stripe_api_base at a closed port.
    let app = TestApp::spawn_with(Options::default()).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;

    let (status, problem) = put_card(&app, &doc, &token, &id, "pm_visa").await;
    assert_eq!(status, 502, "{problem}");
    assert_eq!(problem["type"], "/problems/upstream-unavailable");
    assert_eq!(
        problem["detail"],
        "Stripe is unreachable; nothing was changed."
    );
    assert_eq!(
        get_customer(&app, &doc, &token, &id).await["primary_payment_method"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_miopay_or_a_stripe_customer_id_the_card_is_refused_with_409() {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_visa",
        "visa",
        "4242",
        12,
        2030,
    );
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;

    let (token, id) = setup(&app, false, Some(STRIPE_CUSTOMER)).await;
    let (status, problem) = put_card(&app, &doc, &token, &id, "pm_visa").await;
    assert_eq!(status, 409, "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("connect a Stripe account first (PUT /api/v1/settings/miopay)"),
        "{detail}"
    );

    let (token, id) = setup(&app, true, None).await;
    let (status, problem) = put_card(&app, &doc, &token, &id, "pm_visa").await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("stripe_customer_id")
    );
    assert!(fake.requests().is_empty(), "Stripe is not asked");
    assert_eq!(
        get_customer(&app, &doc, &token, &id).await["primary_payment_method"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_customer_answers_404_and_a_bad_body_400() {
    let fake = FakeStripe::start().await;
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (_, theirs) = setup(&app, false, Some(STRIPE_CUSTOMER)).await;
    let (token, mine) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;
    let (status, _) = put_card(&app, &doc, &token, &theirs, "pm_visa").await;
    assert_eq!(status, 404);
    let (status, problem) = app
        .call(
            Method::PUT,
            &format!("/api/v1/customers/{mine}/payment-method"),
            Some(&token),
            Some(json!({"payment_method": "pm_visa"})),
        )
        .await;
    assert_documented(&doc, &Method::PUT, ROUTE, status, &problem);
    assert_eq!(status, 400, "{problem}");
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_api_serves_the_card_and_the_customer_api_has_no_outbound_access() {
    let fake = FakeStripe::start().await;
    fake.add_payment_method(
        Some(ACCT),
        STRIPE_CUSTOMER,
        "pm_visa",
        "visa",
        "4242",
        12,
        2030,
    );
    let app = app_with(&fake).await;
    let doc = openapi(&app).await;
    let (token, id) = setup(&app, true, Some(STRIPE_CUSTOMER)).await;
    let before = app.calls_after("card-api", 0).await;
    let (status, customer) = put_card(&app, &doc, &token, &id, "pm_visa").await;
    assert_eq!(status, 200, "{customer}");
    let after = app.calls_after("card-api", before.invocations + 1).await;
    assert_eq!(
        after.calls.outbound_http - before.calls.outbound_http,
        1,
        "the one Stripe lookup"
    );
    get_customer(&app, &doc, &token, &id).await;
    // Account, MioPay, customer, and the customer read back: none went out.
    let customer_api = app.calls_after("customer-api", 4).await;
    assert_eq!(customer_api.calls.outbound_http, 0);
    // And it could not: the component holding the customer list may reach no host.
    let text =
        std::fs::read_to_string(mio_tests::workspace_root().join("spin.toml")).expect("spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("spin.toml is TOML");
    let hosts = &manifest["component"]["customer-api"]["allowed_outbound_hosts"];
    assert_eq!(hosts.as_array().map(Vec::len), Some(0), "{hosts}");
}
