//! The `console` Spin component: the business's screens, server-rendered HTML under `/app/`.
//!
//! Customers → customer → Automations, Settings → Automations, the Automations Activity view,
//! customers (with import) and bookings. A thin shell like the API's components: every screen
//! calls the same handlers as the API route it stands for (`mio_api`), so no rule is written a
//! second time for the screens, and renders their answers. Pages work without JavaScript (forms
//! post and redirect back) and load nothing from elsewhere: the one stylesheet ships inside the
//! component, under a strict `Content-Security-Policy`.
//!
//! Signing in exchanges the account's API token for a server-side session (Spin's key-value
//! store): the token never appears in a URL, a page or browser storage. Every form carries the
//! session's CSRF token, checked on POST before anything is read or written.

mod api;
mod app;
mod html;
mod pages;
mod session;

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
