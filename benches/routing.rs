//! `RouteTable::lookup` cost against the number of configured buckets.
//!
//! The table is a segment trie, so the cost should depend on the number of
//! path segments matched, not on the number of buckets. Target: ≤ 100 ns at
//! 1000 buckets (docs/PERFORMANCE.md).
//!
//! Run: `cargo bench --bench routing -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use yatagarasu::route::RouteTable;

/// A table of `buckets` prefixes; each value is the bucket's name (what a
/// lookup returns does not change its cost).
fn table(buckets: usize) -> RouteTable<Arc<str>> {
    RouteTable::new(
        (0..buckets).map(|i| (format!("/bucket-{i}"), Arc::from(format!("bucket-{i}")))),
    )
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    group.throughput(Throughput::Elements(1));
    for buckets in [1usize, 10, 100, 1000] {
        let table = table(buckets);
        // A path under the last-inserted bucket.
        let path = format!("/bucket-{}/images/photo.jpg", buckets - 1);
        let (route, key) = table.lookup(&path).expect("the last bucket matches");
        assert_eq!(&**route, format!("bucket-{}", buckets - 1));
        assert_eq!(key, "images/photo.jpg");
        group.bench_with_input(BenchmarkId::new("hit", buckets), &path, |b, path| {
            b.iter(|| black_box(table.lookup(black_box(path))).map(|(r, k)| (r.len(), k.len())))
        });
    }
    // A miss (unmapped first segment) at the largest size: the 404 path.
    let table = table(1000);
    let miss = "/unmapped/images/photo.jpg";
    assert!(table.lookup(miss).is_none());
    group.bench_function(BenchmarkId::new("miss", 1000), |b| {
        b.iter(|| black_box(table.lookup(black_box(miss))).is_some())
    });
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
