//! A SYN flood against a small flow table (issue 21): the full table is an `anomaly`
//! record (rate-limited, with counts) and a counter; eviction gives up the flood's
//! embryonic flows and keeps the established connections, whose requests are still
//! judged after the flood; the unanswered SYNs do not each write a flow record but are
//! summed up; the table never holds more than its cap.

use std::path::PathBuf;

use dataplane::events::EventOutput;
use dataplane::flow::FlowConfig;
use dataplane::pipeline::{ReplayOptions, WorkerConfig, run_replay};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_syn_flood_keeps_established_flows_and_sums_up_the_embryonic_ones() {
    const SYNS: u64 = 100_000;
    const KEPT: u64 = 20;
    const CAP: usize = 1024;
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("flood.pcap");
    let flood = traffic_gen::flood::write_syn_flood(&cap, SYNS, KEPT, 7).unwrap();
    assert_eq!(flood.syns, SYNS);

    let events = dir.path().join("eve.json");
    let report = run_replay(&ReplayOptions {
        captures: vec![cap],
        policy: repo().join("dataplane/tests/data/allow-all.yaml"),
        inventory: None,
        events: EventOutput::File(events.clone()),
        workers: 1,
        worker: WorkerConfig {
            flow: FlowConfig {
                max_flows: CAP,
                ..FlowConfig::default()
            },
            log_all: true,
            ..WorkerConfig::default()
        },
        swaps: Vec::new(),
        compare: None,
        shadow: None,
        progress: false,
    })
    .unwrap();
    let s = &report.stats;
    assert_eq!(s.packets, flood.packets);
    // Memory is bounded by the table: it never held more than its cap.
    assert!(s.flows.peak <= CAP as u64, "peak {}", s.flows.peak);
    // Every flood SYN past the cap evicted an embryonic flow, never an established one.
    assert!(s.flows.cap_hits >= SYNS + KEPT - CAP as u64);
    assert_eq!(s.flows.evicted_established, 0);
    assert_eq!(s.flows.evicted_embryonic, s.flows.evicted);
    // The kept connections' requests, sent after the flood, were all judged.
    assert_eq!(s.transactions, KEPT);

    let mut table_full = Vec::new();
    let mut summaries = 0u64;
    let mut flow_records = 0u64;
    let mut http = 0u64;
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["event_type"].as_str() {
            Some("anomaly") if v["anomaly"]["event"] == "flow.table_full" => {
                table_full.push(v["anomaly_detail"].as_str().unwrap_or_default().to_owned());
            }
            Some("anomaly") if v["anomaly"]["event"] == "flow.embryonic_ended" => {
                let d = v["anomaly_detail"].as_str().unwrap();
                summaries += d
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap();
            }
            Some("flow") => {
                flow_records += 1;
                assert_ne!(
                    v["flow"]["reason"], "forced",
                    "an evicted flow was logged: {v}"
                );
            }
            Some("http") => http += 1,
            _ => {}
        }
    }
    assert_eq!(http, KEPT, "each kept connection's request has its record");
    // The flood lasts SYNS microseconds of packet time (0.1 s): the table-full records
    // are rate-limited per second, and each says how full and what went.
    assert!(
        !table_full.is_empty() && table_full.len() <= 20,
        "{}",
        table_full.len()
    );
    assert!(
        table_full[0].contains("flow table full (1024 flows)")
            && table_full[0].contains("in their handshake"),
        "{}",
        table_full[0]
    );
    assert_eq!(
        *s.anomalies.get("flow.table_full").unwrap(),
        s.flows.cap_hits
    );
    // The unanswered SYNs are summed up, not written one flow record each.
    assert_eq!(summaries, s.embryonic_unlogged);
    // Every flood SYN: evicted, or still waiting when the capture ended.
    assert_eq!(s.embryonic_unlogged, SYNS);
    assert_eq!(
        flow_records, KEPT,
        "only the kept connections have flow records"
    );
}
