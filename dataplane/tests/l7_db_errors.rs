//! Database failures at replay level: the built `palisade` binary over the recorded
//! PostgreSQL and MySQL sessions of tests/data/{postgres,mysql} (see each README) with
//! `--log-all`. A failed login is an `l7` event with verb `LOGIN` and `error` set; a
//! failing statement carries the server's message, its SQLSTATE (`sqlstate`) and, for
//! MySQL, the server's error number (`error_code`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `postgres`/`mysql` objects of the `l7` events of one replay, in order, and the
/// summary.
fn sql_events(capture: &str, key: &str) -> (Vec<Value>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(root().join("tests/data").join(capture))
        .arg("--policy")
        .arg(root().join("dataplane/tests/data/allow-all.yaml"))
        .arg("--events")
        .arg(&events)
        .args(["--log-all", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Vec::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["event_type"] == "l7" {
            assert_eq!(e["app_proto"], key, "{e}");
            v.push(e[key].clone());
        }
    }
    (v, serde_json::from_slice(&out.stdout).unwrap())
}

/// `VERB error sqlstate error_code` of the events that failed (`error` set).
fn failures(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|q| !q["error"].is_null())
        .map(|q| {
            format!(
                "{} {} | {} {}",
                q["verb"].as_str().unwrap(),
                q["error"].as_str().unwrap(),
                q["sqlstate"].as_str().unwrap_or("-"),
                q["error_code"]
            )
        })
        .collect()
}

/// Events without an error carry no SQLSTATE or error number either.
fn successes_are_clean(events: &[Value]) {
    for q in events.iter().filter(|q| q["error"].is_null()) {
        assert!(q["sqlstate"].is_null(), "{q}");
        assert!(q["error_code"].is_null(), "{q}");
    }
}

#[test]
fn postgres_wrong_password_is_a_failed_login_event() {
    // psql with a wrong password: StartupMessage, SCRAM, ErrorResponse 28P01.
    let (ev, summary) = sql_events("postgres/pg-badpass.pcap", "postgres");
    assert_eq!(ev.len(), 1, "{ev:?}");
    let q = &ev[0];
    assert_eq!(q["verb"], "LOGIN");
    assert_eq!(q["user"], "shop");
    assert_eq!(q["database"], "shop");
    assert!(q["query"].is_null());
    assert_eq!(
        q["error"],
        "password authentication failed for user \"shop\""
    );
    assert_eq!(q["sqlstate"], "28P01");
    assert!(q["error_code"].is_null(), "PostgreSQL has no error number");
    assert_eq!(summary["transactions"]["total"], 1);
}

#[test]
fn mysql_wrong_password_is_a_failed_login_event() {
    // mariadb -pwrong: ERR 1045 #28000 answers the handshake response; no statement runs.
    let (ev, _) = sql_events("mysql/my-badpass.pcap", "mysql");
    assert_eq!(ev.len(), 1, "{ev:?}");
    let q = &ev[0];
    assert_eq!(q["verb"], "LOGIN");
    assert_eq!(q["user"], "shop");
    assert_eq!(q["database"], "shop");
    assert_eq!(
        q["error"],
        "Access denied for user 'shop'@'10.99.0.1' (using password: YES)"
    );
    assert_eq!(q["sqlstate"], "28000");
    assert_eq!(q["error_code"], 1045);
}

#[test]
fn postgres_failing_statements_carry_their_sqlstate() {
    // psql's script: one SELECT on a missing table (ErrorResponse 42P01); the rest,
    // the login included, succeed.
    let (ev, _) = sql_events("postgres/pg-psql.pcap", "postgres");
    // 11 requests; `SELECT 1 ; SELECT count(*) ...` is two statements, two events.
    assert_eq!(ev.len(), 12, "{ev:?}");
    assert_eq!(ev[0]["verb"], "LOGIN");
    assert!(ev[0]["error"].is_null());
    assert_eq!(
        failures(&ev),
        ["SELECT relation \"no_such_table\" does not exist | 42P01 null"]
    );
    let bad = ev.iter().find(|q| !q["error"].is_null()).unwrap();
    assert_eq!(bad["query"], "SELECT * FROM no_such_table;");
    assert_eq!(bad["tables"], serde_json::json!(["no_such_table"]));
    successes_are_clean(&ev);

    // psycopg (extended protocol): a Parse of a missing table (42P01) and a query
    // cancelled by a CancelRequest (57014).
    let (ev, _) = sql_events("postgres/pg-psycopg.pcap", "postgres");
    assert_eq!(
        failures(&ev),
        [
            "SELECT relation \"missing_table\" does not exist | 42P01 null",
            "SELECT canceling statement due to user request | 57014 null",
        ]
    );
    successes_are_clean(&ev);
}

#[test]
fn mysql_failing_statements_carry_their_sqlstate_and_number() {
    // The mariadb client script: one SELECT on a missing table (ERR 1146 #42S02).
    let (ev, _) = sql_events("mysql/my-client.pcap", "mysql");
    // 14 requests; `SELECT 1; SELECT item FROM shop.orders` is two statements, two events.
    assert_eq!(ev.len(), 15, "{ev:?}");
    assert_eq!(ev[0]["verb"], "LOGIN");
    assert!(ev[0]["error"].is_null());
    assert_eq!(
        failures(&ev),
        ["SELECT Table 'shop.no_such_table' doesn't exist | 42S02 1146"]
    );
    let bad = ev.iter().find(|q| !q["error"].is_null()).unwrap();
    assert_eq!(bad["query"], "SELECT * FROM no_such_table");
    successes_are_clean(&ev);

    // DBD::MariaDB with server-side prepares: the prepare of a missing table fails.
    let (ev, _) = sql_events("mysql/my-prepare.pcap", "mysql");
    assert_eq!(
        failures(&ev),
        ["SELECT Table 'shop.missing_table' doesn't exist | 42S02 1146"]
    );
    successes_are_clean(&ev);
}
