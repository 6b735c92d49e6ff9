//! The client's typed messages after startup: Query and Parse texts streamed through the
//! classifier, Bind, Execute and Close following the prepared statements and portals, and
//! the bodies skipped by counting.

use super::*;

impl PostgresParser {
    pub(super) fn client_message(&mut self, b: &[u8], sink: &mut dyn FactSink) -> Step {
        let (ty, total, body_len) = match message_head(b, sink) {
            Ok(head) => head,
            Err(step) => return step,
        };
        match ty {
            b'Q' => {
                // Streamed: the text is classified as it arrives (`stream_body`).
                let id = self.take_id();
                self.classifier.begin(SqlDialect::Postgres);
                self.body = Some(Body {
                    kind: PKind::Query,
                    id,
                    left: body_len as u64,
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
                    left: body_len as u64,
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
    pub(super) fn skip_message(&mut self, d: usize, b: &[u8], total: u64) -> Step {
        let now = (b.len() as u64).min(total);
        if let Some(s) = self.skip.get_mut(d) {
            *s = total - now;
        }
        Step::Consumed(now as usize)
    }

    /// Reads what is at hand of the streamed Query or Parse body.
    pub(super) fn stream_body(
        &mut self,
        mut body: Body,
        b: &[u8],
        sink: &mut dyn FactSink,
    ) -> usize {
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
}
