//! What each client asks for: the HTTP endpoints, SQL units of work and Redis commands the
//! edges of [`super::edges::EDGES`] use, with their weights and the rule each falls under.

use super::edges::{Act, Col, Ep, Q, R, RClass, Reply, ReqBody, Res, Unit, ep, ep_body};

// -- HTTP endpoints ----------------------------------------------------------------------

pub(super) const FRONTEND_EPS: [Ep; 6] = [
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
pub(super) const ORDERS_EPS: [Ep; 7] = [
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
pub(super) const CATALOG_EPS: [Ep; 6] = [
    ep("GET", "/api/v1/products/{id}", 12),
    ep("GET", "/api/v1/products?category={n}&page={n}", 6),
    ep("GET", "/api/v1/categories", 3),
    ep("GET", "/api/v1/categories/{n}/products", 4),
    ep("GET", "/api/v1/products/{id}/related", 3),
    ep("GET", "/api/v1/products/{id}/images", 2),
];
pub(super) const CART_EPS: [Ep; 5] = [
    ep("GET", "/api/v1/carts/{uuid}", 8),
    ep_body("POST", "/api/v1/carts/{uuid}/items", 5),
    ep("DELETE", "/api/v1/carts/{uuid}/items/{sku}", 2),
    ep_body("PUT", "/api/v1/carts/{uuid}", 2),
    ep_body("POST", "/api/v1/carts/{uuid}/checkout", 1),
];
pub(super) const USERS_EPS: [Ep; 6] = [
    ep("GET", "/api/v1/users/{id}", 8),
    ep_body("POST", "/api/v1/sessions", 3),
    ep("DELETE", "/api/v1/sessions/{token}", 1),
    ep("GET", "/api/v1/users/{id}/addresses", 3),
    ep_body("POST", "/api/v1/users/{id}/addresses", 1),
    ep_body("PATCH", "/api/v1/users/{id}", 1),
];
pub(super) const SEARCH_EPS: [Ep; 3] = [
    ep("GET", "/api/v1/search?q={word}&page={n}", 8),
    ep("GET", "/api/v1/suggest?q={word}", 6),
    ep("GET", "/api/v1/facets?q={word}", 2),
];
pub(super) const REVIEWS_EPS: [Ep; 3] = [
    ep("GET", "/api/v1/products/{id}/reviews?page={n}", 8),
    ep_body("POST", "/api/v1/products/{id}/reviews", 1),
    ep("GET", "/api/v1/products/{id}/rating", 4),
];
pub(super) const ORDERS_USERS_EPS: [Ep; 2] = [
    ep("GET", "/api/v1/users/{id}", 3),
    ep("GET", "/api/v1/users/{id}/addresses", 2),
];
pub(super) const NOTIFY_EPS: [Ep; 3] = [
    ep_body("POST", "/api/v1/notifications/email", 4),
    ep_body("POST", "/api/v1/notifications/sms", 1),
    ep_body("POST", "/api/v1/notifications/push", 2),
];
pub(super) const SEARCH_CATALOG_EPS: [Ep; 2] = [
    ep("GET", "/api/v1/products/{id}", 4),
    ep_body("POST", "/api/v1/products/batch", 2),
];
pub(super) const METRICS_EPS: [Ep; 1] = [ep("GET", "/metrics", 1)];
pub(super) const PROBE_EPS: [Ep; 2] = [ep("GET", "/healthz", 1), ep("GET", "/readyz", 1)];

// -- SQL ---------------------------------------------------------------------------------

pub(super) const ORDER_COLS: [(&str, Col); 5] = [
    ("id", Col::BigInt),
    ("customer_id", Col::BigInt),
    ("status", Col::Text),
    ("total_cents", Col::Money),
    ("created_at", Col::Time),
];
pub(super) const ITEM_COLS: [(&str, Col); 3] = [
    ("sku", Col::Text),
    ("quantity", Col::Int),
    ("price_cents", Col::Money),
];
pub(super) const ID_COL: [(&str, Col); 1] = [("id", Col::BigInt)];
pub(super) const COUNT_COLS: [(&str, Col); 2] = [("key", Col::Text), ("count", Col::BigInt)];

pub(super) const fn q(
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

pub(super) const fn one(w: u32, stmts: &'static [Q]) -> Unit {
    Unit {
        w,
        tx: false,
        stmts,
    }
}

pub(super) const fn tx(w: u32, stmts: &'static [Q]) -> Unit {
    Unit { w, tx: true, stmts }
}

pub(super) const ORDERS_DB_UNITS: [Unit; 6] = [
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

pub(super) const REPORTING_ORDERS_UNITS: [Unit; 3] = [
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

pub(super) const CLEANUP_UNITS: [Unit; 1] = [tx(
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

pub(super) const USERS_DB_UNITS: [Unit; 6] = [
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

pub(super) const REPORTING_USERS_UNITS: [Unit; 1] = [one(
    1,
    &[q(
        "SELECT country AS key, count(*) FROM users WHERE created_at > now() - interval '7 days' GROUP BY country",
        "SELECT",
        &["users"],
        Res::Rows(&COUNT_COLS, 12),
        "read",
    )],
)];

pub(super) const PRODUCT_COLS: [(&str, Col); 5] = [
    ("id", Col::BigInt),
    ("sku", Col::Text),
    ("name", Col::Text),
    ("price_cents", Col::Money),
    ("stock", Col::Int),
];

pub(super) const CATALOG_DB_UNITS: [Unit; 5] = [
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

pub(super) const INVENTORY_COLS: [(&str, Col); 3] = [
    ("sku", Col::Text),
    ("available", Col::Int),
    ("reserved", Col::Int),
];

pub(super) const STOCK_DB_UNITS: [Unit; 3] = [
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

pub(super) const REPORTING_CATALOG_UNITS: [Unit; 1] = [one(
    1,
    &[q(
        "SELECT sku, available, reserved FROM inventory WHERE available < 10",
        "SELECT",
        &["inventory"],
        Res::Rows(&INVENTORY_COLS, 40),
        "read",
    )],
)];

pub(super) const REVIEWS_DB_UNITS: [Unit; 4] = [
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
pub(super) const MYSQL_SESSION: Q = q("SET NAMES utf8mb4", "SET", &[], Res::Tag("SET"), "session");

// -- Redis -------------------------------------------------------------------------------

pub(super) const fn r(
    cmd: &'static str,
    args: &'static str,
    class: RClass,
    reply: Reply,
    w: u32,
) -> R {
    R {
        cmd,
        args,
        class,
        reply,
        w,
    }
}

pub(super) const ORDERS_REDIS: [R; 6] = [
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
pub(super) const CATALOG_REDIS: [R; 6] = [
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
pub(super) const USERS_REDIS: [R; 5] = [
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
pub(super) const SEARCH_REDIS: [R; 2] = [
    r("GET", "search:{hex}", RClass::Read, Reply::MaybeBulk, 6),
    r(
        "SETEX",
        "search:{hex} 60 {val}",
        RClass::Write,
        Reply::Ok,
        2,
    ),
];
pub(super) const CART_REDIS: [R; 5] = [
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
pub(super) const NOTIFY_REDIS: [R; 3] = [
    r("LPUSH", "notify:email {val}", RClass::Write, Reply::Int, 4),
    r("RPOP", "notify:sms", RClass::Write, Reply::MaybeBulk, 2),
    r("LLEN", "notify:email", RClass::Read, Reply::Int, 2),
];
