//! Parse + validate fosdem-2025.xml, next to a bare quick-xml event scan of the same bytes, in the same run.
//! `cargo bench --bench parse`; the goal is within 3x of the bare scan.

use criterion::{Criterion, criterion_group, criterion_main};
use quick_xml::Reader;
use quick_xml::events::Event;
use stagehand::schedule::{self, ReadOptions};
use std::hint::black_box;

fn fosdem_2025() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/schedules/fosdem/fosdem-2025.xml");
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The floor: every event read, nothing kept.
fn bare_scan(text: &str) -> usize {
    let mut reader = Reader::from_str(text);
    let mut n = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(e) => {
                black_box(&e);
                n += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let bytes = fosdem_2025();
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    let opts = ReadOptions::default();
    let mut group = c.benchmark_group("fosdem-2025.xml");
    group.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    group.bench_function("bare quick-xml scan", |b| b.iter(|| bare_scan(black_box(text))));
    group.bench_function("stagehand parse + validate", |b| {
        b.iter(|| {
            let mut parsed = schedule::read("fosdem-2025.xml", black_box(&bytes), &opts).unwrap_or_else(|e| panic!("{e}"));
            parsed.validate("fosdem-2025.xml");
            black_box(parsed.conference.talks.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
