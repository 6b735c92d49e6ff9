//! Inspection: the seam between reassembled bytes and protocol parsers.
//!
//! Per flow, [`FlowInspector`] first detects the application protocol from the first bytes
//! of each direction (never from the port), then hands the stream to the parser that the
//! [`ParserRegistry`] makes for that protocol, through the one streaming contract of
//! `proto_parsers::contract`. Bytes a parser has not consumed are kept in a bounded carry
//! buffer per direction and fed again with what arrives next.

use proto_parsers::contract::{FactSink, Progress, StreamParser};
use proto_parsers::detect::{self, Detection};
use proto_parsers::{AppProto, Direction};

use std::sync::Arc;

use crate::reassembly::Chunk;

/// Bytes kept per direction while detection needs more. Real protocols decide within a few
/// dozen bytes; a peer that dribbles more than this without deciding is opaque.
pub const DETECT_BUF: usize = 256;
/// Most bytes a parser may leave unconsumed (one message head) per direction.
pub const CARRY_CAP: usize = 64 * 1024;

/// Builds one parser for one flow; told the transport, since some protocols (DNS) frame
/// messages differently over UDP and TCP.
pub type ParserFactory = Arc<dyn Fn(detect::Transport) -> Box<dyn StreamParser> + Send + Sync>;

/// Makes a parser for a detected protocol. Parsers register here as their issues land.
/// Cloned into each worker; the factories are shared.
#[derive(Clone)]
pub struct ParserRegistry {
    factories: Vec<(AppProto, ParserFactory)>,
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
        use proto_parsers::{dns, http1, http2, mysql, postgres, redis, tls};
        let mut r = Self::empty();
        r.register(
            AppProto::Http,
            Arc::new(|_| Box::new(http1::Http1Parser::default())),
        );
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

    pub fn register(&mut self, app: AppProto, make: ParserFactory) {
        self.factories.retain(|(a, _)| *a != app);
        self.factories.push((app, make));
    }

    pub fn make(
        &self,
        app: AppProto,
        transport: detect::Transport,
    ) -> Option<Box<dyn StreamParser>> {
        self.factories
            .iter()
            .find(|(a, _)| *a == app)
            .map(|(_, f)| f(transport))
    }
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

/// What a chunk changed, for the pipeline to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectEvent {
    Nothing,
    /// The protocol is now known (possibly `Tcp`/`Udp` = unrecognised).
    Detected(AppProto),
    /// The parser rejected the stream or a limit was hit; inspection of this flow stopped.
    Opaque(&'static str),
}

enum Phase {
    Detecting,
    Parsing(Box<dyn StreamParser>),
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
    carry: [Vec<u8>; 2],
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
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
            carry: [Vec::new(), Vec::new()],
        }
    }

    pub fn app(&self) -> Option<AppProto> {
        self.app
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

    /// Feeds one reassembled chunk of direction `dir`.
    pub fn on_chunk(
        &mut self,
        dir: Direction,
        chunk: Chunk<'_>,
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
    ) -> InspectEvent {
        match chunk {
            Chunk::Gap(len) => self.on_gap(dir, len, counters),
            Chunk::Data(data) => self.on_data(dir, data, registry, sink, counters),
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, counters: &mut InspectCounters) -> InspectEvent {
        match &mut self.phase {
            Phase::Detecting => {
                // The first bytes are lost: detection from the start is impossible.
                counters.gaps_before_detection += 1;
                let app = self.fallback();
                self.finish_detection(app);
                InspectEvent::Detected(app)
            }
            Phase::Parsing(p) => {
                if let Some(c) = self.carry.get_mut(ix(dir)) {
                    c.clear();
                }
                if p.gap(dir, len) {
                    InspectEvent::Nothing
                } else {
                    self.stop();
                    InspectEvent::Opaque("gap")
                }
            }
            Phase::Done => InspectEvent::Nothing,
        }
    }

    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
    ) -> InspectEvent {
        if data.is_empty() {
            return InspectEvent::Nothing;
        }
        let mut event = InspectEvent::Nothing;
        if let Phase::Detecting = self.phase {
            match self.detect(dir, data, counters) {
                Some(app) => {
                    counters.detected += u64::from(!matches!(app, AppProto::Tcp | AppProto::Udp));
                    let buffered = std::mem::take(&mut self.detect_buf);
                    self.finish_detection(app);
                    if let Some(p) = registry.make(app, self.transport()) {
                        self.phase = Phase::Parsing(p);
                        // Feed everything buffered for detection, in order, before `data`.
                        for d in [Direction::ToServer, Direction::ToClient] {
                            let Some(b) = buffered.get(ix(d)) else {
                                continue;
                            };
                            if !b.is_empty()
                                && d != dir
                                && let Some(ev) = self.feed(d, b, sink, counters)
                            {
                                return ev;
                            }
                        }
                        if let Some(b) = buffered.get(ix(dir))
                            && !b.is_empty()
                        {
                            let mut all = b.clone();
                            all.extend_from_slice(data);
                            return self
                                .feed(dir, &all, sink, counters)
                                .unwrap_or(InspectEvent::Detected(app));
                        }
                    }
                    event = InspectEvent::Detected(app);
                }
                None => return InspectEvent::Nothing,
            }
        }
        if let Phase::Parsing(_) = self.phase
            && let Some(ev) = self.feed(dir, data, sink, counters)
        {
            return ev;
        }
        event
    }

    /// Runs detection for `dir`; `Some(app)` once the flow's protocol is decided.
    fn detect(
        &mut self,
        dir: Direction,
        data: &[u8],
        counters: &mut InspectCounters,
    ) -> Option<AppProto> {
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
            Detection::Proto(app) => Some(app),
            Detection::NeedMore => {
                if buf.is_empty() {
                    buf.extend_from_slice(
                        data.get(..DETECT_BUF.min(data.len())).unwrap_or_default(),
                    );
                }
                if buf.len() >= DETECT_BUF {
                    counters.detect_overflow += 1;
                    self.mark_unknown(i)
                } else {
                    None
                }
            }
            Detection::Unknown => self.mark_unknown(i),
        }
    }

    /// A direction gave up. For UDP each datagram stands alone, so one unknown decides; for
    /// TCP the other direction may still recognise the protocol (a server that speaks first).
    fn mark_unknown(&mut self, i: usize) -> Option<AppProto> {
        if let Some(u) = self.unknown.get_mut(i) {
            *u = true;
        }
        if self.udp || self.unknown == [true, true] {
            Some(self.fallback())
        } else {
            None
        }
    }

    /// Called when the flow ends while still detecting: what we know is all there is.
    pub fn end(
        &mut self,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
    ) -> Option<AppProto> {
        let newly = if self.app.is_none() {
            let app = self.fallback();
            counters.undetected += 1;
            self.finish_detection(app);
            Some(app)
        } else {
            None
        };
        if let Phase::Parsing(p) = &mut self.phase {
            p.end(sink);
        }
        self.stop();
        newly
    }

    fn finish_detection(&mut self, app: AppProto) {
        self.app = Some(app);
        self.detect_buf = [Vec::new(), Vec::new()];
        self.phase = Phase::Done;
    }

    fn stop(&mut self) {
        self.phase = Phase::Done;
        self.carry = [Vec::new(), Vec::new()];
    }

    /// Feeds a parser, keeping unconsumed bytes in the bounded carry buffer.
    fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
    ) -> Option<InspectEvent> {
        let Phase::Parsing(parser) = &mut self.phase else {
            return None;
        };
        let carry = self.carry.get_mut(ix(dir))?;
        let result = if self.udp {
            // A datagram is a whole message: whatever the parser left is not the start of
            // the next one.
            drive(parser.as_mut(), dir, data, sink).map(|_| ())
        } else if carry.is_empty() {
            let r = drive(parser.as_mut(), dir, data, sink);
            if let Ok(consumed) = r {
                let rest = data.get(consumed..).unwrap_or_default();
                if rest.len() > CARRY_CAP {
                    Err("carry_overflow")
                } else {
                    carry.extend_from_slice(rest);
                    Ok(())
                }
            } else {
                r.map(|_| ())
            }
        } else if carry.len() + data.len() > CARRY_CAP {
            Err("carry_overflow")
        } else {
            carry.extend_from_slice(data);
            let r = drive(parser.as_mut(), dir, carry, sink);
            if let Ok(consumed) = r {
                carry.drain(..consumed.min(carry.len()));
            }
            r.map(|_| ())
        };
        match result {
            Ok(()) => None,
            Err(why) => {
                if why == "carry_overflow" {
                    counters.carry_overflow += 1;
                } else {
                    counters.parser_invalid += 1;
                }
                self.stop();
                Some(InspectEvent::Opaque(why))
            }
        }
    }
}

/// Feeds `data` until the parser needs more; returns how much it consumed in all.
fn drive(
    p: &mut dyn StreamParser,
    dir: Direction,
    data: &[u8],
    sink: &mut dyn FactSink,
) -> Result<usize, &'static str> {
    let mut off = 0usize;
    loop {
        let rest = data.get(off..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(off);
        }
        match p.feed(dir, rest, sink) {
            Progress::Done { consumed } if consumed > 0 => off += consumed.min(rest.len()),
            Progress::Done { .. } => return Ok(off),
            Progress::NeedMore { consumed } => return Ok(off + consumed.min(rest.len())),
            Progress::Invalid(_) => return Err("parser_invalid"),
        }
    }
}

#[cfg(test)]
mod tests;
