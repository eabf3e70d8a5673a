//! The `card-api` Spin component: a customer's card on file, over HTTP. It adds a card by its
//! Stripe id (`PUT /api/v1/customers/{id}/payment-method`) and makes "request payment method"
//! links, setup-mode Stripe Checkout Sessions, sent to the customer when asked
//! (`POST`, `GET /api/v1/customers/{id}/payment-method-requests`).
//!
//! A thin shell: it parses requests into the core's types (`mio_shared`), asks Stripe and the
//! notification providers, reads and writes Spin SQLite through `mio_platform`, and maps errors
//! to problem responses. It is its own component for least privilege: these routes are the only
//! API routes that need outbound network access (Stripe, e-mail, SMS, business webhooks), so the
//! `customer-api` component, which holds the customer list, has none. It does not own the
//! customers (customer-api does) and does not learn of cards saved through a link (the Stripe
//! webhook does). This file is only the entry point; see `app` for the request pipeline.

mod app;
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
