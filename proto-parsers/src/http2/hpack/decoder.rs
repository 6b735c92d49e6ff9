//! [`Decoder`]: one direction's decoding state and the header block decoder (RFC 7541
//! section 6), the insertion of fields into the dynamic table, and [`View`] over the bytes
//! of the decoded fields.

use super::huffman::huffman_decode;
use super::table::{Entry, Table};
use super::{
    DEFAULT_TABLE_SIZE, Decoded, ENTRY_OVERHEAD, Error, Field, Limits, MIN_TABLE_BUF,
    RESERVE_AT_ONCE, STATIC, STATIC_AT, STATIC_BYTES, Src, Str, len32, read_int,
};

/// One direction's HPACK decoding state: the dynamic table and the size limit.
#[derive(Debug)]
pub struct Decoder {
    pub(super) table: Table,
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
