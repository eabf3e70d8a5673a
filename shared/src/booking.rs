//! Bookings: the visits automations act on. Parsing of new bookings and changes, money, and the
//! expansion of a recurring series into its occurrences.

use crate::zone::Zone;
use chrono::{Days, Months, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, check};
use crate::ids::CustomerId;
use crate::rules::ServiceType;
use crate::time::Timestamp;
use crate::timing::local_instant;

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

/// Why a booking in `current` cannot be moved to `target` (completed or cancelled), or `None`
/// when it can, or already is there (completing or cancelling twice is not an error).
pub fn transition_conflict(current: BookingStatus, target: BookingStatus) -> Option<&'static str> {
    match (current, target) {
        (BookingStatus::Cancelled, BookingStatus::Completed) => {
            Some("A cancelled booking cannot be completed.")
        }
        (BookingStatus::Completed, BookingStatus::Cancelled) => {
            Some("A completed booking cannot be cancelled.")
        }
        (_, BookingStatus::Scheduled) if current != BookingStatus::Scheduled => {
            Some("A completed or cancelled booking cannot be scheduled again.")
        }
        _ => None,
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

/// The longest visit accepted: 7 days.
pub const MAX_VISIT_MINUTES: i64 = 7 * 24 * 60;

impl TryFrom<BookingBody> for NewBooking {
    type Error = Vec<FieldError>;

    /// Collects every field error (`customer_id`, `service_type`, `start_at`, `end_at` after
    /// start and at most [`MAX_VISIT_MINUTES`] later, `amount_cents`, `currency`,
    /// `recurrence.frequency`, exactly one of `recurrence.count` (1–[`MAX_OCCURRENCES`]) /
    /// `recurrence.until` (not before `start_at`)).
    fn try_from(body: BookingBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let customer_id = check(e, "customer_id", body.customer_id, |s| {
            CustomerId::parse(&s)
        });
        let service_type = check(e, "service_type", body.service_type, |s| {
            ServiceType::parse(&s).ok_or("must be 1 to 100 characters after trimming")
        });
        let times = visit(e, &body.start_at, &body.end_at);
        let amount_cents = amount(e, body.amount_cents);
        let currency = check(e, "currency", body.currency, |s| {
            Currency::parse(&s).ok_or("must be a three-letter ISO 4217 code, e.g. usd")
        });
        let start = times.map(|(start, _)| start);
        let recurrence = match body.recurrence {
            None => Some(None),
            Some(recurrence) => parse_recurrence(e, recurrence, start).map(Some),
        };
        match (
            customer_id,
            service_type,
            times,
            amount_cents,
            currency,
            recurrence,
        ) {
            (
                Some(customer_id),
                Some(service_type),
                Some((start, end)),
                Some(amount_cents),
                Some(currency),
                Some(recurrence),
            ) if errors.is_empty() => Ok(Self {
                customer_id,
                service_type,
                start,
                end,
                amount_cents,
                currency,
                recurrence,
            }),
            _ => Err(errors),
        }
    }
}

/// Parses `start_at` and `end_at` and checks `start < end <= start + 7 days`; errors on the
/// field that is wrong (`end_at` for the order and the length).
fn visit(
    errors: &mut Vec<FieldError>,
    start_at: &str,
    end_at: &str,
) -> Option<(Timestamp, Timestamp)> {
    let start = check(errors, "start_at", start_at, Timestamp::parse);
    let end = check(errors, "end_at", end_at, Timestamp::parse);
    let (start, end) = (start?, end?);
    let length = end.as_datetime() - start.as_datetime();
    if end <= start {
        errors.push(FieldError::new("end_at", "must be after start_at"));
        None
    } else if length > TimeDelta::minutes(MAX_VISIT_MINUTES) {
        errors.push(FieldError::new(
            "end_at",
            "must be at most 7 days after start_at",
        ));
        None
    } else {
        Some((start, end))
    }
}

fn amount(errors: &mut Vec<FieldError>, cents: i64) -> Option<i64> {
    check(errors, "amount_cents", cents, |c| {
        if (0..=MAX_AMOUNT_CENTS).contains(&c) {
            Ok(c)
        } else {
            Err(format!(
                "must be between 0 and {MAX_AMOUNT_CENTS} (minor units)"
            ))
        }
    })
}

/// `start` is `None` when `start_at` was invalid (then `until` is checked on its own).
fn parse_recurrence(
    errors: &mut Vec<FieldError>,
    body: RecurrenceBody,
    start: Option<Timestamp>,
) -> Option<Recurrence> {
    let frequency = check(errors, "recurrence.frequency", body.frequency, |s| {
        Frequency::parse(&s).ok_or("must be weekly, biweekly or monthly")
    });
    let count = body.count.map(|count| {
        check(errors, "recurrence.count", count, |c| {
            u32::try_from(c)
                .ok()
                .filter(|c| (1..=MAX_OCCURRENCES).contains(c))
                .ok_or(format!("must be between 1 and {MAX_OCCURRENCES}"))
        })
    });
    let until = body.until.map(|until| {
        let until = check(errors, "recurrence.until", until, |s| Timestamp::parse(&s))?;
        match start {
            Some(start) if until < start => {
                errors.push(FieldError::new(
                    "recurrence.until",
                    "must not be before start_at",
                ));
                None
            }
            _ => Some(until),
        }
    });
    let end = match (count, until) {
        (Some(count), None) => count.map(SeriesEnd::Count),
        (None, Some(until)) => until.map(SeriesEnd::Until),
        (None, None) => {
            errors.push(FieldError::new(
                "recurrence.count",
                "is required unless recurrence.until is given",
            ));
            None
        }
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "recurrence.until",
                "cannot be given together with recurrence.count",
            ));
            None
        }
    };
    Some(Recurrence {
        frequency: frequency?,
        end: end?,
    })
}

impl Frequency {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Weekly => "weekly",
            Frequency::Biweekly => "biweekly",
            Frequency::Monthly => "monthly",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Frequency> {
        [Frequency::Weekly, Frequency::Biweekly, Frequency::Monthly]
            .into_iter()
            .find(|f| f.as_str() == text)
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

impl BookingPatch {
    /// The field name of the error when a patch changes nothing (`{}`).
    pub const EMPTY_FIELD: &'static str = "body";
}

impl TryFrom<BookingPatchBody> for BookingPatch {
    type Error = Vec<FieldError>;

    /// `start_at` and `end_at` must come together; at least one change must be given (else an
    /// error on [`BookingPatch::EMPTY_FIELD`]); the values are checked as on creation.
    fn try_from(body: BookingPatchBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let reschedule = match (body.start_at.as_deref(), body.end_at.as_deref()) {
            (None, None) => Some(None),
            (Some(start_at), Some(end_at)) => visit(&mut errors, start_at, end_at).map(Some),
            (Some(_), None) => {
                errors.push(FieldError::new(
                    "end_at",
                    "is required together with start_at",
                ));
                None
            }
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    "start_at",
                    "is required together with end_at",
                ));
                None
            }
        };
        let amount_cents = match body.amount_cents {
            None => Some(None),
            Some(cents) => amount(&mut errors, cents).map(Some),
        };
        match (reschedule, amount_cents) {
            (Some(None), Some(None)) if errors.is_empty() => Err(vec![FieldError::new(
                Self::EMPTY_FIELD,
                "must change something: give start_at and end_at, or amount_cents",
            )]),
            (Some(reschedule), Some(amount_cents)) if errors.is_empty() => Ok(Self {
                reschedule,
                amount_cents,
            }),
            _ => Err(errors),
        }
    }
}

/// The (start, end) of every occurrence of a series whose first visit is `start..end`, keeping
/// the local wall-clock time in `tz` across daylight-saving changes. Monthly series keep the day
/// of the month, clamped to the month's last day (Jan 31 → Feb 28/29 → Mar 31).
///
/// The first occurrence is `start..end` itself; every occurrence lasts `end − start`. Weekly
/// and biweekly add 7 and 14 local days; monthly clamps each month from the first visit's day.
/// A start time that does not exist on a later date (spring forward) moves to the first instant
/// after the gap, and one that exists twice (fall back) takes the earlier. `Count(n)` gives `n`
/// occurrences, `Until(u)` every one that starts at or before `u`; never more than
/// [`MAX_OCCURRENCES`].
pub fn occurrences(
    start: Timestamp,
    end: Timestamp,
    recurrence: Recurrence,
    tz: &Zone,
) -> Vec<(Timestamp, Timestamp)> {
    let (limit, until) = match recurrence.end {
        SeriesEnd::Count(count) => (count.min(MAX_OCCURRENCES), None),
        SeriesEnd::Until(until) => (MAX_OCCURRENCES, Some(until)),
    };
    let length = end.as_datetime() - start.as_datetime();
    let local = start.as_datetime().with_timezone(tz).naive_local();
    let (date, time) = (local.date(), local.time());
    let mut visits = Vec::new();
    for index in 0..limit {
        let visit_start = if index == 0 {
            Some(start)
        } else {
            nth_date(date, recurrence.frequency, index)
                .and_then(|d| local_instant(d.and_time(time), tz))
                .map(Timestamp::from_datetime)
        };
        let Some(visit_start) = visit_start else {
            break;
        };
        if until.is_some_and(|until| visit_start > until) {
            break;
        }
        let Some(visit_end) = visit_start.as_datetime().checked_add_signed(length) else {
            break;
        };
        visits.push((visit_start, Timestamp::from_datetime(visit_end)));
    }
    visits
}

/// The local date of occurrence `index` (0 is the first visit's `date`).
fn nth_date(date: NaiveDate, frequency: Frequency, index: u32) -> Option<NaiveDate> {
    match frequency {
        Frequency::Weekly => date.checked_add_days(Days::new(7 * u64::from(index))),
        Frequency::Biweekly => date.checked_add_days(Days::new(14 * u64::from(index))),
        // chrono clamps to the month's last day, always from the first date, never cumulatively.
        Frequency::Monthly => date.checked_add_months(Months::new(index)),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn completing_or_cancelling_twice_is_fine_but_crossing_over_is_a_conflict() {
        use BookingStatus::{Cancelled, Completed, Scheduled};
        assert_eq!(transition_conflict(Scheduled, Completed), None);
        assert_eq!(transition_conflict(Completed, Completed), None);
        assert_eq!(transition_conflict(Cancelled, Cancelled), None);
        assert!(transition_conflict(Cancelled, Completed).is_some());
        assert!(transition_conflict(Completed, Cancelled).is_some());
        assert!(transition_conflict(Completed, Scheduled).is_some());
    }
    use super::*;
    use crate::rules::testing::ts;
    use chrono::{Datelike, LocalResult, TimeZone as _};
    use proptest::prelude::*;
    use std::sync::LazyLock;

    use crate::test_support::zone;

    static TORONTO: LazyLock<Zone> = LazyLock::new(|| zone("America/Toronto"));
    const CUSTOMER: &str = "cus_00000000000000000000000000";

    fn body() -> BookingBody {
        BookingBody {
            customer_id: CustomerId::from_random(&[0; 16]).as_str().to_owned(),
            service_type: " deep_clean ".to_owned(),
            start_at: "2026-03-01T09:00:00-05:00".to_owned(),
            end_at: "2026-03-01T11:00:00-05:00".to_owned(),
            amount_cents: 12_500,
            currency: "CAD".to_owned(),
            recurrence: None,
        }
    }

    fn recurrence(frequency: &str, count: Option<i64>, until: Option<&str>) -> RecurrenceBody {
        RecurrenceBody {
            frequency: frequency.to_owned(),
            count,
            until: until.map(str::to_owned),
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_valid_booking_parses_into_domain_types() {
        let booking = NewBooking::try_from(body()).expect("valid");
        assert_eq!(booking.customer_id.as_str(), CUSTOMER);
        assert_eq!(booking.service_type.as_str(), "deep_clean");
        assert_eq!(booking.start, ts("2026-03-01T14:00:00Z"));
        assert_eq!(booking.end, ts("2026-03-01T16:00:00Z"));
        assert_eq!(booking.currency.as_str(), "cad");
        assert_eq!(booking.recurrence, None);
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let errors = NewBooking::try_from(BookingBody {
            customer_id: "bkg_nope".to_owned(),
            service_type: "   ".to_owned(),
            start_at: "tomorrow".to_owned(),
            end_at: "2026-03-01".to_owned(),
            amount_cents: -1,
            currency: "dollars".to_owned(),
            recurrence: Some(recurrence("daily", Some(0), None)),
        })
        .expect_err("invalid");
        assert_eq!(
            fields(&errors),
            [
                "customer_id",
                "service_type",
                "start_at",
                "end_at",
                "amount_cents",
                "currency",
                "recurrence.frequency",
                "recurrence.count"
            ]
        );
    }

    #[test]
    fn the_end_must_come_after_the_start() {
        for end_at in ["2026-03-01T09:00:00-05:00", "2026-03-01T08:00:00-05:00"] {
            let errors = NewBooking::try_from(BookingBody {
                end_at: end_at.to_owned(),
                ..body()
            })
            .expect_err("invalid");
            assert_eq!(
                errors,
                [FieldError::new("end_at", "must be after start_at")]
            );
        }
    }

    #[test]
    fn a_visit_longer_than_seven_days_is_refused() {
        let exactly_seven = BookingBody {
            end_at: "2026-03-08T09:00:00-05:00".to_owned(),
            ..body()
        };
        assert!(NewBooking::try_from(exactly_seven).is_ok());
        let longer = BookingBody {
            end_at: "2026-03-08T09:00:01-05:00".to_owned(),
            ..body()
        };
        let errors = NewBooking::try_from(longer).expect_err("too long");
        assert_eq!(fields(&errors), ["end_at"]);
    }

    #[test]
    fn amounts_are_limited_to_stripes_maximum() {
        for (amount, ok) in [
            (0, true),
            (MAX_AMOUNT_CENTS, true),
            (MAX_AMOUNT_CENTS + 1, false),
        ] {
            let parsed = NewBooking::try_from(BookingBody {
                amount_cents: amount,
                ..body()
            });
            assert_eq!(parsed.is_ok(), ok, "{amount}");
        }
    }

    #[test]
    fn a_series_has_a_frequency_and_exactly_one_end() {
        let parse = |r: RecurrenceBody| {
            NewBooking::try_from(BookingBody {
                recurrence: Some(r),
                ..body()
            })
        };
        let weekly = parse(recurrence("weekly", Some(4), None)).expect("valid");
        assert_eq!(
            weekly.recurrence,
            Some(Recurrence {
                frequency: Frequency::Weekly,
                end: SeriesEnd::Count(4)
            })
        );
        let until =
            parse(recurrence("monthly", None, Some("2026-12-31T00:00:00Z"))).expect("valid");
        assert_eq!(
            until.recurrence.map(|r| r.end),
            Some(SeriesEnd::Until(ts("2026-12-31T00:00:00Z")))
        );
        let neither = parse(recurrence("weekly", None, None)).expect_err("invalid");
        assert_eq!(fields(&neither), ["recurrence.count"]);
        let both = parse(recurrence("weekly", Some(2), Some("2026-12-31T00:00:00Z")))
            .expect_err("invalid");
        assert_eq!(fields(&both), ["recurrence.until"]);
        let too_many = parse(recurrence(
            "weekly",
            Some(i64::from(MAX_OCCURRENCES) + 1),
            None,
        ))
        .expect_err("invalid");
        assert_eq!(fields(&too_many), ["recurrence.count"]);
        assert!(
            parse(recurrence(
                "biweekly",
                Some(i64::from(MAX_OCCURRENCES)),
                None
            ))
            .is_ok()
        );
    }

    #[test]
    fn a_series_cannot_end_before_it_starts() {
        let errors = NewBooking::try_from(BookingBody {
            recurrence: Some(recurrence("weekly", None, Some("2026-03-01T13:59:59Z"))),
            ..body()
        })
        .expect_err("invalid");
        assert_eq!(
            errors,
            [FieldError::new(
                "recurrence.until",
                "must not be before start_at"
            )]
        );
        let same_instant = NewBooking::try_from(BookingBody {
            recurrence: Some(recurrence("weekly", None, Some("2026-03-01T14:00:00Z"))),
            ..body()
        });
        assert!(same_instant.is_ok());
    }

    #[test]
    fn booking_bodies_refuse_unknown_fields() {
        let json = r#"{"customer_id":"x","service_type":"x","start_at":"x","end_at":"x",
            "amount_cents":1,"currency":"usd","status":"completed"}"#;
        assert!(serde_json::from_str::<BookingBody>(json).is_err());
    }

    #[test]
    fn a_reschedule_needs_both_start_and_end() {
        let only_start = BookingPatchBody {
            start_at: Some("2026-03-02T09:00:00Z".to_owned()),
            ..BookingPatchBody::default()
        };
        let errors = BookingPatch::try_from(only_start).expect_err("invalid");
        assert_eq!(fields(&errors), ["end_at"]);
        let only_end = BookingPatchBody {
            end_at: Some("2026-03-02T09:00:00Z".to_owned()),
            amount_cents: Some(-5),
            ..BookingPatchBody::default()
        };
        let errors = BookingPatch::try_from(only_end).expect_err("invalid");
        assert_eq!(fields(&errors), ["start_at", "amount_cents"]);
    }

    #[test]
    fn an_empty_patch_is_refused() {
        let errors = BookingPatch::try_from(BookingPatchBody::default()).expect_err("empty");
        assert_eq!(fields(&errors), [BookingPatch::EMPTY_FIELD]);
    }

    #[test]
    fn a_valid_patch_carries_its_changes() {
        let patch = BookingPatch::try_from(BookingPatchBody {
            start_at: Some("2026-03-02T09:00:00Z".to_owned()),
            end_at: Some("2026-03-02T10:00:00Z".to_owned()),
            amount_cents: Some(0),
        })
        .expect("valid");
        assert_eq!(
            patch.reschedule,
            Some((ts("2026-03-02T09:00:00Z"), ts("2026-03-02T10:00:00Z")))
        );
        assert_eq!(patch.amount_cents, Some(0));
        let reversed = BookingPatchBody {
            start_at: Some("2026-03-02T10:00:00Z".to_owned()),
            end_at: Some("2026-03-02T09:00:00Z".to_owned()),
            amount_cents: None,
        };
        let errors = BookingPatch::try_from(reversed).expect_err("invalid");
        assert_eq!(fields(&errors), ["end_at"]);
    }

    fn series(
        frequency: Frequency,
        end: SeriesEnd,
        start: &str,
        end_at: &str,
    ) -> Vec<(String, String)> {
        occurrences(
            ts(start),
            ts(end_at),
            Recurrence { frequency, end },
            &TORONTO,
        )
        .into_iter()
        .map(|(s, e)| (s.to_string(), e.to_string()))
        .collect()
    }

    #[test]
    fn weekly_visits_keep_their_local_time_across_daylight_saving() {
        // 09:00 EST on March 1st; Toronto springs forward on March 8th.
        let visits = series(
            Frequency::Weekly,
            SeriesEnd::Count(3),
            "2026-03-01T14:00:00Z",
            "2026-03-01T16:00:00Z",
        );
        let starts: Vec<&str> = visits.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            starts,
            [
                "2026-03-01T14:00:00.000Z",
                "2026-03-08T13:00:00.000Z",
                "2026-03-15T13:00:00.000Z"
            ]
        );
        assert_eq!(visits[1].1, "2026-03-08T15:00:00.000Z");
    }

    #[test]
    fn biweekly_visits_are_fourteen_days_apart() {
        let visits = series(
            Frequency::Biweekly,
            SeriesEnd::Count(2),
            "2026-06-01T14:00:00Z",
            "2026-06-01T15:00:00Z",
        );
        assert_eq!(visits[1].0, "2026-06-15T14:00:00.000Z");
    }

    #[test]
    fn monthly_visits_clamp_to_the_last_day_and_come_back() {
        // January 31st 10:00 EST.
        let visits = series(
            Frequency::Monthly,
            SeriesEnd::Count(4),
            "2026-01-31T15:00:00Z",
            "2026-01-31T16:00:00Z",
        );
        let starts: Vec<&str> = visits.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            starts,
            [
                "2026-01-31T15:00:00.000Z",
                "2026-02-28T15:00:00.000Z",
                "2026-03-31T14:00:00.000Z",
                "2026-04-30T14:00:00.000Z"
            ]
        );
        let leap = series(
            Frequency::Monthly,
            SeriesEnd::Count(2),
            "2028-01-31T15:00:00Z",
            "2028-01-31T16:00:00Z",
        );
        assert_eq!(leap[1].0, "2028-02-29T15:00:00.000Z");
    }

    #[test]
    fn until_includes_a_visit_starting_exactly_then() {
        let visits = series(
            Frequency::Weekly,
            SeriesEnd::Until(ts("2026-06-15T14:00:00Z")),
            "2026-06-01T14:00:00Z",
            "2026-06-01T15:00:00Z",
        );
        assert_eq!(visits.len(), 3);
        let visits = series(
            Frequency::Weekly,
            SeriesEnd::Until(ts("2026-06-15T13:59:59.999Z")),
            "2026-06-01T14:00:00Z",
            "2026-06-01T15:00:00Z",
        );
        assert_eq!(visits.len(), 2);
    }

    #[test]
    fn a_far_until_stops_at_the_occurrence_limit() {
        let visits = series(
            Frequency::Weekly,
            SeriesEnd::Until(ts("2099-01-01T00:00:00Z")),
            "2026-06-01T14:00:00Z",
            "2026-06-01T15:00:00Z",
        );
        assert_eq!(visits.len(), MAX_OCCURRENCES as usize);
    }

    #[test]
    fn a_start_time_in_the_gap_moves_to_the_end_of_the_gap() {
        // 02:30 EST on March 1st; on March 8th 02:30 does not exist in Toronto: 03:00 EDT.
        let visits = series(
            Frequency::Weekly,
            SeriesEnd::Count(2),
            "2026-03-01T07:30:00Z",
            "2026-03-01T08:30:00Z",
        );
        assert_eq!(visits[1].0, "2026-03-08T07:00:00.000Z");
        assert_eq!(visits[1].1, "2026-03-08T08:00:00.000Z");
    }

    fn arb_frequency() -> impl Strategy<Value = Frequency> {
        prop_oneof![
            Just(Frequency::Weekly),
            Just(Frequency::Biweekly),
            Just(Frequency::Monthly)
        ]
    }

    fn arb_zone() -> impl Strategy<Value = Zone> {
        prop_oneof![
            Just(TORONTO.clone()),
            Just(zone("Europe/London")),
            Just(zone("Australia/Sydney")),
            Just(zone("Australia/Lord_Howe")),
            Just(Zone::utc()),
        ]
    }

    fn arb_end() -> impl Strategy<Value = SeriesEnd> {
        prop_oneof![
            (0u32..=200).prop_map(SeriesEnd::Count),
            (1_577_836_800_000i64..2_524_608_000_000).prop_map(|millis| SeriesEnd::Until(
                Timestamp::from_unix_millis(millis).expect("in range")
            )),
        ]
    }

    proptest! {
        #[test]
        fn occurrences_keep_the_limit_the_duration_and_the_local_start_time(
            start in 1_577_836_800_000i64..2_208_988_800_000,
            minutes in 1i64..=MAX_VISIT_MINUTES,
            frequency in arb_frequency(),
            end in arb_end(),
            tz in arb_zone(),
        ) {
            let start = Timestamp::from_unix_millis(start).expect("in range");
            let end_at = Timestamp::from_datetime(start.as_datetime() + TimeDelta::minutes(minutes));
            let visits = occurrences(start, end_at, Recurrence { frequency, end }, &tz);
            prop_assert!(visits.len() <= MAX_OCCURRENCES as usize);
            if let SeriesEnd::Count(n) = end {
                prop_assert_eq!(visits.len(), n.min(MAX_OCCURRENCES) as usize);
            }
            if let Some(first) = visits.first() {
                prop_assert_eq!(*first, (start, end_at));
            }
            let first_local = start.as_datetime().with_timezone(&tz);
            for (index, (s, e)) in visits.iter().enumerate() {
                prop_assert_eq!(e.as_datetime() - s.as_datetime(), TimeDelta::minutes(minutes));
                if let SeriesEnd::Until(until) = end {
                    prop_assert!(*s <= until);
                }
                let local = s.as_datetime().with_timezone(&tz);
                let exists = tz.from_local_datetime(&local.date_naive().and_time(first_local.time()));
                match exists {
                    // The wall-clock start time is kept whenever it exists that day.
                    LocalResult::Single(_) | LocalResult::Ambiguous(..) => {
                        prop_assert_eq!(local.time(), first_local.time(), "occurrence {}", index);
                    }
                    LocalResult::None => prop_assert!(local.time() > first_local.time()),
                }
                if frequency == Frequency::Monthly {
                    let day = first_local.day().min(last_day(local.year(), local.month()));
                    prop_assert_eq!(local.day(), day);
                }
                if index > 0 {
                    prop_assert!(visits[index - 1].0 < *s);
                }
            }
        }
    }

    fn last_day(year: i32, month: u32) -> u32 {
        (28..=31)
            .rev()
            .find(|d| NaiveDate::from_ymd_opt(year, month, *d).is_some())
            .expect("a month has at least 28 days")
    }
}
