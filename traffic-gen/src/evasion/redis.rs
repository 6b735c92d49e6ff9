//! Redis tricks: long pipelines, big values, inline commands with escapes, lower case.

use super::REDIS;
use super::capture::{Capture, Conn, PSH, Side};
use crate::generate::MSS;
use crate::wire;

pub(super) fn redis_connect(cap: &mut Capture) -> Conn {
    let mut c = cap.conn((REDIS, 6379));
    c.handshake(cap);
    c
}

pub(super) fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    wire::resp_command(&mut v, args);
    v
}

pub(super) fn simple(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    wire::resp_simple(&mut v, s);
    v
}

pub(super) fn redis_pipeline_10000_ping(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut all = resp(&[b"PING"]).repeat(10_000);
    all.extend_from_slice(&resp(&[b"FLUSHALL"]));
    // The server answers as commands arrive: after every fourth segment, the replies to
    // the commands complete so far.
    let cmd = resp(&[b"PING"]).len();
    let mut answered = 0usize;
    let chunks: Vec<&[u8]> = all.chunks(MSS).collect();
    let mut sent = 0usize;
    for (k, chunk) in chunks.iter().enumerate() {
        let last = k + 1 == chunks.len();
        c.seg(cap, Side::Client, if last { PSH } else { 0 }, chunk);
        sent += chunk.len();
        if k % 4 == 3 || last {
            let done = (sent / cmd).min(10_000);
            let mut r = simple("PONG").repeat(done - answered);
            answered = done;
            if last {
                r.extend_from_slice(&simple("OK"));
            }
            c.send(cap, Side::Server, &r);
        }
    }
    c.ack(cap, Side::Client);
    c.close(cap);
}

pub(super) fn redis_big_set_value(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let value: Vec<u8> = (0..1usize << 20)
        .map(|k| b'A' + ((k * 31 + k / 977) % 26) as u8)
        .collect();
    c.exchange(cap, &resp(&[b"SET", b"blob:1", &value]), &simple("OK"));
    c.exchange(cap, &resp(&[b"FLUSHALL"]), &simple("OK"));
    c.close(cap);
}

pub(super) fn redis_inline_hex_escape(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    c.exchange(cap, b"PING\r\n", &simple("PONG"));
    c.exchange(cap, b"\"\\x46LUSHALL\"\r\n", &simple("OK"));
    c.close(cap);
}

pub(super) fn redis_inline_key_escape(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut r = Vec::new();
    wire::resp_bulk(&mut r, Some(b"hunter2"));
    c.exchange(cap, b"GET \"\\x73ecret:1\"\r\n", &r);
    c.close(cap);
}

pub(super) fn redis_lowercase(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    c.exchange(cap, &resp(&[b"flushall"]), &simple("OK"));
    c.close(cap);
}

pub(super) fn baseline_redis(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut r = Vec::new();
    wire::resp_bulk(&mut r, Some(b"42"));
    c.exchange(cap, &resp(&[b"GET", b"counter:7"]), &r);
    c.exchange(cap, &resp(&[b"FLUSHALL"]), &simple("OK"));
    c.close(cap);
}

pub(super) fn baseline_redis_key(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut r = Vec::new();
    wire::resp_bulk(&mut r, Some(b"hunter2"));
    c.exchange(cap, &resp(&[b"GET", b"secret:1"]), &r);
    c.close(cap);
}
