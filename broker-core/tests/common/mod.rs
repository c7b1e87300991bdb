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
                    port: addr.port(),
                    transport: spec.transport,
                    max_packet_size: None,
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

pub use test_support::mqtt::{packets, raw};
