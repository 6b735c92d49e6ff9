//! HTTP/1.x request/response parser (RFC 9112), both directions of one connection.
//!
//! Heads are parsed by `httparse`, which is stateless: a head is re-parsed from its first
//! byte each time more bytes arrive (the caller keeps the unfinished head in its carry, we
//! answer `NeedMore { consumed: 0 }`), and never looked at past [`MAX_HEAD`] bytes. Bodies
//! are never buffered: `Content-Length` and chunked bodies are counted down as they pass
//! (chunk-size lines and trailers are read line by line), close-delimited response bodies
//! and tunnels swallow the rest of the stream.
//!
//! Requests are reported the moment their head is complete, responses likewise; they pair
//! through a bounded queue of outstanding requests (keep-alive and pipelining), which also
//! remembers what framing the response needs (`HEAD`, `CONNECT`, `Upgrade`). Interim `1xx`
//! responses (`100 Continue`) are skipped: the final response answers the request.
//!
//! Framing follows RFC 9112 section 6.3, and every way in which two implementations could
//! disagree about where a message ends (request smuggling) is reported as
//! [`ParserAnomaly::Ambiguous`]: `Content-Length` together with `Transfer-Encoding` (the
//! latter wins), differing or malformed `Content-Length`s (fatal), a request whose
//! transfer coding does not end in `chunked` (fatal), `Transfer-Encoding` in an HTTP/1.0
//! message, bare LF line endings, more than one `Host`.
//!
//! Protocol switches: after a request carrying `Upgrade` (HTTP/1.1) or a `CONNECT`, the
//! request side waits (answers `Done { consumed: 0 }`, leaving the bytes in the caller's
//! carry) until the response says whether the switch happened. A `101` to `h2c` hands the
//! connection over: [`Http1Parser::upgraded_to`] then says `Some(AppProto::Http2)` and the
//! parser consumes nothing more in either direction, so the caller can feed its carry to an
//! HTTP/2 parser. Any other `101` (WebSocket...) or a `2xx` to `CONNECT` makes the flow a
//! tunnel: [`Fact::Opaque`] with [`OpaqueReason::Tunnel`], and every later byte is consumed
//! unread. A refused switch resumes HTTP/1 on both sides.

use crate::contract::{
    Fact, FactSink, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{Header, HttpRequest, HttpResponse, HttpVersion, RequestDetail, ResponseDetail};
use crate::{AppProto, Direction};

use std::mem::MaybeUninit;

/// Most bytes of one message head (start line and header fields, or one trailer line).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 64;
/// Most requests waiting for their response (pipelining).
pub const MAX_PENDING: usize = 64;
/// Longest `summary` (the start line as sent).
pub const MAX_SUMMARY: usize = 256;
/// Longest chunk-size line, extensions included.
pub const MAX_CHUNK_LINE: usize = 4096;

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
    /// Both sides: a tunnel (WebSocket, CONNECT); everything is consumed unread.
    Tunnel,
    /// Both sides: switched to HTTP/2; nothing is consumed (the caller switches parsers).
    Handover,
}

#[derive(Clone, Copy, Debug)]
struct Side {
    phase: Phase,
    /// The message being read is an `Upgrade`/`CONNECT` request: wait after its body.
    await_after_body: bool,
    /// A gap was skipped inside a body; reported as an anomaly on the next feed.
    resynced: bool,
}

impl Side {
    const fn new() -> Self {
        Side {
            phase: Phase::Head,
            await_after_body: false,
            resynced: false,
        }
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

/// A request still waiting for its final response.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    id: u32,
    head: bool,
    connect: bool,
    upgrade: bool,
}

/// Fixed-size ring of outstanding requests, oldest first.
#[derive(Debug)]
struct PendingQueue {
    ring: [Pending; MAX_PENDING],
    start: usize,
    len: usize,
}

impl PendingQueue {
    const fn new() -> Self {
        PendingQueue {
            ring: [Pending {
                id: 0,
                head: false,
                connect: false,
                upgrade: false,
            }; MAX_PENDING],
            start: 0,
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len >= MAX_PENDING
    }

    fn push(&mut self, p: Pending) -> bool {
        if self.is_full() {
            return false;
        }
        let at = (self.start + self.len) % MAX_PENDING;
        match self.ring.get_mut(at) {
            Some(slot) => {
                *slot = p;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    fn pop(&mut self) -> Option<Pending> {
        if self.len == 0 {
            return None;
        }
        let p = self.ring.get(self.start).copied();
        self.start = (self.start + 1) % MAX_PENDING;
        self.len -= 1;
        p
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

/// The HTTP/1.x parser of one connection.
#[derive(Debug)]
pub struct Http1Parser {
    req: Side,
    resp: Side,
    pending: PendingQueue,
    next_id: u32,
    upgraded: Option<AppProto>,
    /// The header list of the request being reported, empty between heads: its
    /// allocation is reused (see [`recycle`]) so that a head costs no 2 KB array to fill.
    fields: Vec<Header<'static>>,
}

impl Default for Http1Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1Parser {
    pub const fn new() -> Self {
        Http1Parser {
            req: Side::new(),
            resp: Side::new(),
            pending: PendingQueue::new(),
            next_id: 0,
            upgraded: None,
            fields: Vec::new(),
        }
    }

    /// The protocol the connection switched to, once a `101 Switching Protocols` to `h2c`
    /// was seen. From then on this parser consumes nothing: the caller should hand both
    /// directions' unconsumed bytes to a parser for the returned protocol.
    pub fn upgraded_to(&self) -> Option<AppProto> {
        self.upgraded
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
            Phase::UntilClose | Phase::Tunnel => Step::Consumed(data.len()),
            Phase::Await | Phase::Handover => Step::Stop,
        }
    }

    fn request_head(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Step {
        let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
        // Left uninitialised: httparse fills only the fields it finds.
        let mut hbuf = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(window, &mut hbuf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return partial_head(data.len(), sink),
            Err(e) => return head_error(e, sink),
        };
        let head = window.get(..len).unwrap_or(window);
        if has_bare_lf(head) {
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        let version = if req.version == Some(0) {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        };
        let method = req.method.unwrap_or_default().as_bytes();
        let path = req.path.unwrap_or_default().as_bytes();

        let mut fields = recycle(std::mem::take(&mut self.fields));
        fields.reserve(req.headers.len());
        let mut info = HeadInfo::default();
        for h in req.headers.iter() {
            let field = Header {
                name: h.name.as_bytes(),
                value: h.value,
            };
            info.see(&field);
            fields.push(field);
        }

        if self.pending.is_full() {
            self.fields = recycle(fields);
            sink.anomaly(ParserAnomaly::TooManyTransactions);
            return Step::Invalid(Invalid::TooLarge);
        }
        if info.hosts > 1 {
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        let body = request_body(&info, version, sink);
        let connect = method == b"CONNECT";
        let pending = Pending {
            id: self.next_id,
            head: method == b"HEAD",
            connect,
            upgrade: info.upgrade.is_some() && version == HttpVersion::Http11,
        };
        self.pending.push(pending);
        self.next_id = self.next_id.wrapping_add(1);
        sink.fact(&Fact::Transaction {
            app: APP,
            id: pending.id,
            summary: summary(head),
            detail: RequestDetail::Http(HttpRequest {
                version,
                method,
                path,
                authority: info.host,
                user_agent: info.user_agent,
                content_type: info.content_type,
                headers: &fields,
            }),
        });
        self.fields = recycle(fields);
        let body = match body {
            Ok(b) => b,
            Err(why) => return Step::Invalid(why),
        };
        self.req.await_after_body = pending.connect || pending.upgrade;
        self.req.start_body(body);
        Step::Consumed(len)
    }

    fn response_head(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Step {
        let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
        let mut hbuf = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, window, &mut hbuf);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return partial_head(data.len(), sink),
            Err(e) => return head_error(e, sink),
        };
        let head = window.get(..len).unwrap_or(window);
        if has_bare_lf(head) {
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        let status = resp.code.unwrap_or(0);
        let version = if resp.version == Some(0) {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        };
        let mut info = HeadInfo::default();
        for h in resp.headers.iter() {
            info.see(&Header {
                name: h.name.as_bytes(),
                value: h.value,
            });
        }
        if (100..200).contains(&status) && status != 101 {
            // Interim (100 Continue, 103 Early Hints): the final response is still to come.
            return Step::Consumed(len);
        }
        let request = self.pending.pop();
        match request {
            Some(r) => sink.fact(&Fact::Response {
                app: APP,
                id: r.id,
                status: Some(u32::from(status)),
                summary: summary(head),
                detail: ResponseDetail::Http(HttpResponse {
                    status,
                    content_type: info.content_type,
                }),
            }),
            None => sink.anomaly(ParserAnomaly::UnsolicitedResponse),
        }
        let request = request.unwrap_or_default();
        let switched = status == 101 || (request.connect && (200..300).contains(&status));
        if switched {
            let h2c = status == 101 && info.upgrade.is_some_and(|u| has_token(u, b"h2c"));
            let phase = if h2c {
                self.upgraded = Some(AppProto::Http2);
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
        let body = if request.head || status == 204 || status == 304 {
            Ok(Body::None)
        } else {
            message_body(&info, version, sink).map(|b| b.unwrap_or(Body::UntilClose))
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

    fn gap(&mut self, dir: Direction, len: u32) -> bool {
        let len = u64::from(len);
        let side = self.side(dir);
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
            Phase::Tunnel => return true,
            _ => return false,
        }
        side.resynced = true;
        true
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        while let Some(p) = self.pending.pop() {
            sink.fact(&Fact::Unanswered { app: APP, id: p.id });
        }
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

fn head_error(e: httparse::Error, sink: &mut dyn FactSink) -> Step {
    match e {
        httparse::Error::TooManyHeaders => {
            sink.anomaly(ParserAnomaly::TooManyHeaders);
            Step::Invalid(Invalid::TooLarge)
        }
        httparse::Error::Version => Step::Invalid(Invalid::Unsupported),
        _ => Step::Invalid(Invalid::BadSyntax),
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
    let line = window.get(..nl).unwrap_or_default();
    let line = match line.strip_suffix(b"\r") {
        Some(l) => l,
        None => {
            sink.anomaly(ParserAnomaly::Ambiguous);
            line
        }
    };
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

/// Reads one trailer line; an empty one ends the message.
fn trailer_line(side: &mut Side, data: &[u8], sink: &mut dyn FactSink) -> Step {
    let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return partial_head(data.len(), sink);
    };
    let line = window.get(..nl).unwrap_or_default();
    let line = match line.strip_suffix(b"\r") {
        Some(l) => l,
        None => {
            sink.anomaly(ParserAnomaly::Ambiguous);
            line
        }
    };
    if line.is_empty() {
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

/// Takes up to `have` bytes of `remaining`: (bytes taken, bytes still to come).
fn count_down(remaining: u64, have: usize) -> (usize, u64) {
    let have64 = u64::try_from(have).unwrap_or(u64::MAX);
    let took = remaining.min(have64);
    let took_usize = usize::try_from(took).unwrap_or(have);
    (took_usize, remaining - took)
}

/// An LF not preceded by CR anywhere in a head.
///
/// Runs over every head, so it is written without an early exit: the compiler vectorises
/// the fold (16 or 32 bytes a step). The byte-at-a-time loop it replaced was a third of the
/// time of parsing a 400-byte request head (benches/RESULTS.md, parser benches).
fn has_bare_lf(head: &[u8]) -> bool {
    let first = head.first() == Some(&b'\n');
    let next = head.get(1..).unwrap_or_default();
    first
        || head.iter().zip(next).fold(false, |bare, (&prev, &b)| {
            bare | ((b == b'\n') & (prev != b'\r'))
        })
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

#[cfg(test)]
mod tests;
