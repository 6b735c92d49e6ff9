//! IP defragmentation for IPv4 and IPv6: fragments in, whole L4 payloads (transport header
//! and data) out.
//!
//! Written here rather than using etherparse's `IpDefragPool` because that pool is unbounded
//! (an attacker sending first fragments with fresh ids grows it without limit) and merges
//! overlapping fragments silently, while an inspector must keep one answer per byte and say
//! when someone sent two.
//!
//! **Overlaps: as the receiving host.** A fragment whose bytes are all there already, and
//! the same, is a duplicate: ignored (with [`DefragAnomaly::Overlap`]). Any other overlap
//! (a fragment that also brings new bytes, or differs) makes the datagram unusable, as Linux
//! does for IPv4 and RFC 5722 requires for IPv6: it is abandoned ([`DefragAnomaly::Overlap`]
//! or [`DefragAnomaly::OverlapMismatch`]) and its fragments are refused from then on, so an
//! inline caller drops them and the receiver can never complete a datagram the inspector
//! did not see whole.
//!
//! **Refused means dropped.** After each [`Defragmenter::insert`], [`Defragmenter::refused`]
//! says whether the fragment was refused (a bad length, an abandoned datagram, a full table
//! that could not make room). An inline caller drops it: the receiver must not complete a
//! datagram from fragments the inspector refused. A datagram evicted to make room leaves a
//! tombstone as an abandoned one does (bounded by `max_tombstones`; when those are full, new
//! datagrams are refused rather than tombstones forgotten): its later fragments are refused,
//! since the receiver holds its earlier ones.
//!
//! **Bounds**, each with a counter and an anomaly:
//! - at most `max_datagrams` datagrams in progress; a new one when the table is full evicts the
//!   oldest ([`DefragAnomaly::TableFull`]);
//! - at most `max_total_bytes` of buffers over all datagrams; the oldest other datagrams are
//!   evicted to make room (also `TableFull`);
//! - at most `max_frags_per_datagram` fragments (by default as many as a 64 KiB datagram of
//!   8-byte fragments has: hosts accept those), at most `max_ranges` separate received ranges
//!   (holes), each kept sorted and searched by bisection so that no order of arrival costs
//!   more than O(log n) per fragment plus one short move ([`DefragAnomaly::TooManyFragments`]),
//!   and a payload end of at most `max_datagram_bytes` ([`DefragAnomaly::TooLarge`]) per
//!   datagram.
//!   A datagram that breaks one of these is abandoned: its buffer is freed at once and a small
//!   tombstone stays until its timeout, so its remaining fragments are refused (each raising
//!   the same anomaly, so an inline caller can drop them) instead of starting a fresh datagram
//!   the receiver might complete without the inspector;
//! - datagrams older than `timeout_ns` (from their first fragment) are dropped
//!   ([`DefragAnomaly::Timeout`]).
//!
//! A non-last fragment whose length is not a multiple of 8, a fragment that disagrees with the
//! end set by the last fragment, or a last fragment that ends before data already received is
//! refused ([`DefragAnomaly::BadLength`]); the datagram then times out unless a correct copy
//! arrives. Keys are attacker-controlled, so the table uses foldhash with a random seed.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    /// Datagrams being reassembled at once.
    pub max_datagrams: usize,
    /// Abandoned or evicted datagrams remembered until their timeout, so that their
    /// remaining fragments are refused.
    pub max_tombstones: usize,
    pub max_frags_per_datagram: u16,
    /// Separate received ranges one datagram may have (holes between them).
    pub max_ranges: u16,
    /// Largest reassembled payload (offset + length of its last byte).
    pub max_datagram_bytes: usize,
    /// Buffer bytes over all datagrams in progress.
    pub max_total_bytes: usize,
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 1024,
            max_tombstones: 16 * 1024,
            // 65,535 bytes in 8-byte fragments: what Linux reassembles.
            max_frags_per_datagram: 8192,
            max_ranges: 1024,
            max_datagram_bytes: 65535,
            max_total_bytes: 8 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// Identifies one datagram: addresses, identification (16 bits for IPv4, 32 for IPv6) and
/// the protocol carried (IPv6: the fragment header's next header).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefragAnomaly {
    Overlap,
    OverlapMismatch,
    TooManyFragments,
    TooLarge,
    TableFull,
    Timeout,
    BadLength,
}

/// Counters of one defragmenter. Saturating.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragCounters {
    /// Fragments offered to [`Defragmenter::insert`].
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Fragments that covered bytes already received.
    pub overlaps: u64,
    /// ... with different bytes.
    pub overlap_mismatches: u64,
    /// Incomplete datagrams dropped for age.
    pub timeouts: u64,
    /// Datagrams dropped to make room (table or memory full).
    pub evictions: u64,
    /// Times a new datagram found the table full.
    pub table_full: u64,
    /// Times a fragment found `max_total_bytes` reached.
    pub memory_full: u64,
    /// Datagrams abandoned for exceeding `max_datagram_bytes`.
    pub too_large: u64,
    /// Datagrams abandoned for exceeding `max_frags_per_datagram`.
    pub too_many: u64,
    /// Fragments refused for a bad length or end.
    pub bad_length: u64,
    /// Fragments not used at all (refused, or for an abandoned datagram).
    pub dropped_fragments: u64,
    /// Datagrams abandoned because fragments overlapped.
    pub overlap_abandoned: u64,
    /// New datagrams refused because the table and the tombstones were full.
    pub refused_datagrams: u64,
    /// Most buffer bytes held at one time.
    pub bytes_peak: u64,
}

impl DefragCounters {
    /// Adds another worker's counters; the peak is the largest of any one worker.
    pub fn merge(&mut self, o: &DefragCounters) {
        let pairs = [
            (&mut self.fragments, o.fragments),
            (&mut self.reassembled, o.reassembled),
            (&mut self.overlaps, o.overlaps),
            (&mut self.overlap_mismatches, o.overlap_mismatches),
            (&mut self.timeouts, o.timeouts),
            (&mut self.evictions, o.evictions),
            (&mut self.table_full, o.table_full),
            (&mut self.memory_full, o.memory_full),
            (&mut self.too_large, o.too_large),
            (&mut self.too_many, o.too_many),
            (&mut self.bad_length, o.bad_length),
            (&mut self.dropped_fragments, o.dropped_fragments),
            (&mut self.overlap_abandoned, o.overlap_abandoned),
            (&mut self.refused_datagrams, o.refused_datagrams),
        ];
        for (a, b) in pairs {
            *a = a.saturating_add(b);
        }
        self.bytes_peak = self.bytes_peak.max(o.bytes_peak);
    }
}

fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}

#[derive(Debug)]
struct Datagram {
    created_ns: u64,
    /// Creation number: tells this datagram's FIFO entry from a stale one for the same key.
    order: u64,
    /// Payload bytes by offset; its length is the furthest end received.
    buf: Vec<u8>,
    /// Bytes of `buf`'s allocation charged to the total.
    charged: usize,
    /// Received byte ranges `[start, end)`: sorted, disjoint, never adjacent.
    ranges: Vec<(u32, u32)>,
    /// Payload length, once the last fragment is in.
    total: Option<u32>,
    frags: u16,
    /// Abandoned: remaining fragments are refused with this anomaly until the timeout.
    dead: Option<DefragAnomaly>,
}

impl Datagram {
    fn is_complete(&self) -> bool {
        matches!((self.total, self.ranges.as_slice()), (Some(t), [(0, e)]) if *e == t)
            || self.total == Some(0)
    }
}

/// One worker's fragment table. Not shared: a worker owns it.
#[derive(Debug)]
pub struct Defragmenter {
    cfg: DefragConfig,
    map: HashMap<FragKey, Datagram, foldhash::fast::RandomState>,
    /// Datagrams in creation order, for expiry; entries whose datagram has gone (completed,
    /// or replaced under the same key) are skipped and compacted away.
    fifo: VecDeque<(FragKey, u64)>,
    /// Live datagrams in creation order, for eviction (stale entries skipped likewise).
    live_fifo: VecDeque<(FragKey, u64)>,
    next_order: u64,
    bytes: usize,
    /// Tombstones in `map` (abandoned or evicted datagrams).
    dead: usize,
    /// Whether the last fragment inserted was refused.
    refused: bool,
    out: Vec<u8>,
    counters: DefragCounters,
}

impl Defragmenter {
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            fifo: VecDeque::new(),
            live_fifo: VecDeque::new(),
            next_order: 0,
            bytes: 0,
            dead: 0,
            refused: false,
            out: Vec::new(),
            counters: DefragCounters::default(),
        }
    }

    pub fn counters(&self) -> DefragCounters {
        self.counters
    }

    /// Datagrams in progress (abandoned ones included until they time out).
    pub fn pending(&self) -> usize {
        self.map.len()
    }

    /// Whether the last fragment given to [`Defragmenter::insert`] was refused: an inline
    /// caller drops it, so that the receiver cannot complete the datagram either.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// Buffer bytes held by all datagrams in progress.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds one fragment; `offset` is in bytes. Returns the complete L4 payload (transport
    /// header + data) once all fragments are in. The returned slice borrows an internal
    /// buffer, valid until the next call.
    pub fn insert(
        &mut self,
        now_ns: u64,
        key: FragKey,
        offset: u32,
        more_fragments: bool,
        payload: &[u8],
        anomaly: &mut dyn FnMut(DefragAnomaly),
    ) -> Option<&[u8]> {
        bump(&mut self.counters.fragments);
        self.refused = false;
        let end = u64::from(offset).saturating_add(payload.len() as u64);
        if offset & 7 != 0 || (more_fragments && payload.len() & 7 != 0) {
            self.refuse(DefragAnomaly::BadLength, anomaly);
            return None;
        }
        self.expire_key(now_ns, &key, anomaly);
        if offset == 0 && !more_fragments && !self.map.contains_key(&key) {
            // A lone "fragment" that is the whole datagram (an IPv6 atomic fragment): no state.
            if end > self.cfg.max_datagram_bytes as u64 {
                bump(&mut self.counters.too_large);
                self.refuse(DefragAnomaly::TooLarge, anomaly);
                return None;
            }
            self.out.clear();
            self.out.extend_from_slice(payload);
            bump(&mut self.counters.reassembled);
            return Some(&self.out);
        }
        if !self.map.contains_key(&key) && !self.create(now_ns, key, anomaly) {
            return None;
        }
        let (charged, want) = self.check(&key, offset, end, more_fragments, payload, anomaly)?;
        if want > charged && !self.make_memory(&key, want - charged, anomaly) {
            self.abandon(&key, DefragAnomaly::TableFull, anomaly);
            return None;
        }
        self.store(&key, offset, payload, want)
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    pub fn expire(&mut self, now_ns: u64, anomaly: &mut dyn FnMut(DefragAnomaly)) {
        while let Some(&(k, order)) = self.fifo.front() {
            if let Some(d) = self.map.get(&k).filter(|d| d.order == order) {
                if now_ns.saturating_sub(d.created_ns) < self.cfg.timeout_ns {
                    break;
                }
                self.remove_timed_out(&k, anomaly);
            }
            self.fifo.pop_front();
        }
    }

    fn refuse(&mut self, why: DefragAnomaly, anomaly: &mut dyn FnMut(DefragAnomaly)) {
        if why == DefragAnomaly::BadLength {
            bump(&mut self.counters.bad_length);
        }
        bump(&mut self.counters.dropped_fragments);
        self.refused = true;
        anomaly(why);
    }

    /// The datagram under `key` is too old to continue (expire() has not run since).
    fn expire_key(&mut self, now_ns: u64, key: &FragKey, anomaly: &mut dyn FnMut(DefragAnomaly)) {
        let old = self
            .map
            .get(key)
            .is_some_and(|d| now_ns.saturating_sub(d.created_ns) >= self.cfg.timeout_ns);
        if old {
            self.remove_timed_out(key, anomaly);
        }
    }

    fn remove_timed_out(&mut self, key: &FragKey, anomaly: &mut dyn FnMut(DefragAnomaly)) {
        if let Some(d) = self.map.remove(key) {
            self.bytes = self.bytes.saturating_sub(d.charged);
            // An abandoned datagram already raised its anomaly.
            if d.dead.is_none() {
                bump(&mut self.counters.timeouts);
                anomaly(DefragAnomaly::Timeout);
            } else {
                self.dead = self.dead.saturating_sub(1);
            }
        }
    }

    /// Live datagrams (tombstones excluded).
    pub fn live(&self) -> usize {
        self.map.len().saturating_sub(self.dead)
    }

    /// Starts a datagram for `key`, evicting the oldest if the table is full.
    fn create(
        &mut self,
        now_ns: u64,
        key: FragKey,
        anomaly: &mut dyn FnMut(DefragAnomaly),
    ) -> bool {
        if self.live() >= self.cfg.max_datagrams {
            bump(&mut self.counters.table_full);
            while self.live() >= self.cfg.max_datagrams {
                if !self.evict_oldest(None) {
                    // Nothing can be evicted without forgetting a datagram whose fragments
                    // the receiver holds: refuse the new one instead (fail closed).
                    bump(&mut self.counters.refused_datagrams);
                    self.refuse(DefragAnomaly::TableFull, anomaly);
                    return false;
                }
                anomaly(DefragAnomaly::TableFull);
            }
        }
        let order = self.next_order;
        self.next_order = self.next_order.wrapping_add(1);
        self.map.insert(
            key,
            Datagram {
                created_ns: now_ns,
                order,
                buf: Vec::new(),
                charged: 0,
                ranges: Vec::new(),
                total: None,
                frags: 0,
                dead: None,
            },
        );
        self.fifo.push_back((key, order));
        self.live_fifo.push_back((key, order));
        let bound = 2 * (self.cfg.max_datagrams + self.cfg.max_tombstones) + 64;
        if self.fifo.len() > bound {
            let map = &self.map;
            self.fifo
                .retain(|(k, o)| map.get(k).is_some_and(|d| d.order == *o));
        }
        if self.live_fifo.len() > 2 * self.cfg.max_datagrams + 64 {
            let map = &self.map;
            self.live_fifo.retain(|(k, o)| {
                map.get(k)
                    .is_some_and(|d| d.order == *o && d.dead.is_none())
            });
        }
        true
    }

    /// Gives up the oldest live datagram other than `except`: its buffer is freed and a
    /// tombstone refuses its later fragments (the receiver holds its earlier ones). False if
    /// there is none, or no room for its tombstone.
    fn evict_oldest(&mut self, except: Option<&FragKey>) -> bool {
        if self.dead >= self.cfg.max_tombstones {
            return false;
        }
        let mut kept = None;
        let mut evicted = false;
        while let Some((k, order)) = self.live_fifo.pop_front() {
            if self
                .map
                .get(&k)
                .is_none_or(|d| d.order != order || d.dead.is_some())
            {
                continue;
            }
            if Some(&k) == except {
                kept = Some((k, order));
                continue;
            }
            if let Some(d) = self.map.get_mut(&k) {
                self.bytes = self.bytes.saturating_sub(d.charged);
                d.dead = Some(DefragAnomaly::TableFull);
                d.buf = Vec::new();
                d.charged = 0;
                d.ranges = Vec::new();
                self.dead += 1;
            }
            bump(&mut self.counters.evictions);
            evicted = true;
            break;
        }
        if let Some(e) = kept {
            self.live_fifo.push_front(e);
        }
        evicted
    }

    /// Frees the datagram's buffer and keeps a tombstone that refuses its other fragments.
    fn abandon(
        &mut self,
        key: &FragKey,
        why: DefragAnomaly,
        anomaly: &mut dyn FnMut(DefragAnomaly),
    ) {
        if let Some(d) = self.map.get_mut(key) {
            self.bytes = self.bytes.saturating_sub(d.charged);
            if d.dead.is_none() {
                self.dead += 1;
            }
            d.dead = Some(why);
            d.buf = Vec::new();
            d.charged = 0;
            d.ranges = Vec::new();
        }
        match why {
            DefragAnomaly::TooLarge => bump(&mut self.counters.too_large),
            DefragAnomaly::TooManyFragments => bump(&mut self.counters.too_many),
            DefragAnomaly::Overlap | DefragAnomaly::OverlapMismatch => {
                bump(&mut self.counters.overlap_abandoned);
            }
            _ => {}
        }
        self.refuse(why, anomaly);
    }

    /// Validates the fragment against its datagram and reports overlaps. Returns the buffer
    /// bytes charged now and the buffer size it needs, or None if it is refused.
    fn check(
        &mut self,
        key: &FragKey,
        offset: u32,
        end: u64,
        more: bool,
        payload: &[u8],
        anomaly: &mut dyn FnMut(DefragAnomaly),
    ) -> Option<(usize, usize)> {
        let cfg = self.cfg;
        let d = self.map.get_mut(key)?;
        if let Some(why) = d.dead {
            self.refuse(why, anomaly);
            return None;
        }
        d.frags = d.frags.saturating_add(1);
        if d.frags > cfg.max_frags_per_datagram {
            self.abandon(key, DefragAnomaly::TooManyFragments, anomaly);
            return None;
        }
        let end = match u32::try_from(end) {
            Ok(e) if e as usize <= cfg.max_datagram_bytes => e,
            _ => {
                self.abandon(key, DefragAnomaly::TooLarge, anomaly);
                return None;
            }
        };
        let extent = d.ranges.last().map_or(0, |r| r.1);
        let bad = if more {
            d.total.is_some_and(|t| end > t)
        } else {
            d.total.is_some_and(|t| t != end) || extent > end
        };
        if bad {
            self.refuse(DefragAnomaly::BadLength, anomaly);
            return None;
        }
        let (mut covered, mut mismatch) = (0u32, false);
        // Ranges are sorted and disjoint: start at the first that ends at or after us.
        let first = d.ranges.partition_point(|r| r.1 < offset);
        for &(a, b) in d.ranges.get(first..).unwrap_or_default() {
            if a >= end {
                break;
            }
            let (lo, hi) = (a.max(offset), b.min(end));
            if lo < hi {
                covered = covered.saturating_add(hi - lo);
                let ours = d.buf.get(lo as usize..hi as usize);
                let theirs = payload.get((lo - offset) as usize..(hi - offset) as usize);
                mismatch |= ours != theirs;
            }
        }
        if covered > 0 {
            bump(&mut self.counters.overlaps);
            if mismatch {
                bump(&mut self.counters.overlap_mismatches);
            }
            let len = end - offset;
            if mismatch || covered < len {
                // Not a plain duplicate: the receiver discards the whole datagram.
                let why = if mismatch {
                    DefragAnomaly::OverlapMismatch
                } else {
                    DefragAnomaly::Overlap
                };
                self.abandon(key, why, anomaly);
                return None;
            }
            // A duplicate: nothing new to store.
            anomaly(DefragAnomaly::Overlap);
        }
        let holes = d.ranges.len();
        if holes >= usize::from(cfg.max_ranges) && covered == 0 {
            // One more separate range would be past the bound (joining ones never are).
            let joins = d.ranges.get(first).is_some_and(|r| r.0 <= end)
                || first
                    .checked_sub(1)
                    .and_then(|i| d.ranges.get(i))
                    .is_some_and(|r| r.1 >= offset);
            if !joins {
                self.abandon(key, DefragAnomaly::TooManyFragments, anomaly);
                return None;
            }
        }
        if !more {
            d.total = Some(end);
        }
        let end = end as usize;
        if end <= d.charged {
            return Some((d.charged, d.charged));
        }
        // Grow by doubling while the size is unknown, to the exact size once it is.
        let want = match d.total {
            Some(t) => t as usize,
            None => d.charged.saturating_mul(2).min(cfg.max_datagram_bytes),
        };
        Some((d.charged, want.max(end)))
    }

    /// Makes room for `need` more buffer bytes for `key` by evicting the oldest others.
    fn make_memory(
        &mut self,
        key: &FragKey,
        need: usize,
        anomaly: &mut dyn FnMut(DefragAnomaly),
    ) -> bool {
        let mut counted = false;
        while self.bytes.saturating_add(need) > self.cfg.max_total_bytes {
            if !counted {
                counted = true;
                bump(&mut self.counters.memory_full);
            }
            if !self.evict_oldest(Some(key)) {
                return false;
            }
            anomaly(DefragAnomaly::TableFull);
        }
        true
    }

    /// Copies the fragment's new bytes in (growing the buffer to `want` bytes, already made
    /// room for) and returns the payload if it is now complete.
    fn store(&mut self, key: &FragKey, offset: u32, payload: &[u8], want: usize) -> Option<&[u8]> {
        let d = self.map.get_mut(key)?;
        let end = offset.saturating_add(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        let endu = end as usize;
        if endu > d.buf.len() {
            d.buf.reserve_exact(want.saturating_sub(d.buf.len()));
            d.buf.resize(endu, 0);
            let cap = d.buf.capacity();
            self.bytes = self.bytes.saturating_add(cap.saturating_sub(d.charged));
            d.charged = d.charged.max(cap);
            let bytes = u64::try_from(self.bytes).unwrap_or(u64::MAX);
            self.counters.bytes_peak = self.counters.bytes_peak.max(bytes);
        }
        if end > offset {
            let mut cursor = offset;
            let mut first = None;
            let mut touching = 0usize;
            let mut merged = (offset, end);
            let from = d.ranges.partition_point(|r| r.1 < offset);
            for (i, &(a, b)) in d.ranges.iter().enumerate().skip(from) {
                if a > end {
                    break;
                }
                first.get_or_insert(i);
                touching += 1;
                merged = (merged.0.min(a), merged.1.max(b));
                if a > cursor {
                    copy(&mut d.buf, cursor, payload, offset, a.min(end));
                }
                cursor = cursor.max(b);
            }
            if cursor < end {
                copy(&mut d.buf, cursor, payload, offset, end);
            }
            match first {
                Some(i) => {
                    d.ranges.drain(i + 1..(i + touching).min(d.ranges.len()));
                    if let Some(r) = d.ranges.get_mut(i) {
                        *r = merged;
                    }
                }
                None => {
                    let at = d.ranges.partition_point(|r| r.0 < offset);
                    d.ranges.insert(at, merged);
                }
            }
        }
        if !d.is_complete() {
            return None;
        }
        let d = self.map.remove(key)?;
        self.bytes = self.bytes.saturating_sub(d.charged);
        bump(&mut self.counters.reassembled);
        let total = d.total.unwrap_or(0) as usize;
        // The datagram's buffer becomes the output: no copy of the reassembled payload.
        self.out = d.buf;
        self.out.truncate(total);
        Some(&self.out)
    }
}

/// Copies `payload` bytes for offsets `[from, to)` (payload starts at `offset`) into `buf`.
fn copy(buf: &mut [u8], from: u32, payload: &[u8], offset: u32, to: u32) {
    let src = payload.get((from - offset) as usize..(to - offset) as usize);
    let dst = buf.get_mut(from as usize..to as usize);
    if let (Some(src), Some(dst)) = (src, dst) {
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests;
