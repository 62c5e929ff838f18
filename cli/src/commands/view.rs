//! `cfg view` and `cfg get`: effective values with their sources.

use cfgd_sdk::Setting;
use cfgd_settings::LayerKind;
use serde_json::json;

use super::Ctx;
use crate::args::{GetArgs, ViewArgs};
use crate::error::Failure;
use crate::output::{self, shown, shown_json};

/// `cfg view`: Prefect's `prefect config view`.
pub(crate) async fn view(ctx: &Ctx<'_>, args: &ViewArgs) -> Result<(), Failure> {
    let show_defaults = args.show_defaults;
    let show_sources = !args.hide_sources;
    let reveal = args.show_secrets;
    let client = ctx.connect().await?;
    let snapshot = client.snapshot(&[], reveal).await?;
    let mut rows: Vec<&Setting> = snapshot
        .settings
        .iter()
        .filter(|s| show_defaults || s.source.layer != LayerKind::Defaults)
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    if ctx.json() {
        let settings: Vec<serde_json::Value> = rows
            .iter()
            .map(|s| {
                let mut row = json!({"name": s.name, "value": shown_json(&s.value, reveal)});
                if show_sources {
                    row["source"] = output::source_json(&s.source);
                }
                row
            })
            .collect();
        ctx.out.json(&json!({
            "profile": snapshot.active_profile,
            "settings": settings,
        }));
        return Ok(());
    }
    ctx.out
        .line(&format!("PREFECT_PROFILE='{}'", snapshot.active_profile));
    for s in rows {
        let mut line = format!("{}='{}'", s.name, shown(&s.value, reveal));
        if show_sources {
            line.push_str(&format!(" (from {})", output::source(&s.source)));
        }
        ctx.out.line(&line);
    }
    Ok(())
}

/// `cfg get NAME`: the value, where it comes from, and what it overrides.
pub(crate) async fn get(ctx: &Ctx<'_>, args: &GetArgs) -> Result<(), Failure> {
    let reveal = args.show_secrets;
    let client = ctx.connect().await?;
    let s = client.get(&args.name, reveal).await?;
    if ctx.json() {
        ctx.out.json(&json!({
            "name": s.name,
            "value": shown_json(&s.value, reveal),
            "source": output::source_json(&s.source),
            "secret": s.secret,
            "overrides": s.shadowed.iter().map(|(source, value)| json!({
                "source": output::source_json(source),
                "value": shown_json(value, reveal),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    ctx.out.line(&format!(
        "{}='{}' (from {})",
        s.name,
        shown(&s.value, reveal),
        output::source(&s.source)
    ));
    for (source, value) in &s.shadowed {
        ctx.out.line(&format!(
            "  overrides {} (value '{}')",
            output::source(source),
            shown(value, reveal)
        ));
    }
    Ok(())
}
