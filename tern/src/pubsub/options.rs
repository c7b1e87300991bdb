//! The flags `tern pub` and `tern sub` share, named as mosquitto_pub / mosquitto_sub name them,
//! and turning them into a [`Target`] and a CONNECT packet.

use std::{num::NonZeroU16, path::PathBuf};

use bytes::Bytes;
use mqtt_codec::{Connect, LastWill, ProtocolVersion, PublishProperties, QoS, UserProperty};

use super::Failure;
use crate::client::{Target, TargetOptions, Transport};

/// Connection flags shared by `tern pub` and `tern sub`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub host: String,
    /// Broker port (default 1883; 8883 with TLS; 8083 over WebSocket, 8084 over secure WebSocket).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Broker URL instead of -h/-p: `mqtt://`, `mqtts://`, `ws://` or `wss://`
    /// `[user[:password]@]host[:port][/path]`. For mqtt(s) the path is the topic (as
    /// mosquitto's -L); for ws(s) it is the WebSocket path (default /mqtt).
    #[arg(short = 'L', long = "url")]
    pub url: Option<String>,
    /// MQTT over WebSocket (secure WebSocket when TLS options are given).
    #[arg(long = "ws")]
    pub ws: bool,
    /// WebSocket path.
    #[arg(long = "ws-path", default_value = "/mqtt")]
    pub ws_path: String,
    /// Protocol version: mqttv31 (31), mqttv311 (311) or mqttv5 (5).
    #[arg(short = 'V', long = "protocol-version", default_value = "mqttv311", value_parser = parse_version)]
    pub version: ProtocolVersion,
    /// Client id (default: tern-<random>).
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
    /// Client id prefix; the process id is appended.
    #[arg(short = 'I', long = "id-prefix", conflicts_with = "id")]
    pub id_prefix: Option<String>,
    /// Keep alive in seconds (0 disables it).
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keepalive: u16,
    /// Keep the session when disconnecting (clean session / clean start off); needs -i.
    #[arg(short = 'c', long = "disable-clean-session")]
    pub persistent: bool,
    /// MQTT 5 session expiry interval in seconds (with -c; default: never expires).
    #[arg(short = 'x', long = "session-expiry-interval")]
    pub session_expiry: Option<u32>,
    /// User name.
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    pub password: Option<String>,
    /// CA certificate file (PEM) to verify the broker with; enables TLS.
    #[arg(long = "cafile")]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long = "cert", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --cert.
    #[arg(long = "key", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Do not verify the broker's certificate; enables TLS.
    #[arg(long = "insecure")]
    pub insecure: bool,
    /// Will topic.
    #[arg(long = "will-topic")]
    pub will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload", requires = "will_topic")]
    pub will_payload: Option<String>,
    /// Will QoS.
    #[arg(long = "will-qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub will_qos: u8,
    /// Retain the will.
    #[arg(long = "will-retain", requires = "will_topic")]
    pub will_retain: bool,
    /// MQTT 5 property: `-D COMMAND NAME VALUE`, or `-D COMMAND user-property KEY VALUE`.
    /// Commands: connect, publish, subscribe. Repeatable.
    #[arg(short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub properties: Vec<String>,
    /// Print every packet sent and received on standard error.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Print no error messages.
    #[arg(long = "quiet")]
    pub quiet: bool,
}

fn parse_version(text: &str) -> Result<ProtocolVersion, String> {
    match text {
        "mqttv31" | "31" => Ok(ProtocolVersion::V31),
        "mqttv311" | "311" => Ok(ProtocolVersion::V311),
        "mqttv5" | "5" => Ok(ProtocolVersion::V5),
        other => Err(format!("{other:?} is not mqttv31, mqttv311 or mqttv5 (31, 311, 5)")),
    }
}

/// Parses a QoS flag value (0, 1 or 2).
pub fn parse_qos(text: &str) -> Result<QoS, String> {
    match text {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        other => Err(format!("{other:?} is not a QoS (0, 1 or 2)")),
    }
}

/// One `-D` property, checked against the command it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyArg {
    /// `user-property KEY VALUE`.
    User(String, String),
    /// `content-type VALUE` (publish).
    ContentType(String),
    /// `message-expiry-interval SECONDS` (publish).
    MessageExpiry(u32),
    /// `response-topic TOPIC` (publish).
    ResponseTopic(String),
    /// `correlation-data VALUE` (publish).
    CorrelationData(String),
    /// `payload-format-indicator 0|1` (publish).
    PayloadFormat(bool),
}

/// The `-D` properties, per command.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    /// For CONNECT.
    pub connect: Vec<PropertyArg>,
    /// For each PUBLISH.
    pub publish: Vec<PropertyArg>,
    /// For SUBSCRIBE.
    pub subscribe: Vec<PropertyArg>,
}

impl Properties {
    /// The user properties among `props`.
    pub fn user(props: &[PropertyArg]) -> Vec<UserProperty> {
        props
            .iter()
            .filter_map(|p| match p {
                PropertyArg::User(k, v) => Some((k.as_str().into(), v.as_str().into())),
                _ => None,
            })
            .collect()
    }

    /// PUBLISH properties from the `-D publish` flags.
    pub fn publish_properties(&self) -> PublishProperties {
        let mut out = PublishProperties::default();
        for p in &self.publish {
            match p {
                PropertyArg::User(k, v) => {
                    out.user_properties.push((k.as_str().into(), v.as_str().into()));
                }
                PropertyArg::ContentType(v) => out.content_type = Some(v.as_str().into()),
                PropertyArg::MessageExpiry(s) => out.message_expiry_interval = Some(*s),
                PropertyArg::ResponseTopic(t) => out.response_topic = Some(t.as_str().into()),
                PropertyArg::CorrelationData(d) => {
                    out.correlation_data = Some(Bytes::from(d.clone().into_bytes()));
                }
                PropertyArg::PayloadFormat(utf8) => out.payload_format_indicator = Some(*utf8),
            }
        }
        out
    }
}

/// A parsed `-L` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    transport: Transport,
    username: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    path: Option<String>,
}

fn parse_url(text: &str) -> Result<Url, String> {
    let bad = |why: &str| format!("Error: invalid URL {text:?}: {why}");
    let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let transport = match scheme {
        "mqtt" => Transport::Tcp,
        "mqtts" => Transport::Tls,
        "ws" => Transport::Ws,
        "wss" => Transport::Wss,
        _ => return Err(bad("the scheme must be mqtt, mqtts, ws or wss")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let (username, password) = match credentials {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(c.to_owned()), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port.map(|p| p.parse::<u16>().map_err(|_| bad("bad port"))).transpose()?;
    let path = match (transport, path) {
        // mosquitto's -L: the path is the topic.
        (Transport::Tcp | Transport::Tls, Some(p)) if p.len() > 1 => Some(p[1..].to_owned()),
        (Transport::Tcp | Transport::Tls, _) => None,
        (_, p) => p.map(str::to_owned),
    };
    Ok(Url { transport, username, password, host: host.to_owned(), port, path })
}

/// Everything needed to connect, worked out from the flags.
#[derive(Debug)]
pub struct Prepared {
    /// Where and how.
    pub target: Target,
    /// The CONNECT to send.
    pub connect: Connect,
    /// The client id (for `-d` lines).
    pub client_id: String,
    /// `-D` properties per command.
    pub properties: Properties,
    /// The topic from an `mqtt(s)://` URL path, if any.
    pub url_topic: Option<String>,
}

impl ConnectArgs {
    /// Checks the flags and resolves the broker (`tool` names the command in messages).
    pub async fn prepare(&self, tool: &str) -> Result<Prepared, Failure> {
        let url = self.url.as_deref().map(parse_url).transpose().map_err(Failure::new)?;
        let tls_flags = self.cafile.is_some() || self.cert.is_some() || self.insecure;
        let transport = match &url {
            Some(u) => u.transport,
            None if self.ws && tls_flags => Transport::Wss,
            None if self.ws => Transport::Ws,
            None if tls_flags => Transport::Tls,
            None => Transport::Tcp,
        };
        let host = url.as_ref().map_or(self.host.as_str(), |u| u.host.as_str());
        let port = self
            .port
            .or(url.as_ref().and_then(|u| u.port))
            .unwrap_or_else(|| transport.default_port());
        let ws_path = match url.as_ref().and_then(|u| u.path.as_deref()) {
            Some(path) if matches!(transport, Transport::Ws | Transport::Wss) => path,
            _ => self.ws_path.as_str(),
        };
        let username =
            self.username.clone().or_else(|| url.as_ref().and_then(|u| u.username.clone()));
        let password =
            self.password.clone().or_else(|| url.as_ref().and_then(|u| u.password.clone()));
        if password.is_some() && username.is_none() {
            return Err(Failure::new("Error: a password (-P) needs a username (-u)"));
        }
        if self.persistent && self.id.is_none() {
            return Err(Failure::new(
                "Error: You must provide a client id if you are using the -c option.",
            ));
        }
        let properties = self.properties()?;
        let client_id = match (&self.id, &self.id_prefix) {
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            (None, None) => format!("{tool}-{:016x}", fastrand::u64(..)),
        };
        let target = Target::new(TargetOptions {
            host,
            port,
            transport,
            cafile: self.cafile.as_deref(),
            client_cert: self.cert.as_deref().zip(self.key.as_deref()),
            insecure: self.insecure,
            ws_path,
            version: self.version,
            keep_alive: self.keepalive,
            username: username.as_deref(),
            password: password.as_deref(),
        })
        .await
        .map_err(|e| Failure::from_client(e, self.version))?;
        let mut connect = target.connect_packet(&client_id);
        connect.clean_start = !self.persistent;
        if self.version.is_v5() {
            if self.persistent {
                connect.properties.session_expiry_interval =
                    Some(self.session_expiry.unwrap_or(u32::MAX));
            }
            connect.properties.user_properties = Properties::user(&properties.connect);
        }
        if let Some(topic) = &self.will_topic {
            let qos = QoS::from_u8(self.will_qos).unwrap_or(QoS::AtMostOnce);
            connect.will = Some(LastWill {
                topic: topic.as_str().into(),
                payload: Bytes::from(self.will_payload.clone().unwrap_or_default().into_bytes()),
                qos,
                retain: self.will_retain,
                properties: Default::default(),
            });
        }
        Ok(Prepared {
            target,
            connect,
            client_id,
            properties,
            url_topic: url.and_then(|u| match u.transport {
                Transport::Tcp | Transport::Tls => u.path,
                _ => None,
            }),
        })
    }

    fn properties(&self) -> Result<Properties, Failure> {
        let mut out = Properties::default();
        if !self.properties.is_empty() && !self.version.is_v5() {
            return Err(Failure::new("Error: -D is only valid for MQTT v5 (-V mqttv5)."));
        }
        // clap hands the words of every -D over as one list; each property is
        // COMMAND NAME VALUE, with two values for user-property.
        let mut words = self.properties.as_slice();
        while !words.is_empty() {
            let (command, name, values) = match words {
                [c, n, rest @ ..] => {
                    let count = if n == "user-property" { 2 } else { 1 };
                    let (values, after) = rest.split_at(count.min(rest.len()));
                    words = after;
                    (c.as_str(), n.as_str(), values)
                }
                _ => return Err(Failure::new("Error: -D needs a command, a name and a value.")),
            };
            let one = || match values {
                [v] => Ok(v.clone()),
                _ => Err(Failure::new(format!("Error: -D {command} {name} takes one value."))),
            };
            let property = match name {
                "user-property" => match values {
                    [k, v] => PropertyArg::User(k.clone(), v.clone()),
                    _ => {
                        return Err(Failure::new(
                            "Error: -D COMMAND user-property takes a key and a value.",
                        ));
                    }
                },
                "content-type" => PropertyArg::ContentType(one()?),
                "response-topic" => PropertyArg::ResponseTopic(one()?),
                "correlation-data" => PropertyArg::CorrelationData(one()?),
                "message-expiry-interval" => {
                    PropertyArg::MessageExpiry(one()?.parse().map_err(|_| {
                        Failure::new("Error: message-expiry-interval takes seconds.")
                    })?)
                }
                "payload-format-indicator" => PropertyArg::PayloadFormat(match one()?.as_str() {
                    "0" => false,
                    "1" => true,
                    _ => return Err(Failure::new("Error: payload-format-indicator is 0 or 1.")),
                }),
                other => {
                    return Err(Failure::new(format!("Error: Invalid property name {other:?}.")));
                }
            };
            let user = matches!(property, PropertyArg::User(..));
            match command {
                "connect" if user => out.connect.push(property),
                "subscribe" if user => out.subscribe.push(property),
                "publish" => out.publish.push(property),
                "connect" | "subscribe" => {
                    return Err(Failure::new(format!(
                        "Error: {name} is not a valid property for {command}."
                    )));
                }
                other => {
                    return Err(Failure::new(format!(
                        "Error: Invalid command {other:?} for -D (connect, publish, subscribe)."
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// A packet id counter (1..=65535, wrapping).
#[derive(Debug, Clone)]
pub struct PacketIds(u16);

impl PacketIds {
    /// Starts at 1.
    pub fn new() -> Self {
        Self(0)
    }

    /// The next id.
    pub fn next_id(&mut self) -> NonZeroU16 {
        self.0 = self.0.wrapping_add(1);
        if self.0 == 0 {
            self.0 = 1;
        }
        NonZeroU16::new(self.0).unwrap_or(NonZeroU16::MIN)
    }
}

impl Default for PacketIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_mosquitto_for_mqtt_and_carry_the_path_for_ws() {
        let u = parse_url("mqtt://user:pw@broker:1884/a/b").expect("valid");
        assert_eq!(u.transport, Transport::Tcp);
        assert_eq!(u.username.as_deref(), Some("user"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, "broker");
        assert_eq!(u.port, Some(1884));
        assert_eq!(u.path.as_deref(), Some("a/b"));
        let w = parse_url("wss://[::1]:8084/mqtt").expect("valid");
        assert_eq!(w.transport, Transport::Wss);
        assert_eq!(w.host, "::1");
        assert_eq!(w.path.as_deref(), Some("/mqtt"));
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
    }

    #[test]
    fn versions_take_both_spellings() {
        assert_eq!(parse_version("mqttv5"), Ok(ProtocolVersion::V5));
        assert_eq!(parse_version("311"), Ok(ProtocolVersion::V311));
        assert_eq!(parse_version("31"), Ok(ProtocolVersion::V31));
        assert!(parse_version("4").is_err());
    }

    #[test]
    fn packet_ids_skip_zero() {
        let mut ids = PacketIds(u16::MAX - 1);
        assert_eq!(ids.next_id().get(), u16::MAX);
        assert_eq!(ids.next_id().get(), 1);
    }
}
