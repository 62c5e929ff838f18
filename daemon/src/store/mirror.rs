//! `profiles.toml`, shared with Prefect: what cfgd last wrote there is kept
//! in a marker beside the log, so an edit made outside cfgd is told apart
//! from cfgd's own (possibly lagging) content, and taken in as a delta.
//!
//! A write goes: marker `{prev: last written, next: new}` (atomic, fsync),
//! then the file (atomic, fsync). A crash between the two leaves the file at
//! `prev`, which the marker still recognises as cfgd's own, so a lagging file
//! is never mistaken for an edit (the bug that undid acknowledged writes).

use std::path::{Path, PathBuf};

use cfgd_settings::ProfilesFile;
use cfgd_settings::fs::write_atomic;
use serde::{Deserialize, Serialize};

use super::{OnDisk, StoreError};

/// The marker's file name in the state dir.
pub(super) const MARKER_FILE: &str = "profiles.written.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    /// The profiles file the marker is about.
    path: String,
    /// What cfgd wrote before `next` (the file may still hold it).
    prev: Option<ProfilesFile>,
    /// What cfgd last wrote.
    next: ProfilesFile,
}

/// The profiles file and the marker of what cfgd last wrote there.
#[derive(Debug)]
pub(super) struct Mirror {
    path: PathBuf,
    marker_path: PathBuf,
    marker: Option<Marker>,
}

impl Mirror {
    /// The mirror of `path`, with its marker in `state_dir` (read now; a
    /// marker for another path, or none, means cfgd never wrote this file).
    pub(super) fn open(state_dir: &Path, path: &Path) -> Self {
        let marker_path = state_dir.join(MARKER_FILE);
        let marker = std::fs::read(&marker_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
            .filter(|m| Path::new(&m.path) == path);
        Self {
            path: path.to_owned(),
            marker_path,
            marker,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether cfgd ever wrote this file (a marker exists for it).
    pub(super) fn known(&self) -> bool {
        self.marker.is_some()
    }

    /// Records `content` as what the file holds and cfgd wrote (used when a
    /// new store takes the file as its start, and after a v1 migration).
    pub(super) fn adopt(&mut self, content: &ProfilesFile) -> Result<(), StoreError> {
        self.save_marker(Marker {
            path: self.path.display().to_string(),
            prev: None,
            next: content.clone(),
        })
    }

    /// Compares the file with `state` and with what cfgd last wrote.
    pub(super) fn read(&self, state: &ProfilesFile) -> OnDisk {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return OnDisk::Missing,
            Err(e) => {
                return OnDisk::Invalid(cfgd_settings::SettingsError::Io {
                    action: "cannot read",
                    path: self.path.display().to_string(),
                    message: e.to_string(),
                });
            }
        };
        let disk = match ProfilesFile::parse(&text, &self.path) {
            Ok(d) => d,
            Err(e) => return OnDisk::Invalid(e),
        };
        let Some(m) = &self.marker else {
            // Never written by cfgd: whatever differs is someone else's.
            return if disk == *state {
                OnDisk::Ours { current: true }
            } else {
                OnDisk::Edited(state.diff(&disk))
            };
        };
        if disk == m.next || m.prev.as_ref() == Some(&disk) {
            return OnDisk::Ours {
                current: disk == *state,
            };
        }
        // Edited after cfgd's last write (or after the one before it, if
        // cfgd crashed between marker and file): take the edit relative to
        // the nearer of the two.
        let from_next = m.next.diff(&disk);
        let delta = match &m.prev {
            Some(prev) => {
                let from_prev = prev.diff(&disk);
                if delta_size(&from_prev) < delta_size(&from_next) {
                    from_prev
                } else {
                    from_next
                }
            }
            None => from_next,
        };
        OnDisk::Edited(delta)
    }

    /// Writes `state`: the marker first, then the file.
    pub(super) fn write(&mut self, state: &ProfilesFile) -> Result<(), StoreError> {
        let prev = self.marker.as_ref().map(|m| m.next.clone());
        if prev.as_ref() != Some(state) {
            self.save_marker(Marker {
                path: self.path.display().to_string(),
                prev,
                next: state.clone(),
            })?;
        }
        state.save(&self.path)?;
        Ok(())
    }

    fn save_marker(&mut self, marker: Marker) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&marker).expect("profiles serialize");
        write_atomic(&self.marker_path, &bytes, 0o600).map_err(|source| StoreError::Io {
            action: "cannot write",
            path: self.marker_path.display().to_string(),
            source,
        })?;
        self.marker = Some(marker);
        Ok(())
    }
}

fn delta_size(d: &cfgd_settings::ProfilesDelta) -> usize {
    usize::from(d.active.is_some())
        + d.removed.len()
        + d.profiles
            .values()
            .map(|t| 1 + t.put.len() + t.remove.len())
            .sum::<usize>()
}
