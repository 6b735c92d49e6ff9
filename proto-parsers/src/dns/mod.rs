//! DNS over UDP and TCP parser.
//!
//! [`DnsParser::udp`] takes each `feed` as one datagram (one message); [`DnsParser::tcp`]
//! reads the 2-byte length prefix of DNS over TCP and leaves a message in the caller's
//! carry until it is whole, several messages per connection: an unfinished one is at most
//! its prefix and 65 534 bytes, which the default [`StreamParser::max_carry`] holds.
//!
//! A request (QR = 0) with opcode QUERY, NOTIFY or UPDATE is reported as a [`DnsQuestion`]
//! (for UPDATE, the zone section's name and type SOA, as tshark shows it) with its name
//! decoded into the parser's scratch: dotted, lower-cased, no trailing dot, bytes outside
//! printable ASCII and dots inside a label escaped as `\DDD` / `\.` (as dig prints them),
//! so the name policy sees is never ambiguous. Header bits other than QR and the opcode
//! (AA, TC, RD, RA, the reserved Z bit, AD, CD, the rcode) and the other sections (EDNS
//! options of any kind and size, update records with empty RDATA) do not change what is
//! reported. A response (QR = 1) pairs with its query by message id through a bounded
//! table; its rcode (extended by EDNS when an OPT record carries the upper bits) is the
//! status. The message is classified by its QR bit, not by the direction it travelled:
//! servers drop a QR = 1 message sent to them.
//!
//! Names are decoded as the most lenient servers read them (dnsmasq, Unbound): a
//! compression pointer may point anywhere in the message, forward too (RFC 1035 speaks of
//! a "prior occurrence", and BIND and Knot insist on it; Wireshark and Suricata follow any
//! pointer too). Loops are cut by the budgets: at most [`MAX_POINTERS`] jumps and
//! [`MAX_NAME`] bytes of labels.
//!
//! What no server acts on is a non-blinding [`ParserAnomaly::Resync`] (the parser goes on
//! at the next message: over UDP the next datagram, over TCP the next length prefix): a
//! message shorter than a header, a request with an opcode no server implements (they
//! answer NOTIMP) or without a question, a question that runs past the end of the message
//! or uses a reserved label type (every server refuses it, FORMERR), a response whose
//! sections do not add up (it still pairs). So a stray datagram on a DNS flow never makes
//! it uninspectable, and the next query is reported. What some server may act on but this
//! parser cannot read is blinding: a name past the budgets above (dnsmasq reads names of
//! up to 1025 characters and follows 255 pointers) is [`ParserAnomaly::BadFraming`], and
//! a request with several questions [`ParserAnomaly::Ambiguous`] (its first question
//! reported). A query past the [`MAX_OUTSTANDING`] ones waiting is still reported; only
//! its answer is not paired ([`ParserAnomaly::TooManyTransactions`], which does not
//! blind).

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use crate::contract::{Fact, FactSink, GapOutcome, ParserAnomaly, Progress, StreamParser};
use crate::facts::{
    DnsAnswer, DnsQuestion, RequestDetail, ResponseDetail, dns_qtype_name, dns_rcode_name,
};
use crate::{AppProto, Direction};

/// Queries waiting for their answer, per flow.
pub const MAX_OUTSTANDING: usize = 128;
/// Most bytes a DNS over TCP message takes with its length prefix.
pub const MAX_TCP_MESSAGE: usize = 2 + u16::MAX as usize;
// What the caller carries of an unfinished message (all of it but its last byte) fits.
const _: () = assert!(MAX_TCP_MESSAGE - 1 <= crate::contract::DEFAULT_MAX_CARRY);
/// Compression pointers followed in one name: as many as Unbound follows (dnsmasq 255).
/// A compressor never chains more than a name has labels (127); only pointers to pointers
/// come near this.
pub const MAX_POINTERS: usize = 256;
/// A name's longest wire form (RFC 1035).
pub const MAX_NAME: usize = 255;
/// Longest summary (`name TYPE`).
pub const MAX_SUMMARY: usize = 256;
const HEADER: usize = 12;
const TYPE_OPT: u16 = 41;
/// Opcodes whose requests carry a question servers act on (RFC 1035, 1996, 2136).
pub const OPCODE_QUERY: u8 = 0;
pub const OPCODE_NOTIFY: u8 = 4;
pub const OPCODE_UPDATE: u8 = 5;

/// Parser of one DNS flow (both directions).
#[derive(Debug)]
pub struct DnsParser {
    tcp: bool,
    next_id: u32,
    /// Outstanding queries `(message id, transaction id)`, oldest first.
    table: [(u16, u32); MAX_OUTSTANDING],
    outstanding: usize,
    name: String,
    summary: String,
}

impl Default for DnsParser {
    /// DNS over TCP; the caller picks [`DnsParser::udp`] for UDP flows.
    fn default() -> Self {
        Self::tcp()
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// Why a name does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    /// No server reads it either: a label or pointer past the end of the message, a
    /// reserved label type (0x40 extended labels, obsolete; 0x80).
    Malformed,
    /// Past this parser's budgets ([`MAX_NAME`] bytes, [`MAX_POINTERS`] jumps), which a
    /// lenient server may still read.
    Limit,
}

/// Decodes the name at `start` into `out`; returns the offset just past it in the message
/// (past the first pointer when it is compressed). Pointers may go anywhere in `msg`.
pub(crate) fn decode_name(msg: &[u8], start: usize, out: &mut String) -> Result<usize, NameError> {
    out.clear();
    let mut pos = start;
    let mut end = None;
    let mut jumps = 0;
    let mut wire = 1usize;
    loop {
        let len = *msg.get(pos).ok_or(NameError::Malformed)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                let len = usize::from(len);
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(NameError::Malformed)?;
                wire += len + 1;
                if wire > MAX_NAME {
                    return Err(NameError::Limit);
                }
                if !out.is_empty() {
                    out.push('.');
                }
                for &b in label {
                    match b {
                        b'.' | b'\\' => {
                            out.push('\\');
                            out.push(char::from(b));
                        }
                        0x21..=0x7e => out.push(char::from(b.to_ascii_lowercase())),
                        _ => {
                            let _ = write!(out, "\\{b:03}");
                        }
                    }
                }
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(NameError::Malformed)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                if target >= msg.len() {
                    return Err(NameError::Malformed);
                }
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                // Forward or backward: the budgets, not the direction, end a loop.
                if jumps > MAX_POINTERS {
                    return Err(NameError::Limit);
                }
                pos = target;
            }
            _ => return Err(NameError::Malformed),
        }
    }
}

/// Skips a name without decoding it; returns the offset past it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..=MAX_NAME {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
    None
}

/// Walks a response's sections; returns the rcode extended by an OPT record, or `None` if
/// the sections do not add up.
fn walk_response(msg: &[u8], rcode: u16) -> Option<u16> {
    let qd = be16(msg, 4)?;
    let rrs = u32::from(be16(msg, 6)?) + u32::from(be16(msg, 8)?) + u32::from(be16(msg, 10)?);
    let mut pos = HEADER;
    for _ in 0..qd {
        pos = skip_name(msg, pos)?;
        msg.get(pos..pos + 4)?;
        pos += 4;
    }
    let mut rcode = rcode;
    for _ in 0..rrs {
        pos = skip_name(msg, pos)?;
        let rtype = be16(msg, pos)?;
        let ttl = be32(msg, pos + 4)?;
        let rdlen = usize::from(be16(msg, pos + 8)?);
        pos += 10;
        msg.get(pos..pos + rdlen)?;
        pos += rdlen;
        if rtype == TYPE_OPT {
            // EDNS: the TTL's top byte holds the rcode's upper 8 bits (RFC 6891).
            rcode |= ((ttl >> 24) as u16) << 4;
        }
    }
    Some(rcode)
}

impl DnsParser {
    /// DNS over UDP: each `feed` is one datagram.
    pub fn udp() -> Self {
        Self::new(false)
    }

    /// DNS over TCP: 2-byte length-prefixed messages.
    pub fn tcp() -> Self {
        Self::new(true)
    }

    fn new(tcp: bool) -> Self {
        DnsParser {
            tcp,
            next_id: 0,
            table: [(0, 0); MAX_OUTSTANDING],
            outstanding: 0,
            // Worst case: every wire byte escaped as `\DDD`.
            name: String::with_capacity(MAX_NAME * 4),
            summary: String::with_capacity(MAX_NAME * 4 + 32),
        }
    }

    pub fn is_tcp(&self) -> bool {
        self.tcp
    }

    fn message(&mut self, msg: &[u8], sink: &mut dyn FactSink) {
        let (Some(msg_id), Some(flags), Some(qd)) = (be16(msg, 0), be16(msg, 2), be16(msg, 4))
        else {
            // Shorter than a header: servers drop it.
            sink.anomaly(ParserAnomaly::Resync);
            return;
        };
        let rcode = flags & 0x000f;
        if flags & 0x8000 == 0 {
            self.request(msg, msg_id, flags, qd, sink);
        } else {
            let (rcode, answers) = match (walk_response(msg, rcode), be16(msg, 6)) {
                (Some(r), Some(an)) => (r, an),
                (_, an) => {
                    // A client rejects it, or reads what it can; nothing policy judges.
                    sink.anomaly(ParserAnomaly::Resync);
                    (rcode, an.unwrap_or(0))
                }
            };
            self.response(msg_id, rcode, answers, sink);
        }
    }

    fn request(&mut self, msg: &[u8], msg_id: u16, flags: u16, qd: u16, sink: &mut dyn FactSink) {
        let opcode = ((flags >> 11) & 0x0f) as u8;
        let prefix = match opcode {
            OPCODE_QUERY => "",
            OPCODE_NOTIFY => "NOTIFY ",
            OPCODE_UPDATE => "UPDATE ",
            // IQUERY (obsolete), STATUS (never defined), DSO (no question), unassigned:
            // servers answer NOTIMP without looking at a question.
            _ => {
                sink.anomaly(ParserAnomaly::Resync);
                return;
            }
        };
        if qd == 0 {
            // Nothing to resolve (`dig +header-only`, a cookie refresh): FORMERR or an
            // answer with no data.
            sink.anomaly(ParserAnomaly::Resync);
            return;
        }
        let end = match decode_name(msg, HEADER, &mut self.name) {
            Ok(end) => end,
            Err(NameError::Malformed) => {
                sink.anomaly(ParserAnomaly::Resync);
                return;
            }
            Err(NameError::Limit) => {
                sink.anomaly(ParserAnomaly::BadFraming);
                return;
            }
        };
        let (Some(qtype), Some(qclass)) = (be16(msg, end), be16(msg, end + 2)) else {
            // The question ends with the message: every server refuses it.
            sink.anomaly(ParserAnomaly::Resync);
            return;
        };
        if qd > 1 {
            // Servers answer one question; the others would go unjudged.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        match self.table.get_mut(self.outstanding) {
            Some(slot) => {
                *slot = (msg_id, id);
                self.outstanding += 1;
            }
            None => sink.anomaly(ParserAnomaly::TooManyTransactions),
        }
        self.summary.clear();
        self.summary.push_str(prefix);
        self.summary.push_str(&self.name);
        let _ = match dns_qtype_name(qtype) {
            Some(t) => write!(self.summary, " {t}"),
            None => write!(self.summary, " TYPE{qtype}"),
        };
        let summary = self.summary.as_bytes();
        sink.fact(&Fact::Transaction {
            app: AppProto::Dns,
            id,
            summary: summary
                .get(..MAX_SUMMARY.min(summary.len()))
                .unwrap_or(summary),
            detail: RequestDetail::Dns(DnsQuestion {
                qname: &self.name,
                qtype,
                qclass,
                msg_id,
            }),
        });
    }

    fn response(&mut self, msg_id: u16, rcode: u16, answers: u16, sink: &mut dyn FactSink) {
        let live = self.table.get(..self.outstanding).unwrap_or_default();
        let Some(i) = live.iter().position(|&(m, _)| m == msg_id) else {
            sink.anomaly(ParserAnomaly::UnsolicitedResponse);
            return;
        };
        let id = live.get(i).map_or(0, |&(_, id)| id);
        self.table.copy_within(i + 1..self.outstanding, i);
        self.outstanding -= 1;
        sink.fact(&Fact::Response {
            app: AppProto::Dns,
            id,
            status: Some(u32::from(rcode)),
            summary: dns_rcode_name(rcode).unwrap_or("").as_bytes(),
            detail: ResponseDetail::Dns(DnsAnswer { rcode, answers }),
        });
    }
}

impl StreamParser for DnsParser {
    fn proto(&self) -> AppProto {
        AppProto::Dns
    }

    fn feed(&mut self, _dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        if !self.tcp {
            self.message(data, sink);
            return Progress::Done {
                consumed: data.len(),
            };
        }
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: pos };
            }
            let Some(len) = be16(rest, 0).map(usize::from) else {
                return Progress::NeedMore { consumed: pos };
            };
            let Some(msg) = rest.get(2..2 + len) else {
                return Progress::NeedMore { consumed: pos };
            };
            self.message(msg, sink);
            pos += 2 + len;
        }
    }

    fn gap(&mut self, _dir: Direction, _len: u32) -> GapOutcome {
        // Over UDP there is no stream to lose. Over TCP the next two-byte length prefix is
        // lost, and any two bytes are a plausible length: no resynchronisation is sound.
        if self.tcp {
            GapOutcome::GiveUp
        } else {
            GapOutcome::Skipped
        }
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        for &(_, id) in self.table.get(..self.outstanding).unwrap_or_default() {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Dns,
                id,
            });
        }
        self.outstanding = 0;
    }
}
