//! MySQL flows: greeting, HandshakeResponse41, COM_QUERY with result sets, COM_QUIT.

use super::edges::{Col, Edge, Q, Res, Unit};
use super::postgres::col_value;
use super::requests::MYSQL_SESSION;
use super::script::{Script, chance, fill, pick};
use crate::generate::{Rng, Side};
use crate::wire::*;

pub(super) const fn my_type(c: Col) -> u8 {
    match c {
        Col::Int | Col::Bool => MY_TYPE_LONG,
        Col::BigInt => MY_TYPE_LONGLONG,
        Col::Text => MY_TYPE_VAR_STRING,
        Col::Money => MY_TYPE_NEWDECIMAL,
        Col::Time => MY_TYPE_DATETIME,
    }
}

/// The server's answer to one COM_QUERY.
pub(super) fn my_result(
    rng: &mut Rng,
    q: &Q,
    db: &str,
    deprecate_eof: bool,
    status: u16,
    out: &mut Vec<u8>,
) {
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

pub(super) fn my_command(sc: &mut Script, sql: &str) {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    let mut c = Vec::new();
    my_packet(&mut c, 0, &p);
    sc.send(Side::Client, &c);
    sc.tx += 1;
}

pub(super) fn mysql_flow(
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
