//! The `feedback` Spin component: `GET /feedback/{token}` shows a customer the rating page of
//! one completed visit, and `POST /feedback/{token}` stores their 1–5 rating and comment, once.
//!
//! Public (the link's token is the only credential), with no outbound host and no variable:
//! it reads the link by the SHA-256 of its token and writes the rating with a single guarded
//! statement; the database's own trigger records the activity entry in that same statement. A
//! thin shell: what a valid answer is and every page's wording and HTML are the core's
//! (`mio_shared::feedback_answer`, `mio_shared::feedback_page`). It does not create links (the
//! tick does, when it sends the rating request) and never learns a token it was not sent. This
//! file is only the entry point; see `app` (the request) and `storage` (the SQL).

mod app;
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
