//! Planning state of one booking, and writing planned job changes to `automation_jobs`.
//!
//! Each [`JobChange`] is one single-statement write whose `WHERE` clause re-checks the job's
//! state, so concurrent planners (a booking change racing a rules change or an override
//! change) and a tick claiming the job never undo each other: a job that started running is
//! never moved or cancelled here, and creating an existing job does nothing.

use crate::db::{Record, Sql, boolean, instant, rfc3339, text};
use crate::overrides::{Overrides, load_overrides};
use crate::settings::{AccountSettings, load_settings};
use crate::system;
use anyhow::{Context, anyhow};
use mio_shared::booking::BookingStatus;
use mio_shared::plan::{BookingState, ExistingJob, JobChange, JobStatus, Phase, PlanInput, plan};
use mio_shared::rules::{Automation, ServiceType, Source};
use mio_shared::timing::BookingTimes;
use mio_shared::{JobId, Timestamp};

/// A booking as planning sees it, with its jobs.
#[derive(Debug, Clone)]
pub struct PlanningState {
    /// The booking's customer.
    pub customer_id: String,
    /// Status, times, service type. A booking whose customer was deleted reads as cancelled.
    pub booking: BookingState,
    /// Every job the booking has, in any state.
    pub jobs: Vec<ExistingJob>,
}

// The customer join makes a booking of a deleted customer plan as cancelled, whatever its row
// says, so a late replan can never revive its jobs.
const SELECT_BOOKING_STATE: &str = "SELECT b.customer_id, b.status, b.start_at, b.end_at, \
     b.completed_at, b.service_type, c.id IS NULL AS customer_gone \
     FROM bookings b LEFT JOIN customers c ON c.id = b.customer_id AND c.account_id = b.account_id \
     WHERE b.account_id = ?1 AND b.id = ?2";

const SELECT_BOOKING_JOBS: &str = "SELECT automation, phase, status, due_at \
     FROM automation_jobs WHERE account_id = ?1 AND booking_id = ?2";

const INSERT_JOB: &str = "INSERT INTO automation_jobs (id, account_id, customer_id, booking_id, \
     automation, phase, status, due_at, late, rule_source, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'scheduled', ?7, ?8, ?9, ?10, ?10) \
     ON CONFLICT (booking_id, automation, phase) DO NOTHING";

// A cancelled job may be moved back to `scheduled` (the booking or the rule came back); a job
// in any other state belongs to the tick.
const MOVE_JOB: &str = "UPDATE automation_jobs SET due_at = ?5, late = ?6, rule_source = ?7, \
     status = 'scheduled', updated_at = ?8 \
     WHERE account_id = ?1 AND booking_id = ?2 AND automation = ?3 AND phase = ?4 \
     AND status IN ('scheduled', 'cancelled')";

const CANCEL_JOB: &str = "UPDATE automation_jobs SET status = 'cancelled', updated_at = ?5 \
     WHERE account_id = ?1 AND booking_id = ?2 AND automation = ?3 AND phase = ?4 \
     AND status = 'scheduled'";

/// Booking `booking_id` of account `account_id` with its jobs; `None` when there is no such
/// booking.
pub fn load_planning_state(
    db: &impl Sql,
    account_id: &str,
    booking_id: &str,
) -> anyhow::Result<Option<PlanningState>> {
    let result = db
        .execute(SELECT_BOOKING_STATE, &[text(account_id), text(booking_id)])
        .context("reading a booking for planning")?;
    let Some(row) = Record::all(&result).next() else {
        return Ok(None);
    };
    let customer_id = row.text("customer_id")?;
    let booking = booking_state_from(&row)?;
    let result = db
        .execute(SELECT_BOOKING_JOBS, &[text(account_id), text(booking_id)])
        .context("reading a booking's jobs")?;
    let jobs = Record::all(&result)
        .map(|row| existing_job_from(&row))
        .collect::<anyhow::Result<_>>()?;
    Ok(Some(PlanningState {
        customer_id,
        booking,
        jobs,
    }))
}

/// Reads a [`BookingState`] from a row with `status`, `start_at`, `end_at`, `completed_at`,
/// `service_type` and `customer_gone` (0/1) columns.
pub fn booking_state_from(row: &Record<'_>) -> anyhow::Result<BookingState> {
    let status = row.text("status")?;
    let status =
        BookingStatus::parse(&status).ok_or_else(|| anyhow!("stored booking status {status:?}"))?;
    let service_type = row.text("service_type")?;
    Ok(BookingState {
        status: if row.boolean("customer_gone")? {
            BookingStatus::Cancelled
        } else {
            status
        },
        times: BookingTimes {
            start: row.instant("start_at")?,
            end: row.instant("end_at")?,
            completed_at: row.optional_instant("completed_at")?,
        },
        service_type: ServiceType::parse(&service_type)
            .ok_or_else(|| anyhow!("stored service type {service_type:?}"))?,
    })
}

/// Reads an [`ExistingJob`] from a row with `automation`, `phase`, `status` and `due_at`.
pub fn existing_job_from(row: &Record<'_>) -> anyhow::Result<ExistingJob> {
    let automation = row.text("automation")?;
    let phase = row.text("phase")?;
    let status = row.text("status")?;
    Ok(ExistingJob {
        automation: Automation::parse(&automation)
            .ok_or_else(|| anyhow!("stored automation {automation:?}"))?,
        phase: Phase::parse(&phase).ok_or_else(|| anyhow!("stored phase {phase:?}"))?,
        status: JobStatus::parse(&status).ok_or_else(|| anyhow!("stored job status {status:?}"))?,
        due_at: row.instant("due_at")?,
    })
}

/// The stored form of a rule source (`automation_jobs.rule_source`): its JSON.
pub fn source_to_json(source: &Source) -> anyhow::Result<String> {
    Ok(serde_json::to_string(source)?)
}

/// Writes `changes` (from [`plan`]) for booking `booking_id`: one statement each.
pub fn apply_job_changes(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    booking_id: &str,
    changes: &[JobChange],
    now: Timestamp,
) -> anyhow::Result<()> {
    for change in changes {
        match change {
            JobChange::Create {
                automation,
                phase,
                due_at,
                late,
                source,
            } => {
                let id = JobId::from_random(&system::random_bytes()?);
                db.execute(
                    INSERT_JOB,
                    &[
                        text(id.as_str()),
                        text(account_id),
                        text(customer_id),
                        text(booking_id),
                        text(automation.as_str()),
                        text(phase.as_str()),
                        instant(*due_at),
                        boolean(*late),
                        text(&source_to_json(source)?),
                        rfc3339(now),
                    ],
                )
                .context("creating a job")?;
            }
            JobChange::Move {
                automation,
                phase,
                due_at,
                late,
                source,
            } => {
                db.execute(
                    MOVE_JOB,
                    &[
                        text(account_id),
                        text(booking_id),
                        text(automation.as_str()),
                        text(phase.as_str()),
                        instant(*due_at),
                        boolean(*late),
                        text(&source_to_json(source)?),
                        rfc3339(now),
                    ],
                )
                .context("moving a job")?;
            }
            JobChange::Cancel {
                automation, phase, ..
            } => {
                db.execute(
                    CANCEL_JOB,
                    &[
                        text(account_id),
                        text(booking_id),
                        text(automation.as_str()),
                        text(phase.as_str()),
                        rfc3339(now),
                    ],
                )
                .context("cancelling a job")?;
            }
        }
    }
    Ok(())
}

/// Re-plans booking `booking_id` of account `account_id` from its current state and writes the
/// changes; returns them (`None` when there is no such booking or account).
pub fn replan_booking(
    db: &impl Sql,
    account_id: &str,
    booking_id: &str,
    now: Timestamp,
) -> anyhow::Result<Option<Vec<JobChange>>> {
    let Some(settings) = load_settings(db, account_id)? else {
        return Ok(None);
    };
    replan_booking_with(db, account_id, &settings, booking_id, now)
}

/// [`replan_booking`] with the account's settings already loaded.
pub fn replan_booking_with(
    db: &impl Sql,
    account_id: &str,
    settings: &AccountSettings,
    booking_id: &str,
    now: Timestamp,
) -> anyhow::Result<Option<Vec<JobChange>>> {
    let Some(state) = load_planning_state(db, account_id, booking_id)? else {
        return Ok(None);
    };
    let overrides = load_overrides(db, account_id, &state.customer_id)?;
    let changes = plan(&PlanInput {
        booking: &state.booking,
        rules: settings.rules.as_ref(),
        payment_override: overrides.payment.as_ref(),
        feedback_override: overrides.feedback.as_ref(),
        tz: settings.timezone.tz(),
        existing: &state.jobs,
        now,
    });
    apply_job_changes(
        db,
        account_id,
        &state.customer_id,
        booking_id,
        &changes,
        now,
    )?;
    Ok(Some(changes))
}

/// How many rows one bulk statement carries: a few hundred keeps every statement well under
/// SQLite's 32,766 parameters and a page's planning memory small.
pub const BULK_ROWS: usize = 500;

/// `(?a, ?b, …), (…)`: `rows` tuples of `columns` numbered parameters from `first`.
pub fn values_placeholders(rows: usize, columns: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('?');
            sql.push_str(&(first + row * columns + column).to_string());
        }
        sql.push(')');
    }
    sql
}

/// `?a, ?b, …`: `count` numbered parameters from `first`, for an `IN (…)` list.
pub fn list_placeholders(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One planned change of one booking's jobs, for the bulk writer.
#[derive(Debug, Clone, Copy)]
pub struct BookingJobChange<'a> {
    /// The booking's customer.
    pub customer_id: &'a str,
    /// The booking.
    pub booking_id: &'a str,
    /// What [`plan`] decided.
    pub change: &'a JobChange,
}

// ?1 account, ?2 now; then 8 values per row.
const BULK_INSERT_JOBS: &str = "INSERT INTO automation_jobs (id, account_id, customer_id, \
     booking_id, automation, phase, status, due_at, late, rule_source, created_at, updated_at) \
     SELECT v.column1, ?1, v.column2, v.column3, v.column4, v.column5, 'scheduled', v.column6, \
     v.column7, v.column8, ?2, ?2 FROM (VALUES {rows}) AS v WHERE true \
     ON CONFLICT (booking_id, automation, phase) DO NOTHING";
const BULK_INSERT_COLUMNS: usize = 8;

// ?1 account, ?2 now; then 6 values per row. Same guard as `MOVE_JOB`.
const BULK_MOVE_JOBS: &str = "WITH v (booking_id, automation, phase, due_at, late, \
     rule_source) AS (VALUES {rows}) \
     UPDATE automation_jobs SET due_at = v.due_at, late = v.late, rule_source = v.rule_source, \
     status = 'scheduled', updated_at = ?2 FROM v \
     WHERE automation_jobs.account_id = ?1 AND automation_jobs.booking_id = v.booking_id \
     AND automation_jobs.automation = v.automation AND automation_jobs.phase = v.phase \
     AND automation_jobs.status IN ('scheduled', 'cancelled')";
const BULK_MOVE_COLUMNS: usize = 6;

// ?1 account, ?2 now; then 3 values per row. Same guard as `CANCEL_JOB`.
const BULK_CANCEL_JOBS: &str = "WITH v (booking_id, automation, phase) AS (VALUES {rows}) \
     UPDATE automation_jobs SET status = 'cancelled', updated_at = ?2 \
     WHERE account_id = ?1 AND status = 'scheduled' \
     AND (booking_id, automation, phase) IN (SELECT booking_id, automation, phase FROM v)";
const BULK_CANCEL_COLUMNS: usize = 3;

/// Writes many bookings' job changes with one statement per [`BULK_ROWS`] changes of a kind
/// (creates, moves, cancels), each guarded like [`apply_job_changes`].
pub fn apply_job_changes_in_bulk(
    db: &impl Sql,
    account_id: &str,
    changes: &[BookingJobChange<'_>],
    now: Timestamp,
) -> anyhow::Result<()> {
    let mut creates = Vec::new();
    let mut moves = Vec::new();
    let mut cancels = Vec::new();
    for item in changes {
        match item.change {
            JobChange::Create {
                automation,
                phase,
                due_at,
                late,
                source,
            } => creates.push([
                text(JobId::from_random(&system::random_bytes()?).as_str()),
                text(item.customer_id),
                text(item.booking_id),
                text(automation.as_str()),
                text(phase.as_str()),
                instant(*due_at),
                boolean(*late),
                text(&source_to_json(source)?),
            ]),
            JobChange::Move {
                automation,
                phase,
                due_at,
                late,
                source,
            } => moves.push([
                text(item.booking_id),
                text(automation.as_str()),
                text(phase.as_str()),
                instant(*due_at),
                boolean(*late),
                text(&source_to_json(source)?),
            ]),
            JobChange::Cancel {
                automation, phase, ..
            } => cancels.push([
                text(item.booking_id),
                text(automation.as_str()),
                text(phase.as_str()),
            ]),
        }
    }
    let head = [text(account_id), rfc3339(now)];
    bulk(db, BULK_INSERT_JOBS, BULK_INSERT_COLUMNS, &head, &creates)
        .context("creating jobs in bulk")?;
    bulk(db, BULK_MOVE_JOBS, BULK_MOVE_COLUMNS, &head, &moves).context("moving jobs in bulk")?;
    bulk(db, BULK_CANCEL_JOBS, BULK_CANCEL_COLUMNS, &head, &cancels)
        .context("cancelling jobs in bulk")?;
    Ok(())
}

/// Runs `template` (with `{rows}` for the VALUES tuples) once per [`BULK_ROWS`] rows, with the
/// `head` parameters first.
pub fn bulk<const N: usize>(
    db: &impl Sql,
    template: &str,
    columns: usize,
    head: &[spin_sdk::sqlite::Value],
    rows: &[[spin_sdk::sqlite::Value; N]],
) -> anyhow::Result<()> {
    debug_assert_eq!(columns, N);
    for chunk in rows.chunks(BULK_ROWS) {
        let sql = template.replace(
            "{rows}",
            &values_placeholders(chunk.len(), columns, head.len() + 1),
        );
        let mut params = head.to_vec();
        params.extend(chunk.iter().flat_map(|row| row.iter().cloned()));
        db.execute(&sql, &params)?;
    }
    Ok(())
}

/// Which bookings [`replan_bookings`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplanScope<'a> {
    /// Every booking of the account (after a rules change).
    Account,
    /// The bookings of one customer (after an override change).
    Customer(&'a str),
}

/// What [`replan_bookings`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplanSummary {
    /// Bookings planned.
    pub bookings: usize,
    /// Jobs created (or attempted: an existing one is left alone).
    pub created: usize,
    /// Jobs moved (or revived).
    pub moved: usize,
    /// Jobs cancelled.
    pub cancelled: usize,
}

// The bookings a rules or override change can affect: open bookings that have not started yet
// (they may need new, moved or cancelled runs), and any booking that still has a `scheduled`
// run (it may need to move or be cancelled). Bookings already started, completed or cancelled
// without a pending run are history: a new rule never charges them retroactively.
// ?1 account, ?2 after seq, ?3 now, ?4 page size, ?5 customer (scope) .
macro_rules! replan_page_sql {
    ($customer_filter:literal) => {
        concat!(
            "SELECT b.seq, b.id, b.customer_id, b.status, b.start_at, b.end_at, b.completed_at, \
             b.service_type, c.id IS NULL AS customer_gone \
             FROM bookings b \
             LEFT JOIN customers c ON c.id = b.customer_id AND c.account_id = b.account_id \
             WHERE b.account_id = ?1 AND b.seq > ?2 ",
            $customer_filter,
            " AND ((b.status = 'scheduled' AND b.start_at >= ?3) \
                  OR EXISTS (SELECT 1 FROM automation_jobs j \
                             WHERE j.booking_id = b.id AND j.status = 'scheduled')) \
             ORDER BY b.seq LIMIT ?4"
        )
    };
}

const REPLAN_PAGE_ACCOUNT: &str = replan_page_sql!("AND ?5 IS NULL");
const REPLAN_PAGE_CUSTOMER: &str = replan_page_sql!("AND b.customer_id = ?5");

const PAGE_JOBS: &str = "SELECT booking_id, automation, phase, status, due_at \
     FROM automation_jobs WHERE account_id = ?1 AND booking_id IN ({list})";

const PAGE_OVERRIDES: &str = "SELECT customer_id, automation, state, timing_json, updated_at, \
     updated_by FROM customer_overrides WHERE account_id = ?1 AND customer_id IN ({list})";

/// Re-plans the bookings in `scope` (see the comment on the page query for which) from the
/// current rules and overrides.
///
/// Bulk on purpose: per page of [`BULK_ROWS`] bookings, three reads (bookings, their jobs,
/// their customers' overrides), planning in memory through the core's [`plan`], and at most
/// three writes (one multi-row INSERT … ON CONFLICT DO NOTHING for new jobs, one
/// UPDATE … FROM (VALUES …) for moves, one UPDATE for cancels). The decisions stay in the
/// core; no per-job statement crosses the guest boundary. Each write re-checks job state, so a
/// concurrent tick or booking change is never undone; two overlapping replans each write a
/// state derived from rules that were current when they read them.
pub fn replan_bookings(
    db: &impl Sql,
    account_id: &str,
    settings: &AccountSettings,
    scope: ReplanScope<'_>,
    now: Timestamp,
) -> anyhow::Result<ReplanSummary> {
    let (sql, customer) = match scope {
        ReplanScope::Account => (REPLAN_PAGE_ACCOUNT, spin_sdk::sqlite::Value::Null),
        ReplanScope::Customer(id) => (REPLAN_PAGE_CUSTOMER, text(id)),
    };
    let mut summary = ReplanSummary::default();
    let mut after = 0i64;
    loop {
        let result = db
            .execute(
                sql,
                &[
                    text(account_id),
                    spin_sdk::sqlite::Value::Integer(after),
                    instant(now),
                    spin_sdk::sqlite::Value::Integer(BULK_ROWS as i64),
                    customer.clone(),
                ],
            )
            .context("reading a page of bookings to re-plan")?;
        let mut page = Vec::new();
        for row in Record::all(&result) {
            after = row.integer("seq")?;
            page.push((
                row.text("id")?,
                row.text("customer_id")?,
                booking_state_from(&row)?,
            ));
        }
        if page.is_empty() {
            return Ok(summary);
        }
        let full = page.len() == BULK_ROWS;
        let planned = plan_page(db, account_id, settings, &page, now)?;
        let changes: Vec<BookingJobChange<'_>> = planned
            .iter()
            .flat_map(|(index, changes)| {
                let (booking_id, customer_id, _) = &page[*index];
                changes.iter().map(move |change| BookingJobChange {
                    customer_id,
                    booking_id,
                    change,
                })
            })
            .collect();
        for item in &changes {
            match item.change {
                JobChange::Create { .. } => summary.created += 1,
                JobChange::Move { .. } => summary.moved += 1,
                JobChange::Cancel { .. } => summary.cancelled += 1,
            }
        }
        apply_job_changes_in_bulk(db, account_id, &changes, now)?;
        summary.bookings += page.len();
        if !full {
            return Ok(summary);
        }
    }
}

/// Plans each booking of `page` (id, customer, state): index into `page` and its changes.
fn plan_page(
    db: &impl Sql,
    account_id: &str,
    settings: &AccountSettings,
    page: &[(String, String, BookingState)],
    now: Timestamp,
) -> anyhow::Result<Vec<(usize, Vec<JobChange>)>> {
    use std::collections::{BTreeSet, HashMap};

    let booking_ids: Vec<&str> = page.iter().map(|(id, _, _)| id.as_str()).collect();
    let mut jobs: HashMap<String, Vec<ExistingJob>> = HashMap::new();
    let result = db
        .execute(
            &PAGE_JOBS.replace("{list}", &list_placeholders(booking_ids.len(), 2)),
            &std::iter::once(text(account_id))
                .chain(booking_ids.iter().map(|id| text(id)))
                .collect::<Vec<_>>(),
        )
        .context("reading the jobs of a page of bookings")?;
    for row in Record::all(&result) {
        jobs.entry(row.text("booking_id")?)
            .or_default()
            .push(existing_job_from(&row)?);
    }

    let customer_ids: BTreeSet<&str> = page.iter().map(|(_, c, _)| c.as_str()).collect();
    let mut overrides: HashMap<String, Overrides> = HashMap::new();
    let result = db
        .execute(
            &PAGE_OVERRIDES.replace("{list}", &list_placeholders(customer_ids.len(), 2)),
            &std::iter::once(text(account_id))
                .chain(customer_ids.iter().map(|id| text(id)))
                .collect::<Vec<_>>(),
        )
        .context("reading the overrides of a page of customers")?;
    for row in Record::all(&result) {
        overrides
            .entry(row.text("customer_id")?)
            .or_default()
            .add(&row)?;
    }

    let none = Overrides::default();
    let mut planned = Vec::new();
    for (index, (booking_id, customer_id, booking)) in page.iter().enumerate() {
        let customer_overrides = overrides.get(customer_id).unwrap_or(&none);
        let changes = plan(&PlanInput {
            booking,
            rules: settings.rules.as_ref(),
            payment_override: customer_overrides.payment.as_ref(),
            feedback_override: customer_overrides.feedback.as_ref(),
            tz: settings.timezone.tz(),
            existing: jobs.get(booking_id).map_or(&[], Vec::as_slice),
            now,
        });
        if !changes.is_empty() {
            planned.push((index, changes));
        }
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::migrate;
    use crate::rules_body::RulesBody;
    use crate::settings::store_rules;
    use crate::test_db::TestDb;

    const ACCOUNT: &str = "acc_1";
    const CUSTOMER: &str = "cus_1";
    const HOUR: i64 = 3_600_000;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis).expect("in range")
    }

    // 2026-03-01T00:00:00Z
    const T0: i64 = 1_772_323_200_000;

    fn db() -> TestDb {
        let db = TestDb::new();
        migrate(&db, at(T0)).expect("migrated");
        db.execute(
            "INSERT INTO accounts (id, name, timezone, token_hash, created_at) \
             VALUES ('acc_1', 'A', 'UTC', 'h', 'x')",
            &[],
        )
        .expect("account");
        db.execute(
            "INSERT INTO customers (id, account_id, name, name_folded, notify_email, \
             notify_sms, created_at, updated_at) VALUES ('cus_1', 'acc_1', 'Ada', 'ada', 1, 1, 'x', 'x')",
            &[],
        )
        .expect("customer");
        db
    }

    fn add_booking(db: &TestDb, id: &str, start: i64) {
        db.execute(
            "INSERT INTO bookings (id, account_id, customer_id, service_type, start_at, end_at, \
             amount_cents, currency, status, created_at, updated_at) \
             VALUES (?1, 'acc_1', 'cus_1', 'clean', ?2, ?3, 1000, 'usd', 'scheduled', 'x', 'x')",
            &[
                text(id),
                Value::Integer(start),
                Value::Integer(start + HOUR),
            ],
        )
        .expect("booking");
    }

    fn set_rules(db: &TestDb, payment_enabled: bool, offset_minutes: i64) {
        let body: RulesBody = serde_json::from_value(serde_json::json!({
            "payment": {"enabled": payment_enabled, "trigger": "before_start",
                        "offset_minutes": offset_minutes},
            "feedback": {"enabled": true, "delay_minutes": 60}
        }))
        .expect("body");
        store_rules(db, ACCOUNT, &body.parse().expect("valid"), at(T0)).expect("stored");
    }

    fn jobs(db: &TestDb) -> Vec<(String, String, i64, i64)> {
        let result = db
            .execute(
                "SELECT booking_id, status, due_at, late FROM automation_jobs ORDER BY seq",
                &[],
            )
            .expect("query");
        Record::all(&result)
            .map(|r| {
                (
                    r.text("booking_id").expect("id"),
                    r.text("status").expect("status"),
                    r.integer("due_at").expect("due"),
                    r.integer("late").expect("late"),
                )
            })
            .collect()
    }

    use spin_sdk::sqlite::Value;

    fn change(kind: &str, due: i64) -> JobChange {
        let (automation, phase) = (Automation::Payment, Phase::Charge);
        match kind {
            "create" => JobChange::Create {
                automation,
                phase,
                due_at: at(due),
                late: false,
                source: Source::Account,
            },
            "move" => JobChange::Move {
                automation,
                phase,
                due_at: at(due),
                late: true,
                source: Source::Account,
            },
            _ => JobChange::Cancel {
                automation,
                phase,
                reason: "test".to_owned(),
            },
        }
    }

    #[test]
    fn single_changes_create_once_move_cancel_and_revive() {
        let db = db();
        add_booking(&db, "bkg_1", T0 + 48 * HOUR);
        let apply = |c: JobChange| {
            apply_job_changes(&db, ACCOUNT, CUSTOMER, "bkg_1", &[c], at(T0)).expect("applied")
        };
        apply(change("create", T0 + HOUR));
        apply(change("create", T0 + 2 * HOUR));
        assert_eq!(
            jobs(&db),
            [("bkg_1".into(), "scheduled".into(), T0 + HOUR, 0)]
        );
        apply(change("move", T0 + 3 * HOUR));
        assert_eq!(jobs(&db)[0].2, T0 + 3 * HOUR);
        assert_eq!(jobs(&db)[0].3, 1);
        apply(change("cancel", 0));
        assert_eq!(jobs(&db)[0].1, "cancelled");
        apply(change("move", T0 + 4 * HOUR));
        assert_eq!(jobs(&db)[0].1, "scheduled");
    }

    #[test]
    fn a_running_job_is_neither_moved_nor_cancelled() {
        let db = db();
        add_booking(&db, "bkg_1", T0 + 48 * HOUR);
        apply_job_changes(
            &db,
            ACCOUNT,
            CUSTOMER,
            "bkg_1",
            &[change("create", T0)],
            at(T0),
        )
        .expect("created");
        db.execute("UPDATE automation_jobs SET status = 'running'", &[])
            .expect("claimed");
        let moves = [change("move", T0 + HOUR)];
        let cancel = [change("cancel", 0)];
        let items: Vec<BookingJobChange<'_>> = moves
            .iter()
            .chain(&cancel)
            .map(|change| BookingJobChange {
                customer_id: CUSTOMER,
                booking_id: "bkg_1",
                change,
            })
            .collect();
        apply_job_changes_in_bulk(&db, ACCOUNT, &items, at(T0)).expect("applied");
        apply_job_changes(&db, ACCOUNT, CUSTOMER, "bkg_1", &cancel, at(T0)).expect("applied");
        assert_eq!(jobs(&db), [("bkg_1".into(), "running".into(), T0, 0)]);
    }

    #[test]
    fn bulk_changes_create_move_and_cancel_across_bookings() {
        let db = db();
        for n in 0..3 {
            add_booking(&db, &format!("bkg_{n}"), T0 + 48 * HOUR);
        }
        let create = change("create", T0 + HOUR);
        let ids = ["bkg_0", "bkg_1", "bkg_2"];
        let creates: Vec<_> = ids
            .iter()
            .map(|id| BookingJobChange {
                customer_id: CUSTOMER,
                booking_id: id,
                change: &create,
            })
            .collect();
        apply_job_changes_in_bulk(&db, ACCOUNT, &creates, at(T0)).expect("created");
        apply_job_changes_in_bulk(&db, ACCOUNT, &creates, at(T0)).expect("idempotent");
        assert_eq!(jobs(&db).len(), 3);
        let (moved, cancelled) = (change("move", T0 + 5 * HOUR), change("cancel", 0));
        let items = [
            BookingJobChange {
                customer_id: CUSTOMER,
                booking_id: "bkg_0",
                change: &moved,
            },
            BookingJobChange {
                customer_id: CUSTOMER,
                booking_id: "bkg_2",
                change: &cancelled,
            },
        ];
        apply_job_changes_in_bulk(&db, ACCOUNT, &items, at(T0)).expect("applied");
        assert_eq!(
            jobs(&db),
            [
                ("bkg_0".into(), "scheduled".into(), T0 + 5 * HOUR, 1),
                ("bkg_1".into(), "scheduled".into(), T0 + HOUR, 0),
                ("bkg_2".into(), "cancelled".into(), T0 + HOUR, 0),
            ]
        );
    }

    #[test]
    fn replanning_follows_rule_changes_for_upcoming_bookings_only() {
        let db = db();
        add_booking(&db, "bkg_past", T0 - 48 * HOUR);
        add_booking(&db, "bkg_next", T0 + 48 * HOUR);
        set_rules(&db, true, 60);
        let settings = load_settings(&db, ACCOUNT).expect("read").expect("account");
        let summary = replan_bookings(&db, ACCOUNT, &settings, ReplanScope::Account, at(T0))
            .expect("replanned");
        assert_eq!(summary.created, 1);
        assert_eq!(
            jobs(&db),
            [("bkg_next".into(), "scheduled".into(), T0 + 47 * HOUR, 0)]
        );

        set_rules(&db, true, 120);
        let settings = load_settings(&db, ACCOUNT).expect("read").expect("account");
        replan_bookings(
            &db,
            ACCOUNT,
            &settings,
            ReplanScope::Customer(CUSTOMER),
            at(T0),
        )
        .expect("replanned");
        assert_eq!(jobs(&db)[0].2, T0 + 46 * HOUR);

        set_rules(&db, false, 120);
        let settings = load_settings(&db, ACCOUNT).expect("read").expect("account");
        let summary = replan_bookings(&db, ACCOUNT, &settings, ReplanScope::Account, at(T0))
            .expect("replanned");
        assert_eq!(summary.cancelled, 1);
        assert_eq!(jobs(&db)[0].1, "cancelled");
    }

    #[test]
    fn replan_booking_plans_one_booking_and_a_deleted_customer_cancels() {
        let db = db();
        set_rules(&db, true, 60);
        add_booking(&db, "bkg_1", T0 + 48 * HOUR);
        replan_booking(&db, ACCOUNT, "bkg_1", at(T0)).expect("planned");
        assert_eq!(jobs(&db)[0].1, "scheduled");
        db.execute("DELETE FROM customers", &[]).expect("deleted");
        replan_booking(&db, ACCOUNT, "bkg_1", at(T0)).expect("planned");
        assert_eq!(jobs(&db)[0].1, "cancelled");
        assert_eq!(
            replan_booking(&db, ACCOUNT, "bkg_nope", at(T0)).expect("ran"),
            None
        );
    }

    #[test]
    fn placeholders_number_rows_from_the_first_parameter() {
        assert_eq!(values_placeholders(2, 2, 3), "(?3, ?4), (?5, ?6)");
        assert_eq!(list_placeholders(3, 2), "?2, ?3, ?4");
    }
}
