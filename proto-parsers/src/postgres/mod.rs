//! PostgreSQL v3 wire-protocol parser.
//!
//! Reads both directions of a frontend/backend conversation: the startup packet (reported as
//! a `LOGIN` transaction with its user and database), SSL/GSS encryption requests (the flow
//! becomes opaque once the server accepts), simple queries (every statement of a message
//! classified), the extended protocol (Parse / Bind / Execute / Sync, with a bounded map of
//! prepared statements so an Execute is reported with the text it was prepared with), COPY
//! data, and the server's outcomes (ErrorResponse with SQLSTATE and message, CommandComplete,
//! ReadyForQuery) paired to requests in order.
//!
//! Message bodies the parser does not need (rows, COPY data, passwords, parameters) are
//! skipped by counting, never buffered; the few it needs whole are capped at
//! [`MAX_BUFFERED`] bytes.

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::AppProto;
use crate::Direction;
use crate::contract::{
    Fact, FactSink, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{RequestDetail, ResponseDetail, SqlDialect, SqlKind, SqlRequest, SqlResponse};
use crate::sql::{Classifier, report_request};

/// Largest message read whole (query text, Parse, ErrorResponse). Larger ones are skipped by
/// counting with [`ParserAnomaly::MessageTooLarge`]; this stays well under the caller's
/// 64 KiB carry so a message in flight never overflows it.
pub const MAX_BUFFERED: usize = 32 * 1024;
/// The server's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP: usize = 10_000;
/// Requests awaiting their outcome; more make the flow opaque (a pipelining flood).
pub const MAX_PENDING: usize = 1024;
/// Named prepared statements kept per flow (the unnamed one always fits).
pub const MAX_PREPARED: usize = 256;
/// Bytes of prepared statement text kept per flow, all statements together.
pub const MAX_PREPARED_BYTES: usize = 512 * 1024;
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
    /// A query we could not read (too large) or a function call: paired, not reported.
    Hidden,
    Parse,
    Execute,
    Sync,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: PKind,
    id: u32,
    /// Reported as a transaction (so it needs a response or Unanswered).
    reported: bool,
    /// Its response was already reported (an error before ReadyForQuery).
    answered: bool,
}

struct Prepared {
    name: Vec<u8>,
    text: Vec<u8>,
}

struct Portal {
    name: Vec<u8>,
    statement: Vec<u8>,
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
    pending: VecDeque<Pending>,
    next_id: u32,
    user: Vec<u8>,
    database: Vec<u8>,
    logged_in: bool,
    classifier: Classifier,
    prepared: Vec<Prepared>,
    prepared_bytes: usize,
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
            pending: VecDeque::with_capacity(16),
            next_id: 0,
            user: Vec::new(),
            database: Vec::new(),
            logged_in: false,
            classifier: Classifier::new(),
            prepared: Vec::new(),
            prepared_bytes: 0,
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

    /// Queues a request; false when the queue is full (the caller gives the flow up).
    fn push_pending(
        &mut self,
        kind: PKind,
        id: u32,
        reported: bool,
        sink: &mut dyn FactSink,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            sink.anomaly(ParserAnomaly::TooManyTransactions);
            return false;
        }
        self.pending.push_back(Pending {
            kind,
            id,
            reported,
            answered: false,
        });
        true
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
                let ok = {
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
                    self.push_pending(PKind::Login, id, true, sink)
                };
                if !ok {
                    return Step::Invalid(Invalid::TooLarge);
                }
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
            b'Q' | b'P' | b'C' => {
                if body_len > MAX_BUFFERED {
                    sink.anomaly(ParserAnomaly::MessageTooLarge);
                    if ty != b'C' {
                        // The server still answers it: keep the pairing.
                        let kind = if ty == b'Q' {
                            PKind::Hidden
                        } else {
                            PKind::Parse
                        };
                        if !self.push_pending(kind, 0, false, sink) {
                            return Step::Invalid(Invalid::TooLarge);
                        }
                    }
                    return self.skip_message(ix(Direction::ToServer), b, total);
                }
                let Some(body) = b.get(5..5 + body_len) else {
                    return Step::NeedMore;
                };
                let ok = match ty {
                    b'Q' => self.query(body, sink),
                    b'P' => self.parse(body, sink),
                    _ => {
                        self.close(body);
                        true
                    }
                };
                if !ok {
                    return Step::Invalid(Invalid::TooLarge);
                }
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
                if !self.execute(portal, sink) {
                    return Step::Invalid(Invalid::TooLarge);
                }
                self.skip_message(ix(Direction::ToServer), b, total)
            }
            b'S' | b'F' => {
                let kind = if ty == b'S' {
                    PKind::Sync
                } else {
                    PKind::Hidden
                };
                if !self.push_pending(kind, 0, false, sink) {
                    return Step::Invalid(Invalid::TooLarge);
                }
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

    fn query(&mut self, body: &[u8], sink: &mut dyn FactSink) -> bool {
        let text = body.strip_suffix(&[0]).unwrap_or(body);
        let id = self.take_id();
        let user = self.logged_in.then_some(self.user.as_slice());
        let db = self.logged_in.then_some(self.database.as_slice());
        report_request(
            &mut self.classifier,
            sink,
            SqlDialect::Postgres,
            id,
            SqlKind::Query,
            user,
            db,
            text,
        );
        self.push_pending(PKind::Query, id, true, sink)
    }

    fn parse(&mut self, body: &[u8], sink: &mut dyn FactSink) -> bool {
        let Some((name, rest)) = cstr(body) else {
            sink.anomaly(ParserAnomaly::BadFraming);
            return true;
        };
        let text = cstr(rest).map_or(rest, |(t, _)| t);
        let id = self.take_id();
        let user = self.logged_in.then_some(self.user.as_slice());
        let db = self.logged_in.then_some(self.database.as_slice());
        report_request(
            &mut self.classifier,
            sink,
            SqlDialect::Postgres,
            id,
            SqlKind::Prepare,
            user,
            db,
            text,
        );
        self.store_prepared(name, text, sink);
        self.push_pending(PKind::Parse, id, true, sink)
    }

    fn store_prepared(&mut self, name: &[u8], text: &[u8], sink: &mut dyn FactSink) {
        let name = name.get(..name.len().min(MAX_IDENT)).unwrap_or_default();
        if let Some(i) = self.prepared.iter().position(|p| p.name == name) {
            // Re-preparing a name (the unnamed statement every time) replaces it in place,
            // reusing its buffer.
            let old = self.prepared.get(i).map_or(0, |p| p.text.len());
            if self.prepared_bytes - old + text.len() > MAX_PREPARED_BYTES {
                let gone = self.prepared.swap_remove(i);
                self.prepared_bytes -= gone.text.len();
                sink.anomaly(ParserAnomaly::TooManyTransactions);
                return;
            }
            if let Some(p) = self.prepared.get_mut(i) {
                p.text.clear();
                p.text.extend_from_slice(text);
            }
            self.prepared_bytes = self.prepared_bytes - old + text.len();
            return;
        }
        if self.prepared.len() >= MAX_PREPARED
            || self.prepared_bytes + text.len() > MAX_PREPARED_BYTES
        {
            // Its Execute will be reported without text; the Prepare was judged already.
            sink.anomaly(ParserAnomaly::TooManyTransactions);
            return;
        }
        self.prepared_bytes += text.len();
        self.prepared.push(Prepared {
            name: name.to_vec(),
            text: text.to_vec(),
        });
    }

    fn close(&mut self, body: &[u8]) {
        let (Some(&what), Some(rest)) = (body.first(), body.get(1..)) else {
            return;
        };
        let name = cstr(rest).map_or(rest, |(n, _)| n);
        match what {
            b'S' => {
                if let Some(i) = self.prepared.iter().position(|p| p.name == name) {
                    let old = self.prepared.swap_remove(i);
                    self.prepared_bytes -= old.text.len();
                }
            }
            b'P' => self.portals.retain(|p| p.name != name),
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
        let statement = statement
            .get(..statement.len().min(MAX_IDENT))
            .unwrap_or_default();
        if let Some(p) = self.portals.iter_mut().find(|p| p.name == portal) {
            p.statement.clear();
            p.statement.extend_from_slice(statement);
            return;
        }
        if self.portals.len() >= MAX_PORTALS {
            // Forget the oldest: an Execute of it is then reported without text.
            self.portals.remove(0);
        }
        self.portals.push(Portal {
            name: portal.to_vec(),
            statement: statement.to_vec(),
        });
    }

    fn execute(&mut self, portal: &[u8], sink: &mut dyn FactSink) -> bool {
        let id = self.take_id();
        let text = self
            .portals
            .iter()
            .find(|p| p.name == portal)
            .and_then(|p| self.prepared.iter().find(|s| s.name == p.statement))
            .map_or(&[][..], |s| s.text.as_slice());
        let user = self.logged_in.then_some(self.user.as_slice());
        let db = self.logged_in.then_some(self.database.as_slice());
        report_request(
            &mut self.classifier,
            sink,
            SqlDialect::Postgres,
            id,
            SqlKind::Execute,
            user,
            db,
            text,
        );
        self.push_pending(PKind::Execute, id, true, sink)
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
        p: Pending,
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
        match self.pending.front().copied() {
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
        let Some(front) = self.pending.front_mut() else {
            // A FATAL error outside any request (shutdown, idle timeout).
            return;
        };
        let p = *front;
        front.answered = true;
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
                while let Some(q) = self.pending.front().copied() {
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

    fn gap(&mut self, dir: Direction, len: u32) -> bool {
        if self.opaque {
            return true;
        }
        // Inside a body being skipped, a gap only shortens the skip; anywhere else the
        // framing is lost.
        match self.skip.get_mut(ix(dir)) {
            Some(s) if *s >= u64::from(len) => {
                *s -= u64::from(len);
                true
            }
            _ => false,
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
    }
}
