//! Per-stage benches: decode, flow table, and the whole worker on a synthetic TCP session.
//! Results and the commands that produced them go to benches/RESULTS.md.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::decode::{LinkType, decode};
use dataplane::flow::{FlowConfig, FlowKey, FlowTable, TimeoutClass};
use etherparse::PacketBuilder;

fn frame(payload_len: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 1, 5], [10, 0, 2, 7], 64)
        .tcp(40112, 8080, 1000, 65535)
        .ack(1);
    let mut out = Vec::new();
    let _ = b.write(&mut out, &vec![b'a'; payload_len]);
    out
}

fn bench_decode(c: &mut Criterion) {
    let f = frame(512);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ethernet_ipv4_tcp_512B", |b| {
        b.iter(|| decode(LinkType::ETHERNET, black_box(&f)))
    });
    g.finish();
}

fn bench_flow_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    g.throughput(Throughput::Elements(1));
    let a: IpAddr = "10.0.1.5".parse().unwrap_or(IpAddr::from([10, 0, 1, 5]));
    let keys: Vec<FlowKey> = (0..10_000u32)
        .map(|i| {
            let dst = IpAddr::from((0x0a00_0000u32 | i).to_be_bytes());
            FlowKey::new(a, 40_000 + (i % 20_000) as u16, dst, 8080, 6).0
        })
        .collect();
    let mut t: FlowTable<u64> = FlowTable::new(FlowConfig {
        max_flows: 20_000,
        ..Default::default()
    });
    for (i, k) in keys.iter().enumerate() {
        t.insert(
            *k,
            i as u64,
            TimeoutClass::Established,
            i as u64,
            &mut |_, _, _| {},
        );
    }
    let mut i = 0usize;
    g.bench_function("lookup_touch_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            if let Some(h) = t.get(&keys[i]) {
                t.touch(h, i as u64, TimeoutClass::Established);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_flow_table);
criterion_main!(benches);
