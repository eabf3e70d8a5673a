//! When a run is due: [`due_at`] turns a timing and a booking's times into an instant, following
//! the account's time zone across daylight-saving changes.

use crate::zone::Zone;
use chrono::{DateTime, LocalResult, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};

use crate::rules::{Timing, Trigger};
use crate::time::Timestamp;

/// The instants of a booking that timings are measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingTimes {
    /// When the visit starts.
    pub start: Timestamp,
    /// When the visit ends.
    pub end: Timestamp,
    /// When the business marked it complete, if it did.
    pub completed_at: Option<Timestamp>,
}

/// The instant a run with `timing` is due for a booking with `times`, or `None` when it cannot
/// be known yet (`after_complete` before completion). With a `local_time`, the run moves to
/// that time of day, in `tz`, on the local date the offset lands on; a local time that does not
/// exist that day (spring forward) runs at the first instant after the gap, and one that exists
/// twice (fall back) runs at the earlier one. Also `None` when the instant would fall outside
/// the range of dates chrono can represent (hundreds of thousands of years away).
pub fn due_at(timing: &Timing, times: &BookingTimes, tz: &Zone) -> Option<Timestamp> {
    let offset = TimeDelta::minutes(i64::from(timing.offset.minutes()));
    let base = match timing.trigger {
        Trigger::BeforeStart => times.start.as_datetime().checked_sub_signed(offset)?,
        Trigger::AfterEnd => times.end.as_datetime().checked_add_signed(offset)?,
        Trigger::AfterComplete => times
            .completed_at?
            .as_datetime()
            .checked_add_signed(offset)?,
    };
    let Some(local_time) = timing.local_time else {
        return Some(Timestamp::from_datetime(base));
    };
    let date = base.with_timezone(tz).date_naive();
    let time = NaiveTime::from_hms_opt(
        u32::from(local_time.hour()),
        u32::from(local_time.minute()),
        0,
    )?;
    local_instant(date.and_time(time), tz).map(Timestamp::from_datetime)
}

/// The instant a local wall-clock time in `tz` stands for: the earlier one when it happens
/// twice (fall back), and the first instant after the gap when it does not happen (spring
/// forward: the instant the clocks jump to). `None` only out of chrono's range.
pub(crate) fn local_instant(naive: NaiveDateTime, tz: &Zone) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(instant) => Some(instant.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, later) => Some(earlier.min(later).with_timezone(&Utc)),
        LocalResult::None => after_gap(naive, tz),
    }
}

/// The first instant whose local time is at or after `naive`, for a `naive` inside a gap.
///
/// UTC offsets stay well within ±30 hours, so the local time 30 hours before (as UTC) is
/// earlier than `naive` and 30 hours after is later; bisecting on whole seconds (transitions
/// happen on whole seconds) finds the instant where local time jumps over `naive`: the end of
/// the gap.
fn after_gap(naive: NaiveDateTime, tz: &Zone) -> Option<DateTime<Utc>> {
    let local = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).map(|t| t.with_timezone(tz).naive_local())
    };
    let centre = naive.and_utc().timestamp();
    let (mut lo, mut hi) = (centre - 30 * 3600, centre + 30 * 3600);
    if local(lo)? >= naive || local(hi)? < naive {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local(mid)? < naive {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{arb_local_time, arb_trigger, timing, ts};
    use crate::rules::{LocalTime, MAX_OFFSET_MINUTES, Offset};
    use chrono::{NaiveDate, Offset as _, Timelike};
    use proptest::prelude::*;
    use std::sync::LazyLock;

    use crate::test_support::zone;

    static TORONTO: LazyLock<Zone> = LazyLock::new(|| zone("America/Toronto"));
    static LONDON: LazyLock<Zone> = LazyLock::new(|| zone("Europe/London"));
    static SYDNEY: LazyLock<Zone> = LazyLock::new(|| zone("Australia/Sydney"));
    static LORD_HOWE: LazyLock<Zone> = LazyLock::new(|| zone("Australia/Lord_Howe"));

    fn times(start: &str, end: &str, completed_at: Option<&str>) -> BookingTimes {
        BookingTimes {
            start: ts(start),
            end: ts(end),
            completed_at: completed_at.map(ts),
        }
    }

    fn visit() -> BookingTimes {
        times(
            "2026-06-10T14:00:00Z",
            "2026-06-10T16:00:00Z",
            Some("2026-06-10T16:30:00Z"),
        )
    }

    fn due(
        trigger: Trigger,
        offset: u32,
        local: Option<&str>,
        t: &BookingTimes,
        tz: &Zone,
    ) -> String {
        due_at(&timing(trigger, offset, local), t, tz)
            .expect("due time known")
            .to_string()
    }

    #[test]
    fn before_start_subtracts_the_offset_from_the_start() {
        assert_eq!(
            due(Trigger::BeforeStart, 90, None, &visit(), &TORONTO),
            "2026-06-10T12:30:00.000Z"
        );
    }

    #[test]
    fn after_end_adds_the_offset_to_the_end() {
        assert_eq!(
            due(Trigger::AfterEnd, 3 * 24 * 60, None, &visit(), &TORONTO),
            "2026-06-13T16:00:00.000Z"
        );
    }

    #[test]
    fn after_complete_adds_the_offset_to_the_completion() {
        assert_eq!(
            due(Trigger::AfterComplete, 60, None, &visit(), &TORONTO),
            "2026-06-10T17:30:00.000Z"
        );
    }

    #[test]
    fn after_complete_is_unknown_before_completion() {
        let open = BookingTimes {
            completed_at: None,
            ..visit()
        };
        let t = timing(Trigger::AfterComplete, 0, Some("09:00"));
        assert_eq!(due_at(&t, &open, &TORONTO), None);
    }

    #[test]
    fn the_day_before_at_nine_is_nine_local_time_the_previous_day() {
        // 10:00 EDT on June 10th; the day before at 09:00 EDT is 13:00 UTC on June 9th.
        assert_eq!(
            due(
                Trigger::BeforeStart,
                24 * 60,
                Some("09:00"),
                &visit(),
                &TORONTO
            ),
            "2026-06-09T13:00:00.000Z"
        );
    }

    #[test]
    fn the_local_date_is_taken_in_the_account_time_zone_not_in_utc() {
        // 02:00 UTC on June 11th is still June 10th (22:00) in Toronto.
        let late = times("2026-06-11T02:00:00Z", "2026-06-11T03:00:00Z", None);
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("08:00"), &late, &TORONTO),
            "2026-06-10T12:00:00.000Z"
        );
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("08:00"), &late, &LONDON),
            "2026-06-11T07:00:00.000Z"
        );
    }

    #[test]
    fn a_local_time_in_the_spring_forward_gap_runs_when_the_clocks_jump() {
        // Toronto, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let visit = times("2026-03-08T15:00:00Z", "2026-03-08T16:00:00Z", None);
        for local in ["02:00", "02:30", "02:59"] {
            assert_eq!(
                due(Trigger::BeforeStart, 0, Some(local), &visit, &TORONTO),
                "2026-03-08T07:00:00.000Z",
                "{local}"
            );
        }
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("03:00"), &visit, &TORONTO),
            "2026-03-08T07:00:00.000Z"
        );
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("01:59"), &visit, &TORONTO),
            "2026-03-08T06:59:00.000Z"
        );
    }

    #[test]
    fn a_local_time_that_happens_twice_runs_at_the_earlier_one() {
        // Toronto, 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 EDT is 05:30 UTC.
        let visit = times("2026-11-01T15:00:00Z", "2026-11-01T16:00:00Z", None);
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("01:30"), &visit, &TORONTO),
            "2026-11-01T05:30:00.000Z"
        );
        // London, 2026-10-25: 02:00 BST becomes 01:00 GMT; 01:15 BST is 00:15 UTC.
        let visit = times("2026-10-25T15:00:00Z", "2026-10-25T16:00:00Z", None);
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("01:15"), &visit, &LONDON),
            "2026-10-25T00:15:00.000Z"
        );
    }

    #[test]
    fn lord_howe_half_hour_shifts_are_followed() {
        // 2026-10-04 02:00 (+10:30) becomes 02:30 (+11): 02:15 runs at 02:30 = 15:30 UTC.
        let spring = times("2026-10-04T01:00:00Z", "2026-10-04T02:00:00Z", None);
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("02:15"), &spring, &LORD_HOWE),
            "2026-10-03T15:30:00.000Z"
        );
        // 2026-04-05 02:00 (+11) becomes 01:30 (+10:30): 01:45 runs at the +11 one.
        let autumn = times("2026-04-05T01:00:00Z", "2026-04-05T02:00:00Z", None);
        assert_eq!(
            due(Trigger::BeforeStart, 0, Some("01:45"), &autumn, &LORD_HOWE),
            "2026-04-04T14:45:00.000Z"
        );
    }

    /// The local dates in `year` on which `tz` changes its UTC offset.
    fn transition_days(tz: &Zone, year: i32) -> Vec<NaiveDate> {
        let mut days = Vec::new();
        let start = NaiveDate::from_ymd_opt(year, 1, 1)
            .expect("valid date")
            .and_hms_opt(0, 0, 0)
            .expect("valid time")
            .and_utc();
        let mut previous = start.with_timezone(tz).offset().fix();
        for step in 1..=(366 * 24 * 4) {
            let instant = start + TimeDelta::minutes(15 * step);
            let offset = instant.with_timezone(tz).offset().fix();
            if offset != previous {
                days.push(instant.with_timezone(tz).date_naive());
                previous = offset;
            }
        }
        days
    }

    #[test]
    fn every_local_time_on_every_transition_day_gives_a_valid_instant() {
        for tz in [&*TORONTO, &*LONDON, &*SYDNEY, &*LORD_HOWE] {
            for year in 2025..=2028 {
                let days = transition_days(tz, year);
                assert_eq!(days.len(), 2, "{tz} {year}: {days:?}");
                for day in days {
                    let noon = local_instant(day.and_hms_opt(12, 0, 0).expect("valid"), tz)
                        .expect("noon exists");
                    let visit = BookingTimes {
                        start: Timestamp::from_datetime(noon),
                        end: Timestamp::from_datetime(noon + TimeDelta::hours(1)),
                        completed_at: None,
                    };
                    for minute_of_day in 0..24 * 60 {
                        let wanted =
                            NaiveTime::from_hms_opt(minute_of_day / 60, minute_of_day % 60, 0)
                                .expect("valid");
                        let text = wanted.format("%H:%M").to_string();
                        let t = timing(Trigger::BeforeStart, 0, Some(&text));
                        let got = due_at(&t, &visit, tz).expect("always an instant");
                        let local = got.as_datetime().with_timezone(tz);
                        assert_eq!(local.date_naive(), day, "{tz} {day} {text}");
                        if tz
                            .from_local_datetime(&day.and_time(wanted))
                            .single()
                            .is_some()
                        {
                            assert_eq!(local.time(), wanted, "{tz} {day} {text}");
                        } else if let LocalResult::Ambiguous(a, b) =
                            tz.from_local_datetime(&day.and_time(wanted))
                        {
                            assert_eq!(got.as_datetime(), a.min(b).with_timezone(&Utc));
                        } else {
                            // In the gap: the first instant after it, where the offset changed.
                            assert!(local.time() > wanted, "{tz} {day} {text}");
                            let before =
                                (got.as_datetime() - TimeDelta::seconds(1)).with_timezone(tz);
                            assert!(before.time() < wanted, "{tz} {day} {text}");
                            assert_ne!(before.offset().fix(), local.offset().fix());
                        }
                        assert_eq!(local.second(), 0);
                    }
                }
            }
        }
    }

    fn arb_zone() -> impl Strategy<Value = Zone> {
        prop_oneof![
            Just(TORONTO.clone()),
            Just(LONDON.clone()),
            Just(SYDNEY.clone()),
            Just(LORD_HOWE.clone()),
            Just(Zone::utc()),
            Just(zone("Asia/Kolkata")),
            Just(zone("America/St_Johns")),
        ]
    }

    fn arb_times() -> impl Strategy<Value = BookingTimes> {
        // 2020 to 2035, visits up to 7 days, completion up to 30 days after the end.
        (
            1_577_836_800_000i64..2_082_758_400_000,
            1i64..7 * 24 * 60,
            0i64..30 * 24 * 60,
        )
            .prop_map(|(start, length, completion)| {
                let start = Timestamp::from_unix_millis(start).expect("in range");
                let end =
                    Timestamp::from_datetime(start.as_datetime() + TimeDelta::minutes(length));
                let completed_at =
                    Timestamp::from_datetime(end.as_datetime() + TimeDelta::minutes(completion));
                BookingTimes {
                    start,
                    end,
                    completed_at: Some(completed_at),
                }
            })
    }

    proptest! {
        #[test]
        fn due_at_is_monotone_in_the_offset(
            trigger in arb_trigger(),
            a in 0..=MAX_OFFSET_MINUTES,
            b in 0..=MAX_OFFSET_MINUTES,
            local_time in arb_local_time(),
            visit in arb_times(),
            tz in arb_zone(),
        ) {
            let (small, large) = (a.min(b), a.max(b));
            let at = |offset: u32| {
                let t = Timing {
                    trigger,
                    offset: Offset::from_minutes(i64::from(offset)).expect("valid"),
                    local_time,
                };
                due_at(&t, &visit, &tz).expect("known")
            };
            match trigger {
                Trigger::BeforeStart => prop_assert!(at(large) <= at(small)),
                Trigger::AfterEnd | Trigger::AfterComplete => prop_assert!(at(large) >= at(small)),
            }
        }

        #[test]
        fn a_local_time_keeps_the_local_date_the_offset_lands_on(
            trigger in arb_trigger(),
            offset in 0..=MAX_OFFSET_MINUTES,
            hour in 0u8..24,
            minute in 0u8..60,
            visit in arb_times(),
            tz in arb_zone(),
        ) {
            let local_time = LocalTime::parse(&format!("{hour:02}:{minute:02}")).expect("valid");
            let plain = Timing { trigger, offset: Offset::from_minutes(i64::from(offset)).expect("valid"), local_time: None };
            let moved = Timing { local_time: Some(local_time), ..plain };
            let plain = due_at(&plain, &visit, &tz).expect("known").as_datetime().with_timezone(&tz);
            let moved = due_at(&moved, &visit, &tz).expect("known").as_datetime().with_timezone(&tz);
            prop_assert_eq!(plain.date_naive(), moved.date_naive());
            // Equal to the wanted time, or later only when it fell into a gap.
            let wanted = NaiveTime::from_hms_opt(u32::from(hour), u32::from(minute), 0).expect("valid");
            prop_assert!(moved.time() >= wanted);
        }
    }
}
