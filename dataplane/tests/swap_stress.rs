//! Thousands of policy swaps during a two-worker replay: no packet is lost or counted
//! twice, and every flow is judged by the version that was in force at its first packet.

mod common;

use dataplane::events::EventOutput;
use dataplane::pipeline::{ReplayOptions, SwapAt, WorkerConfig, run_replay};
use std::collections::HashMap;

const PACKETS: u32 = 20_000;
const SWAP_EVERY: u32 = 10;

/// One UDP datagram per flow: flow `i` is 10.77.(i/250).(i%250) -> 10.78.0.1:5353 from
/// port 10000 + i % 50000, so a flow event names the packet that made it.
fn write_capture(path: &std::path::Path) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes()); // raw IP
    for i in 0..PACKETS {
        let b = etherparse::PacketBuilder::ipv4(
            [10, 77, (i / 250) as u8, (i % 250) as u8],
            [10, 78, 0, 1],
            64,
        )
        .udp(10_000 + (i % 50_000) as u16, 5353);
        let mut p = Vec::new();
        b.write(&mut p, b"x").unwrap();
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&i.to_le_bytes()); // microseconds: strictly increasing
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&p);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn every_flow_is_judged_by_the_version_in_force_at_its_packet() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("udp.pcap");
    write_capture(&cap);
    let allow = common::repo().join("dataplane/tests/data/allow-all.yaml");
    let deny = dir.path().join("deny-all.yaml");
    std::fs::write(
        &deny,
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: deny-all}\nspec:\n  mode: protect\n  defaultAction: deny\n  groups: {}\n  rules: []\n",
    )
    .unwrap();
    // Swap at packets 11, 21, 31, ...: even swaps to deny-all, odd back to allow-all.
    let swaps: Vec<SwapAt> = (1..PACKETS / SWAP_EVERY)
        .map(|k| SwapAt {
            packet: u64::from(k * SWAP_EVERY + 1),
            policy: if k % 2 == 1 {
                deny.clone()
            } else {
                allow.clone()
            },
        })
        .collect();
    let events = dir.path().join("events.json");
    let opts = ReplayOptions {
        captures: vec![cap],
        policy: allow.clone(),
        inventory: None,
        events: EventOutput::File(events.clone()),
        workers: 2,
        worker: WorkerConfig::default(),
        swaps,
        compare: None,
        shadow: None,
        progress: false,
    };
    let report = run_replay(&opts).unwrap();
    assert_eq!(report.stats.packets, u64::from(PACKETS));
    assert_eq!(report.policy_log.len() as u32, PACKETS / SWAP_EVERY);

    let mut seen: HashMap<(String, u64), (u64, String)> = HashMap::new();
    let mut loaded = Vec::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["event_type"].as_str().unwrap() {
            "flow" => {
                let key = (
                    v["src_ip"].as_str().unwrap().to_string(),
                    v["src_port"].as_u64().unwrap(),
                );
                let prev = seen.insert(
                    key.clone(),
                    (
                        v["policy_verdict"]["policy_version"].as_u64().unwrap(),
                        v["policy_verdict"]["action"].as_str().unwrap().to_string(),
                    ),
                );
                assert!(prev.is_none(), "flow {key:?} reported twice");
                assert_eq!(v["flow"]["pkts_toserver"], 1);
            }
            "policy" => loaded.push(v["policy"]["version"].as_u64().unwrap()),
            _ => {}
        }
    }
    assert_eq!(
        seen.len() as u32,
        PACKETS,
        "every packet made exactly one flow"
    );
    assert_eq!(
        loaded,
        (1..=u64::from(PACKETS / SWAP_EVERY)).collect::<Vec<_>>()
    );
    for i in 0..PACKETS {
        let src = format!("10.77.{}.{}", i / 250, i % 250);
        let (version, action) = &seen[&(src, u64::from(10_000 + i % 50_000))];
        let expected = u64::from(i / SWAP_EVERY) + 1;
        assert_eq!(*version, expected, "packet {} judged by v{version}", i + 1);
        let expected_action = if expected % 2 == 0 { "deny" } else { "allow" };
        assert_eq!(action, expected_action, "packet {}", i + 1);
    }
    assert_eq!(report.stats.dropped, u64::from(PACKETS / 2));
}
