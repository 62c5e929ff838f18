//! `cfg history` and `cfg rollback`, and the text and JSON of a change
//! (shared with `cfg watch`).

use cfgd_sdk::client::{Change, KeyChange, Origin};
use serde_json::json;

use super::Ctx;
use super::set::write_json;
use crate::args::{HistoryArgs, RollbackArgs};
use crate::error::Failure;
use crate::output::{self, confirm, should_confirm, shown, shown_json, utc};

/// The first line of a change: `Revision 7 at 2026-… UTC: set`, with what
/// caused it (the file, the profile operation, the rollback target).
pub(super) fn change_header(c: &Change) -> String {
    let what = match (c.origin, c.detail.as_str()) {
        (Origin::Set | Origin::Unset | Origin::Startup, _) | (_, "") => c.origin.to_string(),
        (Origin::Rollback, target) => format!("rollback to revision {target}"),
        (origin, detail) => format!("{origin} {detail}"),
    };
    let by = if c.host.is_empty() {
        String::new()
    } else {
        format!(" (on host {})", c.host)
    };
    format!("Revision {} at {}: {what}{by}", c.revision, utc(c.time_ms))
}

/// One setting's change: `  NAME: 'old' -> 'new' (from SOURCE)`.
pub(super) fn key_line(k: &KeyChange, reveal: bool) -> String {
    let mut line = format!(
        "  {}: '{}' -> '{}'",
        k.name,
        shown(&k.old, reveal),
        shown(&k.new, reveal)
    );
    if let Some(s) = &k.new_source {
        line.push_str(&format!(" (from {})", output::source(s)));
    }
    line
}

/// A change as JSON.
pub(super) fn change_json(c: &Change, reveal: bool) -> serde_json::Value {
    json!({
        "revision": c.revision,
        "time_ms": c.time_ms,
        "time": utc(c.time_ms),
        "origin": c.origin.to_string(),
        "detail": c.detail,
        "host": (!c.host.is_empty()).then_some(&c.host),
        "changes": c.changes.iter().map(|k| json!({
            "name": k.name,
            "old": shown_json(&k.old, reveal),
            "old_source": k.old_source.as_ref().map(output::source_json),
            "new": shown_json(&k.new, reveal),
            "new_source": k.new_source.as_ref().map(output::source_json),
        })).collect::<Vec<_>>(),
    })
}

/// `cfg history [-n N]`: the newest N changes, oldest first.
pub(crate) async fn history(ctx: &Ctx<'_>, args: &HistoryArgs) -> Result<(), Failure> {
    let reveal = args.show_secrets;
    if args.limit == 0 {
        return Err(Failure::message("-n must be at least 1."));
    }
    let client = ctx.connect().await?;
    let h = client.history(args.limit, reveal).await?;
    if ctx.json() {
        ctx.out.json(&json!({
            "revision": h.revision,
            "epoch": output::epoch_json(h.epoch),
            "oldest_revision": h.oldest_revision,
            "changes": h.changes.iter().map(|c| change_json(c, reveal)).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if h.changes.is_empty() {
        ctx.out
            .line(&format!("No changes recorded (revision {}).", h.revision));
        return Ok(());
    }
    for c in &h.changes {
        ctx.out.line(&change_header(c));
        for k in &c.changes {
            ctx.out.line(&key_line(k, reveal));
        }
    }
    Ok(())
}

/// `cfg rollback REVISION`.
pub(crate) async fn rollback(ctx: &Ctx<'_>, args: &RollbackArgs) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    if should_confirm(args.yes)
        && !confirm(&format!(
            "Are you sure you want to restore the profiles as they were at revision {}?",
            args.revision
        ))
    {
        return Err(Failure::message("Rollback aborted."));
    }
    let r = client.rollback(args.revision, None).await?;
    if ctx.json() {
        let mut doc = write_json(&r);
        doc["rolled_back_to"] = args.revision.into();
        ctx.out.json(&doc);
        return Ok(());
    }
    if !r.changed {
        ctx.out.success(&format!(
            "Nothing to roll back: the profiles of revision {} are already in force.",
            args.revision
        ));
        return Ok(());
    }
    ctx.out.success(&format!(
        "Rolled back to revision {}; now at revision {}.",
        args.revision, r.revision
    ));
    for a in &r.applied {
        let Some(e) = &a.effective else { continue };
        ctx.out.line(&format!(
            "  {}='{}' (from {})",
            a.name,
            shown(&e.value, false),
            output::source(&e.source)
        ));
    }
    ctx.out
        .success(&format!("Updated profile '{}'.", r.profile));
    Ok(())
}

#[cfg(test)]
mod tests {
    use cfgd_sdk::Shown;
    use cfgd_settings::{LayerKind, Source, Value};

    use super::*;

    fn change(origin: Origin, detail: &str) -> Change {
        Change {
            revision: 7,
            time_ms: 1_700_000_000_000,
            origin,
            detail: detail.into(),
            host: String::new(),
            changes: vec![KeyChange {
                name: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
                old: Shown::Value(Value::Integer(0)),
                old_source: Some(Source::defaults()),
                new: Shown::Value(Value::Integer(3)),
                new_source: Some(Source::profile("default")),
                secret: false,
            }],
        }
    }

    #[test]
    fn a_change_reads_revision_origin_and_each_key() {
        let c = change(Origin::Set, "PREFECT_TASKS_DEFAULT_RETRIES");
        assert_eq!(
            change_header(&c),
            "Revision 7 at 2023-11-14 22:13:20 UTC: set"
        );
        assert_eq!(
            key_line(&c.changes[0], false),
            "  PREFECT_TASKS_DEFAULT_RETRIES: '0' -> '3' (from profile 'default')"
        );
        assert_eq!(
            change_header(&change(Origin::File, "config/a.toml")),
            "Revision 7 at 2023-11-14 22:13:20 UTC: file config/a.toml"
        );
        assert_eq!(
            change_header(&change(Origin::Rollback, "3")),
            "Revision 7 at 2023-11-14 22:13:20 UTC: rollback to revision 3"
        );
    }

    #[test]
    fn secrets_stay_masked_unless_revealed() {
        let k = KeyChange {
            name: "PREFECT_API_KEY".into(),
            old: Shown::Unset,
            old_source: Some(Source::defaults()),
            new: Shown::Value(Value::Secret("s3cret".into())),
            new_source: Some(Source::var(LayerKind::Env, "PREFECT_API_KEY")),
            secret: true,
        };
        assert_eq!(
            key_line(&k, false),
            "  PREFECT_API_KEY: 'None' -> '********' (from env PREFECT_API_KEY)"
        );
        assert!(key_line(&k, true).contains("'s3cret'"));
    }
}
