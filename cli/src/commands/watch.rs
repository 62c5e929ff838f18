//! `cfg watch`: prints each change as it happens until interrupted. It is
//! the SDK's resuming watch ([`cfgd_sdk::client::Resuming`]): when the
//! stream drops (the daemon restarts, the network blips) it reconnects with
//! backoff and jitter and resumes after the last revision it printed, so
//! nothing is missed; if the daemon cannot replay that far it sends a full
//! snapshot, and what differs from what was last shown is printed as one
//! change.

use std::collections::BTreeMap;

use cfgd_sdk::client::{Backoff, Resumed, ResyncReason, Snapshot};
use cfgd_sdk::{Client, Error, Shown, Source, WatchEvent};
use serde_json::json;

use super::Ctx;
use super::history::{change_header, change_json, key_line};
use crate::args::WatchArgs;
use crate::error::Failure;
use crate::output::{self, shown, shown_json};

/// `cfg watch [NAME…]`.
pub(crate) async fn watch(ctx: &Ctx<'_>, args: &WatchArgs) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    tokio::select! {
        r = follow(ctx, &client, args) => r,
        // Ctrl-C is how a watch is meant to end.
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// What the watcher has shown: its position and each setting's last value.
#[derive(Debug, Default)]
struct Seen {
    /// `(revision, epoch)` of the last event.
    at: Option<(u64, u64)>,
    values: BTreeMap<String, (Shown, Option<Source>)>,
}

async fn follow(ctx: &Ctx<'_>, client: &Client, args: &WatchArgs) -> Result<(), Failure> {
    let reveal = args.show_secrets;
    let mut seen = Seen::default();
    let mut watch = client.watch_resuming(&args.names, reveal, Backoff::default());
    let mut opened_before = false;
    let mut streaming = false;
    loop {
        // A refusal (an unknown name, a missing token) is the answer.
        match watch.next().await? {
            Resumed::Opened { after } => {
                if let Some(p) = after.filter(|_| opened_before) {
                    ctx.out.warn(&format!(
                        "Reconnected to cfgd at {}; resuming after revision {}.",
                        client.endpoint(),
                        p.revision
                    ));
                }
                opened_before = true;
                streaming = true;
            }
            Resumed::Event(event) => show(ctx, &mut seen, &event, args, reveal),
            // Before the first event a failure is the answer (no daemon).
            Resumed::Lost { error, .. } if seen.at.is_none() => return Err(error.into()),
            // Said once per outage, not once per attempt to reconnect.
            Resumed::Lost { error, .. } => {
                if std::mem::take(&mut streaming) {
                    ctx.out.warn(&format!(
                        "Lost the watch on cfgd at {} ({}); reconnecting…",
                        client.endpoint(),
                        reason(&error)
                    ));
                }
            }
        }
    }
}

/// Why the watch was lost, without the advice on starting a daemon.
fn reason(e: &Error) -> String {
    match e {
        Error::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn reason_text(r: ResyncReason) -> &'static str {
    match r {
        ResyncReason::Initial => "initial",
        ResyncReason::Compacted => "the revision left the daemon's history",
        ResyncReason::Lagged => "this watcher fell behind",
        ResyncReason::Epoch => "the daemon's state was replaced",
        ResyncReason::Future => "the revision was ahead of the daemon",
    }
}

fn reason_json(r: ResyncReason) -> &'static str {
    match r {
        ResyncReason::Initial => "initial",
        ResyncReason::Compacted => "compacted",
        ResyncReason::Lagged => "lagged",
        ResyncReason::Epoch => "epoch",
        ResyncReason::Future => "future",
    }
}

fn snapshot_json(s: &Snapshot, reveal: bool) -> Vec<serde_json::Value> {
    s.settings
        .iter()
        .map(|x| {
            json!({
                "name": x.name,
                "value": shown_json(&x.value, reveal),
                "source": output::source_json(&x.source),
            })
        })
        .collect()
}

/// Prints one event and records what it shows.
fn show(ctx: &Ctx<'_>, seen: &mut Seen, event: &WatchEvent, args: &WatchArgs, reveal: bool) {
    match event {
        WatchEvent::Change { epoch, change } => {
            if ctx.json() {
                let mut doc = change_json(change, reveal);
                doc["type"] = "change".into();
                doc["epoch"] = output::epoch_json(*epoch);
                ctx.out.json_line(&doc);
            } else {
                ctx.out.line(&change_header(change));
                for k in &change.changes {
                    ctx.out.line(&key_line(k, reveal));
                }
            }
            for k in &change.changes {
                seen.values
                    .insert(k.name.clone(), (k.new.clone(), k.new_source.clone()));
            }
            seen.at = Some((change.revision, *epoch));
        }
        WatchEvent::Resync {
            epoch,
            reason,
            snapshot,
        } => {
            let first = seen.at.is_none();
            if ctx.json() {
                ctx.out.json_line(&json!({
                    "type": "resync",
                    "reason": reason_json(*reason),
                    "epoch": output::epoch_json(*epoch),
                    "revision": snapshot.revision,
                    "profile": snapshot.active_profile,
                    "settings": snapshot_json(snapshot, reveal),
                }));
            } else if first {
                let what = if args.names.is_empty() {
                    "all settings".to_owned()
                } else {
                    args.names.join(", ")
                };
                ctx.out.line(&format!(
                    "Watching {what} from revision {} (profile '{}'); press Ctrl-C to stop.",
                    snapshot.revision, snapshot.active_profile
                ));
            } else {
                let lines: Vec<String> = snapshot
                    .settings
                    .iter()
                    .filter(|s| {
                        seen.values.get(&s.name) != Some(&(s.value.clone(), Some(s.source.clone())))
                    })
                    .map(|s| {
                        let old = seen.values.get(&s.name).map(|(v, _)| v);
                        format!(
                            "  {}: '{}' -> '{}' (from {})",
                            s.name,
                            old.map_or_else(|| "None".to_owned(), |v| shown(v, reveal)),
                            shown(&s.value, reveal),
                            output::source(&s.source)
                        )
                    })
                    .collect();
                if !lines.is_empty() {
                    ctx.out.line(&format!(
                        "Revision {}: resynchronised ({})",
                        snapshot.revision,
                        reason_text(*reason)
                    ));
                    for l in lines {
                        ctx.out.line(&l);
                    }
                }
            }
            seen.values = snapshot
                .settings
                .iter()
                .map(|s| (s.name.clone(), (s.value.clone(), Some(s.source.clone()))))
                .collect();
            seen.at = Some((snapshot.revision, *epoch));
        }
    }
}
