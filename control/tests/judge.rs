//! Semantics of compiled snapshots: resolution, membership and L4 decisions.

use std::net::IpAddr;

use control::{
    Action, Endpoint, GroupId, Mode, PolicySnapshot, Severity, Transport, compile,
    load_inventory_str, load_policy_str,
};
use proto_parsers::AppProto;

const INVENTORY: &str = r#"
apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: web-1,   namespace: shop, labels: {app: web},      ips: [10.0.1.5]}
  - {name: api-1,   namespace: shop, labels: {app: api},      ips: [10.0.2.7, "fd00::2:7"]}
  - {name: pg-shop, namespace: shop, labels: {app: postgres}, ips: [10.0.3.1]}
  - {name: pg-dev,  namespace: dev,  labels: {app: postgres}, ips: [10.0.3.2]}
  - {name: redis-1, namespace: shop, labels: {app: redis},    ips: [10.0.4.1]}
  - {name: batch,   namespace: jobs, labels: {app: batch},    cidrs: [10.0.128.0/17, "fd00:1::/64"]}
  - {name: batch-x, namespace: jobs, labels: {app: batchx},   ips: [10.0.200.9, "fd00:1::9"]}
"#;

fn policy(spec_tail: &str) -> String {
    format!(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {{name: t}}\nspec:\n{spec_tail}"
    )
}

fn snap(spec_tail: &str) -> PolicySnapshot {
    let p = load_policy_str(&policy(spec_tail), "t.yaml").unwrap();
    let inv = load_inventory_str(INVENTORY, "inv.yaml").unwrap();
    match compile(&p.policy, &inv, 7) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn ep(s: &PolicySnapshot, ip: &str) -> Endpoint {
    s.resolve(ip.parse::<IpAddr>().unwrap())
}

fn names(s: &PolicySnapshot, ip: &str) -> Vec<String> {
    let e = ep(s, ip);
    s.groups_of(&e)
        .iter()
        .map(|g| s.group_name(*g).to_owned())
        .collect()
}

fn judge(
    s: &PolicySnapshot,
    src: &str,
    dst: &str,
    port: u16,
    t: Transport,
    app: Option<AppProto>,
) -> control::Decision {
    s.judge_flow(&ep(s, src), &ep(s, dst), port, t, app)
}

fn rule_of(s: &PolicySnapshot, d: &control::Decision) -> String {
    d.rule
        .map_or("default".to_owned(), |r| s.rule_name(r).to_owned())
}

const GROUPS: &str = "  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
    db: {selector: {app: postgres}, namespaces: [shop]}
    cache: {selector: {app: redis}}
    internal: {cidrs: [10.0.0.0/8]}
    world: {cidrs: [0.0.0.0/0, \"::/0\"]}
";

#[test]
fn deny_wins_regardless_of_order() {
    let rules = [
        "    - {id: allow-a, from: [web], to: [api], ports: [8080], action: allow}\n",
        "    - {id: alert-a, from: [web], to: [\"*\"], action: alert}\n",
        "    - {id: deny-a, from: [\"*\"], to: [api], ports: [\"8000-8100\"], action: deny}\n",
        "    - {id: deny-b, from: [web], to: [api], action: deny, severity: critical}\n",
    ];
    // Every permutation of the four rules.
    let mut perms = vec![vec![0usize, 1, 2, 3]];
    for _ in 0..23 {
        let mut p = perms.last().unwrap().clone();
        // Next lexicographic permutation.
        let i = (0..3).rev().find(|&i| p[i] < p[i + 1]).unwrap();
        let j = (i + 1..4).rev().find(|&j| p[j] > p[i]).unwrap();
        p.swap(i, j);
        p[i + 1..].reverse();
        perms.push(p);
    }
    assert_eq!(perms.len(), 24);
    for perm in perms {
        let mut tail = format!("  mode: protect\n  defaultAction: allow\n{GROUPS}  rules:\n");
        for &i in &perm {
            tail.push_str(rules[i]);
        }
        let s = snap(&tail);
        let d = judge(&s, "10.0.1.5", "10.0.2.7", 8080, Transport::Tcp, None);
        assert_eq!(d.action, Action::Deny, "{perm:?}");
        assert!(d.enforce);
        // The first deny in declaration order names the decision.
        let first_deny = perm.iter().find(|&&i| i >= 2).unwrap();
        let want = if *first_deny == 2 { "deny-a" } else { "deny-b" };
        assert_eq!(rule_of(&s, &d), want, "{perm:?}");
        let want_sev = if want == "deny-b" {
            Severity::Critical
        } else {
            Severity::High
        };
        assert_eq!(d.severity, want_sev);
        // Port 9000 is outside deny-a but deny-b has no ports.
        let d = judge(&s, "10.0.1.5", "10.0.2.7", 9000, Transport::Tcp, None);
        assert_eq!(rule_of(&s, &d), "deny-b");
        // Alert beats allow, deny beats alert: web -> db only has the alert.
        let d = judge(&s, "10.0.1.5", "10.0.3.1", 5432, Transport::Tcp, None);
        assert_eq!(
            (d.action, rule_of(&s, &d)),
            (Action::Alert, "alert-a".into())
        );
        assert_eq!(d.severity, Severity::Medium);
        assert!(!d.enforce);
    }
}

#[test]
fn alert_beats_allow_and_allow_beats_default() {
    let s = snap(&format!(
        "  mode: protect\n  defaultAction: deny\n{GROUPS}  rules:
    - {{id: ok, from: [web], to: [api], action: allow}}
    - {{id: watch, from: [web], to: [api], ports: [443], action: alert, capture: true}}
"
    ));
    let d = judge(&s, "10.0.1.5", "10.0.2.7", 443, Transport::Tcp, None);
    assert_eq!((d.action, rule_of(&s, &d)), (Action::Alert, "watch".into()));
    assert!(d.capture);
    let d = judge(&s, "10.0.1.5", "10.0.2.7", 80, Transport::Tcp, None);
    assert_eq!((d.action, rule_of(&s, &d)), (Action::Allow, "ok".into()));
    assert_eq!(d.severity, Severity::Low);
    assert!(!d.capture);
    assert_eq!(d.mode, Mode::Protect);
    // Reverse direction: no rule.
    let d = judge(&s, "10.0.2.7", "10.0.1.5", 80, Transport::Tcp, None);
    assert_eq!((d.action, d.rule, d.enforce), (Action::Deny, None, true));
    assert_eq!(d.severity, Severity::High);
}

#[test]
fn mode_falls_through_destination_source_policy() {
    let tail = "  mode: protect
  defaultAction: deny
  groups:
    web: {selector: {app: web}, mode: learn}
    api: {selector: {app: api}, mode: monitor}
    db: {selector: {app: postgres}}
    cache: {selector: {app: redis}}
  rules:
    - {id: no-db, from: [api], to: [db], action: deny}
    - {id: no-cache, from: [web], to: [cache], action: deny}
";
    let s = snap(tail);
    // Destination override wins: web(learn) -> api(monitor) = monitor.
    let d = judge(&s, "10.0.1.5", "10.0.2.7", 80, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Monitor, Action::Alert, false)
    );
    assert_eq!(d.severity, Severity::Medium);
    assert_eq!(d.rule, None);
    // No destination override: source's (api = monitor).
    let d = judge(&s, "10.0.2.7", "10.0.4.1", 80, Transport::Tcp, None);
    assert_eq!((d.mode, d.action), (Mode::Monitor, Action::Alert));
    // Neither: spec.mode protect + defaultAction deny.
    let d = judge(&s, "10.0.3.1", "10.0.4.1", 80, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Protect, Action::Deny, true)
    );
    // Learn mode from the source's override: allowed, no alert.
    let d = judge(&s, "10.0.1.5", "10.0.3.1", 80, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Learn, Action::Allow, false)
    );
    // A deny rule under monitor/learn reports deny but never enforces.
    let d = judge(&s, "10.0.2.7", "10.0.3.1", 5432, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Monitor, Action::Deny, false)
    );
    assert_eq!(rule_of(&s, &d), "no-db");
    let d = judge(&s, "10.0.1.5", "10.0.4.1", 6379, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Learn, Action::Deny, false)
    );
    // Unknown endpoints: spec.mode.
    let d = judge(&s, "192.0.2.1", "198.51.100.1", 80, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Protect, Action::Deny, true)
    );
    assert_eq!((d.src_group, d.dst_group), (None, None));

    let allow_default =
        snap("  mode: protect\n  defaultAction: allow\n  groups: {}\n  rules: []\n");
    let d = judge(
        &allow_default,
        "10.0.1.5",
        "10.0.2.7",
        1,
        Transport::Udp,
        None,
    );
    assert_eq!((d.action, d.enforce), (Action::Allow, false));
    let learn = snap("  mode: learn\n");
    let d = judge(&learn, "10.0.1.5", "10.0.2.7", 1, Transport::Tcp, None);
    assert_eq!((d.mode, d.action), (Mode::Learn, Action::Allow));
    // Defaults when mode/defaultAction are absent: protect + deny.
    let bare = snap("  groups: {}\n");
    let d = judge(&bare, "10.0.1.5", "10.0.2.7", 1, Transport::Tcp, None);
    assert_eq!(
        (d.mode, d.action, d.enforce),
        (Mode::Protect, Action::Deny, true)
    );
}

#[test]
fn longest_prefix_ipv4_and_ipv6() {
    let s = snap(&format!("  mode: monitor\n{GROUPS}"));
    let w = |ip: &str| {
        ep(&s, ip)
            .workload
            .map(|id| s.workload(id).name.to_string())
    };
    assert_eq!(w("10.0.1.5").as_deref(), Some("web-1"));
    assert_eq!(w("10.0.2.7").as_deref(), Some("api-1"));
    assert_eq!(w("fd00::2:7").as_deref(), Some("api-1"));
    // IPv4-mapped IPv6 resolves as IPv4.
    assert_eq!(w("::ffff:10.0.1.5").as_deref(), Some("web-1"));
    // Host address inside a workload CIDR: the more specific one wins.
    assert_eq!(w("10.0.200.9").as_deref(), Some("batch-x"));
    assert_eq!(w("10.0.200.10").as_deref(), Some("batch"));
    assert_eq!(w("fd00:1::9").as_deref(), Some("batch-x"));
    assert_eq!(w("fd00:1::a").as_deref(), Some("batch"));
    assert_eq!(w("fd00:2::1"), None);
    assert_eq!(w("10.0.1.6"), None);
    let info = s.workload(ep(&s, "10.0.1.5").workload.unwrap());
    assert_eq!(&*info.namespace, "shop");
    assert_eq!(info.label("app"), Some("web"));
    assert_eq!(info.label("nope"), None);
}

#[test]
fn cidr_groups_contain_only_addresses_outside_the_inventory() {
    let s = snap(&format!(
        "  mode: monitor\n{GROUPS}    mixed: {{selector: {{app: web}}, cidrs: [192.0.2.0/24]}}\n    inner: {{cidrs: [10.0.200.0/24]}}\n"
    ));
    // Unknown address inside 10/8 and 0/0: both, in declaration order.
    assert_eq!(names(&s, "10.9.9.9"), ["internal", "world"]);
    assert_eq!(names(&s, "8.8.8.8"), ["world"]);
    assert_eq!(names(&s, "2001:db8::1"), ["world"]);
    // Workload addresses are selected by labels only.
    assert_eq!(names(&s, "10.0.1.5"), ["web", "mixed"]);
    // A group CIDR inside a workload's CIDR adds nothing: the workload owns it.
    assert_eq!(names(&s, "10.0.200.10"), Vec::<String>::new());
    assert_eq!(
        ep(&s, "10.0.200.10")
            .workload
            .map(|w| s.workload(w).name.to_string()),
        Some("batch".into())
    );
    // A group with selector and cidrs contains both.
    assert_eq!(
        names(&s, "192.0.2.77"),
        ["world", "mixed"],
        "declaration order"
    );
}

#[test]
fn namespaces_narrow_selectors() {
    let s = snap(&format!("  mode: monitor\n{GROUPS}"));
    assert_eq!(names(&s, "10.0.3.1"), ["db"]);
    assert_eq!(names(&s, "10.0.3.2"), Vec::<String>::new());
    let by_ns = snap("  groups:\n    jobs: {namespaces: [jobs]}\n    all: {selector: {}}\n");
    assert_eq!(names(&by_ns, "10.0.200.9"), ["jobs", "all"]);
    assert_eq!(names(&by_ns, "10.0.1.5"), ["all"]);
}

#[test]
fn star_matches_unknown_addresses() {
    let s = snap(&format!(
        "  mode: protect\n  defaultAction: deny\n{GROUPS}  rules:\n    - {{id: public, from: [\"*\"], to: [web], ports: [443], action: allow}}\n    - {{id: out, from: [web], to: [\"*\"], action: allow}}\n"
    ));
    let d = s.judge_flow(
        &Endpoint::UNKNOWN,
        &ep(&s, "10.0.1.5"),
        443,
        Transport::Tcp,
        None,
    );
    assert_eq!(
        (d.action, rule_of(&s, &d)),
        (Action::Allow, "public".into())
    );
    assert_eq!(d.src_group, None);
    assert_eq!(d.dst_group, s.group_by_name("web"));
    let d = s.judge_flow(
        &ep(&s, "10.0.1.5"),
        &Endpoint::UNKNOWN,
        53,
        Transport::Udp,
        None,
    );
    assert_eq!((d.action, rule_of(&s, &d)), (Action::Allow, "out".into()));
    assert_eq!(d.src_group, s.group_by_name("web"));
}

#[test]
fn app_tentative_admission_and_transport() {
    let s = snap(&format!(
        "  mode: protect\n  defaultAction: deny\n{GROUPS}  rules:
    - {{id: web-api, from: [web], to: [api], ports: [8080], app: http, action: allow}}
    - {{id: no-redis, from: [\"*\"], to: [api], app: redis, action: deny}}
    - {{id: dns, from: [web], to: [internal], ports: [53], app: dns, action: allow}}
    - {{id: raw-tcp, from: [web], to: [db], app: tcp, action: deny}}
    - {{id: web-db, from: [web], to: [db], app: postgres, action: allow}}
"
    ));
    let t = |port, tr, app| judge(&s, "10.0.1.5", "10.0.2.7", port, tr, app);
    let allowed = |d: control::Decision| (d.action, rule_of(&s, &d));
    // At the SYN the allow rule admits tentatively; the redis deny waits.
    assert_eq!(
        allowed(t(8080, Transport::Tcp, None)),
        (Action::Allow, "web-api".into())
    );
    assert_eq!(
        allowed(t(8080, Transport::Tcp, Some(AppProto::Http))),
        (Action::Allow, "web-api".into())
    );
    // `http` covers HTTP/2 but not gRPC.
    assert_eq!(
        allowed(t(8080, Transport::Tcp, Some(AppProto::Http2))),
        (Action::Allow, "web-api".into())
    );
    assert_eq!(
        allowed(t(8080, Transport::Tcp, Some(AppProto::Grpc))),
        (Action::Deny, "default".into())
    );
    // Classified as something else: the allow no longer covers it.
    assert_eq!(
        allowed(t(8080, Transport::Tcp, Some(AppProto::Tcp))),
        (Action::Deny, "default".into())
    );
    // Redis on any port: the specific deny applies once classified.
    assert_eq!(
        allowed(t(8080, Transport::Tcp, Some(AppProto::Redis))),
        (Action::Deny, "no-redis".into())
    );
    // http needs TCP.
    assert_eq!(
        allowed(t(8080, Transport::Udp, None)),
        (Action::Deny, "default".into())
    );
    // dns: UDP or TCP, not ICMP.
    let d = |tr, app| judge(&s, "10.0.1.5", "10.9.9.9", 53, tr, app);
    assert_eq!(
        allowed(d(Transport::Udp, None)),
        (Action::Allow, "dns".into())
    );
    assert_eq!(
        allowed(d(Transport::Tcp, Some(AppProto::Dns))),
        (Action::Allow, "dns".into())
    );
    assert_eq!(allowed(d(Transport::Icmp, None)).0, Action::Deny);
    // `tcp` deny applies at once, and to every TCP app.
    let db = |app| judge(&s, "10.0.1.5", "10.0.3.1", 5432, Transport::Tcp, app);
    assert_eq!(allowed(db(None)), (Action::Deny, "raw-tcp".into()));
    assert_eq!(
        allowed(db(Some(AppProto::Postgres))),
        (Action::Deny, "raw-tcp".into())
    );
    // ...but not to UDP.
    let d = judge(&s, "10.0.1.5", "10.0.3.1", 5432, Transport::Udp, None);
    assert_eq!(rule_of(&s, &d), "default");
}

#[test]
fn ports_and_icmp() {
    let s = snap(&format!(
        "  mode: protect\n  defaultAction: deny\n{GROUPS}  rules:
    - {{id: range, from: [web], to: [api], ports: [\"8000-8100\", 9443], action: allow}}
    - {{id: ping, from: [web], to: [db], action: allow}}
"
    ));
    let port = |p, tr| rule_of(&s, &judge(&s, "10.0.1.5", "10.0.2.7", p, tr, None));
    assert_eq!(port(8000, Transport::Tcp), "range");
    assert_eq!(port(8100, Transport::Udp), "range");
    assert_eq!(port(9443, Transport::Tcp), "range");
    assert_eq!(port(8101, Transport::Tcp), "default");
    assert_eq!(port(7999, Transport::Tcp), "default");
    // Rules with ports never match ICMP, whatever the "port" value.
    assert_eq!(port(8000, Transport::Icmp), "default");
    assert_eq!(port(8000, Transport::Other(47)), "default");
    // Rules without ports ignore it.
    let d = judge(&s, "10.0.1.5", "10.0.3.1", 0, Transport::Icmp, None);
    assert_eq!(rule_of(&s, &d), "ping");
    assert_eq!(Transport::from_ip_proto(58), Transport::Icmp);
    assert_eq!(Transport::from_ip_proto(132), Transport::Other(132));
}

#[test]
fn l7_rules_at_l4() {
    let s = snap(&format!(
        "  mode: protect\n  defaultAction: deny\n{GROUPS}  rules:
    - {{id: api-get, from: [web], to: [api], app: http, http: [{{methods: [GET], paths: [\"/api/*\"]}}], action: allow}}
    - {{id: redis-ok, from: [web], to: [cache], app: redis, action: allow}}
    - {{id: no-flush, from: [\"*\"], to: [cache], app: redis, redis: [{{commands: [FLUSHALL]}}], action: deny, capture: true, severity: critical}}
"
    ));
    let d = judge(
        &s,
        "10.0.1.5",
        "10.0.2.7",
        80,
        Transport::Tcp,
        Some(AppProto::Http),
    );
    assert_eq!((d.action, d.l7_constrained), (Action::Allow, true));
    assert_eq!(rule_of(&s, &d), "api-get");
    let r = s.rule(d.rule.unwrap()).unwrap();
    assert!(matches!(r.l7(), Some(control::model::L7Matchers::Http(m)) if m.len() == 1));
    // The L7 deny does not cut the flow, but its capture applies from the start.
    let d = judge(
        &s,
        "10.0.1.5",
        "10.0.4.1",
        6379,
        Transport::Tcp,
        Some(AppProto::Redis),
    );
    assert_eq!(
        (d.action, d.l7_constrained, d.capture),
        (Action::Allow, false, true)
    );
    assert_eq!(rule_of(&s, &d), "redis-ok");
    // The L7 stage can list the rules whose matchers apply to the flow.
    let mut seen = Vec::new();
    s.for_each_matching_rule(
        &ep(&s, "10.0.1.5"),
        &ep(&s, "10.0.4.1"),
        6379,
        Transport::Tcp,
        Some(AppProto::Redis),
        |id, r| seen.push((s.rule_name(id).to_owned(), r.has_l7())),
    );
    assert_eq!(
        seen,
        [
            ("redis-ok".to_owned(), false),
            ("no-flush".to_owned(), true)
        ]
    );
    // No allow for an unknown source: default, capture still set by no-flush.
    let d = s.judge_flow(
        &Endpoint::UNKNOWN,
        &ep(&s, "10.0.4.1"),
        6379,
        Transport::Tcp,
        Some(AppProto::Redis),
    );
    assert_eq!((d.action, d.rule, d.capture), (Action::Deny, None, true));
}

#[test]
fn decision_names_the_groups_the_rule_named() {
    let s = snap(
        "  groups:
    all: {selector: {}}
    web: {selector: {app: web}}
    shop: {namespaces: [shop]}
  rules:
    - {id: r, from: [shop], to: [shop], action: allow}
",
    );
    let d = judge(&s, "10.0.1.5", "10.0.2.7", 1, Transport::Tcp, None);
    let g = |n: &str| s.group_by_name(n);
    assert_eq!((d.src_group, d.dst_group), (g("shop"), g("shop")));
    // Default decisions name the endpoints' first groups.
    let d = judge(&s, "10.0.200.9", "10.0.2.7", 1, Transport::Tcp, None);
    assert_eq!(d.rule, None);
    assert_eq!((d.src_group, d.dst_group), (g("all"), g("all")));
    assert_eq!(
        s.groups_of(&ep(&s, "10.0.1.5")),
        [GroupId(0), GroupId(1), GroupId(2)]
    );
}

#[test]
fn stale_endpoints_and_ids_do_not_panic() {
    let big = snap(&format!("  mode: monitor\n{GROUPS}"));
    let small = snap("  mode: monitor\n  groups: {}\n");
    let e = ep(&big, "10.0.3.1");
    assert!(small.groups_of(&e).is_empty());
    let w = small.workload(control::WorkloadId(u32::MAX));
    assert_eq!(&*w.name, "unknown");
    assert_eq!(small.group_name(GroupId(999)), "unknown");
    assert_eq!(small.rule_name(control::RuleId(5)), "unknown");
    let d = small.judge_flow(&e, &e, 1, Transport::Tcp, None);
    assert_eq!(d.action, Action::Alert);
}

#[test]
fn snapshot_metadata() {
    let s = snap(&format!(
        "  mode: monitor\n{GROUPS}  rules:\n    - {{id: a, from: [web], to: [api], action: allow}}\n"
    ));
    assert_eq!(s.version(), 7);
    assert_eq!(s.name(), "t");
    assert_eq!(s.rule_count(), 1);
    assert_eq!(s.mode(), Mode::Monitor);
    assert_eq!(s.group_count(), 6);
    assert_eq!(s.workload_count(), 7);
    assert_eq!(Action::Alert.as_str(), "alert");
    assert_eq!(Mode::Learn.as_str(), "learn");
    assert_eq!(Severity::Critical.as_str(), "critical");
    assert!(Severity::Critical > Severity::High);
}

#[test]
fn uninspectable_follows_the_mode_unless_the_policy_or_a_group_says() {
    use control::{OnUninspectable, Uninspectable};
    let rules = "  rules:\n    - {id: web-api, from: [web], to: [api], ports: [8080], app: http, http: [{paths: [/api/*]}], action: allow}\n";
    // Defaults: protect denies (enforced), monitor alerts, learn allows.
    for (mode, want, enforce) in [
        ("protect", Action::Deny, true),
        ("monitor", Action::Alert, false),
        ("learn", Action::Allow, false),
    ] {
        let s = snap(&format!("  mode: {mode}\n{GROUPS}{rules}"));
        let d = s.judge_uninspectable(
            &ep(&s, "10.0.1.5"),
            &ep(&s, "10.0.2.7"),
            Uninspectable::ParserLimit,
        );
        assert_eq!((d.action, d.enforce), (want, enforce), "{mode}");
        assert_eq!(d.uninspectable, Some(Uninspectable::ParserLimit));
        assert_eq!(d.rule, None);
        assert_eq!(s.group_name(d.dst_group.unwrap()), "api");
    }
    // spec.onUninspectable, then a group override (destination first, then source).
    let groups = GROUPS.replace(
        "api: {selector: {app: api}}",
        "api: {selector: {app: api}, onUninspectable: allow}",
    );
    let s = snap(&format!("  onUninspectable: alert\n{groups}{rules}"));
    let (web, api, db) = (ep(&s, "10.0.1.5"), ep(&s, "10.0.2.7"), ep(&s, "10.0.3.1"));
    assert_eq!(s.on_uninspectable(&web, &api), OnUninspectable::Allow);
    assert_eq!(s.on_uninspectable(&web, &db), OnUninspectable::Alert);
    assert_eq!(s.on_uninspectable(&api, &db), OnUninspectable::Allow);
    let d = s.judge_uninspectable(&web, &db, Uninspectable::Gap);
    assert_eq!((d.action, d.enforce), (Action::Alert, false));
    // A monitor group softens a deny as it softens any.
    let groups = GROUPS.replace(
        "api: {selector: {app: api}}",
        "api: {selector: {app: api}, mode: monitor, onUninspectable: deny}",
    );
    let s = snap(&format!("{groups}{rules}"));
    let d = s.judge_uninspectable(&web, &ep(&s, "10.0.2.7"), Uninspectable::Gap);
    assert_eq!(
        (d.action, d.enforce, d.mode),
        (Action::Deny, false, Mode::Monitor)
    );
}

#[test]
fn a_flow_is_governed_where_rules_read_its_protocol() {
    let s = snap(&format!(
        "{GROUPS}  rules:
    - {{id: web-api, from: [web], to: [api], ports: [8080], action: allow}}
    - {{id: no-admin, from: [\"*\"], to: [api], ports: [8080], app: http, http: [{{paths: [/admin]}}], action: deny}}
    - {{id: web-db, from: [web], to: [db], ports: [5432], app: postgres, action: allow}}
    - {{id: web-cache, from: [web], to: [cache], action: allow}}
"
    ));
    let g = |dst: &str, port: u16, app: Option<AppProto>| {
        s.l7_governed(&ep(&s, "10.0.1.5"), &ep(&s, dst), port, Transport::Tcp, app)
    };
    // An HTTP deny rule governs HTTP (and not yet classified) flows to api:8080...
    assert!(g("10.0.2.7", 8080, None));
    assert!(g("10.0.2.7", 8080, Some(AppProto::Http)));
    assert!(g("10.0.2.7", 8080, Some(AppProto::Http2)));
    // ... and bytes no detector recognised there (HTTP detection may have been dodged).
    assert!(g("10.0.2.7", 8080, Some(AppProto::Tcp)));
    // Not Redis on that port (the HTTP rule cannot judge it), nor another port.
    assert!(!g("10.0.2.7", 8080, Some(AppProto::Redis)));
    assert!(!g("10.0.2.7", 9090, Some(AppProto::Tcp)));
    // A rule naming postgres without matchers: unrecognised bytes matter, postgres
    // itself has nothing the rule would read.
    assert!(g("10.0.3.1", 5432, Some(AppProto::Tcp)));
    assert!(!g("10.0.3.1", 5432, Some(AppProto::Postgres)));
    // Plain L4 rules govern nothing at L7.
    assert!(!g("10.0.4.1", 6379, Some(AppProto::Tcp)));
    assert!(!g("10.0.4.1", 6379, None));
}
