//! `GET /api/events`: the console's live stream, as server-sent events.
//!
//! It is the gRPC `Watch` stream itself (the same hub, ordering, replay
//! and resync rules), with the daemon's status interleaved whenever the
//! published view changes (a bad file makes no revision, yet the page must
//! show it). Each change and snapshot carries `id: <epoch>:<revision>`; a
//! browser that reconnects sends it back as `Last-Event-ID` (or the page
//! passes it as `?after=`), and the watch resumes after that revision — or
//! starts with an explicit resync (`snapshot` with its reason) when the
//! revision is gone or the epoch is not the daemon's. Secrets are always
//! masked here: an event stream cannot carry the token.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use cfgd_proto::frame::WatchFrame;
use cfgd_proto::pb;
use cfgd_proto::pb::settings_server::Settings as _;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::watch;

use super::api::request;
use super::refusal::Refusal;
use super::{Console, json};

/// How long a browser waits before reconnecting after the stream ends.
const RETRY: Duration = Duration::from_secs(1);

/// The service's watch: frames, decoded here (the console is one reader,
/// not one of thousands).
type Watch = Pin<Box<dyn Stream<Item = Result<WatchFrame, tonic::Status>> + Send>>;

/// `<epoch>:<revision>`, as sent in `id:`.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (epoch, revision) = id.trim().split_once(':')?;
    Some((epoch.parse().ok()?, revision.parse().ok()?))
}

/// Counts an open stream for `cfgd_console_streams` while it lives.
struct Open;

impl Open {
    fn new() -> Self {
        crate::metrics::console_stream(true);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        crate::metrics::console_stream(false);
    }
}

struct Stream_ {
    console: Console,
    headers: HeaderMap,
    watch: Watch,
    views: watch::Receiver<()>,
    /// The last status sent, to send only what changed.
    last_status: Option<String>,
    first: bool,
    _open: Open,
}

impl Stream_ {
    /// The status event, when it differs from the last one sent.
    async fn status(&mut self) -> Option<Event> {
        let status = self.console.status(&self.headers).await.ok()?;
        let text = status.to_string();
        if self.last_status.as_ref() == Some(&text) {
            return None;
        }
        self.last_status = Some(text.clone());
        Some(Event::default().event("status").data(text))
    }

    async fn next(&mut self) -> Option<Event> {
        if std::mem::take(&mut self.first) {
            // The first event sets how soon the browser reconnects.
            let status = self.status().await.unwrap_or_default();
            return Some(status.retry(RETRY));
        }
        loop {
            let changed = tokio::select! {
                biased;
                event = self.watch.next() => return match event {
                    Some(Ok(frame)) => frame.decode().ok().map(|e| watch_event(&e)),
                    // The watch ends with the daemon (shutdown) or fails:
                    // the browser reconnects and resumes.
                    Some(Err(_)) | None => None,
                },
                changed = self.views.changed() => changed,
            };
            changed.ok()?;
            if let Some(e) = self.status().await {
                return Some(e);
            }
        }
    }
}

fn watch_event(e: &pb::WatchResponse) -> Event {
    use pb::watch_response::Event as E;
    match &e.event {
        Some(E::Change(c)) => Event::default()
            .event("change")
            .id(format!("{}:{}", e.epoch, c.revision))
            .data(json::change(c).to_string()),
        Some(E::Resync(r)) => {
            let s = r.snapshot.clone().unwrap_or_default();
            let reason = pb::ResyncReason::try_from(r.reason)
                .unwrap_or(pb::ResyncReason::Unspecified)
                .as_str_name()
                .trim_start_matches("RESYNC_REASON_")
                .to_ascii_lowercase();
            Event::default()
                .event("snapshot")
                .id(format!("{}:{}", e.epoch, s.revision))
                .data(
                    json!({
                        "reason": reason,
                        "snapshot": json::snapshot(s.revision, s.epoch, &s.active_profile, &s.settings),
                    })
                    .to_string(),
                )
        }
        None => Event::default().comment("empty event"),
    }
}

/// `GET /api/events[?after=<epoch>:<revision>]`.
pub(super) async fn events(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Refusal> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(q.get("after").map(String::as_str))
        .and_then(parse_id);
    let req = pb::WatchRequest {
        after_revision: resume.map(|(_, r)| r),
        epoch: resume.map(|(e, _)| e),
        names: Vec::new(),
        reveal_secrets: false,
        // The console is a viewer, not a service: it never reports an ack.
        ..pb::WatchRequest::default()
    };
    // Only the token travels on; nothing else of the caller's headers.
    let mut auth = HeaderMap::new();
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        auth.insert(axum::http::header::AUTHORIZATION, v.clone());
    }
    let watch: Watch = console
        .service
        .watch(request(&auth, req))
        .await?
        .into_inner();
    let views = console.hub.view_changes();
    // A comment this often keeps proxies and the idle timeout from closing
    // a quiet stream.
    let keep_alive = console.keep_alive;
    let state = Stream_ {
        console,
        headers: auth,
        watch,
        views,
        last_status: None,
        first: true,
        _open: Open::new(),
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let e = s.next().await?;
        Some((Ok(e), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_epoch_and_revision() {
        assert_eq!(parse_id("18446744073709551615:42"), Some((u64::MAX, 42)));
        assert_eq!(parse_id(" 7:0 "), Some((7, 0)));
        assert_eq!(parse_id("42"), None);
        assert_eq!(parse_id("a:b"), None);
    }
}
