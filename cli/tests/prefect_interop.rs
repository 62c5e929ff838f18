//! cfgd beside the real Prefect 3.9.1 (the venv `.ci/deps.sh` makes; these
//! tests fail, naming it, when it is missing): a profile Prefect writes is
//! served with no error; what `cfg set` writes Prefect reads back as the
//! same value and validates; `cfg run` hands a Prefect task its settings.
//! Prefect always runs with `PREFECT_HOME` and `PREFECT_PROFILES_PATH` in a
//! temp dir, never the user's `~/.prefect`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cfgd_tests::blocking::Daemon;
use cfgd_tests::cli::{Run, Spawned, run};

fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("CFGD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .join(".venv")
        });
    let bin = venv.join("bin").join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run .ci/deps.sh (it installs prefect==3.9.1 into the venv)",
        bin.display()
    );
    bin
}

/// A Prefect home in a temp dir: `PREFECT_HOME`, `PREFECT_PROFILES_PATH`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn profiles(&self) -> PathBuf {
        self.dir.path().join("profiles.toml")
    }

    /// Prefect's environment: nothing of the caller's but PATH.
    fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("PREFECT_HOME", self.dir.path())
            .env("PREFECT_PROFILES_PATH", self.profiles())
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            .env("DO_NOT_TRACK", "1")
            .current_dir(self.dir.path());
    }

    /// Runs the real `prefect ARGS`.
    fn prefect(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(venv_bin("prefect"));
        self.env(&mut cmd);
        run(cmd.args(args))
    }

    /// Runs `python -c CODE ARGS` with Prefect importable.
    fn python(&self, code: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(venv_bin("python"));
        self.env(&mut cmd);
        run(cmd.arg("-c").arg(code).args(args))
    }
}

#[track_caller]
fn ok(r: &Run) -> &str {
    assert_eq!(r.code, 0, "failed: {r:#?}");
    &r.stdout
}

#[test]
fn a_profile_prefect_wrote_is_served_with_no_error() {
    let home = Home::new();
    ok(&home.prefect(&["profile", "create", "dev"]));
    ok(&home.prefect(&[
        "--profile",
        "dev",
        "config",
        "set",
        "PREFECT_TASK_DEFAULT_RETRIES=3",
        "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS=1, 10, 100",
        "PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS=2.5",
        "PREFECT_API_KEY=pnu_from_prefect",
        "PREFECT_API_URL=http://127.0.0.1:4200/api",
        "PREFECT_LOGGING_LEVEL=debug",
    ]));
    ok(&home.prefect(&["profile", "create", "prod"]));
    ok(&home.prefect(&[
        "--profile",
        "prod",
        "config",
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=1",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=5",
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD=P7D",
    ]));
    // A newer Prefect's setting, written by hand beside Prefect's own.
    let text = std::fs::read_to_string(home.profiles()).expect("Prefect wrote the file");
    std::fs::write(
        home.profiles(),
        text.replace(
            "[profiles.dev]\n",
            "[profiles.dev]\nPREFECT_FROM_A_NEWER_PREFECT = \"1\"\n",
        ),
    )
    .unwrap();

    let d = Daemon::builder()
        .profiles_path(home.profiles())
        .start_blocking();
    let status = d.cfg(&["status", "-o", "json"]);
    let files = status.json()["files"].clone();
    let profiles = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "profiles")
        .expect("the profiles file in status")
        .clone();
    assert!(profiles["error"].is_null(), "{profiles}");

    let dev = d.cfg(&["-p", "dev", "view", "--show-secrets"]);
    let dev = ok(&dev);
    for line in [
        "PREFECT_PROFILE='dev'",
        "PREFECT_TASKS_DEFAULT_RETRIES='3' (from profile 'dev')",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS='[1, 10, 100]' (from profile 'dev')",
        "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS='2.5' (from profile 'dev')",
        "PREFECT_API_KEY='pnu_from_prefect' (from profile 'dev')",
        "PREFECT_API_URL='http://127.0.0.1:4200/api' (from profile 'dev')",
        "PREFECT_LOGGING_LEVEL='DEBUG' (from profile 'dev')",
    ] {
        assert!(dev.lines().any(|l| l == line), "no {line:?} in:\n{dev}");
    }
    let prod = d.cfg(&["view"]).stdout;
    assert!(
        !prod.contains("PREFECT_TASKS_DEFAULT_RETRIES"),
        "the active profile is Prefect's packaged one: {prod}"
    );
    let prod = d.cfg(&[
        "-p",
        "prod",
        "get",
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD",
    ]);
    assert_eq!(
        ok(&prod).lines().next(),
        Some("PREFECT_SERVER_EVENTS_RETENTION_PERIOD='604800' (from profile 'prod')")
    );
    // The newer name is shown as unknown, never as a broken file.
    let validate = d.cfg(&["validate", home.profiles().to_str().unwrap()]);
    assert_eq!(validate.code, 0, "{validate:#?}");
    assert!(
        validate
            .stderr
            .contains("'PREFECT_FROM_A_NEWER_PREFECT' is not a setting of Prefect 3.9.1 or cfgd"),
        "{validate:#?}"
    );
}

/// Prints, as JSON, each profile's value of each name as Prefect validates
/// it (a real `Settings()` per profile, as `import prefect` builds one).
const READ_BACK: &str = r#"
import json, os, sys, warnings
warnings.simplefilter("ignore")
from datetime import timedelta
from prefect.settings.models.root import Settings
from prefect.settings.legacy import _get_settings_fields
fields = _get_settings_fields(Settings)
out = {}
for profile in sys.argv[1].split(","):
    os.environ["PREFECT_PROFILE"] = profile
    s = Settings()
    values = {}
    for name in sys.argv[2].split(","):
        v = s
        for key in fields[name].accessor.split("."):
            v = getattr(v, key)
        if hasattr(v, "get_secret_value"):
            v = v.get_secret_value()
        if isinstance(v, timedelta):
            v = v.total_seconds()
        # Prefect keeps these lists as sets: their order is its own.
        if isinstance(v, (set, frozenset)) or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            v = sorted(v)
        values[name] = v
    out[profile] = values
print(json.dumps(out, sort_keys=True))
"#;

#[test]
fn what_cfg_set_writes_prefect_reads_back_as_the_same_value() {
    let home = Home::new();
    let d = Daemon::builder()
        .profiles_path(home.profiles())
        .start_blocking();
    // One profile per accepted form; each gets every built-in setting.
    // (profile, form, task delays and flow delays as Prefect reads them)
    let list = serde_json::json!([1.0, 10.0, 100.0]);
    let forms: &[(&str, &str, serde_json::Value, serde_json::Value)] = &[
        ("f1", "10", 10.0.into(), 10.0.into()),
        ("f2", "10.5", 10.5.into(), 10.5.into()),
        ("f3", "1,10,100", list.clone(), list.clone()),
        ("f4", "[1, 10, 100]", list.clone(), list.clone()),
        ("f5", "[1,10,100]", list.clone(), list.clone()),
        // A list of one: the same retries as the number for tasks (no string
        // tells them apart); a native array for flows.
        ("f6", "[10]", 10.0.into(), serde_json::json!([10.0])),
    ];
    for (profile, delays, _, _) in forms {
        ok(&d.cfg(&["profile", "create", profile]));
        ok(&d.cfg(&[
            "-p",
            profile,
            "set",
            "PREFECT_TASK_DEFAULT_RETRIES=2",
            &format!("PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS={delays}"),
            "PREFECT_FLOWS_DEFAULT_RETRIES=1",
            &format!("PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS={delays}"),
            "PREFECT_API_KEY=pnu_set_by_cfg",
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
            "PREFECT_LOGGING_LEVEL=warning",
            "PREFECT_SERVER_EVENTS_RETENTION_PERIOD=P2D",
            "PREFECT_CLIENT_RETRY_EXTRA_CODES=429, 502",
            "PREFECT_LOGGING_EXTRA_LOGGERS=a,b",
            "PREFECT_CLIENT_CUSTOM_HEADERS={\"X-Team\": \"data\"}",
            "PREFECT_API_REQUEST_TIMEOUT=1_0.5",
            "PREFECT_DEBUG_MODE=yes",
        ]));
    }
    let names = [
        "PREFECT_TASKS_DEFAULT_RETRIES",
        "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
        "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS",
        "PREFECT_API_KEY",
        "PREFECT_API_URL",
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD",
        "PREFECT_CLIENT_RETRY_EXTRA_CODES",
        "PREFECT_LOGGING_EXTRA_LOGGERS",
        "PREFECT_CLIENT_CUSTOM_HEADERS",
        "PREFECT_API_REQUEST_TIMEOUT",
        "PREFECT_DEBUG_MODE",
    ];
    let profiles: Vec<&str> = forms.iter().map(|f| f.0).collect();
    wait_for_profiles_file(&home.profiles(), "PREFECT_DEBUG_MODE", forms.len());
    let read = home.python(READ_BACK, &[&profiles.join(","), &names.join(",")]);
    let read: serde_json::Value = serde_json::from_str(ok(&read)).expect("JSON");
    for (profile, _, delays, flow_delays) in forms {
        let got = &read[profile];
        let expected = serde_json::json!({
            "PREFECT_TASKS_DEFAULT_RETRIES": 2,
            "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS": delays,
            "PREFECT_FLOWS_DEFAULT_RETRIES": 1,
            "PREFECT_API_KEY": "pnu_set_by_cfg",
            "PREFECT_API_URL": "http://127.0.0.1:4200/api",
            "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": 172800.0,
            "PREFECT_CLIENT_RETRY_EXTRA_CODES": [429, 502],
            "PREFECT_LOGGING_EXTRA_LOGGERS": ["a", "b"],
            "PREFECT_CLIENT_CUSTOM_HEADERS": {"X-Team": "data"},
            "PREFECT_API_REQUEST_TIMEOUT": 10.5,
            "PREFECT_DEBUG_MODE": true,
        });
        let mut expected = expected.as_object().unwrap().clone();
        expected.insert(
            "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS".into(),
            flow_delays.clone(),
        );
        for (name, want) in &expected {
            let have = &got[name];
            assert!(
                same_value(have, want),
                "profile {profile}: {name} reads back as {have} in Prefect, not {want}"
            );
        }
    }
    // Prefect's own CLI shows them and validates the file.
    let view = home.prefect(&["-p", "f3", "config", "view", "--show-secrets"]);
    let view = ok(&view);
    assert!(view.contains("PREFECT_PROFILE='f3'"), "{view}");
    assert!(
        view.contains("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS='1,10,100' (from profile)"),
        "{view}"
    );
    assert!(
        view.contains("PREFECT_API_KEY='pnu_set_by_cfg' (from profile)"),
        "{view}"
    );
    let validate = home.prefect(&["-p", "f3", "config", "validate"]);
    assert!(
        ok(&validate).contains("Configuration valid!"),
        "{validate:#?}"
    );
    // A value Prefect would refuse at import, cfgd refuses at write time.
    for bad in [
        "PREFECT_LOGGING_LEVEL=loud",
        "PREFECT_CLIENT_RETRY_EXTRA_CODES=99",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY=29",
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD=soon",
        "PREFECT_TASK_DEFAULT_RETRIES=1.5",
    ] {
        let r = d.cfg(&["set", bad]);
        assert_eq!(r.code, 1, "{bad} was accepted: {r:#?}");
    }
}

/// Equal as JSON, numbers compared as numbers (Prefect's `10` and `10.0`).
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Waits (bounded) until the daemon has rewritten `path` with `count`
/// assignments of `name` (it writes the file once its writer is idle).
fn wait_for_profiles_file(path: &Path, name: &str, count: usize) {
    let deadline = std::time::Instant::now() + cfgd_tests::cli::PATIENCE;
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.matches(name).count() == count) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never held {count} values of {name}", path.display());
}

#[test]
fn cfg_run_hands_a_prefect_task_its_settings() {
    let home = Home::new();
    let d = Daemon::start();
    ok(&d.cfg(&[
        "set",
        "PREFECT_TASK_DEFAULT_RETRIES=2",
        "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS=1,10,100",
        "PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS=[5]",
        "PREFECT_API_KEY=pnu_run",
    ]));
    let code = r#"
import os, sys, warnings
warnings.simplefilter("ignore")
from prefect import flow, task
from prefect.settings import PREFECT_TASKS_DEFAULT_RETRIES, PREFECT_API_KEY

@task
def t():
    pass

@flow
def f():
    pass

print("retries", t.retries, PREFECT_TASKS_DEFAULT_RETRIES.value())
print("delays", t.retry_delay_seconds)
print("flow delays", f.retry_delay_seconds)
print("key", PREFECT_API_KEY.value())
print("home", os.environ.get("PREFECT_HOME"))
sys.exit(7)
"#;
    let mut cmd = d.command();
    home.env(&mut cmd);
    cmd.env("NO_COLOR", "1")
        .arg("run")
        .arg("--")
        .arg(venv_bin("python"))
        .args(["-c", code]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 7, "the child's exit code is cfg's: {r:#?}");
    let home_line = format!("home {}", home.dir.path().display());
    for line in [
        "retries 2 2",
        "delays [1.0, 10.0, 100.0]",
        "flow delays [5.0]",
        "key pnu_run",
        home_line.as_str(),
    ] {
        assert!(r.stdout.lines().any(|l| l == line), "no {line:?} in {r:#?}");
    }
}

/// `prefect config set` and `prefect profile use` while cfgd runs: cfgd
/// takes each edit in as a revision at once (watchers see it with no `cfg`
/// command), and its own later writes build on the edit instead of
/// reverting it — the value stays, the switch stays, and `cfg set` lands
/// in the profile Prefect switched to.
#[test]
fn prefect_editing_the_profiles_file_while_cfgd_runs_is_taken_in_and_kept() {
    let home = Home::new();
    ok(&home.prefect(&["profile", "create", "dev"]));
    let d = Daemon::builder()
        .profiles_path(home.profiles())
        .start_blocking();
    // (`prefect profile use` checks the API: `dev` runs it ephemerally.)
    ok(&d.cfg(&["-p", "dev", "set", "PREFECT_SERVER_EPHEMERAL_ENABLED=true"]));
    let active = d.cfg(&["status", "-o", "json"]).json()["active_profile"]
        .as_str()
        .expect("an active profile")
        .to_owned();
    // Prefect's first file names no active profile: Prefect's default is
    // in force, for cfgd as for Prefect.
    assert_eq!(active, "ephemeral");
    let w = Spawned::new(d.command().args(["watch", "PREFECT_TASKS_DEFAULT_RETRIES"]));
    w.stdout_until(|l| l.starts_with("Watching "));

    ok(&home.prefect(&["config", "set", "PREFECT_TASK_DEFAULT_RETRIES=7"]));
    let lines = w.stdout_until(|l| l.starts_with("  "));
    assert!(
        lines[0].contains(" UTC: profiles-file "),
        "an edit from outside is a revision of its own: {lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            format!("  PREFECT_TASKS_DEFAULT_RETRIES: '0' -> '7' (from profile '{active}')")
                .as_str()
        )
    );

    // cfgd's next write keeps Prefect's value.
    ok(&d.cfg(&["set", "PREFECT_LOGGING_LEVEL=ERROR"]));
    wait_for_profiles_file(&home.profiles(), "PREFECT_LOGGING_LEVEL", 1);
    let names = "PREFECT_TASK_DEFAULT_RETRIES,PREFECT_LOGGING_LEVEL";
    let read = home.python(READ_BACK, &[&active, names]);
    let read: serde_json::Value = serde_json::from_str(ok(&read)).expect("JSON");
    assert_eq!(read[&active]["PREFECT_TASK_DEFAULT_RETRIES"], 7, "{read}");
    assert_eq!(read[&active]["PREFECT_LOGGING_LEVEL"], "ERROR", "{read}");

    // Prefect switches the active profile; cfgd follows, and a `cfg set`
    // lands in the profile Prefect chose.
    ok(&home.prefect(&["profile", "use", "dev"]));
    let lines = w.stdout_until(|l| l.starts_with("  "));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("  PREFECT_TASKS_DEFAULT_RETRIES: '7' -> '0' (from defaults)"),
        "{lines:?}"
    );
    assert_eq!(
        d.cfg(&["status", "-o", "json"]).json()["active_profile"],
        "dev"
    );
    ok(&d.cfg(&["set", "PREFECT_TASK_DEFAULT_RETRIES=2"]));
    w.stdout_until(|l| l.starts_with("  "));
    wait_for_profiles_file(&home.profiles(), "PREFECT_TASKS_DEFAULT_RETRIES", 2);
    let read = home.python(READ_BACK, &[&format!("dev,{active}"), names]);
    let read: serde_json::Value = serde_json::from_str(ok(&read)).expect("JSON");
    assert_eq!(read["dev"]["PREFECT_TASK_DEFAULT_RETRIES"], 2, "{read}");
    assert_eq!(read[&active]["PREFECT_TASK_DEFAULT_RETRIES"], 7, "{read}");
    let view = home.prefect(&["config", "view"]);
    assert!(
        ok(&view).contains("PREFECT_PROFILE='dev'"),
        "Prefect's own active profile stays dev: {view:#?}"
    );
}
