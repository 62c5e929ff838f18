//! The real `cfg` binary, run against a daemon: a clean environment,
//! what a run printed and how it exited, and a spawned `cfg` (such as
//! `cfg watch`) read line by line. The binary is the one cargo built for
//! the running test ([`crate::proc::binary`]): the `cfgd-cli` package's
//! tests have it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::proc::binary;

/// How long a test waits for something that is expected to happen; a bound
/// for a busy machine, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// `cfg --endpoint ENDPOINT`, without the caller's `CFGD_*` variables, with
/// `NO_COLOR` and a stdin that is not a terminal.
pub fn cfg_at(endpoint: &str) -> Command {
    let mut c = Command::new(binary("cfg"));
    c.env_remove("CFGD_ENDPOINT")
        .env_remove("CFGD_TOKEN")
        .env_remove("CFGD_TOKEN_FILE")
        .env_remove("PREFECT_PROFILE")
        .env_remove("CFGD_CA_CERT")
        .env_remove("CFGD_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .args(["--endpoint", endpoint]);
    c
}

/// What a `cfg` run did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Run {
    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "cfg failed: {self:#?}");
        &self.stdout
    }

    /// Asserts exit 1 with nothing on stdout, and returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert_eq!(self.code, 1, "cfg did not exit 1: {self:#?}");
        assert_eq!(self.stdout, "", "a failure prints nothing on stdout");
        &self.stderr
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs a prepared `cfg` command to completion.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run cfg");
    Run {
        code: out.status.code().expect("cfg exited (not by a signal)"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// A spawned `cfg` (such as `cfg watch`) whose output is read line by line;
/// killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

fn lines_of(read: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    // Ends when the child closes the pipe (it exits or is killed).
    std::thread::spawn(move || {
        for line in BufReader::new(read).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Spawned {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn new(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cfg");
        let stdout = lines_of(child.stdout.take().expect("piped"));
        let stderr = lines_of(child.stderr.take().expect("piped"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn wait_for(
        rx: &mpsc::Receiver<String>,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = pred(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(e) => panic!("no {what} line ({e:?}); saw {seen:#?}"),
            }
        }
    }

    /// Stdout lines up to and including the first that satisfies `pred`.
    pub fn stdout_until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        Self::wait_for(&self.stdout, "matching stdout", pred)
    }

    /// Stderr lines up to and including the first that satisfies `pred`.
    pub fn stderr_until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        Self::wait_for(&self.stderr, "matching stderr", pred)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An endpoint nothing listens on: a port bound and released.
pub fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}
