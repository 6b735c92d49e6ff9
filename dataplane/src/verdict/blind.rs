//! Everything Palisade cannot judge ends in the policy's decision: when the inspector stops
//! seeing what the receiver acts on and a rule could have judged it, `onUninspectable`
//! decides the flow (or, for a UDP flow still being read, the one datagram), counted by
//! cause; a flow that ended blind gets its decision and alert at its end.

use std::sync::Arc;

use control::{Decision, Endpoint, PolicySnapshot};
use proto_parsers::AppProto;

use super::{PacketVerdict, is_alert, packet_verdict, policy_transport};
use crate::decode::PROTO_TCP;
use crate::events::{Event, Timestamp, alert_obj, fill_flow_fields};
use crate::flow::{FlowCtx, FlowVerdict};
use crate::inspect::Blind;
use crate::pipeline::Worker;

impl Worker {
    /// The inspector can no longer see what the receiver acts on. Where a rule could have
    /// judged what it missed, the policy's `onUninspectable` decides the flow (deny resets
    /// it in protect mode); every time, it is counted by cause.
    #[inline]
    pub(crate) fn on_blind(
        &mut self,
        h: crate::flow::Handle,
        b: Blind,
        ts_ns: u64,
        snap: &Arc<PolicySnapshot>,
    ) -> PacketVerdict {
        let Some(flow) = self.flows.value_mut(h) else {
            return PacketVerdict::Accept;
        };
        if flow.blind.is_some() {
            // Decided once per flow; a denied flow keeps being dropped below.
            return PacketVerdict::Accept;
        }
        if b.datagram {
            return self.on_blind_datagram(h, b, ts_ns, snap);
        }
        flow.blind = Some(b);
        *self
            .stats
            .uninspectable
            .entry(b.cause.as_str())
            .or_default() += 1;
        let (src, dst) = flow_endpoints(flow, snap);
        let transport = policy_transport(flow.proto);
        let app = flow.inspector.app();
        if !snap.l7_governed(&src, &dst, flow.server.1, transport, app) {
            // No rule reads what was missed: the flow's own decision stands.
            return PacketVerdict::Accept;
        }
        let d = snap.judge_uninspectable(&src, &dst, b.cause);
        *self
            .stats
            .uninspectable_decisions
            .entry((b.cause.as_str(), d.action.as_str()))
            .or_default() += 1;
        let was = flow.verdict.decision;
        if rank(&d) <= rank(&was) {
            // The flow is already denied (or alerted) at least as strictly.
            return PacketVerdict::Accept;
        }
        flow.verdict = FlowVerdict {
            snap: Arc::clone(snap),
            src,
            dst,
            decision: d,
        };
        flow.swapped_eps = None;
        let is_tcp = flow.proto == PROTO_TCP;
        if d.enforce {
            flow.blocked = true;
        }
        if is_alert(&d) {
            flow.alerted = true;
            let id = flow.id;
            self.alert(id, h, ts_ns);
        }
        packet_verdict(&d, is_tcp)
    }

    /// One datagram of a UDP flow no detector recognised (the flow is still being read):
    /// `onUninspectable` decides that datagram, where a rule could have judged it.
    pub(crate) fn on_blind_datagram(
        &mut self,
        h: crate::flow::Handle,
        b: Blind,
        ts_ns: u64,
        snap: &Arc<PolicySnapshot>,
    ) -> PacketVerdict {
        let Some(flow) = self.flows.value_mut(h) else {
            return PacketVerdict::Accept;
        };
        *self
            .stats
            .uninspectable
            .entry(b.cause.as_str())
            .or_default() += 1;
        let (src, dst) = flow_endpoints(flow, snap);
        let transport = policy_transport(flow.proto);
        if !snap.l7_governed(&src, &dst, flow.server.1, transport, Some(AppProto::Udp)) {
            return PacketVerdict::Accept;
        }
        let d = snap.judge_uninspectable(&src, &dst, b.cause);
        *self
            .stats
            .uninspectable_decisions
            .entry((b.cause.as_str(), d.action.as_str()))
            .or_default() += 1;
        self.anomaly(
            ts_ns,
            "applayer",
            "applayer.undetected_datagram",
            Some(h),
            None,
        );
        let first = self
            .flows
            .value_mut(h)
            .is_some_and(|f| !std::mem::replace(&mut f.alerted, true));
        if first && is_alert(&d) {
            // One alert per flow: a stream of junk datagrams is counted, not logged each.
            self.decision_alert(h, &d, snap, ts_ns);
        }
        packet_verdict(&d, false)
    }

    /// A flow that ended blind (bytes missing at its close): no packet is left to drop, but
    /// its decision and alert say so, as they would have mid-flow.
    pub(crate) fn decide_blind_at_end(&mut self, flow: &mut FlowCtx, b: Blind) {
        flow.blind = Some(b);
        *self
            .stats
            .uninspectable
            .entry(b.cause.as_str())
            .or_default() += 1;
        let snap = Arc::clone(&flow.verdict.snap);
        let v = &flow.verdict;
        let transport = policy_transport(flow.proto);
        if !snap.l7_governed(
            &v.src,
            &v.dst,
            flow.server.1,
            transport,
            flow.inspector.app(),
        ) {
            return;
        }
        let d = snap.judge_uninspectable(&v.src, &v.dst, b.cause);
        *self
            .stats
            .uninspectable_decisions
            .entry((b.cause.as_str(), d.action.as_str()))
            .or_default() += 1;
        if rank(&d) <= rank(&flow.verdict.decision) {
            return;
        }
        flow.verdict.decision = d;
        if is_alert(&d) {
            flow.alerted = true;
            self.stats.alerts += 1;
            // Nothing was dropped: the flow had ended.
            let mut e = Event::new(Timestamp(flow.last_ns), "alert");
            self.cid.clear();
            fill_flow_fields(&mut e, flow, &mut self.cid, false);
            e.alert = Some(alert_obj(&snap, &d, flow, None, false));
            e.capture_file = flow.capture_file();
            e.write_line(&mut self.out);
            crate::capture::note_event(&mut self.captures, flow.capture.as_deref(), &e);
            self.stats.events += 1;
        }
    }
}

/// How strict a decision is: an enforced deny over a deny, an alert, an allow.
#[inline]
fn rank(d: &Decision) -> u8 {
    match (d.action, d.enforce) {
        (control::Action::Deny, true) => 3,
        (control::Action::Deny, false) => 2,
        (control::Action::Alert, _) => 1,
        (control::Action::Allow, _) => 0,
    }
}

/// The flow's endpoints in `snap`: its own when `snap` judged it, else resolved again
/// (once per version, kept in the flow).
#[inline]
fn flow_endpoints(flow: &mut FlowCtx, snap: &PolicySnapshot) -> (Endpoint, Endpoint) {
    if snap.generation() == flow.verdict.snap.generation() {
        return (flow.verdict.src, flow.verdict.dst);
    }
    match flow.swapped_eps {
        Some((g, s, d)) if g == snap.generation() => (s, d),
        _ => {
            let eps = (snap.resolve(flow.client.0), snap.resolve(flow.server.0));
            flow.swapped_eps = Some((snap.generation(), eps.0, eps.1));
            eps
        }
    }
}
