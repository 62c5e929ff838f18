//! What the retry examples share (and `tests/retry_examples.rs` with them):
//! a flaky HTTP service on `127.0.0.1:0`, a real HTTP client for it (hyper),
//! and a few ways to print a task run.
//!
//! Included by each example with `#[path = "common/mod.rs"] mod common;`.

// Each example uses only part of this module.
#![allow(dead_code)]

use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfgd_sdk::retry::{StateName, SuggestedDelay, TaskRun};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A local HTTP service that answers request *n* with `failures[n-1]`
/// while the list lasts (with a `Retry-After` header where one is given),
/// then `200 OK` with its body. It prints every answer and records when
/// each request arrived.
#[derive(Debug)]
pub(crate) struct FlakyService {
    url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    accept: JoinHandle<()>,
}

impl FlakyService {
    /// Starts the service on a free loopback port.
    pub(crate) async fn start(failures: &[u16], body: &'static str) -> Self {
        let script: Vec<(u16, Option<u64>)> = failures.iter().map(|&c| (c, None)).collect();
        Self::start_with_retry_after(&script, body).await
    }

    /// [`FlakyService::start`], each failure with the `Retry-After` (in
    /// seconds) it sends, if any.
    pub(crate) async fn start_with_retry_after(
        failures: &[(u16, Option<u64>)],
        body: &'static str,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}/endpoint", listener.local_addr().expect("bound"));
        let script: Arc<[(StatusCode, Option<u64>)]> = failures
            .iter()
            .map(|&(code, after)| {
                (
                    StatusCode::from_u16(code).expect("a valid status code"),
                    after,
                )
            })
            .collect();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = arrivals.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, seen) = (script.clone(), seen.clone());
                let answer = service_fn(move |_: Request<Incoming>| {
                    let n = {
                        let mut seen = seen.lock().expect("not poisoned");
                        seen.push(Instant::now());
                        seen.len()
                    };
                    let (status, after) =
                        script.get(n - 1).copied().unwrap_or((StatusCode::OK, None));
                    match after {
                        Some(s) => {
                            println!("    [service] request {n} -> {status}, Retry-After: {s}")
                        }
                        None => println!("    [service] request {n} -> {status}"),
                    }
                    let text = if status.is_success() { body } else { "" };
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(text.as_bytes())));
                    *response.status_mut() = status;
                    if let Some(s) = after {
                        response
                            .headers_mut()
                            .insert(hyper::header::RETRY_AFTER, s.into());
                    }
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), answer));
            }
        });
        Self {
            url,
            arrivals,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT/endpoint`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// How many requests it has answered.
    pub(crate) fn requests(&self) -> usize {
        self.arrivals.lock().expect("not poisoned").len()
    }

    /// The time between consecutive requests: what each retry waited, as
    /// the service saw it.
    pub(crate) fn gaps(&self) -> Vec<Duration> {
        let arrivals = self.arrivals.lock().expect("not poisoned");
        arrivals.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl Drop for FlakyService {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Why a GET failed, as the task sees it: the typed error a
/// `retry_condition_fn` reads through `state.error()`.
#[derive(Debug, PartialEq)]
pub(crate) enum FetchError {
    /// The service answered with a status that is not 2xx (httpx's
    /// `HTTPStatusError` from `raise_for_status()`).
    Status {
        /// The status.
        status: StatusCode,
        /// The URL requested.
        url: String,
        /// The delay the `Retry-After` header asked for, if any.
        retry_after: Option<SuggestedDelay>,
    },
    /// No connection could be made (httpx's `ConnectError`).
    Connect(String),
    /// Anything else: a bad URL, a broken connection or body.
    Other(String),
}

impl FetchError {
    /// The status code, for [`FetchError::Status`].
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }

    /// The server's `Retry-After`, for `Task::suggested_delay_fn`.
    pub(crate) fn suggested_delay(&self) -> Option<SuggestedDelay> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status { status, url, .. } => {
                let kind = if status.is_client_error() {
                    "Client error"
                } else {
                    "Server error"
                };
                write!(f, "{kind} '{status}' for url '{url}'")
            }
            FetchError::Connect(cause) => write!(f, "ConnectError: {cause}"),
            FetchError::Other(cause) => f.write_str(cause),
        }
    }
}

impl std::error::Error for FetchError {}

/// A GET with a real HTTP client; a status that is not 2xx is an error
/// (`response.raise_for_status()`); returns the body.
pub(crate) async fn get(url: &str) -> Result<String, FetchError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| FetchError::Other(format!("bad url {url:?}: {e}")))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(uri).await.map_err(|e| {
        if e.is_connect() {
            FetchError::Connect(causes(&e))
        } else {
            FetchError::Other(causes(&e))
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| SuggestedDelay::from_retry_after(v, std::time::SystemTime::now()));
        return Err(FetchError::Status {
            status,
            url: url.to_owned(),
            retry_after,
        });
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| FetchError::Other(causes(&e)))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// An error and its sources, `a: b: c`.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text = format!("{text}: {e}");
        source = e.source();
    }
    text
}

/// A URL on a loopback port nothing listens on (bound, then closed), so a
/// request to it is refused.
pub(crate) fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port();
    format!("http://127.0.0.1:{port}/endpoint")
}

/// The delay each retry of `run` was scheduled with (its `AwaitingRetry`
/// states), in seconds.
pub(crate) fn scheduled_delays(run: &TaskRun) -> Vec<f64> {
    run.states()
        .iter()
        .filter(|s| s.name() == StateName::AwaitingRetry)
        .map(|s| {
            let at = s.scheduled_time().expect("AwaitingRetry has a time");
            at.duration_since(s.timestamp())
                .expect("scheduled after entering the state")
                .as_secs_f64()
        })
        .collect()
}

/// The delay each retry of `run` was scheduled with, after checking that
/// the service saw the next request that much later (and not much more,
/// even on a busy machine); prints both.
pub(crate) fn checked_waits(run: &TaskRun, service: &FlakyService) -> Vec<f64> {
    let scheduled = scheduled_delays(run);
    let gaps = service.gaps();
    assert_eq!(
        gaps.len(),
        scheduled.len(),
        "one gap between requests per retry"
    );
    for (k, (gap, want)) in gaps.iter().zip(&scheduled).enumerate() {
        let gap = gap.as_secs_f64();
        println!(
            "  retry {}: scheduled {want:.3} s later; the service saw it {gap:.3} s later",
            k + 1
        );
        assert!(
            gap + 1e-3 >= *want && gap < want + 2.0,
            "retry {} came {gap} s later, not {want} s",
            k + 1
        );
    }
    scheduled
}

/// Asserts two lists of seconds are equal (to a nanosecond).
pub(crate) fn assert_seconds(got: &[f64], want: &[f64]) {
    assert!(
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9),
        "delays {got:?}, expected {want:?}"
    );
}

/// The state names of `run`, comma-separated.
pub(crate) fn history(run: &TaskRun) -> String {
    run.state_names().join(", ")
}

/// Shows the engine's Prefect-style log lines (`Task run failed with
/// exception: … - Retry 1/2 will start 0.5 second(s) from now`) on stdout;
/// `RUST_LOG` overrides the filter.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("cfgd_sdk::retry=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .without_time()
        .try_init();
}
