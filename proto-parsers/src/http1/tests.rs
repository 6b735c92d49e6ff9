//! Tests of the HTTP/1 parser on recorded curl <-> nginx conversations
//! (tests/data/http1/record.sh) and on hostile inputs.

use super::*;
use crate::contract::{Fact, FactSink, ParserAnomaly, Progress, StreamParser};
use crate::facts::{RequestDetail, ResponseDetail};

const KEEPALIVE: &[u8] = include_bytes!("testdata/http1-0.seg");
const CHUNKED_UPLOAD: &[u8] = include_bytes!("testdata/http1-1.seg");
const BIG_AND_CHUNKED: &[u8] = include_bytes!("testdata/http1-2.seg");
const EXPECT_CONTINUE: &[u8] = include_bytes!("testdata/http1-3.seg");
const HTTP10: &[u8] = include_bytes!("testdata/http1-4.seg");
const HTTP10_CLOSE: &[u8] = include_bytes!("testdata/http1-5.seg");
const UPGRADE_REFUSED: &[u8] = include_bytes!("testdata/http1-6.seg");
const UPGRADE_H2C: &[u8] = include_bytes!("testdata/http1-h2c-0.seg");

/// The caller's carry cap (dataplane::inspect::CARRY_CAP).
const CARRY_CAP: usize = 64 * 1024;

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
            assert_eq!(r.authority, first("host"));
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

/// One direction of the caller, as dataplane::inspect keeps it: with an empty carry the new
/// bytes are fed in place and only the unconsumed rest is copied; otherwise they are
/// appended to the carry, which is fed whole. Done with bytes consumed means "feed the rest
/// again", Done with none or NeedMore means "wait for more".
#[derive(Default)]
struct Carry {
    buf: Vec<u8>,
    dead: Option<&'static str>,
}

impl Carry {
    fn drive(
        p: &mut Http1Parser,
        dir: Direction,
        data: &[u8],
        sink: &mut Collect,
    ) -> Result<usize, &'static str> {
        let mut off = 0;
        loop {
            let rest = &data[off..];
            if rest.is_empty() {
                return Ok(off);
            }
            match p.feed(dir, rest, sink) {
                Progress::Done { consumed } if consumed > 0 => {
                    assert!(consumed <= rest.len(), "consumed past the end");
                    off += consumed;
                }
                Progress::Done { .. } => return Ok(off),
                Progress::NeedMore { consumed } => {
                    assert!(consumed <= rest.len(), "consumed past the end");
                    return Ok(off + consumed);
                }
                Progress::Invalid(why) => return Err(why.as_str()),
            }
        }
    }

    fn push(&mut self, p: &mut Http1Parser, dir: Direction, data: &[u8], sink: &mut Collect) {
        if self.dead.is_some() || data.is_empty() {
            return;
        }
        let r = if self.buf.is_empty() {
            Self::drive(p, dir, data, sink).map(|n| self.buf.extend_from_slice(&data[n..]))
        } else {
            self.buf.extend_from_slice(data);
            let buf = std::mem::take(&mut self.buf);
            let r = Self::drive(p, dir, &buf, sink);
            if let Ok(n) = r {
                self.buf = buf[n..].to_vec();
            }
            r.map(|_| ())
        };
        if let Err(why) = r {
            self.dead = Some(why);
        } else if self.buf.len() > CARRY_CAP {
            self.dead = Some("carry_overflow");
        }
    }
}

/// What one run produced.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Outcome {
    facts: Vec<String>,
    anomalies: Vec<ParserAnomaly>,
    /// Why each direction stopped (`None`: still parsing).
    dead: [Option<&'static str>; 2],
    /// Bytes left in each direction's carry at the end.
    carried: [usize; 2],
    upgraded: Option<AppProto>,
}

/// Feeds `feeds` in order, each as the reassembler would release it, then ends the flow.
fn run(feeds: &[(Direction, &[u8])]) -> Outcome {
    let mut p = Http1Parser::default();
    let mut sink = Collect::default();
    let (mut c, mut s) = (Carry::default(), Carry::default());
    for (d, b) in feeds {
        match d {
            Direction::ToServer => c.push(&mut p, *d, b, &mut sink),
            Direction::ToClient => s.push(&mut p, *d, b, &mut sink),
        }
    }
    p.end(&mut sink);
    Outcome {
        facts: sink.facts,
        anomalies: sink.anomalies,
        dead: [c.dead, s.dead],
        carried: [c.buf.len(), s.buf.len()],
        upgraded: p.upgraded_to(),
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
        let raw = [b"POST / HTTP/1.1\r\nHost: a\r\n", cl, b"\r\n\r\nhello"].concat();
        let o = req_all_ways(&raw, b"");
        assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous], "{}", lossy(cl));
        assert_eq!(o.dead, [Some("bad_length"), None], "{}", lossy(cl));
        // The request itself was still reported (policy judges it) and is unanswered.
        assert_eq!(o.facts.len(), 2, "{:?}", o.facts);
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
    assert_eq!(o.dead[0], Some("bad_syntax"));
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
    // Bare LF in a head, in a chunk line and after chunk data: each one is ambiguous.
    let o = req_all_ways(
        b"POST /a HTTP/1.1\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        b"",
    );
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous; 3]);
    assert_eq!(o.facts.len(), 4, "{:?}", o.facts);
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

#[test]
fn oversized_heads_and_too_many_headers() {
    let big = [
        &b"GET / HTTP/1.1\r\nX-Big: "[..],
        &vec![b'a'; MAX_HEAD],
        b"\r\n\r\n",
    ]
    .concat();
    let o = req_all_ways(&big, b"");
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert_eq!(o.dead[0], Some("too_large"));
    assert!(o.facts.is_empty());
    // A head that is still growing is refused at the limit, before the caller's carry cap.
    let o = req(&big[..MAX_HEAD + 1]);
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    // An endless run of empty lines before a request line is a head too.
    assert_eq!(
        req(&vec![b'\n'; MAX_HEAD + 10]).anomalies,
        [ParserAnomaly::HeaderTooLarge]
    );

    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let o = req_all_ways(&many, b"");
    assert_eq!(o.anomalies, [ParserAnomaly::TooManyHeaders]);
    assert_eq!(o.dead[0], Some("too_large"));
    // Exactly the limit is fine, and every field is reported.
    let mut ok = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        ok.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    ok.extend_from_slice(b"\r\n");
    let o = req(&ok);
    assert!(o.anomalies.is_empty());
    assert!(o.facts[0].ends_with("fields=64"), "{}", o.facts[0]);
    // Responses obey the same limits.
    let big_resp = [&b"HTTP/1.1 200 OK\r\n"[..], &big[16..]].concat();
    let o = run_streams(&[b"GET / HTTP/1.1\r\n\r\n"], &[&big_resp]);
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert_eq!(o.dead[1], Some("too_large"));
    let resp = [&b"HTTP/1.1 200 OK\r\n"[..], &ok[16..]].concat();
    let resp = [&resp[..resp.len() - 2], b"X-Last: 1\r\n\r\n"].concat();
    let o = run_streams(&[b"GET / HTTP/1.1\r\n\r\n"], &[&resp]);
    assert_eq!(o.anomalies, [ParserAnomaly::TooManyHeaders]);
}

#[test]
fn pipelining_is_bounded() {
    let one = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let c = one.repeat(MAX_PENDING);
    let s = resp.repeat(MAX_PENDING);
    let o = run_streams(&[&c], &[&s]);
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
    // One more than the limit outstanding is a flood.
    let c = one.repeat(MAX_PENDING + 1);
    let o = run_streams(&[&c], &[]);
    assert_eq!(o.anomalies, [ParserAnomaly::TooManyTransactions]);
    assert_eq!(o.dead[0], Some("too_large"));
    assert_eq!(
        o.facts
            .iter()
            .filter(|f| f.starts_with("unanswered"))
            .count(),
        MAX_PENDING
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
    // Obsolete line folding and a space before the colon are refused, not guessed at.
    assert_eq!(
        req(b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n").dead[0],
        Some("bad_syntax")
    );
    assert_eq!(
        req(b"GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n").dead[0],
        Some("bad_syntax")
    );
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
fn websocket_and_connect_become_tunnels() {
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
    assert_eq!(o.facts.last().map(String::as_str), Some("opaque tunnel"));
    assert_eq!(o.carried, [6, 0]);
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

#[test]
fn gaps_inside_bodies_resync_and_elsewhere_give_up() {
    let mut p = Http1Parser::default();
    let mut sink = Collect::default();
    let head = b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789";
    assert_eq!(
        p.feed(Direction::ToServer, head, &mut sink),
        Progress::Done {
            consumed: head.len()
        }
    );
    assert!(p.gap(Direction::ToServer, 50));
    assert!(!p.gap(Direction::ToServer, 41), "a gap past the body's end");
    assert!(p.gap(Direction::ToServer, 40));
    let next = b"GET /after HTTP/1.1\r\n\r\n";
    assert_eq!(
        p.feed(Direction::ToServer, next, &mut sink),
        Progress::Done {
            consumed: next.len()
        }
    );
    assert_eq!(sink.anomalies, [ParserAnomaly::Resync]);
    assert_eq!(sink.facts.len(), 2);
    // In a head there is no way to find the next message.
    assert!(!p.gap(Direction::ToServer, 1));
    // Chunk data resynchronises, a chunk-size line does not.
    let mut p = Http1Parser::default();
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
    p.feed(Direction::ToServer, chunked, &mut sink);
    assert!(p.gap(Direction::ToServer, 13));
    let rest = b"\r\n0\r\n\r\n";
    assert_eq!(
        p.feed(Direction::ToServer, rest, &mut sink),
        Progress::Done {
            consumed: rest.len()
        }
    );
    assert!(!p.gap(Direction::ToServer, 1));
    // A close-delimited response body takes any gap.
    let mut p = Http1Parser::default();
    p.feed(Direction::ToServer, b"GET / HTTP/1.0\r\n\r\n", &mut sink);
    p.feed(
        Direction::ToClient,
        b"HTTP/1.0 200 OK\r\n\r\nabc",
        &mut sink,
    );
    assert!(p.gap(Direction::ToClient, u32::MAX));
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
