//! A refused request as the console's JSON: the service's `Status` (built
//! in `error/status.rs`, the one place problems are made) read back into
//! its code, reason, message and typed problems, with the HTTP status
//! Google's API design guide gives for the gRPC code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cfgd_proto::pb;
use prost::{Message, Name};
use serde_json::{Value as Json, json};
use tonic::{Code, Status};

use super::json;

/// A refusal, ready to send.
#[derive(Debug)]
pub(super) struct Refusal {
    http: StatusCode,
    body: Json,
}

impl Refusal {
    /// A refusal of the console's own (a request that never reached the
    /// service: bad JSON, a foreign origin).
    pub(super) fn new(http: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        Self {
            http,
            body: json!({"error": {
                "code": code_name(code_of(http)),
                "reason": reason,
                "message": message.into(),
                "problems": [],
                "omitted": 0,
                "metadata": {},
            }}),
        }
    }
}

impl Refusal {
    /// Candidate values `Validate` found problems with, refused as a `Set`
    /// of them would be.
    pub(super) fn invalid(problems: &[pb::Problem]) -> Self {
        let message: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        Self {
            http: StatusCode::BAD_REQUEST,
            body: json!({"error": {
                "code": code_name(Code::InvalidArgument),
                "reason": "INVALID_SETTINGS",
                "message": message.join("\n"),
                "problems": problems.iter().map(json::problem).collect::<Vec<_>>(),
                "omitted": 0,
                "metadata": {},
            }}),
        }
    }
}

impl From<Status> for Refusal {
    fn from(s: Status) -> Self {
        let mut reason = String::new();
        let mut metadata = Json::Object(Default::default());
        let mut problems = Vec::new();
        let mut omitted = 0;
        if let Ok(details) = tonic_types::pb::Status::decode(s.details()) {
            for any in details.details {
                if any.type_url == tonic_types::ErrorInfo::TYPE_URL {
                    if let Ok(info) = tonic_types::pb::ErrorInfo::decode(any.value.as_slice()) {
                        reason = info.reason;
                        metadata = json!(info.metadata);
                    }
                } else if any.type_url == pb::Problems::type_url()
                    && let Ok(p) = pb::Problems::decode(any.value.as_slice())
                {
                    problems = p.problems.iter().map(json::problem).collect();
                    omitted = p.omitted;
                }
            }
        }
        Self {
            http: http_status(s.code()),
            body: json!({"error": {
                "code": code_name(s.code()),
                "reason": reason,
                "message": s.message(),
                "problems": problems,
                "omitted": omitted,
                "metadata": metadata,
            }}),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.http, axum::Json(self.body)).into_response()
    }
}

/// `INVALID_ARGUMENT` for `Code::InvalidArgument`.
fn code_name(c: Code) -> String {
    format!("{c:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, ch)| {
            let sep = (i > 0 && ch.is_ascii_uppercase()).then_some('_');
            sep.into_iter()
                .chain(std::iter::once(ch.to_ascii_uppercase()))
        })
        .collect()
}

/// The mapping of `google.rpc.Code`'s documentation.
fn http_status(c: Code) -> StatusCode {
    match c {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code a console refusal of its own stands for.
fn code_of(http: StatusCode) -> Code {
    match http {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN | StatusCode::MISDIRECTED_REQUEST => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        s if s.is_server_error() => Code::Internal,
        _ => Code::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OpError;

    #[test]
    fn a_refusal_keeps_the_daemons_reason_message_and_problems() {
        let status: Status = OpError::Invalid(vec![cfgd_settings::SettingsError::UnknownName {
            name: "PREFECT_TASK_DEFAULT_RETRYS".into(),
            suggestion: Some("PREFECT_TASK_DEFAULT_RETRIES".into()),
            at: None,
        }])
        .into();
        let message = status.message().to_owned();
        let r = Refusal::from(status);
        assert_eq!(r.http, StatusCode::BAD_REQUEST);
        let e = &r.body["error"];
        assert_eq!(e["code"], "INVALID_ARGUMENT");
        assert_eq!(e["reason"], "INVALID_SETTINGS");
        assert_eq!(e["message"], message.as_str());
        assert_eq!(e["problems"][0]["kind"], "unknown_name");
        assert_eq!(
            e["problems"][0]["suggestion"],
            "PREFECT_TASK_DEFAULT_RETRIES"
        );
    }

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
        assert_eq!(code_name(Code::Ok), "OK");
        let unauth: Status =
            OpError::Unauthenticated("cfgd requires a token to set: no token was given".into())
                .into();
        assert_eq!(Refusal::from(unauth).http, StatusCode::UNAUTHORIZED);
    }
}
