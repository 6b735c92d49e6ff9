//! Pairing: the queue of requests waiting for their responses, and the reporting of each
//! head (a request queued with its framing, a response paired with its request, a
//! protocol switch decided).

use super::body::{message_body, request_body};
use super::head::{HeadInfo, keep, recycle, summary};
use super::hunt::Hunt;
use super::lines::has_token;
use super::{APP, Body, Http1Parser, MAX_PENDING, Phase, RequestHead, ResponseHead, Step};
use crate::contract::{Fact, FactSink, Handover, Invalid, OpaqueReason, ParserAnomaly};
use crate::facts::{Header, HttpRequest, HttpResponse, HttpVersion, RequestDetail, ResponseDetail};
use crate::pending::{Overflow, PendingQueue, Waiting};

/// A request still waiting for its final response. The ids of the waiting requests are
/// consecutive (every request is queued). `CONNECT` and `Upgrade` are kept for the newest
/// request only: the request side waits after such a request until its response, so none
/// is ever queued behind one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) id: u32,
    /// A `HEAD`: its response has no body.
    head: bool,
    pub(super) connect: bool,
    pub(super) upgrade: bool,
    /// Still paired: false for a request whose pairing was given up (the oldest, beyond
    /// [`MAX_PENDING`]), already reported unanswered, whose final response is framed
    /// without being reported.
    pub(super) paired: bool,
}

/// A request whose pairing was given up keeps nothing: its response is skipped in turn.
impl Waiting for Pending {
    type Kind = ();

    fn kind(&self) {}

    fn lost(_: ()) -> Self {
        Pending::default()
    }
}

/// Outstanding requests, oldest first.
pub(super) fn queue() -> PendingQueue<Pending> {
    PendingQueue::new(MAX_PENDING, Overflow::EachLost)
}

impl Http1Parser {
    /// Queues and reports a request whose head was read, then sets up its body.
    pub(super) fn report_request<'a>(
        &mut self,
        head: &RequestHead<'a>,
        fields: Vec<Header<'a>>,
        sink: &mut dyn FactSink,
    ) -> Step {
        let mut info = HeadInfo::default();
        for f in &fields {
            info.see(f);
        }
        if info.hosts > 1 {
            // nginx and Go refuse a second Host; others take the first or the last.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        // The server routes on the target's authority when it has one (CONNECT, an
        // absolute-form target), whatever `Host` says: that is the authority judged.
        let target = crate::http::target_authority(head.method, head.path);
        if let (Some(t), Some(h)) = (target, info.host)
            && !crate::http::authority_host(t).eq_ignore_ascii_case(crate::http::authority_host(h))
        {
            // A Host that names another server than the target (libhtp's "host header
            // ambiguous"): servers and proxies differ on which one they act on.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        let body = if head.malformed {
            // Where this message ends is not known: the parser stops after reporting it.
            sink.anomaly(ParserAnomaly::Ambiguous);
            Err(Invalid::BadSyntax)
        } else {
            request_body(&info, head.version, sink)
        };
        let pending = Pending {
            id: self.next_id,
            head: head.method == b"HEAD",
            connect: head.method == b"CONNECT",
            upgrade: info.upgrade.is_some() && head.version == HttpVersion::Http11,
            paired: true,
        };
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(older) = self.pending.back_mut() {
            // Only the newest request can switch protocols (see `Pending`).
            older.connect = false;
            older.upgrade = false;
        }
        // Past the cap, the oldest request's pairing is given up (with a
        // TooManyTransactions for each); every request is still reported.
        if let Some(old) = self.pending.push(pending, sink) {
            sink.fact(&Fact::Unanswered {
                app: APP,
                id: old.id,
            });
            if old.head {
                // Its response has no body, which nothing will tell when it comes.
                sink.anomaly(ParserAnomaly::BadFraming);
            }
        }
        sink.fact(&Fact::Transaction {
            app: APP,
            id: pending.id,
            summary: summary(head.raw),
            detail: RequestDetail::Http(HttpRequest {
                version: head.version,
                method: head.method,
                path: head.path,
                authority: target.or(info.host),
                user_agent: info.user_agent,
                content_type: info.content_type,
                headers: &fields,
            }),
        });
        self.fields = keep(recycle(fields));
        let body = match body {
            Ok(b) => b,
            Err(_) => {
                // The Ambiguous anomaly reported above blinds the flow; the responses
                // still say how the server took it.
                self.req.phase = Phase::Discard;
                return Step::Consumed(head.raw.len());
            }
        };
        self.req.await_after_body = pending.connect || pending.upgrade;
        self.req.start_body(body);
        Step::Consumed(head.raw.len())
    }

    pub(super) fn report_response(
        &mut self,
        head: &ResponseHead<'_>,
        info: &HeadInfo<'_>,
        sink: &mut dyn FactSink,
    ) -> Step {
        let (status, len) = (head.status, head.raw.len());
        if (100..200).contains(&status) && status != 101 {
            if head.malformed {
                sink.anomaly(ParserAnomaly::Ambiguous);
                return Step::Invalid(Invalid::BadSyntax);
            }
            // Interim (100 Continue, 103 Early Hints): the final response is still to come.
            return Step::Consumed(len);
        }
        if std::mem::take(&mut self.repair) {
            // After a gap in the responses: the older waiting requests' responses were lost
            // (or will pair with nothing), this one answers the newest.
            while self.pending.queued() > 1 {
                if let Some(old) = self.pending.pop_queued() {
                    sink.fact(&Fact::Unanswered {
                        app: APP,
                        id: old.id,
                    });
                }
            }
        }
        let mut unsolicited = false;
        let request = match self.pending.pop_front() {
            // It answers a request whose pairing was given up (already reported unanswered).
            Some(r) if !r.paired => None,
            Some(r) => {
                sink.fact(&Fact::Response {
                    app: APP,
                    id: r.id,
                    status: Some(u32::from(status)),
                    summary: summary(head.raw),
                    detail: ResponseDetail::Http(HttpResponse {
                        status,
                        content_type: info.content_type,
                    }),
                });
                Some(r)
            }
            None => {
                sink.anomaly(ParserAnomaly::UnsolicitedResponse);
                unsolicited = true;
                None
            }
        };
        if head.malformed {
            sink.anomaly(ParserAnomaly::Ambiguous);
            return Step::Invalid(Invalid::BadSyntax);
        }
        // The id HTTP/2's stream 1 takes after an `h2c` upgrade: the request the `101`
        // answered, or (none waiting) the next unused one, which pairs with nothing.
        let stream1 = request.map_or(self.next_id, |r| r.id);
        let request = request.unwrap_or_default();
        let connect = request.connect && (200..300).contains(&status);
        if status == 101 || connect {
            let h2c = status == 101 && info.upgrade.is_some_and(|u| has_token(u, b"h2c"));
            let phase = if h2c || connect {
                self.handover = Some(if h2c {
                    Handover::Http2 { stream1 }
                } else {
                    Handover::Tunnel {
                        next_tx: self.next_id,
                    }
                });
                Phase::Handover
            } else {
                sink.fact(&Fact::Opaque {
                    app: APP,
                    reason: OpaqueReason::Tunnel,
                });
                Phase::Tunnel
            };
            self.req.phase = phase;
            self.req.await_after_body = false;
            self.resp.phase = phase;
            return Step::Consumed(len);
        }
        if request.connect || request.upgrade {
            // The switch was refused: the client goes on speaking HTTP/1.
            self.req.await_after_body = false;
            if self.req.phase == Phase::Await {
                self.req.phase = Phase::Head;
            }
        }
        if unsolicited && status != 204 && status != 304 {
            // Its framing depends on a request that was not seen (lost in a gap, or never
            // sent): it may answer a `HEAD` (no body whatever its length says). The next
            // status line is looked for instead of trusting the length.
            self.resp.phase = Phase::Hunt;
            self.resp.hunt = Hunt::after_gap();
            return Step::Consumed(len);
        }
        let body = if request.head || status == 204 || status == 304 {
            Ok(Body::None)
        } else {
            message_body(info, head.version, sink).map(|b| b.unwrap_or(Body::UntilClose))
        };
        match body {
            Ok(b) => {
                self.resp.start_body(b);
                Step::Consumed(len)
            }
            Err(why) => Step::Invalid(why),
        }
    }
}
