//! Per-protocol parser benches: HTTP/1.1, HTTP/2 with HPACK, gRPC, PostgreSQL, MySQL, Redis,
//! DNS, TLS, the SQL classifier, and an HTTP request policy decision at 10,000 rules.
//!
//! Every conversation goes through `dataplane::inspect::FlowInspector`, exactly as the worker
//! drives parsers (detection on the first bytes, then the parser through the streaming
//! contract with its bounded carry buffer), fed one TCP segment (at most 1448 bytes) or one
//! UDP datagram at a time, and starting from a fresh flow each iteration. The bytes are either
//! recorded conversations (`proto-parsers/src/*/testdata/`) or built here to look like real
//! clients and servers (browser and API request heads, nginx-style responses, an HPACK encoder
//! that indexes and Huffman-codes as nghttp2 does). Before any timing, each workload is replayed
//! once and checked: the expected protocol, every transaction reported, no anomaly, the flow
//! never opaque, so a bench can never measure a parser that gave up early.
//!
//! `benches/benches/alloc.rs` includes this file as a module to count allocations on the same
//! workloads. Results and the commands that produced them go to benches/RESULTS.md.

mod db;
mod h2;
mod hpack;
mod http1;
mod misc;
mod policy;
mod sql;

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Throughput, criterion_group, criterion_main};
use dataplane::inspect::{FlowInspector, InspectCounters, InspectEvent, ParserRegistry};
use dataplane::reassembly::Chunk;
use proto_parsers::contract::{Fact, FactSink, ParserAnomaly};
use proto_parsers::driver::CarryBudget;
use proto_parsers::{AppProto, Direction};
use traffic_gen::generate::Rng;

// What `alloc.rs` counts, at the paths it names.
pub use db::{mysql_prepared, mysql_query, pg_extended, pg_simple};
pub use h2::{H2Kind, h2_conversation};
pub use http1::http1_keepalive;
pub use misc::{dns_udp, redis_pipelined};

/// Largest TCP payload per segment (Ethernet MTU, IPv4, TCP with timestamps).
pub const MSS: usize = 1448;

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

// ---------------------------------------------------------------------------------------
// Driving parsers the way the worker does.

/// Counts what parsers report; touches each fact's summary so nothing is optimised away.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub requests: u64,
    pub responses: u64,
    pub unanswered: u64,
    pub opaque: u64,
    pub anomalies: u64,
    pub summary_bytes: u64,
}

impl FactSink for Tally {
    fn fact(&mut self, fact: &Fact<'_>) {
        match fact {
            Fact::Transaction { summary, .. } => {
                self.requests += 1;
                self.summary_bytes += summary.len() as u64;
            }
            Fact::Response { summary, .. } | Fact::Interim { summary, .. } => {
                self.responses += 1;
                self.summary_bytes += summary.len() as u64;
            }
            Fact::Unanswered { .. } => self.unanswered += 1,
            Fact::Opaque { .. } => self.opaque += 1,
        }
    }

    fn anomaly(&mut self, _: ParserAnomaly) {
        self.anomalies += 1;
    }
}

/// One flow's bytes as the inspector receives them: segments (or datagrams) in order.
#[derive(Clone, Debug)]
pub struct Conversation {
    pub name: &'static str,
    pub app: AppProto,
    pub udp: bool,
    pub segs: Vec<(Direction, Vec<u8>)>,
    /// Requests the parser must report (and responses it must pair).
    pub requests: u64,
    pub responses: u64,
    /// Facts the parser legitimately reports besides those (TLS: `Opaque { Encrypted }`).
    pub opaque: u64,
}

impl Conversation {
    pub fn new(name: &'static str, app: AppProto) -> Self {
        Conversation {
            name,
            app,
            udp: false,
            segs: Vec::new(),
            requests: 0,
            responses: 0,
            opaque: 0,
        }
    }

    /// What one side sends before it waits for the other, cut into segments of at most MSS.
    pub fn write(&mut self, dir: Direction, bytes: &[u8]) {
        if self.udp {
            self.segs.push((dir, bytes.to_vec()));
            return;
        }
        for seg in bytes.chunks(MSS) {
            self.segs.push((dir, seg.to_vec()));
        }
    }

    pub fn bytes(&self) -> u64 {
        self.segs.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Replays the conversation through a fresh inspector; `Err` if the flow went opaque.
    pub fn play(&self, reg: &ParserRegistry, sink: &mut Tally) -> Result<(), &'static str> {
        let mut flow = Flow::new(self.udp);
        flow.feed(reg, &self.segs, sink)?;
        flow.end(sink);
        Ok(())
    }

    /// Replays once and panics unless the parser reported exactly what was sent.
    pub fn check(&self, reg: &ParserRegistry) {
        let mut flow = Flow::new(self.udp);
        let mut t = Tally::default();
        let r = flow.feed(reg, &self.segs, &mut t);
        let app = flow.inspector.app();
        flow.end(&mut t);
        let ok = r.is_ok()
            && app == Some(self.app)
            && t.requests == self.requests
            && t.responses == self.responses
            && t.unanswered == 0
            && t.opaque == self.opaque
            && t.anomalies == 0;
        assert!(
            ok,
            "{}: {r:?}, detected {app:?} (want {:?}), {t:?}; want {} requests, {} responses, \
             {} opaque",
            self.name, self.app, self.requests, self.responses, self.opaque
        );
    }
}

/// One flow's inspection state, fed segment by segment.
pub struct Flow {
    pub inspector: FlowInspector,
    pub counters: InspectCounters,
    pub budget: CarryBudget,
}

impl Flow {
    pub fn new(udp: bool) -> Self {
        Flow {
            inspector: FlowInspector::new(udp),
            counters: InspectCounters::default(),
            budget: CarryBudget::unlimited(),
        }
    }

    pub fn feed(
        &mut self,
        reg: &ParserRegistry,
        segs: &[(Direction, Vec<u8>)],
        sink: &mut Tally,
    ) -> Result<(), &'static str> {
        for (dir, b) in segs {
            let ev = self.inspector.on_chunk(
                *dir,
                Chunk::Data(b),
                reg,
                sink,
                &mut self.counters,
                &mut self.budget,
            );
            if let InspectEvent { blind: Some(b), .. } = ev
                && !matches!(b.cause, control::Uninspectable::UnknownProtocol)
            {
                return Err(b.detail);
            }
        }
        Ok(())
    }

    pub fn end(&mut self, sink: &mut Tally) {
        self.inspector
            .end(sink, &mut self.counters, &mut self.budget);
    }
}

/// Reads the `dir:u8 | len:u32 BE | payload` records of the `.seg` (dir 0/1) and `.bin`
/// (dir `C`/`S`) fixtures.
pub fn records(bytes: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let [d, a, b, c, e, tail @ ..] = rest {
        let n = u32::from_be_bytes([*a, *b, *c, *e]) as usize;
        let dir = if matches!(d, 0 | b'C') { C } else { S };
        let Some(payload) = tail.get(..n) else { break };
        out.push((dir, payload.to_vec()));
        rest = tail.get(n..).unwrap_or_default();
    }
    out
}

fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
        .collect()
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 3),
        hex(rng, 3),
        hex(rng, 12)
    )
}

fn json_body(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::from("{\"items\":[");
    while s.len() + 60 < len {
        let _ = write!(
            s,
            "{{\"id\":{},\"sku\":\"sku-{}\",\"qty\":{}}},",
            rng.below(1_000_000),
            hex(rng, 6),
            rng.below(9) + 1
        );
    }
    s.push_str("{\"id\":0}]}");
    while s.len() < len {
        s.push(' ');
    }
    s.into_bytes()
}

/// Times whole conversations from a fresh flow; an element is a request.
fn bench_conversation(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    conv: &Conversation,
    reg: &ParserRegistry,
) {
    g.throughput(Throughput::ElementsAndBytes {
        elements: conv.requests.max(1),
        bytes: conv.bytes(),
    });
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut t = Tally::default();
            let r = conv.play(reg, &mut t);
            black_box((r, t))
        })
    });
}

criterion_group!(
    benches,
    http1::bench_http1,
    h2::bench_h2,
    db::bench_sql_protocols,
    misc::bench_small_protocols,
    sql::bench_sql_classifier,
    policy::bench_policy
);
criterion_main!(benches);
