use super::*;
use proto_parsers::contract::{DEFAULT_MAX_CARRY, Fact, GapOutcome, ParserAnomaly, Progress};

type Seen = std::sync::Arc<std::sync::Mutex<Vec<(Direction, Vec<u8>)>>>;

/// Parses newline-terminated lines; proves the carry buffer hands back partial lines whole.
struct Lines {
    seen: Vec<(Direction, Vec<u8>)>,
    out: Seen,
}

impl StreamParser for Lines {
    fn proto(&self) -> AppProto {
        AppProto::Redis
    }
    fn feed(&mut self, dir: Direction, data: &[u8], _: &mut dyn FactSink) -> Progress {
        let mut off = 0;
        while let Some(nl) = data[off..].iter().position(|&b| b == b'\n') {
            self.seen.push((dir, data[off..off + nl].to_vec()));
            off += nl + 1;
        }
        Progress::NeedMore { consumed: off }
    }
    fn gap(&mut self, _: Direction, _: u32) -> GapOutcome {
        GapOutcome::GiveUp
    }
    fn end(&mut self, _: &mut dyn FactSink) {
        self.out.lock().unwrap().extend(self.seen.drain(..));
    }
}

#[derive(Default)]
struct NullSink;
impl FactSink for NullSink {
    fn fact(&mut self, _: &Fact<'_>) {}
    fn anomaly(&mut self, _: ParserAnomaly) {}
}

fn registry(out: &Seen) -> ParserRegistry {
    let mut r = ParserRegistry::empty();
    let o = out.clone();
    r.register(
        AppProto::Redis,
        Arc::new(move |_| {
            Box::new(Lines {
                seen: Vec::new(),
                out: o.clone(),
            }) as Box<dyn StreamParser>
        }),
    );
    r
}

#[test]
fn detection_across_every_split_then_parsing_sees_every_byte() {
    let msg: &[u8] = b"*1\r\n$4\r\nPING\r\n";
    for split in 1..msg.len() {
        let out = Default::default();
        let reg = registry(&out);
        let mut c = InspectCounters::default();
        let mut f = FlowInspector::new(false);
        let (a, b) = msg.split_at(split);
        let e1 = f.on_chunk(
            Direction::ToServer,
            Chunk::Data(a),
            &reg,
            &mut NullSink,
            &mut c,
            &mut CarryBudget::unlimited(),
        );
        let e2 = f.on_chunk(
            Direction::ToServer,
            Chunk::Data(b),
            &reg,
            &mut NullSink,
            &mut c,
            &mut CarryBudget::unlimited(),
        );
        let detected = [e1, e2].contains(&InspectEvent::detected(AppProto::Redis));
        assert!(detected, "split {split}: {e1:?} {e2:?}");
        f.end(&mut NullSink, &mut c, &mut CarryBudget::unlimited());
        let lines: Vec<Vec<u8>> = out.lock().unwrap().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(
            lines,
            vec![b"*1\r".to_vec(), b"$4\r".to_vec(), b"PING\r".to_vec()],
            "split {split}"
        );
    }
}

#[test]
fn a_client_no_detector_recognises_decides_at_once() {
    // Those bytes are on their way to the server: waiting for its answer would let them
    // through unjudged.
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"\x00\x01garbage"),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    assert_eq!(
        e,
        InspectEvent {
            detected: Some(AppProto::Tcp),
            blind: Some(Blind::new(Uninspectable::UnknownProtocol, "undetected")),
        }
    );
    assert!(!f.wants_data());
}

#[test]
fn a_server_no_detector_recognises_waits_for_the_client() {
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToClient,
        Chunk::Data(b"\xffserver banner"),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    assert_eq!(
        e,
        InspectEvent::NOTHING,
        "the client may still speak a known protocol"
    );
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"*1\r\n$4\r\nPING\r\n"),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    assert_eq!(e, InspectEvent::detected(AppProto::Redis));
    // Bytes sent that never decided anything are reported when the flow ends.
    let mut f = FlowInspector::new(false);
    f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"GE"),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    let e = f.end(&mut NullSink, &mut c, &mut CarryBudget::unlimited());
    assert_eq!(
        e.blind.map(|b| b.cause),
        Some(Uninspectable::UnknownProtocol)
    );
}

#[test]
fn server_first_protocol_is_detected_from_the_server_side() {
    // A MariaDB greeting: 3-byte length, sequence 0, protocol 10, version string.
    let mut greet = vec![0x4a, 0, 0, 0, 10];
    greet.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
    greet.extend_from_slice(&[0u8; 40]);
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToClient,
        Chunk::Data(&greet),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    assert_eq!(e, InspectEvent::detected(AppProto::Mysql));
}

#[test]
fn gap_before_detection_gives_up_detection() {
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Gap(100),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    assert_eq!(
        e,
        InspectEvent {
            detected: Some(AppProto::Tcp),
            blind: Some(Blind::new(Uninspectable::Gap, "gap_before_detection")),
        }
    );
    assert_eq!(c.gaps_before_detection, 1);
}

#[test]
fn parser_that_gives_up_on_a_gap_makes_the_flow_opaque() {
    let out = Default::default();
    let reg = registry(&out);
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"PING\r\n"),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Gap(10),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    assert_eq!(e, InspectEvent::blind(Uninspectable::Gap, "gap"));
    assert!(!f.wants_data());
}

/// Keeps the summaries of the requests reported.
#[derive(Default)]
struct Requests(Vec<String>);
impl FactSink for Requests {
    fn fact(&mut self, f: &Fact<'_>) {
        if let Fact::Transaction { summary, .. } = f {
            self.0.push(String::from_utf8_lossy(summary).into_owned());
        }
    }
    fn anomaly(&mut self, _: ParserAnomaly) {}
}

#[test]
fn a_gap_the_parser_resyncs_after_blinds_only_when_the_client_lost_bytes() {
    let reg = ParserRegistry::builtin();
    let mut c = InspectCounters::default();
    let mut budget = CarryBudget::unlimited();
    let mut sink = Requests::default();
    let mut f = FlowInspector::new(false);
    let mut chunk =
        |f: &mut FlowInspector, dir, ch| f.on_chunk(dir, ch, &reg, &mut sink, &mut c, &mut budget);
    let e = chunk(
        &mut f,
        Direction::ToServer,
        Chunk::Data(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /tw"),
    );
    assert_eq!(e, InspectEvent::detected(AppProto::Http));
    // The client's bytes: requests may have been lost. Blind, but still parsing.
    let e = chunk(&mut f, Direction::ToServer, Chunk::Gap(40));
    assert_eq!(e, InspectEvent::blind(Uninspectable::Gap, "gap_resync"));
    assert!(f.wants_data());
    let e = chunk(
        &mut f,
        Direction::ToServer,
        Chunk::Data(b"o: x\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\n\r\n"),
    );
    assert!(e.is_nothing());
    // The server's bytes: lost responses hide no request.
    chunk(
        &mut f,
        Direction::ToClient,
        Chunk::Data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
    );
    let e = chunk(&mut f, Direction::ToClient, Chunk::Gap(100));
    assert!(e.is_nothing());
    assert!(f.wants_data());
    // A gap skipped inside a counted body is nothing at all.
    chunk(
        &mut f,
        Direction::ToServer,
        Chunk::Data(b"POST /four HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"),
    );
    let e = chunk(&mut f, Direction::ToServer, Chunk::Gap(50));
    assert!(e.is_nothing());
    assert_eq!(
        sink.0,
        [
            "GET /one HTTP/1.1",
            "GET /three HTTP/1.1",
            "POST /four HTTP/1.1"
        ]
    );
}

#[test]
fn carry_is_bounded() {
    let out = Default::default();
    let reg = registry(&out);
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"*1\r\n$4\r\nPING\r\n"),
        &reg,
        &mut NullSink,
        &mut c,
        &mut CarryBudget::unlimited(),
    );
    let big = vec![b'a'; 16 * 1024];
    let mut last = InspectEvent::NOTHING;
    for _ in 0..8 {
        last = f.on_chunk(
            Direction::ToServer,
            Chunk::Data(&big),
            &reg,
            &mut NullSink,
            &mut c,
            &mut CarryBudget::unlimited(),
        );
        if last != InspectEvent::NOTHING {
            break;
        }
    }
    assert_eq!(
        last,
        InspectEvent::blind(Uninspectable::CarryOverflow, "carry_overflow")
    );
    assert_eq!(c.carry_overflow, 1);
}

#[test]
fn udp_judges_stray_datagrams_alone_then_decides() {
    // A stray datagram before the first query must not hide the queries after it: each of
    // the first few undetected ones is blind on its own; after that the flow is unknown.
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(true);
    let mut feed = |b: &[u8]| {
        f.on_chunk(
            Direction::ToServer,
            Chunk::Data(b),
            &reg,
            &mut NullSink,
            &mut c,
            &mut CarryBudget::unlimited(),
        )
    };
    for _ in 1..UDP_DETECT_DATAGRAMS {
        let e = feed(b"\x01\x02\x03");
        assert_eq!(e.detected, None);
        assert_eq!(
            e.blind,
            Some(Blind {
                datagram: true,
                ..Blind::new(Uninspectable::UnknownProtocol, "undetected_datagram")
            })
        );
    }
    let e = feed(b"\x01\x02\x03");
    assert_eq!(
        e,
        InspectEvent {
            detected: Some(AppProto::Udp),
            blind: Some(Blind::new(Uninspectable::UnknownProtocol, "undetected")),
        }
    );
}

// ---- HTTP/1.1 -> HTTP/2 (h2c) hand-over -------------------------------------------------

/// curl --http2 against nghttpx: `Upgrade: h2c`, `101`, then HTTP/2 both ways
/// (tests/data/http1/record.sh, conversation 7).
const H2C_CURL: &[u8] = include_bytes!("../../../proto-parsers/src/http1/testdata/http1-h2c-0.seg");
/// nghttp -u against nghttpx (tests/data/http2/record.sh, conversation 5).
const H2C_NGHTTP: &[u8] =
    include_bytes!("../../../proto-parsers/src/http2/testdata/h2-upgrade-0.seg");

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

/// Consecutive segments of one direction merged, as reassembly releases them.
fn runs(segs: &[(Direction, Vec<u8>)]) -> Vec<(Direction, Vec<u8>)> {
    let mut runs: Vec<(Direction, Vec<u8>)> = Vec::new();
    for (d, b) in segs {
        match runs.last_mut() {
            Some((ld, lb)) if ld == d => lb.extend_from_slice(b),
            _ => runs.push((*d, b.clone())),
        }
    }
    runs
}

/// Renders facts as `tx http 0 GET /index.html host=..`, `rx http2 0 Some(200) [200]`.
#[derive(Default)]
struct Facts {
    facts: Vec<String>,
    anomalies: Vec<ParserAnomaly>,
}

impl FactSink for Facts {
    fn fact(&mut self, f: &Fact<'_>) {
        use proto_parsers::facts::RequestDetail;
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        self.facts.push(match f {
            Fact::Transaction {
                app, id, detail, ..
            } => match detail {
                RequestDetail::Http(h) => format!(
                    "tx {} {id} {} {} host={}",
                    app.as_str(),
                    s(h.method),
                    s(h.path),
                    h.authority.map_or("-".into(), s)
                ),
                other => format!("tx {} {id} {other:?}", app.as_str()),
            },
            Fact::Response {
                app,
                id,
                status,
                summary,
                ..
            } => format!("rx {} {id} {status:?} [{}]", app.as_str(), s(summary)),
            Fact::Interim {
                app,
                id,
                status,
                summary,
            } => format!("interim {} {id} {status} [{}]", app.as_str(), s(summary)),
            Fact::Unanswered { app, id } => format!("unanswered {} {id}", app.as_str()),
            Fact::Opaque { reason, .. } => format!("opaque {}", reason.as_str()),
        });
    }
    fn anomaly(&mut self, a: ParserAnomaly) {
        self.anomalies.push(a);
    }
}

/// Feeds `feeds` to one TCP flow's inspector with the built-in parsers, then ends the flow.
/// Returns the facts, the anomalies, the events other than `Nothing`, and whether the
/// inspector still wanted data before the end.
fn inspect_all(
    feeds: &[(Direction, &[u8])],
) -> (Vec<String>, Vec<ParserAnomaly>, Vec<InspectEvent>, bool) {
    let reg = ParserRegistry::builtin();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let mut sink = Facts::default();
    let mut events = Vec::new();
    for (d, b) in feeds {
        let e = f.on_chunk(
            *d,
            Chunk::Data(b),
            &reg,
            &mut sink,
            &mut c,
            &mut CarryBudget::unlimited(),
        );
        if e != InspectEvent::NOTHING {
            events.push(e);
        }
    }
    let wanted = f.wants_data();
    assert_eq!(
        f.app(),
        Some(AppProto::Http),
        "the flow was detected as HTTP/1"
    );
    f.end(&mut sink, &mut c, &mut CarryBudget::unlimited());
    assert_eq!((c.carry_overflow, c.parser_invalid), (0, 0));
    (sink.facts, sink.anomalies, events, wanted)
}

/// The same conversation as recorded, with every split of one feed in two, and one byte at
/// a time: the same facts each way. Returns them.
fn inspect_every_way(runs: &[(Direction, Vec<u8>)]) -> Vec<String> {
    let feeds: Vec<(Direction, &[u8])> = runs.iter().map(|(d, b)| (*d, &b[..])).collect();
    let whole = inspect_all(&feeds);
    assert!(whole.1.is_empty(), "anomalies {:?}", whole.1);
    assert_eq!(whole.2, [InspectEvent::detected(AppProto::Http)]);
    assert!(whole.3, "still inspecting after the upgrade");
    let total: usize = runs.iter().map(|(_, b)| b.len()).sum();
    for at in 1..total {
        let mut off = 0;
        let mut split: Vec<(Direction, &[u8])> = Vec::new();
        for (d, b) in runs {
            if off < at && at < off + b.len() {
                split.push((*d, &b[..at - off]));
                split.push((*d, &b[at - off..]));
            } else {
                split.push((*d, b));
            }
            off += b.len();
        }
        assert_eq!(inspect_all(&split), whole, "split at {at}");
    }
    let bytes: Vec<(Direction, &[u8])> = runs
        .iter()
        .flat_map(|(d, b)| b.chunks(1).map(move |x| (*d, x)))
        .collect();
    assert_eq!(inspect_all(&bytes), whole, "one byte at a time");
    whole.0
}

#[test]
fn h2c_upgrade_by_curl_is_followed_into_http2() {
    let facts = inspect_every_way(&runs(&segments(H2C_CURL)));
    assert_eq!(
        facts,
        [
            "tx http 0 GET /index.html host=10.99.11.2:8082",
            // Stream 1 is the upgraded request: the 101 is its interim answer, its final
            // response the HTTP/2 one, under the id HTTP/1 gave the request.
            "interim http 0 101 [HTTP/1.1 101 Switching Protocols]",
            "rx http2 0 Some(200) [200]",
        ]
    );
}

#[test]
fn h2c_upgrade_by_nghttp_is_followed_into_http2() {
    let facts = inspect_every_way(&runs(&segments(H2C_NGHTTP)));
    assert_eq!(
        facts,
        [
            "tx http 0 GET /index.html host=10.99.22.2:8081",
            "interim http 0 101 [HTTP/1.1 101 Switching Protocols]",
            "rx http2 0 Some(200) [200]",
        ]
    );
}

/// One HTTP/2 frame.
fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[ty, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A request's header block with static-table and literal fields only (no HPACK state).
fn request_block(method_index: u8, path: &str, authority: &str) -> Vec<u8> {
    let mut b = vec![0x80 | method_index, 0x86]; // :method, :scheme http
    b.push(0x04); // :path, literal without indexing
    b.push(path.len() as u8);
    b.extend_from_slice(path.as_bytes());
    b.push(0x01); // :authority, literal without indexing
    b.push(authority.len() as u8);
    b.extend_from_slice(authority.as_bytes());
    b
}

/// The recorded curl conversation, then two more streams on the upgraded connection
/// (written by hand: the recorded clients made one request each): `POST /second` answered
/// 404 and `GET /third` answered 500, the responses in the opposite order.
fn curl_with_more_streams() -> Vec<(Direction, Vec<u8>)> {
    let mut runs = runs(&segments(H2C_CURL));
    let auth = "10.99.11.2:8082";
    let mut c = frame(0x1, 0x5, 3, &request_block(3, "/second", auth)); // 3 = POST
    c.extend(frame(0x1, 0x5, 5, &request_block(2, "/third", auth))); // 2 = GET
    runs.push((Direction::ToServer, c));
    let mut s = frame(0x1, 0x5, 5, &[0x8e]); // :status 500
    s.extend(frame(0x1, 0x5, 3, &[0x8d])); // :status 404
    runs.push((Direction::ToClient, s));
    runs
}

#[test]
fn streams_after_the_upgrade_are_http2_transactions() {
    let facts = inspect_every_way(&curl_with_more_streams());
    assert_eq!(
        facts,
        [
            "tx http 0 GET /index.html host=10.99.11.2:8082",
            "interim http 0 101 [HTTP/1.1 101 Switching Protocols]",
            "rx http2 0 Some(200) [200]",
            "tx http2 1 POST /second host=10.99.11.2:8082",
            "tx http2 2 GET /third host=10.99.11.2:8082",
            "rx http2 2 Some(500) [500]",
            "rx http2 1 Some(404) [404]",
        ]
    );
}

#[test]
fn a_client_preface_sent_before_the_101_is_handed_over_first() {
    // A client that does not wait for the 101: its preface and a second request (stream
    // 3) wait in the client's carry while HTTP/1 awaits the answer. At the hand-over they
    // must reach HTTP/2 before the server's bytes after the 101, which answer stream 3.
    let r = runs(&segments(H2C_CURL));
    let auth = "10.99.11.2:8082";
    let mut eager = r[2].1.clone();
    assert!(eager.starts_with(proto_parsers::detect::H2_PREFACE));
    eager.extend(frame(0x1, 0x5, 3, &request_block(3, "/second", auth)));
    let mut server = r[1].1.clone();
    server.extend_from_slice(&r[3].1);
    server.extend(frame(0x1, 0x5, 3, &[0x8d])); // :status 404
    let facts = inspect_every_way(&[
        r[0].clone(),
        (Direction::ToServer, eager),
        (Direction::ToClient, server),
    ]);
    assert_eq!(
        facts,
        [
            "tx http 0 GET /index.html host=10.99.11.2:8082",
            "interim http 0 101 [HTTP/1.1 101 Switching Protocols]",
            "tx http2 1 POST /second host=10.99.11.2:8082",
            "rx http2 0 Some(200) [200]",
            "rx http2 1 Some(404) [404]",
        ]
    );
}

#[test]
fn a_large_response_in_the_same_chunk_as_the_101_is_not_a_carry_overflow() {
    // The 101, the server's frames and a 112 KiB response to stream 1 in one chunk: before
    // the hand-over none of it may be carried, after it HTTP/2 counts the DATA down.
    let r = runs(&segments(H2C_CURL));
    let (req, mut server, preface, tail) = (&r[0].1, r[1].1.clone(), &r[2].1, &r[3].1);
    // The recorded tail: SETTINGS ack, HEADERS (stream 1), DATA (stream 1, END_STREAM).
    let mut frames = Vec::new();
    let mut i = 0;
    while i < tail.len() {
        let len = u32::from_be_bytes([0, tail[i], tail[i + 1], tail[i + 2]]) as usize;
        frames.push(&tail[i..i + 9 + len]);
        i += 9 + len;
    }
    assert_eq!(frames.len(), 3);
    server.extend_from_slice(frames[0]);
    server.extend_from_slice(frames[1]);
    for _ in 0..7 {
        server.extend(frame(0x0, 0, 1, &[b'x'; 16_384]));
    }
    server.extend_from_slice(frames[2]);
    assert!(server.len() > DEFAULT_MAX_CARRY);
    let (facts, anomalies, events, _) = inspect_all(&[
        (Direction::ToServer, req),
        (Direction::ToServer, preface),
        (Direction::ToClient, &server),
    ]);
    assert!(anomalies.is_empty(), "{anomalies:?}");
    assert_eq!(events, [InspectEvent::detected(AppProto::Http)]);
    assert_eq!(
        facts,
        [
            "tx http 0 GET /index.html host=10.99.11.2:8082",
            "interim http 0 101 [HTTP/1.1 101 Switching Protocols]",
            "rx http2 0 Some(200) [200]",
        ]
    );
}

#[test]
fn a_websocket_upgrade_stays_an_opaque_tunnel() {
    let req: &[u8] =
        b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let resp: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05Hello";
    // After the switch, even an HTTP/2 preface and request are tunnel bytes, not parsed.
    let mut later = proto_parsers::detect::H2_PREFACE.to_vec();
    later.extend(frame(0x4, 0, 0, &[]));
    later.extend(frame(0x1, 0x5, 1, &request_block(2, "/hidden", "a")));
    let runs = vec![
        (Direction::ToServer, req.to_vec()),
        (Direction::ToClient, resp.to_vec()),
        (Direction::ToServer, later),
        (
            Direction::ToServer,
            b"GET /not-http HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        ),
    ];
    let facts = inspect_every_way(&runs);
    assert_eq!(
        facts,
        [
            "tx http 0 GET /chat host=a",
            // The 101 is the request's response, in its place before the tunnel.
            "rx http 0 Some(101) [HTTP/1.1 101 Switching Protocols]",
            "opaque tunnel",
        ]
    );
}

// ---- HTTP CONNECT: the tunnelled connection is read as one of its own ----------------

const CONNECT: &[u8] = b"CONNECT api.internal:80 HTTP/1.1\r\nHost: api.internal:80\r\n\r\n";
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

#[test]
fn http_inside_a_connect_tunnel_is_parsed_with_ids_after_the_connect() {
    let runs = vec![
        (
            Direction::ToServer,
            b"GET /before HTTP/1.1\r\nHost: p\r\n\r\n".to_vec(),
        ),
        (
            Direction::ToClient,
            b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        ),
        (Direction::ToServer, CONNECT.to_vec()),
        (Direction::ToClient, ESTABLISHED.to_vec()),
        (
            Direction::ToServer,
            b"GET /inner HTTP/1.1\r\nHost: api.internal\r\n\r\n".to_vec(),
        ),
        (
            Direction::ToClient,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
    ];
    assert_eq!(
        inspect_every_way(&runs),
        [
            "tx http 0 GET /before host=p",
            "rx http 0 Some(204) [HTTP/1.1 204 No Content]",
            "tx http 1 CONNECT api.internal:80 host=api.internal:80",
            "rx http 1 Some(200) [HTTP/1.1 200 Connection established]",
            // The tunnelled connection's first request: the next id on the flow.
            "tx http 2 GET /inner host=api.internal",
            "rx http 2 Some(404) [HTTP/1.1 404 Not Found]",
        ]
    );
}

#[test]
fn tls_inside_a_connect_tunnel_reports_its_server_name() {
    // A client that sends its ClientHello right behind the CONNECT, before the answer:
    // the ClientHello waits in the carry and is detected once the tunnel is up.
    let tls = runs(&segments(include_bytes!(
        "../../../proto-parsers/src/tls/testdata/tls-0.seg"
    )));
    let mut first = CONNECT.to_vec();
    first.extend_from_slice(&tls[0].1);
    let mut runs = vec![
        (Direction::ToServer, first),
        (Direction::ToClient, ESTABLISHED.to_vec()),
    ];
    runs.extend(tls.into_iter().skip(1));
    let facts = inspect_every_way(&runs);
    assert_eq!(facts.len(), 5, "{facts:?}");
    assert_eq!(
        facts[1],
        "rx http 0 Some(200) [HTTP/1.1 200 Connection established]"
    );
    assert!(
        facts[2].starts_with("tx tls 1 ")
            && facts[2].contains(&format!("sni: Some({:?})", b"shop.test")),
        "{facts:?}"
    );
    assert!(facts[3].starts_with("rx tls 1 "), "{facts:?}");
    assert_eq!(facts[4], "opaque encrypted");
}

#[test]
fn a_refused_connect_is_not_a_tunnel() {
    let runs = vec![
        (Direction::ToServer, CONNECT.to_vec()),
        (
            Direction::ToClient,
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            Direction::ToServer,
            b"GET /x HTTP/1.1\r\nHost: p\r\n\r\n".to_vec(),
        ),
    ];
    assert_eq!(
        inspect_every_way(&runs),
        [
            "tx http 0 CONNECT api.internal:80 host=api.internal:80",
            "rx http 0 Some(403) [HTTP/1.1 403 Forbidden]",
            "tx http 1 GET /x host=p",
            "unanswered http 1",
        ]
    );
}

#[test]
fn an_unknown_protocol_in_a_tunnel_ends_inspection_without_a_blind_decision() {
    let (facts, anomalies, events, inspecting) = inspect_all(&[
        (Direction::ToServer, CONNECT),
        (Direction::ToClient, ESTABLISHED),
        (
            Direction::ToServer,
            b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02\x03\xff",
        ),
    ]);
    assert!(anomalies.is_empty(), "{anomalies:?}");
    // Detected once, as the flow's protocol: the tunnel's is not the flow's.
    assert_eq!(events, [InspectEvent::detected(AppProto::Http)]);
    assert_eq!(facts.len(), 2, "{facts:?}");
    assert!(!inspecting);
}
