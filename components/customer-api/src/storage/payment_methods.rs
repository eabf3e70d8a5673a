//! The `payment_methods` table: one primary card per customer, as looked up on Stripe.

use anyhow::Context;
use mio_platform::db::{Record, Sql, rfc3339, text};
use mio_shared::customer::PaymentMethodSummary;
use mio_shared::{CustomerId, Timestamp};
use spin_sdk::sqlite::Value;

// One statement. The card is stored only while the customer still exists in the account with
// the Stripe customer the card was checked against, so a customer deleted or re-linked during
// the Stripe lookup never gets a card that is not theirs. ?1 customer, ?2 account,
// ?3 Stripe customer, ?4..?8 the card, ?9 now.
const UPSERT_PAYMENT_METHOD: &str = "INSERT INTO payment_methods (customer_id, account_id, \
     payment_method_id, brand, last4, exp_month, exp_year, updated_at) \
     SELECT ?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM customers \
       WHERE account_id = ?2 AND id = ?1 AND stripe_customer_id = ?3) \
     ON CONFLICT (customer_id) DO UPDATE SET payment_method_id = excluded.payment_method_id, \
       brand = excluded.brand, last4 = excluded.last4, exp_month = excluded.exp_month, \
       exp_year = excluded.exp_year, updated_at = excluded.updated_at \
     WHERE payment_methods.account_id = excluded.account_id \
     RETURNING customer_id";

const SELECT_PAYMENT_METHOD: &str = "SELECT payment_method_id AS pm_id, brand AS pm_brand, \
     last4 AS pm_last4, exp_month AS pm_exp_month, exp_year AS pm_exp_year \
     FROM payment_methods WHERE account_id = ?1 AND customer_id = ?2";

/// Makes `card` the customer's primary card; `false` (nothing written) when the account has no
/// such customer linked to `stripe_customer`.
pub fn store(
    db: &impl Sql,
    account_id: &str,
    customer: &CustomerId,
    stripe_customer: &str,
    card: &PaymentMethodSummary,
    now: Timestamp,
) -> anyhow::Result<bool> {
    let result = db
        .execute(
            UPSERT_PAYMENT_METHOD,
            &[
                text(customer.as_str()),
                text(account_id),
                text(stripe_customer),
                text(&card.id),
                text(&card.brand),
                text(&card.last4),
                Value::Integer(i64::from(card.exp_month)),
                Value::Integer(i64::from(card.exp_year)),
                rfc3339(now),
            ],
        )
        .context("storing a primary payment method")?;
    Ok(!result.rows.is_empty())
}

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
