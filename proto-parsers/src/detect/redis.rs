//! Redis openings: inline commands (a known verb, bare or quoted), RESP request arrays, and
//! a server's replies.

use super::Detection::{self, NeedMore, Proto, Unknown};
use super::{Line, Lit, crlf_number, crlf_token, lit, window};
use crate::AppProto;
use crate::http::split_while;

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

pub(super) fn redis_verb(word: &[u8]) -> bool {
    REDIS_VERBS.iter().any(|v| v.eq_ignore_ascii_case(word))
}

/// A known verb, in any case, followed by a space or the end of the line. Where the same
/// bytes open an HTTP request (`GET /x HTTP/1.1`, `DEL /tmp HTTP/1.1`), `http::http_request`
/// claims them first (`combine` prefers it).
pub(super) fn redis_inline(b: &[u8]) -> Detection {
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
pub(super) fn resp_request(b: &[u8]) -> Detection {
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
pub(super) fn redis_reply(b: &[u8]) -> Detection {
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
