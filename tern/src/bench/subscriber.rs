//! A subscriber connection: subscribes, reports ready once the SUBACK grants the subscription,
//! then counts every PUBLISH it receives: latency from the payload's send time (one clock read per
//! read batch), and loss, duplicates and reordering from each publisher's sequence. QoS 1/2
//! messages are acknowledged (PUBACK; PUBREC, then PUBCOMP on PUBREL) in batches.

use std::{num::NonZeroU16, pin::pin, time::Duration};

use mqtt_codec::{
    Packet, PubAck, PubComp, PubRec, QoS, RetainHandling, Subscribe, Subscription,
    SubscriptionOptions,
};
use tokio::{
    sync::mpsc,
    time::{Instant, MissedTickBehavior},
};

use super::{
    client::{self, ClientError, Connection},
    payload,
    scenario::Run,
    stats::{Completeness, Counters, FLUSH_EVERY_NS, Histogram, Tracker},
};

/// Read buffer space offered to a quiet subscriber.
const MIN_READ: usize = 4 * 1024;
/// Read buffer space offered to a busy subscriber.
const MAX_READ: usize = 64 * 1024;

/// How long the broker may take to answer the SUBSCRIBE.
const SUBACK_TIMEOUT: Duration = Duration::from_secs(15);

/// What one subscriber saw.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SubResult {
    /// PUBLISH packets received.
    pub received: u64,
    /// Distinct messages (by publisher and sequence).
    pub unique: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Messages that arrived after a later one of the same publisher.
    pub reordered: u64,
    /// Sequence numbers skipped and never received.
    pub open_gaps: u64,
    /// Payloads without the tool's header.
    pub untracked: u64,
}

/// Local tallies of one read batch, published to the shared counters at its end.
#[derive(Debug, Default)]
struct Batch {
    received: u64,
    untracked: u64,
    gaps: i64,
}

/// Subscribes to `filter` and counts what arrives until the run ends. Sends `true` on `ready`
/// once subscribed (`false` if that failed).
pub(crate) async fn run(
    run: &Run,
    index: u32,
    filter: &str,
    mode: Completeness,
    mut conn: Connection,
    ready: mpsc::Sender<bool>,
) -> SubResult {
    let mut result = SubResult::default();
    let subscribe = Subscribe {
        packet_id: NonZeroU16::MIN,
        subscriptions: vec![Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos: run.qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: RetainHandling::SendAtSubscribe,
            },
        }],
        properties: Default::default(),
    };
    if let Err(error) = conn.queue(&Packet::Subscribe(subscribe)) {
        run.error(format!("subscriber {index}: {error}"));
        let _ = ready.send(false).await;
        return result;
    }
    let mut tracker = Tracker::new(mode);
    let mut latency = Histogram::default();
    let mut last_flush = 0u64;
    let mut subscribed = false;
    let mut suback_deadline = pin!(tokio::time::sleep(SUBACK_TIMEOUT));
    let keep_alive = conn.keep_alive;
    let mut ping = tokio::time::interval(if keep_alive.is_zero() {
        Duration::from_secs(3600)
    } else {
        keep_alive / 2
    });
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_write = Instant::now();
    let mut unflushed = false;
    let mut stop_all = pin!(run.stop_all.cancelled());

    // Read buffer space offered per read: small for quiet subscribers, doubled (up to
    // MAX_READ) whenever a read fills it.
    let mut read_size = MIN_READ;

    loop {
        if conn.rbuf.capacity() - conn.rbuf.len() < read_size / 4 {
            conn.rbuf.reserve(read_size);
        }
        let spare = conn.rbuf.capacity() - conn.rbuf.len();
        tokio::select! {
            biased;
            () = &mut stop_all => break,
            read = tokio::io::AsyncReadExt::read_buf(&mut conn.reader, &mut conn.rbuf) => {
                let n = match read {
                    Ok(n) if n > 0 => n,
                    _ => {
                        run.lost_connection(&format!("subscriber {index}"), read.err());
                        break;
                    }
                };
                if n >= spare {
                    read_size = (read_size * 2).min(MAX_READ);
                }
                let now_ns = payload::now_ns();
                let (dup0, reord0) = (tracker.duplicates, tracker.reordered);
                let mut batch = Batch::default();
                match handle_input(&mut conn, &mut tracker, &mut latency, now_ns, &mut batch) {
                    Ok(suback) => {
                        if let Some(granted) = suback {
                            if !granted {
                                run.error(format!("subscriber {index}: subscription to {filter} refused"));
                                break;
                            }
                            subscribed = true;
                            Counters::add(&run.counters.subscribed, 1);
                            let _ = ready.send(true).await;
                        }
                    }
                    Err(error) => {
                        run.error(format!("subscriber {index}: {error}"));
                        break;
                    }
                }
                let c = &run.counters;
                result.received += batch.received;
                result.untracked += batch.untracked;
                Counters::add(&c.received, batch.received);
                Counters::add(&c.untracked, batch.untracked);
                Counters::add(&c.duplicates, tracker.duplicates - dup0);
                Counters::add(&c.reordered, tracker.reordered - reord0);
                c.add_gaps(batch.gaps);
                if batch.received > 0 {
                    run.received_at(now_ns);
                    if now_ns.saturating_sub(last_flush) >= FLUSH_EVERY_NS {
                        run.latencies.flush(&mut latency);
                        last_flush = now_ns;
                    }
                }
            }
            written = client::write_or_flush(&mut conn.writer, &mut conn.wbuf),
                if !conn.wbuf.is_empty() || unflushed =>
            {
                match written {
                    Ok(Some(0)) | Err(_) => {
                        run.lost_connection(&format!("subscriber {index}"), written.err());
                        break;
                    }
                    Ok(Some(_)) => {
                        unflushed = true;
                        last_write = Instant::now();
                    }
                    Ok(None) => unflushed = false,
                }
            }
            () = &mut suback_deadline, if !subscribed => {
                run.error(format!("subscriber {index}: no SUBACK within {SUBACK_TIMEOUT:?}"));
                break;
            }
            _ = ping.tick(), if !keep_alive.is_zero() => {
                if last_write.elapsed() >= keep_alive / 2 && conn.queue(&Packet::PingReq).is_err() {
                    break;
                }
            }
        }
    }
    if !subscribed {
        let _ = ready.send(false).await;
    }
    run.latencies.flush(&mut latency);
    result.unique = tracker.unique;
    result.duplicates = tracker.duplicates;
    result.reordered = tracker.reordered;
    result.open_gaps = tracker.open_gaps();
    conn.close().await;
    result
}

/// Handles every packet in the read buffer. Returns `Some(granted)` when a SUBACK came.
fn handle_input(
    conn: &mut Connection,
    tracker: &mut Tracker,
    latency: &mut Histogram,
    now_ns: u64,
    batch: &mut Batch,
) -> Result<Option<bool>, ClientError> {
    let mut suback = None;
    while let Some(packet) = conn.decode()? {
        match packet {
            Packet::Publish(publish) => {
                batch.received += 1;
                match payload::read(&publish.payload) {
                    Some(header) => {
                        latency.record(now_ns.saturating_sub(header.sent_ns));
                        batch.gaps += tracker.record(header.publisher, header.seq).1;
                    }
                    None => batch.untracked += 1,
                }
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => conn.queue(&Packet::PubAck(PubAck::new(id)))?,
                    (QoS::ExactlyOnce, Some(id)) => conn.queue(&Packet::PubRec(PubRec::new(id)))?,
                    _ => {}
                }
            }
            Packet::PubRel(rel) => conn.queue(&Packet::PubComp(PubComp::new(rel.packet_id)))?,
            Packet::SubAck(ack) => {
                suback = Some(ack.reason_codes.iter().all(|c| c.granted_qos().is_some()));
            }
            Packet::Disconnect(d) => {
                return Err(ClientError::Protocol(format!(
                    "the broker disconnected: {:?}",
                    d.reason_code
                )));
            }
            _ => {}
        }
    }
    Ok(suback)
}
