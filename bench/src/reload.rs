//! Hot reload: a value file in cfgd's config dir is replaced by rename (as
//! editors save) and a watcher of the setting it changes waits for the
//! change. The time runs from the rename to the watcher's receipt, so it
//! holds cfgd's debounce (reported beside it) plus everything after.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cfgd_proto::pb as cfgd_pb;
use cfgd_proto::pb::settings_client::SettingsClient;

use crate::procs::Proc;
use crate::stats::Samples;

/// The setting the value file changes (not the one the other measurements
/// write, so the file never shadows them).
pub const RELOAD_KEY: &str = "PREFECT_FLOWS_DEFAULT_RETRIES";

/// The value file.
const FILE: &str = "bench.toml";

/// How long one change may take to arrive.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a fresh cfgd (`bin`) with `--debounce-ms debounce_ms`, then
/// replaces its value file `changes` times, `pause` apart, and returns the
/// rename → watcher latency of each.
///
/// # Errors
/// When cfgd cannot be started, or a change does not arrive in time.
pub async fn measure(
    bin: &Path,
    debounce_ms: u64,
    changes: usize,
    pause: Duration,
) -> anyhow::Result<Samples> {
    let dir = tempfile::Builder::new().prefix("cfgd-reload-").tempdir()?;
    let config = dir.path().join("config");
    let staging = dir.path().join("staging");
    std::fs::create_dir(&config)?;
    std::fs::create_dir(&staging)?;
    let debounce = debounce_ms.to_string();
    let cfgd = Proc::cfgd(bin, Some(&config), &["--debounce-ms", &debounce]).await?;
    let result = changes_to_watcher(&cfgd.endpoint, &config, &staging, changes, pause).await;
    cfgd.stop().await;
    result
}

async fn changes_to_watcher(
    endpoint: &str,
    config: &Path,
    staging: &Path,
    changes: usize,
    pause: Duration,
) -> anyhow::Result<Samples> {
    let mut client = SettingsClient::new(crate::connect(endpoint).await?);
    let mut stream = client
        .watch(cfgd_pb::WatchRequest {
            names: vec![RELOAD_KEY.into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    // The initial resync: the watch is live.
    stream.message().await?.context("the watch ended at once")?;
    let mut samples = Samples::new();
    for i in 1..=changes {
        // Written outside the config dir so only the rename is seen.
        let staged = staging.join(FILE);
        std::fs::write(&staged, format!("[flows]\ndefault_retries = {i}\n"))?;
        let renamed = Instant::now();
        std::fs::rename(&staged, config.join(FILE))?;
        loop {
            let event = tokio::time::timeout(ARRIVAL_TIMEOUT, stream.message())
                .await
                .with_context(|| format!("change {i} did not arrive within {ARRIVAL_TIMEOUT:?}"))??
                .context("the watch ended")?;
            let elapsed = renamed.elapsed();
            match event.event {
                Some(cfgd_pb::watch_response::Event::Change(c)) if has_value(&c, i) => {
                    samples.push(elapsed);
                    break;
                }
                Some(cfgd_pb::watch_response::Event::Change(_)) => continue,
                other => bail!("expected the change to {i}, got {other:?}"),
            }
        }
        tokio::time::sleep(pause).await;
    }
    Ok(samples)
}

fn has_value(change: &cfgd_pb::Change, value: usize) -> bool {
    change.changes.iter().any(|k| {
        k.name == RELOAD_KEY
            && matches!(
                k.new_value.as_ref().and_then(|v| v.kind.as_ref()),
                Some(cfgd_pb::value::Kind::Integer(n)) if *n == value as i64
            )
    })
}
