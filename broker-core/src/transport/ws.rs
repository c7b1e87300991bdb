//! MQTT over WebSocket (`ws`, `wss` listeners): the HTTP upgrade on the configured path with the
//! `mqtt` subprotocol, then a byte stream over binary frames. MQTT packets may be split across
//! frames and a frame may hold several packets: the stream does not care where frames end.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::server::{ErrorResponse, Request, Response},
        http::{HeaderValue, StatusCode},
        protocol::WebSocketConfig,
    },
};

/// Subprotocols MQTT clients ask for, in our order of preference.
const SUBPROTOCOLS: [&str; 3] = ["mqtt", "mqttv3.1", "mqttv5"];

/// Upgrades an accepted connection to a WebSocket on `path`, choosing an MQTT subprotocol when
/// the client offers one. Requests for another path get 404.
pub async fn accept<S>(stream: S, path: &str, max_frame: usize) -> io::Result<WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let expected = path.to_owned();
    // tungstenite's handshake callback fixes this signature, large error type included.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, mut response: Response| {
        if request.uri().path() != expected {
            let mut refusal = ErrorResponse::new(Some("no MQTT endpoint here".into()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        let offered = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(str::trim))
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if let Some(chosen) = SUBPROTOCOLS.iter().find(|p| offered.iter().any(|o| o == *p)) {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static(chosen));
        }
        Ok(response)
    };
    let mut config = WebSocketConfig::default();
    config.max_frame_size = Some(max_frame);
    config.max_message_size = Some(max_frame);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config))
        .await
        .map_err(io::Error::other)?;
    Ok(WsStream::new(ws))
}

/// A WebSocket as a byte stream: reads concatenate binary frames, each write sends one frame.
#[derive(Debug)]
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// What is left of the last frame read.
    pending: Bytes,
    eof: bool,
}

impl<S> WsStream<S> {
    /// A byte stream over an established WebSocket (either side).
    pub fn new(inner: WebSocketStream<S>) -> Self {
        Self { inner, pending: Bytes::new(), eof: false }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Close(_))) | None => self.eof = true,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "MQTT over WebSocket must use binary frames",
                    )));
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(error)) => return Poll::Ready(Err(io::Error::other(error))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let inner = Pin::new(&mut self.inner);
        ready!(inner.poll_ready(cx)).map_err(io::Error::other)?;
        Pin::new(&mut self.inner)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx).map_err(io::Error::other)
    }
}
