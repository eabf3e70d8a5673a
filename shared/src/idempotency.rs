//! `Idempotency-Key` on the API's creating POSTs: which keys are accepted, what makes two
//! requests "the same request" (a fingerprint), and what to do with a request given the key's
//! stored row and `now`: run it, replay the stored answer, refuse a different request (422), say
//! the key is in use (409), or take over a run that died.
//!
//! The rules, as the shell carries them out:
//! - A key belongs to one account; the first request that uses it binds it to its fingerprint
//!   (method, path, body) for [`RETENTION_MINUTES`] (24 hours) from that first use.
//! - The same request again gets the first answer back, marked [`REPLAYED_HEADER`], and runs
//!   nothing; another request with the key is refused ([`Decision::Mismatch`]).
//! - While a run holds the key, the same key is [`Decision::InUse`]; a run that held it for
//!   [`TAKEOVER_AFTER_MILLIS`] without finishing is dead (hosts end a request well before) and a
//!   retry takes its place ([`Decision::TakeOver`]).
//! - An answer is stored only when it is the result of running the request
//!   ([`Disposition::Store`]); otherwise the key is released and a retry of the same request
//!   runs again.
//!
//! Pure: no SQL, no HTTP, no clock. The shell loads the row, asks [`decide`], claims the key
//! atomically (replacing only the row it decided on), runs the route, and stores or releases.

use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use std::fmt;

/// The request header, as documented.
pub const HEADER: &str = "Idempotency-Key";

/// The response header that marks a replayed answer (Stripe's name for it), and its value.
pub const REPLAYED_HEADER: (&str, &str) = ("idempotent-replayed", "true");

/// The longest key accepted, in characters (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// How long a key stays bound to its first request and answer: 24 hours from its first use.
pub const RETENTION_MINUTES: i64 = 24 * 60;

/// How long a run may hold a key before a retry of the same request may take it over: longer
/// than any host lets one request run (`mio-host` ends it after 30 s), so a run this old has
/// been killed and committed nothing.
pub const TAKEOVER_AFTER_MILLIS: i64 = 60_000;

/// A client's `Idempotency-Key`: 1 to [`MAX_KEY_LEN`] printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why the `Idempotency-Key` header cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The header came more than once.
    #[error("must be sent at most once")]
    Repeated,
    /// Empty, too long, or not printable ASCII.
    #[error("must be 1 to 255 printable ASCII characters")]
    Invalid,
}

impl IdempotencyKey {
    /// Checks one header value.
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let printable = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if value.is_empty() || value.len() > MAX_KEY_LEN || !printable {
            return Err(KeyError::Invalid);
        }
        Ok(Self(value.to_owned()))
    }

    /// The key of a request from every value of its header: `None` without one.
    pub fn from_headers(values: &[String]) -> Result<Option<Self>, KeyError> {
        match values {
            [] => Ok(None),
            [value] => Self::parse(value).map(Some),
            _ => Err(KeyError::Repeated),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What makes two requests the same: lower-case hex SHA-256 of `method`, a line feed, `path`, a
/// line feed, and the body's bytes (neither a method nor a path holds a line feed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a request (`path` without the query).
    pub fn of(method: &str, path: &str, body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update(b"\n");
        hash.update(path.as_bytes());
        hash.update(b"\n");
        hash.update(body);
        Self(crate::encoding::hex_encode(&hash.finalize()))
    }

    /// A fingerprint as stored.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the run that claimed a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// A run holds the key since `started_at`; nothing of it is committed.
    InProgress {
        /// When that run claimed the key.
        started_at: Timestamp,
    },
    /// The answer is stored; the same request replays it.
    Done,
    /// The last run ended without an answer worth keeping (5xx, an upstream failure); the key
    /// stays bound to its request, which may run again.
    Released,
}

/// A key's stored row, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The request it is bound to.
    pub fingerprint: Fingerprint,
    /// Its first use: the 24 hours count from here, and ids derived from the key use it
    /// ([`KeyUse::seed`]).
    pub first_used_at: Timestamp,
    /// Its run.
    pub state: KeyState,
}

impl StoredKey {
    /// Whether the key's 24 hours are over: the row no longer binds it.
    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.first_used_at.plus_minutes(RETENTION_MINUTES)
    }

    /// Whether a run holds the key and may still be alive.
    pub fn running(&self, now: Timestamp) -> bool {
        match self.state {
            KeyState::InProgress { started_at } => {
                now.unix_millis()
                    < started_at
                        .unix_millis()
                        .saturating_add(TAKEOVER_AFTER_MILLIS)
            }
            KeyState::Done | KeyState::Released => false,
        }
    }
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No row binds the key (none, or expired): claim it as a new use and run.
    Run,
    /// The same request's earlier run died or was released: claim the key in its place
    /// (keeping the first use, so derived ids stay the same) and run again.
    TakeOver,
    /// The same request was answered: replay the stored answer, run nothing.
    Replay,
    /// The key is bound to another request (other method, path or body): 422, nothing runs.
    Mismatch,
    /// A run holds the key right now: 409, try again later.
    InUse,
}

/// Decides what a request with fingerprint `request` gets, given the key's stored row.
pub fn decide(stored: Option<&StoredKey>, request: &Fingerprint, now: Timestamp) -> Decision {
    let Some(row) = stored else {
        return Decision::Run;
    };
    if row.running(now) {
        // Even an expired row is someone's live run: never two runs on one key at once.
        return if row.expired(now) || &row.fingerprint == request {
            Decision::InUse
        } else {
            Decision::Mismatch
        };
    }
    if row.expired(now) {
        return Decision::Run;
    }
    if &row.fingerprint != request {
        return Decision::Mismatch;
    }
    match row.state {
        KeyState::Done => Decision::Replay,
        KeyState::Released | KeyState::InProgress { .. } => Decision::TakeOver,
    }
}

/// The use of the key a run under `decision` belongs to: a new one starting `now` for
/// [`Decision::Run`], the stored one for [`Decision::TakeOver`], none for decisions that run
/// nothing.
pub fn key_use(
    decision: Decision,
    key: &IdempotencyKey,
    stored: Option<&StoredKey>,
    now: Timestamp,
) -> Option<KeyUse> {
    let first_used_at = match (decision, stored) {
        (Decision::Run, _) => now,
        (Decision::TakeOver, Some(row)) => row.first_used_at,
        _ => return None,
    };
    Some(KeyUse {
        key: key.clone(),
        first_used_at,
    })
}

/// One use of a key: its first request, and every retry and take-over of it until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    /// The key.
    pub key: IdempotencyKey,
    /// When the use began.
    pub first_used_at: Timestamp,
}

impl KeyUse {
    /// What a route may derive its ids from (and through them, keys it sends upstream): the same
    /// for every run of this use, different once the key expired and is used anew.
    pub fn seed(&self) -> String {
        format!("{}\n{}", self.key, self.first_used_at.unix_millis())
    }
}

/// What becomes of the key once its run answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The answer is the result of running the request: store it (with the run's writes) and
    /// replay it to the same request.
    Store,
    /// The answer says nothing ran to the end (a server error, an upstream failure, or work
    /// left to retry): release the key, so the same request may run again.
    Release,
}

/// The disposition of an answer with `status`; `settled` is false when the route left work
/// that a retry of the same request finishes (a message waiting to be resent).
///
/// Stored: 2xx, and 4xx that judge the request (400, 404, 409 on the resource's state, 422...).
/// Released: 5xx (ours or an upstream's; nothing of the run is committed), and 401, 408, 429,
/// which say the request was not run.
pub fn disposition(status: u16, settled: bool) -> Disposition {
    let judged = (200..500).contains(&status) && !matches!(status, 401 | 408 | 429);
    if judged && settled {
        Disposition::Store
    } else {
        Disposition::Release
    }
}

/// Rows first used at or before this instant are expired at `now` and may be deleted (unless a
/// run still holds them: see [`stalled_before`]).
pub fn expired_before(now: Timestamp) -> Timestamp {
    now.plus_minutes(-RETENTION_MINUTES)
}

/// Runs that claimed a key at or before this instant are dead at `now` ([`StoredKey::running`]
/// is false for them).
pub fn stalled_before(now: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis().saturating_sub(TAKEOVER_AFTER_MILLIS))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
