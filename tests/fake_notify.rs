//! Local "provider sinks" for the notification tests: fakes of the outside services a message to a
//! customer goes through, each a real HTTP/1.1 server (hyper + tokio) on `127.0.0.1:<port 0>`,
//! started per test and stopped when dropped, like [`crate::fake_stripe::FakeStripe`].
//!
//! * [`FakeResend`]: Resend's e-mail API (`POST /emails`, JSON, `Idempotency-Key`).
//! * [`FakeTwilio`]: Twilio Programmable Messaging (`POST /2010-04-01/Accounts/{Sid}/Messages.json`,
//!   form-encoded, HTTP Basic). Twilio has no idempotency key for creating a message: every
//!   accepted request is a new text.
//! * [`WebhookSink`]: a business's receiver of Standard Webhooks; it records and de-duplicates by
//!   `webhook-id`, and [`verify_standard_webhook`] is an independent implementation of the
//!   receiver's signature check.
//!
//! Each fake speaks its provider's wire format and refuses what the provider documents it refuses;
//! every rule is cited beside the code that implements it. Where the fake is stricter than what
//! the documentation says (unknown JSON fields for Resend, say), the comment says so: a fake may
//! refuse more than the provider, never accept what the provider refuses.
//!
//! All three record every request they receive ([`RecordedRequest`], headers included), answer
//! concurrent requests, and can be told to fail the next request (`fail_next`) or to carry it out
//! and then close the connection without answering (`drop_next_answer`): the ambiguous outcome a
//! client must handle without doubling the message.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest request body the fakes read.
const MAX_BODY_BYTES: usize = 1 << 20;

// =============================================================================================
// Shared plumbing

/// A request a fake received, in arrival order (refused ones included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ….
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Every header in arrival order, names in lowercase (a repeated header appears repeatedly).
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: Vec<u8>,
    /// The status answered; `None` while unanswered or when the connection was dropped instead.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What a fake does with a request.
enum Answer {
    Reply(Reply),
    /// Close the connection without answering.
    Drop,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".to_owned())],
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Reply(reply)
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the fake closed the connection without answering")
    }
}

impl std::error::Error for ConnectionDropped {}

/// A listening server; stops accepting and closes its connections when dropped.
struct Listener {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept.abort();
    }
}

/// Binds `127.0.0.1:0` and serves every connection (each in its own task, so requests run
/// concurrently) with `handler`.
async fn listen<H, F>(handler: H) -> Listener
where
    H: Fn(RecordedRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("a fake binds 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    let (shutdown, watcher) = watch::channel(false);
    let handler = Arc::new(handler);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let handler = Arc::clone(&handler);
            let mut watcher = watcher.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = Arc::clone(&handler);
                    async move { respond(&*handler, req).await }
                });
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    _ = watcher.changed() => {}
                }
            });
        }
    });
    Listener {
        addr,
        shutdown,
        accept,
    }
}

async fn respond<H, F>(
    handler: &H,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped>
where
    H: Fn(RecordedRequest) -> F,
    F: Future<Output = Answer>,
{
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body,
        status: None,
    };
    match handler(request).await {
        Answer::Reply(reply) => {
            let mut builder = Response::builder().status(reply.status);
            for (name, value) in &reply.headers {
                builder = builder.header(*name, value.as_str());
            }
            Ok(builder.body(Full::new(reply.body)).unwrap_or_else(|_| {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }))
        }
        Answer::Drop => Err(ConnectionDropped),
    }
}

/// Every request a fake received, with the status it got.
#[derive(Default)]
struct Recorder(Mutex<Vec<RecordedRequest>>);

impl Recorder {
    fn push(&self, request: &RecordedRequest) -> usize {
        let mut requests = lock(&self.0);
        requests.push(request.clone());
        requests.len() - 1
    }

    fn finish(&self, index: usize, answer: &Answer) {
        if let (Some(recorded), Answer::Reply(reply)) = (lock(&self.0).get_mut(index), answer) {
            recorded.status = Some(reply.status);
        }
    }

    fn all(&self) -> Vec<RecordedRequest> {
        lock(&self.0).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide the data from the others.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Pseudo-random ids: SipHash, with this fake's random keys, of a counter.
struct Ids {
    keys: RandomState,
    counter: AtomicU64,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            keys: RandomState::new(),
            counter: AtomicU64::new(1),
        }
    }

    fn bits(&self) -> u64 {
        let mut hasher = self.keys.build_hasher();
        hasher.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        hasher.finish()
    }

    /// `len` lowercase hex digits.
    fn hex(&self, len: usize) -> String {
        let mut out = String::with_capacity(len + 16);
        while out.len() < len {
            out.push_str(&format!("{:016x}", self.bits()));
        }
        out.truncate(len);
        out
    }

    /// A version-4-shaped UUID (RFC 9562 §5.4: version nibble 4, variant bits 10).
    fn uuid(&self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.bits().to_be_bytes());
        bytes[8..].copy_from_slice(&self.bits().to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
fn essence(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

// =============================================================================================
// Resend

/// Domains a fresh [`FakeResend`] treats as verified (the project's example sender is
/// `Mio <ratings@mio.example>`); add others with [`FakeResend::verify_domain`].
pub const RESEND_VERIFIED_DOMAINS: [&str; 2] = ["mio.example", "example.com"];

/// How long Resend keeps an idempotency key
/// (<https://resend.com/docs/dashboard/emails/idempotency-keys>: "We keep idempotency keys in our
/// system for 24 hours").
pub const RESEND_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// An e-mail [`FakeResend`] accepted and sent (once per send: a replay adds none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// The `id` answered (UUID).
    pub id: String,
    /// The `Idempotency-Key` header of the request that sent it.
    pub idempotency_key: Option<String>,
    /// `from`, as sent (`a@b.c` or `Name <a@b.c>`).
    pub from: String,
    /// `to` (a single string becomes a one-element list).
    pub to: Vec<String>,
    /// `cc`.
    pub cc: Vec<String>,
    /// `bcc`.
    pub bcc: Vec<String>,
    /// `reply_to`.
    pub reply_to: Vec<String>,
    /// `subject`.
    pub subject: String,
    /// `html`.
    pub html: Option<String>,
    /// `text`.
    pub text: Option<String>,
    /// `headers`.
    pub headers: BTreeMap<String, String>,
    /// `tags` as `(name, value)`.
    pub tags: Vec<(String, Option<String>)>,
}

/// A running fake Resend; stops when dropped.
pub struct FakeResend {
    listener: Listener,
    shared: Arc<ResendShared>,
}

impl fmt::Debug for FakeResend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeResend")
            .field("addr", &self.listener.addr)
            .finish_non_exhaustive()
    }
}

struct ResendShared {
    api_key: String,
    ids: Ids,
    log: Recorder,
    state: Mutex<ResendState>,
}

#[derive(Default)]
struct ResendState {
    emails: Vec<SentEmail>,
    keys: HashMap<String, SavedSend>,
    in_flight: HashSet<String>,
    verified_domains: HashSet<String>,
    fail: VecDeque<Reply>,
    holds: VecDeque<Duration>,
    drop_answers: usize,
}

struct SavedSend {
    payload: Value,
    body: Bytes,
    at: Instant,
}

impl FakeResend {
    /// Starts a fake Resend on `127.0.0.1` with an ephemeral port and a fresh API key.
    pub async fn start() -> FakeResend {
        let ids = Ids::new();
        let api_key = format!("re_test_{}", ids.hex(24));
        let state = ResendState {
            verified_domains: RESEND_VERIFIED_DOMAINS
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            ..ResendState::default()
        };
        let shared = Arc::new(ResendShared {
            api_key,
            ids,
            log: Recorder::default(),
            state: Mutex::new(state),
        });
        let handler_shared = Arc::clone(&shared);
        let listener =
            listen(move |request| resend_serve(Arc::clone(&handler_shared), request)).await;
        FakeResend { listener, shared }
    }

    /// `http://127.0.0.1:PORT`: the API base (Resend's is `https://api.resend.com`).
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.addr)
    }

    /// The only API key it accepts (`re_test_…`).
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Every e-mail actually sent, oldest first, once each.
    pub fn emails(&self) -> Vec<SentEmail> {
        lock(&self.shared.state).emails.clone()
    }

    /// How many HTTP requests it received, refused and dropped ones included.
    pub fn requests(&self) -> usize {
        lock(&self.shared.log.0).len()
    }

    /// Every HTTP request it received, oldest first, with the status answered.
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.shared.log.all()
    }

    /// The next request (whatever it is) is answered `status` with Resend's error body
    /// `{"statusCode", "message", "name"}` and is not carried out: nothing is sent, nothing saved
    /// under its idempotency key. Queued: several calls fail several requests.
    ///
    /// # Panics
    ///
    /// If `status` is not a 4xx or 5xx.
    pub fn fail_next(&self, status: u16, name: &str, message: &str) {
        assert!(
            (400..=599).contains(&status),
            "fail_next takes a 4xx or 5xx"
        );
        lock(&self.shared.state)
            .fail
            .push_back(resend_error(status, name, message));
    }

    /// The next request is answered `429 rate_limit_exceeded` with the rate-limit headers and
    /// `retry-after: 1` (<https://resend.com/docs/api-reference/rate-limit>: the default limit is 2
    /// requests per second; every answer carries `ratelimit-limit`, `ratelimit-remaining`,
    /// `ratelimit-reset`, and a 429 `retry-after`). Nothing is sent.
    pub fn rate_limit_next(&self) {
        // https://resend.com/docs/api-reference/errors: rate_limit_exceeded, 429.
        let reply = resend_error(
            429,
            "rate_limit_exceeded",
            "Too many requests. Please limit the number of requests per second. Or contact \
             support to increase rate limit.",
        )
        .header("ratelimit-limit", "2")
        .header("ratelimit-remaining", "0")
        .header("ratelimit-reset", "1")
        .header("retry-after", "1");
        lock(&self.shared.state).fail.push_back(reply);
    }

    /// The next request that would be answered `200` (a send, or an idempotent replay) is carried
    /// out (the e-mail is sent and saved under its key) and then the connection is closed without
    /// an answer: the client cannot tell whether it went out.
    pub fn drop_next_answer(&self) {
        lock(&self.shared.state).drop_answers += 1;
    }

    /// The next valid send takes `delay` before it completes; meanwhile its idempotency key is in
    /// use, and another request with that key gets `409 concurrent_idempotent_requests`
    /// (<https://resend.com/docs/dashboard/emails/idempotency-keys>). The send completes even if
    /// the client gives up.
    pub fn hold_next(&self, delay: Duration) {
        lock(&self.shared.state).holds.push_back(delay);
    }

    /// Marks `domain` as verified, so `from` addresses at it are accepted.
    pub fn verify_domain(&self, domain: &str) {
        lock(&self.shared.state)
            .verified_domains
            .insert(domain.to_ascii_lowercase());
    }

    /// Forgets every idempotency key, as 24 hours passing would: the same key then sends anew.
    pub fn expire_idempotency_keys(&self) {
        lock(&self.shared.state).keys.clear();
    }
}

/// Resend's error body (<https://resend.com/docs/api-reference/errors>; its SDKs read
/// `{"statusCode", "message", "name"}`).
fn resend_error(status: u16, name: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "statusCode": status, "message": message, "name": name }),
    )
}

async fn resend_serve(shared: Arc<ResendShared>, request: RecordedRequest) -> Answer {
    let index = shared.log.push(&request);
    let mut answer = resend_answer(&shared, &request).await;
    if let Answer::Reply(reply) = &mut answer
        && !reply.headers.iter().any(|(n, _)| *n == "ratelimit-limit")
    {
        // https://resend.com/docs/api-reference/rate-limit: "The response headers describe your
        // current rate limit following every request".
        reply.headers.push(("ratelimit-limit", "2".to_owned()));
        reply.headers.push(("ratelimit-remaining", "1".to_owned()));
        reply.headers.push(("ratelimit-reset", "1".to_owned()));
    }
    shared.log.finish(index, &answer);
    answer
}

async fn resend_answer(shared: &Arc<ResendShared>, req: &RecordedRequest) -> Answer {
    if let Some(reply) = lock(&shared.state).fail.pop_front() {
        return reply.into();
    }
    let refuse = |status, name, message: &str| Answer::from(resend_error(status, name, message));

    // https://resend.com/docs/api-reference/errors: missing_api_key (401) "Missing API key in the
    // authorization header. Include the following header: Authorization: Bearer YOUR_API_KEY".
    let Some(authorization) = req.header("authorization") else {
        return refuse(
            401,
            "missing_api_key",
            "Missing API key in the authorization header.",
        );
    };
    // Same page, current revision: validation_error "API key is invalid", status 400 when "the
    // Authorization header isn't a valid key" (read here: not `Bearer re_…`), status 401 from the
    // sending endpoints "for a key that doesn't exist, was deleted". (Older revisions listed
    // `invalid_api_key`, 403, instead; every revision refuses.)
    let token = match authorization.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    };
    if token.is_empty() && authorization.trim().eq_ignore_ascii_case("bearer") {
        return refuse(
            401,
            "missing_api_key",
            "Missing API key in the authorization header.",
        );
    }
    if !token.starts_with("re_") {
        return refuse(400, "validation_error", "API key is invalid");
    }
    if token != shared.api_key {
        return refuse(401, "validation_error", "API key is invalid");
    }

    // https://resend.com/docs/api-reference/errors: not_found (404) "The requested endpoint does
    // not exist."; method_not_allowed (405) "Method is not allowed for the requested path."
    if req.path != "/emails" {
        return refuse(404, "not_found", "The requested endpoint does not exist.");
    }
    if req.method != "POST" {
        return refuse(
            405,
            "method_not_allowed",
            "Method is not allowed for the requested path.",
        );
    }

    // https://resend.com/docs/dashboard/emails/idempotency-keys: `Idempotency-Key` header, "up to
    // 256 characters"; 400 invalid_idempotency_key "the idempotency key has to be between 1-256
    // characters".
    let key = req.header("idempotency-key").map(str::to_owned);
    if let Some(key) = &key
        && (key.is_empty() || key.chars().count() > 256)
    {
        return refuse(
            400,
            "invalid_idempotency_key",
            "The key must be between 1-256 chars.",
        );
    }

    // https://resend.com/docs/api-reference/emails/send-email: the body is JSON. What Resend
    // answers for a body that is not a JSON object, or not sent as application/json, is not
    // documented; modelled on the 400 validation_error of
    // https://resend.com/docs/api-reference/errors ("We found an error with one or more fields in
    // the request").
    if essence(req.header("content-type")) != "application/json" {
        return refuse(
            400,
            "validation_error",
            "Invalid `Content-Type` header. The request body must be application/json.",
        );
    }
    let payload = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => map,
        _ => {
            return refuse(
                400,
                "validation_error",
                "Invalid JSON body: expected a JSON object.",
            );
        }
    };
    let verified = lock(&shared.state).verified_domains.clone();
    let draft = match resend_validate(&payload, &verified) {
        Ok(draft) => draft,
        Err((status, name, message)) => return refuse(status, name, &message),
    };
    let payload = Value::Object(payload);

    // https://resend.com/docs/dashboard/emails/idempotency-keys: "we check if an email with the
    // same idempotency key has already been sent in the last 24 hours ... our API will give the
    // same response, without actually sending the email again"; 409 invalid_idempotent_request
    // "this idempotency key has already been used on a request that had a different payload";
    // 409 concurrent_idempotent_requests "another request with the same idempotency key is
    // currently in progress". Only sent e-mails are saved under a key, so refused requests can be
    // retried with the same key.
    let hold = {
        let mut state = lock(&shared.state);
        if let Some(key) = &key {
            if state.in_flight.contains(key) {
                return refuse(
                    409,
                    "concurrent_idempotent_requests",
                    "Same idempotency key used while original request is still in progress.",
                );
            }
            if let Some(saved) = state.keys.get(key)
                && saved.at.elapsed() < RESEND_IDEMPOTENCY_WINDOW
            {
                if saved.payload != payload {
                    return refuse(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload.",
                    );
                }
                let reply = Reply {
                    status: 200,
                    headers: vec![("content-type", "application/json; charset=utf-8".to_owned())],
                    body: saved.body.clone(),
                };
                return answer_ok(&mut state, reply);
            }
        }
        match state.holds.pop_front() {
            None => {
                let reply = resend_send(shared, &mut state, draft, key, payload);
                return answer_ok(&mut state, reply);
            }
            Some(delay) => {
                if let Some(key) = &key {
                    state.in_flight.insert(key.clone());
                }
                delay
            }
        }
    };
    // Runs in its own task: a send that began completes even if the client goes away.
    let shared = Arc::clone(shared);
    let task = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        let mut state = lock(&shared.state);
        if let Some(key) = &key {
            state.in_flight.remove(key);
        }
        let reply = resend_send(&shared, &mut state, draft, key, payload);
        answer_ok(&mut state, reply)
    });
    task.await.unwrap_or(Answer::Drop)
}

/// A `200`, unless [`FakeResend::drop_next_answer`] asked for the connection to be dropped.
fn answer_ok(state: &mut ResendState, reply: Reply) -> Answer {
    if state.drop_answers > 0 {
        state.drop_answers -= 1;
        Answer::Drop
    } else {
        Answer::Reply(reply)
    }
}

fn resend_send(
    shared: &ResendShared,
    state: &mut ResendState,
    mut email: SentEmail,
    key: Option<String>,
    payload: Value,
) -> Reply {
    // https://resend.com/docs/api-reference/emails/send-email: the response is `{"id": "<uuid>"}`.
    email.id = shared.ids.uuid();
    email.idempotency_key.clone_from(&key);
    let reply = Reply::json(200, &json!({ "id": email.id }));
    if let Some(key) = key {
        let saved = SavedSend {
            payload,
            body: reply.body.clone(),
            at: Instant::now(),
        };
        state.keys.insert(key, saved);
    }
    state.emails.push(email);
    reply
}

type Refusal = (u16, &'static str, String);

fn unprocessable(message: String) -> Refusal {
    // Resend answers field errors as `validation_error`
    // (https://resend.com/docs/api-reference/errors, which lists it with 400 and 403); the 422 is
    // not documented there: modelled on Resend's observed answer to a bad address ("Invalid `to`
    // field. The email address needs to follow the `email@example.com` or `Name
    // <email@example.com>` format.").
    (422, "validation_error", message)
}

/// The send-email body parameters (https://resend.com/docs/api-reference/emails/send-email).
fn resend_validate(
    payload: &Map<String, Value>,
    verified: &HashSet<String>,
) -> Result<SentEmail, Refusal> {
    const KNOWN: [&str; 10] = [
        "from", "to", "subject", "cc", "bcc", "reply_to", "html", "text", "headers", "tags",
    ];
    const NOT_IMPLEMENTED: [&str; 5] = [
        "attachments",
        "scheduled_at",
        "template",
        "topic_id",
        "react",
    ];
    for field in payload.keys() {
        // The fake's own strictness: Resend has these (send-email), the fake refuses them rather
        // than ignore what it does not model.
        if NOT_IMPLEMENTED.contains(&field.as_str()) {
            return Err(unprocessable(format!(
                "`{field}` is a Resend parameter this fake does not implement."
            )));
        }
        // The fake's own strictness: Resend documents no error for an unknown field, but a
        // misspelt one (`replyTo`) would be silently ignored there.
        if !KNOWN.contains(&field.as_str()) {
            return Err(unprocessable(format!("Unknown field `{field}`.")));
        }
    }
    let present = |name: &str| payload.get(name).filter(|v| !v.is_null());
    // https://resend.com/docs/api-reference/errors: missing_required_field (422) "The request body
    // is missing one or more required fields"; observed message "Missing `to` field.".
    // send-email: `from`, `to` and `subject` are required.
    for required in ["from", "to", "subject"] {
        if present(required).is_none() {
            return Err((
                422,
                "missing_required_field",
                format!("Missing `{required}` field."),
            ));
        }
    }

    // https://resend.com/docs/api-reference/errors: invalid_from_address (422) "Invalid `from`
    // field. The email address needs to follow the `email@example.com` or `Name
    // <email@example.com>` format."
    let from = match present("from") {
        Some(Value::String(from)) if mailbox_address(from).is_some() => from.clone(),
        _ => {
            return Err((
                422,
                "invalid_from_address",
                "Invalid `from` field. The email address needs to follow the `email@example.com` \
                 or `Name <email@example.com>` format."
                    .to_owned(),
            ));
        }
    };
    // https://resend.com/docs/api-reference/errors: validation_error (403) "The domain.com domain
    // is not verified. Please, add and verify your domain."
    let domain = mailbox_address(&from)
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .unwrap_or_default();
    if !verified.contains(&domain) {
        return Err((
            403,
            "validation_error",
            format!("The {domain} domain is not verified. Please, add and verify your domain."),
        ));
    }

    // send-email: `to` "string | string[] ... Max 50."
    let to = addresses(payload, "to")?;
    if to.is_empty() || to.len() > 50 {
        return Err(unprocessable(
            "Invalid `to` field. Send between 1 and 50 recipients.".to_owned(),
        ));
    }
    let subject = match present("subject") {
        Some(Value::String(subject)) => subject.clone(),
        _ => return Err(unprocessable("Invalid `subject` field.".to_owned())),
    };
    let mut bodies = [None, None];
    for (slot, name) in bodies.iter_mut().zip(["html", "text"]) {
        match present(name) {
            None => {}
            Some(Value::String(text)) => *slot = Some(text.clone()),
            Some(_) => return Err(unprocessable(format!("Invalid `{name}` field."))),
        }
    }
    let [html, text] = bodies;
    // A message needs a body: `html` and/or `text`. send-email lists both as optional and
    // documents no refusal for neither: not documented; modelled on the Elixir client's "You are
    // required to include one or both of the :html and :text options"
    // (https://hexdocs.pm/resend/Resend.Email.html). `template` and `react`, the other ways to
    // give a body, are not implemented.
    if html.is_none() && text.is_none() {
        return Err((
            422,
            "missing_required_field",
            "Missing `html` or `text` field.".to_owned(),
        ));
    }
    // send-email: `headers` "Custom headers to add to the email" (an object of strings).
    let mut headers = BTreeMap::new();
    match present("headers") {
        None => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(unprocessable(format!("Invalid `headers.{name}` value.")));
                };
                headers.insert(name.clone(), value.clone());
            }
        }
        Some(_) => return Err(unprocessable("Invalid `headers` field.".to_owned())),
    }
    // send-email: `tags[].name` (required) and `tags[].value` "can only contain ASCII letters
    // (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-). It can contain no more than 256
    // characters."
    let tag_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let mut tags = Vec::new();
    match present("tags") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str);
                let value = item.get("value").filter(|v| !v.is_null());
                match (name, value) {
                    (Some(name), None) if tag_ok(name) => tags.push((name.to_owned(), None)),
                    (Some(name), Some(Value::String(value))) if tag_ok(name) && tag_ok(value) => {
                        tags.push((name.to_owned(), Some(value.clone())));
                    }
                    _ => {
                        return Err(unprocessable(
                            "Invalid `tags` field. Tag names and values can only contain ASCII \
                             letters, numbers, underscores, or dashes, up to 256 characters."
                                .to_owned(),
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(unprocessable("Invalid `tags` field.".to_owned())),
    }
    Ok(SentEmail {
        id: String::new(),
        idempotency_key: None,
        from,
        to,
        cc: addresses(payload, "cc")?,
        bcc: addresses(payload, "bcc")?,
        reply_to: addresses(payload, "reply_to")?,
        subject,
        html,
        text,
        headers,
        tags,
    })
}

/// A `string | string[]` address field (send-email: `to`, `cc`, `bcc`, `reply_to`), each
/// `email@example.com` or `Name <email@example.com>`; absent or null is empty.
fn addresses(payload: &Map<String, Value>, field: &str) -> Result<Vec<String>, Refusal> {
    let invalid = || {
        unprocessable(format!(
            "Invalid `{field}` field. The email address needs to follow the \
             `email@example.com` or `Name <email@example.com>` format."
        ))
    };
    let list = match payload.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid()),
    };
    if list.iter().any(|a| mailbox_address(a).is_none()) {
        return Err(invalid());
    }
    Ok(list)
}

/// The bare address of `a@b.c` or `Name <a@b.c>`, if it has that shape.
fn mailbox_address(mailbox: &str) -> Option<&str> {
    let mailbox = mailbox.trim();
    let address = match mailbox.strip_suffix('>') {
        Some(rest) => rest.rsplit_once('<')?.1,
        None => mailbox,
    };
    let (local, domain) = address.split_once('@')?;
    let plain = |s: &str| {
        !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || "<>(),;:\"[]@\\".contains(c))
    };
    let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
    (plain(local) && plain(domain) && labels_ok).then_some(address)
}

// =============================================================================================
// Twilio

/// The SMS-capable number a fresh [`FakeTwilio`] account owns (a fictional `555-01xx` number).
pub const TWILIO_PHONE_NUMBER: &str = "+14155550100";

/// The longest `Body` Twilio accepts
/// (<https://www.twilio.com/docs/messaging/api/message-resource>: "Can be up to 1,600 characters").
pub const TWILIO_MAX_BODY: usize = 1600;

/// A message [`FakeTwilio`] created (one per accepted request: Twilio has no idempotency key).
#[derive(Debug, Clone, PartialEq)]
pub struct SentSms {
    /// `SM` + 32 hex digits.
    pub sid: String,
    /// `To` (E.164).
    pub to: String,
    /// `From`; `None` when only a Messaging Service was given.
    pub from: Option<String>,
    /// `MessagingServiceSid`, if given.
    pub messaging_service_sid: Option<String>,
    /// `Body` (may be empty when `MediaUrl` is given).
    pub body: String,
    /// Every `MediaUrl`.
    pub media_urls: Vec<String>,
    /// The Message resource as answered.
    pub resource: Value,
}

/// A running fake Twilio; stops when dropped.
pub struct FakeTwilio {
    listener: Listener,
    shared: Arc<TwilioShared>,
}

impl fmt::Debug for FakeTwilio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTwilio")
            .field("addr", &self.listener.addr)
            .finish_non_exhaustive()
    }
}

struct TwilioShared {
    account_sid: String,
    auth_token: String,
    messaging_service_sid: String,
    ids: Ids,
    log: Recorder,
    state: Mutex<TwilioState>,
}

#[derive(Default)]
struct TwilioState {
    messages: Vec<SentSms>,
    fail: VecDeque<Reply>,
    drop_answers: usize,
}

impl FakeTwilio {
    /// Starts a fake Twilio with a fresh account (`AC…`), auth token, the number
    /// [`TWILIO_PHONE_NUMBER`] and one Messaging Service (`MG…`).
    pub async fn start() -> FakeTwilio {
        let ids = Ids::new();
        let shared = Arc::new(TwilioShared {
            account_sid: format!("AC{}", ids.hex(32)),
            auth_token: ids.hex(32),
            messaging_service_sid: format!("MG{}", ids.hex(32)),
            ids,
            log: Recorder::default(),
            state: Mutex::new(TwilioState::default()),
        });
        let handler_shared = Arc::clone(&shared);
        let listener = listen(move |request| {
            let shared = Arc::clone(&handler_shared);
            async move {
                let index = shared.log.push(&request);
                let answer = twilio_answer(&shared, &request);
                shared.log.finish(index, &answer);
                answer
            }
        })
        .await;
        FakeTwilio { listener, shared }
    }

    /// `http://127.0.0.1:PORT`: the API base (Twilio's is `https://api.twilio.com`).
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.addr)
    }

    /// The full URL to create messages on this account.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.url(),
            self.shared.account_sid
        )
    }

    /// The account (`AC` + 32 hex digits): the HTTP Basic user name.
    pub fn account_sid(&self) -> &str {
        &self.shared.account_sid
    }

    /// The auth token: the HTTP Basic password.
    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    /// The account's number, the only `From` accepted ([`TWILIO_PHONE_NUMBER`]).
    pub fn phone_number(&self) -> &str {
        TWILIO_PHONE_NUMBER
    }

    /// The account's Messaging Service (`MG` + 32 hex digits).
    pub fn messaging_service_sid(&self) -> &str {
        &self.shared.messaging_service_sid
    }

    /// Every message created, oldest first.
    pub fn messages(&self) -> Vec<SentSms> {
        lock(&self.shared.state).messages.clone()
    }

    /// How many HTTP requests it received, refused and dropped ones included.
    pub fn requests(&self) -> usize {
        lock(&self.shared.log.0).len()
    }

    /// Every HTTP request it received, oldest first, with the status answered.
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.shared.log.all()
    }

    /// The next request (whatever it is) is answered `status` with Twilio's error body for
    /// `code`, and no message is created. Queued. `fail_next(429, 20429, "Too Many Requests")` is
    /// Twilio's rate limit (<https://www.twilio.com/docs/api/errors/20429>).
    ///
    /// # Panics
    ///
    /// If `status` is not a 4xx or 5xx.
    pub fn fail_next(&self, status: u16, code: u32, message: &str) {
        assert!(
            (400..=599).contains(&status),
            "fail_next takes a 4xx or 5xx"
        );
        lock(&self.shared.state)
            .fail
            .push_back(twilio_error(status, code, message));
    }

    /// The next request that would create a message creates it, and then the connection is
    /// closed without an answer.
    pub fn drop_next_answer(&self) {
        lock(&self.shared.state).drop_answers += 1;
    }
}

/// Twilio's error body (<https://www.twilio.com/docs/usage/twilios-response>): `{"code",
/// "message", "more_info", "status"}`.
fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

fn twilio_answer(shared: &TwilioShared, req: &RecordedRequest) -> Answer {
    if let Some(reply) = lock(&shared.state).fail.pop_front() {
        return reply.into();
    }

    // https://www.twilio.com/docs/usage/requests-to-twilio: HTTP Basic, Account SID as user name,
    // Auth Token as password. https://www.twilio.com/docs/api/errors/20003: a wrong or missing
    // pair, "Using subaccount credentials to access master account", ... → 401 "Authenticate".
    let unauthenticated = || -> Answer {
        twilio_error(401, 20003, "Authenticate")
            .header("www-authenticate", "Basic realm=\"Twilio API\"")
            .into()
    };
    let credentials = req.header("authorization").and_then(basic_credentials);
    if credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
        != Some((shared.account_sid.as_str(), shared.auth_token.as_str()))
    {
        return unauthenticated();
    }

    // https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource:
    // POST /2010-04-01/Accounts/{AccountSid}/Messages.json. Anything else: 404, code 20404
    // (https://www.twilio.com/docs/api/errors/20404).
    let account = req
        .path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.strip_suffix("/Messages.json"))
        .filter(|sid| !sid.contains('/'));
    let Some(account) = account else {
        let message = format!("The requested resource {} was not found", req.path);
        return twilio_error(404, 20404, &message).into();
    };
    // The credentials are valid but for another account than the path's (20003 above).
    if account != shared.account_sid {
        return unauthenticated();
    }
    if req.method != "POST" {
        // The fake implements creating messages only (https://www.twilio.com/docs/api/errors/
        // 20004: "Method not allowed").
        return twilio_error(405, 20004, "Method not allowed").into();
    }

    // https://www.twilio.com/docs/usage/requests-to-twilio: parameters are
    // application/x-www-form-urlencoded; https://www.twilio.com/docs/errors/21604 lists "Your
    // request is not formatted as application/x-www-form-urlencoded" as a cause of a missing
    // `To`: any other body carries no parameters.
    let params: Vec<(String, String)> =
        if essence(req.header("content-type")) == "application/x-www-form-urlencoded" {
            form_urlencoded::parse(&req.body).into_owned().collect()
        } else {
            Vec::new()
        };
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let invalid = |code: u32, message: &str| Answer::from(twilio_error(400, code, message));

    // https://www.twilio.com/docs/errors/21604: "A 'To' phone number is required."
    let Some(to) = param("To") else {
        return invalid(21604, "A 'To' phone number is required.");
    };
    // https://www.twilio.com/docs/api/errors/21211: `To` must be E.164 ("a + followed by the
    // country code and the subscriber number ... with no spaces, dashes, or parentheses").
    if !is_e164(to) {
        return invalid(21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    // https://www.twilio.com/docs/errors/21603: a `From` or a `MessagingServiceSid` is required;
    // a Messaging Service SID may also be given in `From`.
    let mut from = param("From");
    let mut service = param("MessagingServiceSid");
    if let Some(sid) = from.filter(|f| f.starts_with("MG")) {
        service = service.or(Some(sid));
        from = None;
    }
    if from.is_none() && service.is_none() {
        return invalid(
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
        );
    }
    if let Some(sid) = service {
        // https://www.twilio.com/docs/api/errors/21705: "does not match a valid Sid
        // pattern(MGxxx)"; https://www.twilio.com/docs/api/errors/21701: "does not exist or does
        // not match the Account SID in the API Request".
        let well_formed = sid.len() == 34
            && sid.starts_with("MG")
            && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return invalid(21705, "The Messaging Service is invalid");
        }
        if sid != shared.messaging_service_sid {
            return invalid(21701, "The Messaging Service does not exist");
        }
    }
    if let Some(from) = from {
        // https://www.twilio.com/docs/api/errors/21266: "'To' and 'From' numbers cannot be the
        // same".
        if from == to {
            return invalid(21266, "'To' and 'From' numbers cannot be the same");
        }
        // https://www.twilio.com/docs/api/errors/21606: only a message-capable number of this
        // account may send (alphanumeric sender IDs are not modelled).
        if from != TWILIO_PHONE_NUMBER {
            return invalid(
                21606,
                "The 'From' phone number provided is not a valid message-capable Twilio phone \
                 number for this destination/account",
            );
        }
    }

    let body = param("Body").unwrap_or_default();
    let media_urls: Vec<String> = params
        .iter()
        .filter(|(n, v)| n == "MediaUrl" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if body.is_empty() && media_urls.is_empty() {
        // https://www.twilio.com/docs/api/errors/21619 (with a Messaging Service): "A Message
        // Body, Media URL or Content SID is required"; https://www.twilio.com/docs/errors/21602:
        // "The Body OR MediaURL parameter is required". (`ContentSid` is not modelled.)
        return if service.is_some() {
            invalid(
                21619,
                "A Message Body, Media URL or Content SID is required",
            )
        } else {
            invalid(21602, "Message body is required.")
        };
    }
    // https://www.twilio.com/docs/api/errors/21617: "The Body parameter for an outgoing message can
    // be up to 1,600 characters", non-GSM-7 characters "can use more space ... and cause the
    // message to exceed the limit sooner": the fake counts encoded units (GSM-7 septets with
    // extension characters as two, else UTF-16 code units), the stricter reading.
    let (units, gsm) = sms_units(body);
    if units > TWILIO_MAX_BODY {
        return invalid(
            21617,
            "The concatenated message body exceeds the 1600 character limit",
        );
    }

    // https://support.twilio.com/hc/en-us/articles/360034857114 (a Messaging Service send):
    // the answer to a create is 201 with the Message resource; `status` is `queued` with a
    // `From`, `accepted` with a Messaging Service (whose `num_segments` is always "0").
    // https://www.twilio.com/docs/glossary/what-sms-character-limit: 160 GSM-7 characters in one
    // segment, 153 per segment beyond; 70 and 67 for UCS-2.
    let segments = match (service, gsm) {
        (Some(_), _) => 0,
        (None, true) if units <= 160 => 1,
        (None, true) => units.div_ceil(153),
        (None, false) if units <= 70 => 1,
        (None, false) => units.div_ceil(67),
    };
    let sid = format!("SM{}", shared.ids.hex(32));
    let uri = format!("/2010-04-01/Accounts/{}/Messages/{sid}", shared.account_sid);
    let now = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    let resource = json!({
        "account_sid": shared.account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": media_urls.len().to_string(),
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": if service.is_some() { "accepted" } else { "queued" },
        "subresource_uris": { "media": format!("{uri}/Media.json") },
        "to": to,
        "uri": format!("{uri}.json"),
    });
    let mut state = lock(&shared.state);
    state.messages.push(SentSms {
        sid,
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: service.map(str::to_owned),
        body: body.to_owned(),
        media_urls,
        resource: resource.clone(),
    });
    if state.drop_answers > 0 {
        state.drop_answers -= 1;
        return Answer::Drop;
    }
    Reply::json(201, &resource).into()
}

/// `(user, password)` of an HTTP Basic `Authorization` value (RFC 7617).
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `+` then 2 to 15 digits, the first not 0 (E.164, <https://www.twilio.com/docs/glossary/what-e164>).
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// The length of `body` in encoded units, and whether it is all GSM-7
/// (<https://www.twilio.com/docs/glossary/what-is-gsm-7-character-encoding>: the basic set is one
/// septet, the extension table `^{}\[~]|€` and form feed two).
fn sms_units(body: &str) -> (usize, bool) {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
                         ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENDED: &str = "^{}\\[~]|€\x0c";
    let mut septets = 0;
    for c in body.chars() {
        if BASIC.contains(c) {
            septets += 1;
        } else if EXTENDED.contains(c) {
            septets += 2;
        } else {
            return (body.encode_utf16().count(), false);
        }
    }
    (septets, true)
}

// =============================================================================================
// Standard Webhooks receiver

/// How far `webhook-timestamp` may be from now, either way: the reference implementations'
/// `TOLERANCE_IN_SECONDS = 5 * 60`
/// (<https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/rust/src/lib.rs>);
/// the spec asks receivers to check "a timestamp that is within some allowable tolerance".
pub const STANDARD_WEBHOOK_TOLERANCE_SECS: i64 = 5 * 60;

/// A business's webhook receiver: accepts `POST` on any path, records every delivery, answers
/// `204` by default, and de-duplicates by `webhook-id` as the Standard Webhooks spec tells
/// receivers to. It does not verify signatures: tests do, with [`verify_standard_webhook`].
pub struct WebhookSink {
    listener: Listener,
    shared: Arc<Mutex<SinkState>>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("addr", &self.listener.addr)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct SinkState {
    /// Every request, and whether the receiver processed it.
    deliveries: Vec<(RecordedRequest, bool)>,
    script: VecDeque<SinkScript>,
}

enum SinkScript {
    Fail(u16),
    Drop,
}

impl WebhookSink {
    /// Starts a receiver on `127.0.0.1` with an ephemeral port.
    pub async fn start() -> WebhookSink {
        let shared = Arc::new(Mutex::new(SinkState::default()));
        let handler_shared = Arc::clone(&shared);
        let listener = listen(move |mut request| {
            let shared = Arc::clone(&handler_shared);
            async move {
                let mut state = lock(&shared);
                // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/
                // standard-webhooks.md: "the webhook payload should be sent as the body of an
                // HTTP POST request".
                let (answer, processed) = if request.method != "POST" {
                    (
                        Answer::Reply(Reply::empty(405).header("allow", "POST")),
                        false,
                    )
                } else {
                    match state.script.pop_front() {
                        // Refused: the receiver did not process it, so a retry will be.
                        Some(SinkScript::Fail(status)) => (Reply::empty(status).into(), false),
                        // Processed, but the answer is lost: the sender will retry.
                        Some(SinkScript::Drop) => (Answer::Drop, true),
                        // Spec: "A webhook delivery is considered successful if it was responded
                        // to with a 2xx status code".
                        None => (Reply::empty(204).into(), true),
                    }
                };
                if let Answer::Reply(reply) = &answer {
                    request.status = Some(reply.status);
                }
                state.deliveries.push((request, processed));
                answer
            }
        })
        .await;
        WebhookSink { listener, shared }
    }

    /// `http://127.0.0.1:PORT`; any path under it receives.
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.addr)
    }

    /// Every request received, oldest first (retries and refused ones included), with the
    /// status answered (`None` for a dropped answer).
    pub fn deliveries(&self) -> Vec<RecordedRequest> {
        lock(&self.shared)
            .deliveries
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The messages the receiver processed, once each: the first processed delivery of every
    /// distinct `webhook-id` (spec: "Use the `webhook-id` header as an idempotency key to prevent
    /// accidentally processing the same webhook more than once"). A delivery answered by
    /// [`WebhookSink::fail_next`] was not processed; one whose answer was dropped was. A delivery
    /// without `webhook-id` cannot be de-duplicated and counts on its own.
    pub fn unique_messages(&self) -> Vec<RecordedRequest> {
        let state = lock(&self.shared);
        let mut seen = HashSet::new();
        state
            .deliveries
            .iter()
            .filter(|(request, processed)| {
                *processed
                    && request
                        .header("webhook-id")
                        .is_none_or(|id| seen.insert(id.to_owned()))
            })
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The next `POST` is recorded but answered `status` (body empty) and not processed. Queued
    /// together with [`WebhookSink::drop_next_answer`], in call order.
    ///
    /// # Panics
    ///
    /// If `status` is not a 4xx or 5xx.
    pub fn fail_next(&self, status: u16) {
        assert!(
            (400..=599).contains(&status),
            "fail_next takes a 4xx or 5xx"
        );
        lock(&self.shared)
            .script
            .push_back(SinkScript::Fail(status));
    }

    /// The next `POST` is recorded and processed, then the connection is closed unanswered.
    pub fn drop_next_answer(&self) {
        lock(&self.shared).script.push_back(SinkScript::Drop);
    }
}

/// The key of a Standard Webhooks secret: base64 after the `whsec_` prefix (spec: "base64
/// encoded, prefixed with `whsec_`"; the reference libraries also take it without the prefix).
fn standard_webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    BASE64
        .decode(encoded)
        .map_err(|e| format!("the secret is not whsec_ followed by base64: {e}"))
}

/// HMAC-SHA256 of `{msg_id}.{timestamp}.{payload}` (spec, "Signature scheme").
fn standard_webhook_mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC-SHA256 takes a key of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` entry `v1,<base64 HMAC-SHA256>` for a message (spec: "a symmetric
/// signature will be v1, followed by a comma (`,`), followed by the base64 encoded signature").
pub fn sign_standard_webhook(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    let key = standard_webhook_key(secret)?;
    let digest = standard_webhook_mac(&key, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", BASE64.encode(digest)))
}

/// The receiver's check of a Standard Webhooks delivery, written from the spec
/// (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
///
/// * `webhook-id`, `webhook-timestamp` (integer unix seconds) and `webhook-signature` must all be
///   present (header names case-insensitive);
/// * the timestamp must be within [`STANDARD_WEBHOOK_TOLERANCE_SECS`] of `now_unix`, either way
///   ("to prevent replay attacks");
/// * `webhook-signature` is a space-delimited list; entries other than `v1,…` (`v1a` asymmetric
///   ones) are skipped, and any `v1` entry equal to the base64 HMAC-SHA256 of
///   `{webhook-id}.{webhook-timestamp}.{body}` keyed with the secret's decoded key accepts
///   ("Webhook consumers can try to verify each signature until one matches"), compared in
///   constant time (`Mac::verify_slice`; "use a constant time comparison function").
pub fn verify_standard_webhook(
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now_unix: i64,
) -> Result<(), String> {
    let required = |name: &str| header_in(headers, name).ok_or(format!("missing header {name}"));
    let msg_id = required("webhook-id")?;
    let timestamp_text = required("webhook-timestamp")?;
    let signatures = required("webhook-signature")?;
    let timestamp: i64 = timestamp_text
        .trim()
        .parse()
        .map_err(|_| format!("webhook-timestamp is not an integer: {timestamp_text:?}"))?;
    if now_unix.saturating_sub(timestamp) > STANDARD_WEBHOOK_TOLERANCE_SECS {
        return Err(format!(
            "webhook-timestamp {timestamp} is too old (now {now_unix})"
        ));
    }
    if timestamp.saturating_sub(now_unix) > STANDARD_WEBHOOK_TOLERANCE_SECS {
        return Err(format!(
            "webhook-timestamp {timestamp} is too far in the future (now {now_unix})"
        ));
    }
    let key = standard_webhook_key(secret)?;
    for entry in signatures.split(' ') {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(signature) = BASE64.decode(encoded) else {
            continue;
        };
        if standard_webhook_mac(&key, msg_id, timestamp, body)
            .verify_slice(&signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err("no v1 signature in webhook-signature matches".to_owned())
}
