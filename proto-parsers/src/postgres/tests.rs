use super::*;
use crate::contract::GapOutcome;
use crate::sql::testkit::{Collect, check_all_splits, load, replay};

fn make() -> Box<dyn StreamParser> {
    Box::new(PostgresParser::default())
}

fn feed_all(chunks: &[(Direction, &[u8])]) -> (Collect, Option<&'static str>) {
    let recs: Vec<(Direction, Vec<u8>)> = chunks.iter().map(|(d, b)| (*d, b.to_vec())).collect();
    replay(&make, &recs, &|_, _| Vec::new())
}

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    v
}

fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

#[test]
fn psql_session() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/pg-psql.bin")));
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    let f = &c.facts;
    assert_eq!(f.len(), 22);
    assert_eq!(
        f[0],
        "tx 0 [LOGIN user=shop database=shop application_name=palisade-test] Login user=shop db=shop text=\"\""
    );
    assert_eq!(f[1], "rx 0 None [] state=- code=None error=-");
    assert!(f[2].ends_with("Query user=shop db=shop text=\"SELECT id, item FROM public.orders WHERE id = 1;\" SELECT[\"public.orders\"]"), "{}", f[2]);
    // psql's `\;` sends two statements in one Query message.
    assert!(
        f[4].ends_with(" SELECT[] SELECT[\"orders\", \"order_items\"]"),
        "{}",
        f[4]
    );
    // The CTE name is not a table.
    assert!(
        f[6].ends_with(" SELECT[\"orders\", \"customers\"]"),
        "{}",
        f[6]
    );
    assert!(f[8].ends_with(" INSERT[\"order_items\", \"orders\"]"));
    assert!(f[10].ends_with(" UPDATE[\"orders\", \"customers\"]"));
    assert!(f[12].ends_with(" DELETE[\"order_items\", \"orders\"]"));
    assert_eq!(
        f[15],
        "rx 7 None [relation \"no_such_table\" does not exist] state=42P01 code=None error=relation \"no_such_table\" does not exist"
    );
    // The DROP inside the dollar-quoted string is not a statement.
    assert!(f[16].ends_with(" SELECT[\"orders\"]"), "{}", f[16]);
    // COPY FROM STDIN: the rows flow as CopyData and are skipped.
    assert!(f[18].ends_with(" COPY[\"customers\"]"));
    assert_eq!(f[19], "rx 9 None [COPY 2] state=- code=None error=-");
    assert_eq!(f[21], "rx 10 None [COPY 2] state=- code=None error=-");
}

#[test]
fn failed_login() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/pg-badpass.bin")));
    assert!(c.anomalies.is_empty());
    assert_eq!(
        c.facts,
        [
            "tx 0 [LOGIN user=shop database=shop application_name=psql] Login user=shop db=shop text=\"\"",
            "rx 0 None [password authentication failed for user \"shop\"] state=28P01 code=None error=password authentication failed for user \"shop\""
        ]
    );
}

#[test]
fn ssl_accepted_is_opaque() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/pg-tls.bin")));
    assert_eq!(c.facts, ["opaque encrypted"]);
    assert!(c.anomalies.is_empty());
}

#[test]
fn cancel_request_alone() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/pg-psycopg-1.bin")));
    assert!(c.facts.is_empty() && c.anomalies.is_empty());
}

#[test]
fn extended_protocol() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/pg-psycopg.bin")));
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    let f: Vec<&str> = c.facts.iter().map(|s| s.as_str()).collect();
    let sel = "[SELECT item, qty FROM orders WHERE id = $1] ";
    let tail =
        "user=shop db=shop text=\"SELECT item, qty FROM orders WHERE id = $1\" SELECT[\"orders\"]";
    assert_eq!(f[2], format!("tx 1 {sel}Prepare {tail}"));
    assert_eq!(f[3], "rx 1 None [] state=- code=None error=-");
    // Both executions of the named statement carry the text it was prepared with.
    assert_eq!(f[4], format!("tx 2 {sel}Execute {tail}"));
    assert_eq!(f[5], "rx 2 None [SELECT 1] state=- code=None error=-");
    assert_eq!(f[6], format!("tx 3 {sel}Execute {tail}"));
    assert!(f[8].starts_with("tx 4 [UPDATE orders SET qty = $1 WHERE id = $2] Prepare"));
    assert!(f[9].starts_with("tx 5 [UPDATE orders SET qty = $1 WHERE id = $2] Execute"));
    assert_eq!(f[11], "rx 5 None [UPDATE 1] state=- code=None error=-");
    // Parse fails: its error, and the Execute the server then skipped is unanswered.
    assert!(f[12].starts_with("tx 6 [SELECT * FROM missing_table"));
    assert_eq!(
        f[14],
        "rx 6 None [relation \"missing_table\" does not exist] state=42P01 code=None error=relation \"missing_table\" does not exist"
    );
    assert_eq!(f[15], "unanswered 7");
    // The query cancelled from another connection.
    assert!(f[17].contains("state=57014"), "{}", f[17]);
    assert_eq!(f.len(), 22);
}

#[test]
fn ssl_refused_then_startup_and_gss() {
    let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let gss = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    let (c, dead) = feed_all(&[
        (C, &ssl),
        (S, b"N"),
        (C, &startup(&[("user", "u")])),
        (S, &msg(b'R', &[0, 0, 0, 0])),
        (S, &ready()),
    ]);
    assert_eq!(dead, None);
    assert_eq!(
        c.facts[0],
        "tx 0 [LOGIN user=u database=u] Login user=u db=u text=\"\""
    );
    assert_eq!(c.facts.len(), 2);
    let (c, _) = feed_all(&[(C, &gss), (S, b"G"), (C, b"\x60\x82garbage")]);
    assert_eq!(c.facts, ["opaque encrypted"]);
}

#[test]
fn a_long_query_is_classified_as_it_streams() {
    let mut text = b"SELECT 1 /*".to_vec();
    text.resize(MAX_BUFFERED * 4, b'x');
    text.extend_from_slice(b"*/; DROP TABLE big\0");
    let mut q = msg(b'Q', &text);
    q.extend_from_slice(&msg(b'Q', b"SELECT 1\0"));
    let recs: Vec<(Direction, Vec<u8>)> = vec![
        (C, startup(&[("user", "u"), ("database", "d")])),
        (S, ready()),
        (C, q),
        (S, [msg(b'E', b"C42601\0Mbad\0\0"), ready()].concat()),
        (S, [msg(b'C', b"SELECT 1\0"), ready()].concat()),
    ];
    // Fed in 1000-byte pieces: the message never sits in the carry.
    let (c, dead) = replay(&make, &recs, &|_, len| (1000..len).step_by(1000).collect());
    assert_eq!(dead, None);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert_eq!(c.facts.len(), 6);
    assert!(c.facts[2].starts_with("tx 1 [SELECT 1 /*xxx"));
    assert!(
        c.facts[2].ends_with(" SELECT[] DROP[\"big\"]"),
        "{}",
        c.facts[2]
    );
    assert!(c.facts[3].starts_with("tx 2 [SELECT 1] Query user=u db=d"));
    assert!(
        c.facts[4].starts_with("rx 1 None [bad] state=42601"),
        "{}",
        c.facts[4]
    );
    assert_eq!(c.facts[5], "rx 2 None [SELECT 1] state=- code=None error=-");
    assert!(PostgresParser::default().max_carry() <= MAX_BUFFERED + 5);
}

fn bind(portal: &str, statement: &str) -> Vec<u8> {
    msg(
        b'B',
        format!("{portal}\0{statement}\0\0\0\0\0\0\0").as_bytes(),
    )
}

fn execute(portal: &str) -> Vec<u8> {
    msg(b'E', format!("{portal}\0\0\0\0\0").as_bytes())
}

#[test]
fn prepared_statements_are_bounded_and_an_unknown_one_blinds() {
    let mut recs = vec![(C, startup(&[("user", "u")])), (S, ready())];
    for i in 0..MAX_PREPARED + 1 {
        let body = format!("s{i}\0SELECT * FROM t{i}\0\0\0");
        recs.push((C, msg(b'P', body.as_bytes())));
    }
    // The least recently used (the first) made room for the last: executing it cannot be
    // judged, which blinds the inspector; the last is judged by its classification.
    for s in ["s0", &format!("s{MAX_PREPARED}"), "s9"] {
        recs.push((C, [bind("", s), execute("")].concat()));
    }
    // A portal nobody bound.
    recs.push((C, execute("nope")));
    let (c, dead) = replay(&make, &recs, &|_, _| Vec::new());
    assert_eq!(dead, None);
    assert_eq!(
        c.anomalies,
        [
            ParserAnomaly::MessageTooLarge,
            ParserAnomaly::MessageTooLarge
        ]
    );
    let ex: Vec<&String> = c
        .facts
        .iter()
        .filter(|f| f.contains("] Execute "))
        .collect();
    assert_eq!(ex.len(), 4);
    assert!(
        ex[0].ends_with("Execute user=u db=u text=\"\""),
        "{}",
        ex[0]
    );
    assert!(ex[1].ends_with(&format!("SELECT[\"t{MAX_PREPARED}\"]")));
    assert!(ex[2].ends_with("SELECT[\"t9\"]"));
    assert!(ex[3].ends_with("Execute user=u db=u text=\"\""));
}

#[test]
fn a_portal_runs_what_it_was_bound_to() {
    let recs = vec![
        (C, startup(&[("user", "u")])),
        (S, ready()),
        (C, msg(b'P', b"\0DELETE FROM audit\0\0\0")),
        (C, bind("", "")),
        // The unnamed statement is replaced; the unnamed portal still runs the DELETE.
        (C, msg(b'P', b"\0SELECT 1\0\0\0")),
        (C, execute("")),
    ];
    let (c, _) = replay(&make, &recs, &|_, _| Vec::new());
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(
        c.facts[4].ends_with("Execute user=u db=u text=\"DELETE FROM audit\" DELETE[\"audit\"]"),
        "{:?}",
        c.facts
    );
}

#[test]
fn hostile_inputs() {
    // Bad lengths.
    let (c, dead) = feed_all(&[(C, &[0, 0, 0, 2, 0, 3, 0, 0])]);
    assert_eq!(dead, Some("invalid"));
    assert_eq!(c.anomalies, [ParserAnomaly::BadFraming]);
    let (c, dead) = feed_all(&[(C, &[0, 1, 0, 0, 0, 3, 0, 0])]);
    assert_eq!(dead, Some("invalid"));
    assert_eq!(c.anomalies, [ParserAnomaly::HeaderTooLarge]);
    let (_, dead) = feed_all(&[(C, &startup(&[("user", "u")])), (C, &[b'Q', 0, 0, 0, 1])]);
    assert_eq!(dead, Some("invalid"));
    let (_, dead) = feed_all(&[(C, &startup(&[("user", "u")])), (C, b"?\0\0\0\x04")]);
    assert_eq!(dead, Some("invalid"));
    // Unsolicited completions.
    let (c, _) = feed_all(&[
        (C, &startup(&[("user", "u")])),
        (S, &ready()),
        (S, &ready()),
    ]);
    assert_eq!(c.anomalies, [ParserAnomaly::UnsolicitedResponse]);
    // A truncated conversation leaves its request unanswered.
    let (c, _) = feed_all(&[
        (C, &startup(&[("user", "u")])),
        (S, &ready()),
        (C, &msg(b'Q', b"SELECT 1\0")),
        (S, &msg(b'C', b"SEL")[..6]),
    ]);
    assert_eq!(c.facts.last().unwrap(), "unanswered 1");
    // Garbage of every kind never panics.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut p = PostgresParser::default();
        let mut sink = Collect::default();
        let mut buf = Vec::new();
        for _ in 0..(seed % 64) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf.push((seed >> 24) as u8);
        }
        let pre = startup(&[("user", "u")]);
        let _ = p.feed(C, &pre, &mut sink);
        let _ = p.feed(if seed & 1 == 0 { C } else { S }, &buf, &mut sink);
        let _ = p.gap(S, 3);
        p.end(&mut sink);
    }
}

#[test]
fn gap_inside_a_skipped_body_resyncs() {
    let mut p = PostgresParser::default();
    let mut sink = Collect::default();
    let _ = p.feed(C, &startup(&[("user", "u")]), &mut sink);
    let row = msg(b'D', &[7u8; 100]);
    assert_eq!(
        p.feed(S, &row[..20], &mut sink),
        Progress::Done { consumed: 20 }
    );
    assert_eq!(p.gap(S, 50), GapOutcome::Skipped);
    assert_eq!(
        p.feed(S, &row[70..], &mut sink),
        Progress::Done { consumed: 35 }
    );
    assert_eq!(p.gap(S, 10), GapOutcome::GiveUp);
}

// ---- an attacker hiding statements behind size ------------------------------------------

fn query(text: &[u8]) -> Vec<u8> {
    let mut b = text.to_vec();
    b.push(0);
    msg(b'Q', &b)
}

fn login() -> Vec<(Direction, Vec<u8>)> {
    vec![
        (C, startup(&[("user", "u"), ("database", "d")])),
        (S, [msg(b'R', &[0, 0, 0, 0]), ready()].concat()),
    ]
}

/// Feeds a Query in `chunk`-byte pieces through the data plane's caller: the carry stays
/// within the message header, the last statements are reported with the message's last
/// byte (earlier ones may be, in full batches, before it), and all is returned.
fn stream_query(text: &[u8], chunk: usize) -> Collect {
    let mut d = crate::driver::Driver::new(PostgresParser::default());
    let mut sink = Collect::default();
    for (dir, b) in login() {
        d.feed(dir, &b, &mut sink).unwrap();
    }
    let q = query(text);
    let n = sink.facts.len();
    let (head, last) = q.split_at(q.len() - 1);
    for piece in head.chunks(chunk) {
        d.feed(C, piece, &mut sink).unwrap();
        assert!(d.carried(C) <= 5);
    }
    let before = sink.facts.len();
    assert!(before - n <= text.len() / 9 / crate::sql::BATCH_STATEMENTS);
    d.feed(C, last, &mut sink).unwrap();
    assert_eq!(sink.facts.len(), before + 1);
    sink
}

#[test]
fn a_40kb_or_40mb_comment_does_not_hide_a_drop() {
    for (size, chunk) in [(40 << 10, 1460), (40 << 20, 64 << 10)] {
        let mut text = b"/*".to_vec();
        text.resize(size, b'x');
        text.extend_from_slice(b"*/ DROP TABLE t");
        let c = stream_query(&text, chunk);
        assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
        assert!(
            c.facts[2].starts_with("tx 1 [/*xxx"),
            "{}",
            &c.facts[2][..40]
        );
        assert!(c.facts[2].ends_with(" DROP[\"t\"]"));
        assert_eq!(c.facts.len(), 3);
    }
}

#[test]
fn a_huge_string_holding_a_statement_is_one_string() {
    let mut text = b"SELECT '".to_vec();
    text.resize(1 << 20, b'a');
    text.extend_from_slice(b"; DROP TABLE x' FROM t");
    let c = stream_query(&text, 1460);
    assert_eq!(c.facts.len(), 3);
    assert!(
        c.facts[2].ends_with("aaa\" SELECT[\"t\"]"),
        "{}",
        c.facts[2]
    );
}

#[test]
fn a_thousand_statements_then_a_drop_are_all_judged() {
    let text = format!("{}DROP TABLE t", "SELECT 1;".repeat(1000));
    let c = stream_query(text.as_bytes(), 1460);
    assert!(c.anomalies.is_empty());
    // All with the request's id, in batches; every statement in one of them.
    let txs: Vec<&String> = c.facts[2..].iter().collect();
    assert!(txs.iter().all(|f| f.starts_with("tx 1 [")), "{txs:?}");
    let selects: usize = txs.iter().map(|f| f.matches(" SELECT[]").count()).sum();
    assert_eq!(selects, 1000);
    assert!(txs.last().unwrap().ends_with(" DROP[\"t\"]"));
    assert_eq!(txs.len(), 1000 / crate::sql::BATCH_STATEMENTS + 1);
    // The response completes the request once.
    let mut recs = login();
    recs.push((C, query(text.as_bytes())));
    recs.push((S, [msg(b'C', b"DROP TABLE\0"), ready()].concat()));
    let (c, _) = replay(&make, &recs, &|_, _| Vec::new());
    assert_eq!(c.facts.iter().filter(|f| f.starts_with("rx 1 ")).count(), 1);
}

#[test]
fn a_moderate_attack_at_every_split_point() {
    let mut text = b"/* ".to_vec();
    text.resize(300, b'x');
    text.extend_from_slice(b" */DROP TABLE t; SELECT 'a; DROP TABLE x', $q$;DROP$q$");
    let mut recs = login();
    recs.push((C, query(&text)));
    recs.push((
        C,
        msg(
            b'P',
            b"s\0/* /* nested */ ; DROP TABLE n */ DELETE FROM d\0\0\0",
        ),
    ));
    recs.push((S, [msg(b'C', b"DROP TABLE\0"), ready()].concat()));
    let c = check_all_splits(&make, &recs);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(
        c.facts[2].ends_with(" DROP[\"t\"] SELECT[]"),
        "{}",
        c.facts[2]
    );
    assert!(c.facts[3].ends_with(" DELETE[\"d\"]"), "{}", c.facts[3]);
}

#[test]
fn any_pipeline_depth_is_judged_and_only_the_oldest_lose_their_pairing() {
    let n = MAX_PENDING + 976;
    let mut recs = login();
    let mut qs = Vec::new();
    let mut answers = Vec::new();
    for i in 0..n {
        qs.extend_from_slice(&query(format!("SELECT {i} FROM t").as_bytes()));
        answers.extend_from_slice(&[msg(b'C', b"SELECT 1\0"), ready()].concat());
    }
    recs.push((C, qs));
    recs.push((S, answers));
    let (c, dead) = replay(&make, &recs, &|_, _| Vec::new());
    assert_eq!(dead, None);
    assert_eq!(c.anomalies, [ParserAnomaly::TooManyTransactions]);
    assert!(!ParserAnomaly::TooManyTransactions.blinds());
    let tx = c.facts.iter().filter(|f| f.starts_with("tx ")).count();
    assert_eq!(tx, n + 1);
    // The newest MAX_PENDING are paired with their own responses.
    let rx: Vec<&String> = c.facts.iter().filter(|f| f.starts_with("rx ")).collect();
    assert_eq!(rx.len(), MAX_PENDING + 1);
    assert!(
        rx[1].starts_with(&format!("rx {} ", n - MAX_PENDING + 1)),
        "{}",
        rx[1]
    );
    assert!(rx[MAX_PENDING].starts_with(&format!("rx {n} ")));
    assert!(!c.facts.iter().any(|f| f.starts_with("unanswered")));
}

#[test]
fn steady_state_parsing_allocates_nothing_per_statement() {
    let mut p = PostgresParser::default();
    let mut sink = Collect::default();
    for (dir, b) in login() {
        assert!(matches!(p.feed(dir, &b, &mut sink), Progress::Done { .. }));
    }
    let round = |p: &mut PostgresParser| {
        let mut sink = Collect::default();
        let q = query(b"SELECT * FROM a JOIN b ON true; UPDATE c SET x = 1");
        for piece in q.chunks(9) {
            let _ = p.feed(C, piece, &mut sink);
        }
        let _ = p.feed(
            C,
            &msg(b'P', b"\0SELECT * FROM t WHERE id = $1\0\0\0"),
            &mut sink,
        );
        let _ = p.feed(
            C,
            &[bind("", ""), execute(""), msg(b'S', b"")].concat(),
            &mut sink,
        );
        let answers = [
            msg(b'C', b"UPDATE 1\0"),
            ready(),
            msg(b'1', b""),
            msg(b'2', b""),
            msg(b'C', b"SELECT 1\0"),
            ready(),
        ]
        .concat();
        let _ = p.feed(S, &answers, &mut sink);
        assert!(sink.anomalies.is_empty(), "{:?}", sink.anomalies);
        assert_eq!(sink.facts.len(), 6, "{:?}", sink.facts);
    };
    for _ in 0..3 {
        round(&mut p);
    }
    let caps = (p.classifier.scratch_capacity(), p.prepared.bytes());
    for _ in 0..500 {
        round(&mut p);
    }
    assert_eq!(caps, (p.classifier.scratch_capacity(), p.prepared.bytes()));
}
