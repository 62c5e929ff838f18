//! `cfg status`: address, revision, epoch, profile, files and file errors.

use cfgd_tests::blocking::Daemon;

#[test]
fn status_names_the_daemon_and_every_file_with_its_errors() {
    let d = Daemon::builder()
        .config_file("10-good.toml", "[flows]\ndefault_retries = 1\n")
        .config_file("20-bad.toml", "[tasks]\n\ndefault_retries = \"x\"\n")
        .start_blocking();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=2"])
        .ok();
    let out = d.cfg(&["status"]);
    let text = out.ok();
    let status = d
        .block_on(async { d.client().await.status().await })
        .unwrap();
    let port = d.port;
    assert!(
        text.starts_with(&format!(
            "cfgd {} is running at 127.0.0.1:{port} (endpoint http://127.0.0.1:{port}).\n",
            status.version
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nRevision:       {} ", status.revision)),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nEpoch:          {}\n", status.epoch)),
        "{text}"
    );
    assert!(text.contains("\nActive profile: default\n"), "{text}");
    let good = d.config_dir().join("10-good.toml");
    let bad = d.config_dir().join("20-bad.toml");
    assert!(
        text.contains(&format!("\n  {} (values)\n", good.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n  {b} (values): NOT APPLIED, line 3\n    Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from config file {b}, line 3: expected an integer, got \"x\"\n",
            b = bad.display()
        )),
        "{text}"
    );
    assert!(
        out.stderr.contains("1 config file(s) have errors"),
        "{}",
        out.stderr
    );

    let doc = d.cfg(&["status", "-o", "json"]).json();
    assert_eq!(doc["revision"], status.revision);
    assert_eq!(
        doc["epoch"],
        status.epoch.to_string(),
        "a u64 epoch is a JSON string"
    );
    assert_eq!(doc["endpoint"], d.endpoint);
    let files = doc["files"].as_array().unwrap();
    let bad_json = files
        .iter()
        .find(|f| f["path"] == bad.display().to_string())
        .unwrap();
    assert_eq!(bad_json["line"], 3);
    assert!(
        bad_json["error"]
            .as_str()
            .unwrap()
            .contains("expected an integer")
    );
}
