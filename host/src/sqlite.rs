//! `fermyon:spin/sqlite@2.0.0`: SQLite databases by label. `default` is a file under the state
//! directory as Spin keeps it (`.spin/sqlite_db.db`); other labels come from the runtime
//! configuration file (`[sqlite_database.<label>] type = "spin"`).
//!
//! A component without the label in its `sqlite_databases` gets `access-denied`; a label no one
//! defined, `no-such-database` (start-up already refuses components using one). Each `execute`
//! runs exactly one statement, as in Spin; a text with several statements is an error.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::sqlite as wit;
use crate::pool::{Pool, Pooled};
use crate::runtime_config::{Location, SqliteDatabase};
use crate::state::RequestState;

/// File name of the default database inside the state directory, as Spin names it.
pub const FILE_NAME: &str = "sqlite_db.db";

/// Opens the default database in `state_dir` (no `ATTACH` restriction: for tests and tools).
pub fn open(state_dir: &Path) -> anyhow::Result<Arc<Pool>> {
    Pool::open(&state_dir.join(FILE_NAME), "").context("SQLite database")
}

/// Opens a database as guests see it, with Spin's `ATTACH` restriction.
pub fn open_database(db: &SqliteDatabase) -> anyhow::Result<Arc<Pool>> {
    match &db.location {
        Location::File(path) => Pool::open_database(path, db.allow_attach_file)
            .with_context(|| format!("SQLite database {}", path.display())),
        Location::Memory => Pool::fresh_memory(db.allow_attach_file),
    }
}

/// Runs statements (such as `mio-host up --sqlite @migrations.sql`) against the database.
pub fn run_batch(pool: &Arc<Pool>, statements: &str) -> anyhow::Result<()> {
    let pooled = pool.get()?;
    pooled.conn().execute_batch(statements)?;
    Ok(())
}

/// The host side of an open `connection` resource: one pooled connection for its lifetime.
#[derive(Debug)]
pub struct ConnectionHandle {
    pooled: Pooled,
}

struct Param<'a>(&'a wit::Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            wit::Value::Integer(i) => ValueRef::Integer(*i),
            wit::Value::Real(f) => ValueRef::Real(*f),
            wit::Value::Text(s) => ValueRef::Text(s.as_bytes()),
            wit::Value::Blob(b) => ValueRef::Blob(b),
            wit::Value::Null => ValueRef::Null,
        }))
    }
}

fn value(v: ValueRef<'_>) -> wit::Value {
    match v {
        ValueRef::Null => wit::Value::Null,
        ValueRef::Integer(i) => wit::Value::Integer(i),
        ValueRef::Real(f) => wit::Value::Real(f),
        ValueRef::Text(t) => wit::Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => wit::Value::Blob(b.to_vec()),
    }
}

fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: &[wit::Value],
) -> rusqlite::Result<wit::QueryResult> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params: Vec<Param<'_>> = parameters.iter().map(Param).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(value))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(wit::RowResult { values });
    }
    Ok(wit::QueryResult { columns, rows: out })
}

impl wit::Host for RequestState {}

impl wit::HostConnection for RequestState {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, wit::Error>> {
        self.calls.sqlite += 1;
        if !self.component.sqlite_databases.contains(&database) {
            return Ok(Err(wit::Error::AccessDenied));
        }
        let Some(pool) = self.app.sqlite.get(&database) else {
            return Ok(Err(wit::Error::NoSuchDatabase));
        };
        let pooled = match pool.get() {
            Ok(p) => p,
            Err(e) => return Ok(Err(wit::Error::Io(format!("{e:#}")))),
        };
        Ok(Ok(self.table.push(ConnectionHandle { pooled })?))
    }

    fn execute(
        &mut self,
        connection: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<wit::Value>,
    ) -> wasmtime::Result<Result<wit::QueryResult, wit::Error>> {
        self.calls.sqlite += 1;
        let handle = self.table.get(&connection)?;
        Ok(execute(handle.pooled.conn(), &statement, &parameters)
            .map_err(|e| wit::Error::Io(e.to_string())))
    }

    fn drop(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
