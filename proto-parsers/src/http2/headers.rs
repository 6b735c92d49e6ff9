//! Header blocks: decoded once complete (HEADERS or PUSH_PROMISE, then CONTINUATION), and
//! the request or response they carry reported.

use super::{
    Conn, KEEP_FIELDS, KNOWN, Known, LIMITS, MAX_STREAMS, MAX_SUMMARY, Pending, Side, Stream,
    app_of, parse_status,
};
use crate::contract::{Fact, FactSink, Invalid, ParserAnomaly};
use crate::facts::{
    GrpcCall, GrpcResponse, Header, HttpRequest, HttpResponse, HttpVersion, RequestDetail,
    ResponseDetail,
};
use crate::grpc::MessageFramer;
use crate::{AppProto, grpc};

/// Decodes the assembled block of `side` into its field list, counting limits.
pub(super) fn decode_block(
    side: &mut Side,
    conn: &mut Conn,
    sink: &mut dyn FactSink,
) -> Result<(), Invalid> {
    let Side {
        decoder,
        block,
        fields,
        spans,
        known,
        ..
    } = side;
    *known = [0; KNOWN];
    // Fields past a limit are still decoded (the dynamic table must stay in step) but not
    // kept.
    let Ok(d) = decoder.decode(block, fields, spans, LIMITS) else {
        spans.clear();
        conn.stats.hpack_errors += 1;
        sink.anomaly(ParserAnomaly::CompressionError);
        return Err(Invalid::BadSyntax);
    };
    // One pass finds the fields the facts need by name.
    let v = decoder.view(block, fields);
    for (i, s) in spans.iter().enumerate() {
        if let Some(k) = Known::of(v.name(s))
            && let Some(slot) = known.get_mut(k as usize)
            && *slot == 0
        {
            *slot = u32::try_from(i + 1).unwrap_or(0);
        }
    }
    if d.over_list || d.over_fields {
        // The request is still reported (with the fields that fit) and the connection goes
        // on in step, but what the server acts on is unknown: a blinding anomaly. A block
        // that expanded to more than twice its size is a bomb; a long one is just too large.
        conn.stats.header_list_too_large += 1;
        sink.anomaly(if d.list_size / 2 > block.len() {
            ParserAnomaly::CompressionError
        } else {
            ParserAnomaly::HeaderTooLarge
        });
    }
    Ok(())
}

impl Conn {
    /// A request's header block (or the client's trailers) is complete.
    pub(super) fn on_request(&mut self, side: &Side, p: Pending, sink: &mut dyn FactSink) {
        let id = p.stream;
        if id == 0 || id.is_multiple_of(2) {
            self.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return;
        }
        if let Some(i) = self.position(id) {
            // Trailers of a request in flight.
            if let Some(st) = self.streams.get_mut(i) {
                st.req_ended |= p.end_stream;
            }
            return;
        }
        let method = side.get(Known::Method);
        if method.is_none() && id <= self.max_client_stream {
            // Trailers of a stream already finished and forgotten.
            return;
        }
        if id <= self.max_client_stream {
            // A new request must use a higher stream id: the server refuses this one, but
            // policy still sees what was tried.
            self.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
        }
        self.max_client_stream = self.max_client_stream.max(id);
        let content_type = side.get(Known::ContentType);
        let is_grpc = content_type.is_some_and(grpc::is_grpc_content_type);
        let tx = self.next_tx;
        self.next_tx = self.next_tx.wrapping_add(1);
        self.stats.streams += 1;
        if is_grpc {
            self.saw_grpc = true;
            self.stats.grpc_calls += 1;
        }
        if self.streams.len() >= MAX_STREAMS {
            // Reported and judged below like any other; only its response is not paired
            // (and its gRPC messages not framed), which does not blind.
            self.stats.too_many_streams += 1;
            sink.anomaly(ParserAnomaly::TooManyTransactions);
        } else {
            self.streams.push(Stream {
                id,
                tx,
                grpc: is_grpc,
                req_ended: p.end_stream,
                resp_ended: false,
                headers_seen: false,
                responded: false,
                http_status: 0,
                framers: [MessageFramer::default(); 2],
            });
        }

        let method = method.unwrap_or_default();
        let path = side.get(Known::Path).unwrap_or_default();
        let v = side.view();
        let mut list = recycle(std::mem::take(&mut self.headers));
        list.reserve(side.spans.len());
        list.extend(side.spans.iter().filter_map(|s| {
            let (name, value) = v.pair(s);
            (name.first() != Some(&b':')).then_some(Header { name, value })
        }));
        let http = HttpRequest {
            version: HttpVersion::Http2,
            method,
            path,
            authority: side.get(Known::Authority).or_else(|| side.get(Known::Host)),
            user_agent: side.get(Known::UserAgent),
            content_type,
            headers: &list,
        };
        self.summary.clear();
        for part in [method, b" ", path] {
            let room = MAX_SUMMARY.saturating_sub(self.summary.len());
            self.summary
                .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        }
        let detail = if is_grpc {
            let (service, method) = grpc::split_path(path).unwrap_or_default();
            RequestDetail::Grpc(GrpcCall {
                http,
                service,
                method,
            })
        } else {
            RequestDetail::Http(http)
        };
        sink.fact(&Fact::Transaction {
            app: app_of(is_grpc),
            id: tx,
            summary: &self.summary,
            detail,
        });
        self.headers = if list.capacity() > KEEP_FIELDS {
            Vec::new()
        } else {
            recycle(list)
        };
    }

    /// A response header block (final headers, interim 1xx, or trailers) is complete.
    pub(super) fn on_response(&mut self, side: &Side, p: Pending, sink: &mut dyn FactSink) {
        let id = p.stream;
        if id == 0 {
            self.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return;
        }
        if id.is_multiple_of(2) {
            // A pushed response: no request of the client's to pair it with.
            return;
        }
        let Some(i) = self.position(id) else {
            if id > self.max_client_stream {
                sink.anomaly(ParserAnomaly::UnsolicitedResponse);
            }
            return;
        };
        let Some(st) = self.streams.get_mut(i) else {
            return;
        };
        let raw_status = side.get(Known::Status);
        let status = raw_status.and_then(parse_status);
        let first = !st.headers_seen && !st.responded;
        if first {
            if let Some(s) = status
                && (100..200).contains(&s)
            {
                if !p.end_stream {
                    return; // interim response; the final one follows
                }
                self.stats.bad_framing += 1;
                sink.anomaly(ParserAnomaly::BadFraming);
            }
            if status.is_none() {
                self.stats.bad_framing += 1;
                sink.anomaly(ParserAnomaly::BadFraming);
            }
            st.headers_seen = true;
            st.http_status = status.unwrap_or(0);
        }
        st.resp_ended |= p.end_stream;
        let st = *st;
        if !st.responded {
            if !st.grpc && first {
                sink.fact(&Fact::Response {
                    app: AppProto::Http2,
                    id: st.tx,
                    status: Some(u32::from(st.http_status)),
                    summary: raw_status.unwrap_or_default(),
                    detail: ResponseDetail::Http(HttpResponse {
                        status: st.http_status,
                        content_type: side.get(Known::ContentType),
                    }),
                });
                self.mark_responded(i);
            } else if st.grpc {
                let grpc_status = side.get(Known::GrpcStatus);
                if grpc_status.is_some() || p.end_stream {
                    let grpc_message = side.get(Known::GrpcMessage);
                    let code = grpc_status.and_then(grpc::parse_status);
                    sink.fact(&Fact::Response {
                        app: AppProto::Grpc,
                        id: st.tx,
                        status: code,
                        summary: grpc_message.unwrap_or_default(),
                        detail: ResponseDetail::Grpc(GrpcResponse {
                            http_status: st.http_status,
                            grpc_status: code,
                            grpc_message,
                        }),
                    });
                    self.mark_responded(i);
                }
            }
        }
        self.maybe_forget(i);
    }
}

/// Re-types an emptied header list so that its allocation outlives the borrows it held: the
/// in-place `collect` keeps the buffer (same element size and alignment), so after the first
/// request nothing is allocated (as `http1` and `sql::Classifier` recycle theirs).
// `filter` would keep the element type; the point is the new lifetime.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<Header<'_>>) -> Vec<Header<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}
