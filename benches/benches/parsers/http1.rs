//! HTTP/1.1: request heads as browsers, API clients and probes write them, and keep-alive
//! conversations with nginx-style responses.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use dataplane::inspect::ParserRegistry;
use proto_parsers::AppProto;
use proto_parsers::contract::StreamParser;
use proto_parsers::http1::Http1Parser;
use traffic_gen::generate::Rng;

use super::{C, Conversation, S, Tally, bench_conversation, hex, json_body, uuid};

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

pub(super) fn bench_http1(c: &mut Criterion) {
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
