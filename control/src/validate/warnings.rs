//! Warnings about a valid policy that probably does not do what was meant: rules that a
//! deny rule shadows, groups that select no workload (or have no inventory to select
//! from), and `capture: true` where nothing is captured.

use foldhash::{HashMap, HashMapExt};
use proto_parsers::AppProto;

use super::{Checked, CheckedGroup, memberships};
use crate::error::{Code, Diagnostic};
use crate::vocab::{Action, GroupId};

/// Whether `outer` port ranges include every port of `inner` (both merged; empty = any).
fn ports_cover(outer: &[(u16, u16)], inner: &[(u16, u16)]) -> bool {
    if outer.is_empty() {
        return true;
    }
    if inner.is_empty() {
        return false;
    }
    inner
        .iter()
        .all(|&(lo, hi)| outer.iter().any(|&(a, b)| a <= lo && hi <= b))
}

/// Whether a rule with app `outer` applies to every flow a rule with app `inner` does.
fn app_covers(outer: Option<AppProto>, inner: Option<AppProto>) -> bool {
    match (outer, inner) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(o), Some(i)) if o == i => true,
        (Some(AppProto::Tcp), Some(i)) => !matches!(i, AppProto::Udp | AppProto::Dns),
        _ => false,
    }
}

/// Rules that can never decide anything because a deny rule without L7 matchers covers
/// all they match: an allow or alert rule under any such deny (deny wins regardless of
/// order), a deny rule under an earlier one (the first matching deny in declaration order
/// names the decision).
///
/// Exact only for the plainly covered case: the deny names every group the rule names (or
/// `"*"`), every port, and an app that includes the rule's (`tcp` includes every TCP
/// protocol). Coverage by membership (two groups that select the same workloads) or by
/// several denies together is not looked for: it depends on the inventory, and a false
/// warning would teach people to ignore these. A covered rule with `capture: true` still
/// captures when the deny does not, so it is not reported.
pub(crate) fn shadow_warnings(c: &Checked) -> Vec<Diagnostic> {
    // Denies by destination group, so a rule is only compared with the denies that could
    // cover its destinations: those naming `"*"`, and those naming its first group.
    let mut to_any: Vec<usize> = Vec::new();
    let mut by_group: HashMap<GroupId, Vec<usize>> = HashMap::new();
    for (i, d) in c.rules.iter().enumerate() {
        if d.action != Action::Deny || d.l7.is_some() {
            continue;
        }
        match d.to.groups() {
            None => to_any.push(i),
            Some(gs) => {
                for g in gs {
                    by_group.entry(*g).or_default().push(i);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (ri, r) in c.rules.iter().enumerate() {
        let first_to = r.to.groups().and_then(|g| g.first());
        let near = first_to
            .and_then(|g| by_group.get(g))
            .map_or(&[][..], Vec::as_slice);
        let mut candidates: Vec<usize> = to_any.iter().chain(near).copied().collect();
        // The first in declaration order: the one that names a deny's decision.
        candidates.sort_unstable();
        let shadow = candidates.into_iter().find_map(|di| {
            let d = c.rules.get(di)?;
            let order_ok = match r.action {
                // Deny wins over allow and alert, whatever the order.
                Action::Allow | Action::Alert => di != ri,
                Action::Deny => di < ri,
            };
            (order_ok
                && (!r.capture || d.capture)
                && d.from.covers(&r.from)
                && d.to.covers(&r.to)
                && ports_cover(&d.ports, &r.ports)
                && app_covers(d.app, r.app))
            .then_some(d)
        });
        let Some(d) = shadow else { continue };
        let (message, help) = match r.action {
            Action::Allow => (
                format!(
                    "allow rule `{}` never allows anything: deny rule `{}` (line {}) matches all its traffic",
                    r.id, d.id, d.pos.line
                ),
                format!(
                    "deny wins regardless of order: narrow `{}` or remove `{}`",
                    d.id, r.id
                ),
            ),
            Action::Alert => (
                format!(
                    "alert rule `{}` never alerts: deny rule `{}` (line {}) matches all its traffic",
                    r.id, d.id, d.pos.line
                ),
                format!(
                    "deny wins over alert regardless of order: narrow `{}` or remove `{}`",
                    d.id, r.id
                ),
            ),
            Action::Deny => (
                format!(
                    "deny rule `{}` never decides anything: the earlier deny rule `{}` (line {}) matches all its traffic",
                    r.id, d.id, d.pos.line
                ),
                format!(
                    "the first matching deny names the decision: remove `{}`, or narrow `{}`",
                    r.id, d.id
                ),
            ),
        };
        out.push(Diagnostic::warning(Code::ShadowedRule, r.pos.clone(), message).with_help(help));
    }
    out
}

/// Groups that select workloads by label while there is no workload to select: no
/// inventory was given (`inventory_given` false), or it lists none. One warning, at the
/// first such group, naming them all: every flow between them falls to the mode.
pub(crate) fn no_inventory_warnings(c: &Checked, inventory_given: bool) -> Vec<Diagnostic> {
    if !c.workloads.is_empty() {
        return Vec::new();
    }
    let selecting: Vec<&CheckedGroup> = c.groups.iter().filter(|g| g.selects_workloads()).collect();
    let Some(first) = selecting.first() else {
        return Vec::new();
    };
    let names: Vec<String> = selecting.iter().map(|g| format!("`{}`", g.name)).collect();
    let (message, help) = if inventory_given {
        (
            format!(
                "the inventory {} lists no workload: every selector group is empty ({})",
                c.inventory_origin,
                names.join(", ")
            ),
            "add the workloads to the inventory, with their labels and addresses",
        )
    } else {
        (
            format!(
                "no inventory: every selector group is empty without --inventory ({})",
                names.join(", ")
            ),
            "give --inventory WORKLOADS.yaml, or add a WorkloadInventory document to the policy file",
        )
    };
    vec![Diagnostic::warning(Code::EmptyGroup, first.pos.clone(), message).with_help(help)]
}

/// Rules with `capture: true` when the command writes no capture (no `--capture-dir`):
/// their flows are judged but not kept.
pub(crate) fn capture_warnings(c: &Checked) -> Vec<Diagnostic> {
    c.rules
        .iter()
        .filter(|r| r.capture)
        .map(|r| {
            Diagnostic::warning(
                Code::CaptureOff,
                r.pos.clone(),
                format!(
                    "rule `{}` has `capture: true` but no --capture-dir was given: its flows are not captured",
                    r.id
                ),
            )
            .with_help("give --capture-dir DIR to keep them as pcap files")
        })
        .collect()
}

/// Groups that select workloads by label but match none in this inventory.
pub(crate) fn empty_group_warnings(c: &Checked) -> Vec<Diagnostic> {
    if c.workloads.is_empty() {
        return Vec::new();
    }
    let mut used = vec![false; c.groups.len()];
    for gs in memberships(c) {
        for g in gs {
            if let Some(u) = used.get_mut(usize::from(g.0)) {
                *u = true;
            }
        }
    }
    c.groups
        .iter()
        .zip(used)
        .filter(|(g, used)| !used && g.cidrs.is_empty() && g.selects_workloads())
        .map(|(g, _)| {
            Diagnostic::warning(
                Code::EmptyGroup,
                g.pos.clone(),
                format!("group `{}` matches no workload in the inventory", g.name),
            )
            .with_help("check the selector's labels and namespaces against the inventory")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Peer;

    #[test]
    fn coverage() {
        assert!(ports_cover(&[], &[(1, 2)]));
        assert!(!ports_cover(&[(1, 2)], &[]));
        assert!(ports_cover(&[(1, 100)], &[(5, 6), (100, 100)]));
        assert!(!ports_cover(&[(1, 100)], &[(100, 101)]));
        assert!(app_covers(None, Some(AppProto::Http)));
        assert!(app_covers(Some(AppProto::Tcp), Some(AppProto::Postgres)));
        assert!(!app_covers(Some(AppProto::Tcp), Some(AppProto::Dns)));
        assert!(!app_covers(Some(AppProto::Http), None));
        let g = |v: &[u16]| Peer::Groups(v.iter().map(|&i| GroupId(i)).collect());
        assert!(Peer::Any.covers(&g(&[1])));
        assert!(g(&[1, 2, 3]).covers(&g(&[1, 3])));
        assert!(!g(&[1]).covers(&Peer::Any));
        assert!(!g(&[1]).covers(&g(&[1, 2])));
    }
}
