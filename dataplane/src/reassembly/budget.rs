//! The worker's reassembly budget (buffer bytes charged by all its streams) and its
//! counters.

use super::MAX_KEPT_DEFAULT;

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
    /// Segments ending more than [`MAX_AHEAD`](super::MAX_AHEAD) bytes past `next_seq`.
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

pub(super) fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}

pub(super) fn add(c: &mut u64, n: u32) {
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

    pub(super) fn try_take(&mut self, n: usize) -> bool {
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

    pub(super) fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }
}
