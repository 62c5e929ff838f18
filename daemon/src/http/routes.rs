//! The console's router: the page and its assets, the JSON API, the event
//! stream and `/metrics`, behind one guard.
//!
//! The guard is what keeps a browser from being used against the daemon:
//! a page elsewhere may send requests to `127.0.0.1:7980`, so a request
//! must name the console by an IP address or `localhost` (a DNS-rebinding
//! page names it by its own host), and a write must come from the
//! console's own origin (a cross-site form or `fetch` carries a foreign
//! `Origin`). Programs that send no `Origin` (curl, scripts) are not
//! browsers and are judged by the token alone, as on gRPC.

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::refusal::Refusal;
use super::{Console, api, assets, events};

/// The console's routes over `console`, with request bodies of at most
/// `max_body` bytes.
pub(super) fn router(console: Console, max_body: usize) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/metrics", get(metrics))
        .route("/api/snapshot", get(api::snapshot))
        .route("/api/catalog", get(api::catalog))
        .route("/api/status", get(api::status))
        .route("/api/history", get(api::history))
        .route("/api/set", post(api::set))
        .route("/api/unset", post(api::unset))
        .route("/api/rollback", post(api::rollback))
        .route("/api/profiles", post(api::create_profile))
        .route(
            "/api/profiles/{name}",
            get(api::inspect_profile).delete(api::delete_profile),
        )
        .route("/api/profiles/{name}/use", post(api::use_profile))
        .route("/api/retry-schedule", get(api::retry_schedule))
        .route("/api/fleet", get(api::fleet))
        .route("/api/events", get(events::events))
        .route_layer(middleware::from_fn(count))
        .fallback(not_found)
        .layer(middleware::from_fn(guard))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(console)
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(c): State<Console>) -> Response {
    let Some(handle) = c.metrics else {
        return Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "no metrics: another metrics recorder was installed in this process first",
        )
        .into_response();
    };
    let fleet = c.service.fleet_state();
    let body = crate::metrics::render(
        handle,
        &c.hub,
        &fleet.state.get(),
        fleet.unreachable_since(),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    crate::metrics::http_request("other".into(), 404);
    Refusal::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!(
            "no such page: {} (the console is at /, its API under /api, metrics at /metrics)",
            request.uri().path()
        ),
    )
    .into_response()
}

/// Counts a routed request by its route.
async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    crate::metrics::http_request(route, response.status().as_u16());
    response
}

/// Whether `host` (a `Host` header) names the console by an IP address or
/// `localhost`, with or without a port.
fn host_allowed(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, rest)) if rest.is_empty() || rest.starts_with(':') => ip,
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

async fn guard(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Two Host headers could name two hosts; only one is ever looked at.
    if !host_allowed(&host) || headers.get_all(header::HOST).iter().count() > 1 {
        return Refusal::new(
            StatusCode::MISDIRECTED_REQUEST,
            "BAD_REQUEST",
            format!(
                "the console answers only when named by an IP address or localhost, not {host:?}"
            ),
        )
        .into_response();
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if !reads {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        let fetch_site = headers.get("sec-fetch-site").and_then(|o| o.to_str().ok());
        let foreign = origin.is_some_and(|o| o != format!("http://{host}"))
            || fetch_site.is_some_and(|s| s != "same-origin" && s != "none");
        if foreign {
            return Refusal::new(
                StatusCode::FORBIDDEN,
                "CROSS_ORIGIN",
                format!(
                    "a write from {} is refused: only the console's own page (http://{host}) may write",
                    origin.unwrap_or("another site")
                ),
            )
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // Nothing the console answers may be framed by another page, cached
    // (a revealed secret), or read as anything but what it says.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_addresses_and_localhost_name_the_console() {
        for ok in [
            "127.0.0.1:7980",
            "127.0.0.1",
            "localhost:7980",
            "LOCALHOST",
            "[::1]:7980",
            "[::1]",
            "10.1.2.3:80",
        ] {
            assert!(host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:7980",
            "evil.example",
            "",
            "[::1]x",
            "localhost.evil.example:7980",
            "127.0.0.1.nip.io:7980",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }
}
