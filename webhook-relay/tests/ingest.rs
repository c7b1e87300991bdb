//! `EventIngest.Publish` with bytes a broker would not send: a real relay (this crate's library)
//! on port 0, a gRPC client that writes the batch bytes itself, and a real HTTP receiver.

mod common;

use bytes::Bytes;
use common::{Receiver, RunningRelay, WAIT, config};
use prost::Message as _;
use proto::{
    events::v1::{self as pb, Ack, Event, EventBatch, event::Payload},
    types::v1::ClientInfo,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Opens a Publish stream to `addr`; returns the batch sender and the acks.
async fn stream(addr: std::net::SocketAddr) -> (mpsc::Sender<Bytes>, tonic::Streaming<Ack>) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let (tx, rx) = mpsc::channel(4);
    let acks = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/tern.events.v1.EventIngest/Publish",
            ),
            proto::grpc::EncodedRequests::<Ack>::default(),
        )
        .await
        .expect("publish")
        .into_inner();
    (tx, acks)
}

fn connected(sequence: u64, client_id: &str) -> Event {
    Event {
        id: format!("n1/1/{sequence}"),
        node_id: "n1".into(),
        incarnation: 1,
        sequence,
        timestamp_ms: 1_700_000_000_000,
        payload: Some(Payload::ClientConnected(pb::ClientConnected {
            client: Some(ClientInfo { client_id: client_id.into(), ..Default::default() }),
            ..Default::default()
        })),
    }
}

/// The next ack that reports something durable.
async fn durable(acks: &mut tonic::Streaming<Ack>) -> Result<u64, Status> {
    loop {
        let ack = tokio::time::timeout(WAIT, acks.message())
            .await
            .expect("an answer in time")?
            .expect("the stream stays open");
        if ack.durable_sequence > 0 {
            return Ok(ack.durable_sequence);
        }
    }
}

async fn relay(receiver: &Receiver) -> (tempfile::TempDir, RunningRelay) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (listener, _) = test_support::bind_tokio().await;
    let text = format!(
        "webhooks.main {{\n  url = \"{}\"\n  events = [{{event = on_client_connected}}]\n}}\nwebhook_relay.outbox = \"{}\"\n",
        receiver.url("hook"),
        dir.path().join("outbox.redb").display()
    );
    let relay = RunningRelay::start(&config(&text, dir.path()), listener).await;
    (dir, relay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_broken_framing_is_refused_and_nothing_of_it_is_taken() {
    test_support::install_crypto_provider();
    let receiver = Receiver::start().await;
    let (_dir, relay) = relay(&receiver).await;
    let good = EventBatch {
        node_id: "n1".into(),
        incarnation: 1,
        events: vec![connected(1, "c1")],
        first_sequence: 0,
    }
    .encode_to_vec();
    // The batch cut short: its event's length runs past the end.
    let (tx, mut acks) = stream(relay.addr).await;
    tx.send(Bytes::copy_from_slice(&good[..good.len() - 2])).await.expect("send");
    let status = durable(&mut acks).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "malformed event batch: a field's length runs past the end");
    assert_eq!(relay.metric(|m| &m.ingested), 0);

    // The same batch whole, on a new stream, is taken and delivered.
    let (tx, mut acks) = stream(relay.addr).await;
    tx.send(Bytes::from(good)).await.expect("send");
    assert_eq!(durable(&mut acks).await.expect("acked"), 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].event_id, "n1/1/1");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_does_not_decode_is_dead_lettered_and_the_next_one_delivered() {
    test_support::install_crypto_provider();
    let receiver = Receiver::start().await;
    let (_dir, relay) = relay(&receiver).await;
    // Event 1: framed correctly, but its client_connected payload (field 12) holds a truncated
    // varint, which only a full decode notices. Event 2 is sound.
    let mut bad = Event { payload: None, ..connected(1, "c1") }.encode_to_vec();
    bad.extend_from_slice(&[(12 << 3) | 2, 1, 0xff]);
    assert!(Event::decode(bad.as_slice()).is_err());
    let mut batch =
        EventBatch { node_id: "n1".into(), incarnation: 1, events: vec![], first_sequence: 0 }
            .encode_to_vec();
    for event in [bad, connected(2, "c1").encode_to_vec()] {
        batch.push((3 << 3) | 2);
        prost::encoding::encode_varint(event.len() as u64, &mut batch);
        batch.extend_from_slice(&event);
    }
    let (tx, mut acks) = stream(relay.addr).await;
    tx.send(Bytes::from(batch)).await.expect("send");
    assert_eq!(durable(&mut acks).await.expect("acked"), 2, "framing is all intake checks");

    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].event_id, "n1/1/2");
    test_support::eventually(WAIT, || async {
        (relay.metric(|m| &m.dead_lettered) == 1).then_some(())
    })
    .await
    .expect("the undecodable event is a dead letter");
    let dead = relay.relay.dead_letters(None, 10).await.unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].offset, 1);
    assert!(dead[0].reason.starts_with("the event does not decode: "), "{}", dead[0].reason);
    assert_eq!(relay.metric(|m| &m.retried), 0);
    assert_eq!(receiver.received().len(), 1, "nothing was sent for it");
    relay.stop().await;
}
