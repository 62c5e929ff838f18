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

/// Limits on client connections; each logs a line when it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once; beyond it a new connection is closed
    /// at once.
    pub max_connections: usize,
    /// Most concurrent streams (requests and watches) on one connection;
    /// further streams are refused.
    pub max_streams_per_connection: u32,
    /// A connection with no stream open (an open watch counts) for this long
    /// is closed; `None` keeps idle connections.
    pub idle_timeout: Option<Duration>,
    /// A connection silent this long gets an HTTP/2 ping …
    pub keepalive_interval: Duration,
    /// … and is closed when the ping is not answered within this.
    pub keepalive_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// 512 connections (under the usual 1,024 file descriptors), 256 streams
    /// each, closed after 60 s idle; a ping after 30 s of silence, answered
    /// within 20 s.
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_streams_per_connection: 256,
            idle_timeout: Some(Duration::from_secs(60)),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
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
    /// Whether a missing `config_dir` is an error (it was asked for) rather
    /// than a start on the embedded catalogue with no value files (the
    /// default dir is simply absent). # Default: `false`.
    pub config_dir_required: bool,
    /// Largest config file read; a larger one is reported and not applied.
    pub max_config_file_bytes: u64,
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
    /// Longest a re-read waits after the first change, however many follow.
    pub debounce_max: Duration,
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
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Listen beyond loopback without both TLS and a token (anyone who can
    /// reach the address could then change settings, or read the token on
    /// the wire). # Default: `false` (refused).
    pub allow_insecure_listen: bool,
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
            config_dir_required: false,
            max_config_file_bytes: cfgd_settings::configdir::DEFAULT_MAX_FILE_BYTES,
            state_dir: PathBuf::from(".cfgd"),
            profiles_path: None,
            env,
            token: None,
            debounce: Duration::from_millis(50),
            debounce_max: Duration::from_millis(500),
            history_limit: 1000,
            history_bytes: 16 << 20,
            repair_state: false,
            watch_buffer: 1024,
            shutdown_grace: Duration::from_secs(5),
            limits: Limits::default(),
            connections: ConnectionLimits::default(),
            allow_insecure_listen: false,
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

impl Config {
    /// Refuses what would look protected but is not: an empty or blank
    /// token (authentication would be off), or an address beyond loopback
    /// without both TLS and a token, unless [`Config::allow_insecure_listen`].
    ///
    /// # Errors
    /// [`crate::DaemonError::EmptyToken`] or [`crate::DaemonError::Exposed`].
    pub fn check_security(&self, listen: &ListenAddr) -> Result<(), crate::DaemonError> {
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(crate::DaemonError::EmptyToken);
        }
        let ListenAddr::Tcp(addr) = listen else {
            return Ok(());
        };
        if addr.ip().to_canonical().is_loopback() {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.tls.is_none() {
            missing.push("TLS (--tls-cert and --tls-key)");
        }
        if self.token.is_none() {
            missing.push("a token (--token-file or CFGD_TOKEN)");
        }
        if missing.is_empty() {
            return Ok(());
        }
        let missing = missing.join(" and ");
        if self.allow_insecure_listen {
            tracing::warn!(%addr, %missing, "listening beyond loopback without protection, as --allow-insecure-listen asks");
            return Ok(());
        }
        Err(crate::DaemonError::Exposed {
            addr: *addr,
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: Option<&str>, tls: bool) -> Config {
        let mut c = Config::new(Vec::new());
        c.token = token.map(str::to_owned);
        c.tls = tls.then(|| TlsFiles {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        });
        c
    }

    fn at(addr: &str) -> ListenAddr {
        addr.parse().unwrap()
    }

    #[test]
    fn an_empty_or_blank_token_is_refused() {
        for token in ["", "  ", "\n\t"] {
            let err = config(Some(token), false)
                .check_security(&at("127.0.0.1:0"))
                .unwrap_err();
            assert!(matches!(err, crate::DaemonError::EmptyToken), "{err}");
        }
        assert!(
            config(Some("s3cret"), false)
                .check_security(&at("127.0.0.1:0"))
                .is_ok()
        );
    }

    #[test]
    fn beyond_loopback_needs_tls_and_a_token_or_the_flag() {
        let ok = |c: &Config, a: &str| c.check_security(&at(a)).is_ok();
        for loopback in [
            "127.0.0.1:7979",
            "127.8.9.10:1",
            "[::1]:7979",
            "[::ffff:127.0.0.1]:1",
            "unix:/tmp/s",
        ] {
            assert!(ok(&config(None, false), loopback), "{loopback}");
        }
        assert_eq!(
            config(None, false)
                .check_security(&at("0.0.0.0:7979"))
                .unwrap_err()
                .to_string(),
            "refusing to listen on 0.0.0.0:7979 without TLS (--tls-cert and --tls-key) and a token (--token-file or CFGD_TOKEN): anyone who can reach it could change settings or read the token; add them, listen on loopback, or pass --allow-insecure-listen"
        );
        assert!(
            config(Some("t"), false)
                .check_security(&at("[::]:7979"))
                .unwrap_err()
                .to_string()
                .contains("without TLS (--tls-cert and --tls-key):")
        );
        assert!(!ok(&config(None, true), "10.0.0.1:7979"));
        assert!(ok(&config(Some("t"), true), "10.0.0.1:7979"));
        let mut allowed = config(None, false);
        allowed.allow_insecure_listen = true;
        assert!(ok(&allowed, "0.0.0.0:7979"));
    }
}
