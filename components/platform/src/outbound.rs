//! Outbound HTTP over `wasi:http`, with timeouts and one overall deadline per request: a Spin
//! host has no request timeout of its own, so an answer that never ends must not hold the tick
//! (and its leases) for ever. Used for Stripe ([`crate::stripe_http`]) and the notification
//! providers ([`crate::messages`]).
//!
//! The result ([`Reply`], the core's) says how far the request got: answered, surely not sent
//! (the connection was never made, or the host refused the destination), or sent without a
//! complete answer (timeout, dropped connection), which may have been acted on.

use anyhow::{Context, anyhow};
pub use mio_shared::message::Reply;
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::clocks::monotonic_clock;

/// Time to establish the connection.
const CONNECT_TIMEOUT_NS: u64 = 3_000_000_000;
/// Time until the first byte of the answer.
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

/// Where a request goes: `scheme://authority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    authority: String,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is allowed), as the `*_api_base`
    /// variables hold it; `what` names the variable in errors.
    pub fn parse(base: &str, what: &str) -> anyhow::Result<Origin> {
        let (scheme, rest) = base
            .split_once("://")
            .ok_or_else(|| anyhow!("{what} {base:?} has no scheme"))?;
        let https = match scheme {
            "https" => true,
            "http" => false,
            other => return Err(anyhow!("{what} scheme {other:?} is not http(s)")),
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(anyhow!("{what} {base:?} is not scheme://host[:port]"));
        }
        Ok(Origin {
            https,
            authority: authority.to_owned(),
        })
    }

    fn scheme(&self) -> Scheme {
        if self.https {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }
}

/// One request; `body` goes with its `Content-Length` (some gateways refuse chunked bodies).
pub fn exchange(
    method: &Method,
    origin: &Origin,
    path_with_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    match send(method, origin, path_with_query, headers, body) {
        Ok(answer) => answer,
        Err(Failure::NotSent(error)) => Reply::NotSent {
            reason: format!("{error:#}"),
        },
        Err(Failure::Unknown(error)) => Reply::NoAnswer {
            reason: format!("{error:#}"),
        },
    }
}

enum Failure {
    NotSent(anyhow::Error),
    Unknown(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Unknown(error)
    }
}

/// Errors that `wasi:http` reports before any byte of the request left: the destination was
/// refused by the host's allow-list, could not be resolved, or would not connect.
fn never_sent(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpProhibited
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_)
            | ErrorCode::HttpRequestDenied
            | ErrorCode::HttpRequestUriInvalid
    )
}

fn send(
    method: &Method,
    origin: &Origin,
    path_with_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, Failure> {
    let not_sent = |e: anyhow::Error| Failure::NotSent(e);
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect();
    if let Some(body) = body {
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&entries).map_err(|e| not_sent(anyhow!("headers: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let set = |ok: Result<(), ()>, what: &str| {
        ok.map_err(|()| Failure::NotSent(anyhow!("cannot set {what}")))
    };
    set(request.set_method(method), "method")?;
    set(request.set_scheme(Some(&origin.scheme())), "scheme")?;
    set(request.set_authority(Some(&origin.authority)), "authority")?;
    set(request.set_path_with_query(Some(path_with_query)), "path")?;
    let outgoing_body = request
        .body()
        .map_err(|()| not_sent(anyhow!("request body taken twice")))?;
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
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| {
        let error = anyhow!("sending: {e:?}");
        if never_sent(&e) {
            Failure::NotSent(error)
        } else {
            Failure::Unknown(error)
        }
    })?;
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
        .map_err(|e| {
            let error = anyhow!("no answer: {e:?}");
            if never_sent(&e) {
                Failure::NotSent(error)
            } else {
                Failure::Unknown(error)
            }
        })?;
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
                    return Err(anyhow!("answer over {MAX_ANSWER_BYTES} bytes").into());
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(e) => {
                return Err(anyhow!("reading the answer: {e:?}")
                    .context("answer")
                    .into());
            }
        }
    }
    Ok(Reply::Answered {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
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
        .context("deadline")
    }
}
