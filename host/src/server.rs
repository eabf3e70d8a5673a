//! The HTTP trigger: accept connections, route each request to its component, run a fresh
//! instance under the per-request limits, and answer.
//!
//! A trapping, runaway or memory-hungry guest answers 500 and leaves a log line; the host and
//! the next request are unaffected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::app::{App, EPOCH_TICK, LoadedComponent};
use crate::router;
use crate::state::RequestState;

/// Most guest output kept per request for the host log.
const GUEST_OUTPUT_CAPACITY: usize = 1 << 20;

/// A running HTTP server; stops when dropped or on [`Server::stop`].
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts serving `app` on `listener` in the current tokio runtime.
    pub fn start(app: Arc<App>, listener: TcpListener) -> anyhow::Result<Server> {
        let addr = listener.local_addr().context("listener has no address")?;
        let (shutdown, mut stop) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, client)) => {
                            let app = Arc::clone(&app);
                            connections.spawn(serve_connection(app, stream, client));
                        }
                        Err(e) => eprintln!("[mio-host] accept failed: {e}"),
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            connections.shutdown().await;
        });
        Ok(Server {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes open connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            // An error means the accept loop is already gone, which is what we want.
            if tx.send(()).is_err() {
                eprintln!("[mio-host] server was already stopped");
            }
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            eprintln!("[mio-host] server task ended abnormally: {e}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve_connection(app: Arc<App>, stream: tokio::net::TcpStream, client: SocketAddr) {
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(handle(app, req, client).await) }
    });
    let served = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served
        && !e.is_incomplete_message()
    {
        eprintln!("[mio-host] connection from {client}: {e}");
    }
}

fn plain(status: u16, text: &'static str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut res = hyper::Response::new(body);
    *res.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

async fn handle(
    app: Arc<App>,
    mut req: hyper::Request<Incoming>,
    client: SocketAddr,
) -> hyper::Response<HyperOutgoingBody> {
    if let Some(reserved) = req.uri().path().strip_prefix(router::WELL_KNOWN_PREFIX) {
        // Spin answers its reserved paths itself, before any routing.
        return match reserved {
            "health" => plain(200, "OK"),
            _ => plain(404, "Not Found"),
        };
    }
    let Some(matched) = app.router.route(req.uri().path()) else {
        return plain(404, "Not Found");
    };
    let Some(component) = app.components.get(matched.component_id()) else {
        return plain(500, "Internal Server Error");
    };
    let Some(proxy) = &component.http else {
        return plain(500, "Internal Server Error");
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let full_url = router::full_url("http", host, &path_and_query);
    // Spin appends its headers to the client's and drops any that are not valid HTTP.
    for (name, value) in matched.spin_headers(&full_url, client) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            http::HeaderValue::try_from(value.as_str()),
        ) {
            req.headers_mut().append(name, value);
        }
    }
    let what = format!("{} {path_and_query}", req.method());
    match run(&app, component, proxy, req, what).await {
        Some(res) => res,
        None => plain(500, "Internal Server Error"),
    }
}

/// Runs one request through a fresh instance of `component`; `None` when the guest failed before
/// answering (the failure is logged, naming the component and the request `what`).
async fn run(
    app: &App,
    component: &LoadedComponent,
    proxy: &ProxyPre<RequestState>,
    req: hyper::Request<Incoming>,
    what: String,
) -> Option<hyper::Response<HyperOutgoingBody>> {
    let id = Arc::clone(&component.runtime.id);
    match start(app, component, proxy, req, what.clone()).await {
        Ok(receiver) => match receiver.await {
            Ok(Ok(res)) => Some(res),
            Ok(Err(code)) => {
                eprintln!("[mio-host] {id} {what}: guest answered with error code {code:?}");
                None
            }
            // The guest dropped the response without setting it; the task logs why.
            Err(_) => None,
        },
        Err(e) => {
            eprintln!("[mio-host] {id} {what}: {e:#}");
            None
        }
    }
}

type ResponseReceiver = oneshot::Receiver<
    Result<
        hyper::Response<HyperOutgoingBody>,
        wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
    >,
>;

/// Instantiates `component` for `req` in its own task and returns where its response arrives.
async fn start(
    app: &App,
    component: &LoadedComponent,
    proxy: &ProxyPre<RequestState>,
    req: hyper::Request<Incoming>,
    what: String,
) -> anyhow::Result<ResponseReceiver> {
    let started = Instant::now();
    let GuestStore {
        mut store,
        stdout,
        stderr,
    } = new_store(app, component);
    let timeout = app.limits.request_timeout;

    let (sender, receiver) = oneshot::channel();
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let outparam = store.data_mut().http().new_response_outparam(sender)?;
    let pre = proxy.clone();
    let id = Arc::clone(&component.runtime.id);
    let calls = Arc::clone(&app.calls);
    let task = tokio::spawn(async move {
        let result = tokio::time::timeout(timeout, async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        })
        .await;
        calls.record(&id, &what, store.data().host_calls());
        drop(store);
        forward_guest_output(&id, &stdout, &stderr);
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:?}")),
            Err(_) => Some(format!("exceeded the {timeout:?} time limit")),
        };
        if let Some(failure) = failure {
            eprintln!(
                "[mio-host] {id} {what}: failed after {:?}: {failure}",
                started.elapsed()
            );
        }
    });
    drop(task);
    Ok(receiver)
}

/// A fresh store for one invocation of `component`, with its output pipes and limits applied.
pub(crate) struct GuestStore {
    pub(crate) store: Store<RequestState>,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

pub(crate) fn new_store(app: &App, component: &LoadedComponent) -> GuestStore {
    let stdout = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
    let stderr = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build();
    let limits = StoreLimitsBuilder::new()
        .memory_size(app.limits.max_memory_bytes)
        .build();
    let state = RequestState::new(
        Arc::clone(&component.runtime),
        Arc::clone(&app.stores),
        wasi,
        limits,
    );
    let mut store = Store::new(&app.engine, state);
    store.limiter(|s| &mut s.limits);
    let ticks = (app.limits.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store.epoch_deadline_trap();
    GuestStore {
        store,
        stdout,
        stderr,
    }
}

pub(crate) fn forward_guest_output(id: &str, stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe) {
    for pipe in [stdout, stderr] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        for line in String::from_utf8_lossy(&bytes).lines() {
            eprintln!("[{id}] {line}");
        }
    }
}
