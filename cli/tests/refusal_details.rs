//! `cfg set`'s error block comes from the daemon's typed problems, not from
//! its wording: against a server that refuses with a message no parser
//! could read, the block is still Prefect's, built from the fields.

use std::convert::Infallible;
use std::task::{Context, Poll};

use cfgd_proto::pb;
use prost::{Message, Name};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use cfgd_tests::cli::{cfg_at, run};

/// Answers every `cfgd.v1.Settings` call with one refusal.
#[derive(Clone)]
struct Refuse(pb::Problems);

impl NamedService for Refuse {
    const NAME: &'static str = "cfgd.v1.Settings";
}

impl Service<http::Request<Body>> for Refuse {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<Body>) -> Self::Future {
        let message = "zz 42 [a message in words no parser knows]";
        let details = tonic_types::pb::Status {
            code: tonic::Code::InvalidArgument as i32,
            message: message.into(),
            details: vec![prost_types::Any {
                type_url: pb::Problems::type_url(),
                value: self.0.encode_to_vec(),
            }],
        };
        let status = tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            message,
            details.encode_to_vec().into(),
        );
        Box::pin(async move { Ok(status.into_http()) })
    }
}

fn problem(kind: pb::ProblemKind, given: &str, expected: &str, suggestion: &str) -> pb::Problem {
    pb::Problem {
        kind: kind as i32,
        setting: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
        given_name: given.into(),
        source: Some(pb::Source {
            layer: pb::Layer::Profile as i32,
            detail: "default".into(),
            ..Default::default()
        }),
        expected: expected.into(),
        suggestion: suggestion.into(),
        message: "qq 7 (more words no parser knows)".into(),
    }
}

#[test]
fn the_set_error_block_is_built_from_the_problems_fields() {
    let problems = pb::Problems {
        problems: vec![
            problem(
                pb::ProblemKind::InvalidValue,
                "prefect_task_default_retries",
                "a whole number, please (got \"x\")",
                "",
            ),
            problem(
                pb::ProblemKind::UnknownName,
                "PREFECT_TASK_DEFAULT_RETRYS",
                "",
                "PREFECT_TASK_DEFAULT_RETRIES",
            ),
        ],
        omitted: 0,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(
        tonic::transport::Server::builder()
            .add_service(Refuse(problems))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let out = run(cfg_at(&endpoint).args([
        "set",
        "prefect_task_default_retries=x",
        "PREFECT_TASK_DEFAULT_RETRYS=1",
    ]));
    assert_eq!(
        out.fails(),
        "Unknown setting name 'PREFECT_TASK_DEFAULT_RETRYS'. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?\n\
         Validation error(s) for setting prefect_task_default_retries\n\n - a whole number, please (got \"x\")\n"
    );
    let _ = stop.send(());
    rt.block_on(server).expect("server task").expect("server");
}
