//! A worker's events: each is built from the flow it is about and written as one JSON line
//! into the worker's buffer (sent to the writer once per batch). Alerts, transaction
//! records, anomalies (rate-limited per kind) and the records of a flow that ended.

use foldhash::HashMap;
use std::sync::Arc;

use control::{Decision, PolicySnapshot};

use super::build::{alert_obj, fill_flow_fields, policy_verdict};
use super::l7::L7Record;
use super::{AnomalyObj, Event, FlowObj, IpsVerdict, TcpObj, Timestamp};
use crate::decode::PROTO_TCP;
use crate::flow::{EndReason, FlowCtx};
use crate::pipeline::Worker;
use crate::verdict::quarantine::quarantines;

/// Rate limiter for anomaly events: per kind, at most N per second of packet time.
#[derive(Default)]
pub(crate) struct AnomalyLimiter {
    window: HashMap<&'static str, (u64, u32)>,
}

impl AnomalyLimiter {
    #[inline]
    pub(crate) fn allow(&mut self, kind: &'static str, now_ns: u64, per_sec: u32) -> bool {
        let sec = now_ns / 1_000_000_000;
        let e = self.window.entry(kind).or_insert((sec, 0));
        if e.0 != sec {
            *e = (sec, 0);
        }
        e.1 += 1;
        e.1 <= per_sec
    }
}

impl Worker {
    /// An `alert` for a decision about the flow that is not its own (one datagram's).
    pub(crate) fn decision_alert(
        &mut self,
        h: crate::flow::Handle,
        d: &Decision,
        snap: &PolicySnapshot,
        ts_ns: u64,
    ) {
        self.stats.alerts += 1;
        let Some(flow) = self.flows.value(h) else {
            return;
        };
        let enforcing = self.cfg.enforcing;
        let mut e = Event::new(Timestamp(ts_ns), "alert");
        self.cid.clear();
        fill_flow_fields(&mut e, flow, &mut self.cid, enforcing);
        e.policy_verdict = Some(policy_verdict(snap, d, enforcing));
        e.alert = Some(alert_obj(snap, d, flow, None, enforcing));
        if d.enforce && enforcing {
            e.verdict = Some(IpsVerdict::drop(false));
        }
        e.write_line(&mut self.out);
        self.stats.events += 1;
    }

    /// An `alert` for the flow's own decision.
    pub(crate) fn alert(&mut self, _id: u64, h: crate::flow::Handle, ts_ns: u64) {
        self.stats.alerts += 1;
        let mut quarantine = None;
        let q = self.q_board.is_some();
        if let Some(flow) = self.flows.value(h) {
            let mut e = Event::new(Timestamp(ts_ns), "alert");
            self.cid.clear();
            let enforcing = self.cfg.enforcing;
            fill_flow_fields(&mut e, flow, &mut self.cid, enforcing);
            let d = flow.verdict.decision;
            let a = alert_obj(&flow.verdict.snap, &d, flow, None, enforcing);
            if q && quarantines(&flow.verdict.snap, &d) {
                quarantine = Some((Arc::clone(&flow.verdict.snap), d, a.signature.clone()));
            }
            e.alert = Some(a);
            if d.enforce && enforcing {
                e.verdict = Some(IpsVerdict::drop(flow.proto == PROTO_TCP));
            }
            e.capture_file = flow.capture_file();
            e.write_line(&mut self.out);
            crate::capture::note_event(&mut self.captures, flow.capture.as_deref(), &e);
            self.stats.events += 1;
        }
        if let Some((snap, d, signature)) = quarantine {
            self.quarantine_source(h, &snap, &d, &signature, ts_ns);
        }
    }

    /// Writes a transaction's event (an `alert`, or its protocol's record: `http`,
    /// `pgsql`...): the flow's identity with the transaction's own decision and objects.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn l7_event(
        &mut self,
        h: crate::flow::Handle,
        alert: bool,
        d: &Decision,
        snap: &PolicySnapshot,
        id: u32,
        rec: &L7Record,
        ts_ns: u64,
    ) {
        let Some(flow) = self.flows.value_mut(h) else {
            return;
        };
        if alert {
            flow.alerted = true;
            self.stats.alerts += 1;
        }
        let Some(flow) = self.flows.value(h) else {
            return;
        };
        let enforcing = self.cfg.enforcing;
        let mut e = Event::new(
            Timestamp(ts_ns),
            if alert { "alert" } else { rec.event_type() },
        );
        self.cid.clear();
        fill_flow_fields(&mut e, flow, &mut self.cid, enforcing);
        e.policy_verdict = Some(policy_verdict(snap, d, enforcing));
        e.tx_id = Some(u64::from(id));
        let mut quarantine = None;
        let q = self.q_board.is_some();
        if alert {
            let a = alert_obj(snap, d, flow, Some(rec), enforcing);
            if q && quarantines(snap, d) {
                quarantine = Some(a.signature.clone());
            }
            e.alert = Some(a);
            if d.enforce && enforcing {
                e.verdict = Some(IpsVerdict::drop(flow.proto == PROTO_TCP));
            }
            e.capture_file = flow.capture_file();
        }
        e.l7 = Some(rec);
        e.write_line(&mut self.out);
        if alert {
            crate::capture::note_event(&mut self.captures, flow.capture.as_deref(), &e);
        }
        self.stats.events += 1;
        if let Some(signature) = quarantine {
            self.quarantine_source(h, snap, d, &signature, ts_ns);
        }
    }

    /// An `l7` record whose decision was made by snapshot version `v`: the rule name comes
    /// from that version (the flow's own snapshot, or the current one after a swap).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn log_pending(
        &mut self,
        h: crate::flow::Handle,
        d: &Decision,
        v: u64,
        id: u32,
        rec: &L7Record,
        ts_ns: u64,
        current: &PolicySnapshot,
    ) {
        let snap = match self.flows.value(h) {
            Some(f) if f.verdict.snap.version() == v => Arc::clone(&f.verdict.snap),
            _ if current.version() == v => {
                // Borrowing `current` across the mutable call below is fine: it is the
                // batch's snapshot, not the worker's.
                return self.l7_event(h, false, d, current, id, rec, ts_ns);
            }
            // The deciding snapshot is gone (several swaps while the request waited): the
            // decision stands, its rule is named from the flow's snapshot.
            Some(f) => Arc::clone(&f.verdict.snap),
            None => return,
        };
        self.l7_event(h, false, d, &snap, id, rec, ts_ns);
    }

    pub(crate) fn anomaly(
        &mut self,
        ts_ns: u64,
        kind: &'static str,
        event: &'static str,
        flow: Option<crate::flow::Handle>,
        detail: Option<&str>,
    ) {
        if self.count_anomaly(event, ts_ns) {
            self.write_anomaly(ts_ns, kind, event, flow, detail);
        }
    }

    /// Counts anomaly `event`; whether its record may be written now (at most
    /// `anomaly_events_per_sec` of a kind per second of packet time).
    #[inline]
    pub(crate) fn count_anomaly(&mut self, event: &'static str, ts_ns: u64) -> bool {
        *self.stats.anomalies.entry(event).or_default() += 1;
        self.limiter
            .allow(event, ts_ns, self.cfg.anomaly_events_per_sec)
    }

    /// Writes an anomaly record (counted and allowed by [`Worker::count_anomaly`]).
    pub(crate) fn write_anomaly(
        &mut self,
        ts_ns: u64,
        kind: &'static str,
        event: &'static str,
        flow: Option<crate::flow::Handle>,
        detail: Option<&str>,
    ) {
        let mut e = Event::new(Timestamp(ts_ns), "anomaly");
        self.cid.clear();
        let mut app = None;
        if let Some(f) = flow.and_then(|h| self.flows.value(h)) {
            fill_flow_fields(&mut e, f, &mut self.cid, self.cfg.enforcing);
            e.policy_verdict = None;
            app = e.app_proto;
        }
        e.anomaly = Some(AnomalyObj {
            // Suricata's anomaly types: a fragment's trouble is a decoder event there.
            kind: if kind == "defrag" { "decode" } else { kind },
            event,
            app_proto: if kind == "applayer" { app } else { None },
        });
        e.anomaly_detail = detail;
        e.write_line(&mut self.out);
        self.stats.events += 1;
    }

    /// One `anomaly` record summing up the unanswered SYNs that ended since the last one
    /// without a flow record of their own (called once a second of packet time, and at
    /// the end).
    pub(crate) fn embryonic_summary(&mut self, ts_ns: u64) {
        let (evicted, timed_out, open) = std::mem::take(&mut self.embryonic);
        let n = evicted + timed_out + open;
        if n == 0 {
            return;
        }
        let detail = format!(
            "{n} unanswered SYN flow(s) ended without a flow record of their own: {evicted} evicted from the full flow table, {timed_out} timed out, {open} still waiting at the end"
        );
        self.anomaly(
            ts_ns,
            "unknown",
            "flow.embryonic_ended",
            None,
            Some(&detail),
        );
    }

    /// The records of a flow that ended: its requests still waiting for a response, then
    /// the `flow` record.
    pub(crate) fn flow_end_events(&mut self, flow: &mut FlowCtx, reason: EndReason) {
        // Requests that never saw a response are logged as they are (no status).
        self.pending_records = self.pending_records.saturating_sub(flow.pending.len());
        for (id, d, _, rec) in std::mem::take(&mut flow.pending) {
            let snap = Arc::clone(&flow.verdict.snap);
            let mut e = Event::new(Timestamp(flow.last_ns), rec.event_type());
            self.cid.clear();
            fill_flow_fields(&mut e, flow, &mut self.cid, self.cfg.enforcing);
            e.policy_verdict = Some(policy_verdict(&snap, &d, self.cfg.enforcing));
            e.tx_id = Some(u64::from(id));
            e.l7 = Some(&rec);
            e.write_line(&mut self.out);
            self.stats.events += 1;
        }
        // A SYN nobody answered, evicted or timed out without an alert (or still waiting
        // at the end, once the table has been full): one of a flood's, or a scan's. It is
        // counted, and summed up once a second (`embryonic_summary`), not written one
        // record each.
        let summed = match reason {
            EndReason::Evicted | EndReason::Timeout => true,
            EndReason::Shutdown => self.flows.counters.cap_hits > 0,
            EndReason::Reused => false,
        };
        if summed
            && flow.pkts[1] == 0
            && !flow.alerted
            && flow
                .tcp
                .is_some_and(|t| t.class() == crate::flow::TimeoutClass::New)
        {
            self.stats.embryonic_unlogged += 1;
            match reason {
                EndReason::Evicted => self.embryonic.0 += 1,
                EndReason::Timeout => self.embryonic.1 += 1,
                _ => self.embryonic.2 += 1,
            }
            return;
        }
        // A flow record is stamped with the flow's start, as Suricata's are (PRODUCT.md).
        let mut e = Event::new(Timestamp(flow.first_ns), "flow");
        self.cid.clear();
        fill_flow_fields(&mut e, flow, &mut self.cid, self.cfg.enforcing);
        let state = match flow.tcp {
            Some(t) if t.is_closed() => "closed",
            Some(t)
                if matches!(
                    t.state,
                    crate::flow::TcpState::SynSent | crate::flow::TcpState::SynReceived
                ) =>
            {
                "new"
            }
            Some(_) => "established",
            None if flow.pkts[1] > 0 => "established",
            None => "new",
        };
        e.flow = Some(FlowObj {
            pkts_toserver: flow.pkts[0],
            pkts_toclient: flow.pkts[1],
            bytes_toserver: flow.bytes[0],
            bytes_toclient: flow.bytes[1],
            start: Timestamp(flow.first_ns),
            end: Timestamp(flow.last_ns),
            age: flow.last_ns.saturating_sub(flow.first_ns) / 1_000_000_000,
            state,
            reason: reason.as_str(),
            alerted: flow.alerted,
        });
        e.tcp = flow.tcp.map(|t| TcpObj {
            state: t.state.as_str(),
            ts_gap: flow.gap_bytes[0] > 0,
            tc_gap: flow.gap_bytes[1] > 0,
            gap_bytes: flow.gap_bytes[0] + flow.gap_bytes[1],
        });
        if let Some(v) = e.policy_verdict.as_mut() {
            if self.cfg.enforcing {
                v.dropped_pkts = Some(flow.dropped);
            } else {
                v.would_drop_pkts = Some(flow.dropped);
            }
        }
        e.capture_file = flow.capture_file();
        e.write_line(&mut self.out);
        crate::capture::note_event(&mut self.captures, flow.capture.as_deref(), &e);
        self.stats.events += 1;
    }
}
