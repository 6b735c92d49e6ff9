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

/// A client pipelining more requests than a flow keeps waiting for their responses:
/// every request is logged, the oldest past the cap without its response, and the
/// summary counts them.
#[test]
fn deep_pipeline_logs_every_request_and_counts_the_cut() {
    use dataplane::events::EventOutput;
    use dataplane::pipeline::{ReplayOptions, WorkerConfig as Cfg, run_replay};
    use traffic_gen::generate::{PSH, PcapOut, SYN, Side, TcpConversation};

    const REQUESTS: usize = 1100;
    const KEPT: usize = 1024;
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("pipeline.pcap");
    let mut out = PcapOut::create(&cap).unwrap();
    let mut c = TcpConversation::new(
        (Ipv4Addr::new(10, 0, 0, 1), 40_000),
        (Ipv4Addr::new(10, 0, 0, 2), 80),
        [1000, 5000],
    );
    let mut ts = 1_000_000_000u64;
    let mut put = |c: &mut TcpConversation, from: Side, flags: u8, payload: &[u8]| {
        let mut f = Vec::new();
        c.segment(from, flags, payload, &mut f);
        ts += 1000;
        out.write(ts, &f);
    };
    put(&mut c, Side::Client, SYN, b"");
    put(&mut c, Side::Server, SYN, b"");
    put(&mut c, Side::Client, 0, b"");
    let reqs: Vec<u8> = (0..REQUESTS)
        .flat_map(|i| format!("GET /item/{i} HTTP/1.1\r\nHost: shop\r\n\r\n").into_bytes())
        .collect();
    for chunk in reqs.chunks(1400) {
        put(&mut c, Side::Client, PSH, chunk);
    }
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".repeat(REQUESTS);
    for chunk in resp.chunks(1400) {
        put(&mut c, Side::Server, PSH, chunk);
    }
    out.finish().unwrap();

    let events = dir.path().join("eve.json");
    let report = run_replay(&ReplayOptions {
        captures: vec![cap],
        policy: repo().join("dataplane/tests/data/allow-all.yaml"),
        inventory: None,
        events: EventOutput::File(events.clone()),
        workers: 1,
        worker: Cfg {
            log_all: true,
            ..Cfg::default()
        },
        swaps: Vec::new(),
        compare: None,
        shadow: None,
        progress: false,
    })
    .unwrap();
    assert_eq!(report.stats.transactions, REQUESTS as u64);
    assert_eq!(report.stats.log_pending_cut, (REQUESTS - KEPT) as u64);
    let mut with_status = 0;
    let mut urls = std::collections::HashSet::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event_type"] == "http" {
            urls.insert(v["http"]["url"].as_str().unwrap().to_string());
            if v["http"]["status"] == 200 {
                with_status += 1;
            }
        }
    }
    assert_eq!(urls.len(), REQUESTS, "every request has its record");
    assert_eq!(with_status, KEPT, "those still waiting got their response");
}
