//! PostgreSQL v3 wire-protocol parser.
//!
//! Reads both directions of a frontend/backend conversation: the startup packet (reported as
//! a `LOGIN` transaction with its user and database), SSL/GSS encryption requests (the flow
//! becomes opaque once the server accepts), simple queries (every statement of a message
//! classified), the extended protocol (Parse / Bind / Execute / Sync, with a bounded table of
//! prepared statements so an Execute is judged by what its statement was prepared with),
//! COPY data, and the server's outcomes (ErrorResponse with SQLSTATE and message,
//! CommandComplete, ReadyForQuery) paired to requests in order.
//!
//! The text of a Query or Parse message, up to the server's 1 GB message limit, is
//! classified as it streams past ([`crate::sql`]), never buffered: its statements are
//! reported before the message's last byte has been consumed, so before the server runs
//! them. Message bodies the parser does not need (rows, COPY data, passwords, parameters)
//! are skipped by counting; the few small messages it reads whole are capped at
//! [`MAX_BUFFERED`] bytes, which bounds the carry ([`StreamParser::max_carry`]).

mod backend;
mod frontend;
mod startup;
#[cfg(test)]
mod tests;

use crate::AppProto;
use crate::Direction;
use crate::contract::{
    Fact, FactSink, GapOutcome, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{RequestDetail, ResponseDetail, SqlDialect, SqlKind, SqlRequest, SqlResponse};
use crate::sql::prepared::Key;
use crate::sql::{
    Classifier, Pending, PendingQueue, PreparedStore, RequestInfo, report_batch, report_statements,
};

/// Largest message read whole (Close, ErrorResponse, CommandComplete). Larger ones are
/// skipped by counting with [`ParserAnomaly::MessageTooLarge`]. Query and Parse texts are
/// streamed, of any length.
pub const MAX_BUFFERED: usize = 32 * 1024;
/// The server's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP: usize = 10_000;
/// Requests paired with their outcome; past it, the oldest lose their pairing (every
/// request is still reported: see [`crate::sql::PendingQueue`]).
pub const MAX_PENDING: usize = 1024;
/// Prepared statements kept per flow (see [`crate::sql::prepared`]).
pub const MAX_PREPARED: usize = crate::sql::prepared::MAX_PREPARED;
/// Portals kept per flow.
pub const MAX_PORTALS: usize = 64;
/// Bytes kept of a user, database, statement or portal name.
pub const MAX_IDENT: usize = 256;
/// Bytes of a Bind's head read to find its portal and statement names.
const BIND_HEAD: usize = 2 * MAX_IDENT + 2;
const TAG_MAX: usize = 64;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PKind {
    Login,
    /// Simple query: outcome at ReadyForQuery (or its first ErrorResponse).
    Query,
    /// A function call: paired, not reported.
    Hidden,
    Parse,
    Execute,
    Sync,
}

struct Portal {
    name: Vec<u8>,
    /// The prepared statement it was bound to (its serial in the table), if known then.
    statement: Option<u64>,
}

/// Where a streamed Query or Parse message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyPhase {
    /// Parse: the statement name (bounded copy) up to its NUL.
    Name,
    /// The statement text, classified as it arrives.
    Text,
}

/// A Query or Parse message being read.
#[derive(Clone, Copy, Debug)]
struct Body {
    kind: PKind,
    id: u32,
    /// Bytes of the message body not read yet.
    left: u64,
    phase: BodyPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientPhase {
    /// Untyped startup packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
    Startup,
    Messages,
}

/// Parser of one PostgreSQL connection.
pub struct PostgresParser {
    phase: ClientPhase,
    /// The server owes a one-byte answer to an SSLRequest/GSSENCRequest.
    await_enc_answer: bool,
    opaque: bool,
    /// Bytes left to skip of the current message, per direction.
    skip: [u64; 2],
    /// The client's Query or Parse being streamed.
    body: Option<Body>,
    /// Name of the statement the streamed Parse prepares.
    parse_name: Vec<u8>,
    pending: PendingQueue<PKind>,
    next_id: u32,
    user: Vec<u8>,
    database: Vec<u8>,
    logged_in: bool,
    classifier: Classifier,
    prepared: PreparedStore,
    portals: Vec<Portal>,
    /// Login summary, built per login.
    scratch: Vec<u8>,
    /// Last CommandComplete tag of the current simple query.
    tag: Vec<u8>,
}

impl Default for PostgresParser {
    fn default() -> Self {
        PostgresParser {
            phase: ClientPhase::Startup,
            await_enc_answer: false,
            opaque: false,
            skip: [0; 2],
            body: None,
            parse_name: Vec::new(),
            pending: crate::sql::pending::queue(MAX_PENDING),
            next_id: 0,
            user: Vec::new(),
            database: Vec::new(),
            logged_in: false,
            classifier: Classifier::new(),
            prepared: PreparedStore::new(),
            portals: Vec::new(),
            scratch: Vec::new(),
            tag: Vec::new(),
        }
    }
}

/// One parse step on the bytes at hand.
enum Step {
    /// A message (or a part being skipped) was consumed.
    Consumed(usize),
    NeedMore,
    Invalid(Invalid),
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A NUL-terminated string at the start of `b`: (string, rest after the NUL).
fn cstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = b.iter().position(|&c| c == 0)?;
    Some((b.get(..n)?, b.get(n + 1..)?))
}

/// The header of the typed message at the start of `b` (either direction): its type, its
/// length on the wire and its body's length; or the step to return (more bytes needed, or
/// a length too small to be one, reported as bad framing).
fn message_head(b: &[u8], sink: &mut dyn FactSink) -> Result<(u8, u64, usize), Step> {
    let (Some(&ty), Some(len)) = (b.first(), be32(b, 1)) else {
        return Err(Step::NeedMore);
    };
    if len < 4 {
        sink.anomaly(ParserAnomaly::BadFraming);
        return Err(Step::Invalid(Invalid::BadLength));
    }
    Ok((ty, 1 + len as u64, len as usize - 4))
}

fn set_bounded(dst: &mut Vec<u8>, src: &[u8]) -> bool {
    dst.clear();
    let n = src.len().min(MAX_IDENT);
    dst.extend_from_slice(src.get(..n).unwrap_or_default());
    n == src.len()
}

fn ix(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl PostgresParser {
    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Queues a request for pairing with its outcome (never refused: see PendingQueue).
    fn push_pending(&mut self, kind: PKind, id: u32, reported: bool, sink: &mut dyn FactSink) {
        self.pending.push(Pending::new(kind, id, reported), sink);
    }

    fn go_opaque(&mut self, reason: OpaqueReason, sink: &mut dyn FactSink) {
        if !self.opaque {
            self.opaque = true;
            sink.fact(&Fact::Opaque {
                app: AppProto::Postgres,
                reason,
            });
        }
    }
}

impl StreamParser for PostgresParser {
    fn proto(&self) -> AppProto {
        AppProto::Postgres
    }

    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let d = ix(dir);
        let mut off = 0usize;
        loop {
            if self.opaque {
                return Progress::Done {
                    consumed: data.len(),
                };
            }
            let rest = data.get(off..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: off };
            }
            let skip = self.skip.get(d).copied().unwrap_or(0);
            if skip > 0 {
                let n = skip.min(rest.len() as u64);
                if let Some(s) = self.skip.get_mut(d) {
                    *s -= n;
                }
                off += n as usize;
                continue;
            }
            if dir == Direction::ToServer
                && let Some(body) = self.body
            {
                let n = self.stream_body(body, rest, sink);
                if n == 0 {
                    self.body = None;
                }
                off += n.min(rest.len());
                continue;
            }
            let step = match dir {
                Direction::ToServer if self.phase == ClientPhase::Startup => {
                    self.client_startup(rest, sink)
                }
                Direction::ToServer => self.client_message(rest, sink),
                Direction::ToClient => self.server_message(rest, sink),
            };
            match step {
                Step::Consumed(n) => off += n.min(rest.len()),
                Step::NeedMore => return Progress::NeedMore { consumed: off },
                Step::Invalid(why) => return Progress::Invalid(why),
            }
        }
    }

    /// Skipped inside a body being skipped, or once the flow is opaque; anywhere else the
    /// parser gives up. PostgreSQL messages are length-prefixed binary with no marker a
    /// resynchronisation could look for: a byte that looks like a message type followed by
    /// a plausible length is as likely to be inside a row or a statement, and a guess that
    /// misparses would report statements nobody sent.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        if self.opaque {
            return GapOutcome::Skipped;
        }
        if dir == Direction::ToServer && self.body.is_some() {
            // Bytes of a statement text are missing: it cannot be judged.
            return GapOutcome::GiveUp;
        }
        // Inside a body being skipped, a gap only shortens the skip; anywhere else the
        // framing is lost.
        match self.skip.get_mut(ix(dir)) {
            Some(s) if *s >= u64::from(len) => {
                *s -= u64::from(len);
                GapOutcome::Skipped
            }
            _ => GapOutcome::GiveUp,
        }
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        while let Some(p) = self.pending.pop_front() {
            if p.reported && !p.answered {
                sink.fact(&Fact::Unanswered {
                    app: AppProto::Postgres,
                    id: p.id,
                });
            }
        }
        // A message cut off by the end of the flow, of which statements were reported.
        if let Some(body) = self.body.take()
            && body.phase == BodyPhase::Text
            && self.classifier.reported()
        {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Postgres,
                id: body.id,
            });
        }
    }

    fn max_carry(&self) -> usize {
        // The largest message read whole and its header; texts stream.
        MAX_BUFFERED + 5
    }
}
