//! `cfg set` and `cfg unset`: writes to the active profile, all or nothing,
//! and a warning wherever a higher layer keeps the written value from taking
//! effect.

use cfgd_sdk::client::{Applied, WriteResult};
use cfgd_sdk::{Assign, Code, Error, Setting};
use cfgd_settings::{Catalog, LayerKind, Source};
use serde_json::json;

use super::Ctx;
use crate::args::{SetArgs, UnsetArgs};
use crate::assign::{self, Assignment};
use crate::error::Failure;
use crate::output::{self, confirm, should_confirm, shown, shown_json};

/// `cfg set NAME=VALUE…`.
pub(crate) async fn set(ctx: &Ctx<'_>, args: &SetArgs) -> Result<(), Failure> {
    let assignments = match args.assignments.as_slice() {
        [name] if assign::is_name(name) => vec![Assignment {
            name: name.clone(),
            value: value_from_stdin(name)?,
        }],
        words => assign::parse(words).map_err(|e| Failure::message(e.to_string()))?,
    };
    let client = ctx.connect().await?;
    let batch: Vec<(String, Assign)> = assignments
        .iter()
        .map(|a| (a.name.clone(), Assign::Raw(a.value.clone())))
        .collect();
    let result = match client.set(&batch, None).await {
        Ok(r) => r,
        Err(Error::Rejected {
            code: Code::InvalidArgument,
            message,
        }) => return Err(Failure::Message(validation_report(&message, &assignments))),
        Err(e) => return Err(e.into()),
    };
    if ctx.json() {
        ctx.out.json(&write_json(&result));
        return Ok(());
    }
    for a in &result.applied {
        ctx.out.success(&format!(
            "Set '{}' to '{}'.",
            a.given_name,
            shown(&a.value, false)
        ));
        if let Some(warning) = a
            .effective
            .as_ref()
            .and_then(|e| set_warning(&a.given_name, e))
        {
            ctx.out.warn(&warning);
        }
    }
    ctx.out
        .success(&format!("Updated profile '{}'.", result.profile));
    Ok(())
}

/// The value of `cfg set NAME` (no `=`): asked for without echo when stdin
/// is a terminal, else read from stdin to its end with one trailing newline
/// dropped (`printf %s "$KEY" | cfg set PREFECT_API_KEY`, or `< key.txt`),
/// so a secret stays out of the process list and the shell's history.
fn value_from_stdin(name: &str) -> Result<String, Failure> {
    use std::io::{IsTerminal, Read};
    if std::io::stdin().is_terminal() {
        return crate::prompt::hidden(&format!("Value for {name} (not echoed): "))
            .map_err(|e| Failure::Message(format!("Cannot read the value for {name}: {e}.")));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        Failure::Message(format!("Cannot read the value for {name} from stdin: {e}."))
    })?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(text.to_owned())
}

/// `cfg unset NAME…`.
pub(crate) async fn unset(ctx: &Ctx<'_>, args: &UnsetArgs) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    if should_confirm(args.yes) {
        // Check first, so nobody is asked about something that cannot be done.
        let profile = client.inspect_profile(ctx.profile(), false).await?;
        let mut problems = Vec::new();
        for name in &args.names {
            match client.get(name, false).await {
                Ok(s) if profile.entries.iter().any(|(n, _, _)| *n == s.name) => {}
                Ok(_) => problems.push(format!(
                    "'{name}' is not set in profile '{}'.",
                    profile.name
                )),
                Err(Error::Rejected { message, .. }) => problems.push(message),
                Err(e) => return Err(e.into()),
            }
        }
        if !problems.is_empty() {
            return Err(Failure::Message(problems.join("\n")));
        }
        let list: Vec<String> = args.names.iter().map(|n| format!("'{n}'")).collect();
        let question = format!(
            "Are you sure you want to unset the following setting(s): {}?",
            list.join(", ")
        );
        if !confirm(&question) {
            return Err(Failure::message("Unset aborted."));
        }
    }
    let result = client.unset(&args.names, None).await?;
    if ctx.json() {
        ctx.out.json(&write_json(&result));
        return Ok(());
    }
    for a in &result.applied {
        ctx.out.success(&format!("Unset '{}'.", a.given_name));
        if let Some(e) = a.effective.as_ref().filter(|e| e.shadows_profile()) {
            ctx.out.warn(&format!(
                "'{}' is also set by {} (value '{}'), which stays in force.",
                a.given_name,
                output::source(&e.source),
                shown(&e.value, false)
            ));
        }
    }
    ctx.out
        .success(&format!("Updated profile '{}'.", result.profile));
    Ok(())
}

/// The layers above the profile that decide `effective`'s value, highest
/// (the one in force) first, with their values.
fn overriding_sources(effective: &Setting) -> Vec<(&Source, String)> {
    if !effective.shadows_profile() {
        return Vec::new();
    }
    std::iter::once((&effective.source, &effective.value))
        .chain(
            effective
                .shadowed
                .iter()
                .filter(|(s, _)| s.layer > LayerKind::Profile)
                .map(|(s, v)| (s, v)),
        )
        .map(|(s, v)| (s, shown(v, false)))
        .collect()
}

fn overriding(effective: &Setting) -> Vec<(String, String)> {
    overriding_sources(effective)
        .into_iter()
        .map(|(s, v)| (output::source(s), v))
        .collect()
}

/// The warning for a `cfg set` of `given` that higher layers override, or
/// `None` when the new value is in force.
fn set_warning(given: &str, effective: &Setting) -> Option<String> {
    let layers = overriding(effective);
    let (first, rest) = layers.split_first()?;
    let mut text = format!("{given} is overridden by {} (value '{}')", first.0, first.1);
    for (source, value) in rest {
        text.push_str(&format!(" and by {source} (value '{value}')"));
    }
    let pronoun = if rest.is_empty() { "it is" } else { "they are" };
    text.push_str(&format!(
        "; the new value will not take effect until {pronoun} removed."
    ));
    Some(text)
}

fn applied_json(a: &Applied) -> serde_json::Value {
    let effective = a.effective.as_ref();
    json!({
        "name": a.given_name,
        "canonical": a.name,
        "value": shown_json(&a.value, false),
        "effective": effective.map(|e| json!({
            "value": shown_json(&e.value, false),
            "source": output::source_json(&e.source),
        })),
        "overridden_by": effective.map(overriding_sources).unwrap_or_default().into_iter()
            .map(|(source, value)| json!({"source": output::source_json(source), "value": value}))
            .collect::<Vec<_>>(),
    })
}

/// A write's answer as JSON (shared by set, unset and rollback).
pub(super) fn write_json(r: &WriteResult) -> serde_json::Value {
    json!({
        "profile": r.profile,
        "revision": r.revision,
        "epoch": output::epoch_json(r.epoch),
        "changed": r.changed,
        "settings": r.applied.iter().map(applied_json).collect::<Vec<_>>(),
    })
}

/// One problem the daemon reported for a `Set`.
#[derive(Debug, PartialEq, Eq)]
enum Problem {
    /// A value that does not fit its setting: the canonical name and what
    /// was expected.
    Invalid { name: String, expected: String },
    /// Anything else (an unknown name with its suggestion, a limit), as said.
    Other(String),
}

/// Reads one line of the daemon's refusal. Its invalid values read
/// `Invalid value for NAME from SOURCE: EXPECTED` (the settings model's
/// wording, where SOURCE is the profile, whose name holds no ": ").
fn problem(line: &str) -> Problem {
    let parsed = line
        .strip_prefix("Invalid value for ")
        .and_then(|rest| rest.split_once(" from "))
        .and_then(|(name, rest)| {
            let (_, expected) = rest.split_once(": ")?;
            Some(Problem::Invalid {
                name: name.to_owned(),
                expected: expected.to_owned(),
            })
        });
    parsed.unwrap_or_else(|| Problem::Other(line.to_owned()))
}

/// Prefect's report of a refused `set`: each invalid setting as
/// `Validation error(s) for setting NAME`, a blank line and ` - <why>`
/// lines; other problems (unknown names with their suggestion) as the daemon
/// said them. NAME is the name as typed where it can be told from the
/// canonical one.
fn validation_report(message: &str, typed: &[Assignment]) -> String {
    let mut invalid: Vec<(String, Vec<String>)> = Vec::new();
    let mut other = Vec::new();
    for line in message.lines().filter(|l| !l.trim().is_empty()) {
        match problem(line) {
            Problem::Invalid { name, expected } => {
                match invalid.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, list)) => list.push(expected),
                    None => invalid.push((name, vec![expected])),
                }
            }
            Problem::Other(text) => other.push(text),
        }
    }
    let catalog = (!invalid.is_empty()).then(Catalog::builtin);
    let typed_name = |canonical: &str| -> String {
        typed
            .iter()
            .find(|a| {
                a.name.eq_ignore_ascii_case(canonical)
                    || catalog
                        .as_ref()
                        .and_then(|c| c.get(&a.name))
                        .is_some_and(|e| e.name == canonical)
            })
            .map_or_else(|| canonical.to_owned(), |a| a.name.clone())
    };
    let mut blocks = other;
    for (name, reasons) in invalid {
        let mut block = format!("Validation error(s) for setting {}\n", typed_name(&name));
        for r in reasons {
            block.push_str(&format!("\n - {r}"));
        }
        blocks.push(block);
    }
    blocks.join("\n")
}

#[cfg(test)]
mod tests {
    use cfgd_sdk::Shown;
    use cfgd_settings::{Source, Value};

    use super::*;

    fn setting(source: Source, value: i64, shadowed: Vec<(Source, Shown)>) -> Setting {
        Setting {
            name: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
            value: Shown::Value(Value::Integer(value)),
            source,
            shadowed,
            secret: false,
        }
    }

    #[test]
    fn no_warning_when_the_profile_decides() {
        let s = setting(
            Source::profile("default"),
            3,
            vec![(Source::defaults(), Shown::Value(Value::Integer(0)))],
        );
        assert_eq!(set_warning("X", &s), None);
    }

    #[test]
    fn warning_names_every_overriding_layer_in_order() {
        let s = setting(
            Source::var(LayerKind::Env, "PREFECT_TASK_DEFAULT_RETRIES"),
            5,
            vec![(Source::profile("default"), Shown::Value(Value::Integer(3)))],
        );
        assert_eq!(
            set_warning("PREFECT_TASKS_DEFAULT_RETRIES", &s).unwrap(),
            "PREFECT_TASKS_DEFAULT_RETRIES is overridden by env PREFECT_TASK_DEFAULT_RETRIES (value '5'); the new value will not take effect until it is removed."
        );
        let s = setting(
            Source::var(LayerKind::Env, "X"),
            5,
            vec![
                (
                    Source::file(LayerKind::File, "c/a.toml", Some(2)),
                    Shown::Value(Value::Integer(4)),
                ),
                (Source::profile("default"), Shown::Value(Value::Integer(3))),
            ],
        );
        assert_eq!(
            set_warning("X", &s).unwrap(),
            "X is overridden by env X (value '5') and by config file c/a.toml, line 2 (value '4'); the new value will not take effect until they are removed."
        );
    }

    #[test]
    fn refusals_read_as_prefect_reports_them() {
        let typed = vec![
            Assignment {
                name: "PREFECT_TASK_DEFAULT_RETRIES".into(),
                value: "x".into(),
            },
            Assignment {
                name: "PREFECT_FLOWS_DEFAULT_RETRIES".into(),
                value: "-1".into(),
            },
        ];
        let message = "Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from profile 'default': expected an integer, got \"x\"\n\
            Unknown setting name 'PREFECT_TASK_DEFAULT_RETRYS'. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?\n\
            Invalid value for PREFECT_FLOWS_DEFAULT_RETRIES from profile 'default': expected at least 0, got -1";
        assert_eq!(
            validation_report(message, &typed),
            "Unknown setting name 'PREFECT_TASK_DEFAULT_RETRYS'. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?\n\
             Validation error(s) for setting PREFECT_TASK_DEFAULT_RETRIES\n\n - expected an integer, got \"x\"\n\
             Validation error(s) for setting PREFECT_FLOWS_DEFAULT_RETRIES\n\n - expected at least 0, got -1"
        );
        assert_eq!(
            problem("the batch is empty: give at least one setting"),
            Problem::Other("the batch is empty: give at least one setting".into())
        );
    }
}
