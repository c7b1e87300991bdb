//! Runs the fuzz target's checks (`fuzz/check.rs`) without a nightly toolchain: on every file of
//! the seed corpus, and on a few thousand deterministic mutations of it. An ignored test
//! regenerates the seed corpus: `cargo test -p mqtt-codec --test fuzz_seeds -- --ignored`.

// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "../fuzz/check.rs"]
mod check;

use std::num::{NonZeroU16, NonZeroU32};
use std::path::PathBuf;

use mqtt_codec::bytes::{Bytes, BytesMut};
use mqtt_codec::bytestring::ByteString;
use mqtt_codec::*;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<_> = std::fs::read_dir(seed_dir())
        .expect("seed directory")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("seed file"))
        })
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn seed_corpus_passes_the_fuzz_checks() {
    let seeds = seeds();
    assert!(seeds.len() >= 24, "only {} seeds", seeds.len());
    for (name, data) in &seeds {
        eprintln!("seed {name}");
        check::check(data);
    }
}

/// xorshift64*: a tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_seeds_pass_the_fuzz_checks() {
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let (_, seed) = &seeds[rng.below(seeds.len())];
        let mut data = seed.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
                1 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                2 if !data.is_empty() => {
                    let len = rng.below(data.len());
                    data.truncate(len);
                }
                _ => {
                    let i = rng.below(data.len() + 1);
                    data.insert(i, rng.next() as u8);
                }
            }
        }
        check::check(&data);
    }
    // And pure noise.
    for _ in 0..2000 {
        let len = rng.below(48);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check::check(&data);
    }
}

// ---------------------------------------------------------------- seed generation

fn s(text: &str) -> ByteString {
    ByteString::from(text)
}

fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).unwrap()
}

fn user() -> Vec<UserProperty> {
    vec![(s("k"), s("v"))]
}

fn client_packets(version: ProtocolVersion) -> Vec<Packet> {
    let v5 = version.is_v5();
    let mut connect = Connect {
        clean_start: true,
        will: Some(LastWill {
            topic: s("will/t"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(Bytes::from_static(b"pass")),
        ..Connect::new(version, s("client"), 60)
    };
    let mut publish = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(1)),
        ..Publish::new(s("a/b"), Bytes::from_static(b"hello"))
    };
    let mut subscribe = Subscribe {
        packet_id: pid(2),
        subscriptions: vec![
            Subscription {
                filter: s("a/+/c"),
                options: SubscriptionOptions { qos: QoS::ExactlyOnce, ..Default::default() },
            },
            Subscription { filter: s("$share/g/x/#"), options: SubscriptionOptions::default() },
        ],
        properties: SubscribeProperties::default(),
    };
    let mut unsubscribe = Unsubscribe {
        packet_id: pid(3),
        filters: vec![s("a/+/c"), s("#")],
        properties: UnsubscribeProperties::default(),
    };
    let mut disconnect = Disconnect::new(DisconnectReasonCode::NormalDisconnection);
    let mut puback = PubAck::new(pid(4));
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(60),
            receive_maximum: NonZeroU16::new(10),
            maximum_packet_size: NonZeroU32::new(4096),
            topic_alias_maximum: Some(5),
            request_problem_information: Some(false),
            user_properties: user(),
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(Bytes::from_static(b"\x01\x02")),
            ..Default::default()
        };
        if let Some(will) = &mut connect.will {
            will.properties = WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(true),
                response_topic: Some(s("re/ply")),
                user_properties: user(),
                ..Default::default()
            };
        }
        publish.properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(30),
            topic_alias: NonZeroU16::new(1),
            correlation_data: Some(Bytes::from_static(b"cd")),
            user_properties: user(),
            content_type: Some(s("text/plain")),
            ..Default::default()
        };
        subscribe.properties.subscription_identifier = NonZeroU32::new(7);
        subscribe.subscriptions[0].options.no_local = true;
        subscribe.subscriptions[0].options.retain_handling = RetainHandling::DoNotSend;
        unsubscribe.properties.user_properties = user();
        disconnect = Disconnect {
            reason_code: DisconnectReasonCode::DisconnectWithWillMessage,
            properties: DisconnectProperties {
                session_expiry_interval: Some(0),
                reason_string: Some(s("bye")),
                ..Default::default()
            },
        };
        puback.reason_code = PubAckReasonCode::NoMatchingSubscribers;
    }
    let mut packets: Vec<Packet> = vec![
        connect.into(),
        publish.into(),
        Publish::new(s("x"), Bytes::new()).into(),
        puback.into(),
        PubRec::new(pid(5)).into(),
        PubRel::new(pid(5)).into(),
        PubComp::new(pid(5)).into(),
        subscribe.into(),
        unsubscribe.into(),
        Packet::PingReq,
    ];
    if v5 {
        packets.push(
            Auth {
                reason_code: AuthReasonCode::ContinueAuthentication,
                properties: AuthProperties {
                    authentication_method: Some(s("SCRAM")),
                    authentication_data: Some(Bytes::from_static(b"\x03")),
                    ..Default::default()
                },
            }
            .into(),
        );
    }
    packets.push(disconnect.into());
    packets
}

fn server_packets(version: ProtocolVersion) -> Vec<Packet> {
    let v5 = version.is_v5();
    let mut connack = ConnAck { session_present: true, ..ConnAck::new(ConnectReasonCode::Success) };
    let mut publish = Publish {
        qos: QoS::ExactlyOnce,
        retain: true,
        packet_id: Some(pid(9)),
        ..Publish::new(s("s/t"), Bytes::from_static(b"{}"))
    };
    let mut suback = SubAck {
        packet_id: pid(2),
        reason_codes: vec![SubAckReasonCode::GrantedQoS2, SubAckReasonCode::UnspecifiedError],
        properties: AckProperties::default(),
    };
    let mut unsuback =
        UnsubAck { packet_id: pid(3), reason_codes: vec![], properties: AckProperties::default() };
    if v5 {
        connack.properties = ConnAckProperties {
            receive_maximum: NonZeroU16::new(20),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            assigned_client_identifier: Some(s("auto-1")),
            topic_alias_maximum: Some(8),
            reason_string: Some(s("ok")),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(30),
            ..Default::default()
        };
        publish.properties.subscription_identifiers =
            vec![NonZeroU32::new(7).unwrap(), NonZeroU32::new(70_000).unwrap()];
        publish.properties.response_topic = Some(s("re/ply"));
        suback.properties.reason_string = Some(s("partly"));
        suback.reason_codes[1] = SubAckReasonCode::SharedSubscriptionsNotSupported;
        unsuback.reason_codes =
            vec![UnsubAckReasonCode::Success, UnsubAckReasonCode::NoSubscriptionExisted];
    }
    let mut packets: Vec<Packet> = vec![
        connack.into(),
        publish.into(),
        PubAck::new(pid(1)).into(),
        suback.into(),
        unsuback.into(),
        Packet::PingResp,
    ];
    if v5 {
        let moved = Disconnect {
            reason_code: DisconnectReasonCode::UseAnotherServer,
            properties: DisconnectProperties {
                server_reference: Some(s("other:1883")),
                user_properties: user(),
                ..Default::default()
            },
        };
        packets.push(moved.into());
    }
    packets
}

fn encode_all(packets: &[Packet], version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for packet in packets {
        encode(packet, version, &mut buf).unwrap();
    }
    buf.to_vec()
}

/// The seed corpus, generated from the packets above: file name -> bytes.
fn generated_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for version in ProtocolVersion::ALL {
        let tag = match version {
            ProtocolVersion::V31 => "v31",
            ProtocolVersion::V311 => "v311",
            ProtocolVersion::V5 => "v5",
        };
        let client = client_packets(version);
        let server = server_packets(version);
        out.push((format!("{tag}-client-stream"), encode_all(&client, version)));
        out.push((format!("{tag}-server-stream"), encode_all(&server, version)));
        for packet in client.iter().chain(&server) {
            let name = format!("{tag}-{}", packet.packet_type()).to_lowercase();
            let mut unique = name.clone();
            let mut n = 2;
            while out.iter().any(|(existing, _)| *existing == unique) {
                unique = format!("{name}-{n}");
                n += 1;
            }
            out.push((unique, encode_all(std::slice::from_ref(packet), version)));
        }
    }
    out
}

/// The committed seeds are exactly what the packet lists above produce. After changing those
/// lists, regenerate with `TERN_WRITE_SEEDS=1 cargo test -p mqtt-codec --test fuzz_seeds`.
#[test]
fn committed_seed_corpus_is_up_to_date() {
    let dir = seed_dir();
    let generated = generated_seeds();
    if std::env::var_os("TERN_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &generated {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in &generated {
        let committed = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("seed {name} missing ({e}); regenerate the seeds"));
        assert_eq!(&committed, bytes, "seed {name} is stale; regenerate the seeds");
    }
}
