//! Giving up on holes: a `Chunk::Gap` for bytes that will never be seen (acknowledged by
//! the receiver, or past the caps), then the held data after them.

use super::budget::{Budget, add, bump};
use super::held::{held_start, ring_index};
use super::{Chunk, MAX_AHEAD, SegmentOutcome, Stream};

impl Stream {
    /// Declares a gap for what the receiver acknowledged of the holes before data the sender
    /// has sent (held ranges, and the segment at `seq` unless `empty`), and delivers the
    /// held data that becomes contiguous.
    pub(super) fn skip_acknowledged_holes(
        &mut self,
        seq: u32,
        empty: bool,
        budget: &mut Budget,
        out: &mut SegmentOutcome,
        deliver: &mut dyn FnMut(Chunk<'_>),
    ) {
        // Each round gives up one hole (or ends), so the held ranges bound the rounds.
        for _ in 0..=self.held_ranges() {
            let Some(k) = self.kept.as_deref_mut() else {
                return;
            };
            let Some(ahead) = k.ahead else {
                return;
            };
            let acked = ahead.wrapping_sub(self.next_seq);
            if acked == 0 || acked > MAX_AHEAD {
                // Delivered up to it (or past it): nothing is missing.
                k.ahead = None;
                return;
            }
            let at_seq = seq.wrapping_sub(self.next_seq);
            let at_seq = (!empty && at_seq > 0 && at_seq <= MAX_AHEAD).then_some(at_seq);
            let sent_after = match (self.first_hole(), at_seq) {
                (Some(h), Some(s)) => h.min(s),
                (Some(h), None) => h,
                (None, Some(s)) => s,
                (None, None) => return,
            };
            let hole = acked.min(sent_after);
            if hole == 0 {
                return;
            }
            self.gap(hole, budget, out, deliver);
            let n = self.release(&[], budget, deliver);
            out.delivered = out.delivered.saturating_add(n);
        }
    }

    /// Bytes missing before the first held range.
    pub(super) fn first_hole(&self) -> Option<u32> {
        let held = self.held.as_deref()?;
        held.ranges.first().map(|r| held_start(r, self.next_seq))
    }

    /// Gives up the hole before the first held range: a gap for it, then the held data that
    /// is now contiguous.
    pub(super) fn skip_first_hole(
        &mut self,
        budget: &mut Budget,
        out: &mut SegmentOutcome,
        deliver: &mut dyn FnMut(Chunk<'_>),
    ) {
        let Some(held) = self.held.as_deref() else {
            return;
        };
        let Some(first) = held.ranges.first() else {
            self.free(budget);
            return;
        };
        let hole = held_start(first, self.next_seq);
        self.gap(hole, budget, out, deliver);
        let n = self.release(&[], budget, deliver);
        out.delivered = out.delivered.saturating_add(n);
    }

    /// Declares `hole` bytes at `next_seq` missing and moves past them.
    pub(super) fn gap(
        &mut self,
        hole: u32,
        budget: &mut Budget,
        out: &mut SegmentOutcome,
        deliver: &mut dyn FnMut(Chunk<'_>),
    ) {
        if hole == 0 {
            return;
        }
        deliver(Chunk::Gap(hole));
        out.gap = true;
        bump(&mut budget.counters.gaps);
        add(&mut budget.counters.gap_bytes, hole);
        self.next_seq = self.next_seq.wrapping_add(hole);
        // What was kept no longer ends at `next_seq`, and the missing bytes were never
        // judged (the inspector was told of the gap and decided what it means): later
        // copies of anything before here are not compared.
        self.acked = self.next_seq;
        if let Some(k) = self.kept.as_deref_mut() {
            k.len = 0;
        }
        if let Some(h) = self.held.as_deref_mut() {
            h.head = ring_index(h.head, hole, h.ring.len());
        }
    }
}
