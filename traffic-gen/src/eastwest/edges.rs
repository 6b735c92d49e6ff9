//! Who talks to whom: the vocabulary of a conversation (HTTP endpoints, SQL statements and
//! units of work, Redis commands, what an edge uses) and [`EDGES`], the table every flow of
//! the mix, and every rule of the policy, is derived from.

use super::Proto;
use super::requests::{
    CART_EPS, CART_REDIS, CATALOG_DB_UNITS, CATALOG_EPS, CATALOG_REDIS, CLEANUP_UNITS,
    FRONTEND_EPS, METRICS_EPS, NOTIFY_EPS, NOTIFY_REDIS, ORDERS_DB_UNITS, ORDERS_EPS, ORDERS_REDIS,
    ORDERS_USERS_EPS, PROBE_EPS, REPORTING_CATALOG_UNITS, REPORTING_ORDERS_UNITS,
    REPORTING_USERS_UNITS, REVIEWS_DB_UNITS, REVIEWS_EPS, SEARCH_CATALOG_EPS, SEARCH_EPS,
    SEARCH_REDIS, STOCK_DB_UNITS, USERS_DB_UNITS, USERS_EPS, USERS_REDIS,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Act {
    Allow,
    Alert,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ReqBody {
    None,
    Json,
    Form,
}

/// One HTTP endpoint a client uses: `path` is a template (`{id}`, `{sku}`... and an
/// optional `?query`); the policy's pattern has `*` for each placeholder segment.
#[derive(Clone, Copy)]
pub(super) struct Ep {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) w: u32,
    pub(super) body: ReqBody,
    pub(super) act: Act,
}

pub(super) const fn ep(method: &'static str, path: &'static str, w: u32) -> Ep {
    Ep {
        method,
        path,
        w,
        body: ReqBody::None,
        act: Act::Allow,
    }
}

pub(super) const fn ep_body(method: &'static str, path: &'static str, w: u32) -> Ep {
    Ep {
        method,
        path,
        w,
        body: ReqBody::Json,
        act: Act::Allow,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Col {
    Int,
    BigInt,
    Text,
    Money,
    Time,
    Bool,
}

/// What a statement returns.
#[derive(Clone, Copy)]
pub(super) enum Res {
    /// Columns and the most rows.
    Rows(&'static [(&'static str, Col)], u8),
    /// A command tag's verb (`INSERT`, `UPDATE`, `DELETE`) with a row count.
    Affected(&'static str),
    /// A bare tag (`SET`).
    Tag(&'static str),
}

/// One SQL statement template, with what the policy needs to know about it.
#[derive(Clone, Copy)]
pub(super) struct Q {
    pub(super) sql: &'static str,
    pub(super) verb: &'static str,
    pub(super) tables: &'static [&'static str],
    pub(super) res: Res,
    /// Rule this statement falls under (`read`, `write`...).
    pub(super) rule: &'static str,
}

/// A unit of work: one statement, or several inside BEGIN/COMMIT.
#[derive(Clone, Copy)]
pub(super) struct Unit {
    pub(super) w: u32,
    pub(super) tx: bool,
    pub(super) stmts: &'static [Q],
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RClass {
    Read,
    Write,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    Ok,
    MaybeBulk,
    Int,
    Array,
    Hash,
}

/// A Redis command template (`args` space-separated, placeholders allowed).
#[derive(Clone, Copy)]
pub(super) struct R {
    pub(super) cmd: &'static str,
    pub(super) args: &'static str,
    pub(super) class: RClass,
    pub(super) reply: Reply,
    pub(super) w: u32,
}

#[derive(Clone, Copy)]
pub(super) enum Uses {
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
pub(super) struct Edge {
    pub(super) client: &'static str,
    pub(super) server: &'static str,
    pub(super) port: u16,
    pub(super) proto: Proto,
    /// Relative share of flows.
    pub(super) w: u32,
    pub(super) uses: Uses,
}

// -- The edges ---------------------------------------------------------------------------

pub(super) const fn http(
    client: &'static str,
    server: &'static str,
    w: u32,
    eps: &'static [Ep],
) -> Edge {
    Edge {
        client,
        server,
        port: 8080,
        proto: Proto::Http,
        w,
        uses: Uses::Http { hosts: true, eps },
    }
}

pub(super) const fn grpc(
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

pub(super) const fn sql(
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

pub(super) const fn redis(
    client: &'static str,
    server: &'static str,
    w: u32,
    cmds: &'static [R],
) -> Edge {
    Edge {
        client,
        server,
        port: 6379,
        proto: Proto::Redis,
        w,
        uses: Uses::Redis(cmds),
    }
}

pub(super) const fn dns(
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

pub(super) const fn scrape(server: &'static str, port: u16) -> Edge {
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

pub(super) const fn probe_http(server: &'static str) -> Edge {
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

pub(super) const fn probe_grpc(server: &'static str) -> Edge {
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

pub(super) const fn probe_tcp(server: &'static str, port: u16) -> Edge {
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
pub(super) const EDGES: [Edge; 82] = [
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
