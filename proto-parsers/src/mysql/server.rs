//! The server's side of a MySQL connection: the greeting, the end of authentication, and
//! each response followed packet by packet until it ends, so that its outcome pairs with
//! the command it answers.

use super::*;

impl MysqlParser {
    pub(super) fn server_need(&self, first: Option<u8>, len: usize) -> Need {
        if self.phase == Phase::Command && self.pending.unpaired() {
            // Pairing was given up: responses are skipped unread.
            return Need::Head(0);
        }
        match (self.phase, self.resp) {
            (Phase::Handshake | Phase::Auth, _) => Need::Whole,
            (_, Resp::First | Resp::Infile) => Need::Whole,
            (_, Resp::Rows) if matches!(first, Some(0xfe | 0xff)) && len < MAX_PACKET => {
                Need::Whole
            }
            _ => Need::Head(1),
        }
    }

    pub(super) fn server_packet(&mut self, p: &[u8], len: usize, sink: &mut dyn FactSink) -> bool {
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
                        // Compression starts after this OK, zlib when both kinds were
                        // negotiated.
                        let both = self.client_caps & self.server_caps;
                        if both & CLIENT_COMPRESS != 0 {
                            self.start_compression(sink);
                        } else if both & CLIENT_ZSTD != 0 {
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
        if self.pending.unpaired() {
            // Pairing was given up (a pipeline too deep to follow): responses are skipped.
            return true;
        }
        let Some(front) = self.pending.front() else {
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
                Some(0x00) if front.kind == Cmd::Prepare => {
                    let stmt = le32(p, 1);
                    let columns = le16(p, 5).map_or(0, u64::from);
                    let params = le16(p, 7).map_or(0, u64::from);
                    if let Some(s) = stmt
                        && front.reported
                    {
                        self.prepared.rekey(Key::Staged(front.id), s);
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
                Some(0x00) | Some(0xfe) if len < MAX_PACKET && front.kind != Cmd::Fetch => {
                    self.ok(front, p, sink);
                }
                Some(0xfb) if front.kind == Cmd::Query => self.resp = Resp::Infile,
                _ => match front.kind {
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

    fn row(&mut self, front: Pending<Cmd>, p: &[u8], len: usize, sink: &mut dyn FactSink) {
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
    fn ok(&mut self, front: Pending<Cmd>, p: &[u8], sink: &mut dyn FactSink) {
        let status = if p.first() == Some(&0xfe) && p.len() < 9 && !self.deprecate_eof() {
            le16(p, 3).unwrap_or(0)
        } else {
            ok_status(p)
        };
        if status & SERVER_MORE_RESULTS_EXISTS != 0
            && matches!(front.kind, Cmd::Query | Cmd::Execute)
        {
            self.resp = Resp::First;
            return;
        }
        self.pending.pop_front();
        if matches!(front.kind, Cmd::InitDb | Cmd::Query)
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

    pub(super) fn respond(
        &self,
        p: Pending<Cmd>,
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

    fn respond_err(&mut self, p: Pending<Cmd>, body: &[u8], sink: &mut dyn FactSink) {
        self.resp = Resp::First;
        if matches!(p.kind, Cmd::InitDb | Cmd::Query) {
            self.new_db = None;
        }
        if p.kind == Cmd::Prepare && p.reported {
            self.prepared.remove(Key::Staged(p.id));
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
