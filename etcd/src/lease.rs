//! Leases and the lease keeper: grant a lease, keep it alive in the
//! background, report when it is lost, revoke it on shutdown.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{Client, Kind, Leader};
use crate::pb::lease_client::LeaseClient;
use crate::{Error, pb};

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its id (what `put_with_lease` takes).
    pub id: i64,
    /// The time to live etcd granted.
    pub ttl: Duration,
}

/// Why a kept lease is gone; the keys attached to it are deleted (or will
/// be within its TTL), so the caller registers again under a new lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseLost {
    /// etcd answered a keep-alive with TTL 0: the lease expired or was
    /// revoked.
    Expired {
        /// The lease.
        id: i64,
    },
    /// No keep-alive was confirmed for a whole TTL (no member reachable):
    /// the lease has expired unless a leader change extended it.
    Unconfirmed {
        /// The lease.
        id: i64,
        /// What the last try answered.
        last_error: String,
    },
}

/// Keeps a lease alive in the background (a keep-alive every TTL/3 on the
/// client's current member, moving on when one fails). Dropping it stops
/// the keep-alives without revoking: the lease then expires after its TTL.
#[derive(Debug)]
pub struct LeaseKeeper {
    lease: Lease,
    client: Client,
    lost: watch::Receiver<Option<LeaseLost>>,
    stop: Option<oneshot::Sender<()>>,
}

impl LeaseKeeper {
    /// The lease kept alive.
    pub fn lease(&self) -> Lease {
        self.lease
    }

    /// Waits until the lease is lost.
    pub async fn lost(&mut self) -> LeaseLost {
        match self.lost.wait_for(Option::is_some).await {
            Ok(lost) => lost
                .clone()
                .unwrap_or(LeaseLost::Expired { id: self.lease.id }),
            // The task ended without a word: only when stopped, which takes
            // `self`; answer as etcd would.
            Err(_) => LeaseLost::Expired { id: self.lease.id },
        }
    }

    /// The loss, if the lease is already lost.
    pub fn is_lost(&self) -> Option<LeaseLost> {
        self.lost.borrow().clone()
    }

    /// Stops the keep-alives and revokes the lease (its keys go at once).
    ///
    /// # Errors
    /// As [`Client::revoke`].
    pub async fn revoke(mut self) -> Result<(), Error> {
        self.stop.take();
        self.client.revoke(self.lease.id).await
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Client {
    /// Grants a lease of `ttl` (whole seconds, at least 1).
    ///
    /// Sent again on another member when a try fails: a grant whose answer
    /// was lost leaves a lease nobody keeps alive, which expires by itself.
    ///
    /// # Errors
    /// [`Error::Unreachable`]; [`Error::Rejected`] when etcd refuses the TTL.
    pub async fn grant(&self, ttl: Duration) -> Result<Lease, Error> {
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let req = pb::LeaseGrantRequest { ttl: secs, id: 0 };
        let answer = self
            .unary(
                "lease grant",
                Kind::Idempotent,
                Leader::Required,
                req,
                |ch, r| async move { LeaseClient::new(ch).lease_grant(r).await },
            )
            .await?;
        Ok(Lease {
            id: answer.id,
            ttl: Duration::from_secs(u64::try_from(answer.ttl).unwrap_or(1)),
        })
    }

    /// Revokes lease `id` and deletes its keys. A lease that is already
    /// gone counts as revoked, so a revoke whose answer was lost is sent
    /// again safely.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Rejected`].
    pub async fn revoke(&self, id: i64) -> Result<(), Error> {
        let req = pb::LeaseRevokeRequest { id };
        let result = self
            .unary(
                "lease revoke",
                Kind::Idempotent,
                Leader::Required,
                req,
                |ch, r| async move { LeaseClient::new(ch).lease_revoke(r).await },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(Error::Rejected {
                code: tonic::Code::NotFound,
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Keeps `lease` alive until the keeper is dropped or revoked, or the
    /// lease is lost.
    pub fn keep_alive(&self, lease: Lease) -> LeaseKeeper {
        let (lost_tx, lost) = watch::channel(None);
        let (stop, stopped) = oneshot::channel();
        let task = Keeper {
            client: self.clone(),
            lease,
            lost: lost_tx,
        };
        // Ends when the keeper is dropped or revoked (`stop` sent or
        // dropped), or when the lease is lost (reported first).
        tokio::spawn(async move {
            tokio::select! {
                _ = stopped => {}
                () = task.run() => {}
            }
        });
        LeaseKeeper {
            lease,
            client: self.clone(),
            lost,
            stop: Some(stop),
        }
    }
}

struct Keeper {
    client: Client,
    lease: Lease,
    lost: watch::Sender<Option<LeaseLost>>,
}

impl Keeper {
    fn interval(&self) -> Duration {
        (self.lease.ttl / 3).max(Duration::from_millis(100))
    }

    async fn run(self) {
        let mut confirmed = Instant::now();
        loop {
            let i = self.client.current();
            let why = match self.stream(i, &mut confirmed).await {
                Ok(lost) => {
                    let _ = self.lost.send(Some(lost));
                    return;
                }
                Err(why) => why,
            };
            tracing::warn!(lease = self.lease.id, member = %self.client.endpoints()[i], "lease keep-alive moves to the next member: {why}");
            if confirmed.elapsed() >= self.lease.ttl {
                let _ = self.lost.send(Some(LeaseLost::Unconfirmed {
                    id: self.lease.id,
                    last_error: why,
                }));
                return;
            }
            self.client.rotate(i);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Keep-alives on one stream to member `i`: `Ok` when the lease is
    /// lost, `Err` with the reason when the stream must be left.
    async fn stream(&self, i: usize, confirmed: &mut Instant) -> Result<LeaseLost, String> {
        let try_timeout = self.client.config().try_timeout;
        let token = match tokio::time::timeout(try_timeout, self.client.token(i)).await {
            Ok(Ok(t)) => t,
            Ok(Err(status)) => {
                self.client.drop_token(None).await;
                return Err(format!("no auth token: {}", status.message()));
            }
            Err(_) => return Err("no auth token in time".into()),
        };
        let (requests, outbound) = mpsc::channel(2);
        let req = self.client.request(
            ReceiverStream::new(outbound),
            Leader::Required,
            token.as_deref(),
        );
        let ask = pb::LeaseKeepAliveRequest { id: self.lease.id };
        requests
            .send(ask)
            .await
            .map_err(|_| "stream closed".to_owned())?;
        let channel = self.client.members()[i].channel.clone();
        let mut stream = match tokio::time::timeout(
            try_timeout,
            LeaseClient::new(channel).lease_keep_alive(req),
        )
        .await
        {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => {
                if status.message() == "etcdserver: invalid auth token" {
                    self.client.drop_token(token.as_deref()).await;
                }
                return Err(format!("{:?}: {}", status.code(), status.message()));
            }
            Err(_) => return Err(format!("no answer within {} ms", try_timeout.as_millis())),
        };
        loop {
            match tokio::time::timeout(try_timeout, stream.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl <= 0 => {
                    return Ok(LeaseLost::Expired { id: self.lease.id });
                }
                Ok(Ok(Some(_))) => *confirmed = Instant::now(),
                Ok(Ok(None)) => return Err("etcd ended the keep-alive stream".into()),
                Ok(Err(status)) => {
                    return Err(format!("{:?}: {}", status.code(), status.message()));
                }
                Err(_) => {
                    return Err(format!(
                        "no keep-alive answer within {} ms",
                        try_timeout.as_millis()
                    ));
                }
            }
            tokio::time::sleep(self.interval()).await;
            requests
                .send(ask)
                .await
                .map_err(|_| "stream closed".to_owned())?;
        }
    }
}
