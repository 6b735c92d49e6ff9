//! Verdicts: what happens to a packet, derived from the policy decision of its flow (or
//! of the transaction it completes). The decision itself is `control`'s compiled snapshot;
//! this module turns it into packet actions and event fields. Its parts of the worker: the
//! sink where parser facts are judged (`sink`), the flow's own decision after its first
//! packet (`flow`), the uninspectable decision (`blind`), and the counts (`counts`).

mod blind;
mod counts;
pub(crate) mod flow;
pub mod quarantine;
pub(crate) mod shadow;
pub(crate) mod sink;

pub(crate) use counts::{CHANGE_EXAMPLES, count};
pub use counts::{SHADOW_PAIRS_KEPT, ShadowCounts, ShadowPair, VerdictChange, VerdictCounts};

use control::{Action, Decision, PolicySnapshot, Transport as PolicyTransport};

use crate::decode::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// What a live source does with a packet. Offline, it is counted as if it had been done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketVerdict {
    Accept,
    Drop,
    /// Drop and send TCP resets to both ends, so the client sees a refusal, not a hang.
    DropReset,
}

impl PacketVerdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            PacketVerdict::Accept => "accept",
            PacketVerdict::Drop => "drop",
            PacketVerdict::DropReset => "drop_reset",
        }
    }
}

/// The packet verdict for a flow-level decision: enforce means drop; TCP also gets resets.
pub fn packet_verdict(d: &Decision, is_tcp: bool) -> PacketVerdict {
    match (d.enforce, is_tcp) {
        (false, _) => PacketVerdict::Accept,
        (true, true) => PacketVerdict::DropReset,
        (true, false) => PacketVerdict::Drop,
    }
}

/// Whether a decision is worth an `alert` event: a deny (enforced or not) or an alert action.
pub fn is_alert(d: &Decision) -> bool {
    matches!(d.action, Action::Deny | Action::Alert)
}

/// The event's `verdict.rule`: the rule id, "uninspectable" for the policy's
/// `onUninspectable` decision, "quarantine" for a flow of a quarantined workload, or
/// "default" when the mode decided.
pub fn rule_name<'s>(snap: &'s PolicySnapshot, d: &Decision) -> &'s str {
    match (d.rule, d.uninspectable) {
        (Some(r), _) => snap.rule_name(r),
        (None, Some(_)) => "uninspectable",
        (None, None) if d.quarantine => "quarantine",
        (None, None) => "default",
    }
}

pub(crate) trait MaxWith {
    fn max_with(self, other: Self) -> Self;
}

impl MaxWith for PacketVerdict {
    /// The stricter of two verdicts.
    #[inline]
    fn max_with(self, other: Self) -> Self {
        let rank = |v: PacketVerdict| match v {
            PacketVerdict::Accept => 0,
            PacketVerdict::Drop => 1,
            PacketVerdict::DropReset => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[inline]
pub(crate) fn policy_transport(proto: u8) -> PolicyTransport {
    match proto {
        PROTO_TCP => PolicyTransport::Tcp,
        PROTO_UDP => PolicyTransport::Udp,
        PROTO_ICMP | PROTO_ICMPV6 => PolicyTransport::Icmp,
        p => PolicyTransport::Other(p),
    }
}
