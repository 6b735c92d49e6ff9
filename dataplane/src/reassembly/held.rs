//! Out-of-order segments: the ring of held bytes, its sorted ranges, the overlap check
//! (first wins) and the release of held data once contiguous.

use super::budget::{Budget, add, bump};
use super::kept::keep;
use super::{Chunk, MAX_AHEAD, MIN_RING, Stream, StreamConfig};

/// Out-of-order data of one stream.
#[derive(Debug)]
pub(super) struct Held {
    /// Ring buffer; the byte at offset `o` from `next_seq` lives at `(head + o) % ring.len()`.
    /// Its whole length is charged to the budget.
    pub(super) ring: Vec<u8>,
    pub(super) head: usize,
    /// Held ranges: sorted, disjoint, never adjacent, all strictly after `next_seq` and inside
    /// the ring.
    pub(super) ranges: Vec<Range>,
    /// Data bytes in `ranges`.
    pub(super) bytes: u32,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Range {
    seq: u32,
    len: u32,
}

impl Held {
    /// The ring bytes for `len` bytes at offset `o`, as two slices (the second non-empty when
    /// the run wraps around the end of the ring).
    fn parts(&self, o: u32, len: u32) -> (&[u8], &[u8]) {
        let cap = self.ring.len();
        if cap == 0 {
            return (&[], &[]);
        }
        let start = ring_index(self.head, o, cap);
        let len = (len as usize).min(cap);
        let first = len.min(cap - start);
        let a = self.ring.get(start..start + first).unwrap_or_default();
        let b = self.ring.get(..len - first).unwrap_or_default();
        (a, b)
    }

    /// True if the ring bytes at offset `o` equal `data`.
    fn same(&self, o: u32, data: &[u8]) -> bool {
        let (a, b) = self.parts(o, u32::try_from(data.len()).unwrap_or(u32::MAX));
        a.len() + b.len() == data.len() && data.starts_with(a) && data.ends_with(b)
    }

    /// Grows the ring so offsets `[0, needed)` fit, keeping the held bytes where their offsets
    /// say. Fails (and changes nothing) if the stream cap or the budget says no.
    fn grow(&mut self, needed: usize, max: usize, budget: &mut Budget) -> Result<(), NoRoom> {
        let old = self.ring.len();
        if needed <= old {
            return Ok(());
        }
        if needed > max {
            return Err(NoRoom::Stream);
        }
        // Doubling keeps growth amortised; if the budget cannot give the doubled size, the
        // exact size may still fit.
        let want = needed.next_power_of_two().max(MIN_RING).min(max);
        let new = if budget.try_take(want - old) {
            want
        } else if budget.try_take(needed - old) {
            needed
        } else {
            return Err(NoRoom::Global);
        };
        // Linearise: the byte at offset 0 moves to index 0 of the new ring.
        let mut ring = vec![0u8; new];
        let (tail, front) = self.ring.split_at_checked(self.head).unwrap_or_default();
        if let Some((d1, rest)) = ring.split_at_mut_checked(front.len()) {
            d1.copy_from_slice(front);
            if let Some(d2) = rest.get_mut(..tail.len()) {
                d2.copy_from_slice(tail);
            }
        }
        self.ring = ring;
        self.head = 0;
        Ok(())
    }
}

/// Copies `data` into the ring at offset `o` from `head`, wrapping around its end.
fn write(ring: &mut [u8], head: usize, o: u32, data: &[u8]) {
    let cap = ring.len();
    if cap == 0 {
        return;
    }
    let start = ring_index(head, o, cap);
    let first = data.len().min(cap - start);
    let Some((low, high)) = ring.split_at_mut_checked(start) else {
        return;
    };
    let Some((d1, d2)) = data.split_at_checked(first) else {
        return;
    };
    if let Some(dst) = high.get_mut(..first) {
        dst.copy_from_slice(d1);
    }
    if let Some(dst) = low.get_mut(..d2.len()) {
        dst.copy_from_slice(d2);
    }
}

pub(super) fn ring_index(head: usize, o: u32, cap: usize) -> usize {
    // u64 so a huge offset cannot overflow on a 32-bit target.
    let cap64 = cap as u64;
    ((head as u64 % cap64 + u64::from(o) % cap64) % cap64) as usize
}

/// How a segment relates to the held ranges.
#[derive(Default, Clone, Copy, Debug)]
pub(super) struct Scan {
    /// Its bytes already held.
    pub(super) covered: u32,
    /// Held ranges it overlaps or is adjacent to (they merge with it).
    touching: usize,
    /// Some held byte differs from its byte for the same offset.
    pub(super) mismatch: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NoRoom {
    Stream,
    Segments,
    Global,
}

impl Stream {
    /// How `data` at offset `off` from `next_seq` relates to the held ranges.
    pub(super) fn scan(&self, off: u32, data: &[u8]) -> Scan {
        let mut s = Scan::default();
        let Some(held) = self.held.as_deref() else {
            return s;
        };
        let n = u32::try_from(data.len()).unwrap_or(MAX_AHEAD);
        let end = off.saturating_add(n);
        for r in &held.ranges {
            let a = held_start(r, self.next_seq);
            let b = a.saturating_add(r.len);
            if a > end {
                break;
            }
            if b >= off {
                s.touching += 1;
            }
            let (lo, hi) = (a.max(off), b.min(end));
            if lo < hi {
                s.covered = s.covered.saturating_add(hi - lo);
                let theirs = data
                    .get((lo - off) as usize..(hi - off) as usize)
                    .unwrap_or_default();
                s.mismatch |= !held.same(lo, theirs);
            }
        }
        s
    }

    /// Delivers `data`, which starts exactly at `next_seq`, merged with the held ranges it
    /// reaches (held bytes win; [`Stream::scan`] has checked they agree), then any held ranges
    /// that became contiguous. Returns the bytes delivered.
    pub(super) fn release(
        &mut self,
        data: &[u8],
        budget: &mut Budget,
        deliver: &mut dyn FnMut(Chunk<'_>),
    ) -> u32 {
        let n = u32::try_from(data.len()).unwrap_or(MAX_AHEAD);
        let Some(held) = self.held.as_deref_mut() else {
            // The fast path: nothing held, the caller's bytes go straight through.
            if n > 0 {
                deliver(Chunk::Data(data));
                self.next_seq = self.next_seq.wrapping_add(n);
                add(&mut budget.counters.delivered_bytes, n);
                self.keep(data, budget);
            }
            return n;
        };
        let (mut cursor, mut consumed, mut consumed_bytes) = (0u32, 0usize, 0u32);
        let unacked0 = self.next_seq.wrapping_sub(self.acked);
        for r in &held.ranges {
            let a = held_start(r, self.next_seq);
            if a > cursor {
                if cursor >= n {
                    break;
                }
                let upto = a.min(n);
                if let Some(s) = data.get(cursor as usize..upto as usize) {
                    deliver(Chunk::Data(s));
                    let unacked = unacked0.wrapping_add(upto);
                    keep(&mut self.kept, self.flags, unacked, s, budget);
                }
                cursor = upto;
                if a > cursor {
                    break;
                }
            }
            let (p, q) = held.parts(a, r.len);
            let mut upto = a;
            for s in [p, q] {
                if !s.is_empty() {
                    deliver(Chunk::Data(s));
                    upto = upto.saturating_add(u32::try_from(s.len()).unwrap_or(u32::MAX));
                    let unacked = unacked0.wrapping_add(upto);
                    keep(&mut self.kept, self.flags, unacked, s, budget);
                }
            }
            cursor = a.saturating_add(r.len);
            consumed += 1;
            consumed_bytes = consumed_bytes.saturating_add(r.len);
        }
        if cursor < n {
            if let Some(s) = data.get(cursor as usize..) {
                deliver(Chunk::Data(s));
                let unacked = unacked0.wrapping_add(n);
                keep(&mut self.kept, self.flags, unacked, s, budget);
            }
            cursor = n;
        }
        held.ranges.drain(..consumed.min(held.ranges.len()));
        held.bytes = held.bytes.saturating_sub(consumed_bytes);
        held.head = ring_index(held.head, cursor, held.ring.len());
        self.next_seq = self.next_seq.wrapping_add(cursor);
        add(&mut budget.counters.delivered_bytes, cursor);
        if held.ranges.is_empty() {
            self.free(budget);
        }
        cursor
    }

    /// Holds the new bytes of a segment starting `off > 0` bytes after `next_seq`.
    pub(super) fn hold(
        &mut self,
        cfg: &StreamConfig,
        budget: &mut Budget,
        off: u32,
        data: &[u8],
        scan: &Scan,
    ) -> Result<(), NoRoom> {
        let n = u32::try_from(data.len()).unwrap_or(MAX_AHEAD);
        let end = off.saturating_add(n);
        let next_seq = self.next_seq;
        if self.held_ranges() + 1 - scan.touching > usize::from(cfg.max_ooo_segments_per_stream) {
            return Err(NoRoom::Segments);
        }
        let max = cfg.max_ooo_bytes_per_stream as usize;
        if end as usize > max {
            return Err(NoRoom::Stream);
        }
        let held = &mut **self.held.get_or_insert_with(|| {
            Box::new(Held {
                ring: Vec::new(),
                head: 0,
                ranges: Vec::new(),
                bytes: 0,
            })
        });
        if let Err(why) = held.grow(end as usize, max, budget) {
            if held.ranges.is_empty() {
                self.held = None;
            }
            return Err(why);
        }
        // Copy the uncovered pieces, then merge the touching ranges and the new one into one.
        let mut cursor = off;
        let mut first_touch = None;
        let mut merged = (off, end);
        for (i, r) in held.ranges.iter().enumerate() {
            let a = held_start(r, next_seq);
            let b = a.saturating_add(r.len);
            if a > end {
                break;
            }
            if b < off {
                continue;
            }
            first_touch.get_or_insert(i);
            merged = (merged.0.min(a), merged.1.max(b));
            if a > cursor {
                let piece = data.get((cursor - off) as usize..(a.min(end) - off) as usize);
                write(&mut held.ring, held.head, cursor, piece.unwrap_or_default());
            }
            cursor = cursor.max(b);
        }
        if cursor < end {
            let piece = data.get((cursor - off) as usize..).unwrap_or_default();
            write(&mut held.ring, held.head, cursor, piece);
        }
        let merged = Range {
            seq: next_seq.wrapping_add(merged.0),
            len: merged.1 - merged.0,
        };
        match first_touch {
            Some(i) => {
                held.ranges
                    .drain(i + 1..(i + scan.touching).min(held.ranges.len()));
                if let Some(r) = held.ranges.get_mut(i) {
                    *r = merged;
                }
            }
            None => {
                let at = held
                    .ranges
                    .partition_point(|r| held_start(r, next_seq) < off);
                held.ranges.insert(at, merged);
            }
        }
        held.bytes = held.bytes.saturating_add(n - scan.covered);
        let c = &mut budget.counters;
        bump(&mut c.ooo_segments);
        if scan.covered > 0 {
            bump(&mut c.overlaps);
        }
        Ok(())
    }
}

pub(super) fn held_start(r: &Range, next_seq: u32) -> u32 {
    r.seq.wrapping_sub(next_seq)
}
