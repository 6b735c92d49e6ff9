//! HTTP/1.x and HTTP/2 openings: a request line (after any empty lines, with Redis inline
//! commands and RESP arrays as the other candidates a text opening can be), a status line,
//! and a server's first SETTINGS frame.

use super::Detection::{self, NeedMore, Proto, Unknown};
use super::redis::{redis_inline, redis_verb, resp_request};
use super::{Lit, combine, decided, lit, pattern};
use crate::AppProto;
use crate::http::{is_tchar, is_ws, split_while};

/// Methods that open nothing but HTTP: detected at the whitespace after them. `GET` is also
/// a Redis verb and waits for its target.
const HTTP_METHODS: [&[u8]; 8] = [
    b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
];

/// Longest method token that is detected (WebDAV's longest is 16 bytes). Servers such as
/// Go's accept any token; a longer one is left undetected, which the data plane treats as
/// uninspectable rather than as HTTP it let through unread.
pub const MAX_METHOD: usize = 32;

/// The HTTP/2 client connection preface (RFC 9113 section 3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The bytes of a request target (visible ASCII and obs-text, as the HTTP parser takes).
const fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// What a client opens with in text: an HTTP/1 request, a Redis inline command or RESP
/// array, each after any number of empty lines (nginx, Node and Redis skip CR and LF
/// bytes before a request; Go a few after a POST).
pub(super) fn text_request(b: &[u8]) -> Detection {
    let (_, rest) = split_while(b, |c| c == b'\r' || c == b'\n');
    match rest.first() {
        None => NeedMore,
        // `*` opens a RESP array, and is a tchar (a method `*GET` is a token to Go).
        Some(b'*') => combine(resp_request(rest), http_request(rest)),
        Some(&c) if is_tchar(c) => combine(http_request(rest), redis_inline(rest)),
        // redis-server splits an inline command as a shell would (sdssplitargs): blanks
        // before it, and a verb in quotes with escapes (`"\x46LUSHALL"`), are fine to it;
        // HTTP servers refuse both.
        Some(b' ' | b'\t' | b'"' | b'\'') => redis_inline(rest),
        Some(_) => Unknown,
    }
}

/// An HTTP/1 request line as lenient servers read it: any token method, one or more SP or
/// HTAB, a target. Decided as early as no other protocol can still claim the bytes:
///
/// * a method only HTTP has (`POST`...) at the whitespace after it;
/// * an origin-form (`/...`) or absolute-form (`http://`, `https://`, any case) target after
///   a method that is not a Redis verb, or after upper-case `GET` (as before: `GET /x` is
///   HTTP; a Redis inline `GET /x` loses to it);
/// * otherwise (a Redis verb in any case, `DEL /tmp`; `*` for `OPTIONS`; authority form
///   for `CONNECT`; any other target) by what follows the target on the line: whitespace
///   and `HTTP/1.` is HTTP, a line end is not (HTTP/0.9 is not read).
fn http_request(b: &[u8]) -> Detection {
    match lit(b, H2_PREFACE, false) {
        Lit::Full => return Proto(AppProto::Http2),
        Lit::Partial => return NeedMore,
        Lit::No => {}
    }
    let (method, rest) = split_while(b, is_tchar);
    if method.is_empty() || method.len() > MAX_METHOD {
        return Unknown;
    }
    match rest.first() {
        None => return NeedMore,
        Some(&c) if !is_ws(c) => return Unknown,
        Some(_) => {}
    }
    if HTTP_METHODS.contains(&method) {
        return Proto(AppProto::Http);
    }
    let (_, target) = split_while(rest, is_ws);
    let Some(&first) = target.first() else {
        return NeedMore;
    };
    let shared_with_redis = redis_verb(method) && method != b"GET";
    if !shared_with_redis {
        if first == b'/' {
            return Proto(AppProto::Http);
        }
        let http = lit(target, b"http://", true);
        let https = lit(target, b"https://", true);
        if http == Lit::Full || https == Lit::Full {
            return Proto(AppProto::Http);
        }
        if http == Lit::Partial || https == Lit::Partial {
            return NeedMore;
        }
    }
    version_after_target(target)
}

/// Whether a target (its first byte at `target[0]`) is followed on its line by whitespace
/// and `HTTP/1.`.
fn version_after_target(target: &[u8]) -> Detection {
    let (t, after) = split_while(target, is_target_byte);
    if t.is_empty() {
        return Unknown;
    }
    match after.first() {
        None => return NeedMore,
        // A line end (an inline command, HTTP/0.9) or a control byte.
        Some(&c) if !is_ws(c) => return Unknown,
        Some(_) => {}
    }
    let (_, version) = split_while(after, is_ws);
    match lit(version, b"HTTP/1.", false) {
        Lit::Full => Proto(AppProto::Http),
        Lit::Partial => NeedMore,
        Lit::No => Unknown,
    }
}

pub(super) fn http_response(b: &[u8]) -> Detection {
    match lit(b, b"HTTP/1.", false) {
        Lit::Partial => NeedMore,
        Lit::No => Unknown,
        Lit::Full => match b.get(7) {
            None => NeedMore,
            Some(c) if c.is_ascii_digit() => Proto(AppProto::Http),
            Some(_) => Unknown,
        },
    }
}

/// A server's first frame on an HTTP/2 connection is SETTINGS on stream 0, without ACK,
/// carrying a few 6-byte settings (RFC 9113 section 3.4).
pub(super) fn h2_server_settings(b: &[u8]) -> Detection {
    let checks: [fn(u8) -> bool; 9] = [
        |c| c == 0,
        |c| c == 0,
        |c| c % 6 == 0 && c <= 96,
        |c| c == 0x04,
        |c| c == 0,
        |c| c == 0,
        |c| c == 0,
        |c| c == 0,
        |c| c == 0,
    ];
    decided(pattern(b, &checks), AppProto::Http2)
}
