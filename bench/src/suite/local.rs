//! Measurements on daemons this suite starts itself (hot reload,
//! footprint, start-up), whole-process CLI runs, and the retry delay
//! overshoot (in process).

use std::time::Duration;

use super::{Suite, ms_of, note};
use crate::report::Report;
use crate::{footprint, reload, retry_delay, stats};

impl Suite {
    pub(super) async fn reload(&self, report: &mut Report) {
        let group = "Hot reload: file replaced (rename) → watcher notified";
        let label = format!("debounce {} ms", self.debounce_ms);
        let r = reload::measure(
            &self.cfgd_bin,
            self.debounce_ms,
            15,
            Duration::from_millis(150),
        )
        .await;
        let (p50, p99) = match r {
            Ok(mut s) => (ms_of(s.quantile(0.5)), ms_of(s.quantile(0.99))),
            Err(e) => {
                note(report, "hot reload", &e);
                (f64::NAN, f64::NAN)
            }
        };
        report
            .row("reload.p50", group, &label, "p50", "ms")
            .push("cfgd", p50);
        report
            .row("reload.p99", group, &label, "p99", "ms")
            .push("cfgd", p99);
    }

    pub(super) async fn footprint(&self, report: &mut Report) {
        let n = self.footprint_n;
        let group = "Footprint";
        let cfgd = footprint::cfgd(&self.cfgd_bin, n, n, self.per_connection).await;
        let etcd = footprint::etcd(&self.etcd_bin, n, n, self.per_connection).await;
        let startup = footprint::cfgd_startup(&self.cfgd_bin, 5).await;
        for (name, r) in [("cfgd", cfgd), ("etcd", etcd)] {
            let f = match r {
                Ok(f) => Some(f),
                Err(e) => {
                    note(report, &format!("footprint {name}"), &e);
                    None
                }
            };
            let mb = |kib: fn(&footprint::Footprint) -> u64| {
                f.as_ref().map_or(f64::NAN, |f| kib(f) as f64 / 1024.0)
            };
            report
                .row("footprint.idle", group, "idle", "RSS", "MiB")
                .push(name, mb(|f| f.idle_kib));
            report
                .row(
                    "footprint.loaded",
                    group,
                    &format!("{n} settings / keys"),
                    "RSS",
                    "MiB",
                )
                .push(name, mb(|f| f.loaded_kib));
            report
                .row(
                    "footprint.watched",
                    group,
                    &format!("{n} settings / keys + {n} watchers"),
                    "RSS",
                    "MiB",
                )
                .push(name, mb(|f| f.watched_kib));
            report
                .row(
                    "footprint.per_watcher",
                    group,
                    "per watcher (RSS with watchers − without) / N",
                    "RSS",
                    "KiB",
                )
                .push(
                    name,
                    f.as_ref()
                        .map_or(f64::NAN, |f| f.per_watcher_bytes / 1024.0),
                );
            let startup_ms = match (name, &startup, &f) {
                ("cfgd", Ok(s), _) => ms_of(s.clone().quantile(0.5)),
                ("etcd", _, Some(f)) => stats::ms(f.startup),
                _ => f64::NAN,
            };
            report
                .row(
                    "startup",
                    group,
                    "start-up → first answered request",
                    "wall",
                    "ms",
                )
                .push(name, startup_ms);
        }
        if let Err(e) = startup {
            note(report, "cfgd start-up", &e);
        }
    }

    pub(super) async fn retry_delay(&self, report: &mut Report) {
        let group = "Retry engine (criterion)";
        let samples = 40;
        for (driver, r) in [
            ("run", retry_delay::overshoot_async(samples).await),
            (
                "run_blocking",
                retry_delay::overshoot_blocking(samples).await,
            ),
        ] {
            let case = format!("50 ms delay, {driver}: actual − scheduled ({samples} retries)");
            let (p50, p99) = match r {
                Ok(mut s) => (ms_of(s.quantile(0.5)), ms_of(s.quantile(0.99))),
                Err(e) => {
                    note(report, &format!("retry delay overshoot ({driver})"), &e);
                    (f64::NAN, f64::NAN)
                }
            };
            report
                .row(
                    &format!("retry.overshoot.{driver}.p50"),
                    group,
                    &case,
                    "p50",
                    "ms",
                )
                .push("cfgd", p50);
            report
                .row(
                    &format!("retry.overshoot.{driver}.p99"),
                    group,
                    &case,
                    "p99",
                    "ms",
                )
                .push("cfgd", p99);
        }
    }

    pub(super) async fn cli(&self, report: &mut Report) {
        let group = "Footprint";
        let row = "cli";
        let label = "`cfg set` / `etcdctl put` as a whole process";
        let times = 10;
        let cfg = match &self.cfg_bin {
            Some(bin) => {
                let endpoint = self.cfgd.clone();
                let args = move |i: usize| {
                    vec![
                        "set".into(),
                        format!("{}={}", reload::RELOAD_KEY, 100 + i % 2),
                        "--endpoint".into(),
                        endpoint.clone(),
                    ]
                };
                footprint::process_wall(bin, &args, &[], times).await
            }
            None => Err(anyhow::anyhow!("the `cfg` binary was not built")),
        };
        let etcdctl = match &self.etcdctl_bin {
            Some(bin) => {
                let endpoint = self.etcd.clone();
                let args = move |i: usize| {
                    vec![
                        format!("--endpoints={endpoint}"),
                        "put".into(),
                        crate::ETCD_KEY.into(),
                        (100 + i % 2).to_string(),
                    ]
                };
                footprint::process_wall(bin, &args, &[("ETCDCTL_API", "3")], times).await
            }
            None => Err(anyhow::anyhow!("`etcdctl` is not installed")),
        };
        for (name, r) in [("cfgd", cfg), ("etcd", etcdctl)] {
            let v = match r {
                Ok(mut s) => ms_of(s.quantile(0.5)),
                Err(e) => {
                    note(report, &format!("{name} CLI wall time"), &e);
                    f64::NAN
                }
            };
            report
                .row(row, group, label, "p50 wall", "ms")
                .push(name, v);
        }
    }
}

impl Suite {
    /// The cost of a `Set` as the catalogue grows (issue 13 item 3): a
    /// fresh daemon per size, with `n` settings declared in `catalog.d`
    /// (each given a value by a value file) on top of the built-in ones,
    /// then c=1 `Set`s of one setting. Latency is mostly the fsync; the
    /// server CPU per `Set` is the write path's own work.
    pub(super) async fn set_scale(&self, report: &mut Report) {
        let group = "Durable write as the catalogue grows (c=1)";
        for n in [100, 1_000, 10_000] {
            let label = format!("+{n} settings");
            let r = set_scale_once(&self.cfgd_bin, n, self.load(1, 1, None)).await;
            let (p50, cpu) = match r {
                Ok(mut r) => {
                    if r.errors > 0 {
                        report.notes.push(format!(
                            "setscale n={n}: {} errors, first: {}",
                            r.errors,
                            r.first_error.clone().unwrap_or_default()
                        ));
                    }
                    (r.latencies.p50_us(), r.server_cpu_us())
                }
                Err(e) => {
                    note(report, &format!("setscale n={n}"), &e);
                    (f64::NAN, f64::NAN)
                }
            };
            report
                .row(&format!("setscale.n{n}.p50"), group, &label, "p50", "µs")
                .push("cfgd", p50);
            report
                .row(
                    &format!("setscale.n{n}.cpu"),
                    group,
                    &label,
                    "server CPU per Set",
                    "µs",
                )
                .push("cfgd", cpu);
        }
    }
}

/// One size of [`Suite::set_scale`]: its own daemon and config dir.
async fn set_scale_once(
    bin: &std::path::Path,
    n: usize,
    mut load: crate::unary::Load,
) -> anyhow::Result<crate::unary::LoadResult> {
    let dir = tempfile::Builder::new()
        .prefix("cfgd-setscale-")
        .tempdir()?;
    let config = dir.path().join("config");
    footprint::write_catalog(&config, n)?;
    // The generated catalogue is one file of about 120 bytes a setting.
    let proc =
        crate::procs::Proc::cfgd(bin, Some(&config), &["--max-config-file-bytes", "16777216"])
            .await?;
    footprint::first_get(&proc.endpoint, &footprint::setting_name(n - 1)).await?;
    load.server_pid = Some(proc.pid);
    let r = crate::unary::run(&proc.endpoint, crate::unary::Call::CfgdSet, load).await;
    proc.stop().await;
    r
}
