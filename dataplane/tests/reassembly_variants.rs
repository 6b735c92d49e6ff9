//! Reordered, duplicated, overlapping and IP-fragmented variants of a real capture give the
//! same reassembled byte streams as the clean capture.

mod common;

use common::*;
use dataplane::pipeline::WorkerConfig;

type Frames = Vec<(u64, dataplane::decode::LinkType, Vec<u8>, u32)>;

fn clean(segs: &[Seg]) -> Frames {
    segs.iter().map(|s| raw(s.ts, ip_packet(s))).collect()
}

fn same_flow_dir(a: &Seg, b: &Seg) -> bool {
    (a.src, a.sport, a.dst, a.dport) == (b.src, b.sport, b.dst, b.dport)
}

/// Each data segment swaps places with the next data segment of the same direction.
fn reordered(segs: &[Seg]) -> Frames {
    let mut v: Vec<Seg> = segs.to_vec();
    let mut i = 0;
    while i < v.len() {
        if !v[i].payload.is_empty()
            && let Some(j) =
                (i + 1..v.len()).find(|&j| !v[j].payload.is_empty() && same_flow_dir(&v[i], &v[j]))
        {
            v.swap(i, j);
            i = j + 1;
            continue;
        }
        i += 1;
    }
    clean(&v)
}

fn duplicated(segs: &[Seg]) -> Frames {
    let mut out = Vec::new();
    for s in segs {
        out.push(raw(s.ts, ip_packet(s)));
        if !s.payload.is_empty() {
            out.push(raw(s.ts, ip_packet(s)));
        }
    }
    out
}

/// Each data segment is preceded by a copy of its first two thirds, then sent whole: the
/// whole one overlaps the partial one with the same bytes. Every other segment is also
/// followed by a retransmission that straddles it and the next one's start.
fn overlapping(segs: &[Seg]) -> Frames {
    let mut out = Vec::new();
    for s in segs {
        if s.payload.len() >= 3 {
            let mut part = s.clone();
            part.payload.truncate(s.payload.len() * 2 / 3);
            part.flags &= !dataplane::decode::tcp_flags::FIN;
            out.push(raw(s.ts, ip_packet(&part)));
            let mut tail = s.clone();
            let cut = s.payload.len() / 3;
            tail.seq = s.seq.wrapping_add(cut as u32);
            tail.payload = s.payload[cut..].to_vec();
            out.push(raw(s.ts, ip_packet(&tail)));
            out.push(raw(s.ts, ip_packet(s)));
        } else {
            out.push(raw(s.ts, ip_packet(s)));
        }
    }
    out
}

fn fragmented(segs: &[Seg]) -> Frames {
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if s.payload.len() > 16 {
            for f in fragments(s, 24, 1000 + i as u32) {
                out.push(raw(s.ts, f));
            }
        } else {
            out.push(raw(s.ts, ip_packet(s)));
        }
    }
    out
}

fn check_variants(capture: &str) {
    let frames = read_capture(&repo().join("tests/data").join(capture));
    let segs = tcp_segments(&frames);
    assert!(
        segs.iter().filter(|s| !s.payload.is_empty()).count() > 10,
        "{capture} has TCP data"
    );
    let (base, base_gaps, _) = run_recording(&clean(&segs), WorkerConfig::default());
    assert!(
        base.len() >= 4,
        "{capture}: expected several TCP streams, got {}",
        base.len()
    );
    assert!(
        base.iter()
            .any(|(c, s)| c.starts_with(b"GET ") && s.starts_with(b"HTTP/1.1 "))
    );
    assert_eq!(base_gaps, 0);
    for (name, variant) in [
        ("reordered", reordered(&segs)),
        ("duplicated", duplicated(&segs)),
        ("overlapping", overlapping(&segs)),
        ("fragmented", fragmented(&segs)),
    ] {
        let (got, gaps, w) = run_recording(&variant, WorkerConfig::default());
        assert_eq!(gaps, 0, "{capture} {name}: gaps");
        assert_eq!(got.len(), base.len(), "{capture} {name}: stream count");
        for (i, (g, b)) in got.iter().zip(&base).enumerate() {
            assert!(
                g == b,
                "{capture} {name}: stream {i} differs ({} / {} bytes vs {} / {})",
                g.0.len(),
                g.1.len(),
                b.0.len(),
                b.1.len()
            );
        }
        let c = w.stats.reassembly;
        match name {
            "reordered" => assert!(c.ooo_segments > 0, "{name}: no out-of-order segments seen"),
            "duplicated" => assert!(c.duplicates > 0, "{name}: no duplicates seen"),
            "overlapping" => {
                assert!(c.overlaps + c.duplicates > 0, "{name}: no overlaps seen");
                assert_eq!(c.overlap_mismatches, 0);
            }
            "fragmented" => assert!(w.stats.fragments > 0 && w.stats.defrag.reassembled > 0),
            _ => {}
        }
    }
}

#[test]
fn ipv4_and_ipv6_variants_reassemble_identically() {
    check_variants("spine-eth.pcap");
}

#[test]
fn conflicting_overlap_is_dropped_and_reported() {
    let frames = read_capture(&repo().join("tests/data/spine-eth.pcap"));
    let segs = tcp_segments(&frames);
    let mut out = Vec::new();
    let mut forged = false;
    let mut held_back: Option<Seg> = None;
    for s in &segs {
        // Hold the first client request back so its forged twin arrives out of order and is
        // held; then the real one overlaps held data with different bytes.
        if !forged && s.payload.starts_with(b"GET ") {
            let mut evil = s.clone();
            evil.payload = s.payload.iter().map(|b| b.to_ascii_lowercase()).collect();
            let mut later = s.clone();
            later.seq = s.seq.wrapping_add(4);
            later.payload = evil.payload[4..].to_vec();
            out.push(raw(s.ts, ip_packet(&later)));
            held_back = Some(s.clone());
            forged = true;
            continue;
        }
        if let Some(h) = held_back.take() {
            out.push(raw(h.ts, ip_packet(&h)));
        }
        out.push(raw(s.ts, ip_packet(s)));
    }
    let (_, _, w) = run_recording(&out, WorkerConfig::default());
    assert!(w.stats.reassembly.overlap_mismatches >= 1);
    assert!(
        w.stats
            .anomalies
            .get("stream.overlap_mismatch")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(
        w.stats.dropped >= 1,
        "the conflicting copy must get a drop verdict"
    );
}
