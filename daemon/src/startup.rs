//! Start-up: the state dir and its lock, and recovery of the durable state
//! into the settings core.

use std::collections::VecDeque;
use std::sync::Arc;

use cfgd_settings::ConfigDir;

use crate::DaemonError;
use crate::core::Core;
use crate::store::{Base, Record, Store, apply_changes};
use crate::writer;

/// Recovers the store and builds the core at the recovered revision,
/// recording (durably) how the effective values differ from the log's last
/// record, if they do.
pub(crate) fn recover(
    store: &mut dyn Store,
    config_dir: &ConfigDir,
    env: &Arc<Vec<(String, String)>>,
) -> Result<(Core, Base, VecDeque<Record>), DaemonError> {
    let initial = |profiles: &cfgd_settings::ProfilesFile| {
        Core::new(config_dir.clone(), env.clone(), profiles.clone(), 0, 0).effective()
    };
    let rec = store.recover(&initial)?;
    let mut last = rec.base.effective.clone();
    for r in &rec.records {
        apply_changes(&mut last, &r.changes);
    }
    let logged = rec
        .records
        .iter()
        .rev()
        .find_map(|r| r.profiles.clone())
        .unwrap_or_else(|| rec.base.profiles.clone());
    let revision = rec.records.back().map_or(rec.base.revision, |r| r.revision);
    let mut core = Core::new(
        config_dir.clone(),
        env.clone(),
        rec.profiles,
        rec.base.epoch,
        revision,
    );
    let mut records = rec.records;
    if let Some(r) = core.startup(&last, &logged, writer::now_ms()) {
        tracing::info!(
            revision = r.revision,
            changes = r.changes.len(),
            "effective values changed while cfgd was down"
        );
        store.append(std::slice::from_ref(&r))?;
        if r.profiles.is_some() {
            store.write_profiles(core.profiles())?;
        }
        records.push_back(r);
    }
    Ok((core, rec.base, records))
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
