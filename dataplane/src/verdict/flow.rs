//! The flow's own (L4) decision after its first packet: judged again when its protocol is
//! detected (rules may name the app) and, with `--on-swap rejudge`, after a policy swap;
//! counted once at its end, and compared with `--compare`'s old policy.

use std::sync::Arc;

use control::{Decision, PolicySnapshot};
use proto_parsers::AppProto;

use super::sink::l4_capture_rule;
use super::{
    CHANGE_EXAMPLES, PacketVerdict, VerdictChange, is_alert, packet_verdict, policy_transport,
    rule_name,
};
use crate::capture::FlowCapture;
use crate::decode::{PROTO_TCP, PROTO_UDP};
use crate::events::proto_name;
use crate::flow::{FlowCtx, FlowVerdict};
use crate::pipeline::Worker;

/// `--on-swap rejudge`: the flow's L4 decision follows the new policy from this packet
/// on. Returns whether the new decision is an alert the flow did not already have.
#[inline]
pub(crate) fn rejudge(flow: &mut FlowCtx, snap: &Arc<PolicySnapshot>) -> bool {
    if flow.verdict.decision.quarantine {
        // A quarantine outlives policy swaps.
        return false;
    }
    let src_ep = snap.resolve(flow.client.0);
    let dst_ep = snap.resolve(flow.server.0);
    let t = policy_transport(flow.proto);
    let decision = match flow.inspector.app() {
        Some(app) => snap.judge_detected_flow(&src_ep, &dst_ep, flow.server.1, t, app),
        None => snap.judge_flow(&src_ep, &dst_ep, flow.server.1, t, None),
    };
    let was = flow.verdict.decision;
    let rejudged_alert =
        is_alert(&decision) && (was.action != decision.action || was.rule != decision.rule);
    flow.verdict = FlowVerdict {
        snap: Arc::clone(snap),
        src: src_ep,
        dst: dst_ep,
        decision,
    };
    flow.swapped_eps = None;
    rejudged_alert
}

/// After an inventory change (a snapshot of another inventory epoch): whether the flow's
/// client or server address now belongs to another workload (or to none, or to one where
/// there was none). Resolved once per snapshot: the answer "same owners" is kept as the
/// flow's endpoints in that snapshot (`swapped_eps`), which transactions use anyway.
#[inline]
pub(crate) fn owners_changed(flow: &mut FlowCtx, snap: &Arc<PolicySnapshot>) -> bool {
    let old = &flow.verdict.snap;
    if old.inventory_epoch() == snap.inventory_epoch()
        || flow
            .swapped_eps
            .is_some_and(|(g, _, _)| g == snap.generation())
    {
        return false;
    }
    let (src, dst) = (snap.resolve(flow.client.0), snap.resolve(flow.server.0));
    let same = |was: &control::Endpoint, now: &control::Endpoint| match (was.workload, now.workload)
    {
        (None, None) => true,
        (Some(a), Some(b)) => old.get_workload(a) == snap.get_workload(b),
        _ => false,
    };
    if same(&flow.verdict.src, &src) && same(&flow.verdict.dst, &dst) {
        flow.swapped_eps = Some((snap.generation(), src, dst));
        return false;
    }
    true
}

impl Worker {
    /// The protocol is known: judge the flow again with it (rules may name the app).
    #[inline]
    pub(crate) fn on_detected(
        &mut self,
        h: crate::flow::Handle,
        id: u64,
        app: AppProto,
        ts_ns: u64,
    ) -> PacketVerdict {
        *self.stats.app_protos.entry(app.as_str()).or_default() += 1;
        let Some(flow) = self.flows.value_mut(h) else {
            return PacketVerdict::Accept;
        };
        let transport = policy_transport(flow.proto);
        if let Some(o) = flow.old.as_mut() {
            o.decision = o
                .snap
                .judge_detected_flow(&o.src, &o.dst, flow.server.1, transport, app);
        }
        let v = &flow.verdict;
        let new = v
            .snap
            .judge_detected_flow(&v.src, &v.dst, flow.server.1, transport, app);
        if !new.capture
            && matches!(flow.capture.as_deref(), Some(FlowCapture::Holding { .. }))
            && let Some(c) = self.captures.as_mut()
        {
            // Held while the app was unknown; no capturing rule covers it with its app.
            c.end(flow.capture.take());
        }
        if new == v.decision {
            self.shadow_flow(h, ts_ns);
            return PacketVerdict::Accept;
        }
        let alert =
            is_alert(&new) && (new.action != v.decision.action || new.rule != v.decision.rule);
        flow.verdict.decision = new;
        let is_tcp = flow.proto == PROTO_TCP;
        if new.capture
            && let Some(c) = self.captures.as_mut()
        {
            // The app brought a capturing rule in: hold from here, or write now.
            if flow.capture.is_none() {
                flow.capture = Some(c.hold());
            }
            let v = &flow.verdict;
            if let Some(rule) = l4_capture_rule(
                &v.snap,
                &v.src,
                &v.dst,
                flow.server.1,
                transport,
                Some(app),
                &new,
            ) {
                c.start(&mut flow.capture, flow.id, rule, self.cur_link);
            }
        }
        if alert {
            if let Some(flow) = self.flows.value_mut(h) {
                flow.alerted = true;
            }
            self.alert(id, h, ts_ns);
        }
        self.shadow_flow(h, ts_ns);
        packet_verdict(&new, is_tcp)
    }

    /// Counts a flow's final decision. A run of flows ending with the same decision of
    /// the same snapshot (a flood's, a scan's) is counted once per run: the run is held
    /// in `verdict_memo` and added by [`Worker::flush_verdict_memo`] when another decision
    /// comes or the counters are read.
    #[inline]
    pub(crate) fn count_decision(&mut self, snap: &Arc<PolicySnapshot>, d: &Decision) {
        if let Some((s, md, n)) = self.verdict_memo.as_mut()
            && s.generation() == snap.generation()
            && md == d
        {
            *n += 1;
            return;
        }
        self.flush_verdict_memo();
        self.verdict_memo = Some((Arc::clone(snap), *d, 1));
    }

    /// Adds the held run of equal decisions to the counters (before they are read).
    pub(crate) fn flush_verdict_memo(&mut self) {
        if let Some((s, d, n)) = self.verdict_memo.take() {
            self.stats
                .verdicts
                .add_n(d.action.as_str(), rule_name(&s, &d), n);
        }
    }

    /// With `--compare`: counts the flow if the old policy's final verdict differs.
    pub(crate) fn record_change(&mut self, flow: &FlowCtx) {
        let Some(old) = &flow.old else { return };
        if self.shadow_role {
            // A candidate's disagreements were counted and written as they happened.
            return;
        }
        let (o, n) = (&old.decision, &flow.verdict.decision);
        let (old_rule, new_rule) = (rule_name(&old.snap, o), rule_name(&flow.verdict.snap, n));
        // A verdict is what happens to the traffic: the action and whether it is enforced.
        // The same action by another rule is not a change.
        if (o.action, o.enforce) == (n.action, n.enforce) {
            return;
        }
        let key = VerdictChange {
            old_action: o.action.as_str(),
            old_enforced: o.enforce,
            old_rule: old_rule.to_owned(),
            new_action: n.action.as_str(),
            new_enforced: n.enforce,
            new_rule: new_rule.to_owned(),
        };
        let e = self.stats.changes.entry(key).or_default();
        e.0 += 1;
        if e.1.len() < CHANGE_EXAMPLES {
            let port = if matches!(flow.proto, PROTO_TCP | PROTO_UDP) {
                format!(":{}", flow.server.1)
            } else {
                String::new()
            };
            e.1.push(format!(
                "{} -> {}{} {}",
                flow.client.0,
                flow.server.0,
                port,
                proto_name(flow.proto)
            ));
        }
    }
}
