//! Load on the daemons `run.sh` started: unary reads and durable writes,
//! and the change fan-out, with cfgd and its baselines back to back.

use std::time::Duration;

use super::{Suite, ms_of, note};
use crate::fanout::{self, System, Watchers, Writer};
use crate::report::Report;
use crate::stats;
use crate::unary::{self, Call, Load};

impl Suite {
    pub(super) fn load(
        &self,
        concurrency: usize,
        connections: usize,
        server_pid: Option<u32>,
    ) -> Load {
        Load {
            server_pid,
            concurrency,
            connections,
            warmup: Duration::from_millis(300),
            duration: Duration::from_secs_f64(self.seconds),
            max_requests: if concurrency == 1 { 20_000 } else { u64::MAX },
        }
    }

    pub(super) async fn read(&self, report: &mut Report) {
        let echo_bytes = unary::cfgd_get_size(&self.cfgd).await.unwrap_or(64) as u32;
        for (case, label, c, conns) in [
            ("c1", "c=1", 1, 1),
            ("c64x1", "c=64, 1 connection", 64, 1),
            ("c64x64", "c=64, 64 connections", 64, 64),
        ] {
            for (system, endpoint, call, pid) in [
                ("cfgd", &self.cfgd, Call::CfgdGet, self.pids.cfgd),
                ("etcd", &self.etcd, Call::EtcdRange, self.pids.etcd),
                (
                    "floor",
                    &self.echo,
                    Call::Echo {
                        reply_bytes: echo_bytes,
                    },
                    self.pids.echo,
                ),
            ] {
                let r = unary::run(endpoint, call, self.load(c, conns, pid)).await;
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

    pub(super) async fn write(&self, report: &mut Report) {
        for (case, label, c) in [("c1", "c=1", 1), ("c64", "c=64, 1 connection", 64)] {
            for (system, endpoint, call, pid) in [
                ("cfgd", &self.cfgd, Call::CfgdSet, self.pids.cfgd),
                ("etcd", &self.etcd, Call::EtcdPut, self.pids.etcd),
            ] {
                let r = unary::run(endpoint, call, self.load(c, 1, pid)).await;
                record_load(report, "Durable write", "write", case, label, system, r);
            }
        }
    }

    pub(super) async fn fanout(&self, report: &mut Report) {
        const GROUP: &str = "Change fan-out: write → last of N watchers";
        const SDK_GROUP: &str = "Change fan-out through the SDK: write → last of N `Settings` (one per service, each its own connection), etcd's watchers as in the table above";
        for &n in &self.fanout {
            let writes = match n {
                0..=100 => 40,
                101..=1000 => 30,
                _ => 15,
            };
            let mut etcd = None;
            for (system, name, endpoint, pid) in [
                (System::Cfgd, "cfgd", &self.cfgd, self.pids.cfgd),
                (System::Etcd, "etcd", &self.etcd, self.pids.etcd),
            ] {
                if system == System::Etcd && n > self.etcd_fanout_max {
                    continue;
                }
                let r = fanout_once(system, endpoint, n, self.per_connection, writes, pid).await;
                let figures = Figures::of(report, &format!("fan-out {name} N={n}"), r);
                figures.push(report, "fanout", GROUP, n, name);
                if system == System::Etcd {
                    etcd = Some(figures);
                }
                self.wait_no_watchers(report, system, n).await;
            }
            if self.sdk_fanout.contains(&n) {
                let r = fanout_once(System::Sdk, &self.cfgd, n, 1, writes, self.pids.cfgd).await;
                let figures = Figures::of(report, &format!("fan-out SDK N={n}"), r);
                figures.push(report, "fanout_sdk", SDK_GROUP, n, "cfgd");
                if let Some(etcd) = etcd {
                    etcd.push(report, "fanout_sdk", SDK_GROUP, n, "etcd");
                }
                self.wait_no_watchers(report, System::Sdk, n).await;
            }
        }
    }

    /// Waits until the server counts no watcher left from the last
    /// measurement (a note when some are still counted after 10 s).
    async fn wait_no_watchers(&self, report: &mut Report, system: System, n: usize) {
        let left = match system {
            System::Cfgd | System::Sdk => {
                fanout::cfgd_wait_no_watchers(&self.cfgd, Duration::from_secs(10))
                    .await
                    .ok()
            }
            System::Etcd => {
                fanout::etcd_wait_no_watchers(&self.etcd, Duration::from_secs(10)).await
            }
        };
        if let Some(left @ 1..) = left {
            report.notes.push(format!(
                "{system:?} still counted {left} watchers 10 s after N={n} closed"
            ));
        }
    }
}

/// A fan-out measurement's figures for the report (NaN when it failed).
#[derive(Debug, Clone, Copy)]
struct Figures {
    p50: f64,
    p99: f64,
    open: f64,
    cpu: f64,
}

impl Figures {
    fn of(report: &mut Report, what: &str, r: anyhow::Result<Fanout>) -> Self {
        match r {
            Ok(mut f) => Self {
                p50: ms_of(f.last.quantile(0.5)),
                p99: ms_of(f.last.quantile(0.99)),
                open: f.open_ms,
                cpu: f.cpu_per_event_us,
            },
            Err(e) => {
                note(report, what, &e);
                Self {
                    p50: f64::NAN,
                    p99: f64::NAN,
                    open: f64::NAN,
                    cpu: f64::NAN,
                }
            }
        }
    }

    /// Rows `<id>.n<N>.{cpu,p50,p99,open}` of `group`, in `system`'s column.
    fn push(self, report: &mut Report, id: &str, group: &str, n: usize, system: &str) {
        let label = format!("N={n}");
        for (field, metric, unit, v) in [
            ("cpu", "server CPU per delivered event", "µs", self.cpu),
            ("p50", "p50", "ms", self.p50),
            ("p99", "p99", "ms", self.p99),
            ("open", "open all watchers", "ms", self.open),
        ] {
            report
                .row(&format!("{id}.n{n}.{field}"), group, &label, metric, unit)
                .push(system, v);
        }
    }
}

/// One fan-out measurement.
struct Fanout {
    /// Write → last watcher, per write.
    last: stats::Samples,
    /// Time to open every watcher.
    open_ms: f64,
    /// Server CPU over the writes, per watcher per write.
    cpu_per_event_us: f64,
}

async fn fanout_once(
    system: System,
    endpoint: &str,
    n: usize,
    per_connection: usize,
    writes: usize,
    pid: Option<u32>,
) -> anyhow::Result<Fanout> {
    let key = move |_: usize| match system {
        System::Cfgd | System::Sdk => crate::KEY.to_owned(),
        System::Etcd => crate::ETCD_KEY.to_owned(),
    };
    let mut w = Watchers::open(system, endpoint, n, per_connection, &key).await?;
    let open = stats::ms(w.open_time);
    let mut writer = Writer::connect(system, endpoint).await?;
    let r = w
        .measure(&mut writer, writes, Duration::from_millis(20), pid)
        .await;
    w.close().await;
    let (last, cpu) = r?;
    let events = (writes * n) as f64;
    Ok(Fanout {
        last,
        open_ms: open,
        cpu_per_event_us: cpu.map_or(f64::NAN, |c| stats::us(c) / events),
    })
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
    let (p50, p99, tput, cpu) = match r {
        Ok(mut r) => {
            if r.errors > 0 {
                report.notes.push(format!(
                    "{id} {case} {system}: {} errors, first: {}",
                    r.errors,
                    r.first_error.clone().unwrap_or_default()
                ));
            }
            let cpu = r.server_cpu_us();
            (
                r.latencies.p50_us(),
                r.latencies.p99_us(),
                r.throughput(),
                cpu,
            )
        }
        Err(e) => {
            note(report, &format!("{id} {case} {system}"), &e);
            (f64::NAN, f64::NAN, f64::NAN, f64::NAN)
        }
    };
    report
        .row(
            &format!("{id}.{case}.cpu"),
            group,
            label,
            "server CPU per request",
            "µs",
        )
        .push(system, cpu);
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
