//! DNS openings: a message over TCP (after its length) or a UDP datagram, judged by its
//! header and a walk over its first records.

use super::Detection::{self, NeedMore, Proto, Unknown};
use super::{be_prefix_in, be_u16, window};
use crate::AppProto;

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

pub(super) fn dns_tcp(b: &[u8]) -> Detection {
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
pub(super) fn dns_udp(b: &[u8]) -> Detection {
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
