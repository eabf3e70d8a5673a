//! "Request payment method": the link that lets a customer save a card on Stripe's own page.
//!
//! A request is a Stripe Checkout Session in `setup` mode, for cards, on the business's
//! connected account, for the customer's Stripe customer (created first when there is none).
//! Every POST to Stripe carries an `Idempotency-Key` derived from our ids, so a retried request
//! creates one customer and one session. Pure: request bodies, keys, the answer's meaning and a
//! request's status at `now`. Not here: HTTP, SQL, the clock.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::card::{METADATA_CUSTOMER, METADATA_REQUEST};
use crate::field::FieldError;
use crate::time::Timestamp;

/// Path of the create-Customer endpoint.
pub const CUSTOMERS_PATH: &str = "/v1/customers";
/// Path of the create-Checkout-Session endpoint.
pub const CHECKOUT_SESSIONS_PATH: &str = "/v1/checkout/sessions";

/// The most a `return_url` may hold.
const MAX_URL: usize = 2048;

/// The body of `POST /api/v1/customers/{id}/payment-method-requests`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// Where Stripe sends the customer back after saving the card (or cancelling).
    pub return_url: Option<String>,
    /// Whether to send the link to the customer now.
    pub send: Option<bool>,
}

impl RequestBody {
    /// Checks the fields: `return_url` must be an absolute `https` (or `http`) URL.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        match &self.return_url {
            Some(url) if !is_web_url(url) => Err(vec![FieldError::new(
                "return_url",
                "must be an absolute https:// or http:// URL of at most 2048 characters",
            )]),
            _ => Ok(()),
        }
    }
}

fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    url.len() <= MAX_URL
        && rest.is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        })
}

/// The success and cancel pages of a request: its `return_url` for both, else the configured
/// pages (`success`; `cancel`, defaulting to `success`; blank counts as unset). Without either,
/// the request is refused on `return_url`.
pub fn pages(
    return_url: Option<&str>,
    success: Option<&str>,
    cancel: Option<&str>,
) -> Result<(String, String), FieldError> {
    fn set(value: Option<&str>) -> Option<&str> {
        value.map(str::trim).filter(|v| !v.is_empty())
    }
    if let Some(url) = return_url {
        return Ok((url.to_owned(), url.to_owned()));
    }
    match set(success) {
        Some(success) => Ok((
            success.to_owned(),
            set(cancel).unwrap_or(success).to_owned(),
        )),
        None => Err(FieldError::new(
            "return_url",
            "is required while the payment_method_success_url variable is not set",
        )),
    }
}

/// Whether Stripe's answer to a create request (`None`: no answer) settles it; otherwise it is
/// sent once more with the same idempotency key, which cannot create twice: a 5xx or a lost
/// answer is indeterminate, and a 429 ran nothing.
pub fn answer_is_final(status: Option<u16>) -> bool {
    status.is_some_and(|s| s < 500 && s != 429)
}

/// The request's id: derived from the use of the client's `Idempotency-Key` when it sent one
/// (`seed`: [`crate::idempotency::KeyUse::seed`]), so a retried or taken-over API call finds the
/// same request and the same Stripe keys; else from `random`.
pub fn request_id(account_id: &str, seed: Option<&str>, random: &[u8; 12]) -> String {
    let bytes: Vec<u8> = match seed {
        Some(seed) => Sha256::digest(format!("{account_id}\n{seed}").as_bytes())[..12].to_vec(),
        None => random.to_vec(),
    };
    format!("pmr_{}", crate::encoding::hex_encode(&bytes))
}

/// The `Idempotency-Key` of creating `customer_id`'s Stripe customer.
pub fn customer_key(customer_id: &str) -> String {
    format!("mio-{customer_id}-stripe-customer")
}

/// The `Idempotency-Key` of creating request `request_id`'s Checkout Session.
pub fn session_key(request_id: &str) -> String {
    format!("mio-{request_id}-checkout-session")
}

/// The form body creating a Stripe customer for ours.
pub fn customer_form(
    customer_id: &str,
    account_id: &str,
    name: &str,
    email: Option<&str>,
    phone: Option<&str>,
) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("name", name);
    if let Some(email) = email {
        form.append_pair("email", email);
    }
    if let Some(phone) = phone {
        form.append_pair("phone", &compact_phone(phone));
    }
    form.append_pair(&format!("metadata[{METADATA_CUSTOMER}]"), customer_id)
        .append_pair("metadata[mio_account_id]", account_id);
    form.finish()
}

/// A phone number as Stripe takes it on a customer: its digits, with the leading `+` kept.
/// Stripe refuses a `phone` over 20 characters (its API description's `maxLength`); a number
/// as typed may hold up to 32 with its spaces and brackets, its digits at most 15.
fn compact_phone(phone: &str) -> String {
    let trimmed = phone.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        format!("+{digits}")
    } else {
        digits
    }
}

/// What a Checkout Session is for.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    /// `pmr_…`.
    pub request_id: &'a str,
    /// Ours: `cus_…`.
    pub customer_id: &'a str,
    /// Ours: `acc_…`.
    pub account_id: &'a str,
    /// The Stripe customer (`cus_…` on Stripe).
    pub stripe_customer: &'a str,
    /// Where Stripe sends the customer after saving.
    pub success_url: &'a str,
    /// Where Stripe sends the customer after cancelling.
    pub cancel_url: &'a str,
}

impl Session<'_> {
    /// The form body of `POST /v1/checkout/sessions`: setup mode, cards only, our ids in the
    /// session's and the SetupIntent's metadata (the webhook reads them from either).
    pub fn form_body(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("mode", "setup")
            .append_pair("customer", self.stripe_customer)
            .append_pair("payment_method_types[]", "card")
            .append_pair("success_url", self.success_url)
            .append_pair("cancel_url", self.cancel_url)
            .append_pair("client_reference_id", self.request_id);
        for prefix in ["metadata", "setup_intent_data[metadata]"] {
            form.append_pair(&format!("{prefix}[{METADATA_CUSTOMER}]"), self.customer_id)
                .append_pair(&format!("{prefix}[{METADATA_REQUEST}]"), self.request_id)
                .append_pair(&format!("{prefix}[mio_account_id]"), self.account_id);
        }
        form.finish()
    }
}

/// A created Checkout Session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    /// `cs_…`.
    pub id: String,
    /// The page to send the customer to.
    pub url: String,
    /// When the link stops working.
    pub expires_at: Timestamp,
}

/// Reads Stripe's answer to creating a Customer: its id.
pub fn created_customer(status: u16, body: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Created {
        id: String,
    }
    if !(200..300).contains(&status) {
        return Err(format!(
            "creating the Stripe customer answered HTTP {status}"
        ));
    }
    serde_json::from_str::<Created>(body)
        .map(|c| c.id)
        .map_err(|e| format!("unreadable Stripe customer: {e}"))
}

/// Reads Stripe's answer to creating a Checkout Session.
pub fn created_session(status: u16, body: &str) -> Result<CreatedSession, String> {
    #[derive(Deserialize)]
    struct Created {
        id: String,
        url: Option<String>,
        expires_at: i64,
    }
    if !(200..300).contains(&status) {
        return Err(format!(
            "creating the Checkout Session answered HTTP {status}"
        ));
    }
    let created: Created =
        serde_json::from_str(body).map_err(|e| format!("unreadable Checkout Session: {e}"))?;
    Ok(CreatedSession {
        id: created.id,
        url: created.url.ok_or("the Checkout Session has no url")?,
        expires_at: created
            .expires_at
            .checked_mul(1000)
            .and_then(Timestamp::from_unix_millis)
            .ok_or("the Checkout Session's expires_at is out of range")?,
    })
}

/// A request's status as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The link works.
    Open,
    /// The customer saved a card.
    Completed,
    /// The link stopped working unused.
    Expired,
}

/// The status of a request stored as `stored` (`open`, `completed`, `expired`) whose link
/// expires at `expires_at`, at `now`.
pub fn status(stored: &str, expires_at: Timestamp, now: Timestamp) -> Status {
    match stored {
        "completed" => Status::Completed,
        "open" if now < expires_at => Status::Open,
        _ => Status::Expired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    #[test]
    fn the_session_is_setup_mode_for_cards_with_our_ids_on_both_objects() {
        let body = Session {
            request_id: "pmr_1",
            customer_id: "cus_M",
            account_id: "acc_1",
            stripe_customer: "cus_S",
            success_url: "https://biz.example/ok",
            cancel_url: "https://biz.example/no",
        }
        .form_body();
        let get = |k: &str| crate::test_support::form_value(&body, k);
        assert_eq!(get("mode").as_deref(), Some("setup"));
        assert_eq!(get("payment_method_types[]").as_deref(), Some("card"));
        assert_eq!(get("customer").as_deref(), Some("cus_S"));
        assert_eq!(get("metadata[mio_request_id]").as_deref(), Some("pmr_1"));
        assert_eq!(
            get("setup_intent_data[metadata][mio_customer_id]").as_deref(),
            Some("cus_M")
        );
    }

    #[test]
    fn a_client_key_gives_the_same_request_id_and_keys_every_time() {
        let random = [7u8; 12];
        let a = request_id("acc_1", Some("key-1"), &[1; 12]);
        assert_eq!(a, request_id("acc_1", Some("key-1"), &[2; 12]));
        assert_ne!(a, request_id("acc_2", Some("key-1"), &random));
        assert_ne!(
            request_id("acc_1", None, &[1; 12]),
            request_id("acc_1", None, &[2; 12])
        );
        assert!(a.starts_with("pmr_") && a.len() == 4 + 24);
        assert_eq!(session_key(&a), session_key(&a));
        assert_eq!(customer_key("cus_1"), "mio-cus_1-stripe-customer");
    }

    #[test]
    fn a_return_url_must_be_an_absolute_web_url() {
        let body = |url: &str| RequestBody {
            return_url: Some(url.into()),
            send: None,
        };
        assert!(body("https://biz.example/cards?x=1").validate().is_ok());
        for bad in [
            "",
            "biz.example",
            "ftp://x",
            "https://",
            "https://a b",
            "javascript:x",
        ] {
            assert!(body(bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_return_url_wins_then_the_configured_pages_else_it_is_required() {
        let ok = |r, s, c| pages(r, s, c).expect("pages");
        assert_eq!(
            ok(Some("https://a.example"), Some("https://s.example"), None),
            ("https://a.example".into(), "https://a.example".into())
        );
        assert_eq!(
            ok(None, Some("https://s.example"), Some(" ")),
            ("https://s.example".into(), "https://s.example".into())
        );
        assert_eq!(
            ok(None, Some("https://s.example"), Some("https://c.example")),
            ("https://s.example".into(), "https://c.example".into())
        );
        assert!(pages(None, Some(""), Some("https://c.example")).is_err());
        assert!(pages(None, None, None).is_err());
    }

    #[test]
    fn only_a_clear_answer_below_500_settles_a_create_request() {
        assert!(answer_is_final(Some(200)));
        assert!(answer_is_final(Some(400)));
        for retried in [None, Some(429), Some(500), Some(503)] {
            assert!(!answer_is_final(retried), "{retried:?}");
        }
    }

    #[test]
    fn an_open_link_expires_at_its_time_and_a_completed_one_stays_completed() {
        let at = ts("2026-03-01T10:00:00Z");
        assert_eq!(status("open", at, ts("2026-03-01T09:59:59Z")), Status::Open);
        assert_eq!(status("open", at, at), Status::Expired);
        assert_eq!(
            status("completed", at, ts("2026-03-02T00:00:00Z")),
            Status::Completed
        );
        assert_eq!(
            status("expired", at, ts("2026-03-01T09:00:00Z")),
            Status::Expired
        );
    }

    #[test]
    fn stripes_answers_read_as_ids_or_a_reason() {
        let session = r#"{"id":"cs_test_1","object":"checkout.session","url":"https://checkout.stripe.com/c/pay/cs_test_1","expires_at":1772445600}"#;
        let created = created_session(200, session).expect("created");
        assert_eq!(created.id, "cs_test_1");
        assert_eq!(created.expires_at.unix_millis(), 1_772_445_600_000);
        assert!(created_session(500, "{}").is_err());
        assert_eq!(
            created_customer(200, r#"{"id":"cus_S1"}"#),
            Ok("cus_S1".into())
        );
        assert!(created_customer(402, "{}").is_err());
    }

    #[test]
    fn a_customer_phone_goes_to_stripe_compact_and_within_its_20_characters() {
        let form = customer_form(
            "cus_1",
            "acc_1",
            "Ada",
            None,
            Some("+44 (20) 7946-0958 123"),
        );
        let phone = crate::test_support::form_value(&form, "phone").expect("a phone");
        assert_eq!(phone, "+442079460958123");
        assert!(phone.len() <= 20);
        let local = customer_form("cus_1", "acc_1", "Ada", None, Some("(415) 555-0100"));
        assert_eq!(
            crate::test_support::form_value(&local, "phone").as_deref(),
            Some("4155550100")
        );
    }
}
