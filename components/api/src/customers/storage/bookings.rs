//! The `bookings` table (and the read side of a booking's `automation_jobs`). Every statement
//! is scoped by `account_id`. Instants are stored as Unix milliseconds.

use anyhow::{Context, anyhow};
use mio_platform::db::{Record, Sql, instant, optional_instant, optional_text, rfc3339, text};
use mio_platform::jobs::{BULK_ROWS, values_placeholders};
use mio_shared::booking::BookingStatus;
use mio_shared::feedback_answer::{Rating, Received};
use mio_shared::{BookingId, Cursor, CustomerId, Limit, Timestamp};
use serde::{Deserialize, Serialize};
use spin_sdk::sqlite::Value;

/// A booking as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Booking {
    /// `bkg_…`.
    pub id: String,
    /// `cus_…` (kept after the customer is deleted).
    pub customer_id: String,
    /// `ser_…` for an occurrence of a recurring series.
    pub series_id: Option<String>,
    /// The service type.
    pub service_type: String,
    /// Start of the visit.
    pub start_at: Timestamp,
    /// End of the visit.
    pub end_at: Timestamp,
    /// Price in minor units.
    pub amount_cents: i64,
    /// Paid so far, in minor units (shown through `balance_due_cents`).
    #[serde(skip)]
    pub paid_cents: i64,
    /// Lower-case ISO 4217.
    pub currency: String,
    /// `scheduled` | `completed` | `cancelled`.
    pub status: BookingStatus,
    /// `amount_cents − paid_cents`, never negative.
    pub balance_due_cents: i64,
    /// When the business marked it complete.
    pub completed_at: Option<Timestamp>,
    /// When it was cancelled.
    pub cancelled_at: Option<Timestamp>,
    /// The customer's rating of the visit, once received through its feedback link.
    pub rating: Option<Received>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One run of an automation for a booking, as `GET /bookings/{id}/automations` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    /// `job_…`.
    pub id: String,
    /// `payment` | `feedback`.
    pub automation: String,
    /// `charge` | `request`.
    pub phase: String,
    /// The job's state (`scheduled`, `running`, `succeeded`, `failed`, ...).
    pub status: String,
    /// When it runs (or ran).
    pub due_at: Timestamp,
    /// Planned after its computed time had passed: it runs at the next tick.
    pub late: bool,
    /// Which rule decided the timing (`{"kind": "account" | "service_type" | "customer", …}`).
    pub rule_source: Option<serde_json::Value>,
    /// Attempts made so far.
    pub attempts: i64,
    /// When a retry is due, if retrying.
    pub next_attempt_at: Option<Timestamp>,
    /// Planned.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// What a new booking row holds besides its id and times.
#[derive(Debug, Clone, Copy)]
pub struct NewRows<'a> {
    /// The customer (must exist in the account, checked by the insert itself).
    pub customer_id: &'a CustomerId,
    /// The series, for a recurrence.
    pub series_id: Option<&'a str>,
    /// The service type.
    pub service_type: &'a str,
    /// Minor units.
    pub amount_cents: i64,
    /// Lower-case ISO 4217.
    pub currency: &'a str,
}

/// The filters of `GET /api/v1/bookings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingFilter {
    /// Only this customer's bookings.
    pub customer_id: Option<CustomerId>,
    /// Starting at or after.
    pub from: Option<Timestamp>,
    /// Starting before.
    pub to: Option<Timestamp>,
    /// Only this status.
    pub status: Option<BookingStatus>,
    /// Page size.
    pub limit: Limit,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

// The rating comes with every statement that reads or returns a booking (a subquery on the
// unique `booking_id`, since `RETURNING` cannot join), so it costs no statement of its own.
macro_rules! booking_columns {
    () => {
        "seq, id, customer_id, series_id, service_type, start_at, end_at, amount_cents, \
         paid_cents, currency, status, completed_at, cancelled_at, created_at, updated_at, \
         (SELECT json_object('rating', f.rating, 'comment', f.comment, \
                             'received_at', f.received_at) \
          FROM feedback_requests f WHERE f.booking_id = bookings.id \
            AND f.account_id = bookings.account_id AND f.rating IS NOT NULL) AS rating_json"
    };
}

// One statement for the whole series: it inserts nothing unless the customer exists in the
// account at that instant (no "check then insert"). ?1 account, ?2 customer, ?3 series,
// ?4 service type, ?5 amount, ?6 currency, ?7 now; then (id, start_at, end_at) per row.
const INSERT_BOOKINGS: &str = concat!(
    "WITH v (id, start_at, end_at) AS (VALUES {rows}) \
     INSERT INTO bookings (id, account_id, customer_id, series_id, service_type, start_at, \
     end_at, amount_cents, currency, status, created_at, updated_at) \
     SELECT v.id, c.account_id, c.id, ?3, ?4, v.start_at, v.end_at, ?5, ?6, 'scheduled', ?7, ?7 \
     FROM v JOIN customers c ON c.account_id = ?1 AND c.id = ?2 \
     RETURNING ",
    booking_columns!()
);
const INSERT_BOOKINGS_HEAD: usize = 7;

const SELECT_BOOKING: &str = concat!(
    "SELECT ",
    booking_columns!(),
    " FROM bookings WHERE account_id = ?1 AND id = ?2"
);

// Chronological (start, then creation); the cursor is the last row's `seq`, whose current
// start is looked up, so a page resumes right after it. A booking rescheduled between two
// page requests moves in this order like in a calendar.
const LIST_BOOKINGS: &str = concat!(
    "SELECT ",
    booking_columns!(),
    " FROM bookings WHERE account_id = ?1 \
       AND (?2 IS NULL OR customer_id = ?2) \
       AND (?3 IS NULL OR start_at >= ?3) \
       AND (?4 IS NULL OR start_at < ?4) \
       AND (?5 IS NULL OR status = ?5) \
       AND (?6 IS NULL OR (start_at, seq) > \
            (SELECT start_at, seq FROM bookings WHERE account_id = ?1 AND seq = ?6)) \
     ORDER BY start_at, seq LIMIT ?7"
);

// A cancelled booking cannot change; a completed one can change its amount but not move.
const UPDATE_BOOKING: &str = concat!(
    "UPDATE bookings SET start_at = COALESCE(?3, start_at), end_at = COALESCE(?4, end_at), \
     amount_cents = COALESCE(?5, amount_cents), updated_at = ?6 \
     WHERE account_id = ?1 AND id = ?2 AND status <> 'cancelled' \
       AND (?3 IS NULL OR status = 'scheduled') \
     RETURNING ",
    booking_columns!()
);

const COMPLETE_BOOKING: &str = concat!(
    "UPDATE bookings SET status = 'completed', completed_at = ?3, updated_at = ?4 \
     WHERE account_id = ?1 AND id = ?2 AND status = 'scheduled' RETURNING ",
    booking_columns!()
);

const CANCEL_BOOKING: &str = concat!(
    "UPDATE bookings SET status = 'cancelled', cancelled_at = ?3, updated_at = ?4 \
     WHERE account_id = ?1 AND id = ?2 AND status = 'scheduled' RETURNING ",
    booking_columns!()
);

const CANCEL_CUSTOMER_BOOKINGS: &str = "UPDATE bookings \
     SET status = 'cancelled', cancelled_at = ?3, updated_at = ?4 \
     WHERE account_id = ?1 AND customer_id = ?2 AND status = 'scheduled'";

const CANCEL_CUSTOMER_JOBS: &str = "UPDATE automation_jobs SET status = 'cancelled', \
     updated_at = ?3 WHERE account_id = ?1 AND customer_id = ?2 AND status = 'scheduled'";

const SELECT_BOOKING_JOBS: &str = "SELECT id, automation, phase, status, due_at, late, \
     rule_source, attempts, next_attempt_at, created_at, updated_at \
     FROM automation_jobs WHERE account_id = ?1 AND booking_id = ?2 ORDER BY due_at, seq";

/// Inserts one booking per `(id, start, end)` in `visits` (one statement per [`BULK_ROWS`]),
/// all for the same customer; returns them in start order. Nothing is inserted, and the
/// answer is empty, when the account has no such customer.
pub fn insert(
    db: &impl Sql,
    account_id: &str,
    rows: NewRows<'_>,
    visits: &[(BookingId, Timestamp, Timestamp)],
    now: Timestamp,
) -> anyhow::Result<Vec<Booking>> {
    let head = [
        text(account_id),
        text(rows.customer_id.as_str()),
        optional_text(rows.series_id),
        text(rows.service_type),
        Value::Integer(rows.amount_cents),
        text(rows.currency),
        rfc3339(now),
    ];
    let mut bookings = Vec::with_capacity(visits.len());
    for chunk in visits.chunks(BULK_ROWS) {
        let sql = INSERT_BOOKINGS.replace(
            "{rows}",
            &values_placeholders(chunk.len(), 3, INSERT_BOOKINGS_HEAD + 1),
        );
        let mut params = head.to_vec();
        for (id, start, end) in chunk {
            params.extend([text(id.as_str()), instant(*start), instant(*end)]);
        }
        let result = db.execute(&sql, &params).context("inserting bookings")?;
        for row in Record::all(&result) {
            bookings.push(booking_from(&row)?);
        }
    }
    bookings.sort_by_key(|b| (b.start_at, b.id.clone()));
    Ok(bookings)
}

/// The booking `id` of the account, if it exists.
pub fn find(db: &impl Sql, account_id: &str, id: &BookingId) -> anyhow::Result<Option<Booking>> {
    let result = db
        .execute(SELECT_BOOKING, &[text(account_id), text(id.as_str())])
        .context("reading a booking")?;
    first(&result)
}

/// Up to `filter.limit.fetch()` bookings after the cursor, with their sequence numbers.
pub fn list(
    db: &impl Sql,
    account_id: &str,
    filter: &BookingFilter,
) -> anyhow::Result<Vec<(i64, Booking)>> {
    let result = db
        .execute(
            LIST_BOOKINGS,
            &[
                text(account_id),
                optional_text(filter.customer_id.as_ref().map(|c| c.as_str())),
                optional_instant(filter.from),
                optional_instant(filter.to),
                optional_text(filter.status.map(BookingStatus::as_str)),
                filter
                    .cursor
                    .map_or(Value::Null, |c| Value::Integer(c.after_seq())),
                Value::Integer(filter.limit.fetch()),
            ],
        )
        .context("listing bookings")?;
    Record::all(&result)
        .map(|row| Ok((row.integer("seq")?, booking_from(&row)?)))
        .collect()
}

/// Reschedules and/or re-prices in one statement; `None` when the account has no such
/// booking or its state forbids the change (cancelled; completed and rescheduled).
pub fn update(
    db: &impl Sql,
    account_id: &str,
    id: &BookingId,
    reschedule: Option<(Timestamp, Timestamp)>,
    amount_cents: Option<i64>,
    now: Timestamp,
) -> anyhow::Result<Option<Booking>> {
    let result = db
        .execute(
            UPDATE_BOOKING,
            &[
                text(account_id),
                text(id.as_str()),
                optional_instant(reschedule.map(|(start, _)| start)),
                optional_instant(reschedule.map(|(_, end)| end)),
                amount_cents.map_or(Value::Null, Value::Integer),
                rfc3339(now),
            ],
        )
        .context("updating a booking")?;
    first(&result)
}

/// Marks a scheduled booking completed at `now`; `None` when it is not scheduled (or absent).
pub fn complete(
    db: &impl Sql,
    account_id: &str,
    id: &BookingId,
    now: Timestamp,
) -> anyhow::Result<Option<Booking>> {
    transition(db, COMPLETE_BOOKING, account_id, id, now).context("completing a booking")
}

/// Cancels a scheduled booking at `now`; `None` when it is not scheduled (or absent).
pub fn cancel(
    db: &impl Sql,
    account_id: &str,
    id: &BookingId,
    now: Timestamp,
) -> anyhow::Result<Option<Booking>> {
    transition(db, CANCEL_BOOKING, account_id, id, now).context("cancelling a booking")
}

fn transition(
    db: &impl Sql,
    statement: &str,
    account_id: &str,
    id: &BookingId,
    now: Timestamp,
) -> anyhow::Result<Option<Booking>> {
    let result = db.execute(
        statement,
        &[
            text(account_id),
            text(id.as_str()),
            instant(now),
            rfc3339(now),
        ],
    )?;
    first(&result)
}

/// Cancels every open booking of a customer, then every pending (`scheduled`) job of theirs;
/// two idempotent statements.
pub fn cancel_everything_of_customer(
    db: &impl Sql,
    account_id: &str,
    customer_id: &CustomerId,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        CANCEL_CUSTOMER_BOOKINGS,
        &[
            text(account_id),
            text(customer_id.as_str()),
            instant(now),
            rfc3339(now),
        ],
    )
    .context("cancelling a customer's bookings")?;
    db.execute(
        CANCEL_CUSTOMER_JOBS,
        &[text(account_id), text(customer_id.as_str()), rfc3339(now)],
    )
    .context("cancelling a customer's jobs")?;
    Ok(())
}

/// Every job of a booking, planned and past, by due time.
pub fn jobs(db: &impl Sql, account_id: &str, id: &BookingId) -> anyhow::Result<Vec<JobView>> {
    let result = db
        .execute(SELECT_BOOKING_JOBS, &[text(account_id), text(id.as_str())])
        .context("reading a booking's jobs")?;
    Record::all(&result)
        .map(|row| {
            Ok(JobView {
                id: row.text("id")?,
                automation: row.text("automation")?,
                phase: row.text("phase")?,
                status: row.text("status")?,
                due_at: row.instant("due_at")?,
                late: row.boolean("late")?,
                rule_source: row
                    .optional_text("rule_source")?
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .context("stored rule_source")?,
                attempts: row.integer("attempts")?,
                next_attempt_at: row.optional_instant("next_attempt_at")?,
                created_at: row.timestamp("created_at")?,
                updated_at: row.timestamp("updated_at")?,
            })
        })
        .collect()
}

fn first(result: &spin_sdk::sqlite::QueryResult) -> anyhow::Result<Option<Booking>> {
    Record::all(result)
        .next()
        .map(|row| booking_from(&row))
        .transpose()
}

fn booking_from(row: &Record<'_>) -> anyhow::Result<Booking> {
    let status = row.text("status")?;
    let amount_cents = row.integer("amount_cents")?;
    let paid_cents = row.integer("paid_cents")?;
    Ok(Booking {
        id: row.text("id")?,
        customer_id: row.text("customer_id")?,
        series_id: row.optional_text("series_id")?,
        service_type: row.text("service_type")?,
        start_at: row.instant("start_at")?,
        end_at: row.instant("end_at")?,
        amount_cents,
        paid_cents,
        currency: row.text("currency")?,
        status: BookingStatus::parse(&status)
            .ok_or_else(|| anyhow!("stored booking status {status:?}"))?,
        balance_due_cents: amount_cents.saturating_sub(paid_cents).max(0),
        completed_at: row.optional_instant("completed_at")?,
        cancelled_at: row.optional_instant("cancelled_at")?,
        rating: row
            .optional_text("rating_json")?
            .map(|json| rating_from(&json))
            .transpose()?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
    })
}

/// Reads the `rating_json` column: `{"rating", "comment", "received_at" (Unix ms)}`.
fn rating_from(json: &str) -> anyhow::Result<Received> {
    #[derive(Deserialize)]
    struct Stored {
        rating: i64,
        comment: Option<String>,
        received_at: i64,
    }
    let stored: Stored = serde_json::from_str(json).context("a booking's rating_json")?;
    Ok(Received {
        rating: Rating::from_number(stored.rating)
            .ok_or_else(|| anyhow!("stored rating {} is not 1 to 5", stored.rating))?,
        comment: stored.comment,
        received_at: Timestamp::from_unix_millis(stored.received_at)
            .ok_or_else(|| anyhow!("stored received_at {} is out of range", stored.received_at))?,
    })
}
