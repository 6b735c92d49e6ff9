#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;

/// What the inspector saw: bytes in stream order, with gap bytes marked unknown.
#[derive(Default)]
struct Seen {
    bytes: Vec<u8>,
    known: Vec<bool>,
    gaps: Vec<(usize, u32)>,
}

impl Seen {
    fn push(&mut self, c: Chunk<'_>) {
        match c {
            Chunk::Data(d) => {
                assert!(!d.is_empty(), "empty chunks are never delivered");
                self.bytes.extend_from_slice(d);
                self.known.extend(std::iter::repeat_n(true, d.len()));
            }
            Chunk::Gap(n) => {
                assert!(n > 0);
                self.gaps.push((self.bytes.len(), n));
                self.bytes.extend(std::iter::repeat_n(0, n as usize));
                self.known.extend(std::iter::repeat_n(false, n as usize));
            }
        }
    }

    /// Every byte the inspector was given sits at its true stream position.
    fn assert_consistent(&self, orig: &[u8]) {
        assert!(self.bytes.len() <= orig.len());
        for (i, (&b, &k)) in self.bytes.iter().zip(&self.known).enumerate() {
            if k {
                assert_eq!(b, orig[i], "byte {i} delivered at the wrong position");
            }
        }
    }
}

struct Rig {
    cfg: StreamConfig,
    budget: Budget,
    stream: Stream,
    seen: Seen,
    isn: u32,
}

impl Rig {
    fn new(isn: u32) -> Self {
        Self::with(isn, StreamConfig::default(), 64 << 20)
    }

    fn with(isn: u32, cfg: StreamConfig, budget: usize) -> Self {
        let mut stream = Stream::new();
        assert!(!stream.is_initialized());
        stream.set_isn(isn);
        assert!(stream.is_initialized());
        Rig {
            cfg,
            budget: Budget::new(budget),
            stream,
            seen: Seen::default(),
            isn,
        }
    }

    /// Sends `data` found at stream offset `off` (0 = first data byte).
    fn send(&mut self, off: usize, data: &[u8]) -> SegmentOutcome {
        self.send_fin(off, data, false)
    }

    fn send_fin(&mut self, off: usize, data: &[u8], fin: bool) -> SegmentOutcome {
        let seq = self.isn.wrapping_add(1).wrapping_add(off as u32);
        let seen = &mut self.seen;
        self.stream
            .segment(&self.cfg, &mut self.budget, seq, data, fin, &mut |c| {
                seen.push(c)
            })
    }

    fn close(&mut self) {
        let seen = &mut self.seen;
        self.stream.close(&mut self.budget, &mut |c| seen.push(c));
        assert_eq!(self.stream.held_bytes(), 0);
        assert_eq!(self.stream.buffer_bytes(), 0);
    }

    fn counters(&self) -> ReassemblyCounters {
        self.budget.counters
    }
}

/// xorshift64*: deterministic and tiny, enough to shuffle segments.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Splits `0..n` into segments of random length in `1..=max`.
fn cut(rng: &mut Prng, n: usize, max: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < n {
        let len = (1 + rng.below(max)).min(n - at);
        v.push((at, at + len));
        at += len;
    }
    v
}

#[test]
fn in_order_is_zero_copy_and_holds_nothing() {
    let mut r = Rig::new(1000);
    let data = pattern(3000);
    let mut cfg = r.cfg;
    cfg.max_ooo_segments_per_stream = 0; // holding would fail: proves nothing is held
    r.cfg = cfg;
    for seg in data.chunks(1000) {
        let mut ptrs = Vec::new();
        let seq = r.stream.next_seq();
        let o = r
            .stream
            .segment(&r.cfg, &mut r.budget, seq, seg, false, &mut |c| {
                if let Chunk::Data(d) = c {
                    ptrs.push((d.as_ptr(), d.len()));
                }
            });
        assert_eq!(
            ptrs,
            vec![(seg.as_ptr(), seg.len())],
            "delivered from the caller's slice"
        );
        assert_eq!(
            o,
            SegmentOutcome {
                delivered: 1000,
                ..Default::default()
            }
        );
        assert_eq!(r.stream.buffer_bytes(), 0);
    }
    assert_eq!(r.stream.next_seq(), 1001 + 3000);
    assert_eq!(r.counters().in_order_segments, 3);
    assert_eq!(r.counters().delivered_bytes, 3000);
    assert_eq!(r.counters().ooo_bytes_held_peak, 0);
    // Two pointers (held and kept bytes, both lazily boxed), three sequence numbers, flags.
    assert!(std::mem::size_of::<Stream>() <= 32);
}

#[test]
fn reversed_order_delivers_once_the_hole_fills() {
    let mut r = Rig::new(7);
    let data = pattern(2000);
    for i in (1..20).rev() {
        let o = r.send(i * 100, &data[i * 100..(i + 1) * 100]);
        assert_eq!(o.delivered, 0);
        assert!(!o.dropped_cap);
    }
    assert_eq!(r.stream.held_bytes(), 1900);
    assert_eq!(r.stream.held_ranges(), 1, "adjacent held segments merge");
    assert!(r.budget.used() >= 1900);
    assert!(r.seen.bytes.is_empty());
    let o = r.send(0, &data[..100]);
    assert_eq!(o.delivered, 2000);
    assert_eq!(r.seen.bytes, data);
    assert_eq!(r.stream.held_bytes(), 0);
    assert_eq!(r.budget.used(), 0, "buffer freed once nothing is held");
    assert_eq!(r.counters().ooo_segments, 19);
}

#[test]
fn random_permutations_with_duplicates_deliver_the_original_bytes() {
    for seed in 1..=40u64 {
        let mut rng = Prng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let isn = rng.next() as u32;
        let mut r = Rig::new(isn);
        let n = 4000 + rng.below(30_000);
        let data = pattern(n);
        let mut segs = cut(&mut rng, n, 900);
        // Retransmissions: exact duplicates and re-cut ranges with the same bytes.
        for _ in 0..segs.len() / 3 {
            let (a, b) = segs[rng.below(segs.len())];
            segs.push((a, b));
            let a2 = rng.below(n);
            let b2 = (a2 + 1 + rng.below(1500)).min(n);
            segs.push((a2, b2));
        }
        rng.shuffle(&mut segs);
        for &(a, b) in &segs {
            let o = r.send(a, &data[a..b]);
            assert!(
                !o.overlap_mismatch && !o.dropped_cap && !o.gap,
                "seed {seed}"
            );
            assert!(r.stream.buffer_bytes() <= r.cfg.max_ooo_bytes_per_stream as usize);
            assert!(r.stream.held_ranges() <= usize::from(r.cfg.max_ooo_segments_per_stream));
        }
        assert_eq!(r.seen.bytes.len(), n, "seed {seed}");
        assert!(r.seen.bytes == data, "seed {seed}: bytes differ");
        assert_eq!(
            r.stream.next_seq(),
            isn.wrapping_add(1).wrapping_add(n as u32)
        );
        assert_eq!(r.budget.used(), 0);
        let c = r.counters();
        assert!(c.duplicates > 0 && c.overlaps > 0, "seed {seed}: {c:?}");
        assert_eq!(c.gaps, 0);
        r.close();
        assert!(r.seen.gaps.is_empty());
    }
}

#[test]
fn sustained_reordering_wraps_the_ring_many_times() {
    // Order 1, 3, 0, 5, 2, 7, 4, ...: something is held at every moment, so the ring is never
    // freed and its head goes round while held data straddles its end.
    let mut rng = Prng(99);
    let mut r = Rig::new(0);
    let data = pattern(300_000);
    let segs = cut(&mut rng, data.len(), 700);
    let mut order = vec![1];
    for k in 0..segs.len() {
        order.extend([2 * k + 3, 2 * k].into_iter().filter(|&i| i < segs.len()));
    }
    assert_eq!(order.len(), segs.len());
    for i in order {
        let (a, b) = segs[i];
        r.send(a, &data[a..b]);
        assert!(r.stream.buffer_bytes() <= MIN_RING);
    }
    assert!(r.seen.bytes == data);
    let c = r.counters();
    assert_eq!(c.gaps, 0);
    assert!(c.ooo_segments > 200);
    assert_eq!(r.budget.used(), 0);
}

#[test]
fn overlap_with_same_bytes_is_fine() {
    let mut r = Rig::new(0);
    let data = pattern(100);
    r.send(10, &data[10..20]);
    let o = r.send(5, &data[5..25]);
    assert!(!o.overlap_mismatch && !o.duplicate);
    assert_eq!(r.stream.held_bytes(), 20);
    assert_eq!(r.stream.held_ranges(), 1);
    let o = r.send(12, &data[12..18]);
    assert!(o.duplicate, "all bytes already held");
    assert_eq!(r.send(0, &data[..100]).delivered, 100);
    assert_eq!(r.seen.bytes, data);
    assert_eq!(r.counters().overlaps, 3);
    assert_eq!(r.counters().overlap_mismatches, 0);
}

#[test]
fn overlap_with_different_bytes_first_wins_and_is_flagged() {
    let mut r = Rig::new(0);
    let data = pattern(100);
    r.send(10, &data[10..20]);
    let mut evil = data[5..25].to_vec();
    evil[7] ^= 0xff; // offset 12: inside the held range
    let o = r.send(5, &evil);
    assert!(o.overlap_mismatch);
    assert_eq!(o.delivered, 0);
    // Not used at all: its new bytes (5..10, 20..25) are not held either.
    assert_eq!(r.stream.held_bytes(), 10);
    // Same against held data when the conflicting segment is in order.
    let mut evil = data[..15].to_vec();
    evil[11] ^= 1;
    let o = r.send(0, &evil);
    assert!(o.overlap_mismatch);
    assert_eq!(o.delivered, 0);
    assert!(r.seen.bytes.is_empty());
    // The honest copy goes through, and the first held bytes win.
    assert_eq!(r.send(0, &data[..100]).delivered, 100);
    assert_eq!(r.seen.bytes, data);
    assert_eq!(r.counters().overlap_mismatches, 2);
}

#[test]
fn retransmission_of_delivered_bytes() {
    let mut r = Rig::new(0);
    let data = pattern(30);
    r.send(0, &data[..10]);
    let o = r.send(0, &data[..10]);
    assert!(o.duplicate);
    assert_eq!(o.delivered, 0);
    // Only the new tail of a partial retransmission is used.
    let o = r.send(5, &data[5..20]);
    assert_eq!(o.delivered, 10);
    assert_eq!(r.seen.bytes, &data[..20]);
    assert_eq!(r.counters().duplicates, 1);
    assert_eq!(r.counters().overlaps, 1);
}

#[test]
fn close_delivers_held_data_after_gaps() {
    let mut r = Rig::new(500);
    let data = pattern(60);
    r.send(0, &data[..5]);
    r.send(10, &data[10..20]);
    r.send(30, &data[30..40]);
    r.send_fin(40, &data[40..45], true);
    assert_eq!(r.stream.fin_seq(), Some(501 + 45));
    assert!(!r.stream.is_finished());
    r.close();
    assert_eq!(r.seen.gaps, vec![(5, 5), (20, 10)]);
    assert_eq!(r.seen.bytes.len(), 45);
    r.seen.assert_consistent(&data);
    assert_eq!(r.budget.used(), 0);
    assert!(r.stream.is_finished());
    assert_eq!(r.counters().gaps, 2);
    assert_eq!(r.counters().gap_bytes, 15);
}

#[test]
fn close_reports_a_missing_tail_before_the_fin() {
    let mut r = Rig::new(0);
    let data = pattern(50);
    r.send(0, &data[..20]);
    // A bare FIN whose preceding 30 bytes were never seen.
    r.send_fin(50, &[], true);
    assert!(r.seen.gaps.is_empty());
    r.close();
    assert_eq!(r.seen.gaps, vec![(20, 30)]);
    assert!(r.stream.is_finished());
}

#[test]
fn per_stream_caps_bound_memory_under_an_out_of_order_flood() {
    let cfg = StreamConfig {
        max_ooo_bytes_per_stream: 8192,
        max_ooo_segments_per_stream: 8,
        ..StreamConfig::default()
    };
    let mut r = Rig::with(42, cfg, 64 << 20);
    let mut rng = Prng(7);
    let data = pattern(400_000);
    let mut at = 0usize;
    let mut hits = 0;
    for _ in 0..5000 {
        // Mostly small segments scattered ahead of the hole, sometimes the hole itself.
        let next = r.stream.next_seq().wrapping_sub(43) as usize;
        let a = if rng.below(10) == 0 {
            next
        } else {
            next + 1 + rng.below(12_000)
        };
        let b = (a + 1 + rng.below(300)).min(data.len());
        if a >= b {
            break;
        }
        let o = r.send(a, &data[a..b]);
        hits += usize::from(o.dropped_cap);
        assert!(r.stream.buffer_bytes() <= 8192);
        assert!(r.stream.held_bytes() as usize <= r.stream.buffer_bytes());
        assert!(r.stream.held_ranges() <= 8);
        assert_eq!(r.budget.used(), r.stream.buffer_bytes());
        at = at.max(b);
    }
    let c = r.counters();
    assert!(hits > 0);
    assert!(c.stream_cap_hits > 0 && c.segment_cap_hits > 0, "{c:?}");
    assert_eq!(
        c.stream_cap_hits + c.segment_cap_hits + c.global_cap_hits,
        hits as u64
    );
    assert!(c.gaps > 0, "stuck streams declare gaps");
    assert!(c.ooo_bytes_held_peak <= 8192);
    r.close();
    r.seen.assert_consistent(&data);
    assert_eq!(r.budget.used(), 0);
    // The inspector is never left waiting: everything up to the furthest byte held or sent
    // in order has been delivered or declared missing.
    assert!(r.seen.bytes.len() <= at);
}

#[test]
fn global_budget_bounds_all_streams_of_a_worker() {
    let cfg = StreamConfig::default();
    let cap = 64 * 1024;
    let mut budget = Budget::new(cap);
    let mut streams: Vec<Stream> = (0..40).map(|_| Stream::new()).collect();
    let mut seen: Vec<Seen> = (0..40).map(|_| Seen::default()).collect();
    let data = pattern(300_000);
    let mut rng = Prng(3);
    for s in streams.iter_mut() {
        s.set_isn(u32::MAX);
    }
    for _ in 0..20_000 {
        let i = rng.below(streams.len());
        let next = streams[i].next_seq() as usize;
        let a = next + rng.below(40_000);
        let b = (a + 1 + rng.below(1400)).min(data.len());
        if a >= b {
            continue;
        }
        let sink = &mut seen[i];
        streams[i].segment(&cfg, &mut budget, a as u32, &data[a..b], false, &mut |c| {
            sink.push(c)
        });
        assert!(budget.used() <= cap);
        let charged: usize = streams.iter().map(Stream::buffer_bytes).sum();
        assert_eq!(charged, budget.used());
    }
    assert!(budget.counters.global_cap_hits > 0, "{:?}", budget.counters);
    assert!(budget.counters.ooo_bytes_held_peak as usize <= cap);
    for (s, sink) in streams.iter_mut().zip(seen.iter_mut()) {
        s.close(&mut budget, &mut |c| sink.push(c));
        sink.assert_consistent(&data);
    }
    assert_eq!(budget.used(), 0, "closing returns every byte to the budget");
}

#[test]
fn sequence_numbers_wrap() {
    for seed in 1..=10u64 {
        let mut rng = Prng(seed);
        let isn = u32::MAX - 1000 + rng.below(900) as u32;
        let mut r = Rig::new(isn);
        let data = pattern(5000);
        let mut segs = cut(&mut rng, data.len(), 300);
        rng.shuffle(&mut segs);
        for (a, b) in segs {
            r.send(a, &data[a..b]);
        }
        assert!(r.seen.bytes == data, "seed {seed}");
        assert_eq!(r.stream.next_seq(), isn.wrapping_add(5001));
        assert!(r.stream.next_seq() < 5000, "crossed the wrap");
    }
    // A retransmission from just before the wrap, seen after it, is old data.
    let mut r = Rig::new(u32::MAX - 10);
    let data = pattern(40);
    r.send(0, &data);
    assert!(r.send(0, &data[..20]).duplicate);
}

#[test]
fn far_ahead_data_is_garbage() {
    let mut r = Rig::new(0);
    let o = r.send(MAX_AHEAD as usize + 10, b"xyz");
    assert_eq!(o, SegmentOutcome::default());
    assert_eq!(r.stream.held_bytes(), 0);
    assert_eq!(r.counters().out_of_window, 1);
    // Far behind (more than 2^31 ahead in wrapping terms) is old, not held either.
    let o = r.send(3_000_000_000, b"abc");
    assert!(o.duplicate);
    assert_eq!(r.budget.used(), 0);
}

#[test]
fn mid_stream_pickup_starts_at_the_first_segment() {
    let cfg = StreamConfig::default();
    let mut b = Budget::new(1 << 20);
    let mut s = Stream::new();
    let mut seen = Seen::default();
    assert!(!s.is_initialized());
    s.segment(&cfg, &mut b, 123_456, b"hello ", false, &mut |c| {
        seen.push(c)
    });
    assert!(s.is_initialized());
    s.segment(&cfg, &mut b, 123_462, b"world", false, &mut |c| {
        seen.push(c)
    });
    assert_eq!(seen.bytes, b"hello world");
    // A late SYN cannot rewind what was already delivered.
    s.set_isn(1);
    assert_eq!(s.next_seq(), 123_467);
}

#[test]
fn a_segment_bigger_than_the_stream_cap_is_delivered_after_a_gap() {
    let cfg = StreamConfig {
        max_ooo_bytes_per_stream: 4096,
        max_ooo_segments_per_stream: 4,
        ..StreamConfig::default()
    };
    let mut r = Rig::with(0, cfg, 1 << 20);
    let data = pattern(20_000);
    let o = r.send(100, &data[100..10_000]);
    assert!(o.dropped_cap && o.gap);
    assert_eq!(o.delivered, 9900);
    assert_eq!(r.seen.gaps, vec![(0, 100)]);
    r.seen.assert_consistent(&data);
    assert_eq!(r.counters().stream_cap_hits, 1);
    assert_eq!(r.budget.used(), 0);
}

#[test]
fn counters_merge() {
    let a = ReassemblyCounters {
        gaps: 2,
        ooo_bytes_held_peak: 10,
        ..Default::default()
    };
    let mut b = ReassemblyCounters {
        gaps: u64::MAX,
        ooo_bytes_held_peak: 3,
        ..Default::default()
    };
    b.merge(&a);
    assert_eq!(b.gaps, u64::MAX);
    assert_eq!(b.ooo_bytes_held_peak, 10);
}

#[test]
fn at_the_range_cap_only_the_hole_before_the_segment_is_given_up() {
    let cfg = StreamConfig {
        max_ooo_bytes_per_stream: 1 << 20,
        max_ooo_segments_per_stream: 2,
        ..StreamConfig::default()
    };
    let mut r = Rig::with(0, cfg, 1 << 20);
    let data = pattern(300);
    r.send(100, &data[100..110]);
    r.send(200, &data[200..210]);
    // A third island in the first hole: the bytes before it are declared missing, it is
    // delivered in order, and both held ranges stay held.
    let o = r.send(50, &data[50..60]);
    assert!(o.dropped_cap && o.gap);
    assert_eq!(o.delivered, 10);
    assert_eq!(r.seen.gaps, vec![(0, 50)]);
    assert_eq!(r.stream.held_ranges(), 2);
    // A third island past the held ones: the first hole goes, with the data after it.
    let o = r.send(250, &data[250..260]);
    assert!(o.dropped_cap);
    assert_eq!(r.seen.gaps, vec![(0, 50), (60, 40)]);
    assert_eq!(r.stream.held_ranges(), 2);
    assert_eq!(r.counters().segment_cap_hits, 2);
    r.send(110, &data[110..300]);
    assert_eq!(r.seen.bytes.len(), 300);
    r.seen.assert_consistent(&data);
    assert_eq!(r.budget.used(), 0);
}

/// A stream that keeps what it delivered, as the worker makes the client's.
fn retaining(isn: u32, max_kept: u32) -> Rig {
    let mut r = Rig::new(isn);
    r.stream.retain();
    r.budget.max_kept_per_stream = max_kept;
    r
}

#[test]
fn a_retransmission_that_differs_from_what_was_judged_is_a_mismatch() {
    // The decoy (`GET /aaaaa`) was delivered and judged; the receiver dropped it (a bad
    // checksum, no ACK flag, an old timestamp: whatever it was) and acts on the second.
    let mut r = retaining(7, 4096);
    assert_eq!(r.send(0, b"GET /aaaaa HTTP/1.1\r\n").delivered, 21);
    let o = r.send(0, b"GET /admin HTTP/1.1\r\n");
    assert!(o.overlap_mismatch && !o.duplicate);
    // An honest retransmission is a duplicate, as before.
    let o = r.send(0, b"GET /aaaaa HTTP/1.1\r\n");
    assert!(o.duplicate && !o.overlap_mismatch);
    // A partial overlap is compared on its old part; its new part is not used on a
    // mismatch.
    let o = r.send(16, b"1.2\r\nHost: x\r\n");
    assert!(o.overlap_mismatch);
    assert_eq!(o.delivered, 0);
    let o = r.send(16, b"1.1\r\nHost: x\r\n");
    assert!(!o.overlap_mismatch);
    assert_eq!(o.delivered, 9);
    assert_eq!(r.seen.bytes, b"GET /aaaaa HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(r.counters().overlap_mismatches, 2);
    r.close();
    assert_eq!(r.budget.used(), 0, "kept bytes go back to the budget");
}

#[test]
fn acknowledged_bytes_are_the_receivers_and_need_no_comparison() {
    let mut r = retaining(100, 4096);
    r.send(0, b"SET a 1\r\nSET b 2\r\n");
    // The server acknowledged the first command only.
    r.stream.ack(101 + 9);
    let o = r.send(0, b"FLUSHALL\r\n");
    assert!(o.overlap_mismatch, "the unacknowledged part differs");
    let o = r.send(0, b"FLUSHALL\r");
    assert!(
        o.duplicate && !o.overlap_mismatch,
        "wholly acknowledged: ignored"
    );
    // Acknowledgements of bytes not sent yet, or going backwards, change nothing.
    r.stream.ack(101 + 5000);
    r.stream.ack(101);
    let o = r.send(9, b"SET c 3\r\n");
    assert!(o.overlap_mismatch);
}

#[test]
fn bytes_that_could_not_be_kept_make_a_retransmission_unverified() {
    // Keep at most 4 KiB; 10 KiB unacknowledged, then the start comes again.
    let mut r = retaining(0, 4096);
    let data = pattern(10_240);
    for (i, c) in data.chunks(1024).enumerate() {
        r.send(i * 1024, c);
    }
    assert!(r.counters().kept_cap_hits > 0);
    let o = r.send(0, &data[..1024]);
    assert!(o.unverified && !o.overlap_mismatch);
    // The newest bytes were kept and compare.
    let o = r.send(10_240 - 1024, &data[10_240 - 1024..]);
    assert!(!o.unverified && !o.overlap_mismatch && o.duplicate);
    let mut evil = data[10_240 - 100..].to_vec();
    evil[50] ^= 0xff;
    assert!(r.send(10_240 - 100, &evil).overlap_mismatch);
    // Once acknowledged, nothing is left to verify.
    r.stream.ack(1 + 10_240);
    assert!(r.send(0, &data[..1024]).duplicate);
    assert_eq!(r.counters().unverified, 1);
}

#[test]
fn a_gap_ends_what_can_be_compared_before_it() {
    let mut r = retaining(0, 4096);
    let data = pattern(300);
    r.send(0, &data[..100]);
    r.send(200, &data[200..300]);
    r.close();
    // After the gap was declared, a late copy of anything before it is not compared: the
    // inspector was told of the gap and decided what it means.
    let mut r = retaining(0, 4096);
    r.send(0, &data[..100]);
    let seen = &mut r.seen;
    r.stream.close(&mut r.budget, &mut |c| seen.push(c));
    assert!(r.send(0, b"something else").duplicate);
}

#[test]
fn a_hole_the_receiver_acknowledged_is_a_gap_at_the_senders_next_segment() {
    // A capture lost bytes 10..20, which the receiver got and acknowledged.
    let mut r = retaining(1000, 4096);
    let data = pattern(60);
    r.send(0, &data[..10]);
    r.send(20, &data[20..30]);
    assert!(
        r.seen.gaps.is_empty(),
        "reordering: the hole may still fill"
    );
    r.stream.ack(1001 + 30);
    let o = r.send(30, &data[30..40]);
    assert!(o.gap);
    assert_eq!(o.delivered, 20);
    assert_eq!(r.seen.gaps, vec![(10, 10)]);
    assert_eq!(r.seen.bytes.len(), 40);
    r.seen.assert_consistent(&data);
    assert_eq!(r.stream.held_bytes(), 0);
    // A late copy of the lost bytes is in the past.
    assert!(r.send(10, &data[10..20]).duplicate);

    // Only what was acknowledged: bytes 45..50 of the next hole are still awaited.
    r.stream.ack(1001 + 45);
    r.send(50, &data[50..55]);
    assert_eq!(r.seen.gaps, vec![(10, 10), (40, 5)]);
    assert_eq!(r.seen.bytes.len(), 45);
    let o = r.send(45, &data[45..50]);
    assert_eq!(o.delivered, 10);
    r.seen.assert_consistent(&data);
    r.close();
    assert_eq!(r.budget.used(), 0);
}

#[test]
fn an_acknowledgement_alone_or_data_alone_declares_nothing() {
    let data = pattern(40);
    // The receiver acknowledges bytes nothing shows were sent: no gap (a sender discards
    // an acknowledgement of unsent data).
    let mut r = retaining(0, 4096);
    r.send(0, &data[..10]);
    r.stream.ack(1 + 30);
    r.send(5, &data[5..10]);
    r.send(10, &data[10..20]);
    assert!(r.seen.gaps.is_empty());
    assert_eq!(r.seen.bytes, &data[..20]);
    // Data after a hole without an acknowledgement of it: reordering, held.
    let mut r = retaining(0, 4096);
    r.send(0, &data[..10]);
    r.stream.ack(1 + 10);
    r.send(20, &data[20..30]);
    assert!(r.seen.gaps.is_empty());
    assert_eq!(r.stream.held_bytes(), 10);
    r.send(10, &data[10..20]);
    assert_eq!(r.seen.bytes, &data[..30]);
    assert!(r.seen.gaps.is_empty());
}

#[test]
fn a_fin_after_an_acknowledged_hole_declares_it() {
    // The sender's last request was lost from the capture; the receiver acknowledged it,
    // then the sender closed.
    let mut r = retaining(u32::MAX - 5, 4096);
    let data = pattern(30);
    r.send(0, &data[..10]);
    r.stream.ack((u32::MAX - 5).wrapping_add(1 + 30));
    let o = r.send_fin(30, &[], true);
    assert!(o.gap);
    assert_eq!(r.seen.gaps, vec![(10, 20)]);
    assert!(r.stream.is_finished());
    // A stream that does not follow acknowledgements (the server's) waits for the close.
    let mut r = Rig::new(7);
    r.send(0, &data[..10]);
    r.stream.ack(8 + 30);
    r.send(20, &data[20..30]);
    assert!(r.seen.gaps.is_empty());
}
