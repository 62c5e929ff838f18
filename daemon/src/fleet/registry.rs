//! This daemon's entry in the fleet registry: `<root>/fleet/v1/hosts/<host>`
//! under a lease of its own (scale-out.md §9), so that it vanishes about one
//! TTL after the daemon does.
//!
//! The entry is rewritten when what it says changes (the revision applied,
//! a service's ack, the store's state), at most once per report interval,
//! so a fleet of N hosts costs at most N puts per change, whatever number
//! of services ack. A lost lease is granted again and the entry rewritten.
//! On shutdown the lease is revoked, so the host leaves the fleet at once.
//!
//! Ends when the shutdown token is cancelled (after the revoke).

use std::sync::Arc;
use std::time::Duration;

use cfgd_etcd::Client;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Fleet;
use crate::store::etcd::keys::Keys;
use crate::writer::now_ms;

/// How often the entry is compared with the daemon's state.
const TICK: Duration = Duration::from_millis(100);
/// Longest the revoke may take at shutdown.
const REVOKE_WITHIN: Duration = Duration::from_secs(1);

/// Starts keeping the entry.
pub(crate) fn spawn(
    fleet: Arc<Fleet>,
    client: Client,
    keys: &Keys,
    ttl: Duration,
    interval: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let key = keys.host(&fleet.host);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let lease = tokio::select! {
                () = stop.cancelled() => return,
                l = client.grant(ttl) => l,
            };
            let lease = match lease {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot join the fleet registry yet (no lease)");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let mut keeper = client.keep_alive(lease);
            let mut written: Option<String> = None;
            let mut last_put: Option<Instant> = None;
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => {
                        match tokio::time::timeout(REVOKE_WITHIN, keeper.revoke()).await {
                            Ok(Ok(())) => tracing::debug!("left the fleet registry"),
                            _ => tracing::warn!("could not leave the fleet registry; the entry goes with its lease"),
                        }
                        return;
                    }
                    lost = keeper.lost() => {
                        tracing::warn!(?lost, "the fleet registry's lease is lost; joining again");
                        break;
                    }
                    _ = tick.tick() => {}
                }
                if last_put.is_some_and(|t| t.elapsed() < interval) {
                    continue;
                }
                let mut entry = fleet.entry(0);
                let unchanged = serde_json::to_string(&entry).ok();
                if unchanged.is_some() && unchanged == written {
                    continue;
                }
                entry.reported_ms = now_ms();
                let value = serde_json::to_vec(&entry).expect("fleet entries serialize");
                last_put = Some(Instant::now());
                match client.put_with_lease(key.clone(), value, lease.id).await {
                    Ok(_) => {
                        written = unchanged;
                        fleet.state.reachable(now_ms());
                    }
                    Err(e) if e.rejected_code() == Some(tonic::Code::NotFound) => {
                        tracing::warn!(error = %e, "the fleet registry's lease is gone; joining again");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot write this daemon's fleet entry yet")
                    }
                }
            }
        }
    })
}
