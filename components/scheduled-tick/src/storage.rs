//! The tick's own read besides the claim: the booking and customer facts a charge needs. The
//! attempt ledger, activity and job writes are `mio_platform::payments`', shared with the
//! webhook.

use anyhow::{Context, anyhow};
use mio_platform::claims::ClaimedJob;
use mio_platform::db::{Record, Sql, text};
use mio_shared::BookingStatus;
use mio_shared::rules::ServiceType;

/// The booking and customer facts a charge needs.
#[derive(Debug, Clone)]
pub struct ChargeFacts {
    /// Status now (a deleted customer's booking reads as cancelled).
    pub booking_status: BookingStatus,
    /// Price.
    pub amount_cents: i64,
    /// Collected so far.
    pub paid_cents: i64,
    /// Currency.
    pub currency: String,
    /// For the service-type timing of the rule.
    pub service_type: Option<ServiceType>,
    /// `cus_…` on Stripe.
    pub stripe_customer: Option<String>,
    /// Primary card `pm_…`.
    pub payment_method: Option<String>,
}

const SELECT_FACTS: &str = "SELECT b.status, b.amount_cents, b.paid_cents, b.currency, \
     b.service_type, c.id IS NULL AS customer_gone, c.stripe_customer_id, pm.payment_method_id \
     FROM bookings b \
     LEFT JOIN customers c ON c.id = b.customer_id AND c.account_id = b.account_id \
     LEFT JOIN payment_methods pm ON pm.customer_id = b.customer_id \
         AND pm.account_id = b.account_id \
     WHERE b.account_id = ?1 AND b.id = ?2";

/// The facts of `job`'s booking; `None` when the booking is gone.
pub fn load_facts(db: &impl Sql, job: &ClaimedJob) -> anyhow::Result<Option<ChargeFacts>> {
    let result = db
        .execute(
            SELECT_FACTS,
            &[text(&job.account_id), text(&job.booking_id)],
        )
        .context("reading the booking to charge")?;
    let Some(row) = Record::all(&result).next() else {
        return Ok(None);
    };
    let status = row.text("status")?;
    let status =
        BookingStatus::parse(&status).ok_or_else(|| anyhow!("stored booking status {status:?}"))?;
    Ok(Some(ChargeFacts {
        booking_status: if row.boolean("customer_gone")? {
            BookingStatus::Cancelled
        } else {
            status
        },
        amount_cents: row.integer("amount_cents")?,
        paid_cents: row.integer("paid_cents")?,
        currency: row.text("currency")?,
        service_type: ServiceType::parse(&row.text("service_type")?),
        stripe_customer: row.optional_text("stripe_customer_id")?,
        payment_method: row.optional_text("payment_method_id")?,
    }))
}
