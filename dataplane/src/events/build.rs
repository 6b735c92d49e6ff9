//! The objects of a flow's events, built from the flow and the decision being reported:
//! the 5-tuple and identity every flow-related event carries, the workloads, Palisade's
//! `policy_verdict` and Suricata's `alert` object.

use control::{Decision, Endpoint, PolicySnapshot};

use super::l7::L7Record;
use super::{
    AlertObj, Event, PolicyVerdictObj, UninspectableObj, WorkloadObj, app_proto_name, proto_name,
    severity_number, signature_id, write_community_id,
};
use crate::decode::{PROTO_TCP, PROTO_UDP};
use crate::flow::FlowCtx;
use crate::verdict::rule_name;

pub(crate) fn workload_obj<'s>(
    snap: &'s PolicySnapshot,
    ep: &Endpoint,
    group: Option<control::GroupId>,
) -> Option<WorkloadObj<'s>> {
    let group = group
        .or_else(|| snap.groups_of(ep).first().copied())
        .map(|g| snap.group_name(g));
    match ep.workload {
        Some(w) => {
            let info = snap.workload(w);
            Some(WorkloadObj {
                name: Some(&info.name),
                namespace: Some(&info.namespace),
                group,
                image: info.image.as_deref(),
                annotations: &info.annotations,
            })
        }
        None => group.map(|g| WorkloadObj {
            name: None,
            namespace: None,
            group: Some(g),
            image: None,
            annotations: &[],
        }),
    }
}

/// Fills the 5-tuple, identity and verdict of a flow-related event. `cid` is a reused buffer
/// for the community id.
pub(crate) fn fill_flow_fields<'a>(
    e: &mut Event<'a>,
    flow: &'a FlowCtx,
    cid: &'a mut String,
    enforcing: bool,
) {
    e.flow_id = Some(flow.id);
    e.src_ip = Some(flow.client.0);
    e.dest_ip = Some(flow.server.0);
    let ported = matches!(flow.proto, PROTO_TCP | PROTO_UDP);
    e.src_port = ported.then_some(flow.client.1);
    e.dest_port = ported.then_some(flow.server.1);
    e.proto = Some(proto_name(flow.proto));
    // Only TCP and UDP carry an application protocol; ICMP and others have none.
    e.app_proto = if ported {
        flow.inspector.app_seen().map(app_proto_name)
    } else {
        None
    };
    let (sp, dp) = if ported {
        (flow.client.1, flow.server.1)
    } else {
        (u16::from(flow.icmp.0), u16::from(flow.icmp.1))
    };
    write_community_id(0, flow.client.0, flow.server.0, sp, dp, flow.proto, cid);
    e.community_id = Some(cid.as_str());
    let v = &flow.verdict;
    let snap = &*v.snap;
    e.src_workload = workload_obj(snap, &v.src, v.decision.src_group);
    e.dest_workload = workload_obj(snap, &v.dst, v.decision.dst_group);
    if let (Some(cause), Some(b)) = (v.decision.uninspectable, flow.blind) {
        e.uninspectable = Some(UninspectableObj {
            cause: cause.as_str(),
            detail: b.detail,
        });
    }
    e.policy_verdict = Some(policy_verdict(snap, &v.decision, enforcing));
}

/// Palisade's `policy_verdict` for decision `d` of `snap`.
#[inline]
pub(crate) fn policy_verdict<'s>(
    snap: &'s PolicySnapshot,
    d: &Decision,
    enforcing: bool,
) -> PolicyVerdictObj<'s> {
    PolicyVerdictObj {
        action: d.action.as_str(),
        rule: rule_name(snap, d),
        policy_version: snap.version(),
        mode: d.mode.as_str(),
        enforced: d.enforce && enforcing,
        dropped_pkts: None,
        would_drop_pkts: None,
    }
}

/// Suricata's `alert` object for decision `d` of `snap` on `flow`: about the transaction
/// `rec` when there is one, else about the flow. `signature` names the rule (or the
/// pseudo-rule: `default-deny`, `uninspectable:<cause>`), the groups, and what was judged;
/// `signature_id` is that name's stable hash.
pub(crate) fn alert_obj(
    snap: &PolicySnapshot,
    d: &Decision,
    flow: &FlowCtx,
    rec: Option<&L7Record>,
    enforcing: bool,
) -> AlertObj {
    let (rule, category) = match (d.rule, d.uninspectable) {
        _ if d.quarantine => ("quarantine".to_string(), "quarantine"),
        (Some(r), _) => (snap.rule_name(r).to_string(), "segmentation"),
        (None, Some(c)) => (format!("uninspectable:{}", c.as_str()), "uninspectable"),
        (None, None) => (format!("default-{}", d.action.as_str()), "segmentation"),
    };
    let group = |g: Option<control::GroupId>| g.map_or("unknown", |g| snap.group_name(g));
    let mut signature = format!(
        "palisade {rule} {}->{}",
        group(d.src_group),
        group(d.dst_group)
    );
    if d.uninspectable.is_some()
        && let Some(b) = flow.blind
    {
        signature.push_str(&format!(" ({})", b.detail));
    }
    if let Some(r) = rec {
        signature.push_str(": ");
        signature.push_str(&r.summary());
    }
    AlertObj {
        action: if d.enforce && enforcing {
            "blocked"
        } else {
            "allowed"
        },
        gid: 1,
        signature_id: signature_id(&rule),
        rev: 1,
        signature,
        category,
        severity: severity_number(d.severity),
    }
}
