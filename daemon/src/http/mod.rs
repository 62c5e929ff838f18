//! The daemon's HTTP listener: the web console and `/metrics`.
//!
//! One page (embedded in the binary, no build step) that stays live on
//! server-sent events fed by the same hub as the gRPC `Watch`, and a JSON
//! API under `/api` that calls the gRPC service's own handlers in-process —
//! so the console gets `cfg`'s auth (reads open, writes and reveals need
//! the token), limits, validation, masking and typed refusals, with no
//! second implementation of any of them. `/metrics` renders the daemon's
//! metrics ([`crate::metrics`]) in the Prometheus text format.
//!
//! Loopback by default (`127.0.0.1:7980`). It stops with the daemon: no new
//! connections, its event streams end (the watch streams do), in-flight
//! requests finish within the drain deadline. Connections are capped, idle
//! ones closed, request bodies bounded.
//!
//! # Layout
//! - `server` — accepting connections under [`HttpLimits`]; the drain.
//! - `routes` — the router: pages, API, `/metrics`; the same-origin guard.
//! - `api` — the JSON API over the gRPC service.
//! - `events` — the live stream (server-sent events over `Watch`).
//! - `json` — wire types as JSON, with `cfg`'s words for values and sources.
//! - `refusal` — a refused call as JSON, from the service's typed `Status`.
//! - `schedule` — the retry schedule the task defaults give.
//! - `assets` — the page, its script and style, embedded.

mod api;
mod assets;
mod events;
mod json;
mod refusal;
mod routes;
mod schedule;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use cfgd_proto::pb;
use cfgd_proto::pb::settings_server::Settings as _;
use serde_json::Value as Json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::DaemonError;
use crate::hub::Hub;
use crate::service::SettingsService;

/// The default console address: `127.0.0.1:7980`.
pub const DEFAULT_HTTP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7980);

/// What `--http` says: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAddr {
    /// No console and no `/metrics`.
    Off,
    /// Serve them here.
    At(SocketAddr),
}

impl std::str::FromStr for HttpAddr {
    type Err = String;

    /// `off`, or `IP:PORT` (port 0 picks a free one).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(HttpAddr::Off);
        }
        s.parse().map(HttpAddr::At).map_err(|_| {
            format!(
                "invalid console address {s:?}: expected IP:PORT such as 127.0.0.1:7980, or off"
            )
        })
    }
}

/// Limits on the console's connections and requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Most connections open at once; beyond it a new one is closed at once.
    pub max_connections: usize,
    /// A connection with no bytes in either direction for this long is
    /// closed (an open event stream sends a comment every third of it, at
    /// most every 15 s, so it is never idle while its browser reads it).
    pub idle_timeout: Duration,
    /// Longest a client may take to send a request's headers.
    pub header_timeout: Duration,
}

impl Default for HttpLimits {
    /// 512 connections, closed after 60 s idle; 30 s to send headers.
    fn default() -> Self {
        Self {
            max_connections: 512,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// A bound console listener (cheap to clone: the socket is shared; the
/// daemon takes it once).
#[derive(Debug, Clone)]
pub struct HttpListener {
    socket: Arc<std::net::TcpListener>,
    addr: SocketAddr,
    limits: HttpLimits,
}

impl HttpListener {
    /// Binds `addr`.
    ///
    /// # Errors
    /// When the address is in use or cannot be bound.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let socket = tokio::net::TcpListener::bind(addr).await?.into_std()?;
        let addr = socket.local_addr()?;
        Ok(Self {
            socket: Arc::new(socket),
            addr,
            limits: HttpLimits::default(),
        })
    }

    /// The same listener under `limits`.
    pub fn with_limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Where it listens (the port it got, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The console listener `--http` asks for: `None` given means the
    /// default address, which is skipped with a warning when it is taken
    /// (another daemon has it); an address given must be bound.
    ///
    /// # Errors
    /// When an address given cannot be bound.
    pub async fn open(given: Option<HttpAddr>) -> std::io::Result<Option<HttpListener>> {
        match given {
            Some(HttpAddr::Off) => Ok(None),
            Some(HttpAddr::At(addr)) => HttpListener::bind(addr).await.map(Some).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot serve the console on {addr}: {e} (choose another with --http ADDR, or --http off)"),
                )
            }),
            None => match HttpListener::bind(DEFAULT_HTTP).await {
                Ok(l) => Ok(Some(l)),
                Err(e) => {
                    tracing::warn!(addr = %DEFAULT_HTTP, error = %e, "no console: its default address cannot be bound (pass --http ADDR to serve it elsewhere)");
                    Ok(None)
                }
            },
        }
    }
}

/// What every console handler reaches: the service, and the hub for what
/// only the console shows (status changes, metrics).
#[derive(Debug, Clone)]
struct Console {
    service: SettingsService,
    hub: Arc<Hub>,
    metrics: Option<&'static metrics_exporter_prometheus::PrometheusHandle>,
    /// How often a quiet event stream sends a comment: well inside the idle
    /// timeout, so an open stream is never closed as idle.
    keep_alive: Duration,
}

impl Console {
    /// The daemon's status, its files and the profiles, as the page shows
    /// them.
    async fn status(&self, headers: &HeaderMap) -> Result<Json, refusal::Refusal> {
        let status = self
            .service
            .status(api::request(headers, pb::StatusRequest {}))
            .await?;
        let profiles = self
            .service
            .list_profiles(api::request(headers, pb::ListProfilesRequest {}))
            .await?;
        let mut out = json::status(status.get_ref());
        out["profiles"] = json::profiles(profiles.get_ref());
        Ok(out)
    }
}

/// The running console: ends when the daemon's stop token is cancelled and
/// its connections have drained (or the deadline passed).
#[derive(Debug)]
pub(crate) struct Running {
    task: JoinHandle<()>,
}

impl Running {
    /// Waits until the console has stopped.
    pub(crate) async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Whether `addr` is beyond loopback (allowed only with a token).
///
/// # Errors
/// Beyond loopback without a token.
fn exposed(addr: SocketAddr, token: bool) -> Result<bool, DaemonError> {
    if addr.ip().to_canonical().is_loopback() {
        return Ok(false);
    }
    if !token {
        return Err(DaemonError::Console(format!(
            "refusing to serve the console on {addr} without a token: anyone who can reach it could change settings (set a token, serve it on loopback, or --http off)"
        )));
    }
    Ok(true)
}

/// Starts the console when `config` has a listener for it.
///
/// # Errors
/// As [`start`].
pub(crate) fn start_configured(
    config: &crate::Config,
    service: &SettingsService,
    stop: CancellationToken,
) -> Result<Option<Running>, DaemonError> {
    let Some(listener) = config.http.clone() else {
        return Ok(None);
    };
    start(
        listener,
        service.clone(),
        config.token.is_some(),
        config.limits.max_message_bytes,
        stop,
        config.shutdown_grace,
    )
    .map(Some)
}

/// Starts serving the console on `listener`. A listener beyond loopback
/// needs the token (writes would otherwise be open to the network; the
/// console speaks plain HTTP, so even then the token crosses it in clear,
/// which is logged).
///
/// # Errors
/// A listener beyond loopback without a token, or one that cannot be used.
pub(crate) fn start(
    listener: HttpListener,
    service: SettingsService,
    token: bool,
    max_body: usize,
    stop: CancellationToken,
    grace: Duration,
) -> Result<Running, DaemonError> {
    let addr = listener.addr;
    if exposed(addr, token)? {
        tracing::warn!(%addr, "the console serves plain HTTP beyond loopback: the token crosses the network in clear");
    }
    let socket = listener
        .socket
        .try_clone()
        .and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(s)
        })
        .map_err(|e| {
            DaemonError::Console(format!("cannot use the console listener {addr}: {e}"))
        })?;
    let hub = service.hub().clone();
    let console = Console {
        service,
        hub,
        metrics: crate::metrics::recorder(),
        keep_alive: (listener.limits.idle_timeout / 3)
            .clamp(Duration::from_millis(10), Duration::from_secs(15)),
    };
    let router = routes::router(console, max_body);
    tracing::info!(%addr, "console and /metrics at http://{addr}/");
    let task = tokio::spawn(server::serve(socket, router, listener.limits, stop, grace));
    Ok(Running { task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_the_console_needs_a_token() {
        for loopback in ["127.0.0.1:7980", "[::1]:7980", "[::ffff:127.0.0.1]:1"] {
            assert!(
                !exposed(loopback.parse().unwrap(), false).unwrap(),
                "{loopback}"
            );
        }
        let err = exposed("0.0.0.0:7980".parse().unwrap(), false).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "console: refusing to serve the console on 0.0.0.0:7980 without a token"
            ),
            "{err}"
        );
        assert!(exposed("10.0.0.1:7980".parse().unwrap(), true).unwrap());
    }

    #[test]
    fn http_says_an_address_or_off() {
        assert_eq!("off".parse(), Ok(HttpAddr::Off));
        assert_eq!("OFF".parse(), Ok(HttpAddr::Off));
        assert_eq!(
            "127.0.0.1:0".parse(),
            Ok(HttpAddr::At("127.0.0.1:0".parse().unwrap()))
        );
        assert!(
            "localhost:80"
                .parse::<HttpAddr>()
                .unwrap_err()
                .contains("expected IP:PORT")
        );
    }
}
