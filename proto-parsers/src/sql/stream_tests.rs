//! The streaming classifier against the whole-text one it replaced (`reference`), and the
//! same text streamed in every way against itself classified whole; then texts written by
//! an attacker who hides statements behind size.

use super::*;
use crate::facts::SqlVerb;

const P: SqlDialect = SqlDialect::Postgres;
const M: SqlDialect = SqlDialect::Mysql;

/// Every text the classifier's own tests use, and more that stress the lexer's states.
const CORPUS: &[(SqlDialect, &str)] = &[
    (P, "SELECT 1"),
    (P, "select * from Orders"),
    (P, "SeLeCt/**/x/**/FrOm/**/orders"),
    (P, "SELECT*FROM\"Orders\"WHERE 1=1"),
    (M, "SELECT * FROM `Order``s`"),
    (P, "SELECT * FROM [my tbl]"),
    (P, "SELECT * FROM \"a\"\"b\""),
    (P, "begin; commit; rollback; end"),
    (M, "SET NAMES utf8mb4"),
    (M, "SHOW DATABASES"),
    (M, "CALL refresh(1)"),
    (P, "VACUUM orders"),
    (P, "   "),
    (P, "-- only a comment"),
    (P, "SELECT 1; DROP TABLE t"),
    (P, "SELECT 1;;;DROP TABLE t;"),
    (M, "select 1;drop table t"),
    (
        P,
        "SELECT ';DROP TABLE a', \";x\" FROM t -- ; DROP TABLE b\n",
    ),
    (P, "SELECT $$;DROP TABLE a$$ FROM t"),
    (P, "SELECT $q$ $$; DROP TABLE a $q$ FROM t"),
    (P, "SELECT 'it''s;' FROM t"),
    (M, "SELECT 'it\\'s;' FROM t"),
    (P, "SELECT E'\\';' FROM t"),
    (P, "SELECT * FROM public.orders"),
    (P, "SELECT * FROM Public . \"Orders\""),
    (M, "SELECT * FROM shop.`orders`"),
    (P, "SELECT * FROM db.public.orders"),
    (
        P,
        "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id LEFT OUTER JOIN c USING (id)",
    ),
    (P, "SELECT * FROM a, b AS x, c y WHERE a.id = b.id"),
    (
        P,
        "SELECT * FROM a WHERE id IN (SELECT id FROM b WHERE x = (SELECT max(x) FROM c))",
    ),
    (
        P,
        "SELECT * FROM (SELECT * FROM a) q, (b JOIN c ON true) JOIN LATERAL (SELECT 1 FROM d) l ON true",
    ),
    (P, "SELECT (SELECT 1 FROM a), b FROM c"),
    (P, "SELECT * FROM a NATURAL JOIN b CROSS JOIN c"),
    (P, "SELECT 1 FROM a UNION SELECT 2 FROM b"),
    (P, "(SELECT 1 FROM a) UNION (SELECT 2 FROM b)"),
    (P, "SELECT 1 UNION TABLE secret"),
    (P, "TABLE secret"),
    (P, "SELECT * FROM a JOIN a ON true"),
    (M, "SELECT * FROM a STRAIGHT_JOIN b"),
    (M, "SELECT * FROM a FORCE INDEX (i), b"),
    (P, "SELECT * FROM generate_series(1, 3) g"),
    (
        P,
        "SELECT EXTRACT(YEAR FROM d), SUBSTRING(s FROM 1 FOR 2), TRIM(BOTH 'x' FROM s) FROM t",
    ),
    (P, "SELECT ARRAY(SELECT x FROM secret)"),
    (P, "SELECT * FROM unnest(ARRAY(SELECT x FROM secret)) u"),
    (
        P,
        "WITH x AS (SELECT id FROM a) SELECT * FROM x JOIN b ON b.id = x.id",
    ),
    (
        P,
        "WITH x AS (SELECT 1 FROM a), y (c) AS MATERIALIZED (SELECT * FROM x) SELECT * FROM y, c",
    ),
    (
        P,
        "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders",
    ),
    (
        P,
        "WITH orders AS (SELECT 1) SELECT * FROM orders, public.orders",
    ),
    (
        P,
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM t) SELECT * FROM t",
    ),
    (
        P,
        "SELECT * FROM (WITH s AS (SELECT 1) SELECT * FROM s) q JOIN s ON true",
    ),
    (
        P,
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
    ),
    (
        P,
        "WITH u AS (UPDATE a SET x = 1 RETURNING id) INSERT INTO log SELECT id FROM u",
    ),
    (M, "WITH x AS (SELECT 1 FROM a) SELECT * FROM x"),
    (
        P,
        "INSERT INTO order_items (order_id, sku) SELECT id, 'x' FROM orders",
    ),
    (M, "INSERT LOW_PRIORITY IGNORE INTO t VALUES (1)"),
    (M, "INSERT t VALUES (1)"),
    (M, "REPLACE INTO t VALUES (1)"),
    (
        M,
        "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT 2 FROM s)",
    ),
    (
        P,
        "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2",
    ),
    (
        P,
        "UPDATE orders SET qty = qty + 1 FROM customers WHERE customers.id = orders.id",
    ),
    (P, "UPDATE ONLY orders SET a = 1"),
    (M, "UPDATE a JOIN b ON a.id = b.id SET a.x = b.x"),
    (M, "UPDATE a, b SET a.x = 1, b.y = 2"),
    (P, "DELETE FROM t USING u WHERE t.id = u.id"),
    (M, "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id"),
    (
        P,
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = 1",
    ),
    (P, "SELECT * FROM a FOR UPDATE"),
    (P, "SELECT * INTO TEMP newt FROM a"),
    (M, "SELECT a INTO @x FROM t"),
    (M, "SELECT a INTO OUTFILE '/tmp/x' FROM t"),
    (P, "SELECT * FROM temp"),
    (P, "INSERT INTO temp VALUES (1)"),
    (
        P,
        "CREATE TABLE IF NOT EXISTS orders (id int REFERENCES customers (id))",
    ),
    (P, "CREATE TEMP TABLE t AS SELECT * FROM a"),
    (M, "CREATE TABLE x LIKE y"),
    (M, "CREATE TABLE x AS SELECT * FROM a WHERE b LIKE c"),
    (P, "CREATE INDEX i ON orders (id)"),
    (
        P,
        "CREATE OR REPLACE VIEW v AS SELECT * FROM a JOIN b ON a.id = b.id",
    ),
    (P, "DROP TABLE IF EXISTS a, public.b CASCADE"),
    (P, "DROP VIEW v"),
    (P, "ALTER TABLE a RENAME TO b"),
    (
        P,
        "ALTER TABLE ONLY a ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES b (id)",
    ),
    (P, "TRUNCATE TABLE a, b"),
    (P, "TRUNCATE a"),
    (M, "RENAME TABLE a TO b, c TO d"),
    (P, "COPY orders (id, item) FROM STDIN"),
    (P, "COPY orders TO STDOUT"),
    (P, "COPY (SELECT * FROM a) TO STDOUT"),
    (P, "GRANT SELECT ON TABLE orders TO bob"),
    (M, "LOCK TABLES a READ, b WRITE"),
    (M, "LOAD DATA INFILE 'f' INTO TABLE t"),
    (M, "OPTIMIZE TABLE a, b"),
    (M, "USE shop"),
    (P, "EXPLAIN SELECT * FROM a"),
    (P, "EXPLAIN ANALYZE DELETE FROM a"),
    (P, "EXPLAIN (ANALYZE, VERBOSE) SELECT * FROM a"),
    (M, "DESCRIBE orders"),
    (P, "PREPARE p (int) AS SELECT * FROM a WHERE id = $1"),
    (M, "SELECT 1 # x\nFROM t"),
    (M, "SELECT /*!40001 SQL_NO_CACHE */ id FROM t"),
    (M, "SELECT 1 /*! FROM secret */"),
    (M, "SELECT 1 /*!50000 ; DROP TABLE t */"),
    (P, "SELECT 1 /*! FROM secret */"),
    (M, "SELECT 1--1 FROM secret"),
    (P, "SELECT 1--1 FROM secret"),
    (P, "SELECT 1 /* /* */ FROM secret */"),
    (M, "SELECT 1 /* /* */ FROM secret"),
    (P, "SELECT 1 # FROM secret"),
    (P, "SELECT 1;DROP/**/TABLE/**/t"),
    (P, "sElEcT * fRoM\n\t\"Secret\""),
    (M, "SELECT * FROM `secret`-- x"),
    (P, "SELECT * FROM a WHERE x = '' ; DROP TABLE b"),
    (P, "SELECT $a$ $b$ $a$; DROP TABLE c"),
    (P, "SELECT a$b FROM c"),
    (P, "select * from x where y = $1; delete from z"),
    (M, "SELECT * FROM 1abc"),
    (P, "(SELECT 1) UNION SELECT * FROM secret"),
    (P, "SELECT 1;  DROP TABLE orders ;\n"),
    (P, "SELECT ';' FROM \"a;b\" /* ; */; DELETE FROM t -- ;"),
    (M, ";;SELECT 2;;  INSERT INTO t VALUES (1)"),
    (P, "SELECT * FROM a . b, c . \"d\" . [e f], x.*, y.[z]"),
    (P, "SELECT * FROM a.b.c.d.e.f"),
    (P, "SELECT * FROM [unterminated"),
    (
        P,
        "SELECT * FROM a WHERE x = $tag$ ; DROP TABLE b $ta$ $tag$; DROP TABLE c",
    ),
    (P, "SELECT $1, $22x, $_a$ b $_a$, $ $x"),
    (P, "SELECT * FROM \"unterminated"),
    (P, "SELECT e'\\\\'; DROP TABLE t; SELECT E'\\'' FROM u"),
    (
        P,
        "/* a /* b */ c */ SELECT 1 /* /* */ */; DROP TABLE t --x\n; TRUNCATE u",
    ),
    (P, "SELECT 1 -"),
    (P, "SELECT 1 /"),
    (P, "SELECT $"),
    (P, "SELECT $abc"),
    (P, "SELECT $E'x'"),
    (
        P,
        "WITH a AS (INSERT INTO t VALUES (1) RETURNING *), b AS (DELETE FROM u) SELECT * FROM a",
    ),
    (P, "DELETE FROM t USING (SELECT 1) s, u"),
    (P, "CREATE TEMP TABLE IF NOT EXISTS temp (a int)"),
    (P, "SELECT * FROM only, lateral, temp"),
    (
        P,
        "SELECT * FROM ONLY \"x\", LATERAL (SELECT 1) y, ONLY [z]",
    ),
    (
        M,
        "SELECT /*!50000 * FROM `a` */ ; /*M!100000 DROP TABLE b */",
    ),
    (M, "SELECT 1 /*! /* x */ FROM c */"),
    (M, "SELECT 1--\tFROM secret\n FROM t"),
    (M, "SELECT 1 ---1 FROM t"),
    (
        M,
        "SELECT \"a\\\"b\" FROM `x``y`; SELECT 'a\\'; DROP TABLE z",
    ),
    (M, "SELECT * FROM $t, a$b, ?"),
    (M, "SELECT 1 /*!"),
    (M, "SELECT 1 /*M"),
    (M, "SELECT 1 /*M!1234567 FROM t */"),
    (M, "SELECT 1 # comment ; DROP TABLE t"),
    (M, "SELECT 1 *"),
    (M, "SELECT 1 /*! 2 * 3 */ FROM t"),
    (M, "INSERT IGNORE INTO t SELECT * FROM u"),
    (M, "USE `db`; SELECT 1"),
    (P, "SELECT * FROM \u{e9}t\u{e9}, \"\u{fc}ber\""),
    (P, "SELECT * FROM t\u{80}x"),
];

fn render(st: &[SqlStatement<'_>]) -> Vec<String> {
    st.iter()
        .map(|s| {
            let v = match s.verb {
                SqlVerb::Other(o) => o.to_string(),
                v => format!("{v:?}").to_uppercase(),
            };
            format!("{v} {:?} {:?}", s.tables, String::from_utf8_lossy(s.text))
        })
        .collect()
}

fn whole(d: SqlDialect, text: &[u8]) -> (Vec<String>, Overflow, Option<String>) {
    let mut c = Classifier::new();
    let st = c.classify(d, text, render);
    (st, c.overflow(), c.use_database().map(str::to_string))
}

/// Streams `text` cut at `cuts`; every batch's statements in order, the overflow of the
/// text, the USE target, and the batches' texts.
fn streamed(
    c: &mut Classifier,
    d: SqlDialect,
    text: &[u8],
    cuts: &[usize],
) -> (Vec<String>, Overflow, Option<String>, Vec<Vec<u8>>) {
    let mut st = Vec::new();
    let mut parts = Vec::new();
    let mut collect = |b: &Batch<'_>| {
        st.extend(render(b.statements));
        parts.push(b.text.to_vec());
    };
    c.begin(d);
    let mut last = 0;
    for &cut in cuts.iter().chain([&text.len()]) {
        if cut >= last {
            c.feed(&text[last..cut], &mut collect);
            last = cut;
        }
    }
    c.finish(&mut collect);
    (
        st,
        c.overflow(),
        c.use_database().map(str::to_string),
        parts,
    )
}

/// The reference's answer, when the text stays within its (smaller) limits.
fn reference(d: SqlDialect, text: &[u8]) -> Option<(Vec<String>, Overflow, Option<String>)> {
    let mut r = reference::Classifier::new();
    let st = r.classify(d, text, render);
    let o = r.overflow();
    if o.statements || o.tables {
        return None;
    }
    let o = Overflow {
        statements: o.statements,
        tables: o.tables,
        name: o.name,
        depth: o.depth,
    };
    Some((st, o, r.use_database().map(str::to_string)))
}

#[test]
fn the_corpus_classifies_as_the_whole_text_classifier_did() {
    for &(d, text) in CORPUS {
        let got = whole(d, text.as_bytes());
        let want = reference(d, text.as_bytes()).expect(text);
        assert_eq!(got, want, "{d:?} {text}");
    }
}

#[test]
fn the_corpus_streamed_at_every_split_point_classifies_as_whole() {
    let mut c = Classifier::new();
    for &(d, text) in CORPUS {
        let t = text.as_bytes();
        let (want, wo, wu) = whole(d, t);
        let all = streamed(&mut c, d, t, &[]);
        assert_eq!((&all.0, all.1, &all.2), (&want, wo, &wu), "{text}");
        assert_eq!(all.3, [t.to_vec()], "{text}");
        for at in 0..=t.len() {
            let got = streamed(&mut c, d, t, &[at]);
            assert_eq!(
                (&got.0, got.1, &got.2),
                (&want, wo, &wu),
                "{text} split at {at}"
            );
        }
        let bytes: Vec<usize> = (1..t.len()).collect();
        let got = streamed(&mut c, d, t, &bytes);
        assert_eq!(
            (&got.0, got.1, &got.2),
            (&want, wo, &wu),
            "{text} byte by byte"
        );
        assert_eq!(got.3, [t.to_vec()]);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "SELECT",
    "FROM",
    "JOIN",
    "WITH",
    "RECURSIVE",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "`",
    "$",
    "$$",
    "$q$",
    "$1",
    "/*",
    "*/",
    "/*!",
    "/*M!",
    "--",
    "-- ",
    "#",
    "\n",
    " ",
    "[",
    "]",
    ".",
    "*",
    "?",
    "E'",
    "\\",
    "INTO",
    "USING",
    "x1",
    "t",
    "T",
    "DELETE",
    "INSERT",
    "UPDATE",
    "SET",
    "VALUES",
    "TABLE",
    "TEMP",
    "ONLY",
    "LATERAL",
    "IF",
    "NOT",
    "EXISTS",
    "USE",
    "ON",
    "CREATE",
    "DROP",
    "EXPLAIN",
    "PREPARE",
    "COPY",
    "TO",
    "LIKE",
    "REFERENCES",
    "UNION",
    "WHERE",
    "MATERIALIZED",
    "IGNORE",
    "OUTFILE",
    "ANALYZE",
    "LOW_PRIORITY",
    "RENAME",
    "ALTER",
    "GRANT",
    "MERGE",
    "\u{e9}",
    "\u{80}",
    "-",
    "/",
    "!",
    "M",
    "0",
    "12",
    "e",
    "$a",
    "a$",
];

fn random_text(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    let n = rng.below(60);
    for _ in 0..n {
        if rng.below(12) == 0 {
            s.push(rng.next() as u8);
        } else {
            s.extend_from_slice(PIECES[rng.below(PIECES.len())].as_bytes());
            if rng.below(3) == 0 {
                s.push(b' ');
            }
        }
    }
    s
}

#[test]
fn random_texts_classify_as_the_whole_text_classifier_did_and_stream_alike() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut c = Classifier::new();
    let mut compared = 0;
    for _ in 0..20_000 {
        let t = random_text(&mut rng);
        for d in [P, M] {
            let want = whole(d, &t);
            if let Some(r) = reference(d, &t) {
                assert_eq!(want, r, "{d:?} {:?}", String::from_utf8_lossy(&t));
                compared += 1;
            }
            let cuts = [rng.below(t.len() + 1), rng.below(t.len() + 1)];
            let mut cuts = cuts.to_vec();
            cuts.sort_unstable();
            let got = streamed(&mut c, d, &t, &cuts);
            assert_eq!(
                (&got.0, got.1, &got.2),
                (&want.0, want.1, &want.2),
                "{d:?} {:?} cut at {cuts:?}",
                String::from_utf8_lossy(&t)
            );
        }
    }
    assert!(compared > 30_000, "{compared}");
}

// ---- an attacker hiding statements behind size ------------------------------------------

/// Streams `text` in `chunk`-byte pieces; every statement as `VERB tables`, and the
/// number of batches.
fn stream_in(d: SqlDialect, text: &[u8], chunk: usize) -> (Vec<String>, usize, Overflow) {
    let mut c = Classifier::new();
    let mut st = Vec::new();
    let mut batches = 0;
    let mut collect = |b: &Batch<'_>| {
        batches += 1;
        for s in b.statements {
            let v = match s.verb {
                SqlVerb::Other(o) => o.to_string(),
                v => format!("{v:?}").to_uppercase(),
            };
            st.push(format!("{v} {}", s.tables.join(",")).trim_end().to_string());
        }
    };
    c.begin(d);
    for piece in text.chunks(chunk.max(1)) {
        c.feed(piece, &mut collect);
    }
    c.finish(&mut collect);
    // Whatever the text, the scratch stays bounded, and small once the text is reported.
    assert!(c.scratch_capacity() < 48 * 1024, "{}", c.scratch_capacity());
    (st, batches, c.overflow())
}

#[test]
fn a_40kb_comment_does_not_hide_the_statement_after_it() {
    for (d, open, close) in [
        (P, "/*", "*/"),
        (M, "/*", "*/"),
        (P, "/* /* nested */", "*/"),
        (P, "--", "\n"),
        (M, "-- ", "\n"),
        (M, "#", "\n"),
    ] {
        let mut t = open.as_bytes().to_vec();
        t.resize(40 * 1024, b'x');
        t.extend_from_slice(close.as_bytes());
        t.extend_from_slice(b" DROP TABLE t");
        for chunk in [1460, 40 * 1024 + 7, 1 << 20] {
            let (st, batches, o) = stream_in(d, &t, chunk);
            assert_eq!(st, ["DROP t"], "{d:?} {open}");
            assert_eq!((batches, o.any()), (1, false));
        }
    }
    // Executable comments are code: a statement inside one after 40 KB of padding counts.
    let mut t = b"SELECT 1 /*!50000 ".to_vec();
    t.resize(40 * 1024, b' ');
    t.extend_from_slice(b"; DROP TABLE t */");
    assert_eq!(stream_in(M, &t, 1000).0, ["SELECT", "DROP t"]);
}

#[test]
fn a_40mb_comment_streams_through_bounded_scratch() {
    let mut t = b"/*".to_vec();
    t.resize(40 << 20, b'*');
    t.extend_from_slice(b"/ DROP TABLE t");
    let (st, _, o) = stream_in(P, &t, 64 * 1024);
    assert_eq!(st, ["DROP t"]);
    assert!(!o.any());
}

#[test]
fn a_huge_string_holding_a_statement_is_one_string() {
    for (d, q) in [(P, "'"), (M, "'"), (M, "\""), (P, "$x$")] {
        let mut t = format!("SELECT {q}").into_bytes();
        t.resize(1 << 20, b'a');
        t.extend_from_slice(format!("; DROP TABLE x{q} FROM t").as_bytes());
        for chunk in [1460, 64 * 1024] {
            assert_eq!(stream_in(d, &t, chunk).0, ["SELECT t"], "{d:?} {q}");
        }
    }
}

#[test]
fn a_thousand_statements_then_a_drop_are_all_reported() {
    let mut t = "SELECT 1;".repeat(1000);
    t += "DROP TABLE t";
    let (st, batches, o) = stream_in(P, t.as_bytes(), 1460);
    assert_eq!(st.len(), 1001);
    assert!(st[..1000].iter().all(|s| s == "SELECT"));
    assert_eq!(st[1000], "DROP t");
    assert!(!o.any());
    // In bounded batches, each reported as soon as it filled.
    assert_eq!(batches, 1000 / BATCH_STATEMENTS + 1);
    // Each batch's text is its own part of the request; the statements' own texts are
    // theirs.
    let text = format!(
        "{}\n  DROP TABLE t ;",
        "SELECT 1; ".repeat(BATCH_STATEMENTS)
    );
    let mut c = Classifier::new();
    let (st, _, _, parts) = streamed(&mut c, P, text.as_bytes(), &[]);
    assert_eq!(parts.len(), 2);
    assert!(parts[0].starts_with(b"SELECT 1; SELECT 1;") && parts[0].ends_with(b"SELECT 1;"));
    assert_eq!(parts[1], b"DROP TABLE t ;");
    assert_eq!(st.last().unwrap(), "DROP [\"t\"] \"DROP TABLE t\"");
}

#[test]
fn moderately_sized_attacks_at_every_split_point() {
    let mut comment = b"/* ".to_vec();
    comment.resize(600, b'x');
    comment.extend_from_slice(b" */DROP TABLE t");
    let mut string = b"SELECT '".to_vec();
    string.resize(600, b'a');
    string.extend_from_slice(b"'';DROP TABLE x' FROM t; DROP TABLE y");
    let many = format!("{}DROP TABLE t", "SELECT 1;".repeat(150));
    let mut c = Classifier::new();
    for (d, t) in [
        (P, comment.as_slice()),
        (M, comment.as_slice()),
        (P, string.as_slice()),
        (M, string.as_slice()),
        (P, many.as_bytes()),
        (
            M,
            b"SELECT 1 /*!50000 /* c */ ; DROP TABLE t */ /*M!100000 ; DROP TABLE u */".as_slice(),
        ),
        (
            P,
            b"SELECT 1 /* a /* b /* c */ */ ; DROP TABLE x */ ; DROP TABLE t".as_slice(),
        ),
    ] {
        let (want, _, _, _) = streamed(&mut c, d, t, &[]);
        assert!(want.iter().any(|s| s.starts_with("DROP")), "{want:?}");
        for at in 0..=t.len() {
            let (got, ..) = streamed(&mut c, d, t, &[at]);
            assert_eq!(got, want, "split at {at}");
        }
        let bytes: Vec<usize> = (1..t.len()).collect();
        assert_eq!(streamed(&mut c, d, t, &bytes).0, want);
    }
}

#[test]
fn what_a_limit_cuts_is_flagged() {
    let mut t = String::from("SELECT * FROM t0");
    for i in 1..MAX_TABLES_PER_STATEMENT + 5 {
        t += &format!(", t{i}");
    }
    let (st, _, o) = stream_in(P, t.as_bytes(), 100);
    assert_eq!(st[0].split(',').count(), MAX_TABLES_PER_STATEMENT);
    assert!(o.tables);
    // Names beyond the per-part budget.
    let mut t = String::from("SELECT * FROM t0");
    for i in 1..1000 {
        t += &format!(", {}{i}", "n".repeat(200));
    }
    assert!(stream_in(P, t.as_bytes(), 4096).2.tables);
    // A dollar-quote tag too long to match: the rest cannot be read.
    let tag = format!("${}$", "q".repeat(lexer::TOKEN_CAP));
    let t = format!("SELECT {tag} x {tag}; DROP TABLE t");
    let (st, _, o) = stream_in(P, t.as_bytes(), 7);
    assert_eq!(st, ["SELECT"]);
    assert!(o.name);
    // A long word that is no tag is just a word.
    let t = format!("SELECT ${} FROM t", "q".repeat(2 * lexer::TOKEN_CAP));
    let (st, _, o) = stream_in(P, t.as_bytes(), 7);
    assert_eq!(st, ["SELECT t"]);
    assert!(!o.any());
    // Statements in one part.
    let t = format!(
        "WITH {} SELECT 1",
        (0..MAX_SEGMENT_STATEMENTS + 2)
            .map(|i| format!("c{i} AS (DELETE FROM t{i})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (st, _, o) = stream_in(P, t.as_bytes(), 999);
    assert_eq!(st.len(), MAX_SEGMENT_STATEMENTS);
    assert!(o.statements);
}

#[test]
fn steady_state_streaming_allocates_nothing() {
    let text = b"SELECT * FROM a JOIN b ON true; INSERT INTO c SELECT * FROM d; \
                 UPDATE e SET x = 'it''s' WHERE y IN (SELECT z FROM f)";
    let mut c = Classifier::new();
    let run = |c: &mut Classifier| {
        let mut n = 0;
        c.begin(P);
        for piece in text.chunks(17) {
            c.feed(piece, &mut |b| n += b.statements.len());
        }
        c.finish(&mut |b| n += b.statements.len());
        assert_eq!(n, 3);
    };
    for _ in 0..3 {
        run(&mut c);
    }
    let caps = c.scratch_capacity();
    for _ in 0..1000 {
        run(&mut c);
    }
    assert_eq!(caps, c.scratch_capacity());
}

/// The benches' statement mix through the reference and the streaming classifier, best of
/// 200 rounds each (not a test of correctness; run it in release mode with
/// `cargo test -p proto-parsers --release -- --ignored timing --nocapture`).
#[test]
#[ignore]
fn timing_against_the_reference() {
    use std::time::{Duration, Instant};
    const SQL_MIX: [(SqlDialect, &str); 16] = [
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
    let mut r = reference::Classifier::new();
    let mut c = Classifier::new();
    let mut best = [Duration::MAX; 3];
    let mut n = 0;
    for _ in 0..200 {
        let t = Instant::now();
        for _ in 0..200 {
            for (d, s) in SQL_MIX {
                n += r.classify(d, s.as_bytes(), |st| st.len());
            }
        }
        best[0] = best[0].min(t.elapsed());
        let t = Instant::now();
        for _ in 0..200 {
            for (d, s) in SQL_MIX {
                n += c.classify(d, s.as_bytes(), |st| st.len());
            }
        }
        best[1] = best[1].min(t.elapsed());
        let t = Instant::now();
        for _ in 0..200 {
            for (d, s) in SQL_MIX {
                c.begin(d);
                c.feed(s.as_bytes(), &mut |b| n += b.statements.len());
                c.finish(&mut |b| n += b.statements.len());
            }
        }
        best[2] = best[2].min(t.elapsed());
    }
    let per = |x: Duration| x.as_nanos() as f64 / (200.0 * 16.0);
    println!(
        "best: reference {:.0} ns, classify {:.0} ns, stream {:.0} ns per statement ({n})",
        per(best[0]),
        per(best[1]),
        per(best[2])
    );
}
