//! The SDK's types for the fleet (`Client::fleet`) and the store's state
//! in `Status`.

use cfgd_proto::pb;

/// Which hosts and services run which revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Every live host (daemon), sorted by id.
    pub hosts: Vec<FleetHost>,
    /// Whether the hosts share their profile layer (the etcd store).
    pub shared: bool,
    /// The newest shared revision (a wire revision); the daemon's own
    /// revision with the file store.
    pub head_revision: u64,
    /// Why the fleet could not be read (then only the daemon asked is
    /// listed).
    pub error: Option<String>,
}

/// One daemon of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetHost {
    /// Its `--host-id` (empty with the file store).
    pub host: String,
    /// Where it listens.
    pub listen: String,
    /// Its version.
    pub version: String,
    /// Its epoch.
    pub epoch: u64,
    /// The revision it has applied.
    pub revision: u64,
    /// The shared revision `S` it has applied.
    pub shared_revision: u64,
    /// Since when (ms since the Unix epoch) its store is degraded.
    pub degraded_since_ms: Option<i64>,
    /// Problems with its profile layer (shared values it refuses).
    pub problems: Vec<String>,
    /// Its services.
    pub services: Vec<FleetService>,
    /// When it last reported.
    pub reported_ms: i64,
    /// Whether it is the daemon that answered.
    pub this_daemon: bool,
}

/// One service instance and what it applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetService {
    /// The service's name.
    pub service: String,
    /// The instance.
    pub instance: String,
    /// The revision it applied (0: not yet).
    pub revision: u64,
    /// The epoch of `revision`.
    pub epoch: u64,
    /// When it last acked (ms since the Unix epoch; 0: never).
    pub acked_ms: i64,
    /// Whether it is connected to its daemon.
    pub connected: bool,
}

/// Where the daemon keeps the profile layer, and how that store is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// `file` or `etcd` (empty: a daemon older than this SDK).
    pub kind: String,
    /// The etcd members.
    pub endpoints: Vec<String>,
    /// Since when (ms since the Unix epoch) shared writes are refused.
    pub degraded_since_ms: Option<i64>,
    /// Why.
    pub error: Option<String>,
    /// When a member last answered.
    pub last_contact_ms: Option<i64>,
    /// The shared revision `S` applied.
    pub shared_revision: u64,
    /// The newest shared revision seen.
    pub head_revision: u64,
    /// The daemon's id in the fleet.
    pub host: String,
}

fn non_zero(ms: i64) -> Option<i64> {
    (ms != 0).then_some(ms)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<pb::StoreStatus> for StoreStatus {
    fn from(s: pb::StoreStatus) -> Self {
        StoreStatus {
            kind: s.kind,
            endpoints: s.endpoints,
            degraded_since_ms: non_zero(s.degraded_since_unix_ms),
            error: non_empty(s.error),
            last_contact_ms: non_zero(s.last_contact_unix_ms),
            shared_revision: s.shared_revision,
            head_revision: s.head_revision,
            host: s.host,
        }
    }
}

impl From<pb::FleetResponse> for Fleet {
    fn from(f: pb::FleetResponse) -> Self {
        Fleet {
            hosts: f
                .hosts
                .into_iter()
                .map(|h| FleetHost {
                    host: h.host,
                    listen: h.listen,
                    version: h.version,
                    epoch: h.epoch,
                    revision: h.revision,
                    shared_revision: h.shared_revision,
                    degraded_since_ms: non_zero(h.degraded_since_unix_ms),
                    problems: h.problems,
                    services: h
                        .services
                        .into_iter()
                        .map(|s| FleetService {
                            service: s.service,
                            instance: s.instance,
                            revision: s.revision,
                            epoch: s.epoch,
                            acked_ms: s.acked_unix_ms,
                            connected: s.connected,
                        })
                        .collect(),
                    reported_ms: h.reported_unix_ms,
                    this_daemon: h.this_daemon,
                })
                .collect(),
            shared: f.shared,
            head_revision: f.head_revision,
            error: non_empty(f.error),
        }
    }
}
