//! The real `cfgd` binary as a child process, for what only a process can
//! show: SIGKILL, SIGTERM, exit codes and what it prints.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;

/// A client of the daemon's gRPC service.
pub type Client = SettingsClient<tonic::transport::Channel>;

/// A running daemon.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub endpoint: String,
    pub stderr: PathBuf,
}

/// The command for the binary with a clean environment: no token, no
/// config or state dir from the caller's environment, a quiet log.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfgd"));
    cmd.env_remove("CFGD_TOKEN")
        .env_remove("CFGD_CONFIG_DIR")
        .env_remove("CFGD_STATE_DIR")
        .env_remove("CFGD_LISTEN")
        .env_remove("PREFECT_PROFILES_PATH")
        .env_remove("PREFECT_PROFILE")
        .env("CFGD_LOG", "warn");
    cmd
}

/// `--config-dir config --state-dir state` under `root`.
pub fn dirs_args(root: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "--config-dir".into(),
        root.join("config").into(),
        "--state-dir".into(),
        root.join("state").into(),
    ]
}

impl Proc {
    /// Starts the binary on 127.0.0.1:0 with `args` and waits for the line
    /// that says where it listens. Its stderr goes to a file beside `root`.
    pub fn start(root: &Path, args: &[std::ffi::OsString]) -> Proc {
        Self::start_with(root, args, |_| {})
    }

    /// [`Proc::start`], with `configure` applied to the command.
    pub fn start_with(
        root: &Path,
        args: &[std::ffi::OsString],
        configure: impl FnOnce(&mut Command),
    ) -> Proc {
        let stderr = root.join(format!("cfgd-{}.stderr", unique()));
        let mut cmd = command();
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("spawn cfgd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let Some(addr) = line.trim().strip_prefix("cfgd listening on ") else {
            let status = child.wait().expect("wait");
            panic!(
                "cfgd did not start ({status}): stdout {line:?}, stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        Proc {
            endpoint: format!("http://{addr}"),
            child,
            stderr,
        }
    }

    /// A connected client (the daemon already listens, so this is quick).
    pub async fn client(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match SettingsClient::connect(self.endpoint.clone()).await {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => {
                    panic!("cfgd at {} never answered: {e}", self.endpoint)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// What the daemon printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `args` until it exits (it must refuse to start):
/// its exit status and stderr.
pub fn run_to_exit(args: &[std::ffi::OsString]) -> (ExitStatus, String) {
    let out = command()
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run cfgd");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A one-assignment `Set` in the daemon's raw-string form.
pub fn set_request(name: &str, value: impl Into<String>) -> pb::SetRequest {
    pb::SetRequest {
        assignments: vec![pb::Assignment {
            name: name.to_owned(),
            value: Some(pb::assignment::Value::Raw(value.into())),
        }],
        expected_revision: None,
        ..Default::default()
    }
}

/// The current value of `name` as text (integers and delays as numbers).
pub async fn get(client: &mut Client, name: &str) -> String {
    let v = client
        .get(pb::GetRequest {
            name: name.to_owned(),
            reveal_secrets: false,
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner()
        .setting
        .and_then(|s| s.value)
        .and_then(|v| v.kind);
    match v {
        Some(pb::value::Kind::Integer(i)) => i.to_string(),
        Some(pb::value::Kind::Text(t)) => t,
        Some(pb::value::Kind::Delays(d)) => format!("{:?}", d.seconds),
        other => format!("{other:?}"),
    }
}

/// The daemon's status.
pub async fn status(client: &mut Client) -> pb::StatusResponse {
    client
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}
