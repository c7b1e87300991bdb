//! `tern pub`: publishes one message (`-m`, `-f`, `-n`, `-s`) or one per line of standard input
//! (`-l`), at QoS 0, 1 or 2, and waits for each to be acknowledged before the next.

use std::path::PathBuf;

use bytes::Bytes;
use mqtt_codec::{Packet, PubRel, Publish, PublishProperties, QoS};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::{
    ConnectArgs, Failure,
    options::{PacketIds, parse_qos},
    reason,
    session::Session,
};

/// `tern pub`: mosquitto_pub's flags.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic")]
    pub topic: Option<String>,
    /// Message payload.
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Send a zero-length (null) message.
    #[arg(short = 'n', long = "null-message")]
    pub null: bool,
    /// Send each line of standard input as a separate message.
    #[arg(short = 'l', long = "stdin-line")]
    pub lines: bool,
    /// Send the whole of standard input as one message.
    #[arg(short = 's', long = "stdin-file")]
    pub stdin: bool,
    /// Quality of service: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    pub retain: bool,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Where the payload comes from.
enum Source {
    One(Bytes),
    Lines,
}

impl PubArgs {
    async fn source(&self) -> Result<Source, Failure> {
        let given =
            [self.message.is_some(), self.file.is_some(), self.null, self.lines, self.stdin];
        match given.iter().filter(|g| **g).count() {
            0 => return Err(Failure::new("Error: Both topic and message must be supplied.")),
            1 => {}
            _ => return Err(Failure::new("Error: Only one type of message can be sent at once.")),
        }
        if let Some(m) = &self.message {
            return Ok(Source::One(Bytes::from(m.clone().into_bytes())));
        }
        if let Some(path) = &self.file {
            return tokio::fs::read(path).await.map(|b| Source::One(b.into())).map_err(|e| {
                Failure::new(format!(
                    "Error loading input file \"{}\": {}.",
                    path.display(),
                    reason::io_message(&e)
                ))
            });
        }
        if self.stdin {
            let mut all = Vec::new();
            tokio::io::stdin().read_to_end(&mut all).await.map_err(|e| {
                Failure::new(format!("Error reading standard input: {}", reason::io_message(&e)))
            })?;
            return Ok(Source::One(all.into()));
        }
        if self.lines {
            return Ok(Source::Lines);
        }
        Ok(Source::One(Bytes::new()))
    }
}

/// Runs `tern pub`; with `-l`, until standard input ends or `stop` is cancelled (then it
/// disconnects cleanly).
pub async fn run(args: &PubArgs, stop: &CancellationToken) -> Result<(), Failure> {
    let prepared = args.connect.prepare("tern-pub").await?;
    let Some(topic) = args.topic.clone().or_else(|| prepared.url_topic.clone()) else {
        return Err(Failure::new("Error: Both topic and message must be supplied."));
    };
    if mqtt_codec::validate_topic_name(&topic).is_err() {
        return Err(Failure::new(format!(
            "Error: Invalid publish topic '{topic}', does it contain '+' or '#'?"
        )));
    }
    let source = args.source().await?;
    let properties = if prepared.connect.protocol_version.is_v5() {
        prepared.properties.publish_properties()
    } else {
        PublishProperties::default()
    };
    let mut session = Session::open(&prepared, args.connect.debug).await?;
    let mut publisher =
        Publisher { ids: PacketIds::new(), topic, qos: args.qos, retain: args.retain, properties };
    let outcome = match source {
        Source::One(payload) => publisher.publish(&mut session, payload).await,
        Source::Lines => publisher.lines(&mut session, stop).await,
    };
    session.close().await;
    outcome
}

struct Publisher {
    ids: PacketIds,
    topic: String,
    qos: QoS,
    retain: bool,
    properties: PublishProperties,
}

impl Publisher {
    /// Publishes each line of standard input (without its line ending) until it ends or `stop`
    /// is cancelled; a publish under way is finished first.
    async fn lines(
        &mut self,
        session: &mut Session,
        stop: &CancellationToken,
    ) -> Result<(), Failure> {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        loop {
            // Both branches are cancel safe: `next_line` keeps partial lines, `recv` its buffer.
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => self.publish(session, Bytes::from(line.into_bytes())).await?,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        return Err(Failure::new(format!(
                            "Error reading standard input: {}",
                            reason::io_message(&e)
                        )));
                    }
                },
                () = stop.cancelled() => return Ok(()),
                packet = session.recv() => {
                    // Nothing is expected between publishes; a DISCONNECT or close ends the run.
                    packet?;
                }
            }
        }
    }

    /// Publishes one message and waits for its acknowledgement (QoS 1 and 2).
    async fn publish(&mut self, session: &mut Session, payload: Bytes) -> Result<(), Failure> {
        let mut publish = Publish::new(self.topic.as_str().into(), payload);
        publish.qos = self.qos;
        publish.retain = self.retain;
        publish.properties = self.properties.clone();
        let id = (self.qos != QoS::AtMostOnce).then(|| self.ids.next_id());
        publish.packet_id = id;
        session.send(&Packet::Publish(publish)).await?;
        let Some(id) = id else { return Ok(()) };
        loop {
            match session.recv().await? {
                Packet::PubAck(ack) if ack.packet_id == id => {
                    return refused(id.get(), ack.reason_code.as_u8());
                }
                Packet::PubRec(rec) if rec.packet_id == id => {
                    refused(id.get(), rec.reason_code.as_u8())?;
                    session.send(&Packet::PubRel(PubRel::new(id))).await?;
                }
                Packet::PubComp(comp) if comp.packet_id == id => {
                    return refused(id.get(), comp.reason_code.as_u8());
                }
                _ => {}
            }
        }
    }
}

/// mosquitto_pub's warning for an MQTT 5 acknowledgement with an error reason code.
fn refused(mid: u16, code: u8) -> Result<(), Failure> {
    if code < 0x80 {
        return Ok(());
    }
    Err(Failure::new(format!("Warning: Publish {mid} failed: {}.", reason::reason_string(code))))
}
