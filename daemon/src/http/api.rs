//! The console's JSON API. Every call goes through the gRPC service's own
//! handlers, in-process, with the caller's `Authorization` header as the
//! request's metadata: the same auth, limits, validation, masking and typed
//! refusals as `cfg` gets.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use cfgd_proto::pb;
use cfgd_proto::pb::settings_server::Settings as _;
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::refusal::Refusal;
use super::schedule::{self, DELAYS, JITTER, Params, RETRIES};
use super::{Console, json};

/// An answer, or the daemon's refusal.
pub(super) type Answer = Result<Json<Json_>, Refusal>;

/// `msg` as a service request carrying the caller's token, if any.
pub(super) fn request<T>(headers: &HeaderMap, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| tonic::metadata::MetadataValue::try_from(v.as_bytes()).ok())
    {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// A JSON body of type `T`, or a refusal that says what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, Refusal> {
    let bytes = bytes.map_err(|e| {
        Refusal::new(
            e.status(),
            "LIMIT",
            format!("the request body cannot be read: {}", e.body_text()),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the request body is not what this call takes: {e}"),
        )
    })
}

fn yes(v: Option<&String>) -> bool {
    v.is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

/// `GET /api/snapshot?reveal=1&names=A,B`.
pub(super) async fn snapshot(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let names = q
        .get("names")
        .map(|n| {
            n.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let req = pb::SnapshotRequest {
        reveal_secrets: yes(q.get("reveal")),
        names,
        // The active profile's view, as `cfg view` without `-p`.
        ..Default::default()
    };
    let s = c
        .service
        .snapshot(request(&headers, req))
        .await?
        .into_inner();
    Ok(Json(json::snapshot(
        s.revision,
        s.epoch,
        &s.active_profile,
        &s.settings,
    )))
}

/// `GET /api/catalog`.
pub(super) async fn catalog(State(c): State<Console>, headers: HeaderMap) -> Answer {
    let r = c
        .service
        .catalog(request(&headers, pb::CatalogRequest {}))
        .await?;
    Ok(Json(json::catalog(r.get_ref())))
}

/// `GET /api/status`: the daemon, its files and the profiles.
pub(super) async fn status(State(c): State<Console>, headers: HeaderMap) -> Answer {
    Ok(Json(c.status(&headers).await?))
}

/// `GET /api/history?limit=N`.
pub(super) async fn history(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let req = pb::HistoryRequest {
        limit,
        reveal_secrets: false,
    };
    let h = c
        .service
        .history(request(&headers, req))
        .await?
        .into_inner();
    Ok(Json(json!({
        "revision": h.revision,
        "epoch": h.epoch.to_string(),
        "oldest_revision": h.oldest_revision,
        "changes": h.changes.iter().map(json::change).collect::<Vec<_>>(),
    })))
}

/// `GET /api/fleet`: which hosts and services run which revision, the
/// ones that lag, and this daemon's store.
pub(super) async fn fleet(State(c): State<Console>, headers: HeaderMap) -> Answer {
    let f = c
        .service
        .fleet(request(&headers, pb::FleetRequest {}))
        .await?
        .into_inner();
    let status = c
        .service
        .status(request(&headers, pb::StatusRequest {}))
        .await?
        .into_inner();
    Ok(Json(json::fleet(&f, status.store.as_ref())))
}

#[derive(Debug, Deserialize)]
struct SetBody {
    assignments: Vec<AssignmentBody>,
    expected_revision: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct AssignmentBody {
    name: String,
    /// As `cfg set` takes it: text for the one settings parser (a JSON
    /// number or boolean is taken as its text).
    value: Json_,
}

/// `POST /api/set`: `{"assignments": [{"name", "value"}], "expected_revision"}`.
pub(super) async fn set(
    State(c): State<Console>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let b: SetBody = body(bytes)?;
    let assignments = b
        .assignments
        .into_iter()
        .map(|a| pb::Assignment {
            name: a.name,
            value: Some(pb::assignment::Value::Raw(match a.value {
                Json_::String(s) => s,
                other => other.to_string(),
            })),
        })
        .collect();
    let req = pb::SetRequest {
        assignments,
        expected_revision: b.expected_revision,
        // Into the active profile, as `cfg set` without `-p`.
        ..Default::default()
    };
    let r = c.service.set(request(&headers, req)).await?.into_inner();
    Ok(Json(json::written(
        r.revision, r.epoch, &r.profile, &r.applied, r.changed,
    )))
}

#[derive(Debug, Deserialize)]
struct UnsetBody {
    names: Vec<String>,
    expected_revision: Option<u64>,
}

/// `POST /api/unset`: `{"names": [...], "expected_revision"}`.
pub(super) async fn unset(
    State(c): State<Console>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let b: UnsetBody = body(bytes)?;
    let req = pb::UnsetRequest {
        names: b.names,
        expected_revision: b.expected_revision,
        ..Default::default()
    };
    let r = c.service.unset(request(&headers, req)).await?.into_inner();
    Ok(Json(json::written(
        r.revision, r.epoch, &r.profile, &r.applied, r.changed,
    )))
}

#[derive(Debug, Deserialize)]
struct RollbackBody {
    revision: u64,
    expected_revision: Option<u64>,
}

/// `POST /api/rollback`: `{"revision", "expected_revision"}`.
pub(super) async fn rollback(
    State(c): State<Console>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let b: RollbackBody = body(bytes)?;
    let req = pb::RollbackRequest {
        revision: b.revision,
        expected_revision: b.expected_revision,
    };
    let r = c
        .service
        .rollback(request(&headers, req))
        .await?
        .into_inner();
    Ok(Json(json::written(
        r.revision, r.epoch, &r.profile, &r.applied, r.changed,
    )))
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    name: String,
    from: Option<String>,
}

/// `POST /api/profiles`: `{"name", "from"}`.
pub(super) async fn create_profile(
    State(c): State<Console>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let b: CreateBody = body(bytes)?;
    let req = pb::CreateProfileRequest {
        name: b.name,
        from: b.from.filter(|f| !f.is_empty()),
    };
    let r = c.service.create_profile(request(&headers, req)).await?;
    Ok(Json(
        json!({"name": r.get_ref().name, "active": r.get_ref().active}),
    ))
}

/// `GET /api/profiles/{name}?reveal=1`: the values it holds.
pub(super) async fn inspect_profile(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let req = pb::InspectProfileRequest {
        name,
        reveal_secrets: yes(q.get("reveal")),
    };
    let r = c.service.inspect_profile(request(&headers, req)).await?;
    Ok(Json(json::profile(r.get_ref())))
}

/// `POST /api/profiles/{name}/use`.
pub(super) async fn use_profile(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Answer {
    let req = pb::UseProfileRequest {
        name,
        expected_revision: None,
    };
    let r = c
        .service
        .use_profile(request(&headers, req))
        .await?
        .into_inner();
    Ok(Json(json::written(
        r.revision, r.epoch, &r.profile, &r.applied, r.changed,
    )))
}

/// `DELETE /api/profiles/{name}`.
pub(super) async fn delete_profile(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Answer {
    let req = pb::DeleteProfileRequest { name };
    let r = c.service.delete_profile(request(&headers, req)).await?;
    Ok(Json(
        json!({"name": r.get_ref().name, "active": r.get_ref().active}),
    ))
}

/// `GET /api/retry-schedule?retries=3&delays=1,10,100&jitter=0.5`: the
/// schedule the task defaults give, with any of them replaced by a
/// candidate value (`jitter=` with nothing: no jitter). Candidates are
/// refused as `cfg set` would refuse them.
pub(super) async fn retry_schedule(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let given: Vec<(&str, &String)> =
        [("retries", RETRIES), ("delays", DELAYS), ("jitter", JITTER)]
            .into_iter()
            .filter_map(|(param, name)| q.get(param).map(|v| (name, v)))
            .filter(|(name, v)| !(*name == JITTER && v.trim().is_empty()))
            .collect();
    if !given.is_empty() {
        let req = pb::ValidateRequest {
            assignments: given
                .iter()
                .map(|(name, raw)| pb::Assignment {
                    name: (*name).to_owned(),
                    value: Some(pb::assignment::Value::Raw((*raw).clone())),
                })
                .collect(),
        };
        let v = c
            .service
            .validate(request(&headers, req))
            .await?
            .into_inner();
        let problems: Vec<pb::Problem> = v.errors.into_iter().filter_map(|e| e.problem).collect();
        if !problems.is_empty() {
            return Err(Refusal::invalid(&problems));
        }
    }
    let view = c.hub.view();
    let value = |name: &str, param: &str| -> Option<cfgd_settings::Value> {
        match q.get(param) {
            Some(raw) if name == JITTER && raw.trim().is_empty() => None,
            Some(raw) => view
                .catalog
                .get(name)
                .and_then(|e| cfgd_settings::value::parse(e, raw).ok()),
            None => view.resolution.get(name).and_then(|r| r.value.clone()),
        }
    };
    let params = Params::from_values(
        value(RETRIES, "retries").as_ref(),
        value(DELAYS, "delays").as_ref(),
        value(JITTER, "jitter").as_ref(),
    );
    Ok(Json(schedule::to_json(&params)))
}
