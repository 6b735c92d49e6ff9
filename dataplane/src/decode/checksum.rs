//! Internet checksums (RFC 1071): the IPv4 header's and TCP's/UDP's over their pseudo
//! header, so that a segment the receiving host would discard is not judged as if it had
//! been delivered.
//!
//! Captures taken on the sending host (and traffic seen on a veth or `lo`) carry checksums
//! that the NIC or nobody ever filled in ("offloading"). Validation therefore has a mode
//! ([`ChecksumMode`]); `auto` decides from the traffic itself, as Suricata's does: a
//! capture is sampled before it is replayed, a live source from its first packets.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;

use super::{PROTO_TCP, PROTO_UDP};

/// Whether checksums are validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChecksumMode {
    /// Decide from the traffic: validate unless more than [`AUTO_BAD_PERCENT`] % of the
    /// first [`AUTO_SAMPLE`] TCP/UDP packets fail (checksums offloaded).
    #[default]
    Auto,
    /// Every packet: one that fails is dropped and never reaches the inspector.
    Validate,
    /// Never (captures known to come from a host with offloading).
    Ignore,
}

impl ChecksumMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => ChecksumMode::Auto,
            "on" | "validate" => ChecksumMode::Validate,
            "off" | "ignore" => ChecksumMode::Ignore,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ChecksumMode::Auto => "auto",
            ChecksumMode::Validate => "on",
            ChecksumMode::Ignore => "off",
        }
    }
}

/// Packets `auto` looks at before deciding.
pub const AUTO_SAMPLE: u32 = 1000;
/// Above this share of failures in the sample, checksums are taken to be offloaded.
pub const AUTO_BAD_PERCENT: u32 = 10;

/// The decision `auto` reaches from `checked` packets of which `bad` failed.
pub fn auto_decides(checked: u32, bad: u32) -> ChecksumMode {
    if checked == 0 || u64::from(bad) * 100 > u64::from(checked) * u64::from(AUTO_BAD_PERCENT) {
        ChecksumMode::Ignore
    } else {
        ChecksumMode::Validate
    }
}

/// The one's-complement sum of `data` as 16-bit words in the machine's byte order, not
/// yet folded. Reading the words in native order needs no byte swap per word (RFC 1071
/// 2(B): the sum is byte-order independent up to one swap at the end, in [`finish`]).
/// Eight bytes at a time with end-around carry: measured against word-at-a-time and
/// 64-byte-block loops on the baseline x86-64 target (no AVX), this is the cheapest (about
/// half an instruction per byte; the block loop only wins with AVX2).
fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut carries: u64 = 0;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_ne_bytes(<[u8; 8]>::try_from(w).unwrap_or_default());
        let (s, o) = acc.overflowing_add(w);
        acc = s;
        carries += u64::from(o);
    }
    // The last 0-7 bytes as a 4-, a 2- and a 1-byte piece, each at an even offset (one's
    // complement sums of 16-bit words in wider native lanes fold to the same value): a
    // copy into a padded word here was a memcpy call, a third of a SYN's checksum cost.
    let rest = words.remainder();
    let mut tail = 0u64;
    let mut at = 0usize;
    if let Some(four) = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        tail += u64::from(u32::from_ne_bytes(four));
        at = 4;
    }
    if let Some(two) = rest
        .get(at..at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
    {
        tail += u64::from(u16::from_ne_bytes(two));
        at += 2;
    }
    if let Some(&last) = rest.get(at) {
        tail += u64::from(u16::from_ne_bytes([last, 0]));
    }
    let (s, o) = acc.overflowing_add(tail);
    carries += u64::from(o);
    (s & 0xffff_ffff) + (s >> 32) + carries
}

/// [`sum`] of an IPv4 address.
fn sum4(a: std::net::Ipv4Addr) -> u64 {
    u64::from(u32::from_ne_bytes(a.octets()))
}

fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    u16::from_be(acc as u16)
}

/// A 16-bit value as the native-order sum would have read it from the wire.
fn word(v: u64) -> u64 {
    // `v` fits in 32 bits (a length, a protocol number): its two big-endian 16-bit words,
    // each read in native order.
    let hi = u16::from_be(((v >> 16) & 0xffff) as u16);
    let lo = u16::from_be((v & 0xffff) as u16);
    u64::from(hi) + u64::from(lo)
}

/// Whether an IPv4 header (options included) sums to all ones.
pub fn ipv4_header_ok(header: &[u8]) -> bool {
    finish(sum(header)) == 0xffff
}

/// Whether a TCP or UDP segment (`l4`: its header and data, whole) carries the checksum
/// its pseudo header and bytes call for. Other protocols, and a UDP/IPv4 datagram without
/// a checksum (0, RFC 768), pass.
pub fn l4_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> bool {
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return true;
    }
    if proto == PROTO_UDP && src.is_ipv4() && l4.get(6..8) == Some(&[0, 0][..]) {
        return true;
    }
    let len = l4.len() as u64;
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum4(s) + sum4(d) + word(u64::from(proto)) + word(len),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum(&s.octets()) + sum(&d.octets()) + word(u64::from(proto)) + word(len)
        }
        _ => return false,
    };
    finish(pseudo + sum(l4)) == 0xffff
}

/// Checksum validation of one worker: a fixed mode, or `auto` sampling before it decides.
#[derive(Clone, Copy, Debug)]
pub struct Checksums {
    mode: ChecksumMode,
    checked: u32,
    bad: u32,
    /// Packets that failed while validating (dropped, never inspected).
    pub failed: u64,
}

impl Checksums {
    pub const fn new(mode: ChecksumMode) -> Self {
        Checksums {
            mode,
            checked: 0,
            bad: 0,
            failed: 0,
        }
    }

    /// The mode in force (`Auto` while still sampling).
    pub fn mode(&self) -> ChecksumMode {
        self.mode
    }

    /// Whether this packet's checksums hold, or are not looked at. While `auto` samples,
    /// packets pass (nothing is known yet about the path's offloading); the decision is
    /// taken after [`AUTO_SAMPLE`] packets. Returns `(ok, decided)`, `decided` being the
    /// mode `auto` switched to on this packet.
    pub fn check(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        ip_header: super::IpHeader<'_>,
        l4: &[u8],
    ) -> (bool, Option<ChecksumMode>) {
        match self.mode {
            ChecksumMode::Ignore => (true, None),
            ChecksumMode::Validate => {
                let ok = ip_header.ok() && (l4.is_empty() || l4_checksum_ok(src, dst, proto, l4));
                if !ok {
                    self.failed += 1;
                }
                (ok, None)
            }
            ChecksumMode::Auto => {
                if proto != PROTO_TCP && proto != PROTO_UDP {
                    return (true, None);
                }
                self.checked += 1;
                let ok = ip_header.ok() && (l4.is_empty() || l4_checksum_ok(src, dst, proto, l4));
                self.bad += u32::from(!ok);
                if self.checked < AUTO_SAMPLE {
                    return (true, None);
                }
                self.mode = auto_decides(self.checked, self.bad);
                (true, Some(self.mode))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 64240)
            .ack(7)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// RFC 1071 as written: big-endian 16-bit words, an odd last byte padded with zero.
    fn reference(data: &[u8]) -> u16 {
        let mut acc = 0u32;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u32::from(b));
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn the_word_sum_matches_rfc_1071_at_every_length() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..80usize {
            for _ in 0..50 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 24) as u8
                    })
                    .collect();
                let ours = finish(sum(&data));
                let want = reference(&data);
                // 0x0000 and 0xffff are the same number in one's complement.
                assert!(
                    ours == want || (ours == 0 && want == 0xffff) || (ours == 0xffff && want == 0),
                    "len {len}: {ours:#x} vs {want:#x}"
                );
            }
        }
        for a in ["0.0.0.0", "10.0.0.1", "255.255.255.255", "192.168.7.200"] {
            let a: std::net::Ipv4Addr = a.parse().unwrap();
            assert_eq!(finish(sum4(a)), finish(sum(&a.octets())));
        }
    }

    #[test]
    fn sums_match_etherparse_and_catch_one_flipped_bit() {
        for n in [0usize, 1, 2, 3, 4, 5, 7, 63, 64, 65, 1459, 1460] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let f = tcp_frame(&payload);
            let (ip, l4) = f.split_at(20);
            let (s, d) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
            assert!(ipv4_header_ok(ip), "{n}");
            assert!(l4_checksum_ok(s, d, PROTO_TCP, l4), "{n}");
            for bit in [0usize, 9, 8 * l4.len() - 1] {
                let mut bad = l4.to_vec();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!l4_checksum_ok(s, d, PROTO_TCP, &bad), "{n} bit {bit}");
            }
            let mut bad_ip = ip.to_vec();
            bad_ip[8] ^= 1;
            assert!(!ipv4_header_ok(&bad_ip));
        }
    }

    #[test]
    fn ipv6_and_udp() {
        let mut out = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .udp(5353, 53)
            .write(&mut out, b"\x12\x34hello")
            .unwrap();
        let l4 = &out[40..];
        let (s, d): (IpAddr, IpAddr) = (
            "fdfd:fdfd:fdfd:fdfd:fdfd:fdfd:fdfd:fdfd".parse().unwrap(),
            "fefe:fefe:fefe:fefe:fefe:fefe:fefe:fefe".parse().unwrap(),
        );
        assert!(l4_checksum_ok(s, d, PROTO_UDP, l4));
        let mut bad = l4.to_vec();
        bad[9] ^= 0x40;
        assert!(!l4_checksum_ok(s, d, PROTO_UDP, &bad));
        // UDP over IPv4 without a checksum passes.
        let mut v4 = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5353, 53)
            .write(&mut v4, b"x")
            .unwrap();
        v4[26] = 0;
        v4[27] = 0;
        assert!(l4_checksum_ok(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            PROTO_UDP,
            &v4[20..]
        ));
    }

    #[test]
    fn auto_samples_then_decides() {
        let f = tcp_frame(b"GET / HTTP/1.1\r\n\r\n");
        let (ip, l4) = f.split_at(20);
        let mut bad = l4.to_vec();
        bad[16] ^= 0xff;
        let (s, d) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        // Offloaded: most fail -> ignore, and nothing was refused while sampling.
        let mut c = Checksums::new(ChecksumMode::Auto);
        let mut decided = None;
        for i in 0..AUTO_SAMPLE {
            let seg = if i % 2 == 0 { &bad[..] } else { l4 };
            let (ok, d2) = c.check(s, d, PROTO_TCP, super::super::IpHeader::V4(ip), seg);
            assert!(ok);
            decided = decided.or(d2);
        }
        assert_eq!(decided, Some(ChecksumMode::Ignore));
        assert!(
            c.check(s, d, PROTO_TCP, super::super::IpHeader::V4(ip), &bad)
                .0
        );
        // Clean: validate, and from then on a bad one fails.
        let mut c = Checksums::new(ChecksumMode::Auto);
        for _ in 0..AUTO_SAMPLE {
            c.check(s, d, PROTO_TCP, super::super::IpHeader::V4(ip), l4);
        }
        assert_eq!(c.mode(), ChecksumMode::Validate);
        assert!(
            !c.check(s, d, PROTO_TCP, super::super::IpHeader::V4(ip), &bad)
                .0
        );
        assert_eq!(c.failed, 1);
        assert_eq!(auto_decides(10, 1), ChecksumMode::Validate);
        assert_eq!(auto_decides(10, 2), ChecksumMode::Ignore);
        assert_eq!(auto_decides(0, 0), ChecksumMode::Ignore);
    }
}
