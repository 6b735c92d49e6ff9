//! HPACK's static table (RFC 7541 Appendix A), and its names and values laid out back to back
//! at compile time so that a static string is an offset and a length like any other.

/// RFC 7541 Appendix A.
#[rustfmt::skip]
pub(super) const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"),
    (b"accept-charset", b""), (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""), (b"accept-ranges", b""), (b"accept", b""),
    (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""),
    (b"cookie", b""), (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""),
    (b"from", b""), (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""),
    (b"if-none-match", b""), (b"if-range", b""), (b"if-unmodified-since", b""),
    (b"last-modified", b""), (b"link", b""), (b"location", b""), (b"max-forwards", b""),
    (b"proxy-authenticate", b""), (b"proxy-authorization", b""), (b"range", b""),
    (b"referer", b""), (b"refresh", b""), (b"retry-after", b""), (b"server", b""),
    (b"set-cookie", b""), (b"strict-transport-security", b""), (b"transfer-encoding", b""),
    (b"user-agent", b""), (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
];

/// The static table's names and values back to back, built at compile time, so that a
/// static string is an offset and a length like any other.
pub(super) static STATIC_BYTES: [u8; STATIC_BYTES_LEN] = static_bytes();
const STATIC_BYTES_LEN: usize = static_bytes_len();
/// Where each static entry's name starts in [`STATIC_BYTES`] (its value follows it).
pub(super) static STATIC_AT: [u16; 61] = static_offsets();

// Compile-time only (as `huffman_tree` below).
#[allow(clippy::indexing_slicing)]
const fn static_bytes_len() -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < STATIC.len() {
        n += STATIC[i].0.len() + STATIC[i].1.len();
        i += 1;
    }
    n
}

#[allow(clippy::indexing_slicing)]
const fn static_bytes() -> [u8; STATIC_BYTES_LEN] {
    let mut out = [0u8; STATIC_BYTES_LEN];
    let mut at = 0;
    let mut i = 0;
    while i < STATIC.len() {
        let (n, v) = STATIC[i];
        let mut j = 0;
        while j < n.len() {
            out[at] = n[j];
            at += 1;
            j += 1;
        }
        j = 0;
        while j < v.len() {
            out[at] = v[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

#[allow(clippy::indexing_slicing)]
const fn static_offsets() -> [u16; 61] {
    let mut out = [0u16; 61];
    let mut at = 0;
    let mut i = 0;
    while i < STATIC.len() {
        out[i] = at as u16;
        at += STATIC[i].0.len() + STATIC[i].1.len();
        i += 1;
    }
    out
}
