#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use etherparse::PacketBuilder;

fn tcp_v4(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 1, 5], [10, 0, 2, 7], 64)
        .tcp(40112, 8080, 1000, 65535)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

#[test]
fn ethernet_tcp() {
    let f = tcp_v4(b"GET / HTTP/1.1\r\n");
    let Decoded::Ip(p) = decode(LinkType::ETHERNET, &f).unwrap() else {
        panic!()
    };
    assert_eq!(p.src, "10.0.1.5".parse::<IpAddr>().unwrap());
    assert_eq!(p.proto, PROTO_TCP);
    let Transport::Tcp(t) = p.transport else {
        panic!()
    };
    assert_eq!((t.sport, t.dport, t.seq), (40112, 8080, 1000));
    assert!(t.has(tcp_flags::SYN));
    assert_eq!(t.payload, b"GET / HTTP/1.1\r\n");
}

#[test]
fn vlan_and_qinq() {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .double_vlan(
            etherparse::VlanId::try_new(100).unwrap(),
            etherparse::VlanId::try_new(200).unwrap(),
        )
        .ipv6([0xfd; 16], [0xfe; 16], 64)
        .udp(5353, 53);
    let mut f = Vec::new();
    b.write(&mut f, b"abc").unwrap();
    let Decoded::Ip(p) = decode(LinkType::ETHERNET, &f).unwrap() else {
        panic!()
    };
    assert!(matches!(
        p.transport,
        Transport::Udp {
            sport: 5353,
            dport: 53,
            payload: b"abc"
        }
    ));
}

#[test]
fn sll_and_sll2_and_raw() {
    let eth = tcp_v4(b"x");
    let ip = &eth[14..];
    let mut sll = vec![0u8; 16];
    sll[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(ip);
    let mut sll2 = vec![0u8; 20];
    sll2[0..2].copy_from_slice(&0x0800u16.to_be_bytes());
    sll2.extend_from_slice(ip);
    for (lt, f) in [
        (LinkType::LINUX_SLL, &sll[..]),
        (LinkType::LINUX_SLL2, &sll2[..]),
        (LinkType::RAW, ip),
    ] {
        let Decoded::Ip(p) = decode(lt, f).unwrap() else {
            panic!("{lt:?}")
        };
        assert!(
            matches!(p.transport, Transport::Tcp(t) if t.payload == b"x"),
            "{lt:?}"
        );
    }
}

#[test]
fn every_truncation_is_an_error_or_partial_never_a_panic() {
    let f = tcp_v4(b"hello world");
    for cut in 0..f.len() {
        let _ = decode(LinkType::ETHERNET, &f[..cut]);
        let _ = decode(LinkType::LINUX_SLL2, &f[..cut]);
        let _ = decode(LinkType::RAW, &f[..cut]);
    }
    assert_eq!(
        decode(LinkType::ETHERNET, &f[..20]),
        Err(DecodeError::TruncatedIp)
    );
    assert_eq!(
        decode(LinkType(147), &f),
        Err(DecodeError::UnsupportedLinkType)
    );
}

#[test]
fn ipv4_fragment_is_reported_as_fragment() {
    let mut f = tcp_v4(&[7u8; 64]);
    // Set MF on the IPv4 header (byte 6 of the IP header, after 14 bytes of Ethernet).
    f[14 + 6] |= 0x20;
    // Fix the header checksum is not needed: etherparse does not verify it.
    let Decoded::Ip(p) = decode(LinkType::ETHERNET, &f).unwrap() else {
        panic!()
    };
    assert!(matches!(
        p.transport,
        Transport::Fragment {
            offset: 0,
            more: true,
            ..
        }
    ));
}

/// The offset reader must give exactly etherparse's answer for every frame it takes, and
/// take no frame etherparse would reject. Frames: the recorded captures' Ethernet frames,
/// the bench mix's first flows, and each of them with every header byte (Ethernet, IPv4,
/// TCP) set to values that hit the length, version, fragment and flag checks, and cut at
/// every header length.
#[test]
fn fast_path_agrees_with_etherparse() {
    let mut frames: Vec<Vec<u8>> = vec![
        tcp_v4(b""),
        tcp_v4(b"GET / HTTP/1.1\r\n"),
        tcp_v4(&[7; 1400]),
    ];
    for name in ["spine-eth.pcap", "vlan-8021q.pcap"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data")
            .join(name);
        let mut f = crate::io::pcap::CaptureFile::open(&p).unwrap();
        while f
            .next_packet(&mut |p| frames.push(p.data.to_vec()))
            .unwrap()
            .is_some()
        {}
    }
    let (mix, _) = traffic_gen::eastwest::generate_frames(40, 3);
    frames.extend(mix.iter().take(400).map(|(_, f)| f.to_vec()));
    // A frame with IPv4 options and TCP options, and Ethernet padding after the datagram.
    let mut opts = tcp_v4(b"abc");
    opts[14] = 0x46;
    opts.splice(34..34, [1, 1, 1, 0]);
    let tl = u16::from_be_bytes([opts[16], opts[17]]) + 4;
    opts[16..18].copy_from_slice(&tl.to_be_bytes());
    opts.extend_from_slice(&[0; 6]);
    frames.push(opts);

    let values = [
        0u8, 1, 2, 4, 5, 6, 0x08, 0x10, 0x17, 0x1f, 0x20, 0x3f, 0x40, 0x44, 0x45, 0x46, 0x4f, 0x50,
        0x60, 0x80, 0x86, 0xa0, 0xdd, 0xf0, 0xff,
    ];
    let mut fast_taken = 0usize;
    let mut check = |f: &[u8]| {
        let got = decode(LinkType::ETHERNET, f);
        let want = decode_sliced(LinkType::ETHERNET, f);
        assert_eq!(got, want, "{f:02x?}");
        if ethernet_ipv4_tcp(f).is_some() {
            fast_taken += 1;
        }
    };
    for f in &frames {
        check(f);
        for at in 0..f.len().min(14 + 24 + 24) {
            let mut m = f.clone();
            for v in values {
                m[at] = v;
                check(&m);
            }
        }
        for cut in 0..f.len().min(14 + 64) {
            check(&f[..cut]);
        }
    }
    assert!(fast_taken > 10_000, "{fast_taken}");
}
