//! Router micro-benchmarks: matching a published topic against 10k, 100k and 1M subscriptions and
//! pushing the deliveries into the subscribers' mailboxes (`Router::route`), and the cost of a
//! subscribe + unsubscribe on a router of that size.
//!
//! The subscription mix (deterministic), over a topic space of 100 tenants × N/1000 devices × 10
//! metrics (`t<t>/d<d>/m<m>`, about N topics):
//! - 75 % exact filters `t/d/m`, 12.5 % `t/d/+`, 12.5 % `t/d/#`, each its own client (a device
//!   or an application following one device);
//! - 1,000 broad filters `t/+/m` held by 10 backend clients (100 each), and 3 shared groups
//!   (`$share/g0..g2/t/+/m`, 100 filters, 3 members per group) held by 9 workers.
//!
//! A random published topic then matches about four subscriptions whatever N, so the figures
//! show how matching scales, not how delivery count grows. Mailboxes are large enough for a
//! batch of routes and are drained between batches, outside the timed section.
//!
//! Run with `cargo bench -p broker-core --bench router`.

mod common;

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use broker_core::{
    mailbox::Mailbox,
    message::MessageRef,
    router::{RouteOptions, Router, SharedStrategy, SubscriptionFilter},
};
use common::{METRICS, TENANTS, devices_for, label, mailbox, message, random_topic};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mqtt_codec::QoS;

/// Routes timed between two drains.
const BATCH: u64 = 1024;
/// Distinct published topics cycled through.
const TOPICS: usize = 256;

fn options() -> RouteOptions {
    RouteOptions {
        qos: QoS::AtLeastOnce,
        no_local: false,
        retain_as_published: false,
        subscription_id: None,
    }
}

/// A router with `n` subscriptions of the documented mix, and every mailbox.
fn build(n: usize) -> (Router, Vec<Arc<Mailbox>>, usize) {
    let router = Router::new(SharedStrategy::RoundRobin);
    let devices = devices_for(n);
    let mut rng = fastrand::Rng::with_seed(6);
    let mut mailboxes = Vec::new();
    // Mailboxes hold a batch of routes' worth of deliveries.
    let new_mailbox = |mailboxes: &mut Vec<Arc<Mailbox>>| {
        let mb = mailbox(mailboxes.len() as u64, 4 * BATCH as usize);
        mailboxes.push(Arc::clone(&mb));
        mb
    };
    // Backend clients: 1,000 broad filters, 100 per client.
    let mut backend = new_mailbox(&mut mailboxes);
    for (i, (t, m)) in (0..TENANTS).flat_map(|t| (0..METRICS).map(move |m| (t, m))).enumerate() {
        if i % 100 == 0 && i > 0 {
            backend = new_mailbox(&mut mailboxes);
        }
        router.subscribe(&SubscriptionFilter::parse(&format!("t{t}/+/m{m}")), &backend, options());
    }
    // Three shared groups of three workers on 100 filters.
    let workers: Vec<_> = (0..9).map(|_| new_mailbox(&mut mailboxes)).collect();
    for f in 0..100 {
        let (t, m) = (f % TENANTS, (f / TENANTS + f) % METRICS);
        for (w, worker) in workers.iter().enumerate() {
            let filter = format!("$share/g{}/t{t}/+/m{m}", w % 3);
            router.subscribe(&SubscriptionFilter::parse(&filter), worker, options());
        }
    }
    // Devices and device followers.
    while router.len() < n {
        let (t, d, m) = (rng.usize(..TENANTS), rng.usize(..devices), rng.usize(..METRICS));
        let filter = match rng.usize(..8) {
            0..=5 => format!("t{t}/d{d}/m{m}"),
            6 => format!("t{t}/d{d}/+"),
            _ => format!("t{t}/d{d}/#"),
        };
        let mb = new_mailbox(&mut mailboxes);
        router.subscribe(&SubscriptionFilter::parse(&filter), &mb, options());
    }
    (router, mailboxes, devices)
}

/// For each message, the mailboxes it reaches (found by routing it once).
fn reached(
    router: &Router,
    mailboxes: &[Arc<Mailbox>],
    messages: &[MessageRef],
) -> Vec<Vec<Arc<Mailbox>>> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for m in messages {
        router.route(m, |_| {});
        let hit: Vec<_> = mailboxes.iter().filter(|mb| !mb.is_empty()).cloned().collect();
        for mb in &hit {
            scratch.clear();
            mb.pop_into_while(&mut scratch, usize::MAX, |_| true);
        }
        out.push(hit);
    }
    out
}

fn route(c: &mut Criterion) {
    let mut group = c.benchmark_group("router/route");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for n in [10_000, 100_000, 1_000_000] {
        let (router, mailboxes, devices) = build(n);
        let mut rng = fastrand::Rng::with_seed(7);
        let messages: Vec<MessageRef> =
            (0..TOPICS).map(|_| message(&random_topic(&mut rng, devices))).collect();
        // Finding the reached mailboxes scans them all per message, hence few topics.
        let sample = &messages[..];
        let targets = reached(&router, &mailboxes, sample);
        let mean_reached =
            targets.iter().map(Vec::len).sum::<usize>() as f64 / targets.len() as f64;
        eprintln!(
            "router/route/{}: {} subscriptions, {} mailboxes, {mean_reached:.1} mailboxes reached per publish",
            label(n),
            router.len(),
            mailboxes.len()
        );
        let mut scratch = Vec::new();
        group.bench_function(BenchmarkId::new("matching", label(n)), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let k = BATCH.min(iters - done);
                    let start = Instant::now();
                    for i in 0..k {
                        let m = &sample[(done + i) as usize % sample.len()];
                        black_box(router.route(m, |_| {}));
                    }
                    timed += start.elapsed();
                    for i in 0..k {
                        for mb in &targets[(done + i) as usize % sample.len()] {
                            scratch.clear();
                            mb.pop_into_while(&mut scratch, usize::MAX, |_| true);
                        }
                    }
                    done += k;
                }
                timed
            });
        });
        let miss = message("unknown/d0/m0");
        group.bench_function(BenchmarkId::new("no_match", label(n)), |b| {
            b.iter(|| black_box(router.route(&miss, |_| {})));
        });
        // Subscribe and unsubscribe a new client on an exact and a device-level filter.
        let fresh = mailbox(u64::MAX, 16);
        for (kind, filter) in [("exact", "t42/d0/m77"), ("wildcard", "t42/d0/+")] {
            let filter = SubscriptionFilter::parse(filter);
            group.bench_function(
                BenchmarkId::new(format!("subscribe_unsubscribe_{kind}"), label(n)),
                |b| {
                    b.iter(|| {
                        router.subscribe(&filter, &fresh, options());
                        black_box(router.unsubscribe(&filter, &fresh))
                    });
                },
            );
        }
        drop((router, mailboxes));
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
