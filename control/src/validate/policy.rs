//! Checks of the policy's groups and rules (names, selectors, CIDRs, peers, ports,
//! apps); each rule's L7 matchers are checked in `matchers`.

use foldhash::{HashMap, HashMapExt};
use proto_parsers::AppProto;
use serde_saphyr::Spanned;

use super::matchers::check_l7;
use super::{
    CheckedGroup, CheckedRule, Ctx, MAX_GROUPS, MAX_LIST, MAX_RULES, Peer, RULE_APPS, parse_cidr,
    sorted_labels, valid_name,
};
use crate::error::{Code, SourcePos, did_you_mean};
use crate::model::{Rule, SegmentationPolicy};
use crate::vocab::{Action, GroupId};

pub(super) fn check_groups(cx: &mut Ctx<'_>, policy: &SegmentationPolicy) -> Vec<CheckedGroup> {
    let groups = &policy.spec.groups;
    if groups.len() > MAX_GROUPS {
        cx.error(
            Code::Limit,
            SourcePos::file(cx.origin),
            format!(
                "policy declares {} groups (limit {MAX_GROUPS})",
                groups.len()
            ),
            "merge groups that share rules",
        );
    }
    let mut out = Vec::with_capacity(groups.len().min(MAX_GROUPS));
    // The YAML loader rejects duplicate keys; a policy built in code may still have them.
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(groups.len().min(MAX_GROUPS));
    for (name, g) in groups.iter().take(MAX_GROUPS) {
        let pos = cx.pos(name);
        let n = name.value.as_str();
        if let Some(line) = seen.insert(n, name.referenced.line()) {
            cx.error(
                Code::InvalidGroup,
                pos.clone(),
                format!("group `{n}` is declared twice"),
                format!("the first `{n}` is at line {line}; merge the two"),
            );
        }
        if n == "*" || !valid_name(n) {
            cx.error(
                Code::InvalidGroup,
                pos.clone(),
                format!("invalid group name `{n}`"),
                "group names use letters, digits, `-`, `_`, `.` and `/`; `*` is reserved for any endpoint",
            );
        }
        if g.selector.is_none() && g.namespaces.is_none() && g.cidrs.is_none() {
            cx.error(
                Code::InvalidGroup,
                pos.clone(),
                format!("group `{n}` selects nothing"),
                "add `selector:` (labels; `{}` for every workload), `namespaces:` or `cidrs:`",
            );
        }
        let selector = g.selector.as_ref().map(|s| {
            for (k, _) in s.value.iter() {
                if k.0.is_empty() {
                    let p = cx.pos(s);
                    cx.error(
                        Code::InvalidGroup,
                        p,
                        format!("empty label key in the selector of group `{n}`"),
                        "label keys look like `app` or `app.kubernetes.io/name`",
                    );
                }
            }
            sorted_labels(&s.value)
        });
        let namespaces = g.namespaces.as_ref().map(|nss| {
            if nss.is_empty() {
                cx.error(
                    Code::InvalidGroup,
                    pos.clone(),
                    format!("group `{n}` has an empty `namespaces` list and selects nothing"),
                    "list namespaces, or remove `namespaces` to match every namespace",
                );
            }
            nss.iter().map(|s| s.value.clone()).collect::<Vec<_>>()
        });
        let mut cidrs = Vec::new();
        if let Some(list) = &g.cidrs {
            if list.is_empty() {
                cx.error(
                    Code::InvalidGroup,
                    pos.clone(),
                    format!("group `{n}` has an empty `cidrs` list"),
                    "list prefixes such as `10.0.0.0/8`, or remove `cidrs`",
                );
            } else if list.len() > MAX_LIST {
                cx.error(
                    Code::Limit,
                    pos.clone(),
                    format!("group `{n}` has {} CIDRs (limit {MAX_LIST})", list.len()),
                    "aggregate the prefixes",
                );
            } else {
                let whose = format!("group `{n}`");
                cidrs.extend(list.iter().filter_map(|c| parse_cidr(cx, c, &whose)));
                cidrs.sort_unstable();
                cidrs.dedup();
            }
        }
        out.push(CheckedGroup {
            name: n.to_owned(),
            pos,
            selector,
            namespaces,
            cidrs,
            mode: g.mode.as_ref().map(|m| m.value),
            on_uninspectable: g.on_uninspectable.as_ref().map(|u| u.value),
        });
    }
    out
}

pub(super) fn check_rules(
    cx: &mut Ctx<'_>,
    policy: &SegmentationPolicy,
    groups: &[CheckedGroup],
) -> Vec<CheckedRule> {
    let rules = &policy.spec.rules;
    if rules.len() > MAX_RULES {
        cx.error(
            Code::Limit,
            SourcePos::file(cx.origin),
            format!("policy has {} rules (limit {MAX_RULES})", rules.len()),
            "merge rules that share groups and ports",
        );
    }
    let mut by_name: HashMap<&str, GroupId> = HashMap::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        if let Ok(i) = u16::try_from(i) {
            by_name.entry(g.name.as_str()).or_insert(GroupId(i));
        }
    }
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(rules.len().min(MAX_RULES));
    let mut out = Vec::with_capacity(rules.len().min(MAX_RULES));
    for rule in rules.iter().take(MAX_RULES) {
        let id = rule.id.value.as_str();
        let pos = cx.pos(&rule.id);
        if !valid_name(id) {
            cx.error(
                Code::InvalidRule,
                pos.clone(),
                format!("invalid rule id `{id}`"),
                "rule ids use letters, digits, `-`, `_`, `.` and `/`; they name rules in events and capture files",
            );
        }
        if let Some(first) = seen.get(id) {
            cx.error(
                Code::DuplicateRuleId,
                pos.clone(),
                format!("duplicate rule id `{id}`"),
                format!("rule ids must be unique; the first `{id}` is at line {first}"),
            );
        } else {
            seen.insert(id, rule.id.referenced.line());
        }
        let from = peers(cx, rule, "from", &rule.from, &by_name, groups);
        let to = peers(cx, rule, "to", &rule.to, &by_name, groups);
        let ports = rule_ports(cx, rule);
        let app = rule_app(cx, rule);
        check_l7(cx, rule, app);
        if rule.quarantine && rule.action.value == Action::Allow {
            cx.error(
                Code::InvalidRule,
                cx.pos(&rule.action),
                format!("rule `{id}` has `quarantine: true` but allows"),
                "quarantine belongs on a deny or alert rule: a match quarantines the source workload",
            );
        }
        out.push(CheckedRule {
            id: id.to_owned(),
            pos,
            from,
            to,
            ports,
            app,
            action: rule.action.value,
            severity: rule.severity.as_ref().map(|s| s.value),
            capture: rule.capture,
            quarantine: rule.quarantine,
            l7: rule.l7(),
        });
    }
    out
}

fn peers(
    cx: &mut Ctx<'_>,
    rule: &Rule,
    field: &str,
    list: &Spanned<Vec<Spanned<String>>>,
    by_name: &HashMap<&str, GroupId>,
    groups: &[CheckedGroup],
) -> Peer {
    if list.value.is_empty() {
        let pos = cx.pos(list);
        cx.error(
            Code::InvalidRule,
            pos,
            format!(
                "`{field}` of rule `{}` is empty: the rule matches nothing",
                rule.id.value
            ),
            "list group names, or \"*\" for any endpoint",
        );
        return Peer::Groups(Vec::new());
    }
    let mut any = false;
    let mut ids = Vec::with_capacity(list.value.len());
    for name in &list.value {
        let n = name.value.as_str();
        if n == "*" {
            any = true;
            continue;
        }
        match by_name.get(n) {
            Some(g) => ids.push(*g),
            None => {
                let pos = cx.pos(name);
                let declared = groups.iter().map(|g| g.name.as_str());
                let help = match did_you_mean(n, declared) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        format!("declare `{n}` under `spec.groups`, or use \"*\" for any endpoint")
                    }
                };
                cx.error(
                    Code::UnknownGroup,
                    pos,
                    format!(
                        "unknown group `{n}` in `{field}` of rule `{}`",
                        rule.id.value
                    ),
                    help,
                );
            }
        }
    }
    if any {
        return Peer::Any;
    }
    ids.sort_unstable();
    ids.dedup();
    Peer::Groups(ids)
}

fn rule_ports(cx: &mut Ctx<'_>, rule: &Rule) -> Vec<(u16, u16)> {
    let Some(ports) = &rule.ports else {
        return Vec::new();
    };
    let lpos = cx.pos(ports);
    if !cx.list_ok("ports", &ports.value, lpos) {
        return Vec::new();
    }
    let mut ranges: Vec<(u16, u16)> = Vec::with_capacity(ports.value.len());
    for p in &ports.value {
        match p.value.range() {
            Ok(r) => ranges.push(r),
            Err(msg) => {
                let pos = cx.pos(p);
                cx.error(
                    Code::InvalidPort,
                    pos,
                    format!("{msg} in rule `{}`", rule.id.value),
                    "ports are 1-65535; write a range as \"8000-8100\"",
                );
            }
        }
    }
    merge_ranges(ranges)
}

fn merge_ranges(mut r: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    r.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn rule_app(cx: &mut Ctx<'_>, rule: &Rule) -> Option<AppProto> {
    let app = rule.app.as_ref()?;
    let name = app.value.as_str();
    if RULE_APPS.contains(&name) {
        return AppProto::from_name(name);
    }
    let pos = cx.pos(app);
    let help = if name == "http2" {
        "`app: http` covers both HTTP/1.x and HTTP/2".to_owned()
    } else if let Some(s) = did_you_mean(name, RULE_APPS) {
        format!("did you mean `{s}`?")
    } else {
        format!("expected one of {}", RULE_APPS.join(", "))
    };
    cx.error(
        Code::UnknownApp,
        pos,
        format!("unknown app `{name}` in rule `{}`", rule.id.value),
        help,
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge() {
        assert_eq!(
            merge_ranges(vec![(80, 80), (8000, 8100), (81, 90), (8050, 9000)]),
            vec![(80, 90), (8000, 9000)]
        );
        assert_eq!(
            merge_ranges(vec![(65535, 65535), (1, 65534)]),
            vec![(1, 65535)]
        );
    }
}
