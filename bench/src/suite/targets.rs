//! Issue 6's targets, and issue 13's stricter ones beside them, judged on the medians over runs (ratios on the
//! median of the run-by-run ratios).

use crate::report::{Report, Target};

fn ratio(report: &Report, id: &str, base: &str) -> Option<f64> {
    report.get(id)?.ratio(base)?.median
}

fn median(report: &Report, id: &str, system: &str) -> Option<f64> {
    report.get(id)?.median(system)
}

/// Adds every target with its status to `report`.
pub(super) fn judge(report: &mut Report, debounce_ms: f64) {
    let r = &*report;
    let mut t = vec![
        Target::judge(
            "read c=1 p50 ≤ 1.15× the floor",
            ratio(r, "read.c1.p50", "floor"),
            1.15,
            false,
            "× floor",
        ),
        Target::judge(
            "read c=1 p50 ≤ 1.10× the floor (issue 13)",
            ratio(r, "read.c1.p50", "floor"),
            1.10,
            false,
            "× floor",
        ),
        Target::judge(
            "read throughput (c=64, 1 connection) ≥ 2.5× etcd",
            ratio(r, "read.c64x1.throughput", "etcd"),
            2.5,
            true,
            "× etcd",
        ),
        Target::judge(
            "read throughput (c=64, 1 connection) ≥ 0.9× the floor",
            ratio(r, "read.c64x1.throughput", "floor"),
            0.9,
            true,
            "× floor",
        ),
        Target::judge(
            "read throughput with the console open ≥ 0.95× without (issue 14)",
            median(r, "console.ratio", "cfgd"),
            0.95,
            true,
            "×",
        ),
        Target::judge(
            "server CPU per read with the console open ≤ 1.05× without (issue 14)",
            median(r, "console.cpu_ratio", "cfgd"),
            1.05,
            false,
            "×",
        ),
        Target::judge(
            "durable write c=1 p50 ≤ etcd's",
            ratio(r, "write.c1.p50", "etcd"),
            1.0,
            false,
            "× etcd",
        ),
        Target::judge(
            "durable write c=1 p50 ≤ 0.9× etcd (issue 13)",
            ratio(r, "write.c1.p50", "etcd"),
            0.9,
            false,
            "× etcd",
        ),
        Target::judge(
            "durable write throughput c=64 ≥ 1.5× etcd",
            ratio(r, "write.c64.throughput", "etcd"),
            1.5,
            true,
            "× etcd",
        ),
        Target::judge(
            "fan-out: last of 100 watchers p99 ≤ 0.5× etcd",
            ratio(r, "fanout.n100.p99", "etcd"),
            0.5,
            false,
            "× etcd",
        ),
        Target::judge(
            "fan-out: last of 1,000 watchers p50 ≤ 0.5× etcd (issue 13)",
            ratio(r, "fanout.n1000.p50", "etcd"),
            0.5,
            false,
            "× etcd",
        ),
        Target::judge(
            "fan-out: last of 10,000 watchers p99 ≤ 40 ms (issue 13)",
            median(r, "fanout.n10000.p99", "cfgd"),
            40.0,
            false,
            " ms",
        ),
        Target::judge(
            "fan-out: last of 10,000 watchers p99 ≤ 0.5× etcd (issue 13)",
            ratio(r, "fanout.n10000.p99", "etcd"),
            0.5,
            false,
            "× etcd",
        ),
        Target::judge(
            "fan-out: server CPU per delivered event, N = 10,000 ≤ 3 µs (issue 13)",
            median(r, "fanout.n10000.cpu", "cfgd"),
            3.0,
            false,
            " µs",
        ),
        Target::judge(
            "fan-out: last of 10,000 watchers p99 ≤ 50 ms",
            median(r, "fanout.n10000.p99", "cfgd"),
            50.0,
            false,
            " ms",
        ),
        Target::judge(
            "fleet fan-out: last of 100 watchers over 3 daemons p99 ≤ 2× one daemon's",
            ratio(r, "fleet.n100.p99", "single"),
            2.0,
            false,
            "× single",
        ),
        Target::judge(
            "fleet fan-out: last of 1,000 watchers over 3 daemons p99 ≤ 2× one daemon's",
            ratio(r, "fleet.n1000.p99", "single"),
            2.0,
            false,
            "× single",
        ),
        Target::judge(
            &format!("hot reload median ≤ debounce ({debounce_ms} ms) + 5 ms"),
            median(r, "reload.p50", "cfgd"),
            debounce_ms + 5.0,
            false,
            " ms",
        ),
        Target::judge(
            "SDK read (get_i64, 1 thread) ≤ 50 ns",
            median(r, "sdk.get_i64_1t", "cfgd"),
            50.0,
            false,
            " ns",
        ),
        Target::judge(
            "SDK read (get_i64, 2 threads) ≤ 50 ns",
            median(r, "sdk.get_i64_2t", "cfgd"),
            50.0,
            false,
            " ns",
        ),
        Target::judge(
            "retry engine ≤ 5 µs per failed attempt (async run)",
            median(r, "retry.failed_attempt.async", "cfgd"),
            5.0,
            false,
            " µs",
        ),
        Target::judge(
            "50 ms retry delay overshoot median ≤ 1.5 ms (async run)",
            median(r, "retry.overshoot.run.p50", "cfgd"),
            1.5,
            false,
            " ms",
        ),
        Target::judge(
            "daemon RSS idle ≤ 10 MiB",
            median(r, "footprint.idle", "cfgd"),
            10.0,
            false,
            " MiB",
        ),
        Target::judge(
            "daemon RSS with 10,000 settings ≤ 20 MiB",
            median(r, "footprint.loaded", "cfgd"),
            20.0,
            false,
            " MiB",
        ),
        Target::judge(
            "daemon RSS per watcher ≤ 2 KiB",
            median(r, "footprint.per_watcher", "cfgd"),
            2.0,
            false,
            " KiB",
        ),
        Target::judge(
            "start-up → first answered request ≤ 50 ms",
            median(r, "startup", "cfgd"),
            50.0,
            false,
            " ms",
        ),
        Target::judge(
            "`cfg set` as a process ≤ 10 ms",
            median(r, "cli", "cfgd"),
            10.0,
            false,
            " ms",
        ),
    ];
    report.targets.append(&mut t);
}
