//! The business console's rules: how long a session lives, what its cookies say, when a form's
//! CSRF token counts, and how the screens read minutes, money and dates. No I/O and no clock:
//! the `console` component passes `now` and stores what these functions decide.

use crate::account::TimeZone;
use crate::charge::{format_money, minor_unit_digits};
use crate::encoding::hex_encode;
use crate::rules::Trigger;
use crate::time::Timestamp;
use crate::timing::local_instant;
use crate::token::secret_matches;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a session lasts after signing in, whatever happens in between.
pub const SESSION_MINUTES: i64 = 8 * 60;

/// The session cookie's name; its value is the session id, known only to the browser (the
/// server keeps a hash of it).
pub const SESSION_COOKIE: &str = "mio_session";

/// The sign-in form's CSRF cookie: the form carries the same value, and a cross-site page can
/// neither read nor (with `SameSite=Strict`) send it.
pub const SIGN_IN_COOKIE: &str = "mio_sign_in";

/// A secret drawn by the caller (a session id, a CSRF token): 64 hex digits of 32 random bytes.
pub fn secret(random: &[u8; 32]) -> String {
    hex_encode(random)
}

/// Where a session is kept: its id's SHA-256, so what the store holds cannot be sent as a
/// cookie.
pub fn session_key(id: &str) -> String {
    format!(
        "console-session:{}",
        hex_encode(&Sha256::digest(id.as_bytes()))
    )
}

/// What the server keeps for one signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The SHA-256 of the API token that signed in: the account is read through it on every
    /// request, so a replaced token ends its sessions.
    pub token_hash: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// When the session ends, in Unix milliseconds.
    pub expires_at_ms: i64,
}

impl Session {
    /// A session opened at `now`.
    pub fn open(token_hash: String, csrf: String, now: Timestamp) -> Self {
        Self {
            token_hash,
            csrf,
            expires_at_ms: now.plus_minutes(SESSION_MINUTES).unix_millis(),
        }
    }

    /// Whether the session still admits requests at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now.unix_millis() < self.expires_at_ms
    }

    /// Whether a submitted form's token is this session's (compared in constant time).
    pub fn admits(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|presented| secret_matches(presented, &self.csrf))
    }
}

/// The `Set-Cookie` value that stores `value` under `name` for `/app` for `max_age_seconds`
/// (`0` clears it): `HttpOnly` and `SameSite=Strict` always, `Secure` unless the console is
/// served on loopback (browsers drop `Secure` cookies on plain `http://127.0.0.1`).
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/app; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The value of cookie `name` in the request's `Cookie` headers, if sent exactly once.
pub fn cookie<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = headers
        .iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value);
    match (found.next(), found.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// Whether the URL the request was made to (Spin's `spin-full-url` header) names a loopback
/// host, where cookies go without `Secure`; anything unreadable counts as not loopback.
pub fn is_loopback(full_url: &str) -> bool {
    let Some((scheme, rest)) = full_url.split_once("://") else {
        return false;
    };
    if scheme != "http" && scheme != "https" {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host == "::1"
        || host
            .strip_prefix("127.")
            .is_some_and(|rest| rest.split('.').count() == 3)
}

/// Where a form may send the browser back to (its `return_to` field): a path inside the
/// console, or `fallback`. Never another origin (`//host`, `/\\host`) or a scheme, so a
/// crafted form cannot make the console redirect elsewhere.
pub fn return_path<'a>(candidate: &'a str, fallback: &'a str) -> &'a str {
    let inside = candidate.starts_with("/app/")
        && !candidate.contains("//")
        && !candidate.contains('\\')
        && candidate.chars().all(|c| c.is_ascii_graphic());
    if inside { candidate } else { fallback }
}

/// The units a screen offers for a span of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
}

impl Unit {
    /// Every unit, in the order the screens list them.
    pub const ALL: [Unit; 3] = [Unit::Minutes, Unit::Hours, Unit::Days];

    /// The form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
            Unit::Days => "days",
        }
    }

    /// The unit a form names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|unit| unit.as_str() == text)
    }

    fn minutes(self) -> i64 {
        match self {
            Unit::Minutes => 1,
            Unit::Hours => 60,
            Unit::Days => 24 * 60,
        }
    }
}

/// `minutes` in the largest unit that divides it: 1440 → (1, days), 90 → (90, minutes).
pub fn in_units(minutes: i64) -> (i64, Unit) {
    [Unit::Days, Unit::Hours]
        .into_iter()
        .find(|unit| minutes != 0 && minutes % unit.minutes() == 0)
        .map_or((minutes, Unit::Minutes), |unit| {
            (minutes / unit.minutes(), unit)
        })
}

/// A number of `unit` as minutes; `None` if it does not fit.
pub fn to_minutes(amount: i64, unit: Unit) -> Option<i64> {
    amount.checked_mul(unit.minutes())
}

/// `minutes` as people say it: `0 minutes`, `1 hour`, `2 days`, `90 minutes`.
pub fn describe_minutes(minutes: i64) -> String {
    let (amount, unit) = in_units(minutes);
    let name = unit.as_str();
    if amount == 1 {
        format!("1 {}", &name[..name.len() - 1])
    } else {
        format!("{amount} {name}")
    }
}

/// When a run happens, as the screens say it: `1 day before the visit starts, at 09:00`,
/// `when the job is marked complete`.
pub fn describe_timing(trigger: Trigger, offset_minutes: i64, local_time: Option<&str>) -> String {
    let span = describe_minutes(offset_minutes);
    let mut words = match (trigger, offset_minutes) {
        (Trigger::BeforeStart, 0) => "when the visit starts".to_owned(),
        (Trigger::BeforeStart, _) => format!("{span} before the visit starts"),
        (Trigger::AfterEnd, 0) => "when the visit ends".to_owned(),
        (Trigger::AfterEnd, _) => format!("{span} after the visit ends"),
        (Trigger::AfterComplete, 0) => "when the job is marked complete".to_owned(),
        (Trigger::AfterComplete, _) => format!("{span} after the job is marked complete"),
    };
    if let Some(at) = local_time {
        words.push_str(&format!(", at {at}"));
    }
    words
}

/// An amount typed in a form (`125`, `125.5`, `125.50`; no sign, no grouping) in minor units
/// of `currency`; `None` if it is not one or has more decimals than the currency.
pub fn parse_amount(text: &str, currency: &str) -> Option<i64> {
    let digits = minor_unit_digits(currency) as usize;
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if fraction.len() > digits || (text.contains('.') && fraction.is_empty()) {
        return None;
    }
    let scale = 10i64.pow(digits as u32);
    let fraction = format!("{fraction:0<digits$}");
    let fraction: i64 = if digits == 0 {
        0
    } else {
        fraction.parse().ok()?
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(scale)?
        .checked_add(fraction)
}

/// An amount in minor units as a form shows it back (`125.50`, `12500`).
pub fn amount_input(minor_units: i64, currency: &str) -> String {
    let shown = format_money(minor_units, currency);
    shown.split(' ').next().unwrap_or_default().to_owned()
}

/// An instant as the account reads it: `Dec 1, 2026, 9:30 AM`.
pub fn local_date_time(zone: &TimeZone, at: Timestamp) -> String {
    at.as_datetime()
        .with_timezone(zone.tz())
        .format("%b %-d, %Y, %-I:%M %p")
        .to_string()
}

/// An instant as an `<input type="datetime-local">` value in the account's zone.
pub fn local_input(zone: &TimeZone, at: Timestamp) -> String {
    at.as_datetime()
        .with_timezone(zone.tz())
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// A `datetime-local` value (`2026-12-01T09:30`, seconds optional) read in the account's zone,
/// as the timing rules read local times (a time the clocks skip reads as the instant they jump
/// to); `None` if it is not one.
pub fn parse_local_input(zone: &TimeZone, text: &str) -> Option<Timestamp> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    local_instant(naive, zone.tz()).map(Timestamp::from_datetime)
}

/// The instant a local date (`2026-12-01`) starts in the account's zone, or, with `next_day`,
/// the instant the day after it starts (so a "to" date includes its whole day).
pub fn local_day_start(zone: &TimeZone, date: &str, next_day: bool) -> Option<Timestamp> {
    let mut day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    if next_day {
        day = day.succ_opt()?;
    }
    local_instant(day.and_time(NaiveTime::MIN), zone.tz()).map(Timestamp::from_datetime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("an RFC 3339 instant")
    }

    fn toronto() -> TimeZone {
        TimeZone::parse("America/Toronto").expect("a known zone")
    }

    #[test]
    fn a_session_lives_eight_hours_then_admits_nothing() {
        let now = at("2026-12-01T10:00:00Z");
        let session = Session::open("h".into(), "c".repeat(32), now);
        assert!(session.is_live(at("2026-12-01T17:59:59Z")));
        assert!(!session.is_live(at("2026-12-01T18:00:00Z")));
    }

    #[test]
    fn a_form_counts_only_with_its_sessions_token() {
        let session = Session::open("h".into(), "a".repeat(32), at("2026-12-01T10:00:00Z"));
        assert!(session.admits(Some(&"a".repeat(32))));
        assert!(!session.admits(Some(&"b".repeat(32))));
        assert!(!session.admits(Some("")));
        assert!(!session.admits(None));
    }

    #[test]
    fn sessions_are_kept_under_a_hash_of_their_id() {
        let id = secret(&[7; 32]);
        assert_eq!(id, "07".repeat(32));
        let key = session_key(&id);
        assert!(key.starts_with("console-session:"));
        assert!(!key.contains(&id));
        assert_eq!(key.len(), "console-session:".len() + 64);
        assert_ne!(key, session_key(&secret(&[8; 32])));
    }

    #[test]
    fn a_session_survives_its_stored_form() {
        let session = Session::open("h".into(), "c".into(), at("2026-12-01T10:00:00Z"));
        let stored = serde_json::to_string(&session).expect("a session serializes");
        assert_eq!(
            serde_json::from_str::<Session>(&stored).expect("a stored session reads"),
            session
        );
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_off_loopback() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "abc", 60, true),
            "mio_session=abc; Path=/app; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            set_cookie(SESSION_COOKIE, "", 0, false),
            "mio_session=; Path=/app; Max-Age=0; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn a_cookie_is_read_only_when_sent_once() {
        let headers = vec!["a=1; mio_session=xyz".to_owned(), "b=2".to_owned()];
        assert_eq!(cookie(&headers, "mio_session"), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
        let twice = vec!["mio_session=1; mio_session=2".to_owned()];
        assert_eq!(cookie(&twice, "mio_session"), None);
    }

    #[test]
    fn loopback_hosts_are_told_apart_from_the_rest() {
        for url in [
            "http://127.0.0.1:3000/app/",
            "http://localhost/app",
            "http://[::1]:8080/app/",
            "https://127.1.2.3/app",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://app.example.com/app/",
            "http://127.0.0.1.example.com/app",
            "http://localhost.example.com/",
            "127.0.0.1",
            "",
            "ftp://127.0.0.1/",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn a_form_returns_only_inside_the_console() {
        let fallback = "/app/bookings/bkg_1";
        for inside in ["/app/customers/cus_1", "/app/bookings?status=scheduled"] {
            assert_eq!(return_path(inside, fallback), inside);
        }
        for elsewhere in [
            "",
            "https://evil.example/app/",
            "//evil.example/app/",
            "/app//evil.example",
            "/app/\\evil.example",
            "/api/v1/customers",
            "/app/customers\r\nSet-Cookie: x=1",
            "/app/ space",
            "app/customers",
        ] {
            assert_eq!(return_path(elsewhere, fallback), fallback, "{elsewhere:?}");
        }
    }

    #[test]
    fn minutes_read_in_the_largest_whole_unit() {
        assert_eq!(in_units(0), (0, Unit::Minutes));
        assert_eq!(in_units(90), (90, Unit::Minutes));
        assert_eq!(in_units(120), (2, Unit::Hours));
        assert_eq!(in_units(2880), (2, Unit::Days));
        assert_eq!(describe_minutes(60), "1 hour");
        assert_eq!(describe_minutes(1440 * 7), "7 days");
        assert_eq!(describe_minutes(1), "1 minute");
        assert_eq!(to_minutes(3, Unit::Days), Some(4320));
        assert_eq!(to_minutes(i64::MAX, Unit::Hours), None);
    }

    proptest! {
        #[test]
        fn units_round_trip(minutes in 0i64..=86_400) {
            let (amount, unit) = in_units(minutes);
            prop_assert_eq!(to_minutes(amount, unit), Some(minutes));
            prop_assert_eq!(Unit::parse(unit.as_str()), Some(unit));
        }

        #[test]
        fn local_inputs_round_trip(seconds in 1_700_000_000i64..1_900_000_000) {
            let instant = Timestamp::from_unix_millis((seconds / 60) * 60_000).expect("in range");
            let zone = toronto();
            let shown = local_input(&zone, instant);
            let read = parse_local_input(&zone, &shown).expect("a shown input reads back");
            // An hour repeated when clocks go back reads as its first occurrence.
            prop_assert!(read == instant || read.plus_minutes(60) == instant);
        }
    }

    #[test]
    fn timing_reads_as_a_sentence() {
        assert_eq!(
            describe_timing(Trigger::BeforeStart, 1440, Some("09:00")),
            "1 day before the visit starts, at 09:00"
        );
        assert_eq!(
            describe_timing(Trigger::BeforeStart, 0, None),
            "when the visit starts"
        );
        assert_eq!(
            describe_timing(Trigger::AfterEnd, 90, None),
            "90 minutes after the visit ends"
        );
        assert_eq!(
            describe_timing(Trigger::AfterComplete, 0, None),
            "when the job is marked complete"
        );
        assert_eq!(
            describe_timing(Trigger::AfterComplete, 120, None),
            "2 hours after the job is marked complete"
        );
    }

    #[test]
    fn amounts_are_typed_in_the_currencys_units() {
        assert_eq!(parse_amount("125", "usd"), Some(12_500));
        assert_eq!(parse_amount("125.5", "usd"), Some(12_550));
        assert_eq!(parse_amount(" 0.05 ", "usd"), Some(5));
        assert_eq!(parse_amount("12500", "jpy"), Some(12_500));
        assert_eq!(parse_amount("1.5", "jpy"), None);
        assert_eq!(parse_amount("1.250", "kwd"), Some(1_250));
        for bad in [
            "",
            "-1",
            "1.",
            ".5",
            "1.234",
            "1,000",
            "abc",
            "1e3",
            "9999999999999",
        ] {
            assert_eq!(parse_amount(bad, "usd"), None, "{bad}");
        }
        assert_eq!(amount_input(12_550, "usd"), "125.50");
        assert_eq!(amount_input(500, "jpy"), "500");
    }

    #[test]
    fn local_times_follow_the_account_zone() {
        let zone = toronto();
        assert_eq!(
            local_date_time(&zone, at("2026-12-01T14:30:00Z")),
            "Dec 1, 2026, 9:30 AM"
        );
        assert_eq!(
            parse_local_input(&zone, "2026-07-01T09:30"),
            Some(at("2026-07-01T13:30:00Z"))
        );
        // 02:30 on 2026-03-08 does not exist in Toronto: the clocks jump from 02:00 to 03:00.
        assert_eq!(
            parse_local_input(&zone, "2026-03-08T02:30"),
            Some(at("2026-03-08T07:00:00Z"))
        );
        assert_eq!(parse_local_input(&zone, "tomorrow"), None);
        assert_eq!(
            local_day_start(&zone, "2026-12-01", false),
            Some(at("2026-12-01T05:00:00Z"))
        );
        assert_eq!(
            local_day_start(&zone, "2026-12-01", true),
            Some(at("2026-12-02T05:00:00Z"))
        );
        assert_eq!(local_day_start(&zone, "12/01/2026", false), None);
    }
}
