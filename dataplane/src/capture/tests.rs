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

    // Per flow: the third 40-byte packet would pass 100 bytes.
    let mut a = Some(c.hold());
    for _ in 0..3 {
        c.packet(a.as_mut().unwrap(), 1, LinkType::RAW, &[0; 40], 40);
    }
    assert!(matches!(a.as_deref(), Some(FlowCapture::Off)));
    assert_eq!(c.held_bytes(), 0);
    // Per worker: two flows of 80 bytes pass 150.
    let mut b = Some(c.hold());
    let mut d = Some(c.hold());
    c.packet(b.as_mut().unwrap(), 1, LinkType::RAW, &[0; 80], 80);
    c.packet(d.as_mut().unwrap(), 1, LinkType::RAW, &[0; 80], 80);
    assert!(matches!(d.as_deref(), Some(FlowCapture::Off)));
    assert_eq!(c.counters.hold_limit, 2);
    // A flow given up is not captured later.
    c.start(&mut a, 1, "r", LinkType::RAW);
    assert_eq!(a.as_ref().unwrap().file(), None);
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
    for f in [a, b, d, e] {
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
