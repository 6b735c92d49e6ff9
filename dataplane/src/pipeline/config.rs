//! What a worker is told at start: limits of each stage, logging, enforcement, what a
//! policy swap does, capture and checksum validation.

use std::net::SocketAddr;

use crate::capture::CaptureConfig;
use crate::decode::checksum::ChecksumMode;
use crate::defrag::DefragConfig;
use crate::flow::FlowConfig;
use crate::inspect::CARRY_BUDGET;
use crate::reassembly::StreamConfig;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub flow: FlowConfig,
    pub stream: StreamConfig,
    /// Out-of-order bytes held by all streams of one worker.
    pub reassembly_budget: usize,
    /// Parser carry bytes the worker's flows may hold beyond 64 KiB each (an HTTP/1 head
    /// may be 1 MiB); past it, a flow that needs more is uninspectable.
    pub carry_budget: usize,
    pub defrag: DefragConfig,
    /// Most anomaly events of one kind per second of packet time (the counters count all).
    pub anomaly_events_per_sec: u32,
    /// Emit an `l7` event for every transaction (`--log-all`).
    pub log_all: bool,
    /// Whether a drop verdict really stops the packet (offline replay and inline modes:
    /// yes; a passive tap: no, its resets only race the real packet). Events carry it as
    /// `verdict.enforced`.
    pub enforcing: bool,
    /// What a policy swap does to flows already open that carry no judged transaction.
    pub on_swap: OnSwap,
    /// Flow capture for rules with `capture: true` (`--capture-dir`); `None`: not written.
    pub capture: Option<CaptureConfig>,
    /// Checksum validation: a packet whose checksums fail is dropped and never inspected
    /// (the receiver discards it, or, on a veth that trusts its peer, should have).
    pub checksums: ChecksumMode,
    /// Palisade's own TCP listeners (`--metrics ADDR`), one entry per address they are
    /// reached at (never an unspecified address): packets between one of them and this host
    /// (loopback, or another of these addresses) are passed without being judged and
    /// counted as `self_packets`, so a policy never refuses (and a tap never resets)
    /// Palisade's own local connections; a connection from another host is judged.
    pub own_endpoints: Vec<SocketAddr>,
}

/// What happens to open flows when a new policy is swapped in. Transactions (requests,
/// statements, commands) are always judged by the policy in force when they complete;
/// this is about the flow-level (L4) decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnSwap {
    /// A flow keeps the L4 decision it was opened with (connections allowed at open stay
    /// up; a connection refused at its SYN stays refused).
    #[default]
    Keep,
    /// The next packet of each open flow re-judges it under the new policy; a flow that
    /// the new policy denies in protect mode is reset, one it now allows flows again.
    Rejudge,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            flow: FlowConfig::default(),
            stream: StreamConfig::default(),
            reassembly_budget: 64 << 20,
            carry_budget: CARRY_BUDGET,
            defrag: DefragConfig::default(),
            anomaly_events_per_sec: 10,
            log_all: false,
            enforcing: true,
            on_swap: OnSwap::Keep,
            capture: None,
            checksums: ChecksumMode::Auto,
            own_endpoints: Vec::new(),
        }
    }
}
