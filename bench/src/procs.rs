//! The processes the benchmarks start themselves: a fresh `cfgd` or `etcd`
//! on loopback with its data in a temp dir, its readiness, its RSS, and its
//! end. A [`Proc`] kills its process when dropped, so nothing outlives the
//! load generator.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// How long a daemon may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A process started by the benchmarks.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its pid.
    pub pid: u32,
    /// When it was spawned.
    pub spawned: Instant,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Kept open: the daemon may still write to it.
    _stdout: Option<BufReader<ChildStdout>>,
    /// Its data, removed with it.
    _dir: tempfile::TempDir,
}

/// A port that was free a moment ago on 127.0.0.1.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Proc {
    /// Starts `bin` (the `cfgd` binary) on `127.0.0.1:0` with `config_dir`
    /// (or an empty one in the temp dir) and a fresh state dir, and waits
    /// until it prints its address. Logs go to `cfgd.log` in the temp dir.
    ///
    /// # Errors
    /// When it cannot be started or does not print its address in time.
    pub async fn cfgd(
        bin: &Path,
        config_dir: Option<&Path>,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("cfgd-bench-").tempdir()?;
        let config = match config_dir {
            Some(c) => c.to_owned(),
            None => {
                let c = dir.path().join("config");
                std::fs::create_dir(&c)?;
                c
            }
        };
        let log = std::fs::File::create(dir.path().join("cfgd.log"))?;
        let started = Instant::now();
        let mut child = Command::new(bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config-dir")
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(extra_args)
            .env_remove("CFGD_TOKEN")
            .env_remove("PREFECT_PROFILES_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("cfgd exited at once")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line))
            .await
            .context("cfgd did not print its address in time")??;
        let Some(addr) = line.trim().strip_prefix("cfgd listening on ") else {
            bail!(
                "cfgd printed {line:?} instead of its address (log: {})",
                dir.path().join("cfgd.log").display()
            );
        };
        let endpoint = format!("http://{addr}");
        Ok(Self {
            child,
            pid,
            spawned: started,
            endpoint,
            _stdout: Some(stdout),
            _dir: dir,
        })
    }

    /// Starts `bin` (the `etcd` binary) as a single member on free loopback
    /// ports with its data in a temp dir, and waits until it answers a
    /// `Range`; `Proc::spawned.elapsed()` right after is its start-up time.
    ///
    /// # Errors
    /// When it cannot be started or does not answer in time.
    pub async fn etcd(bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("etcd-bench-").tempdir()?;
        let client = format!("http://127.0.0.1:{}", free_port()?);
        let peer = format!("http://127.0.0.1:{}", free_port()?);
        let log = std::fs::File::create(dir.path().join("etcd.log"))?;
        let started = Instant::now();
        let child = Command::new(bin)
            .args(["--name", "bench", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bench={peer}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("etcd exited at once")?;
        let proc = Self {
            child,
            pid,
            spawned: started,
            endpoint: client,
            _stdout: None,
            _dir: dir,
        };
        wait_etcd(&proc.endpoint, started).await?;
        Ok(proc)
    }

    /// Resident set size, in KiB (`VmRSS` in `/proc/PID/status`).
    ///
    /// # Errors
    /// When the process is gone.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Polls `endpoint` with a `Range` until etcd answers.
async fn wait_etcd(endpoint: &str, since: Instant) -> anyhow::Result<()> {
    let deadline = since + READY_TIMEOUT;
    let client = crate::etcd_client(endpoint, Duration::from_millis(200))?;
    loop {
        if client.range(cfgd_etcd::Range::key("/")).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("etcd at {endpoint} did not answer within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Resident set size of `pid`, in KiB.
///
/// # Errors
/// When `/proc/PID/status` cannot be read or has no `VmRSS`.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS for pid {pid}"))
}

/// CPU time (user + system) `pid` has used so far, from `/proc/PID/stat`
/// (in clock ticks of 10 ms, Linux's `USER_HZ` on every architecture we
/// run on); `None` when it cannot be read.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 10))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Measures the CPU time a process uses between [`CpuMeter::start`] and
/// [`CpuMeter::stop`].
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    start: Option<Duration>,
}

impl CpuMeter {
    /// Starts measuring `pid` (measures nothing when `None`).
    pub fn start(pid: Option<u32>) -> Option<Self> {
        let pid = pid?;
        Some(Self {
            pid,
            start: cpu_time(pid),
        })
    }

    /// The CPU time used since the start.
    pub fn stop(self) -> Option<Duration> {
        Some(cpu_time(self.pid)?.saturating_sub(self.start?))
    }
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tcfgd\nVmPeak:\t  99 kB\nVmRSS:\t    8120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(8120));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_a_name_with_spaces() {
        let stat = "4242 (tokio rt) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 100";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert!(cpu_time(std::process::id()).is_some());
    }

    #[test]
    fn our_own_rss_is_readable() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
