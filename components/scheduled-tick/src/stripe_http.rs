//! Talking to Stripe over `wasi:http`, blocking, with timeouts well under the host's request
//! limit. A timeout, a refused or dropped connection is reported as a transport failure, which
//! the caller treats as an unknown outcome.

use anyhow::{Context, anyhow};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

/// Time to establish the connection.
const CONNECT_TIMEOUT_NS: u64 = 3_000_000_000;
/// Time until the first byte of the answer: Stripe answers a charge within seconds.
const FIRST_BYTE_TIMEOUT_NS: u64 = 10_000_000_000;
/// Time between two chunks of the answer.
const BETWEEN_BYTES_TIMEOUT_NS: u64 = 5_000_000_000;
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
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl Stripe {
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

    /// `POST path` with a form body, on connected account `account`, with `idempotency_key`.
    pub fn post_form(
        &self,
        path: &str,
        account: &str,
        idempotency_key: &str,
        form: &str,
    ) -> anyhow::Result<Answer> {
        self.send(
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
    pub fn get(&self, path_with_query: &str, account: &str) -> anyhow::Result<Answer> {
        self.send(
            &Method::Get,
            path_with_query,
            &[("stripe-account", account)],
            None,
        )
    }

    fn send(
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
        future.subscribe().block();
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
            match stream.blocking_read(64 * 1024) {
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
