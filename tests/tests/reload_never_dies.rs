//! The reload loop survives what used to end it for good: the config dir
//! deleted and recreated, a Kubernetes ConfigMap update (an atomic swap of
//! the hidden `..data` link), and a reload that cannot be made durable
//! because the disk is full (retried until it is, shown in status).

use std::path::Path;

use cfgd_sdk::WatchEvent;
use cfgd_tests::{RETRIES, TestDaemon, eventually, integer, next_event, watch_from_now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_recreated_config_dir_is_watched_again() {
    let daemon = TestDaemon::builder()
        .config_file("app.toml", "[tasks]\ndefault_retries = 1\n")
        .start()
        .await;
    let client = daemon.client().await;
    let dir = daemon.config_dir();
    std::fs::remove_dir_all(&dir).unwrap();
    // Gone: its files no longer apply.
    eventually("the files of the deleted dir drop out", || async {
        integer(&client, RETRIES).await == Some(0)
    })
    .await;
    std::fs::create_dir(&dir).unwrap();
    daemon
        .dirs
        .write_config("app.toml", "[tasks]\ndefault_retries = 7\n");
    eventually("the recreated dir's file applies", || async {
        integer(&client, RETRIES).await == Some(7)
    })
    .await;
    // And it stays watched.
    daemon
        .dirs
        .write_config("app.toml", "[tasks]\ndefault_retries = 8\n");
    eventually("a later edit applies", || async {
        integer(&client, RETRIES).await == Some(8)
    })
    .await;
    daemon.stop().await;
}

/// Kubernetes' atomic writer: `..<timestamp>/` holds the files, `..data`
/// links to it, and each visible file links through `..data`.
fn configmap_generation(dir: &Path, generation: u32, retries: i64) -> String {
    let ts = format!("..2026_12_01_00_00_0{generation}.00000000{generation}");
    std::fs::create_dir(dir.join(&ts)).unwrap();
    std::fs::write(
        dir.join(&ts).join("app.toml"),
        format!("[tasks]\ndefault_retries = {retries}\n"),
    )
    .unwrap();
    ts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_update_is_seen() {
    let daemon = TestDaemon::builder().start().await;
    let dir = daemon.config_dir();
    let first = configmap_generation(&dir, 1, 1);
    std::os::unix::fs::symlink(&first, dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/app.toml", dir.join("app.toml")).unwrap();
    let client = daemon.client().await;
    eventually("the mounted ConfigMap applies", || async {
        integer(&client, RETRIES).await == Some(1)
    })
    .await;
    let mut watch = watch_from_now(&client).await;

    // The kubelet's update: a new timestamped dir, `..data_tmp` → it,
    // renamed over `..data`, the old dir removed. `app.toml` itself is
    // never touched.
    let second = configmap_generation(&dir, 2, 2);
    std::os::unix::fs::symlink(&second, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join(&first)).unwrap();

    let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
        panic!("expected a change")
    };
    assert_eq!(change.changes[0].name, RETRIES);
    assert_eq!(change.changes[0].new.value().unwrap().as_integer(), Some(2));
    let status = client.status().await.unwrap();
    assert!(
        status.files.iter().all(|f| f.error.is_empty()),
        "{:?}",
        status.files
    );
    daemon.stop().await;
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the filesystem holding `dir` with one file; returns it.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_a_full_disk_is_retried_until_it_is_durable() {
    let dirs = cfgd_tests::Dirs::new();
    let mount = match Tmpfs::mount(&dirs.state(), "2m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!(
                "SKIPPED: a_reload_on_a_full_disk_is_retried_until_it_is_durable needs to mount a tmpfs (root with CAP_SYS_ADMIN): {why}"
            );
            return;
        }
    };
    let daemon = TestDaemon::builder().dirs(dirs).start().await;
    let client = daemon.client().await;
    let start = client.status().await.unwrap();
    let filler = fill(&mount.0);

    // Larger than a page, so the record cannot fit in the log's last one.
    let key = "k".repeat(16 << 10);
    daemon.dirs.write_config(
        "app.toml",
        &format!("[api]\nkey = \"{key}\"\n[tasks]\ndefault_retries = 3\n"),
    );
    eventually("status shows the reload is not in force", || async {
        client.status().await.unwrap().reload.error.is_some()
    })
    .await;
    let failing = client.status().await.unwrap().reload;
    eprintln!("the reload loop says: {failing:?}");
    assert!(failing.failed_attempts >= 1, "{failing:?}");
    assert!(failing.next_attempt_ms > 0, "{failing:?}");
    assert_eq!(integer(&client, RETRIES).await, Some(0), "not in force yet");
    assert_eq!(client.status().await.unwrap().revision, start.revision);

    // Space again: the retry goes through with no further edit.
    std::fs::remove_file(&filler).unwrap();
    eventually("the reload is retried and applied", || async {
        integer(&client, RETRIES).await == Some(3)
    })
    .await;
    let reload = client.status().await.unwrap().reload;
    assert_eq!(reload.error, None, "{reload:?}");
    assert_eq!(reload.failed_attempts, 0);

    // The loop lives on.
    daemon
        .dirs
        .write_config("app.toml", "[tasks]\ndefault_retries = 4\n");
    eventually("a later edit applies", || async {
        integer(&client, RETRIES).await == Some(4)
    })
    .await;
    daemon.stop().await;
    drop(mount);
}
