//! What the real `cfgd` binary keeps resident once it has loaded a large
//! service catalogue: the TOML parser's buffers, many times the files'
//! size, are freed after the load and must go back to the system (see
//! `daemon/src/memory.rs`), so the daemon's memory follows what it holds,
//! not the parse's peak.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Settings in the generated catalogue (as `bench/src/footprint.rs`).
const SETTINGS: usize = 10_000;

/// Most anonymous memory (heap, stacks) the daemon may keep with
/// [`SETTINGS`] settings loaded. The live heap is about 13 MiB and the
/// debug binary keeps 16.0 MiB (19.4 MiB before the catalogue's indexes
/// stopped copying names and the defaults layer went); with glibc's
/// defaults (the parse's freed pages kept) it kept 35 MiB (54 MiB before
/// the settings model was made smaller).
const MAX_ANON_KIB: u64 = 20 * 1024;

/// A catalogue of `n` integer settings in `catalog.d/bench.toml` and a
/// value file giving each one a value (1 to 100).
fn write_config(dir: &std::path::Path, n: usize) {
    let mut catalog = String::with_capacity(n * 120);
    let mut values = String::from("[svc]\n");
    for i in 0..n {
        let _ = write!(
            catalog,
            "[[settings]]\nname = \"BENCH_SVC_{i:05}\"\npath = \"svc.k{i:05}\"\ntype = \"integer\"\ndefault = 0\ndescription = \"benchmark setting {i}\"\n\n"
        );
        let _ = writeln!(values, "k{i:05} = {}", i % 100 + 1);
    }
    std::fs::create_dir_all(dir.join("catalog.d")).unwrap();
    std::fs::write(dir.join("catalog.d/bench.toml"), catalog).unwrap();
    std::fs::write(dir.join("values.toml"), values).unwrap();
}

/// `RssAnon` of process `pid`, in KiB.
fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no RssAnon in /proc/{pid}/status"))
}

#[tokio::test]
async fn a_loaded_catalogue_keeps_what_it_holds_not_the_parse_peak() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    write_config(&config, SETTINGS);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfgd"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--config-dir")
        .arg(&config)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .args(["--max-config-file-bytes", "16777216", "--http", "off"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn cfgd");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("cfgd prints a line within 120 s")
        .unwrap()
        .unwrap_or_default();
    let addr = line
        .strip_prefix("cfgd listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    // It serves the whole catalogue (the load is over, and its memory
    // handed back, before it says it listens).
    let mut client = SettingsClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let last = client
        .get(pb::GetRequest {
            name: format!("BENCH_SVC_{:05}", SETTINGS - 1),
            ..Default::default()
        })
        .await
        .expect("the last generated setting is served")
        .into_inner();
    let value = last.setting.and_then(|s| s.value).and_then(|v| v.kind);
    assert_eq!(value, Some(pb::value::Kind::Integer(100)));

    let anon = rss_anon_kib(child.id().unwrap());
    assert!(
        anon <= MAX_ANON_KIB,
        "cfgd keeps {anon} KiB of anonymous memory with {SETTINGS} settings; expected at most {MAX_ANON_KIB} KiB"
    );
    child.kill().await.unwrap();
}
