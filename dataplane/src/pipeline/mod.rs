//! Wiring: a reader fills batches of packets, each batch carrying the policy snapshot it is
//! to be judged by, and hands them to workers over bounded channels. Every worker owns its
//! flows; batches and their buffers are recycled, so steady state allocates nothing.
//!
//! Sharding is by a keyed hash of the unordered address pair, so both directions of a flow
//! and every fragment of a datagram (which carry no ports) reach the same worker, and a
//! sender cannot choose addresses that all land on one worker.

pub mod capture;
mod replay;
mod worker;

pub(crate) use replay::policy_event;
pub use replay::{ReplayOptions, ReplayReport, SwapAt, run_replay};
pub use worker::{
    FlowCtx, FlowInfo, OnSwap, VerdictChange, VerdictCounts, Worker, WorkerConfig, WorkerStats,
};

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use control::PolicySnapshot;

use crate::decode::{Decoded, LinkType, decode};

/// Packets per batch: large enough to amortise the channel, small enough to keep latency
/// and the snapshot's granularity fine.
pub const BATCH_PACKETS: usize = 256;

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
            data: Vec::with_capacity(BATCH_PACKETS * 1600),
            packets: Vec::with_capacity(BATCH_PACKETS),
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
        self.packets.len() >= BATCH_PACKETS
    }
}

/// Picks the worker for a frame. Frames that do not decode go to worker 0 (they only make
/// anomaly events, which need no flow).
pub fn shard_of<S: BuildHasher>(
    hasher: &S,
    workers: usize,
    linktype: LinkType,
    frame: &[u8],
) -> usize {
    if workers <= 1 {
        return 0;
    }
    let Ok(Decoded::Ip(p)) = decode(linktype, frame) else {
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
