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
//! which the caller detects and reads as such). [`Http1Parser::switched`] then says which,
//! and the parser consumes nothing more in either direction, so the caller can feed its
//! carry to the next parser. Any other `101` (WebSocket...) makes the flow a tunnel:
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

use crate::contract::{
    Fact, FactSink, GapOutcome, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{Header, HttpRequest, HttpResponse, HttpVersion, RequestDetail, ResponseDetail};
use crate::{AppProto, Direction};

use std::mem::MaybeUninit;

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

/// Where the search for the end of an unfinished head stopped. The caller feeds the head
/// again from its first byte each time more arrives (the contract's carry), so lengths into
/// it stay valid; they make the search resume where it stopped instead of starting over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scan {
    /// Bytes of the head already searched.
    pos: usize,
    /// Where the start line begins (after empty lines), once `stage` is past `Leading`.
    start: usize,
    stage: Stage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Skipping empty lines before the start line.
    Leading,
    /// In the start line, up to its LF.
    StartLine,
    /// In the field lines: `pos` is at or before the LF that may end the head.
    Fields,
}

impl Scan {
    const fn new() -> Self {
        Scan {
            pos: 0,
            start: 0,
            stage: Stage::Leading,
        }
    }

    const fn is_fresh(&self) -> bool {
        self.pos == 0 && matches!(self.stage, Stage::Leading)
    }
}

/// The outcome of searching a head for its end.
enum Scanned {
    /// The head is this many bytes long (its closing empty line included).
    End(usize),
    /// Not all there yet.
    More,
    /// The start line cannot be this side's.
    Bad(Invalid),
}

/// Searches `head` (the unfinished head from its first byte) for its end, from where `s`
/// stopped: empty lines (any mix of CR and LF, as nginx skips them), the start line (checked
/// by `start_line` once its LF arrives, and refused at the first control byte before that),
/// then field lines up to the first empty one.
fn scan_head(head: &[u8], s: &mut Scan, start_line: fn(&[u8]) -> Result<(), Invalid>) -> Scanned {
    if s.pos > head.len() {
        // Not the bytes this scan saw (the contract forbids it): start over.
        *s = Scan::new();
    }
    loop {
        let rest = head.get(s.pos..).unwrap_or_default();
        match s.stage {
            Stage::Leading => match rest.iter().position(|&b| b != b'\r' && b != b'\n') {
                Some(i) => {
                    s.pos += i;
                    s.start = s.pos;
                    s.stage = Stage::StartLine;
                }
                None => {
                    s.pos = head.len();
                    return Scanned::More;
                }
            },
            Stage::StartLine => match rest.iter().position(|&b| b == b'\n' || is_ctl(b)) {
                Some(i) if rest.get(i) == Some(&b'\n') => {
                    let lf = s.pos + i;
                    let line = head.get(s.start..lf).unwrap_or_default();
                    if let Err(why) = start_line(strip_cr(line)) {
                        return Scanned::Bad(why);
                    }
                    s.pos = lf;
                    s.stage = Stage::Fields;
                }
                Some(_) => return Scanned::Bad(Invalid::BadSyntax),
                None => {
                    s.pos = head.len();
                    return Scanned::More;
                }
            },
            Stage::Fields => {
                let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                    s.pos = head.len();
                    return Scanned::More;
                };
                let lf = s.pos + i;
                match (head.get(lf + 1), head.get(lf + 2)) {
                    (Some(b'\n'), _) => return Scanned::End(lf + 2),
                    (Some(b'\r'), Some(b'\n')) => return Scanned::End(lf + 3),
                    (None, _) | (Some(b'\r'), None) => {
                        s.pos = lf;
                        return Scanned::More;
                    }
                    _ => s.pos = lf + 1,
                }
            }
        }
    }
}

/// Where a side looking for the next message head after a gap is. Like [`Scan`], its
/// lengths index the unconsumed bytes, which the caller feeds again from their first byte
/// (the candidate line's start) while the candidate is incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hunt {
    /// The first unconsumed byte starts a line: right after the gap, or after an LF.
    line_start: bool,
    /// Bytes of the candidate searched for its next line end.
    pos: usize,
    /// The candidate's start line is one this side accepts and its LF is here; the line
    /// after it is awaited.
    start_lf: Option<usize>,
}

impl Hunt {
    const fn after_gap() -> Self {
        Hunt {
            line_start: true,
            pos: 0,
            start_lf: None,
        }
    }

    const fn mid_line() -> Self {
        Hunt {
            line_start: false,
            pos: 0,
            start_lf: None,
        }
    }
}

/// The outcome of one step of the search for the next head.
enum Hunted {
    /// These bytes are not (the start of) a head: consume them and go on.
    Skip(usize),
    /// A head starts at the first byte.
    Found,
    /// A candidate is incomplete: wait for more.
    More,
}

/// One step of the search for the next message head in `data` (the unconsumed bytes): a
/// line start whose line `start_line` accepts, followed by an empty line or a field line
/// [`field_line`] reads as valid (a second line that is neither is body text, not a head).
/// Every step consumes bytes or changes `h`, each byte is searched at most twice (as part
/// of a candidate's second line, then as a candidate itself), and a line is never waited
/// for past [`MAX_HEAD`] bytes.
fn hunt(h: &mut Hunt, data: &[u8], start_line: fn(&[u8]) -> Result<(), Invalid>) -> Hunted {
    let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
    if !h.line_start {
        // In the middle of a line: up to and including its LF is not a head.
        return match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                *h = Hunt::after_gap();
                Hunted::Skip(i + 1)
            }
            None => Hunted::Skip(window.len()),
        };
    }
    if h.pos > window.len() || h.start_lf.is_some_and(|lf| lf >= h.pos) {
        // Not the bytes this search saw (the contract forbids it): start over.
        *h = Hunt::after_gap();
    }
    let rest = window.get(h.pos..).unwrap_or_default();
    let Some(i) = rest.iter().position(|&b| b == b'\n' || is_ctl(b)) else {
        if window.len() >= MAX_HEAD {
            // No line this long is waited for: the first line is not a head's start.
            let skip = h.start_lf.map_or(window.len(), |lf| lf + 1);
            *h = if h.start_lf.is_some() {
                Hunt::after_gap()
            } else {
                Hunt::mid_line()
            };
            return Hunted::Skip(skip);
        }
        h.pos = window.len();
        return Hunted::More;
    };
    let at = h.pos + i;
    let is_lf = window.get(at) == Some(&b'\n');
    match h.start_lf {
        None => {
            let line = strip_cr(window.get(..at).unwrap_or_default());
            if is_lf && start_line(line).is_ok() {
                h.start_lf = Some(at);
                h.pos = at + 1;
                // The second line may be there already.
                return hunt(h, data, start_line);
            }
            // An empty line, a line that is not a start line, or a control byte (no start
            // line holds one: the rest of its line is skipped).
            *h = if is_lf {
                Hunt::after_gap()
            } else {
                Hunt::mid_line()
            };
            Hunted::Skip(at + 1)
        }
        Some(lf) => {
            let next = strip_cr(window.get(lf + 1..at).unwrap_or_default());
            let head = is_lf && (next.is_empty() || matches!(field_line(next), Field::Valid(_)));
            *h = Hunt::after_gap();
            if head {
                Hunted::Found
            } else {
                // Skip the start line only: the line after it may start a head itself.
                Hunted::Skip(lf + 1)
            }
        }
    }
}

/// A request still waiting for its final response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    id: u32,
    head: bool,
    connect: bool,
    upgrade: bool,
}

const PENDING_WORDS: usize = MAX_PENDING / 64;

/// Outstanding requests, oldest first. Their ids are consecutive (every request is queued),
/// so the queue holds the first id, a count, and one bit per request: whether it was a
/// `HEAD` (its response has no body). `CONNECT` and `Upgrade` are kept for the newest
/// request only: the request side waits after such a request until its response, so none
/// is ever queued behind one. 512 bytes for [`MAX_PENDING`] requests, no allocation.
#[derive(Debug)]
struct PendingQueue {
    heads: [u64; PENDING_WORDS],
    /// Bit index of the oldest request.
    start: usize,
    len: usize,
    /// Id of the oldest request.
    first: u32,
    tail_connect: bool,
    tail_upgrade: bool,
    /// Requests whose pairing was given up (the oldest, beyond [`MAX_PENDING`]): the next
    /// this many final responses answer them and are framed without being reported.
    forgotten: u64,
}

impl PendingQueue {
    const fn new() -> Self {
        PendingQueue {
            heads: [0; PENDING_WORDS],
            start: 0,
            len: 0,
            first: 0,
            tail_connect: false,
            tail_upgrade: false,
            forgotten: 0,
        }
    }

    fn bit(&self, at: usize) -> bool {
        self.heads
            .get(at / 64)
            .is_some_and(|w| w & (1u64 << (at % 64)) != 0)
    }

    fn set_bit(&mut self, at: usize, v: bool) {
        if let Some(w) = self.heads.get_mut(at / 64) {
            let m = 1u64 << (at % 64);
            *w = if v { *w | m } else { *w & !m };
        }
    }

    /// Queues a request; when the queue is full the oldest request is given up and returned.
    fn push(&mut self, p: Pending) -> Option<Pending> {
        let dropped = if self.len >= MAX_PENDING {
            self.forgotten = self.forgotten.saturating_add(1);
            self.pop()
        } else {
            None
        };
        if self.len == 0 {
            self.first = p.id;
        }
        let at = (self.start + self.len) % MAX_PENDING;
        self.set_bit(at, p.head);
        self.len += 1;
        self.tail_connect = p.connect;
        self.tail_upgrade = p.upgrade;
        dropped
    }

    fn pop(&mut self) -> Option<Pending> {
        if self.len == 0 {
            return None;
        }
        let last = self.len == 1;
        let p = Pending {
            id: self.first,
            head: self.bit(self.start),
            connect: last && self.tail_connect,
            upgrade: last && self.tail_upgrade,
        };
        self.start = (self.start + 1) % MAX_PENDING;
        self.len -= 1;
        self.first = self.first.wrapping_add(1);
        if last {
            self.tail_connect = false;
            self.tail_upgrade = false;
        }
        Some(p)
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
    malformed: bool,
}

/// A response head as read, by either path.
struct ResponseHead<'a> {
    raw: &'a [u8],
    version: HttpVersion,
    status: u16,
    malformed: bool,
}

/// A hand-over of the connection that the server accepted ([`Http1Parser::switched`]).
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
    pending: PendingQueue,
    next_id: u32,
    switched: Option<Switch>,
    /// The header list of the request being reported, empty between heads: its
    /// allocation is reused (see [`recycle`]) so that a head costs no 2 KB array to fill.
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

/// `httparse` set to the leniency of the servers (runs of spaces in start lines).
fn lenient() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    c
}

impl Http1Parser {
    pub const fn new() -> Self {
        Http1Parser {
            req: Side::new(),
            resp: Side::new(),
            pending: PendingQueue::new(),
            next_id: 0,
            switched: None,
            fields: Vec::new(),
            repair: false,
        }
    }

    /// The protocol the connection switched to, once a `101 Switching Protocols` to `h2c`
    /// was seen. From then on this parser consumes nothing: the caller should hand both
    /// directions' unconsumed bytes to a parser for the returned protocol.
    pub fn upgraded_to(&self) -> Option<AppProto> {
        (self.switched == Some(Switch::H2c)).then_some(AppProto::Http2)
    }

    /// The hand-over the server accepted, if any: from then on this parser consumes
    /// nothing, and both directions' unconsumed bytes belong to what follows.
    pub fn switched(&self) -> Option<Switch> {
        self.switched
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

    fn request_head(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Step {
        let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
        let fresh = self.req.scan.is_fresh();
        if fresh && let Some(step) = self.request_fast(window, sink) {
            return step;
        }
        let len = match scan_head(window, &mut self.req.scan, check_request_line) {
            Scanned::End(len) => len,
            Scanned::More => return partial_head(data.len(), sink),
            Scanned::Bad(why) => return Step::Invalid(why),
        };
        self.req.scan = Scan::new();
        let head = window.get(..len).unwrap_or(window);
        // A head that arrived in pieces has not been through httparse whole yet.
        if !fresh && let Some(step) = self.request_fast(head, sink) {
            return step;
        }
        self.request_slow(head, sink)
    }

    /// httparse over `data`: `Some` once a whole head was parsed and reported, `None` when
    /// the head is incomplete or httparse cannot read it (the scan and the slow path then
    /// take over).
    fn request_fast(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Option<Step> {
        // Left uninitialised: httparse fills only the fields it finds.
        let mut hbuf = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match lenient().parse_request_with_uninit_headers(&mut req, data, &mut hbuf) {
            Ok(httparse::Status::Complete(len)) => len,
            _ => return None,
        };
        let mut fields = recycle(std::mem::take(&mut self.fields));
        fields.reserve(req.headers.len());
        fields.extend(req.headers.iter().map(|h| Header {
            name: h.name.as_bytes(),
            value: h.value,
        }));
        let head = RequestHead {
            raw: data.get(..len).unwrap_or(data),
            method: req.method.unwrap_or_default().as_bytes(),
            path: req.path.unwrap_or_default().as_bytes(),
            version: if req.version == Some(0) {
                HttpVersion::Http10
            } else {
                HttpVersion::Http11
            },
            malformed: false,
        };
        Some(self.report_request(&head, fields, sink))
    }

    /// This module's own reading of a whole request head (see the module documentation).
    fn request_slow(&mut self, raw: &[u8], sink: &mut dyn FactSink) -> Step {
        let mut rest = skip_empty_lines(raw);
        let Some(line) = next_line(&mut rest) else {
            return Step::Invalid(Invalid::BadSyntax);
        };
        let (method, path, version) = match request_line(line) {
            Ok(parts) => parts,
            Err(why) => return Step::Invalid(why),
        };
        let mut fields = recycle(std::mem::take(&mut self.fields));
        let mut malformed = false;
        while let Some(line) = next_line(&mut rest) {
            if line.is_empty() {
                break;
            }
            match field_line(line) {
                Field::Valid(h) => fields.push(h),
                Field::Lenient(h) => {
                    malformed = true;
                    fields.push(h);
                }
                Field::Bad => malformed = true,
            }
        }
        let head = RequestHead {
            raw,
            method,
            path,
            version,
            malformed,
        };
        self.report_request(&head, fields, sink)
    }

    /// Queues and reports a request whose head was read, then sets up its body.
    fn report_request<'a>(
        &mut self,
        head: &RequestHead<'a>,
        fields: Vec<Header<'a>>,
        sink: &mut dyn FactSink,
    ) -> Step {
        let mut info = HeadInfo::default();
        for f in &fields {
            info.see(f);
        }
        if info.hosts > 1 {
            // nginx and Go refuse a second Host; others take the first or the last.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        // The server routes on the target's authority when it has one (CONNECT, an
        // absolute-form target), whatever `Host` says: that is the authority judged.
        let target = crate::http::target_authority(head.method, head.path);
        if let (Some(t), Some(h)) = (target, info.host)
            && !crate::http::authority_host(t).eq_ignore_ascii_case(crate::http::authority_host(h))
        {
            // A Host that names another server than the target (libhtp's "host header
            // ambiguous"): servers and proxies differ on which one they act on.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        let body = if head.malformed {
            // Where this message ends is not known: the parser stops after reporting it.
            sink.anomaly(ParserAnomaly::Ambiguous);
            Err(Invalid::BadSyntax)
        } else {
            request_body(&info, head.version, sink)
        };
        let pending = Pending {
            id: self.next_id,
            head: head.method == b"HEAD",
            connect: head.method == b"CONNECT",
            upgrade: info.upgrade.is_some() && head.version == HttpVersion::Http11,
        };
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(old) = self.pending.push(pending) {
            // Every request is reported; only the pairing of the oldest is given up.
            sink.anomaly(ParserAnomaly::TooManyTransactions);
            sink.fact(&Fact::Unanswered {
                app: APP,
                id: old.id,
            });
            if old.head {
                // Its response has no body, which nothing will tell when it comes.
                sink.anomaly(ParserAnomaly::BadFraming);
            }
        }
        sink.fact(&Fact::Transaction {
            app: APP,
            id: pending.id,
            summary: summary(head.raw),
            detail: RequestDetail::Http(HttpRequest {
                version: head.version,
                method: head.method,
                path: head.path,
                authority: target.or(info.host),
                user_agent: info.user_agent,
                content_type: info.content_type,
                headers: &fields,
            }),
        });
        self.fields = keep(recycle(fields));
        let body = match body {
            Ok(b) => b,
            Err(_) => {
                // The Ambiguous anomaly reported above blinds the flow; the responses
                // still say how the server took it.
                self.req.phase = Phase::Discard;
                return Step::Consumed(head.raw.len());
            }
        };
        self.req.await_after_body = pending.connect || pending.upgrade;
        self.req.start_body(body);
        Step::Consumed(head.raw.len())
    }

    fn response_head(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Step {
        let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
        let fresh = self.resp.scan.is_fresh();
        if fresh && let Some(step) = self.response_fast(window, sink) {
            return step;
        }
        let len = match scan_head(window, &mut self.resp.scan, check_status_line) {
            Scanned::End(len) => len,
            Scanned::More => return partial_head(data.len(), sink),
            Scanned::Bad(why) => return Step::Invalid(why),
        };
        self.resp.scan = Scan::new();
        let head = window.get(..len).unwrap_or(window);
        if !fresh && let Some(step) = self.response_fast(head, sink) {
            return step;
        }
        self.response_slow(head, sink)
    }

    fn response_fast(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Option<Step> {
        let mut hbuf = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let len = match lenient().parse_response_with_uninit_headers(&mut resp, data, &mut hbuf) {
            Ok(httparse::Status::Complete(len)) => len,
            _ => return None,
        };
        let mut info = HeadInfo::default();
        for h in resp.headers.iter() {
            info.see(&Header {
                name: h.name.as_bytes(),
                value: h.value,
            });
        }
        let head = ResponseHead {
            raw: data.get(..len).unwrap_or(data),
            version: if resp.version == Some(0) {
                HttpVersion::Http10
            } else {
                HttpVersion::Http11
            },
            status: resp.code.unwrap_or(0),
            malformed: false,
        };
        Some(self.report_response(&head, &info, sink))
    }

    fn response_slow(&mut self, raw: &[u8], sink: &mut dyn FactSink) -> Step {
        let mut rest = skip_empty_lines(raw);
        let Some(line) = next_line(&mut rest) else {
            return Step::Invalid(Invalid::BadSyntax);
        };
        let (version, status) = match status_line(line) {
            Ok(parts) => parts,
            Err(why) => return Step::Invalid(why),
        };
        let mut info = HeadInfo::default();
        let mut malformed = false;
        while let Some(line) = next_line(&mut rest) {
            if line.is_empty() {
                break;
            }
            match field_line(line) {
                Field::Valid(h) => info.see(&h),
                Field::Lenient(h) => {
                    malformed = true;
                    info.see(&h);
                }
                Field::Bad => malformed = true,
            }
        }
        let head = ResponseHead {
            raw,
            version,
            status,
            malformed,
        };
        self.report_response(&head, &info, sink)
    }

    fn report_response(
        &mut self,
        head: &ResponseHead<'_>,
        info: &HeadInfo<'_>,
        sink: &mut dyn FactSink,
    ) -> Step {
        let (status, len) = (head.status, head.raw.len());
        if (100..200).contains(&status) && status != 101 {
            if head.malformed {
                sink.anomaly(ParserAnomaly::Ambiguous);
                return Step::Invalid(Invalid::BadSyntax);
            }
            // Interim (100 Continue, 103 Early Hints): the final response is still to come.
            return Step::Consumed(len);
        }
        if std::mem::take(&mut self.repair) {
            // After a gap in the responses: the older waiting requests' responses were lost
            // (or will pair with nothing), this one answers the newest.
            while self.pending.len > 1 {
                if let Some(old) = self.pending.pop() {
                    sink.fact(&Fact::Unanswered {
                        app: APP,
                        id: old.id,
                    });
                }
            }
        }
        let mut unsolicited = false;
        let request = if self.pending.forgotten > 0 {
            // It answers a request whose pairing was given up (already reported unanswered).
            self.pending.forgotten -= 1;
            None
        } else {
            let request = self.pending.pop();
            match request {
                Some(r) => sink.fact(&Fact::Response {
                    app: APP,
                    id: r.id,
                    status: Some(u32::from(status)),
                    summary: summary(head.raw),
                    detail: ResponseDetail::Http(HttpResponse {
                        status,
                        content_type: info.content_type,
                    }),
                }),
                None => {
                    sink.anomaly(ParserAnomaly::UnsolicitedResponse);
                    unsolicited = true;
                }
            }
            request
        };
        if head.malformed {
            sink.anomaly(ParserAnomaly::Ambiguous);
            return Step::Invalid(Invalid::BadSyntax);
        }
        let request = request.unwrap_or_default();
        let connect = request.connect && (200..300).contains(&status);
        if status == 101 || connect {
            let h2c = status == 101 && info.upgrade.is_some_and(|u| has_token(u, b"h2c"));
            let phase = if h2c || connect {
                self.switched = Some(if h2c { Switch::H2c } else { Switch::Connect });
                Phase::Handover
            } else {
                sink.fact(&Fact::Opaque {
                    app: APP,
                    reason: OpaqueReason::Tunnel,
                });
                Phase::Tunnel
            };
            self.req.phase = phase;
            self.req.await_after_body = false;
            self.resp.phase = phase;
            return Step::Consumed(len);
        }
        if request.connect || request.upgrade {
            // The switch was refused: the client goes on speaking HTTP/1.
            self.req.await_after_body = false;
            if self.req.phase == Phase::Await {
                self.req.phase = Phase::Head;
            }
        }
        if unsolicited && status != 204 && status != 304 {
            // Its framing depends on a request that was not seen (lost in a gap, or never
            // sent): it may answer a `HEAD` (no body whatever its length says). The next
            // status line is looked for instead of trusting the length.
            self.resp.phase = Phase::Hunt;
            self.resp.hunt = Hunt::after_gap();
            return Step::Consumed(len);
        }
        let body = if request.head || status == 204 || status == 304 {
            Ok(Body::None)
        } else {
            message_body(info, head.version, sink).map(|b| b.unwrap_or(Body::UntilClose))
        };
        match body {
            Ok(b) => {
                self.resp.start_body(b);
                Step::Consumed(len)
            }
            Err(why) => Step::Invalid(why),
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
            || (self.pending.len > 0 && (self.pending.tail_connect || self.pending.tail_upgrade));
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
                    self.pending.forgotten = 0;
                }
                return GapOutcome::Resync;
            }
        }
        side.resynced = true;
        GapOutcome::Skipped
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        while let Some(p) = self.pending.pop() {
            sink.fact(&Fact::Unanswered { app: APP, id: p.id });
        }
    }

    /// A head up to [`MAX_HEAD`] waits whole in the caller's carry.
    fn max_carry(&self) -> usize {
        MAX_HEAD
    }
}

/// What the framing and the facts need from a head's fields.
#[derive(Default)]
struct HeadInfo<'a> {
    host: Option<&'a [u8]>,
    hosts: u32,
    user_agent: Option<&'a [u8]>,
    content_type: Option<&'a [u8]>,
    upgrade: Option<&'a [u8]>,
    /// `Content-Length`: every value seen agreed on this length so far.
    content_length: Option<u64>,
    /// Some `Content-Length` was malformed or two disagreed.
    bad_length: bool,
    /// `Transfer-Encoding` was present.
    te: bool,
    /// The last transfer coding seen is `chunked`.
    te_last_chunked: bool,
    /// How many times `chunked` was listed.
    te_chunked: u32,
}

impl<'a> HeadInfo<'a> {
    fn see(&mut self, h: &Header<'a>) {
        let name = h.name;
        if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
            self.host.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            self.user_agent.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            self.content_type.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 section 8.6: a list of identical values may be taken as one.
            for v in h.value.split(|&b| b == b',') {
                match parse_decimal(trim_ows(v)) {
                    Some(n) if self.content_length.is_none_or(|c| c == n) => {
                        self.content_length = Some(n);
                    }
                    _ => self.bad_length = true,
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te = true;
            for coding in h.value.split(|&b| b == b',') {
                let coding = coding.split(|&b| b == b';').next().unwrap_or_default();
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue;
                }
                let chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.te_chunked += u32::from(chunked);
                self.te_last_chunked = chunked;
            }
        }
    }
}

/// RFC 9112 section 6.3, the parts shared by requests and responses: `Ok(None)` when the
/// head declares no length (a request then has no body, a response runs to the close).
fn message_body(
    info: &HeadInfo<'_>,
    version: HttpVersion,
    sink: &mut dyn FactSink,
) -> Result<Option<Body>, Invalid> {
    if info.te {
        if version == HttpVersion::Http10 || info.content_length.is_some() || info.bad_length {
            // Transfer-Encoding overrides Content-Length, but a hop that reads the length
            // instead would split the stream elsewhere.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        if info.te_chunked > 1 || (info.te_chunked == 1 && !info.te_last_chunked) {
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        return Ok(Some(if info.te_last_chunked {
            Body::Chunked
        } else {
            Body::UntilClose
        }));
    }
    if info.bad_length {
        sink.anomaly(ParserAnomaly::Ambiguous);
        return Err(Invalid::BadLength);
    }
    Ok(info.content_length.map(Body::Fixed))
}

fn request_body(
    info: &HeadInfo<'_>,
    version: HttpVersion,
    sink: &mut dyn FactSink,
) -> Result<Body, Invalid> {
    match message_body(info, version, sink)? {
        // A request's length cannot run to the close: a transfer coding that does not end
        // in chunked leaves the body's end undefined (RFC 9112 6.3 point 4).
        Some(Body::UntilClose) => {
            sink.anomaly(ParserAnomaly::Ambiguous);
            Err(Invalid::BadSyntax)
        }
        Some(b) => Ok(b),
        None => Ok(Body::None),
    }
}

fn partial_head(have: usize, sink: &mut dyn FactSink) -> Step {
    if have >= MAX_HEAD {
        sink.anomaly(ParserAnomaly::HeaderTooLarge);
        Step::Invalid(Invalid::TooLarge)
    } else {
        Step::NeedMore
    }
}

/// Reads one chunk-size line: `1*HEXDIG [BWS ; ext...] CRLF`.
fn chunk_size_line(side: &mut Side, data: &[u8], sink: &mut dyn FactSink) -> Step {
    let window = data.get(..MAX_CHUNK_LINE.min(data.len())).unwrap_or(data);
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if data.len() >= MAX_CHUNK_LINE {
            sink.anomaly(ParserAnomaly::BadFraming);
            return Step::Invalid(Invalid::TooLarge);
        }
        return Step::NeedMore;
    };
    // A bare LF ends the line for nginx and Go alike.
    let line = strip_cr(window.get(..nl).unwrap_or_default());
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let mut size: u64 = 0;
    for &b in line.iter().take(digits) {
        let v = (b as char).to_digit(16).map_or(0, u64::from);
        match size.checked_mul(16).and_then(|s| s.checked_add(v)) {
            Some(s) => size = s,
            None => {
                sink.anomaly(ParserAnomaly::BadFraming);
                return Step::Invalid(Invalid::BadLength);
            }
        }
    }
    let after = line.get(digits..).unwrap_or_default();
    let ext_ok = {
        let after = after
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .and_then(|i| after.get(i..))
            .unwrap_or_default();
        after.is_empty() || after.first() == Some(&b';')
    };
    if digits == 0 || !ext_ok {
        sink.anomaly(ParserAnomaly::BadFraming);
        return Step::Invalid(Invalid::BadSyntax);
    }
    if after.contains(&b'\r') {
        // A CR inside an extension: parsers that end lines at a bare CR disagree with us.
        sink.anomaly(ParserAnomaly::Ambiguous);
    }
    side.phase = if size == 0 {
        Phase::Trailers
    } else {
        Phase::ChunkData(size)
    };
    Step::Consumed(nl + 1)
}

/// Reads one trailer line; an empty one ends the message. A long line is searched for its
/// end once, not again from its start each time more of it arrives.
fn trailer_line(side: &mut Side, data: &[u8], sink: &mut dyn FactSink) -> Step {
    let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
    let from = side.scan.pos.min(window.len());
    let rest = window.get(from..).unwrap_or_default();
    let Some(nl) = rest.iter().position(|&b| b == b'\n').map(|i| from + i) else {
        side.scan.pos = window.len();
        return partial_head(data.len(), sink);
    };
    side.scan = Scan::new();
    if strip_cr(window.get(..nl).unwrap_or_default()).is_empty() {
        side.body_done();
    }
    Step::Consumed(nl + 1)
}

/// Re-types an emptied header list so that its allocation outlives the borrows it held: the
/// in-place `collect` keeps the buffer (same element size and alignment), so after the first
/// head nothing is allocated (as `sql::Classifier` recycles its scratch).
// `filter` would keep the element type; the point is the new lifetime.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<Header<'_>>) -> Vec<Header<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// A header list back to the parser: kept for the next head unless a huge head grew it.
fn keep(v: Vec<Header<'static>>) -> Vec<Header<'static>> {
    if v.capacity() > KEEP_FIELDS {
        Vec::new()
    } else {
        v
    }
}

/// Takes up to `have` bytes of `remaining`: (bytes taken, bytes still to come).
fn count_down(remaining: u64, have: usize) -> (usize, u64) {
    let have64 = u64::try_from(have).unwrap_or(u64::MAX);
    let took = remaining.min(have64);
    let took_usize = usize::try_from(took).unwrap_or(have);
    (took_usize, remaining - took)
}

/// The start line as sent (leading empty lines skipped), cut at [`MAX_SUMMARY`].
fn summary(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let line = head.get(start..).unwrap_or_default();
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len())
        .min(MAX_SUMMARY);
    line.get(..end).unwrap_or_default()
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

/// `1*DIGIT` as u64; `None` for anything else (signs, hex, overflow).
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `token` appears in the comma-separated list `v` (protocol names may carry `/version`).
fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',').any(|t| {
        let t = trim_ows(t);
        let name = t.split(|&b| b == b'/').next().unwrap_or_default();
        name.eq_ignore_ascii_case(token)
    })
}

// ---------------------------------------------------------------------------------------
// Lines of a head, read as the most lenient of the servers reads them.

/// RFC 9110 `tchar`: the bytes of a method or a field name.
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

const fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A control byte that no start line holds (CR and LF end lines, HTAB separates).
const fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n') || b == 0x7f
}

/// A request target's bytes: visible ASCII and obs-text (what httparse takes too).
const fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// A field value's (or reason phrase's) bytes: HTAB, SP, visible ASCII, obs-text.
const fn is_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | 0x20..=0x7e | 0x80..=0xff)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `b` split after its longest prefix of bytes that satisfy `ok`.
fn split_while(b: &[u8], ok: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = b.iter().position(|&c| !ok(c)).unwrap_or(b.len());
    (
        b.get(..n).unwrap_or_default(),
        b.get(n..).unwrap_or_default(),
    )
}

/// What follows the empty lines (any CR and LF bytes) before a start line.
fn skip_empty_lines(head: &[u8]) -> &[u8] {
    split_while(head, |b| b == b'\r' || b == b'\n').1
}

/// The next line of `rest` without its LF or CRLF, and `rest` moved past it.
fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let line = rest.get(..nl).unwrap_or_default();
    *rest = rest.get(nl + 1..).unwrap_or_default();
    Some(strip_cr(line))
}

/// `HTTP/1.` and a minor version: 1.0 for `0`, 1.1 for any other (`HTTP/1.2` is served as
/// 1.1 by nginx and Go). Anything else is a version this parser does not read.
fn http_version(v: &[u8]) -> Result<HttpVersion, Invalid> {
    let minor = v.strip_prefix(b"HTTP/1.").ok_or(Invalid::Unsupported)?;
    if minor.is_empty() || minor.len() > 3 || !minor.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Unsupported);
    }
    Ok(if minor.iter().all(|&b| b == b'0') {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    })
}

/// `method 1*(SP / HTAB) target 1*(SP / HTAB) HTTP/1.x *(SP / HTAB)`, its line end
/// stripped: any token as method (Go serves any), runs of spaces and tabs as delimiters
/// (nginx takes runs of spaces, Apache and Envoy tabs too), trailing whitespace (nginx).
/// A line without a version (HTTP/0.9) is refused.
fn request_line(line: &[u8]) -> Result<(&[u8], &[u8], HttpVersion), Invalid> {
    let (method, rest) = split_while(line, is_tchar);
    let (ws1, rest) = split_while(rest, is_ws);
    let (target, rest) = split_while(rest, is_target_byte);
    let (ws2, rest) = split_while(rest, is_ws);
    if method.is_empty() || ws1.is_empty() || target.is_empty() || ws2.is_empty() {
        return Err(Invalid::BadSyntax);
    }
    let (version, rest) = split_while(rest, |b| !is_ws(b));
    if !rest.iter().all(|&b| is_ws(b)) {
        return Err(Invalid::BadSyntax);
    }
    Ok((method, target, http_version(version)?))
}

/// `HTTP/1.x 1*(SP / HTAB) 3DIGIT [ (SP / HTAB) reason ]`, its line end stripped.
fn status_line(line: &[u8]) -> Result<(HttpVersion, u16), Invalid> {
    let (version, rest) = split_while(line, |b| !is_ws(b));
    let version = http_version(version)?;
    let (ws, rest) = split_while(rest, is_ws);
    let (code, reason) = split_while(rest, |b| b.is_ascii_digit());
    if ws.is_empty() || code.len() != 3 {
        return Err(Invalid::BadSyntax);
    }
    if !(reason.is_empty() || reason.first().is_some_and(|&b| is_ws(b)))
        || !reason.iter().all(|&b| is_value_byte(b))
    {
        return Err(Invalid::BadSyntax);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Ok((version, status))
}

fn check_request_line(line: &[u8]) -> Result<(), Invalid> {
    request_line(line).map(|_| ())
}

fn check_status_line(line: &[u8]) -> Result<(), Invalid> {
    status_line(line).map(|_| ())
}

/// One header field line as read by [`field_line`]. Every kind but `Valid` is a line that
/// servers read differently (the reason the parser reports the request, then
/// [`ParserAnomaly::Ambiguous`], and stops).
#[derive(Debug, PartialEq, Eq)]
enum Field<'a> {
    /// `token ":" OWS value OWS` (RFC 9112 section 5), split as httparse splits it.
    Valid(Header<'a>),
    /// Whitespace between the name and the colon (`Content-Length : 5`). RFC 9112 says
    /// refuse the request, and current nginx and Go do; older nginx skipped the line and
    /// served the request without the field; other servers and proxies have taken the
    /// field as if the whitespace were not there (the classic smuggling pair), which is
    /// how it is reported.
    Lenient(Header<'a>),
    /// Not a field line. A line that starts with whitespace is obsolete line folding:
    /// current nginx refuses it, Go's textproto, Apache and Node unfold it into the field
    /// before it (RFC 9112 section 5.2 lets a server do either), so the folded value, or
    /// a folded `Transfer-Encoding`, is seen by some and not others. A name that is not a
    /// token (`Ho(st`) is skipped by nginx (`ignore_invalid_headers`) and refused by Go. A
    /// control byte in a value is passed on by nginx and refused by Go. No colon at all is
    /// refused by both; reported the same way, as no server reads it as a field.
    Bad,
}

/// Reads one header field line, its line end stripped.
fn field_line(line: &[u8]) -> Field<'_> {
    let (name, rest) = split_while(line, is_tchar);
    let (ws, rest) = split_while(rest, is_ws);
    let Some(value) = rest.strip_prefix(b":") else {
        return Field::Bad;
    };
    let value = trim_ows(value);
    if name.is_empty() || !value.iter().all(|&b| is_value_byte(b)) {
        return Field::Bad;
    }
    let h = Header { name, value };
    if ws.is_empty() {
        Field::Valid(h)
    } else {
        Field::Lenient(h)
    }
}

#[cfg(test)]
mod tests;
