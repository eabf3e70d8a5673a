//! Customers' primary cards and what Stripe changes about them later, shared by the customer
//! API (a customer shows its card), the card API (a card added by id) and the webhook (a card
//! saved through Checkout, detached, updated; a Stripe customer deleted; refunds; whether the
//! connected account can charge). One statement per write, each scoped to the account.

use anyhow::Context;
use mio_shared::customer::PaymentMethodSummary;
use mio_shared::{CustomerId, Timestamp};
use spin_sdk::sqlite::Value;

use crate::db::{Record, Sql, instant, optional_text, rfc3339, text};

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

const SELECT_EXPIRY: &str = "SELECT exp_month, exp_year FROM payment_methods \
     WHERE account_id = ?1 AND customer_id = ?2";

// ?1 account, ?2 card: the customers whose primary card it is.
const DELETE_CARD: &str = "DELETE FROM payment_methods WHERE account_id = ?1 \
     AND payment_method_id = ?2 RETURNING customer_id";

// ?1 account, ?2..?6 the card, ?7 now.
const UPDATE_CARD: &str = "UPDATE payment_methods SET brand = ?3, last4 = ?4, exp_month = ?5, \
     exp_year = ?6, updated_at = ?7 WHERE account_id = ?1 AND payment_method_id = ?2";

// ?1 account, ?2 Stripe customer, ?3 now: the customers it was linked to.
const UNLINK_STRIPE_CUSTOMER: &str = "UPDATE customers SET stripe_customer_id = NULL, \
     updated_at = ?3 WHERE account_id = ?1 AND stripe_customer_id = ?2 RETURNING id";

const DELETE_CARD_OF_CUSTOMER: &str =
    "DELETE FROM payment_methods WHERE account_id = ?1 AND customer_id = ?2";

// Refunds only grow: the larger total wins, so an event applied twice, or an older one
// arriving late, counts once.
const UPSERT_REFUND: &str = "INSERT INTO payment_refunds (payment_intent_id, account_id, \
     booking_id, amount_refunded, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (payment_intent_id) DO UPDATE SET \
     amount_refunded = MAX(payment_refunds.amount_refunded, excluded.amount_refunded), \
     updated_at = excluded.updated_at WHERE payment_refunds.account_id = excluded.account_id";

// The succeeded attempt that made `pi_…`, in the account.
const SELECT_PAID_ATTEMPT: &str = "SELECT a.job_id, a.booking_id, b.customer_id \
     FROM payment_attempts a JOIN bookings b ON b.id = a.booking_id AND b.account_id = a.account_id \
     WHERE a.account_id = ?1 AND a.payment_intent_id = ?2 AND a.outcome = 'succeeded'";

const UPSERT_READINESS: &str = "INSERT INTO miopay_status (account_id, stripe_account, ready, \
     reason, kind, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (account_id) DO UPDATE \
     SET stripe_account = excluded.stripe_account, ready = excluded.ready, \
     reason = excluded.reason, kind = excluded.kind, updated_at = excluded.updated_at";

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
pub fn primary_card(
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

/// The expiry (month, year) of the customer's primary card; `None` without one.
pub fn primary_card_expiry(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
) -> anyhow::Result<Option<(u8, u16)>> {
    let result = db
        .execute(SELECT_EXPIRY, &[text(account_id), text(customer_id)])
        .context("reading the primary card's expiry")?;
    Record::all(&result)
        .next()
        .map(|row| {
            Ok((
                u8::try_from(row.integer("exp_month")?)?,
                u16::try_from(row.integer("exp_year")?)?,
            ))
        })
        .transpose()
}

/// Removes card `pm` wherever it is a primary card of the account; the customers it was theirs.
pub fn remove(db: &impl Sql, account_id: &str, pm: &str) -> anyhow::Result<Vec<String>> {
    let result = db
        .execute(DELETE_CARD, &[text(account_id), text(pm)])
        .context("removing a primary card")?;
    Record::all(&result)
        .map(|row| row.text("customer_id"))
        .collect()
}

/// Stores new details of `card` wherever it is a primary card of the account.
pub fn update(
    db: &impl Sql,
    account_id: &str,
    card: &PaymentMethodSummary,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        UPDATE_CARD,
        &[
            text(account_id),
            text(&card.id),
            text(&card.brand),
            text(&card.last4),
            Value::Integer(i64::from(card.exp_month)),
            Value::Integer(i64::from(card.exp_year)),
            rfc3339(now),
        ],
    )
    .context("updating a primary card")?;
    Ok(())
}

/// Unlinks a deleted Stripe customer from the account's customers, and drops their cards;
/// returns those customers.
pub fn unlink_stripe_customer(
    db: &impl Sql,
    account_id: &str,
    stripe_customer: &str,
    now: Timestamp,
) -> anyhow::Result<Vec<String>> {
    let result = db
        .execute(
            UNLINK_STRIPE_CUSTOMER,
            &[text(account_id), text(stripe_customer), rfc3339(now)],
        )
        .context("unlinking a deleted Stripe customer")?;
    let customers: Vec<String> = Record::all(&result)
        .map(|row| row.text("id"))
        .collect::<anyhow::Result<_>>()?;
    for customer in &customers {
        db.execute(DELETE_CARD_OF_CUSTOMER, &[text(account_id), text(customer)])
            .context("dropping a deleted Stripe customer's card")?;
    }
    Ok(customers)
}

/// The job, booking and customer of the succeeded payment `payment_intent` in the account.
pub fn paid_attempt(
    db: &impl Sql,
    account_id: &str,
    payment_intent: &str,
) -> anyhow::Result<Option<(String, String, String)>> {
    let result = db
        .execute(
            SELECT_PAID_ATTEMPT,
            &[text(account_id), text(payment_intent)],
        )
        .context("finding a payment")?;
    Record::all(&result)
        .next()
        .map(|row| {
            Ok((
                row.text("job_id")?,
                row.text("booking_id")?,
                row.text("customer_id")?,
            ))
        })
        .transpose()
}

/// Records that `amount_refunded` (the total so far) of `payment_intent` was refunded.
pub fn record_refund(
    db: &impl Sql,
    account_id: &str,
    booking_id: &str,
    payment_intent: &str,
    amount_refunded: i64,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        UPSERT_REFUND,
        &[
            text(payment_intent),
            text(account_id),
            text(booking_id),
            Value::Integer(amount_refunded),
            instant(now),
        ],
    )
    .context("recording a refund")?;
    Ok(())
}

/// What Stripe said about the connected account: `kind` is `charges` (it cannot accept charges,
/// or the business disconnected it: runs fail) or `access` (a request was refused: runs wait).
pub fn record_readiness(
    db: &impl Sql,
    account_id: &str,
    stripe_account: &str,
    ready: bool,
    reason: Option<&str>,
    kind: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        UPSERT_READINESS,
        &[
            text(account_id),
            text(stripe_account),
            Value::Integer(i64::from(ready)),
            optional_text(reason),
            text(kind),
            rfc3339(now),
        ],
    )
    .context("recording MioPay readiness")?;
    Ok(())
}
