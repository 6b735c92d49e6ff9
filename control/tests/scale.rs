//! 10,000 workloads and 10,000 rules: the indexed `judge_flow` must agree with a plain
//! scan of every rule, for random flows.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use control::{
    Action, Decision, Endpoint, GroupId, Mode, PolicySnapshot, Severity, Transport, compile,
    load_inventory_str, load_policy_str,
};
use proto_parsers::AppProto;

/// xorshift64*: deterministic, dependency-free.
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
}

const WORKLOADS: u32 = 10_000;
const RULES: u32 = 10_000;
const TEAMS: u32 = 50;
const APPS: [&str; 9] = [
    "http", "grpc", "postgres", "mysql", "redis", "dns", "tls", "tcp", "udp",
];

fn workload_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 8) as u8, (i & 0xff) as u8, 1)
}

fn build() -> PolicySnapshot {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
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
    }
    for n in 0..5 {
        writeln!(pol, "    ns-{n}: {{namespaces: [ns-{n}]}}").unwrap();
        names.push(format!("ns-{n}"));
    }
    pol.push_str("    ext: {cidrs: [172.16.0.0/12]}\n    world: {cidrs: [0.0.0.0/0]}\n");
    names.push("ext".into());
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
        if rng.below(2) == 0 {
            let p = 1 + rng.below(1000) as u16;
            if rng.below(3) == 0 {
                write!(extra, ", ports: [\"{p}-{}\"]", p + 50).unwrap();
            } else {
                write!(extra, ", ports: [{p}, {}]", p + 7).unwrap();
            }
        }
        let app = if rng.below(2) == 0 {
            Some(*rng.pick(&APPS))
        } else {
            None
        };
        if let Some(a) = app {
            write!(extra, ", app: {a}").unwrap();
            if a == "http" && rng.below(2) == 0 {
                extra.push_str(", http: [{methods: [GET]}]");
            }
        }
        let action = *rng.pick(&["allow", "allow", "allow", "deny", "alert"]);
        if rng.below(10) == 0 {
            extra.push_str(", capture: true");
        }
        if rng.below(5) == 0 {
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
    let p = load_policy_str(&pol, "scale.yaml").unwrap();
    let i = load_inventory_str(&inv, "scale-inv.yaml").unwrap();
    compile(&p.policy, &i, 1).unwrap()
}

/// The semantics, evaluated by scanning every rule in order.
fn reference(
    s: &PolicySnapshot,
    src: &Endpoint,
    dst: &Endpoint,
    port: u16,
    t: Transport,
    app: Option<AppProto>,
) -> Decision {
    let (sg, dg) = (s.groups_of(src), s.groups_of(dst));
    let hits = |named: Option<&[GroupId]>, have: &[GroupId]| {
        named.is_none_or(|n| n.iter().any(|g| have.contains(g)))
    };
    let mut best: [Option<u32>; 4] = [None; 4]; // deny, alert, allow, allow+l7
    let mut capture = false;
    for i in 0..s.rule_count() as u32 {
        let r = s.rule(control::RuleId(i)).unwrap();
        if !hits(r.from_groups(), sg) || !hits(r.to_groups(), dg) {
            continue;
        }
        if !r.ports().is_empty()
            && (!matches!(t, Transport::Tcp | Transport::Udp)
                || !r.ports().iter().any(|&(a, b)| a <= port && port <= b))
        {
            continue;
        }
        if let Some(want) = r.app() {
            let transport_ok = match want {
                AppProto::Udp => t == Transport::Udp,
                AppProto::Dns => matches!(t, Transport::Udp | Transport::Tcp),
                _ => t == Transport::Tcp,
            };
            let app_ok = match app {
                None => {
                    matches!(want, AppProto::Tcp | AppProto::Udp) || r.action() == Action::Allow
                }
                Some(got) => {
                    want == got
                        || matches!(want, AppProto::Tcp | AppProto::Udp)
                        || (want == AppProto::Http && got == AppProto::Http2)
                }
            };
            if !transport_ok || !app_ok {
                continue;
            }
        }
        capture |= r.capture();
        let slot = match (r.action(), r.has_l7()) {
            (Action::Deny, false) => 0,
            (Action::Alert, false) => 1,
            (Action::Allow, false) => 2,
            (Action::Allow, true) => 3,
            _ => continue,
        };
        best[slot].get_or_insert(i);
    }
    let mode = dg
        .iter()
        .chain(sg)
        .find_map(|g| s.group_mode(*g))
        .unwrap_or(s.mode());
    let decided = best.iter().position(Option::is_some);
    match decided {
        Some(slot) => {
            let id = best[slot].unwrap();
            let r = s.rule(control::RuleId(id)).unwrap();
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
                rule: Some(control::RuleId(id)),
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

#[test]
fn index_agrees_with_full_scan() {
    let s = build();
    assert_eq!(s.rule_count(), RULES as usize);
    assert_eq!(s.workload_count(), WORKLOADS as usize);
    let mut rng = Rng(42);
    let addr = |rng: &mut Rng| -> IpAddr {
        match rng.below(10) {
            0 => IpAddr::V4(Ipv4Addr::new(172, 16, 1, rng.below(255) as u8)),
            1 => IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
            _ => IpAddr::V4(workload_ip(rng.below(u64::from(WORKLOADS)) as u32)),
        }
    };
    let apps = [
        None,
        Some(AppProto::Http),
        Some(AppProto::Http2),
        Some(AppProto::Grpc),
        Some(AppProto::Postgres),
        Some(AppProto::Redis),
        Some(AppProto::Dns),
        Some(AppProto::Tcp),
        Some(AppProto::Udp),
    ];
    let mut decided_by_rule = 0;
    for _ in 0..2_000 {
        let (src, dst) = (s.resolve(addr(&mut rng)), s.resolve(addr(&mut rng)));
        let port = 1 + rng.below(1100) as u16;
        let t = *rng.pick(&[
            Transport::Tcp,
            Transport::Tcp,
            Transport::Udp,
            Transport::Icmp,
        ]);
        let app = *rng.pick(&apps);
        let got = s.judge_flow(&src, &dst, port, t, app);
        let want = reference(&s, &src, &dst, port, t, app);
        assert_eq!(got, want, "port {port} {t:?} {app:?}");
        decided_by_rule += usize::from(got.rule.is_some());
    }
    // The random policy must exercise rules, not only defaults.
    assert!(decided_by_rule > 500, "{decided_by_rule}");
}
