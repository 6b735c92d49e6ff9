//! A flow's start: the flow a packet belongs to, a SYN that replaces a stale flow on its
//! tuple, and the flow context made for a first packet (orientation, the policy's
//! judgement of both ends, whether it is held for capture).

use std::net::IpAddr;
use std::sync::Arc;

use control::PolicySnapshot;
use proto_parsers::Direction;

use super::first_sender_is_client;
use super::{EndReason, FlowCtx, FlowKey, FlowVerdict, Handle, TcpTracker, TimeoutClass};
use crate::decode::{PROTO_TCP, PROTO_UDP, tcp_flags};
use crate::inspect::FlowInspector;
use crate::pipeline::Worker;
use crate::reassembly::Stream;
use crate::verdict::policy_transport;
use crate::verdict::sink::l4_capture_rule;

impl Worker {
    /// The open flow `key` names, if any.
    ///
    /// A SYN on a closed flow's tuple is a new connection: end the old one first. So is
    /// a SYN on a flow whose client's SYN was never seen (picked up mid-stream, or
    /// opened by a SYN-ACK): the handshake's SYN, not a guess, says who the client is,
    /// and a flow oriented wrongly (by a SYN-ACK an attacker sent first) is judged again
    /// the right way round.
    #[inline]
    pub(crate) fn find_flow(&mut self, key: &FlowKey, flags: Option<u8>) -> Option<Handle> {
        let mut handle = self.flows.get(key);
        if let (Some(h), Some(f)) = (handle, flags)
            && f & tcp_flags::SYN != 0
            && f & tcp_flags::ACK == 0
        {
            let stale = self
                .flows
                .value(h)
                .and_then(|c| c.tcp)
                .is_some_and(|t| t.is_closed() || !t.client_syn);
            if stale {
                if let Some((_, old)) = self.flows.remove(h) {
                    self.end_flow(old, EndReason::Reused);
                }
                handle = None;
            }
        }
        handle
    }

    /// Opens a flow for its first packet (`tcp`: its flags, sequence number and length):
    /// oriented, judged and inserted; flows the table ends to make room are ended here.
    /// `None` when the table refuses it.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        &mut self,
        key: FlowKey,
        ts_ns: u64,
        (src, sport): (IpAddr, u16),
        (dst, dport): (IpAddr, u16),
        proto: u8,
        icmp: (u8, u8),
        tcp: Option<(u8, u32, u32)>,
        src_is_lo: bool,
        snap: &Arc<PolicySnapshot>,
    ) -> Option<Handle> {
        let sender_is_client = first_sender_is_client(tcp.map(|t| t.0), sport, dport);
        let ctx = self.new_flow(
            ts_ns,
            (src, sport),
            (dst, dport),
            proto,
            icmp,
            tcp,
            sender_is_client,
            src_is_lo,
            snap,
        );
        let class = ctx.tcp.map_or(TimeoutClass::Datagram, |t| t.class());
        let ctx = match self.spare.pop() {
            Some(mut b) => {
                *b = ctx;
                b
            }
            None => Box::new(ctx),
        };
        let cap_hits = self.flows.counters.cap_hits;
        let mut ended = std::mem::take(&mut self.ended);
        let h = self
            .flows
            .insert(key, ts_ns, class, ctx, &mut |_, f, r| ended.push((f, r)));
        for (f, r) in ended.drain(..) {
            self.end_flow(f, r);
        }
        self.ended = ended;
        if self.flows.counters.cap_hits != cap_hits {
            self.table_full(ts_ns);
        }
        h
    }

    /// The flow table was full for a new flow: an `anomaly` record (at most the anomaly
    /// rate per second; the counters count every time) that says how full and what went.
    ///
    /// Every SYN of a flood finds the table full: the count is the table's own
    /// (`cap_hits`, folded into the anomaly counts when they are read), and once the
    /// limiter has refused a record, the rest of that second of packet time skips it.
    #[cold]
    fn table_full(&mut self, ts_ns: u64) {
        let sec = ts_ns / 1_000_000_000;
        if self.table_full_quiet == Some(sec) {
            return;
        }
        if !self
            .limiter
            .allow("flow.table_full", ts_ns, self.cfg.anomaly_events_per_sec)
        {
            self.table_full_quiet = Some(sec);
            return;
        }
        let c = self.flows.counters;
        let detail = format!(
            "flow table full ({} flows): {} new flows found it full; evicted {} ({} in their handshake, {} established)",
            self.flows.len(),
            c.cap_hits,
            c.evicted,
            c.evicted_embryonic,
            c.evicted_established
        );
        self.write_anomaly(ts_ns, "unknown", "flow.table_full", None, Some(&detail));
    }

    /// The anomaly count of `flow.table_full`: every time a new flow found the table full.
    pub(crate) fn fold_table_full(&mut self) {
        let hits = self.flows.counters.cap_hits;
        if hits > 0 {
            self.stats.anomalies.insert("flow.table_full", hits);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        ts_ns: u64,
        (src, sport): (IpAddr, u16),
        (dst, dport): (IpAddr, u16),
        proto: u8,
        icmp: (u8, u8),
        tcp: Option<(u8, u32, u32)>,
        sender_is_client: bool,
        src_is_lo: bool,
        snap: &Arc<PolicySnapshot>,
    ) -> FlowCtx {
        let (client, server) = if sender_is_client {
            ((src, sport), (dst, dport))
        } else {
            ((dst, dport), (src, sport))
        };
        let id = self.next_flow_id;
        self.next_flow_id += 1;
        let src_ep = snap.resolve(client.0);
        let dst_ep = snap.resolve(server.0);
        let transport = policy_transport(proto);
        let mut decision = snap.judge_flow(&src_ep, &dst_ep, server.1, transport, None);
        if self.is_quarantined(snap, (&src_ep, client.0), (&dst_ep, server.0)) {
            decision = control::Decision::quarantined(decision.src_group, decision.dst_group);
            self.stats.quarantine_refused += 1;
        }
        let old = self.compare.as_ref().map(|old| {
            let (src, dst) = (old.resolve(client.0), old.resolve(server.0));
            FlowVerdict {
                decision: old.judge_flow(&src, &dst, server.1, transport, None),
                snap: Arc::clone(old),
                src,
                dst,
            }
        });
        let first_dir = if sender_is_client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let mut capture = None;
        // Rules for one app (`app: redis`) only apply once the app is detected, after the
        // handshake: while a TCP or UDP flow's app is unknown, any capturing rule may still
        // come to cover it, so it is held until detection decides.
        let may_capture = decision.capture
            || (matches!(proto, PROTO_TCP | PROTO_UDP) && self.policy_has_capture(snap));
        if may_capture && let Some(c) = self.captures.as_mut() {
            capture = Some(c.hold());
            if let Some(rule) =
                l4_capture_rule(snap, &src_ep, &dst_ep, server.1, transport, None, &decision)
            {
                c.start(&mut capture, id, rule, self.cur_link);
            }
        }
        FlowCtx {
            id,
            client,
            server,
            proto,
            icmp,
            client_is_lo: src_is_lo == sender_is_client,
            first_ns: ts_ns,
            last_ns: ts_ns,
            pkts: [0; 2],
            bytes: [0; 2],
            dropped: 0,
            tcp: tcp.map(|(f, seq, len)| TcpTracker::first(first_dir, f, seq, len)),
            streams: if tcp.is_some() {
                // The client's bytes are what policy judges: keep what was delivered until
                // the server acknowledges it, so any later copy is compared.
                let mut client = Stream::new();
                client.retain();
                [client, Stream::new()]
            } else {
                [Stream::new(), Stream::new()]
            },
            inspector: FlowInspector::new(proto != PROTO_TCP),
            verdict: FlowVerdict {
                snap: Arc::clone(snap),
                src: src_ep,
                dst: dst_ep,
                decision,
            },
            old,
            shadow_said: None,
            swapped_eps: None,
            tx_rules: None,
            old_rules: None,
            pending: Vec::new(),
            blocked: false,
            alerted: false,
            blind: None,
            gap_bytes: [0; 2],
            capture,
        }
    }

    /// Whether any rule of `snap` captures (cached per version).
    fn policy_has_capture(&mut self, snap: &PolicySnapshot) -> bool {
        if self.captures.is_none() {
            return false;
        }
        if self.policy_captures.0 != snap.version() {
            let any = (0..snap.rule_count() as u32)
                .filter_map(|i| snap.rule(control::RuleId(i)))
                .any(|r| r.capture());
            self.policy_captures = (snap.version(), any);
        }
        self.policy_captures.1
    }
}
