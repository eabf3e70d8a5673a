//! The key-value fast path: one tick at a time per app, as a hint only.
//!
//! Spin's key-value store has no compare-and-swap, so two ticks can both believe they hold the
//! lease; correctness never depends on it (the SQL claim is atomic). It only spares the
//! database the work of overlapping cron firings.

use mio_shared::Timestamp;
use spin_sdk::key_value::Store;

const LEASE_KEY: &str = "tick:lease";

/// How long a lease is honoured: a little under the cron period, so a crashed tick's lease never
/// delays the next minute's run.
pub const LEASE_SECONDS: i64 = 55;

/// Whether another owner holds a fresh lease; otherwise records ours.
pub fn held_by_other(owner: &str, now: Timestamp) -> anyhow::Result<bool> {
    let store = Store::open_default()?;
    if let Some(bytes) = store.get(LEASE_KEY)? {
        let text = String::from_utf8_lossy(&bytes);
        if let Some((other, until)) = text.split_once(' ')
            && other != owner
            && until
                .parse::<i64>()
                .is_ok_and(|until| until > now.unix_millis())
        {
            return Ok(true);
        }
    }
    let until = now.unix_millis() + LEASE_SECONDS * 1000;
    store.set(LEASE_KEY, format!("{owner} {until}").as_bytes())?;
    Ok(false)
}

/// Gives the lease up if it is still ours, so the next tick need not wait for it to expire.
pub fn release(owner: &str) -> anyhow::Result<()> {
    let store = Store::open_default()?;
    if let Some(bytes) = store.get(LEASE_KEY)?
        && String::from_utf8_lossy(&bytes).split(' ').next() == Some(owner)
    {
        store.delete(LEASE_KEY)?;
    }
    Ok(())
}
