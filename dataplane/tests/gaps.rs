//! Captures with a real TCP gap, replayed by the built `palisade`: one client data segment
//! of a recorded connection deleted with `editcap` (`tests/data/http1/http1-gap.pcap`,
//! `tests/data/redis/redis-gap.pcap`; see tests/data/README.md), as a tap or a capture
//! loses a packet the server got.
//!
//! The server's acknowledgement of the lost bytes, followed by the client's next segment,
//! makes them a gap at once (not at the end of the connection); the parser resynchronises
//! on the next request, so the requests after the gap are reported and judged by their
//! rules. The lost bytes may have held requests no rule saw, so the gap itself is left to
//! the policy's `onUninspectable`: `deny` (protect mode's default) resets the connection
//! there; `alert` lets it go on, judged request by request.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn capture(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(f)
}

struct Run {
    events: Vec<Value>,
}

/// Replays `capture` under the policy `yaml` with `--log-all`.
fn replay(capture: &Path, yaml: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, yaml).unwrap();
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(capture)
        .arg("--policy")
        .arg(&policy)
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
    let events = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run { events }
}

fn of_type<'a>(r: &'a Run, t: &str) -> Vec<&'a Value> {
    r.events.iter().filter(|e| e["event_type"] == t).collect()
}

/// `METHOD url status verdict-action rule` of each `http` record, in order.
fn http(r: &Run) -> Vec<String> {
    of_type(r, "http")
        .iter()
        .map(|e| {
            let h = &e["http"];
            format!(
                "{} {} {} {} {}",
                h["http_method"].as_str().unwrap_or("-"),
                h["url"].as_str().unwrap_or("-"),
                h["status"],
                e["policy_verdict"]["action"].as_str().unwrap_or("-"),
                e["policy_verdict"]["rule"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

/// `COMMAND key verdict-action rule` of each `redis` record, in order.
fn redis(r: &Run) -> Vec<String> {
    of_type(r, "redis")
        .iter()
        .map(|e| {
            let c = &e["redis"];
            format!(
                "{} {} {} {}",
                c["command"].as_str().unwrap_or("-"),
                c["key"].as_str().unwrap_or("-"),
                e["policy_verdict"]["action"].as_str().unwrap_or("-"),
                e["policy_verdict"]["rule"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

/// The `onUninspectable` alerts: `(cause, detail, decision)`.
fn uninspectable_alerts(r: &Run) -> Vec<(String, String, String)> {
    of_type(r, "alert")
        .iter()
        .filter(|e| e["alert"]["category"] == "uninspectable")
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
            (
                s(&e["uninspectable"]["cause"]),
                s(&e["uninspectable"]["detail"]),
                s(&e["policy_verdict"]["action"]),
            )
        })
        .collect()
}

/// Signatures of the alerts a rule raised on a request.
fn rule_alerts(r: &Run) -> Vec<String> {
    of_type(r, "alert")
        .iter()
        .filter(|e| e["alert"]["category"] == "segmentation")
        .map(|e| e["alert"]["signature"].as_str().unwrap_or("-").to_string())
        .collect()
}

/// Rules over the recorded keep-alive connection (GET /index.html, HEAD /api/orders/7,
/// GET /missing, POST /api/orders, GET /api/orders/8?...): reads and the POST are allowed,
/// order 8 is not. `extra` goes under `spec`.
fn http_policy(extra: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {{name: gaps-http}}
spec:
  mode: protect
  defaultAction: deny
{extra}  groups: {{}}
  rules:
    - id: web
      from: ["*"]
      to: ["*"]
      app: http
      http:
        - {{methods: [GET, HEAD, POST], paths: ["/*"]}}
      action: allow
    - id: no-order-8
      from: ["*"]
      to: ["*"]
      app: http
      http: [{{methods: [GET], paths: ["/api/orders/8"]}}]
      action: deny
"#
    )
}

/// Redis: everything allowed but `FLUSHALL`.
fn redis_policy(extra: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {{name: gaps-redis}}
spec:
  mode: protect
  defaultAction: deny
{extra}  groups: {{}}
  rules:
    - id: cache
      from: ["*"]
      to: ["*"]
      app: redis
      action: allow
    - id: no-flush
      from: ["*"]
      to: ["*"]
      app: redis
      redis: [{{commands: [FLUSHALL]}}]
      action: deny
"#
    )
}

#[test]
fn http1_requests_after_a_lost_segment_are_reported_and_judged() {
    // The recording without the loss: five requests, no gap.
    let whole = replay(&capture("http1/http1.pcap"), &http_policy(""));
    assert!(
        uninspectable_alerts(&whole).is_empty(),
        "{:?}",
        uninspectable_alerts(&whole)
    );

    // `GET /missing` lost; onUninspectable: alert.
    let r = replay(
        &capture("http1/http1-gap.pcap"),
        &http_policy("  onUninspectable: alert\n"),
    );
    assert_eq!(
        http(&r),
        [
            "GET /index.html 200 allow web",
            "HEAD /api/orders/7 200 allow web",
            // After the gap: found again, paired with its response, judged by its rule.
            "POST /api/orders 201 allow web",
            "GET /api/orders/8?verbose=1&x=%2e null deny no-order-8",
        ]
    );
    assert_eq!(
        uninspectable_alerts(&r),
        [("gap".into(), "gap_resync".into(), "alert".into())]
    );
    assert_eq!(
        rule_alerts(&r),
        ["palisade no-order-8 unknown->unknown: GET /api/orders/8?verbose=1&x=%2e"]
    );

    // The same under protect mode's default (deny): the connection is reset where the gap
    // was found, with the segment that showed it; nothing after is judged or let through.
    let r = replay(&capture("http1/http1-gap.pcap"), &http_policy(""));
    assert_eq!(
        uninspectable_alerts(&r),
        [("gap".into(), "gap_resync".into(), "deny".into())]
    );
    let h = http(&r);
    assert!(h.iter().all(|l| !l.contains("/api/orders/8")), "{h:?}");
    assert!(h.iter().all(|l| !l.contains("/missing")), "{h:?}");
    let flows = of_type(&r, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["policy_verdict"]["action"], "deny");
    assert_eq!(flows[0]["uninspectable"]["cause"], "gap");
}

#[test]
fn redis_commands_after_a_lost_segment_are_reported_and_judged() {
    // `SET greeting hello` lost; onUninspectable: alert.
    let r = replay(
        &capture("redis/redis-gap.pcap"),
        &redis_policy("  onUninspectable: alert\n"),
    );
    let cmds = redis(&r);
    assert!(cmds.iter().all(|c| !c.starts_with("SET ")), "{cmds:?}");
    assert_eq!(
        cmds,
        [
            "COMMAND - allow cache",
            "COMMAND - allow cache",
            "AUTH - allow cache",
            // After the gap: the next command is found again, and every later one judged.
            "GET greeting allow cache",
            "INCR greeting allow cache",
            "DEL nothing allow cache",
            "MGET greeting allow cache",
            "EXPIRE greeting allow cache",
            "HSET user:1 allow cache",
            "HGET user:1 allow cache",
            "LPUSH q allow cache",
            "LRANGE q allow cache",
            "CONFIG - allow cache",
            "FLUSHALL - deny no-flush",
        ]
    );
    // The replies after the gap still pair (a lost command's reply answers nothing seen).
    let incr = of_type(&r, "redis")
        .into_iter()
        .find(|e| e["redis"]["command"] == "INCR")
        .unwrap();
    assert_eq!(
        incr["redis"]["error"],
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        uninspectable_alerts(&r),
        [("gap".into(), "gap_resync".into(), "alert".into())]
    );
    assert_eq!(
        rule_alerts(&r),
        ["palisade no-flush unknown->unknown: FLUSHALL"]
    );

    // Protect mode's default: reset at the gap.
    let r = replay(&capture("redis/redis-gap.pcap"), &redis_policy(""));
    assert_eq!(
        uninspectable_alerts(&r),
        [("gap".into(), "gap_resync".into(), "deny".into())]
    );
    let cmds = redis(&r);
    assert!(cmds.iter().all(|c| !c.starts_with("INCR ")), "{cmds:?}");
    assert!(rule_alerts(&r).is_empty());
}
