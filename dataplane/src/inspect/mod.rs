//! Inspection: the seam between reassembled bytes and protocol parsers.
//!
//! Per flow, [`FlowInspector`] first detects the application protocol from the first bytes
//! of each direction (never from the port), then hands the stream to the parser that the
//! [`ParserRegistry`] makes for that protocol, through the one streaming contract of
//! `proto_parsers::contract`. Bytes a parser has not consumed are kept in a bounded carry
//! buffer per direction and fed again with what arrives next.
//!
//! A parser may hand the connection over ([`StreamParser::handover`], part of the contract:
//! the inspector asks every parser, whatever its protocol), which HTTP/1 does in two ways.
//!
//! HTTP/1.1 to HTTP/2 (`Upgrade: h2c`): when the HTTP/1 parser reports that the server
//! answered `101 Switching Protocols` to `h2c` ([`Handover::Http2`]), the flow's parser is
//! replaced, once, by [`Http2Parser::after_upgrade_from`] with the upgrade request's
//! transaction id. What the HTTP/1 parser left unconsumed goes to the new parser: first the
//! client's bytes after the upgrade request (its preface, which came earlier on the wire),
//! then the server's bytes after the `101`. The `101` is reported as an interim answer
//! ([`Fact::Interim`]; an HTTP parser's `101` is held back until it has said whether it
//! handed over): the request is HTTP/2 stream 1, and its final response (`200`, `404`...)
//! comes from the HTTP/2 parser under the same transaction id. Any other `101` (WebSocket)
//! leaves the HTTP/1 parser in charge, which makes the flow a tunnel. The flow's detected
//! protocol ([`FlowInspector::app`]) stays `http`.
//!
//! HTTP `CONNECT` ([`Handover::Tunnel`]): once the proxy answers `2xx`, the bytes that
//! follow are the tunnelled connection's, from its first byte. The inspector detects their
//! protocol afresh and reads them with that protocol's parser (a TLS ClientHello's SNI, the
//! requests of plain HTTP), as Suricata and tshark do. Their transactions are numbered
//! after the `CONNECT` request's, so ids stay unique on the flow, and reported as tunnelled
//! ([`FactSink::tunnelled`]): they are requests to the `CONNECT` target, not to the flow's
//! server, so the policy judges the `CONNECT` (its target is the request's path and host)
//! and the records of what went through the tunnel carry that decision. The flow's protocol
//! stays `http`; a tunnelled protocol no detector recognises, or one its parser gives up
//! on, ends inspection without a blind decision.
//!
//! [`Handover::Http2`]: proto_parsers::contract::Handover::Http2
//! [`Handover::Tunnel`]: proto_parsers::contract::Handover::Tunnel
//! [`Http2Parser::after_upgrade_from`]: proto_parsers::http2::Http2Parser::after_upgrade_from
//! [`Fact::Interim`]: proto_parsers::contract::Fact::Interim

mod blind;
mod detection;
mod feed;
mod handover;
mod registry;

use control::Uninspectable;
use proto_parsers::contract::{FactSink, StreamParser};
use proto_parsers::detect;
use proto_parsers::driver::{Carry, CarryBudget};
use proto_parsers::{AppProto, Direction};

use std::sync::Arc;

use crate::reassembly::Chunk;

pub use blind::{Blind, InspectEvent};
pub use registry::ParserRegistry;

use registry::Parser;

/// Datagrams of a UDP flow that detection looks at before it calls the flow unknown: a
/// stray datagram (junk, a probe) before the first query must not hide the queries after
/// it. Each one it cannot read is judged on its own (`onUninspectable`).
pub const UDP_DETECT_DATAGRAMS: u8 = 4;

/// Bytes kept per direction while detection needs more. Real protocols decide within a few
/// dozen bytes; a peer that dribbles more than this without deciding is an unknown
/// protocol (uninspectable where rules expect one).
pub const DETECT_BUF: usize = 256;
/// Bytes of parser carry one worker's flows may hold beyond 64 KiB each (a parser may ask
/// for more: an HTTP/1 head can be 1 MiB): see `proto_parsers::driver::CarryBudget`.
pub const CARRY_BUDGET: usize = 256 << 20;

/// Builds one parser for one flow; told the transport, since some protocols (DNS) frame
/// messages differently over UDP and TCP.
pub type ParserFactory = Arc<dyn Fn(detect::Transport) -> Box<dyn StreamParser> + Send + Sync>;

#[derive(Clone, Copy, Debug, Default)]
pub struct InspectCounters {
    pub detected: u64,
    pub undetected: u64,
    pub detect_overflow: u64,
    pub parser_invalid: u64,
    pub carry_overflow: u64,
    pub gaps_before_detection: u64,
}

enum Phase {
    Detecting,
    Parsing(Parser),
    /// Protocol known, no parser for it, or inspection stopped.
    Done,
}

/// Per-flow inspection state.
pub struct FlowInspector {
    app: Option<AppProto>,
    udp: bool,
    phase: Phase,
    /// Detection buffers; empty (no heap) unless a first segment was too short to decide.
    detect_buf: [Vec<u8>; 2],
    unknown: [bool; 2],
    carry: [Carry; 2],
    /// Some payload was seen (a flow without any has no application protocol to report).
    saw_data: bool,
    /// UDP: datagrams no detector recognised so far.
    undetected: u8,
    /// Reading a connection tunnelled through `CONNECT`: its protocol is not the flow's.
    tunnelled: bool,
    /// What the parser's transaction ids are reported above (see [`Shift`](handover::Shift)).
    tx_base: u32,
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

fn other(d: Direction) -> Direction {
    match d {
        Direction::ToServer => Direction::ToClient,
        Direction::ToClient => Direction::ToServer,
    }
}

impl FlowInspector {
    pub fn new(udp: bool) -> Self {
        FlowInspector {
            app: None,
            udp,
            phase: Phase::Detecting,
            detect_buf: [Vec::new(), Vec::new()],
            unknown: [false; 2],
            carry: [Carry::new(), Carry::new()],
            saw_data: false,
            undetected: 0,
            tunnelled: false,
            tx_base: 0,
        }
    }

    pub fn app(&self) -> Option<AppProto> {
        self.app
    }

    /// The protocol events report: none for a flow that carried no payload (refused at
    /// its SYN, a bare handshake), as Suricata leaves `app_proto` out for those.
    pub fn app_seen(&self) -> Option<AppProto> {
        self.app.filter(|_| self.saw_data)
    }

    /// False once nothing more will be done with this flow's bytes (the pipeline may then
    /// stop reassembling it).
    pub fn wants_data(&self) -> bool {
        !matches!(self.phase, Phase::Done)
    }

    fn transport(&self) -> detect::Transport {
        if self.udp {
            detect::Transport::Udp
        } else {
            detect::Transport::Tcp
        }
    }

    fn fallback(&self) -> AppProto {
        if self.udp {
            AppProto::Udp
        } else {
            AppProto::Tcp
        }
    }

    /// Feeds one reassembled chunk of direction `dir`. `budget` bounds what the carries of
    /// all the worker's flows hold.
    pub fn on_chunk(
        &mut self,
        dir: Direction,
        chunk: Chunk<'_>,
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        match chunk {
            Chunk::Gap(len) => self.on_gap(dir, len, counters, budget),
            Chunk::Data(data) => self.on_data(dir, data, registry, sink, counters, budget),
        }
    }

    /// `len` bytes of `dir` are missing. What the parser makes of them
    /// ([`proto_parsers::contract::GapOutcome`]) decides: a gap it skipped exactly costs
    /// nothing; one it resynchronises after keeps the flow inspected, but when the bytes
    /// lost were the client's they may have held requests no rule saw, so the flow is
    /// also blind (`gap_resync`) and the policy's `onUninspectable` decides it (in alert or
    /// allow the flow goes on, and the requests after the gap are parsed and judged). Lost
    /// server bytes hide no request. A parser that gives up ends inspection (`gap`).
    fn on_gap(
        &mut self,
        dir: Direction,
        len: u32,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        use proto_parsers::contract::GapOutcome;
        match &mut self.phase {
            Phase::Detecting => {
                // The first bytes are lost: detection from the start is impossible, and
                // whatever they held was never judged.
                counters.gaps_before_detection += 1;
                let app = self.fallback();
                self.finish_detection(app);
                InspectEvent {
                    detected: (!self.tunnelled).then_some(app),
                    blind: Some(Blind::new(Uninspectable::Gap, "gap_before_detection")),
                }
            }
            Phase::Parsing(p) => {
                if let Some(c) = self.carry.get_mut(ix(dir)) {
                    c.clear(budget);
                }
                match p.as_dyn().gap(dir, len) {
                    GapOutcome::Skipped => InspectEvent::NOTHING,
                    GapOutcome::Resync => match dir {
                        Direction::ToServer => {
                            InspectEvent::blind(Uninspectable::Gap, "gap_resync")
                        }
                        Direction::ToClient => InspectEvent::NOTHING,
                    },
                    GapOutcome::GiveUp => {
                        self.stop(budget);
                        InspectEvent::blind(Uninspectable::Gap, "gap")
                    }
                }
            }
            Phase::Done => InspectEvent::NOTHING,
        }
    }

    /// Called when the flow ends: what we know is all there is. Returns the protocol if it
    /// was decided only now, and a blind cause if bytes were sent that never decided one.
    /// Gives the carries' memory back to `budget`.
    pub fn end(
        &mut self,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        let mut event = InspectEvent::NOTHING;
        if self.app.is_none() {
            let app = self.fallback();
            counters.undetected += 1;
            let spoke =
                self.unknown.contains(&true) || self.detect_buf.iter().any(|b| !b.is_empty());
            self.finish_detection(app);
            event.detected = Some(app);
            if spoke {
                event.blind = Some(Blind::new(Uninspectable::UnknownProtocol, "undetected"));
            }
        }
        if let Phase::Parsing(p) = &mut self.phase {
            p.end(sink, self.tx_base);
        }
        self.stop(budget);
        event
    }

    fn finish_detection(&mut self, app: AppProto) {
        if !self.tunnelled {
            self.app = Some(app);
        }
        self.detect_buf = [Vec::new(), Vec::new()];
        self.phase = Phase::Done;
    }

    /// Stops inspecting: nothing more is parsed, the carries are given back.
    fn stop(&mut self, budget: &mut CarryBudget) {
        self.phase = Phase::Done;
        for c in &mut self.carry {
            c.clear(budget);
        }
    }
}

#[cfg(test)]
mod tests;
