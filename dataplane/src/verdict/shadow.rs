//! A shadow policy (`palisade run --shadow`, `palisadectl shadow apply`): a candidate that
//! judges every flow and transaction beside the active policy and never enforces. Where
//! the two disagree (another action, or the same action enforced by one only) a `shadow`
//! record is written, with the active decision in `policy_verdict` and the candidate's in
//! `shadow`, and the rule pair is counted ([`crate::verdict::ShadowCounts`]).
//!
//! The candidate shares `--compare`'s per-flow slot (`FlowCtx::old`): a worker has one or
//! the other. A candidate applied, replaced or cleared while flows are open reaches each
//! of them on its next packet with bytes; with no candidate the cost is one branch.

use std::sync::Arc;

use control::{Decision, PolicySnapshot};

use super::{policy_transport, rule_name};
use crate::events::build::{fill_flow_fields, policy_verdict};
use crate::events::l7::L7Record;
use crate::events::{Event, ShadowObj, Timestamp};
use crate::flow::{FlowCtx, FlowVerdict, Handle};
use crate::pipeline::Worker;

/// Whether two decisions disagree: what happens to the traffic differs (the action, or
/// whether it is enforced). The same action by another rule is not a disagreement.
#[inline]
pub(crate) fn disagree(a: &Decision, s: &Decision) -> bool {
    (a.action, a.enforce) != (s.action, s.enforce)
}

/// The candidate's judgement of an open flow (with its app, once detected).
fn judge_open(cand: &Arc<PolicySnapshot>, flow: &FlowCtx) -> FlowVerdict {
    let (src, dst) = (cand.resolve(flow.client.0), cand.resolve(flow.server.0));
    let t = policy_transport(flow.proto);
    let decision = match flow.inspector.app() {
        Some(app) => cand.judge_detected_flow(&src, &dst, flow.server.1, t, app),
        None => cand.judge_flow(&src, &dst, flow.server.1, t, None),
    };
    FlowVerdict {
        snap: Arc::clone(cand),
        src,
        dst,
        decision,
    }
}

impl Worker {
    /// Judges every flow and transaction by `candidate` too (`None`: no candidate), and
    /// writes a `shadow` record where it disagrees with the active policy.
    pub fn set_shadow(&mut self, candidate: Option<Arc<PolicySnapshot>>) {
        self.compare = candidate;
        self.shadow_role = true;
    }

    /// The candidate the worker judges by (live sources compare it with the shared one
    /// once per batch).
    pub fn shadow(&self) -> Option<&Arc<PolicySnapshot>> {
        self.compare.as_ref().filter(|_| self.shadow_role)
    }

    /// Brings flow `h` to the worker's candidate when it has met another (or none).
    #[inline]
    pub(crate) fn sync_shadow(&mut self, h: Handle, ts_ns: u64) {
        let Some(flow) = self.flows.value_mut(h) else {
            return;
        };
        let current = match (&self.compare, &flow.old) {
            (None, None) => true,
            (Some(c), Some(o)) => Arc::ptr_eq(c, &o.snap),
            _ => false,
        };
        if current {
            return;
        }
        flow.old = self.compare.as_ref().map(|c| judge_open(c, flow));
        flow.shadow_said = None;
        self.shadow_flow(h, ts_ns);
    }

    /// A `shadow` record for flow `h`'s own decision when the candidate's disagrees, once
    /// per disagreement (a flow judged again with its app may disagree anew).
    pub(crate) fn shadow_flow(&mut self, h: Handle, ts_ns: u64) {
        if !self.shadow_role {
            return;
        }
        let Some(flow) = self.flows.value_mut(h) else {
            return;
        };
        let Some(o) = &flow.old else {
            return;
        };
        let (a, s) = (flow.verdict.decision, o.decision);
        if !disagree(&a, &s) {
            return;
        }
        let said = (o.snap.version(), s.action, s.enforce, a.action, a.enforce);
        if flow.shadow_said == Some(said) {
            return;
        }
        flow.shadow_said = Some(said);
        let Some(flow) = self.flows.value(h) else {
            return;
        };
        let Some(o) = &flow.old else {
            return;
        };
        self.stats.shadow.add(
            "flow",
            a.action.as_str(),
            rule_name(&flow.verdict.snap, &a),
            s.action.as_str(),
            rule_name(&o.snap, &s),
            o.snap.version(),
            1,
        );
        let enforcing = self.cfg.enforcing;
        let mut e = Event::new(Timestamp(ts_ns), "shadow");
        self.cid.clear();
        fill_flow_fields(&mut e, flow, &mut self.cid, enforcing);
        e.shadow = Some(shadow_obj(&o.snap, &s));
        e.write_line(&mut self.out);
        self.stats.events += 1;
    }

    /// A `shadow` record for a transaction the candidate judged otherwise (counted where
    /// it was judged, `verdict::sink`): the active decision `d` by `snap`, the candidate's
    /// `s` by the flow's candidate.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn shadow_tx(
        &mut self,
        h: Handle,
        d: &Decision,
        snap: &PolicySnapshot,
        s: &Decision,
        id: u32,
        rec: &L7Record,
        ts_ns: u64,
    ) {
        let Some(flow) = self.flows.value(h) else {
            return;
        };
        let Some(o) = &flow.old else {
            return;
        };
        let enforcing = self.cfg.enforcing;
        let mut e = Event::new(Timestamp(ts_ns), "shadow");
        self.cid.clear();
        fill_flow_fields(&mut e, flow, &mut self.cid, enforcing);
        e.policy_verdict = Some(policy_verdict(snap, d, enforcing));
        e.shadow = Some(shadow_obj(&o.snap, s));
        e.tx_id = Some(u64::from(id));
        e.l7 = Some(rec);
        e.write_line(&mut self.out);
        self.stats.events += 1;
    }
}

/// The candidate's decision `s` as the record's `shadow` object.
fn shadow_obj<'s>(cand: &'s PolicySnapshot, s: &Decision) -> ShadowObj<'s> {
    ShadowObj {
        action: s.action.as_str(),
        rule: rule_name(cand, s),
        policy_version: cand.version(),
    }
}
