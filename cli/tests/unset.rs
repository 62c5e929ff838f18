//! `cfg unset`: Prefect's messages, all or nothing, and what stays in force.

use cfgd_tests::blocking::Daemon;

#[test]
fn unset_removes_each_name_and_the_default_returns() {
    let d = Daemon::start();
    d.cfg(&[
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=3",
        "PREFECT_FLOWS_DEFAULT_RETRIES=1",
    ])
    .ok();
    let out = d.cfg(&[
        "unset",
        "PREFECT_TASK_DEFAULT_RETRIES",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
    ]);
    assert_eq!(
        out.ok(),
        "Unset 'PREFECT_TASK_DEFAULT_RETRIES'.\nUnset 'PREFECT_FLOWS_DEFAULT_RETRIES'.\nUpdated profile 'default'.\n"
    );
    assert_eq!(out.stderr, "");
    assert!(d.profile().is_empty());
    assert_eq!(
        d.effective("PREFECT_TASKS_DEFAULT_RETRIES"),
        ("0".to_owned(), "defaults".to_owned())
    );
}

#[test]
fn a_name_not_in_the_profile_fails_and_nothing_is_removed() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let before = d.revision();
    let out = d.cfg(&[
        "unset",
        "PREFECT_TASKS_DEFAULT_RETRIES",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
    ]);
    assert_eq!(
        out.fails(),
        "'PREFECT_FLOWS_DEFAULT_RETRIES' is not set in profile 'default'.\n"
    );
    assert_eq!(d.revision(), before);
    assert_eq!(d.profile().len(), 1);
}

#[test]
fn an_unknown_name_fails_with_a_suggestion() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let out = d.cfg(&["unset", "-y", "PREFECT_TASKS_DEFAULT_RETRIE"]);
    assert_eq!(
        out.fails(),
        "Unknown setting name 'PREFECT_TASKS_DEFAULT_RETRIE'. Did you mean 'PREFECT_TASKS_DEFAULT_RETRIES'?\n"
    );
    assert_eq!(d.profile().len(), 1);
}

#[test]
fn unset_says_when_a_higher_layer_keeps_a_value_in_force() {
    let d = Daemon::builder()
        .env("PREFECT_TASK_DEFAULT_RETRIES", "5")
        .start_blocking();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let out = d.cfg(&["unset", "PREFECT_TASKS_DEFAULT_RETRIES"]);
    out.ok();
    assert_eq!(
        out.stderr,
        "'PREFECT_TASKS_DEFAULT_RETRIES' is also set by env PREFECT_TASK_DEFAULT_RETRIES (value '5'), which stays in force.\n"
    );
    assert!(d.profile().is_empty());
}

#[test]
fn unset_json_lists_what_is_now_in_force() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let out = d.cfg(&["unset", "PREFECT_TASKS_DEFAULT_RETRIES", "--output", "json"]);
    out.ok();
    let doc = out.json();
    assert_eq!(doc["settings"][0]["name"], "PREFECT_TASKS_DEFAULT_RETRIES");
    assert_eq!(doc["settings"][0]["value"], serde_json::Value::Null);
    assert_eq!(
        doc["settings"][0]["effective"]["source"],
        serde_json::json!({"layer": "defaults", "text": "defaults"})
    );
}
