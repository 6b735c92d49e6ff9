use super::*;
use crate::sql::testkit::{Collect, check_all_splits, load, replay};

fn make() -> Box<dyn StreamParser> {
    Box::new(MysqlParser::default())
}

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

/// The first four packets of the recorded client session (greeting, login, OK), reused
/// to put synthetic commands on a real handshake.
fn real_login() -> Vec<(Direction, Vec<u8>)> {
    load(include_bytes!("testdata/my-client.bin"))[..3].to_vec()
}

fn with_login(extra: &[(Direction, Vec<u8>)]) -> (Collect, Option<&'static str>) {
    let mut recs = real_login();
    recs.extend_from_slice(extra);
    replay(&make, &recs, &|_, _| Vec::new())
}

const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];

#[test]
fn client_session() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/my-client.bin")));
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    let f = &c.facts;
    assert_eq!(f.len(), 28);
    assert_eq!(
        f[0],
        "tx 0 [LOGIN user=shop database=shop] Login user=shop db=shop text=\"\""
    );
    assert_eq!(f[1], "rx 0 None [] state=- code=None error=-");
    assert!(f[2].ends_with(" SELECT[\"shop.orders\"]"));
    assert!(f[6].ends_with(" INSERT[\"order_items\", \"orders\"]"));
    assert!(f[8].ends_with(" UPDATE[\"orders\"]"));
    assert_eq!(
        f[11],
        "rx 5 Some(1146) [Table 'shop.no_such_table' doesn't exist] state=42S02 code=Some(1146) error=Table 'shop.no_such_table' doesn't exist"
    );
    // `USE archive` goes as COM_INIT_DB; later statements carry the new database.
    assert_eq!(
        f[14],
        "tx 7 [archive] UseDatabase user=shop db=archive text=\"archive\""
    );
    assert!(f[16].contains(" db=archive ") && f[16].ends_with(" SELECT[\"old_orders\"]"));
    // Two statements in one COM_QUERY, answered by two result sets: one response.
    assert!(f[18].ends_with(" SELECT[] SELECT[\"shop.orders\"]"));
    assert_eq!(f[19], "rx 9 None [] state=- code=None error=-");
    assert!(f[20].contains("PREPARE s FROM"));
}

#[test]
fn failed_login() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/my-badpass.bin")));
    assert!(c.anomalies.is_empty());
    assert_eq!(c.facts.len(), 2);
    assert_eq!(
        c.facts[1],
        "rx 0 Some(1045) [Access denied for user 'shop'@'10.99.0.1' (using password: YES)] state=28000 code=Some(1045) error=Access denied for user 'shop'@'10.99.0.1' (using password: YES)"
    );
}

#[test]
fn tls_is_opaque() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/my-tls.bin")));
    assert_eq!(c.facts, ["opaque encrypted"]);
}

#[test]
fn compressed_session() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/my-compress.bin")));
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    // The query and its result set (column count, definition, EOF, two rows, EOF: all in
    // one compressed packet) were compressed; COM_QUIT was stored.
    assert_eq!(
        c.facts,
        [
            "tx 0 [LOGIN user=shop database=shop] Login user=shop db=shop text=\"\"",
            "rx 0 None [] state=- code=None error=-",
            "tx 1 [SELECT item FROM orders] Query user=shop db=shop text=\"SELECT item FROM orders\" SELECT[\"orders\"]",
            "rx 1 None [] state=- code=None error=-",
        ]
    );
}

#[test]
fn server_side_prepared_statements() {
    let c = check_all_splits(&make, &load(include_bytes!("testdata/my-prepare.bin")));
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    let f = &c.facts;
    let tail =
        "user=shop db=shop text=\"SELECT item, qty FROM orders WHERE id = ?\" SELECT[\"orders\"]";
    assert!(f[10].starts_with("tx 5 ") && f[10].ends_with(&format!("Prepare {tail}")));
    // Both executions carry the prepared text; the binary result sets pair correctly.
    assert!(f[12].starts_with("tx 6 ") && f[12].ends_with(&format!("Execute {tail}")));
    assert_eq!(f[13], "rx 6 None [] state=- code=None error=-");
    assert!(f[14].starts_with("tx 7 ") && f[14].ends_with(&format!("Execute {tail}")));
    assert!(f[18].ends_with("Execute user=shop db=shop text=\"UPDATE orders SET qty = ? WHERE id = ?\" UPDATE[\"orders\"]"));
    assert_eq!(
        f[21],
        "rx 10 Some(1146) [Table 'shop.missing_table' doesn't exist] state=42S02 code=Some(1146) error=Table 'shop.missing_table' doesn't exist"
    );
    assert_eq!(f.len(), 22);
}

#[test]
fn use_query_switches_database_on_ok() {
    let (c, dead) = with_login(&[
        (C, pkt(0, b"\x03USE `Archive`")),
        (S, pkt(1, OK)),
        (C, pkt(0, b"\x03SELECT 1")),
        (S, pkt(1, OK)),
        (C, pkt(0, b"\x02nope")),
        (S, pkt(1, b"\xff\x19\x04#42000Unknown database 'nope'")),
        (C, pkt(0, b"\x03SELECT 2")),
    ]);
    assert_eq!(dead, None);
    assert!(c.facts[4].contains(" db=Archive "), "{}", c.facts[4]);
    assert!(c.facts[7].contains("code=Some(1049)"));
    assert!(c.facts[8].contains(" db=Archive "), "{}", c.facts[8]);
    assert_eq!(c.facts[9], "unanswered 4");
}

#[test]
fn local_infile_and_multi_packet_payloads() {
    // A 16 MiB COM_QUERY continued in a second packet: classified across the packet
    // boundary (the comment opened in the first ends in the second), still paired.
    let mut big = b"\x03SELECT * FROM t /*".to_vec();
    big.resize(MAX_PACKET, b'x');
    let (c, dead) = with_login(&[
        (C, pkt(0, b"\x03LOAD DATA LOCAL INFILE 'f' INTO TABLE t")),
        (S, pkt(1, b"\xfbf")),
        (C, pkt(2, b"1,2\n")),
        (C, pkt(3, b"")),
        (S, pkt(4, OK)),
        (C, [pkt(0, &big), pkt(1, b"*/ JOIN u ON true")].concat()),
        (S, pkt(1, b"\xff\x51\x04#42000too long")),
        (C, pkt(0, b"\x03SELECT 3")),
        (S, pkt(1, OK)),
    ]);
    assert_eq!(dead, None);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(c.facts[2].ends_with(" LOAD[\"t\"]"), "{}", c.facts[2]);
    assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
    assert!(
        c.facts[4].starts_with("tx 2 [SELECT * FROM t /*xxx"),
        "{}",
        &c.facts[4][..64]
    );
    assert!(c.facts[4].ends_with(" SELECT[\"t\", \"u\"]"));
    // Its text is the logging prefix, not the 16 MiB.
    assert!(c.facts[4].len() < crate::sql::TEXT_MAX + 512);
    assert!(c.facts[5].starts_with("rx 2 Some(1105)"), "{}", c.facts[5]);
    assert!(c.facts[6].starts_with("tx 3 [SELECT 3]"), "{:?}", c.facts);
    assert_eq!(c.facts.len(), 8);
}

#[test]
fn result_set_rows_are_skipped_and_bounded_state() {
    // Text result set in CLIENT_DEPRECATE_EOF-less mode: count, 1 def, EOF, rows, EOF.
    let (c, _) = with_login(&[
        (C, pkt(0, b"\x03SELECT a FROM t")),
        (
            S,
            [
                pkt(1, b"\x01"),
                pkt(2, b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00"),
                pkt(3, b"\xfe\x00\x00\x02\x00"),
                pkt(4, b"\x01\xfe"),
                pkt(5, b"\x011"),
                pkt(6, b"\xfe\x00\x00\x02\x00"),
            ]
            .concat(),
        ),
        (C, pkt(0, b"\x0e")),
        (S, pkt(1, OK)),
    ]);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert_eq!(c.facts.len(), 4);
    assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
}

fn execute(stmt: u32) -> Vec<u8> {
    let mut p = vec![COM_STMT_EXECUTE];
    p.extend_from_slice(&stmt.to_le_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0]);
    p
}

#[test]
fn prepared_statements_are_bounded_and_an_unknown_one_blinds() {
    let mut extra = Vec::new();
    for i in 0..MAX_PREPARED as u32 + 1 {
        extra.push((C, pkt(0, format!("\x16SELECT * FROM t{i}").as_bytes())));
        let mut ok = vec![0u8];
        ok.extend_from_slice(&i.to_le_bytes());
        ok.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
        extra.push((S, pkt(1, &ok)));
    }
    // The least recently used (the first) made room for the last: executing it cannot be
    // judged, which blinds the inspector; the last is judged by its classification.
    extra.push((C, pkt(0, &execute(0))));
    extra.push((C, pkt(0, &execute(MAX_PREPARED as u32))));
    extra.push((C, pkt(0, &execute(7))));
    let (c, dead) = with_login(&extra);
    assert_eq!(dead, None);
    assert_eq!(c.anomalies, [ParserAnomaly::MessageTooLarge]);
    assert!(ParserAnomaly::MessageTooLarge.blinds());
    let n = c.facts.len();
    assert!(
        c.facts[n - 6].ends_with("Execute user=shop db=shop text=\"\""),
        "{}",
        c.facts[n - 6]
    );
    assert!(c.facts[n - 5].ends_with(&format!("SELECT[\"t{MAX_PREPARED}\"]")));
    assert!(c.facts[n - 4].ends_with("SELECT[\"t7\"]"));
}

#[test]
fn mariadb_executes_the_statement_just_prepared_by_id_minus_one() {
    let (c, _) = with_login(&[
        (C, pkt(0, b"\x16DELETE FROM audit")),
        (C, pkt(0, &execute(u32::MAX))),
    ]);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(
        c.facts[3]
            .ends_with("Execute user=shop db=shop text=\"DELETE FROM audit\" DELETE[\"audit\"]"),
        "{:?}",
        c.facts
    );
}

#[test]
fn hostile_inputs() {
    // An oversized handshake response cannot be read: the flow is given up.
    let recs = load(include_bytes!("testdata/my-client.bin"));
    let mut p = MysqlParser::default();
    let mut sink = Collect::default();
    let _ = p.feed(S, &recs[0].1, &mut sink);
    let huge = [0xff, 0xff, 0x00, 0x01];
    assert_eq!(
        p.feed(C, &huge, &mut sink),
        Progress::Invalid(Invalid::TooLarge)
    );
    // Unsolicited packets.
    let (c, _) = with_login(&[(S, pkt(1, OK))]);
    assert_eq!(c.anomalies, [ParserAnomaly::UnsolicitedResponse]);
    // Garbage never panics.
    let mut seed = 0x0123_4567_89ab_cdefu64;
    for _ in 0..3000 {
        let mut p = MysqlParser::default();
        let mut sink = Collect::default();
        let _ = p.feed(S, &recs[0].1, &mut sink);
        let _ = p.feed(C, &recs[1].1, &mut sink);
        let _ = p.feed(S, &recs[2].1, &mut sink);
        let mut buf = Vec::new();
        for _ in 0..(seed % 80) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf.push((seed >> 24) as u8);
        }
        let _ = p.feed(if seed & 1 == 0 { C } else { S }, &buf, &mut sink);
        let _ = p.gap(C, 2);
        p.end(&mut sink);
    }
}

// ---- an attacker hiding statements behind size ------------------------------------------

#[test]
fn a_drop_straddling_the_16mib_packet_boundary_is_judged() {
    // Two full packets and a third: the first ends inside `DROP`, the second inside a
    // comment that the third closes.
    let mut first = b"\x03SELECT 1; /*".to_vec();
    first.resize(MAX_PACKET - 5, b'x');
    first.extend_from_slice(b"*/ DR");
    let mut second = b"OP TABLE t; /*".to_vec();
    second.resize(MAX_PACKET, b'y');
    let third = b"*/ DELETE FROM u".to_vec();
    let wire = [pkt(0, &first), pkt(1, &second), pkt(2, &third)].concat();
    let boundary = 4 + MAX_PACKET;
    let mut recs = real_login();
    recs.push((C, wire));
    recs.push((S, pkt(1, OK)));
    let at = recs.len() - 2;
    let want = "SELECT[] DROP[\"t\"] DELETE[\"u\"]";
    // Cut anywhere around the first packet boundary, and fed in 64 KiB pieces.
    for cut in boundary - 3..boundary + 7 {
        let (c, dead) = replay(&make, &recs, &|i, _| {
            if i == at { vec![cut] } else { vec![] }
        });
        assert_eq!(dead, None);
        assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
        assert!(
            c.facts[2].ends_with(want),
            "cut at {cut}: {}",
            &c.facts[2][c.facts[2].len() - 60..]
        );
        assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
    }
    let (c, _) = replay(&make, &recs, &|i, len| {
        if i == at {
            (1..len).step_by(64 << 10).collect()
        } else {
            vec![]
        }
    });
    assert!(c.facts[2].ends_with(want));
}

#[test]
fn a_thousand_statements_then_a_drop_are_all_judged() {
    let text = format!("\x03{}DROP TABLE t", "SELECT 1;".repeat(1000));
    let (c, dead) = with_login(&[(C, pkt(0, text.as_bytes())), (S, pkt(1, OK))]);
    assert_eq!(dead, None);
    assert!(c.anomalies.is_empty());
    let txs: Vec<&String> = c.facts.iter().filter(|f| f.starts_with("tx 1 ")).collect();
    let selects: usize = txs.iter().map(|f| f.matches(" SELECT[]").count()).sum();
    assert_eq!(selects, 1000);
    assert!(txs.last().unwrap().ends_with(" DROP[\"t\"]"));
    assert_eq!(c.facts.iter().filter(|f| f.starts_with("rx 1 ")).count(), 1);
}

#[test]
fn a_long_prepared_statement_is_executed_as_classified() {
    let mut text = b"\x16/*".to_vec();
    text.resize(200 << 10, b'x');
    text.extend_from_slice(b"*/ DELETE FROM audit WHERE id = ?");
    let mut ok = vec![0u8];
    ok.extend_from_slice(&5u32.to_le_bytes());
    ok.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
    let (c, dead) = with_login(&[
        (C, pkt(0, &text)),
        (S, pkt(1, &ok)),
        (C, pkt(0, &execute(5))),
    ]);
    assert_eq!(dead, None);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(c.facts[2].contains("] Prepare "));
    assert!(c.facts[2].ends_with(" DELETE[\"audit\"]"));
    assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
    assert!(c.facts[4].contains("] Execute "), "{:?}", c.facts);
    assert!(c.facts[4].ends_with(" DELETE[\"audit\"]"));
    // Only the logging prefix of the text is kept.
    assert!(c.facts[4].len() < crate::sql::TEXT_MAX + 512);
}

#[test]
fn any_pipeline_depth_is_judged() {
    let n = MAX_PENDING + 36;
    let mut qs = Vec::new();
    let mut oks = Vec::new();
    for i in 0..n {
        qs.extend_from_slice(&pkt(0, format!("\x03DELETE FROM t{i}").as_bytes()));
        oks.extend_from_slice(&pkt(1, OK));
    }
    let (c, dead) = with_login(&[(C, qs), (S, oks)]);
    assert_eq!(dead, None);
    assert_eq!(c.anomalies, [ParserAnomaly::TooManyTransactions]);
    assert_eq!(
        c.facts.iter().filter(|f| f.starts_with("tx ")).count(),
        n + 1
    );
    let rx: Vec<&String> = c.facts.iter().filter(|f| f.starts_with("rx ")).collect();
    assert_eq!(rx.len(), MAX_PENDING + 1);
    assert!(
        rx[1].starts_with(&format!("rx {} ", n - MAX_PENDING + 1)),
        "{}",
        rx[1]
    );
}

#[test]
fn a_pipeline_too_mixed_to_pair_is_still_judged_and_its_responses_skipped() {
    // Queries and pings alternating: past the runs kept, pairing is given up for good.
    let n = MAX_PENDING + 2 * crate::sql::pending::MAX_LOST_RUNS + 10;
    let mut cmds = Vec::new();
    for i in 0..n {
        cmds.extend_from_slice(&pkt(0, format!("\x03DELETE FROM t{i}").as_bytes()));
        cmds.extend_from_slice(&pkt(0, b"\x0e"));
    }
    let big = vec![0x01u8; MAX_BUFFERED + 100];
    let (c, dead) = with_login(&[(C, cmds), (S, [pkt(1, OK), pkt(1, &big)].concat())]);
    assert_eq!(dead, None);
    // One non-blinding anomaly; the large response read as nothing.
    assert_eq!(c.anomalies, [ParserAnomaly::TooManyTransactions]);
    assert_eq!(
        c.facts.iter().filter(|f| f.starts_with("tx ")).count(),
        n + 1
    );
    assert!(c.facts[n + 1].ends_with(&format!("DELETE[\"t{}\"]", n - 1)));
    assert_eq!(c.facts.len(), n + 2);
}

// ---- the compressed protocol -------------------------------------------------------------

/// The recorded `mariadb --compress` login (greeting, handshake response with
/// CLIENT_COMPRESS, OK): every byte after it is compressed.
fn compressed_login() -> Vec<(Direction, Vec<u8>)> {
    load(include_bytes!("testdata/my-compress.bin"))[..3].to_vec()
}

/// A compressed packet: header (payload length, sequence id, announced length) and payload.
fn framed(seq: u8, payload: &[u8], announced: usize) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(&[
        announced as u8,
        (announced >> 8) as u8,
        (announced >> 16) as u8,
    ]);
    v.extend_from_slice(payload);
    v
}

fn zlib(inner: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(inner, 6)
}

/// `inner` (packets of the ordinary stream) deflated into one compressed packet.
fn zpkt(seq: u8, inner: &[u8]) -> Vec<u8> {
    framed(seq, &zlib(inner), inner.len())
}

/// `inner` in one stored compressed packet (announced length 0).
fn stored(seq: u8, inner: &[u8]) -> Vec<u8> {
    framed(seq, inner, 0)
}

fn with_compressed_login(extra: &[(Direction, Vec<u8>)]) -> Vec<(Direction, Vec<u8>)> {
    let mut recs = compressed_login();
    recs.extend_from_slice(extra);
    recs
}

/// Replays `recs` whole, every record split at every point, and byte by byte: each time
/// the parser must give up (`Invalid`) with the same anomalies, and its facts must pass
/// `facts_ok`. (The facts themselves may differ: what was inflated before the fault, up to
/// a checksum at the end of a stream, is read as it streams, as the server reads it, and
/// where the fault is found depends on where the bytes were cut.) Returns the whole run.
fn check_gives_up(recs: &[(Direction, Vec<u8>)], facts_ok: &dyn Fn(&[String]) -> bool) -> Collect {
    let (base, dead) = replay(&make, recs, &|_, _| Vec::new());
    assert_eq!(dead, Some("invalid"), "{:?}", base.facts);
    assert!(facts_ok(&base.facts), "{:?}", base.facts);
    let same = |what: String, (got, dead): (Collect, Option<&'static str>)| {
        assert_eq!(dead, Some("invalid"), "{what}");
        assert!(facts_ok(&got.facts), "{what}: {:?}", got.facts);
        assert_eq!(got.anomalies, base.anomalies, "{what}");
    };
    for (i, (_, data)) in recs.iter().enumerate() {
        for at in 1..data.len() {
            same(
                format!("record {i} split at {at}"),
                replay(&make, recs, &|j, _| if j == i { vec![at] } else { vec![] }),
            );
        }
    }
    same(
        "byte by byte".into(),
        replay(&make, recs, &|_, len| (1..len).collect()),
    );
    base
}

fn query(text: &str) -> Vec<u8> {
    pkt(0, format!("\x03{text}").as_bytes())
}

#[test]
fn a_drop_in_a_compressed_packet_is_reported_as_that_statement() {
    let c = check_all_splits(
        &make,
        &with_compressed_login(&[
            (C, zpkt(0, &query("DROP TABLE orders"))),
            (S, zpkt(1, &pkt(1, OK))),
        ]),
    );
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(c.facts[2].ends_with(" DROP[\"orders\"]"), "{:?}", c.facts);
    assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
    assert_eq!(c.facts.len(), 4);
}

#[test]
fn a_logical_packet_may_span_compressed_packets() {
    // One COM_QUERY cut inside `DROP`: the first part deflated, the rest stored, an empty
    // stored packet between them.
    let q = query("SELECT 1; /* pad */ DROP TABLE t");
    let cut = q.len() - 9;
    let c = check_all_splits(
        &make,
        &with_compressed_login(&[
            (
                C,
                [zpkt(0, &q[..cut]), stored(1, b""), stored(2, &q[cut..])].concat(),
            ),
            (S, zpkt(1, &pkt(1, OK))),
        ]),
    );
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(
        c.facts[2].ends_with(" SELECT[] DROP[\"t\"]"),
        "{:?}",
        c.facts
    );
    assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
}

#[test]
fn one_compressed_packet_may_carry_several_logical_packets() {
    let c = check_all_splits(
        &make,
        &with_compressed_login(&[
            (
                C,
                zpkt(0, &[query("DELETE FROM a"), query("DROP TABLE b")].concat()),
            ),
            (S, zpkt(1, &[pkt(1, OK), pkt(1, OK)].concat())),
        ]),
    );
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(c.facts[2].starts_with("tx 1 ") && c.facts[2].ends_with(" DELETE[\"a\"]"));
    assert!(c.facts[3].starts_with("tx 2 ") && c.facts[3].ends_with(" DROP[\"b\"]"));
    assert_eq!(c.facts[4], "rx 1 None [] state=- code=None error=-");
    assert_eq!(c.facts[5], "rx 2 None [] state=- code=None error=-");
    assert_eq!(c.facts.len(), 6);
}

#[test]
fn stored_packets_are_read_as_they_are() {
    let c = check_all_splits(
        &make,
        &with_compressed_login(&[
            (C, stored(0, &query("UPDATE t SET a = 1"))),
            (S, stored(1, &pkt(1, b"\xff\x7a\x04#42S02no such table"))),
            (C, stored(0, &query("DROP TABLE t"))),
        ]),
    );
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(c.facts[2].ends_with(" UPDATE[\"t\"]"));
    assert!(c.facts[3].starts_with("rx 1 Some(1146) [no such table] state=42S02"));
    assert!(c.facts[4].ends_with(" DROP[\"t\"]"));
    assert_eq!(c.facts[5], "unanswered 2");
}

#[test]
fn a_long_compressed_text_and_a_16mib_packet_are_streamed() {
    // 16 MiB of logical packets (a COM_QUERY whose text goes on in a second packet) in
    // compressed packets of the most a header can announce; the DROP comes last.
    let mut text = b"\x03SELECT 1; /*".to_vec();
    text.resize(MAX_PACKET, b'x');
    let logical = [pkt(0, &text), pkt(1, b"*/ DROP TABLE t")].concat();
    let wire: Vec<u8> = logical
        .chunks(compress::MAX_INFLATED as usize)
        .enumerate()
        .flat_map(|(i, c)| zpkt(i as u8, c))
        .collect();
    // Small: the padding deflates well.
    assert!(wire.len() < 100 << 10);
    let recs = with_compressed_login(&[(C, wire), (S, zpkt(1, &pkt(1, OK)))]);
    let at = recs.len() - 2;
    let (c, dead) = replay(&make, &recs, &|i, len| {
        if i == at {
            (1..len).step_by(1000).collect()
        } else {
            vec![]
        }
    });
    assert_eq!(dead, None);
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(c.facts[2].ends_with(" SELECT[] DROP[\"t\"]"));
    assert_eq!(c.facts[3], "rx 1 None [] state=- code=None error=-");
}

#[test]
fn a_stream_inflating_past_its_announced_length_stops_there() {
    // Announced one byte short.
    let q = query("SELECT 1");
    let c = check_gives_up(
        &with_compressed_login(&[(C, framed(0, &zlib(&q), q.len() - 1))]),
        &|f| f.len() == 2,
    );
    assert_eq!(c.anomalies, [ParserAnomaly::DecompressionBomb]);
    // A zip bomb: 16 MiB of zeros in 16 KiB, announced as 100 bytes. Inflating stops after
    // 101 bytes; the parser never held more than its bound.
    let bomb = zlib(&vec![0u8; MAX_PACKET]);
    assert!(bomb.len() < 32 << 10);
    let mut p = MysqlParser::default();
    let mut sink = Collect::default();
    for (dir, data) in compressed_login() {
        assert!(matches!(
            p.feed(dir, &data, &mut sink),
            Progress::Done { .. }
        ));
    }
    assert_eq!(
        p.feed(C, &framed(0, &bomb, 100), &mut sink),
        Progress::Invalid(Invalid::TooLarge)
    );
    assert_eq!(sink.anomalies, [ParserAnomaly::DecompressionBomb]);
    assert!(ParserAnomaly::DecompressionBomb.blinds());
    let held = p.inflaters[0].as_ref().map_or(0, |z| z.out.capacity());
    assert!(held <= compress::STEP, "{held}");
}

#[test]
fn a_wrong_announced_length_gives_up() {
    let q = query("SELECT 1");
    for announced in [q.len() + 1, q.len() + 5000] {
        // The query, inflated whole before the stream ends short, is reported first.
        let c = check_gives_up(
            &with_compressed_login(&[(C, framed(0, &zlib(&q), announced))]),
            &|f| f.len() == 4 && f[2].ends_with(" SELECT[]"),
        );
        assert_eq!(c.anomalies, [ParserAnomaly::BadFraming], "{announced}");
        assert!(ParserAnomaly::BadFraming.blinds());
    }
}

#[test]
fn compressed_bytes_that_cannot_be_inflated_give_up() {
    let q = query("DROP TABLE t");
    let z = zlib(&q);
    let mut bad_sum = z.clone();
    *bad_sum.last_mut().unwrap() ^= 1;
    let mut trailing = z.clone();
    trailing.extend_from_slice(b"\x03DROP TABLE u");
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage", framed(0, b"\x03DROP TABLE u, not zlib", q.len())),
        ("bad checksum", framed(0, &bad_sum, q.len())),
        ("cut short", framed(0, &z[..z.len() - 3], q.len())),
        ("bytes after the stream", framed(0, &trailing, q.len())),
        ("empty", framed(0, b"", q.len())),
    ];
    for (what, wire) in cases {
        // Nothing but the statement deflated may be reported (the garbage is not read as
        // packets; the bytes after the stream are not inflated).
        let c = check_gives_up(&with_compressed_login(&[(C, wire)]), &|f| {
            f.iter().all(|f| !f.contains("DROP[\"u\"]"))
        });
        assert_eq!(c.anomalies, [ParserAnomaly::CompressionError], "{what}");
    }
    assert!(ParserAnomaly::CompressionError.blinds());
}

/// The recorded compressed login with the greeting's and the response's capabilities
/// changed: `set` added, `clear` removed.
fn login_with_caps(set: u64, clear: u64) -> Vec<(Direction, Vec<u8>)> {
    let mut recs = compressed_login();
    // Greeting: after the version string, caps_lo at +13 and caps_hi at +18.
    let g = &mut recs[0].1;
    let v = 5 + g[5..].iter().position(|&b| b == 0).unwrap() + 1;
    let mut caps = u64::from(u16::from_le_bytes([g[v + 13], g[v + 14]]))
        | u64::from(u16::from_le_bytes([g[v + 18], g[v + 19]])) << 16;
    caps = (caps | set) & !clear;
    g[v + 13..v + 15].copy_from_slice(&(caps as u16).to_le_bytes());
    g[v + 18..v + 20].copy_from_slice(&((caps >> 16) as u16).to_le_bytes());
    let r = &mut recs[1].1;
    let caps = (u64::from(u32::from_le_bytes(r[4..8].try_into().unwrap())) | set) & !clear;
    r[4..8].copy_from_slice(&(caps as u32).to_le_bytes());
    recs
}

#[test]
fn zstd_compression_stays_opaque_and_zlib_wins_when_both_are_negotiated() {
    let mut recs = login_with_caps(CLIENT_ZSTD, CLIENT_COMPRESS);
    recs.push((C, b"\x10\x00\x00\x00\x00\x00\x00zstd-frame-bytes".to_vec()));
    let c = check_all_splits(&make, &recs);
    assert_eq!(c.facts[2], "opaque compressed");
    assert_eq!(c.facts.len(), 3);
    assert!(OpaqueReason::Compressed.hides_requests(AppProto::Mysql));
    // Both flags: the peers use zlib.
    let mut recs = login_with_caps(CLIENT_ZSTD, 0);
    recs.push((C, zpkt(0, &query("DROP TABLE t"))));
    let c = check_all_splits(&make, &recs);
    assert!(c.facts[2].ends_with(" DROP[\"t\"]"), "{:?}", c.facts);
}

#[test]
fn a_change_of_user_keeps_the_connection_compressed() {
    let c = check_all_splits(
        &make,
        &with_compressed_login(&[
            (
                C,
                zpkt(0, &pkt(0, b"\x11admin\x00\x14aaaaaaaaaaaaaaaaaaaa")),
            ),
            (S, zpkt(1, &pkt(1, OK))),
            (C, zpkt(0, &query("DROP TABLE t"))),
        ]),
    );
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
    assert!(
        c.facts[2].starts_with("tx 1 [LOGIN user=admin "),
        "{:?}",
        c.facts
    );
    assert!(c.facts[4].contains(" user=admin ") && c.facts[4].ends_with(" DROP[\"t\"]"));
}

#[test]
fn a_gap_in_a_compressed_direction_gives_up() {
    let mut p = MysqlParser::default();
    let mut sink = Collect::default();
    for (dir, data) in compressed_login() {
        let _ = p.feed(dir, &data, &mut sink);
    }
    assert_eq!(p.gap(S, 10), GapOutcome::GiveUp);
    assert_eq!(p.gap(C, 1), GapOutcome::GiveUp);
}

#[test]
fn compressed_garbage_never_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut p = MysqlParser::default();
        let mut sink = Collect::default();
        for (dir, data) in compressed_login() {
            let _ = p.feed(dir, &data, &mut sink);
        }
        let r = next();
        let mut inner = Vec::new();
        for _ in 0..(r % 60) {
            inner.push((next() >> 24) as u8);
        }
        // Random packets, deflated, stored, or raw bytes; announced right or not.
        let wire = match r % 4 {
            0 => zpkt(0, &inner),
            1 => stored(0, &inner),
            2 => framed(0, &zlib(&inner), (next() % 80) as usize),
            _ => inner.clone(),
        };
        let dir = if next() & 1 == 0 { C } else { S };
        for piece in wire.chunks((r % 7 + 1) as usize) {
            if let Progress::Invalid(_) = p.feed(dir, piece, &mut sink) {
                break;
            }
        }
        p.end(&mut sink);
        let held = p.inflaters.iter().flatten().map(|z| z.out.len()).max();
        assert!(held.unwrap_or(0) <= compress::MAX_HELD);
    }
}

/// Writes the recorded conversations as fuzzing seeds, in fuzz/src/lib.rs's layout, when
/// `PALISADE_WRITE_SEEDS` names a directory (`PALISADE_WRITE_SEEDS=$PWD/fuzz/seeds/mysql
/// cargo test -p proto-parsers mysql::tests::write_seeds`); `my-compressed-inner` asks the
/// target (flags 6) for a compressed login and to deflate each record into a packet.
#[test]
fn write_seeds() {
    let Some(dir) = std::env::var_os("PALISADE_WRITE_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let seed = |flags: u8, recs: &[(Direction, Vec<u8>)]| {
        let mut v = vec![7u8, flags];
        for (d, b) in recs {
            v.push(u8::from(*d == S));
            v.extend_from_slice(&(b.len() as u16).to_be_bytes());
            v.extend_from_slice(b);
        }
        v
    };
    for (name, bin) in [
        ("my-badpass", &include_bytes!("testdata/my-badpass.bin")[..]),
        ("my-client", include_bytes!("testdata/my-client.bin")),
        ("my-compress", include_bytes!("testdata/my-compress.bin")),
        ("my-prepare", include_bytes!("testdata/my-prepare.bin")),
        ("my-tls", include_bytes!("testdata/my-tls.bin")),
    ] {
        std::fs::write(dir.join(name), seed(0, &load(bin))).unwrap();
    }
    let inner = [
        (
            C,
            [query("SELECT 1; DROP TABLE t"), query("DELETE FROM u")].concat(),
        ),
        (S, [pkt(1, OK), pkt(1, OK)].concat()),
        (C, pkt(0, &execute(1))),
        (S, pkt(1, b"\xff\x7a\x04#42S02no such table")),
    ];
    std::fs::write(dir.join("my-compressed-inner"), seed(6, &inner)).unwrap();
}
