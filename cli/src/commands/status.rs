//! `cfg status`: where the daemon is and what it has loaded, with every
//! config file whose current content is not in force and why.

use serde_json::json;

use super::Ctx;
use crate::error::Failure;
use crate::output::utc;

/// `cfg status`.
pub(crate) async fn status(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let s = client.status().await?;
    if ctx.json() {
        ctx.out.json(&json!({
            "endpoint": client.endpoint(),
            "version": s.version,
            "listen": s.listen,
            "revision": s.revision,
            "epoch": crate::output::epoch_json(s.epoch),
            "oldest_revision": s.oldest_revision,
            "active_profile": s.active_profile,
            "config_dir": s.config_dir,
            "state_dir": s.state_dir,
            "profiles_path": s.profiles_path,
            "settings": s.settings,
            "watchers": s.watchers,
            "started_ms": s.started_ms,
            "reload": {
                "reloads": s.reload.reloads,
                "error": s.reload.error,
                "failed_attempts": s.reload.failed_attempts,
                "next_attempt_ms": (s.reload.next_attempt_ms > 0).then_some(s.reload.next_attempt_ms),
            },
            "connections": {
                "open": s.connections.open,
                "limit": s.connections.limit,
                "refused": s.connections.refused,
                "closed_idle": s.connections.closed_idle,
            },
            "store": {
                "kind": s.store.kind,
                "endpoints": s.store.endpoints,
                "state": if s.store.degraded_since_ms.is_some() { "degraded" } else { "ok" },
                "degraded_since_ms": s.store.degraded_since_ms,
                "error": s.store.error,
                "last_contact_ms": s.store.last_contact_ms,
                "shared_revision": s.store.shared_revision,
                "head_revision": s.store.head_revision,
                "host": s.store.host,
            },
            "files": s.files.iter().map(|f| json!({
                "path": f.path,
                "kind": f.kind,
                "error": (!f.error.is_empty()).then_some(&f.error),
                "line": (f.error_line > 0).then_some(f.error_line),
                "warnings": f.warnings,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let out = ctx.out;
    out.success(&format!(
        "cfgd {} is running at {} (endpoint {}).",
        s.version,
        s.listen,
        client.endpoint()
    ));
    out.line(&format!(
        "Revision:       {} (history from revision {})",
        s.revision, s.oldest_revision
    ));
    out.line(&format!("Epoch:          {}", s.epoch));
    out.line(&format!("Active profile: {}", s.active_profile));
    out.line(&format!("Settings:       {} declared", s.settings));
    out.line(&format!("Watchers:       {}", s.watchers));
    let c = &s.connections;
    out.line(&format!(
        "Connections:    {} open (limit {}; {} refused at the limit, {} closed idle)",
        c.open, c.limit, c.refused, c.closed_idle
    ));
    out.line(&format!("Started:        {}", utc(s.started_ms)));
    out.line(&format!("Config dir:     {}", s.config_dir));
    out.line(&format!("State dir:      {}", s.state_dir));
    out.line(&format!("Profiles file:  {}", s.profiles_path));
    if let Some(error) = &s.reload.error {
        out.line(&format!(
            "Config reload:  NOT APPLIED after {} attempt(s); next attempt {}",
            s.reload.failed_attempts,
            utc(s.reload.next_attempt_ms)
        ));
        out.line(&format!("    {error}"));
        out.warn(
            "The config files changed but are not in force yet; cfgd retries by itself \
             (the values served are those of the last reload that was applied).",
        );
    }
    store(ctx, &s.store);
    if s.files.is_empty() {
        out.line("Config files:   none");
        return Ok(());
    }
    out.line("Config files:");
    let bad = s.files.iter().filter(|f| !f.error.is_empty()).count();
    for f in &s.files {
        if f.error.is_empty() {
            out.line(&format!("  {} ({})", f.path, f.kind));
            for w in &f.warnings {
                out.line(&format!("    warning: {w}"));
            }
            continue;
        }
        let at = if f.error_line > 0 {
            format!(", line {}", f.error_line)
        } else {
            String::new()
        };
        out.line(&format!("  {} ({}): NOT APPLIED{at}", f.path, f.kind));
        for line in f.error.lines() {
            out.line(&format!("    {line}"));
        }
    }
    if bad > 0 {
        out.warn(&format!(
            "{bad} config file(s) have errors; their last good content (if any) stays in force. \
             Fix them and cfgd reloads them; `cfg validate` checks them offline."
        ));
    }
    Ok(())
}

/// The store's lines: which store, and for the etcd store whether shared
/// writes go through.
fn store(ctx: &Ctx<'_>, s: &cfgd_sdk::client::StoreStatus) {
    let out = ctx.out;
    if s.kind != "etcd" {
        out.line("Store:          file (the state dir)");
        return;
    }
    out.line(&format!(
        "Store:          etcd ({}), host id {}",
        s.endpoints.join(", "),
        s.host
    ));
    out.line(&format!(
        "Shared:         revision {} applied (newest seen {})",
        s.shared_revision, s.head_revision
    ));
    if let Some(since) = s.degraded_since_ms {
        out.warn(&format!(
            "The shared store is DEGRADED since {}: shared writes are refused; reads, watches and hot reload go on.{}",
            utc(since),
            s.error.as_ref().map(|e| format!(" {e}")).unwrap_or_default()
        ));
    } else if let Some(at) = s.last_contact_ms {
        out.line(&format!("Last contact:   {}", utc(at)));
    }
}
