//! The `scheduled-tick` Spin component: every minute (cron), or on `POST /api/v1/internal/tick`
//! for hosts without cron, it claims the due jobs: it charges payment jobs through Stripe and
//! sends rating requests through the account's notification channels.
//!
//! A thin shell: whether to charge or ask, how much, and what each provider's answer means for
//! the job and the activity log are decided by the core (`mio_shared::charge`,
//! `mio_shared::stripe`, `mio_shared::feedback`, `mio_shared::message`); this component claims
//! jobs (`mio_platform::claims`), loads the core's inputs, sends the requests and stores the
//! answers. It does not plan jobs. This file is only the entry points; see `app` (HTTP), `tick`
//! (the run itself) and `feedback` (one rating request).

mod app;
mod feedback;
mod lease;
mod storage;
mod tick;

// The SDK's macro generates the `unsafe` export glue of the wasi:http world; our own code
// stays free of `unsafe` (denied crate-wide in Cargo.toml).
#[allow(unsafe_code)]
mod entry {
    use spin_sdk::http::{IncomingRequest, Response};
    use spin_sdk::http_component;

    /// Serves `POST /api/v1/internal/tick` (Spin creates a fresh instance for each request).
    #[http_component]
    async fn handle(request: IncomingRequest) -> Response {
        crate::app::handle(request).await
    }
}

/// The cron trigger's guest world (`fermyon:spin-cron`); its export glue is `unsafe` too.
#[allow(unsafe_code)]
mod cron {
    wit_bindgen::generate!({
        path: "../../wit/spin-cron",
        world: "fermyon:spin-cron/spin-cron",
    });

    struct Tick;

    impl Guest for Tick {
        fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
            crate::tick::run_scheduled()
                .map(drop)
                .map_err(|e| Error::Other(format!("{e:#}")))
        }
    }

    export!(Tick);
}
