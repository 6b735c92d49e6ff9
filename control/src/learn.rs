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
//! Generalisation is deliberately small and predictable: an HTTP path segment that looks
//! like an identifier (all digits, a UUID, 16 or more hex digits) becomes `*`; when one
//! method of one rule has seen more than [`MAX_PATHS`] paths they are cut to their first
//! segment (`/api/*`); more than [`MAX_NAMES`] DNS names or server names become
//! `*.<parent>` globs. Lists are sorted, so the same traffic gives the same file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

use crate::model::WorkloadInventory;

/// Paths kept per method of one rule before they are cut to their first segment.
pub const MAX_PATHS: usize = 64;
/// DNS names (or TLS server names) kept per rule before they become parent globs.
pub const MAX_NAMES: usize = 64;

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

/// What one proposed rule has seen.
#[derive(Default)]
struct Seen {
    http: BTreeMap<String, BTreeSet<String>>,
    grpc: BTreeMap<String, BTreeSet<String>>,
    sql_verbs: BTreeSet<String>,
    sql_tables: BTreeSet<String>,
    sql_users: BTreeSet<String>,
    sql_dbs: BTreeSet<String>,
    /// Some statement or login came without a user (or a database): listing them would
    /// refuse it.
    sql_no_user: bool,
    sql_no_db: bool,
    redis: BTreeSet<String>,
    dns: BTreeSet<String>,
    sni: BTreeSet<String>,
    tls_no_sni: bool,
    /// Transactions (or flows, for L4 rules) behind the rule.
    count: u64,
}

/// Aggregates observations into proposed rules.
pub struct Learner {
    groups: Vec<LearnGroup>,
    rules: BTreeMap<(Peer, Peer, String, u16), Seen>,
    unknown: BTreeSet<IpAddr>,
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

fn write_groups(o: &mut String, groups: &[LearnGroup], unknown: &BTreeSet<IpAddr>) {
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
        let cidrs: Vec<String> = unknown
            .iter()
            .map(|a| match a {
                IpAddr::V4(_) => format!("{a}/32"),
                IpAddr::V6(_) => format!("{a}/128"),
            })
            .collect();
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
    write_groups(&mut o, &groups(inv), &BTreeSet::new());
    o.push_str("  rules: []\n");
    o
}

/// Whether a path segment looks like an identifier rather than a name.
fn is_id(seg: &str) -> bool {
    let hex = seg.chars().all(|c| c.is_ascii_hexdigit());
    let digits = !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit());
    let uuid = seg.len() == 36
        && seg.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        });
    digits || uuid || (hex && seg.len() >= 16)
}

/// `/orders/1234/items` -> `/orders/*/items`; a segment holding `*` (which a pattern cannot
/// say literally) becomes `*` too.
pub fn generalise_path(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out = String::with_capacity(path.len());
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_id(s) || s.contains('*') {
            out.push('*');
        } else {
            out.push_str(s);
        }
    }
    // A final `*` alone stands for one or more characters after the slash, which an
    // identifier is.
    out
}

/// `/a/b/c` -> `/a/*` (the root stays `/`).
fn first_segment_glob(path: &str) -> String {
    match path.trim_start_matches('/').split('/').next() {
        Some(first) if !first.is_empty() && first != "*" => format!("/{first}/*"),
        _ => "/*".to_string(),
    }
}

/// Names past [`MAX_NAMES`] become `*.<parent>` (a name without a parent stays).
fn cap_names(names: &BTreeSet<String>) -> BTreeSet<String> {
    if names.len() <= MAX_NAMES {
        return names.clone();
    }
    names
        .iter()
        .map(|n| match n.split_once('.') {
            Some((_, parent)) if parent.contains('.') => format!("*.{parent}"),
            _ => n.clone(),
        })
        .collect()
}

impl Learner {
    pub fn new(inv: &WorkloadInventory) -> Self {
        Learner {
            groups: groups(inv),
            rules: BTreeMap::new(),
            unknown: BTreeSet::new(),
        }
    }

    pub fn observe(&mut self, o: Observation) {
        for p in [&o.from, &o.to] {
            if let Peer::Addr(a) = p {
                self.unknown.insert(*a);
            }
        }
        let key = (o.from, o.to, o.app, o.port);
        let s = self.rules.entry(key).or_default();
        s.count += 1;
        match o.detail {
            Detail::None => {}
            Detail::Http { method, path } => {
                s.http
                    .entry(method)
                    .or_default()
                    .insert(generalise_path(&path));
            }
            Detail::Grpc { service, method } => {
                s.grpc.entry(service).or_default().insert(method);
            }
            Detail::Sql {
                verb,
                tables,
                user,
                database,
            } => {
                // A login is allowed by the clause's users and databases, not by a verb.
                if verb != "LOGIN" && !verb.is_empty() {
                    s.sql_verbs.insert(verb.to_ascii_uppercase());
                }
                s.sql_tables.extend(tables);
                match user {
                    Some(u) => {
                        s.sql_users.insert(u);
                    }
                    None => s.sql_no_user = true,
                }
                match database {
                    Some(d) => {
                        s.sql_dbs.insert(d);
                    }
                    None => s.sql_no_db = true,
                }
            }
            Detail::Redis { command } => {
                s.redis.insert(command.to_ascii_uppercase());
            }
            Detail::Dns { name } => {
                s.dns
                    .insert(name.trim_end_matches('.').to_ascii_lowercase());
            }
            Detail::Tls { sni } => match sni {
                Some(n) => {
                    s.sni.insert(n.to_ascii_lowercase());
                }
                None => s.tls_no_sni = true,
            },
        }
    }

    /// Rules proposed so far.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    fn peer_name(p: &Peer) -> &str {
        match p {
            Peer::Group(g) => g,
            Peer::Addr(_) => UNKNOWN,
        }
    }

    /// The proposal as a policy file: the groups, then one allow rule per (from, to, app,
    /// port), in monitor mode so it can be reviewed against traffic before `protect`.
    pub fn to_yaml(&self, name: &str, header: &str) -> String {
        let mut o = String::new();
        for line in header.lines() {
            let _ = writeln!(o, "# {line}");
        }
        let _ = write!(
            o,
            "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {{name: {}}}\n\
             spec:\n  mode: monitor   # review, then switch to protect\n  defaultAction: deny\n",
            q(name)
        );
        write_groups(&mut o, &self.groups, &self.unknown);
        // Rules between addresses outside the inventory merge into one `unknown` group.
        let mut merged: BTreeMap<(String, String, String, u16), Vec<&Seen>> = BTreeMap::new();
        for ((from, to, app, port), s) in &self.rules {
            merged
                .entry((
                    Self::peer_name(from).to_string(),
                    Self::peer_name(to).to_string(),
                    app.clone(),
                    *port,
                ))
                .or_default()
                .push(s);
        }
        if merged.is_empty() {
            o.push_str("  rules: []\n");
            return o;
        }
        o.push_str("  rules:\n");
        let mut ids = BTreeSet::new();
        for ((from, to, app, port), seen) in &merged {
            let base = group_safe(&format!("{from}-{to}-{app}-{port}"));
            let mut id = base.clone();
            let mut n = 2;
            while !ids.insert(id.clone()) {
                id = format!("{base}-{n}");
                n += 1;
            }
            let count: u64 = seen.iter().map(|s| s.count).sum();
            let unit = if matches!(app.as_str(), "tcp" | "udp") {
                "flows"
            } else {
                "transactions"
            };
            let _ = writeln!(o, "    # {count} {unit} observed");
            let _ = writeln!(o, "    - id: {}", q(&id));
            let _ = writeln!(o, "      from: [{}]", q(from));
            let _ = writeln!(o, "      to: [{}]", q(to));
            let _ = writeln!(o, "      ports: [{port}]");
            let _ = writeln!(o, "      app: {}", q(app));
            self.write_l7(&mut o, app, seen);
            o.push_str("      action: allow\n");
        }
        o
    }

    fn write_l7(&self, o: &mut String, app: &str, seen: &[&Seen]) {
        match app {
            "http" => {
                let mut by_method: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
                for s in seen {
                    for (m, paths) in &s.http {
                        by_method
                            .entry(m)
                            .or_default()
                            .extend(paths.iter().cloned());
                    }
                }
                if by_method.is_empty() {
                    return;
                }
                o.push_str("      http:\n");
                for (m, paths) in by_method {
                    let paths: BTreeSet<String> = if paths.len() > MAX_PATHS {
                        paths.iter().map(|p| first_segment_glob(p)).collect()
                    } else {
                        paths
                    };
                    let _ = writeln!(
                        o,
                        "        - {{methods: [{}], paths: {}}}",
                        q(m),
                        list(&paths)
                    );
                }
            }
            "grpc" => {
                let mut by_service: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
                for s in seen {
                    for (svc, ms) in &s.grpc {
                        by_service.entry(svc).or_default().extend(ms.iter());
                    }
                }
                if by_service.is_empty() {
                    return;
                }
                o.push_str("      grpc:\n");
                for (svc, ms) in by_service {
                    let _ = writeln!(
                        o,
                        "        - {{service: {}, methods: {}}}",
                        q(svc),
                        list(ms)
                    );
                }
            }
            "postgres" | "mysql" => {
                let mut verbs = BTreeSet::new();
                let mut tables = BTreeSet::new();
                let mut users = BTreeSet::new();
                let mut dbs = BTreeSet::new();
                let (mut no_user, mut no_db) = (false, false);
                for s in seen {
                    verbs.extend(s.sql_verbs.iter());
                    tables.extend(s.sql_tables.iter());
                    users.extend(s.sql_users.iter());
                    dbs.extend(s.sql_dbs.iter());
                    no_user |= s.sql_no_user;
                    no_db |= s.sql_no_db;
                }
                let mut parts = Vec::new();
                if !verbs.is_empty() {
                    parts.push(format!("verbs: {}", list(verbs)));
                }
                if !tables.is_empty() {
                    parts.push(format!("tables: {}", list(tables)));
                }
                if !users.is_empty() && !no_user {
                    parts.push(format!("users: {}", list(users)));
                }
                if !dbs.is_empty() && !no_db {
                    parts.push(format!("databases: {}", list(dbs)));
                }
                if !parts.is_empty() {
                    let _ = writeln!(o, "      sql:\n        - {{{}}}", parts.join(", "));
                }
            }
            "redis" => {
                let cmds: BTreeSet<&String> = seen.iter().flat_map(|s| s.redis.iter()).collect();
                if !cmds.is_empty() {
                    let _ = writeln!(o, "      redis:\n        - {{commands: {}}}", list(cmds));
                }
            }
            "dns" => {
                let names: BTreeSet<String> =
                    seen.iter().flat_map(|s| s.dns.iter().cloned()).collect();
                if !names.is_empty() {
                    let _ = writeln!(
                        o,
                        "      dns:\n        - {{names: {}}}",
                        list(&cap_names(&names))
                    );
                }
            }
            "tls" => {
                let names: BTreeSet<String> =
                    seen.iter().flat_map(|s| s.sni.iter().cloned()).collect();
                // A ClientHello without SNI matches no clause listing `sni`.
                if !names.is_empty() && !seen.iter().any(|s| s.tls_no_sni) {
                    let _ = writeln!(
                        o,
                        "      tls:\n        - {{sni: {}}}",
                        list(&cap_names(&names))
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
