//! One MQTT client connection, shared by `tern bench`, `tern pub` and `tern sub`: TCP, TLS
//! (optionally with a client certificate) or WebSocket (over either) to the broker, CONNECT /
//! CONNACK, then a read and a write half with their buffers. The packets are encoded and decoded
//! with `mqtt-codec` directly (the client side of it); callers batch their output in
//! [`Connection::wbuf`] and write it with one call.

use std::{io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use bytes::BytesMut;
use mqtt_codec::{
    ConnAck, ConnectReasonCode, DecodeContext, Disconnect, DisconnectReasonCode, Packet,
    ProtocolVersion,
};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};

/// Largest packet the tool accepts from the broker (MQTT's own limit).
const MAX_PACKET: u32 = mqtt_codec::MAX_PACKET_SIZE;
/// How long opening a connection (TCP, TLS, WebSocket, CONNECT) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connection may take to say goodbye (DISCONNECT, flush, close).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The transport under MQTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket over TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Transport {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// The conventional port (NanoMQ's defaults).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tcp => 1883,
            Self::Tls => 8883,
            Self::Ws => 8083,
            Self::Wss => 8084,
        }
    }

    /// Whether TLS is under MQTT (or under the WebSocket).
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }
}

/// Why a connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The TLS settings are unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// The WebSocket upgrade failed.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The broker refused the connection (the CONNACK says why).
    #[error("connection refused by the broker: {:?}", .0.reason_code)]
    Refused(Box<ConnAck>),
    /// The broker broke the protocol or answered unexpectedly.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The broker closed the connection.
    #[error("connection closed by the broker")]
    Closed,
    /// The broker did not answer in time.
    #[error("timed out")]
    Timeout,
}

/// Any byte stream the tool can speak MQTT over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Where and how to connect; built once per run and shared by every connection.
#[derive(Clone)]
pub struct Target {
    /// The broker's address (resolved once).
    pub addr: SocketAddr,
    host: String,
    transport: Transport,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    ws_path: String,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Keep alive announced in CONNECT, seconds.
    pub keep_alive: u16,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("transport", &self.transport)
            .field("ws_path", &self.ws_path)
            .field("version", &self.version)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Settings of [`Target::new`].
#[derive(Debug, Clone)]
pub struct TargetOptions<'a> {
    /// Broker host name or address.
    pub host: &'a str,
    /// Broker port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
    /// CA certificates (PEM) to verify the broker with.
    pub cafile: Option<&'a Path>,
    /// Client certificate chain and private key (PEM) for mutual TLS.
    pub client_cert: Option<(&'a Path, &'a Path)>,
    /// Accept any broker certificate.
    pub insecure: bool,
    /// WebSocket path.
    pub ws_path: &'a str,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Keep alive, seconds.
    pub keep_alive: u16,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a str>,
}

impl Target {
    /// Resolves the broker's address and prepares TLS.
    pub async fn new(options: TargetOptions<'_>) -> Result<Self, ClientError> {
        let addr = tokio::net::lookup_host((options.host, options.port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host has no address"))?;
        let tls = if options.transport.is_tls() {
            let config = tls_config(options.cafile, options.insecure, options.client_cert)?;
            let name = ServerName::try_from(options.host.to_owned())
                .map_err(|e| ClientError::Tls(format!("server name {}: {e}", options.host)))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            addr,
            host: options.host.to_owned(),
            transport: options.transport,
            tls,
            ws_path: options.ws_path.to_owned(),
            version: options.version,
            keep_alive: options.keep_alive,
            username: options.username.map(str::to_owned),
            password: options.password.map(str::to_owned),
        })
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The CONNECT [`Target::open`] sends: clean session, the target's keep alive and
    /// credentials, and (MQTT 5) the largest Receive Maximum and packet size.
    pub fn connect_packet(&self, client_id: &str) -> mqtt_codec::Connect {
        let mut connect = mqtt_codec::Connect::new(self.version, client_id.into(), self.keep_alive);
        connect.username = self.username.as_deref().map(Into::into);
        connect.password =
            self.password.as_ref().map(|p| bytes::Bytes::from(p.clone().into_bytes()));
        if self.version.is_v5() {
            // Let the broker send as much as its own window allows.
            connect.properties.receive_maximum = std::num::NonZeroU16::new(u16::MAX);
            connect.properties.maximum_packet_size = std::num::NonZeroU32::new(MAX_PACKET);
        }
        connect
    }

    /// Opens a connection and completes the MQTT handshake (clean session).
    pub async fn open(&self, client_id: &str) -> Result<Connection, ClientError> {
        self.open_with(self.connect_packet(client_id)).await.map(|(conn, _)| conn)
    }

    /// Opens a connection and completes the MQTT handshake with `connect`; returns the
    /// connection and the broker's CONNACK.
    pub async fn open_with(
        &self,
        connect: mqtt_codec::Connect,
    ) -> Result<(Connection, ConnAck), ClientError> {
        tokio::time::timeout(OPEN_TIMEOUT, self.open_inner(connect))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn open_inner(
        &self,
        connect: mqtt_codec::Connect,
    ) -> Result<(Connection, ConnAck), ClientError> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Io> = match (self.transport, &self.tls) {
            (Transport::Tcp, _) => Box::new(tcp),
            (Transport::Ws, _) => Box::new(self.websocket(tcp, "ws").await?),
            (Transport::Tls, Some((connector, name))) => {
                Box::new(connector.connect(name.clone(), tcp).await?)
            }
            (Transport::Wss, Some((connector, name))) => {
                let tls = connector.connect(name.clone(), tcp).await?;
                Box::new(self.websocket(tls, "wss").await?)
            }
            (Transport::Tls | Transport::Wss, None) => {
                return Err(ClientError::Tls("no TLS configuration".into()));
            }
        };
        let (reader, writer) = tokio::io::split(stream);
        let mut conn = Connection {
            reader,
            writer,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            ctx: DecodeContext::client(self.version, MAX_PACKET),
            version: self.version,
            server_receive_maximum: u16::MAX,
            keep_alive: Duration::from_secs(u64::from(connect.keep_alive)),
        };
        conn.queue(&Packet::Connect(Box::new(connect)))?;
        conn.flush().await?;
        match conn.read_packet().await? {
            Packet::ConnAck(ack) if ack.reason_code == ConnectReasonCode::Success => {
                if let Some(max) = ack.properties.receive_maximum {
                    conn.server_receive_maximum = max.get();
                }
                if let Some(keep_alive) = ack.properties.server_keep_alive {
                    conn.keep_alive = Duration::from_secs(u64::from(keep_alive));
                }
                Ok((conn, *ack))
            }
            Packet::ConnAck(ack) => Err(ClientError::Refused(ack)),
            other => Err(ClientError::Protocol(format!(
                "expected CONNACK, got {:?}",
                other.packet_type()
            ))),
        }
    }

    async fn websocket<S>(
        &self,
        stream: S,
        scheme: &str,
    ) -> Result<broker_core::transport::ws::WsStream<S>, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let url = format!("{scheme}://{}:{}{}", self.host, self.addr.port(), self.ws_path);
        let mut request =
            url.into_client_request().map_err(|e| ClientError::WebSocket(e.to_string()))?;
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
        let mut config = WebSocketConfig::default();
        config.max_frame_size = Some(MAX_PACKET as usize);
        config.max_message_size = Some(MAX_PACKET as usize);
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|e| ClientError::WebSocket(e.to_string()))?;
        Ok(broker_core::transport::ws::WsStream::new(ws))
    }
}

/// An open MQTT connection.
pub struct Connection {
    /// Read half of the stream.
    pub reader: ReadHalf<Box<dyn Io>>,
    /// Write half of the stream.
    pub writer: WriteHalf<Box<dyn Io>>,
    /// Bytes read and not yet decoded.
    pub rbuf: BytesMut,
    /// Encoded packets not yet written.
    pub wbuf: BytesMut,
    /// Decoder state (client role).
    pub ctx: DecodeContext,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// The broker's Receive Maximum (MQTT 5), else `u16::MAX`.
    pub server_receive_maximum: u16,
    /// Keep alive in force (ours, or the broker's Server Keep Alive).
    pub keep_alive: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("version", &self.version)
            .field("buffered_in", &self.rbuf.len())
            .field("buffered_out", &self.wbuf.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Appends `packet` to the output buffer.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), ClientError> {
        mqtt_codec::encode(packet, self.version, &mut self.wbuf)
            .map_err(|e| ClientError::Protocol(format!("cannot encode: {e}")))
    }

    /// Writes the whole output buffer.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.wbuf.is_empty() {
            self.writer.write_buf(&mut self.wbuf).await?;
        }
        self.writer.flush().await
    }

    /// Decodes one packet from the input buffer, if a whole one is there.
    pub fn decode(&mut self) -> Result<Option<Packet>, ClientError> {
        mqtt_codec::decode(&mut self.rbuf, &mut self.ctx)
            .map_err(|e| ClientError::Protocol(format!("undecodable packet from the broker: {e}")))
    }

    /// Reads into the input buffer; `Ok(false)` when the broker closed the connection.
    pub async fn fill(&mut self) -> io::Result<bool> {
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(16 * 1024);
        }
        Ok(self.reader.read_buf(&mut self.rbuf).await? > 0)
    }

    /// The next packet (for handshakes; the run loops decode in batches themselves).
    pub async fn read_packet(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(packet) = self.decode()? {
                return Ok(packet);
            }
            if !self.fill().await? {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Sends DISCONNECT after whatever is buffered and closes, within a short deadline.
    pub async fn close(mut self) {
        let _ = self
            .queue(&Packet::Disconnect(Disconnect::new(DisconnectReasonCode::NormalDisconnection)));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.flush().await;
            let _ = self.writer.shutdown().await;
        })
        .await;
    }
}

/// Writes some of `wbuf` (`Some(bytes written)`), or, once it is empty, flushes what the TLS and
/// WebSocket layers buffer (`None`; nothing to do on TCP). One await point, so it can be a
/// `select!` branch: enable it while `wbuf` is not empty or a flush is due.
pub async fn write_or_flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    wbuf: &mut BytesMut,
) -> io::Result<Option<usize>> {
    if wbuf.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write_buf(wbuf).await.map(Some)
    }
}

fn tls_config(
    cafile: Option<&Path>,
    insecure: bool,
    client_cert: Option<(&Path, &Path)>,
) -> Result<ClientConfig, ClientError> {
    let builder = ClientConfig::builder();
    let builder = if insecure {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let Some(cafile) = cafile else {
            return Err(ClientError::Tls(
                "give the broker's CA with --cafile (or --insecure to skip verification)".into(),
            ));
        };
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(cafile)
            .map_err(|e| ClientError::Tls(format!("{}: {e}", cafile.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| ClientError::Tls(format!("{}: {e}", cafile.display())))?;
            roots.add(cert).map_err(|e| ClientError::Tls(format!("{}: {e}", cafile.display())))?;
        }
        builder.with_root_certificates(roots)
    };
    let Some((cert, key)) = client_cert else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| ClientError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ClientError::Tls(format!("{}: {e}", key.display())))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| ClientError::Tls(format!("client certificate {}: {e}", cert.display())))
}

/// `--insecure`: accepts any certificate (still checks handshake signatures).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
