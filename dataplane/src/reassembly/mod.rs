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

/// Counters of one worker's reassembly (all its streams). Saturating.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Segments whose data started at `next_seq` and were delivered at once.
    pub in_order_segments: u64,
    /// Segments whose new bytes were held for later.
    pub ooo_segments: u64,
    /// Data bytes handed to the inspector (gaps excluded).
    pub delivered_bytes: u64,
    /// Most bytes of out-of-order buffer charged to the budget at one time.
    pub ooo_bytes_held_peak: u64,
    /// Segments that brought no new byte (all delivered or all held already).
    pub duplicates: u64,
    /// Segments that covered some bytes already delivered or held.
    pub overlaps: u64,
    /// Segments whose bytes for a held range differ from the kept ones (first wins).
    pub overlap_mismatches: u64,
    /// Holes given up on and delivered as `Chunk::Gap`.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Segments that would have pushed a stream past `max_ooo_bytes_per_stream`.
    pub stream_cap_hits: u64,
    /// Segments that would have pushed a stream past `max_ooo_segments_per_stream` ranges.
    pub segment_cap_hits: u64,
    /// Segments that did not fit in the worker's global [`Budget`].
    pub global_cap_hits: u64,
    /// Segments ending more than [`MAX_AHEAD`] bytes past `next_seq`.
    pub out_of_window: u64,
    /// Retransmissions of delivered bytes compared with the kept copy.
    pub retransmissions_checked: u64,
    /// Delivered bytes that could not be kept for comparison (stream cap or budget).
    pub kept_cap_hits: u64,
    /// Retransmissions of unacknowledged bytes that had not been kept.
    pub unverified: u64,
}

impl ReassemblyCounters {
    /// Adds another worker's counters; the peak is the largest of any one worker (the
    /// budgets are separate, so the peaks never add up in one place).
    pub fn merge(&mut self, o: &ReassemblyCounters) {
        self.in_order_segments = self.in_order_segments.saturating_add(o.in_order_segments);
        self.ooo_segments = self.ooo_segments.saturating_add(o.ooo_segments);
        self.delivered_bytes = self.delivered_bytes.saturating_add(o.delivered_bytes);
        self.ooo_bytes_held_peak = self.ooo_bytes_held_peak.max(o.ooo_bytes_held_peak);
        self.duplicates = self.duplicates.saturating_add(o.duplicates);
        self.overlaps = self.overlaps.saturating_add(o.overlaps);
        self.overlap_mismatches = self.overlap_mismatches.saturating_add(o.overlap_mismatches);
        self.gaps = self.gaps.saturating_add(o.gaps);
        self.gap_bytes = self.gap_bytes.saturating_add(o.gap_bytes);
        self.stream_cap_hits = self.stream_cap_hits.saturating_add(o.stream_cap_hits);
        self.segment_cap_hits = self.segment_cap_hits.saturating_add(o.segment_cap_hits);
        self.global_cap_hits = self.global_cap_hits.saturating_add(o.global_cap_hits);
        self.out_of_window = self.out_of_window.saturating_add(o.out_of_window);
        self.retransmissions_checked = self
            .retransmissions_checked
            .saturating_add(o.retransmissions_checked);
        self.kept_cap_hits = self.kept_cap_hits.saturating_add(o.kept_cap_hits);
        self.unverified = self.unverified.saturating_add(o.unverified);
    }
}

fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}

fn add(c: &mut u64, n: u32) {
    *c = c.saturating_add(u64::from(n));
}

/// Per-worker budget for out-of-order buffer bytes held by all streams of that worker. A
/// worker owns its budget, so there are no atomics; it also carries the worker's counters
/// because every stream operation already has it at hand.
#[derive(Debug)]
pub struct Budget {
    pub cap: usize,
    used: usize,
    pub counters: ReassemblyCounters,
    /// Most delivered bytes one retaining stream keeps
    /// (`StreamConfig::max_kept_bytes_per_stream`; here because every stream operation
    /// has the budget at hand).
    pub max_kept_per_stream: u32,
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Budget {
            cap,
            used: 0,
            counters: ReassemblyCounters::default(),
            max_kept_per_stream: MAX_KEPT_DEFAULT,
        }
    }

    /// Buffer bytes currently charged by all streams.
    pub fn used(&self) -> usize {
        self.used
    }

    fn try_take(&mut self, n: usize) -> bool {
        match self.used.checked_add(n) {
            Some(u) if u <= self.cap => {
                self.used = u;
                self.counters.ooo_bytes_held_peak = self
                    .counters
                    .ooo_bytes_held_peak
                    .max(u64::try_from(u).unwrap_or(u64::MAX));
                true
            }
            _ => false,
        }
    }

    fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
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

/// Delivered, unacknowledged bytes of a retaining stream: a ring whose last `len` bytes
/// (ending at `next_seq`) are kept.
#[derive(Debug)]
struct Kept {
    ring: Vec<u8>,
    /// Index just past the newest byte.
    tail: usize,
    len: u32,
    /// Most bytes kept (the stream's cap).
    max: u32,
    /// The furthest acknowledgement past `next_seq`: the receiver has bytes the stream has
    /// not delivered. Kept here rather than in [`Stream`], which stays within 32 bytes: a
    /// stream whose peer's acknowledgements are followed is a retaining one, and it has
    /// this box from its first delivered byte on.
    ahead: Option<u32>,
}

impl Kept {
    /// Appends delivered bytes, dropping the oldest beyond the ring's size.
    fn push(&mut self, data: &[u8]) {
        let cap = self.ring.len();
        if cap == 0 {
            return;
        }
        let data = if data.len() > cap {
            data.get(data.len() - cap..).unwrap_or_default()
        } else {
            data
        };
        let first = data.len().min(cap - self.tail);
        let (a, b) = data.split_at(first);
        if let Some(dst) = self.ring.get_mut(self.tail..self.tail + first) {
            dst.copy_from_slice(a);
        }
        if let Some(dst) = self.ring.get_mut(..b.len()) {
            dst.copy_from_slice(b);
        }
        self.tail = (self.tail + data.len()) % cap;
        self.len = self
            .len
            .saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX))
            .min(u32::try_from(cap).unwrap_or(u32::MAX));
    }

    /// Whether `data` equals the kept bytes that start `back` bytes before the newest end.
    fn same(&self, back: u32, data: &[u8]) -> bool {
        let cap = self.ring.len();
        if cap == 0 || back > self.len || data.len() > back as usize {
            return false;
        }
        let start = (self.tail + cap - back as usize % cap) % cap;
        let first = data.len().min(cap - start);
        let (a, b) = data.split_at(first);
        self.ring.get(start..start + first) == Some(a) && self.ring.get(..b.len()) == Some(b)
    }

    /// Grows the ring to hold `want` bytes (power of two, at most `max`), keeping the
    /// newest bytes in order; false if the budget says no.
    fn grow(&mut self, want: usize, budget: &mut Budget) -> bool {
        let old = self.ring.len();
        // Requests are mostly a few hundred bytes: start small (zeroing a large ring per
        // flow showed in profiles), double as a flight grows.
        let new = want
            .next_power_of_two()
            .max(MIN_KEPT)
            .min(self.max as usize);
        if new <= old {
            return true;
        }
        if !budget.try_take(new - old) {
            return false;
        }
        let mut ring = vec![0u8; new];
        let n = self.len as usize;
        // Linearise the newest `n` bytes to the start of the new ring.
        let start = (self.tail + old - n % old.max(1)) % old.max(1);
        let first = n.min(old - start);
        if let (Some(d), Some(s)) = (ring.get_mut(..first), self.ring.get(start..start + first)) {
            d.copy_from_slice(s);
        }
        if let (Some(d), Some(s)) = (ring.get_mut(first..n), self.ring.get(..n - first)) {
            d.copy_from_slice(s);
        }
        self.ring = ring;
        self.tail = n % new;
        true
    }
}

/// Keeps `data`, just delivered, in a retaining stream's ring; `unacked` counts the
/// delivered, unacknowledged bytes including `data`.
fn keep(kept: &mut Option<Box<Kept>>, flags: u8, unacked: u32, data: &[u8], budget: &mut Budget) {
    if flags & F_RETAIN == 0 || data.is_empty() {
        return;
    }
    let k = kept.get_or_insert_with(|| {
        Box::new(Kept {
            ring: Vec::new(),
            tail: 0,
            len: 0,
            max: budget.max_kept_per_stream,
            ahead: None,
        })
    });
    let unacked = unacked as usize;
    if !k.grow(unacked, budget) || unacked > k.ring.len() {
        // What does not fit is not kept: a retransmission of it cannot be verified.
        bump(&mut budget.counters.kept_cap_hits);
    }
    k.push(data);
}

/// What a retransmission of delivered bytes is, against what was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Same,
    Differs,
    /// Some unacknowledged bytes were not kept.
    Unverified,
}

/// Out-of-order data of one stream.
#[derive(Debug)]
struct Held {
    /// Ring buffer; the byte at offset `o` from `next_seq` lives at `(head + o) % ring.len()`.
    /// Its whole length is charged to the budget.
    ring: Vec<u8>,
    head: usize,
    /// Held ranges: sorted, disjoint, never adjacent, all strictly after `next_seq` and inside
    /// the ring.
    ranges: Vec<Range>,
    /// Data bytes in `ranges`.
    bytes: u32,
}

#[derive(Clone, Copy, Debug)]
struct Range {
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

fn ring_index(head: usize, o: u32, cap: usize) -> usize {
    // u64 so a huge offset cannot overflow on a 32-bit target.
    let cap64 = cap as u64;
    ((head as u64 % cap64 + u64::from(o) % cap64) % cap64) as usize
}

/// How a segment relates to the held ranges.
#[derive(Default, Clone, Copy, Debug)]
struct Scan {
    /// Its bytes already held.
    covered: u32,
    /// Held ranges it overlaps or is adjacent to (they merge with it).
    touching: usize,
    /// Some held byte differs from its byte for the same offset.
    mismatch: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NoRoom {
    Stream,
    Segments,
    Global,
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

    /// Keeps delivered bytes until the peer acknowledges them, to compare retransmissions
    /// with (see the module doc). Cheap until something is delivered.
    pub fn retain(&mut self) {
        self.flags |= F_RETAIN;
    }

    /// The peer acknowledged everything before `ack`: those bytes are the receiver's for
    /// good and need not be kept. An acknowledgement of bytes not yet delivered is
    /// remembered: once the sender has sent bytes after them, they are a gap (see the
    /// module documentation). Acknowledgements from before the stream's start are ignored.
    pub fn ack(&mut self, ack: u32) {
        if self.flags & F_INIT == 0 {
            return;
        }
        let beyond = ack.wrapping_sub(self.next_seq);
        if beyond > 0
            && beyond <= MAX_AHEAD
            && let Some(k) = self.kept.as_deref_mut()
            && k.ahead.is_none_or(|a| ack.wrapping_sub(a) as i32 > 0)
        {
            k.ahead = Some(ack);
        }
        let ahead = ack.wrapping_sub(self.acked) as i32;
        let past_end = ack.wrapping_sub(self.next_seq) as i32;
        if ahead <= 0 || past_end > 0 {
            return;
        }
        self.acked = ack;
        if let Some(k) = self.kept.as_deref_mut() {
            // Bytes still unacknowledged: at most what is kept.
            let unacked = self.next_seq.wrapping_sub(ack);
            k.len = k.len.min(unacked);
        }
    }

    /// A retransmission of delivered bytes, `data` at `back` bytes before `next_seq`.
    fn check_delivered(&self, back: u32, data: &[u8]) -> Check {
        let unacked = self.next_seq.wrapping_sub(self.acked);
        let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // Bytes further back than the acknowledgement: the receiver keeps its own copy.
        let skip = back.saturating_sub(unacked).min(n);
        let (back, data) = (back - skip, data.get(skip as usize..).unwrap_or_default());
        if data.is_empty() {
            return Check::Same;
        }
        let kept = self.kept.as_deref().map_or(0, |k| k.len);
        let mut out = Check::Same;
        // Unacknowledged bytes older than what was kept.
        let lost = back
            .saturating_sub(kept)
            .min(u32::try_from(data.len()).unwrap_or(u32::MAX));
        if lost > 0 {
            out = Check::Unverified;
        }
        let (back, data) = (back - lost, data.get(lost as usize..).unwrap_or_default());
        if !data.is_empty()
            && let Some(k) = self.kept.as_deref()
            && !k.same(back, data)
        {
            return Check::Differs;
        }
        out
    }

    /// Keeps bytes just delivered (a retaining stream); `next_seq` already counts them.
    fn keep(&mut self, data: &[u8], budget: &mut Budget) {
        let unacked = self.next_seq.wrapping_sub(self.acked);
        keep(&mut self.kept, self.flags, unacked, data, budget);
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

    /// How `data` at offset `off` from `next_seq` relates to the held ranges.
    fn scan(&self, off: u32, data: &[u8]) -> Scan {
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
    fn release(
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
    fn hold(
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

    /// Declares a gap for what the receiver acknowledged of the holes before data the sender
    /// has sent (held ranges, and the segment at `seq` unless `empty`), and delivers the
    /// held data that becomes contiguous.
    fn skip_acknowledged_holes(
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
    fn first_hole(&self) -> Option<u32> {
        let held = self.held.as_deref()?;
        held.ranges.first().map(|r| held_start(r, self.next_seq))
    }

    /// Gives up the hole before the first held range: a gap for it, then the held data that
    /// is now contiguous.
    fn skip_first_hole(
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
    fn gap(
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

fn held_start(r: &Range, next_seq: u32) -> u32 {
    r.seq.wrapping_sub(next_seq)
}

#[cfg(test)]
mod tests;
