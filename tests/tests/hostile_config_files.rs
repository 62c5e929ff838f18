//! Files in the config dir that could take the daemon down: a symlink to
//! `/dev/zero` (endless), a FIFO (blocks whoever opens it), a file over the
//! size limit and one with thousands of errors. The daemon starts, keeps
//! reloading, answers a small status and stops promptly.

use std::time::Duration;

use cfgd_tests::{RETRIES, TestDaemon, eventually, integer};

const LIMIT: u64 = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_reported_and_nothing_else_suffers() {
    let dirs = cfgd_tests::Dirs::new();
    let config = dirs.config();
    let builder = TestDaemon::builder()
        .dirs(dirs)
        .config_file("good.toml", "[tasks]\ndefault_retries = 3\n")
        .config_file("big.toml", &format!("# {}\n", "x".repeat(LIMIT as usize)))
        .config_file(
            "noise.toml",
            &(0..2500)
                .map(|i| format!("NOT_A_SETTING_{i} = 1\n"))
                .collect::<String>(),
        )
        .configure(|c| c.max_config_file_bytes = LIMIT);
    std::os::unix::fs::symlink("/dev/zero", config.join("zero.toml")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(config.join("fifo.toml"))
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(made.success());

    let daemon = tokio::time::timeout(Duration::from_secs(30), builder.start())
        .await
        .expect("the daemon starts despite the files");
    let client = daemon.client().await;
    assert_eq!(integer(&client, RETRIES).await, Some(3));

    let status = client.status().await.unwrap();
    let error_of = |name: &str| {
        let path = config.join(name).display().to_string();
        status
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{name} is listed: {:?}", status.files))
            .error
            .clone()
    };
    assert!(error_of("zero.toml").contains("it is a character device, not a regular file"));
    assert!(error_of("fifo.toml").contains("it is a FIFO, not a regular file"));
    assert!(
        error_of("big.toml").contains(&format!(
            "the file is {} bytes; config files may be at most {LIMIT} bytes",
            LIMIT + 3
        )),
        "{}",
        error_of("big.toml")
    );
    let noise = error_of("noise.toml");
    assert_eq!(noise.lines().count(), 21, "{noise}");
    assert!(
        noise.ends_with("… and 2480 more error(s) in this file"),
        "{noise}"
    );
    let shown: usize = status.files.iter().map(|f| f.error.len()).sum();
    assert!(
        shown < 16 << 10,
        "status stays small: {shown} bytes of errors"
    );

    // Reloads go on past the FIFO and the endless file.
    daemon
        .dirs
        .write_config("good.toml", "[tasks]\ndefault_retries = 4\n");
    eventually("an edit still applies", || async {
        integer(&client, RETRIES).await == Some(4)
    })
    .await;
    tokio::time::timeout(Duration::from_secs(30), daemon.stop())
        .await
        .expect("the daemon stops promptly");
}
