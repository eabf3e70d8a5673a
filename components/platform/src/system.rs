//! What the core may not touch: the wall clock, randomness and Spin variables.
//!
//! Components read these once per request and pass the values into the core.

use anyhow::{Context, anyhow};
use mio_shared::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Spin variable holding the bootstrap admin token.
const ADMIN_TOKEN_VARIABLE: &str = "admin_token";

/// The current time, read once per request and passed into the core.
pub fn now() -> anyhow::Result<Timestamp> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let millis = i64::try_from(since_epoch.as_millis()).context("the clock is out of range")?;
    Timestamp::from_unix_millis(millis).ok_or_else(|| anyhow!("the clock is out of range"))
}

/// `N` bytes from the host's cryptographically secure random source.
pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness available: {e}"))?;
    Ok(bytes)
}

/// The configured admin token; `None` (and a log line) when it is not set.
pub fn admin_token() -> Option<String> {
    secret_variable(ADMIN_TOKEN_VARIABLE)
}

/// A non-empty secret Spin variable; `None` (and a log line) when it is unset or empty, so a
/// missing secret locks the routes that need it instead of opening them.
pub fn secret_variable(name: &str) -> Option<String> {
    match spin_sdk::variables::get(name) {
        Ok(value) if !value.is_empty() => Some(value),
        Ok(_) => {
            eprintln!("variable `{name}` is empty; the routes that need it are locked");
            None
        }
        Err(error) => {
            eprintln!(
                "variable `{name}` unavailable ({error}); the routes that need it are locked"
            );
            None
        }
    }
}

/// Blocks this instance for `ms` milliseconds (a monotonic-clock timer).
pub fn sleep_ms(ms: u64) {
    let timer = wasi::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000));
    timer.block();
}
