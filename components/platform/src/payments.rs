//! Storage of payment attempts, shared by the tick and the webhook: loading an attempt for the
//! core's state machine ([`mio_shared::attempt`]) and carrying out its storage effects. One
//! statement per write; every write is guarded so that running it twice, or racing another
//! writer, changes nothing more.
//!
//! No decisions here: what an answer or an event means is the core's.

use crate::db::{Record, Sql, instant, optional_instant, optional_text, rfc3339, text};
use crate::system;
use anyhow::{Context, anyhow};
use mio_shared::attempt::{Attempt, Effect, Ledger, SentRequest, settled_ledger};
use mio_shared::charge::{ActivityEntry, ActivityStatus, LedgerOutcome, Step};
use mio_shared::rules::Automation;
use mio_shared::{ActivityId, JobStatus, Timestamp};
use spin_sdk::sqlite::Value;

/// A payment job, as the effects need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// `job_…`.
    pub id: String,
    /// Its account.
    pub account_id: String,
    /// Its customer.
    pub customer_id: String,
    /// Its booking.
    pub booking_id: String,
    /// Its current attempt number.
    pub attempt: u32,
    /// Its status.
    pub status: JobStatus,
    /// Whether it was planned late.
    pub late: bool,
}

const SELECT_JOB: &str = "SELECT id, account_id, customer_id, booking_id, status, attempts, late \
     FROM automation_jobs WHERE id = ?1 AND account_id = ?2 AND automation = 'payment'";

const SELECT_ATTEMPT: &str = "SELECT a.amount_cents, a.currency, a.started_at, a.outcome, \
     a.payment_intent_id, a.decline_code, a.message, r.stripe_account, r.idempotency_key, \
     r.form_body, COALESCE(r.tries, 0) AS tries, \
     COALESCE(MAX(r.maybe_executed, r.in_flight), 1) AS maybe_executed \
     FROM payment_attempts a LEFT JOIN payment_requests r \
         ON r.job_id = a.job_id AND r.attempt = a.attempt \
     WHERE a.job_id = ?1 AND a.attempt = ?2";

// The request may be rewritten only while its attempt row does not exist: until then it was
// never sent (the attempt row is written before the send). It starts in flight.
const UPSERT_REQUEST: &str = "INSERT INTO payment_requests (job_id, attempt, account_id, \
     stripe_account, idempotency_key, form_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (job_id, attempt) DO UPDATE SET stripe_account = excluded.stripe_account, \
     idempotency_key = excluded.idempotency_key, form_body = excluded.form_body \
     WHERE NOT EXISTS (SELECT 1 FROM payment_attempts a \
         WHERE a.job_id = excluded.job_id AND a.attempt = excluded.attempt)";

const INSERT_ATTEMPT: &str = "INSERT INTO payment_attempts (job_id, attempt, account_id, \
     booking_id, idempotency_key, amount_cents, currency, started_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING";

// A success is never overwritten; a success overwrites anything else (money moved).
const RECORD_OUTCOME: &str = "UPDATE payment_attempts SET outcome = ?3, payment_intent_id = ?4, \
     decline_code = ?5, message = ?6, settled_at = ?7 \
     WHERE job_id = ?1 AND attempt = ?2 \
     AND (outcome IS NULL OR (?3 = 'succeeded' AND outcome <> 'succeeded'))";

// The answer of the send in flight arrived: it is no longer in flight.
const NOTE_TRY: &str = "UPDATE payment_requests SET tries = tries + 1, \
     maybe_executed = MAX(maybe_executed, ?3), in_flight = 0 \
     WHERE job_id = ?1 AND attempt = ?2";

// Before a resend: a run that dies before noting its answer leaves it "may have executed".
const MARK_IN_FLIGHT: &str =
    "UPDATE payment_requests SET in_flight = 1 WHERE job_id = ?1 AND attempt = ?2";

// Recomputed from the ledger rather than incremented, so running it twice counts nothing twice:
// the succeeded attempts less what was refunded of them.
const RECOMPUTE_PAID: &str = "UPDATE bookings SET paid_cents = \
     (SELECT COALESCE(SUM(amount_cents), 0) FROM payment_attempts \
        WHERE booking_id = ?2 AND outcome = 'succeeded') \
     - (SELECT COALESCE(SUM(amount_refunded), 0) FROM payment_refunds WHERE booking_id = ?2), \
     updated_at = ?3 WHERE account_id = ?1 AND id = ?2";

const INSERT_ACTIVITY: &str = "INSERT INTO activity (id, account_id, customer_id, booking_id, \
     job_id, automation, status, occurred_at, summary, details_json, dedupe_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?11, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";

// From a tick: only while it still holds the job's lease.
const SETTLE_LEASED_JOB: &str = "UPDATE automation_jobs SET status = ?3, next_attempt_at = ?4, \
     last_error = ?5, lease_owner = NULL, lease_until = NULL, updated_at = ?6 \
     WHERE id = ?1 AND status = 'running' AND lease_owner = ?2";

// From a webhook: never a job a tick holds, never one already succeeded; a failure only while
// the job waits on this very attempt (?7 = the attempt, ?8 = whether the step is a success).
const SETTLE_FROM_WEBHOOK: &str = "UPDATE automation_jobs SET status = ?2, next_attempt_at = ?3, \
     last_error = ?4, updated_at = ?5 \
     WHERE id = ?1 AND account_id = ?6 AND status NOT IN ('running', 'succeeded') \
     AND (?8 OR (attempts = ?7 AND status IN ('unknown', 'retrying')))";

const COUNT_ACTIVITY_WITH_PREFIX: &str = "SELECT count(*) AS n FROM activity \
     WHERE account_id = ?1 AND booking_id = ?2 AND substr(dedupe_key, 1, length(?3)) = ?3";

const UPSERT_READINESS: &str = "INSERT INTO miopay_status (account_id, stripe_account, ready, \
     reason, kind, updated_at) VALUES (?1, ?5, ?2, ?3, 'access', ?4) ON CONFLICT (account_id) \
     DO UPDATE SET stripe_account = excluded.stripe_account, ready = excluded.ready, \
     reason = excluded.reason, kind = excluded.kind, updated_at = excluded.updated_at \
     WHERE miopay_status.ready <> excluded.ready \
        OR miopay_status.stripe_account <> excluded.stripe_account \
        OR miopay_status.kind <> excluded.kind \
        OR COALESCE(miopay_status.reason, '') <> COALESCE(excluded.reason, '')";

/// The payment job `job_id` of account `account_id`; `None` when there is none.
pub fn load_job(db: &impl Sql, account_id: &str, job_id: &str) -> anyhow::Result<Option<JobRef>> {
    let result = db
        .execute(SELECT_JOB, &[text(job_id), text(account_id)])
        .context("reading a payment job")?;
    Record::all(&result)
        .next()
        .map(|row| {
            let status = row.text("status")?;
            Ok(JobRef {
                id: row.text("id")?,
                account_id: row.text("account_id")?,
                customer_id: row.text("customer_id")?,
                booking_id: row.text("booking_id")?,
                attempt: u32::try_from(row.integer("attempts")?).context("attempts")?,
                status: JobStatus::parse(&status)
                    .ok_or_else(|| anyhow!("stored job status {status:?}"))?,
                late: row.boolean("late")?,
            })
        })
        .transpose()
}

/// Attempt `number` of `job` as the state machine sees it.
pub fn load_attempt(db: &impl Sql, job: &JobRef, number: u32) -> anyhow::Result<Attempt> {
    let result = db
        .execute(
            SELECT_ATTEMPT,
            &[text(&job.id), Value::Integer(i64::from(number))],
        )
        .context("reading a payment attempt")?;
    let ledger = match Record::all(&result).next() {
        None => Ledger::NotStarted,
        Some(row) => {
            let amount_cents = row.integer("amount_cents")?;
            let currency = row.text("currency")?;
            match row.optional_text("outcome")? {
                Some(outcome) => settled_ledger(
                    amount_cents,
                    currency,
                    &outcome,
                    row.optional_text("payment_intent_id")?,
                    row.optional_text("decline_code")?,
                    row.optional_text("message")?,
                ),
                None => {
                    let request = match (
                        row.optional_text("stripe_account")?,
                        row.optional_text("idempotency_key")?,
                        row.optional_text("form_body")?,
                    ) {
                        (Some(stripe_account), Some(idempotency_key), Some(form_body)) => {
                            Some(SentRequest {
                                stripe_account,
                                idempotency_key,
                                form_body,
                                amount_cents,
                                currency: currency.clone(),
                            })
                        }
                        _ => None,
                    };
                    Ledger::Open {
                        request,
                        amount_cents,
                        currency,
                        started_at: row.instant("started_at")?,
                        tries: u32::try_from(row.integer("tries")?).unwrap_or(u32::MAX),
                        maybe_executed: row.boolean("maybe_executed")?,
                    }
                }
            }
        }
    };
    Ok(Attempt {
        job_id: job.id.clone(),
        number,
        current: number == job.attempt,
        job_status: job.status,
        late: job.late,
        ledger,
    })
}

/// Who carries out an effect: a tick holding the job's lease, or a webhook.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A tick, with its lease owner id.
    Tick(&'a str),
    /// The webhook.
    Webhook,
}

/// Carries out one storage effect of attempt `number` of `job`. `Send` and `Lookup` are the
/// caller's (they talk to Stripe); `Ignore` is only logged.
pub fn perform(
    db: &impl Sql,
    job: &JobRef,
    number: u32,
    effect: &Effect,
    actor: Actor<'_>,
    now: Timestamp,
) -> anyhow::Result<()> {
    let attempt = Value::Integer(i64::from(number));
    match effect {
        Effect::StartAttempt(request) => {
            db.execute(
                UPSERT_REQUEST,
                &[
                    text(&job.id),
                    attempt.clone(),
                    text(&job.account_id),
                    text(&request.stripe_account),
                    text(&request.idempotency_key),
                    text(&request.form_body),
                ],
            )
            .context("storing a payment request")?;
            db.execute(
                INSERT_ATTEMPT,
                &[
                    text(&job.id),
                    attempt,
                    text(&job.account_id),
                    text(&job.booking_id),
                    text(&request.idempotency_key),
                    Value::Integer(request.amount_cents),
                    text(&request.currency),
                    instant(now),
                ],
            )
            .context("recording a payment attempt")?;
        }
        Effect::Record(outcome) => record(db, job, number, outcome, now)?,
        Effect::Sending => {
            db.execute(MARK_IN_FLIGHT, &[text(&job.id), attempt])
                .context("marking a send in flight")?;
        }
        Effect::NoteTry { maybe_executed } => {
            db.execute(
                NOTE_TRY,
                &[
                    text(&job.id),
                    attempt,
                    Value::Integer(i64::from(*maybe_executed)),
                ],
            )
            .context("counting a try")?;
        }
        Effect::RecomputePaid => recompute_paid(db, &job.account_id, &job.booking_id, now)?,
        Effect::Settle { step, from_webhook } => {
            store_activity(db, job, &step.activity, now)?;
            settle(db, job, number, step, actor, *from_webhook, now)?;
        }
        Effect::Activity(entry) => store_activity(db, job, entry, now)?,
        Effect::AccountReady {
            stripe_account,
            ready,
            reason,
        } => {
            db.execute(
                UPSERT_READINESS,
                &[
                    text(&job.account_id),
                    Value::Integer(i64::from(*ready)),
                    optional_text(reason.as_deref()),
                    rfc3339(now),
                    text(stripe_account),
                ],
            )
            .context("recording MioPay readiness")?;
        }
        Effect::Ignore(why) => eprintln!("payment {} attempt {number}: {why}", job.id),
        Effect::Send(_) | Effect::Lookup { .. } => {
            return Err(anyhow!("Stripe requests are the caller's to send"));
        }
    }
    Ok(())
}

/// Sets a booking's paid amount from the ledger and its refunds.
pub fn recompute_paid(
    db: &impl Sql,
    account_id: &str,
    booking_id: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        RECOMPUTE_PAID,
        &[text(account_id), text(booking_id), rfc3339(now)],
    )
    .context("recomputing the paid amount")?;
    Ok(())
}

fn record(
    db: &impl Sql,
    job: &JobRef,
    number: u32,
    outcome: &LedgerOutcome,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        RECORD_OUTCOME,
        &[
            text(&job.id),
            Value::Integer(i64::from(number)),
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

fn settle(
    db: &impl Sql,
    job: &JobRef,
    number: u32,
    step: &Step,
    actor: Actor<'_>,
    from_webhook: bool,
    now: Timestamp,
) -> anyhow::Result<()> {
    if let (Actor::Tick(owner), false) = (actor, from_webhook) {
        return settle_leased(
            db,
            job,
            owner,
            step.job_status,
            step.next_attempt_at,
            step.last_error.as_deref(),
            now,
        );
    }
    db.execute(
        SETTLE_FROM_WEBHOOK,
        &[
            text(&job.id),
            text(step.job_status.as_str()),
            optional_instant(step.next_attempt_at),
            optional_text(step.last_error.as_deref()),
            rfc3339(now),
            text(&job.account_id),
            Value::Integer(i64::from(number)),
            Value::Integer(i64::from(step.job_status == JobStatus::Succeeded)),
        ],
    )
    .context("settling a job")?;
    Ok(())
}

/// Stores one activity entry of `job` (once per dedupe key).
pub fn store_activity(
    db: &impl Sql,
    job: &JobRef,
    entry: &ActivityEntry,
    now: Timestamp,
) -> anyhow::Result<()> {
    store_entry(
        db,
        job,
        &Entry {
            automation: Automation::Payment,
            status: entry.status,
            summary: &entry.summary,
            details_json: &serde_json::to_string(&entry.details)?,
            dedupe_key: &entry.dedupe_key,
        },
        now,
    )
}

/// One activity entry of any automation.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Payment or feedback.
    pub automation: Automation,
    /// How it reads.
    pub status: ActivityStatus,
    /// One sentence.
    pub summary: &'a str,
    /// `details`, as JSON text.
    pub details_json: &'a str,
    /// Writing the same key twice stores it once.
    pub dedupe_key: &'a str,
}

/// Stores `entry` for `job` (once per dedupe key).
pub fn store_entry(
    db: &impl Sql,
    job: &JobRef,
    entry: &Entry<'_>,
    now: Timestamp,
) -> anyhow::Result<()> {
    let id = ActivityId::from_random(&system::random_bytes()?);
    db.execute(
        INSERT_ACTIVITY,
        &[
            text(id.as_str()),
            text(&job.account_id),
            text(&job.customer_id),
            text(&job.booking_id),
            text(&job.id),
            text(entry.status.as_str()),
            instant(now),
            text(entry.summary),
            text(entry.details_json),
            text(entry.dedupe_key),
            text(entry.automation.as_str()),
        ],
    )
    .context("writing an activity entry")?;
    Ok(())
}

/// Ends a tick's run of `job`: its next state, while `owner` still holds the lease.
pub fn settle_leased(
    db: &impl Sql,
    job: &JobRef,
    owner: &str,
    status: JobStatus,
    next_attempt_at: Option<Timestamp>,
    last_error: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        SETTLE_LEASED_JOB,
        &[
            text(&job.id),
            text(owner),
            text(status.as_str()),
            optional_instant(next_attempt_at),
            optional_text(last_error),
            rfc3339(now),
        ],
    )
    .context("settling a job")?;
    Ok(())
}

/// How many activity entries of `job`'s booking have a dedupe key starting with `prefix`.
pub fn count_activity(db: &impl Sql, job: &JobRef, prefix: &str) -> anyhow::Result<u32> {
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
