//! One watch stream: the replay or resync it starts with, then live changes
//! in revision order. A watcher that falls more than the buffer behind gets
//! a resync (a full snapshot) and goes on from there. The stream ends when
//! the daemon shuts down or the client goes away.

use std::collections::VecDeque;
use std::sync::Arc;

use cfgd_proto::pb;
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert;
use super::mask::Mask;
use crate::hub::{Hub, Resync, Start, View};
use crate::store::Record;

struct State {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<Record>>,
    pending: VecDeque<pb::WatchResponse>,
    last: u64,
    epoch: u64,
    names: Option<Vec<String>>,
    mask: Mask,
    shutdown: CancellationToken,
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
        let reason = match reason {
            Resync::Initial => pb::ResyncReason::Initial,
            Resync::Compacted => pb::ResyncReason::Compacted,
            Resync::Lagged => pb::ResyncReason::Lagged,
            Resync::Epoch => pb::ResyncReason::Epoch,
            Resync::Future => pb::ResyncReason::Future,
        };
        self.last = view.revision;
        self.pending.push_back(pb::WatchResponse {
            epoch: self.epoch,
            event: Some(pb::watch_response::Event::Resync(pb::Resync {
                reason: reason as i32,
                snapshot: Some(convert::snapshot(view, self.names.as_deref(), self.mask)),
            })),
        });
    }

    fn change(&mut self, record: &Record) {
        if record.revision <= self.last {
            return;
        }
        self.last = record.revision;
        if let Some(change) = convert::change(record, self.names.as_deref(), self.mask) {
            self.pending.push_back(pb::WatchResponse {
                epoch: self.epoch,
                event: Some(pb::watch_response::Event::Change(change)),
            });
        }
    }
}

/// Opens a watch after `after` (in `epoch`) on `names` (canonical; `None`
/// for all).
pub(super) fn open(
    hub: Arc<Hub>,
    after: Option<u64>,
    epoch: Option<u64>,
    names: Option<Vec<String>>,
    mask: Mask,
    shutdown: CancellationToken,
    instance: Option<crate::fleet::services::Stream>,
) -> impl Stream<Item = Result<pb::WatchResponse, Status>> + Send + 'static {
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
        shutdown,
        _instance: instance,
    };
    match start {
        Start::Resync(reason, view) => state.resync(reason, &view),
        Start::Replay(records) => {
            for r in &records {
                state.change(r);
            }
        }
    }
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(ev) = s.pending.pop_front() {
                return Some((Ok(ev), s));
            }
            tokio::select! {
                biased;
                () = s.shutdown.cancelled() => return None,
                r = s.rx.recv() => match r {
                    Ok(record) => s.change(&record),
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "a watcher fell behind; sending it a resync");
                        let (view, rx) = s.hub.catch_up();
                        s.rx = rx;
                        s.resync(Resync::Lagged, &view);
                    }
                    Err(RecvError::Closed) => return None,
                },
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
        let mut stream = Box::pin(open(
            hub.clone(),
            Some(0),
            Some(9),
            None,
            Mask::HIDE,
            CancellationToken::new(),
            None,
        ));
        assert_eq!(hub.watchers(), 1);
        for rev in 1..=5 {
            publish(&hub, &view, rev);
        }
        let first = stream.next().await.unwrap().unwrap();
        let Some(pb::watch_response::Event::Resync(r)) = first.event else {
            panic!("expected a resync, got {first:?}");
        };
        assert_eq!(r.reason, pb::ResyncReason::Lagged as i32);
        assert_eq!(r.snapshot.unwrap().revision, 5);
        publish(&hub, &view, 6);
        let next = stream.next().await.unwrap().unwrap();
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
    async fn a_cancelled_token_ends_the_stream() {
        let (_d, hub, _view) = hub(4);
        let token = CancellationToken::new();
        let mut stream = Box::pin(open(hub, None, None, None, Mask::HIDE, token.clone(), None));
        assert!(stream.next().await.is_some(), "the initial snapshot");
        token.cancel();
        assert!(stream.next().await.is_none());
    }
}
