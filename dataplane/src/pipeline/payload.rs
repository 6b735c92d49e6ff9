//! A packet's payload, after its flow's L4 verdict let it through: TCP bytes through the
//! flow's reassembly stream (datagrams as they are), then the inspector, whose parsers'
//! facts land in the policy's sink; then what came of it: stream and parser anomalies,
//! transaction events, detection (the flow judged again with its app), capture, and the
//! uninspectable decision.

use std::fmt::Write as _;
use std::sync::Arc;

use control::{PolicySnapshot, Uninspectable};
use proto_parsers::Direction;

use super::Worker;
use super::stats::add_inspect;
use crate::decode::{self, PROTO_TCP, tcp_flags};
use crate::events::proto_name;
use crate::flow::dix;
use crate::inspect::{Blind, InspectCounters, InspectEvent};
use crate::reassembly::Chunk;
use crate::verdict::sink::{Judge, L7Out, Sink};
use crate::verdict::{MaxWith, PacketVerdict, policy_transport};

impl Worker {
    /// Reassembles and inspects one packet's payload. Returns a non-accept verdict only when
    /// the bytes themselves are refused (an evasion attempt, or later an L7 deny).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn inspect(
        &mut self,
        h: crate::flow::Handle,
        dir: Direction,
        tcp: Option<decode::TcpInfo<'_>>,
        payload: &[u8],
        ts_ns: u64,
        snap: &Arc<PolicySnapshot>,
    ) -> PacketVerdict {
        let Some(flow) = self.flows.value_mut(h) else {
            return PacketVerdict::Accept;
        };
        if let Some(t) = tcp
            && payload.is_empty()
            && t.flags & (tcp_flags::FIN | tcp_flags::RST) == 0
        {
            // A bare ACK (a quarter of the east-west mix) or a SYN without data (every
            // packet of a SYN flood) moves no bytes: only the server's acknowledgement and
            // the SYN's sequence number matter (as below for any packet), so none of the
            // sink, judge and inspector set-up is built for it.
            if dir == Direction::ToClient
                && t.has(tcp_flags::ACK)
                && let Some(client) = flow.streams.get_mut(0)
            {
                client.ack(t.ack);
            }
            if t.has(tcp_flags::SYN)
                && let Some(stream) = flow.streams.get_mut(dix(dir))
            {
                // (The caller stripped a SYN after the handshake.)
                stream.set_isn(t.seq);
            }
            return PacketVerdict::Accept;
        }
        let flow = if self.shadow_role {
            // A candidate applied, replaced or cleared since this flow last met it.
            self.sync_shadow(h, ts_ns);
            let Some(flow) = self.flows.value_mut(h) else {
                return PacketVerdict::Accept;
            };
            flow
        } else {
            flow
        };
        let d = dix(dir);
        let mut verdict = PacketVerdict::Accept;
        // Transactions are judged by the snapshot in force now; after a swap the flow's
        // endpoints are resolved again in it (once per version).
        let (src, dst) = if snap.generation() == flow.verdict.snap.generation() {
            (flow.verdict.src, flow.verdict.dst)
        } else {
            match flow.swapped_eps {
                Some((g, s, d)) if g == snap.generation() => (s, d),
                _ => {
                    let eps = (snap.resolve(flow.client.0), snap.resolve(flow.server.0));
                    flow.swapped_eps = Some((snap.generation(), eps.0, eps.1));
                    eps
                }
            }
        };
        // `--compare`'s old policy, or the shadow candidate, judges each transaction too.
        let old = flow.old.as_ref().map(|o| (&*o.snap, o.src, o.dst));
        if old.is_some() && !self.shadow_role {
            self.describe.clear();
            let _ = write!(
                self.describe,
                "{} -> {}:{} {}",
                flow.client.0,
                flow.server.0,
                flow.server.1,
                proto_name(flow.proto)
            );
        }
        let mut sink = Sink {
            stats: &mut self.stats,
            anomalies: Vec::new(),
            judge: Some(Judge {
                old,
                shadow: self.shadow_role,
                describe: &self.describe,
                snap,
                flow_decision: (snap.generation() == flow.verdict.snap.generation())
                    .then_some(flow.verdict.decision),
                flow_verdict: flow.verdict.decision,
                src,
                dst,
                dport: flow.server.1,
                transport: policy_transport(flow.proto),
                is_tcp: flow.proto == PROTO_TCP,
                log_all: self.cfg.log_all,
                path: &mut self.path_buf,
                rules: &mut flow.tx_rules,
                old_rules: &mut flow.old_rules,
                pending: &mut flow.pending,
                pending_total: &mut self.pending_records,
                pending_cut: 0,
                out: Vec::new(),
                verdict: PacketVerdict::Accept,
                capture: None,
            }),
            blind: None,
        };
        let mut event = InspectEvent::NOTHING;
        let mut stream_anomaly: Option<&'static str> = None;
        let mut stream_blind: Option<Blind> = None;
        let wants = flow.inspector.wants_data();
        let registry = &self.registry;
        let inspector = &mut flow.inspector;
        let carry_budget = &mut self.carry_budget;
        let mut icounters = InspectCounters::default();
        let mut gap_bytes = 0u64;
        {
            let mut deliver = |chunk: Chunk<'_>| {
                if let Chunk::Gap(n) = chunk {
                    gap_bytes += u64::from(n);
                }
                let e = inspector.on_chunk(
                    dir,
                    chunk,
                    registry,
                    &mut sink,
                    &mut icounters,
                    carry_budget,
                );
                event.detected = event.detected.or(e.detected);
                event.blind = event.blind.or(e.blind);
            };
            match tcp {
                Some(t) => {
                    if dir == Direction::ToClient
                        && t.has(tcp_flags::ACK)
                        && let Some(client) = flow.streams.get_mut(0)
                    {
                        // What the server acknowledged is its own for good: no later copy
                        // of it can change what it acts on.
                        client.ack(t.ack);
                    }
                    let midstream = flow.tcp.is_some_and(|tr| !tr.client_syn);
                    if let Some(stream) = flow.streams.get_mut(d) {
                        let syn = t.has(tcp_flags::SYN);
                        if syn {
                            // (The caller stripped a SYN after the handshake.)
                            stream.set_isn(t.seq);
                        }
                        if wants && (!payload.is_empty() || t.has(tcp_flags::FIN)) {
                            if midstream && !payload.is_empty() && flow.blind.is_none() {
                                // The connection's start was never seen (a restart, state
                                // evicted from a full table, a capture started late).
                                stream_blind =
                                    Some(Blind::new(Uninspectable::Midstream, "midstream"));
                            }
                            // Data on a SYN (TCP Fast Open) starts after the SYN's own number.
                            let seq = if syn { t.seq.wrapping_add(1) } else { t.seq };
                            let o = stream.segment(
                                &self.cfg.stream,
                                &mut self.budget,
                                seq,
                                payload,
                                t.has(tcp_flags::FIN),
                                &mut deliver,
                            );
                            if o.overlap_mismatch {
                                // Two copies of the same bytes differ: the conflicting one
                                // must not reach the receiver, and which copy it acts on is
                                // no longer known.
                                stream_anomaly = Some("stream.overlap_mismatch");
                                verdict = PacketVerdict::Drop;
                                stream_blind = Some(Blind::new(
                                    Uninspectable::OverlapMismatch,
                                    "stream.overlap_mismatch",
                                ));
                            } else if o.unverified {
                                stream_anomaly = Some("stream.unverified_retransmission");
                                verdict = PacketVerdict::Drop;
                                stream_blind = Some(Blind::new(
                                    Uninspectable::UnverifiedRetransmission,
                                    "stream.unverified_retransmission",
                                ));
                            } else if o.dropped_cap {
                                stream_anomaly = Some("stream.reassembly_cap");
                            }
                        }
                    }
                    if t.has(tcp_flags::RST) {
                        // Nothing more will arrive: what is held goes to the inspector now.
                        if let Some(stream) = flow.streams.get_mut(d) {
                            stream.close(&mut self.budget, &mut deliver);
                        }
                    }
                }
                None => {
                    if wants && !payload.is_empty() {
                        deliver(Chunk::Data(payload));
                    }
                }
            }
        }
        if let Some(g) = flow.gap_bytes.get_mut(d) {
            *g += gap_bytes;
        }
        // The parser's own report (which limit, which ambiguity) says more than the stop
        // that followed it.
        let blind = stream_blind.or(sink.blind).or(event.blind);
        let parser_anomalies = std::mem::take(&mut sink.anomalies);
        let (l7_out, l7_verdict, capture) = match sink.judge.take() {
            Some(j) => {
                sink.stats.log_pending_cut += j.pending_cut;
                (j.out, j.verdict, j.capture)
            }
            None => (Vec::new(), PacketVerdict::Accept, None),
        };
        drop(sink);
        if l7_verdict != PacketVerdict::Accept {
            flow.blocked = true;
            verdict = verdict.max_with(l7_verdict);
        }
        let id = flow.id;
        add_inspect(&mut self.stats.inspect, &icounters);
        if let Some(d) = capture {
            // Before the alerts below are written, so they name the file.
            self.start_capture(h, snap, &d);
        }
        if let Some(why) = stream_anomaly {
            self.anomaly(ts_ns, "stream", why, Some(h), None);
        }
        if let Some(b) = event.blind {
            // What stopped the inspector (parser anomalies come with their own name).
            let name = match b.cause {
                Uninspectable::Gap => Some("applayer.gap"),
                Uninspectable::CarryOverflow => Some("applayer.carry_overflow"),
                Uninspectable::ParserInvalid => Some("applayer.parser_invalid"),
                Uninspectable::UnknownProtocol => Some("applayer.unknown_protocol"),
                _ => None,
            };
            if let Some(name) = name {
                self.anomaly(ts_ns, "applayer", name, Some(h), Some(b.detail));
            }
        }
        for a in parser_anomalies {
            self.anomaly(ts_ns, "applayer", a.as_str(), Some(h), None);
        }
        for o in l7_out {
            match o {
                L7Out::Alert(d, id, rec) => self.l7_event(h, true, &d, snap, id, &rec, ts_ns),
                L7Out::Log(d, v, id, rec) => self.log_pending(h, &d, v, id, &rec, ts_ns, snap),
                L7Out::Shadow(d, s, id, rec) => self.shadow_tx(h, &d, snap, &s, id, &rec, ts_ns),
            }
        }
        if let Some(app) = event.detected {
            verdict = self.on_detected(h, id, app, ts_ns).max_with(verdict);
        }
        if let Some(b) = blind {
            verdict = self.on_blind(h, b, ts_ns, snap).max_with(verdict);
        }
        verdict
    }
}
