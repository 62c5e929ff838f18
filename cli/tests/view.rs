//! `cfg view` and `cfg get`: Prefect's format, sources, defaults, masking.

use cfgd_tests::blocking::Daemon;

#[test]
fn view_shows_the_profile_and_non_default_values_with_sources() {
    let d = Daemon::builder()
        .env("PREFECT_FLOW_DEFAULT_RETRIES", "2")
        .start_blocking();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=1,10,100"])
        .ok();
    assert_eq!(
        d.cfg(&["view"]).ok(),
        "PREFECT_PROFILE='default'\n\
         PREFECT_FLOWS_DEFAULT_RETRIES='2' (from env PREFECT_FLOW_DEFAULT_RETRIES)\n\
         PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS='[1, 10, 100]' (from profile 'default')\n"
    );
    assert_eq!(
        d.cfg(&["view", "--hide-sources"]).ok(),
        "PREFECT_PROFILE='default'\n\
         PREFECT_FLOWS_DEFAULT_RETRIES='2'\n\
         PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS='[1, 10, 100]'\n"
    );
}

#[test]
fn show_defaults_lists_every_setting_sorted() {
    let d = Daemon::start();
    let out = d.cfg(&["view", "--show-defaults"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "PREFECT_PROFILE='default'");
    // Prefect's 227 settings and cfgd's 5 extensions, sorted by name.
    assert_eq!(lines.len(), 1 + 227 + 5);
    let mut sorted = lines[1..].to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, lines[1..]);
    for line in [
        "PREFECT_API_KEY='None' (from defaults)",
        "PREFECT_LOGGING_LEVEL='INFO' (from defaults)",
        "PREFECT_TASKS_DEFAULT_RETRIES='0' (from defaults)",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS='0' (from defaults)",
        "PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR='None' (from defaults)",
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD='604800' (from defaults)",
        "PREFECT_TASKS_DEFAULT_RETRY_BUDGET_FLOOR='1' (from defaults)",
        "PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS='60' (from defaults)",
    ] {
        assert!(lines.contains(&line), "no {line:?}");
    }
    assert_eq!(d.cfg(&["view"]).ok(), "PREFECT_PROFILE='default'\n");
}

#[test]
fn secrets_are_masked_unless_shown() {
    let d = Daemon::builder()
        .env("PREFECT_API_KEY", "pk_live_123")
        .start_blocking();
    let out = d.cfg(&["view"]);
    assert_eq!(
        out.ok(),
        "PREFECT_PROFILE='default'\nPREFECT_API_KEY='********' (from env PREFECT_API_KEY)\n"
    );
    let json = d.cfg(&["view", "-o", "json"]);
    assert!(!json.stdout.contains("pk_live_123"));
    assert_eq!(json.json()["settings"][0]["value"], "********");
    let get = d.cfg(&["get", "PREFECT_API_KEY"]);
    assert!(!get.ok().contains("pk_live_123"));
    assert_eq!(
        d.cfg(&["view", "--show-secrets"]).ok(),
        "PREFECT_PROFILE='default'\nPREFECT_API_KEY='pk_live_123' (from env PREFECT_API_KEY)\n"
    );
    assert_eq!(
        d.cfg(&["view", "--show-secrets", "--hide-secrets"]).ok(),
        "PREFECT_PROFILE='default'\nPREFECT_API_KEY='********' (from env PREFECT_API_KEY)\n"
    );
}

#[test]
fn showing_secrets_needs_the_token_when_the_daemon_has_one() {
    let d = Daemon::builder()
        .token("t0k3n")
        .env("PREFECT_API_KEY", "pk_live_123")
        .start_blocking();
    let out = d.cfg(&["view", "--show-secrets"]);
    let err = out.fails();
    assert!(err.contains("requires a token"), "{err}");
    assert!(
        err.contains("--token") && err.contains("CFGD_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("pk_live_123"));
    // Masked reading needs no token.
    d.cfg(&["view"]).ok();
    let shown = d.cfg(&["--token", "t0k3n", "view", "--show-secrets"]);
    assert!(shown.ok().contains("PREFECT_API_KEY='pk_live_123'"));
    let from_env = cfgd_tests::cli::run(d.command().env("CFGD_TOKEN", "t0k3n").args([
        "get",
        "PREFECT_API_KEY",
        "--show-secrets",
    ]));
    assert_eq!(
        from_env.ok(),
        "PREFECT_API_KEY='pk_live_123' (from env PREFECT_API_KEY)\n"
    );
}

#[test]
fn view_json_has_prefects_shape() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let doc = d.cfg(&["view", "-o", "json"]).json();
    assert_eq!(
        doc,
        serde_json::json!({
            "profile": "default",
            "settings": [{
                "name": "PREFECT_TASKS_DEFAULT_RETRIES",
                "value": "3",
                "source": {"layer": "profile", "profile": "default", "text": "profile 'default'"},
            }],
        })
    );
    let doc = d.cfg(&["view", "-o", "json", "--hide-sources"]).json();
    assert_eq!(doc["settings"][0].get("source"), None);
}

#[test]
fn get_shows_the_value_its_source_and_what_it_overrides() {
    let d = Daemon::builder()
        .env("PREFECT_TASK_DEFAULT_RETRIES", "5")
        .start_blocking();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    assert_eq!(
        d.cfg(&["get", "PREFECT_TASK_DEFAULT_RETRIES"]).ok(),
        "PREFECT_TASKS_DEFAULT_RETRIES='5' (from env PREFECT_TASK_DEFAULT_RETRIES)\n\
         \x20 overrides profile 'default' (value '3')\n\
         \x20 overrides defaults (value '0')\n"
    );
    let doc = d
        .cfg(&["get", "PREFECT_TASKS_DEFAULT_RETRIES", "-o", "json"])
        .json();
    assert_eq!(doc["value"], "5");
    assert_eq!(doc["source"]["layer"], "env");
    assert_eq!(doc["source"]["variable"], "PREFECT_TASK_DEFAULT_RETRIES");
    assert_eq!(doc["overrides"][0]["source"]["profile"], "default");
    assert_eq!(doc["overrides"][0]["value"], "3");
}

#[test]
fn get_of_an_unknown_name_fails_with_a_suggestion() {
    let d = Daemon::start();
    assert_eq!(
        d.cfg(&["get", "PREFECT_FLOW_DEFAULT_RETRYS"]).fails(),
        "Unknown setting name 'PREFECT_FLOW_DEFAULT_RETRYS'. Did you mean 'PREFECT_FLOW_DEFAULT_RETRIES'?\n"
    );
}
