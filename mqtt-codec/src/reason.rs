//! Reason codes (MQTT 5.0 §2.4): one enum per packet with exactly the values the specification
//! allows in it, a union [`ReasonCode`] for error reporting, and the mappings to the 3.1/3.1.1
//! CONNACK return codes and SUBACK failure code.

use crate::types::QoS;

/// Defines a `#[repr(u8)]` reason code enum with its wire conversions.
macro_rules! reason_codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// The wire value.
            pub const fn as_u8(self) -> u8 {
                self as u8
            }

            /// The code for a wire value, if the specification allows it here.
            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $( $value => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// Whether the code reports a failure (values 0x80 and above).
            pub const fn is_error(self) -> bool {
                self.as_u8() >= 0x80
            }
        }

        impl From<$name> for u8 {
            fn from(code: $name) -> u8 {
                code as u8
            }
        }

        impl TryFrom<u8> for $name {
            type Error = u8;

            fn try_from(value: u8) -> Result<Self, u8> {
                Self::from_u8(value).ok_or(value)
            }
        }
    };
}

/// Converts a per-packet code into the union: every per-packet value exists there.
macro_rules! into_union {
    ($($name:ident),+) => {
        $(
            impl From<$name> for ReasonCode {
                fn from(code: $name) -> ReasonCode {
                    ReasonCode::from_u8(code.as_u8()).unwrap_or(ReasonCode::UnspecifiedError)
                }
            }
        )+
    };
}

reason_codes! {
    /// Every MQTT 5.0 reason code value, whatever the packet. Used to report decoding errors; the
    /// per-packet enums are what goes on the wire.
    pub enum ReasonCode {
        /// 0x00 Success / Normal disconnection / Granted QoS 0.
        Success = 0x00,
        /// 0x01 Granted QoS 1.
        GrantedQoS1 = 0x01,
        /// 0x02 Granted QoS 2.
        GrantedQoS2 = 0x02,
        /// 0x04 Disconnect with Will Message.
        DisconnectWithWillMessage = 0x04,
        /// 0x10 No matching subscribers.
        NoMatchingSubscribers = 0x10,
        /// 0x11 No subscription existed.
        NoSubscriptionExisted = 0x11,
        /// 0x18 Continue authentication.
        ContinueAuthentication = 0x18,
        /// 0x19 Re-authenticate.
        ReAuthenticate = 0x19,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x81 Malformed Packet: the packet cannot be parsed.
        MalformedPacket = 0x81,
        /// 0x82 Protocol Error: parsed, but not allowed by the protocol.
        ProtocolError = 0x82,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x84 Unsupported Protocol Version.
        UnsupportedProtocolVersion = 0x84,
        /// 0x85 Client Identifier not valid.
        ClientIdentifierNotValid = 0x85,
        /// 0x86 Bad User Name or Password.
        BadUserNameOrPassword = 0x86,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x88 Server unavailable.
        ServerUnavailable = 0x88,
        /// 0x89 Server busy.
        ServerBusy = 0x89,
        /// 0x8A Banned.
        Banned = 0x8A,
        /// 0x8B Server shutting down.
        ServerShuttingDown = 0x8B,
        /// 0x8C Bad authentication method.
        BadAuthenticationMethod = 0x8C,
        /// 0x8D Keep Alive timeout.
        KeepAliveTimeout = 0x8D,
        /// 0x8E Session taken over.
        SessionTakenOver = 0x8E,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x91 Packet Identifier in use.
        PacketIdentifierInUse = 0x91,
        /// 0x92 Packet Identifier not found.
        PacketIdentifierNotFound = 0x92,
        /// 0x93 Receive Maximum exceeded.
        ReceiveMaximumExceeded = 0x93,
        /// 0x94 Topic Alias invalid.
        TopicAliasInvalid = 0x94,
        /// 0x95 Packet too large.
        PacketTooLarge = 0x95,
        /// 0x96 Message rate too high.
        MessageRateTooHigh = 0x96,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x98 Administrative action.
        AdministrativeAction = 0x98,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
        /// 0x9A Retain not supported.
        RetainNotSupported = 0x9A,
        /// 0x9B QoS not supported.
        QoSNotSupported = 0x9B,
        /// 0x9C Use another server.
        UseAnotherServer = 0x9C,
        /// 0x9D Server moved.
        ServerMoved = 0x9D,
        /// 0x9E Shared Subscriptions not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// 0x9F Connection rate exceeded.
        ConnectionRateExceeded = 0x9F,
        /// 0xA0 Maximum connect time.
        MaximumConnectTime = 0xA0,
        /// 0xA1 Subscription Identifiers not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// 0xA2 Wildcard Subscriptions not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
}

reason_codes! {
    /// CONNACK reason codes (MQTT 5.0 §3.2.2.2). In 3.1/3.1.1 they travel as the return codes
    /// 0-5, see [`ConnectReasonCode::to_v3`] and [`ConnectReasonCode::from_v3`].
    pub enum ConnectReasonCode {
        /// 0x00 Success (3.1.1: 0 Connection Accepted).
        Success = 0x00,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x81 Malformed Packet.
        MalformedPacket = 0x81,
        /// 0x82 Protocol Error.
        ProtocolError = 0x82,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x84 Unsupported Protocol Version (3.1.1: 1 unacceptable protocol version).
        UnsupportedProtocolVersion = 0x84,
        /// 0x85 Client Identifier not valid (3.1.1: 2 identifier rejected).
        ClientIdentifierNotValid = 0x85,
        /// 0x86 Bad User Name or Password (3.1.1: 4 bad user name or password).
        BadUserNameOrPassword = 0x86,
        /// 0x87 Not authorized (3.1.1: 5 not authorized).
        NotAuthorized = 0x87,
        /// 0x88 Server unavailable (3.1.1: 3 server unavailable).
        ServerUnavailable = 0x88,
        /// 0x89 Server busy.
        ServerBusy = 0x89,
        /// 0x8A Banned.
        Banned = 0x8A,
        /// 0x8C Bad authentication method.
        BadAuthenticationMethod = 0x8C,
        /// 0x90 Topic Name invalid (the Will Topic).
        TopicNameInvalid = 0x90,
        /// 0x95 Packet too large.
        PacketTooLarge = 0x95,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x99 Payload format invalid (the Will Payload).
        PayloadFormatInvalid = 0x99,
        /// 0x9A Retain not supported.
        RetainNotSupported = 0x9A,
        /// 0x9B QoS not supported.
        QoSNotSupported = 0x9B,
        /// 0x9C Use another server.
        UseAnotherServer = 0x9C,
        /// 0x9D Server moved.
        ServerMoved = 0x9D,
        /// 0x9F Connection rate exceeded.
        ConnectionRateExceeded = 0x9F,
    }
}

impl ConnectReasonCode {
    /// The MQTT 3.1/3.1.1 CONNACK return code carrying this code: 0 accepted, 1 unacceptable
    /// protocol version, 2 identifier rejected, 3 server unavailable, 4 bad user name or password,
    /// 5 not authorized. Failures without a 3.1.1 equivalent become 3, except the
    /// authorization-like Banned and Bad authentication method, which become 5.
    pub const fn to_v3(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::UnsupportedProtocolVersion => 1,
            Self::ClientIdentifierNotValid => 2,
            Self::BadUserNameOrPassword => 4,
            Self::NotAuthorized | Self::Banned | Self::BadAuthenticationMethod => 5,
            _ => 3,
        }
    }

    /// The code for a 3.1/3.1.1 CONNACK return code (0-5); `None` for reserved values.
    pub const fn from_v3(return_code: u8) -> Option<Self> {
        Some(match return_code {
            0 => Self::Success,
            1 => Self::UnsupportedProtocolVersion,
            2 => Self::ClientIdentifierNotValid,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }
}

reason_codes! {
    /// PUBACK reason codes (MQTT 5.0 §3.4.2.1). Not sent in 3.1/3.1.1.
    pub enum PubAckReasonCode {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x10 No matching subscribers.
        NoMatchingSubscribers = 0x10,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x91 Packet identifier in use.
        PacketIdentifierInUse = 0x91,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
    }
}

reason_codes! {
    /// PUBREC reason codes (MQTT 5.0 §3.5.2.1). Not sent in 3.1/3.1.1.
    pub enum PubRecReasonCode {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x10 No matching subscribers.
        NoMatchingSubscribers = 0x10,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x91 Packet identifier in use.
        PacketIdentifierInUse = 0x91,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
    }
}

reason_codes! {
    /// PUBREL reason codes (MQTT 5.0 §3.6.2.1). Not sent in 3.1/3.1.1.
    pub enum PubRelReasonCode {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x92 Packet Identifier not found.
        PacketIdentifierNotFound = 0x92,
    }
}

reason_codes! {
    /// PUBCOMP reason codes (MQTT 5.0 §3.7.2.1). Not sent in 3.1/3.1.1.
    pub enum PubCompReasonCode {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x92 Packet Identifier not found.
        PacketIdentifierNotFound = 0x92,
    }
}

reason_codes! {
    /// SUBACK reason codes (MQTT 5.0 §3.9.3), one per requested filter. In 3.1/3.1.1 only the
    /// granted QoS values and 0x80 exist; every failure is sent as 0x80.
    pub enum SubAckReasonCode {
        /// 0x00 Granted QoS 0.
        GrantedQoS0 = 0x00,
        /// 0x01 Granted QoS 1.
        GrantedQoS1 = 0x01,
        /// 0x02 Granted QoS 2.
        GrantedQoS2 = 0x02,
        /// 0x80 Unspecified error (3.1.1: Failure).
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x91 Packet Identifier in use.
        PacketIdentifierInUse = 0x91,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x9E Shared Subscriptions not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// 0xA1 Subscription Identifiers not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// 0xA2 Wildcard Subscriptions not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
}

impl SubAckReasonCode {
    /// The success code granting `qos`.
    pub const fn granted(qos: QoS) -> Self {
        match qos {
            QoS::AtMostOnce => Self::GrantedQoS0,
            QoS::AtLeastOnce => Self::GrantedQoS1,
            QoS::ExactlyOnce => Self::GrantedQoS2,
        }
    }

    /// The granted QoS, or `None` for a failure.
    pub const fn granted_qos(self) -> Option<QoS> {
        match self {
            Self::GrantedQoS0 => Some(QoS::AtMostOnce),
            Self::GrantedQoS1 => Some(QoS::AtLeastOnce),
            Self::GrantedQoS2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The 3.1/3.1.1 return code: the granted QoS, or 0x80 for any failure.
    pub const fn to_v3(self) -> u8 {
        if self.is_error() { 0x80 } else { self.as_u8() }
    }
}

reason_codes! {
    /// UNSUBACK reason codes (MQTT 5.0 §3.11.3). 3.1/3.1.1 UNSUBACKs carry none.
    pub enum UnsubAckReasonCode {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x11 No subscription existed.
        NoSubscriptionExisted = 0x11,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x91 Packet Identifier in use.
        PacketIdentifierInUse = 0x91,
    }
}

reason_codes! {
    /// DISCONNECT reason codes (MQTT 5.0 §3.14.2.1). 3.1/3.1.1 DISCONNECTs carry none.
    pub enum DisconnectReasonCode {
        /// 0x00 Normal disconnection (the Will is not published).
        NormalDisconnection = 0x00,
        /// 0x04 Disconnect with Will Message (client only).
        DisconnectWithWillMessage = 0x04,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x81 Malformed Packet.
        MalformedPacket = 0x81,
        /// 0x82 Protocol Error.
        ProtocolError = 0x82,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x89 Server busy.
        ServerBusy = 0x89,
        /// 0x8B Server shutting down.
        ServerShuttingDown = 0x8B,
        /// 0x8D Keep Alive timeout.
        KeepAliveTimeout = 0x8D,
        /// 0x8E Session taken over.
        SessionTakenOver = 0x8E,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x93 Receive Maximum exceeded.
        ReceiveMaximumExceeded = 0x93,
        /// 0x94 Topic Alias invalid.
        TopicAliasInvalid = 0x94,
        /// 0x95 Packet too large.
        PacketTooLarge = 0x95,
        /// 0x96 Message rate too high.
        MessageRateTooHigh = 0x96,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x98 Administrative action.
        AdministrativeAction = 0x98,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
        /// 0x9A Retain not supported.
        RetainNotSupported = 0x9A,
        /// 0x9B QoS not supported.
        QoSNotSupported = 0x9B,
        /// 0x9C Use another server.
        UseAnotherServer = 0x9C,
        /// 0x9D Server moved.
        ServerMoved = 0x9D,
        /// 0x9E Shared Subscriptions not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// 0x9F Connection rate exceeded.
        ConnectionRateExceeded = 0x9F,
        /// 0xA0 Maximum connect time.
        MaximumConnectTime = 0xA0,
        /// 0xA1 Subscription Identifiers not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// 0xA2 Wildcard Subscriptions not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
}

reason_codes! {
    /// AUTH reason codes (MQTT 5.0 §3.15.2.1).
    pub enum AuthReasonCode {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x18 Continue authentication.
        ContinueAuthentication = 0x18,
        /// 0x19 Re-authenticate.
        ReAuthenticate = 0x19,
    }
}

into_union!(
    ConnectReasonCode,
    PubAckReasonCode,
    PubRecReasonCode,
    PubRelReasonCode,
    PubCompReasonCode,
    SubAckReasonCode,
    UnsubAckReasonCode,
    DisconnectReasonCode,
    AuthReasonCode
);

/// Reason codes of the four publish acknowledgments, so one generic struct serves them all.
pub trait PubReasonCode: Copy + Eq + std::fmt::Debug + Into<ReasonCode> {
    /// The success value, which 3.1/3.1.1 imply and 5.0 may omit on the wire.
    const SUCCESS: Self;
    /// The code for a wire value, if allowed in this packet.
    fn from_u8(value: u8) -> Option<Self>;
    /// The wire value.
    fn as_u8(self) -> u8;
}

macro_rules! pub_reason_code {
    ($($name:ident),+) => {
        $(
            impl PubReasonCode for $name {
                const SUCCESS: Self = Self::Success;
                fn from_u8(value: u8) -> Option<Self> {
                    $name::from_u8(value)
                }
                fn as_u8(self) -> u8 {
                    $name::as_u8(self)
                }
            }
        )+
    };
}

pub_reason_code!(PubAckReasonCode, PubRecReasonCode, PubRelReasonCode, PubCompReasonCode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_connack_mapping() {
        assert_eq!(ConnectReasonCode::Success.to_v3(), 0);
        assert_eq!(ConnectReasonCode::UnsupportedProtocolVersion.to_v3(), 1);
        assert_eq!(ConnectReasonCode::ClientIdentifierNotValid.to_v3(), 2);
        assert_eq!(ConnectReasonCode::ServerUnavailable.to_v3(), 3);
        assert_eq!(ConnectReasonCode::ServerBusy.to_v3(), 3);
        assert_eq!(ConnectReasonCode::MalformedPacket.to_v3(), 3);
        assert_eq!(ConnectReasonCode::BadUserNameOrPassword.to_v3(), 4);
        assert_eq!(ConnectReasonCode::NotAuthorized.to_v3(), 5);
        for code in 0..=5 {
            let decoded = ConnectReasonCode::from_v3(code).unwrap();
            assert_eq!(decoded.to_v3(), code);
        }
        assert_eq!(ConnectReasonCode::from_v3(6), None);
    }

    #[test]
    fn per_packet_codes_exist_in_the_union() {
        for value in 0..=u8::MAX {
            if let Some(code) = DisconnectReasonCode::from_u8(value) {
                assert_eq!(ReasonCode::from(code).as_u8(), value);
            }
            if let Some(code) = ConnectReasonCode::from_u8(value) {
                assert_eq!(ReasonCode::from(code).as_u8(), value);
            }
            if let Some(code) = SubAckReasonCode::from_u8(value) {
                assert_eq!(ReasonCode::from(code).as_u8(), value);
                assert!(code.to_v3() <= 2 || code.to_v3() == 0x80);
            }
        }
    }
}
