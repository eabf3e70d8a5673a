//! Per-customer automation overrides (inherit, enabled, disabled, with an optional customer
//! timing), the effective view of each automation with its provenance, the history of changes,
//! and the application's OpenAPI document.
//!
//! Whether an automation is on and when it runs is decided by `mio_shared::rules::resolve` and
//! `mio_shared::plan::plan`; this module parses requests, reads and writes Spin SQLite through
//! `mio_platform`, and answers. It does not run automations (the tick does) and does not own the
//! account rules (`customers` does). See `app` for the request pipeline.

pub mod app;
mod body;
pub mod handlers;
mod router;
mod storage;
mod view;
