//! The `override-toggle` Spin component: per-customer automation overrides, their effective
//! view and history, and the application's OpenAPI document.
//!
//! Only the entry point: the routes are `mio_api::overrides`'s, which the `console` component's
//! screens call too.

// The SDK's macro generates the `unsafe` export glue of the wasi:http world; our own code
// stays free of `unsafe` (denied crate-wide in Cargo.toml).
#[allow(unsafe_code)]
mod entry {
    use spin_sdk::http::{IncomingRequest, Response};
    use spin_sdk::http_component;

    /// Serves one request (Spin creates a fresh instance for each).
    #[http_component]
    async fn handle(request: IncomingRequest) -> Response {
        mio_api::overrides::app::handle(request).await
    }
}
