//! Per-transaction semantics, one matcher kind at a time, on small policies.

use std::net::IpAddr;

use proto_parsers::AppProto;
use proto_parsers::facts::{
    DnsQuestion, GrpcCall, Header, HttpRequest, HttpVersion, RedisCommand, RequestDetail,
    SqlDialect, SqlKind, SqlRequest, SqlStatement, SqlVerb, TlsClientHello,
};

use super::bits::NARROW_WORDS;
use super::eval::Prepared;
use super::index::{FieldIx, Find, Postings};
use super::{FlowRules, host_of};
use crate::snapshot::{Action, Decision, Endpoint, Mode, PolicySnapshot, Severity, Transport};
use crate::{compile, load_inventory_str, load_policy_str};

const INVENTORY: &str = r#"
apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: web-1,   namespace: shop, labels: {app: web},      ips: [10.0.1.5]}
  - {name: admin-1, namespace: shop, labels: {app: admin},    ips: [10.0.1.9]}
  - {name: api-1,   namespace: shop, labels: {app: api},      ips: [10.0.2.7]}
  - {name: pg-1,    namespace: shop, labels: {app: postgres}, ips: [10.0.3.1]}
  - {name: redis-1, namespace: shop, labels: {app: redis},    ips: [10.0.4.1]}
  - {name: dns-1,   namespace: kube, labels: {app: dns},      ips: [10.0.5.1]}
  - {name: stock-1, namespace: shop, labels: {app: stock},    ips: [10.0.6.1]}
"#;

const GROUPS: &str = "  groups:
    web: {selector: {app: web}}
    admin: {selector: {app: admin}}
    api: {selector: {app: api}}
    db: {selector: {app: postgres}}
    cache: {selector: {app: redis}}
    dns: {selector: {app: dns}}
    stock: {selector: {app: stock}}
    world: {cidrs: [0.0.0.0/0]}
";

fn snap(head: &str, rules: &str) -> PolicySnapshot {
    snap_version(head, rules, 1)
}

fn snap_version(head: &str, rules: &str, version: u64) -> PolicySnapshot {
    let text = format!(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {{name: t}}\nspec:\n{head}{GROUPS}  rules:\n{rules}"
    );
    let p = match load_policy_str(&text, "t.yaml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let inv = load_inventory_str(INVENTORY, "inv.yaml").unwrap();
    match compile(&p.policy, &inv, version) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn ep(s: &PolicySnapshot, ip: &str) -> Endpoint {
    s.resolve(ip.parse::<IpAddr>().unwrap())
}

const WEB: &str = "10.0.1.5";
const ADMIN: &str = "10.0.1.9";
const API: &str = "10.0.2.7";
const PG: &str = "10.0.3.1";
const REDIS: &str = "10.0.4.1";
const DNS: &str = "10.0.5.1";
const STOCK: &str = "10.0.6.1";

fn judge(
    s: &PolicySnapshot,
    src: &str,
    dst: &str,
    port: u16,
    app: AppProto,
    req: &RequestDetail<'_>,
    norm: Option<&str>,
) -> Decision {
    s.judge_request(
        &ep(s, src),
        &ep(s, dst),
        port,
        app,
        req,
        norm.map(str::as_bytes),
    )
}

/// `(action, rule name or "default")`.
fn verdict(s: &PolicySnapshot, d: &Decision) -> (Action, String) {
    (
        d.action,
        d.rule
            .map_or("default".to_owned(), |r| s.rule_name(r).to_owned()),
    )
}

fn http<'a>(
    method: &'a str,
    path: &'a str,
    host: Option<&'a str>,
    headers: &'a [Header<'a>],
) -> RequestDetail<'a> {
    RequestDetail::Http(HttpRequest {
        version: HttpVersion::Http11,
        method: method.as_bytes(),
        path: path.as_bytes(),
        authority: host.map(str::as_bytes),
        user_agent: None,
        content_type: None,
        headers,
    })
}

/// Judges an HTTP request from web to api:8080, passing the path as already normalised.
fn web_api(s: &PolicySnapshot, method: &str, path: &str, host: Option<&str>) -> (Action, String) {
    let req = http(method, path, host, &[]);
    let d = judge(s, WEB, API, 8080, AppProto::Http, &req, Some(path));
    verdict(s, &d)
}

fn allow(r: &str) -> (Action, String) {
    (Action::Allow, r.to_owned())
}
fn deny(r: &str) -> (Action, String) {
    (Action::Deny, r.to_owned())
}
fn alert(r: &str) -> (Action, String) {
    (Action::Alert, r.to_owned())
}

#[test]
fn host_normalisation() {
    assert_eq!(host_of(b"orders.shop:8080"), b"orders.shop");
    assert_eq!(host_of(b"orders.shop."), b"orders.shop");
    assert_eq!(host_of(b"orders.shop.:80"), b"orders.shop");
    assert_eq!(host_of(b"[fd00::1]:443"), b"fd00::1");
    assert_eq!(host_of(b"[fd00::1"), b"fd00::1");
    assert_eq!(host_of(b"user:pw@orders.shop:1"), b"orders.shop");
    assert_eq!(host_of(b"fd00::1"), b"fd00::1");
    assert_eq!(host_of(b""), b"");
    assert_eq!(host_of(b"a@b@h:1"), b"h");
    assert_eq!(host_of(b"u:p@h"), b"h");
    // The one-pass scan agrees with the plain definition on every string of up to 6
    // bytes over the bytes that matter.
    let plain = |a: &[u8]| -> Vec<u8> {
        let a = match a.iter().rposition(|&b| b == b'@') {
            Some(i) => &a[i + 1..],
            None => a,
        };
        let mut h = if let Some(rest) = a.strip_prefix(b"[") {
            rest.iter()
                .position(|&b| b == b']')
                .map_or(rest, |e| &rest[..e])
        } else if a.iter().filter(|&&b| b == b':').count() == 1 {
            &a[..a.iter().position(|&b| b == b':').unwrap()]
        } else {
            a
        };
        while let Some(rest) = h.strip_suffix(b".") {
            h = rest;
        }
        h.to_vec()
    };
    const ALPHABET: &[u8] = b"a@:[].";
    for len in 0..=6u32 {
        for mut code in 0..ALPHABET.len().pow(len) {
            let mut v = Vec::new();
            for _ in 0..len {
                v.push(ALPHABET[code % ALPHABET.len()]);
                code /= ALPHABET.len();
            }
            assert_eq!(host_of(&v), plain(&v), "{:?}", String::from_utf8_lossy(&v));
        }
    }
}

#[test]
fn http_methods_paths_hosts() {
    let s = snap(
        "  mode: protect\n",
        r#"    - id: api
      from: [web]
      to: [api]
      ports: [8080]
      app: http
      http:
        - {methods: [GET], paths: ["/api/orders/*"], hosts: ["orders.shop"]}
        - {methods: [POST], paths: ["/api/orders"]}
        - {paths: ["/users/*/profile", "regex:/v[0-9]+/items"]}
        - {methods: [GET], hosts: ["*.cdn.shop"]}
      action: allow
"#,
    );
    let ok = allow("api");
    let no = deny("default");
    assert_eq!(web_api(&s, "GET", "/api/orders/7", Some("orders.shop")), ok);
    assert_eq!(
        web_api(&s, "GET", "/api/orders/7/items", Some("orders.shop")),
        ok
    );
    // Host: case-insensitive, port and trailing dot stripped.
    assert_eq!(
        web_api(&s, "GET", "/api/orders/7", Some("ORDERS.Shop:8080")),
        ok
    );
    assert_eq!(
        web_api(&s, "GET", "/api/orders/7", Some("orders.shop.")),
        ok
    );
    assert_eq!(web_api(&s, "GET", "/api/orders/7", Some("evil.shop")), no);
    assert_eq!(web_api(&s, "GET", "/api/orders/7", None), no);
    // Methods are exact and case-sensitive.
    assert_eq!(web_api(&s, "get", "/api/orders/7", Some("orders.shop")), no);
    assert_eq!(
        web_api(&s, "DELETE", "/api/orders/7", Some("orders.shop")),
        no
    );
    // `/*` is strictly beneath.
    assert_eq!(web_api(&s, "GET", "/api/orders", Some("orders.shop")), no);
    assert_eq!(web_api(&s, "POST", "/api/orders", None), ok);
    assert_eq!(web_api(&s, "POST", "/api/orders/1", None), no);
    // `*` is exactly one segment.
    assert_eq!(web_api(&s, "PUT", "/users/42/profile", None), ok);
    assert_eq!(web_api(&s, "PUT", "/users/42/x/profile", None), no);
    assert_eq!(web_api(&s, "PUT", "/users//profile", None), no);
    // regex: matches the whole path.
    assert_eq!(web_api(&s, "PUT", "/v2/items", None), ok);
    assert_eq!(web_api(&s, "PUT", "/v2/items/x", None), no);
    assert_eq!(web_api(&s, "PUT", "/x/v2/items", None), no);
    // Host globs: one or more labels.
    assert_eq!(web_api(&s, "GET", "/", Some("img.cdn.shop")), ok);
    assert_eq!(web_api(&s, "GET", "/", Some("a.b.cdn.shop:443")), ok);
    assert_eq!(web_api(&s, "GET", "/", Some("cdn.shop")), no);
    // The query is not part of the path.
    let req = http("POST", "/api/orders?x=1", None, &[]);
    let d = judge(&s, WEB, API, 8080, AppProto::Http, &req, None);
    assert_eq!(verdict(&s, &d), ok);
    assert!(d.l7_constrained);
    // The normalised path is what is judged, not the raw one.
    let req = http("POST", "/api/x/../orders", None, &[]);
    let d = judge(
        &s,
        WEB,
        API,
        8080,
        AppProto::Http,
        &req,
        Some("/api/orders"),
    );
    assert_eq!(verdict(&s, &d), ok);
    // HTTP/2 is `http` too.
    let d = judge(
        &s,
        WEB,
        API,
        8080,
        AppProto::Http2,
        &req,
        Some("/api/orders"),
    );
    assert_eq!(verdict(&s, &d), ok);
    // Wrong port or source: the rule does not cover the flow.
    let d = judge(
        &s,
        WEB,
        API,
        8081,
        AppProto::Http,
        &req,
        Some("/api/orders"),
    );
    assert_eq!(verdict(&s, &d), no);
    let d = judge(
        &s,
        ADMIN,
        API,
        8080,
        AppProto::Http,
        &req,
        Some("/api/orders"),
    );
    assert_eq!(verdict(&s, &d), no);
}

#[test]
fn http_headers() {
    let s = snap(
        "",
        r#"    - id: json-post
      from: [web]
      to: [api]
      app: http
      http: [{methods: [POST], headers: {Content-Type: application/json, x-tenant: a}}]
      action: allow
"#,
    );
    let judge_h = |hs: &[Header<'_>]| {
        let req = http("POST", "/", None, hs);
        verdict(
            &s,
            &judge(&s, WEB, API, 80, AppProto::Http, &req, Some("/")),
        )
    };
    let h = |n: &'static str, v: &'static str| Header {
        name: n.as_bytes(),
        value: v.as_bytes(),
    };
    assert_eq!(
        judge_h(&[h("content-type", "application/json"), h("X-Tenant", "a")]),
        allow("json-post")
    );
    // Every listed header must be present; values are exact.
    assert_eq!(
        judge_h(&[h("content-type", "application/json")]),
        deny("default")
    );
    assert_eq!(
        judge_h(&[h("content-type", "application/JSON"), h("x-tenant", "a")]),
        deny("default")
    );
}

#[test]
fn deny_wins_and_unconstrained_allow() {
    let s = snap(
        "  mode: protect\n",
        r#"    - {id: all-http, from: [web], to: [api], app: http, action: allow}
    - id: no-admin
      from: ["*"]
      to: [api]
      app: http
      http: [{paths: ["/admin/*"]}]
      action: deny
      severity: critical
      capture: true
    - id: watch-delete
      from: [web]
      to: [api]
      app: http
      http: [{methods: [DELETE]}]
      action: alert
    - id: get-only
      from: [web]
      to: [api]
      app: http
      http: [{methods: [GET]}]
      action: allow
"#,
    );
    // The unconstrained allow admits everything not denied/alerted.
    assert_eq!(web_api(&s, "PUT", "/x", None), allow("all-http"));
    let req = http("PUT", "/x", None, &[]);
    let d = judge(&s, WEB, API, 80, AppProto::Http, &req, Some("/x"));
    assert!(!d.l7_constrained && !d.capture && !d.enforce);
    // Deny wins over the allows, whatever the order, and carries its severity/capture.
    assert_eq!(web_api(&s, "GET", "/admin/users", None), deny("no-admin"));
    let req = http("GET", "/admin/users", None, &[]);
    let d = judge(&s, WEB, API, 80, AppProto::Http, &req, Some("/admin/users"));
    assert_eq!(
        (d.enforce, d.severity, d.capture),
        (true, Severity::Critical, true)
    );
    // Alert beats allow, loses to deny.
    assert_eq!(web_api(&s, "DELETE", "/x", None), alert("watch-delete"));
    assert_eq!(web_api(&s, "DELETE", "/admin/x", None), deny("no-admin"));
    // Same decision as at L4 for the flow itself.
    let f = s.judge_flow(
        &ep(&s, WEB),
        &ep(&s, API),
        80,
        Transport::Tcp,
        Some(AppProto::Http),
    );
    assert_eq!(s.rule_name(f.rule.unwrap()), "all-http");
    assert!(
        f.capture,
        "the L7 deny's capture applies to the flow from the start"
    );
}

#[test]
fn l4_deny_gives_the_same_answer() {
    let s = snap(
        "  mode: protect\n",
        r#"    - {id: get, from: [web], to: [api], app: http, http: [{methods: [GET]}], action: allow}
    - {id: block-8443, from: ["*"], to: [api], ports: [8443], action: deny}
    - {id: watch, from: [web], to: [api], ports: [9000], action: alert}
"#,
    );
    let req = http("GET", "/", None, &[]);
    let j = |port| {
        verdict(
            &s,
            &judge(&s, WEB, API, port, AppProto::Http, &req, Some("/")),
        )
    };
    assert_eq!(j(80), allow("get"));
    assert_eq!(j(8443), deny("block-8443"));
    assert_eq!(j(9000), alert("watch"));
    let flow = s.judge_flow(
        &ep(&s, WEB),
        &ep(&s, API),
        8443,
        Transport::Tcp,
        Some(AppProto::Http),
    );
    assert_eq!(
        (flow.action, flow.rule),
        (Action::Deny, s.rule_by_name("block-8443"))
    );
}

#[test]
fn fall_through_to_each_mode() {
    let rules = r#"    - {id: get, from: [web], to: [api], app: http, http: [{methods: [GET]}], action: allow}
"#;
    let post = |s: &PolicySnapshot| {
        let req = http("POST", "/", None, &[]);
        judge(s, WEB, API, 80, AppProto::Http, &req, Some("/"))
    };
    let s = snap("  mode: protect\n", rules);
    let d = post(&s);
    assert_eq!(
        (d.action, d.rule, d.mode, d.enforce),
        (Action::Deny, None, Mode::Protect, true)
    );
    let s = snap("  mode: protect\n  defaultAction: allow\n", rules);
    let d = post(&s);
    assert_eq!((d.action, d.rule, d.enforce), (Action::Allow, None, false));
    let s = snap("  mode: monitor\n", rules);
    let d = post(&s);
    assert_eq!(
        (d.action, d.rule, d.mode, d.enforce),
        (Action::Alert, None, Mode::Monitor, false)
    );
    let s = snap("  mode: learn\n", rules);
    let d = post(&s);
    assert_eq!(
        (d.action, d.rule, d.mode),
        (Action::Allow, None, Mode::Learn)
    );
    // A deny in monitor mode reports Deny without enforcing.
    let s = snap(
        "  mode: monitor\n",
        "    - {id: no-post, from: [web], to: [api], app: http, http: [{methods: [POST]}], action: deny}\n",
    );
    let d = post(&s);
    assert_eq!(
        (d.action, d.enforce, d.mode),
        (Action::Deny, false, Mode::Monitor)
    );
    // No covering rule at all: the mode too, as judge_flow.
    let s = snap("  mode: protect\n", rules);
    let req = http("GET", "/", None, &[]);
    let d = judge(&s, ADMIN, API, 80, AppProto::Http, &req, Some("/"));
    let f = s.judge_flow(
        &ep(&s, ADMIN),
        &ep(&s, API),
        80,
        Transport::Tcp,
        Some(AppProto::Http),
    );
    assert_eq!(d, f);
}

#[test]
fn l7_rule_for_another_protocol_does_not_apply() {
    let s = snap(
        "",
        "    - {id: get, from: [web], to: [api], app: http, http: [{methods: [GET]}], action: allow}\n",
    );
    // A gRPC flow is not judged by `app: http` rules.
    let call = RequestDetail::Grpc(GrpcCall {
        http: HttpRequest {
            version: HttpVersion::Http2,
            method: b"POST",
            path: b"/stock.v1.Stock/Get",
            authority: None,
            user_agent: None,
            content_type: None,
            headers: &[],
        },
        service: b"stock.v1.Stock",
        method: b"Get",
    });
    let d = judge(&s, WEB, API, 80, AppProto::Grpc, &call, None);
    assert_eq!(verdict(&s, &d), deny("default"));
    // No typed detail: no L7 clause can match.
    let d = judge(&s, WEB, API, 80, AppProto::Http, &RequestDetail::None, None);
    assert_eq!(verdict(&s, &d), deny("default"));
}

fn grpc<'a>(service: &'a str, method: &'a str) -> RequestDetail<'a> {
    RequestDetail::Grpc(GrpcCall {
        http: HttpRequest {
            version: HttpVersion::Http2,
            method: b"POST",
            path: b"/",
            authority: None,
            user_agent: None,
            content_type: None,
            headers: &[],
        },
        service: service.as_bytes(),
        method: method.as_bytes(),
    })
}

#[test]
fn grpc_service_and_methods() {
    let s = snap(
        "",
        r#"    - id: stock
      from: [api]
      to: [stock]
      app: grpc
      grpc: [{service: stock.v1.Stock, methods: [Get, Reserve]}, {service: grpc.health.v1.Health}]
      action: allow
    - {id: no-admin, from: ["*"], to: [stock], app: grpc, grpc: [{methods: [Admin]}], action: deny}
"#,
    );
    let j = |svc, m| {
        verdict(
            &s,
            &judge(&s, API, STOCK, 50051, AppProto::Grpc, &grpc(svc, m), None),
        )
    };
    assert_eq!(j("stock.v1.Stock", "Get"), allow("stock"));
    assert_eq!(j("stock.v1.Stock", "Reserve"), allow("stock"));
    assert_eq!(j("stock.v1.Stock", "Delete"), deny("default"));
    assert_eq!(j("stock.v1.stock", "Get"), deny("default"));
    assert_eq!(j("grpc.health.v1.Health", "Check"), allow("stock"));
    assert_eq!(j("grpc.health.v1.Health", "Admin"), deny("no-admin"));
    assert_eq!(j("other.Svc", "Admin"), deny("no-admin"));
}

fn stmt<'a>(verb: SqlVerb<'a>, tables: &'a [&'a str]) -> SqlStatement<'a> {
    SqlStatement {
        verb,
        tables,
        text: b"",
    }
}

fn sql<'a>(
    kind: SqlKind,
    user: Option<&'a str>,
    db: Option<&'a str>,
    statements: &'a [SqlStatement<'a>],
) -> RequestDetail<'a> {
    RequestDetail::Sql(SqlRequest {
        dialect: SqlDialect::Postgres,
        kind,
        user: user.map(str::as_bytes),
        database: db.map(str::as_bytes),
        text: b"",
        statements,
    })
}

const SQL_RULES: &str = r#"    - id: orders-db
      from: [api]
      to: [db]
      ports: [5432]
      app: postgres
      sql: [{verbs: [select, INSERT], tables: [orders, shop.order_items], users: [orders_svc], databases: [shop]}]
      action: allow
    - {id: no-drop, from: ["*"], to: [db], app: postgres, sql: [{verbs: [DROP, TRUNCATE]}], action: deny}
    - {id: no-secrets, from: ["*"], to: [db], app: postgres, sql: [{tables: [secrets]}], action: deny}
    - {id: no-superuser, from: ["*"], to: [db], app: postgres, sql: [{users: [postgres]}], action: deny}
"#;

fn pg(s: &PolicySnapshot, req: &RequestDetail<'_>) -> (Action, String) {
    verdict(s, &judge(s, API, PG, 5432, AppProto::Postgres, req, None))
}

#[test]
fn sql_verbs_tables_users() {
    let s = snap("  mode: protect\n", SQL_RULES);
    let user = Some("orders_svc");
    let db = Some("shop");
    let q = |sts: &[SqlStatement<'_>]| pg(&s, &sql(SqlKind::Query, user, db, sts));
    assert_eq!(q(&[stmt(SqlVerb::Select, &["orders"])]), allow("orders-db"));
    // Verbs are case-insensitive on both sides (the classifier's `Other` keeps what it saw).
    assert_eq!(
        q(&[stmt(SqlVerb::Other("SeLeCt"), &["orders"])]),
        allow("orders-db")
    );
    assert_eq!(q(&[stmt(SqlVerb::Insert, &["ORDERS"])]), allow("orders-db"));
    assert_eq!(q(&[stmt(SqlVerb::Update, &["orders"])]), deny("default"));
    // Every table touched must be listed.
    assert_eq!(
        q(&[stmt(SqlVerb::Select, &["orders", "shop.order_items"])]),
        allow("orders-db")
    );
    assert_eq!(
        q(&[stmt(SqlVerb::Select, &["orders", "customers"])]),
        deny("default")
    );
    // A statement touching no table passes the tables check of an allow.
    assert_eq!(q(&[stmt(SqlVerb::Select, &[])]), allow("orders-db"));
    // Schema-qualified: bare listed name matches any schema; `shop.order_items` matches
    // itself and the bare name, never another schema.
    assert_eq!(
        q(&[stmt(SqlVerb::Select, &["public.orders"])]),
        allow("orders-db")
    );
    assert_eq!(
        q(&[stmt(SqlVerb::Select, &["order_items"])]),
        allow("orders-db")
    );
    assert_eq!(
        q(&[stmt(SqlVerb::Select, &["other.order_items"])]),
        deny("default")
    );
    // Users and databases are exact.
    let r = pg(
        &s,
        &sql(
            SqlKind::Query,
            Some("ORDERS_SVC"),
            db,
            &[stmt(SqlVerb::Select, &["orders"])],
        ),
    );
    assert_eq!(r, deny("default"));
    let r = pg(
        &s,
        &sql(
            SqlKind::Query,
            user,
            Some("dev"),
            &[stmt(SqlVerb::Select, &["orders"])],
        ),
    );
    assert_eq!(r, deny("default"));
    // A flow picked up mid-stream (no login seen) matches no clause listing users.
    let r = pg(
        &s,
        &sql(
            SqlKind::Query,
            None,
            None,
            &[stmt(SqlVerb::Select, &["orders"])],
        ),
    );
    assert_eq!(r, deny("default"));
    // Deny on tables: any listed table touched.
    assert_eq!(
        q(&[stmt(SqlVerb::Select, &["orders", "public.secrets"])]),
        deny("no-secrets")
    );
    assert_eq!(q(&[stmt(SqlVerb::Drop, &["orders"])]), deny("no-drop"));
}

#[test]
fn sql_multi_statement_bypass() {
    let s = snap("  mode: protect\n", SQL_RULES);
    let (user, db) = (Some("orders_svc"), Some("shop"));
    let sts = [stmt(SqlVerb::Select, &[]), stmt(SqlVerb::Drop, &["t"])];
    assert_eq!(
        pg(&s, &sql(SqlKind::Query, user, db, &sts)),
        deny("no-drop")
    );
    // Allowed statement then one nobody allows: the request is not allowed.
    let sts = [
        stmt(SqlVerb::Select, &["orders"]),
        stmt(SqlVerb::Delete, &["orders"]),
    ];
    assert_eq!(
        pg(&s, &sql(SqlKind::Query, user, db, &sts)),
        deny("default")
    );
    // Several allowed statements are allowed; a prepared execution is judged alike.
    let sts = [
        stmt(SqlVerb::Select, &["orders"]),
        stmt(SqlVerb::Insert, &["order_items"]),
    ];
    assert_eq!(
        pg(&s, &sql(SqlKind::Query, user, db, &sts)),
        allow("orders-db")
    );
    assert_eq!(
        pg(&s, &sql(SqlKind::Execute, user, db, &sts)),
        allow("orders-db")
    );
    // In monitor mode the worst statement still decides: an alert, not an allow.
    let s = snap("  mode: monitor\n", SQL_RULES);
    let sts = [
        stmt(SqlVerb::Select, &["orders"]),
        stmt(SqlVerb::Update, &["orders"]),
    ];
    let d = judge(
        &s,
        API,
        PG,
        5432,
        AppProto::Postgres,
        &sql(SqlKind::Query, user, db, &sts),
        None,
    );
    assert_eq!((d.action, d.rule), (Action::Alert, None));
}

#[test]
fn sql_login() {
    let s = snap("  mode: protect\n", SQL_RULES);
    let login = |u, db| pg(&s, &sql(SqlKind::Login, u, db, &[]));
    // The allow's users/databases admit the login even though it lists verbs/tables.
    assert_eq!(login(Some("orders_svc"), Some("shop")), allow("orders-db"));
    assert_eq!(login(Some("orders_svc"), Some("dev")), deny("default"));
    // A deny listing only users refuses the login; one listing verbs or tables does not.
    assert_eq!(login(Some("postgres"), Some("shop")), deny("no-superuser"));
    let s2 = snap(
        "  mode: protect\n",
        r#"    - {id: any, from: [api], to: [db], app: postgres, action: allow}
    - {id: no-drop, from: ["*"], to: [db], app: postgres, sql: [{verbs: [DROP]}], action: deny}
    - {id: no-secrets, from: ["*"], to: [db], app: postgres, sql: [{tables: [secrets]}], action: deny}
    - {id: no-login, from: ["*"], to: [db], app: postgres, sql: [{verbs: [LOGIN], users: [guest]}], action: deny}
"#,
    );
    assert_eq!(
        pg(&s2, &sql(SqlKind::Login, Some("x"), None, &[])),
        allow("any")
    );
    assert_eq!(
        pg(&s2, &sql(SqlKind::Login, Some("guest"), None, &[])),
        deny("no-login")
    );
    // `USE db` without statements is verb USE.
    let s3 = snap(
        "  mode: protect\n",
        "    - {id: use, from: [api], to: [db], app: mysql, sql: [{verbs: [USE], databases: [shop]}], action: allow}\n",
    );
    let req = RequestDetail::Sql(SqlRequest {
        dialect: SqlDialect::Mysql,
        kind: SqlKind::UseDatabase,
        user: Some(b"u"),
        database: Some(b"shop"),
        text: b"",
        statements: &[],
    });
    let d = judge(&s3, API, PG, 3306, AppProto::Mysql, &req, None);
    assert_eq!(verdict(&s3, &d), allow("use"));
    // `app: mysql` rules do not judge postgres flows.
    let d = judge(&s3, API, PG, 3306, AppProto::Postgres, &req, None);
    assert_eq!(verdict(&s3, &d), deny("default"));
}

fn redis<'a>(cmd: &'a str, key: Option<&'a str>) -> RequestDetail<'a> {
    RequestDetail::Redis(RedisCommand {
        command: cmd.as_bytes(),
        key: key.map(str::as_bytes),
        argc: 2,
    })
}

#[test]
fn redis_commands_and_keys() {
    let s = snap(
        "  mode: protect\n",
        r#"    - {id: reads, from: [api], to: [cache], app: redis, redis: [{commands: [GET, MGET], keys: ["session:*", "cfg:?"]}], action: allow}
    - {id: ping, from: [api], to: [cache], app: redis, redis: [{commands: [PING]}], action: allow}
    - {id: no-flush, from: ["*"], to: [cache], app: redis, redis: [{commands: [FLUSHALL, FLUSHDB, CONFIG]}], action: deny, capture: true}
"#,
    );
    let j = |c, k| {
        verdict(
            &s,
            &judge(&s, API, REDIS, 6379, AppProto::Redis, &redis(c, k), None),
        )
    };
    assert_eq!(j("GET", Some("session:abc")), allow("reads"));
    assert_eq!(j("get", Some("session:abc")), allow("reads"));
    assert_eq!(j("GET", Some("cfg:1")), allow("reads"));
    assert_eq!(j("GET", Some("cfg:12")), deny("default"));
    assert_eq!(j("GET", Some("Session:abc")), deny("default"));
    assert_eq!(j("GET", None), deny("default"));
    assert_eq!(j("SET", Some("session:abc")), deny("default"));
    assert_eq!(j("ping", None), allow("ping"));
    assert_eq!(j("FlushAll", None), deny("no-flush"));
    let d = judge(
        &s,
        API,
        REDIS,
        6379,
        AppProto::Redis,
        &redis("flushall", None),
        None,
    );
    assert!(d.capture && d.enforce);
}

fn dns(name: &str) -> RequestDetail<'_> {
    RequestDetail::Dns(DnsQuestion {
        qname: name,
        qtype: 1,
        qclass: 1,
        msg_id: 7,
    })
}

#[test]
fn dns_names() {
    let s = snap(
        "  mode: protect\n",
        r#"    - {id: cluster, from: ["*"], to: [dns], app: dns, dns: [{names: ["*.svc.cluster.local", "example.com"]}], action: allow}
    - {id: no-evil, from: ["*"], to: [dns], app: dns, dns: [{names: ["*.evil.test"]}], action: deny}
"#,
    );
    let j = |n| verdict(&s, &judge(&s, WEB, DNS, 53, AppProto::Dns, &dns(n), None));
    assert_eq!(j("orders.shop.svc.cluster.local"), allow("cluster"));
    assert_eq!(j("a.svc.cluster.local."), allow("cluster"));
    assert_eq!(j("svc.cluster.local"), deny("default"));
    assert_eq!(j("Example.COM"), allow("cluster"));
    assert_eq!(j("www.example.com"), deny("default"));
    assert_eq!(j("x.y.evil.test"), deny("no-evil"));
    // DNS over TCP, with the transport given.
    let d = s.judge_transaction(
        &ep(&s, WEB),
        &ep(&s, DNS),
        53,
        Transport::Tcp,
        AppProto::Dns,
        &dns("a.svc.cluster.local"),
        None,
    );
    assert_eq!(verdict(&s, &d), allow("cluster"));
}

#[test]
fn tls_sni_and_alpn() {
    let s = snap(
        "  mode: protect\n",
        r#"    - {id: h2-api, from: [web], to: [world], app: tls, tls: [{sni: ["*.example.com"], alpn: [h2]}], action: allow}
    - {id: bank, from: [web], to: [world], app: tls, tls: [{sni: [bank.test]}], action: allow}
"#,
    );
    let hello = |sni: Option<&'static str>, alpn: &'static [&'static [u8]]| {
        RequestDetail::Tls(TlsClientHello {
            sni: sni.map(str::as_bytes),
            alpn,
            version: 0x0304,
        })
    };
    let j = |r: RequestDetail<'_>| {
        verdict(
            &s,
            &judge(&s, WEB, "93.184.216.34", 443, AppProto::Tls, &r, None),
        )
    };
    assert_eq!(
        j(hello(Some("api.example.com"), &[b"http/1.1", b"h2"])),
        allow("h2-api")
    );
    assert_eq!(j(hello(Some("API.Example.com"), &[b"h2"])), allow("h2-api"));
    assert_eq!(
        j(hello(Some("api.example.com"), &[b"http/1.1"])),
        deny("default")
    );
    assert_eq!(j(hello(Some("api.example.com"), &[])), deny("default"));
    assert_eq!(j(hello(Some("bank.test"), &[])), allow("bank"));
    assert_eq!(j(hello(None, &[b"h2"])), deny("default"));
}

#[test]
fn many_clauses_split_into_tables() {
    // 2 rules x 3000 paths to one group: more clauses than one table holds.
    let mut rules = String::new();
    for r in 0..2 {
        rules.push_str(&format!(
            "    - id: r{r}\n      from: [web]\n      to: [api]\n      app: http\n      http:\n"
        ));
        for i in 0..3000 {
            rules.push_str(&format!("        - {{paths: [\"/r{r}/p{i}\"]}}\n"));
        }
        rules.push_str("      action: allow\n");
    }
    let s = snap("  mode: protect\n", &rules);
    assert!(s.l7_index().tables.len() >= 2);
    // Tables this wide are judged with full-width scratch bitsets.
    assert!(s.l7_index().max_words > NARROW_WORDS);
    assert_eq!(web_api(&s, "GET", "/r0/p5", None), allow("r0"));
    assert_eq!(web_api(&s, "GET", "/r1/p2999", None), allow("r1"));
    assert_eq!(web_api(&s, "GET", "/r1/p3000", None), deny("default"));
}

#[test]
fn lowest_rule_names_the_decision() {
    let s = snap(
        "",
        r#"    - {id: a1, from: [web], to: [api], app: http, http: [{methods: [GET]}], action: allow}
    - {id: d1, from: [web], to: [api], app: http, http: [{paths: ["/x/*"]}], action: deny, severity: low}
    - {id: d0, from: [web], to: [api], ports: [81], action: deny}
    - {id: a0, from: ["*"], to: [api], app: http, http: [{hosts: ["h"]}], action: allow}
"#,
    );
    assert_eq!(web_api(&s, "GET", "/y", None), allow("a1"));
    assert_eq!(web_api(&s, "POST", "/y", Some("h")), allow("a0"));
    assert_eq!(web_api(&s, "GET", "/x/1", None), deny("d1"));
    let req = http("GET", "/x/1", None, &[]);
    let d = judge(&s, WEB, API, 81, AppProto::Http, &req, Some("/x/1"));
    assert_eq!(verdict(&s, &d), deny("d1"), "d1 is declared before d0");
    assert_eq!(d.severity, Severity::Low);
}

#[test]
fn paths_are_judged_normalised() {
    let s = snap(
        "  mode: protect\n",
        r#"    - {id: api, from: [web], to: [api], app: http, http: [{paths: ["/api/*", "/%7euser/*", "/caf%c3%a9"]}], action: allow}
    - {id: no-admin, from: ["*"], to: [api], app: http, http: [{paths: ["/admin/*"]}], action: deny}
"#,
    );
    let j = |raw: &str| {
        let mut norm = String::new();
        proto_parsers::http::normalize_path(raw.as_bytes(), &mut norm);
        let req = http("GET", raw, None, &[]);
        verdict(
            &s,
            &judge(&s, WEB, API, 80, AppProto::Http, &req, Some(&norm)),
        )
    };
    assert_eq!(j("/api/x"), allow("api"));
    // Dot segments, encoded dots and repeated slashes cannot dodge the deny.
    assert_eq!(j("/api/../admin/users"), deny("no-admin"));
    assert_eq!(j("/api/%2e%2e/admin/users"), deny("no-admin"));
    assert_eq!(j("//admin//users"), deny("no-admin"));
    assert_eq!(j("/admin/users?x=/api/y"), deny("no-admin"));
    // Rule paths are normalised alike: `%7e` is `~`, escapes compare by value.
    assert_eq!(j("/~user/x"), allow("api"));
    assert_eq!(j("/%7Euser/x"), allow("api"));
    assert_eq!(j("/caf%C3%A9"), allow("api"));
    assert_eq!(j("/café"), allow("api"));
}

#[test]
fn id_to_row_maps_agree_with_a_binary_search() {
    let spread: Vec<u32> = (0..300).step_by(7).collect();
    for ids in [vec![], vec![0], vec![3, 9, 40], vec![5, 100_000], spread] {
        let f = Find::new(&ids);
        let end = ids.last().copied().unwrap_or(0) + 20;
        for id in (0..end).chain([u32::MAX]) {
            assert_eq!(f.row(id), ids.binary_search(&id).ok(), "{ids:?} {id}");
        }
    }
    // Dense only where the listed ids fill enough of their span.
    assert!(matches!(Find::new(&[3, 9, 40]), Find::Dense(_)));
    assert!(matches!(Find::new(&[5, 100_000]), Find::Sorted(_)));
}

#[test]
fn postings_in_every_layout_give_the_listed_clauses() {
    // Clause c lists the ids in `lists[c]` (`None`: the field is absent, a wild clause).
    let check = |n: usize, lists: &[Option<Vec<u32>>], layout: &str| {
        let fx = FieldIx::build(n, lists.iter().map(|l| l.as_deref())).expect("constrained");
        let name = match &fx.postings {
            Postings::Direct { .. } => "direct",
            Postings::Rows { .. } => "rows",
            Postings::Each { .. } => "each",
        };
        assert_eq!(name, layout);
        let max = lists.iter().flatten().flatten().copied().max().unwrap_or(0);
        for id in (0..max + 3).chain([u32::MAX]) {
            let mut out = vec![0u64; n.div_ceil(64)];
            fx.or_id(id, &mut out);
            for (c, l) in lists.iter().enumerate() {
                let listed = l.as_ref().is_some_and(|l| l.contains(&id));
                assert_eq!(
                    out[c / 64] >> (c % 64) & 1 == 1,
                    listed,
                    "{layout} id {id} clause {c}"
                );
            }
        }
        for (c, l) in lists.iter().enumerate() {
            assert_eq!(fx.wild.words()[c / 64] >> (c % 64) & 1 == 1, l.is_none());
        }
    };
    let narrow: Vec<Option<Vec<u32>>> = (0..100)
        .map(|c| (c % 5 != 0).then(|| vec![c % 7, c % 11]))
        .collect();
    check(100, &narrow, "direct");
    let sparse: Vec<Option<Vec<u32>>> = (0..100)
        .map(|c| (c % 5 != 0).then(|| vec![c * 1_000, 7]))
        .collect();
    check(100, &sparse, "rows");
    let wide: Vec<Option<Vec<u32>>> = (0..300)
        .map(|c| (c % 5 != 0).then(|| vec![c % 13]))
        .collect();
    check(300, &wide, "each");
}

#[test]
fn the_per_flow_cache_follows_the_flow_and_the_snapshot() {
    let rules = r#"    - {id: all-http, from: [web], to: [api], app: http, action: allow}
    - {id: admin-get, from: [admin], to: [api], app: http, http: [{methods: [GET]}], action: allow}
    - {id: web-8080, from: [web], to: [stock], ports: [8080], action: allow}
"#;
    let s1 = snap("  mode: protect\n", rules);
    let s2 = snap_version(
        "  mode: protect\n",
        "    - {id: no-web, from: [web], to: [api], app: http, action: deny}\n",
        2,
    );
    // One cache reused across flows, ports, apps and snapshots, as a careless caller might:
    // every answer must be the uncached one.
    let mut cache = None;
    let mut cached = |s: &PolicySnapshot, src: &str, dst: &str, port: u16, app, method| {
        let req = http(method, "/x", None, &[]);
        let (src, dst) = (ep(s, src), ep(s, dst));
        let d = s.judge_transaction_cached(
            &mut cache,
            &src,
            &dst,
            port,
            Transport::Tcp,
            app,
            &req,
            Some(b"/x".as_slice()),
        );
        let plain = s.judge_transaction(
            &src,
            &dst,
            port,
            Transport::Tcp,
            app,
            &req,
            Some(b"/x".as_slice()),
        );
        assert_eq!(d, plain);
        verdict(s, &d)
    };
    assert_eq!(
        cached(&s1, WEB, API, 80, AppProto::Http, "PUT"),
        allow("all-http")
    );
    assert_eq!(
        cached(&s1, WEB, API, 80, AppProto::Http, "GET"),
        allow("all-http")
    );
    assert_eq!(
        cached(&s1, ADMIN, API, 80, AppProto::Http, "PUT"),
        deny("default")
    );
    assert_eq!(
        cached(&s1, ADMIN, API, 80, AppProto::Http, "GET"),
        allow("admin-get")
    );
    assert_eq!(
        cached(&s1, WEB, STOCK, 8080, AppProto::Http, "GET"),
        allow("web-8080")
    );
    assert_eq!(
        cached(&s1, WEB, STOCK, 9090, AppProto::Http, "GET"),
        deny("default")
    );
    assert_eq!(
        cached(&s1, WEB, API, 80, AppProto::Grpc, "GET"),
        deny("default")
    );
    assert_eq!(
        cached(&s1, WEB, API, 80, AppProto::Http, "GET"),
        allow("all-http")
    );
    // The same flow after a swap: the cache from version 1 is not used.
    assert_eq!(
        cached(&s2, WEB, API, 80, AppProto::Http, "GET"),
        deny("no-web")
    );
    // Nor is one from another snapshot that carries the same version number.
    let s3 = snap_version(
        "  mode: protect\n",
        "    - {id: admin-stock, from: [admin], to: [stock], action: allow}
    - {id: web-ok, from: [web], to: [api], app: http, action: allow}\n",
        2,
    );
    assert_eq!(
        cached(&s3, WEB, API, 80, AppProto::Http, "GET"),
        allow("web-ok")
    );
    assert_eq!(
        cached(&s2, WEB, API, 80, AppProto::Http, "GET"),
        deny("no-web")
    );
}

/// Which way the flow's cache judges its later transactions.
fn prepared_as(c: &Option<FlowRules>) -> &'static str {
    match c.as_ref().and_then(|r| r.prepared) {
        None => "nothing",
        Some((_, Prepared::Fixed(_))) => "fixed",
        Some((_, Prepared::Tables { .. })) => "tables",
        Some((_, Prepared::Index)) => "index",
    }
}

/// Judges `req` as a transaction of the flow `a -> b:port` (HTTP over TCP) with the flow's
/// cache, and checks that the uncached judge agrees.
fn on_flow(
    s: &PolicySnapshot,
    cache: &mut Option<FlowRules>,
    (a, b, port): (&Endpoint, &Endpoint, u16),
    req: &RequestDetail<'_>,
    path: Option<&str>,
) -> Decision {
    let (tcp, app) = (Transport::Tcp, AppProto::Http);
    let d = s.judge_transaction_cached(cache, a, b, port, tcp, app, req, path.map(str::as_bytes));
    assert_eq!(
        d,
        s.judge_transaction(a, b, port, tcp, app, req, path.map(str::as_bytes))
    );
    d
}

#[test]
fn a_flow_prepares_what_its_later_transactions_need() {
    let rules = r#"    - {id: db-blocked, from: [db], to: [api], action: deny}
    - {id: all-http, from: [web], to: [api], app: http, action: allow}
    - {id: admin-get, from: [admin], to: [api], app: http, http: [{methods: [GET]}], action: allow}
    - {id: no-delete, from: ["*"], to: [api], app: http, http: [{methods: [DELETE]}], action: deny}
    - {id: snoop, from: [admin], to: [api], ports: [9090], app: http, http: [{paths: ["/debug/*"]}], action: alert}
"#;
    let s = snap("  mode: protect\n", rules);
    // (source, destination, port, transactions as (method, path, verdict), then how the
    // flow's later transactions are judged)
    type Tx<'a> = (&'a str, &'a str, (Action, String));
    let cases: &[(&str, &str, u16, &[Tx<'_>], &str)] = &[
        // An allow without L7 matchers covers the flow; only the deny on DELETE can
        // change that.
        (
            WEB,
            API,
            8080,
            &[
                ("GET", "/a", allow("all-http")),
                ("DELETE", "/a", deny("no-delete")),
                ("GET", "/b", allow("all-http")),
            ],
            "tables",
        ),
        // A lower-numbered deny without L7 matchers: no clause can change it.
        (
            PG,
            API,
            8080,
            &[
                ("DELETE", "/a", deny("db-blocked")),
                ("GET", "/a", deny("db-blocked")),
            ],
            "fixed",
        ),
        // No rule names the destination: the default, whatever the request.
        (
            WEB,
            STOCK,
            8080,
            &[("GET", "/", deny("default")), ("PUT", "/", deny("default"))],
            "fixed",
        ),
        // L7 clauses decide; the alert on 9090 is not among this flow's.
        (
            ADMIN,
            API,
            8080,
            &[
                ("GET", "/debug/x", allow("admin-get")),
                ("PUT", "/debug/x", deny("default")),
                ("DELETE", "/x", deny("no-delete")),
                ("GET", "/y", allow("admin-get")),
            ],
            "tables",
        ),
        (
            ADMIN,
            API,
            9090,
            &[
                ("GET", "/x", allow("admin-get")),
                ("GET", "/debug/x", alert("snoop")),
                ("POST", "/debug/x", alert("snoop")),
            ],
            "tables",
        ),
    ];
    for (src, dst, port, txs, how) in cases {
        let mut cache = None;
        let (a, b) = (ep(&s, src), ep(&s, dst));
        for (i, (method, path, want)) in txs.iter().enumerate() {
            let req = http(method, path, None, &[]);
            let d = on_flow(&s, &mut cache, (&a, &b, *port), &req, Some(path));
            assert_eq!(
                verdict(&s, &d),
                *want,
                "{src} -> {dst}:{port} {method} {path}"
            );
            // The first transaction is judged through the index; the second prepares.
            let expect = if i == 0 { "nothing" } else { how };
            assert_eq!(prepared_as(&cache), expect, "{src} -> {dst}:{port} #{i}");
        }
        // A transaction of another kind on the same flow prepares for that kind.
        let grpc = RequestDetail::Grpc(GrpcCall {
            http: HttpRequest {
                version: HttpVersion::Http2,
                method: b"POST",
                path: b"/s.S/M",
                authority: None,
                user_agent: None,
                content_type: None,
                headers: &[],
            },
            service: b"s.S",
            method: b"M",
        });
        on_flow(&s, &mut cache, (&a, &b, *port), &grpc, None);
        assert_eq!(prepared_as(&cache), "fixed", "{src} -> {dst}:{port} gRPC");
    }

    // A table wider than a prepared one holds: judged through the index every time.
    let wide: String = (0..200)
        .map(|i| {
            format!(
                "    - {{id: r{i}, from: [admin], to: [api], app: http, http: [{{paths: [/p{i}]}}], action: allow}}\n"
            )
        })
        .collect();
    let s = snap("  mode: protect\n", &wide);
    let mut cache = None;
    let (a, b) = (ep(&s, ADMIN), ep(&s, API));
    for (path, want) in [
        ("/p7", allow("r7")),
        ("/p199", allow("r199")),
        ("/q", deny("default")),
    ] {
        let req = http("GET", path, None, &[]);
        let d = on_flow(&s, &mut cache, (&a, &b, 80), &req, Some(path));
        assert_eq!(verdict(&s, &d), want);
    }
    assert_eq!(prepared_as(&cache), "index");
}
