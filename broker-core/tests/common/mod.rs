//! Test helpers: a broker on 127.0.0.1:0 and rumqttc clients (MQTT 3.1.1 and 5) that surface what
//! they receive through channels, so tests wait for conditions with deadlines instead of sleeping.

// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use broker_core::{
    BoundListener, Broker, BrokerConfig,
    auth::{AllowAll, Transport},
    connection::ListenerInfo,
    events::NoEvents,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub mod pki;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A listener to start in a test broker.
#[derive(Clone)]
pub struct ListenerSpec {
    pub transport: Transport,
    pub layers: broker_core::transport::Layers,
    pub proxy_protocol: bool,
    pub use_identity_as_username: bool,
}

impl ListenerSpec {
    pub fn new(transport: Transport, layers: broker_core::transport::Layers) -> Self {
        Self { transport, layers, proxy_protocol: false, use_identity_as_username: false }
    }

    pub fn tcp() -> Self {
        Self::new(Transport::Tcp, broker_core::transport::Layers::Tcp)
    }
}

/// A broker serving listeners on ephemeral ports.
pub struct TestBroker {
    /// The first listener's address.
    pub addr: SocketAddr,
    /// Every listener's address, in the order given.
    pub addrs: Vec<SocketAddr>,
    pub broker: Arc<Broker>,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(BrokerConfig { sys_interval: None, ..BrokerConfig::default() }).await
    }

    pub async fn start_with(config: BrokerConfig) -> Self {
        Self::start_with_store(config, None).await
    }

    pub async fn start_with_store(
        config: BrokerConfig,
        store: Option<Arc<dyn broker_core::store::SessionStore>>,
    ) -> Self {
        Self::start_full(config, store, Arc::new(AllowAll), vec![ListenerSpec::tcp()]).await
    }

    pub async fn start_full(
        config: BrokerConfig,
        store: Option<Arc<dyn broker_core::store::SessionStore>>,
        auth: Arc<dyn broker_core::auth::Authenticator>,
        specs: Vec<ListenerSpec>,
    ) -> Self {
        test_support::install_crypto_provider();
        let max_packet_size = config.max_packet_size;
        let broker = Broker::with_store(config, auth, Arc::new(NoEvents), store);
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for spec in specs {
            let (socket, addr) = test_support::bind_tokio().await;
            addrs.push(addr);
            listeners.push(BoundListener {
                socket,
                info: ListenerInfo {
                    name: Arc::from(format!("{:?}:default", spec.transport).to_lowercase()),
                    transport: spec.transport,
                    max_packet_size,
                    connect_timeout: Duration::from_secs(5),
                    use_identity_as_username: spec.use_identity_as_username,
                },
                max_connections: 0,
                layers: spec.layers,
                proxy_protocol: spec.proxy_protocol,
            });
        }
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(broker_core::run(Arc::clone(&broker), listeners, shutdown.clone()));
        Self { addr: addrs[0], addrs, broker, shutdown, task }
    }

    /// Stops the broker and waits until every connection task has ended.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task).await.expect("broker stops").expect("broker task");
    }
}

/// A rumqttc event loop (3.1.1 or 5) whose incoming packets a task forwards into a channel.
pub trait EventSource: Send + 'static {
    type Packet: Send + std::fmt::Debug + 'static;
    /// `Some(Some(p))`: a packet arrived; `Some(None)`: another event; `None`: the loop ended.
    fn next_event(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Option<Self::Packet>>> + Send;
}

impl EventSource for rumqttc::EventLoop {
    type Packet = rumqttc::Packet;
    async fn next_event(&mut self) -> Option<Option<rumqttc::Packet>> {
        match self.poll().await {
            Ok(rumqttc::Event::Incoming(p)) => Some(Some(p)),
            Ok(rumqttc::Event::Outgoing(_)) => Some(None),
            Err(_) => None,
        }
    }
}

impl EventSource for rumqttc::v5::EventLoop {
    type Packet = rumqttc::v5::mqttbytes::v5::Packet;
    async fn next_event(&mut self) -> Option<Option<Self::Packet>> {
        match self.poll().await {
            Ok(rumqttc::v5::Event::Incoming(p)) => Some(Some(p)),
            Ok(rumqttc::v5::Event::Outgoing(_)) => Some(None),
            Err(_) => None,
        }
    }
}

/// A rumqttc client (`C`) and the packets it receives (`P`).
pub struct Client<C, P> {
    pub client: C,
    pub events: mpsc::UnboundedReceiver<P>,
    task: tokio::task::JoinHandle<()>,
}

impl<C, P: std::fmt::Debug> Client<C, P> {
    /// Starts forwarding `source`'s packets and waits for the CONNACK that `connack` recognises.
    async fn start<S, A>(client: C, mut source: S, connack: impl Fn(P) -> Option<A>) -> (Self, A)
    where
        S: EventSource<Packet = P>,
        P: Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(event) = source.next_event().await {
                if let Some(packet) = event
                    && tx.send(packet).is_err()
                {
                    return;
                }
            }
        });
        let mut this = Self { client, events: rx, task };
        let ack = this.next(connack).await;
        (this, ack)
    }

    /// The next incoming packet that `pick` accepts, skipping others.
    pub async fn next<T>(&mut self, mut pick: impl FnMut(P) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.events.recv().await {
                    Some(p) => {
                        if let Some(t) = pick(p) {
                            return t;
                        }
                    }
                    None => panic!("connection closed while waiting"),
                }
            }
        })
        .await
        .expect("packet in time")
    }

    /// Waits until the connection has ended.
    pub async fn closed(mut self) {
        tokio::time::timeout(WAIT, async { while self.events.recv().await.is_some() {} })
            .await
            .expect("connection closes");
        let _ = self.task.await;
    }

    /// Drops the network connection without DISCONNECT (an abnormal end).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// An MQTT 3.1.1 client.
pub mod v4 {
    use super::*;
    pub use rumqttc::{AsyncClient, LastWill, MqttOptions, Packet, Publish, QoS};

    pub type Client = super::Client<AsyncClient, Packet>;

    pub fn options(addr: SocketAddr, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    /// Connects and waits for CONNACK; returns the client and the CONNACK.
    pub async fn connect(options: MqttOptions) -> (Client, rumqttc::ConnAck) {
        let (client, eventloop) = AsyncClient::new(options, 1000);
        Client::start(client, eventloop, |p| match p {
            Packet::ConnAck(ack) => Some(ack),
            _ => None,
        })
        .await
    }

    impl Client {
        pub async fn publish(&mut self) -> Publish {
            self.next(|p| match p {
                Packet::Publish(p) => Some(p),
                _ => None,
            })
            .await
        }

        pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> rumqttc::SubAck {
            self.client.subscribe(filter, qos).await.expect("subscribe queued");
            self.next(|p| match p {
                Packet::SubAck(a) => Some(a),
                _ => None,
            })
            .await
        }
    }
}

/// An MQTT 5 client.
pub mod v5 {
    use super::*;
    pub use rumqttc::v5::{
        AsyncClient, MqttOptions,
        mqttbytes::{
            QoS,
            v5::{ConnAck, Packet, Publish, PublishProperties, SubAck},
        },
    };

    pub type Client = super::Client<AsyncClient, Packet>;

    pub fn options(addr: SocketAddr, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    pub async fn connect(options: MqttOptions) -> (Client, ConnAck) {
        let (client, eventloop) = AsyncClient::new(options, 1000);
        Client::start(client, eventloop, |p| match p {
            Packet::ConnAck(ack) => Some(ack),
            _ => None,
        })
        .await
    }

    impl Client {
        pub async fn publish(&mut self) -> Publish {
            self.next(|p| match p {
                Packet::Publish(p) => Some(p),
                _ => None,
            })
            .await
        }

        pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAck {
            self.client.subscribe(filter, qos).await.expect("subscribe queued");
            self.next(|p| match p {
                Packet::SubAck(a) => Some(a),
                _ => None,
            })
            .await
        }
    }
}

/// A client speaking raw MQTT through the codec, for exact control of what is sent (protocol
/// violations, topic aliases, limits) and exact inspection of what comes back.
pub mod raw {
    use super::*;
    use bytes::BytesMut;
    use mqtt_codec::{DecodeContext, Packet, ProtocolVersion};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use broker_core::transport::BoxedStream;

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
