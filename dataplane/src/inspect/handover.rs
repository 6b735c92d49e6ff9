//! A parser handing the connection over ([`StreamParser::handover`]): to HTTP/2 after
//! `Upgrade: h2c` (its `101` held back as the request's interim answer), or to the
//! connection tunnelled through an accepted `CONNECT` (detected afresh, its transaction ids
//! shifted).
//!
//! [`StreamParser::handover`]: proto_parsers::contract::StreamParser::handover

use proto_parsers::contract::{Fact, FactSink, ParserAnomaly};
use proto_parsers::driver::CarryBudget;
use proto_parsers::facts::{HttpResponse, ResponseDetail};
use proto_parsers::http1;
use proto_parsers::http2::Http2Parser;
use proto_parsers::{AppProto, Direction};

use super::registry::Parser;
use super::{FlowInspector, InspectCounters, InspectEvent, ParserRegistry, Phase};

/// Reports what the parser of a connection tunnelled through `CONNECT` finds, as
/// tunnelled ([`FactSink::tunnelled`]), with its transaction ids `base` higher: that
/// parser counts from 0, after the outer connection's own requests.
pub(super) struct Shift<'a> {
    pub(super) inner: &'a mut dyn FactSink,
    pub(super) base: u32,
}

impl FactSink for Shift<'_> {
    fn fact(&mut self, fact: &Fact<'_>) {
        let mut f = *fact;
        match &mut f {
            Fact::Transaction { id, .. }
            | Fact::Response { id, .. }
            | Fact::Interim { id, .. }
            | Fact::Unanswered { id, .. } => *id = id.wrapping_add(self.base),
            Fact::Opaque { .. } => {}
        }
        self.inner.tunnelled(&f);
    }

    fn anomaly(&mut self, a: ParserAnomaly) {
        self.inner.tunnelled_anomaly(a);
    }
}

/// A `101 Switching Protocols` response held back while the HTTP parser decides what it
/// switched to: after an `h2c` upgrade it is the request's interim answer (the final
/// response comes over HTTP/2); anything else gets it delivered as its response.
pub(super) struct Held101 {
    pub(super) id: u32,
    summary: [u8; http1::MAX_SUMMARY],
    summary_len: usize,
    content_type: [u8; HELD_CT],
    content_type_len: Option<usize>,
}

/// Most bytes of a held `101`'s `Content-Type` kept (a `101` has no body to describe).
const HELD_CT: usize = 128;

impl Held101 {
    /// As the request's interim answer: its final response follows over HTTP/2.
    pub(super) fn deliver_interim(&self, sink: &mut dyn FactSink) {
        sink.fact(&Fact::Interim {
            app: AppProto::Http,
            id: self.id,
            status: 101,
            summary: self.summary.get(..self.summary_len).unwrap_or_default(),
        });
    }

    pub(super) fn deliver(&self, sink: &mut dyn FactSink) {
        sink.fact(&Fact::Response {
            app: AppProto::Http,
            id: self.id,
            status: Some(101),
            summary: self.summary.get(..self.summary_len).unwrap_or_default(),
            detail: ResponseDetail::Http(HttpResponse {
                status: 101,
                content_type: self
                    .content_type_len
                    .map(|n| self.content_type.get(..n).unwrap_or_default()),
            }),
        });
    }
}

/// Wraps the sink of an HTTP parser: holds back a `101` until the parser says whether it
/// handed the connection over (the caller then delivers it, as an interim answer or as the
/// response).
pub(super) struct Hold101<'a> {
    pub(super) inner: &'a mut dyn FactSink,
    pub(super) held: Option<Held101>,
}

impl FactSink for Hold101<'_> {
    fn fact(&mut self, fact: &Fact<'_>) {
        if let Fact::Response {
            app: AppProto::Http,
            id,
            status: Some(101),
            summary,
            detail,
        } = fact
        {
            let mut h = Held101 {
                id: *id,
                summary: [0; http1::MAX_SUMMARY],
                summary_len: 0,
                content_type: [0; HELD_CT],
                content_type_len: None,
            };
            h.summary_len = copy_into(&mut h.summary, summary);
            if let ResponseDetail::Http(HttpResponse {
                content_type: Some(ct),
                ..
            }) = detail
            {
                h.content_type_len = Some(copy_into(&mut h.content_type, ct));
            }
            if let Some(prev) = self.held.replace(h) {
                prev.deliver(self.inner);
            }
            return;
        }
        // Anything after a held `101` (a tunnel's `Opaque`) keeps its place after it.
        if let Some(h) = self.held.take() {
            h.deliver(self.inner);
        }
        self.inner.fact(fact);
    }

    fn anomaly(&mut self, a: ParserAnomaly) {
        self.inner.anomaly(a);
    }
}

/// Copies what fits of `from` into `to`; returns how much.
fn copy_into(to: &mut [u8], from: &[u8]) -> usize {
    let n = to.len().min(from.len());
    if let (Some(t), Some(f)) = (to.get_mut(..n), from.get(..n)) {
        t.copy_from_slice(f);
    }
    n
}

impl FlowInspector {
    /// The parser saw the server accept `Upgrade: h2c` for request `tx`
    /// ([`Handover::Http2`]): HTTP/2 reads the rest of the connection.
    ///
    /// [`Handover::Http2`]: proto_parsers::contract::Handover::Http2
    pub(super) fn hand_over(&mut self, tx: u32, sink: &mut dyn FactSink) {
        let next = Parser(Box::new(Http2Parser::after_upgrade_from(tx)));
        if let Phase::Parsing(mut old) = std::mem::replace(&mut self.phase, Phase::Parsing(next)) {
            // Requests still waiting in HTTP/1 (none with a conforming client, which waits
            // for the 101) are reported unanswered rather than forgotten.
            old.end(sink, self.tx_base);
        }
    }

    /// The proxy accepted a `CONNECT` ([`Handover::Tunnel`]): what follows is the tunnelled
    /// connection, read from its first byte as a connection of its own (detected afresh,
    /// then parsed), its transactions numbered from `next_tx` of the parser that saw the
    /// `CONNECT`.
    ///
    /// [`Handover::Tunnel`]: proto_parsers::contract::Handover::Tunnel
    pub(super) fn enter_tunnel(
        &mut self,
        next_tx: u32,
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        if let Phase::Parsing(mut old) = std::mem::replace(&mut self.phase, Phase::Detecting) {
            old.end(sink, self.tx_base);
        }
        self.tunnelled = true;
        self.tx_base = self.tx_base.wrapping_add(next_tx);
        self.unknown = [false; 2];
        self.detect_buf = [Vec::new(), Vec::new()];
        // The client's bytes first: it speaks first in every protocol detected here, and
        // its bytes after the `CONNECT` came before the proxy's answer on the wire.
        let first = [self.carry[0].take(budget), self.carry[1].take(budget)];
        let mut event = InspectEvent::NOTHING;
        for (d, bytes) in [Direction::ToServer, Direction::ToClient]
            .into_iter()
            .zip(first)
        {
            if !bytes.is_empty() {
                event.merge(self.on_data(d, &bytes, registry, sink, counters, budget));
            }
        }
        event
    }
}
