use std::path::Path;

use pcap_file::pcap::PcapReader;

use super::*;

fn cfg(dir: &Path) -> CaptureConfig {
    CaptureConfig::new(dir.to_path_buf())
}

/// (timestamp ns, original length, bytes) of every packet in a pcap file, and its link type.
fn read(path: &str) -> (u32, Vec<(u64, u32, Vec<u8>)>) {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    let lt = u32::from(r.header().datalink);
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp.as_nanos() as u64, p.orig_len, p.data.to_vec()));
    }
    (lt, out)
}

#[test]
fn held_packets_come_first_then_the_rest_of_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Captures::new(cfg(dir.path()));
    let mut fc = Some(c.hold());
    for i in 0..3u8 {
        c.packet(
            fc.as_mut().unwrap(),
            10 + u64::from(i),
            LinkType::ETHERNET,
            &[i; 60],
            80,
        );
    }
    assert_eq!(c.held_bytes(), 180);
    c.start(&mut fc, 7, "web orders/1", LinkType::ETHERNET);
    assert_eq!(c.held_bytes(), 0);
    let path = fc.as_ref().unwrap().file().unwrap().to_string();
    assert!(path.ends_with("7-web_orders_1.pcap"), "{path}");
    c.packet(fc.as_mut().unwrap(), 20, LinkType::ETHERNET, &[9; 70], 70);
    // A second capturing decision changes nothing.
    c.start(&mut fc, 7, "other", LinkType::ETHERNET);
    assert_eq!(fc.as_ref().unwrap().file(), Some(path.as_str()));
    c.end(fc);
    assert_eq!(c.open_files(), 0);
    let (lt, pkts) = read(&path);
    assert_eq!(lt, 1);
    assert_eq!(
        pkts,
        [
            (10, 80, vec![0; 60]),
            (11, 80, vec![1; 60]),
            (12, 80, vec![2; 60]),
            (20, 70, vec![9; 70])
        ]
    );
    assert_eq!(c.counters.files, 1);
    assert_eq!(c.counters.packets, 4);
    assert_eq!(c.counters.bytes, 250);
}

#[test]
fn a_flow_captured_without_holding_starts_at_the_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Captures::new(cfg(dir.path()));
    let mut fc = None;
    c.start(&mut fc, 1, "r", LinkType::RAW);
    c.packet(fc.as_mut().unwrap(), 5, LinkType::RAW, &[1; 40], 40);
    // Another link type in the same flow is left out and counted.
    c.packet(fc.as_mut().unwrap(), 6, LinkType::ETHERNET, &[1; 54], 54);
    let path = fc.as_ref().unwrap().file().unwrap().to_string();
    c.end(fc);
    let (lt, pkts) = read(&path);
    assert_eq!(lt, 101);
    assert_eq!(pkts.len(), 1);
    assert_eq!(c.counters.other_linktype, 1);
}

#[test]
fn limits_hold_open_files_and_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = cfg(dir.path());
    small.hold_per_flow = 100;
    small.hold_total = 150;
    small.max_open = 1;
    small.max_file_bytes = 100;
    let mut c = Captures::new(small);

    // Per flow: the third 40-byte packet would pass 100 bytes: the first goes.
    let mut a = Some(c.hold());
    for i in 0..3u8 {
        c.packet(
            a.as_mut().unwrap(),
            u64::from(i),
            LinkType::RAW,
            &[i; 40],
            40,
        );
    }
    assert_eq!(c.held_bytes(), 80);
    assert_eq!((c.counters.hold_limit, c.counters.hold_dropped), (1, 1));
    // Per worker: b's 80 bytes leave 70 of 150 while a holds 80; d's 80 do not fit and d
    // holds nothing of its own to give up.
    c.end(a.take());
    let mut b = Some(c.hold());
    let mut d = Some(c.hold());
    c.packet(b.as_mut().unwrap(), 1, LinkType::RAW, &[0; 80], 80);
    let mut spare = Some(c.hold());
    c.packet(spare.as_mut().unwrap(), 1, LinkType::RAW, &[0; 40], 40);
    c.packet(d.as_mut().unwrap(), 1, LinkType::RAW, &[0; 80], 80);
    assert_eq!(c.held_bytes(), 120);
    assert_eq!((c.counters.hold_limit, c.counters.hold_dropped), (2, 2));
    c.end(spare);
    // One file open at most; a file stops at 100 bytes.
    c.start(&mut b, 2, "r", LinkType::RAW);
    assert!(b.as_ref().unwrap().file().is_some());
    let mut e = None;
    c.start(&mut e, 3, "r", LinkType::RAW);
    assert_eq!(e.as_ref().unwrap().file(), None);
    assert_eq!(c.counters.open_limit, 1);
    c.packet(b.as_mut().unwrap(), 2, LinkType::RAW, &[0; 30], 30);
    assert_eq!(c.counters.truncated, 1);
    assert_eq!(c.open_files(), 0, "a truncated file is closed at once");
    let path = b.as_ref().unwrap().file().unwrap().to_string();
    for f in [b, d, e] {
        c.end(f);
    }
    assert_eq!(c.held_bytes(), 0);
    assert_eq!(read(&path).1.len(), 1);
}

#[test]
fn names_left_from_an_earlier_run_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("4-r.pcap"), b"old").unwrap();
    let mut c = Captures::new(cfg(dir.path()));
    let mut fc = None;
    c.start(&mut fc, 4, "r", LinkType::RAW);
    let path = fc.as_ref().unwrap().file().unwrap().to_string();
    assert!(path.ends_with("4-r-1.pcap"), "{path}");
    c.end(fc);
    assert_eq!(std::fs::read(dir.path().join("4-r.pcap")).unwrap(), b"old");
}

#[test]
fn a_directory_that_cannot_be_written_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Captures::new(cfg(&dir.path().join("missing")));
    let mut fc = Some(c.hold());
    c.packet(fc.as_mut().unwrap(), 1, LinkType::RAW, &[0; 40], 40);
    c.start(&mut fc, 1, "r", LinkType::RAW);
    assert_eq!(fc.as_ref().unwrap().file(), None);
    assert_eq!(c.counters.errors, 1);
    assert_eq!(c.held_bytes(), 0);
    c.end(fc);
}

fn bounded(dir: &Path, max_files: Option<usize>, max_bytes: Option<u64>) -> Captures {
    Captures::new(
        CaptureConfig::open(
            dir.to_path_buf(),
            DirBounds {
                max_files,
                max_bytes,
            },
        )
        .unwrap(),
    )
}

/// Names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Sum of the sizes of the files in `dir` (what `du --apparent-size` says).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// One flow captured from its match: `n` packets of `size` bytes, then its end.
fn capture_flow(c: &mut Captures, id: u64, n: usize, size: usize) -> String {
    let mut fc = None;
    c.start(&mut fc, id, "r", LinkType::RAW);
    for _ in 0..n {
        c.packet(
            fc.as_mut().unwrap(),
            id,
            LinkType::RAW,
            &vec![id as u8; size],
            size as u32,
        );
    }
    let path = fc
        .as_ref()
        .and_then(|f| f.file())
        .unwrap_or_default()
        .to_string();
    c.end(fc);
    path
}

#[test]
fn the_files_bound_removes_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bounded(dir.path(), Some(3), None);
    for id in 1..=10 {
        capture_flow(&mut c, id, 2, 50);
    }
    assert_eq!(listing(dir.path()), ["10-r.pcap", "8-r.pcap", "9-r.pcap"]);
    assert_eq!(c.counters.removed, 7);
    assert_eq!(c.counters.dir_files_limit, 7);
    // Each removed file: a 24-byte header and two 16 + 50 byte records.
    assert_eq!(c.counters.removed_bytes, 7 * (24 + 2 * 66));
    assert_eq!(c.store().usage(), (3, 3 * (24 + 2 * 66)));
    assert_eq!(dir_bytes(dir.path()), 3 * (24 + 2 * 66));
    let (listed, total) = c.store().list(10);
    assert_eq!(total, 3);
    let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["10-r.pcap", "9-r.pcap", "8-r.pcap"], "newest first");
}

#[test]
fn a_file_still_being_written_is_newer_than_every_closed_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bounded(dir.path(), Some(2), None);
    // Flow 1 stays open; flow 2 opens after it and ends.
    let mut open = None;
    c.start(&mut open, 1, "r", LinkType::RAW);
    capture_flow(&mut c, 2, 1, 40);
    // Flow 3 needs room: the closed file goes, though flow 1's is older.
    capture_flow(&mut c, 3, 1, 40);
    assert_eq!(listing(dir.path()), ["1-r.pcap", "3-r.pcap"]);
    // With every file open, the oldest open one goes; its worker closes it at its next
    // packet and writes nothing more.
    let mut four = None;
    c.start(&mut four, 4, "r", LinkType::RAW);
    let mut five = None;
    c.start(&mut five, 5, "r", LinkType::RAW);
    assert_eq!(listing(dir.path()), ["4-r.pcap", "5-r.pcap"]);
    assert_eq!(
        c.open_files(),
        3,
        "flow 1's file is gone but not yet closed"
    );
    c.packet(open.as_mut().unwrap(), 9, LinkType::RAW, &[1; 40], 40);
    assert_eq!(c.open_files(), 2);
    assert_eq!(c.counters.removed_open, 1);
    assert_eq!(c.counters.removed, 3);
    for f in [open, four, five] {
        c.end(f);
    }
    assert_eq!(c.store().usage().0, 2);
}

#[test]
fn files_found_at_start_count_and_other_files_are_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = |name: &str, bytes: usize, age_s: u64| {
        let p = d.join(name);
        std::fs::write(&p, vec![0u8; bytes]).unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(age_s);
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    old("11-older.pcap", 100, 300);
    old("12-old.pcap", 200, 200);
    std::fs::write(
        d.join("12-old.pcap.json"),
        br#"{"flow_id": 12, "capture_rule": "old", "alert": {"signature": "s"}}"#,
    )
    .unwrap();
    // Not Palisade's: never indexed, counted or removed.
    old("notes.txt", 10, 400);
    old("capture.pcap", 10, 400);
    old("x-1-r.pcap", 10, 400);
    old("7-r.pcap.bak", 10, 400);
    std::fs::create_dir(d.join("5-dir.pcap")).unwrap();
    std::os::unix::fs::symlink(d.join("notes.txt"), d.join("6-link.pcap")).unwrap();
    let others = [
        "5-dir.pcap",
        "6-link.pcap",
        "7-r.pcap.bak",
        "capture.pcap",
        "notes.txt",
        "x-1-r.pcap",
    ];

    let mut c = bounded(d, Some(2), None);
    let side = d.join("12-old.pcap.json").metadata().unwrap().len();
    assert_eq!(c.store().usage(), (2, 300 + side));
    let (listed, _) = c.store().list(10);
    assert_eq!(listed[0].flow_id, Some(12));
    assert_eq!(listed[0].rule, "old");
    assert_eq!(listed[0].sidecar().unwrap()["alert"]["signature"], "s");
    assert!(listed.iter().all(|e| e.found && !e.is_open()));

    // A restart does not let the directory pass its bound: the oldest found file goes.
    capture_flow(&mut c, 1, 1, 40);
    let mut want: Vec<&str> = others.to_vec();
    want.extend(["1-r.pcap", "12-old.pcap", "12-old.pcap.json"]);
    want.sort();
    assert_eq!(listing(d), want);
    // Then the other, with its sidecar.
    capture_flow(&mut c, 2, 1, 40);
    let mut want: Vec<&str> = others.to_vec();
    want.extend(["1-r.pcap", "2-r.pcap"]);
    want.sort();
    assert_eq!(listing(d), want);
    assert_eq!(c.counters.removed, 2);
    assert_eq!(c.counters.removed_bytes, 300 + side);
}

#[test]
fn the_byte_bound_is_strict() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1_000;
    let mut c = bounded(dir.path(), None, Some(limit));
    for id in 1..=12 {
        // 24 + 3 * (16 + 100) = 372 bytes a file: two fit, a third removes the oldest.
        let mut fc = None;
        c.start(&mut fc, id, "r", LinkType::RAW);
        for _ in 0..3 {
            c.packet(fc.as_mut().unwrap(), id, LinkType::RAW, &[7; 100], 100);
            assert!(c.store().usage().1 <= limit);
        }
        c.end(fc);
        assert!(dir_bytes(dir.path()) <= limit, "after flow {id}");
        assert_eq!(dir_bytes(dir.path()), c.store().usage().1);
    }
    assert_eq!(listing(dir.path()), ["11-r.pcap", "12-r.pcap"]);
    assert_eq!(c.counters.removed, 10);
    assert_eq!(c.counters.removed_bytes, 10 * 372);
    assert!(c.counters.dir_bytes_limit >= 10);
    assert_eq!(c.counters.truncated, 0);

    // One flow larger than the bound: everything else goes, then the flow stops at it.
    let path = capture_flow(&mut c, 20, 20, 100);
    assert_eq!(listing(dir.path()), ["20-r.pcap"]);
    assert!(dir_bytes(dir.path()) <= limit);
    assert_eq!(read(&path).1.len(), (limit as usize - 24) / 116);
    assert_eq!(c.counters.truncated, 1);
}

#[test]
fn the_prematch_ring_keeps_the_packets_just_before_the_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = cfg(dir.path());
    small.hold_packets = 3;
    let mut c = Captures::new(small);
    let mut fc = Some(c.hold());
    for i in 0..5u8 {
        c.packet(
            fc.as_mut().unwrap(),
            u64::from(i),
            LinkType::RAW,
            &[i; 40],
            40,
        );
    }
    assert_eq!(c.held_bytes(), 120);
    assert_eq!((c.counters.hold_limit, c.counters.hold_dropped), (1, 2));
    c.start(&mut fc, 1, "r", LinkType::RAW);
    let path = fc.as_ref().unwrap().file().unwrap().to_string();
    c.end(fc);
    let ts: Vec<u64> = read(&path).1.iter().map(|p| p.0).collect();
    assert_eq!(ts, [2, 3, 4]);

    // 0: nothing is held; the file starts at the match.
    let mut none = cfg(dir.path());
    none.hold_packets = 0;
    let mut c = Captures::new(none);
    let mut fc = Some(c.hold());
    c.packet(fc.as_mut().unwrap(), 1, LinkType::RAW, &[0; 40], 40);
    assert_eq!(c.held_bytes(), 0);
    c.start(&mut fc, 2, "r", LinkType::RAW);
    let path = fc.as_ref().unwrap().file().unwrap().to_string();
    c.end(fc);
    assert!(read(&path).1.is_empty());
}

#[test]
fn files_and_sidecars_are_private_and_removed_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bounded(dir.path(), Some(1), None);
    let mut fc = None;
    c.start(&mut fc, 3, "deny admin", LinkType::RAW);
    c.packet(fc.as_mut().unwrap(), 1, LinkType::RAW, &[0; 40], 40);
    let path = fc.as_ref().unwrap().file().unwrap().to_string();
    let mut e =
        crate::events::Event::new(crate::events::Timestamp(1_700_000_000_000_000_000), "alert");
    e.flow_id = Some(3);
    e.src_ip = Some("10.0.0.1".parse().unwrap());
    e.src_port = Some(40000);
    e.dest_ip = Some("10.0.0.2".parse().unwrap());
    e.dest_port = Some(80);
    e.proto = Some("TCP");
    e.capture_file = Some(&path);
    c.note_event(fc.as_deref(), &e);
    // Only the first alert is the sidecar.
    let mut later = e.clone();
    later.flow_id = Some(99);
    c.note_event(fc.as_deref(), &later);
    let side = format!("{path}.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&side).unwrap()).unwrap();
    assert_eq!(v["flow_id"], 3);
    assert_eq!(
        v["capture_rule"], "deny admin",
        "the rule id, not its file-safe spelling"
    );
    assert_eq!(v["dest_port"], 80);
    assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000000+0000");
    for p in [&path, &side] {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{p}");
    }
    c.end(fc);
    // The sidecar counts toward the bounds, and goes with its file.
    assert_eq!(c.store().usage().1, dir_bytes(dir.path()));
    capture_flow(&mut c, 4, 1, 40);
    assert_eq!(listing(dir.path()), ["4-r.pcap"]);
    // A restart reads the sidecar back.
    let mut fc = None;
    let mut c = bounded(dir.path(), Some(5), None);
    c.start(&mut fc, 5, "r", LinkType::RAW);
    let e = crate::events::Event::new(crate::events::Timestamp(0), "flow");
    c.note_event(fc.as_deref(), &e);
    c.end(fc);
    let c2 = bounded(dir.path(), Some(5), None);
    let (listed, _) = c2.store().list(10);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "5-r.pcap");
    assert_eq!(listed[0].sidecar().unwrap()["event_type"], "flow");
    assert!(listed[1].sidecar().is_none());
}
