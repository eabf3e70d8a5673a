//! Talking to Stripe over [`crate::outbound`] (timeouts and one overall deadline per request).
//! A timeout, a refused or dropped connection is reported as no answer, which the core treats
//! as an unknown outcome.

use crate::outbound::{self, Origin};
use anyhow::{Context, anyhow};
use mio_shared::attempt::{Reply, SentRequest};
use spin_sdk::wit::wasi::http0_2_0::types::Method;

/// The whole exchange ends within this (see [`outbound::REQUEST_DEADLINE_NS`]).
pub const REQUEST_DEADLINE_NS: u64 = outbound::REQUEST_DEADLINE_NS;

/// The Stripe endpoint and credentials of this app.
pub struct Stripe {
    origin: Origin,
    secret_key: String,
}

impl Stripe {
    /// From the `stripe_api_base` and `stripe_secret_key` variables.
    pub fn from_variables() -> anyhow::Result<Stripe> {
        Stripe::new(
            &spin_sdk::variables::get("stripe_api_base").context("the stripe_api_base variable")?,
            crate::system::secret_variable("stripe_secret_key")
                .ok_or_else(|| anyhow!("the stripe_secret_key variable is not set"))?,
        )
    }

    /// From the `stripe_api_base` (`scheme://host[:port]`) and secret key variables.
    pub fn new(api_base: &str, secret_key: String) -> anyhow::Result<Stripe> {
        Ok(Stripe {
            origin: Origin::parse(api_base, "stripe_api_base")?,
            secret_key,
        })
    }
    /// Sends an attempt's stored request: `POST /v1/payment_intents` with its form body, on
    /// its connected account, with its idempotency key.
    pub fn send(&self, request: &SentRequest) -> Reply {
        answer(self.start_send(request).finish())
    }

    /// [`Stripe::send`] without waiting: the answer is read by [`outbound::Pending::finish`]
    /// (see [`answer`]), so many can be in flight at once.
    pub fn start_send(&self, request: &SentRequest) -> outbound::Pending {
        self.start_post(
            mio_shared::stripe::PAYMENT_INTENTS_PATH,
            &request.stripe_account,
            &request.idempotency_key,
            &request.form_body,
        )
    }

    /// `POST path` with form body `form`, on connected account `account`, with
    /// `idempotency_key`.
    pub fn post(&self, path: &str, account: &str, idempotency_key: &str, form: &str) -> Reply {
        answer(
            self.start_post(path, account, idempotency_key, form)
                .finish(),
        )
    }

    fn start_post(
        &self,
        path: &str,
        account: &str,
        idempotency_key: &str,
        form: &str,
    ) -> outbound::Pending {
        self.start(
            &Method::Post,
            path,
            &[
                ("stripe-account", account),
                ("idempotency-key", idempotency_key),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(form.as_bytes()),
        )
    }

    /// `GET path_with_query` on connected account `account`.
    pub fn get(&self, path_with_query: &str, account: &str) -> Reply {
        answer(self.start_get(path_with_query, account).finish())
    }

    /// [`Stripe::get`] without waiting.
    pub fn start_get(&self, path_with_query: &str, account: &str) -> outbound::Pending {
        self.start(
            &Method::Get,
            path_with_query,
            &[("stripe-account", account)],
            None,
        )
    }

    fn start(
        &self,
        method: &Method,
        path_with_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> outbound::Pending {
        let authorization = format!("Bearer {}", self.secret_key);
        let mut all = vec![
            ("authorization", authorization.as_str()),
            ("stripe-version", mio_shared::stripe::API_VERSION),
        ];
        all.extend_from_slice(headers);
        outbound::start(method, &self.origin, path_with_query, &all, body)
    }
}

/// What a finished Stripe request tells the core. Stripe's outcomes do not tell "never sent"
/// apart: not knowing is not knowing either way, and the core settles by lookup.
pub fn answer(finished: outbound::Finished) -> Reply {
    match finished.reply {
        outbound::Reply::Answered { status, body } => Reply::Answered { status, body },
        outbound::Reply::NotSent { reason } | outbound::Reply::NoAnswer { reason } => {
            Reply::NoAnswer { reason }
        }
    }
}
