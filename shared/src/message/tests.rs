use super::*;
use proptest::prelude::*;

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("valid timestamp")
}

fn answered(status: u16, body: &str) -> Reply {
    Reply::Answered {
        status,
        body: body.to_owned(),
    }
}

#[test]
fn each_providers_answers_are_read_by_its_documented_shape() {
    let delivered = classify(Channel::Email, "msg_1", &answered(200, r#"{"id":"4ef9"}"#));
    assert_eq!(
        delivered,
        Outcome::Delivered {
            provider_id: "4ef9".into()
        }
    );
    let sms = classify(
        Channel::Sms,
        "msg_1",
        &answered(201, r#"{"sid":"SM0123","status":"queued"}"#),
    );
    assert_eq!(
        sms,
        Outcome::Delivered {
            provider_id: "SM0123".into()
        }
    );
    let hook = classify(Channel::Webhook, "msg_1", &answered(204, ""));
    assert_eq!(
        hook,
        Outcome::Delivered {
            provider_id: "msg_1".into()
        }
    );
    let refused = classify(
        Channel::Sms,
        "msg_1",
        &answered(
            400,
            r#"{"code":21211,"message":"The 'To' number is not valid","status":400}"#,
        ),
    );
    assert_eq!(
        refused,
        Outcome::Refused {
            reason: "Twilio answered 400: error 21211: The 'To' number is not valid".into()
        }
    );
    let invalid = classify(
        Channel::Email,
        "msg_1",
        &answered(
            422,
            r#"{"statusCode":422,"name":"validation_error","message":"Invalid `to` field."}"#,
        ),
    );
    assert!(
        matches!(&invalid, Outcome::Refused { reason } if reason.contains("validation_error: Invalid `to` field.")),
        "{invalid:?}"
    );
    assert!(matches!(
        classify(Channel::Email, "m", &answered(429, "{}")),
        Outcome::NotSent { .. }
    ));
    assert!(matches!(
        classify(
            Channel::Email,
            "m",
            &answered(409, r#"{"name":"concurrent_idempotent_requests"}"#)
        ),
        Outcome::NotSent { .. }
    ));
    assert!(matches!(
        classify(
            Channel::Email,
            "m",
            &answered(409, r#"{"name":"invalid_idempotent_request"}"#)
        ),
        Outcome::Refused { .. }
    ));
    assert!(matches!(
        classify(Channel::Sms, "m", &answered(500, "")),
        Outcome::Unknown { .. }
    ));
    assert!(matches!(
        classify(Channel::Email, "m", &answered(200, "not json")),
        Outcome::Unknown { .. }
    ));
    assert!(matches!(
        classify(Channel::Webhook, "m", &answered(408, "")),
        Outcome::Unknown { .. }
    ));
}

#[test]
fn a_webhook_signature_matches_the_standard_webhooks_reference_example() {
    // The test vector that Standard Webhooks implementations share (secret, id, timestamp and
    // body below, from the spec's reference libraries).
    let signature = sign_webhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        r#"{"test": 2432232314}"#,
    )
    .expect("valid secret");
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn webhook_secrets_must_be_whsec_and_base64_of_a_real_key() {
    assert!(webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    assert!(webhook_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    assert!(webhook_key("whsec_not base64!").is_err());
    assert!(webhook_key("whsec_c2hvcnQ=").is_err());
    let fresh = new_webhook_secret(&[9; 32]);
    assert_eq!(webhook_key(&fresh).expect("valid").len(), 32);
    assert_eq!(
        mask_secret(&fresh),
        format!("whsec_…{}", &fresh[fresh.len() - 4..])
    );
}

fn recipient() -> Recipient {
    Recipient {
        customer_id: "cus_1".into(),
        name: "Ada Lovelace".into(),
        email: Some("ada@example.com".into()),
        phone: Some("+14155550100".into()),
    }
}

fn feedback() -> Purpose {
    Purpose::Feedback {
        booking_id: "bkg_1".into(),
        service_type: "deep_clean".into(),
        start_at: ts("2026-06-01T09:00:00Z"),
        local_date: "Mon 1 Jun 2026".into(),
    }
}

#[test]
fn the_wire_requests_carry_the_link_and_each_providers_fields() {
    let now = ts("2026-06-02T10:00:00Z");
    let providers = Providers {
        email_from: "Mio <ratings@mio.example>".into(),
        twilio_account_sid: "AC0123".into(),
        twilio_from: "+14155550199".into(),
    };
    let link = "https://mio.example/feedback/abc";
    let email = build(
        Channel::Email,
        "ada@example.com",
        &feedback(),
        "Sparkle & Co",
        &recipient(),
        Some("owner@sparkle.example"),
        now,
    );
    let wire = wire_request(&email, "msg_1", link, &providers, None, now).expect("builds");
    assert_eq!(wire.path, "/emails");
    let body: Value = serde_json::from_str(&wire.body).expect("json");
    assert_eq!(body["to"], json!(["ada@example.com"]));
    assert_eq!(body["reply_to"], json!(["owner@sparkle.example"]));
    assert!(body["text"].as_str().expect("text").contains(link));
    assert!(
        body["text"]
            .as_str()
            .expect("text")
            .contains("your deep clean on Mon 1 Jun 2026")
    );
    assert!(
        body["html"]
            .as_str()
            .expect("html")
            .contains("Sparkle &amp; Co")
    );
    assert!(
        wire.headers
            .contains(&("idempotency-key".to_owned(), "msg_1".to_owned()))
    );
    // The stored message holds no link, and the same message builds the same bytes again.
    assert!(!serde_json::to_string(&email).expect("json").contains(link));
    assert_eq!(
        wire,
        wire_request(&email, "msg_1", link, &providers, None, now).expect("builds")
    );

    let sms = build(
        Channel::Sms,
        "+14155550100",
        &feedback(),
        "Sparkle",
        &recipient(),
        None,
        now,
    );
    let wire = wire_request(&sms, "msg_2", link, &providers, None, now).expect("builds");
    assert_eq!(wire.path, "/2010-04-01/Accounts/AC0123/Messages.json");
    let form: Vec<(String, String)> = form_urlencoded::parse(wire.body.as_bytes())
        .into_owned()
        .collect();
    assert!(form.contains(&("To".into(), "+14155550100".into())));
    assert!(form.contains(&("From".into(), "+14155550199".into())));
    assert!(form.iter().any(|(k, v)| k == "Body" && v.contains(link)));

    let secret = new_webhook_secret(&[3; 32]);
    let hook = build(
        Channel::Webhook,
        "https://hooks.example/mio",
        &feedback(),
        "Sparkle",
        &recipient(),
        None,
        now,
    );
    let wire = wire_request(&hook, "msg_3", link, &providers, Some(&secret), now).expect("builds");
    let body: Value = serde_json::from_str(&wire.body).expect("json");
    assert_eq!(body["type"], "feedback.requested");
    assert_eq!(body["data"]["url"], link);
    assert_eq!(body["data"]["booking"]["id"], "bkg_1");
    assert_eq!(body["data"]["booking"]["service_type"], "deep_clean");
    let header = |name: &str| {
        wire.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect("header present")
    };
    assert_eq!(header("webhook-id"), "msg_3");
    assert_eq!(
        header("webhook-signature"),
        sign_webhook(&secret, "msg_3", &header("webhook-timestamp"), &wire.body).expect("signs")
    );
    assert!(wire_request(&hook, "msg_3", link, &providers, None, now).is_err());
}

#[test]
fn an_interrupted_sms_is_never_sent_again() {
    let now = ts("2026-06-02T10:00:00Z");
    let mut send = Send::new(Channel::Sms);
    assert_eq!(send.start(now), Step::Send);
    // The run dies here; the next run finds it in flight.
    assert_eq!(send.start(now.plus_minutes(3)), Step::Done);
    assert_eq!(send.status, Status::Failed);
    assert!(
        send.error
            .as_deref()
            .expect("reason")
            .contains("may have been delivered")
    );
}

#[test]
fn an_email_is_resent_with_its_key_only_while_the_key_lives() {
    let now = ts("2026-06-02T10:00:00Z");
    let mut send = Send::new(Channel::Email);
    assert_eq!(send.start(now), Step::Send);
    send.answer(
        Outcome::Unknown {
            reason: "no answer".into(),
        },
        now,
    );
    assert_eq!(send.status, Status::Pending);
    assert_eq!(send.start(now), Step::Wait);
    assert_eq!(send.start(now.plus_minutes(1)), Step::Send);
    send.answer(
        Outcome::Unknown {
            reason: "no answer".into(),
        },
        now.plus_minutes(1),
    );
    assert_eq!(send.start(now.plus_minutes(24 * 60)), Step::Done);
    assert_eq!(send.status, Status::Failed);
}

/// What the world does with one try.
#[derive(Debug, Clone, Copy)]
enum World {
    /// Delivered and answered.
    Ok,
    /// Delivered; the answer is lost.
    DeliveredNoAnswer,
    /// Delivered; the provider answers 500.
    DeliveredServerError,
    /// Not delivered; 500.
    ServerError,
    /// Not delivered; 429.
    RateLimited,
    /// Never reached the provider.
    Refused,
    /// 4xx.
    Rejected,
    /// The run dies before the request leaves.
    CrashBefore,
    /// The provider delivers, then the run dies before storing the answer.
    CrashAfter,
}

fn arb_world() -> impl Strategy<Value = World> {
    prop_oneof![
        Just(World::Ok),
        Just(World::DeliveredNoAnswer),
        Just(World::DeliveredServerError),
        Just(World::ServerError),
        Just(World::RateLimited),
        Just(World::Refused),
        Just(World::Rejected),
        Just(World::CrashBefore),
        Just(World::CrashAfter),
    ]
}

/// The provider as documented: Resend replays a key for 24 hours; a Standard Webhooks receiver
/// de-duplicates by `webhook-id`; Twilio sends every request it accepts.
#[derive(Default)]
struct Provider {
    delivered: u32,
    key_first_seen: Option<Timestamp>,
    requests: u32,
}

impl Provider {
    fn accept(&mut self, channel: Channel, now: Timestamp) {
        self.requests += 1;
        let replay = match channel {
            Channel::Email => self
                .key_first_seen
                .is_some_and(|first| now < first.plus_minutes(EMAIL_KEY_LIFETIME_MINUTES)),
            Channel::Webhook => self.delivered > 0,
            Channel::Sms => false,
        };
        if !replay {
            self.delivered += 1;
            self.key_first_seen = Some(now);
        }
    }
}

fn arb_channel() -> impl Strategy<Value = Channel> {
    prop_oneof![
        Just(Channel::Email),
        Just(Channel::Sms),
        Just(Channel::Webhook)
    ]
}

proptest! {
    #[test]
    fn a_message_reaches_the_customer_at_most_once_and_every_send_ends(
        channel in arb_channel(),
        worlds in proptest::collection::vec((arb_world(), 0i64..2000), 1..20),
    ) {
        let mut now = ts("2026-06-02T10:00:00Z");
        let mut stored = Send::new(channel);
        let mut provider = Provider::default();
        let mut runs = 0;
        for (world, wait) in &worlds {
            now = now.plus_minutes(*wait);
            runs += 1;
            // Each run starts from what storage holds.
            let mut send = stored.clone();
            match send.start(now) {
                Step::Done | Step::Wait => {
                    stored = send;
                    continue;
                }
                Step::Send => stored = send.clone(),
            }
            let outcome = match world {
                World::CrashBefore => continue,
                World::CrashAfter => {
                    provider.accept(channel, now);
                    continue;
                }
                World::Ok => {
                    provider.accept(channel, now);
                    Outcome::Delivered { provider_id: "p".into() }
                }
                World::DeliveredNoAnswer | World::DeliveredServerError => {
                    provider.accept(channel, now);
                    Outcome::Unknown { reason: "x".into() }
                }
                World::ServerError => {
                    provider.requests += 1;
                    Outcome::Unknown { reason: "x".into() }
                }
                World::RateLimited => {
                    provider.requests += 1;
                    Outcome::NotSent { reason: "429".into() }
                }
                World::Refused => Outcome::NotSent { reason: "refused".into() },
                World::Rejected => {
                    provider.requests += 1;
                    Outcome::Refused { reason: "400".into() }
                }
            };
            send.answer(outcome, now);
            stored = send;
        }
        // Never twice.
        prop_assert!(provider.delivered <= 1, "delivered {} times", provider.delivered);
        // Delivered means the provider has it.
        if stored.status == Status::Delivered {
            prop_assert_eq!(provider.delivered, 1);
            prop_assert!(stored.provider_id.is_some());
        }
        // A failure always says why.
        if stored.status == Status::Failed {
            prop_assert!(stored.error.is_some());
        }
        // Bounded: no more requests than tries allow, and each run makes at most one.
        prop_assert!(provider.requests <= MAX_TRIES.max(1) + 1);
        prop_assert!(provider.requests <= runs);
        // Given time, it ends: every later run either sends or finishes, within the bound.
        let mut guard = 0;
        while stored.status == Status::Pending {
            now = now.plus_minutes(120);
            let mut send = stored.clone();
            if send.start(now) == Step::Send {
                send.answer(Outcome::Unknown { reason: "x".into() }, now);
            }
            stored = send;
            guard += 1;
            prop_assert!(guard <= MAX_TRIES + 1, "never ends: {:?}", stored);
        }
    }
}
