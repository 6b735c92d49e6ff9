//! Delivered bytes kept until acknowledged, so that a retransmission of them is compared
//! with the copy the inspector judged (a retaining stream: the client's).

use super::budget::{Budget, bump};
use super::{F_INIT, F_RETAIN, MAX_AHEAD, MIN_KEPT, Stream};

/// Delivered, unacknowledged bytes of a retaining stream: a ring whose last `len` bytes
/// (ending at `next_seq`) are kept.
#[derive(Debug)]
pub(super) struct Kept {
    pub(super) ring: Vec<u8>,
    /// Index just past the newest byte.
    tail: usize,
    pub(super) len: u32,
    /// Most bytes kept (the stream's cap).
    max: u32,
    /// The furthest acknowledgement past `next_seq`: the receiver has bytes the stream has
    /// not delivered. Kept here rather than in [`Stream`], which stays within 32 bytes: a
    /// stream whose peer's acknowledgements are followed is a retaining one, and it has
    /// this box from its first delivered byte on.
    pub(super) ahead: Option<u32>,
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
pub(super) fn keep(
    kept: &mut Option<Box<Kept>>,
    flags: u8,
    unacked: u32,
    data: &[u8],
    budget: &mut Budget,
) {
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
pub(super) enum Check {
    Same,
    Differs,
    /// Some unacknowledged bytes were not kept.
    Unverified,
}

impl Stream {
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
    pub(super) fn check_delivered(&self, back: u32, data: &[u8]) -> Check {
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
    pub(super) fn keep(&mut self, data: &[u8], budget: &mut Budget) {
        let unacked = self.next_seq.wrapping_sub(self.acked);
        keep(&mut self.kept, self.flags, unacked, data, budget);
    }
}
