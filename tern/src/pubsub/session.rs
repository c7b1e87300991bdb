//! One client session for `tern pub` / `tern sub`: sends and receives whole packets on a
//! [`Connection`], keeps the connection alive with PINGREQ when idle, and prints every packet
//! with `-d` (as mosquitto's `-d` does).

use mqtt_codec::{Disconnect, Packet, ProtocolVersion};
use tokio::time::Instant;

use super::{Failure, options::Prepared, reason};
use crate::client::{ClientError, Connection};

/// An open session.
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    client_id: String,
    debug: bool,
    /// When we last wrote; a PINGREQ goes out once the keep alive passes without writing.
    last_sent: Instant,
    /// Set once a PINGREQ is out; the broker is considered gone if no PINGRESP comes within the
    /// keep alive after it.
    ping_sent: Option<Instant>,
}

impl Session {
    /// Connects as `prepared` says.
    pub async fn open(prepared: &Prepared, debug: bool) -> Result<Self, Failure> {
        let version = prepared.connect.protocol_version;
        if debug {
            eprintln!("Client {} sending CONNECT", prepared.client_id);
        }
        let result = prepared.target.open_with(prepared.connect.clone()).await;
        if debug && let Err(ClientError::Refused(ack)) = &result {
            eprintln!(
                "Client {} received CONNACK ({})",
                prepared.client_id,
                connack_code(ack, version)
            );
        }
        let (conn, ack) = result.map_err(|e| Failure::from_client(e, version))?;
        if debug {
            eprintln!(
                "Client {} received CONNACK ({})",
                prepared.client_id,
                connack_code(&ack, version)
            );
        }
        Ok(Self {
            conn,
            client_id: prepared.client_id.clone(),
            debug,
            last_sent: Instant::now(),
            ping_sent: None,
        })
    }

    /// Protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.conn.version
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), Failure> {
        if self.debug {
            eprintln!("Client {} sending {}", self.client_id, describe(packet));
        }
        self.conn.queue(packet).map_err(|e| self.failure(e))?;
        self.conn.flush().await.map_err(|e| self.failure(ClientError::Io(e)))?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// The next packet from the broker other than PINGRESP, sending PINGREQ while idle.
    /// Cancel safe (reads into the session's buffer), so it can be a `select!` branch.
    pub async fn recv(&mut self) -> Result<Packet, Failure> {
        loop {
            if let Some(packet) = self.conn.decode().map_err(|e| self.failure(e))? {
                if self.debug {
                    eprintln!("Client {} received {}", self.client_id, describe(&packet));
                }
                match packet {
                    Packet::PingResp => self.ping_sent = None,
                    Packet::Disconnect(d) => return Err(disconnected(&d, self.version())),
                    other => return Ok(other),
                }
                continue;
            }
            let keep_alive = self.conn.keep_alive;
            let wake = match self.ping_sent {
                _ if keep_alive.is_zero() => None,
                Some(sent) => Some(sent + keep_alive),
                None => Some(self.last_sent + keep_alive),
            };
            tokio::select! {
                filled = self.conn.fill() => {
                    if !filled.map_err(|e| self.failure(ClientError::Io(e)))? {
                        return Err(self.failure(ClientError::Closed));
                    }
                }
                () = sleep_until(wake) => {
                    if self.ping_sent.is_some() {
                        return Err(Failure::new("Error: the broker stopped answering (no PINGRESP)"));
                    }
                    self.send(&Packet::PingReq).await?;
                    self.ping_sent = Some(Instant::now());
                }
            }
        }
    }

    /// Sends DISCONNECT (normal) and closes.
    pub async fn close(self) {
        if self.debug {
            eprintln!("Client {} sending DISCONNECT", self.client_id);
        }
        self.conn.close().await;
    }

    fn failure(&self, error: ClientError) -> Failure {
        Failure::from_client(error, self.version())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn connack_code(ack: &mqtt_codec::ConnAck, version: ProtocolVersion) -> u8 {
    reason::connack_exit_code(ack.reason_code, version)
}

fn disconnected(d: &Disconnect, version: ProtocolVersion) -> Failure {
    let code = d.reason_code.as_u8();
    let mut message = format!("Disconnected by the broker: {}", reason::reason_string(code));
    if version.is_v5()
        && let Some(why) = &d.properties.reason_string
    {
        message.push_str(&format!(" ({why})"));
    }
    Failure { code: if code == 0 { 1 } else { code }, message }
}

/// A packet as mosquitto's `-d` lines show it.
fn describe(packet: &Packet) -> String {
    match packet {
        Packet::Publish(p) => format!(
            "PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            u8::from(p.dup),
            p.qos as u8,
            u8::from(p.retain),
            p.packet_id.map_or(0, |id| id.get()),
            p.topic,
            p.payload.len()
        ),
        Packet::PubAck(a) => format!("PUBACK (Mid: {}, RC:{})", a.packet_id, a.reason_code.as_u8()),
        Packet::PubRec(a) => format!("PUBREC (Mid: {}, RC:{})", a.packet_id, a.reason_code.as_u8()),
        Packet::PubRel(a) => format!("PUBREL (Mid: {}, RC:{})", a.packet_id, a.reason_code.as_u8()),
        Packet::PubComp(a) => {
            format!("PUBCOMP (Mid: {}, RC:{})", a.packet_id, a.reason_code.as_u8())
        }
        Packet::Subscribe(s) => {
            let filters: Vec<String> = s
                .subscriptions
                .iter()
                .map(|x| format!("{} (QoS {})", x.filter, x.options.qos as u8))
                .collect();
            format!("SUBSCRIBE (Mid: {}, {})", s.packet_id, filters.join(", "))
        }
        Packet::SubAck(a) => {
            let codes: Vec<String> = a.reason_codes.iter().map(|c| c.as_u8().to_string()).collect();
            format!("SUBACK (Mid: {}, {})", a.packet_id, codes.join(", "))
        }
        Packet::Disconnect(d) => format!("DISCONNECT ({})", d.reason_code.as_u8()),
        other => format!("{:?}", other.packet_type()).to_uppercase(),
    }
}
