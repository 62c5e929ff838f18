//! `Ack` and `Fleet`: what services report, and the fleet's answer.

use cfgd_proto::pb;

use crate::fleet::{FleetView, HostEntry, Instance};
use crate::store::shared_seq;
use crate::store::status::StoreStatus;

/// `Fleet`'s answer.
pub(super) fn fleet(view: FleetView) -> pb::FleetResponse {
    pb::FleetResponse {
        hosts: view.hosts.into_iter().map(|(h, me)| host(h, me)).collect(),
        shared: view.shared,
        head_revision: view.head,
        error: view.error.unwrap_or_default(),
    }
}

fn host(h: HostEntry, this_daemon: bool) -> pb::FleetHost {
    pb::FleetHost {
        shared_revision: shared_seq(h.revision),
        host: h.host,
        listen: h.listen,
        version: h.version,
        epoch: h.epoch,
        revision: h.revision,
        degraded_since_unix_ms: h.degraded_since_ms.unwrap_or(0),
        problems: h.problems,
        services: h.services.into_iter().map(service).collect(),
        reported_unix_ms: h.reported_ms,
        this_daemon,
    }
}

fn service(s: Instance) -> pb::FleetService {
    pb::FleetService {
        service: s.service,
        instance: s.instance,
        revision: s.revision,
        epoch: s.epoch,
        acked_unix_ms: s.acked_ms,
        connected: s.connected,
    }
}

/// The store's part of `Status`.
pub(super) fn store(s: StoreStatus) -> pb::StoreStatus {
    let state = if s.degraded() { "degraded" } else { "ok" }.to_owned();
    pb::StoreStatus {
        kind: s.kind.to_owned(),
        endpoints: s.endpoints,
        state,
        degraded_since_unix_ms: s.degraded_since_ms.unwrap_or(0),
        error: s.error.unwrap_or_default(),
        last_contact_unix_ms: s.last_contact_ms.unwrap_or(0),
        shared_revision: s.applied,
        head_revision: s.head,
        host: s.host,
    }
}
