//! The tick's reads and writes besides the claim: the charge's inputs, the attempt ledger, the
//! booking's paid amount, activity entries and settling the job. One statement per write.

use anyhow::{Context, anyhow};
use mio_platform::claims::ClaimedJob;
use mio_platform::db::{Record, Sql, instant, optional_instant, optional_text, rfc3339, text};
use mio_shared::charge::{ActivityEntry, LedgerOutcome, Step};
use mio_shared::rules::ServiceType;
use mio_shared::{ActivityId, BookingStatus, Timestamp};
use spin_sdk::sqlite::Value;

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

/// One row of the attempt ledger.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The amount this attempt asks for (a re-send must send exactly this).
    pub amount_cents: i64,
    /// Its currency.
    pub currency: String,
    /// When it was first sent.
    pub started_at: Timestamp,
    /// `None` while the outcome is not known.
    pub outcome: Option<String>,
    /// `pi_…`.
    pub payment_intent_id: Option<String>,
    /// Decline or error code.
    pub decline_code: Option<String>,
    /// Stripe's message.
    pub message: Option<String>,
}

const SELECT_FACTS: &str = "SELECT b.status, b.amount_cents, b.paid_cents, b.currency, \
     b.service_type, c.id IS NULL AS customer_gone, c.stripe_customer_id, pm.payment_method_id \
     FROM bookings b \
     LEFT JOIN customers c ON c.id = b.customer_id AND c.account_id = b.account_id \
     LEFT JOIN payment_methods pm ON pm.customer_id = b.customer_id \
         AND pm.account_id = b.account_id \
     WHERE b.account_id = ?1 AND b.id = ?2";

const INSERT_ATTEMPT: &str = "INSERT INTO payment_attempts (job_id, attempt, account_id, \
     booking_id, idempotency_key, amount_cents, currency, started_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING";

const SELECT_ATTEMPT: &str = "SELECT amount_cents, currency, started_at, outcome, \
     payment_intent_id, decline_code, message FROM payment_attempts \
     WHERE job_id = ?1 AND attempt = ?2";

// Guarded: an outcome, once recorded, is never overwritten (a re-run settles from it).
const RECORD_OUTCOME: &str = "UPDATE payment_attempts SET outcome = ?3, payment_intent_id = ?4, \
     decline_code = ?5, message = ?6, settled_at = ?7 \
     WHERE job_id = ?1 AND attempt = ?2 AND outcome IS NULL";

// Recomputed from the ledger rather than incremented, so running it twice counts nothing twice.
const RECOMPUTE_PAID: &str = "UPDATE bookings SET paid_cents = (SELECT COALESCE(SUM(amount_cents), 0) \
     FROM payment_attempts WHERE booking_id = ?2 AND outcome = 'succeeded'), updated_at = ?3 \
     WHERE account_id = ?1 AND id = ?2";

const COUNT_ACTIVITY_WITH_PREFIX: &str = "SELECT count(*) AS n FROM activity \
     WHERE account_id = ?1 AND booking_id = ?2 AND substr(dedupe_key, 1, length(?3)) = ?3";

const INSERT_ACTIVITY: &str = "INSERT INTO activity (id, account_id, customer_id, booking_id, \
     job_id, automation, status, occurred_at, summary, details_json, dedupe_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'payment', ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";

// Only while this tick still holds the job's lease.
const SETTLE_JOB: &str = "UPDATE automation_jobs SET status = ?3, next_attempt_at = ?4, \
     last_error = ?5, lease_owner = NULL, lease_until = NULL, updated_at = ?6 \
     WHERE id = ?1 AND status = 'running' AND lease_owner = ?2";

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

/// Records a new attempt before it is sent (nothing when it exists already).
pub fn insert_attempt(
    db: &impl Sql,
    job: &ClaimedJob,
    idempotency_key: &str,
    amount_cents: i64,
    currency: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        INSERT_ATTEMPT,
        &[
            text(&job.id),
            Value::Integer(i64::from(job.attempt)),
            text(&job.account_id),
            text(&job.booking_id),
            text(idempotency_key),
            Value::Integer(amount_cents),
            text(currency),
            instant(now),
        ],
    )
    .context("recording a payment attempt")?;
    Ok(())
}

/// The ledger row of `job`'s current attempt, if any.
pub fn load_attempt(db: &impl Sql, job: &ClaimedJob) -> anyhow::Result<Option<Attempt>> {
    let result = db
        .execute(
            SELECT_ATTEMPT,
            &[text(&job.id), Value::Integer(i64::from(job.attempt))],
        )
        .context("reading a payment attempt")?;
    Record::all(&result)
        .next()
        .map(|row| {
            Ok(Attempt {
                amount_cents: row.integer("amount_cents")?,
                currency: row.text("currency")?,
                started_at: row.instant("started_at")?,
                outcome: row.optional_text("outcome")?,
                payment_intent_id: row.optional_text("payment_intent_id")?,
                decline_code: row.optional_text("decline_code")?,
                message: row.optional_text("message")?,
            })
        })
        .transpose()
}

/// Records the attempt's outcome, unless one is recorded already.
pub fn record_outcome(
    db: &impl Sql,
    job: &ClaimedJob,
    outcome: &LedgerOutcome,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        RECORD_OUTCOME,
        &[
            text(&job.id),
            Value::Integer(i64::from(job.attempt)),
            text(outcome.outcome),
            optional_text(outcome.payment_intent_id.as_deref()),
            optional_text(outcome.decline_code.as_deref()),
            optional_text(outcome.message.as_deref()),
            instant(now),
        ],
    )
    .context("recording a payment outcome")?;
    Ok(())
}

/// Sets the booking's paid amount to the sum of its succeeded attempts.
pub fn recompute_paid(db: &impl Sql, job: &ClaimedJob, now: Timestamp) -> anyhow::Result<()> {
    db.execute(
        RECOMPUTE_PAID,
        &[text(&job.account_id), text(&job.booking_id), rfc3339(now)],
    )
    .context("recomputing the paid amount")?;
    Ok(())
}

/// How many activity entries of `job`'s booking have a dedupe key starting with `prefix`.
pub fn count_activity(db: &impl Sql, job: &ClaimedJob, prefix: &str) -> anyhow::Result<u32> {
    let result = db
        .execute(
            COUNT_ACTIVITY_WITH_PREFIX,
            &[text(&job.account_id), text(&job.booking_id), text(prefix)],
        )
        .context("counting activity entries")?;
    let n = Record::all(&result)
        .next()
        .map(|row| row.integer("n"))
        .transpose()?
        .unwrap_or(0);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Stores `step`'s activity entry (once per dedupe key) and settles the job.
pub fn store_step(
    db: &impl Sql,
    job: &ClaimedJob,
    owner: &str,
    step: &Step,
    activity_id: &ActivityId,
    now: Timestamp,
) -> anyhow::Result<()> {
    store_activity(db, job, &step.activity, activity_id, now)?;
    db.execute(
        SETTLE_JOB,
        &[
            text(&job.id),
            text(owner),
            text(step.job_status.as_str()),
            optional_instant(step.next_attempt_at),
            optional_text(step.last_error.as_deref()),
            rfc3339(now),
        ],
    )
    .context("settling a job")?;
    Ok(())
}

/// Stores one activity entry of `job` (once per dedupe key).
pub fn store_activity(
    db: &impl Sql,
    job: &ClaimedJob,
    entry: &ActivityEntry,
    activity_id: &ActivityId,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        INSERT_ACTIVITY,
        &[
            text(activity_id.as_str()),
            text(&job.account_id),
            text(&job.customer_id),
            text(&job.booking_id),
            text(&job.id),
            text(entry.status.as_str()),
            instant(now),
            text(&entry.summary),
            text(&serde_json::to_string(&entry.details)?),
            text(&entry.dedupe_key),
        ],
    )
    .context("writing an activity entry")?;
    Ok(())
}
