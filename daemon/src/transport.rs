//! How client connections are accepted and kept, so that no number of idle,
//! dead or greedy clients can lock others out:
//!
//! - a cap on open connections: each accepted connection holds a permit in
//!   its IO object until it closes; beyond the cap a connection is closed at
//!   once (and said so, at most every [`REPORT_EVERY`]);
//! - an idle timeout: a connection with no stream open (a watch counts, for
//!   as long as it lasts) for that long is closed — this also ends
//!   connections that never finish their handshake;
//! - HTTP/2 keep-alive pings: a peer that answers none within the timeout
//!   (dead, or half-open) is dropped;
//! - a cap on concurrent streams per connection (HTTP/2's
//!   `SETTINGS_MAX_CONCURRENT_STREAMS`; further streams are refused).
//!
//! A connection's writes are batched per scheduler turn ([`coalesce`]), so
//! one change fanned out to many streams of a connection leaves in one
//! system call.
//!
//! Each logs a line when it acts. [`Connections`] counts for status.

mod coalesce;
mod conn;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::layer::util::{Identity, Stack};

use self::conn::{CountStreamsLayer, Incoming, UnixAccept};
use crate::config::ConnectionLimits;
use crate::listener::{Kind, Listener};

/// The daemon's gRPC router, with streams counted per connection.
pub(crate) type Router = tonic::transport::server::Router<Stack<CountStreamsLayer, Identity>>;

/// A gRPC server under `connections`' limits, serving TLS when given.
///
/// # Errors
/// When the TLS configuration cannot be used.
pub(crate) fn server(
    connections: &Connections,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Result<tonic::transport::Server<Stack<CountStreamsLayer, Identity>>, tonic::transport::Error> {
    let mut server = connections.configure(tonic::transport::Server::builder());
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    Ok(server.layer(CountStreamsLayer))
}

/// Serves `router` on `listener` until `signal`, then waits for open
/// connections to close; `ready` runs once connections are being accepted.
/// `plain` says there is no TLS (a Unix socket's connections then get
/// grpc-core's `:authority` fixed). A Unix socket's file is removed
/// afterwards (if it is still ours).
///
/// # Errors
/// A server failure.
pub(crate) async fn serve(
    router: Router,
    listener: Listener,
    plain: bool,
    connections: Arc<Connections>,
    signal: impl Future<Output = ()>,
    ready: impl FnOnce() + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    match listener.kind {
        Kind::Tcp(l) => {
            router
                .serve_with_incoming_shutdown(Incoming::new(l, connections, ready), signal)
                .await
        }
        Kind::Unix(listener, path) => {
            let accept = UnixAccept { listener, plain };
            let served = router
                .serve_with_incoming_shutdown(Incoming::new(accept, connections, ready), signal)
                .await;
            path.remove();
            served
        }
    }
}

/// Connection refusals at the cap are logged at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The daemon's connections: limits, permits and counts.
#[derive(Debug)]
pub(crate) struct Connections {
    limits: ConnectionLimits,
    permits: Arc<Semaphore>,
    open: AtomicU32,
    refused: AtomicU64,
    closed_idle: AtomicU64,
    /// Refusals not yet reported, and when the last report was.
    report: std::sync::Mutex<(u64, Option<tokio::time::Instant>)>,
}

impl Connections {
    /// Connections under `limits`.
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            open: AtomicU32::new(0),
            refused: AtomicU64::new(0),
            closed_idle: AtomicU64::new(0),
            report: std::sync::Mutex::new((0, None)),
        })
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Applies the HTTP/2 limits (streams, keep-alive) to a server.
    pub(crate) fn configure<L>(
        &self,
        server: tonic::transport::Server<L>,
    ) -> tonic::transport::Server<L> {
        server
            .max_concurrent_streams(self.limits.max_streams_per_connection)
            .http2_keepalive_interval(Some(self.limits.keepalive_interval))
            .http2_keepalive_timeout(Some(self.limits.keepalive_timeout))
    }

    /// For status.
    pub(crate) fn to_pb(&self) -> cfgd_proto::pb::ConnectionStatus {
        cfgd_proto::pb::ConnectionStatus {
            open: self.open.load(Ordering::Relaxed),
            limit: u32::try_from(self.limits.max_connections).unwrap_or(u32::MAX),
            refused: self.refused.load(Ordering::Relaxed),
            closed_idle: self.closed_idle.load(Ordering::Relaxed),
        }
    }

    /// A permit for a new connection from `peer`, or `None` at the cap.
    fn admit(&self, peer: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.open.fetch_add(1, Ordering::Relaxed);
                Some(permit)
            }
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                let mut report = self.report.lock().expect("no panic holds the report");
                report.0 += 1;
                let now = tokio::time::Instant::now();
                if report.1.is_none_or(|at| now - at >= REPORT_EVERY) {
                    tracing::warn!(
                        %peer,
                        limit = self.limits.max_connections,
                        refused = report.0,
                        "connection limit reached: closing new connections until one ends (--max-connections; idle ones close after --idle-timeout-secs)"
                    );
                    *report = (0, Some(now));
                }
                None
            }
        }
    }

    fn closed(&self, idle: bool) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if idle {
            self.closed_idle.fetch_add(1, Ordering::Relaxed);
        }
    }
}
