//! Retained-message micro-benchmarks: `RetainedStore::matching` on stores of 10k and 100k
//! retained topics (100 tenants × N/1000 devices × 10 metrics, `t<t>/d<d>/m<m>`) for an exact
//! filter and for wildcard filters of growing reach, and the cost of `set` (replacing a retained
//! message, and storing then deleting one on a new topic).
//!
//! Run with `cargo bench -p broker-core --bench retained`.

mod common;

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use broker_core::retained::RetainedStore;
use bytes::Bytes;
use common::{METRICS, TENANTS, devices_for, label, message, topic};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn store(n: usize) -> (RetainedStore, usize) {
    let store = RetainedStore::new(0);
    let devices = devices_for(n);
    for t in 0..TENANTS {
        for d in 0..devices {
            for m in 0..METRICS {
                store.set(message(&topic(t, d, m)));
            }
        }
    }
    (store, devices)
}

fn retained(c: &mut Criterion) {
    let mut group = c.benchmark_group("retained");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for n in [10_000, 100_000] {
        let (store, devices) = store(n);
        let now = Instant::now();
        let filters = [
            ("exact", "t42/d7/m3".to_owned()),
            ("device_plus", "t42/d7/+".to_owned()),
            ("tenant_plus", "t42/+/m3".to_owned()),
            ("tenant_hash", "t42/#".to_owned()),
            ("root_plus", "+/d7/m3".to_owned()),
            ("all", "#".to_owned()),
        ];
        for (name, filter) in &filters {
            let found = store.matching(filter, now).len();
            eprintln!(
                "retained/matching_{name}/{}: {filter} matches {found} of {}",
                label(n),
                store.len()
            );
            group.bench_function(BenchmarkId::new(format!("matching_{name}"), label(n)), |b| {
                b.iter(|| black_box(store.matching(black_box(filter), now)));
            });
        }
        let existing = message(&topic(42, devices - 1, 3));
        group.bench_function(BenchmarkId::new("set_replace", label(n)), |b| {
            b.iter(|| black_box(store.set(Arc::clone(&existing))));
        });
        let new = message("t42/new-device/m3");
        let mut delete = message("t42/new-device/m3");
        if let Some(m) = Arc::get_mut(&mut delete) {
            m.payload = Bytes::new();
        }
        group.bench_function(BenchmarkId::new("set_new_then_delete", label(n)), |b| {
            b.iter(|| {
                store.set(Arc::clone(&new));
                black_box(store.set(Arc::clone(&delete)))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, retained);
criterion_main!(benches);
