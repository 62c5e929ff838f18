//! The failover adapter: one channel per member, a sticky current member,
//! and the one loop every call goes through.
//!
//! A call goes to the current member. When that member cannot take it (no
//! connection, `no leader`, or no answer within the per-try timeout) the
//! client moves the current member on to the next and tries there, round
//! and round until the call's deadline. A mutating call that may have left
//! is the exception: it is never sent again (a put retried on another
//! member was applied twice in the measurements of scale-out.md §6.4), the
//! caller gets [`Error::OutcomeUnknown`] instead.
//!
//! Why not tonic's balanced channel: its p2c balancer treats a reconnecting
//! endpoint as ready and kept sending a quarter to a third of all calls to a
//! dead member (scale-out.md §2.2).
//!
//! Every call but a serializable read and `Status` carries `hasleader=true`
//! (what etcd-client's `with_require_leader` sets): a member that has lost
//! its leader then refuses it at once, before proposing anything, instead
//! of holding it until etcd's own 5 s timeout.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Response, Status};

use crate::classify::{Failure, classify};
use crate::config::{Config, Credentials};
use crate::error::{Attempt, Error};
use crate::member::Member;
use crate::pb;

/// A pause between two rounds of a call over every member, so a cluster
/// without quorum is not hammered until the deadline.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// Whether a call changes the store: one that does must not be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A read, a status, a lease grant or keep-alive: safe to send again.
    Idempotent,
    /// A put, delete, txn, compaction or revoke.
    Mutating,
}

/// Whether the call carries `hasleader=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leader {
    Required,
    NotRequired,
}

/// A client of one etcd cluster; cheap to clone (clones share the members'
/// connections and the current member).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    members: Vec<Member>,
    current: AtomicUsize,
    config: Config,
    auth: Option<Auth>,
    unreachable_since: Mutex<Option<SystemTime>>,
}

struct Auth {
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.credentials.user)
            .finish()
    }
}

impl Client {
    /// A client of the members in `config`. Connects lazily: a member is
    /// connected to when a call first needs it, so this succeeds while the
    /// cluster is down.
    ///
    /// # Errors
    /// [`Error::Config`] for an endpoint that is not a URL or TLS material
    /// that cannot be used.
    pub fn new(config: Config) -> Result<Self, Error> {
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let mut tls =
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&t.ca_pem));
                if let Some((cert, key)) = &t.identity {
                    tls = tls.identity(Identity::from_pem(cert, key));
                }
                if let Some(d) = &t.domain {
                    tls = tls.domain_name(d.clone());
                }
                Some(tls)
            }
        };
        let members = config
            .urls()?
            .into_iter()
            .map(|url| {
                let mut endpoint = Endpoint::from_shared(url.clone())
                    .map_err(|e| Error::Config(format!("endpoint {url:?}: {e}")))?
                    .connect_timeout(config.connect_timeout);
                if let Some(tls) = &tls {
                    endpoint = endpoint
                        .tls_config(tls.clone())
                        .map_err(|e| Error::Config(format!("TLS for {url}: {e}")))?;
                }
                Ok(Member::new(url, &endpoint))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let auth = config.credentials.clone().map(|credentials| Auth {
            credentials,
            token: tokio::sync::Mutex::new(None),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                members,
                current: AtomicUsize::new(0),
                config,
                auth,
                unreachable_since: Mutex::new(None),
            }),
        })
    }

    /// The members' endpoints, as URLs, in the configured order.
    pub fn endpoints(&self) -> Vec<&str> {
        self.inner.members.iter().map(|m| m.url.as_str()).collect()
    }

    /// The member calls go to now.
    pub fn current_endpoint(&self) -> &str {
        &self.inner.members[self.current()].url
    }

    /// Since when no member has answered, when the last call found the
    /// cluster unreachable; `None` once a call succeeds again.
    pub fn unreachable_since(&self) -> Option<SystemTime> {
        *self
            .inner
            .unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.inner.members
    }

    pub(crate) fn current(&self) -> usize {
        self.inner.current.load(Ordering::Acquire)
    }

    /// Moves the current member on from `from` (unless another call already
    /// did): concurrent failures on one member move it once, not once each.
    pub(crate) fn rotate(&self, from: usize) -> usize {
        let next = (from + 1) % self.inner.members.len();
        match self
            .inner
            .current
            .compare_exchange(from, next, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => next,
            Err(now) => now,
        }
    }

    pub(crate) fn note_ok(&self) {
        *self
            .inner
            .unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Records that the cluster is unreachable (from `since`, unless it
    /// already was) and returns since when.
    pub(crate) fn note_unreachable(&self, since: SystemTime) -> SystemTime {
        *self
            .inner
            .unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(since)
    }

    /// `msg` as a request with this client's metadata: `hasleader` and the
    /// auth token.
    pub(crate) fn request<M>(&self, msg: M, leader: Leader, token: Option<&str>) -> Request<M> {
        let mut req = Request::new(msg);
        if leader == Leader::Required {
            req.metadata_mut()
                .insert("hasleader", MetadataValue::from_static("true"));
        }
        if let Some(t) = token.and_then(|t| MetadataValue::try_from(t).ok()) {
            req.metadata_mut().insert("token", t);
        }
        req
    }

    /// The auth token to send to member `i`: the one held, or a new one
    /// from `Authenticate` on that member. `None` without credentials.
    pub(crate) async fn token(&self, i: usize) -> Result<Option<String>, Status> {
        let Some(auth) = &self.inner.auth else {
            return Ok(None);
        };
        let mut token = auth.token.lock().await;
        if let Some(t) = &*token {
            return Ok(Some(t.clone()));
        }
        let req = self.request(
            pb::AuthenticateRequest {
                name: auth.credentials.user.clone(),
                password: auth.credentials.password.clone(),
            },
            Leader::Required,
            None,
        );
        let answer = pb::auth_client::AuthClient::new(self.inner.members[i].channel.clone())
            .authenticate(req)
            .await?;
        let t = answer.into_inner().token;
        *token = Some(t.clone());
        Ok(Some(t))
    }

    /// Forgets `used` (unless a newer token already replaced it).
    pub(crate) async fn drop_token(&self, used: Option<&str>) {
        if let Some(auth) = &self.inner.auth {
            let mut token = auth.token.lock().await;
            if token.as_deref() == used {
                *token = None;
            }
        }
    }

    /// Sends `msg` through `call`, failing over between members as the
    /// module docs say, until the configured deadline.
    pub(crate) async fn unary<M, R, F, Fut>(
        &self,
        op: &'static str,
        kind: Kind,
        leader: Leader,
        msg: M,
        call: F,
    ) -> Result<R, Error>
    where
        M: Clone,
        F: Fn(Channel, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let config = &self.inner.config;
        let started = Instant::now();
        let started_at = SystemTime::now();
        let deadline = started + config.deadline;
        let n = self.inner.members.len();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut token_renewals = 0;
        let mut tries_this_round = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let since = self.note_unreachable(started_at);
                return Err(Error::Unreachable {
                    op,
                    attempts,
                    since,
                });
            }
            let i = self.current();
            let member = &self.inner.members[i];
            let per_try = config.try_timeout.min(remaining);
            let t0 = Instant::now();
            // Set once the call itself (not the token fetch before it) is
            // handed to the transport: a timeout before that sent nothing.
            let sent = AtomicBool::new(false);
            let used_token = std::sync::Mutex::new(None::<String>);
            let attempt = async {
                let token = self.token(i).await?;
                used_token
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone_from(&token);
                sent.store(true, Ordering::Release);
                call(
                    member.channel.clone(),
                    self.request(msg.clone(), leader, token.as_deref()),
                )
                .await
            };
            let outcome = if member.closed_by_peer() {
                None
            } else {
                Some(tokio::time::timeout(per_try, attempt).await)
            };
            let failure = match outcome {
                None => Failure::NotSent(
                    "the member had closed the connection; nothing was sent".into(),
                ),
                Some(outcome) => match outcome {
                    Ok(Ok(answer)) => {
                        self.note_ok();
                        return Ok(answer.into_inner());
                    }
                    Ok(Err(status)) => classify(&status),
                    Err(_) if sent.load(Ordering::Acquire) => Failure::MaybeApplied(format!(
                        "no answer within {} ms",
                        per_try.as_millis()
                    )),
                    Err(_) => {
                        Failure::NotSent(format!("no auth token within {} ms", per_try.as_millis()))
                    }
                },
            };
            let answer = match &failure {
                Failure::NotSent(a) | Failure::MaybeApplied(a) | Failure::StaleToken(a) => {
                    a.clone()
                }
                Failure::Answered(code, message) => format!("{code:?}: {message}"),
            };
            tracing::debug!(op, member = %member.url, %answer, "etcd try failed");
            attempts.push(Attempt {
                member: member.url.clone(),
                answer: answer.clone(),
                took: t0.elapsed(),
            });
            match failure {
                Failure::NotSent(_) => {}
                Failure::MaybeApplied(cause) if kind == Kind::Mutating => {
                    // Not sent again, but the next call goes elsewhere: this
                    // member just failed to answer.
                    self.rotate(i);
                    return Err(Error::OutcomeUnknown {
                        op,
                        member: member.url.clone(),
                        cause,
                        attempts,
                    });
                }
                Failure::MaybeApplied(_) => {}
                Failure::StaleToken(message) => {
                    let used = used_token.lock().unwrap_or_else(|e| e.into_inner()).take();
                    self.drop_token(used.as_deref()).await;
                    token_renewals += 1;
                    if token_renewals <= 2 {
                        continue;
                    }
                    return Err(Error::Rejected {
                        op,
                        member: member.url.clone(),
                        code: tonic::Code::Unauthenticated,
                        message,
                    });
                }
                Failure::Answered(code, message) => {
                    self.note_ok();
                    return Err(Error::Rejected {
                        op,
                        member: member.url.clone(),
                        code,
                        message,
                    });
                }
            }
            self.rotate(i);
            tries_this_round += 1;
            if tries_this_round == n {
                tries_this_round = 0;
                let pause = ROUND_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
            }
        }
    }
}
