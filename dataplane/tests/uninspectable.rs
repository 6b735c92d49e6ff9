//! Every way the data plane can stop seeing what the receiver acts on ends in the policy's
//! `onUninspectable` decision: for each cause in `control::Uninspectable::ALL` (the
//! `match` below has no catch-all, so a new cause does not compile without its traffic),
//! a conversation that a rule governs and that makes the inspector blind for that cause is
//! run through a worker under a protect-mode policy; the flow must be denied and reset
//! with that cause, counted. The same traffic under `onUninspectable: allow` is let
//! through (and still counted), and under a monitor group it alerts without dropping.

use std::sync::Arc;

use control::{PolicySnapshot, Uninspectable, WorkloadInventory, compile, load_policy_str};
use dataplane::decode::LinkType;
use dataplane::events::{EventOutput, EventWriter};
use dataplane::inspect::ParserRegistry;
use dataplane::pipeline::{Worker, WorkerConfig};
use dataplane::verdict::PacketVerdict;
use etherparse::PacketBuilder;
use traffic_gen::wire;

const CLIENT: [u8; 4] = [10, 0, 1, 5];
const WEB: [u8; 4] = [10, 0, 0, 2];
const DB: [u8; 4] = [10, 0, 0, 3];
const CACHE: [u8; 4] = [10, 0, 0, 4];
const MY: [u8; 4] = [10, 0, 0, 5];

fn policy(extra_spec: &str) -> String {
    format!(
        "apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {{name: uninspectable}}
spec:
  mode: protect
{extra_spec}  groups:
    clients: {{cidrs: [10.0.1.0/24]}}
    web: {{cidrs: [10.0.0.2/32]}}
    db: {{cidrs: [10.0.0.3/32]}}
    cache: {{cidrs: [10.0.0.4/32]}}
    my: {{cidrs: [10.0.0.5/32]}}
    dns: {{cidrs: [10.0.0.53/32]}}
  rules:
    - {{id: web, from: [clients], to: [web], ports: [80], action: allow}}
    - {{id: no-admin, from: [\"*\"], to: [web], app: http, http: [{{paths: [/admin]}}], action: deny}}
    - {{id: db, from: [clients], to: [db], ports: [5432], app: postgres, action: allow}}
    - {{id: no-drop, from: [\"*\"], to: [db, my], sql: [{{verbs: [DROP]}}], app: postgres, action: deny}}
    - {{id: my, from: [clients], to: [my], ports: [3306], app: mysql, action: allow}}
    - {{id: my-no-drop, from: [\"*\"], to: [my], sql: [{{verbs: [DROP]}}], app: mysql, action: deny}}
    - {{id: cache, from: [clients], to: [cache], ports: [6379], app: redis, action: allow}}
    - {{id: no-flush, from: [\"*\"], to: [cache], app: redis, redis: [{{commands: [FLUSHALL]}}], action: deny}}
    - {{id: dns, from: [clients], to: [dns], ports: [53], app: dns, dns: [{{names: [\"*.shop\"]}}], action: allow}}
"
    )
}

fn snapshot(extra_spec: &str) -> Arc<PolicySnapshot> {
    let p = load_policy_str(&policy(extra_spec), "p.yaml").unwrap();
    Arc::new(compile(&p.policy, &WorkloadInventory::empty(), 1).unwrap())
}

/// One TCP connection's frames, with real sequence and acknowledgement numbers.
struct Conv {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
    frames: Vec<Vec<u8>>,
}

const C: usize = 0;
const S: usize = 1;

impl Conv {
    fn new(server: [u8; 4], port: u16) -> Self {
        Conv {
            client: (CLIENT, 40_000 + port % 1000),
            server: (server, port),
            seq: [1000, 50_000],
            frames: Vec::new(),
        }
    }

    /// A segment from `side` at `seq` (its own next sequence number unless given), with
    /// ACK unless `syn_only`.
    fn raw(&mut self, side: usize, seq: u32, flags: &str, payload: &[u8]) {
        let ((src, sp), (dst, dp)) = if side == C {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sp, dp, seq, 64_240);
        if flags.contains('A') {
            b = b.ack(self.seq[1 - side]);
        }
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        self.frames.push(out);
    }

    fn handshake(&mut self) {
        self.raw(C, self.seq[C], "S", b"");
        self.seq[C] += 1;
        self.raw(S, self.seq[S], "SA", b"");
        self.seq[S] += 1;
        self.raw(C, self.seq[C], "A", b"");
    }

    fn send(&mut self, side: usize, payload: &[u8]) {
        for chunk in payload.chunks(1400) {
            self.raw(side, self.seq[side], "A", chunk);
            self.seq[side] = self.seq[side].wrapping_add(chunk.len() as u32);
        }
    }
}

/// A worker's view of one run: the verdicts it gave, and its stats.
struct Run {
    verdicts: Vec<PacketVerdict>,
    worker: Worker,
}

fn run(snap: &Arc<PolicySnapshot>, cfg: WorkerConfig, frames: &[Vec<u8>]) -> Run {
    let writer = EventWriter::start(EventOutput::Discard).unwrap();
    let mut worker = Worker::new(0, cfg, ParserRegistry::builtin(), writer.sender());
    let mut verdicts = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let ts = 1_795_327_200_000_000_000 + i as u64 * 1_000_000;
        verdicts.push(worker.process(ts, LinkType::RAW, f, f.len() as u32, snap));
    }
    worker.finish();
    Run { verdicts, worker }
}

/// The traffic that makes the inspector blind for `cause`, and the worker settings it
/// needs. No catch-all: every cause has its traffic.
fn blinding(cause: Uninspectable) -> (Vec<Vec<u8>>, WorkerConfig) {
    let mut cfg = WorkerConfig::default();
    let frames = match cause {
        Uninspectable::UnknownProtocol => {
            // Bytes no detector recognises, to a server where a rule reads HTTP.
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            c.send(C, b"\xfe\xfd\xfc not a protocol anyone detects\r\n");
            c.send(S, b"\xfe\xfd\xfc nor this\r\n");
            c.frames
        }
        Uninspectable::ParserInvalid => {
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            c.send(C, b"GET /ok HTTP/1.1\r\nHost: web\r\n\r\n");
            c.send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            c.send(C, b"GET /x HTTP/1.1\x01\x02\x03\r\n\r\n");
            c.frames
        }
        Uninspectable::ParserLimit => {
            // A Redis key longer than the parser keeps: it cannot be judged by its prefix.
            let mut c = Conv::new(CACHE, 6379);
            c.handshake();
            let mut cmd = Vec::new();
            wire::resp_command(&mut cmd, &[b"GET", &vec![b'k'; 70 * 1024]]);
            c.send(C, &cmd);
            c.frames
        }
        Uninspectable::AmbiguousFraming => {
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            c.send(
                C,
                b"POST /ok HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\
                  Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            );
            c.frames
        }
        Uninspectable::CarryOverflow => {
            // A 100 KiB HTTP head is within the parser's limit, not within this worker's
            // carry budget.
            cfg.carry_budget = 16 * 1024;
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            let mut head = b"GET /ok HTTP/1.1\r\nHost: web\r\n".to_vec();
            for i in 0..1000 {
                head.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "p".repeat(90)).as_bytes());
            }
            c.send(C, &head);
            c.frames
        }
        Uninspectable::Gap => {
            // Ten bytes of the request head are missing and more than the stream may hold
            // out of order follows: reassembly gives the hole up as a gap while the flow
            // goes on (the receiver will get those bytes; the inspector never will).
            cfg.stream.max_ooo_bytes_per_stream = 64;
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            let mut req = b"GET /adm in HTTP/1.1\r\nHost: web\r\n".to_vec();
            req.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(200)).as_bytes());
            c.send(C, &req[..8]);
            c.seq[C] += 10;
            c.send(C, &req[18..]);
            c.frames
        }
        Uninspectable::OverlapMismatch => {
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            let seq = c.seq[C];
            c.send(C, b"GET /ok-ok HTTP/1.1\r\n");
            c.raw(C, seq, "A", b"GET /admin HTTP/1.1\r\n");
            c.frames
        }
        Uninspectable::UnverifiedRetransmission => {
            // Only 4 KiB are kept for comparison; 12 KiB go out unacknowledged, then the
            // start comes again.
            cfg.stream.max_kept_bytes_per_stream = 4096;
            let mut c = Conv::new(WEB, 80);
            c.handshake();
            let start = c.seq[C];
            let mut reqs = Vec::new();
            while reqs.len() < 12 * 1024 {
                reqs.extend_from_slice(b"GET /ok HTTP/1.1\r\nHost: web\r\n\r\n");
            }
            c.send(C, &reqs);
            c.raw(C, start, "A", &reqs[..1400]);
            c.frames
        }
        Uninspectable::Midstream => {
            // No handshake: the connection's start was never seen.
            let mut c = Conv::new(WEB, 80);
            c.send(C, b"GET /ok HTTP/1.1\r\nHost: web\r\n\r\n");
            c.frames
        }
        Uninspectable::Encrypted => {
            // PostgreSQL's SSLRequest, accepted: SQL rules can no longer read a statement.
            let mut c = Conv::new(DB, 5432);
            c.handshake();
            c.send(C, &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
            c.send(S, b"S");
            c.send(C, b"\x16\x03\x01\x00\x05hello");
            c.frames
        }
        Uninspectable::Compressed => {
            // MySQL 8 with zstd compression (CLIENT_ZSTD_COMPRESSION_ALGORITHM) negotiated on
            // both sides: the parser inflates zlib (CLIENT_COMPRESS), not zstd.
            let mut c = Conv::new(MY, 3306);
            c.handshake();
            let caps = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0400_0000;
            let mut g = Vec::new();
            wire::my_greeting(&mut g, "8.0.36", 7, &[1; 20], caps);
            c.send(S, &g);
            let mut r = Vec::new();
            wire::my_handshake_response(&mut r, caps, "app", &[2; 20], None, &[]);
            c.send(C, &r);
            let mut ok = Vec::new();
            wire::my_ok(&mut ok, 2, 0, 0, 0, 2);
            c.send(S, &ok);
            c.send(C, b"\x10\x00\x00\x00\x20\x00\x00zstd-frame-bytes");
            c.frames
        }
        Uninspectable::Unsupported => {
            // A MySQL replication stream (COM_BINLOG_DUMP): the parser does not read it.
            let mut c = Conv::new(MY, 3306);
            c.handshake();
            let caps = 0x0000_0200 | 0x0000_8000 | 0x0008_0000;
            let mut g = Vec::new();
            wire::my_greeting(&mut g, "8.0.36", 7, &[1; 20], caps);
            c.send(S, &g);
            let mut r = Vec::new();
            wire::my_handshake_response(&mut r, caps, "repl", &[2; 20], None, &[]);
            c.send(C, &r);
            let mut ok = Vec::new();
            wire::my_ok(&mut ok, 2, 0, 0, 0, 2);
            c.send(S, &ok);
            let mut dump = Vec::new();
            wire::my_packet(
                &mut dump,
                0,
                b"\x12\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00",
            );
            c.send(C, &dump);
            c.frames
        }
    };
    (frames, cfg)
}

#[test]
fn every_cause_ends_in_the_policys_decision() {
    let protect = snapshot("");
    let allow = snapshot("  onUninspectable: allow\n");
    let mut failures = Vec::new();
    for cause in Uninspectable::ALL {
        let (frames, cfg) = blinding(cause);
        let r = run(&protect, cfg.clone(), &frames);
        let st = &r.worker.stats;
        let decided = st
            .uninspectable_decisions
            .get(&(cause.as_str(), "deny"))
            .copied()
            .unwrap_or(0);
        let flow_denied = st.verdicts.get("deny", "uninspectable");
        let reset = r.verdicts.contains(&PacketVerdict::DropReset);
        if decided != 1 || flow_denied != 1 || !reset {
            failures.push(format!(
                "{}: decisions {:?}, flow verdicts {:?}, packet verdicts {:?}, anomalies {:?}",
                cause.as_str(),
                st.uninspectable_decisions,
                st.verdicts.iter().collect::<Vec<_>>(),
                r.verdicts,
                st.anomalies,
            ));
            continue;
        }
        // `onUninspectable: allow`: counted, not enforced.
        let r = run(&allow, cfg, &frames);
        let st = &r.worker.stats;
        if st.uninspectable.get(cause.as_str()).copied().unwrap_or(0) != 1
            || st
                .uninspectable_decisions
                .get(&(cause.as_str(), "allow"))
                .copied()
                .unwrap_or(0)
                != 1
            || st.verdicts.get("deny", "uninspectable") != 0
        {
            failures.push(format!(
                "{} under allow: uninspectable {:?}, decisions {:?}",
                cause.as_str(),
                st.uninspectable,
                st.uninspectable_decisions
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_monitor_group_alerts_without_dropping() {
    let snap = snapshot("").clone();
    let monitored = load_policy_str(
        &policy("").replace(
            "web: {cidrs: [10.0.0.2/32]}",
            "web: {cidrs: [10.0.0.2/32], mode: monitor}",
        ),
        "p.yaml",
    )
    .unwrap();
    let monitored = Arc::new(compile(&monitored.policy, &WorkloadInventory::empty(), 1).unwrap());
    let (frames, cfg) = blinding(Uninspectable::AmbiguousFraming);
    let r = run(&monitored, cfg.clone(), &frames);
    let st = &r.worker.stats;
    assert_eq!(
        st.uninspectable_decisions
            .get(&("ambiguous_framing", "alert")),
        Some(&1)
    );
    assert!(r.verdicts.iter().all(|v| *v == PacketVerdict::Accept));
    assert!(st.alerts >= 1);
    // The same in protect mode is dropped with resets.
    let r = run(&snap, cfg, &frames);
    assert!(r.verdicts.contains(&PacketVerdict::DropReset));
}

#[test]
fn flows_no_rule_could_judge_are_counted_but_not_decided() {
    // A server in no group: no rule reads anything there, and the default allows it.
    let snap = snapshot("  defaultAction: allow\n");
    let mut c = Conv::new([10, 0, 0, 9], 7000);
    c.handshake();
    c.send(C, b"\xfe\xfd\xfc not a protocol anyone detects\r\n");
    c.send(S, b"\xfe\xfd\xfc nor this\r\n");
    let r = run(&snap, WorkerConfig::default(), &c.frames);
    let st = &r.worker.stats;
    assert_eq!(st.uninspectable.get("unknown_protocol"), Some(&1));
    assert!(st.uninspectable_decisions.is_empty());
    assert!(r.verdicts.iter().all(|v| *v == PacketVerdict::Accept));
}

#[test]
fn a_stray_datagram_before_a_query_is_judged_alone_and_the_query_still_is() {
    // Junk, then a query, from the same socket (tests/data/dns/dns-junk.pcap is a real one):
    // the junk is refused on its own, the query is read and judged, the flow goes on.
    let snap = snapshot("");
    let udp = |payload: &[u8]| {
        let mut out = Vec::new();
        PacketBuilder::ipv4(CLIENT, [10, 0, 0, 53], 64)
            .udp(40053, 53)
            .write(&mut out, payload)
            .unwrap();
        out
    };
    let mut q = Vec::new();
    wire::dns_query(
        &mut q,
        &wire::DnsAsk {
            id: 7,
            name: "orders.shop",
            qtype: 1,
            edns: false,
        },
    );
    let frames = vec![udp(b"\xde\xad\xbe\xef junk"), udp(b"more junk"), udp(&q)];
    let r = run(&snap, WorkerConfig::default(), &frames);
    let st = &r.worker.stats;
    assert_eq!(
        r.verdicts,
        [
            PacketVerdict::Drop,
            PacketVerdict::Drop,
            PacketVerdict::Accept
        ]
    );
    assert_eq!(st.transactions, 1, "the query after the junk is read");
    assert_eq!(st.tx_verdicts.get("allow", "dns"), 1);
    assert_eq!(
        st.uninspectable_decisions
            .get(&("unknown_protocol", "deny")),
        Some(&2)
    );
    assert_eq!(st.app_protos.get("dns"), Some(&1));
}
