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
//!
//! [`RequestDetail::Grpc`]: crate::facts::RequestDetail::Grpc

mod frames;
mod headers;
pub mod hpack;
mod streams;

use hpack::{Decoder, Field, Limits};

use crate::contract::{
    Fact, FactSink, GapOutcome, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::Header;
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
    ///
    /// [`recycle`]: headers::recycle
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
}

const fn app_of(grpc: bool) -> AppProto {
    if grpc {
        AppProto::Grpc
    } else {
        AppProto::Http2
    }
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
