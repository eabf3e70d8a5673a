//! `Idempotency-Key` on the creating POSTs: the `idempotency_keys` table, and [`run`], which
//! carries out the core's rules (`mio_shared::idempotency`) around one route.
//!
//! [`run`] loads the key's row, asks the core what to do, claims the key with a compare-and-set
//! on the row it decided on (of two requests at once, exactly one claims it; the other decides
//! again and finds it in use), runs the route, then stores its answer or releases the key as the
//! core's [`disposition`] says. Replays carry `Idempotent-Replayed: true`.
//!
//! - [`Atomicity::Transaction`]: the route's writes and its stored answer commit in one
//!   `BEGIN IMMEDIATE` … `COMMIT`, and the answer is stored only while this run still holds the
//!   key. So nothing is ever created without its answer stored, and a run that lost its key
//!   (taken over after it stalled) commits nothing. A crash commits nothing either; the row
//!   stays claimed until a retry takes it over.
//! - [`Atomicity::Repeatable`]: for a route that calls another service between its writes (it
//!   may not hold the database's write lock that long). Its writes commit one by one and must be
//!   safe to repeat: its ids, and the keys it sends upstream, derive from the key's use
//!   ([`KeyUse::seed`]), so a retry that takes over a dead run finds what that run made.
//!
//! What is not here: the rules (which decision, what is stored) are the core's; which routes
//! run under a key is the component's.

use crate::db::{Record, Sql, instant, text};
use crate::error::ApiError;
use crate::request::Incoming;
use crate::system;
use anyhow::{Context, anyhow};
use mio_shared::idempotency::{
    Decision, Disposition, Fingerprint, HEADER, IdempotencyKey, KeyState, KeyUse, REPLAYED_HEADER,
    StoredKey, decide, disposition, expired_before, key_use, stalled_before,
};
use mio_shared::{FieldError, Timestamp};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Value;

/// How a route's writes commit; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// In one transaction with the stored answer.
    Transaction,
    /// One by one, each safe to repeat under the same key use.
    Repeatable,
}

/// A route's answer, and whether the route left work that a retry of the same request
/// finishes (then the answer is not stored and the key is released).
#[derive(Debug)]
pub struct Answer {
    /// The response.
    pub response: Response,
    /// False when a retry has work left to do (a message waiting to be resent).
    pub settled: bool,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer {
            response,
            settled: true,
        }
    }
}

/// A creating request's `Idempotency-Key` (checked) and what identifies its route, read before
/// its body.
#[derive(Debug, Clone)]
pub struct Keyed {
    key: Option<IdempotencyKey>,
    method: String,
    path: String,
}

impl Keyed {
    /// Reads the request's key: none, or exactly one valid one (else 400 on `Idempotency-Key`,
    /// before the body is read).
    pub fn of(request: &Incoming) -> Result<Self, ApiError> {
        let key = IdempotencyKey::from_headers(&request.idempotency_key).map_err(|error| {
            ApiError::Validation(vec![FieldError::new(HEADER, error.to_string())])
        })?;
        Ok(Keyed {
            key,
            method: request.method.to_string(),
            path: request.path.clone(),
        })
    }

    /// The key a form carries (the console puts a fresh one in every creating form it shows, so
    /// a form sent twice, by a double click or a reload, creates once), for the API route
    /// `method` and `path` it stands for; an empty key runs unkeyed.
    pub fn of_form(key: &str, method: &str, path: &str) -> Result<Self, ApiError> {
        let key = if key.is_empty() {
            None
        } else {
            IdempotencyKey::from_headers(&[key.to_owned()]).map_err(|error| {
                ApiError::Validation(vec![FieldError::new(HEADER, error.to_string())])
            })?
        };
        Ok(Keyed {
            key,
            method: method.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Runs `route` for the account under the request's key (see [`run`]); `body` is the
    /// request's body as read (empty for a route that takes none).
    pub fn run<A: Into<Answer>>(
        &self,
        db: &impl Sql,
        account_id: &str,
        body: &[u8],
        atomicity: Atomicity,
        now: Timestamp,
        route: impl FnOnce(Option<&KeyUse>) -> Result<A, ApiError>,
    ) -> Result<Response, ApiError> {
        let fingerprint = Fingerprint::of(&self.method, &self.path, body);
        run(
            db,
            account_id,
            self.key.as_ref(),
            &fingerprint,
            atomicity,
            now,
            route,
        )
    }
}

/// How many times a request loads and claims before it gives up as "in use": each lost race
/// means another request claimed or finished the key in between.
const CLAIM_ATTEMPTS: usize = 3;

/// How many expired rows one claim deletes at most.
const PURGE_BATCH: i64 = 100;

const STATE_IN_PROGRESS: &str = "in_progress";
const STATE_DONE: &str = "done";
const STATE_RELEASED: &str = "released";

const SELECT_KEY: &str = "SELECT fingerprint, state, owner, first_used_at, started_at, \
     response_status, response_headers_json, response_body \
     FROM idempotency_keys WHERE account_id = ?1 AND idempotency_key = ?2";

// Inserts the claim, or replaces the row seen (?7 owner, ?8 state) when it is still as seen:
// with no row seen (?7 NULL) an existing row is never replaced.
const CLAIM_KEY: &str = "INSERT INTO idempotency_keys (account_id, idempotency_key, \
     fingerprint, state, owner, first_used_at, started_at) \
     VALUES (?1, ?2, ?3, 'in_progress', ?4, ?5, ?6) \
     ON CONFLICT (account_id, idempotency_key) DO UPDATE SET \
     fingerprint = excluded.fingerprint, state = 'in_progress', owner = excluded.owner, \
     first_used_at = excluded.first_used_at, started_at = excluded.started_at, \
     response_status = NULL, response_headers_json = NULL, response_body = NULL \
     WHERE idempotency_keys.owner = ?7 AND idempotency_keys.state = ?8 \
     RETURNING owner";

// Only the run that holds the key may answer for it.
const COMPLETE_KEY: &str = "UPDATE idempotency_keys SET state = 'done', response_status = ?4, \
     response_headers_json = ?5, response_body = ?6 \
     WHERE account_id = ?1 AND idempotency_key = ?2 AND owner = ?3 AND state = 'in_progress' \
     RETURNING owner";

const RELEASE_KEY: &str = "UPDATE idempotency_keys SET state = 'released' \
     WHERE account_id = ?1 AND idempotency_key = ?2 AND owner = ?3 AND state = 'in_progress'";

// Expired rows (first used at or before ?1) that no live run holds (claimed at or before ?2),
// oldest first, a bounded batch.
const PURGE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE rowid IN (\
     SELECT rowid FROM idempotency_keys WHERE first_used_at <= ?1 \
     AND (state <> 'in_progress' OR started_at <= ?2) ORDER BY first_used_at LIMIT ?3)";

const BEGIN: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";

/// A key's row as stored.
#[derive(Debug, Clone)]
struct Row {
    key: StoredKey,
    owner: String,
    state: String,
    answer: Option<StoredAnswer>,
}

#[derive(Debug, Clone)]
struct StoredAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Runs `route` under the request's `Idempotency-Key` (`fingerprint`: the request's, from the
/// core), or plainly without one. `route` gets the key's use, to derive ids from.
pub fn run<A: Into<Answer>>(
    db: &impl Sql,
    account_id: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &Fingerprint,
    atomicity: Atomicity,
    now: Timestamp,
    route: impl FnOnce(Option<&KeyUse>) -> Result<A, ApiError>,
) -> Result<Response, ApiError> {
    let Some(key) = key else {
        return route(None).map(|answer| answer.into().response);
    };
    let (owner, key_use) = match claim(db, account_id, key, fingerprint, now)? {
        Claim::Replay(response) => return Ok(response),
        Claim::Run { owner, key_use } => (owner, key_use),
    };
    let held = Held {
        db,
        account_id,
        key,
        owner: &owner,
    };
    match atomicity {
        Atomicity::Transaction => held.in_transaction(|| answer_of(route(Some(&key_use)))),
        Atomicity::Repeatable => Ok(held.finish(answer_of(route(Some(&key_use))))),
    }
}

/// A route's result as an answer: its errors are answers too.
fn answer_of<A: Into<Answer>>(result: Result<A, ApiError>) -> Answer {
    match result {
        Ok(answer) => answer.into(),
        Err(error) => error.into_response().into(),
    }
}

enum Claim {
    Replay(Response),
    Run { owner: String, key_use: KeyUse },
}

fn claim(
    db: &impl Sql,
    account_id: &str,
    key: &IdempotencyKey,
    fingerprint: &Fingerprint,
    now: Timestamp,
) -> Result<Claim, ApiError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let row = load(db, account_id, key)?;
        let stored = row.as_ref().map(|r| &r.key);
        let decision = decide(stored, fingerprint, now);
        let use_ = match decision {
            Decision::Replay => {
                let answer = row
                    .and_then(|r| r.answer)
                    .ok_or_else(|| anyhow!("a done idempotency key without its answer"))?;
                return Ok(Claim::Replay(replay(answer)));
            }
            Decision::Mismatch => return Err(ApiError::IdempotencyKeyReused),
            Decision::InUse => return Err(ApiError::IdempotencyKeyInUse),
            Decision::Run | Decision::TakeOver => key_use(decision, key, stored, now)
                .ok_or_else(|| anyhow!("a running decision without a key use"))?,
        };
        if decision == Decision::Run {
            purge(db, now)?;
        }
        let owner = new_owner()?;
        let seen = row.as_ref().map(|r| (r.owner.as_str(), r.state.as_str()));
        if try_claim(db, account_id, key, fingerprint, &use_, seen, &owner, now)? {
            return Ok(Claim::Run {
                owner,
                key_use: use_,
            });
        }
    }
    Err(ApiError::IdempotencyKeyInUse)
}

/// The key, held by this run, while the route runs.
struct Held<'a, D: Sql> {
    db: &'a D,
    account_id: &'a str,
    key: &'a IdempotencyKey,
    owner: &'a str,
}

impl<D: Sql> Held<'_, D> {
    /// Runs the route in a transaction that also stores its answer (or rolls back a 5xx and
    /// releases the key).
    fn in_transaction(&self, route: impl FnOnce() -> Answer) -> Result<Response, ApiError> {
        if let Err(error) = self.db.execute(BEGIN, &[]) {
            self.release();
            return Err(ApiError::Internal(error.context("beginning a transaction")));
        }
        let answer = route();
        let status = *answer.response.status();
        match disposition(status, answer.settled) {
            Disposition::Store => match self.complete(&answer.response) {
                Ok(true) => match self.db.execute(COMMIT, &[]) {
                    Ok(_) => Ok(answer.response),
                    Err(error) => {
                        self.rollback();
                        self.release();
                        Err(ApiError::Internal(
                            error.context("committing a transaction"),
                        ))
                    }
                },
                // Another run took the key over: this one commits nothing.
                Ok(false) => {
                    self.rollback();
                    Err(ApiError::IdempotencyKeyInUse)
                }
                Err(error) => {
                    self.rollback();
                    self.release();
                    Err(ApiError::Internal(error))
                }
            },
            Disposition::Release => {
                // A server error keeps nothing of the run; other answers keep what they report.
                let end = if status >= 500 { ROLLBACK } else { COMMIT };
                if let Err(error) = self.db.execute(end, &[]) {
                    eprintln!("idempotency: ending a released run's transaction: {error:#}");
                    self.rollback();
                }
                self.release();
                Ok(answer.response)
            }
        }
    }

    /// Stores or releases after a route whose writes committed one by one.
    fn finish(&self, answer: Answer) -> Response {
        let status = *answer.response.status();
        match disposition(status, answer.settled) {
            Disposition::Store => match self.complete(&answer.response) {
                Ok(true) => {}
                // Its writes are repeatable: the run that took over answers the same.
                Ok(false) => eprintln!("idempotency: key taken over while its run answered"),
                Err(error) => eprintln!("idempotency: storing an answer: {error:#}"),
            },
            Disposition::Release => self.release(),
        }
        answer.response
    }

    /// Stores the answer, if this run still holds the key.
    fn complete(&self, response: &Response) -> anyhow::Result<bool> {
        let headers: Vec<(&str, &str)> = response
            .headers()
            .filter_map(|(name, value)| value.as_str().map(|value| (name, value)))
            .collect();
        let result = self
            .db
            .execute(
                COMPLETE_KEY,
                &[
                    text(self.account_id),
                    text(self.key.as_str()),
                    text(self.owner),
                    Value::Integer(i64::from(*response.status())),
                    text(&serde_json::to_string(&headers)?),
                    Value::Blob(response.body().to_vec()),
                ],
            )
            .context("storing an idempotent answer")?;
        Ok(!result.rows.is_empty())
    }

    /// Releases the key (if this run still holds it). A failure leaves the row claimed, which a
    /// retry takes over once the take-over time has passed: logged, not fatal.
    fn release(&self) {
        let released = self.db.execute(
            RELEASE_KEY,
            &[
                text(self.account_id),
                text(self.key.as_str()),
                text(self.owner),
            ],
        );
        if let Err(error) = released {
            eprintln!("idempotency: releasing a key: {error:#}");
        }
    }

    fn rollback(&self) {
        if let Err(error) = self.db.execute(ROLLBACK, &[]) {
            eprintln!("idempotency: rolling back: {error:#}");
        }
    }
}

fn load(db: &impl Sql, account_id: &str, key: &IdempotencyKey) -> anyhow::Result<Option<Row>> {
    let result = db
        .execute(SELECT_KEY, &[text(account_id), text(key.as_str())])
        .context("reading an idempotency key")?;
    let Some(row) = Record::all(&result).next() else {
        return Ok(None);
    };
    let state = row.text("state")?;
    let key_state = match state.as_str() {
        STATE_IN_PROGRESS => KeyState::InProgress {
            started_at: row.instant("started_at")?,
        },
        STATE_DONE => KeyState::Done,
        STATE_RELEASED => KeyState::Released,
        other => return Err(anyhow!("idempotency key in unknown state {other:?}")),
    };
    let answer = match (
        row.optional_integer("response_status")?,
        row.optional_text("response_headers_json")?,
        row.optional_blob("response_body")?,
    ) {
        (Some(status), Some(headers), Some(body)) => Some(StoredAnswer {
            status: u16::try_from(status).context("a stored status out of range")?,
            headers: serde_json::from_str(&headers).context("stored answer headers")?,
            body,
        }),
        _ => None,
    };
    Ok(Some(Row {
        key: StoredKey {
            fingerprint: Fingerprint::from_stored(row.text("fingerprint")?),
            first_used_at: row.instant("first_used_at")?,
            state: key_state,
        },
        owner: row.text("owner")?,
        state,
        answer,
    }))
}

#[allow(clippy::too_many_arguments)]
fn try_claim(
    db: &impl Sql,
    account_id: &str,
    key: &IdempotencyKey,
    fingerprint: &Fingerprint,
    key_use: &KeyUse,
    seen: Option<(&str, &str)>,
    owner: &str,
    now: Timestamp,
) -> anyhow::Result<bool> {
    let result = db
        .execute(
            CLAIM_KEY,
            &[
                text(account_id),
                text(key.as_str()),
                text(fingerprint.as_str()),
                text(owner),
                instant(key_use.first_used_at),
                instant(now),
                seen.map_or(Value::Null, |(owner, _)| text(owner)),
                seen.map_or(Value::Null, |(_, state)| text(state)),
            ],
        )
        .context("claiming an idempotency key")?;
    Ok(!result.rows.is_empty())
}

/// Deletes a bounded batch of expired keys (of any account) that no live run holds.
fn purge(db: &impl Sql, now: Timestamp) -> anyhow::Result<()> {
    db.execute(
        PURGE_EXPIRED,
        &[
            instant(expired_before(now)),
            instant(stalled_before(now)),
            Value::Integer(PURGE_BATCH),
        ],
    )
    .context("purging expired idempotency keys")?;
    Ok(())
}

fn new_owner() -> anyhow::Result<String> {
    let bytes: [u8; 16] = system::random_bytes()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn replay(answer: StoredAnswer) -> Response {
    let mut builder = Response::builder();
    builder.status(answer.status);
    for (name, value) in &answer.headers {
        builder.header(name.as_str(), value.as_str());
    }
    builder.header(REPLAYED_HEADER.0, REPLAYED_HEADER.1);
    builder.body(answer.body).build()
}

#[cfg(test)]
mod tests;
