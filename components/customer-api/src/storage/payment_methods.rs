//! The `payment_methods` table: one primary card per customer, as looked up on Stripe.

use anyhow::Context;
use mio_platform::db::{Record, Sql, text};
use mio_shared::CustomerId;
use mio_shared::customer::PaymentMethodSummary;

const SELECT_PAYMENT_METHOD: &str = "SELECT payment_method_id AS pm_id, brand AS pm_brand, \
     last4 AS pm_last4, exp_month AS pm_exp_month, exp_year AS pm_exp_year \
     FROM payment_methods WHERE account_id = ?1 AND customer_id = ?2";

pub use mio_platform::cards::store;

/// The customer's primary card, if any.
pub fn find(
    db: &impl Sql,
    account_id: &str,
    customer: &CustomerId,
) -> anyhow::Result<Option<PaymentMethodSummary>> {
    let result = db
        .execute(
            SELECT_PAYMENT_METHOD,
            &[text(account_id), text(customer.as_str())],
        )
        .context("reading a primary payment method")?;
    match Record::all(&result).next() {
        Some(row) => summary_from(&row),
        None => Ok(None),
    }
}

/// The `pm_*` columns of a row (all NULL when a LEFT JOIN found no card).
pub fn summary_from(row: &Record<'_>) -> anyhow::Result<Option<PaymentMethodSummary>> {
    let Some(id) = row.optional_text("pm_id")? else {
        return Ok(None);
    };
    Ok(Some(PaymentMethodSummary {
        id,
        brand: row.text("pm_brand")?,
        last4: row.text("pm_last4")?,
        exp_month: u8::try_from(row.integer("pm_exp_month")?).context("exp_month")?,
        exp_year: u16::try_from(row.integer("pm_exp_year")?).context("exp_year")?,
    }))
}
