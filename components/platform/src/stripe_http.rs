//! Talking to Stripe over `wasi:http`, with timeouts and one overall deadline per request: a
//! Spin host has no request timeout of its own, so an answer that never ends must not hold the
//! tick (and its leases) for ever. A timeout, a refused or dropped connection is reported as
//! no answer, which the core treats as an unknown outcome.

use anyhow::{Context, anyhow};
use mio_shared::attempt::{Reply, SentRequest};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::clocks::monotonic_clock;

/// Time to establish the connection.
const CONNECT_TIMEOUT_NS: u64 = 3_000_000_000;
/// Time until the first byte of the answer: Stripe answers a charge within seconds.
const FIRST_BYTE_TIMEOUT_NS: u64 = 10_000_000_000;
/// Time between two chunks of the answer.
const BETWEEN_BYTES_TIMEOUT_NS: u64 = 5_000_000_000;
/// The whole exchange, from sending to the last byte of the answer, ends within this: past it
/// the request is dropped and reported as no answer.
pub const REQUEST_DEADLINE_NS: u64 = 15_000_000_000;
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The most one blocking write may carry.
const WRITE_CHUNK: usize = 4096;

/// The Stripe endpoint and credentials of this app.
pub struct Stripe {
    scheme: Scheme,
    authority: String,
    secret_key: String,
}

/// An answer: status and body.
struct Answer {
    status: u16,
    body: String,
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
        let (scheme, rest) = api_base
            .split_once("://")
            .ok_or_else(|| anyhow!("stripe_api_base {api_base:?} has no scheme"))?;
        let scheme = match scheme {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => return Err(anyhow!("stripe_api_base scheme {other:?} is not http(s)")),
        };
        Ok(Stripe {
            scheme,
            authority: rest.trim_end_matches('/').to_owned(),
            secret_key,
        })
    }

    /// Sends an attempt's stored request: `POST /v1/payment_intents` with its form body, on
    /// its connected account, with its idempotency key.
    pub fn send(&self, request: &SentRequest) -> Reply {
        self.post(
            mio_shared::stripe::PAYMENT_INTENTS_PATH,
            &request.stripe_account,
            &request.idempotency_key,
            &request.form_body,
        )
    }

    /// `POST path` with form body `form`, on connected account `account`, with
    /// `idempotency_key`.
    pub fn post(&self, path: &str, account: &str, idempotency_key: &str, form: &str) -> Reply {
        reply(self.exchange(
            &Method::Post,
            path,
            &[
                ("stripe-account", account),
                ("idempotency-key", idempotency_key),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(form.as_bytes()),
        ))
    }

    /// `GET path_with_query` on connected account `account`.
    pub fn get(&self, path_with_query: &str, account: &str) -> Reply {
        reply(self.exchange(
            &Method::Get,
            path_with_query,
            &[("stripe-account", account)],
            None,
        ))
    }

    fn exchange(
        &self,
        method: &Method,
        path_with_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        let authorization = format!("Bearer {}", self.secret_key);
        let version = mio_shared::stripe::API_VERSION;
        let mut entries: Vec<(String, Vec<u8>)> = vec![
            ("authorization".into(), authorization.into_bytes()),
            ("stripe-version".into(), version.as_bytes().to_vec()),
        ];
        entries.extend(
            headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec())),
        );
        // A known body goes with its length rather than chunked, as Stripe's own libraries
        // send it (some gateways refuse chunked request bodies).
        if let Some(body) = body {
            entries.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&entries).map_err(|e| anyhow!("headers: {e:?}"))?;
        let request = OutgoingRequest::new(fields);
        let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| anyhow!("cannot set {what}"));
        set(request.set_method(method), "method")?;
        set(request.set_scheme(Some(&self.scheme)), "scheme")?;
        set(request.set_authority(Some(&self.authority)), "authority")?;
        set(request.set_path_with_query(Some(path_with_query)), "path")?;
        let outgoing_body = request
            .body()
            .map_err(|()| anyhow!("request body taken twice"))?;
        let options = RequestOptions::new();
        set(
            options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS)),
            "connect timeout",
        )?;
        set(
            options.set_first_byte_timeout(Some(FIRST_BYTE_TIMEOUT_NS)),
            "first byte timeout",
        )?;
        set(
            options.set_between_bytes_timeout(Some(BETWEEN_BYTES_TIMEOUT_NS)),
            "between bytes timeout",
        )?;
        let deadline = monotonic_clock::now().saturating_add(REQUEST_DEADLINE_NS);
        let future = outgoing_handler::handle(request, Some(options))
            .map_err(|e| anyhow!("sending: {e:?}"))?;
        {
            let stream = outgoing_body
                .write()
                .map_err(|()| anyhow!("request body stream taken twice"))?;
            for chunk in body.unwrap_or_default().chunks(WRITE_CHUNK) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| anyhow!("writing the request body: {e:?}"))?;
            }
        }
        OutgoingBody::finish(outgoing_body, None)
            .map_err(|e| anyhow!("finishing the request body: {e:?}"))?;
        wait(&future.subscribe(), deadline)?;
        let response = future
            .get()
            .ok_or_else(|| anyhow!("no answer after waiting"))?
            .map_err(|()| anyhow!("answer taken twice"))?
            .map_err(|e| anyhow!("no answer: {e:?}"))?;
        let status = response.status();
        let incoming = response
            .consume()
            .map_err(|()| anyhow!("answer body taken twice"))?;
        let stream = incoming
            .stream()
            .map_err(|()| anyhow!("answer stream taken twice"))?;
        let mut bytes = Vec::new();
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => wait(&stream.subscribe(), deadline)?,
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_ANSWER_BYTES {
                        return Err(anyhow!("answer over {MAX_ANSWER_BYTES} bytes"));
                    }
                }
                Err(wasi::io::streams::StreamError::Closed) => break,
                Err(e) => return Err(anyhow!("reading the answer: {e:?}")).context("answer"),
            }
        }
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// Waits until `ready` fires or `deadline` (monotonic ns) passes; the latter is an error.
fn wait(ready: &wasi::io::poll::Pollable, deadline: u64) -> anyhow::Result<()> {
    let timer = monotonic_clock::subscribe_instant(deadline);
    let fired = wasi::io::poll::poll(&[ready, &timer]);
    if fired.contains(&0) {
        Ok(())
    } else {
        Err(anyhow!(
            "no complete answer within {} s",
            REQUEST_DEADLINE_NS / 1_000_000_000
        ))
    }
}

fn reply(result: anyhow::Result<Answer>) -> Reply {
    match result {
        Ok(answer) => Reply::Answered {
            status: answer.status,
            body: answer.body,
        },
        Err(error) => Reply::NoAnswer {
            reason: format!("{error:#}"),
        },
    }
}
