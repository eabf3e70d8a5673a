//! A native SQLite connection behind the same [`Sql`] trait, so unit tests run the real SQL
//! (feature `test-db`; never part of a component build).

use crate::db::Sql;
use spin_sdk::sqlite::{QueryResult, RowResult, Value};

/// An SQLite database for one test.
pub struct TestDb(rusqlite::Connection);

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDb {
    /// A fresh in-memory database.
    pub fn new() -> Self {
        Self(rusqlite::Connection::open_in_memory().expect("in-memory sqlite"))
    }

    /// Forgets that the newest migration ran: the database as the release before left it.
    pub fn roll_back_latest_migration(&self) {
        self.execute(
            "DELETE FROM schema_migrations WHERE version = ?1",
            &[Value::Integer(crate::migrations::latest())],
        )
        .expect("older schema");
    }

    /// A database file that several connections may share.
    pub fn open(path: &std::path::Path) -> Self {
        Self(rusqlite::Connection::open(path).expect("sqlite file"))
    }
}

impl Sql for TestDb {
    fn execute(&self, statement: &str, params: &[Value]) -> anyhow::Result<QueryResult> {
        let mut prepared = self.0.prepare(statement)?;
        let columns: Vec<String> = prepared
            .column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let params = params.iter().map(|value| match value {
            Value::Integer(n) => rusqlite::types::Value::Integer(*n),
            Value::Real(x) => rusqlite::types::Value::Real(*x),
            Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
            Value::Null => rusqlite::types::Value::Null,
        });
        let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                values.push(match row.get::<_, rusqlite::types::Value>(index)? {
                    rusqlite::types::Value::Integer(n) => Value::Integer(n),
                    rusqlite::types::Value::Real(x) => Value::Real(x),
                    rusqlite::types::Value::Text(s) => Value::Text(s),
                    rusqlite::types::Value::Blob(b) => Value::Blob(b),
                    rusqlite::types::Value::Null => Value::Null,
                });
            }
            out.push(RowResult { values });
        }
        Ok(QueryResult { columns, rows: out })
    }
}
