//! The Service Feedback automation end to end: a completed booking's rating request goes out
//! from the tick on every channel the account uses (e-mail through Resend, SMS through Twilio, a
//! Standard Webhooks delivery), once, to local sinks that speak each provider's wire format;
//! the reasons not to send; provider failures; and "add your card" links sent on request.

use crate::bookings::{instant, run_of, runs};
use crate::cards::post_request;
use crate::feedback::token_hash;
use crate::support::{now_millis, openapi, unix_now};
use crate::tick::{Biz, Entry, setup_with};
use mio_tests::Options;
use mio_tests::fake_notify::{FakeResend, FakeTwilio, WebhookSink, verify_standard_webhook};
use reqwest::Method;
use serde_json::{Value, json};

const SENDER_DOMAIN: &str = "mail.sparkle.example";
const PUBLIC_BASE: &str = "https://mio.example";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CUSTOMER_EMAIL: &str = "ada@example.com";
const CUSTOMER_PHONE: &str = "+1 (415) 555-0123";

/// The shop of `tick::setup` with the three sinks wired in, feedback on (right after
/// completion), payments off, and a customer with an e-mail address and a phone number.
struct Shop {
    biz: Biz,
    resend: FakeResend,
    twilio: FakeTwilio,
    hook: WebhookSink,
}

async fn shop() -> Shop {
    let resend = FakeResend::start().await;
    resend.verify_domain(SENDER_DOMAIN);
    let twilio = FakeTwilio::start().await;
    let hook = WebhookSink::start().await;
    let mut options = Options::default();
    for (name, value) in [
        ("PUBLIC_BASE_URL", PUBLIC_BASE.to_owned()),
        ("FEEDBACK_LINK_SECRET", "k".repeat(40)),
        ("EMAIL_API_BASE", resend.url()),
        ("EMAIL_API_KEY", resend.api_key().to_owned()),
        (
            "EMAIL_FROM",
            format!("Sparkle Cleaning <ratings@{SENDER_DOMAIN}>"),
        ),
        ("TWILIO_API_BASE", twilio.url()),
        ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_owned()),
        ("TWILIO_FROM", twilio.phone_number().to_owned()),
        ("WEBHOOK_ALLOWED_ORIGIN", hook.url()),
    ] {
        options
            .variables
            .insert(format!("SPIN_VARIABLE_{name}"), value);
    }
    let shop = Shop {
        biz: setup_with(options).await,
        resend,
        twilio,
        hook,
    };
    shop.rules(false, 0).await;
    shop.patch_customer(json!({
        "name": "Ada Lovelace", "email": CUSTOMER_EMAIL, "phone": CUSTOMER_PHONE
    }))
    .await;
    shop
}

impl Shop {
    /// The account's rules: payment on or off (24 hours before start), feedback on,
    /// `delay_minutes` after completion.
    async fn rules(&self, payment: bool, delay_minutes: i64) {
        self.biz
            .ok(
                Method::PUT,
                "/api/v1/settings/automations",
                json!({
                    "payment": {"enabled": payment, "trigger": "before_start", "offset_minutes": 1440},
                    "feedback": {"enabled": true, "delay_minutes": delay_minutes}
                }),
            )
            .await;
    }

    /// `PATCH`es the customer with `body`.
    async fn patch_customer(&self, body: Value) {
        let path = format!("/api/v1/customers/{}", self.biz.customer);
        self.biz.ok(Method::PATCH, &path, body).await;
    }

    /// Sets the customer's feedback override to `state`.
    async fn feedback_override(&self, state: &str) {
        let path = format!(
            "/api/v1/customers/{}/automations/feedback",
            self.biz.customer
        );
        self.biz
            .ok(Method::PUT, &path, json!({"state": state}))
            .await;
    }

    async fn channels(&self, body: Value) -> Value {
        let answer = self
            .biz
            .ok(Method::PUT, "/api/v1/settings/notifications", body)
            .await;
        self.documented(Method::PUT, "/api/v1/settings/notifications", 200, &answer)
            .await;
        answer
    }

    /// Asserts that the served OpenAPI document describes this answer.
    async fn documented(&self, method: Method, template: &str, status: u16, body: &Value) {
        let doc = openapi(&self.biz.app).await;
        mio_tests::assert_documented(&doc, &method, template, status, body);
    }

    async fn all_channels(&self) {
        self.channels(json!({
            "email": {"reply_to": "owner@sparkle.example"},
            "sms": {},
            "webhook": {"url": format!("{}/mio/events", self.hook.url()), "secret": WEBHOOK_SECRET}
        }))
        .await;
    }

    /// A booking that ended an hour ago, completed now: its rating request is due at once.
    async fn completed_booking(&self) -> String {
        let booking = self.biz.booking(-3).await;
        let path = format!("/api/v1/bookings/{booking}/complete");
        let (status, answer) = self.biz.call(Method::POST, &path, None).await;
        assert_eq!(status, 200, "{answer}");
        booking
    }

    async fn tick(&self) -> Value {
        self.biz.tick().await
    }

    /// A tick whose summary counts `n` jobs as `outcome` (`claimed`, `succeeded`, …).
    async fn tick_counting(&self, outcome: &str, n: u64) {
        let summary = self.tick().await;
        assert_eq!(summary[outcome], n, "{outcome}: {summary}");
    }

    /// The feedback job of `booking` (`GET /api/v1/bookings/{id}/automations`): status and
    /// attempts.
    async fn job(&self, booking: &str) -> (String, i64) {
        let run = run_of(&self.biz.app, &self.biz.token, booking, "feedback").await;
        (
            run["status"].as_str().expect("status").to_owned(),
            run["attempts"].as_i64().expect("attempts"),
        )
    }

    /// Makes the waiting job and its messages due now.
    fn make_due(&self, booking: &str) {
        self.biz.make_retry_due(booking);
        self.biz.sql(
            "UPDATE messages SET next_try_at = 0 WHERE subject_id IN \
             (SELECT id FROM automation_jobs WHERE booking_id = ?1)",
            &[booking],
        );
    }

    /// The activity of `booking`'s rating request, oldest first.
    async fn feedback_activity(&self, booking: &str) -> Vec<Entry> {
        self.biz
            .activity(booking)
            .await
            .into_iter()
            .filter(|(_, _, details)| details.get("channels").is_some())
            .collect()
    }

    fn nothing_sent(&self) {
        assert!(
            self.resend.emails().is_empty(),
            "{:?}",
            self.resend.emails()
        );
        assert!(self.twilio.messages().is_empty());
        assert!(self.hook.deliveries().is_empty());
    }
}

fn link_in(text: &str) -> String {
    let start = text
        .find(&format!("{PUBLIC_BASE}/feedback/"))
        .unwrap_or_else(|| panic!("no rating link in {text:?}"));
    text[start..]
        .split_whitespace()
        .next()
        .expect("the link")
        .to_owned()
}

#[tokio::test]
async fn a_completed_booking_gets_one_rating_request_on_each_channel() {
    let shop = shop().await;
    shop.all_channels().await;
    let booking = shop.completed_booking().await;

    let summary = shop.tick().await;
    assert_eq!(summary["succeeded"], 1, "{summary}");

    let emails = shop.resend.emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    assert_eq!(email.to, vec![CUSTOMER_EMAIL.to_owned()]);
    assert_eq!(
        email.from,
        format!("Sparkle Cleaning <ratings@{SENDER_DOMAIN}>")
    );
    assert_eq!(email.reply_to, vec!["owner@sparkle.example".to_owned()]);
    assert!(
        email
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with("msg_"))
    );
    let link = link_in(email.text.as_deref().expect("a text part"));
    assert!(email.html.as_deref().expect("an html part").contains(&link));

    let texts = shop.twilio.messages();
    assert_eq!(texts.len(), 1);
    assert_eq!(
        texts[0].to, "+14155550123",
        "stored as given, sent as E.164"
    );
    assert_eq!(texts[0].from.as_deref(), Some(shop.twilio.phone_number()));
    assert_eq!(link_in(&texts[0].body), link, "one link per booking");

    let deliveries = shop.hook.deliveries();
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.path, "/mio/events");
    verify_standard_webhook(
        WEBHOOK_SECRET,
        &delivery.headers,
        &delivery.body,
        unix_now(),
    )
    .expect("the signature verifies with an independent implementation");
    let event: Value = serde_json::from_slice(&delivery.body).expect("JSON");
    assert_eq!(event["type"], "feedback.requested");
    assert_eq!(event["data"]["url"], link.as_str());
    assert_eq!(event["data"]["booking"]["id"], booking.as_str());
    assert_eq!(event["data"]["customer"]["email"], CUSTOMER_EMAIL);
    let mut tampered = delivery.body.to_vec();
    tampered.extend_from_slice(b" ");
    assert!(
        verify_standard_webhook(WEBHOOK_SECRET, &delivery.headers, &tampered, unix_now()).is_err()
    );

    assert_eq!(shop.job(&booking).await.0, "succeeded");
    let entries = shop.feedback_activity(&booking).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "success");
    assert_eq!(
        entries[0].1,
        "Rating request sent by e-mail and SMS and webhook"
    );
    // Only the token's hash is stored, not the link's token (no route shows what is stored).
    let token = link.rsplit('/').next().expect("token");
    let stored: Vec<String> = {
        let db = shop.biz.db();
        let mut statement = db
            .prepare("SELECT token_hash FROM feedback_requests WHERE booking_id = ?1")
            .expect("query");
        statement
            .query_map([booking.as_str()], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("hashes")
    };
    assert_eq!(stored, [token_hash(token)]);

    // Later ticks send nothing more.
    shop.tick_counting("claimed", 0).await;
    shop.tick_counting("claimed", 0).await;
    assert_eq!(shop.resend.emails().len(), 1);
    assert_eq!(shop.twilio.messages().len(), 1);
    assert_eq!(shop.hook.deliveries().len(), 1);

    // The customer follows the link (served by this app at /feedback/<token>) and rates.
    let page = format!("/feedback/{token}");
    let rated = shop
        .biz
        .app
        .client
        .post(shop.biz.app.url(&page))
        .form(&[("rating", "4"), ("comment", "On time, very tidy")])
        .send()
        .await
        .expect("rating");
    assert_eq!(rated.status().as_u16(), 200);
    let list = shop.biz.get("/api/v1/feedback").await;
    assert_eq!(list["data"][0]["booking_id"], booking.as_str());
    assert_eq!(list["data"][0]["rating"], 4);
    assert_eq!(list["summary"]["count"], 1);
    let rating_entry = shop
        .biz
        .activity(&booking)
        .await
        .into_iter()
        .find(|(_, summary, _)| summary == "Rated 4 of 5")
        .expect("the rating in the activity view");
    assert_eq!(rating_entry.2["comment"], "On time, very tidy");
}

#[tokio::test]
async fn reasons_not_to_send_are_skipped_with_the_reason_and_send_nothing() {
    let shop = shop().await;
    shop.all_channels().await;

    // The customer's override is off.
    shop.feedback_override("disabled").await;
    let off = shop.completed_booking().await;
    // The job may not even be planned with the override off; if it is, it is skipped.
    let summary = shop.tick().await;
    assert_eq!(summary["claimed"], summary["skipped"], "{summary}");
    let planned: Vec<Value> = runs(&shop.biz.app, &shop.biz.token, &off)
        .await
        .into_iter()
        .filter(|r| {
            r["automation"] == "feedback"
                && !["skipped", "cancelled"].contains(&r["status"].as_str().expect("status"))
        })
        .collect();
    assert!(planned.is_empty(), "{planned:?}");
    shop.nothing_sent();

    // Planned while on, the override turned off before the run: skipped, saying why.
    shop.feedback_override("inherit").await;
    let booking = shop.completed_booking().await;
    // Behind the API's back (switching it off over HTTP would cancel the planned job).
    shop.biz.sql(
        "UPDATE customer_overrides SET state = 'disabled' WHERE customer_id = ?1 \
         AND automation = 'feedback'",
        &[&shop.biz.customer],
    );
    let summary = shop.tick().await;
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(shop.job(&booking).await.0, "skipped");
    let entries = shop.feedback_activity(&booking).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "skipped");
    assert!(
        entries[0].1.contains("feedback automation disabled"),
        "{}",
        entries[0].1
    );
    shop.nothing_sent();
}

#[tokio::test]
async fn opted_out_unreachable_and_stale_customers_get_nothing() {
    let shop = shop().await;
    shop.channels(json!({"email": {}, "sms": {}})).await;

    shop.patch_customer(json!({"notifications": {"email": false, "sms": false}}))
        .await;
    let opted_out = shop.completed_booking().await;
    shop.tick_counting("skipped", 1).await;
    assert_eq!(shop.job(&opted_out).await.0, "skipped");
    assert_eq!(
        shop.feedback_activity(&opted_out).await[0].1,
        "Rating request not sent: the customer has turned off e-mail and SMS notifications"
    );

    shop.patch_customer(
        json!({"notifications": {"email": true, "sms": true}, "email": null, "phone": null}),
    )
    .await;
    let unreachable = shop.completed_booking().await;
    shop.tick_counting("skipped", 1).await;
    assert_eq!(shop.job(&unreachable).await.0, "skipped");
    assert_eq!(
        shop.feedback_activity(&unreachable).await[0].1,
        "Rating request not sent: the customer has no e-mail address and has no phone number"
    );

    shop.patch_customer(json!({"email": CUSTOMER_EMAIL})).await;
    let stale = shop.completed_booking().await;
    // Completed eight days ago, and the request only now due: staleness counts from
    // completion, so it is skipped.
    shop.biz.sql(
        "UPDATE bookings SET completed_at = ?2 WHERE id = ?1",
        &[&stale, &(now_millis() - 8 * 24 * 3_600_000).to_string()],
    );
    shop.tick_counting("skipped", 1).await;
    assert_eq!(shop.job(&stale).await.0, "skipped");
    let entry = &shop.feedback_activity(&stale).await[0].1;
    assert!(
        entry.contains("stale") && entry.contains("7 days"),
        "{entry}"
    );

    shop.nothing_sent();
}

#[tokio::test]
async fn a_provider_error_is_retried_and_the_message_goes_out_once() {
    let shop = shop().await;
    shop.channels(json!({"email": {}})).await;
    let booking = shop.completed_booking().await;

    shop.resend
        .fail_next(500, "application_error", "Something went wrong");
    let summary = shop.tick().await;
    assert_eq!(summary["retrying"], 1, "{summary}");
    assert_eq!(shop.job(&booking).await.0, "retrying");
    let entries = shop.feedback_activity(&booking).await;
    assert_eq!(entries[0].0, "retrying");
    assert!(
        entries[0].1.contains("Resend answered 500"),
        "{}",
        entries[0].1
    );
    assert!(shop.resend.emails().is_empty());

    // Not before its backoff.
    shop.tick_counting("claimed", 0).await;
    assert_eq!(shop.resend.requests(), 1);

    shop.make_due(&booking);
    shop.tick_counting("succeeded", 1).await;
    assert_eq!(shop.job(&booking).await.0, "succeeded");
    assert_eq!(shop.resend.emails().len(), 1);
    let keys: Vec<_> = shop
        .resend
        .received()
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the retry carries the same key");
}

#[tokio::test]
async fn a_dropped_answer_is_resent_with_the_same_key_and_delivered_once() {
    let shop = shop().await;
    shop.channels(json!({"email": {}})).await;
    let booking = shop.completed_booking().await;

    shop.resend.drop_next_answer();
    shop.tick_counting("retrying", 1).await;
    assert_eq!(shop.job(&booking).await.0, "retrying");
    assert_eq!(
        shop.resend.emails().len(),
        1,
        "Resend sent it before the answer was lost"
    );

    shop.make_due(&booking);
    shop.tick_counting("succeeded", 1).await;
    assert_eq!(shop.job(&booking).await.0, "succeeded");
    assert_eq!(shop.resend.requests(), 2);
    assert_eq!(shop.resend.emails().len(), 1, "the replay sent nothing new");
    let received = shop.resend.received();
    assert_eq!(
        received[0].header("idempotency-key"),
        received[1].header("idempotency-key")
    );
    assert_eq!(
        received[0].body, received[1].body,
        "the same request, byte for byte"
    );
}

#[tokio::test]
async fn a_provider_refusal_fails_with_the_providers_reason() {
    let shop = shop().await;
    shop.channels(json!({"sms": {}})).await;
    let booking = shop.completed_booking().await;

    shop.twilio.fail_next(
        400,
        21211,
        "The 'To' number +14155550123 is not a valid phone number.",
    );
    let summary = shop.tick().await;
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(shop.job(&booking).await.0, "failed");
    let entries = shop.feedback_activity(&booking).await;
    assert_eq!(entries[0].0, "failed");
    assert_eq!(
        entries[0].1,
        "Rating request failed: SMS: Twilio answered 400: error 21211: The 'To' number \
         +14155550123 is not a valid phone number."
    );
    shop.make_due(&booking);
    shop.tick_counting("claimed", 0).await;
    assert_eq!(shop.twilio.requests(), 1, "a refusal is final");
}

#[tokio::test]
async fn an_sms_whose_answer_was_lost_is_not_sent_again() {
    let shop = shop().await;
    shop.channels(json!({"sms": {}})).await;
    let booking = shop.completed_booking().await;

    shop.twilio.drop_next_answer();
    shop.tick_counting("failed", 1).await;
    assert_eq!(shop.job(&booking).await.0, "failed");
    let entry = &shop.feedback_activity(&booking).await[0].1;
    assert!(entry.contains("may have been delivered"), "{entry}");
    shop.make_due(&booking);
    shop.tick_counting("claimed", 0).await;
    assert_eq!(
        shop.twilio.requests(),
        1,
        "Twilio has no idempotency: never resent"
    );
    assert_eq!(shop.twilio.messages().len(), 1);
}

#[tokio::test]
async fn notification_settings_mask_secrets_and_refuse_what_cannot_be_sent() {
    let shop = shop().await;
    let biz = &shop.biz;
    let empty = biz.get("/api/v1/settings/notifications").await;
    assert_eq!(empty, json!({"email": null, "sms": null, "webhook": null}));
    shop.documented(Method::GET, "/api/v1/settings/notifications", 200, &empty)
        .await;

    let hook_url = format!("{}/in", shop.hook.url());
    let saved = shop
        .channels(json!({"webhook": {"url": hook_url, "secret": WEBHOOK_SECRET}}))
        .await;
    assert_eq!(saved["webhook"]["url"], hook_url.as_str());
    assert_eq!(saved["webhook"]["secret"], "whsec_…LaSw");
    assert!(!saved.to_string().contains(WEBHOOK_SECRET));

    // Left out, the stored secret is kept.
    let kept = shop
        .channels(json!({"email": {}, "webhook": {"url": hook_url}}))
        .await;
    assert_eq!(kept["webhook"]["secret"], saved["webhook"]["secret"]);
    assert_eq!(kept["email"], json!({"reply_to": null}));

    for (body, code, field) in [
        (
            json!({"webhook": {"url": "https://hooks.example.com/x", "secret": WEBHOOK_SECRET}}),
            422,
            "webhook.url",
        ),
        (
            json!({"webhook": {"url": "hooks.example.com/x", "secret": WEBHOOK_SECRET}}),
            400,
            "webhook.url",
        ),
        (
            json!({"webhook": {"url": hook_url, "secret": "not-a-secret"}}),
            400,
            "webhook.secret",
        ),
        (
            json!({"email": {"reply_to": "nope"}}),
            400,
            "email.reply_to",
        ),
    ] {
        let (status, problem) = biz
            .call(
                Method::PUT,
                "/api/v1/settings/notifications",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, code, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        shop.documented(
            Method::PUT,
            "/api/v1/settings/notifications",
            code,
            &problem,
        )
        .await;
    }
    let (status, problem) = biz
        .call(
            Method::PUT,
            "/api/v1/settings/notifications",
            Some(json!({"fax": {}})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    // Nothing refused was stored.
    assert_eq!(biz.get("/api/v1/settings/notifications").await, kept);
}

#[tokio::test]
async fn a_payment_method_link_is_sent_once_when_asked() {
    let shop = shop().await;
    let (biz, customer) = (&shop.biz, &shop.biz.customer);
    let body = json!({"return_url": "https://sparkle.example/thanks", "send": true});

    // No channel yet: 409 with the reason, and nothing made.
    let (status, problem) = post_request(biz, customer, &body, None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no notification channel"),
        "{problem}"
    );
    let template = "/api/v1/customers/{id}/payment-method-requests";
    shop.documented(Method::POST, template, 409, &problem).await;

    shop.channels(json!({"email": {}, "sms": {}})).await;
    let (status, created) = post_request(biz, customer, &body, Some("link-1")).await;
    assert_eq!(status, 201, "{created}");
    shop.documented(Method::POST, template, 201, &created).await;
    assert_eq!(created["channel"], "email");
    assert!(created["sent_at"].is_string(), "{created}");
    let emails = shop.resend.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(created["provider_message_id"], emails[0].id.as_str());
    let url = created["url"].as_str().expect("the card page");
    assert!(emails[0].text.as_deref().unwrap_or_default().contains(url));
    assert!(shop.twilio.messages().is_empty(), "one channel per link");

    // Retried with the same key: the same request, and no second message.
    let (status, again) = post_request(biz, customer, &body, Some("link-1")).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], created["id"]);
    assert_eq!(shop.resend.emails().len(), 1);
    assert_eq!(shop.resend.requests(), 1);

    let listed = biz
        .get(&format!(
            "/api/v1/customers/{customer}/payment-method-requests"
        ))
        .await;
    shop.documented(Method::GET, template, 200, &listed).await;
    let listed = listed["data"].as_array().expect("data");
    assert_eq!(listed.len(), 1, "the refused call made nothing: {listed:?}");
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["channel"], "email");
}

#[tokio::test]
async fn the_request_waits_for_the_rules_delay_after_completion() {
    let shop = shop().await;
    shop.channels(json!({"email": {}})).await;
    shop.rules(false, 120).await;
    let before = now_millis();
    let booking = shop.completed_booking().await;
    let run = run_of(&shop.biz.app, &shop.biz.token, &booking, "feedback").await;
    let due = instant(&run["due_at"]).timestamp_millis();
    let two_hours = 2 * 3_600_000;
    assert!(
        (before + two_hours..=now_millis() + two_hours).contains(&due),
        "due {due}, completed at about {before}"
    );
    shop.tick_counting("claimed", 0).await;
    assert_eq!(shop.job(&booking).await.0, "scheduled");
    assert!(shop.resend.emails().is_empty(), "not before its time");

    // Two hours later (the due time moved into the past).
    shop.biz.sql(
        "UPDATE automation_jobs SET due_at = due_at - 7200000 WHERE booking_id = ?1 \
         AND automation = 'feedback'",
        &[&booking],
    );
    shop.tick_counting("succeeded", 1).await;
    assert_eq!(shop.job(&booking).await.0, "succeeded");
    assert_eq!(shop.resend.emails().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_holds_up_no_charges() {
    let shop = shop().await;
    shop.channels(json!({"email": {}})).await;
    shop.rules(true, 0).await;
    let rated = shop.completed_booking().await;
    let mut charged = Vec::new();
    for hours in 1..=10 {
        charged.push(shop.biz.booking(hours).await);
    }
    // The rating request is the oldest due job, so the run starts it first.
    shop.biz.sql(
        "UPDATE automation_jobs SET due_at = due_at - 86400000 WHERE booking_id = ?1 \
         AND automation = 'feedback'",
        &[&rated],
    );
    shop.resend.hold_next(std::time::Duration::from_secs(4));

    // While the run goes on, watch for a charge sent after the e-mail reached Resend and
    // before Resend finished it. No clock is compared: had the e-mail held up the run, no charge
    // would leave in between.
    let done = std::sync::atomic::AtomicBool::new(false);
    let ticking = async {
        let summary = shop.tick().await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        summary
    };
    let watching = async {
        let charges = || {
            shop.biz
                .stripe
                .requests_to("POST", "/v1/payment_intents")
                .len()
        };
        let ended = || done.load(std::sync::atomic::Ordering::SeqCst);
        while shop.resend.requests() == 0 && !ended() {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert!(!ended(), "the run ended without sending the e-mail");
        let sent_before = charges();
        loop {
            // In this order: a charge counted here left before the e-mail was seen unfinished.
            let sent = charges();
            let held = shop.resend.emails().is_empty();
            if !held || ended() {
                return (sent_before, None);
            }
            if sent > sent_before {
                return (sent_before, Some(sent));
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    };
    let (summary, (sent_before, sent_while_held)) = tokio::join!(ticking, watching);
    // Ten charges, the rating request, and the rated visit's own charge.
    assert_eq!(summary["succeeded"], 12, "{summary}");
    assert!(
        sent_while_held.is_some(),
        "no charge left while the e-mail was held ({sent_before} before it)"
    );
    assert_eq!(shop.resend.emails().len(), 1);
    for booking in &charged {
        assert_eq!(shop.biz.balance(booking).await, 0);
    }
}
