//! `/api/v1/bookings…`: create (one-time or recurring), list, read, reschedule or re-price,
//! complete, cancel, and the booking's automation runs.
//!
//! Every change re-plans the booking's jobs through the core's planner (`mio_shared::plan`),
//! so its planned runs follow it: work proportional to the booking, not to the account.

use crate::customers::storage::bookings::{self, Booking, BookingFilter, NewRows};
use crate::customers::storage::{self, Sql};
use mio_platform::jobs::{BookingJobChange, apply_job_changes_in_bulk, replan_booking};
use mio_platform::settings::{PlanningInputs, load_planning_inputs};
use mio_platform::{ApiError, Owner, response, system};
use mio_shared::booking::{
    BookingBody, BookingPatch, BookingPatchBody, BookingStatus, NewBooking, transition_conflict,
};
use mio_shared::plan::{BookingState, PlanInput, plan};
use mio_shared::timing::BookingTimes;
use mio_shared::{
    Account, BookingId, Cursor, CustomerId, FieldError, Limit, Page, SeriesId, Timestamp, json,
    occurrences,
};
use serde::Serialize;
use spin_sdk::http::Response;

const NOT_FOUND: ApiError = ApiError::NotFound("No booking with this id in your account.");

/// Fields a booking shows but a request may not set.
const READ_ONLY_BOOKING_FIELDS: &[&str] = &[
    "id",
    "series_id",
    "status",
    "paid_cents",
    "balance_due_cents",
    "completed_at",
    "cancelled_at",
    "rating",
    "created_at",
    "updated_at",
];

const REQUIRED_BOOKING_FIELDS: &[&str] = &[
    "customer_id",
    "service_type",
    "start_at",
    "end_at",
    "amount_cents",
    "currency",
];

/// `201` for a recurring booking: the series and its occurrences.
#[derive(Debug, Serialize)]
struct CreatedSeries {
    series_id: String,
    bookings: Vec<Booking>,
}

/// `POST /api/v1/bookings`.
///
/// A customer that is not in the caller's account (another account's, deleted, never existed)
/// is a validation error on `customer_id` (400), not a 404: the route exists, the body is what
/// is wrong. The existence check is part of the insert statement itself.
pub fn create(
    db: &impl Sql,
    owner: &Owner<'_>,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    missing_fields(body, REQUIRED_BOOKING_FIELDS)?;
    let body: BookingBody = json::decode(body, READ_ONLY_BOOKING_FIELDS)?;
    let booking = NewBooking::try_from(body).map_err(ApiError::Validation)?;
    // The account's settings and the customer's overrides, read before anything is written
    // (only a token that names no account finds none: see `mio_platform::owner`).
    let PlanningInputs {
        account_id,
        settings,
        overrides,
    } = load_planning_inputs(db, owner, booking.customer_id.as_str())?
        .ok_or(ApiError::Unauthorized { presented: true })?;
    let account_id = account_id.as_str();
    let tz = settings.timezone.tz();
    let visits = match booking.recurrence {
        None => vec![(booking.start, booking.end)],
        Some(recurrence) => occurrences(booking.start, booking.end, recurrence, tz),
    };
    let visits = visits
        .into_iter()
        .map(|(start, end)| Ok((BookingId::from_random(&system::random_bytes()?), start, end)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let series_id = match booking.recurrence {
        Some(_) => Some(SeriesId::from_random(&system::random_bytes()?)),
        None => None,
    };
    let rows = NewRows {
        customer_id: &booking.customer_id,
        series_id: series_id.as_ref().map(SeriesId::as_str),
        service_type: booking.service_type.as_str(),
        amount_cents: booking.amount_cents,
        currency: booking.currency.as_str(),
    };
    let created = bookings::insert(db, account_id, rows, &visits, now)?;
    if created.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "customer_id",
            "no such customer in your account",
        )]));
    }

    // New bookings have no jobs yet: plan them in memory and write every job in bulk.
    let planned: Vec<_> = created
        .iter()
        .map(|stored| {
            let state = BookingState {
                status: BookingStatus::Scheduled,
                times: BookingTimes {
                    start: stored.start_at,
                    end: stored.end_at,
                    completed_at: None,
                },
                service_type: booking.service_type.clone(),
            };
            let changes = plan(&PlanInput {
                booking: &state,
                rules: settings.rules.as_ref(),
                payment_override: overrides.payment.as_ref(),
                feedback_override: overrides.feedback.as_ref(),
                tz,
                existing: &[],
                now,
            });
            (stored, changes)
        })
        .collect();
    let changes: Vec<BookingJobChange<'_>> = planned
        .iter()
        .flat_map(|(stored, changes)| {
            changes.iter().map(|change| BookingJobChange {
                customer_id: &stored.customer_id,
                booking_id: &stored.id,
                change,
            })
        })
        .collect();
    apply_job_changes_in_bulk(db, account_id, &changes, now)?;

    match series_id {
        None => {
            let single = created.into_iter().next().ok_or(NOT_FOUND)?;
            let location = format!("/api/v1/bookings/{}", single.id);
            Ok(response::json(201, &single, &[("location", location)])?)
        }
        Some(series_id) => Ok(response::json(
            201,
            &CreatedSeries {
                series_id: series_id.to_string(),
                bookings: created,
            },
            &[],
        )?),
    }
}

/// Reports every required top-level field the JSON object lacks, all at once (the typed
/// decoder would stop at the first). Anything that is not an object is left to the decoder.
fn missing_fields(body: &[u8], required: &[&str]) -> Result<(), ApiError> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return Ok(());
    };
    let errors: Vec<FieldError> = required
        .iter()
        .filter(|field| object.get(**field).is_none_or(serde_json::Value::is_null))
        .map(|field| FieldError::new(*field, "is required"))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// `GET /api/v1/bookings?customer_id=&from=&to=&status=&limit=&cursor=` → one page, by start.
pub fn list(db: &impl Sql, account: &Account, query: &str) -> Result<Response, ApiError> {
    let filter = parse_filter(query).map_err(ApiError::Validation)?;
    let rows = bookings::list(db, account.id.as_str(), &filter)?;
    Ok(response::json(
        200,
        &Page::from_rows(rows, filter.limit),
        &[],
    )?)
}

/// Parses the list query. Unknown parameters are ignored; an empty value counts as absent; a
/// repeated known parameter is an error; `from` is inclusive and `to` exclusive.
fn parse_filter(query: &str) -> Result<BookingFilter, Vec<FieldError>> {
    const KNOWN: &[&str] = &["customer_id", "from", "to", "status", "limit", "cursor"];
    let mut filter = BookingFilter::default();
    let mut errors = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !KNOWN.contains(&key.as_ref()) {
            continue;
        }
        if seen.iter().any(|k| *k == key) {
            errors.push(FieldError::new(key.as_ref(), "must be given at most once"));
            continue;
        }
        seen.push(key.to_string());
        if value.is_empty() {
            continue;
        }
        let outcome: Result<(), String> = match key.as_ref() {
            "customer_id" => CustomerId::parse(&value)
                .map(|id| filter.customer_id = Some(id))
                .map_err(|e| e.to_string()),
            "from" => Timestamp::parse(&value)
                .map(|t| filter.from = Some(t))
                .map_err(|e| e.to_string()),
            "to" => Timestamp::parse(&value)
                .map(|t| filter.to = Some(t))
                .map_err(|e| e.to_string()),
            "status" => BookingStatus::parse(&value)
                .map(|s| filter.status = Some(s))
                .ok_or_else(|| "must be scheduled, completed or cancelled".to_owned()),
            "limit" => Limit::parse(&value)
                .map(|l| filter.limit = l)
                .map_err(|e| e.to_string()),
            _ => Cursor::decode(&value)
                .map(|c| filter.cursor = Some(c))
                .map_err(|e| e.to_string()),
        };
        if let Err(message) = outcome {
            errors.push(FieldError::new(key.as_ref(), message));
        }
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to < from
    {
        errors.push(FieldError::new("to", "must not be before from"));
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(errors)
    }
}

/// `GET /api/v1/bookings/{id}`.
pub fn get(db: &impl Sql, account: &Account, id: &BookingId) -> Result<Response, ApiError> {
    let booking = bookings::find(db, account.id.as_str(), id)?.ok_or(NOT_FOUND)?;
    Ok(response::json(200, &booking, &[])?)
}

/// `PATCH /api/v1/bookings/{id}`: reschedule (`start_at` with `end_at`) and/or `amount_cents`.
/// A cancelled booking cannot change and a completed one cannot move: 409.
pub fn update(
    db: &impl Sql,
    account: &Account,
    id: &BookingId,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let body: BookingPatchBody = json::decode(body, READ_ONLY_BOOKING_FIELDS)?;
    let patch = BookingPatch::try_from(body).map_err(ApiError::Validation)?;
    let account_id = account.id.as_str();
    let updated = bookings::update(
        db,
        account_id,
        id,
        patch.reschedule,
        patch.amount_cents,
        now,
    )?;
    let booking = match updated {
        Some(booking) => booking,
        None => {
            let current = bookings::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
            return Err(ApiError::Conflict(
                match current.status {
                    BookingStatus::Cancelled => "A cancelled booking cannot be changed.",
                    BookingStatus::Completed => "A completed booking cannot be rescheduled.",
                    BookingStatus::Scheduled => "The booking changed meanwhile; try again.",
                }
                .to_owned(),
            ));
        }
    };
    replan_booking(db, account_id, id.as_str(), now)?;
    Ok(response::json(200, &booking, &[])?)
}

/// `POST /api/v1/bookings/{id}/complete`: idempotent; a cancelled booking answers 409.
pub fn complete(
    db: &impl Sql,
    account: &Account,
    id: &BookingId,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    let changed = bookings::complete(db, account_id, id, now)?;
    settle(db, account, id, now, BookingStatus::Completed, changed)
}

/// `POST /api/v1/bookings/{id}/cancel`: idempotent; a completed booking answers 409.
pub fn cancel(
    db: &impl Sql,
    account: &Account,
    id: &BookingId,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    let changed = bookings::cancel(db, account_id, id, now)?;
    settle(db, account, id, now, BookingStatus::Cancelled, changed)
}

/// Answers a complete or cancel: the changed booking, or (when the guarded write changed
/// nothing) the booking as it is if it already reached `target`, else the core's conflict.
/// Re-plans in every case: planning is idempotent and heals a crash between the two steps.
fn settle(
    db: &impl Sql,
    account: &Account,
    id: &BookingId,
    now: Timestamp,
    target: BookingStatus,
    changed: Option<Booking>,
) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    let booking = match changed {
        Some(booking) => booking,
        None => {
            let current = bookings::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
            if let Some(conflict) = transition_conflict(current.status, target) {
                return Err(ApiError::Conflict(conflict.to_owned()));
            }
            current
        }
    };
    replan_booking(db, account_id, id.as_str(), now)?;
    Ok(response::json(200, &booking, &[])?)
}

/// `GET /api/v1/bookings/{id}/automations` → a bare JSON array (as API.md shows it) of the
/// booking's runs, planned and past, by due time.
pub fn automations(db: &impl Sql, account: &Account, id: &BookingId) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    bookings::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
    let jobs = storage::bookings::jobs(db, account_id, id)?;
    Ok(response::json(200, &jobs, &[])?)
}
