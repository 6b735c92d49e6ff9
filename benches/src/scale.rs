//! A policy at the scale of a large cluster: N workloads over 50 teams, 200 services and 5
//! namespaces, and M random rules between those groups, CIDR groups and `*`, with ports,
//! ranges, apps and actions mixed. The same recipe as control's own scale test
//! (control/tests/scale.rs), so the bench measures the policy that test proves correct.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use control::{PolicySnapshot, Transport, compile, load_inventory_str, load_policy_str};
use traffic_gen::generate::Rng;

const TEAMS: u32 = 50;
const SERVICES: u32 = 200;
const APPS: [&str; 9] = [
    "http", "grpc", "postgres", "mysql", "redis", "dns", "tls", "tcp", "udp",
];

/// The address of workload `i` (one per workload, 10.x.y.1).
pub fn workload_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 8) as u8, (i & 0xff) as u8, 1)
}

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> Option<&'a T> {
    xs.get(rng.below(xs.len() as u64) as usize)
}

/// The inventory and policy YAML for `workloads` and `rules`.
pub fn yaml(workloads: u32, rules: u32, seed: u64) -> (String, String) {
    let mut rng = Rng::new(seed);
    let mut inv =
        String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
    for i in 0..workloads {
        let _ = writeln!(
            inv,
            "  - {{name: w{i}, namespace: ns-{}, labels: {{app: svc-{}, team: t-{}}}, ips: [{}]}}",
            i % 5,
            i % SERVICES,
            i % TEAMS,
            workload_ip(i)
        );
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
        let _ = writeln!(pol, "    team-{t}: {{selector: {{team: t-{t}}}{mode}}}");
        names.push(format!("team-{t}"));
    }
    for a in 0..SERVICES {
        let _ = writeln!(pol, "    svc-{a}: {{selector: {{app: svc-{a}}}}}");
    }
    for n in 0..5 {
        let _ = writeln!(pol, "    ns-{n}: {{namespaces: [ns-{n}]}}");
        names.push(format!("ns-{n}"));
    }
    pol.push_str("    ext: {cidrs: [172.16.0.0/12]}\n    world: {cidrs: [0.0.0.0/0]}\n");
    names.extend(["ext".into(), "world".into(), "*".into()]);
    pol.push_str("  rules:\n");
    for r in 0..rules {
        let peers = |rng: &mut Rng| {
            let n = 1 + rng.below(2);
            (0..n)
                .filter_map(|_| pick(rng, &names).map(|g| format!("\"{g}\"")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let from = peers(&mut rng);
        let to = peers(&mut rng);
        let mut extra = String::new();
        if rng.below(2) == 0 {
            let p = 1 + rng.below(1000) as u16;
            if rng.below(3) == 0 {
                let _ = write!(extra, ", ports: [\"{p}-{}\"]", p + 50);
            } else {
                let _ = write!(extra, ", ports: [{p}, {}]", p + 7);
            }
        }
        if rng.below(2) == 0
            && let Some(a) = pick(&mut rng, &APPS)
        {
            let _ = write!(extra, ", app: {a}");
            if *a == "http" && rng.below(2) == 0 {
                extra.push_str(", http: [{methods: [GET]}]");
            }
        }
        let action = pick(&mut rng, &["allow", "allow", "allow", "deny", "alert"])
            .copied()
            .unwrap_or("allow");
        if rng.below(10) == 0 {
            extra.push_str(", capture: true");
        }
        if rng.below(5) == 0
            && let Some(s) = pick(&mut rng, &["low", "medium", "high", "critical"])
        {
            let _ = write!(extra, ", severity: {s}");
        }
        let _ = writeln!(
            pol,
            "    - {{id: r{r}, from: [{from}], to: [{to}]{extra}, action: {action}}}"
        );
    }
    (inv, pol)
}

/// Compiles the generated policy. Errors name the generated file, as a user's would.
pub fn snapshot(workloads: u32, rules: u32, seed: u64) -> Result<PolicySnapshot, String> {
    let (inv, pol) = yaml(workloads, rules, seed);
    let p = load_policy_str(&pol, "scale.yaml").map_err(|e| e.to_string())?;
    let i = load_inventory_str(&inv, "scale-inventory.yaml").map_err(|e| e.to_string())?;
    compile(&p.policy, &i, 1).map_err(|e| e.to_string())
}

/// A flow to judge: both addresses, the server port and the transport.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub port: u16,
    pub transport: Transport,
}

/// Random flows between the workloads (80%), an external CIDR and the internet, on ports
/// the rules name and some they do not.
pub fn queries(workloads: u32, n: usize, seed: u64) -> Vec<Query> {
    let mut rng = Rng::new(seed);
    let addr = |rng: &mut Rng| -> IpAddr {
        match rng.below(10) {
            0 => IpAddr::V4(Ipv4Addr::new(172, 16, 1, rng.below(255) as u8)),
            1 => IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
            _ => IpAddr::V4(workload_ip(rng.below(u64::from(workloads)) as u32)),
        }
    };
    (0..n)
        .map(|_| Query {
            src: addr(&mut rng),
            dst: addr(&mut rng),
            port: 1 + rng.below(1100) as u16,
            transport: if rng.below(4) == 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_decides_by_rules() {
        let s = snapshot(500, 500, 3).unwrap();
        assert_eq!((s.workload_count(), s.rule_count()), (500, 500));
        let by_rule = queries(500, 2_000, 4)
            .iter()
            .filter(|q| {
                let (a, b) = (s.resolve(q.src), s.resolve(q.dst));
                s.judge_flow(&a, &b, q.port, q.transport, None)
                    .rule
                    .is_some()
            })
            .count();
        // Rules, not only the default, must decide: otherwise the bench measures a miss.
        assert!(by_rule > 200, "{by_rule} of 2000 decided by a rule");
    }
}
