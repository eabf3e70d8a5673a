//! A small pool of SQLite connections to one database, shared by all requests.
//!
//! Opening a connection per request would cost more than most of our queries; Spin's own local
//! SQLite support also keeps connections open. A connection handed back with a transaction still
//! open (a guest that trapped after `BEGIN`) is rolled back first, so no state leaks between
//! requests.
//!
//! Connections are set up as Spin sets up its own (`crates/sqlite-inproc/src/lib.rs` and
//! `crates/key-value-spin/src/store.rs` in spinframework/spin): a plain `rusqlite::Connection::open`.
//! Spin sets no busy timeout and no journal mode itself, so what it gets are rusqlite's and the
//! bundled SQLite's defaults, which this pool states explicitly:
//!
//! - busy timeout 5 s: `rusqlite::InnerConnection::open_with_flags` calls
//!   `sqlite3_busy_timeout(db, 5000)` on every connection it opens (rusqlite 0.34, Spin's version,
//!   and 0.37, ours: `src/inner_connection.rs`). A writer blocked by another connection or
//!   process waits up to 5 s before its statement fails with `SQLITE_BUSY` ("database is locked").
//! - journal mode: not set, so SQLite's default rollback journal (`DELETE`) unless the file was
//!   already switched to WAL by someone else (the mode is stored in the file). Two `mio-host`
//!   processes on one state directory therefore lock each other exactly as two Spin processes on
//!   one file do.
//! - foreign keys on: libsqlite3-sys' bundled build compiles SQLite with
//!   `-DSQLITE_DEFAULT_FOREIGN_KEYS=1` (`libsqlite3-sys/build.rs`), for Spin as for us.
//! - `ATTACH` of a file is denied unless the runtime configuration sets `allow_attach_file`
//!   (Spin's authorizer in `crates/sqlite-inproc/src/lib.rs`); key-value stores have no authorizer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// How long a statement waits for another connection's lock before it fails with `SQLITE_BUSY`:
/// rusqlite's default, which is what Spin's connections get (see the module documentation).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a pool's database lives and how its connections are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// A SQLite file; connections are pooled.
    File(PathBuf),
    /// A new, empty in-memory database for every [`Pool::get`], dropped with it: Spin's SQLite
    /// database without a `path` (each `open` creates a new in-process connection).
    FreshMemory,
    /// One in-memory database for the pool's lifetime, on one connection that callers take in
    /// turn: Spin's key-value store without a `path` (one connection per store manager).
    SharedMemory,
}

/// Connections to one SQLite database.
#[derive(Debug)]
pub struct Pool {
    mode: Mode,
    deny_attach_file: bool,
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Pool {
    /// Opens (creating if needed) the database file at `path` and runs `init` once on it.
    pub fn open(path: &Path, init: &str) -> anyhow::Result<Arc<Pool>> {
        Pool::new(Mode::File(path.to_path_buf()), false, init)
    }

    /// Opens the SQLite database file at `path` for guests, creating its folder and the file if
    /// needed, as Spin's `InProcDatabaseLocation::from_path` does; `ATTACH` of another file is
    /// denied unless `allow_attach_file`.
    pub fn open_database(path: &Path, allow_attach_file: bool) -> anyhow::Result<Arc<Pool>> {
        create_parent(path)?;
        Pool::new(Mode::File(path.to_path_buf()), !allow_attach_file, "")
    }

    /// A pool that hands out a new, empty in-memory database on every `get`.
    pub fn fresh_memory(allow_attach_file: bool) -> anyhow::Result<Arc<Pool>> {
        Pool::new(Mode::FreshMemory, !allow_attach_file, "")
    }

    /// One in-memory database shared by every `get`, initialised with `init`.
    pub fn shared_memory(init: &str) -> anyhow::Result<Arc<Pool>> {
        Pool::new(Mode::SharedMemory, false, init)
    }

    /// The database file, if the pool is file-backed.
    pub fn path(&self) -> Option<&Path> {
        match &self.mode {
            Mode::File(path) => Some(path),
            Mode::FreshMemory | Mode::SharedMemory => None,
        }
    }

    fn new(mode: Mode, deny_attach_file: bool, init: &str) -> anyhow::Result<Arc<Pool>> {
        let pool = Arc::new(Pool {
            mode,
            deny_attach_file,
            idle: Mutex::new(Vec::new()),
            returned: Condvar::new(),
        });
        if pool.mode != Mode::FreshMemory {
            let conn = pool.connect()?;
            conn.execute_batch(init)
                .with_context(|| format!("cannot initialise {}", pool.describe()))?;
            pool.put(conn);
        }
        Ok(pool)
    }

    fn describe(&self) -> String {
        match &self.mode {
            Mode::File(path) => path.display().to_string(),
            Mode::FreshMemory | Mode::SharedMemory => "an in-memory database".into(),
        }
    }

    fn connect(&self) -> anyhow::Result<Connection> {
        let conn = match &self.mode {
            Mode::File(path) => Connection::open(path),
            Mode::FreshMemory | Mode::SharedMemory => Connection::open_in_memory(),
        }
        .with_context(|| format!("cannot open SQLite database {}", self.describe()))?;
        // rusqlite already set this on open; stated so it cannot drift (see the module docs).
        // No `journal_mode` and no `foreign_keys` pragma: Spin sets neither.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if self.deny_attach_file {
            conn.authorizer(Some(deny_attach_file));
        }
        Ok(conn)
    }

    /// Takes an idle connection or opens a new one (for the shared in-memory database: waits
    /// until the one connection is handed back).
    pub fn get(self: &Arc<Self>) -> anyhow::Result<Pooled> {
        let conn = match self.mode {
            Mode::File(_) => {
                let idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop();
                match idle {
                    Some(conn) => conn,
                    None => self.connect()?,
                }
            }
            Mode::FreshMemory => self.connect()?,
            Mode::SharedMemory => {
                let mut idle = self
                    .returned
                    .wait_while(
                        self.idle.lock().unwrap_or_else(PoisonError::into_inner),
                        |idle| idle.is_empty(),
                    )
                    .unwrap_or_else(PoisonError::into_inner);
                idle.pop()
                    .context("the in-memory database's connection is gone")?
            }
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: Arc::clone(self),
        })
    }

    fn put(&self, conn: Connection) {
        if !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            eprintln!("[mio-host] dropping a connection left in a transaction: {e}");
            return;
        }
        if self.mode == Mode::FreshMemory {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        self.returned.notify_one();
    }
}

/// Spin's authorizer for SQLite databases without `allow_attach_file`: `ATTACH` is allowed only
/// for a temporary (`""`) or in-memory (`":memory:"`) database.
fn deny_attach_file(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { filename } if !matches!(filename, "" | ":memory:") => {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

pub(crate) fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "cannot create the folder of SQLite database {}",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// A connection borrowed from a [`Pool`]; it goes back when dropped.
#[derive(Debug)]
pub struct Pooled {
    conn: Option<Connection>,
    pool: Arc<Pool>,
}

impl Pooled {
    /// The connection.
    pub fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_spins_busy_timeout_and_journal_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::open_database(&dir.path().join("sub/db.db"), false).expect("pool");
        let conn = pool.get().expect("connection");
        let timeout: i64 = conn
            .conn()
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .expect("busy_timeout");
        assert_eq!(timeout, 5000);
        let mode: String = conn
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "delete");
        let fk: i64 = conn
            .conn()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("foreign_keys");
        assert_eq!(fk, 1);
    }

    #[test]
    fn attaching_a_file_is_denied_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = dir.path().join("other.db");
        let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
        let denied = Pool::open_database(&dir.path().join("a.db"), false).expect("pool");
        let conn = denied.get().expect("connection");
        assert!(conn.conn().execute_batch(&attach).is_err());
        conn.conn()
            .execute_batch("ATTACH DATABASE ':memory:' AS scratch")
            .expect("in-memory attach is allowed");
        let allowed = Pool::open_database(&dir.path().join("b.db"), true).expect("pool");
        allowed
            .get()
            .expect("connection")
            .conn()
            .execute_batch(&attach)
            .expect("attach allowed");
    }

    #[test]
    fn fresh_memory_databases_start_empty_and_shared_memory_keeps_its_rows() {
        let fresh = Pool::fresh_memory(false).expect("pool");
        fresh
            .get()
            .expect("connection")
            .conn()
            .execute_batch("CREATE TABLE t (x)")
            .expect("create");
        fresh
            .get()
            .expect("connection")
            .conn()
            .execute_batch("CREATE TABLE t (x)")
            .expect("a new database has no table t");

        let shared = Pool::shared_memory("CREATE TABLE t (x)").expect("pool");
        shared
            .get()
            .expect("connection")
            .conn()
            .execute_batch("INSERT INTO t VALUES (1)")
            .expect("insert");
        let n: i64 = shared
            .get()
            .expect("connection")
            .conn()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1);
    }
}
