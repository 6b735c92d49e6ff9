//! Per-stage benches (decode, flow table, reassembly, policy, events) and the whole worker, on the
//! recorded spine capture and on a long synthetic keep-alive flow.
//! Results and the commands that produced them go to benches/RESULTS.md.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::scale;
use control::{PolicySnapshot, WorkloadInventory, compile, load_policy_str};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dataplane::decode::{LinkType, decode};
use dataplane::events::{
    Event, EventOutput, EventWriter, FlowObj, PolicyVerdictObj, TcpObj, Timestamp, WorkloadObj,
    write_community_id,
};
use dataplane::flow::{FlowConfig, FlowKey, FlowTable, TimeoutClass};
use dataplane::inspect::ParserRegistry;
use dataplane::io::pcap::CaptureFile;
use dataplane::pipeline::{Worker, WorkerConfig};
use dataplane::reassembly::{Budget, Chunk, Stream, StreamConfig};
use etherparse::PacketBuilder;
use traffic_gen::generate::{Frames, KeepAlive};

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

/// The allow-all policy the replay tests use: every flow is admitted and inspected.
fn allow_all() -> Arc<PolicySnapshot> {
    let text = include_str!("../../dataplane/tests/data/allow-all.yaml");
    let loaded = load_policy_str(text, "allow-all.yaml").expect("bundled policy loads");
    let inv = loaded.inventory.unwrap_or_else(WorkloadInventory::empty);
    Arc::new(compile(&loaded.policy, &inv, 1).expect("bundled policy compiles"))
}

type Record = (u64, LinkType, Vec<u8>, u32);

fn read_capture(path: &Path) -> Vec<Record> {
    let mut f = CaptureFile::open(path).expect("recorded capture opens");
    let mut out = Vec::new();
    while f
        .next_packet(&mut |p| out.push((p.ts_ns, p.linktype, p.data.to_vec(), p.orig_len)))
        .expect("recorded capture reads")
        .is_some()
    {}
    out
}

fn bench_worker(c: &mut Criterion) {
    let writer = EventWriter::start(EventOutput::Discard).expect("event writer starts");
    let snap = allow_all();
    let mut g = c.benchmark_group("worker");

    // The recorded capture (HTTP, Redis, DNS, ping over v4 and v6), start to finish: flow
    // setup, policy lookups, detection and the flow events at the end dominate.
    let spine =
        read_capture(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/spine-eth.pcap"));
    let bytes: u64 = spine.iter().map(|r| u64::from(r.3)).sum();
    g.throughput(Throughput::ElementsAndBytes {
        elements: spine.len() as u64,
        bytes,
    });
    g.bench_function("replay_spine", |b| {
        b.iter_batched(
            || {
                Worker::new(
                    0,
                    WorkerConfig::default(),
                    ParserRegistry::builtin(),
                    writer.sender(),
                )
            },
            |mut w| {
                for (ts, lt, data, len) in &spine {
                    black_box(w.process(*ts, *lt, data, *len, &snap));
                }
                w.finish();
                // Returned so the worker is dropped outside the timed section.
                w
            },
            BatchSize::LargeInput,
        )
    });

    // One established connection carrying request/response/ACK forever: what every packet
    // of a long flow costs once the flow exists and its protocol is known.
    g.throughput(Throughput::Elements(1));
    let mut w = Worker::new(
        0,
        WorkerConfig::default(),
        ParserRegistry::builtin(),
        writer.sender(),
    );
    let mut flow = KeepAlive::new();
    let mut frames = Frames::new();
    flow.fill(1_000, &mut frames);
    for (ts, f) in frames.iter() {
        w.process(ts, LinkType::ETHERNET, f, f.len() as u32, &snap);
    }
    g.bench_function("steady_state_tcp", |b| {
        b.iter_custom(|iters| {
            // Frames are made in chunks outside the timed section; only process() is timed.
            const CHUNK: u64 = 4_096;
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                flow.fill(n as usize, &mut frames);
                let t = Instant::now();
                for (ts, f) in frames.iter().take(n as usize) {
                    black_box(w.process(ts, LinkType::ETHERNET, f, f.len() as u32, &snap));
                }
                total += t.elapsed();
                left -= n;
            }
            total
        })
    });
    g.finish();
}

fn bench_events(c: &mut Criterion) {
    let mut g = c.benchmark_group("events");
    g.throughput(Throughput::Elements(1));
    let (src, dst): (IpAddr, IpAddr) = (IpAddr::from([10, 0, 1, 5]), IpAddr::from([10, 0, 2, 7]));
    let annotations: Vec<(Box<str>, Box<str>)> = vec![
        ("owner".into(), "team-web".into()),
        ("commit".into(), "9e2b41c".into()),
    ];
    let mut out = Vec::with_capacity(4096);
    let mut cid = String::with_capacity(32);
    let mut id = 0u64;
    g.bench_function("encode_flow_event", |b| {
        b.iter(|| {
            id += 1;
            // What the worker does per ended flow: community id, then the whole event.
            write_community_id(0, src, dst, 40112, 8080, 6, &mut cid);
            let mut e = Event::new(Timestamp(1_795_327_200_123_456_789), "flow");
            e.flow_id = Some(id);
            e.src_ip = Some(src);
            e.src_port = Some(40112);
            e.dest_ip = Some(dst);
            e.dest_port = Some(8080);
            e.proto = Some("TCP");
            e.app_proto = Some("http");
            e.community_id = Some(&cid);
            e.src_workload = Some(WorkloadObj {
                name: Some("frontend-7d9f"),
                namespace: Some("shop"),
                group: Some("web"),
                image: Some("registry.local/shop/frontend@sha256:4f1c"),
                annotations: &annotations,
            });
            e.dest_workload = Some(WorkloadObj {
                name: Some("orders-5c4b"),
                namespace: Some("shop"),
                group: Some("orders"),
                image: None,
                annotations: &[],
            });
            e.policy_verdict = Some(PolicyVerdictObj {
                action: "allow",
                rule: "web-orders",
                policy_version: 3,
                mode: "protect",
                enforced: false,
                dropped_pkts: Some(0),
                would_drop_pkts: None,
            });
            e.flow = Some(FlowObj {
                pkts_toserver: 12,
                pkts_toclient: 10,
                bytes_toserver: 1_840,
                bytes_toclient: 9_377,
                start: Timestamp(1_795_327_200_000_000_000),
                end: Timestamp(1_795_327_200_123_456_789),
                age: 0,
                state: "closed",
                reason: "shutdown",
                alerted: false,
            });
            e.tcp = Some(TcpObj {
                state: "closed",
                ts_gap: false,
                tc_gap: false,
                gap_bytes: 0,
            });
            out.clear();
            e.write_line(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

fn bench_policy(c: &mut Criterion) {
    const N: u32 = 10_000;
    let snap = scale::snapshot(N, N, 0x5eed).expect("generated policy compiles");
    let queries = scale::queries(N, 1 << 14, 42);
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    // What a new flow costs at L4: both ends resolved to workloads and groups, then judged.
    g.bench_function("judge_flow_10k", |b| {
        b.iter(|| {
            i = (i + 1) & (queries.len() - 1);
            let q = &queries[i];
            let (src, dst) = (snap.resolve(q.src), snap.resolve(q.dst));
            black_box(snap.judge_flow(&src, &dst, q.port, q.transport, None))
        })
    });
    // The same decisions with the endpoints resolved beforehand: the rule index alone.
    let resolved: Vec<_> = queries
        .iter()
        .map(|q| {
            (
                snap.resolve(q.src),
                snap.resolve(q.dst),
                q.port,
                q.transport,
            )
        })
        .collect();
    g.bench_function("judge_flow_10k_resolved", |b| {
        b.iter(|| {
            i = (i + 1) & (resolved.len() - 1);
            let (src, dst, port, t) = &resolved[i];
            black_box(snap.judge_flow(src, dst, *port, *t, None))
        })
    });
    g.finish();

    // Compiling that policy (validation, address tables, the L4 and L7 indexes) from its
    // loaded YAML; the YAML parse itself is not counted.
    let (inv, pol) = scale::yaml(N, N, 0x5eed);
    let p = load_policy_str(&pol, "scale.yaml").expect("generated policy loads");
    let inv = control::load_inventory_str(&inv, "scale-inventory.yaml")
        .expect("generated inventory loads");
    let mut g = c.benchmark_group("policy");
    g.sample_size(10);
    g.bench_function("compile_10k", |b| {
        b.iter(|| black_box(compile(&p.policy, &inv, 1).expect("compiles")))
    });
    // What a reload costs end to end: parsing the two YAML documents, then compiling.
    let (inv_yaml, pol_yaml) = scale::yaml(N, N, 0x5eed);
    g.bench_function("load_compile_10k", |b| {
        b.iter(|| {
            let p = load_policy_str(&pol_yaml, "scale.yaml").expect("loads");
            let i = control::load_inventory_str(&inv_yaml, "scale-inventory.yaml").expect("loads");
            black_box(compile(&p.policy, &i, 1).expect("compiles"))
        })
    });
    g.finish();
}

/// MSS-sized segments: what a bulk transfer (a response body, a result set) looks like.
const SEG: usize = 1448;

/// One direction of a TCP stream through `reassembly::Stream`, as the worker drives it: the
/// inspector's callback only counts the delivered bytes. `in_order` is the zero-copy path
/// (one segment per iteration); the out-of-order cases copy into the stream's ring and back
/// out when the hole fills. The stream lives across iterations (sequence numbers run on and
/// wrap), so its ring is allocated once, as in a long flow.
fn bench_reassembly(c: &mut Criterion) {
    let cfg = StreamConfig::default();
    let payload = vec![b'x'; SEG];
    let mut g = c.benchmark_group("reassembly");

    // Each segment's bytes reach the inspector before `segment` returns.
    let mut delivered = 0u64;
    let mut count = |ch: Chunk<'_>| {
        if let Chunk::Data(d) = ch {
            delivered += d.len() as u64;
        }
    };

    g.throughput(Throughput::Bytes(SEG as u64));
    {
        let mut budget = Budget::new(64 << 20);
        let mut s = Stream::new();
        s.set_isn(1000);
        let mut seq = 1001u32;
        g.bench_function("in_order_1448B", |b| {
            b.iter(|| {
                let out = s.segment(
                    &cfg,
                    &mut budget,
                    seq,
                    black_box(&payload),
                    false,
                    &mut count,
                );
                seq = seq.wrapping_add(SEG as u32);
                out
            })
        });
        s.close(&mut budget, &mut count);
    }

    // Neighbours swapped (2, 1, 4, 3, ...): every other segment is held, then released by
    // the one before it. Two segments per iteration.
    g.throughput(Throughput::Bytes(2 * SEG as u64));
    {
        let mut budget = Budget::new(64 << 20);
        let mut s = Stream::new();
        s.set_isn(1000);
        let mut seq = 1001u32;
        g.bench_function("out_of_order_swapped_pairs", |b| {
            b.iter(|| {
                let second = seq.wrapping_add(SEG as u32);
                s.segment(
                    &cfg,
                    &mut budget,
                    second,
                    black_box(&payload),
                    false,
                    &mut count,
                );
                let out = s.segment(
                    &cfg,
                    &mut budget,
                    seq,
                    black_box(&payload),
                    false,
                    &mut count,
                );
                seq = second.wrapping_add(SEG as u32);
                out
            })
        });
        s.close(&mut budget, &mut count);
    }

    // A window of 16 segments arriving last first: 15 held (one range, merged as it grows
    // backwards), then the first fills the hole and 23 KB come out of the ring.
    const WINDOW: u32 = 16;
    g.throughput(Throughput::Bytes(u64::from(WINDOW) * SEG as u64));
    {
        let mut budget = Budget::new(64 << 20);
        let mut s = Stream::new();
        s.set_isn(1000);
        let mut seq = 1001u32;
        g.bench_function("out_of_order_window_16_reversed", |b| {
            b.iter(|| {
                let mut out = Default::default();
                for k in (0..WINDOW).rev() {
                    let at = seq.wrapping_add(k * SEG as u32);
                    out = s.segment(
                        &cfg,
                        &mut budget,
                        at,
                        black_box(&payload),
                        false,
                        &mut count,
                    );
                }
                seq = seq.wrapping_add(WINDOW * SEG as u32);
                out
            })
        });
        s.close(&mut budget, &mut count);
    }
    g.finish();
    black_box(delivered);
}

criterion_group!(
    benches,
    bench_decode,
    bench_flow_table,
    bench_reassembly,
    bench_worker,
    bench_events,
    bench_policy
);
criterion_main!(benches);
