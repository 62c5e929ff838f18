//! Start-up: the state dir and its lock, and recovery of the durable state
//! into the settings core.

use std::collections::VecDeque;
use std::sync::Arc;

use cfgd_settings::{ConfigDir, ProfilesDelta, ProfilesFile};

use crate::DaemonError;
use crate::core::{Core, ProfileLimits};
use crate::store::{Base, Numbering, OnDisk, Record, Store};
use crate::writer::{self, ProfilesStart};

/// The recovered state, ready to serve.
pub(crate) struct Started {
    /// The settings core at the recovered revision.
    pub(crate) core: Core,
    /// The checkpoint before the retained history.
    pub(crate) base: Base,
    /// The retained history, oldest first.
    pub(crate) records: VecDeque<Record>,
    /// What remains to do about the profiles file.
    pub(crate) profiles: ProfilesStart,
}

/// Recovers the store and builds the core at the recovered revision:
/// replays the log over its checkpoint, takes in an edit made to the
/// profiles file while cfgd was down, and records (durably) how the
/// effective values differ from what the log last recorded, if they do.
///
/// # Errors
/// A store that cannot be trusted or read, or a start-up record that
/// cannot be made durable.
pub(crate) fn recover(
    store: &mut dyn Store,
    config_dir: &ConfigDir,
    env: &Arc<Vec<(String, String)>>,
    limits: ProfileLimits,
    numbering: Numbering,
) -> Result<Started, DaemonError> {
    let initial = |profiles: &ProfilesFile| {
        Core::new(config_dir.clone(), env.clone(), profiles.clone(), 0, 0).effective()
    };
    let rec = store.recover(&initial)?;
    let mut profiles = rec.profiles();
    let last = rec.effective();
    let mut start = ProfilesStart::default();
    let mut edit = ProfilesDelta::default();
    match store.read_profiles(&profiles) {
        OnDisk::Ours { current } => start.stale = !current,
        OnDisk::Missing => start.stale = true,
        OnDisk::Edited(delta) => {
            tracing::info!(file = %store.profiles_path(), "the profiles file was edited while cfgd was down; taking the edit in");
            profiles.apply(&delta);
            edit = delta;
            start.stale = true;
        }
        OnDisk::Invalid(e) => {
            tracing::error!(file = %store.profiles_path(), error = %e, "the profiles file is invalid: serving the profiles the revision log holds; profile writes are refused until the file is fixed");
            start.invalid = Some(e.to_string());
        }
    }
    let mut core = Core::new(
        config_dir.clone(),
        env.clone(),
        profiles,
        rec.base.epoch,
        rec.revision(),
    )
    .with_limits(limits)
    .with_numbering(numbering);
    let mut records = rec.records;
    if let Some(r) = core.startup(&last, edit, writer::now_ms()) {
        tracing::info!(
            revision = r.revision,
            changes = r.changes.len(),
            "effective values changed while cfgd was down"
        );
        store.append(std::slice::from_ref(&r))?;
        records.push_back(r);
    }
    // Repair the file now, so it is current once cfgd serves; if it cannot
    // be written (a full disk), cfgd serves anyway and the writer retries:
    // the log holds everything.
    if start.stale {
        match store.write_profiles(core.profiles()) {
            Ok(()) => start.stale = false,
            Err(e) => {
                tracing::warn!(file = %store.profiles_path(), error = %e, "cannot write the profiles file yet; serving from the revision log and retrying")
            }
        }
    }
    Ok(Started {
        core,
        base: rec.base,
        records,
        profiles: start,
    })
}

/// Creates the state dir (mode 0700) and locks it for this process: two
/// daemons on one revision log would corrupt it. The lock lasts as long as
/// the returned file is open.
pub(crate) fn create_state_dir(dir: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    let err = |source| DaemonError::StateDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(err)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(DaemonError::StateDirInUse(dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
    }
}
