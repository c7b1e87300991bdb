//! From accepted socket to connected client: read CONNECT under the listener's timeout, check the
//! client id and keep alive, authenticate under a deadline, claim (create, resume or take over)
//! the session, and answer CONNACK.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use bytes::BytesMut;
use bytestring::ByteString;
use mqtt_codec::{
    ConnAck, Connect, ConnectReasonCode, DecodeContext, DecodeError, Packet, ProtocolVersion,
    encode,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    time::Instant,
};

use super::{ClientLimits, Connection, ListenerInfo, PeerInfo, READ_RESERVE_MAX, READ_RESERVE_MIN};
use crate::{
    auth::{ClientIdentity, ConnectVerdict},
    broker::Broker,
    clock,
    events::{Event, EventKind},
    message::SessionId,
    registry::Attached,
    session::SessionState,
    will::PendingWill,
};

/// Capacity of a connection's control channel (takeover and kick requests are rare).
const CONTROL_CAPACITY: usize = 4;

enum ReadConnect {
    Connect(Box<Connect>),
    Closed,
    Invalid(DecodeError),
}

async fn read_connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    rbuf: &mut BytesMut,
    ctx: &mut DecodeContext,
) -> ReadConnect {
    loop {
        match mqtt_codec::decode(rbuf, ctx) {
            Ok(Some(Packet::Connect(connect))) => return ReadConnect::Connect(connect),
            // The decoder only returns a CONNECT first; anything else is an error.
            Ok(Some(_)) => return ReadConnect::Closed,
            Ok(None) => {}
            Err(error) => return ReadConnect::Invalid(error),
        }
        if rbuf.capacity() - rbuf.len() < 256 {
            rbuf.reserve(READ_RESERVE_MIN.max(rbuf.len()).min(READ_RESERVE_MAX));
        }
        match reader.read_buf(rbuf).await {
            Ok(0) | Err(_) => return ReadConnect::Closed,
            Ok(_) => {}
        }
    }
}

/// Writes a refusal CONNACK and closes.
async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    version: ProtocolVersion,
    code: ConnectReasonCode,
    reason: Option<&str>,
) {
    let mut connack = ConnAck::new(code);
    if let Some(reason) = reason {
        connack.properties.reason_string = Some(reason.into());
    }
    let mut buf = BytesMut::new();
    if encode(&Packet::ConnAck(Box::new(connack)), version, &mut buf).is_ok() {
        let _ = tokio::time::timeout(super::CLOSE_FLUSH, async {
            let _ = writer.write_all_buf(&mut buf).await;
            let _ = writer.shutdown().await;
        })
        .await;
    }
}

/// Runs the CONNECT exchange. Returns the connected client, or `None` when the connection was
/// refused or closed (the client was told why where the protocol allows).
pub(super) async fn accept<R, W>(
    broker: Arc<Broker>,
    mut reader: R,
    mut writer: W,
    peer: PeerInfo,
    listener: Arc<ListenerInfo>,
) -> Option<Connection<R, W>>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin,
{
    let mut rbuf = BytesMut::with_capacity(512);
    // The settings in force now stay this connection's: they are what CONNACK tells the client.
    let config = broker.config();
    let max_packet_size = listener.max_packet_size.unwrap_or(config.max_packet_size);
    let mut ctx = DecodeContext::server(max_packet_size);
    let read = tokio::time::timeout(
        listener.connect_timeout,
        read_connect(&mut reader, &mut rbuf, &mut ctx),
    )
    .await;
    let mut connect = match read {
        Ok(ReadConnect::Connect(connect)) => connect,
        Ok(ReadConnect::Invalid(error)) => {
            tracing::debug!(peer = %peer.addr, %error, "invalid CONNECT");
            broker.stats.connects_refused.inc();
            if let Some((version, code)) = error.connack_response(ctx.version) {
                refuse(&mut writer, version, code, None).await;
            }
            return None;
        }
        Ok(ReadConnect::Closed) | Err(_) => return None,
    };
    let version = connect.protocol_version;

    // Client identifier.
    let mut assigned = None;
    if connect.client_id.is_empty() {
        let allowed = config.allow_empty_client_id
            && match version {
                ProtocolVersion::V5 => true,
                ProtocolVersion::V311 => connect.clean_start,
                ProtocolVersion::V31 => false,
            };
        if !allowed {
            broker.stats.connects_refused.inc();
            refuse(&mut writer, version, ConnectReasonCode::ClientIdentifierNotValid, None).await;
            return None;
        }
        let id: ByteString = format!("tern-{:016x}", fastrand::u64(..)).into();
        connect.client_id = id.clone();
        assigned = Some(id);
    }

    // Keep alive: MQTT 5 clients are told the value in force (Server Keep Alive); a 3.1.x client
    // cannot be told, so its own value is used.
    let mut keepalive = connect.keep_alive;
    let mut server_keepalive = None;
    if version.is_v5()
        && config.max_keepalive < u16::MAX
        && (keepalive == 0 || keepalive > config.max_keepalive)
    {
        keepalive = config.max_keepalive;
        server_keepalive = Some(keepalive);
    }

    let username = match (&listener.use_identity_as_username, &peer.cert_common_name) {
        (true, Some(cn)) => Some(ByteString::from(&**cn)),
        _ => connect.username.clone(),
    };
    let props = &connect.properties;
    let client = Arc::new(ClientIdentity {
        client_id: connect.client_id.clone(),
        username,
        password: connect.password.clone(),
        peer: peer.addr,
        listener: Arc::clone(&listener.name),
        listener_port: listener.port,
        transport: listener.transport,
        protocol: version,
        cert_common_name: peer.cert_common_name.clone(),
        cert_subject: peer.cert_subject.clone(),
        keepalive: connect.keep_alive,
        clean_start: connect.clean_start,
        auth_method: props.authentication_method.clone(),
        auth_data: props.authentication_data.clone(),
        user_properties: props.user_properties.clone(),
        node_id: Arc::clone(&config.node_id),
    });
    broker.emit(EventKind::ClientConnect, || Event::ClientConnect { client: Arc::clone(&client) });

    // Enhanced authentication (AUTH exchanges) is not supported.
    if version.is_v5() && props.authentication_method.is_some() {
        return refused(&broker, &mut writer, &client, ConnectReasonCode::BadAuthenticationMethod)
            .await;
    }

    let verdict =
        tokio::time::timeout(config.auth_timeout, broker.auth.authenticate(Arc::clone(&client)))
            .await;
    let (superuser, authorizer) = match verdict {
        Ok(ConnectVerdict::Allow { superuser, authorizer }) => (superuser, authorizer),
        Ok(ConnectVerdict::Deny(code)) => {
            return refused(&broker, &mut writer, &client, code).await;
        }
        Err(_) => {
            tracing::warn!(client_id = %client.client_id, "authentication timed out");
            return refused(&broker, &mut writer, &client, ConnectReasonCode::ServerUnavailable)
                .await;
        }
    };

    // Session.
    let conn_id = broker.next_id();
    let (control_tx, control_rx) = mpsc::channel(CONTROL_CAPACITY);
    let provisional_session = SessionId(broker.next_id());
    let mailbox_for_new = broker.new_mailbox(provisional_session, client.client_id.clone());
    let claimed = broker
        .sessions
        .claim(
            &client.client_id,
            Attached {
                conn_id,
                control: control_tx,
                client: Arc::clone(&client),
                mailbox: Arc::clone(&mailbox_for_new),
                connected_at_ms: clock::now_ms(),
            },
        )
        .await;
    let resumed = match claimed.previous {
        Some(previous) if !connect.clean_start => {
            // A resumed session cancels its delayed will.
            Some(previous)
        }
        Some(previous) => {
            if let Some(will) = claimed.will {
                broker.publish_will(will).await;
            }
            broker.end_session(&previous, "clean_start");
            None
        }
        None => None,
    };
    let session_present = resumed.is_some();
    let mut session = match resumed {
        Some(mut state) => {
            state.client = Arc::clone(&client);
            state
        }
        None => {
            Box::new(SessionState::new(provisional_session, mailbox_for_new, Arc::clone(&client)))
        }
    };
    if session_present {
        // The registry's view shows the resumed mailbox.
        broker.sessions.update_mailbox(&claimed.entry, conn_id, Arc::clone(&session.mailbox)).await;
    }
    let requested_expiry = if version.is_v5() {
        props.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    };
    session.expiry_interval = requested_expiry.min(config.max_session_expiry);
    session.mailbox.set_online(true);

    let will = connect.will.take().map(|will| PendingWill {
        will,
        client: Arc::clone(&client),
        session: session.id,
        authorizer: Arc::clone(&authorizer),
    });

    // CONNACK.
    let mut connack = ConnAck::new(ConnectReasonCode::Success);
    connack.session_present = session_present;
    if version.is_v5() {
        let p = &mut connack.properties;
        if session.expiry_interval != requested_expiry {
            p.session_expiry_interval = Some(session.expiry_interval);
        }
        p.receive_maximum = std::num::NonZeroU16::new(config.receive_maximum);
        p.maximum_packet_size = NonZeroU32::new(max_packet_size);
        p.assigned_client_identifier = assigned;
        if config.max_topic_alias > 0 {
            p.topic_alias_maximum = Some(config.max_topic_alias);
        }
        if !config.retain_available {
            p.retain_available = Some(false);
        }
        p.server_keep_alive = server_keepalive;
    }
    let limits = ClientLimits {
        receive_maximum: props.receive_maximum.map_or(u16::MAX, |n| n.get()),
        max_packet_size: props
            .maximum_packet_size
            .map_or(config.client_max_packet_size, |n| n.get()),
        topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
        problem_information: props.request_problem_information.unwrap_or(true),
    };
    let mut wbuf = BytesMut::with_capacity(256);
    if encode(&Packet::ConnAck(Box::new(connack)), version, &mut wbuf).is_err() {
        return None;
    }
    broker.stats.connects_accepted.inc();
    broker.stats.connections.inc();
    broker.stats.packets_sent.inc();
    broker.emit(EventKind::ClientConnack, || Event::ClientConnack {
        client: Arc::clone(&client),
        reason_code: 0,
        session_present,
    });
    broker.emit(EventKind::ClientConnected, || Event::ClientConnected {
        client: Arc::clone(&client),
        session_present,
        keepalive,
        session_expiry_interval: session.expiry_interval,
    });
    broker.sys_client_online(&client, 0);
    tracing::debug!(client_id = %client.client_id, %version, session_present, superuser, "connected");

    let keepalive_timeout = (keepalive > 0)
        .then(|| Duration::from_secs_f64(f64::from(keepalive) * config.keepalive_multiplier));
    ctx.max_packet_size = max_packet_size;
    Some(Connection {
        broker,
        config,
        reader,
        writer,
        rbuf,
        wbuf,
        ctx,
        version,
        client,
        authorizer,
        session,
        will,
        conn_id,
        entry: claimed.entry,
        control: control_rx,
        keepalive_timeout,
        last_read: Instant::now(),
        limits,
        inbound_aliases: Vec::new(),
        outbound_aliases: Default::default(),
        scratch: Vec::new(),
        read_reserve: READ_RESERVE_MIN,
        congested: None,
        deferred: std::collections::VecDeque::new(),
    })
}

/// Refuses an authenticated-stage CONNECT with `code`, reporting it.
async fn refused<R, W: AsyncWrite + Unpin>(
    broker: &Broker,
    writer: &mut W,
    client: &Arc<ClientIdentity>,
    code: ConnectReasonCode,
) -> Option<Connection<R, W>> {
    broker.stats.connects_refused.inc();
    broker.emit(EventKind::ClientConnack, || Event::ClientConnack {
        client: Arc::clone(client),
        reason_code: code.as_u8(),
        session_present: false,
    });
    tracing::info!(client_id = %client.client_id, code = ?code, "connection refused");
    // MQTT 3.1.1's return code 4 means "malformed user name or password"; a wrong password is
    // "not authorized" (5), as NanoMQ answers. MQTT 5 keeps 0x86.
    let code = match (client.protocol.is_v5(), code) {
        (false, ConnectReasonCode::BadUserNameOrPassword) => ConnectReasonCode::NotAuthorized,
        (_, code) => code,
    };
    refuse(writer, client.protocol, code, None).await;
    None
}
