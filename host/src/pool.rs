//! A small pool of SQLite connections to one database file, shared by all requests.
//!
//! Opening a connection per request would cost more than most of our queries; Spin's own local
//! SQLite support also keeps connections open. A connection handed back with a transaction still
//! open (a guest that trapped after `BEGIN`) is rolled back first, so no state leaks between
//! requests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// How long a writer waits for another writer before the statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to one SQLite file.
#[derive(Debug)]
pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// Opens (creating if needed) the database at `path` and runs `init` once on it.
    pub fn open(path: &Path, init: &str) -> anyhow::Result<Arc<Pool>> {
        let pool = Arc::new(Pool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        });
        let conn = pool.connect()?;
        conn.execute_batch(init)
            .with_context(|| format!("cannot initialise {}", path.display()))?;
        pool.put(conn);
        Ok(pool)
    }

    fn connect(&self) -> anyhow::Result<Connection> {
        let conn = Connection::open(&self.path)
            .with_context(|| format!("cannot open SQLite database {}", self.path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers run while one writer writes, as several requests do at once.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    /// Takes an idle connection or opens a new one.
    pub fn get(self: &Arc<Self>) -> anyhow::Result<Pooled> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
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
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
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
