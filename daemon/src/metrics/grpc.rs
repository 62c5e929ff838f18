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
use std::sync::OnceLock;

use metrics::{Counter, Histogram, counter, histogram};
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

/// `cfgd.v1.Settings`'s methods, the label values of `rpc` (any other
/// method is `other`, so label values stay few whatever is sent).
const RPCS: [&str; 19] = [
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
    "Ack",
    "Fleet",
    "other",
];

/// gRPC's code names, by number.
const CODES: [&str; 17] = [
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
const CANCELLED: usize = 1;
const UNKNOWN: usize = 2;

/// The index in [`RPCS`] of the method of `/package.Service/Method`.
fn rpc(path: &str) -> usize {
    let method = path.rsplit('/').next().unwrap_or_default();
    RPCS[..RPCS.len() - 1]
        .iter()
        .position(|k| *k == method)
        .unwrap_or(RPCS.len() - 1)
}

/// The index in [`CODES`] of a `grpc-status` value.
fn code(code: &[u8]) -> usize {
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|c| *c < CODES.len())
        .unwrap_or(UNKNOWN)
}

/// The metric handles, looked up once each (after the recorder is in
/// place) instead of by name and labels on every request.
struct Handles {
    duration: [OnceLock<Histogram>; RPCS.len()],
    requests: [[OnceLock<Counter>; CODES.len()]; RPCS.len()],
}

static HANDLES: Handles = Handles {
    duration: [const { OnceLock::new() }; RPCS.len()],
    requests: [const { [const { OnceLock::new() }; CODES.len()] }; RPCS.len()],
};

fn duration(rpc: usize) -> &'static Histogram {
    HANDLES.duration[rpc].get_or_init(|| {
        super::recorder();
        histogram!(GRPC_DURATION, "rpc" => RPCS[rpc])
    })
}

fn requests(rpc: usize, code: usize) -> &'static Counter {
    HANDLES.requests[rpc][code].get_or_init(|| {
        super::recorder();
        counter!(GRPC_REQUESTS, "rpc" => RPCS[rpc], "code" => CODES[code])
    })
}

/// Counts one request once its code is known, or as `CANCELLED` when it
/// is dropped first.
struct Count {
    rpc: usize,
    code: Option<usize>,
}

impl Count {
    fn answered(&mut self, value: &http::HeaderValue) {
        self.code = Some(code(value.as_bytes()));
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        requests(self.rpc, self.code.unwrap_or(CANCELLED)).increment(1);
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
            duration(rpc).record(start.elapsed().as_secs_f64());
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
        let rpc = |path| RPCS[rpc(path)];
        let code = |value| CODES[code(value)];
        assert_eq!(rpc("/cfgd.v1.Settings/Get"), "Get");
        assert_eq!(rpc("/cfgd.v1.Settings/Watch"), "Watch");
        assert_eq!(rpc("/cfgd.v1.Settings/Ack"), "Ack");
        assert_eq!(rpc("/cfgd.v1.Settings/NoSuchThing"), "other");
        assert_eq!(rpc("/cfgd.v1.Settings/other"), "other");
        assert_eq!(rpc(""), "other");
        assert_eq!(code(b"0"), "OK");
        assert_eq!(code(b"16"), "UNAUTHENTICATED");
        assert_eq!(code(b"99"), "UNKNOWN");
        assert_eq!(code(b"x"), "UNKNOWN");
    }
}
