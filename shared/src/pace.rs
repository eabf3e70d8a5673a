//! How fast one tick sends to Stripe: a bounded number of requests in flight, and one shared
//! backoff for the whole run when Stripe says it is sending too fast.
//!
//! Stripe limits the requests per second of an account and answers `429` (code `rate_limit`)
//! past it, before executing anything (<https://docs.stripe.com/rate-limits>). A 429 means the
//! *run* is too fast, not that one job is unlucky, so on a 429 the run halves how many requests
//! it keeps in flight and starts none for a while (the server's `Retry-After` when it gives one,
//! else a backoff that doubles from [`FIRST_PAUSE_MS`] up to [`MAX_PAUSE_MS`]). Each answer
//! that is not a 429 lets one more request in flight again, up to the configured bound
//! (additive increase, multiplicative decrease). The job that got the 429 is the attempt
//! machine's: it waits as `retrying` with its attempt open, and no attempt is used up.
//!
//! Pure: the caller passes the time in milliseconds on any monotonic clock.

/// The default bound on Stripe requests in flight in one run.
pub const DEFAULT_IN_FLIGHT: usize = 32;

/// The most a run may be configured to keep in flight.
pub const MAX_IN_FLIGHT: usize = 256;

/// The first pause after a 429 without `Retry-After`.
pub const FIRST_PAUSE_MS: u64 = 500;

/// The longest pause.
pub const MAX_PAUSE_MS: u64 = 8_000;

/// The bound from the `tick_concurrency` variable: a whole number from 1 to [`MAX_IN_FLIGHT`];
/// empty means [`DEFAULT_IN_FLIGHT`].
pub fn parse_in_flight(text: &str) -> Result<usize, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_IN_FLIGHT);
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_IN_FLIGHT).contains(&n) => Ok(n),
        _ => Err(format!(
            "tick_concurrency must be a whole number from 1 to {MAX_IN_FLIGHT}, not {text:?}"
        )),
    }
}

/// The pace of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    bound: usize,
    limit: usize,
    paused_until_ms: Option<u64>,
    next_pause_ms: u64,
    rate_limited: u32,
}

impl Pace {
    /// A run that may keep up to `bound` requests in flight (at least 1).
    pub fn new(bound: usize) -> Pace {
        let bound = bound.clamp(1, MAX_IN_FLIGHT);
        Pace {
            bound,
            limit: bound,
            paused_until_ms: None,
            next_pause_ms: FIRST_PAUSE_MS,
            rate_limited: 0,
        }
    }

    /// Whether one more request may start at `now_ms` with `in_flight` already out.
    pub fn may_start(&self, in_flight: usize, now_ms: u64) -> bool {
        in_flight < self.limit && self.paused_until_ms.is_none_or(|until| now_ms >= until)
    }

    /// Until when nothing may start (a pause in force at `now_ms`).
    pub fn paused_until(&self, now_ms: u64) -> Option<u64> {
        self.paused_until_ms.filter(|until| *until > now_ms)
    }

    /// How many may be in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many 429s this run met.
    pub fn rate_limited(&self) -> u32 {
        self.rate_limited
    }

    /// An answer came back at `now_ms`: its HTTP status (`None`: no answer) and the server's
    /// `Retry-After` in seconds.
    pub fn observe(&mut self, status: Option<u16>, retry_after_secs: Option<u64>, now_ms: u64) {
        if status == Some(429) {
            self.rate_limited += 1;
            self.limit = (self.limit / 2).max(1);
            let pause = match retry_after_secs {
                Some(secs) => secs.saturating_mul(1000).min(MAX_PAUSE_MS * 4),
                None => self.next_pause_ms,
            };
            self.next_pause_ms = (self.next_pause_ms * 2).min(MAX_PAUSE_MS);
            let until = now_ms.saturating_add(pause);
            self.paused_until_ms = Some(self.paused_until_ms.map_or(until, |u| u.max(until)));
        } else if status.is_some() {
            self.limit = (self.limit + 1).min(self.bound);
            if self.paused_until(now_ms).is_none() {
                self.next_pause_ms = FIRST_PAUSE_MS;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_bound_comes_from_the_variable_within_limits() {
        assert_eq!(parse_in_flight(""), Ok(DEFAULT_IN_FLIGHT));
        assert_eq!(parse_in_flight(" 64 "), Ok(64));
        assert!(parse_in_flight("0").is_err());
        assert!(parse_in_flight("1000").is_err());
        assert!(parse_in_flight("many").is_err());
    }

    #[test]
    fn a_429_halves_the_run_and_pauses_it_then_answers_let_it_grow_back() {
        let mut pace = Pace::new(64);
        assert!(pace.may_start(63, 0));
        assert!(!pace.may_start(64, 0));
        pace.observe(Some(429), None, 1_000);
        assert_eq!(pace.limit(), 32);
        assert!(!pace.may_start(0, 1_499), "paused");
        assert!(pace.may_start(0, 1_500));
        pace.observe(Some(429), None, 1_600);
        assert_eq!(pace.limit(), 16);
        assert_eq!(pace.paused_until(1_600), Some(2_600), "the pause doubled");
        pace.observe(Some(429), Some(3), 1_700);
        assert_eq!(pace.paused_until(1_700), Some(4_700), "Retry-After wins");
        for _ in 0..100 {
            pace.observe(Some(200), None, 5_000);
        }
        assert_eq!(pace.limit(), 64, "never above the bound");
        pace.observe(None, None, 5_000);
        assert_eq!(pace.rate_limited(), 3);
    }

    proptest! {
        #[test]
        fn the_limit_stays_within_one_and_the_bound(
            bound in 1usize..300,
            answers in proptest::collection::vec((proptest::option::of(prop_oneof![Just(200u16), Just(429u16), Just(500u16)]), 0u64..2000), 0..200),
        ) {
            let mut pace = Pace::new(bound);
            let mut now = 0;
            for (status, step) in answers {
                now += step;
                pace.observe(status, None, now);
                prop_assert!(pace.limit() >= 1);
                prop_assert!(pace.limit() <= bound.min(MAX_IN_FLIGHT));
                if status == Some(429) {
                    prop_assert!(!pace.may_start(0, now), "a 429 always pauses the run");
                }
            }
        }
    }
}
