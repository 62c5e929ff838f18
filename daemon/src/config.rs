//! The daemon's configuration: where it listens, reads and writes, and its
//! limits. `main` fills it from flags and environment; tests build it
//! directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address (loopback by default).
    Tcp(SocketAddr),
    /// A Unix socket path (created with mode 0600).
    Unix(PathBuf),
}

impl ListenAddr {
    /// The default: `127.0.0.1:7979`.
    pub fn default_tcp() -> Self {
        ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 7979)))
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    /// `127.0.0.1:7979`, `[::1]:7979` or `unix:/path/to/socket`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("expected a socket path after 'unix:'".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
            format!("invalid listen address {s:?}: expected IP:PORT such as 127.0.0.1:7979, or unix:/path/to/socket")
        })
    }
}

/// Request limits; each violation is refused with a message naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request message, in bytes.
    pub max_message_bytes: usize,
    /// Longest setting or profile name, in bytes.
    pub max_name_len: usize,
    /// Longest value, in bytes.
    pub max_value_len: usize,
    /// Most assignments or names in one `Set`/`Unset`, and most names in
    /// one `Snapshot` or `Watch` filter.
    pub max_batch: usize,
    /// Most profiles in the profile layer.
    pub max_profiles: usize,
    /// Most bytes of names and values across all profiles.
    pub max_profile_bytes: usize,
}

impl Default for Limits {
    /// 4 MiB messages, 256-byte names, 64 KiB values, 1,000 per batch,
    /// 100 profiles holding at most 1 MiB.
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            max_name_len: 256,
            max_value_len: 64 << 10,
            max_batch: 1000,
            max_profiles: 100,
            max_profile_bytes: 1 << 20,
        }
    }
}

/// A certificate and its private key (PEM files) for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// Everything the daemon needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config dir: catalogue, value files, `.env`.
    pub config_dir: PathBuf,
    /// The state dir: the revision log (and by default `profiles.toml`).
    pub state_dir: PathBuf,
    /// The profiles file; `None` means `<state_dir>/profiles.toml`.
    pub profiles_path: Option<PathBuf>,
    /// The daemon's environment (layer 5), captured at start.
    pub env: Vec<(String, String)>,
    /// When set, writes and reading secrets in clear need this token.
    pub token: Option<String>,
    /// Quiet time after a file change before the config dir is re-read.
    pub debounce: Duration,
    /// Change records kept for history, resume and rollback.
    pub history_limit: usize,
    /// Bytes of change records kept (as logged); the older ones are folded
    /// into the checkpoint beyond this, whatever `history_limit` says.
    pub history_bytes: usize,
    /// Start even on a damaged or missing revision log: keep what can be
    /// kept, set the damaged log aside and begin a new epoch.
    pub repair_state: bool,
    /// Changes a watcher may fall behind before it gets a resync.
    pub watch_buffer: usize,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
    /// Request limits.
    pub limits: Limits,
    /// Serve TLS with this certificate; `None` serves plain HTTP/2.
    pub tls: Option<TlsFiles>,
    /// Where the profile layer, revisions and history live (`--store`).
    pub store: crate::store::etcd::StoreConfig,
}

impl Config {
    /// The defaults of DESIGN.md §3 (`config/`, `.cfgd/`), with `env` as
    /// the environment.
    pub fn new(env: Vec<(String, String)>) -> Self {
        Self {
            config_dir: PathBuf::from("config"),
            state_dir: PathBuf::from(".cfgd"),
            profiles_path: None,
            env,
            token: None,
            debounce: Duration::from_millis(50),
            history_limit: 1000,
            history_bytes: 16 << 20,
            repair_state: false,
            watch_buffer: 1024,
            shutdown_grace: Duration::from_secs(5),
            limits: Limits::default(),
            tls: None,
            store: crate::store::etcd::StoreConfig::File,
        }
    }

    /// The profiles file in use.
    pub fn profiles_path(&self) -> PathBuf {
        self.profiles_path
            .clone()
            .unwrap_or_else(|| self.state_dir.join("profiles.toml"))
    }
}
