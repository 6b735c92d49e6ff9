//! PRODUCT.md's example policy and inventory, as users will first write them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use control::model::{DefaultAction, L7Matchers, PortSpec};
use control::{
    Action, Code, Mode, PolicySnapshot, Severity, Transport, check, compile, load_inventory,
    load_policy,
};
use proto_parsers::AppProto;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn example_parses_every_field() {
    let loaded = load_policy(&data("shop-policy.yaml")).unwrap();
    assert!(loaded.inventory.is_none());
    let p = &loaded.policy;
    assert_eq!(p.metadata.name.value, "shop");
    assert_eq!(p.spec.mode(), Mode::Protect);
    assert_eq!(p.spec.default_action(), DefaultAction::Deny);
    let groups: Vec<&str> = p
        .spec
        .groups
        .iter()
        .map(|(k, _)| k.value.as_str())
        .collect();
    assert_eq!(groups, ["web", "orders", "db", "cache", "world"]);
    let (_, orders) = &p.spec.groups.0[1];
    assert_eq!(orders.mode.as_ref().map(|m| m.value), Some(Mode::Monitor));
    let (_, db) = &p.spec.groups.0[2];
    assert_eq!(db.namespaces.as_ref().unwrap()[0].value, "shop");
    let (_, world) = &p.spec.groups.0[4];
    let cidrs: Vec<&str> = world
        .cidrs
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.value.as_str())
        .collect();
    assert_eq!(cidrs, ["0.0.0.0/0", "::/0"]);

    let rules = &p.spec.rules;
    assert_eq!(rules.len(), 4);
    let web = &rules[0];
    assert_eq!(web.id.value, "web-orders");
    assert_eq!(
        web.ports.as_ref().unwrap().value[0].value,
        PortSpec::Number(8080)
    );
    assert_eq!(web.app.as_ref().unwrap().value, "http");
    let http = &web.http.as_ref().unwrap().value;
    assert_eq!(http.len(), 2);
    assert_eq!(
        http[0].paths.as_ref().unwrap().value[0].value,
        "/api/orders/*"
    );
    assert_eq!(
        http[0].hosts.as_ref().unwrap().value[0].value,
        "orders.shop"
    );
    let headers = &http[1].headers.as_ref().unwrap().value;
    assert_eq!(headers.0[0].0.as_str(), "content-type");
    assert_eq!(headers.0[0].1.as_str(), "application/json");
    let grpc = &rules[1].grpc.as_ref().unwrap().value[0];
    assert_eq!(grpc.service.as_ref().unwrap().value, "stock.v1.Stock");
    let sql = &rules[2].sql.as_ref().unwrap().value[0];
    assert_eq!(sql.users.as_ref().unwrap().value[0].value, "orders_svc");
    assert_eq!(sql.tables.as_ref().unwrap().value.len(), 2);
    let flush = &rules[3];
    assert!(flush.capture);
    assert_eq!(flush.severity.as_ref().unwrap().value, Severity::Critical);
    assert_eq!(flush.action.value, Action::Deny);
    assert_eq!(
        flush.redis.as_ref().unwrap().value[0]
            .commands
            .as_ref()
            .unwrap()
            .value
            .len(),
        4
    );

    let inv = load_inventory(&data("inventory.yaml")).unwrap();
    assert_eq!(inv.workloads.len(), 3);
    let fe = &inv.workloads[0];
    assert_eq!(
        fe.image.as_deref(),
        Some("registry.local/shop/frontend@sha256:4f1c...")
    );
    assert_eq!(fe.annotations.0[1].1.as_str(), "9e2b41c");
    assert_eq!(inv.workloads[1].ips[1].value, "fd00::2:7");
    assert_eq!(inv.workloads[2].cidrs[0].value, "203.0.113.0/24");
    assert_eq!(inv.workloads[2].namespace(), "ext");
}

#[test]
fn example_reports_the_undeclared_stock_group() {
    let policy = data("shop-policy.yaml");
    let report = check(&policy, Some(&data("inventory.yaml")));
    assert_eq!(report.errors.len(), 1, "{report}");
    let e = &report.errors[0];
    assert_eq!(e.code, Code::UnknownGroup);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:25:12: error: unknown group `stock` in `to` of rule `orders-stock`\n  = help: declare `stock` under `spec.groups`, or use \"*\" for any endpoint",
            policy.display()
        )
    );
    // Compiling refuses it too, with the same error.
    let loaded = load_policy(&policy).unwrap();
    let inv = load_inventory(&data("inventory.yaml")).unwrap();
    let err = compile(&loaded.policy, &inv, 1).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err.0[0].diagnostic(), e);
}

#[test]
fn corrected_example_compiles_and_judges() {
    let report = check(
        &data("shop-policy-fixed.yaml"),
        Some(&data("inventory.yaml")),
    );
    assert!(report.is_ok(), "{report}");
    // db, cache and stock select no workload of the example inventory.
    let empty: Vec<&str> = report
        .warnings
        .iter()
        .filter(|w| w.code == Code::EmptyGroup)
        .map(|w| w.message.split('`').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(empty, ["db", "cache", "stock"], "{report}");

    let s = control::load_snapshot(
        &data("shop-policy-fixed.yaml"),
        Some(&data("inventory.yaml")),
        3,
    )
    .unwrap();
    assert_eq!((s.name(), s.version(), s.rule_count()), ("shop", 3, 4));
    let r = |ip: &str| s.resolve(ip.parse::<IpAddr>().unwrap());
    let (fe, orders, pay) = (r("10.0.1.5"), r("10.0.2.7"), r("203.0.113.9"));
    assert_eq!(r("fd00::2:7"), orders);
    assert_eq!(&*s.workload(pay.workload.unwrap()).name, "payments-gw");
    // payments-gw is an inventory workload: `world` does not contain it.
    assert!(s.groups_of(&pay).is_empty());
    assert_eq!(
        s.groups_of(&r("8.8.8.8"))
            .iter()
            .map(|g| s.group_name(*g))
            .collect::<Vec<_>>(),
        ["world"]
    );

    // web -> orders:8080 HTTP: admitted, transactions judged by the http matchers;
    // orders overrides the mode to monitor.
    let d = s.judge_flow(&fe, &orders, 8080, Transport::Tcp, Some(AppProto::Http));
    assert_eq!(
        (d.action, d.l7_constrained, d.mode),
        (Action::Allow, true, Mode::Monitor)
    );
    assert_eq!(s.rule_name(d.rule.unwrap()), "web-orders");
    let rule = s.rule(d.rule.unwrap()).unwrap();
    assert!(matches!(rule.l7(), Some(L7Matchers::Http(m)) if m.len() == 2));
    // Wrong port: nothing allows it; monitor mode alerts, never drops.
    let d = s.judge_flow(&fe, &orders, 9090, Transport::Tcp, Some(AppProto::Http));
    assert_eq!((d.action, d.rule, d.enforce), (Action::Alert, None, false));
    // frontend -> outside world: protect + default deny, enforced.
    let d = s.judge_flow(&fe, &r("8.8.8.8"), 443, Transport::Tcp, None);
    assert_eq!(
        (d.action, d.enforce, d.mode),
        (Action::Deny, true, Mode::Protect)
    );
    assert_eq!(d.dst_group.map(|g| s.group_name(g)), Some("world"));
    assert_eq!(d.src_group.map(|g| s.group_name(g)), Some("web"));
}

#[test]
fn embedded_inventory_is_used_when_no_file_is_given() {
    let s = control::load_snapshot(&data("shop-embedded.yaml"), None, 1).unwrap();
    assert_eq!(s.workload_count(), 3);
    let fe = s.resolve("10.0.1.5".parse().unwrap());
    let info = s.workload(fe.workload.unwrap());
    assert_eq!(&*info.name, "frontend-7d9f");
    assert_eq!(
        info.annotations,
        [
            (Box::from("owner"), Box::from("team-web")),
            (Box::from("commit"), Box::from("9e2b41c"))
        ]
    );
    // A separate inventory file wins over the embedded one.
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n  - {name: solo, labels: {app: frontend}, ips: [10.9.0.1]}\n",
    )
    .unwrap();
    let s = control::load_snapshot(&data("shop-embedded.yaml"), Some(&inv), 2).unwrap();
    assert_eq!(s.workload_count(), 1);
    assert!(s.resolve("10.0.1.5".parse().unwrap()).workload.is_none());
    // No inventory at all: an empty one.
    let s = control::load_snapshot(&data("shop-policy-fixed.yaml"), None, 3).unwrap();
    assert_eq!(s.workload_count(), 0);
}

#[test]
fn model_serializes_back_to_an_equivalent_policy() {
    let loaded = load_policy(&data("shop-policy-fixed.yaml")).unwrap();
    let text = serde_saphyr::to_string(&loaded.policy).unwrap();
    let again = control::load_policy_str(&text, "roundtrip.yaml").unwrap();
    let inv = load_inventory(&data("inventory.yaml")).unwrap();
    let a = compile(&loaded.policy, &inv, 1).unwrap();
    let b = compile(&again.policy, &inv, 1).unwrap();
    assert_eq!(a.rule_count(), b.rule_count());
    assert_eq!(a.group_count(), b.group_count());
    let r = |s: &PolicySnapshot, ip: &str| s.resolve(ip.parse().unwrap());
    for (src, dst, port, app) in [
        ("10.0.1.5", "10.0.2.7", 8080, Some(AppProto::Http)),
        ("10.0.2.7", "10.0.1.5", 80, None),
        ("10.0.1.5", "8.8.8.8", 443, None),
    ] {
        assert_eq!(
            a.judge_flow(&r(&a, src), &r(&a, dst), port, Transport::Tcp, app),
            b.judge_flow(&r(&b, src), &r(&b, dst), port, Transport::Tcp, app),
        );
    }
}
