//! One watch stream: the replay or resync it starts with, then live changes
//! in revision order. A watcher that falls more than the buffer behind gets
//! a resync (a full snapshot) and goes on from there. The stream ends when
//! the hub closes its watches (the daemon is stopping) or the client goes
//! away.
//!
//! A live change is encoded once for all the watchers it goes to whole
//! (every watcher without a name filter, and those whose filter takes in
//! every name it changed): the first one to send it encodes it into the
//! change's [`Wire`], the others send the same bytes. A watcher whose
//! filter drops part of a change, and a replay, encode their own.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use cfgd_proto::frame::WatchFrame;
use cfgd_proto::pb;
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tonic::Status;

use super::convert;
use super::mask::Mask;
use crate::hub::{Hub, Live, Resync, Start, View};
use crate::store::Record;

/// A live change's encodings for the wire, one per [`Mask`] (secrets
/// masked, secrets in clear), each with the epoch it carries.
#[derive(Debug, Default)]
pub(crate) struct Wire([OnceLock<(u64, WatchFrame)>; 2]);

impl Wire {
    /// The change as `epoch`'s watchers with `mask` send it whole, encoded
    /// on first use.
    fn frame(&self, record: &Record, epoch: u64, mask: Mask) -> WatchFrame {
        let (made_in, frame) = self.0[usize::from(mask.reveals())].get_or_init(|| {
            (
                epoch,
                encode_change(record, None, mask, epoch).unwrap_or_default(),
            )
        });
        if *made_in == epoch {
            frame.clone()
        } else {
            // A watcher opened in another epoch (it gets a resync soon).
            encode_change(record, None, mask, epoch).unwrap_or_default()
        }
    }
}

/// `record` for the wire, only its changes to `names` when given; `None`
/// when the filter leaves nothing.
fn encode_change(
    record: &Record,
    names: Option<&[String]>,
    mask: Mask,
    epoch: u64,
) -> Option<WatchFrame> {
    let change = convert::change(record, names, mask)?;
    Some(WatchFrame::encode(&pb::WatchResponse {
        epoch,
        event: Some(pb::watch_response::Event::Change(change)),
    }))
}

/// What a stream sends next, and whether it is a resync (for the metrics).
struct Pending {
    frame: WatchFrame,
    resync: bool,
}

struct State {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<Live>>,
    pending: VecDeque<Pending>,
    last: u64,
    epoch: u64,
    names: Option<Vec<String>>,
    mask: Mask,
    /// The service instance this stream belongs to (listed in the fleet
    /// while it is open).
    _instance: Option<crate::fleet::services::Stream>,
}

impl Drop for State {
    fn drop(&mut self) {
        self.hub.watcher_delta(false);
    }
}

impl State {
    fn resync(&mut self, reason: Resync, view: &View) {
        crate::metrics::resync(reason);
        let reason = match reason {
            Resync::Initial => pb::ResyncReason::Initial,
            Resync::Compacted => pb::ResyncReason::Compacted,
            Resync::Lagged => pb::ResyncReason::Lagged,
            Resync::Epoch => pb::ResyncReason::Epoch,
            Resync::Future => pb::ResyncReason::Future,
        };
        self.last = view.revision;
        let frame = WatchFrame::encode(&pb::WatchResponse {
            epoch: self.epoch,
            event: Some(pb::watch_response::Event::Resync(pb::Resync {
                reason: reason as i32,
                snapshot: Some(convert::snapshot(view, self.names.as_deref(), self.mask)),
            })),
        });
        self.pending.push_back(Pending {
            frame,
            resync: true,
        });
    }

    /// Queues `record` unless it is not newer than what was sent; `wire`
    /// is its shared encoding when it comes live.
    fn change(&mut self, record: &Record, wire: Option<&Wire>) {
        if record.revision <= self.last {
            return;
        }
        self.last = record.revision;
        let whole = match &self.names {
            None => true,
            Some(names) => record.changes.iter().all(|c| names.contains(&c.name)),
        };
        let frame = match wire {
            Some(wire) if whole => Some(wire.frame(record, self.epoch, self.mask)),
            _ => encode_change(record, self.names.as_deref(), self.mask, self.epoch),
        };
        if let Some(frame) = frame {
            self.pending.push_back(Pending {
                frame,
                resync: false,
            });
        }
    }
}

/// Opens a watch after `after` (in `epoch`) on `names` (canonical; `None`
/// for all). It ends when the hub closes its watches.
pub(super) fn open(
    hub: Arc<Hub>,
    after: Option<u64>,
    epoch: Option<u64>,
    names: Option<Vec<String>>,
    mask: Mask,
    instance: Option<crate::fleet::services::Stream>,
) -> impl Stream<Item = Result<WatchFrame, Status>> + Send + 'static {
    let (start, rx) = hub.subscribe(after, epoch);
    hub.watcher_delta(true);
    let mut state = State {
        epoch: hub.view().epoch,
        hub,
        rx,
        pending: VecDeque::new(),
        last: after.unwrap_or(0),
        names,
        mask,
        _instance: instance,
    };
    match start {
        Start::Resync(reason, view) => state.resync(reason, &view),
        Start::Replay(records) => {
            for r in &records {
                state.change(r, None);
            }
        }
    }
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(p) = s.pending.pop_front() {
                crate::metrics::watch_event(p.resync);
                return Some((Ok(p.frame), s));
            }
            match s.rx.recv().await {
                Ok(live) => s.change(&live.record, Some(&live.wire)),
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "a watcher fell behind; sending it a resync");
                    let (view, rx) = s.hub.catch_up();
                    s.rx = rx;
                    s.resync(Resync::Lagged, &view);
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use cfgd_settings::{ConfigDir, ProfilesFile};
    use futures_util::StreamExt;

    use super::*;
    use crate::core::Core;
    use crate::store::{Base, Origin};
    use crate::writer::build_view;

    fn hub(buffer: usize) -> (tempfile::TempDir, Arc<Hub>, View) {
        let dir = tempfile::tempdir().unwrap();
        let core = Core::new(
            ConfigDir::load(dir.path()),
            Arc::default(),
            ProfilesFile::default(),
            9,
            0,
        );
        let view = build_view(&core, "p", &Default::default());
        let base = Base {
            epoch: 9,
            revision: 0,
            profiles: ProfilesFile::default(),
            effective: BTreeMap::new(),
        };
        (
            dir,
            Arc::new(Hub::new(view.clone(), base, VecDeque::new(), buffer)),
            view,
        )
    }

    fn record(revision: u64) -> Arc<Record> {
        Arc::new(Record {
            revision,
            time_ms: 0,
            origin: Origin::Set,
            detail: String::new(),
            changes: Vec::new(),
            profiles: Default::default(),
            host: None,
        })
    }

    fn publish(hub: &Hub, view: &View, revision: u64) {
        let mut v = view.clone();
        v.revision = revision;
        hub.publish(vec![record(revision)], v);
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_gets_a_resync_then_live_changes() {
        let (_d, hub, view) = hub(2);
        let mut stream = Box::pin(open(hub.clone(), Some(0), Some(9), None, Mask::HIDE, None));
        assert_eq!(hub.watchers(), 1);
        for rev in 1..=5 {
            publish(&hub, &view, rev);
        }
        let first = stream.next().await.unwrap().unwrap().decode().unwrap();
        let Some(pb::watch_response::Event::Resync(r)) = first.event else {
            panic!("expected a resync, got {first:?}");
        };
        assert_eq!(r.reason, pb::ResyncReason::Lagged as i32);
        assert_eq!(r.snapshot.unwrap().revision, 5);
        publish(&hub, &view, 6);
        let next = stream.next().await.unwrap().unwrap().decode().unwrap();
        let Some(pb::watch_response::Event::Change(c)) = next.event else {
            panic!("{next:?}")
        };
        assert_eq!(
            c.revision, 6,
            "nothing at or below the resync revision is repeated"
        );
        drop(stream);
        assert_eq!(hub.watchers(), 0);
    }

    #[tokio::test]
    async fn closing_the_hub_ends_every_watch_after_what_it_was_sent() {
        let (_d, hub, view) = hub(4);
        let mut open_before = Box::pin(open(hub.clone(), None, None, None, Mask::HIDE, None));
        assert!(open_before.next().await.is_some(), "the initial snapshot");
        publish(&hub, &view, 1);
        hub.close_watches();
        let sent = open_before.next().await.unwrap().unwrap().decode().unwrap();
        assert!(
            matches!(sent.event, Some(pb::watch_response::Event::Change(ref c)) if c.revision == 1),
            "a change published before the close still arrives: {sent:?}"
        );
        assert!(open_before.next().await.is_none());
        let mut open_after = Box::pin(open(hub.clone(), None, None, None, Mask::HIDE, None));
        assert!(open_after.next().await.is_some(), "the initial snapshot");
        assert!(open_after.next().await.is_none());
        drop((open_before, open_after));
        assert_eq!(hub.watchers(), 0);
    }
}
