//! The `payment_method_requests` table: the "request payment method" links sent to customers,
//! and linking a customer to the Stripe customer created for them.

use anyhow::Context;
use mio_platform::db::{Record, Sql, instant, text};
use mio_shared::card_request::CreatedSession;
use mio_shared::{Cursor, ListQuery, Timestamp};
use spin_sdk::sqlite::Value;

/// A stored request.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    /// `pmr_…`.
    pub id: String,
    /// The Checkout page.
    pub url: String,
    /// `open`, `completed` or `expired` as stored.
    pub status: String,
    /// When the link stops working.
    pub expires_at: Timestamp,
    /// When it was made.
    pub created_at: Timestamp,
    /// Its message to the customer, when it was sent (`send: true`).
    pub delivery: Option<Delivery>,
}

/// The link's message, as the request shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `email`, `sms` or `webhook`.
    pub channel: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// When the provider accepted it.
    pub sent_at: Option<Timestamp>,
    /// The provider's id of it.
    pub provider_message_id: Option<String>,
    /// Why it failed or waits.
    pub error: Option<String>,
}

const INSERT_REQUEST: &str = "INSERT INTO payment_method_requests (id, account_id, customer_id, \
     session_id, url, status, expires_at, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7) ON CONFLICT (id) DO NOTHING";

// A request has at most one message (one channel); its columns are NULL when it has none.
const DELIVERY_COLUMNS: &str = "m.channel AS delivery_channel, m.status AS delivery_status, \
     CASE WHEN m.status = 'delivered' THEN m.updated_at END AS delivery_sent_at, \
     m.provider_message_id AS delivery_provider_id, m.error AS delivery_error";

const SELECT_REQUEST: &str = "SELECT r.id, r.url, r.status, r.expires_at, r.created_at, \
     {delivery} FROM payment_method_requests r \
     LEFT JOIN messages m ON m.subject_id = r.id AND m.account_id = r.account_id \
     WHERE r.account_id = ?1 AND r.customer_id = ?2 AND r.id = ?3";

// Newest first, before ?3 (a cursor's seq) when given; ?4 = how many.
const LIST_REQUESTS: &str = "SELECT r.seq, r.id, r.url, r.status, r.expires_at, r.created_at, \
     {delivery} FROM payment_method_requests r \
     LEFT JOIN messages m ON m.subject_id = r.id AND m.account_id = r.account_id \
     WHERE r.account_id = ?1 AND r.customer_id = ?2 \
     AND (?3 IS NULL OR r.seq < ?3) ORDER BY r.seq DESC LIMIT ?4";

// Only a customer without a Stripe customer gets one: a concurrent link wins.
const LINK_STRIPE_CUSTOMER: &str = "UPDATE customers SET stripe_customer_id = ?3, updated_at = ?4 \
     WHERE account_id = ?1 AND id = ?2 AND stripe_customer_id IS NULL";

fn from_row(row: &Record<'_>) -> anyhow::Result<StoredRequest> {
    Ok(StoredRequest {
        id: row.text("id")?,
        url: row.text("url")?,
        status: row.text("status")?,
        expires_at: row.instant("expires_at")?,
        created_at: row.instant("created_at")?,
        delivery: match row.optional_text("delivery_channel")? {
            None => None,
            Some(channel) => Some(Delivery {
                channel,
                status: row.text("delivery_status")?,
                sent_at: row.optional_instant("delivery_sent_at")?,
                provider_message_id: row.optional_text("delivery_provider_id")?,
                error: row.optional_text("delivery_error")?,
            }),
        },
    })
}

/// Request `id` of the customer, if it exists.
pub fn find(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    id: &str,
) -> anyhow::Result<Option<StoredRequest>> {
    let result = db
        .execute(
            &SELECT_REQUEST.replace("{delivery}", DELIVERY_COLUMNS),
            &[text(account_id), text(customer_id), text(id)],
        )
        .context("reading a payment-method request")?;
    Record::all(&result)
        .next()
        .map(|row| from_row(&row))
        .transpose()
}

/// One page of the customer's requests, newest first, with their sequence numbers.
pub fn list(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    query: &ListQuery,
) -> anyhow::Result<Vec<(i64, StoredRequest)>> {
    let before = query.cursor.map(Cursor::after_seq);
    let result = db
        .execute(
            &LIST_REQUESTS.replace("{delivery}", DELIVERY_COLUMNS),
            &[
                text(account_id),
                text(customer_id),
                before.map_or(Value::Null, Value::Integer),
                Value::Integer(query.limit.fetch()),
            ],
        )
        .context("listing payment-method requests")?;
    Record::all(&result)
        .map(|row| Ok((row.integer("seq")?, from_row(&row)?)))
        .collect()
}

/// Stores a request whose session Stripe created (once per id).
pub fn insert(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    id: &str,
    session: &CreatedSession,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        INSERT_REQUEST,
        &[
            text(id),
            text(account_id),
            text(customer_id),
            text(&session.id),
            text(&session.url),
            instant(session.expires_at),
            instant(now),
        ],
    )
    .context("storing a payment-method request")?;
    Ok(())
}

/// Links the customer to `stripe_customer` unless it is linked already.
pub fn link_stripe_customer(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    stripe_customer: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        LINK_STRIPE_CUSTOMER,
        &[
            text(account_id),
            text(customer_id),
            text(stripe_customer),
            mio_platform::db::rfc3339(now),
        ],
    )
    .context("linking the Stripe customer")?;
    Ok(())
}
