//! Instants as the API and the database spell them: RFC 3339, UTC, millisecond precision.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// An instant in UTC, truncated to milliseconds so the stored and the shown value agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an RFC 3339 timestamp, e.g. 2026-03-01T09:30:00Z")]
pub struct TimestampError;

impl Timestamp {
    /// Wraps an instant that the caller obtained (the core never reads a clock).
    pub fn from_datetime(instant: DateTime<Utc>) -> Self {
        Self(instant.trunc_subsecs(3))
    }

    /// The instant `millis` milliseconds after the Unix epoch, if representable.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self::from_datetime)
    }

    /// Parses RFC 3339 with any offset and converts it to UTC.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        DateTime::parse_from_rfc3339(text)
            .map(|instant| Self::from_datetime(instant.with_timezone(&Utc)))
            .map_err(|_| TimestampError)
    }

    /// The instant.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Milliseconds since the Unix epoch (how instants are stored and compared in SQL).
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This instant plus `minutes` (negative goes back). Offsets in this product are bounded far
    /// below chrono's range (±262,000 years); an out-of-range result keeps the instant unchanged.
    pub fn plus_minutes(&self, minutes: i64) -> Timestamp {
        let delta = chrono::TimeDelta::try_minutes(minutes).unwrap_or(chrono::TimeDelta::MAX);
        Timestamp(self.0.checked_add_signed(delta).unwrap_or(self.0))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(instant: DateTime<Utc>) -> Self {
        Self::from_datetime(instant)
    }
}

// Fixed width (`YYYY-MM-DDTHH:MM:SS.mmmZ`), so stored text sorts in time order.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_print_in_utc_with_milliseconds() {
        let instant = Utc
            .with_ymd_and_hms(2026, 3, 1, 9, 30, 0)
            .single()
            .expect("valid");
        assert_eq!(
            Timestamp::from(instant).to_string(),
            "2026-03-01T09:30:00.000Z"
        );
    }

    #[test]
    fn any_offset_is_accepted_and_converted_to_utc() {
        let parsed = Timestamp::parse("2026-03-01T04:30:00.123456-05:00").expect("valid");
        assert_eq!(parsed.to_string(), "2026-03-01T09:30:00.123Z");
    }

    #[test]
    fn printed_timestamps_parse_back_to_the_same_instant() {
        let parsed = Timestamp::parse("2026-11-02T23:59:59.999Z").expect("valid");
        assert_eq!(Timestamp::parse(&parsed.to_string()), Ok(parsed));
    }

    #[test]
    fn unix_milliseconds_convert_exactly() {
        let stamp = Timestamp::from_unix_millis(1_772_357_400_123).expect("in range");
        assert_eq!(stamp.to_string(), "2026-03-01T09:30:00.123Z");
    }

    #[test]
    fn text_that_is_not_rfc3339_is_rejected() {
        assert_eq!(Timestamp::parse("2026-03-01 09:30"), Err(TimestampError));
        assert_eq!(Timestamp::parse(""), Err(TimestampError));
    }
}
