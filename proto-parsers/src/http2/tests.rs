use super::testkit::{check_splits, segments};
use super::*;

const H2_0: &[u8] = include_bytes!("testdata/h2-0.seg");
const H2_1: &[u8] = include_bytes!("testdata/h2-1.seg");
const H2_2: &[u8] = include_bytes!("testdata/h2-2.seg");
const H2_3: &[u8] = include_bytes!("testdata/h2-3.seg");
const H2_4: &[u8] = include_bytes!("testdata/h2-4.seg");
const GRPC_0: &[u8] = include_bytes!("../grpc/testdata/grpc-0.seg");

/// Each fact cut after its first `]`: `tx http2 0 [GET /x]`, `rx http2 0 Some(200) [200]`.
fn brief(facts: &[String]) -> Vec<String> {
    facts
        .iter()
        .map(|f| f.find(']').map_or(f.as_str(), |i| &f[..=i]).to_string())
        .collect()
}

/// Recorded in tests/data/http2 (see record.sh there): nghttp with prior knowledge against
/// nghttpd, several requests on one connection as concurrent streams.
#[test]
fn nghttp_concurrent_streams() {
    let o = check_splits(Http2Parser::new, &segments(H2_0), 4999);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        brief(&o.facts),
        [
            "tx http2 0 [GET /index.html]",
            "tx http2 1 [GET /big.bin]",
            "tx http2 2 [GET /missing]",
            "tx http2 3 [GET /api/empty]",
            "rx http2 0 Some(200) [200]",
            "rx http2 1 Some(200) [200]",
            "rx http2 2 Some(404) [404]",
            "rx http2 3 Some(200) [200]",
        ]
    );
    assert!(o.facts[0].contains("authority=10.99.22.2:8080 ua=nghttp2/1.52.0"));
    assert!(o.facts[6].contains("ct=text/html; charset=UTF-8"));
}

#[test]
fn repeated_requests_use_the_dynamic_table() {
    // Five identical requests: after the first, HPACK sends indexed fields only.
    let o = check_splits(Http2Parser::new, &segments(H2_1), 1);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    let b = brief(&o.facts);
    assert_eq!(b.len(), 10);
    for i in 0..5 {
        assert_eq!(b[i], format!("tx http2 {i} [GET /index.html]"));
        assert_eq!(b[5 + i], format!("rx http2 {i} Some(200) [200]"));
        assert!(o.facts[i].contains("ua=nghttp2/1.52.0"), "{}", o.facts[i]);
    }
}

#[test]
fn post_with_a_body_and_curl_prior_knowledge() {
    let o = check_splits(Http2Parser::new, &segments(H2_2), 997);
    assert_eq!(
        brief(&o.facts),
        [
            "tx http2 0 [POST /api/orders]",
            "rx http2 0 Some(200) [200]"
        ]
    );
    assert!(o.facts[0].contains("ct=application/json"));
    let o = check_splits(Http2Parser::new, &segments(H2_3), 1);
    assert_eq!(
        brief(&o.facts),
        ["tx http2 0 [GET /index.html]", "rx http2 0 Some(200) [200]"]
    );
    assert!(o.facts[0].contains("ua=curl-test/1.0"));
    let o = check_splits(Http2Parser::new, &segments(H2_4), 1);
    assert_eq!(
        brief(&o.facts),
        [
            "tx http2 0 [POST /api/orders]",
            "rx http2 0 Some(200) [200]"
        ]
    );
    assert!(o.facts[0].contains("ua=curl/7.88.1"));
}

/// Recorded in tests/data/grpc: a grpcio client and server (unary Say, server-streaming
/// Count, Find failing with NOT_FOUND, and a gzip-compressed Say).
#[test]
fn grpc_calls_are_recognised() {
    let o = check_splits(Http2Parser::new, &segments(GRPC_0), 997);
    assert!(o.alive, "{o:?}");
    assert_eq!(
        brief(&o.facts),
        [
            "tx grpc 0 [POST /demo.v1.Echo/Say]",
            "rx grpc 0 Some(0) []",
            "tx grpc 1 [POST /demo.v1.Echo/Count]",
            "rx grpc 1 Some(0) []",
            "tx grpc 2 [POST /demo.v1.Echo/Find]",
            "rx grpc 2 Some(5) [no such item: widget-7]",
            "tx grpc 3 [POST /demo.v1.Echo/Say]",
            "rx grpc 3 Some(0) []",
        ]
    );
    assert!(o.facts[0].contains("grpc demo.v1.Echo/Say"));
    assert!(o.facts[0].contains("ct=application/grpc"));
}

#[test]
fn garbage_after_the_preface_is_not_a_panic() {
    let mut p = Http2Parser::new();
    let mut data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    data.extend_from_slice(&[0xff; 64]);
    for cut in 0..data.len() {
        let mut q = Http2Parser::new();
        let _ = super::testkit::run(&mut q, [(Direction::ToServer, &data[..cut])]);
    }
    let _ = super::testkit::run(&mut p, [(Direction::ToServer, &data[..])]);
}

// ---- Limits: each reached is its typed anomaly, never a panic, never growth ------------

use super::testkit::run;

const STATUS_200: u8 = 0x88;
const STATUS_404: u8 = 0x8d;

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[ty, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer (RFC 7541 section 5.1) with an `n`-bit prefix under `first`'s high bits.
fn hpack_int(n: u8, first: u8, mut v: usize) -> Vec<u8> {
    let max = (1usize << n) - 1;
    if v < max {
        return vec![first | v as u8];
    }
    let mut out = vec![first | max as u8];
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
    out
}

/// A literal field with a new name, no Huffman; `index` adds it to the dynamic table.
fn literal(name: &[u8], value: &[u8], index: bool) -> Vec<u8> {
    let mut b = vec![if index { 0x40 } else { 0x00 }];
    b.extend(hpack_int(7, 0, name.len()));
    b.extend_from_slice(name);
    b.extend(hpack_int(7, 0, value.len()));
    b.extend_from_slice(value);
    b
}

/// `:method GET`, `:scheme http`, `:path` (literal, not indexed), `:authority a`.
fn get(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x04];
    b.extend(hpack_int(7, 0, path.len()));
    b.extend_from_slice(path.as_bytes());
    b.extend_from_slice(&[0x01, 0x01, b'a']);
    b
}

/// The client preface and an empty SETTINGS, then `frames`.
fn client(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut c = PREFACE.to_vec();
    c.extend(frame(SETTINGS, 0, 0, &[]));
    for f in frames {
        c.extend_from_slice(f);
    }
    c
}

/// The server's SETTINGS frame with `(id, value)` entries.
fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

fn as_segs(feeds: &[(Direction, &[u8])]) -> Vec<(Direction, Vec<u8>)> {
    feeds.iter().map(|(d, b)| (*d, b.to_vec())).collect()
}

#[test]
fn header_list_bomb_is_a_compression_error_and_hpack_stays_in_step() {
    // Stream 1 puts a 4000-byte field into the client's dynamic table (it fits the default
    // 4096-byte table); stream 3's block is about 540 bytes that name it 520 times: 2 MiB
    // decoded, over MAX_HEADER_LIST. Stream 5 names it once more, within limits.
    let mut b1 = get("/");
    b1.extend(literal(b"x-bomb", &[b'b'; 4000], true));
    let mut b3 = get("/bomb");
    b3.extend([0xbe; 520]); // index 62: the newest dynamic entry
    assert!(b3.len() < 550);
    let mut b5 = get("/after");
    b5.push(0xbe);
    let c = client(&[
        frame(HEADERS, END_STREAM | END_HEADERS, 1, &b1),
        frame(HEADERS, END_STREAM | END_HEADERS, 3, &b3),
        frame(HEADERS, END_STREAM | END_HEADERS, 5, &b5),
    ]);
    let segs = as_segs(&[(Direction::ToServer, &c)]);
    let o = check_splits(Http2Parser::new, &segs, 97);
    assert!(o.alive, "{o:?}");
    assert_eq!(o.anomalies, [ParserAnomaly::CompressionError]);
    assert!(o.anomalies[0].blinds());
    assert_eq!(
        brief(&o.facts),
        [
            "tx http2 0 [GET /]",
            "tx http2 1 [GET /bomb]",
            "tx http2 2 [GET /after]",
            "unanswered http2 0",
            "unanswered http2 1",
            "unanswered http2 2",
        ]
    );
    // The bomb's request keeps the fields that fit; the next block decodes the entry again.
    assert!(o.facts[1].contains("x-bomb=bbbb"), "{}", o.facts[1]);
    assert!(o.facts[2].contains("x-bomb=bbbb"), "{}", o.facts[2]);
    assert_eq!(o.facts[2].matches("x-bomb=").count(), 1);

    let mut p = Http2Parser::new();
    let o2 = run(&mut p, [(Direction::ToServer, &c[..])]);
    assert_eq!(o2.anomalies, o.anomalies);
    let s = p.stats();
    assert_eq!((s.header_list_too_large, s.hpack_errors), (1, 0));
    assert_eq!(s.header_blocks, 3);
    // What the bomb expanded to was counted, not kept, and nothing large stays held.
    let side = &p.sides[0];
    assert!(side.fields.capacity() <= KEEP_SCRATCH);
    assert!(side.spans.capacity() <= KEEP_FIELDS);
}

#[test]
fn dynamic_table_size_update_above_the_limit_is_a_compression_error() {
    // Nobody raised the table: the client may not go past 4096 bytes.
    let mut block = hpack_int(5, 0x20, 4097);
    block.extend(get("/"));
    let c = client(&[frame(HEADERS, END_STREAM | END_HEADERS, 1, &block)]);
    let o = check_splits(Http2Parser::new, &as_segs(&[(Direction::ToServer, &c)]), 1);
    assert!(!o.alive);
    assert_eq!(o.anomalies, [ParserAnomaly::CompressionError]);
    assert!(o.facts.is_empty(), "{:?}", o.facts);
    let mut p = Http2Parser::new();
    run(&mut p, [(Direction::ToServer, &c[..])]);
    assert_eq!(p.stats().hpack_errors, 1);
    // Dead: later bytes are refused, not parsed.
    let mut sink = super::testkit::Collect::default();
    let more = frame(HEADERS, END_STREAM | END_HEADERS, 3, &get("/x"));
    assert_eq!(
        p.feed(Direction::ToServer, &more, &mut sink),
        Progress::Invalid(Invalid::BadSyntax)
    );
    assert!(sink.facts.is_empty());

    // The server advertises 1 MiB: we hold at most MAX_HPACK_TABLE whatever it says. An
    // update to exactly that is fine, one byte more is refused.
    let server = settings(&[(SETTINGS_HEADER_TABLE_SIZE, 1 << 20)]);
    for (size, ok) in [(MAX_HPACK_TABLE, true), (MAX_HPACK_TABLE + 1, false)] {
        let mut block = hpack_int(5, 0x20, size);
        block.extend(get("/"));
        let c = client(&[]);
        let h = frame(HEADERS, END_STREAM | END_HEADERS, 1, &block);
        let segs = as_segs(&[
            (Direction::ToServer, &c),
            (Direction::ToClient, &server),
            (Direction::ToServer, &h),
        ]);
        let o = check_splits(Http2Parser::new, &segs, 1);
        assert_eq!(o.alive, ok, "{size}: {o:?}");
        if ok {
            assert!(o.anomalies.is_empty(), "{o:?}");
            assert_eq!(
                brief(&o.facts),
                ["tx http2 0 [GET /]", "unanswered http2 0"]
            );
        } else {
            assert_eq!(o.anomalies, [ParserAnomaly::CompressionError]);
            assert!(o.facts.is_empty(), "{o:?}");
        }
    }
}

#[test]
fn more_concurrent_streams_than_the_limit_are_reported_but_not_tracked() {
    let n = MAX_STREAMS + 44;
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            frame(
                HEADERS,
                END_STREAM | END_HEADERS,
                2 * i as u32 + 1,
                &get(&format!("/s{i}")),
            )
        })
        .collect();
    let c = client(&frames);
    let mut p = Http2Parser::new();
    let mut sink = super::testkit::Collect::default();
    let mut conv = super::testkit::Conv::new(&mut p);
    assert!(conv.push(Direction::ToServer, &c, &mut sink));
    // Every request is reported (policy judges it); only MAX_STREAMS wait for a response.
    assert_eq!(sink.facts.len(), n);
    assert!(sink.facts[n - 1].starts_with(&format!("tx http2 {} [GET /s{}]", n - 1, n - 1)));
    // Only the pairing of the streams past the limit is lost: nothing that blinds.
    assert_eq!(sink.anomalies, vec![ParserAnomaly::TooManyTransactions; 44]);
    assert!(sink.anomalies.iter().all(|a| !a.blinds()));
    assert_eq!(conv.parser().stats().too_many_streams, 44);
    assert_eq!(conv.parser().open_streams(), MAX_STREAMS);
    assert!(conv.parser().conn.streams.capacity() <= MAX_STREAMS);

    // The server answers stream 1 (tracked) and the last one (not tracked: ignored, not an
    // unsolicited response). That frees one slot, which the next stream takes.
    let mut s = settings(&[]);
    s.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &[STATUS_200]));
    s.extend(frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        2 * n as u32 - 1,
        &[STATUS_404],
    ));
    sink.anomalies.clear();
    assert!(conv.push(Direction::ToClient, &s, &mut sink));
    assert_eq!(sink.facts[n], "rx http2 0 Some(200) [200] http 200 ct=-");
    assert_eq!(sink.facts.len(), n + 1);
    assert!(sink.anomalies.is_empty(), "{:?}", sink.anomalies);
    assert_eq!(conv.parser().open_streams(), MAX_STREAMS - 1);
    let next = frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        2 * n as u32 + 1,
        &get("/next"),
    );
    assert!(conv.push(Direction::ToServer, &next, &mut sink));
    assert!(sink.anomalies.is_empty(), "{:?}", sink.anomalies);
    assert_eq!(conv.parser().open_streams(), MAX_STREAMS);
    conv.end(&mut sink);
    let unanswered = sink
        .facts
        .iter()
        .filter(|f| f.starts_with("unanswered"))
        .count();
    assert_eq!(unanswered, MAX_STREAMS);
    assert_eq!(conv.parser().open_streams(), 0);
}

#[test]
fn a_frame_over_the_max_frame_size_is_bad_framing_and_is_not_buffered() {
    // A POST whose DATA frame is 20,000 bytes: over the default 16,384.
    let mut post = vec![0x83, 0x86, 0x04, 0x02, b'/', b'u', 0x01, 0x01, b'a'];
    post.extend(literal(b"content-type", b"application/octet-stream", false));
    let c = client(&[
        frame(HEADERS, END_HEADERS, 1, &post),
        frame(DATA, END_STREAM, 1, &[b'x'; 20_000]),
    ]);
    let mut s = settings(&[]);
    s.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &[STATUS_200]));
    let segs = as_segs(&[(Direction::ToServer, &c), (Direction::ToClient, &s)]);
    let o = check_splits(Http2Parser::new, &segs, 499);
    assert!(o.alive, "{o:?}");
    assert_eq!(o.anomalies, [ParserAnomaly::BadFraming]);
    assert_eq!(
        brief(&o.facts),
        ["tx http2 0 [POST /u]", "rx http2 0 Some(200) [200]"]
    );
    // Only frame heads are ever carried; the payload streams past.
    assert!(o.carried < 2 * FRAME_HEAD, "carried {}", o.carried);
    let mut p = Http2Parser::new();
    run(&mut p, segs.iter().map(|(d, b)| (*d, &b[..])));
    assert_eq!(p.stats().oversized_frames, 1);

    // The largest length a frame header can declare (16 MiB), fed in 64 KiB pieces: one
    // anomaly, nothing held.
    let mut p = Http2Parser::new();
    let mut head = client(&[frame(HEADERS, END_HEADERS, 1, &post)]);
    head.extend_from_slice(&[0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1]);
    let piece = vec![b'y'; 64 * 1024];
    let mut feeds: Vec<(Direction, &[u8])> = vec![(Direction::ToServer, &head)];
    feeds.extend(std::iter::repeat_n((Direction::ToServer, &piece[..]), 32));
    let o = run(&mut p, feeds);
    assert!(o.alive);
    assert_eq!(o.anomalies, [ParserAnomaly::BadFraming]);
    assert!(o.carried < 2 * FRAME_HEAD, "carried {}", o.carried);
    assert_eq!(p.stats().oversized_frames, 1);
    assert_eq!(
        brief(&o.facts),
        ["tx http2 0 [POST /u]", "unanswered http2 0"]
    );

    // Once the server allows 32 KiB frames, the same 20,000-byte frame is fine.
    let big = settings(&[(SETTINGS_MAX_FRAME_SIZE, 32_768)]);
    let c2 = client(&[]);
    let rest = [
        frame(HEADERS, END_HEADERS, 1, &post),
        frame(DATA, END_STREAM, 1, &[b'x'; 20_000]),
    ]
    .concat();
    let segs = as_segs(&[
        (Direction::ToServer, &c2),
        (Direction::ToClient, &big),
        (Direction::ToServer, &rest),
    ]);
    let o = check_splits(Http2Parser::new, &segs, 499);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
}

/// A request whose header block is `block`, cut into a HEADERS frame and CONTINUATION frames
/// after the given fragment lengths (the last fragment takes the rest).
fn spread(stream: u32, block: &[u8], cuts: impl IntoIterator<Item = usize>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut rest = block;
    for n in cuts {
        let (frag, tail) = rest.split_at(n.min(rest.len()));
        let ty = if frames.is_empty() {
            HEADERS
        } else {
            CONTINUATION
        };
        let flags = if frames.is_empty() { END_STREAM } else { 0 };
        frames.push(frame(ty, flags, stream, frag));
        rest = tail;
    }
    frames.push(frame(CONTINUATION, END_HEADERS, stream, rest));
    frames
}

#[test]
fn a_header_block_over_500_continuation_frames_is_judged() {
    // A server reads any number of CONTINUATION frames (Go counts them only by their bytes):
    // the request they carry is decoded and judged, whatever the cut, through the driver.
    let mut block = get("/admin/spread");
    block.extend(literal(b"user-agent", b"spreader/1.0", false));
    block.extend(literal(b"x-pad", &[b'p'; 600], false));
    assert!(block.len() > 500);
    let frames = spread(1, &block, std::iter::repeat_n(1, 500));
    assert_eq!(frames.len(), 501);
    let c = client(&frames);
    let o = check_splits(Http2Parser::new, &as_segs(&[(Direction::ToServer, &c)]), 1);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        brief(&o.facts),
        ["tx http2 0 [GET /admin/spread]", "unanswered http2 0"]
    );
    assert!(o.facts[0].contains("ua=spreader/1.0"), "{}", o.facts[0]);
    // Only frame heads are carried: the fragments are assembled by the parser.
    assert!(o.carried < 2 * FRAME_HEAD, "carried {}", o.carried);
    let mut p = Http2Parser::new();
    run(&mut p, [(Direction::ToServer, &c[..])]);
    assert_eq!(p.stats().continuation_frames, 500);

    // 500 empty CONTINUATION frames in the middle of a block change nothing either.
    let mut frames = vec![frame(HEADERS, END_STREAM, 1, &block)];
    frames.extend(std::iter::repeat_n(frame(CONTINUATION, 0, 1, &[]), 500));
    frames.push(frame(CONTINUATION, END_HEADERS, 1, &[]));
    let c = client(&frames);
    let o = check_splits(Http2Parser::new, &as_segs(&[(Direction::ToServer, &c)]), 7);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(brief(&o.facts)[0], "tx http2 0 [GET /admin/spread]");
}

/// A block of `fields` literal fields `x-h<i>: <value_len bytes>` after a GET of `path`.
fn big_block(path: &str, fields: usize, value_len: usize) -> Vec<u8> {
    let mut block = get(path);
    let value = vec![b'v'; value_len];
    for i in 0..fields {
        block.extend(literal(format!("x-h{i:04}").as_bytes(), &value, false));
    }
    block
}

#[test]
fn a_900_kib_header_list_is_reported_whole() {
    // 900 fields of 1000 bytes in 16 KiB frames (HEADERS + 56 CONTINUATION): what a Go
    // server accepts. Every field is reported, fields the parser reads by name after the
    // 255th included.
    let mut block = big_block("/big", 900, 1000);
    block.extend(literal(b"content-type", b"application/json", false));
    let frames = spread(1, &block, std::iter::repeat_n(16_384, block.len() / 16_384));
    let list: usize = 900 * (7 + 1000 + 32);
    assert!(list > 900 * 1024 && list < MAX_HEADER_LIST);
    let c = client(&frames);
    let mut s = settings(&[]);
    s.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &[STATUS_200]));
    let segs = as_segs(&[(Direction::ToServer, &c), (Direction::ToClient, &s)]);
    let o = check_splits(Http2Parser::new, &segs, 49_999);
    assert!(o.alive && o.anomalies.is_empty(), "{:?}", o.anomalies);
    assert_eq!(
        brief(&o.facts),
        ["tx http2 0 [GET /big]", "rx http2 0 Some(200) [200]"]
    );
    assert_eq!(o.facts[0].matches("x-h").count(), 900);
    assert!(o.facts[0].contains("ct=application/json"), "tail");
    assert!(o.carried < 2 * FRAME_HEAD, "carried {}", o.carried);

    // Memory: the block was assembled in the parser's buffer and freed once judged.
    let mut p = Http2Parser::new();
    run(&mut p, segs.iter().map(|(d, b)| (*d, &b[..])));
    assert_eq!(p.sides[0].block.capacity(), 0);
    assert!(p.sides[0].spans.capacity() <= KEEP_FIELDS);
    assert!(p.conn.headers.capacity() <= KEEP_FIELDS);
}

#[test]
fn a_2_mib_header_block_gives_the_connection_up_loudly() {
    // 2,000 fields of 1000 bytes: a block twice the bound. The receiver would refuse it; the
    // parser cannot keep HPACK in step past it, so the connection is given up with a
    // blinding anomaly as soon as the frame that crosses the bound is announced.
    let block = big_block("/huge", 2000, 1000);
    assert!(block.len() > 2 * 1000 * 1000);
    let frames = spread(1, &block, std::iter::repeat_n(16_384, block.len() / 16_384));
    let c = client(&frames);
    let o = check_splits(
        Http2Parser::new,
        &as_segs(&[(Direction::ToServer, &c)]),
        199_999,
    );
    assert!(!o.alive);
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert!(o.anomalies[0].blinds());
    assert!(o.facts.is_empty(), "{:?}", o.facts);
    let mut p = Http2Parser::new();
    let o = run(&mut p, [(Direction::ToServer, &c[..])]);
    assert!(!o.alive);
    let s = p.stats();
    assert_eq!(s.block_too_large, 1);
    assert_eq!(
        s.continuation_frames as usize,
        MAX_BLOCK / (16_384 + FRAME_HEAD)
    );
    assert!(p.sides[0].block.len() <= MAX_BLOCK);
    assert!(p.sides[0].block.capacity() <= MAX_BLOCK);

    // Dead: later bytes are refused, not parsed.
    let mut sink = super::testkit::Collect::default();
    let more = frame(HEADERS, END_STREAM | END_HEADERS, 3, &get("/x"));
    assert_eq!(
        p.feed(Direction::ToServer, &more, &mut sink),
        Progress::Invalid(Invalid::TooLarge)
    );

    // A CONTINUATION for another stream, or any other frame, inside a block is bad framing.
    let c = client(&[
        frame(HEADERS, 0, 1, &get("/")),
        frame(CONTINUATION, END_HEADERS, 3, &[]),
    ]);
    let o = check_splits(Http2Parser::new, &as_segs(&[(Direction::ToServer, &c)]), 1);
    assert!(!o.alive);
    assert_eq!(o.anomalies, [ParserAnomaly::BadFraming]);
}

#[test]
fn a_flood_of_empty_continuation_frames_is_bounded() {
    // 200,000 empty CONTINUATION frames inside one header block (the CVE-2024-27316 shape):
    // each counts its 9-byte header against MAX_BLOCK, so the flood ends with a blinding
    // anomaly after MAX_BLOCK / 9 frames, having held nothing.
    let first = get("/flood");
    let mut c = client(&[frame(HEADERS, END_STREAM, 1, &first)]);
    let empty = frame(CONTINUATION, 0, 1, &[]);
    for _ in 0..200_000 {
        c.extend_from_slice(&empty);
    }
    c.extend(frame(CONTINUATION, END_HEADERS, 1, &[]));
    let mut p = Http2Parser::new();
    let feeds = c.chunks(1460).map(|b| (Direction::ToServer, b));
    let o = run(&mut p, feeds);
    assert!(!o.alive);
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert!(o.facts.is_empty(), "{:?}", o.facts);
    assert!(o.carried < 2 * FRAME_HEAD, "carried {}", o.carried);
    let frames = p.stats().continuation_frames as usize;
    assert_eq!(frames, (MAX_BLOCK - first.len()) / FRAME_HEAD + 1);
    assert!(p.sides[0].block.capacity() <= 64);
}

#[test]
fn fields_the_parser_reads_by_name_count_past_the_255th() {
    // 300 fields before `content-type`: the call is still recognised as gRPC.
    let mut block = vec![0x83, 0x86, 0x04, 0x0c];
    block.extend_from_slice(b"/pkg.Svc/Get");
    block.extend_from_slice(&[0x01, 0x01, b'a']);
    for i in 0..300 {
        block.extend(literal(format!("x-{i}").as_bytes(), b"1", false));
    }
    block.extend(literal(b"content-type", b"application/grpc", false));
    let c = client(&[frame(HEADERS, END_HEADERS, 1, &block)]);
    let o = check_splits(Http2Parser::new, &as_segs(&[(Direction::ToServer, &c)]), 13);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        brief(&o.facts),
        ["tx grpc 0 [POST /pkg.Svc/Get]", "unanswered grpc 0"]
    );
}

#[test]
fn three_hundred_concurrent_streams_are_all_judged_whatever_the_cut() {
    // Envoy allows 2^31 concurrent streams: every request is reported whichever stream it
    // comes on, gRPC ones included; the server answers all of them, and the answers of the
    // streams that were tracked pair.
    let n = 300;
    let mut grpc = vec![0x83, 0x86, 0x04, 0x0c];
    grpc.extend_from_slice(b"/pkg.Svc/Get");
    grpc.extend_from_slice(&[0x01, 0x01, b'a']);
    grpc.extend(literal(b"content-type", b"application/grpc", false));
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let block = if i % 50 == 49 {
                grpc.clone()
            } else {
                get(&format!("/s{i}"))
            };
            frame(HEADERS, END_STREAM | END_HEADERS, 2 * i as u32 + 1, &block)
        })
        .collect();
    let c = client(&frames);
    let mut s = settings(&[]);
    for i in 0..n {
        s.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            2 * i as u32 + 1,
            &[STATUS_200],
        ));
    }
    let segs = as_segs(&[(Direction::ToServer, &c), (Direction::ToClient, &s)]);
    let o = check_splits(Http2Parser::new, &segs, 5);
    assert!(o.alive, "{o:?}");
    assert!(o.anomalies.iter().all(|a| !a.blinds()), "{:?}", o.anomalies);
    assert_eq!(o.anomalies.len(), n - MAX_STREAMS);
    let tx: Vec<&String> = o.facts.iter().filter(|f| f.starts_with("tx ")).collect();
    assert_eq!(tx.len(), n);
    assert!(
        tx[299].starts_with("tx grpc 299 [POST /pkg.Svc/Get]"),
        "{}",
        tx[299]
    );
    assert!(
        tx[298].starts_with("tx http2 298 [GET /s298]"),
        "{}",
        tx[298]
    );
    let rx = o.facts.iter().filter(|f| f.starts_with("rx ")).count();
    assert_eq!(rx, MAX_STREAMS);
    assert!(!o.facts.iter().any(|f| f.starts_with("unanswered")));
}
