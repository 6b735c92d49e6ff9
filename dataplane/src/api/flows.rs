//! Open flows as `palisadectl flows` lists them, taken from a worker by its packet thread.

use std::net::IpAddr;

use proto_parsers::AppProto;

use crate::events::proto_name;
use crate::pipeline::Worker;
use crate::verdict::rule_name;

/// One open flow as `palisadectl flows` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FlowInfo {
    pub flow_id: u64,
    pub proto: &'static str,
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub app_proto: Option<&'static str>,
    pub src_workload: Option<String>,
    pub dst_workload: Option<String>,
    pub action: &'static str,
    pub rule: String,
    pub policy_version: u64,
    /// [to server, to client]
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub first_ns: u64,
    pub last_ns: u64,
    pub blocked: bool,
}

impl Worker {
    /// Up to `max` open flows, most recently active first (for `palisadectl flows`).
    pub fn list_flows(&self, max: usize) -> Vec<FlowInfo> {
        let mut all: Vec<FlowInfo> = self
            .flows
            .iter()
            .map(|(_, last_ns, f)| {
                let v = &f.verdict;
                FlowInfo {
                    flow_id: f.id,
                    proto: proto_name(f.proto),
                    src: f.client,
                    dst: f.server,
                    app_proto: f.inspector.app().map(AppProto::as_str),
                    src_workload: v.src.workload.map(|w| v.snap.workload(w).name.to_string()),
                    dst_workload: v.dst.workload.map(|w| v.snap.workload(w).name.to_string()),
                    action: v.decision.action.as_str(),
                    rule: rule_name(&v.snap, &v.decision).to_string(),
                    policy_version: v.snap.version(),
                    pkts: f.pkts,
                    bytes: f.bytes,
                    first_ns: f.first_ns,
                    last_ns,
                    blocked: f.blocked,
                }
            })
            .collect();
        all.sort_unstable_by_key(|f| std::cmp::Reverse(f.last_ns));
        all.truncate(max);
        all
    }
}
