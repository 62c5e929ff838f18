//! [`Grpc`]: a tower layer around a gRPC service that counts each request
//! by RPC and status code and times it to its response headers.
//!
//! The code is in the response headers when the answer is trailers-only
//! (every refusal), otherwise in the trailers at the end of the body; a
//! body dropped before its trailers (the client went away, the stream was
//! ended) counts as `CANCELLED`. Timing stops at the headers, so a watch
//! is timed until it opens, not for as long as it stays open.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::BodyExt;
use metrics::{counter, histogram};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use super::{GRPC_DURATION, GRPC_REQUESTS};

/// `inner`, measured.
#[derive(Debug, Clone)]
pub(crate) struct Grpc<S> {
    inner: S,
}

impl<S> Grpc<S> {
    /// Measures `inner`.
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for Grpc<S> {
    const NAME: &'static str = S::NAME;
}

/// The method of `/package.Service/Method`, as a static label when it is
/// one of `cfgd.v1.Settings`'s (label values stay few whatever is sent).
fn rpc(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "Get",
        "Snapshot",
        "Set",
        "Unset",
        "Validate",
        "Watch",
        "History",
        "Rollback",
        "ListProfiles",
        "CreateProfile",
        "UseProfile",
        "DeleteProfile",
        "RenameProfile",
        "InspectProfile",
        "Status",
        "Catalog",
    ];
    let method = path.rsplit('/').next().unwrap_or_default();
    KNOWN
        .iter()
        .find(|k| **k == method)
        .copied()
        .unwrap_or("other")
}

/// gRPC's code names, by number.
fn code_name(code: &[u8]) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .and_then(|c| NAMES.get(c).copied())
        .unwrap_or("UNKNOWN")
}

/// Counts one request once its code is known, or as `CANCELLED` when it
/// is dropped first.
struct Count {
    rpc: &'static str,
    code: Option<&'static str>,
}

impl Count {
    fn answered(&mut self, code: &http::HeaderValue) {
        self.code = Some(code_name(code.as_bytes()));
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        let code = self.code.unwrap_or("CANCELLED");
        counter!(GRPC_REQUESTS, "rpc" => self.rpc, "code" => code).increment(1);
    }
}

impl<S> Service<http::Request<Body>> for Grpc<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let start = Instant::now();
        let rpc = rpc(request.uri().path());
        let mut count = Count { rpc, code: None };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            histogram!(GRPC_DURATION, "rpc" => rpc).record(start.elapsed().as_secs_f64());
            if let Some(code) = response.headers().get("grpc-status") {
                count.answered(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                        count.answered(code);
                    }
                    frame
                }))
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_few_whatever_the_path() {
        assert_eq!(rpc("/cfgd.v1.Settings/Get"), "Get");
        assert_eq!(rpc("/cfgd.v1.Settings/Watch"), "Watch");
        assert_eq!(rpc("/cfgd.v1.Settings/NoSuchThing"), "other");
        assert_eq!(rpc(""), "other");
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"16"), "UNAUTHENTICATED");
        assert_eq!(code_name(b"99"), "UNKNOWN");
        assert_eq!(code_name(b"x"), "UNKNOWN");
    }
}
