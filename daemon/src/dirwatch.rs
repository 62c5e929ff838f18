//! Watching one directory for changes to the paths a filter accepts, and
//! handing out debounced batches of them. Used for the config dir (and for
//! any other file the daemon follows, such as `profiles.toml`, by watching
//! its directory with a filter for that one path).
//!
//! - The OS watcher (inotify, FSEvents, …), or polling every second when it
//!   cannot be used.
//! - Access events are dropped (reading the dir during a reload would
//!   otherwise trigger the next reload, forever); a close-after-write is kept.
//! - The directory may be deleted and recreated, renamed away, replaced by
//!   a swapped symlink, or not exist yet: its identity (device, inode) is
//!   checked on every event about it and every [`RECHECK`], and when it
//!   changes the new directory is watched and the batch asks for a rescan.
//!   The parent is watched only while the directory is missing (to hear
//!   it appear): a parent watched all along would wake the watcher for
//!   every write beside the directory (a log file, the revision log of a
//!   state dir next to the config dir). So a directory deleted, renamed
//!   or appearing is seen at once; a symlink to it swapped in the parent,
//!   at the next [`RECHECK`].
//! - Debounce with a maximum wait: a batch is handed out once no event came
//!   for `debounce`, or `max_wait` after its first event, whichever is first,
//!   so a storm of changes cannot hold the old content in force.
//!
//! A batch that the consumer has not taken yet absorbs later ones, so a slow
//! consumer gets one merged batch, not a queue.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the directory's identity is checked without an event about it
/// (the parent may not be watchable, or polling is in use).
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// More distinct paths than this in one batch become a rescan.
const MAX_BATCH_PATHS: usize = 10_000;

/// How a directory is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// Quiet time after the last event before a batch is handed out.
    pub(crate) debounce: Duration,
    /// Longest a batch waits after its first event, however many follow.
    pub(crate) max_wait: Duration,
    /// Watch subdirectories too.
    pub(crate) recursive: bool,
}

/// Paths that changed, debounced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The changed paths the filter accepted.
    pub(crate) paths: BTreeSet<PathBuf>,
    /// Everything may have changed (the directory was recreated, events
    /// were lost): read it all again.
    pub(crate) rescan: bool,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.rescan
    }

    fn merge(&mut self, other: Batch) {
        self.rescan |= other.rescan;
        self.paths.extend(other.paths);
        if self.paths.len() > MAX_BATCH_PATHS {
            self.paths.clear();
            self.rescan = true;
        }
    }
}

/// What the watcher's callback forwards.
#[derive(Debug)]
enum Raw {
    /// A path the filter accepted.
    Path(PathBuf),
    /// Something happened to the directory itself.
    Dir,
    /// The watcher lost events.
    Rescan,
}

#[derive(Debug, Default)]
struct Slot {
    batch: Batch,
    closed: bool,
}

/// A watched directory: [`DirWatch::next`] yields its batches. Dropping it,
/// or cancelling the token given to [`DirWatch::spawn`], stops the watching.
#[derive(Debug)]
pub(crate) struct DirWatch {
    slot: Arc<(Mutex<Slot>, Notify)>,
    /// OS events heard so far, kept or not (each one woke the watcher);
    /// the tests read it.
    #[cfg_attr(not(test), allow(dead_code))]
    heard: Arc<AtomicU64>,
    _stop: tokio_util::sync::DropGuard,
}

impl DirWatch {
    /// Starts watching `dir` (which need not exist yet) for changes to paths
    /// that `filter` accepts. Changes made after this returns are seen.
    /// The watching ends when `stop` is cancelled or this is dropped.
    pub(crate) fn spawn(
        dir: PathBuf,
        filter: impl Fn(&Path) -> bool + Send + Sync + 'static,
        options: Options,
        stop: &CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let heard = Arc::new(AtomicU64::new(0));
        let handler = handler(dir.clone(), filter, tx, heard.clone());
        let mut supervisor = Supervisor::new(dir, options, handler);
        supervisor.start();
        Self::run(supervisor, rx, heard, stop)
    }

    /// How many OS events the watcher has heard (kept or dropped).
    #[cfg(test)]
    pub(crate) fn heard(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    fn run(
        mut supervisor: Supervisor,
        mut rx: mpsc::UnboundedReceiver<Raw>,
        heard: Arc<AtomicU64>,
        stop: &CancellationToken,
    ) -> Self {
        let slot = Arc::new((Mutex::new(Slot::default()), Notify::new()));
        let stop = stop.child_token();
        let guard = stop.clone().drop_guard();
        let out = slot.clone();
        // Ends when `stop` is cancelled (by the caller or by dropping the
        // DirWatch); the OS watcher is dropped with it.
        tokio::spawn(async move {
            let mut pending = Pending::default();
            let mut recheck = tokio::time::interval(RECHECK);
            recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let deadline = pending.deadline(&supervisor.options);
                tokio::select! {
                    () = stop.cancelled() => break,
                    raw = rx.recv() => match raw {
                        Some(Raw::Path(p)) => pending.add(Batch { paths: BTreeSet::from([p]), rescan: false }),
                        Some(Raw::Rescan) => pending.add(Batch { paths: BTreeSet::new(), rescan: true }),
                        Some(Raw::Dir) => {
                            if supervisor.check().await {
                                pending.add(Batch { paths: BTreeSet::new(), rescan: true });
                            }
                        }
                        None => break,
                    },
                    _ = recheck.tick() => {
                        if supervisor.check().await {
                            pending.add(Batch { paths: BTreeSet::new(), rescan: true });
                        }
                    }
                    () = sleep_until(deadline) => {
                        let batch = pending.take();
                        let (lock, notify) = &*out;
                        lock.lock().expect("no panic holds the slot").batch.merge(batch);
                        notify.notify_one();
                    }
                }
            }
            let (lock, notify) = &*out;
            lock.lock().expect("no panic holds the slot").closed = true;
            notify.notify_one();
        });
        Self {
            slot,
            heard,
            _stop: guard,
        }
    }

    /// The next batch; `None` once the watching has stopped.
    pub(crate) async fn next(&mut self) -> Option<Batch> {
        let (lock, notify) = &*self.slot;
        loop {
            {
                let mut slot = lock.lock().expect("no panic holds the slot");
                if !slot.batch.is_empty() {
                    return Some(std::mem::take(&mut slot.batch));
                }
                if slot.closed {
                    return None;
                }
            }
            notify.notified().await;
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Events collected since the last batch was handed out.
#[derive(Debug, Default)]
struct Pending {
    batch: Batch,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Pending {
    fn add(&mut self, batch: Batch) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.batch.merge(batch);
    }

    fn deadline(&self, options: &Options) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + options.debounce).min(first + options.max_wait))
    }

    fn take(&mut self) -> Batch {
        self.first = None;
        self.last = None;
        std::mem::take(&mut self.batch)
    }
}

/// The watcher's callback (it runs on the watcher's own thread).
type Handler = Arc<dyn Fn(notify::Result<notify::Event>) + Send + Sync>;

fn handler(
    dir: PathBuf,
    filter: impl Fn(&Path) -> bool + Send + Sync + 'static,
    tx: mpsc::UnboundedSender<Raw>,
    heard: Arc<AtomicU64>,
) -> Handler {
    Arc::new(move |event: notify::Result<notify::Event>| {
        heard.fetch_add(1, Ordering::Relaxed);
        // The receiver is gone only once watching stops; nothing to do then.
        match event {
            Ok(event)
                if matches!(event.kind, notify::EventKind::Access(k)
                    if k != notify::event::AccessKind::Close(notify::event::AccessMode::Write)) => {
            }
            Ok(event) => {
                if event.need_rescan() {
                    let _ = tx.send(Raw::Rescan);
                }
                for path in event.paths {
                    if path == dir {
                        let _ = tx.send(Raw::Dir);
                    } else if filter(&path) {
                        let _ = tx.send(Raw::Path(path));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "file watcher error; reading the directory again");
                let _ = tx.send(Raw::Rescan);
            }
        }
    })
}

/// Which directory (device and inode) is being watched.
type DirId = (u64, u64);

fn dir_id(dir: &Path) -> Option<DirId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|m| (m.dev(), m.ino()))
}

/// Keeps the watcher on the directory that is at the path now.
struct Supervisor {
    dir: PathBuf,
    options: Options,
    handler: Handler,
    watcher: Option<Box<dyn Watcher + Send>>,
    polling: bool,
    watched: Option<DirId>,
    /// The parent is watched (the directory is missing).
    parent_watched: bool,
}

impl Supervisor {
    fn new(dir: PathBuf, options: Options, handler: Handler) -> Self {
        Self {
            dir,
            options,
            handler,
            watcher: None,
            polling: false,
            watched: None,
            parent_watched: false,
        }
    }

    /// Creates the watcher and watches the directory, or its parent while
    /// it does not exist.
    fn start(&mut self) {
        self.parent_watched = false;
        let h = self.handler.clone();
        match notify::recommended_watcher(move |e| h(e)) {
            Ok(w) => self.watcher = Some(Box::new(w)),
            Err(e) => self.fall_back_to_polling(&e),
        }
        self.rewatch(dir_id(&self.dir));
    }

    /// Watches the parent while the directory is missing (it says when
    /// the directory appears), and no longer once it is there (the
    /// directory's own watch says when it goes).
    fn watch_parent(&mut self, missing: bool) {
        if self.polling || missing == self.parent_watched {
            return;
        }
        let (Some(parent), Some(w)) = (self.dir.parent(), self.watcher.as_mut()) else {
            return;
        };
        if missing {
            match w.watch(parent, RecursiveMode::NonRecursive) {
                Ok(()) => self.parent_watched = true,
                Err(e) => {
                    tracing::debug!(dir = %parent.display(), error = %e, "cannot watch the parent dir; checking the directory every second");
                }
            }
        } else {
            let _ = w.unwatch(parent);
            self.parent_watched = false;
        }
    }

    fn fall_back_to_polling(&mut self, why: &dyn std::fmt::Display) {
        tracing::warn!(dir = %self.dir.display(), error = %why, "cannot use the OS file watcher; polling every second");
        let config = notify::Config::default().with_poll_interval(RECHECK);
        let h = self.handler.clone();
        match notify::PollWatcher::new(move |e| h(e), config) {
            Ok(w) => self.watcher = Some(Box::new(w)),
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot watch the directory at all; changes will not be seen");
                self.watcher = None;
            }
        }
        self.polling = true;
        self.parent_watched = false;
    }

    /// Watches the directory now at the path (`now` is its identity), first
    /// with the OS watcher, then by polling.
    fn rewatch(&mut self, now: Option<DirId>) {
        let mode = if self.options.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if let Some(w) = self.watcher.as_mut() {
            // The old directory's watch may be gone already.
            let _ = w.unwatch(&self.dir);
        }
        self.watched = now;
        self.watch_parent(now.is_none());
        if now.is_none() {
            return;
        }
        let watched = self.watcher.as_mut().map(|w| w.watch(&self.dir, mode));
        if let Some(Err(e)) = watched {
            if self.polling {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot watch the directory; changes will not be seen");
                return;
            }
            self.fall_back_to_polling(&e);
            if let Some(Err(e)) = self.watcher.as_mut().map(|w| w.watch(&self.dir, mode)) {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot watch the directory; changes will not be seen");
            }
        }
    }

    /// Whether the directory at the path is a different one than the one
    /// watched (recreated, renamed away, appeared or gone); if so, the new
    /// one is watched. Filesystem calls run off the async threads.
    async fn check(&mut self) -> bool {
        let dir = self.dir.clone();
        let now = tokio::task::spawn_blocking(move || dir_id(&dir))
            .await
            .unwrap_or(None);
        if now == self.watched {
            return false;
        }
        tracing::info!(dir = %self.dir.display(), present = now.is_some(), "the directory was replaced, removed or created; watching it again and reading it whole");
        // Watching walks the directory: keep it off the async threads too.
        let placeholder = Supervisor::new(PathBuf::new(), self.options, self.handler.clone());
        let mut this = std::mem::replace(self, placeholder);
        let dir = this.dir.clone();
        match tokio::task::spawn_blocking(move || {
            this.rewatch(now);
            this
        })
        .await
        {
            Ok(this) => *self = this,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "re-watching the directory failed; starting a new watcher");
                self.dir = dir;
                self.start();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
