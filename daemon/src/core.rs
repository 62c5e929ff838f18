//! The daemon's settings state and every operation on it, without I/O.
//!
//! Each operation validates first, then changes the state and returns the
//! [`Record`] it produced (or none when nothing changed). The writer
//! ([`crate::writer`]) makes records durable, publishes them and, if the log
//! append fails, puts back the checkpoint it took.

use std::collections::BTreeMap;
use std::sync::Arc;

use cfgd_settings::{
    Catalog, ConfigDir, Entry, Layer, LayerKind, Layers, ProfilesDelta, ProfilesFile, Resolution,
    SettingsError, Source, Value, resolve,
};

use crate::error::OpError;
use crate::store::{Effective, KeyChange, Numbering, Origin, Record, shared_revision};

/// A value given by a client: a string for the one parser, or typed.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// Parsed with `cfgd_settings::value::parse`.
    Raw(String),
    /// Converted with `cfgd_settings::value::coerce`.
    Typed(Value),
}

/// One validated assignment.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    /// The canonical name.
    pub(crate) name: String,
    /// The typed value.
    pub(crate) value: Value,
}

/// A profile operation, as data: a writer group that lost a race with
/// another daemon is applied again after the other's changes, so an
/// operation must be able to run more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProfileChange {
    /// A new profile, empty or a copy of `from`.
    Create {
        /// Its name.
        name: String,
        /// The profile it copies.
        from: Option<String>,
    },
    /// Make a profile the active one.
    Use(String),
    /// Delete a profile that is not active.
    Delete(String),
    /// Rename a profile (the active one too).
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl ProfileChange {
    fn apply(&self, p: &mut ProfilesFile) -> Result<(), SettingsError> {
        match self {
            ProfileChange::Create { name, from } => p.create(name, from.as_deref()),
            ProfileChange::Use(name) => p.use_profile(name),
            ProfileChange::Delete(name) => p.delete(name),
            ProfileChange::Rename { from, to } => p.rename(from, to),
        }
    }

    /// What it does, for the record.
    pub(crate) fn detail(&self) -> String {
        match self {
            ProfileChange::Create { name, from: None } => format!("create {name}"),
            ProfileChange::Create {
                name,
                from: Some(f),
            } => format!("create {name} from {f}"),
            ProfileChange::Use(name) => format!("use {name}"),
            ProfileChange::Delete(name) => format!("delete {name}"),
            ProfileChange::Rename { from, to } => format!("rename {from} to {to}"),
        }
    }
}

/// Bounds on the profile layer, so no client can grow the state (and every
/// record, marker and file written from it) without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProfileLimits {
    /// Most profiles.
    pub(crate) max_profiles: usize,
    /// Most bytes of names and values across all profiles.
    pub(crate) max_bytes: usize,
}

impl Default for ProfileLimits {
    fn default() -> Self {
        let l = crate::config::Limits::default();
        Self {
            max_profiles: l.max_profiles,
            max_bytes: l.max_profile_bytes,
        }
    }
}

/// Every layer the daemon resolves, shared (cheap to clone): what a read
/// "as if profile P were active" re-resolves with P's layer in place of
/// the active one.
#[derive(Debug, Clone)]
pub(crate) struct LayerSet {
    profile: Arc<Layer>,
    config_dir: Arc<ConfigDir>,
    env: Arc<Layer>,
}

impl LayerSet {
    /// The layers in precedence order.
    pub(crate) fn layers(&self) -> Layers<'_> {
        let mut layers = Layers::new()
            .with_catalog_defaults()
            .with(&self.profile)
            .with(&self.env);
        layers.extend(self.config_dir.layers());
        layers
    }

    /// The catalogue these layers were built for.
    pub(crate) fn catalog(&self) -> &Catalog {
        self.config_dir.catalog()
    }
}

/// The settings state: every layer, the resolution, the revision.
///
/// Cheap to clone (the writer keeps a checkpoint of it per group): every
/// large part is shared behind an `Arc` and copied only when changed.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    config_dir: Arc<ConfigDir>,
    // No defaults layer: every resolution reads the catalogue's defaults
    // (`Layers::with_catalog_defaults`).
    env: Arc<Vec<(String, String)>>,
    env_layer: Arc<Layer>,
    env_errors: Arc<Vec<SettingsError>>,
    profiles: Arc<ProfilesFile>,
    profile_layer: Arc<Layer>,
    profile_errors: Arc<Vec<SettingsError>>,
    resolution: Arc<Resolution>,
    revision: u64,
    epoch: u64,
    limits: ProfileLimits,
    numbering: Numbering,
}

impl Core {
    /// Builds the state from its inputs (env is the daemon's environment).
    pub(crate) fn new(
        config_dir: ConfigDir,
        env: Arc<Vec<(String, String)>>,
        profiles: ProfilesFile,
        epoch: u64,
        revision: u64,
    ) -> Self {
        let mut core = Self {
            config_dir: Arc::new(config_dir),
            env,
            env_layer: Arc::new(Layer::empty(LayerKind::Env)),
            env_errors: Arc::default(),
            profiles: Arc::new(profiles),
            profile_layer: Arc::new(Layer::empty(LayerKind::Profile)),
            profile_errors: Arc::default(),
            resolution: Arc::default(),
            revision,
            epoch,
            limits: ProfileLimits::default(),
            numbering: Numbering::Dense,
        };
        core.rebuild_env();
        core.rebuild_profile();
        core.resolution = Arc::new(core.resolve());
        core
    }

    /// Sets the bounds on the profile layer.
    pub(crate) fn with_limits(mut self, limits: ProfileLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Numbers revisions as `numbering` says (a fleet's shared changes
    /// take the next shared revision).
    pub(crate) fn with_numbering(mut self, numbering: Numbering) -> Self {
        self.numbering = numbering;
        self
    }

    /// The catalogue in force.
    pub(crate) fn catalog(&self) -> &Catalog {
        self.config_dir.catalog()
    }

    /// The config dir state (files and their errors).
    pub(crate) fn config_dir(&self) -> &ConfigDir {
        &self.config_dir
    }

    /// The profiles state.
    pub(crate) fn profiles(&self) -> &Arc<ProfilesFile> {
        &self.profiles
    }

    /// The current resolution.
    pub(crate) fn resolution(&self) -> &Arc<Resolution> {
        &self.resolution
    }

    /// The current revision.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// The store's epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Problems in the environment and the active profile (bad entries are
    /// left out of their layer and reported here).
    pub(crate) fn layer_errors(&self) -> impl Iterator<Item = &SettingsError> {
        self.env_errors.iter().chain(self.profile_errors.iter())
    }

    /// Problems that leave the active profile in force (unknown `PREFECT_`
    /// names, kept in the file as they are).
    pub(crate) fn layer_warnings(&self) -> impl Iterator<Item = &SettingsError> {
        self.profile_layer.warnings.iter()
    }

    /// Effective values by name (what the revision log tracks).
    pub(crate) fn effective(&self) -> BTreeMap<String, Effective> {
        effective_of(&self.resolution)
    }

    fn rebuild_env(&mut self) {
        // A bad variable is left out and reported, so it does not hide the rest.
        let (layer, errors) = Layer::from_env_lenient(
            self.config_dir.catalog(),
            LayerKind::Env,
            self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.env_layer = Arc::new(layer);
        self.env_errors = Arc::new(errors);
    }

    /// The profile in force: `PREFECT_PROFILE` in the daemon's environment
    /// pins it, as it pins Prefect's (env beats the file's `active`);
    /// otherwise the file's `active`.
    pub(crate) fn active_profile(&self) -> &str {
        self.env
            .iter()
            .rev()
            .find(|(k, v)| k == "PREFECT_PROFILE" && !v.is_empty())
            .map_or_else(|| self.profiles.active_name(), |(_, v)| v.as_str())
    }

    fn rebuild_profile(&mut self) {
        let name = self.active_profile().to_owned();
        let (layer, errors) = Layer::from_profile_lenient(
            self.config_dir.catalog(),
            &name,
            &self.profiles.values(&name),
        );
        self.profile_layer = Arc::new(layer);
        self.profile_errors = Arc::new(errors);
    }

    /// Every layer of the daemon, shared.
    pub(crate) fn layer_set(&self) -> LayerSet {
        LayerSet {
            profile: self.profile_layer.clone(),
            config_dir: self.config_dir.clone(),
            env: self.env_layer.clone(),
        }
    }

    fn resolve(&self) -> Resolution {
        let mut layers = Layers::new()
            .with_catalog_defaults()
            .with(&self.profile_layer)
            .with(&self.env_layer);
        layers.extend(self.config_dir.layers());
        resolve(self.config_dir.catalog(), &layers)
    }

    /// Applies a profile-layer delta and re-resolves only what it touched:
    /// the active profile's layer is rebuilt (O(its size)) when the delta
    /// touches it, and only the names whose value in that layer changed are
    /// resolved again (an alias counts as its setting; a profile switch
    /// changes the source of every value either profile gives). Every other
    /// layer and the catalogue are as they were, so this is what a full
    /// resolve gives (`incremental_resolve_equals_full` checks it).
    fn apply_delta(&mut self, delta: &ProfilesDelta) -> Vec<KeyChange> {
        let active_before = self.active_profile().to_owned();
        Arc::make_mut(&mut self.profiles).apply(delta);
        if !delta.touches_active(&active_before) {
            return Vec::new();
        }
        let old = self.profile_layer.clone();
        self.rebuild_profile();
        let names = old.changed_names(&self.profile_layer);
        if names.is_empty() {
            return Vec::new();
        }
        let mut layers = Layers::new()
            .with_catalog_defaults()
            .with(&self.profile_layer)
            .with(&self.env_layer);
        layers.extend(self.config_dir.layers());
        let catalog = self.config_dir.catalog();
        // O(1) when the published view shares the resolution (a
        // persistent map); each update copies O(log n) of it.
        let changed = Arc::make_mut(&mut self.resolution).update(catalog, &layers, names);
        key_changes(changed, catalog)
    }

    /// Applies a profile-layer delta (already validated), recomputes what
    /// is in force and returns the record, or none when nothing changed.
    fn commit_profiles(
        &mut self,
        delta: ProfilesDelta,
        origin: Origin,
        detail: String,
        now_ms: i64,
    ) -> Option<Record> {
        if delta.is_empty() {
            return None;
        }
        let changes = self.apply_delta(&delta);
        self.next_record(changes, delta, origin, detail, now_ms)
    }

    /// Recomputes everything and records the difference, if any. A
    /// non-empty `delta` forces a record (the profiles must be logged).
    fn commit(
        &mut self,
        delta: ProfilesDelta,
        origin: Origin,
        detail: String,
        now_ms: i64,
    ) -> Option<Record> {
        let new = Arc::new(self.resolve());
        let changes = changes_between(&self.resolution, &new, self.config_dir.catalog());
        self.resolution = new;
        self.next_record(changes, delta, origin, detail, now_ms)
    }

    /// The next revision's record, or none when nothing changed.
    fn next_record(
        &mut self,
        changes: Vec<KeyChange>,
        profiles: ProfilesDelta,
        origin: Origin,
        detail: String,
        now_ms: i64,
    ) -> Option<Record> {
        if changes.is_empty() && profiles.is_empty() {
            return None;
        }
        self.revision = self.numbering.next(self.revision, origin);
        Some(Record {
            revision: self.revision,
            time_ms: now_ms,
            origin,
            detail,
            changes,
            profiles,
            host: None,
        })
    }

    /// Applies a profile-layer delta and recomputes what is in force;
    /// returns the effective changes.
    fn apply_profiles(&mut self, delta: &ProfilesDelta) -> Vec<KeyChange> {
        self.apply_delta(delta)
    }

    /// A shared change another daemon made (or this one, learnt back
    /// through the shared store): applied as it was made, at shared
    /// revision `seq`. Always a record, even when no effective value here
    /// changes: every host has every shared revision.
    pub(crate) fn remote(
        &mut self,
        seq: u64,
        delta: &ProfilesDelta,
        origin: Origin,
        detail: &str,
        time_ms: i64,
        host: &str,
    ) -> Record {
        let changes = self.apply_profiles(delta);
        self.revision = shared_revision(seq);
        Record {
            revision: self.revision,
            time_ms,
            origin,
            detail: detail.to_owned(),
            changes,
            profiles: delta.clone(),
            host: Some(host.to_owned()),
        }
    }

    /// Takes the shared store's profiles whole: at shared revision `seq`
    /// when that is ahead of this core (its history no longer reaches
    /// back), else as a local change (this core had other profiles than
    /// the fleet at the same shared revision). None when they are equal.
    pub(crate) fn shared_state(
        &mut self,
        seq: u64,
        profiles: &ProfilesFile,
        detail: String,
        now_ms: i64,
    ) -> Option<Record> {
        let delta = self.profiles.diff(profiles);
        let ahead = shared_revision(seq) > self.revision;
        if delta.is_empty() && !ahead {
            return None;
        }
        let changes = self.apply_profiles(&delta);
        self.revision = if ahead {
            shared_revision(seq)
        } else {
            self.revision + 1
        };
        Some(Record {
            revision: self.revision,
            time_ms: now_ms,
            origin: Origin::SharedState,
            detail,
            changes,
            profiles: delta,
            host: None,
        })
    }

    fn check_expected(&self, expected: Option<u64>) -> Result<(), OpError> {
        match expected {
            Some(e) if e != self.revision => Err(OpError::Conflict {
                expected: e,
                actual: self.revision,
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a delta that would take the profiles over their limits.
    fn check_limits(&self, delta: &ProfilesDelta) -> Result<(), OpError> {
        let (bytes, count) = self.profiles.size_after(delta);
        let (bytes_before, count_before) =
            (self.profiles.stored_bytes(), self.profiles.profiles.len());
        // A change that shrinks (or keeps) an over-limit state is allowed,
        // so an operator can always get back under the limit.
        if count > self.limits.max_profiles && count > count_before {
            return Err(OpError::Limit(crate::error::Limit::Profiles {
                count,
                limit: self.limits.max_profiles,
            }));
        }
        if bytes > self.limits.max_bytes && bytes > bytes_before {
            return Err(OpError::Limit(crate::error::Limit::ProfileBytes {
                bytes,
                limit: self.limits.max_bytes,
            }));
        }
        Ok(())
    }

    /// Validates a batch against the current catalogue; see [`validate`].
    ///
    /// # Errors
    /// [`OpError::Invalid`] with one message per bad assignment.
    pub(crate) fn validate(&self, batch: &[(String, Input)]) -> Result<Vec<Valid>, OpError> {
        validate(self.config_dir.catalog(), self.active_profile(), batch)
    }

    /// `Set`: writes a validated batch into the active profile.
    ///
    /// # Errors
    /// A stale `expected` revision, or a batch over the profile limits.
    #[cfg(test)]
    pub(crate) fn set(
        &mut self,
        batch: &[Valid],
        expected: Option<u64>,
        now_ms: i64,
    ) -> Result<Option<Record>, OpError> {
        self.set_in(batch, expected, None, now_ms)
    }

    /// The profile a write goes into: `profile` (which must exist), or the
    /// one in force.
    fn target(&self, profile: Option<&str>) -> Result<String, OpError> {
        match profile {
            None => Ok(self.active_profile().to_owned()),
            Some(p) if self.profiles.profiles.contains_key(p) || p == self.active_profile() => {
                Ok(p.to_owned())
            }
            Some(p) => Err(OpError::Settings(SettingsError::ProfileNotFound(
                p.to_owned(),
            ))),
        }
    }

    /// `Set` into `profile` (`cfg -p NAME set`), or the one in force.
    ///
    /// # Errors
    /// A stale `expected` revision, an unknown profile.
    pub(crate) fn set_in(
        &mut self,
        batch: &[Valid],
        expected: Option<u64>,
        profile: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Record>, OpError> {
        self.check_expected(expected)?;
        let profile = self.target(profile)?;
        let catalog = self.config_dir.catalog();
        let mut delta = ProfilesDelta::default();
        for v in batch {
            let d = self
                .profiles
                .set_delta(catalog, &profile, &v.name, &v.value);
            ProfilesFile::merge_delta(&mut delta, d);
        }
        self.check_limits(&delta)?;
        let names: Vec<&str> = batch.iter().map(|v| v.name.as_str()).collect();
        let detail = names.join(",");
        Ok(self.commit_profiles(delta, Origin::Set, detail, now_ms))
    }

    /// `Unset`: removes names (and their aliases) from the active profile,
    /// all or nothing. A name given twice is removed once.
    ///
    /// # Errors
    /// An unknown name, a name the profile does not hold, a stale revision.
    #[cfg(test)]
    pub(crate) fn unset(
        &mut self,
        names: &[String],
        expected: Option<u64>,
        now_ms: i64,
    ) -> Result<Option<Record>, OpError> {
        self.unset_in(names, expected, None, now_ms)
    }

    /// `Unset` from `profile` (`cfg -p NAME unset`), or the one in force.
    ///
    /// # Errors
    /// As [`Core::unset`], or an unknown profile.
    pub(crate) fn unset_in(
        &mut self,
        names: &[String],
        expected: Option<u64>,
        profile: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Record>, OpError> {
        self.check_expected(expected)?;
        let catalog = self.config_dir.catalog();
        let profile = self.target(profile)?;
        let held = self.profiles.profiles.get(&profile);
        let mut errors = Vec::new();
        let mut canonical: Vec<String> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        for name in names {
            let entry = match catalog.lookup(name) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if canonical.contains(&entry.name) {
                continue;
            }
            let present: Vec<String> = entry
                .names()
                .filter(|n| held.is_some_and(|t| t.contains_key(*n)))
                .map(str::to_owned)
                .collect();
            if present.is_empty() {
                // Name the setting as the caller typed it, as Prefect does.
                errors.push(SettingsError::NotInProfile {
                    name: name.clone(),
                    profile: profile.clone(),
                });
                continue;
            }
            canonical.push(entry.name.clone());
            remove.extend(present);
        }
        if !errors.is_empty() {
            return Err(OpError::Invalid(errors));
        }
        let mut delta = ProfilesDelta::default();
        delta.profiles.insert(
            profile,
            cfgd_settings::delta::TableChange {
                put: BTreeMap::new(),
                remove,
            },
        );
        Ok(self.commit_profiles(delta, Origin::Unset, canonical.join(","), now_ms))
    }

    /// A profile operation.
    ///
    /// # Errors
    /// What the profiles refuse (an unknown or taken name, the active
    /// profile deleted), a stale revision, or the profile limits; nothing
    /// changes then.
    pub(crate) fn profile_op(
        &mut self,
        expected: Option<u64>,
        change: &ProfileChange,
        now_ms: i64,
    ) -> Result<Option<Record>, OpError> {
        self.check_expected(expected)?;
        let mut next = (*self.profiles).clone();
        change.apply(&mut next).map_err(OpError::Settings)?;
        let delta = self.profiles.diff(&next);
        self.check_limits(&delta)?;
        Ok(self.commit_profiles(delta, Origin::Profile, change.detail(), now_ms))
    }

    /// `Rollback`: restores `profiles` (the state at revision `target`).
    ///
    /// # Errors
    /// A stale revision.
    pub(crate) fn rollback(
        &mut self,
        profiles: &ProfilesFile,
        target: u64,
        expected: Option<u64>,
        now_ms: i64,
    ) -> Result<Option<Record>, OpError> {
        self.check_expected(expected)?;
        let delta = self.profiles.diff(profiles);
        Ok(self.commit_profiles(delta, Origin::Rollback, target.to_string(), now_ms))
    }

    /// `profiles.toml` was edited outside cfgd: takes the edit in. It is
    /// not bounded by the limits (it is already on disk; refusing it would
    /// only make cfgd overwrite it).
    pub(crate) fn profiles_file_edit(
        &mut self,
        delta: ProfilesDelta,
        path: &str,
        now_ms: i64,
    ) -> Option<Record> {
        self.commit_profiles(delta, Origin::ProfilesFile, path.to_owned(), now_ms)
    }

    /// Takes a re-read config dir; records the effective changes, if any.
    pub(crate) fn reload(
        &mut self,
        config_dir: Arc<ConfigDir>,
        detail: String,
        now_ms: i64,
    ) -> Option<Record> {
        let catalog_changed = config_dir.catalog().entries() != self.config_dir.catalog().entries();
        self.config_dir = config_dir;
        if catalog_changed {
            self.rebuild_env();
            self.rebuild_profile();
        }
        self.commit(ProfilesDelta::default(), Origin::File, detail, now_ms)
    }

    /// Records how the effective values differ from `last` (the values the
    /// log last recorded), plus `edit`: the profiles file's changes made
    /// while cfgd was down (already applied to this core's profiles).
    pub(crate) fn startup(
        &mut self,
        last: &BTreeMap<String, Effective>,
        edit: ProfilesDelta,
        now_ms: i64,
    ) -> Option<Record> {
        let catalog = self.config_dir.catalog();
        let mut changes = Vec::new();
        for r in self.resolution.iter() {
            let new = Effective {
                value: r.value.clone(),
                source: r.source.clone(),
            };
            if last.get(&*r.name) != Some(&new) {
                changes.push(KeyChange {
                    name: r.name.to_string(),
                    old: last.get(&*r.name).cloned(),
                    new: Some(new),
                    secret: r.secret,
                });
            }
        }
        for (name, old) in last {
            if self.resolution.get(name).is_none() {
                changes.push(KeyChange {
                    name: name.clone(),
                    old: Some(old.clone()),
                    new: None,
                    secret: catalog.get(name).is_some_and(Entry::is_secret),
                });
            }
        }
        let detail = if edit.is_empty() {
            String::new()
        } else {
            "profiles file edited while cfgd was down".to_owned()
        };
        self.next_record(changes, edit, Origin::Startup, detail, now_ms)
    }
}

/// Validates a batch without changing anything: every problem is reported,
/// each naming the setting and what was expected.
///
/// # Errors
/// [`OpError::Invalid`] with one message per bad assignment.
pub(crate) fn validate(
    catalog: &Catalog,
    profile: &str,
    batch: &[(String, Input)],
) -> Result<Vec<Valid>, OpError> {
    let mut ok = Vec::with_capacity(batch.len());
    let mut errors = Vec::new();
    // Canonical name -> the name it was first given as.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (given, input) in batch {
        let entry: &Entry = match catalog.lookup(given) {
            Ok(e) => e,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(first) = seen.insert(&entry.name, given) {
            errors.push(SettingsError::GivenTwice {
                name: entry.name.clone(),
                first: first.to_owned(),
                second: given.clone(),
            });
            seen.insert(&entry.name, first);
            continue;
        }
        let parsed = cfgd_settings::value::check_settable(entry).and_then(|()| match input {
            Input::Raw(raw) => cfgd_settings::value::parse(entry, raw),
            Input::Typed(v) => cfgd_settings::value::coerce(entry, v.clone()),
        });
        match parsed {
            Ok(value) => ok.push(Valid {
                name: entry.name.clone(),
                value,
            }),
            Err(expected) => errors.push(SettingsError::InvalidValue {
                name: entry.name.clone(),
                at: Source::profile(profile),
                expected,
            }),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(OpError::Invalid(errors))
    }
}

/// The effective values of a resolution, by name.
pub(crate) fn effective_of(resolution: &Resolution) -> BTreeMap<String, Effective> {
    resolution
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                Effective {
                    value: r.value.clone(),
                    source: r.source.clone(),
                },
            )
        })
        .collect()
}

/// The record's changes from [`Resolution::update`]'s.
fn key_changes(changed: Vec<cfgd_settings::Changed>, catalog: &Catalog) -> Vec<KeyChange> {
    changed
        .into_iter()
        .map(|(name, o, n)| {
            let effective = |r: &Option<Arc<cfgd_settings::Resolved>>| {
                r.as_ref().map(|r| Effective {
                    value: r.value.clone(),
                    source: r.source.clone(),
                })
            };
            KeyChange {
                secret: o.as_ref().or(n.as_ref()).is_some_and(|r| r.secret)
                    || catalog.get(&name).is_some_and(Entry::is_secret),
                old: effective(&o),
                new: effective(&n),
                name: name.to_string(),
            }
        })
        .collect()
}

fn changes_between(old: &Resolution, new: &Resolution, catalog: &Catalog) -> Vec<KeyChange> {
    old.diff(new)
        .into_iter()
        .map(|(name, o, n)| KeyChange {
            name: name.to_owned(),
            old: o.map(|r| Effective {
                value: r.value.clone(),
                source: r.source.clone(),
            }),
            new: n.map(|r| Effective {
                value: r.value.clone(),
                source: r.source.clone(),
            }),
            secret: o.or(n).is_some_and(|r| r.secret)
                || catalog.get(name).is_some_and(Entry::is_secret),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_with(env: &[(&str, &str)]) -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().unwrap();
        let env = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let core = Core::new(
            ConfigDir::load(dir.path()),
            Arc::new(env),
            ProfilesFile::default(),
            7,
            0,
        );
        (dir, core)
    }

    fn raw(name: &str, v: &str) -> (String, Input) {
        (name.to_owned(), Input::Raw(v.to_owned()))
    }

    #[test]
    fn set_records_old_and_new_with_sources_and_bumps_the_revision() {
        let (_d, mut core) = core_with(&[]);
        let batch = core
            .validate(&[raw("PREFECT_TASK_DEFAULT_RETRIES", "2")])
            .unwrap();
        let rec = core.set(&batch, None, 1).unwrap().unwrap();
        assert_eq!(rec.revision, 1);
        assert_eq!(rec.origin, Origin::Set);
        assert_eq!(rec.changes.len(), 1);
        let c = &rec.changes[0];
        assert_eq!(c.name, "PREFECT_TASKS_DEFAULT_RETRIES");
        assert_eq!(c.old.as_ref().unwrap().value, Some(Value::Integer(0)));
        assert_eq!(c.old.as_ref().unwrap().source, Source::defaults());
        assert_eq!(c.new.as_ref().unwrap().value, Some(Value::Integer(2)));
        assert_eq!(c.new.as_ref().unwrap().source, Source::profile("default"));
        assert_eq!(
            rec.profiles.profiles["default"].put["PREFECT_TASKS_DEFAULT_RETRIES"],
            toml::Value::from("2")
        );
        // The same value again changes nothing and makes no revision.
        assert!(core.set(&batch, None, 2).unwrap().is_none());
        assert_eq!(core.revision(), 1);
    }

    #[test]
    fn validation_reports_every_problem_and_changes_nothing() {
        let (_d, core) = core_with(&[]);
        let err = core
            .validate(&[
                raw("PREFECT_TASK_DEFAULT_RETRIES", "x"),
                raw("PREFECT_TASK_DEFAULT_RETRYS", "1"),
                raw("PREFECT_FLOW_DEFAULT_RETRIES", "1"),
            ])
            .unwrap_err();
        let OpError::Invalid(errors) = err else {
            panic!()
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].to_string(),
            "Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from profile 'default': expected an integer, got \"x\""
        );
        assert!(
            errors[1]
                .to_string()
                .contains("Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?")
        );
    }

    #[test]
    fn a_shadowed_set_is_logged_without_effective_changes() {
        let (_d, mut core) = core_with(&[("PREFECT_TASK_DEFAULT_RETRIES", "5")]);
        let batch = core
            .validate(&[raw("PREFECT_TASKS_DEFAULT_RETRIES", "2")])
            .unwrap();
        let rec = core.set(&batch, None, 1).unwrap().unwrap();
        assert!(rec.changes.is_empty());
        assert!(!rec.profiles.is_empty());
        let r = core
            .resolution()
            .get("PREFECT_TASKS_DEFAULT_RETRIES")
            .unwrap();
        assert_eq!(r.value, Some(Value::Integer(5)));
        assert_eq!(r.shadowed[0].source, Source::profile("default"));
    }

    #[test]
    fn compare_and_set_refuses_a_stale_revision() {
        let (_d, mut core) = core_with(&[]);
        let batch = core
            .validate(&[raw("PREFECT_TASKS_DEFAULT_RETRIES", "2")])
            .unwrap();
        core.set(&batch, Some(0), 1).unwrap().unwrap();
        let err = core.set(&batch, Some(0), 2).unwrap_err();
        assert!(matches!(
            err,
            OpError::Conflict {
                expected: 0,
                actual: 1
            }
        ));
    }

    #[test]
    fn unset_is_all_or_nothing() {
        let (_d, mut core) = core_with(&[]);
        let batch = core
            .validate(&[raw("PREFECT_TASKS_DEFAULT_RETRIES", "2")])
            .unwrap();
        core.set(&batch, None, 1).unwrap();
        let err = core
            .unset(
                &[
                    "PREFECT_TASKS_DEFAULT_RETRIES".into(),
                    "PREFECT_FLOWS_DEFAULT_RETRIES".into(),
                ],
                None,
                2,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "'PREFECT_FLOWS_DEFAULT_RETRIES' is not set in profile 'default'."
        );
        assert_eq!(core.profiles().values("default").len(), 1);
        let rec = core
            .unset(&["PREFECT_TASK_DEFAULT_RETRIES".into()], None, 3)
            .unwrap()
            .unwrap();
        assert_eq!(rec.origin, Origin::Unset);
        assert_eq!(
            rec.changes[0].new.as_ref().unwrap().value,
            Some(Value::Integer(0))
        );
    }

    #[test]
    fn startup_records_differences_from_the_log() {
        let (_d, mut core) = core_with(&[("PREFECT_TASK_DEFAULT_RETRIES", "5")]);
        let mut last = core.effective();
        assert!(core.startup(&last, ProfilesDelta::default(), 1).is_none());
        last.get_mut("PREFECT_TASKS_DEFAULT_RETRIES").unwrap().value = Some(Value::Integer(1));
        let rec = core.startup(&last, ProfilesDelta::default(), 1).unwrap();
        assert_eq!(rec.origin, Origin::Startup);
        assert_eq!(rec.changes.len(), 1);
    }

    /// One step of a random history of the state.
    #[derive(Debug, Clone)]
    enum Step {
        Set(usize, u8),
        Unset(usize),
        Create(usize),
        Use(usize),
        Delete(usize),
        /// A value file giving retries this value, or none.
        Reload(Option<u8>),
    }

    /// Names a step writes: canonical, an alias of the first, a secret.
    const NAMES: [&str; 4] = [
        "PREFECT_TASKS_DEFAULT_RETRIES",
        "PREFECT_TASK_DEFAULT_RETRIES",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
        "PREFECT_API_KEY",
    ];
    const PROFILES: [&str; 3] = ["default", "dev", "prod"];

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0..NAMES.len(), 0u8..3).prop_map(|(n, v)| Step::Set(n, v)),
            2 => (0..NAMES.len()).prop_map(Step::Unset),
            1 => (0..PROFILES.len()).prop_map(Step::Create),
            2 => (0..PROFILES.len()).prop_map(Step::Use),
            1 => (0..PROFILES.len()).prop_map(Step::Delete),
            1 => proptest::option::of(0u8..3).prop_map(Step::Reload),
        ]
    }

    fn full(core: &Core) -> Resolution {
        resolve(core.catalog(), &core.layer_set().layers())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 48, ..Default::default() })]
        /// After any history of set, unset, profile switches and reloads,
        /// the incrementally kept resolution is what a full resolve gives,
        /// and every record holds exactly the full diff.
        #[test]
        fn incremental_resolve_equals_full(
            steps in proptest::collection::vec(step(), 1..16),
            pinned in proptest::bool::ANY,
            env in proptest::bool::ANY,
        ) {
            let mut vars = Vec::new();
            if env {
                vars.push(("PREFECT_FLOWS_DEFAULT_RETRIES", "7"));
            }
            if pinned {
                vars.push(("PREFECT_PROFILE", "dev"));
            }
            let (dir, mut core) = core_with(&vars);
            for (i, step) in steps.into_iter().enumerate() {
                let before = full(&core);
                let now = i64::try_from(i).unwrap();
                let record = match &step {
                    Step::Set(n, v) => {
                        let batch = core.validate(&[raw(NAMES[*n], &v.to_string())]).unwrap();
                        core.set(&batch, None, now).ok().flatten()
                    }
                    Step::Unset(n) => core.unset(&[NAMES[*n].to_owned()], None, now).ok().flatten(),
                    Step::Create(p) => core
                        .profile_op(None, &ProfileChange::Create { name: PROFILES[*p].to_owned(), from: None }, now)
                        .ok()
                        .flatten(),
                    Step::Use(p) => core.profile_op(None, &ProfileChange::Use(PROFILES[*p].to_owned()), now).ok().flatten(),
                    Step::Delete(p) => core.profile_op(None, &ProfileChange::Delete(PROFILES[*p].to_owned()), now).ok().flatten(),
                    Step::Reload(v) => {
                        let file = dir.path().join("a.toml");
                        match v {
                            Some(v) => std::fs::write(&file, format!("[tasks]\ndefault_retries = {v}\n")).unwrap(),
                            None => { let _ = std::fs::remove_file(&file); }
                        }
                        core.reload(Arc::new(ConfigDir::load(dir.path())), "a.toml".into(), now)
                    }
                };
                let after = full(&core);
                proptest::prop_assert_eq!(&**core.resolution(), &after, "after {:?}", step);
                let expected = changes_between(&before, &after, core.catalog());
                let got = record.map(|r| r.changes).unwrap_or_default();
                proptest::prop_assert_eq!(got, expected, "changes of {:?}", step);
            }
        }
    }
}
