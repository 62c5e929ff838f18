//! Every measurement of issue 6, run after run, into one [`Report`]: in
//! each run cfgd and its baselines are measured back to back, so each
//! ratio compares figures taken under the same conditions.
//!
//! The figures of the criterion benches (SDK read, retry engine) are read
//! from the directories `bench/run.sh` gave them ([`criterion`]).

pub mod criterion;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::fanout::{self, System, Watchers, Writer};
use crate::report::Report;
use crate::unary::{self, Call, Load};
use crate::{footprint, reload, retry_delay, stats};

/// What to run and against what.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The cfgd under test (started by `run.sh`).
    pub cfgd: String,
    /// The etcd baseline.
    pub etcd: String,
    /// The echo server (the floor).
    pub echo: String,
    /// The `cfgd` binary, for the daemons this suite starts itself.
    pub cfgd_bin: PathBuf,
    /// The `etcd` binary.
    pub etcd_bin: PathBuf,
    /// The `etcdctl` binary, if installed.
    pub etcdctl_bin: Option<PathBuf>,
    /// The `cfg` binary, if built.
    pub cfg_bin: Option<PathBuf>,
    /// Runs of each measurement.
    pub runs: usize,
    /// Seconds of each measured load phase.
    pub seconds: f64,
    /// Watcher counts for the fan-out.
    pub fanout: Vec<usize>,
    /// Largest watcher count etcd's fan-out is measured at.
    pub etcd_fanout_max: usize,
    /// Watch streams per HTTP/2 connection.
    pub per_connection: usize,
    /// cfgd's debounce for the hot-reload measurement, in ms.
    pub debounce_ms: u64,
    /// Settings, keys and watchers for the footprint.
    pub footprint_n: usize,
    /// One directory per criterion run (see [`criterion`]).
    pub criterion_runs: Vec<PathBuf>,
    /// Only these sections (all when empty): `read`, `write`, `fanout`,
    /// `reload`, `footprint`, `cli`, `sdk`, `retry`.
    pub only: Vec<String>,
}

impl Suite {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }

    /// Runs every wanted section `runs` times and judges the targets.
    /// A measurement that fails leaves its run empty and a note; the
    /// others go on.
    pub async fn run(&self, report: &mut Report) {
        self.conditions(report).await;
        for run in 1..=self.runs {
            eprintln!("== run {run} of {}", self.runs);
            if self.wants("read") {
                self.read(report).await;
            }
            if self.wants("write") {
                self.write(report).await;
            }
            if self.wants("fanout") {
                self.fanout(report).await;
            }
            if self.wants("reload") {
                self.reload(report).await;
            }
            if self.wants("footprint") {
                self.footprint(report).await;
            }
            if self.wants("cli") {
                self.cli(report).await;
            }
            if self.wants("retry") {
                self.retry_delay(report).await;
            }
        }
        if self.wants("sdk") || self.wants("retry") {
            criterion::collect(&self.criterion_runs, report);
        }
        targets::judge(report, self.debounce_ms as f64);
    }

    async fn conditions(&self, report: &mut Report) {
        let c = &mut report.conditions;
        c.insert(
            "date".into(),
            json!(shell("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
        );
        c.insert("machine".into(), json!(machine()));
        c.insert(
            "etcd".into(),
            json!(
                shell(&self.etcd_bin.to_string_lossy(), &["--version"])
                    .lines()
                    .next()
                    .unwrap_or("?")
                    .to_owned()
            ),
        );
        c.insert(
            "cfgd commit".into(),
            json!(shell("git", &["rev-parse", "--short", "HEAD"])),
        );
        c.insert("runs".into(), json!(self.runs));
        let get = unary::cfgd_get_size(&self.cfgd).await.unwrap_or(0);
        let range = unary::etcd_prepare(&self.etcd).await.unwrap_or(0);
        c.insert("value size".into(), json!(format!(
            "read {} (an integer setting); cfgd Get answer {get} B, etcd Range answer {range} B, echo answer {get} B payload; writes set an integer (≤ 10 digits)", crate::KEY)));
        c.insert("load".into(), json!(format!(
            "closed loop, {:.1} s measured after a warm-up, per case; c=64 on 1 shared connection and on 64 connections; etcd reads linearizable (its default)", self.seconds)));
        c.insert("fan-out".into(), json!(format!(
            "one stream per watcher, {} streams per connection; each write waits for every watcher before the next", self.per_connection)));
        c.insert("durability".into(), json!("cfgd and etcd both keep their data in a temp dir on the same ext4 disk and fsync before acknowledging"));
        c.insert("logging".into(), json!("cfgd at its default level (info, one line per change) and etcd at its default, both to a file"));
        c.insert(
            "hot-reload debounce".into(),
            json!(format!("{} ms (cfgd's default)", self.debounce_ms)),
        );
    }

    fn load(&self, concurrency: usize, connections: usize) -> Load {
        Load {
            concurrency,
            connections,
            warmup: Duration::from_millis(300),
            duration: Duration::from_secs_f64(self.seconds),
            max_requests: if concurrency == 1 { 20_000 } else { u64::MAX },
        }
    }

    async fn read(&self, report: &mut Report) {
        let echo_bytes = unary::cfgd_get_size(&self.cfgd).await.unwrap_or(64) as u32;
        for (case, label, c, conns) in [
            ("c1", "c=1", 1, 1),
            ("c64x1", "c=64, 1 connection", 64, 1),
            ("c64x64", "c=64, 64 connections", 64, 64),
        ] {
            for (system, endpoint, call) in [
                ("cfgd", &self.cfgd, Call::CfgdGet),
                ("etcd", &self.etcd, Call::EtcdRange),
                (
                    "floor",
                    &self.echo,
                    Call::Echo {
                        reply_bytes: echo_bytes,
                    },
                ),
            ] {
                let r = unary::run(endpoint, call, self.load(c, conns)).await;
                record_load(
                    report,
                    "Read one setting (unary)",
                    "read",
                    case,
                    label,
                    system,
                    r,
                );
            }
        }
    }

    async fn write(&self, report: &mut Report) {
        for (case, label, c) in [("c1", "c=1", 1), ("c64", "c=64, 1 connection", 64)] {
            for (system, endpoint, call) in [
                ("cfgd", &self.cfgd, Call::CfgdSet),
                ("etcd", &self.etcd, Call::EtcdPut),
            ] {
                let r = unary::run(endpoint, call, self.load(c, 1)).await;
                record_load(report, "Durable write", "write", case, label, system, r);
            }
        }
    }

    async fn fanout(&self, report: &mut Report) {
        for &n in &self.fanout {
            let writes = match n {
                0..=100 => 40,
                101..=1000 => 30,
                _ => 15,
            };
            for (system, name, endpoint) in [
                (System::Cfgd, "cfgd", &self.cfgd),
                (System::Etcd, "etcd", &self.etcd),
            ] {
                if system == System::Etcd && n > self.etcd_fanout_max {
                    continue;
                }
                let r = fanout_once(system, endpoint, n, self.per_connection, writes).await;
                let group = "Change fan-out: write → last of N watchers";
                let label = format!("N={n}");
                let (p50, p99, open) = match r {
                    Ok((mut s, open)) => (ms_of(s.quantile(0.5)), ms_of(s.quantile(0.99)), open),
                    Err(e) => {
                        note(report, &format!("fan-out {name} N={n}"), &e);
                        (f64::NAN, f64::NAN, f64::NAN)
                    }
                };
                report
                    .row(&format!("fanout.n{n}.p50"), group, &label, "p50", "ms")
                    .push(name, p50);
                report
                    .row(&format!("fanout.n{n}.p99"), group, &label, "p99", "ms")
                    .push(name, p99);
                report
                    .row(
                        &format!("fanout.n{n}.open"),
                        group,
                        &label,
                        "open all watchers",
                        "ms",
                    )
                    .push(name, open);
                if system == System::Cfgd {
                    let left =
                        fanout::cfgd_wait_no_watchers(&self.cfgd, Duration::from_secs(10)).await;
                    if let Ok(left @ 1..) = left {
                        report.notes.push(format!(
                            "cfgd still counted {left} watchers 10 s after N={n} closed"
                        ));
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    async fn reload(&self, report: &mut Report) {
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

    async fn footprint(&self, report: &mut Report) {
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

    async fn retry_delay(&self, report: &mut Report) {
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

    async fn cli(&self, report: &mut Report) {
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

async fn fanout_once(
    system: System,
    endpoint: &str,
    n: usize,
    per_connection: usize,
    writes: usize,
) -> anyhow::Result<(stats::Samples, f64)> {
    let key = move |_: usize| match system {
        System::Cfgd => crate::KEY.to_owned(),
        System::Etcd => crate::ETCD_KEY.to_owned(),
    };
    let mut w = Watchers::open(system, endpoint, n, per_connection, &key).await?;
    let open = stats::ms(w.open_time);
    let mut writer = Writer::connect(system, endpoint).await?;
    let r = w
        .measure(&mut writer, writes, Duration::from_millis(20))
        .await;
    w.close().await;
    Ok((r?, open))
}

fn record_load(
    report: &mut Report,
    group: &str,
    id: &str,
    case: &str,
    label: &str,
    system: &str,
    r: anyhow::Result<unary::LoadResult>,
) {
    let (p50, p99, tput) = match r {
        Ok(mut r) => {
            if r.errors > 0 {
                report.notes.push(format!(
                    "{id} {case} {system}: {} errors, first: {}",
                    r.errors,
                    r.first_error.clone().unwrap_or_default()
                ));
            }
            (r.latencies.p50_us(), r.latencies.p99_us(), r.throughput())
        }
        Err(e) => {
            note(report, &format!("{id} {case} {system}"), &e);
            (f64::NAN, f64::NAN, f64::NAN)
        }
    };
    report
        .row(&format!("{id}.{case}.p50"), group, label, "p50", "µs")
        .push(system, p50);
    report
        .row(&format!("{id}.{case}.p99"), group, label, "p99", "µs")
        .push(system, p99);
    report
        .row(
            &format!("{id}.{case}.throughput"),
            group,
            label,
            "throughput",
            "req/s",
        )
        .push(system, tput);
}

fn ms_of(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, stats::ms)
}

fn note(report: &mut Report, what: &str, e: &anyhow::Error) {
    eprintln!("{what}: {e:#}");
    report.notes.push(format!("{what} failed: {e:#}"));
}

/// The first line a command prints, or `?`.
fn shell(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0 / 1024.0);
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |k| k.trim().to_owned());
    format!("nproc {nproc}, {cpu}, {mem_gib:.0} GiB RAM, Linux {kernel}")
}
