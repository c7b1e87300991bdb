//! webhook-relay secured with `webhook_relay.token` and mutual TLS: a broker configured with both
//! streams its events and they are delivered; callers without the token, without TLS or without
//! a client certificate are refused.

mod common;

use std::time::Duration;

use common::{Receiver, RunningBroker, client, config, publish};
use proto::{
    events::v1::{SubscribeRequest, event_stream_client::EventStreamClient},
    grpc::{AttachToken, BearerToken, Security, TlsFiles},
};
use test_support::pki::Pki;
use tonic::transport::Endpoint;
use webhook_relay::{Relay, RelayConfig};

const TOKEN: &str = "relay-token-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secured_relay_takes_events_from_brokers_with_the_token_and_refuses_the_rest() {
    test_support::install_crypto_provider();
    let pki = Pki::new();
    let server = pki.server("relay", "webhook-relay");
    let broker_cert = pki.client("broker", "broker-core");
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (listener, relay_addr) = test_support::bind_tokio().await;
    let text = format!(
        "listeners.tcp.bind = \"127.0.0.1:0\"\nsys.interval = 0\nnode.id = n1\n\
         webhooks.sink {{ url = \"{url}\", events = [{{event = on_message_publish, topic = \"t/#\"}}] }}\n\
         webhook_relay {{\n  address = \"{relay_addr}\"\n  outbox = \"{outbox}\"\n  \
         reconnect_delay = 50ms\n  token = \"{TOKEN}\"\n  tls {{\n    certfile = \"{cert}\"\n    \
         keyfile = \"{key}\"\n    cacertfile = \"{ca}\"\n    verify_peer = true\n  }}\n}}\n",
        url = receiver.url("hook"),
        outbox = dir.path().join("outbox.redb").display(),
        cert = broker_cert.cert.display(),
        key = broker_cert.key.display(),
        ca = pki.ca_file().display(),
    );
    let broker_config = config(&text, dir.path());
    let relay = Relay::open(RelayConfig::from_config(&broker_config)).expect("relay opens");
    let server_tls = TlsFiles {
        certfile: server.cert.clone(),
        keyfile: server.key.clone(),
        cacertfile: Some(pki.ca_file()),
        verify_peer: true,
        server_name: None,
    };
    let security = Security { token: Some(TOKEN.into()), tls: Some(server_tls) };
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(relay.serve_secured(listener, security, async move { stopped.cancelled().await }));

    // A broker with the token and its certificate: events flow and are delivered.
    let broker = RunningBroker::start(&broker_config).await;
    let mut c = client(broker.mqtt, "secure-1", None).await;
    publish(&mut c, "t/1", "over TLS", 1).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].field("payload"), "over TLS");

    // Callers over mutual TLS without the token are refused.
    let client_tls = TlsFiles {
        certfile: broker_cert.cert.clone(),
        keyfile: broker_cert.key.clone(),
        cacertfile: Some(pki.ca_file()),
        verify_peer: true,
        server_name: None,
    };
    let secured = Security { token: None, tls: Some(client_tls.clone()) };
    let channel = secured
        .endpoint(&relay_addr.to_string())
        .expect("endpoint")
        .connect()
        .await
        .expect("mutual TLS connects");
    let refused = EventStreamClient::new(channel.clone())
        .subscribe(SubscribeRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    // With the token the same call is accepted.
    let mut with_token =
        EventStreamClient::with_interceptor(channel, AttachToken(BearerToken::new(Some(TOKEN))));
    with_token.subscribe(SubscribeRequest::default()).await.expect("the token is accepted");

    // Plain HTTP/2 is not served.
    let plain = Endpoint::from_shared(format!("http://{relay_addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let plain_result = match plain.connect().await {
        Ok(channel) => {
            EventStreamClient::with_interceptor(channel, AttachToken(BearerToken::new(Some(TOKEN))))
                .subscribe(SubscribeRequest::default())
                .await
                .map(|_| ())
        }
        Err(error) => Err(tonic::Status::unavailable(error.to_string())),
    };
    assert!(plain_result.is_err(), "a plain-text caller is refused");

    // TLS without a client certificate is refused too.
    let no_cert = TlsFiles { verify_peer: false, ..client_tls };
    let anonymous = Security { token: Some(TOKEN.into()), tls: Some(no_cert) };
    let result =
        match anonymous.endpoint(&relay_addr.to_string()).expect("endpoint").connect().await {
            Ok(channel) => EventStreamClient::with_interceptor(
                channel,
                AttachToken(BearerToken::new(Some(TOKEN))),
            )
            .subscribe(SubscribeRequest::default())
            .await
            .map(|_| ()),
            Err(error) => Err(tonic::Status::unavailable(error.to_string())),
        };
    assert!(result.is_err(), "a caller without a client certificate is refused");
    stop.cancel();
}
