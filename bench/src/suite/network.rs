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
        for &n in &self.fanout {
            let writes = match n {
                0..=100 => 40,
                101..=1000 => 30,
                _ => 15,
            };
            for (system, name, endpoint, pid) in [
                (System::Cfgd, "cfgd", &self.cfgd, self.pids.cfgd),
                (System::Etcd, "etcd", &self.etcd, self.pids.etcd),
            ] {
                if system == System::Etcd && n > self.etcd_fanout_max {
                    continue;
                }
                let r = fanout_once(system, endpoint, n, self.per_connection, writes, pid).await;
                let group = "Change fan-out: write → last of N watchers";
                let label = format!("N={n}");
                let (p50, p99, open, cpu) = match r {
                    Ok(mut f) => (
                        ms_of(f.last.quantile(0.5)),
                        ms_of(f.last.quantile(0.99)),
                        f.open_ms,
                        f.cpu_per_event_us,
                    ),
                    Err(e) => {
                        note(report, &format!("fan-out {name} N={n}"), &e);
                        (f64::NAN, f64::NAN, f64::NAN, f64::NAN)
                    }
                };
                report
                    .row(
                        &format!("fanout.n{n}.cpu"),
                        group,
                        &label,
                        "server CPU per delivered event",
                        "µs",
                    )
                    .push(name, cpu);
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
                    let left =
                        fanout::etcd_wait_no_watchers(&self.etcd, Duration::from_secs(10)).await;
                    if let Some(left @ 1..) = left {
                        report.notes.push(format!(
                            "etcd still counted {left} watchers 10 s after N={n} closed"
                        ));
                    }
                }
            }
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
        System::Cfgd => crate::KEY.to_owned(),
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
