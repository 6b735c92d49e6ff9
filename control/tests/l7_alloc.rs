//! `judge_request` never allocates: a counting allocator watches this thread while every
//! kind of transaction is judged many times against a policy that uses every matcher form
//! (hash sets, DFAs, the per-pattern regex fallback, SQL tables, headers).
#![allow(unsafe_code)] // the counting allocator below; nothing else

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;

use control::{Action, compile, load_inventory_str, load_policy_str};
use proto_parsers::AppProto;
use proto_parsers::facts::{
    DnsQuestion, GrpcCall, Header, HttpRequest, HttpVersion, RedisCommand, RequestDetail,
    SqlDialect, SqlKind, SqlRequest, SqlStatement, SqlVerb, TlsClientHello,
};

struct Counting;

thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let _ = WATCH.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only
// bumps a thread-local counter, which neither allocates (const-initialised `Cell`) nor
// unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const INVENTORY: &str = r#"
apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: web, labels: {app: web}, ips: [10.0.1.5]}
  - {name: api, labels: {app: api}, ips: [10.0.2.7]}
"#;

const POLICY: &str = r#"
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: alloc}
spec:
  mode: protect
  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
  rules:
    - id: http
      from: [web]
      to: [api]
      app: http
      http:
        - {methods: [GET], paths: ["/api/*", "/exact", "/u/*/o"], hosts: ["*.shop", "api"]}
        - {paths: ["regex:/\\bword\\b.*"], headers: {x-k: v}}
      action: allow
    - {id: no-admin, from: ["*"], to: [api], app: http, http: [{paths: ["/admin/*"]}], action: deny}
    - {id: grpc, from: [web], to: [api], app: grpc, grpc: [{service: s.v1.S, methods: [Get]}], action: allow}
    - {id: sql, from: [web], to: [api], app: postgres, sql: [{verbs: [SELECT], tables: [t, s.u], users: [u]}], action: allow}
    - {id: no-drop, from: ["*"], to: [api], app: postgres, sql: [{verbs: [DROP], tables: [secrets]}], action: deny}
    - {id: redis, from: [web], to: [api], app: redis, redis: [{commands: [GET], keys: ["k:*"]}], action: allow}
    - {id: dns, from: [web], to: [api], app: dns, dns: [{names: ["*.svc.cluster.local"]}], action: allow}
    - {id: tls, from: [web], to: [api], app: tls, tls: [{sni: ["*.example.com"], alpn: [h2]}], action: allow}
"#;

#[test]
fn judging_does_not_allocate() {
    let p = load_policy_str(POLICY, "alloc.yaml").unwrap();
    let inv = load_inventory_str(INVENTORY, "inv.yaml").unwrap();
    let s = compile(&p.policy, &inv, 1).unwrap();
    let src = s.resolve("10.0.1.5".parse::<IpAddr>().unwrap());
    let dst = s.resolve("10.0.2.7".parse::<IpAddr>().unwrap());
    let headers = [Header {
        name: b"X-K",
        value: b"v",
    }];
    let http = HttpRequest {
        version: HttpVersion::Http11,
        method: b"GET",
        path: b"/api/x?q=1",
        authority: Some(b"a.shop:80"),
        user_agent: None,
        content_type: None,
        headers: &headers,
    };
    let tables: [&str; 2] = ["t", "S.U"];
    let stmts = [
        SqlStatement {
            verb: SqlVerb::Other("select"),
            tables: &tables,
            text: b"",
        },
        SqlStatement {
            verb: SqlVerb::Drop,
            tables: &["secrets"],
            text: b"",
        },
    ];
    let alpn: [&[u8]; 2] = [b"http/1.1", b"h2"];
    let cases: Vec<(AppProto, RequestDetail<'_>, Option<&[u8]>)> = vec![
        (AppProto::Http, RequestDetail::Http(http), Some(b"/api/x")),
        (AppProto::Http, RequestDetail::Http(http), Some(b"/word/x")),
        (AppProto::Http, RequestDetail::Http(http), Some(b"/admin/x")),
        (
            AppProto::Grpc,
            RequestDetail::Grpc(GrpcCall {
                http,
                service: b"s.v1.S",
                method: b"Get",
            }),
            None,
        ),
        (
            AppProto::Postgres,
            RequestDetail::Sql(SqlRequest {
                dialect: SqlDialect::Postgres,
                kind: SqlKind::Query,
                user: Some(b"u"),
                database: None,
                text: b"",
                statements: &stmts,
            }),
            None,
        ),
        (
            AppProto::Postgres,
            RequestDetail::Sql(SqlRequest {
                dialect: SqlDialect::Postgres,
                kind: SqlKind::Login,
                user: Some(b"u"),
                database: None,
                text: b"",
                statements: &[],
            }),
            None,
        ),
        (
            AppProto::Redis,
            RequestDetail::Redis(RedisCommand {
                command: b"get",
                key: Some(b"k:1"),
                argc: 2,
            }),
            None,
        ),
        (
            AppProto::Dns,
            RequestDetail::Dns(DnsQuestion {
                qname: "a.b.svc.cluster.local",
                qtype: 1,
                qclass: 1,
                msg_id: 1,
            }),
            None,
        ),
        (
            AppProto::Tls,
            RequestDetail::Tls(TlsClientHello {
                sni: Some(b"api.example.com"),
                alpn: &alpn,
                version: 0x0304,
            }),
            None,
        ),
    ];
    let want = [
        Action::Allow,
        Action::Allow,
        Action::Deny,
        Action::Allow,
        Action::Deny,
        Action::Allow,
        Action::Allow,
        Action::Allow,
        Action::Allow,
    ];
    // Warm-up: the lazy per-pattern regex (fallback for the Unicode `\b`) creates its
    // search cache for this thread on first use.
    for (app, req, path) in &cases {
        s.judge_request(&src, &dst, 80, *app, req, *path);
    }
    let mut got = Vec::with_capacity(cases.len());
    WATCH.with(|w| w.set(true));
    got.extend(
        cases
            .iter()
            .map(|(app, req, path)| s.judge_request(&src, &dst, 80, *app, req, *path).action),
    );
    for _ in 0..200 {
        for (app, req, path) in &cases {
            std::hint::black_box(s.judge_request(&src, &dst, 80, *app, req, *path));
        }
    }
    WATCH.with(|w| w.set(false));
    assert_eq!(COUNT.with(Cell::get), 0, "allocations while judging");
    assert_eq!(got, want);
}
