//! This component's SQL, over the platform's Spin SQLite connection (`mio_platform::db`).
//!
//! Like every component: each `execute` is one statement, no transaction spans several calls,
//! and every write that must be atomic is a single statement.

pub mod jobs;
pub mod overrides;

use anyhow::Context;
use mio_platform::db::{Sql, text};

const SELECT_CUSTOMER_EXISTS: &str =
    "SELECT 1 AS found FROM customers WHERE account_id = ?1 AND id = ?2";

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
