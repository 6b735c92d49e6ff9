//! A worker's counters, merged over workers for the summary, `status` and metrics.

use foldhash::HashMap;

use crate::capture::CaptureCounters;
use crate::defrag::DefragCounters;
use crate::flow::FlowCounters;
use crate::inspect::InspectCounters;
use crate::reassembly::ReassemblyCounters;
use crate::verdict::{CHANGE_EXAMPLES, ShadowCounts, VerdictChange, VerdictCounts};

/// Counters of one worker; summed over workers for the summary.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub packets: u64,
    pub bytes: u64,
    pub not_ip: u64,
    pub decode_errors: HashMap<&'static str, u64>,
    pub fragments: u64,
    pub accepted: u64,
    pub dropped: u64,
    /// Of `dropped`, the packets also answered with TCP resets.
    pub reset: u64,
    /// A passive tap (not enforcing): packets an inline Palisade would have dropped, with
    /// or without resets. A tap never counts them in `dropped`.
    pub would_drop: u64,
    /// Packets of Palisade's own connections (its metrics listener), passed unjudged.
    pub self_packets: u64,
    pub anomalies: HashMap<&'static str, u64>,
    pub alerts: u64,
    pub events: u64,
    pub flows: FlowCounters,
    pub flows_ended: u64,
    pub reassembly: ReassemblyCounters,
    pub defrag: DefragCounters,
    pub inspect: InspectCounters,
    pub app_protos: HashMap<&'static str, u64>,
    /// Flow decisions by (action, rule id or "default").
    pub verdicts: VerdictCounts,
    /// Transaction (L7) decisions by (action, rule id or "default").
    pub tx_verdicts: VerdictCounts,
    /// With a comparison policy: flows whose final verdict differs, by (old action, old
    /// rule, new action, new rule), with a few example flows each.
    pub changes: HashMap<VerdictChange, (u64, Vec<String>)>,
    /// The same for transactions (each request judged by both policies), with a few
    /// examples each: the flow, and the transaction's protocol object(s) as events print
    /// them.
    pub tx_changes: HashMap<VerdictChange, (u64, Vec<(String, serde_json::Value)>)>,
    /// With a shadow (candidate) policy: disagreements with the active one, per rule pair.
    pub shadow: ShadowCounts,
    pub transactions: u64,
    /// `--log-all` records written without their response because too many were waiting
    /// (per flow or per worker).
    pub log_pending_cut: u64,
    /// Unanswered SYN flows that ended (evicted, timed out) without a flow record of their
    /// own: summed up in `flow.embryonic_ended` anomaly records.
    pub embryonic_unlogged: u64,
    /// Open flows re-judged after a policy swap (`OnSwap::Rejudge`).
    pub rejudged: u64,
    /// Workloads this worker quarantined (a `quarantine: true` rule matched).
    pub quarantined: u64,
    /// New flows refused because an end is quarantined.
    pub quarantine_refused: u64,
    /// Open flows refused when an end was quarantined.
    pub quarantine_reset: u64,
    /// TCP segments read as the receiver reads them, by what was done (a RST or SYN it
    /// ignores, a segment without ACK).
    pub normalised: HashMap<&'static str, u64>,
    /// Packets whose checksums failed (dropped, never inspected).
    pub bad_checksums: u64,
    /// Flows that became uninspectable, by cause (whether or not a rule could judge them).
    pub uninspectable: HashMap<&'static str, u64>,
    /// `onUninspectable` decisions made (a rule could have judged the flow), by cause and
    /// action.
    pub uninspectable_decisions: HashMap<(&'static str, &'static str), u64>,
    /// Flows open when these stats were taken (live snapshots).
    pub open_flows: u64,
    pub capture: CaptureCounters,
}

impl WorkerStats {
    pub fn merge(&mut self, o: &WorkerStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.not_ip += o.not_ip;
        self.fragments += o.fragments;
        self.accepted += o.accepted;
        self.dropped += o.dropped;
        self.reset += o.reset;
        self.would_drop += o.would_drop;
        self.self_packets += o.self_packets;
        self.alerts += o.alerts;
        self.events += o.events;
        self.flows_ended += o.flows_ended;
        self.transactions += o.transactions;
        self.log_pending_cut += o.log_pending_cut;
        self.rejudged += o.rejudged;
        self.embryonic_unlogged += o.embryonic_unlogged;
        self.quarantined += o.quarantined;
        self.quarantine_refused += o.quarantine_refused;
        self.quarantine_reset += o.quarantine_reset;
        self.open_flows += o.open_flows;
        self.capture.merge(&o.capture);
        for (k, v) in &o.decode_errors {
            *self.decode_errors.entry(k).or_default() += v;
        }
        for (k, v) in &o.anomalies {
            *self.anomalies.entry(k).or_default() += v;
        }
        for (k, v) in &o.app_protos {
            *self.app_protos.entry(k).or_default() += v;
        }
        self.bad_checksums += o.bad_checksums;
        for (k, v) in &o.normalised {
            *self.normalised.entry(k).or_default() += v;
        }
        for (k, v) in &o.uninspectable {
            *self.uninspectable.entry(k).or_default() += v;
        }
        for (k, v) in &o.uninspectable_decisions {
            *self.uninspectable_decisions.entry(*k).or_default() += v;
        }
        self.verdicts.merge(&o.verdicts);
        self.shadow.merge(&o.shadow);
        self.tx_verdicts.merge(&o.tx_verdicts);
        for (k, (n, ex)) in &o.changes {
            let e = self.changes.entry(k.clone()).or_default();
            e.0 += n;
            for x in ex {
                if e.1.len() < CHANGE_EXAMPLES {
                    e.1.push(x.clone());
                }
            }
        }
        for (k, (n, ex)) in &o.tx_changes {
            let e = self.tx_changes.entry(k.clone()).or_default();
            e.0 += n;
            for x in ex {
                if e.1.len() < CHANGE_EXAMPLES {
                    e.1.push(x.clone());
                }
            }
        }
        let (a, b) = (&mut self.flows, &o.flows);
        a.created += b.created;
        a.timed_out += b.timed_out;
        a.evicted += b.evicted;
        a.cap_hits += b.cap_hits;
        a.evicted_embryonic += b.evicted_embryonic;
        a.evicted_established += b.evicted_established;
        a.peak += b.peak;
        self.reassembly.merge(&o.reassembly);
        self.defrag.merge(&o.defrag);
        add_inspect(&mut self.inspect, &o.inspect);
    }
}

#[inline]
pub(crate) fn add_inspect(a: &mut InspectCounters, b: &InspectCounters) {
    a.detected += b.detected;
    a.undetected += b.undetected;
    a.detect_overflow += b.detect_overflow;
    a.parser_invalid += b.parser_invalid;
    a.carry_overflow += b.carry_overflow;
    a.gaps_before_detection += b.gaps_before_detection;
}
