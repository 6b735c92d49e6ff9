//! `palisade replay` on captures of real traffic gives flow events whose packet and byte
//! counts per conversation equal what tshark reports for the same capture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

type Key = (String, u16, String, u16, String);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Endpoints in a canonical order so both tools' conversations compare.
fn key(a: &str, ap: u16, b: &str, bp: u16, proto: &str) -> Key {
    let (x, y) = ((a.to_string(), ap), (b.to_string(), bp));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    (lo.0, lo.1, hi.0, hi.1, proto.to_string())
}

fn tshark_conversations(capture: &Path) -> BTreeMap<Key, (u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(capture)
        .args([
            "-Y",
            "(tcp or udp) and not icmp and not icmpv6",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=f",
            "-e",
            "frame.len",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ])
        .output()
        .expect("tshark runs (tests/peers/install.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        let pick = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        let len: u64 = f[0].parse().unwrap();
        let (src, dst) = (pick(f[1], f[2]), pick(f[3], f[4]));
        let (proto, sp, dp) = if !f[5].is_empty() {
            ("TCP", f[5], f[6])
        } else {
            ("UDP", f[7], f[8])
        };
        let k = key(&src, sp.parse().unwrap(), &dst, dp.parse().unwrap(), proto);
        let e = m.entry(k).or_insert((0, 0));
        e.0 += 1;
        e.1 += len;
    }
    m
}

fn palisade_flows(capture: &Path) -> BTreeMap<Key, (u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(capture)
        .arg("--policy")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/allow-all.yaml"))
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event_type"] != "flow" || !(v["proto"] == "TCP" || v["proto"] == "UDP") {
            continue;
        }
        let k = key(
            v["src_ip"].as_str().unwrap(),
            v["src_port"].as_u64().unwrap() as u16,
            v["dest_ip"].as_str().unwrap(),
            v["dest_port"].as_u64().unwrap() as u16,
            v["proto"].as_str().unwrap(),
        );
        let f = &v["flow"];
        let e = m.entry(k).or_insert((0, 0));
        e.0 += f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
        e.1 += f["bytes_toserver"].as_u64().unwrap() + f["bytes_toclient"].as_u64().unwrap();
    }
    m
}

fn check(name: &str, min_conversations: usize) {
    let capture = repo().join("tests/data").join(name);
    let expected = tshark_conversations(&capture);
    assert!(
        expected.len() >= min_conversations,
        "{name}: expected {min_conversations}+ conversations, tshark saw {}",
        expected.len()
    );
    let got = palisade_flows(&capture);
    assert_eq!(
        got, expected,
        "{name}: per-conversation (packets, bytes) differ from tshark"
    );
}

#[test]
fn ethernet_capture_matches_tshark() {
    check("spine-eth.pcap", 8);
}

#[test]
fn pcapng_capture_matches_tshark() {
    check("spine-eth.pcapng", 8);
}

#[test]
fn nanosecond_capture_matches_tshark() {
    check("spine-eth-nsec.pcap", 8);
}

#[test]
fn tcpdump_any_sll2_capture_matches_tshark() {
    check("spine-any-sll2.pcap", 8);
}

#[test]
fn tcpdump_any_sll_capture_matches_tshark() {
    check("spine-any-sll.pcap", 8);
}

#[test]
fn big_endian_capture_matches_tshark() {
    check("spine-eth-be.pcap", 8);
}

#[test]
fn vlan_captures_match_tshark() {
    check("vlan-8021q.pcap", 2);
    check("vlan-qinq.pcap", 2);
}
