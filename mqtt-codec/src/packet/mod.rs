//! The unified packet model: one [`Packet`] enum for every protocol version. A 3.1/3.1.1 packet is
//! a 5.0 packet without properties and with reason codes mapped to the old return codes, so the
//! broker handles one set of types whatever the client speaks.

mod connect;
mod disconnect;
mod publish;
mod subscribe;

pub use connect::{ConnAck, Connect, LastWill};
pub use disconnect::{Auth, Disconnect};
pub use publish::{PubAck, PubComp, PubRec, PubRel, PubResponse, Publish};
pub use subscribe::{SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe};

use crate::types::PacketType;

/// Any MQTT control packet.
///
/// The rarely used, large CONNECT and CONNACK are boxed so that the enum stays about the size of
/// a PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client to server).
    Connect(Box<Connect>),
    /// CONNACK (server to client).
    ConnAck(Box<ConnAck>),
    /// PUBLISH (both directions).
    Publish(Publish),
    /// PUBACK (both directions).
    PubAck(PubAck),
    /// PUBREC (both directions).
    PubRec(PubRec),
    /// PUBREL (both directions).
    PubRel(PubRel),
    /// PUBCOMP (both directions).
    PubComp(PubComp),
    /// SUBSCRIBE (client to server).
    Subscribe(Subscribe),
    /// SUBACK (server to client).
    SubAck(SubAck),
    /// UNSUBSCRIBE (client to server).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (server to client).
    UnsubAck(UnsubAck),
    /// PINGREQ (client to server).
    PingReq,
    /// PINGRESP (server to client).
    PingResp,
    /// DISCONNECT (client to server; also server to client in 5.0).
    Disconnect(Disconnect),
    /// AUTH (both directions, 5.0 only).
    Auth(Auth),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The first byte of the fixed header: type and flags.
    pub(crate) fn header_byte(&self) -> u8 {
        let packet_type = self.packet_type();
        match self {
            Packet::Publish(publish) => publish.header_byte(),
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => {
                (packet_type.as_u8() << 4) | 0b0010
            }
            _ => packet_type.as_u8() << 4,
        }
    }
}

macro_rules! from_packet {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        $(
            impl From<$ty> for Packet {
                fn from(packet: $ty) -> Packet {
                    Packet::$variant(packet.into())
                }
            }
        )+
    };
}

from_packet!(
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubAck),
    PubRec(PubRec),
    PubRel(PubRel),
    PubComp(PubComp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    Disconnect(Disconnect),
    Auth(Auth),
);
