//! Prefect users' habits: `cfg env`, `cfg run`, `-p/--profile` and
//! `PREFECT_PROFILE`, `--token-file`, secrets from stdin, structured JSON
//! sources, a `.env` that holds more than settings, and settings only a
//! newer Prefect knows.

use std::io::Write;
use std::process::Stdio;

use cfgd_tests::blocking::Daemon;
use cfgd_tests::cli::run;

#[test]
fn env_prints_what_some_layer_sets_in_each_format() {
    let d = Daemon::builder()
        .config_file(
            ".env",
            "DATABASE_URL=postgres://x\nPREFECT_FLOWS_DEFAULT_RETRIES=1\n",
        )
        .start_blocking();
    d.cfg(&[
        "set",
        "PREFECT_TASK_DEFAULT_RETRIES=2",
        "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS=1,10,100",
        "PREFECT_API_KEY=pnu_secret",
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD=P1D",
    ])
    .ok();
    let dotenv = d.cfg(&["env"]);
    assert_eq!(
        dotenv.ok(),
        "PREFECT_API_KEY=********\n\
         PREFECT_FLOWS_DEFAULT_RETRIES=1\n\
         PREFECT_SERVER_EVENTS_RETENTION_PERIOD=PT86400S\n\
         PREFECT_TASKS_DEFAULT_RETRIES=2\n\
         PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=[1,10,100]\n"
    );
    let shell = d.cfg(&["env", "--format", "shell", "--show-secrets"]);
    assert!(
        shell.ok().contains("export PREFECT_API_KEY='pnu_secret'\n"),
        "{shell:?}"
    );
    let json = d.cfg(&["env", "--format", "json"]).json();
    assert_eq!(json["PREFECT_TASKS_DEFAULT_RETRIES"], "2");
    assert!(
        json.get("PREFECT_LOGGING_LEVEL").is_none(),
        "defaults are left out"
    );
    let all = d.cfg(&["env", "--all", "--format", "json"]).json();
    assert_eq!(all["PREFECT_LOGGING_LEVEL"], "INFO");
}

#[test]
fn run_passes_settings_and_the_exit_code_and_the_callers_env_wins() {
    let d = Daemon::start();
    d.cfg(&[
        "set",
        "PREFECT_TASK_DEFAULT_RETRIES=2",
        "PREFECT_FLOWS_DEFAULT_RETRIES=3",
    ])
    .ok();
    let r = run(d.command().args([
        "run",
        "--",
        "sh",
        "-c",
        "echo \"t=$PREFECT_TASKS_DEFAULT_RETRIES f=$PREFECT_FLOWS_DEFAULT_RETRIES l=${PREFECT_LOGGING_LEVEL:-unset}\"; exit 3",
    ]));
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout, "t=2 f=3 l=unset\n");
    // Set in the caller's environment under an alias: the caller's value stays.
    let r = run(d.command().env("PREFECT_FLOW_DEFAULT_RETRIES", "9").args([
        "run",
        "--",
        "sh",
        "-c",
        "echo \"${PREFECT_FLOWS_DEFAULT_RETRIES:-unset} $PREFECT_FLOW_DEFAULT_RETRIES\"",
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "unset 9\n");
    let missing = d.cfg(&["run", "--", "no-such-command-anywhere"]);
    assert!(
        missing
            .fails()
            .starts_with("Cannot run no-such-command-anywhere: "),
        "{missing:?}"
    );
}

#[test]
fn dash_p_and_prefect_profile_read_and_write_another_profile() {
    let d = Daemon::start();
    d.cfg(&["profile", "create", "staging"]).ok();
    let set = d.cfg(&["-p", "staging", "set", "PREFECT_TASK_DEFAULT_RETRIES=4"]);
    assert!(set.ok().contains("Updated profile 'staging'."), "{set:?}");
    assert!(d.profile().is_empty(), "the active profile is untouched");
    let view = d.cfg(&["--profile", "staging", "view"]);
    assert_eq!(
        view.ok(),
        "PREFECT_PROFILE='staging'\nPREFECT_TASKS_DEFAULT_RETRIES='4' (from profile 'staging')\n"
    );
    let get = run(d
        .command()
        .env("PREFECT_PROFILE", "staging")
        .args(["get", "PREFECT_TASKS_DEFAULT_RETRIES"]));
    assert!(
        get.ok()
            .starts_with("PREFECT_TASKS_DEFAULT_RETRIES='4' (from profile 'staging')")
    );
    let inspect = d.cfg(&["-p", "staging", "profile", "inspect"]);
    assert!(
        inspect.ok().contains("PREFECT_TASKS_DEFAULT_RETRIES='4'"),
        "{inspect:?}"
    );
    let unset = d.cfg(&["-p", "staging", "unset", "PREFECT_TASKS_DEFAULT_RETRIES"]);
    assert!(unset.ok().contains("Updated profile 'staging'."));
    let nope = d.cfg(&["-p", "nope", "set", "PREFECT_TASK_DEFAULT_RETRIES=1"]);
    assert_eq!(nope.fails().trim(), "Profile 'nope' not found.");
    assert_eq!(
        d.cfg(&["-p", "nope", "view"]).fails().trim(),
        "Profile 'nope' not found."
    );
}

#[test]
fn prefect_profile_in_the_daemons_environment_pins_its_profile() {
    let d = Daemon::builder()
        .env("PREFECT_PROFILE", "pinned")
        .start_blocking();
    d.cfg(&["set", "PREFECT_TASK_DEFAULT_RETRIES=6"]).ok();
    let status = d.cfg(&["status", "-o", "json"]).json();
    assert_eq!(status["active_profile"], "pinned");
    assert_eq!(
        d.effective("PREFECT_TASKS_DEFAULT_RETRIES"),
        ("6".to_owned(), "profile 'pinned'".to_owned())
    );
}

#[test]
fn json_gives_structured_sources_and_the_epoch_as_a_string() {
    let d = Daemon::builder()
        .config_file("10-a.toml", "[tasks]\ndefault_retries = 5\n")
        .start_blocking();
    d.cfg(&["set", "PREFECT_FLOWS_DEFAULT_RETRIES=3"]).ok();
    d.cfg(&["set", "PREFECT_TASK_DEFAULT_RETRIES=2"]).ok();
    let get = d
        .cfg(&["get", "PREFECT_TASKS_DEFAULT_RETRIES", "-o", "json"])
        .json();
    let file = d.config_dir().join("10-a.toml").display().to_string();
    assert_eq!(get["source"]["layer"], "config_file");
    assert_eq!(get["source"]["file"], file.as_str());
    assert_eq!(get["source"]["line"], 2);
    assert_eq!(
        get["overrides"][0]["source"],
        serde_json::json!({"layer": "profile", "profile": "default", "text": "profile 'default'"})
    );
    let history = d.cfg(&["history", "-o", "json"]).json();
    assert!(history["epoch"].is_string(), "{history}");
    let flows = &history["changes"][0]["changes"][0];
    assert_eq!(flows["name"], "PREFECT_FLOWS_DEFAULT_RETRIES");
    assert_eq!(flows["new_source"]["profile"], "default");
    assert_eq!(flows["old_source"]["layer"], "defaults");
    let set = d
        .cfg(&["set", "PREFECT_FLOWS_DEFAULT_RETRIES=1", "-o", "json"])
        .json();
    assert!(set["epoch"].is_string());
    assert_eq!(
        set["settings"][0]["effective"]["source"]["profile"],
        "default"
    );
    assert!(d.cfg(&["status", "-o", "json"]).json()["epoch"].is_string());
}

#[test]
fn token_file_and_a_secret_from_stdin_stay_off_the_command_line() {
    let d = Daemon::builder().token("s3cret-token").start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let token = token.to_str().unwrap();
    let mut child = d
        .command()
        .args(["--token-file", token, "set", "PREFECT_API_KEY"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pnu_from_stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Set 'PREFECT_API_KEY' to '********'.\nUpdated profile 'default'.\n"
    );
    assert_eq!(
        d.profile(),
        [("PREFECT_API_KEY".to_owned(), "pnu_from_stdin".to_owned())]
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    let r = d.cfg(&[
        "--token-file",
        empty.to_str().unwrap(),
        "set",
        "PREFECT_TASK_DEFAULT_RETRIES=1",
    ]);
    assert_eq!(
        r.fails().trim(),
        format!("The token file {} is empty.", empty.display())
    );
    let r = d.cfg(&["--token-file", token, "--token", "x", "status"]);
    assert_eq!(r.code, 2, "--token and --token-file conflict: {r:?}");
}

#[test]
fn a_dotenv_with_other_names_and_one_bad_value_still_applies() {
    let d = Daemon::builder()
        .config_file(
            ".env",
            "DATABASE_URL=postgres://db\nPREFECT_TASK_DEFAULT_RETRIES=4\nPREFECT_LOGGING_LEVEL=loud\n",
        )
        .config_file("prefect.toml", "[tasks]\nfrom_a_newer_prefect = 1\n[flows]\ndefault_retries = 2\n")
        .start_blocking();
    assert_eq!(d.effective("PREFECT_TASKS_DEFAULT_RETRIES").0, "4");
    assert_eq!(d.effective("PREFECT_FLOWS_DEFAULT_RETRIES").0, "2");
    assert_eq!(d.effective("PREFECT_LOGGING_LEVEL").0, "INFO");
    let status = d.cfg(&["status"]);
    let text = status.ok();
    assert!(!text.contains("NOT APPLIED"), "{text}");
    let dotenv = d.config_dir().join(".env").display().to_string();
    assert!(
        text.contains(&format!(
            "    warning: Invalid value for PREFECT_LOGGING_LEVEL from .env file {dotenv}, line 3: expected one of"
        )),
        "{text}"
    );
    assert!(
        text.contains("'tasks.from_a_newer_prefect' is not a setting of Prefect 3.9.1 or cfgd"),
        "{text}"
    );
    let validate =
        run(d
            .command()
            .args(["validate", "--config-dir", d.config_dir().to_str().unwrap()]));
    assert_eq!(validate.code, 0, "{validate:?}");
    assert!(validate.stderr.contains("warning: "), "{validate:?}");
}

#[test]
fn prefect_home_cannot_go_into_a_profile_as_in_prefect() {
    let d = Daemon::start();
    let r = d.cfg(&["set", "PREFECT_HOME=/srv/prefect"]);
    assert_eq!(
        r.fails().trim(),
        "Validation error(s) for setting PREFECT_HOME\n\n - PREFECT_HOME cannot be changed in a profile (Prefect reads it only from its environment); use an environment variable instead"
    );
    assert!(d.profile().is_empty());
}

#[test]
fn did_you_mean_only_suggests_close_names() {
    let d = Daemon::start();
    let r = d.cfg(&["get", "PREFECT_TASK_DEFAULT_RETRYS"]);
    assert!(
        r.fails()
            .contains("Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?"),
        "{r:?}"
    );
    let r = d.cfg(&["get", "PREFECT_API_UR"]);
    assert!(
        r.fails().contains("Did you mean 'PREFECT_API_URL'?"),
        "{r:?}"
    );
    let r = d.cfg(&["get", "PREFECT_NOTHING_CLOSE"]);
    assert!(!r.fails().contains("Did you mean"), "{r:?}");
}
