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
    ErrorCode, Fields, FutureIncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
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

/// One request, start to finish; `body` goes with its `Content-Length` (some gateways refuse
/// chunked bodies).
pub fn exchange(
    method: &Method,
    origin: &Origin,
    path_with_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    start(method, origin, path_with_query, headers, body)
        .finish()
        .reply
}

/// A request on its way: sent, its answer not read yet. Many can be in flight at once; [`wait_any`]
/// tells which to [`Pending::finish`].
pub struct Pending {
    state: PendingState,
    deadline: u64,
}

enum PendingState {
    /// It could not leave, or failed at once.
    Early(Reply),
    /// Sent; the answer's head is awaited.
    Sent(FutureIncomingResponse),
}

/// An answer read in full, with the server's `Retry-After` (seconds), when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How far it got.
    pub reply: Reply,
    /// `Retry-After` in seconds.
    pub retry_after_secs: Option<u64>,
}

impl Pending {
    /// A request that ends before it starts, with `reply` (e.g. it could not be built).
    pub fn settled(reply: Reply) -> Pending {
        Pending {
            state: PendingState::Early(reply),
            deadline: monotonic_clock::now(),
        }
    }

    /// Whether the answer's head is in (or there is none to wait for).
    fn ready(&self) -> bool {
        match &self.state {
            PendingState::Early(_) => true,
            PendingState::Sent(future) => future.subscribe().ready(),
        }
    }

    /// Reads the answer: waits for it until the request's deadline, then reads its body.
    pub fn finish(self) -> Finished {
        let future = match self.state {
            PendingState::Early(reply) => {
                return Finished {
                    reply,
                    retry_after_secs: None,
                };
            }
            PendingState::Sent(future) => future,
        };
        match read_answer(&future, self.deadline) {
            Ok(finished) => finished,
            Err(Failure::NotSent(error)) => Finished {
                reply: Reply::NotSent {
                    reason: format!("{error:#}"),
                },
                retry_after_secs: None,
            },
            Err(Failure::Unknown(error)) => Finished {
                reply: Reply::NoAnswer {
                    reason: format!("{error:#}"),
                },
                retry_after_secs: None,
            },
        }
    }
}

/// Waits until at least one of `pending` is ready to finish (answered, failed, or past its
/// deadline), or until `until` (monotonic ns) when given; returns the indexes that are ready.
pub fn wait_any(pending: &[&Pending], until: Option<u64>) -> Vec<usize> {
    let ready: Vec<usize> = (0..pending.len()).filter(|&i| pending[i].ready()).collect();
    if !ready.is_empty() || pending.is_empty() && until.is_none() {
        return ready;
    }
    let nearest = pending
        .iter()
        .map(|p| p.deadline)
        .chain(until)
        .min()
        .unwrap_or_else(monotonic_clock::now);
    let mut pollables = Vec::with_capacity(pending.len() + 1);
    let mut owners = Vec::with_capacity(pending.len());
    for (index, p) in pending.iter().enumerate() {
        if let PendingState::Sent(future) = &p.state {
            pollables.push(future.subscribe());
            owners.push(index);
        }
    }
    pollables.push(monotonic_clock::subscribe_instant(nearest));
    let refs: Vec<&wasi::io::poll::Pollable> = pollables.iter().collect();
    let fired = wasi::io::poll::poll(&refs);
    let now = monotonic_clock::now();
    let mut ready: Vec<usize> = fired
        .iter()
        .filter_map(|&i| owners.get(i as usize).copied())
        .collect();
    // A request past its deadline is finished too (as no answer).
    ready.extend((0..pending.len()).filter(|&i| pending[i].deadline <= now));
    ready.sort_unstable();
    ready.dedup();
    ready
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

fn classify_code(e: &ErrorCode, what: &str) -> Failure {
    let error = anyhow!("{what}: {e:?}");
    if never_sent(e) {
        Failure::NotSent(error)
    } else {
        Failure::Unknown(error)
    }
}

/// Sends a request and returns at once; its answer is read by [`Pending::finish`]. The deadline
/// ([`REQUEST_DEADLINE_NS`]) counts from now.
pub fn start(
    method: &Method,
    origin: &Origin,
    path_with_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Pending {
    let deadline = monotonic_clock::now().saturating_add(REQUEST_DEADLINE_NS);
    let state = match send(method, origin, path_with_query, headers, body) {
        Ok(future) => PendingState::Sent(future),
        Err(Failure::NotSent(error)) => PendingState::Early(Reply::NotSent {
            reason: format!("{error:#}"),
        }),
        Err(Failure::Unknown(error)) => PendingState::Early(Reply::NoAnswer {
            reason: format!("{error:#}"),
        }),
    };
    Pending { state, deadline }
}

fn send(
    method: &Method,
    origin: &Origin,
    path_with_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<FutureIncomingResponse, Failure> {
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
    let future = outgoing_handler::handle(request, Some(options))
        .map_err(|e| classify_code(&e, "sending"))?;
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
    Ok(future)
}

fn read_answer(future: &FutureIncomingResponse, deadline: u64) -> Result<Finished, Failure> {
    wait(&future.subscribe(), deadline)?;
    let response = future
        .get()
        .ok_or_else(|| anyhow!("no answer after waiting"))?
        .map_err(|()| anyhow!("answer taken twice"))?
        .map_err(|e| classify_code(&e, "no answer"))?;
    let status = response.status();
    let retry_after_secs = response
        .headers()
        .get("retry-after")
        .first()
        .and_then(|value| std::str::from_utf8(value).ok()?.trim().parse::<u64>().ok());
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
    Ok(Finished {
        reply: Reply::Answered {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        },
        retry_after_secs,
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
