//! The `cfgd.v1.Settings` gRPC service: reads from the published view,
//! writes through the writer, watches from the hub. Each handler checks
//! authorisation and limits first, then does one thing.
//!
//! # Layout
//! - `auth` — the optional token.
//! - `limits` — request limits, and the message-size check.
//! - `names` — names to canonical ones, with bounded "did you mean" work;
//!   a batch validated at the edge.
//! - `mask` — the one masking rule for secrets.
//! - `convert` — settings-model types to wire types.
//! - `responses` — the answers, from the view or a write's outcome.
//! - `watch` — one watch stream.
//! - `fleet` — `Ack` and `Fleet`, and the store's part of `Status`.

mod auth;
pub(crate) mod convert;
mod fleet;
mod limits;
mod mask;
mod names;
mod profile_view;
mod responses;
pub(crate) mod watch;

use std::pin::Pin;
use std::sync::Arc;

use cfgd_proto::pb;
use cfgd_settings::{Catalog, LayerKind, SettingsError};
use futures_util::Stream;
use tonic::{Request, Response, Status};

pub(crate) use auth::Auth;
pub(crate) use limits::MessageLimit;

use crate::config::Limits;
use crate::core::{Input, ProfileChange};
use crate::error::{self, OpError};
use crate::hub::Hub;
use crate::writer::{Op, Outcome, WriterHandle};
use mask::Mask;
use names::Resolver;

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
    names: Resolver,
    info: Arc<Info>,
    fleet: Arc<crate::fleet::Fleet>,
}

/// The default number of history records returned.
const DEFAULT_HISTORY: usize = 100;

const SETTING: &str = "a setting name";
const PROFILE: &str = "a profile name";

impl SettingsService {
    /// A service over `hub`, writing through `writer`.
    pub(crate) fn new(
        hub: Arc<Hub>,
        writer: WriterHandle,
        auth: Auth,
        limits: Limits,
        info: Info,
        fleet: Arc<crate::fleet::Fleet>,
    ) -> Self {
        Self {
            hub,
            writer,
            auth,
            limits,
            names: Resolver::new(),
            info: Arc::new(info),
            fleet,
        }
    }

    /// The hub it serves from (the console reads status changes there).
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The fleet it answers for (the console reads the store's state there).
    pub(crate) fn fleet_state(&self) -> &Arc<crate::fleet::Fleet> {
        &self.fleet
    }

    /// Canonical names for a filter (empty means all).
    async fn filter(&self, names: &[String]) -> Result<Option<Vec<String>>, OpError> {
        limits::names(&self.limits, names)?;
        if names.is_empty() {
            return Ok(None);
        }
        let view = self.hub.view();
        self.names.canonical(&view.catalog, names).await.map(Some)
    }

    /// A batch of assignments from the wire, within the limits, checked
    /// against `catalog` for `profile`: every problem of the batch is named
    /// (one without a usable value does not hide another's wrong type).
    async fn checked(
        &self,
        catalog: &Catalog,
        profile: &str,
        assignments: Vec<pb::Assignment>,
    ) -> Result<Batch, OpError> {
        let (batch, mut errors) = self.batch(catalog, assignments)?;
        match self.names.validate(catalog, profile, &batch).await {
            Ok(()) => {}
            Err(OpError::Invalid(more)) => errors.extend(more),
            Err(other) => return Err(other),
        }
        if errors.is_empty() {
            Ok(batch)
        } else {
            Err(OpError::Invalid(errors))
        }
    }

    /// A batch of assignments from the wire, within the limits: those with
    /// a usable value, and a problem for each without one.
    fn batch(
        &self,
        catalog: &Catalog,
        assignments: Vec<pb::Assignment>,
    ) -> Result<(Batch, Vec<SettingsError>), OpError> {
        limits::batch(&self.limits, assignments.len())?;
        let mut out = Vec::with_capacity(assignments.len());
        let mut errors = Vec::new();
        let invalid = |name: &str, expected: String| SettingsError::InvalidValue {
            name: catalog.get(name).map_or(name, |e| &e.name).to_owned(),
            at: cfgd_settings::Source::layer(LayerKind::Profile),
            expected,
        };
        for a in assignments {
            limits::name(&self.limits, SETTING, &a.name)?;
            let input = match a.value {
                Some(pb::assignment::Value::Raw(raw)) => {
                    limits::value(&self.limits, &a.name, &raw)?;
                    Input::Raw(raw)
                }
                Some(pb::assignment::Value::Typed(v)) => match convert::value_from_pb(&v) {
                    Ok(v) => Input::Typed(v),
                    Err(expected) => {
                        errors.push(invalid(&a.name, expected));
                        continue;
                    }
                },
                None => {
                    errors.push(invalid(&a.name, "no value given".into()));
                    continue;
                }
            };
            out.push((a.name, input));
        }
        Ok((out, errors))
    }

    async fn profile_op(
        &self,
        expected: Option<u64>,
        change: ProfileChange,
    ) -> Result<Outcome, Status> {
        Ok(self.writer.run(Op::Profile { expected, change }).await?)
    }
}

/// Assignments by the name given, each with its value from the wire.
type Batch = Vec<(String, Input)>;

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<cfgd_proto::frame::WatchFrame, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::settings_server::Settings for SettingsService {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let mask = Mask::new(
            self.auth
                .may_reveal(&request, request.get_ref().reveal_secrets)?,
        );
        let name = &request.get_ref().name;
        limits::name(&self.limits, SETTING, name).map_err(OpError::from)?;
        let view = self.hub.view();
        let canonical = self
            .names
            .canonical(&view.catalog, std::slice::from_ref(name))
            .await?;
        let view = profile_view::as_if_active(view, &request.get_ref().profile)?;
        let r = canonical
            .first()
            .and_then(|n| view.resolution.get(n))
            // The resolution holds every entry of its view's catalogue.
            .ok_or_else(|| {
                OpError::Invalid(vec![SettingsError::UnknownName {
                    name: name.clone(),
                    suggestion: None,
                    at: None,
                }])
            })?;
        Ok(Response::new(pb::GetResponse {
            setting: Some(convert::resolved(r, mask)),
            revision: view.revision,
            epoch: view.epoch,
        }))
    }

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let mask = Mask::new(
            self.auth
                .may_reveal(&request, request.get_ref().reveal_secrets)?,
        );
        let names = self.filter(&request.get_ref().names).await?;
        let view = profile_view::as_if_active(self.hub.view(), &request.get_ref().profile)?;
        Ok(Response::new(responses::snapshot(
            &view,
            names.as_deref(),
            mask,
        )))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        self.auth.check(&request, "set")?;
        let mask = Mask::new(self.auth.may_reveal(&request, false)?);
        let req = request.into_inner();
        let given: Vec<String> = req.assignments.iter().map(|a| a.name.clone()).collect();
        let profile = (!req.profile.is_empty()).then_some(req.profile);
        let view = self.hub.view();
        let given_names = names::given(&view.catalog, &given);
        let target = profile.as_deref().unwrap_or(&view.active_profile);
        let batch = self
            .checked(&view.catalog, target, req.assignments)
            .await
            .map_err(|e| e.into_status(given_names.clone()))?;
        let outcome = self
            .writer
            .run(Op::Set {
                batch,
                expected: req.expected_revision,
                profile: profile.clone(),
            })
            .await
            .map_err(|e| e.into_status(given_names))?;
        let outcome = profile_view::in_profile(outcome, profile)?;
        Ok(Response::new(
            responses::written(&outcome, &given, mask).into(),
        ))
    }

    async fn unset(
        &self,
        request: Request<pb::UnsetRequest>,
    ) -> Result<Response<pb::UnsetResponse>, Status> {
        self.auth.check(&request, "unset")?;
        let req = request.into_inner();
        limits::batch(&self.limits, req.names.len()).map_err(OpError::from)?;
        limits::names(&self.limits, &req.names).map_err(OpError::from)?;
        let view = self.hub.view();
        self.names.canonical(&view.catalog, &req.names).await?;
        let given = names::given(&view.catalog, &req.names);
        let profile = (!req.profile.is_empty()).then_some(req.profile.clone());
        let outcome = self
            .writer
            .run(Op::Unset {
                names: req.names.clone(),
                expected: req.expected_revision,
                profile: profile.clone(),
            })
            .await
            .map_err(|e| e.into_status(given))?;
        let outcome = profile_view::in_profile(outcome, profile)?;
        Ok(Response::new(
            responses::written(&outcome, &req.names, Mask::HIDE).into(),
        ))
    }

    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let req = request.into_inner();
        let view = self.hub.view();
        let given = names::given(&view.catalog, req.assignments.iter().map(|a| &a.name));
        let errors = match self
            .checked(&view.catalog, &view.active_profile, req.assignments)
            .await
        {
            Ok(_) => Vec::new(),
            Err(OpError::Invalid(errors)) => errors,
            Err(other) => return Err(other.into_status(given)),
        };
        Ok(Response::new(responses::validation(error::problems(
            &errors, given,
        ))))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let mask = Mask::new(
            self.auth
                .may_reveal(&request, request.get_ref().reveal_secrets)?,
        );
        let req = request.into_inner();
        let names = self.filter(&req.names).await?;
        let instance = if req.instance.is_empty() {
            None
        } else {
            limits::name(&self.limits, "a service name", &req.service).map_err(OpError::from)?;
            limits::name(&self.limits, "an instance name", &req.instance).map_err(OpError::from)?;
            self.fleet.services.stream(&req.service, &req.instance)
        };
        let stream = watch::open(
            self.hub.clone(),
            req.after_revision,
            req.epoch,
            names,
            mask,
            instance,
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let mask = Mask::new(
            self.auth
                .may_reveal(&request, request.get_ref().reveal_secrets)?,
        );
        let limit = match request.get_ref().limit {
            0 => DEFAULT_HISTORY,
            n => n as usize,
        };
        Ok(Response::new(responses::history(&self.hub, limit, mask)))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        self.auth.check(&request, "rollback")?;
        let req = request.into_inner();
        let outcome = self
            .writer
            .run(Op::Rollback {
                target: req.revision,
                expected: req.expected_revision,
            })
            .await?;
        let names = responses::changed_names(&outcome);
        Ok(Response::new(
            responses::written(&outcome, &names, Mask::HIDE).into(),
        ))
    }

    async fn list_profiles(
        &self,
        _request: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        Ok(Response::new(responses::profiles(&self.hub.view())))
    }

    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Result<Response<pb::CreateProfileResponse>, Status> {
        self.auth.check(&request, "create a profile")?;
        let req = request.into_inner();
        limits::name(&self.limits, PROFILE, &req.name).map_err(OpError::from)?;
        let change = ProfileChange::Create {
            name: req.name.clone(),
            from: req.from.clone(),
        };
        let outcome = self.profile_op(None, change).await?;
        Ok(Response::new(pb::CreateProfileResponse {
            name: req.name,
            active: outcome.view.active_profile.clone(),
        }))
    }

    async fn use_profile(
        &self,
        request: Request<pb::UseProfileRequest>,
    ) -> Result<Response<pb::UseProfileResponse>, Status> {
        self.auth.check(&request, "switch profiles")?;
        let req = request.into_inner();
        limits::name(&self.limits, PROFILE, &req.name).map_err(OpError::from)?;
        let outcome = self
            .profile_op(req.expected_revision, ProfileChange::Use(req.name.clone()))
            .await?;
        let names = responses::changed_names(&outcome);
        Ok(Response::new(
            responses::written(&outcome, &names, Mask::HIDE).into(),
        ))
    }

    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::DeleteProfileResponse>, Status> {
        self.auth.check(&request, "delete a profile")?;
        let req = request.into_inner();
        limits::name(&self.limits, PROFILE, &req.name).map_err(OpError::from)?;
        let outcome = self
            .profile_op(None, ProfileChange::Delete(req.name.clone()))
            .await?;
        Ok(Response::new(pb::DeleteProfileResponse {
            name: req.name,
            active: outcome.view.active_profile.clone(),
        }))
    }

    async fn rename_profile(
        &self,
        request: Request<pb::RenameProfileRequest>,
    ) -> Result<Response<pb::RenameProfileResponse>, Status> {
        self.auth.check(&request, "rename a profile")?;
        let req = request.into_inner();
        limits::name(&self.limits, PROFILE, &req.from).map_err(OpError::from)?;
        limits::name(&self.limits, PROFILE, &req.to).map_err(OpError::from)?;
        let change = ProfileChange::Rename {
            from: req.from.clone(),
            to: req.to.clone(),
        };
        let outcome = self.profile_op(None, change).await?;
        Ok(Response::new(pb::RenameProfileResponse {
            name: req.to,
            active: outcome.view.active_profile.clone(),
        }))
    }

    async fn inspect_profile(
        &self,
        request: Request<pb::InspectProfileRequest>,
    ) -> Result<Response<pb::InspectProfileResponse>, Status> {
        let mask = Mask::new(
            self.auth
                .may_reveal(&request, request.get_ref().reveal_secrets)?,
        );
        let req = request.into_inner();
        Ok(Response::new(responses::inspect(
            &self.hub.view(),
            req.name,
            mask,
        )?))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let mut status = responses::status(&self.hub, &self.info);
        status.store = Some(fleet::store(self.fleet.state.get()));
        Ok(Response::new(status))
    }

    async fn ack(
        &self,
        request: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        let req = request.into_inner();
        limits::name(&self.limits, "a service name", &req.service).map_err(OpError::from)?;
        limits::name(&self.limits, "an instance name", &req.instance).map_err(OpError::from)?;
        if req.service.is_empty() || req.instance.is_empty() {
            return Err(OpError::Limit(crate::error::Limit::EmptyBatch).into());
        }
        self.fleet.services.ack(
            &req.service,
            &req.instance,
            req.revision,
            req.epoch,
            crate::writer::now_ms(),
        );
        Ok(Response::new(pb::AckResponse {}))
    }

    async fn fleet(
        &self,
        _request: Request<pb::FleetRequest>,
    ) -> Result<Response<pb::FleetResponse>, Status> {
        Ok(Response::new(fleet::fleet(self.fleet.view().await)))
    }

    async fn catalog(
        &self,
        _request: Request<pb::CatalogRequest>,
    ) -> Result<Response<pb::CatalogResponse>, Status> {
        Ok(Response::new(responses::catalog(&self.hub.view())))
    }
}

#[cfg(test)]
mod tests;
