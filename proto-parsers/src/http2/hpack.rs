//! HPACK (RFC 7541) header block decoding, written for a passive reader: one [`Decoder`]
//! per direction of a connection, fed whole header blocks.
//!
//! Why our own and not a crate: `loona-hpack` (the maintained fork of `hpack`, used here
//! before) rebuilds its Huffman decoding table for every string and returns each field as
//! two fresh `Vec`s. Measured with `cargo bench -p benches --bench parsers` (RESULTS.md):
//! requests with new Huffman-coded values 25 MB/s and 73 allocations per request with it,
//! 1,354 MB/s and none with this decoder; gRPC unary 405 -> 492 MB/s. The `hpack` fuzz
//! target and `hpack/tests.rs` decode the same blocks with both and compare.
//!
//! Decoded fields are not copied out. [`Decoder::decode`] fills a list of [`Field`]s that
//! say where each name and value lives: the static table, the encoded block itself (raw
//! literals), the caller's scratch buffer (Huffman-coded literals, decoded there), or the
//! dynamic table. [`Decoder::view`] turns them into byte slices that borrow from those, valid
//! until the next block is decoded.
//!
//! - Integers (section 5.1): at most 5 octets (a prefix octet and 4 continuation octets,
//!   values below 2^28 + 2^8), as `loona-hpack` and nghttp2 accept; longer is an error.
//! - Huffman (section 5.2, Appendix B): a 4-bit-at-a-time state machine over the 256
//!   internal nodes of the code tree, built at compile time by a `const fn` from the code
//!   table below (the RFC's table written out as data). EOS in a string, padding longer than
//!   7 bits or padding that is not all ones are errors.
//! - Dynamic table (section 4): the entries' bytes in one buffer of twice the table's
//!   maximum size, oldest first, appended at the end; when the end is reached the live bytes
//!   (at most the table size) move back to the front, which takes more bytes inserted since
//!   the previous move than it moves, so at most one byte is moved per byte inserted. Every
//!   entry stays contiguous, so a field read from the table is one borrowed slice. The
//!   entries' (offset, lengths) are a ring (`VecDeque`) with room for `max_size / 32` of
//!   them. Nothing is allocated per entry once both have grown to the table size.
//! - Table size updates (section 4.2, 6.3): only at the start of a block (an update after a
//!   field is an error) and never above what the caller allows ([`Decoder::set_max_allowed`]).
//!
//! Bounds on what a hostile block can make the decoder keep: the caller's [`Limits`] on the
//! decoded header list (counted as RFC 9113's `SETTINGS_MAX_HEADER_LIST_SIZE` is: name +
//! value + 32 per field) and on the number of fields kept. Fields past a limit are still
//! decoded (the dynamic table must stay in step) but not kept, and a Huffman string longer
//! than anything it could still be needed for is checked and counted without being stored,
//! so the scratch stays under `max_list + 2 * max(max_list, table size)` bytes.

use std::collections::VecDeque;

/// What makes a header block undecodable (an HTTP/2 endpoint's COMPRESSION_ERROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The block ends inside a representation.
    Truncated,
    /// An integer of more than 5 octets.
    IntegerTooLong,
    /// Index 0, or an index past the static and dynamic tables.
    BadIndex,
    /// A Huffman-coded string with EOS in it, or with bad padding.
    BadHuffman,
    /// A dynamic table size update above the allowed maximum.
    TableSizeTooLarge,
    /// A dynamic table size update after a header field of the same block.
    MisplacedSizeUpdate,
}

/// Where the bytes of a name or a value are (an index into [`View`]'s buffers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Src {
    /// The static table's bytes ([`STATIC_BYTES`]), from offset `at`.
    Static,
    /// The encoded block, from offset `at`.
    Block,
    /// The caller's scratch buffer, from offset `at`.
    Scratch,
    /// The dynamic table's byte buffer, from offset `at`.
    Table,
}

/// A decoded string: `len` bytes at `at` in `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Str {
    src: Src,
    at: u32,
    len: u32,
}

/// One decoded header field. `name` and `value` are their lengths in bytes; the bytes come
/// from [`View::name`] and [`View::value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: u32,
    pub value: u32,
    name_at: u32,
    value_at: u32,
    name_src: Src,
    value_src: Src,
}

impl Field {
    fn new(name: Str, value: Str) -> Self {
        Field {
            name: name.len,
            value: value.len,
            name_at: name.at,
            value_at: value.at,
            name_src: name.src,
            value_src: value.src,
        }
    }

    fn in_table(&self) -> bool {
        self.name_src == Src::Table || self.value_src == Src::Table
    }
}

/// Limits on what one block may make the decoder keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest decoded header list (name + value + 32 per field). The field that crosses it
    /// and all after it are not kept.
    pub max_list: usize,
    /// Most fields kept; later ones are not.
    pub max_fields: usize,
}

impl Limits {
    /// Keep everything (tests and differential checks).
    pub const NONE: Limits = Limits {
        max_list: usize::MAX,
        max_fields: usize::MAX,
    };
}

/// What a decoded block held beyond the fields kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Size of the whole decoded header list (name + value + 32 per field), saturating.
    pub list_size: usize,
    /// Fields decoded, kept or not.
    pub fields: usize,
    /// The list went over [`Limits::max_list`].
    pub over_list: bool,
    /// More fields than [`Limits::max_fields`] fitted under the list limit.
    pub over_fields: bool,
}

/// HPACK's per-entry overhead in the table size (section 4.1).
const ENTRY_OVERHEAD: usize = 32;
/// HPACK's default dynamic table size (SETTINGS_HEADER_TABLE_SIZE's initial value).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// The dynamic table's first buffer, doubled as entries are added.
const MIN_TABLE_BUF: usize = 512;
/// Most scratch reserved before a block is decoded (see [`Decoder::decode`]).
const RESERVE_AT_ONCE: usize = 64 * 1024;
/// Continuation octets an integer may have after its prefix octet.
const MAX_INT_CONTINUATIONS: usize = 4;

/// RFC 7541 Appendix A.
#[rustfmt::skip]
const STATIC: [(&[u8], &[u8]); 61] = [
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
static STATIC_BYTES: [u8; STATIC_BYTES_LEN] = static_bytes();
const STATIC_BYTES_LEN: usize = static_bytes_len();
/// Where each static entry's name starts in [`STATIC_BYTES`] (its value follows it).
static STATIC_AT: [u16; 61] = static_offsets();

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

// ---- Huffman ------------------------------------------------------------------------------

/// RFC 7541 Appendix B: for each symbol (0-255, then EOS), its code (aligned to the least
/// significant bit) and the code's length in bits.
#[rustfmt::skip]
const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), // 0
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), // 4
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28), // 8
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), // 12
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), // 16
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), // 20
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), // 24
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28), // 28
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12), // 32
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), // 36
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), // 40
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), // 44
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), // 48
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), // 52
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), // 56
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), // 60
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7), // 64
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), // 68
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), // 72
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), // 76
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), // 80
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), // 84
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13), // 88
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), // 92
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), // 96
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), // 100
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7), // 104
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), // 108
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5), // 112
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), // 116
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), // 120
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), // 124
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), // 128
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), // 132
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), // 136
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), // 140
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), // 144
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), // 148
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), // 152
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), // 156
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), // 160
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), // 164
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), // 168
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23), // 172
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), // 176
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), // 180
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), // 184
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), // 188
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), // 192
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), // 196
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), // 200
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), // 204
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27), // 208
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), // 212
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), // 216
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), // 220
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), // 224
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), // 228
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), // 232
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), // 236
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), // 240
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), // 244
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27), // 248
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), // 252
    (0x3fffffff, 30), // 256
];

/// Symbol number of EOS.
const EOS: u16 = 256;
/// Marks a leaf in [`huffman_tree`]'s child slots (the symbol is in the low bits).
const LEAF: u16 = 0x8000;

/// The code as a binary tree: 256 internal nodes (node 0 is the root), each with its two
/// children, an internal node's number or `LEAF | symbol`.
// Compile-time only: an index out of bounds or a panic here fails the build, never a running
// parser.
#[allow(clippy::indexing_slicing, clippy::panic)]
const fn huffman_tree() -> [[u16; 2]; 256] {
    let mut tree = [[0u16; 2]; 256];
    let mut nodes = 1;
    let mut sym = 0;
    while sym < HUFFMAN_CODES.len() {
        let (code, len) = HUFFMAN_CODES[sym];
        let mut node = 0;
        let mut bit = len;
        while bit > 1 {
            bit -= 1;
            let b = ((code >> bit) & 1) as usize;
            if tree[node][b] == 0 {
                // Node 0 is the root, never a child: 0 is an empty slot.
                tree[node][b] = nodes as u16;
                nodes += 1;
            } else if tree[node][b] & LEAF != 0 {
                panic!("the Huffman code is not prefix-free");
            }
            node = tree[node][b] as usize;
        }
        let b = (code & 1) as usize;
        if tree[node][b] != 0 {
            panic!("two symbols share a Huffman code");
        }
        tree[node][b] = LEAF | sym as u16;
        sym += 1;
    }
    // 257 leaves of a complete code hang from exactly 256 internal nodes.
    if nodes != 256 {
        panic!("the Huffman code is not complete");
    }
    tree
}

/// One step of the Huffman decoder, what 4 more input bits do in a state, packed in a
/// `u32`: bits 0-7 the state after them (an internal node of the tree), bits 8-15 the symbol
/// they completed (when [`EMIT`]), bits 16-18 the flags below.
type Step = u32;

/// A symbol was completed (at most one: the shortest code has 5 bits).
const EMIT: Step = 1 << 16;
/// EOS was completed: the string is invalid.
const FAIL: Step = 2 << 16;
/// The string may end in the state after this step: no partial code pending, or a partial
/// code of at most 7 one-bits (valid padding, section 5.2).
const ACCEPT: Step = 4 << 16;

/// The decoder's transitions for every state (internal node) and every 4-bit input, at
/// `state << 4 | input`.
// Compile-time only, as `huffman_tree`.
#[allow(clippy::indexing_slicing)]
const fn huffman_fsm() -> [Step; 4096] {
    let tree = huffman_tree();
    // States on the all-ones path from the root, at depth 0 to 7, are valid ends.
    let mut accept = [false; 256];
    accept[0] = true;
    let mut node = 0;
    let mut depth = 0;
    while depth < 7 {
        node = tree[node][1] as usize;
        accept[node] = true;
        depth += 1;
    }
    let mut fsm = [0; 4096];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = 0;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = tree[node][(nibble >> bit) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                } else if child & !LEAF == EOS {
                    step |= FAIL;
                    node = 0;
                    break;
                } else {
                    step |= EMIT | ((child & !LEAF) as Step) << 8;
                    node = 0;
                }
            }
            if step & FAIL == 0 && accept[node] {
                step |= ACCEPT;
            }
            fsm[state << 4 | nibble] = step | node as Step;
            nibble += 1;
        }
        state += 1;
    }
    fsm
}

/// 256 states x 16 inputs, 4 bytes each (16 KiB).
static HUFFMAN_FSM: [Step; 4096] = huffman_fsm();

/// One 4-bit step from the state in the low byte of `from` (a previous step).
#[inline(always)]
fn step(from: Step, nibble: u8) -> Step {
    // Below 256 * 16: the bounds check compiles away.
    let i = ((from & 0xff) << 4 | Step::from(nibble & 0xf)) as usize;
    HUFFMAN_FSM.get(i).copied().unwrap_or(FAIL)
}

/// Decodes the Huffman-coded `src` onto the end of `out` and returns the decoded length.
/// Past `cap` decoded bytes nothing more is written: the rest is still checked and counted
/// (a string too long to be kept or indexed costs no memory).
pub fn huffman_decode(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<usize, Error> {
    // The shortest code has 5 bits: at most 8/5 symbols per input byte.
    let bound = src.len().saturating_mul(8) / 5;
    if bound > cap {
        return huffman_count(src, out, cap);
    }
    // Decode into a slice sized for the longest outcome: stores into a slice need no
    // capacity check, and the symbol is stored whether a step completes one or not (the
    // count only moves when it does), so the loop has no branch but the rare failure.
    let start = out.len();
    out.resize(start + bound + 1, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    let mut n = 0;
    let mut at = ACCEPT;
    let mut seen = 0;
    for &b in src {
        let hi = step(at, b >> 4);
        if let Some(d) = dst.get_mut(n) {
            *d = (hi >> 8) as u8;
        }
        n += usize::from(hi & EMIT != 0);
        at = step(hi, b);
        if let Some(d) = dst.get_mut(n) {
            *d = (at >> 8) as u8;
        }
        n += usize::from(at & EMIT != 0);
        seen |= hi | at;
    }
    out.truncate(start + n);
    // A failed step goes back to the root and decoding goes on: checked once, here.
    if seen & FAIL != 0 || at & ACCEPT == 0 {
        return Err(Error::BadHuffman);
    }
    Ok(n)
}

/// [`huffman_decode`] for a string that may decode to more than `cap` bytes.
#[cold]
fn huffman_count(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<usize, Error> {
    let mut at = ACCEPT;
    let mut n = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 0xf] {
            at = step(at, nibble);
            if at & FAIL != 0 {
                return Err(Error::BadHuffman);
            }
            if at & EMIT != 0 {
                if n < cap {
                    out.push((at >> 8) as u8);
                }
                n += 1;
            }
        }
    }
    if at & ACCEPT == 0 {
        return Err(Error::BadHuffman);
    }
    Ok(n)
}

// ---- Primitives -----------------------------------------------------------------------------

/// Reads an integer whose prefix is the bits of `mask` in the octet at `*pos` (section 5.1).
#[inline]
fn read_int(buf: &[u8], pos: &mut usize, mask: u8) -> Result<usize, Error> {
    let first = *buf.get(*pos).ok_or(Error::Truncated)?;
    *pos += 1;
    let mut v = usize::from(first & mask);
    if v < usize::from(mask) {
        return Ok(v);
    }
    let mut shift = 0u32;
    for _ in 0..MAX_INT_CONTINUATIONS {
        let b = *buf.get(*pos).ok_or(Error::Truncated)?;
        *pos += 1;
        // At most 255 + 127 * (1 + 2^7 + 2^14 + 2^21) < 2^29: no overflow, even in 32 bits.
        v += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
    Err(Error::IntegerTooLong)
}

fn len32(n: usize) -> u32 {
    // Blocks, scratch and table are far below 4 GiB (the callers bound them); saturate
    // rather than wrap if a caller ever did not.
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---- Dynamic table ------------------------------------------------------------------------

/// One dynamic table entry: name then value, back to back at `at` in [`Table::buf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    at: u32,
    name: u32,
    value: u32,
}

impl Entry {
    fn size(&self) -> usize {
        self.name as usize + self.value as usize + ENTRY_OVERHEAD
    }
}

#[derive(Debug)]
struct Table {
    /// Entry bytes. `buf[start..]` holds the live entries, oldest first; bytes before
    /// `start` belong to evicted entries and are dropped at the next compaction.
    buf: Vec<u8>,
    start: usize,
    /// Newest first: HPACK index 62 is `entries[0]`.
    entries: VecDeque<Entry>,
    /// Size as HPACK counts it (name + value + 32 per entry).
    size: usize,
    max_size: usize,
}

impl Table {
    fn new(max_size: usize) -> Self {
        Table {
            buf: Vec::new(),
            start: 0,
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Bytes `buf` may hold before it is compacted.
    fn room(&self) -> usize {
        self.max_size.saturating_mul(2)
    }

    fn get(&self, i: usize) -> Option<(Str, Str)> {
        let e = self.entries.get(i)?;
        Some((
            Str {
                src: Src::Table,
                at: e.at,
                len: e.name,
            },
            Str {
                src: Src::Table,
                at: e.at.saturating_add(e.name),
                len: e.value,
            },
        ))
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let Some(e) = self.entries.pop_back() else {
                self.size = 0;
                break;
            };
            self.size = self.size.saturating_sub(e.size());
        }
        self.start = self
            .entries
            .back()
            .map_or(self.buf.len(), |e| e.at as usize);
    }

    fn set_max_size(&mut self, max: usize) {
        self.max_size = max;
        self.evict_to(max);
    }

    /// Moves the live bytes to the front of `buf`; returns by how much they moved.
    fn compact(&mut self) -> u32 {
        let shift = self.start.min(self.buf.len());
        self.buf.copy_within(shift.., 0);
        self.buf.truncate(self.buf.len() - shift);
        self.start = 0;
        let d = len32(shift);
        for e in &mut self.entries {
            // Live entries start at or after `start`.
            e.at = e.at.saturating_sub(d);
        }
        d
    }
}

// ---- Decoder --------------------------------------------------------------------------------

/// One direction's HPACK decoding state: the dynamic table and the size limit.
#[derive(Debug)]
pub struct Decoder {
    table: Table,
    /// Largest table size an update may set (what this side's peer allowed it).
    max_allowed: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Borrowed bytes of the fields of the last decoded block.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Indexed by [`Src`]: static table, block, scratch, dynamic table.
    bufs: [&'a [u8]; 4],
}

impl<'a> View<'a> {
    #[inline]
    fn bytes(&self, src: Src, at: u32, len: u32) -> &'a [u8] {
        let at = at as usize;
        let end = at.saturating_add(len as usize);
        self.bufs
            .get(src as usize)
            .and_then(|b| b.get(at..end))
            .unwrap_or_default()
    }

    pub fn name(&self, f: &Field) -> &'a [u8] {
        self.bytes(f.name_src, f.name_at, f.name)
    }

    pub fn value(&self, f: &Field) -> &'a [u8] {
        self.bytes(f.value_src, f.value_at, f.value)
    }

    pub fn pair(&self, f: &Field) -> (&'a [u8], &'a [u8]) {
        (self.name(f), self.value(f))
    }
}

impl Decoder {
    /// A decoder with HPACK's initial table size and limit (4096 bytes).
    pub fn new() -> Self {
        Decoder {
            table: Table::new(DEFAULT_TABLE_SIZE),
            max_allowed: DEFAULT_TABLE_SIZE,
        }
    }

    /// A decoder whose table size and limit start at `size` (a side that advertised
    /// `SETTINGS_HEADER_TABLE_SIZE = size` before its peer's first block).
    pub fn with_table_size(size: usize) -> Self {
        Decoder {
            table: Table::new(size),
            max_allowed: size,
        }
    }

    /// Sets the largest table size a size update may ask for (the value this decoder's
    /// side advertised in SETTINGS_HEADER_TABLE_SIZE). The table keeps its current size
    /// until the encoder sends an update.
    pub fn set_max_allowed(&mut self, max: usize) {
        self.max_allowed = max;
    }

    /// The dynamic table's size as HPACK counts it, and its current maximum.
    pub fn table_size(&self) -> (usize, usize) {
        (self.table.size, self.table.max_size)
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.entries.len()
    }

    /// The bytes of the fields of the block last decoded from `block` into `scratch`.
    pub fn view<'a>(&'a self, block: &'a [u8], scratch: &'a [u8]) -> View<'a> {
        View {
            bufs: [&STATIC_BYTES, block, scratch, &self.table.buf],
        }
    }

    /// Name and value of table index `index` (1-based: static, then dynamic).
    fn lookup(&self, index: usize) -> Result<(Str, Str), Error> {
        match index {
            0 => Err(Error::BadIndex),
            1..=61 => {
                let i = index - 1;
                let (n, v) = STATIC.get(i).copied().unwrap_or_default();
                let at = u32::from(STATIC_AT.get(i).copied().unwrap_or(0));
                let name = len32(n.len());
                Ok((
                    Str {
                        src: Src::Static,
                        at,
                        len: name,
                    },
                    Str {
                        src: Src::Static,
                        at: at + name,
                        len: len32(v.len()),
                    },
                ))
            }
            _ => self.table.get(index - 62).ok_or(Error::BadIndex),
        }
    }

    /// Decodes one complete header block. The fields kept go to `out` (cleared first);
    /// Huffman-coded strings are decoded into `scratch` (cleared first). Read them with
    /// [`Decoder::view`] over the same `block` and `scratch`, before the next call.
    ///
    /// On error the dynamic table may hold some of the block's insertions: the connection
    /// cannot continue (a receiver would close it with COMPRESSION_ERROR).
    pub fn decode(
        &mut self,
        block: &[u8],
        scratch: &mut Vec<u8>,
        out: &mut Vec<Field>,
        limits: Limits,
    ) -> Result<Decoded, Error> {
        scratch.clear();
        out.clear();
        // Grown at once rather than by doubling for the blocks of common requests: Huffman
        // decoding writes at most 8/5 of the bytes it reads (and never more than the bound
        // in the module doc); every field takes at least one byte. A larger block grows it
        // by doubling from there, as its strings need it.
        let most = limits
            .max_list
            .saturating_add(limits.max_list.max(self.table.max_size).saturating_mul(2));
        scratch.reserve(
            (block.len().saturating_mul(8) / 5 + 1)
                .min(most)
                .min(RESERVE_AT_ONCE),
        );
        out.reserve(block.len().min(limits.max_fields).min(64));
        let mut d = Decoded::default();
        // Whether a field in `out` borrows from the table's buffer (which a compaction
        // would move).
        let mut pinned = false;
        let mut pos = 0;
        while let Some(&first) = block.get(pos) {
            let mark = scratch.len();
            let mut spilled = false;
            let (name, value) = if first & 0x80 != 0 {
                // Indexed field (6.1).
                let index = read_int(block, &mut pos, 0x7f)?;
                self.lookup(index)?
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (6.3).
                if d.fields > 0 {
                    return Err(Error::MisplacedSizeUpdate);
                }
                let size = read_int(block, &mut pos, 0x1f)?;
                if size > self.max_allowed {
                    return Err(Error::TableSizeTooLarge);
                }
                self.table.set_max_size(size);
                continue;
            } else {
                // Literal (6.2): with incremental indexing (01), without (0000) or never
                // indexed (0001).
                let indexing = first & 0x40 != 0;
                let mask = if indexing { 0x3f } else { 0x0f };
                let index = read_int(block, &mut pos, mask)?;
                // Longest string that could still be kept or indexed: longer ones are
                // checked and counted, not stored.
                let keep = limits.max_list.saturating_sub(d.list_size);
                let cap = if indexing {
                    keep.max(self.table.max_size)
                } else {
                    keep
                };
                let mut name = if index == 0 {
                    read_str(block, &mut pos, scratch, cap)?
                } else {
                    self.lookup(index)?.0
                };
                // A value longer than this cannot fit next to its name either.
                let cap = cap.saturating_sub(name.len as usize);
                let value = read_str(block, &mut pos, scratch, cap)?;
                if indexing {
                    spilled = self.insert(&mut name, value, block, scratch, out, &mut pinned);
                }
                (name, value)
            };
            d.fields += 1;
            d.list_size = d
                .list_size
                .saturating_add(name.len as usize + value.len as usize + ENTRY_OVERHEAD);
            if d.list_size > limits.max_list {
                d.over_list = true;
            } else if out.len() >= limits.max_fields {
                d.over_fields = true;
            } else {
                let f = Field::new(name, value);
                pinned |= f.in_table();
                out.push(f);
                continue;
            }
            // Not kept. A spill during this field's insertion wrote kept bytes after its
            // strings; those stay (a few, once per block: nothing is kept after this).
            if !spilled {
                scratch.truncate(mark);
            }
        }
        Ok(d)
    }

    /// Adds `name: value` to the dynamic table (section 4.4). `name` may be a table entry
    /// (it is moved with the table if the buffer is compacted). Returns whether fields kept
    /// in `out` had to be moved out of the table into `scratch` first.
    fn insert(
        &mut self,
        name: &mut Str,
        value: Str,
        block: &[u8],
        scratch: &mut Vec<u8>,
        out: &mut [Field],
        pinned: &mut bool,
    ) -> bool {
        let t = &mut self.table;
        let need = name.len as usize + value.len as usize;
        if need + ENTRY_OVERHEAD > t.max_size {
            // Larger than the whole table: it empties the table and is not added. The
            // bytes stay in the buffer for fields still borrowing them.
            t.entries.clear();
            t.size = 0;
            t.start = t.buf.len();
            return false;
        }
        let mut spilled = false;
        if t.buf.len() + need > t.room() {
            if *pinned {
                // Fields of this block borrow bytes the compaction moves: copy them first.
                for f in out.iter_mut() {
                    spill(&t.buf, scratch, &mut f.name_src, &mut f.name_at, f.name);
                    spill(&t.buf, scratch, &mut f.value_src, &mut f.value_at, f.value);
                }
                *pinned = false;
                spilled = true;
            }
            // Live bytes are at most max_size - 32 per entry, so after this the buffer
            // has max_size free: the entry fits.
            let shift = t.compact();
            if name.src == Src::Table {
                // The name is a live entry, at or after the moved region's start.
                name.at = name.at.saturating_sub(shift);
            }
        }
        // Grow by doubling from a small start, never past `room`: a table costs memory only
        // as it fills (most connections index a few hundred bytes of fields and stop;
        // starting at the whole 8 KiB cost 16 KiB per HTTP/2 flow, the largest share of
        // memory per flow in the 45,000-flow replay).
        let want = t.buf.len() + need;
        if want > t.buf.capacity() {
            let target = (t.buf.capacity() * 2)
                .max(MIN_TABLE_BUF)
                .max(want)
                .min(t.room().max(want));
            t.buf.reserve_exact(target - t.buf.len());
        }
        if t.entries.capacity() == 0 {
            t.entries.reserve(8);
        }
        let at = t.buf.len();
        let (n_at, n_end) = (name.at as usize, name.at as usize + name.len as usize);
        match name.src {
            Src::Table => {
                if n_at <= n_end && n_end <= at {
                    t.buf.extend_from_within(n_at..n_end);
                }
            }
            Src::Static => t
                .buf
                .extend_from_slice(STATIC_BYTES.get(n_at..n_end).unwrap_or_default()),
            Src::Block => t
                .buf
                .extend_from_slice(block.get(n_at..n_end).unwrap_or_default()),
            Src::Scratch => t
                .buf
                .extend_from_slice(scratch.get(n_at..n_end).unwrap_or_default()),
        }
        let (v_at, v_end) = (value.at as usize, value.at as usize + value.len as usize);
        let v = match value.src {
            Src::Block => block.get(v_at..v_end),
            Src::Scratch => scratch.get(v_at..v_end),
            // A value is always a literal here.
            Src::Static | Src::Table => None,
        };
        t.buf.extend_from_slice(v.unwrap_or_default());
        t.entries.push_front(Entry {
            at: len32(at),
            name: name.len,
            value: value.len,
        });
        t.size += need + ENTRY_OVERHEAD;
        let max = t.max_size;
        t.evict_to(max);
        spilled
    }
}

/// Reads a string literal (section 5.2): raw bytes are left in the block, Huffman-coded
/// ones are decoded into `scratch` (at most `cap` bytes stored, see [`huffman_decode`]).
#[inline]
fn read_str(
    block: &[u8],
    pos: &mut usize,
    scratch: &mut Vec<u8>,
    cap: usize,
) -> Result<Str, Error> {
    let huffman = block.get(*pos).is_some_and(|&b| b & 0x80 != 0);
    let len = read_int(block, pos, 0x7f)?;
    let at = *pos;
    let end = at.checked_add(len).ok_or(Error::Truncated)?;
    let raw = block.get(at..end).ok_or(Error::Truncated)?;
    *pos = end;
    if !huffman {
        return Ok(Str {
            src: Src::Block,
            at: len32(at),
            len: len32(len),
        });
    }
    let start = scratch.len();
    let n = huffman_decode(raw, scratch, cap)?;
    Ok(Str {
        src: Src::Scratch,
        at: len32(start),
        len: len32(n),
    })
}

/// Copies one string of a kept field out of the table buffer into `scratch`.
fn spill(table: &[u8], scratch: &mut Vec<u8>, src: &mut Src, at: &mut u32, len: u32) {
    if *src != Src::Table {
        return;
    }
    let from = *at as usize;
    let bytes = table
        .get(from..from.saturating_add(len as usize))
        .unwrap_or_default();
    *at = len32(scratch.len());
    *src = Src::Scratch;
    scratch.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests;
