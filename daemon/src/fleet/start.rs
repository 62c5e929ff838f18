//! Opening the store `--store` names, and starting the fleet's tasks once
//! the daemon's state is recovered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cfgd_etcd::{Client, Credentials, Tls};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Fleet, follow, registry};
use crate::DaemonError;
use crate::hub::Hub;
use crate::store::etcd::keys::Keys;
use crate::store::etcd::{EtcdConfig, EtcdStore, StoreConfig};
use crate::store::status::StoreState;
use crate::store::{FileStore, Numbering, Store};
use crate::writer::{WriterHandle, now_ms};

/// What the fleet needs of the store.
pub(crate) struct Opened {
    /// How its revisions are numbered.
    pub(crate) numbering: Numbering,
    /// Its state, for status and health.
    pub(crate) state: StoreState,
    /// With the etcd store: its client, keys and configuration.
    pub(crate) etcd: Option<(Client, Keys, EtcdConfig)>,
}

/// Opens the store of `store` over the local log `local`: the store (for
/// the writer) and what the fleet needs of it.
///
/// # Errors
/// TLS or password files that cannot be read, or endpoints etcd's client
/// cannot use.
pub(crate) fn open(
    store: &StoreConfig,
    local: FileStore,
) -> Result<(Box<dyn Store>, Opened), DaemonError> {
    let StoreConfig::Etcd(config) = store else {
        let opened = Opened {
            numbering: Numbering::Dense,
            state: StoreState::file(),
            etcd: None,
        };
        return Ok((Box::new(local), opened));
    };
    let client =
        Client::new(client_config(config)?).map_err(|e| DaemonError::Etcd(e.to_string()))?;
    let state = StoreState::etcd(config.endpoints.clone(), config.host.clone(), now_ms());
    let local = local.with_numbering(Numbering::Fleet);
    let store = EtcdStore::new(
        local,
        client.clone(),
        config,
        state.clone(),
        tokio::runtime::Handle::current(),
    );
    let opened = Opened {
        numbering: Numbering::Fleet,
        state,
        etcd: Some((client, Keys::new(&config.prefix), (**config).clone())),
    };
    Ok((Box::new(store), opened))
}

fn client_config(c: &EtcdConfig) -> Result<cfgd_etcd::Config, DaemonError> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            DaemonError::Etcd(format!(
                "cannot read the etcd {what} {}: {e}",
                path.display()
            ))
        })
    };
    let mut config = cfgd_etcd::Config::new(c.endpoints.clone()).deadline(c.deadline);
    if let Some(ca) = &c.ca {
        let mut tls = Tls::new(read(ca, "CA certificate")?);
        if let Some((cert, key)) = &c.identity {
            tls = tls.identity(read(cert, "client certificate")?, read(key, "client key")?);
        }
        config = config.tls(tls);
    } else if c.identity.is_some() {
        return Err(DaemonError::Etcd(
            "an etcd client certificate needs the CA that signed the members' certificates (--etcd-ca)".into(),
        ));
    }
    if let Some((user, file)) = &c.user {
        let password = String::from_utf8(read(file, "password file")?).map_err(|_| {
            DaemonError::Etcd(format!(
                "the etcd password file {} is not UTF-8",
                file.display()
            ))
        })?;
        let password = password.trim();
        if password.is_empty() {
            return Err(DaemonError::Etcd(format!(
                "the etcd password file {} is empty",
                file.display()
            )));
        }
        config = config.credentials(Credentials::new(user.clone(), password));
    }
    Ok(config)
}

/// The fleet's running tasks.
#[derive(Debug)]
pub(crate) struct Tasks {
    follow: Option<JoinHandle<()>>,
    registry: Option<JoinHandle<()>>,
}

impl Tasks {
    /// Waits for the tasks to end (after the shutdown token), at most
    /// `grace`.
    pub(crate) async fn join(self, grace: Duration) {
        for task in [self.follow, self.registry].into_iter().flatten() {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("a fleet task did not stop within the shutdown deadline");
            }
        }
    }
}

/// Starts following the shared store and registering in the fleet (etcd
/// store), then waits up to one etcd deadline for the first read of the
/// shared state, so that a daemon that can reach etcd serves the fleet's
/// state from its first request; without etcd it serves its last state,
/// degraded.
pub(crate) async fn start(
    opened: &Opened,
    fleet: &Arc<Fleet>,
    hub: &Arc<Hub>,
    writer: &WriterHandle,
    state_dir: &Path,
    stop: &CancellationToken,
) -> Tasks {
    let Some((client, keys, config)) = &opened.etcd else {
        return Tasks {
            follow: None,
            registry: None,
        };
    };
    let follow = follow::spawn(
        follow::Follow {
            client: client.clone(),
            keys: keys.clone(),
            hub: hub.clone(),
            writer: writer.clone(),
            state: opened.state.clone(),
            state_dir: state_dir.to_owned(),
        },
        stop.clone(),
    );
    let registry = registry::spawn(
        fleet.clone(),
        client.clone(),
        keys,
        config.lease_ttl,
        config.report_interval,
        stop.clone(),
    );
    let mut state = opened.state.subscribe();
    let in_step = tokio::time::timeout(config.deadline, state.wait_for(|s| s.in_step)).await;
    if in_step.is_err() {
        let why = opened.state.get().error.unwrap_or_default();
        tracing::warn!(error = %why, "serving without the shared store for now (degraded): reads and watches go on from the last shared state; shared writes are refused until etcd answers");
    }
    Tasks {
        follow: Some(follow),
        registry: Some(registry),
    }
}
