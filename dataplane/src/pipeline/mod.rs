//! Wiring: a reader fills batches of packets, each batch carrying the policy snapshot it is
//! to be judged by, and hands them to workers over bounded channels. Every worker owns its
//! flows; batches and their buffers are recycled, so steady state allocates nothing.
//!
//! Sharding is by a keyed hash of the unordered address pair, so both directions of a flow
//! and every fragment of a datagram (which carry no ports) reach the same worker, and a
//! sender cannot choose addresses that all land on one worker.
//!
//! The two drivers are [`run_replay`] (capture files) and [`live::run`] (`palisade run`);
//! both feed the same [`Worker`], whose `worker.rs` keeps the order of the stages.

mod config;
pub mod live;
mod payload;
mod replay;
pub(crate) mod stats;
mod worker;

pub use config::{OnSwap, WorkerConfig};
pub use replay::{ReplayOptions, ReplayReport, SwapAt, run_replay, run_replay_with_sinks};
pub(crate) use replay::{policy_event, policy_record};
pub use stats::WorkerStats;
pub(crate) use worker::SPARE_FLOWS;
pub use worker::Worker;

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use control::PolicySnapshot;

use crate::decode::{Decoded, LinkType, decode};

/// Packets per batch: large enough to amortise the channel, small enough to keep latency
/// and the snapshot's granularity fine.
pub const BATCH_PACKETS: usize = 256;

/// Packets per replay batch, and the frame bytes after which a batch is full whatever its
/// count. A replay has no latency to keep: each batch handed over costs the reader and
/// the worker a wake-up (a futex call each, ~7% of the worker's time at 256 packets).
pub const REPLAY_BATCH_PACKETS: usize = 1024;
pub const REPLAY_BATCH_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    pub ts_ns: u64,
    pub linktype: LinkType,
    pub offset: u32,
    pub len: u32,
    pub orig_len: u32,
}

/// A run of packets for one worker, stored back to back in one buffer.
pub struct Batch {
    pub snapshot: Arc<PolicySnapshot>,
    pub data: Vec<u8>,
    pub packets: Vec<PacketMeta>,
}

impl Batch {
    pub fn new(snapshot: Arc<PolicySnapshot>) -> Self {
        Batch {
            snapshot,
            data: Vec::with_capacity(REPLAY_BATCH_BYTES + 2048),
            packets: Vec::with_capacity(REPLAY_BATCH_PACKETS),
        }
    }

    pub fn push(&mut self, ts_ns: u64, linktype: LinkType, frame: &[u8], orig_len: u32) {
        self.packets.push(PacketMeta {
            ts_ns,
            linktype,
            offset: self.data.len() as u32,
            len: frame.len() as u32,
            orig_len,
        });
        self.data.extend_from_slice(frame);
    }

    pub fn frame(&self, m: &PacketMeta) -> &[u8] {
        self.data
            .get(m.offset as usize..(m.offset as usize + m.len as usize))
            .unwrap_or_default()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
    }

    pub fn is_full(&self) -> bool {
        self.packets.len() >= REPLAY_BATCH_PACKETS || self.data.len() >= REPLAY_BATCH_BYTES
    }
}

/// Picks the worker for a frame. Frames without IP addresses go to worker 0 (they only make
/// anomaly events, which need no flow).
///
/// The reader calls this for every packet when there are several workers, so the common
/// frame (Ethernet, up to two VLAN tags, IPv4 or IPv6) is read here by offsets instead of
/// through [`decode`]: the full decode cost the reader about as much as reading the file.
/// It hashes the same address bytes in the same order as the decoded path, so a frame
/// goes to the same worker either way. A frame with addresses that `decode` would then
/// reject (a bad transport header, say) goes to its address pair's worker instead of
/// worker 0, where it makes the same anomaly event.
pub fn shard_of<S: BuildHasher>(
    hasher: &S,
    workers: usize,
    linktype: LinkType,
    frame: &[u8],
) -> usize {
    if workers <= 1 {
        return 0;
    }
    let mut h = hasher.build_hasher();
    if let Some((src, dst)) = ip_addresses(linktype, frame) {
        // Byte order is `IpAddr`'s order within one family.
        let (a, b) = if src <= dst { (src, dst) } else { (dst, src) };
        h.write(a);
        h.write(b);
        return (h.finish() % workers as u64) as usize;
    }
    let Ok(Decoded::Ip(p)) = decode(linktype, frame) else {
        return 0;
    };
    let (a, b) = if p.src <= p.dst {
        (p.src, p.dst)
    } else {
        (p.dst, p.src)
    };
    for ip in [a, b] {
        match ip {
            IpAddr::V4(v) => h.write(&v.octets()),
            IpAddr::V6(v) => h.write(&v.octets()),
        }
    }
    (h.finish() % workers as u64) as usize
}

/// Source and destination address bytes of an Ethernet frame carrying IPv4 or IPv6 after
/// at most two VLAN tags (the tags `decode` follows); `None` for anything else, which
/// [`shard_of`] then decodes in full.
fn ip_addresses(linktype: LinkType, frame: &[u8]) -> Option<(&[u8], &[u8])> {
    if linktype != LinkType::ETHERNET {
        return None;
    }
    let be16 = |at: usize| -> Option<u16> {
        let b = frame.get(at..at + 2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    };
    let mut ether_type = be16(12)?;
    let mut at = 14;
    for _ in 0..2 {
        if matches!(ether_type, 0x8100 | 0x88a8 | 0x9100) {
            ether_type = be16(at + 2)?;
            at += 4;
        }
    }
    let ip = frame.get(at..)?;
    match (ether_type, ip.first()? >> 4) {
        (0x0800, 4) => Some((ip.get(12..16)?, ip.get(16..20)?)),
        (0x86dd, 6) => Some((ip.get(8..24)?, ip.get(24..40)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::pcap::CaptureFile;

    /// The shard `shard_of` gave before the address fast path: always through `decode`.
    fn shard_by_decode<S: BuildHasher>(
        hasher: &S,
        workers: usize,
        lt: LinkType,
        f: &[u8],
    ) -> usize {
        let Ok(Decoded::Ip(p)) = decode(lt, f) else {
            return 0;
        };
        let (a, b) = if p.src <= p.dst {
            (p.src, p.dst)
        } else {
            (p.dst, p.src)
        };
        let mut h = hasher.build_hasher();
        for ip in [a, b] {
            match ip {
                IpAddr::V4(v) => h.write(&v.octets()),
                IpAddr::V6(v) => h.write(&v.octets()),
            }
        }
        (h.finish() % workers as u64) as usize
    }

    #[test]
    fn the_address_fast_path_shards_as_decode_does() {
        let hasher = foldhash::quality::FixedState::with_seed(7);
        let mut ip_frames = 0;
        for name in [
            "spine-eth.pcap",
            "spine-eth.pcapng",
            "spine-any-sll.pcap",
            "spine-any-sll2.pcap",
            "vlan-8021q.pcap",
            "vlan-qinq.pcap",
        ] {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data")
                .join(name);
            let mut f = CaptureFile::open(&p).unwrap();
            while f
                .next_packet(&mut |p| {
                    if matches!(decode(p.linktype, p.data), Ok(Decoded::Ip(_))) {
                        ip_frames += 1;
                        for workers in [2, 3, 7] {
                            assert_eq!(
                                shard_of(&hasher, workers, p.linktype, p.data),
                                shard_by_decode(&hasher, workers, p.linktype, p.data),
                                "{name}"
                            );
                        }
                    }
                })
                .unwrap()
                .is_some()
            {}
        }
        assert!(ip_frames > 300, "{ip_frames}");
    }
}
