//! [`Settings`]: a live, lock-free copy of the settings for a service.
//!
//! A read is an atomic load of the current [`LiveView`] plus an index — no
//! RPC, no lock. A background task keeps the view current through a
//! [`Resuming`](crate::client::Resuming) watch; when the daemon is down the
//! view is resolved locally (defaults, the config dir when given, the
//! process environment) and the watch reconnects with backoff and jitter,
//! resuming from the last revision it saw so no change is missed.
//!
//! Each new view is also sent on a `tokio::sync::watch` channel
//! ([`Settings::subscribe`]), which is what [`Settings::changed`] waits on.
//!
//! # Layout
//! - `mod.rs` — [`Settings`], [`Options`], change notification.
//! - `view.rs` — [`LiveView`]: one immutable copy, the process env layered
//!   over the daemon's values.
//! - `key.rs` — [`Key`]: a resolved name that survives catalogue changes.
//! - `sync.rs` — the background task.
//! - `ack.rs` — reporting the applied revision to the daemon (`Ack`).

mod ack;
mod key;
mod sync;
mod view;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cfgd_settings::{Delays, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use key::Key;
pub use view::{Current, LiveView, Origin};

use crate::client::{Backoff, endpoint_from_env};
use crate::retry::RetryDefaults;

/// How a [`Settings`] handle connects.
///
/// # Default
/// Endpoint from `CFGD_ENDPOINT` (else `http://127.0.0.1:7979`), token from
/// `CFGD_TOKEN`, CA certificate from `CFGD_CA_CERT`, the process
/// environment as a layer on top, no config dir for the offline view,
/// [`Backoff::default`] between reconnections, the service's name from
/// `CFGD_SERVICE` (else the executable's name).
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
    /// The waits between reconnections.
    pub backoff: Backoff,
    /// The service's name, as `cfg fleet` lists it with the revision this
    /// handle applied.
    pub service: String,
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
            backoff: Backoff::default(),
            service: std::env::var("CFGD_SERVICE")
                .ok()
                .filter(|s| !s.is_empty())
                .or_else(|| {
                    std::env::current_exe()
                        .ok()?
                        .file_name()?
                        .to_str()
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "cfgd-sdk".into()),
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

    /// The environment variables to layer, or none.
    fn process_env(&self) -> Vec<(String, String)> {
        if self.use_process_env {
            self.env.clone()
        } else {
            Vec::new()
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
    /// What reads load.
    view: ArcSwap<LiveView>,
    /// The same views, for waiters.
    views: watch::Sender<Arc<LiveView>>,
    connection: watch::Sender<Connection>,
    stop: CancellationToken,
}

impl Shared {
    fn current(&self) -> Arc<LiveView> {
        self.view.load_full()
    }

    /// Only the background task publishes, so views are sent in order.
    fn publish(&self, mut view: LiveView) {
        view.seq = self.view.load().seq + 1;
        let view = Arc::new(view);
        self.view.store(view.clone());
        self.views.send_replace(view);
    }

    /// Whether it changed.
    fn set_connection(&self, c: Connection) -> bool {
        self.connection
            .send_if_modified(|was| std::mem::replace(was, c) != c)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A live copy of the settings. Cheap to clone; every clone sees the same
/// values. The background task stops when the last clone is dropped.
///
/// Each handle remembers the last view it reported through
/// [`Settings::changed`] or [`Settings::changed_key`] (a clone starts from
/// its original's), so a change that lands between two waits is reported
/// by the second. Give each waiting task its own clone.
pub struct Settings {
    shared: Arc<Shared>,
    seen: ArcSwap<LiveView>,
}

impl Clone for Settings {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            seen: ArcSwap::new(self.seen.load_full()),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("origin", &self.shared.view.load().origin())
            .finish_non_exhaustive()
    }
}

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
        let view = Arc::new(LiveView::local(dir.as_ref(), options.process_env()));
        let (views, _) = watch::channel(view.clone());
        let (connection, _) = watch::channel(Connection::Disconnected);
        Self {
            shared: Arc::new(Shared {
                view: ArcSwap::new(view.clone()),
                views,
                connection,
                stop: CancellationToken::new(),
            }),
            seen: ArcSwap::new(view),
        }
    }

    /// The current view: all values at one revision.
    pub fn view(&self) -> Arc<LiveView> {
        self.shared.current()
    }

    /// Every view from now on: `borrow()` is the current one and
    /// `changed()` wakes for each newer one (as a stream,
    /// `tokio_stream::wrappers::WatchStream::new(rx)` yields the current
    /// view first). A receiver that falls behind sees the newest view,
    /// never a stale one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<LiveView>> {
        self.shared.views.subscribe()
    }

    /// A key for `name` (canonical or alias) in the current catalogue.
    pub fn key(&self, name: &str) -> Option<Key> {
        Key::new(&self.shared.view.load(), name)
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

    /// Reads through a [`Key`] with `f`; `None` if the current catalogue no
    /// longer declares the key's setting.
    #[inline]
    pub fn read_key<R>(&self, key: &Key, f: impl FnOnce(Option<&Current>) -> R) -> R {
        let view = self.shared.view.load();
        f(key.index_in(&view).and_then(|i| view.at(i)))
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

    /// Waits until the view is newer than the last one this handle
    /// reported (any value changed, or the view was replaced), and returns
    /// it. Returns at once if that happened since the last call.
    pub async fn changed(&self) -> Arc<LiveView> {
        let seen = self.seen.load().seq;
        self.wait_for(|v| v.seq > seen).await
    }

    /// Waits until `name`'s value or source differs from the one in the
    /// last view this handle reported, and returns the new view. Returns
    /// at once if that happened since the last call.
    pub async fn changed_key(&self, name: &str) -> Arc<LiveView> {
        let seen = self.seen.load_full();
        let was = seen.get(name).map(|c| (&c.value, &c.source));
        self.wait_for(|v| v.get(name).map(|c| (&c.value, &c.source)) != was)
            .await
    }

    async fn wait_for(&self, newer: impl FnMut(&Arc<LiveView>) -> bool) -> Arc<LiveView> {
        let mut rx = self.subscribe();
        // `wait_for` looks at the current view before waiting, which is
        // what makes a change between two calls impossible to miss. The
        // sender lives in `self.shared`, so it cannot close under us.
        let view = match rx.wait_for(newer).await {
            Ok(v) => v.clone(),
            Err(_) => self.shared.current(),
        };
        self.seen.rcu(|old| {
            if old.seq >= view.seq {
                old.clone()
            } else {
                view.clone()
            }
        });
        view
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

    /// Every change of [`Settings::connection`] from now on (`borrow()` is
    /// the current state).
    pub fn subscribe_connection(&self) -> watch::Receiver<Connection> {
        self.shared.connection.subscribe()
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
