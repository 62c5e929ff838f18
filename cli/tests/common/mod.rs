//! The harness: a real daemon (`cfgd::serve`) on `127.0.0.1:0`, in this
//! process, on its own runtime, with temp config and state dirs and an
//! injected environment; and the real `cfg` binary run against it.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cfgd_sdk::Client;
use tokio::sync::oneshot;

/// How long a test waits for something that is expected to happen; a bound
/// for a busy machine, not a timing assertion.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Builds a [`Daemon`].
#[derive(Debug, Default)]
pub(crate) struct Builder {
    env: Vec<(String, String)>,
    token: Option<String>,
    files: Vec<(String, String)>,
    profiles_path: Option<PathBuf>,
    store: cfgd::store::etcd::StoreConfig,
}

impl Builder {
    /// Keeps the profile layer in this store (a fleet's etcd store).
    pub(crate) fn store(mut self, store: cfgd::store::etcd::StoreConfig) -> Self {
        self.store = store;
        self
    }

    /// Adds a variable to the daemon's environment (layer 5).
    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Makes the daemon require this token.
    pub(crate) fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Uses this `profiles.toml` (e.g. one Prefect wrote) instead of one in
    /// the state dir.
    pub(crate) fn profiles_path(mut self, path: PathBuf) -> Self {
        self.profiles_path = Some(path);
        self
    }

    /// Writes a file into the config dir before the daemon starts.
    pub(crate) fn file(mut self, name: &str, text: &str) -> Self {
        self.files.push((name.to_owned(), text.to_owned()));
        self
    }

    /// Starts the daemon and waits until it answers.
    pub(crate) fn start(self) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("config")).expect("config dir");
        for (name, text) in &self.files {
            std::fs::write(dir.path().join("config").join(name), text).expect("config file");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut daemon = Daemon {
            rt,
            endpoint: String::new(),
            port: 0,
            dir,
            env: self.env,
            token: self.token,
            profiles_path: self.profiles_path,
            store: self.store,
            running: None,
        };
        daemon.serve("127.0.0.1:0");
        daemon
    }
}

/// A running daemon; stopped (gracefully) when dropped.
#[derive(Debug)]
pub(crate) struct Daemon {
    rt: tokio::runtime::Runtime,
    /// `http://127.0.0.1:PORT`.
    pub(crate) endpoint: String,
    /// Its port.
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    token: Option<String>,
    profiles_path: Option<PathBuf>,
    store: cfgd::store::etcd::StoreConfig,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), cfgd::DaemonError>>,
}

impl Daemon {
    /// A builder: empty environment, no token, no config files.
    pub(crate) fn builder() -> Builder {
        Builder::default()
    }

    /// A daemon with nothing configured.
    pub(crate) fn start() -> Self {
        Builder::default().start()
    }

    fn serve(&mut self, addr: &str) {
        let mut config = cfgd::Config::new(self.env.clone());
        config.config_dir = self.config_dir();
        config.state_dir = self.dir.path().join("state");
        config.token = self.token.clone();
        config.profiles_path = self.profiles_path.clone();
        config.debounce = Duration::from_millis(20);
        config.store = self.store.clone();
        let addr: cfgd::ListenAddr = addr.parse().expect("a loopback address");
        let listener = self
            .rt
            .block_on(cfgd::Listener::bind(&addr))
            .expect("bind a loopback port");
        let local = listener.local_addr();
        self.port = local
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        self.endpoint = format!("http://{local}");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = self.rt.spawn(cfgd::serve(config, listener, async {
            let _ = stopped.await;
        }));
        self.running = Some(Running { stop, task });
        // The listener is bound, so this answers as soon as the daemon serves.
        self.block_on(async { self.client().await.status().await })
            .expect("the daemon answers");
    }

    /// Stops the daemon gracefully; its dirs stay for [`Daemon::restart`].
    pub(crate) fn stop(&mut self) {
        if let Some(Running { stop, task }) = self.running.take() {
            let _ = stop.send(());
            self.rt
                .block_on(async { tokio::time::timeout(PATIENCE, task).await })
                .expect("the daemon stops in time")
                .expect("the daemon task")
                .expect("the daemon stopped cleanly");
        }
    }

    /// Starts the daemon again on the same port and dirs.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let addr = format!("127.0.0.1:{}", self.port);
        self.serve(&addr);
    }

    /// The config dir.
    pub(crate) fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Runs `f` on the daemon's runtime.
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// An SDK client with the daemon's token, if any.
    pub(crate) async fn client(&self) -> Client {
        Client::connect(&self.endpoint, self.token.as_deref())
            .await
            .expect("connect to the test daemon")
    }

    /// The current revision, through the SDK.
    pub(crate) fn revision(&self) -> u64 {
        self.block_on(async { self.client().await.status().await })
            .expect("status")
            .revision
    }

    /// The active profile's `(name, value)` entries, through the SDK,
    /// secrets in clear.
    pub(crate) fn profile(&self) -> Vec<(String, String)> {
        let p = self
            .block_on(async { self.client().await.inspect_profile(None, true).await })
            .expect("inspect");
        p.entries
            .into_iter()
            .map(|(n, v, _)| (n, v.display(true)))
            .collect()
    }

    /// A setting's effective value and source, through the SDK.
    pub(crate) fn effective(&self, name: &str) -> (String, String) {
        let s = self
            .block_on(async { self.client().await.get(name, true).await })
            .expect("get");
        (s.value.display(true), s.source.to_string())
    }

    /// `cfg --endpoint <this daemon>`, with a clean environment.
    pub(crate) fn command(&self) -> Command {
        cfg_at(&self.endpoint)
    }

    /// Runs `cfg ARGS` against this daemon.
    pub(crate) fn cfg(&self, args: &[&str]) -> Run {
        run(self.command().args(args))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop();
        }
    }
}

/// `cfg --endpoint ENDPOINT`, without the caller's `CFGD_*` variables, with
/// `NO_COLOR` and a stdin that is not a terminal.
pub(crate) fn cfg_at(endpoint: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfg"));
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
pub(crate) struct Run {
    /// The exit code.
    pub(crate) code: i32,
    /// Its stdout.
    pub(crate) stdout: String,
    /// Its stderr.
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "cfg failed: {self:#?}");
        &self.stdout
    }

    /// Asserts exit 1 with nothing on stdout, and returns stderr.
    #[track_caller]
    pub(crate) fn fails(&self) -> &str {
        assert_eq!(self.code, 1, "cfg did not exit 1: {self:#?}");
        assert_eq!(self.stdout, "", "a failure prints nothing on stdout");
        &self.stderr
    }

    /// Stdout as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs a prepared `cfg` command to completion.
pub(crate) fn run(cmd: &mut Command) -> Run {
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
pub(crate) struct Spawned {
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
    pub(crate) fn new(cmd: &mut Command) -> Self {
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
    pub(crate) fn stdout_until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        Self::wait_for(&self.stdout, "matching stdout", pred)
    }

    /// Stderr lines up to and including the first that satisfies `pred`.
    pub(crate) fn stderr_until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
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
pub(crate) fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}
