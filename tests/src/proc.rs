//! The real `cfgd` binary as a child process, for what only a process can
//! show: SIGKILL, SIGTERM, exit codes, what it prints, and a restart on the
//! same port and state dir.
//!
//! The binary is the one cargo built for the test that runs (see
//! [`binary`]); only the `cfgd` package's own tests have it built.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;

/// A client of the daemon's gRPC service.
pub type Client = SettingsClient<tonic::transport::Channel>;

/// The path of the workspace binary `name`, as cargo built it for the
/// running test: beside the `deps/` dir the test binary runs from (the
/// layout `CARGO_BIN_EXE_<name>` points into).
///
/// # Panics
/// When it is not there: cargo builds a package's binaries only for that
/// package's own integration tests.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary runs from <target>/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} does not exist: only the tests of the package that has the `{name}` binary get it built",
        path.display()
    );
    path
}

/// A running daemon; SIGKILLed when dropped.
#[derive(Debug)]
pub struct Proc {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The file its stderr goes to.
    pub stderr: PathBuf,
    /// The address it listens on (`127.0.0.1:PORT`).
    pub listen: String,
    stdout: BufReader<ChildStdout>,
    root: PathBuf,
    args: Vec<OsString>,
}

/// The command for the binary with a clean environment: no token, no
/// config or state dir from the caller's environment, no console, a quiet
/// log.
pub fn command() -> Command {
    let mut cmd = Command::new(binary("cfgd"));
    cmd.env_remove("CFGD_TOKEN")
        .env_remove("CFGD_CONFIG_DIR")
        .env_remove("CFGD_STATE_DIR")
        .env_remove("CFGD_LISTEN")
        .env_remove("PREFECT_PROFILES_PATH")
        .env_remove("PREFECT_PROFILE")
        // No console: these tests start many daemons; the console's own
        // tests ask for one on a free port.
        .env("CFGD_HTTP", "off")
        .env("CFGD_LOG", "warn");
    cmd
}

/// `--config-dir config --state-dir state` under `root`.
pub fn dirs_args(root: &Path) -> Vec<OsString> {
    vec![
        "--config-dir".into(),
        root.join("config").into(),
        "--state-dir".into(),
        root.join("state").into(),
    ]
}

impl Proc {
    /// Starts the binary on 127.0.0.1:0 with `args` and waits for the line
    /// that says where it listens (printed only once it serves). Its stderr
    /// goes to a file in `root`.
    pub fn start(root: &Path, args: &[OsString]) -> Proc {
        Self::start_with(root, args, |_| {})
    }

    /// [`Proc::start`], with `configure` applied to the command.
    pub fn start_with(
        root: &Path,
        args: &[OsString],
        configure: impl FnOnce(&mut Command),
    ) -> Proc {
        Self::start_at(root, args, "127.0.0.1:0", configure)
    }

    /// [`Proc::start_with`], listening on `listen` (to start again where
    /// clients expect it).
    pub fn start_at(
        root: &Path,
        args: &[OsString],
        listen: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Proc {
        let stderr = root.join(format!("cfgd-{}.stderr", unique()));
        let mut cmd = command();
        cmd.args(["--listen", listen])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("spawn cfgd");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut proc = Proc {
            endpoint: String::new(),
            listen: String::new(),
            child,
            stderr,
            stdout,
            root: root.to_owned(),
            args: args.to_vec(),
        };
        proc.listen = proc.line("cfgd listening on ");
        proc.endpoint = format!("http://{}", proc.listen);
        proc
    }

    /// The rest of the next line the daemon prints on stdout, which must
    /// start with `prefix` (it prints each line once what it says holds).
    ///
    /// # Panics
    /// On another line or none (the daemon exited), with its stderr.
    pub fn line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read a line of cfgd's stdout");
        match line.trim().strip_prefix(prefix) {
            Some(rest) => rest.to_owned(),
            None => {
                let status = if line.is_empty() {
                    self.child.wait().map(|s| s.to_string()).unwrap_or_default()
                } else {
                    "running".to_owned()
                };
                panic!(
                    "cfgd printed {line:?}, not {prefix:?} ({status}); its stderr:\n{}",
                    self.stderr()
                )
            }
        }
    }

    /// A connected client. The daemon printed that it listens only once it
    /// serves, so one attempt is enough.
    pub async fn client(&self) -> Client {
        SettingsClient::connect(self.endpoint.clone())
            .await
            .unwrap_or_else(|e| panic!("cfgd at {} does not answer: {e}", self.endpoint))
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// SIGKILL, then the binary again with the same arguments on the same
    /// port and dirs (so clients that knew its address find it again).
    pub fn kill_and_restart(mut self) -> Proc {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
        Self::start_at(&self.root, &self.args, &self.listen, |_| {})
    }

    /// SIGTERM, and wait for the process to exit: its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        self.child.wait().expect("wait for cfgd")
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
pub fn run_to_exit(args: &[OsString]) -> (ExitStatus, String) {
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
