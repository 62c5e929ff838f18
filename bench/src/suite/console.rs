//! The console's cost on the gRPC read path: read throughput at c=64 on one
//! connection, quiet and then with the console open (an event stream
//! connected, `/metrics` scraped every second), in the same run. Quiet is
//! measured before and after the open phase and averaged, so a machine
//! that drifts during the run does not pass for a cost.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Suite, note};
use crate::console::Console;
use crate::report::Report;
use crate::unary::{self, Call};

const GROUP: &str = "Console and /metrics: cost on the read path (c=64, 1 connection)";

impl Suite {
    pub(super) async fn console(&self, report: &mut Report) {
        let Some(addr) = self.console.as_deref() else {
            report
                .notes
                .push("console: no --console address, not measured".into());
            return;
        };
        match self.console_once(addr).await {
            Ok((quiet, open, scrapes)) => {
                report
                    .row(
                        "console.quiet.throughput",
                        GROUP,
                        "quiet",
                        "throughput",
                        "req/s",
                    )
                    .push("cfgd", quiet);
                report
                    .row(
                        "console.open.throughput",
                        GROUP,
                        "console open, /metrics every 1 s",
                        "throughput",
                        "req/s",
                    )
                    .push("cfgd", open);
                report
                    .row(
                        "console.ratio",
                        GROUP,
                        "open ÷ quiet (within the run)",
                        "throughput ratio",
                        "×",
                    )
                    .push("cfgd", open / quiet);
                report
                    .row(
                        "console.scrapes",
                        GROUP,
                        "console open",
                        "scrapes answered",
                        "",
                    )
                    .push("cfgd", scrapes as f64);
            }
            Err(e) => note(report, "console", &e),
        }
    }

    /// Quiet (the mean of before and after), open, and the scrapes made.
    async fn console_once(&self, addr: &str) -> anyhow::Result<(f64, f64, u64)> {
        let addr: SocketAddr = addr
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()?;
        let load = || self.load(64, 1, self.pids.cfgd);
        let read = || unary::run(&self.cfgd, Call::CfgdGet, load());
        let before = read().await?.throughput();
        let console = Console::open(addr, Duration::from_secs(1)).await?;
        let open = read().await;
        let seen = console.close().await?;
        let open = open?.throughput();
        let after = read().await?.throughput();
        Ok(((before + after) / 2.0, open, seen.scrapes))
    }
}
