//! MQTT clients for tests that need exact control: a client speaking raw MQTT through Tern's
//! codec (any stream: TCP, TLS, WebSocket) and packet builders.

use std::time::Duration;

/// How long a raw client waits for an answer before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A client speaking raw MQTT through the codec, for exact control of what is sent (protocol
/// violations, topic aliases, limits) and exact inspection of what comes back.
pub mod raw {
    use std::net::SocketAddr;

    use super::WAIT;
    use bytes::BytesMut;
    use mqtt_codec::{DecodeContext, Packet, ProtocolVersion};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    /// A client's byte stream (TCP, TLS, WebSocket...).
    pub type BoxedStream = Box<dyn ByteStream>;

    /// What a raw client can run on.
    pub trait ByteStream:
        tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin
    {
    }
    impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin> ByteStream for T {}

    #[allow(missing_debug_implementations)] // holds a trait-object stream
    pub struct RawClient {
        pub stream: BoxedStream,
        rbuf: BytesMut,
        ctx: DecodeContext,
        pub version: ProtocolVersion,
    }

    impl RawClient {
        pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Self {
            let stream = TcpStream::connect(addr).await.expect("tcp connect");
            Self::over(Box::new(stream), version)
        }

        /// A client on an already established stream (TLS, WebSocket...).
        pub fn over(stream: BoxedStream, version: ProtocolVersion) -> Self {
            Self {
                stream,
                rbuf: BytesMut::new(),
                ctx: DecodeContext::client(version, u32::MAX),
                version,
            }
        }

        /// Completes a CONNECT on an established stream; returns the CONNACK.
        pub async fn handshake(
            stream: BoxedStream,
            connect: mqtt_codec::Connect,
        ) -> (Self, mqtt_codec::ConnAck) {
            let mut client = Self::over(stream, connect.protocol_version);
            client.send(&Packet::Connect(Box::new(connect))).await;
            match client.recv().await {
                Some(Packet::ConnAck(ack)) => (client, *ack),
                other => panic!("expected CONNACK, got {other:?}"),
            }
        }

        /// Opens a connection and completes a CONNECT with `connect`; returns the CONNACK.
        pub async fn connect(
            addr: SocketAddr,
            connect: mqtt_codec::Connect,
        ) -> (Self, mqtt_codec::ConnAck) {
            let stream = TcpStream::connect(addr).await.expect("tcp connect");
            Self::handshake(Box::new(stream), connect).await
        }

        pub async fn send(&mut self, packet: &Packet) {
            let mut buf = BytesMut::new();
            mqtt_codec::encode(packet, self.version, &mut buf).expect("encodable");
            self.send_bytes(&buf).await;
        }

        pub async fn send_bytes(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).await.expect("write");
            self.stream.flush().await.expect("flush");
        }

        /// The next packet, or `None` once the server closed the connection.
        pub async fn recv(&mut self) -> Option<Packet> {
            tokio::time::timeout(WAIT, async {
                loop {
                    match mqtt_codec::decode(&mut self.rbuf, &mut self.ctx) {
                        Ok(Some(p)) => return Some(p),
                        Ok(None) => {}
                        Err(e) => panic!("server sent an undecodable packet: {e}"),
                    }
                    match self.stream.read_buf(&mut self.rbuf).await {
                        Ok(0) | Err(_) => return None,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .expect("server answers or closes in time")
        }

        /// Subscribes to `filter` and returns the first reason code of the SUBACK, skipping other
        /// packets that arrive meanwhile.
        pub async fn suback(
            &mut self,
            packet_id: u16,
            filter: &str,
            qos: mqtt_codec::QoS,
        ) -> mqtt_codec::SubAckReasonCode {
            self.send(&super::packets::subscribe(packet_id, filter, qos)).await;
            loop {
                match self.recv().await {
                    Some(Packet::SubAck(ack)) => {
                        return ack
                            .reason_codes
                            .first()
                            .copied()
                            .unwrap_or(mqtt_codec::SubAckReasonCode::UnspecifiedError);
                    }
                    Some(_) => {}
                    None => panic!("closed while waiting for SUBACK"),
                }
            }
        }

        /// Publishes `topic` at QoS 1 with `packet_id` and returns the PUBACK's reason code,
        /// skipping other packets that arrive meanwhile.
        pub async fn puback(
            &mut self,
            packet_id: u16,
            topic: &str,
        ) -> mqtt_codec::PubAckReasonCode {
            let publish =
                super::packets::publish(topic, b"x", mqtt_codec::QoS::AtLeastOnce, Some(packet_id));
            self.send(&Packet::Publish(publish)).await;
            loop {
                match self.recv().await {
                    Some(Packet::PubAck(ack)) if ack.packet_id.get() == packet_id => {
                        return ack.reason_code;
                    }
                    Some(_) => {}
                    None => panic!("closed while waiting for PUBACK {packet_id}"),
                }
            }
        }

        /// The next PUBLISH, skipping other packets.
        pub async fn next_publish(&mut self) -> mqtt_codec::Publish {
            loop {
                match self.recv().await {
                    Some(Packet::Publish(p)) => return p,
                    Some(_) => {}
                    None => panic!("closed while waiting for PUBLISH"),
                }
            }
        }

        /// Reads until the server closes; returns the packets it sent before closing.
        pub async fn until_closed(&mut self) -> Vec<Packet> {
            let mut packets = Vec::new();
            while let Some(p) = self.recv().await {
                packets.push(p);
            }
            packets
        }
    }

    pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> mqtt_codec::Connect {
        mqtt_codec::Connect::new(version, client_id.into(), 30)
    }
}

/// Packet builders for raw clients.
pub mod packets {
    use std::num::NonZeroU16;

    use bytes::Bytes;
    use mqtt_codec::{
        Packet, Publish, QoS, RetainHandling, Subscribe, Subscription, SubscriptionOptions,
    };

    pub fn id(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).expect("non-zero packet id")
    }

    pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> Packet {
        Packet::Subscribe(Subscribe {
            packet_id: id(packet_id),
            subscriptions: vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions {
                    qos,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribe,
                },
            }],
            properties: Default::default(),
        })
    }

    pub fn publish(
        topic: &str,
        payload: &'static [u8],
        qos: QoS,
        packet_id: Option<u16>,
    ) -> Publish {
        let mut p = Publish::new(topic.into(), Bytes::from_static(payload));
        p.qos = qos;
        p.packet_id = packet_id.map(id);
        p
    }
}
