//! Every service's request and response messages, built with the generated types, survive a prost
//! encode/decode round trip unchanged; and the descriptor set handed to reflection names every
//! service.

use bytes::Bytes;
use prost::Message;
use proto::{auth::v1 as auth, broker::v1 as broker, events::v1 as events, types::v1 as types};

fn roundtrip<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M) {
    let encoded = msg.encode_to_vec();
    assert!(!encoded.is_empty(), "a populated message encodes to bytes");
    let decoded = M::decode(encoded.as_slice()).expect("decodes");
    assert_eq!(&decoded, msg);
}

fn client() -> types::ClientInfo {
    types::ClientInfo {
        client_id: "sensor-1".into(),
        username: Some("client".into()),
        password: Some(Bytes::from_static(b"pub\0lic")),
        peer_address: "192.0.2.7".into(),
        peer_port: 51234,
        listener: "ssl:default".into(),
        transport: types::Transport::Tls.into(),
        protocol_name: "MQTT".into(),
        protocol_version: types::ProtocolVersion::Mqtt5.into(),
        cert_common_name: Some("sensor-1.example".into()),
        cert_subject: Some("CN=sensor-1.example,O=Tern".into()),
        node_id: "node-a".into(),
        mountpoint: None,
        keepalive: 60,
        clean_start: true,
        auth_method: Some("SCRAM-SHA-256".into()),
        auth_data: Some(Bytes::from_static(&[1, 2, 3])),
        user_properties: vec![types::UserProperty { key: "k".into(), value: "v".into() }],
        listener_port: 8883,
    }
}

fn message() -> types::Message {
    types::Message {
        topic: "client/only-one".into(),
        payload: Bytes::from_static(b"\x00\xffhello"),
        qos: types::Qos::ExactlyOnce.into(),
        retain: true,
        dup: false,
        properties: Some(types::MessageProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(30),
            content_type: Some("text/plain".into()),
            response_topic: Some("reply/1".into()),
            correlation_data: Some(Bytes::from_static(b"corr")),
            user_properties: vec![
                types::UserProperty { key: "a".into(), value: "1".into() },
                types::UserProperty { key: "a".into(), value: "2".into() },
            ],
            subscription_identifiers: vec![7, 268_435_455],
        }),
        from_client_id: "sensor-1".into(),
        from_username: Some("client".into()),
        received_at_ms: 1_764_000_000_123,
    }
}

#[test]
fn auth_service_messages_roundtrip() {
    roundtrip(&auth::AuthenticateRequest { client: Some(client()) });
    roundtrip(&auth::AuthenticateResponse {
        decision: auth::Decision::Allow.into(),
        reason_code: 0,
        reason: "password file".into(),
        superuser: false,
        acl: Some(auth::AclPolicy {
            rules: vec![auth::AclRule {
                permit: auth::Decision::Allow.into(),
                action: auth::AclAction::Pubsub.into(),
                topics: vec![auth::AclTopic { filter: "client/only-one".into(), exact: false }],
            }],
            no_match: auth::Decision::Deny.into(),
            deny_action: auth::DenyAction::Disconnect.into(),
        }),
        cache_ttl_ms: 60_000,
        expires_at_ms: 0,
        decided_by: "password_file".into(),
    });
    roundtrip(&auth::AuthorizeRequest {
        client: Some(client()),
        action: auth::Action::Subscribe.into(),
        topics: vec![auth::TopicRequest {
            topic: "$share/g/a/+".into(),
            qos: types::Qos::AtLeastOnce.into(),
            retain: false,
        }],
    });
    roundtrip(&auth::AuthorizeResponse {
        results: vec![auth::TopicDecision {
            decision: auth::Decision::Deny.into(),
            reason_code: 0x87,
            decided_by: "acl_file".into(),
        }],
        cache_ttl_ms: 1000,
        deny_action: auth::DenyAction::Ignore.into(),
    });
    roundtrip(&auth::WatchRevocationsRequest { node_id: "node-a".into() });
    roundtrip(&auth::Revocation {
        scope: Some(auth::revocation::Scope::Username("client".into())),
        disconnect: true,
        reason: "user deleted".into(),
    });
}

#[test]
fn event_messages_roundtrip() {
    use events::event::Payload;
    let payloads = vec![
        Payload::ClientConnect(events::ClientConnect { client: Some(client()) }),
        Payload::ClientConnack(events::ClientConnack {
            client: Some(client()),
            reason_code: 0x86,
            session_present: false,
        }),
        Payload::ClientConnected(events::ClientConnected {
            client: Some(client()),
            session_present: true,
            keepalive: 60,
            session_expiry_interval: 3600,
        }),
        Payload::ClientDisconnected(events::ClientDisconnected {
            client: Some(client()),
            reason_code: 0x8d,
            reason: "keepalive_timeout".into(),
            graceful: false,
        }),
        Payload::ClientSubscribe(events::ClientSubscribe {
            client: Some(client()),
            subscriptions: vec![types::Subscription {
                topic_filter: "a/#".into(),
                qos: types::Qos::AtLeastOnce.into(),
                no_local: true,
                retain_as_published: true,
                retain_handling: 2,
                subscription_identifier: 9,
                share_group: String::new(),
            }],
        }),
        Payload::ClientUnsubscribe(events::ClientUnsubscribe {
            client: Some(client()),
            topic_filters: vec!["a/#".into()],
        }),
        Payload::SessionSubscribed(events::SessionSubscribed {
            client: Some(client()),
            subscription: Some(types::Subscription {
                topic_filter: "$share/g/a/+".into(),
                share_group: "g".into(),
                ..Default::default()
            }),
        }),
        Payload::SessionUnsubscribed(events::SessionUnsubscribed {
            client: Some(client()),
            topic_filter: "a/#".into(),
        }),
        Payload::SessionTerminated(events::SessionTerminated {
            client: Some(client()),
            reason: "expired".into(),
        }),
        Payload::MessagePublish(events::MessagePublish { message: Some(message()) }),
        Payload::MessageDelivered(events::MessageDelivered {
            client: Some(client()),
            message: Some(message()),
        }),
        Payload::MessageAcked(events::MessageAcked {
            client: Some(client()),
            message: Some(message()),
        }),
        Payload::MessageDropped(events::MessageDropped {
            client: None,
            message: Some(message()),
            reason: "no_subscribers".into(),
        }),
    ];
    let batch = events::EventBatch {
        node_id: "node-a".into(),
        incarnation: 42,
        events: payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence = i as u64 + 1;
                events::Event {
                    id: format!("node-a/42/{sequence}"),
                    node_id: "node-a".into(),
                    incarnation: 42,
                    sequence,
                    timestamp_ms: 1_764_000_000_000 + sequence,
                    payload: Some(payload),
                }
            })
            .collect(),
        first_sequence: 0,
    };
    assert_eq!(batch.events.len(), 13, "one event of each type");
    roundtrip(&batch);
    roundtrip(&events::Ack { durable_sequence: 13, incarnation: 42, wanted_types: vec![10, 2] });
    roundtrip(&events::SubscribeRequest {
        types: vec![events::EventType::MessagePublish.into()],
        topic_filters: vec!["sensors/+/temp".into()],
        node_ids: vec![],
        start_offset: Some(100),
    });
    roundtrip(&events::StreamEvent { offset: 100, event: batch.events.first().cloned() });
}

#[test]
fn broker_admin_messages_roundtrip() {
    roundtrip(&broker::ListClientsRequest {
        client_id: None,
        username: Some("client".into()),
        conn_state: broker::ConnState::Connected.into(),
        clean_start: Some(true),
        proto_name: Some("MQTT".into()),
        proto_ver: Some(5),
        like_client_id: Some("sens".into()),
        like_username: None,
        ip_address: Some("192.0.2.7".into()),
        limit: 10,
        offset: 5,
    });
    let details = broker::ClientDetails {
        client: Some(client()),
        conn_state: broker::ConnState::Disconnected.into(),
        keepalive: 60,
        session_expiry_interval: 3600,
        connected_at_ms: 1,
        disconnected_at_ms: Some(2),
        will_topic: Some("will/t".into()),
        will_payload: Some(Bytes::from_static(b"bye")),
        subscriptions: 2,
        queue_len: 3,
        inflight: 4,
        messages_received: 5,
        messages_sent: 6,
        messages_dropped: 7,
        node_id: "node-a".into(),
        superuser: false,
    };
    roundtrip(&broker::ListClientsResponse { clients: vec![details.clone()], total: 1 });
    roundtrip(&details);
    roundtrip(&broker::GetClientRequest { client_id: "sensor-1".into() });
    roundtrip(&broker::KickClientRequest { client_id: "sensor-1".into(), discard_session: true });
    roundtrip(&broker::KickClientResponse { was_connected: true });
    roundtrip(&broker::ListSubscriptionsRequest {
        client_id: Some("sensor-1".into()),
        topic: None,
        match_topic: Some("a/b".into()),
        qos: Some(types::Qos::AtLeastOnce.into()),
        share: Some("g".into()),
        limit: 0,
        offset: 0,
    });
    roundtrip(&broker::SubscribeRequest {
        client_id: "sensor-1".into(),
        subscriptions: vec![types::Subscription {
            topic_filter: "x/y".into(),
            ..Default::default()
        }],
    });
    roundtrip(&broker::SubscribeResponse { reason_codes: vec![0, 1, 0x8f] });
    roundtrip(&broker::UnsubscribeRequest {
        client_id: "sensor-1".into(),
        topic_filters: vec!["x/y".into()],
    });
    roundtrip(&broker::TopicTreeResponse {
        roots: vec![broker::TopicNode {
            level: "a".into(),
            client_ids: vec![],
            children: vec![broker::TopicNode {
                level: "+".into(),
                client_ids: vec!["sensor-1".into()],
                children: vec![],
            }],
        }],
    });
    roundtrip(&broker::PublishRequest { message: Some(message()) });
    roundtrip(&broker::PublishResponse { matched: 3 });
    roundtrip(&broker::BrokerStats {
        node_id: "node-a".into(),
        version: "0.1.0".into(),
        uptime_seconds: 10,
        connections: 2,
        messages_received: 100,
        cpu_percent: 12.5,
        ..Default::default()
    });
}

#[test]
fn descriptor_set_names_every_service() {
    let fds = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("decodes");
    let mut services: Vec<String> = fds
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().map(move |s| format!("{package}.{}", s.name()))
        })
        .collect();
    services.sort();
    let mut expected: Vec<String> = proto::SERVICE_NAMES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(services, expected);
}
