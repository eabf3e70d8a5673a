//! Outgoing `wasi:http` requests, limited to the component's `allowed_outbound_hosts`.
//!
//! A request to any other destination fails inside the guest with `HttpRequestDenied` and no
//! connection is made, as in Spin. Allowed requests go out through wasmtime's default client.

use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outbound::AllowedHosts;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The `wasi:http` hooks of one request: who is calling, and where it may go.
#[derive(Debug)]
pub struct OutboundHooks {
    /// The calling component's id, for the log.
    pub component: Arc<str>,
    /// The calling component's allow-list, templates already expanded.
    pub allowed: Arc<AllowedHosts>,
    /// Outbound requests made so far (allowed or not).
    pub sent: u64,
}

impl OutboundHooks {
    fn permits(&self, uri: &http::Uri) -> bool {
        url::Url::parse(&uri.to_string()).is_ok_and(|url| self.allowed.allows(&url))
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        self.sent += 1;
        if !self.permits(request.uri()) {
            eprintln!(
                "[{}] outbound request to {} denied: not in allowed_outbound_hosts",
                self.component,
                request.uri()
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
