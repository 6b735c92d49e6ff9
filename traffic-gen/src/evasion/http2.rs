//! HTTP/2 tricks: header blocks over CONTINUATION frames, the h2c upgrade.

use super::WEB;
use super::capture::{Capture, Side};
use super::http1::{HOST, http_req};
use crate::wire;

pub(super) const H2_CONTINUATION: u8 = 0x9;

pub(super) fn h2_request_block(
    enc: &mut wire::HpackEncoder,
    method: &str,
    path: &str,
    pad: usize,
) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", HOST),
        ("user-agent", "evasion/1"),
        ("accept", "*/*"),
    ] {
        enc.header(&mut b, n, v, wire::Indexing::Incremental);
    }
    if pad > 0 {
        let v: String = (0..pad).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        enc.header(&mut b, "x-request-context", &v, wire::Indexing::Without);
    }
    b
}

/// A response on `stream`: HEADERS with `:status` and a DATA frame ending the stream.
pub(super) fn h2_response(
    out: &mut Vec<u8>,
    enc: &mut wire::HpackEncoder,
    stream: u32,
    body: &[u8],
) {
    let mut b = Vec::new();
    enc.header(&mut b, ":status", "200", wire::Indexing::Incremental);
    enc.header(
        &mut b,
        "content-type",
        "text/plain",
        wire::Indexing::Incremental,
    );
    enc.header(
        &mut b,
        "content-length",
        &body.len().to_string(),
        wire::Indexing::Without,
    );
    wire::h2_frame(out, wire::H2_HEADERS, wire::H2_END_HEADERS, stream, &b);
    wire::h2_frame(out, wire::H2_DATA, wire::H2_END_STREAM, stream, body);
}

/// The client's preface and SETTINGS.
pub(super) fn h2_client_start(out: &mut Vec<u8>) {
    out.extend_from_slice(wire::H2_PREFACE);
    wire::h2_settings(out, &[(2, 0), (4, 4_194_304), (6, 16_384)]);
    wire::h2_window_update(out, 0, 4_128_769);
}

pub(super) fn h2_server_settings(out: &mut Vec<u8>) {
    wire::h2_settings(out, &[(3, 128), (4, 65_535), (5, 16_384)]);
}

/// An h2 prior-knowledge connection to 8080 whose one request has its header block
/// split into `continuations` CONTINUATION frames after the HEADERS frame.
pub(super) fn h2_prior_knowledge(cap: &mut Capture, continuations: usize) {
    let mut c = cap.conn((WEB, 8080));
    c.handshake(cap);
    let mut hello = Vec::new();
    h2_client_start(&mut hello);
    c.send(cap, Side::Client, &hello);
    let mut s = Vec::new();
    h2_server_settings(&mut s);
    wire::h2_settings_ack(&mut s);
    c.send(cap, Side::Server, &s);

    let mut enc = wire::HpackEncoder::new();
    let mut req = Vec::new();
    wire::h2_settings_ack(&mut req);
    let block = h2_request_block(&mut enc, "GET", "/admin", continuations * 4);
    if continuations == 0 {
        wire::h2_frame(
            &mut req,
            wire::H2_HEADERS,
            wire::H2_END_HEADERS | wire::H2_END_STREAM,
            1,
            &block,
        );
    } else {
        let per = block.len().div_ceil(continuations + 1);
        let mut parts = block.chunks(per).collect::<Vec<_>>();
        // Exactly `continuations` CONTINUATION frames, whatever the rounding.
        while parts.len() < continuations + 1 {
            parts.push(&[]);
        }
        let last = parts.len() - 1;
        for (k, p) in parts.iter().enumerate() {
            let (ty, flags) = match k {
                0 => (wire::H2_HEADERS, wire::H2_END_STREAM),
                k if k == last => (H2_CONTINUATION, wire::H2_END_HEADERS),
                _ => (H2_CONTINUATION, 0),
            };
            wire::h2_frame(&mut req, ty, flags, 1, p);
        }
    }
    let mut senc = wire::HpackEncoder::new();
    let mut resp = Vec::new();
    h2_response(&mut resp, &mut senc, 1, b"admin\n");
    c.exchange(cap, &req, &resp);
    let mut bye = Vec::new();
    wire::h2_goaway(&mut bye, 0, 0);
    c.send(cap, Side::Client, &bye);
    c.close(cap);
}

pub(super) fn http2_continuation_100(cap: &mut Capture) {
    h2_prior_knowledge(cap, 100);
}

pub(super) fn baseline_http2(cap: &mut Capture) {
    h2_prior_knowledge(cap, 0);
}

/// Base64url without padding (RFC 4648 section 5), for `HTTP2-Settings`.
pub fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, &b)| n | u32::from(b) << (16 - 8 * k));
        for k in 0..=c.len() {
            s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
        }
    }
    s
}

pub(super) fn http2_h2c_upgrade(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 8080));
    c.handshake(cap);
    let mut settings = Vec::new();
    for (id, v) in [(2u16, 0u32), (4, 4_194_304)] {
        settings.extend_from_slice(&id.to_be_bytes());
        settings.extend_from_slice(&v.to_be_bytes());
    }
    let up = http_req(
        "GET",
        "/",
        &format!(
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {}\r\n",
            base64url(&settings)
        ),
    );
    c.send(cap, Side::Client, up.as_bytes());
    // 101, then the server's preface (SETTINGS) and the answer to the upgraded request,
    // which is stream 1.
    let mut s =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    h2_server_settings(&mut s);
    let mut senc = wire::HpackEncoder::new();
    h2_response(&mut s, &mut senc, 1, b"index\n");
    c.send(cap, Side::Server, &s);
    let mut req = Vec::new();
    h2_client_start(&mut req);
    wire::h2_settings_ack(&mut req);
    let mut enc = wire::HpackEncoder::new();
    let block = h2_request_block(&mut enc, "GET", "/admin", 0);
    wire::h2_frame(
        &mut req,
        wire::H2_HEADERS,
        wire::H2_END_HEADERS | wire::H2_END_STREAM,
        3,
        &block,
    );
    let mut resp = Vec::new();
    wire::h2_settings_ack(&mut resp);
    h2_response(&mut resp, &mut senc, 3, b"admin\n");
    c.exchange(cap, &req, &resp);
    let mut bye = Vec::new();
    wire::h2_goaway(&mut bye, 0, 0);
    c.send(cap, Side::Client, &bye);
    c.close(cap);
}
