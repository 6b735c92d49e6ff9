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
