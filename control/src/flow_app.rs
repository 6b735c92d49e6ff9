//! The flow-level decision once a flow's application protocol is known.
//!
//! gRPC is only recognised per call (its `content-type`), so a gRPC connection is
//! classified `http2`. A policy that allows gRPC methods must still admit the connection,
//! or no call could ever be judged: an `app: grpc` allow rule admits an `http2` flow at
//! L4, and each call is then judged by the rule's service and methods (transactions see
//! their exact app). A `grpc` deny or alert rule acts on calls, never on the connection;
//! a deny that applies to `http2` itself still wins.

use proto_parsers::AppProto;

use crate::snapshot::{Action, Decision, Endpoint, PolicySnapshot, Transport};

impl PolicySnapshot {
    /// [`PolicySnapshot::judge_flow`] for a flow whose protocol detection gave `app`.
    pub fn judge_detected_flow(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: AppProto,
    ) -> Decision {
        let d = self.judge_flow(src, dst, dport, transport, Some(app));
        if app != AppProto::Http2 || d.rule.is_some() {
            return d;
        }
        // No rule decided the HTTP/2 flow (the mode's default did): a gRPC allow rule
        // admits it.
        let g = self.judge_flow(src, dst, dport, transport, Some(AppProto::Grpc));
        if g.action == Action::Allow && g.rule.is_some() {
            g
        } else {
            d
        }
    }
}
