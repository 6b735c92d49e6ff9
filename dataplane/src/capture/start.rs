//! The worker's side of flow capture that needs the policy: a decision that captures a
//! flow starts writing it, named after the rule that captures.

use control::{Decision, PolicySnapshot};

use crate::pipeline::Worker;
use crate::verdict::policy_transport;
use crate::verdict::sink::first_l4_capture;

impl Worker {
    /// A transaction's decision captures the flow: start writing it (held packets first).
    pub(crate) fn start_capture(
        &mut self,
        h: crate::flow::Handle,
        snap: &PolicySnapshot,
        d: &Decision,
    ) {
        let Some(c) = self.captures.as_mut() else {
            return;
        };
        let Some(flow) = self.flows.value_mut(h) else {
            return;
        };
        // The capturing rule: the deciding one if it captures, else a rule without L7
        // matchers covering the flow that does (what set the decision's capture bit).
        let rule = match d.rule.and_then(|r| snap.rule(r)) {
            Some(r) if r.capture() => Some(r.name()),
            _ => {
                let (src, dst) = if snap.generation() == flow.verdict.snap.generation() {
                    (flow.verdict.src, flow.verdict.dst)
                } else {
                    (snap.resolve(flow.client.0), snap.resolve(flow.server.0))
                };
                first_l4_capture(
                    snap,
                    &src,
                    &dst,
                    flow.server.1,
                    policy_transport(flow.proto),
                    flow.inspector.app(),
                )
            }
        };
        c.start(
            &mut flow.capture,
            flow.id,
            rule.unwrap_or("default"),
            self.cur_link,
        );
    }
}
