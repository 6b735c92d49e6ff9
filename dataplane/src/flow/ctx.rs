//! What a worker keeps per flow: its ends, counters, TCP state, both reassembly streams,
//! the inspector, the policy's judgement and the transactions waiting for a response.

use std::net::IpAddr;
use std::sync::Arc;

use control::{Decision, Endpoint, FlowRules, PolicySnapshot};
use proto_parsers::Direction;

use super::TcpTracker;
use crate::capture::FlowCapture;
use crate::events::l7::L7Record;
use crate::inspect::{Blind, FlowInspector};
use crate::reassembly::Stream;

/// The policy's judgement of one flow, with the snapshot that made it (rule ids index
/// into that snapshot, so it travels with the decision).
pub(crate) struct FlowVerdict {
    pub(crate) snap: Arc<PolicySnapshot>,
    pub(crate) src: Endpoint,
    pub(crate) dst: Endpoint,
    pub(crate) decision: Decision,
}

/// Everything the worker keeps per flow.
pub struct FlowCtx {
    pub(crate) id: u64,
    pub(crate) client: (IpAddr, u16),
    pub(crate) server: (IpAddr, u16),
    pub(crate) proto: u8,
    /// ICMP type and code of the first packet (for the community id).
    pub(crate) icmp: (u8, u8),
    /// True when the table key's `lo` end is the client.
    pub(crate) client_is_lo: bool,
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
    pub(crate) pkts: [u64; 2],
    pub(crate) bytes: [u64; 2],
    pub(crate) dropped: u64,
    pub(crate) tcp: Option<TcpTracker>,
    pub(crate) streams: [Stream; 2],
    pub(crate) inspector: FlowInspector,
    pub(crate) verdict: FlowVerdict,
    /// The comparison policy's judgement of the same flow (`--compare`), or the shadow
    /// candidate's (`--shadow`).
    pub(crate) old: Option<FlowVerdict>,
    /// The shadow disagreement last reported for the flow's own decision (candidate
    /// version, its action and enforcement, the active action and enforcement).
    pub(crate) shadow_said: Option<(u64, control::Action, bool, control::Action, bool)>,
    /// Endpoints resolved in a newer snapshot than the flow's own (after a swap; keyed by
    /// its generation), so each transaction is judged by the policy in force when it
    /// completes.
    pub(crate) swapped_eps: Option<(u64, Endpoint, Endpoint)>,
    /// The flow-only part of its transactions' decisions, computed once per policy version
    /// (`PolicySnapshot::judge_transaction_cached`).
    pub(crate) tx_rules: Option<FlowRules>,
    /// The same for the comparison or shadow policy (`old`).
    pub(crate) old_rules: Option<FlowRules>,
    /// Transactions waiting for their response, with their decision (`--log-all`), bounded.
    pub(crate) pending: Vec<(u32, Decision, u64, L7Record)>,
    /// A transaction was denied and enforced: the connection is being reset; the rest is
    /// dropped with resets.
    pub(crate) blocked: bool,
    pub(crate) alerted: bool,
    /// Set once the flow became uninspectable and its `onUninspectable` decision was made.
    pub(crate) blind: Option<Blind>,
    /// Bytes never seen, per direction.
    pub(crate) gap_bytes: [u64; 2],
    /// Held or written packets, when a capturing rule covers the flow (`--capture-dir`).
    pub(crate) capture: Option<Box<FlowCapture>>,
}

impl FlowCtx {
    /// The capture file this flow is written to, for events.
    #[inline]
    pub(crate) fn capture_file(&self) -> Option<&str> {
        self.capture.as_deref().and_then(FlowCapture::file)
    }
}

/// The index of a direction in per-direction arrays: to the server 0, to the client 1.
#[inline]
pub(crate) fn dix(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}
