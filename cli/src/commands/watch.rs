//! `cfg watch`: prints each change as it happens until interrupted. When the
//! stream drops (the daemon restarts, the network blips) it reconnects with
//! backoff and resumes after the last revision it printed, so nothing is
//! missed; if the daemon cannot replay that far it sends a full snapshot,
//! and what differs from what was last shown is printed as one change.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use cfgd_sdk::client::{ResyncReason, Snapshot};
use cfgd_sdk::{Client, Code, Error, Shown, WatchEvent};
use cfgd_settings::Source;
use futures_util::StreamExt;
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

/// Whether a stream error is worth reconnecting for (the daemon went away or
/// is restarting) rather than a refusal to report.
fn transient(e: &Error) -> bool {
    matches!(
        e,
        Error::Unreachable { .. }
            | Error::Rejected {
                code: Code::Unavailable,
                ..
            }
    )
}

/// Waits between reconnection attempts: 100 ms doubling to 2 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        now
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
    let mut backoff = Backoff(Backoff::FIRST);
    let mut opened_before = false;
    loop {
        let (after, epoch) = (seen.at.map(|a| a.0), seen.at.map(|a| a.1));
        let stream = match client.watch(after, epoch, &args.names, reveal).await {
            Ok(s) => s,
            // Before the first event a failure is the answer (a bad name, no daemon).
            Err(e) if seen.at.is_some() && transient(&e) => {
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((revision, _)) = seen.at.filter(|_| opened_before) {
            ctx.out.warn(&format!(
                "Reconnected to cfgd at {}; resuming after revision {revision}.",
                client.endpoint()
            ));
        }
        opened_before = true;
        let mut stream = pin!(stream);
        let reason = loop {
            match stream.next().await {
                Some(Ok(event)) => {
                    backoff = Backoff(Backoff::FIRST);
                    show(ctx, &mut seen, &event, args, reveal);
                }
                Some(Err(e)) if transient(&e) => break e.to_string(),
                Some(Err(e)) => return Err(e.into()),
                None => break "the daemon ended the stream".to_owned(),
            }
        };
        ctx.out.warn(&format!(
            "Lost the watch on cfgd at {} ({reason}); reconnecting…",
            client.endpoint()
        ));
        tokio::time::sleep(backoff.next()).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut b = Backoff(Backoff::FIRST);
        let waits: Vec<u64> = (0..7).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn only_a_lost_daemon_is_retried() {
        assert!(transient(&Error::Unreachable {
            endpoint: "x".into(),
            reason: "refused".into()
        }));
        assert!(transient(&Error::Rejected {
            code: Code::Unavailable,
            message: "cfgd is shutting down".into()
        }));
        assert!(!transient(&Error::Rejected {
            code: Code::InvalidArgument,
            message: "Unknown setting name 'X'.".into()
        }));
    }
}
