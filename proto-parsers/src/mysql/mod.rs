//! MySQL/MariaDB client/server protocol parser.
//!
//! Reads both directions of a classic-protocol connection: the server greeting, the client's
//! HandshakeResponse41 (reported as a `LOGIN` transaction with user and database), the
//! authentication exchange (skipped, secrets never read), then commands: COM_QUERY (every
//! statement classified), COM_INIT_DB (the current database follows it), COM_STMT_PREPARE
//! (the server's statement id mapped to the classification of its text, bounded),
//! COM_STMT_EXECUTE (judged by what its statement was prepared with), and the rest.
//! Responses (OK, ERR with code and SQLSTATE, text and binary result sets, prepare replies,
//! multi-result sequences) are followed packet by packet so each outcome pairs with its
//! command; rows are skipped by counting, never buffered. The compressed protocol
//! (CLIENT_COMPRESS, zlib) is inflated under the packets as they stream ([`compress`]);
//! TLS (CLIENT_SSL) and MySQL 8's zstd compression make the flow opaque.
//!
//! The text of a COM_QUERY or COM_STMT_PREPARE, up to max_allowed_packet's 1 GB ceiling and
//! across the 16 MiB packets a payload that long is split into, is classified as it streams
//! past ([`crate::sql`]), never buffered: its statements are reported before its last
//! byte has been consumed, so before the server runs them.

mod compress;
mod server;
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
    Classifier, Pending, PendingQueue, PreparedStore, RequestInfo, SUMMARY_MAX, report_batch,
    report_statements,
};

/// Largest packet payload read whole (OK/ERR, greeting, login, COM_INIT_DB). Larger ones
/// are skipped by counting with [`ParserAnomaly::MessageTooLarge`]. Statement texts
/// (COM_QUERY, COM_STMT_PREPARE) are streamed, of any length.
pub const MAX_BUFFERED: usize = 32 * 1024;
/// Commands paired with their outcome (the protocol is request/response; a client may still
/// pipeline): past it, the oldest lose their pairing, every command is still reported (see
/// [`crate::sql::PendingQueue`]).
pub const MAX_PENDING: usize = 64;
/// Prepared statements kept per flow (see [`crate::sql::prepared`]).
pub const MAX_PREPARED: usize = crate::sql::prepared::MAX_PREPARED;
/// The statement id MariaDB clients send to execute the statement they just prepared,
/// before its id is known.
const LAST_PREPARED: u32 = u32::MAX;
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

/// A COM_QUERY or COM_STMT_PREPARE whose text is being streamed.
#[derive(Clone, Copy, Debug)]
struct Body {
    cmd: Cmd,
    id: u32,
    /// Payload bytes of the current packet not read yet.
    left: u64,
    /// The current packet has the maximum length: the payload goes on in the next one.
    more: bool,
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
    /// Per direction, once compression is on: the layer under the packets.
    inflaters: [Option<compress::Inflater>; 2],
    /// The client's statement text being streamed.
    body: Option<Body>,
    pending: PendingQueue<Cmd>,
    resp: Resp,
    next_id: u32,
    user: Vec<u8>,
    database: Vec<u8>,
    has_db: bool,
    logged_in: bool,
    /// Database named by an outstanding COM_INIT_DB or `USE` query, applied on its OK.
    new_db: Option<Vec<u8>>,
    classifier: Classifier,
    /// Prepared statements by the server's id; an outstanding COM_STMT_PREPARE is kept
    /// under its request id until the server names it.
    prepared: PreparedStore,
    /// The statement most recently prepared (what MariaDB's id -1 executes).
    last_prepared: Option<u64>,
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
            inflaters: [None, None],
            body: None,
            pending: crate::sql::pending::queue(MAX_PENDING),
            resp: Resp::First,
            next_id: 0,
            user: Vec::new(),
            database: Vec::new(),
            has_db: false,
            logged_in: false,
            new_db: None,
            classifier: Classifier::new(),
            prepared: PreparedStore::new(),
            last_prepared: None,
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

fn kind_of(cmd: Cmd) -> SqlKind {
    if cmd == Cmd::Prepare {
        SqlKind::Prepare
    } else {
        SqlKind::Query
    }
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

    /// Queues a command for pairing with its outcome (never refused: see PendingQueue).
    fn push_pending(&mut self, cmd: Cmd, id: u32, reported: bool, sink: &mut dyn FactSink) {
        if self.pending.is_empty() {
            self.resp = Resp::First;
        }
        self.pending.push(Pending::new(cmd, id, reported), sink);
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
        if dir == Direction::ToServer
            && self.phase == Phase::Command
            && seq == 0
            && let Some(&cmd @ (COM_QUERY | COM_STMT_PREPARE)) = b.get(4)
        {
            // A statement text: streamed (`stream_body`), continuation packets included.
            if let Some(c) = self.continuing.get_mut(d) {
                *c = false;
            }
            self.start_text(cmd, len, sink);
            return Step::Consumed(5);
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
                ) {
                    self.push_pending(Cmd::Other, 0, false, sink);
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
                Some(COM_INIT_DB | COM_CHANGE_USER) => Need::Whole,
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
        self.push_pending(Cmd::Login, id, true, sink);
        true
    }

    fn command(&mut self, p: &[u8], sink: &mut dyn FactSink) -> bool {
        let Some((&cmd, arg)) = p.split_first() else {
            return true;
        };
        // Only the commands that report a transaction use an id.
        let id = if matches!(cmd, COM_INIT_DB | COM_STMT_EXECUTE) {
            self.take_id()
        } else {
            0
        };
        let user = self.logged_in.then_some(self.user.as_slice());
        match cmd {
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
                self.push_pending(Cmd::InitDb, id, true, sink);
            }
            COM_STMT_EXECUTE => {
                let serial = match le32(arg, 0) {
                    Some(LAST_PREPARED) => self.last_prepared,
                    Some(s) => self.prepared.serial(Key::Id(s)),
                    None => None,
                };
                let info = RequestInfo {
                    dialect: SqlDialect::Mysql,
                    id,
                    kind: SqlKind::Execute,
                    user,
                    database: self.has_db.then_some(self.database.as_slice()),
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
                self.push_pending(Cmd::Execute, id, true, sink);
            }
            COM_STMT_CLOSE => {
                if let Some(s) = le32(arg, 0) {
                    self.prepared.remove(Key::Id(s));
                }
            }
            COM_STMT_SEND_LONG_DATA | COM_QUIT => {}
            COM_CHANGE_USER => {
                // A new login on the same connection.
                let (u, _) = cstr(arg).unwrap_or((arg, &[]));
                if !set_bounded(&mut self.user, u) {
                    sink.anomaly(ParserAnomaly::HeaderTooLarge);
                }
                self.phase = Phase::Auth;
                return self.report_login(sink);
            }
            COM_BINLOG_DUMP | COM_BINLOG_DUMP_GTID => {
                self.go_opaque(OpaqueReason::Unsupported, sink);
            }
            COM_FIELD_LIST => self.push_pending(Cmd::FieldList, 0, false, sink),
            COM_STMT_FETCH => self.push_pending(Cmd::Fetch, 0, false, sink),
            _ => self.push_pending(Cmd::Other, 0, false, sink),
        }
        true
    }

    // ---- statement texts ----------------------------------------------------------------

    /// A COM_QUERY or COM_STMT_PREPARE whose first packet has `len` payload bytes (the
    /// command byte included) begins.
    fn start_text(&mut self, cmd: u8, len: usize, sink: &mut dyn FactSink) {
        let id = self.take_id();
        self.classifier.begin(SqlDialect::Mysql);
        self.body = Some(Body {
            cmd: if cmd == COM_QUERY {
                Cmd::Query
            } else {
                Cmd::Prepare
            },
            id,
            left: len.saturating_sub(1) as u64,
            more: len == MAX_PACKET,
        });
        if len <= 1 {
            self.end_text(sink);
        }
    }

    /// Reads what is at hand of the streamed text: payload bytes, and the header of each
    /// packet that continues it.
    fn stream_body(&mut self, mut body: Body, b: &[u8], sink: &mut dyn FactSink) -> Step {
        if body.left == 0 {
            // (Only a full packet leaves the body open with nothing left.)
            let Some(&[l0, l1, l2, _seq]) = b.get(..4) else {
                return Step::NeedMore;
            };
            let len = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
            body.left = len as u64;
            body.more = len == MAX_PACKET;
            self.body = Some(body);
            if !body.more && len == 0 {
                self.end_text(sink);
            }
            return Step::Consumed(4);
        }
        let n = (b.len() as u64).min(body.left) as usize;
        let chunk = b.get(..n).unwrap_or_default();
        let info = RequestInfo {
            dialect: SqlDialect::Mysql,
            id: body.id,
            kind: kind_of(body.cmd),
            user: self.logged_in.then_some(self.user.as_slice()),
            database: self.has_db.then_some(self.database.as_slice()),
        };
        self.classifier
            .feed(chunk, &mut |batch| report_batch(&info, batch, sink));
        body.left -= n as u64;
        self.body = Some(body);
        if body.left == 0 && !body.more {
            self.end_text(sink);
        }
        Step::Consumed(n)
    }

    /// The streamed text ended: its last statements are reported, a prepared statement's
    /// classification kept until the server names it, and the command queued.
    fn end_text(&mut self, sink: &mut dyn FactSink) {
        let Some(body) = self.body.take() else {
            return;
        };
        let info = RequestInfo {
            dialect: SqlDialect::Mysql,
            id: body.id,
            kind: kind_of(body.cmd),
            user: self.logged_in.then_some(self.user.as_slice()),
            database: self.has_db.then_some(self.database.as_slice()),
        };
        let prepared = &mut self.prepared;
        let mut kept = None;
        self.classifier.finish(&mut |b| {
            report_batch(&info, b, sink);
            if body.cmd == Cmd::Prepare && b.whole {
                kept = prepared.insert(Key::Staged(body.id), b);
            }
        });
        match body.cmd {
            Cmd::Query => {
                self.new_db = self
                    .classifier
                    .use_database()
                    .map(|s| s.as_bytes().to_vec());
            }
            _ => self.last_prepared = kept,
        }
        self.push_pending(body.cmd, body.id, true, sink);
    }

    /// Reads packets of direction `dir` from `data`: the wire itself, or (`wire` false) the
    /// bytes the compression layer inflated from it. On the wire, once the server's OK has
    /// turned compression on, the rest of `data` goes to that layer.
    fn packets(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
        wire: bool,
    ) -> Progress {
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
            if wire && self.inflaters.get(d).is_some_and(Option::is_some) {
                return match self.feed_compressed(dir, rest, sink) {
                    Progress::Done { consumed } => Progress::Done {
                        consumed: off + consumed,
                    },
                    Progress::NeedMore { consumed } => Progress::NeedMore {
                        consumed: off + consumed,
                    },
                    invalid => invalid,
                };
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
            let step = match self.body {
                Some(body) if dir == Direction::ToServer => self.stream_body(body, rest, sink),
                _ => self.packet(dir, rest, sink),
            };
            match step {
                Step::Consumed(n) => off += n.min(rest.len()),
                Step::NeedMore => return Progress::NeedMore { consumed: off },
                Step::Invalid(why) => return Progress::Invalid(why),
            }
        }
    }
}

impl StreamParser for MysqlParser {
    fn proto(&self) -> AppProto {
        AppProto::Mysql
    }

    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        self.packets(dir, data, sink, true)
    }

    /// Skipped inside a body being skipped, or once the flow is opaque; anywhere else the
    /// parser gives up. MySQL messages are length-prefixed binary with no marker a
    /// resynchronisation could look for: a byte that looks like a message type followed by
    /// a plausible length is as likely to be inside a row or a statement, and a guess that
    /// misparses would report statements nobody sent. Nor can a compressed direction go on:
    /// the lost bytes held part of a zlib stream, or the header that says where the next
    /// packet starts.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        if self.opaque {
            return GapOutcome::Skipped;
        }
        if self.inflaters.get(ix(dir)).is_some_and(Option::is_some) {
            return GapOutcome::GiveUp;
        }
        if dir == Direction::ToServer && self.body.is_some() {
            // Bytes of a statement text are missing: it cannot be judged.
            return GapOutcome::GiveUp;
        }
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
            if p.reported {
                sink.fact(&Fact::Unanswered {
                    app: AppProto::Mysql,
                    id: p.id,
                });
            }
        }
        // A text cut off by the end of the flow, of which statements were reported.
        if let Some(body) = self.body.take()
            && self.classifier.reported()
        {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Mysql,
                id: body.id,
            });
        }
    }

    fn max_carry(&self) -> usize {
        // The largest payload read whole and its header; texts stream.
        MAX_BUFFERED + 4
    }
}
