//! What sits between an accepted TCP socket and MQTT: an optional PROXY protocol header, TLS,
//! and WebSocket framing. Each listener kind is a combination of these; [`establish`] runs the
//! handshakes (under the listener's CONNECT timeout) and yields a byte stream plus who the peer is.

pub mod proxy;
pub mod tls;
pub mod ws;

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use crate::connection::PeerInfo;

/// A byte stream a connection can run on.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> ByteStream for T {}

/// A connection's stream after the handshakes.
pub type BoxedStream = Box<dyn ByteStream>;

/// The layers of one listener.
#[derive(Debug, Clone)]
pub enum Layers {
    /// MQTT directly on TCP.
    Tcp,
    /// TLS.
    Tls(Arc<tls::TlsSource>),
    /// WebSocket on `path`.
    Ws {
        /// The HTTP path of the endpoint.
        path: Arc<str>,
    },
    /// WebSocket over TLS on `path`.
    Wss {
        /// The certificate source.
        tls: Arc<tls::TlsSource>,
        /// The HTTP path of the endpoint.
        path: Arc<str>,
    },
}

/// Why a connection did not get as far as MQTT.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// PROXY header missing or invalid.
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
    /// TLS or WebSocket handshake failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Runs the handshakes of `layers` (after a PROXY header when `proxy_protocol`) on `stream`.
pub async fn establish(
    stream: TcpStream,
    peer: SocketAddr,
    layers: &Layers,
    proxy_protocol: bool,
    max_frame: usize,
) -> Result<(BoxedStream, PeerInfo), HandshakeError> {
    let mut info = PeerInfo { addr: peer, cert_common_name: None, cert_subject: None };
    let mut stream = stream;
    let base = if proxy_protocol {
        let (addr, rest) = proxy::read_header(&mut stream).await?;
        if let Some(addr) = addr {
            info.addr = addr;
        }
        Prefixed { prefix: rest, inner: stream }
    } else {
        Prefixed { prefix: BytesMut::new(), inner: stream }
    };
    let boxed: BoxedStream = match layers {
        Layers::Tcp => Box::new(base),
        Layers::Tls(source) => {
            let tls = source.acceptor().accept(base).await?;
            peer_certificate(&tls, &mut info);
            Box::new(tls)
        }
        Layers::Ws { path } => Box::new(ws::accept(base, path, max_frame).await?),
        Layers::Wss { tls, path } => {
            let tls = tls.acceptor().accept(base).await?;
            peer_certificate(&tls, &mut info);
            Box::new(ws::accept(tls, path, max_frame).await?)
        }
    };
    Ok((boxed, info))
}

fn peer_certificate<S>(tls: &tokio_rustls::server::TlsStream<S>, info: &mut PeerInfo) {
    let (_, connection) = tls.get_ref();
    if let Some(cert) = connection.peer_certificates().and_then(|c| c.first()) {
        let (cn, subject) = tls::peer_identity(cert);
        info.cert_common_name = cn.map(Into::into);
        info.cert_subject = subject.map(Into::into);
    }
}

/// A stream that first yields bytes already read from it (after a PROXY header).
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
