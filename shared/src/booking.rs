//! Bookings: the visits automations act on. Parsing of new bookings and changes, money, and the
//! expansion of a recurring series into its occurrences.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::field::FieldError;
use crate::rules::ServiceType;
use crate::time::Timestamp;

/// A booking's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Booked, not yet completed or cancelled.
    Scheduled,
    /// Marked complete by the business.
    Completed,
    /// Cancelled (also when its customer is deleted).
    Cancelled,
}

impl BookingStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Scheduled => "scheduled",
            BookingStatus::Completed => "completed",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<BookingStatus> {
        [
            BookingStatus::Scheduled,
            BookingStatus::Completed,
            BookingStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// An ISO 4217 currency code in lower case, as Stripe writes it (`usd`, `cad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Accepts three ASCII letters, any case; stores lower case.
    pub fn parse(text: &str) -> Option<Currency> {
        let b = text.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_alphabetic))
            .then(|| Currency([b[0], b[1], b[2]].map(|c| c.to_ascii_lowercase())))
    }

    /// The code, lower case.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("xxx")
    }
}

/// The largest amount accepted, in minor units (Stripe's limit for most currencies).
pub const MAX_AMOUNT_CENTS: i64 = 99_999_999;

/// How often a series repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// Every 7 days.
    Weekly,
    /// Every 14 days.
    Biweekly,
    /// Same day of the month (clamped to the month's last day).
    Monthly,
}

/// The most occurrences one series may create.
pub const MAX_OCCURRENCES: u32 = 104;

/// How a series ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesEnd {
    /// After this many occurrences (1–MAX_OCCURRENCES), the first included.
    Count(u32),
    /// No occurrence starts after this instant (at most MAX_OCCURRENCES).
    Until(Timestamp),
}

/// A recurrence rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    /// How often.
    pub frequency: Frequency,
    /// Until when.
    pub end: SeriesEnd,
}

/// `recurrence` in a request body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceBody {
    /// `weekly` | `biweekly` | `monthly`.
    pub frequency: String,
    /// Number of occurrences.
    pub count: Option<i64>,
    /// Last allowed start, RFC 3339.
    pub until: Option<String>,
}

/// `POST /api/v1/bookings` body as received.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingBody {
    /// `cus_…`.
    pub customer_id: String,
    /// Service type name.
    pub service_type: String,
    /// RFC 3339, any offset.
    pub start_at: String,
    /// RFC 3339, after `start_at`.
    pub end_at: String,
    /// Minor units, 0–MAX_AMOUNT_CENTS.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// Optional series.
    pub recurrence: Option<RecurrenceBody>,
}

/// A valid new booking (or series), parsed from [`BookingBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBooking {
    /// The customer's id as given (existence is checked by the caller).
    pub customer_id: crate::ids::CustomerId,
    /// Service type.
    pub service_type: ServiceType,
    /// Start of the (first) visit.
    pub start: Timestamp,
    /// End of the (first) visit.
    pub end: Timestamp,
    /// Amount in minor units.
    pub amount_cents: i64,
    /// Currency.
    pub currency: Currency,
    /// Series rule, if any.
    pub recurrence: Option<Recurrence>,
}

impl TryFrom<BookingBody> for NewBooking {
    type Error = Vec<FieldError>;

    /// Collects every field error (`customer_id`, `start_at`, `end_at` after start,
    /// `amount_cents`, `currency`, `recurrence.frequency`, exactly one of `recurrence.count` /
    /// `recurrence.until`, …).
    fn try_from(body: BookingBody) -> Result<Self, Self::Error> {
        let _ = body;
        todo!("helper A implements")
    }
}

/// `PATCH /api/v1/bookings/{id}` body as received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingPatchBody {
    /// New start (with `end_at`).
    pub start_at: Option<String>,
    /// New end (with `start_at`).
    pub end_at: Option<String>,
    /// New amount.
    pub amount_cents: Option<i64>,
}

/// A valid booking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookingPatch {
    /// New start and end together (a reschedule); `start < end`.
    pub reschedule: Option<(Timestamp, Timestamp)>,
    /// New amount.
    pub amount_cents: Option<i64>,
}

impl TryFrom<BookingPatchBody> for BookingPatch {
    type Error = Vec<FieldError>;

    /// `start_at` and `end_at` must come together; at least one change must be given.
    fn try_from(body: BookingPatchBody) -> Result<Self, Self::Error> {
        let _ = body;
        todo!("helper A implements")
    }
}

/// The (start, end) of every occurrence of a series whose first visit is `start..end`, keeping
/// the local wall-clock time in `tz` across daylight-saving changes. Monthly series keep the day
/// of the month, clamped to the month's last day (Jan 31 → Feb 28/29 → Mar 31).
pub fn occurrences(
    start: Timestamp,
    end: Timestamp,
    recurrence: Recurrence,
    tz: Tz,
) -> Vec<(Timestamp, Timestamp)> {
    let _ = (start, end, recurrence, tz);
    todo!("helper A implements")
}
