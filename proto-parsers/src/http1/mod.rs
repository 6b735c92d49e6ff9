//! HTTP/1.x request/response parser (RFC 9112), both directions of one connection.
//!
//! # Heads
//!
//! A message head is read as leniently, and as far, as the most permissive of the servers
//! this stands in front of (nginx, Envoy, Go's net/http, Node, Apache), so that an attacker
//! cannot send a request the server acts on but the parser refuses or cannot see whole:
//!
//! * up to [`MAX_HEAD`] bytes of head (Go's default, 1 MiB + 4 KiB) with any number of
//!   header fields, and [`StreamParser::max_carry`] lets the caller carry that much;
//! * any number of empty lines (CRLF, LF or stray CR) before a request line;
//! * bare LF line ends anywhere in a head;
//! * runs of spaces and tabs between the parts of a request or status line, trailing
//!   whitespace after the version, any minor version of HTTP/1 (`HTTP/1.2` is read as 1.1,
//!   as nginx and Go do);
//! * any token as method (`PROPFIND`, `FOO`, lower-case `get`: Go serves them).
//!
//! Heads are parsed in two ways. The fast path is `httparse` over the bytes as they are, with
//! a stack array of [`STACK_HEADERS`] fields: a small head that arrives whole costs one
//! `httparse` pass and no allocation. Otherwise the end of the head is searched for
//! incrementally: the caller keeps the unfinished head in its carry and feeds it again from
//! its first byte as more arrives (`NeedMore { consumed: 0 }`), and the parser remembers
//! how far it has searched ([`Scan`], a few lengths), so a 1 MiB head that arrives in 1 KiB
//! segments is searched once, not a thousand times. The start line is checked as soon as it
//! is complete, so bytes that cannot be HTTP are refused without waiting for a head's end.
//! Once the end is there the head is parsed once: by `httparse` again, or, when that refuses
//! (tabs as delimiters, more fields than the stack array, `HTTP/1.2`, a malformed field
//! line), by this module's own line parser, which accepts a superset of what `httparse`
//! accepts and splits what both accept identically (a test checks this on every head).
//!
//! Bodies are never buffered: `Content-Length` and chunked bodies are counted down as they
//! pass (chunk-size lines and trailers are read line by line), close-delimited response
//! bodies and tunnels swallow the rest of the stream.
//!
//! # Pairing
//!
//! Requests are reported the moment their head is complete, responses likewise; they pair
//! through a queue of outstanding requests (keep-alive and pipelining), which also remembers
//! what framing each response needs (`HEAD`, `CONNECT`, `Upgrade`). Every request is
//! reported, whatever the pipeline depth: past [`MAX_PENDING`] outstanding requests the
//! oldest one's pairing is given up ([`ParserAnomaly::TooManyTransactions`], which does not
//! blind, and [`Fact::Unanswered`] for it); its response is still framed and skipped in
//! turn. Interim `1xx` responses (`100 Continue`) are skipped: the final response answers
//! the request.
//!
//! # Ambiguity
//!
//! Framing follows RFC 9112 section 6.3. Where implementations read the same bytes as
//! different requests (request smuggling), the parser does not guess: it reports
//! [`ParserAnomaly::Ambiguous`], which blinds the inspector (the policy's uninspectable
//! decision applies). That is `Content-Length` together with `Transfer-Encoding` (the latter
//! wins), differing or malformed `Content-Length`s (fatal),
//! a request whose transfer coding does not end in `chunked` (fatal), `Transfer-Encoding`
//! in an HTTP/1.0 message, more than one `Host`, a bare LF after chunk data, and header
//! field lines that are not RFC 9112 field lines (see [`Field`]: obsolete line folding,
//! whitespace before the colon, a name that is not a token, control bytes). Servers split
//! on those: some refuse the request (400), some skip the line and serve it, some unfold a
//! folded line into the field before it or take a field whose name has whitespace, so the
//! request one of them acts on is not the one another acts on. The request is reported
//! with the fields that could be read (it is judged and logged). Where its end is not
//! known (a fatal case above), no more requests are read; responses still are, so the
//! server's answer (often `400`) is paired with it and logged.
//! What every server accepts the same way (bare LF line ends, identical repeated
//! `Content-Length`s) is not ambiguous.
//!
//! # Protocol switches
//!
//! After a request carrying `Upgrade` (HTTP/1.1) or a `CONNECT`, the request side waits
//! (answers `Done { consumed: 0 }`, leaving the bytes in the caller's carry) until the
//! response says whether the switch happened. Two switches hand the connection over:
//! a `101` to `h2c` ([`Switch::H2c`]: HTTP/2 follows) and a `2xx` to `CONNECT`
//! ([`Switch::Connect`]: the bytes that follow are another connection's, from its start,
//! which the caller detects and reads as such). The contract's
//! [`StreamParser::handover`] then says which, with the transaction ids the next reader
//! needs ([`Handover`]; [`Http1Parser::switched`] says it without them), and the parser
//! consumes nothing more in either direction, so the caller can feed its carry to the next
//! parser. Any other `101` (WebSocket...) makes the flow a tunnel:
//! [`Fact::Opaque`] with [`OpaqueReason::Tunnel`], and every later byte is consumed unread.
//! A refused switch resumes HTTP/1 on both sides.
//!
//! # Gaps
//!
//! Bytes lost to a reassembly gap ([`StreamParser::gap`]) are skipped exactly when they lie
//! inside a body being counted down (`Content-Length`, chunk data), a close-delimited
//! response body or a tunnel ([`GapOutcome::Skipped`]). Anywhere else (a head, a chunk-size
//! line, trailers, a gap longer than the body it starts in) the side resynchronises
//! ([`GapOutcome::Resync`]): it discards bytes up to a line that starts a message head it
//! would accept, that is a start line [`request_line`] (request side) or [`status_line`]
//! (response side) reads, with the same leniency as always, followed by an empty line or a
//! well-formed field line. The byte right after the gap counts as a line start (a lost
//! packet often ends at a message boundary). What comes before such a line is consumed
//! unread; a candidate cut off by the end of the data waits in the caller's carry, and no
//! line is waited for past [`MAX_HEAD`] bytes, so a stream of junk is consumed as it comes.
//! Body text that happens to hold such a pair of lines is read as a message (as Suricata
//! does): after a gap in the client's bytes the data plane leaves the flow to the policy's
//! uninspectable decision anyway, since the lost bytes may have held requests.
//!
//! A resync on the response side leaves the pairing uncertain: responses were lost, and
//! whatever requests were lost with a request-side gap will have responses that pair with
//! nothing. The next final response found answers the most recent request still waiting,
//! and the older ones are reported [`Fact::Unanswered`]: a client that waits for each
//! response (every browser and curl; pipelining is rare) has only the newest request
//! outstanding when that response comes, so this pairs it right and keeps every later
//! response in step, where pairing it with the oldest would shift the pairing of all the
//! rest of the connection by one. A pipelining client may see a response paired with a
//! newer request than the one it answers. A response with no request waiting at all (its
//! request was lost in a gap on the client's side, or the reassembler has not yet given up
//! on the hole that holds it) is [`ParserAnomaly::UnsolicitedResponse`], and since its
//! framing depends on a request nobody saw (`HEAD` has no body whatever its length says),
//! the response side then looks for the next status line the same way instead of counting
//! its body.
//!
//! A gap while the request side waits for the answer to an `Upgrade` or `CONNECT` (in
//! either direction, or in the body of such a request past its end) gives up
//! ([`GapOutcome::GiveUp`]): whether the connection switched protocols is lost with it.
//!
//! [`Field`]: lines::Field
//! [`OpaqueReason::Tunnel`]: crate::contract::OpaqueReason::Tunnel
//! [`request_line`]: lines::request_line
//! [`status_line`]: lines::status_line

mod body;
mod head;
mod hunt;
mod lines;
mod pairing;
mod scan;

use crate::contract::{
    Fact, FactSink, GapOutcome, Handover, Invalid, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{Header, HttpVersion};
use crate::{AppProto, Direction};

use crate::pending::PendingQueue;
use body::{chunk_size_line, count_down, trailer_line};
use hunt::{Hunt, Hunted, hunt};
use lines::{check_request_line, check_status_line};
use pairing::Pending;
use scan::Scan;

/// Most bytes of one message head (empty lines before it, start line and header fields), or
/// of one trailer line: Go's `DefaultMaxHeaderBytes` (1 MiB) plus the 4 KiB it allows on
/// top, the most any of the servers in front of which this runs accepts by default.
pub const MAX_HEAD: usize = (1 << 20) + 4096;
/// Header fields the fast path parses into a stack array; a head with more is parsed again
/// into the parser's heap list (no limit on the count but [`MAX_HEAD`]).
pub const STACK_HEADERS: usize = 64;
/// Most requests waiting for their response whose pairing is kept (pipelining). Deeper
/// pipelines are read and reported all the same; see the module documentation.
pub const MAX_PENDING: usize = 4096;
/// Longest `summary` (the start line as sent).
pub const MAX_SUMMARY: usize = 256;
/// Longest chunk-size line, extensions included (Go's chunked reader's limit).
pub const MAX_CHUNK_LINE: usize = 4096;
/// A header list longer than this is freed after its head, not kept for the next one.
const KEEP_FIELDS: usize = 256;

const APP: AppProto = AppProto::Http;

/// Where one direction is in its message stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Expecting a message head.
    Head,
    /// Counting down a `Content-Length` body.
    Fixed(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Counting down the data of one chunk.
    ChunkData(u64),
    /// Expecting the CRLF that ends a chunk's data.
    ChunkEnd,
    /// Reading trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// A response body delimited by the end of the connection.
    UntilClose,
    /// Request side: an `Upgrade` or `CONNECT` request waits for its response.
    Await,
    /// Both sides: a tunnel this parser does not follow (WebSocket); everything is
    /// consumed unread.
    Tunnel,
    /// Both sides: handed over ([`Switch`]); nothing is consumed (the caller switches
    /// parsers).
    Handover,
    /// After a gap: discarding bytes up to the next message head (see "Gaps" above).
    Hunt,
    /// Request side, after an ambiguous request (see "Ambiguity" above): where its body
    /// ends is unknown, so nothing more is read as requests; responses are still read, so
    /// that the server's answer (often a `400`) is paired and logged.
    Discard,
}

#[derive(Clone, Copy, Debug)]
struct Side {
    phase: Phase,
    /// The message being read is an `Upgrade`/`CONNECT` request: wait after its body.
    await_after_body: bool,
    /// A gap was skipped inside a body; reported as an anomaly on the next feed.
    resynced: bool,
    /// How far the unfinished head (or trailer line) was searched for its end.
    scan: Scan,
    /// Where the search for the next head after a gap is ([`Phase::Hunt`]).
    hunt: Hunt,
}

impl Side {
    const fn new() -> Self {
        Side {
            phase: Phase::Head,
            await_after_body: false,
            resynced: false,
            scan: Scan::new(),
            hunt: Hunt::after_gap(),
        }
    }

    /// Drops the message in progress and looks for the next head.
    fn start_hunt(&mut self) {
        self.phase = Phase::Hunt;
        self.await_after_body = false;
        self.resynced = true;
        self.scan = Scan::new();
        self.hunt = Hunt::after_gap();
    }

    fn body_done(&mut self) {
        self.phase = if self.await_after_body {
            Phase::Await
        } else {
            Phase::Head
        };
        self.await_after_body = false;
    }

    fn start_body(&mut self, body: Body) {
        match body {
            Body::None | Body::Fixed(0) => self.body_done(),
            Body::Fixed(n) => self.phase = Phase::Fixed(n),
            Body::Chunked => self.phase = Phase::ChunkSize,
            Body::UntilClose => self.phase = Phase::UntilClose,
        }
    }
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    None,
    Fixed(u64),
    Chunked,
    UntilClose,
}

/// The outcome of one parsing step inside [`Http1Parser::feed`].
enum Step {
    Consumed(usize),
    NeedMore,
    /// Stop feeding this direction for now (waiting, or handed over).
    Stop,
    Invalid(Invalid),
}

/// A request head as read, by either path.
struct RequestHead<'a> {
    /// The whole head, empty lines before it and the closing empty line included.
    raw: &'a [u8],
    method: &'a [u8],
    path: &'a [u8],
    version: HttpVersion,
    /// Some field line was not a field line (see [`field_line`]).
    ///
    /// [`field_line`]: lines::field_line
    malformed: bool,
}

/// A response head as read, by either path.
struct ResponseHead<'a> {
    raw: &'a [u8],
    version: HttpVersion,
    status: u16,
    malformed: bool,
}

/// A hand-over of the connection that the server accepted ([`Http1Parser::switched`]); the
/// contract's [`Handover`] ([`StreamParser::handover`]) says the same with transaction ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// `101 Switching Protocols` to `h2c`: HTTP/2 reads the rest, the upgrade request being
    /// its stream 1.
    H2c,
    /// A `2xx` to `CONNECT`: the bytes that follow are a tunnelled connection's, from its
    /// first byte (a TLS ClientHello, an HTTP request...).
    Connect,
}

/// The HTTP/1.x parser of one connection.
#[derive(Debug)]
pub struct Http1Parser {
    req: Side,
    resp: Side,
    pending: PendingQueue<Pending>,
    next_id: u32,
    /// The hand-over the server accepted, if any (see "Protocol switches" above).
    handover: Option<Handover>,
    /// The header list of the request being reported, empty between heads: its
    /// allocation is reused (see [`recycle`]) so that a head costs no 2 KB array to fill.
    ///
    /// [`recycle`]: head::recycle
    fields: Vec<Header<'static>>,
    /// The response side resynchronised after a gap: the next final response answers the
    /// newest waiting request (see "Gaps" above).
    repair: bool,
}

impl Default for Http1Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1Parser {
    pub fn new() -> Self {
        Http1Parser {
            req: Side::new(),
            resp: Side::new(),
            pending: pairing::queue(),
            next_id: 0,
            handover: None,
            fields: Vec::new(),
            repair: false,
        }
    }

    /// The protocol the connection switched to, once a `101 Switching Protocols` to `h2c`
    /// was seen. From then on this parser consumes nothing: the caller should hand both
    /// directions' unconsumed bytes to a parser for the returned protocol.
    pub fn upgraded_to(&self) -> Option<AppProto> {
        (self.switched() == Some(Switch::H2c)).then_some(AppProto::Http2)
    }

    /// The hand-over the server accepted, if any: from then on this parser consumes
    /// nothing, and both directions' unconsumed bytes belong to what follows.
    pub fn switched(&self) -> Option<Switch> {
        self.handover.map(|h| match h {
            Handover::Http2 { .. } => Switch::H2c,
            Handover::Tunnel { .. } => Switch::Connect,
        })
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::ToServer => &mut self.req,
            Direction::ToClient => &mut self.resp,
        }
    }

    fn step(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Step {
        match self.side(dir).phase {
            Phase::Head => match dir {
                Direction::ToServer => self.request_head(data, sink),
                Direction::ToClient => self.response_head(data, sink),
            },
            Phase::Fixed(n) => {
                let (took, left) = count_down(n, data.len());
                let side = self.side(dir);
                if left == 0 {
                    side.body_done();
                } else {
                    side.phase = Phase::Fixed(left);
                }
                Step::Consumed(took)
            }
            Phase::ChunkSize => chunk_size_line(self.side(dir), data, sink),
            Phase::ChunkData(n) => {
                let (took, left) = count_down(n, data.len());
                self.side(dir).phase = if left == 0 {
                    Phase::ChunkEnd
                } else {
                    Phase::ChunkData(left)
                };
                Step::Consumed(took)
            }
            Phase::ChunkEnd => match data {
                [b'\r', b'\n', ..] => {
                    self.side(dir).phase = Phase::ChunkSize;
                    Step::Consumed(2)
                }
                [b'\r'] => Step::NeedMore,
                [b'\n', ..] => {
                    // nginx takes a bare LF here, Go refuses the body ("malformed chunked
                    // encoding").
                    sink.anomaly(ParserAnomaly::Ambiguous);
                    self.side(dir).phase = Phase::ChunkSize;
                    Step::Consumed(1)
                }
                _ => {
                    sink.anomaly(ParserAnomaly::BadFraming);
                    Step::Invalid(Invalid::BadLength)
                }
            },
            Phase::Trailers => trailer_line(self.side(dir), data, sink),
            Phase::UntilClose | Phase::Tunnel | Phase::Discard => Step::Consumed(data.len()),
            Phase::Await | Phase::Handover => Step::Stop,
            Phase::Hunt => {
                let start_line = match dir {
                    Direction::ToServer => check_request_line,
                    Direction::ToClient => check_status_line,
                };
                let side = self.side(dir);
                match hunt(&mut side.hunt, data, start_line) {
                    Hunted::Skip(n) => Step::Consumed(n),
                    Hunted::More => Step::NeedMore,
                    Hunted::Found => {
                        side.phase = Phase::Head;
                        side.scan = Scan::new();
                        Step::Consumed(0)
                    }
                }
            }
        }
    }
}

impl StreamParser for Http1Parser {
    fn proto(&self) -> AppProto {
        APP
    }

    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let side = self.side(dir);
        if side.resynced {
            side.resynced = false;
            sink.anomaly(ParserAnomaly::Resync);
        }
        let mut off = 0usize;
        loop {
            let rest = data.get(off..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: off };
            }
            match self.step(dir, rest, sink) {
                Step::Consumed(n) => off += n.min(rest.len()),
                Step::NeedMore => return Progress::NeedMore { consumed: off },
                Step::Stop => return Progress::Done { consumed: off },
                Step::Invalid(why) => return Progress::Invalid(why),
            }
        }
    }

    /// See "Gaps" in the module documentation.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        let len = u64::from(len);
        // Whether a switch of protocols is still to be decided by a response.
        let switch_pending = self.req.phase == Phase::Await
            || self.req.await_after_body
            || self.pending.back().is_some_and(|p| p.connect || p.upgrade);
        let side = self.side(dir);
        // The caller dropped its carry: whatever a scan knew of it is gone too.
        side.scan = Scan::new();
        match side.phase {
            Phase::Fixed(n) if len <= n => {
                if n == len {
                    side.body_done();
                } else {
                    side.phase = Phase::Fixed(n - len);
                }
            }
            Phase::ChunkData(n) if len <= n => {
                side.phase = if n == len {
                    Phase::ChunkEnd
                } else {
                    Phase::ChunkData(n - len)
                };
            }
            Phase::UntilClose => {}
            Phase::Tunnel | Phase::Discard => return GapOutcome::Skipped,
            // The parser is being replaced (h2c, CONNECT): nothing more is its to read.
            Phase::Handover => return GapOutcome::GiveUp,
            Phase::Await => return GapOutcome::GiveUp,
            Phase::Head
            | Phase::Fixed(_)
            | Phase::ChunkSize
            | Phase::ChunkData(_)
            | Phase::ChunkEnd
            | Phase::Trailers
            | Phase::Hunt => {
                if switch_pending {
                    // The bytes lost may hold the 101 (or 2xx to CONNECT), or the first
                    // bytes after the switch: nothing after them is known to be HTTP/1.
                    return GapOutcome::GiveUp;
                }
                side.start_hunt();
                if dir == Direction::ToClient {
                    self.repair = true;
                    // Responses to requests already reported unanswered may have been in
                    // the gap: which of them are still to come is unknown.
                    self.pending.forget_lost();
                }
                return GapOutcome::Resync;
            }
        }
        side.resynced = true;
        GapOutcome::Skipped
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        while let Some(p) = self.pending.pop_front() {
            if p.paired {
                sink.fact(&Fact::Unanswered { app: APP, id: p.id });
            }
        }
    }

    /// A head up to [`MAX_HEAD`] waits whole in the caller's carry.
    fn max_carry(&self) -> usize {
        MAX_HEAD
    }

    /// See "Protocol switches" in the module documentation.
    fn handover(&self) -> Option<Handover> {
        self.handover
    }
}

#[cfg(test)]
mod tests;
