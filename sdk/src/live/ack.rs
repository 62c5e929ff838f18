//! Reporting the applied revision to the daemon (`Ack`), so that `cfg
//! fleet` and `cfg set --wait` know which services run which revision.
//!
//! The background watch hands each revision it publishes (and, after a
//! reconnection, the one it holds) to [`Acker::applied`]; a task sends the
//! newest one, at most once per [`MIN_INTERVAL`]. A daemon without the RPC
//! (older than this SDK) answers UNIMPLEMENTED: acking then stops, and
//! everything else works as before.
//!
//! The task ends when the [`Acker`] is dropped (its sender closes).

use std::time::Duration;

use tokio::sync::watch;

use crate::client::Client;
use crate::error::{Code, Error};

/// Least time between two acks.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Hands applied revisions to the ack task.
#[derive(Debug)]
pub(super) struct Acker {
    tx: watch::Sender<Option<(u64, u64)>>,
}

impl Acker {
    /// Starts acking through `client` (whose instance is set).
    pub(super) fn spawn(client: Client) -> Self {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(run(client, rx));
        Self { tx }
    }

    /// The service has applied `revision` of `epoch` (sent again even when
    /// it is the last one sent: a restarted daemon has forgotten it).
    pub(super) fn applied(&self, revision: u64, epoch: u64) {
        self.tx.send_replace(Some((revision, epoch)));
    }
}

async fn run(client: Client, mut rx: watch::Receiver<Option<(u64, u64)>>) {
    while rx.changed().await.is_ok() {
        let Some((revision, epoch)) = *rx.borrow_and_update() else {
            continue;
        };
        match client.ack(revision, epoch).await {
            Ok(()) => {}
            Err(Error::Rejected {
                code: Code::Other, ..
            }) => {
                tracing::debug!(
                    "cfgd does not take acks (an older daemon); not reporting the applied revision"
                );
                return;
            }
            // The watch reconnects and acks again then.
            Err(e) => tracing::debug!(error = %e, "cannot report the applied revision to cfgd"),
        }
        tokio::time::sleep(MIN_INTERVAL).await;
    }
}
