//! `tern sub`: subscribes to one or more filters and prints every message (payload, `-v` topic
//! and payload, or a `-F` format), until interrupted, `-C` messages, or a `-W` timeout.

use std::{collections::HashSet, io::Write, time::Duration};

use mqtt_codec::{
    Packet, PubAck, PubComp, PubRec, Publish, QoS, RetainHandling, Subscribe, Subscription,
    SubscriptionOptions,
};

use tokio_util::sync::CancellationToken;

use super::{
    ConnectArgs, Failure,
    options::{PacketIds, Properties, parse_qos},
    reason,
    session::Session,
};

/// mosquitto's exit code for `-W` timeouts (`MOSQ_ERR_TIMEOUT`).
const TIMED_OUT: u8 = 27;

/// `tern sub`: mosquitto_sub's flags.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic filter to subscribe to; repeat for several.
    #[arg(short = 't', long = "topic")]
    pub topics: Vec<String>,
    /// Quality of service of the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub count: Option<u64>,
    /// Print the topic before each payload.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Do not print a newline after each message.
    #[arg(short = 'N', long = "no-eol")]
    pub no_eol: bool,
    /// Skip stale retained messages (those sent because they were retained).
    #[arg(short = 'R', long = "no-stale")]
    pub no_stale: bool,
    /// Print only retained messages; exit at the first message that is not retained.
    #[arg(long = "retained-only")]
    pub retained_only: bool,
    /// Exit with code 27 when no message arrived for this many seconds.
    #[arg(short = 'W', long = "timeout")]
    pub timeout: Option<u64>,
    /// Exit once the subscriptions are acknowledged.
    #[arg(short = 'E', long = "exit-after-sub")]
    pub exit_after_sub: bool,
    /// Output format: %t topic, %p payload, %q QoS, %r retain flag, %l payload length,
    /// %m packet id, %P user properties (key:value, space separated), %C content type,
    /// %E message expiry interval, %% a percent sign; \n and \t escapes.
    #[arg(short = 'F', long = "format")]
    pub format: Option<String>,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Runs `tern sub`, writing messages to `out`, until done or `stop` is cancelled (then it
/// disconnects cleanly, as mosquitto_sub does on SIGINT: no will is published).
pub async fn run(
    args: &SubArgs,
    out: &mut (dyn Write + Send),
    stop: &CancellationToken,
) -> Result<(), Failure> {
    let prepared = args.connect.prepare("tern-sub").await?;
    let mut topics = args.topics.clone();
    if topics.is_empty()
        && let Some(t) = &prepared.url_topic
    {
        topics.push(t.clone());
    }
    if topics.is_empty() {
        return Err(Failure::new("Error: You must specify a topic to subscribe to."));
    }
    for t in &topics {
        if mqtt_codec::validate_topic_filter(t).is_err() {
            return Err(Failure::new(format!(
                "Error: Invalid subscription topic '{t}', are all '+' and '#' wildcards correct?"
            )));
        }
    }
    let mut session = Session::open(&prepared, args.connect.debug).await?;
    let mut ids = PacketIds::new();
    let subscribe = Subscribe {
        packet_id: ids.next_id(),
        subscriptions: topics
            .iter()
            .map(|t| Subscription {
                filter: t.as_str().into(),
                options: SubscriptionOptions {
                    qos: args.qos,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribe,
                },
            })
            .collect(),
        properties: mqtt_codec::SubscribeProperties {
            user_properties: Properties::user(&prepared.properties.subscribe),
            ..Default::default()
        },
    };
    let packet_id = subscribe.packet_id;
    session.send(&Packet::Subscribe(subscribe)).await?;
    let mut receiver = Receiver { args, out, received: 0, awaiting_rel: HashSet::new() };
    let outcome = receiver.receive(&mut session, &topics, packet_id, stop).await;
    session.close().await;
    outcome
}

struct Receiver<'a> {
    args: &'a SubArgs,
    out: &'a mut (dyn Write + Send),
    received: u64,
    /// QoS 2 packet ids delivered and not yet released (a resent PUBLISH is not printed twice).
    awaiting_rel: HashSet<u16>,
}

impl Receiver<'_> {
    async fn receive(
        &mut self,
        session: &mut Session,
        topics: &[String],
        subscribe_id: mqtt_codec::PacketId,
        stop: &CancellationToken,
    ) -> Result<(), Failure> {
        let idle = self.args.timeout.map(Duration::from_secs);
        let mut subscribed = false;
        loop {
            // Stopping is only honoured between packets, never halfway through an answer.
            let next = async {
                match idle {
                    Some(limit) => tokio::time::timeout(limit, session.recv())
                        .await
                        .map_err(|_| Failure { code: TIMED_OUT, message: "Timed out".into() })?,
                    None => session.recv().await,
                }
            };
            let packet = tokio::select! {
                packet = next => packet?,
                () = stop.cancelled() => return Ok(()),
            };
            match packet {
                Packet::SubAck(ack) if ack.packet_id == subscribe_id && !subscribed => {
                    subscribed = true;
                    self.check_suback(topics, &ack.reason_codes)?;
                    if self.args.exit_after_sub {
                        return Ok(());
                    }
                }
                Packet::Publish(publish) => {
                    let complete = self.message(session, publish).await?;
                    if complete {
                        return Ok(());
                    }
                }
                Packet::PubRel(rel) => {
                    self.awaiting_rel.remove(&rel.packet_id.get());
                    session.send(&Packet::PubComp(PubComp::new(rel.packet_id))).await?;
                }
                _ => {}
            }
        }
    }

    fn check_suback(
        &self,
        topics: &[String],
        codes: &[mqtt_codec::SubAckReasonCode],
    ) -> Result<(), Failure> {
        if !codes.is_empty() && codes.iter().all(|c| c.is_error()) {
            return Err(Failure::new("All subscription requests were denied."));
        }
        for (topic, code) in topics.iter().zip(codes) {
            if code.is_error() && !self.args.connect.quiet {
                eprintln!(
                    "Warning: subscription to '{topic}' was denied: {}",
                    reason::reason_string(code.as_u8())
                );
            }
        }
        Ok(())
    }

    /// Handles one PUBLISH; `true` when the run is complete.
    async fn message(&mut self, session: &mut Session, publish: Publish) -> Result<bool, Failure> {
        let id = publish.packet_id;
        let fresh = match (publish.qos, id) {
            (QoS::ExactlyOnce, Some(id)) => self.awaiting_rel.insert(id.get()),
            _ => true,
        };
        let mut done = false;
        if fresh {
            done = self.print(&publish)?;
        }
        match (publish.qos, id) {
            (QoS::AtLeastOnce, Some(id)) => session.send(&Packet::PubAck(PubAck::new(id))).await?,
            (QoS::ExactlyOnce, Some(id)) => session.send(&Packet::PubRec(PubRec::new(id))).await?,
            _ => {}
        }
        Ok(done)
    }

    /// Prints one message as the flags say; `true` when the run is complete.
    fn print(&mut self, publish: &Publish) -> Result<bool, Failure> {
        if self.args.retained_only && !publish.retain {
            return Ok(true);
        }
        if self.args.no_stale && publish.retain {
            return Ok(false);
        }
        let mut line = match &self.args.format {
            Some(format) => formatted(format, publish),
            None if self.args.verbose => {
                let mut v = publish.topic.as_bytes().to_vec();
                v.push(b' ');
                if publish.payload.is_empty() {
                    v.extend_from_slice(b"(null)");
                } else {
                    v.extend_from_slice(&publish.payload);
                }
                v
            }
            None => publish.payload.to_vec(),
        };
        if !self.args.no_eol {
            line.push(b'\n');
        }
        let written = self.out.write_all(&line).and_then(|()| self.out.flush());
        if let Err(e) = written {
            return Err(Failure::new(format!("Error writing output: {}", reason::io_message(&e))));
        }
        self.received += 1;
        Ok(self.args.count.is_some_and(|c| self.received >= c))
    }
}

/// Expands a `-F` format for one message.
fn formatted(format: &str, p: &Publish) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.extend_from_slice(p.topic.as_bytes()),
                Some('p') => out.extend_from_slice(&p.payload),
                Some('q') => out.extend_from_slice((p.qos as u8).to_string().as_bytes()),
                Some('r') => out.push(if p.retain { b'1' } else { b'0' }),
                Some('l') => out.extend_from_slice(p.payload.len().to_string().as_bytes()),
                Some('m') => out
                    .extend_from_slice(p.packet_id.map_or(0, |id| id.get()).to_string().as_bytes()),
                Some('P') => {
                    let pairs: Vec<String> = p
                        .properties
                        .user_properties
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect();
                    out.extend_from_slice(pairs.join(" ").as_bytes());
                }
                Some('C') => {
                    if let Some(ct) = &p.properties.content_type {
                        out.extend_from_slice(ct.as_bytes());
                    }
                }
                Some('E') => {
                    if let Some(e) = p.properties.message_expiry_interval {
                        out.extend_from_slice(e.to_string().as_bytes());
                    }
                }
                Some('%') => out.push(b'%'),
                Some(other) => {
                    out.push(b'%');
                    out.extend_from_slice(other.to_string().as_bytes());
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('\\') => out.push(b'\\'),
                Some(other) => {
                    out.push(b'\\');
                    out.extend_from_slice(other.to_string().as_bytes());
                }
                None => out.push(b'\\'),
            },
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_expand_like_mosquitto() {
        let mut p = Publish::new("a/b".into(), bytes::Bytes::from_static(b"hi"));
        p.qos = QoS::AtLeastOnce;
        p.retain = true;
        p.properties.user_properties.push(("k".into(), "v".into()));
        assert_eq!(formatted("%t %p %q %r %l [%P] %%\\t.", &p), b"a/b hi 1 1 2 [k:v] %\t.");
    }
}
