//! Other services call auth-service directly: Authenticate and Authorize through the generated
//! client, health, and server reflection listing `tern.auth.v1.AuthService`.

mod common;

use common::{AuthService, workdir};
use proto::{
    auth::v1::{self as pb, auth_service_client::AuthServiceClient},
    types::v1 as types,
};
use tokio_stream::StreamExt as _;

fn client(id: &str, user: &str, password: &str) -> types::ClientInfo {
    types::ClientInfo {
        client_id: id.into(),
        username: Some(user.into()),
        password: Some(bytes::Bytes::copy_from_slice(password.as_bytes())),
        peer_address: "192.0.2.10".into(),
        protocol_name: "MQTT".into(),
        protocol_version: 4,
        ..Default::default()
    }
}

#[tokio::test]
async fn authenticate_and_authorize_through_the_generated_client() {
    let dir = workdir();
    let config = common::fixture_config("nanomq-file-auth.conf", dir.path());
    let auth = AuthService::start(&config).await;
    let mut stub =
        AuthServiceClient::connect(format!("http://{}", auth.addr)).await.expect("connect");

    let ok = stub
        .authenticate(pb::AuthenticateRequest { client: Some(client("c1", "client", "public")) })
        .await
        .expect("call")
        .into_inner();
    assert_eq!(ok.decision, i32::from(pb::Decision::Allow));
    assert_eq!(ok.decided_by, "password_file");
    let acl = ok.acl.expect("the file ACL is preloaded");
    assert!(!acl.rules.is_empty());
    assert_eq!(acl.no_match, i32::from(pb::Decision::Allow), "no_match = allow in the fixture");

    let bad = stub
        .authenticate(pb::AuthenticateRequest { client: Some(client("c1", "client", "nope")) })
        .await
        .expect("call")
        .into_inner();
    assert_eq!(bad.decision, i32::from(pb::Decision::Deny));
    assert_eq!(bad.reason_code, 0x86);

    let decisions = stub
        .authorize(pb::AuthorizeRequest {
            client: Some(client("c1", "client", "")),
            action: pb::Action::Publish.into(),
            topics: vec![
                pb::TopicRequest { topic: "client/only-one".into(), ..Default::default() },
                pb::TopicRequest { topic: "elsewhere".into(), ..Default::default() },
            ],
        })
        .await
        .expect("call")
        .into_inner();
    let got: Vec<i32> = decisions.results.iter().map(|r| r.decision).collect();
    assert_eq!(got, vec![i32::from(pb::Decision::Allow), i32::from(pb::Decision::Deny)]);

    let refused = stub
        .authorize(pb::AuthorizeRequest { client: None, action: 1, topics: vec![] })
        .await
        .expect_err("a request without a client is invalid");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    auth.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let auth = AuthService::start(&tern_config::Config::default()).await;
    let endpoint = format!("http://{}", auth.addr);

    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "tern.auth.v1.AuthService".into() })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        status.status,
        i32::from(tonic_health::pb::health_check_response::ServingStatus::Serving)
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("one answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == "tern.auth.v1.AuthService"), "{names:?}");
    auth.stop().await;
}
