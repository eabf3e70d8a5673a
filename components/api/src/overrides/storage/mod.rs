//! This component's SQL, over the platform's Spin SQLite connection (`mio_platform::db`).
//!
//! Like every component: each `execute` is one statement, no transaction spans several calls,
//! and every write that must be atomic is a single statement.

pub mod jobs;
pub mod overrides;

use anyhow::Context;
use mio_platform::db::{Record, Sql, text};
use mio_platform::overrides::Overrides;
use mio_shared::Timestamp;
use mio_shared::rules::Automation;
use std::collections::BTreeMap;

const SELECT_CUSTOMER_EXISTS: &str =
    "SELECT 1 AS found FROM customers WHERE account_id = ?1 AND id = ?2";

// Everything the automations view reads about one customer, in one statement: one row per
// override (or one row without), each carrying the card's expiry and the next planned runs.
const SELECT_VIEW_SNAPSHOT: &str = "SELECT c.id AS customer_id, pm.exp_month, pm.exp_year, \
     (SELECT MIN(due_at) FROM automation_jobs j WHERE j.account_id = ?1 AND j.customer_id = ?2 \
        AND j.status = 'scheduled' AND j.automation = 'payment') AS next_payment, \
     (SELECT MIN(due_at) FROM automation_jobs j WHERE j.account_id = ?1 AND j.customer_id = ?2 \
        AND j.status = 'scheduled' AND j.automation = 'feedback') AS next_feedback, \
     o.automation, o.state, o.timing_json, o.updated_at, o.updated_by \
     FROM customers c \
     LEFT JOIN payment_methods pm ON pm.account_id = c.account_id AND pm.customer_id = c.id \
     LEFT JOIN customer_overrides o ON o.account_id = c.account_id AND o.customer_id = c.id \
     WHERE c.account_id = ?1 AND c.id = ?2";

/// What the automations view shows of a customer besides the account's rules.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The customer's overrides.
    pub overrides: Overrides,
    /// The earliest scheduled run of each automation.
    pub next_runs: BTreeMap<Automation, Timestamp>,
    /// The primary card's expiry (month, year); `None` without a card.
    pub card: Option<(u8, u16)>,
}

/// The customer's [`Snapshot`]; `None` when the account has no such customer.
pub fn snapshot(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
) -> anyhow::Result<Option<Snapshot>> {
    let result = db
        .execute(SELECT_VIEW_SNAPSHOT, &[text(account_id), text(customer_id)])
        .context("reading the customer's automations")?;
    let mut found = None;
    for row in Record::all(&result) {
        let snapshot = found.get_or_insert_with(Snapshot::default);
        if let (Some(month), Some(year)) = (
            row.optional_integer("exp_month")?,
            row.optional_integer("exp_year")?,
        ) {
            snapshot.card = Some((u8::try_from(month)?, u16::try_from(year)?));
        }
        for (automation, column) in [
            (Automation::Payment, "next_payment"),
            (Automation::Feedback, "next_feedback"),
        ] {
            if let Some(at) = row.optional_instant(column)? {
                snapshot.next_runs.insert(automation, at);
            }
        }
        if row.optional_text("automation")?.is_some() {
            snapshot.overrides.add(&row)?;
        }
    }
    Ok(found)
}

/// Whether customer `customer_id` exists in account `account_id` (another account's customer
/// does not).
pub fn customer_exists(db: &impl Sql, account_id: &str, customer_id: &str) -> anyhow::Result<bool> {
    let result = db
        .execute(
            SELECT_CUSTOMER_EXISTS,
            &[text(account_id), text(customer_id)],
        )
        .context("looking up a customer")?;
    Ok(!result.rows.is_empty())
}
