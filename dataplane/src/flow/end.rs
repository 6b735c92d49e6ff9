//! A flow's end (closed, timed out, evicted, replaced, shut down): what reassembly still
//! holds goes to the inspector (missing bytes as gaps), the parser finishes its open
//! transactions, a flow that ended blind gets its decision, the flow is counted once with
//! its final decision, and its records are written.

use proto_parsers::Direction;

use super::{EndReason, FlowCtx, dix};
use crate::decode::{PROTO_TCP, PROTO_UDP};
use crate::inspect::{InspectCounters, InspectEvent};
use crate::pipeline::Worker;
use crate::pipeline::stats::add_inspect;
use crate::reassembly::Chunk;
use crate::verdict::sink::Sink;

impl Worker {
    pub(crate) fn end_flow(&mut self, mut flow: Box<FlowCtx>, reason: EndReason) {
        self.stats.flows_ended += 1;
        // Flush what reassembly still holds (missing segments become gaps), then let the
        // parser finish its open transactions.
        let mut sink = Sink {
            stats: &mut self.stats,
            anomalies: Vec::new(),
            judge: None,
            blind: None,
        };
        let mut icounters = InspectCounters::default();
        let mut gap_bytes = [0u64; 2];
        let mut event = InspectEvent::NOTHING;
        for (s, dir) in flow
            .streams
            .iter_mut()
            .zip([Direction::ToServer, Direction::ToClient])
        {
            let inspector = &mut flow.inspector;
            let registry = &self.registry;
            let carry_budget = &mut self.carry_budget;
            let mut gap = 0u64;
            s.close(&mut self.budget, &mut |c| {
                if let Chunk::Gap(n) = c {
                    gap += u64::from(n);
                }
                let e =
                    inspector.on_chunk(dir, c, registry, &mut sink, &mut icounters, carry_budget);
                event.blind = event.blind.or(e.blind);
            });
            if let Some(g) = gap_bytes.get_mut(dix(dir)) {
                *g += gap;
            }
        }
        let ended = flow
            .inspector
            .end(&mut sink, &mut icounters, &mut self.carry_budget);
        let detected = ended.detected;
        let blind = event.blind.or(sink.blind).or(ended.blind);
        drop(sink);
        if let Some(b) = blind
            && flow.blind.is_none()
        {
            // Bytes lost at the very end (a missing tail): nothing is left to enforce, but
            // the flow's record and the alert say what could not be judged.
            self.decide_blind_at_end(&mut flow, b);
        }
        add_inspect(&mut self.stats.inspect, &icounters);
        if let Some(app) = detected
            && matches!(flow.proto, PROTO_TCP | PROTO_UDP)
        {
            // Counted in a small array (every flow of a flood ends here), folded into
            // `stats.app_protos` when the counters are read.
            if let Some(c) = self.app_ended.get_mut(app as usize) {
                *c = (app.as_str(), c.1 + 1);
            }
        }
        flow.gap_bytes[0] += gap_bytes[0];
        flow.gap_bytes[1] += gap_bytes[1];
        // Each flow counts once, with the decision it ended with.
        self.count_decision(&flow.verdict.snap, &flow.verdict.decision);
        self.record_change(&flow);
        self.flow_end_events(&mut flow, reason);
        if let Some(c) = self.captures.as_mut() {
            c.end(flow.capture.take());
        }
        if self.spare.len() < crate::pipeline::SPARE_FLOWS {
            self.spare.push(flow);
        }
    }
}
