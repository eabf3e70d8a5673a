//! `mio-host`: a Spin-compatible host on wasmtime that runs this project's components locally and
//! in tests, from the same `spin.toml` the Spin CLI reads.
//!
//! It provides what our spin-sdk 5.2 components import — `wasi:http` in and out (outbound limited
//! to `allowed_outbound_hosts`), `fermyon:spin/key-value@2.0.0`, `fermyon:spin/sqlite@2.0.0` and
//! `fermyon:spin/variables@2.0.0` — with Spin's routing, request headers, state layout (`.spin/`)
//! and variable providers. A Spin runtime configuration file (`--runtime-config-file`) may define
//! more local SQLite databases and key-value stores (`type = "spin"`) and variables providers;
//! remote kinds (libSQL, Redis, ...) are refused at start-up. It is not a general Spin
//! replacement: no OCI registry, no other trigger types.

pub mod app;
pub mod bindings;
pub mod builder;
pub mod calls;
pub mod cron;
pub mod key_value;
pub mod manifest;
pub mod outbound;
pub mod outbound_http;
pub mod pool;
pub mod router;
pub mod runtime_config;
pub mod server;
pub mod sqlite;
pub mod state;
pub mod template;
pub mod variables;

pub use app::{App, HostConfig, Limits, VariableSource};
pub use calls::{CallTotals, HostCalls};
pub use cron::CronScheduler;
pub use runtime_config::RuntimeConfig;
pub use server::Server;
