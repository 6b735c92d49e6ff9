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
//! HTTP/1 requests are detected whatever a lenient server accepts (see [`http_request`]):
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

use crate::{AppProto, Direction};
use Detection::{NeedMore, Proto, Unknown};

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

// ---------------------------------------------------------------------------------------
// HTTP/1.x and HTTP/2

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

/// RFC 9110 `tchar`: the bytes of a method (and of a Redis verb).
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

const fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The bytes of a request target (visible ASCII and obs-text, as the HTTP parser takes).
const fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// `b` split after its longest prefix of bytes that satisfy `ok`.
fn split_while(b: &[u8], ok: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = b.iter().position(|&c| !ok(c)).unwrap_or(b.len());
    (
        b.get(..n).unwrap_or_default(),
        b.get(n..).unwrap_or_default(),
    )
}

/// What a client opens with in text: an HTTP/1 request, a Redis inline command or RESP
/// array, each after any number of empty lines (nginx, Node and Redis skip CR and LF
/// bytes before a request; Go a few after a POST).
fn text_request(b: &[u8]) -> Detection {
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

fn http_response(b: &[u8]) -> Detection {
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

/// A server's first frame on an HTTP/2 connection is SETTINGS on stream 0, without ACK,
/// carrying a few 6-byte settings (RFC 9113 section 3.4).
fn h2_server_settings(b: &[u8]) -> Detection {
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

// ---------------------------------------------------------------------------------------
// TLS

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
/// A ServerHello body is at least version, random, session id length, suite, compression:
/// 38 bytes, plus the 4-byte handshake header. A ClientHello is longer still.
const TLS_MIN_RECORD: u32 = 42;
/// RFC 8446 section 5.2: a record never exceeds 2^14 + 2048 bytes.
const TLS_MAX_RECORD: u32 = (1 << 14) + 2048;

/// A handshake record (type 22) whose first message is `hs_type`, with a record version
/// 3.0..=3.4 (TLS 1.3 puts 0x0301 or 0x0303 here) and a hello version 3.0..=3.4 (TLS 1.3
/// keeps 0x0303 and negotiates in an extension).
fn tls_hello(b: &[u8], hs_type: u8) -> Detection {
    if !be_prefix_in(window(b, 3, 2), 2, TLS_MIN_RECORD, TLS_MAX_RECORD) {
        return Unknown;
    }
    let checks: [fn(u8) -> bool; 5] = [
        |c| c == 0x16,
        |c| c == 0x03,
        |c| c <= 0x04,
        |_| true,
        |_| true,
    ];
    match pattern(b, &checks) {
        Some(false) => return Unknown,
        None => return NeedMore,
        Some(true) => {}
    }
    match b.get(5) {
        None => return NeedMore,
        Some(&t) if t != hs_type => return Unknown,
        Some(_) => {}
    }
    // Handshake length (3 bytes): a hello under 64 KiB, so its top byte is zero. Then the
    // hello's own version.
    let rest: [fn(u8) -> bool; 5] = [|c| c == 0, |_| true, |_| true, |c| c == 0x03, |c| c <= 0x04];
    decided(
        pattern(b.get(6..).unwrap_or_default(), &rest),
        AppProto::Tls,
    )
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// Codes of the untyped first message a PostgreSQL client sends (protocol docs, "Message
/// Formats"): `(length range, code range)`.
const PG_FIRST: [((u32, u32), (u32, u32)); 4] = [
    // StartupMessage, protocol 3.x (3.0; 3.2 since PostgreSQL 18). The server refuses
    // startup packets over 10000 bytes (MAX_STARTUP_PACKET_LENGTH).
    ((9, 10_000), (0x0003_0000, 0x0003_00ff)),
    // SSLRequest.
    ((8, 8), (80_877_103, 80_877_103)),
    // GSSENCRequest.
    ((8, 8), (80_877_104, 80_877_104)),
    // CancelRequest: process id and a secret key of 4 bytes, or up to 256 with protocol 3.2.
    ((16, 268), (80_877_102, 80_877_102)),
];

fn postgres_frontend(b: &[u8]) -> Detection {
    let len = window(b, 0, 4);
    let code = window(b, 4, 4);
    let alive = PG_FIRST.iter().any(|&((llo, lhi), (clo, chi))| {
        be_prefix_in(len, 4, llo, lhi) && be_prefix_in(code, 4, clo, chi)
    });
    if !alive {
        Unknown
    } else if b.len() >= 8 {
        Proto(AppProto::Postgres)
    } else {
        NeedMore
    }
}

/// A server's authentication request: `'R'`, int32 length, int32 method, where the length
/// fits the method.
fn postgres_auth(b: &[u8]) -> Detection {
    if b.first() != Some(&b'R')
        || !be_prefix_in(window(b, 1, 4), 4, 8, 2048)
        || !be_prefix_in(window(b, 5, 4), 4, 0, 12)
    {
        return Unknown;
    }
    let (Some(len), Some(method)) = (be_u32(b, 1), be_u32(b, 5)) else {
        return NeedMore;
    };
    let fits = match method {
        // Ok, KerberosV5, CleartextPassword, GSS, SSPI: no payload.
        0 | 2 | 3 | 7 | 9 => len == 8,
        // MD5Password: a 4-byte salt.
        5 => len == 12,
        // GSSContinue, SASL (mechanism list), SASLContinue, SASLFinal: some payload.
        8 | 10..=12 => len > 8,
        _ => false,
    };
    if fits {
        Proto(AppProto::Postgres)
    } else {
        Unknown
    }
}

// ---------------------------------------------------------------------------------------
// MySQL / MariaDB

/// The smallest protocol-10 greeting: version byte, a 1-char version and NUL, connection
/// id, 8 bytes of scramble, filler, 2 capability bytes.
const MYSQL_MIN_GREETING: usize = 18;
const MYSQL_MAX_GREETING: usize = 1023;
const MYSQL_MAX_VERSION: usize = 64;

/// A server greeting: 3-byte little-endian payload length, sequence 0, protocol version 10,
/// then a NUL-terminated version string that starts with a digit (`8.0.36`,
/// `5.5.5-10.11.6-MariaDB`).
fn mysql_greeting(b: &[u8]) -> Detection {
    if let (Some(&lo), Some(&hi)) = (b.first(), b.get(1)) {
        // The third length byte must be zero, so two bytes already give the length.
        let len = usize::from(lo) | (usize::from(hi) << 8);
        if !(MYSQL_MIN_GREETING..=MYSQL_MAX_GREETING).contains(&len) {
            return Unknown;
        }
    }
    let head: [fn(u8) -> bool; 6] = [
        |_| true,
        |_| true,
        |c| c == 0,
        |c| c == 0,
        |c| c == 10,
        |c| c.is_ascii_digit(),
    ];
    match pattern(b, &head) {
        Some(false) => return Unknown,
        None => return NeedMore,
        Some(true) => {}
    }
    for i in 6..5 + MYSQL_MAX_VERSION {
        match b.get(i) {
            None => return NeedMore,
            Some(0) => return Proto(AppProto::Mysql),
            Some(0x20..=0x7e) => {}
            Some(_) => return Unknown,
        }
    }
    Unknown
}

// ---------------------------------------------------------------------------------------
// Redis

/// Commands a person types at a Redis server over telnet or `nc` (inline protocol). Client
/// libraries and redis-cli send RESP arrays instead, which [`resp_request`] recognises.
const REDIS_VERBS: [&[u8]; 64] = [
    b"PING",
    b"AUTH",
    b"HELLO",
    b"GET",
    b"SET",
    b"DEL",
    b"EXISTS",
    b"KEYS",
    b"SCAN",
    b"INFO",
    b"CONFIG",
    b"FLUSHALL",
    b"FLUSHDB",
    b"SELECT",
    b"QUIT",
    b"ECHO",
    b"INCR",
    b"INCRBY",
    b"DECR",
    b"EXPIRE",
    b"TTL",
    b"PTTL",
    b"PERSIST",
    b"MGET",
    b"MSET",
    b"SETEX",
    b"SETNX",
    b"GETSET",
    b"GETDEL",
    b"APPEND",
    b"STRLEN",
    b"TYPE",
    b"RENAME",
    b"HGET",
    b"HSET",
    b"HDEL",
    b"HGETALL",
    b"HKEYS",
    b"LPUSH",
    b"RPUSH",
    b"LPOP",
    b"RPOP",
    b"LRANGE",
    b"LLEN",
    b"SADD",
    b"SREM",
    b"SMEMBERS",
    b"ZADD",
    b"ZRANGE",
    b"PUBLISH",
    b"SUBSCRIBE",
    b"MULTI",
    b"EXEC",
    b"DEBUG",
    b"CLIENT",
    b"MONITOR",
    b"SHUTDOWN",
    b"DBSIZE",
    b"EVAL",
    b"SCRIPT",
    b"SAVE",
    b"BGSAVE",
    b"REPLICAOF",
    b"SLAVEOF",
];

fn redis_verb(word: &[u8]) -> bool {
    REDIS_VERBS.iter().any(|v| v.eq_ignore_ascii_case(word))
}

/// A known verb, in any case, followed by a space or the end of the line. Where the same
/// bytes open an HTTP request (`GET /x HTTP/1.1`, `DEL /tmp HTTP/1.1`), [`http_request`]
/// claims them first (`combine` prefers it).
fn redis_inline(b: &[u8]) -> Detection {
    let (_, b) = split_while(b, |c| c == b' ' || c == b'\t');
    if b.is_empty() {
        return NeedMore;
    }
    if let Some(&q) = b.first().filter(|&&c| c == b'"' || c == b'\'') {
        return redis_quoted_verb(b, q);
    }
    let mut more = false;
    for verb in REDIS_VERBS {
        if lit(b, verb, true) == Lit::No {
            continue;
        }
        match b.get(verb.len()) {
            None => more = true,
            Some(b' ' | b'\n') => return Proto(AppProto::Redis),
            Some(b'\r') => match b.get(verb.len() + 1) {
                None => more = true,
                Some(b'\n') => return Proto(AppProto::Redis),
                Some(_) => {}
            },
            Some(_) => {}
        }
    }
    if more { NeedMore } else { Unknown }
}

/// An inline command whose verb is quoted: `"..."` with redis-server's escapes (`\xHH`,
/// `\n`, `\"`, ...) or `'...'` (only `\'`), decoded and matched against the verbs, the
/// closing quote followed by a blank or the line end.
fn redis_quoted_verb(b: &[u8], q: u8) -> Detection {
    let mut verb = [0u8; 24];
    let mut n = 0usize;
    let mut i = 1usize;
    loop {
        let Some(&c) = b.get(i) else {
            return NeedMore;
        };
        let byte = if c == q {
            break;
        } else if c == b'\\' {
            let Some(&e) = b.get(i + 1) else {
                return NeedMore;
            };
            if q == b'\'' {
                i += 2;
                if e == b'\'' { b'\'' } else { return Unknown }
            } else if e == b'x' {
                let (Some(&h), Some(&l)) = (b.get(i + 2), b.get(i + 3)) else {
                    return NeedMore;
                };
                let hex = |d: u8| (d as char).to_digit(16);
                let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                    return Unknown;
                };
                i += 4;
                (h * 16 + l) as u8
            } else {
                i += 2;
                match e {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'a' => 7,
                    other => other,
                }
            }
        } else {
            i += 1;
            c
        };
        match verb.get_mut(n) {
            Some(slot) => *slot = byte,
            None => return Unknown,
        }
        n += 1;
    }
    let decoded = verb.get(..n).unwrap_or_default();
    match b.get(i + 1) {
        None => return NeedMore,
        Some(b' ' | b'\t' | b'\r' | b'\n') => {}
        Some(_) => return Unknown,
    }
    let known = REDIS_VERBS.iter().any(|v| v.eq_ignore_ascii_case(decoded));
    if known {
        Proto(AppProto::Redis)
    } else {
        Unknown
    }
}

/// A command as a RESP array of bulk strings: `*<count>\r\n$`.
fn resp_request(b: &[u8]) -> Detection {
    match crlf_number(b, 1, 7, false) {
        Line::More => NeedMore,
        Line::Bad => Unknown,
        Line::End(i) => match b.get(i) {
            None => NeedMore,
            Some(b'$') => Proto(AppProto::Redis),
            Some(_) => Unknown,
        },
    }
}

/// RESP2/RESP3 type bytes that may open an element of an aggregate reply.
const RESP_TYPES: &[u8] = b"+-:$*%_#,(=~>!|";

/// A reply: simple string, error, integer, bulk string, array, or (RESP3, the answer to
/// `HELLO 3`) map, each with the content its type allows.
fn redis_reply(b: &[u8]) -> Detection {
    let line = match b.first() {
        Some(b'+') => crlf_token(b, 1, 1, 128, |c| (0x20..=0x7e).contains(&c)),
        Some(b'-') => return redis_error(b),
        Some(b':') => crlf_number(b, 1, 20, true),
        Some(b'$') => nullable_count(b, 10),
        Some(b'*' | b'%') => match nullable_count(b, 7) {
            // Null (`*-1`) and empty (`*0`) aggregates have no element to look at.
            Line::End(i) if !matches!(b.get(1), Some(b'-' | b'0')) => match b.get(i) {
                None => Line::More,
                Some(t) if RESP_TYPES.contains(t) => Line::End(i + 1),
                Some(_) => Line::Bad,
            },
            other => other,
        },
        _ => Line::Bad,
    };
    match line {
        Line::End(_) => Proto(AppProto::Redis),
        Line::More => NeedMore,
        Line::Bad => Unknown,
    }
}

/// A length that is either `-1` (null) or a count, then CRLF.
fn nullable_count(b: &[u8], max_digits: usize) -> Line {
    if b.get(1) == Some(&b'-') {
        return match lit(window(b, 1, 4), b"-1\r\n", false) {
            Lit::Full => Line::End(5),
            Lit::Partial => Line::More,
            Lit::No => Line::Bad,
        };
    }
    crlf_number(b, 1, max_digits, false)
}

/// `-ERR ...`, `-WRONGTYPE ...`, `-NOAUTH ...`: an upper-case error code, then a space or
/// the end of the line.
fn redis_error(b: &[u8]) -> Detection {
    for i in 1..=33 {
        match b.get(i) {
            None => return NeedMore,
            Some(b'A'..=b'Z') => {}
            Some(b' ') if i > 1 => return Proto(AppProto::Redis),
            Some(b'\r') if i > 1 => {
                return match b.get(i + 1) {
                    None => NeedMore,
                    Some(b'\n') => Proto(AppProto::Redis),
                    Some(_) => Unknown,
                };
            }
            Some(_) => return Unknown,
        }
    }
    Unknown
}

// ---------------------------------------------------------------------------------------
// DNS

/// How much of a DNS message over TCP is examined before deciding: the header and the
/// first 64 bytes of the question name cover the first label whole. Bounded so that the
/// caller's detection buffer suffices for any query.
pub const DNS_LOOKAHEAD: usize = 12 + 64;

/// DNS over TCP never carries less than a header and a root question; this detector does
/// not expect a query larger than 4 KiB (a first length byte of at most 0x0f keeps the
/// first-byte dispatch free of ASCII and TLS).
const DNS_TCP_MIN: u32 = 17;
const DNS_TCP_MAX: u32 = 4095;
/// A question is at least a root name, a type and a class; a resource record at least a
/// root owner, type, class, TTL and RDLENGTH.
const DNS_MIN_QUESTION: usize = 5;
const DNS_MIN_RR: usize = 11;

enum Walk {
    Ok,
    More,
    Bad,
}

fn dns_tcp(b: &[u8]) -> Detection {
    if !be_prefix_in(window(b, 0, 2), 2, DNS_TCP_MIN, DNS_TCP_MAX) {
        return Unknown;
    }
    let Some(len) = be_u16(b, 0) else {
        return NeedMore;
    };
    let len = usize::from(len);
    let limit = len.min(DNS_LOOKAHEAD);
    let view = window(b, 2, limit);
    match dns_walk(view, len, limit, true) {
        Walk::Ok => Proto(AppProto::Dns),
        Walk::Bad => Unknown,
        Walk::More if view.len() < limit => NeedMore,
        // The message ends before its question does.
        Walk::More if len <= DNS_LOOKAHEAD => Unknown,
        Walk::More => Proto(AppProto::Dns),
    }
}

/// A UDP datagram is one whole DNS message, query or response.
fn dns_udp(b: &[u8]) -> Detection {
    match dns_walk(b, b.len(), b.len(), false) {
        Walk::Ok => Proto(AppProto::Dns),
        Walk::More | Walk::Bad => Unknown,
    }
}

/// Checks a DNS header (RFC 1035 section 4.1.1) and its question, in wire order, as far as
/// `m` goes. `len` is the whole message's length (the datagram, or the TCP length prefix)
/// and `limit` how much of it this detector may ever look at (`m` is a prefix of those
/// `limit` bytes).
///
/// What decides is what a server needs to act on a request, not flag values: the opcode
/// is QUERY, NOTIFY or UPDATE (the ones servers implement; the others get NOTIMP); there
/// is exactly one question (RFC 9619 for QUERY; NOTIFY and UPDATE's zone section too);
/// the other counts fit in the message, each record taking at least its minimal size
/// (EDNS options of any kind and size, an UPDATE's records with empty RDATA all do); the
/// question name decodes (labels of 1..=63 bytes, at most 255 bytes, compression pointers
/// followed forward or back as the parser does) and is followed by a type other than 0
/// and a class IN, CH, HS, NONE or ANY (the top bit set for mDNS's unicast response).
/// Header bits (AA, TC, RD, RA, the reserved Z, AD, CD) and the rcode are not looked at:
/// dig sets any of them (`+zflag`, `+adflag`, `+cdflag`, `+aaflag`) and servers answer.
fn dns_walk(m: &[u8], len: usize, limit: usize, query_only: bool) -> Walk {
    let Some(&f1) = m.get(2) else {
        return Walk::More;
    };
    let response = f1 & 0x80 != 0;
    let opcode = (f1 >> 3) & 0x0f;
    let implemented = matches!(
        opcode,
        crate::dns::OPCODE_QUERY | crate::dns::OPCODE_NOTIFY | crate::dns::OPCODE_UPDATE
    );
    if !implemented || (response && query_only) {
        return Walk::Bad;
    }
    // The flags' second byte (RA, Z, AD, CD, rcode) may be anything.
    let mut records = 0usize;
    for at in [4, 6, 8, 10] {
        let Some(n) = be_u16(m, at) else {
            return Walk::More;
        };
        if at == 4 && n != 1 {
            return Walk::Bad;
        }
        records += usize::from(n);
    }
    // `records` counts the question too.
    if 12 + DNS_MIN_QUESTION + (records - 1) * DNS_MIN_RR > len {
        return Walk::Bad;
    }
    let at = match dns_question_name(m, len, limit) {
        Ok(at) => at,
        Err(w) => return w,
    };
    let Some(qtype) = be_u16(m, at) else {
        return Walk::More;
    };
    if qtype == 0 {
        return Walk::Bad;
    }
    let Some(qclass) = be_u16(m, at + 2) else {
        return Walk::More;
    };
    match qclass & 0x7fff {
        1 | 3 | 4 | 254 | 255 => Walk::Ok,
        _ => Walk::Bad,
    }
}

/// Walks the question name at offset 12 of `m`; returns the offset just past it where it
/// is written (past its first pointer). A pointer to an offset at or past `len` is bad;
/// one to an offset the detector never sees (at or past `limit`) ends the walk there, as
/// far as this detector can tell the name is good.
fn dns_question_name(m: &[u8], len: usize, limit: usize) -> Result<usize, Walk> {
    let mut pos = 12usize;
    let mut end = None;
    let mut wire = 1usize;
    let mut jumps = 0usize;
    loop {
        let Some(&l) = m.get(pos) else {
            return Err(Walk::More);
        };
        match l & 0xc0 {
            0x00 if l == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                wire += usize::from(l) + 1;
                if wire > crate::dns::MAX_NAME {
                    return Err(Walk::Bad);
                }
                pos += usize::from(l) + 1;
            }
            0xc0 => {
                let Some(&low) = m.get(pos + 1) else {
                    return Err(Walk::More);
                };
                let target = (usize::from(l & 0x3f) << 8) | usize::from(low);
                jumps += 1;
                if target >= len || jumps > crate::dns::MAX_POINTERS {
                    return Err(Walk::Bad);
                }
                let after = *end.get_or_insert(pos + 2);
                if target >= limit {
                    return Ok(after);
                }
                pos = target;
            }
            _ => return Err(Walk::Bad),
        }
    }
}

#[cfg(test)]
mod tests;
