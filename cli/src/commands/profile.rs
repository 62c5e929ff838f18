//! `cfg profile ls|create|use|delete|rename|inspect`, with the messages of
//! Prefect's `prefect profile`.

use cfgd_sdk::{Code, Error};
use serde_json::json;

use super::Ctx;
use crate::args::ProfileCommand;
use crate::error::Failure;
use crate::output::{self, confirm, should_confirm, shown};

/// Runs one `cfg profile` subcommand.
pub(crate) async fn profile(ctx: &Ctx<'_>, cmd: &ProfileCommand) -> Result<(), Failure> {
    match cmd {
        ProfileCommand::Ls => ls(ctx).await,
        ProfileCommand::Create { name, from } => create(ctx, name, from.as_deref()).await,
        ProfileCommand::Use { name } => use_profile(ctx, name).await,
        ProfileCommand::Delete { name, yes } => delete(ctx, name, *yes).await,
        ProfileCommand::Rename { old, new } => rename(ctx, old, new).await,
        ProfileCommand::Inspect { name, show_secrets } => {
            inspect(ctx, name.as_deref().or(ctx.profile()), *show_secrets).await
        }
    }
}

async fn ls(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let profiles = client.profiles().await?;
    if ctx.json() {
        ctx.out.json(&serde_json::Value::Array(
            profiles
                .iter()
                .map(|p| json!({"name": p.name, "active": p.active, "settings": p.settings}))
                .collect(),
        ));
        return Ok(());
    }
    ctx.out.line("Available Profiles:");
    for p in &profiles {
        let mark = if p.active { "*" } else { " " };
        ctx.out.line(&format!("{mark} {}", p.name));
    }
    ctx.out.line("");
    ctx.out.line("* active profile");
    Ok(())
}

async fn create(ctx: &Ctx<'_>, name: &str, from: Option<&str>) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    match client.create_profile(name, from).await {
        Ok(()) => {}
        Err(Error::Rejected {
            code: Code::AlreadyExists,
            message,
            ..
        }) => {
            return Err(Failure::Message(format!(
                "{message}\nTo create a new profile, remove the existing profile first:\n\n    cfg profile delete '{name}'"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    if ctx.json() {
        ctx.out.json(&json!({"name": name, "from": from}));
        return Ok(());
    }
    ctx.out.success(&format!(
        "Created profile with properties:\n    name - '{name}'\n    from name - {}\n\n\
         Use created profile for future, subsequent commands:\n    cfg profile use '{name}'",
        from.map_or_else(|| "None".to_owned(), |f| format!("'{f}'"))
    ));
    Ok(())
}

async fn use_profile(ctx: &Ctx<'_>, name: &str) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let r = client.use_profile(name).await?;
    if ctx.json() {
        let mut doc = super::set::write_json(&r);
        doc["endpoint"] = client.endpoint().into();
        ctx.out.json(&doc);
        return Ok(());
    }
    ctx.out.success(&format!(
        "Connected to cfgd at {} using profile '{}'.",
        client.endpoint(),
        r.profile
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
    Ok(())
}

async fn delete(ctx: &Ctx<'_>, name: &str, yes: bool) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    if should_confirm(yes) {
        // Refuse before asking, as Prefect does.
        let profiles = client.profiles().await?;
        match profiles.iter().find(|p| p.name == name) {
            None => return Err(Failure::Message(format!("Profile '{name}' not found."))),
            Some(p) if p.active => {
                return Err(Failure::Message(format!(
                    "Profile '{name}' is the active profile. You must switch profiles before it can be deleted."
                )));
            }
            Some(_) => {}
        }
        if !confirm(&format!(
            "Are you sure you want to delete profile with name '{name}'?"
        )) {
            return Err(Failure::message("Deletion aborted."));
        }
    }
    client.delete_profile(name).await?;
    if ctx.json() {
        ctx.out.json(&json!({"removed": name}));
    } else {
        ctx.out.success(&format!("Removed profile '{name}'."));
    }
    Ok(())
}

async fn rename(ctx: &Ctx<'_>, old: &str, new: &str) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    client.rename_profile(old, new).await?;
    if ctx.json() {
        ctx.out.json(&json!({"from": old, "to": new}));
    } else {
        ctx.out
            .success(&format!("Renamed profile '{old}' to '{new}'."));
    }
    Ok(())
}

async fn inspect(ctx: &Ctx<'_>, name: Option<&str>, reveal: bool) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let p = client.inspect_profile(name, reveal).await?;
    if ctx.json() {
        let map: serde_json::Map<String, serde_json::Value> = p
            .entries
            .iter()
            .map(|(n, v, _)| (n.clone(), shown(v, reveal).into()))
            .collect();
        ctx.out.json(&serde_json::Value::Object(map));
        return Ok(());
    }
    if name.is_none() {
        ctx.out
            .line(&format!("No name provided, defaulting to '{}'", p.name));
    }
    if p.entries.is_empty() {
        ctx.out.line(&format!("Profile '{}' is empty.", p.name));
        return Ok(());
    }
    for (n, v, _) in &p.entries {
        ctx.out.line(&format!("{n}='{}'", shown(v, reveal)));
    }
    Ok(())
}
