//! SQL tricks over PostgreSQL and MySQL: long comments, many statements, literals, executable comments.

use std::fmt::Write as _;

use super::capture::{Capture, Conn, Side};
use super::{MYSQL, POSTGRES};
use crate::wire;

/// Connects to PostgreSQL (trust authentication) and returns the connection.
pub(super) fn pg_connect(cap: &mut Capture) -> Conn {
    let mut c = cap.conn((POSTGRES, 5432));
    c.handshake(cap);
    let mut m = Vec::new();
    wire::pg_startup(
        &mut m,
        &[
            ("user", "app"),
            ("database", "shop"),
            ("application_name", "psql"),
            ("client_encoding", "UTF8"),
        ],
    );
    let mut r = Vec::new();
    wire::pg_auth(&mut r, 0, &[]);
    for (k, v) in [
        ("server_version", "16.4"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
    ] {
        wire::pg_parameter_status(&mut r, k, v);
    }
    wire::pg_backend_key(&mut r, 4242, 0x5eed_5eed);
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &m, &r);
    c
}

pub(super) fn pg_bye(cap: &mut Capture, mut c: Conn) {
    let mut x = Vec::new();
    wire::pg_msg(&mut x, b'X', &[]);
    c.send(cap, Side::Client, &x);
    c.close(cap);
}

/// A simple Query whose statements the server answers with these command tags (and, for
/// `SELECT 1`, its row).
pub(super) fn pg_simple(cap: &mut Capture, sql: &str, tags: &[&str]) {
    let mut c = pg_connect(cap);
    let mut q = Vec::new();
    wire::pg_query(&mut q, sql);
    let mut r = Vec::new();
    for t in tags {
        if *t == "SELECT 1" {
            wire::pg_row_description(&mut r, 0, &[("?column?", wire::PG_INT4, 4)]);
            wire::pg_data_row(&mut r, &[Some(b"1")]);
        }
        wire::pg_command_complete(&mut r, t);
    }
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &q, &r);
    pg_bye(cap, c);
}

/// About 40 KB of comment text.
pub(super) fn long_comment() -> String {
    let line = "the quick brown fox jumps over the lazy dog; ";
    let mut s = String::from("/* ");
    let mut k = 0;
    while s.len() < 40_000 {
        let _ = write!(s, "{k:05} {line}");
        k += 1;
    }
    s.push_str("*/ ");
    s
}

pub(super) fn sql_pg_long_comment(cap: &mut Capture) {
    pg_simple(
        cap,
        &format!("{}DROP TABLE t", long_comment()),
        &["DROP TABLE"],
    );
}

pub(super) fn sql_pg_1000_selects(cap: &mut Capture) {
    let sql = format!("{}DROP TABLE t", "SELECT 1;".repeat(1000));
    let mut tags = vec!["SELECT 1"; 1000];
    tags.push("DROP TABLE");
    pg_simple(cap, &sql, &tags);
}

pub(super) fn sql_pg_string_literal(cap: &mut Capture) {
    pg_simple(
        cap,
        "SELECT 'it''s; DROP TABLE x' AS note; DROP TABLE t",
        &["SELECT 1", "DROP TABLE"],
    );
}

pub(super) fn sql_pg_dollar_quote(cap: &mut Capture) {
    pg_simple(
        cap,
        "SELECT $q$'$q$ AS a; DROP TABLE t; -- '",
        &["SELECT 1", "DROP TABLE"],
    );
}

pub(super) fn baseline_postgres(cap: &mut Capture) {
    let mut c = pg_connect(cap);
    let mut q = Vec::new();
    wire::pg_query(&mut q, "SELECT id FROM orders WHERE id = 7");
    let mut r = Vec::new();
    wire::pg_row_description(&mut r, 16_384, &[("id", wire::PG_INT4, 4)]);
    wire::pg_data_row(&mut r, &[Some(b"7")]);
    wire::pg_command_complete(&mut r, "SELECT 1");
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &q, &r);
    let mut q = Vec::new();
    wire::pg_query(&mut q, "DROP TABLE t");
    let mut r = Vec::new();
    wire::pg_command_complete(&mut r, "DROP TABLE");
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &q, &r);
    pg_bye(cap, c);
}

// ---------------------------------------------------------------------------------------
// MySQL

pub(super) fn my_connect(cap: &mut Capture) -> Conn {
    let mut c = cap.conn((MYSQL, 3306));
    c.handshake(cap);
    let caps = wire::MY_CLIENT_LONG_PASSWORD
        | wire::MY_CLIENT_FOUND_ROWS
        | wire::MY_CLIENT_LONG_FLAG
        | wire::MY_CLIENT_CONNECT_WITH_DB
        | wire::MY_CLIENT_PROTOCOL_41
        | wire::MY_CLIENT_TRANSACTIONS
        | wire::MY_CLIENT_SECURE_CONNECTION
        | wire::MY_CLIENT_MULTI_STATEMENTS
        | wire::MY_CLIENT_MULTI_RESULTS
        | wire::MY_CLIENT_PLUGIN_AUTH
        | wire::MY_CLIENT_PLUGIN_AUTH_LENENC
        | wire::MY_CLIENT_DEPRECATE_EOF;
    let scramble: [u8; 20] = cap.bytes();
    // Scramble bytes are never 0 (the greeting is NUL-terminated around them).
    let scramble = scramble.map(|b| b.max(1) & 0x7f);
    let mut g = Vec::new();
    wire::my_greeting(&mut g, "8.0.39", 17, &scramble, caps | 0x0800_0000);
    c.send(cap, Side::Server, &g);
    let auth: [u8; 32] = cap.bytes();
    let mut h = Vec::new();
    wire::my_handshake_response(
        &mut h,
        caps,
        "app",
        &auth,
        Some("shop"),
        &[("_client_name", "libmysql")],
    );
    let mut r = Vec::new();
    // caching_sha2_password's fast-auth success, then OK.
    wire::my_packet(&mut r, 2, &[0x01, 0x03]);
    wire::my_ok(&mut r, 3, 0, 0, 0, wire::MY_STATUS_AUTOCOMMIT);
    c.exchange(cap, &h, &r);
    c
}

pub(super) fn my_query_ok(cap: &mut Capture, c: &mut Conn, sql: &str) {
    let mut q = vec![0x03];
    q.extend_from_slice(sql.as_bytes());
    let mut p = Vec::new();
    wire::my_packet(&mut p, 0, &q);
    let mut r = Vec::new();
    wire::my_ok(&mut r, 1, 0, 0, 0, wire::MY_STATUS_AUTOCOMMIT);
    c.exchange(cap, &p, &r);
}

pub(super) fn my_bye(cap: &mut Capture, mut c: Conn) {
    let mut p = Vec::new();
    wire::my_packet(&mut p, 0, &[0x01]);
    c.send(cap, Side::Client, &p);
    c.close(cap);
}

pub(super) fn sql_mysql_long_comment(cap: &mut Capture) {
    let mut c = my_connect(cap);
    my_query_ok(cap, &mut c, &format!("{}DROP TABLE t", long_comment()));
    my_bye(cap, c);
}

pub(super) fn sql_mysql_executable_comment(cap: &mut Capture) {
    let mut c = my_connect(cap);
    my_query_ok(cap, &mut c, "/*!50000 DROP TABLE t */");
    my_bye(cap, c);
}

pub(super) fn baseline_mysql(cap: &mut Capture) {
    let mut c = my_connect(cap);
    my_query_ok(cap, &mut c, "SET autocommit=1");
    my_query_ok(cap, &mut c, "TRUNCATE TABLE t");
    my_bye(cap, c);
}
