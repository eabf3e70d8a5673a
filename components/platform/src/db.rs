//! Spin SQLite: the connection, reading rows by column name, and parameter helpers.
//!
//! Portability rules (the same code runs on SQLite files and on libSQL/Turso): each `execute`
//! is one statement; no transaction spans several calls; every write that must be atomic is a
//! single statement (with `RETURNING` where the caller needs the row). One exception, in one
//! place: a creating route run under an `Idempotency-Key` commits its writes and its stored
//! answer in one `BEGIN IMMEDIATE` … `COMMIT` on the request's connection
//! ([`crate::idempotency`]). Spin keeps one connection per `open` (libSQL's remote client holds
//! one Hrana stream open for a transaction), so the statements in between belong to it.

use crate::migrations;
use anyhow::{Context, anyhow};
use mio_shared::Timestamp;
use spin_sdk::sqlite::{Connection, QueryResult, Value};

/// Runs one SQL statement with positional parameters. Implemented by the Spin connection,
/// and by a native SQLite connection in unit tests.
pub trait Sql {
    /// Executes `statement`, returning its rows (if any).
    fn execute(&self, statement: &str, params: &[Value]) -> anyhow::Result<QueryResult>;
}

/// The Spin `default` SQLite database.
pub struct SpinDb(Connection);

/// How long a statement keeps retrying while another writer holds the database (another
/// replica on the same file, or a tick's claim): far above any one statement here, far below
/// a request's patience.
const BUSY_PATIENCE_MS: u64 = 5_000;

impl Sql for SpinDb {
    /// Runs the statement; while the database is busy (`SQLITE_BUSY` / `SQLITE_LOCKED`: another
    /// connection is writing), waits and runs it again, for up to [`BUSY_PATIENCE_MS`]. Safe
    /// because every statement here is its own transaction: a busy one changed nothing. Spin
    /// does not promise a busy timeout on its connections, so the component does not rely on
    /// one.
    fn execute(&self, statement: &str, params: &[Value]) -> anyhow::Result<QueryResult> {
        let mut waited_ms = 0;
        let mut pause_ms = 2;
        loop {
            match self.0.execute(statement, params) {
                Ok(result) => return Ok(result),
                Err(error) if is_busy(&error) && waited_ms < BUSY_PATIENCE_MS => {
                    crate::system::sleep_ms(pause_ms);
                    waited_ms += pause_ms;
                    pause_ms = (pause_ms * 2).min(100);
                }
                // The host's message may quote SQL; it goes to the log via
                // `ApiError::Internal` only.
                Err(error) => return Err(anyhow!("sqlite: {error:?}")),
            }
        }
    }
}

/// Whether SQLite refused a statement because another connection holds a lock.
fn is_busy(error: &spin_sdk::sqlite::Error) -> bool {
    let text = format!("{error:?}").to_ascii_lowercase();
    text.contains("database is locked")
        || text.contains("database table is locked")
        || text.contains("sqlite_busy")
        || text.contains("database is busy")
}

/// Opens the default database and brings its schema up to date (one statement when it is).
pub fn open(now: Timestamp) -> anyhow::Result<SpinDb> {
    let db = connect()?;
    migrations::ensure(&db, now).context("migrating the schema")?;
    Ok(db)
}

/// Opens the default database without checking the schema: the caller checks it in its own
/// first statement ([`migrations::SCHEMA_VERSION_COLUMN`]).
pub fn connect() -> anyhow::Result<SpinDb> {
    Ok(SpinDb(
        Connection::open_default()
            .map_err(|e| anyhow!("sqlite: {e:?}"))
            .context("opening the default database")?,
    ))
}

/// One row of a result, with its values looked up by column name.
pub struct Record<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Record<'a> {
    /// Every row of `result`.
    pub fn all(result: &'a QueryResult) -> impl Iterator<Item = Record<'a>> {
        result.rows.iter().map(|row| Record {
            columns: &result.columns,
            values: &row.values,
        })
    }

    fn value(&self, column: &str) -> anyhow::Result<&'a Value> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| anyhow!("column `{column}` missing from the result"))
    }

    /// A `NOT NULL` text column.
    pub fn text(&self, column: &str) -> anyhow::Result<String> {
        self.optional_text(column)?
            .ok_or_else(|| anyhow!("column `{column}` is NULL"))
    }

    /// A nullable text column.
    pub fn optional_text(&self, column: &str) -> anyhow::Result<Option<String>> {
        match self.value(column)? {
            Value::Text(text) => Ok(Some(text.clone())),
            Value::Null => Ok(None),
            other => Err(anyhow!("column `{column}` is not text: {other:?}")),
        }
    }

    /// An integer column.
    pub fn integer(&self, column: &str) -> anyhow::Result<i64> {
        match self.value(column)? {
            Value::Integer(n) => Ok(*n),
            other => Err(anyhow!("column `{column}` is not an integer: {other:?}")),
        }
    }

    /// A 0/1 integer column.
    pub fn boolean(&self, column: &str) -> anyhow::Result<bool> {
        Ok(self.integer(column)? != 0)
    }

    /// A timestamp stored as RFC 3339 text.
    pub fn timestamp(&self, column: &str) -> anyhow::Result<Timestamp> {
        let text = self.text(column)?;
        Timestamp::parse(&text).with_context(|| format!("column `{column}` holds {text:?}"))
    }

    /// A nullable BLOB column (a TEXT value reads as its UTF-8 bytes).
    pub fn optional_blob(&self, column: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.value(column)? {
            Value::Blob(bytes) => Ok(Some(bytes.clone())),
            Value::Text(text) => Ok(Some(text.clone().into_bytes())),
            Value::Null => Ok(None),
            other => Err(anyhow!("column `{column}` is not a blob: {other:?}")),
        }
    }

    /// A nullable integer column.
    pub fn optional_integer(&self, column: &str) -> anyhow::Result<Option<i64>> {
        match self.value(column)? {
            Value::Integer(n) => Ok(Some(*n)),
            Value::Null => Ok(None),
            other => Err(anyhow!("column `{column}` is not an integer: {other:?}")),
        }
    }

    /// An instant stored as integer Unix milliseconds (the columns that are compared).
    pub fn instant(&self, column: &str) -> anyhow::Result<Timestamp> {
        self.optional_instant(column)?
            .ok_or_else(|| anyhow!("column `{column}` is NULL"))
    }

    /// A nullable instant stored as integer Unix milliseconds.
    pub fn optional_instant(&self, column: &str) -> anyhow::Result<Option<Timestamp>> {
        self.optional_integer(column)?
            .map(|millis| {
                Timestamp::from_unix_millis(millis)
                    .ok_or_else(|| anyhow!("column `{column}` holds {millis}, out of range"))
            })
            .transpose()
    }
}

/// A text parameter.
pub fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// A nullable text parameter.
pub fn optional_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

/// An instant parameter, as Unix milliseconds.
pub fn instant(value: Timestamp) -> Value {
    Value::Integer(value.as_datetime().timestamp_millis())
}

/// A nullable instant parameter.
pub fn optional_instant(value: Option<Timestamp>) -> Value {
    value.map_or(Value::Null, instant)
}

/// An RFC 3339 text parameter (the `created_at` / `updated_at` columns).
pub fn rfc3339(value: Timestamp) -> Value {
    Value::Text(value.to_string())
}

/// A 0/1 parameter.
pub fn boolean(value: bool) -> Value {
    Value::Integer(i64::from(value))
}
