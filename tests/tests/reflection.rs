//! Server reflection: a generic client (grpcurl, Postman, grpc-core's own
//! tools) lists the daemon's services and describes a method without the
//! `.proto` file.

use cfgd_tests::TestDaemon;
use prost::Message;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn ask(endpoint: &str, request: MessageRequest) -> MessageResponse {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .expect("an endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = ServerReflectionClient::new(channel);
    let mut answers = client
        .server_reflection_info(futures_util::stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        }]))
        .await
        .expect("a reflection stream")
        .into_inner();
    answers
        .message()
        .await
        .expect("an answer")
        .expect("one message")
        .message_response
        .expect("a response")
}

#[tokio::test]
async fn reflection_lists_the_settings_service_and_describes_its_methods() {
    let daemon = TestDaemon::builder().start().await;
    let MessageResponse::ListServicesResponse(list) = ask(
        &daemon.endpoint,
        MessageRequest::ListServices(String::new()),
    )
    .await
    else {
        panic!("a list of services");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for wanted in ["cfgd.v1.Settings", "grpc.health.v1.Health"] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }

    let MessageResponse::FileDescriptorResponse(files) = ask(
        &daemon.endpoint,
        MessageRequest::FileContainingSymbol("cfgd.v1.Settings.Set".into()),
    )
    .await
    else {
        panic!("the file that declares cfgd.v1.Settings");
    };
    let file = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
        .find(|f| f.package() == "cfgd.v1")
        .expect("cfgd/v1/cfgd.proto");
    let service = file
        .service
        .iter()
        .find(|s| s.name() == "Settings")
        .unwrap();
    let set = service.method.iter().find(|m| m.name() == "Set").unwrap();
    assert_eq!(
        (set.input_type(), set.output_type()),
        (".cfgd.v1.SetRequest", ".cfgd.v1.SetResponse")
    );
    // The error details a refusal carries are described too.
    assert!(file.message_type.iter().any(|m| m.name() == "Problems"));
    daemon.stop().await;
}
