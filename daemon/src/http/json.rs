//! The wire types as the console's JSON. Values arrive already masked by
//! the service (its one masking rule); each value and source also carries
//! the text `cfg` prints for it, from the settings crate's own formatting.

use cfgd_proto::pb;
use cfgd_settings::{LayerKind, Source};
use serde_json::{Value as Json, json};

use crate::service::convert::value_from_pb;

/// A value: its kind, the typed value and the text `cfg` shows.
pub(super) fn value(v: Option<&pb::Value>) -> Json {
    use pb::value::Kind;
    let Some(kind) = v.and_then(|v| v.kind.as_ref()) else {
        return json!({"kind": "unset", "text": "unset"});
    };
    let text = match kind {
        Kind::Masked(_) => cfgd_settings::MASK.to_owned(),
        _ => v
            .and_then(|v| value_from_pb(v).ok())
            .map_or_else(String::new, |v| v.to_string()),
    };
    match kind {
        Kind::Integer(i) => json!({"kind": "integer", "value": i, "text": text}),
        Kind::Number(n) => json!({"kind": "number", "value": n, "text": text}),
        Kind::Boolean(b) => json!({"kind": "boolean", "value": b, "text": text}),
        Kind::Text(s) => json!({"kind": "string", "value": s, "text": text}),
        Kind::Secret(s) => json!({"kind": "secret", "value": s, "text": text}),
        Kind::Delays(d) => {
            json!({"kind": "delays", "value": d.seconds, "list": d.list, "text": text})
        }
        Kind::List(l) => json!({
            "kind": "list",
            "value": l.items.iter().map(|i| value(Some(i))).collect::<Vec<_>>(),
            "text": text,
        }),
        Kind::Masked(_) => json!({"kind": "masked", "text": text}),
    }
}

fn layer_of(l: i32) -> LayerKind {
    match pb::Layer::try_from(l).unwrap_or(pb::Layer::Unspecified) {
        pb::Layer::Profile => LayerKind::Profile,
        pb::Layer::File => LayerKind::File,
        pb::Layer::Dotenv => LayerKind::DotEnv,
        pb::Layer::Env => LayerKind::Env,
        pb::Layer::Defaults | pb::Layer::Unspecified => LayerKind::Defaults,
    }
}

/// A source, with `cfg`'s words for it (`config file /x.toml, line 2`).
pub(super) fn source(s: Option<&pb::Source>) -> Json {
    let Some(s) = s else {
        return Json::Null;
    };
    let layer = layer_of(s.layer);
    let label = Source {
        layer,
        file: (!s.file.is_empty()).then(|| s.file.as_str().into()),
        line: (s.line > 0).then_some(s.line),
        detail: (!s.detail.is_empty()).then(|| s.detail.clone()),
    }
    .to_string();
    json!({
        "layer": serde_json::to_value(layer).unwrap_or(Json::Null),
        "rank": layer as u8,
        "file": (!s.file.is_empty()).then_some(&s.file),
        "line": (s.line > 0).then_some(s.line),
        "detail": (!s.detail.is_empty()).then_some(&s.detail),
        "label": label,
    })
}

/// One resolved setting with the lower layers it shadows.
pub(super) fn resolved(r: &pb::ResolvedSetting) -> Json {
    json!({
        "name": r.name,
        "value": value(r.value.as_ref()),
        "source": source(r.source.as_ref()),
        "shadowed": r.shadowed.iter().map(|s| json!({
            "value": value(s.value.as_ref()),
            "source": source(s.source.as_ref()),
        })).collect::<Vec<_>>(),
        "secret": r.secret,
    })
}

/// Every setting at one revision.
pub(super) fn snapshot(
    revision: u64,
    epoch: u64,
    active_profile: &str,
    settings: &[pb::ResolvedSetting],
) -> Json {
    json!({
        "revision": revision,
        // As a string: an epoch is a random u64, beyond a double's integers.
        "epoch": epoch.to_string(),
        "active_profile": active_profile,
        "settings": settings.iter().map(resolved).collect::<Vec<_>>(),
    })
}

fn origin(o: i32) -> &'static str {
    match pb::Origin::try_from(o).unwrap_or(pb::Origin::Unspecified) {
        pb::Origin::Set => "set",
        pb::Origin::Unset => "unset",
        pb::Origin::File => "file",
        pb::Origin::Profile => "profile",
        pb::Origin::Rollback => "rollback",
        pb::Origin::Startup => "startup",
        pb::Origin::ProfilesFile => "profiles_file",
        pb::Origin::SharedState => "shared_state",
        pb::Origin::Unspecified => "unknown",
    }
}

/// One revision: when, why, and each key's old and new effective value.
pub(super) fn change(c: &pb::Change) -> Json {
    let side = |v: &Option<pb::Value>, s: &Option<pb::Source>| match s {
        None => Json::Null,
        Some(_) => json!({"value": value(v.as_ref()), "source": source(s.as_ref())}),
    };
    json!({
        "revision": c.revision,
        "time_ms": c.time_unix_ms,
        "origin": origin(c.origin),
        "detail": c.detail,
        "changes": c.changes.iter().map(|k| json!({
            "name": k.name,
            "old": side(&k.old_value, &k.old_source),
            "new": side(&k.new_value, &k.new_source),
            "secret": k.secret,
        })).collect::<Vec<_>>(),
    })
}

/// What a write did: per setting, the value now in the profile and the
/// effective value; `overridden_by` lists the higher layers that keep the
/// profile's value out of force (what `cfg set` warns about).
pub(super) fn written(
    revision: u64,
    epoch: u64,
    profile: &str,
    applied: &[pb::Applied],
    changed: bool,
) -> Json {
    let applied: Vec<Json> = applied
        .iter()
        .map(|a| {
            let overridden_by: Vec<Json> = a
                .effective
                .iter()
                .flat_map(|e| {
                    let winner = e.source.as_ref().map(|s| (s, e.value.as_ref()));
                    let above = e
                        .shadowed
                        .iter()
                        .filter_map(|s| s.source.as_ref().map(|src| (src, s.value.as_ref())));
                    winner.into_iter().chain(above)
                })
                .filter(|(s, _)| layer_of(s.layer) > LayerKind::Profile)
                .map(|(s, v)| json!({"source": source(Some(s)), "value": value(v)}))
                .collect();
            json!({
                "name": a.name,
                "given_name": a.given_name,
                "value": value(a.value.as_ref()),
                "effective": a.effective.as_ref().map(resolved),
                "overridden_by": overridden_by,
            })
        })
        .collect();
    json!({
        "revision": revision,
        "epoch": epoch.to_string(),
        "profile": profile,
        "applied": applied,
        "changed": changed,
    })
}

/// The daemon's status and its files: a bad file with its error and line.
pub(super) fn status(s: &pb::StatusResponse) -> Json {
    let kind = |k: i32| match pb::FileKind::try_from(k).unwrap_or(pb::FileKind::Unspecified) {
        pb::FileKind::Values => "values",
        pb::FileKind::Catalog => "catalog",
        pb::FileKind::Dotenv => "dotenv",
        pb::FileKind::Profiles => "profiles",
        pb::FileKind::Log => "log",
        pb::FileKind::Unspecified => "unknown",
    };
    json!({
        "version": s.version,
        "listen": s.listen,
        "revision": s.revision,
        "epoch": s.epoch.to_string(),
        "oldest_revision": s.oldest_revision,
        "active_profile": s.active_profile,
        "config_dir": s.config_dir,
        "state_dir": s.state_dir,
        "profiles_path": s.profiles_path,
        "files": s.files.iter().map(|f| json!({
            "path": f.path,
            "kind": kind(f.kind),
            "error": (!f.error.is_empty()).then_some(&f.error),
            "line": (f.error_line > 0).then_some(f.error_line),
            "warnings": f.warnings,
        })).collect::<Vec<_>>(),
        "watchers": s.watchers,
        "started_ms": s.started_unix_ms,
        "settings": s.settings,
        "store": s.store.as_ref().map(store),
    })
}

/// The store's state: which store, whether shared writes are refused and
/// since when, why, and (etcd) the shared revision against the newest.
pub(super) fn store(s: &pb::StoreStatus) -> Json {
    let ms = |v: i64| (v > 0).then_some(v);
    json!({
        "kind": s.kind,
        "endpoints": s.endpoints,
        "state": s.state,
        "degraded_since_ms": ms(s.degraded_since_unix_ms),
        "error": (!s.error.is_empty()).then_some(&s.error),
        "last_contact_ms": ms(s.last_contact_unix_ms),
        "shared_revision": s.shared_revision,
        "head_revision": s.head_revision,
        "host": s.host,
    })
}

/// A revision as `cfg fleet` prints it: `S` or `S.L` for a fleet's
/// (`S·2²⁴ + L`), the number with the file store.
pub(super) fn revision_text(r: u64, shared: bool) -> String {
    let (s, l) = (r >> 24, r & 0xff_ffff);
    match (shared, l) {
        (false, _) => r.to_string(),
        (true, 0) => s.to_string(),
        (true, _) => format!("{s}.{l}"),
    }
}

/// The fleet: each host with its revision and services, which of them lag
/// (a host behind the newest shared revision; a connected service that has
/// not reported its host's revision, or reported one of another epoch),
/// and the answering daemon's store.
pub(super) fn fleet(f: &pb::FleetResponse, store_status: Option<&pb::StoreStatus>) -> Json {
    let text = |r| revision_text(r, f.shared);
    let mut lagging = 0usize;
    let hosts: Vec<Json> = f
        .hosts
        .iter()
        .map(|h| {
            let behind = h.revision < f.head_revision;
            lagging += usize::from(behind);
            let services: Vec<Json> = h
                .services
                .iter()
                .map(|s| {
                    let state = if !s.connected {
                        "disconnected"
                    } else if s.revision == 0 {
                        "not reported"
                    } else if s.epoch != h.epoch {
                        "other epoch"
                    } else if s.revision < h.revision {
                        "behind"
                    } else {
                        "applied"
                    };
                    let lags = s.connected && state != "applied";
                    lagging += usize::from(lags);
                    json!({
                        "service": s.service,
                        "instance": s.instance,
                        "revision": s.revision,
                        "revision_text": text(s.revision),
                        "epoch": s.epoch.to_string(),
                        "acked_ms": (s.acked_unix_ms > 0).then_some(s.acked_unix_ms),
                        "connected": s.connected,
                        "state": state,
                        "lagging": lags,
                    })
                })
                .collect();
            json!({
                "host": h.host,
                "listen": h.listen,
                "version": h.version,
                "epoch": h.epoch.to_string(),
                "revision": h.revision,
                "revision_text": text(h.revision),
                "shared_revision": h.shared_revision,
                "degraded_since_ms": (h.degraded_since_unix_ms > 0).then_some(h.degraded_since_unix_ms),
                "problems": h.problems,
                "reported_ms": (h.reported_unix_ms > 0).then_some(h.reported_unix_ms),
                "this_daemon": h.this_daemon,
                "lagging": behind,
                "services": services,
            })
        })
        .collect();
    json!({
        "shared": f.shared,
        "head_revision": f.head_revision,
        "head_text": text(f.head_revision),
        "error": (!f.error.is_empty()).then_some(&f.error),
        "lagging": lagging,
        "hosts": hosts,
        "store": store_status.map(store),
    })
}

/// The profiles and which one is active.
pub(super) fn profiles(p: &pb::ListProfilesResponse) -> Json {
    json!({
        "active": p.active,
        "profiles": p.profiles.iter().map(|i| json!({
            "name": i.name,
            "active": i.active,
            "settings": i.settings,
        })).collect::<Vec<_>>(),
    })
}

/// The values one profile holds.
pub(super) fn profile(p: &pb::InspectProfileResponse) -> Json {
    json!({
        "name": p.name,
        "active": p.active,
        "entries": p.entries.iter().map(|e| json!({
            "name": e.name,
            "value": value(e.value.as_ref()),
            "secret": e.secret,
        })).collect::<Vec<_>>(),
    })
}

/// The catalogue: each setting's type, default, bounds and description.
pub(super) fn catalog(c: &pb::CatalogResponse) -> Json {
    json!({
        "entries": c.entries.iter().map(|e| json!({
            "name": e.name,
            "aliases": e.aliases,
            "path": (!e.path.is_empty()).then_some(&e.path),
            "type": e.r#type,
            "default": value(e.default.as_ref()),
            "min": e.min,
            "max": e.max,
            "min_exclusive": e.min_exclusive,
            "max_exclusive": e.max_exclusive,
            "choices": e.choices,
            "items": (!e.items.is_empty()).then_some(&e.items),
            "optional": e.optional,
            "computed": (!e.computed.is_empty()).then_some(&e.computed),
            "secret": e.secret,
            "description": e.description,
            "file": (!e.file.is_empty()).then_some(&e.file),
        })).collect::<Vec<_>>(),
    })
}

/// One problem of a refused request, field by field.
pub(super) fn problem(p: &pb::Problem) -> Json {
    let kind = match pb::ProblemKind::try_from(p.kind).unwrap_or(pb::ProblemKind::Unspecified) {
        pb::ProblemKind::UnknownName => "unknown_name",
        pb::ProblemKind::InvalidValue => "invalid_value",
        pb::ProblemKind::NotInProfile => "not_in_profile",
        pb::ProblemKind::Limit => "limit",
        pb::ProblemKind::BadRequest => "bad_request",
        pb::ProblemKind::GivenTwice => "given_twice",
        pb::ProblemKind::Unspecified => "unknown",
    };
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    json!({
        "kind": kind,
        "setting": text(&p.setting),
        "given_name": p.given_name,
        "source": source(p.source.as_ref()),
        "expected": text(&p.expected),
        "suggestion": text(&p.suggestion),
        "message": p.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, revision: u64, epoch: u64, connected: bool) -> pb::FleetService {
        pb::FleetService {
            service: name.into(),
            instance: "i".into(),
            revision,
            epoch,
            acked_unix_ms: 1,
            connected,
        }
    }

    #[test]
    fn the_fleet_says_which_hosts_and_services_lag() {
        let shared = 5u64 << 24;
        let host = |name: &str, revision: u64, services| pb::FleetHost {
            host: name.into(),
            revision,
            shared_revision: revision >> 24,
            epoch: 9,
            services,
            ..Default::default()
        };
        let f = pb::FleetResponse {
            hosts: vec![
                host(
                    "a",
                    shared + 2,
                    vec![
                        svc("applied", shared + 2, 9, true),
                        svc("behind", shared, 9, true),
                        svc("silent", 0, 0, true),
                        svc("restarted", shared + 2, 8, true),
                        svc("gone", shared - 1, 9, false),
                    ],
                ),
                host("b", 4 << 24, vec![]),
            ],
            shared: true,
            head_revision: shared,
            error: String::new(),
        };
        let j = fleet(&f, None);
        assert_eq!(j["head_text"], "5");
        let a = &j["hosts"][0];
        assert_eq!(
            (a["revision_text"].as_str(), a["lagging"].as_bool()),
            (Some("5.2"), Some(false))
        );
        let states: Vec<(&str, bool)> = a["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["state"].as_str().unwrap(),
                    s["lagging"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("applied", false),
                ("behind", true),
                ("not reported", true),
                ("other epoch", true),
                ("disconnected", false),
            ]
        );
        assert_eq!(j["hosts"][1]["lagging"], true, "b is behind the head");
        assert_eq!(j["lagging"], 4, "three services and one host");
        assert_eq!(revision_text(7, false), "7", "the file store's numbers");
    }

    #[test]
    fn values_carry_the_text_cfg_prints_and_secrets_stay_masked() {
        let delays = pb::Value {
            kind: Some(pb::value::Kind::Delays(pb::Delays {
                seconds: vec![1.0, 10.0, 100.0],
                list: true,
            })),
        };
        assert_eq!(value(Some(&delays))["text"], "[1, 10, 100]");
        let masked = pb::Value {
            kind: Some(pb::value::Kind::Masked(pb::Masked {})),
        };
        assert_eq!(
            value(Some(&masked)),
            json!({"kind": "masked", "text": "********"})
        );
        assert_eq!(value(None)["kind"], "unset");
    }

    #[test]
    fn sources_read_as_cfg_says_them() {
        let s = pb::Source {
            layer: pb::Layer::File as i32,
            file: "/c/prefect.toml".into(),
            line: 2,
            detail: String::new(),
        };
        assert_eq!(
            source(Some(&s))["label"],
            "config file /c/prefect.toml, line 2"
        );
        let p = pb::Source {
            layer: pb::Layer::Profile as i32,
            detail: "default".into(),
            ..Default::default()
        };
        assert_eq!(source(Some(&p))["label"], "profile 'default'");
        assert_eq!(source(Some(&p))["layer"], "profile");
    }

    #[test]
    fn a_write_under_a_higher_layer_says_which_layers_override_it() {
        let src = |layer: pb::Layer, detail: &str| pb::Source {
            layer: layer as i32,
            detail: detail.into(),
            ..Default::default()
        };
        let int = |i| pb::Value {
            kind: Some(pb::value::Kind::Integer(i)),
        };
        let applied = pb::Applied {
            name: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
            given_name: "PREFECT_TASK_DEFAULT_RETRIES".into(),
            value: Some(int(3)),
            effective: Some(pb::ResolvedSetting {
                name: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
                value: Some(int(5)),
                source: Some(src(pb::Layer::Env, "PREFECT_TASKS_DEFAULT_RETRIES")),
                shadowed: vec![
                    pb::Shadowed {
                        source: Some(src(pb::Layer::Profile, "default")),
                        value: Some(int(3)),
                    },
                    pb::Shadowed {
                        source: Some(src(pb::Layer::Defaults, "")),
                        value: Some(int(0)),
                    },
                ],
                secret: false,
            }),
        };
        let w = written(4, 7, "default", &[applied], true);
        let over = w["applied"][0]["overridden_by"].as_array().unwrap();
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(
            over[0]["source"]["label"],
            "env PREFECT_TASKS_DEFAULT_RETRIES"
        );
        assert_eq!(over[0]["value"]["text"], "5");
        assert_eq!(w["epoch"], "7");
    }
}
