//! A real `cfgd` process killed with SIGKILL in the middle of a stream of
//! acknowledged sets: after a restart every acknowledged set is there and
//! every file parses.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;

/// Starts the real binary on 127.0.0.1:0 (no token, quiet log, stderr
/// dropped unless `configure` says otherwise) and returns it with its
/// endpoint, read from the line it prints.
fn spawn(args: &[&std::ffi::OsStr], configure: impl FnOnce(&mut Command)) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfgd"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("CFGD_TOKEN")
        .env_remove("CFGD_CONFIG_DIR")
        .env_remove("CFGD_STATE_DIR")
        .env_remove("PREFECT_PROFILES_PATH")
        .env("CFGD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    configure(&mut cmd);
    let mut child = cmd.spawn().expect("spawn cfgd");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("cfgd listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, format!("http://{addr}"))
}

/// The binary on `config` and `state`.
fn start(config: &Path, state: &Path) -> (Child, String) {
    spawn(
        &[
            "--config-dir".as_ref(),
            config.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ],
        |_| {},
    )
}

async fn connect(endpoint: &str) -> SettingsClient<tonic::transport::Channel> {
    for _ in 0..200 {
        if let Ok(c) = SettingsClient::connect(endpoint.to_owned()).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("cfgd at {endpoint} never answered");
}

fn set_request(name: &str, value: String) -> pb::SetRequest {
    pb::SetRequest {
        assignments: vec![pb::Assignment {
            name: name.to_owned(),
            value: Some(pb::assignment::Value::Raw(value)),
        }],
        expected_revision: None,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_set_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let state = dir.path().join("state");
    std::fs::create_dir(&config).unwrap();
    let (mut child, endpoint) = start(&config, &state);
    let client = connect(&endpoint).await;

    // Four writers stream sets; the process is killed while they run.
    let names = [
        "PREFECT_TASKS_DEFAULT_RETRIES",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
        "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS",
    ];
    let mut writers = Vec::new();
    for name in names {
        let mut c = client.clone();
        writers.push(tokio::spawn(async move {
            let mut acked: Option<(u64, u64)> = None; // (value, revision)
            for v in 1..u64::MAX {
                match c.set(set_request(name, v.to_string())).await {
                    Ok(r) => acked = Some((v, r.into_inner().revision)),
                    Err(_) => break,
                }
            }
            (name, acked)
        }));
    }
    // Let some sets be acknowledged, then kill mid-stream.
    let mut probe = client.clone();
    loop {
        let s = probe
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.revision >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.push(w.await.unwrap());
    }

    // Every file parses.
    let profiles = std::fs::read_to_string(state.join("profiles.toml")).unwrap_or_default();
    toml::from_str::<toml::Table>(&profiles).expect("profiles.toml parses");

    let (mut child, endpoint) = start(&config, &state);
    let mut client = connect(&endpoint).await;
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    for (name, last) in acked {
        let Some((value, revision)) = last else {
            continue;
        };
        assert!(status.revision >= revision, "revision went back");
        let got = client
            .get(pb::GetRequest {
                name: name.to_owned(),
                reveal_secrets: false,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .setting
            .unwrap()
            .value
            .unwrap();
        // A set that was sent but not acknowledged may have landed too, so
        // the value is at least the last acknowledged one.
        let n = match got.kind.unwrap() {
            pb::value::Kind::Integer(i) => i as u64,
            pb::value::Kind::Delays(d) => d.seconds[0] as u64,
            other => panic!("unexpected {other:?}"),
        };
        assert!(n >= value, "{name}: acknowledged {value}, found {n}");
    }
    // And the daemon goes on from a higher revision.
    let next = client
        .set(set_request("PREFECT_TASKS_DEFAULT_RETRIES", "0".into()))
        .await
        .unwrap()
        .into_inner();
    assert!(next.revision > status.revision);
    let profiles = std::fs::read_to_string(state.join("profiles.toml")).unwrap();
    toml::from_str::<toml::Table>(&profiles).expect("profiles.toml parses after restart");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let state = dir.path().join("state");
    let (child, endpoint) = spawn(
        &[
            "--config-dir".as_ref(),
            config.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ],
        |cmd| {
            cmd.env("CFGD_LOG", "debug").stderr(Stdio::piped());
        },
    );
    let mut client = connect(&endpoint).await;
    let mut watch = client
        .watch(pb::WatchRequest {
            after_revision: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .set(set_request("PREFECT_API_KEY", "pnu_hush".into()))
        .await
        .unwrap();
    assert!(watch.message().await.unwrap().is_some());
    // SIGTERM: the open watch stream ends and the process exits 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), watch.message()).await;
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "the stream ends on shutdown"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("setting changed"),
        "the change is logged: {log}"
    );
    assert!(!log.contains("pnu_hush"), "a secret reached the log: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_config_dir_is_hot_reloaded() {
    // The default invocation: `cfgd` in a checkout, config dir `config`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let (mut child, endpoint) = spawn(
        &[
            "--config-dir".as_ref(),
            "config".as_ref(),
            "--state-dir".as_ref(),
            ".cfgd".as_ref(),
        ],
        |cmd| {
            cmd.current_dir(dir.path());
        },
    );
    let mut client = connect(&endpoint).await;
    let mut watch = client
        .watch(pb::WatchRequest {
            after_revision: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    std::fs::write(
        dir.path().join("config/prefect.toml"),
        "[tasks]\ndefault_retries = 5\n",
    )
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the file change arrives")
        .unwrap()
        .unwrap();
    let Some(pb::watch_event::Event::Change(change)) = event.event else {
        panic!("{event:?}")
    };
    assert_eq!(change.changes[0].name, "PREFECT_TASKS_DEFAULT_RETRIES");
    child.kill().unwrap();
    child.wait().unwrap();
}
