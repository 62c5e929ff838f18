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
use crate::hub::{Hub, Resync, Start, View};
use crate::store::Record;

struct State {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<Record>>,
    pending: VecDeque<pb::WatchEvent>,
    last: u64,
    epoch: u64,
    names: Option<Vec<String>>,
    reveal: bool,
    shutdown: CancellationToken,
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
        self.pending.push_back(pb::WatchEvent {
            epoch: self.epoch,
            event: Some(pb::watch_event::Event::Resync(pb::Resync {
                reason: reason as i32,
                snapshot: Some(convert::snapshot(view, self.names.as_deref(), self.reveal)),
            })),
        });
    }

    fn change(&mut self, record: &Record) {
        if record.revision <= self.last {
            return;
        }
        self.last = record.revision;
        if let Some(change) = convert::change(record, self.names.as_deref(), self.reveal) {
            self.pending.push_back(pb::WatchEvent {
                epoch: self.epoch,
                event: Some(pb::watch_event::Event::Change(change)),
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
    reveal: bool,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<pb::WatchEvent, Status>> + Send + 'static {
    let (start, rx) = hub.subscribe(after, epoch);
    hub.watcher_delta(true);
    let mut state = State {
        epoch: hub.view().epoch,
        hub,
        rx,
        pending: VecDeque::new(),
        last: after.unwrap_or(0),
        names,
        reveal,
        shutdown,
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
                        let view = s.hub.view();
                        s.resync(Resync::Lagged, &view);
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    })
}
