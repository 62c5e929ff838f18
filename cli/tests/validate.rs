//! `cfg validate`: config files checked offline (no daemon runs in these
//! tests; the endpoint given is dead), with file and line in every error.

use std::path::Path;

use cfgd_tests::cli::{Run, cfg_at, dead_endpoint, run};

fn validate(args: &[&str]) -> Run {
    run(cfg_at(&dead_endpoint()).arg("validate").args(args))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_good_config_dir_is_valid_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    write(
        &config.join("prefect.toml"),
        "[tasks]\ndefault_retries = 2\ndefault_retry_delay_seconds = [1, 10, 100]\n",
    );
    write(&config.join(".env"), "PREFECT_FLOW_DEFAULT_RETRIES=1\n");
    write(
        &config.join("prefect.toml.example"),
        "this is not TOML and is ignored",
    );
    let out = validate(&["--config-dir", config.to_str().unwrap()]);
    assert_eq!(out.ok(), "Configuration valid!\n");
    // The config dir also comes from CFGD_CONFIG_DIR.
    let out = run(cfg_at(&dead_endpoint())
        .env("CFGD_CONFIG_DIR", &config)
        .arg("validate"));
    assert_eq!(out.ok(), "Configuration valid!\n");
}

#[test]
fn errors_name_the_file_and_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let bad = config.join("20-bad.toml");
    write(
        &config.join("10-good.toml"),
        "[flows]\ndefault_retries = 1\n",
    );
    write(
        &bad,
        "# retries\n[tasks]\ndefault_retries = \"many\"\n[myapp]\ntimeout = 2\n",
    );
    let out = validate(&["--config-dir", config.to_str().unwrap()]);
    let err = out.fails();
    let b = bad.display();
    assert_eq!(
        err,
        format!(
            "Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from config file {b}, line 3: expected an integer, got \"many\"\n\
             config file {b}, line 5: Unknown setting name 'myapp.timeout'.\n\
             Found 2 error(s) in 1 file(s).\n"
        )
    );
}

#[test]
fn named_files_are_checked_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ok.toml");
    let dotenv = dir.path().join(".env");
    let broken = dir.path().join("broken.toml");
    write(&good, "PREFECT_TASK_DEFAULT_RETRIES = 2\n");
    write(&dotenv, "PREFECT_TASKS_DEFAULT_RETRIES=2\nPREFECT_NOPE=1\n");
    write(&broken, "[tasks\n");
    assert_eq!(
        validate(&[good.to_str().unwrap()]).ok(),
        "Configuration valid!\n"
    );
    let out = validate(&[
        good.to_str().unwrap(),
        dotenv.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    let err = out.fails();
    assert!(
        err.contains(&format!(
            "warning: .env file {}, line 2: 'PREFECT_NOPE' is not a setting of Prefect 3.9.1 or cfgd",
            dotenv.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}, line 1:", broken.display())),
        "{err}"
    );
    assert!(err.ends_with("Found 1 error(s) in 1 file(s).\n"), "{err}");
}

#[test]
fn validate_json_lists_errors_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("a.toml");
    write(&bad, "[flows]\ndefault_retries = -1\n");
    let out = validate(&["-o", "json", bad.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    let doc = out.json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"][0]["file"], bad.display().to_string());
    assert_eq!(doc["errors"][0]["line"], 2);
    assert_eq!(doc["errors"][0]["setting"], "PREFECT_FLOWS_DEFAULT_RETRIES");
    write(&bad, "[flows]\ndefault_retries = 1\n");
    let doc = validate(&["-o", "json", bad.to_str().unwrap()]).json();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["errors"], serde_json::json!([]));
}

#[test]
fn a_missing_config_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = validate(&["--config-dir", missing.to_str().unwrap()]);
    assert_eq!(
        out.fails(),
        format!(
            "Config dir '{}' does not exist or is not a directory (use --config-dir or CFGD_CONFIG_DIR).\n",
            missing.display()
        )
    );
}
