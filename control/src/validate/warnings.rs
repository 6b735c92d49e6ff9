//! Warnings about a valid policy that probably does not do what was meant: allow rules
//! that a deny rule shadows, and groups that select no workload.

use proto_parsers::AppProto;

use super::{Checked, CheckedRule, memberships};
use crate::error::{Code, Diagnostic};
use crate::vocab::Action;

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

/// Allow rules that can never allow anything because a deny rule without L7 matchers
/// covers all they match (deny wins regardless of order).
pub(crate) fn shadow_warnings(c: &Checked) -> Vec<Diagnostic> {
    let denies: Vec<&CheckedRule> = c
        .rules
        .iter()
        .filter(|r| r.action == Action::Deny && r.l7.is_none())
        .collect();
    let mut out = Vec::new();
    for a in c.rules.iter().filter(|r| r.action == Action::Allow) {
        let shadow = denies.iter().find(|d| {
            d.from.covers(&a.from)
                && d.to.covers(&a.to)
                && ports_cover(&d.ports, &a.ports)
                && app_covers(d.app, a.app)
        });
        if let Some(d) = shadow {
            out.push(
                Diagnostic::warning(
                    Code::ShadowedRule,
                    a.pos.clone(),
                    format!(
                        "allow rule `{}` never allows anything: deny rule `{}` (line {}) matches all its traffic",
                        a.id, d.id, d.pos.line
                    ),
                )
                .with_help(format!(
                    "deny wins regardless of order: narrow `{}` or remove `{}`",
                    d.id, a.id
                )),
            );
        }
    }
    out
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
    use crate::vocab::GroupId;

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
