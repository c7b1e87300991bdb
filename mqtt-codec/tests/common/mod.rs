//! Shared test helpers: proptest strategies generating only valid packets for a version and a
//! direction, and a round-trip checker.
#![allow(dead_code)]

use std::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::bytes::{Bytes, BytesMut};
use mqtt_codec::bytestring::ByteString;
use mqtt_codec::*;
use proptest::prelude::*;
use proptest::sample::select;

pub const VERSIONS: [ProtocolVersion; 3] = ProtocolVersion::ALL;

/// Proptest configuration: `cases` per property, no regression files (integration tests have no
/// `lib.rs` for proptest to place them next to; failures print the minimal input instead).
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

pub fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(VERSIONS.to_vec())
}

pub fn role() -> impl Strategy<Value = Role> {
    select(vec![Role::Server, Role::Client])
}

// ----- primitive values -----

pub fn text() -> impl Strategy<Value = ByteString> {
    "[^\\x00]{0,12}".prop_map(ByteString::from)
}

pub fn binary() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

pub fn payload() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| NonZeroU16::new(id).expect("non-zero"))
}

pub fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

pub fn sub_id() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![1..200u32, 1..=MAX_VARIABLE_INTEGER]
        .prop_map(|id| NonZeroU32::new(id).expect("non-zero"))
}

pub fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    prop::collection::vec((text(), text()), 0..3)
}

fn level() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ $é€😀-]{0,6}"
}

pub fn topic_name() -> impl Strategy<Value = ByteString> {
    ("[a-zA-Z0-9_$é€😀-]{1,6}", prop::collection::vec(level(), 0..4)).prop_map(|(first, rest)| {
        let mut topic = first;
        for l in rest {
            topic.push('/');
            topic.push_str(&l);
        }
        ByteString::from(topic)
    })
}

pub fn topic_filter() -> impl Strategy<Value = ByteString> {
    let level = prop_oneof![3 => level(), 1 => Just("+".to_string())];
    (
        prop::collection::vec(level, 1..4),
        any::<bool>(),
        prop::option::weighted(0.2, "[a-z0-9]{1,5}"),
    )
        .prop_map(|(levels, hash, share)| {
            let mut filter = levels.join("/");
            if hash {
                filter.push_str("/#");
            }
            if filter.is_empty() {
                filter.push('#');
            }
            match share {
                Some(group) => ByteString::from(format!("$share/{group}/{filter}")),
                None => ByteString::from(filter),
            }
        })
}

fn opt<T: Strategy>(s: T) -> impl Strategy<Value = Option<T::Value>> {
    prop::option::of(s)
}

fn non_zero_u16() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|v| NonZeroU16::new(v).expect("non-zero"))
}

fn non_zero_u32() -> impl Strategy<Value = NonZeroU32> {
    (1..=u32::MAX).prop_map(|v| NonZeroU32::new(v).expect("non-zero"))
}

// ----- properties -----

pub fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        opt(any::<u32>()),
        opt(non_zero_u16()),
        opt(non_zero_u32()),
        opt(any::<u16>()),
        opt(any::<bool>()),
        opt(any::<bool>()),
        user_properties(),
        opt((text(), opt(binary()))),
    )
        .prop_map(|(sei, rm, mps, tam, rri, rpi, user, auth)| ConnectProperties {
            session_expiry_interval: sei,
            receive_maximum: rm,
            maximum_packet_size: mps,
            topic_alias_maximum: tam,
            request_response_information: rri,
            request_problem_information: rpi,
            user_properties: user,
            authentication_method: auth.as_ref().map(|(m, _)| m.clone()),
            authentication_data: auth.and_then(|(_, d)| d),
        })
}

pub fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        opt(any::<u32>()),
        opt(any::<bool>()),
        opt(any::<u32>()),
        opt(text()),
        opt(topic_name()),
        opt(binary()),
        user_properties(),
    )
        .prop_map(|(delay, pfi, mei, ct, rt, cd, user)| WillProperties {
            will_delay_interval: delay,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: user,
        })
}

pub fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    (
        (
            opt(any::<u32>()),
            opt(non_zero_u16()),
            opt(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
            opt(any::<bool>()),
            opt(non_zero_u32()),
            opt(text()),
            opt(any::<u16>()),
            opt(text()),
            user_properties(),
        ),
        (
            opt(any::<bool>()),
            opt(any::<bool>()),
            opt(any::<bool>()),
            opt(any::<u16>()),
            opt(text()),
            opt(text()),
            opt(text()),
            opt(binary()),
        ),
    )
        .prop_map(
            |((sei, rm, mq, ra, mps, aci, tam, rs, user), (wsa, sia, ssa, ska, ri, sr, am, ad))| {
                ConnAckProperties {
                    session_expiry_interval: sei,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    user_properties: user,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: am,
                    authentication_data: ad,
                }
            },
        )
}

pub fn publish_properties(role: Role) -> impl Strategy<Value = PublishProperties> {
    // Only servers send Subscription Identifiers, so only clients (Role::Client) decode them.
    let max_ids = if role == Role::Client { 3 } else { 0 };
    (
        opt(any::<bool>()),
        opt(any::<u32>()),
        opt(non_zero_u16()),
        opt(topic_name()),
        opt(binary()),
        user_properties(),
        prop::collection::vec(sub_id(), 0..=max_ids),
        opt(text()),
    )
        .prop_map(|(pfi, mei, alias, rt, cd, user, ids, ct)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: alias,
            response_topic: rt,
            correlation_data: cd,
            user_properties: user,
            subscription_identifiers: ids,
            content_type: ct,
        })
}

pub fn ack_properties(version: ProtocolVersion) -> BoxedStrategy<AckProperties> {
    if !version.is_v5() {
        return Just(AckProperties::default()).boxed();
    }
    (opt(text()), user_properties())
        .prop_map(|(reason_string, user_properties)| AckProperties {
            reason_string,
            user_properties,
        })
        .boxed()
}

// ----- packets -----

pub fn connect(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    let will = opt((
        topic_name(),
        payload(),
        qos(),
        any::<bool>(),
        if v5 { will_properties().boxed() } else { Just(WillProperties::default()).boxed() },
    ));
    let properties =
        if v5 { connect_properties().boxed() } else { Just(ConnectProperties::default()).boxed() };
    (any::<bool>(), any::<u16>(), text(), will, opt(text()), opt(binary()), properties).prop_map(
        move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
            let client_id = match version {
                ProtocolVersion::V31 if client_id.is_empty() => ByteString::from("c"),
                ProtocolVersion::V311 if client_id.is_empty() && !clean_start => {
                    ByteString::from("c")
                }
                _ => client_id,
            };
            // 3.1/3.1.1 forbid a password without a user name.
            let password = if v5 || username.is_some() { password } else { None };
            Packet::from(Connect {
                protocol_version: version,
                clean_start,
                keep_alive,
                client_id,
                will: will.map(|(topic, payload, qos, retain, properties)| LastWill {
                    topic,
                    payload,
                    qos,
                    retain,
                    properties,
                }),
                username,
                password,
                properties,
            })
        },
    )
}

pub fn connack(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes: Vec<ConnectReasonCode> = if version.is_v5() {
        (0..=u8::MAX).filter_map(ConnectReasonCode::from_u8).collect()
    } else {
        (0..=5).filter_map(ConnectReasonCode::from_v3).collect()
    };
    let properties = if version.is_v5() {
        connack_properties().boxed()
    } else {
        Just(ConnAckProperties::default()).boxed()
    };
    (any::<bool>(), select(codes), properties).prop_map(
        |(session_present, reason_code, properties)| {
            Packet::from(ConnAck {
                session_present: session_present && !reason_code.is_error(),
                reason_code,
                properties,
            })
        },
    )
}

pub fn publish(version: ProtocolVersion, role: Role) -> impl Strategy<Value = Packet> {
    let properties = if version.is_v5() {
        publish_properties(role).boxed()
    } else {
        Just(PublishProperties::default()).boxed()
    };
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        payload(),
        properties,
        any::<bool>(),
    )
        .prop_map(|(qos, dup, retain, topic, id, payload, properties, drop_topic)| {
            // 5.0 may replace the topic by an alias.
            let topic = if drop_topic && properties.topic_alias.is_some() {
                ByteString::new()
            } else {
                topic
            };
            Packet::Publish(Publish {
                dup: dup && qos != QoS::AtMostOnce,
                qos,
                retain,
                topic,
                packet_id: (qos != QoS::AtMostOnce).then_some(id),
                payload,
                properties,
            })
        })
}

fn pub_response<C: PubReasonCode + 'static>(
    version: ProtocolVersion,
) -> impl Strategy<Value = PubResponse<C>> {
    let codes: Vec<C> = if version.is_v5() {
        (0..=u8::MAX).filter_map(C::from_u8).collect()
    } else {
        vec![C::SUCCESS]
    };
    (packet_id(), select(codes), ack_properties(version)).prop_map(
        |(packet_id, reason_code, properties)| PubResponse { packet_id, reason_code, properties },
    )
}

pub fn puback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    pub_response::<PubAckReasonCode>(version).prop_map(Packet::PubAck)
}

pub fn pubrec(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    pub_response::<PubRecReasonCode>(version).prop_map(Packet::PubRec)
}

pub fn pubrel(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    pub_response::<PubRelReasonCode>(version).prop_map(Packet::PubRel)
}

pub fn pubcomp(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    pub_response::<PubCompReasonCode>(version).prop_map(Packet::PubComp)
}

pub fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    let options = (
        qos(),
        any::<bool>(),
        any::<bool>(),
        select(vec![
            RetainHandling::SendAtSubscribe,
            RetainHandling::SendAtSubscribeIfNew,
            RetainHandling::DoNotSend,
        ]),
    );
    let subscription = (topic_filter(), options).prop_map(
        move |(filter, (qos, no_local, retain_as_published, retain_handling))| {
            let options = if v5 {
                SubscriptionOptions {
                    qos,
                    // No Local is forbidden on shared subscriptions.
                    no_local: no_local && parse_shared(&filter).is_none(),
                    retain_as_published,
                    retain_handling,
                }
            } else {
                SubscriptionOptions { qos, ..SubscriptionOptions::default() }
            };
            Subscription { filter, options }
        },
    );
    let properties = if v5 {
        (opt(sub_id()), user_properties())
            .prop_map(|(subscription_identifier, user_properties)| SubscribeProperties {
                subscription_identifier,
                user_properties,
            })
            .boxed()
    } else {
        Just(SubscribeProperties::default()).boxed()
    };
    (packet_id(), prop::collection::vec(subscription, 1..5), properties).prop_map(
        |(packet_id, subscriptions, properties)| {
            Packet::Subscribe(Subscribe { packet_id, subscriptions, properties })
        },
    )
}

pub fn suback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes: Vec<SubAckReasonCode> = if version.is_v5() {
        (0..=u8::MAX).filter_map(SubAckReasonCode::from_u8).collect()
    } else {
        vec![
            SubAckReasonCode::GrantedQoS0,
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::GrantedQoS2,
            SubAckReasonCode::UnspecifiedError,
        ]
    };
    (packet_id(), prop::collection::vec(select(codes), 1..5), ack_properties(version)).prop_map(
        |(packet_id, reason_codes, properties)| {
            Packet::SubAck(SubAck { packet_id, reason_codes, properties })
        },
    )
}

pub fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let properties = if version.is_v5() {
        user_properties()
            .prop_map(|user_properties| UnsubscribeProperties { user_properties })
            .boxed()
    } else {
        Just(UnsubscribeProperties::default()).boxed()
    };
    (packet_id(), prop::collection::vec(topic_filter(), 1..5), properties).prop_map(
        |(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe { packet_id, filters, properties })
        },
    )
}

pub fn unsuback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if version.is_v5() {
        let all: Vec<UnsubAckReasonCode> =
            (0..=u8::MAX).filter_map(UnsubAckReasonCode::from_u8).collect();
        prop::collection::vec(select(all), 1..5).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (packet_id(), codes, ack_properties(version)).prop_map(
        |(packet_id, reason_codes, properties)| {
            Packet::UnsubAck(UnsubAck { packet_id, reason_codes, properties })
        },
    )
}

pub fn disconnect(version: ProtocolVersion, role: Role) -> impl Strategy<Value = Packet> {
    if !version.is_v5() {
        return Just(Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::NormalDisconnection,
        )))
        .boxed();
    }
    let codes: Vec<DisconnectReasonCode> =
        (0..=u8::MAX).filter_map(DisconnectReasonCode::from_u8).collect();
    // Servers never send a Session Expiry Interval in DISCONNECT.
    let session_expiry =
        if role == Role::Server { opt(any::<u32>()).boxed() } else { Just(None).boxed() };
    (select(codes), session_expiry, opt(text()), user_properties(), opt(text()))
        .prop_map(|(reason_code, sei, reason_string, user_properties, server_reference)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties: DisconnectProperties {
                    session_expiry_interval: sei,
                    reason_string,
                    user_properties,
                    server_reference,
                },
            })
        })
        .boxed()
}

pub fn auth() -> impl Strategy<Value = Packet> {
    let codes = vec![
        AuthReasonCode::Success,
        AuthReasonCode::ContinueAuthentication,
        AuthReasonCode::ReAuthenticate,
    ];
    let full = (select(codes), text(), opt(binary()), opt(text()), user_properties()).prop_map(
        |(reason_code, method, data, reason_string, user_properties)| {
            Packet::Auth(Auth {
                reason_code,
                properties: AuthProperties {
                    authentication_method: Some(method),
                    authentication_data: data,
                    reason_string,
                    user_properties,
                },
            })
        },
    );
    let empty = Just(Packet::Auth(Auth {
        reason_code: AuthReasonCode::Success,
        properties: AuthProperties::default(),
    }));
    prop_oneof![4 => full, 1 => empty]
}

/// Any packet that a peer in `role` may receive under `version`.
pub fn packet(version: ProtocolVersion, role: Role) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        publish(version, role),
        puback(version),
        pubrec(version),
        pubrel(version),
        pubcomp(version),
    ];
    let mut all: Vec<BoxedStrategy<Packet>> = vec![common.boxed()];
    match role {
        Role::Server => {
            all.push(connect(version).boxed());
            all.push(subscribe(version).boxed());
            all.push(unsubscribe(version).boxed());
            all.push(Just(Packet::PingReq).boxed());
            all.push(disconnect(version, role).boxed());
        }
        Role::Client => {
            all.push(connack(version).boxed());
            all.push(suback(version).boxed());
            all.push(unsuback(version).boxed());
            all.push(Just(Packet::PingResp).boxed());
            if version.is_v5() {
                all.push(disconnect(version, role).boxed());
            }
        }
    }
    if version.is_v5() {
        all.push(auth().boxed());
    }
    proptest::strategy::Union::new(all).boxed()
}

/// The context a receiver in `role` has when `packet` arrives.
pub fn context(packet: &Packet, version: ProtocolVersion, role: Role) -> DecodeContext {
    DecodeContext {
        role,
        version: match packet {
            Packet::Connect(_) => None,
            _ => Some(version),
        },
        max_packet_size: MAX_PACKET_SIZE,
    }
}

/// Encodes `packet`, checks the encoded length, that every strict prefix needs more bytes, that
/// decoding gives the packet back and consumes exactly its bytes. Returns the encoding.
pub fn assert_round_trip(packet: &Packet, version: ProtocolVersion, role: Role) -> Bytes {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("encode");
    assert_eq!(buf.len(), encoded_len(packet, version).expect("encoded_len"));
    let bytes = buf.clone().freeze();

    let ctx = context(packet, version, role);
    for n in 0..bytes.len() {
        let mut partial = BytesMut::from(&bytes[..n]);
        let mut c = ctx;
        assert_eq!(decode(&mut partial, &mut c), Ok(None), "prefix of {n} bytes");
        assert_eq!(partial.len(), n, "a prefix must be left untouched");
    }

    // Two copies back to back: each decode takes exactly one packet.
    buf.extend_from_slice(&bytes);
    let mut c = ctx;
    let decoded = decode(&mut buf, &mut c).expect("decode").expect("complete packet");
    assert_eq!(&decoded, packet);
    assert_eq!(buf.len(), bytes.len());
    if let Packet::Connect(_) = packet {
        assert_eq!(c.version, Some(version));
        c.version = Some(version);
        // A second CONNECT is refused by a server.
        assert_eq!(decode(&mut buf, &mut c), Err(DecodeError::DuplicateConnect));
    } else {
        assert_eq!(decode(&mut buf, &mut c).expect("decode").as_ref(), Some(packet));
        assert!(buf.is_empty());
    }

    if let Packet::Publish(publish) = packet {
        let mut header = BytesMut::new();
        encode_publish_header(publish, version, &mut header).expect("header");
        header.extend_from_slice(&publish.payload);
        assert_eq!(&header[..], &bytes[..]);
        let mut direct = BytesMut::new();
        encode_publish(publish, version, &mut direct).expect("encode_publish");
        assert_eq!(&direct[..], &bytes[..]);
        assert_eq!(publish.encoded_len(version).expect("len"), bytes.len());
    }
    bytes
}
