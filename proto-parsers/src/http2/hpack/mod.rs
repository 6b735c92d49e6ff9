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
//!   table in `huffman.rs` (the RFC's table written out as data). EOS in a string, padding
//!   longer than 7 bits or padding that is not all ones are errors.
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

mod decoder;
mod huffman;
mod static_table;
mod table;
#[cfg(test)]
mod tests;

pub use decoder::{Decoder, View};
#[cfg(test)]
use huffman::HUFFMAN_CODES;
pub use huffman::huffman_decode;
use static_table::{STATIC, STATIC_AT, STATIC_BYTES};

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
