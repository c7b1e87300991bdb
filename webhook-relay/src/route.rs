//! Which targets want an event: NanoMQ's rule semantics (the first rule naming the event whose
//! topic filter, if any, matches sends one POST; topics apply to message events only), and the
//! mapping between event payloads, proto event types and configuration event names.

use proto::events::v1::{Event, EventType, event::Payload};
use tern_config::{WebhookEvent, WebhookRule};

/// The configuration name of an event's type, or `None` for an event without payload.
pub fn event_kind(event: &Event) -> Option<WebhookEvent> {
    Some(match event.payload.as_ref()? {
        Payload::ClientConnect(_) => WebhookEvent::ClientConnect,
        Payload::ClientConnack(_) => WebhookEvent::ClientConnack,
        Payload::ClientConnected(_) => WebhookEvent::ClientConnected,
        Payload::ClientDisconnected(_) => WebhookEvent::ClientDisconnected,
        Payload::ClientSubscribe(_) => WebhookEvent::ClientSubscribe,
        Payload::ClientUnsubscribe(_) => WebhookEvent::ClientUnsubscribe,
        Payload::SessionSubscribed(_) => WebhookEvent::SessionSubscribed,
        Payload::SessionUnsubscribed(_) => WebhookEvent::SessionUnsubscribed,
        Payload::SessionTerminated(_) => WebhookEvent::SessionTerminated,
        Payload::MessagePublish(_) => WebhookEvent::MessagePublish,
        Payload::MessageDelivered(_) => WebhookEvent::MessageDelivered,
        Payload::MessageAcked(_) => WebhookEvent::MessageAcked,
        Payload::MessageDropped(_) => WebhookEvent::MessageDropped,
    })
}

/// The proto type of a configuration event name.
pub fn event_type(kind: WebhookEvent) -> EventType {
    match kind {
        WebhookEvent::ClientConnect => EventType::ClientConnect,
        WebhookEvent::ClientConnack => EventType::ClientConnack,
        WebhookEvent::ClientConnected => EventType::ClientConnected,
        WebhookEvent::ClientDisconnected => EventType::ClientDisconnected,
        WebhookEvent::ClientSubscribe => EventType::ClientSubscribe,
        WebhookEvent::ClientUnsubscribe => EventType::ClientUnsubscribe,
        WebhookEvent::SessionSubscribed => EventType::SessionSubscribed,
        WebhookEvent::SessionUnsubscribed => EventType::SessionUnsubscribed,
        WebhookEvent::SessionTerminated => EventType::SessionTerminated,
        WebhookEvent::MessagePublish => EventType::MessagePublish,
        WebhookEvent::MessageDelivered => EventType::MessageDelivered,
        WebhookEvent::MessageAcked => EventType::MessageAcked,
        WebhookEvent::MessageDropped => EventType::MessageDropped,
    }
}

/// The bit of an event type in a type mask (bit n = proto value n).
pub fn type_bit(t: EventType) -> u32 {
    1u32 << (t as i32).clamp(0, 31)
}

/// The topic of a message event, `None` for client and session events.
pub fn message_topic(event: &Event) -> Option<&str> {
    let message = match event.payload.as_ref()? {
        Payload::MessagePublish(m) => m.message.as_ref(),
        Payload::MessageDelivered(m) => m.message.as_ref(),
        Payload::MessageAcked(m) => m.message.as_ref(),
        Payload::MessageDropped(m) => m.message.as_ref(),
        _ => None,
    }?;
    Some(message.topic.as_str())
}

/// The client id events of one client share (for ordering): the client for client, session and
/// delivery events, the publisher for publish events.
pub fn client_id(event: &Event) -> &str {
    let Some(payload) = event.payload.as_ref() else { return "" };
    let client = match payload {
        Payload::ClientConnect(e) => e.client.as_ref(),
        Payload::ClientConnack(e) => e.client.as_ref(),
        Payload::ClientConnected(e) => e.client.as_ref(),
        Payload::ClientDisconnected(e) => e.client.as_ref(),
        Payload::ClientSubscribe(e) => e.client.as_ref(),
        Payload::ClientUnsubscribe(e) => e.client.as_ref(),
        Payload::SessionSubscribed(e) => e.client.as_ref(),
        Payload::SessionUnsubscribed(e) => e.client.as_ref(),
        Payload::SessionTerminated(e) => e.client.as_ref(),
        Payload::MessageDelivered(e) => e.client.as_ref(),
        Payload::MessageAcked(e) => e.client.as_ref(),
        Payload::MessageDropped(e) => e.client.as_ref(),
        Payload::MessagePublish(e) => {
            return e.message.as_ref().map_or("", |m| m.from_client_id.as_str());
        }
    };
    client.map_or("", |c| c.client_id.as_str())
}

/// Whether `rules` select an event of type `kind` with message topic `topic` (NanoMQ: one POST
/// however many rules match). Both are read from the encoded event ([`crate::wire::RawEvent`]) or,
/// for a decoded one, with [`event_kind`] and [`message_topic`].
pub fn rules_match(rules: &[WebhookRule], kind: Option<WebhookEvent>, topic: Option<&str>) -> bool {
    let Some(kind) = kind else { return false };
    rules.iter().any(|rule| {
        rule.event == kind
            && match (&rule.topic, topic) {
                (Some(filter), Some(topic)) => tern_acl::topic::matches(filter, topic),
                _ => true,
            }
    })
}

/// The type mask of the events `rules` name.
pub fn rules_mask(rules: &[WebhookRule]) -> u32 {
    rules.iter().fold(0, |mask, rule| mask | type_bit(event_type(rule.event)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{events::v1 as pb, types::v1 as types};

    fn publish(topic: &str) -> Event {
        Event {
            payload: Some(Payload::MessagePublish(pb::MessagePublish {
                message: Some(types::Message {
                    topic: topic.into(),
                    from_client_id: "c1".into(),
                    ..Default::default()
                }),
            })),
            ..Default::default()
        }
    }

    fn rules_match(rules: &[WebhookRule], event: &Event) -> bool {
        super::rules_match(rules, event_kind(event), message_topic(event))
    }

    #[test]
    fn topic_filters_apply_to_message_events() {
        let rules =
            vec![WebhookRule { event: WebhookEvent::MessagePublish, topic: Some("a/+".into()) }];
        assert!(rules_match(&rules, &publish("a/b")));
        assert!(!rules_match(&rules, &publish("b/c")));
        assert_eq!(client_id(&publish("a/b")), "c1");
        let connack = Event {
            payload: Some(Payload::ClientConnack(pb::ClientConnack::default())),
            ..Default::default()
        };
        assert!(!rules_match(&rules, &connack));
        let with_topic =
            vec![WebhookRule { event: WebhookEvent::ClientConnack, topic: Some("x".into()) }];
        assert!(rules_match(&with_topic, &connack), "topics apply to message events only");
        assert_eq!(rules_mask(&rules), 1 << 10);
    }
}
