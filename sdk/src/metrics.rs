//! The SDK's metrics, through the [`metrics`](https://docs.rs/metrics)
//! facade: the SDK records, the service chooses the exporter (a Prometheus
//! endpoint, StatsD, …) by installing a recorder; with none installed every
//! call is the facade's no-op. Without the `metrics` cargo feature (on by
//! default) nothing is recorded and the `metrics` crate is not linked.
//!
//! Per task or flow (labels `kind` = `task` | `flow` and `name`, the task's
//! or flow's name, never a run id):
//! - [`ATTEMPTS`]: attempts started (a run of three attempts counts 3);
//! - [`RUNS`]: runs ended, by final state (`state` = `Completed`, `Failed`,
//!   `Crashed`, `TimedOut`, `Cancelled`; a run whose parameters are
//!   invalid ends `Failed`);
//! - [`RETRY_DELAY`]: the delay before each retry (jittered, suggested or
//!   scheduled, as the run waits it; a zero delay is observed as 0);
//! - [`RUN_REVISION`]: the settings revision the latest run read its
//!   defaults from, so a dashboard ties a retry storm to the `cfg set` that
//!   caused it (not set by runs whose defaults were not the daemon's).
//!
//! Per live [`Settings`](crate::Settings) (label `service`, as `cfg fleet`
//! lists it):
//! - [`SETTINGS_REVISION`]: the revision of the live view;
//! - [`SETTINGS_CONNECTED`]: 1 while its watch of the daemon is open;
//! - [`SINCE_CONTACT`]: seconds since it last heard from the daemon (0
//!   while its watch is open: HTTP/2 pings keep an open stream honest),
//!   updated every second; counted from the handle's start when it never
//!   connected.
//!
//! A task or flow registers its handles at its first run and keeps them
//! (install the recorder before running tasks; one installed later sees
//! only tasks created after it); an attempt costs one counter increment.

/// Attempts started, per task or flow.
pub const ATTEMPTS: &str = "cfgd_sdk_attempts_total";
/// Runs ended, per task or flow and final state.
pub const RUNS: &str = "cfgd_sdk_runs_total";
/// The delay before each retry, per task or flow.
pub const RETRY_DELAY: &str = "cfgd_sdk_retry_delay_seconds";
/// The settings revision the latest run used, per task or flow.
pub const RUN_REVISION: &str = "cfgd_sdk_run_settings_revision";
/// The live view's revision, per service.
pub const SETTINGS_REVISION: &str = "cfgd_sdk_settings_revision";
/// 1 while the live view's watch is open, per service.
pub const SETTINGS_CONNECTED: &str = "cfgd_sdk_settings_connected";
/// Seconds since the live view last heard from the daemon, per service.
pub const SINCE_CONTACT: &str = "cfgd_sdk_settings_since_contact_seconds";

/// Every metric of the SDK with its help text (the README's table lists
/// the same).
pub const HELP: &[(&str, &str)] = &[
    (ATTEMPTS, "Attempts started, by task or flow (kind, name)"),
    (
        RUNS,
        "Runs ended, by task or flow (kind, name) and final state (state)",
    ),
    (
        RETRY_DELAY,
        "The delay before each retry, by task or flow (kind, name)",
    ),
    (
        RUN_REVISION,
        "The settings revision the latest run of this task or flow read its defaults from",
    ),
    (
        SETTINGS_REVISION,
        "The revision of the live settings view, by service",
    ),
    (
        SETTINGS_CONNECTED,
        "1 while the live settings watch the daemon, by service",
    ),
    (
        SINCE_CONTACT,
        "Seconds since the live settings last heard from the daemon (0 while watching), by service",
    ),
];

/// Describes every metric (help text, unit) to the recorder installed now.
/// The SDK does it once by itself, at the first run or live view; call it
/// again after installing a recorder later than that.
pub fn describe() {
    #[cfg(feature = "metrics")]
    for (name, help) in HELP {
        let help = *help;
        match *name {
            ATTEMPTS | RUNS => metrics::describe_counter!(*name, help),
            RETRY_DELAY => metrics::describe_histogram!(*name, metrics::Unit::Seconds, help),
            SINCE_CONTACT => metrics::describe_gauge!(*name, metrics::Unit::Seconds, help),
            _ => metrics::describe_gauge!(*name, help),
        }
    }
}

#[cfg(feature = "metrics")]
fn describe_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(describe);
}

/// A task's or flow's handles, registered at its first run (with the
/// recorder installed then: install it before running tasks) and kept for
/// the next ones; a clone registers its own.
#[derive(Default)]
pub(crate) struct Cache {
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<std::sync::Arc<Handles>>,
}

impl Clone for Cache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(feature = "metrics")]
struct Handles {
    attempts: metrics::Counter,
    delays: metrics::Histogram,
    revision: metrics::Gauge,
    /// One per final state, registered when a run first ends in it.
    runs: [std::sync::OnceLock<metrics::Counter>; 5],
    kind: &'static str,
    name: metrics::SharedString,
}

#[cfg(feature = "metrics")]
impl Handles {
    fn new(kind: &'static str, name: metrics::SharedString) -> Self {
        describe_once();
        let labels = [
            metrics::Label::from_static_parts("kind", kind),
            metrics::Label::new("name", name.clone()),
        ];
        Self {
            attempts: metrics::counter!(ATTEMPTS, labels.iter()),
            delays: metrics::histogram!(RETRY_DELAY, labels.iter()),
            revision: metrics::gauge!(RUN_REVISION, labels.iter()),
            runs: Default::default(),
            kind,
            name,
        }
    }
}

/// One run's handles.
pub(crate) struct Run {
    #[cfg(feature = "metrics")]
    handles: std::sync::Arc<Handles>,
}

impl Run {
    /// A run of the `kind` (`task` or `flow`) `name` starts with the
    /// settings of `revision`; `cache` is its owner's.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    // A `Cow`: a task's `&'static` name becomes a label without a copy.
    #[allow(clippy::ptr_arg)]
    #[inline]
    pub(crate) fn start(
        kind: &'static str,
        name: &std::borrow::Cow<'static, str>,
        revision: Option<u64>,
        cache: &Cache,
    ) -> Self {
        #[cfg(feature = "metrics")]
        {
            let handles = cache
                .handles
                .get_or_init(|| std::sync::Arc::new(Handles::new(kind, name.clone().into())))
                .clone();
            if let Some(revision) = revision {
                handles.revision.set(revision as f64);
            }
            Self { handles }
        }
        #[cfg(not(feature = "metrics"))]
        Self {}
    }

    /// An attempt starts.
    #[inline]
    pub(crate) fn attempt(&self) {
        #[cfg(feature = "metrics")]
        self.handles.attempts.increment(1);
    }

    /// A retry waits `seconds` first.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn delay(&self, seconds: f64) {
        #[cfg(feature = "metrics")]
        self.handles.delays.record(seconds.max(0.0));
    }

    /// The run ended in `state`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn finished(&self, state: crate::retry::StateName) {
        #[cfg(feature = "metrics")]
        {
            use crate::retry::StateName as S;
            let i = match state {
                S::Completed => 0,
                S::Failed => 1,
                S::Crashed => 2,
                S::TimedOut => 3,
                S::Cancelled | S::Pending | S::Running | S::AwaitingRetry | S::Retrying => 4,
            };
            let h = &self.handles;
            h.runs[i]
                .get_or_init(|| {
                    metrics::counter!(
                        RUNS,
                        "kind" => h.kind,
                        "name" => h.name.clone(),
                        "state" => state.as_str()
                    )
                })
                .increment(1);
        }
    }
}

/// A live view's handles (cheap to clone; clones share them).
#[cfg(feature = "client")]
#[derive(Clone)]
pub(crate) struct Live {
    #[cfg(feature = "metrics")]
    inner: std::sync::Arc<LiveInner>,
}

#[cfg(all(feature = "client", feature = "metrics"))]
struct LiveInner {
    revision: metrics::Gauge,
    connected: metrics::Gauge,
    since: metrics::Gauge,
    /// When the daemon was last heard from (tokio's clock), and whether a
    /// watch is open now.
    contact: std::sync::Mutex<(tokio::time::Instant, bool)>,
}

/// How often [`SINCE_CONTACT`] is brought up to date.
#[cfg(all(feature = "client", feature = "metrics"))]
pub(crate) const CONTACT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(feature = "client")]
impl Live {
    /// The handles of a live view of `service`, which has not heard from
    /// the daemon yet.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(service: &str) -> Self {
        #[cfg(feature = "metrics")]
        {
            describe_once();
            let service = service.to_owned();
            let inner = LiveInner {
                revision: metrics::gauge!(SETTINGS_REVISION, "service" => service.clone()),
                connected: metrics::gauge!(SETTINGS_CONNECTED, "service" => service.clone()),
                since: metrics::gauge!(SINCE_CONTACT, "service" => service),
                contact: std::sync::Mutex::new((tokio::time::Instant::now(), false)),
            };
            inner.connected.set(0.0);
            Self {
                inner: std::sync::Arc::new(inner),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Self {}
    }

    #[cfg(feature = "metrics")]
    fn contact(&self) -> std::sync::MutexGuard<'_, (tokio::time::Instant, bool)> {
        self.inner
            .contact
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The view now holds `revision`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn view(&self, revision: u64) {
        #[cfg(feature = "metrics")]
        self.inner.revision.set(revision as f64);
    }

    /// The daemon answered: a stream opened, or an event came.
    pub(crate) fn heard(&self) {
        #[cfg(feature = "metrics")]
        {
            *self.contact() = (tokio::time::Instant::now(), true);
            self.inner.connected.set(1.0);
            self.inner.since.set(0.0);
        }
    }

    /// The watch is lost: the daemon is no longer heard from.
    pub(crate) fn lost(&self) {
        #[cfg(feature = "metrics")]
        {
            let mut c = self.contact();
            if c.1 {
                // Heard up to now: the stream was open until it ended.
                *c = (tokio::time::Instant::now(), false);
            }
            drop(c);
            self.inner.connected.set(0.0);
            self.tick();
        }
    }

    /// Brings [`SINCE_CONTACT`] up to date.
    #[cfg(feature = "metrics")]
    fn tick(&self) {
        {
            let (at, open) = *self.contact();
            let since = if open {
                0.0
            } else {
                at.elapsed().as_secs_f64()
            };
            self.inner.since.set(since);
        }
    }

    /// Ticks every second, forever (run it beside the watch).
    pub(crate) async fn clock(self) {
        #[cfg(feature = "metrics")]
        {
            let mut every = tokio::time::interval(CONTACT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                self.tick();
            }
        }
        #[cfg(not(feature = "metrics"))]
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prometheus_names() {
        for (name, help) in HELP {
            assert!(name.starts_with("cfgd_sdk_"), "{name}");
            assert!(!help.is_empty(), "{name}");
            let counter = name.ends_with("_total");
            assert_eq!(counter, [ATTEMPTS, RUNS].contains(name), "{name}");
        }
    }
}
