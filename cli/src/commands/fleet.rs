//! `cfg fleet` (which hosts and services run which revision) and the wait
//! behind `cfg set --wait`: until every live host and each of its connected
//! services has applied a revision, or a timeout.
//!
//! A shared change has the same revision `S·2²⁴` on every host (later local
//! changes only add to it), so "applied" is `revision ≥ R` everywhere; with
//! the file store the fleet is the one daemon and its services.

use std::time::{Duration, Instant};

use cfgd_sdk::Client;
use cfgd_sdk::client::{Fleet, FleetHost};
use serde_json::json;

use super::Ctx;
use crate::error::Failure;
use crate::output::{epoch_json, utc};

/// How often `--wait` asks the daemon again.
const POLL: Duration = Duration::from_millis(100);

/// `cfg fleet`.
pub(crate) async fn fleet(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let client = ctx.connect().await?;
    let fleet = client.fleet().await?;
    if ctx.json() {
        ctx.out.json(&fleet_json(&fleet));
        return Ok(());
    }
    let out = ctx.out;
    if let Some(e) = &fleet.error {
        out.warn(&format!("{e}; only this daemon is listed."));
    }
    let head = revision(fleet.head_revision, fleet.shared);
    out.line(&if fleet.shared {
        format!(
            "{} host(s) share the profile layer; newest shared revision {head}.",
            fleet.hosts.len()
        )
    } else {
        format!("One daemon (file store), at revision {head}.")
    });
    for h in &fleet.hosts {
        let name = if h.host.is_empty() {
            "this daemon"
        } else {
            &h.host
        };
        let me = if h.this_daemon { " (answered)" } else { "" };
        let behind = if h.revision < fleet.head_revision {
            " BEHIND"
        } else {
            ""
        };
        out.line(&format!(
            "{name}{me} at {}: revision {}{behind}, cfgd {}",
            h.listen,
            revision(h.revision, fleet.shared),
            h.version
        ));
        if let Some(since) = h.degraded_since_ms {
            out.line(&format!(
                "  DEGRADED since {}: shared writes refused there",
                utc(since)
            ));
        }
        for p in &h.problems {
            out.line(&format!("  not applied there: {p}"));
        }
        if h.services.is_empty() {
            out.line("  no service has reported");
        }
        for s in &h.services {
            let state = match (s.connected, s.revision) {
                (false, _) => "disconnected".to_owned(),
                (true, 0) => "connected, has not reported yet".to_owned(),
                (true, r) if s.epoch != h.epoch => {
                    format!("revision {} of another epoch", revision(r, fleet.shared))
                }
                (true, r) => format!("revision {}", revision(r, fleet.shared)),
            };
            out.line(&format!("  {} {}: {state}", s.service, s.instance));
        }
    }
    Ok(())
}

/// A revision as people read it: `S.L` for a fleet's (`57`, `57.2`), the
/// number with the file store.
fn revision(r: u64, shared: bool) -> String {
    if !shared {
        return r.to_string();
    }
    let (s, l) = (r >> 24, r & 0xff_ffff);
    if l == 0 {
        s.to_string()
    } else {
        format!("{s}.{l}")
    }
}

fn fleet_json(f: &Fleet) -> serde_json::Value {
    json!({
        "shared": f.shared,
        "head_revision": f.head_revision,
        "error": f.error,
        "hosts": f.hosts.iter().map(|h| json!({
            "host": h.host,
            "listen": h.listen,
            "version": h.version,
            "epoch": epoch_json(h.epoch),
            "revision": h.revision,
            "shared_revision": h.shared_revision,
            "degraded_since_ms": h.degraded_since_ms,
            "problems": h.problems,
            "reported_ms": h.reported_ms,
            "this_daemon": h.this_daemon,
            "services": h.services.iter().map(|s| json!({
                "service": s.service,
                "instance": s.instance,
                "revision": s.revision,
                "epoch": epoch_json(s.epoch),
                "acked_ms": s.acked_ms,
                "connected": s.connected,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// `--wait[=TIMEOUT]`: `30s`, `500ms`, `2m`, `1h`, or a number of seconds.
///
/// # Errors
/// Anything else, said as what was expected.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, Failure> {
    let bad = || {
        Failure::Message(format!(
            "Invalid --wait timeout {text:?}: expected a duration such as 30s, 500ms, 2m or 1h (or a number of seconds)."
        ))
    };
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

/// What has not applied `revision` yet: each host behind, and each
/// connected service behind on its host.
pub(crate) fn lagging(fleet: &Fleet, revision: u64) -> Vec<String> {
    let shown = |r| self::revision(r, fleet.shared);
    let mut out = Vec::new();
    for h in &fleet.hosts {
        let name = host_name(h);
        if h.revision < revision {
            out.push(format!(
                "host {name} is at revision {} (wanted {})",
                shown(h.revision),
                shown(revision)
            ));
            continue;
        }
        for s in h.services.iter().filter(|s| s.connected) {
            if s.epoch != h.epoch || s.revision < revision {
                let at = if s.revision == 0 {
                    "has not reported a revision".to_owned()
                } else {
                    format!("is at revision {}", shown(s.revision))
                };
                out.push(format!(
                    "service {} ({}) on host {name} {at}",
                    s.service, s.instance
                ));
            }
        }
    }
    out
}

fn host_name(h: &FleetHost) -> String {
    if h.host.is_empty() {
        h.listen.clone()
    } else {
        h.host.clone()
    }
}

/// Waits until the whole fleet has applied `revision` (see [`lagging`]);
/// the fleet as last seen, and what still lags.
///
/// # Errors
/// An unreachable daemon.
pub(crate) async fn wait(
    client: &Client,
    revision: u64,
    timeout: Duration,
) -> Result<(Fleet, Vec<String>), Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let fleet = client.fleet().await?;
        let behind = lagging(&fleet, revision);
        if behind.is_empty() || Instant::now() >= deadline {
            return Ok((fleet, behind));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What `--wait` prints once the fleet has the change.
pub(crate) fn applied_line(fleet: &Fleet) -> String {
    let services: usize = fleet
        .hosts
        .iter()
        .map(|h| h.services.iter().filter(|s| s.connected).count())
        .sum();
    format!(
        "Applied on {} host(s) and {services} service(s).",
        fleet.hosts.len()
    )
}

#[cfg(test)]
mod tests {
    use cfgd_sdk::client::FleetService;

    use super::*;

    fn host(name: &str, revision: u64, services: Vec<FleetService>) -> FleetHost {
        FleetHost {
            host: name.into(),
            listen: format!("{name}:7979"),
            version: "0.1.0".into(),
            epoch: 1,
            revision,
            shared_revision: revision >> 24,
            degraded_since_ms: None,
            problems: Vec::new(),
            services,
            reported_ms: 0,
            this_daemon: false,
        }
    }

    fn service(name: &str, revision: u64, connected: bool) -> FleetService {
        FleetService {
            service: name.into(),
            instance: "1".into(),
            revision,
            epoch: 1,
            acked_ms: 0,
            connected,
        }
    }

    #[test]
    fn every_host_behind_and_every_connected_service_behind_lags() {
        let r = 5 << 24;
        let fleet = Fleet {
            hosts: vec![
                host(
                    "a",
                    r + 2,
                    vec![service("api", r, true), service("old", 1, false)],
                ),
                host("b", 4 << 24, vec![service("api", 4 << 24, true)]),
                host(
                    "c",
                    r,
                    vec![
                        service("worker", (4 << 24) + 1, true),
                        service("new", 0, true),
                    ],
                ),
            ],
            shared: true,
            head_revision: r,
            error: None,
        };
        assert_eq!(
            lagging(&fleet, r),
            [
                "host b is at revision 4 (wanted 5)",
                "service worker (1) on host c is at revision 4.1",
                "service new (1) on host c has not reported a revision",
            ]
        );
    }

    #[test]
    fn timeouts_read_as_people_write_them() {
        assert_eq!(parse_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_timeout("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("5d").is_err());
    }
}
