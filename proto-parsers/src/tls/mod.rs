//! TLS handshake parser (ClientHello/ServerHello).
//!
//! Reads the record layer of both directions and assembles handshake messages from record
//! fragments into a bounded scratch per direction, so a ClientHello spread over several
//! records and TCP segments is seen whole, up to [`MAX_HANDSHAKE`] bytes (the largest
//! ClientHello a common server accepts: OpenSSL's 131,396; post-quantum key shares make
//! ClientHellos of 1.5 to 2 KB, and more with several). A longer handshake message is a
//! blinding [`ParserAnomaly::MessageTooLarge`]. The scratch grows with the bytes that arrive,
//! not with a declared length, and one grown past [`KEEP_SCRATCH`] is freed once its
//! messages are read. The ClientHello is reported
//! as a [`TlsClientHello`] (SNI, offered ALPN list, highest offered version ignoring GREASE),
//! the ServerHello as a [`TlsServerHello`] (negotiated version, ALPN when the server sends
//! it in the clear, i.e. before TLS 1.3). A HelloRetryRequest answers the first ClientHello
//! and the client's second ClientHello is a new transaction.
//!
//! Once the ServerHello is through, the rest of the flow is encrypted (TLS 1.3) or of no
//! interest to policy (TLS 1.2 certificates and key exchange): the parser reports
//! `Opaque { Encrypted }` once and consumes everything after it without looking. A client
//! that sends application data or, outside a HelloRetryRequest exchange, ChangeCipherSpec
//! has also left the readable part; before any ClientHello was judged, that is a blinding
//! [`ParserAnomaly::BadFraming`] too (servers refuse it, and a hello after it would go
//! unjudged).
//!
//! SSLv2-compatible hellos are reported as `Invalid(Unsupported)`.

#[cfg(test)]
mod tests;

use crate::contract::{
    Fact, FactSink, GapOutcome, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{RequestDetail, ResponseDetail, TlsClientHello, TlsServerHello};
use crate::{AppProto, Direction};

/// Largest handshake message assembled, its 4-byte header included: OpenSSL's server accepts
/// a ClientHello body of up to 131,396 bytes (Go's and rustls' up to 64 KiB, BoringSSL's
/// 16 KiB).
pub const MAX_HANDSHAKE: usize = 132 * 1024;
/// Capacity the handshake scratch keeps once its messages are read.
pub const KEEP_SCRATCH: usize = 16 * 1024;
/// Largest record body (TLSCiphertext: 2^14 + 2048).
pub const MAX_RECORD: usize = 16384 + 2048;
/// ALPN protocols kept from one ClientHello.
pub const MAX_ALPN: usize = 16;
/// ClientHellos waiting for their ServerHello (one, or two around a HelloRetryRequest).
pub const MAX_PENDING: u32 = 4;
/// Longest summary (`ClientHello <sni>`).
pub const MAX_SUMMARY: usize = 256;

const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPDATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const EXT_SNI: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// SHA-256("HelloRetryRequest"): a ServerHello with this random is a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// GREASE values (RFC 8701) are 0x?a?a with both bytes equal.
const fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// One direction's record-layer state.
#[derive(Debug, Default)]
struct Side {
    /// Nothing more to read in this direction: consume without looking.
    opaque: bool,
    rec_type: u8,
    /// Body bytes of the current record still to come (0: expecting a record header).
    rec_left: usize,
    /// Handshake bytes assembled from record fragments, not yet a whole message.
    hs: Vec<u8>,
}

/// Parser of one TLS connection (both directions).
#[derive(Debug)]
pub struct TlsParser {
    client: Side,
    server: Side,
    next_id: u32,
    pending: u32,
    reply_id: u32,
    /// The server asked for a second ClientHello; the client's CCS before it is the TLS 1.3
    /// compatibility one, not the start of encryption.
    hrr: bool,
    opaque_reported: bool,
    summary: Vec<u8>,
}

impl Default for TlsParser {
    fn default() -> Self {
        TlsParser {
            client: Side::default(),
            server: Side::default(),
            next_id: 0,
            pending: 0,
            reply_id: 0,
            hrr: false,
            opaque_reported: false,
            summary: Vec::with_capacity(MAX_SUMMARY),
        }
    }
}

/// A cursor over a handshake message body; every read is bounds-checked.
struct Rd<'a> {
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let v = self.bytes(2)?;
        Some(u16::from_be_bytes([*v.first()?, *v.get(1)?]))
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(..n)?;
        self.b = self.b.get(n..)?;
        Some(v)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }
}

/// What a ClientHello offers.
struct ClientHello<'a> {
    sni: Option<&'a [u8]>,
    alpn: [&'a [u8]; MAX_ALPN],
    alpn_len: usize,
    alpn_dropped: bool,
    version: u16,
    duplicate: bool,
}

fn parse_client_hello(body: &[u8]) -> Option<ClientHello<'_>> {
    let mut r = Rd { b: body };
    let legacy = r.u16()?;
    r.bytes(32)?;
    r.vec8()?;
    let suites = r.vec16()?;
    if suites.len() % 2 != 0 {
        return None;
    }
    r.vec8()?;
    let mut ch = ClientHello {
        sni: None,
        alpn: [&[]; MAX_ALPN],
        alpn_len: 0,
        alpn_dropped: false,
        version: legacy,
        duplicate: false,
    };
    if r.b.is_empty() {
        // Hellos before extensions existed.
        return Some(ch);
    }
    let mut exts = Rd { b: r.vec16()? };
    if !r.b.is_empty() {
        return None;
    }
    let (mut seen_sni, mut seen_alpn, mut seen_sv) = (false, false, false);
    while !exts.b.is_empty() {
        let t = exts.u16()?;
        let mut e = Rd { b: exts.vec16()? };
        let seen = match t {
            EXT_SNI => &mut seen_sni,
            EXT_ALPN => &mut seen_alpn,
            EXT_SUPPORTED_VERSIONS => &mut seen_sv,
            _ => continue,
        };
        if std::mem::replace(seen, true) {
            ch.duplicate = true;
            continue;
        }
        match t {
            EXT_SNI => {
                let mut list = Rd { b: e.vec16()? };
                while !list.b.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 {
                        if ch.sni.is_some() {
                            // Servers refuse a second host name (OpenSSL, Go) or could pick
                            // either: the one reported may not be the one used.
                            ch.duplicate = true;
                        } else {
                            ch.sni = Some(name);
                        }
                    }
                }
            }
            EXT_ALPN => {
                let mut list = Rd { b: e.vec16()? };
                while !list.b.is_empty() {
                    let proto = list.vec8()?;
                    match ch.alpn.get_mut(ch.alpn_len) {
                        Some(slot) => {
                            *slot = proto;
                            ch.alpn_len += 1;
                        }
                        None => ch.alpn_dropped = true,
                    }
                }
            }
            _ => {
                let mut list = Rd { b: e.vec8()? };
                let mut best = None;
                while !list.b.is_empty() {
                    let v = list.u16()?;
                    if !is_grease(v) {
                        best = best.max(Some(v));
                    }
                }
                if let Some(v) = best {
                    ch.version = v;
                }
            }
        }
    }
    Some(ch)
}

/// What a ServerHello says: `(hello_retry_request, version, alpn)`.
fn parse_server_hello(body: &[u8]) -> Option<(bool, u16, Option<&[u8]>)> {
    let mut r = Rd { b: body };
    let mut version = r.u16()?;
    let hrr = r.bytes(32)? == HRR_RANDOM;
    r.vec8()?;
    r.u16()?;
    r.u8()?;
    let mut alpn = None;
    if r.b.is_empty() {
        return Some((hrr, version, alpn));
    }
    let mut exts = Rd { b: r.vec16()? };
    while !exts.b.is_empty() {
        let t = exts.u16()?;
        let mut e = Rd { b: exts.vec16()? };
        match t {
            EXT_SUPPORTED_VERSIONS => version = e.u16()?,
            EXT_ALPN => {
                let mut list = Rd { b: e.vec16()? };
                alpn = Some(list.vec8()?);
            }
            _ => {}
        }
    }
    Some((hrr, version, alpn))
}

impl TlsParser {
    pub fn new() -> Self {
        Self::default()
    }

    fn report_opaque(&mut self, sink: &mut dyn FactSink) {
        if !std::mem::replace(&mut self.opaque_reported, true) {
            sink.fact(&Fact::Opaque {
                app: AppProto::Tls,
                reason: OpaqueReason::Encrypted,
            });
        }
    }

    /// Handles every whole handshake message assembled for `dir`; false if one is malformed.
    fn handshake_messages(
        &mut self,
        dir: Direction,
        sink: &mut dyn FactSink,
    ) -> Result<(), Invalid> {
        let mut off = 0usize;
        loop {
            let side = match dir {
                Direction::ToServer => &self.client,
                Direction::ToClient => &self.server,
            };
            if side.opaque {
                break;
            }
            let hs = side.hs.get(off..).unwrap_or_default();
            let (Some(&t), Some(&l0), Some(&l1), Some(&l2)) =
                (hs.first(), hs.get(1), hs.get(2), hs.get(3))
            else {
                break;
            };
            let len = (usize::from(l0) << 16) | (usize::from(l1) << 8) | usize::from(l2);
            if len + 4 > MAX_HANDSHAKE {
                sink.anomaly(ParserAnomaly::MessageTooLarge);
                return Err(Invalid::TooLarge);
            }
            let Some(body) = hs.get(4..4 + len) else {
                break;
            };
            off += 4 + len;
            match (dir, t) {
                (Direction::ToServer, HS_CLIENT_HELLO) => {
                    let Some(ch) = parse_client_hello(body) else {
                        sink.anomaly(ParserAnomaly::BadFraming);
                        return Err(Invalid::BadSyntax);
                    };
                    if ch.duplicate {
                        sink.anomaly(ParserAnomaly::Ambiguous);
                    }
                    if ch.alpn_dropped {
                        sink.anomaly(ParserAnomaly::TooManyHeaders);
                    }
                    let id = self.next_id;
                    self.next_id = self.next_id.wrapping_add(1);
                    if self.pending == 0 {
                        self.reply_id = id;
                    }
                    if self.pending >= MAX_PENDING {
                        sink.anomaly(ParserAnomaly::TooManyTransactions);
                    } else {
                        self.pending += 1;
                    }
                    self.hrr = false;
                    self.summary.clear();
                    self.summary.extend_from_slice(b"ClientHello");
                    if let Some(sni) = ch.sni {
                        self.summary.push(b' ');
                        let room = MAX_SUMMARY - self.summary.len();
                        self.summary
                            .extend_from_slice(sni.get(..room.min(sni.len())).unwrap_or_default());
                    }
                    sink.fact(&Fact::Transaction {
                        app: AppProto::Tls,
                        id,
                        summary: &self.summary,
                        detail: RequestDetail::Tls(TlsClientHello {
                            sni: ch.sni,
                            alpn: ch.alpn.get(..ch.alpn_len).unwrap_or_default(),
                            version: ch.version,
                        }),
                    });
                }
                (Direction::ToClient, HS_SERVER_HELLO) => {
                    let Some((hrr, version, alpn)) = parse_server_hello(body) else {
                        sink.anomaly(ParserAnomaly::BadFraming);
                        return Err(Invalid::BadSyntax);
                    };
                    if self.pending == 0 {
                        sink.anomaly(ParserAnomaly::UnsolicitedResponse);
                    } else {
                        let id = self.reply_id;
                        self.reply_id = self.reply_id.wrapping_add(1);
                        self.pending -= 1;
                        sink.fact(&Fact::Response {
                            app: AppProto::Tls,
                            id,
                            status: None,
                            summary: if hrr {
                                b"HelloRetryRequest"
                            } else {
                                b"ServerHello"
                            },
                            detail: ResponseDetail::Tls(TlsServerHello { version, alpn }),
                        });
                    }
                    if hrr {
                        self.hrr = true;
                    } else {
                        self.client.opaque = true;
                        self.server.opaque = true;
                    }
                }
                // Certificates, key exchange, Finished in the clear (TLS 1.2): not needed.
                _ => {}
            }
        }
        let side = match dir {
            Direction::ToServer => &mut self.client,
            Direction::ToClient => &mut self.server,
        };
        if side.opaque {
            side.hs = Vec::new();
            self.report_opaque(sink);
        } else {
            side.hs.drain(..off.min(side.hs.len()));
            if side.hs.is_empty() && side.hs.capacity() > KEEP_SCRATCH {
                side.hs = Vec::new();
            }
        }
        Ok(())
    }

    fn fail(&mut self, sink: &mut dyn FactSink, a: ParserAnomaly, why: Invalid) -> Progress {
        sink.anomaly(a);
        Progress::Invalid(why)
    }
}

/// Appends a record's handshake bytes: grown by doubling from the first record, never more
/// than the bytes held need.
fn grow(hs: &mut Vec<u8>, chunk: &[u8]) {
    let need = hs.len().saturating_add(chunk.len());
    if need > hs.capacity() {
        let want = need
            .max(hs.capacity().saturating_mul(2))
            .min(need.max(MAX_HANDSHAKE + MAX_RECORD));
        hs.reserve_exact(want - hs.len());
    }
    hs.extend_from_slice(chunk);
}

impl StreamParser for TlsParser {
    fn proto(&self) -> AppProto {
        AppProto::Tls
    }

    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let mut pos = 0usize;
        loop {
            let side = match dir {
                Direction::ToServer => &mut self.client,
                Direction::ToClient => &mut self.server,
            };
            if side.opaque {
                return Progress::Done {
                    consumed: data.len(),
                };
            }
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: pos };
            }
            if side.rec_left == 0 {
                let Some(h) = rest.get(..5) else {
                    // SSLv2 record header: high bit set, message type 1 (CLIENT-HELLO).
                    if rest.first().is_some_and(|&b| b & 0x80 != 0) && rest.get(2) == Some(&1) {
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::Unsupported);
                    }
                    return Progress::NeedMore { consumed: pos };
                };
                let (t, major) = (
                    h.first().copied().unwrap_or(0),
                    h.get(1).copied().unwrap_or(0),
                );
                let len = usize::from(h.get(3).copied().unwrap_or(0)) << 8
                    | usize::from(h.get(4).copied().unwrap_or(0));
                if t & 0x80 != 0 && h.get(2) == Some(&1) {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::Unsupported);
                }
                if !matches!(
                    t,
                    CT_CCS | CT_ALERT | CT_HANDSHAKE | CT_APPDATA | CT_HEARTBEAT
                ) {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                }
                if major != 3 {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadMagic);
                }
                if len > MAX_RECORD {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadLength);
                }
                pos += 5;
                if t == CT_APPDATA {
                    side.opaque = true;
                    if dir == Direction::ToServer && self.next_id == 0 {
                        // Encrypted bytes before any ClientHello was judged: what they hold
                        // (a hello the server reads some other way?) is unknown.
                        sink.anomaly(ParserAnomaly::BadFraming);
                    }
                    self.report_opaque(sink);
                    return Progress::Done {
                        consumed: data.len(),
                    };
                }
                if len == 0 {
                    if t == CT_HANDSHAKE {
                        // Empty handshake fragments are forbidden and a known evasion.
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadLength);
                    }
                    continue;
                }
                side.rec_type = t;
                side.rec_left = len;
                continue;
            }
            let take = side.rec_left.min(rest.len());
            let chunk = rest.get(..take).unwrap_or_default();
            side.rec_left -= take;
            pos += take;
            match side.rec_type {
                CT_HANDSHAKE => {
                    // Every whole message is read as soon as it is in, and one announcing
                    // more than MAX_HANDSHAKE fails the flow, so what is held stays under
                    // MAX_HANDSHAKE + one record.
                    grow(&mut side.hs, chunk);
                    if let Err(why) = self.handshake_messages(dir, sink) {
                        return Progress::Invalid(why);
                    }
                }
                CT_CCS if side.rec_left == 0 && dir == Direction::ToServer && !self.hrr => {
                    // TLS 1.2: everything after the client's ChangeCipherSpec is encrypted.
                    side.opaque = true;
                    if self.next_id == 0 {
                        // Before any ClientHello was judged: nothing after it would be.
                        sink.anomaly(ParserAnomaly::BadFraming);
                    }
                    self.report_opaque(sink);
                }
                _ => {}
            }
        }
    }

    /// Skipped once the direction is past what the parser reports (it is opaque: after the
    /// ServerHello, or after the client's ChangeCipherSpec or application data), or inside
    /// a record it skips anyway (alert, heartbeat). During the handshake it gives up: a
    /// lost record header loses the record framing, and the bytes may have held a
    /// ClientHello (a second one after a HelloRetryRequest) that was never judged.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        let side = match dir {
            Direction::ToServer => &mut self.client,
            Direction::ToClient => &mut self.server,
        };
        if side.opaque {
            return GapOutcome::Skipped;
        }
        let len = len as usize;
        if side.rec_type != CT_HANDSHAKE && side.rec_left >= len {
            side.rec_left -= len;
            return GapOutcome::Skipped;
        }
        GapOutcome::GiveUp
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        for k in 0..self.pending {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Tls,
                id: self.reply_id.wrapping_add(k),
            });
        }
        self.pending = 0;
    }
}
