//! Tests of the HTTP/1 parser on recorded curl <-> nginx conversations
//! (tests/data/http1/record.sh) and on hostile inputs.

use super::lines::check_request_line;
use super::scan::{Scan, Scanned, scan_head};
use super::*;
use crate::contract::{Fact, FactSink, GapOutcome, ParserAnomaly, Progress, StreamParser};
use crate::driver::{Driver, Stop};
use crate::facts::{RequestDetail, ResponseDetail};

const KEEPALIVE: &[u8] = include_bytes!("testdata/http1-0.seg");
const CHUNKED_UPLOAD: &[u8] = include_bytes!("testdata/http1-1.seg");
const BIG_AND_CHUNKED: &[u8] = include_bytes!("testdata/http1-2.seg");
const EXPECT_CONTINUE: &[u8] = include_bytes!("testdata/http1-3.seg");
const HTTP10: &[u8] = include_bytes!("testdata/http1-4.seg");
const HTTP10_CLOSE: &[u8] = include_bytes!("testdata/http1-5.seg");
const UPGRADE_REFUSED: &[u8] = include_bytes!("testdata/http1-6.seg");
const UPGRADE_H2C: &[u8] = include_bytes!("testdata/http1-h2c-0.seg");

/// Reads `dir:u8 | len:u32 BE | payload` records (tests/data/redis/segments.py).
fn segments(bytes: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let dir = if bytes[i] == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = u32::from_be_bytes(bytes[i + 1..i + 5].try_into().unwrap()) as usize;
        out.push((dir, bytes[i + 5..i + 5 + len].to_vec()));
        i += 5 + len;
    }
    out
}

fn streams(segs: &[(Direction, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
    let (mut c, mut s) = (Vec::new(), Vec::new());
    for (d, b) in segs {
        match d {
            Direction::ToServer => c.extend_from_slice(b),
            Direction::ToClient => s.extend_from_slice(b),
        }
    }
    (c, s)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opt(b: Option<&[u8]>) -> String {
    b.map_or("-".to_string(), lossy)
}

fn render(f: &Fact<'_>) -> String {
    match f {
        Fact::Transaction {
            app,
            id,
            summary,
            detail,
        } => {
            assert_eq!(*app, AppProto::Http);
            let RequestDetail::Http(r) = detail else {
                panic!("not an HTTP request: {detail:?}");
            };
            // The headers carry every field; the typed ones are the first of their name.
            let first = |n: &str| {
                r.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(n.as_bytes()))
                    .map(|h| h.value)
            };
            // The authority is the target's when it names one (CONNECT, absolute-form).
            let target = crate::http::target_authority(r.method, r.path);
            assert_eq!(r.authority, target.or(first("host")));
            assert_eq!(r.user_agent, first("user-agent"));
            assert_eq!(r.content_type, first("content-type"));
            assert!(summary.len() <= MAX_SUMMARY);
            format!(
                "tx {id} [{}] {:?} {} {} host={} ua={} ct={} fields={}",
                lossy(summary),
                r.version,
                lossy(r.method),
                lossy(r.path),
                opt(r.authority),
                opt(r.user_agent),
                opt(r.content_type),
                r.headers.len()
            )
        }
        Fact::Response {
            app,
            id,
            status,
            summary,
            detail,
        } => {
            assert_eq!(*app, AppProto::Http);
            let ResponseDetail::Http(r) = detail else {
                panic!("not an HTTP response: {detail:?}");
            };
            assert_eq!(*status, Some(u32::from(r.status)));
            format!(
                "rx {id} {} [{}] ct={}",
                r.status,
                lossy(summary),
                opt(r.content_type)
            )
        }
        Fact::Interim { id, status, .. } => format!("interim {id} {status}"),
        Fact::Unanswered { id, .. } => format!("unanswered {id}"),
        Fact::Opaque { reason, .. } => format!("opaque {}", reason.as_str()),
    }
}

#[derive(Default, Debug)]
struct Collect {
    facts: Vec<String>,
    anomalies: Vec<ParserAnomaly>,
}

impl FactSink for Collect {
    fn fact(&mut self, fact: &Fact<'_>) {
        self.facts.push(render(fact));
    }
    fn anomaly(&mut self, a: ParserAnomaly) {
        self.anomalies.push(a);
    }
}

/// The parser as the driver sees it, checking the contract on every answer.
struct Checked(Http1Parser);

impl StreamParser for Checked {
    fn proto(&self) -> AppProto {
        self.0.proto()
    }
    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let p = self.0.feed(dir, data, sink);
        assert!(p.consumed() <= data.len(), "consumed past the end");
        p
    }
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        self.0.gap(dir, len)
    }
    fn end(&mut self, sink: &mut dyn FactSink) {
        self.0.end(sink)
    }
    fn max_carry(&self) -> usize {
        self.0.max_carry()
    }
}

/// What one run produced.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Outcome {
    facts: Vec<String>,
    anomalies: Vec<ParserAnomaly>,
    /// Why the flow was given up, on the direction whose bytes did it (`None`: still
    /// parsing). The driver gives the whole flow up, as the data plane does.
    dead: [Option<&'static str>; 2],
    /// Bytes left in each direction's carry at the end.
    carried: [usize; 2],
    upgraded: Option<AppProto>,
    switched: Option<Switch>,
}

fn stop_str(s: Stop) -> &'static str {
    match s {
        Stop::Invalid(why) => why.as_str(),
        Stop::Overflow => "carry_overflow",
    }
}

/// Feeds `feeds` in order through the driver (the data plane's caller), each as the
/// reassembler would release it, then ends the flow.
fn run(feeds: &[(Direction, &[u8])]) -> Outcome {
    let mut d = Driver::new(Checked(Http1Parser::default()));
    let mut sink = Collect::default();
    let mut dead = [None, None];
    for (dir, b) in feeds {
        if b.is_empty() || d.stopped().is_some() {
            continue;
        }
        if let Err(s) = d.feed(*dir, b, &mut sink) {
            dead[usize::from(*dir == Direction::ToClient)] = Some(stop_str(s));
        }
    }
    let carried = [
        d.carried(Direction::ToServer),
        d.carried(Direction::ToClient),
    ];
    d.end(&mut sink);
    Outcome {
        facts: sink.facts,
        anomalies: sink.anomalies,
        dead,
        carried,
        upgraded: d.parser.0.upgraded_to(),
        switched: d.parser.0.switched(),
    }
}

/// The client stream, then the server stream, each in the given pieces.
fn run_streams(c: &[&[u8]], s: &[&[u8]]) -> Outcome {
    let mut feeds: Vec<(Direction, &[u8])> = c.iter().map(|b| (Direction::ToServer, *b)).collect();
    feeds.extend(s.iter().map(|b| (Direction::ToClient, *b)));
    run(&feeds)
}

/// Split positions worth trying in `bytes`: every position within [`NEAR`] bytes of a CR
/// or LF (heads, chunk-size lines, chunk ends, trailers: everything the parser reads
/// rather than counts), and every [`STRIDE`]-th position elsewhere. For the small
/// conversations that is every position; inside the 150-300 KB bodies of the big ones,
/// where a split only changes how much a countdown takes at once, it keeps the debug-build
/// test time in seconds rather than minutes.
fn split_points(bytes: &[u8]) -> Vec<bool> {
    const NEAR: usize = 64;
    const STRIDE: usize = 61;
    let mut keep: Vec<bool> = (0..=bytes.len()).map(|i| i % STRIDE == 0).collect();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' || b == b'\n' {
            let lo = i.saturating_sub(NEAR);
            let hi = (i + NEAR).min(bytes.len());
            keep[lo..=hi].iter_mut().for_each(|k| *k = true);
        }
    }
    keep
}

/// The contract's check on one conversation: each direction whole, split in two at every
/// byte position (see [`split_points`]), and one byte at a time; also the recorded wire
/// order (directions interleaved as on the wire), split in two at every position of the
/// whole sequence, one byte at a time, and at the recorded segment boundaries.
/// Direction-by-direction runs must agree exactly; wire-order runs must agree with each
/// other and carry the same facts (paired by id) in another order.
fn all_ways(fixture: &[u8]) -> Outcome {
    let segs = segments(fixture);
    let (c, s) = streams(&segs);
    let whole = run_streams(&[&c], &[&s]);
    let (kc, ks) = (split_points(&c), split_points(&s));
    for at in 0..=c.len().max(s.len()) {
        if !kc.get(at).copied().unwrap_or(false) && !ks.get(at).copied().unwrap_or(false) {
            continue;
        }
        let (c1, c2) = c.split_at(at.min(c.len()));
        let (s1, s2) = s.split_at(at.min(s.len()));
        assert_eq!(run_streams(&[c1, c2], &[s1, s2]), whole, "split at {at}");
    }
    let cb: Vec<&[u8]> = c.chunks(1).collect();
    let sb: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(run_streams(&cb, &sb), whole, "one byte at a time");

    // Wire order, consecutive segments of one direction merged as reassembly would.
    let mut runs: Vec<(Direction, Vec<u8>)> = Vec::new();
    for (d, b) in &segs {
        match runs.last_mut() {
            Some((ld, lb)) if ld == d => lb.extend_from_slice(b),
            _ => runs.push((*d, b.clone())),
        }
    }
    let feeds: Vec<(Direction, &[u8])> = runs.iter().map(|(d, b)| (*d, b.as_slice())).collect();
    let wire = run(&feeds);
    let total: usize = runs.iter().map(|(_, b)| b.len()).sum();
    let all: Vec<u8> = runs.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let keep = split_points(&all);
    for at in 1..total {
        if !keep[at] {
            continue;
        }
        let mut split = Vec::new();
        let mut off = 0;
        for (d, b) in &runs {
            if off < at && at < off + b.len() {
                split.push((*d, &b[..at - off]));
                split.push((*d, &b[at - off..]));
            } else {
                split.push((*d, b.as_slice()));
            }
            off += b.len();
        }
        assert_eq!(run(&split), wire, "wire split at {at}");
    }
    let bytes: Vec<(Direction, &[u8])> = runs
        .iter()
        .flat_map(|(d, b)| b.chunks(1).map(move |x| (*d, x)))
        .collect();
    assert_eq!(run(&bytes), wire, "wire order, one byte at a time");
    // The real segment boundaries too.
    let real: Vec<(Direction, &[u8])> = segs.iter().map(|(d, b)| (*d, b.as_slice())).collect();
    assert_eq!(run(&real), wire, "recorded segments");

    let mut a = wire.facts.clone();
    let mut b = whole.facts.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "wire order and stream order disagree");
    assert_eq!(wire.anomalies, whole.anomalies);
    assert_eq!(wire.upgraded, whole.upgraded);
    whole
}

fn clean(o: &Outcome) {
    assert!(o.anomalies.is_empty(), "{:?}", o.anomalies);
    assert_eq!(o.dead, [None, None]);
}

#[test]
fn keep_alive_get_head_404_post_query() {
    let o = all_ways(KEEPALIVE);
    clean(&o);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /index.html HTTP/1.1] Http11 GET /index.html host=orders.shop ua=palisade-test/1 ct=- fields=3",
            "tx 1 [HEAD /api/orders/7 HTTP/1.1] Http11 HEAD /api/orders/7 host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
            "tx 2 [GET /missing HTTP/1.1] Http11 GET /missing host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
            "tx 3 [POST /api/orders HTTP/1.1] Http11 POST /api/orders host=10.99.11.2 ua=palisade-test/1 ct=application/json fields=5",
            "tx 4 [GET /api/orders/8?verbose=1&x=%2e HTTP/1.1] Http11 GET /api/orders/8?verbose=1&x=%2e host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
            "rx 0 200 [HTTP/1.1 200 OK] ct=text/html",
            // HEAD: the response declares Content-Length: 49 but carries no body.
            "rx 1 200 [HTTP/1.1 200 OK] ct=application/json",
            "rx 2 404 [HTTP/1.1 404 Not Found] ct=text/html",
            "rx 3 201 [HTTP/1.1 201 Created] ct=application/json",
            "rx 4 200 [HTTP/1.1 200 OK] ct=application/json",
        ]
    );
}

#[test]
fn chunked_upload_is_skipped_chunk_by_chunk() {
    let o = all_ways(CHUNKED_UPLOAD);
    clean(&o);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [POST /upload/chunked HTTP/1.1] Http11 POST /upload/chunked host=orders.shop ua=palisade-test/1 ct=application/octet-stream fields=5",
            "rx 0 201 [HTTP/1.1 201 Created] ct=text/plain",
        ]
    );
}

#[test]
fn large_body_then_chunked_response_on_one_connection() {
    let o = all_ways(BIG_AND_CHUNKED);
    clean(&o);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /big.bin HTTP/1.1] Http11 GET /big.bin host=orders.shop ua=palisade-test/1 ct=- fields=3",
            "tx 1 [GET /ssi.html HTTP/1.1] Http11 GET /ssi.html host=10.99.11.2 ua=curl/7.88.1 ct=- fields=3",
            "rx 0 200 [HTTP/1.1 200 OK] ct=application/octet-stream",
            "rx 1 200 [HTTP/1.1 200 OK] ct=text/html",
        ]
    );
}

#[test]
fn expect_100_continue_is_interim_and_the_201_answers() {
    let o = all_ways(EXPECT_CONTINUE);
    clean(&o);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [POST /upload/expect HTTP/1.1] Http11 POST /upload/expect host=orders.shop ua=palisade-test/1 ct=application/x-www-form-urlencoded fields=6",
            "rx 0 201 [HTTP/1.1 201 Created] ct=text/plain",
        ]
    );
}

#[test]
fn http10_with_length_and_close_delimited() {
    let o = all_ways(HTTP10);
    clean(&o);
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /index.html HTTP/1.0] Http10 GET /index.html host=orders.shop ua=palisade-test/1 ct=- fields=3",
            "rx 0 200 [HTTP/1.1 200 OK] ct=text/html",
        ]
    );
    let o = all_ways(HTTP10_CLOSE);
    clean(&o);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /ssi.html HTTP/1.0] Http10 GET /ssi.html host=orders.shop ua=palisade-test/1 ct=- fields=3",
            "rx 0 200 [HTTP/1.1 200 OK] ct=text/html",
        ]
    );
    // The close-delimited body swallows anything after it, even what looks like a response.
    let (c, mut s) = streams(&segments(HTTP10_CLOSE));
    s.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(run_streams(&[&c], &[&s]).facts.len(), 2);
}

#[test]
fn refused_h2c_upgrade_stays_http1() {
    let o = all_ways(UPGRADE_REFUSED);
    clean(&o);
    assert_eq!(o.upgraded, None);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /index.html HTTP/1.1] Http11 GET /index.html host=10.99.11.2 ua=curl/7.88.1 ct=- fields=6",
            "rx 0 200 [HTTP/1.1 200 OK] ct=text/html",
        ]
    );
    // The client waited for the answer; after it, HTTP/1 goes on.
    let (c, s) = streams(&segments(UPGRADE_REFUSED));
    let next = b"GET /again HTTP/1.1\r\nHost: h\r\n\r\n";
    let o = run(&[
        (Direction::ToServer, &c),
        (Direction::ToServer, next),
        (Direction::ToClient, &s),
        (
            Direction::ToServer,
            b"GET /third HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
    ]);
    clean(&o);
    assert_eq!(o.facts.len(), 6, "{:?}", o.facts);
    assert!(o.facts[2].starts_with("tx 1 [GET /again"), "{:?}", o.facts);
    assert!(o.facts[3].starts_with("tx 2 [GET /third"), "{:?}", o.facts);
    assert_eq!(o.facts[4..], ["unanswered 1", "unanswered 2"]);
}

#[test]
fn h2c_upgrade_hands_the_rest_over() {
    let o = all_ways(UPGRADE_H2C);
    clean(&o);
    assert_eq!(o.upgraded, Some(AppProto::Http2));
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /index.html HTTP/1.1] Http11 GET /index.html host=10.99.11.2:8082 ua=curl/7.88.1 ct=- fields=6",
            "rx 0 101 [HTTP/1.1 101 Switching Protocols] ct=-",
        ]
    );
    // Everything after the two heads stays with the caller for the HTTP/2 parser: the
    // client's preface and the server's first frames.
    let (c, s) = streams(&segments(UPGRADE_H2C));
    let c_head = c.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let s_head = s.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(c[c_head..].starts_with(crate::detect::H2_PREFACE));
    assert_eq!(o.carried, [c.len() - c_head, s.len() - s_head]);
}

#[test]
fn empty_lines_before_a_request_are_skipped() {
    for pre in [
        &b"\r\n"[..],
        b"\r\n\r\n",
        b"\n",
        b"\n\n\n\n\n",
        b"\r\n\n\r\n",
        // nginx skips any CR or LF byte here, a stray CR included.
        b"\r",
        b"\r\r\n\n\r",
    ] {
        let raw = [pre, b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
        let o = req_all_ways(&raw, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        clean(&o);
        assert_eq!(
            o.facts,
            [
                "tx 0 [GET /admin HTTP/1.1] Http11 GET /admin host=a ua=- ct=- fields=1",
                "rx 0 403 [HTTP/1.1 403 Forbidden] ct=-"
            ],
            "{pre:?}"
        );
    }
    // Between pipelined requests too, and after a body.
    let o = req_all_ways(
        b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nok\r\n\r\nGET /admin HTTP/1.1\r\n\r\n\nGET /b HTTP/1.1\r\n\r\n",
        b"",
    );
    clean(&o);
    assert!(
        o.facts[1].starts_with("tx 1 [GET /admin HTTP/1.1]"),
        "{:?}",
        o.facts
    );
    assert!(
        o.facts[2].starts_with("tx 2 [GET /b HTTP/1.1]"),
        "{:?}",
        o.facts
    );
    // A thousand of them (in pieces: the run is skipped once, not again on every feed).
    let raw = [
        "\r\n".repeat(1000).as_bytes(),
        b"GET /admin HTTP/1.1\r\n\r\n",
    ]
    .concat();
    let o = req_in(&raw, 3);
    clean(&o);
    assert!(o.facts[0].starts_with("tx 0 [GET /admin"), "{:?}", o.facts);
}

#[test]
fn bare_lf_heads_are_read_without_an_anomaly() {
    let o = req_all_ways(
        b"GET /admin HTTP/1.1\nHost: a\nUser-Agent: x\n\nPOST /b HTTP/1.1\nContent-Length: 2\r\n\nokGET /c HTTP/1.0\n\n",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nokHTTP/1.1 201 Created\n\r\n",
    );
    clean(&o);
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET /admin HTTP/1.1] Http11 GET /admin host=a ua=x ct=- fields=2",
            "tx 1 [POST /b HTTP/1.1] Http11 POST /b host=- ua=- ct=- fields=1",
            "tx 2 [GET /c HTTP/1.0] Http10 GET /c host=- ua=- ct=- fields=0",
            "rx 0 200 [HTTP/1.1 200 OK] ct=-",
            "rx 1 201 [HTTP/1.1 201 Created] ct=-",
            "unanswered 2",
        ]
    );
}

#[test]
fn request_lines_as_lenient_servers_read_them() {
    for (raw, summary, method, path, version) in [
        (
            &b"GET  /admin HTTP/1.1"[..],
            "GET  /admin HTTP/1.1",
            "GET",
            "/admin",
            "Http11",
        ),
        (
            b"GET /admin   HTTP/1.1",
            "GET /admin   HTTP/1.1",
            "GET",
            "/admin",
            "Http11",
        ),
        (
            b"GET\t/admin\tHTTP/1.1",
            "GET\t/admin\tHTTP/1.1",
            "GET",
            "/admin",
            "Http11",
        ),
        (
            b"GET \t /admin \t HTTP/1.0",
            "GET \t /admin \t HTTP/1.0",
            "GET",
            "/admin",
            "Http10",
        ),
        (
            b"GET /admin HTTP/1.1  ",
            "GET /admin HTTP/1.1  ",
            "GET",
            "/admin",
            "Http11",
        ),
        (
            b"GET /admin HTTP/1.2",
            "GET /admin HTTP/1.2",
            "GET",
            "/admin",
            "Http11",
        ),
        (
            b"PROPFIND /admin HTTP/1.1",
            "PROPFIND /admin HTTP/1.1",
            "PROPFIND",
            "/admin",
            "Http11",
        ),
        (
            b"FOO /admin HTTP/1.1",
            "FOO /admin HTTP/1.1",
            "FOO",
            "/admin",
            "Http11",
        ),
        (
            b"get /admin HTTP/1.1",
            "get /admin HTTP/1.1",
            "get",
            "/admin",
            "Http11",
        ),
        (
            b"M-SEARCH * HTTP/1.1",
            "M-SEARCH * HTTP/1.1",
            "M-SEARCH",
            "*",
            "Http11",
        ),
        (
            b"GET http://a/admin HTTP/1.1",
            "GET http://a/admin HTTP/1.1",
            "GET",
            "http://a/admin",
            "Http11",
        ),
    ] {
        for head in [
            [raw, b"\r\nHost: a\r\n\r\n"].concat(),
            [raw, b"\nHost: a\n\n"].concat(),
        ] {
            let o = req_all_ways(&head, b"HTTP/1.1  404\tNot Found\r\n\r\n");
            clean(&o);
            assert_eq!(
                o.facts[0],
                format!("tx 0 [{summary}] {version} {method} {path} host=a ua=- ct=- fields=1"),
                "{}",
                lossy(raw)
            );
            assert_eq!(o.facts[1], "rx 0 404 [HTTP/1.1  404\tNot Found] ct=-");
        }
    }
    // What no server reads as a request is refused at once, without waiting for a head.
    for (raw, why) in [
        (&b"GET /admin\r\n"[..], "bad_syntax"),
        (b"GET /admin HTTP/1.1 x\r\n", "bad_syntax"),
        (b"GET /admin HTTP/2.0\r\n", "unsupported"),
        (b"GET /admin http/1.1\r\n", "unsupported"),
        (b"GET /ad\x00min HTTP/1.1", "bad_syntax"),
        (b"GET /admin\x01", "bad_syntax"),
        (b"G(T /admin HTTP/1.1\r\n", "bad_syntax"),
        (b" GET /admin HTTP/1.1\r\n", "bad_syntax"),
        (b"GET /a\rb HTTP/1.1\r\n", "bad_syntax"),
    ] {
        let o = req_all_ways(raw, b"");
        assert_eq!(o.dead[0], Some(why), "{}", lossy(raw));
        assert!(
            o.facts.is_empty() && o.anomalies.is_empty(),
            "{}",
            lossy(raw)
        );
    }
}

#[test]
fn field_lines_servers_read_differently_are_reported_then_ambiguous() {
    for (field, fields) in [
        // Obsolete line folding: Go unfolds it into Host, nginx skips the line.
        (&b"Host: a\r\n b"[..], 1),
        (b"Host: a\r\n\tTransfer-Encoding: chunked", 1),
        // Whitespace before the colon: Go refuses, nginx skips, others take the field.
        (b"Content-Length : 5", 1),
        (b"Transfer-Encoding\t: chunked", 1),
        // No colon, a name that is not a token, a control byte in a value.
        (b"Host a", 0),
        (b"Ho(st: a", 0),
        (b"X: a\x01b", 0),
        (b"X: a\rb", 0),
    ] {
        let raw = [
            b"POST /admin HTTP/1.1\r\nX-Id: 1\r\n",
            field,
            b"\r\n\r\nhello",
        ]
        .concat();
        let o = req_all_ways(&raw, b"");
        assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous], "{}", lossy(field));
        assert!(ParserAnomaly::Ambiguous.blinds());
        // No more requests are read (where this one ends is unknown); responses still are.
        assert_eq!(o.dead, [None, None], "{}", lossy(field));
        // The request was reported (judged, logged) with the fields that could be read.
        assert!(
            o.facts[0].starts_with("tx 0 [POST /admin HTTP/1.1] Http11 POST /admin"),
            "{}: {:?}",
            lossy(field),
            o.facts
        );
        assert!(
            o.facts[0].ends_with(&format!("fields={}", 1 + fields)),
            "{}: {}",
            lossy(field),
            o.facts[0]
        );
    }
    // Responses alike: the response is reported, then the flow is blind.
    let o = req_all_ways(
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n x\r\n\r\nok",
    );
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert_eq!(o.dead[1], Some("bad_syntax"));
    assert_eq!(o.facts[1], "rx 0 200 [HTTP/1.1 200 OK] ct=-");
}

/// The slow path (this module's line reader) splits every head the fast path (httparse)
/// reads exactly as httparse does.
#[test]
fn the_slow_path_reads_what_httparse_reads_alike() {
    struct Raw(Vec<String>);
    impl FactSink for Raw {
        fn fact(&mut self, f: &Fact<'_>) {
            self.0.push(format!("{f:?}"));
        }
        fn anomaly(&mut self, a: ParserAnomaly) {
            self.0.push(format!("{a:?}"));
        }
    }
    let mut heads: Vec<Vec<u8>> = Vec::new();
    for fixture in [
        KEEPALIVE,
        CHUNKED_UPLOAD,
        EXPECT_CONTINUE,
        HTTP10,
        UPGRADE_REFUSED,
    ] {
        let (c, _) = streams(&segments(fixture));
        let mut rest = &c[..];
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            heads.push(rest[..end + 4].to_vec());
            rest = &rest[end + 4..];
        }
    }
    heads.push(
        b"\n\r\nGET  /x   HTTP/1.0\nA:\nB:  \t \nC:\tv  v\t\nD-\x80: \xff\x80\r\n\n".to_vec(),
    );
    heads.push(b"OPTIONS * HTTP/1.1\r\nX: a:b: c\r\nx!#$%&'*+-.^_`|~: 1\r\n\r\n".to_vec());
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let alphabet = b"\r\n :\t\x00\x7f\x80aZ/(";
    let base = heads.clone();
    for _ in 0..3000 {
        let mut h = base[rng.below(base.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(h.len());
            h[at] = alphabet[rng.below(alphabet.len())];
        }
        heads.push(h);
    }
    let mut compared = 0;
    for h in &heads {
        let mut fast = Raw(Vec::new());
        let mut p = Http1Parser::default();
        let Some(Step::Consumed(len)) = p.request_fast(h, &mut fast) else {
            continue;
        };
        let mut slow = Raw(Vec::new());
        let mut p = Http1Parser::default();
        assert!(
            matches!(p.request_slow(&h[..len], &mut slow), Step::Consumed(l) if l == len),
            "{}",
            lossy(h)
        );
        assert_eq!(fast.0, slow.0, "{}", lossy(h));
        // And the scan finds the end httparse found.
        let mut scan = Scan::new();
        assert!(matches!(
            scan_head(h, &mut scan, check_request_line),
            Scanned::End(l) if l == len
        ));
        compared += 1;
    }
    assert!(compared > 300, "{compared}");
}

fn req(raw: &[u8]) -> Outcome {
    run(&[(Direction::ToServer, raw)])
}

/// Hostile inputs are checked whole, at every split, and one byte at a time.
fn req_all_ways(raw: &[u8], resp: &[u8]) -> Outcome {
    let whole = run_streams(&[raw], &[resp]);
    for at in 0..=raw.len().max(resp.len()) {
        let (a, b) = raw.split_at(at.min(raw.len()));
        let (x, y) = resp.split_at(at.min(resp.len()));
        assert_eq!(run_streams(&[a, b], &[x, y]), whole, "split at {at}");
    }
    let cb: Vec<&[u8]> = raw.chunks(1).collect();
    let sb: Vec<&[u8]> = resp.chunks(1).collect();
    assert_eq!(run_streams(&cb, &sb), whole, "one byte at a time");
    whole
}

#[test]
fn content_length_with_transfer_encoding_is_ambiguous_and_chunked_wins() {
    // The classic CL.TE smuggle: a hop that reads Content-Length sees one request, we (like
    // RFC 9112) see the chunked body end at `0` and a second request to /admin.
    let o = req_all_ways(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        b"",
    );
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert_eq!(o.dead, [None, None]);
    assert!(o.facts[1].starts_with("tx 1 [GET /admin"), "{:?}", o.facts);
}

#[test]
fn differing_or_malformed_content_lengths_are_fatal() {
    for cl in [
        &b"Content-Length: 5\r\nContent-Length: 6"[..],
        b"Content-Length: 5, 6",
        b"Content-Length: +5",
        b"Content-Length: 0x5",
        b"Content-Length: 5 5",
        b"Content-Length: ",
        b"Content-Length: 99999999999999999999999",
    ] {
        // Whatever follows is not read as requests: the smuggled GET is not reported.
        let raw = [
            b"POST / HTTP/1.1\r\nHost: a\r\n",
            cl,
            b"\r\n\r\nhelloGET /admin HTTP/1.1\r\n\r\n",
        ]
        .concat();
        let o = req_all_ways(&raw, b"");
        assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous], "{}", lossy(cl));
        assert_eq!(o.dead, [None, None], "{}", lossy(cl));
        // The request itself was still reported (policy judges it) and is unanswered.
        assert_eq!(o.facts.len(), 2, "{:?}", o.facts);
        // The server's 400 is read and answers it.
        let o = req_all_ways(
            &raw,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad",
        );
        assert_eq!(o.facts.len(), 2, "{:?}", o.facts);
        assert!(o.facts[1].starts_with("rx 0 400"), "{:?}", o.facts);
    }
    // Identical repeats are one length (RFC 9110 8.6).
    let o = req_all_ways(
        b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n",
        b"",
    );
    assert!(o.anomalies.is_empty());
    assert_eq!(o.facts.len(), 4);
}

#[test]
fn transfer_codings_follow_rfc9112() {
    // A request whose last coding is not chunked has no knowable end.
    let o = req_all_ways(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx", b"");
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert_eq!(o.dead[0], None);
    // Chunked listed twice, or not last, or in HTTP/1.0: ambiguous, still framed.
    for te in [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, CHUNKED\r\nContent-Length: 3\r\n\r\n",
    ] {
        let raw = [te, b"3\r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\n\r\n"].concat();
        let o = req_all_ways(&raw, b"");
        assert_eq!(o.dead, [None, None], "{}", lossy(te));
        assert_eq!(o.facts.len(), 4, "{}: {:?}", lossy(te), o.facts);
    }
    assert_eq!(
        req(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n0\r\n\r\n").anomalies,
        []
    );
    assert_eq!(
        req(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").anomalies,
        [ParserAnomaly::Ambiguous, ParserAnomaly::Ambiguous]
    );
    // A response whose last coding is not chunked runs to the close.
    let o = req_all_ways(
        b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    );
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET / HTTP/1.1] Http11 GET / host=- ua=- ct=- fields=0",
            "tx 1 [GET /2 HTTP/1.1] Http11 GET /2 host=- ua=- ct=- fields=0",
            "rx 0 200 [HTTP/1.1 200 OK] ct=-",
            "unanswered 1"
        ]
    );
}

#[test]
fn chunk_extensions_trailers_and_bare_lf() {
    let o = req_all_ways(
        b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=\"v\"\r\nhello\r\n1A \t; x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\nX-More: 2\r\n\r\n\
          GET /b HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n\
          HTTP/1.1 204 No Content\r\n\r\n",
    );
    assert!(o.anomalies.is_empty(), "{:?}", o.anomalies);
    assert_eq!(o.facts.len(), 4, "{:?}", o.facts);
    assert_eq!(o.carried, [0, 0]);
    // Bare LF in a head, a chunk-size line or a trailer ends the line for every server;
    // after chunk data nginx takes it and Go refuses the body: only that one is ambiguous.
    let o = req_all_ways(
        b"POST /a HTTP/1.1\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\nX-T: 1\n\nGET /b HTTP/1.1\r\n\r\n",
        b"",
    );
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert_eq!(o.facts.len(), 4, "{:?}", o.facts);
    assert!(o.facts[1].starts_with("tx 1 [GET /b"), "{:?}", o.facts);
    // A long trailer line is read once, however it arrives.
    let long = [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: "[..],
        &vec![b't'; 200_000],
        b"\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
    ]
    .concat();
    for seg in [1, 1460, long.len()] {
        let o = req_in(&long, seg);
        clean(&o);
        assert_eq!(o.facts.len(), 4);
    }
}

#[test]
fn broken_chunks_are_bad_framing() {
    for (raw, why) in [
        (&b"3\r\nabcX\r\n"[..], "bad_length"),
        (b"fffffffffffffffff\r\n", "bad_length"),
        (b"zz\r\n", "bad_syntax"),
        (b"\r\n", "bad_syntax"),
        (b"5 x\r\n", "bad_syntax"),
    ] {
        let all = [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            raw,
        ]
        .concat();
        let o = req_all_ways(&all, b"");
        assert_eq!(o.anomalies, [ParserAnomaly::BadFraming], "{}", lossy(raw));
        assert_eq!(o.dead[0], Some(why), "{}", lossy(raw));
    }
    let long = [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;"[..],
        &vec![b'x'; MAX_CHUNK_LINE],
    ]
    .concat();
    let o = req(&long);
    assert_eq!(o.anomalies, [ParserAnomaly::BadFraming]);
    assert_eq!(o.dead[0], Some("too_large"));
    // A huge but valid chunk size is counted, not buffered.
    let o = req(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc");
    assert_eq!(o.dead, [None, None]);
    assert_eq!(o.carried, [0, 0]);
}

/// `GET /admin` with `n` header fields, the last one `X-Last: end`.
fn with_fields(n: usize) -> Vec<u8> {
    let mut v = b"GET /admin HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 1..n {
        v.extend_from_slice(format!("X-{i}: v{i}\r\n").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v
}

/// A request head of exactly `len` bytes: one field padded to fit.
fn head_of(len: usize) -> Vec<u8> {
    let start = b"GET /admin HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let mut v = start.to_vec();
    v.resize(len - end.len(), b'p');
    v.extend_from_slice(end);
    assert_eq!(v.len(), len);
    v
}

/// Feeds `bytes` to the server in `seg`-byte pieces.
fn req_in(bytes: &[u8], seg: usize) -> Outcome {
    let feeds: Vec<(Direction, &[u8])> = bytes
        .chunks(seg)
        .map(|c| (Direction::ToServer, c))
        .collect();
    run(&feeds)
}

#[test]
fn any_number_of_fields_is_read() {
    // 70 fields: more than the fast path's stack array, read all the same, every split.
    let o = req_all_ways(&with_fields(70), b"");
    assert!(o.anomalies.is_empty(), "{:?}", o.anomalies);
    assert_eq!(o.dead, [None, None]);
    assert_eq!(
        o.facts[0],
        "tx 0 [GET /admin HTTP/1.1] Http11 GET /admin host=a ua=- ct=- fields=70"
    );
    // Exactly the stack array, and one more, read alike (the fast path and the slow one).
    for n in [STACK_HEADERS, STACK_HEADERS + 1, 1000] {
        let o = req(&with_fields(n));
        assert!(o.anomalies.is_empty());
        assert!(
            o.facts[0].ends_with(&format!("fields={n}")),
            "{}",
            o.facts[0]
        );
    }
    // A response with 200 Set-Cookie fields frames its body as usual.
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
    for i in 0..200 {
        resp.extend_from_slice(format!("Set-Cookie: c{i}=v\r\n").as_bytes());
    }
    resp.extend_from_slice(b"\r\nokHTTP/1.1 204 No Content\r\n\r\n");
    let o = run_streams(
        &[b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"],
        &[&resp],
    );
    clean(&o);
    assert_eq!(
        &o.facts[2..],
        [
            "rx 0 200 [HTTP/1.1 200 OK] ct=-",
            "rx 1 204 [HTTP/1.1 204 No Content] ct=-"
        ]
    );
    // The list a huge head grew is not kept by the parser.
    let mut p = Http1Parser::default();
    let mut sink = Collect::default();
    p.feed(Direction::ToServer, &with_fields(5000), &mut sink);
    assert_eq!(sink.facts.len(), 1);
    assert_eq!(p.fields.capacity(), 0);
    p.feed(Direction::ToServer, &with_fields(10), &mut sink);
    assert!(p.fields.capacity() >= 10);
}

#[test]
fn heads_up_to_go_s_limit_are_read() {
    // 24 KiB: over nginx's 8 KiB line buffers and the old 16 KiB limit.
    let big = head_of(24 * 1024);
    let o = req_all_ways(&big, b"");
    clean(&o);
    assert_eq!(o.facts.len(), 2);
    assert!(
        o.facts[0].starts_with("tx 0 [GET /admin HTTP/1.1]"),
        "{}",
        o.facts[0]
    );

    // 1 MiB: read whole, whatever the segment size, one byte at a time included (which
    // also shows the work is linear: a head searched again from its start on every byte
    // would take hours here).
    let mib = head_of(1 << 20);
    for seg in [1, 7, 1460, 65536, mib.len()] {
        let o = req_in(&mib, seg);
        clean(&o);
        assert_eq!(o.facts.len(), 2, "{seg}");
        assert!(o.facts[0].starts_with("tx 0 [GET /admin"), "{seg}");
    }
    // ...split in two anywhere (a sample: every position would be a trillion steps).
    for at in (0..mib.len())
        .step_by(4099)
        .chain([1, 40, mib.len() - 3, mib.len() - 1])
    {
        let o = run(&[
            (Direction::ToServer, &mib[..at]),
            (Direction::ToServer, &mib[at..]),
        ]);
        clean(&o);
        assert_eq!(o.facts.len(), 2, "{at}");
    }
    // The largest head: exactly the limit, with a request behind it.
    let max = [head_of(MAX_HEAD), b"GET /next HTTP/1.1\r\n\r\n".to_vec()].concat();
    let o = req_in(&max, 1460);
    clean(&o);
    assert_eq!(o.facts.len(), 4);
    assert_eq!(o.carried, [0, 0]);

    // 1 MiB + 8 KiB: over the limit, in pieces or whole, before the head even ends.
    let over = head_of((1 << 20) + 8 * 1024);
    for seg in [1460, over.len()] {
        let o = req_in(&over, seg);
        assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge], "{seg}");
        assert!(ParserAnomaly::HeaderTooLarge.blinds());
        assert_eq!(o.dead[0], Some("too_large"), "{seg}");
        assert!(o.facts.is_empty());
    }
    let o = req(&over[..MAX_HEAD]);
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    // One byte less is still a head being read.
    let o = req(&over[..MAX_HEAD - 1]);
    assert_eq!(o.dead, [None, None]);
    assert_eq!(o.carried[0], MAX_HEAD - 1);
    // An endless run of empty lines before a request line is a head too.
    assert_eq!(
        req_in(&vec![b'\n'; MAX_HEAD + 10], 4096).anomalies,
        [ParserAnomaly::HeaderTooLarge]
    );
    // Responses obey the same limit.
    let big_resp = [&b"HTTP/1.1 200 OK\r\n"[..], &over[21..]].concat();
    let o = run_streams(&[b"GET / HTTP/1.1\r\n\r\n"], &[&big_resp]);
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert_eq!(o.dead[1], Some("too_large"));
    assert_eq!(Http1Parser::default().max_carry(), MAX_HEAD);
}

#[test]
fn pipelines_of_any_depth_are_reported() {
    let one = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // 100 requests with no response: every one reported, none lost, none an anomaly.
    let o = req_all_ways(&one.repeat(100), b"");
    clean(&o);
    assert_eq!(o.facts.iter().filter(|f| f.starts_with("tx")).count(), 100);
    assert_eq!(
        o.facts
            .iter()
            .filter(|f| f.starts_with("unanswered"))
            .count(),
        100
    );
    // Answered in turn.
    let o = run_streams(&[&one.repeat(MAX_PENDING)], &[&resp.repeat(MAX_PENDING)]);
    clean(&o);
    assert_eq!(o.facts.len(), 2 * MAX_PENDING);
    assert_eq!(
        o.facts[2 * MAX_PENDING - 1],
        format!("rx {} 200 [HTTP/1.1 200 OK] ct=-", MAX_PENDING - 1)
    );
    // Answered requests free their slots: twice the limit in lockstep is fine.
    let mut feeds = Vec::new();
    for _ in 0..2 * MAX_PENDING {
        feeds.push((Direction::ToServer, &one[..]));
        feeds.push((Direction::ToClient, &resp[..]));
    }
    clean(&run(&feeds));

    // Deeper than the queue: every request is still reported (and judged); the pairing of
    // the oldest is given up, which does not blind.
    let extra = 100;
    let c = [
        one.repeat(MAX_PENDING + extra - 1),
        b"HEAD /admin HTTP/1.1\r\n\r\n".to_vec(),
    ]
    .concat();
    let s = [
        resp.repeat(MAX_PENDING + extra - 1),
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n".to_vec(),
    ]
    .concat();
    let o = run_streams(&[&c], &[&s]);
    assert_eq!(o.dead, [None, None]);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(o.anomalies, vec![ParserAnomaly::TooManyTransactions; extra]);
    assert!(!ParserAnomaly::TooManyTransactions.blinds());
    let tx: Vec<&String> = o.facts.iter().filter(|f| f.starts_with("tx")).collect();
    assert_eq!(tx.len(), MAX_PENDING + extra);
    assert!(
        tx[MAX_PENDING + extra - 1]
            .starts_with(&format!("tx {} [HEAD /admin", MAX_PENDING + extra - 1))
    );
    // The given-up ones are closed at once; the responses of the others pair by id (the
    // last, to the HEAD, has no body).
    let unanswered: Vec<&String> = o
        .facts
        .iter()
        .filter(|f| f.starts_with("unanswered"))
        .collect();
    assert_eq!(unanswered.len(), extra);
    assert_eq!(unanswered[0], "unanswered 0");
    let rx: Vec<&String> = o.facts.iter().filter(|f| f.starts_with("rx")).collect();
    assert_eq!(rx.len(), MAX_PENDING);
    assert!(rx[0].starts_with(&format!("rx {extra} 200")), "{}", rx[0]);
    assert!(rx[MAX_PENDING - 1].starts_with(&format!("rx {} 200", MAX_PENDING + extra - 1)));
    // Giving up the pairing of a HEAD loses its response's framing: that blinds.
    let c = [b"HEAD / HTTP/1.1\r\n\r\n".to_vec(), one.repeat(MAX_PENDING)].concat();
    let o = run_streams(&[&c], &[]);
    assert_eq!(
        o.anomalies,
        [
            ParserAnomaly::TooManyTransactions,
            ParserAnomaly::BadFraming
        ]
    );
    assert_eq!(
        o.facts.iter().filter(|f| f.starts_with("tx")).count(),
        MAX_PENDING + 1
    );
}

#[test]
fn bodiless_responses_head_204_304_and_interim() {
    let c = b"HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
    let s = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n\
              HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n\
              HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
              HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let o = req_all_ways(c, s);
    // HEAD's response declares both lengths; it has no body, so no framing ambiguity either.
    assert!(o.anomalies.is_empty(), "{:?}", o.anomalies);
    let statuses: Vec<&str> = o
        .facts
        .iter()
        .filter(|f| f.starts_with("rx"))
        .map(|f| &f[..9])
        .collect();
    assert_eq!(
        statuses,
        ["rx 0 200 ", "rx 1 204 ", "rx 2 304 ", "rx 3 200 "]
    );
    assert_eq!(o.carried, [0, 0]);
}

#[test]
fn responses_without_requests_and_garbage_responses() {
    let o = run_streams(
        &[],
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 100 Continue\r\n\r\n"],
    );
    assert_eq!(o.anomalies, [ParserAnomaly::UnsolicitedResponse]);
    assert!(o.facts.is_empty());
    assert_eq!(o.dead, [None, None]);
    let o = run_streams(&[b"GET / HTTP/1.1\r\n\r\n"], &[b"SSH-2.0-OpenSSH_9.2\r\n"]);
    assert_eq!(o.dead[1], Some("unsupported"));
    let o = run_streams(&[b"GET / HTTP/1.1\r\n\r\n"], &[b"HTTP/1.1 2x0 OK\r\n\r\n"]);
    assert_eq!(o.dead[1], Some("bad_syntax"));
    // The HTTP/2 preface is not HTTP/1.
    assert_eq!(req(crate::detect::H2_PREFACE).dead[0], Some("unsupported"));
}

#[test]
fn two_hosts_are_ambiguous_and_the_first_is_reported() {
    let o = req_all_ways(
        b"GET / HTTP/1.1\r\nHost: orders.shop\r\nhost: admin.shop\r\n\r\n",
        b"",
    );
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert!(o.facts[0].contains("host=orders.shop"), "{}", o.facts[0]);
}

#[test]
fn websocket_becomes_a_tunnel_and_connect_a_hand_over() {
    let c = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\
              \x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    let s = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05Hello";
    let o = req_all_ways(c, s);
    assert!(o.anomalies.is_empty());
    assert_eq!(o.upgraded, None);
    // The client's frame waited in the carry for the answer; it goes with the next bytes.
    assert_eq!(o.carried, [11, 0]);
    assert_eq!(
        o.facts[1..],
        [
            "rx 0 101 [HTTP/1.1 101 Switching Protocols] ct=-",
            "opaque tunnel"
        ]
    );
    // Wire order: the frame the client sends after the 101 is consumed unread too.
    let o = run(&[
        (Direction::ToServer, &c[..]),
        (Direction::ToClient, &s[..]),
        (Direction::ToServer, b"GET /not-http HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(o.facts.len(), 3);
    assert_eq!(o.carried, [0, 0]);

    let c = b"CONNECT orders.shop:443 HTTP/1.1\r\nHost: orders.shop:443\r\n\r\n\x16\x03\x01\x02\x00\x01";
    let o = req_all_ways(
        c,
        b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03\x00\x7a\x02",
    );
    assert!(o.anomalies.is_empty());
    // The tunnel is handed over: its first bytes (a ClientHello, a ServerHello) wait in
    // both carries for whoever reads the tunnelled connection.
    assert_eq!(o.switched, Some(Switch::Connect));
    assert_eq!(o.upgraded, None);
    assert_eq!(
        o.facts.last().map(String::as_str),
        Some("rx 0 200 [HTTP/1.1 200 Connection Established] ct=-")
    );
    assert_eq!(o.carried, [6, 6]);
    // A refused CONNECT: the response has a body, then HTTP/1 resumes on both sides.
    let c = b"CONNECT h:443 HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
    let s = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!";
    let o = run(&[(Direction::ToServer, &c[..]), (Direction::ToClient, &s[..])]);
    // The second request waits in the carry until the refusal is seen; the inspector feeds
    // it again with the client's next bytes.
    assert_eq!(o.carried[0], 22);
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let o = run(&[
        (Direction::ToServer, &c[..]),
        (Direction::ToClient, &s[..]),
        (Direction::ToServer, b"GET /last HTTP/1.1\r\n\r\n"),
        (Direction::ToClient, &ok.repeat(2)),
    ]);
    clean(&o);
    assert_eq!(o.carried, [0, 0]);
    assert_eq!(
        o.facts.iter().filter(|f| f.starts_with("tx")).count(),
        3,
        "{:?}",
        o.facts
    );
    assert_eq!(
        o.facts.iter().filter(|f| f.starts_with("rx")).count(),
        3,
        "{:?}",
        o.facts
    );
}

/// One step of a conversation with gaps.
#[derive(Clone, Copy)]
enum Ev<'a> {
    Feed(Direction, &'a [u8]),
    Gap(Direction, u32),
}

/// What a run with gaps produced: the outcome, and what the parser made of each gap.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Gapped {
    o: Outcome,
    gaps: Vec<GapOutcome>,
    /// Most bytes either carry held at any time.
    most_carried: usize,
}

/// Runs `evs` through the driver (as the data plane's inspector runs them), each feed cut
/// into pieces of `piece` bytes.
fn run_gapped_in(evs: &[Ev<'_>], piece: usize) -> Gapped {
    let mut d = Driver::new(Checked(Http1Parser::default()));
    let mut sink = Collect::default();
    let mut dead = [None, None];
    let mut gaps = Vec::new();
    let mut most_carried = 0;
    for ev in evs {
        match *ev {
            Ev::Feed(dir, b) => {
                for p in b.chunks(piece.max(1)) {
                    if d.stopped().is_some() {
                        break;
                    }
                    if let Err(s) = d.feed(dir, p, &mut sink) {
                        dead[usize::from(dir == Direction::ToClient)] = Some(stop_str(s));
                    }
                    most_carried = most_carried.max(d.carried(dir));
                }
            }
            Ev::Gap(dir, len) => gaps.push(d.gap(dir, len)),
        }
    }
    let carried = [
        d.carried(Direction::ToServer),
        d.carried(Direction::ToClient),
    ];
    d.end(&mut sink);
    Gapped {
        o: Outcome {
            facts: sink.facts,
            anomalies: sink.anomalies,
            dead,
            carried,
            upgraded: d.parser.0.upgraded_to(),
            switched: d.parser.0.switched(),
        },
        gaps,
        most_carried,
    }
}

/// [`run_gapped_in`] with every feed whole, and checked to give the same facts, anomalies
/// and gap outcomes with the feeds cut into pieces of 1, 2, 3, 7 and 64 bytes (how the
/// search for the next head leans on the carry must not change what it finds).
fn run_gapped(evs: &[Ev<'_>]) -> Gapped {
    let whole = run_gapped_in(evs, usize::MAX);
    for piece in [1, 2, 3, 7, 64] {
        let mut cut = run_gapped_in(evs, piece);
        cut.most_carried = whole.most_carried;
        assert_eq!(cut, whole, "in pieces of {piece}");
    }
    whole
}

/// The recorded keep-alive conversation (GET, HEAD, GET 404, POST, GET) in wire order.
fn keepalive_wire() -> Vec<(Direction, Vec<u8>)> {
    let segs = segments(KEEPALIVE);
    assert_eq!(segs.len(), 10);
    segs
}

const ALL_FIVE: [&str; 10] = [
    "tx 0 [GET /index.html HTTP/1.1] Http11 GET /index.html host=orders.shop ua=palisade-test/1 ct=- fields=3",
    "rx 0 200 [HTTP/1.1 200 OK] ct=text/html",
    "tx 1 [HEAD /api/orders/7 HTTP/1.1] Http11 HEAD /api/orders/7 host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
    "rx 1 200 [HTTP/1.1 200 OK] ct=application/json",
    "tx 2 [GET /missing HTTP/1.1] Http11 GET /missing host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
    "rx 2 404 [HTTP/1.1 404 Not Found] ct=text/html",
    "tx 3 [POST /api/orders HTTP/1.1] Http11 POST /api/orders host=10.99.11.2 ua=palisade-test/1 ct=application/json fields=5",
    "rx 3 201 [HTTP/1.1 201 Created] ct=application/json",
    "tx 4 [GET /api/orders/8?verbose=1&x=%2e HTTP/1.1] Http11 GET /api/orders/8?verbose=1&x=%2e host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
    "rx 4 200 [HTTP/1.1 200 OK] ct=application/json",
];

#[test]
fn a_gap_in_a_request_head_resyncs_on_the_next_request() {
    let segs = keepalive_wire();
    // The HEAD request loses 20 bytes in the middle of its head ("ost: 10.99.11.2\r\nAcc"):
    // the rest of it is skipped, the next request is read.
    let head = &segs[2].1;
    let mut evs = vec![
        Ev::Feed(segs[0].0, &segs[0].1),
        Ev::Feed(segs[1].0, &segs[1].1),
    ];
    evs.push(Ev::Feed(Direction::ToServer, &head[..30]));
    evs.push(Ev::Gap(Direction::ToServer, 20));
    evs.push(Ev::Feed(Direction::ToServer, &head[50..]));
    evs.extend(segs[3..].iter().map(|(d, b)| Ev::Feed(*d, b)));
    let g = run_gapped(&evs);
    assert_eq!(g.gaps, [GapOutcome::Resync]);
    assert_eq!(g.o.dead, [None, None]);
    assert_eq!(
        g.o.facts,
        [
            ALL_FIVE[0],
            ALL_FIVE[1],
            // The HEAD's response answers no request that was seen: it is not paired, and
            // its length (49, but a HEAD response has no body) is not trusted.
            "tx 1 [GET /missing HTTP/1.1] Http11 GET /missing host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
            "rx 1 404 [HTTP/1.1 404 Not Found] ct=text/html",
            "tx 2 [POST /api/orders HTTP/1.1] Http11 POST /api/orders host=10.99.11.2 ua=palisade-test/1 ct=application/json fields=5",
            "rx 2 201 [HTTP/1.1 201 Created] ct=application/json",
            "tx 3 [GET /api/orders/8?verbose=1&x=%2e HTTP/1.1] Http11 GET /api/orders/8?verbose=1&x=%2e host=10.99.11.2 ua=palisade-test/1 ct=- fields=3",
            "rx 3 200 [HTTP/1.1 200 OK] ct=application/json",
        ]
    );
    assert_eq!(
        g.o.anomalies,
        [ParserAnomaly::Resync, ParserAnomaly::UnsolicitedResponse]
    );
    assert_eq!(g.o.carried, [0, 0]);

    // The gap ends exactly where a request starts (a whole lost segment): that request is
    // read, the byte after a gap counts as a line start.
    let mut evs: Vec<Ev<'_>> = segs[..2].iter().map(|(d, b)| Ev::Feed(*d, b)).collect();
    evs.push(Ev::Gap(Direction::ToServer, segs[2].1.len() as u32));
    evs.extend(segs[3..].iter().map(|(d, b)| Ev::Feed(*d, b)));
    let g = run_gapped(&evs);
    assert_eq!(g.gaps, [GapOutcome::Resync]);
    assert_eq!(g.o.facts.len(), 8, "{:?}", g.o.facts);
    assert!(
        g.o.facts[2].starts_with("tx 1 [GET /missing"),
        "{:?}",
        g.o.facts
    );
}

#[test]
fn a_gap_past_a_body_or_in_chunk_framing_resyncs() {
    // A gap longer than what is left of a Content-Length body: whatever followed the body
    // is lost, the next request is looked for.
    let post = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let g = run_gapped(&[
        Ev::Feed(Direction::ToServer, post),
        Ev::Gap(Direction::ToServer, 50),
        Ev::Gap(Direction::ToServer, 200),
        Ev::Feed(Direction::ToServer, b"ders/7 HTTP/1.1\r\nHost: x\r\n\r\n"),
        Ev::Feed(
            Direction::ToServer,
            b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ]);
    assert_eq!(g.gaps, [GapOutcome::Skipped, GapOutcome::Resync]);
    assert_eq!(
        g.o.facts,
        [
            "tx 0 [POST /a HTTP/1.1] Http11 POST /a host=x ua=- ct=- fields=2",
            "tx 1 [GET /after HTTP/1.1] Http11 GET /after host=x ua=- ct=- fields=1",
            "unanswered 0",
            "unanswered 1",
        ]
    );
    assert_eq!(g.o.dead, [None, None]);

    // Chunked framing of unknown length: a gap in a chunk-size line, in trailers, or past
    // a chunk's data loses the framing; the next request after the body is found.
    let chunked = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
    let g = run_gapped(&[
        Ev::Feed(Direction::ToServer, chunked),
        Ev::Gap(Direction::ToServer, 13), // the rest of the chunk's data: skipped
        Ev::Feed(Direction::ToServer, b"\r\n1"),
        Ev::Gap(Direction::ToServer, 7), // inside a chunk-size line
        Ev::Feed(Direction::ToServer, b"lloworld\r\n0\r\n\r\n"),
        Ev::Feed(
            Direction::ToServer,
            b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ]);
    assert_eq!(g.gaps, [GapOutcome::Skipped, GapOutcome::Resync]);
    assert_eq!(g.o.dead, [None, None]);
    assert!(
        g.o.facts.iter().any(|f| f.starts_with("tx 1 [GET /next")),
        "{:?}",
        g.o.facts
    );
    assert_eq!(
        g.o.anomalies,
        [ParserAnomaly::Resync, ParserAnomaly::Resync]
    );
}

#[test]
fn a_gap_in_the_responses_pairs_the_next_response_with_the_newest_request() {
    let segs = keepalive_wire();
    // The 404's head is lost (its first 100 bytes), while GET /missing waits. The next
    // response found is the 201 to the POST sent after the gap: GET /missing is reported
    // unanswered, the 201 pairs with the POST and the last GET with its 200.
    let r404 = &segs[5].1;
    let mut evs: Vec<Ev<'_>> = segs[..5].iter().map(|(d, b)| Ev::Feed(*d, b)).collect();
    evs.push(Ev::Gap(Direction::ToClient, 100));
    evs.push(Ev::Feed(Direction::ToClient, &r404[100..]));
    evs.extend(segs[6..].iter().map(|(d, b)| Ev::Feed(*d, b)));
    let g = run_gapped(&evs);
    assert_eq!(g.gaps, [GapOutcome::Resync]);
    assert_eq!(g.o.dead, [None, None]);
    let mut want: Vec<String> = ALL_FIVE.iter().map(|s| s.to_string()).collect();
    want[5] = "tx 3 [POST /api/orders HTTP/1.1] Http11 POST /api/orders host=10.99.11.2 ua=palisade-test/1 ct=application/json fields=5".into();
    want[6] = "unanswered 2".into();
    want[7] = ALL_FIVE[7].into();
    assert_eq!(g.o.facts, want);
    assert_eq!(g.o.anomalies, [ParserAnomaly::Resync]);

    // Pipelined: three requests wait, the first response loses its body's end and what
    // followed. The next response found answers the newest; the middle one is unanswered
    // (pairing it with the oldest would shift every later pair by one).
    let g = run_gapped(&[
        Ev::Feed(
            Direction::ToServer,
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        Ev::Feed(
            Direction::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
        ),
        Ev::Gap(Direction::ToClient, 100),
        Ev::Feed(
            Direction::ToClient,
            b"tail of something\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ),
    ]);
    assert_eq!(g.gaps, [GapOutcome::Resync]);
    let rx: Vec<&String> = g.o.facts.iter().filter(|f| !f.starts_with("tx")).collect();
    assert_eq!(
        rx,
        [
            "rx 0 200 [HTTP/1.1 200 OK] ct=-",
            "unanswered 1",
            "rx 2 404 [HTTP/1.1 404 Not Found] ct=-",
        ]
    );
}

#[test]
fn a_gap_while_a_protocol_switch_is_undecided_gives_up() {
    let upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    for dir in [Direction::ToServer, Direction::ToClient] {
        let g = run_gapped(&[
            Ev::Feed(Direction::ToServer, upgrade),
            Ev::Gap(dir, 10),
            Ev::Feed(Direction::ToServer, b"GET /x HTTP/1.1\r\n\r\n"),
        ]);
        assert_eq!(g.gaps, [GapOutcome::GiveUp], "{dir:?}");
        // The driver stops the flow as the data plane does.
        assert!(
            g.o.facts.iter().all(|f| !f.contains("/x")),
            "{:?}",
            g.o.facts
        );
    }
    // In the body of a CONNECT-like request, past its end: the wait lies in the gap.
    let post = b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nContent-Length: 5\r\n\r\nab";
    let g = run_gapped(&[
        Ev::Feed(Direction::ToServer, post),
        Ev::Gap(Direction::ToServer, 50),
    ]);
    assert_eq!(g.gaps, [GapOutcome::GiveUp]);
    // Once the switch was refused, gaps resync again.
    let g = run_gapped(&[
        Ev::Feed(Direction::ToServer, upgrade),
        Ev::Feed(
            Direction::ToClient,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        ),
        Ev::Gap(Direction::ToServer, 10),
        Ev::Feed(Direction::ToServer, b"GET /x HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(g.gaps, [GapOutcome::Resync]);
    assert!(
        g.o.facts.iter().any(|f| f.starts_with("tx 1 [GET /x")),
        "{:?}",
        g.o.facts
    );
    // A tunnel and a close-delimited response body take any gap.
    let g = run_gapped(&[
        Ev::Feed(Direction::ToServer, b"GET / HTTP/1.0\r\n\r\n"),
        Ev::Feed(Direction::ToClient, b"HTTP/1.0 200 OK\r\n\r\nabc"),
        Ev::Gap(Direction::ToClient, u32::MAX),
    ]);
    assert_eq!(g.gaps, [GapOutcome::Skipped]);
}

#[test]
fn request_lines_in_a_body_after_a_gap() {
    // The head of a POST is lost; its body is text. A line that reads as a request line
    // followed by a field line is taken for a request (as Suricata would): after a gap in
    // the client's bytes the data plane leaves the flow to the policy's uninspectable
    // decision whatever the parser reports. A request line followed by prose is not a head
    // and is skipped; so are lines that are not request lines at all.
    let body = b"ding 4 KB of log lines\r\n\
        GET /in-prose HTTP/1.1\r\n\
        was what the client sent, said the log\r\n\
        GET /looks-real HTTP/1.1\r\n\
        Host: inside.example\r\n\
        \r\n\
        GET /after HTTP/1.1\r\nHost: x\r\n\r\n";
    let g = run_gapped(&[
        Ev::Gap(Direction::ToServer, 1000),
        Ev::Feed(Direction::ToServer, body),
    ]);
    assert_eq!(g.gaps, [GapOutcome::Resync]);
    assert_eq!(
        g.o.facts,
        [
            "tx 0 [GET /looks-real HTTP/1.1] Http11 GET /looks-real host=inside.example ua=- ct=- fields=1",
            "tx 1 [GET /after HTTP/1.1] Http11 GET /after host=x ua=- ct=- fields=1",
            "unanswered 0",
            "unanswered 1",
        ]
    );
    assert_eq!(g.o.dead, [None, None]);
    // The same on the response side: a status line in a body is a response only when a
    // field line follows it.
    let g = run_gapped(&[
        Ev::Feed(
            Direction::ToServer,
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        ),
        Ev::Feed(
            Direction::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n",
        ),
        Ev::Gap(Direction::ToClient, 2000),
        Ev::Feed(
            Direction::ToClient,
            b"HTTP/1.1 500 in the text\r\n(quoted)\r\nHTTP/1.1 204 No Content\r\nServer: y\r\n\r\n",
        ),
    ]);
    let rx: Vec<&String> = g.o.facts.iter().filter(|f| !f.starts_with("tx")).collect();
    assert_eq!(
        rx,
        [
            "rx 0 200 [HTTP/1.1 200 OK] ct=-",
            "rx 1 204 [HTTP/1.1 204 No Content] ct=-"
        ]
    );
}

#[test]
fn the_search_after_a_gap_is_bounded() {
    // Megabytes of junk after a gap: no line end at all, lines of binary, and lines that
    // are request lines followed by other request lines (never a head). The carry never
    // holds more than the head limit, the flow stays alive, and the request after the junk
    // is read.
    let mut junk = vec![b'a'; 3 * MAX_HEAD];
    junk.extend_from_slice(b"\r\n");
    for i in 0..200_000u32 {
        junk.extend_from_slice(&[0, 1, 2, (i % 251) as u8, b'\n']);
    }
    for _ in 0..100_000 {
        junk.extend_from_slice(b"GET / HTTP/1.1\r\n");
    }
    junk.extend_from_slice(b"not a field line\r\n");
    let after = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n";
    for piece in [1460, 64 * 1024] {
        let g = run_gapped_in(
            &[
                Ev::Feed(Direction::ToServer, b"GET /before HTTP/1.1\r\nHo"),
                Ev::Gap(Direction::ToServer, 5),
                Ev::Feed(Direction::ToServer, &junk),
                Ev::Feed(Direction::ToServer, after),
            ],
            piece,
        );
        assert_eq!(g.gaps, [GapOutcome::Resync]);
        assert!(g.most_carried <= MAX_HEAD, "carried {}", g.most_carried);
        assert_eq!(g.o.dead, [None, None]);
        assert_eq!(
            g.o.facts,
            [
                "tx 0 [GET /after HTTP/1.1] Http11 GET /after host=x ua=- ct=- fields=1",
                "unanswered 0"
            ],
            "pieces of {piece}"
        );
    }
}

#[test]
fn summary_is_bounded_and_fields_borrow_the_head() {
    let path = "/".to_string() + &"a".repeat(1000);
    let raw = format!("GET {path} HTTP/1.1\r\nUser-Agent: x\r\nX-Trace: abc\r\n\r\n");
    let mut p = Http1Parser::default();
    struct Check(bool);
    impl FactSink for Check {
        fn fact(&mut self, f: &Fact<'_>) {
            if let Fact::Transaction {
                summary,
                detail: RequestDetail::Http(r),
                ..
            } = f
            {
                assert_eq!(summary.len(), MAX_SUMMARY);
                assert_eq!(r.path.len(), 1001);
                assert_eq!(r.headers[1].name, b"X-Trace");
                assert_eq!(r.headers[1].value, b"abc");
                assert_eq!(r.user_agent, Some(&b"x"[..]));
                self.0 = true;
            }
        }
        fn anomaly(&mut self, a: ParserAnomaly) {
            panic!("{a:?}");
        }
    }
    let mut sink = Check(false);
    p.feed(Direction::ToServer, raw.as_bytes(), &mut sink);
    assert!(sink.0);
    assert_eq!(p.proto(), AppProto::Http);
}

/// xorshift64*: deterministic noise for the robustness tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_conversations_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fixtures = [
        KEEPALIVE,
        HTTP10,
        HTTP10_CLOSE,
        UPGRADE_REFUSED,
        UPGRADE_H2C,
    ];
    let alphabet =
        b"\r\n :;,0123456789abcdefHTTP/1.1 GET chunked Content-Length Transfer-Encoding\x00\xff";
    for round in 0..3000 {
        let segs = segments(fixtures[round % fixtures.len()]);
        let (mut c, mut s) = streams(&segs);
        for buf in [&mut c, &mut s] {
            for _ in 0..rng.below(8) {
                if buf.is_empty() {
                    break;
                }
                let at = rng.below(buf.len());
                match rng.below(3) {
                    0 => buf[at] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        buf.insert(at, alphabet[rng.below(alphabet.len())]);
                    }
                    _ => {
                        buf.remove(at);
                    }
                }
            }
        }
        let a = rng.below(c.len() + 1);
        let b = rng.below(s.len() + 1);
        // Whole and split must agree even on garbage: no state depends on feed boundaries.
        let whole = run_streams(&[&c], &[&s]);
        let split = run_streams(&[&c[..a], &c[a..]], &[&s[..b], &s[b..]]);
        assert_eq!(whole, split, "round {round}");
    }
    for _ in 0..2000 {
        let len = rng.below(300);
        let junk: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let at = rng.below(len + 1);
        run(&[
            (Direction::ToServer, &junk[..at]),
            (Direction::ToClient, &junk[at..]),
            (Direction::ToServer, &junk[at..]),
            (Direction::ToClient, &junk[..at]),
        ]);
    }
}

#[test]
fn gaps_anywhere_in_recorded_conversations() {
    // Bytes lost anywhere in either direction of the recorded conversations, once or twice:
    // never a panic, the carry within the head limit, and what the parser finds after each
    // gap the same however the feeds are cut (run_gapped checks it).
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let fixtures = [
        KEEPALIVE,
        HTTP10,
        HTTP10_CLOSE,
        UPGRADE_REFUSED,
        UPGRADE_H2C,
    ];
    let mut outcomes = [0usize; 3];
    for round in 0..300 {
        let segs = segments(fixtures[round % fixtures.len()]);
        // Up to two losses: (segment, start, end) within one segment each.
        let mut losses: Vec<(usize, usize, usize)> = (0..1 + rng.below(2))
            .map(|_| {
                let i = rng.below(segs.len());
                let n = segs[i].1.len();
                let a = rng.below(n + 1);
                (i, a, a + rng.below(n - a + 1))
            })
            .collect();
        losses.sort();
        losses.dedup_by_key(|l| l.0);
        let mut evs = Vec::new();
        for (i, (d, b)) in segs.iter().enumerate() {
            match losses.iter().find(|l| l.0 == i) {
                Some(&(_, a, z)) if z > a => {
                    evs.push(Ev::Feed(*d, &b[..a]));
                    evs.push(Ev::Gap(*d, (z - a) as u32));
                    evs.push(Ev::Feed(*d, &b[z..]));
                }
                _ => evs.push(Ev::Feed(*d, b)),
            }
        }
        let g = run_gapped(&evs);
        assert!(g.most_carried <= MAX_HEAD, "round {round}");
        for o in &g.gaps {
            outcomes[*o as usize] += 1;
        }
    }
    // The rounds reach every outcome.
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
}

#[test]
fn the_authority_judged_is_the_one_the_server_routes_on() {
    let authority = |c: &[u8]| {
        let mut p = Http1Parser::default();
        let mut sink = Collect::default();
        let _ = p.feed(Direction::ToServer, c, &mut sink);
        (sink.facts, sink.anomalies)
    };
    // Absolute-form: servers use the target's authority and ignore Host (RFC 9112 3.2.2).
    let (f, a) =
        authority(b"GET http://Admin.internal:8080/x HTTP/1.1\r\nHost: admin.internal\r\n\r\n");
    assert!(f[0].contains("host=Admin.internal:8080"), "{f:?}");
    assert!(a.is_empty(), "{a:?}");
    // A Host naming another server than the target: which one acts differs between
    // servers and proxies (libhtp: host header ambiguous).
    let (f, a) = authority(b"GET http://admin.internal/x HTTP/1.1\r\nHost: public.shop\r\n\r\n");
    assert!(f[0].contains("host=admin.internal"), "{f:?}");
    assert_eq!(a, [ParserAnomaly::Ambiguous]);
    // CONNECT: the tunnel goes where the target says.
    let (f, a) =
        authority(b"CONNECT evil.example:443 HTTP/1.1\r\nHost: api.bank.example:443\r\n\r\n");
    assert!(f[0].contains("host=evil.example:443"), "{f:?}");
    assert_eq!(a, [ParserAnomaly::Ambiguous]);
    let (f, a) = authority(b"CONNECT [fd00::1]:443 HTTP/1.1\r\nHost: [FD00::1]:443\r\n\r\n");
    assert!(f[0].contains("host=[fd00::1]:443"), "{f:?}");
    assert!(a.is_empty(), "{a:?}");
    // Origin-form: Host is the authority.
    let (f, _) = authority(b"GET /x HTTP/1.1\r\nHost: orders.shop\r\n\r\n");
    assert!(f[0].contains("host=orders.shop"), "{f:?}");
}
