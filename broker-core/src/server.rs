//! Accept loops: one task per listener, one task per connection, with per-listener and per-node
//! connection limits and graceful shutdown (listeners stop accepting, connections are told why on
//! MQTT 5 and closed, and [`run`] returns once every connection task has finished).

use std::{sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    auth::Transport,
    broker::Broker,
    connection::{self, ListenerInfo, PeerInfo},
    transport::{self, Layers, tls::TlsSource},
};

/// A bound listener and its settings. The caller binds (tests bind `127.0.0.1:0`).
#[derive(Debug)]
pub struct BoundListener {
    /// The bound socket.
    pub socket: TcpListener,
    /// Facts passed to each connection.
    pub info: ListenerInfo,
    /// Most concurrent connections on this listener (0 = unlimited).
    pub max_connections: usize,
    /// TLS and WebSocket layers.
    pub layers: Layers,
    /// Expect a PROXY protocol header first.
    pub proxy_protocol: bool,
}

impl BoundListener {
    /// A plain TCP listener.
    pub fn tcp(socket: TcpListener, info: ListenerInfo) -> Self {
        Self { socket, info, max_connections: 0, layers: Layers::Tcp, proxy_protocol: false }
    }
}

/// Serves `listeners` until `shutdown` is cancelled, then waits for every connection to close.
pub async fn run(broker: Arc<Broker>, listeners: Vec<BoundListener>, shutdown: CancellationToken) {
    let restored = broker.restore_sessions();
    if restored > 0 {
        tracing::info!(restored, "sessions restored");
    }
    let tracker = TaskTracker::new();
    tracker.spawn(crate::sys::run_stats(Arc::clone(&broker), shutdown.clone()));
    for listener in listeners {
        tracker.spawn(accept_loop(
            Arc::clone(&broker),
            listener,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    tracker.close();
    tracker.wait().await;
    broker.persist_sessions().await;
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener: BoundListener,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let info = Arc::new(listener.info);
    let limit = match listener.max_connections {
        0 => None,
        n => Some(Arc::new(Semaphore::new(n))),
    };
    if let Ok(addr) = listener.socket.local_addr() {
        tracing::info!(listener = %info.name, %addr, "listening");
    }
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.socket.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Typically EMFILE: back off briefly instead of spinning.
                tracing::warn!(listener = %info.name, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match &limit {
            None => None,
            Some(sem) => match Arc::clone(sem).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::warn!(listener = %info.name, peer = %addr, "listener connection limit reached");
                    continue;
                }
            },
        };
        let max = broker.config().max_connections;
        if max > 0 && broker.stats.connections.get() >= max as u64 {
            tracing::warn!(peer = %addr, "node connection limit reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let broker = Arc::clone(&broker);
        let info = Arc::clone(&info);
        let shutdown = shutdown.clone();
        if matches!(listener.layers, Layers::Tcp) && !listener.proxy_protocol {
            // Plain MQTT over TCP: no handshake, no boxing.
            let peer = PeerInfo { addr, cert_common_name: None, cert_subject: None };
            tracker.spawn(async move {
                // The listener's slot is held for as long as the connection lives.
                let _permit = permit;
                connection::serve(broker, stream, peer, info, shutdown).await;
            });
            continue;
        }
        let layers = listener.layers.clone();
        let proxy_protocol = listener.proxy_protocol;
        tracker.spawn(async move {
            let _permit = permit;
            let max_frame = info.packet_limit(&broker) as usize;
            let handshake = tokio::time::timeout(
                info.connect_timeout,
                transport::establish(stream, addr, &layers, proxy_protocol, max_frame),
            )
            .await;
            match handshake {
                Ok(Ok((stream, peer))) => {
                    connection::serve(broker, stream, peer, info, shutdown).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(listener = %info.name, peer = %addr, %error, "handshake failed");
                }
                Err(_) => {
                    tracing::debug!(listener = %info.name, peer = %addr, "handshake timed out");
                }
            }
        });
    }
}

/// Why listeners could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding failed (address in use, permission denied...).
    #[error("listeners.{kind}.{name}: cannot bind {addr}: {source}")]
    Bind {
        /// Listener kind (`tcp`, `ssl`, `ws`, `wss`).
        kind: &'static str,
        /// Listener name.
        name: String,
        /// Address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS files do not load.
    #[error("listeners.{kind}.{name}: {source}")]
    Tls {
        /// Listener kind.
        kind: &'static str,
        /// Listener name.
        name: String,
        /// What is wrong.
        source: transport::tls::TlsError,
    },
}

/// Binds every enabled listener of `config`.
pub async fn bind_listeners(
    config: &tern_config::Config,
) -> Result<Vec<BoundListener>, ListenError> {
    let mut bound = Vec::new();
    for l in config.listeners.iter().filter(|l| l.enable) {
        let kind = l.kind.as_str();
        let tls =
            match &l.tls {
                Some(settings) if l.kind.is_tls() => {
                    Some(Arc::new(TlsSource::load(settings.into()).map_err(|source| {
                        ListenError::Tls { kind, name: l.name.clone(), source }
                    })?))
                }
                _ => None,
            };
        let path: Arc<str> = l.path.as_deref().unwrap_or(tern_config::DEFAULT_WS_PATH).into();
        let (transport, layers) = match (l.kind, tls) {
            (tern_config::ListenerKind::Tcp, _) => (Transport::Tcp, Layers::Tcp),
            (tern_config::ListenerKind::Ssl, Some(tls)) => (Transport::Tls, Layers::Tls(tls)),
            (tern_config::ListenerKind::Ws, _) => (Transport::Ws, Layers::Ws { path }),
            (tern_config::ListenerKind::Wss, Some(tls)) => {
                (Transport::Wss, Layers::Wss { tls, path })
            }
            // tern-config guarantees TLS settings for ssl/wss listeners.
            (_, None) => {
                return Err(ListenError::Tls {
                    kind,
                    name: l.name.clone(),
                    source: transport::tls::TlsError::Config("no certificate configured".into()),
                });
            }
        };
        let socket = TcpListener::bind(l.bind).await.map_err(|source| ListenError::Bind {
            kind,
            name: l.name.clone(),
            addr: l.bind,
            source,
        })?;
        let port = socket.local_addr().map_or(l.bind.port(), |a| a.port());
        let max_packet_size =
            l.max_packet_size.map(|s| u32::try_from(s.as_u64()).unwrap_or(u32::MAX));
        bound.push(BoundListener {
            socket,
            info: ListenerInfo {
                name: format!("{kind}:{}", l.name).into(),
                port,
                transport,
                max_packet_size,
                connect_timeout: l.connect_timeout,
                use_identity_as_username: l
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.use_identity_as_username),
            },
            max_connections: l.max_connections as usize,
            layers,
            proxy_protocol: l.proxy_protocol,
        });
    }
    Ok(bound)
}
