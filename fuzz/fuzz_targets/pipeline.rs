//! The whole packet path on arbitrary frames: decode, defragmentation, flows, reassembly,
//! detection, verdicts and events, through one `Worker`, then `finish()`. Never panics, and
//! the bounds the pipeline promises hold after every packet (flows, reassembly budget,
//! fragment bytes) and everything is released at the end.
//!
//! Input layout (also what `seeds/pipeline/` holds, made from tests/data/*.pcap):
//!   byte 0: link type (index into `LINKS`)
//!   byte 1: bit 0 = policy with deny/alert rules, bit 1 = tight limits, bit 2 = compare
//!           with the other policy (`replay --compare`)
//!   then frames: u16 big-endian length, u8 time step, `length` bytes (clipped at the end)
//! The time step is in milliseconds below 128 and in seconds (`step - 127`) above, so the
//! fuzzer reaches idle timeouts, fragment timeouts and once-a-second expiry.
#![no_main]

use std::sync::{Arc, OnceLock};

use control::{PolicySnapshot, WorkloadInventory, compile, load_policy_str};
use dataplane::decode::LinkType;
use dataplane::defrag::DefragConfig;
use dataplane::events::{EventOutput, EventSender, EventWriter};
use dataplane::flow::FlowConfig;
use dataplane::inspect::ParserRegistry;
use dataplane::pipeline::{Worker, WorkerConfig};
use dataplane::reassembly::StreamConfig;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 5] = [
    LinkType::ETHERNET,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::RAW,
    LinkType::NULL,
];

const ALLOW_ALL: &str = "\
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: allow-all}
spec:
  mode: protect
  defaultAction: allow
  groups: {}
  rules: []
";

/// Names the addresses of the recorded captures (10.99.0.0/24, fd00:99::/64) so seeds
/// reach every decision: deny at L4 (redis), alert at L4 then deny once the app is
/// detected (DNS), allow by app (HTTP), the default deny (ping), and monitor mode for
/// addresses the fuzzer makes up in the `other` ranges.
const WITH_DENY: &str = "\
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: fuzz-deny}
spec:
  mode: protect
  defaultAction: deny
  groups:
    cli:   {selector: {app: cli}}
    srv:   {selector: {app: srv}}
    other: {cidrs: [192.168.0.0/16, \"2001:db8::/32\"], mode: monitor}
  rules:
    - {id: no-redis, from: [cli], to: [srv], ports: [6379], action: deny, capture: true, severity: critical}
    - {id: watch-dns, from: [cli], to: [srv], ports: [53], action: alert}
    - {id: no-dns-app, from: [\"*\"], to: [srv], app: dns, action: deny}
    - {id: web, from: [cli], to: [srv], ports: [80], app: http, action: allow}
    - {id: to-other, from: [cli], to: [other], action: allow}
---
apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: cli, namespace: t, labels: {app: cli}, ips: [10.99.0.1, \"fd00:99::1\"]}
  - {name: srv, namespace: t, labels: {app: srv}, ips: [10.99.0.2, \"fd00:99::2\"]}
";

struct Env {
    /// Kept alive so the senders stay connected; its thread discards the events.
    _writer: EventWriter,
    sender: EventSender,
    policies: [Arc<PolicySnapshot>; 2],
}

fn compile_str(text: &str) -> Arc<PolicySnapshot> {
    let loaded = match load_policy_str(text, "fuzz.yaml") {
        Ok(l) => l,
        Err(e) => panic!("fuzz policy does not load: {e}"),
    };
    let inv = loaded.inventory.unwrap_or_else(WorkloadInventory::empty);
    match compile(&loaded.policy, &inv, 1) {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("fuzz policy does not compile: {e}"),
    }
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let writer = match EventWriter::start(EventOutput::Discard) {
            Ok(w) => w,
            Err(e) => panic!("event writer: {e}"),
        };
        let sender = writer.sender();
        Env {
            _writer: writer,
            sender,
            policies: [compile_str(ALLOW_ALL), compile_str(WITH_DENY)],
        }
    })
}

/// Small enough that a short input hits every cap (and its counter) on purpose.
fn tight() -> WorkerConfig {
    const S: u64 = 1_000_000_000;
    WorkerConfig {
        flow: FlowConfig {
            max_flows: 4,
            timeouts_ns: [2 * S, 5 * S, S, 3 * S],
        },
        stream: StreamConfig {
            max_ooo_bytes_per_stream: 512,
            max_ooo_segments_per_stream: 3,
            max_kept_bytes_per_stream: 1024,
        },
        reassembly_budget: 1024,
        defrag: DefragConfig {
            max_datagrams: 2,
            max_tombstones: 2,
            max_frags_per_datagram: 4,
            max_ranges: 3,
            max_datagram_bytes: 2048,
            max_total_bytes: 3000,
            timeout_ns: 2 * S,
        },
        anomaly_events_per_sec: 2,
        // Fields added later keep their defaults.
        ..WorkerConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let [link, opts, rest @ ..] = data else {
        return;
    };
    let linktype = LINKS[usize::from(*link) % LINKS.len()];
    let env = env();
    let snap = &env.policies[usize::from(opts & 1)];
    let cfg = if opts & 2 != 0 {
        tight()
    } else {
        WorkerConfig::default()
    };
    let (max_flows, budget_cap, defrag_cap) = (
        cfg.flow.max_flows,
        cfg.reassembly_budget,
        cfg.defrag.max_total_bytes,
    );
    let mut w = Worker::new(0, cfg, ParserRegistry::builtin(), env.sender.clone());
    if opts & 4 != 0 {
        // `replay --compare`: every flow judged by the other policy too.
        w.set_compare(Arc::clone(&env.policies[usize::from(opts & 1 == 0)]));
    }

    // A plausible capture start, so timestamps format like real ones.
    let mut ts: u64 = 1_795_327_200_000_000_000;
    let mut frames = 0u64;
    let mut rest = rest;
    while let [hi, lo, step, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        ts = ts.saturating_add(match *step {
            s @ 0..=127 => u64::from(s) * 1_000_000,
            s => u64::from(s - 127) * 1_000_000_000,
        });
        // A snaplen-truncated record claims more on the wire than it holds.
        let orig_len = u32::from(*hi & 0x80 != 0) * 1500 + len as u32;
        w.process(ts, linktype, frame, orig_len, snap);
        frames += 1;
        assert!(w.flow_count() <= max_flows, "flow table past its cap");
        assert!(w.budget().used() <= budget_cap, "reassembly past budget");
        assert!(
            w.defrag().held_bytes() <= defrag_cap,
            "fragment bytes past cap"
        );
        w.flush_events();
    }
    w.finish();
    assert_eq!(w.flow_count(), 0, "finish() leaves flows behind");
    assert_eq!(
        w.budget().used(),
        0,
        "reassembly bytes leaked past finish()"
    );
    let s = &w.stats;
    assert_eq!(s.packets, frames);
    assert_eq!(
        s.accepted + s.dropped,
        frames,
        "every packet gets one verdict"
    );
});
