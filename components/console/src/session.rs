//! Sessions in Spin's key-value store: opened by signing in, read on every request, ended by
//! signing out or by time. The rules (lifetime, cookies, CSRF) are `mio_shared::console`'s.

use anyhow::{Context, anyhow};
use mio_platform::system;
use mio_shared::Timestamp;
use mio_shared::console::{Session, secret, session_key};
use spin_sdk::key_value::Store;

/// A new session for the token hashed as `token_hash`: its id (for the cookie only) and what
/// is kept.
pub fn open(token_hash: &str, now: Timestamp) -> anyhow::Result<(String, Session)> {
    let id = secret(&system::random_bytes()?);
    let session = Session::open(token_hash.to_owned(), secret(&system::random_bytes()?), now);
    store()?
        .set_json(session_key(&id), &session)
        .map_err(|e| anyhow!("storing a session: {e:?}"))?;
    Ok((id, session))
}

/// The live session with this id; an expired one is removed and counts as none.
pub fn find(id: &str, now: Timestamp) -> anyhow::Result<Option<Session>> {
    let store = store()?;
    let key = session_key(id);
    let session: Option<Session> = store
        .get_json(&key)
        .map_err(|e| anyhow!("reading a session: {e:?}"))?;
    match session {
        Some(session) if session.is_live(now) => Ok(Some(session)),
        Some(_) => {
            end(id)?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Ends the session with this id (signing out).
pub fn end(id: &str) -> anyhow::Result<()> {
    store()?
        .delete(&session_key(id))
        .map_err(|e| anyhow!("ending a session: {e:?}"))
}

fn store() -> anyhow::Result<Store> {
    Store::open_default()
        .map_err(|e| anyhow!("{e:?}"))
        .context("opening the key-value store")
}
