//! The client's untyped first message: a startup packet (its parameters reported as a
//! `LOGIN` transaction with user and database), or an SSL, GSSENC or cancel request.

use super::*;

impl PostgresParser {
    pub(super) fn client_startup(&mut self, b: &[u8], sink: &mut dyn FactSink) -> Step {
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
}
