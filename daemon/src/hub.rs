//! The published state: a lock-free [`View`] for reads, the retained
//! history, and the broadcast that feeds every watch stream.
//!
//! Only the writer publishes. A watcher subscribes and copies the history it
//! must replay under the same lock the writer publishes under, so between
//! the replay and the live stream nothing is lost and nothing is repeated.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use cfgd_settings::{Catalog, ProfilesFile, Resolution};
use tokio::sync::{broadcast, watch};

use crate::store::{Base, Record};

/// The role of a file shown by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRole {
    /// A file of the config dir (catalogue, values, `.env`).
    Config(cfgd_settings::configdir::FileKind),
    /// The profiles file.
    Profiles,
    /// The revision log (shown when it cannot be written).
    Log,
}

/// One config-dir file and what is wrong with it, for status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileStatus {
    /// The file.
    pub(crate) path: String,
    /// What the file is.
    pub(crate) kind: FileRole,
    /// Why its current content is not in force, if it is not.
    pub(crate) error: Option<String>,
    /// The line of the first error, if known.
    pub(crate) error_line: Option<u32>,
    /// Problems that leave the file in force (unknown `PREFECT_` names).
    pub(crate) warnings: Vec<String>,
}

/// Everything a read needs, swapped whole on every change.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The revision this view is at.
    pub(crate) revision: u64,
    /// The store's epoch.
    pub(crate) epoch: u64,
    /// The active profile's name.
    pub(crate) active_profile: String,
    /// Every setting's effective value.
    pub(crate) resolution: Arc<Resolution>,
    /// The catalogue in force.
    pub(crate) catalog: Catalog,
    /// The profiles.
    pub(crate) profiles: Arc<ProfilesFile>,
    /// Config files and their errors.
    pub(crate) files: Arc<Vec<FileStatus>>,
    /// The layers `resolution` was resolved from.
    pub(crate) layers: crate::core::LayerSet,
}

/// What a new watcher gets before the live stream.
#[derive(Debug)]
pub(crate) enum Start {
    /// Replay these records (possibly none), then go live.
    Replay(Vec<Arc<Record>>),
    /// Send a snapshot of this view first.
    Resync(Resync, Arc<View>),
}

/// Why a watcher gets a snapshot instead of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resync {
    /// Opened without a revision.
    Initial,
    /// The revision is older than the retained history.
    Compacted,
    /// The watcher fell behind.
    Lagged,
    /// The client's epoch is not the daemon's.
    Epoch,
    /// The revision is newer than the daemon's.
    Future,
}

/// A change as the live stream carries it to every watcher: the record,
/// and its wire encodings, made once by the first watcher that sends it.
#[derive(Debug)]
pub(crate) struct Live {
    /// The change.
    pub(crate) record: Arc<Record>,
    /// Its encodings, shared by the watchers.
    pub(crate) wire: crate::service::watch::Wire,
}

struct Inner {
    history: VecDeque<Arc<Record>>,
    /// The logged size of each record in `history`, and their sum.
    sizes: VecDeque<usize>,
    bytes: usize,
    base: Base,
    /// `None` once closed: every watch stream ends.
    tx: Option<broadcast::Sender<Arc<Live>>>,
}

impl Inner {
    /// A receiver of what is published from now on (a closed one once the
    /// hub is closed).
    fn receiver(&self) -> broadcast::Receiver<Arc<Live>> {
        match &self.tx {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        }
    }
}

/// The published state.
pub(crate) struct Hub {
    view: ArcSwap<View>,
    inner: Mutex<Inner>,
    watchers: AtomicU64,
    /// Ticks on every view swap (the console shows status changes).
    views: watch::Sender<()>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("revision", &self.view.load().revision)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub at `view`, with `history` retained after `base`; each watcher
    /// may fall `buffer` changes behind before it gets a resync.
    pub(crate) fn new(
        view: View,
        base: Base,
        history: VecDeque<Arc<Record>>,
        buffer: usize,
    ) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(1));
        let sizes: VecDeque<usize> = history.iter().map(|r| r.encoded_len()).collect();
        let bytes = sizes.iter().sum();
        Self {
            view: ArcSwap::from_pointee(view),
            inner: Mutex::new(Inner {
                history,
                sizes,
                bytes,
                base,
                tx: Some(tx),
            }),
            watchers: AtomicU64::new(0),
            views: watch::Sender::new(()),
        }
    }

    /// The current view (a lock-free load).
    pub(crate) fn view(&self) -> Arc<View> {
        self.view.load_full()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while publishing leaves consistent data (each field is
        // replaced whole), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `records` and the view after them, in one step.
    pub(crate) fn publish(&self, records: Vec<Arc<Record>>, view: View) {
        let mut inner = self.lock();
        self.view.store(Arc::new(view));
        self.views.send_replace(());
        for r in records {
            let size = r.encoded_len();
            inner.bytes += size;
            inner.sizes.push_back(size);
            inner.history.push_back(r.clone());
            // No receivers is fine: nobody is watching.
            if let Some(tx) = &inner.tx {
                let _ = tx.send(Arc::new(Live {
                    record: r,
                    wire: crate::service::watch::Wire::default(),
                }));
            }
        }
    }

    /// Swaps the view without a change record (status-only changes, such as
    /// a file turning bad).
    pub(crate) fn replace_view(&self, view: View) {
        let _lock = self.lock();
        self.view.store(Arc::new(view));
        self.views.send_replace(());
    }

    /// Wakes on every view swap, with or without a change record.
    pub(crate) fn view_changes(&self) -> watch::Receiver<()> {
        self.views.subscribe()
    }

    /// Folds history beyond `limit` records or `bytes` (as logged) into the
    /// checkpoint, once it holds more than twice either, and returns the new
    /// checkpoint and history to persist.
    pub(crate) fn compact(
        &self,
        limit: usize,
        bytes: usize,
    ) -> Option<(Base, VecDeque<Arc<Record>>)> {
        let mut inner = self.lock();
        let over = |i: &Inner, factor: usize| {
            i.history.len() > limit.saturating_mul(factor).max(1)
                || i.bytes > bytes.saturating_mul(factor).max(1)
        };
        if !over(&inner, 2) {
            return None;
        }
        while over(&inner, 1) {
            let Some(r) = inner.history.pop_front() else {
                break;
            };
            let size = inner.sizes.pop_front().unwrap_or(0);
            inner.bytes -= size;
            inner.base.absorb(&r);
        }
        Some((inner.base.clone(), inner.history.clone()))
    }

    /// The oldest retained revision (`base + 1`; equal to `revision + 1`
    /// when no history is retained).
    pub(crate) fn oldest(&self) -> u64 {
        self.lock().base.revision + 1
    }

    /// The newest `limit` records and the oldest retained revision.
    pub(crate) fn history(&self, limit: usize) -> (Vec<Arc<Record>>, u64) {
        let inner = self.lock();
        let skip = inner.history.len().saturating_sub(limit);
        (
            inner.history.iter().skip(skip).cloned().collect(),
            inner.base.revision + 1,
        )
    }

    /// The profiles as they were at `revision`.
    ///
    /// # Errors
    /// `Err(oldest)` when `revision` is older than the retained history, or
    /// `Ok(None)` when it is newer than the current revision.
    pub(crate) fn profiles_at(&self, revision: u64) -> Result<Option<ProfilesFile>, u64> {
        let inner = self.lock();
        if revision < inner.base.revision {
            return Err(inner.base.revision + 1);
        }
        if revision > self.view.load().revision {
            return Ok(None);
        }
        let mut profiles = inner.base.profiles.clone();
        for r in inner.history.iter().take_while(|r| r.revision <= revision) {
            profiles.apply(&r.profiles);
        }
        Ok(Some(profiles))
    }

    /// Opens a watch: what to send first, and the live receiver.
    pub(crate) fn subscribe(
        &self,
        after: Option<u64>,
        epoch: Option<u64>,
    ) -> (Start, broadcast::Receiver<Arc<Live>>) {
        let inner = self.lock();
        let rx = inner.receiver();
        let view = self.view.load_full();
        let start = match after {
            None => Start::Resync(Resync::Initial, view),
            Some(_) if epoch.is_some_and(|e| e != view.epoch) => Start::Resync(Resync::Epoch, view),
            Some(rev) if rev > view.revision => Start::Resync(Resync::Future, view),
            Some(rev) if rev < inner.base.revision => Start::Resync(Resync::Compacted, view),
            Some(rev) => Start::Replay(
                inner
                    .history
                    .iter()
                    .filter(|r| r.revision > rev)
                    .cloned()
                    .collect(),
            ),
        };
        (start, rx)
    }

    /// For a watcher that fell behind: the current view and a receiver that
    /// starts right after it (taken together, so nothing falls in between).
    pub(crate) fn catch_up(&self) -> (Arc<View>, broadcast::Receiver<Arc<Live>>) {
        let inner = self.lock();
        (self.view.load_full(), inner.receiver())
    }

    /// Ends every watch stream (once it has sent what it has) and every
    /// one opened later (after its first answer): the daemon is stopping.
    ///
    /// Dropping the broadcast's sender wakes each receiver once, where a
    /// shutdown token checked by every stream would cost a lock per event
    /// per watcher.
    pub(crate) fn close_watches(&self) {
        self.lock().tx = None;
    }

    /// Counts a watch stream in (`+1`) or out (`-1`).
    pub(crate) fn watcher_delta(&self, opened: bool) {
        if opened {
            self.watchers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.watchers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Open watch streams.
    pub(crate) fn watchers(&self) -> u64 {
        self.watchers.load(Ordering::Relaxed)
    }
}
