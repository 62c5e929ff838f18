//! The real `cfgd` binary at start: it prints `cfgd listening on …` only
//! once it really serves, starts from any working directory on its embedded
//! defaults, and refuses to start rather than run unprotected.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary with a clean environment (none of the test process's own
/// `CFGD_*` settings), run in `cwd`.
fn cfgd(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfgd"));
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("CFGD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A daemon that started: its endpoint (from the line it printed), and its
/// stdout, kept open: the daemon prints more lines (where its console is),
/// and a closed pipe would end it.
struct Running {
    child: Child,
    endpoint: String,
    _stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Running {
    async fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn cfgd");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("cfgd prints a line within 30 s")
            .unwrap()
            .unwrap_or_default();
        let addr = line
            .strip_prefix("cfgd listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            endpoint: format!("http://{addr}"),
            _stdout: lines,
        }
    }

    /// A client; the daemon serves when it printed its line, so the first
    /// connection attempt must succeed.
    async fn client(&self) -> SettingsClient<tonic::transport::Channel> {
        SettingsClient::connect(self.endpoint.clone())
            .await
            .expect("cfgd serves once it says it listens")
    }

    /// SIGTERM, then its stderr.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("cfgd stops within 30 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        err
    }
}

/// Runs a daemon that must refuse to start: it exits with failure, prints
/// nothing on stdout, and its stderr is returned.
async fn refused(mut cmd: Command) -> String {
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("cfgd exits within 30 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "it started: {stdout}{stderr}");
    assert_eq!(stdout, "", "nothing may claim it listens; stderr: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_state_dir_or_a_missing_config_dir_never_prints_listening() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let on = |config: &str, state: &str| {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--config-dir",
            config,
            "--state-dir",
            state,
        ];
        cfgd(dir.path(), &args)
    };
    let first = Running::start(on("config", "state")).await;
    let err = refused(on("config", "state")).await;
    assert!(
        err.contains("cfgd: state dir state is in use by another cfgd"),
        "{err}"
    );
    let err = refused(on("nowhere", "other")).await;
    assert!(
        err.contains("cfgd: config dir nowhere does not exist or is not a directory"),
        "an explicitly given dir must exist: {err}"
    );
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_starts_from_any_directory_on_its_embedded_defaults() {
    let cwd = tempfile::tempdir().unwrap();
    let daemon = Running::start(cfgd(cwd.path(), &["--listen", "127.0.0.1:0"])).await;
    let mut client = daemon.client().await;
    let got = client
        .get(pb::GetRequest {
            name: "PREFECT_TASK_DEFAULT_RETRIES".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let setting = got.setting.unwrap();
    assert_eq!(setting.name, "PREFECT_TASKS_DEFAULT_RETRIES");
    assert_eq!(
        setting.value.unwrap().kind,
        Some(pb::value::Kind::Integer(0)),
        "the embedded default"
    );
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        status
            .files
            .iter()
            .all(|f| f.kind == pb::FileKind::Profiles as i32),
        "no config files: {:?}",
        status.files
    );
    assert!(cwd.path().join(".cfgd").is_dir(), "the default state dir");

    // The default dir, created later, is read.
    let mut watch = client
        .watch(pb::WatchRequest {
            after_revision: Some(got.revision),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    std::fs::create_dir(cwd.path().join("config")).unwrap();
    std::fs::write(
        cwd.path().join("config/prefect.toml"),
        "[tasks]\ndefault_retries = 4\n",
    )
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the new dir's file arrives")
        .unwrap()
        .unwrap();
    let Some(pb::watch_response::Event::Change(change)) = event.event else {
        panic!("{event:?}")
    };
    assert_eq!(change.changes[0].name, "PREFECT_TASKS_DEFAULT_RETRIES");
    drop(watch);
    let log = daemon.stop().await;
    assert_eq!(
        log.matches("serving the embedded catalogue with no value files")
            .count(),
        1,
        "said once: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = cfgd(dir.path(), &["--listen", "127.0.0.1:0"]);
    cmd.env("CFGD_TOKEN", "");
    let err = refused(cmd).await;
    assert!(
        err.contains(
            "cfgd: CFGD_TOKEN is empty (or only whitespace), which would turn authentication off"
        ),
        "{err}"
    );
    std::fs::write(dir.path().join("token"), " \n\t\n").unwrap();
    let err = refused(cfgd(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--token-file", "token"],
    ))
    .await;
    assert!(
        err.contains("cfgd: the token file token is empty (or only whitespace)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_it_needs_tls_and_a_token_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before binding, so no test ever listens beyond loopback.
    let err = refused(cfgd(dir.path(), &["--listen", "0.0.0.0:0"])).await;
    assert!(
        err.contains("cfgd: refusing to listen on 0.0.0.0:0 without TLS (--tls-cert and --tls-key) and a token (--token-file or CFGD_TOKEN)"),
        "{err}"
    );
    assert!(err.contains("--allow-insecure-listen"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_path_holding_a_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cfgd.sock");
    std::fs::write(&path, "not a socket").unwrap();
    let listen = format!("unix:{}", path.display());
    let err = refused(cfgd(dir.path(), &["--listen", &listen])).await;
    assert!(
        err.contains("exists and is a regular file, not a socket; refusing to replace it"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}

/// Nobody reading its stdout (a supervisor that closed the pipe) is no
/// reason to stop: the daemon serves, and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_does_not_stop_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = cfgd(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
    );
    let mut child = cmd.spawn().expect("spawn cfgd");
    // Closed before the daemon prints anything.
    drop(child.stdout.take());
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let listen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = err.next_line().await.unwrap() {
            if let Some(rest) = line.split("cfgd serving listen=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("cfgd ended before serving");
    })
    .await
    .expect("cfgd serves within 30 s");
    let mut client = SettingsClient::connect(format!("http://{listen}"))
        .await
        .expect("it still serves after failing to print its lines");
    client
        .status(pb::StatusRequest::default())
        .await
        .expect("status");
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("cfgd stops within 30 s of SIGTERM")
        .unwrap();
    let mut rest = Vec::new();
    while let Ok(Some(line)) = err.next_line().await {
        rest.push(line);
    }
    assert!(status.success(), "{status}: {rest:#?}");
}
