//! The `customer-api` Spin component: account bootstrap, customers (with bulk import),
//! bookings and the account's automation settings, over HTTP.
//!
//! A thin shell: it parses requests into the core's types (`mio_shared`), reads and writes
//! Spin SQLite, and maps errors to problem responses. It makes no business decisions itself,
//! and no outbound requests: the customer's card on file (which asks Stripe and sends links)
//! is the `card-api` component's, so the component that holds the customer list has no
//! outbound network access.
//! This file is only the entry point; see `app` for the request pipeline.

mod app;
mod csv;
mod handlers;
mod router;
mod storage;

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
