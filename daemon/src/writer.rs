//! The single writer: applies operations in order, makes their records
//! durable with one fsync per group, then publishes and answers.
//!
//! It runs on its own thread (fsync blocks) and takes requests from a
//! channel. Requests that arrive while a group is being written form the
//! next group, so concurrent writes share an fsync. It ends when every
//! sender is gone (the service and the reload loop have stopped), after
//! writing the profiles file one last time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cfgd_settings::{ConfigDir, ProfilesFile, SettingsError};
use tokio::sync::{mpsc, oneshot};

use crate::core::{Core, Input};
use crate::error::OpError;
use crate::hub::{FileRole, FileStatus, Hub, View};
use crate::store::{Record, Store};

/// Longest the profiles file may lag the log under constant load (the log
/// is what makes a write durable; the file is for readers such as Prefect).
const PROFILES_LAG: std::time::Duration = std::time::Duration::from_millis(200);

/// How long the writer must be idle before it rewrites the profiles file.
const PROFILES_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Largest group of requests sharing one fsync.
const MAX_GROUP: usize = 1024;

/// A change to the profiles (create, delete, rename, use).
pub(crate) type ProfileFn = Box<dyn FnOnce(&mut ProfilesFile) -> Result<(), SettingsError> + Send>;

/// An operation for the writer.
pub(crate) enum Op {
    /// Validate and set a batch in the active profile.
    Set {
        /// `(name as given, value)` pairs.
        batch: Vec<(String, Input)>,
        /// Compare-and-set revision.
        expected: Option<u64>,
    },
    /// Remove names from the active profile.
    Unset {
        /// Names as given.
        names: Vec<String>,
        /// Compare-and-set revision.
        expected: Option<u64>,
    },
    /// A profile operation.
    Profile {
        /// What it does, for the record.
        detail: String,
        /// Compare-and-set revision.
        expected: Option<u64>,
        /// The change.
        change: ProfileFn,
    },
    /// Restore the profiles as they were at a revision.
    Rollback {
        /// The revision to go back to.
        target: u64,
        /// Compare-and-set revision.
        expected: Option<u64>,
    },
    /// Take a re-read config dir.
    Reload {
        /// The new state of the config dir.
        dir: Arc<ConfigDir>,
        /// Which files changed.
        detail: String,
    },
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Set { batch, .. } => write!(f, "Set({} names)", batch.len()),
            Op::Unset { names, .. } => write!(f, "Unset({names:?})"),
            Op::Profile { detail, .. } => write!(f, "Profile({detail})"),
            Op::Rollback { target, .. } => write!(f, "Rollback({target})"),
            Op::Reload { detail, .. } => write!(f, "Reload({detail})"),
        }
    }
}

/// What a successful operation did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The record it made, if anything changed.
    pub(crate) record: Option<Arc<Record>>,
    /// The revision right after this operation (later operations of the
    /// same group may have moved the view on).
    pub(crate) revision: u64,
    /// The effective values right after this operation.
    pub(crate) resolution: Arc<cfgd_settings::Resolution>,
    /// The active profile right after this operation.
    pub(crate) profile: String,
    /// The view after the whole group (catalogue, profiles).
    pub(crate) view: Arc<View>,
}

/// A request: an operation and where to send the answer.
#[derive(Debug)]
pub(crate) struct Request {
    /// The operation.
    pub(crate) op: Op,
    /// The answer.
    pub(crate) reply: oneshot::Sender<Result<Outcome, OpError>>,
}

/// Sends operations to the writer.
#[derive(Debug, Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Request>,
}

impl WriterHandle {
    /// Runs `op` and waits until it is durable and published.
    ///
    /// # Errors
    /// The operation's own error, or [`OpError::ShuttingDown`].
    pub(crate) async fn run(&self, op: Op) -> Result<Outcome, OpError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { op, reply })
            .await
            .map_err(|_| OpError::ShuttingDown)?;
        rx.await.map_err(|_| OpError::ShuttingDown)?
    }
}

/// Starts the writer thread. It ends when every [`WriterHandle`] is dropped.
pub(crate) fn spawn(
    core: Core,
    store: Box<dyn Store>,
    hub: Arc<Hub>,
    history_limit: usize,
) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4096);
    // To wait for the next request with a timeout (see `Writer::run`).
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::Builder::new()
        .name("cfgd-writer".into())
        .spawn(move || {
            Writer {
                core,
                store,
                hub,
                history_limit,
                profiles_dirty: None,
            }
            .run(rx, &runtime)
        })
        .expect("can spawn the writer thread");
    (WriterHandle { tx }, thread)
}

struct Writer {
    core: Core,
    store: Box<dyn Store>,
    hub: Arc<Hub>,
    history_limit: usize,
    /// Since when the profiles file lags the log (it is written when the
    /// writer is idle, or after [`PROFILES_LAG`] under constant load).
    profiles_dirty: Option<std::time::Instant>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>, runtime: &tokio::runtime::Handle) {
        loop {
            // The profiles file is rewritten once the writer has been idle for
            // PROFILES_IDLE (or has lagged PROFILES_LAG under constant load),
            // so a write costs one fsync, not three.
            let next = if self.profiles_dirty.is_some() {
                let waited = runtime
                    .block_on(async { tokio::time::timeout(PROFILES_IDLE, rx.recv()).await });
                match waited {
                    Ok(next) => next,
                    Err(_idle) => {
                        self.flush_profiles();
                        continue;
                    }
                }
            } else {
                rx.blocking_recv()
            };
            let Some(first) = next else { break };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.group(group);
            if self
                .profiles_dirty
                .is_some_and(|t| t.elapsed() > PROFILES_LAG)
            {
                self.flush_profiles();
            }
            if rx.is_empty() {
                self.compact();
            }
        }
        self.flush_profiles();
        tracing::debug!("writer stopped");
    }

    fn group(&mut self, group: Vec<Request>) {
        let checkpoint = self.core.clone();
        let now = now_ms();
        let mut records = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        let mut status_changed = false;
        for Request { op, reply } in group {
            let is_reload = matches!(op, Op::Reload { .. });
            let result = self.apply(op, now).map(|record| {
                let after = (
                    self.core.revision(),
                    self.core.resolution().clone(),
                    self.core.profiles().active_name().to_owned(),
                );
                (record, after)
            });
            status_changed |= is_reload;
            if let Ok((Some(r), _)) = &result {
                records.push(r.clone());
            }
            answers.push((reply, result));
        }
        if !records.is_empty() {
            if let Err(e) = self.store.append(&records) {
                tracing::error!(error = %e, "a write could not be made durable; it was not applied");
                self.core = checkpoint;
                let msg = e.to_string();
                for (reply, result) in answers {
                    let _ = reply.send(result.and_then(|_| Err(OpError::Store(msg.clone()))));
                }
                return;
            }
            if records.iter().any(|r| r.profiles.is_some()) {
                self.profiles_dirty
                    .get_or_insert_with(std::time::Instant::now);
            }
        }
        let records: Vec<Arc<Record>> = records.into_iter().map(Arc::new).collect();
        for r in &records {
            log_record(r);
        }
        let view = self.view();
        if records.is_empty() {
            if status_changed {
                self.hub.replace_view(view);
            }
        } else {
            self.hub.publish(records.clone(), view);
        }
        let view = self.hub.view();
        let mut by_revision = records.into_iter();
        for (reply, result) in answers {
            let outcome = result.map(|(rec, (revision, resolution, profile))| Outcome {
                record: rec.map(|r| {
                    by_revision
                        .find(|p| p.revision == r.revision)
                        .expect("every record was published")
                }),
                revision,
                resolution,
                profile,
                view: view.clone(),
            });
            let _ = reply.send(outcome);
        }
    }

    fn apply(&mut self, op: Op, now: i64) -> Result<Option<Record>, OpError> {
        match op {
            Op::Set { batch, expected } => {
                let valid = self.core.validate(&batch)?;
                self.core.set(&valid, expected, now)
            }
            Op::Unset { names, expected } => self.core.unset(&names, expected, now),
            Op::Profile {
                detail,
                expected,
                change,
            } => self.core.profile_op(expected, detail, now, change),
            Op::Rollback { target, expected } => {
                let profiles = match self.hub.profiles_at(target) {
                    Err(oldest) => {
                        return Err(OpError::Compacted {
                            revision: target,
                            oldest,
                        });
                    }
                    Ok(None) => {
                        return Err(OpError::Future {
                            revision: target,
                            current: self.core.revision(),
                        });
                    }
                    Ok(Some(p)) => p,
                };
                self.core.rollback(profiles, target, expected, now)
            }
            Op::Reload { dir, detail } => Ok(self.core.reload(dir, detail, now)),
        }
    }

    fn flush_profiles(&mut self) {
        if self.profiles_dirty.is_none() {
            return;
        }
        match self.store.write_profiles(self.core.profiles()) {
            Ok(()) => self.profiles_dirty = None,
            // The log holds the change; recovery rewrites the file.
            Err(e) => tracing::error!(error = %e, "cannot write the profiles file; will retry"),
        }
    }

    fn compact(&mut self) {
        if let Some((base, history)) = self.hub.compact(self.history_limit) {
            let records: VecDeque<Record> = history.iter().map(|r| (**r).clone()).collect();
            if let Err(e) = self.store.compact(&base, &records) {
                tracing::warn!(error = %e, "cannot compact the revision log; it keeps growing until this works");
            }
        }
    }

    fn view(&self) -> View {
        build_view(&self.core, &self.store.profiles_path())
    }
}

/// The view of `core` (also used at start-up).
pub(crate) fn build_view(core: &Core, profiles_path: &str) -> View {
    let mut files: Vec<FileStatus> = core
        .config_dir()
        .files()
        .map(|f| {
            let first = f.error.as_ref().and_then(|e| e.0.first());
            FileStatus {
                path: f.path.display().to_string(),
                kind: FileRole::Config(f.kind),
                error: f.error_text(),
                error_line: first.and_then(SettingsError::line),
            }
        })
        .collect();
    let layer_errors: Vec<String> = core.layer_errors().map(ToString::to_string).collect();
    files.push(FileStatus {
        path: profiles_path.to_owned(),
        kind: FileRole::Profiles,
        error: (!layer_errors.is_empty()).then(|| layer_errors.join("\n")),
        error_line: None,
    });
    View {
        revision: core.revision(),
        epoch: core.epoch(),
        active_profile: core.profiles().active_name().to_owned(),
        resolution: core.resolution().clone(),
        catalog: core.catalog().clone(),
        profiles: Arc::new(core.profiles().clone()),
        files: Arc::new(files),
    }
}

fn log_record(r: &Record) {
    for c in &r.changes {
        let show =
            |e: &Option<crate::store::Effective>| match e.as_ref().and_then(|e| e.value.as_ref()) {
                Some(_) if c.secret => cfgd_settings::MASK.to_owned(),
                Some(v) => v.to_string(),
                None => "unset".to_owned(),
            };
        tracing::info!(
            revision = r.revision,
            origin = ?r.origin,
            setting = %c.name,
            old = %show(&c.old),
            new = %show(&c.new),
            source = %c.new.as_ref().map(|e| e.source.to_string()).unwrap_or_default(),
            "setting changed"
        );
    }
    if r.changes.is_empty() {
        tracing::info!(revision = r.revision, origin = ?r.origin, detail = %r.detail, "profiles changed (no effective value changed)");
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
