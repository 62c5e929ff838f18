//! `cfgd-bench`: the load generator and the side-by-side benchmarks of
//! DESIGN.md §7 — cfgd beside etcd (what a user would pick instead) and a
//! bare tonic echo server (the floor: what gRPC itself costs here).
//!
//! `bench/run.sh` is the entry point: it builds, starts etcd, cfgd and the
//! echo server on loopback, runs the criterion benches and
//! `loadgen all`, and writes `bench/results/latest.{md,json}`.
//!
//! # Layout
//! - [`pb`] — the echo service generated from `proto/echo.proto`; etcd is
//!   reached through `cfgd-etcd`, the client the daemon uses too.
//! - [`echo`] — the echo server, the floor.
//! - [`procs`] — spawning and stopping cfgd and etcd, reading their RSS.
//! - [`stats`] — percentiles of a run, median/min/max over runs.
//! - [`unary`] — closed-loop unary load: reads and durable writes.
//! - [`fanout`] — watchers on cfgd and etcd, and the write → last watcher time.
//! - [`reload`] — config file replaced → watcher notified.
//! - [`footprint`] — RSS, start-up time, whole-process CLI time.
//! - [`retry_delay`] — how far a retry delay overshoots.
//! - [`report`] — figures, ratios, targets; the Markdown table and the JSON.
//! - [`suite`] — every measurement, run after run, into one report.
//!
//! # Example
//! Summarising one figure over three runs:
//! ```
//! use cfgd_bench::stats::OverRuns;
//!
//! let p50_us = OverRuns::new(&[151.0, 149.0, 160.0]);
//! assert_eq!(p50_us.median, Some(151.0));
//! assert_eq!((p50_us.min, p50_us.max), (Some(149.0), Some(160.0)));
//! ```

pub mod echo;
pub mod fanout;
pub mod footprint;
pub mod procs;
pub mod reload;
pub mod report;
pub mod retry_delay;
pub mod stats;
pub mod suite;
pub mod unary;

/// Generated protobuf code.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    /// The echo service.
    pub mod echo {
        tonic::include_proto!("cfgdbench.echo");
    }
}

/// The setting every read, write and watch uses (built in, an integer).
pub const KEY: &str = "PREFECT_TASKS_DEFAULT_RETRIES";

/// The etcd key standing for [`KEY`].
pub const ETCD_KEY: &str = "/cfgd-bench/PREFECT_TASKS_DEFAULT_RETRIES";

/// A `cfgd-etcd` client of the one etcd at `endpoint`, on its own HTTP/2
/// connection (each call makes a new one; clones share it), that gives a
/// call `timeout` before it counts as failed.
///
/// # Errors
/// An invalid endpoint.
pub fn etcd_client(
    endpoint: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<cfgd_etcd::Client> {
    let config = cfgd_etcd::Config::new([endpoint])
        .try_timeout(timeout)
        .deadline(timeout);
    Ok(cfgd_etcd::Client::new(config)?)
}

/// Connects one HTTP/2 connection to `endpoint` (each call makes a new one).
///
/// # Errors
/// An invalid endpoint or a refused connection.
pub async fn connect(endpoint: &str) -> anyhow::Result<tonic::transport::Channel> {
    use anyhow::Context;
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .with_context(|| format!("invalid endpoint {endpoint}"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    Ok(channel)
}
