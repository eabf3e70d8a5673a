//! Stripe webhook events: the `Stripe-Signature` check and reading the event envelope.
//!
//! The signature is checked on the raw body bytes before anything parses them, as Stripe
//! documents it (https://docs.stripe.com/webhooks#verify-manually):
//! - the header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`; other schemes are ignored;
//! - the expected signature is HMAC-SHA256, keyed with the endpoint's signing secret (the whole
//!   `whsec_…` string), over `"{t}.{raw body}"`;
//! - any one `v1` may match (Stripe sends several while a secret is being rolled), compared in
//!   constant time;
//! - the timestamp must be within [`TOLERANCE_SECONDS`] of now, to stop replays.
//!
//! Pure: `now` is a parameter. Not here: what an event does (see [`crate::attempt`]).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::stripe::Intent;
use crate::time::Timestamp;

/// How far the signed timestamp may be from now (Stripe's libraries' default).
pub const TOLERANCE_SECONDS: i64 = 300;

/// The largest event body accepted (Stripe's events are far smaller).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("the Stripe-Signature header is missing")]
    Missing,
    /// The header has no timestamp or no `v1` signature, or one that is not hex.
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    /// The timestamp is too far from now.
    #[error("the Stripe-Signature timestamp is more than {TOLERANCE_SECONDS} seconds from now")]
    Stale,
    /// No `v1` signature matches.
    #[error("no signature in the Stripe-Signature header matches the body")]
    Mismatch,
}

/// Checks `header` (the `Stripe-Signature` value) against the raw `body` with the signing
/// `secret`, at `now`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now: Timestamp,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("an element without '='"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("two timestamps"));
                }
                timestamp =
                    Some(value.parse().map_err(|_| {
                        SignatureError::Malformed("a timestamp that is not a number")
                    })?);
            }
            "v1" => signatures.push(
                crate::encoding::hex_decode(value)
                    .ok_or(SignatureError::Malformed("a v1 value that is not hex"))?,
            ),
            // `v0` (test-mode legacy) and future schemes are not trusted.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1= signature"));
    }
    let age = now.unix_millis() / 1000 - timestamp;
    if age.abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret, timestamp, body);
    let matched = signatures
        .iter()
        .fold(subtle::Choice::from(0), |any, candidate| {
            any | expected.as_slice().ct_eq(candidate.as_slice())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`.
fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The event envelope (https://docs.stripe.com/api/events/object).
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `evt_…`: the de-duplication key.
    pub id: String,
    /// `payment_intent.succeeded`, ….
    #[serde(rename = "type")]
    pub kind: String,
    /// The connected account the object lives on; absent for the platform's own events.
    #[serde(default)]
    pub account: Option<String>,
    /// `data.object` and friends.
    pub data: EventData,
}

/// An event's `data`.
#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    /// The object as it was when the event happened.
    pub object: serde_json::Value,
}

/// What an event is to us.
#[derive(Debug, Clone)]
pub enum Meaning {
    /// A PaymentIntent reached a state that settles an attempt.
    Payment(Box<Intent>),
    /// A card, refund, dispute, customer or account change ([`crate::card`]).
    Card(crate::card::CardEvent),
    /// Not an event we act on: acknowledged and ignored.
    Other,
}

/// The event types that settle a payment attempt.
pub const PAYMENT_EVENTS: &[&str] = &[
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.requires_action",
];

/// Why a verified body is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the body is not a Stripe event: {0}")]
pub struct NotAnEvent(String);

/// Reads a verified body as an event.
pub fn parse(body: &[u8]) -> Result<(Event, Meaning), NotAnEvent> {
    let event: Event = serde_json::from_slice(body).map_err(|e| NotAnEvent(e.to_string()))?;
    if event.id.is_empty() {
        return Err(NotAnEvent("an empty id".into()));
    }
    let meaning = if PAYMENT_EVENTS.contains(&event.kind.as_str()) {
        let intent: Intent = serde_json::from_value(event.data.object.clone())
            .map_err(|e| NotAnEvent(format!("data.object is not a PaymentIntent: {e}")))?;
        Meaning::Payment(Box::new(intent))
    } else {
        match crate::card::read(&event.kind, &event.data.object).map_err(NotAnEvent)? {
            Some(card) => Meaning::Card(card),
            None => Meaning::Other,
        }
    };
    Ok((event, meaning))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000).expect("valid")
    }

    use crate::encoding::hex_encode as hex;

    fn header(t: i64, body: &[u8], secret: &str) -> String {
        format!("t={t},v1={}", hex(&sign(secret, t, body)))
    }

    #[test]
    fn a_correct_signature_is_accepted() {
        let body = br#"{"id":"evt_1"}"#;
        let h = header(1_700_000_000, body, SECRET);
        assert_eq!(verify(Some(&h), body, SECRET, now()), Ok(()));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body_keyed_with_the_whole_secret() {
        // Computed independently:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test_secret
        let expected = "ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3";
        assert_eq!(hex(&sign(SECRET, 1_700_000_000, b"{}")), expected);
        let h = format!("t=1700000000,v1={expected}");
        assert_eq!(verify(Some(&h), b"{}", SECRET, now()), Ok(()));
    }

    #[test]
    fn a_tampered_body_a_wrong_secret_or_a_stale_timestamp_is_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let h = header(1_700_000_000, body, SECRET);
        assert_eq!(
            verify(Some(&h), br#"{"id":"evt_2"}"#, SECRET, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&h), body, "whsec_other", now()),
            Err(SignatureError::Mismatch)
        );
        let old = header(1_700_000_000 - 301, body, SECRET);
        assert_eq!(
            verify(Some(&old), body, SECRET, now()),
            Err(SignatureError::Stale)
        );
        let future = header(1_700_000_000 + 301, body, SECRET);
        assert_eq!(
            verify(Some(&future), body, SECRET, now()),
            Err(SignatureError::Stale)
        );
        let edge = header(1_700_000_000 - 300, body, SECRET);
        assert_eq!(verify(Some(&edge), body, SECRET, now()), Ok(()));
    }

    #[test]
    fn a_missing_or_garbled_header_is_refused() {
        let body = b"{}";
        assert_eq!(
            verify(None, body, SECRET, now()),
            Err(SignatureError::Missing)
        );
        for garbled in [
            "",
            "garbage",
            "t=abc,v1=00",
            "v1=00",
            "t=1700000000",
            "t=1700000000,v1=zz",
            "t=1700000000,v1=abc",
            "t=1,t=2,v1=00",
        ] {
            assert!(
                matches!(
                    verify(Some(garbled), body, SECRET, now()),
                    Err(SignatureError::Malformed(_))
                ),
                "{garbled}"
            );
        }
    }

    #[test]
    fn any_one_of_several_v1_signatures_may_match_and_v0_is_not_trusted() {
        let body = br#"{"id":"evt_1"}"#;
        let good = hex(&sign(SECRET, 1_700_000_000, body));
        let rotated = format!("t=1700000000,v1={},v1={good}", "00".repeat(32));
        assert_eq!(verify(Some(&rotated), body, SECRET, now()), Ok(()));
        let v0_only = format!("t=1700000000,v0={good}");
        assert!(matches!(
            verify(Some(&v0_only), body, SECRET, now()),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn payment_events_carry_their_intent_and_others_are_ignored() {
        let body = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","account":"acct_1",
            "data":{"object":{"id":"pi_1","object":"payment_intent","status":"succeeded","amount":500,
            "amount_received":500,"currency":"cad","metadata":{"mio_job_id":"job_1","mio_attempt":"2"}}}}"#;
        let (event, meaning) = parse(body).expect("an event");
        assert_eq!(event.account.as_deref(), Some("acct_1"));
        match meaning {
            Meaning::Payment(intent) => assert_eq!(intent.attempt_ref(), Some(("job_1", 2))),
            Meaning::Other | Meaning::Card(_) => panic!("a payment event"),
        }
        let other = br#"{"id":"evt_2","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
        assert!(matches!(parse(other), Ok((_, Meaning::Other))));
        assert!(parse(b"not json").is_err());
        assert!(
            parse(br#"{"id":"evt_3","type":"payment_intent.succeeded","data":{"object":{}}}"#)
                .is_err()
        );
    }
}
