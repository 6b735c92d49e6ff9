//! What validation produces: the policy and inventory in checked, typed form, which
//! [`crate::snapshot`] compiles, and the workloads' group memberships.

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;
use proto_parsers::AppProto;

use crate::error::{Diagnostic, Origin, SourcePos};
use crate::model::L7Matchers;
use crate::vocab::{Action, DefaultAction, GroupId, Mode, OnUninspectable, Severity};

/// Sources or destinations of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// `"*"`: any endpoint, including addresses nobody knows.
    Any,
    /// Sorted, deduplicated.
    Groups(Vec<GroupId>),
}

impl Peer {
    pub(crate) fn groups(&self) -> Option<&[GroupId]> {
        match self {
            Peer::Any => None,
            Peer::Groups(g) => Some(g),
        }
    }

    /// Whether every endpoint `other` names is also named by `self` (by group name, not
    /// by membership: conservative).
    pub(super) fn covers(&self, other: &Peer) -> bool {
        match (self, other) {
            (Peer::Any, _) => true,
            (Peer::Groups(_), Peer::Any) => false,
            (Peer::Groups(a), Peer::Groups(b)) => b.iter().all(|g| a.binary_search(g).is_ok()),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct CheckedGroup {
    pub name: String,
    pub pos: SourcePos,
    /// Sorted by key.
    pub selector: Option<Vec<(String, String)>>,
    pub namespaces: Option<Vec<String>>,
    pub cidrs: Vec<IpNet>,
    pub mode: Option<Mode>,
    pub on_uninspectable: Option<OnUninspectable>,
}

impl CheckedGroup {
    /// Label/namespace membership of a workload (`labels` sorted by key).
    pub(crate) fn selects(&self, namespace: &str, labels: &[(String, String)]) -> bool {
        if self.selector.is_none() && self.namespaces.is_none() {
            return false;
        }
        if let Some(nss) = &self.namespaces
            && !nss.iter().any(|n| n == namespace)
        {
            return false;
        }
        self.selector.as_ref().is_none_or(|sel| {
            sel.iter().all(|(k, v)| {
                labels
                    .binary_search_by(|(lk, _)| lk.as_str().cmp(k))
                    .ok()
                    .and_then(|i| labels.get(i))
                    .is_some_and(|(_, lv)| lv == v)
            })
        })
    }

    pub(super) fn selects_workloads(&self) -> bool {
        self.selector.is_some() || self.namespaces.is_some()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct CheckedRule {
    pub id: String,
    pub pos: SourcePos,
    pub from: Peer,
    pub to: Peer,
    /// Sorted, merged; empty = any.
    pub ports: Vec<(u16, u16)>,
    pub app: Option<AppProto>,
    pub action: Action,
    pub severity: Option<Severity>,
    pub capture: bool,
    pub quarantine: bool,
    pub l7: Option<L7Matchers>,
}

#[derive(Clone, Debug)]
pub(crate) struct CheckedWorkload {
    pub name: String,
    pub namespace: String,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
    pub ips: Vec<IpAddr>,
    pub cidrs: Vec<IpNet>,
    pub image: Option<String>,
    pub annotations: Vec<(String, String)>,
}

/// A policy and inventory in checked, typed form.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub name: String,
    pub mode: Mode,
    pub default_action: DefaultAction,
    /// `None`: the mode's default.
    pub on_uninspectable: Option<OnUninspectable>,
    pub groups: Vec<CheckedGroup>,
    pub rules: Vec<CheckedRule>,
    pub workloads: Vec<CheckedWorkload>,
    pub policy_origin: Origin,
    pub inventory_origin: Origin,
}

pub(crate) struct Validation {
    pub checked: Checked,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Each workload's groups (sorted, in declaration order), by label/namespace selection.
///
/// Groups are indexed by one of their selector labels, so a workload is only tested
/// against groups that could match it: compile time stays near O(workloads x labels)
/// rather than O(workloads x groups).
pub(crate) fn memberships(c: &Checked) -> Vec<Vec<GroupId>> {
    let mut by_label: HashMap<(&str, &str), Vec<GroupId>> = HashMap::new();
    let mut unindexed: Vec<GroupId> = Vec::new();
    for (i, g) in c.groups.iter().enumerate() {
        let Ok(id) = u16::try_from(i) else { break };
        if !g.selects_workloads() {
            continue;
        }
        match g.selector.as_ref().and_then(|s| s.first()) {
            Some((k, v)) => by_label
                .entry((k.as_str(), v.as_str()))
                .or_default()
                .push(GroupId(id)),
            None => unindexed.push(GroupId(id)),
        }
    }
    let mut out = Vec::with_capacity(c.workloads.len());
    for w in &c.workloads {
        let mut gs: Vec<GroupId> = Vec::new();
        let candidates = w
            .labels
            .iter()
            .filter_map(|(k, v)| by_label.get(&(k.as_str(), v.as_str())))
            .flatten()
            .chain(&unindexed);
        for &g in candidates {
            if c.groups
                .get(usize::from(g.0))
                .is_some_and(|grp| grp.selects(&w.namespace, &w.labels))
            {
                gs.push(g);
            }
        }
        gs.sort_unstable();
        gs.dedup();
        out.push(gs);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_selection() {
        let g = CheckedGroup {
            name: "db".into(),
            pos: SourcePos::file(&Origin::default()),
            selector: Some(vec![("app".into(), "postgres".into())]),
            namespaces: Some(vec!["shop".into()]),
            cidrs: vec![],
            mode: None,
            on_uninspectable: None,
        };
        let labels = vec![
            ("app".to_owned(), "postgres".to_owned()),
            ("tier".to_owned(), "data".to_owned()),
        ];
        assert!(g.selects("shop", &labels));
        assert!(!g.selects("other", &labels));
        assert!(!g.selects("shop", &[("app".into(), "redis".into())]));
        let cidr_only = CheckedGroup {
            selector: None,
            namespaces: None,
            ..g.clone()
        };
        assert!(!cidr_only.selects("shop", &labels));
        let ns_only = CheckedGroup {
            selector: None,
            ..g
        };
        assert!(ns_only.selects("shop", &[]));
    }
}
