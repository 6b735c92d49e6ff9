//! gRPC over h2c flows: the HTTP/2 connection, HPACK-coded header blocks, unary calls.

use super::edges::Edge;
use super::script::{Script, chance, fill, hex, uuid};
use crate::generate::{Rng, Side};
use crate::wire::*;

pub(super) fn grpc_request_msg(rng: &mut Rng, method: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    match method {
        "Check" => {}
        "Verify" | "Refresh" | "Revoke" => {
            let len = 64 + rng.below(64) as usize;
            pb_bytes(&mut m, 1, hex(rng, len).as_bytes());
        }
        "BatchQuote" | "List" => {
            for _ in 0..1 + rng.below(12) {
                pb_bytes(&mut m, 1, fill("{sku}", rng).as_bytes());
            }
            pb_varint(&mut m, 2, rng.below(3));
        }
        _ => {
            pb_varint(&mut m, 1, 1 + rng.below(999_999));
            pb_bytes(&mut m, 2, fill("{sku}", rng).as_bytes());
            pb_varint(&mut m, 3, 1 + rng.below(5));
            if chance(rng, 2) {
                pb_bytes(&mut m, 4, uuid(rng).as_bytes());
            }
        }
    }
    m
}

pub(super) fn grpc_response_msg(rng: &mut Rng, method: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    match method {
        "Check" => pb_varint(&mut m, 1, 1), // SERVING
        "List" | "BatchQuote" => {
            for _ in 0..1 + rng.below(12) {
                let mut item = Vec::new();
                pb_bytes(&mut item, 1, fill("{sku}", rng).as_bytes());
                pb_varint(&mut item, 2, rng.below(100_000));
                pb_bytes(&mut m, 1, &item);
            }
        }
        _ => {
            pb_varint(&mut m, 1, rng.below(1_000_000));
            pb_bytes(&mut m, 2, b"ok");
            pb_varint(&mut m, 3, 1_795_327_200 + rng.below(86_400));
        }
    }
    m
}

pub(super) struct H2Conn {
    pub(super) client: HpackEncoder,
    pub(super) server: HpackEncoder,
    pub(super) next_stream: u32,
}

pub(super) fn grpc_headers(
    rng: &mut Rng,
    h: &mut HpackEncoder,
    e: &Edge,
    path: &str,
    ua: &str,
    token: Option<&str>,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(160);
    h.header(&mut b, ":method", "POST", Indexing::Incremental);
    h.header(&mut b, ":scheme", "http", Indexing::Incremental);
    h.header(&mut b, ":path", path, Indexing::Incremental);
    let authority = format!("{}.shop.svc.cluster.local:{}", e.server, e.port);
    h.header(&mut b, ":authority", &authority, Indexing::Incremental);
    h.header(
        &mut b,
        "content-type",
        "application/grpc",
        Indexing::Incremental,
    );
    h.header(&mut b, "user-agent", ua, Indexing::Incremental);
    h.header(&mut b, "te", "trailers", Indexing::Incremental);
    let timeout = format!("{}m", 200 + rng.below(9_800));
    h.header(&mut b, "grpc-timeout", &timeout, Indexing::Without);
    if let Some(t) = token {
        h.header(&mut b, "authorization", t, Indexing::Never);
    }
    if e.client != "nodes" {
        let tp = format!("00-{}-{}-01", hex(rng, 32), hex(rng, 16));
        h.header(&mut b, "traceparent", &tp, Indexing::Without);
    }
    b
}

/// The request of one unary call on the next stream: HEADERS and one DATA with the
/// message, END_STREAM. Returns the stream id.
pub(super) fn grpc_request(
    rng: &mut Rng,
    c: &mut H2Conn,
    e: &Edge,
    path: &str,
    ua: &str,
    token: Option<&str>,
    out: &mut Vec<u8>,
) -> u32 {
    let stream = c.next_stream;
    c.next_stream += 2;
    let block = grpc_headers(rng, &mut c.client, e, path, ua, token);
    h2_frame(out, H2_HEADERS, H2_END_HEADERS, stream, &block);
    let method = path.rsplit('/').next().unwrap_or_default();
    let mut msg = Vec::new();
    grpc_message(&mut msg, &grpc_request_msg(rng, method));
    h2_frame(out, H2_DATA, H2_END_STREAM, stream, &msg);
    stream
}

/// The response to the call on `stream`: HEADERS, DATA, trailers; or trailers only for
/// an error. Header blocks are encoded in the order they go on the wire, which is what
/// keeps the peer's HPACK table in step.
pub(super) fn grpc_response(
    rng: &mut Rng,
    c: &mut H2Conn,
    stream: u32,
    method: &str,
    out: &mut Vec<u8>,
) {
    let status = match rng.below(50) {
        0 => 5,
        1 => 9,
        2 => 14,
        _ => 0,
    };
    let mut block = Vec::with_capacity(64);
    c.server
        .header(&mut block, ":status", "200", Indexing::Incremental);
    c.server.header(
        &mut block,
        "content-type",
        "application/grpc",
        Indexing::Incremental,
    );
    if status == 0 {
        h2_frame(out, H2_HEADERS, H2_END_HEADERS, stream, &block);
        let mut msg = Vec::new();
        grpc_message(&mut msg, &grpc_response_msg(rng, method));
        h2_frame(out, H2_DATA, 0, stream, &msg);
        let mut trailers = Vec::with_capacity(16);
        c.server
            .header(&mut trailers, "grpc-status", "0", Indexing::Incremental);
        h2_frame(
            out,
            H2_HEADERS,
            H2_END_HEADERS | H2_END_STREAM,
            stream,
            &trailers,
        );
    } else {
        // Trailers-only response.
        let code = status.to_string();
        c.server
            .header(&mut block, "grpc-status", &code, Indexing::Incremental);
        let message = match status {
            5 => "sku not found",
            9 => "insufficient stock",
            _ => "upstream unavailable",
        };
        c.server
            .header(&mut block, "grpc-message", message, Indexing::Without);
        h2_frame(
            out,
            H2_HEADERS,
            H2_END_HEADERS | H2_END_STREAM,
            stream,
            &block,
        );
    }
}

pub(super) const GRPC_AGENTS: [&str; 3] = [
    "grpc-go/1.67.1",
    "grpc-java-netty/1.68.1",
    "grpc-node-js/1.12.2",
];

pub(super) fn grpc_flow(
    rng: &mut Rng,
    e: &Edge,
    service: &str,
    methods: &[&str],
    violate: bool,
    sc: &mut Script,
) {
    sc.open();
    let mut c = H2Conn {
        client: HpackEncoder::new(),
        server: HpackEncoder::new(),
        next_stream: 1,
    };
    let ua = if e.client == "nodes" {
        "kube-probe/1.31"
    } else {
        GRPC_AGENTS[rng.below(3) as usize]
    };
    let token = (e.client != "nodes" && chance(rng, 2))
        .then(|| format!("Bearer eyJhbGciOiJFUzI1NiJ9.{}", hex(rng, 64)));
    // Connection start: preface and SETTINGS each way, then their ACKs.
    let mut hello = H2_PREFACE.to_vec();
    h2_settings(&mut hello, &[(0x2, 0), (0x4, 4_194_304), (0x6, 16_384)]);
    h2_window_update(&mut hello, 0, 4_128_769);
    sc.send(Side::Client, &hello);
    let mut shello = Vec::new();
    h2_settings(&mut shello, &[(0x3, 100), (0x4, 4_194_304), (0x5, 16_384)]);
    h2_window_update(&mut shello, 0, 4_128_769);
    h2_settings_ack(&mut shello);
    sc.send(Side::Server, &shello);
    let mut ack = Vec::new();
    h2_settings_ack(&mut ack);

    let calls = if e.client == "nodes" {
        1
    } else {
        2 + rng.below(10) + u64::from(chance(rng, 4)) * rng.below(20)
    };
    let mut done = 0;
    let mut first = true;
    while done < calls {
        // One to three calls in flight; the responses may come back in another order.
        let inflight = (1 + rng.below(3)).min(calls - done);
        let mut reqs = if first {
            std::mem::take(&mut ack)
        } else {
            Vec::new()
        };
        first = false;
        let mut calls_out: Vec<(u32, &str)> = Vec::with_capacity(3);
        for _ in 0..inflight {
            let method = methods[rng.below(methods.len() as u64) as usize];
            let path = format!("/{service}/{method}");
            let stream = grpc_request(rng, &mut c, e, &path, ua, token.as_deref(), &mut reqs);
            calls_out.push((stream, method));
            sc.tx += 1;
        }
        sc.send(Side::Client, &reqs);
        if calls_out.len() > 1 && chance(rng, 2) {
            calls_out.reverse();
        }
        let mut resp = Vec::new();
        for (stream, method) in calls_out {
            grpc_response(rng, &mut c, stream, method, &mut resp);
        }
        sc.send(Side::Server, &resp);
        done += inflight;
        if chance(rng, 8) {
            // BDP estimation: the server pings, the client answers.
            let data = rng.next_u64().to_be_bytes();
            let mut p = Vec::new();
            h2_ping(&mut p, false, data);
            sc.send(Side::Server, &p);
            let mut a = Vec::new();
            h2_ping(&mut a, true, data);
            sc.send(Side::Client, &a);
        } else {
            sc.maybe_delayed_ack(rng);
        }
    }
    if violate {
        let mut rq = Vec::new();
        let stream = grpc_request(
            rng,
            &mut c,
            e,
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ua,
            token.as_deref(),
            &mut rq,
        );
        sc.send(Side::Client, &rq);
        sc.tx += 1;
        sc.denied += 1;
        let mut rs = Vec::new();
        grpc_response(rng, &mut c, stream, "ServerReflectionInfo", &mut rs);
        sc.send(Side::Server, &rs);
    }
    let mut bye = Vec::new();
    h2_goaway(&mut bye, 0, 0);
    sc.send(Side::Client, &bye);
    sc.close(Side::Client);
}
