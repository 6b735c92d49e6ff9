//! PostgreSQL and MySQL: recorded sessions (login and all), then their request/response
//! exchanges repeated, as a long-lived pooled connection would send them.

use criterion::Criterion;
use dataplane::inspect::ParserRegistry;
use proto_parsers::{AppProto, Direction};

use super::{Conversation, bench_conversation, records};

const PG_PSQL: &[u8] = include_bytes!("../../../proto-parsers/src/postgres/testdata/pg-psql.bin");
const PG_PSYCOPG: &[u8] =
    include_bytes!("../../../proto-parsers/src/postgres/testdata/pg-psycopg.bin");
const MY_CLIENT: &[u8] = include_bytes!("../../../proto-parsers/src/mysql/testdata/my-client.bin");
const MY_PREPARE: &[u8] =
    include_bytes!("../../../proto-parsers/src/mysql/testdata/my-prepare.bin");

/// `prelude` records once, then `steady` records `rounds` times; each range comes with the
/// number of requests the parser reports for it.
fn repeat_records(
    c: &mut Conversation,
    recs: &[(Direction, Vec<u8>)],
    (prelude, prelude_requests): (std::ops::Range<usize>, u64),
    (steady, per_round): (std::ops::Range<usize>, u64),
    rounds: usize,
) {
    for (d, b) in &recs[prelude] {
        c.write(*d, b);
    }
    for _ in 0..rounds {
        for (d, b) in &recs[steady.clone()] {
            c.write(*d, b);
        }
    }
    c.requests = prelude_requests + per_round * rounds as u64;
    c.responses = c.requests;
}

/// psql: SSLRequest refused, SCRAM login, then simple queries (a point SELECT, two
/// statements with a join, a CTE, INSERT ... SELECT, UPDATE ... FROM, DELETE ... USING).
pub fn pg_simple(rounds: usize) -> Conversation {
    let mut c = Conversation::new("pg_simple_query", AppProto::Postgres);
    repeat_records(&mut c, &records(PG_PSQL), (0..8, 1), (8..20, 6), rounds);
    c
}

/// psycopg 3: SCRAM login, a statement prepared once (Parse `_pg3_0`), then the extended
/// protocol as a driver with a statement cache sends it: Bind/Describe/Execute/Sync of the
/// prepared statement twice, and an unnamed Parse/Bind/Execute/Sync (UPDATE), which the
/// parser reports as two requests (the prepare and the execution).
pub fn pg_extended(rounds: usize) -> Conversation {
    let mut c = Conversation::new("pg_extended", AppProto::Postgres);
    repeat_records(&mut c, &records(PG_PSYCOPG), (0..8, 2), (8..14, 4), rounds);
    c
}

/// MariaDB client: login, then COM_QUERY: a point SELECT, a join, INSERT ... SELECT, UPDATE.
pub fn mysql_query(rounds: usize) -> Conversation {
    let mut c = Conversation::new("mysql_com_query", AppProto::Mysql);
    repeat_records(&mut c, &records(MY_CLIENT), (0..3, 1), (3..11, 4), rounds);
    c
}

/// A connector with server-side prepared statements: login, session SETs, COM_STMT_PREPARE
/// once, then COM_STMT_EXECUTE of it with binary result sets.
pub fn mysql_prepared(rounds: usize) -> Conversation {
    let mut c = Conversation::new("mysql_prepared", AppProto::Mysql);
    repeat_records(
        &mut c,
        &records(MY_PREPARE),
        (0..13, 6),
        (13..17, 2),
        rounds,
    );
    c
}

pub(super) fn bench_sql_protocols(c: &mut Criterion) {
    let reg = ParserRegistry::builtin();
    let mut g = c.benchmark_group("db");
    for (name, conv) in [
        ("postgres_simple_query", pg_simple(100)),
        ("postgres_extended", pg_extended(200)),
        ("mysql_com_query", mysql_query(150)),
        ("mysql_prepared", mysql_prepared(300)),
    ] {
        conv.check(&reg);
        bench_conversation(&mut g, name, &conv, &reg);
    }
    g.finish();
}
