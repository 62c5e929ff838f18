//! The single writer: applies operations in order, makes their records
//! durable with one fsync per group, then publishes and answers.
//!
//! It runs on its own thread (fsync blocks) and takes requests from a
//! channel. Requests that arrive while a group is being written form the
//! next group, so concurrent writes share an fsync. It also keeps
//! `profiles.toml` in step with the log (see [`ProfilesSync`]). It ends when
//! every sender is gone (the service and the reload loop have stopped),
//! after bringing the profiles file up to date one last time.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cfgd_settings::{ConfigDir, SettingsError};
use tokio::sync::{mpsc, oneshot};

use crate::core::{Core, Input, ProfileChange};
use crate::error::OpError;
use crate::hub::{FileRole, FileStatus, Hub, View};
use crate::store::{OnDisk, Record, Remote, Store};

mod changelog;
mod shared;

use changelog::ChangeLog;

/// Longest the profiles file may lag the log under constant load (the log
/// is what makes a write durable; the file is for readers such as Prefect).
const PROFILES_LAG: Duration = Duration::from_millis(200);

/// How long the writer must be idle before it rewrites the profiles file.
const PROFILES_IDLE: Duration = Duration::from_millis(100);

/// First and longest wait before retrying a failed profiles-file write (or
/// re-reading an invalid file); failures are logged once per wait.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Largest group of requests sharing one fsync.
const MAX_GROUP: usize = 1024;

/// An operation for the writer.
pub(crate) enum Op {
    /// Validate and set a batch in the active profile.
    Set {
        /// `(name as given, value)` pairs.
        batch: Vec<(String, Input)>,
        /// Compare-and-set revision.
        expected: Option<u64>,
        /// Another profile than the active one (`cfg -p NAME`).
        profile: Option<String>,
    },
    /// Remove names from the active profile.
    Unset {
        /// Names as given.
        names: Vec<String>,
        /// Compare-and-set revision.
        expected: Option<u64>,
        /// Another profile than the active one (`cfg -p NAME`).
        profile: Option<String>,
    },
    /// A profile operation.
    Profile {
        /// Compare-and-set revision.
        expected: Option<u64>,
        /// The change.
        change: ProfileChange,
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
    /// The profiles file changed on disk: read it and take in an edit made
    /// outside cfgd.
    ProfilesFileChanged,
    /// Shared changes from the shared store (etcd), to apply in order.
    Remote(Remote),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Set { batch, .. } => write!(f, "Set({} names)", batch.len()),
            Op::Unset { names, .. } => write!(f, "Unset({names:?})"),
            Op::Profile { change, .. } => write!(f, "Profile({})", change.detail()),
            Op::Rollback { target, .. } => write!(f, "Rollback({target})"),
            Op::Reload { detail, .. } => write!(f, "Reload({detail})"),
            Op::ProfilesFileChanged => write!(f, "ProfilesFileChanged"),
            Op::Remote(r) => write!(f, "Remote({} records)", r.records.len()),
        }
    }
}

impl Op {
    /// Whether the operation writes the profile layer (refused while the
    /// profiles file on disk is invalid, so cfgd never overwrites it).
    fn writes_profiles(&self) -> bool {
        matches!(
            self,
            Op::Set { .. } | Op::Unset { .. } | Op::Profile { .. } | Op::Rollback { .. }
        )
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
    /// The layers `resolution` was resolved from.
    pub(crate) layers: crate::core::LayerSet,
    /// The view after the whole group (catalogue, profiles).
    pub(crate) view: Arc<View>,
}

/// The revision, effective values, active profile and layers right after
/// an operation.
type After = (
    u64,
    Arc<cfgd_settings::Resolution>,
    String,
    crate::core::LayerSet,
);

/// A request's reply channel and what its operation did.
type Answer = (
    oneshot::Sender<Result<Outcome, OpError>>,
    Result<(Option<Record>, After), OpError>,
);

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

/// How the history is bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    /// Records kept.
    pub(crate) records: usize,
    /// Bytes of records kept (as logged).
    pub(crate) bytes: usize,
}

/// What the start-up left for the writer to finish about the profiles file.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProfilesStart {
    /// The file lags the log (or is missing) and must be rewritten.
    pub(crate) stale: bool,
    /// The file is invalid: why (writes are refused until it is fixed).
    pub(crate) invalid: Option<String>,
}

/// Starts the writer thread. It ends when every [`WriterHandle`] is dropped.
pub(crate) fn spawn(
    core: Core,
    store: Box<dyn Store>,
    hub: Arc<Hub>,
    retention: Retention,
    start: ProfilesStart,
) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4096);
    // To wait for the next request with a timeout (see `Writer::run`).
    let runtime = tokio::runtime::Handle::current();
    let mut sync = ProfilesSync::default();
    if start.stale || start.invalid.is_some() {
        sync.dirty_since = Some(Instant::now());
    }
    sync.invalid = start.invalid;
    let thread = std::thread::Builder::new()
        .name("cfgd-writer".into())
        .spawn(move || {
            Writer {
                core,
                store,
                hub,
                retention,
                sync,
                log_error: None,
                changelog: ChangeLog::spawn(),
            }
            .run(rx, &runtime)
        })
        .expect("can spawn the writer thread");
    (WriterHandle { tx }, thread)
}

/// Keeping `profiles.toml` in step with the log. The file is rewritten once
/// the writer is idle (or has lagged [`PROFILES_LAG`]), always as a
/// read-modify-write: an edit found on disk is taken in first.
#[derive(Debug, Default)]
struct ProfilesSync {
    /// Since when the file lags the log (or must be checked again).
    dirty_since: Option<Instant>,
    /// After a failure: not before this.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Why the file on disk is invalid; profile writes are refused meanwhile.
    invalid: Option<String>,
    /// Why the last write of the file failed.
    error: Option<String>,
}

impl ProfilesSync {
    fn failed(&mut self, why: String) -> bool {
        self.backoff = if self.backoff.is_zero() {
            RETRY_FIRST
        } else {
            (self.backoff * 2).min(RETRY_MAX)
        };
        self.retry_at = Some(Instant::now() + self.backoff);
        let new = self.error.as_ref() != Some(&why);
        self.error = Some(why);
        new
    }

    fn succeeded(&mut self) {
        self.dirty_since = None;
        self.retry_at = None;
        self.backoff = Duration::ZERO;
        self.error = None;
    }

    /// When the writer should next look at the file, if it must.
    fn due(&self) -> Option<Instant> {
        let dirty = self.dirty_since?;
        Some(match self.retry_at {
            Some(t) => t,
            None => (Instant::now() + PROFILES_IDLE).min(dirty + PROFILES_LAG),
        })
    }
}

struct Writer {
    core: Core,
    store: Box<dyn Store>,
    hub: Arc<Hub>,
    retention: Retention,
    sync: ProfilesSync,
    /// Why the last append failed (shown in status until one succeeds).
    log_error: Option<String>,
    /// Writes the operators' line per change, on a thread of its own.
    changelog: ChangeLog,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>, runtime: &tokio::runtime::Handle) {
        loop {
            let next = match self.sync.due() {
                // The profiles file is rewritten once the writer has been
                // idle for PROFILES_IDLE (or has lagged PROFILES_LAG under
                // constant load), so a write costs one fsync, not three.
                Some(due) => {
                    let wait = due.saturating_duration_since(Instant::now());
                    match runtime.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                        Ok(next) => next,
                        Err(_idle) => {
                            self.sync_profiles();
                            continue;
                        }
                    }
                }
                None => rx.blocking_recv(),
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
            if self.sync.retry_at.is_none()
                && self
                    .sync
                    .dirty_since
                    .is_some_and(|t| t.elapsed() > PROFILES_LAG)
            {
                self.sync_profiles();
            }
            if rx.is_empty() {
                self.compact();
            }
        }
        if self.sync.dirty_since.is_some() {
            self.sync_profiles();
        }
        tracing::debug!("writer stopped");
    }

    fn group(&mut self, group: Vec<Request>) {
        if self.store.shared().is_none() {
            return self.local_group(group);
        }
        // A fleet: shared changes first (they move the shared revision),
        // then local ones (never held up by the shared store), then writes
        // (each chunk one transaction in the shared store).
        let (writes, rest): (Vec<Request>, Vec<Request>) =
            group.into_iter().partition(|r| r.op.writes_profiles());
        let (remote, local): (Vec<Request>, Vec<Request>) = rest
            .into_iter()
            .partition(|r| matches!(r.op, Op::Remote(_)));
        for r in remote {
            self.remote_request(r);
        }
        if !local.is_empty() {
            self.local_group(local);
        }
        if !writes.is_empty() {
            self.shared_group(writes);
        }
    }

    /// A group whose records go to the local log only (every group with the
    /// file store).
    fn local_group(&mut self, group: Vec<Request>) {
        let checkpoint = self.core.clone();
        let now = now_ms();
        let mut records = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        let mut check_file = false;
        for Request { op, reply } in group {
            if matches!(op, Op::ProfilesFileChanged) {
                check_file = true;
                let _ = reply.send(Ok(Outcome {
                    record: None,
                    revision: self.core.revision(),
                    resolution: self.core.resolution().clone(),
                    profile: self.core.active_profile().to_owned(),
                    layers: self.core.layer_set(),
                    view: self.hub.view(),
                }));
                continue;
            }
            let result = self.apply(&op, now).map(|record| (record, self.after()));
            if let Ok((Some(r), _)) = &result {
                records.push(r.clone());
            }
            answers.push((reply, result));
        }
        let durable = self.persist(checkpoint, &records);
        let records: Vec<Arc<Record>> = match durable {
            Ok(()) => records.into_iter().map(Arc::new).collect(),
            Err(e) => {
                for (reply, result) in answers {
                    let _ = reply.send(result.and_then(|_| Err(e.clone())));
                }
                return;
            }
        };
        self.publish(&records);
        self.answer(answers, records);
        if check_file {
            self.sync_profiles();
        }
    }

    /// The state right after an operation, for its answer.
    fn after(&self) -> After {
        (
            self.core.revision(),
            self.core.resolution().clone(),
            self.core.active_profile().to_owned(),
            self.core.layer_set(),
        )
    }

    /// Answers each request of a published group.
    fn answer(&self, answers: Vec<Answer>, records: Vec<Arc<Record>>) {
        let view = self.hub.view();
        let mut by_revision = records.into_iter();
        for (reply, result) in answers {
            let outcome = result.map(|(rec, (revision, resolution, profile, layers))| Outcome {
                record: rec.map(|r| {
                    by_revision
                        .find(|p| p.revision == r.revision)
                        .expect("every record was published")
                }),
                revision,
                resolution,
                profile,
                layers,
                view: view.clone(),
            });
            let _ = reply.send(outcome);
        }
    }

    /// Makes `records` durable, or puts `checkpoint` back.
    fn persist(&mut self, checkpoint: Core, records: &[Record]) -> Result<(), OpError> {
        if records.is_empty() {
            return Ok(());
        }
        crate::metrics::write_group(records.len());
        let started = Instant::now();
        let appended = self.store.append(records);
        crate::metrics::log_append(started.elapsed(), appended.is_ok());
        match appended {
            Ok(()) => {
                if self.log_error.take().is_some() {
                    tracing::info!("the revision log can be written again");
                }
                if records.iter().any(|r| !r.profiles.is_empty()) {
                    self.sync.dirty_since.get_or_insert_with(Instant::now);
                }
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                if self.log_error.as_ref() != Some(&msg) {
                    tracing::error!(error = %msg, "a write could not be made durable; it was not applied");
                }
                self.log_error = Some(msg);
                self.core = checkpoint;
                // Status shows why writes fail.
                self.hub.replace_view(self.view());
                Err(OpError::store(&e))
            }
        }
    }

    /// Publishes `records` and the view after them; with no records, swaps
    /// the view only when what status shows changed.
    fn publish(&mut self, records: &[Arc<Record>]) {
        self.changelog.log(records);
        let view = self.view();
        if records.is_empty() {
            if *view.files != *self.hub.view().files {
                self.hub.replace_view(view);
            }
        } else {
            self.hub.publish(records.to_vec(), view);
        }
    }

    fn apply(&mut self, op: &Op, now: i64) -> Result<Option<Record>, OpError> {
        if op.writes_profiles()
            && let Some(why) = &self.sync.invalid
        {
            return Err(OpError::ProfilesFileInvalid(why.clone()));
        }
        match op {
            Op::Set {
                batch,
                expected,
                profile,
            } => {
                let valid = self.core.validate(batch)?;
                self.core.set_in(&valid, *expected, profile.as_deref(), now)
            }
            Op::Unset {
                names,
                expected,
                profile,
            } => self
                .core
                .unset_in(names, *expected, profile.as_deref(), now),
            Op::Profile { expected, change } => self.core.profile_op(*expected, change, now),
            Op::Rollback { target, expected } => {
                let (target, expected) = (*target, *expected);
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
                self.core.rollback(&profiles, target, expected, now)
            }
            Op::Reload { dir, detail } => Ok(self.core.reload(dir.clone(), detail.clone(), now)),
            // Shared changes go through `remote_request`; the file store
            // has none.
            Op::ProfilesFileChanged | Op::Remote(_) => Ok(None),
        }
    }

    /// Brings the profiles file in step: takes in an edit made outside
    /// cfgd (as a revision of its own), then writes cfgd's state if the
    /// file lags it. Never overwrites a file that does not parse.
    fn sync_profiles(&mut self) {
        let path = self.store.profiles_path();
        match self.store.read_profiles(self.core.profiles()) {
            OnDisk::Invalid(e) => {
                let why = e.to_string();
                if self.sync.invalid.as_ref() != Some(&why) {
                    tracing::error!(file = %path, error = %why, "the profiles file is invalid: cfgd keeps its last good content and refuses profile writes until it is fixed");
                }
                self.sync.invalid = Some(why);
                self.sync.failed("invalid".into());
                self.publish(&[]);
                return;
            }
            OnDisk::Edited(delta) => {
                let checkpoint = self.core.clone();
                if let Some(record) = self.core.profiles_file_edit(delta, &path, now_ms()) {
                    tracing::info!(file = %path, revision = record.revision, "the profiles file was edited outside cfgd; taking the edit in");
                    if self
                        .persist(checkpoint, std::slice::from_ref(&record))
                        .is_err()
                    {
                        self.sync.failed("the edit could not be logged".into());
                        return;
                    }
                    self.publish(&[Arc::new(record)]);
                }
            }
            OnDisk::Ours { current: true } => {
                self.recovered_file();
                self.sync.succeeded();
                self.publish(&[]);
                return;
            }
            OnDisk::Ours { current: false } | OnDisk::Missing => {}
        }
        self.recovered_file();
        match self.store.write_profiles(self.core.profiles()) {
            Ok(()) => {
                if self.sync.error.is_some() {
                    tracing::info!(file = %path, "the profiles file is written again");
                }
                self.sync.succeeded();
            }
            Err(e) => {
                let why = e.to_string();
                if self.sync.failed(why.clone()) {
                    tracing::error!(file = %path, error = %why, retry_in = ?self.sync.backoff, "cannot write the profiles file; the log holds every change, retrying");
                }
            }
        }
        self.publish(&[]);
    }

    fn recovered_file(&mut self) {
        if self.sync.invalid.take().is_some() {
            tracing::info!(file = %self.store.profiles_path(), "the profiles file is valid again; profile writes are accepted");
        }
    }

    fn compact(&mut self) {
        if self.log_error.is_some() {
            return;
        }
        if let Some((base, history)) = self
            .hub
            .compact(self.retention.records, self.retention.bytes)
            && let Err(e) = self.store.compact(&base, &history)
        {
            tracing::warn!(error = %e, "cannot compact the revision log; it keeps growing until this works");
        }
    }

    fn view(&self) -> View {
        let health = StoreHealth {
            log_path: self.store.log_path(),
            log_error: self.log_error.clone(),
            profiles_error: self
                .sync
                .invalid
                .as_ref()
                .map(|e| format!("{e} (cfgd keeps its last good content and refuses profile writes until the file is fixed)"))
                .or_else(|| {
                    self.sync
                        .error
                        .as_ref()
                        .map(|e| format!("{e} (the file lags the revision log; retrying)"))
                }),
        };
        build_view(&self.core, &self.store.profiles_path(), &health)
    }
}

/// What status shows about the durable store.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreHealth {
    /// The revision log.
    pub(crate) log_path: String,
    /// Why writes cannot be made durable, if they cannot.
    pub(crate) log_error: Option<String>,
    /// What is wrong with the profiles file, if anything.
    pub(crate) profiles_error: Option<String>,
}

/// The view of `core` (also used at start-up).
pub(crate) fn build_view(core: &Core, profiles_path: &str, health: &StoreHealth) -> View {
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
                warnings: f.warnings().iter().map(ToString::to_string).collect(),
            }
        })
        .collect();
    let mut problems: Vec<String> = health.profiles_error.iter().cloned().collect();
    problems.extend(core.layer_errors().map(ToString::to_string));
    files.push(FileStatus {
        path: profiles_path.to_owned(),
        kind: FileRole::Profiles,
        error: (!problems.is_empty()).then(|| problems.join("\n")),
        error_line: None,
        warnings: core.layer_warnings().map(ToString::to_string).collect(),
    });
    if let Some(e) = &health.log_error {
        files.push(FileStatus {
            path: health.log_path.clone(),
            kind: FileRole::Log,
            error: Some(format!("{e} (writes are refused until it can be written)")),
            error_line: None,
            warnings: Vec::new(),
        });
    }
    View {
        revision: core.revision(),
        epoch: core.epoch(),
        active_profile: core.active_profile().to_owned(),
        resolution: core.resolution().clone(),
        catalog: core.catalog().clone(),
        profiles: core.profiles().clone(),
        files: Arc::new(files),
        layers: core.layer_set(),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_profiles_write_backs_off_and_is_logged_once_per_reason() {
        let mut s = ProfilesSync {
            dirty_since: Some(Instant::now()),
            ..Default::default()
        };
        assert!(
            s.failed("No space left on device".into()),
            "the first failure is logged"
        );
        let mut waits = vec![s.backoff];
        for _ in 0..8 {
            assert!(
                !s.failed("No space left on device".into()),
                "the same failure is not logged again"
            );
            waits.push(s.backoff);
        }
        assert_eq!(
            waits[..7],
            [500, 1000, 2000, 4000, 8000, 16000, 30000].map(Duration::from_millis)
        );
        assert_eq!(*waits.last().unwrap(), RETRY_MAX);
        assert!(
            s.failed("Permission denied".into()),
            "a new reason is logged"
        );
        s.succeeded();
        assert!(s.due().is_none());
        assert!(
            s.failed("No space left on device".into()),
            "logged again after a success"
        );
        assert_eq!(s.backoff, RETRY_FIRST);
    }
}
