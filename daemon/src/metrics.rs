//! The daemon's metrics, through the `metrics` facade, rendered in the
//! Prometheus text format by the console's `/metrics` route.
//!
//! Counters and histograms are recorded where things happen (a line in the
//! writer, the watch stream, the reload loop; [`Grpc`] around the gRPC
//! service); what is a property of the published state (the revision,
//! watchers, files in error, the store's health) is read from the hub and
//! the store's state when scraped, so it costs nothing between scrapes.
//!
//! The store gauges say the same for both stores: writable while the
//! revision log can be written and, with etcd, the shared store is in step;
//! degraded since the earlier of the two failures; reachable while the log
//! can be written (file) or the last call to etcd was answered; and, with
//! etcd, the shared revision applied against the newest seen. Without the HTTP listener
//! no recorder is installed and every call here is the facade's no-op.
//!
//! The recorder is process-wide (the facade's design): daemons run
//! in-process side by side (tests) share its counters.
//!
//! # Layout
//! - `grpc` — [`Grpc`]: requests by RPC and code, time to the response.

mod grpc;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub(crate) use grpc::Grpc;

use crate::hub::{FileRole, Hub, Resync};
use crate::store::status::StoreStatus;

/// gRPC requests, by RPC and status code.
pub(crate) const GRPC_REQUESTS: &str = "cfgd_grpc_requests_total";
/// Time from a gRPC request to its response headers.
pub(crate) const GRPC_DURATION: &str = "cfgd_grpc_request_duration_seconds";
const WRITE_GROUP: &str = "cfgd_write_group_size";
const LOG_APPEND: &str = "cfgd_log_append_duration_seconds";
const LOG_FAILURES: &str = "cfgd_log_append_failures_total";
const REVISION: &str = "cfgd_revision";
const OLDEST: &str = "cfgd_oldest_revision";
const WATCHERS: &str = "cfgd_watchers";
const EVENTS: &str = "cfgd_watch_events_total";
const RESYNCS: &str = "cfgd_watch_resyncs_total";
const RELOADS: &str = "cfgd_reloads_total";
const FILES_IN_ERROR: &str = "cfgd_config_files_in_error";
const FILE_ERROR: &str = "cfgd_config_file_error";
const STORE_WRITABLE: &str = "cfgd_store_writable";
const STORE_DEGRADED: &str = "cfgd_store_degraded_since_seconds";
const STORE_INFO: &str = "cfgd_store_info";
const STORE_REACHABLE: &str = "cfgd_store_reachable";
const STORE_LAST_CONTACT: &str = "cfgd_store_last_contact_seconds";
const STORE_SHARED: &str = "cfgd_store_shared_revision";
const STORE_HEAD: &str = "cfgd_store_shared_head_revision";
const PROFILES_OK: &str = "cfgd_profiles_file_ok";
const HTTP_REQUESTS: &str = "cfgd_http_requests_total";
const CONSOLE_STREAMS: &str = "cfgd_console_streams";

/// Every metric with its help text: what the README's table lists.
pub(crate) const HELP: &[(&str, &str)] = &[
    (
        GRPC_REQUESTS,
        "gRPC requests answered, by RPC and gRPC status code",
    ),
    (
        GRPC_DURATION,
        "Time from a gRPC request to its response headers, by RPC (for Watch: until the stream opens)",
    ),
    (
        WRITE_GROUP,
        "Records made durable by one append and fsync of the revision log (group commit)",
    ),
    (
        LOG_APPEND,
        "Time to append one group of records to the revision log, fsync included",
    ),
    (
        LOG_FAILURES,
        "Appends to the revision log that failed (the writes were refused)",
    ),
    (REVISION, "The current revision"),
    (
        OLDEST,
        "The oldest revision still in history (watch resume and rollback reach back to it)",
    ),
    (
        WATCHERS,
        "Open watch streams (gRPC Watch and console event streams)",
    ),
    (
        EVENTS,
        "Watch events delivered to watchers, by kind (change, resync)",
    ),
    (
        RESYNCS,
        "Full snapshots sent to watchers instead of a replay, by reason",
    ),
    (
        RELOADS,
        "Config-dir reloads, by outcome: changed (a revision), unchanged, invalid (a file in error kept its last good content), failed (not durable)",
    ),
    (
        FILES_IN_ERROR,
        "Config files whose current content is not in force",
    ),
    (
        FILE_ERROR,
        "1 while this config file's current content is not in force",
    ),
    (
        STORE_WRITABLE,
        "1 while writes are taken (the revision log can be written and, with etcd, the shared store is in step), 0 while they are refused",
    ),
    (
        STORE_DEGRADED,
        "Unix time since which writes are refused (the revision log cannot be written, or etcd is unreachable or out of step); 0 while they are taken",
    ),
    (
        STORE_INFO,
        "1, labelled with the store in use (kind: file or etcd)",
    ),
    (
        STORE_REACHABLE,
        "1 while the store answers: the revision log can be written (file), the last call to etcd was answered (etcd)",
    ),
    (
        STORE_LAST_CONTACT,
        "Unix time an etcd member last answered (0: never, or the file store)",
    ),
    (
        STORE_SHARED,
        "The shared revision this daemon has applied (etcd; 0 with the file store)",
    ),
    (
        STORE_HEAD,
        "The newest shared revision this daemon has seen in etcd (0 with the file store); above the applied one while it catches up",
    ),
    (
        PROFILES_OK,
        "1 while the profiles file is valid and in step with the log",
    ),
    (
        HTTP_REQUESTS,
        "Console and /metrics HTTP requests, by route and status",
    ),
    (
        CONSOLE_STREAMS,
        "Open console event streams (server-sent events)",
    ),
];

/// The process's Prometheus recorder, installed on first use; `None` when
/// another recorder was installed first (an embedding program's).
pub(crate) fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let group = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(WRITE_GROUP.into()), &group))
                .and_then(PrometheusBuilder::install_recorder);
            match built {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: cannot install the Prometheus recorder; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    for (name, help) in HELP {
        let help = *help;
        if name.ends_with("_total") {
            describe_counter!(*name, help);
        } else if name.ends_with("_seconds") && ![STORE_DEGRADED, STORE_LAST_CONTACT].contains(name)
        {
            describe_histogram!(*name, Unit::Seconds, help);
        } else if *name == WRITE_GROUP {
            describe_histogram!(*name, Unit::Count, help);
        } else {
            describe_gauge!(*name, help);
        }
    }
}

/// The metrics as Prometheus text, with the published state and the
/// store's state read now.
/// `unreachable_since` is the etcd client's (`None` with the file store).
pub(crate) fn render(
    handle: &PrometheusHandle,
    hub: &Hub,
    store: &StoreStatus,
    unreachable_since: Option<SystemTime>,
) -> String {
    let view = hub.view();
    gauge!(REVISION).set(view.revision as f64);
    gauge!(OLDEST).set(hub.oldest() as f64);
    gauge!(WATCHERS).set(hub.watchers() as f64);
    let mut bad = BTreeSet::new();
    let (mut writable, mut profiles_ok) = (true, true);
    for f in view.files.iter() {
        match f.kind {
            FileRole::Config(_) if f.error.is_some() => {
                bad.insert(f.path.clone());
            }
            FileRole::Config(_) => {}
            FileRole::Profiles => profiles_ok &= f.error.is_none(),
            FileRole::Log => writable = false,
        }
    }
    gauge!(FILES_IN_ERROR).set(bad.len() as f64);
    // A file that was bad and is fixed (or gone) goes back to 0 rather than
    // staying at its last value.
    static REPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    for fixed in reported.difference(&bad) {
        gauge!(FILE_ERROR, "file" => fixed.clone()).set(0.0);
    }
    for file in &bad {
        gauge!(FILE_ERROR, "file" => file.clone()).set(1.0);
    }
    *reported = bad;
    drop(reported);
    let log_since = Some(LOG_DEGRADED_SINCE_MS.load(Ordering::Relaxed)).filter(|s| *s != 0);
    let since = match (log_since, store.degraded_since_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let etcd = store.kind == "etcd";
    writable &= !store.degraded();
    let reachable = if etcd {
        unreachable_since.is_none()
    } else {
        log_since.is_none()
    };
    let seconds = |ms: Option<i64>| ms.map_or(0.0, |ms| ms as f64 / 1000.0);
    gauge!(STORE_WRITABLE).set(f64::from(u8::from(writable)));
    gauge!(STORE_DEGRADED).set(seconds(since));
    gauge!(STORE_INFO, "kind" => store.kind).set(1.0);
    gauge!(STORE_REACHABLE).set(f64::from(u8::from(reachable)));
    gauge!(STORE_LAST_CONTACT).set(seconds(store.last_contact_ms));
    gauge!(STORE_SHARED).set(store.applied as f64);
    gauge!(STORE_HEAD).set(store.head as f64);
    gauge!(PROFILES_OK).set(f64::from(u8::from(profiles_ok)));
    handle.run_upkeep();
    handle.render()
}

/// The writer wrote a group of `size` requests.
pub(crate) fn write_group(size: usize) {
    histogram!(WRITE_GROUP).record(size as f64);
}

/// Since when (ms since the Unix epoch) the revision log fails; 0 while it
/// can be written.
static LOG_DEGRADED_SINCE_MS: AtomicI64 = AtomicI64::new(0);

/// One append of a group to the revision log took `elapsed`.
pub(crate) fn log_append(elapsed: Duration, ok: bool) {
    histogram!(LOG_APPEND).record(elapsed.as_secs_f64());
    if ok {
        LOG_DEGRADED_SINCE_MS.store(0, Ordering::Relaxed);
    } else {
        counter!(LOG_FAILURES).increment(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let _ =
            LOG_DEGRADED_SINCE_MS.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// How a reload of the config dir ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// Values in force changed: a revision.
    Changed,
    /// Nothing in force changed.
    Unchanged,
    /// A file is in error; its last good content stays in force.
    Invalid,
    /// The writer could not make it durable.
    Failed,
}

/// A reload ended as `outcome`.
pub(crate) fn reload(outcome: Reload) {
    let outcome = match outcome {
        Reload::Changed => "changed",
        Reload::Unchanged => "unchanged",
        Reload::Invalid => "invalid",
        Reload::Failed => "failed",
    };
    counter!(RELOADS, "outcome" => outcome).increment(1);
}

/// How the writer's answer to a reload of `dir` counts.
pub(crate) fn reload_outcome<E>(
    dir: &cfgd_settings::ConfigDir,
    answer: &Result<crate::writer::Outcome, E>,
) -> Reload {
    match answer {
        Err(_) => Reload::Failed,
        Ok(_) if dir.errors().next().is_some() => Reload::Invalid,
        Ok(o) if o.record.is_some() => Reload::Changed,
        Ok(_) => Reload::Unchanged,
    }
}

/// A watch event went out to a watcher.
pub(crate) fn watch_event(resync: bool) {
    // Counted once per event per watcher: the handles are looked up once
    // (after the recorder is in place), not per call.
    static COUNTERS: OnceLock<[metrics::Counter; 2]> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        recorder();
        [
            counter!(EVENTS, "kind" => "change"),
            counter!(EVENTS, "kind" => "resync"),
        ]
    });
    counters[usize::from(resync)].increment(1);
}

/// A watcher got a snapshot for `reason`.
pub(crate) fn resync(reason: Resync) {
    let reason = match reason {
        Resync::Initial => "initial",
        Resync::Compacted => "compacted",
        Resync::Lagged => "lagged",
        Resync::Epoch => "epoch",
        Resync::Future => "future",
    };
    counter!(RESYNCS, "reason" => reason).increment(1);
}

/// A console or `/metrics` request on `route` was answered with `status`.
pub(crate) fn http_request(route: String, status: u16) {
    counter!(HTTP_REQUESTS, "route" => route, "status" => status.to_string()).increment(1);
}

/// A console event stream opened (`+1`) or closed (`-1`).
pub(crate) fn console_stream(opened: bool) {
    let g = gauge!(CONSOLE_STREAMS);
    if opened {
        g.increment(1.0);
    } else {
        g.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_metric_and_only_those() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("the README");
        let listed: BTreeSet<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `cfgd_"))
            .filter_map(|l| l.split('`').next())
            .collect();
        // The daemon's and the SDK's: one table each, one list each.
        let declared: BTreeSet<&str> = HELP
            .iter()
            .chain(cfgd_sdk::metrics::HELP)
            .map(|(n, _)| n.strip_prefix("cfgd_").expect("cfgd_ names"))
            .collect();
        assert_eq!(
            listed, declared,
            "README.md's metrics tables against HELP and cfgd_sdk::metrics::HELP"
        );
        for (name, _) in HELP.iter().chain(cfgd_sdk::metrics::HELP) {
            let ok = name.ends_with("_total")
                || name.ends_with("_seconds")
                || !name.contains("_seconds_");
            assert!(ok, "{name}: Prometheus names end in _total or a unit");
        }
    }
}
