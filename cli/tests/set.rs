//! `cfg set`: Prefect's messages, the spaced forms, all-or-nothing refusals
//! and the warning when a higher layer keeps the new value out of force.

use cfgd_tests::blocking::Daemon;

#[test]
fn set_prints_each_setting_then_the_profile_and_stores_canonical_names() {
    let d = Daemon::start();
    let out = d.cfg(&[
        "set",
        "PREFECT_TASK_DEFAULT_RETRIES=3",
        "PREFECT_FLOWS_DEFAULT_RETRIES=1",
    ]);
    assert_eq!(
        out.ok(),
        "Set 'PREFECT_TASK_DEFAULT_RETRIES' to '3'.\n\
         Set 'PREFECT_FLOWS_DEFAULT_RETRIES' to '1'.\n\
         Updated profile 'default'.\n"
    );
    assert_eq!(out.stderr, "");
    assert_eq!(
        d.profile(),
        [
            ("PREFECT_FLOWS_DEFAULT_RETRIES".to_owned(), "1".to_owned()),
            ("PREFECT_TASKS_DEFAULT_RETRIES".to_owned(), "3".to_owned()),
        ]
    );
    assert_eq!(
        d.effective("PREFECT_TASKS_DEFAULT_RETRIES"),
        ("3".to_owned(), "profile 'default'".to_owned())
    );
}

#[test]
fn the_spaced_form_from_prefects_docs_works_unquoted() {
    let d = Daemon::start();
    // What a shell makes of: cfg set PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS = [1, 10, 100]
    let out = d.cfg(&[
        "set",
        "PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS",
        "=",
        "[1,",
        "10,",
        "100]",
    ]);
    assert_eq!(
        out.ok(),
        "Set 'PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS' to '[1, 10, 100]'.\nUpdated profile 'default'.\n"
    );
    assert_eq!(
        d.effective("PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS").0,
        "[1, 10, 100]"
    );
}

#[test]
fn every_spaced_form_and_values_holding_equals_signs() {
    let d = Daemon::start();
    let out = d.cfg(&[
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=",
        "2",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
        "=4",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
        "=",
        "5",
        "PREFECT_API_KEY=abc=def",
    ]);
    assert_eq!(
        out.ok(),
        "Set 'PREFECT_TASKS_DEFAULT_RETRIES' to '2'.\n\
         Set 'PREFECT_FLOWS_DEFAULT_RETRIES' to '4'.\n\
         Set 'PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS' to '5'.\n\
         Set 'PREFECT_API_KEY' to '********'.\n\
         Updated profile 'default'.\n"
    );
    assert_eq!(d.effective("PREFECT_TASKS_DEFAULT_RETRIES").0, "2");
    assert_eq!(d.effective("PREFECT_FLOWS_DEFAULT_RETRIES").0, "4");
    assert_eq!(
        d.effective("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS").0,
        "5"
    );
    assert_eq!(d.effective("PREFECT_API_KEY").0, "abc=def");
}

#[test]
fn an_argument_without_equals_fails_and_writes_nothing() {
    let d = Daemon::start();
    let before = d.revision();
    let out = d.cfg(&[
        "set",
        "PREFECT_FLOWS_DEFAULT_RETRIES=2",
        "PREFECT_TASKS_DEFAULT_RETRIES",
    ]);
    assert_eq!(
        out.fails(),
        "Failed to parse argument 'PREFECT_TASKS_DEFAULT_RETRIES'. Use the format 'VAR=VAL'.\n"
    );
    assert_eq!(d.revision(), before);
    assert!(d.profile().is_empty());
}

#[test]
fn an_unknown_name_fails_with_a_suggestion_and_writes_nothing() {
    let d = Daemon::start();
    let before = d.revision();
    let out = d.cfg(&[
        "set",
        "PREFECT_FLOWS_DEFAULT_RETRIES=2",
        "PREFECT_TASK_DEFAULT_RETRYS=2",
    ]);
    assert_eq!(
        out.fails(),
        "Unknown setting name 'PREFECT_TASK_DEFAULT_RETRYS'. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?\n"
    );
    assert_eq!(d.revision(), before);
    assert!(
        d.profile().is_empty(),
        "all or nothing: the valid one is not written"
    );
}

#[test]
fn invalid_values_fail_per_setting_like_prefect_and_write_nothing() {
    let d = Daemon::start();
    let before = d.revision();
    let out = d.cfg(&[
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=2",
        "PREFECT_FLOW_DEFAULT_RETRIES=many",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=[1, -2]",
    ]);
    let err = out.fails();
    assert!(
        err.starts_with(
            "Validation error(s) for setting PREFECT_FLOW_DEFAULT_RETRIES\n\n - expected an integer, got \"many\"\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("Validation error(s) for setting PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS\n\n - every delay must be >= 0, got -2\n"),
        "{err}"
    );
    assert_eq!(d.revision(), before);
    assert!(d.profile().is_empty());
}

#[test]
fn a_daemon_env_var_that_overrides_the_set_is_named_with_its_value() {
    let d = Daemon::builder()
        .env("PREFECT_TASK_DEFAULT_RETRIES", "5")
        .start_blocking();
    let out = d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]);
    assert_eq!(
        out.ok(),
        "Set 'PREFECT_TASKS_DEFAULT_RETRIES' to '3'.\nUpdated profile 'default'.\n"
    );
    assert_eq!(
        out.stderr,
        "PREFECT_TASKS_DEFAULT_RETRIES is overridden by env PREFECT_TASK_DEFAULT_RETRIES (value '5'); \
         the new value will not take effect until it is removed.\n"
    );
    // Written, but not in force.
    assert_eq!(
        d.profile(),
        [("PREFECT_TASKS_DEFAULT_RETRIES".to_owned(), "3".to_owned())]
    );
    assert_eq!(
        d.effective("PREFECT_TASKS_DEFAULT_RETRIES"),
        (
            "5".to_owned(),
            "env PREFECT_TASK_DEFAULT_RETRIES".to_owned()
        )
    );
}

#[test]
fn a_config_file_and_env_both_overriding_are_both_named() {
    let d = Daemon::builder()
        .config_file("10-prod.toml", "[flows]\ndefault_retries = 4\n")
        .env("PREFECT_FLOWS_DEFAULT_RETRIES", "6")
        .start_blocking();
    let file = d.config_dir().join("10-prod.toml");
    let out = d.cfg(&[
        "set",
        "PREFECT_FLOW_DEFAULT_RETRIES=1",
        "PREFECT_TASKS_DEFAULT_RETRIES=2",
    ]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!(
            "PREFECT_FLOW_DEFAULT_RETRIES is overridden by env PREFECT_FLOWS_DEFAULT_RETRIES (value '6') \
             and by config file {}, line 2 (value '4'); the new value will not take effect until they are removed.\n",
            file.display()
        )
    );
}

#[test]
fn a_config_file_that_overrides_the_set_is_named_with_file_and_line() {
    let d = Daemon::builder()
        .config_file(
            "10-prod.toml",
            "# production\n[tasks]\ndefault_retries = 4\n",
        )
        .start_blocking();
    let file = d.config_dir().join("10-prod.toml");
    let out = d.cfg(&["set", "PREFECT_TASK_DEFAULT_RETRIES=1"]);
    assert_eq!(
        out.ok(),
        "Set 'PREFECT_TASK_DEFAULT_RETRIES' to '1'.\nUpdated profile 'default'.\n"
    );
    assert_eq!(
        out.stderr,
        format!(
            "PREFECT_TASK_DEFAULT_RETRIES is overridden by config file {}, line 3 (value '4'); \
             the new value will not take effect until it is removed.\n",
            file.display()
        )
    );
}

#[test]
fn set_json_reports_values_and_overrides() {
    let d = Daemon::builder()
        .env("PREFECT_TASK_DEFAULT_RETRIES", "5")
        .start_blocking();
    let out = d.cfg(&[
        "set",
        "-o",
        "json",
        "PREFECT_TASKS_DEFAULT_RETRIES=3",
        "PREFECT_API_KEY=s3cret",
    ]);
    out.ok();
    let doc = out.json();
    assert_eq!(doc["profile"], "default");
    assert_eq!(doc["changed"], true);
    let s = &doc["settings"];
    assert_eq!(s[0]["name"], "PREFECT_TASKS_DEFAULT_RETRIES");
    assert_eq!(s[0]["value"], "3");
    assert_eq!(s[0]["effective"]["value"], "5");
    assert_eq!(
        s[0]["overridden_by"][0]["source"],
        serde_json::json!({
            "layer": "env",
            "variable": "PREFECT_TASK_DEFAULT_RETRIES",
            "text": "env PREFECT_TASK_DEFAULT_RETRIES",
        })
    );
    assert_eq!(s[1]["value"], "********", "secrets stay masked in JSON too");
    assert!(!out.stdout.contains("s3cret"));
}
