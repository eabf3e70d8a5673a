//! What the core may not touch: the wall clock, randomness and Spin variables.

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
    match spin_sdk::variables::get(ADMIN_TOKEN_VARIABLE) {
        Ok(token) if !token.is_empty() => Some(token),
        Ok(_) => {
            eprintln!(
                "customer-api: variable `{ADMIN_TOKEN_VARIABLE}` is empty; admin routes are locked"
            );
            None
        }
        Err(error) => {
            eprintln!(
                "customer-api: variable `{ADMIN_TOKEN_VARIABLE}` unavailable ({error}); admin routes are locked"
            );
            None
        }
    }
}
