//! Checks of the workload inventory: names, addresses, and that every address has one
//! owner.

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;
use serde_saphyr::Spanned;

use super::{CheckedWorkload, Ctx, MAX_LIST, MAX_WORKLOADS, parse_cidr, sorted_labels};
use crate::error::{Code, SourcePos};
use crate::model::WorkloadInventory;

pub(super) fn check_workloads(cx: &mut Ctx<'_>, inv: &WorkloadInventory) -> Vec<CheckedWorkload> {
    if inv.workloads.len() > MAX_WORKLOADS {
        cx.error(
            Code::Limit,
            SourcePos::file(cx.origin),
            format!(
                "inventory has {} workloads (limit {MAX_WORKLOADS})",
                inv.workloads.len()
            ),
            "split the node's inventory",
        );
    }
    let n = inv.workloads.len().min(MAX_WORKLOADS);
    let mut names: HashMap<(&str, &str), u64> = HashMap::with_capacity(n);
    let mut addrs: HashMap<IpNet, (usize, u64)> = HashMap::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for (wi, w) in inv.workloads.iter().take(MAX_WORKLOADS).enumerate() {
        let name = w.name.value.as_str();
        let ns = w.namespace();
        let pos = cx.pos(&w.name);
        if name.trim().is_empty() {
            cx.error(
                Code::InvalidAddress,
                pos.clone(),
                "workload name is empty".into(),
                "name it after its pod, e.g. `frontend-7d9f`",
            );
        }
        if let Some(line) = names.get(&(ns, name)) {
            cx.error(
                Code::DuplicateWorkload,
                pos.clone(),
                format!("workload `{ns}/{name}` is listed twice"),
                format!("the first `{ns}/{name}` is at line {line}; merge their addresses"),
            );
        } else {
            names.insert((ns, name), w.name.referenced.line());
        }
        if w.ips.len() > MAX_LIST || w.cidrs.len() > MAX_LIST {
            cx.error(
                Code::Limit,
                pos.clone(),
                format!("workload `{name}` has more than {MAX_LIST} addresses"),
                "use `cidrs` to cover address ranges",
            );
        }
        let whose = format!("workload `{name}`");
        let mut ips = Vec::with_capacity(w.ips.len());
        for s in w.ips.iter().take(MAX_LIST) {
            let text = s.value.trim();
            match text.parse::<IpAddr>() {
                Ok(ip) => {
                    let ip = ip.to_canonical();
                    if claim(cx, &mut addrs, &inv.workloads, IpNet::from(ip), wi, s) {
                        ips.push(ip);
                    }
                }
                Err(_) => {
                    let help = if text.contains('/') {
                        "`ips` lists single addresses; put prefixes under `cidrs`"
                    } else {
                        "write an IPv4 or IPv6 address such as `10.0.1.5` or `\"fd00::2:7\"`"
                    };
                    let p = cx.pos(s);
                    cx.error(
                        Code::InvalidAddress,
                        p,
                        format!("invalid IP address `{text}` in {whose}"),
                        help,
                    );
                }
            }
        }
        let mut cidrs = Vec::with_capacity(w.cidrs.len());
        for s in w.cidrs.iter().take(MAX_LIST) {
            if let Some(net) = parse_cidr(cx, s, &whose)
                && claim(cx, &mut addrs, &inv.workloads, net, wi, s)
            {
                cidrs.push(net);
            }
        }
        if w.ips.is_empty() && w.cidrs.is_empty() {
            cx.warn(
                Code::UnaddressedWorkload,
                pos.clone(),
                format!(
                    "workload `{name}` has no `ips` or `cidrs`; no traffic can be attributed to it"
                ),
                "add its addresses, or remove it",
            );
        }
        out.push(CheckedWorkload {
            name: name.to_owned(),
            namespace: ns.to_owned(),
            labels: sorted_labels(&w.labels),
            ips,
            cidrs,
            image: w.image.clone(),
            annotations: w
                .annotations
                .iter()
                .map(|(k, v)| (k.0.clone(), v.0.clone()))
                .collect(),
        });
    }
    out
}

/// Records that workload `wi` owns `net`; an address has one owner.
fn claim(
    cx: &mut Ctx<'_>,
    addrs: &mut HashMap<IpNet, (usize, u64)>,
    workloads: &[crate::model::Workload],
    net: IpNet,
    wi: usize,
    s: &Spanned<String>,
) -> bool {
    match addrs.get(&net) {
        Some(&(owner, line)) if owner != wi => {
            let other = workloads.get(owner).map_or("?", |w| w.name.value.as_str());
            let pos = cx.pos(s);
            cx.error(
                Code::DuplicateAddress,
                pos,
                format!("address `{net}` is already owned by workload `{other}` (line {line})"),
                "an address belongs to one workload; remove one of the entries",
            );
            false
        }
        Some(_) => false,
        None => {
            addrs.insert(net, (wi, s.referenced.line()));
            true
        }
    }
}
