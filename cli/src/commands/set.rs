//! `cfg set` and `cfg unset`: writes to the active profile, all or nothing,
//! and a warning wherever a higher layer keeps the written value from taking
//! effect.

use cfgd_sdk::client::{Applied, WriteResult};
use cfgd_sdk::{Assign, Error, Setting};
use cfgd_settings::{LayerKind, Source};
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
    let timeout = args
        .wait
        .as_deref()
        .map(super::fleet::parse_timeout)
        .transpose()?;
    let client = ctx.connect().await?;
    let batch: Vec<(String, Assign)> = assignments
        .iter()
        .map(|a| (a.name.clone(), Assign::Raw(a.value.clone())))
        .collect();
    // A refusal reads as Prefect's report (see `Failure::from`).
    let result = client.set(&batch, None).await?;
    let waited = match timeout {
        Some(t) => Some(super::fleet::wait(&client, result.revision, t).await?),
        None => None,
    };
    if ctx.json() {
        let mut doc = write_json(&result);
        if let Some((fleet, behind)) = &waited {
            doc["fleet"] = json!({
                "applied": behind.is_empty(),
                "hosts": fleet.hosts.len(),
                "waiting_for": behind,
            });
        }
        ctx.out.json(&doc);
        return match waited {
            Some((_, behind)) if !behind.is_empty() => Err(Failure::Reported),
            _ => Ok(()),
        };
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
    match waited {
        None => Ok(()),
        Some((fleet, behind)) if behind.is_empty() => {
            ctx.out.success(&super::fleet::applied_line(&fleet));
            Ok(())
        }
        Some((_, behind)) => Err(Failure::Message(format!(
            "The change (revision {}) is not applied everywhere within {}:\n  {}",
            result.revision,
            args.wait.as_deref().unwrap_or_default(),
            behind.join("\n  ")
        ))),
    }
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
                Err(e @ Error::Rejected { .. }) => problems.push(Failure::from(e).to_string()),
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
}
