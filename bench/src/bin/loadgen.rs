//! `loadgen`: the load generator. `bench/run.sh` drives it:
//! `loadgen echo-server` is the floor server, `loadgen free-port` finds
//! ports for etcd, and `loadgen all` runs every measurement and writes the
//! report.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The cfgd load generator: cfgd side by side with etcd and a bare gRPC
/// echo server, on loopback only.
///
/// Example: loadgen all --cfgd http://127.0.0.1:7979 --etcd http://127.0.0.1:2379
///   --echo http://127.0.0.1:7980 --cfgd-bin target/release/cfgd --runs 3
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the echo service (the floor) until SIGINT or SIGTERM.
    EchoServer {
        /// Loopback address; port 0 picks a free one (printed as
        /// `echo listening on ADDR`).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Prints a port free on 127.0.0.1 a moment ago.
    FreePort,
    /// Runs the measurements and writes the Markdown table and the JSON.
    All(Box<AllArgs>),
}

#[derive(Debug, clap::Args)]
struct AllArgs {
    /// The cfgd under test.
    #[arg(long)]
    cfgd: String,
    /// The cfgd's console (`http://127.0.0.1:PORT`), for the console section.
    #[arg(long)]
    console: Option<String>,
    /// The etcd baseline.
    #[arg(long)]
    etcd: String,
    /// The echo server (the floor).
    #[arg(long)]
    echo: String,
    /// cfgd's pid (for its CPU per request).
    #[arg(long)]
    cfgd_pid: Option<u32>,
    /// etcd's pid.
    #[arg(long)]
    etcd_pid: Option<u32>,
    /// The echo server's pid.
    #[arg(long)]
    echo_pid: Option<u32>,
    /// The cfgd binary (for the daemons started per measurement).
    #[arg(long)]
    cfgd_bin: PathBuf,
    /// The etcd binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,
    /// The etcdctl binary (skipped when missing).
    #[arg(long, default_value = "/usr/bin/etcdctl")]
    etcdctl_bin: PathBuf,
    /// The cfg binary (skipped when missing).
    #[arg(long)]
    cfg_bin: Option<PathBuf>,
    /// Runs of each measurement.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of each measured load phase.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Watcher counts for the fan-out.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100, 1000, 10000])]
    fanout: Vec<usize>,
    /// Largest watcher count measured on etcd.
    #[arg(long, default_value_t = 10000)]
    etcd_fanout_max: usize,
    /// Watcher counts (among --fanout) also measured through the SDK's
    /// `Settings`, one per watcher.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100, 1000])]
    sdk_fanout: Vec<usize>,
    /// Watcher counts for the fleet's fan-out (3 daemons on a 3-member etcd).
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000])]
    fleet_fanout: Vec<usize>,
    /// Watch streams per connection.
    #[arg(long, default_value_t = 100)]
    per_connection: usize,
    /// cfgd's debounce for the hot-reload measurement, in ms.
    #[arg(long, default_value_t = 50)]
    debounce_ms: u64,
    /// Settings, keys and watchers for the footprint.
    #[arg(long, default_value_t = 10000)]
    footprint_n: usize,
    /// Directories of the criterion runs, comma-separated.
    #[arg(long, value_delimiter = ',')]
    criterion_runs: Vec<PathBuf>,
    /// Only these sections: read, console, write, fanout, fleet, reload,
    /// footprint, cli, sdk, retry.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the Markdown table.
    #[arg(long, default_value = "bench/results/latest.md")]
    markdown: PathBuf,
    /// Where to write the JSON.
    #[arg(long, default_value = "bench/results/latest.json")]
    json: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::EchoServer { listen } => {
            anyhow::ensure!(
                listen.ip().is_loopback(),
                "the echo server listens on loopback only"
            );
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("echo listening on {}", listener.local_addr()?);
            cfgd_bench::echo::serve(listener, shutdown()).await?;
        }
        Command::FreePort => println!("{}", cfgd_bench::procs::free_port()?),
        Command::All(a) => all(*a).await?,
    }
    Ok(())
}

async fn all(a: AllArgs) -> anyhow::Result<()> {
    let suite = cfgd_bench::suite::Suite {
        cfgd: a.cfgd,
        console: a.console,
        etcd: a.etcd,
        echo: a.echo,
        pids: cfgd_bench::suite::Pids {
            cfgd: a.cfgd_pid,
            etcd: a.etcd_pid,
            echo: a.echo_pid,
        },
        cfgd_bin: a.cfgd_bin,
        etcd_bin: a.etcd_bin,
        etcdctl_bin: a.etcdctl_bin.exists().then_some(a.etcdctl_bin),
        cfg_bin: a.cfg_bin.filter(|p| p.exists()),
        runs: a.runs.max(1),
        seconds: a.seconds,
        fanout: a.fanout,
        etcd_fanout_max: a.etcd_fanout_max,
        sdk_fanout: a.sdk_fanout,
        fleet_fanout: a.fleet_fanout,
        per_connection: a.per_connection,
        debounce_ms: a.debounce_ms,
        footprint_n: a.footprint_n.max(1),
        criterion_runs: a.criterion_runs,
        only: a.only,
    };
    let mut report = cfgd_bench::report::Report::default();
    suite.run(&mut report).await;
    let md = report.to_markdown();
    for path in [&a.markdown, &a.json] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&a.markdown, &md)
        .with_context(|| format!("cannot write {}", a.markdown.display()))?;
    let json = serde_json::to_string_pretty(&report.to_json())?;
    std::fs::write(&a.json, json + "\n")
        .with_context(|| format!("cannot write {}", a.json.display()))?;
    println!("{md}");
    Ok(())
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
