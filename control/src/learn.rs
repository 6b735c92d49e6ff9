//! Policy learning (`palisade learn`): from what was observed on the wire, propose the
//! allow rules that admit exactly that, per pair of groups, port and application, with
//! the L7 constraints each transaction showed (HTTP methods and paths, gRPC methods, SQL
//! verbs and tables, Redis commands, DNS names, TLS server names).
//!
//! Groups come from the inventory: one per (namespace, `app` label), or per workload when
//! it has no `app` label; peers outside the inventory are gathered in one `unknown` group
//! by address. The data plane replays the captures under [`learning_policy`] (mode
//! `learn`: everything allowed, every transaction logged), turns its events into
//! [`Observation`]s and hands them to a [`Learner`]; [`Learner::to_yaml`] writes the
//! proposal, which the caller compiles before saving so a proposal always loads.
//!
//! What a proposal promises: **switched to `mode: protect` (with `defaultAction: deny`),
//! it admits every flow and transaction it was learned from, except those it holds for
//! review.** Generalisation and every cap only ever widen a pattern to one that still
//! matches what it stood for, and [`Learner::to_yaml`] checks each pattern against an
//! observed value it stands for (with the matching code of a compiled policy), adding the
//! exact value when one does not match.
//!
//! Generalisation (see `generalise`): an HTTP path segment that is an identifier (all
//! digits, a UUID, 16 or more hex digits) becomes `*`; identifiers inside a segment
//! (`app.38674.js`, `logo-3f2a9c1b7d.png`, `u_12345`, an embedded UUID) become a
//! character class of a `regex:` pattern. Names stay as they are.
//!
//! Caps, for a long-running learner as for a big capture: each growing collection has
//! one, and a cap reached widens rather than drops, counted in [`LearnStats::capped`]:
//! paths per method ([`MAX_PATHS`]: folded to their first segment, then to `/*`), DNS and
//! TLS names ([`MAX_NAMES`]: `*.<parent>`, then `*.<domain>`, then `*`), HTTP methods,
//! gRPC services and methods, SQL verbs, tables, users and databases, Redis commands
//! ([`MAX_VALUES`]: the field is left out, so any value passes), ports per pair of groups
//! and app ([`MAX_PORTS`]: a port range covering them), addresses outside the inventory
//! ([`MAX_UNKNOWN`]: covering prefixes), review entries ([`MAX_REVIEW`]: counted only).
//!
//! Probing (see `probe`: `/.env`, `/wp-login.php`, path traversal, scanner user agents,
//! `information_schema`, Redis `CONFIG`/`FLUSHALL`/`SLAVEOF`...), and whatever the caller
//! holds with [`Learner::hold`] (a deny rule of an existing policy), is not learned: it is
//! written as a `# review:` comment and no emitted rule allows it. Lists are sorted, so the
//! same traffic gives the same file.

mod generalise;
mod probe;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

use crate::model::WorkloadInventory;

pub use generalise::generalise_path;
use generalise::{NameSet, PathSet, literal_path};
pub use probe::probe_reason;

/// Patterns kept per HTTP method of one rule before they are folded to their first
/// segment (and, past it again, to `/*`).
pub const MAX_PATHS: usize = 64;
/// DNS names (or TLS server names) kept per rule before they become parent globs.
pub const MAX_NAMES: usize = 64;
/// Values kept per field of one rule (HTTP methods, gRPC services and methods per
/// service, SQL verbs, tables, users, databases, Redis commands) before the field is left
/// out of the rule, which then admits any value of it.
pub const MAX_VALUES: usize = 256;
/// Ports kept per (from, to, app) before the rest share one rule with a port range.
pub const MAX_PORTS: usize = 64;
/// Addresses outside the inventory kept before they are widened to prefixes.
pub const MAX_UNKNOWN: usize = 256;
/// Distinct transactions held for review that are written out; the rest are counted.
pub const MAX_REVIEW: usize = 256;

/// One end of an observed flow: the learning policy's group, or an address outside the
/// inventory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Group(String),
    Addr(IpAddr),
}

/// What one transaction (or a flow without any) showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// A flow with no transaction of a known protocol (an L4 rule).
    None,
    /// `path` normalised, without its query.
    Http {
        method: String,
        path: String,
        /// For the probing check only; never part of a rule.
        user_agent: Option<String>,
    },
    Grpc {
        service: String,
        method: String,
    },
    Sql {
        verb: String,
        tables: Vec<String>,
        user: Option<String>,
        database: Option<String>,
    },
    Redis {
        command: String,
    },
    Dns {
        name: String,
    },
    Tls {
        sni: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub from: Peer,
    pub to: Peer,
    pub port: u16,
    /// The rule's `app`: a protocol name, or `tcp` / `udp` for flows nothing recognised.
    pub app: String,
    pub detail: Detail,
}

/// A set of values for one field of a rule; `open` once a cap (or a value the policy
/// language cannot list) means the field must be left out.
#[derive(Default)]
struct Values {
    items: BTreeSet<String>,
    open: bool,
}

impl Values {
    /// Returns true when this insert opened the field.
    fn insert(&mut self, v: String, listable: bool) -> bool {
        if self.open || self.items.contains(&v) {
            return false;
        }
        if !listable || self.items.len() >= MAX_VALUES {
            self.open = true;
            self.items.clear();
            return true;
        }
        self.items.insert(v);
        false
    }
}

/// What one proposed rule has seen.
#[derive(Default)]
struct Seen {
    /// Per HTTP method; `None` gathers methods past the cap (or that cannot be listed):
    /// their clause lists no methods.
    http: BTreeMap<Option<String>, PathSet>,
    grpc: BTreeMap<String, Values>,
    /// Services past the cap: the rule keeps no gRPC matcher.
    grpc_open: bool,
    sql_verbs: Values,
    sql_tables: Values,
    sql_users: Values,
    sql_dbs: Values,
    redis: Values,
    dns: NameSet,
    /// A name that cannot be listed was seen (the root, a name with spaces).
    dns_open: bool,
    sni: NameSet,
    tls_no_sni: bool,
    /// Transactions (or flows, for L4 rules) behind the rule.
    count: u64,
}

/// Rules of one (from, to, app): one per port, and past [`MAX_PORTS`] one for a range.
#[derive(Default)]
struct PortRules {
    ports: BTreeMap<u16, Seen>,
    wide: Option<(u16, u16, Seen)>,
}

/// What the learner did besides proposing rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LearnStats {
    /// Observations (transactions or flows) learned into rules.
    pub learned: u64,
    /// Transactions or flows held for review: not allowed by the proposal.
    pub held: u64,
    /// Per cap (`paths`, `names`, `methods`, `values`, `ports`, `unknown`, `review`), how
    /// many times reaching it widened a pattern or dropped a review line.
    pub capped: BTreeMap<&'static str, u64>,
    /// Patterns the coverage check found not to match a value they stood for (fixed by
    /// adding the value itself; a bug if ever non-zero).
    pub fallbacks: u64,
}

/// A transaction held for review.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ReviewKey {
    from: String,
    to: String,
    app: String,
    port: u16,
    what: String,
}

/// Aggregates observations into proposed rules.
pub struct Learner {
    groups: Vec<LearnGroup>,
    rules: BTreeMap<(String, String, String), PortRules>,
    unknown: Unknown,
    review: BTreeMap<ReviewKey, (String, u64)>,
    stats: LearnStats,
    /// Coverage fallbacks of the last `to_yaml`.
    fallbacks: std::cell::Cell<u64>,
}

/// Addresses outside the inventory, as prefixes: host routes until [`MAX_UNKNOWN`], then
/// ever shorter prefixes that cover them.
#[derive(Default)]
struct Unknown {
    /// Index into [`PREFIXES`].
    level: usize,
    nets: BTreeSet<IpAddr>,
}

/// (IPv4, IPv6) prefix lengths, from host routes to everything.
const PREFIXES: [(u8, u8); 5] = [(32, 128), (24, 64), (16, 48), (8, 32), (0, 0)];

fn mask(a: IpAddr, level: usize) -> IpAddr {
    let (v4, v6) = PREFIXES.get(level).copied().unwrap_or((0, 0));
    match a {
        IpAddr::V4(x) => {
            let m = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            IpAddr::V4((u32::from(x) & m).into())
        }
        IpAddr::V6(x) => {
            let m = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            IpAddr::V6((u128::from(x) & m).into())
        }
    }
}

impl Unknown {
    /// True when a cap widened the prefixes.
    fn insert(&mut self, a: IpAddr) -> bool {
        self.nets.insert(mask(a, self.level));
        let mut widened = false;
        while self.nets.len() > MAX_UNKNOWN && self.level + 1 < PREFIXES.len() {
            self.level += 1;
            widened = true;
            let level = self.level;
            self.nets = self.nets.iter().map(|n| mask(*n, level)).collect();
        }
        widened
    }

    fn cidrs(&self) -> Vec<String> {
        let (v4, v6) = PREFIXES.get(self.level).copied().unwrap_or((0, 0));
        self.nets
            .iter()
            .map(|a| match a {
                IpAddr::V4(_) => format!("{a}/{v4}"),
                IpAddr::V6(_) => format!("{a}/{v6}"),
            })
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// A group of the learning policy (and of the proposal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnGroup {
    pub name: String,
    /// `app` label value, or `None` for a workload without one (selected by its address).
    pub app: Option<String>,
    pub namespace: Option<String>,
    /// Addresses of a workload without an `app` label.
    pub addrs: Vec<String>,
}

/// Keeps letters, digits, `-`, `_`, `.`; anything else becomes `-`.
fn group_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The groups for an inventory: one per (namespace, `app` label); a workload without an
/// `app` label is a group of its own. Names are the `app` value, prefixed with the
/// namespace when the same value is used in several namespaces.
pub fn groups(inv: &WorkloadInventory) -> Vec<LearnGroup> {
    let mut by_app: BTreeMap<(Option<String>, String), ()> = BTreeMap::new();
    let mut out = Vec::new();
    let mut loose = Vec::new();
    for w in &inv.workloads {
        let ns = w.namespace.as_ref().map(|n| n.value.clone());
        let app = w
            .labels
            .0
            .iter()
            .find(|(k, _)| k.0 == "app")
            .map(|(_, v)| v.0.clone());
        match app {
            Some(a) => {
                by_app.insert((ns, a), ());
            }
            None => loose.push(LearnGroup {
                name: group_safe(&w.name.value),
                app: None,
                namespace: ns,
                addrs: w
                    .ips
                    .iter()
                    .chain(w.cidrs.iter())
                    .map(|s| s.value.clone())
                    .collect(),
            }),
        }
    }
    let mut per_app: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, a) in by_app.keys() {
        *per_app.entry(a.as_str()).or_default() += 1;
    }
    for (ns, a) in by_app.keys() {
        let name = match (per_app.get(a.as_str()), ns) {
            (Some(n), Some(ns)) if *n > 1 => group_safe(&format!("{ns}-{a}")),
            _ => group_safe(a),
        };
        out.push(LearnGroup {
            name,
            app: Some(a.clone()),
            namespace: ns.clone(),
            addrs: Vec::new(),
        });
    }
    out.extend(loose);
    // Names stay unique whatever the labels were.
    let mut taken = BTreeSet::new();
    for g in &mut out {
        let base = g.name.clone();
        let mut n = 2;
        while !taken.insert(g.name.clone()) {
            g.name = format!("{base}-{n}");
            n += 1;
        }
    }
    out
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

fn write_groups(o: &mut String, groups: &[LearnGroup], unknown: &Unknown) {
    if groups.is_empty() && unknown.is_empty() {
        o.push_str("  groups: {}\n");
        return;
    }
    o.push_str("  groups:\n");
    for g in groups {
        let _ = write!(o, "    {}: {{", q(&g.name));
        match &g.app {
            Some(a) => {
                let _ = write!(o, "selector: {{app: {}}}", q(a));
                if let Some(ns) = &g.namespace {
                    let _ = write!(o, ", namespaces: [{}]", q(ns));
                }
            }
            None => {
                let _ = write!(o, "cidrs: {}", list(&g.addrs));
            }
        }
        o.push_str("}\n");
    }
    if !unknown.is_empty() {
        let cidrs = unknown.cidrs();
        let _ = writeln!(o, "    {}: {{cidrs: {}}}", q(UNKNOWN), list(&cidrs));
    }
}

/// The group of peers outside the inventory.
pub const UNKNOWN: &str = "unknown";

/// The policy `palisade learn` replays under: the inventory's groups, no rules, mode
/// `learn` (every flow and transaction allowed and logged).
pub fn learning_policy(inv: &WorkloadInventory) -> String {
    let mut o = String::from(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: learning}\n\
         spec:\n  mode: learn\n  defaultAction: allow\n",
    );
    write_groups(&mut o, &groups(inv), &Unknown::default());
    o.push_str("  rules: []\n");
    o
}

/// Whether `s` can be listed as a name (DNS, SNI, service, table, user...): not empty, no
/// whitespace (the policy language refuses those).
fn listable_text(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(char::is_whitespace)
}

/// Whether `s` can be listed as a keyword (SQL verb, Redis command).
fn listable_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
}

/// Whether `m` can be listed as an HTTP method: a token, and not a lower-case standard
/// method (which validation refuses as a likely typo).
fn listable_method(m: &str) -> bool {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && (m == m.to_ascii_uppercase() || !KNOWN.contains(&m.to_ascii_uppercase().as_str()))
}

/// One line of a YAML comment: control characters shown as `?`, at most 200 characters.
fn comment_safe(s: &str) -> String {
    let mut o: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    if s.chars().count() > 200 {
        o.push_str("...");
    }
    o
}

fn describe(d: &Detail) -> String {
    match d {
        Detail::None => "a flow".into(),
        Detail::Http { method, path, .. } => format!("{method} {path}"),
        Detail::Grpc { service, method } => format!("/{service}/{method}"),
        Detail::Sql { verb, tables, .. } => {
            if tables.is_empty() {
                verb.clone()
            } else {
                format!("{verb} {}", tables.join(","))
            }
        }
        Detail::Redis { command } => command.to_ascii_uppercase(),
        Detail::Dns { name } => name.clone(),
        Detail::Tls { sni } => sni.clone().unwrap_or_else(|| "(no server name)".into()),
    }
}

fn peer_text(p: &Peer) -> String {
    match p {
        Peer::Group(g) => g.clone(),
        Peer::Addr(a) => a.to_string(),
    }
}

impl Learner {
    pub fn new(inv: &WorkloadInventory) -> Self {
        Learner {
            groups: groups(inv),
            rules: BTreeMap::new(),
            unknown: Unknown::default(),
            review: BTreeMap::new(),
            stats: LearnStats::default(),
            fallbacks: std::cell::Cell::new(0),
        }
    }

    fn cap(&mut self, which: &'static str) {
        *self.stats.capped.entry(which).or_default() += 1;
    }

    /// Learns `o` into the proposal, or holds it for review when it looks like probing
    /// ([`probe_reason`]). Returns whether it was learned.
    pub fn observe(&mut self, o: Observation) -> bool {
        if let Some(why) = probe_reason(&o.detail) {
            self.hold(&o, &format!("probing? {why}"));
            return false;
        }
        self.learn(o);
        true
    }

    /// Holds `o` for review: written as a comment, allowed by no rule. `why` says why
    /// (`probing? ...`, `denied by rule ...`).
    pub fn hold(&mut self, o: &Observation, why: &str) {
        self.stats.held += 1;
        let key = ReviewKey {
            from: peer_text(&o.from),
            to: peer_text(&o.to),
            app: o.app.clone(),
            port: o.port,
            what: describe(&o.detail),
        };
        if let Some(e) = self.review.get_mut(&key) {
            e.1 += 1;
            return;
        }
        if self.review.len() >= MAX_REVIEW {
            self.cap("review");
            return;
        }
        self.review.insert(key, (why.to_string(), 1));
    }

    fn learn(&mut self, o: Observation) {
        for p in [&o.from, &o.to] {
            if let Peer::Addr(a) = p
                && self.unknown.insert(*a)
            {
                self.cap("unknown");
            }
        }
        self.stats.learned += 1;
        let key = (
            Self::peer_name(&o.from).to_string(),
            Self::peer_name(&o.to).to_string(),
            o.app,
        );
        let pr = self.rules.entry(key).or_default();
        let port = o.port;
        let mut capped: Vec<&'static str> = Vec::new();
        let s = if pr.ports.contains_key(&port) || pr.ports.len() < MAX_PORTS {
            pr.ports.entry(port).or_default()
        } else {
            let w = pr.wide.get_or_insert_with(|| (port, port, Seen::default()));
            if port < w.0 || port > w.1 || w.2.count == 0 {
                capped.push("ports");
            }
            w.0 = w.0.min(port);
            w.1 = w.1.max(port);
            &mut w.2
        };
        s.count += 1;
        match o.detail {
            Detail::None => {}
            Detail::Http { method, path, .. } => {
                let named = s.http.keys().filter(|k| k.is_some()).count();
                let key = if !listable_method(&method) {
                    None
                } else if s.http.contains_key(&Some(method.clone())) || named < MAX_VALUES {
                    Some(method)
                } else {
                    capped.push("methods");
                    None
                };
                if s.http.entry(key).or_default().insert(&path, MAX_PATHS) {
                    capped.push("paths");
                }
            }
            Detail::Grpc { service, method } => {
                if !s.grpc_open {
                    if !listable_text(&service)
                        || (!s.grpc.contains_key(&service) && s.grpc.len() >= MAX_VALUES)
                    {
                        s.grpc_open = true;
                        s.grpc.clear();
                        capped.push("values");
                    } else {
                        let ok = listable_text(&method);
                        if s.grpc.entry(service).or_default().insert(method, ok) {
                            capped.push("values");
                        }
                    }
                }
            }
            Detail::Sql {
                verb,
                tables,
                user,
                database,
            } => {
                // A login is allowed by the clause's users and databases, not by a verb;
                // a statement without a verb only by a clause without verbs.
                if verb != "LOGIN" {
                    let ok = listable_word(&verb);
                    if s.sql_verbs.insert(verb.to_ascii_uppercase(), ok) {
                        capped.push("values");
                    }
                }
                for t in tables {
                    let ok = listable_text(&t);
                    if s.sql_tables.insert(t, ok) {
                        capped.push("values");
                    }
                }
                // A request whose login was not seen matches no clause listing users.
                for (vals, v) in [(&mut s.sql_users, user), (&mut s.sql_dbs, database)] {
                    let ok = v.as_deref().is_some_and(listable_text);
                    if vals.insert(v.unwrap_or_default(), ok) && ok {
                        capped.push("values");
                    }
                }
            }
            Detail::Redis { command } => {
                let ok = listable_word(&command);
                if s.redis.insert(command.to_ascii_uppercase(), ok) {
                    capped.push("values");
                }
            }
            Detail::Dns { name } => {
                let n = name.trim_end_matches('.').to_ascii_lowercase();
                if !listable_text(&n) {
                    s.dns_open = true;
                } else if s.dns.insert(&n, MAX_NAMES) {
                    capped.push("names");
                }
            }
            Detail::Tls { sni } => {
                match sni.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) {
                    Some(n) if listable_text(&n) => {
                        if s.sni.insert(&n, MAX_NAMES) {
                            capped.push("names");
                        }
                    }
                    _ => s.tls_no_sni = true,
                }
            }
        }
        for c in capped {
            self.cap(c);
        }
    }

    /// Rules proposed so far.
    pub fn rule_count(&self) -> usize {
        self.rules
            .values()
            .map(|p| p.ports.len() + usize::from(p.wide.is_some()))
            .sum()
    }

    /// What the learner did: learned, held, caps reached, coverage fallbacks (those of the
    /// last [`Learner::to_yaml`]).
    pub fn stats(&self) -> LearnStats {
        LearnStats {
            fallbacks: self.fallbacks.get(),
            ..self.stats.clone()
        }
    }

    fn peer_name(p: &Peer) -> &str {
        match p {
            Peer::Group(g) => g,
            Peer::Addr(_) => UNKNOWN,
        }
    }

    /// The proposal as a policy file: the transactions held for review as comments, the
    /// groups, then one allow rule per (from, to, app, port), in monitor mode so it can be
    /// reviewed against traffic before `protect`.
    pub fn to_yaml(&self, name: &str, header: &str) -> String {
        self.fallbacks.set(0);
        let mut o = String::new();
        for line in header.lines() {
            let _ = writeln!(o, "# {line}");
        }
        if !self.review.is_empty() || self.stats.held > 0 {
            let _ = writeln!(
                o,
                "#\n# Held for review, not allowed by this proposal ({} transactions or flows):",
                self.stats.held
            );
            for (k, (why, n)) in &self.review {
                let times = if *n == 1 {
                    "once".to_string()
                } else {
                    format!("{n} times")
                };
                let _ = writeln!(
                    o,
                    "# review: {} {} from {} to {}:{} ({times}) - not allowed by this proposal",
                    comment_safe(why),
                    comment_safe(&format!("{} {}", k.app, k.what)),
                    comment_safe(&k.from),
                    comment_safe(&k.to),
                    k.port,
                );
            }
            if let Some(n) = self.stats.capped.get("review") {
                let _ = writeln!(o, "# review: ... and {n} more not listed");
            }
        }
        let _ = write!(
            o,
            "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {{name: {}}}\n\
             spec:\n  mode: monitor   # review, then switch to protect\n  defaultAction: deny\n",
            q(name)
        );
        write_groups(&mut o, &self.groups, &self.unknown);
        if self.rules.is_empty() {
            o.push_str("  rules: []\n");
            return o;
        }
        o.push_str("  rules:\n");
        let mut ids = BTreeSet::new();
        for ((from, to, app), pr) in &self.rules {
            let ranges = pr
                .ports
                .iter()
                .map(|(p, s)| (p.to_string(), p.to_string(), s))
                .chain(pr.wide.iter().map(|(lo, hi, s)| {
                    let r = if lo == hi {
                        lo.to_string()
                    } else {
                        format!("\"{lo}-{hi}\"")
                    };
                    (format!("{lo}-{hi}"), r, s)
                }));
            for (id_port, ports, seen) in ranges {
                let base = group_safe(&format!("{from}-{to}-{app}-{id_port}"));
                let mut id = base.clone();
                let mut n = 2;
                while !ids.insert(id.clone()) {
                    id = format!("{base}-{n}");
                    n += 1;
                }
                let unit = if matches!(app.as_str(), "tcp" | "udp") {
                    "flows"
                } else {
                    "transactions"
                };
                let _ = writeln!(o, "    # {} {unit} observed", seen.count);
                let _ = writeln!(o, "    - id: {}", q(&id));
                let _ = writeln!(o, "      from: [{}]", q(from));
                let _ = writeln!(o, "      to: [{}]", q(to));
                let _ = writeln!(o, "      ports: [{ports}]");
                let _ = writeln!(o, "      app: {}", q(app));
                self.write_l7(&mut o, app, seen);
                o.push_str("      action: allow\n");
            }
        }
        o
    }

    /// The path patterns of `set`, each checked to match the observed path it stands for;
    /// where one does not, the path itself is added.
    fn checked_paths(&self, set: &PathSet) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (pat, ex) in set.iter() {
            if !crate::l7::path_pattern_matches(pat, ex) {
                self.fallbacks.set(self.fallbacks.get() + 1);
                let lit = literal_path(ex);
                if crate::l7::path_pattern_matches(&lit, ex) {
                    out.insert(lit);
                } else {
                    let mut re = String::from("regex:");
                    generalise::regex_literal(ex, &mut re);
                    out.insert(re);
                }
            }
            out.insert(pat.clone());
        }
        out
    }

    fn checked_names(&self, set: &NameSet) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (pat, ex) in set.iter() {
            if !crate::l7::name_pattern_matches(pat, ex) {
                self.fallbacks.set(self.fallbacks.get() + 1);
                out.insert(ex.clone());
            }
            out.insert(pat.clone());
        }
        out
    }

    fn write_l7(&self, o: &mut String, app: &str, s: &Seen) {
        match app {
            "http" => {
                if s.http.is_empty() {
                    return;
                }
                o.push_str("      http:\n");
                for (m, set) in &s.http {
                    if set.len() == 0 {
                        continue;
                    }
                    let paths = self.checked_paths(set);
                    match m {
                        Some(m) => {
                            let _ = writeln!(
                                o,
                                "        - {{methods: [{}], paths: {}}}",
                                q(m),
                                list(&paths)
                            );
                        }
                        None => {
                            let _ = writeln!(o, "        - {{paths: {}}}", list(&paths));
                        }
                    }
                }
            }
            "grpc" => {
                if s.grpc_open || s.grpc.is_empty() {
                    return;
                }
                o.push_str("      grpc:\n");
                for (svc, ms) in &s.grpc {
                    if ms.open || ms.items.is_empty() {
                        let _ = writeln!(o, "        - {{service: {}}}", q(svc));
                    } else {
                        let _ = writeln!(
                            o,
                            "        - {{service: {}, methods: {}}}",
                            q(svc),
                            list(&ms.items)
                        );
                    }
                }
            }
            "postgres" | "mysql" => {
                let mut parts = Vec::new();
                for (field, v) in [
                    ("verbs", &s.sql_verbs),
                    ("tables", &s.sql_tables),
                    ("users", &s.sql_users),
                    ("databases", &s.sql_dbs),
                ] {
                    if !v.open && !v.items.is_empty() {
                        parts.push(format!("{field}: {}", list(&v.items)));
                    }
                }
                if !parts.is_empty() {
                    let _ = writeln!(o, "      sql:\n        - {{{}}}", parts.join(", "));
                }
            }
            "redis" if !s.redis.open && !s.redis.items.is_empty() => {
                let _ = writeln!(
                    o,
                    "      redis:\n        - {{commands: {}}}",
                    list(&s.redis.items)
                );
            }
            "dns" if !s.dns_open && !s.dns.is_empty() => {
                let _ = writeln!(
                    o,
                    "      dns:\n        - {{names: {}}}",
                    list(&self.checked_names(&s.dns))
                );
            }
            // A ClientHello without SNI matches no clause listing `sni`.
            "tls" if !s.tls_no_sni && !s.sni.is_empty() => {
                let _ = writeln!(
                    o,
                    "      tls:\n        - {{sni: {}}}",
                    list(&self.checked_names(&s.sni))
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
