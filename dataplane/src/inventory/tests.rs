use super::*;

fn obs(ns: &str, id: &str, labels: &[(&str, &str)], netns: u64, addrs: &[&str]) -> Observed {
    Observed {
        namespace: ns.into(),
        id: id.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        image: format!("localhost/{id}:1@sha256:00"),
        created: (1, 0),
        netns: Some((1, netns)),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

fn ips(w: &Workload) -> Vec<&str> {
    w.ips.iter().map(|s| s.value.as_str()).collect()
}

fn find<'a>(ws: &'a [Workload], name: &str) -> &'a Workload {
    ws.iter().find(|w| w.name.value == name).unwrap()
}

#[test]
fn parse_inventory_arg() {
    assert_eq!(
        InventoryArg::parse("containerd").unwrap(),
        InventoryArg::Containerd(CONTAINERD_SOCKET.into())
    );
    assert_eq!(
        InventoryArg::parse("containerd:/tmp/c.sock").unwrap(),
        InventoryArg::Containerd("/tmp/c.sock".into())
    );
    assert!(InventoryArg::parse("containerd:").is_err());
    assert_eq!(
        InventoryArg::parse("w.yaml").unwrap(),
        InventoryArg::File("w.yaml".into())
    );
}

#[test]
fn plain_containers_are_workloads_named_by_id_in_their_namespace() {
    let mut c = Findings::default();
    let ws = workloads_of(
        vec![obs("default", "web", &[("app", "web")], 10, &["10.88.7.2"])],
        &SharedNetns::default(),
        &mut c,
    );
    assert_eq!(ws.len(), 1);
    let w = &ws[0];
    assert_eq!(w.name.value, "web");
    assert_eq!(w.namespace(), "default");
    assert_eq!(ips(w), ["10.88.7.2"]);
    assert_eq!(w.image.as_deref(), Some("localhost/web:1@sha256:00"));
    assert!(w.labels.iter().any(|(k, v)| k.0 == "app" && v.0 == "web"));
    assert!(
        w.annotations
            .iter()
            .any(|(k, v)| k.0 == ANN_CONTAINER_ID && v.0 == "web")
    );
}

#[test]
fn a_pod_is_its_sandbox_with_the_pod_name_and_its_app_image() {
    let mut c = Findings::default();
    let sandbox = obs(
        "k8s.io",
        "abc123",
        &[
            (CRI_KIND, "sandbox"),
            (POD_NAME, "frontend-7d9f"),
            (POD_NAMESPACE, "shop"),
            ("app", "frontend"),
        ],
        20,
        &["10.244.1.7"],
    );
    let mut app = obs(
        "k8s.io",
        "def456",
        &[
            (CRI_KIND, "container"),
            (POD_NAME, "frontend-7d9f"),
            (POD_NAMESPACE, "shop"),
            ("io.kubernetes.container.name", "nginx"),
        ],
        20,
        &["10.244.1.7"],
    );
    app.image = "registry.local/shop/frontend:2@sha256:4f1c".into();
    let ws = workloads_of(vec![sandbox, app], &SharedNetns::default(), &mut c);
    assert_eq!(ws.len(), 1, "{ws:?}");
    let w = &ws[0];
    assert_eq!(w.name.value, "frontend-7d9f");
    assert_eq!(w.namespace(), "shop");
    assert_eq!(ips(w), ["10.244.1.7"]);
    assert_eq!(
        w.image.as_deref(),
        Some("registry.local/shop/frontend:2@sha256:4f1c")
    );
}

#[test]
fn host_network_containers_get_no_address() {
    let mut c = Findings::default();
    let ws = workloads_of(
        vec![
            obs("default", "agent", &[], 1, &["192.0.2.10"]),
            // Its namespace's identity unreadable, but it shows the host's address.
            Observed {
                netns: None,
                ..obs("default", "exporter", &[], 0, &["192.0.2.10"])
            },
            obs("default", "web", &[], 7, &["10.88.7.2"]),
        ],
        &SharedNetns {
            ids: vec![(1, 1)],
            addrs: vec!["192.0.2.10".parse().unwrap()],
        },
        &mut c,
    );
    assert!(find(&ws, "agent").ips.is_empty());
    assert!(find(&ws, "exporter").ips.is_empty());
    assert_eq!(ips(find(&ws, "web")), ["10.88.7.2"]);
    assert_eq!(c.host_network, 2);
}

#[test]
fn an_address_two_containers_claim_is_nobodys() {
    let mut c = Findings::default();
    let ws = workloads_of(
        vec![
            obs(
                "default",
                "a",
                &[("app", "a")],
                10,
                &["10.0.0.5", "10.0.0.6"],
            ),
            obs("other", "b", &[("app", "b")], 11, &["10.0.0.5"]),
        ],
        &SharedNetns::default(),
        &mut c,
    );
    assert_eq!(ips(find(&ws, "a")), ["10.0.0.6"]);
    assert!(find(&ws, "b").ips.is_empty());
    assert_eq!(c.address_conflicts, 1);
}

#[test]
fn the_newest_of_two_containers_with_one_name_wins() {
    let mut c = Findings::default();
    let mut old = obs(
        "k8s.io",
        "s1",
        &[(POD_NAME, "p"), (POD_NAMESPACE, "n")],
        10,
        &["10.0.0.1"],
    );
    old.created = (100, 0);
    let mut new = obs(
        "k8s.io",
        "s2",
        &[(POD_NAME, "p"), (POD_NAMESPACE, "n")],
        11,
        &["10.0.0.2"],
    );
    new.created = (200, 0);
    let ws = workloads_of(vec![new, old], &SharedNetns::default(), &mut c);
    assert_eq!(ws.len(), 1);
    assert_eq!(ips(&ws[0]), ["10.0.0.2"]);
    assert_eq!(c.name_conflicts, 1);
}

#[test]
fn merge_keeps_file_peers_and_takes_contested_addresses_from_both() {
    let rt = RuntimeInventory::new("/nonexistent".into());
    let ws = workloads_of(
        vec![
            obs("default", "web", &[("app", "web")], 10, &["10.88.7.2"]),
            obs("default", "db", &[("app", "db")], 11, &["10.88.7.3"]),
        ],
        &SharedNetns::default(),
        &mut Findings::default(),
    );
    assert!(rt.publish(ws.clone(), 1, 2, Findings::default()));
    assert_eq!(rt.epoch(), 1);
    assert!(
        !rt.publish(ws, 1, 2, Findings::default()),
        "the same list is no change"
    );
    assert_eq!(rt.epoch(), 1);
    let file = control::load_inventory_str(
        "apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n\
         - {name: dns, namespace: infra, labels: {app: dns}, ips: [192.0.2.53]}\n\
         - {name: stale, namespace: infra, labels: {app: old}, ips: [10.88.7.3, 192.0.2.9]}\n",
        "peers.yaml",
    )
    .unwrap();
    let (merged, epoch) = rt.merge_into(file);
    assert_eq!(epoch, 1);
    let names: Vec<&str> = merged
        .workloads
        .iter()
        .map(|w| w.name.value.as_str())
        .collect();
    assert_eq!(names, ["dns", "stale", "db", "web"]);
    assert_eq!(ips(find(&merged.workloads, "stale")), ["192.0.2.9"]);
    assert!(find(&merged.workloads, "db").ips.is_empty());
    assert_eq!(rt.status().findings.file_address_conflicts, 1);
    // The merged inventory compiles: the policy never fails to load because of the runtime.
    let policy = control::load_policy_str(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: t}\n\
         spec:\n  defaultAction: deny\n  groups:\n    web: {selector: {app: web}}\n  rules: []\n",
        "p.yaml",
    )
    .unwrap();
    let snap = control::compile(&policy.policy, &merged, 1).unwrap();
    let ep = snap.resolve("10.88.7.2".parse().unwrap());
    assert_eq!(snap.workload(ep.workload.unwrap()).name.as_ref(), "web");
    assert!(
        snap.resolve("10.88.7.3".parse().unwrap())
            .workload
            .is_none(),
        "a contested address is nobody's"
    );
}
