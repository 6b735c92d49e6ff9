//! Request-level rules judged on recorded sessions of real clients and servers
//! (tests/data/<proto>/, see each README): exactly the expected alerts, bypass attempts
//! included.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Replays one capture; returns alerts as `action rule mode proto:what` and the summary.
fn alerts(capture: &str, policy_text: Option<&str>) -> (Vec<String>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let policy = match policy_text {
        Some(t) => {
            let p = dir.path().join("policy.yaml");
            std::fs::write(&p, t).unwrap();
            p
        }
        None => root().join("dataplane/tests/data/l7-policy.yaml"),
    };
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(root().join("tests/data").join(capture))
        .arg("--policy")
        .arg(&policy)
        .arg("--inventory")
        .arg(root().join("dataplane/tests/data/l7-inventory.yaml"))
        .arg("--events")
        .arg(&events)
        .args(["--format", "json"])
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
        if e["event_type"] != "alert" {
            continue;
        }
        // PostgreSQL's records carry Suricata's `pgsql` object beside Palisade's `sql`;
        // MySQL's only `sql`.
        assert_eq!(e.get("pgsql").is_some(), e["app_proto"] == "pgsql", "{e}");
        let what = if let Some(q) = e.get("sql") {
            let t: Vec<&str> = q["tables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            format!("{} [{}]", q["verb"].as_str().unwrap(), t.join(","))
        } else if let Some(r) = e.get("redis") {
            r["command"].as_str().unwrap().to_string()
        } else if let Some(d) = e.get("dns") {
            format!(
                "{} {}",
                d["rrname"].as_str().unwrap(),
                d["rrtype"].as_str().unwrap()
            )
        } else if let Some(t) = e.get("tls") {
            // No SNI: the key is left out (never `null`).
            let sni = t.get("sni").map(|s| s.as_str().unwrap());
            format!("sni={}", sni.unwrap_or("-"))
        } else {
            "flow".to_string()
        };
        let verdict = &e["policy_verdict"];
        v.push(format!(
            "{} {} {} {}",
            verdict["action"].as_str().unwrap(),
            verdict["rule"].as_str().unwrap(),
            verdict["mode"].as_str().unwrap(),
            what
        ));
    }
    let summary = serde_json::from_slice(&out.stdout).unwrap();
    (v, summary)
}

#[test]
fn postgres_select_insert_on_orders_only() {
    let (a, _) = alerts("postgres/pg-psql.pcap", None);
    assert_eq!(
        a,
        [
            // `SELECT 1 ; SELECT ... JOIN order_items`: each statement is judged on its own,
            // and only the second falls outside the allow.
            "alert default monitor SELECT [orders,order_items]",
            // A CTE reading customers.
            "alert default monitor SELECT [orders,customers]",
            "alert default monitor INSERT [order_items,orders]",
            "alert default monitor UPDATE [orders,customers]",
            "alert default monitor DELETE [order_items,orders]",
            "alert default monitor SELECT [no_such_table]",
            "alert default monitor COPY [customers]",
            "alert default monitor COPY [orders]",
        ]
    );
    // Allowed, so absent: the login, `SELECT ... FROM public.orders`, and a SELECT whose
    // dollar-quoted string contains `DROP TABLE orders` (data, not a statement).
}

#[test]
fn mysql_select_insert_on_orders_only() {
    let (a, _) = alerts("mysql/my-client.pcap", None);
    assert_eq!(
        a,
        [
            "alert default monitor SELECT [orders,order_items]",
            "alert default monitor INSERT [order_items,orders]",
            "alert default monitor UPDATE [orders]",
            "alert default monitor SELECT [no_such_table]",
            "alert default monitor USE []",
            // An executable comment does not hide the table.
            "alert default monitor SELECT [old_orders]",
            "alert default monitor PREPARE []",
            "alert default monitor SET []",
            "alert default monitor EXECUTE []",
            "alert default monitor DEALLOCATE []",
        ]
    );
}

#[test]
fn redis_flushall_and_config_are_denied() {
    let (a, _) = alerts("redis/redis.pcap", None);
    assert_eq!(
        a,
        [
            "deny no-flush monitor CONFIG",
            "deny no-flush monitor FLUSHALL",
            "deny no-flush monitor CONFIG"
        ]
    );
}

#[test]
fn dns_names_outside_the_allowed_zone_alert() {
    let (a, _) = alerts("dns/dns-udp.pcap", None);
    assert_eq!(a, ["alert default monitor x MX"]);
    let (a, _) = alerts("dns/dns-tcp.pcap", None);
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn tls_sni_outside_the_allowed_names_alerts() {
    let (a, _) = alerts("tls/tls.pcap", None);
    assert_eq!(
        a,
        [
            "alert default monitor sni=shop.test",
            "alert default monitor sni=-"
        ]
    );
}

#[test]
fn in_protect_mode_the_first_denied_statement_resets_the_session() {
    let text = std::fs::read_to_string(root().join("dataplane/tests/data/l7-policy.yaml")).unwrap();
    let protect = text.replace(
        "db:     {selector: {app: db}, mode: monitor}",
        "db:     {selector: {app: db}}",
    );
    assert_ne!(protect, text);
    let (a, summary) = alerts("postgres/pg-psql.pcap", Some(&protect));
    assert_eq!(a, ["deny default protect SELECT [orders,order_items]"]);
    assert!(summary["packet_verdicts"]["reset"].as_u64().unwrap() >= 1);
    assert!(summary["packet_verdicts"]["drop"].as_u64().unwrap() >= 1);
}

/// `replay --log-all` on the psql session: each statement of a simple query that holds
/// two is its own event with its own text; the alert names the statement that was denied.
#[test]
fn each_statement_of_a_request_is_its_own_event() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(root().join("tests/data/postgres/pg-psql.pcap"))
        .arg("--policy")
        .arg(root().join("dataplane/tests/data/l7-policy.yaml"))
        .arg("--inventory")
        .arg(root().join("dataplane/tests/data/l7-inventory.yaml"))
        .arg("--events")
        .arg(&events)
        .arg("--log-all")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let join = "SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id";
    let mut seen = Vec::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let Some(q) = e.get("sql") else { continue };
        assert!(e["pgsql"].is_object(), "{line}");
        let query = q["query"].as_str().unwrap_or_default();
        if query == "SELECT 1" || query == join {
            let tables: Vec<&str> = q["tables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            seen.push(format!(
                "{} {} {} [{}] {}",
                e["event_type"].as_str().unwrap(),
                e["policy_verdict"]["action"].as_str().unwrap(),
                q["verb"].as_str().unwrap(),
                tables.join(","),
                query
            ));
        }
        // No event joins the two statements any more.
        assert!(!q["verb"].as_str().unwrap().contains(';'), "{line}");
    }
    assert_eq!(
        seen,
        [
            format!("alert alert SELECT [orders,order_items] {join}"),
            "pgsql allow SELECT [] SELECT 1".to_string(),
            format!("pgsql alert SELECT [orders,order_items] {join}"),
        ]
    );
}
