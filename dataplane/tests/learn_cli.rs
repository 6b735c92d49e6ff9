//! `palisade learn` on the recorded sessions of real clients and servers: the proposal
//! loads, names what was seen, and, switched to protect mode, admits every flow and
//! transaction it was learned from (no alert, no drop) while still refusing other traffic.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn data(rel: &str) -> PathBuf {
    root().join("tests/data").join(rel)
}

fn inventory(name: &str) -> PathBuf {
    root().join("dataplane/tests/data").join(name)
}

fn learn(captures: &[PathBuf], inv: Option<&Path>, out: &Path) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.arg("learn").args(captures).arg("-o").arg(out);
    if let Some(i) = inv {
        c.arg("--inventory").arg(i);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "learn failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Replays `capture` under `policy` (switched to protect mode); returns the summary.
fn replay_protect(capture: &Path, policy: &Path, inv: Option<&Path>, dir: &Path) -> Value {
    let text = std::fs::read_to_string(policy).unwrap();
    let protect = text.replace("mode: monitor", "mode: protect");
    assert_ne!(protect, text);
    let p = dir.join("protect.yaml");
    std::fs::write(&p, protect).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.arg("replay")
        .arg(capture)
        .arg("--policy")
        .arg(&p)
        .args(["--format", "json", "--events", "none"]);
    if let Some(i) = inv {
        c.arg("--inventory").arg(i);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn assert_all_admitted(summary: &Value, what: &str) {
    assert_admitted_but_held(summary, what, 0);
}

/// Every flow admitted, and every transaction but the `held` ones the learner held for
/// review (which the proposal must refuse).
fn assert_admitted_but_held(summary: &Value, what: &str, held: u64) {
    if held > 0 {
        let denied: u64 = summary["transactions"]["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["action"] != "allow")
            .map(|v| v["transactions"].as_u64().unwrap())
            .sum();
        // A refused request resets its flow: later held ones on it are never seen.
        assert!(
            (1..=held).contains(&denied),
            "{what}: {denied} denied: {summary:#}"
        );
        for v in summary["verdicts"].as_array().unwrap() {
            assert_eq!(v["action"], "allow", "{what}: {v}");
        }
        return;
    }
    assert_eq!(summary["alerts"], 0, "{what}: {summary:#}");
    assert_eq!(summary["packet_verdicts"]["drop"], 0, "{what}: {summary:#}");
    for v in summary["transactions"]["verdicts"].as_array().unwrap() {
        assert_eq!(v["action"], "allow", "{what}: {v}");
    }
    for v in summary["verdicts"].as_array().unwrap() {
        assert_eq!(v["action"], "allow", "{what}: {v}");
    }
}

#[test]
fn a_learned_policy_admits_the_database_and_infrastructure_sessions_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("learned.yaml");
    let inv = inventory("l7-inventory.yaml");
    let caps = [
        data("postgres/pg-psql.pcap"),
        data("postgres/pg-psycopg.pcap"),
        data("mysql/my-client.pcap"),
        data("redis/redis.pcap"),
        data("dns/dns-udp.pcap"),
        data("dns/dns-tcp.pcap"),
        data("tls/tls.pcap"),
    ];
    let said = learn(&caps, Some(&inv), &out);
    assert!(said.starts_with("learned "), "{said}");
    let text = std::fs::read_to_string(&out).unwrap();
    for want in [
        r#"- id: "orders-db-postgres-5432""#,
        r#"- id: "orders-db-mysql-3306""#,
        r#"- id: "worker-redis-redis-6379""#,
        r#"- id: "worker-dns-dns-53""#,
        r#"- id: "worker-tls-web-tls-4433""#,
        r#"users: ["shop"]"#,
        // redis-cli's FLUSHALL, CONFIG and DEBUG look like probing: held, not allowed.
        "# review: probing? a command that takes over or wipes the server redis FLUSHALL from worker to redis:6379 (once)",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    // `palisade policy check` agrees the proposal is clean.
    let check = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["policy", "check"])
        .arg(&out)
        .arg("--inventory")
        .arg(&inv)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(
        said.contains("13 transaction(s) or flow(s) held for review"),
        "{said}"
    );
    assert!(!text.contains(r#""FLUSHALL""#), "{text}");
    for c in &caps {
        let s = replay_protect(c, &out, Some(&inv), dir.path());
        let held = if c.ends_with("redis/redis.pcap") {
            13
        } else {
            0
        };
        assert_admitted_but_held(&s, &c.display().to_string(), held);
    }
}

#[test]
fn a_learned_policy_admits_the_web_sessions_it_saw_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("learned.yaml");
    let inv = inventory("web-inventory.yaml");
    let caps = [
        data("http1/http1.pcap"),
        data("http2/h2.pcap"),
        data("grpc/grpc.pcap"),
    ];
    learn(&caps, Some(&inv), &out);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("http:"), "{text}");
    assert!(text.contains("grpc:"), "{text}");
    for c in &caps {
        let s = replay_protect(c, &out, Some(&inv), dir.path());
        assert_all_admitted(&s, &c.display().to_string());
    }
    // Learned from the web sessions only, it refuses the database sessions.
    let s = replay_protect(&data("redis/redis.pcap"), &out, None, dir.path());
    assert!(s["packet_verdicts"]["drop"].as_u64().unwrap() > 0, "{s:#}");
}

#[test]
fn without_an_inventory_peers_are_grouped_by_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("learned.yaml");
    learn(&[data("redis/redis.pcap")], None, &out);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(r#""unknown": {cidrs: ["#), "{text}");
    assert!(
        text.contains(r#"- id: "unknown-unknown-redis-6379""#),
        "{text}"
    );
    let s = replay_protect(&data("redis/redis.pcap"), &out, None, dir.path());
    assert_admitted_but_held(&s, "redis without inventory", 13);
}

#[test]
fn a_capture_that_cannot_be_read_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, b"not a capture at all").unwrap();
    let out = dir.path().join("learned.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("learn")
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.pcap"), "{err}");
    assert!(!out.exists());
}
