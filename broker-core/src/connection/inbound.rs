//! Packets from the client: PUBLISH (topic aliases, exactly-once bookkeeping, authorization,
//! routing, acknowledgement), the acknowledgements of our own PUBLISHes, SUBSCRIBE (authorization,
//! retained messages), UNSUBSCRIBE, PINGREQ, DISCONNECT.

use std::{sync::Arc, time::Instant as StdInstant};

use bytestring::ByteString;
use mqtt_codec::{
    DisconnectReasonCode, Packet, PubAck, PubAckReasonCode, PubComp, PubCompReasonCode, PubRec,
    PubRecReasonCode, PubRel, PubRelReasonCode, Publish, QoS, RetainHandling, SubAck,
    SubAckReasonCode, Subscribe, UnsubAck, UnsubAckReasonCode, Unsubscribe,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Connection, Exit};
use crate::{
    auth::{Check, DenyAction, Permission},
    clock,
    events::{Event, EventKind, SubscriptionEvent},
    message::{Delivery, Message},
    router::{RouteOptions, SubscriptionFilter},
    session::SubscriptionRecord,
};

impl<R, W> Connection<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin,
{
    /// Handles a packet, or sets it aside while PUBLISH is paused (see the module docs of
    /// `connection`): PUBLISH, SUBSCRIBE and UNSUBSCRIBE wait in order; acknowledgements and pings
    /// are handled at once; DISCONNECT first handles everything set aside.
    pub(super) async fn handle_packet(&mut self, packet: Packet) -> Result<(), Exit> {
        if self.congested.is_some() || !self.deferred.is_empty() {
            match packet {
                Packet::Publish(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => {
                    self.deferred.push_back(packet);
                    return Ok(());
                }
                Packet::Disconnect(_) => {
                    while let Some(earlier) = self.deferred.pop_front() {
                        self.handle_now(earlier).await?;
                    }
                    self.congested = None;
                }
                _ => {}
            }
        }
        self.handle_now(packet).await
    }

    /// Handles a packet now.
    pub(super) async fn handle_now(&mut self, packet: Packet) -> Result<(), Exit> {
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish).await,
            Packet::PubAck(ack) => {
                if let Some(delivery) = self.session.outbound.puback(ack.packet_id) {
                    self.acked(delivery);
                }
                Ok(())
            }
            Packet::PubRec(rec) => {
                if rec.reason_code.is_error() {
                    // The subscriber refused the message: the exchange ends here.
                    self.session.outbound.discard(rec.packet_id);
                } else if self.session.outbound.pubrec(rec.packet_id) {
                    self.send(&Packet::PubRel(PubRel::new(rec.packet_id)));
                } else {
                    let mut rel = PubRel::new(rec.packet_id);
                    rel.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
                    self.send(&Packet::PubRel(rel));
                }
                Ok(())
            }
            Packet::PubRel(rel) => {
                let mut comp = PubComp::new(rel.packet_id);
                if !self.session.awaiting_release.release(rel.packet_id) {
                    comp.reason_code = PubCompReasonCode::PacketIdentifierNotFound;
                }
                self.send(&Packet::PubComp(comp));
                Ok(())
            }
            Packet::PubComp(comp) => {
                if let Some(delivery) = self.session.outbound.pubcomp(comp.packet_id) {
                    self.acked(delivery);
                }
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(subscribe).await,
            Packet::Unsubscribe(unsubscribe) => {
                self.handle_unsubscribe(unsubscribe);
                Ok(())
            }
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(disconnect) => {
                if let Some(expiry) = disconnect.properties.session_expiry_interval {
                    // [MQTT-3.14.2-2]: a session that was to end at disconnect cannot be kept now.
                    if self.session.expiry_interval == 0 && expiry != 0 {
                        return Err(Exit::protocol(
                            DisconnectReasonCode::ProtocolError,
                            "session expiry set at DISCONNECT for a session that ends at disconnect",
                        ));
                    }
                    self.session.expiry_interval = expiry.min(self.config.max_session_expiry);
                }
                Err(Exit::ClientDisconnect {
                    with_will: disconnect.reason_code
                        == DisconnectReasonCode::DisconnectWithWillMessage,
                })
            }
            // Enhanced authentication is not offered, so AUTH is never expected.
            Packet::Auth(_) => Err(Exit::protocol(
                DisconnectReasonCode::ProtocolError,
                "enhanced authentication (AUTH) is not offered",
            )),
            // The decoder only lets client-to-server packets through.
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => Err(Exit::protocol(
                DisconnectReasonCode::ProtocolError,
                "packet not expected from a client",
            )),
        }
    }

    /// A reason string for an acknowledgement, when the client asked for problem information.
    fn problem(&self, why: &'static str) -> Option<ByteString> {
        self.limits.problem_information.then(|| ByteString::from_static(why))
    }

    fn acked(&self, delivery: Delivery) {
        let client = &self.client;
        self.broker.emit(EventKind::MessageAcked, || Event::MessageAcked {
            client: Arc::clone(client),
            delivery,
        });
    }

    /// Resolves the topic of a PUBLISH through the inbound topic aliases.
    fn resolve_topic(&mut self, publish: &mut Publish) -> Result<(), Exit> {
        let Some(alias) = publish.properties.topic_alias.take() else {
            return Ok(());
        };
        let alias = usize::from(alias.get());
        if alias > usize::from(self.config.max_topic_alias) {
            return Err(Exit::protocol(
                DisconnectReasonCode::TopicAliasInvalid,
                "topic alias above the Topic Alias Maximum",
            ));
        }
        if publish.topic.is_empty() {
            match self.inbound_aliases.get(alias - 1).and_then(Option::as_ref) {
                Some(topic) => publish.topic = topic.clone(),
                None => {
                    return Err(Exit::protocol(
                        DisconnectReasonCode::ProtocolError,
                        "unknown topic alias",
                    ));
                }
            }
        } else {
            if self.inbound_aliases.len() < alias {
                self.inbound_aliases.resize(alias, None);
            }
            self.inbound_aliases[alias - 1] = Some(publish.topic.clone());
        }
        Ok(())
    }

    async fn handle_publish(&mut self, mut publish: Publish) -> Result<(), Exit> {
        self.resolve_topic(&mut publish)?;
        if publish.retain && !self.config.retain_available {
            return Err(Exit::protocol(
                DisconnectReasonCode::RetainNotSupported,
                "retained messages are not supported",
            ));
        }
        let packet_id = publish.packet_id;
        if publish.qos == QoS::ExactlyOnce {
            let Some(id) = packet_id else {
                return Err(Exit::protocol(
                    DisconnectReasonCode::ProtocolError,
                    "QoS 2 PUBLISH without packet identifier",
                ));
            };
            if !self.session.awaiting_release.insert(id, StdInstant::now()) {
                // Already routed and awaiting PUBREL: never route it again. A retransmission
                // (DUP) is acknowledged again; a new message reusing the id is refused (5.0).
                let mut rec = PubRec::new(id);
                if !publish.dup && self.version.is_v5() {
                    rec.reason_code = PubRecReasonCode::PacketIdentifierInUse;
                }
                self.send(&Packet::PubRec(rec));
                return Ok(());
            }
            // MQTT 5 clients must stay within the Receive Maximum we advertised; 3.1.x clients
            // know no such limit, so they get `max_awaiting_rel`. Entries older than
            // `await_rel_timeout` (a PUBREL that never came) are forgotten first.
            let limit = if self.version.is_v5() {
                usize::from(self.config.receive_maximum)
            } else {
                self.config.max_awaiting_rel.max(1)
            };
            if self.session.awaiting_release.len() > limit {
                let stale = StdInstant::now()
                    .checked_sub(self.config.await_rel_timeout)
                    .unwrap_or_else(StdInstant::now);
                self.session.awaiting_release.expire(stale);
            }
            if self.session.awaiting_release.len() > limit {
                return Err(Exit::protocol(
                    DisconnectReasonCode::ReceiveMaximumExceeded,
                    "too many QoS 2 messages awaiting PUBREL",
                ));
            }
        }

        let permission = match self.authorizer.publish(&publish.topic, publish.qos, publish.retain)
        {
            Check::Ready(p) => p,
            Check::Pending(decision) => tokio::time::timeout(self.config.auth_timeout, decision)
                .await
                .unwrap_or(Permission::Deny),
        };
        if permission == Permission::Deny {
            return self.publish_denied(publish);
        }

        publish.properties.subscription_identifiers.clear();
        let message = Arc::new(Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
            publisher: Some(self.session.id),
            from_client_id: self.client.client_id.clone(),
            from_username: self.client.username.clone(),
            received_at: StdInstant::now(),
            received_at_ms: clock::now_ms(),
        });
        let routed = self.broker.publish(message);
        let matched = routed.queued > 0 || routed.dropped > 0;
        if let Some(queue) = routed.congested {
            self.congested = Some((queue, tokio::time::Instant::now() + super::PAUSE_LIMIT));
        }
        match (publish.qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                let mut ack = PubAck::new(id);
                if !matched {
                    ack.reason_code = PubAckReasonCode::NoMatchingSubscribers;
                }
                self.send(&Packet::PubAck(ack));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let mut rec = PubRec::new(id);
                if !matched {
                    rec.reason_code = PubRecReasonCode::NoMatchingSubscribers;
                }
                self.send(&Packet::PubRec(rec));
            }
            _ => {}
        }
        Ok(())
    }

    fn publish_denied(&mut self, publish: Publish) -> Result<(), Exit> {
        tracing::info!(client_id = %self.client.client_id, topic = %publish.topic, "publish denied");
        self.broker.stats.messages_dropped.inc();
        if self.authorizer.deny_action() == DenyAction::Disconnect {
            return Err(Exit::protocol(
                DisconnectReasonCode::NotAuthorized,
                "publish not authorized",
            ));
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                let mut ack = PubAck::new(id);
                ack.reason_code = PubAckReasonCode::NotAuthorized;
                ack.properties.reason_string = self.problem("publish not authorized");
                self.send(&Packet::PubAck(ack));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let mut rec = PubRec::new(id);
                if self.version.is_v5() {
                    // An error PUBREC ends the exchange: no PUBREL will come.
                    self.session.awaiting_release.release(id);
                    rec.reason_code = PubRecReasonCode::NotAuthorized;
                    rec.properties.reason_string = self.problem("publish not authorized");
                }
                self.send(&Packet::PubRec(rec));
            }
            _ => {}
        }
        Ok(())
    }

    async fn handle_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Exit> {
        let subscription_id = subscribe.properties.subscription_identifier.map(|n| n.get());
        let requested: Vec<(ByteString, mqtt_codec::QoS)> =
            subscribe.subscriptions.iter().map(|s| (s.filter.clone(), s.options.qos)).collect();
        let client = Arc::clone(&self.client);
        self.broker.emit(EventKind::ClientSubscribe, || Event::ClientSubscribe {
            client: Arc::clone(&client),
            subscriptions: subscribe
                .subscriptions
                .iter()
                .map(|s| SubscriptionEvent {
                    filter: s.filter.clone(),
                    options: route_options(&s.options, subscription_id),
                    retain_handling: s.options.retain_handling as u8,
                })
                .collect(),
        });
        let permissions =
            tokio::time::timeout(self.config.auth_timeout, self.authorizer.subscribe(requested))
                .await
                .unwrap_or_default();

        let max_subs = self.config.max_subscriptions_per_client;
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let mut retained: Vec<Delivery> = Vec::new();
        let mut denied = false;
        for (i, sub) in subscribe.subscriptions.iter().enumerate() {
            if permissions.get(i) != Some(&Permission::Allow) {
                denied = true;
                codes.push(SubAckReasonCode::NotAuthorized);
                continue;
            }
            if max_subs > 0
                && self.session.subscriptions.len() >= max_subs
                && !self.session.subscriptions.contains_key(&sub.filter)
            {
                codes.push(SubAckReasonCode::QuotaExceeded);
                continue;
            }
            let filter = SubscriptionFilter::parse(&sub.filter);
            let options = route_options(&sub.options, subscription_id);
            let is_new = self.broker.router.subscribe(&filter, &self.session.mailbox, options);
            let send_retained = self.config.retain_available
                && !filter.is_shared()
                && match sub.options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendAtSubscribeIfNew => is_new,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                let now = StdInstant::now();
                for message in self.broker.retained.matching(&filter.filter, now) {
                    retained.push(Delivery {
                        qos: message.qos.min(sub.options.qos),
                        retain: true,
                        subscription_ids: subscription_id.into_iter().collect(),
                        message,
                    });
                }
            }
            self.session.subscriptions.insert(
                sub.filter.clone(),
                SubscriptionRecord {
                    filter,
                    options,
                    retain_handling: sub.options.retain_handling,
                },
            );
            self.broker.emit(EventKind::SessionSubscribed, || Event::SessionSubscribed {
                client: Arc::clone(&client),
                subscription: SubscriptionEvent {
                    filter: sub.filter.clone(),
                    options,
                    retain_handling: sub.options.retain_handling as u8,
                },
            });
            codes.push(SubAckReasonCode::granted(sub.options.qos));
        }
        let mut properties = mqtt_codec::AckProperties::default();
        if denied {
            properties.reason_string = self.problem("subscription not authorized");
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: codes,
            properties,
        }));
        // Retained messages follow the SUBACK, through the mailbox like any routed message.
        for delivery in retained {
            if let crate::mailbox::Pushed::Dropped(reason, d) = self.session.mailbox.push(delivery)
            {
                tracing::debug!(topic = %d.message.topic, reason = reason.as_str(), "retained message not queued");
            }
        }
        if denied && self.authorizer.deny_action() == DenyAction::Disconnect {
            return Err(Exit::protocol(
                DisconnectReasonCode::NotAuthorized,
                "subscription not authorized",
            ));
        }
        Ok(())
    }

    fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let client = Arc::clone(&self.client);
        self.broker.emit(EventKind::ClientUnsubscribe, || Event::ClientUnsubscribe {
            client: Arc::clone(&client),
            filters: unsubscribe.filters.clone(),
        });
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let removed = match self.session.subscriptions.remove(filter) {
                Some(record) => {
                    self.broker.router.unsubscribe(&record.filter, &self.session.mailbox)
                }
                None => false,
            };
            if removed {
                self.broker.emit(EventKind::SessionUnsubscribed, || Event::SessionUnsubscribed {
                    client: Arc::clone(&client),
                    filter: filter.clone(),
                });
                codes.push(UnsubAckReasonCode::Success);
            } else {
                codes.push(UnsubAckReasonCode::NoSubscriptionExisted);
            }
        }
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes: codes,
            properties: Default::default(),
        }));
    }
}

fn route_options(
    options: &mqtt_codec::SubscriptionOptions,
    subscription_id: Option<u32>,
) -> RouteOptions {
    RouteOptions {
        qos: options.qos,
        no_local: options.no_local,
        retain_as_published: options.retain_as_published,
        subscription_id,
    }
}
