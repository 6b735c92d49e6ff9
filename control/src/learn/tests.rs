use super::*;
use crate::snapshot::{Action, Endpoint, Transport};
use crate::{compile, load_inventory_str, load_policy_str};

const INV: &str = "apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: web-1, namespace: shop, labels: {app: web}, ips: [10.0.0.1]}
  - {name: web-2, namespace: shop, labels: {app: web}, ips: [10.0.0.2]}
  - {name: api-1, namespace: shop, labels: {app: api}, ips: [10.0.1.1]}
  - {name: api-x, namespace: other, labels: {app: api}, ips: [10.0.9.1]}
  - {name: db-0, namespace: shop, labels: {tier: db}, ips: [10.0.2.1]}
";

fn inv() -> WorkloadInventory {
    load_inventory_str(INV, "inv.yaml").unwrap()
}

fn g(s: &str) -> Peer {
    Peer::Group(s.to_string())
}

#[test]
fn groups_follow_the_app_label_and_namespace() {
    let gs = groups(&inv());
    let names: Vec<&str> = gs.iter().map(|g| g.name.as_str()).collect();
    // `api` is used in two namespaces: both get the namespace in their name.
    assert_eq!(names, ["other-api", "shop-api", "web", "db-0"]);
    let db = gs.iter().find(|g| g.name == "db-0").unwrap();
    assert_eq!(db.app, None);
    assert_eq!(db.addrs, ["10.0.2.1"]);
    // The learning policy compiles against the inventory.
    let text = learning_policy(&inv());
    let p = load_policy_str(&text, "learning.yaml").unwrap();
    compile(&p.policy, &inv(), 1).unwrap();
}

#[test]
fn paths_lose_their_identifiers() {
    assert_eq!(generalise_path("/api/orders/1234"), "/api/orders/*");
    assert_eq!(
        generalise_path("/u/0f8fad5b-d9cb-469f-a165-70867728950e/cart"),
        "/u/*/cart"
    );
    assert_eq!(generalise_path("/blob/deadbeefdeadbeef00"), "/blob/*");
    assert_eq!(generalise_path("/cafe/beef"), "/cafe/beef");
    assert_eq!(generalise_path("/"), "/");
    assert_eq!(generalise_path("/a/*b"), "/a/*");
}

fn observations() -> Vec<Observation> {
    let http = |m: &str, p: &str| Observation {
        from: g("web"),
        to: g("shop-api"),
        port: 8080,
        app: "http".into(),
        detail: Detail::Http {
            method: m.into(),
            path: p.into(),
        },
    };
    let sql = |verb: &str, tables: &[&str], user: Option<&str>| Observation {
        from: g("shop-api"),
        to: g("db-0"),
        port: 5432,
        app: "postgres".into(),
        detail: Detail::Sql {
            verb: verb.into(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
            user: user.map(str::to_string),
            database: Some("shop".into()),
        },
    };
    vec![
        http("GET", "/api/orders/1"),
        http("GET", "/api/orders/2"),
        http("POST", "/api/orders"),
        sql("LOGIN", &[], Some("svc")),
        sql("SELECT", &["orders"], Some("svc")),
        sql("INSERT", &["orders", "items"], Some("svc")),
        Observation {
            from: g("shop-api"),
            to: Peer::Addr("192.0.2.7".parse().unwrap()),
            port: 53,
            app: "dns".into(),
            detail: Detail::Dns {
                name: "Pay.Example.".into(),
            },
        },
        Observation {
            from: g("web"),
            to: g("shop-api"),
            port: 9000,
            app: "tcp".into(),
            detail: Detail::None,
        },
    ]
}

#[test]
fn the_proposal_compiles_and_allows_what_was_seen() {
    let mut l = Learner::new(&inv());
    for o in observations() {
        l.observe(o);
    }
    assert_eq!(l.rule_count(), 4);
    let text = l.to_yaml("learned", "proposed by a test");
    assert!(text.starts_with("# proposed by a test\n"), "{text}");
    for want in [
        r#"- {methods: ["GET"], paths: ["/api/orders/*"]}"#,
        r#"- {methods: ["POST"], paths: ["/api/orders"]}"#,
        r#"- {verbs: ["INSERT", "SELECT"], tables: ["items", "orders"], users: ["svc"], databases: ["shop"]}"#,
        r#"- {names: ["pay.example"]}"#,
        r#""unknown": {cidrs: ["192.0.2.7/32"]}"#,
        r#"- id: "web-shop-api-tcp-9000""#,
        "# 3 transactions observed",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    let p = load_policy_str(&text, "learned.yaml").unwrap();
    let snap = compile(&p.policy, &inv(), 1).unwrap();
    // The web -> api flow on 8080 and 9000 is admitted; 9001 is not.
    let ep = |ip: &str| -> Endpoint { snap.resolve(ip.parse().unwrap()) };
    let (web, api) = (ep("10.0.0.2"), ep("10.0.1.1"));
    let judge = |port| {
        snap.judge_flow(&web, &api, port, Transport::Tcp, None)
            .action
    };
    assert_eq!(judge(8080), Action::Allow);
    assert_eq!(judge(9000), Action::Allow);
    assert_ne!(judge(9001), Action::Allow);
}

#[test]
fn many_paths_and_names_are_folded() {
    let mut l = Learner::new(&inv());
    for i in 0..(MAX_PATHS + 1) {
        l.observe(Observation {
            from: g("web"),
            to: g("shop-api"),
            port: 80,
            app: "http".into(),
            detail: Detail::Http {
                method: "GET".into(),
                path: format!("/static/file-{i}.css"),
            },
        });
    }
    for i in 0..(MAX_NAMES + 1) {
        l.observe(Observation {
            from: g("web"),
            to: g("shop-api"),
            port: 53,
            app: "dns".into(),
            detail: Detail::Dns {
                name: format!("h{i}.svc.cluster.local"),
            },
        });
    }
    let text = l.to_yaml("t", "");
    assert!(text.contains(r#"paths: ["/static/*"]"#), "{text}");
    assert!(text.contains(r#"names: ["*.svc.cluster.local"]"#), "{text}");
    let p = load_policy_str(&text, "t.yaml").unwrap();
    compile(&p.policy, &inv(), 1).unwrap();
}

#[test]
fn logins_without_a_user_do_not_list_users() {
    let mut l = Learner::new(&inv());
    for user in [Some("svc"), None] {
        l.observe(Observation {
            from: g("shop-api"),
            to: g("db-0"),
            port: 3306,
            app: "mysql".into(),
            detail: Detail::Sql {
                verb: "SELECT".into(),
                tables: vec![],
                user: user.map(str::to_string),
                database: None,
            },
        });
    }
    let text = l.to_yaml("t", "");
    assert!(text.contains(r#"- {verbs: ["SELECT"]}"#), "{text}");
    let p = load_policy_str(&text, "t.yaml").unwrap();
    compile(&p.policy, &inv(), 1).unwrap();
}
