//! The mix's workloads: 24 apps in five namespaces with their pods' names and addresses,
//! the nodes the kubelets probe from, and the inventory YAML that lists them.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

pub(super) struct App {
    pub(super) name: &'static str,
    pub(super) ns: &'static str,
    pub(super) replicas: u8,
    pub(super) team: &'static str,
    /// StatefulSet pods are `name-0`, `name-1`; Deployment pods get a hash suffix.
    pub(super) stateful: bool,
}

pub(super) const fn app(
    name: &'static str,
    ns: &'static str,
    replicas: u8,
    team: &'static str,
    stateful: bool,
) -> App {
    App {
        name,
        ns,
        replicas,
        team,
        stateful,
    }
}

pub(super) const APPS: [App; 24] = [
    app("frontend", "shop", 4, "web", false),
    app("orders", "shop", 3, "checkout", false),
    app("catalog", "shop", 3, "catalog", false),
    app("cart", "shop", 2, "checkout", false),
    app("users", "shop", 2, "identity", false),
    app("search", "shop", 2, "catalog", false),
    app("reviews", "shop", 2, "catalog", false),
    app("notifications", "shop", 2, "platform", false),
    app("stock", "shop", 2, "fulfilment", false),
    app("pricing", "shop", 2, "catalog", false),
    app("payments", "shop", 2, "checkout", false),
    app("shipping", "shop", 2, "fulfilment", false),
    app("auth", "shop", 2, "identity", false),
    app("orders-db", "shop", 1, "checkout", true),
    app("users-db", "shop", 1, "identity", true),
    app("catalog-db", "shop", 2, "catalog", true),
    app("reviews-db", "shop", 1, "catalog", true),
    app("cache", "shop", 3, "platform", true),
    app("cart-cache", "shop", 1, "checkout", true),
    app("orders-cleanup", "shop", 1, "checkout", false),
    app("kube-dns", "kube-system", 2, "platform", false),
    app("ingress", "ingress", 2, "platform", false),
    app("prometheus", "monitoring", 1, "platform", true),
    app("reporting", "analytics", 2, "data", false),
];

/// Kubelets (probes) come from the node addresses, which no workload owns.
pub(super) const NODES: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 42, 0, 1),
    Ipv4Addr::new(10, 42, 0, 2),
    Ipv4Addr::new(10, 42, 0, 3),
];
pub(super) const NODES_CIDR: &str = "10.42.0.0/24";

pub(super) fn app_index(name: &str) -> Option<usize> {
    APPS.iter().position(|a| a.name == name)
}

/// Pod `r` of app `i`: 10.42.(i+1).(10+r).
pub(super) fn pod_ip(i: usize, r: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 42, (i + 1) as u8, 10 + r)
}

/// Addresses of an app's pods (the nodes for `nodes`).
pub(super) fn ips_of(name: &str) -> Vec<Ipv4Addr> {
    if name == "nodes" {
        return NODES.to_vec();
    }
    match app_index(name) {
        Some(i) => (0..APPS[i].replicas).map(|r| pod_ip(i, r)).collect(),
        None => Vec::new(),
    }
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` characters of a pod-name suffix alphabet, from `h`.
pub(super) fn pod_suffix(mut h: u64, n: usize) -> String {
    const ALNUM: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(char::from(ALNUM[(h % ALNUM.len() as u64) as usize]));
        h /= ALNUM.len() as u64;
    }
    s
}

/// Kubernetes-looking pod names, stable for a given app index and replica: a
/// Deployment's pods share the ReplicaSet hash and differ in their own suffix.
pub(super) fn pod_name(i: usize, r: u8) -> String {
    let a = &APPS[i];
    if a.stateful {
        return format!("{}-{r}", a.name);
    }
    format!(
        "{}-{}-{}",
        a.name,
        pod_suffix(mix64(i as u64), 9),
        pod_suffix(mix64(((i as u64) << 8) | u64::from(r) | 1 << 40), 5)
    )
}

/// The inventory of the mix's workloads (YAML).
pub fn inventory_yaml() -> String {
    let mut y = String::from(
        "# Workloads of the generated east-west mix (palisade bench).\n\
         apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n",
    );
    for (i, a) in APPS.iter().enumerate() {
        for r in 0..a.replicas {
            let _ = writeln!(
                y,
                "  - {{name: {}, namespace: {}, labels: {{app: {}, team: {}}}, ips: [{}], \
                 image: \"registry.local/{}/{}:1.{}.{}\", annotations: {{owner: team-{}}}}}",
                pod_name(i, r),
                a.ns,
                a.name,
                a.team,
                pod_ip(i, r),
                a.ns,
                a.name,
                i % 7,
                (i * 3) % 10,
                a.team
            );
        }
    }
    y
}

/// How many workloads the inventory lists.
pub fn workload_count() -> usize {
    APPS.iter().map(|a| usize::from(a.replicas)).sum()
}
