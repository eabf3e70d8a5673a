//! IANA time zones for local-time arithmetic, from the tz database that `jiff` bundles.
//!
//! The bundle is the compact ("slim") TZif data of every zone, about 200 KB: far future rules
//! come from each zone's POSIX rule, not from a table of transitions. It is the same database in
//! the components (wasm) and in native tests, and reading it needs no file system, which a Spin
//! component does not have. [`Zone`] implements chrono's [`TimeZone`], so the rest of the core
//! keeps working with chrono's types.

use chrono::{
    FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use jiff::tz::AmbiguousOffset;
use std::fmt;

/// Civil times and instants jiff can represent (years −9999 to 9999). Outside it the zone's
/// offset at the nearest end applies: no rule is known so far out, and chrono's wider range
/// would otherwise be cut off with an error.
const MIN_SECONDS: i64 = -377_705_116_800;
const MAX_SECONDS: i64 = 253_402_207_199;

/// An IANA time zone, e.g. `America/Toronto`.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone the bundled database names exactly `name` (case matters; links such as
    /// `US/Eastern` are names too), or `None`.
    pub fn named(name: &str) -> Option<Self> {
        let zone = jiff::tz::db().get(name).ok()?;
        (zone.iana_name() == Some(name)).then_some(Self(zone))
    }

    /// UTC.
    pub fn utc() -> Self {
        Self(jiff::tz::TimeZone::UTC)
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
        // jiff allows offsets up to ±25:59:59 and chrono below ±24 h; every real zone keeps
        // within both, so UTC stands in for an impossible one rather than a panic.
        FixedOffset::east_opt(offset.seconds()).unwrap_or(Utc.fix())
    }

    fn offset(&self, fixed: FixedOffset) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            fixed,
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The offset a [`Zone`] has at some instant, with the zone it belongs to (as chrono's
/// [`TimeZone::Offset`] must carry).
#[derive(Clone, Debug)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.fixed, f)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Self {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        let seconds = local.and_utc().timestamp().clamp(MIN_SECONDS, MAX_SECONDS);
        let Ok(civil) = jiff::Timestamp::from_second(seconds)
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).datetime())
        else {
            return MappedLocalTime::None;
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                MappedLocalTime::Single(self.offset(Self::fixed(offset)))
            }
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => MappedLocalTime::Ambiguous(
                self.offset(Self::fixed(before)),
                self.offset(Self::fixed(after)),
            ),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let seconds = utc.and_utc().timestamp().clamp(MIN_SECONDS, MAX_SECONDS);
        let offset = jiff::Timestamp::from_second(seconds)
            .map(|t| self.0.to_offset(t))
            .unwrap_or(jiff::tz::Offset::UTC);
        self.offset(Self::fixed(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        Zone::named(name).expect("a bundled zone")
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("a local time")
    }

    fn utc_offset_hours(zone: &Zone, utc: &str) -> f64 {
        f64::from(
            zone.offset_from_utc_datetime(&local(utc))
                .fix()
                .local_minus_utc(),
        ) / 3600.0
    }

    #[test]
    fn names_are_exact_and_links_are_names() {
        assert_eq!(zone("America/Toronto").name(), "America/Toronto");
        assert!(Zone::named("america/toronto").is_none());
        assert!(Zone::named("Mars/Olympus_Mons").is_none());
        assert!(Zone::named("").is_none());
        assert_eq!(zone("US/Eastern").name(), "US/Eastern");
        assert_eq!(zone("UTC").name(), "UTC");
        assert_eq!(Zone::utc().name(), "UTC");
    }

    #[test]
    fn offsets_follow_daylight_saving_and_half_hour_zones() {
        let toronto = zone("America/Toronto");
        assert_eq!(utc_offset_hours(&toronto, "2026-01-15 12:00"), -5.0);
        assert_eq!(utc_offset_hours(&toronto, "2026-07-15 12:00"), -4.0);
        assert_eq!(
            utc_offset_hours(&zone("Asia/Kolkata"), "2026-07-15 12:00"),
            5.5
        );
        assert_eq!(
            utc_offset_hours(&zone("America/St_Johns"), "2026-01-15 12:00"),
            -3.5
        );
        // Lord Howe moves its clocks by half an hour: +10:30 in winter, +11 in summer.
        let lord_howe = zone("Australia/Lord_Howe");
        assert_eq!(utc_offset_hours(&lord_howe, "2026-07-15 12:00"), 10.5);
        assert_eq!(utc_offset_hours(&lord_howe, "2026-01-15 12:00"), 11.0);
    }

    #[test]
    fn rules_hold_in_the_far_future_and_the_far_past_is_clamped_not_refused() {
        // No transition table reaches 2150; the zone's POSIX rule does.
        let toronto = zone("America/Toronto");
        assert_eq!(utc_offset_hours(&toronto, "2150-07-15 12:00"), -4.0);
        assert_eq!(utc_offset_hours(&toronto, "2150-01-15 12:00"), -5.0);
        let far = NaiveDate::from_ymd_opt(200_000, 1, 1).expect("a date chrono represents");
        let _ = toronto.offset_from_utc_date(&far).fix();
        assert!(matches!(
            toronto.offset_from_local_date(&far),
            MappedLocalTime::Single(_)
        ));
    }

    #[test]
    fn a_spring_gap_has_no_local_time_and_a_fall_fold_has_two() {
        let toronto = zone("America/Toronto");
        assert!(matches!(
            toronto.from_local_datetime(&local("2026-03-08 02:30")),
            MappedLocalTime::None
        ));
        let MappedLocalTime::Ambiguous(a, b) =
            toronto.from_local_datetime(&local("2026-11-01 01:30"))
        else {
            panic!("01:30 happens twice when Toronto falls back");
        };
        let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
        let (earlier, later) = (a.min(b), a.max(b));
        assert_eq!(earlier.to_rfc3339(), "2026-11-01T05:30:00+00:00");
        assert_eq!(later.to_rfc3339(), "2026-11-01T06:30:00+00:00");
        let MappedLocalTime::Single(noon) = toronto.from_local_datetime(&local("2026-07-15 12:00"))
        else {
            panic!("noon happens once");
        };
        assert_eq!(
            noon.with_timezone(&Utc).to_rfc3339(),
            "2026-07-15T16:00:00+00:00"
        );
        assert_eq!(noon.format("%H:%M %z").to_string(), "12:00 -0400");
    }
}
