//! The background task behind [`super::Settings`]: one
//! [`Resuming`](crate::client::Resuming) watch of every setting, each event
//! turned into a new [`LiveView`] and published.
//!
//! On each connection it fetches the daemon's catalogue (a restart may
//! bring another `catalog.d`); a change naming a setting the view does not
//! know, or one that left the catalogue, fetches it again with a snapshot.
//! A view brought forward by such a snapshot skips the replayed events it
//! already covers.
//!
//! It ends when the last `Settings` clone is dropped: the stop token is
//! cancelled, and the weak reference no longer upgrades.

use std::sync::{Arc, Weak};

use cfgd_settings::Catalog;
use tokio_util::sync::CancellationToken;

use super::ack::Acker;
use super::view::{LiveView, Origin};
use super::{Connection, Options, Shared};
use crate::client::{Change, Client, Connect, Position, Resumed, Resuming, WatchEvent};
use crate::error::{Code, Error};

pub(super) fn spawn(shared: Weak<Shared>, options: Options, stop: CancellationToken) {
    let metrics = crate::metrics::Live::new(&options.service);
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = run(shared, options, metrics.clone()) => {}
            () = metrics.clock() => {}
        }
    });
}

/// What the task knows beside the published view.
struct Follower {
    client: Client,
    shared: Weak<Shared>,
    reveal: bool,
    /// The daemon's catalogue as of the last fetch.
    catalog: Option<Catalog>,
    /// Reports each applied revision to the daemon.
    acks: Acker,
    /// The live view's metrics.
    metrics: crate::metrics::Live,
}

/// The task is done: every `Settings` is gone.
struct Gone;

async fn run(shared: Weak<Shared>, options: Options, metrics: crate::metrics::Live) {
    let connect = Connect {
        token: options.token.clone(),
        ca_cert: options.ca_cert.clone(),
    };
    // A lazy channel dials on each call after a failure, so one client
    // serves every reconnection.
    let client = match Client::connect_lazy(&options.endpoint, &connect) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch cfgd; the settings stay local");
            return;
        }
    };
    // One instance per `Settings`: two in one process are two services'
    // views as far as the fleet is concerned.
    let instance = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let client = client.with_instance(&options.service, &instance);
    let mut watch = client.watch_resuming(&[], true, options.backoff);
    let mut follower = Follower {
        acks: Acker::spawn(client.clone()),
        client,
        shared,
        reveal: true,
        catalog: None,
        metrics,
    };
    while let Ok(()) = follower.step(&mut watch).await {}
}

impl Follower {
    fn shared(&self) -> Result<Arc<Shared>, Gone> {
        self.shared.upgrade().ok_or(Gone)
    }

    async fn step(&mut self, watch: &mut Resuming) -> Result<(), Gone> {
        let beside = match watch.next().await {
            Ok(Resumed::Opened { after }) => self.opened(after.is_some()).await,
            Ok(Resumed::Event(event)) => self.event(event).await,
            Ok(Resumed::Lost { error, .. }) => return self.lost(&error),
            Err(e) if self.reveal && is_unauthenticated(&e) => {
                tracing::warn!(
                    "cfgd requires a token to reveal secrets; watching with secrets masked"
                );
                self.reveal = false;
                watch.set_reveal(false);
                return Ok(());
            }
            Err(e) => return self.lost(&e),
        };
        let Err(e) = beside else { return Ok(()) };
        // A call beside the watch failed, so the event in hand may not be
        // in the view: the next stream resumes after what the view holds.
        let at = match self.shared()?.current().origin() {
            Origin::Daemon { revision, epoch } => Some(Position { revision, epoch }),
            Origin::Local => None,
        };
        watch.interrupt(at);
        self.lost(&e)
    }

    fn lost(&self, e: &Error) -> Result<(), Gone> {
        self.metrics.lost();
        let shared = self.shared()?;
        // Warned once per outage; each failed attempt after is a debug line.
        if shared.set_connection(Connection::Disconnected) {
            tracing::warn!(error = %e, "lost cfgd; keeping the last values and reconnecting");
        } else if shared.current().revision().is_some() {
            tracing::debug!(error = %e, "cfgd still not reachable; keeping the last values");
        } else {
            tracing::debug!(error = %e, "cfgd not reachable yet; using local values");
        }
        Ok(())
    }

    /// A stream is open. Resuming is only right under the same catalogue;
    /// under another the view starts over from a snapshot (the stream's
    /// replay of what it covers is skipped).
    async fn opened(&mut self, resumed: bool) -> Result<(), Error> {
        self.metrics.heard();
        let catalog = self.client.catalog_index().await?;
        self.catalog = Some(catalog.clone());
        if !resumed {
            // The stream starts with a resync: connected once it is applied.
            return Ok(());
        }
        let Ok(shared) = self.shared() else {
            return Ok(());
        };
        let current = shared.current();
        drop(shared);
        if catalog.entries() != current.catalog().entries() {
            let snapshot = self.client.snapshot(&[], self.reveal).await?;
            self.publish(current.resynced(catalog, &snapshot));
        }
        if let Ok(s) = self.shared() {
            s.set_connection(Connection::Connected);
            // A restarted daemon has forgotten what this service applied.
            self.ack(&s.current());
        }
        Ok(())
    }

    fn ack(&self, view: &LiveView) {
        if let Origin::Daemon { revision, epoch } = view.origin() {
            self.acks.applied(revision, epoch);
        }
    }

    async fn event(&mut self, event: WatchEvent) -> Result<(), Error> {
        self.metrics.heard();
        let Ok(shared) = self.shared() else {
            return Ok(());
        };
        let current = shared.current();
        drop(shared);
        let next = match &event {
            // A resync is the daemon's word on everything, even one that
            // goes back (its state was restored): never skipped.
            WatchEvent::Resync {
                snapshot, reason, ..
            } => {
                tracing::debug!(?reason, revision = snapshot.revision, "cfgd resynchronised");
                let catalog = self.daemon_catalog().await?;
                Some(current.resynced(catalog, snapshot))
            }
            WatchEvent::Change { change, epoch } if current.is_past(*epoch, change.revision) => {
                None
            }
            WatchEvent::Change { change, epoch } if catalogue_moved(&current, change) => {
                let catalog = self.client.catalog_index().await?;
                self.catalog = Some(catalog.clone());
                let snapshot = self.client.snapshot(&[], self.reveal).await?;
                Some(current.resynced(catalog, &snapshot))
            }
            WatchEvent::Change { change, epoch } => Some(current.apply(change, *epoch)),
        };
        if let Some(next) = next {
            self.publish(next);
        }
        if let Ok(s) = self.shared() {
            s.set_connection(Connection::Connected);
        }
        Ok(())
    }

    async fn daemon_catalog(&mut self) -> Result<Catalog, Error> {
        if let Some(c) = &self.catalog {
            return Ok(c.clone());
        }
        let c = self.client.catalog_index().await?;
        self.catalog = Some(c.clone());
        Ok(c)
    }

    fn publish(&self, view: LiveView) {
        if let Ok(s) = self.shared() {
            if let Some(revision) = view.revision() {
                self.metrics.view(revision);
            }
            self.ack(&view);
            s.publish(view);
        }
    }
}

/// Whether `change` names a setting `view`'s catalogue does not declare,
/// or one that left the daemon's catalogue: either way the catalogue moved.
fn catalogue_moved(view: &LiveView, change: &Change) -> bool {
    change
        .changes
        .iter()
        .any(|c| c.new_source.is_none() || view.catalog().get(&c.name).is_none())
}

fn is_unauthenticated(e: &Error) -> bool {
    matches!(
        e,
        Error::Rejected {
            code: Code::Unauthenticated,
            ..
        }
    )
}
