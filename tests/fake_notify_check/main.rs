//! Drives the notification fakes (`mio_tests::fake_notify`) over real HTTP and checks the rules
//! they enforce: each provider's documented refusals, Resend's idempotency, Twilio's lack of it,
//! the webhook receiver's de-duplication, the scripted failures, and the Standard Webhooks check.

use std::time::Duration;

use mio_tests::fake_notify::{
    FakeResend, FakeTwilio, STANDARD_WEBHOOK_TOLERANCE_SECS, TWILIO_PHONE_NUMBER, WebhookSink,
    sign_standard_webhook, verify_standard_webhook,
};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn status_and_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.expect("a JSON body");
    (status, body)
}

// ---------------------------------------------------------------------------------------------
// Resend

fn email() -> Value {
    json!({
        "from": "Mio <ratings@mio.example>",
        "to": ["ann@customer.test"],
        "subject": "How did we do?",
        "text": "Rate us: https://mio.example/r/1",
        "html": "<p>Rate us</p>",
        "reply_to": ["owner@business.test"],
    })
}

fn resend_post(fake: &FakeResend) -> RequestBuilder {
    client()
        .post(format!("{}/emails", fake.url()))
        .bearer_auth(fake.api_key())
}

async fn send_email(fake: &FakeResend, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = resend_post(fake).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    status_and_json(request.send().await.expect("an answer")).await
}

fn assert_resend_error(answer: &(u16, Value), status: u16, name: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.1["statusCode"], json!(status), "{answer:?}");
    assert_eq!(answer.1["name"], json!(name), "{answer:?}");
    assert!(answer.1["message"].is_string(), "{answer:?}");
}

fn is_uuid_v4(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && parts[2].starts_with('4')
        && parts[3].starts_with(['8', '9', 'a', 'b'])
}

#[tokio::test]
async fn resend_sends_and_records_an_email() {
    let fake = FakeResend::start().await;
    assert!(fake.api_key().starts_with("re_test_"));
    let response = resend_post(&fake)
        .json(&email())
        .send()
        .await
        .expect("answer");
    assert!(response.headers().contains_key("ratelimit-limit"));
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().expect("an id");
    assert!(is_uuid_v4(id), "{id}");
    let emails = fake.emails();
    assert_eq!(emails.len(), 1);
    let sent = &emails[0];
    assert_eq!(sent.id, id);
    assert_eq!(sent.idempotency_key, None);
    assert_eq!(sent.from, "Mio <ratings@mio.example>");
    assert_eq!(sent.to, vec!["ann@customer.test".to_owned()]);
    assert_eq!(sent.subject, "How did we do?");
    assert_eq!(
        sent.text.as_deref(),
        Some("Rate us: https://mio.example/r/1")
    );
    assert_eq!(sent.html.as_deref(), Some("<p>Rate us</p>"));
    assert_eq!(sent.reply_to, vec!["owner@business.test".to_owned()]);

    // `to` and `reply_to` may be single strings.
    let mut single = email();
    single["to"] = json!("Ann <ann@customer.test>");
    single["reply_to"] = json!("owner@business.test");
    assert_eq!(send_email(&fake, None, &single).await.0, 200);
    assert_eq!(
        fake.emails()[1].to,
        vec!["Ann <ann@customer.test>".to_owned()]
    );
    assert_eq!(fake.requests(), 2);
}

/// `POST /emails` of [`email`] with `authorization` as the whole `Authorization` header (`None`:
/// without one).
async fn send_email_authorized(fake: &FakeResend, authorization: Option<&str>) -> (u16, Value) {
    let mut request = client()
        .post(format!("{}/emails", fake.url()))
        .json(&email());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    status_and_json(request.send().await.expect("an answer")).await
}

#[tokio::test]
async fn resend_refuses_missing_and_wrong_keys() {
    let fake = FakeResend::start().await;
    let answer = send_email_authorized(&fake, None).await;
    assert_resend_error(&answer, 401, "missing_api_key");
    let answer = send_email_authorized(&fake, Some("Bearer re_wrong")).await;
    assert_resend_error(&answer, 401, "validation_error");
    assert_eq!(answer.1["message"], "API key is invalid");
    // Not a key at all: a 400.
    for authorization in [
        format!("Basic {}", fake.api_key()),
        "Bearer not-a-key".to_owned(),
    ] {
        let answer = send_email_authorized(&fake, Some(&authorization)).await;
        assert_resend_error(&answer, 400, "validation_error");
    }
    let answer = send_email_authorized(&fake, Some("Bearer")).await;
    assert_resend_error(&answer, 401, "missing_api_key");
    assert!(fake.emails().is_empty());
    assert_eq!(fake.requests(), 5);
    let statuses: Vec<Option<u16>> = fake.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 400, 400, 401].map(Some).to_vec());
}

#[tokio::test]
async fn resend_refuses_invalid_emails() {
    let fake = FakeResend::start().await;
    let with = |field: &str, value: Value| {
        let mut body = email();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = email();
        body.as_object_mut().expect("object").remove(field);
        body
    };
    let cases = [
        (without("to"), 422, "missing_required_field"),
        (without("from"), 422, "missing_required_field"),
        (without("subject"), 422, "missing_required_field"),
        (
            without("text").tap_remove("html"),
            422,
            "missing_required_field",
        ),
        (with("to", json!("not-an-address")), 422, "validation_error"),
        (with("to", json!("")), 422, "validation_error"),
        (with("to", json!([])), 422, "validation_error"),
        (with("to", json!(["a@b.test", 7])), 422, "validation_error"),
        (
            with(
                "to",
                json!(
                    (0..51)
                        .map(|i| format!("c{i}@customer.test"))
                        .collect::<Vec<_>>()
                ),
            ),
            422,
            "validation_error",
        ),
        (with("reply_to", json!("nope")), 422, "validation_error"),
        (
            with("from", json!("ratings at mio")),
            422,
            "invalid_from_address",
        ),
        (
            with("from", json!("x@unverified.test")),
            403,
            "validation_error",
        ),
        (with("html", json!(3)), 422, "validation_error"),
        (with("replyTo", json!("a@b.test")), 422, "validation_error"),
        (with("attachments", json!([])), 422, "validation_error"),
        (
            with("tags", json!([{"name": "has space", "value": "x"}])),
            422,
            "validation_error",
        ),
        (
            with("headers", json!({"X-Entity": 5})),
            422,
            "validation_error",
        ),
    ];
    for (body, status, name) in &cases {
        let answer = send_email(&fake, Some("k-invalid"), body).await;
        assert_resend_error(&answer, *status, name);
    }
    // Exactly 50 recipients, tags and headers within the rules are fine.
    let mut fine = email();
    fine["to"] = json!(
        (0..50)
            .map(|i| format!("c{i}@customer.test"))
            .collect::<Vec<_>>()
    );
    fine["tags"] = json!([{"name": "kind", "value": "rating_request"}]);
    fine["headers"] = json!({"X-Entity-Ref-ID": "job-1"});
    // A refused request saved nothing under the key: the key still works.
    assert_eq!(send_email(&fake, Some("k-invalid"), &fine).await.0, 200);
    let emails = fake.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to.len(), 50);
    assert_eq!(
        emails[0].tags,
        vec![("kind".to_owned(), Some("rating_request".to_owned()))]
    );
    assert_eq!(emails[0].headers["X-Entity-Ref-ID"], "job-1");

    // Not JSON, or not sent as JSON.
    let answer = status_and_json(
        resend_post(&fake)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("a"),
    )
    .await;
    assert_resend_error(&answer, 400, "validation_error");
    let answer = status_and_json(
        resend_post(&fake)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("from=a%40mio.example")
            .send()
            .await
            .expect("a"),
    )
    .await;
    assert_resend_error(&answer, 400, "validation_error");

    // Unknown endpoint, wrong method.
    let answer = status_and_json(
        client()
            .post(format!("{}/email", fake.url()))
            .bearer_auth(fake.api_key())
            .json(&email())
            .send()
            .await
            .expect("a"),
    )
    .await;
    assert_resend_error(&answer, 404, "not_found");
    let answer = status_and_json(
        client()
            .get(format!("{}/emails", fake.url()))
            .bearer_auth(fake.api_key())
            .send()
            .await
            .expect("a"),
    )
    .await;
    assert_resend_error(&answer, 405, "method_not_allowed");

    // A domain verified later is accepted.
    fake.verify_domain("unverified.test");
    let mut other = email();
    other["from"] = json!("x@unverified.test");
    assert_eq!(send_email(&fake, None, &other).await.0, 200);
    assert_eq!(fake.emails().len(), 2);
}

trait TapRemove {
    fn tap_remove(self, field: &str) -> Self;
}

impl TapRemove for Value {
    fn tap_remove(mut self, field: &str) -> Value {
        self.as_object_mut().expect("object").remove(field);
        self
    }
}

#[tokio::test]
async fn resend_checks_the_idempotency_key_length() {
    let fake = FakeResend::start().await;
    let long = "k".repeat(257);
    assert_resend_error(
        &send_email(&fake, Some(&long), &email()).await,
        400,
        "invalid_idempotency_key",
    );
    assert_resend_error(
        &send_email(&fake, Some(""), &email()).await,
        400,
        "invalid_idempotency_key",
    );
    assert!(fake.emails().is_empty());
    let longest = "k".repeat(256);
    assert_eq!(send_email(&fake, Some(&longest), &email()).await.0, 200);
    assert_eq!(
        fake.emails()[0].idempotency_key.as_deref(),
        Some(longest.as_str())
    );
}

#[tokio::test]
async fn resend_replays_the_same_key_and_refuses_another_payload() {
    let fake = FakeResend::start().await;
    let first = send_email(&fake, Some("msg-1"), &email()).await;
    assert_eq!(first.0, 200);
    let again = send_email(&fake, Some("msg-1"), &email()).await;
    assert_eq!(again, first, "the same response, without sending again");
    assert_eq!(fake.emails().len(), 1);

    let mut other = email();
    other["subject"] = json!("Something else");
    assert_resend_error(
        &send_email(&fake, Some("msg-1"), &other).await,
        409,
        "invalid_idempotent_request",
    );
    assert_eq!(fake.emails().len(), 1);

    // Another key sends another e-mail; after 24 hours the same key sends anew.
    assert_ne!(send_email(&fake, Some("msg-2"), &email()).await, first);
    fake.expire_idempotency_keys();
    let later = send_email(&fake, Some("msg-1"), &email()).await;
    assert_eq!(later.0, 200);
    assert_ne!(later, first);
    assert_eq!(fake.emails().len(), 3);
    assert_eq!(fake.requests(), 5);
}

#[tokio::test]
async fn resend_refuses_a_concurrent_request_with_the_same_key() {
    let fake = FakeResend::start().await;
    fake.hold_next(Duration::from_millis(500));
    let request = resend_post(&fake)
        .header("Idempotency-Key", "msg-c")
        .json(&email());
    let original = tokio::spawn(async move { request.send().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_resend_error(
        &send_email(&fake, Some("msg-c"), &email()).await,
        409,
        "concurrent_idempotent_requests",
    );
    let original = original.await.expect("joined").expect("answered");
    let (status, body) = status_and_json(original).await;
    assert_eq!(status, 200);
    // Once finished, the key replays.
    assert_eq!(
        send_email(&fake, Some("msg-c"), &email()).await,
        (200, body)
    );
    assert_eq!(fake.emails().len(), 1);
}

#[tokio::test]
async fn resend_fail_next_sends_nothing() {
    let fake = FakeResend::start().await;
    fake.fail_next(500, "application_error", "An unexpected error occurred.");
    let answer = send_email(&fake, Some("msg-f"), &email()).await;
    assert_resend_error(&answer, 500, "application_error");
    assert_eq!(answer.1["message"], "An unexpected error occurred.");
    assert!(fake.emails().is_empty());
    // Nothing was saved under the key: the retry sends.
    assert_eq!(send_email(&fake, Some("msg-f"), &email()).await.0, 200);
    assert_eq!(fake.emails().len(), 1);

    fake.rate_limit_next();
    let response = resend_post(&fake).json(&email()).send().await.expect("a");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    assert_resend_error(&status_and_json(response).await, 429, "rate_limit_exceeded");
    assert_eq!(fake.emails().len(), 1);
}

#[tokio::test]
async fn resend_drop_next_answer_sends_then_hangs_up() {
    let fake = FakeResend::start().await;
    fake.drop_next_answer();
    let dropped = resend_post(&fake)
        .header("Idempotency-Key", "msg-d")
        .json(&email())
        .send()
        .await;
    assert!(dropped.is_err(), "no answer: {dropped:?}");
    let emails = fake.emails();
    assert_eq!(emails.len(), 1, "it was sent");
    assert_eq!(fake.received()[0].status, None);
    // The client's retry with the same key gets the original id; no second e-mail.
    let retry = send_email(&fake, Some("msg-d"), &email()).await;
    assert_eq!(retry, (200, json!({ "id": emails[0].id })));
    assert_eq!(fake.emails().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Twilio

/// A form `POST` to `url` with HTTP Basic `auth` (`None`: no `Authorization` header).
fn twilio_post(url: &str, auth: Option<(&str, &str)>, params: &[(&str, &str)]) -> RequestBuilder {
    let request = client().post(url).form(params);
    match auth {
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    }
}

/// Creating a message on the fake's account, with its credentials.
fn sms(fake: &FakeTwilio, params: &[(&str, &str)]) -> RequestBuilder {
    twilio_post(
        &fake.messages_url(),
        Some((fake.account_sid(), fake.auth_token())),
        params,
    )
}

/// The parameters of a text of `body` from the account's number to [`CUSTOMER`].
fn text_to_customer(body: &str) -> [(&'static str, &str); 3] {
    [
        ("To", CUSTOMER),
        ("From", TWILIO_PHONE_NUMBER),
        ("Body", body),
    ]
}

async fn send_sms(fake: &FakeTwilio, params: &[(&str, &str)]) -> (u16, Value) {
    status_and_json(sms(fake, params).send().await.expect("an answer")).await
}

fn assert_twilio_error(answer: &(u16, Value), status: u16, code: u32) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.1["status"], json!(status), "{answer:?}");
    assert_eq!(answer.1["code"], json!(code), "{answer:?}");
    assert_eq!(
        answer.1["more_info"],
        json!(format!("https://www.twilio.com/docs/errors/{code}")),
        "{answer:?}"
    );
    assert!(answer.1["message"].is_string(), "{answer:?}");
}

const CUSTOMER: &str = "+15551234567";

#[tokio::test]
async fn twilio_creates_a_message_for_every_request() {
    let fake = FakeTwilio::start().await;
    assert!(fake.account_sid().starts_with("AC") && fake.account_sid().len() == 34);
    let params = text_to_customer("How did we do? https://mio.example/r/1");
    let (status, first) = send_sms(&fake, &params).await;
    assert_eq!(status, 201, "{first}");
    let sid = first["sid"].as_str().expect("sid");
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(first["account_sid"], fake.account_sid());
    assert_eq!(first["to"], CUSTOMER);
    assert_eq!(first["from"], TWILIO_PHONE_NUMBER);
    assert_eq!(first["body"], params[2].1);
    assert_eq!(first["status"], "queued");
    assert_eq!(first["direction"], "outbound-api");
    assert_eq!(first["num_segments"], "1");
    assert_eq!(first["price"], Value::Null);
    assert_eq!(first["error_code"], Value::Null);
    assert_eq!(first["error_message"], Value::Null);
    assert_eq!(
        first["uri"],
        json!(format!(
            "/2010-04-01/Accounts/{}/Messages/{sid}.json",
            fake.account_sid()
        ))
    );
    let date = first["date_created"].as_str().expect("date");
    assert!(
        chrono::DateTime::parse_from_rfc2822(date).is_ok(),
        "RFC 2822: {date}"
    );

    // No idempotency: the identical request is a second text.
    let (status, second) = send_sms(&fake, &params).await;
    assert_eq!(status, 201);
    assert_ne!(second["sid"], first["sid"]);
    let messages = fake.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].sid, sid);
    assert_eq!(messages[0].to, CUSTOMER);
    assert_eq!(messages[0].from.as_deref(), Some(TWILIO_PHONE_NUMBER));
    assert_eq!(messages[0].body, params[2].1);
    assert_eq!(fake.requests(), 2);

    // Segments: 161 GSM-7 characters are two; a UCS-2 body of 71 is two.
    let (_, long) = send_sms(&fake, &text_to_customer(&"a".repeat(161))).await;
    assert_eq!(long["num_segments"], "2");
    let (_, unicode) = send_sms(&fake, &text_to_customer(&"é€✓".repeat(24))).await;
    assert_eq!(unicode["num_segments"], "2");
}

#[tokio::test]
async fn twilio_accepts_a_messaging_service() {
    let fake = FakeTwilio::start().await;
    let (status, message) = send_sms(
        &fake,
        &[
            ("To", CUSTOMER),
            ("MessagingServiceSid", fake.messaging_service_sid()),
            ("Body", "Hi"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["status"], "accepted");
    assert_eq!(message["from"], Value::Null);
    assert_eq!(message["num_segments"], "0");
    assert_eq!(
        message["messaging_service_sid"],
        fake.messaging_service_sid()
    );
    let other = format!("MG{}", "0".repeat(32));
    assert_twilio_error(
        &send_sms(
            &fake,
            &[
                ("To", CUSTOMER),
                ("MessagingServiceSid", other.as_str()),
                ("Body", "Hi"),
            ],
        )
        .await,
        400,
        21701,
    );
    assert_twilio_error(
        &send_sms(
            &fake,
            &[
                ("To", CUSTOMER),
                ("MessagingServiceSid", "MGnope"),
                ("Body", "Hi"),
            ],
        )
        .await,
        400,
        21705,
    );
    assert_twilio_error(
        &send_sms(
            &fake,
            &[
                ("To", CUSTOMER),
                ("MessagingServiceSid", fake.messaging_service_sid()),
            ],
        )
        .await,
        400,
        21619,
    );
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn twilio_refuses_bad_credentials() {
    let fake = FakeTwilio::start().await;
    let params = text_to_customer("Hi");
    let answer = |request: RequestBuilder| async move {
        status_and_json(request.send().await.expect("an answer")).await
    };
    let url = fake.messages_url();
    let no_auth = twilio_post(&url, None, &params).send().await.expect("a");
    assert!(no_auth.headers().contains_key("www-authenticate"));
    assert_twilio_error(&status_and_json(no_auth).await, 401, 20003);
    let wrong = twilio_post(&url, Some((fake.account_sid(), "wrong-token")), &params);
    assert_twilio_error(&answer(wrong).await, 401, 20003);
    let bearer = twilio_post(&url, None, &params).bearer_auth(fake.auth_token());
    assert_twilio_error(&answer(bearer).await, 401, 20003);
    let credentials = Some((fake.account_sid(), fake.auth_token()));
    // Valid credentials, another account in the path.
    let other_account = format!("AC{}", "1".repeat(32));
    let other = format!(
        "{}/2010-04-01/Accounts/{other_account}/Messages.json",
        fake.url()
    );
    let other = twilio_post(&other, credentials, &params);
    assert_twilio_error(&answer(other).await, 401, 20003);
    // An unknown resource.
    let calls = format!(
        "{}/2010-04-01/Accounts/{}/Calls.json",
        fake.url(),
        fake.account_sid()
    );
    let unknown = twilio_post(&calls, credentials, &params);
    assert_twilio_error(&answer(unknown).await, 404, 20404);
    assert!(fake.messages().is_empty());
    assert_eq!(fake.requests(), 5);
}

#[tokio::test]
async fn twilio_refuses_invalid_messages() {
    let fake = FakeTwilio::start().await;
    let from = TWILIO_PHONE_NUMBER;
    let long = "x".repeat(1601);
    // 801 characters, but 1,602 UTF-16 code units.
    let long_unicode = "😀".repeat(801);
    let cases: Vec<(Vec<(&str, &str)>, u32)> = vec![
        (vec![("From", from), ("Body", "Hi")], 21604),
        (vec![("To", ""), ("From", from), ("Body", "Hi")], 21604),
        (
            vec![("To", "5551234567"), ("From", from), ("Body", "Hi")],
            21211,
        ),
        (
            vec![("To", "+1 555 123 4567"), ("From", from), ("Body", "Hi")],
            21211,
        ),
        (vec![("To", "+0123"), ("From", from), ("Body", "Hi")], 21211),
        (vec![("To", CUSTOMER), ("Body", "Hi")], 21603),
        (
            vec![("To", CUSTOMER), ("From", "+15550009999"), ("Body", "Hi")],
            21606,
        ),
        (vec![("To", from), ("From", from), ("Body", "Hi")], 21266),
        (vec![("To", CUSTOMER), ("From", from)], 21602),
        (vec![("To", CUSTOMER), ("From", from), ("Body", "")], 21602),
        (
            vec![("To", CUSTOMER), ("From", from), ("Body", long.as_str())],
            21617,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("From", from),
                ("Body", long_unicode.as_str()),
            ],
            21617,
        ),
    ];
    for (params, code) in &cases {
        assert_twilio_error(&send_sms(&fake, params).await, 400, *code);
    }
    // A JSON body carries no form parameters: Twilio sees no `To`.
    let json_body = client()
        .post(fake.messages_url())
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .json(&json!({"To": CUSTOMER, "From": from, "Body": "Hi"}))
        .send()
        .await
        .expect("a");
    assert_twilio_error(&status_and_json(json_body).await, 400, 21604);
    assert!(fake.messages().is_empty());

    // At the limit, and media without a body, are accepted.
    let limit = "x".repeat(1600);
    assert_eq!(send_sms(&fake, &text_to_customer(&limit)).await.0, 201);
    let (status, mms) = send_sms(
        &fake,
        &[
            ("To", CUSTOMER),
            ("From", from),
            ("MediaUrl", "https://mio.example/a.png"),
        ],
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(mms["num_media"], "1");
    assert_eq!(fake.messages().len(), 2);
}

#[tokio::test]
async fn twilio_fail_next_and_drop_next_answer() {
    let fake = FakeTwilio::start().await;
    let params = text_to_customer("Hi");
    fake.fail_next(429, 20429, "Too Many Requests");
    assert_twilio_error(&send_sms(&fake, &params).await, 429, 20429);
    assert!(fake.messages().is_empty());

    fake.drop_next_answer();
    let dropped = sms(&fake, &params).send().await;
    assert!(dropped.is_err(), "no answer: {dropped:?}");
    assert_eq!(fake.messages().len(), 1, "the message was created");
    // A blind resend texts the customer a second time.
    assert_eq!(send_sms(&fake, &params).await.0, 201);
    assert_eq!(fake.messages().len(), 2);
    let statuses: Vec<Option<u16>> = fake.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(429), None, Some(201)]);
}

// ---------------------------------------------------------------------------------------------
// Webhook receiver

fn delivery(sink: &WebhookSink, id: &str, body: &str) -> RequestBuilder {
    client()
        .post(format!("{}/hooks/mio", sink.url()))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", "1700000000")
        .header("webhook-signature", "v1,c2lnbmF0dXJl")
        .body(body.to_owned())
}

#[tokio::test]
async fn webhook_sink_records_and_deduplicates() {
    let sink = WebhookSink::start().await;
    let first = delivery(&sink, "msg_1", r#"{"type":"a"}"#)
        .send()
        .await
        .expect("a");
    assert_eq!(first.status().as_u16(), 204);
    let again = delivery(&sink, "msg_1", r#"{"type":"a"}"#)
        .send()
        .await
        .expect("a");
    assert_eq!(
        again.status().as_u16(),
        204,
        "a duplicate is acknowledged too"
    );
    assert_eq!(
        delivery(&sink, "msg_2", r#"{"type":"b"}"#)
            .send()
            .await
            .expect("a")
            .status(),
        204
    );
    let deliveries = sink.deliveries();
    assert_eq!(deliveries.len(), 3);
    assert_eq!(deliveries[0].path, "/hooks/mio");
    assert_eq!(deliveries[0].header("Webhook-Id"), Some("msg_1"));
    assert_eq!(
        deliveries[0].header("webhook-timestamp"),
        Some("1700000000")
    );
    assert_eq!(deliveries[0].body, br#"{"type":"a"}"#);
    assert_eq!(deliveries[0].status, Some(204));
    let unique: Vec<String> = sink
        .unique_messages()
        .iter()
        .map(|d| d.header("webhook-id").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(unique, vec!["msg_1", "msg_2"]);

    let get = client().get(sink.url()).send().await.expect("a");
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(sink.unique_messages().len(), 2);
}

#[tokio::test]
async fn webhook_sink_fail_next_and_drop_next_answer() {
    let sink = WebhookSink::start().await;
    sink.fail_next(503);
    let refused = delivery(&sink, "msg_f", "{}").send().await.expect("a");
    assert_eq!(refused.status().as_u16(), 503);
    assert!(
        sink.unique_messages().is_empty(),
        "a refused delivery is not processed"
    );
    assert_eq!(
        delivery(&sink, "msg_f", "{}")
            .send()
            .await
            .expect("a")
            .status(),
        204
    );
    assert_eq!(sink.unique_messages().len(), 1);

    sink.drop_next_answer();
    let dropped = delivery(&sink, "msg_d", "{}").send().await;
    assert!(dropped.is_err(), "no answer: {dropped:?}");
    assert_eq!(
        sink.unique_messages().len(),
        2,
        "processed before the answer was lost"
    );
    // The sender's retry is acknowledged and not processed twice.
    assert_eq!(
        delivery(&sink, "msg_d", "{}")
            .send()
            .await
            .expect("a")
            .status(),
        204
    );
    assert_eq!(sink.deliveries().len(), 4);
    assert_eq!(sink.unique_messages().len(), 2);
    let statuses: Vec<Option<u16>> = sink.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![Some(503), Some(204), None, Some(204)]);
}

// ---------------------------------------------------------------------------------------------
// verify_standard_webhook

// The published vector: `test_sign` in the reference implementation
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/rust/src/lib.rs).
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TIMESTAMP: i64 = 1_649_367_553;
const PAYLOAD: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

fn headers(id: &str, timestamp: &str, signature: &str) -> Vec<(String, String)> {
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_owned()),
        ("webhook-signature".to_owned(), signature.to_owned()),
    ]
}

fn vector_headers() -> Vec<(String, String)> {
    headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE)
}

#[test]
fn signing_reproduces_the_published_vector() {
    assert_eq!(
        sign_standard_webhook(SECRET, MSG_ID, TIMESTAMP, PAYLOAD),
        Ok(SIGNATURE.to_owned())
    );
}

#[test]
fn verify_accepts_the_published_vector() {
    assert_eq!(
        verify_standard_webhook(SECRET, &vector_headers(), PAYLOAD, TIMESTAMP),
        Ok(())
    );
    // Within the tolerance either way, and with names in any case.
    let tolerance = STANDARD_WEBHOOK_TOLERANCE_SECS;
    assert!(
        verify_standard_webhook(SECRET, &vector_headers(), PAYLOAD, TIMESTAMP + tolerance).is_ok()
    );
    assert!(
        verify_standard_webhook(SECRET, &vector_headers(), PAYLOAD, TIMESTAMP - tolerance).is_ok()
    );
    let upper: Vec<(String, String)> = vector_headers()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), v))
        .collect();
    assert!(verify_standard_webhook(SECRET, &upper, PAYLOAD, TIMESTAMP).is_ok());
}

#[test]
fn verify_accepts_any_matching_v1_signature() {
    // Rotation: several signatures, one valid; `v1a` (asymmetric) entries are skipped.
    let list = format!(
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== \
         v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= {SIGNATURE}"
    );
    let with_list = headers(MSG_ID, &TIMESTAMP.to_string(), &list);
    assert!(verify_standard_webhook(SECRET, &with_list, PAYLOAD, TIMESTAMP).is_ok());
    let only_others = headers(
        MSG_ID,
        &TIMESTAMP.to_string(),
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= v1a,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    );
    assert!(verify_standard_webhook(SECRET, &only_others, PAYLOAD, TIMESTAMP).is_err());
}

#[test]
fn verify_rejects_tampering_wrong_secret_and_stale_timestamps() {
    let tampered = br#"{"email":"evil@example.com","username":"test_user"}"#;
    assert!(verify_standard_webhook(SECRET, &vector_headers(), tampered, TIMESTAMP).is_err());
    let other_id = headers("msg_other", &TIMESTAMP.to_string(), SIGNATURE);
    assert!(verify_standard_webhook(SECRET, &other_id, PAYLOAD, TIMESTAMP).is_err());
    let other_time = headers(MSG_ID, &(TIMESTAMP + 1).to_string(), SIGNATURE);
    assert!(verify_standard_webhook(SECRET, &other_time, PAYLOAD, TIMESTAMP).is_err());
    let wrong_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(verify_standard_webhook(wrong_secret, &vector_headers(), PAYLOAD, TIMESTAMP).is_err());
    assert!(
        verify_standard_webhook("whsec_not base64!", &vector_headers(), PAYLOAD, TIMESTAMP)
            .is_err()
    );
    let tolerance = STANDARD_WEBHOOK_TOLERANCE_SECS;
    let old = verify_standard_webhook(
        SECRET,
        &vector_headers(),
        PAYLOAD,
        TIMESTAMP + tolerance + 1,
    );
    assert!(old.is_err_and(|e| e.contains("too old")));
    let future = verify_standard_webhook(
        SECRET,
        &vector_headers(),
        PAYLOAD,
        TIMESTAMP - tolerance - 1,
    );
    assert!(future.is_err_and(|e| e.contains("future")));
    let not_a_number = headers(MSG_ID, "yesterday", SIGNATURE);
    assert!(verify_standard_webhook(SECRET, &not_a_number, PAYLOAD, TIMESTAMP).is_err());
    let unversioned = headers(
        MSG_ID,
        &TIMESTAMP.to_string(),
        "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    );
    assert!(verify_standard_webhook(SECRET, &unversioned, PAYLOAD, TIMESTAMP).is_err());
}

#[test]
fn verify_rejects_missing_headers() {
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let partial: Vec<(String, String)> = vector_headers()
            .into_iter()
            .filter(|(n, _)| n != missing)
            .collect();
        let result = verify_standard_webhook(SECRET, &partial, PAYLOAD, TIMESTAMP);
        assert!(result.is_err_and(|e| e.contains(missing)), "{missing}");
    }
}

#[tokio::test]
async fn a_signed_delivery_round_trips_through_the_sink() {
    let sink = WebhookSink::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"type":"payment_method.requested","data":{"customer":"cus_1"}}"#;
    let signature = sign_standard_webhook(secret, "msg_rt", now, body.as_bytes()).expect("sign");
    let response = client()
        .post(format!("{}/in", sink.url()))
        .header("webhook-id", "msg_rt")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .expect("a");
    assert_eq!(response.status().as_u16(), 204);
    let received = &sink.deliveries()[0];
    assert_eq!(
        verify_standard_webhook(secret, &received.headers, &received.body, now),
        Ok(())
    );
    let mut tampered = received.body.clone();
    tampered.push(b' ');
    assert!(verify_standard_webhook(secret, &received.headers, &tampered, now).is_err());
}
