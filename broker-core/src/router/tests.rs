use mqtt_codec::QoS;

use super::*;
use crate::{
    mailbox::OverflowPolicy,
    message::SessionId,
    test_util::{mailbox, mailbox_with, message, message_from},
};

fn opts(qos: QoS) -> RouteOptions {
    RouteOptions { qos, no_local: false, retain_as_published: false, subscription_id: None }
}

fn sub(router: &Router, filter: &str, mb: &Arc<Mailbox>, options: RouteOptions) -> bool {
    router.subscribe(&SubscriptionFilter::parse(filter), mb, options)
}

fn drain(mb: &Mailbox) -> Vec<Delivery> {
    let mut out = Vec::new();
    mb.pop_into_while(&mut out, usize::MAX, |_| true);
    out
}

#[test]
fn routes_to_exact_and_wildcard_subscribers() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let (a, b, c, d) = (mailbox(1), mailbox(2), mailbox(3), mailbox(4));
    sub(&router, "sensors/1/temp", &a, opts(QoS::AtLeastOnce));
    sub(&router, "sensors/+/temp", &b, opts(QoS::AtLeastOnce));
    sub(&router, "sensors/#", &c, opts(QoS::AtLeastOnce));
    sub(&router, "other/#", &d, opts(QoS::AtLeastOnce));
    assert_eq!(router.len(), 4);

    let routed = router.route(&message("sensors/1/temp", QoS::AtLeastOnce, false), |_| {});
    assert_eq!((routed.queued, routed.dropped), (3, 0));
    assert!(routed.congested.is_none());
    for mb in [&a, &b, &c] {
        let got = drain(mb);
        assert_eq!(got.len(), 1);
        assert_eq!(&*got[0].message.topic, "sensors/1/temp");
    }
    assert!(drain(&d).is_empty());
}

#[test]
fn root_wildcards_do_not_match_dollar_topics() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let (all, plus, sys) = (mailbox(1), mailbox(2), mailbox(3));
    sub(&router, "#", &all, opts(QoS::AtMostOnce));
    sub(&router, "+/brokers/#", &plus, opts(QoS::AtMostOnce));
    sub(&router, "$SYS/#", &sys, opts(QoS::AtMostOnce));
    router.route(&message("$SYS/brokers/uptime", QoS::AtMostOnce, false), |_| {});
    assert!(drain(&all).is_empty());
    assert!(drain(&plus).is_empty());
    assert_eq!(drain(&sys).len(), 1);
}

#[test]
fn qos_is_downgraded_to_the_subscription() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let (q0, q2) = (mailbox(1), mailbox(2));
    sub(&router, "t", &q0, opts(QoS::AtMostOnce));
    sub(&router, "t", &q2, opts(QoS::ExactlyOnce));
    router.route(&message("t", QoS::AtLeastOnce, false), |_| {});
    assert_eq!(drain(&q0)[0].qos, QoS::AtMostOnce);
    assert_eq!(drain(&q2)[0].qos, QoS::AtLeastOnce);
}

#[test]
fn overlapping_subscriptions_give_one_copy_with_every_identifier() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let a = mailbox(1);
    sub(&router, "a/+", &a, RouteOptions { subscription_id: Some(1), ..opts(QoS::AtMostOnce) });
    sub(&router, "a/#", &a, RouteOptions { subscription_id: Some(2), ..opts(QoS::ExactlyOnce) });
    sub(&router, "a/b", &a, opts(QoS::AtLeastOnce));
    router.route(&message("a/b", QoS::ExactlyOnce, false), |_| {});
    let got = drain(&a);
    assert_eq!(got.len(), 1, "one copy per client");
    assert_eq!(got[0].qos, QoS::ExactlyOnce, "the highest granted QoS");
    let mut ids = got[0].subscription_ids.to_vec();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn resubscribing_replaces_options() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let a = mailbox(1);
    assert!(sub(&router, "t", &a, opts(QoS::AtMostOnce)));
    assert!(!sub(&router, "t", &a, opts(QoS::AtLeastOnce)), "a replacement is not new");
    assert_eq!(router.len(), 1);
    assert_eq!(a.subscription_count(), 1);
    router.route(&message("t", QoS::AtLeastOnce, false), |_| {});
    assert_eq!(drain(&a)[0].qos, QoS::AtLeastOnce);
}

#[test]
fn no_local_skips_the_publishers_own_session() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let (me, other) = (mailbox(1), mailbox(2));
    sub(&router, "chat", &me, RouteOptions { no_local: true, ..opts(QoS::AtMostOnce) });
    sub(&router, "chat", &other, RouteOptions { no_local: true, ..opts(QoS::AtMostOnce) });
    router.route(&message_from("chat", QoS::AtMostOnce, false, Some(SessionId(1))), |_| {});
    assert!(drain(&me).is_empty());
    assert_eq!(drain(&other).len(), 1);
}

#[test]
fn retain_as_published_keeps_the_flag() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let (rap, plain) = (mailbox(1), mailbox(2));
    sub(&router, "t", &rap, RouteOptions { retain_as_published: true, ..opts(QoS::AtMostOnce) });
    sub(&router, "t", &plain, opts(QoS::AtMostOnce));
    router.route(&message("t", QoS::AtMostOnce, true), |_| {});
    assert!(drain(&rap)[0].retain);
    assert!(!drain(&plain)[0].retain);
}

#[test]
fn shared_group_round_robins_one_member_per_message() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let members: Vec<_> = (1..=3).map(mailbox).collect();
    for mb in &members {
        sub(&router, "$share/g/jobs/#", mb, opts(QoS::AtLeastOnce));
    }
    let normal = mailbox(9);
    sub(&router, "jobs/#", &normal, opts(QoS::AtLeastOnce));
    assert_eq!(router.shared_len(), 3);
    for _ in 0..30 {
        let routed = router.route(&message("jobs/1", QoS::AtLeastOnce, false), |_| {});
        assert_eq!(routed.queued, 2, "one group member plus the normal subscriber");
    }
    for mb in &members {
        assert_eq!(drain(mb).len(), 10, "round robin spreads evenly");
    }
    assert_eq!(drain(&normal).len(), 30);
}

#[test]
fn shared_group_prefers_online_members() {
    let router = Router::new(SharedStrategy::Sticky);
    let (a, b) = (mailbox(1), mailbox(2));
    sub(&router, "$queue/work", &a, opts(QoS::AtLeastOnce));
    sub(&router, "$queue/work", &b, opts(QoS::AtLeastOnce));
    a.set_online(false);
    for _ in 0..5 {
        router.route(&message("work", QoS::AtLeastOnce, false), |_| {});
    }
    assert!(drain(&a).is_empty());
    assert_eq!(drain(&b).len(), 5);
}

#[test]
fn unsubscribe_removes_and_prunes() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let a = mailbox(1);
    let filter = SubscriptionFilter::parse("a/b/c");
    router.subscribe(&filter, &a, opts(QoS::AtMostOnce));
    let shared = SubscriptionFilter::parse("$share/g/a/b/c");
    router.subscribe(&shared, &a, opts(QoS::AtMostOnce));
    assert!(router.unsubscribe(&filter, &a));
    assert!(!router.unsubscribe(&filter, &a), "already gone");
    assert!(router.unsubscribe(&shared, &a));
    assert_eq!(router.len(), 0);
    assert_eq!(a.subscription_count(), 0);
    let routed = router.route(&message("a/b/c", QoS::AtMostOnce, false), |_| {});
    assert_eq!(routed.queued, 0);
    let mut seen = 0;
    router.for_each(|_, _, _| seen += 1);
    assert_eq!(seen, 0, "no subscription left anywhere");
}

#[test]
fn full_offline_queue_drops_by_policy_and_reports_it() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let oldest = mailbox_with(1, 2, OverflowPolicy::DropOldest);
    let newest = mailbox_with(2, 2, OverflowPolicy::DropNewest);
    sub(&router, "t", &oldest, opts(QoS::AtLeastOnce));
    sub(&router, "t", &newest, opts(QoS::AtLeastOnce));
    oldest.set_online(false);
    newest.set_online(false);
    let mut dropped = Vec::new();
    for i in 0..3 {
        let mut m = message("t", QoS::AtLeastOnce, false);
        Arc::get_mut(&mut m).expect("unique").payload = bytes::Bytes::from(vec![i]);
        let routed = router
            .route(&m, |d| dropped.push((d.mailbox.session(), d.delivery.message.payload[0])));
        assert!(routed.congested.is_none(), "nobody drains an offline queue: no pause");
    }
    dropped.sort();
    assert_eq!(dropped, vec![(SessionId(1), 0), (SessionId(2), 2)]);
    let kept = |mb: &Mailbox| drain(mb).iter().map(|d| d.message.payload[0]).collect::<Vec<_>>();
    assert_eq!(kept(&oldest), vec![1, 2]);
    assert_eq!(kept(&newest), vec![0, 1]);
    assert_eq!(oldest.dropped(), 1);
}

#[test]
fn full_queue_takes_qos1_and_asks_the_publisher_to_pause() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let slow = mailbox_with(1, 2, OverflowPolicy::DropOldest);
    sub(&router, "t", &slow, opts(QoS::AtLeastOnce));
    let publisher = Some(SessionId(9));
    let mut congested = Vec::new();
    for _ in 0..4 {
        let routed = router.route(&message_from("t", QoS::AtLeastOnce, false, publisher), |_| {
            panic!("nothing is dropped")
        });
        assert_eq!(routed.queued, 1);
        congested.push(routed.congested.map(|m| m.session()));
    }
    assert_eq!(congested, vec![None, None, Some(SessionId(1)), Some(SessionId(1))]);
    assert_eq!(slow.len(), 4, "queued beyond max_len");
    assert!(slow.over_limit());

    // At the hard limit (max_len + 1024 here) the overflow policy applies, and a QoS 0 message
    // is dropped rather than pushing out a QoS 1 one.
    let mut dropped = 0;
    for _ in 4..2 + 1024 {
        router.route(&message_from("t", QoS::AtLeastOnce, false, publisher), |_| dropped += 1);
    }
    assert_eq!((slow.len(), dropped), (2 + 1024, 0));
    router.route(&message("t", QoS::AtMostOnce, false), |_| dropped += 1);
    assert_eq!(dropped, 1);
    assert!(drain(&slow).iter().all(|d| d.qos == QoS::AtLeastOnce));
    assert!(!slow.over_limit());

    // A session publishing into its own full queue is not asked to wait for itself.
    let own = mailbox_with(3, 1, OverflowPolicy::DropOldest);
    sub(&router, "self", &own, opts(QoS::AtLeastOnce));
    for _ in 0..3 {
        let m = message_from("self", QoS::AtLeastOnce, false, Some(SessionId(3)));
        assert!(router.route(&m, |_| {}).congested.is_none());
    }
}

#[tokio::test]
async fn paused_publishers_wake_when_the_queue_drains() {
    let queue = mailbox_with(1, 1, OverflowPolicy::DropOldest);
    let delivery = |qos| Delivery {
        message: message("t", qos, false),
        qos,
        retain: false,
        subscription_ids: Default::default(),
    };
    assert!(matches!(queue.push(delivery(QoS::AtLeastOnce)), crate::mailbox::Pushed::Queued));
    assert!(matches!(
        queue.push(delivery(QoS::AtLeastOnce)),
        crate::mailbox::Pushed::QueuedOverLimit
    ));
    let waiting = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.below_limit().await })
    };
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "still over the limit");
    drain(&queue);
    tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("woken once drained")
        .expect("task");
}

#[test]
fn offline_sessions_keep_qos1_and_drop_qos0() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let a = mailbox(1);
    sub(&router, "t", &a, opts(QoS::AtLeastOnce));
    a.set_online(false);
    router.route(&message("t", QoS::AtMostOnce, false), |_| {});
    router.route(&message("t", QoS::AtLeastOnce, false), |_| {});
    let got = drain(&a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
}

#[test]
fn for_each_lists_filters_as_subscribed() {
    let router = Router::new(SharedStrategy::RoundRobin);
    let a = mailbox(1);
    for f in ["a/b", "/lead/empty", "#", "+/x", "$share/g/s/t", "$queue/q"] {
        sub(&router, f, &a, opts(QoS::AtMostOnce));
    }
    let mut seen = Vec::new();
    router.for_each(|filter, _, _| seen.push(filter.to_owned()));
    seen.sort();
    let mut expected = vec!["#", "$queue/q", "$share/g/s/t", "+/x", "/lead/empty", "a/b"];
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn many_publishers_keep_per_publisher_order() {
    let router = Arc::new(Router::new(SharedStrategy::RoundRobin));
    let sink = mailbox_with(1, 1_000_000, OverflowPolicy::DropNewest);
    sub(&router, "p/+", &sink, opts(QoS::AtLeastOnce));
    let threads: Vec<_> = (0..4u8)
        .map(|p| {
            let router = Arc::clone(&router);
            std::thread::spawn(move || {
                for i in 0..1000u32 {
                    let mut m = message(&format!("p/{p}"), QoS::AtLeastOnce, false);
                    Arc::get_mut(&mut m).expect("unique").payload =
                        bytes::Bytes::from(i.to_be_bytes().to_vec());
                    router.route(&m, |_| {});
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("publisher thread");
    }
    let got = drain(&sink);
    assert_eq!(got.len(), 4000);
    let mut next = std::collections::HashMap::new();
    for d in got {
        let seq = u32::from_be_bytes(d.message.payload[..4].try_into().expect("4 bytes"));
        let expected = next.entry(d.message.topic.to_string()).or_insert(0u32);
        assert_eq!(seq, *expected, "in order for {}", d.message.topic);
        *expected += 1;
    }
}

#[test]
fn queue_limits_changed_in_place_apply_to_existing_sessions() {
    use crate::mailbox::{LiveQueueLimits, QueueLimits};
    let router = Router::new(SharedStrategy::RoundRobin);
    let limits = LiveQueueLimits::new(QueueLimits {
        max_len: 1,
        overflow: OverflowPolicy::DropNewest,
        queue_qos0_offline: false,
    });
    let a = Arc::new(Mailbox::with_limits(SessionId(1), "a".into(), Arc::clone(&limits)));
    let b = Arc::new(Mailbox::with_limits(SessionId(2), "b".into(), Arc::clone(&limits)));
    sub(&router, "t", &a, opts(QoS::AtLeastOnce));
    sub(&router, "t", &b, opts(QoS::AtLeastOnce));
    a.set_online(false);
    b.set_online(false);
    let route = |router: &Router| {
        let mut dropped = 0;
        router.route(&message("t", QoS::AtLeastOnce, false), |_| dropped += 1);
        dropped
    };
    assert_eq!(route(&router), 0);
    assert_eq!(route(&router), 2, "both queues hold their one message");
    limits.set(QueueLimits {
        max_len: 3,
        overflow: OverflowPolicy::DropNewest,
        queue_qos0_offline: true,
    });
    assert_eq!(route(&router), 0, "the larger limit applies to the queues that exist");
    assert_eq!(route(&router), 0);
    assert_eq!(route(&router), 2);
    let mut qos0 = 0;
    router.route(&message("t", QoS::AtMostOnce, false), |_| qos0 += 1);
    assert_eq!(qos0, 2, "full queues refuse QoS 0 too (queue_qos0_offline now on)");
    assert_eq!(drain(&a).len(), 3);
    router.route(&message("t", QoS::AtMostOnce, false), |_| qos0 += 1);
    assert_eq!(qos0, 3, "the drained queue took the offline QoS 0 message, the full one did not");
    assert_eq!(drain(&a).len(), 1);
}

#[test]
fn the_shared_strategy_changes_live() {
    let router = Router::new(SharedStrategy::Sticky);
    let (a, b) = (mailbox(1), mailbox(2));
    sub(&router, "$share/g/t", &a, opts(QoS::AtLeastOnce));
    sub(&router, "$share/g/t", &b, opts(QoS::AtLeastOnce));
    for _ in 0..4 {
        router.route(&message("t", QoS::AtLeastOnce, false), |_| {});
    }
    let sticky = [drain(&a).len(), drain(&b).len()];
    assert!(sticky.contains(&4) && sticky.contains(&0), "sticky: one member takes all {sticky:?}");
    router.set_strategy(SharedStrategy::RoundRobin);
    for _ in 0..4 {
        router.route(&message("t", QoS::AtLeastOnce, false), |_| {});
    }
    assert_eq!([drain(&a).len(), drain(&b).len()], [2, 2], "round robin after the change");
}
