//! Messages to the client: deliveries taken from the mailbox (in order, within the client's
//! Receive Maximum for QoS 1/2), outbound topic aliases, Message Expiry, the client's Maximum
//! Packet Size, and the resend of unacknowledged messages after a reconnect.

use std::{num::NonZeroU16, sync::Arc, time::Instant};

use mqtt_codec::{Packet, PubRel, Publish, QoS, encode_publish};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{BATCH, Connection, HIGH_WATER};
use crate::{
    events::{Event, EventKind},
    message::Delivery,
    session::Stage,
};

impl<R, W> Connection<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin,
{
    /// Whether a QoS 1/2 message may be sent now (MQTT 5 Receive Maximum, and ours).
    pub(super) fn window_open(&self) -> bool {
        let window = self.limits.receive_maximum.min(self.config.receive_maximum.max(1));
        self.session.outbound.len() < usize::from(window)
    }

    /// Moves deliveries from the mailbox into the output buffer while there is room, keeping
    /// their order: only as many QoS 1/2 deliveries are taken as the inflight window has room
    /// for, and the first one that does not fit stops the batch (it stays queued).
    pub(super) fn fill_from_mailbox(&mut self) {
        while self.wbuf.len() < HIGH_WATER {
            let window =
                usize::from(self.limits.receive_maximum.min(self.config.receive_maximum.max(1)));
            let mut room = window.saturating_sub(self.session.outbound.len());
            let mut batch = std::mem::take(&mut self.scratch);
            let taken = self.session.mailbox.pop_into_while(&mut batch, BATCH, |d| {
                if d.qos == QoS::AtMostOnce {
                    true
                } else if room > 0 {
                    room -= 1;
                    true
                } else {
                    false
                }
            });
            for delivery in batch.drain(..) {
                self.send_delivery(delivery);
            }
            self.scratch = batch;
            if taken < BATCH {
                return;
            }
        }
    }

    /// Writes one delivery (new, not a resend).
    fn send_delivery(&mut self, delivery: Delivery) {
        let now = Instant::now();
        let message = &delivery.message;
        if message.is_expired(now) {
            self.dropped(&delivery, "expired");
            return;
        }
        let mut publish = self.publish_for(&delivery, now);
        let new_alias = self.apply_outbound_alias(&mut publish);
        if delivery.qos != QoS::AtMostOnce {
            // Any id has the same size; the real one is allocated once the message will be sent.
            publish.packet_id = NonZeroU16::new(1);
        }
        let too_large = publish
            .encoded_len(self.version)
            .map_or(true, |len| len > self.limits.max_packet_size as usize);
        if too_large {
            if let Some(topic) = new_alias {
                self.outbound_aliases.remove(&topic);
            }
            // [MQTT-3.1.2-25]: dropped for this client, as if delivered.
            self.dropped(&delivery, "too_large");
            return;
        }
        if delivery.qos != QoS::AtMostOnce {
            let Some(packet_id) = self.session.outbound.allocate() else {
                self.session.mailbox.unpop(vec![delivery]);
                return;
            };
            publish.packet_id = Some(packet_id);
            self.session.outbound.push(packet_id, delivery.clone());
        }
        self.write_publish(&publish);
        self.delivered(delivery);
    }

    /// The PUBLISH for a delivery (no packet id, no alias yet): QoS after downgrade, RETAIN as
    /// decided by the router, and for MQTT 5 the message's properties with the expiry counted down
    /// and the matching subscription identifiers.
    fn publish_for(&self, delivery: &Delivery, now: Instant) -> Publish {
        let message = &delivery.message;
        let mut publish = Publish::new(message.topic.clone(), message.payload.clone());
        publish.qos = delivery.qos;
        publish.retain = delivery.retain;
        if self.version.is_v5() {
            publish.properties = message.properties.clone();
            publish.properties.message_expiry_interval = message.remaining_expiry(now);
            publish.properties.subscription_identifiers = delivery
                .subscription_ids
                .iter()
                .filter_map(|&id| std::num::NonZeroU32::new(id))
                .collect();
        }
        publish
    }

    /// Assigns or applies an outbound topic alias (MQTT 5, when the client accepts aliases).
    /// Returns the topic when a new alias was assigned by this call.
    fn apply_outbound_alias(&mut self, publish: &mut Publish) -> Option<bytestring::ByteString> {
        if self.limits.topic_alias_maximum == 0 {
            return None;
        }
        if let Some(&alias) = self.outbound_aliases.get(&publish.topic) {
            publish.properties.topic_alias = NonZeroU16::new(alias);
            publish.topic = bytestring::ByteString::new();
            return None;
        }
        let next = self.outbound_aliases.len() + 1;
        if next > usize::from(self.limits.topic_alias_maximum) {
            return None;
        }
        let alias = u16::try_from(next).ok()?;
        self.outbound_aliases.insert(publish.topic.clone(), alias);
        publish.properties.topic_alias = NonZeroU16::new(alias);
        Some(publish.topic.clone())
    }

    fn write_publish(&mut self, publish: &Publish) {
        match encode_publish(publish, self.version, &mut self.wbuf) {
            Ok(()) => {
                self.broker.stats.packets_sent.inc();
                self.broker.stats.messages_sent.inc();
            }
            Err(error) => {
                tracing::warn!(client_id = %self.client.client_id, %error, "PUBLISH not encoded");
            }
        }
    }

    /// After a reconnect: resends every unacknowledged PUBLISH with DUP set, and every PUBREL,
    /// in their original order, before any new message.
    pub(super) fn resend_inflight(&mut self) {
        let now = Instant::now();
        let mut packets = Vec::new();
        for entry in self.session.outbound.iter() {
            match &entry.stage {
                Stage::Published(delivery) => {
                    let mut publish = self.publish_for(delivery, now);
                    publish.dup = true;
                    publish.packet_id = Some(entry.packet_id);
                    packets.push(Packet::Publish(publish));
                }
                Stage::Released(_) => packets.push(Packet::PubRel(PubRel::new(entry.packet_id))),
            }
        }
        for packet in packets {
            match &packet {
                Packet::Publish(publish) => self.write_publish(publish),
                other => self.send(other),
            }
        }
    }

    fn delivered(&self, delivery: Delivery) {
        let client = &self.client;
        self.broker.emit(EventKind::MessageDelivered, || Event::MessageDelivered {
            client: Arc::clone(client),
            delivery,
        });
    }

    fn dropped(&self, delivery: &Delivery, reason: &'static str) {
        self.broker.stats.messages_dropped.inc();
        self.broker.emit(EventKind::MessageDropped, || Event::MessageDropped {
            client_id: Some(self.client.client_id.clone()),
            message: Arc::clone(&delivery.message),
            reason,
        });
    }
}
