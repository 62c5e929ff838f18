//! Faults injected into the real binary: a crash loop under concurrent
//! writers, damaged and missing state, a state dir deleted under a running
//! daemon, a full disk, and clients that try to grow the state without
//! bound. Every case states what must hold; nothing acknowledged is lost.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cfgd_proto::pb;
use cfgd_tests::proc::{Client, Proc, dirs_args, get, run_to_exit, set_request, status};
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

const NAMES: [&str; 4] = [
    "PREFECT_TASKS_DEFAULT_RETRIES",
    "PREFECT_FLOWS_DEFAULT_RETRIES",
    "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
    "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS",
];

fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    dir
}

fn args(root: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut a = dirs_args(root);
    a.extend(extra.iter().map(Into::into));
    a
}

/// The value of `name` as a whole number (a delay list's first entry).
async fn number(client: &mut Client, name: &str) -> u64 {
    let text = get(client, name).await;
    let digits = text.trim_start_matches('[').split(['.', ',', ']']).next();
    digits
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{name} = {text:?} is not a number"))
}

/// Issue 16 "shows that it is done": at least 20 SIGKILLs of the real
/// binary under four concurrent writers, with a history so small that
/// compaction happens between kills. After every restart each acknowledged
/// write is in force, the epoch is the same, the revision has not gone
/// back, no acknowledged revision was issued again, and every file parses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_never_loses_an_acknowledged_write() {
    const KILLS: usize = 20;
    let dir = root();
    let deadline = Instant::now() + Duration::from_secs(240);
    let args = args(dir.path(), &["--history", "2"]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let mut last_acked: [Option<u64>; 4] = [None; 4];
    let mut next_value = [1u64; 4];
    // Every acknowledged revision and what it wrote.
    let mut acked: BTreeMap<u64, (usize, u64)> = BTreeMap::new();
    let mut epoch = None;
    let mut checked_writes = 0usize;
    for round in 0..=KILLS {
        assert!(Instant::now() < deadline, "the crash loop ran out of time");
        let proc = Proc::start(dir.path(), &args);
        let mut client = proc.client().await;
        // Everything acknowledged before the last kill is there.
        for (k, name) in NAMES.iter().enumerate() {
            let got = number(&mut client, name).await;
            if let Some(v) = last_acked[k] {
                assert!(
                    got >= v,
                    "round {round}: {name} was acknowledged at {v}, found {got}"
                );
            }
            next_value[k] = next_value[k].max(got + 1);
        }
        let st = status(&mut client).await;
        assert_eq!(
            *epoch.get_or_insert(st.epoch),
            st.epoch,
            "the epoch changed"
        );
        let max_acked = acked.keys().next_back().copied().unwrap_or(0);
        assert!(
            st.revision >= max_acked,
            "round {round}: revision went back"
        );
        // What history still holds of acknowledged revisions is what they wrote.
        let history = client
            .history(pb::HistoryRequest {
                limit: 100,
                reveal_secrets: false,
            })
            .await
            .unwrap()
            .into_inner();
        for change in &history.changes {
            if let Some((k, _)) = acked.get(&change.revision) {
                assert!(
                    change.changes.iter().any(|c| c.name == NAMES[*k]) || change.changes.is_empty(),
                    "round {round}: revision {} was re-issued for another write",
                    change.revision
                );
            }
        }
        if round == KILLS {
            break;
        }
        // Four writers stream sets until the kill cuts them off.
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, u64, u64)>();
        let mut writers = Vec::new();
        for k in 0..NAMES.len() {
            let mut c = client.clone();
            let tx = tx.clone();
            let start = next_value[k];
            writers.push(tokio::spawn(async move {
                for v in start..start + 100_000 {
                    match c.set(set_request(NAMES[k], v.to_string())).await {
                        Ok(r) => {
                            let _ = tx.send((k, v, r.into_inner().revision));
                        }
                        Err(_) => break,
                    }
                }
            }));
        }
        drop(tx);
        let target = rng.random_range(8..48);
        let mut round_acks = Vec::new();
        while round_acks.len() < target {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(a)) => round_acks.push(a),
                _ => panic!("round {round}: writes stopped being acknowledged"),
            }
        }
        proc.kill();
        for w in writers {
            w.await.unwrap();
        }
        while let Some(a) = rx.recv().await {
            round_acks.push(a);
        }
        for (k, v, revision) in round_acks {
            assert!(
                revision > max_acked,
                "round {round}: revision {revision} was acknowledged again (the last round reached {max_acked})"
            );
            assert!(
                acked.insert(revision, (k, v)).is_none(),
                "revision {revision} acknowledged twice"
            );
            last_acked[k] = Some(last_acked[k].map_or(v, |l| l.max(v)));
            checked_writes += 1;
        }
        let profiles = dir.path().join("state/profiles.toml");
        if let Ok(text) = std::fs::read_to_string(&profiles) {
            toml::from_str::<toml::Table>(&text).expect("profiles.toml parses after a kill");
        }
    }
    assert!(
        checked_writes >= KILLS * 8,
        "only {checked_writes} writes checked"
    );
    println!("{KILLS} SIGKILLs, {checked_writes} acknowledged writes checked, none lost");
}

/// Issue 16 §1, deterministically: with `--history 1` the checkpoint moves
/// past the revision `profiles.toml` holds while the file lags; a SIGKILL
/// then must not bring back the old value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_while_the_profiles_file_lags_survive_a_kill() {
    let dir = root();
    let args = args(dir.path(), &["--history", "1"]);
    let proc = Proc::start(dir.path(), &args);
    let mut client = proc.client().await;
    let name = NAMES[0];
    client.set(set_request(name, "1")).await.unwrap();
    // Wait until the profiles file holds 1 (it is written once the writer
    // is idle), so the file is one revision behind what follows.
    let file = dir.path().join("state/profiles.toml");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&file).is_ok_and(|t| t.contains(&format!("{name} = \"1\""))) {
        assert!(Instant::now() < deadline, "profiles.toml never held 1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for v in 2..=5 {
        client.set(set_request(name, v.to_string())).await.unwrap();
    }
    let proc = proc.kill_and_restart();
    let mut client = proc.client().await;
    assert_eq!(get(&mut client, name).await, "5");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("{name} = \"5\"")), "{text}");
}

/// A damaged log stops the start with the file, the line and the way out;
/// `--repair-state` starts on what can be kept, in a new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_refuses_to_start_and_repair_state_recovers() {
    let dir = root();
    let args = args(dir.path(), &[]);
    let proc = Proc::start(dir.path(), &args);
    let mut client = proc.client().await;
    for v in 1..=3 {
        client
            .set(set_request(NAMES[0], v.to_string()))
            .await
            .unwrap();
    }
    let epoch = status(&mut client).await.epoch;
    drop(client);
    proc.kill();
    let log = dir.path().join("state/log.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"revision\":2", "\"revision\":8", 1)).unwrap();

    let (code, stderr) = run_to_exit(&args);
    assert!(!code.success());
    assert!(
        stderr.contains(&format!("{}, line 3: corrupt revision log", log.display())),
        "{stderr}"
    );
    assert!(stderr.contains("--repair-state"), "{stderr}");

    let mut repaired = args.clone();
    repaired.push("--repair-state".into());
    let proc = Proc::start(dir.path(), &repaired);
    let mut client = proc.client().await;
    let st = status(&mut client).await;
    assert_ne!(st.epoch, epoch, "a repair begins a new epoch");
    assert_eq!(
        get(&mut client, NAMES[0]).await,
        "1",
        "the record before the damage is kept"
    );
}

/// A log deleted while the daemon was down is not silently a new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_log_refuses_to_start() {
    let dir = root();
    let args = args(dir.path(), &[]);
    let proc = Proc::start(dir.path(), &args);
    let mut client = proc.client().await;
    client.set(set_request(NAMES[0], "4")).await.unwrap();
    drop(client);
    proc.kill();
    std::fs::remove_file(dir.path().join("state/log.jsonl")).unwrap();
    let (code, stderr) = run_to_exit(&args);
    assert!(!code.success());
    assert!(stderr.contains("log.jsonl is missing"), "{stderr}");
}

/// The state dir deleted under a running daemon: writes are refused loudly,
/// never acknowledged into a deleted log; reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_deleted_under_the_daemon_refuses_writes() {
    let dir = root();
    let proc = Proc::start(dir.path(), &args(dir.path(), &[]));
    let mut client = proc.client().await;
    client.set(set_request(NAMES[0], "2")).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    let err = client.set(set_request(NAMES[0], "3")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("was deleted or replaced"),
        "{}",
        err.message()
    );
    assert_eq!(get(&mut client, NAMES[0]).await, "2");
    let st = status(&mut client).await;
    assert!(
        st.files
            .iter()
            .any(|f| f.kind == pb::FileKind::Log as i32 && f.error.contains("deleted")),
        "status shows the log: {:?}",
        st.files
    );
    assert!(
        !dir.path().join("state").exists(),
        "the deleted dir was not recreated"
    );
}

/// Issue 16 §5: each record carries what changed, so a one-integer `Set`
/// appends a small record however much the profiles hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_set_appends_a_small_record_whatever_the_profiles_hold() {
    let dir = root();
    // 12 custom settings of 60 KB each give the profile ~720 KB.
    std::fs::create_dir(dir.path().join("config/catalog.d")).unwrap();
    let mut catalog = String::new();
    for i in 0..12 {
        catalog.push_str(&format!(
            "[[settings]]\nname = \"BLOB_{i}\"\ntype = \"string\"\n\n"
        ));
    }
    std::fs::write(dir.path().join("config/catalog.d/blobs.toml"), catalog).unwrap();
    let proc = Proc::start(dir.path(), &args(dir.path(), &[]));
    let mut client = proc.client().await;
    let blob = "x".repeat(60_000);
    for i in 0..12 {
        client
            .set(set_request(&format!("BLOB_{i}"), blob.clone()))
            .await
            .unwrap();
    }
    let log = dir.path().join("state/log.jsonl");
    let before = records_len(&log);
    for v in 0..100 {
        client
            .set(set_request(NAMES[0], v.to_string()))
            .await
            .unwrap();
    }
    let grown = records_len(&log) - before;
    assert!(
        grown < 100 * 1024,
        "100 one-integer sets appended {grown} bytes"
    );
}

/// The profile layer is bounded in profiles and in bytes; a refused write
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profiles_are_bounded_in_count_and_bytes() {
    let dir = root();
    let proc = Proc::start(
        dir.path(),
        &args(
            dir.path(),
            &["--max-profiles", "3", "--max-profile-bytes", "100000"],
        ),
    );
    let mut client = proc.client().await;
    let create = |name: &str, from: Option<&str>| pb::CreateProfileRequest {
        name: name.into(),
        from: from.map(Into::into),
    };
    for name in ["a", "b"] {
        client.create_profile(create(name, None)).await.unwrap();
    }
    let revision = status(&mut client).await.revision;
    let err = client.create_profile(create("c", None)).await.unwrap_err();
    assert!(
        err.message().contains("too many profiles"),
        "{}",
        err.message()
    );
    assert_eq!(
        status(&mut client).await.revision,
        revision,
        "nothing changed"
    );

    client
        .delete_profile(pb::DeleteProfileRequest { name: "b".into() })
        .await
        .unwrap();
    client
        .set(set_request("PREFECT_API_KEY", "k".repeat(60_000)))
        .await
        .unwrap();
    let revision = status(&mut client).await.revision;
    // A copy of the default profile would hold 120 KB.
    let err = client
        .create_profile(create("copy", Some("default")))
        .await
        .unwrap_err();
    assert!(err.message().contains("100000"), "{}", err.message());
    assert_eq!(
        status(&mut client).await.revision,
        revision,
        "nothing changed"
    );
    // A small write still fits.
    client.set(set_request(NAMES[0], "2")).await.unwrap();
}

/// History is bounded in bytes as well as records: a stream of large
/// values keeps the log within a few times the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_bounded_in_bytes() {
    let dir = root();
    let proc = Proc::start(
        dir.path(),
        &args(dir.path(), &["--history-bytes", "300000"]),
    );
    let mut client = proc.client().await;
    for i in 0..60 {
        let value = format!("{i}{}", "k".repeat(50_000));
        client
            .set(set_request("PREFECT_API_KEY", value))
            .await
            .unwrap();
    }
    let len = records_len(&dir.path().join("state/log.jsonl"));
    assert!(
        len < 1_500_000,
        "the log holds {len} bytes for a 300 KB history bound"
    );
}

/// The bytes of a log's records: its size without the tail of zeros it
/// reserves for appends.
fn records_len(log: &Path) -> u64 {
    let bytes = std::fs::read(log).unwrap();
    bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i as u64 + 1)
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts `size` bytes at `path`, or says why it cannot.
    fn mount(path: &Path, size: usize) -> Result<Self, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Self(path.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Fills the file system up (returns the filler file).
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_data()).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 16 §4: a full disk refuses writes with RESOURCE_EXHAUSTED, keeps
/// serving reads, says so in status, lets the daemon restart, and recovers
/// by itself once space is freed. Needs a tmpfs (root); where the machine
/// cannot mount one the test says so and skips (README, reliability).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_serving_and_recovers() {
    let dir = root();
    let fs = match Tmpfs::mount(&dir.path().join("state"), 1 << 20) {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED: cannot mount a tmpfs for the disk-full case ({why})");
            return;
        }
    };
    let args = args(dir.path(), &[]);
    let proc = Proc::start(dir.path(), &args);
    let mut client = proc.client().await;
    client.set(set_request(NAMES[0], "1")).await.unwrap();
    let filler = fs.fill();
    // The space the log reserved before the disk filled still takes
    // records (a few hundred KiB: some hundreds of sets).
    let mut acked = 1;
    let err = loop {
        match client
            .set(set_request(NAMES[0], (acked + 1).to_string()))
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "the disk never filled up");
    };
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("No space left"), "{}", err.message());
    let acked = acked.to_string();
    assert_eq!(
        get(&mut client, NAMES[0]).await,
        acked,
        "reads go on; the refused write changed nothing"
    );
    let st = status(&mut client).await;
    assert!(
        st.files
            .iter()
            .any(|f| f.kind == pb::FileKind::Log as i32 && f.error.contains("No space left")),
        "status shows why writes fail: {:?}",
        st.files
    );

    // A restart while the disk is full serves: the log has everything.
    drop(client);
    let proc = proc.kill_and_restart();
    let mut client = proc.client().await;
    assert_eq!(get(&mut client, NAMES[0]).await, acked);

    // Space comes back: the next write succeeds and status clears.
    std::fs::remove_file(filler).unwrap();
    client.set(set_request(NAMES[0], "300")).await.unwrap();
    assert_eq!(get(&mut client, NAMES[0]).await, "300");
    let st = status(&mut client).await;
    assert!(
        !st.files.iter().any(|f| f.kind == pb::FileKind::Log as i32),
        "{:?}",
        st.files
    );
}
