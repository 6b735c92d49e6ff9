#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const SEC: u64 = 1_000_000_000;

fn key4(id: u32) -> FragKey {
    FragKey {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 5)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 2, 7)),
        id,
        proto: 17,
    }
}

fn key6(id: u32, host: u16) -> FragKey {
    FragKey {
        src: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 2, host)),
        dst: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 2, 7)),
        id,
        proto: 6,
    }
}

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// (offset, more, bytes) fragments of `data`, `size` bytes each (a multiple of 8).
fn fragments(data: &[u8], size: usize) -> Vec<(u32, bool, Vec<u8>)> {
    let chunks: Vec<_> = data.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| ((i * size) as u32, i + 1 < chunks.len(), c.to_vec()))
        .collect()
}

struct Rig {
    d: Defragmenter,
    anomalies: Vec<DefragAnomaly>,
}

impl Rig {
    fn new(cfg: DefragConfig) -> Self {
        Rig {
            d: Defragmenter::new(cfg),
            anomalies: Vec::new(),
        }
    }

    fn put(
        &mut self,
        now: u64,
        key: FragKey,
        off: u32,
        more: bool,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        let seen = &mut self.anomalies;
        self.d
            .insert(now, key, off, more, data, &mut |a| seen.push(a))
            .map(<[u8]>::to_vec)
    }

    fn take(&mut self) -> Vec<DefragAnomaly> {
        std::mem::take(&mut self.anomalies)
    }

    /// Feeds fragments; all but the last (in feeding order) must leave the datagram pending.
    fn feed_all(&mut self, key: FragKey, frags: &[(u32, bool, Vec<u8>)]) -> Vec<u8> {
        let (last, rest) = frags.split_last().unwrap();
        for (off, more, data) in rest {
            assert_eq!(self.put(0, key, *off, *more, data), None);
        }
        self.put(0, key, last.0, last.1, &last.2)
            .expect("complete after the last fragment")
    }
}

struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn in_order() {
    let mut r = Rig::new(DefragConfig::default());
    let data = pattern(4000, 1);
    let out = r.feed_all(key4(1), &fragments(&data, 1480));
    assert_eq!(out, data);
    assert!(r.take().is_empty());
    assert_eq!(r.d.pending(), 0);
    assert_eq!(r.d.held_bytes(), 0);
    let c = r.d.counters();
    assert_eq!((c.fragments, c.reassembled), (3, 1));
    assert!(c.bytes_peak >= 4000 && c.bytes_peak <= 65535);
}

#[test]
fn reversed() {
    let mut r = Rig::new(DefragConfig::default());
    let data = pattern(10_000, 2);
    let mut frags = fragments(&data, 1232);
    frags.reverse();
    assert_eq!(r.feed_all(key4(2), &frags), data);
    assert!(r.take().is_empty());
    assert_eq!(r.d.held_bytes(), 0);
}

#[test]
fn shuffled_with_duplicates() {
    for seed in 1..=30u64 {
        let mut rng = Prng(seed * 0x9e37_79b9 + 1);
        let mut r = Rig::new(DefragConfig::default());
        let n = 1000 + rng.below(20_000);
        let data = pattern(n, seed as u8);
        // At most ~50 fragments plus duplicates: under max_frags_per_datagram.
        let size = (n / 50).next_multiple_of(8) + 8 * rng.below(10);
        let mut frags = fragments(&data, size);
        let dups = rng.below(4);
        for _ in 0..dups {
            let f = frags[rng.below(frags.len())].clone();
            frags.push(f);
        }
        for i in (1..frags.len()).rev() {
            frags.swap(i, rng.below(i + 1));
        }
        let key = key4(seed as u32);
        let mut got = None;
        for (off, more, bytes) in &frags {
            if let Some(out) = r.put(0, key, *off, *more, bytes) {
                assert!(got.is_none(), "completes once");
                got = Some(out);
            }
        }
        // Duplicates after completion start a new datagram; the rest were overlaps.
        assert_eq!(got.as_deref(), Some(&data[..]), "seed {seed}");
        assert!(!r.take().contains(&DefragAnomaly::OverlapMismatch));
        assert!(r.d.held_bytes() <= 65535);
    }
}

#[test]
fn an_overlap_the_receiver_discards_abandons_the_datagram() {
    let mut r = Rig::new(DefragConfig::default());
    let data = pattern(48, 9);
    let key = key4(77);
    assert_eq!(r.put(0, key, 0, true, &data[..24]), None);
    assert!(!r.d.refused());
    // The same bytes again, wholly inside: a duplicate, ignored.
    assert_eq!(r.put(0, key, 8, true, &data[8..16]), None);
    assert_eq!(r.take(), vec![DefragAnomaly::Overlap]);
    assert!(!r.d.refused());
    // Covers 16..40 with other bytes for 16..24: Linux (IPv4) and RFC 5722 (IPv6) discard
    // the whole datagram, so it is abandoned and its fragments refused (dropped inline).
    let mut evil = data[16..40].to_vec();
    evil[2] ^= 0x55;
    assert_eq!(r.put(0, key, 16, true, &evil), None);
    assert_eq!(r.take(), vec![DefragAnomaly::OverlapMismatch]);
    assert!(r.d.refused());
    assert_eq!(r.put(0, key, 24, true, &data[24..40]), None);
    assert_eq!(r.put(0, key, 40, false, &data[40..]), None);
    assert!(r.d.refused());
    assert_eq!(r.take(), vec![DefragAnomaly::OverlapMismatch; 2]);
    let c = r.d.counters();
    assert_eq!(
        (c.overlaps, c.overlap_mismatches, c.overlap_abandoned),
        (2, 1, 1)
    );
    // An overlap that also brings new bytes, identical where it overlaps, is one too.
    let key = key4(78);
    r.put(0, key, 0, true, &data[..24]);
    assert_eq!(r.put(0, key, 16, false, &data[16..]), None);
    assert_eq!(r.take(), vec![DefragAnomaly::Overlap]);
    assert!(r.d.refused());
}

#[test]
fn a_request_in_eight_byte_fragments_is_reassembled_in_any_order() {
    // 4 KiB in 512 fragments of 8 bytes, interleaved (every even one, then every odd
    // one): up to 256 separate ranges at once.
    let mut r = Rig::new(DefragConfig::default());
    let data = pattern(4096, 3);
    let frags = fragments(&data, 8);
    let order: Vec<_> = frags
        .iter()
        .step_by(2)
        .chain(frags.iter().skip(1).step_by(2))
        .collect();
    let mut got = None;
    for (off, more, bytes) in order {
        if let Some(out) = r.put(0, key4(90), *off, *more, bytes) {
            got = Some(out);
        }
        assert!(!r.d.refused());
    }
    assert_eq!(got.as_deref(), Some(&data[..]));
    // A full 64 KiB datagram in 8-byte fragments, in order.
    let big = pattern(65_512, 4);
    assert_eq!(r.feed_all(key4(91), &fragments(&big, 8)), big);
    // More holes than max_ranges: abandoned and refused.
    let cfg = DefragConfig {
        max_ranges: 4,
        ..Default::default()
    };
    let mut r = Rig::new(cfg);
    for (off, more, bytes) in frags.iter().step_by(2).take(5) {
        r.put(0, key4(92), *off, *more, bytes);
    }
    assert!(r.d.refused());
    assert_eq!(r.take(), vec![DefragAnomaly::TooManyFragments]);
}

#[test]
fn timeout_drops_incomplete_datagrams() {
    let cfg = DefragConfig {
        timeout_ns: 30 * SEC,
        ..Default::default()
    };
    let mut r = Rig::new(cfg);
    let data = pattern(3000, 3);
    let frags = fragments(&data, 1480);
    r.put(0, key4(5), frags[0].0, frags[0].1, &frags[0].2);
    r.put(10 * SEC, key4(6), frags[0].0, frags[0].1, &frags[0].2);
    let mut a = Vec::new();
    r.d.expire(29 * SEC, &mut |x| a.push(x));
    assert_eq!(r.d.pending(), 2);
    r.d.expire(31 * SEC, &mut |x| a.push(x));
    assert_eq!(a, vec![DefragAnomaly::Timeout]);
    assert_eq!(r.d.pending(), 1);
    // No expire() call in between: the stale datagram is dropped when its key comes back,
    // and the late fragments start afresh instead of completing with old bytes.
    assert_eq!(
        r.put(45 * SEC, key4(6), frags[1].0, frags[1].1, &frags[1].2),
        None
    );
    assert_eq!(r.take(), vec![DefragAnomaly::Timeout]);
    assert_eq!(r.d.counters().timeouts, 2);
    r.d.expire(100 * SEC, &mut |x| a.push(x));
    assert_eq!(r.d.pending(), 0);
    assert_eq!(r.d.held_bytes(), 0);
}

#[test]
fn first_fragment_flood_stays_within_caps() {
    let cfg = DefragConfig {
        max_datagrams: 16,
        max_total_bytes: 64 * 1024,
        ..Default::default()
    };
    let mut r = Rig::new(cfg);
    let chunk = pattern(1480, 4);
    let tombstones = DefragConfig::default().max_tombstones;
    for id in 0..5000u32 {
        r.put(u64::from(id), key4(id), 0, true, &chunk);
        assert!(r.d.live() <= 16);
        assert!(r.d.pending() <= 16 + tombstones);
        assert!(r.d.held_bytes() <= 64 * 1024);
        assert!(
            r.d.live_fifo.len() <= 2 * 16 + 65,
            "eviction queue stays bounded"
        );
    }
    let c = r.d.counters();
    assert_eq!(c.table_full, 5000 - 16);
    assert_eq!(c.evictions, 5000 - 16);
    assert!(r.take().iter().all(|a| *a == DefragAnomaly::TableFull));
    // An evicted datagram's later fragments are refused: the receiver holds its first one,
    // and must not complete it from fragments the inspector never saw whole.
    assert_eq!(r.put(5000, key4(3), 1480, false, &chunk[..100]), None);
    assert!(r.d.refused());
    assert!(c.bytes_peak <= 64 * 1024);
    // Memory cap: fewer, bigger datagrams.
    let cfg = DefragConfig {
        max_datagrams: 1000,
        max_total_bytes: 8 * 1024,
        ..Default::default()
    };
    let mut r = Rig::new(cfg);
    for id in 0..500u32 {
        r.put(0, key6(id, 1), 0, true, &chunk);
        assert!(r.d.held_bytes() <= 8 * 1024);
    }
    assert!(r.d.counters().memory_full > 0);
    assert!(r.d.live() <= 8);
    // A real datagram still gets through after the flood.
    let data = pattern(3000, 5);
    assert_eq!(r.feed_all(key6(9999, 2), &fragments(&data, 1480)), data);
}

#[test]
fn too_many_fragments_abandons_the_datagram() {
    let cfg = DefragConfig {
        max_frags_per_datagram: 4,
        ..Default::default()
    };
    let mut r = Rig::new(cfg);
    let data = pattern(80, 6);
    let frags = fragments(&data, 8);
    for (off, more, bytes) in &frags[..4] {
        assert_eq!(r.put(0, key4(8), *off, *more, bytes), None);
    }
    assert!(r.take().is_empty());
    for (off, more, bytes) in &frags[4..] {
        assert_eq!(r.put(0, key4(8), *off, *more, bytes), None);
    }
    // One anomaly per refused fragment, so an inline caller can drop each one.
    assert_eq!(r.take(), vec![DefragAnomaly::TooManyFragments; 6]);
    assert_eq!(r.d.held_bytes(), 0);
    assert_eq!(r.d.pending(), 1, "tombstone until the timeout");
    let c = r.d.counters();
    assert_eq!((c.too_many, c.dropped_fragments), (1, 6));
}

#[test]
fn too_large_and_bad_lengths() {
    let mut r = Rig::new(DefragConfig::default());
    r.put(0, key4(1), 0, true, &[0; 16]);
    assert_eq!(r.put(0, key4(1), 65528, false, &[0; 16]), None);
    assert_eq!(r.take(), vec![DefragAnomaly::TooLarge]);
    assert_eq!(r.d.held_bytes(), 0);
    assert_eq!(r.d.counters().too_large, 1);
    // Non-last fragment not a multiple of 8.
    assert_eq!(r.put(0, key4(2), 0, true, &[1; 10]), None);
    assert_eq!(r.take(), vec![DefragAnomaly::BadLength]);
    // A last fragment that ends before data already received, or a second, different end.
    r.put(0, key4(3), 16, true, &[2; 16]);
    assert_eq!(r.put(0, key4(3), 8, false, &[2; 8]), None);
    assert_eq!(r.put(0, key4(3), 32, false, &[2; 8]), None);
    assert_eq!(r.put(0, key4(3), 32, false, &[2; 16]), None);
    assert_eq!(r.put(0, key4(3), 40, true, &[2; 8]), None, "beyond the end");
    assert_eq!(r.take(), vec![DefragAnomaly::BadLength; 3]);
    assert_eq!(r.put(0, key4(3), 0, true, &[2; 16]).unwrap(), vec![2; 40]);
    assert_eq!(r.d.counters().bad_length, 4);
}

#[test]
fn ipv6_keys_keep_datagrams_apart() {
    let mut r = Rig::new(DefragConfig::default());
    let a = pattern(3000, 10);
    let b = pattern(3000, 20);
    let c = pattern(3000, 30);
    let (fa, fb, fc) = (
        fragments(&a, 1232),
        fragments(&b, 1232),
        fragments(&c, 1232),
    );
    // Same id from two sources, and the same id over IPv4: three datagrams.
    let (ka, kb, kc) = (key6(0xdead_beef, 1), key6(0xdead_beef, 2), key4(0xbeef));
    let mut done = Vec::new();
    for i in [2, 0, 1] {
        for (k, f) in [(ka, &fa), (kb, &fb), (kc, &fc)] {
            if let Some(out) = r.put(0, k, f[i].0, f[i].1, &f[i].2) {
                done.push(out);
            }
        }
    }
    assert_eq!(done, vec![a, b, c]);
    assert!(r.take().is_empty());
}

#[test]
fn unfragmented_datagram_passes_straight_through() {
    let mut r = Rig::new(DefragConfig::default());
    assert_eq!(
        r.put(0, key6(1, 1), 0, false, b"whole"),
        Some(b"whole".to_vec())
    );
    assert_eq!(r.d.pending(), 0);
}

#[test]
fn counters_merge() {
    let a = DefragCounters {
        timeouts: 3,
        bytes_peak: 100,
        ..Default::default()
    };
    let mut b = DefragCounters {
        timeouts: 1,
        bytes_peak: 500,
        ..Default::default()
    };
    b.merge(&a);
    assert_eq!((b.timeouts, b.bytes_peak), (4, 500));
}

#[test]
fn with_the_tombstones_full_new_datagrams_are_refused_not_old_ones_forgotten() {
    let cfg = DefragConfig {
        max_datagrams: 2,
        max_tombstones: 2,
        ..Default::default()
    };
    let mut r = Rig::new(cfg);
    let chunk = pattern(64, 1);
    for id in 0..4u32 {
        r.put(0, key4(id), 0, true, &chunk);
        assert!(
            !r.d.refused(),
            "{id}: two live, then two evicted to tombstones"
        );
    }
    // Evicting a fifth would forget a datagram the receiver is still assembling.
    r.put(0, key4(4), 0, true, &chunk);
    assert!(r.d.refused());
    assert_eq!(r.d.counters().refused_datagrams, 1);
    // Once the tombstones time out, there is room again.
    r.d.expire(60 * SEC, &mut |_| {});
    r.put(61 * SEC, key4(5), 0, true, &chunk);
    assert!(!r.d.refused());
}
