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
            user_agent: None,
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
                user_agent: None,
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

fn get(path: &str) -> Observation {
    Observation {
        from: g("web"),
        to: g("shop-api"),
        port: 8080,
        app: "http".into(),
        detail: Detail::Http {
            method: "GET".into(),
            path: path.into(),
            user_agent: None,
        },
    }
}

/// The proposal's snapshot judges `path` from web to api on 8080 as allowed.
fn allows(text: &str, paths: &[&str]) -> Vec<String> {
    use proto_parsers::AppProto;
    use proto_parsers::facts::{HttpRequest, HttpVersion, RequestDetail};
    let protect = text.replace("mode: monitor", "mode: protect");
    let p = load_policy_str(&protect, "learned.yaml").unwrap();
    let snap = compile(&p.policy, &inv(), 1).unwrap();
    let web = snap.resolve("10.0.0.1".parse().unwrap());
    let api = snap.resolve("10.0.1.1".parse().unwrap());
    let mut refused = Vec::new();
    for path in paths {
        let req = RequestDetail::Http(HttpRequest {
            version: HttpVersion::Http11,
            method: b"GET",
            path: path.as_bytes(),
            authority: None,
            user_agent: None,
            content_type: None,
            headers: &[],
        });
        let d = snap.judge_request(
            &web,
            &api,
            8080,
            AppProto::Http,
            &req,
            Some(path.as_bytes()),
        );
        if d.action != Action::Allow {
            refused.push(path.to_string());
        }
    }
    refused
}

#[test]
fn identifiers_inside_segments_are_generalised_and_names_kept() {
    for (path, want) in [
        ("/static/app.38674.js", r"regex:/static/app\.[0-9]+\.js"),
        (
            "/img/logo-3f2a9c1b7d.png",
            r"regex:/img/logo-[0-9A-Fa-f]+\.png",
        ),
        (
            "/v1/users/u_12345/profile",
            r"regex:/v1/users/u_[0-9]+/profile",
        ),
        (
            "/files/report-0f8fad5b-d9cb-469f-a165-70867728950e.pdf",
            r"regex:/files/report-[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\.pdf",
        ),
        ("/s/session20240501", r"regex:/s/session[0-9]+"),
        ("/api/v2/orders", "/api/v2/orders"),
        ("/index.html", "/index.html"),
        ("/img/favicon-32x32.png", "/img/favicon-32x32.png"),
        ("/orders/1234/items", "/orders/*/items"),
        ("/a/what?#", r"regex:/a/what\?#"),
    ] {
        let got = generalise_path(path);
        assert_eq!(got, want, "{path}");
        assert!(
            crate::l7::path_pattern_matches(&got, path),
            "{got} vs {path}"
        );
    }
    // Two builds of the same bundle share one pattern.
    assert_eq!(
        generalise_path("/static/app.1234.js"),
        generalise_path("/static/app.98765.js")
    );
}

#[test]
fn login_is_not_lost_when_paths_are_folded() {
    let mut l = Learner::new(&inv());
    let mut paths = vec!["/login".to_string(), "/login/".to_string(), "/".to_string()];
    for i in 0..(MAX_PATHS * 3) {
        paths.push(format!("/login/step-{i}"));
        paths.push(format!("/p{}/x-{i}", i % 7));
    }
    for p in &paths {
        l.observe(get(p));
    }
    let text = l.to_yaml("t", "");
    assert!(text.contains(r#""/login/*""#), "{text}");
    assert!(text.contains(r#""/login""#), "{text}");
    assert!(l.stats().capped.contains_key("paths"), "{:?}", l.stats());
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    assert_eq!(allows(&text, &refs), Vec::<String>::new(), "{text}");
    // Still a policy: what was not seen is refused.
    assert_eq!(allows(&text, &["/admin"]), ["/admin"]);
}

#[test]
fn folding_to_the_root_still_covers_everything() {
    let mut l = Learner::new(&inv());
    let mut paths = vec!["/".to_string()];
    for i in 0..(MAX_PATHS * 3) {
        paths.push(format!("/top{i}x"));
        paths.push(format!("/top{i}x/"));
        paths.push(format!("/t/{i}z/a"));
    }
    for p in &paths {
        l.observe(get(p));
    }
    let text = l.to_yaml("t", "");
    assert!(text.contains(r#"paths: ["/", "/*"]"#), "{text}");
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    assert_eq!(allows(&text, &refs), Vec::<String>::new());
}

/// Generated paths with identifiers, odd characters and shapes: every pattern matches
/// what it stands for, at every fold level.
#[test]
fn generalised_and_folded_patterns_cover_their_paths() {
    use super::generalise::PathSet;
    let parts = [
        "api",
        "v2",
        "12",
        "123456",
        "deadbeef00112233",
        "x.9911.js",
        "a*b",
        "q?",
        "h#",
        "",
        "~u",
        "%20",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "id-0f8fad5b-d9cb-469f-a165-70867728950e.x",
        "a+b(c)",
        "[x]",
        "{y}",
        "$z^",
        "u_55555",
        "3f2a9c1b7d",
        "aZ3kQ9xR7mP2wL5t",
        "..",
        "*",
        "é",
        "\\",
        "|",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for cap in [1, 3, 8, 1000] {
        let mut set = PathSet::default();
        let mut all = Vec::new();
        for _ in 0..400 {
            let mut p = String::new();
            for _ in 0..=next(4) {
                p.push('/');
                p.push_str(parts[next(parts.len())]);
            }
            if next(10) == 0 {
                p = "*".into();
            }
            // As the data plane hands them over: normalised.
            let mut n = String::new();
            proto_parsers::http::normalize_path(p.as_bytes(), &mut n);
            let p = n;
            let g = generalise_path(&p);
            assert!(crate::l7::path_pattern_matches(&g, &p), "{g} vs {p}");
            set.insert(&p, cap);
            all.push(p);
        }
        for p in &all {
            assert!(
                set.iter()
                    .any(|(pat, _)| crate::l7::path_pattern_matches(pat, p)),
                "cap {cap}: {p} not covered by {:?}",
                set.iter().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn a_pattern_that_does_not_match_falls_back_to_the_path_itself() {
    // An unnormalised path (the data plane normalises; this one did not): the glob
    // `/x/./y` is normalised on the rule side to `/x/y`, which does not match it.
    let mut l = Learner::new(&inv());
    l.observe(get("/x/./y"));
    let text = l.to_yaml("t", "");
    assert!(text.contains(r#""regex:/x/\\./y""#), "{text}");
    assert_eq!(l.stats().fallbacks, 1);
    let p = load_policy_str(&text, "t.yaml").unwrap();
    compile(&p.policy, &inv(), 1).unwrap();
}

#[test]
fn probing_is_held_for_review_and_not_allowed() {
    let mut l = Learner::new(&inv());
    l.observe(get("/api/orders"));
    for _ in 0..3 {
        assert!(!l.observe(get("/.env")));
    }
    assert!(!l.observe(get("/static/../../etc/passwd")));
    let mut ua = get("/search");
    ua.detail = Detail::Http {
        method: "GET".into(),
        path: "/search".into(),
        user_agent: Some("sqlmap/1.7".into()),
    };
    assert!(!l.observe(ua));
    let redis = |c: &str| Observation {
        from: g("web"),
        to: g("db-0"),
        port: 6379,
        app: "redis".into(),
        detail: Detail::Redis { command: c.into() },
    };
    assert!(l.observe(redis("GET")));
    assert!(!l.observe(redis("flushall")));
    let sql = Observation {
        from: g("shop-api"),
        to: g("db-0"),
        port: 5432,
        app: "postgres".into(),
        detail: Detail::Sql {
            verb: "SELECT".into(),
            tables: vec!["information_schema.tables".into()],
            user: Some("svc".into()),
            database: None,
        },
    };
    assert!(!l.observe(sql.clone()));
    l.hold(&get("/admin"), "denied by rule `no-admin`");
    assert_eq!(l.stats().held, 8);
    let text = l.to_yaml("t", "");
    assert!(
        text.contains(
            "# review: probing? a path scanners ask for http GET /.env from web to shop-api:8080 (3 times) - not allowed by this proposal"
        ),
        "{text}"
    );
    assert!(
        text.contains("denied by rule `no-admin` http GET /admin"),
        "{text}"
    );
    assert!(!text.contains(r#""FLUSHALL""#), "{text}");
    assert!(!text.contains("shop-api-db-0-postgres"), "{text}");
    assert_eq!(
        allows(&text, &["/api/orders", "/.env", "/admin", "/search"]),
        ["/.env", "/admin", "/search"]
    );
}

#[test]
fn every_collection_is_capped_and_a_cap_widens() {
    let mut l = Learner::new(&inv());
    for i in 0..(MAX_UNKNOWN * 2) {
        let ip: std::net::IpAddr = format!("192.0.{}.{}", i / 200, i % 200).parse().unwrap();
        l.observe(Observation {
            from: Peer::Addr(ip),
            to: g("shop-api"),
            port: 1000 + (i % (MAX_PORTS + 10)) as u16,
            app: "tcp".into(),
            detail: Detail::None,
        });
    }
    for i in 0..(MAX_VALUES + 5) {
        l.observe(Observation {
            from: g("web"),
            to: g("db-0"),
            port: 6379,
            app: "redis".into(),
            detail: Detail::Redis {
                command: format!("CMD{}", "X".repeat(i % 300 + 1)),
            },
        });
    }
    let st = l.stats();
    for c in ["unknown", "ports", "values"] {
        assert!(st.capped.contains_key(c), "{c}: {st:?}");
    }
    let text = l.to_yaml("t", "");
    assert!(
        text.contains(r#""unknown": {cidrs: ["192.0.0.0/24", "192.0.1.0/24""#),
        "{text}"
    );
    assert!(text.contains(r#"ports: ["1064-1073"]"#), "{text}");
    assert!(!text.contains("commands:"), "{text}");
    let p = load_policy_str(&text, "t.yaml").unwrap();
    compile(&p.policy, &inv(), 1).unwrap();
}
