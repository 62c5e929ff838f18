//! The SDK's own types for what the daemon sends, converted from the wire
//! types in one place, so `cfgd_proto` never leaks into application code.

use std::fmt;

use cfgd_proto::pb;
use cfgd_settings::{Delays, Entry, Kind, LayerKind, MASK, Source, Value};

/// A value as the daemon showed it.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// No layer gives a value.
    Unset,
    /// The value.
    Value(Value),
    /// A secret withheld from this caller.
    Masked,
}

impl Shown {
    /// The value, if shown.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Shown::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The text `cfg` prints, masking a secret unless `reveal`.
    pub fn display(&self, reveal: bool) -> String {
        match self {
            Shown::Unset => "None".to_owned(),
            Shown::Value(Value::Secret(_)) if !reveal => MASK.to_owned(),
            Shown::Value(v) => v.to_string(),
            Shown::Masked => MASK.to_owned(),
        }
    }
}

/// Shows the value with secrets masked.
impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display(false))
    }
}

impl From<Option<pb::Value>> for Shown {
    fn from(v: Option<pb::Value>) -> Self {
        use pb::value::Kind as K;
        match v.and_then(|v| v.kind) {
            None => Shown::Unset,
            Some(K::Masked(_)) => Shown::Masked,
            Some(K::Integer(i)) => Shown::Value(Value::Integer(i)),
            Some(K::Number(n)) => Shown::Value(Value::Number(n)),
            Some(K::Boolean(b)) => Shown::Value(Value::Boolean(b)),
            Some(K::Text(s)) => Shown::Value(Value::String(s)),
            Some(K::Secret(s)) => Shown::Value(Value::Secret(s)),
            Some(K::Delays(d)) => {
                let delays = if d.list {
                    Delays::list(d.seconds)
                } else {
                    Delays::scalar(d.seconds.first().copied().unwrap_or(0.0))
                };
                // The daemon only sends valid delays; anything else shows as text.
                match delays {
                    Ok(d) => Shown::Value(Value::Delays(d)),
                    Err(e) => Shown::Value(Value::String(format!("<invalid delays: {e}>"))),
                }
            }
            Some(K::List(l)) => Shown::Value(Value::List(
                l.items
                    .into_iter()
                    .filter_map(|i| Shown::from(Some(i)).value().cloned())
                    .collect(),
            )),
        }
    }
}

/// A typed value for the wire.
pub(crate) fn value_to_pb(v: &Value) -> pb::Value {
    use pb::value::Kind as K;
    let kind = match v {
        Value::Integer(i) => K::Integer(*i),
        Value::Number(n) => K::Number(*n),
        Value::Boolean(b) => K::Boolean(*b),
        Value::String(s) => K::Text(s.clone()),
        Value::Secret(s) => K::Secret(s.clone()),
        Value::Delays(d) => K::Delays(pb::Delays {
            seconds: d.seconds().to_vec(),
            list: d.is_list(),
        }),
        Value::List(items) => K::List(pb::ValueList {
            items: items.iter().map(value_to_pb).collect(),
        }),
    };
    pb::Value { kind: Some(kind) }
}

pub(crate) fn source(s: Option<pb::Source>) -> Source {
    let Some(s) = s else {
        return Source::defaults();
    };
    let layer = match pb::Layer::try_from(s.layer).unwrap_or(pb::Layer::Unspecified) {
        pb::Layer::Profile => LayerKind::Profile,
        pb::Layer::File => LayerKind::File,
        pb::Layer::Dotenv => LayerKind::DotEnv,
        pb::Layer::Env => LayerKind::Env,
        pb::Layer::Defaults | pb::Layer::Unspecified => LayerKind::Defaults,
    };
    let non_empty = |x: String| (!x.is_empty()).then_some(x);
    Source {
        layer,
        file: non_empty(s.file).map(Into::into),
        line: (s.line > 0).then_some(s.line),
        detail: non_empty(s.detail),
    }
}

/// One setting as the daemon resolved it.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Canonical name.
    pub name: String,
    /// The effective value.
    pub value: Shown,
    /// Where it comes from.
    pub source: Source,
    /// Lower layers it shadows, highest first.
    pub shadowed: Vec<(Source, Shown)>,
    /// Whether the setting is secret.
    pub secret: bool,
}

impl Setting {
    /// Whether a layer above the profile decides the value (a `cfg set`
    /// would not take effect).
    pub fn shadows_profile(&self) -> bool {
        self.source.layer > LayerKind::Profile
    }
}

impl From<pb::ResolvedSetting> for Setting {
    fn from(r: pb::ResolvedSetting) -> Self {
        Setting {
            name: r.name,
            value: r.value.into(),
            source: source(r.source),
            shadowed: r
                .shadowed
                .into_iter()
                .map(|s| (source(s.source), s.value.into()))
                .collect(),
            secret: r.secret,
        }
    }
}

/// Every setting at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The revision.
    pub revision: u64,
    /// The daemon's epoch.
    pub epoch: u64,
    /// The active profile.
    pub active_profile: String,
    /// The settings, sorted by name.
    pub settings: Vec<Setting>,
}

impl From<pb::Snapshot> for Snapshot {
    fn from(s: pb::Snapshot) -> Self {
        Snapshot {
            revision: s.revision,
            epoch: s.epoch,
            active_profile: s.active_profile,
            settings: s.settings.into_iter().map(Into::into).collect(),
        }
    }
}

/// `Snapshot`'s answer: a `pb::Snapshot` with its fields inline.
impl From<pb::SnapshotResponse> for Snapshot {
    fn from(s: pb::SnapshotResponse) -> Self {
        pb::Snapshot {
            revision: s.revision,
            epoch: s.epoch,
            active_profile: s.active_profile,
            settings: s.settings,
        }
        .into()
    }
}

/// One assignment or removal the daemon applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Canonical name.
    pub name: String,
    /// The name as given.
    pub given_name: String,
    /// The value now in the profile.
    pub value: Shown,
    /// The effective value after the write (see [`Setting::shadows_profile`]).
    pub effective: Option<Setting>,
}

/// The answer to a write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    /// The revision after the write.
    pub revision: u64,
    /// The daemon's epoch.
    pub epoch: u64,
    /// The active profile.
    pub profile: String,
    /// What was applied.
    pub applied: Vec<Applied>,
    /// Whether an effective value changed.
    pub changed: bool,
}

/// Every write answers with the same fields (`SetResponse`,
/// `UnsetResponse`, `RollbackResponse`, `UseProfileResponse`).
macro_rules! write_results {
    ($($t:ty),*) => {$(
        impl From<$t> for WriteResult {
            fn from(w: $t) -> Self {
                WriteResult {
                    revision: w.revision,
                    epoch: w.epoch,
                    profile: w.profile,
                    applied: w
                        .applied
                        .into_iter()
                        .map(|a| Applied {
                            name: a.name,
                            given_name: a.given_name,
                            value: a.value.into(),
                            effective: a.effective.map(Into::into),
                        })
                        .collect(),
                    changed: w.changed,
                }
            }
        }
    )*};
}
write_results!(
    pb::SetResponse,
    pb::UnsetResponse,
    pb::RollbackResponse,
    pb::UseProfileResponse
);

/// What caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `cfg set`.
    Set,
    /// `cfg unset`.
    Unset,
    /// A file changed on disk.
    File,
    /// A profile operation.
    Profile,
    /// `cfg rollback`.
    Rollback,
    /// Values differed when the daemon started.
    Startup,
    /// `profiles.toml` was edited outside cfgd (by Prefect or by hand).
    ProfilesFile,
    /// The shared store's profiles taken in whole (etcd store).
    SharedState,
    /// Something newer than this SDK knows.
    Unknown,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Set => "set",
            Origin::Unset => "unset",
            Origin::File => "file",
            Origin::Profile => "profile",
            Origin::Rollback => "rollback",
            Origin::Startup => "startup",
            Origin::ProfilesFile => "profiles-file",
            Origin::SharedState => "shared-state",
            Origin::Unknown => "unknown",
        })
    }
}

/// One setting's change.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChange {
    /// Canonical name.
    pub name: String,
    /// Before.
    pub old: Shown,
    /// Where the old value came from.
    pub old_source: Option<Source>,
    /// After.
    pub new: Shown,
    /// Where the new value comes from.
    pub new_source: Option<Source>,
    /// Whether the setting is secret.
    pub secret: bool,
}

/// One revision's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The revision.
    pub revision: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What caused it.
    pub origin: Origin,
    /// The file, profile or rollback target.
    pub detail: String,
    /// What changed.
    pub changes: Vec<KeyChange>,
    /// The daemon (host id) that made a shared change (etcd store); empty
    /// otherwise.
    pub host: String,
}

impl From<pb::Change> for Change {
    fn from(c: pb::Change) -> Self {
        Change {
            revision: c.revision,
            time_ms: c.time_unix_ms,
            origin: match pb::Origin::try_from(c.origin).unwrap_or(pb::Origin::Unspecified) {
                pb::Origin::Set => Origin::Set,
                pb::Origin::Unset => Origin::Unset,
                pb::Origin::File => Origin::File,
                pb::Origin::Profile => Origin::Profile,
                pb::Origin::Rollback => Origin::Rollback,
                pb::Origin::Startup => Origin::Startup,
                pb::Origin::ProfilesFile => Origin::ProfilesFile,
                pb::Origin::SharedState => Origin::SharedState,
                pb::Origin::Unspecified => Origin::Unknown,
            },
            detail: c.detail,
            host: c.host,
            changes: c
                .changes
                .into_iter()
                .map(|k| KeyChange {
                    name: k.name,
                    old: k.old_value.into(),
                    old_source: k.old_source.map(|s| source(Some(s))),
                    new: k.new_value.into(),
                    new_source: k.new_source.map(|s| source(Some(s))),
                    secret: k.secret,
                })
                .collect(),
        }
    }
}

/// Why a watch sent a full snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// The watch started without a revision.
    Initial,
    /// The revision was older than the daemon's history.
    Compacted,
    /// The watcher fell behind.
    Lagged,
    /// The daemon's state is not the one the revision belonged to.
    Epoch,
    /// The revision was newer than the daemon's.
    Future,
}

/// An event of a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Changes at one revision.
    Change {
        /// The daemon's epoch.
        epoch: u64,
        /// The change.
        change: Change,
    },
    /// A full snapshot replacing whatever the client had.
    Resync {
        /// The daemon's epoch.
        epoch: u64,
        /// Why.
        reason: ResyncReason,
        /// The settings.
        snapshot: Snapshot,
    },
}

impl WatchEvent {
    /// The revision this event brings the client to.
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Change { change, .. } => change.revision,
            WatchEvent::Resync { snapshot, .. } => snapshot.revision,
        }
    }

    /// The daemon's epoch the event belongs to.
    pub fn epoch(&self) -> u64 {
        match self {
            WatchEvent::Change { epoch, .. } | WatchEvent::Resync { epoch, .. } => *epoch,
        }
    }

    pub(crate) fn from_pb(e: pb::WatchResponse) -> Option<Self> {
        Some(match e.event? {
            pb::watch_response::Event::Change(c) => WatchEvent::Change {
                epoch: e.epoch,
                change: c.into(),
            },
            pb::watch_response::Event::Resync(r) => WatchEvent::Resync {
                epoch: e.epoch,
                reason: match pb::ResyncReason::try_from(r.reason)
                    .unwrap_or(pb::ResyncReason::Unspecified)
                {
                    pb::ResyncReason::Compacted => ResyncReason::Compacted,
                    pb::ResyncReason::Lagged => ResyncReason::Lagged,
                    pb::ResyncReason::Epoch => ResyncReason::Epoch,
                    pb::ResyncReason::Future => ResyncReason::Future,
                    pb::ResyncReason::Initial | pb::ResyncReason::Unspecified => {
                        ResyncReason::Initial
                    }
                },
                snapshot: r.snapshot.map(Into::into).unwrap_or(Snapshot {
                    revision: 0,
                    epoch: e.epoch,
                    active_profile: String::new(),
                    settings: Vec::new(),
                }),
            },
        })
    }
}

/// Recorded changes.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Oldest first.
    pub changes: Vec<Change>,
    /// The daemon's revision.
    pub revision: u64,
    /// The daemon's epoch.
    pub epoch: u64,
    /// The oldest retained revision.
    pub oldest_revision: u64,
}

/// A profile in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    /// Its name.
    pub name: String,
    /// Whether it is active.
    pub active: bool,
    /// How many settings it holds.
    pub settings: u32,
}

/// A profile's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileContents {
    /// Its name.
    pub name: String,
    /// Whether it is active.
    pub active: bool,
    /// `(canonical name, value, secret)`, sorted by name.
    pub entries: Vec<(String, Shown, bool)>,
}

/// A config-dir file and its problem, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// The file.
    pub path: String,
    /// `values`, `catalog`, `dotenv` or `profiles`.
    pub kind: &'static str,
    /// Why its current content is not in force (empty when it is).
    pub error: String,
    /// The line of the error, 0 when unknown.
    pub error_line: u32,
    /// Problems that leave the file in force (unknown `PREFECT_` names; bad
    /// values in `.env`, which drop only their own setting).
    pub warnings: Vec<String>,
}

/// The daemon's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The daemon's version.
    pub version: String,
    /// Where it listens.
    pub listen: String,
    /// The current revision.
    pub revision: u64,
    /// The epoch.
    pub epoch: u64,
    /// The oldest retained revision.
    pub oldest_revision: u64,
    /// The active profile.
    pub active_profile: String,
    /// The config dir.
    pub config_dir: String,
    /// The state dir.
    pub state_dir: String,
    /// The profiles file.
    pub profiles_path: String,
    /// Files and their errors.
    pub files: Vec<FileStatus>,
    /// Open watch streams.
    pub watchers: u64,
    /// Start time, ms since the Unix epoch.
    pub started_ms: i64,
    /// How many settings are declared.
    pub settings: u32,
    /// The config-dir reload loop.
    pub reload: ReloadState,
    /// Client connections and their limit.
    pub connections: Connections,
    /// The store and its state.
    pub store: super::fleet::StoreStatus,
}

/// The daemon's config-dir reload loop, as status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadState {
    /// Re-reads of the config dir since the daemon started.
    pub reloads: u64,
    /// Why the config files as last read are not in force (the daemon keeps
    /// retrying); `None` when they are.
    pub error: Option<String>,
    /// Attempts that failed so far.
    pub failed_attempts: u32,
    /// When the next attempt is due, ms since the Unix epoch (0: none).
    pub next_attempt_ms: i64,
}

/// The daemon's client connections, as status shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connections {
    /// Open now.
    pub open: u32,
    /// The most the daemon accepts at once.
    pub limit: u32,
    /// Refused at the limit since the daemon started.
    pub refused: u64,
    /// Closed after being idle (no stream open) for the idle timeout.
    pub closed_idle: u64,
}

impl From<pb::StatusResponse> for Status {
    fn from(s: pb::StatusResponse) -> Self {
        Status {
            version: s.version,
            listen: s.listen,
            revision: s.revision,
            epoch: s.epoch,
            oldest_revision: s.oldest_revision,
            active_profile: s.active_profile,
            config_dir: s.config_dir,
            state_dir: s.state_dir,
            profiles_path: s.profiles_path,
            files: s
                .files
                .into_iter()
                .map(|f| FileStatus {
                    path: f.path,
                    kind: match pb::FileKind::try_from(f.kind).unwrap_or(pb::FileKind::Unspecified)
                    {
                        pb::FileKind::Catalog => "catalog",
                        pb::FileKind::Dotenv => "dotenv",
                        pb::FileKind::Profiles => "profiles",
                        pb::FileKind::Log => "log",
                        _ => "values",
                    },
                    error: f.error,
                    error_line: f.error_line,
                    warnings: f.warnings,
                })
                .collect(),
            watchers: s.watchers,
            started_ms: s.started_unix_ms,
            settings: s.settings,
            reload: s
                .reload
                .map(|r| ReloadState {
                    reloads: r.reloads,
                    error: (!r.error.is_empty()).then_some(r.error),
                    failed_attempts: r.failed_attempts,
                    next_attempt_ms: r.next_attempt_unix_ms,
                })
                .unwrap_or_default(),
            connections: s
                .connections
                .map(|c| Connections {
                    open: c.open,
                    limit: c.limit,
                    refused: c.refused,
                    closed_idle: c.closed_idle,
                })
                .unwrap_or_default(),
            store: s.store.map(Into::into).unwrap_or_default(),
        }
    }
}

/// A catalogue entry from the daemon, as the settings model's [`Entry`].
pub(crate) fn entry(e: pb::CatalogEntry) -> Entry {
    let kind = Kind::from_name(&e.r#type).unwrap_or(Kind::String);
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Entry {
        aliases: e.aliases,
        path: non_empty(e.path),
        default: Shown::from(e.default).value().cloned(),
        min: e.min,
        max: e.max,
        min_exclusive: e.min_exclusive,
        max_exclusive: e.max_exclusive,
        choices: e.choices,
        case_insensitive: e.case_insensitive,
        items: Kind::from_name(&e.items),
        optional: e.optional,
        comma_lists: e.comma_lists,
        computed: non_empty(e.computed),
        env_only: e.env_only,
        description: e.description,
        file: non_empty(e.file).map(Into::into),
        ..Entry::new(&e.name, kind)
    }
}
