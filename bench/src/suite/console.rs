//! The console's cost on the gRPC read path: read throughput at c=64 on one
//! connection, quiet and with the console open (an event stream
//! connected, `/metrics` scraped every second), in the same run, and the
//! daemon's CPU per read (steadier than throughput on a shared machine).
//! Quiet and open phases alternate, so drift does not pass for a cost.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Suite, note};
use crate::console::Console;
use crate::report::Report;
use crate::unary::{self, Call};

const GROUP: &str = "Console and /metrics: cost on the read path (c=64, 1 connection)";

/// The figures of one run.
struct Figures {
    quiet: Phase,
    open: Phase,
    scrapes: u64,
}

/// Read throughput and the daemon's CPU per read, averaged over phases.
#[derive(Default)]
struct Phase {
    throughput: f64,
    cpu_us: f64,
    n: f64,
}

impl Phase {
    fn add(&mut self, r: &unary::LoadResult) {
        self.throughput += r.throughput();
        self.cpu_us += r.server_cpu_us();
        self.n += 1.0;
    }

    fn throughput(&self) -> f64 {
        self.throughput / self.n
    }

    fn cpu_us(&self) -> f64 {
        self.cpu_us / self.n
    }
}

impl Suite {
    pub(super) async fn console(&self, report: &mut Report) {
        let Some(addr) = self.console.as_deref() else {
            report
                .notes
                .push("console: no --console address, not measured".into());
            return;
        };
        let f = match self.console_once(addr).await {
            Ok(f) => f,
            Err(e) => return note(report, "console", &e),
        };
        let open_case = "console open, /metrics every 1 s";
        for (id, case, metric, unit, value) in [
            (
                "console.quiet.throughput",
                "quiet",
                "throughput",
                "req/s",
                f.quiet.throughput(),
            ),
            (
                "console.open.throughput",
                open_case,
                "throughput",
                "req/s",
                f.open.throughput(),
            ),
            (
                "console.ratio",
                "open ÷ quiet (within the run)",
                "throughput ratio",
                "×",
                f.open.throughput() / f.quiet.throughput(),
            ),
            (
                "console.quiet.cpu",
                "quiet",
                "server CPU per request",
                "µs",
                f.quiet.cpu_us(),
            ),
            (
                "console.open.cpu",
                open_case,
                "server CPU per request",
                "µs",
                f.open.cpu_us(),
            ),
            (
                "console.cpu_ratio",
                "open ÷ quiet (within the run)",
                "server CPU per request ratio",
                "×",
                f.open.cpu_us() / f.quiet.cpu_us(),
            ),
            (
                "console.scrapes",
                open_case,
                "scrapes answered",
                "count",
                f.scrapes as f64,
            ),
        ] {
            report
                .row(id, GROUP, case, metric, unit)
                .push("cfgd", value);
        }
    }

    /// Quiet and open phases alternated (quiet, open, quiet, open, quiet),
    /// so drift on a shared machine falls on both sides.
    async fn console_once(&self, addr: &str) -> anyhow::Result<Figures> {
        let addr: SocketAddr = addr
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()?;
        let read = || unary::run(&self.cfgd, Call::CfgdGet, self.load(64, 1, self.pids.cfgd));
        let mut f = Figures {
            quiet: Phase::default(),
            open: Phase::default(),
            scrapes: 0,
        };
        f.quiet.add(&read().await?);
        for _ in 0..2 {
            let console = Console::open(addr, Duration::from_secs(1)).await?;
            let open = read().await;
            f.scrapes += console.close().await?.scrapes;
            f.open.add(&open?);
            f.quiet.add(&read().await?);
        }
        Ok(f)
    }
}
