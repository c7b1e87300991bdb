//! A publisher connection: publishes on its topic at the run's rate (or as fast as the broker takes
//! it), many PUBLISH packets encoded into one buffer per write; at QoS 1/2 keeps at most the
//! in-flight window unacknowledged and completes the QoS 2 exchange (PUBREC -> PUBREL -> PUBCOMP).
//!
//! At the end of the run it stops producing, waits (up to the drain time) for the outstanding
//! acknowledgements, and disconnects.

use std::{num::NonZeroU16, pin::pin, time::Duration};

use bytes::Bytes;
use mqtt_codec::{Packet, PubRel, Publish, QoS, encode_publish_header};
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    client::{self, Connection},
    payload::{self, Header},
    scenario::Run,
    stats::Counters,
};

/// Output buffered above which the publisher stops encoding until some of it is written.
const HIGH_WATER: usize = 64 * 1024;

/// What one publisher did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PubResult {
    /// PUBLISH packets sent.
    pub sent: u64,
    /// PUBLISH packets acknowledged (PUBACK, PUBCOMP).
    pub acked: u64,
    /// PUBLISH packets still unacknowledged at the end.
    pub unacked: u64,
}

/// Packet identifiers in use: a bitmap (8 KiB, allocated on first use), handed out in order.
#[derive(Debug, Default)]
struct PacketIds {
    used: Vec<u64>,
    last: u16,
    count: usize,
}

impl PacketIds {
    fn len(&self) -> usize {
        self.count
    }

    fn is_set(&self, id: u16) -> bool {
        self.used.get(usize::from(id) / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// The next free identifier. The caller keeps fewer than 65,535 in use.
    fn allocate(&mut self) -> Option<NonZeroU16> {
        if self.used.is_empty() {
            self.used = vec![0; 1024];
        }
        for _ in 0..u16::MAX {
            self.last = if self.last == u16::MAX { 1 } else { self.last + 1 };
            if !self.is_set(self.last) {
                self.used[usize::from(self.last) / 64] |= 1 << (self.last % 64);
                self.count += 1;
                return NonZeroU16::new(self.last);
            }
        }
        None
    }

    /// Frees `id`; false when it was not in use.
    fn release(&mut self, id: NonZeroU16) -> bool {
        let id = id.get();
        if !self.is_set(id) {
            return false;
        }
        self.used[usize::from(id) / 64] &= !(1 << (id % 64));
        self.count -= 1;
        true
    }
}

/// Publishes on `topic` until the run stops publishing; returns what was sent and acknowledged.
pub(crate) async fn run(run: &Run, index: u32, topic: &str, mut conn: Connection) -> PubResult {
    let mut result = PubResult::default();
    tokio::select! {
        () = run.go.cancelled() => {}
        () = run.stop_all.cancelled() => {
            conn.close().await;
            return result;
        }
    }
    let started = run.started().unwrap_or_else(Instant::now);
    let qos = run.qos;
    let mut template = Publish::new(topic.into(), Bytes::from(vec![0u8; run.size]));
    template.qos = qos;
    if qos != QoS::AtMostOnce {
        template.packet_id = NonZeroU16::new(1);
    }
    let message_len = template.encoded_len(conn.version).unwrap_or(run.size + topic.len() + 8);
    let window = if qos == QoS::AtMostOnce {
        usize::MAX
    } else {
        usize::from(run.inflight.min(conn.server_receive_maximum))
    };
    // At max rate, a QoS 1/2 window is refilled once `refill` slots are free (1: a new PUBLISH
    // per acknowledgement, as most clients do; more: fewer, larger writes).
    let min_batch = if qos == QoS::AtMostOnce || run.rate.is_some() {
        1
    } else {
        run.refill.clamp(1, window.max(1))
    };
    let mut ids = PacketIds::default();
    let mut seq: u64 = 0;
    let mut ticker = run.rate.map(|rate| {
        let period = Duration::from_secs_f64((1.0 / rate).max(0.001));
        let mut t = tokio::time::interval_at(started, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Skip);
        t
    });
    let keep_alive = conn.keep_alive;
    let mut ping = tokio::time::interval(if keep_alive.is_zero() {
        Duration::from_secs(3600)
    } else {
        keep_alive / 2
    });
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_write = Instant::now();
    let mut stopping = false;
    let mut unflushed = false;
    let mut drain = pin!(tokio::time::sleep(Duration::from_secs(86_400)));
    // Created once and polled by reference: a new cancellation future per loop turn would
    // register a waiter each time.
    let mut stop_all = pin!(run.stop_all.cancelled());
    let mut stop_publishing = pin!(run.stop_publishing.cancelled());

    loop {
        if !stopping {
            let room = window.saturating_sub(ids.len());
            let due = match run.rate {
                None => room,
                Some(rate) => {
                    let target = (started.elapsed().as_secs_f64() * rate) as u64 + 1;
                    usize::try_from(target.saturating_sub(seq)).unwrap_or(usize::MAX).min(room)
                }
            };
            // At least one message when the buffer has room, even one larger than HIGH_WATER.
            let fits = match HIGH_WATER.checked_sub(conn.wbuf.len()) {
                Some(room) if room > 0 => room / message_len.max(1) + 1,
                _ => 0,
            };
            let n = due.min(fits);
            if n >= min_batch {
                conn.wbuf.reserve(n * message_len);
                let sent_ns = payload::now_ns();
                for _ in 0..n {
                    if qos != QoS::AtMostOnce {
                        template.packet_id = ids.allocate();
                    }
                    if let Err(error) =
                        encode_publish_header(&template, conn.version, &mut conn.wbuf)
                    {
                        run.error(format!("publisher {index}: cannot encode PUBLISH: {error}"));
                        conn.close().await;
                        return result;
                    }
                    payload::write(
                        &mut conn.wbuf,
                        run.size,
                        Header { sent_ns, publisher: index, seq },
                    );
                    seq += 1;
                }
                result.sent += n as u64;
                Counters::add(&run.counters.sent, n as u64);
            }
        } else if conn.wbuf.is_empty() && ids.len() == 0 {
            break;
        }
        if conn.rbuf.capacity() - conn.rbuf.len() < 1024 {
            conn.rbuf.reserve(16 * 1024);
        }
        tokio::select! {
            biased;
            () = &mut stop_all => break,
            () = &mut stop_publishing, if !stopping => {
                stopping = true;
                drain.as_mut().reset(Instant::now() + run.drain);
            }
            read = tokio::io::AsyncReadExt::read_buf(&mut conn.reader, &mut conn.rbuf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    run.lost_connection(&format!("publisher {index}"), read.err());
                    result.unacked = ids.len() as u64;
                    return result;
                }
                let before = result.acked;
                if let Err(error) = handle_input(&mut conn, &mut ids, &mut result) {
                    run.error(format!("publisher {index}: {error}"));
                    break;
                }
                Counters::add(&run.counters.acked, result.acked - before);
            }
            written = client::write_or_flush(&mut conn.writer, &mut conn.wbuf),
                if !conn.wbuf.is_empty() || unflushed =>
            {
                match written {
                    Ok(Some(0)) | Err(_) => {
                        run.lost_connection(&format!("publisher {index}"), written.err());
                        result.unacked = ids.len() as u64;
                        return result;
                    }
                    Ok(Some(_)) => {
                        unflushed = true;
                        last_write = Instant::now();
                    }
                    Ok(None) => unflushed = false,
                }
            }
            _ = async {
                match ticker.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            }, if ticker.is_some() && !stopping => {}
            () = &mut drain, if stopping => break,
            _ = ping.tick(), if !keep_alive.is_zero() => {
                if last_write.elapsed() >= keep_alive / 2 && conn.queue(&Packet::PingReq).is_err() {
                    break;
                }
            }
        }
    }
    result.unacked = ids.len() as u64;
    conn.close().await;
    result
}

/// Handles the acknowledgements in the read buffer.
fn handle_input(
    conn: &mut Connection,
    ids: &mut PacketIds,
    result: &mut PubResult,
) -> Result<(), crate::client::ClientError> {
    while let Some(packet) = conn.decode()? {
        match packet {
            Packet::PubAck(ack) if ids.release(ack.packet_id) => result.acked += 1,
            Packet::PubRec(rec) => {
                if rec.reason_code.is_error() {
                    // The broker refused the message: the exchange ends here.
                    ids.release(rec.packet_id);
                } else if ids.is_set(rec.packet_id.get()) {
                    conn.queue(&Packet::PubRel(PubRel::new(rec.packet_id)))?;
                }
            }
            Packet::PubComp(comp) if ids.release(comp.packet_id) => result.acked += 1,
            Packet::Disconnect(d) => {
                return Err(crate::client::ClientError::Protocol(format!(
                    "the broker disconnected: {:?}",
                    d.reason_code
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_wrap_and_skip_ids_in_use() {
        let mut ids = PacketIds::default();
        let first = ids.allocate().expect("free id");
        assert_eq!(first.get(), 1);
        for _ in 2..=u16::MAX {
            let id = ids.allocate().expect("free id");
            if id.get() != 2 {
                assert!(ids.release(id));
            }
        }
        // 1 and 2 are still in use: the next ones skip them.
        assert_eq!(ids.allocate().map(NonZeroU16::get), Some(3));
        assert!(ids.release(first));
        assert!(!ids.release(first));
        assert_eq!(ids.len(), 2);
    }
}
