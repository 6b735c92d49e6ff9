//! HTTP/2 (RFC 9113) frames, an HPACK (RFC 7541) encoder, and gRPC message framing.

use std::collections::VecDeque;

/// The client connection preface.
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const H2_DATA: u8 = 0x0;
pub const H2_HEADERS: u8 = 0x1;
pub const H2_SETTINGS: u8 = 0x4;
pub const H2_PING: u8 = 0x6;
pub const H2_GOAWAY: u8 = 0x7;
pub const H2_WINDOW_UPDATE: u8 = 0x8;

pub const H2_END_STREAM: u8 = 0x1;
pub const H2_ACK: u8 = 0x1;
pub const H2_END_HEADERS: u8 = 0x4;

/// One frame: 9-byte header and payload.
pub fn h2_frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).min(0x00ff_ffff);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A SETTINGS frame with `(identifier, value)` entries.
pub fn h2_settings(out: &mut Vec<u8>, entries: &[(u16, u32)]) {
    let mut p = Vec::with_capacity(entries.len() * 6);
    for &(id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    h2_frame(out, H2_SETTINGS, 0, 0, &p);
}

pub fn h2_settings_ack(out: &mut Vec<u8>) {
    h2_frame(out, H2_SETTINGS, H2_ACK, 0, &[]);
}

pub fn h2_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    h2_frame(
        out,
        H2_WINDOW_UPDATE,
        0,
        stream,
        &(increment & 0x7fff_ffff).to_be_bytes(),
    );
}

pub fn h2_ping(out: &mut Vec<u8>, ack: bool, data: [u8; 8]) {
    h2_frame(out, H2_PING, if ack { H2_ACK } else { 0 }, 0, &data);
}

pub fn h2_goaway(out: &mut Vec<u8>, last_stream: u32, code: u32) {
    let mut p = Vec::with_capacity(8);
    p.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    h2_frame(out, H2_GOAWAY, 0, 0, &p);
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// How a literal header field is represented (RFC 7541 section 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexing {
    /// Added to the dynamic table; later blocks refer to it by index.
    Incremental,
    /// Not added (values that change every request: ids, timeouts).
    Without,
    /// Not added, and intermediaries must not index it either (credentials).
    Never,
}

/// Entry overhead of the dynamic table (RFC 7541 section 4.1).
const ENTRY_OVERHEAD: usize = 32;
/// `SETTINGS_HEADER_TABLE_SIZE` until a peer changes it; the mix never does.
pub const HPACK_TABLE_SIZE: usize = 4096;

/// An HPACK encoder for one direction of one connection: static table lookups, a dynamic
/// table kept exactly as the peer's decoder keeps it (insertion at the front, eviction from
/// the back by the 32-byte-overhead size), string literals without Huffman coding.
#[derive(Clone, Debug)]
pub struct HpackEncoder {
    table: VecDeque<(String, String)>,
    size: usize,
    max: usize,
}

impl Default for HpackEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits being `flags`
/// (RFC 7541 section 5.1; also used by the parser benches' encoder).
pub fn hpack_int(out: &mut Vec<u8>, n: u8, flags: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A string literal, not Huffman-coded.
fn hpack_str(out: &mut Vec<u8>, s: &str) {
    hpack_int(out, 7, 0x00, s.len());
    out.extend_from_slice(s.as_bytes());
}

impl HpackEncoder {
    pub fn new() -> Self {
        HpackEncoder {
            table: VecDeque::new(),
            size: 0,
            max: HPACK_TABLE_SIZE,
        }
    }

    /// Bytes the dynamic table holds, as RFC 7541 counts them.
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Appends one header field's representation to a header block. Names must be
    /// lower-case (HTTP/2 requires it).
    pub fn header(&mut self, out: &mut Vec<u8>, name: &str, value: &str, mode: Indexing) {
        // A full match: one indexed field.
        if let Some(i) = STATIC_TABLE
            .iter()
            .position(|&(n, v)| n == name && v == value && !v.is_empty())
        {
            hpack_int(out, 7, 0x80, i + 1);
            return;
        }
        if mode != Indexing::Never
            && let Some(i) = self.table.iter().position(|(n, v)| n == name && v == value)
        {
            hpack_int(out, 7, 0x80, STATIC_TABLE.len() + 1 + i);
            return;
        }
        let name_index = STATIC_TABLE
            .iter()
            .position(|&(n, _)| n == name)
            .map(|i| i + 1)
            .or_else(|| {
                self.table
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(|i| STATIC_TABLE.len() + 1 + i)
            })
            .unwrap_or(0);
        let (bits, flags) = match mode {
            Indexing::Incremental => (6, 0x40),
            Indexing::Without => (4, 0x00),
            Indexing::Never => (4, 0x10),
        };
        hpack_int(out, bits, flags, name_index);
        if name_index == 0 {
            hpack_str(out, name);
        }
        hpack_str(out, value);
        if mode == Indexing::Incremental {
            self.insert(name, value);
        }
    }

    fn insert(&mut self, name: &str, value: &str) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max {
            // RFC 7541 section 4.4: an entry larger than the table empties it.
            self.table.clear();
            self.size = 0;
            return;
        }
        while self.size + size > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
        self.table.push_front((name.to_owned(), value.to_owned()));
        self.size += size;
    }
}

/// One gRPC length-prefixed message (uncompressed).
pub fn grpc_message(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
}

/// A protobuf varint.
fn pb_varint_raw(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf field `field` as a varint (wire type 0).
pub fn pb_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    pb_varint_raw(out, u64::from(field) << 3);
    pb_varint_raw(out, v);
}

/// Protobuf field `field` as length-delimited bytes (wire type 2): strings, bytes, messages.
pub fn pb_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    pb_varint_raw(out, (u64::from(field) << 3) | 2);
    pb_varint_raw(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_follow_rfc7541_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix.
        let mut b = Vec::new();
        hpack_int(&mut b, 5, 0, 10);
        assert_eq!(b, [10]);
        b.clear();
        hpack_int(&mut b, 5, 0, 1337);
        assert_eq!(b, [31, 154, 10]);
    }

    #[test]
    fn hpack_matches_rfc7541_c3_requests_without_huffman() {
        // RFC 7541 C.3: three requests on one connection, no Huffman coding.
        let mut e = HpackEncoder::new();
        let mut b = Vec::new();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ] {
            e.header(&mut b, n, v, Indexing::Incremental);
        }
        let want1: &[u8] = &[
            0x82, 0x86, 0x84, 0x41, 0x0f, b'w', b'w', b'w', b'.', b'e', b'x', b'a', b'm', b'p',
            b'l', b'e', b'.', b'c', b'o', b'm',
        ];
        assert_eq!(b, want1);
        assert_eq!(e.table_size(), 57);

        b.clear();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ] {
            e.header(&mut b, n, v, Indexing::Incremental);
        }
        let want2: &[u8] = &[
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x08, b'n', b'o', b'-', b'c', b'a', b'c', b'h', b'e',
        ];
        assert_eq!(b, want2);
        assert_eq!(e.table_size(), 110);

        b.clear();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ] {
            e.header(&mut b, n, v, Indexing::Incremental);
        }
        let mut want3 = vec![0x82, 0x87, 0x85, 0xbf, 0x40, 0x0a];
        want3.extend_from_slice(b"custom-key");
        want3.push(0x0c);
        want3.extend_from_slice(b"custom-value");
        assert_eq!(b, want3);
        assert_eq!(e.table_size(), 164);
    }

    #[test]
    fn hpack_evicts_like_a_decoder() {
        let mut e = HpackEncoder::new();
        let mut b = Vec::new();
        let v = "x".repeat(1000);
        for i in 0..10 {
            e.header(&mut b, &format!("h{i}"), &v, Indexing::Incremental);
            assert!(e.table_size() <= HPACK_TABLE_SIZE);
        }
        // Each entry is 2 + 1000 + 32 bytes: four fit in 4096.
        assert_eq!(e.table_len(), 3);
        // Larger than the table: empties it.
        e.header(&mut b, "big", &"y".repeat(5000), Indexing::Incremental);
        assert_eq!((e.table_len(), e.table_size()), (0, 0));
    }
}
