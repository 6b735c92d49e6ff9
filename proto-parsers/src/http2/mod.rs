//! HTTP/2 (RFC 9113) read passively from both directions, with HPACK (RFC 7541) and gRPC
//! recognised per stream.
//!
//! [`Http2Parser`] follows the connection's frames itself (the `h2` crate is an endpoint and
//! cannot read a captured conversation): the client preface, every frame type by its 9-byte
//! header, padding, PRIORITY fields, header blocks split over CONTINUATION frames, SETTINGS
//! that change frame and table sizes, RST_STREAM and GOAWAY ending streams, and DATA skipped
//! by counting, never buffered. Each request's HEADERS become a [`Fact::Transaction`] the
//! moment its header block is complete; a stream whose `content-type` is
//! `application/grpc*` is a gRPC call ([`RequestDetail::Grpc`]) whose outcome comes from its
//! trailers or a trailers-only response.
//!
//! HPACK is our own decoder ([`hpack`]), one per direction (each side's header blocks are
//! compressed against its own dynamic table). A header block must be decoded whole, so its
//! fragments are copied into a bounded scratch buffer as they stream past; everything else is
//! parsed in place. Decoded fields are not copied: a request's facts borrow names and values
//! from the block itself, the static table, the dynamic table or (Huffman-coded strings) the
//! side's field scratch. A flow picked up after its first bytes cannot be decoded (the dynamic
//! tables are unknown) and is reported [`OpaqueReason::MidStream`].
//!
//! Bounds, as large as common servers accept (each reached is an anomaly and a counter in
//! [`Http2Stats`]): encoded header block [`MAX_BLOCK`] (any number of CONTINUATION frames,
//! each counted by the bytes it carries plus its 9-byte frame header, so a flood of empty
//! ones ends there too), decoded header list [`MAX_HEADER_LIST`] (Go's server accepts about
//! 1 MiB; HPACK bombs end there), any number of fields within it, HPACK dynamic table
//! [`MAX_HPACK_TABLE`], frame size by the peer's `SETTINGS_MAX_FRAME_SIZE`, gRPC message
//! length [`crate::grpc::MAX_MESSAGE`]. A block over its bound gives the connection up with a
//! blinding anomaly (its HPACK insertions are unknown, so nothing after it could be decoded);
//! a list over its bound is still decoded whole into the dynamic table (the connection stays
//! in step) and reported with the fields that fit, with a blinding anomaly. Streams past
//! [`MAX_STREAMS`] are decoded and reported like any other; only their response pairing and
//! gRPC message framing are given up ([`ParserAnomaly::TooManyTransactions`], which does not
//! blind).
//!
//! Memory: a header block is assembled in the parser's own buffer as its fragments stream
//! past, so the caller carries no more than a frame header ([`StreamParser::max_carry`] stays
//! the default) and the buffer grows only with bytes that arrived, never with a declared
//! length. The scratch buffers, the HPACK tables and the header list a request fact borrows
//! grow to the connection's high-water mark and are reused, so nothing is allocated per
//! request or per header field on the common path; a buffer that an unusually large block
//! grew past [`KEEP_SCRATCH`] is freed once that block's facts are out, so what an idle
//! connection keeps does not depend on the largest block it ever saw.

pub mod hpack;

use hpack::{Decoder, Field, Limits};

use crate::contract::{
    Fact, FactSink, GapOutcome, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{
    GrpcCall, GrpcResponse, Header, HttpRequest, HttpResponse, HttpVersion, RequestDetail,
    ResponseDetail,
};
use crate::grpc::{self, MessageFramer};
use crate::{AppProto, Direction};

/// Most streams tracked at once for pairing (requests waiting for their response). nginx
/// allows 128 concurrent streams, Go 250, Envoy 2^31: a request on a stream past this is
/// still decoded and reported, only its response and gRPC messages are not followed.
pub const MAX_STREAMS: usize = 256;
/// Largest encoded header block (HEADERS or PUSH_PROMISE, then CONTINUATION frames)
/// assembled for HPACK, counted as the fragments' bytes plus 9 (the frame header) for each
/// CONTINUATION frame: a block of 1 MiB + 4 KiB (what Go's server accepts, with room) in
/// frames of any size up to that, while a flood of empty CONTINUATION frames (the
/// CVE-2024-27316 shape) reaches it after about 117,000 frames.
pub const MAX_BLOCK: usize = 1024 * 1024 + 8 * 1024;
/// Largest decoded header list, counted as RFC 9113's `SETTINGS_MAX_HEADER_LIST_SIZE` does
/// (name + value + 32 per field): Go's `http.DefaultMaxHeaderBytes` (1 MiB) plus the 4 KiB
/// Go's servers add to it. A small block that expands past it is an HPACK bomb.
pub const MAX_HEADER_LIST: usize = 1024 * 1024 + 4 * 1024;
/// Capacity a scratch buffer (block, decoded strings) keeps between blocks; one that an
/// unusually large block grew past it is freed once that block is done.
pub const KEEP_SCRATCH: usize = 64 * 1024;
/// Entries a field list (decoded spans, the header list of a fact) keeps between blocks.
const KEEP_FIELDS: usize = 2048;
/// Largest HPACK dynamic table a peer may make a decoder keep, whatever it advertises.
pub const MAX_HPACK_TABLE: usize = 64 * 1024;
/// `SETTINGS_MAX_FRAME_SIZE` until a peer raises it.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest value `SETTINGS_MAX_FRAME_SIZE` may take (2^24 - 1).
pub const MAX_FRAME_LIMIT: u32 = 16_777_215;
/// Longest request summary (`METHOD path`).
pub const MAX_SUMMARY: usize = 256;

/// HPACK's initial dynamic table size (RFC 7541 section 6.5.2).
const DEFAULT_HPACK_TABLE: usize = 4096;
const PREFACE: &[u8; 24] = crate::detect::H2_PREFACE;
const FRAME_HEAD: usize = 9;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// Counters of what one connection held and which limits it hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Http2Stats {
    pub frames: u64,
    pub unknown_frames: u64,
    pub header_blocks: u64,
    pub continuation_frames: u64,
    pub streams: u64,
    pub grpc_calls: u64,
    /// gRPC messages seen in both directions.
    pub grpc_messages: u64,
    pub grpc_compressed_messages: u64,
    /// Requests on streams past [`MAX_STREAMS`]: reported, not paired with a response.
    pub too_many_streams: u64,
    pub block_too_large: u64,
    pub header_list_too_large: u64,
    pub hpack_errors: u64,
    pub bad_framing: u64,
    pub oversized_frames: u64,
    pub message_too_large: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    /// Bytes nobody needs (PING, PRIORITY, WINDOW_UPDATE, GOAWAY debug data, unknown types,
    /// malformed frames).
    Skip,
    /// DATA payload, handed to the stream's gRPC framer.
    Data,
    /// A header block fragment, copied into the block scratch.
    Fragment,
    /// SETTINGS entries, read six bytes at a time.
    Settings,
}

/// The frame whose payload is streaming past.
#[derive(Clone, Copy, Debug)]
struct Body {
    flags: u8,
    stream: u32,
    /// Payload bytes before the padding still to come.
    left: u32,
    /// Padding bytes still to skip after them.
    pad: u32,
    kind: BodyKind,
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Client side: the 24-byte connection preface.
    Preface,
    /// A frame header (and the fixed fields after it) is next.
    Head,
    Body(Body),
    /// Not readable; every byte is consumed unseen.
    Opaque,
}

/// A header block being assembled (HEADERS or PUSH_PROMISE, then CONTINUATION).
#[derive(Clone, Copy, Debug)]
struct Pending {
    stream: u32,
    end_stream: bool,
    push: bool,
    /// Bytes counted against [`MAX_BLOCK`] so far: the fragments announced by the frames
    /// received, plus a frame header for each CONTINUATION.
    wire: usize,
}

/// One decoded field: where its name and value are (see [`hpack::View`]).
type Span = Field;

/// What the decoder may keep of one header block: any number of fields within the list.
const LIMITS: Limits = Limits {
    max_list: MAX_HEADER_LIST,
    max_fields: usize::MAX,
};

/// What one direction needs: its framing position, its HPACK decoder and scratch.
struct Side {
    stage: Stage,
    seen_frame: bool,
    /// Largest frame this side may send (the other side's SETTINGS_MAX_FRAME_SIZE).
    max_frame: u32,
    table_allowed: usize,
    decoder: Decoder,
    pending: Option<Pending>,
    /// The header block being assembled, then decoded (kept until its facts are out:
    /// raw literals are read in place).
    block: Vec<u8>,
    /// Huffman-decoded strings of the last block (and fields moved out of the dynamic
    /// table during it), for `spans` to point into.
    fields: Vec<u8>,
    spans: Vec<Span>,
    /// For each [`Known`] name, 1 + the index in `spans` of the first field with it (0:
    /// none), found in one pass after decoding.
    known: [u32; KNOWN],
}

/// The header fields the parser reads by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Method,
    Path,
    Authority,
    Host,
    UserAgent,
    ContentType,
    Status,
    GrpcStatus,
    GrpcMessage,
}

const KNOWN: usize = 9;

impl Known {
    /// Names are lower-case on the wire in HTTP/2; anything else is another name.
    fn of(name: &[u8]) -> Option<Known> {
        Some(match name {
            b":method" => Known::Method,
            b":path" => Known::Path,
            b":authority" => Known::Authority,
            b"host" => Known::Host,
            b"user-agent" => Known::UserAgent,
            b"content-type" => Known::ContentType,
            b":status" => Known::Status,
            b"grpc-status" => Known::GrpcStatus,
            b"grpc-message" => Known::GrpcMessage,
            _ => return None,
        })
    }
}

impl Side {
    fn new(stage: Stage) -> Self {
        Side {
            stage,
            seen_frame: false,
            max_frame: DEFAULT_MAX_FRAME,
            table_allowed: DEFAULT_HPACK_TABLE,
            decoder: Decoder::with_table_size(DEFAULT_HPACK_TABLE),
            pending: None,
            block: Vec::new(),
            fields: Vec::new(),
            spans: Vec::new(),
            known: [0; KNOWN],
        }
    }

    /// A block's facts are out: frees what an unusually large block grew (see
    /// [`KEEP_SCRATCH`]), keeps the rest for the next block.
    fn release(&mut self) {
        self.block.clear();
        if self.block.capacity() > KEEP_SCRATCH {
            self.block = Vec::new();
        }
        if self.fields.capacity() > KEEP_SCRATCH {
            self.fields = Vec::new();
        }
        if self.spans.capacity() > KEEP_FIELDS {
            self.spans = Vec::new();
        }
    }

    /// The bytes of the last decoded block's fields.
    fn view(&self) -> hpack::View<'_> {
        self.decoder.view(&self.block, &self.fields)
    }

    /// The value of the first field named `name`.
    fn get(&self, name: Known) -> Option<&[u8]> {
        let i = self.known.get(name as usize)?.checked_sub(1)?;
        let s = self.spans.get(i as usize)?;
        Some(self.view().value(s))
    }
}

/// One request-response exchange in flight.
#[derive(Clone, Copy, Debug)]
struct Stream {
    id: u32,
    tx: u32,
    grpc: bool,
    req_ended: bool,
    resp_ended: bool,
    /// Final (non-1xx) response headers seen.
    headers_seen: bool,
    /// The response fact was delivered.
    responded: bool,
    http_status: u16,
    /// gRPC message framing, client-to-server then server-to-client.
    framers: [MessageFramer; 2],
}

/// Connection-wide state, apart from the per-direction [`Side`]s so both can be borrowed
/// together.
struct Conn {
    streams: Vec<Stream>,
    next_tx: u32,
    max_client_stream: u32,
    saw_grpc: bool,
    opaque: bool,
    dead: Option<Invalid>,
    resync_pending: bool,
    summary: Vec<u8>,
    /// The header list of the last request fact, kept for its allocation (see
    /// [`recycle`]).
    headers: Vec<Header<'static>>,
    stats: Http2Stats,
}

/// A passive HTTP/2 connection reader (both directions) that also reports gRPC calls.
pub struct Http2Parser {
    sides: [Side; 2],
    conn: Conn,
}

impl Default for Http2Parser {
    fn default() -> Self {
        Self::new()
    }
}

fn ix(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

fn be24(b: &[u8]) -> u32 {
    b.iter().take(3).fold(0, |n, &x| (n << 8) | u32::from(x))
}

fn be32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0, |n, &x| (n << 8) | u32::from(x))
}

fn parse_status(v: &[u8]) -> Option<u16> {
    if v.len() != 3 {
        return None;
    }
    grpc::parse_status(v).and_then(|n| u16::try_from(n).ok())
}

impl Http2Parser {
    /// A parser for a flow seen from its first byte (client preface, server SETTINGS).
    pub fn new() -> Self {
        Http2Parser {
            sides: [Side::new(Stage::Preface), Side::new(Stage::Head)],
            conn: Conn {
                streams: Vec::new(),
                next_tx: 0,
                max_client_stream: 0,
                saw_grpc: false,
                opaque: false,
                dead: None,
                resync_pending: false,
                summary: Vec::new(),
                headers: Vec::new(),
                stats: Http2Stats::default(),
            },
        }
    }

    /// A parser for the rest of a flow whose HTTP/1.1 request asked for `Upgrade: h2c` and
    /// got `101 Switching Protocols`: fed from the first byte after the request (client
    /// preface) and after the 101 response (server SETTINGS). That request is stream 1,
    /// half-closed by the client; its response is reported as transaction 0, the id the
    /// HTTP/1.1 parser gave the request on a fresh flow.
    pub fn after_upgrade() -> Self {
        Self::after_upgrade_from(0)
    }

    /// Like [`Http2Parser::after_upgrade`] for a flow whose upgrade request had transaction
    /// id `tx` (earlier HTTP/1.1 requests on the same connection took the ids before it).
    pub fn after_upgrade_from(tx: u32) -> Self {
        let mut p = Self::new();
        p.conn.streams.push(Stream {
            id: 1,
            tx,
            grpc: false,
            req_ended: true,
            resp_ended: false,
            headers_seen: false,
            responded: false,
            http_status: 0,
            framers: [MessageFramer::default(); 2],
        });
        p.conn.next_tx = tx.wrapping_add(1);
        p.conn.max_client_stream = 1;
        p.conn.stats.streams = 1;
        p
    }

    /// What the connection held so far and which limits it hit.
    pub fn stats(&self) -> &Http2Stats {
        &self.conn.stats
    }

    /// Streams currently waiting for their response or end.
    pub fn open_streams(&self) -> usize {
        self.conn.streams.len()
    }

    fn go_opaque(&mut self, sink: &mut dyn FactSink) {
        for s in &mut self.sides {
            s.stage = Stage::Opaque;
        }
        if !self.conn.opaque {
            self.conn.opaque = true;
            sink.fact(&Fact::Opaque {
                app: self.proto(),
                reason: OpaqueReason::MidStream,
            });
        }
    }

    fn die(&mut self, why: Invalid) -> Progress {
        self.conn.dead = Some(why);
        Progress::Invalid(why)
    }

    /// `(this direction's side, the other one's)`.
    fn pair(&mut self, dir: Direction) -> (&mut Side, &mut Side, &mut Conn) {
        let [c, s] = &mut self.sides;
        match dir {
            Direction::ToServer => (c, s, &mut self.conn),
            Direction::ToClient => (s, c, &mut self.conn),
        }
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        self.pair(dir).0
    }

    /// Reads a frame header plus the fixed fields after it (`head` holds all of them) and
    /// sets up the payload that follows. `Err` stops the flow.
    fn on_head(
        &mut self,
        dir: Direction,
        head: &[u8],
        sink: &mut dyn FactSink,
    ) -> Result<(), Invalid> {
        let len = be24(head);
        let ty = head.get(3).copied().unwrap_or(0);
        let flags = head.get(4).copied().unwrap_or(0);
        let stream = be32(head.get(5..).unwrap_or_default()) & 0x7fff_ffff;
        let fixed = head.get(FRAME_HEAD..).unwrap_or_default();
        let (side, _, conn) = self.pair(dir);
        conn.stats.frames += 1;

        if dir == Direction::ToClient && !side.seen_frame && (ty != SETTINGS || flags & ACK != 0) {
            // A server's first frame is its SETTINGS; anything else means we joined late.
            self.go_opaque(sink);
            return Ok(());
        }
        side.seen_frame = true;
        if len > side.max_frame {
            conn.stats.oversized_frames += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
        }
        if let Some(p) = side.pending
            && (ty != CONTINUATION || stream != p.stream)
        {
            // A header block must be finished before any other frame: the receiver would
            // fail the connection, and the HPACK state no longer matches.
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return Err(Invalid::UnexpectedMessage);
        }

        let fixed_len = fixed.len() as u32;
        let padded = matches!(ty, DATA | HEADERS | PUSH_PROMISE) && flags & PADDED != 0;
        let pad = if padded {
            u32::from(fixed.first().copied().unwrap_or(0))
        } else {
            0
        };
        let mut body = Body {
            flags,
            stream,
            left: len.saturating_sub(fixed_len),
            pad: 0,
            kind: BodyKind::Skip,
        };
        // Fixed fields longer than the frame, or padding longer than what follows them.
        let short = u64::from(Self::fixed_want(ty, flags)) > u64::from(len) || pad > body.left;
        if !short {
            body.left -= pad;
            body.pad = pad;
        }
        let mut bad = short;
        if short && matches!(ty, HEADERS | PUSH_PROMISE) {
            // The header block cannot be delimited; the receiver fails the connection.
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return Err(Invalid::BadLength);
        }
        match ty {
            _ if bad => {}
            DATA => {
                if stream == 0 {
                    bad = true;
                } else {
                    body.kind = BodyKind::Data;
                }
            }
            HEADERS | PUSH_PROMISE => {
                conn.stats.header_blocks += 1;
                side.block.clear();
                side.pending = Some(Pending {
                    stream,
                    end_stream: ty == HEADERS && flags & END_STREAM != 0,
                    push: ty == PUSH_PROMISE,
                    wire: 0,
                });
                body.kind = BodyKind::Fragment;
                if ty == PUSH_PROMISE && dir == Direction::ToServer {
                    // Only servers push; still decoded to keep HPACK in step.
                    bad = true;
                }
            }
            CONTINUATION => {
                conn.stats.continuation_frames += 1;
                match side.pending.as_mut() {
                    Some(p) => {
                        // Counted by its frame header too: empty ones cannot go on forever.
                        p.wire = p.wire.saturating_add(FRAME_HEAD);
                        body.kind = BodyKind::Fragment;
                    }
                    None => bad = true,
                }
            }
            SETTINGS => {
                if stream != 0 || (flags & ACK != 0 && len != 0) || !len.is_multiple_of(6) {
                    bad = true;
                } else {
                    body.kind = BodyKind::Settings;
                }
            }
            RST_STREAM => {
                if len != 4 || stream == 0 {
                    bad = true;
                } else {
                    conn.end_stream_abruptly(stream, sink);
                }
            }
            GOAWAY => {
                if len < 8 || stream != 0 {
                    bad = true;
                } else if dir == Direction::ToClient {
                    conn.goaway(be32(fixed) & 0x7fff_ffff, sink);
                }
            }
            PRIORITY => bad = len != 5 || stream == 0,
            PING => bad = len != 8 || stream != 0,
            WINDOW_UPDATE => bad = len != 4,
            _ => conn.stats.unknown_frames += 1,
        }
        if bad {
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            if body.kind == BodyKind::Settings || body.kind == BodyKind::Data {
                body.kind = BodyKind::Skip;
            }
        }
        if body.kind == BodyKind::Fragment
            && let Some(p) = side.pending.as_mut()
        {
            // Judged by the length announced, so the outcome does not depend on where the
            // bytes are cut: the receiver would not decode a block this large either.
            p.wire = p.wire.saturating_add(body.left as usize);
            if p.wire > MAX_BLOCK {
                conn.stats.block_too_large += 1;
                sink.anomaly(ParserAnomaly::HeaderTooLarge);
                return Err(Invalid::TooLarge);
            }
        }
        side.stage = Stage::Body(body);
        Ok(())
    }

    /// The last payload byte of a frame went past.
    fn on_frame_end(
        &mut self,
        dir: Direction,
        b: Body,
        sink: &mut dyn FactSink,
    ) -> Result<(), Invalid> {
        match b.kind {
            BodyKind::Data if b.flags & END_STREAM != 0 => {
                self.conn.end_of_stream(dir, b.stream, sink);
            }
            BodyKind::Fragment if b.flags & END_HEADERS != 0 => {
                let (side, _, conn) = self.pair(dir);
                let Some(p) = side.pending.take() else {
                    return Ok(());
                };
                decode_block(side, conn, sink)?;
                match (dir, p.push) {
                    (_, true) => {}
                    (Direction::ToServer, false) => conn.on_request(side, p, sink),
                    (Direction::ToClient, false) => conn.on_response(side, p, sink),
                }
                side.release();
            }
            _ => {}
        }
        Ok(())
    }

    fn on_setting(&mut self, dir: Direction, entry: &[u8], sink: &mut dyn FactSink) {
        let id = u16::from_be_bytes([
            entry.first().copied().unwrap_or(0),
            entry.get(1).copied().unwrap_or(0),
        ]);
        let value = be32(entry.get(2..).unwrap_or_default());
        // A setting tells the *other* side what it may send.
        let (_, other, conn) = self.pair(dir);
        match id {
            SETTINGS_HEADER_TABLE_SIZE => {
                // Lenient: take the largest advertised (a lowered size applies only after
                // the peer's ACK), capped at what we are willing to hold.
                let v = (value as usize).clamp(0, MAX_HPACK_TABLE);
                if v > other.table_allowed {
                    other.table_allowed = v;
                    other.decoder.set_max_allowed(v);
                }
            }
            SETTINGS_MAX_FRAME_SIZE => {
                if !(DEFAULT_MAX_FRAME..=MAX_FRAME_LIMIT).contains(&value) {
                    conn.stats.bad_framing += 1;
                    sink.anomaly(ParserAnomaly::BadFraming);
                } else if value > other.max_frame {
                    other.max_frame = value;
                }
            }
            _ => {}
        }
    }

    fn on_data(&mut self, dir: Direction, stream: u32, bytes: &[u8], sink: &mut dyn FactSink) {
        let conn = &mut self.conn;
        let Some(st) = conn.streams.iter_mut().find(|s| s.id == stream) else {
            return;
        };
        if !st.grpc {
            return;
        }
        let Some(f) = st.framers.get_mut(ix(dir)) else {
            return;
        };
        let ev = f.push(bytes);
        conn.stats.grpc_messages += u64::from(ev.completed);
        conn.stats.grpc_compressed_messages += u64::from(ev.compressed);
        if ev.too_large {
            conn.stats.message_too_large += 1;
            sink.anomaly(ParserAnomaly::MessageTooLarge);
        }
        if ev.bad_flag {
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
        }
    }

    /// Bytes after the frame header that a frame of this type needs together before its
    /// payload can stream (pad length, priority, promised stream, error codes).
    const fn fixed_want(ty: u8, flags: u8) -> u32 {
        let pad = (flags & PADDED != 0) as u32;
        match ty {
            DATA => pad,
            HEADERS => pad + if flags & PRIORITY_FLAG != 0 { 5 } else { 0 },
            PUSH_PROMISE => pad + 4,
            RST_STREAM => 4,
            GOAWAY => 8,
            _ => 0,
        }
    }

    /// [`Self::fixed_want`], or none for a frame too short to hold them (malformed;
    /// `on_head` reports it and skips the frame).
    fn fixed_len(ty: u8, flags: u8, len: u32) -> usize {
        let n = Self::fixed_want(ty, flags);
        if n > len { 0 } else { n as usize }
    }

    fn run(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let mut off = 0usize;
        loop {
            let rest = data.get(off..).unwrap_or_default();
            let stage = self.side(dir).stage;
            match stage {
                Stage::Opaque => {
                    return Progress::Done {
                        consumed: data.len(),
                    };
                }
                Stage::Preface => {
                    if rest.len() < PREFACE.len() {
                        if PREFACE.starts_with(rest) {
                            return Progress::NeedMore { consumed: off };
                        }
                        self.go_opaque(sink);
                        continue;
                    }
                    if rest.get(..PREFACE.len()) == Some(&PREFACE[..]) {
                        off += PREFACE.len();
                        self.side(dir).stage = Stage::Head;
                    } else {
                        self.go_opaque(sink);
                    }
                }
                Stage::Head => {
                    if rest.is_empty() {
                        return Progress::Done { consumed: off };
                    }
                    let Some(h) = rest.get(..FRAME_HEAD) else {
                        return Progress::NeedMore { consumed: off };
                    };
                    let len = be24(h);
                    let ty = h.get(3).copied().unwrap_or(0);
                    let flags = h.get(4).copied().unwrap_or(0);
                    let need = FRAME_HEAD + Self::fixed_len(ty, flags, len);
                    let Some(head) = rest.get(..need) else {
                        return Progress::NeedMore { consumed: off };
                    };
                    if let Err(why) = self.on_head(dir, head, sink) {
                        return self.die(why);
                    }
                    off += need;
                }
                Stage::Body(mut b) => {
                    if b.left == 0 && b.pad == 0 {
                        self.side(dir).stage = Stage::Head;
                        if let Err(why) = self.on_frame_end(dir, b, sink) {
                            return self.die(why);
                        }
                        continue;
                    }
                    if rest.is_empty() {
                        return Progress::Done { consumed: off };
                    }
                    if b.left == 0 {
                        let take = rest.len().min(b.pad as usize);
                        b.pad -= take as u32;
                        off += take;
                        self.side(dir).stage = Stage::Body(b);
                        continue;
                    }
                    let take = rest.len().min(b.left as usize);
                    let chunk = rest.get(..take).unwrap_or_default();
                    match b.kind {
                        BodyKind::Skip => {}
                        BodyKind::Data => self.on_data(dir, b.stream, chunk, sink),
                        BodyKind::Fragment => {
                            // Within MAX_BLOCK: `on_head` counted the whole frame.
                            grow(&mut self.side(dir).block, chunk);
                        }
                        BodyKind::Settings => {
                            let Some(entry) = rest.get(..6) else {
                                return Progress::NeedMore { consumed: off };
                            };
                            self.on_setting(dir, entry, sink);
                            b.left -= 6;
                            off += 6;
                            self.side(dir).stage = Stage::Body(b);
                            continue;
                        }
                    }
                    b.left -= take as u32;
                    off += take;
                    self.side(dir).stage = Stage::Body(b);
                }
            }
        }
    }
}

/// Decodes the assembled block of `side` into its field list, counting limits.
fn decode_block(side: &mut Side, conn: &mut Conn, sink: &mut dyn FactSink) -> Result<(), Invalid> {
    let Side {
        decoder,
        block,
        fields,
        spans,
        known,
        ..
    } = side;
    *known = [0; KNOWN];
    // Fields past a limit are still decoded (the dynamic table must stay in step) but not
    // kept.
    let Ok(d) = decoder.decode(block, fields, spans, LIMITS) else {
        spans.clear();
        conn.stats.hpack_errors += 1;
        sink.anomaly(ParserAnomaly::CompressionError);
        return Err(Invalid::BadSyntax);
    };
    // One pass finds the fields the facts need by name.
    let v = decoder.view(block, fields);
    for (i, s) in spans.iter().enumerate() {
        if let Some(k) = Known::of(v.name(s))
            && let Some(slot) = known.get_mut(k as usize)
            && *slot == 0
        {
            *slot = u32::try_from(i + 1).unwrap_or(0);
        }
    }
    if d.over_list || d.over_fields {
        // The request is still reported (with the fields that fit) and the connection goes
        // on in step, but what the server acts on is unknown: a blinding anomaly. A block
        // that expanded to more than twice its size is a bomb; a long one is just too large.
        conn.stats.header_list_too_large += 1;
        sink.anomaly(if d.list_size / 2 > block.len() {
            ParserAnomaly::CompressionError
        } else {
            ParserAnomaly::HeaderTooLarge
        });
    }
    Ok(())
}

const fn app_of(grpc: bool) -> AppProto {
    if grpc {
        AppProto::Grpc
    } else {
        AppProto::Http2
    }
}

impl Conn {
    fn position(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// A request's header block (or the client's trailers) is complete.
    fn on_request(&mut self, side: &Side, p: Pending, sink: &mut dyn FactSink) {
        let id = p.stream;
        if id == 0 || id.is_multiple_of(2) {
            self.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return;
        }
        if let Some(i) = self.position(id) {
            // Trailers of a request in flight.
            if let Some(st) = self.streams.get_mut(i) {
                st.req_ended |= p.end_stream;
            }
            return;
        }
        let method = side.get(Known::Method);
        if method.is_none() && id <= self.max_client_stream {
            // Trailers of a stream already finished and forgotten.
            return;
        }
        if id <= self.max_client_stream {
            // A new request must use a higher stream id: the server refuses this one, but
            // policy still sees what was tried.
            self.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
        }
        self.max_client_stream = self.max_client_stream.max(id);
        let content_type = side.get(Known::ContentType);
        let is_grpc = content_type.is_some_and(grpc::is_grpc_content_type);
        let tx = self.next_tx;
        self.next_tx = self.next_tx.wrapping_add(1);
        self.stats.streams += 1;
        if is_grpc {
            self.saw_grpc = true;
            self.stats.grpc_calls += 1;
        }
        if self.streams.len() >= MAX_STREAMS {
            // Reported and judged below like any other; only its response is not paired
            // (and its gRPC messages not framed), which does not blind.
            self.stats.too_many_streams += 1;
            sink.anomaly(ParserAnomaly::TooManyTransactions);
        } else {
            self.streams.push(Stream {
                id,
                tx,
                grpc: is_grpc,
                req_ended: p.end_stream,
                resp_ended: false,
                headers_seen: false,
                responded: false,
                http_status: 0,
                framers: [MessageFramer::default(); 2],
            });
        }

        let method = method.unwrap_or_default();
        let path = side.get(Known::Path).unwrap_or_default();
        let v = side.view();
        let mut list = recycle(std::mem::take(&mut self.headers));
        list.reserve(side.spans.len());
        list.extend(side.spans.iter().filter_map(|s| {
            let (name, value) = v.pair(s);
            (name.first() != Some(&b':')).then_some(Header { name, value })
        }));
        let http = HttpRequest {
            version: HttpVersion::Http2,
            method,
            path,
            authority: side.get(Known::Authority).or_else(|| side.get(Known::Host)),
            user_agent: side.get(Known::UserAgent),
            content_type,
            headers: &list,
        };
        self.summary.clear();
        for part in [method, b" ", path] {
            let room = MAX_SUMMARY.saturating_sub(self.summary.len());
            self.summary
                .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        }
        let detail = if is_grpc {
            let (service, method) = grpc::split_path(path).unwrap_or_default();
            RequestDetail::Grpc(GrpcCall {
                http,
                service,
                method,
            })
        } else {
            RequestDetail::Http(http)
        };
        sink.fact(&Fact::Transaction {
            app: app_of(is_grpc),
            id: tx,
            summary: &self.summary,
            detail,
        });
        self.headers = if list.capacity() > KEEP_FIELDS {
            Vec::new()
        } else {
            recycle(list)
        };
    }

    /// A response header block (final headers, interim 1xx, or trailers) is complete.
    fn on_response(&mut self, side: &Side, p: Pending, sink: &mut dyn FactSink) {
        let id = p.stream;
        if id == 0 {
            self.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return;
        }
        if id.is_multiple_of(2) {
            // A pushed response: no request of the client's to pair it with.
            return;
        }
        let Some(i) = self.position(id) else {
            if id > self.max_client_stream {
                sink.anomaly(ParserAnomaly::UnsolicitedResponse);
            }
            return;
        };
        let Some(st) = self.streams.get_mut(i) else {
            return;
        };
        let raw_status = side.get(Known::Status);
        let status = raw_status.and_then(parse_status);
        let first = !st.headers_seen && !st.responded;
        if first {
            if let Some(s) = status
                && (100..200).contains(&s)
            {
                if !p.end_stream {
                    return; // interim response; the final one follows
                }
                self.stats.bad_framing += 1;
                sink.anomaly(ParserAnomaly::BadFraming);
            }
            if status.is_none() {
                self.stats.bad_framing += 1;
                sink.anomaly(ParserAnomaly::BadFraming);
            }
            st.headers_seen = true;
            st.http_status = status.unwrap_or(0);
        }
        st.resp_ended |= p.end_stream;
        let st = *st;
        if !st.responded {
            if !st.grpc && first {
                sink.fact(&Fact::Response {
                    app: AppProto::Http2,
                    id: st.tx,
                    status: Some(u32::from(st.http_status)),
                    summary: raw_status.unwrap_or_default(),
                    detail: ResponseDetail::Http(HttpResponse {
                        status: st.http_status,
                        content_type: side.get(Known::ContentType),
                    }),
                });
                self.mark_responded(i);
            } else if st.grpc {
                let grpc_status = side.get(Known::GrpcStatus);
                if grpc_status.is_some() || p.end_stream {
                    let grpc_message = side.get(Known::GrpcMessage);
                    let code = grpc_status.and_then(grpc::parse_status);
                    sink.fact(&Fact::Response {
                        app: AppProto::Grpc,
                        id: st.tx,
                        status: code,
                        summary: grpc_message.unwrap_or_default(),
                        detail: ResponseDetail::Grpc(GrpcResponse {
                            http_status: st.http_status,
                            grpc_status: code,
                            grpc_message,
                        }),
                    });
                    self.mark_responded(i);
                }
            }
        }
        self.maybe_forget(i);
    }

    fn mark_responded(&mut self, i: usize) {
        if let Some(st) = self.streams.get_mut(i) {
            st.responded = true;
        }
    }

    /// Drops a stream once nothing more can be learnt from it.
    fn maybe_forget(&mut self, i: usize) {
        if self
            .streams
            .get(i)
            .is_some_and(|s| s.responded && s.resp_ended)
        {
            self.streams.remove(i);
        }
    }

    /// DATA with END_STREAM.
    fn end_of_stream(&mut self, dir: Direction, id: u32, sink: &mut dyn FactSink) {
        let Some(i) = self.position(id) else {
            return;
        };
        let Some(st) = self.streams.get_mut(i) else {
            return;
        };
        match dir {
            Direction::ToServer => st.req_ended = true,
            Direction::ToClient => {
                st.resp_ended = true;
                if !st.responded {
                    let st = *st;
                    if st.headers_seen {
                        // A gRPC response that ended without trailers: no grpc-status.
                        sink.fact(&Fact::Response {
                            app: AppProto::Grpc,
                            id: st.tx,
                            status: None,
                            summary: &[],
                            detail: ResponseDetail::Grpc(GrpcResponse {
                                http_status: st.http_status,
                                grpc_status: None,
                                grpc_message: None,
                            }),
                        });
                    } else {
                        // DATA before any response HEADERS.
                        self.stats.bad_framing += 1;
                        sink.anomaly(ParserAnomaly::BadFraming);
                        sink.fact(&Fact::Unanswered {
                            app: app_of(st.grpc),
                            id: st.tx,
                        });
                    }
                    self.mark_responded(i);
                }
            }
        }
        self.maybe_forget(i);
    }

    /// RST_STREAM from either side: a request still waiting is cut off.
    fn end_stream_abruptly(&mut self, id: u32, sink: &mut dyn FactSink) {
        if let Some(i) = self.position(id) {
            let st = self.streams.remove(i);
            if !st.responded {
                sink.fact(&Fact::Unanswered {
                    app: app_of(st.grpc),
                    id: st.tx,
                });
            }
        }
    }

    /// GOAWAY from the server: client streams above `last` were never processed.
    fn goaway(&mut self, last: u32, sink: &mut dyn FactSink) {
        let mut i = 0;
        while let Some(st) = self.streams.get(i).copied() {
            if st.id > last && st.id % 2 == 1 {
                self.streams.remove(i);
                if !st.responded {
                    sink.fact(&Fact::Unanswered {
                        app: app_of(st.grpc),
                        id: st.tx,
                    });
                }
            } else {
                i += 1;
            }
        }
    }
}

/// Appends a fragment to the block being assembled. Grows by doubling from the fragment's
/// size, never past [`MAX_BLOCK`] (the caller checked the block fits): what an attacker can
/// make a connection hold is the bytes it sent, not a length it announced.
fn grow(block: &mut Vec<u8>, chunk: &[u8]) {
    let need = block.len().saturating_add(chunk.len());
    if need > block.capacity() {
        let want = need
            .max(block.capacity().saturating_mul(2))
            .min(MAX_BLOCK.max(need));
        block.reserve_exact(want - block.len());
    }
    block.extend_from_slice(chunk);
}

/// Re-types an emptied header list so that its allocation outlives the borrows it held: the
/// in-place `collect` keeps the buffer (same element size and alignment), so after the first
/// request nothing is allocated (as `http1` and `sql::Classifier` recycle theirs).
// `filter` would keep the element type; the point is the new lifetime.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<Header<'_>>) -> Vec<Header<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

impl StreamParser for Http2Parser {
    fn proto(&self) -> AppProto {
        app_of(self.conn.saw_grpc)
    }

    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        if let Some(why) = self.conn.dead {
            return Progress::Invalid(why);
        }
        if self.conn.resync_pending {
            self.conn.resync_pending = false;
            sink.anomaly(ParserAnomaly::Resync);
        }
        self.run(dir, data, sink)
    }

    /// Skipped inside a payload being counted or skipped, or once the flow is opaque;
    /// anywhere else the parser gives up: a lost frame header loses the framing, and a lost
    /// header block loses the HPACK state every later header block depends on, so there is
    /// no next message to resynchronise on.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        if self.conn.dead.is_some() {
            return GapOutcome::GiveUp;
        }
        let (side, _, conn) = self.pair(dir);
        match &mut side.stage {
            Stage::Opaque => GapOutcome::Skipped,
            Stage::Body(b) if matches!(b.kind, BodyKind::Skip | BodyKind::Data) => {
                // Only bytes the parser would not have looked at can go missing without
                // losing the framing: a payload being skipped or counted.
                if u64::from(len) > u64::from(b.left) + u64::from(b.pad) {
                    return GapOutcome::GiveUp;
                }
                let from_left = len.min(b.left);
                b.left -= from_left;
                b.pad -= len - from_left;
                if b.kind == BodyKind::Data
                    && from_left > 0
                    && let Some(st) = conn.streams.iter_mut().find(|s| s.id == b.stream)
                    && let Some(f) = st.framers.get_mut(ix(dir))
                {
                    f.lose_sync();
                }
                conn.resync_pending = true;
                GapOutcome::Skipped
            }
            _ => GapOutcome::GiveUp,
        }
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        for st in self.conn.streams.drain(..) {
            if !st.responded {
                sink.fact(&Fact::Unanswered {
                    app: app_of(st.grpc),
                    id: st.tx,
                });
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
