//! The cfgd daemon: layered settings over gRPC, with a revision for every
//! change, a resumable watch and hot reload.
//!
//! # Layout
//! Public: [`serve`] (and [`serve_with_ready`]), [`Config`], [`Listener`],
//! the errors and the [`store::Store`] seam; everything else is internal.
//! - [`config`] — [`Config`], [`ListenAddr`], [`Limits`],
//!   [`ConnectionLimits`], the security check.
//! - `listener` — [`Listener`]: TCP or a Unix socket (only a stale socket
//!   is ever replaced).
//! - `transport` — accepted connections: the connection cap, idle and
//!   keep-alive timeouts, streams per connection.
//! - [`daemon_config`] — `cfgd.toml` under the environment and the flags
//!   (figment), and `--print-config`.
//! - `authority` — grpc-core's `:authority` accepted on the Unix socket.
//! - `forward` — writes passed through by those connection wrappers.
//! - `startup` — the state dir and its lock; recovery into the core.
//! - `core` — the settings state and every operation on it (no I/O).
//! - [`store`] — durable state: the revision log and the profiles file.
//! - `writer` — the single writer: group commit, publish, answer.
//! - `hub` — the published view, history and the watch broadcast.
//! - `service` — the gRPC service (with server reflection): auth,
//!   limits, names, masking, responses, watch streams.
//! - `dirwatch` — watching a directory: OS watcher or polling, recreated
//!   dirs, debounce with a maximum wait.
//! - `reload` — the config-dir reload loop (retries what the writer could
//!   not make durable).
//! - `profiles_watch` — following `profiles.toml` while Prefect or a
//!   person edits it.
//! - `fleet` — which hosts and services run which revision (acks, the
//!   fleet registry), and following a shared store (etcd).
//! - `http` — the web console and `/metrics` ([`HttpListener`]).
//! - `metrics` — the daemon's metrics (Prometheus, through `metrics`).
//! - [`error`] — operation errors, and the one place they become a gRPC
//!   `Status` (code, message, typed details).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = cfgd::Config::new(std::env::vars().collect());
//! let listener = cfgd::Listener::bind(&"127.0.0.1:0".parse().unwrap()).await?;
//! println!("listening on {}", listener.local_addr());
//! cfgd::serve(config, listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod authority;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_support;
pub mod config;
mod core;
pub mod daemon_config;
mod dirwatch;
pub mod error;
mod fleet;
mod forward;
mod http;
mod hub;
mod listener;
mod memory;
mod metrics;
mod profiles_watch;
mod reload;
mod service;
mod startup;
pub mod store;
mod transport;
mod writer;

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use cfgd_proto::pb::settings_server::SettingsServer;
use cfgd_settings::ConfigDir;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConnectionLimits, Limits, ListenAddr, TlsFiles};
pub use http::{DEFAULT_HTTP, HttpAddr, HttpLimits, HttpListener};
pub use listener::Listener;

use crate::core::ProfileLimits;
use crate::hub::Hub;
use crate::service::{Auth, Info, SettingsService};
use crate::store::FileStore;
use crate::transport::Connections;

/// Why the daemon could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config dir is missing or not a directory.
    #[error(
        "config dir {0} does not exist or is not a directory (use --config-dir or CFGD_CONFIG_DIR)"
    )]
    ConfigDir(String),
    /// The state dir cannot be created.
    #[error("cannot create state dir {path}: {source}")]
    StateDir {
        /// The dir.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Another daemon holds the state dir.
    #[error("state dir {0} is in use by another cfgd (each daemon needs its own --state-dir)")]
    StateDirInUse(String),
    /// The durable store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The etcd store cannot be used as configured.
    #[error("etcd store: {0}")]
    Etcd(String),
    /// The file watcher failed.
    #[error("cannot watch the config dir: {0}")]
    Watch(#[from] notify::Error),
    /// A token that is empty or only whitespace: authentication would be
    /// silently off.
    #[error(
        "the token is empty (or only whitespace), which would turn authentication off; give a real token, or no token at all"
    )]
    EmptyToken,
    /// An address beyond loopback without TLS or a token, not allowed.
    #[error(
        "refusing to listen on {addr} without {missing}: anyone who can reach it could change settings or read the token; add them, listen on loopback, or pass --allow-insecure-listen"
    )]
    Exposed {
        /// The address.
        addr: std::net::SocketAddr,
        /// What is missing.
        missing: String,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The descriptors for server reflection do not load.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The console's listener cannot be used as given.
    #[error("console: {0}")]
    Console(String),
    /// The gRPC server failed.
    #[error("gRPC server error: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// What the daemon reports once it is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Serving {
    /// Where it listens: `127.0.0.1:7979` or `unix:/path`.
    pub listen: String,
    /// The revision it serves at start.
    pub revision: u64,
    /// The store's epoch.
    pub epoch: u64,
}

/// Runs the daemon on `listener` until `shutdown` completes, then stops
/// accepting, ends watch streams, finishes in-flight writes and returns
/// (waiting at most `config.shutdown_grace` for connections to close).
///
/// # Errors
/// A config or state dir that cannot be used, a store that cannot be
/// recovered, an unsafe configuration ([`Config::check_security`]) or a
/// server failure.
pub async fn serve(
    config: Config,
    listener: Listener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DaemonError> {
    serve_with_ready(config, listener, shutdown, |_| {}).await
}

/// [`serve`], calling `ready` once the daemon really serves: the state dir
/// is locked and recovered, the config dir loaded and connections are being
/// accepted. Nothing before that point should claim the daemon is up.
///
/// # Errors
/// As [`serve`]; `ready` is not called then.
pub async fn serve_with_ready(
    config: Config,
    listener: Listener,
    shutdown: impl Future<Output = ()> + Send,
    ready: impl FnOnce(&Serving) + Send + 'static,
) -> Result<(), DaemonError> {
    let started_ms = writer::now_ms();
    memory::limit_retention();
    if let Some(addr) = listener.listen_addr() {
        config.check_security(&addr)?;
    }
    let config_dir_abs = config_dir_path(&config)?;
    let _state_lock = startup::create_state_dir(&config.state_dir)?;
    let (dir_path, max_bytes) = (config_dir_abs.clone(), config.max_config_file_bytes);
    let config_dir =
        tokio::task::spawn_blocking(move || ConfigDir::load_with(&dir_path, max_bytes))
            .await
            .expect("loading the config dir does not panic");
    for f in config_dir.files() {
        if let Some(error) = f.error_text() {
            tracing::error!(file = %f.path.display(), %error, "config file not applied");
        }
    }
    let env = Arc::new(config.env.clone());
    let profiles_path = config.profiles_path();
    let mut local = FileStore::new(&config.state_dir, &profiles_path);
    if config.repair_state {
        local = local.repairing();
    }
    let (mut store, opened) = fleet::start::open(&config.store, local)?;
    let limits = ProfileLimits {
        max_profiles: config.limits.max_profiles,
        max_bytes: config.limits.max_profile_bytes,
    };
    let started = startup::recover(&mut *store, &config_dir, &env, limits, opened.numbering)?;
    for e in started.core.layer_errors() {
        tracing::error!(error = %e, "value not applied");
    }
    let revision = started.core.revision();
    let epoch = started.core.epoch();
    let view = writer::build_view(
        &started.core,
        &store.profiles_path(),
        &writer::StoreHealth::default(),
    );
    let history: VecDeque<Arc<store::Record>> = started.records.into_iter().map(Arc::new).collect();
    let hub = Arc::new(Hub::new(view, started.base, history, config.watch_buffer));
    let retention = writer::Retention {
        records: config.history_limit,
        bytes: config.history_bytes,
    };
    let (writer, writer_thread) = writer::spawn(
        started.core,
        store,
        hub.clone(),
        retention,
        started.profiles,
    );

    // Parsing the config dir peaked far above what it left behind.
    memory::release_freed();
    let stop = CancellationToken::new();
    let (reload_task, reload_status) = reload::spawn(
        config_dir_abs.clone(),
        reload::watch_options(config.debounce, config.debounce_max),
        config_dir,
        writer.clone(),
        stop.clone(),
    );
    let profiles_task = profiles_watch::spawn(
        &profiles_path,
        reload::watch_options(config.debounce, config.debounce_max),
        writer.clone(),
        stop.clone(),
    );
    let connections = Connections::new(config.connections);
    let info = Info {
        listen: listener.local_addr(),
        config_dir: config_dir_abs.display().to_string(),
        state_dir: config.state_dir.display().to_string(),
        profiles_path: profiles_path.display().to_string(),
        started_ms,
        reload: reload_status,
        connections: connections.clone(),
    };
    let serving = Serving {
        listen: info.listen.clone(),
        revision,
        epoch,
    };
    let host = match &opened.etcd {
        Some((_, _, etcd)) => etcd.host.clone(),
        None => String::new(),
    };
    let fleet = Arc::new(fleet::Fleet::new(
        host,
        info.listen.clone(),
        hub.clone(),
        opened.state.clone(),
        opened.etcd.as_ref().map(|(c, k, _)| (c.clone(), k.clone())),
    ));
    let fleet_tasks =
        fleet::start::start(&opened, &fleet, &hub, &writer, &config.state_dir, &stop).await;
    let store_kind = opened.state.get().kind;
    let watches = hub.clone();
    let service = SettingsService::new(
        hub,
        writer,
        Auth::new(config.token.clone()),
        config.limits,
        info,
        fleet,
    );
    let console = http::start_configured(&config, &service, stop.clone())?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SettingsServer<SettingsService>>()
        .await;
    let health_task = fleet::health::spawn(health.clone(), opened.state.clone(), stop.clone());
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    // Both reflection versions (newer tools ask v1, older ones v1alpha);
    // google.rpc's descriptors let them show a refusal's error details.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(cfgd_proto::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let plain = tls.is_none();
    let router = transport::server(&connections, tls)
        .map_err(|e| DaemonError::Tls(e.to_string()))?
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(metrics::Grpc::new(service::MessageLimit::new(
            SettingsServer::new(service)
                .max_decoding_message_size(config.limits.max_message_bytes)
                .max_encoding_message_size(usize::MAX),
            config.limits.max_message_bytes,
        )));

    let stopping = stop.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; ending watch streams");
        stopping.cancel();
        watches.close_watches();
    };
    let ready = move || {
        tracing::info!(listen = %serving.listen, revision, epoch, store = store_kind, "cfgd serving");
        ready(&serving);
    };
    let served = transport::serve(router, listener, plain, connections, signal, ready);
    let grace = config.shutdown_grace;
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = served => r?,
        () = deadline => tracing::warn!(?grace, "connections still open after the shutdown deadline; closing them"),
    }
    stop.cancel();
    if let Some(console) = console {
        console.stopped().await;
    }
    reload_task.abort();
    let _ = reload_task.await;
    if let Some(task) = profiles_task {
        let _ = task.await;
    }
    let _ = health_task.await;
    fleet_tasks.join(grace).await;
    // The service (and with it the last writer handle) is gone: the writer
    // finishes the writes it has, flushes the profiles file and stops.
    let joined = tokio::task::spawn_blocking(move || writer_thread.join());
    if tokio::time::timeout(grace, joined).await.is_err() {
        tracing::warn!("the writer did not finish within the shutdown deadline");
    }
    tracing::info!("cfgd stopped");
    Ok(())
}

/// The config dir as an absolute path. A missing dir is an error when it
/// was asked for; the default one may be absent, and the daemon then serves
/// the embedded catalogue (and watches for the dir to appear).
fn config_dir_path(config: &Config) -> Result<PathBuf, DaemonError> {
    let dir = &config.config_dir;
    // File watchers report absolute paths; an absolute config dir keeps
    // every path (watcher events, status, errors) comparable.
    if let Ok(abs) = std::fs::canonicalize(dir)
        && abs.is_dir()
    {
        return Ok(abs);
    }
    let missing = || DaemonError::ConfigDir(dir.display().to_string());
    if config.config_dir_required || dir.exists() {
        return Err(missing());
    }
    let abs = std::path::absolute(dir).map_err(|_| missing())?;
    tracing::info!(config_dir = %abs.display(), "no config dir (none was given): serving the embedded catalogue with no value files; the dir is read if it appears");
    Ok(abs)
}

fn load_tls(tls: &TlsFiles) -> Result<tonic::transport::ServerTlsConfig, DaemonError> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            DaemonError::Tls(format!("cannot read the {what} {}: {e}", path.display()))
        })
    };
    let cert = read(&tls.cert, "certificate")?;
    let key = read(&tls.key, "private key")?;
    Ok(tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key)))
}
