//! What a daemon costs to keep: RSS idle, with 10,000 settings or keys,
//! and per watcher; start-up time to the first answered request; and the
//! wall time of one `cfg set` / `etcdctl put` as a whole process.
//!
//! Every figure comes from a fresh daemon this module starts itself, so
//! earlier measurements (history, caches) do not weigh on it. RSS is read
//! after a settling pause from `/proc/PID/status`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cfgd_proto::pb as cfgd_pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use futures_util::StreamExt;

use crate::fanout::{System, Watchers};
use crate::procs::Proc;
use crate::stats::Samples;

/// Time left to a daemon after a change before its RSS is read.
const SETTLE: Duration = Duration::from_millis(700);

/// One daemon's footprint in one run.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// RSS after start-up, in KiB.
    pub idle_kib: u64,
    /// RSS holding `settings` settings (cfgd) or keys (etcd), in KiB.
    pub loaded_kib: u64,
    /// RSS with `watchers` watchers on top of that, in KiB.
    pub watched_kib: u64,
    /// `(watched − loaded) / watchers`, in bytes.
    pub per_watcher_bytes: f64,
    /// Spawn → first answered request of the daemon measured idle.
    pub startup: Duration,
}

/// The name of the `i`-th generated setting.
pub fn setting_name(i: usize) -> String {
    format!("BENCH_SVC_{i:05}")
}

/// The etcd key of the `i`-th generated key.
pub fn etcd_key(i: usize) -> String {
    format!("/cfgd-bench/svc/{i:05}")
}

/// Writes a service catalogue of `n` integer settings into
/// `config/catalog.d/bench.toml` and a value file `config/values.toml`
/// giving each a value.
///
/// # Errors
/// When the files cannot be written.
pub fn write_catalog(config: &Path, n: usize) -> anyhow::Result<()> {
    let mut catalog = String::with_capacity(n * 120);
    let mut values = String::with_capacity(n * 24 + 8);
    values.push_str("[svc]\n");
    for i in 0..n {
        let name = setting_name(i);
        let _ = write!(
            catalog,
            "[[settings]]\nname = \"{name}\"\npath = \"svc.k{i:05}\"\ntype = \"integer\"\ndefault = 0\ndescription = \"benchmark setting {i}\"\n\n"
        );
        let _ = writeln!(values, "k{i:05} = {}", i % 100 + 1);
    }
    std::fs::create_dir_all(config.join("catalog.d"))?;
    std::fs::write(config.join("catalog.d").join("bench.toml"), catalog)?;
    std::fs::write(config.join("values.toml"), values)?;
    Ok(())
}

/// How long a daemon may take to answer its first request.
const FIRST_ANSWER: Duration = Duration::from_secs(120);

/// Waits until cfgd at `endpoint` answers a `Get` of `name`.
///
/// # Errors
/// When it does not answer within two minutes.
pub async fn first_get(endpoint: &str, name: &str) -> anyhow::Result<()> {
    let mut c = SettingsClient::new(crate::connect(endpoint).await?);
    let get = c.get(cfgd_pb::GetRequest {
        name: name.into(),
        reveal_secrets: false,
        ..Default::default()
    });
    tokio::time::timeout(FIRST_ANSWER, get)
        .await
        .with_context(|| format!("cfgd did not answer within {FIRST_ANSWER:?}"))?
        .with_context(|| format!("cfgd did not answer a Get of {name}"))?;
    Ok(())
}

/// Spawns cfgd `times` times with an empty config dir and returns, for
/// each, spawn → first answered `Get`.
///
/// # Errors
/// When cfgd cannot be started or does not answer.
pub async fn cfgd_startup(bin: &Path, times: usize) -> anyhow::Result<Samples> {
    let mut s = Samples::new();
    for _ in 0..times {
        let p = Proc::cfgd(bin, None, &[]).await?;
        first_get(&p.endpoint, crate::KEY).await?;
        s.push(p.spawned.elapsed());
        p.stop().await;
    }
    Ok(s)
}

/// cfgd's footprint: idle (built-in catalogue), then a fresh daemon with
/// `settings` settings, then `watchers` watchers on it (watcher `i` on
/// setting `i % settings`), `per_connection` streams to a connection.
///
/// # Errors
/// When cfgd cannot be started or the watchers cannot be opened.
pub async fn cfgd(
    bin: &Path,
    settings: usize,
    watchers: usize,
    per_connection: usize,
) -> anyhow::Result<Footprint> {
    let idle = Proc::cfgd(bin, None, &[]).await?;
    first_get(&idle.endpoint, crate::KEY).await?;
    let startup = idle.spawned.elapsed();
    tokio::time::sleep(SETTLE).await;
    let idle_kib = idle.rss_kib()?;
    idle.stop().await;

    let dir = tempfile::Builder::new()
        .prefix("cfgd-footprint-")
        .tempdir()?;
    let config = dir.path().join("config");
    write_catalog(&config, settings)?;
    // The generated catalogue is one file of about 120 bytes a setting:
    // over the daemon's default 1 MiB file limit at 10,000.
    let loaded = Proc::cfgd(bin, Some(&config), &["--max-config-file-bytes", "16777216"]).await?;
    first_get(&loaded.endpoint, &setting_name(settings - 1)).await?;
    tokio::time::sleep(SETTLE).await;
    let loaded_kib = loaded.rss_kib()?;
    let key = move |i: usize| setting_name(i % settings);
    let w = Watchers::open(
        System::Cfgd,
        &loaded.endpoint,
        watchers,
        per_connection,
        &key,
    )
    .await?;
    tokio::time::sleep(SETTLE).await;
    let watched_kib = loaded.rss_kib()?;
    w.close().await;
    loaded.stop().await;
    Ok(Footprint {
        idle_kib,
        loaded_kib,
        watched_kib,
        per_watcher_bytes: per_watcher(loaded_kib, watched_kib, watchers),
        startup,
    })
}

/// etcd's footprint under the same load: idle, with `keys` keys, then
/// `watchers` watchers (watcher `i` on key `i % keys`).
///
/// # Errors
/// When etcd cannot be started or loaded.
pub async fn etcd(
    bin: &Path,
    keys: usize,
    watchers: usize,
    per_connection: usize,
) -> anyhow::Result<Footprint> {
    let etcd = Proc::etcd(bin).await?;
    let startup = etcd.spawned.elapsed();
    tokio::time::sleep(SETTLE).await;
    let idle_kib = etcd.rss_kib()?;
    let kv = crate::etcd_client(&etcd.endpoint, Duration::from_secs(5))?;
    let results: Vec<_> = futures_util::stream::iter(0..keys)
        .map(|i| {
            let kv = kv.clone();
            async move { kv.put(etcd_key(i), (i % 100 + 1).to_string()).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        bail!("cannot load etcd with {keys} keys: {e}");
    }
    tokio::time::sleep(SETTLE).await;
    let loaded_kib = etcd.rss_kib()?;
    let key = move |i: usize| etcd_key(i % keys);
    let w = Watchers::open(System::Etcd, &etcd.endpoint, watchers, per_connection, &key).await?;
    tokio::time::sleep(SETTLE).await;
    let watched_kib = etcd.rss_kib()?;
    w.close().await;
    etcd.stop().await;
    Ok(Footprint {
        idle_kib,
        loaded_kib,
        watched_kib,
        per_watcher_bytes: per_watcher(loaded_kib, watched_kib, watchers),
        startup,
    })
}

fn per_watcher(before_kib: u64, after_kib: u64, watchers: usize) -> f64 {
    (after_kib as f64 - before_kib as f64) * 1024.0 / watchers.max(1) as f64
}

/// Runs `program args…` `times` times and returns the wall time of each
/// whole process (spawn to exit).
///
/// # Errors
/// When it cannot be run or exits unsuccessfully.
pub async fn process_wall(
    program: &Path,
    args: &dyn Fn(usize) -> Vec<String>,
    env: &[(&str, &str)],
    times: usize,
) -> anyhow::Result<Samples> {
    let mut s = Samples::new();
    for i in 0..times {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args(i))
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .with_context(|| format!("{} did not finish in 30 s", program.display()))?
            .with_context(|| format!("cannot run {}", program.display()))?;
        let elapsed = started.elapsed();
        if !out.status.success() {
            bail!(
                "{} {:?} failed ({}): {}",
                program.display(),
                args(i),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        s.push(elapsed);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_watcher_is_in_bytes() {
        assert_eq!(per_watcher(10_000, 30_000, 10_000), 2048.0);
        assert_eq!(per_watcher(10_000, 9_000, 1_000), -1024.0);
    }

    #[test]
    fn generated_catalogue_and_values_load() {
        let dir = tempfile::tempdir().unwrap();
        write_catalog(dir.path(), 3).unwrap();
        let catalog = std::fs::read_to_string(dir.path().join("catalog.d/bench.toml")).unwrap();
        assert_eq!(catalog.matches("[[settings]]").count(), 3);
        assert!(catalog.contains("name = \"BENCH_SVC_00002\""));
        let values = std::fs::read_to_string(dir.path().join("values.toml")).unwrap();
        assert_eq!(values, "[svc]\nk00000 = 1\nk00001 = 2\nk00002 = 3\n");
        let loaded = cfgd_settings::ConfigDir::load(dir.path());
        assert_eq!(loaded.errors().count(), 0, "the generated files are valid");
        assert!(loaded.catalog().lookup("BENCH_SVC_00002").is_ok());
    }
}
