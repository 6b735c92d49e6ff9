//! Compilation of a validated policy and inventory (what [`crate::validate`] checked)
//! into a [`PolicySnapshot`]: the address tries and their hashed copy, interned group
//! sets, the rule index and its flow index, and the L7 index.

use foldhash::{HashMap, HashMapExt};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use super::{
    ANY_KEY, Cell, EMPTY_SET, Endpoint, GroupInfo, PolicySnapshot, SetInfo, WorkloadId,
    WorkloadInfo, flat, flow_index,
};
use crate::error::{Code, Diagnostic, Origin, PolicyErrors, SourcePos};
use crate::l7::index::L7Index;
use crate::rule::{CompiledRule, transports_for};
use crate::validate::{Checked, Peer, memberships};
use crate::vocab::{Action, GroupId, Severity};

/// Interns group sets so that endpoints with the same membership share one slice.
struct SetInterner {
    ids: HashMap<Box<[GroupId]>, u32>,
    sets: Vec<SetInfo>,
    members: Vec<GroupId>,
}

impl SetInterner {
    fn new() -> Self {
        let mut s = SetInterner {
            ids: HashMap::new(),
            sets: Vec::new(),
            members: Vec::new(),
        };
        // Set 0 is the empty set (EMPTY_SET).
        s.sets.push(SetInfo {
            start: 0,
            len: 0,
            mode: None,
            on_uninspectable: None,
            first: None,
            src_keys: (0, 0),
            dst_keys: (0, 0),
            src_list: 0,
            dst_list: 0,
        });
        s.ids.insert(Box::from([]), EMPTY_SET);
        s
    }

    /// `set` must be sorted and deduplicated.
    fn intern(&mut self, set: &[GroupId], groups: &[GroupInfo]) -> Result<u32, ()> {
        if let Some(&id) = self.ids.get(set) {
            return Ok(id);
        }
        // u32::MAX stays free: it marks empty slots of the address table.
        let id = u32::try_from(self.sets.len())
            .ok()
            .filter(|&id| id != u32::MAX)
            .ok_or(())?;
        let start = u32::try_from(self.members.len()).map_err(|_| ())?;
        let len = u32::try_from(set.len()).map_err(|_| ())?;
        let mode = set
            .iter()
            .find_map(|g| groups.get(usize::from(g.0)).and_then(|gi| gi.mode));
        let on_uninspectable = set.iter().find_map(|g| {
            groups
                .get(usize::from(g.0))
                .and_then(|gi| gi.on_uninspectable)
        });
        self.members.extend_from_slice(set);
        self.sets.push(SetInfo {
            start,
            len,
            mode,
            on_uninspectable,
            first: set.first().copied(),
            src_keys: (0, 0),
            dst_keys: (0, 0),
            src_list: 0,
            dst_list: 0,
        });
        self.ids.insert(Box::from(set), id);
        Ok(id)
    }
}

fn limit_error(origin: &Origin, what: &str) -> PolicyErrors {
    PolicyErrors::single(
        Diagnostic::error(Code::Limit, SourcePos::file(origin), what.to_owned())
            .with_help("split the policy or inventory"),
    )
}

/// Builds the snapshot from validated input. Fails only on table limits.
pub(crate) fn build(c: Checked, version: u64) -> Result<PolicySnapshot, PolicyErrors> {
    let groups: Box<[GroupInfo]> = c
        .groups
        .iter()
        .map(|g| GroupInfo {
            name: g.name.as_str().into(),
            mode: g.mode,
            on_uninspectable: g.on_uninspectable,
        })
        .collect();
    let group_ids = || (0..c.groups.len()).filter_map(|i| u16::try_from(i).ok().map(GroupId));

    let mut interner = SetInterner::new();
    let mut v4: PrefixMap<Ipv4Net, Endpoint> = PrefixMap::new();
    let mut v6: PrefixMap<Ipv6Net, Endpoint> = PrefixMap::new();
    let mut workloads = Vec::with_capacity(c.workloads.len());
    let mut scratch: Vec<GroupId> = Vec::new();

    let members = memberships(&c);
    for (wi, (w, gs)) in c.workloads.iter().zip(&members).enumerate() {
        let id = WorkloadId(
            u32::try_from(wi)
                .map_err(|_| limit_error(&c.inventory_origin, "too many workloads"))?,
        );
        let set = interner
            .intern(gs, &groups)
            .map_err(|()| limit_error(&c.inventory_origin, "too many group sets"))?;
        let ep = Endpoint {
            workload: Some(id),
            set,
        };
        for ip in &w.ips {
            insert(&mut v4, &mut v6, IpNet::from(*ip), ep);
        }
        for net in &w.cidrs {
            insert(&mut v4, &mut v6, *net, ep);
        }
        workloads.push(WorkloadInfo {
            name: w.name.as_str().into(),
            namespace: w.namespace.as_str().into(),
            image: w.image.as_deref().map(Box::from),
            annotations: w
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
            labels: w
                .labels
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        });
    }

    // Group CIDRs: addresses outside the inventory. Each distinct prefix carries the
    // union of every group CIDR covering it, so the longest match alone decides.
    let mut g4: PrefixMap<Ipv4Net, Vec<GroupId>> = PrefixMap::new();
    let mut g6: PrefixMap<Ipv6Net, Vec<GroupId>> = PrefixMap::new();
    for (gid, g) in group_ids().zip(c.groups.iter()) {
        for net in &g.cidrs {
            match net {
                IpNet::V4(n) => g4.entry(*n).or_default().push(gid),
                IpNet::V6(n) => g6.entry(*n).or_default().push(gid),
            }
        }
    }
    let mut pending4 = Vec::new();
    for (net, _) in g4.iter() {
        // Inside a workload's prefix: the workload owns these addresses (cluster
        // endpoints are selected by labels, not by CIDR), so the group prefix adds
        // nothing.
        if v4.cover(&net).any(|(_, e)| e.workload.is_some()) {
            continue;
        }
        scratch.clear();
        scratch.extend(g4.cover(&net).flat_map(|(_, gs)| gs.iter().copied()));
        scratch.sort_unstable();
        scratch.dedup();
        let set = interner
            .intern(&scratch, &groups)
            .map_err(|()| limit_error(&c.policy_origin, "too many group sets"))?;
        pending4.push((net, set));
    }
    for (net, set) in pending4 {
        v4.insert(
            net,
            Endpoint {
                workload: None,
                set,
            },
        );
    }
    let mut pending6 = Vec::new();
    for (net, _) in g6.iter() {
        if v6.cover(&net).any(|(_, e)| e.workload.is_some()) {
            continue;
        }
        scratch.clear();
        scratch.extend(g6.cover(&net).flat_map(|(_, gs)| gs.iter().copied()));
        scratch.sort_unstable();
        scratch.dedup();
        let set = interner
            .intern(&scratch, &groups)
            .map_err(|()| limit_error(&c.policy_origin, "too many group sets"))?;
        pending6.push((net, set));
    }
    for (net, set) in pending6 {
        v6.insert(
            net,
            Endpoint {
                workload: None,
                set,
            },
        );
    }

    // Rules and their index.
    let mut rules = Vec::with_capacity(c.rules.len());
    let mut entries: Vec<(u16, u16, u32)> = Vec::new();
    for (ri, r) in c.rules.iter().enumerate() {
        let rid = u32::try_from(ri).map_err(|_| limit_error(&c.policy_origin, "too many rules"))?;
        let dst_keys: Vec<u16> = match &r.to {
            Peer::Any => vec![ANY_KEY],
            Peer::Groups(gs) => gs.iter().map(|g| g.0).collect(),
        };
        let src_keys: Vec<u16> = match &r.from {
            Peer::Any => vec![ANY_KEY],
            Peer::Groups(gs) => gs.iter().map(|g| g.0).collect(),
        };
        for &d in &dst_keys {
            for &s in &src_keys {
                entries.push((d, s, rid));
            }
        }
        let default_severity = match r.action {
            Action::Deny => Severity::High,
            Action::Alert => Severity::Medium,
            Action::Allow => Severity::Low,
        };
        rules.push(CompiledRule {
            name: r.id.as_str().into(),
            action: r.action,
            severity: r.severity.unwrap_or(default_severity),
            capture: r.capture,
            quarantine: r.quarantine,
            app: r.app,
            transports: transports_for(r.app),
            ports: r.ports.clone().into_boxed_slice(),
            from: r.from.groups().map(Box::from),
            to: r.to.groups().map(Box::from),
            l7: r.l7.clone(),
        });
    }
    // ANY_KEY sorts after every group id, so the `"*"` destination bucket is last and the
    // `"*"` source cell is the last of its bucket.
    entries.sort_unstable();
    let dst_count = groups.len() + 1;
    let mut index = vec![(0u32, 0u32); dst_count];
    let mut cells: Vec<Cell> = Vec::new();
    let mut rule_refs: Vec<u32> = Vec::with_capacity(entries.len());
    let too_big = || limit_error(&c.policy_origin, "rule index too large");
    // (destination key, source key, range into rule_refs) of every cell.
    let mut cell_keys: Vec<(u16, u16, u32, u32)> = Vec::new();
    let mut i = 0;
    while let Some(&(d, s, _)) = entries.get(i) {
        let dst_slot = if d == ANY_KEY {
            groups.len()
        } else {
            usize::from(d)
        };
        let cell_start = u32::try_from(cells.len()).map_err(|_| too_big())?;
        let mut j = i;
        while let Some(&(d2, s2, r)) = entries.get(j) {
            if d2 != d || s2 != s {
                break;
            }
            rule_refs.push(r);
            j += 1;
        }
        let start = u32::try_from(rule_refs.len() - (j - i)).map_err(|_| too_big())?;
        let end = u32::try_from(rule_refs.len()).map_err(|_| too_big())?;
        cells.push(Cell { src: s, start, end });
        cell_keys.push((d, s, start, end));
        if let Some(slot) = index.get_mut(dst_slot) {
            if slot.1 == 0 {
                slot.0 = cell_start;
            }
            slot.1 = u32::try_from(cells.len()).map_err(|_| too_big())?;
        }
        i = j;
    }

    let seed = flat::random_seed();
    let mut flow_index = flow_index::FlowIndex::build(
        &rules,
        cell_keys.iter().map(|&(d, s, start, end)| {
            let refs = rule_refs.get(start as usize..end as usize).unwrap_or(&[]);
            (d, s, refs)
        }),
        seed,
    )
    .map_err(|()| too_big())?;
    let (set_keys, src_lists, dst_lists) =
        cell_keys_of_sets(&mut interner, &cell_keys, groups.len()).map_err(|()| too_big())?;
    let list = |&(start, len): &(u32, u32)| {
        set_keys
            .get(start as usize..start as usize + len as usize)
            .unwrap_or(&[])
    };
    let src_lists: Vec<&[u16]> = src_lists.iter().map(list).collect();
    let dst_lists: Vec<&[u16]> = dst_lists.iter().map(list).collect();
    flow_index.plan(&dst_lists, &src_lists);
    let addrs = flat::AddrTable::build(&v4, &v6, seed.rotate_left(32));

    let l7 = L7Index::build(&rules, groups.len())
        .map_err(|e| limit_error(&c.policy_origin, &format!("L7 matchers: {e}")))?;
    Ok(PolicySnapshot {
        version,
        name: c.name.as_str().into(),
        mode: c.mode,
        default_action: c.default_action,
        on_uninspectable: c.on_uninspectable,
        groups,
        workloads: workloads.into_boxed_slice(),
        unknown_workload: WorkloadInfo {
            name: "unknown".into(),
            namespace: "".into(),
            image: None,
            annotations: Vec::new(),
            labels: Vec::new(),
        },
        sets: interner.sets.into_boxed_slice(),
        set_members: interner.members.into_boxed_slice(),
        v4,
        v6,
        addrs,
        rules: rules.into_boxed_slice(),
        index: index.into_boxed_slice(),
        cells: cells.into_boxed_slice(),
        rule_refs: rule_refs.into_boxed_slice(),
        set_keys,
        flow_index,
        l7,
        inventory_epoch: 0,
        generation: super::NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    })
}

/// Fills every set's `src_keys`/`dst_keys`: its groups that some cell names as source
/// (destination), stored once per distinct list, and the lists' ids. Returns the keys'
/// storage and the ranges of the distinct source and destination lists, by id.
#[allow(clippy::type_complexity)]
fn cell_keys_of_sets(
    interner: &mut SetInterner,
    cell_keys: &[(u16, u16, u32, u32)],
    group_count: usize,
) -> Result<(Box<[u16]>, Vec<(u32, u32)>, Vec<(u32, u32)>), ()> {
    // `"*"` (ANY_KEY) is out of range here: the flow index keeps it apart.
    let mut src_used = vec![false; group_count];
    let mut dst_used = vec![false; group_count];
    for &(d, s, _, _) in cell_keys {
        if let Some(u) = dst_used.get_mut(usize::from(d)) {
            *u = true;
        }
        if let Some(u) = src_used.get_mut(usize::from(s)) {
            *u = true;
        }
    }
    struct Lists {
        ids: HashMap<Vec<u16>, u32>,
        ranges: Vec<(u32, u32)>,
    }
    let mut keys: Vec<u16> = Vec::new();
    let mut scratch: Vec<u16> = Vec::new();
    let mut intern =
        |members: &[GroupId], used: &[bool], lists: &mut Lists| -> Result<((u32, u32), u32), ()> {
            scratch.clear();
            scratch.extend(
                members
                    .iter()
                    .filter(|g| used.get(usize::from(g.0)).copied().unwrap_or(false))
                    .map(|g| g.0),
            );
            if let Some(&id) = lists.ids.get(&scratch) {
                let range = lists.ranges.get(id as usize).copied().ok_or(())?;
                return Ok((range, id));
            }
            let id = u32::try_from(lists.ranges.len()).map_err(|_| ())?;
            let range = (
                u32::try_from(keys.len()).map_err(|_| ())?,
                u32::try_from(scratch.len()).map_err(|_| ())?,
            );
            keys.extend_from_slice(&scratch);
            lists.ranges.push(range);
            lists.ids.insert(scratch.clone(), id);
            Ok((range, id))
        };
    let mut src_lists = Lists {
        ids: HashMap::new(),
        ranges: Vec::new(),
    };
    let mut dst_lists = Lists {
        ids: HashMap::new(),
        ranges: Vec::new(),
    };
    for set in &mut interner.sets {
        let start = set.start as usize;
        let members = interner
            .members
            .get(start..start + set.len as usize)
            .unwrap_or(&[]);
        (set.src_keys, set.src_list) = intern(members, &src_used, &mut src_lists)?;
        (set.dst_keys, set.dst_list) = intern(members, &dst_used, &mut dst_lists)?;
    }
    Ok((keys.into_boxed_slice(), src_lists.ranges, dst_lists.ranges))
}

fn insert(
    v4: &mut PrefixMap<Ipv4Net, Endpoint>,
    v6: &mut PrefixMap<Ipv6Net, Endpoint>,
    net: IpNet,
    ep: Endpoint,
) {
    match net {
        IpNet::V4(n) => {
            v4.insert(n, ep);
        }
        IpNet::V6(n) => {
            v6.insert(n, ep);
        }
    }
}
