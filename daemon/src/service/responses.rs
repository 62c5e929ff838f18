//! The answers the service sends, built from the published view or a
//! write's outcome. Values go through [`Mask`].

use cfgd_proto::pb;
use cfgd_settings::configdir::FileKind;
use cfgd_settings::{LayerKind, Resolved, SettingsError};

use super::Info;
use super::convert;
use super::mask::Mask;
use crate::error::OpError;
use crate::hub::{FileRole, Hub, View};
use crate::writer::Outcome;

/// The fields every write answers with: `SetResponse`, `UnsetResponse`,
/// `RollbackResponse` and `UseProfileResponse` are one shape on the wire.
#[derive(Debug)]
pub(crate) struct Written {
    revision: u64,
    epoch: u64,
    profile: String,
    applied: Vec<pb::Applied>,
    changed: bool,
}

macro_rules! write_responses {
    ($($t:ty),*) => {$(
        impl From<Written> for $t {
            fn from(w: Written) -> Self {
                Self {
                    revision: w.revision,
                    epoch: w.epoch,
                    profile: w.profile,
                    applied: w.applied,
                    changed: w.changed,
                }
            }
        }
    )*};
}
write_responses!(
    pb::SetResponse,
    pb::UnsetResponse,
    pb::RollbackResponse,
    pb::UseProfileResponse
);

/// What a write did to `given` (names as the caller gave them).
pub(crate) fn written(outcome: &Outcome, given: &[String], mask: Mask) -> Written {
    let view = &outcome.view;
    let applied = given
        .iter()
        .filter_map(|g| {
            let entry = view.catalog.get(g)?;
            let r = outcome.resolution.get(&entry.name)?;
            Some(pb::Applied {
                name: entry.name.clone(),
                given_name: g.clone(),
                value: Some(mask.value(profile_value(r))),
                effective: Some(convert::resolved(r, mask)),
            })
        })
        .collect();
    Written {
        revision: outcome.revision,
        epoch: view.epoch,
        profile: outcome.profile.clone(),
        applied,
        changed: outcome
            .record
            .as_ref()
            .is_some_and(|r| !r.changes.is_empty()),
    }
}

/// The names an operation changed (what a rollback or profile switch reports).
pub(crate) fn changed_names(outcome: &Outcome) -> Vec<String> {
    outcome
        .record
        .as_ref()
        .map(|r| r.changes.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The value the active profile holds for `r`, if any.
fn profile_value(r: &Resolved) -> Option<&cfgd_settings::Value> {
    if r.source.layer == LayerKind::Profile {
        return r.value.as_ref();
    }
    r.shadowed
        .iter()
        .find(|s| s.source.layer == LayerKind::Profile)
        .map(|s| &s.value)
}

/// `Snapshot`'s answer: a [`convert::snapshot`] with its fields inline.
pub(crate) fn snapshot(view: &View, names: Option<&[String]>, mask: Mask) -> pb::SnapshotResponse {
    let s = convert::snapshot(view, names, mask);
    pb::SnapshotResponse {
        revision: s.revision,
        epoch: s.epoch,
        active_profile: s.active_profile,
        settings: s.settings,
    }
}

/// `Validate`'s answer: one entry per problem, in request order.
pub(crate) fn validation(problems: Vec<pb::Problem>) -> pb::ValidateResponse {
    pb::ValidateResponse {
        errors: problems
            .into_iter()
            .map(|p| pb::ValidationError {
                name: p.given_name.clone(),
                message: p.message.clone(),
                problem: Some(p),
            })
            .collect(),
    }
}

/// The newest `limit` records.
pub(crate) fn history(hub: &Hub, limit: usize, mask: Mask) -> pb::HistoryResponse {
    let (records, oldest) = hub.history(limit);
    let view = hub.view();
    pb::HistoryResponse {
        changes: records
            .iter()
            .filter_map(|r| convert::change(r, None, mask))
            .collect(),
        revision: view.revision,
        epoch: view.epoch,
        oldest_revision: oldest,
    }
}

/// Every profile; the active one even before anything is written to it.
pub(crate) fn profiles(view: &View) -> pb::ListProfilesResponse {
    let mut names: Vec<&String> = view.profiles.profiles.keys().collect();
    if !names.iter().any(|n| **n == view.active_profile) {
        names.push(&view.active_profile);
        names.sort();
    }
    pb::ListProfilesResponse {
        profiles: names
            .into_iter()
            .map(|n| pb::ProfileInfo {
                name: n.clone(),
                active: *n == view.active_profile,
                settings: view.profiles.profiles.get(n).map_or(0, |p| p.len() as u32),
            })
            .collect(),
        active: view.active_profile.clone(),
    }
}

/// The values profile `name` holds (empty: the active one).
///
/// # Errors
/// No such profile.
pub(crate) fn inspect(
    view: &View,
    name: String,
    mask: Mask,
) -> Result<pb::InspectProfileResponse, OpError> {
    let name = if name.is_empty() {
        view.active_profile.clone()
    } else {
        name
    };
    let values = match view.profiles.profiles.get(&name) {
        Some(v) => v.clone(),
        None if name == view.active_profile => Default::default(),
        None => return Err(OpError::Settings(SettingsError::ProfileNotFound(name))),
    };
    let entries = values
        .iter()
        .map(|(key, raw)| {
            let entry = view.catalog.get(key);
            pb::ProfileEntry {
                name: entry.map_or_else(|| key.clone(), |e| e.name.clone()),
                value: Some(mask.stored(entry, raw)),
                secret: entry.is_some_and(cfgd_settings::Entry::is_secret),
            }
        })
        .collect();
    Ok(pb::InspectProfileResponse {
        active: name == view.active_profile,
        name,
        entries,
    })
}

/// The daemon's status.
pub(crate) fn status(hub: &Hub, info: &Info) -> pb::StatusResponse {
    let view = hub.view();
    let files = view
        .files
        .iter()
        .map(|f| pb::ConfigFile {
            path: f.path.clone(),
            kind: match f.kind {
                FileRole::Config(FileKind::Catalog) => pb::FileKind::Catalog,
                FileRole::Config(FileKind::Values) => pb::FileKind::Values,
                FileRole::Config(FileKind::DotEnv) => pb::FileKind::Dotenv,
                FileRole::Profiles => pb::FileKind::Profiles,
                FileRole::Log => pb::FileKind::Log,
            } as i32,
            error: f.error.clone().unwrap_or_default(),
            error_line: f.error_line.unwrap_or(0),
            warnings: f.warnings.clone(),
        })
        .collect();
    pb::StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        listen: info.listen.clone(),
        revision: view.revision,
        epoch: view.epoch,
        oldest_revision: hub.oldest(),
        active_profile: view.active_profile.clone(),
        config_dir: info.config_dir.clone(),
        state_dir: info.state_dir.clone(),
        profiles_path: info.profiles_path.clone(),
        files,
        watchers: hub.watchers(),
        started_unix_ms: info.started_ms,
        settings: view.resolution.len() as u32,
        reload: Some(info.reload.borrow().to_pb()),
        connections: Some(info.connections.to_pb()),
        store: None,
    }
}

/// The catalogue.
pub(crate) fn catalog(view: &View) -> pb::CatalogResponse {
    pb::CatalogResponse {
        entries: view
            .catalog
            .entries()
            .iter()
            .map(convert::catalog_entry)
            .collect(),
    }
}
