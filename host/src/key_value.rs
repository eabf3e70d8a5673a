//! `fermyon:spin/key-value@2.0.0`: key-value stores by label, kept in SQLite as Spin keeps them
//! (table `spin_key_value`, one row per store label and key). `default` is a file under the
//! state directory (`.spin/sqlite_key_value.db`); other labels come from the runtime
//! configuration file (`[key_value_store.<label>] type = "spin"`).
//!
//! A component may open only the labels listed in its `key_value_stores`; any other label is
//! `access-denied`, as in Spin; a label no one defined is `no-such-store`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rusqlite::OptionalExtension;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value as wit;
use crate::pool::{Pool, create_parent};
use crate::runtime_config::Location;
use crate::state::RequestState;

/// File name of the default store inside the state directory, as Spin names it.
pub const FILE_NAME: &str = "sqlite_key_value.db";

const INIT: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
);";
const GET: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const SET: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";
const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)";
const KEYS: &str = "SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key";

/// Opens the key-value database in `state_dir`.
pub fn open(state_dir: &Path) -> anyhow::Result<Arc<Pool>> {
    Pool::open(&state_dir.join(FILE_NAME), INIT).context("key-value store")
}

/// Opens a key-value store at `location`, creating the file's folder if needed as Spin does.
pub fn open_store(location: &Location) -> anyhow::Result<Arc<Pool>> {
    match location {
        Location::File(path) => {
            create_parent(path)?;
            Pool::open(path, INIT).with_context(|| format!("key-value store {}", path.display()))
        }
        Location::Memory => Pool::shared_memory(INIT).context("in-memory key-value store"),
    }
}

/// The host side of an open `store` resource.
#[derive(Debug)]
pub struct StoreHandle {
    label: String,
}

fn other(e: impl std::fmt::Display) -> wit::Error {
    wit::Error::Other(e.to_string())
}

impl RequestState {
    fn kv_call<T>(
        &mut self,
        store: &Resource<StoreHandle>,
        f: impl FnOnce(&rusqlite::Connection, &str) -> rusqlite::Result<T>,
    ) -> wasmtime::Result<Result<T, wit::Error>> {
        self.calls.key_value += 1;
        let label = self.table.get(store)?.label.clone();
        let Some(pool) = self.app.key_value.get(&label) else {
            return Ok(Err(wit::Error::NoSuchStore));
        };
        let pooled = match pool.get() {
            Ok(p) => p,
            Err(e) => return Ok(Err(other(format!("{e:#}")))),
        };
        Ok(f(pooled.conn(), &label).map_err(other))
    }
}

impl wit::Host for RequestState {}

impl wit::HostStore for RequestState {
    fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, wit::Error>> {
        self.calls.key_value += 1;
        if !self.component.key_value_stores.contains(&label) {
            return Ok(Err(wit::Error::AccessDenied));
        }
        if !self.app.key_value.contains_key(&label) {
            return Ok(Err(wit::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(StoreHandle { label })?))
    }

    fn get(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::Error>> {
        self.kv_call(&store, |c, label| {
            c.prepare_cached(GET)?
                .query_row((label, &key), |r| r.get(0))
                .optional()
        })
    }

    fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        self.kv_call(&store, |c, label| {
            c.prepare_cached(SET)?.execute((label, &key, &value))?;
            Ok(())
        })
    }

    fn delete(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        self.kv_call(&store, |c, label| {
            c.prepare_cached(DELETE)?.execute((label, &key))?;
            Ok(())
        })
    }

    fn exists(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wit::Error>> {
        self.kv_call(&store, |c, label| {
            c.prepare_cached(EXISTS)?
                .query_row((label, &key), |r| r.get(0))
        })
    }

    fn get_keys(
        &mut self,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, wit::Error>> {
        self.kv_call(&store, |c, label| {
            c.prepare_cached(KEYS)?
                .query_map([label], |r| r.get(0))?
                .collect()
        })
    }

    fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
