//! Reason codes worded as mosquitto's clients word them (`mosquitto_connack_string` for 3.1.x,
//! `mosquitto_reason_string` for 5.0), so scripts that grep for them keep working.

use mqtt_codec::{ConnAck, ConnectReasonCode, ProtocolVersion};

/// mosquitto's text for an MQTT 5 reason code.
pub fn reason_string(code: u8) -> &'static str {
    match code {
        0x00 => "Success",
        0x01 => "Granted QoS 1",
        0x02 => "Granted QoS 2",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x18 => "Continue authentication",
        0x19 => "Re-authenticate",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => "Unknown reason",
    }
}

/// mosquitto's text for a 3.1 / 3.1.1 CONNACK return code.
pub fn connack_string(return_code: u8) -> &'static str {
    match return_code {
        0 => "Connection Accepted.",
        1 => "Connection Refused: unacceptable protocol version.",
        2 => "Connection Refused: identifier rejected.",
        3 => "Connection Refused: broker unavailable.",
        4 => "Connection Refused: bad user name or password.",
        5 => "Connection Refused: not authorised.",
        _ => "Connection Refused: unknown reason.",
    }
}

/// Why the broker refused: mosquitto's wording, plus the broker's Reason String when it sent one.
pub fn connack_text(ack: &ConnAck, version: ProtocolVersion) -> String {
    if !version.is_v5() {
        return connack_string(ack.reason_code.to_v3()).to_owned();
    }
    let text = reason_string(ack.reason_code.as_u8());
    match &ack.properties.reason_string {
        Some(why) if !why.is_empty() => format!("{text} ({why})"),
        _ => text.to_owned(),
    }
}

/// The exit code for a refused connection: the CONNACK return code (3.1.x) or reason code (5.0),
/// as mosquitto_pub and mosquitto_sub exit with it.
pub fn connack_exit_code(code: ConnectReasonCode, version: ProtocolVersion) -> u8 {
    if version.is_v5() { code.as_u8() } else { code.to_v3() }
}

/// An I/O error as `strerror` would word it ("Connection refused", not "... (os error 111)").
pub fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_like_mosquitto() {
        let ack = ConnAck::new(ConnectReasonCode::NotAuthorized);
        assert_eq!(
            connack_text(&ack, ProtocolVersion::V311),
            "Connection Refused: not authorised."
        );
        assert_eq!(connack_text(&ack, ProtocolVersion::V5), "Not authorized");
        let bad = ConnectReasonCode::BadUserNameOrPassword;
        assert_eq!(connack_exit_code(bad, ProtocolVersion::V311), 4);
        assert_eq!(connack_exit_code(bad, ProtocolVersion::V5), 0x86);
    }

    #[test]
    fn io_errors_drop_the_os_error_number() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_message(&e), "Connection refused");
    }
}
