//! Messages to customers, as stored and as sent: an account's channels, the providers from the
//! operator's variables, one row per message (subject and channel), and one try of a send
//! driven by the core's state machine ([`mio_shared::message::Send`]). The tick sends rating
//! requests with it, the customer API "add your card" links.

use crate::db::{Record, Sql, instant, optional_instant, optional_text, rfc3339, text};
use crate::outbound::{self, Origin};
use crate::system;
use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mio_shared::message::{
    self, Channel, Message, Providers, Reply, Send, Status, Step, classify, wire_request,
};
use mio_shared::notify::{Available, ChannelSettings, EmailChannel, WebhookChannel};
use mio_shared::{MessageId, Timestamp};
use spin_sdk::sqlite::Value;
use spin_sdk::wit::wasi::http0_2_0::types::Method;

/// The operator's provider configuration, from Spin variables.
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    /// `email_api_base`.
    pub email_api_base: String,
    /// `email_api_key` (secret).
    pub email_api_key: Option<String>,
    /// `twilio_api_base`.
    pub twilio_api_base: String,
    /// `twilio_auth_token` (secret).
    pub twilio_auth_token: Option<String>,
    /// Sender fields.
    pub providers: Providers,
}

fn variable(name: &str) -> String {
    spin_sdk::variables::get(name).unwrap_or_default()
}

fn secret(name: &str) -> Option<String> {
    // Unset secrets are normal here (a platform without SMS), so no log line.
    spin_sdk::variables::get(name)
        .ok()
        .filter(|value| !value.is_empty())
}

impl ProviderConfig {
    /// From the variables.
    pub fn from_variables() -> ProviderConfig {
        ProviderConfig {
            email_api_base: variable("email_api_base"),
            email_api_key: secret("email_api_key"),
            twilio_api_base: variable("twilio_api_base"),
            twilio_auth_token: secret("twilio_auth_token"),
            providers: Providers {
                email_from: variable("email_from"),
                twilio_account_sid: variable("twilio_account_sid"),
                twilio_from: variable("twilio_from"),
            },
        }
    }

    /// Which channels have a provider configured.
    pub fn available(&self) -> Available {
        Available {
            email: self.email_api_key.is_some()
                && !self.providers.email_from.is_empty()
                && !self.email_api_base.is_empty(),
            sms: self.twilio_auth_token.is_some()
                && !self.providers.twilio_account_sid.is_empty()
                && !self.providers.twilio_from.is_empty()
                && !self.twilio_api_base.is_empty(),
        }
    }
}

/// The operator's allow-list entry for business webhooks (`webhook_allowed_origin`).
pub fn webhook_allowed_origin() -> String {
    variable("webhook_allowed_origin")
}

const SELECT_SETTINGS: &str = "SELECT email, email_reply_to, sms, webhook_url, webhook_secret \
     FROM notification_settings WHERE account_id = ?1";

const UPSERT_SETTINGS: &str = "INSERT INTO notification_settings (account_id, email, \
     email_reply_to, sms, webhook_url, webhook_secret, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (account_id) DO UPDATE SET \
     email = excluded.email, email_reply_to = excluded.email_reply_to, sms = excluded.sms, \
     webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret, \
     updated_at = excluded.updated_at";

/// The account's channels (none set: all off).
pub fn load_settings(db: &impl Sql, account_id: &str) -> anyhow::Result<ChannelSettings> {
    let result = db
        .execute(SELECT_SETTINGS, &[text(account_id)])
        .context("reading notification settings")?;
    let Some(row) = Record::all(&result).next() else {
        return Ok(ChannelSettings::default());
    };
    settings_from(&row)
}

/// Reads the channel columns of `row` (`email`, `email_reply_to`, `sms`, `webhook_url`,
/// `webhook_secret`; NULL throughout when the account never set them).
pub fn settings_from(row: &Record<'_>) -> anyhow::Result<ChannelSettings> {
    let flag = |column: &str| -> anyhow::Result<bool> {
        Ok(row.optional_integer(column)?.unwrap_or(0) == 1)
    };
    let webhook = match (
        row.optional_text("webhook_url")?,
        row.optional_text("webhook_secret")?,
    ) {
        (Some(url), Some(secret)) => Some(WebhookChannel { url, secret }),
        _ => None,
    };
    Ok(ChannelSettings {
        email: flag("email")?.then(|| EmailChannel {
            reply_to: row.optional_text("email_reply_to").ok().flatten(),
        }),
        sms: flag("sms")?,
        webhook,
    })
}

/// Stores the account's channels.
pub fn store_settings(
    db: &impl Sql,
    account_id: &str,
    settings: &ChannelSettings,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        UPSERT_SETTINGS,
        &[
            text(account_id),
            Value::Integer(i64::from(settings.email.is_some())),
            optional_text(settings.email.as_ref().and_then(|e| e.reply_to.as_deref())),
            Value::Integer(i64::from(settings.sms)),
            optional_text(settings.webhook.as_ref().map(|w| w.url.as_str())),
            optional_text(settings.webhook.as_ref().map(|w| w.secret.as_str())),
            rfc3339(now),
        ],
    )
    .context("storing notification settings")?;
    Ok(())
}

/// One stored message and where its send stands.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// `msg_…`.
    pub id: String,
    /// The message as built once.
    pub message: Message,
    /// Its send.
    pub send: Send,
    /// `(tries, in_flight)` as last read or written: every write is guarded by it, so of two
    /// requests that read the same pending message, only one sends it.
    stored_as: (u32, bool),
}

// A message is planned once per subject and channel: a second insert changes nothing.
const INSERT_MESSAGE: &str = "INSERT INTO messages (id, account_id, customer_id, subject_id, \
     channel, request_json, status, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7) \
     ON CONFLICT (subject_id, channel) DO NOTHING";

const SELECT_MESSAGES: &str = "SELECT id, channel, request_json, status, tries, in_flight, \
     maybe_delivered, next_try_at, provider_message_id, error, sent_at, created_at \
     FROM messages WHERE account_id = ?1 AND subject_id = ?2 ORDER BY channel";

// Written back whole, only over the state it was read in: still pending, with the tries and
// in-flight flag the writer saw (?12, ?13). A send that is delivered or failed never changes
// again, and when two requests race to send the same message, only the first one's "in flight"
// lands; the other sees no row returned and does not send.
const UPDATE_SEND: &str = "UPDATE messages SET status = ?3, tries = ?4, in_flight = ?5, \
     maybe_delivered = ?6, next_try_at = ?7, provider_message_id = ?8, error = ?9, \
     sent_at = COALESCE(sent_at, ?10), updated_at = ?11 \
     WHERE id = ?1 AND account_id = ?2 AND status = 'pending' AND tries = ?12 \
     AND in_flight = ?13 RETURNING id";

/// Plans `message` for `subject_id` unless that subject already has one on its channel.
pub fn plan(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    subject_id: &str,
    message: &Message,
    now: Timestamp,
) -> anyhow::Result<()> {
    let id = MessageId::from_random(&system::random_bytes()?);
    db.execute(
        INSERT_MESSAGE,
        &[
            text(id.as_str()),
            text(account_id),
            text(customer_id),
            text(subject_id),
            text(message.channel.as_str()),
            text(&serde_json::to_string(message)?),
            instant(now),
        ],
    )
    .context("planning a message")?;
    Ok(())
}

/// Every message of `subject_id`.
pub fn load(
    db: &impl Sql,
    account_id: &str,
    subject_id: &str,
) -> anyhow::Result<Vec<StoredMessage>> {
    let result = db
        .execute(SELECT_MESSAGES, &[text(account_id), text(subject_id)])
        .context("reading messages")?;
    Record::all(&result)
        .map(|row| {
            let channel_name = row.text("channel")?;
            let channel = Channel::parse(&channel_name)
                .ok_or_else(|| anyhow!("stored channel {channel_name:?}"))?;
            let status_name = row.text("status")?;
            let message: Message =
                serde_json::from_str(&row.text("request_json")?).context("stored message")?;
            let tries = u32::try_from(row.integer("tries")?).context("tries")?;
            let in_flight = row.boolean("in_flight")?;
            Ok(StoredMessage {
                id: row.text("id")?,
                message,
                send: Send {
                    channel,
                    status: Status::parse(&status_name)
                        .ok_or_else(|| anyhow!("stored message status {status_name:?}"))?,
                    tries,
                    in_flight,
                    maybe_delivered: row.boolean("maybe_delivered")?,
                    first_try_at: row.optional_instant("sent_at")?,
                    next_try_at: row.optional_instant("next_try_at")?,
                    provider_id: row.optional_text("provider_message_id")?,
                    error: row.optional_text("error")?,
                },
                stored_as: (tries, in_flight),
            })
        })
        .collect()
}

/// Writes the send back over the state it was read in; `false` when another writer changed it
/// first (nothing is written then).
fn store(
    db: &impl Sql,
    account_id: &str,
    stored: &mut StoredMessage,
    now: Timestamp,
) -> anyhow::Result<bool> {
    let send = &stored.send;
    let (tries, in_flight) = stored.stored_as;
    let result = db
        .execute(
            UPDATE_SEND,
            &[
                text(&stored.id),
                text(account_id),
                text(send.status.as_str()),
                Value::Integer(i64::from(send.tries)),
                Value::Integer(i64::from(send.in_flight)),
                Value::Integer(i64::from(send.maybe_delivered)),
                optional_instant(send.next_try_at),
                optional_text(send.provider_id.as_deref()),
                optional_text(send.error.as_deref()),
                optional_instant(send.first_try_at),
                instant(now),
                Value::Integer(i64::from(tries)),
                Value::Integer(i64::from(in_flight)),
            ],
        )
        .context("storing a message's send")?;
    let written = Record::all(&result).next().is_some();
    if written {
        stored.stored_as = (send.tries, send.in_flight);
    }
    Ok(written)
}

/// What a send needs besides the stored message.
pub struct SendContext<'a> {
    /// The account.
    pub account_id: &'a str,
    /// The link to put in place of the placeholder.
    pub link: &'a str,
    /// The providers.
    pub config: &'a ProviderConfig,
    /// The account's webhook secret (webhook channel).
    pub webhook_secret: Option<&'a str>,
}

/// Drives one message one step: stores the try in flight, sends it, stores the answer. Returns
/// the send as it now stands.
pub fn drive(
    db: &impl Sql,
    stored: StoredMessage,
    context: &SendContext<'_>,
) -> anyhow::Result<StoredMessage> {
    match begin(db, stored, context)? {
        Begun::Settled(stored) => Ok(stored),
        Begun::Sending(stored, pending) => finish(db, stored, context.account_id, pending.finish()),
    }
}

/// Where a message stands after [`begin`].
pub enum Begun {
    /// Nothing to send now (delivered, failed, or not due yet), as stored.
    Settled(StoredMessage),
    /// Its try is stored in flight and on its way; [`finish`] it with the answer.
    Sending(StoredMessage, outbound::Pending),
}

/// Starts one step of a message without waiting for the provider: stores the try in flight and
/// sends it. Many can be in flight at once (the tick polls them together).
pub fn begin(
    db: &impl Sql,
    mut stored: StoredMessage,
    context: &SendContext<'_>,
) -> anyhow::Result<Begun> {
    let now = system::now()?;
    let as_read = stored.clone();
    match stored.send.start(now) {
        Step::Wait => return Ok(Begun::Settled(stored)),
        // Another request got to it first: it is theirs to send or settle.
        _ if !store(db, context.account_id, &mut stored, now)? => {
            return Ok(Begun::Settled(as_read));
        }
        Step::Done => return Ok(Begun::Settled(stored)),
        Step::Send => {}
    }
    let pending = match wire_request(
        &stored.message,
        &stored.id,
        context.link,
        &context.config.providers,
        context.webhook_secret,
        now,
    ) {
        Ok(wire) => start(&stored.message, &wire, context.config),
        // It cannot be built (e.g. the webhook secret is gone): nothing left, so it is safe to
        // try again later, and it fails after the bounded tries with this reason.
        Err(reason) => outbound::Pending::settled(Reply::NotSent { reason }),
    };
    Ok(Begun::Sending(stored, pending))
}

/// Stores the provider's answer to a message's try in flight.
pub fn finish(
    db: &impl Sql,
    mut stored: StoredMessage,
    account_id: &str,
    finished: outbound::Finished,
) -> anyhow::Result<StoredMessage> {
    let outcome = classify(stored.message.channel, &stored.id, &finished.reply);
    stored.send.answer(outcome, system::now()?);
    if !store(db, account_id, &mut stored, system::now()?)? {
        // Only this request held it in flight; a lost write leaves it in flight, which reads
        // as "may have been delivered" and is never sent blind.
        eprintln!(
            "message {}: its answer was not stored (changed meanwhile)",
            stored.id
        );
    }
    Ok(stored)
}

fn start(
    message: &Message,
    wire: &message::WireRequest,
    config: &ProviderConfig,
) -> outbound::Pending {
    let not_sent = |reason: String| outbound::Pending::settled(Reply::NotSent { reason });
    let (origin, path, authorization) = match message.channel {
        Channel::Email => {
            let Some(key) = &config.email_api_key else {
                return not_sent("the email_api_key variable is not set".into());
            };
            match Origin::parse(&config.email_api_base, "email_api_base") {
                Ok(origin) => (origin, wire.path.clone(), Some(format!("Bearer {key}"))),
                Err(error) => return not_sent(format!("{error:#}")),
            }
        }
        Channel::Sms => {
            let Some(token) = &config.twilio_auth_token else {
                return not_sent("the twilio_auth_token variable is not set".into());
            };
            let credentials =
                STANDARD.encode(format!("{}:{token}", config.providers.twilio_account_sid));
            match Origin::parse(&config.twilio_api_base, "twilio_api_base") {
                Ok(origin) => (
                    origin,
                    wire.path.clone(),
                    Some(format!("Basic {credentials}")),
                ),
                Err(error) => return not_sent(format!("{error:#}")),
            }
        }
        Channel::Webhook => {
            let url = wire.path.as_str();
            let after_scheme = url.find("://").map_or(0, |i| i + 3);
            let split = url[after_scheme..]
                .find(['/', '?'])
                .map_or(url.len(), |i| after_scheme + i);
            let path = match &url[split..] {
                "" => "/".to_owned(),
                rest if rest.starts_with('?') => format!("/{rest}"),
                rest => rest.to_owned(),
            };
            match Origin::parse(&url[..split], "the webhook URL") {
                Ok(origin) => (origin, path, None),
                Err(error) => return not_sent(format!("{error:#}")),
            }
        }
    };
    let mut headers: Vec<(&str, &str)> = wire
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    if let Some(authorization) = &authorization {
        headers.push(("authorization", authorization));
    }
    headers.push(("user-agent", "mio-automations"));
    outbound::start(
        &Method::Post,
        &origin,
        &path,
        &headers,
        Some(wire.body.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::migrate;
    use crate::test_db::TestDb;
    use mio_shared::message::{Purpose, Recipient, build};

    #[test]
    fn of_two_requests_that_read_the_same_pending_message_only_one_sends_it() {
        let db = TestDb::new();
        let now = Timestamp::parse("2026-06-01T10:00:00Z").expect("valid");
        migrate(&db, now).expect("migrated");
        let recipient = Recipient {
            customer_id: "cus_1".into(),
            name: "Ada".into(),
            email: None,
            phone: Some("+14155550100".into()),
        };
        let sms = build(
            Channel::Sms,
            "+14155550100",
            &Purpose::PaymentMethod,
            "Sparkle",
            &recipient,
            None,
            now,
        );
        plan(&db, "acc_1", "cus_1", "pmr_1", &sms, now).expect("planned");
        plan(&db, "acc_1", "cus_1", "pmr_1", &sms, now).expect("planned once");
        let mut first = load(&db, "acc_1", "pmr_1").expect("loaded");
        let mut second = load(&db, "acc_1", "pmr_1").expect("loaded");
        assert_eq!(
            (first.len(), second.len()),
            (1, 1),
            "one message per subject and channel"
        );
        let (mut first, mut second) = (first.remove(0), second.remove(0));
        assert_eq!(first.send.start(now), Step::Send);
        assert_eq!(second.send.start(now), Step::Send);
        assert!(store(&db, "acc_1", &mut first, now).expect("stored"));
        assert!(
            !store(&db, "acc_1", &mut second, now).expect("refused"),
            "the second request must not send it too"
        );
        // The winner's answer lands over its own write.
        first.send.answer(
            message::Outcome::Delivered {
                provider_id: "SM1".into(),
            },
            now,
        );
        assert!(store(&db, "acc_1", &mut first, now).expect("stored"));
        let reloaded = load(&db, "acc_1", "pmr_1").expect("loaded");
        assert_eq!(reloaded[0].send.status, Status::Delivered);
        assert_eq!(reloaded[0].send.tries, 1);
    }
}
