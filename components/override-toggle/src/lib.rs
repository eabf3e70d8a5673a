//! The `override-toggle` Spin component: per-customer automation overrides (inherit, enabled,
//! disabled, with an optional customer timing), the effective view of each automation with its
//! provenance, the history of changes, and the application's OpenAPI document.
//!
//! A thin shell over the core (`mio_shared`): whether an automation is on and when it runs is
//! decided by `mio_shared::rules::resolve` and `mio_shared::plan::plan`; this component parses
//! requests, reads and writes Spin SQLite through `mio_platform`, and answers. It does not run
//! automations (the tick does) and does not own the account rules (customer-api does).
//! This file is only the entry point; see `app` for the request pipeline.

mod app;
mod body;
mod handlers;
mod router;
mod storage;
mod view;

// The SDK's macro generates the `unsafe` export glue of the wasi:http world; our own code
// stays free of `unsafe` (denied crate-wide in Cargo.toml).
#[allow(unsafe_code)]
mod entry {
    use spin_sdk::http::{IncomingRequest, Response};
    use spin_sdk::http_component;

    /// Serves one request (Spin creates a fresh instance for each).
    #[http_component]
    async fn handle(request: IncomingRequest) -> Response {
        crate::app::handle(request).await
    }
}
