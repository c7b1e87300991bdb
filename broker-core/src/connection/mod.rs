//! One client connection: a task that owns the socket, the decode and write buffers, the
//! protocol state of this connection (topic aliases, keep alive, the client's limits) and, while
//! connected, the client's [`SessionState`].
//!
//! The task waits on one `select!` over: its control channel (takeover, kick), server shutdown,
//! writing its output buffer, reading the socket, its mailbox (routed messages) and the keep-alive
//! timer. Reads and writes are both cancel-safe single calls, so a client that does not read never
//! stops the broker from reading it, and vice versa. Output is bounded: above [`HIGH_WATER`] bytes
//! waiting, the task stops taking routed messages and they wait (bounded) in the mailbox.
//!
//! Input is paced by subscribers: when a PUBLISH fills a subscriber's queue past its limit (see
//! [`crate::mailbox`]), this connection sets further PUBLISH packets aside, in order, until that
//! queue drains — for at most [`PAUSE_LIMIT`] — while still handling acknowledgements and pings
//! (SUBSCRIBE and UNSUBSCRIBE wait in line with the PUBLISHes, DISCONNECT handles them all first);
//! with [`MAX_DEFERRED`] set aside it stops reading. So a fast publisher slows to
//! what its subscribers take instead of having acknowledged QoS 1/2 messages dropped, and two
//! clients publishing to each other cannot deadlock.

mod handshake;
mod inbound;
mod outbound;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use bytes::BytesMut;
use mqtt_codec::{
    DecodeContext, Disconnect, DisconnectReasonCode, Packet, ProtocolVersion, encode_limited,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{ClientAuthorizer, ClientIdentity, Transport},
    broker::Broker,
    events::{Event, EventKind},
    registry::{Control, Entry, Handover},
    session::SessionState,
    will::PendingWill,
};

/// Output bytes waiting above which no more routed messages are taken from the mailbox.
const HIGH_WATER: usize = 64 * 1024;
/// Deliveries taken from the mailbox at a time.
const BATCH: usize = 64;
/// Read buffer space made available before each read, at least and at most: it grows while reads
/// fill it and shrinks while they are small, so idle connections keep little and busy ones read
/// in large chunks.
const READ_RESERVE_MIN: usize = 512;
const READ_RESERVE_MAX: usize = 64 * 1024;
/// Longest a publisher is paused for one congested subscriber queue; after that its messages
/// are taken again and the subscriber's overflow policy applies.
const PAUSE_LIMIT: Duration = Duration::from_secs(2);
/// PUBLISH packets set aside while paused before the connection stops reading.
const MAX_DEFERRED: usize = 128;
/// How long the final DISCONNECT and buffered output may take to flush when closing.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// Facts about the listener a connection came in on.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// Listener name, e.g. `tcp:default`.
    pub name: Arc<str>,
    /// The port it listens on.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
    /// Largest packet accepted on this listener (`None`: the broker's `mqtt.max_packet_size` in
    /// force when the client connects).
    pub max_packet_size: Option<u32>,
    /// How long a client may take to send CONNECT.
    pub connect_timeout: Duration,
    /// Use the client certificate's CN as the username.
    pub use_identity_as_username: bool,
}

impl ListenerInfo {
    /// The largest packet a client connecting now may send.
    pub fn packet_limit(&self, broker: &Broker) -> u32 {
        self.max_packet_size.unwrap_or_else(|| broker.config().max_packet_size)
    }
}

/// Facts about the peer of a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Client address.
    pub addr: SocketAddr,
    /// Client certificate CN, over TLS.
    pub cert_common_name: Option<Arc<str>>,
    /// Client certificate subject, over TLS.
    pub cert_subject: Option<Arc<str>>,
}

/// Serves one client connection until it ends.
pub async fn serve<S>(
    broker: Arc<Broker>,
    stream: S,
    peer: PeerInfo,
    listener: Arc<ListenerInfo>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    // Boxed, like the close below: only the online loop's state stays with an idle connection.
    let Some(conn) = Box::pin(handshake::accept(broker, reader, writer, peer, listener)).await
    else {
        return;
    };
    conn.run(shutdown).await;
}

/// Writes some of `wbuf` (`Some(bytes written)`), or, when it is empty, flushes what TLS and
/// WebSocket layers keep buffered (`None`; a no-op for TCP). One await point: cancel-safe.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    wbuf: &mut BytesMut,
) -> std::io::Result<Option<usize>> {
    if wbuf.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write_buf(wbuf).await.map(Some)
    }
}

/// Waits until the congested queue has drained or the pause is over (at once without one).
async fn drained(congested: Option<(Arc<crate::mailbox::Mailbox>, Instant)>) {
    if let Some((queue, until)) = congested {
        // Boxed: only a paused connection needs this state.
        let _ = Box::pin(tokio::time::timeout_at(until, queue.below_limit())).await;
    }
}

/// Why the online loop ended.
#[derive(Debug)]
enum Exit {
    /// The client sent DISCONNECT.
    ClientDisconnect {
        /// 0x04: publish the will anyway.
        with_will: bool,
    },
    /// The socket closed or failed.
    ConnectionLost,
    /// The client broke the protocol (or was denied with `deny_action = disconnect`): send this
    /// reason code and reason string (MQTT 5) and close.
    Protocol(DisconnectReasonCode, String),
    /// No packet within keep alive × multiplier.
    KeepAliveTimeout,
    /// Another connection took over the client id.
    TakenOver(tokio::sync::oneshot::Sender<Handover>),
    /// An administrator disconnected the client.
    Kicked {
        /// End the session too.
        discard_session: bool,
    },
    /// The server is shutting down.
    Shutdown,
}

impl Exit {
    fn protocol(code: DisconnectReasonCode, why: &str) -> Self {
        Self::Protocol(code, why.to_owned())
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::ClientDisconnect { .. } => "normal",
            Self::ConnectionLost => "connection_lost",
            Self::Protocol(..) => "protocol_error",
            Self::KeepAliveTimeout => "keepalive_timeout",
            Self::TakenOver(_) => "takeover",
            Self::Kicked { .. } => "kicked",
            Self::Shutdown => "server_shutdown",
        }
    }

    fn disconnect_code(&self) -> Option<DisconnectReasonCode> {
        match self {
            Self::ClientDisconnect { .. } | Self::ConnectionLost => None,
            Self::Protocol(code, _) => Some(*code),
            Self::KeepAliveTimeout => Some(DisconnectReasonCode::KeepAliveTimeout),
            Self::TakenOver(_) => Some(DisconnectReasonCode::SessionTakenOver),
            Self::Kicked { .. } => Some(DisconnectReasonCode::AdministrativeAction),
            Self::Shutdown => Some(DisconnectReasonCode::ServerShuttingDown),
        }
    }
}

/// The limits the client announced in CONNECT (MQTT 5; defaults for 3.1.x).
#[derive(Debug, Clone, Copy)]
struct ClientLimits {
    /// Most QoS 1/2 PUBLISH in flight towards the client.
    receive_maximum: u16,
    /// Largest packet the client accepts.
    max_packet_size: u32,
    /// Highest topic alias the client accepts from us.
    topic_alias_maximum: u16,
    /// MQTT 5 Request Problem Information: reason strings on acknowledgements are wanted.
    problem_information: bool,
}

/// A connected client.
struct Connection<R, W> {
    broker: Arc<Broker>,
    /// The broker's settings when the client connected (what CONNACK told it).
    config: Arc<crate::BrokerConfig>,
    reader: R,
    writer: W,
    rbuf: BytesMut,
    wbuf: BytesMut,
    ctx: DecodeContext,
    version: ProtocolVersion,
    client: Arc<ClientIdentity>,
    authorizer: Arc<dyn ClientAuthorizer>,
    session: Box<SessionState>,
    will: Option<PendingWill>,
    conn_id: u64,
    entry: Arc<Entry>,
    /// Requests from outside (takeover, kick); bounded, rarely used.
    control: mpsc::Receiver<Control>,
    /// Silence longer than this disconnects the client (`None`: keep alive 0).
    keepalive_timeout: Option<Duration>,
    last_read: Instant,
    limits: ClientLimits,
    /// Inbound topic aliases (index = alias - 1), grown on demand up to `max_topic_alias`.
    inbound_aliases: Vec<Option<bytestring::ByteString>>,
    /// Outbound topic aliases we assigned on this connection.
    outbound_aliases: HashMap<bytestring::ByteString, u16, foldhash::fast::RandomState>,
    /// Deliveries taken from the mailbox, reused between batches.
    scratch: Vec<crate::message::Delivery>,
    /// Space to make available for the next read (see [`READ_RESERVE_MIN`]).
    read_reserve: usize,
    /// The subscriber queue this connection's PUBLISHes wait for, and until when at most.
    congested: Option<(Arc<crate::mailbox::Mailbox>, Instant)>,
    /// PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets received while paused, in order.
    deferred: std::collections::VecDeque<Packet>,
}

impl<R, W> Connection<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin,
{
    async fn run(mut self, shutdown: CancellationToken) {
        self.resend_inflight();
        let exit = self.online(&shutdown).await;
        Box::pin(self.finish(exit)).await;
    }

    async fn online(&mut self, shutdown: &CancellationToken) -> Exit {
        let sleep = tokio::time::sleep(self.keepalive_timeout.unwrap_or(Duration::from_secs(3600)));
        tokio::pin!(sleep);
        // Bytes written since the last flush.
        let mut unflushed = false;
        loop {
            if self.congested.is_none()
                && !self.deferred.is_empty()
                && let Err(exit) = Box::pin(self.handle_deferred()).await
            {
                return exit;
            }
            self.fill_from_mailbox();
            let want_mailbox = self.window_open() && self.wbuf.len() < HIGH_WATER;
            let can_read = self.deferred.len() < MAX_DEFERRED;
            let congested = self.congested.clone();
            if self.rbuf.capacity() - self.rbuf.len() < self.read_reserve / 4 {
                self.rbuf.reserve(self.read_reserve);
            }
            let read_space = self.rbuf.capacity() - self.rbuf.len();
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(Control::TakeOver { reply }) => return Exit::TakenOver(reply),
                    Some(Control::Kick { discard_session }) => return Exit::Kicked { discard_session },
                    Some(Control::WithSession(op)) => (op.0)(&self.broker, &mut self.session),
                    None => return Exit::Shutdown,
                },
                () = shutdown.cancelled() => return Exit::Shutdown,
                written = write_or_flush(&mut self.writer, &mut self.wbuf),
                    if !self.wbuf.is_empty() || unflushed =>
                {
                    match written {
                        Ok(Some(0)) | Err(_) => return Exit::ConnectionLost,
                        Ok(Some(n)) => {
                            self.broker.stats.bytes_sent.add(n as u64);
                            unflushed = true;
                            if self.wbuf.is_empty() && self.wbuf.capacity() > 4 * HIGH_WATER {
                                self.wbuf = BytesMut::new();
                            }
                        }
                        Ok(None) => unflushed = false,
                    }
                }
                read = self.reader.read_buf(&mut self.rbuf), if can_read => {
                    match read {
                        Ok(0) | Err(_) => return Exit::ConnectionLost,
                        Ok(n) => {
                            self.broker.stats.bytes_received.add(n as u64);
                            self.last_read = Instant::now();
                            // Boxed: the future of handling a packet is large and only lives
                            // while packets are handled, not while the connection waits.
                            if let Err(exit) = Box::pin(self.handle_input()).await {
                                return exit;
                            }
                            self.adapt_read_buffer(n, read_space);
                        }
                    }
                }
                () = self.session.mailbox.notified(), if want_mailbox => {}
                () = drained(congested), if self.congested.is_some() => {
                    self.congested = None;
                    // Silence while this side did not read is not the client's.
                    self.last_read = Instant::now();
                }
                () = &mut sleep, if self.keepalive_timeout.is_some() => {
                    let timeout = self.keepalive_timeout.unwrap_or_default();
                    if !can_read {
                        self.last_read = Instant::now();
                    }
                    let deadline = self.last_read + timeout;
                    if Instant::now() >= deadline {
                        return Exit::KeepAliveTimeout;
                    }
                    sleep.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Sizes the next read after one of `n` bytes into `space`: doubles while reads fill the
    /// space, halves while they use little of it, and lets an idle connection's buffer go.
    fn adapt_read_buffer(&mut self, n: usize, space: usize) {
        if n == space {
            self.read_reserve = (self.read_reserve * 2).min(READ_RESERVE_MAX);
        } else if n < self.read_reserve / 8 {
            self.read_reserve = (self.read_reserve / 2).max(READ_RESERVE_MIN);
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 2 * self.read_reserve {
            self.rbuf = BytesMut::new();
        }
    }

    /// Handles the packets set aside while paused, in order, until a PUBLISH pauses again.
    async fn handle_deferred(&mut self) -> Result<(), Exit> {
        while self.congested.is_none() {
            let Some(packet) = self.deferred.pop_front() else { break };
            self.handle_now(packet).await?;
        }
        Ok(())
    }

    /// Decodes and handles every complete packet in the read buffer.
    async fn handle_input(&mut self) -> Result<(), Exit> {
        loop {
            match mqtt_codec::decode(&mut self.rbuf, &mut self.ctx) {
                Ok(None) => return Ok(()),
                Ok(Some(packet)) => {
                    self.broker.stats.packets_received.inc();
                    self.handle_packet(packet).await?;
                }
                Err(error) => {
                    tracing::debug!(client_id = %self.client.client_id, %error, "protocol violation");
                    return Err(Exit::Protocol(error.disconnect_reason_code(), error.to_string()));
                }
            }
        }
    }

    /// Appends a control packet to the output buffer, within the client's Maximum Packet Size
    /// (reason strings and user properties are dropped if needed; a packet that still does not fit
    /// is not sent).
    fn send(&mut self, packet: &Packet) {
        match encode_limited(packet, self.version, self.limits.max_packet_size, &mut self.wbuf) {
            Ok(()) => self.broker.stats.packets_sent.inc(),
            Err(error) => {
                tracing::warn!(client_id = %self.client.client_id, %error, "packet not sent");
            }
        }
    }

    /// Ends the connection: tells the client why (MQTT 5), settles the will and the session, and
    /// reports the disconnect.
    async fn finish(mut self, exit: Exit) {
        let reason = exit.reason();
        let code = exit.disconnect_code();
        if let (Some(code), true) = (code, self.version.is_v5()) {
            let mut disconnect = Disconnect::new(code);
            if let Exit::Protocol(_, why) = &exit {
                // Allowed on DISCONNECT whatever Request Problem Information says.
                disconnect.properties.reason_string = Some(why.as_str().into());
            }
            self.send(&Packet::Disconnect(disconnect));
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
            if !self.wbuf.is_empty() {
                let _ = self.writer.write_all_buf(&mut self.wbuf).await;
            }
            let _ = self.writer.shutdown().await;
        })
        .await;

        let graceful = matches!(exit, Exit::ClientDisconnect { .. });
        // A normal DISCONNECT discards the will; 0x04 and every abnormal end publish it.
        let will = match exit {
            Exit::ClientDisconnect { with_will: false } => None,
            _ => self.will.take(),
        };
        let discard = matches!(exit, Exit::Kicked { discard_session: true });

        // Settle the session. A takeover hands it (and a delayed will) to the new connection;
        // so does a takeover request that arrives while we are closing.
        self.control.close();
        let mut takeover = match exit {
            Exit::TakenOver(reply) => Some(reply),
            _ => None,
        };
        while takeover.is_none() {
            match self.control.try_recv() {
                Ok(Control::TakeOver { reply }) => takeover = Some(reply),
                Ok(Control::Kick { .. } | Control::WithSession(_)) => {}
                Err(_) => break,
            }
        }
        let will = self.settle_will(will).await;
        let client = Arc::clone(&self.client);
        let state = self.session;
        self.broker.stats.connections.dec();
        if let Some(reply) = takeover {
            state.mailbox.set_online(false);
            let _ = reply.send(Handover { state, will });
        } else if state.expiry_interval == 0 || discard {
            if self.broker.sessions.remove_attached(&self.entry, self.conn_id).await {
                if let Some(will) = will {
                    self.broker.publish_will(will).await;
                }
                self.broker.end_session(&state, if discard { "kicked" } else { "disconnected" });
            }
        } else {
            self.broker.detach_session(&self.entry, self.conn_id, state, will).await;
        }

        let reason_code = code.map_or(0, |c| c.as_u8());
        self.broker.emit(EventKind::ClientDisconnected, || Event::ClientDisconnected {
            client: Arc::clone(&client),
            reason_code,
            reason,
            graceful,
        });
        self.broker.sys_client_offline(&client, reason_code);
        tracing::debug!(client_id = %client.client_id, reason, "disconnected");
    }

    /// Publishes a will without delay now; returns a will that must wait for its delay.
    async fn settle_will(&self, will: Option<PendingWill>) -> Option<PendingWill> {
        let will = will?;
        if will.delay_secs() == 0 {
            self.broker.publish_will(will).await;
            None
        } else {
            Some(will)
        }
    }
}
