//! The `stripe-webhook` Spin component: `POST /webhooks/stripe` takes Stripe's events about the
//! PaymentIntents our attempts created and settles those attempts, so an answer Stripe gave
//! while we were not listening still reaches the ledger, the booking and the activity log.
//!
//! A thin shell: the signature check and the event's meaning are the core's
//! (`mio_shared::webhook`), what an event does to an attempt is the core's state machine
//! (`mio_shared::attempt`), and the writes are `mio_platform::payments`, shared with the tick.
//! Its one outbound host is Stripe, to look a saved card up. This file is only the entry point;
//! see `app` (the request) and `storage` (event de-duplication and the account mapping).

mod app;
mod cards;
mod storage;

// The SDK's macro generates the `unsafe` export glue of the wasi:http world; our own code
// stays free of `unsafe` (denied crate-wide in Cargo.toml).
#[allow(unsafe_code)]
mod entry {
    use spin_sdk::http::{IncomingRequest, Response};
    use spin_sdk::http_component;

    /// Serves one delivery (Spin creates a fresh instance for each).
    #[http_component]
    async fn handle(request: IncomingRequest) -> Response {
        crate::app::handle(request).await
    }
}
