//! TCP reassembly: one [`Stream`] per direction of a flow turns segments, in whatever order
//! they arrive, into an ordered sequence of [`Chunk`]s for the inspector.
//!
//! Shape (in the spirit of smoltcp's assembler, written for a passive observer):
//! - **In order, nothing held**: the segment is handed to the inspector straight from the
//!   caller's slice. No copy, no allocation; an idle stream owns no heap at all.
//! - **Out of order**: the new bytes are copied into a ring buffer owned by the stream, indexed
//!   by their distance from `next_seq`, and a short sorted list of held ranges records what is
//!   present. Adjacent ranges are merged, so the range count measures *holes*, not segments: a
//!   single loss followed by a full window of segments is one range. When the hole fills, the
//!   new bytes come from the caller's slice and the held ones from the ring, in stream order.
//!   The ring grows by doubling only as far as the held data reaches and is freed as soon as
//!   nothing is held.
//!
//! **Overlap rule: FIRST WINS.** Bytes already delivered or already held for a sequence range are
//! kept; a later segment's bytes for that range are ignored and only its new, non-overlapping
//! part is used. If the later bytes for a *held* range differ from the kept ones the outcome has
//! `overlap_mismatch` set: that is an evasion signal, and inline the caller drops that packet so
//! the receiver can never get bytes the inspector did not see. Such a segment is not used at
//! all, not even its new bytes: since the packet is dropped, whatever the sender puts in its
//! place later must be judged then, not shadowed by a copy the receiver never got. Delivered
//! bytes are not retained (that is what keeps the in-order path zero-copy), so a
//! retransmission of already delivered bytes is dropped as a duplicate without a comparison.
//!
//! **Delivered bytes are compared too, where it matters.** A stream that [`Stream::retain`]s
//! (the client's: the bytes policy judges) keeps what it delivered until the peer
//! acknowledges it ([`Stream::ack`]), so that a retransmission of a delivered range is
//! compared with the copy the inspector judged. A receiver that discarded the first copy
//! (a bad checksum, no ACK flag, an old timestamp, an acknowledgement of unsent data: any
//! reason, modelled or not) acts on the second, so two copies that differ set
//! `overlap_mismatch` whatever made the receiver drop the first. Acknowledged bytes are the
//! receiver's for good (it ignores later copies), so they need not be kept. What could not
//! be kept (the per-stream cap or the budget) and is retransmitted unacknowledged sets
//! `unverified`: the caller cannot know which copy the receiver has.
//!
//! **Bounds.** Each stream holds at most `max_ooo_bytes_per_stream` bytes of buffer (the span
//! from `next_seq` to the end of the furthest held byte) and at most
//! `max_ooo_segments_per_stream` separate held ranges; all streams of a worker share one
//! [`Budget`] for their buffers. A segment that cannot be held under those caps is not held
//! (`dropped_cap`, and a counter). The stream is then stuck behind a hole while at its cap, and
//! the policy is to **declare a gap**: deliver `Chunk::Gap(hole_len)` followed by the held data
//! after it, one hole at a time, until the segment fits (or, with nothing left to free, deliver
//! a gap up to the segment and the segment itself). Memory stays bounded, the inspector still
//! sees every byte the receiver can see, and it is always told where bytes are missing.
//! Bytes that later arrive for a range declared a gap are in the past and dropped as duplicates.
//!
//! **Holes the receiver acknowledged are gaps at once.** A passive observer loses packets
//! the receiver got (capture loss on a tap, a mirror port dropping under load). When the
//! receiver acknowledged bytes of a hole ([`Stream::ack`], on a retaining stream: the
//! client's, whose acknowledgements the worker follows) and the sender has sent bytes
//! after it (held data, or the segment or FIN being placed), the acknowledged part of the
//! hole will never be seen: it is declared a gap when the sender's next segment arrives,
//! as Suricata does, instead of holding everything after it until the cap or the close
//! (which, on a short connection, is its end, when nothing is judged any more). Both sides'
//! word is needed: an acknowledgement alone may be of bytes never sent (the sender would
//! discard that segment, RFC 9293 3.10.7.4), and data after a hole alone is ordinary
//! reordering. A spoofed acknowledgement can make a hole a gap early, nothing worse: a gap
//! in the client's bytes leaves the flow to the policy's uninspectable decision unless the
//! parser skipped it inside a body whose length it counts, which the receiver frames the
//! same way.
//!
//! Sequence numbers use wrapping arithmetic throughout. A segment ending more than
//! [`MAX_AHEAD`] bytes past `next_seq` is garbage (counted in `out_of_window`, never held).
//! A flow picked up mid-stream (no SYN seen) starts at the first data segment's sequence number.
//!
//! The budget is returned by [`Stream::close`]: a stream must be closed before it is dropped,
//! or its buffer stays charged to the worker's budget.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod budget;
mod gap;
mod held;
mod kept;

pub use budget::{Budget, ReassemblyCounters};

use budget::bump;
use held::{Held, NoRoom};
use kept::{Check, Kept};

/// Data ending further than this past `next_seq` is treated as garbage. Real windows (even
/// scaled ones) are far smaller; 1 GiB keeps every held offset well inside the half of the
/// sequence space where wrapping comparisons are unambiguous.
pub const MAX_AHEAD: u32 = 1 << 30;

/// The smallest ring allocated for out-of-order data; it doubles from here up to the stream cap.
const MIN_RING: usize = 4096;

/// The smallest ring of kept bytes.
const MIN_KEPT: usize = 512;

/// `StreamConfig::max_kept_bytes_per_stream`'s default.
const MAX_KEPT_DEFAULT: u32 = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Most bytes of out-of-order buffer one direction of one flow may hold.
    pub max_ooo_bytes_per_stream: u32,
    /// Most separate held ranges (holes after `next_seq`) one direction may track.
    pub max_ooo_segments_per_stream: u16,
    /// Most delivered, unacknowledged bytes a retaining stream keeps for comparison (a
    /// flight of data: Linux's default receive buffer tops out at 6 MiB, most flights of
    /// requests are far smaller).
    pub max_kept_bytes_per_stream: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_ooo_bytes_per_stream: 256 * 1024,
            max_ooo_segments_per_stream: 64,
            max_kept_bytes_per_stream: MAX_KEPT_DEFAULT,
        }
    }
}

/// What the inspector receives, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes are missing from the stream at this point.
    Gap(u32),
}

/// What one call to [`Stream::segment`] did.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// Data bytes delivered by this call (from this segment and from held data it released).
    pub delivered: u32,
    /// The segment brought no new byte.
    pub duplicate: bool,
    /// Some of its bytes differ from bytes already held for the same range (evasion signal).
    pub overlap_mismatch: bool,
    /// It could not be held within the stream or global caps.
    pub dropped_cap: bool,
    /// A `Chunk::Gap` was delivered during this call.
    pub gap: bool,
    /// It retransmits unacknowledged bytes that were not kept: which copy the receiver
    /// has is unknown.
    pub unverified: bool,
}

const F_INIT: u8 = 1;
const F_DATA: u8 = 2;
const F_FIN: u8 = 4;
/// Delivered bytes are kept until acknowledged ([`Stream::retain`]).
const F_RETAIN: u8 = 8;

/// One direction of a TCP flow. No heap while nothing is out of order and, for a retaining
/// stream, nothing delivered is unacknowledged since the last time its buffer was grown.
#[derive(Debug, Default)]
pub struct Stream {
    next_seq: u32,
    fin_seq: u32,
    flags: u8,
    held: Option<Box<Held>>,
    /// The peer's acknowledgement: bytes before it are the receiver's for good.
    acked: u32,
    /// Delivered bytes in `[next_seq - kept.len, next_seq)`; those in
    /// `[acked, next_seq - kept.len)` could not be kept.
    kept: Option<Box<Kept>>,
}

impl Stream {
    pub fn new() -> Self {
        Stream::default()
    }

    /// SYN seen: the first data byte is `isn + 1`. Ignored once data has been seen, since
    /// what the inspector already consumed cannot be rewound (a retransmitted SYN is
    /// harmless). The caller decides whether a SYN may move the stream at all (a SYN after
    /// the handshake must not: RFC 5961).
    pub fn set_isn(&mut self, isn: u32) {
        if self.flags & F_DATA == 0 {
            self.next_seq = isn.wrapping_add(1);
            self.acked = self.next_seq;
            self.flags |= F_INIT;
        }
    }

    /// False until a SYN or the first segment; a flow picked up mid-stream starts at the
    /// first data segment's sequence number.
    pub fn is_initialized(&self) -> bool {
        self.flags & F_INIT != 0
    }

    /// The sequence number of the next byte the inspector expects.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Out-of-order data bytes held now.
    pub fn held_bytes(&self) -> u32 {
        self.held.as_ref().map_or(0, |h| h.bytes)
    }

    /// Buffer bytes this stream has charged to the budget (at least `held_bytes`).
    pub fn buffer_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.ring.len())
    }

    /// Separate held ranges (holes before data) now.
    pub fn held_ranges(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.ranges.len())
    }

    /// Sequence number just past the data, from the first FIN seen.
    pub fn fin_seq(&self) -> Option<u32> {
        (self.flags & F_FIN != 0).then_some(self.fin_seq)
    }

    /// A FIN was seen and every byte before it has been delivered (or declared a gap).
    pub fn is_finished(&self) -> bool {
        self.fin_seq() == Some(self.next_seq) && self.held.is_none()
    }

    /// Feeds one segment (`payload` may be empty for a bare FIN). Whatever becomes contiguous
    /// is passed to `deliver` in stream order before this returns.
    pub fn segment(
        &mut self,
        cfg: &StreamConfig,
        budget: &mut Budget,
        seq: u32,
        payload: &[u8],
        fin: bool,
        deliver: &mut dyn FnMut(Chunk<'_>),
    ) -> SegmentOutcome {
        let mut out = SegmentOutcome::default();
        if !self.is_initialized() {
            self.next_seq = seq;
            self.acked = seq;
            self.flags |= F_INIT;
        }
        let len = match u32::try_from(payload.len()) {
            Ok(l) if l <= MAX_AHEAD => l,
            _ => {
                bump(&mut budget.counters.out_of_window);
                return out;
            }
        };
        if fin && self.flags & F_FIN == 0 {
            // First FIN wins, like the data: a later FIN elsewhere cannot move the end.
            self.fin_seq = seq.wrapping_add(len);
            self.flags |= F_FIN;
        }
        self.skip_acknowledged_holes(seq, payload.is_empty() && !fin, budget, &mut out, deliver);
        if payload.is_empty() {
            return out;
        }
        self.flags |= F_DATA;
        let mut capped = false;
        // Each failed attempt releases at least one held range or gives up the hole before
        // this segment (after which it is in order and cannot fail), so this bound is never
        // reached; it is here so that no input can make this loop spin.
        let attempts = usize::from(cfg.max_ooo_segments_per_stream) + 3;
        for _ in 0..attempts {
            let Err(why) = self.place(cfg, budget, seq, payload, &mut out, deliver) else {
                break;
            };
            out.dropped_cap = true;
            if !capped {
                capped = true;
                let c = &mut budget.counters;
                match why {
                    NoRoom::Stream => bump(&mut c.stream_cap_hits),
                    NoRoom::Segments => bump(&mut c.segment_cap_hits),
                    NoRoom::Global => bump(&mut c.global_cap_hits),
                }
            }
            // Give up as little as possible: the hole before the segment if it lies in the
            // first hole (it is then in order), else the first hole and the data after it.
            let to_segment = seq.wrapping_sub(self.next_seq);
            match self.first_hole() {
                Some(h) if h < to_segment => self.skip_first_hole(budget, &mut out, deliver),
                _ => self.gap(to_segment, budget, &mut out, deliver),
            }
        }
        out
    }

    /// Flow ended: held data after a hole is delivered after a `Chunk::Gap` for the hole, a
    /// missing tail before a seen FIN becomes a final gap, and the buffer goes back to the
    /// budget.
    pub fn close(&mut self, budget: &mut Budget, deliver: &mut dyn FnMut(Chunk<'_>)) {
        let mut out = SegmentOutcome::default();
        let mut rounds = self.held_ranges();
        while self.held.is_some() && rounds > 0 {
            self.skip_first_hole(budget, &mut out, deliver);
            rounds -= 1;
        }
        self.free(budget);
        if let Some(fin) = self.fin_seq() {
            let missing = fin.wrapping_sub(self.next_seq);
            if missing > 0 && missing <= MAX_AHEAD {
                self.gap(missing, budget, &mut out, deliver);
            }
        }
        self.free_kept(budget);
    }

    fn free(&mut self, budget: &mut Budget) {
        if let Some(h) = self.held.take() {
            budget.give(h.ring.len());
        }
    }

    /// Gives the kept bytes' buffer back (the stream is closing).
    fn free_kept(&mut self, budget: &mut Budget) {
        if let Some(k) = self.kept.take() {
            budget.give(k.ring.len());
        }
    }

    /// Places one segment: delivers it if it starts at or before `next_seq`, else holds its
    /// new bytes. Counters and outcome flags are only touched when it succeeds, so a retry
    /// after freeing room counts the segment once.
    fn place(
        &mut self,
        cfg: &StreamConfig,
        budget: &mut Budget,
        seq: u32,
        payload: &[u8],
        out: &mut SegmentOutcome,
        deliver: &mut dyn FnMut(Chunk<'_>),
    ) -> Result<(), NoRoom> {
        let start = i64::from(seq.wrapping_sub(self.next_seq) as i32);
        let end = start + payload.len() as i64;
        if start < 0 && self.flags & F_RETAIN != 0 && end > start {
            // Bytes already delivered: the copy the receiver acts on must be the one judged.
            let back = u32::try_from(-start).unwrap_or(u32::MAX);
            let n = usize::try_from((-start).min(payload.len() as i64)).unwrap_or(0);
            bump(&mut budget.counters.retransmissions_checked);
            match self.check_delivered(back, payload.get(..n).unwrap_or_default()) {
                Check::Same => {}
                Check::Differs => {
                    out.overlap_mismatch = true;
                    let c = &mut budget.counters;
                    bump(&mut c.overlap_mismatches);
                    bump(&mut c.overlaps);
                    return Ok(());
                }
                Check::Unverified => {
                    out.unverified = true;
                    bump(&mut budget.counters.unverified);
                }
            }
        }
        if end <= 0 {
            out.duplicate = true;
            bump(&mut budget.counters.duplicates);
            return Ok(());
        }
        if end > i64::from(MAX_AHEAD) {
            bump(&mut budget.counters.out_of_window);
            return Ok(());
        }
        // The part before next_seq was delivered (or declared a gap) already: first wins.
        let past = usize::try_from(-start).unwrap_or(0);
        let data = payload.get(past..).unwrap_or_default();
        let off = u32::try_from(start).unwrap_or(0);
        let scan = self.scan(off, data);
        let c = &mut budget.counters;
        if scan.mismatch {
            // Not even the new bytes are used: inline this packet is dropped, so whatever the
            // sender retransmits in its place must be judged afresh, not shadowed by a copy the
            // receiver never got.
            out.overlap_mismatch = true;
            bump(&mut c.overlap_mismatches);
            bump(&mut c.overlaps);
            return Ok(());
        }
        let n = u32::try_from(data.len()).unwrap_or(MAX_AHEAD);
        if scan.covered >= n {
            out.duplicate = true;
            bump(&mut c.duplicates);
            bump(&mut c.overlaps);
            return Ok(());
        }
        if off > 0 {
            return self.hold(cfg, budget, off, data, &scan);
        }
        if scan.covered > 0 || past > 0 {
            bump(&mut c.overlaps);
        }
        bump(&mut c.in_order_segments);
        let n = self.release(data, budget, deliver);
        out.delivered = out.delivered.saturating_add(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
