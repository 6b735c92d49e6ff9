//! Property tests of the policy semantics (PRODUCT.md, `control`'s crate docs): random
//! small policies are written as YAML, loaded and compiled, and every flow's decision is
//! compared with a tiny reference evaluator over this file's own typed model of the
//! policy, which reads the rules one by one exactly as the documentation states them.
//!
//! - `compiled_matches_reference`: every field of every decision;
//! - `order_does_not_matter`: shuffling the rules and the groups;
//! - `deny_wins`: adding a deny that matches a flow to any policy;
//! - `mode_falls_through`: destination group's mode, else source's, else the spec's;
//! - `longest_prefix_wins_v4` / `_v6`: nested workload and group CIDRs.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use control::{
    Action, Decision, Mode, PolicySnapshot, Severity, Transport, compile, load_inventory_str,
    load_policy_str,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proto_parsers::AppProto;

// ---------------------------------------------------------------------------------------
// The typed model
// ---------------------------------------------------------------------------------------

const NAMESPACES: [&str; 2] = ["n0", "n1"];
const APP_LABELS: [&str; 3] = ["a", "b", "c"];

/// The CIDRs groups pick from: some hold workloads (which keep their own addresses),
/// some hold only outside addresses, nested and not.
const GROUP_CIDRS: [&str; 8] = [
    "10.0.0.0/24",
    "10.0.0.128/25",
    "192.168.0.0/16",
    "192.168.1.0/24",
    "0.0.0.0/0",
    "fd00::/64",
    "fd00::80/121",
    "::/0",
];

/// Addresses flows come from or go to, beyond the workloads' own.
const OUTSIDE: [&str; 6] = [
    "10.0.0.200",
    "192.168.1.1",
    "192.168.7.7",
    "8.8.8.8",
    "fd00::ff",
    "2001:db8::1",
];

const PORTS: [u16; 9] = [53, 80, 81, 443, 1500, 5432, 6379, 8080, 9999];

#[derive(Clone, Debug)]
struct GroupSpec {
    /// `app` label value this group selects, if it selects by label.
    label: Option<usize>,
    /// Namespace it is restricted to, if any.
    namespace: Option<usize>,
    /// Indices into GROUP_CIDRS.
    cidrs: Vec<usize>,
    mode: Option<Mode>,
}

#[derive(Clone, Debug)]
struct WorkloadSpec {
    namespace: usize,
    label: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum PeerSpec {
    Any,
    /// Group indices (declaration order of the unshuffled policy).
    Groups(Vec<usize>),
}

#[derive(Clone, Debug)]
struct RuleSpec {
    id: String,
    from: PeerSpec,
    to: PeerSpec,
    /// Inclusive ranges; empty = any port.
    ports: Vec<(u16, u16)>,
    app: Option<AppProto>,
    /// L7 matchers (HTTP methods or Redis commands, by `app`).
    l7: bool,
    action: Action,
    capture: bool,
    severity: Option<Severity>,
}

#[derive(Clone, Debug)]
struct PolicySpec {
    mode: Mode,
    default_deny: bool,
    groups: Vec<GroupSpec>,
    workloads: Vec<WorkloadSpec>,
    rules: Vec<RuleSpec>,
}

#[derive(Clone, Copy, Debug)]
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    transport: Transport,
    app: Option<AppProto>,
}

fn workload_v4(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
}

fn workload_v6(i: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1 + i as u16))
}

fn group_name(i: usize) -> String {
    format!("g{i}")
}

fn mode_str(m: Mode) -> &'static str {
    m.as_str()
}

// ---------------------------------------------------------------------------------------
// Rendering to YAML
// ---------------------------------------------------------------------------------------

fn inventory_yaml(p: &PolicySpec) -> String {
    let mut s = String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
    for (i, w) in p.workloads.iter().enumerate() {
        writeln!(
            s,
            "  - {{name: w{i}, namespace: {}, labels: {{app: {}}}, ips: [\"{}\", \"{}\"]}}",
            NAMESPACES[w.namespace],
            APP_LABELS[w.label],
            workload_v4(i),
            workload_v6(i)
        )
        .unwrap();
    }
    if p.workloads.is_empty() {
        s = String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads: []\n");
    }
    s
}

/// The policy with its groups declared in `group_order` (indices into `p.groups`).
fn policy_yaml(p: &PolicySpec, group_order: &[usize]) -> String {
    let mut s = format!(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {{name: prop}}\nspec:\n  mode: {}\n  defaultAction: {}\n  groups:\n",
        mode_str(p.mode),
        if p.default_deny { "deny" } else { "allow" }
    );
    for &gi in group_order {
        let g = &p.groups[gi];
        let mut fields = Vec::new();
        if let Some(l) = g.label {
            fields.push(format!("selector: {{app: {}}}", APP_LABELS[l]));
        }
        if let Some(n) = g.namespace {
            fields.push(format!("namespaces: [{}]", NAMESPACES[n]));
        }
        if !g.cidrs.is_empty() {
            let list: Vec<String> = g
                .cidrs
                .iter()
                .map(|&c| format!("\"{}\"", GROUP_CIDRS[c]))
                .collect();
            fields.push(format!("cidrs: [{}]", list.join(", ")));
        }
        if let Some(m) = g.mode {
            fields.push(format!("mode: {}", mode_str(m)));
        }
        writeln!(s, "    {}: {{{}}}", group_name(gi), fields.join(", ")).unwrap();
    }
    if p.rules.is_empty() {
        s.push_str("  rules: []\n");
        return s;
    }
    s.push_str("  rules:\n");
    let peer = |peer: &PeerSpec| match peer {
        PeerSpec::Any => "[\"*\"]".to_owned(),
        PeerSpec::Groups(gs) => format!(
            "[{}]",
            gs.iter()
                .map(|&g| group_name(g))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    for r in &p.rules {
        let mut line = format!(
            "    - {{id: {}, from: {}, to: {}",
            r.id,
            peer(&r.from),
            peer(&r.to)
        );
        if !r.ports.is_empty() {
            let list: Vec<String> = r
                .ports
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("\"{a}-{b}\"")
                    }
                })
                .collect();
            write!(line, ", ports: [{}]", list.join(", ")).unwrap();
        }
        if let Some(app) = r.app {
            write!(line, ", app: {}", app.as_str()).unwrap();
            if r.l7 {
                match app {
                    AppProto::Http => line.push_str(", http: [{methods: [GET]}]"),
                    AppProto::Redis => line.push_str(", redis: [{commands: [FLUSHALL]}]"),
                    _ => {}
                }
            }
        }
        write!(line, ", action: {}", r.action.as_str()).unwrap();
        if r.capture {
            line.push_str(", capture: true");
        }
        if let Some(sev) = r.severity {
            write!(line, ", severity: {}", sev.as_str()).unwrap();
        }
        line.push('}');
        writeln!(s, "{line}").unwrap();
    }
    s
}

fn compile_spec(p: &PolicySpec, group_order: &[usize]) -> PolicySnapshot {
    let pol = policy_yaml(p, group_order);
    let inv = inventory_yaml(p);
    let loaded = load_policy_str(&pol, "prop.yaml")
        .unwrap_or_else(|e| panic!("generated policy loads: {e}\n{pol}"));
    let inventory = load_inventory_str(&inv, "prop-inventory.yaml")
        .unwrap_or_else(|e| panic!("generated inventory loads: {e}\n{inv}"));
    compile(&loaded.policy, &inventory, 1)
        .unwrap_or_else(|e| panic!("generated policy compiles: {e}\n{pol}"))
}

// ---------------------------------------------------------------------------------------
// The reference evaluator
// ---------------------------------------------------------------------------------------

/// An address as the model sees it: a workload, or the groups whose CIDRs hold it.
#[derive(Clone, Debug, PartialEq)]
enum Resolved {
    Workload(usize),
    Outside(Vec<usize>),
}

fn net_contains(net: &str, a: IpAddr) -> bool {
    let net: ipnet::IpNet = net.parse().unwrap();
    net.contains(&a)
}

fn is_workload_addr(p: &PolicySpec, a: IpAddr) -> Option<usize> {
    (0..p.workloads.len()).find(|&i| workload_v4(i) == a || workload_v6(i) == a)
}

fn resolve_ref(p: &PolicySpec, a: IpAddr) -> Resolved {
    if let Some(w) = is_workload_addr(p, a) {
        return Resolved::Workload(w);
    }
    // Workloads here are host addresses: every group CIDR of this model is wider, so an
    // address outside the workloads is in every group CIDR that holds it.
    let groups = (0..p.groups.len())
        .filter(|&g| {
            p.groups[g]
                .cidrs
                .iter()
                .any(|&c| net_contains(GROUP_CIDRS[c], a))
        })
        .collect();
    Resolved::Outside(groups)
}

/// The endpoint's groups, in the given declaration order.
fn groups_of(p: &PolicySpec, r: &Resolved, order: &[usize]) -> Vec<usize> {
    order
        .iter()
        .copied()
        .filter(|&g| match r {
            Resolved::Workload(w) => {
                let (gs, ws) = (&p.groups[g], &p.workloads[*w]);
                (gs.label.is_some() || gs.namespace.is_some())
                    && gs.label.is_none_or(|l| l == ws.label)
                    && gs.namespace.is_none_or(|n| n == ws.namespace)
            }
            Resolved::Outside(gs) => gs.contains(&g),
        })
        .collect()
}

fn peer_matches(peer: &PeerSpec, have: &[usize]) -> bool {
    match peer {
        PeerSpec::Any => true,
        PeerSpec::Groups(gs) => gs.iter().any(|g| have.contains(g)),
    }
}

/// Whether `rule` applies to the flow at L4, as the crate docs state it.
fn rule_matches(r: &RuleSpec, sg: &[usize], dg: &[usize], f: &Flow) -> bool {
    if !peer_matches(&r.from, sg) || !peer_matches(&r.to, dg) {
        return false;
    }
    if !r.ports.is_empty() {
        let tcp_udp = matches!(f.transport, Transport::Tcp | Transport::Udp);
        if !tcp_udp || !r.ports.iter().any(|&(a, b)| a <= f.port && f.port <= b) {
            return false;
        }
    }
    let Some(want) = r.app else {
        return true;
    };
    // `app` implies the transport.
    let transport_ok = match want {
        AppProto::Udp => f.transport == Transport::Udp,
        AppProto::Dns => matches!(f.transport, Transport::Udp | Transport::Tcp),
        _ => f.transport == Transport::Tcp,
    };
    let app_ok = match f.app {
        // Before classification: tcp/udp rules know enough; allow rules admit
        // tentatively; deny/alert rules for a protocol wait.
        None => matches!(want, AppProto::Tcp | AppProto::Udp) || r.action == Action::Allow,
        Some(got) => {
            want == got
                || matches!(want, AppProto::Tcp | AppProto::Udp)
                || (want == AppProto::Http && got == AppProto::Http2)
        }
    };
    transport_ok && app_ok
}

/// The mode: the destination's first group (declaration order) with one, else the
/// source's, else the spec's.
fn mode_ref(p: &PolicySpec, sg: &[usize], dg: &[usize]) -> Mode {
    dg.iter()
        .chain(sg)
        .find_map(|&g| p.groups[g].mode)
        .unwrap_or(p.mode)
}

/// The decision with rules and groups named, so that decisions of differently ordered
/// policies compare.
#[derive(Clone, Debug, PartialEq)]
struct Named {
    action: Action,
    rule: Option<String>,
    mode: Mode,
    enforce: bool,
    severity: Severity,
    capture: bool,
    l7_constrained: bool,
    src_group: Option<String>,
    dst_group: Option<String>,
}

fn reference(p: &PolicySpec, order: &[usize], f: &Flow) -> Named {
    let sg = groups_of(p, &resolve_ref(p, f.src), order);
    let dg = groups_of(p, &resolve_ref(p, f.dst), order);
    let mut capture = false;
    // deny, alert, allow, allow with L7 matchers: the first matching rule of each.
    let mut best: [Option<&RuleSpec>; 4] = [None; 4];
    for r in p.rules.iter().filter(|r| rule_matches(r, &sg, &dg, f)) {
        capture |= r.capture;
        let kind = match (r.action, r.l7) {
            (Action::Deny, false) => 0,
            (Action::Alert, false) => 1,
            (Action::Allow, false) => 2,
            (Action::Allow, true) => 3,
            // Judges transactions, not flows.
            (Action::Deny | Action::Alert, true) => continue,
        };
        best[kind].get_or_insert(r);
    }
    let mode = mode_ref(p, &sg, &dg);
    let first_named = |peer: &PeerSpec, have: &[usize]| {
        let g = match peer {
            PeerSpec::Any => have.first(),
            PeerSpec::Groups(gs) => have.iter().find(|g| gs.contains(g)).or(have.first()),
        };
        g.map(|&g| group_name(g))
    };
    match best.iter().position(Option::is_some) {
        Some(kind) => {
            let r = best[kind].unwrap();
            let severity = r.severity.unwrap_or(match r.action {
                Action::Deny => Severity::High,
                Action::Alert => Severity::Medium,
                Action::Allow => Severity::Low,
            });
            Named {
                action: r.action,
                rule: Some(r.id.clone()),
                mode,
                enforce: r.action == Action::Deny && mode == Mode::Protect,
                severity,
                capture,
                l7_constrained: kind == 3,
                src_group: first_named(&r.from, &sg),
                dst_group: first_named(&r.to, &dg),
            }
        }
        None => {
            let (action, enforce, severity) = match (mode, p.default_deny) {
                (Mode::Protect, true) => (Action::Deny, true, Severity::High),
                (Mode::Protect, false) | (Mode::Learn, _) => (Action::Allow, false, Severity::Low),
                (Mode::Monitor, _) => (Action::Alert, false, Severity::Medium),
            };
            Named {
                action,
                rule: None,
                mode,
                enforce,
                severity,
                capture,
                l7_constrained: false,
                src_group: sg.first().map(|&g| group_name(g)),
                dst_group: dg.first().map(|&g| group_name(g)),
            }
        }
    }
}

fn named(s: &PolicySnapshot, d: &Decision) -> Named {
    Named {
        action: d.action,
        rule: d.rule.map(|r| s.rule_name(r).to_owned()),
        mode: d.mode,
        enforce: d.enforce,
        severity: d.severity,
        capture: d.capture,
        l7_constrained: d.l7_constrained,
        src_group: d.src_group.map(|g| s.group_name(g).to_owned()),
        dst_group: d.dst_group.map(|g| s.group_name(g).to_owned()),
    }
}

fn judge(s: &PolicySnapshot, f: &Flow) -> Named {
    let (src, dst) = (s.resolve(f.src), s.resolve(f.dst));
    named(s, &s.judge_flow(&src, &dst, f.port, f.transport, f.app))
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Learn), Just(Mode::Monitor), Just(Mode::Protect)]
}

fn group() -> impl Strategy<Value = GroupSpec> {
    (
        proptest::option::weighted(0.7, 0..APP_LABELS.len()),
        proptest::option::weighted(0.3, 0..NAMESPACES.len()),
        proptest::collection::vec(0..GROUP_CIDRS.len(), 0..3),
        proptest::option::weighted(0.4, mode()),
    )
        .prop_map(|(mut label, namespace, mut cidrs, mode)| {
            cidrs.sort_unstable();
            cidrs.dedup();
            // A group must select something.
            if label.is_none() && namespace.is_none() && cidrs.is_empty() {
                label = Some(0);
            }
            GroupSpec {
                label,
                namespace,
                cidrs,
                mode,
            }
        })
}

fn workload() -> impl Strategy<Value = WorkloadSpec> {
    (0..NAMESPACES.len(), 0..APP_LABELS.len())
        .prop_map(|(namespace, label)| WorkloadSpec { namespace, label })
}

fn peer(groups: usize) -> impl Strategy<Value = PeerSpec> {
    prop_oneof![
        1 => Just(PeerSpec::Any),
        4 => proptest::collection::vec(0..groups, 1..3).prop_map(|mut gs| {
            gs.sort_unstable();
            gs.dedup();
            PeerSpec::Groups(gs)
        }),
    ]
}

fn ports() -> impl Strategy<Value = Vec<(u16, u16)>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => proptest::sample::select(PORTS.to_vec()).prop_map(|p| vec![(p, p)]),
        1 => Just(vec![(79, 81)]),
        1 => Just(vec![(1000, 2000), (8080, 8080)]),
        1 => Just(vec![(53, 53), (443, 6379)]),
    ]
}

fn rule_app() -> impl Strategy<Value = Option<AppProto>> {
    proptest::option::weighted(
        0.6,
        proptest::sample::select(vec![
            AppProto::Http,
            AppProto::Grpc,
            AppProto::Postgres,
            AppProto::Redis,
            AppProto::Dns,
            AppProto::Tls,
            AppProto::Tcp,
            AppProto::Udp,
        ]),
    )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::Allow),
        2 => Just(Action::Deny),
        1 => Just(Action::Alert),
    ]
}

fn severity() -> impl Strategy<Value = Option<Severity>> {
    proptest::option::weighted(
        0.3,
        prop_oneof![
            Just(Severity::Low),
            Just(Severity::Medium),
            Just(Severity::High),
            Just(Severity::Critical),
        ],
    )
}

fn rule(groups: usize) -> impl Strategy<Value = RuleSpec> {
    (
        peer(groups),
        peer(groups),
        ports(),
        rule_app(),
        any::<bool>(),
        action(),
        proptest::bool::weighted(0.2),
        severity(),
    )
        .prop_map(
            |(from, to, ports, app, l7, action, capture, severity)| RuleSpec {
                id: String::new(),
                from,
                to,
                ports,
                app,
                // L7 matchers only where the model renders them.
                l7: l7 && matches!(app, Some(AppProto::Http | AppProto::Redis)),
                action,
                capture,
                severity,
            },
        )
}

fn policy() -> impl Strategy<Value = PolicySpec> {
    (1usize..6).prop_flat_map(|n_groups| {
        (
            mode(),
            any::<bool>(),
            proptest::collection::vec(group(), n_groups),
            proptest::collection::vec(workload(), 0..6),
            proptest::collection::vec(rule(n_groups), 0..10),
        )
            .prop_map(|(mode, default_deny, groups, workloads, mut rules)| {
                for (i, r) in rules.iter_mut().enumerate() {
                    r.id = format!("r{i}");
                }
                PolicySpec {
                    mode,
                    default_deny,
                    groups,
                    workloads,
                    rules,
                }
            })
    })
}

fn address() -> impl Strategy<Value = (bool, usize, bool)> {
    // (a workload's, which, IPv6) — an index is reduced modulo what exists.
    (proptest::bool::weighted(0.6), 0usize..16, any::<bool>())
}

fn pick_addr(p: &PolicySpec, (workload, i, v6): (bool, usize, bool)) -> IpAddr {
    if workload && !p.workloads.is_empty() {
        let w = i % p.workloads.len();
        if v6 { workload_v6(w) } else { workload_v4(w) }
    } else {
        OUTSIDE[i % OUTSIDE.len()].parse().unwrap()
    }
}

type RawFlow = (
    (bool, usize, bool),
    (bool, usize, bool),
    u16,
    Transport,
    Option<AppProto>,
);

fn raw_flow() -> impl Strategy<Value = RawFlow> {
    (
        address(),
        address(),
        proptest::sample::select(PORTS.to_vec()),
        prop_oneof![
            3 => Just(Transport::Tcp),
            2 => Just(Transport::Udp),
            1 => Just(Transport::Icmp),
        ],
        proptest::option::weighted(
            0.5,
            proptest::sample::select(vec![
                AppProto::Http,
                AppProto::Http2,
                AppProto::Grpc,
                AppProto::Postgres,
                AppProto::Mysql,
                AppProto::Redis,
                AppProto::Dns,
                AppProto::Tls,
                AppProto::Tcp,
                AppProto::Udp,
            ]),
        ),
    )
}

fn flows(p: &PolicySpec, raw: &[RawFlow]) -> Vec<Flow> {
    raw.iter()
        .map(|&(s, d, port, transport, app)| Flow {
            src: pick_addr(p, s),
            dst: pick_addr(p, d),
            port,
            transport,
            app,
        })
        .collect()
}

fn identity(p: &PolicySpec) -> Vec<usize> {
    (0..p.groups.len()).collect()
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    // No persistence: a failure prints its minimal case; nothing is written to the tree.
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every field of every decision is what the documented semantics give.
    #[test]
    fn compiled_matches_reference(
        p in policy(),
        raw in proptest::collection::vec(raw_flow(), 32),
    ) {
        let order = identity(&p);
        let s = compile_spec(&p, &order);
        for f in flows(&p, &raw) {
            prop_assert_eq!(judge(&s, &f), reference(&p, &order, &f), "flow {:?}", f);
        }
    }

    /// Rule order never changes a verdict; group order never changes one either, except
    /// through the documented tie-break of the mode (the first group with a `mode`).
    #[test]
    fn order_does_not_matter(
        p in policy(),
        raw in proptest::collection::vec(raw_flow(), 32),
        rule_perm in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
    ) {
        let order = identity(&p);
        let base = compile_spec(&p, &order);
        // A permutation of the rules and one of the groups, both from the seed.
        let mut shuffled = p.clone();
        let mut seed = rule_perm | 1;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for i in (1..shuffled.rules.len()).rev() {
            let j = next(i + 1);
            shuffled.rules.swap(i, j);
        }
        let mut group_order = order.clone();
        for i in (1..group_order.len()).rev() {
            let j = next(i + 1);
            group_order.swap(i, j);
        }
        let other = compile_spec(&shuffled, &group_order);
        for f in flows(&p, &raw) {
            let (a, b) = (judge(&base, &f), judge(&other, &f));
            // What no order can change: whether and how a rule decides, and the capture.
            prop_assert_eq!(a.rule.is_some(), b.rule.is_some(), "flow {:?}", f);
            prop_assert_eq!(a.capture, b.capture, "flow {:?}", f);
            prop_assert_eq!(a.l7_constrained, b.l7_constrained, "flow {:?}", f);
            if a.rule.is_some() {
                prop_assert_eq!(a.action, b.action, "flow {:?}", f);
            }
            // The mode (and so a default verdict and `enforce`) too, unless the endpoint
            // is in groups whose modes disagree.
            let sg = groups_of(&p, &resolve_ref(&p, f.src), &order);
            let dg = groups_of(&p, &resolve_ref(&p, f.dst), &order);
            let modes = |gs: &[usize]| {
                let mut m: Vec<Mode> = gs.iter().filter_map(|&g| p.groups[g].mode).collect();
                m.dedup();
                m.len()
            };
            let unambiguous = modes(&dg) == 1 || (modes(&dg) == 0 && modes(&sg) <= 1);
            if unambiguous {
                prop_assert_eq!(a.mode, b.mode, "flow {:?}", f);
                prop_assert_eq!(a.action, b.action, "flow {:?}", f);
                prop_assert_eq!(a.enforce, b.enforce, "flow {:?}", f);
            }
            // And the shuffled policy is judged by the same semantics.
            prop_assert_eq!(b, reference(&shuffled, &group_order, &f), "flow {:?}", f);
        }
    }

    /// A deny that matches a flow makes it Deny whatever else allows it; flows it does
    /// not match keep their decision.
    #[test]
    fn deny_wins(
        p in policy(),
        raw in proptest::collection::vec(raw_flow(), 32),
        target in any::<Index>(),
        at in any::<Index>(),
        named_groups in any::<(bool, bool, bool)>(),
    ) {
        let order = identity(&p);
        let fs = flows(&p, &raw);
        let f = fs[target.index(fs.len())];
        let sg = groups_of(&p, &resolve_ref(&p, f.src), &order);
        let dg = groups_of(&p, &resolve_ref(&p, f.dst), &order);
        let (name_src, name_dst, with_port) = named_groups;
        let deny = RuleSpec {
            id: "injected-deny".into(),
            from: match sg.first() {
                Some(&g) if name_src => PeerSpec::Groups(vec![g]),
                _ => PeerSpec::Any,
            },
            to: match dg.first() {
                Some(&g) if name_dst => PeerSpec::Groups(vec![g]),
                _ => PeerSpec::Any,
            },
            ports: if with_port && matches!(f.transport, Transport::Tcp | Transport::Udp) {
                vec![(f.port, f.port)]
            } else {
                Vec::new()
            },
            app: None,
            l7: false,
            action: Action::Deny,
            capture: false,
            severity: None,
        };
        let mut with = p.clone();
        with.rules.insert(at.index(p.rules.len() + 1), deny.clone());
        let before = compile_spec(&p, &order);
        let after = compile_spec(&with, &order);
        for g in &fs {
            let gs = groups_of(&p, &resolve_ref(&p, g.src), &order);
            let gd = groups_of(&p, &resolve_ref(&p, g.dst), &order);
            let now = judge(&after, g);
            if rule_matches(&deny, &gs, &gd, g) {
                prop_assert_eq!(now.action, Action::Deny, "flow {:?}", g);
                prop_assert_eq!(now.enforce, now.mode == Mode::Protect, "flow {:?}", g);
            } else {
                prop_assert_eq!(now, judge(&before, g), "flow {:?}", g);
            }
        }
        prop_assert_eq!(judge(&after, &f).action, Action::Deny);
    }

    /// With no rule deciding, the mode is the destination's first group with a mode,
    /// else the source's, else `spec.mode`, and it alone gives the verdict.
    #[test]
    fn mode_falls_through(
        mut p in policy(),
        raw in proptest::collection::vec(raw_flow(), 32),
    ) {
        p.rules.clear();
        let order = identity(&p);
        let s = compile_spec(&p, &order);
        for f in flows(&p, &raw) {
            let sg = groups_of(&p, &resolve_ref(&p, f.src), &order);
            let dg = groups_of(&p, &resolve_ref(&p, f.dst), &order);
            let want = dg
                .iter()
                .find_map(|&g| p.groups[g].mode)
                .or_else(|| sg.iter().find_map(|&g| p.groups[g].mode))
                .unwrap_or(p.mode);
            let d = judge(&s, &f);
            prop_assert_eq!(d.mode, want, "flow {:?}", f);
            prop_assert_eq!(d.rule, None);
            let action = match (want, p.default_deny) {
                (Mode::Protect, true) => Action::Deny,
                (Mode::Protect, false) | (Mode::Learn, _) => Action::Allow,
                (Mode::Monitor, _) => Action::Alert,
            };
            prop_assert_eq!(d.action, action, "flow {:?}", f);
            prop_assert_eq!(d.enforce, action == Action::Deny, "flow {:?}", f);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Longest prefix
// ---------------------------------------------------------------------------------------

/// One level of a nest of prefixes around one base address: owned by a workload (as its
/// `cidrs`, or its one address for a host prefix) or by a group's `cidrs`.
#[derive(Clone, Debug)]
struct Level {
    len: u8,
    workload: bool,
    /// For a group level: which of two CIDR groups (a prefix may be in both).
    group: usize,
}

fn levels(max: u8) -> impl Strategy<Value = Vec<Level>> {
    proptest::collection::vec((0..=max, proptest::bool::weighted(0.4), 0usize..2), 1..7).prop_map(
        |raw| {
            let mut ls: Vec<Level> = raw
                .into_iter()
                .map(|(len, workload, group)| Level {
                    len,
                    workload,
                    group,
                })
                .collect();
            ls.sort_by_key(|l| l.len);
            ls.dedup_by_key(|l| l.len);
            ls
        },
    )
}

fn mask(len: u8, bits: u32) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(len))) >> (128 - bits)
    }
}

/// Checks `resolve` against the model for nested prefixes of `bits`-bit addresses.
fn check_nested(
    base: u128,
    levels: &[Level],
    queries: &[(u8, u128)],
    bits: u32,
    addr: impl Fn(u128) -> IpAddr,
) -> Result<(), TestCaseError> {
    let net = |len: u8| format!("{}/{len}", addr(base & mask(len, bits)));
    // Levels owned by workloads become workloads w0.. (label `x`), group levels the
    // CIDRs of groups g0/g1; g2 selects the workloads by label.
    let mut inv =
        String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
    let mut owners: Vec<(u8, Option<usize>, usize)> = Vec::new();
    let mut group_nets: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut workloads = 0;
    for l in levels {
        if l.workload {
            if u32::from(l.len) == bits {
                writeln!(
                    inv,
                    "  - {{name: w{workloads}, labels: {{app: x}}, ips: [\"{}\"]}}",
                    addr(base)
                )
                .unwrap();
            } else {
                writeln!(
                    inv,
                    "  - {{name: w{workloads}, labels: {{app: x}}, cidrs: [\"{}\"]}}",
                    net(l.len)
                )
                .unwrap();
            }
            owners.push((l.len, Some(workloads), 0));
            workloads += 1;
        } else {
            group_nets[l.group].push(format!("\"{}\"", net(l.len)));
            owners.push((l.len, None, l.group));
        }
    }
    if workloads == 0 {
        inv = String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads: []\n");
    }
    let mut pol = String::from(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: lpm}\nspec:\n  groups:\n",
    );
    for (g, nets) in group_nets.iter().enumerate() {
        if nets.is_empty() {
            writeln!(pol, "    g{g}: {{selector: {{app: none}}}}").unwrap();
        } else {
            writeln!(pol, "    g{g}: {{cidrs: [{}]}}", nets.join(", ")).unwrap();
        }
    }
    pol.push_str("    g2: {selector: {app: x}}\n  rules: []\n");
    let loaded = load_policy_str(&pol, "lpm.yaml").unwrap_or_else(|e| panic!("{e}\n{pol}"));
    let inventory =
        load_inventory_str(&inv, "lpm-inv.yaml").unwrap_or_else(|e| panic!("{e}\n{inv}"));
    let s = compile(&loaded.policy, &inventory, 1).unwrap_or_else(|e| panic!("{e}\n{pol}\n{inv}"));

    for &(keep, noise) in queries {
        // An address sharing the base's first `keep` bits, the rest random.
        let a = (base & mask(keep, bits)) | (noise & !mask(keep, bits) & mask(bits as u8, bits));
        let within = |len: u8| (a ^ base) & mask(len, bits) == 0;
        // The model: the longest workload prefix holding `a` wins; group prefixes count
        // only outside every workload prefix that holds them, and carry every group
        // whose CIDR holds them.
        let longest_workload = owners
            .iter()
            .filter(|(len, w, _)| w.is_some() && within(*len))
            .max_by_key(|(len, _, _)| *len);
        let group_levels: Vec<&(u8, Option<usize>, usize)> = owners
            .iter()
            .filter(|(len, w, _)| {
                w.is_none()
                    && within(*len)
                    && !owners.iter().any(|(wl, ww, _)| ww.is_some() && wl <= len)
            })
            .collect();
        let longest_group = group_levels.iter().map(|(len, _, _)| *len).max();
        let want: (Option<String>, Vec<String>) = match (longest_workload, longest_group) {
            (Some((wl, Some(w), _)), g) if g.is_none_or(|g| g < *wl) => {
                (Some(format!("w{w}")), vec!["g2".to_owned()])
            }
            (_, Some(glen)) => {
                let mut gs: Vec<String> = group_levels
                    .iter()
                    .filter(|(len, _, _)| *len <= glen)
                    .map(|(_, _, g)| format!("g{g}"))
                    .collect();
                gs.sort();
                gs.dedup();
                (None, gs)
            }
            _ => (None, Vec::new()),
        };
        let ep = s.resolve(addr(a));
        let got_workload = ep.workload.map(|w| s.workload(w).name.to_string());
        let got_groups: Vec<String> = s
            .groups_of(&ep)
            .iter()
            .map(|&g| s.group_name(g).to_owned())
            .collect();
        prop_assert_eq!(
            (got_workload, got_groups),
            want,
            "address {} with levels {:?}\n{}\n{}",
            addr(a),
            levels,
            pol,
            inv
        );
        if bits == 32 {
            // IPv4-mapped IPv6 resolves as the IPv4 address.
            if let IpAddr::V4(v4) = addr(a) {
                prop_assert_eq!(s.resolve(IpAddr::V6(v4.to_ipv6_mapped())), ep);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn longest_prefix_wins_v4(
        base in any::<u32>(),
        levels in levels(32),
        queries in proptest::collection::vec((0u8..=32, any::<u128>()), 24),
    ) {
        check_nested(u128::from(base), &levels, &queries, 32, |a| {
            IpAddr::V4(Ipv4Addr::from(a as u32))
        })?;
    }

    #[test]
    fn longest_prefix_wins_v6(
        base in any::<u128>(),
        levels in levels(128),
        queries in proptest::collection::vec((0u8..=128, any::<u128>()), 24),
    ) {
        // Keep clear of the IPv4-mapped range, which resolves as IPv4.
        let base = base | (1 << 127);
        check_nested(base, &levels, &queries, 128, |a| IpAddr::V6(Ipv6Addr::from(a)))?;
    }
}
