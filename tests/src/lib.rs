//! The one test harness of cfgd: every suite that starts a daemon starts it
//! here.
//!
//! What it owns:
//! - [`TestDaemon`] (this file): `cfgd::serve` in-process on `127.0.0.1:0`
//!   with its own temp config and state dirs and an injected environment
//!   (never the test process's own); SDK clients; stop and start again on
//!   the same dirs and port to test what survives a restart. Helpers that
//!   await watch events instead of sleeping ([`next_event`],
//!   [`watch_from_now`]).
//! - [`blocking`]: the same daemon on a runtime of its own, for synchronous
//!   tests (the `cfg` binary's).
//! - [`cli`]: the real `cfg` binary run against a daemon, and a spawned
//!   `cfg` read line by line.
//! - [`proc`]: the real `cfgd` binary as a child process: SIGKILL, SIGTERM,
//!   exit codes, its stderr, a restart on the same port and state.
//! - [`fleet`]: daemons sharing a real 3-member etcd cluster (the etcd
//!   store).
//!
//! The binaries are the ones cargo builds for the package whose tests run
//! ([`proc::binary`]): `cfgd-cli`'s tests use [`cli`], `cfgd`'s use
//! [`proc`]; this crate's own tests need neither.
//!
//! # Layout
//! - `src/lib.rs` — [`TestDaemon`] and its [`Builder`].
//! - `src/blocking.rs`, `src/cli.rs`, `src/proc.rs`, `src/fleet.rs` — as
//!   above.
//! - `tests/<behaviour>.rs` — one file per behaviour, named for what it proves.
//!
//! # Example
//! ```no_run
//! # async fn demo() {
//! let daemon = cfgd_tests::TestDaemon::builder().start().await;
//! let client = daemon.client().await;
//! let setting = client.get("PREFECT_TASK_DEFAULT_RETRIES", false).await.unwrap();
//! assert_eq!(setting.name, "PREFECT_TASKS_DEFAULT_RETRIES");
//! daemon.stop().await;
//! # }
//! ```

pub mod blocking;
pub mod cli;
pub mod fleet;
pub mod proc;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cfgd_sdk::{Client, Connect, WatchEvent};
use futures_util::{Stream, StreamExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The dirs a daemon runs on; kept alive across restarts.
#[derive(Debug, Clone)]
pub struct Dirs {
    root: Arc<tempfile::TempDir>,
}

impl Dirs {
    /// Fresh temp dirs with an empty config dir.
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join("config")).expect("config dir");
        Self {
            root: Arc::new(root),
        }
    }

    /// The config dir.
    pub fn config(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// The state dir.
    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// Writes `text` to `name` in the config dir, in place.
    pub fn write_config(&self, name: &str, text: &str) {
        let path = self.config().join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write config file");
    }

    /// Replaces `name` in the config dir by writing a temp file and renaming
    /// it over (as editors do).
    pub fn replace_config(&self, name: &str, text: &str) {
        let tmp = self.root.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write temp file");
        std::fs::rename(&tmp, self.config().join(name)).expect("rename over");
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`TestDaemon`].
#[derive(Debug, Clone)]
pub struct Builder {
    dirs: Dirs,
    env: Vec<(String, String)>,
    token: Option<String>,
    history_limit: usize,
    watch_buffer: usize,
    debounce: Duration,
    port: u16,
    tls: Option<(cfgd::TlsFiles, PathBuf)>,
    unix: Option<PathBuf>,
    profiles_path: Option<PathBuf>,
    configure: Vec<fn(&mut cfgd::Config)>,
    store: cfgd::store::etcd::StoreConfig,
}

impl Builder {
    /// Changes the daemon's [`cfgd::Config`] just before it starts (limits,
    /// timeouts), after everything else the builder sets.
    pub fn configure(mut self, f: fn(&mut cfgd::Config)) -> Self {
        self.configure.push(f);
        self
    }

    /// Keep the profile layer in this store (the etcd store of a fleet).
    pub fn store(mut self, store: cfgd::store::etcd::StoreConfig) -> Self {
        self.store = store;
        self
    }

    /// Listen on this loopback port instead of a free one (to restart a
    /// daemon where its clients expect it).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The daemon's environment (layer 5).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Require this token for writes.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Keep this many change records.
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n;
        self
    }

    /// Let a watcher fall this many changes behind before a resync.
    pub fn watch_buffer(mut self, n: usize) -> Self {
        self.watch_buffer = n;
        self
    }

    /// Serve TLS with these files; clients trust `ca` (a PEM file).
    pub fn tls(mut self, files: cfgd::TlsFiles, ca: PathBuf) -> Self {
        self.tls = Some((files, ca));
        self
    }

    /// Listen on a Unix socket at `path` instead of TCP.
    pub fn unix(mut self, path: PathBuf) -> Self {
        self.unix = Some(path);
        self
    }

    /// Use this `profiles.toml` (e.g. one Prefect wrote) instead of one in
    /// the state dir.
    pub fn profiles_path(mut self, path: PathBuf) -> Self {
        self.profiles_path = Some(path);
        self
    }

    /// The config dir the daemon will run on.
    pub fn config_dir(&self) -> PathBuf {
        self.dirs.config()
    }

    /// Run on these dirs (e.g. those of a stopped daemon).
    pub fn dirs(mut self, dirs: Dirs) -> Self {
        self.dirs = dirs;
        self
    }

    /// Writes a config file before start.
    pub fn config_file(self, name: &str, text: &str) -> Self {
        self.dirs.write_config(name, text);
        self
    }

    /// Starts the daemon and waits until it answers.
    pub async fn start(self) -> TestDaemon {
        let mut config = cfgd::Config::new(self.env.clone());
        config.config_dir = self.dirs.config();
        config.state_dir = self.dirs.state();
        config.token = self.token.clone();
        config.profiles_path = self.profiles_path.clone();
        config.history_limit = self.history_limit;
        config.watch_buffer = self.watch_buffer;
        config.debounce = self.debounce;
        config.shutdown_grace = Duration::from_secs(5);
        config.tls = self.tls.as_ref().map(|(files, _)| files.clone());
        config.store = self.store.clone();
        for f in &self.configure {
            f(&mut config);
        }
        let addr = match &self.unix {
            Some(path) => cfgd::ListenAddr::Unix(path.clone()),
            None => cfgd::ListenAddr::Tcp(([127, 0, 0, 1], self.port).into()),
        };
        let listener = cfgd::Listener::bind(&addr)
            .await
            .expect("bind the listener");
        let endpoint = match (&self.unix, &self.tls) {
            (Some(_), _) => listener.local_addr(),
            (None, Some(_)) => format!("https://{}", listener.local_addr()),
            (None, None) => format!("http://{}", listener.local_addr()),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            cfgd::serve(config, listener, async {
                let _ = rx.await;
            })
            .await
        });
        let daemon = TestDaemon {
            endpoint,
            dirs: self.dirs,
            connect: Connect {
                token: self.token,
                ca_cert: self.tls.map(|(_, ca)| ca),
            },
            shutdown: Some(tx),
            handle,
        };
        // The listener is bound already, so connecting succeeds once serving.
        daemon
            .client()
            .await
            .status()
            .await
            .expect("daemon answers");
        daemon
    }
}

/// A daemon running in this process on `127.0.0.1:0`.
#[derive(Debug)]
pub struct TestDaemon {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its dirs.
    pub dirs: Dirs,
    connect: Connect,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), cfgd::DaemonError>>,
}

impl TestDaemon {
    /// A builder with fresh dirs, an empty environment and no token.
    pub fn builder() -> Builder {
        Builder {
            dirs: Dirs::new(),
            env: Vec::new(),
            token: None,
            history_limit: 1000,
            watch_buffer: 1024,
            debounce: Duration::from_millis(20),
            port: 0,
            tls: None,
            unix: None,
            profiles_path: None,
            configure: Vec::new(),
            store: cfgd::store::etcd::StoreConfig::File,
        }
    }

    /// A client with the daemon's token (if it has one).
    pub async fn client(&self) -> Client {
        Client::connect_with(&self.endpoint, &self.connect)
            .await
            .expect("connect to the test daemon")
    }

    /// A client without any token.
    pub async fn anonymous_client(&self) -> Client {
        Client::connect(&self.endpoint, None)
            .await
            .expect("connect")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the endpoint ends in a port")
    }

    /// The config dir.
    pub fn config_dir(&self) -> PathBuf {
        self.dirs.config()
    }

    /// Stops the daemon gracefully and returns its dirs.
    pub async fn stop(mut self) -> Dirs {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.handle)
            .await
            .expect("daemon task")
            .expect("daemon stopped cleanly");
        self.dirs.clone()
    }
}

/// A watch of every setting from `client`'s daemon's current revision:
/// it yields what changes from now on.
pub async fn watch_from_now(
    client: &Client,
) -> Pin<Box<impl Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Send + 'static + use<>>> {
    let start = client.status().await.expect("status");
    Box::pin(
        client
            .watch(Some(start.revision), Some(start.epoch), &[], false)
            .await
            .expect("open the watch"),
    )
}

/// Waits for the next watch event, failing after 10 s (a generous bound
/// for a busy machine, not a timing assertion).
pub async fn next_event<S>(stream: &mut S) -> WatchEvent
where
    S: Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the stream is open")
        .expect("no stream error")
}

/// Whether the stream yields nothing more within `wait` (for "no event"
/// checks after an operation whose effects are already acknowledged).
pub async fn quiet<S>(stream: &mut S, wait: Duration) -> bool
where
    S: Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Unpin,
{
    tokio::time::timeout(wait, stream.next()).await.is_err()
}

/// The setting [`nothing_before_a_marker`] writes.
pub const MARKER: &str = "PREFECT_CLIENT_MAX_RETRIES";

/// Whether `stream` had nothing pending: writes a marker (one more than
/// [`MARKER`]'s value) through `writer` and checks that the next event is
/// that write, so anything published before it would have come first. A
/// "no event" check that awaits an event instead of a quiet spell.
pub async fn nothing_before_a_marker<S>(writer: &Client, stream: &mut S) -> bool
where
    S: Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Unpin,
{
    let next = integer(writer, MARKER)
        .await
        .expect("the marker is an integer")
        + 1;
    let written = writer
        .set(
            &[(MARKER.to_owned(), cfgd_sdk::Assign::Raw(next.to_string()))],
            None,
        )
        .await
        .expect("write the marker");
    match next_event(stream).await {
        WatchEvent::Change { change, .. } => {
            change.revision == written.revision
                && change.changes.len() == 1
                && change.changes[0].name == MARKER
        }
        WatchEvent::Resync { .. } => false,
    }
}

/// Polls `check` until it holds, failing after 10 s; for states no event
/// reports (status fields), never where a watch event exists.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `settings`' live view satisfies `check`, awaiting each new
/// view (its `subscribe()` receiver) instead of polling; fails after 10 s.
pub async fn view_until(
    settings: &cfgd_sdk::Settings,
    what: &str,
    mut check: impl FnMut(&cfgd_sdk::live::LiveView) -> bool,
) {
    let mut views = settings.subscribe();
    tokio::time::timeout(Duration::from_secs(10), views.wait_for(|v| check(v)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
        .expect("the live settings are running");
}

/// The integer `client` reports for `name` (`None` when unset or not an
/// integer).
pub async fn integer(client: &Client, name: &str) -> Option<i64> {
    client
        .get(name, false)
        .await
        .expect("get the setting")
        .value
        .value()
        .and_then(cfgd_settings::Value::as_integer)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The canonical retries setting, used throughout.
pub const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";
