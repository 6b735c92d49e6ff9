//! The policy's sink for parser facts: each transaction (an SQL statement counts as one) is
//! judged by the snapshot in force as it completes, counted, and its alert and `--log-all`
//! record queued; an enforced deny drops the packet that completed it. Also which rule
//! captures a flow from its L4 decision on.

use control::{Decision, Endpoint, FlowRules, PolicySnapshot, Transport as PolicyTransport};
use proto_parsers::AppProto;
use proto_parsers::contract::{Fact, FactSink, ParserAnomaly};
use proto_parsers::facts::{RequestDetail, ResponseDetail};

use super::{
    CHANGE_EXAMPLES, MaxWith, PacketVerdict, VerdictChange, count, is_alert, packet_verdict,
    rule_name,
};
use crate::events::l7::L7Record;
use crate::inspect::Blind;
use crate::pipeline::WorkerStats;

/// Most transactions a flow keeps waiting for their response for `--log-all` (deeper than
/// any client pipelines); past it the oldest is logged without its response.
const PENDING_CAP: usize = 1024;

/// Most `--log-all` records one worker keeps waiting for their responses, over all its
/// flows (a record is a few hundred bytes: this bounds them to tens of MiB); past it the
/// flow's oldest, or the new record itself, is logged without its response.
pub(crate) const WORKER_PENDING_CAP: usize = 65_536;

/// What judging a transaction asks the worker to write once the flow is released.
pub(crate) enum L7Out {
    Alert(Decision, u32, L7Record),
    Log(Decision, u64, u32, L7Record),
    /// The active decision and the shadow candidate's, which disagree.
    Shadow(Decision, Decision, u32, L7Record),
}

/// What the sink needs to judge transactions: the snapshot in force for this packet and
/// the flow's endpoints in it.
pub(crate) struct Judge<'a> {
    pub(crate) snap: &'a PolicySnapshot,
    /// The flow's own decision when it came from the same snapshot: a transaction that
    /// lands on the same action and rule adds nothing to the flow's alert.
    pub(crate) flow_decision: Option<Decision>,
    /// The flow's decision, which the records of a tunnelled connection carry.
    pub(crate) flow_verdict: Decision,
    pub(crate) src: Endpoint,
    pub(crate) dst: Endpoint,
    pub(crate) dport: u16,
    pub(crate) transport: PolicyTransport,
    pub(crate) is_tcp: bool,
    pub(crate) log_all: bool,
    pub(crate) path: &'a mut Vec<u8>,
    /// The flow's cached flow-only part of a decision.
    pub(crate) rules: &'a mut Option<FlowRules>,
    /// The same for `old`.
    pub(crate) old_rules: &'a mut Option<FlowRules>,
    pub(crate) pending: &'a mut Vec<(u32, Decision, u64, L7Record)>,
    /// Records waiting in all the worker's flows ([`WORKER_PENDING_CAP`]).
    pub(crate) pending_total: &'a mut usize,
    /// Records logged without their response because a cap was reached.
    pub(crate) pending_cut: u64,
    pub(crate) out: Vec<L7Out>,
    pub(crate) verdict: PacketVerdict,
    /// The first decision of this packet that captures the flow.
    pub(crate) capture: Option<Decision>,
    /// `--compare`: the old policy and the flow's endpoints in it; each transaction is
    /// judged by it too, and a different verdict recorded.
    pub(crate) old: Option<(&'a PolicySnapshot, Endpoint, Endpoint)>,
    /// `old` is a shadow candidate: a disagreement is counted per rule pair and written
    /// as a `shadow` record, not collected as a `--compare` change.
    pub(crate) shadow: bool,
    /// The flow, as change examples name it.
    pub(crate) describe: &'a str,
}

/// Facts from parsers land here: each transaction is judged at once (an enforced deny
/// drops the packet that completed it), alerts and `l7` records are queued for writing.
pub(crate) struct Sink<'a> {
    pub(crate) stats: &'a mut WorkerStats,
    pub(crate) anomalies: Vec<ParserAnomaly>,
    pub(crate) judge: Option<Judge<'a>>,
    /// The first thing the parser reported that blinds it (a blinding anomaly, an opaque
    /// mode that hides requests).
    pub(crate) blind: Option<Blind>,
}

/// Judges one transaction (an SQL request's statement counts as one), counts it and queues
/// its alert and `--log-all` record.
fn judge_one(
    j: &mut Judge<'_>,
    stats: &mut WorkerStats,
    app: AppProto,
    id: u32,
    detail: &RequestDetail<'_>,
) {
    stats.transactions += 1;
    let norm = match detail {
        RequestDetail::Http(h) => Some(h.path),
        RequestDetail::Grpc(g) => Some(g.http.path),
        _ => None,
    }
    .map(|raw| proto_parsers::http::normalized_path(raw, j.path));
    let d = j.snap.judge_transaction_cached(
        j.rules,
        &j.src,
        &j.dst,
        j.dport,
        j.transport,
        app,
        detail,
        norm,
    );
    count(
        &mut stats.tx_verdicts,
        d.action.as_str(),
        rule_name(j.snap, &d),
    );
    if let Some((old, src, dst)) = j.old {
        let o = old.judge_transaction_cached(
            j.old_rules,
            &src,
            &dst,
            j.dport,
            j.transport,
            app,
            detail,
            norm,
        );
        if j.shadow {
            if super::shadow::disagree(&d, &o) {
                stats.shadow.add(
                    "transaction",
                    d.action.as_str(),
                    rule_name(j.snap, &d),
                    o.action.as_str(),
                    rule_name(old, &o),
                    old.version(),
                    1,
                );
                if let Some(rec) = L7Record::from_request(detail, id) {
                    j.out.push(L7Out::Shadow(d, o, id, rec));
                }
            }
        } else if (o.action, o.enforce) != (d.action, d.enforce) {
            // A verdict is what happens to the traffic: the action and whether it is
            // enforced.
            let key = VerdictChange {
                old_action: o.action.as_str(),
                old_enforced: o.enforce,
                old_rule: rule_name(old, &o).to_owned(),
                new_action: d.action.as_str(),
                new_enforced: d.enforce,
                new_rule: rule_name(j.snap, &d).to_owned(),
            };
            let e = stats.tx_changes.entry(key).or_default();
            e.0 += 1;
            if e.1.len() < CHANGE_EXAMPLES
                && let Some(rec) = L7Record::from_request(detail, id)
            {
                e.1.push((
                    j.describe.to_owned(),
                    serde_json::to_value(&rec).unwrap_or_default(),
                ));
            }
        }
    }
    if d.enforce {
        j.verdict = j.verdict.max_with(packet_verdict(&d, j.is_tcp));
    }
    if d.capture && j.capture.is_none() {
        j.capture = Some(d);
    }
    let version = j.snap.version();
    let repeats_flow = j
        .flow_decision
        .is_some_and(|f| (f.action, f.rule) == (d.action, d.rule));
    if is_alert(&d)
        && !repeats_flow
        && let Some(rec) = L7Record::from_request(detail, id)
    {
        j.out.push(L7Out::Alert(d, id, rec));
    }
    // A group in `learn` mode records what it observes (PRODUCT.md): its transactions are
    // logged as `--log-all` logs every one, for the daemon's learner and `palisade learn`.
    if (j.log_all || d.mode == control::Mode::Learn)
        && let Some(rec) = L7Record::from_request(detail, id)
    {
        queue_log(j, id, d, version, rec);
    }
}

/// Holds request `id`'s `--log-all` record until its response completes it. When
/// [`PENDING_CAP`] wait in the flow or [`WORKER_PENDING_CAP`] in the worker, the flow's
/// oldest goes out incomplete (or this one, when the flow has none waiting).
fn queue_log(j: &mut Judge<'_>, id: u32, d: Decision, version: u64, rec: L7Record) {
    if j.pending.len() >= PENDING_CAP || *j.pending_total >= WORKER_PENDING_CAP {
        j.pending_cut += 1;
        if j.pending.is_empty() {
            j.out.push(L7Out::Log(d, version, id, rec));
            return;
        }
        let (pid, d, v, rec) = j.pending.remove(0);
        *j.pending_total = j.pending_total.saturating_sub(1);
        j.out.push(L7Out::Log(d, v, pid, rec));
    }
    j.pending.push((id, d, version, rec));
    *j.pending_total += 1;
}

/// Queues the `--log-all` records waiting for request `id` (one per statement of an SQL
/// request), each completed by `complete`, in the order they were judged.
fn log_pending(j: &mut Judge<'_>, id: u32, mut complete: impl FnMut(&mut L7Record)) {
    let mut i = 0;
    while i < j.pending.len() {
        if j.pending.get(i).is_some_and(|p| p.0 == id) {
            let (pid, d, v, mut rec) = j.pending.remove(i);
            *j.pending_total = j.pending_total.saturating_sub(1);
            complete(&mut rec);
            j.out.push(L7Out::Log(d, v, pid, rec));
        } else {
            i += 1;
        }
    }
}

/// Queues a copy of the `--log-all` records waiting for request `id` with an interim
/// `status` (HTTP's `101` to `h2c`); the records keep waiting for the final response.
fn log_interim(j: &mut Judge<'_>, id: u32, status: u32) {
    for (pid, d, v, rec) in j.pending.iter().filter(|p| p.0 == id) {
        let mut rec = rec.clone();
        rec.apply_response(Some(status), &ResponseDetail::None);
        j.out.push(L7Out::Log(*d, *v, *pid, rec));
    }
}

/// The rule that captures a flow from its L4 decision on: the deciding rule if it captures
/// and has no L7 matchers, else the first such rule covering the flow. `None` while only
/// rules with L7 matchers capture (a transaction must match them first).
pub(crate) fn l4_capture_rule<'s>(
    snap: &'s PolicySnapshot,
    src: &Endpoint,
    dst: &Endpoint,
    dport: u16,
    transport: PolicyTransport,
    app: Option<AppProto>,
    d: &Decision,
) -> Option<&'s str> {
    if !d.capture {
        return None;
    }
    match d.rule.and_then(|r| snap.rule(r)) {
        Some(r) if r.capture() && !r.has_l7() => Some(r.name()),
        _ => first_l4_capture(snap, src, dst, dport, transport, app),
    }
}

/// The lowest-numbered rule without L7 matchers that covers the flow and captures.
pub(crate) fn first_l4_capture<'s>(
    snap: &'s PolicySnapshot,
    src: &Endpoint,
    dst: &Endpoint,
    dport: u16,
    transport: PolicyTransport,
    app: Option<AppProto>,
) -> Option<&'s str> {
    let mut best: Option<control::RuleId> = None;
    snap.for_each_matching_rule(src, dst, dport, transport, app, |id, r| {
        if r.capture() && !r.has_l7() && best.is_none_or(|b| id.0 < b.0) {
            best = Some(id);
        }
    });
    best.and_then(|id| snap.rule(id)).map(|r| r.name())
}

/// The transactions of a request: one per statement for an SQL request holding several
/// (PRODUCT.md: events and verdicts per statement), the request itself otherwise.
fn for_each_transaction(detail: &RequestDetail<'_>, mut f: impl FnMut(&RequestDetail<'_>)) {
    match detail {
        RequestDetail::Sql(q) if q.statements.len() > 1 => {
            for st in q.statements {
                f(&RequestDetail::Sql(proto_parsers::facts::SqlRequest {
                    text: st.text,
                    statements: std::slice::from_ref(st),
                    ..*q
                }));
            }
        }
        _ => f(detail),
    }
}

impl FactSink for Sink<'_> {
    fn fact(&mut self, fact: &Fact<'_>) {
        if let Fact::Opaque { app, reason } = fact {
            if self.blind.is_none() {
                self.blind = Blind::from_opaque(*app, *reason);
            }
            return;
        }
        let Some(j) = self.judge.as_mut() else {
            if let Fact::Transaction { detail, .. } = fact {
                for_each_transaction(detail, |_| self.stats.transactions += 1);
            }
            return;
        };
        match fact {
            Fact::Transaction {
                app, id, detail, ..
            } => {
                let stats = &mut *self.stats;
                for_each_transaction(detail, |one| judge_one(j, stats, *app, *id, one));
            }
            Fact::Response {
                id, status, detail, ..
            } => {
                // Every statement of the request gets the response: a PostgreSQL simple
                // query's statements run as one transaction, and a failed MySQL statement
                // ends its request.
                log_pending(j, *id, |rec| rec.apply_response(*status, detail));
            }
            Fact::Interim { id, status, .. } => log_interim(j, *id, *status),
            Fact::Unanswered { id, .. } => log_pending(j, *id, |_| {}),
            Fact::Opaque { .. } => {}
        }
    }
    fn anomaly(&mut self, a: ParserAnomaly) {
        if self.blind.is_none() {
            self.blind = Blind::from_anomaly(a);
        }
        self.tunnelled_anomaly(a);
    }

    /// A connection tunnelled through an HTTP `CONNECT`: its requests go to the tunnel's
    /// target, not to the flow's server, whose rules judged the `CONNECT`. They are counted
    /// and logged (`--log-all`) with the flow's decision, not judged.
    fn tunnelled(&mut self, fact: &Fact<'_>) {
        match fact {
            Fact::Transaction { id, detail, .. } => {
                let stats = &mut *self.stats;
                let judge = self.judge.as_mut();
                let mut pending = judge.filter(|j| j.log_all);
                for_each_transaction(detail, |one| {
                    stats.transactions += 1;
                    if let Some(j) = pending.as_mut()
                        && let Some(rec) = L7Record::from_request(one, *id)
                    {
                        let (d, v) = (j.flow_verdict, j.snap.version());
                        queue_log(j, *id, d, v, rec);
                    }
                });
            }
            // A tunnelled protocol that goes opaque hides nothing the policy judges.
            Fact::Opaque { .. } => {}
            _ => self.fact(fact),
        }
    }

    fn tunnelled_anomaly(&mut self, a: ParserAnomaly) {
        if self.anomalies.len() < 16 {
            self.anomalies.push(a);
        }
    }
}
