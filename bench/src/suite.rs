//! Every measurement of issue 6, run after run, into one [`Report`]: in
//! each run cfgd and its baselines are measured back to back, so each
//! ratio compares figures taken under the same conditions.
//!
//! # Layout
//! - `network` — load on the daemons `run.sh` started: reads, writes, fan-out.
//! - `console` — the console's cost on the read path (an open event
//!   stream, `/metrics` scraped every second), quiet against open.
//! - `fleet` — three daemons on a 3-member etcd cluster it starts: a set on
//!   one → the last of N watchers over the three, beside one daemon and
//!   beside etcd's watches.
//! - `local` — daemons this suite starts itself (hot reload, footprint,
//!   start-up), whole-process CLI runs, the retry delay overshoot.
//! - [`criterion`] — the criterion benches' figures (SDK read, retry
//!   engine), read from the directories `run.sh` gave them.
//! - `targets` — issue 6's targets, judged.

mod console;
pub mod criterion;
mod fleet;
mod local;
mod network;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::report::Report;
use crate::{stats, unary};

/// The pids of the daemons `run.sh` started, when known.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pids {
    /// cfgd.
    pub cfgd: Option<u32>,
    /// etcd.
    pub etcd: Option<u32>,
    /// The echo server.
    pub echo: Option<u32>,
}

/// What to run and against what.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The cfgd under test (started by `run.sh`).
    pub cfgd: String,
    /// Its console (`http://127.0.0.1:PORT`), when it serves one.
    pub console: Option<String>,
    /// The etcd baseline.
    pub etcd: String,
    /// The echo server (the floor).
    pub echo: String,
    /// Their pids, to measure the CPU each uses per request.
    pub pids: Pids,
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
    /// Watcher counts (among `fanout`) also measured through the SDK.
    pub sdk_fanout: Vec<usize>,
    /// Watcher counts for the fleet's fan-out.
    pub fleet_fanout: Vec<usize>,
    /// Watch streams per HTTP/2 connection.
    pub per_connection: usize,
    /// cfgd's debounce for the hot-reload measurement, in ms.
    pub debounce_ms: u64,
    /// Settings, keys and watchers for the footprint.
    pub footprint_n: usize,
    /// One directory per criterion run (see [`criterion`]).
    pub criterion_runs: Vec<PathBuf>,
    /// Only these sections (all when empty): `read`, `write`, `setscale`,
    /// `fanout`, `fleet`, `reload`, `footprint`, `cli`, `sdk`, `retry`, `console`.
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
            if self.wants("console") {
                self.console(report).await;
            }
            if self.wants("write") {
                self.write(report).await;
            }
            if self.wants("setscale") {
                self.set_scale(report).await;
            }
            if self.wants("fanout") {
                self.fanout(report).await;
            }
            if self.wants("fleet") {
                self.fleet(report).await;
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
            "one stream per watcher, {} streams per connection; each write waits for every watcher before the next; through the SDK (N = {:?}), one `Settings` per watcher, each its own connection (the daemon allows 512 connections by default; the bench's is started with --max-connections 4096)", self.per_connection, self.sdk_fanout)));
        c.insert("durability".into(), json!("cfgd and etcd both keep their data in a temp dir on the same ext4 disk and fsync before acknowledging"));
        c.insert("logging".into(), json!("cfgd at its default level (info, one line per change) and etcd at its default, both to a file"));
        c.insert(
            "hot-reload debounce".into(),
            json!(format!("{} ms (cfgd's default)", self.debounce_ms)),
        );
    }
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
