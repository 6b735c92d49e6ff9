//! Inspection: the seam between reassembled bytes and protocol parsers.
//!
//! Per flow, [`FlowInspector`] first detects the application protocol from the first bytes
//! of each direction (never from the port), then hands the stream to the parser that the
//! [`ParserRegistry`] makes for that protocol, through the one streaming contract of
//! `proto_parsers::contract`. Bytes a parser has not consumed are kept in a bounded carry
//! buffer per direction and fed again with what arrives next.
//!
//! HTTP/1.1 to HTTP/2 (`Upgrade: h2c`): when the HTTP/1 parser reports that the server
//! answered `101 Switching Protocols` to `h2c` ([`Http1Parser::upgraded_to`]), the flow's
//! parser is replaced, once, by [`Http2Parser::after_upgrade_from`] with the upgrade
//! request's transaction id. What the HTTP/1 parser left unconsumed goes to the new parser:
//! first the client's bytes after the upgrade request (its preface, which came earlier on
//! the wire), then the server's bytes after the `101`. The `101` is reported as an interim
//! answer ([`Fact::Interim`]): the request is HTTP/2 stream 1, and its final response
//! (`200`, `404`...) comes from the HTTP/2 parser under the same transaction id. Any other
//! `101` (WebSocket) leaves the HTTP/1 parser in charge, which makes the flow a tunnel. The
//! flow's detected protocol ([`FlowInspector::app`]) stays `http`.
//!
//! HTTP `CONNECT`: once the proxy answers `2xx`, the bytes that follow are the tunnelled
//! connection's, from its first byte. The inspector detects their protocol afresh and
//! reads them with that protocol's parser (a TLS ClientHello's SNI, the requests of plain
//! HTTP), as Suricata and tshark do. Their transactions are numbered after the `CONNECT`
//! request's, so ids stay unique on the flow, and reported as tunnelled
//! ([`FactSink::tunnelled`]): they are requests to the `CONNECT` target, not to the flow's
//! server, so the policy judges the `CONNECT` (its target is the request's path and
//! host) and the records of what went through the tunnel carry that decision. The flow's
//! protocol stays `http`; a tunnelled protocol no detector recognises, or one its parser
//! gives up on, ends inspection without a blind decision.

use control::Uninspectable;
use proto_parsers::contract::{Fact, FactSink, Invalid, OpaqueReason, ParserAnomaly, StreamParser};
use proto_parsers::detect::{self, Detection};
use proto_parsers::driver::{Carry, CarryBudget, Stop, drive};
use proto_parsers::facts::{HttpResponse, ResponseDetail};
use proto_parsers::http1::{self, Http1Parser, Switch};
use proto_parsers::http2::Http2Parser;
use proto_parsers::{AppProto, Direction};

use std::sync::Arc;

use crate::reassembly::Chunk;

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

/// How the registry makes one protocol's parser.
#[derive(Clone)]
enum Maker {
    /// The built-in HTTP/1 parser, made as its concrete type so that the inspector can ask
    /// it whether the connection switched to HTTP/2 (`h2c`).
    Http1,
    Factory(ParserFactory),
}

/// Makes a parser for a detected protocol. Parsers register here as their issues land.
/// Cloned into each worker; the factories are shared.
#[derive(Clone)]
pub struct ParserRegistry {
    factories: Vec<(AppProto, Maker)>,
}

impl Default for ParserRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ParserRegistry {
    /// An empty registry: detection only.
    pub fn empty() -> Self {
        ParserRegistry {
            factories: Vec::new(),
        }
    }

    /// Every parser this build ships. gRPC has no entry: detection says HTTP/2 and the
    /// HTTP/2 parser recognises gRPC calls per stream.
    pub fn builtin() -> Self {
        use proto_parsers::{dns, http2, mysql, postgres, redis, tls};
        let mut r = Self::empty();
        r.set(AppProto::Http, Maker::Http1);
        r.register(
            AppProto::Http2,
            Arc::new(|_| Box::new(http2::Http2Parser::default())),
        );
        r.register(
            AppProto::Postgres,
            Arc::new(|_| Box::new(postgres::PostgresParser::default())),
        );
        r.register(
            AppProto::Mysql,
            Arc::new(|_| Box::new(mysql::MysqlParser::default())),
        );
        r.register(
            AppProto::Redis,
            Arc::new(|_| Box::new(redis::RedisParser::default())),
        );
        r.register(
            AppProto::Tls,
            Arc::new(|_| Box::new(tls::TlsParser::default())),
        );
        r.register(
            AppProto::Dns,
            Arc::new(|t| {
                Box::new(match t {
                    detect::Transport::Udp => dns::DnsParser::udp(),
                    detect::Transport::Tcp => dns::DnsParser::tcp(),
                })
            }),
        );
        r
    }

    /// Makes `app`'s parsers with `make` from now on. A parser registered for `http` in
    /// place of the built-in one is not followed through an `h2c` upgrade.
    pub fn register(&mut self, app: AppProto, make: ParserFactory) {
        self.set(app, Maker::Factory(make));
    }

    fn set(&mut self, app: AppProto, make: Maker) {
        self.factories.retain(|(a, _)| *a != app);
        self.factories.push((app, make));
    }

    pub fn make(
        &self,
        app: AppProto,
        transport: detect::Transport,
    ) -> Option<Box<dyn StreamParser>> {
        self.make_parser(app, transport).map(Parser::into_dyn)
    }

    fn make_parser(&self, app: AppProto, transport: detect::Transport) -> Option<Parser> {
        self.factories
            .iter()
            .find(|(a, _)| *a == app)
            .map(|(_, m)| match m {
                Maker::Http1 => Parser::Http1 {
                    parser: Box::default(),
                    next_tx: 0,
                },
                Maker::Factory(f) => Parser::Dyn(f(transport)),
            })
    }
}

/// The parser of one flow.
enum Parser {
    /// The built-in HTTP/1 parser, which may hand the connection over to HTTP/2.
    Http1 {
        parser: Box<Http1Parser>,
        /// The id its next request will get (ids count from 0 per flow).
        next_tx: u32,
    },
    Dyn(Box<dyn StreamParser>),
}

impl Parser {
    fn as_dyn(&mut self) -> &mut dyn StreamParser {
        match self {
            Parser::Http1 { parser, .. } => parser.as_mut(),
            Parser::Dyn(p) => p.as_mut(),
        }
    }

    fn into_dyn(self) -> Box<dyn StreamParser> {
        match self {
            Parser::Http1 { parser, .. } => parser,
            Parser::Dyn(p) => p,
        }
    }

    /// Feeds `data` until the parser needs more: how much it consumed in all, and the
    /// hand-over the HTTP/1 parser made on the way, if any. The parser's transaction ids
    /// are reported `base` higher (the parser of a tunnelled connection counts from 0).
    fn drive(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
        base: u32,
    ) -> Result<(usize, Option<Handover>), Invalid> {
        let mut shifted;
        let sink: &mut dyn FactSink = if base == 0 {
            sink
        } else {
            shifted = Shift { inner: sink, base };
            &mut shifted
        };
        let (parser, next_tx) = match self {
            Parser::Dyn(p) => return drive(p.as_mut(), dir, data, sink).map(|n| (n, None)),
            Parser::Http1 { parser, next_tx } => (parser, next_tx),
        };
        let mut watch = Watch {
            inner: sink,
            next_tx: *next_tx,
            held: None,
        };
        let r = drive(parser.as_mut(), dir, data, &mut watch);
        *next_tx = watch.next_tx;
        let held = watch.held.take();
        match parser.switched() {
            Some(Switch::H2c) => {
                // A `101` with no request waiting (reported as unsolicited): stream 1 gets
                // the next free id, so it cannot be paired with an earlier request.
                let tx = held.as_ref().map_or(*next_tx, |h| h.id);
                if let Some(h) = held {
                    // The request's final response will come from HTTP/2 stream 1.
                    h.deliver_interim(sink);
                }
                r.map(|n| (n, Some(Handover::H2c(tx))))
            }
            Some(Switch::Connect) => r.map(|n| (n, Some(Handover::Connect(*next_tx)))),
            None => {
                if let Some(h) = held {
                    h.deliver(sink);
                }
                r.map(|n| (n, None))
            }
        }
    }

    /// Ends the parser: what is still waiting is reported unanswered, ids `base` higher.
    fn end(&mut self, sink: &mut dyn FactSink, base: u32) {
        if base == 0 {
            self.as_dyn().end(sink);
        } else {
            self.as_dyn().end(&mut Shift { inner: sink, base });
        }
    }
}

/// What the HTTP/1 parser handed the connection over to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handover {
    /// HTTP/2, whose stream 1 is transaction `.0` (the upgrade request).
    H2c(u32),
    /// A tunnelled connection, whose transactions count from `.0`.
    Connect(u32),
}

/// Reports what the parser of a connection tunnelled through `CONNECT` finds, as
/// tunnelled ([`FactSink::tunnelled`]), with its transaction ids `base` higher: that
/// parser counts from 0, after the outer connection's own requests.
struct Shift<'a> {
    inner: &'a mut dyn FactSink,
    base: u32,
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

/// A `101 Switching Protocols` response held back while the HTTP/1 parser decides what it
/// switched to: after an `h2c` upgrade it is the request's interim answer (the final
/// response comes over HTTP/2); anything else gets it delivered as its response.
struct Held101 {
    id: u32,
    summary: [u8; http1::MAX_SUMMARY],
    summary_len: usize,
    content_type: [u8; HELD_CT],
    content_type_len: Option<usize>,
}

/// Most bytes of a held `101`'s `Content-Type` kept (a `101` has no body to describe).
const HELD_CT: usize = 128;

impl Held101 {
    /// As the request's interim answer: its final response follows over HTTP/2.
    fn deliver_interim(&self, sink: &mut dyn FactSink) {
        sink.fact(&Fact::Interim {
            app: AppProto::Http,
            id: self.id,
            status: 101,
            summary: self.summary.get(..self.summary_len).unwrap_or_default(),
        });
    }

    fn deliver(&self, sink: &mut dyn FactSink) {
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

/// Wraps the sink of an HTTP/1 parser: counts its transaction ids and holds back a `101`.
struct Watch<'a> {
    inner: &'a mut dyn FactSink,
    next_tx: u32,
    held: Option<Held101>,
}

impl FactSink for Watch<'_> {
    fn fact(&mut self, fact: &Fact<'_>) {
        match fact {
            Fact::Response {
                app: AppProto::Http,
                id,
                status: Some(101),
                summary,
                detail,
            } => {
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
            Fact::Transaction { id, .. } => self.next_tx = id.wrapping_add(1),
            _ => {}
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

#[derive(Clone, Copy, Debug, Default)]
pub struct InspectCounters {
    pub detected: u64,
    pub undetected: u64,
    pub detect_overflow: u64,
    pub parser_invalid: u64,
    pub carry_overflow: u64,
    pub gaps_before_detection: u64,
}

/// The inspector stopped seeing what the receiver acts on, and why: the worker hands it
/// to the policy's `onUninspectable` decision (when rules could have judged the flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blind {
    pub cause: Uninspectable,
    /// The precise reason, for events and anomaly counters (`applayer.header_too_large`,
    /// `gap_before_detection`, `bad_syntax`...).
    pub detail: &'static str,
    /// Only this datagram could not be judged (a UDP flow keeps being read): the decision
    /// applies to it, not to the flow.
    pub datagram: bool,
}

impl Blind {
    pub const fn new(cause: Uninspectable, detail: &'static str) -> Self {
        Blind {
            cause,
            detail,
            datagram: false,
        }
    }

    /// A parser anomaly that blinds ([`ParserAnomaly::blinds`]), as a cause.
    pub fn from_anomaly(a: ParserAnomaly) -> Option<Self> {
        let cause = match a {
            ParserAnomaly::Ambiguous | ParserAnomaly::BadFraming => Uninspectable::AmbiguousFraming,
            a if a.blinds() => Uninspectable::ParserLimit,
            _ => return None,
        };
        Some(Blind::new(cause, a.as_str()))
    }

    /// A parser that can no longer read the flow ([`Fact::Opaque`]), as a cause, when
    /// requests could follow unseen.
    pub fn from_opaque(app: AppProto, reason: OpaqueReason) -> Option<Self> {
        if !reason.hides_requests(app) {
            return None;
        }
        let cause = match reason {
            OpaqueReason::Encrypted => Uninspectable::Encrypted,
            OpaqueReason::Compressed => Uninspectable::Compressed,
            OpaqueReason::MidStream => Uninspectable::Midstream,
            OpaqueReason::Tunnel | OpaqueReason::Unsupported => Uninspectable::Unsupported,
        };
        Some(Blind::new(cause, reason.as_str()))
    }
}

/// What a chunk changed, for the pipeline to act on: the protocol became known
/// (possibly `Tcp`/`Udp`: unrecognised), and/or inspection went blind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InspectEvent {
    pub detected: Option<AppProto>,
    pub blind: Option<Blind>,
}

impl InspectEvent {
    pub const NOTHING: InspectEvent = InspectEvent {
        detected: None,
        blind: None,
    };

    pub const fn detected(app: AppProto) -> Self {
        InspectEvent {
            detected: Some(app),
            blind: None,
        }
    }

    pub const fn blind(cause: Uninspectable, detail: &'static str) -> Self {
        InspectEvent {
            detected: None,
            blind: Some(Blind::new(cause, detail)),
        }
    }

    fn merge(&mut self, o: InspectEvent) {
        self.detected = self.detected.or(o.detected);
        self.blind = self.blind.or(o.blind);
    }

    pub fn is_nothing(&self) -> bool {
        *self == Self::NOTHING
    }
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
    /// What the parser's transaction ids are reported above (see [`Shift`]).
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

    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        if data.is_empty() {
            return InspectEvent::NOTHING;
        }
        self.saw_data = true;
        let mut event = InspectEvent::NOTHING;
        if let Phase::Detecting = self.phase {
            if self.udp
                && self.undetected + 1 < UDP_DETECT_DATAGRAMS
                && detect::detect(self.transport(), dir, data) == Detection::Unknown
            {
                // This datagram alone: the next one may still be the protocol.
                self.undetected += 1;
                return InspectEvent {
                    detected: None,
                    blind: Some(Blind {
                        datagram: true,
                        ..Blind::new(Uninspectable::UnknownProtocol, "undetected_datagram")
                    }),
                };
            }
            let (app, why) = match self.detect(dir, data, counters) {
                Some(found) => found,
                None => return InspectEvent::NOTHING,
            };
            let recognised = !matches!(app, AppProto::Tcp | AppProto::Udp);
            counters.detected += u64::from(recognised);
            // A tunnelled connection's protocol is not the flow's, which policy judged.
            if !self.tunnelled {
                event.detected = Some(app);
                if let Some(why) = why {
                    // Bytes that no detector recognised: a rule that expects a protocol
                    // here cannot judge them (the peer may speak it in a form detection
                    // missed).
                    event.blind = Some(Blind::new(Uninspectable::UnknownProtocol, why));
                }
            }
            let buffered = std::mem::take(&mut self.detect_buf);
            self.finish_detection(app);
            let Some(p) = registry.make_parser(app, self.transport()) else {
                return event;
            };
            self.phase = Phase::Parsing(p);
            // Feed everything buffered for detection, in order, before `data`.
            for d in [Direction::ToServer, Direction::ToClient] {
                let Some(b) = buffered.get(ix(d)) else {
                    continue;
                };
                if !b.is_empty() && d != dir {
                    event.merge(self.feed(d, b, registry, sink, counters, budget));
                }
            }
            if let Some(b) = buffered.get(ix(dir))
                && !b.is_empty()
            {
                let mut all = b.clone();
                all.extend_from_slice(data);
                event.merge(self.feed(dir, &all, registry, sink, counters, budget));
                return event;
            }
        }
        if let Phase::Parsing(_) = self.phase {
            event.merge(self.feed(dir, data, registry, sink, counters, budget));
        }
        event
    }

    /// Runs detection for `dir`: once the flow's protocol is decided, the protocol and,
    /// when no detector recognised the bytes, why.
    fn detect(
        &mut self,
        dir: Direction,
        data: &[u8],
        counters: &mut InspectCounters,
    ) -> Option<(AppProto, Option<&'static str>)> {
        let transport = self.transport();
        let i = ix(dir);
        if self.unknown.get(i).copied().unwrap_or(true) {
            return None;
        }
        let buf = self.detect_buf.get_mut(i)?;
        let answer = if buf.is_empty() {
            detect::detect(transport, dir, data)
        } else {
            let pre = buf.len();
            let room = DETECT_BUF.saturating_sub(pre);
            buf.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            let a = detect::detect(transport, dir, buf);
            if let Detection::Proto(_) = a {
                // Keep only what came before `data`: the caller feeds `data` itself.
                buf.truncate(pre);
            }
            a
        };
        match answer {
            Detection::Proto(app) => Some((app, None)),
            Detection::NeedMore => {
                if buf.is_empty() {
                    buf.extend_from_slice(
                        data.get(..DETECT_BUF.min(data.len())).unwrap_or_default(),
                    );
                }
                if buf.len() >= DETECT_BUF {
                    counters.detect_overflow += 1;
                    self.mark_unknown(i, "detect_overflow")
                } else {
                    None
                }
            }
            Detection::Unknown => self.mark_unknown(i, "undetected"),
        }
    }

    /// A direction gave up. For UDP each datagram stands alone, so one unknown decides. For
    /// TCP, a client whose first bytes no detector recognises decides too: those bytes are
    /// on their way to the server now, and no protocol here has its client speak first in
    /// a way only the server's answer would identify (MySQL's client waits for the
    /// greeting). A server's unrecognised first bytes wait for the client (it may still
    /// speak a known protocol).
    fn mark_unknown(
        &mut self,
        i: usize,
        why: &'static str,
    ) -> Option<(AppProto, Option<&'static str>)> {
        if let Some(u) = self.unknown.get_mut(i) {
            *u = true;
        }
        if self.udp || i == ix(Direction::ToServer) || self.unknown == [true, true] {
            Some((self.fallback(), Some(why)))
        } else {
            None
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

    /// Feeds a parser through the direction's carry. Any way the parser or the carry
    /// gives up is a [`Blind`]: inspection stops there.
    fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        match self.feed_parser(dir, data, sink, budget) {
            Ok(None) => InspectEvent::NOTHING,
            Ok(Some(next_tx)) => self.enter_tunnel(next_tx, registry, sink, counters, budget),
            Err(_) if self.tunnelled => {
                // What the tunnelled connection carries is not a request to the flow's
                // server: reading it stops, nothing the policy judges was hidden.
                self.stop(budget);
                InspectEvent::NOTHING
            }
            Err(Stop::Overflow) => {
                counters.carry_overflow += 1;
                self.stop(budget);
                InspectEvent::blind(Uninspectable::CarryOverflow, "carry_overflow")
            }
            Err(Stop::Invalid(why)) => {
                counters.parser_invalid += 1;
                self.stop(budget);
                // A limit the parser hit is not a malformed stream.
                let cause = if why == Invalid::TooLarge {
                    Uninspectable::ParserLimit
                } else {
                    Uninspectable::ParserInvalid
                };
                InspectEvent::blind(cause, why.as_str())
            }
        }
    }

    /// Feeds the parser through the direction's carry. `Some(next_tx)` when the proxy
    /// accepted a `CONNECT` on the way: the carries hold the tunnelled connection's first
    /// bytes, and its transactions count from `next_tx`.
    fn feed_parser(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
        budget: &mut CarryBudget,
    ) -> Result<Option<u32>, Stop> {
        let base = self.tx_base;
        let Phase::Parsing(parser) = &mut self.phase else {
            return Ok(None);
        };
        let Some(carry) = self.carry.get_mut(ix(dir)) else {
            return Ok(None);
        };
        if self.udp {
            // A datagram is a whole message: whatever the parser left is not the start of
            // the next one.
            return parser
                .drive(dir, data, sink, base)
                .map(|_| None)
                .map_err(Stop::Invalid);
        }
        let mut switched = None;
        carry.push_until(data, budget, |d| {
            parser.drive(dir, d, sink, base).map(|(consumed, s)| {
                switched = s;
                // After a hand-over the rest is the next reader's: it is fed again to it
                // below, so it only has to fit under that one's limit.
                let max = match s {
                    Some(_) => usize::MAX,
                    None => parser.as_dyn().max_carry(),
                };
                (consumed, max)
            })
        })?;
        match switched {
            Some(Handover::H2c(tx)) => {
                self.hand_over(tx, sink);
                self.refeed(other(dir), sink, budget)?;
                self.refeed(dir, sink, budget)?;
                Ok(None)
            }
            Some(Handover::Connect(next_tx)) => Ok(Some(next_tx)),
            None => Ok(None),
        }
    }

    /// The HTTP/1 parser saw the server accept `Upgrade: h2c` for request `tx`: HTTP/2 reads
    /// the rest of the connection.
    fn hand_over(&mut self, tx: u32, sink: &mut dyn FactSink) {
        let next = Parser::Dyn(Box::new(Http2Parser::after_upgrade_from(tx)));
        if let Phase::Parsing(mut old) = std::mem::replace(&mut self.phase, Phase::Parsing(next)) {
            // Requests still waiting in HTTP/1 (none with a conforming client, which waits
            // for the 101) are reported unanswered rather than forgotten.
            old.end(sink, self.tx_base);
        }
    }

    /// The proxy accepted a `CONNECT`: what follows is the tunnelled connection, read from
    /// its first byte as a connection of its own (detected afresh, then parsed), its
    /// transactions numbered from `next_tx` of the parser that saw the `CONNECT`.
    fn enter_tunnel(
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

    /// Feeds what the carry of `dir` holds to the current parser.
    fn refeed(
        &mut self,
        dir: Direction,
        sink: &mut dyn FactSink,
        budget: &mut CarryBudget,
    ) -> Result<(), Stop> {
        let Phase::Parsing(parser) = &mut self.phase else {
            return Ok(());
        };
        let Some(carry) = self.carry.get_mut(ix(dir)) else {
            return Ok(());
        };
        let max = parser.as_dyn().max_carry();
        let base = self.tx_base;
        carry.refeed(max, budget, |d| {
            parser
                .drive(dir, d, sink, base)
                .map(|(consumed, _)| consumed)
        })
    }
}

#[cfg(test)]
mod tests;
