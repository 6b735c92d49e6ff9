//! One worker: owns a flow table, a defragmenter and a reassembly budget, and runs every
//! packet of its shard through decode, flows, reassembly, inspection and the verdict.
//! Nothing here is shared with other workers; the policy snapshot arrives with each batch.
//!
//! This file keeps the order a packet meets the stages: [`Worker::process`] decodes,
//! defragments and checks checksums; `transport` finds or admits the flow, reads TCP as the
//! receiver does, applies the flow's verdict and hands the payload on
//! ([`super::payload`]). Each stage's part of the worker is an `impl Worker` block in the
//! stage's folder: `flow/` (admission and reuse, a flow's end), `verdict/` (the parser
//! facts' sink, the flow's own decision, the uninspectable decision), `capture/`, `events/`
//! (what is written) and `api/` (flow listings). rustc puts a method in its type's codegen
//! unit wherever its block is written, so the split moves no call across codegen units;
//! the few free functions the stages share on the per-packet path are `#[inline]`.

use std::net::IpAddr;
use std::sync::Arc;

use control::PolicySnapshot;
use proto_parsers::Direction;
use proto_parsers::driver::CarryBudget;

use super::{OnSwap, WorkerConfig, WorkerStats};
use crate::capture::Captures;
use crate::decode::checksum::{ChecksumMode, Checksums, l4_checksum_ok};
use crate::decode::{
    self, DecodeError, Decoded, LinkType, PROTO_ICMPV6, PROTO_TCP, Transport, tcp_flags,
};
use crate::defrag::{DefragAnomaly, Defragmenter, FragKey};
use crate::events::{AnomalyLimiter, EventSender};
use crate::flow::{
    EndReason, FlowCtx, FlowKey, FlowTable, TimeoutClass, dix, first_sender_is_client,
};
use crate::inspect::ParserRegistry;
use crate::reassembly::{Budget, Stream};
use crate::verdict::flow::{owners_changed, rejudge};
use crate::verdict::{MaxWith, PacketVerdict, is_alert, packet_verdict};

pub struct Worker {
    pub(crate) cfg: WorkerConfig,
    /// Flows are boxed: the table's slots stay small (a SYN flood walks them), a flow
    /// moves as a pointer, and the box of a flow that ended is reused for the next
    /// (`spare`), so its memory is warm and nothing is allocated per flow once flows churn.
    pub(crate) flows: FlowTable<Box<FlowCtx>>,
    /// Boxes of ended flows, kept for new ones (at most [`SPARE_FLOWS`]). Boxes, not
    /// contexts: reusing one hands the table a pointer to memory just touched.
    #[allow(clippy::vec_box)]
    pub(crate) spare: Vec<Box<FlowCtx>>,
    /// A run of flows that ended with the same decision, not yet counted
    /// (`count_decision`).
    pub(crate) verdict_memo: Option<(Arc<PolicySnapshot>, control::Decision, u64)>,
    /// The second of packet time in which the anomaly limiter last refused a
    /// `flow.table_full` record: later ones that second skip it (`table_full`).
    pub(crate) table_full_quiet: Option<u64>,
    /// Flows whose protocol was told at their end, by `AppProto` (its name, count), not yet
    /// in `stats.app_protos`.
    pub(crate) app_ended: [(&'static str, u64); 16],
    defrag: Defragmenter,
    pub(crate) budget: Budget,
    /// What the parsers' carries of all flows hold beyond their default size.
    pub(crate) carry_budget: CarryBudget,
    /// `--log-all` records waiting for a response in all flows (bounded by
    /// `verdict::sink::WORKER_PENDING_CAP`).
    pub(crate) pending_records: usize,
    /// Checksum validation (decided by sampling in `auto` mode).
    checksums: Checksums,
    pub(crate) registry: ParserRegistry,
    /// The policy to compare against (`replay --compare OLD`): every flow is judged by it too.
    pub(crate) compare: Option<Arc<PolicySnapshot>>,
    /// `compare` is a shadow candidate (`verdict::shadow`): disagreements are written as
    /// `shadow` records and counted per rule pair as they happen, and the candidate may
    /// change while flows are open.
    pub(crate) shadow_role: bool,
    /// The shared quarantine (`verdict::quarantine`), the set last taken from it, and a
    /// reused key buffer.
    pub(crate) q_board: Option<Arc<crate::verdict::quarantine::QuarantineBoard>>,
    pub(crate) q_set: Arc<crate::verdict::quarantine::QuarantineSet>,
    pub(crate) q_key: String,
    pub stats: WorkerStats,
    pub(crate) out: Vec<u8>,
    events: EventSender,
    pub(crate) next_flow_id: u64,
    now_ns: u64,
    last_expire_ns: u64,
    pub(crate) limiter: AnomalyLimiter,
    /// Flows ended inside a table call, handled once the table is released.
    pub(crate) ended: Vec<(Box<FlowCtx>, EndReason)>,
    /// Reused buffer for a reassembled IP datagram.
    frag_buf: Vec<u8>,
    /// Reused buffer for a normalised HTTP path.
    pub(crate) path_buf: Vec<u8>,
    /// Reused buffer naming a flow in `--compare`'s examples.
    pub(crate) describe: String,
    pub(crate) cid: String,
    /// Capture files and limits (`--capture-dir`).
    pub(crate) captures: Option<Captures>,
    /// The link type of the packet being judged, and the flow it landed in (for capture).
    pub(crate) cur_link: LinkType,
    cur_flow: Option<crate::flow::Handle>,
    /// The packet being judged is one of Palisade's own connections (`own_endpoints`).
    cur_own: bool,
    /// Unanswered SYN flows ended since the last summary without a flow record (evicted,
    /// timed out, open at the end): `events::emit::embryonic_summary`.
    pub(crate) embryonic: (u64, u64, u64),
    /// Whether the snapshot of this version has a rule with `capture: true`.
    pub(crate) policy_captures: (u64, bool),
}

/// Most boxes of ended flows kept for reuse (each still holds its parser's buffers until
/// it is reused).
pub(crate) const SPARE_FLOWS: usize = 64;

/// How often (packet time) idle flows and stale fragments are expired.
const EXPIRE_EVERY_NS: u64 = 1_000_000_000;

impl Worker {
    pub fn new(
        index: usize,
        cfg: WorkerConfig,
        registry: ParserRegistry,
        events: EventSender,
    ) -> Self {
        let cfg_capture = cfg.capture.clone();
        Worker {
            flows: FlowTable::new(cfg.flow),
            defrag: Defragmenter::new(cfg.defrag),
            budget: {
                let mut b = Budget::new(cfg.reassembly_budget);
                b.max_kept_per_stream = cfg.stream.max_kept_bytes_per_stream;
                b
            },
            checksums: Checksums::new(cfg.checksums),
            carry_budget: CarryBudget::new(cfg.carry_budget),
            pending_records: 0,
            cfg,
            registry,
            compare: None,
            shadow_role: false,
            q_board: None,
            q_set: Arc::default(),
            q_key: String::with_capacity(64),
            stats: WorkerStats::default(),
            out: Vec::with_capacity(1 << 16),
            events,
            // Flow ids are unique across workers: the worker index is in the top bits, and
            // they stay below 2^51 as Suricata's do (256 workers of 2^43 flows each).
            next_flow_id: ((index as u64 & 0xff) << 43) + 1,
            now_ns: 0,
            last_expire_ns: 0,
            limiter: AnomalyLimiter::default(),
            ended: Vec::new(),
            spare: Vec::with_capacity(SPARE_FLOWS),
            verdict_memo: None,
            table_full_quiet: None,
            app_ended: [("", 0); 16],
            frag_buf: Vec::new(),
            path_buf: Vec::with_capacity(256),
            describe: String::new(),
            cid: String::with_capacity(32),
            captures: cfg_capture.map(Captures::new),
            cur_link: LinkType::ETHERNET,
            cur_flow: None,
            cur_own: false,
            policy_captures: (0, false),
            embryonic: (0, 0, 0),
        }
    }

    /// Judges every flow by `old` as well, and reports where the verdicts differ.
    pub fn set_compare(&mut self, old: Arc<PolicySnapshot>) {
        self.compare = Some(old);
    }

    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn defrag(&self) -> &Defragmenter {
        &self.defrag
    }

    /// Sends the events buffered so far to the writer (called once per batch).
    pub fn flush_events(&mut self) {
        self.events.flush(&mut self.out);
    }

    /// Bytes of event lines written since the last [`Worker::flush_events`].
    pub fn pending_event_bytes(&self) -> usize {
        self.out.len()
    }

    /// Live sources: expires idle flows by the wall clock when no packet has come to do it.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        if self.now_ns >= self.last_expire_ns + EXPIRE_EVERY_NS {
            self.expire();
        }
    }

    /// Brings the counters kept by the table, reassembly and defragmenter into `stats`
    /// (live sources publish them while running; `finish` does it at the end).
    pub fn refresh_stats(&mut self) {
        self.fold_counts();
        self.stats.flows = self.flows.counters;
        self.stats.reassembly = self.budget.counters;
        self.stats.defrag = self.defrag.counters();
        self.stats.open_flows = self.flows.len() as u64;
        if let Some(c) = &self.captures {
            self.stats.capture = c.counters;
        }
    }

    /// Moves the counts kept aside on the hot path (runs of equal decisions, protocols
    /// told at flow end, table-full hits) into `stats`.
    pub fn fold_counts(&mut self) {
        self.flush_verdict_memo();
        self.fold_table_full();
        for (name, n) in &mut self.app_ended {
            if *n > 0 {
                *self.stats.app_protos.entry(name).or_default() += *n;
                *n = 0;
            }
        }
    }

    /// Ends every flow (end of capture) and flushes events.
    pub fn finish(&mut self) {
        // One at a time: collecting every open flow first held all of their buffers (and a
        // copy of each flow) until the last was ended.
        while let Some((_, f)) = self.flows.pop_oldest() {
            self.end_flow(f, EndReason::Shutdown);
        }
        self.embryonic_summary(self.now_ns);
        self.fold_counts();
        self.stats.flows = self.flows.counters;
        self.stats.reassembly = self.budget.counters;
        self.stats.defrag = self.defrag.counters();
        if let Some(c) = &self.captures {
            self.stats.capture = c.counters;
        }
        self.flush_events();
    }

    /// Judges one packet.
    pub fn process(
        &mut self,
        ts_ns: u64,
        linktype: LinkType,
        data: &[u8],
        orig_len: u32,
        snap: &Arc<PolicySnapshot>,
    ) -> PacketVerdict {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(orig_len);
        self.cur_link = linktype;
        self.cur_flow = None;
        self.cur_own = false;
        self.now_ns = self.now_ns.max(ts_ns);
        if self.now_ns >= self.last_expire_ns + EXPIRE_EVERY_NS {
            self.expire();
        }
        if self.q_board.is_some() {
            // One atomic load; a changed quarantine refuses the open flows it names.
            self.check_quarantine(ts_ns);
        }
        let v = match decode::decode(linktype, data) {
            Err(e) => {
                self.decode_error(e, ts_ns);
                PacketVerdict::Accept
            }
            Ok(Decoded::NotIp) => {
                self.stats.not_ip += 1;
                PacketVerdict::Accept
            }
            Ok(Decoded::Ip(p)) if is_link_control(p.proto, &p.transport) => {
                // Neighbour discovery and MLD are the link's plumbing, like ARP: judging them
                // by workload policy would cut IPv6 between pods.
                self.stats.not_ip += 1;
                PacketVerdict::Accept
            }
            Ok(Decoded::Ip(p)) => match p.transport {
                Transport::Fragment { .. }
                    if self.checksums.mode() == ChecksumMode::Validate && !p.ip_header.ok() =>
                {
                    self.bad_checksum(ts_ns)
                }
                Transport::Fragment {
                    id,
                    offset,
                    more,
                    payload,
                } => self.fragment(
                    ts_ns, p.src, p.dst, p.proto, id, offset, more, payload, orig_len, snap,
                ),
                t => self.transport(
                    ts_ns,
                    p.src,
                    p.dst,
                    p.proto,
                    t,
                    orig_len,
                    snap,
                    (p.ip_header, p.l4),
                ),
            },
        };
        if let Some(h) = self.cur_flow.take()
            && let Some(c) = self.captures.as_mut()
            && let Some(fc) = self
                .flows
                .value_mut(h)
                .and_then(|f| f.capture.as_deref_mut())
        {
            c.packet(fc, ts_ns, linktype, data, orig_len);
        }
        match v {
            PacketVerdict::Accept if self.cur_own => self.stats.self_packets += 1,
            PacketVerdict::Accept => self.stats.accepted += 1,
            // A tap drops nothing: what it would have dropped is counted as such.
            PacketVerdict::Drop | PacketVerdict::DropReset if !self.cfg.enforcing => {
                self.stats.would_drop += 1
            }
            PacketVerdict::Drop => self.stats.dropped += 1,
            PacketVerdict::DropReset => {
                self.stats.dropped += 1;
                self.stats.reset += 1;
            }
        }
        v
    }

    /// Whether the packet's checksums hold (or are not validated). One that fails is
    /// counted, reported, and never reaches a flow: the receiver discards it (or, where a
    /// veth trusts its peer's checksums, dropping it inline keeps the receiver from using
    /// bytes that were never judged as delivered).
    fn checksum_ok(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        (ip_header, l4): (decode::IpHeader<'_>, &[u8]),
    ) -> bool {
        let (ok, decided) = self.checksums.check(src, dst, proto, ip_header, l4);
        if let Some(mode) = decided {
            tracing::info!(
                checksums = mode.as_str(),
                "checksum validation decided from the first packets"
            );
        }
        ok
    }

    fn bad_checksum(&mut self, ts_ns: u64) -> PacketVerdict {
        self.stats.bad_checksums += 1;
        self.anomaly(ts_ns, "decode", "decode.bad_checksum", None, None);
        PacketVerdict::Drop
    }

    fn expire(&mut self) {
        self.last_expire_ns = self.now_ns;
        let mut ended = std::mem::take(&mut self.ended);
        self.flows
            .expire(self.now_ns, &mut |_, f, r| ended.push((f, r)));
        for (f, r) in ended.drain(..) {
            self.end_flow(f, r);
        }
        self.ended = ended;
        self.embryonic_summary(self.now_ns);
        let mut timeouts = 0u32;
        self.defrag.expire(self.now_ns, &mut |_| timeouts += 1);
        if timeouts > 0 {
            self.anomaly(self.now_ns, "defrag", "defrag.timeout", None, None);
        }
    }

    /// Whether a TCP packet belongs to a connection between one of Palisade's own
    /// listeners and this host: one end is the listener, the other loopback or an address
    /// of this host. Only such packets skip judgement: one with another host at its far end
    /// (a remote scraper, or a workload that spoofs the node's address and the listener's
    /// port as its source) is judged like any other, so the skip is never a way around the
    /// policy for traffic between workloads.
    #[inline]
    fn is_own(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> bool {
        let own = &self.cfg.own_endpoints;
        if own.is_empty() {
            return false;
        }
        let (src, dst) = (src.to_canonical(), dst.to_canonical());
        let listener = |ip: IpAddr, port: u16| {
            own.iter()
                .any(|e| e.port() == port && e.ip().to_canonical() == ip)
        };
        let local =
            |ip: IpAddr| ip.is_loopback() || own.iter().any(|e| e.ip().to_canonical() == ip);
        (listener(dst, dport) && local(src)) || (listener(src, sport) && local(dst))
    }

    fn decode_error(&mut self, e: DecodeError, ts_ns: u64) {
        *self.stats.decode_errors.entry(e.as_str()).or_default() += 1;
        self.anomaly(ts_ns, "decode", e.as_str(), None, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn fragment(
        &mut self,
        ts_ns: u64,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        id: u32,
        offset: u32,
        more: bool,
        payload: &[u8],
        orig_len: u32,
        snap: &Arc<PolicySnapshot>,
    ) -> PacketVerdict {
        self.stats.fragments += 1;
        let key = FragKey {
            src,
            dst,
            id,
            proto,
        };
        let mut anomalies: [Option<DefragAnomaly>; 4] = [None; 4];
        let mut n = 0usize;
        let done = self
            .defrag
            .insert(ts_ns, key, offset, more, payload, &mut |a| {
                if let Some(slot) = anomalies.get_mut(n) {
                    *slot = Some(a);
                    n += 1;
                }
            })
            .map(|d| {
                self.frag_buf.clear();
                self.frag_buf.extend_from_slice(d);
            })
            .is_some();
        for a in anomalies.into_iter().flatten() {
            self.anomaly(ts_ns, "defrag", defrag_anomaly_name(a), None, None);
        }
        if self.defrag.refused() {
            // Refused fragments are dropped inline: the receiver must not complete a
            // datagram (overlapping, too large, evicted) the inspector did not see whole.
            return PacketVerdict::Drop;
        }
        if !done {
            // Nothing to judge until the datagram is whole; inline, the last fragment carries
            // the verdict for all (dropping it keeps the receiver from reassembling).
            return PacketVerdict::Accept;
        }
        let buf = std::mem::take(&mut self.frag_buf);
        if self.checksums.mode() == ChecksumMode::Validate && !l4_checksum_ok(src, dst, proto, &buf)
        {
            // The receiver discards the datagram; the last fragment is dropped so it cannot
            // complete it either.
            self.frag_buf = buf;
            return self.bad_checksum(ts_ns);
        }
        let v = match decode::decode_reassembled(proto, &buf) {
            // Its checksum was checked above, over the whole datagram.
            Ok(t) => self.transport(
                ts_ns,
                src,
                dst,
                proto,
                t,
                orig_len,
                snap,
                (decode::IpHeader::Checked(true), &[]),
            ),
            Err(e) => {
                self.decode_error(e, ts_ns);
                PacketVerdict::Accept
            }
        };
        self.frag_buf = buf;
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        ts_ns: u64,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        t: Transport<'_>,
        orig_len: u32,
        snap: &Arc<PolicySnapshot>,
        csum: (decode::IpHeader<'_>, &[u8]),
    ) -> PacketVerdict {
        let (sport, dport, tcp, payload, icmp) = match t {
            Transport::Tcp(tcp) => (tcp.sport, tcp.dport, Some(tcp), tcp.payload, (0, 0)),
            Transport::Udp {
                sport,
                dport,
                payload,
            } => (sport, dport, None, payload, (0, 0)),
            Transport::Icmp { ty, code } => (0, 0, None, &[][..], (ty, code)),
            Transport::Other | Transport::Fragment { .. } => (0, 0, None, &[][..], (0, 0)),
        };
        if proto == PROTO_TCP && self.is_own(src, sport, dst, dport) {
            // Palisade's own connection (its metrics): never judged, never a flow.
            self.cur_own = true;
            return PacketVerdict::Accept;
        }
        let (key, src_is_lo) = FlowKey::new(src, sport, dst, dport, proto);
        let flags = tcp.map(|t| t.flags);

        // A SYN on a stale flow's tuple ends it and opens a new one (`find_flow`).
        let handle = self.find_flow(&key, flags);

        // Checksums are validated on what the client sends: its bytes are what policy
        // judges, and a decoy it sends with a bad checksum must not be read as delivered.
        // (The server's bytes are not the attacker's; skipping them halves the cost.) While
        // `auto` still samples, every packet is looked at.
        let from_client = match handle.and_then(|h| self.flows.value(h)) {
            Some(f) => src_is_lo == f.client_is_lo,
            None => first_sender_is_client(flags, sport, dport),
        };
        // A client's bare ACK carries nothing judged (only the server's acknowledgements
        // matter, for what the client's stream keeps): not worth its checksum.
        let bare_ack = tcp
            .is_some_and(|t| t.payload.is_empty() && t.flags & !tcp_flags::PSH == tcp_flags::ACK);
        if ((from_client && !bare_ack) || self.checksums.mode() == ChecksumMode::Auto)
            && !self.checksum_ok(src, dst, proto, csum)
        {
            return self.bad_checksum(ts_ns);
        }

        let mut created = false;
        let h = match handle {
            Some(h) => h,
            None => {
                let h = self.admit(
                    key,
                    ts_ns,
                    (src, sport),
                    (dst, dport),
                    proto,
                    icmp,
                    tcp.map(|t| (t.flags, t.seq, u32::try_from(t.payload.len()).unwrap_or(0))),
                    src_is_lo,
                    snap,
                );
                created = true;
                match h {
                    Some(h) => h,
                    None => return PacketVerdict::Accept,
                }
            }
        };

        let Some(flow) = self.flows.value_mut(h) else {
            return PacketVerdict::Accept;
        };
        let dir = if src_is_lo == flow.client_is_lo {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let d = dix(dir);
        flow.last_ns = flow.last_ns.max(ts_ns);
        if let Some(p) = flow.pkts.get_mut(d) {
            *p += 1;
        }
        if let Some(b) = flow.bytes.get_mut(d) {
            *b += u64::from(orig_len);
        }
        // TCP as the receiving host reads it: what it would ignore is not judged.
        let mut tcp = tcp;
        let mut norm: Option<&'static str> = None;
        if let (Some(tr), Some(t)) = (flow.tcp.as_mut(), tcp.as_mut())
            && !created
        {
            if t.has(tcp_flags::SYN) && tr.handshake_done {
                // RFC 5961 4.2: a SYN in a synchronised connection gets a challenge ACK; it
                // moves nothing (a second SYN must not resynchronise the reassembler).
                t.flags &= !tcp_flags::SYN;
                norm = Some("stream.syn_after_handshake");
            }
            if t.has(tcp_flags::RST) {
                let expected = flow
                    .streams
                    .get(d)
                    .filter(|s| s.is_initialized())
                    .map(Stream::next_seq);
                if !tr.rst_acceptable(dir, t.seq, expected) {
                    t.flags &= !tcp_flags::RST;
                    norm = Some("stream.rst_out_of_window");
                }
            }
            let len = u32::try_from(t.payload.len()).unwrap_or(u32::MAX);
            tr.on_packet(dir, t.flags, t.seq, len);
        }
        let class = flow.tcp.map_or(TimeoutClass::Datagram, |t| t.class());
        let is_tcp = proto == PROTO_TCP;
        let mut rejudged_alert = false;
        if !created && flow.verdict.snap.generation() != snap.generation() {
            // With `--on-swap rejudge` every swap re-judges; otherwise only an inventory
            // change that gave one of the flow's addresses another owner does (a container's
            // address reused by another is never judged as its old owner).
            let again = match self.cfg.on_swap {
                OnSwap::Rejudge => true,
                OnSwap::Keep => owners_changed(flow, snap),
            };
            if again {
                rejudged_alert = rejudge(flow, snap);
                self.stats.rejudged += 1;
            }
        }
        let mut verdict = packet_verdict(&flow.verdict.decision, is_tcp);
        if flow.blocked {
            // The rest of a connection a transaction was refused on is dropped, with resets
            // built from each packet: the first reset reaches the client only if the server
            // had nothing in flight (its sequence number must be exact), so a client that
            // missed it (an HTTP/2 peer's SETTINGS or WINDOW_UPDATE crossed it) learns from
            // its own next packet (its challenge ACK) instead of waiting for its deadline.
            let blocked = if is_tcp {
                PacketVerdict::DropReset
            } else {
                PacketVerdict::Drop
            };
            verdict = verdict.max_with(blocked);
        }
        if rejudged_alert {
            flow.alerted = true;
        }
        if created && is_alert(&flow.verdict.decision) {
            flow.alerted = true;
            let id = flow.id;
            self.alert(id, h, ts_ns);
        } else if rejudged_alert {
            let id = flow.id;
            self.alert(id, h, ts_ns);
        }
        if created && self.shadow_role {
            self.shadow_flow(h, ts_ns);
        }
        // A segment with none of SYN, ACK or RST is discarded by the receiver (RFC 9293
        // 3.10.7.4; Linux's tcp_validate_incoming): never fed to the inspector (a decoy
        // without ACK carrying an allowed request), dropped inline.
        if tcp.is_some_and(|t| t.flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == 0) {
            norm = Some("stream.no_ack");
            verdict = verdict.max_with(PacketVerdict::Drop);
        }
        // Packets of a flow the policy refused are not inspected: they never reach the server.
        if verdict == PacketVerdict::Accept {
            verdict = self.inspect(h, dir, tcp, payload, ts_ns, snap);
        }
        if verdict != PacketVerdict::Accept
            && let Some(flow) = self.flows.value_mut(h)
        {
            flow.dropped += 1;
        }
        if let Some(why) = norm {
            *self.stats.normalised.entry(why).or_default() += 1;
            self.anomaly(ts_ns, "stream", why, Some(h), None);
        }
        self.flows.touch(h, ts_ns, class);
        self.cur_flow = Some(h);
        verdict
    }
}

/// ICMPv6 router/neighbour discovery, redirects and multicast listener messages.
fn is_link_control(proto: u8, t: &Transport<'_>) -> bool {
    matches!(
        (proto, t),
        (
            PROTO_ICMPV6,
            Transport::Icmp {
                ty: 130..=137 | 143,
                ..
            }
        )
    )
}

fn defrag_anomaly_name(a: DefragAnomaly) -> &'static str {
    match a {
        DefragAnomaly::Overlap => "defrag.overlap",
        DefragAnomaly::OverlapMismatch => "defrag.overlap_mismatch",
        DefragAnomaly::TooManyFragments => "defrag.too_many_fragments",
        DefragAnomaly::TooLarge => "defrag.too_large",
        DefragAnomaly::TableFull => "defrag.table_full",
        DefragAnomaly::Timeout => "defrag.timeout",
        DefragAnomaly::BadLength => "defrag.bad_length",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventOutput, EventWriter};

    /// Only a connection between the metrics listener and this host skips judgement: a
    /// packet that claims the listener as its source towards another host (a workload
    /// spoofing the node's address and port) is judged.
    #[test]
    fn only_local_connections_to_the_listener_are_own() {
        let writer = EventWriter::start(EventOutput::Discard).unwrap();
        let cfg = WorkerConfig {
            own_endpoints: vec![
                "10.0.0.5:9100".parse().unwrap(),
                "127.0.0.1:9100".parse().unwrap(),
            ],
            ..WorkerConfig::default()
        };
        let w = Worker::new(0, cfg, ParserRegistry::builtin(), writer.sender());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A scrape from this host: to the listener, and its answers.
        assert!(w.is_own(ip("127.0.0.1"), 40000, ip("127.0.0.1"), 9100));
        assert!(w.is_own(ip("127.0.0.1"), 9100, ip("127.0.0.1"), 40000));
        assert!(w.is_own(ip("10.0.0.5"), 40000, ip("10.0.0.5"), 9100));
        assert!(w.is_own(ip("::ffff:127.0.0.1"), 40000, ip("10.0.0.5"), 9100));
        // Another host at the far end, either way round: judged.
        assert!(!w.is_own(ip("10.0.0.9"), 40000, ip("10.0.0.5"), 9100));
        assert!(!w.is_own(ip("10.0.0.5"), 9100, ip("10.0.1.7"), 5432));
        // Another port, or another host's service on the same port: judged.
        assert!(!w.is_own(ip("127.0.0.1"), 40000, ip("127.0.0.1"), 9101));
        assert!(!w.is_own(ip("10.0.0.5"), 40000, ip("10.0.0.7"), 9100));
    }
}
