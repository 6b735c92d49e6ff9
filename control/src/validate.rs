//! Semantic checks on a parsed policy and inventory, producing the typed form that
//! [`crate::snapshot`] compiles. Every problem is collected (not just the first), each
//! with its position and a suggestion.

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;
use proto_parsers::AppProto;
use regex_automata::meta::Regex;
use serde_saphyr::Spanned;

use crate::error::{Code, Diagnostic, Origin, SourcePos, did_you_mean};
use crate::model::{
    API_VERSION, HttpMatch, KIND_INVENTORY, KIND_POLICY, L7Kind, L7Matchers, Labels, Patterns,
    Rule, SegmentationPolicy, WorkloadInventory,
};
use crate::vocab::{Action, DefaultAction, GroupId, Mode, OnUninspectable, Severity};

/// Groups per policy. `GroupId` is a `u16` and `u16::MAX` is the index key of `"*"`.
pub const MAX_GROUPS: usize = 16_384;
/// Rules per policy.
pub const MAX_RULES: usize = 200_000;
/// Workloads per inventory.
pub const MAX_WORKLOADS: usize = 1_000_000;
/// Entries in any one list (ports, CIDRs, addresses, patterns, matchers).
pub const MAX_LIST: usize = 4_096;
/// Compiled size limit of one `regex:` pattern.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// The application protocols a rule's `app` may name.
pub const RULE_APPS: [&str; 9] = [
    "http", "grpc", "postgres", "mysql", "redis", "dns", "tls", "tcp", "udp",
];

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
    fn covers(&self, other: &Peer) -> bool {
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

    fn selects_workloads(&self) -> bool {
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

struct Ctx<'a> {
    origin: &'a Origin,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn pos<T>(&self, s: &Spanned<T>) -> SourcePos {
        SourcePos::new(self.origin, s.referenced)
    }

    fn error(&mut self, code: Code, pos: SourcePos, msg: String, help: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(code, pos, msg).with_help(help));
    }

    fn warn(&mut self, code: Code, pos: SourcePos, msg: String, help: impl Into<String>) {
        self.warnings
            .push(Diagnostic::warning(code, pos, msg).with_help(help));
    }

    /// Rejects lists that are empty (they would match nothing) or over the size limit.
    fn list_ok<T>(&mut self, what: &str, list: &[T], pos: SourcePos) -> bool {
        if list.is_empty() {
            self.error(
                Code::InvalidRule,
                pos,
                format!("empty `{what}` list matches nothing"),
                format!("remove `{what}` to match any value, or list at least one"),
            );
            false
        } else if list.len() > MAX_LIST {
            self.error(
                Code::Limit,
                pos,
                format!("`{what}` has {} entries (limit {MAX_LIST})", list.len()),
                "split the rule or use wider patterns",
            );
            false
        } else {
            true
        }
    }
}

/// Validates a policy against an inventory.
pub(crate) fn validate(policy: &SegmentationPolicy, inventory: &WorkloadInventory) -> Validation {
    let mut cx = Ctx {
        origin: &policy.origin,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    header(&mut cx, &policy.api_version, &policy.kind, KIND_POLICY);
    let name = policy.metadata.name.value.clone();
    if name.trim().is_empty() {
        let pos = cx.pos(&policy.metadata.name);
        cx.error(
            Code::InvalidRule,
            pos,
            "policy name is empty".into(),
            "set `metadata.name`; it appears in every policy event",
        );
    }
    let groups = check_groups(&mut cx, policy);
    let rules = check_rules(&mut cx, policy, &groups);
    let (mut errors, mut warnings) = (cx.errors, cx.warnings);

    let mut icx = Ctx {
        origin: &inventory.origin,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    header(
        &mut icx,
        &inventory.api_version,
        &inventory.kind,
        KIND_INVENTORY,
    );
    let workloads = check_workloads(&mut icx, inventory);
    errors.extend(icx.errors);
    warnings.extend(icx.warnings);

    Validation {
        checked: Checked {
            name,
            mode: policy.spec.mode(),
            default_action: policy.spec.default_action(),
            on_uninspectable: policy.spec.on_uninspectable.as_ref().map(|u| u.value),
            groups,
            rules,
            workloads,
            policy_origin: policy.origin.clone(),
            inventory_origin: inventory.origin.clone(),
        },
        errors,
        warnings,
    }
}

/// `apiVersion` and `kind` of a value that may have been built in code rather than
/// loaded (loading checks them already).
fn header(cx: &mut Ctx<'_>, api: &Spanned<String>, kind: &Spanned<String>, want: &str) {
    if api.value != API_VERSION {
        let pos = cx.pos(api);
        cx.error(
            Code::WrongApiVersion,
            pos,
            format!("unsupported apiVersion `{}`", api.value),
            format!("use `apiVersion: {API_VERSION}`"),
        );
    }
    if kind.value != want {
        let pos = cx.pos(kind);
        cx.error(
            Code::WrongKind,
            pos,
            format!("expected kind `{want}`, found `{}`", kind.value),
            format!("use `kind: {want}`"),
        );
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

fn sorted_labels(l: &Labels) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = l.iter().map(|(k, v)| (k.0.clone(), v.0.clone())).collect();
    v.sort();
    v
}

/// Parses `10.0.0.0/8`, `fd00::/64`, or a bare address as a host prefix. Warns when host
/// bits are set (`10.0.1.5/24` means `10.0.1.0/24`, which is rarely what was meant).
fn parse_cidr(cx: &mut Ctx<'_>, s: &Spanned<String>, whose: &str) -> Option<IpNet> {
    let text = s.value.trim();
    let pos = cx.pos(s);
    if let Ok(net) = text.parse::<IpNet>() {
        let trunc = net.trunc();
        if trunc != net {
            cx.warn(
                Code::HostBitsSet,
                pos,
                format!("CIDR `{text}` of {whose} has host bits set; it means `{trunc}`"),
                format!("write `{trunc}`, or the address alone for a single host"),
            );
        }
        return Some(trunc);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(IpNet::from(ip.to_canonical()));
    }
    cx.error(
        Code::InvalidAddress,
        pos,
        format!("invalid CIDR `{text}` in {whose}"),
        "write an address prefix such as `10.0.0.0/8` or `fd00::/64` (quote IPv6 in flow lists)",
    );
    None
}

fn check_groups(cx: &mut Ctx<'_>, policy: &SegmentationPolicy) -> Vec<CheckedGroup> {
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

fn check_rules(
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

fn l7_kind_for_app(app: &str) -> Option<L7Kind> {
    Some(match app {
        "http" => L7Kind::Http,
        "grpc" => L7Kind::Grpc,
        "postgres" | "mysql" => L7Kind::Sql,
        "redis" => L7Kind::Redis,
        "dns" => L7Kind::Dns,
        "tls" => L7Kind::Tls,
        _ => return None,
    })
}

fn check_l7(cx: &mut Ctx<'_>, rule: &Rule, app: Option<AppProto>) {
    let lists = rule.l7_lists();
    let rid = rule.id.value.as_str();
    if let [(a, _, _), (b, loc, _), ..] = lists.as_slice() {
        cx.error(
            Code::L7Mismatch,
            SourcePos::new(cx.origin, *loc),
            format!(
                "rule `{rid}` has both `{}` and `{}` matchers",
                a.as_str(),
                b.as_str()
            ),
            "a rule judges one protocol; split it into one rule per protocol",
        );
        return;
    }
    let Some(&(kind, loc, n)) = lists.first() else {
        return;
    };
    let pos = SourcePos::new(cx.origin, loc);
    let app_name = rule.app.as_ref().map(|a| a.value.as_str());
    match app_name {
        None => {
            let want = kind.apps().join("` or `app: ");
            cx.error(
                Code::L7Mismatch,
                pos.clone(),
                format!(
                    "`{}` matchers in rule `{rid}`, which has no `app`",
                    kind.as_str()
                ),
                format!("add `app: {want}` so the matchers know what they judge"),
            );
        }
        // An unknown app was reported already.
        Some(_) if app.is_none() => {}
        Some(a) if !kind.apps().contains(&a) => {
            let help = match l7_kind_for_app(a) {
                Some(k) => format!(
                    "`{}` judges app {}; for `app: {a}` use `{}:`",
                    kind.as_str(),
                    kind.apps().join(" or "),
                    k.as_str()
                ),
                None => format!(
                    "`{}` judges app {}; `app: {a}` has no L7 matchers",
                    kind.as_str(),
                    kind.apps().join(" or ")
                ),
            };
            cx.error(
                Code::L7Mismatch,
                pos.clone(),
                format!(
                    "`{}` matchers do not fit `app: {a}` in rule `{rid}`",
                    kind.as_str()
                ),
                help,
            );
        }
        Some(_) => {}
    }
    if n == 0 {
        cx.error(
            Code::InvalidRule,
            pos,
            format!(
                "empty `{}` list in rule `{rid}` matches nothing",
                kind.as_str()
            ),
            format!(
                "remove `{}` to judge only at L4, or list at least one matcher",
                kind.as_str()
            ),
        );
        return;
    }
    if n > MAX_LIST {
        cx.error(
            Code::Limit,
            pos,
            format!("`{}` has {n} matchers (limit {MAX_LIST})", kind.as_str()),
            "split the rule",
        );
        return;
    }
    if let Some(list) = &rule.http {
        for m in &list.value {
            check_http(cx, m);
        }
    }
    if let Some(list) = &rule.grpc {
        for m in &list.value {
            if let Some(s) = &m.service {
                nonempty_text(cx, "service", s);
            }
            patterns(cx, "methods", &m.methods, nonempty_text);
        }
    }
    if let Some(list) = &rule.sql {
        for m in &list.value {
            patterns(cx, "verbs", &m.verbs, word);
            patterns(cx, "tables", &m.tables, nonempty_text);
            patterns(cx, "databases", &m.databases, nonempty_text);
            patterns(cx, "users", &m.users, nonempty_text);
        }
    }
    if let Some(list) = &rule.redis {
        for m in &list.value {
            patterns(cx, "commands", &m.commands, word);
            patterns(cx, "keys", &m.keys, nonempty_text);
        }
    }
    if let Some(list) = &rule.dns {
        for m in &list.value {
            patterns(cx, "names", &m.names, nonempty_text);
        }
    }
    if let Some(list) = &rule.tls {
        for m in &list.value {
            patterns(cx, "sni", &m.sni, nonempty_text);
            patterns(cx, "alpn", &m.alpn, nonempty_text);
        }
    }
}

/// Checks a matcher list field: not empty, within limits, each entry well formed.
fn patterns(
    cx: &mut Ctx<'_>,
    field: &str,
    list: &Patterns,
    check: fn(&mut Ctx<'_>, &str, &Spanned<String>),
) {
    let Some(list) = list else {
        return;
    };
    let pos = cx.pos(list);
    if !cx.list_ok(field, &list.value, pos) {
        return;
    }
    for item in &list.value {
        check(cx, field, item);
    }
}

fn nonempty_text(cx: &mut Ctx<'_>, field: &str, s: &Spanned<String>) {
    if s.value.trim().is_empty() || s.value.chars().any(char::is_whitespace) {
        let pos = cx.pos(s);
        cx.error(
            Code::InvalidPattern,
            pos,
            format!(
                "`{field}` entry `{}` is empty or contains whitespace",
                s.value
            ),
            "write the name without spaces; globs use `*`",
        );
    }
}

fn word(cx: &mut Ctx<'_>, field: &str, s: &Spanned<String>) {
    if s.value.is_empty()
        || !s
            .value
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_')
    {
        let pos = cx.pos(s);
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("`{field}` entry `{}` is not a keyword", s.value),
            format!("`{field}` lists keywords such as `SELECT` or `GET`"),
        );
    }
}

const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_http(cx: &mut Ctx<'_>, m: &HttpMatch) {
    patterns(cx, "methods", &m.methods, |cx, _, s| {
        let v = s.value.as_str();
        let pos = cx.pos(s);
        if v.is_empty() || !v.bytes().all(is_tchar) {
            cx.error(
                Code::InvalidPattern,
                pos,
                format!("`{v}` is not an HTTP method"),
                "methods are tokens such as `GET` or `POST`",
            );
        } else if v != v.to_ascii_uppercase()
            && KNOWN_METHODS.contains(&v.to_ascii_uppercase().as_str())
        {
            cx.error(
                Code::InvalidPattern,
                pos,
                format!("HTTP method `{v}` is lower-case and will never match"),
                format!(
                    "methods are case-sensitive: write `{}`",
                    v.to_ascii_uppercase()
                ),
            );
        }
    });
    patterns(cx, "paths", &m.paths, |cx, _, s| check_path(cx, s));
    patterns(cx, "hosts", &m.hosts, nonempty_text);
    if let Some(h) = &m.headers {
        for (k, _) in h.value.iter() {
            if k.0.is_empty() || !k.0.bytes().all(is_tchar) {
                let pos = cx.pos(h);
                cx.error(
                    Code::InvalidPattern,
                    pos,
                    format!("`{}` is not an HTTP header name", k.0),
                    "header names are tokens such as `content-type`",
                );
            }
        }
    }
}

fn check_path(cx: &mut Ctx<'_>, s: &Spanned<String>) {
    let p = s.value.as_str();
    let pos = cx.pos(s);
    if let Some(re) = p.strip_prefix("regex:") {
        if let Err(msg) = compile_regex(re) {
            cx.error(
                Code::InvalidRegex,
                pos,
                format!("invalid regex in path pattern `{p}`: {msg}"),
                "the text after `regex:` is a regular expression (Rust syntax); escape special characters with `\\`",
            );
        }
        return;
    }
    if !p.starts_with('/') {
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("path pattern `{p}` does not start with `/`"),
            "paths are matched from the root, e.g. `/api/*`; use `regex:` for other forms",
        );
        return;
    }
    if p.contains('?') || p.contains('#') {
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("path pattern `{p}` contains a query or fragment"),
            "paths are matched without their query; remove everything from `?`",
        );
        return;
    }
    if p.split('/').any(|seg| seg.contains('*') && seg != "*") {
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("`*` in path pattern `{p}` is not a whole segment"),
            "`*` stands for exactly one segment (`/users/*/orders`) or, at the end, everything beneath (`/api/*`); use `regex:` for partial segments",
        );
    }
}

/// Compiles a pattern to check it; returns the parser's one-line reason on failure.
pub(crate) fn compile_regex(re: &str) -> Result<(), String> {
    let built = Regex::builder()
        .configure(Regex::config().nfa_size_limit(Some(MAX_REGEX_BYTES)))
        .build(re);
    match built {
        Ok(_) => Ok(()),
        Err(e) => {
            if let Some(limit) = e.size_limit() {
                return Err(format!("compiled size exceeds {limit} bytes"));
            }
            let full = e
                .syntax_error()
                .map_or_else(|| e.to_string(), ToString::to_string);
            // regex-syntax renders a caret diagram; keep only its `error: ...` line.
            Err(full
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .map_or_else(|| full.replace('\n', " "), str::to_owned))
        }
    }
}

fn check_workloads(cx: &mut Ctx<'_>, inv: &WorkloadInventory) -> Vec<CheckedWorkload> {
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

    #[test]
    fn regex_errors_are_one_line() {
        assert!(compile_regex("^/api/v[0-9]+/.*$").is_ok());
        let e = compile_regex("/api/(unclosed").unwrap_err();
        assert_eq!(e, "unclosed group");
        assert!(!e.contains('\n'));
    }

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
