//! `cfgd`: parses flags, sets up logging, binds, and runs
//! [`cfgd::serve_with_ready`] until SIGINT or SIGTERM, printing where it
//! listens once it really serves.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// The cfgd settings daemon.
///
/// Serves layered settings (defaults < profile < config files < .env < env)
/// over gRPC, hot-reloads the config dir and records every change.
///
/// Example: cfgd --listen 127.0.0.1:0 --config-dir config --state-dir .cfgd
#[derive(Debug, clap::Parser)]
#[command(name = "cfgd", version)]
struct Args {
    /// Address to listen on: IP:PORT (port 0 picks a free one) or unix:/path.
    #[arg(long, env = "CFGD_LISTEN", default_value = "127.0.0.1:7979")]
    listen: cfgd::ListenAddr,
    /// The config dir: catalog.toml, catalog.d/, *.toml value files, .env.
    #[arg(long, env = "CFGD_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,
    /// The state dir: the revision log (and profiles.toml by default).
    #[arg(long, env = "CFGD_STATE_DIR", default_value = ".cfgd")]
    state_dir: PathBuf,
    /// The profiles file (Prefect's format); default <state-dir>/profiles.toml.
    #[arg(long, env = "PREFECT_PROFILES_PATH")]
    profiles_path: Option<PathBuf>,
    /// A file holding the token that writes and revealing secrets require.
    /// The token can also come from CFGD_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve TLS with this certificate (PEM); needs --tls-key.
    #[arg(long, env = "CFGD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, env = "CFGD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Quiet time after a config file changes before it is re-read, in ms.
    #[arg(long, default_value_t = 50)]
    debounce_ms: u64,
    /// Longest a re-read waits after the first change while changes keep
    /// coming, in ms.
    #[arg(long, default_value_t = 500)]
    debounce_max_ms: u64,
    /// Largest config file read, in bytes; a larger one is reported and not
    /// applied.
    #[arg(long, env = "CFGD_MAX_CONFIG_FILE_BYTES", default_value_t = cfgd_settings::configdir::DEFAULT_MAX_FILE_BYTES)]
    max_config_file_bytes: u64,
    /// Most client connections open at once.
    #[arg(long, env = "CFGD_MAX_CONNECTIONS", default_value_t = cfgd::ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Most concurrent streams (requests and watches) on one connection.
    #[arg(long, env = "CFGD_MAX_STREAMS_PER_CONNECTION", default_value_t = cfgd::ConnectionLimits::default().max_streams_per_connection)]
    max_streams_per_connection: u32,
    /// Close a connection with no stream open for this long, in seconds
    /// (0: never).
    #[arg(long, env = "CFGD_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Listen beyond loopback without both TLS and a token. Anyone who can
    /// reach the address could then change settings (no token) or read the
    /// token on the wire (no TLS).
    #[arg(long, env = "CFGD_ALLOW_INSECURE_LISTEN")]
    allow_insecure_listen: bool,
    /// Change records kept for history, watch resume and rollback.
    #[arg(long, default_value_t = 1000)]
    history: usize,
    /// Bytes of change records kept (as logged), whatever --history says.
    #[arg(long, default_value_t = 16 << 20)]
    history_bytes: usize,
    /// Most profiles the profile layer may hold.
    #[arg(long, default_value_t = 100)]
    max_profiles: usize,
    /// Most bytes of names and values across all profiles.
    #[arg(long, default_value_t = 1 << 20)]
    max_profile_bytes: usize,
    /// Start even on a damaged or missing revision log: keep the records
    /// before the damage, set the damaged log aside, begin a new epoch.
    #[arg(long)]
    repair_state: bool,
    /// The web console and /metrics: IP:PORT, or off [default: 127.0.0.1:7980,
    /// skipped with a warning when that is taken].
    #[arg(long, env = "CFGD_HTTP")]
    http: Option<cfgd::HttpAddr>,
    /// Log filter (tracing env-filter syntax); RUST_LOG also works.
    #[arg(long, env = "CFGD_LOG", default_value = "info")]
    log: String,

    // --- the daemon's own configuration file -----------------------------
    /// Read the options from this TOML file (a key per option: `state_dir`,
    /// `debounce_ms`, `store`, …), under the CFGD_* environment and the flags.
    #[arg(long, env = "CFGD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration, each value with its source
    /// (default, file, environment, flag), and exit.
    #[arg(long)]
    print_config: bool,

    // --- the store: the state dir's file store, or a fleet's etcd ---------
    /// Where the profile layer, revisions and history live: `file` (the
    /// state dir), or etcd://HOST:PORT[,HOST:PORT…] to share them with a
    /// fleet of daemons (config files, .env and env stay per host).
    #[arg(long, env = "CFGD_STORE", default_value = "file")]
    store: cfgd::store::etcd::StoreConfig,
    /// This daemon's id in the fleet (default: the host name); unique per
    /// daemon.
    #[arg(long, env = "CFGD_HOST_ID")]
    host_id: Option<String>,
    /// The CA certificate (PEM) that signed the etcd members' certificates:
    /// talk TLS to them.
    #[arg(long, env = "CFGD_ETCD_CA")]
    etcd_ca: Option<PathBuf>,
    /// A client certificate (PEM) for etcd members that require one; needs
    /// --etcd-key and --etcd-ca.
    #[arg(long, env = "CFGD_ETCD_CERT", requires = "etcd_key")]
    etcd_cert: Option<PathBuf>,
    /// The private key (PEM) of --etcd-cert.
    #[arg(long, env = "CFGD_ETCD_KEY", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// An etcd user; needs --etcd-password-file.
    #[arg(long, env = "CFGD_ETCD_USER", requires = "etcd_password_file")]
    etcd_user: Option<String>,
    /// A file holding the etcd user's password.
    #[arg(long, env = "CFGD_ETCD_PASSWORD_FILE", requires = "etcd_user")]
    etcd_password_file: Option<PathBuf>,
    /// The root of cfgd's keys in etcd (several fleets can share a cluster).
    #[arg(long, env = "CFGD_ETCD_PREFIX", default_value = "/cfgd")]
    etcd_prefix: String,
    /// Shared change records kept in etcd (older ones are trimmed).
    #[arg(long, default_value_t = 1000)]
    etcd_history: u64,
}

fn main() -> std::process::ExitCode {
    let layered = match cfgd::daemon_config::parse::<Args>(std::env::args_os()) {
        Ok(l) => l,
        Err(cfgd::daemon_config::ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("cfgd: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if layered.print {
        print!("{}", layered.print());
        return std::process::ExitCode::SUCCESS;
    }
    // A config dir someone named (file, environment or flag) must exist;
    // the default one may be absent.
    let config_dir_given = layered.source("config_dir").is_some_and(|s| s != "default");
    let args = layered.args;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cfgd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args, config_dir_given));
    // A file read stuck in the kernel (a hung network mount) must not keep
    // the process from exiting.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfgd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, config_dir_given: bool) -> anyhow::Result<()> {
    let token = token(&args, std::env::var_os("CFGD_TOKEN"))?;
    let mut config = cfgd::Config::new(std::env::vars().collect());
    config.config_dir = args.config_dir;
    config.config_dir_required = config_dir_given;
    config.state_dir = args.state_dir;
    config.profiles_path = args.profiles_path;
    config.token = token;
    config.debounce = Duration::from_millis(args.debounce_ms);
    config.debounce_max = Duration::from_millis(args.debounce_max_ms);
    config.history_limit = args.history.max(1);
    config.max_config_file_bytes = args.max_config_file_bytes;
    config.connections = cfgd::ConnectionLimits {
        max_connections: args.max_connections.max(1),
        max_streams_per_connection: args.max_streams_per_connection.max(1),
        idle_timeout: (args.idle_timeout_secs > 0)
            .then(|| Duration::from_secs(args.idle_timeout_secs)),
        ..cfgd::ConnectionLimits::default()
    };
    config.allow_insecure_listen = args.allow_insecure_listen;
    config.history_bytes = args.history_bytes.max(1);
    config.limits.max_profiles = args.max_profiles;
    config.limits.max_profile_bytes = args.max_profile_bytes;
    config.repair_state = args.repair_state;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(cfgd::TlsFiles { cert, key });
    }
    config.store = args.store.clone();
    if let cfgd::store::etcd::StoreConfig::Etcd(etcd) = &mut config.store {
        if let Some(host) = args.host_id {
            etcd.host = host;
        }
        etcd.ca = args.etcd_ca;
        etcd.identity = args.etcd_cert.zip(args.etcd_key);
        etcd.user = args.etcd_user.zip(args.etcd_password_file);
        etcd.prefix = args.etcd_prefix;
        etcd.history = args.etcd_history.max(1);
    }
    // Refuse before binding: nothing should listen on an unsafe address.
    config.check_security(&args.listen)?;
    let listener = cfgd::Listener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {:?}", args.listen))?;
    config.http = cfgd::HttpListener::open(args.http).await?;
    let console = config.http.as_ref().map(cfgd::HttpListener::local_addr);
    cfgd::serve_with_ready(config, listener, shutdown_signal(), move |serving| {
        // Scripts and tests read these lines to learn the ports: printed
        // only once the daemon really serves. Nobody reading them (stdout
        // closed) is no reason to stop serving: write errors are ignored,
        // where println! would panic.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "cfgd listening on {}", serving.listen);
        if let Some(console) = console {
            let _ = writeln!(out, "cfgd console on http://{console}/");
        }
        let _ = out.flush();
    })
    .await?;
    Ok(())
}

/// The token from `--token-file` or `CFGD_TOKEN` (`env`); an empty or blank
/// one is refused, since it would silently turn authentication off.
fn token(args: &Args, env: Option<std::ffi::OsString>) -> anyhow::Result<Option<String>> {
    let (token, from) = match (&args.token_file, env) {
        (Some(path), _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?,
            format!("the token file {}", path.display()),
        ),
        (None, Some(value)) => (
            value
                .into_string()
                .map_err(|_| anyhow::anyhow!("CFGD_TOKEN is not valid UTF-8"))?,
            "CFGD_TOKEN".to_owned(),
        ),
        (None, None) => return Ok(None),
    };
    let token = token.trim();
    if token.is_empty() {
        anyhow::bail!(
            "{from} is empty (or only whitespace), which would turn authentication off; put a token in it, or give neither --token-file nor CFGD_TOKEN to run without one"
        );
    }
    Ok(Some(token.to_owned()))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops cfgd");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
