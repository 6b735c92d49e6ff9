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
            pending: PendingQueue::new(MAX_PENDING),
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

    // ---- client -------------------------------------------------------------------------

    fn client_startup(&mut self, b: &[u8], sink: &mut dyn FactSink) -> Step {
        let (Some(len), Some(code)) = (be32(b, 0), be32(b, 4)) else {
            return Step::NeedMore;
        };
        let len = len as usize;
        if !(8..=MAX_STARTUP).contains(&len) {
            sink.anomaly(if len > MAX_STARTUP {
                ParserAnomaly::HeaderTooLarge
            } else {
                ParserAnomaly::BadFraming
            });
            return Step::Invalid(if len > MAX_STARTUP {
                Invalid::TooLarge
            } else {
                Invalid::BadLength
            });
        }
        let Some(msg) = b.get(..len) else {
            return Step::NeedMore;
        };
        match code {
            SSL_REQUEST | GSSENC_REQUEST => {
                // The server answers with one byte; the client waits for it.
                self.await_enc_answer = true;
            }
            // A CancelRequest travels on a connection of its own and gets no answer: there
            // is no statement to judge, only the key of the session to cancel.
            CANCEL_REQUEST => {}
            c if c >> 16 == 3 => {
                self.startup_message(msg.get(8..).unwrap_or_default(), sink);
                self.phase = ClientPhase::Messages;
                let id = self.take_id();
                let db = (!self.database.is_empty()).then_some(self.database.as_slice());
                sink.fact(&Fact::Transaction {
                    app: AppProto::Postgres,
                    id,
                    summary: &self.scratch,
                    detail: RequestDetail::Sql(SqlRequest {
                        dialect: SqlDialect::Postgres,
                        kind: SqlKind::Login,
                        user: Some(&self.user),
                        database: db,
                        text: &[],
                        statements: &[],
                    }),
                });
                self.push_pending(PKind::Login, id, true, sink);
            }
            _ => {
                // Protocol 2 or something else: nothing here reads it.
                self.go_opaque(OpaqueReason::Unsupported, sink);
            }
        }
        Step::Consumed(len)
    }

    fn startup_message(&mut self, mut params: &[u8], sink: &mut dyn FactSink) {
        self.user.clear();
        self.database.clear();
        self.scratch.clear();
        let mut app: &[u8] = &[];
        let mut long = false;
        while let Some((k, rest)) = cstr(params) {
            if k.is_empty() {
                break;
            }
            let Some((v, rest)) = cstr(rest) else { break };
            match k {
                b"user" => long |= !set_bounded(&mut self.user, v),
                b"database" => long |= !set_bounded(&mut self.database, v),
                b"application_name" => app = v,
                _ => {}
            }
            params = rest;
        }
        if long {
            sink.anomaly(ParserAnomaly::HeaderTooLarge);
        }
        if self.database.is_empty() {
            // The server's default: a database named after the user.
            self.database.extend_from_slice(&self.user);
        }
        self.logged_in = true;
        for part in [
            b"LOGIN user=".as_slice(),
            &self.user,
            b" database=",
            &self.database,
            if app.is_empty() {
                b""
            } else {
                b" application_name="
            },
            app,
        ] {
            let room = crate::sql::SUMMARY_MAX.saturating_sub(self.scratch.len());
            self.scratch
                .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        }
    }

    fn client_message(&mut self, b: &[u8], sink: &mut dyn FactSink) -> Step {
        let (Some(&ty), Some(len)) = (b.first(), be32(b, 1)) else {
            return Step::NeedMore;
        };
        if len < 4 {
            sink.anomaly(ParserAnomaly::BadFraming);
            return Step::Invalid(Invalid::BadLength);
        }
        let total = 1 + len as u64;
        let body_len = len as usize - 4;
        match ty {
            b'Q' => {
                // Streamed: the text is classified as it arrives (`stream_body`).
                let id = self.take_id();
                self.classifier.begin(SqlDialect::Postgres);
                self.body = Some(Body {
                    kind: PKind::Query,
                    id,
                    left: u64::from(len - 4),
                    phase: BodyPhase::Text,
                });
                if body_len == 0 {
                    self.end_text(sink);
                }
                Step::Consumed(5)
            }
            b'P' => {
                self.parse_name.clear();
                self.body = Some(Body {
                    kind: PKind::Parse,
                    id: 0,
                    left: u64::from(len - 4),
                    phase: BodyPhase::Name,
                });
                if body_len == 0 {
                    self.body = None;
                    sink.anomaly(ParserAnomaly::BadFraming);
                }
                Step::Consumed(5)
            }
            b'C' => {
                if body_len > MAX_BUFFERED {
                    sink.anomaly(ParserAnomaly::MessageTooLarge);
                    return self.skip_message(ix(Direction::ToServer), b, total);
                }
                let Some(body) = b.get(5..5 + body_len) else {
                    return Step::NeedMore;
                };
                self.close(body);
                Step::Consumed(5 + body_len)
            }
            b'B' => {
                let head = body_len.min(BIND_HEAD);
                let Some(h) = b.get(5..5 + head) else {
                    return Step::NeedMore;
                };
                self.bind(h);
                self.skip_message(ix(Direction::ToServer), b, total)
            }
            b'E' => {
                let head = body_len.min(MAX_IDENT + 1);
                let Some(h) = b.get(5..5 + head) else {
                    return Step::NeedMore;
                };
                let portal = cstr(h).map_or(h, |(p, _)| p);
                self.execute(portal, sink);
                self.skip_message(ix(Direction::ToServer), b, total)
            }
            b'S' | b'F' => {
                let kind = if ty == b'S' {
                    PKind::Sync
                } else {
                    PKind::Hidden
                };
                self.push_pending(kind, 0, false, sink);
                self.skip_message(ix(Direction::ToServer), b, total)
            }
            // Describe, Flush, Terminate, COPY data/done/fail, password / SASL / GSS
            // responses: nothing to judge, skipped (the secrets in `p` are never read).
            b'D' | b'H' | b'X' | b'd' | b'c' | b'f' | b'p' => {
                self.skip_message(ix(Direction::ToServer), b, total)
            }
            _ => {
                sink.anomaly(ParserAnomaly::BadFraming);
                Step::Invalid(Invalid::BadSyntax)
            }
        }
    }

    /// Consumes what is at hand of a `total`-byte message and remembers the rest to skip.
    fn skip_message(&mut self, d: usize, b: &[u8], total: u64) -> Step {
        let now = (b.len() as u64).min(total);
        if let Some(s) = self.skip.get_mut(d) {
            *s = total - now;
        }
        Step::Consumed(now as usize)
    }

    /// Reads what is at hand of the streamed Query or Parse body.
    fn stream_body(&mut self, mut body: Body, b: &[u8], sink: &mut dyn FactSink) -> usize {
        let n = (b.len() as u64).min(body.left) as usize;
        let chunk = b.get(..n).unwrap_or_default();
        let last = n as u64 == body.left;
        match (body.kind, body.phase) {
            (_, BodyPhase::Name) => match chunk.iter().position(|&c| c == 0) {
                Some(p) => {
                    self.keep_name(chunk.get(..p).unwrap_or_default());
                    body.left -= p as u64 + 1;
                    body.phase = BodyPhase::Text;
                    body.id = self.take_id();
                    self.classifier.begin(SqlDialect::Postgres);
                    self.body = Some(body);
                    if body.left == 0 {
                        // No text and no terminator: an empty text up to the end.
                        self.end_text(sink);
                    }
                    p + 1
                }
                None => {
                    self.keep_name(chunk);
                    body.left -= n as u64;
                    if body.left == 0 {
                        // No NUL after the name: nothing to classify.
                        self.body = None;
                        sink.anomaly(ParserAnomaly::BadFraming);
                    } else {
                        self.body = Some(body);
                    }
                    n
                }
            },
            (PKind::Parse, BodyPhase::Text) => match chunk.iter().position(|&c| c == 0) {
                Some(p) => {
                    // The text ends at its NUL; parameter types follow, skipped.
                    self.feed_text(body, chunk.get(..p).unwrap_or_default(), sink);
                    self.end_text(sink);
                    if let Some(s) = self.skip.get_mut(ix(Direction::ToServer)) {
                        *s = body.left - (p as u64 + 1);
                    }
                    p + 1
                }
                None => {
                    self.feed_text(body, chunk, sink);
                    body.left -= n as u64;
                    self.body = Some(body);
                    if last {
                        self.end_text(sink);
                    }
                    n
                }
            },
            _ => {
                // A Query's text is its body without the terminating NUL.
                let text = match chunk.split_last() {
                    Some((0, head)) if last => head,
                    _ => chunk,
                };
                self.feed_text(body, text, sink);
                body.left -= n as u64;
                self.body = Some(body);
                if last {
                    self.end_text(sink);
                }
                n
            }
        }
    }

    fn keep_name(&mut self, part: &[u8]) {
        let room = MAX_IDENT.saturating_sub(self.parse_name.len());
        self.parse_name
            .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
    }

    fn kind_of(body: Body) -> SqlKind {
        if body.kind == PKind::Parse {
            SqlKind::Prepare
        } else {
            SqlKind::Query
        }
    }

    fn feed_text(&mut self, body: Body, text: &[u8], sink: &mut dyn FactSink) {
        if text.is_empty() {
            return;
        }
        let info = RequestInfo {
            dialect: SqlDialect::Postgres,
            id: body.id,
            kind: Self::kind_of(body),
            user: self.logged_in.then_some(self.user.as_slice()),
            database: self.logged_in.then_some(self.database.as_slice()),
        };
        self.classifier
            .feed(text, &mut |b| report_batch(&info, b, sink));
    }

    /// The streamed text ended: its last statements are reported, a Parse's classification
    /// kept for its executions, and the request queued for its outcome.
    fn end_text(&mut self, sink: &mut dyn FactSink) {
        let Some(body) = self.body.take() else {
            return;
        };
        let info = RequestInfo {
            dialect: SqlDialect::Postgres,
            id: body.id,
            kind: Self::kind_of(body),
            user: self.logged_in.then_some(self.user.as_slice()),
            database: self.logged_in.then_some(self.database.as_slice()),
        };
        let name = self.parse_name.as_slice();
        let prepared = &mut self.prepared;
        let mut kept = false;
        self.classifier.finish(&mut |b| {
            report_batch(&info, b, sink);
            if body.kind == PKind::Parse && b.whole {
                kept = prepared.insert(Key::Name(name), b).is_some();
            }
        });
        if body.kind == PKind::Parse && !kept {
            // Reported in parts, or too large to keep: its executions are unknown (a
            // blinding anomaly then), never judged by an older statement of that name.
            self.prepared.remove(Key::Name(&self.parse_name));
        }
        self.push_pending(body.kind, body.id, true, sink);
    }

    fn close(&mut self, body: &[u8]) {
        let (Some(&what), Some(rest)) = (body.first(), body.get(1..)) else {
            return;
        };
        let name = cstr(rest).map_or(rest, |(n, _)| n);
        match what {
            b'S' => self.prepared.remove(Key::Name(name)),
            b'P' => {
                if let Some(i) = self.portals.iter().position(|p| p.name == name) {
                    let old = self.portals.remove(i);
                    self.prepared.unpin(old.statement);
                }
            }
            _ => {}
        }
    }

    fn bind(&mut self, head: &[u8]) {
        let Some((portal, rest)) = cstr(head) else {
            return;
        };
        let statement = cstr(rest).map_or(rest, |(s, _)| s);
        let portal = portal
            .get(..portal.len().min(MAX_IDENT))
            .unwrap_or_default();
        // A portal runs what its statement was when it was bound, whatever is prepared
        // under that name later.
        let serial = self.prepared.serial(Key::Name(statement));
        self.prepared.pin(serial);
        if let Some(p) = self.portals.iter_mut().find(|p| p.name == portal) {
            let old = std::mem::replace(&mut p.statement, serial);
            self.prepared.unpin(old);
            return;
        }
        if self.portals.len() >= MAX_PORTALS {
            // Forget the oldest: an Execute of it is then unknown.
            let old = self.portals.remove(0);
            self.prepared.unpin(old.statement);
        }
        self.portals.push(Portal {
            name: portal.to_vec(),
            statement: serial,
        });
    }

    fn execute(&mut self, portal: &[u8], sink: &mut dyn FactSink) {
        let id = self.take_id();
        let serial = self
            .portals
            .iter()
            .find(|p| p.name == portal)
            .and_then(|p| p.statement);
        let info = RequestInfo {
            dialect: SqlDialect::Postgres,
            id,
            kind: SqlKind::Execute,
            user: self.logged_in.then_some(self.user.as_slice()),
            database: self.logged_in.then_some(self.database.as_slice()),
        };
        self.prepared.with_serial(serial, |found| match found {
            Some((text, statements)) => report_statements(&info, text, statements, sink),
            None => {
                // A statement the parser does not hold (evicted, too large to keep,
                // prepared before it saw the flow): what runs cannot be judged.
                sink.anomaly(ParserAnomaly::MessageTooLarge);
                report_statements(&info, &[], &[], sink);
            }
        });
        self.push_pending(PKind::Execute, id, true, sink);
    }

    // ---- server -------------------------------------------------------------------------

    fn server_message(&mut self, b: &[u8], sink: &mut dyn FactSink) -> Step {
        if self.await_enc_answer {
            let Some(&answer) = b.first() else {
                return Step::NeedMore;
            };
            self.await_enc_answer = false;
            match answer {
                b'S' | b'G' => {
                    self.go_opaque(OpaqueReason::Encrypted, sink);
                    return Step::Consumed(1);
                }
                // Refused: the client goes on with another startup packet.
                b'N' => return Step::Consumed(1),
                // An old server's ErrorResponse: read as a message below.
                _ => {}
            }
        }
        let (Some(&ty), Some(len)) = (b.first(), be32(b, 1)) else {
            return Step::NeedMore;
        };
        if len < 4 {
            sink.anomaly(ParserAnomaly::BadFraming);
            return Step::Invalid(Invalid::BadLength);
        }
        let total = 1 + len as u64;
        let body_len = len as usize - 4;
        let d = ix(Direction::ToClient);
        if self.pending.unpaired() && matches!(ty, b'E' | b'C' | b'Z' | b'1' | b'I' | b's') {
            // Pairing was given up (a pipeline too deep to follow): outcomes are skipped.
            return self.skip_message(d, b, total);
        }
        match ty {
            b'E' | b'C' | b'Z' => {
                if body_len > MAX_BUFFERED {
                    sink.anomaly(ParserAnomaly::MessageTooLarge);
                    if ty == b'E' {
                        self.on_error(&[], sink);
                    }
                    return self.skip_message(d, b, total);
                }
                let Some(body) = b.get(5..5 + body_len) else {
                    return Step::NeedMore;
                };
                match ty {
                    b'E' => self.on_error(body, sink),
                    b'C' => self.on_complete(body, sink),
                    _ => self.on_ready(sink),
                }
                Step::Consumed(5 + body_len)
            }
            b'1' => {
                self.complete_front(PKind::Parse, &[], sink);
                self.skip_message(d, b, total)
            }
            b'I' | b's' => {
                self.complete_front(PKind::Execute, &[], sink);
                self.skip_message(d, b, total)
            }
            // Authentication requests, parameter status, key data, row descriptions and
            // data, bind/close completions, notices, notifications, COPY responses and
            // data, function results, protocol negotiation.
            b'R' | b'S' | b'K' | b'T' | b'D' | b'2' | b'3' | b'n' | b't' | b'N' | b'A' | b'G'
            | b'H' | b'W' | b'd' | b'c' | b'V' | b'v' => self.skip_message(d, b, total),
            _ => {
                sink.anomaly(ParserAnomaly::BadFraming);
                Step::Invalid(Invalid::BadSyntax)
            }
        }
    }

    fn respond(
        &self,
        p: Pending<PKind>,
        summary: &[u8],
        sqlstate: Option<&[u8]>,
        error: Option<&[u8]>,
        sink: &mut dyn FactSink,
    ) {
        if !p.reported || p.answered {
            return;
        }
        sink.fact(&Fact::Response {
            app: AppProto::Postgres,
            id: p.id,
            status: None,
            summary,
            detail: ResponseDetail::Sql(SqlResponse {
                sqlstate,
                code: None,
                error,
            }),
        });
    }

    /// ParseComplete / CommandComplete of an Execute: completes the front request if it is
    /// of that kind.
    fn complete_front(&mut self, kind: PKind, summary: &[u8], sink: &mut dyn FactSink) {
        match self.pending.front() {
            Some(p) if p.kind == kind => {
                self.pending.pop_front();
                self.respond(p, summary, None, None, sink);
            }
            // Inside a simple query: the statements' own completions.
            Some(p) if matches!(p.kind, PKind::Query | PKind::Hidden | PKind::Login) => {}
            _ => sink.anomaly(ParserAnomaly::UnsolicitedResponse),
        }
    }

    fn on_complete(&mut self, body: &[u8], sink: &mut dyn FactSink) {
        let tag = body.strip_suffix(&[0]).unwrap_or(body);
        match self.pending.front().map(|p| p.kind) {
            Some(PKind::Execute) => self.complete_front(PKind::Execute, tag, sink),
            Some(PKind::Query | PKind::Hidden) => {
                self.tag.clear();
                self.tag
                    .extend_from_slice(tag.get(..tag.len().min(TAG_MAX)).unwrap_or_default());
            }
            _ => sink.anomaly(ParserAnomaly::UnsolicitedResponse),
        }
    }

    fn on_error(&mut self, body: &[u8], sink: &mut dyn FactSink) {
        let mut sqlstate = None;
        let mut message = None;
        let mut rest = body;
        while let Some((&field, after)) = rest.split_first() {
            if field == 0 {
                break;
            }
            let Some((value, next)) = cstr(after) else {
                break;
            };
            match field {
                b'C' => sqlstate = Some(value),
                b'M' => message = Some(value),
                _ => {}
            }
            rest = next;
        }
        let error = Some(message.unwrap_or_default());
        let summary = message.unwrap_or_default();
        let Some(p) = self.pending.front() else {
            // A FATAL error outside any request (shutdown, idle timeout).
            return;
        };
        self.pending.set_front_answered();
        match p.kind {
            PKind::Login | PKind::Query | PKind::Hidden | PKind::Sync => {
                self.respond(p, summary, sqlstate, error, sink);
                if p.kind == PKind::Login {
                    self.pending.pop_front();
                }
            }
            PKind::Parse | PKind::Execute => {
                self.pending.pop_front();
                self.respond(p, summary, sqlstate, error, sink);
                // The server now discards every message up to the next Sync.
                while let Some(q) = self.pending.front() {
                    if q.kind == PKind::Sync {
                        break;
                    }
                    self.pending.pop_front();
                    if q.reported {
                        sink.fact(&Fact::Unanswered {
                            app: AppProto::Postgres,
                            id: q.id,
                        });
                    }
                }
            }
        }
    }

    fn on_ready(&mut self, sink: &mut dyn FactSink) {
        // ReadyForQuery ends a simple query, a Sync, or the login; anything still queued
        // before it was skipped by the server.
        while let Some(p) = self.pending.pop_front() {
            match p.kind {
                PKind::Query | PKind::Hidden | PKind::Login => {
                    let tag = std::mem::take(&mut self.tag);
                    self.respond(p, &tag, None, None, sink);
                    self.tag = tag;
                    self.tag.clear();
                    return;
                }
                PKind::Sync => return,
                PKind::Parse | PKind::Execute => {
                    if p.reported && !p.answered {
                        sink.fact(&Fact::Unanswered {
                            app: AppProto::Postgres,
                            id: p.id,
                        });
                    }
                }
            }
        }
        sink.anomaly(ParserAnomaly::UnsolicitedResponse);
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
