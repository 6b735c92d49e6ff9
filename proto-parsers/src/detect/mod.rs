//! Protocol detection from the first bytes of each direction of a flow, never from the port.
//!
//! [`detect`] is called with the bytes a direction has sent so far (the caller keeps a small
//! buffer while the answer is [`Detection::NeedMore`]). It is monotone, which is what lets
//! the caller decide early: once a prefix of a stream gets `Proto(p)` or `Unknown`, every
//! longer prefix gets the same answer. `NeedMore` is returned only while the bytes are a
//! strict prefix of something a detector would accept.
//!
//! Each detector is a small state-free matcher over the bytes, chosen by the first byte. Where
//! two protocols can share a first byte (a MySQL greeting's length byte is arbitrary; `GET `
//! opens both HTTP and Redis inline commands; a CR or LF byte is both a DNS length and an
//! empty line before a request), `combine` answers `Proto` only once every other candidate
//! has ruled itself out, which keeps the whole function monotone.
//!
//! HTTP/1 requests are detected whatever a lenient server accepts (see `http::http_request`):
//! empty lines before the request, any token as method in any case, runs of spaces and
//! tabs. Where a prefix cannot be decided before the caller's buffer fills (hundreds of
//! empty lines or spaces, a method over [`MAX_METHOD`], a Redis verb followed by a long
//! target), the flow ends undetected, which the data plane treats as uninspectable.
//!
//! UDP payloads are whole datagrams: a short one is not "more to come", so UDP detection never
//! answers `NeedMore`.
//!
//! No allocation, no indexing that can panic, work linear in the bytes given (most matchers
//! look at a few dozen bytes; the DNS question walk at most [`DNS_LOOKAHEAD`] bytes over
//! TCP, and over UDP a name's budgets, 255 bytes of labels and as many compression pointers
//! as the parser follows; the HTTP request line and empty lines before it as far as they go, which the caller bounds).

mod dns;
mod http;
mod mysql;
mod postgres;
mod redis;
#[cfg(test)]
mod tests;
mod tls;

use crate::{AppProto, Direction};
use Detection::{NeedMore, Proto, Unknown};
pub use dns::DNS_LOOKAHEAD;
use dns::{dns_tcp, dns_udp};
pub use http::{H2_PREFACE, MAX_METHOD};
use http::{h2_server_settings, http_response, text_request};
use mysql::mysql_greeting;
use postgres::{postgres_auth, postgres_frontend};
use redis::redis_reply;
use tls::{HS_CLIENT_HELLO, HS_SERVER_HELLO, tls_hello};

/// The answer for one direction's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    Proto(AppProto),
    /// A strict prefix of something recognisable: call again with more bytes.
    NeedMore,
    /// Not a protocol this detector knows, and no more bytes will change that.
    Unknown,
}

/// The transport that carries the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Detects the application protocol from the first bytes one direction sent.
///
/// `ToServer` recognises client openings (HTTP/1.x requests, the HTTP/2 preface, TLS
/// ClientHello, PostgreSQL startup/SSL/GSSENC/cancel requests, Redis RESP arrays and inline
/// commands, DNS over TCP). `ToClient` recognises what a server says first, or what a flow
/// picked up mid-stream shows (MySQL greeting, HTTP/1.x status line, HTTP/2 server SETTINGS,
/// TLS ServerHello, Redis replies, PostgreSQL authentication requests). Over UDP, DNS
/// queries and responses in either direction.
pub fn detect(transport: Transport, dir: Direction, first_bytes: &[u8]) -> Detection {
    let b = first_bytes;
    match transport {
        Transport::Udp => dns_udp(b),
        Transport::Tcp => {
            let Some(&first) = b.first() else {
                return NeedMore;
            };
            match dir {
                Direction::ToServer => match first {
                    0x16 => tls_hello(b, HS_CLIENT_HELLO),
                    0x00 => combine(postgres_frontend(b), dns_tcp(b)),
                    // Empty lines before a request (servers skip them), or a DNS length.
                    b'\r' | b'\n' => combine(text_request(b), dns_tcp(b)),
                    0x01..=0x0f => dns_tcp(b),
                    _ => text_request(b),
                },
                Direction::ToClient => {
                    let other = match first {
                        0x16 => tls_hello(b, HS_SERVER_HELLO),
                        b'H' => http_response(b),
                        b'R' => postgres_auth(b),
                        b'+' | b'-' | b':' | b'$' | b'*' | b'%' => redis_reply(b),
                        0x00 => h2_server_settings(b),
                        _ => Unknown,
                    };
                    combine(other, mysql_greeting(b))
                }
            }
        }
    }
}

/// Joins two candidates' answers for the same bytes. `a` wins if both match at once; either
/// still undecided keeps the whole undecided, so a prefix never commits to one protocol
/// while another could still claim the stream.
const fn combine(a: Detection, b: Detection) -> Detection {
    match (a, b) {
        (NeedMore, _) | (_, NeedMore) => NeedMore,
        (Proto(p), _) | (Unknown, Proto(p)) => Proto(p),
        (Unknown, Unknown) => Unknown,
    }
}

/// How `b` compares with a literal, over the bytes both have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lit {
    /// `b` starts with the whole literal.
    Full,
    /// `b` is a strict prefix of the literal.
    Partial,
    No,
}

fn lit(b: &[u8], literal: &[u8], case_insensitive: bool) -> Lit {
    for (i, &want) in literal.iter().enumerate() {
        let Some(&got) = b.get(i) else {
            return Lit::Partial;
        };
        let same = if case_insensitive {
            got.eq_ignore_ascii_case(&want)
        } else {
            got == want
        };
        if !same {
            return Lit::No;
        }
    }
    Lit::Full
}

/// Whether the big-endian number whose first bytes are `prefix` (of `width` bytes in all)
/// can still lie in `lo..=hi`. The completions of a prefix form one interval, padded with
/// zeros at the bottom and 0xff at the top, so this is exact.
fn be_prefix_in(prefix: &[u8], width: usize, lo: u32, hi: u32) -> bool {
    let mut min = 0u64;
    let mut max = 0u64;
    for i in 0..width {
        let (a, z) = match prefix.get(i) {
            Some(&v) => (v, v),
            None => (0x00, 0xff),
        };
        min = (min << 8) | u64::from(a);
        max = (max << 8) | u64::from(z);
    }
    min <= u64::from(hi) && max >= u64::from(lo)
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    match (b.get(at), b.get(at.wrapping_add(1))) {
        (Some(&h), Some(&l)) => Some(u16::from_be_bytes([h, l])),
        _ => None,
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// `b[from..]` restricted to at most `width` bytes (empty if `from` is past the end).
fn window(b: &[u8], from: usize, width: usize) -> &[u8] {
    let rest = b.get(from..).unwrap_or_default();
    rest.get(..width).unwrap_or(rest)
}

/// The result of scanning a CRLF-terminated token.
enum Line {
    /// The token ended with CRLF; the index just after it.
    End(usize),
    More,
    Bad,
}

/// Scans `b[from..]` for up to `max` bytes that satisfy `ok`, then CRLF. At least `min`
/// bytes are required before the CRLF.
fn crlf_token(b: &[u8], from: usize, min: usize, max: usize, ok: impl Fn(u8) -> bool) -> Line {
    let mut i = from;
    loop {
        let Some(&c) = b.get(i) else {
            return Line::More;
        };
        let n = i - from;
        if c == b'\r' {
            if n < min {
                return Line::Bad;
            }
            return match b.get(i + 1) {
                None => Line::More,
                Some(b'\n') => Line::End(i + 2),
                Some(_) => Line::Bad,
            };
        }
        if n >= max || !ok(c) {
            return Line::Bad;
        }
        i += 1;
    }
}

/// An optionally negative decimal of 1..=`max_digits` digits, then CRLF.
fn crlf_number(b: &[u8], from: usize, max_digits: usize, negative_ok: bool) -> Line {
    let start = if negative_ok && b.get(from) == Some(&b'-') {
        from + 1
    } else {
        from
    };
    crlf_token(b, start, 1, max_digits, |c| c.is_ascii_digit())
}

/// Checks `b` byte by byte against `checks`: `Some(true)` when all are present and pass,
/// `None` while the present ones pass but some are missing, `Some(false)` on a failure.
fn pattern(b: &[u8], checks: &[fn(u8) -> bool]) -> Option<bool> {
    for (i, check) in checks.iter().enumerate() {
        let &c = b.get(i)?;
        if !check(c) {
            return Some(false);
        }
    }
    Some(true)
}

fn decided(found: Option<bool>, app: AppProto) -> Detection {
    match found {
        Some(true) => Proto(app),
        Some(false) => Unknown,
        None => NeedMore,
    }
}
