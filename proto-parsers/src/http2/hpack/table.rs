//! The dynamic table (RFC 7541 section 4): entries' bytes in one buffer, their offsets and
//! lengths in a ring, eviction and compaction.

use std::collections::VecDeque;

use super::{ENTRY_OVERHEAD, Src, Str, len32};

/// One dynamic table entry: name then value, back to back at `at` in [`Table::buf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) at: u32,
    pub(super) name: u32,
    pub(super) value: u32,
}

impl Entry {
    fn size(&self) -> usize {
        self.name as usize + self.value as usize + ENTRY_OVERHEAD
    }
}

#[derive(Debug)]
pub(super) struct Table {
    /// Entry bytes. `buf[start..]` holds the live entries, oldest first; bytes before
    /// `start` belong to evicted entries and are dropped at the next compaction.
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    /// Newest first: HPACK index 62 is `entries[0]`.
    pub(super) entries: VecDeque<Entry>,
    /// Size as HPACK counts it (name + value + 32 per entry).
    pub(super) size: usize,
    pub(super) max_size: usize,
}

impl Table {
    pub(super) fn new(max_size: usize) -> Self {
        Table {
            buf: Vec::new(),
            start: 0,
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Bytes `buf` may hold before it is compacted.
    pub(super) fn room(&self) -> usize {
        self.max_size.saturating_mul(2)
    }

    pub(super) fn get(&self, i: usize) -> Option<(Str, Str)> {
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

    pub(super) fn evict_to(&mut self, max: usize) {
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

    pub(super) fn set_max_size(&mut self, max: usize) {
        self.max_size = max;
        self.evict_to(max);
    }

    /// Moves the live bytes to the front of `buf`; returns by how much they moved.
    pub(super) fn compact(&mut self) -> u32 {
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
