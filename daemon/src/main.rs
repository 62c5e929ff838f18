//! `cfgd`: parses flags, sets up logging, binds, prints where it listens and
//! runs [`cfgd::serve`] until SIGINT or SIGTERM.

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
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfgd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("CFGD_TOKEN").ok(),
    };
    let mut config = cfgd::Config::new(std::env::vars().collect());
    config.config_dir = args.config_dir;
    config.state_dir = args.state_dir;
    config.profiles_path = args.profiles_path;
    config.token = token;
    config.debounce = Duration::from_millis(args.debounce_ms);
    config.history_limit = args.history.max(1);
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
    if let cfgd::ListenAddr::Tcp(addr) = &args.listen
        && !addr.ip().is_loopback()
        && config.token.is_none()
    {
        tracing::warn!(%addr, "listening beyond loopback without a token: anyone who can reach it can change settings");
    }
    let listener = cfgd::Listener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {:?}", args.listen))?;
    // Scripts and tests read this line to learn the port.
    println!("cfgd listening on {}", listener.local_addr());
    cfgd::serve(config, listener, shutdown_signal()).await?;
    Ok(())
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
