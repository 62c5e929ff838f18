//! The fleet's fan-out (issue 12): a set on one of three daemons sharing a
//! real 3-member etcd cluster → the last of N watchers spread over the
//! three, beside one daemon with the file store (the same N watchers on it)
//! and beside etcd's own watches (N watchers spread over the three members,
//! a put on one), all in the same run. The cluster and the daemons are
//! started here, fresh, and stopped after.
//!
//! In the report the fleet is the `cfgd` column and the single daemon the
//! `single` one, so `cfgd/single` is the cost of sharing through etcd
//! (issue 12's target: p99 within 2×).

use std::time::Duration;

use super::{Suite, ms_of, note};
use crate::fanout::{System, Watchers, Writer};
use crate::procs::Proc;
use crate::report::Report;
use crate::stats;

const GROUP: &str = "Fleet fan-out: set on one of 3 daemons (etcd store) → last of N watchers spread over the 3 (cfgd), one daemon with the file store (single), etcd watches over its 3 members (etcd)";

impl Suite {
    pub(super) async fn fleet(&self, report: &mut Report) {
        let cluster = match cfgd_etcd::testing::Cluster::start().await {
            Ok(c) => c,
            Err(e) => return note(report, "fleet: 3-member etcd", &anyhow::Error::from(e)),
        };
        let members: Vec<String> = cluster.endpoints();
        let store = format!(
            "etcd://{}",
            members
                .iter()
                .map(|m| m.trim_start_matches("http://"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut daemons = Vec::new();
        for i in 0..3 {
            let host = format!("bench-{i}");
            match Proc::cfgd(
                &self.cfgd_bin,
                None,
                &["--store", &store, "--host-id", &host],
            )
            .await
            {
                Ok(d) => daemons.push(d),
                Err(e) => return note(report, "fleet: start a daemon on etcd", &e),
            }
        }
        let single = match Proc::cfgd(&self.cfgd_bin, None, &[]).await {
            Ok(d) => d,
            Err(e) => return note(report, "fleet: start a single daemon", &e),
        };
        let fleet: Vec<&str> = daemons.iter().map(|d| d.endpoint.as_str()).collect();
        let etcd: Vec<&str> = members.iter().map(String::as_str).collect();
        for &n in &self.fleet_fanout {
            let writes = if n <= 100 { 40 } else { 30 };
            for (name, system, endpoints) in [
                ("cfgd", System::Cfgd, fleet.clone()),
                ("single", System::Cfgd, vec![single.endpoint.as_str()]),
                ("etcd", System::Etcd, etcd.clone()),
            ] {
                let r = once(system, &endpoints, n, self.per_connection, writes).await;
                let (p50, p99) = match r {
                    Ok(mut last) => (ms_of(last.quantile(0.5)), ms_of(last.quantile(0.99))),
                    Err(e) => {
                        note(report, &format!("fleet fan-out {name} N={n}"), &e);
                        (f64::NAN, f64::NAN)
                    }
                };
                let label = format!("N={n}");
                report
                    .row(&format!("fleet.n{n}.p50"), GROUP, &label, "p50", "ms")
                    .push(name, p50);
                report
                    .row(&format!("fleet.n{n}.p99"), GROUP, &label, "p99", "ms")
                    .push(name, p99);
            }
        }
        for d in daemons {
            d.stop().await;
        }
        single.stop().await;
        drop(cluster);
    }
}

/// One measurement: `n` watchers over `endpoints`, `writes` writes through
/// the first endpoint; write → last watcher for each.
async fn once(
    system: System,
    endpoints: &[&str],
    n: usize,
    per_connection: usize,
    writes: usize,
) -> anyhow::Result<stats::Samples> {
    let key = move |_: usize| match system {
        System::Cfgd | System::Sdk => crate::KEY.to_owned(),
        System::Etcd => crate::ETCD_KEY.to_owned(),
    };
    let mut w = Watchers::open_spread(system, endpoints, n, per_connection, &key).await?;
    let mut writer = Writer::connect(system, endpoints[0]).await?;
    let r = w
        .measure(&mut writer, writes, Duration::from_millis(20), None)
        .await;
    w.close().await;
    Ok(r?.0)
}
