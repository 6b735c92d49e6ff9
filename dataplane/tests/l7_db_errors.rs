//! Database failures at replay level: the built `palisade` binary over the recorded
//! PostgreSQL and MySQL sessions of tests/data/{postgres,mysql} (see each README) with
//! `--log-all`. Each statement or login is one `pgsql` or `mysql` record with Palisade's
//! `sql` object (PostgreSQL's also with Suricata's `pgsql`). A failed login is verb `LOGIN`
//! with `error` set; a failing statement carries the server's message, its SQLSTATE
//! (`sqlstate`) and, for MySQL, the server's error number (`error_code`); PostgreSQL's
//! failures also as Suricata's `pgsql.response` (`severity_localizable`, `code`, `message`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `sql` objects of the `pgsql`/`mysql` records (`event_type`) of one replay, in order,
/// the records themselves, and the summary.
fn sql_events(capture: &str, event_type: &str) -> (Vec<Value>, Vec<Value>, Value) {
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
    let mut records = Vec::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let t = e["event_type"].as_str().unwrap();
        if ["http", "dns", "tls", "pgsql", "mysql", "redis"].contains(&t) {
            assert_eq!(t, event_type, "{e}");
            assert_eq!(e["app_proto"], event_type, "{e}");
            let q = &e["sql"];
            // A value no one knows is left out, never `null`.
            assert!(q.as_object().unwrap().values().all(|x| !x.is_null()), "{e}");
            if event_type == "pgsql" {
                pgsql_agrees_with_sql(&e);
            } else {
                assert!(e.get("pgsql").is_none(), "{e}");
            }
            v.push(q.clone());
            records.push(e);
        }
    }
    (v, records, serde_json::from_slice(&out.stdout).unwrap())
}

/// A `pgsql` record's Suricata object says what its `sql` object says: the same transaction,
/// and an error response exactly when the statement or login failed, with its SQLSTATE and
/// message.
fn pgsql_agrees_with_sql(e: &Value) {
    let (p, q) = (&e["pgsql"], &e["sql"]);
    assert!(p["tx_id"].is_u64(), "{e}");
    assert_eq!(p["tx_id"], e["tx_id"], "{e}");
    assert!(p["request"].is_object(), "{e}");
    match q.get("error") {
        Some(err) => {
            let r = &p["response"];
            assert_eq!(r["severity_localizable"], "ERROR", "{e}");
            assert_eq!(r["code"], q["sqlstate"], "{e}");
            assert_eq!(&r["message"], err, "{e}");
        }
        None => assert!(p.get("response").is_none(), "{e}"),
    }
}

/// `o[k]` as printed: `-` when the key is absent.
fn field(o: &Value, k: &str) -> String {
    match o.get(k) {
        None => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// `VERB error sqlstate error_code` of the events that failed (`error` set).
fn failures(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|q| q.get("error").is_some())
        .map(|q| {
            format!(
                "{} {} | {} {}",
                q["verb"].as_str().unwrap(),
                q["error"].as_str().unwrap(),
                field(q, "sqlstate"),
                field(q, "error_code")
            )
        })
        .collect()
}

/// Events without an error carry no SQLSTATE or error number either.
fn successes_are_clean(events: &[Value]) {
    for q in events.iter().filter(|q| q.get("error").is_none()) {
        assert!(q.get("sqlstate").is_none(), "{q}");
        assert!(q.get("error_code").is_none(), "{q}");
    }
}

#[test]
fn postgres_wrong_password_is_a_failed_login_event() {
    // psql with a wrong password: StartupMessage, SCRAM, ErrorResponse 28P01.
    let (ev, records, summary) = sql_events("postgres/pg-badpass.pcap", "pgsql");
    assert_eq!(ev.len(), 1, "{ev:?}");
    let q = &ev[0];
    assert_eq!(q["verb"], "LOGIN");
    assert_eq!(q["user"], "shop");
    assert_eq!(q["database"], "shop");
    assert!(q.get("query").is_none());
    assert_eq!(
        q["error"],
        "password authentication failed for user \"shop\""
    );
    assert_eq!(q["sqlstate"], "28P01");
    assert!(
        q.get("error_code").is_none(),
        "PostgreSQL has no error number"
    );
    assert_eq!(summary["transactions"]["total"], 1);
    // In Suricata's terms: the startup message's user and database, and the error.
    let p = &records[0]["pgsql"];
    assert_eq!(
        p["request"],
        serde_json::json!({"startup_parameters": {"user": "shop", "optional_parameters": [{"database": "shop"}]}})
    );
    assert_eq!(p["response"]["code"], "28P01");
}

#[test]
fn mysql_wrong_password_is_a_failed_login_event() {
    // mariadb -pwrong: ERR 1045 #28000 answers the handshake response; no statement runs.
    let (ev, _, _) = sql_events("mysql/my-badpass.pcap", "mysql");
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
    let (ev, _, _) = sql_events("postgres/pg-psql.pcap", "pgsql");
    // 11 requests; `SELECT 1 ; SELECT count(*) ...` is two statements, two events.
    assert_eq!(ev.len(), 12, "{ev:?}");
    assert_eq!(ev[0]["verb"], "LOGIN");
    assert!(ev[0].get("error").is_none());
    assert_eq!(
        failures(&ev),
        ["SELECT relation \"no_such_table\" does not exist | 42P01 -"]
    );
    let bad = ev.iter().find(|q| q.get("error").is_some()).unwrap();
    assert_eq!(bad["query"], "SELECT * FROM no_such_table;");
    assert_eq!(bad["tables"], serde_json::json!(["no_such_table"]));
    successes_are_clean(&ev);

    // psycopg (extended protocol): a Parse of a missing table (42P01) and a query
    // cancelled by a CancelRequest (57014).
    let (ev, _, _) = sql_events("postgres/pg-psycopg.pcap", "pgsql");
    assert_eq!(
        failures(&ev),
        [
            "SELECT relation \"missing_table\" does not exist | 42P01 -",
            "SELECT canceling statement due to user request | 57014 -",
        ]
    );
    successes_are_clean(&ev);
}

#[test]
fn mysql_failing_statements_carry_their_sqlstate_and_number() {
    // The mariadb client script: one SELECT on a missing table (ERR 1146 #42S02).
    let (ev, _, _) = sql_events("mysql/my-client.pcap", "mysql");
    // 14 requests; `SELECT 1; SELECT item FROM shop.orders` is two statements, two events.
    assert_eq!(ev.len(), 15, "{ev:?}");
    assert_eq!(ev[0]["verb"], "LOGIN");
    assert!(ev[0].get("error").is_none());
    assert_eq!(
        failures(&ev),
        ["SELECT Table 'shop.no_such_table' doesn't exist | 42S02 1146"]
    );
    let bad = ev.iter().find(|q| q.get("error").is_some()).unwrap();
    assert_eq!(bad["query"], "SELECT * FROM no_such_table");
    successes_are_clean(&ev);

    // DBD::MariaDB with server-side prepares: the prepare of a missing table fails.
    let (ev, _, _) = sql_events("mysql/my-prepare.pcap", "mysql");
    assert_eq!(
        failures(&ev),
        ["SELECT Table 'shop.missing_table' doesn't exist | 42S02 1146"]
    );
    successes_are_clean(&ev);
}
