//! Messages to customers (rating requests, "add your card" links): the three channels' wire
//! formats, what each provider's answer means, and the life of one send.
//!
//! # The life of one send ([`Send`])
//! One message is one customer, one channel and one subject (a feedback job, a payment-method
//! request); storage keeps at most one per subject and channel, so a message is never planned
//! twice. Its request is built once ([`Message`], the link left as [`LINK_PLACEHOLDER`]) and
//! every try sends that copy.
//! - A try is marked in flight before it leaves; a run that dies mid-try leaves it "may have
//!   been delivered".
//! - **Delivered** ends it, with the provider's message id.
//! - **Refused** (the provider's 4xx: a bad number, a bad address, bad credentials) ends it as
//!   Failed with the provider's reason: the same request would be refused again.
//! - **Not sent** (a 429, a connection never made): nothing reached the provider, so it is
//!   tried again after a backoff ([`BACKOFF_MINUTES`]), up to [`MAX_TRIES`] tries, then Failed.
//! - **Unknown** (a 5xx, a timeout, a dropped answer): the provider may have delivered it.
//!   - On a channel with idempotency (e-mail through Resend's `Idempotency-Key`, and the
//!     signed webhook, whose `webhook-id` receivers de-duplicate on by the Standard Webhooks
//!     spec) the same request is sent again with the same key, within the key's lifetime.
//!   - On a channel without (Twilio has no idempotency for creating messages), a resend could
//!     text the customer twice. It is **not** resent: it ends as Failed, saying that the SMS may
//!     have been delivered, so the business can check Twilio's log and follow up by hand. A
//!     rating request that may be missing costs little; a duplicate text annoys a customer.

use crate::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

/// Where the link goes in a stored message; filled in at each send, so no link token is stored.
pub const LINK_PLACEHOLDER: &str = "{{link}}";

/// Tries of one message before it is Failed.
pub const MAX_TRIES: u32 = 5;

/// Minutes to wait after the n-th try (1-based) that did not deliver.
pub const BACKOFF_MINUTES: [i64; 4] = [1, 5, 15, 60];

/// Resend keeps an idempotency key 24 hours; a resend after that could deliver twice.
/// <https://resend.com/docs/dashboard/emails/idempotency-keys>
pub const EMAIL_KEY_LIFETIME_MINUTES: i64 = 24 * 60;

/// A way to reach a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail through Resend.
    Email,
    /// SMS through Twilio.
    Sms,
    /// The business's own receiver, signed in the Standard Webhooks format.
    Webhook,
}

impl Channel {
    /// Every channel, in the order they are tried.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Webhook];

    /// The storage and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    /// The channel named `name`.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether sending the same request again cannot deliver a second message.
    pub fn idempotent(self) -> bool {
        match self {
            Channel::Email | Channel::Webhook => true,
            Channel::Sms => false,
        }
    }
}

/// A message as built once and stored: every try sends this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its channel.
    pub channel: Channel,
    /// E-mail address, E.164 phone number, or the webhook URL.
    pub to: String,
    /// E-mail subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Plain text (e-mail and SMS) with [`LINK_PLACEHOLDER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// E-mail reply-to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The webhook's JSON payload, with [`LINK_PLACEHOLDER`] as its `data.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// What a message is about, for its wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Asking for a rating of a completed booking.
    Feedback {
        /// `bkg_…`.
        booking_id: String,
        /// The booking's service type, as stored (`deep_clean`; messages say "deep clean").
        service_type: String,
        /// When the booking started.
        start_at: Timestamp,
        /// When it started, as the customer reads it (`TimeZone::local_start`).
        local_date: String,
    },
    /// Asking the customer to add a card.
    PaymentMethod,
}

/// Who the message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// `cus_…`.
    pub customer_id: String,
    /// Name.
    pub name: String,
    /// E-mail address, if any.
    pub email: Option<String>,
    /// Phone, if any.
    pub phone: Option<String>,
}

/// Builds the message of `purpose` for `channel`: `to` is the address, number or webhook URL.
pub fn build(
    channel: Channel,
    to: &str,
    purpose: &Purpose,
    business: &str,
    recipient: &Recipient,
    reply_to: Option<&str>,
    now: Timestamp,
) -> Message {
    let first_name = recipient.name.split_whitespace().next().unwrap_or("there");
    let (subject, text) = match purpose {
        Purpose::Feedback {
            service_type,
            local_date,
            ..
        } => {
            let service_type = service_type.replace('_', " ");
            match channel {
                Channel::Sms => (
                    None,
                    format!(
                        "{business}: how was your {service_type} on {local_date}? \
                     Rate it 1-5: {LINK_PLACEHOLDER}"
                    ),
                ),
                _ => (
                    Some(format!("How did we do? Rate your {service_type}")),
                    format!(
                        "Hi {first_name},\n\nThank you for choosing {business}. How was your \
                     {service_type} on {local_date}? It takes a few seconds to rate it from 1 to \
                     5:\n\n{LINK_PLACEHOLDER}\n\n{business}\n"
                    ),
                ),
            }
        }
        Purpose::PaymentMethod => match channel {
            Channel::Sms => (
                None,
                format!("{business}: please add a card for your visits: {LINK_PLACEHOLDER}"),
            ),
            _ => (
                Some(format!("{business} asks you to add a card")),
                format!(
                    "Hi {first_name},\n\n{business} asks you to save a card for your upcoming \
                     visits. Add it securely here:\n\n{LINK_PLACEHOLDER}\n\n{business}\n"
                ),
            ),
        },
    };
    match channel {
        Channel::Email => Message {
            channel,
            to: to.to_owned(),
            subject,
            text: Some(text),
            reply_to: reply_to.map(str::to_owned),
            payload: None,
        },
        Channel::Sms => Message {
            channel,
            to: to.to_owned(),
            subject: None,
            text: Some(text),
            reply_to: None,
            payload: None,
        },
        Channel::Webhook => Message {
            channel,
            to: to.to_owned(),
            subject: None,
            text: None,
            reply_to: None,
            payload: Some(webhook_payload(purpose, recipient, now)),
        },
    }
}

/// The signed webhook's body (API.md "Feedback").
fn webhook_payload(purpose: &Purpose, recipient: &Recipient, now: Timestamp) -> Value {
    let customer = json!({
        "id": recipient.customer_id,
        "name": recipient.name,
        "email": recipient.email,
        "phone": recipient.phone,
    });
    match purpose {
        Purpose::Feedback {
            booking_id,
            service_type,
            start_at,
            ..
        } => json!({
            "type": "feedback.requested",
            "timestamp": now.to_string(),
            "data": {
                "customer": customer,
                "booking": {
                    "id": booking_id,
                    "service_type": service_type,
                    "start_at": start_at.to_string(),
                },
                "url": LINK_PLACEHOLDER,
            },
        }),
        Purpose::PaymentMethod => json!({
            "type": "payment_method.requested",
            "timestamp": now.to_string(),
            "data": { "customer": customer, "url": LINK_PLACEHOLDER },
        }),
    }
}

/// The operator's provider settings a send needs (from Spin variables).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Providers {
    /// `email_from`: the sender, e.g. `Mio <ratings@mio.example>`.
    pub email_from: String,
    /// `twilio_account_sid`.
    pub twilio_account_sid: String,
    /// `twilio_from`: the sending number (E.164).
    pub twilio_from: String,
}

/// One HTTP request to a provider, less its origin and credentials (the shell adds the
/// `Authorization` header from the secret variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRequest {
    /// The path (e-mail, SMS) or the full URL (webhook).
    pub path: String,
    /// Headers besides `Authorization` and `Content-Length`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

/// The request that sends `message` (message id `id`) with `link` in place, at `now`.
/// `webhook_secret` is the business's `whsec_…` secret (webhook channel only).
pub fn wire_request(
    message: &Message,
    id: &str,
    link: &str,
    providers: &Providers,
    webhook_secret: Option<&str>,
    now: Timestamp,
) -> Result<WireRequest, String> {
    let fill = |text: &str| text.replace(LINK_PLACEHOLDER, link);
    match message.channel {
        // https://resend.com/docs/api-reference/emails/send-email: POST /emails, JSON with
        // `from`, `to`, `subject`, `text`; `Idempotency-Key` header.
        Channel::Email => {
            let text = fill(message.text.as_deref().unwrap_or_default());
            let mut body = json!({
                "from": providers.email_from,
                "to": [message.to],
                "subject": message.subject.clone().unwrap_or_default(),
                "text": text,
                "html": text_to_html(&text),
            });
            if let Some(reply_to) = &message.reply_to {
                body["reply_to"] = json!([reply_to]);
            }
            Ok(WireRequest {
                path: "/emails".into(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("idempotency-key".into(), id.to_owned()),
                ],
                body: body.to_string(),
            })
        }
        // https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource:
        // POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form `To`, `From`, `Body`.
        Channel::Sms => {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("To", &message.to)
                .append_pair("From", &providers.twilio_from)
                .append_pair("Body", &fill(message.text.as_deref().unwrap_or_default()))
                .finish();
            Ok(WireRequest {
                path: format!(
                    "/2010-04-01/Accounts/{}/Messages.json",
                    providers.twilio_account_sid
                ),
                headers: vec![(
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body,
            })
        }
        // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
        Channel::Webhook => {
            let secret = webhook_secret.ok_or("the webhook channel has no secret")?;
            let payload = message.payload.as_ref().ok_or("no webhook payload")?;
            let body = fill(&payload.to_string());
            let timestamp = now.unix_millis().div_euclid(1000).to_string();
            let signature = sign_webhook(secret, id, &timestamp, &body)?;
            Ok(WireRequest {
                path: message.to.clone(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("webhook-id".into(), id.to_owned()),
                    ("webhook-timestamp".into(), timestamp),
                    ("webhook-signature".into(), signature),
                ],
                body,
            })
        }
    }
}

fn text_to_html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let paragraphs: Vec<String> = escaped
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = p.trim();
            if p.starts_with("http://") || p.starts_with("https://") {
                format!("<p><a href=\"{p}\">{p}</a></p>")
            } else {
                format!("<p>{}</p>", p.replace('\n', "<br>"))
            }
        })
        .collect();
    paragraphs.join("\n")
}

/// The key of a `whsec_` secret: the base64 after the prefix, 24 to 64 bytes.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("must start with whsec_")?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "must be whsec_ followed by base64".to_owned())?;
    if !(24..=64).contains(&key.len()) {
        return Err("must hold a key of 24 to 64 bytes".to_owned());
    }
    Ok(key)
}

/// `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
pub fn sign_webhook(secret: &str, id: &str, timestamp: &str, body: &str) -> Result<String, String> {
    let key = webhook_key(secret)?;
    let mut mac = <Hmac<Sha256>>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// A fresh `whsec_` secret from 32 random bytes the caller drew.
pub fn new_webhook_secret(bytes: &[u8; 32]) -> String {
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// A secret as answers show it: the prefix and its last four characters.
pub fn mask_secret(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("whsec_…{tail}")
}

/// What a provider's answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was accepted for delivery.
    Delivered {
        /// The provider's id of it (Resend's `id`, Twilio's `sid`, the `webhook-id`).
        provider_id: String,
    },
    /// The provider refused it; the same request would be refused again.
    Refused {
        /// The provider's reason.
        reason: String,
    },
    /// Nothing reached the provider or it turned the request away before acting on it.
    NotSent {
        /// Why.
        reason: String,
    },
    /// The provider may have acted on it.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// How far one outbound HTTP request got, as the shell saw it (a provider's, or Stripe's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An answer.
    Answered {
        /// HTTP status.
        status: u16,
        /// Body.
        body: String,
    },
    /// The request never reached the provider.
    NotSent {
        /// Why.
        reason: String,
    },
    /// No complete answer (timeout, dropped connection).
    NoAnswer {
        /// Why.
        reason: String,
    },
}

/// What `reply` to a try of a message with id `id` on `channel` means.
pub fn classify(channel: Channel, id: &str, reply: &Reply) -> Outcome {
    let (status, body) = match reply {
        Reply::NotSent { reason } => {
            return Outcome::NotSent {
                reason: reason.clone(),
            };
        }
        Reply::NoAnswer { reason } => {
            return Outcome::Unknown {
                reason: format!("no answer: {reason}"),
            };
        }
        Reply::Answered { status, body } => (*status, body.as_str()),
    };
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let provider = match channel {
        Channel::Email => "Resend",
        Channel::Sms => "Twilio",
        Channel::Webhook => "the webhook receiver",
    };
    let detail = match channel {
        // https://resend.com/docs/api-reference/errors: `{"statusCode", "message", "name"}`.
        Channel::Email => join(
            parsed.get("name").and_then(Value::as_str),
            parsed.get("message").and_then(Value::as_str),
        ),
        // https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions:
        // `{"code", "message", "more_info", "status"}`.
        Channel::Sms => join(
            parsed
                .get("code")
                .and_then(Value::as_u64)
                .map(|c| format!("error {c}"))
                .as_deref(),
            parsed.get("message").and_then(Value::as_str),
        ),
        Channel::Webhook => {
            let snippet: String = body.chars().take(200).collect();
            (!snippet.trim().is_empty()).then(|| snippet.trim().to_owned())
        }
    };
    let reason = match &detail {
        Some(detail) => format!("{provider} answered {status}: {detail}"),
        None => format!("{provider} answered {status}"),
    };
    match (channel, status) {
        (Channel::Email, 200..=299) => match parsed.get("id").and_then(Value::as_str) {
            Some(provider_id) => Outcome::Delivered {
                provider_id: provider_id.to_owned(),
            },
            None => Outcome::Unknown {
                reason: format!("{reason} without an email id"),
            },
        },
        (Channel::Sms, 200..=299) => match parsed.get("sid").and_then(Value::as_str) {
            Some(provider_id) => Outcome::Delivered {
                provider_id: provider_id.to_owned(),
            },
            None => Outcome::Unknown {
                reason: format!("{reason} without a message sid"),
            },
        },
        // Standard Webhooks: any 2xx is a successful delivery.
        (Channel::Webhook, 200..=299) => Outcome::Delivered {
            provider_id: id.to_owned(),
        },
        // Rate limited: the request was turned away before it was acted on. (Resend:
        // `rate_limit_exceeded`, `daily_quota_exceeded`; Twilio: 20429.)
        (_, 429) => Outcome::NotSent { reason },
        // Resend: another request with this key is still being processed; nothing new was sent.
        (Channel::Email, 409)
            if parsed.get("name").and_then(Value::as_str)
                == Some("concurrent_idempotent_requests") =>
        {
            Outcome::NotSent { reason }
        }
        // A receiver that timed out is a server-side failure, like a 5xx.
        (Channel::Webhook, 408) => Outcome::Unknown { reason },
        (_, 400..=499) => Outcome::Refused { reason },
        _ => Outcome::Unknown { reason },
    }
}

fn join(code: Option<&str>, message: Option<&str>) -> Option<String> {
    match (code, message) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

/// Where a send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not delivered yet; tried again at `next_try_at`.
    Pending,
    /// Accepted by the provider.
    Delivered,
    /// Will not be tried again.
    Failed,
}

impl Status {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Status> {
        [Status::Pending, Status::Delivered, Status::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One send of one message: the state machine (module doc). Storage writes it back whole,
/// guarded by its previous state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// Its channel.
    pub channel: Channel,
    /// Where it stands.
    pub status: Status,
    /// Tries whose answer was recorded.
    pub tries: u32,
    /// A try left and its answer was never recorded.
    pub in_flight: bool,
    /// Some try may have reached the provider.
    pub maybe_delivered: bool,
    /// When the first try left (the idempotency key's lifetime counts from it).
    pub first_try_at: Option<Timestamp>,
    /// Not before this.
    pub next_try_at: Option<Timestamp>,
    /// The provider's id, once delivered.
    pub provider_id: Option<String>,
    /// Why it failed or waits.
    pub error: Option<String>,
}

/// What a run does with a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Store the send (now in flight), then send the request.
    Send,
    /// Not due yet.
    Wait,
    /// Nothing to do: it is delivered or failed (maybe just now: store it).
    Done,
}

impl Send {
    /// A new send, never tried.
    pub fn new(channel: Channel) -> Send {
        Send {
            channel,
            status: Status::Pending,
            tries: 0,
            in_flight: false,
            maybe_delivered: false,
            first_try_at: None,
            next_try_at: None,
            provider_id: None,
            error: None,
        }
    }

    /// A run reaches this send at `now`: whether to send, and the state to store first.
    pub fn start(&mut self, now: Timestamp) -> Step {
        if self.status != Status::Pending {
            return Step::Done;
        }
        if self.in_flight {
            // A run died with a try in flight: it may have been delivered.
            self.in_flight = false;
            self.maybe_delivered = true;
            self.tries += 1;
            self.error = Some("a try was interrupted before its answer was recorded".into());
        }
        if self.maybe_delivered {
            if !self.channel.idempotent() {
                return self.fail_unsure();
            }
            let key_alive = self
                .first_try_at
                .is_none_or(|first| now < first.plus_minutes(EMAIL_KEY_LIFETIME_MINUTES));
            if self.channel == Channel::Email && !key_alive {
                return self.fail_unsure();
            }
        }
        if self.tries >= MAX_TRIES {
            return self.give_up();
        }
        if self.next_try_at.is_some_and(|at| at > now) {
            return Step::Wait;
        }
        self.in_flight = true;
        self.first_try_at.get_or_insert(now);
        Step::Send
    }

    /// The answer of the try in flight arrived at `now`.
    pub fn answer(&mut self, outcome: Outcome, now: Timestamp) {
        self.in_flight = false;
        self.tries += 1;
        match outcome {
            Outcome::Delivered { provider_id } => {
                self.status = Status::Delivered;
                self.provider_id = Some(provider_id);
                self.error = None;
                self.next_try_at = None;
            }
            Outcome::Refused { reason } => {
                self.status = Status::Failed;
                self.error = Some(reason);
                self.next_try_at = None;
            }
            Outcome::NotSent { reason } => {
                self.error = Some(reason);
                self.retry_or_give_up(now);
            }
            Outcome::Unknown { reason } => {
                self.maybe_delivered = true;
                self.error = Some(reason);
                if self.channel.idempotent() {
                    self.retry_or_give_up(now);
                } else {
                    self.fail_unsure();
                }
            }
        }
    }

    fn retry_or_give_up(&mut self, now: Timestamp) {
        if self.tries >= MAX_TRIES {
            self.give_up();
            return;
        }
        let index = usize::try_from(self.tries.saturating_sub(1)).unwrap_or(usize::MAX);
        let wait = BACKOFF_MINUTES
            .get(index)
            .copied()
            .unwrap_or(BACKOFF_MINUTES[BACKOFF_MINUTES.len() - 1]);
        self.next_try_at = Some(now.plus_minutes(wait));
    }

    fn give_up(&mut self) -> Step {
        let last = self.error.take().unwrap_or_else(|| "no answer".into());
        let unsure = if self.maybe_delivered {
            " It may have been delivered."
        } else {
            ""
        };
        self.status = Status::Failed;
        self.next_try_at = None;
        self.error = Some(format!(
            "gave up after {} tries; last: {last}.{unsure}",
            self.tries
        ));
        Step::Done
    }

    fn fail_unsure(&mut self) -> Step {
        let last = self.error.take().unwrap_or_else(|| "no answer".into());
        let why = match self.channel {
            Channel::Sms => "Twilio has no idempotency, so it is not resent",
            _ => "its idempotency key has expired, so it is not resent",
        };
        self.status = Status::Failed;
        self.next_try_at = None;
        self.error = Some(format!(
            "the {} may have been delivered ({last}); {why}: check the provider's log before \
             sending it again",
            match self.channel {
                Channel::Email => "e-mail",
                Channel::Sms => "SMS",
                Channel::Webhook => "webhook",
            }
        ));
        Step::Done
    }
}

#[cfg(test)]
mod tests;
