//! A deterministic east-west mix: the traffic between the workloads of a small shop
//! (47 pods in five namespaces, plus the kubelets of three nodes), its inventory, and a
//! ~200-rule policy with L7 constraints on every protocol, all derived from one table of
//! who talks to whom ([`EDGES`]).
//!
//! Each flow is a complete conversation over real framing: TCP handshakes, data cut at the
//! MSS, ACKs (every second full segment, delayed ACKs after responses, piggybacked
//! otherwise) and FIN exchanges from either side; or a UDP exchange for DNS. Flows are
//! interleaved packet by packet, [`CONCURRENT`] in flight at a time. On top:
//! - **HTTP/1.1** keep-alive connections with varied methods, paths (ids, query strings),
//!   host forms, user agents, tracing headers and JSON bodies; responses with
//!   `Content-Length` or chunked bodies, `HEAD`/`204` without; kubelet probes and
//!   Prometheus scrapes with `Connection: close`.
//! - **gRPC over h2c** (prior knowledge): preface, SETTINGS and their ACKs, WINDOW_UPDATE,
//!   PING, HEADERS blocks coded with HPACK (static and dynamic indexing, literals with and
//!   without indexing, never-indexed credentials), length-prefixed messages in DATA
//!   frames, trailers with `grpc-status`; one to three calls in flight per connection.
//! - **PostgreSQL**: startup, trust or SCRAM authentication, parameter status, simple
//!   queries and extended-protocol (Parse/Bind/Describe/Execute/Sync) queries,
//!   transactions, row descriptions and data rows, occasional errors, Terminate.
//! - **MySQL**: greeting, HandshakeResponse41 with connect attributes, caching_sha2 fast
//!   auth, COM_QUERY with result sets (with and without DEPRECATE_EOF), OK/ERR, COM_QUIT.
//! - **Redis**: RESP commands (sometimes pipelined) and every reply type.
//! - **DNS over UDP**: A/AAAA/SRV lookups through the Kubernetes search path (NXDOMAIN with
//!   SOA for the expansions), EDNS on half of them.
//!
//! About one flow in a hundred ends with a request the policy denies (an admin path, gRPC
//! reflection, DDL, FLUSHDB, a tunnelling DNS name), and some requests hit alert rules
//! (DELETE of an order, Redis KEYS); [`MixStats`] counts both, so a replay can be checked
//! against the generator.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use super::generate::{
    FIN, Frames, GenStats, MSS, PSH, PcapOut, Rng, START_NS, SYN, Side, TcpConversation,
    udp_datagram,
};
use super::wire::*;

/// Flows in flight at once: their packets are interleaved.
pub const CONCURRENT: usize = 128;

/// The application protocols of the mix, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Http,
    Grpc,
    Postgres,
    Mysql,
    Redis,
    Dns,
    /// TCP connect probes without payload.
    Tcp,
}

impl Proto {
    pub const ALL: [Proto; 7] = [
        Proto::Http,
        Proto::Grpc,
        Proto::Postgres,
        Proto::Mysql,
        Proto::Redis,
        Proto::Dns,
        Proto::Tcp,
    ];

    /// The `app_proto` name events use (gRPC flows are detected as `http2`; their calls
    /// are `grpc`).
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Http => "http",
            Proto::Grpc => "grpc",
            Proto::Postgres => "postgres",
            Proto::Mysql => "mysql",
            Proto::Redis => "redis",
            Proto::Dns => "dns",
            Proto::Tcp => "tcp",
        }
    }

    /// The name a flow of this protocol is detected as.
    pub const fn detected_as(self) -> &'static str {
        match self {
            Proto::Grpc => "http2",
            p => p.name(),
        }
    }

    const fn ix(self) -> usize {
        self as usize
    }
}

/// What the generator wrote for one protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoCounts {
    pub flows: u64,
    /// Transactions as the parsers count them (logins included; an extended-protocol
    /// PostgreSQL query is a Parse and an Execute).
    pub transactions: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// What [`generate`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixStats {
    pub total: GenStats,
    pub per_proto: [ProtoCounts; 7],
    /// Requests the generated policy denies (one per flow at most, always its last).
    pub denied: u64,
    /// Requests that hit an alert rule.
    pub alerted: u64,
    /// Packet time from the first packet to the last.
    pub span_ns: u64,
}

impl MixStats {
    pub fn proto(&self, p: Proto) -> ProtoCounts {
        self.per_proto.get(p.ix()).copied().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// Workloads

struct App {
    name: &'static str,
    ns: &'static str,
    replicas: u8,
    team: &'static str,
    /// StatefulSet pods are `name-0`, `name-1`; Deployment pods get a hash suffix.
    stateful: bool,
}

const fn app(
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

const APPS: [App; 24] = [
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
const NODES: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 42, 0, 1),
    Ipv4Addr::new(10, 42, 0, 2),
    Ipv4Addr::new(10, 42, 0, 3),
];
const NODES_CIDR: &str = "10.42.0.0/24";

fn app_index(name: &str) -> Option<usize> {
    APPS.iter().position(|a| a.name == name)
}

/// Pod `r` of app `i`: 10.42.(i+1).(10+r).
fn pod_ip(i: usize, r: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 42, (i + 1) as u8, 10 + r)
}

/// Addresses of an app's pods (the nodes for `nodes`).
fn ips_of(name: &str) -> Vec<Ipv4Addr> {
    if name == "nodes" {
        return NODES.to_vec();
    }
    match app_index(name) {
        Some(i) => (0..APPS[i].replicas).map(|r| pod_ip(i, r)).collect(),
        None => Vec::new(),
    }
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` characters of a pod-name suffix alphabet, from `h`.
fn pod_suffix(mut h: u64, n: usize) -> String {
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
fn pod_name(i: usize, r: u8) -> String {
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

// ---------------------------------------------------------------------------------------
// Who talks to whom

#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Allow,
    Alert,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReqBody {
    None,
    Json,
    Form,
}

/// One HTTP endpoint a client uses: `path` is a template (`{id}`, `{sku}`... and an
/// optional `?query`); the policy's pattern has `*` for each placeholder segment.
#[derive(Clone, Copy)]
struct Ep {
    method: &'static str,
    path: &'static str,
    w: u32,
    body: ReqBody,
    act: Act,
}

const fn ep(method: &'static str, path: &'static str, w: u32) -> Ep {
    Ep {
        method,
        path,
        w,
        body: ReqBody::None,
        act: Act::Allow,
    }
}

const fn ep_body(method: &'static str, path: &'static str, w: u32) -> Ep {
    Ep {
        method,
        path,
        w,
        body: ReqBody::Json,
        act: Act::Allow,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Int,
    BigInt,
    Text,
    Money,
    Time,
    Bool,
}

/// What a statement returns.
#[derive(Clone, Copy)]
enum Res {
    /// Columns and the most rows.
    Rows(&'static [(&'static str, Col)], u8),
    /// A command tag's verb (`INSERT`, `UPDATE`, `DELETE`) with a row count.
    Affected(&'static str),
    /// A bare tag (`SET`).
    Tag(&'static str),
}

/// One SQL statement template, with what the policy needs to know about it.
#[derive(Clone, Copy)]
struct Q {
    sql: &'static str,
    verb: &'static str,
    tables: &'static [&'static str],
    res: Res,
    /// Rule this statement falls under (`read`, `write`...).
    rule: &'static str,
}

/// A unit of work: one statement, or several inside BEGIN/COMMIT.
#[derive(Clone, Copy)]
struct Unit {
    w: u32,
    tx: bool,
    stmts: &'static [Q],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RClass {
    Read,
    Write,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    Ok,
    MaybeBulk,
    Int,
    Array,
    Hash,
}

/// A Redis command template (`args` space-separated, placeholders allowed).
#[derive(Clone, Copy)]
struct R {
    cmd: &'static str,
    args: &'static str,
    class: RClass,
    reply: Reply,
    w: u32,
}

#[derive(Clone, Copy)]
enum Uses {
    Http {
        hosts: bool,
        eps: &'static [Ep],
    },
    Grpc {
        service: &'static str,
        methods: &'static [&'static str],
    },
    Sql {
        user: &'static str,
        db: &'static str,
        units: &'static [Unit],
    },
    Redis(&'static [R]),
    /// Names looked up (short cluster names go through the search path and are found at
    /// the first expansion; external names after three NXDOMAINs).
    Dns {
        names: &'static [&'static str],
        external: &'static [&'static str],
    },
    /// A kubelet TCP socket probe: connect and close.
    Probe,
}

#[derive(Clone, Copy)]
struct Edge {
    client: &'static str,
    server: &'static str,
    port: u16,
    proto: Proto,
    /// Relative share of flows.
    w: u32,
    uses: Uses,
}

// -- HTTP endpoints ----------------------------------------------------------------------

const FRONTEND_EPS: [Ep; 6] = [
    ep("GET", "/", 10),
    ep("HEAD", "/", 1),
    ep("GET", "/static/{file}", 12),
    ep("GET", "/product/{id}", 8),
    ep("GET", "/cart", 3),
    Ep {
        method: "POST",
        path: "/checkout",
        w: 1,
        body: ReqBody::Form,
        act: Act::Allow,
    },
];
const ORDERS_EPS: [Ep; 7] = [
    ep("GET", "/api/v1/orders/{id}", 10),
    ep("GET", "/api/v1/orders?customer={id}&page={n}&limit=20", 6),
    ep_body("POST", "/api/v1/orders", 3),
    ep_body("PUT", "/api/v1/orders/{id}/status", 2),
    ep("GET", "/api/v1/orders/{id}/items", 5),
    ep_body("POST", "/api/v1/orders/{id}/cancel", 1),
    Ep {
        method: "DELETE",
        path: "/api/v1/orders/{id}",
        w: 1,
        body: ReqBody::None,
        act: Act::Alert,
    },
];
const CATALOG_EPS: [Ep; 6] = [
    ep("GET", "/api/v1/products/{id}", 12),
    ep("GET", "/api/v1/products?category={n}&page={n}", 6),
    ep("GET", "/api/v1/categories", 3),
    ep("GET", "/api/v1/categories/{n}/products", 4),
    ep("GET", "/api/v1/products/{id}/related", 3),
    ep("GET", "/api/v1/products/{id}/images", 2),
];
const CART_EPS: [Ep; 5] = [
    ep("GET", "/api/v1/carts/{uuid}", 8),
    ep_body("POST", "/api/v1/carts/{uuid}/items", 5),
    ep("DELETE", "/api/v1/carts/{uuid}/items/{sku}", 2),
    ep_body("PUT", "/api/v1/carts/{uuid}", 2),
    ep_body("POST", "/api/v1/carts/{uuid}/checkout", 1),
];
const USERS_EPS: [Ep; 6] = [
    ep("GET", "/api/v1/users/{id}", 8),
    ep_body("POST", "/api/v1/sessions", 3),
    ep("DELETE", "/api/v1/sessions/{token}", 1),
    ep("GET", "/api/v1/users/{id}/addresses", 3),
    ep_body("POST", "/api/v1/users/{id}/addresses", 1),
    ep_body("PATCH", "/api/v1/users/{id}", 1),
];
const SEARCH_EPS: [Ep; 3] = [
    ep("GET", "/api/v1/search?q={word}&page={n}", 8),
    ep("GET", "/api/v1/suggest?q={word}", 6),
    ep("GET", "/api/v1/facets?q={word}", 2),
];
const REVIEWS_EPS: [Ep; 3] = [
    ep("GET", "/api/v1/products/{id}/reviews?page={n}", 8),
    ep_body("POST", "/api/v1/products/{id}/reviews", 1),
    ep("GET", "/api/v1/products/{id}/rating", 4),
];
const ORDERS_USERS_EPS: [Ep; 2] = [
    ep("GET", "/api/v1/users/{id}", 3),
    ep("GET", "/api/v1/users/{id}/addresses", 2),
];
const NOTIFY_EPS: [Ep; 3] = [
    ep_body("POST", "/api/v1/notifications/email", 4),
    ep_body("POST", "/api/v1/notifications/sms", 1),
    ep_body("POST", "/api/v1/notifications/push", 2),
];
const SEARCH_CATALOG_EPS: [Ep; 2] = [
    ep("GET", "/api/v1/products/{id}", 4),
    ep_body("POST", "/api/v1/products/batch", 2),
];
const METRICS_EPS: [Ep; 1] = [ep("GET", "/metrics", 1)];
const PROBE_EPS: [Ep; 2] = [ep("GET", "/healthz", 1), ep("GET", "/readyz", 1)];

// -- SQL ---------------------------------------------------------------------------------

const ORDER_COLS: [(&str, Col); 5] = [
    ("id", Col::BigInt),
    ("customer_id", Col::BigInt),
    ("status", Col::Text),
    ("total_cents", Col::Money),
    ("created_at", Col::Time),
];
const ITEM_COLS: [(&str, Col); 3] = [
    ("sku", Col::Text),
    ("quantity", Col::Int),
    ("price_cents", Col::Money),
];
const ID_COL: [(&str, Col); 1] = [("id", Col::BigInt)];
const COUNT_COLS: [(&str, Col); 2] = [("key", Col::Text), ("count", Col::BigInt)];

const fn q(
    sql: &'static str,
    verb: &'static str,
    tables: &'static [&'static str],
    res: Res,
    rule: &'static str,
) -> Q {
    Q {
        sql,
        verb,
        tables,
        res,
        rule,
    }
}

const fn one(w: u32, stmts: &'static [Q]) -> Unit {
    Unit {
        w,
        tx: false,
        stmts,
    }
}

const fn tx(w: u32, stmts: &'static [Q]) -> Unit {
    Unit { w, tx: true, stmts }
}

const ORDERS_DB_UNITS: [Unit; 6] = [
    one(
        10,
        &[q(
            "SELECT id, customer_id, status, total_cents, created_at FROM orders WHERE id = {id}",
            "SELECT",
            &["orders"],
            Res::Rows(&ORDER_COLS, 1),
            "read",
        )],
    ),
    one(
        5,
        &[q(
            "SELECT id, customer_id, status, total_cents, created_at FROM orders WHERE customer_id = {id} ORDER BY created_at DESC LIMIT 20",
            "SELECT",
            &["orders"],
            Res::Rows(&ORDER_COLS, 20),
            "read",
        )],
    ),
    one(
        6,
        &[q(
            "SELECT sku, quantity, price_cents FROM order_items WHERE order_id = {id}",
            "SELECT",
            &["order_items"],
            Res::Rows(&ITEM_COLS, 5),
            "read",
        )],
    ),
    one(
        3,
        &[q(
            "SELECT o.id, o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = {id}",
            "SELECT",
            &["orders", "customers"],
            Res::Rows(
                &[
                    ("id", Col::BigInt),
                    ("status", Col::Text),
                    ("email", Col::Text),
                ],
                1,
            ),
            "read",
        )],
    ),
    one(
        3,
        &[q(
            "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = {id}",
            "UPDATE",
            &["orders"],
            Res::Affected("UPDATE"),
            "write",
        )],
    ),
    tx(
        3,
        &[
            q(
                "INSERT INTO orders (customer_id, status, total_cents) VALUES ({id}, 'pending', {id}) RETURNING id",
                "INSERT",
                &["orders"],
                Res::Rows(&ID_COL, 1),
                "write",
            ),
            q(
                "INSERT INTO order_items (order_id, sku, quantity, price_cents) VALUES ({id}, '{sku}', {q}, {id})",
                "INSERT",
                &["order_items"],
                Res::Affected("INSERT"),
                "write",
            ),
            q(
                "INSERT INTO order_items (order_id, sku, quantity, price_cents) VALUES ({id}, '{sku}', {q}, {id})",
                "INSERT",
                &["order_items"],
                Res::Affected("INSERT"),
                "write",
            ),
        ],
    ),
];

const REPORTING_ORDERS_UNITS: [Unit; 3] = [
    one(
        3,
        &[q(
            "SELECT date_trunc('hour', created_at) AS key, count(*) FROM orders WHERE created_at > now() - interval '1 day' GROUP BY 1 ORDER BY 1",
            "SELECT",
            &["orders"],
            Res::Rows(&COUNT_COLS, 24),
            "read",
        )],
    ),
    one(
        2,
        &[q(
            "SELECT c.country AS key, count(*) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country",
            "SELECT",
            &["orders", "customers"],
            Res::Rows(&COUNT_COLS, 12),
            "read",
        )],
    ),
    one(
        2,
        &[q(
            "SELECT sku AS key, sum(quantity) FROM order_items GROUP BY sku ORDER BY 2 DESC LIMIT 50",
            "SELECT",
            &["order_items"],
            Res::Rows(&COUNT_COLS, 50),
            "read",
        )],
    ),
];

const CLEANUP_UNITS: [Unit; 1] = [tx(
    1,
    &[
        q(
            "DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE status = 'cancelled' AND created_at < now() - interval '90 days')",
            "DELETE",
            &["order_items", "orders"],
            Res::Affected("DELETE"),
            "cleanup",
        ),
        q(
            "DELETE FROM orders WHERE status = 'cancelled' AND created_at < now() - interval '90 days'",
            "DELETE",
            &["orders"],
            Res::Affected("DELETE"),
            "cleanup",
        ),
    ],
)];

const USERS_DB_UNITS: [Unit; 6] = [
    one(
        10,
        &[q(
            "SELECT id, email, name, verified, created_at FROM users WHERE id = {id}",
            "SELECT",
            &["users"],
            Res::Rows(
                &[
                    ("id", Col::BigInt),
                    ("email", Col::Text),
                    ("name", Col::Text),
                    ("verified", Col::Bool),
                    ("created_at", Col::Time),
                ],
                1,
            ),
            "read",
        )],
    ),
    one(
        4,
        &[q(
            "SELECT id, line1, city, country FROM addresses WHERE user_id = {id}",
            "SELECT",
            &["addresses"],
            Res::Rows(
                &[
                    ("id", Col::BigInt),
                    ("line1", Col::Text),
                    ("city", Col::Text),
                    ("country", Col::Text),
                ],
                3,
            ),
            "read",
        )],
    ),
    one(
        8,
        &[q(
            "SELECT user_id, expires_at FROM sessions WHERE token = '{hex}'",
            "SELECT",
            &["sessions"],
            Res::Rows(&[("user_id", Col::BigInt), ("expires_at", Col::Time)], 1),
            "read",
        )],
    ),
    one(
        3,
        &[q(
            "INSERT INTO sessions (token, user_id, expires_at) VALUES ('{hex}', {id}, now() + interval '1 hour')",
            "INSERT",
            &["sessions"],
            Res::Affected("INSERT"),
            "write",
        )],
    ),
    one(
        2,
        &[q(
            "UPDATE users SET last_login = now() WHERE id = {id}",
            "UPDATE",
            &["users"],
            Res::Affected("UPDATE"),
            "write",
        )],
    ),
    one(
        1,
        &[q(
            "DELETE FROM sessions WHERE expires_at < now()",
            "DELETE",
            &["sessions"],
            Res::Affected("DELETE"),
            "write",
        )],
    ),
];

const REPORTING_USERS_UNITS: [Unit; 1] = [one(
    1,
    &[q(
        "SELECT country AS key, count(*) FROM users WHERE created_at > now() - interval '7 days' GROUP BY country",
        "SELECT",
        &["users"],
        Res::Rows(&COUNT_COLS, 12),
        "read",
    )],
)];

const PRODUCT_COLS: [(&str, Col); 5] = [
    ("id", Col::BigInt),
    ("sku", Col::Text),
    ("name", Col::Text),
    ("price_cents", Col::Money),
    ("stock", Col::Int),
];

const CATALOG_DB_UNITS: [Unit; 5] = [
    one(
        12,
        &[q(
            "SELECT id, sku, name, price_cents, stock FROM products WHERE id = {id}",
            "SELECT",
            &["products"],
            Res::Rows(&PRODUCT_COLS, 1),
            "read",
        )],
    ),
    one(
        5,
        &[q(
            "SELECT p.id, p.sku, p.name, p.price_cents, p.stock FROM products p JOIN product_categories pc ON pc.product_id = p.id WHERE pc.category_id = {n} LIMIT 24",
            "SELECT",
            &["products", "product_categories"],
            Res::Rows(&PRODUCT_COLS, 24),
            "read",
        )],
    ),
    one(
        2,
        &[q(
            "SELECT id, name, slug FROM categories ORDER BY name",
            "SELECT",
            &["categories"],
            Res::Rows(
                &[("id", Col::Int), ("name", Col::Text), ("slug", Col::Text)],
                30,
            ),
            "read",
        )],
    ),
    one(
        3,
        &[q(
            "UPDATE products SET views = views + 1 WHERE id = {id}",
            "UPDATE",
            &["products"],
            Res::Affected("UPDATE"),
            "write",
        )],
    ),
    one(
        1,
        &[q(
            "SELECT 1",
            "SELECT",
            &[],
            Res::Rows(&[("1", Col::Int)], 1),
            "read",
        )],
    ),
];

const INVENTORY_COLS: [(&str, Col); 3] = [
    ("sku", Col::Text),
    ("available", Col::Int),
    ("reserved", Col::Int),
];

const STOCK_DB_UNITS: [Unit; 3] = [
    one(
        8,
        &[q(
            "SELECT sku, available, reserved FROM inventory WHERE sku = '{sku}'",
            "SELECT",
            &["inventory"],
            Res::Rows(&INVENTORY_COLS, 1),
            "read",
        )],
    ),
    tx(
        4,
        &[
            q(
                "UPDATE inventory SET available = available - {q}, reserved = reserved + {q} WHERE sku = '{sku}' AND available >= {q}",
                "UPDATE",
                &["inventory"],
                Res::Affected("UPDATE"),
                "write",
            ),
            q(
                "INSERT INTO reservations (order_id, sku, quantity) VALUES ({id}, '{sku}', {q})",
                "INSERT",
                &["reservations"],
                Res::Affected("INSERT"),
                "write",
            ),
        ],
    ),
    one(
        2,
        &[q(
            "DELETE FROM reservations WHERE order_id = {id}",
            "DELETE",
            &["reservations"],
            Res::Affected("DELETE"),
            "write",
        )],
    ),
];

const REPORTING_CATALOG_UNITS: [Unit; 1] = [one(
    1,
    &[q(
        "SELECT sku, available, reserved FROM inventory WHERE available < 10",
        "SELECT",
        &["inventory"],
        Res::Rows(&INVENTORY_COLS, 40),
        "read",
    )],
)];

const REVIEWS_DB_UNITS: [Unit; 4] = [
    one(
        8,
        &[q(
            "SELECT id, rating, title, body FROM reviews WHERE product_id = {id} ORDER BY created_at DESC LIMIT 10",
            "SELECT",
            &["reviews"],
            Res::Rows(
                &[
                    ("id", Col::BigInt),
                    ("rating", Col::Int),
                    ("title", Col::Text),
                    ("body", Col::Text),
                ],
                10,
            ),
            "read",
        )],
    ),
    one(
        4,
        &[q(
            "SELECT avg_rating, count FROM ratings WHERE product_id = {id}",
            "SELECT",
            &["ratings"],
            Res::Rows(&[("avg_rating", Col::Money), ("count", Col::Int)], 1),
            "read",
        )],
    ),
    one(
        1,
        &[q(
            "INSERT INTO reviews (product_id, user_id, rating, title, body) VALUES ({id}, {id}, {r}, 'Great', 'Works as described')",
            "INSERT",
            &["reviews"],
            Res::Affected("INSERT"),
            "write",
        )],
    ),
    one(
        1,
        &[q(
            "UPDATE ratings SET count = count + 1 WHERE product_id = {id}",
            "UPDATE",
            &["ratings"],
            Res::Affected("UPDATE"),
            "write",
        )],
    ),
];

/// Statements a MySQL connector sends when it connects.
const MYSQL_SESSION: Q = q("SET NAMES utf8mb4", "SET", &[], Res::Tag("SET"), "session");

// -- Redis -------------------------------------------------------------------------------

const fn r(cmd: &'static str, args: &'static str, class: RClass, reply: Reply, w: u32) -> R {
    R {
        cmd,
        args,
        class,
        reply,
        w,
    }
}

const ORDERS_REDIS: [R; 6] = [
    r("GET", "order:{id}", RClass::Read, Reply::MaybeBulk, 10),
    r("EXISTS", "order:{id}", RClass::Read, Reply::Int, 2),
    r(
        "SET",
        "order:{id} {val} EX 300",
        RClass::Write,
        Reply::Ok,
        4,
    ),
    r("DEL", "order:{id}", RClass::Write, Reply::Int, 1),
    r("INCR", "stats:orders:{date}", RClass::Write, Reply::Int, 2),
    r("TTL", "order:{id}", RClass::Read, Reply::Int, 1),
];
const CATALOG_REDIS: [R; 6] = [
    r("GET", "product:{id}", RClass::Read, Reply::MaybeBulk, 12),
    r(
        "MGET",
        "product:{id} product:{id} product:{id}",
        RClass::Read,
        Reply::Array,
        3,
    ),
    r("HGETALL", "category:{n}", RClass::Read, Reply::Hash, 3),
    r(
        "SET",
        "product:{id} {val} EX 600",
        RClass::Write,
        Reply::Ok,
        3,
    ),
    r(
        "HSET",
        "category:{n} name {word}",
        RClass::Write,
        Reply::Int,
        1,
    ),
    r("EXPIRE", "category:{n} 3600", RClass::Write, Reply::Int, 1),
];
const USERS_REDIS: [R; 5] = [
    r("GET", "session:{hex}", RClass::Read, Reply::MaybeBulk, 10),
    r(
        "SETEX",
        "session:{hex} 3600 {val}",
        RClass::Write,
        Reply::Ok,
        3,
    ),
    r("DEL", "session:{hex}", RClass::Write, Reply::Int, 1),
    r("HGETALL", "user:{id}", RClass::Read, Reply::Hash, 4),
    r(
        "HSET",
        "user:{id} last_seen {id}",
        RClass::Write,
        Reply::Int,
        2,
    ),
];
const SEARCH_REDIS: [R; 2] = [
    r("GET", "search:{hex}", RClass::Read, Reply::MaybeBulk, 6),
    r(
        "SETEX",
        "search:{hex} 60 {val}",
        RClass::Write,
        Reply::Ok,
        2,
    ),
];
const CART_REDIS: [R; 5] = [
    r("HGETALL", "cart:{uuid}", RClass::Read, Reply::Hash, 8),
    r(
        "HSET",
        "cart:{uuid} {sku} {q}",
        RClass::Write,
        Reply::Int,
        4,
    ),
    r("HDEL", "cart:{uuid} {sku}", RClass::Write, Reply::Int, 1),
    r("EXPIRE", "cart:{uuid} 86400", RClass::Write, Reply::Int, 3),
    r("DEL", "cart:{uuid}", RClass::Write, Reply::Int, 1),
];
const NOTIFY_REDIS: [R; 3] = [
    r("LPUSH", "notify:email {val}", RClass::Write, Reply::Int, 4),
    r("RPOP", "notify:sms", RClass::Write, Reply::MaybeBulk, 2),
    r("LLEN", "notify:email", RClass::Read, Reply::Int, 2),
];

// -- The edges ---------------------------------------------------------------------------

const fn http(client: &'static str, server: &'static str, w: u32, eps: &'static [Ep]) -> Edge {
    Edge {
        client,
        server,
        port: 8080,
        proto: Proto::Http,
        w,
        uses: Uses::Http { hosts: true, eps },
    }
}

const fn grpc(
    client: &'static str,
    server: &'static str,
    w: u32,
    service: &'static str,
    methods: &'static [&'static str],
) -> Edge {
    Edge {
        client,
        server,
        port: 50051,
        proto: Proto::Grpc,
        w,
        uses: Uses::Grpc { service, methods },
    }
}

const fn sql(
    client: &'static str,
    server: &'static str,
    proto: Proto,
    w: u32,
    user: &'static str,
    db: &'static str,
    units: &'static [Unit],
) -> Edge {
    Edge {
        client,
        server,
        port: if matches!(proto, Proto::Postgres) {
            5432
        } else {
            3306
        },
        proto,
        w,
        uses: Uses::Sql { user, db, units },
    }
}

const fn redis(client: &'static str, server: &'static str, w: u32, cmds: &'static [R]) -> Edge {
    Edge {
        client,
        server,
        port: 6379,
        proto: Proto::Redis,
        w,
        uses: Uses::Redis(cmds),
    }
}

const fn dns(
    client: &'static str,
    w: u32,
    names: &'static [&'static str],
    external: &'static [&'static str],
) -> Edge {
    Edge {
        client,
        server: "kube-dns",
        port: 53,
        proto: Proto::Dns,
        w,
        uses: Uses::Dns { names, external },
    }
}

const fn scrape(server: &'static str, port: u16) -> Edge {
    Edge {
        client: "prometheus",
        server,
        port,
        proto: Proto::Http,
        w: 2,
        uses: Uses::Http {
            hosts: false,
            eps: &METRICS_EPS,
        },
    }
}

const fn probe_http(server: &'static str) -> Edge {
    Edge {
        client: "nodes",
        server,
        port: 8080,
        proto: Proto::Http,
        w: 4,
        uses: Uses::Http {
            hosts: false,
            eps: &PROBE_EPS,
        },
    }
}

const fn probe_grpc(server: &'static str) -> Edge {
    Edge {
        client: "nodes",
        server,
        port: 50051,
        proto: Proto::Grpc,
        w: 3,
        uses: Uses::Grpc {
            service: "grpc.health.v1.Health",
            methods: &["Check"],
        },
    }
}

const fn probe_tcp(server: &'static str, port: u16) -> Edge {
    Edge {
        client: "nodes",
        server,
        port,
        proto: Proto::Tcp,
        w: 2,
        uses: Uses::Probe,
    }
}

/// Every conversation of the mix, with its share of flows. The policy is derived from
/// this table: one rule per endpoint, gRPC method, SQL rule, Redis class and DNS client.
const EDGES: [Edge; 82] = [
    Edge {
        client: "ingress",
        server: "frontend",
        port: 8080,
        proto: Proto::Http,
        w: 100,
        uses: Uses::Http {
            hosts: true,
            eps: &FRONTEND_EPS,
        },
    },
    http("frontend", "orders", 40, &ORDERS_EPS),
    http("frontend", "catalog", 50, &CATALOG_EPS),
    http("frontend", "cart", 30, &CART_EPS),
    http("frontend", "users", 30, &USERS_EPS),
    http("frontend", "search", 20, &SEARCH_EPS),
    http("frontend", "reviews", 20, &REVIEWS_EPS),
    http("orders", "users", 10, &ORDERS_USERS_EPS),
    http("orders", "notifications", 10, &NOTIFY_EPS),
    http("search", "catalog", 10, &SEARCH_CATALOG_EPS),
    scrape("frontend", 8080),
    scrape("orders", 8080),
    scrape("catalog", 8080),
    scrape("cart", 8080),
    scrape("users", 8080),
    scrape("search", 8080),
    scrape("reviews", 8080),
    scrape("notifications", 8080),
    scrape("stock", 9090),
    scrape("pricing", 9090),
    scrape("payments", 9090),
    scrape("shipping", 9090),
    scrape("auth", 9090),
    scrape("orders-db", 9187),
    scrape("users-db", 9187),
    scrape("catalog-db", 9104),
    scrape("reviews-db", 9104),
    scrape("cache", 9121),
    scrape("cart-cache", 9121),
    probe_http("frontend"),
    probe_http("orders"),
    probe_http("catalog"),
    probe_http("cart"),
    probe_http("users"),
    probe_http("search"),
    probe_http("reviews"),
    probe_http("notifications"),
    grpc(
        "frontend",
        "auth",
        30,
        "auth.v1.Auth",
        &["Verify", "Refresh"],
    ),
    grpc("orders", "auth", 10, "auth.v1.Auth", &["Verify"]),
    grpc("cart", "auth", 10, "auth.v1.Auth", &["Verify"]),
    grpc(
        "users",
        "auth",
        10,
        "auth.v1.Auth",
        &["Verify", "Issue", "Revoke"],
    ),
    grpc(
        "orders",
        "stock",
        20,
        "stock.v1.Stock",
        &["Get", "Reserve", "Release", "Commit"],
    ),
    grpc(
        "orders",
        "payments",
        20,
        "payments.v1.Payments",
        &["Authorize", "Capture", "Refund", "Void"],
    ),
    grpc(
        "orders",
        "shipping",
        10,
        "shipping.v1.Shipping",
        &["Quote", "Create", "Cancel"],
    ),
    grpc("catalog", "stock", 10, "stock.v1.Stock", &["Get", "List"]),
    grpc(
        "catalog",
        "pricing",
        20,
        "pricing.v1.Pricing",
        &["Quote", "BatchQuote"],
    ),
    grpc("cart", "pricing", 10, "pricing.v1.Pricing", &["Quote"]),
    grpc(
        "frontend",
        "shipping",
        10,
        "shipping.v1.Shipping",
        &["Track"],
    ),
    probe_grpc("stock"),
    probe_grpc("pricing"),
    probe_grpc("payments"),
    probe_grpc("shipping"),
    probe_grpc("auth"),
    sql(
        "orders",
        "orders-db",
        Proto::Postgres,
        40,
        "orders_svc",
        "orders",
        &ORDERS_DB_UNITS,
    ),
    sql(
        "users",
        "users-db",
        Proto::Postgres,
        30,
        "users_svc",
        "users",
        &USERS_DB_UNITS,
    ),
    sql(
        "reporting",
        "orders-db",
        Proto::Postgres,
        8,
        "reporting_ro",
        "orders",
        &REPORTING_ORDERS_UNITS,
    ),
    sql(
        "reporting",
        "users-db",
        Proto::Postgres,
        4,
        "reporting_ro",
        "users",
        &REPORTING_USERS_UNITS,
    ),
    sql(
        "orders-cleanup",
        "orders-db",
        Proto::Postgres,
        2,
        "orders_cleanup",
        "orders",
        &CLEANUP_UNITS,
    ),
    sql(
        "catalog",
        "catalog-db",
        Proto::Mysql,
        40,
        "catalog_app",
        "catalog",
        &CATALOG_DB_UNITS,
    ),
    sql(
        "stock",
        "catalog-db",
        Proto::Mysql,
        30,
        "stock_svc",
        "catalog",
        &STOCK_DB_UNITS,
    ),
    sql(
        "reporting",
        "catalog-db",
        Proto::Mysql,
        5,
        "reporting_ro",
        "catalog",
        &REPORTING_CATALOG_UNITS,
    ),
    sql(
        "reviews",
        "reviews-db",
        Proto::Mysql,
        20,
        "reviews_app",
        "reviews",
        &REVIEWS_DB_UNITS,
    ),
    redis("orders", "cache", 20, &ORDERS_REDIS),
    redis("catalog", "cache", 30, &CATALOG_REDIS),
    redis("users", "cache", 20, &USERS_REDIS),
    redis("search", "cache", 10, &SEARCH_REDIS),
    redis("cart", "cart-cache", 30, &CART_REDIS),
    redis("notifications", "cache", 10, &NOTIFY_REDIS),
    dns(
        "frontend",
        20,
        &[
            "orders", "catalog", "cart", "users", "search", "reviews", "auth", "shipping",
        ],
        &[],
    ),
    dns(
        "orders",
        15,
        &[
            "users",
            "notifications",
            "stock",
            "payments",
            "shipping",
            "auth",
            "orders-db",
            "cache",
        ],
        &[],
    ),
    dns(
        "catalog",
        12,
        &["stock", "pricing", "catalog-db", "cache"],
        &[],
    ),
    dns("cart", 8, &["pricing", "auth", "cart-cache"], &[]),
    dns("users", 8, &["auth", "users-db", "cache"], &[]),
    dns("payments", 6, &["orders"], &["api.stripe.com"]),
    dns("shipping", 4, &["orders"], &["onlinetools.ups.com"]),
    dns(
        "notifications",
        4,
        &["cache"],
        &["api.sendgrid.com", "api.twilio.com"],
    ),
    dns(
        "reporting",
        3,
        &["orders-db", "users-db", "catalog-db"],
        &["analytics-exports.s3.amazonaws.com"],
    ),
    dns("ingress", 10, &["frontend"], &[]),
    dns(
        "prometheus",
        4,
        &["frontend", "orders", "catalog", "stock", "cache"],
        &[],
    ),
    probe_tcp("orders-db", 5432),
    probe_tcp("catalog-db", 3306),
    probe_tcp("cache", 6379),
];

// ---------------------------------------------------------------------------------------
// The policy

/// `/api/v1/orders/{id}?page={n}` -> `/api/v1/orders/*`.
fn path_pattern(template: &str) -> String {
    let path = template.split('?').next().unwrap_or(template);
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// A rule-id-friendly slug of a path template.
fn slug(method: &str, template: &str) -> String {
    let path = template.split('?').next().unwrap_or(template);
    let mut s = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg == "api" || seg == "v1" {
            continue;
        }
        s.push('-');
        if seg.starts_with('{') {
            s.push_str("one");
        } else {
            s.extend(seg.chars().filter(|c| c.is_ascii_alphanumeric()));
        }
    }
    if !path.split('/').any(|s| !s.is_empty()) {
        s.push_str("-root");
    }
    s
}

fn host_forms(server: &str) -> [String; 4] {
    [
        server.to_string(),
        format!("{server}.shop"),
        format!("{server}.shop.svc"),
        format!("{server}.shop.svc.cluster.local"),
    ]
}

const INGRESS_HOSTS: [&str; 2] = ["shop.example.com", "www.shop.example.com"];

fn yaml_list<S: AsRef<str>>(items: &[S]) -> String {
    let v: Vec<String> = items
        .iter()
        .map(|s| {
            let s = s.as_ref();
            if s.contains(['*', ':', '{', '}', '@', ' ', '\'', '#']) || s.starts_with('/') {
                format!("\"{s}\"")
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("[{}]", v.join(", "))
}

/// The policy (YAML) over the mix: protect mode, default deny, an allow rule for every
/// endpoint, gRPC method, SQL rule, Redis command class and DNS client the mix uses, and
/// deny/alert rules for what it must not do.
pub fn policy_yaml() -> String {
    let mut y = String::from(
        "# Segmentation policy for the generated east-west mix (palisade bench): one rule per\n\
         # endpoint, gRPC method, SQL and Redis rule and DNS client of the mix, denies for\n\
         # admin paths, reflection, DDL, cache administration and tunnelling names.\n\
         # Each gRPC client/server pair also has an `app: http` rule on the service's paths that\n\
         # admits the HTTP/2 connection itself (the `grpc` allow rules admit it too since\n\
         # control's judge_detected_flow); each call is judged by the `app: grpc` rules.\n\
         apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: eastwest-bench}\n\
         spec:\n  mode: protect\n  defaultAction: deny\n  groups:\n",
    );
    for a in &APPS {
        let mode = if a.name == "reporting" {
            ", mode: monitor"
        } else {
            ""
        };
        let _ = writeln!(
            y,
            "    {}: {{selector: {{app: {}}}, namespaces: [{}]{mode}}}",
            a.name, a.name, a.ns
        );
    }
    let _ = writeln!(y, "    nodes: {{cidrs: [{NODES_CIDR}]}}");
    y.push_str("    world: {cidrs: [0.0.0.0/0]}\n  rules:\n");
    let mut n = 0usize;
    let mut rule = |y: &mut String, body: String| {
        n += 1;
        y.push_str("    - ");
        y.push_str(&body);
        y.push('\n');
    };
    let mut grpc_l4: Vec<(&str, &str, &str)> = Vec::new();
    for e in &EDGES {
        let (c, s, p) = (e.client, e.server, e.port);
        match e.uses {
            Uses::Http { hosts, eps } => {
                for ep in eps {
                    let mut clause = format!(
                        "methods: [{}], paths: [\"{}\"]",
                        ep.method,
                        path_pattern(ep.path)
                    );
                    if hosts {
                        let hs: Vec<String> = if s == "frontend" {
                            INGRESS_HOSTS.iter().map(|h| h.to_string()).collect()
                        } else {
                            host_forms(s).to_vec()
                        };
                        let _ = write!(clause, ", hosts: {}", yaml_list(&hs));
                    }
                    if ep.body == ReqBody::Json {
                        clause.push_str(", headers: {content-type: application/json}");
                    }
                    let (action, sev) = match ep.act {
                        Act::Allow => ("allow", ""),
                        Act::Alert => ("alert", ", severity: medium"),
                    };
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{}, from: [{c}], to: [{s}], ports: [{p}], app: http, \
                             http: [{{{clause}}}], action: {action}{sev}}}",
                            slug(ep.method, ep.path)
                        ),
                    );
                }
            }
            Uses::Grpc { service, methods } => {
                if !grpc_l4
                    .iter()
                    .any(|&(a, b, sv)| a == c && b == s && sv == service)
                {
                    grpc_l4.push((c, s, service));
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-h2c, from: [{c}], to: [{s}], ports: [{p}], app: http, \
                             http: [{{methods: [POST], paths: [\"/{service}/*\"], \
                             headers: {{content-type: application/grpc}}}}], action: allow}}"
                        ),
                    );
                }
                for m in methods {
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{}, from: [{c}], to: [{s}], ports: [{p}], app: grpc, \
                             grpc: [{{service: {service}, methods: [{m}]}}], action: allow}}",
                            m.to_ascii_lowercase()
                        ),
                    );
                }
            }
            Uses::Sql { user, db, units } => {
                let app = e.proto.name();
                let mut by_rule: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
                let mut add = |q: &Q| {
                    let e = by_rule.entry(q.rule).or_default();
                    if !e.0.contains(&q.verb) {
                        e.0.push(q.verb);
                    }
                    for t in q.tables {
                        if !e.1.contains(t) {
                            e.1.push(t);
                        }
                    }
                };
                for u in units {
                    for q in u.stmts {
                        add(q);
                    }
                }
                if e.proto == Proto::Mysql {
                    add(&MYSQL_SESSION);
                }
                if units.iter().any(|u| u.tx) {
                    by_rule.insert("tx", (vec!["BEGIN", "COMMIT", "ROLLBACK"], Vec::new()));
                }
                for (name, (verbs, tables)) in by_rule {
                    let mut clause = format!("verbs: {}", yaml_list(&verbs));
                    if !tables.is_empty() {
                        let _ = write!(clause, ", tables: {}", yaml_list(&tables));
                    }
                    let _ = write!(clause, ", users: [{user}], databases: [{db}]");
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{name}, from: [{c}], to: [{s}], ports: [{p}], app: {app}, \
                             sql: [{{{clause}}}], action: allow}}"
                        ),
                    );
                }
            }
            Uses::Redis(cmds) => {
                for (class, name) in [(RClass::Read, "read"), (RClass::Write, "write")] {
                    let mut commands: Vec<&str> = Vec::new();
                    let mut keys: Vec<String> = Vec::new();
                    for cmd in cmds.iter().filter(|r| r.class == class) {
                        if !commands.contains(&cmd.cmd) {
                            commands.push(cmd.cmd);
                        }
                        let first = cmd.args.split(' ').next().unwrap_or_default();
                        let prefix = first.split(':').next().unwrap_or_default();
                        let glob = format!("{prefix}:*");
                        if !keys.contains(&glob) {
                            keys.push(glob);
                        }
                    }
                    if commands.is_empty() {
                        continue;
                    }
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{name}, from: [{c}], to: [{s}], ports: [{p}], app: redis, \
                             redis: [{{commands: {}, keys: {}}}], action: allow}}",
                            yaml_list(&commands),
                            yaml_list(&keys)
                        ),
                    );
                }
                rule(
                    &mut y,
                    format!(
                        "{{id: {c}-{s}-conn, from: [{c}], to: [{s}], ports: [{p}], app: redis, \
                         redis: [{{commands: [AUTH, PING, SELECT, CLIENT, QUIT]}}], action: allow}}"
                    ),
                );
            }
            Uses::Dns { external, .. } => {
                rule(
                    &mut y,
                    format!(
                        "{{id: {c}-dns, from: [{c}], to: [{s}], ports: [{p}], app: dns, \
                         dns: [{{names: [\"*.cluster.local\"]}}], action: allow}}"
                    ),
                );
                if !external.is_empty() {
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-dns-external, from: [{c}], to: [{s}], ports: [{p}], app: dns, \
                             dns: [{{names: {}}}], action: allow}}",
                            yaml_list(external)
                        ),
                    );
                    // The egress the lookup is for.
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-egress-tls, from: [{c}], to: [world], ports: [443], app: tls, \
                             tls: [{{sni: {}}}], action: allow}}",
                            yaml_list(external)
                        ),
                    );
                }
            }
            Uses::Probe => {
                rule(
                    &mut y,
                    format!(
                        "{{id: {c}-{s}-tcp-probe, from: [{c}], to: [{s}], ports: [{p}], app: tcp, \
                         action: allow}}"
                    ),
                );
            }
        }
    }
    let http_servers: Vec<&str> = EDGES
        .iter()
        .filter(|e| matches!(e.uses, Uses::Http { hosts: true, .. }))
        .map(|e| e.server)
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    rule(
        &mut y,
        format!(
            "{{id: deny-admin-paths, from: [\"*\"], to: {}, app: http, \
             http: [{{paths: [\"/admin/*\", \"/actuator/*\", \"/debug/pprof/*\"]}}], action: deny, \
             severity: high}}",
            yaml_list(&http_servers)
        ),
    );
    rule(
        &mut y,
        "{id: deny-grpc-reflection, from: [\"*\"], to: [stock, pricing, payments, shipping, auth], \
         app: grpc, grpc: [{service: grpc.reflection.v1alpha.ServerReflection}, \
         {service: grpc.reflection.v1.ServerReflection}], action: deny, severity: high}"
            .to_string(),
    );
    for (app, dbs) in [
        ("postgres", "[orders-db, users-db]"),
        ("mysql", "[catalog-db, reviews-db]"),
    ] {
        rule(
            &mut y,
            format!(
                "{{id: deny-{app}-ddl, from: [\"*\"], to: {dbs}, app: {app}, \
                 sql: [{{verbs: [DROP, TRUNCATE, ALTER, GRANT, REVOKE, CREATE]}}], action: deny, \
                 severity: critical}}"
            ),
        );
    }
    rule(
        &mut y,
        "{id: deny-redis-admin, from: [\"*\"], to: [cache, cart-cache], app: redis, \
         redis: [{commands: [FLUSHALL, FLUSHDB, CONFIG, DEBUG, SHUTDOWN, REPLICAOF, SLAVEOF, MODULE]}], \
         action: deny, severity: critical, capture: true}"
            .to_string(),
    );
    rule(
        &mut y,
        "{id: alert-redis-keys, from: [\"*\"], to: [cache, cart-cache], app: redis, \
         redis: [{commands: [KEYS]}], action: alert, severity: low}"
            .to_string(),
    );
    rule(
        &mut y,
        "{id: deny-dns-tunnel, from: [\"*\"], to: [kube-dns], app: dns, \
         dns: [{names: [\"*.tunnel.example\"]}], action: deny, severity: high}"
            .to_string(),
    );
    let _ = writeln!(y, "  # {n} rules");
    y
}

// ---------------------------------------------------------------------------------------
// Placeholders

const FILES: [&str; 6] = [
    "app.3f9c1e.js",
    "vendor.8a2b77.js",
    "main.41d0.css",
    "logo.svg",
    "hero-1280.webp",
    "fonts/inter-var.woff2",
];
const WORDS: [&str; 12] = [
    "mug", "kettle", "teapot", "grinder", "espresso", "filter", "scale", "cup", "beans",
    "milk-jug", "tamper", "carafe",
];
const AGENTS: [&str; 5] = [
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "axios/1.7.7",
    "Java-http-client/21.0.4",
];
const BROWSERS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
];

fn hex(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        let _ = write!(s, "{:016x}", rng.next_u64());
    }
    s.truncate(n);
    s
}

fn uuid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

fn json_value(rng: &mut Rng, min: usize, max: usize) -> String {
    let want = min + rng.below((max - min + 1) as u64) as usize;
    let mut s = format!("{{\"id\":{},\"v\":\"", rng.below(1_000_000));
    while s.len() + 2 < want {
        let _ = write!(s, "{}", WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s.push_str("\"}");
    s
}

/// Expands one placeholder name.
fn expand(name: &str, rng: &mut Rng) -> String {
    match name {
        "id" => (1 + rng.below(999_999)).to_string(),
        "n" => (1 + rng.below(50)).to_string(),
        "q" => (1 + rng.below(5)).to_string(),
        "r" => (1 + rng.below(5)).to_string(),
        "sku" => format!("SKU-{:05}", rng.below(100_000)),
        "hex" => hex(rng, 32),
        "token" => hex(rng, 40),
        "uuid" => uuid(rng),
        "file" => FILES[rng.below(FILES.len() as u64) as usize].to_string(),
        "word" => WORDS[rng.below(WORDS.len() as u64) as usize].to_string(),
        "val" => json_value(rng, 24, 400),
        "date" => "2026-11-22".to_string(),
        other => other.to_string(),
    }
}

/// Replaces every `{name}` in `t`.
fn fill(t: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j) => {
                out.push_str(&expand(&rest[i + 1..i + j], rng));
                rest = &rest[i + j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// For the extended protocol: `{x}` and `'{x}'` become `$1`, `$2`... and their values
/// are returned as text parameters.
fn parametrize(t: &str, rng: &mut Rng) -> (String, Vec<String>) {
    let mut out = String::with_capacity(t.len());
    let mut params = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let quoted = rest[..i].ends_with('\'');
        let head = if quoted { &rest[..i - 1] } else { &rest[..i] };
        out.push_str(head);
        let Some(j) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        params.push(expand(&rest[i + 1..i + j], rng));
        let _ = write!(out, "${}", params.len());
        rest = &rest[i + j + 1..];
        if quoted {
            rest = rest.strip_prefix('\'').unwrap_or(rest);
        }
    }
    out.push_str(rest);
    (out, params)
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T], w: impl Fn(&T) -> u32) -> Option<&'a T> {
    let total: u64 = items.iter().map(|i| u64::from(w(i))).sum();
    if total == 0 {
        return items.first();
    }
    let mut x = rng.below(total);
    for i in items {
        let wi = u64::from(w(i));
        if x < wi {
            return Some(i);
        }
        x -= wi;
    }
    items.last()
}

fn chance(rng: &mut Rng, one_in: u64) -> bool {
    rng.below(one_in) == 0
}

/// One flow in a hundred ends with a request the policy denies.
const VIOLATION_ONE_IN: u64 = 100;

// ---------------------------------------------------------------------------------------
// Scripts: one flow's packets, in order

enum Step {
    Tcp(Side, u8, Vec<u8>),
    Udp(Side, Vec<u8>),
}

/// Builds one flow's packets, applying the ACK behaviour of a Linux stack: the receiver of
/// a run of full segments ACKs every second one; what answers a request carries the ACK.
struct Script {
    steps: Vec<Step>,
    /// Transactions as the parsers will count them.
    tx: u64,
    denied: u64,
    alerted: u64,
}

impl Script {
    fn new() -> Self {
        Script {
            steps: Vec::with_capacity(32),
            tx: 0,
            denied: 0,
            alerted: 0,
        }
    }

    fn open(&mut self) {
        self.steps.push(Step::Tcp(Side::Client, SYN, Vec::new()));
        self.steps.push(Step::Tcp(Side::Server, SYN, Vec::new()));
        self.steps.push(Step::Tcp(Side::Client, 0, Vec::new()));
    }

    fn send(&mut self, from: Side, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let peer = match from {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        let chunks: Vec<&[u8]> = data.chunks(MSS).collect();
        let last = chunks.len() - 1;
        for (k, c) in chunks.into_iter().enumerate() {
            let flags = if k == last { PSH } else { 0 };
            self.steps.push(Step::Tcp(from, flags, c.to_vec()));
            if k % 2 == 1 && k != last {
                self.steps.push(Step::Tcp(peer, 0, Vec::new()));
            }
        }
    }

    fn ack(&mut self, from: Side) {
        self.steps.push(Step::Tcp(from, 0, Vec::new()));
    }

    /// FIN from `first`, FIN+ACK back, the last ACK.
    fn close(&mut self, first: Side) {
        let other = match first {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        self.steps.push(Step::Tcp(first, FIN, Vec::new()));
        self.steps.push(Step::Tcp(other, FIN, Vec::new()));
        self.steps.push(Step::Tcp(first, 0, Vec::new()));
    }

    fn udp(&mut self, from: Side, data: Vec<u8>) {
        self.steps.push(Step::Udp(from, data));
    }

    /// After a response: the client's delayed ACK fires unless its next request is quick.
    fn maybe_delayed_ack(&mut self, rng: &mut Rng) {
        if chance(rng, 2) {
            self.ack(Side::Client);
        }
    }
}

// -- HTTP/1.1 ----------------------------------------------------------------------------

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "OK",
    }
}

fn http_body(rng: &mut Rng, kind: &str, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 64);
    match kind {
        "html" => {
            s.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title></head><body><main>");
            while s.len() + 40 < len {
                let _ = write!(
                    s,
                    "<article class=\"p\"><h2>{}</h2><span>{}</span></article>",
                    WORDS[rng.below(WORDS.len() as u64) as usize],
                    rng.below(10_000)
                );
            }
            s.push_str("</main></body></html>");
        }
        "metrics" => {
            let mut i = 0;
            while s.len() + 80 < len {
                let _ = writeln!(
                    s,
                    "http_requests_total{{code=\"200\",handler=\"/api/v1/h{i}\",method=\"get\"}} {}",
                    rng.below(10_000_000)
                );
                i += 1;
            }
        }
        "static" => {
            while s.len() < len {
                let _ = write!(s, "function f{}(a){{return a*{};}}", s.len(), rng.below(97));
            }
        }
        _ => {
            let _ = write!(s, "{{\"id\":{},\"items\":[", rng.below(1_000_000));
            while s.len() + 48 < len {
                let _ = write!(
                    s,
                    "{{\"sku\":\"SKU-{:05}\",\"qty\":{},\"name\":\"{}\"}},",
                    rng.below(100_000),
                    1 + rng.below(5),
                    WORDS[rng.below(WORDS.len() as u64) as usize]
                );
            }
            s.push_str("{\"end\":true}]}");
        }
    }
    s.into_bytes()
}

fn http_request(rng: &mut Rng, e: &Edge, ep: &Ep, path: &str, close: bool, hosts: bool) -> Vec<u8> {
    let host = if !hosts {
        let ip = ips_of(e.server)
            .first()
            .copied()
            .unwrap_or(Ipv4Addr::LOCALHOST);
        format!("{ip}:{}", e.port)
    } else if e.server == "frontend" {
        INGRESS_HOSTS[rng.below(2) as usize].to_string()
    } else {
        let forms = host_forms(e.server);
        let h = forms[rng.below(4) as usize].clone();
        if chance(rng, 2) {
            format!("{h}:{}", e.port)
        } else {
            h
        }
    };
    let ua = match e.client {
        "nodes" => "kube-probe/1.31",
        "prometheus" => "Prometheus/2.54.1",
        "ingress" => BROWSERS[rng.below(BROWSERS.len() as u64) as usize],
        _ => AGENTS[(rng.below(AGENTS.len() as u64)) as usize],
    };
    let mut s = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n",
        ep.method
    );
    match e.client {
        "prometheus" => s.push_str(
            "Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n",
        ),
        "nodes" => s.push_str("Accept: */*\r\n"),
        "ingress" => {
            let _ = write!(
                s,
                "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.7\r\n\
                 Accept-Encoding: gzip, br\r\nX-Forwarded-For: 198.51.100.{}\r\nX-Forwarded-Proto: https\r\n\
                 Cookie: sid={}\r\n",
                rng.below(250),
                hex(rng, 24)
            );
        }
        _ => {
            s.push_str("Accept: application/json\r\n");
            if chance(rng, 2) {
                s.push_str("Accept-Encoding: gzip\r\n");
            }
            let _ = write!(
                s,
                "X-Request-Id: {}\r\ntraceparent: 00-{}-{}-01\r\n",
                uuid(rng),
                hex(rng, 32),
                hex(rng, 16)
            );
            if chance(rng, 3) {
                let _ = write!(s, "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.{}\r\n", hex(rng, 48));
            }
        }
    }
    if close {
        s.push_str("Connection: close\r\n");
    }
    let body = match ep.body {
        ReqBody::None => Vec::new(),
        ReqBody::Json => json_value(rng, 40, 600).into_bytes(),
        ReqBody::Form => format!(
            "cart={}&shipping=standard&payment=card&csrf={}",
            uuid(rng),
            hex(rng, 32)
        )
        .into_bytes(),
    };
    match ep.body {
        ReqBody::None => {}
        ReqBody::Json => s.push_str("Content-Type: application/json\r\n"),
        ReqBody::Form => s.push_str("Content-Type: application/x-www-form-urlencoded\r\n"),
    }
    if !body.is_empty() {
        let _ = write!(s, "Content-Length: {}\r\n", body.len());
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(&body);
    out
}

fn http_response(rng: &mut Rng, e: &Edge, ep: &Ep, close: bool) -> Vec<u8> {
    let (status, kind, len) = match (e.client, ep.method, ep.path) {
        ("nodes", ..) => (200, "text", 2),
        ("prometheus", ..) => (200, "metrics", 4_000 + rng.below(20_000) as usize),
        (_, "HEAD", _) => (200, "html", 0),
        (_, _, p) if e.server == "frontend" && p.starts_with("/static") => {
            (200, "static", 2_000 + rng.below(40_000) as usize)
        }
        (_, "POST", _) if e.server == "frontend" => (303, "html", 0),
        _ if e.server == "frontend" => (200, "html", 3_000 + rng.below(20_000) as usize),
        (_, "DELETE", _) => (204, "json", 0),
        (_, "POST", _) => (
            if chance(rng, 30) { 409 } else { 201 },
            "json",
            60 + rng.below(400) as usize,
        ),
        (_, "GET", _) => {
            let st = match rng.below(100) {
                0..=6 => 404,
                7 => 500,
                _ => 200,
            };
            let len = if st == 200 {
                if chance(rng, 6) {
                    2_000 + rng.below(6_000) as usize
                } else {
                    80 + rng.below(1_200) as usize
                }
            } else {
                40
            };
            (st, "json", len)
        }
        _ => (200, "json", 60 + rng.below(300) as usize),
    };
    let ctype = match kind {
        "html" => "text/html; charset=utf-8",
        "metrics" => "text/plain; version=0.0.4; charset=utf-8",
        "static" => "application/javascript",
        "text" => "text/plain; charset=utf-8",
        _ => "application/json",
    };
    let body = if kind == "text" {
        b"ok".to_vec()
    } else if len == 0 {
        Vec::new()
    } else {
        http_body(rng, kind, len)
    };
    let reason = if status == 303 {
        "See Other"
    } else {
        reason(status)
    };
    let mut s = format!(
        "HTTP/1.1 {status} {reason}\r\nDate: Sun, 22 Nov 2026 06:{:02}:{:02} GMT\r\nContent-Type: {ctype}\r\n",
        rng.below(60),
        rng.below(60)
    );
    if status == 303 {
        s.push_str("Location: /order/confirmation\r\n");
    }
    if e.server == "frontend" && kind == "static" {
        s.push_str("Cache-Control: public, max-age=31536000, immutable\r\nETag: \"");
        s.push_str(&hex(rng, 16));
        s.push_str("\"\r\n");
    }
    if close {
        s.push_str("Connection: close\r\n");
    }
    let head_only = ep.method == "HEAD";
    let chunked = !head_only && status == 200 && kind == "json" && chance(rng, 8);
    let mut out;
    if chunked {
        s.push_str("Transfer-Encoding: chunked\r\n\r\n");
        out = s.into_bytes();
        let mut rest = &body[..];
        while !rest.is_empty() {
            let n = rest.len().min(256 + rng.below(2_000) as usize);
            out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        if status != 204 && status != 304 {
            let len = if head_only { 5_120 } else { body.len() };
            let _ = write!(s, "Content-Length: {len}\r\n");
        }
        s.push_str("\r\n");
        out = s.into_bytes();
        if !head_only {
            out.extend_from_slice(&body);
        }
    }
    out
}

fn http_flow(rng: &mut Rng, e: &Edge, hosts: bool, eps: &[Ep], violate: bool, sc: &mut Script) {
    sc.open();
    // Probes and scrapes: one request, `Connection: close`, the server closes.
    let single = matches!(e.client, "nodes" | "prometheus");
    let n = if single {
        1
    } else {
        1 + rng.below(8) + u64::from(chance(rng, 4)) * rng.below(12)
    };
    for i in 0..n {
        let last = i + 1 == n;
        let Some(ep) = pick(rng, eps, |e| e.w) else {
            break;
        };
        let path = fill(ep.path, rng);
        let close = single || (last && chance(rng, 5));
        sc.send(Side::Client, &http_request(rng, e, ep, &path, close, hosts));
        sc.tx += 1;
        if ep.act == Act::Alert {
            sc.alerted += 1;
        }
        sc.send(Side::Server, &http_response(rng, e, ep, close));
        if close {
            sc.close(Side::Server);
            return;
        }
        sc.maybe_delayed_ack(rng);
    }
    if violate {
        let bad = ["/admin/config", "/actuator/env", "/debug/pprof/heap"][rng.below(3) as usize];
        let ep = ep("GET", bad, 1);
        sc.send(Side::Client, &http_request(rng, e, &ep, bad, false, hosts));
        sc.tx += 1;
        sc.denied += 1;
        sc.send(
            Side::Server,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found",
        );
    }
    sc.close(Side::Client);
}

// -- gRPC over h2c -----------------------------------------------------------------------

fn grpc_request_msg(rng: &mut Rng, method: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    match method {
        "Check" => {}
        "Verify" | "Refresh" | "Revoke" => {
            let len = 64 + rng.below(64) as usize;
            pb_bytes(&mut m, 1, hex(rng, len).as_bytes());
        }
        "BatchQuote" | "List" => {
            for _ in 0..1 + rng.below(12) {
                pb_bytes(&mut m, 1, fill("{sku}", rng).as_bytes());
            }
            pb_varint(&mut m, 2, rng.below(3));
        }
        _ => {
            pb_varint(&mut m, 1, 1 + rng.below(999_999));
            pb_bytes(&mut m, 2, fill("{sku}", rng).as_bytes());
            pb_varint(&mut m, 3, 1 + rng.below(5));
            if chance(rng, 2) {
                pb_bytes(&mut m, 4, uuid(rng).as_bytes());
            }
        }
    }
    m
}

fn grpc_response_msg(rng: &mut Rng, method: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    match method {
        "Check" => pb_varint(&mut m, 1, 1), // SERVING
        "List" | "BatchQuote" => {
            for _ in 0..1 + rng.below(12) {
                let mut item = Vec::new();
                pb_bytes(&mut item, 1, fill("{sku}", rng).as_bytes());
                pb_varint(&mut item, 2, rng.below(100_000));
                pb_bytes(&mut m, 1, &item);
            }
        }
        _ => {
            pb_varint(&mut m, 1, rng.below(1_000_000));
            pb_bytes(&mut m, 2, b"ok");
            pb_varint(&mut m, 3, 1_795_327_200 + rng.below(86_400));
        }
    }
    m
}

struct H2Conn {
    client: HpackEncoder,
    server: HpackEncoder,
    next_stream: u32,
}

fn grpc_headers(
    rng: &mut Rng,
    h: &mut HpackEncoder,
    e: &Edge,
    path: &str,
    ua: &str,
    token: Option<&str>,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(160);
    h.header(&mut b, ":method", "POST", Indexing::Incremental);
    h.header(&mut b, ":scheme", "http", Indexing::Incremental);
    h.header(&mut b, ":path", path, Indexing::Incremental);
    let authority = format!("{}.shop.svc.cluster.local:{}", e.server, e.port);
    h.header(&mut b, ":authority", &authority, Indexing::Incremental);
    h.header(
        &mut b,
        "content-type",
        "application/grpc",
        Indexing::Incremental,
    );
    h.header(&mut b, "user-agent", ua, Indexing::Incremental);
    h.header(&mut b, "te", "trailers", Indexing::Incremental);
    let timeout = format!("{}m", 200 + rng.below(9_800));
    h.header(&mut b, "grpc-timeout", &timeout, Indexing::Without);
    if let Some(t) = token {
        h.header(&mut b, "authorization", t, Indexing::Never);
    }
    if e.client != "nodes" {
        let tp = format!("00-{}-{}-01", hex(rng, 32), hex(rng, 16));
        h.header(&mut b, "traceparent", &tp, Indexing::Without);
    }
    b
}

/// The request of one unary call on the next stream: HEADERS and one DATA with the
/// message, END_STREAM. Returns the stream id.
fn grpc_request(
    rng: &mut Rng,
    c: &mut H2Conn,
    e: &Edge,
    path: &str,
    ua: &str,
    token: Option<&str>,
    out: &mut Vec<u8>,
) -> u32 {
    let stream = c.next_stream;
    c.next_stream += 2;
    let block = grpc_headers(rng, &mut c.client, e, path, ua, token);
    h2_frame(out, H2_HEADERS, H2_END_HEADERS, stream, &block);
    let method = path.rsplit('/').next().unwrap_or_default();
    let mut msg = Vec::new();
    grpc_message(&mut msg, &grpc_request_msg(rng, method));
    h2_frame(out, H2_DATA, H2_END_STREAM, stream, &msg);
    stream
}

/// The response to the call on `stream`: HEADERS, DATA, trailers; or trailers only for
/// an error. Header blocks are encoded in the order they go on the wire, which is what
/// keeps the peer's HPACK table in step.
fn grpc_response(rng: &mut Rng, c: &mut H2Conn, stream: u32, method: &str, out: &mut Vec<u8>) {
    let status = match rng.below(50) {
        0 => 5,
        1 => 9,
        2 => 14,
        _ => 0,
    };
    let mut block = Vec::with_capacity(64);
    c.server
        .header(&mut block, ":status", "200", Indexing::Incremental);
    c.server.header(
        &mut block,
        "content-type",
        "application/grpc",
        Indexing::Incremental,
    );
    if status == 0 {
        h2_frame(out, H2_HEADERS, H2_END_HEADERS, stream, &block);
        let mut msg = Vec::new();
        grpc_message(&mut msg, &grpc_response_msg(rng, method));
        h2_frame(out, H2_DATA, 0, stream, &msg);
        let mut trailers = Vec::with_capacity(16);
        c.server
            .header(&mut trailers, "grpc-status", "0", Indexing::Incremental);
        h2_frame(
            out,
            H2_HEADERS,
            H2_END_HEADERS | H2_END_STREAM,
            stream,
            &trailers,
        );
    } else {
        // Trailers-only response.
        let code = status.to_string();
        c.server
            .header(&mut block, "grpc-status", &code, Indexing::Incremental);
        let message = match status {
            5 => "sku not found",
            9 => "insufficient stock",
            _ => "upstream unavailable",
        };
        c.server
            .header(&mut block, "grpc-message", message, Indexing::Without);
        h2_frame(
            out,
            H2_HEADERS,
            H2_END_HEADERS | H2_END_STREAM,
            stream,
            &block,
        );
    }
}

const GRPC_AGENTS: [&str; 3] = [
    "grpc-go/1.67.1",
    "grpc-java-netty/1.68.1",
    "grpc-node-js/1.12.2",
];

fn grpc_flow(
    rng: &mut Rng,
    e: &Edge,
    service: &str,
    methods: &[&str],
    violate: bool,
    sc: &mut Script,
) {
    sc.open();
    let mut c = H2Conn {
        client: HpackEncoder::new(),
        server: HpackEncoder::new(),
        next_stream: 1,
    };
    let ua = if e.client == "nodes" {
        "kube-probe/1.31"
    } else {
        GRPC_AGENTS[rng.below(3) as usize]
    };
    let token = (e.client != "nodes" && chance(rng, 2))
        .then(|| format!("Bearer eyJhbGciOiJFUzI1NiJ9.{}", hex(rng, 64)));
    // Connection start: preface and SETTINGS each way, then their ACKs.
    let mut hello = H2_PREFACE.to_vec();
    h2_settings(&mut hello, &[(0x2, 0), (0x4, 4_194_304), (0x6, 16_384)]);
    h2_window_update(&mut hello, 0, 4_128_769);
    sc.send(Side::Client, &hello);
    let mut shello = Vec::new();
    h2_settings(&mut shello, &[(0x3, 100), (0x4, 4_194_304), (0x5, 16_384)]);
    h2_window_update(&mut shello, 0, 4_128_769);
    h2_settings_ack(&mut shello);
    sc.send(Side::Server, &shello);
    let mut ack = Vec::new();
    h2_settings_ack(&mut ack);

    let calls = if e.client == "nodes" {
        1
    } else {
        2 + rng.below(10) + u64::from(chance(rng, 4)) * rng.below(20)
    };
    let mut done = 0;
    let mut first = true;
    while done < calls {
        // One to three calls in flight; the responses may come back in another order.
        let inflight = (1 + rng.below(3)).min(calls - done);
        let mut reqs = if first {
            std::mem::take(&mut ack)
        } else {
            Vec::new()
        };
        first = false;
        let mut calls_out: Vec<(u32, &str)> = Vec::with_capacity(3);
        for _ in 0..inflight {
            let method = methods[rng.below(methods.len() as u64) as usize];
            let path = format!("/{service}/{method}");
            let stream = grpc_request(rng, &mut c, e, &path, ua, token.as_deref(), &mut reqs);
            calls_out.push((stream, method));
            sc.tx += 1;
        }
        sc.send(Side::Client, &reqs);
        if calls_out.len() > 1 && chance(rng, 2) {
            calls_out.reverse();
        }
        let mut resp = Vec::new();
        for (stream, method) in calls_out {
            grpc_response(rng, &mut c, stream, method, &mut resp);
        }
        sc.send(Side::Server, &resp);
        done += inflight;
        if chance(rng, 8) {
            // BDP estimation: the server pings, the client answers.
            let data = rng.next_u64().to_be_bytes();
            let mut p = Vec::new();
            h2_ping(&mut p, false, data);
            sc.send(Side::Server, &p);
            let mut a = Vec::new();
            h2_ping(&mut a, true, data);
            sc.send(Side::Client, &a);
        } else {
            sc.maybe_delayed_ack(rng);
        }
    }
    if violate {
        let mut rq = Vec::new();
        let stream = grpc_request(
            rng,
            &mut c,
            e,
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ua,
            token.as_deref(),
            &mut rq,
        );
        sc.send(Side::Client, &rq);
        sc.tx += 1;
        sc.denied += 1;
        let mut rs = Vec::new();
        grpc_response(rng, &mut c, stream, "ServerReflectionInfo", &mut rs);
        sc.send(Side::Server, &rs);
    }
    let mut bye = Vec::new();
    h2_goaway(&mut bye, 0, 0);
    sc.send(Side::Client, &bye);
    sc.close(Side::Client);
}

// -- PostgreSQL --------------------------------------------------------------------------

fn col_value(rng: &mut Rng, c: Col) -> Vec<u8> {
    match c {
        Col::Int => rng.below(1_000).to_string(),
        Col::BigInt => (1 + rng.below(9_999_999)).to_string(),
        Col::Text => format!(
            "{}-{}",
            WORDS[rng.below(WORDS.len() as u64) as usize],
            rng.below(10_000)
        ),
        Col::Money => format!("{}.{:02}", rng.below(10_000), rng.below(100)),
        Col::Time => format!(
            "2026-11-{:02} {:02}:{:02}:{:02}.{:06}+00",
            1 + rng.below(21),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.below(1_000_000)
        ),
        Col::Bool => if chance(rng, 2) { "t" } else { "f" }.to_string(),
    }
    .into_bytes()
}

const fn pg_type(c: Col) -> (u32, i16) {
    match c {
        Col::Int => (PG_INT4, 4),
        Col::BigInt => (PG_INT8, 8),
        Col::Text => (PG_TEXT, -1),
        Col::Money => (PG_NUMERIC, -1),
        Col::Time => (PG_TIMESTAMPTZ, 8),
        Col::Bool => (PG_BOOL, 1),
    }
}

/// The server's answer to one statement (without ReadyForQuery).
fn pg_result(rng: &mut Rng, q: &Q, out: &mut Vec<u8>, with_description: bool) {
    match q.res {
        Res::Rows(cols, max) => {
            if with_description {
                let desc: Vec<(&str, u32, i16)> = cols
                    .iter()
                    .map(|&(n, c)| {
                        let (oid, len) = pg_type(c);
                        (n, oid, len)
                    })
                    .collect();
                pg_row_description(out, 16_384 + rng.below(1000) as u32, &desc);
            }
            let rows = if max <= 1 {
                u64::from(max)
            } else {
                rng.below(u64::from(max) + 1)
            };
            for _ in 0..rows {
                let vals: Vec<Vec<u8>> = cols.iter().map(|&(_, c)| col_value(rng, c)).collect();
                let refs: Vec<Option<&[u8]>> = vals.iter().map(|v| Some(v.as_slice())).collect();
                pg_data_row(out, &refs);
            }
            let tag = if q.verb == "INSERT" {
                "INSERT 0 1".to_string()
            } else {
                format!("SELECT {rows}")
            };
            pg_command_complete(out, &tag);
        }
        Res::Affected(verb) => {
            let n = if verb == "INSERT" { 1 } else { rng.below(4) };
            let tag = if verb == "INSERT" {
                "INSERT 0 1".to_string()
            } else {
                format!("{verb} {n}")
            };
            pg_command_complete(out, &tag);
        }
        Res::Tag(t) => pg_command_complete(out, t),
    }
}

fn pg_flow(
    rng: &mut Rng,
    e: &Edge,
    user: &str,
    db: &str,
    units: &[Unit],
    violate: bool,
    sc: &mut Script,
) {
    sc.open();
    let app_name = match e.client {
        "reporting" => "metabase",
        "orders-cleanup" => "orders-cleanup",
        c => c,
    };
    let mut startup = Vec::new();
    pg_startup(
        &mut startup,
        &[
            ("user", user),
            ("database", db),
            ("application_name", app_name),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
        ],
    );
    sc.send(Side::Client, &startup);
    sc.tx += 1; // LOGIN
    let mut s = Vec::new();
    if chance(rng, 3) {
        // SCRAM-SHA-256: the exchange is opaque to the parser (secrets are never read).
        pg_auth(&mut s, 10, b"SCRAM-SHA-256\0\0");
        sc.send(Side::Server, &s);
        let mut c = Vec::new();
        let first = format!("n,,n=,r={}", hex(rng, 24));
        pg_sasl_initial(&mut c, "SCRAM-SHA-256", first.as_bytes());
        sc.send(Side::Client, &c);
        s.clear();
        let cont = format!(
            "r={}{},s={},i=4096",
            hex(rng, 24),
            hex(rng, 18),
            hex(rng, 24)
        );
        pg_auth(&mut s, 11, cont.as_bytes());
        sc.send(Side::Server, &s);
        c.clear();
        let fin = format!("c=biws,r={},p={}", hex(rng, 42), hex(rng, 44));
        pg_msg(&mut c, b'p', fin.as_bytes());
        sc.send(Side::Client, &c);
        s.clear();
        pg_auth(&mut s, 12, format!("v={}", hex(rng, 44)).as_bytes());
    }
    pg_auth(&mut s, 0, &[]);
    for (k, v) in [
        ("application_name", app_name),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("is_superuser", "off"),
        ("server_encoding", "UTF8"),
        ("server_version", "16.4"),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
    ] {
        pg_parameter_status(&mut s, k, v);
    }
    pg_backend_key(
        &mut s,
        1_000 + rng.below(60_000) as u32,
        rng.next_u64() as u32,
    );
    pg_ready(&mut s, b'I');
    sc.send(Side::Server, &s);

    let extended = chance(rng, 3);
    let units_n = 1 + rng.below(6) + u64::from(chance(rng, 3)) * rng.below(10);
    for _ in 0..units_n {
        let Some(u) = pick(rng, units, |u| u.w) else {
            break;
        };
        if u.tx {
            let mut c = Vec::new();
            pg_query(&mut c, "BEGIN");
            sc.send(Side::Client, &c);
            sc.tx += 1;
            let mut s = Vec::new();
            pg_command_complete(&mut s, "BEGIN");
            pg_ready(&mut s, b'T');
            sc.send(Side::Server, &s);
        }
        for q in u.stmts {
            let mut c = Vec::new();
            let mut s = Vec::new();
            if extended && !u.tx {
                let (text, params) = parametrize(q.sql, rng);
                pg_parse(&mut c, "", &text, params.len() as u16);
                let refs: Vec<&[u8]> = params.iter().map(|p| p.as_bytes()).collect();
                pg_bind(&mut c, "", "", &refs);
                pg_describe_portal(&mut c, "");
                pg_execute(&mut c, "");
                pg_msg(&mut c, b'S', &[]);
                sc.tx += 2; // Parse and Execute
                pg_msg(&mut s, b'1', &[]);
                pg_msg(&mut s, b'2', &[]);
                if !matches!(q.res, Res::Rows(..)) {
                    pg_msg(&mut s, b'n', &[]);
                }
                pg_result(rng, q, &mut s, true);
            } else {
                pg_query(&mut c, &fill(q.sql, rng));
                sc.tx += 1;
                if chance(rng, 60) && !u.tx {
                    pg_error(&mut s, "55P03", "could not obtain lock on row in relation");
                } else {
                    pg_result(rng, q, &mut s, true);
                }
            }
            pg_ready(&mut s, if u.tx { b'T' } else { b'I' });
            sc.send(Side::Client, &c);
            sc.send(Side::Server, &s);
        }
        if u.tx {
            let mut c = Vec::new();
            pg_query(&mut c, "COMMIT");
            sc.send(Side::Client, &c);
            sc.tx += 1;
            let mut s = Vec::new();
            pg_command_complete(&mut s, "COMMIT");
            pg_ready(&mut s, b'I');
            sc.send(Side::Server, &s);
        }
        sc.maybe_delayed_ack(rng);
    }
    if violate {
        let mut c = Vec::new();
        pg_query(&mut c, "TRUNCATE TABLE order_items");
        sc.send(Side::Client, &c);
        sc.tx += 1;
        sc.denied += 1;
        let mut s = Vec::new();
        pg_error(&mut s, "42501", "permission denied for table order_items");
        pg_ready(&mut s, b'I');
        sc.send(Side::Server, &s);
    }
    let mut c = Vec::new();
    pg_msg(&mut c, b'X', &[]);
    sc.send(Side::Client, &c);
    sc.close(Side::Client);
}

// -- MySQL -------------------------------------------------------------------------------

const fn my_type(c: Col) -> u8 {
    match c {
        Col::Int | Col::Bool => MY_TYPE_LONG,
        Col::BigInt => MY_TYPE_LONGLONG,
        Col::Text => MY_TYPE_VAR_STRING,
        Col::Money => MY_TYPE_NEWDECIMAL,
        Col::Time => MY_TYPE_DATETIME,
    }
}

/// The server's answer to one COM_QUERY.
fn my_result(rng: &mut Rng, q: &Q, db: &str, deprecate_eof: bool, status: u16, out: &mut Vec<u8>) {
    match q.res {
        Res::Rows(cols, max) => {
            let mut seq = 1u8;
            let mut head = Vec::new();
            my_lenenc(&mut head, cols.len() as u64);
            my_packet(out, seq, &head);
            let table = q.tables.first().copied().unwrap_or_default();
            for &(name, c) in cols {
                seq = seq.wrapping_add(1);
                my_column(out, seq, db, table, name, my_type(c));
            }
            if !deprecate_eof {
                seq = seq.wrapping_add(1);
                my_eof(out, seq, status);
            }
            let rows = if max <= 1 {
                u64::from(max)
            } else {
                rng.below(u64::from(max) + 1)
            };
            for _ in 0..rows {
                seq = seq.wrapping_add(1);
                let vals: Vec<Vec<u8>> = cols
                    .iter()
                    .map(|&(_, c)| {
                        let v = col_value(rng, c);
                        if c == Col::Time {
                            v.get(..19).map(<[u8]>::to_vec).unwrap_or(v)
                        } else {
                            v
                        }
                    })
                    .collect();
                let refs: Vec<Option<&[u8]>> = vals.iter().map(|v| Some(v.as_slice())).collect();
                my_row(out, seq, &refs);
            }
            seq = seq.wrapping_add(1);
            if deprecate_eof {
                my_ok(out, seq, 0xfe, 0, 0, status);
            } else {
                my_eof(out, seq, status);
            }
        }
        Res::Affected(verb) => {
            let (n, id) = if verb == "INSERT" {
                (1, 1 + rng.below(9_999_999))
            } else {
                (rng.below(4), 0)
            };
            my_ok(out, 1, 0x00, n, id, status);
        }
        Res::Tag(_) => my_ok(out, 1, 0x00, 0, 0, status),
    }
}

fn my_command(sc: &mut Script, sql: &str) {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    let mut c = Vec::new();
    my_packet(&mut c, 0, &p);
    sc.send(Side::Client, &c);
    sc.tx += 1;
}

fn mysql_flow(
    rng: &mut Rng,
    e: &Edge,
    user: &str,
    db: &str,
    units: &[Unit],
    violate: bool,
    sc: &mut Script,
) {
    sc.open();
    // The server speaks first.
    let server_caps = 0xdfff_f7ff_u32; // MySQL 8.0: everything but SSL... and one reserved bit
    let mut scramble = [0u8; 20];
    for b in &mut scramble {
        *b = 0x21 + rng.below(90) as u8;
    }
    let mut s = Vec::new();
    my_greeting(
        &mut s,
        "8.0.40",
        10 + rng.below(100_000) as u32,
        &scramble,
        server_caps & !0x800,
    );
    sc.send(Side::Server, &s);
    let deprecate_eof = chance(rng, 2);
    let mut caps = MY_CLIENT_LONG_PASSWORD
        | MY_CLIENT_FOUND_ROWS
        | MY_CLIENT_LONG_FLAG
        | MY_CLIENT_CONNECT_WITH_DB
        | MY_CLIENT_PROTOCOL_41
        | MY_CLIENT_TRANSACTIONS
        | MY_CLIENT_SECURE_CONNECTION
        | MY_CLIENT_MULTI_RESULTS
        | MY_CLIENT_PLUGIN_AUTH
        | MY_CLIENT_CONNECT_ATTRS
        | MY_CLIENT_PLUGIN_AUTH_LENENC;
    if deprecate_eof {
        caps |= MY_CLIENT_DEPRECATE_EOF;
    }
    let (driver, version) = if chance(rng, 2) {
        ("mysql-connector-java", "8.4.0")
    } else {
        ("go-sql-driver/mysql", "1.8.1")
    };
    let mut auth = [0u8; 32];
    for b in &mut auth {
        *b = rng.next_u64() as u8;
    }
    let mut c = Vec::new();
    my_handshake_response(
        &mut c,
        caps,
        user,
        &auth,
        Some(db),
        &[
            ("_client_name", driver),
            ("_client_version", version),
            ("_os", "Linux"),
            ("_pid", "1"),
            ("program_name", e.client),
        ],
    );
    sc.send(Side::Client, &c);
    sc.tx += 1; // LOGIN
    // caching_sha2_password fast path: "fast auth success", then OK.
    let mut s = Vec::new();
    my_packet(&mut s, 2, &[0x01, 0x03]);
    my_ok(&mut s, 3, 0x00, 0, 0, MY_STATUS_AUTOCOMMIT);
    sc.send(Side::Server, &s);

    if chance(rng, 2) {
        my_command(sc, MYSQL_SESSION.sql);
        let mut s = Vec::new();
        my_result(
            rng,
            &MYSQL_SESSION,
            db,
            deprecate_eof,
            MY_STATUS_AUTOCOMMIT,
            &mut s,
        );
        sc.send(Side::Server, &s);
    }
    let units_n = 1 + rng.below(6) + u64::from(chance(rng, 3)) * rng.below(10);
    for _ in 0..units_n {
        let Some(u) = pick(rng, units, |u| u.w) else {
            break;
        };
        let status = if u.tx {
            MY_STATUS_AUTOCOMMIT | MY_STATUS_IN_TRANS
        } else {
            MY_STATUS_AUTOCOMMIT
        };
        if u.tx {
            my_command(sc, "BEGIN");
            let mut s = Vec::new();
            my_ok(&mut s, 1, 0x00, 0, 0, status);
            sc.send(Side::Server, &s);
        }
        for q in u.stmts {
            my_command(sc, &fill(q.sql, rng));
            let mut s = Vec::new();
            if chance(rng, 60) && !u.tx {
                my_err(
                    &mut s,
                    1,
                    1205,
                    "HY000",
                    "Lock wait timeout exceeded; try restarting transaction",
                );
            } else {
                my_result(rng, q, db, deprecate_eof, status, &mut s);
            }
            sc.send(Side::Server, &s);
        }
        if u.tx {
            my_command(sc, "COMMIT");
            let mut s = Vec::new();
            my_ok(&mut s, 1, 0x00, 0, 0, MY_STATUS_AUTOCOMMIT);
            sc.send(Side::Server, &s);
        }
        sc.maybe_delayed_ack(rng);
    }
    if violate {
        my_command(sc, "DROP TABLE reservations");
        sc.denied += 1;
        let mut s = Vec::new();
        my_err(&mut s, 1, 1142, "42000", "DROP command denied to user");
        sc.send(Side::Server, &s);
    }
    let mut c = Vec::new();
    my_packet(&mut c, 0, &[0x01]);
    sc.send(Side::Client, &c);
    // The server closes after COM_QUIT.
    sc.close(Side::Server);
}

// -- Redis -------------------------------------------------------------------------------

fn redis_reply(rng: &mut Rng, r: &R, args: &[String], out: &mut Vec<u8>) {
    match r.reply {
        Reply::Ok => resp_simple(out, "OK"),
        Reply::Int => resp_int(out, rng.below(100) as i64),
        Reply::MaybeBulk => {
            if chance(rng, 4) {
                resp_bulk(out, None);
            } else {
                resp_bulk(out, Some(json_value(rng, 24, 900).as_bytes()));
            }
        }
        Reply::Array => {
            resp_array_head(out, args.len());
            for _ in args {
                if chance(rng, 5) {
                    resp_bulk(out, None);
                } else {
                    resp_bulk(out, Some(json_value(rng, 24, 300).as_bytes()));
                }
            }
        }
        Reply::Hash => {
            let n = rng.below(8) as usize;
            resp_array_head(out, 2 * n);
            for i in 0..n {
                resp_bulk(out, Some(format!("field{i}").as_bytes()));
                resp_bulk(out, Some(fill("{word}", rng).as_bytes()));
            }
        }
    }
}

fn redis_flow(rng: &mut Rng, cmds: &[R], violate: bool, sc: &mut Script) {
    sc.open();
    if chance(rng, 3) {
        let mut c = Vec::new();
        let pw = hex(rng, 32);
        resp_command(&mut c, &[b"AUTH", b"default", pw.as_bytes()]);
        sc.send(Side::Client, &c);
        sc.tx += 1;
        sc.send(Side::Server, b"+OK\r\n");
    }
    let n = 2 + rng.below(12) + u64::from(chance(rng, 4)) * rng.below(30);
    let mut done = 0;
    while done < n {
        // Pipelines of up to five commands now and then.
        let batch = if chance(rng, 5) {
            (2 + rng.below(4)).min(n - done)
        } else {
            1
        };
        let mut c = Vec::new();
        let mut s = Vec::new();
        for _ in 0..batch {
            if chance(rng, 40) {
                resp_command(&mut c, &[b"PING"]);
                resp_simple(&mut s, "PONG");
            } else if chance(rng, 150) {
                let pattern = format!(
                    "{}:*",
                    ["order", "session", "product", "cart"][rng.below(4) as usize]
                );
                resp_command(&mut c, &[b"KEYS", pattern.as_bytes()]);
                sc.alerted += 1;
                resp_array_head(&mut s, 2);
                resp_bulk(&mut s, Some(b"order:1"));
                resp_bulk(&mut s, Some(b"order:2"));
            } else {
                let Some(r) = pick(rng, cmds, |r| r.w) else {
                    break;
                };
                let args: Vec<String> = r.args.split(' ').map(|a| fill(a, rng)).collect();
                let mut argv: Vec<&[u8]> = vec![r.cmd.as_bytes()];
                argv.extend(args.iter().map(|a| a.as_bytes()));
                resp_command(&mut c, &argv);
                // MGET answers one element per key.
                let keys: Vec<String> = if r.cmd == "MGET" {
                    args.clone()
                } else {
                    Vec::new()
                };
                redis_reply(rng, r, &keys, &mut s);
            }
            sc.tx += 1;
        }
        sc.send(Side::Client, &c);
        sc.send(Side::Server, &s);
        done += batch;
        sc.maybe_delayed_ack(rng);
    }
    if violate {
        let mut c = Vec::new();
        resp_command(&mut c, &[b"FLUSHDB", b"ASYNC"]);
        sc.send(Side::Client, &c);
        sc.tx += 1;
        sc.denied += 1;
        sc.send(Side::Server, b"+OK\r\n");
        // The denied command was the last the firewall lets through: the client's
        // connection is reset, so it ends here (no QUIT to count).
        sc.close(Side::Client);
        return;
    }
    let mut c = Vec::new();
    resp_command(&mut c, &[b"QUIT"]);
    sc.send(Side::Client, &c);
    sc.tx += 1;
    sc.send(Side::Server, b"+OK\r\n");
    sc.close(Side::Server);
}

// -- DNS ---------------------------------------------------------------------------------

/// The ClusterIP of a service.
fn service_ip(name: &str) -> [u8; 4] {
    let i = app_index(name).unwrap_or(0) as u8;
    [10, 96, 1 + i / 200, 10 + i]
}

fn dns_exchange(rng: &mut Rng, sc: &mut Script, name: &str, qtype: u16, found: bool, edns: bool) {
    let ask = DnsAsk {
        id: rng.below(65_536) as u16,
        name,
        qtype,
        edns,
    };
    let mut q = Vec::with_capacity(64);
    dns_query(&mut q, &ask);
    sc.udp(Side::Client, q);
    sc.tx += 1;
    let answers: Vec<DnsData> = match (found, qtype) {
        (false, _) => Vec::new(),
        (true, DNS_A) => {
            let short = name.split('.').next().unwrap_or_default();
            let ip = if name.ends_with("cluster.local") {
                service_ip(short)
            } else {
                [203, 0, 113, 10 + rng.below(200) as u8]
            };
            vec![DnsData::A(ip)]
        }
        (true, DNS_SRV) => vec![DnsData::Srv(
            0,
            100,
            50051,
            name.split_once('.')
                .map_or(name, |(_, rest)| rest)
                .split_once('.')
                .map_or(name, |(_, rest)| rest)
                .to_string(),
        )],
        // AAAA for IPv4-only services: NOERROR, no answer.
        (true, _) => Vec::new(),
    };
    let zone = if name.ends_with("cluster.local") {
        "cluster.local"
    } else {
        name.split_once('.').map_or(name, |(_, z)| z)
    };
    let mut r = Vec::with_capacity(128);
    let rcode = if found { DNS_NOERROR } else { DNS_NXDOMAIN };
    dns_response(&mut r, &ask, rcode, &answers, zone);
    sc.udp(Side::Server, r);
}

fn dns_flow(
    rng: &mut Rng,
    e: &Edge,
    names: &[&str],
    external: &[&str],
    violate: bool,
    sc: &mut Script,
) {
    let edns = chance(rng, 2);
    if violate {
        let name = format!("{}.{}.tunnel.example", hex(rng, 30), hex(rng, 12));
        let ask = DnsAsk {
            id: rng.below(65_536) as u16,
            name: &name,
            qtype: DNS_A,
            edns,
        };
        let mut q = Vec::new();
        dns_query(&mut q, &ask);
        sc.udp(Side::Client, q);
        sc.tx += 1;
        sc.denied += 1;
        let mut r = Vec::new();
        dns_response(&mut r, &ask, DNS_NXDOMAIN, &[], "tunnel.example");
        sc.udp(Side::Server, r);
        return;
    }
    let ns = app_index(e.client).map_or("shop", |i| APPS[i].ns);
    let search = [
        format!("{ns}.svc.cluster.local"),
        "svc.cluster.local".to_string(),
        "cluster.local".to_string(),
    ];
    let use_external = !external.is_empty() && chance(rng, 2);
    if use_external {
        let name = external[rng.below(external.len() as u64) as usize];
        // ndots:5 — a name with fewer dots goes through the search list first.
        for domain in &search {
            let fq = format!("{name}.{domain}");
            dns_exchange(rng, sc, &fq, DNS_A, false, edns);
            dns_exchange(rng, sc, &fq, DNS_AAAA, false, edns);
        }
        dns_exchange(rng, sc, name, DNS_A, true, edns);
        dns_exchange(rng, sc, name, DNS_AAAA, true, edns);
    } else {
        let svc = names[rng.below(names.len() as u64) as usize];
        let svc_ns = app_index(svc).map_or("shop", |i| APPS[i].ns);
        if chance(rng, 6) {
            let fq = format!("_grpc._tcp.{svc}.{svc_ns}.svc.cluster.local");
            dns_exchange(rng, sc, &fq, DNS_SRV, true, edns);
        } else {
            let fq = format!("{svc}.{svc_ns}.svc.cluster.local");
            dns_exchange(rng, sc, &fq, DNS_A, true, edns);
            dns_exchange(rng, sc, &fq, DNS_AAAA, true, edns);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sessions and the interleaver

struct Session {
    proto: Proto,
    tcp: Option<TcpConversation>,
    ends: ((Ipv4Addr, u16), (Ipv4Addr, u16)),
    steps: std::vec::IntoIter<Step>,
}

impl Session {
    /// Writes the next packet into `out`; false when the flow is over.
    fn step(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(step) = self.steps.next() else {
            return false;
        };
        match step {
            Step::Tcp(side, flags, payload) => {
                if let Some(c) = self.tcp.as_mut() {
                    c.segment(side, flags, &payload, out);
                }
            }
            Step::Udp(side, payload) => {
                let (c, s) = self.ends;
                match side {
                    Side::Client => udp_datagram(c, s, &payload, out),
                    Side::Server => udp_datagram(s, c, &payload, out),
                }
            }
        }
        true
    }
}

/// Ephemeral ports per client address, cycling through Linux's default range.
struct Ports(BTreeMap<Ipv4Addr, u16>);

impl Ports {
    fn next(&mut self, ip: Ipv4Addr, rng: &mut Rng) -> u16 {
        let p = self
            .0
            .entry(ip)
            .or_insert_with(|| 32_768 + rng.below(28_000) as u16);
        *p = if *p >= 60_999 { 32_768 } else { *p + 1 };
        *p
    }
}

fn new_session(rng: &mut Rng, ports: &mut Ports) -> (Session, Script) {
    let e = pick(rng, &EDGES, |e| e.w).unwrap_or(&EDGES[0]);
    let clients = ips_of(e.client);
    let servers = ips_of(e.server);
    let cip = clients[rng.below(clients.len() as u64) as usize];
    let sip = servers[rng.below(servers.len() as u64) as usize];
    let cport = ports.next(cip, rng);
    let violate = e.client != "nodes" && e.client != "prometheus" && chance(rng, VIOLATION_ONE_IN);
    let mut sc = Script::new();
    match e.uses {
        Uses::Http { hosts, eps } => http_flow(rng, e, hosts, eps, violate, &mut sc),
        Uses::Grpc { service, methods } => grpc_flow(rng, e, service, methods, violate, &mut sc),
        Uses::Sql { user, db, units } => {
            if e.proto == Proto::Postgres {
                pg_flow(rng, e, user, db, units, violate, &mut sc);
            } else {
                mysql_flow(rng, e, user, db, units, violate, &mut sc);
            }
        }
        Uses::Redis(cmds) => redis_flow(rng, cmds, violate, &mut sc),
        Uses::Dns { names, external } => dns_flow(rng, e, names, external, violate, &mut sc),
        Uses::Probe => {
            sc.open();
            sc.close(Side::Client);
        }
    }
    let ends = ((cip, cport), (sip, e.port));
    let tcp = (e.proto != Proto::Dns).then(|| {
        TcpConversation::new(
            ends.0,
            ends.1,
            [rng.next_u64() as u32, rng.next_u64() as u32],
        )
    });
    let steps = std::mem::take(&mut sc.steps).into_iter();
    (
        Session {
            proto: e.proto,
            tcp,
            ends,
            steps,
        },
        sc,
    )
}

/// Generates `flows` flows of the mix, interleaved, handing each frame to `sink` with its
/// timestamp. The same `(flows, seed)` always gives the same bytes.
pub fn generate(flows: u64, seed: u64, sink: &mut dyn FnMut(u64, &[u8])) -> MixStats {
    let mut rng = Rng::new(seed);
    let mut ports = Ports(BTreeMap::new());
    let mut stats = MixStats::default();
    let mut live: Vec<Session> = Vec::with_capacity(CONCURRENT);
    let mut started = 0u64;
    let mut ts = START_NS;
    let mut frame = Vec::with_capacity(2048);
    loop {
        while live.len() < CONCURRENT && started < flows {
            let (s, sc) = new_session(&mut rng, &mut ports);
            if let Some(c) = stats.per_proto.get_mut(s.proto.ix()) {
                c.flows += 1;
                c.transactions += sc.tx;
            }
            stats.total.sessions += 1;
            stats.total.transactions += sc.tx;
            stats.denied += sc.denied;
            stats.alerted += sc.alerted;
            live.push(s);
            started += 1;
        }
        if live.is_empty() {
            break;
        }
        let k = rng.below(live.len() as u64) as usize;
        frame.clear();
        let Some(s) = live.get_mut(k) else { break };
        if s.step(&mut frame) {
            ts += 2_000 + rng.below(28_000);
            sink(ts, &frame);
            stats.total.packets += 1;
            stats.total.bytes += frame.len() as u64;
            if let Some(c) = stats.per_proto.get_mut(s.proto.ix()) {
                c.packets += 1;
                c.bytes += frame.len() as u64;
            }
        } else {
            live.swap_remove(k);
        }
    }
    stats.span_ns = ts - START_NS;
    stats
}

/// [`generate`] into memory.
pub fn generate_frames(flows: u64, seed: u64) -> (Frames, MixStats) {
    let mut frames = Frames::new();
    let stats = generate(flows, seed, &mut |ts, f| frames.push(ts, f));
    (frames, stats)
}

/// Where [`write_capture`] put its files.
#[derive(Clone, Debug)]
pub struct WrittenCapture {
    pub pcap: std::path::PathBuf,
    pub inventory: std::path::PathBuf,
    pub policy: std::path::PathBuf,
    pub stats: MixStats,
}

/// Writes the mix to `pcap` (little-endian, nanosecond), and the inventory and policy
/// next to it (`NAME-inventory.yaml`, `NAME-policy.yaml`, NAME being the capture's file
/// stem).
pub fn write_capture(pcap: &Path, flows: u64, seed: u64) -> io::Result<WrittenCapture> {
    let stem = pcap
        .file_stem()
        .map_or_else(|| "eastwest".into(), |s| s.to_string_lossy().into_owned());
    let dir = pcap.parent().unwrap_or(Path::new(""));
    let inventory = dir.join(format!("{stem}-inventory.yaml"));
    let policy = dir.join(format!("{stem}-policy.yaml"));
    let mut out = PcapOut::create(pcap)?;
    let stats = generate(flows, seed, &mut |ts, f| out.write(ts, f));
    out.finish()?;
    std::fs::write(&inventory, inventory_yaml())?;
    std::fs::write(&policy, policy_yaml())?;
    Ok(WrittenCapture {
        pcap: pcap.to_path_buf(),
        inventory,
        policy,
        stats,
    })
}

#[cfg(test)]
mod tests;
