//! The `cfgd.v1.Settings` gRPC service: reads from the published view,
//! writes through the writer, watches from the hub. Authorisation and
//! limits are checked here, before anything else happens.

mod auth;
pub(crate) mod convert;
mod watch;

use std::pin::Pin;
use std::sync::Arc;

use cfgd_proto::pb;
use cfgd_settings::{LayerKind, Resolved, SettingsError};
use futures_util::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

pub(crate) use auth::Auth;

use crate::config::Limits;
use crate::core::{self, Input};
use crate::error::OpError;
use crate::hub::{FileRole, Hub, View};
use crate::writer::{Op, Outcome, WriterHandle};
use cfgd_settings::configdir::FileKind;

/// Facts about the running daemon, for `Status`.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    /// Where it listens.
    pub(crate) listen: String,
    /// The config dir.
    pub(crate) config_dir: String,
    /// The state dir.
    pub(crate) state_dir: String,
    /// The profiles file.
    pub(crate) profiles_path: String,
    /// Start time, ms since the Unix epoch.
    pub(crate) started_ms: i64,
    /// The config-dir reload loop.
    pub(crate) reload: tokio::sync::watch::Receiver<crate::reload::ReloadStatus>,
    /// Open connections and their limits.
    pub(crate) connections: Arc<crate::transport::Connections>,
}

/// The service.
#[derive(Debug, Clone)]
pub(crate) struct SettingsService {
    hub: Arc<Hub>,
    writer: WriterHandle,
    auth: Auth,
    limits: Limits,
    shutdown: CancellationToken,
    info: Arc<Info>,
}

/// The default number of history records returned.
const DEFAULT_HISTORY: usize = 100;

impl SettingsService {
    /// A service over `hub`, writing through `writer`.
    pub(crate) fn new(
        hub: Arc<Hub>,
        writer: WriterHandle,
        auth: Auth,
        limits: Limits,
        shutdown: CancellationToken,
        info: Info,
    ) -> Self {
        Self {
            hub,
            writer,
            auth,
            limits,
            shutdown,
            info: Arc::new(info),
        }
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), OpError> {
        if name.len() > self.limits.max_name_len {
            return Err(OpError::Limit(format!(
                "{what} is {} bytes long; the limit is {} bytes",
                name.len(),
                self.limits.max_name_len
            )));
        }
        Ok(())
    }

    fn check_batch(&self, len: usize) -> Result<(), OpError> {
        if len == 0 {
            return Err(OpError::Limit(
                "the batch is empty: give at least one setting".into(),
            ));
        }
        if len > self.limits.max_batch {
            return Err(OpError::Limit(format!(
                "the batch holds {len} settings; the limit is {} per request",
                self.limits.max_batch
            )));
        }
        Ok(())
    }

    /// Canonical names for `names` (empty means all).
    fn canonical(&self, view: &View, names: &[String]) -> Result<Option<Vec<String>>, OpError> {
        if names.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(names.len());
        let mut errors = Vec::new();
        for n in names {
            self.check_name("a setting name", n)?;
            match view.catalog.lookup(n) {
                Ok(e) => out.push(e.name.clone()),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Some(out))
        } else {
            Err(OpError::Invalid(errors))
        }
    }

    fn batch(&self, assignments: Vec<pb::Assignment>) -> Result<Vec<(String, Input)>, OpError> {
        self.check_batch(assignments.len())?;
        let mut out = Vec::with_capacity(assignments.len());
        let mut errors = Vec::new();
        for a in assignments {
            self.check_name("a setting name", &a.name)?;
            let input = match a.value {
                Some(pb::assignment::Value::Raw(raw)) => {
                    if raw.len() > self.limits.max_value_len {
                        return Err(OpError::Limit(format!(
                            "the value for {} is {} bytes long; the limit is {} bytes",
                            a.name,
                            raw.len(),
                            self.limits.max_value_len
                        )));
                    }
                    Input::Raw(raw)
                }
                Some(pb::assignment::Value::Typed(v)) => match convert::value_from_pb(&v) {
                    Ok(v) => Input::Typed(v),
                    Err(expected) => {
                        errors.push(SettingsError::InvalidValue {
                            name: a.name.clone(),
                            at: cfgd_settings::Source::layer(LayerKind::Profile),
                            expected,
                        });
                        continue;
                    }
                },
                None => {
                    errors.push(SettingsError::InvalidValue {
                        name: a.name.clone(),
                        at: cfgd_settings::Source::layer(LayerKind::Profile),
                        expected: "no value given".into(),
                    });
                    continue;
                }
            };
            out.push((a.name, input));
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(OpError::Invalid(errors))
        }
    }

    fn write_response(
        &self,
        outcome: &Outcome,
        given: &[String],
        reveal: bool,
    ) -> pb::WriteResponse {
        let view = &outcome.view;
        let applied = given
            .iter()
            .filter_map(|g| {
                let entry = view.catalog.get(g)?;
                let r = outcome.resolution.get(&entry.name)?;
                Some(pb::Applied {
                    name: entry.name.clone(),
                    given_name: g.clone(),
                    value: Some(convert::value(profile_value(r), reveal)),
                    effective: Some(convert::resolved(r, reveal)),
                })
            })
            .collect();
        pb::WriteResponse {
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

    async fn profile_op(
        &self,
        detail: String,
        expected: Option<u64>,
        change: impl FnOnce(&mut cfgd_settings::ProfilesFile) -> Result<(), SettingsError>
        + Send
        + 'static,
    ) -> Result<Outcome, Status> {
        Ok(self
            .writer
            .run(Op::Profile {
                detail,
                expected,
                change: Box::new(change),
            })
            .await?)
    }
}

/// The names an operation changed (what a rollback or profile switch reports).
fn changed_names(outcome: &Outcome) -> Vec<String> {
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

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::settings_server::Settings for SettingsService {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let reveal = self
            .auth
            .may_reveal(&request, request.get_ref().reveal_secrets)?;
        let name = &request.get_ref().name;
        self.check_name("a setting name", name)?;
        let view = self.hub.view();
        let entry = view
            .catalog
            .lookup(name)
            .map_err(|e| OpError::Invalid(vec![e]))?;
        let r = view
            .resolution
            .get(&entry.name)
            .ok_or_else(|| Status::internal("setting missing from the resolution"))?;
        Ok(Response::new(pb::GetResponse {
            setting: Some(convert::resolved(r, reveal)),
            revision: view.revision,
            epoch: view.epoch,
        }))
    }

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        let reveal = self
            .auth
            .may_reveal(&request, request.get_ref().reveal_secrets)?;
        let view = self.hub.view();
        let names = self.canonical(&view, &request.get_ref().names)?;
        Ok(Response::new(convert::snapshot(
            &view,
            names.as_deref(),
            reveal,
        )))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.auth.check(&request, "set")?;
        let reveal = self.auth.may_reveal(&request, false)?;
        let req = request.into_inner();
        let given: Vec<String> = req.assignments.iter().map(|a| a.name.clone()).collect();
        let batch = self.batch(req.assignments)?;
        let outcome = self
            .writer
            .run(Op::Set {
                batch,
                expected: req.expected_revision,
            })
            .await?;
        Ok(Response::new(self.write_response(&outcome, &given, reveal)))
    }

    async fn unset(
        &self,
        request: Request<pb::UnsetRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.auth.check(&request, "unset")?;
        let req = request.into_inner();
        self.check_batch(req.names.len())?;
        for n in &req.names {
            self.check_name("a setting name", n)?;
        }
        let outcome = self
            .writer
            .run(Op::Unset {
                names: req.names.clone(),
                expected: req.expected_revision,
            })
            .await?;
        Ok(Response::new(
            self.write_response(&outcome, &req.names, false),
        ))
    }

    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let req = request.into_inner();
        let view = self.hub.view();
        let errors = match self.batch(req.assignments) {
            Err(OpError::Invalid(errors)) => errors,
            Err(other) => return Err(other.into()),
            Ok(batch) => match core::validate(&view.catalog, &view.active_profile, &batch) {
                Ok(_) => Vec::new(),
                Err(OpError::Invalid(errors)) => errors,
                Err(other) => return Err(other.into()),
            },
        };
        Ok(Response::new(pb::ValidateResponse {
            errors: errors
                .iter()
                .map(|e| pb::ValidationError {
                    name: e.setting().unwrap_or_default().to_owned(),
                    message: e.to_string(),
                })
                .collect(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let reveal = self
            .auth
            .may_reveal(&request, request.get_ref().reveal_secrets)?;
        let req = request.into_inner();
        let view = self.hub.view();
        let names = self.canonical(&view, &req.names)?;
        let stream = watch::open(
            self.hub.clone(),
            req.after_revision,
            req.epoch,
            names,
            reveal,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let reveal = self
            .auth
            .may_reveal(&request, request.get_ref().reveal_secrets)?;
        let limit = match request.get_ref().limit {
            0 => DEFAULT_HISTORY,
            n => n as usize,
        };
        let (records, oldest) = self.hub.history(limit);
        let view = self.hub.view();
        Ok(Response::new(pb::HistoryResponse {
            changes: records
                .iter()
                .filter_map(|r| convert::change(r, None, reveal))
                .collect(),
            revision: view.revision,
            epoch: view.epoch,
            oldest_revision: oldest,
        }))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.auth.check(&request, "rollback")?;
        let req = request.into_inner();
        let outcome = self
            .writer
            .run(Op::Rollback {
                target: req.revision,
                expected: req.expected_revision,
            })
            .await?;
        let names = changed_names(&outcome);
        Ok(Response::new(self.write_response(&outcome, &names, false)))
    }

    async fn list_profiles(
        &self,
        _request: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        let view = self.hub.view();
        let mut names: Vec<&String> = view.profiles.profiles.keys().collect();
        if !names.iter().any(|n| **n == view.active_profile) {
            names.push(&view.active_profile);
            names.sort();
        }
        Ok(Response::new(pb::ListProfilesResponse {
            profiles: names
                .into_iter()
                .map(|n| pb::ProfileInfo {
                    name: n.clone(),
                    active: *n == view.active_profile,
                    settings: view.profiles.profiles.get(n).map_or(0, |p| p.len() as u32),
                })
                .collect(),
            active: view.active_profile.clone(),
        }))
    }

    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Result<Response<pb::ProfileResponse>, Status> {
        self.auth.check(&request, "create a profile")?;
        let req = request.into_inner();
        self.check_name("a profile name", &req.name)?;
        let (name, from) = (req.name.clone(), req.from.clone());
        let detail = match &from {
            Some(f) => format!("create {name} from {f}"),
            None => format!("create {name}"),
        };
        let outcome = self
            .profile_op(detail, None, move |p| p.create(&name, from.as_deref()))
            .await?;
        Ok(Response::new(pb::ProfileResponse {
            name: req.name,
            active: outcome.view.active_profile.clone(),
        }))
    }

    async fn use_profile(
        &self,
        request: Request<pb::UseProfileRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.auth.check(&request, "switch profiles")?;
        let req = request.into_inner();
        self.check_name("a profile name", &req.name)?;
        let name = req.name.clone();
        let outcome = self
            .profile_op(format!("use {name}"), req.expected_revision, move |p| {
                p.use_profile(&name)
            })
            .await?;
        let names = changed_names(&outcome);
        Ok(Response::new(self.write_response(&outcome, &names, false)))
    }

    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::ProfileResponse>, Status> {
        self.auth.check(&request, "delete a profile")?;
        let req = request.into_inner();
        self.check_name("a profile name", &req.name)?;
        let name = req.name.clone();
        let outcome = self
            .profile_op(format!("delete {name}"), None, move |p| p.delete(&name))
            .await?;
        Ok(Response::new(pb::ProfileResponse {
            name: req.name,
            active: outcome.view.active_profile.clone(),
        }))
    }

    async fn rename_profile(
        &self,
        request: Request<pb::RenameProfileRequest>,
    ) -> Result<Response<pb::ProfileResponse>, Status> {
        self.auth.check(&request, "rename a profile")?;
        let req = request.into_inner();
        self.check_name("a profile name", &req.from)?;
        self.check_name("a profile name", &req.to)?;
        let (from, to) = (req.from.clone(), req.to.clone());
        let outcome = self
            .profile_op(format!("rename {from} to {to}"), None, move |p| {
                p.rename(&from, &to)
            })
            .await?;
        Ok(Response::new(pb::ProfileResponse {
            name: req.to,
            active: outcome.view.active_profile.clone(),
        }))
    }

    async fn inspect_profile(
        &self,
        request: Request<pb::InspectProfileRequest>,
    ) -> Result<Response<pb::InspectProfileResponse>, Status> {
        let reveal = self
            .auth
            .may_reveal(&request, request.get_ref().reveal_secrets)?;
        let req = request.into_inner();
        let view = self.hub.view();
        let name = if req.name.is_empty() {
            view.active_profile.clone()
        } else {
            req.name
        };
        let values = match view.profiles.profiles.get(&name) {
            Some(v) => v.clone(),
            None if name == view.active_profile => Default::default(),
            None => return Err(OpError::Settings(SettingsError::ProfileNotFound(name)).into()),
        };
        let entries = values
            .iter()
            .map(|(key, raw)| {
                let entry = view.catalog.get(key);
                let secret = entry.is_some_and(cfgd_settings::Entry::is_secret);
                let parsed = entry.and_then(|e| cfgd_settings::value::from_toml(e, raw).ok());
                let value = match parsed {
                    _ if secret && !reveal => pb::Value {
                        kind: Some(pb::value::Kind::Masked(pb::Masked {})),
                    },
                    Some(v) => convert::value(Some(&v), true),
                    // Not a valid value for any known setting: show it as stored.
                    None => pb::Value {
                        kind: Some(pb::value::Kind::Text(match raw {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })),
                    },
                };
                pb::ProfileEntry {
                    name: entry.map_or_else(|| key.clone(), |e| e.name.clone()),
                    value: Some(value),
                    secret,
                }
            })
            .collect();
        Ok(Response::new(pb::InspectProfileResponse {
            active: name == view.active_profile,
            name,
            entries,
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let view = self.hub.view();
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
                } as i32,
                error: f.error.clone().unwrap_or_default(),
                error_line: f.error_line.unwrap_or(0),
            })
            .collect();
        Ok(Response::new(pb::StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            listen: self.info.listen.clone(),
            revision: view.revision,
            epoch: view.epoch,
            oldest_revision: self.hub.oldest(),
            active_profile: view.active_profile.clone(),
            config_dir: self.info.config_dir.clone(),
            state_dir: self.info.state_dir.clone(),
            profiles_path: self.info.profiles_path.clone(),
            files,
            watchers: self.hub.watchers(),
            started_unix_ms: self.info.started_ms,
            settings: view.resolution.len() as u32,
            reload: Some(self.info.reload.borrow().to_pb()),
            connections: Some(self.info.connections.to_pb()),
        }))
    }

    async fn catalog(
        &self,
        _request: Request<pb::CatalogRequest>,
    ) -> Result<Response<pb::CatalogResponse>, Status> {
        let view = self.hub.view();
        Ok(Response::new(pb::CatalogResponse {
            entries: view
                .catalog
                .entries()
                .iter()
                .map(convert::catalog_entry)
                .collect(),
        }))
    }
}
