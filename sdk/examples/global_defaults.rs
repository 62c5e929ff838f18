//! Prefect's global retry defaults, set with the CLI:
//!
//! ```text
//! prefect config set PREFECT_TASK_DEFAULT_RETRIES=2
//! ```
//!
//! With cfgd the same `cfg set PREFECT_TASK_DEFAULT_RETRIES=2` goes to the
//! running daemon, a service's [`Settings`] sees it within moments, and a
//! task that sets no `retries` of its own uses it from its **next run** —
//! no restart (Prefect reads the default once, when the task is defined).
//!
//! The example starts a daemon in-process on `127.0.0.1:0` with temp dirs,
//! or uses the one at `CFGD_ENDPOINT` when that is set (with `CFGD_TOKEN`
//! for the write; it then leaves `PREFECT_TASKS_DEFAULT_RETRIES` at 2).
//! The task calls a local service that fails three times with 503: with the
//! default 0 retries the first run fails; after the `cfg set` the next run
//! retries twice and completes.
//!
//! `cargo run -p cfgd-sdk --example global_defaults`

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use cfgd_sdk::retry::{RunError, clear_global_defaults, task};
use cfgd_sdk::{Assign, Client, Options, Settings};
use common::{FetchError, FlakyService};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const RETRIES: &str = "PREFECT_TASK_DEFAULT_RETRIES";

/// No `retries` here: they come from the live settings at each run.
#[task]
async fn get_data_task(url: &str) -> Result<String, FetchError> {
    common::get(url).await
}

/// A daemon running in this process.
struct Daemon {
    endpoint: String,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), cfgd::DaemonError>>,
    _dirs: tempfile::TempDir,
}

impl Daemon {
    /// Serves on `127.0.0.1:0` with fresh temp dirs and an empty
    /// environment (this process's `PREFECT_*` variables stay out).
    async fn start() -> Self {
        let dirs = tempfile::tempdir().expect("a temp dir");
        let mut config = cfgd::Config::new(Vec::new());
        config.config_dir = dirs.path().join("config");
        config.state_dir = dirs.path().join("state");
        std::fs::create_dir(&config.config_dir).expect("the config dir");
        let addr = cfgd::ListenAddr::Tcp(([127, 0, 0, 1], 0).into());
        let listener = cfgd::Listener::bind(&addr).await.expect("bind 127.0.0.1:0");
        let endpoint = format!("http://{}", listener.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(cfgd::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self {
            endpoint,
            stop,
            handle,
            _dirs: dirs,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle
            .await
            .expect("the daemon task")
            .expect("the daemon stopped cleanly");
    }
}

/// `cfg set NAME=VALUE`, then waits until `settings` shows it.
async fn cfg_set(client: &Client, settings: &Settings, value: i64) {
    println!("$ cfg set {RETRIES}={value}");
    let written = client
        .set(&[(RETRIES.into(), Assign::Raw(value.to_string()))], None)
        .await
        .expect("cfg set");
    println!(
        "  set in profile '{}' at revision {}",
        written.profile, written.revision
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while settings.get_i64(RETRIES) != Some(value) {
            settings.changed_key(RETRIES).await;
        }
    })
    .await
    .expect("the live settings show the new value within 10 s (unless a layer above the profile, such as the daemon's environment, sets it)");
    let source = settings.get(RETRIES).map(|c| c.source.to_string());
    println!(
        "  the service's live settings now show {value} (from {})",
        source.unwrap_or_default()
    );
}

/// The scenario, checked: one attempt with the default 0 retries; three
/// (two retries) after `cfg set PREFECT_TASK_DEFAULT_RETRIES=2`.
pub(crate) async fn run() {
    let (endpoint, daemon) = match std::env::var("CFGD_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
        _ => {
            let daemon = Daemon::start().await;
            (daemon.endpoint.clone(), Some(daemon))
        }
    };
    println!("global_defaults: daemon at {endpoint}");
    let token = std::env::var("CFGD_TOKEN").ok();
    let client = Client::connect(&endpoint, token.as_deref())
        .await
        .expect("connect to the daemon");

    // What a service does at start; reads never wait for the daemon.
    let settings = Settings::connect(Options::isolated(&endpoint));
    tokio::time::timeout(Duration::from_secs(10), settings.connected())
        .await
        .expect("the settings connect within 10 s");
    settings.install_retry_defaults();
    if settings.get_i64(RETRIES) != Some(0) {
        cfg_set(&client, &settings, 0).await; // a daemon that had another value
    }
    let delay = settings.get_delays("PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS");
    println!(
        "  default retries: 0, default delay: {} s",
        delay.map(|d| d.to_string()).unwrap_or_default()
    );

    let service = FlakyService::start(&[503, 503, 503], "ok").await;

    println!("run 1, #[task] with no retries:");
    let (run, result) = get_data_task_with_history(service.url()).await;
    println!("  result: {result:?}");
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    assert!(matches!(result, Err(RunError::Failed(_))), "{result:?}");
    assert_eq!(run.run_count(), 1);

    cfg_set(&client, &settings, 2).await;

    println!("run 2, the same task, same process:");
    let (run, result) = get_data_task_with_history(service.url()).await;
    println!("  result: {result:?}");
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    assert_eq!(result.as_deref(), Ok("ok"));
    assert_eq!(run.retries(), 2);
    assert_eq!(run.run_count(), 3);
    assert_eq!(service.requests(), 4);

    clear_global_defaults();
    drop((settings, client)); // so the daemon has no connection to wait for
    if let Some(daemon) = daemon {
        daemon.stop().await;
    }
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
