//! Streams: found by id, and forgotten once answered and ended (END_STREAM, RST_STREAM,
//! GOAWAY).

use super::{Conn, app_of};
use crate::contract::{Fact, FactSink, ParserAnomaly};
use crate::facts::{GrpcResponse, ResponseDetail};
use crate::{AppProto, Direction};

impl Conn {
    pub(super) fn position(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    pub(super) fn mark_responded(&mut self, i: usize) {
        if let Some(st) = self.streams.get_mut(i) {
            st.responded = true;
        }
    }

    /// Drops a stream once nothing more can be learnt from it.
    pub(super) fn maybe_forget(&mut self, i: usize) {
        if self
            .streams
            .get(i)
            .is_some_and(|s| s.responded && s.resp_ended)
        {
            self.streams.remove(i);
        }
    }

    /// DATA with END_STREAM.
    pub(super) fn end_of_stream(&mut self, dir: Direction, id: u32, sink: &mut dyn FactSink) {
        let Some(i) = self.position(id) else {
            return;
        };
        let Some(st) = self.streams.get_mut(i) else {
            return;
        };
        match dir {
            Direction::ToServer => st.req_ended = true,
            Direction::ToClient => {
                st.resp_ended = true;
                if !st.responded {
                    let st = *st;
                    if st.headers_seen {
                        // A gRPC response that ended without trailers: no grpc-status.
                        sink.fact(&Fact::Response {
                            app: AppProto::Grpc,
                            id: st.tx,
                            status: None,
                            summary: &[],
                            detail: ResponseDetail::Grpc(GrpcResponse {
                                http_status: st.http_status,
                                grpc_status: None,
                                grpc_message: None,
                            }),
                        });
                    } else {
                        // DATA before any response HEADERS.
                        self.stats.bad_framing += 1;
                        sink.anomaly(ParserAnomaly::BadFraming);
                        sink.fact(&Fact::Unanswered {
                            app: app_of(st.grpc),
                            id: st.tx,
                        });
                    }
                    self.mark_responded(i);
                }
            }
        }
        self.maybe_forget(i);
    }

    /// RST_STREAM from either side: a request still waiting is cut off.
    pub(super) fn end_stream_abruptly(&mut self, id: u32, sink: &mut dyn FactSink) {
        if let Some(i) = self.position(id) {
            let st = self.streams.remove(i);
            if !st.responded {
                sink.fact(&Fact::Unanswered {
                    app: app_of(st.grpc),
                    id: st.tx,
                });
            }
        }
    }

    /// GOAWAY from the server: client streams above `last` were never processed.
    pub(super) fn goaway(&mut self, last: u32, sink: &mut dyn FactSink) {
        let mut i = 0;
        while let Some(st) = self.streams.get(i).copied() {
            if st.id > last && st.id % 2 == 1 {
                self.streams.remove(i);
                if !st.responded {
                    sink.fact(&Fact::Unanswered {
                        app: app_of(st.grpc),
                        id: st.tx,
                    });
                }
            } else {
                i += 1;
            }
        }
    }
}
