//! The server's messages: the answer to an encryption request, and the outcomes
//! (CommandComplete, ErrorResponse, ReadyForQuery, ...) paired with the requests in order.

use super::*;

impl PostgresParser {
    pub(super) fn server_message(&mut self, b: &[u8], sink: &mut dyn FactSink) -> Step {
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
        let (ty, total, body_len) = match message_head(b, sink) {
            Ok(head) => head,
            Err(step) => return step,
        };
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
        if let Some(front) = self.pending.front_mut() {
            front.answered = true;
        }
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
