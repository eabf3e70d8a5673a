//! The per-request store data: WASI, `wasi:http`, resources, limits and the calling component.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::calls::HostCalls;
use crate::outbound::AllowedHosts;
use crate::outbound_http::OutboundHooks;
use crate::pool::Pool;

/// What a component is allowed and given, fixed at start-up.
#[derive(Debug)]
pub struct ComponentRuntime {
    /// The component id from `spin.toml`.
    pub id: Arc<str>,
    /// Its `[component.<id>.variables]`, resolved.
    pub variables: HashMap<String, String>,
    /// Its `key_value_stores` labels.
    pub key_value_stores: Vec<String>,
    /// Its `sqlite_databases` labels.
    pub sqlite_databases: Vec<String>,
    /// Its `allowed_outbound_hosts`, resolved.
    pub allowed: Arc<AllowedHosts>,
}

/// The application's storage, shared by every request: every defined label (`default` always,
/// others from the runtime configuration file).
#[derive(Debug)]
pub struct Stores {
    /// Key-value stores by label.
    pub key_value: HashMap<String, Arc<Pool>>,
    /// SQLite databases by label.
    pub sqlite: HashMap<String, Arc<Pool>>,
}

/// Data of one request's `Store`; dropped with the instance when the request ends.
pub struct RequestState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutboundHooks,
    pub(crate) limits: StoreLimits,
    pub(crate) component: Arc<ComponentRuntime>,
    pub(crate) app: Arc<Stores>,
    /// Host calls so far (outbound HTTP is counted by `hooks`).
    pub(crate) calls: HostCalls,
}

impl RequestState {
    /// Fresh state for one invocation of `component`.
    pub fn new(
        component: Arc<ComponentRuntime>,
        app: Arc<Stores>,
        wasi: WasiCtx,
        limits: StoreLimits,
    ) -> Self {
        RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                component: Arc::clone(&component.id),
                allowed: Arc::clone(&component.allowed),
                sent: 0,
            },
            limits,
            component,
            app,
            calls: HostCalls::default(),
        }
    }

    /// Every host call of this request so far.
    pub fn host_calls(&self) -> HostCalls {
        HostCalls {
            outbound_http: self.hooks.sent,
            ..self.calls
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
