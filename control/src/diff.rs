//! Semantic diff of two policies, for `palisade policy diff` and code review.
//!
//! Compares what a policy *means*, not how it is written: groups by name, rules by `id`,
//! lists that are sets (selectors, namespaces, CIDRs, `from`/`to`, ports, matcher lists)
//! order-independently, and rule order not at all (deny wins, so order never changes a
//! verdict). Positions, comments and formatting are ignored. The diff works on parsed
//! documents, before validation, so it also explains a policy that does not compile yet; a
//! duplicated group name or rule id is compared by its first occurrence.

use std::collections::BTreeSet;
use std::fmt;

use ipnet::IpNet;

use crate::model::{Group, L7Matchers, Labels, Patterns, PortSpec, Rule, SegmentationPolicy};
use crate::vocab::{Action, DefaultAction, Mode, OnUninspectable, Severity};

/// How an item differs between the two policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One field of a changed item, rendered old and new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// As written in the policy (`selector`, `ports`, `http`, `action`...).
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupChange {
    pub name: String,
    pub kind: ChangeKind,
    /// For an added or removed group: the group in one line.
    pub summary: String,
    /// For a changed group: what changed.
    pub fields: Vec<FieldChange>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleChange {
    pub id: String,
    pub kind: ChangeKind,
    /// The rule in one line (the new version for added/changed rules).
    pub summary: String,
    pub fields: Vec<FieldChange>,
}

/// What changed from one policy to another; empty when they mean the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDiff {
    /// `metadata.name`.
    pub name: Option<(String, String)>,
    /// `spec.mode`, effective (absent = protect).
    pub mode: Option<(Mode, Mode)>,
    /// `spec.defaultAction`, effective (absent = deny).
    pub default_action: Option<(DefaultAction, DefaultAction)>,
    /// `spec.onUninspectable` as written (absent = the mode's default).
    pub on_uninspectable: Option<(Option<OnUninspectable>, Option<OnUninspectable>)>,
    /// In the new policy's order, then removed groups in the old order.
    pub groups: Vec<GroupChange>,
    /// In the new policy's order, then removed rules in the old order.
    pub rules: Vec<RuleChange>,
}

impl PolicyDiff {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.mode.is_none()
            && self.default_action.is_none()
            && self.on_uninspectable.is_none()
            && self.groups.is_empty()
            && self.rules.is_empty()
    }
}

/// The semantic difference from `old` to `new`.
pub fn diff(old: &SegmentationPolicy, new: &SegmentationPolicy) -> PolicyDiff {
    let mut d = PolicyDiff::default();
    if old.metadata.name.value != new.metadata.name.value {
        d.name = Some((
            old.metadata.name.value.clone(),
            new.metadata.name.value.clone(),
        ));
    }
    let (om, nm) = (old.spec.mode(), new.spec.mode());
    if om != nm {
        d.mode = Some((om, nm));
    }
    let (oa, na) = (old.spec.default_action(), new.spec.default_action());
    if oa != na {
        d.default_action = Some((oa, na));
    }
    let uninspectable = |p: &SegmentationPolicy| p.spec.on_uninspectable.as_ref().map(|u| u.value);
    let (ou, nu) = (uninspectable(old), uninspectable(new));
    if ou != nu {
        d.on_uninspectable = Some((ou, nu));
    }

    let find_group = |p: &SegmentationPolicy, name: &str| -> Option<Group> {
        p.spec
            .groups
            .iter()
            .find(|(k, _)| k.value == name)
            .map(|(_, g)| g.clone())
    };
    let mut seen = BTreeSet::new();
    for (name, g) in new.spec.groups.iter() {
        if !seen.insert(name.value.as_str()) {
            continue;
        }
        match find_group(old, &name.value) {
            None => d.groups.push(GroupChange {
                name: name.value.clone(),
                kind: ChangeKind::Added,
                summary: group_summary(g),
                fields: Vec::new(),
            }),
            Some(o) => {
                let fields = group_fields(&o, g);
                if !fields.is_empty() {
                    d.groups.push(GroupChange {
                        name: name.value.clone(),
                        kind: ChangeKind::Changed,
                        summary: group_summary(g),
                        fields,
                    });
                }
            }
        }
    }
    let mut gone = BTreeSet::new();
    for (name, g) in old.spec.groups.iter() {
        if find_group(new, &name.value).is_none() && gone.insert(name.value.as_str()) {
            d.groups.push(GroupChange {
                name: name.value.clone(),
                kind: ChangeKind::Removed,
                summary: group_summary(g),
                fields: Vec::new(),
            });
        }
    }

    let find_rule = |p: &'_ SegmentationPolicy, id: &str| -> Option<Rule> {
        p.spec.rules.iter().find(|r| r.id.value == id).cloned()
    };
    let mut seen = BTreeSet::new();
    for r in &new.spec.rules {
        if !seen.insert(r.id.value.as_str()) {
            continue;
        }
        match find_rule(old, &r.id.value) {
            None => d.rules.push(RuleChange {
                id: r.id.value.clone(),
                kind: ChangeKind::Added,
                summary: rule_summary(r),
                fields: Vec::new(),
            }),
            Some(o) => {
                let fields = rule_fields(&o, r);
                if !fields.is_empty() {
                    d.rules.push(RuleChange {
                        id: r.id.value.clone(),
                        kind: ChangeKind::Changed,
                        summary: rule_summary(r),
                        fields,
                    });
                }
            }
        }
    }
    let mut gone = BTreeSet::new();
    for r in &old.spec.rules {
        if find_rule(new, &r.id.value).is_none() && gone.insert(r.id.value.as_str()) {
            d.rules.push(RuleChange {
                id: r.id.value.clone(),
                kind: ChangeKind::Removed,
                summary: rule_summary(r),
                fields: Vec::new(),
            });
        }
    }
    d
}

/// Pushes a change when the canonical forms differ; `show` renders them for people.
fn field<T: PartialEq>(
    out: &mut Vec<FieldChange>,
    name: &'static str,
    old: T,
    new: T,
    show: impl Fn(bool) -> String,
) {
    if old != new {
        out.push(FieldChange {
            field: name,
            old: show(false),
            new: show(true),
        });
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.into_iter().collect();
    format!("[{}]", v.join(", "))
}

fn opt_or(v: Option<String>, absent: &str) -> String {
    v.unwrap_or_else(|| absent.to_owned())
}

/// Selector as a set of `key: value` pairs (order does not change membership).
fn selector_set(g: &Group) -> Option<BTreeSet<(String, String)>> {
    g.selector.as_ref().map(|s| labels_set(&s.value))
}

fn labels_set(l: &Labels) -> BTreeSet<(String, String)> {
    l.iter().map(|(k, v)| (k.0.clone(), v.0.clone())).collect()
}

fn show_labels(s: &BTreeSet<(String, String)>) -> String {
    let v: Vec<String> = s.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", v.join(", "))
}

fn namespaces_set(g: &Group) -> Option<BTreeSet<String>> {
    g.namespaces
        .as_ref()
        .map(|n| n.iter().map(|s| s.value.clone()).collect())
}

/// CIDRs as networks when they parse (so `10.0.0.0/8` equals `10.0.0.0/08`), else as text.
fn cidrs_set(g: &Group) -> Option<BTreeSet<String>> {
    g.cidrs.as_ref().map(|c| {
        c.iter()
            .map(|s| {
                s.value
                    .trim()
                    .parse::<IpNet>()
                    .map_or_else(|_| s.value.clone(), |n| n.to_string())
            })
            .collect()
    })
}

fn group_mode(g: &Group) -> Option<Mode> {
    g.mode.as_ref().map(|m| m.value)
}

fn group_uninspectable(g: &Group) -> Option<OnUninspectable> {
    g.on_uninspectable.as_ref().map(|u| u.value)
}

/// An `onUninspectable` as shown in a diff; absent means the level above decides.
fn uninspectable_str(u: Option<OnUninspectable>, absent: &str) -> String {
    u.map_or(absent.to_owned(), |u| u.as_str().to_owned())
}

fn group_fields(o: &Group, n: &Group) -> Vec<FieldChange> {
    let mut v = Vec::new();
    let (os, ns) = (selector_set(o), selector_set(n));
    field(&mut v, "selector", &os, &ns, |new| {
        let s = if new { &ns } else { &os };
        opt_or(s.as_ref().map(show_labels), "(none)")
    });
    let (on, nn) = (namespaces_set(o), namespaces_set(n));
    field(&mut v, "namespaces", &on, &nn, |new| {
        let s = if new { &nn } else { &on };
        opt_or(
            s.as_ref().map(|s| list(s.iter().map(String::as_str))),
            "(any)",
        )
    });
    let (oc, nc) = (cidrs_set(o), cidrs_set(n));
    field(&mut v, "cidrs", &oc, &nc, |new| {
        let s = if new { &nc } else { &oc };
        opt_or(
            s.as_ref().map(|s| list(s.iter().map(String::as_str))),
            "(none)",
        )
    });
    let (om, nm) = (group_mode(o), group_mode(n));
    field(&mut v, "mode", om, nm, |new| {
        let m = if new { nm } else { om };
        m.map_or("(policy mode)".to_owned(), |m| m.as_str().to_owned())
    });
    let (ou, nu) = (group_uninspectable(o), group_uninspectable(n));
    field(&mut v, "onUninspectable", ou, nu, |new| {
        uninspectable_str(if new { nu } else { ou }, "(policy's)")
    });
    v
}

fn group_summary(g: &Group) -> String {
    let mut parts = Vec::new();
    if let Some(s) = selector_set(g) {
        parts.push(format!("selector {}", show_labels(&s)));
    }
    if let Some(n) = namespaces_set(g) {
        parts.push(format!("namespaces {}", list(n.iter().map(String::as_str))));
    }
    if let Some(c) = cidrs_set(g) {
        parts.push(format!("cidrs {}", list(c.iter().map(String::as_str))));
    }
    if let Some(m) = group_mode(g) {
        parts.push(format!("mode {}", m.as_str()));
    }
    if let Some(u) = group_uninspectable(g) {
        parts.push(format!("onUninspectable {}", u.as_str()));
    }
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join(", ")
    }
}

fn peers(p: &[serde_saphyr::Spanned<String>]) -> BTreeSet<String> {
    p.iter().map(|s| s.value.clone()).collect()
}

fn show_peers(p: &BTreeSet<String>) -> String {
    if p.len() == 1 {
        p.iter().next().cloned().unwrap_or_default()
    } else {
        list(p.iter().map(String::as_str))
    }
}

/// Ports as merged ranges when they parse, else as written.
fn ports_set(r: &Rule) -> Option<BTreeSet<String>> {
    r.ports.as_ref().map(|ps| {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        let mut bad = BTreeSet::new();
        for p in &ps.value {
            match p.value.range() {
                Ok(rg) => ranges.push(rg),
                Err(_) => {
                    bad.insert(match &p.value {
                        PortSpec::Number(n) => n.to_string(),
                        PortSpec::Text(t) => t.clone(),
                    });
                }
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::new();
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged
            .into_iter()
            .map(|(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .chain(bad)
            .collect()
    })
}

fn app_of(r: &Rule) -> Option<String> {
    r.app.as_ref().map(|a| a.value.clone())
}

fn patterns_canon(p: &Patterns) -> Option<BTreeSet<String>> {
    p.as_ref()
        .map(|l| l.value.iter().map(|s| s.value.clone()).collect())
}

/// One matcher entry in a canonical one-line form: fields in a fixed order, values sorted.
fn entry(fields: &[(&str, Option<BTreeSet<String>>)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|(name, vals)| {
            vals.as_ref()
                .map(|v| format!("{name}: {}", list(v.iter().map(String::as_str))))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The rule's L7 matchers, canonical (entries are alternatives, so they are sorted too).
fn l7_canon(r: &Rule) -> Option<(String, BTreeSet<String>)> {
    let m = r.l7()?;
    let entries: BTreeSet<String> = match &m {
        L7Matchers::Http(l) => l
            .iter()
            .map(|h| {
                let headers = h.headers.as_ref().map(|hs| {
                    hs.value
                        .iter()
                        .map(|(k, v)| format!("{}={}", k.0.to_ascii_lowercase(), v.0))
                        .collect()
                });
                entry(&[
                    ("methods", patterns_canon(&h.methods)),
                    ("paths", patterns_canon(&h.paths)),
                    ("hosts", patterns_canon(&h.hosts)),
                    ("headers", headers),
                ])
            })
            .collect(),
        L7Matchers::Grpc(l) => l
            .iter()
            .map(|g| {
                entry(&[
                    (
                        "service",
                        g.service
                            .as_ref()
                            .map(|s| BTreeSet::from([s.value.clone()])),
                    ),
                    ("methods", patterns_canon(&g.methods)),
                ])
            })
            .collect(),
        L7Matchers::Sql(l) => l
            .iter()
            .map(|q| {
                entry(&[
                    ("verbs", patterns_canon(&q.verbs)),
                    ("tables", patterns_canon(&q.tables)),
                    ("databases", patterns_canon(&q.databases)),
                    ("users", patterns_canon(&q.users)),
                ])
            })
            .collect(),
        L7Matchers::Redis(l) => l
            .iter()
            .map(|x| {
                entry(&[
                    ("commands", patterns_canon(&x.commands)),
                    ("keys", patterns_canon(&x.keys)),
                ])
            })
            .collect(),
        L7Matchers::Dns(l) => l
            .iter()
            .map(|x| entry(&[("names", patterns_canon(&x.names))]))
            .collect(),
        L7Matchers::Tls(l) => l
            .iter()
            .map(|x| {
                entry(&[
                    ("sni", patterns_canon(&x.sni)),
                    ("alpn", patterns_canon(&x.alpn)),
                ])
            })
            .collect(),
    };
    Some((m.kind().as_str().to_owned(), entries))
}

fn show_l7(c: &Option<(String, BTreeSet<String>)>) -> String {
    match c {
        None => "(none)".to_owned(),
        Some((kind, entries)) => format!("{kind} {}", list(entries.iter().map(String::as_str))),
    }
}

fn severity_of(r: &Rule) -> Option<Severity> {
    r.severity.as_ref().map(|s| s.value)
}

fn rule_fields(o: &Rule, n: &Rule) -> Vec<FieldChange> {
    let mut v = Vec::new();
    let (of, nf) = (peers(&o.from.value), peers(&n.from.value));
    field(&mut v, "from", &of, &nf, |new| {
        show_peers(if new { &nf } else { &of })
    });
    let (ot, nt) = (peers(&o.to.value), peers(&n.to.value));
    field(&mut v, "to", &ot, &nt, |new| {
        show_peers(if new { &nt } else { &ot })
    });
    let (op, np) = (ports_set(o), ports_set(n));
    field(&mut v, "ports", &op, &np, |new| {
        let p = if new { &np } else { &op };
        opt_or(
            p.as_ref().map(|p| list(p.iter().map(String::as_str))),
            "(any)",
        )
    });
    let (oa, na) = (app_of(o), app_of(n));
    field(&mut v, "app", &oa, &na, |new| {
        opt_or(if new { na.clone() } else { oa.clone() }, "(any)")
    });
    let (ol, nl) = (l7_canon(o), l7_canon(n));
    field(&mut v, "L7", &ol, &nl, |new| {
        show_l7(if new { &nl } else { &ol })
    });
    let (oa, na) = (o.action.value, n.action.value);
    field(&mut v, "action", oa, na, |new| {
        (if new { na } else { oa }).as_str().to_owned()
    });
    field(&mut v, "capture", o.capture, n.capture, |new| {
        (if new { n.capture } else { o.capture }).to_string()
    });
    let (os, ns) = (severity_of(o), severity_of(n));
    field(&mut v, "severity", os, ns, |new| {
        let s = if new { ns } else { os };
        s.map_or("(default)".to_owned(), |s| s.as_str().to_owned())
    });
    v
}

/// `allow web -> db :5432/tcp postgres sql[...]`, in one line.
fn rule_summary(r: &Rule) -> String {
    let action: Action = r.action.value;
    let mut s = format!(
        "{} {} -> {}",
        action.as_str(),
        show_peers(&peers(&r.from.value)),
        show_peers(&peers(&r.to.value))
    );
    let app = app_of(r);
    let transport = match app.as_deref() {
        None => None,
        Some("udp") => Some("udp"),
        Some("dns") => Some("udp+tcp"),
        Some(_) => Some("tcp"),
    };
    if let Some(p) = ports_set(r) {
        s.push_str(&format!(
            " :{}",
            p.into_iter().collect::<Vec<_>>().join(",")
        ));
        if let Some(t) = transport {
            s.push('/');
            s.push_str(t);
        }
    }
    let l7 = l7_canon(r);
    // The L7 matchers start with their kind (`redis [...]`), which names the app when
    // they are the app's own: say it once.
    let l7_names_app = l7
        .as_ref()
        .is_some_and(|(kind, _)| Some(kind.as_str()) == app.as_deref());
    if let Some(a) = app.as_deref()
        && !(matches!(a, "tcp" | "udp") && r.ports.is_some())
        && !l7_names_app
    {
        s.push(' ');
        s.push_str(a);
    }
    if let Some(l) = l7 {
        s.push(' ');
        s.push_str(&show_l7(&Some(l)));
    }
    if r.capture {
        s.push_str(", capture");
    }
    if let Some(sev) = severity_of(r) {
        s.push_str(", severity ");
        s.push_str(sev.as_str());
    }
    s
}

fn default_action_str(a: DefaultAction) -> &'static str {
    match a {
        DefaultAction::Allow => "allow",
        DefaultAction::Deny => "deny",
    }
}

impl fmt::Display for PolicyDiff {
    /// One line per change, prefixed `+` added, `-` removed, `~` changed; "no changes" when
    /// empty. Ends in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no changes");
        }
        if let Some((o, n)) = &self.name {
            writeln!(f, "~ metadata name: {o} -> {n}")?;
        }
        if let Some((o, n)) = self.mode {
            writeln!(f, "~ spec mode: {} -> {}", o.as_str(), n.as_str())?;
        }
        if let Some((o, n)) = self.default_action {
            writeln!(
                f,
                "~ spec defaultAction: {} -> {}",
                default_action_str(o),
                default_action_str(n)
            )?;
        }
        if let Some((o, n)) = self.on_uninspectable {
            writeln!(
                f,
                "~ spec onUninspectable: {} -> {}",
                uninspectable_str(o, "(mode default)"),
                uninspectable_str(n, "(mode default)")
            )?;
        }
        for g in &self.groups {
            match g.kind {
                ChangeKind::Added => writeln!(f, "+ group {} ({})", g.name, g.summary)?,
                ChangeKind::Removed => writeln!(f, "- group {} ({})", g.name, g.summary)?,
                ChangeKind::Changed => {
                    for c in &g.fields {
                        writeln!(f, "~ group {}: {} {} -> {}", g.name, c.field, c.old, c.new)?;
                    }
                }
            }
        }
        for r in &self.rules {
            match r.kind {
                ChangeKind::Added => writeln!(f, "+ rule {} ({})", r.id, r.summary)?,
                ChangeKind::Removed => writeln!(f, "- rule {} ({})", r.id, r.summary)?,
                ChangeKind::Changed => {
                    for c in &r.fields {
                        writeln!(f, "~ rule {}: {} {} -> {}", r.id, c.field, c.old, c.new)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_policy_str;

    fn pol(spec: &str) -> SegmentationPolicy {
        let text = format!(
            "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {{name: shop}}\nspec:\n{spec}"
        );
        match load_policy_str(&text, "t.yaml") {
            Ok(p) => p.policy,
            Err(e) => panic!("{e}"),
        }
    }

    const BASE: &str = "  mode: monitor
  groups:
    web: {selector: {app: web, tier: front}}
    db: {selector: {app: postgres}, namespaces: [shop]}
    world: {cidrs: [0.0.0.0/0]}
  rules:
    - {id: web-db, from: [web], to: [db], ports: [5432], app: postgres, action: allow}
    - id: web-api
      from: [web, world]
      to: [db]
      app: http
      http: [{methods: [GET, POST], paths: [/a]}, {methods: [PUT]}]
      action: allow
    - {id: no-flush, from: [\"*\"], to: [db], app: redis, redis: [{commands: [FLUSHALL]}], action: deny}
";

    #[test]
    fn identical_and_reordered_are_empty() {
        let a = pol(BASE);
        assert!(diff(&a, &a).is_empty());
        assert_eq!(diff(&a, &a).to_string(), "no changes\n");
        // Same meaning, written differently: rule order, list order, selector order,
        // matcher entry order, CIDR spelling, port spelling.
        let b = pol("  mode: monitor
  groups:
    db: {namespaces: [shop], selector: {app: postgres}}
    world: {cidrs: [0.0.0.0/00]}
    web: {selector: {tier: front, app: web}}
  rules:
    - {id: no-flush, from: [\"*\"], to: [db], app: redis, redis: [{commands: [FLUSHALL]}], action: deny}
    - id: web-api
      from: [world, web]
      to: [db]
      app: http
      http: [{methods: [PUT]}, {paths: [/a], methods: [POST, GET]}]
      action: allow
    - {id: web-db, from: [web], to: [db], ports: [\"5432-5432\"], app: postgres, action: allow}
");
        let d = diff(&a, &b);
        assert!(d.is_empty(), "{d}");
    }

    #[test]
    fn reports_every_kind_of_change() {
        let a = pol(BASE);
        let b = pol("  mode: protect
  defaultAction: allow
  groups:
    web: {selector: {app: web}}
    db: {selector: {app: postgres}, namespaces: [shop, dev], mode: learn}
    cache: {selector: {app: redis}}
  rules:
    - {id: web-db, from: [web], to: [db], ports: [5432, 5433], app: postgres, action: deny, capture: true, severity: critical}
    - id: web-api
      from: [web]
      to: [db, cache]
      app: http
      http: [{methods: [GET], paths: [/a]}, {methods: [PUT]}]
      action: allow
    - {id: web-cache, from: [web], to: [cache], ports: [6379], app: redis, action: allow}
");
        let d = diff(&a, &b);
        assert_eq!(d.mode, Some((Mode::Monitor, Mode::Protect)));
        assert_eq!(
            d.default_action,
            Some((DefaultAction::Deny, DefaultAction::Allow))
        );
        let text = d.to_string();
        let want = "\
~ spec mode: monitor -> protect
~ spec defaultAction: deny -> allow
~ group web: selector {app: web, tier: front} -> {app: web}
~ group db: namespaces [shop] -> [dev, shop]
~ group db: mode (policy mode) -> learn
+ group cache (selector {app: redis})
- group world (cidrs [0.0.0.0/0])
~ rule web-db: ports [5432] -> [5432-5433]
~ rule web-db: action allow -> deny
~ rule web-db: capture false -> true
~ rule web-db: severity (default) -> critical
~ rule web-api: from [web, world] -> web
~ rule web-api: to db -> [cache, db]
~ rule web-api: L7 http [{methods: [GET, POST], paths: [/a]}, {methods: [PUT]}] -> http [{methods: [GET], paths: [/a]}, {methods: [PUT]}]
+ rule web-cache (allow web -> cache :6379/tcp redis)
- rule no-flush (deny * -> db redis [{commands: [FLUSHALL]}])
";
        assert_eq!(text, want);
        let rc = d.rules.iter().find(|r| r.id == "web-db").unwrap();
        assert_eq!(rc.kind, ChangeKind::Changed);
        let fields: Vec<&str> = rc.fields.iter().map(|f| f.field).collect();
        assert_eq!(fields, ["ports", "action", "capture", "severity"]);
    }

    #[test]
    fn summary_forms() {
        let p = pol("  groups:
    a: {selector: {x: y}}
  rules:
    - {id: r1, from: [a], to: [a], ports: [53], app: udp, action: alert}
    - {id: r2, from: [a], to: [a], ports: [53], app: dns, action: allow}
    - {id: r3, from: [a], to: [a], ports: [80, 8000-8100], action: allow}
    - {id: r4, from: [a], to: [a], action: deny}
");
        let s: Vec<String> = p.spec.rules.iter().map(rule_summary).collect();
        assert_eq!(
            s,
            [
                "alert a -> a :53/udp",
                "allow a -> a :53/udp+tcp dns",
                "allow a -> a :80,8000-8100",
                "deny a -> a",
            ]
        );
        // Removing the app and the L7 matchers together is two field changes.
        let q = pol("  groups:
    a: {selector: {x: y}}
  rules:
    - {id: r1, from: [a], to: [a], ports: [53], action: alert}
    - {id: r2, from: [a], to: [a], ports: [53], app: dns, dns: [{names: [\"*.local\"]}], action: allow}
    - {id: r3, from: [a], to: [a], ports: [80, 8000-8100], action: allow}
    - {id: r4, from: [a], to: [a], action: deny}
");
        assert_eq!(
            diff(&p, &q).to_string(),
            "~ rule r1: app udp -> (any)\n~ rule r2: L7 (none) -> dns [{names: [*.local]}]\n"
        );
    }

    #[test]
    fn metadata_name() {
        let a = pol(BASE);
        let mut b = a.clone();
        b.metadata.name.value = "shop2".into();
        assert_eq!(diff(&a, &b).to_string(), "~ metadata name: shop -> shop2\n");
    }
}
