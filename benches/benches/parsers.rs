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

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;

use control::{
    Endpoint, FlowRules, PolicySnapshot, Transport, compile, load_inventory_str, load_policy_str,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::inspect::{FlowInspector, InspectCounters, InspectEvent, ParserRegistry};
use dataplane::reassembly::Chunk;
use proto_parsers::contract::{Fact, FactSink, ParserAnomaly, StreamParser};
use proto_parsers::driver::CarryBudget;
use proto_parsers::facts::{Header, HttpRequest, HttpVersion, RequestDetail, SqlDialect};
use proto_parsers::http1::Http1Parser;
use proto_parsers::sql::Classifier;
use proto_parsers::{AppProto, Direction};
use traffic_gen::generate::Rng;
use traffic_gen::wire::hpack_int;

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

// ---------------------------------------------------------------------------------------
// HTTP/1.1

const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                          Chrome/131.0.0.0 Safari/537.36";

/// One request head as a browser, an API client or a probe writes it; `body` adds
/// `Content-Type`/`Content-Length` for that many bytes.
fn http1_head(rng: &mut Rng, i: usize, body: Option<usize>) -> Vec<u8> {
    let mut h = String::new();
    let method = if body.is_some() { "POST" } else { "GET" };
    match i % 3 {
        0 => {
            let _ = write!(
                h,
                "{method} /shop/products/{}?ref=home&utm_source=newsletter HTTP/1.1\r\n\
                 Host: www.shop.example\r\nUser-Agent: {BROWSER_UA}\r\n\
                 Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                 image/webp,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\n\
                 Accept-Encoding: gzip, deflate, br, zstd\r\n\
                 Referer: https://www.shop.example/shop/\r\n\
                 Cookie: session={}; _ga=GA1.2.{}.1700000000; cart=3\r\n\
                 Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\
                 Sec-Fetch-Site: same-origin\r\nUpgrade-Insecure-Requests: 1\r\n\
                 Connection: keep-alive\r\n",
                rng.below(100_000),
                hex(rng, 40),
                rng.below(1_000_000_000)
            );
        }
        1 => {
            let _ = write!(
                h,
                "{method} /api/v1/orders/{}/items?limit=50 HTTP/1.1\r\n\
                 Host: orders.shop.svc.cluster.local:8080\r\nUser-Agent: okhttp/4.12.0\r\n\
                 Accept: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.{}.{}\r\n\
                 X-Request-Id: {}\r\nX-B3-TraceId: {}\r\nX-B3-SpanId: {}\r\nX-B3-Sampled: 1\r\n\
                 Accept-Encoding: gzip\r\n",
                rng.below(10_000_000),
                hex(rng, 64),
                hex(rng, 43),
                uuid(rng),
                hex(rng, 16),
                hex(rng, 16)
            );
        }
        _ => {
            let _ = write!(
                h,
                "{method} /healthz HTTP/1.1\r\nHost: 10.0.{}.{}:8080\r\n\
                 User-Agent: kube-probe/1.31\r\nAccept: */*\r\n",
                rng.below(255),
                rng.below(255)
            );
        }
    }
    if let Some(n) = body {
        let _ = write!(
            h,
            "Content-Type: application/json\r\nContent-Length: {n}\r\n"
        );
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// Request heads without bodies, a third each of browser, API client and probe.
/// 60 of them: below the parser's 64 outstanding requests.
pub fn http1_heads() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0x4854_5031);
    (0..60).map(|i| http1_head(&mut rng, i, None)).collect()
}

/// A keep-alive connection: `n` request/response exchanges (a fifth of the requests are
/// POSTs with JSON bodies; responses nginx-style, 120 B to 6 KB, one in five chunked).
pub fn http1_keepalive(n: usize) -> Conversation {
    let mut rng = Rng::new(0x4b41);
    let mut c = Conversation::new("http1_keepalive", AppProto::Http);
    for i in 0..n {
        let body_len = 200 + rng.below(600) as usize;
        let body = (i % 5 == 4).then(|| json_body(&mut rng, body_len));
        let mut req = http1_head(&mut rng, i, body.as_ref().map(Vec::len));
        req.extend_from_slice(body.as_deref().unwrap_or_default());
        c.write(C, &req);
        let len = 120 + rng.below(6_000) as usize;
        let payload = json_body(&mut rng, len);
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nServer: nginx/1.27.3\r\nDate: Sun, 22 Nov 2026 09:15:27 GMT\r\n\
             Content-Type: application/json\r\nConnection: keep-alive\r\n\
             Cache-Control: no-store\r\nX-Request-Id: {}\r\n",
            uuid(&mut rng)
        )
        .into_bytes();
        if i % 5 == 2 {
            resp.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for part in payload.chunks(2_048) {
                resp.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                resp.extend_from_slice(part);
                resp.extend_from_slice(b"\r\n");
            }
            resp.extend_from_slice(b"0\r\n\r\n");
        } else {
            resp.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
            resp.extend_from_slice(&payload);
        }
        c.write(S, &resp);
    }
    c.requests = n as u64;
    c.responses = n as u64;
    c
}

fn bench_http1(c: &mut Criterion) {
    let reg = ParserRegistry::builtin();
    let mut g = c.benchmark_group("http1");

    // Heads only, each as its own segment, into the parser itself through the contract
    // (`dyn StreamParser`, as the inspector holds it). A fresh parser per 60 heads keeps the
    // outstanding-request queue below its bound without feeding responses.
    let heads = http1_heads();
    let bytes: u64 = heads.iter().map(|h| h.len() as u64).sum();
    {
        let mut p = Http1Parser::new();
        let mut t = Tally::default();
        for h in &heads {
            let _ = p.feed(C, h, &mut t);
        }
        assert_eq!((t.requests, t.anomalies), (heads.len() as u64, 0));
    }
    g.throughput(Throughput::ElementsAndBytes {
        elements: heads.len() as u64,
        bytes,
    });
    g.bench_function("request_heads", |b| {
        b.iter(|| {
            let mut p = Http1Parser::new();
            let p: &mut dyn StreamParser = &mut p;
            let mut t = Tally::default();
            for h in &heads {
                black_box(p.feed(C, black_box(h), &mut t));
            }
            t
        })
    });

    let conv = http1_keepalive(500);
    conv.check(&reg);
    bench_conversation(&mut g, "keepalive_conversation", &conv, &reg);
    g.finish();
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

// ---------------------------------------------------------------------------------------
// HTTP/2 and HPACK

/// RFC 7541 Appendix A.
#[rustfmt::skip]
const HPACK_STATIC: [(&str, &str); 61] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
];

/// RFC 7541 Appendix B: (code, bits) per byte value.
#[rustfmt::skip]
const HUFFMAN: [(u32, u8); 256] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10),
    (0xffa, 12), (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), (0xfa, 8),
    (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5),
    (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6),
    (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13),
    (0x21, 6), (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7),
    (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7), (0x65, 7),
    (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), (0x6f, 7),
    (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14),
    (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6),
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6),
    (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6),
    (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11),
    (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22),
    (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22),
    (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24),
    (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22),
    (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22),
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22),
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23),
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20),
    (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22),
    (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20),
    (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27),
    (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27),
    (0xfffff2, 24), (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20),
    (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21),
    (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25),
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27),
    (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28),
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27),
    (0x3ffffee, 26),
];

/// An HPACK encoder that behaves like nghttp2's: indexes every field it sends (literal with
/// incremental indexing, name from a table when it can), evicts by RFC 7541's size rule, and
/// Huffman-codes a string when that is shorter.
pub struct Hpack {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max: usize,
}

impl Default for Hpack {
    fn default() -> Self {
        Hpack {
            table: VecDeque::new(),
            size: 0,
            max: 4096,
        }
    }
}

fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    let bits: usize = s
        .iter()
        .map(|&b| usize::from(HUFFMAN[usize::from(b)].1))
        .sum();
    let hlen = bits.div_ceil(8);
    if hlen >= s.len() {
        hpack_int(out, 7, 0, s.len());
        out.extend_from_slice(s);
        return;
    }
    hpack_int(out, 7, 0x80, hlen);
    let (mut acc, mut n) = (0u64, 0u32);
    for &b in s {
        let (code, len) = HUFFMAN[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        n += u32::from(len);
        while n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
        }
    }
    if n > 0 {
        // Padded with the most significant bits of EOS (all ones).
        out.push(((acc << (8 - n)) as u8) | ((1u8 << (8 - n)) - 1));
    }
}

impl Hpack {
    /// Appends one field's representation to `out`.
    pub fn field(&mut self, out: &mut Vec<u8>, name: &str, value: &str) {
        let (n, v) = (name.as_bytes(), value.as_bytes());
        let mut name_ix = None;
        for (i, (sn, sv)) in HPACK_STATIC.iter().enumerate() {
            if sn.as_bytes() == n {
                if sv.as_bytes() == v {
                    hpack_int(out, 7, 0x80, i + 1);
                    return;
                }
                name_ix.get_or_insert(i + 1);
            }
        }
        for (i, (dn, dv)) in self.table.iter().enumerate() {
            if dn.as_slice() == n {
                if dv.as_slice() == v {
                    hpack_int(out, 7, 0x80, HPACK_STATIC.len() + 1 + i);
                    return;
                }
                name_ix.get_or_insert(HPACK_STATIC.len() + 1 + i);
            }
        }
        match name_ix {
            Some(ix) => hpack_int(out, 6, 0x40, ix),
            None => {
                out.push(0x40);
                hpack_string(out, n);
            }
        }
        hpack_string(out, v);
        let size = n.len() + v.len() + 32;
        while self.size + size > self.max {
            match self.table.pop_back() {
                Some((a, b)) => self.size -= a.len() + b.len() + 32,
                None => break,
            }
        }
        if size <= self.max {
            self.table.push_front((n.to_vec(), v.to_vec()));
            self.size += size;
        }
    }

    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in fields {
            self.field(&mut out, n, v);
        }
        out
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ACK: u8 = 1;

fn frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect()
}

/// The shape of an HTTP/2 workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H2Kind {
    /// REST calls over 16 endpoints: after the first few, every field is in the dynamic
    /// tables (each header block is a few indexed bytes).
    Indexed,
    /// Every request names a new resource (`/api/v1/orders/<id>`): one new Huffman-coded
    /// `:path` literal per request, which also churns the dynamic table.
    NewPaths,
    /// gRPC unary calls over 4 methods: request message, response message, trailers.
    GrpcUnary,
}

/// A prior-knowledge HTTP/2 connection of `n` exchanges, requests sent 8 at a time (4 for
/// gRPC) as concurrent streams before their responses.
pub fn h2_conversation(kind: H2Kind, n: usize) -> Conversation {
    let (name, app) = match kind {
        H2Kind::Indexed => ("h2_indexed", AppProto::Http2),
        H2Kind::NewPaths => ("h2_new_paths", AppProto::Http2),
        H2Kind::GrpcUnary => ("grpc_unary", AppProto::Http2),
    };
    let mut c = Conversation::new(name, app);
    let mut rng = Rng::new(0x4832);
    let (mut enc_c, mut enc_s) = (Hpack::default(), Hpack::default());

    let mut w = H2_PREFACE.to_vec();
    frame(
        &mut w,
        SETTINGS,
        0,
        0,
        &settings(&[(2, 0), (3, 100), (4, 1 << 24)]),
    );
    frame(&mut w, WINDOW_UPDATE, 0, 0, &(1u32 << 24).to_be_bytes());
    c.write(C, &w);
    let mut w = Vec::new();
    frame(
        &mut w,
        SETTINGS,
        0,
        0,
        &settings(&[(3, 128), (4, 65_535), (5, 16_384)]),
    );
    frame(&mut w, SETTINGS, ACK, 0, &[]);
    c.write(S, &w);
    let mut w = Vec::new();
    frame(&mut w, SETTINGS, ACK, 0, &[]);
    c.write(C, &w);

    let batch = if kind == H2Kind::GrpcUnary { 4 } else { 8 };
    let token = format!(
        "Bearer eyJhbGciOiJIUzI1NiJ9.{}.{}",
        hex(&mut rng, 64),
        hex(&mut rng, 43)
    );
    let grpc_methods = ["GetOrder", "ListItems", "Reserve", "Cancel"];
    let mut stream = 1u32;
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let (mut wc, mut ws) = (Vec::new(), Vec::new());
        for j in 0..k {
            let i = done + j;
            let id = stream + 2 * j as u32;
            match kind {
                H2Kind::Indexed | H2Kind::NewPaths => {
                    let path = if kind == H2Kind::Indexed {
                        format!("/api/v1/{}", ["orders", "items", "carts", "users"][i % 4])
                            + ["", "?limit=50", "/summary", "/recent"][(i / 4) % 4]
                    } else {
                        format!("/api/v1/orders/{}", 1_000_000 + i * 7)
                    };
                    let post = i % 4 == 3;
                    let body = post.then(|| json_body(&mut rng, 240));
                    let len = body.as_ref().map(|b| b.len().to_string());
                    let mut fields = vec![
                        (":method", if post { "POST" } else { "GET" }),
                        (":scheme", "https"),
                        (":authority", "api.shop.example"),
                        (":path", path.as_str()),
                        ("accept", "application/json"),
                        ("accept-encoding", "gzip, deflate, br"),
                        (
                            "user-agent",
                            "palisade-bench/1.0 (x86_64-linux) nghttp2/1.64.0",
                        ),
                        ("authorization", token.as_str()),
                    ];
                    if let Some(l) = &len {
                        fields.push(("content-type", "application/json"));
                        fields.push(("content-length", l.as_str()));
                    }
                    let block = enc_c.block(&fields);
                    let flags = END_HEADERS | if post { 0 } else { END_STREAM };
                    frame(&mut wc, HEADERS, flags, id, &block);
                    if let Some(b) = &body {
                        frame(&mut wc, DATA, END_STREAM, id, b);
                    }
                    let sizes = [180, 420, 760, 1_310];
                    let payload = json_body(&mut rng, sizes[i % 4]);
                    let plen = payload.len().to_string();
                    let block = enc_s.block(&[
                        (":status", "200"),
                        ("content-type", "application/json"),
                        ("content-length", plen.as_str()),
                        ("date", "Sun, 22 Nov 2026 09:15:27 GMT"),
                        ("server", "envoy"),
                        ("cache-control", "no-store"),
                    ]);
                    frame(&mut ws, HEADERS, END_HEADERS, id, &block);
                    frame(&mut ws, DATA, END_STREAM, id, &payload);
                }
                H2Kind::GrpcUnary => {
                    let path = format!("/shop.v1.Orders/{}", grpc_methods[i % 4]);
                    let block = enc_c.block(&[
                        (":method", "POST"),
                        (":scheme", "http"),
                        (":path", path.as_str()),
                        (":authority", "orders.shop.svc.cluster.local:50051"),
                        ("content-type", "application/grpc"),
                        ("user-agent", "grpc-go/1.64.0"),
                        ("te", "trailers"),
                    ]);
                    frame(&mut wc, HEADERS, END_HEADERS, id, &block);
                    frame(
                        &mut wc,
                        DATA,
                        END_STREAM,
                        id,
                        &grpc_message(&mut rng, 24 + i % 40),
                    );
                    let block =
                        enc_s.block(&[(":status", "200"), ("content-type", "application/grpc")]);
                    frame(&mut ws, HEADERS, END_HEADERS, id, &block);
                    frame(
                        &mut ws,
                        DATA,
                        0,
                        id,
                        &grpc_message(&mut rng, 80 + (i * 37) % 320),
                    );
                    let block = enc_s.block(&[("grpc-status", "0")]);
                    frame(&mut ws, HEADERS, END_HEADERS | END_STREAM, id, &block);
                }
            }
        }
        frame(&mut wc, WINDOW_UPDATE, 0, 0, &8_192u32.to_be_bytes());
        c.write(C, &wc);
        c.write(S, &ws);
        stream += 2 * k as u32;
        done += k;
    }
    c.requests = n as u64;
    c.responses = n as u64;
    c
}

/// A gRPC length-prefixed message (uncompressed) around `len` bytes of protobuf-ish payload.
fn grpc_message(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut m = vec![0];
    m.extend_from_slice(&(len as u32).to_be_bytes());
    m.extend((0..len).map(|_| rng.below(256) as u8));
    m
}

fn bench_h2(c: &mut Criterion) {
    let reg = ParserRegistry::builtin();
    let mut g = c.benchmark_group("h2");
    // Long connections, so that what the first exchanges cost (every field a Huffman-coded
    // literal until the dynamic tables hold it) is spread thin: the steady state.
    for (name, kind, n) in [
        ("conversation_indexed", H2Kind::Indexed, 10_000),
        ("grpc_unary", H2Kind::GrpcUnary, 10_000),
        ("conversation_new_paths", H2Kind::NewPaths, 1_000),
    ] {
        let conv = h2_conversation(kind, n);
        conv.check(&reg);
        if kind == H2Kind::NewPaths {
            g.sample_size(10);
        }
        bench_conversation(&mut g, name, &conv, &reg);
    }
    // What a new connection costs: preface, SETTINGS both ways, the first request and its
    // response, all of whose fields are literals.
    g.sample_size(100);
    let conv = h2_conversation(H2Kind::Indexed, 1);
    conv.check(&reg);
    bench_conversation(&mut g, "first_exchange", &conv, &reg);
    g.finish();
}

// ---------------------------------------------------------------------------------------
// PostgreSQL and MySQL: recorded sessions (login and all), then their request/response
// exchanges repeated, as a long-lived pooled connection would send them.

const PG_PSQL: &[u8] = include_bytes!("../../proto-parsers/src/postgres/testdata/pg-psql.bin");
const PG_PSYCOPG: &[u8] =
    include_bytes!("../../proto-parsers/src/postgres/testdata/pg-psycopg.bin");
const MY_CLIENT: &[u8] = include_bytes!("../../proto-parsers/src/mysql/testdata/my-client.bin");
const MY_PREPARE: &[u8] = include_bytes!("../../proto-parsers/src/mysql/testdata/my-prepare.bin");

/// `prelude` records once, then `steady` records `rounds` times; each range comes with the
/// number of requests the parser reports for it.
fn repeat_records(
    c: &mut Conversation,
    recs: &[(Direction, Vec<u8>)],
    (prelude, prelude_requests): (std::ops::Range<usize>, u64),
    (steady, per_round): (std::ops::Range<usize>, u64),
    rounds: usize,
) {
    for (d, b) in &recs[prelude] {
        c.write(*d, b);
    }
    for _ in 0..rounds {
        for (d, b) in &recs[steady.clone()] {
            c.write(*d, b);
        }
    }
    c.requests = prelude_requests + per_round * rounds as u64;
    c.responses = c.requests;
}

/// psql: SSLRequest refused, SCRAM login, then simple queries (a point SELECT, two
/// statements with a join, a CTE, INSERT ... SELECT, UPDATE ... FROM, DELETE ... USING).
pub fn pg_simple(rounds: usize) -> Conversation {
    let mut c = Conversation::new("pg_simple_query", AppProto::Postgres);
    repeat_records(&mut c, &records(PG_PSQL), (0..8, 1), (8..20, 6), rounds);
    c
}

/// psycopg 3: SCRAM login, a statement prepared once (Parse `_pg3_0`), then the extended
/// protocol as a driver with a statement cache sends it: Bind/Describe/Execute/Sync of the
/// prepared statement twice, and an unnamed Parse/Bind/Execute/Sync (UPDATE), which the
/// parser reports as two requests (the prepare and the execution).
pub fn pg_extended(rounds: usize) -> Conversation {
    let mut c = Conversation::new("pg_extended", AppProto::Postgres);
    repeat_records(&mut c, &records(PG_PSYCOPG), (0..8, 2), (8..14, 4), rounds);
    c
}

/// MariaDB client: login, then COM_QUERY: a point SELECT, a join, INSERT ... SELECT, UPDATE.
pub fn mysql_query(rounds: usize) -> Conversation {
    let mut c = Conversation::new("mysql_com_query", AppProto::Mysql);
    repeat_records(&mut c, &records(MY_CLIENT), (0..3, 1), (3..11, 4), rounds);
    c
}

/// A connector with server-side prepared statements: login, session SETs, COM_STMT_PREPARE
/// once, then COM_STMT_EXECUTE of it with binary result sets.
pub fn mysql_prepared(rounds: usize) -> Conversation {
    let mut c = Conversation::new("mysql_prepared", AppProto::Mysql);
    repeat_records(
        &mut c,
        &records(MY_PREPARE),
        (0..13, 6),
        (13..17, 2),
        rounds,
    );
    c
}

fn bench_sql_protocols(c: &mut Criterion) {
    let reg = ParserRegistry::builtin();
    let mut g = c.benchmark_group("db");
    for (name, conv) in [
        ("postgres_simple_query", pg_simple(100)),
        ("postgres_extended", pg_extended(200)),
        ("mysql_com_query", mysql_query(150)),
        ("mysql_prepared", mysql_prepared(300)),
    ] {
        conv.check(&reg);
        bench_conversation(&mut g, name, &conv, &reg);
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------
// Redis, DNS, TLS

/// A pipelining client (32 commands per write): GET, SET with 64-256 byte values, INCR,
/// HGET, EXPIRE, DEL over many keys, and the server's replies.
pub fn redis_pipelined(n: usize) -> Conversation {
    let mut rng = Rng::new(0x5245);
    let mut c = Conversation::new("redis_pipelined", AppProto::Redis);
    let mut done = 0;
    fn cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
    fn bulk(out: &mut Vec<u8>, v: &[u8]) {
        out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    while done < n {
        let k = 32.min(n - done);
        let (mut wc, mut ws) = (Vec::new(), Vec::new());
        for _ in 0..k {
            let id = rng.below(100_000);
            let value_len = 64 + rng.below(192) as usize;
            let value = hex(&mut rng, value_len);
            match rng.below(20) {
                0..=9 => {
                    cmd(&mut wc, &[b"GET", format!("user:{id}:profile").as_bytes()]);
                    bulk(&mut ws, value.as_bytes());
                }
                10..=13 => {
                    let key = format!("session:{id}");
                    cmd(
                        &mut wc,
                        &[b"SET", key.as_bytes(), value.as_bytes(), b"EX", b"3600"],
                    );
                    ws.extend_from_slice(b"+OK\r\n");
                }
                14 | 15 => {
                    cmd(
                        &mut wc,
                        &[
                            b"INCR",
                            format!("rate:10.0.{}.{}", id % 256, id / 256).as_bytes(),
                        ],
                    );
                    ws.extend_from_slice(format!(":{}\r\n", rng.below(500)).as_bytes());
                }
                16 | 17 => {
                    cmd(
                        &mut wc,
                        &[b"HGET", format!("user:{id}").as_bytes(), b"email"],
                    );
                    bulk(&mut ws, format!("user{id}@example.com").as_bytes());
                }
                18 => {
                    cmd(
                        &mut wc,
                        &[b"EXPIRE", format!("session:{id}").as_bytes(), b"3600"],
                    );
                    ws.extend_from_slice(b":1\r\n");
                }
                _ => {
                    cmd(&mut wc, &[b"DEL", format!("cache:{id}").as_bytes()]);
                    ws.extend_from_slice(b":0\r\n");
                }
            }
        }
        c.write(C, &wc);
        c.write(S, &ws);
        done += k;
    }
    c.requests = n as u64;
    c.responses = n as u64;
    c
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// Stub resolver traffic over UDP: A and AAAA queries with an EDNS OPT record for cluster
/// and internet names, answered with compression pointers (a CNAME chain for the CDN names).
pub fn dns_udp(n: usize) -> Conversation {
    const NAMES: [&str; 10] = [
        "orders.shop.svc.cluster.local",
        "payments.shop.svc.cluster.local",
        "redis-master.cache.svc.cluster.local",
        "kubernetes.default.svc.cluster.local",
        "api.github.com",
        "www.google.com",
        "s3.eu-west-1.amazonaws.com",
        "registry-1.docker.io",
        "login.microsoftonline.com",
        "ocsp.digicert.com",
    ];
    let mut rng = Rng::new(0x444e);
    let mut c = Conversation::new("dns_udp", AppProto::Dns);
    c.udp = true;
    let opt = [0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
    for i in 0..n {
        let id = rng.below(65_536) as u16;
        let name = NAMES[i % NAMES.len()];
        let qtype: u16 = if i % 3 == 2 { 28 } else { 1 };
        let mut question = Vec::new();
        dns_name(&mut question, name);
        question.extend_from_slice(&qtype.to_be_bytes());
        question.extend_from_slice(&1u16.to_be_bytes());

        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1]);
        q.extend_from_slice(&question);
        q.extend_from_slice(&opt);
        c.write(C, &q);

        let cname = i % NAMES.len() >= 4;
        let mut a = id.to_be_bytes().to_vec();
        a.extend_from_slice(&[0x81, 0x80, 0, 1, 0, if cname { 2 } else { 1 }, 0, 0, 0, 1]);
        a.extend_from_slice(&question);
        let data_len = if qtype == 28 { 16 } else { 4 };
        let mut owner = [0xc0u8, 0x0c];
        if cname {
            // CNAME to edge-N.cdn.example.net, then the address of that name.
            let at = a.len() + 12;
            a.extend_from_slice(&[0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0x0e, 0x10]);
            let mut target = Vec::new();
            dns_name(&mut target, &format!("edge-{}.cdn.example.net", i % 7));
            a.extend_from_slice(&(target.len() as u16).to_be_bytes());
            a.extend_from_slice(&target);
            owner = [0xc0 | (at >> 8) as u8, at as u8];
        }
        a.extend_from_slice(&owner);
        a.extend_from_slice(&qtype.to_be_bytes());
        a.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        a.extend_from_slice(&(data_len as u16).to_be_bytes());
        a.extend((0..data_len).map(|_| rng.below(256) as u8));
        a.extend_from_slice(&opt);
        c.write(S, &a);
    }
    c.requests = n as u64;
    c.responses = n as u64;
    c
}

const TLS_RECORDINGS: [&[u8]; 3] = [
    include_bytes!("../../proto-parsers/src/tls/testdata/tls-0.seg"),
    include_bytes!("../../proto-parsers/src/tls/testdata/tls-1.seg"),
    include_bytes!("../../proto-parsers/src/tls/testdata/tls-3.seg"),
];

/// New TLS connections (openssl TLS 1.3 and 1.2, and a 1.2 KB ClientHello in three records):
/// the ClientHello and the server's first segment (ServerHello onwards) of each.
pub fn tls_hellos() -> Vec<Conversation> {
    TLS_RECORDINGS
        .iter()
        .map(|rec| {
            let segs = records(rec);
            let mut c = Conversation::new("tls_hello", AppProto::Tls);
            c.segs = segs.into_iter().take(2).collect();
            c.requests = 1;
            c.responses = 1;
            c.opaque = 1;
            c
        })
        .collect()
}

fn bench_small_protocols(c: &mut Criterion) {
    let reg = ParserRegistry::builtin();
    let mut g = c.benchmark_group("misc");
    let conv = redis_pipelined(2_048);
    conv.check(&reg);
    bench_conversation(&mut g, "redis_pipelined", &conv, &reg);

    // One UDP flow (a stub resolver's source port) with many queries; each datagram alone.
    let conv = dns_udp(1_000);
    conv.check(&reg);
    bench_conversation(&mut g, "dns_udp", &conv, &reg);

    // A new flow per hello: detection, parser set-up, ClientHello, ServerHello.
    let hellos = tls_hellos();
    for h in &hellos {
        h.check(&reg);
    }
    g.throughput(Throughput::ElementsAndBytes {
        elements: hellos.len() as u64,
        bytes: hellos
            .iter()
            .map(|h| h.segs.first().map_or(0, |s| s.1.len() as u64))
            .sum(),
    });
    g.bench_function("tls_client_hello", |b| {
        b.iter(|| {
            let mut t = Tally::default();
            for h in &hellos {
                black_box(h.play(&reg, &mut t)).ok();
            }
            t
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// SQL classifier

/// A day of an OLTP application's statements, weighted as its traffic is (SELECTs first).
pub const SQL_MIX: [(SqlDialect, &str); 16] = [
    (
        SqlDialect::Postgres,
        "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.created_at > $1 ORDER BY o.id DESC LIMIT 50",
    ),
    (
        SqlDialect::Postgres,
        "SELECT id, email, created_at FROM users WHERE id = $1",
    ),
    (
        SqlDialect::Postgres,
        "/* app=shop,route=/checkout */ SELECT id, total FROM carts WHERE session_id = $1 \
         FOR UPDATE",
    ),
    (
        SqlDialect::Postgres,
        "SELECT u.id, u.email, p.plan FROM public.users u LEFT JOIN billing.plans p \
         ON p.user_id = u.id WHERE u.email = 'ann@example.com' -- login lookup",
    ),
    (
        SqlDialect::Postgres,
        "WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders WHERE created_at \
         > now() - interval '30 days' GROUP BY customer_id) SELECT c.email, r.spent FROM \
         recent r JOIN customers c ON c.id = r.customer_id WHERE r.spent > 1000",
    ),
    (
        SqlDialect::Postgres,
        "SELECT * FROM orders WHERE id IN (SELECT order_id FROM order_items WHERE sku = \
         'sku-42') AND status <> 'cancelled'",
    ),
    (
        SqlDialect::Postgres,
        "SELECT count(*) FROM events WHERE tenant_id = 42 AND kind IN ('click', 'view')",
    ),
    (
        SqlDialect::Postgres,
        "INSERT INTO order_items (order_id, sku, qty, price) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    ),
    (
        SqlDialect::Postgres,
        "INSERT INTO audit_log (user_id, action, payload) SELECT id, 'login', '{}' FROM users \
         WHERE id = 9",
    ),
    (
        SqlDialect::Postgres,
        "UPDATE inventory SET qty = qty - $1, updated_at = now() WHERE sku = $2 AND qty >= $1",
    ),
    (
        SqlDialect::Postgres,
        "UPDATE orders o SET status = 'shipped' FROM shipments s WHERE s.order_id = o.id AND \
         s.sent_at IS NOT NULL",
    ),
    (
        SqlDialect::Postgres,
        "DELETE FROM sessions WHERE expires_at < now()",
    ),
    (SqlDialect::Postgres, "BEGIN"),
    (SqlDialect::Postgres, "COMMIT"),
    (
        SqlDialect::Mysql,
        "SELECT `id`, `name`, `price` FROM `shop`.`products` WHERE `category_id` = 7 AND \
         `price` < 20.5 ORDER BY `price` LIMIT 20",
    ),
    (
        SqlDialect::Mysql,
        "UPDATE `carts` SET `updated_at` = NOW() /* touch */ WHERE `id` = 31337",
    ),
];

fn bench_sql_classifier(c: &mut Criterion) {
    let mut g = c.benchmark_group("sql");
    let mut cl = Classifier::new();
    for (d, text) in SQL_MIX {
        let n = cl.classify(d, text.as_bytes(), |s| s.len());
        assert!(n == 1 && !cl.overflow().any(), "{text}: {n} statements");
    }
    let bytes: u64 = SQL_MIX.iter().map(|(_, t)| t.len() as u64).sum();
    g.throughput(Throughput::ElementsAndBytes {
        elements: SQL_MIX.len() as u64,
        bytes,
    });
    g.bench_function("classify_mix", |b| {
        b.iter(|| {
            let mut tables = 0usize;
            for (d, text) in SQL_MIX {
                tables += cl.classify(d, black_box(text.as_bytes()), |s| {
                    s.iter().map(|st| st.tables.len()).sum::<usize>()
                });
            }
            tables
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// An HTTP request decision with 10,000 workloads and 10,000 rules

const TEAMS: u32 = 50;
const SERVICES: u32 = 200;
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const RULE_PATHS: [&str; 10] = [
    "/api/*",
    "/api/v1/users/*/orders",
    "/api/v1/orders/*",
    "/healthz",
    "/p1",
    "regex:/r[0-9]+/x",
    "/static/*",
    "/admin/*",
    "/*",
    "/api/v1/*",
];
const RULE_HOSTS: [&str; 5] = [
    "h1.shop",
    "api.shop",
    "*.cdn.shop",
    "*.shop",
    "img-*.cdn.shop",
];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

fn yaml_list(rng: &mut Rng, xs: &[&str], max: u64) -> String {
    let n = 1 + rng.below(max);
    let mut v: Vec<&str> = (0..n).map(|_| pick(rng, xs)).collect();
    v.sort_unstable();
    v.dedup();
    let q: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}

/// 10,000 workloads (50 teams, 200 services, 5 namespaces) and 10,000 rules: 70% HTTP rules
/// towards a service with 1-2 `http` clauses (methods, paths, hosts, headers), 15% rules of
/// other apps (some with `sql`/`redis` matchers), 15% plain L4 rules. (Larger clause lists
/// run into the YAML loader's 250,000-node budget.)
pub fn http_policy() -> Result<PolicySnapshot, String> {
    let (inv, pol) = http_policy_yaml();
    let p = load_policy_str(&pol, "http-scale.yaml").map_err(|e| e.to_string())?;
    let i = load_inventory_str(&inv, "http-scale-inventory.yaml").map_err(|e| e.to_string())?;
    compile(&p.policy, &i, 1).map_err(|e| e.to_string())
}

/// The inventory and policy YAML of [`http_policy`].
pub fn http_policy_yaml() -> (String, String) {
    const N: u32 = 10_000;
    let mut rng = Rng::new(0x7011);
    let mut inv =
        String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
    for i in 0..N {
        let _ = writeln!(
            inv,
            "  - {{name: w{i}, namespace: ns-{}, labels: {{app: svc-{}, team: t-{}}}, ips: [{}]}}",
            i % 5,
            i % SERVICES,
            i % TEAMS,
            benches::scale::workload_ip(i)
        );
    }
    let mut pol = String::from(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: http-scale}\n\
         spec:\n  mode: protect\n  defaultAction: deny\n  groups:\n",
    );
    let mut sources = Vec::new();
    for t in 0..TEAMS {
        let _ = writeln!(pol, "    team-{t}: {{selector: {{team: t-{t}}}}}");
        sources.push(format!("team-{t}"));
    }
    for a in 0..SERVICES {
        let _ = writeln!(pol, "    svc-{a}: {{selector: {{app: svc-{a}}}}}");
        sources.push(format!("svc-{a}"));
    }
    for n in 0..5 {
        let _ = writeln!(pol, "    ns-{n}: {{namespaces: [ns-{n}]}}");
        sources.push(format!("ns-{n}"));
    }
    pol.push_str("    world: {cidrs: [0.0.0.0/0]}\n  rules:\n");
    sources.push("*".into());
    for r in 0..N {
        let from = (0..1 + u64::from(rng.below(4) == 0))
            .map(|_| format!("\"{}\"", sources[rng.below(sources.len() as u64) as usize]))
            .collect::<Vec<_>>()
            .join(", ");
        let to = format!("\"svc-{}\"", rng.below(u64::from(SERVICES)));
        let kind = rng.below(100);
        let mut extra = String::new();
        let action;
        if kind < 70 {
            if rng.below(2) == 0 {
                extra.push_str(", ports: [8080]");
            }
            extra.push_str(", app: http, http: [");
            for k in 0..1 + rng.below(2) {
                let mut f = Vec::new();
                if rng.below(100) < 60 {
                    f.push(format!("methods: {}", yaml_list(&mut rng, &METHODS, 2)));
                }
                if rng.below(100) < 70 {
                    f.push(format!("paths: {}", yaml_list(&mut rng, &RULE_PATHS, 2)));
                }
                if rng.below(100) < 30 {
                    f.push(format!("hosts: {}", yaml_list(&mut rng, &RULE_HOSTS, 2)));
                }
                if rng.below(100) < 10 || f.is_empty() {
                    f.push(format!("headers: {{x-tenant: t{}}}", rng.below(3)));
                }
                let _ = write!(
                    extra,
                    "{}{{{}}}",
                    if k > 0 { ", " } else { "" },
                    f.join(", ")
                );
            }
            extra.push(']');
            action = pick(&mut rng, &["allow", "allow", "allow", "deny", "alert"]);
        } else if kind < 85 {
            let app = pick(&mut rng, &["grpc", "postgres", "redis", "tls", "dns"]);
            let _ = write!(extra, ", app: {app}");
            match app {
                "postgres" => extra.push_str(", sql: [{verbs: [SELECT], tables: [orders]}]"),
                "redis" => extra.push_str(", redis: [{commands: [GET], keys: [\"user:*\"]}]"),
                _ => {}
            }
            action = pick(&mut rng, &["allow", "allow", "deny"]);
        } else {
            let p = 1 + rng.below(1000);
            let _ = write!(extra, ", ports: [{p}]");
            action = if rng.below(20) == 0 { "deny" } else { "allow" };
        }
        let _ = writeln!(
            pol,
            "    - {{id: r{r}, from: [{from}], to: [{to}]{extra}, action: {action}}}"
        );
    }
    (inv, pol)
}

/// A request as the HTTP/1 parser reports it, owned.
pub struct OwnedRequest {
    method: &'static str,
    path: String,
    host: String,
    headers: Vec<(&'static str, String)>,
}

pub fn http_requests(n: usize, seed: u64) -> Vec<OwnedRequest> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let method =
                ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"][rng.below(7) as usize];
            let id = rng.below(100_000);
            let path = match rng.below(10) {
                0 => format!("/api/v1/users/{id}/orders"),
                1 | 2 => format!("/api/v1/orders/{id}?expand=items"),
                3 => format!("/static/app.{}.js", hex(&mut rng, 8)),
                4 => "/healthz".to_string(),
                5 => format!("/r{}/x", id % 100),
                6 => "/admin/settings".to_string(),
                7 => format!("/api/v2/carts/{id}/../items"),
                8 => "/p1".to_string(),
                _ => format!("/shop/products/{id}"),
            };
            let host = [
                "api.shop",
                "h1.shop",
                "img-3.cdn.shop",
                "api.shop:8080",
                "other.test",
            ][rng.below(5) as usize]
                .to_string();
            let mut headers = vec![
                ("Host", host.clone()),
                ("User-Agent", "okhttp/4.12.0".to_string()),
                ("Accept", "application/json".to_string()),
            ];
            if rng.below(4) == 0 {
                headers.push(("X-Tenant", format!("t{}", rng.below(3))));
            }
            OwnedRequest {
                method,
                path,
                host,
                headers,
            }
        })
        .collect()
}

fn bench_policy(c: &mut Criterion) {
    let snap = http_policy().expect("generated HTTP policy compiles");
    let reqs = http_requests(1 << 12, 9);
    let mut rng = Rng::new(77);
    // Flows between random workloads on 8080 that the L4 decision admits (a denied flow is
    // never inspected, so its requests are never judged): endpoints resolved once per flow,
    // as the worker does; the per-request cost is normalising the path and judging.
    let mut flows: Vec<(Endpoint, Endpoint)> = Vec::with_capacity(1 << 12);
    let mut tries = 0u64;
    while flows.len() < 1 << 12 && tries < 10_000_000 {
        tries += 1;
        let ip = |rng: &mut Rng| -> IpAddr {
            IpAddr::V4(benches::scale::workload_ip(rng.below(10_000) as u32))
        };
        let (src, dst) = (snap.resolve(ip(&mut rng)), snap.resolve(ip(&mut rng)));
        let d = snap.judge_flow(&src, &dst, 8080, Transport::Tcp, Some(AppProto::Http));
        if d.action != control::Action::Deny {
            flows.push((src, dst));
        }
    }
    assert!(flows.len() == 1 << 12, "too few admitted flows");

    // Requests in the parser's shape, built beforehand (their header arrays borrow `reqs`).
    let headers: Vec<Vec<Header<'_>>> = reqs
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|(n, v)| Header {
                    name: n.as_bytes(),
                    value: v.as_bytes(),
                })
                .collect()
        })
        .collect();
    let http: Vec<HttpRequest<'_>> = reqs
        .iter()
        .zip(&headers)
        .map(|(r, h)| HttpRequest {
            version: HttpVersion::Http11,
            method: r.method.as_bytes(),
            path: r.path.as_bytes(),
            authority: Some(r.host.as_bytes()),
            user_agent: Some(b"okhttp/4.12.0"),
            content_type: None,
            headers: h,
        })
        .collect();
    let mut path = Vec::with_capacity(256);
    // What the worker's sink does per request: normalise the path, judge.
    // Decision `i` judges request `i mod reqs` on flow `7i + i / reqs`: every pair of
    // request and flow in turn.
    // `rules`: the flow's cache of the flow-only part of the decision; a fresh `None`
    // makes this exactly `judge_transaction`.
    let judge = |h: &HttpRequest<'_>,
                 src: &Endpoint,
                 dst: &Endpoint,
                 rules: &mut Option<FlowRules>,
                 path: &mut Vec<u8>| {
        let norm = proto_parsers::http::normalized_path(h.path, path);
        snap.judge_transaction_cached(
            rules,
            src,
            dst,
            8080,
            Transport::Tcp,
            AppProto::Http,
            &RequestDetail::Http(*h),
            Some(norm),
        )
    };
    let decide_among = |reqs: usize, i: usize, path: &mut Vec<u8>| {
        let h = &http[i & (reqs - 1)];
        let (src, dst) = &flows[(i * 7 + i / reqs) & (flows.len() - 1)];
        judge(h, src, dst, &mut None, path)
    };
    let decide = |i: usize, path: &mut Vec<u8>| decide_among(http.len(), i, path);
    // What the decisions are, printed with the results: rules must decide some of them.
    let (mut by_rule, mut constrained, mut denied) = (0, 0, 0);
    let total = 1 << 14;
    for i in 0..total {
        let d = decide(i, &mut path);
        by_rule += usize::from(d.rule.is_some());
        constrained += usize::from(d.l7_constrained);
        denied += usize::from(d.action == control::Action::Deny);
    }
    eprintln!(
        "policy/judge_http_10k: {} admitted flows of {tries} random workload pairs; of \
         {total} requests on them, {by_rule} decided by a rule, {constrained} allowed by an \
         L7 clause, {denied} denied; {} rules, {} workloads",
        flows.len(),
        snap.rule_count(),
        snap.workload_count()
    );

    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("judge_http_10k", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(decide(i, &mut path))
        })
    });
    // The same decisions as the worker makes them: right after the parser has read the
    // request, so its bytes (path, host, headers) are in cache. Above, each decision
    // reads one of 4,096 requests spread over the heap, and those first touches were
    // about half of its cache misses (callgrind's cache simulation). Here the requests
    // cycle through 64 (about 16 KB, which stay cached); flows, and with them the
    // endpoints' groups and the policy tables reached, still vary over the 4,096 pairs.
    g.bench_function("judge_http_10k_parsed", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(decide_among(64, i, &mut path))
        })
    });
    // As `_parsed`, with the flow-only part of the decision kept beside each flow's
    // endpoints, as the worker keeps it in its flow entry
    // (`PolicySnapshot::judge_transaction_cached`; computed at a flow's first request).
    let mut cached: Vec<(Endpoint, Endpoint, Option<FlowRules>)> =
        flows.iter().map(|&(s, d)| (s, d, None)).collect();
    let n = cached.len();
    g.bench_function("judge_http_10k_flow_cache", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let (src, dst, rules) = &mut cached[(i * 7 + i / 64) & (n - 1)];
            black_box(judge(&http[i & 63], src, dst, rules, &mut path))
        })
    });
    g.finish();

    // Compiling that policy (validation, address tables, L4 and L7 indexes, the pattern
    // DFAs) from its loaded YAML, and the YAML parse plus the compile.
    let (inv, pol) = http_policy_yaml();
    let p = load_policy_str(&pol, "http-scale.yaml").expect("generated policy loads");
    let loaded_inv =
        load_inventory_str(&inv, "http-scale-inventory.yaml").expect("generated inventory loads");
    let mut g = c.benchmark_group("policy");
    g.sample_size(10);
    g.bench_function("compile_http_10k", |b| {
        b.iter(|| black_box(compile(&p.policy, &loaded_inv, 1).expect("compiles")))
    });
    g.bench_function("load_compile_http_10k", |b| {
        b.iter(|| {
            let p = load_policy_str(&pol, "http-scale.yaml").expect("loads");
            let i = load_inventory_str(&inv, "http-scale-inventory.yaml").expect("loads");
            black_box(compile(&p.policy, &i, 1).expect("compiles"))
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_http1,
    bench_h2,
    bench_sql_protocols,
    bench_small_protocols,
    bench_sql_classifier,
    bench_policy
);
criterion_main!(benches);
