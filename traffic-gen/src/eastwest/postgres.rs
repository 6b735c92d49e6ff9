//! PostgreSQL flows: startup and authentication, simple and extended queries, results.

use super::edges::{Col, Edge, Q, Res, Unit};
use super::script::{Script, WORDS, chance, fill, hex, parametrize, pick};
use crate::generate::{Rng, Side};
use crate::wire::*;

pub(super) fn col_value(rng: &mut Rng, c: Col) -> Vec<u8> {
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

pub(super) const fn pg_type(c: Col) -> (u32, i16) {
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
pub(super) fn pg_result(rng: &mut Rng, q: &Q, out: &mut Vec<u8>, with_description: bool) {
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

pub(super) fn pg_flow(
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
