//! The store's health as a second gRPC health service name,
//! `cfgd.v1.SharedStore`: NOT_SERVING while shared writes are refused
//! (etcd unreachable), so a readiness probe can choose. The daemon's own
//! service stays SERVING then: reads, watches and hot reload go on.
//!
//! Ends when the shutdown token is cancelled.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::store::status::StoreState;

/// The health service name of the store.
pub(crate) const SHARED_STORE: &str = "cfgd.v1.SharedStore";

/// Keeps [`SHARED_STORE`]'s status in step with `state`.
pub(crate) fn spawn(
    reporter: HealthReporter,
    state: StoreState,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rx = state.subscribe();
        loop {
            let serving = if rx.borrow_and_update().degraded() {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            reporter.set_service_status(SHARED_STORE, serving).await;
            tokio::select! {
                () = stop.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    })
}
