//! Property tests: for every packet type, version and direction, encoding then decoding gives
//! the packet back, consumes exactly its bytes, and every strict prefix asks for more bytes.

// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mqtt_codec::{ProtocolVersion, Role};
use proptest::prelude::*;

/// A version, and a packet generated for it.
fn with_version<S: Strategy + 'static>(
    f: impl Fn(ProtocolVersion) -> S + 'static,
) -> impl Strategy<Value = (ProtocolVersion, S::Value)> {
    version().prop_flat_map(move |v| (Just(v), f(v)))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn connect_round_trips((v, p) in with_version(connect)) {
        assert_round_trip(&p, v, Role::Server);
    }

    #[test]
    fn connack_round_trips((v, p) in with_version(connack)) {
        assert_round_trip(&p, v, Role::Client);
    }

    #[test]
    fn publish_to_server_round_trips((v, p) in with_version(|v| publish(v, Role::Server))) {
        assert_round_trip(&p, v, Role::Server);
    }

    #[test]
    fn publish_to_client_round_trips((v, p) in with_version(|v| publish(v, Role::Client))) {
        assert_round_trip(&p, v, Role::Client);
    }

    #[test]
    fn pub_responses_round_trip(
        (v, p) in with_version(|v| prop_oneof![puback(v), pubrec(v), pubrel(v), pubcomp(v)]),
        role in role(),
    ) {
        assert_round_trip(&p, v, role);
    }

    #[test]
    fn subscribe_round_trips((v, p) in with_version(subscribe)) {
        assert_round_trip(&p, v, Role::Server);
    }

    #[test]
    fn suback_round_trips((v, p) in with_version(suback)) {
        assert_round_trip(&p, v, Role::Client);
    }

    #[test]
    fn unsubscribe_round_trips((v, p) in with_version(unsubscribe)) {
        assert_round_trip(&p, v, Role::Server);
    }

    #[test]
    fn unsuback_round_trips((v, p) in with_version(unsuback)) {
        assert_round_trip(&p, v, Role::Client);
    }

    #[test]
    fn disconnect_to_server_round_trips((v, p) in with_version(|v| disconnect(v, Role::Server))) {
        assert_round_trip(&p, v, Role::Server);
    }

    #[test]
    fn disconnect_to_client_round_trips(p in disconnect(ProtocolVersion::V5, Role::Client)) {
        assert_round_trip(&p, ProtocolVersion::V5, Role::Client);
    }

    #[test]
    fn auth_round_trips(p in auth(), role in role()) {
        assert_round_trip(&p, ProtocolVersion::V5, role);
    }

    #[test]
    fn any_packet_round_trips(
        (v, role, p) in (version(), role()).prop_flat_map(|(v, r)| (Just(v), Just(r), packet(v, r))),
    ) {
        assert_round_trip(&p, v, role);
    }
}

#[test]
fn pings_round_trip() {
    for v in VERSIONS {
        assert_round_trip(&mqtt_codec::Packet::PingReq, v, Role::Server);
        assert_round_trip(&mqtt_codec::Packet::PingResp, v, Role::Client);
    }
}
