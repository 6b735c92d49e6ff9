//! The SQL classifier on an OLTP application's statement mix.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use proto_parsers::facts::SqlDialect;
use proto_parsers::sql::Classifier;

/// A day of an OLTP application's statements, weighted as its traffic is (SELECTs first).
pub const SQL_MIX: [(SqlDialect, &str); 16] = [
    (
        SqlDialect::Postgres,
        "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.created_at > $1 ORDER BY o.id DESC LIMIT 50",
    ),
    (
        SqlDialect::Postgres,
        "SELECT id, email, created_at FROM users WHERE id = $1",
    ),
    (
        SqlDialect::Postgres,
        "/* app=shop,route=/checkout */ SELECT id, total FROM carts WHERE session_id = $1 \
         FOR UPDATE",
    ),
    (
        SqlDialect::Postgres,
        "SELECT u.id, u.email, p.plan FROM public.users u LEFT JOIN billing.plans p \
         ON p.user_id = u.id WHERE u.email = 'ann@example.com' -- login lookup",
    ),
    (
        SqlDialect::Postgres,
        "WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders WHERE created_at \
         > now() - interval '30 days' GROUP BY customer_id) SELECT c.email, r.spent FROM \
         recent r JOIN customers c ON c.id = r.customer_id WHERE r.spent > 1000",
    ),
    (
        SqlDialect::Postgres,
        "SELECT * FROM orders WHERE id IN (SELECT order_id FROM order_items WHERE sku = \
         'sku-42') AND status <> 'cancelled'",
    ),
    (
        SqlDialect::Postgres,
        "SELECT count(*) FROM events WHERE tenant_id = 42 AND kind IN ('click', 'view')",
    ),
    (
        SqlDialect::Postgres,
        "INSERT INTO order_items (order_id, sku, qty, price) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    ),
    (
        SqlDialect::Postgres,
        "INSERT INTO audit_log (user_id, action, payload) SELECT id, 'login', '{}' FROM users \
         WHERE id = 9",
    ),
    (
        SqlDialect::Postgres,
        "UPDATE inventory SET qty = qty - $1, updated_at = now() WHERE sku = $2 AND qty >= $1",
    ),
    (
        SqlDialect::Postgres,
        "UPDATE orders o SET status = 'shipped' FROM shipments s WHERE s.order_id = o.id AND \
         s.sent_at IS NOT NULL",
    ),
    (
        SqlDialect::Postgres,
        "DELETE FROM sessions WHERE expires_at < now()",
    ),
    (SqlDialect::Postgres, "BEGIN"),
    (SqlDialect::Postgres, "COMMIT"),
    (
        SqlDialect::Mysql,
        "SELECT `id`, `name`, `price` FROM `shop`.`products` WHERE `category_id` = 7 AND \
         `price` < 20.5 ORDER BY `price` LIMIT 20",
    ),
    (
        SqlDialect::Mysql,
        "UPDATE `carts` SET `updated_at` = NOW() /* touch */ WHERE `id` = 31337",
    ),
];

pub(super) fn bench_sql_classifier(c: &mut Criterion) {
    let mut g = c.benchmark_group("sql");
    let mut cl = Classifier::new();
    for (d, text) in SQL_MIX {
        let n = cl.classify(d, text.as_bytes(), |s| s.len());
        assert!(n == 1 && !cl.overflow().any(), "{text}: {n} statements");
    }
    let bytes: u64 = SQL_MIX.iter().map(|(_, t)| t.len() as u64).sum();
    g.throughput(Throughput::ElementsAndBytes {
        elements: SQL_MIX.len() as u64,
        bytes,
    });
    g.bench_function("classify_mix", |b| {
        b.iter(|| {
            let mut tables = 0usize;
            for (d, text) in SQL_MIX {
                tables += cl.classify(d, black_box(text.as_bytes()), |s| {
                    s.iter().map(|st| st.tables.len()).sum::<usize>()
                });
            }
            tables
        })
    });
    g.finish();
}
