//! 10,000 workloads and 10,000 rules, a third of them with L7 matchers of every kind: the
//! indexed `judge_request` must agree with a plain scan of every rule that evaluates the
//! matchers directly from the parsed policy, on random requests.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use control::model::{HttpMatch, L7Matchers, SqlMatch};
use control::{
    Action, Decision, Endpoint, GroupId, Mode, PolicySnapshot, RuleId, Severity, Transport,
    compile, load_inventory_str, load_policy_str,
};
use proto_parsers::AppProto;
use proto_parsers::facts::{
    DnsQuestion, GrpcCall, Header, HttpRequest, HttpVersion, RedisCommand, RequestDetail,
    SqlDialect, SqlKind, SqlRequest, SqlStatement, SqlVerb, TlsClientHello,
};
use regex_automata::meta::Regex;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// 1..=max distinct items.
    fn some<'a>(&mut self, xs: &[&'a str], max: u64) -> Vec<&'a str> {
        let n = 1 + self.below(max);
        let mut v: Vec<&str> = (0..n).map(|_| *self.pick(xs)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

const WORKLOADS: u32 = 10_000;
const RULES: u32 = 10_000;
const TEAMS: u32 = 50;

fn workload_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 8) as u8, (i & 0xff) as u8, 1)
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const PATHS: [&str; 8] = [
    "/api/*",
    "/api/v1/users/*/orders",
    "/p1",
    "/p2",
    "regex:/r[0-9]+/x",
    "/static/*",
    "/*",
    "/api/v1/*",
];
const HOSTS: [&str; 5] = [
    "h1.shop",
    "h2.shop",
    "*.cdn.shop",
    "*.shop",
    "img-*.cdn.shop",
];
const VERBS: [&str; 6] = ["SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "LOGIN"];
const TABLES: [&str; 7] = ["t0", "t1", "t2", "s.t1", "public.t2", "t3", "x.t0"];
const USERS: [&str; 3] = ["u0", "u1", "u2"];
const DBS: [&str; 2] = ["d0", "d1"];
const COMMANDS: [&str; 5] = ["GET", "SET", "FLUSHALL", "DEL", "PING"];
const KEYS: [&str; 4] = ["k:*", "k:?", "user:1", "*"];
const NAMES: [&str; 5] = [
    "*.svc.cluster.local",
    "n1.example.com",
    "*.example.com",
    "a-*.test",
    "example.com",
];
const SNIS: [&str; 3] = ["*.example.com", "bank.test", "example.com"];
const ALPNS: [&str; 2] = ["h2", "http/1.1"];

fn yaml_list(v: &[&str]) -> String {
    let q: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}

/// One random L7 matcher list for `app`, or `None` for apps without matchers.
fn l7_yaml(rng: &mut Rng, app: &str) -> Option<String> {
    let n = 1 + rng.below(3);
    let mut entries = Vec::new();
    for _ in 0..n {
        let mut f = Vec::new();
        match app {
            "http" => {
                if rng.chance(60) {
                    f.push(format!("methods: {}", yaml_list(&rng.some(&METHODS, 2))));
                }
                if rng.chance(60) {
                    f.push(format!("paths: {}", yaml_list(&rng.some(&PATHS, 2))));
                }
                if rng.chance(30) {
                    f.push(format!("hosts: {}", yaml_list(&rng.some(&HOSTS, 2))));
                }
                if rng.chance(10) {
                    f.push(format!("headers: {{x-k: v{}}}", rng.below(2)));
                }
            }
            "grpc" => {
                if rng.chance(70) {
                    f.push(format!("service: s{}.v1.S", rng.below(3)));
                }
                if rng.chance(60) {
                    let ms = ["M0", "M1", "M2"];
                    f.push(format!("methods: {}", yaml_list(&rng.some(&ms, 2))));
                }
            }
            "postgres" | "mysql" => {
                if rng.chance(60) {
                    f.push(format!("verbs: {}", yaml_list(&rng.some(&VERBS, 2))));
                }
                if rng.chance(50) {
                    f.push(format!("tables: {}", yaml_list(&rng.some(&TABLES, 3))));
                }
                if rng.chance(30) {
                    f.push(format!("users: {}", yaml_list(&rng.some(&USERS, 2))));
                }
                if rng.chance(20) {
                    f.push(format!("databases: {}", yaml_list(&rng.some(&DBS, 1))));
                }
            }
            "redis" => {
                if rng.chance(70) {
                    f.push(format!("commands: {}", yaml_list(&rng.some(&COMMANDS, 2))));
                }
                if rng.chance(50) {
                    f.push(format!("keys: {}", yaml_list(&rng.some(&KEYS, 2))));
                }
            }
            "dns" => f.push(format!("names: {}", yaml_list(&rng.some(&NAMES, 2)))),
            "tls" => {
                if rng.chance(70) {
                    f.push(format!("sni: {}", yaml_list(&rng.some(&SNIS, 2))));
                }
                if rng.chance(40) {
                    f.push(format!("alpn: {}", yaml_list(&rng.some(&ALPNS, 1))));
                }
            }
            _ => return None,
        }
        entries.push(format!("{{{}}}", f.join(", ")));
    }
    let key = match app {
        "postgres" | "mysql" => "sql",
        a => a,
    };
    Some(format!("{key}: [{}]", entries.join(", ")))
}

const APPS: [&str; 9] = [
    "http", "grpc", "postgres", "mysql", "redis", "dns", "tls", "tcp", "udp",
];

fn build() -> PolicySnapshot {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut inv =
        String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
    for i in 0..WORKLOADS {
        writeln!(
            inv,
            "  - {{name: w{i}, namespace: ns-{}, labels: {{app: svc-{}, team: t-{}}}, ips: [{}]}}",
            i % 5,
            i % 200,
            i % TEAMS,
            workload_ip(i)
        )
        .unwrap();
    }
    let mut pol = String::from(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: scale}\nspec:\n  mode: protect\n  defaultAction: deny\n  groups:\n",
    );
    let mut names = Vec::new();
    for t in 0..TEAMS {
        let mode = match t % 7 {
            0 => ", mode: monitor",
            1 => ", mode: learn",
            _ => "",
        };
        writeln!(pol, "    team-{t}: {{selector: {{team: t-{t}}}{mode}}}").unwrap();
        names.push(format!("team-{t}"));
    }
    for a in 0..200 {
        writeln!(pol, "    svc-{a}: {{selector: {{app: svc-{a}}}}}").unwrap();
        names.push(format!("svc-{a}"));
    }
    for n in 0..5 {
        writeln!(pol, "    ns-{n}: {{namespaces: [ns-{n}]}}").unwrap();
        names.push(format!("ns-{n}"));
    }
    pol.push_str("    world: {cidrs: [0.0.0.0/0]}\n");
    names.push("world".into());
    names.push("*".into());
    pol.push_str("  rules:\n");
    for r in 0..RULES {
        let peers = |rng: &mut Rng| {
            let n = 1 + rng.below(2);
            (0..n)
                .map(|_| format!("\"{}\"", rng.pick(&names)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let from = peers(&mut rng);
        let to = peers(&mut rng);
        let mut extra = String::new();
        if rng.chance(30) {
            let p = 1 + rng.below(20) as u16;
            write!(extra, ", ports: [{p}, {}]", p + 3).unwrap();
        }
        let app = rng.chance(80).then(|| *rng.pick(&APPS));
        let mut has_l7 = false;
        if let Some(a) = app {
            write!(extra, ", app: {a}").unwrap();
            if rng.chance(60)
                && let Some(m) = l7_yaml(&mut rng, a)
            {
                write!(extra, ", {m}").unwrap();
                has_l7 = true;
            }
        }
        // Deny/alert rules without L7 matchers decide whole flows; keep them rare so that
        // the L7 rules get to decide.
        let action = if has_l7 {
            *rng.pick(&["allow", "allow", "deny", "alert"])
        } else {
            match rng.below(24) {
                0 => "deny",
                1 => "alert",
                _ => "allow",
            }
        };
        if rng.chance(10) {
            extra.push_str(", capture: true");
        }
        if rng.chance(20) {
            write!(
                extra,
                ", severity: {}",
                rng.pick(&["low", "medium", "high", "critical"])
            )
            .unwrap();
        }
        writeln!(
            pol,
            "    - {{id: r{r}, from: [{from}], to: [{to}]{extra}, action: {action}}}"
        )
        .unwrap();
    }
    let p = match load_policy_str(&pol, "scale.yaml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let i = load_inventory_str(&inv, "scale-inv.yaml").unwrap();
    compile(&p.policy, &i, 1).unwrap()
}

// ---------------------------------------------------------------------------------------
// The reference: every rule, every matcher, evaluated directly.

fn covers(
    s: &PolicySnapshot,
    r: &control::CompiledRule,
    src: &Endpoint,
    dst: &Endpoint,
    port: u16,
    t: Transport,
    app: AppProto,
) -> bool {
    let (sg, dg) = (s.groups_of(src), s.groups_of(dst));
    let hits = |named: Option<&[GroupId]>, have: &[GroupId]| {
        named.is_none_or(|n| n.iter().any(|g| have.contains(g)))
    };
    if !hits(r.from_groups(), sg) || !hits(r.to_groups(), dg) {
        return false;
    }
    if !r.ports().is_empty() && !r.ports().iter().any(|&(a, b)| a <= port && port <= b) {
        return false;
    }
    match r.app() {
        None => true,
        Some(want) => {
            let transport_ok = match want {
                AppProto::Udp => t == Transport::Udp,
                AppProto::Dns => matches!(t, Transport::Udp | Transport::Tcp),
                _ => t == Transport::Tcp,
            };
            transport_ok
                && (want == app
                    || matches!(want, AppProto::Tcp | AppProto::Udp)
                    || (want == AppProto::Http && app == AppProto::Http2))
        }
    }
}

fn wild(p: &str, v: &str) -> bool {
    // `*` any run, everything else literal (within one label / the whole string).
    match p.split_once('*') {
        None => p == v,
        Some((head, tail)) => {
            v.starts_with(head)
                && (head.len()..=v.len()).any(|i| v.is_char_boundary(i) && wild(tail, &v[i..]))
        }
    }
}

fn domain_match(pat: &str, name: &str) -> bool {
    fn go(p: &[&str], n: &[&str]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((&"*", rest)) => {
                (1..=n.len()).any(|k| n[..k].iter().all(|l| !l.is_empty()) && go(rest, &n[k..]))
            }
            Some((lab, rest)) => {
                !n.is_empty() && !n[0].contains('.') && wild(lab, n[0]) && go(rest, &n[1..])
            }
        }
    }
    let pat = pat.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let p: Vec<&str> = pat.split('.').collect();
    let n: Vec<&str> = name.split('.').collect();
    go(&p, &n)
}

fn path_match(pat: &str, path: &str) -> bool {
    if let Some(re) = pat.strip_prefix("regex:") {
        return Regex::new(&format!(r"\A(?:{re})\z"))
            .unwrap()
            .is_match(path);
    }
    let ps: Vec<&str> = pat.split('/').collect();
    let xs: Vec<&str> = path.split('/').collect();
    let seg_ok = |p: &str, x: &str| if p == "*" { !x.is_empty() } else { p == x };
    if ps.len() > 1 && ps.last() == Some(&"*") {
        let prefix = &ps[..ps.len() - 1];
        xs.len() > prefix.len()
            && prefix.iter().zip(&xs).all(|(p, x)| seg_ok(p, x))
            && !xs[prefix.len()..].join("/").is_empty()
    } else {
        ps.len() == xs.len() && ps.iter().zip(&xs).all(|(p, x)| seg_ok(p, x))
    }
}

fn host_part(a: &str) -> &str {
    a.split(':').next().unwrap().trim_end_matches('.')
}

fn list_ok(list: &control::model::Patterns, f: impl Fn(&str) -> bool) -> bool {
    list.as_ref()
        .is_none_or(|l| l.value.iter().any(|s| f(&s.value)))
}

fn http_clause(m: &HttpMatch, h: &HttpRequest<'_>, path: &str) -> bool {
    let method = std::str::from_utf8(h.method).unwrap();
    let host = h
        .authority
        .map(|a| host_part(std::str::from_utf8(a).unwrap()));
    list_ok(&m.methods, |x| x == method)
        && list_ok(&m.paths, |p| path_match(p, path))
        && (m.hosts.is_none() || host.is_some_and(|hh| list_ok(&m.hosts, |p| domain_match(p, hh))))
        && m.headers.as_ref().is_none_or(|hs| {
            hs.value.iter().all(|(k, v)| {
                h.headers.iter().any(|x| {
                    x.name.eq_ignore_ascii_case(k.0.as_bytes()) && x.value == v.0.as_bytes()
                })
            })
        })
}

fn table_compatible(listed: &str, touched: &str) -> bool {
    let (l, t) = (listed.to_ascii_lowercase(), touched.to_ascii_lowercase());
    let split = |s: &str| match s.rsplit_once('.') {
        Some((a, b)) => (Some(a.to_owned()), b.to_owned()),
        None => (None, s.to_owned()),
    };
    let ((ls, lt), (ts, tt)) = (split(&l), split(&t));
    lt == tt && (ls.is_none() || ts.is_none() || ls == ts)
}

fn sql_clause(
    m: &SqlMatch,
    action: Action,
    q: &SqlRequest<'_>,
    st: Option<&SqlStatement<'_>>,
) -> bool {
    let user = q.user.map(|u| std::str::from_utf8(u).unwrap());
    let db = q.database.map(|u| std::str::from_utf8(u).unwrap());
    let opt_ok = |l: &control::model::Patterns, v: Option<&str>| {
        l.is_none() || v.is_some_and(|v| list_ok(l, |x| x == v))
    };
    if !opt_ok(&m.users, user) || !opt_ok(&m.databases, db) {
        return false;
    }
    let Some(st) = st else {
        // A login.
        let lists_login = m.verbs.as_ref().is_some_and(|l| {
            l.value
                .iter()
                .any(|v| v.value.eq_ignore_ascii_case("LOGIN"))
        });
        return action == Action::Allow || lists_login || (m.verbs.is_none() && m.tables.is_none());
    };
    let verb = verb_str(&st.verb);
    if !list_ok(&m.verbs, |v| v.eq_ignore_ascii_case(&verb)) {
        return false;
    }
    match &m.tables {
        None => true,
        Some(l) => {
            let listed = |t: &str| l.value.iter().any(|x| table_compatible(&x.value, t));
            if action == Action::Allow {
                st.tables.iter().all(|t| listed(t))
            } else {
                st.tables.iter().any(|t| listed(t))
            }
        }
    }
}

fn verb_str(v: &SqlVerb<'_>) -> String {
    match v {
        SqlVerb::Other(s) => s.to_string(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

/// Whether the rule's L7 matchers match (`stmt`: the SQL statement judged, `None` for a
/// login).
fn l7_matches(
    r: &control::CompiledRule,
    req: &RequestDetail<'_>,
    path: &str,
    stmt: Option<&SqlStatement<'_>>,
) -> bool {
    let Some(m) = r.l7() else {
        return false;
    };
    let s = |b: &[u8]| std::str::from_utf8(b).unwrap().to_owned();
    match (m, req) {
        (L7Matchers::Http(l), RequestDetail::Http(h)) => l.iter().any(|m| http_clause(m, h, path)),
        (L7Matchers::Grpc(l), RequestDetail::Grpc(g)) => l.iter().any(|m| {
            m.service.as_ref().is_none_or(|x| x.value == s(g.service))
                && list_ok(&m.methods, |x| x == s(g.method))
        }),
        (L7Matchers::Sql(l), RequestDetail::Sql(q)) => {
            l.iter().any(|m| sql_clause(m, r.action(), q, stmt))
        }
        (L7Matchers::Redis(l), RequestDetail::Redis(c)) => l.iter().any(|m| {
            list_ok(&m.commands, |x| x.eq_ignore_ascii_case(&s(c.command)))
                && (m.keys.is_none()
                    || c.key.is_some_and(|k| {
                        list_ok(&m.keys, |p| {
                            let k = s(k);
                            match p.strip_suffix('*') {
                                _ if p.contains('?') => {
                                    let pre = p.trim_end_matches('?');
                                    k.len() == p.len() && k.starts_with(pre)
                                }
                                Some(pre) => k.starts_with(pre),
                                None => p == k,
                            }
                        })
                    }))
        }),
        (L7Matchers::Dns(l), RequestDetail::Dns(q)) => l
            .iter()
            .any(|m| list_ok(&m.names, |p| domain_match(p, q.qname))),
        (L7Matchers::Tls(l), RequestDetail::Tls(t)) => l.iter().any(|m| {
            (m.sni.is_none()
                || t.sni
                    .is_some_and(|n| list_ok(&m.sni, |p| domain_match(p, &s(n)))))
                && (m.alpn.is_none()
                    || t.alpn
                        .iter()
                        .any(|a| list_ok(&m.alpn, |p| p.as_bytes() == *a)))
        }),
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn reference_one(
    s: &PolicySnapshot,
    src: &Endpoint,
    dst: &Endpoint,
    port: u16,
    app: AppProto,
    req: &RequestDetail<'_>,
    path: &str,
    stmt: Option<&SqlStatement<'_>>,
) -> Decision {
    let t = if app == AppProto::Dns {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    // deny, alert, allow (no L7), allow (L7)
    let mut best: [Option<u32>; 4] = [None; 4];
    let mut capture = false;
    for i in 0..s.rule_count() as u32 {
        let r = s.rule(RuleId(i)).unwrap();
        if !covers(s, r, src, dst, port, t, app) {
            continue;
        }
        if r.has_l7() && !l7_matches(r, req, path, stmt) {
            continue;
        }
        capture |= r.capture();
        let slot = match (r.action(), r.has_l7()) {
            (Action::Deny, _) => 0,
            (Action::Alert, _) => 1,
            (Action::Allow, false) => 2,
            (Action::Allow, true) => 3,
        };
        best[slot].get_or_insert(i);
    }
    let (sg, dg) = (s.groups_of(src), s.groups_of(dst));
    let mode = dg
        .iter()
        .chain(sg)
        .find_map(|g| s.group_mode(*g))
        .unwrap_or(s.mode());
    match best.iter().position(Option::is_some) {
        Some(slot) => {
            let id = best[slot].unwrap();
            let r = s.rule(RuleId(id)).unwrap();
            let first = |named: Option<&[GroupId]>, have: &[GroupId]| match named {
                None => have.first().copied(),
                Some(n) => have
                    .iter()
                    .find(|g| n.contains(g))
                    .or(have.first())
                    .copied(),
            };
            Decision {
                action: r.action(),
                rule: Some(RuleId(id)),
                mode,
                enforce: r.action() == Action::Deny && mode == Mode::Protect,
                severity: r.severity(),
                capture,
                l7_constrained: slot == 3,
                src_group: first(r.from_groups(), sg),
                dst_group: first(r.to_groups(), dg),
                uninspectable: None,
                quarantine: false,
            }
        }
        None => {
            let (action, enforce, severity) = match mode {
                Mode::Protect => (Action::Deny, true, Severity::High),
                Mode::Monitor => (Action::Alert, false, Severity::Medium),
                Mode::Learn => (Action::Allow, false, Severity::Low),
            };
            Decision {
                action,
                rule: None,
                mode,
                enforce,
                severity,
                capture,
                l7_constrained: false,
                src_group: sg.first().copied(),
                dst_group: dg.first().copied(),
                uninspectable: None,
                quarantine: false,
            }
        }
    }
}

fn reference(
    s: &PolicySnapshot,
    src: &Endpoint,
    dst: &Endpoint,
    port: u16,
    app: AppProto,
    req: &RequestDetail<'_>,
    path: &str,
) -> Decision {
    let RequestDetail::Sql(q) = req else {
        return reference_one(s, src, dst, port, app, req, path, None);
    };
    if q.kind == SqlKind::Login {
        return reference_one(s, src, dst, port, app, req, path, None);
    }
    let rank = |a: Action| match a {
        Action::Deny => 3,
        Action::Alert => 2,
        Action::Allow => 1,
    };
    let mut out: Option<Decision> = None;
    let mut capture = false;
    for st in q.statements {
        let d = reference_one(s, src, dst, port, app, req, path, Some(st));
        capture |= d.capture;
        if out.is_none_or(|o| rank(d.action) > rank(o.action)) {
            out = Some(d);
        }
    }
    let mut d = out.unwrap();
    d.capture |= capture;
    d
}

// ---------------------------------------------------------------------------------------

const REQ_PATHS: [&str; 10] = [
    "/api/x",
    "/api/v1/users/7/orders",
    "/p1",
    "/p2",
    "/r12/x",
    "/static/a/b.css",
    "/",
    "/api/v1/z",
    "/api",
    "/other/thing",
];
const REQ_HOSTS: [&str; 7] = [
    "h1.shop",
    "H2.SHOP:8080",
    "a.cdn.shop",
    "img-3.cdn.shop",
    "x.y.shop.",
    "evil.test",
    "shop",
];
const REQ_TABLES: [&str; 8] = ["t0", "T1", "s.t1", "public.t2", "x.t0", "t9", "y.t1", "t3"];
const REQ_KEYS: [&str; 5] = ["k:1", "k:12", "user:1", "other", "k:"];
const REQ_NAMES: [&str; 6] = [
    "a.svc.cluster.local",
    "n1.example.com",
    "example.com",
    "a-b.test",
    "x.a-b.test",
    "b.svc.cluster.local.",
];
const REQ_SNIS: [&str; 4] = ["api.example.com", "bank.test", "example.com", "other.test"];

#[test]
fn indexed_l7_agrees_with_full_scan() {
    let s = build();
    assert_eq!(s.rule_count(), RULES as usize);
    let mut rng = Rng(7);
    let l7_rules: Vec<u32> = (0..s.rule_count() as u32)
        .filter(|&i| s.rule(RuleId(i)).unwrap().has_l7())
        .collect();
    let mut by_rule = 0;
    let mut by_l7 = 0;
    let mut l7_allowed = 0;
    let mut actions = [0usize; 3];
    // The previous iteration's flow and its per-flow cache: half the iterations judge
    // another transaction of that flow, through what the cache prepared from its first.
    let mut last: Option<(Option<&control::CompiledRule>, Endpoint, Endpoint, u16)> = None;
    let mut flow_rules = None;
    let mut kept = 0;
    for iter in 0..4_000 {
        // Most requests aim at a random L7 rule (its groups, a port and its protocol) so
        // that L7 matchers decide often; the rest are random flows.
        let again = last.filter(|_| rng.chance(50));
        let target = match again {
            Some((t, ..)) => t,
            None => rng
                .chance(70)
                .then(|| s.rule(RuleId(*rng.pick(&l7_rules))).unwrap()),
        };
        let endpoint = |named: Option<&[GroupId]>, rng: &mut Rng| {
            let name = named.map_or("*", |gs| s.group_name(*rng.pick(gs)));
            let k = rng.below(u64::from(WORKLOADS) / 200) as u32;
            let ip = if let Some(t) = name.strip_prefix("team-") {
                workload_ip(t.parse::<u32>().unwrap() + 50 * k)
            } else if let Some(a) = name.strip_prefix("svc-") {
                workload_ip(a.parse::<u32>().unwrap() + 200 * k)
            } else if let Some(n) = name.strip_prefix("ns-") {
                workload_ip(n.parse::<u32>().unwrap() + 5 * k)
            } else if name == "world" || rng.chance(3) {
                Ipv4Addr::new(8, 8, 8, 8)
            } else {
                workload_ip(rng.below(u64::from(WORKLOADS)) as u32)
            };
            s.resolve(IpAddr::V4(ip))
        };
        let (src, dst, port) = match again {
            Some((_, src, dst, port)) => (src, dst, port),
            None => {
                let src = endpoint(target.and_then(|r| r.from_groups()), &mut rng);
                let dst = endpoint(target.and_then(|r| r.to_groups()), &mut rng);
                let port = match target.and_then(|r| r.ports().first()) {
                    Some(&(lo, _)) if rng.chance(90) => lo,
                    _ => 1 + rng.below(25) as u16,
                };
                (src, dst, port)
            }
        };
        if again.is_none() {
            flow_rules = None;
        }
        last = Some((target, src, dst, port));
        let hv = [Header {
            name: b"X-K",
            value: b"v1",
        }];
        let headers: &[Header<'_>] = if rng.chance(30) { &hv } else { &[] };
        let path = *rng.pick(&REQ_PATHS);
        let host = rng.chance(80).then(|| *rng.pick(&REQ_HOSTS));
        let method = *rng.pick(&METHODS);
        let svc = format!("s{}.v1.S", rng.below(4));
        let gm = format!("M{}", rng.below(4));
        let verbs = [
            SqlVerb::Select,
            SqlVerb::Insert,
            SqlVerb::Update,
            SqlVerb::Delete,
            SqlVerb::Drop,
            SqlVerb::Other("SELECT"),
        ];
        let nst = 1 + rng.below(3) as usize;
        let tables: Vec<Vec<&str>> = (0..nst)
            .map(|_| {
                let n = rng.below(3);
                (0..n).map(|_| *rng.pick(&REQ_TABLES)).collect()
            })
            .collect();
        let stmts: Vec<SqlStatement<'_>> = tables
            .iter()
            .map(|t| SqlStatement {
                verb: *rng.pick(&verbs),
                tables: t.as_slice(),
                text: b"",
            })
            .collect();
        let user = rng.chance(90).then(|| *rng.pick(&USERS));
        let db = rng.chance(90).then(|| *rng.pick(&DBS));
        let key = rng.chance(80).then(|| *rng.pick(&REQ_KEYS));
        let cmd = (*rng.pick(&COMMANDS)).to_ascii_lowercase();
        let alpn: Vec<&[u8]> = match rng.below(3) {
            0 => vec![],
            1 => vec![b"h2"],
            _ => vec![b"http/1.1", b"h2"],
        };
        let sni = rng.chance(85).then(|| *rng.pick(&REQ_SNIS));
        let http_req = HttpRequest {
            version: HttpVersion::Http11,
            method: method.as_bytes(),
            path: path.as_bytes(),
            authority: host.map(str::as_bytes),
            user_agent: None,
            content_type: None,
            headers,
        };
        let kind = match target.and_then(|r| r.app()) {
            Some(AppProto::Http) => 0,
            Some(AppProto::Grpc) => 1,
            Some(AppProto::Postgres | AppProto::Mysql) => 2,
            Some(AppProto::Redis) => 3,
            Some(AppProto::Dns) => 4,
            Some(AppProto::Tls) => 5,
            _ => rng.below(6),
        };
        let (app, req) = match kind {
            0 => (
                *rng.pick(&[AppProto::Http, AppProto::Http2]),
                RequestDetail::Http(http_req),
            ),
            1 => (
                AppProto::Grpc,
                RequestDetail::Grpc(GrpcCall {
                    http: http_req,
                    service: svc.as_bytes(),
                    method: gm.as_bytes(),
                }),
            ),
            2 => (
                match target.and_then(|r| r.app()) {
                    Some(a @ (AppProto::Postgres | AppProto::Mysql)) => a,
                    _ => *rng.pick(&[AppProto::Postgres, AppProto::Mysql]),
                },
                RequestDetail::Sql(SqlRequest {
                    dialect: SqlDialect::Postgres,
                    kind: if rng.chance(15) {
                        SqlKind::Login
                    } else {
                        SqlKind::Query
                    },
                    user: user.map(str::as_bytes),
                    database: db.map(str::as_bytes),
                    text: b"",
                    statements: &stmts,
                }),
            ),
            3 => (
                AppProto::Redis,
                RequestDetail::Redis(RedisCommand {
                    command: cmd.as_bytes(),
                    key: key.map(str::as_bytes),
                    argc: 2,
                }),
            ),
            4 => (
                AppProto::Dns,
                RequestDetail::Dns(DnsQuestion {
                    qname: REQ_NAMES[rng.below(REQ_NAMES.len() as u64) as usize],
                    qtype: 1,
                    qclass: 1,
                    msg_id: 1,
                }),
            ),
            _ => (
                AppProto::Tls,
                RequestDetail::Tls(TlsClientHello {
                    sni: sni.map(str::as_bytes),
                    alpn: &alpn,
                    version: 0x0304,
                }),
            ),
        };
        let got = s.judge_request(&src, &dst, port, app, &req, Some(path.as_bytes()));
        let want = reference(&s, &src, &dst, port, app, &req, path);
        assert_eq!(got, want, "iteration {iter}: {app:?} port {port} {req:?}");
        // The same transaction as one of a flow's: through the index at its first
        // transaction, then through what it prepared (built at the second, reused after).
        let transport = match app {
            AppProto::Dns => Transport::Udp,
            _ => Transport::Tcp,
        };
        for round in 0..3 {
            let d = s.judge_transaction_cached(
                &mut flow_rules,
                &src,
                &dst,
                port,
                transport,
                app,
                &req,
                Some(path.as_bytes()),
            );
            assert_eq!(
                d, want,
                "iteration {iter} round {round}: {app:?} port {port} {req:?}"
            );
        }
        kept += usize::from(again.is_some());
        if let Some(r) = got.rule {
            by_rule += 1;
            by_l7 += usize::from(s.rule(r).unwrap().has_l7());
            l7_allowed += usize::from(got.l7_constrained);
        }
        actions[match got.action {
            Action::Allow => 0,
            Action::Alert => 1,
            Action::Deny => 2,
        }] += 1;
    }
    assert!(kept > 1_500, "{kept}");
    // The random policy must exercise L7 rules of every action, not only defaults.
    assert!(by_rule > 1_000, "{by_rule}");
    assert!(by_l7 > 600, "{by_l7}");
    assert!(l7_allowed > 100, "{l7_allowed}");
    assert!(actions.iter().all(|&n| n > 300), "{actions:?}");
}
