use super::*;
use crate::facts::SqlVerb;

fn run(d: SqlDialect, text: &str) -> Vec<String> {
    let mut c = Classifier::new();
    c.classify(d, text.as_bytes(), |st| {
        st.iter()
            .map(|s| {
                let v = match s.verb {
                    SqlVerb::Other(o) => o.to_string(),
                    v => format!("{v:?}").to_uppercase(),
                };
                format!("{v} {}", s.tables.join(","))
            })
            .map(|s| s.trim_end().to_string())
            .collect()
    })
}

fn pg(text: &str) -> Vec<String> {
    run(SqlDialect::Postgres, text)
}

fn my(text: &str) -> Vec<String> {
    run(SqlDialect::Mysql, text)
}

#[test]
fn verbs_and_simple_tables() {
    assert_eq!(pg("SELECT 1"), ["SELECT"]);
    assert_eq!(pg("select * from Orders"), ["SELECT orders"]);
    assert_eq!(pg("SeLeCt/**/x/**/FrOm/**/orders"), ["SELECT orders"]);
    assert_eq!(pg("SELECT*FROM\"Orders\"WHERE 1=1"), ["SELECT Orders"]);
    assert_eq!(my("SELECT * FROM `Order``s`"), ["SELECT Order`s"]);
    assert_eq!(pg("SELECT * FROM [my tbl]"), ["SELECT my tbl"]);
    assert_eq!(pg("SELECT * FROM \"a\"\"b\""), ["SELECT a\"b"]);
    assert_eq!(
        pg("begin; commit; rollback; end"),
        ["BEGIN", "COMMIT", "ROLLBACK", "COMMIT"]
    );
    assert_eq!(my("SET NAMES utf8mb4"), ["SET"]);
    assert_eq!(my("SHOW DATABASES"), ["SHOW"]);
    assert_eq!(my("CALL refresh(1)"), ["CALL"]);
    assert_eq!(pg("VACUUM orders"), ["VACUUM"]);
    assert_eq!(pg("   "), Vec::<String>::new());
    assert_eq!(pg("-- only a comment"), Vec::<String>::new());
}

#[test]
fn several_statements() {
    assert_eq!(pg("SELECT 1; DROP TABLE t"), ["SELECT", "DROP t"]);
    assert_eq!(pg("SELECT 1;;;DROP TABLE t;"), ["SELECT", "DROP t"]);
    assert_eq!(my("select 1;drop table t"), ["SELECT", "DROP t"]);
    // A `;` inside strings, identifiers, comments and dollar quotes does not split.
    assert_eq!(
        pg("SELECT ';DROP TABLE a', \";x\" FROM t -- ; DROP TABLE b\n"),
        ["SELECT t"]
    );
    assert_eq!(pg("SELECT $$;DROP TABLE a$$ FROM t"), ["SELECT t"]);
    assert_eq!(pg("SELECT $q$ $$; DROP TABLE a $q$ FROM t"), ["SELECT t"]);
    assert_eq!(pg("SELECT 'it''s;' FROM t"), ["SELECT t"]);
    assert_eq!(my("SELECT 'it\\'s;' FROM t"), ["SELECT t"]);
    assert_eq!(pg("SELECT E'\\';' FROM t"), ["SELECT t"]);
}

#[test]
fn schema_qualified_names() {
    assert_eq!(pg("SELECT * FROM public.orders"), ["SELECT public.orders"]);
    assert_eq!(
        pg("SELECT * FROM Public . \"Orders\""),
        ["SELECT public.Orders"]
    );
    assert_eq!(my("SELECT * FROM shop.`orders`"), ["SELECT shop.orders"]);
    assert_eq!(
        pg("SELECT * FROM db.public.orders"),
        ["SELECT db.public.orders"]
    );
}

#[test]
fn joins_subqueries_and_lists() {
    assert_eq!(
        pg(
            "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id LEFT OUTER JOIN c USING (id)"
        ),
        ["SELECT orders,order_items,c"]
    );
    assert_eq!(
        pg("SELECT * FROM a, b AS x, c y WHERE a.id = b.id"),
        ["SELECT a,b,c"]
    );
    assert_eq!(
        pg("SELECT * FROM a WHERE id IN (SELECT id FROM b WHERE x = (SELECT max(x) FROM c))"),
        ["SELECT a,b,c"]
    );
    assert_eq!(
        pg(
            "SELECT * FROM (SELECT * FROM a) q, (b JOIN c ON true) JOIN LATERAL (SELECT 1 FROM d) l ON true"
        ),
        ["SELECT a,b,c,d"]
    );
    assert_eq!(pg("SELECT (SELECT 1 FROM a), b FROM c"), ["SELECT a,c"]);
    assert_eq!(
        pg("SELECT * FROM a NATURAL JOIN b CROSS JOIN c"),
        ["SELECT a,b,c"]
    );
    assert_eq!(pg("SELECT 1 FROM a UNION SELECT 2 FROM b"), ["SELECT a,b"]);
    assert_eq!(
        pg("(SELECT 1 FROM a) UNION (SELECT 2 FROM b)"),
        ["SELECT a,b"]
    );
    assert_eq!(pg("SELECT 1 UNION TABLE secret"), ["SELECT secret"]);
    assert_eq!(pg("TABLE secret"), ["SELECT secret"]);
    assert_eq!(pg("SELECT * FROM a JOIN a ON true"), ["SELECT a"]);
    assert_eq!(my("SELECT * FROM a STRAIGHT_JOIN b"), ["SELECT a,b"]);
    assert_eq!(my("SELECT * FROM a FORCE INDEX (i), b"), ["SELECT a,b"]);
}

#[test]
fn functions_are_not_tables() {
    assert_eq!(pg("SELECT * FROM generate_series(1, 3) g"), ["SELECT"]);
    assert_eq!(
        pg("SELECT EXTRACT(YEAR FROM d), SUBSTRING(s FROM 1 FOR 2), TRIM(BOTH 'x' FROM s) FROM t"),
        ["SELECT t"]
    );
    // A query inside a function call still names its tables.
    assert_eq!(pg("SELECT ARRAY(SELECT x FROM secret)"), ["SELECT secret"]);
    assert_eq!(
        pg("SELECT * FROM unnest(ARRAY(SELECT x FROM secret)) u"),
        ["SELECT secret"]
    );
}

#[test]
fn ctes() {
    assert_eq!(
        pg("WITH x AS (SELECT id FROM a) SELECT * FROM x JOIN b ON b.id = x.id"),
        ["SELECT a,b"]
    );
    assert_eq!(
        pg(
            "WITH x AS (SELECT 1 FROM a), y (c) AS MATERIALIZED (SELECT * FROM x) SELECT * FROM y, c"
        ),
        ["SELECT a,c"]
    );
    // A non-recursive CTE's own name inside its body is the real table.
    assert_eq!(
        pg("WITH orders AS (SELECT * FROM orders) SELECT * FROM orders"),
        ["SELECT orders"]
    );
    assert_eq!(
        pg("WITH orders AS (SELECT 1) SELECT * FROM orders, public.orders"),
        ["SELECT public.orders"]
    );
    assert_eq!(
        pg("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM t) SELECT * FROM t"),
        ["SELECT"]
    );
    // A CTE declared in a subquery does not hide a table of the same name outside it.
    assert_eq!(
        pg("SELECT * FROM (WITH s AS (SELECT 1) SELECT * FROM s) q JOIN s ON true"),
        ["SELECT s"]
    );
    // Data-modifying CTEs are statements of their own, so their verb is judged.
    assert_eq!(
        pg("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d"),
        ["SELECT", "DELETE orders"]
    );
    assert_eq!(
        pg("WITH u AS (UPDATE a SET x = 1 RETURNING id) INSERT INTO log SELECT id FROM u"),
        ["INSERT log", "UPDATE a"]
    );
    assert_eq!(
        my("WITH x AS (SELECT 1 FROM a) SELECT * FROM x"),
        ["SELECT a"]
    );
}

#[test]
fn dml() {
    assert_eq!(
        pg("INSERT INTO order_items (order_id, sku) SELECT id, 'x' FROM orders"),
        ["INSERT order_items,orders"]
    );
    assert_eq!(
        my("INSERT LOW_PRIORITY IGNORE INTO t VALUES (1)"),
        ["INSERT t"]
    );
    assert_eq!(my("INSERT t VALUES (1)"), ["INSERT t"]);
    assert_eq!(my("REPLACE INTO t VALUES (1)"), ["REPLACE t"]);
    assert_eq!(
        my("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT 2 FROM s)"),
        ["INSERT t,s"]
    );
    assert_eq!(
        pg("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2"),
        ["INSERT t"]
    );
    assert_eq!(
        pg("UPDATE orders SET qty = qty + 1 FROM customers WHERE customers.id = orders.id"),
        ["UPDATE orders,customers"]
    );
    assert_eq!(pg("UPDATE ONLY orders SET a = 1"), ["UPDATE orders"]);
    assert_eq!(
        my("UPDATE a JOIN b ON a.id = b.id SET a.x = b.x"),
        ["UPDATE a,b"]
    );
    assert_eq!(my("UPDATE a, b SET a.x = 1, b.y = 2"), ["UPDATE a,b"]);
    assert_eq!(
        pg("DELETE FROM t USING u WHERE t.id = u.id"),
        ["DELETE t,u"]
    );
    assert_eq!(
        my("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id"),
        ["DELETE t1,t2"]
    );
    assert_eq!(
        pg("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = 1"),
        ["MERGE t,s"]
    );
    assert_eq!(pg("SELECT * FROM a FOR UPDATE"), ["SELECT a"]);
    assert_eq!(pg("SELECT * INTO TEMP newt FROM a"), ["SELECT newt,a"]);
    assert_eq!(my("SELECT a INTO @x FROM t"), ["SELECT t"]);
    assert_eq!(my("SELECT a INTO OUTFILE '/tmp/x' FROM t"), ["SELECT t"]);
    assert_eq!(pg("SELECT * FROM temp"), ["SELECT temp"]);
    assert_eq!(pg("INSERT INTO temp VALUES (1)"), ["INSERT temp"]);
}

#[test]
fn ddl_and_copy() {
    assert_eq!(
        pg("CREATE TABLE IF NOT EXISTS orders (id int REFERENCES customers (id))"),
        ["CREATE orders,customers"]
    );
    assert_eq!(pg("CREATE TEMP TABLE t AS SELECT * FROM a"), ["CREATE t,a"]);
    assert_eq!(my("CREATE TABLE x LIKE y"), ["CREATE x,y"]);
    assert_eq!(
        my("CREATE TABLE x AS SELECT * FROM a WHERE b LIKE c"),
        ["CREATE x,a"]
    );
    assert_eq!(pg("CREATE INDEX i ON orders (id)"), ["CREATE orders"]);
    assert_eq!(
        pg("CREATE OR REPLACE VIEW v AS SELECT * FROM a JOIN b ON a.id = b.id"),
        ["CREATE v,a,b"]
    );
    assert_eq!(
        pg("DROP TABLE IF EXISTS a, public.b CASCADE"),
        ["DROP a,public.b"]
    );
    assert_eq!(pg("DROP VIEW v"), ["DROP v"]);
    assert_eq!(pg("ALTER TABLE a RENAME TO b"), ["ALTER a,b"]);
    assert_eq!(
        pg("ALTER TABLE ONLY a ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES b (id)"),
        ["ALTER a,b"]
    );
    assert_eq!(pg("TRUNCATE TABLE a, b"), ["TRUNCATE a,b"]);
    assert_eq!(pg("TRUNCATE a"), ["TRUNCATE a"]);
    assert_eq!(my("RENAME TABLE a TO b, c TO d"), ["RENAME a,b,c,d"]);
    assert_eq!(pg("COPY orders (id, item) FROM STDIN"), ["COPY orders"]);
    assert_eq!(pg("COPY orders TO STDOUT"), ["COPY orders"]);
    assert_eq!(pg("COPY (SELECT * FROM a) TO STDOUT"), ["COPY a"]);
    assert_eq!(pg("GRANT SELECT ON TABLE orders TO bob"), ["GRANT orders"]);
    assert_eq!(my("LOCK TABLES a READ, b WRITE"), ["LOCK a,b"]);
    assert_eq!(my("LOAD DATA INFILE 'f' INTO TABLE t"), ["LOAD t"]);
    assert_eq!(my("OPTIMIZE TABLE a, b"), ["OPTIMIZE a,b"]);
    assert_eq!(my("USE shop"), ["USE"]);
}

#[test]
fn explain_and_prepare_carry_their_statement() {
    assert_eq!(pg("EXPLAIN SELECT * FROM a"), ["EXPLAIN", "SELECT a"]);
    assert_eq!(pg("EXPLAIN ANALYZE DELETE FROM a"), ["EXPLAIN", "DELETE a"]);
    assert_eq!(
        pg("EXPLAIN (ANALYZE, VERBOSE) SELECT * FROM a"),
        ["EXPLAIN", "SELECT a"]
    );
    assert_eq!(my("DESCRIBE orders"), ["EXPLAIN orders"]);
    assert_eq!(
        pg("PREPARE p (int) AS SELECT * FROM a WHERE id = $1"),
        ["PREPARE", "SELECT a"]
    );
}

#[test]
fn mysql_comments() {
    assert_eq!(my("SELECT 1 # x\nFROM t"), ["SELECT t"]);
    assert_eq!(
        my("SELECT /*!40001 SQL_NO_CACHE */ id FROM t"),
        ["SELECT t"]
    );
    // Executable comments are code in MySQL: a table named inside one is reported.
    assert_eq!(my("SELECT 1 /*! FROM secret */"), ["SELECT secret"]);
    assert_eq!(
        my("SELECT 1 /*!50000 ; DROP TABLE t */"),
        ["SELECT", "DROP t"]
    );
    // ... but not in PostgreSQL, where they are plain comments.
    assert_eq!(pg("SELECT 1 /*! FROM secret */"), ["SELECT"]);
    // `--` needs a space in MySQL: `1--1` is arithmetic and the rest is code.
    assert_eq!(my("SELECT 1--1 FROM secret"), ["SELECT secret"]);
    assert_eq!(pg("SELECT 1--1 FROM secret"), ["SELECT"]);
    // Block comments nest in PostgreSQL only.
    assert_eq!(pg("SELECT 1 /* /* */ FROM secret */"), ["SELECT"]);
    assert_eq!(my("SELECT 1 /* /* */ FROM secret"), ["SELECT secret"]);
    assert_eq!(pg("SELECT 1 # FROM secret"), ["SELECT secret"]);
}

#[test]
fn bypass_attempts() {
    assert_eq!(pg("SELECT 1;DROP/**/TABLE/**/t"), ["SELECT", "DROP t"]);
    assert_eq!(pg("sElEcT * fRoM\n\t\"Secret\""), ["SELECT Secret"]);
    assert_eq!(my("SELECT * FROM `secret`-- x"), ["SELECT secret"]);
    assert_eq!(
        pg("SELECT * FROM a WHERE x = '' ; DROP TABLE b"),
        ["SELECT a", "DROP b"]
    );
    assert_eq!(pg("SELECT $a$ $b$ $a$; DROP TABLE c"), ["SELECT", "DROP c"]);
    assert_eq!(pg("SELECT a$b FROM c"), ["SELECT c"]);
    assert_eq!(
        pg("select * from x where y = $1; delete from z"),
        ["SELECT x", "DELETE z"]
    );
    assert_eq!(my("SELECT * FROM 1abc"), ["SELECT 1abc"]);
    // A statement in parentheses at the top level.
    assert_eq!(
        pg("(SELECT 1) UNION SELECT * FROM secret"),
        ["SELECT secret"]
    );
}

#[test]
fn limits_are_flagged() {
    let mut c = Classifier::new();
    let many = "SELECT 1;".repeat(MAX_STATEMENTS + 5);
    let n = c.classify(SqlDialect::Postgres, many.as_bytes(), |s| s.len());
    assert_eq!(n, MAX_STATEMENTS);
    assert!(c.overflow().statements);

    let mut t = String::from("SELECT * FROM t0");
    for i in 1..MAX_TABLES_PER_STATEMENT + 5 {
        t += &format!(", t{i}");
    }
    let n = c.classify(SqlDialect::Postgres, t.as_bytes(), |s| s[0].tables.len());
    assert_eq!(n, MAX_TABLES_PER_STATEMENT);
    assert!(c.overflow().tables);
    assert!(!c.overflow().statements);

    let long = format!("SELECT * FROM {}", "x".repeat(MAX_NAME + 10));
    let n = c.classify(SqlDialect::Postgres, long.as_bytes(), |s| {
        s[0].tables[0].len()
    });
    assert_eq!(n, MAX_NAME);
    assert!(c.overflow().name);

    let deep = format!("SELECT {}1{}", "(".repeat(100), ")".repeat(100));
    c.classify(SqlDialect::Postgres, deep.as_bytes(), |_| ());
    assert!(c.overflow().depth);

    let n = c.classify(SqlDialect::Mysql, b"USE `Shop`", |s| s.len());
    assert_eq!(n, 1);
    assert_eq!(c.use_database(), Some("Shop"));
}

#[test]
fn scratch_is_reused_without_allocation() {
    let mut c = Classifier::new();
    let text = b"SELECT * FROM a JOIN b ON true; INSERT INTO c SELECT * FROM d";
    c.classify(SqlDialect::Postgres, text, |_| ());
    let caps = (
        c.scan.names.capacity(),
        c.scan.refs.capacity(),
        c.scan.out.capacity(),
        c.scan.tables.capacity(),
    );
    assert!(caps.1 >= 4 && caps.2 >= 2, "{caps:?}");
    for _ in 0..100 {
        c.classify(SqlDialect::Postgres, text, |s| assert_eq!(s.len(), 2));
    }
    assert_eq!(
        caps,
        (
            c.scan.names.capacity(),
            c.scan.refs.capacity(),
            c.scan.out.capacity(),
            c.scan.tables.capacity()
        )
    );
}

#[test]
fn garbage_never_panics() {
    let mut c = Classifier::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet =
        b"SELECT FROM JOIN WITH AS ( ) , ; ' \" ` $ $$ /* */ -- # \n [ ] . * ? E'\\ INTO USING x1";
    for _ in 0..3000 {
        let mut s = Vec::new();
        let n = (seed % 200) as usize;
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push(if seed.is_multiple_of(5) {
                (seed >> 8) as u8
            } else {
                alphabet[(seed >> 16) as usize % alphabet.len()]
            });
        }
        for d in [SqlDialect::Postgres, SqlDialect::Mysql] {
            c.classify(d, &s, |st| {
                for x in st {
                    for t in x.tables {
                        assert!(t.len() <= MAX_NAME * 4 + 8);
                    }
                }
            });
        }
    }
}

fn texts(d: SqlDialect, text: &str) -> Vec<(String, String)> {
    let mut c = Classifier::new();
    c.classify(d, text.as_bytes(), |st| {
        st.iter()
            .map(|s| {
                let v = match s.verb {
                    SqlVerb::Other(o) => o.to_string(),
                    v => format!("{v:?}").to_uppercase(),
                };
                (v, String::from_utf8_lossy(s.text).into_owned())
            })
            .collect()
    })
}

#[test]
fn each_statement_carries_its_own_text() {
    let p = SqlDialect::Postgres;
    assert_eq!(
        texts(p, "SELECT 1;  DROP TABLE orders ;\n"),
        [
            ("SELECT".into(), "SELECT 1".into()),
            ("DROP".into(), "DROP TABLE orders".into())
        ]
    );
    // A `;` inside a string, a quoted name or a comment does not split.
    assert_eq!(
        texts(p, "SELECT ';' FROM \"a;b\" /* ; */; DELETE FROM t -- ;"),
        [
            ("SELECT".into(), "SELECT ';' FROM \"a;b\" /* ; */".into()),
            ("DELETE".into(), "DELETE FROM t -- ;".into())
        ]
    );
    // A data-modifying CTE is a statement of its own with the enclosing text.
    let cte = "WITH d AS (DELETE FROM audit RETURNING id) SELECT * FROM d";
    let got = texts(p, cte);
    assert!(got.len() >= 2, "{got:?}");
    assert!(got.iter().all(|(_, t)| t == cte), "{got:?}");
    assert!(got.iter().any(|(v, _)| v == "DELETE"), "{got:?}");
    // Empty statements are skipped; the last one needs no `;`.
    assert_eq!(
        texts(SqlDialect::Mysql, ";;SELECT 2;;  INSERT INTO t VALUES (1)"),
        [
            ("SELECT".into(), "SELECT 2".into()),
            ("INSERT".into(), "INSERT INTO t VALUES (1)".into())
        ]
    );
}
