//! [`Settings`]: a live, lock-free copy of the settings for a service.
//!
//! A read is an atomic load of the current [`LiveView`] plus an index — no
//! RPC, no lock. A background task keeps the view current through a watch
//! stream; when the daemon is down the view is resolved locally (defaults,
//! the config dir when given, the process environment) and the task
//! reconnects with exponential backoff and jitter, resuming from the last
//! revision it saw so no change is missed.

mod sync;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use cfgd_settings::{Delays, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use view::{Current, LiveView, Origin};

use crate::client::endpoint_from_env;
use crate::retry::RetryDefaults;

/// How a [`Settings`] handle connects.
///
/// # Default
/// Endpoint from `CFGD_ENDPOINT` (else `http://127.0.0.1:7979`), token from
/// `CFGD_TOKEN`, CA certificate from `CFGD_CA_CERT`, the process environment as a layer on top, no config dir
/// for the offline view, reconnect backoff from 50 ms to 5 s.
#[derive(Debug, Clone)]
pub struct Options {
    /// The daemon's endpoint.
    pub endpoint: String,
    /// The daemon's token, if it has one (also lets the SDK read secrets).
    pub token: Option<String>,
    /// A CA certificate (PEM file) for an `https://` endpoint.
    pub ca_cert: Option<PathBuf>,
    /// Put the process environment above the daemon's values.
    pub use_process_env: bool,
    /// The process environment to use (captured once).
    pub env: Vec<(String, String)>,
    /// A config dir to resolve from while the daemon is unreachable.
    pub config_dir: Option<PathBuf>,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            endpoint: endpoint_from_env(),
            token: std::env::var("CFGD_TOKEN").ok().filter(|t| !t.is_empty()),
            ca_cert: std::env::var_os("CFGD_CA_CERT").map(PathBuf::from),
            use_process_env: true,
            env: std::env::vars().collect(),
            config_dir: None,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// Options for `endpoint` with no token, no process environment and no
    /// config dir (what tests want).
    pub fn isolated(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            token: None,
            ca_cert: None,
            use_process_env: false,
            env: Vec::new(),
            ..Self::default()
        }
    }
}

/// Whether the background task is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Not yet connected, or the daemon is gone: values are local or stale.
    Disconnected,
    /// Watching the daemon.
    Connected,
}

pub(crate) struct Shared {
    view: ArcSwap<LiveView>,
    version: watch::Sender<u64>,
    connection: watch::Sender<Connection>,
    stop: CancellationToken,
}

impl Shared {
    fn publish(&self, view: LiveView) {
        self.view.store(view.arc());
        self.version.send_modify(|v| *v += 1);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A live copy of the settings. Cheap to clone; every clone sees the same
/// values. The background task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Settings {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("origin", &self.shared.view.load().origin())
            .finish_non_exhaustive()
    }
}

/// A resolved setting name: reading through a key skips the name lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(usize);

impl Settings {
    /// Starts with a local view and connects in the background (never
    /// waits for the daemon). Must be called inside a tokio runtime.
    pub fn connect(options: Options) -> Self {
        let settings = Self::local(&options);
        sync::spawn(
            Arc::downgrade(&settings.shared),
            options,
            settings.shared.stop.clone(),
        );
        settings
    }

    /// [`Settings::connect`] with [`Options::default`].
    pub fn from_env() -> Self {
        Self::connect(Options::default())
    }

    /// Resolves locally only (defaults, config dir, process env); never
    /// connects.
    pub fn local(options: &Options) -> Self {
        let dir = options
            .config_dir
            .as_deref()
            .map(cfgd_settings::ConfigDir::load);
        let view = LiveView::local(dir.as_ref(), &options.env, options.use_process_env);
        let (version, _) = watch::channel(0);
        let (connection, _) = watch::channel(Connection::Disconnected);
        Self {
            shared: Arc::new(Shared {
                view: ArcSwap::from_pointee(view),
                version,
                connection,
                stop: CancellationToken::new(),
            }),
        }
    }

    /// The current view: all values at one revision.
    pub fn view(&self) -> Arc<LiveView> {
        self.shared.view.load_full()
    }

    /// A key for `name` (canonical or alias) in the current catalogue.
    pub fn key(&self, name: &str) -> Option<Key> {
        self.shared.view.load().catalog().index_of(name).map(Key)
    }

    /// The value of `name` and its source; `None` for an unknown name.
    pub fn get(&self, name: &str) -> Option<Current> {
        self.shared.view.load().get(name).cloned()
    }

    /// Reads `name` with `f`, without copying the value (the fastest read).
    #[inline]
    pub fn read<R>(&self, name: &str, f: impl FnOnce(Option<&Current>) -> R) -> R {
        f(self.shared.view.load().get(name))
    }

    /// Reads through a [`Key`] with `f`.
    #[inline]
    pub fn read_key<R>(&self, key: Key, f: impl FnOnce(Option<&Current>) -> R) -> R {
        f(self.shared.view.load().at(key.0))
    }

    /// An integer setting.
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.read(name, |c| {
            c.and_then(|c| c.value.as_ref()).and_then(Value::as_integer)
        })
    }

    /// A number setting (an integer converts).
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.read(name, |c| {
            c.and_then(|c| c.value.as_ref()).and_then(Value::as_number)
        })
    }

    /// A boolean setting.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.read(name, |c| {
            c.and_then(|c| c.value.as_ref()).and_then(Value::as_bool)
        })
    }

    /// A string or secret setting.
    pub fn get_string(&self, name: &str) -> Option<String> {
        self.read(name, |c| {
            c.and_then(|c| c.value.as_ref())
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }

    /// A delays setting.
    pub fn get_delays(&self, name: &str) -> Option<Delays> {
        self.read(name, |c| {
            c.and_then(|c| c.value.as_ref())
                .and_then(Value::as_delays)
                .cloned()
        })
    }

    /// Waits until any value changes (or the view is replaced).
    pub async fn changed(&self) {
        let mut rx = self.shared.version.subscribe();
        rx.mark_unchanged();
        // The sender lives as long as `self`.
        let _ = rx.changed().await;
    }

    /// Waits until `name`'s value or source changes.
    pub async fn changed_key(&self, name: &str) {
        let mut rx = self.shared.version.subscribe();
        rx.mark_unchanged();
        let before = self.get(name);
        loop {
            if rx.changed().await.is_err() {
                return;
            }
            if self.get(name) != before {
                return;
            }
        }
    }

    /// Whether the background task is connected to the daemon.
    pub fn connection(&self) -> Connection {
        *self.shared.connection.borrow()
    }

    /// Waits until connected (for tests and start-up probes; reads never
    /// need this).
    pub async fn connected(&self) {
        let mut rx = self.shared.connection.subscribe();
        let _ = rx.wait_for(|c| *c == Connection::Connected).await;
    }

    /// Makes this handle the source of retry defaults for every task and
    /// flow that does not set its own.
    pub fn install_retry_defaults(&self) {
        crate::retry::set_global_defaults(Arc::new(self.clone()));
    }
}

/// Reads every retry default from one view, at one revision: a batched
/// `cfg set` of retries and delays reaches a run whole or not at all, and
/// the run records the revision.
impl RetryDefaults for Settings {
    fn read(&self, f: &mut dyn FnMut(&crate::retry::Defaults<'_>)) {
        let view = self.shared.view.load();
        let revision = match view.origin() {
            Origin::Daemon { revision, .. } => Some(revision),
            Origin::Local => None,
        };
        f(&crate::retry::defaults::from_values(
            |name| view.get(name).and_then(|c| c.value.as_ref()),
            revision,
        ));
    }
}
