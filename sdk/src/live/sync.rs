//! The background task behind [`super::Settings`]: connect, watch, apply,
//! and on any failure reconnect with exponential backoff and full jitter,
//! resuming after the last revision seen (the daemon replays what was
//! missed, or sends a resync).
//!
//! It ends when the last `Settings` clone is dropped (the stop token is
//! cancelled and the weak reference no longer upgrades).

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::view::{LiveView, Origin};
use super::{Connection, Options, Shared};
use crate::client::{Client, Connect, WatchEvent};
use crate::error::{Code, Error};

pub(super) fn spawn(shared: Weak<Shared>, options: Options, stop: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = run(shared, options) => {}
        }
    });
}

async fn run(shared: Weak<Shared>, options: Options) {
    let mut backoff = options.backoff_min;
    let mut reveal = true;
    loop {
        match session(&shared, &options, reveal).await {
            Ok(()) => return,
            Err(e) => {
                let Some(s) = shared.upgrade() else { return };
                s.connection.send_replace(Connection::Disconnected);
                if matches!(
                    &e,
                    Error::Rejected {
                        code: Code::Unauthenticated,
                        ..
                    }
                ) && reveal
                {
                    tracing::warn!(
                        "cfgd requires a token to reveal secrets; watching with secrets masked"
                    );
                    reveal = false;
                    continue;
                }
                if s.view.load().revision().is_some() {
                    tracing::warn!(error = %e, "lost cfgd; keeping the last values and reconnecting");
                } else {
                    tracing::debug!(error = %e, "cfgd not reachable yet; using local values");
                }
                // A session that got connected resets the backoff.
                if *s.connection.borrow() == Connection::Connected {
                    backoff = options.backoff_min;
                }
            }
        }
        // Full jitter: anywhere in [0, backoff], so a fleet does not reconnect in step.
        let wait = Duration::from_secs_f64(rand::rng().random_range(0.0..=backoff.as_secs_f64()));
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(options.backoff_max);
    }
}

/// One connection: returns `Ok` only when the `Settings` are gone.
async fn session(shared: &Weak<Shared>, options: &Options, reveal: bool) -> Result<(), Error> {
    let connect = Connect {
        token: options.token.clone(),
        ca_cert: options.ca_cert.clone(),
    };
    let client = Client::connect_with(&options.endpoint, &connect).await?;
    let catalog = client.catalog_index().await?;
    let (after, epoch) = {
        let Some(s) = shared.upgrade() else {
            return Ok(());
        };
        // Resume only when the view holds the daemon's catalogue already;
        // otherwise start from a snapshot.
        let view = s.view.load();
        match view.origin() {
            Origin::Daemon { revision, epoch } if view.catalog().entries() == catalog.entries() => {
                (Some(revision), Some(epoch))
            }
            _ => (None, None),
        }
    };
    let mut stream = Box::pin(client.watch(after, epoch, &[], reveal).await?);
    let mut catalog = catalog;
    while let Some(event) = stream.next().await {
        let event = event?;
        let Some(s) = shared.upgrade() else {
            return Ok(());
        };
        let current = s.view.load_full();
        let next = match &event {
            WatchEvent::Resync { snapshot, .. } => LiveView::from_snapshot(
                catalog.clone(),
                snapshot,
                &options.env,
                options.use_process_env,
            ),
            WatchEvent::Change { change, epoch } => {
                if change.origin == crate::client::Origin::File
                    && change
                        .changes
                        .iter()
                        .any(|c| current.catalog().get(&c.name).is_none())
                {
                    // A setting this view does not know: the catalogue grew.
                    catalog = client.catalog_index().await?;
                    let snapshot = client.snapshot(&[], reveal).await?;
                    LiveView::from_snapshot(
                        catalog.clone(),
                        &snapshot,
                        &options.env,
                        options.use_process_env,
                    )
                } else {
                    current.apply(change, *epoch, &options.env, options.use_process_env)
                }
            }
        };
        s.publish(next);
        s.connection.send_if_modified(|c| {
            let was = *c;
            *c = Connection::Connected;
            was != Connection::Connected
        });
    }
    Err(Error::Unreachable {
        endpoint: options.endpoint.clone(),
        reason: "the watch stream ended".into(),
    })
}
