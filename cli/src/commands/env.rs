//! `cfg env` and `cfg run`: the effective settings as an environment, to
//! print or to run a command (a Prefect flow, `prefect` itself) in.
//!
//! What goes in: every setting whose effective value comes from a layer
//! (profile, config files, `.env`, the daemon's environment) — not the
//! defaults (`--all` prints those too). A default exported into a child
//! would pin it there: it would beat the child's own `.env` or
//! `prefect.toml` for no reason, and freeze a default Prefect computes
//! (paths under `PREFECT_HOME`). Values take the form Prefect reads from
//! its environment ([`cfgd_settings::value::to_env`]).

use std::collections::BTreeMap;
use std::ffi::OsString;

use cfgd_sdk::{Setting, Shown};
use cfgd_settings::{Catalog, LayerKind, MASK};
use serde_json::json;

use super::Ctx;
use crate::args::{EnvArgs, EnvFormat, RunArgs};
use crate::error::Failure;

/// The effective settings as `(name, value)`, sorted by name: those some
/// layer sets (all with `all`), secrets in clear only with `reveal`.
fn variables(
    catalog: &Catalog,
    settings: &[Setting],
    all: bool,
    reveal: bool,
) -> Vec<(String, String)> {
    settings
        .iter()
        .filter(|s| all || s.source.layer != LayerKind::Defaults)
        .filter_map(|s| {
            let text = match (&s.value, catalog.get(&s.name)) {
                (Shown::Unset, _) => return None,
                (Shown::Masked, _) => MASK.to_owned(),
                (Shown::Value(_), _) if s.secret && !reveal => MASK.to_owned(),
                (Shown::Value(v), Some(entry)) => cfgd_settings::value::to_env(entry, v),
                (Shown::Value(v), None) => v.to_string(),
            };
            Some((s.name.clone(), text))
        })
        .collect()
}

/// A value as a `.env` line's right-hand side: bare when it is plain,
/// else double-quoted with `\`, `"` and newlines escaped (python-dotenv,
/// which Prefect uses, and dotenvy read both).
fn dotenv_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.,:/+@%=[]{}*".contains(&b));
    if plain {
        return v.to_owned();
    }
    let escaped = v
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// A value for a POSIX shell: single-quoted, `'` as `'\''`.
fn shell_value(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// `cfg env [--format dotenv|shell|json] [--all] [--show-secrets]`.
pub(crate) async fn env(ctx: &Ctx<'_>, args: &EnvArgs) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let catalog = client.catalog_index().await?;
    let snapshot = client.snapshot(&[], args.show_secrets).await?;
    let vars = variables(&catalog, &snapshot.settings, args.all, args.show_secrets);
    let format = if ctx.json() {
        EnvFormat::Json
    } else {
        args.format
    };
    match format {
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> =
                vars.into_iter().map(|(k, v)| (k, v.into())).collect();
            ctx.out.json(&json!(map));
        }
        EnvFormat::Dotenv => {
            for (k, v) in vars {
                ctx.out.line(&format!("{k}={}", dotenv_value(&v)));
            }
        }
        EnvFormat::Shell => {
            for (k, v) in vars {
                ctx.out.line(&format!("export {k}={}", shell_value(&v)));
            }
        }
    }
    Ok(())
}

/// The variables `cfg run` adds to `inherited`: each setting some layer
/// sets, unless `inherited` already names it (canonical or alias).
fn run_env(
    catalog: &Catalog,
    settings: &[Setting],
    inherited: &BTreeMap<OsString, OsString>,
) -> Vec<(String, String)> {
    variables(catalog, settings, false, true)
        .into_iter()
        .filter(|(name, _)| {
            let names: Vec<&str> = match catalog.get(name) {
                Some(e) => e.names().collect(),
                None => vec![name.as_str()],
            };
            !names
                .iter()
                .any(|n| inherited.contains_key(&OsString::from(n)))
        })
        .collect()
}

/// `cfg run -- CMD ARGS…`: replaces `cfg` with CMD, its environment
/// `cfg`'s own plus the effective settings, so its exit code (and signals)
/// are CMD's.
pub(crate) async fn run(ctx: &Ctx<'_>, args: &RunArgs) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let catalog = client.catalog_index().await?;
    let snapshot = client.snapshot(&[], true).await?;
    let inherited: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let added = run_env(&catalog, &snapshot.settings, &inherited);
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Failure::message("Give the command to run after `--`."))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest).envs(added);
    exec(cmd, program)
}

#[cfg(unix)]
fn exec(mut cmd: std::process::Command, program: &OsString) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt;
    // Returns only when the command could not be started.
    let e = cmd.exec();
    Err(Failure::Message(format!(
        "Cannot run {}: {e}.",
        program.to_string_lossy()
    )))
}

#[cfg(not(unix))]
fn exec(mut cmd: std::process::Command, program: &OsString) -> Result<(), Failure> {
    let status = cmd
        .status()
        .map_err(|e| Failure::Message(format!("Cannot run {}: {e}.", program.to_string_lossy())))?;
    std::process::exit(status.code().unwrap_or(1));
}

#[cfg(test)]
mod tests {
    use cfgd_settings::{Delays, Source, Value};

    use super::*;

    fn setting(name: &str, value: Value, source: Source) -> Setting {
        Setting {
            name: name.into(),
            secret: matches!(value, Value::Secret(_)),
            value: Shown::Value(value),
            source,
            shadowed: Vec::new(),
        }
    }

    fn settings() -> Vec<Setting> {
        vec![
            setting(
                "PREFECT_API_KEY",
                Value::Secret("pnu_x".into()),
                Source::profile("default"),
            ),
            setting(
                "PREFECT_FLOWS_DEFAULT_RETRIES",
                Value::Integer(0),
                Source::defaults(),
            ),
            setting(
                "PREFECT_TASKS_DEFAULT_RETRIES",
                Value::Integer(2),
                Source::profile("default"),
            ),
            setting(
                "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
                Value::Delays(Delays::list(vec![1.0, 10.0]).unwrap()),
                Source::file(LayerKind::File, "c/a.toml", Some(2)),
            ),
        ]
    }

    #[test]
    fn only_set_settings_in_prefects_env_forms_secrets_masked() {
        let c = Catalog::builtin();
        assert_eq!(
            variables(&c, &settings(), false, false),
            [
                ("PREFECT_API_KEY".to_owned(), MASK.to_owned()),
                ("PREFECT_TASKS_DEFAULT_RETRIES".to_owned(), "2".to_owned()),
                (
                    "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS".to_owned(),
                    "[1,10]".to_owned()
                ),
            ]
        );
        assert_eq!(variables(&c, &settings(), true, true).len(), 4);
        assert_eq!(variables(&c, &settings(), false, true)[0].1, "pnu_x");
    }

    #[test]
    fn run_leaves_what_the_caller_set_under_any_name() {
        let c = Catalog::builtin();
        let inherited = BTreeMap::from([(
            OsString::from("PREFECT_TASK_DEFAULT_RETRIES"),
            OsString::from("5"),
        )]);
        let added = run_env(&c, &settings(), &inherited);
        let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "PREFECT_API_KEY",
                "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"
            ]
        );
        assert_eq!(added[0].1, "pnu_x", "the child gets the secret itself");
    }

    #[test]
    fn quoting() {
        assert_eq!(dotenv_value("2"), "2");
        assert_eq!(dotenv_value("[1,10]"), "[1,10]");
        assert_eq!(dotenv_value("a b"), "\"a b\"");
        assert_eq!(dotenv_value(r#"{"a": "b"}"#), r#""{\"a\": \"b\"}""#);
        assert_eq!(dotenv_value(""), "\"\"");
        assert_eq!(shell_value("it's"), r"'it'\''s'");
    }
}
