//! [`Client`]: every daemon operation as a typed async call.
//!
//! `cfg` is built on it; services usually want [`crate::Settings`] instead,
//! which keeps a live copy and never waits on the daemon.
//!
//! # Layout
//! - `mod.rs` — [`Client`]: connecting and one method per RPC.
//! - `types.rs` — the SDK's own types for what the daemon sends.
//! - `fleet.rs` — [`Fleet`] (which hosts and services run which revision)
//!   and [`StoreStatus`].
//! - `resume.rs` — [`Resuming`]: a watch that reconnects with a [`Backoff`]
//!   and resumes after its last revision.
//! - `backoff.rs` — [`Backoff`]: the waits between reconnections.

mod backoff;
mod fleet;
mod resume;
mod types;

use std::time::Duration;

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use cfgd_settings::{Catalog, Entry, Value};
use futures_util::{Stream, StreamExt};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub use backoff::Backoff;
pub use fleet::{Fleet, FleetHost, FleetService, StoreStatus};
pub use resume::{Position, Resumed, Resuming};
pub use types::{
    Applied, Change, Connections, FileStatus, History, KeyChange, Origin, ProfileContents,
    ProfileInfo, ReloadState, ResyncReason, Setting, Shown, Snapshot, Status, WatchEvent,
    WriteResult,
};

pub(crate) use types::source as source_from_pb;

use crate::error::Error;

/// The endpoint used when none is given: `http://127.0.0.1:7979`.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7979";

/// The endpoint from `CFGD_ENDPOINT`, else [`DEFAULT_ENDPOINT`].
pub fn endpoint_from_env() -> String {
    std::env::var("CFGD_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned())
}

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone)]
pub struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Token(********)"
        } else {
            "Token(None)"
        })
    }
}

impl Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A typed client of one daemon. Cheap to clone (clones share the connection).
#[derive(Debug, Clone)]
pub struct Client {
    inner: SettingsClient<InterceptedService<Channel, Token>>,
    endpoint: String,
    // `cfg -p NAME`: reads resolve with, and writes go into, this profile
    // instead of the active one; empty means the active one.
    profile: String,
    // The service and instance its watches belong to (empty: none).
    service: String,
    instance: String,
}

/// An assignment for [`Client::set`]: a string for the daemon's parser, or
/// a typed value.
#[derive(Debug, Clone)]
pub enum Assign {
    /// Parsed by the daemon (`"2"`, `"1,10,100"`, `"[1, 10, 100]"`).
    Raw(String),
    /// Checked against the setting's type by the daemon.
    Typed(Value),
}

/// How to reach a daemon beyond its address.
///
/// # Default
/// No token, no CA certificate.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// The daemon's token (for writes and revealing secrets).
    pub token: Option<String>,
    /// A CA certificate (PEM file) to trust for an `https://` endpoint.
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Connect {
    /// Just a token.
    pub fn token(token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ca_cert: None,
        }
    }
}

/// `http://host:port`, `https://host:port` (needs a CA) or `unix:/path`.
fn endpoint(url: &str, connect: &Connect) -> Result<(Endpoint, Option<std::path::PathBuf>), Error> {
    let bad = |reason: String| Error::Endpoint {
        endpoint: url.to_owned(),
        reason,
    };
    let (uri, socket) = match url.strip_prefix("unix:") {
        // The URI is only a placeholder: the connector dials the socket.
        Some(path) if !path.is_empty() => (
            "http://localhost".to_owned(),
            Some(std::path::PathBuf::from(path)),
        ),
        Some(_) => return Err(bad("expected a socket path after 'unix:'".into())),
        None if url.contains("://") => (url.to_owned(), None),
        None => (format!("http://{url}"), None),
    };
    let mut ep = Endpoint::from_shared(uri)
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let Some(ca) = &connect.ca_cert else {
            return Err(bad(
                "an https endpoint needs the CA certificate to trust (--ca-cert or CFGD_CA_CERT)"
                    .into(),
            ));
        };
        let pem = std::fs::read(ca).map_err(|e| {
            bad(format!(
                "cannot read the CA certificate {}: {e}",
                ca.display()
            ))
        })?;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem));
        ep = ep.tls_config(tls).map_err(|e| bad(e.to_string()))?;
    }
    Ok((ep, socket))
}

fn unix_connector(
    path: std::path::PathBuf,
) -> impl tower::Service<
    tonic::transport::Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: tonic::transport::Uri| {
        let path = path.clone();
        async move {
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))
        }
    })
}

fn token(token: Option<&str>) -> Result<Token, Error> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(Token(None)),
        Some(t) => format!("Bearer {t}")
            .parse()
            .map(|v| Token(Some(v)))
            .map_err(|_| Error::Token),
    }
}

impl Client {
    /// Connects now; fails at once if the daemon cannot be reached.
    ///
    /// # Errors
    /// [`Error::Endpoint`] for a malformed endpoint, [`Error::Unreachable`]
    /// when nothing answers there.
    pub async fn connect(url: &str, token_value: Option<&str>) -> Result<Self, Error> {
        Self::connect_with(url, &Connect::token(token_value)).await
    }

    /// [`Client::connect`] with a CA certificate for `https://` endpoints.
    ///
    /// # Errors
    /// As [`Client::connect`], or an unreadable CA certificate.
    pub async fn connect_with(url: &str, connect: &Connect) -> Result<Self, Error> {
        let (ep, socket) = endpoint(url, connect)?;
        let channel = match socket {
            Some(path) => ep.connect_with_connector(unix_connector(path)).await,
            None => ep.connect().await,
        }
        .map_err(|e| Error::unreachable(url, &e))?;
        Ok(Self::from_channel(
            channel,
            url,
            token(connect.token.as_deref())?,
        ))
    }

    /// A client that connects on first use and reconnects by itself.
    ///
    /// # Errors
    /// [`Error::Endpoint`] for a malformed endpoint.
    pub fn connect_lazy(url: &str, connect: &Connect) -> Result<Self, Error> {
        let (ep, socket) = endpoint(url, connect)?;
        let channel = match socket {
            Some(path) => ep.connect_with_connector_lazy(unix_connector(path)),
            None => ep.connect_lazy(),
        };
        Ok(Self::from_channel(
            channel,
            url,
            token(connect.token.as_deref())?,
        ))
    }

    fn from_channel(channel: Channel, url: &str, token: Token) -> Self {
        Self {
            inner: SettingsClient::with_interceptor(channel, token)
                .max_decoding_message_size(usize::MAX),
            endpoint: url.to_owned(),
            profile: String::new(),
            service: String::new(),
            instance: String::new(),
        }
    }

    /// This client's watches belong to `instance` of `service`: the daemon
    /// lists the instance in [`Client::fleet`] while one is open, with the
    /// revision it last reported through [`Client::ack`].
    pub fn with_instance(mut self, service: &str, instance: &str) -> Self {
        self.service = service.to_owned();
        self.instance = instance.to_owned();
        self
    }

    /// This client with reads ([`Client::get`], [`Client::snapshot`]) that
    /// resolve with profile `name` in place of the active one, and writes
    /// ([`Client::set`], [`Client::unset`]) that go into it (Prefect's
    /// `-p/--profile`). `None` means the active profile.
    pub fn with_profile(mut self, name: Option<&str>) -> Self {
        self.profile = name.unwrap_or_default().to_owned();
        self
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn err(&self) -> impl Fn(tonic::Status) -> Error + '_ {
        move |s| Error::from_status(&self.endpoint, s)
    }

    /// One setting by name or alias.
    ///
    /// # Errors
    /// Unknown name, unreachable daemon, or (with `reveal`) a missing token.
    pub async fn get(&self, name: &str, reveal: bool) -> Result<Setting, Error> {
        let r = self
            .inner
            .clone()
            .get(pb::GetRequest {
                name: name.to_owned(),
                reveal_secrets: reveal,
                profile: self.profile.clone(),
            })
            .await
            .map_err(self.err())?
            .into_inner();
        r.setting
            .map(Into::into)
            .ok_or(Error::Protocol("Get answered without a setting".into()))
    }

    /// Every setting (or only `names`).
    ///
    /// # Errors
    /// Unknown name, unreachable daemon, or (with `reveal`) a missing token.
    pub async fn snapshot(&self, names: &[String], reveal: bool) -> Result<Snapshot, Error> {
        let r = self
            .inner
            .clone()
            .snapshot(pb::SnapshotRequest {
                reveal_secrets: reveal,
                names: names.to_vec(),
                profile: self.profile.clone(),
            })
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// Writes a batch into the active profile, all or nothing; with
    /// `expected`, only if the daemon is still at that revision.
    ///
    /// # Errors
    /// Invalid names or values (every one listed), a stale revision, a
    /// missing token, an unreachable daemon.
    pub async fn set(
        &self,
        batch: &[(String, Assign)],
        expected: Option<u64>,
    ) -> Result<WriteResult, Error> {
        let assignments = batch
            .iter()
            .map(|(name, a)| pb::Assignment {
                name: name.clone(),
                value: Some(match a {
                    Assign::Raw(r) => pb::assignment::Value::Raw(r.clone()),
                    Assign::Typed(v) => pb::assignment::Value::Typed(types::value_to_pb(v)),
                }),
            })
            .collect();
        let r = self
            .inner
            .clone()
            .set(pb::SetRequest {
                assignments,
                expected_revision: expected,
                profile: self.profile.clone(),
            })
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// Removes names from the active profile, all or nothing.
    ///
    /// # Errors
    /// An unknown name or one the profile does not hold, a stale revision,
    /// a missing token, an unreachable daemon.
    pub async fn unset(
        &self,
        names: &[String],
        expected: Option<u64>,
    ) -> Result<WriteResult, Error> {
        let r = self
            .inner
            .clone()
            .unset(pb::UnsetRequest {
                names: names.to_vec(),
                expected_revision: expected,
                profile: self.profile.clone(),
            })
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// Checks assignments without applying them: `(name, message)` per problem.
    ///
    /// # Errors
    /// An unreachable daemon.
    pub async fn validate(
        &self,
        batch: &[(String, String)],
    ) -> Result<Vec<(String, String)>, Error> {
        let r = self
            .inner
            .clone()
            .validate(pb::ValidateRequest {
                assignments: batch
                    .iter()
                    .map(|(n, v)| pb::Assignment {
                        name: n.clone(),
                        value: Some(pb::assignment::Value::Raw(v.clone())),
                    })
                    .collect(),
            })
            .await
            .map_err(self.err())?;
        Ok(r.into_inner()
            .errors
            .into_iter()
            .map(|e| (e.name, e.message))
            .collect())
    }

    /// Opens a watch: from a snapshot (`after = None`) or resuming after a
    /// revision of `epoch`; only `names` when given.
    ///
    /// # Errors
    /// Unknown names, an unreachable daemon; later items carry stream errors.
    pub async fn watch(
        &self,
        after: Option<u64>,
        epoch: Option<u64>,
        names: &[String],
        reveal: bool,
    ) -> Result<impl Stream<Item = Result<WatchEvent, Error>> + Send + 'static + use<>, Error> {
        let stream = self
            .inner
            .clone()
            .watch(pb::WatchRequest {
                after_revision: after,
                epoch,
                names: names.to_vec(),
                reveal_secrets: reveal,
                service: self.service.clone(),
                instance: self.instance.clone(),
            })
            .await
            .map_err(self.err())?
            .into_inner();
        let endpoint = self.endpoint.clone();
        Ok(stream.filter_map(move |item| {
            let out = match item {
                Ok(e) => WatchEvent::from_pb(e).map(Ok),
                Err(s) => Some(Err(Error::from_status(&endpoint, s))),
            };
            std::future::ready(out)
        }))
    }

    /// The newest `limit` changes (0: the daemon's default of 100).
    ///
    /// # Errors
    /// An unreachable daemon, or (with `reveal`) a missing token.
    pub async fn history(&self, limit: u32, reveal: bool) -> Result<History, Error> {
        let r = self
            .inner
            .clone()
            .history(pb::HistoryRequest {
                limit,
                reveal_secrets: reveal,
            })
            .await
            .map_err(self.err())?
            .into_inner();
        Ok(History {
            changes: r.changes.into_iter().map(Into::into).collect(),
            revision: r.revision,
            epoch: r.epoch,
            oldest_revision: r.oldest_revision,
        })
    }

    /// Restores the profiles as they were at `revision` (a new revision).
    ///
    /// # Errors
    /// A revision outside the history, a stale `expected`, a missing token.
    pub async fn rollback(
        &self,
        revision: u64,
        expected: Option<u64>,
    ) -> Result<WriteResult, Error> {
        let r = self
            .inner
            .clone()
            .rollback(pb::RollbackRequest {
                revision,
                expected_revision: expected,
            })
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// Every profile and which is active.
    ///
    /// # Errors
    /// An unreachable daemon.
    pub async fn profiles(&self) -> Result<Vec<ProfileInfo>, Error> {
        let r = self
            .inner
            .clone()
            .list_profiles(pb::ListProfilesRequest {})
            .await
            .map_err(self.err())?
            .into_inner();
        Ok(r.profiles
            .into_iter()
            .map(|p| ProfileInfo {
                name: p.name,
                active: p.active,
                settings: p.settings,
            })
            .collect())
    }

    /// Creates a profile, empty or copied from `from`.
    ///
    /// # Errors
    /// A taken or invalid name, an unknown `from`, a missing token.
    pub async fn create_profile(&self, name: &str, from: Option<&str>) -> Result<(), Error> {
        self.inner
            .clone()
            .create_profile(pb::CreateProfileRequest {
                name: name.to_owned(),
                from: from.map(str::to_owned),
            })
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Makes a profile active.
    ///
    /// # Errors
    /// An unknown profile, a missing token.
    pub async fn use_profile(&self, name: &str) -> Result<WriteResult, Error> {
        let r = self
            .inner
            .clone()
            .use_profile(pb::UseProfileRequest {
                name: name.to_owned(),
                expected_revision: None,
            })
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// Deletes a profile that is not active.
    ///
    /// # Errors
    /// An unknown or active profile, a missing token.
    pub async fn delete_profile(&self, name: &str) -> Result<(), Error> {
        self.inner
            .clone()
            .delete_profile(pb::DeleteProfileRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Renames a profile.
    ///
    /// # Errors
    /// An unknown `from`, a taken or invalid `to`, a missing token.
    pub async fn rename_profile(&self, from: &str, to: &str) -> Result<(), Error> {
        self.inner
            .clone()
            .rename_profile(pb::RenameProfileRequest {
                from: from.to_owned(),
                to: to.to_owned(),
            })
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// A profile's contents (`None`: the active one).
    ///
    /// # Errors
    /// An unknown profile, or (with `reveal`) a missing token.
    pub async fn inspect_profile(
        &self,
        name: Option<&str>,
        reveal: bool,
    ) -> Result<ProfileContents, Error> {
        let r = self
            .inner
            .clone()
            .inspect_profile(pb::InspectProfileRequest {
                name: name.unwrap_or_default().to_owned(),
                reveal_secrets: reveal,
            })
            .await
            .map_err(self.err())?
            .into_inner();
        Ok(ProfileContents {
            name: r.name,
            active: r.active,
            entries: r
                .entries
                .into_iter()
                .map(|e| (e.name, e.value.into(), e.secret))
                .collect(),
        })
    }

    /// The daemon's status.
    ///
    /// # Errors
    /// An unreachable daemon.
    pub async fn status(&self) -> Result<Status, Error> {
        let r = self
            .inner
            .clone()
            .status(pb::StatusRequest {})
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// Reports that this client's instance (see [`Client::with_instance`])
    /// has applied `revision` of `epoch`. A daemon older than the `Ack`
    /// RPC answers UNIMPLEMENTED, which is returned as a refusal with
    /// [`crate::Code::Other`].
    ///
    /// # Errors
    /// An unreachable daemon; an instance name over the daemon's limits.
    pub async fn ack(&self, revision: u64, epoch: u64) -> Result<(), Error> {
        self.inner
            .clone()
            .ack(pb::AckRequest {
                service: self.service.clone(),
                instance: self.instance.clone(),
                revision,
                epoch,
            })
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Which hosts and services run which revision: every live daemon of
    /// the fleet with the etcd store, this daemon alone with the file store.
    ///
    /// # Errors
    /// An unreachable daemon.
    pub async fn fleet(&self) -> Result<Fleet, Error> {
        let r = self
            .inner
            .clone()
            .fleet(pb::FleetRequest {})
            .await
            .map_err(self.err())?;
        Ok(r.into_inner().into())
    }

    /// The daemon's catalogue.
    ///
    /// # Errors
    /// An unreachable daemon.
    pub async fn catalog(&self) -> Result<Vec<Entry>, Error> {
        let r = self
            .inner
            .clone()
            .catalog(pb::CatalogRequest {})
            .await
            .map_err(self.err())?
            .into_inner();
        Ok(r.entries.into_iter().map(types::entry).collect())
    }

    /// The daemon's catalogue as a [`Catalog`] (for local parsing).
    ///
    /// # Errors
    /// An unreachable daemon, or a catalogue this SDK cannot rebuild.
    pub async fn catalog_index(&self) -> Result<Catalog, Error> {
        let entries = self.catalog().await?;
        Catalog::from_entries(entries).map_err(|e| Error::Protocol(e.to_string()))
    }
}
