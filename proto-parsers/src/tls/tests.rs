use super::*;
use crate::contract::GapOutcome;
use crate::redis::testkit::{Outcome, check_wire_splits, run_chunks, segments};

const TLS13: &[u8] = include_bytes!("testdata/tls-0.seg");
const TLS12: &[u8] = include_bytes!("testdata/tls-1.seg");
const NO_SNI: &[u8] = include_bytes!("testdata/tls-2.seg");
const SPLIT_CH: &[u8] = include_bytes!("testdata/tls-3.seg");
const HRR: &[u8] = include_bytes!("testdata/tls-4.seg");

fn recorded(f: &[u8]) -> Outcome {
    let o = check_wire_splits(TlsParser::new, &segments(f), 1);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    o
}

#[test]
fn openssl_tls13_with_sni_and_alpn() {
    assert_eq!(
        recorded(TLS13).facts,
        [
            "tx 0 [ClientHello shop.test] sni=shop.test alpn=[h2,http/1.1] version=0x0304",
            "rx 0 None [ServerHello] version=0x0304 alpn=-",
            "opaque encrypted",
        ]
    );
}

#[test]
fn openssl_tls12_shows_the_selected_alpn() {
    assert_eq!(
        recorded(TLS12).facts,
        [
            "tx 0 [ClientHello api.shop.test] sni=api.shop.test alpn=[http/1.1] version=0x0303",
            "rx 0 None [ServerHello] version=0x0303 alpn=http/1.1",
            "opaque encrypted",
        ]
    );
}

#[test]
fn openssl_without_sni() {
    assert_eq!(
        recorded(NO_SNI).facts,
        [
            "tx 0 [ClientHello] sni=- alpn=[] version=0x0304",
            "rx 0 None [ServerHello] version=0x0304 alpn=-",
            "opaque encrypted",
        ]
    );
}

#[test]
fn client_hello_in_three_records() {
    // -groups ffdhe8192 -max_send_frag 512: a 1.2 KB ClientHello in records of 512, 512, 202.
    let segs = segments(SPLIT_CH);
    assert_eq!(segs[0].1[3..5], [2, 0]);
    assert_eq!(
        recorded(SPLIT_CH).facts,
        [
            "tx 0 [ClientHello big.shop.test] sni=big.shop.test alpn=[h2,http/1.1] version=0x0304",
            "rx 0 None [ServerHello] version=0x0304 alpn=-",
            "opaque encrypted",
        ]
    );
}

#[test]
fn hello_retry_request_then_second_client_hello() {
    assert_eq!(
        recorded(HRR).facts,
        [
            "tx 0 [ClientHello hrr.shop.test] sni=hrr.shop.test alpn=[] version=0x0304",
            "rx 0 None [HelloRetryRequest] version=0x0304 alpn=-",
            "tx 1 [ClientHello hrr.shop.test] sni=hrr.shop.test alpn=[] version=0x0304",
            "rx 1 None [ServerHello] version=0x0304 alpn=-",
            "opaque encrypted",
        ]
    );
}

fn ext(t: u16, body: &[u8]) -> Vec<u8> {
    let mut e = t.to_be_bytes().to_vec();
    e.extend_from_slice(&(body.len() as u16).to_be_bytes());
    e.extend_from_slice(body);
    e
}

fn client_hello(exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let all: Vec<u8> = exts.concat();
    b.extend_from_slice(&(all.len() as u16).to_be_bytes());
    b.extend_from_slice(&all);
    handshake(HS_CLIENT_HELLO, &b)
}

fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![
        t,
        (body.len() >> 16) as u8,
        (body.len() >> 8) as u8,
        body.len() as u8,
    ];
    m.extend_from_slice(body);
    m
}

fn records(t: u8, msg: &[u8], frag: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in msg.chunks(frag) {
        out.extend_from_slice(&[t, 3, 1, (c.len() >> 8) as u8, c.len() as u8]);
        out.extend_from_slice(c);
    }
    out
}

fn sni(name: &[u8]) -> Vec<u8> {
    let mut l = vec![0];
    l.extend_from_slice(&(name.len() as u16).to_be_bytes());
    l.extend_from_slice(name);
    let mut b = (l.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&l);
    ext(EXT_SNI, &b)
}

fn alpn(protos: &[&[u8]]) -> Vec<u8> {
    let mut l = Vec::new();
    for p in protos {
        l.push(p.len() as u8);
        l.extend_from_slice(p);
    }
    let mut b = (l.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&l);
    ext(EXT_ALPN, &b)
}

fn client(bytes: &[u8]) -> Outcome {
    run_chunks(&mut TlsParser::new(), &[bytes], &[])
}

#[test]
fn grease_is_ignored_and_the_highest_version_wins() {
    let sv = ext(
        EXT_SUPPORTED_VERSIONS,
        &[8, 0x7a, 0x7a, 0x03, 0x03, 0x03, 0x04, 0x03, 0x02],
    );
    let o = client(&records(
        CT_HANDSHAKE,
        &client_hello(&[ext(0x0a0a, &[]), sv, sni(b"g.test")]),
        100,
    ));
    assert_eq!(
        o.facts[0],
        "tx 0 [ClientHello g.test] sni=g.test alpn=[] version=0x0304"
    );
    assert!(o.anomalies.is_empty());
    assert!(is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x0304));
}

#[test]
fn duplicate_extensions_and_too_many_alpn_are_anomalies() {
    let many: Vec<Vec<u8>> = (0..20).map(|i| vec![b'p', b'a' + i]).collect();
    let many: Vec<&[u8]> = many.iter().map(|v| v.as_slice()).collect();
    let ch = client_hello(&[sni(b"a.test"), sni(b"b.test"), alpn(&many)]);
    let o = client(&records(CT_HANDSHAKE, &ch, 16384));
    assert_eq!(
        o.anomalies,
        [ParserAnomaly::Ambiguous, ParserAnomaly::TooManyHeaders]
    );
    assert!(o.facts[0].starts_with("tx 0 [ClientHello a.test] sni=a.test alpn=[pa,pb,"));
    assert!(o.facts[0].contains(",pp] version=0x0303"));
}

#[test]
fn client_hello_over_many_tiny_records_and_the_size_limit() {
    let ch = client_hello(&[sni(b"tiny.test"), alpn(&[b"h2"])]);
    let o = client(&records(CT_HANDSHAKE, &ch, 1));
    assert_eq!(
        o.facts[0],
        "tx 0 [ClientHello tiny.test] sni=tiny.test alpn=[h2] version=0x0303"
    );
    // A handshake message announcing more than the scratch holds.
    let huge = handshake(HS_CLIENT_HELLO, &vec![0; MAX_HANDSHAKE]);
    let o = client(&records(CT_HANDSHAKE, &huge, 16384));
    assert_eq!(o.anomalies, [ParserAnomaly::MessageTooLarge]);
    assert!(!o.alive);
}

#[test]
fn hostile_records_and_hellos() {
    let good = client_hello(&[sni(b"x.test")]);
    let mut truncated_ext = good.clone();
    let n = truncated_ext.len();
    truncated_ext[n - 7] = 0xff; // SNI name length runs past the extension
    let cases: Vec<(Vec<u8>, ParserAnomaly, Invalid)> = vec![
        (
            b"\x80\x2e\x01\x03\x01".to_vec(),
            ParserAnomaly::BadFraming,
            Invalid::Unsupported,
        ),
        (
            b"\x80\x2e\x01".to_vec(),
            ParserAnomaly::BadFraming,
            Invalid::Unsupported,
        ),
        (
            b"\x63\x03\x03\x00\x10".to_vec(),
            ParserAnomaly::BadFraming,
            Invalid::BadSyntax,
        ),
        (
            b"\x16\x02\x03\x00\x10".to_vec(),
            ParserAnomaly::BadFraming,
            Invalid::BadMagic,
        ),
        (
            b"\x16\x03\x03\xff\xff".to_vec(),
            ParserAnomaly::BadFraming,
            Invalid::BadLength,
        ),
        (
            b"\x16\x03\x03\x00\x00".to_vec(),
            ParserAnomaly::BadFraming,
            Invalid::BadLength,
        ),
        (
            records(CT_HANDSHAKE, &truncated_ext, 16384),
            ParserAnomaly::BadFraming,
            Invalid::BadSyntax,
        ),
        (
            records(CT_HANDSHAKE, &handshake(1, &[3, 3, 0]), 100),
            ParserAnomaly::BadFraming,
            Invalid::BadSyntax,
        ),
    ];
    for (bytes, a, why) in cases {
        let mut p = TlsParser::new();
        let mut sink = crate::redis::testkit::Collect::default();
        let mut conv = crate::redis::testkit::Conv::new(&mut p);
        assert!(
            !conv.push(Direction::ToServer, &bytes, &mut sink),
            "{bytes:?}"
        );
        assert_eq!(sink.anomalies, [a], "{bytes:?}");
        let r = p.feed(
            Direction::ToServer,
            &bytes,
            &mut crate::redis::testkit::Collect::default(),
        );
        if a == ParserAnomaly::BadFraming && why != Invalid::BadSyntax {
            assert_eq!(r, Progress::Invalid(why), "{bytes:?}");
        }
    }
}

#[test]
fn unsolicited_server_hello_and_unanswered_client_hello() {
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[1; 32]);
    sh.extend_from_slice(&[0, 0x13, 0x01, 0]);
    let o = run_chunks(
        &mut TlsParser::new(),
        &[],
        &[&records(CT_HANDSHAKE, &handshake(2, &sh), 100)],
    );
    assert_eq!(o.anomalies, [ParserAnomaly::UnsolicitedResponse]);
    assert_eq!(o.facts, ["opaque encrypted"]);
    let o = client(&records(CT_HANDSHAKE, &client_hello(&[]), 100));
    assert_eq!(
        o.facts,
        [
            "tx 0 [ClientHello] sni=- alpn=[] version=0x0303",
            "unanswered 0"
        ]
    );
}

#[test]
fn after_the_hello_everything_is_consumed_and_gaps_are_fine() {
    let mut bytes = records(CT_HANDSHAKE, &client_hello(&[sni(b"a.b")]), 16384);
    bytes.extend_from_slice(b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x05hello\xff\xff\xff");
    let mut p = TlsParser::new();
    let mut sink = crate::redis::testkit::Collect::default();
    assert_eq!(
        p.feed(Direction::ToServer, &bytes, &mut sink),
        Progress::Done {
            consumed: bytes.len()
        }
    );
    assert_eq!(sink.facts.last().unwrap(), "opaque encrypted");
    assert_eq!(p.gap(Direction::ToServer, 1000), GapOutcome::Skipped);
    // Before that, a gap inside a handshake record cannot be skipped; inside an alert it can.
    let mut p = TlsParser::new();
    p.feed(Direction::ToClient, b"\x15\x03\x03\x00\x10ab", &mut sink);
    assert_eq!(p.gap(Direction::ToClient, 10), GapOutcome::Skipped);
    assert_eq!(p.gap(Direction::ToClient, 10), GapOutcome::GiveUp);
    let mut p = TlsParser::new();
    p.feed(Direction::ToServer, b"\x16\x03\x03\x00\x10ab", &mut sink);
    assert_eq!(p.gap(Direction::ToServer, 1), GapOutcome::GiveUp);
}

#[test]
fn garbage_never_panics() {
    let mut x: u32 = 0xdead_beef;
    let seed = client_hello(&[sni(b"s.test"), alpn(&[b"h2", b"http/1.1"])]);
    for round in 0..3000 {
        let mut ch = seed.clone();
        for _ in 0..(round % 7 + 1) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = (x as usize >> 8) % ch.len();
            ch[i] = x as u8;
        }
        let _ = client(&records(CT_HANDSHAKE, &ch, (x as usize % 300) + 1));
        let _ = run_chunks(
            &mut TlsParser::new(),
            &[],
            &[&records(CT_HANDSHAKE, &ch, 50)],
        );
        let _ = client(&ch);
    }
}

fn server_hello() -> Vec<u8> {
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[1; 32]);
    sh.extend_from_slice(&[0, 0x13, 0x01, 0]);
    let sv = ext(EXT_SUPPORTED_VERSIONS, &[0x03, 0x04]);
    sh.extend_from_slice(&(sv.len() as u16).to_be_bytes());
    sh.extend_from_slice(&sv);
    records(CT_HANDSHAKE, &handshake(HS_SERVER_HELLO, &sh), 16384)
}

/// A key_share extension as large as `n` bytes of post-quantum shares make it.
fn key_share(n: usize) -> Vec<u8> {
    let mut shares = Vec::new();
    shares.extend_from_slice(&0x11ecu16.to_be_bytes()); // X25519MLKEM768
    shares.extend_from_slice(&(n as u16).to_be_bytes());
    shares.extend(std::iter::repeat_n(0x5a, n));
    let mut body = (shares.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(&shares);
    ext(51, &body)
}

#[test]
fn a_3_kb_client_hello_over_two_records_is_judged() {
    let sv = ext(EXT_SUPPORTED_VERSIONS, &[2, 0x03, 0x04]);
    let ch = client_hello(&[sni(b"pq.shop.test"), alpn(&[b"h2"]), sv, key_share(2_950)]);
    assert!(ch.len() > 3_000 && ch.len() < 4_096, "{}", ch.len());
    let c = records(CT_HANDSHAKE, &ch, 2_048);
    assert_eq!(c.len(), ch.len() + 10);
    let segs = vec![
        (Direction::ToServer, c),
        (Direction::ToClient, server_hello()),
    ];
    let o = check_wire_splits(TlsParser::new, &segs, 1);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        o.facts,
        [
            "tx 0 [ClientHello pq.shop.test] sni=pq.shop.test alpn=[h2] version=0x0304",
            "rx 0 None [ServerHello] version=0x0304 alpn=-",
            "opaque encrypted",
        ]
    );
}

#[test]
fn a_client_hello_as_large_as_openssl_accepts_is_judged_and_a_larger_one_blinds() {
    // The largest a ClientHello's own lengths allow (what OpenSSL accepts): a 32-byte
    // session id, 65,534 bytes of cipher suites, 255 compression methods, 65,535 bytes of
    // extensions (key shares and padding first, SNI and ALPN last), in 9 records.
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(32);
    body.extend_from_slice(&[9; 32]);
    body.extend_from_slice(&65_534u16.to_be_bytes());
    body.extend(std::iter::repeat_n([0x13, 0x01], 65_534 / 2).flatten());
    body.push(255);
    body.extend(std::iter::repeat_n(0u8, 255));
    let tail = [sni(b"huge.shop.test"), alpn(&[b"h2", b"http/1.1"])].concat();
    let shares = key_share(60_000);
    let pad = ext(21, &vec![0; 65_535 - tail.len() - shares.len() - 4]);
    let exts = [shares, pad, tail].concat();
    assert_eq!(exts.len(), 65_535);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    assert_eq!(body.len(), 131_396);
    let ch = handshake(HS_CLIENT_HELLO, &body);
    assert!(ch.len() <= MAX_HANDSHAKE);
    let c = records(CT_HANDSHAKE, &ch, 16_384);
    let segs = vec![
        (Direction::ToServer, c.clone()),
        (Direction::ToClient, server_hello()),
    ];
    let o = check_wire_splits(TlsParser::new, &segs, 4_999);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        o.facts[0],
        "tx 0 [ClientHello huge.shop.test] sni=huge.shop.test alpn=[h2,http/1.1] version=0x0303"
    );
    // The scratch is freed once the hello is read.
    let mut p = TlsParser::new();
    run_chunks(&mut p, &[&c], &[]);
    assert!(p.client.hs.capacity() <= KEEP_SCRATCH);

    // A handshake message announcing one byte more than the limit: refused as soon as its
    // header is in, loudly.
    let huge = handshake(HS_CLIENT_HELLO, &vec![0; MAX_HANDSHAKE - 3]);
    let o = client(&records(CT_HANDSHAKE, &huge[..100], 16_384));
    assert!(!o.alive);
    assert_eq!(o.anomalies, [ParserAnomaly::MessageTooLarge]);
    assert!(o.anomalies[0].blinds());
    assert!(o.facts.is_empty(), "{o:?}");
}

#[test]
fn two_host_names_are_ambiguous() {
    let mut l = Vec::new();
    for name in [&b"allowed.test"[..], b"denied.test"] {
        l.push(0);
        l.extend_from_slice(&(name.len() as u16).to_be_bytes());
        l.extend_from_slice(name);
    }
    let mut b = (l.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&l);
    let o = client(&records(
        CT_HANDSHAKE,
        &client_hello(&[ext(EXT_SNI, &b)]),
        16384,
    ));
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert!(o.anomalies[0].blinds());
    assert!(o.facts[0].starts_with("tx 0 [ClientHello allowed.test]"));
}

#[test]
fn encryption_before_any_client_hello_is_not_silent() {
    // A ChangeCipherSpec or application data before the ClientHello: nothing after it is
    // read, so the flow says so with a blinding anomaly rather than just going opaque.
    let hello = records(CT_HANDSHAKE, &client_hello(&[sni(b"late.test")]), 16384);
    for first in [&b"\x14\x03\x03\x00\x01\x01"[..], b"\x17\x03\x03\x00\x02ab"] {
        let o = client(&[first, &hello[..]].concat());
        assert_eq!(o.anomalies, [ParserAnomaly::BadFraming], "{first:?}");
        assert!(o.anomalies[0].blinds());
        assert_eq!(o.facts, ["opaque encrypted"]);
    }
    // After a judged ClientHello the same records are the normal end of the readable part.
    let o = client(&[&hello[..], b"\x14\x03\x03\x00\x01\x01"].concat());
    assert!(o.anomalies.is_empty(), "{o:?}");
}
