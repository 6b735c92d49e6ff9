//! Verdicts: what happens to a packet, derived from the policy decision of its flow (or,
//! later, of the transaction it completes). The decision itself is `control`'s compiled
//! snapshot; this module turns it into packet actions and event fields.

use control::{Action, Decision, PolicySnapshot};

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
/// `onUninspectable` decision, or "default" when the mode decided.
pub fn rule_name<'s>(snap: &'s PolicySnapshot, d: &Decision) -> &'s str {
    match (d.rule, d.uninspectable) {
        (Some(r), _) => snap.rule_name(r),
        (None, Some(_)) => "uninspectable",
        (None, None) => "default",
    }
}
