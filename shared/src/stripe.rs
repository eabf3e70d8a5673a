//! Stripe semantics for charging a booking: the PaymentIntent request (form-encoded), the
//! idempotency key derived from the job, what each Stripe answer means for the job, and when to
//! try again. Pure: the component sends the request and hands the answer back here.
//!
//! One classification of a PaymentIntent ([`intent_outcome`]) serves the synchronous answer, the
//! lookup and the webhook event alike, so a decline reads the same whichever way it arrives.
//!
//! Not here: HTTP, the webhook signature ([`crate::webhook`]), reading the clock, and what an
//! outcome does to a job ([`crate::attempt`]).

use serde::Deserialize;

use crate::customer::PaymentMethodSummary;
use crate::time::Timestamp;

/// The Stripe API version the requests are written for.
pub const API_VERSION: &str = "2024-06-20";

/// Path of the create-PaymentIntent endpoint, relative to the API base.
pub const PAYMENT_INTENTS_PATH: &str = "/v1/payment_intents";

/// The idempotency key of one attempt of one job. Retrying the *same* attempt (an unknown
/// outcome) must send the same key, so Stripe replays the first result instead of charging
/// again; a *new* attempt (after a soft decline) gets a new key, or Stripe would replay the
/// decline.
pub fn idempotency_key(job_id: &str, attempt: u32) -> String {
    format!("mio-{job_id}-attempt-{attempt}")
}

/// Everything one off-session charge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Minor units; the booking's balance due.
    pub amount_cents: i64,
    /// Lower-case ISO 4217.
    pub currency: String,
    /// The customer's Stripe id on the connected account (`cus_…`).
    pub stripe_customer: String,
    /// The primary card (`pm_…`).
    pub payment_method: String,
    /// The business's connected account (`acct_…`), sent as `Stripe-Account`.
    pub stripe_account: String,
    /// Ours: `acc_…`.
    pub account_id: String,
    /// Ours: `bkg_…`.
    pub booking_id: String,
    /// Ours: `job_…`.
    pub job_id: String,
    /// Which attempt of the job this is (1-based).
    pub attempt: u32,
}

impl ChargeRequest {
    /// The `application/x-www-form-urlencoded` body of `POST /v1/payment_intents`, confirming
    /// off-session with the metadata that lets us find the PaymentIntent again.
    pub fn form_body(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("amount", &self.amount_cents.to_string())
            .append_pair("currency", &self.currency)
            .append_pair("customer", &self.stripe_customer)
            .append_pair("payment_method", &self.payment_method)
            .append_pair("confirm", "true")
            .append_pair("off_session", "true")
            // Card only: since API version 2023-08-16 a PaymentIntent without
            // `payment_method_types` turns on automatic payment methods, and confirming one
            // then needs a `return_url` (redirect-based methods). An off-session charge of a
            // saved card never redirects, so we name the one type it is
            // (https://docs.stripe.com/upgrades#2023-08-16).
            .append_pair("payment_method_types[]", "card")
            .append_pair("metadata[mio_account_id]", &self.account_id)
            .append_pair("metadata[mio_booking_id]", &self.booking_id)
            .append_pair("metadata[mio_job_id]", &self.job_id)
            .append_pair("metadata[mio_attempt]", &self.attempt.to_string());
        form.finish()
    }

    /// The `Idempotency-Key` header of this attempt.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(&self.job_id, self.attempt)
    }
}

/// What a Stripe answer means for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged: the booking's balance goes down by `amount_cents`.
    Succeeded {
        /// `pi_…`.
        payment_intent: String,
        /// Amount Stripe received.
        amount_cents: i64,
    },
    /// The bank wants the customer to authenticate (3-D Secure): Failed, no automatic retry;
    /// the business must ask the customer.
    AuthenticationRequired {
        /// `pi_…`, when Stripe sent one.
        payment_intent: Option<String>,
        /// Stripe's message.
        message: String,
    },
    /// The card was declined.
    Declined {
        /// `pi_…`, when Stripe sent one.
        payment_intent: Option<String>,
        /// Stripe's `decline_code` (or `code` when there is none).
        decline_code: String,
        /// Whether trying again later may succeed (e.g. `insufficient_funds`).
        soft: bool,
        /// Stripe's message.
        message: String,
    },
    /// The PaymentIntent was canceled (by the business or Stripe): nothing was charged, and no
    /// one should charge it again automatically.
    Canceled {
        /// `pi_…`.
        payment_intent: String,
    },
    /// Not known whether Stripe charged (5xx, timeout, dropped connection, a PaymentIntent still
    /// processing, a key Stripe says was used differently): only a webhook or a lookup can tell.
    Unknown {
        /// What happened, for the activity log.
        reason: String,
    },
    /// Stripe turned the request away before executing it (`429` rate limit, which Stripe
    /// applies in front of its idempotency layer): nothing was charged and nothing was saved
    /// under the key, so the same request may be sent again.
    NotExecuted {
        /// What happened, for the activity log.
        reason: String,
    },
    /// `401` / `403`: the platform's secret key, or its access to the connected account, was
    /// refused. Not the customer's fault, and nothing was executed.
    Credentials {
        /// `401` or `403`.
        status: u16,
        /// Stripe's message.
        message: String,
    },
    /// Stripe refused the request itself (bad parameters, missing customer or card, auth):
    /// Failed; retrying the same request cannot help.
    Rejected {
        /// Stripe's error code, if any.
        code: Option<String>,
        /// Stripe's message.
        message: String,
    },
}

/// The parts of a PaymentIntent object the core reads (answer, lookup and event alike).
#[derive(Debug, Clone, Deserialize)]
pub struct Intent {
    /// `pi_…`.
    pub id: String,
    /// Stripe's status.
    pub status: String,
    /// What was asked for.
    #[serde(default)]
    pub amount: i64,
    /// What was collected.
    #[serde(default)]
    pub amount_received: i64,
    /// Lower-case ISO 4217.
    #[serde(default)]
    pub currency: String,
    /// `cus_…`.
    #[serde(default)]
    pub customer: Option<String>,
    /// Ours: `mio_account_id`, `mio_booking_id`, `mio_job_id`, `mio_attempt`.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    last_payment_error: Option<ErrorBody>,
}

impl Intent {
    /// The job and attempt this PaymentIntent was made for, from its metadata.
    pub fn attempt_ref(&self) -> Option<(&str, u32)> {
        let job = self.metadata.get("mio_job_id")?;
        let attempt = self.metadata.get("mio_attempt")?.parse().ok()?;
        Some((job.as_str(), attempt))
    }
}

/// What a PaymentIntent's state means for the attempt that made it: the one classification
/// used for answers, lookups and webhook events
/// (https://docs.stripe.com/payments/paymentintents/lifecycle).
pub fn intent_outcome(intent: &Intent) -> ChargeOutcome {
    match intent.status.as_str() {
        "succeeded" => ChargeOutcome::Succeeded {
            amount_cents: if intent.amount_received > 0 {
                intent.amount_received
            } else {
                intent.amount
            },
            payment_intent: intent.id.clone(),
        },
        // On-session 3-D Secure; off-session it arrives as a failure with
        // `authentication_required` instead.
        "requires_action" => ChargeOutcome::AuthenticationRequired {
            payment_intent: Some(intent.id.clone()),
            message: "the customer must authenticate this payment".into(),
        },
        "canceled" => ChargeOutcome::Canceled {
            payment_intent: intent.id.clone(),
        },
        // A failed confirmation returns the intent to `requires_payment_method` with the
        // failure in `last_payment_error`: that is final for this attempt.
        "requires_payment_method" => match &intent.last_payment_error {
            Some(error) => card_failure(error, Some(intent.id.clone())),
            None => ChargeOutcome::Unknown {
                reason: format!("PaymentIntent {} is not confirmed yet", intent.id),
            },
        },
        // `processing`, `requires_confirmation`, `requires_capture`: not settled yet.
        other => ChargeOutcome::Unknown {
            reason: format!("PaymentIntent {} is {other}", intent.id),
        },
    }
}

/// A card failure (decline or authentication needed) from Stripe's error object.
fn card_failure(error: &ErrorBody, payment_intent: Option<String>) -> ChargeOutcome {
    let code = error.code.as_deref();
    let decline = error.decline_code.as_deref();
    let message = error.message.clone().unwrap_or_default();
    if code == Some("authentication_required") || decline == Some("authentication_required") {
        return ChargeOutcome::AuthenticationRequired {
            payment_intent,
            message,
        };
    }
    let decline_code = decline.or(code).unwrap_or("card_declined").to_owned();
    ChargeOutcome::Declined {
        payment_intent,
        soft: is_soft_decline(&decline_code),
        decline_code,
        message,
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Clone, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    payment_intent: Option<IntentRef>,
}

#[derive(Debug, Clone, Deserialize)]
struct IntentRef {
    id: String,
}

/// Decline codes after which retrying the same card cannot succeed: the card is gone, blocked,
/// or the issuer says never to try again. Any other decline code is treated as soft.
const HARD_DECLINES: &[&str] = &[
    "card_not_supported",
    "currency_not_supported",
    "expired_card",
    "fraudulent",
    "incorrect_number",
    "invalid_account",
    "invalid_number",
    "lost_card",
    "merchant_blacklist",
    "pickup_card",
    "restricted_card",
    "revocation_of_all_authorizations",
    "revocation_of_authorization",
    "security_violation",
    "stolen_card",
    "stop_payment_order",
    "transaction_not_allowed",
];

/// Whether a decline with this code may succeed if tried again later.
pub fn is_soft_decline(decline_code: &str) -> bool {
    !HARD_DECLINES.contains(&decline_code)
}

/// Interprets Stripe's answer to a create-and-confirm PaymentIntent request
/// (https://docs.stripe.com/api/errors, https://docs.stripe.com/error-low-level).
pub fn classify(status: u16, body: &str) -> ChargeOutcome {
    let error = || {
        serde_json::from_str::<ErrorEnvelope>(body)
            .ok()
            .map(|e| e.error)
    };
    match status {
        // Rate limiting happens in front of the idempotency layer: nothing ran, nothing saved.
        429 => {
            return ChargeOutcome::NotExecuted {
                reason: "Stripe answered HTTP 429 (rate limited)".into(),
            };
        }
        401 | 403 => {
            return ChargeOutcome::Credentials {
                status,
                message: error().and_then(|e| e.message).unwrap_or_default(),
            };
        }
        // A 500 is indeterminate: Stripe may have charged, and reconciles in the background.
        500.. => {
            return ChargeOutcome::Unknown {
                reason: format!("Stripe answered HTTP {status}"),
            };
        }
        200..=299 => {
            return match serde_json::from_str::<Intent>(body) {
                Ok(intent) => intent_outcome(&intent),
                Err(e) => ChargeOutcome::Unknown {
                    reason: format!("unreadable Stripe answer: {e}"),
                },
            };
        }
        _ => {}
    }
    let Some(error) = error() else {
        return ChargeOutcome::Rejected {
            code: None,
            message: format!("Stripe answered HTTP {status} without an error object"),
        };
    };
    if error.kind.as_deref() == Some("card_error") {
        return card_failure(&error, error.payment_intent.as_ref().map(|p| p.id.clone()));
    }
    // The key is executing elsewhere (409), or Stripe says it was used with other parameters:
    // either way the first request may have charged, so this is never a decline.
    if status == 409 || error.kind.as_deref() == Some("idempotency_error") {
        return ChargeOutcome::Unknown {
            reason: format!(
                "Stripe refused the idempotency key: {}",
                error.message.unwrap_or_default()
            ),
        };
    }
    ChargeOutcome::Rejected {
        code: error.code,
        message: error.message.unwrap_or_default(),
    }
}

/// The delays, in minutes, before each retry of a soft decline (the account's default retry
/// schedule): 1 day, 3 days, 5 days.
pub const SOFT_DECLINE_RETRY_MINUTES: &[u32] = &[24 * 60, 3 * 24 * 60, 5 * 24 * 60];

/// Backoff for unknown outcomes: 1, 2, 4, … minutes, at most one hour apart.
pub fn unknown_backoff_minutes(retries_so_far: u32) -> u32 {
    1u32.checked_shl(retries_so_far).unwrap_or(u32::MAX).min(60)
}

/// When a soft-declined job should try again after `attempt` (1-based), or `None` when the
/// schedule is used up.
pub fn next_soft_decline_retry(
    attempt: u32,
    schedule_minutes: &[u32],
    now: Timestamp,
) -> Option<Timestamp> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let minutes = *schedule_minutes.get(index)?;
    Some(now.plus_minutes(i64::from(minutes)))
}

/// Stripe keeps idempotency keys for at least 24 hours; after this long since the first try of
/// an attempt, look the PaymentIntent up by metadata before sending the request again.
pub const IDEMPOTENCY_KEY_TRUST_MINUTES: i64 = 23 * 60;

/// Path of the retrieve-PaymentMethod endpoint for `pm_id`, relative to the API base.
pub fn payment_method_path(pm_id: &PaymentMethodId) -> String {
    format!("/v1/payment_methods/{}", pm_id.as_str())
}

/// A Stripe PaymentMethod id (`pm_` then letters, digits or `_`), safe to put in a URL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodId(String);

impl PaymentMethodId {
    /// Parses `pm_…`; the error is the message for the `payment_method_id` field.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let valid = text.strip_prefix("pm_").is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 255
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err("must be a Stripe PaymentMethod id, pm_ followed by letters and digits")
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What Stripe's answer to `GET /v1/payment_methods/{id}` means for making it a customer's
/// primary card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardLookup {
    /// A card attached to the expected customer: store it.
    Card(PaymentMethodSummary),
    /// No such PaymentMethod on the connected account.
    NotFound,
    /// It is attached to another customer, or to none.
    OtherCustomer,
    /// It exists but is not a card.
    NotACard,
    /// Stripe could not answer (5xx, 429, unreadable answer): nothing may change.
    Unavailable {
        /// What happened, for the log.
        reason: String,
    },
    /// Stripe refused the request (auth, bad account): our configuration, not the user's input.
    Rejected {
        /// Stripe's message, for the log.
        reason: String,
    },
}

#[derive(Deserialize)]
struct PaymentMethodBody {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    customer: Option<String>,
    card: Option<CardBody>,
}

#[derive(Deserialize)]
struct CardBody {
    brand: String,
    last4: String,
    exp_month: u8,
    exp_year: u16,
}

/// Interprets Stripe's answer to a retrieve-PaymentMethod request made on the connected
/// account, for a card that must belong to `stripe_customer` (`cus_…`).
pub fn card_from_lookup(status: u16, body: &str, stripe_customer: &str) -> CardLookup {
    if status == 429 || status >= 500 {
        return CardLookup::Unavailable {
            reason: format!("Stripe answered HTTP {status}"),
        };
    }
    if !(200..300).contains(&status) {
        let error = serde_json::from_str::<ErrorEnvelope>(body)
            .ok()
            .map(|e| e.error);
        let code = error.as_ref().and_then(|e| e.code.as_deref());
        if status == 404 || code == Some("resource_missing") {
            return CardLookup::NotFound;
        }
        let message = error.and_then(|e| e.message).unwrap_or_default();
        return CardLookup::Rejected {
            reason: format!("Stripe answered HTTP {status}: {message}"),
        };
    }
    let method = match serde_json::from_str::<PaymentMethodBody>(body) {
        Ok(method) => method,
        Err(e) => {
            return CardLookup::Unavailable {
                reason: format!("unreadable Stripe answer: {e}"),
            };
        }
    };
    if method.customer.as_deref() != Some(stripe_customer) {
        return CardLookup::OtherCustomer;
    }
    match (method.kind.as_str(), method.card) {
        ("card", Some(card)) if (1..=12).contains(&card.exp_month) => {
            CardLookup::Card(PaymentMethodSummary {
                id: method.id,
                brand: card.brand,
                last4: card.last4,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
            })
        }
        ("card", _) => CardLookup::Unavailable {
            reason: "Stripe sent a card PaymentMethod without readable card details".into(),
        },
        _ => CardLookup::NotACard,
    }
}

/// What a lookup of one attempt's PaymentIntent found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A PaymentIntent for the attempt exists; this is what its state means (an in-flight one
    /// reads as [`ChargeOutcome::Unknown`]).
    Found(ChargeOutcome),
    /// No PaymentIntent carries the attempt's metadata *yet*. Never proof that nothing was
    /// charged: search lags behind writes, and a `500` may still be reconciled.
    NotFound,
    /// The search could not be read (or Stripe was not reachable): nothing can be concluded.
    Inconclusive {
        /// What went wrong, for the log and activity.
        reason: String,
    },
    /// `401` / `403` on the lookup.
    Credentials {
        /// `401` or `403`.
        status: u16,
        /// Stripe's message.
        message: String,
    },
}

/// Path of the PaymentIntent search endpoint.
pub const SEARCH_INTENTS_PATH: &str = "/v1/payment_intents/search";

/// `GET` path (with query) searching the connected account for the PaymentIntent of attempt
/// `attempt` of job `job_id` by the metadata the attempt sent
/// (https://docs.stripe.com/search#query-fields-for-payment-intents). Built from what the
/// attempt itself sent, never from the customer as it is now.
pub fn search_attempt_path(job_id: &str, attempt: u32) -> String {
    let query = format!(
        "metadata['mio_job_id']:'{}' AND metadata['mio_attempt']:'{attempt}'",
        job_id.replace(['\\', '\''], "")
    );
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    encoded
        .append_pair("query", &query)
        .append_pair("limit", "10");
    format!("{SEARCH_INTENTS_PATH}?{}", encoded.finish())
}

#[derive(Deserialize)]
struct IntentList {
    data: Vec<Intent>,
}

/// Finds the PaymentIntent of attempt `attempt` of job `job_id` (by its metadata) in the answer
/// to [`search_attempt_path`].
pub fn find_attempt(status: u16, body: &str, job_id: &str, attempt: u32) -> Lookup {
    if status == 401 || status == 403 {
        let message = serde_json::from_str::<ErrorEnvelope>(body)
            .ok()
            .and_then(|e| e.error.message)
            .unwrap_or_default();
        return Lookup::Credentials { status, message };
    }
    if !(200..300).contains(&status) {
        return Lookup::Inconclusive {
            reason: format!("searching PaymentIntents answered HTTP {status}"),
        };
    }
    let list = match serde_json::from_str::<IntentList>(body) {
        Ok(list) => list,
        Err(e) => {
            return Lookup::Inconclusive {
                reason: format!("unreadable PaymentIntent search: {e}"),
            };
        }
    };
    match list
        .data
        .iter()
        .find(|intent| intent.attempt_ref() == Some((job_id, attempt)))
    {
        Some(intent) => Lookup::Found(intent_outcome(intent)),
        None => Lookup::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> ChargeRequest {
        ChargeRequest {
            amount_cents: 12_500,
            currency: "cad".into(),
            stripe_customer: "cus_Stripe123".into(),
            payment_method: "pm_card".into(),
            stripe_account: "acct_biz".into(),
            account_id: "acc_1".into(),
            booking_id: "bkg_1".into(),
            job_id: "job_1".into(),
            attempt: 2,
        }
    }

    #[test]
    fn form_body_confirms_off_session_with_metadata() {
        let body = request().form_body();
        let get = |k: &str| crate::test_support::form_value(&body, k);
        assert_eq!(get("amount").as_deref(), Some("12500"));
        assert_eq!(get("confirm").as_deref(), Some("true"));
        assert_eq!(get("off_session").as_deref(), Some("true"));
        assert_eq!(get("metadata[mio_job_id]").as_deref(), Some("job_1"));
        assert_eq!(get("metadata[mio_attempt]").as_deref(), Some("2"));
    }

    #[test]
    fn the_same_attempt_always_gets_the_same_key_and_a_new_attempt_a_new_one() {
        assert_eq!(idempotency_key("job_1", 1), idempotency_key("job_1", 1));
        assert_ne!(idempotency_key("job_1", 1), idempotency_key("job_1", 2));
        assert_ne!(idempotency_key("job_1", 1), idempotency_key("job_2", 1));
    }

    #[test]
    fn succeeded_intent_is_success_with_the_amount_received() {
        let body = r#"{"id":"pi_1","object":"payment_intent","status":"succeeded","amount":500,"amount_received":500}"#;
        assert_eq!(
            classify(200, body),
            ChargeOutcome::Succeeded {
                payment_intent: "pi_1".into(),
                amount_cents: 500
            }
        );
    }

    #[test]
    fn off_session_authentication_required_is_not_a_decline() {
        let body = r#"{"error":{"type":"card_error","code":"authentication_required","decline_code":"authentication_required","message":"This payment requires authentication.","payment_intent":{"id":"pi_2","status":"requires_payment_method"}}}"#;
        assert!(matches!(
            classify(402, body),
            ChargeOutcome::AuthenticationRequired { payment_intent: Some(ref p), .. } if p == "pi_2"
        ));
    }

    #[test]
    fn insufficient_funds_is_a_soft_decline_and_stolen_card_a_hard_one() {
        let decline = |code: &str| {
            format!(
                r#"{{"error":{{"type":"card_error","code":"card_declined","decline_code":"{code}","message":"Your card was declined."}}}}"#
            )
        };
        assert!(matches!(
            classify(402, &decline("insufficient_funds")),
            ChargeOutcome::Declined { soft: true, ref decline_code, .. } if decline_code == "insufficient_funds"
        ));
        assert!(matches!(
            classify(402, &decline("stolen_card")),
            ChargeOutcome::Declined { soft: false, .. }
        ));
    }

    #[test]
    fn server_errors_are_unknown() {
        assert!(matches!(classify(500, "{}"), ChargeOutcome::Unknown { .. }));
        assert!(matches!(
            classify(503, "not json"),
            ChargeOutcome::Unknown { .. }
        ));
    }

    #[test]
    fn a_missing_customer_is_rejected_not_retried() {
        let body = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","param":"customer","message":"No such customer"}}"#;
        assert!(matches!(
            classify(400, body),
            ChargeOutcome::Rejected { code: Some(ref c), .. } if c == "resource_missing"
        ));
    }

    #[test]
    fn soft_decline_schedule_runs_out() {
        let now = Timestamp::from_unix_millis(0).expect("epoch");
        let schedule = SOFT_DECLINE_RETRY_MINUTES;
        assert_eq!(
            next_soft_decline_retry(1, schedule, now),
            Some(now.plus_minutes(24 * 60))
        );
        assert_eq!(next_soft_decline_retry(4, schedule, now), None);
        assert_eq!(next_soft_decline_retry(0, schedule, now), None);
    }

    fn card_json(customer: &str, kind: &str) -> String {
        format!(
            r#"{{"id":"pm_1","object":"payment_method","type":"{kind}","customer":"{customer}",
            "card":{{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030,"funding":"credit"}}}}"#
        )
    }

    #[test]
    fn a_card_of_the_expected_customer_becomes_a_summary() {
        assert_eq!(
            card_from_lookup(200, &card_json("cus_A", "card"), "cus_A"),
            CardLookup::Card(PaymentMethodSummary {
                id: "pm_1".into(),
                brand: "visa".into(),
                last4: "4242".into(),
                exp_month: 12,
                exp_year: 2030,
            })
        );
    }

    #[test]
    fn a_card_of_another_customer_or_not_a_card_is_refused() {
        assert_eq!(
            card_from_lookup(200, &card_json("cus_B", "card"), "cus_A"),
            CardLookup::OtherCustomer
        );
        let detached = r#"{"id":"pm_1","type":"card","customer":null,"card":{"brand":"visa","last4":"4242","exp_month":1,"exp_year":2030}}"#;
        assert_eq!(
            card_from_lookup(200, detached, "cus_A"),
            CardLookup::OtherCustomer
        );
        let sepa = r#"{"id":"pm_1","type":"sepa_debit","customer":"cus_A"}"#;
        assert_eq!(card_from_lookup(200, sepa, "cus_A"), CardLookup::NotACard);
    }

    #[test]
    fn a_missing_payment_method_is_not_found_and_server_errors_are_unavailable() {
        let missing = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such PaymentMethod"}}"#;
        assert_eq!(
            card_from_lookup(404, missing, "cus_A"),
            CardLookup::NotFound
        );
        assert!(matches!(
            card_from_lookup(503, "oops", "cus_A"),
            CardLookup::Unavailable { .. }
        ));
        assert!(matches!(
            card_from_lookup(401, r#"{"error":{"message":"bad key"}}"#, "cus_A"),
            CardLookup::Rejected { .. }
        ));
    }

    #[test]
    fn payment_method_ids_need_the_pm_prefix_and_url_safe_characters() {
        assert!(PaymentMethodId::parse("pm_1Abc_2").is_ok());
        for bad in ["", "pm_", "card_1", "pm_a/b", "pm_a?b", "pm_ a"] {
            assert!(PaymentMethodId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_lookup_finds_the_attempt_by_its_metadata_only() {
        let body = r#"{"object":"list","data":[
            {"id":"pi_other","status":"succeeded","amount":500,"amount_received":500,"metadata":{"mio_job_id":"job_1","mio_attempt":"2"}},
            {"id":"pi_mine","status":"succeeded","amount":500,"amount_received":500,"metadata":{"mio_job_id":"job_1","mio_attempt":"1"}}
        ],"has_more":false}"#;
        assert_eq!(
            find_attempt(200, body, "job_1", 1),
            Lookup::Found(ChargeOutcome::Succeeded {
                payment_intent: "pi_mine".into(),
                amount_cents: 500
            })
        );
        assert_eq!(find_attempt(200, body, "job_1", 3), Lookup::NotFound);
        assert!(matches!(
            find_attempt(500, body, "job_1", 1),
            Lookup::Inconclusive { .. }
        ));
    }

    #[test]
    fn a_declined_intent_found_by_lookup_reads_as_its_decline() {
        let body = r#"{"data":[{"id":"pi_1","status":"requires_payment_method","amount":500,
            "metadata":{"mio_job_id":"job_1","mio_attempt":"1"},
            "last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"no"}}]}"#;
        assert!(matches!(
            find_attempt(200, body, "job_1", 1),
            Lookup::Found(ChargeOutcome::Declined { soft: true, .. })
        ));
    }

    #[test]
    fn the_search_names_the_attempts_metadata_only() {
        let path = search_attempt_path("job_1", 2);
        let (base, query) = path.split_once('?').expect("a query");
        assert_eq!(base, SEARCH_INTENTS_PATH);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs[0],
            (
                "query".to_owned(),
                "metadata['mio_job_id']:'job_1' AND metadata['mio_attempt']:'2'".to_owned()
            )
        );
    }

    #[test]
    fn the_request_names_card_as_its_only_payment_method_type() {
        let body = request().form_body();
        let types: Vec<String> = form_urlencoded::parse(body.as_bytes())
            .filter(|(k, _)| k == "payment_method_types[]")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(types, vec!["card".to_owned()]);
        assert!(!body.contains("automatic_payment_methods"));
    }

    #[test]
    fn credentials_rate_limits_and_idempotency_errors_are_never_declines() {
        assert!(matches!(
            classify(
                401,
                r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key"}}"#
            ),
            ChargeOutcome::Credentials { status: 401, .. }
        ));
        assert!(matches!(
            classify(
                403,
                r#"{"error":{"type":"invalid_request_error","code":"account_invalid","message":"no access"}}"#
            ),
            ChargeOutcome::Credentials { status: 403, .. }
        ));
        assert!(matches!(
            classify(429, "{}"),
            ChargeOutcome::NotExecuted { .. }
        ));
        assert!(matches!(
            classify(
                400,
                r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#
            ),
            ChargeOutcome::Unknown { .. }
        ));
        assert!(matches!(
            classify(
                409,
                r#"{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"in use"}}"#
            ),
            ChargeOutcome::Unknown { .. }
        ));
    }

    #[test]
    fn a_canceled_or_processing_intent_reads_as_canceled_or_unknown() {
        assert_eq!(
            classify(200, r#"{"id":"pi_1","status":"canceled","amount":5}"#),
            ChargeOutcome::Canceled {
                payment_intent: "pi_1".into()
            }
        );
        assert!(matches!(
            classify(200, r#"{"id":"pi_1","status":"processing","amount":5}"#),
            ChargeOutcome::Unknown { .. }
        ));
    }

    proptest! {
        #[test]
        fn unknown_backoff_grows_and_is_capped_at_an_hour(n in 0u32..200) {
            let b = unknown_backoff_minutes(n);
            prop_assert!((1..=60).contains(&b));
            prop_assert!(unknown_backoff_minutes(n + 1) >= b);
        }

        #[test]
        fn classify_never_panics_and_2xx_garbage_is_unknown(status in 100u16..600, body in ".{0,200}") {
            let outcome = classify(status, &body);
            if (200..300).contains(&status) && serde_json::from_str::<serde_json::Value>(&body).is_err() {
                prop_assert!(matches!(outcome, ChargeOutcome::Unknown { .. }), "{:?}", outcome);
            }
        }
    }
}
