//! MySQL/MariaDB client/server protocol parser.
//!
//! Reads both directions of a classic-protocol connection: the server greeting, the client's
//! HandshakeResponse41 (reported as a `LOGIN` transaction with user and database), the
//! authentication exchange (skipped, secrets never read), then commands: COM_QUERY (every
//! statement classified), COM_INIT_DB (the current database follows it), COM_STMT_PREPARE
//! (the server's statement id mapped to the text, bounded), COM_STMT_EXECUTE (reported with
//! the prepared text), and the rest. Responses (OK, ERR with code and SQLSTATE, text and
//! binary result sets, prepare replies, multi-result sequences) are followed packet by packet
//! so each outcome pairs with its command; rows are skipped by counting, never buffered. TLS
//! (CLIENT_SSL) and the compressed protocol make the flow opaque.

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::AppProto;
use crate::Direction;
use crate::contract::{
    Fact, FactSink, Invalid, OpaqueReason, ParserAnomaly, Progress, StreamParser,
};
use crate::facts::{RequestDetail, ResponseDetail, SqlDialect, SqlKind, SqlRequest, SqlResponse};
use crate::sql::{Classifier, SUMMARY_MAX, report_request};

/// Largest packet payload read whole (statement text, OK/ERR, greeting, login). Larger
/// ones are skipped by counting with [`ParserAnomaly::MessageTooLarge`].
pub const MAX_BUFFERED: usize = 32 * 1024;
/// Commands awaiting their outcome (the protocol is request/response; more is a flood).
pub const MAX_PENDING: usize = 64;
/// Prepared statements kept per flow.
pub const MAX_PREPARED: usize = 256;
/// Bytes of prepared statement text kept per flow, all statements together.
pub const MAX_PREPARED_BYTES: usize = 512 * 1024;
/// Bytes kept of a user or database name.
pub const MAX_IDENT: usize = 256;

/// A payload of this length continues in the next packet.
const MAX_PACKET: usize = 0xff_ffff;

const CLIENT_CONNECT_WITH_DB: u64 = 0x8;
const CLIENT_COMPRESS: u64 = 0x20;
const CLIENT_PROTOCOL_41: u64 = 0x200;
const CLIENT_SSL: u64 = 0x800;
const CLIENT_SECURE_CONNECTION: u64 = 0x8000;
const CLIENT_PLUGIN_AUTH: u64 = 0x8_0000;
const CLIENT_PLUGIN_AUTH_LENENC: u64 = 0x20_0000;
const CLIENT_DEPRECATE_EOF: u64 = 0x100_0000;
const CLIENT_ZSTD: u64 = 0x400_0000;
/// MariaDB: the server may omit column definitions the client has cached.
const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << 36;
const SERVER_MORE_RESULTS_EXISTS: u16 = 0x8;

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_FIELD_LIST: u8 = 0x04;
const COM_CHANGE_USER: u8 = 0x11;
const COM_BINLOG_DUMP: u8 = 0x12;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_FETCH: u8 = 0x1c;
const COM_BINLOG_DUMP_GTID: u8 = 0x1e;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Login,
    Query,
    InitDb,
    Prepare,
    Execute,
    /// Answered by a column list ending with EOF.
    FieldList,
    /// Answered by rows ending with EOF (a cursor fetch).
    Fetch,
    /// Any other command: its first response packet ends it.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    cmd: Cmd,
    id: u32,
    reported: bool,
}

/// Where the server's answer to the front command stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resp {
    /// The next packet starts a response (OK, ERR, result set, prepare OK, infile request).
    First,
    /// Definition packets left (columns, prepare parameters, their EOFs), then rows (a
    /// result set) or the end of the response (a prepare reply).
    Defs { left: u64, then_rows: bool },
    /// COM_FIELD_LIST: column definitions until EOF or ERR.
    FieldList,
    /// Rows until EOF/OK or ERR.
    Rows,
    /// LOCAL INFILE: the client sends the file; the server's OK/ERR follows.
    Infile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server greeting and the client's handshake response.
    Handshake,
    /// Handshake response sent: authentication until the server's OK or ERR.
    Auth,
    Command,
}

/// Parser of one MySQL/MariaDB connection.
pub struct MysqlParser {
    phase: Phase,
    opaque: bool,
    server_caps: u64,
    client_caps: u64,
    /// Bytes left to skip of the current packet, per direction.
    skip: [u64; 2],
    /// The last packet had the maximum length: the next one continues its payload.
    continuing: [bool; 2],
    pending: VecDeque<Pending>,
    resp: Resp,
    next_id: u32,
    user: Vec<u8>,
    database: Vec<u8>,
    has_db: bool,
    logged_in: bool,
    /// Database named by an outstanding COM_INIT_DB or `USE` query, applied on its OK.
    new_db: Option<Vec<u8>>,
    classifier: Classifier,
    prepared: Vec<(u32, Vec<u8>)>,
    prepared_bytes: usize,
    /// Text of the outstanding COM_STMT_PREPARE, until the server names its id.
    prepare_text: Vec<u8>,
    prepare_text_ok: bool,
    scratch: Vec<u8>,
}

impl Default for MysqlParser {
    fn default() -> Self {
        MysqlParser {
            phase: Phase::Handshake,
            opaque: false,
            server_caps: 0,
            client_caps: 0,
            skip: [0; 2],
            continuing: [false; 2],
            pending: VecDeque::with_capacity(4),
            resp: Resp::First,
            next_id: 0,
            user: Vec::new(),
            database: Vec::new(),
            has_db: false,
            logged_in: false,
            new_db: None,
            classifier: Classifier::new(),
            prepared: Vec::new(),
            prepared_bytes: 0,
            prepare_text: Vec::new(),
            prepare_text_ok: false,
            scratch: Vec::new(),
        }
    }
}

enum Step {
    Consumed(usize),
    NeedMore,
    Invalid(Invalid),
}

fn ix(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A length-encoded integer: (value, bytes used).
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let width = match first {
        0..=0xfa => return Some((u64::from(first), 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = b.get(1..1 + width)?;
    let mut v = 0u64;
    for (i, &x) in bytes.iter().enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    Some((v, 1 + width))
}

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

/// An OK packet's status flags (header 0x00 or 0xfe).
fn ok_status(p: &[u8]) -> u16 {
    let rest = p.get(1..).unwrap_or_default();
    let Some((_, a)) = lenenc(rest) else { return 0 };
    let Some((_, b)) = lenenc(rest.get(a..).unwrap_or_default()) else {
        return 0;
    };
    le16(rest, a + b).unwrap_or(0)
}

/// How much of a packet's payload a handler needs before it can act.
#[derive(Clone, Copy)]
enum Need {
    /// The whole payload (bounded by MAX_BUFFERED).
    Whole,
    /// Its first bytes only; the rest is skipped.
    Head(usize),
}

impl MysqlParser {
    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn go_opaque(&mut self, reason: OpaqueReason, sink: &mut dyn FactSink) {
        if !self.opaque {
            self.opaque = true;
            sink.fact(&Fact::Opaque {
                app: AppProto::Mysql,
                reason,
            });
        }
    }

    fn push_pending(&mut self, cmd: Cmd, id: u32, reported: bool, sink: &mut dyn FactSink) -> bool {
        if self.pending.len() >= MAX_PENDING {
            sink.anomaly(ParserAnomaly::TooManyTransactions);
            return false;
        }
        if self.pending.is_empty() {
            self.resp = Resp::First;
        }
        self.pending.push_back(Pending { cmd, id, reported });
        true
    }

    fn deprecate_eof(&self) -> bool {
        self.client_caps & self.server_caps & CLIENT_DEPRECATE_EOF != 0
    }

    /// One packet of direction `d`: header, then what the handler needs of the payload.
    fn packet(&mut self, dir: Direction, b: &[u8], sink: &mut dyn FactSink) -> Step {
        let d = ix(dir);
        let Some(&[l0, l1, l2, seq]) = b.get(..4) else {
            return Step::NeedMore;
        };
        let len = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
        let total = 4 + len as u64;
        let continuation = self.continuing.get(d).copied().unwrap_or(false);
        if let Some(c) = self.continuing.get_mut(d) {
            *c = len == MAX_PACKET;
        }
        if continuation {
            // The rest of a payload too large to read: skipped as a whole.
            return self.skip_packet(d, b, total);
        }
        let need = match dir {
            Direction::ToServer => self.client_need(b.get(4).copied(), seq, len),
            Direction::ToClient => self.server_need(b.get(4).copied(), len),
        };
        let want = match need {
            Need::Whole => len,
            Need::Head(n) => n.min(len),
        };
        if want > MAX_BUFFERED || (matches!(need, Need::Whole) && len == MAX_PACKET) {
            sink.anomaly(ParserAnomaly::MessageTooLarge);
            if let Some(step) = self.too_large(dir, b.get(4).copied(), sink) {
                return step;
            }
            return self.skip_packet(d, b, total);
        }
        let Some(payload) = b.get(4..4 + want) else {
            return Step::NeedMore;
        };
        let ok = match dir {
            Direction::ToServer => self.client_packet(payload, seq, sink),
            Direction::ToClient => self.server_packet(payload, len, sink),
        };
        if !ok {
            return Step::Invalid(Invalid::TooLarge);
        }
        if want == len {
            Step::Consumed(4 + len)
        } else {
            self.skip_packet(d, b, total)
        }
    }

    fn skip_packet(&mut self, d: usize, b: &[u8], total: u64) -> Step {
        let now = (b.len() as u64).min(total);
        if let Some(s) = self.skip.get_mut(d) {
            *s = total - now;
        }
        Step::Consumed(now as usize)
    }

    /// A packet we needed whole is too large: keep the pairing, report what we can.
    fn too_large(
        &mut self,
        dir: Direction,
        first: Option<u8>,
        sink: &mut dyn FactSink,
    ) -> Option<Step> {
        match dir {
            Direction::ToServer => {
                if self.phase != Phase::Command {
                    return Some(Step::Invalid(Invalid::TooLarge));
                }
                // An unreadable command still gets an answer.
                if !matches!(
                    first,
                    Some(COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA | COM_QUIT)
                ) && !self.push_pending(Cmd::Other, 0, false, sink)
                {
                    return Some(Step::Invalid(Invalid::TooLarge));
                }
                None
            }
            Direction::ToClient => {
                // A huge OK/ERR/greeting: end the front command without details.
                if let Some(p) = self.pending.pop_front() {
                    self.respond(p, None, &[], None, sink);
                }
                None
            }
        }
    }

    // ---- client -------------------------------------------------------------------------

    fn client_need(&self, first: Option<u8>, seq: u8, len: usize) -> Need {
        match self.phase {
            Phase::Handshake => Need::Whole,
            Phase::Auth => Need::Head(0),
            Phase::Command if seq != 0 => Need::Head(0),
            Phase::Command => match first {
                Some(COM_QUERY | COM_INIT_DB | COM_STMT_PREPARE | COM_CHANGE_USER) => Need::Whole,
                Some(COM_STMT_EXECUTE | COM_STMT_CLOSE) => Need::Head(5),
                _ => Need::Head(1.min(len)),
            },
        }
    }

    fn client_packet(&mut self, p: &[u8], seq: u8, sink: &mut dyn FactSink) -> bool {
        match self.phase {
            Phase::Handshake => self.handshake_response(p, sink),
            // Auth switch responses, more auth data: secrets, never read.
            Phase::Auth => true,
            // LOCAL INFILE content and other continuations of a command.
            Phase::Command if seq != 0 => true,
            Phase::Command => self.command(p, sink),
        }
    }

    fn handshake_response(&mut self, p: &[u8], sink: &mut dyn FactSink) -> bool {
        let lower = le16(p, 0).map_or(0, u64::from);
        let caps = le32(p, 0).map_or(lower, u64::from);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            self.go_opaque(OpaqueReason::Unsupported, sink);
            return true;
        }
        // MariaDB's extended capabilities sit in the last 4 filler bytes.
        let ext = le32(p, 28).map_or(0, u64::from);
        self.client_caps = caps | ext << 32;
        if p.len() <= 32 {
            if caps & CLIENT_SSL != 0 {
                self.go_opaque(OpaqueReason::Encrypted, sink);
            } else {
                sink.anomaly(ParserAnomaly::BadFraming);
            }
            return true;
        }
        let rest = p.get(32..).unwrap_or_default();
        let (user, rest) = cstr(rest).unwrap_or((rest, &[]));
        let mut long = !set_bounded(&mut self.user, user);
        // Skip the auth response without reading it.
        let rest = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
            lenenc(rest).map_or(&[][..], |(n, w)| {
                rest.get(w.saturating_add(n as usize)..).unwrap_or_default()
            })
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            rest.first().map_or(&[][..], |&n| {
                rest.get(1 + usize::from(n)..).unwrap_or_default()
            })
        } else {
            cstr(rest).map_or(&[][..], |(_, r)| r)
        };
        self.has_db = false;
        if caps & CLIENT_CONNECT_WITH_DB != 0 {
            let db = cstr(rest).map_or(rest, |(d, _)| d);
            long |= !set_bounded(&mut self.database, db);
            self.has_db = !db.is_empty();
        }
        let _ = CLIENT_PLUGIN_AUTH;
        if long {
            sink.anomaly(ParserAnomaly::HeaderTooLarge);
        }
        self.logged_in = true;
        self.phase = Phase::Auth;
        self.report_login(sink)
    }

    fn report_login(&mut self, sink: &mut dyn FactSink) -> bool {
        self.scratch.clear();
        let db: &[u8] = if self.has_db { &self.database } else { b"-" };
        for part in [b"LOGIN user=".as_slice(), &self.user, b" database=", db] {
            let room = SUMMARY_MAX.saturating_sub(self.scratch.len());
            self.scratch
                .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        }
        let id = self.take_id();
        sink.fact(&Fact::Transaction {
            app: AppProto::Mysql,
            id,
            summary: &self.scratch,
            detail: RequestDetail::Sql(SqlRequest {
                dialect: SqlDialect::Mysql,
                kind: SqlKind::Login,
                user: Some(&self.user),
                database: self.has_db.then_some(self.database.as_slice()),
                text: &[],
                statements: &[],
            }),
        });
        self.push_pending(Cmd::Login, id, true, sink)
    }

    fn command(&mut self, p: &[u8], sink: &mut dyn FactSink) -> bool {
        let Some((&cmd, arg)) = p.split_first() else {
            return true;
        };
        // Only the commands that report a transaction use an id.
        let id = if matches!(
            cmd,
            COM_QUERY | COM_INIT_DB | COM_STMT_PREPARE | COM_STMT_EXECUTE
        ) {
            self.take_id()
        } else {
            0
        };
        let user = self.logged_in.then_some(self.user.as_slice());
        match cmd {
            COM_QUERY => {
                let db = self.has_db.then_some(self.database.as_slice());
                report_request(
                    &mut self.classifier,
                    sink,
                    SqlDialect::Mysql,
                    id,
                    SqlKind::Query,
                    user,
                    db,
                    arg,
                );
                self.new_db = self
                    .classifier
                    .use_database()
                    .map(|s| s.as_bytes().to_vec());
                self.push_pending(Cmd::Query, id, true, sink)
            }
            COM_INIT_DB => {
                sink.fact(&Fact::Transaction {
                    app: AppProto::Mysql,
                    id,
                    summary: arg.get(..arg.len().min(SUMMARY_MAX)).unwrap_or_default(),
                    detail: RequestDetail::Sql(SqlRequest {
                        dialect: SqlDialect::Mysql,
                        kind: SqlKind::UseDatabase,
                        user,
                        database: Some(arg),
                        text: arg,
                        statements: &[],
                    }),
                });
                self.new_db = Some(
                    arg.get(..arg.len().min(MAX_IDENT))
                        .unwrap_or_default()
                        .to_vec(),
                );
                self.push_pending(Cmd::InitDb, id, true, sink)
            }
            COM_STMT_PREPARE => {
                let db = self.has_db.then_some(self.database.as_slice());
                report_request(
                    &mut self.classifier,
                    sink,
                    SqlDialect::Mysql,
                    id,
                    SqlKind::Prepare,
                    user,
                    db,
                    arg,
                );
                // Kept until the server's prepare OK names the statement.
                let outstanding = self.pending.iter().any(|p| p.cmd == Cmd::Prepare);
                self.prepare_text.clear();
                self.prepare_text_ok = !outstanding;
                if !outstanding {
                    self.prepare_text.extend_from_slice(arg);
                }
                self.push_pending(Cmd::Prepare, id, true, sink)
            }
            COM_STMT_EXECUTE => {
                let stmt = le32(arg, 0);
                let text = stmt
                    .and_then(|s| self.prepared.iter().find(|(i, _)| *i == s))
                    .map_or(&[][..], |(_, t)| t.as_slice());
                let db = self.has_db.then_some(self.database.as_slice());
                report_request(
                    &mut self.classifier,
                    sink,
                    SqlDialect::Mysql,
                    id,
                    SqlKind::Execute,
                    user,
                    db,
                    text,
                );
                self.push_pending(Cmd::Execute, id, true, sink)
            }
            COM_STMT_CLOSE => {
                if let Some(s) = le32(arg, 0)
                    && let Some(i) = self.prepared.iter().position(|(id, _)| *id == s)
                {
                    let (_, t) = self.prepared.swap_remove(i);
                    self.prepared_bytes -= t.len();
                }
                true
            }
            COM_STMT_SEND_LONG_DATA | COM_QUIT => true,
            COM_CHANGE_USER => {
                // A new login on the same connection.
                let (u, _) = cstr(arg).unwrap_or((arg, &[]));
                if !set_bounded(&mut self.user, u) {
                    sink.anomaly(ParserAnomaly::HeaderTooLarge);
                }
                self.phase = Phase::Auth;
                self.report_login(sink)
            }
            COM_BINLOG_DUMP | COM_BINLOG_DUMP_GTID => {
                self.go_opaque(OpaqueReason::Unsupported, sink);
                true
            }
            COM_FIELD_LIST => self.push_pending(Cmd::FieldList, 0, false, sink),
            COM_STMT_FETCH => self.push_pending(Cmd::Fetch, 0, false, sink),
            _ => self.push_pending(Cmd::Other, 0, false, sink),
        }
    }

    // ---- server -------------------------------------------------------------------------

    fn server_need(&self, first: Option<u8>, len: usize) -> Need {
        match (self.phase, self.resp) {
            (Phase::Handshake | Phase::Auth, _) => Need::Whole,
            (_, Resp::First | Resp::Infile) => Need::Whole,
            (_, Resp::Rows) if matches!(first, Some(0xfe | 0xff)) && len < MAX_PACKET => {
                Need::Whole
            }
            _ => Need::Head(1),
        }
    }

    fn server_packet(&mut self, p: &[u8], len: usize, sink: &mut dyn FactSink) -> bool {
        let first = p.first().copied();
        match self.phase {
            Phase::Handshake => {
                if first == Some(10) {
                    self.greeting(p);
                } else if first == Some(0xff) {
                    // Refused before the handshake (too many connections, host blocked).
                    return true;
                } else {
                    self.go_opaque(OpaqueReason::Unsupported, sink);
                }
                return true;
            }
            Phase::Auth => {
                match first {
                    Some(0x00) => {
                        self.phase = Phase::Command;
                        if let Some(f) = self.pending.pop_front() {
                            self.respond(f, None, &[], None, sink);
                        }
                        let both = self.client_caps & self.server_caps;
                        if both & (CLIENT_COMPRESS | CLIENT_ZSTD) != 0 {
                            self.go_opaque(OpaqueReason::Compressed, sink);
                        }
                    }
                    Some(0xff) => {
                        self.phase = Phase::Command;
                        if let Some(f) = self.pending.pop_front() {
                            self.respond_err(f, p, sink);
                        }
                    }
                    // Auth switch request (0xfe), more auth data (0x01): skipped.
                    _ => {}
                }
                return true;
            }
            Phase::Command => {}
        }
        let Some(front) = self.pending.front().copied() else {
            sink.anomaly(ParserAnomaly::UnsolicitedResponse);
            return true;
        };
        let eofs = u64::from(!self.deprecate_eof());
        match self.resp {
            Resp::First => match first {
                Some(0xff) => {
                    self.pending.pop_front();
                    self.respond_err(front, p, sink);
                }
                Some(0x00) if front.cmd == Cmd::Prepare => {
                    let stmt = le32(p, 1);
                    let columns = le16(p, 5).map_or(0, u64::from);
                    let params = le16(p, 7).map_or(0, u64::from);
                    if let Some(s) = stmt {
                        self.store_prepared(s, sink);
                    }
                    // Each non-empty definition list ends with an EOF in the old mode.
                    let left =
                        params + columns + eofs * (u64::from(params > 0) + u64::from(columns > 0));
                    if left == 0 {
                        self.finish_front(sink);
                    } else {
                        self.resp = Resp::Defs {
                            left,
                            then_rows: false,
                        };
                    }
                }
                Some(0x00) | Some(0xfe) if len < MAX_PACKET && front.cmd != Cmd::Fetch => {
                    self.ok(front, p, sink);
                }
                Some(0xfb) if front.cmd == Cmd::Query => self.resp = Resp::Infile,
                _ => match front.cmd {
                    Cmd::Query | Cmd::Execute => {
                        let Some((n, w)) = lenenc(p) else {
                            sink.anomaly(ParserAnomaly::BadFraming);
                            self.finish_front(sink);
                            return true;
                        };
                        // MariaDB may say the column definitions are cached (none follow).
                        let cached =
                            self.client_caps & self.server_caps & MARIADB_CLIENT_CACHE_METADATA
                                != 0
                                && p.get(w) == Some(&0);
                        // (The EOF that ends the definitions is sent even when none are.)
                        let left = if cached { eofs } else { n.saturating_add(eofs) };
                        self.resp = if left == 0 {
                            Resp::Rows
                        } else {
                            Resp::Defs {
                                left,
                                then_rows: true,
                            }
                        };
                        if n == 0 {
                            sink.anomaly(ParserAnomaly::BadFraming);
                            self.finish_front(sink);
                        }
                    }
                    Cmd::FieldList => self.resp = Resp::FieldList,
                    Cmd::Fetch => {
                        self.resp = Resp::Rows;
                        self.row(front, p, len, sink);
                    }
                    _ => self.finish_front(sink),
                },
            },
            Resp::Defs { left, then_rows } => {
                if left <= 1 {
                    if then_rows {
                        self.resp = Resp::Rows;
                    } else {
                        self.finish_front(sink);
                    }
                } else {
                    self.resp = Resp::Defs {
                        left: left - 1,
                        then_rows,
                    };
                }
            }
            Resp::FieldList => {
                if first == Some(0xff) || first == Some(0xfe) && len < 9 {
                    self.finish_front(sink);
                }
            }
            Resp::Rows => self.row(front, p, len, sink),
            Resp::Infile => match first {
                Some(0xff) => {
                    self.pending.pop_front();
                    self.respond_err(front, p, sink);
                }
                _ => self.ok(front, p, sink),
            },
        }
        true
    }

    fn row(&mut self, front: Pending, p: &[u8], len: usize, sink: &mut dyn FactSink) {
        match p.first() {
            Some(0xff) => {
                self.pending.pop_front();
                self.respond_err(front, p, sink);
            }
            // EOF (or the OK that replaces it): a row cannot start with 0xfe unless it is
            // at least 16 MiB long.
            Some(0xfe) if len < MAX_PACKET => self.ok(front, p, sink),
            _ => {}
        }
    }

    /// An OK (or EOF) ending a result: more results may follow for the same command.
    fn ok(&mut self, front: Pending, p: &[u8], sink: &mut dyn FactSink) {
        let status = if p.first() == Some(&0xfe) && p.len() < 9 && !self.deprecate_eof() {
            le16(p, 3).unwrap_or(0)
        } else {
            ok_status(p)
        };
        if status & SERVER_MORE_RESULTS_EXISTS != 0
            && matches!(front.cmd, Cmd::Query | Cmd::Execute)
        {
            self.resp = Resp::First;
            return;
        }
        self.pending.pop_front();
        if matches!(front.cmd, Cmd::InitDb | Cmd::Query)
            && let Some(db) = self.new_db.take()
        {
            self.database = db;
            self.has_db = true;
        }
        self.respond(front, None, &[], None, sink);
    }

    fn finish_front(&mut self, sink: &mut dyn FactSink) {
        if let Some(f) = self.pending.pop_front() {
            self.respond(f, None, &[], None, sink);
        }
        self.resp = Resp::First;
    }

    fn store_prepared(&mut self, stmt: u32, sink: &mut dyn FactSink) {
        if !self.prepare_text_ok {
            return;
        }
        self.prepare_text_ok = false;
        if self.prepared.len() >= MAX_PREPARED
            || self.prepared_bytes + self.prepare_text.len() > MAX_PREPARED_BYTES
        {
            sink.anomaly(ParserAnomaly::TooManyTransactions);
            return;
        }
        self.prepared_bytes += self.prepare_text.len();
        self.prepared.push((stmt, self.prepare_text.clone()));
    }

    fn greeting(&mut self, p: &[u8]) {
        // protocol(1) version(NUL) thread(4) scramble(8) filler(1) caps_lo(2) charset(1)
        // status(2) caps_hi(2) scramble_len(1) reserved(6) mariadb_caps(4) ...
        let Some((_, rest)) = cstr(p.get(1..).unwrap_or_default()) else {
            return;
        };
        let lo = le16(rest, 13).map_or(0, u64::from);
        let hi = le16(rest, 18).map_or(0, u64::from);
        let mut caps = lo | hi << 16;
        if caps & 1 == 0 {
            // MariaDB clears CLIENT_MYSQL (bit 0) and puts extended caps in the filler.
            caps |= le32(rest, 27).map_or(0, u64::from) << 32;
        }
        self.server_caps = caps;
    }

    fn respond(
        &self,
        p: Pending,
        code: Option<u32>,
        message: &[u8],
        sqlstate: Option<&[u8]>,
        sink: &mut dyn FactSink,
    ) {
        if !p.reported {
            return;
        }
        let error = code.map(|_| message);
        sink.fact(&Fact::Response {
            app: AppProto::Mysql,
            id: p.id,
            status: code,
            summary: message,
            detail: ResponseDetail::Sql(SqlResponse {
                sqlstate,
                code,
                error,
            }),
        });
    }

    fn respond_err(&mut self, p: Pending, body: &[u8], sink: &mut dyn FactSink) {
        self.resp = Resp::First;
        if matches!(p.cmd, Cmd::InitDb | Cmd::Query) {
            self.new_db = None;
        }
        let code = le16(body, 1).map(u32::from);
        let rest = body.get(3..).unwrap_or_default();
        let (state, msg) = match rest.first() {
            Some(b'#') => (rest.get(1..6), rest.get(6..).unwrap_or_default()),
            _ => (None, rest),
        };
        self.respond(p, Some(code.unwrap_or(0)), msg, state, sink);
    }
}

impl StreamParser for MysqlParser {
    fn proto(&self) -> AppProto {
        AppProto::Mysql
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
            match self.packet(dir, rest, sink) {
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
            if p.reported {
                sink.fact(&Fact::Unanswered {
                    app: AppProto::Mysql,
                    id: p.id,
                });
            }
        }
    }
}
