//! The webhook's own storage: which events were applied (SQL is the truth, key-value a fast
//! path in front of it) and which Mio accounts a connected Stripe account belongs to.

use anyhow::Context;
use mio_platform::db::{Record, Sql, instant, optional_text, text};
use mio_shared::Timestamp;
use spin_sdk::key_value::Store;

const SELECT_EVENT: &str = "SELECT 1 AS seen FROM stripe_events WHERE event_id = ?1";

const INSERT_EVENT: &str = "INSERT INTO stripe_events (event_id, event_type, stripe_account, \
     account_id, received_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

// Whether or not MioPay is on now: a charge made while it was on must still be recorded.
const SELECT_ACCOUNTS: &str = "SELECT account_id FROM account_settings \
     WHERE stripe_account_id = ?1 ORDER BY account_id";

const KV_PREFIX: &str = "stripe-event:";

/// Whether the key-value fast path has seen `event_id` (any failure reads as "not seen").
pub fn seen_fast(event_id: &str) -> bool {
    Store::open_default()
        .and_then(|store| store.exists(&format!("{KV_PREFIX}{event_id}")))
        .unwrap_or(false)
}

/// Notes `event_id` in the fast path (best effort: SQL stays the truth).
pub fn remember_fast(event_id: &str) {
    let result =
        Store::open_default().and_then(|store| store.set(&format!("{KV_PREFIX}{event_id}"), b"1"));
    if let Err(error) = result {
        eprintln!("stripe-webhook: key-value store unavailable ({error}); SQL still de-duplicates");
    }
}

/// Whether `event_id` was applied before.
pub fn seen(db: &impl Sql, event_id: &str) -> anyhow::Result<bool> {
    let result = db
        .execute(SELECT_EVENT, &[text(event_id)])
        .context("reading applied events")?;
    Ok(Record::all(&result).next().is_some())
}

/// Records that `event_id` was applied.
pub fn remember(
    db: &impl Sql,
    event_id: &str,
    event_type: &str,
    stripe_account: Option<&str>,
    account_id: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        INSERT_EVENT,
        &[
            text(event_id),
            text(event_type),
            optional_text(stripe_account),
            optional_text(account_id),
            instant(now),
        ],
    )
    .context("recording an applied event")?;
    Ok(())
}

/// The Mio accounts whose MioPay uses connected account `stripe_account`.
pub fn accounts_of(db: &impl Sql, stripe_account: &str) -> anyhow::Result<Vec<String>> {
    let result = db
        .execute(SELECT_ACCOUNTS, &[text(stripe_account)])
        .context("finding the account of a connected account")?;
    Record::all(&result)
        .map(|row| row.text("account_id"))
        .collect()
}
