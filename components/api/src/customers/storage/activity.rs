//! Reading the `activity` table (the tick writes it), newest first, always scoped by account.

use anyhow::{Context, anyhow};
use mio_platform::Owner;
use mio_platform::db::{Record, Sql, instant, text};
use mio_shared::{ActivityQuery, CustomerId, Timestamp};
use serde::Serialize;
use spin_sdk::sqlite::Value;

/// One recorded run, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityEntry {
    /// The entry id.
    pub id: String,
    /// `payment` or `feedback`.
    pub automation: String,
    /// The customer (kept after the customer is deleted).
    pub customer_id: Option<String>,
    /// The booking, if the run was for one.
    pub booking_id: Option<String>,
    /// `success`, `failed`, `skipped` or `retrying`.
    pub status: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// One line for people.
    pub summary: String,
    /// What was done: amount, Stripe ids, decline code, message sent to whom.
    pub details: serde_json::Value,
}

const SELECT_ACTIVITY: &str = "SELECT seq, id, automation, customer_id, booking_id, status, \
     occurred_at, summary, details_json FROM activity WHERE account_id = {account}";

/// Up to `query.limit.fetch()` entries older than the cursor, newest first, with their sequence
/// numbers. Only the filters given become conditions (equalities, not `? IS NULL OR …`), so
/// SQLite can walk the `(account_id, customer_id | booking_id, seq)` indexes backwards.
pub fn list(
    db: &impl Sql,
    owner: &Owner<'_>,
    customer: Option<&CustomerId>,
    query: &ActivityQuery,
) -> anyhow::Result<Vec<(i64, ActivityEntry)>> {
    let mut sql = String::from(SELECT_ACTIVITY);
    // `?1` is the owner's.
    let mut params = Vec::new();
    let mut condition = |column: &str, op: &str, value: Value| {
        params.push(value);
        sql.push_str(&format!(" AND {column} {op} ?{}", params.len() + 1));
    };
    if let Some(cursor) = query.cursor {
        condition("seq", "<", Value::Integer(cursor.after_seq()));
    }
    if let Some(customer) = customer.or(query.customer_id.as_ref()) {
        condition("customer_id", "=", text(customer.as_str()));
    }
    if let Some(booking) = &query.booking_id {
        condition("booking_id", "=", text(booking.as_str()));
    }
    if let Some(automation) = query.automation {
        condition("automation", "=", text(automation.as_str()));
    }
    if let Some(status) = query.status {
        condition("status", "=", text(status));
    }
    if let Some(from) = query.from {
        condition("occurred_at", ">=", instant(from));
    }
    if let Some(to) = query.to {
        condition("occurred_at", "<", instant(to));
    }
    params.push(Value::Integer(query.limit.fetch()));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", params.len() + 1));
    let result = owner
        .execute_page(db, &sql, &params, "page.seq DESC")
        .context("listing activity")?;
    Record::all(&result)
        .map(|row| Ok((row.integer("seq")?, entry_from(&row)?)))
        .collect()
}

fn entry_from(row: &Record<'_>) -> anyhow::Result<ActivityEntry> {
    let details_json = row.text("details_json")?;
    let details: serde_json::Value =
        serde_json::from_str(&details_json).context("activity details_json")?;
    if !details.is_object() {
        return Err(anyhow!("activity details_json is not an object"));
    }
    Ok(ActivityEntry {
        id: row.text("id")?,
        automation: row.text("automation")?,
        customer_id: row.optional_text("customer_id")?,
        booking_id: row.optional_text("booking_id")?,
        status: row.text("status")?,
        occurred_at: row.instant("occurred_at")?,
        summary: row.text("summary")?,
        details,
    })
}
