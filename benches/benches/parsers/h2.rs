//! HTTP/2 and gRPC: prior-knowledge connections of concurrent streams, their header
//! blocks from the [`Hpack`] encoder.

use criterion::Criterion;
use dataplane::inspect::ParserRegistry;
use proto_parsers::AppProto;
use traffic_gen::generate::Rng;

use super::hpack::Hpack;
use super::{C, Conversation, S, bench_conversation, hex, json_body};

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

pub(super) fn bench_h2(c: &mut Criterion) {
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
