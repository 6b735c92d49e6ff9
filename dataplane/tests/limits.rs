//! Memory stays bounded under a SYN flood and a flood of out-of-order segments: the caps
//! hold and the counters say how often they were hit.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use dataplane::decode::tcp_flags::{ACK, SYN};
use dataplane::flow::FlowConfig;
use dataplane::pipeline::WorkerConfig;
use dataplane::reassembly::StreamConfig;

fn seg(src: IpAddr, sport: u16, seq: u32, flags: u8, payload: Vec<u8>) -> Seg {
    Seg {
        ts: 1_000_000_000,
        src,
        dst: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)),
        sport,
        dport: 80,
        seq,
        ack: 1,
        flags,
        window: 65535,
        payload,
    }
}

#[test]
fn syn_flood_is_capped_and_counted() {
    let cfg = WorkerConfig {
        flow: FlowConfig {
            max_flows: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut frames = Vec::new();
    for i in 0..20_000u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a63_0000 + (i % 5000)));
        let mut s = seg(src, 1024 + (i % 60_000) as u16, i, SYN, Vec::new());
        s.ts += u64::from(i) * 1000;
        frames.push(raw(s.ts, ip_packet(&s)));
    }
    let (_, _, w) = run_recording(&frames, cfg);
    let f = w.stats.flows;
    assert!(f.peak <= 1000, "peak {} flows over the cap", f.peak);
    assert!(f.cap_hits >= 19_000, "cap hits {}", f.cap_hits);
    assert!(f.evicted >= 19_000, "evicted {}", f.evicted);
    assert_eq!(f.created, 20_000);
    assert_eq!(w.stats.flows_ended, 20_000);
}

#[test]
fn out_of_order_flood_stays_within_the_caps() {
    let stream = StreamConfig {
        max_ooo_bytes_per_stream: 64 * 1024,
        max_ooo_segments_per_stream: 16,
        ..StreamConfig::default()
    };
    let budget = 1 << 20;
    let cfg = WorkerConfig {
        stream,
        reassembly_budget: budget,
        ..Default::default()
    };
    let mut frames = Vec::new();
    // 200 connections, each: handshake, then 100 segments that each leave a hole before them.
    for c in 0..200u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + c));
        let isn = 1000u32;
        frames.push(raw(1, ip_packet(&seg(src, 40_000, isn, SYN, Vec::new()))));
        for k in 0..100u32 {
            let seq = isn + 1 + 10 + k * 1500;
            frames.push(raw(
                2,
                ip_packet(&seg(src, 40_000, seq, ACK, vec![b'x'; 1000])),
            ));
        }
    }
    let writer =
        dataplane::events::EventWriter::start(dataplane::events::EventOutput::Discard).unwrap();
    let snap = snapshot("allow-all.yaml");
    let mut w = dataplane::pipeline::Worker::new(
        0,
        cfg,
        dataplane::inspect::ParserRegistry::builtin(),
        writer.sender(),
    );
    let mut peak = 0usize;
    for (ts, lt, f, len) in &frames {
        w.process(*ts, *lt, f, *len, &snap);
        peak = peak.max(w.budget().used());
        assert!(
            w.budget().used() <= budget,
            "budget exceeded: {}",
            w.budget().used()
        );
    }
    assert!(
        peak > budget / 2,
        "the flood should have used the budget (peak {peak})"
    );
    let c = w.budget().counters;
    assert!(
        c.global_cap_hits + c.stream_cap_hits + c.segment_cap_hits > 0,
        "{c:?}"
    );
    assert!(
        w.stats
            .anomalies
            .get("stream.reassembly_cap")
            .copied()
            .unwrap_or(0)
            > 0
    );
    w.finish();
    assert_eq!(
        w.budget().used(),
        0,
        "closing every flow returns every byte"
    );
}
