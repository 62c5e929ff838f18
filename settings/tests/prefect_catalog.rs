//! The embedded Prefect catalogue is Prefect 3.9.1's own: the generator,
//! re-run on the Prefect in the venv, reproduces it byte for byte, and a
//! sample of names, types, defaults and secrecy agrees with what Prefect
//! itself says. Needs the venv `.ci/deps.sh` makes; fails without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use cfgd_settings::catalog::{PREFECT_CATALOG, PREFECT_VERSION};
use cfgd_settings::{Catalog, Kind, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// The venv's python, or a failure that says how to make it.
fn python() -> PathBuf {
    let venv = std::env::var_os("CFGD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run .ci/deps.sh (it creates the venv with prefect=={PREFECT_VERSION})",
        python.display()
    );
    python
}

/// Runs `python -c code` in a clean environment; its stdout.
fn run_python(args: &[&str]) -> String {
    let out = Command::new(python())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .current_dir(repo())
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "python {args:?} failed: {}\n(run .ci/deps.sh if prefect=={PREFECT_VERSION} is missing)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_generator_reproduces_the_committed_catalogue() {
    let generated = run_python(&["tools/prefect-catalog/generate.py", "--stdout"]);
    if generated != PREFECT_CATALOG {
        let first = generated
            .lines()
            .zip(PREFECT_CATALOG.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "(lengths differ)".to_owned(),
                |i| format!("line {}", i + 1),
            );
        panic!(
            "config/prefect/catalog.toml differs from what tools/prefect-catalog/generate.py makes now, first at {first}; re-run the generator"
        );
    }
}

const SAMPLE: &str = r#"
import json, warnings
warnings.simplefilter("ignore")
from prefect.settings.models.root import Settings
from prefect.settings.legacy import _get_settings_fields, _get_valid_setting_names
fields = _get_settings_fields(Settings)
canonical = {s.name for s in fields.values()}
names = sorted(_get_valid_setting_names(Settings))
sample = {}
for name in ["PREFECT_TASKS_DEFAULT_RETRIES", "PREFECT_API_KEY", "PREFECT_API_URL",
             "PREFECT_LOGGING_LEVEL", "PREFECT_CLIENT_MAX_RETRIES",
             "PREFECT_SERVER_EVENTS_RETENTION_PERIOD", "PREFECT_API_REQUEST_TIMEOUT",
             "PREFECT_SERVER_DATABASE_PASSWORD", "PREFECT_CLIENT_METRICS_ENABLED",
             "PREFECT_SERVER_API_PORT"]:
    s = fields[name]
    d = s.default()
    if hasattr(d, "total_seconds"):
        d = d.total_seconds()
    sample[name] = {"accessor": s.accessor, "default": d, "secret": s.is_secret}
print(json.dumps({"canonical": len(canonical), "names": names, "sample": sample}))
"#;

#[test]
fn the_catalogue_matches_prefects_model() {
    let said: serde_json::Value =
        serde_json::from_str(&run_python(&["-c", SAMPLE])).expect("JSON from python");
    let prefect = Catalog::prefect();
    assert_eq!(prefect.entries().len(), 227);
    assert_eq!(said["canonical"], 227);
    // Every name Prefect accepts (canonical and aliases) is known, and no other.
    let mut ours: Vec<&str> = prefect.entries().iter().flat_map(|e| e.names()).collect();
    ours.sort_unstable();
    let theirs: Vec<&str> = said["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("a name"))
        .collect();
    assert_eq!(ours, theirs);
    for (name, facts) in said["sample"].as_object().expect("sample") {
        let e = prefect.get(name).expect("a sampled name");
        assert_eq!(e.name, *name);
        assert_eq!(e.path.as_deref(), facts["accessor"].as_str(), "{name}");
        assert_eq!(e.is_secret(), facts["secret"].as_bool().unwrap(), "{name}");
        let default = match &e.default {
            None => serde_json::Value::Null,
            Some(Value::Integer(i)) => (*i).into(),
            Some(Value::Number(n)) => (*n).into(),
            Some(Value::Boolean(b)) => (*b).into(),
            Some(Value::Delays(d)) => d.seconds()[0].into(),
            Some(other) => other.to_string().into(),
        };
        let theirs = &facts["default"];
        let same = match (theirs.as_f64(), default.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => *theirs == default,
        };
        assert!(same, "{name}: Prefect's default {theirs}, ours {default}");
    }
    // A sample of types.
    let kind = |n: &str| prefect.get(n).unwrap().kind;
    assert_eq!(kind("PREFECT_LOGGING_LEVEL"), Kind::Choice);
    assert_eq!(kind("PREFECT_API_URL"), Kind::Url);
    assert_eq!(kind("PREFECT_HOME"), Kind::Path);
    assert_eq!(
        kind("PREFECT_SERVER_EVENTS_RETENTION_PERIOD"),
        Kind::Duration
    );
    assert_eq!(kind("PREFECT_CLIENT_RETRY_EXTRA_CODES"), Kind::List);
    assert_eq!(kind("PREFECT_CLIENT_CUSTOM_HEADERS"), Kind::Json);
    assert_eq!(
        kind("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"),
        Kind::Delays
    );
    assert_eq!(
        kind("PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS"),
        Kind::Delays
    );
    let retries = prefect.get("PREFECT_TASK_DEFAULT_RETRIES").unwrap();
    assert_eq!((retries.kind, retries.min), (Kind::Integer, Some(0.0)));
    assert!(
        prefect
            .get("PREFECT_PROFILES_PATH")
            .unwrap()
            .computed
            .is_some()
    );
    // cfgd's extensions sit beside Prefect's, in the built-in catalogue only.
    assert!(
        prefect
            .get("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR")
            .is_none()
    );
    assert!(
        Catalog::builtin()
            .get("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR")
            .is_some()
    );
}

#[test]
fn every_default_fits_its_own_type() {
    // Parsing checks the defaults against types and bounds; a default that
    // did not fit would have failed `Catalog::prefect`.
    for e in Catalog::builtin().entries() {
        if let Some(v) = &e.default {
            let back = cfgd_settings::value::from_toml(e, &cfgd_settings::value::to_profile(e, v));
            assert_eq!(back.as_ref(), Ok(v), "{}", e.name);
        }
    }
}
