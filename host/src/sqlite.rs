//! `fermyon:spin/sqlite@2.0.0`: the default database, a SQLite file under the state directory as
//! Spin keeps it (`.spin/sqlite_db.db`).
//!
//! A component without `"default"` in its `sqlite_databases` gets `access-denied`. Each `execute`
//! runs exactly one statement, as in Spin; a text with several statements is an error.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::sqlite as wit;
use crate::manifest::DEFAULT_LABEL;
use crate::pool::{Pool, Pooled};
use crate::state::RequestState;

/// File name of the default database inside the state directory, as Spin names it.
pub const FILE_NAME: &str = "sqlite_db.db";

/// Opens the default database in `state_dir`.
pub fn open(state_dir: &Path) -> anyhow::Result<Arc<Pool>> {
    Pool::open(&state_dir.join(FILE_NAME), "").context("SQLite database")
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
        if database != DEFAULT_LABEL {
            return Ok(Err(wit::Error::NoSuchDatabase));
        }
        let pooled = match self.app.sqlite.get() {
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
