//! HTTP/1, HTTP/2 (prior knowledge and h2c upgrades) and gRPC at replay level: the built
//! `palisade` binary over the recorded captures of tests/data/{http1,http2,grpc} (see each
//! record.sh), with `--log-all`. Every request the recording clients made must appear in
//! the `http` records exactly once (Suricata's `http` object: `http_method`, `url`,
//! `hostname` from the host or authority, `protocol`, `status`; for gRPC also Palisade's
//! `grpc` object with its service, method and grpc status); then request-level rules over
//! the same recordings give exactly the expected alerts.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn data(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(f)
}

struct Run {
    events: Vec<Value>,
    summary: Value,
}

/// Replays one capture with `--log-all`, events to a file and a JSON summary.
fn replay(capture: &str, policy: &Path, inventory: Option<&Path>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.arg("replay")
        .arg(root().join("tests/data").join(capture))
        .arg("--policy")
        .arg(policy);
    if let Some(inv) = inventory {
        c.arg("--inventory").arg(inv);
    }
    let out = c
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
    Run {
        events,
        summary: serde_json::from_slice(&out.stdout).unwrap(),
    }
}

fn of_type<'a>(r: &'a Run, t: &str) -> Vec<&'a Value> {
    r.events.iter().filter(|e| e["event_type"] == t).collect()
}

/// The event types of transaction records (one per request, named after its protocol
/// object, as in Suricata).
const TRANSACTION_TYPES: [&str; 6] = ["http", "dns", "tls", "pgsql", "mysql", "redis"];

/// Every transaction record, whatever its protocol, but for the records of interim
/// answers (see [`is_interim`]).
fn transactions(r: &Run) -> Vec<&Value> {
    r.events
        .iter()
        .filter(|e| TRANSACTION_TYPES.iter().any(|t| e["event_type"] == *t))
        .filter(|e| !is_interim(r, e))
        .collect()
}

/// The record of a request's interim `101` to `h2c`: written (as Suricata logs the HTTP/1
/// transaction before HTTP/2's stream 1) beside the request's final record, under the
/// same `tx_id`.
fn is_interim(r: &Run, e: &Value) -> bool {
    let key = |e: &Value| (e["flow_id"].clone(), e["tx_id"].clone());
    e["http"]["status"] == 101
        && r.events
            .iter()
            .any(|o| o["event_type"] == "http" && key(o) == key(e) && o["http"]["status"] != 101)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `o[k]` as text: `-` when the key is absent (a value no one knows is left out, never
/// written as `null`: an explicit null prints as `null` and matches nothing expected).
fn field(o: &Value, k: &str) -> String {
    o.get(k).map_or_else(|| "-".into(), s)
}

/// `client-port app_proto protocol METHOD url host=.. status=..` (+ ` grpc=svc/method:status`),
/// for each event of type `t` that has an `http` object, sorted (workers may interleave
/// flows).
fn requests(r: &Run, t: &str) -> Vec<String> {
    let mut v: Vec<String> = of_type(r, t)
        .iter()
        .filter_map(|e| Some((e, e.get("http")?)))
        .map(|(e, h)| {
            let mut line = format!(
                "{} {} {} {} {} host={} status={}",
                e["src_port"],
                field(e, "app_proto"),
                protocol(h),
                field(h, "http_method"),
                field(h, "url"),
                host(h),
                field(h, "status"),
            );
            if let Some(g) = e.get("grpc") {
                line += &format!(
                    " grpc={}/{}:{}",
                    field(g, "service"),
                    field(g, "method"),
                    field(g, "status")
                );
            }
            line
        })
        .collect();
    v.sort();
    v
}

/// `hostname[:http_port]`, the authority as the request named it.
fn host(h: &Value) -> String {
    match h.get("http_port") {
        Some(p) => format!("{}:{p}", field(h, "hostname")),
        None => field(h, "hostname"),
    }
}

/// The HTTP version as `HTTP/1.1`: HTTP/1 records carry `protocol`, HTTP/2 ones
/// `version: "2"`, as Suricata writes them.
fn protocol(h: &Value) -> String {
    match (h.get("protocol"), h.get("version")) {
        (Some(p), _) => s(p),
        (None, Some(v)) => format!("HTTP/{}", s(v)),
        (None, None) => "-".into(),
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Each alert as `action rule mode what` (the decision in Palisade's terms, its
/// `policy_verdict`), `what` being `METHOD url host` for HTTP, `service/method` for gRPC and
/// `flow` for a flow-level alert; in event order.
fn alerts(r: &Run) -> Vec<String> {
    of_type(r, "alert")
        .iter()
        .map(|e| {
            let what = if let Some(g) = e.get("grpc") {
                format!("{}/{}", field(g, "service"), field(g, "method"))
            } else if let Some(h) = e.get("http") {
                format!(
                    "{} {} {}",
                    field(h, "http_method"),
                    field(h, "url"),
                    host(h)
                )
            } else {
                "flow".into()
            };
            let v = &e["policy_verdict"];
            format!(
                "{} {} {} {what}",
                field(v, "action"),
                field(v, "rule"),
                field(v, "mode")
            )
        })
        .collect()
}

/// The summary agrees with the events: one transaction record per transaction (and one
/// per interim answer), each an `http` record (HTTP/1, HTTP/2 and gRPC alike), no anomaly.
fn consistent(r: &Run) {
    let tx = transactions(r).len() as u64;
    assert_eq!(r.summary["transactions"]["total"].as_u64(), Some(tx));
    let interim = of_type(r, "http")
        .into_iter()
        .filter(|e| is_interim(r, e))
        .count() as u64;
    assert_eq!(of_type(r, "http").len() as u64, tx + interim);
    assert!(
        of_type(r, "anomaly").is_empty(),
        "{:?}",
        of_type(r, "anomaly")
    );
    assert_eq!(r.summary["anomalies"], serde_json::json!({}));
}

#[test]
fn http1_every_request_is_logged_once_with_its_status() {
    let r = replay("http1/http1.pcap", &data("allow-all.yaml"), None);
    consistent(&r);
    assert_eq!(
        requests(&r, "http"),
        sorted(&[
            // One keep-alive connection: GET, HEAD (length declared, no body), a 404, a POST
            // with a JSON body, a GET with a query (kept as sent). curl --next sends the
            // Host header given only on the first request.
            "60076 http HTTP/1.1 GET /index.html host=orders.shop status=200",
            "60076 http HTTP/1.1 HEAD /api/orders/7 host=10.99.11.2 status=200",
            "60076 http HTTP/1.1 GET /missing host=10.99.11.2 status=404",
            "60076 http HTTP/1.1 POST /api/orders host=10.99.11.2 status=201",
            "60076 http HTTP/1.1 GET /api/orders/8?verbose=1&x=%2e host=10.99.11.2 status=200",
            // A 110 KB chunked upload.
            "60084 http HTTP/1.1 POST /upload/chunked host=orders.shop status=201",
            // A 120 KB body, then a chunked response on the same connection.
            "60092 http HTTP/1.1 GET /big.bin host=orders.shop status=200",
            "60092 http HTTP/1.1 GET /ssi.html host=10.99.11.2 status=200",
            // Expect: 100-continue: the 100 is interim, the 201 answers.
            "60100 http HTTP/1.1 POST /upload/expect host=orders.shop status=201",
            // HTTP/1.0 with a length, then close-delimited.
            "60108 http HTTP/1.0 GET /index.html host=orders.shop status=200",
            "60112 http HTTP/1.0 GET /ssi.html host=orders.shop status=200",
            // curl --http2 asks nginx to upgrade; nginx answers in HTTP/1.1.
            "60126 http HTTP/1.1 GET /index.html host=10.99.11.2 status=200",
            // The same against nghttpx: 101, then HTTP/2. The request is stream 1: a record
            // of its interim 101 (as Suricata logs the HTTP/1 transaction), then one with
            // the HTTP/2 response's status.
            "38486 http HTTP/1.1 GET /index.html host=10.99.11.2:8082 status=101",
            "38486 http HTTP/1.1 GET /index.html host=10.99.11.2:8082 status=200",
        ])
    );
    // The user agents as sent (the two --http2 commands and the second --next of
    // connection 60092 do not set one).
    let uas: Vec<String> = transactions(&r)
        .iter()
        .map(|e| field(&e["http"], "http_user_agent"))
        .collect();
    assert_eq!(uas.iter().filter(|u| *u == "palisade-test/1").count(), 10);
    assert_eq!(uas.iter().filter(|u| *u == "curl/7.88.1").count(), 3);
    // `http_content_type` is the response's, as in Suricata (the upload was sent as
    // application/octet-stream; nginx answers it in text/plain).
    let post = of_type(&r, "http")
        .into_iter()
        .find(|e| e["http"]["url"] == "/upload/chunked")
        .unwrap();
    assert_eq!(post["http"]["http_content_type"], "text/plain");
}

#[test]
fn http2_every_stream_is_logged_once_with_its_status() {
    let r = replay("http2/h2.pcap", &data("allow-all.yaml"), None);
    consistent(&r);
    let mut expected = vec![
        // nghttp, prior knowledge: four URLs as concurrent streams on one connection.
        "60462 http2 HTTP/2 GET /index.html host=10.99.22.2:8080 status=200",
        "60462 http2 HTTP/2 GET /big.bin host=10.99.22.2:8080 status=200",
        "60462 http2 HTTP/2 GET /missing host=10.99.22.2:8080 status=404",
        "60462 http2 HTTP/2 GET /api/empty host=10.99.22.2:8080 status=200",
        // A POST with a body and a 20 KB header (HEADERS + CONTINUATION).
        "60476 http2 HTTP/2 POST /api/orders host=10.99.22.2:8080 status=200",
        // curl with prior knowledge: a GET, then a POST on another connection.
        "60480 http2 HTTP/2 GET /index.html host=10.99.22.2:8080 status=200",
        "60484 http2 HTTP/2 POST /api/orders host=10.99.22.2:8080 status=200",
        // nghttp -u: HTTP/1.1 Upgrade to h2c through nghttpx; the flow was detected as
        // HTTP/1, the request is answered on HTTP/2 stream 1 (its interim 101 first).
        "35310 http HTTP/1.1 GET /index.html host=10.99.22.2:8081 status=101",
        "35310 http HTTP/1.1 GET /index.html host=10.99.22.2:8081 status=200",
    ];
    // nghttp -m 5: the same URL five times at once.
    expected.extend(["60468 http2 HTTP/2 GET /index.html host=10.99.22.2:8080 status=200"; 5]);
    assert_eq!(requests(&r, "http"), sorted(&expected));
    let uas: Vec<String> = transactions(&r)
        .iter()
        .map(|e| field(&e["http"], "http_user_agent"))
        .collect();
    assert_eq!(uas.iter().filter(|u| *u == "nghttp2/1.52.0").count(), 11);
    assert!(uas.contains(&"curl-test/1.0".to_string()));
    assert!(uas.contains(&"curl/7.88.1".to_string()));
}

#[test]
fn grpc_every_call_is_logged_once_with_its_grpc_status() {
    let r = replay("grpc/grpc.pcap", &data("allow-all.yaml"), None);
    consistent(&r);
    // One channel: unary Say, server-streaming Count, Find failing with NOT_FOUND (5), and
    // a gzip-compressed Say. HTTP status 200 for all: gRPC errors travel in trailers.
    let h = "host=10.99.23.2:50051 status=200";
    assert_eq!(
        requests(&r, "http"),
        sorted(&[
            &format!("45206 http2 HTTP/2 POST /demo.v1.Echo/Say {h} grpc=demo.v1.Echo/Say:0"),
            &format!("45206 http2 HTTP/2 POST /demo.v1.Echo/Count {h} grpc=demo.v1.Echo/Count:0"),
            &format!("45206 http2 HTTP/2 POST /demo.v1.Echo/Find {h} grpc=demo.v1.Echo/Find:5"),
            &format!("45206 http2 HTTP/2 POST /demo.v1.Echo/Say {h} grpc=demo.v1.Echo/Say:0"),
        ])
    );
    // `http_content_type` is the response's, as in Suricata; a gRPC response's header
    // block is not kept past its trailers, so the key is left out rather than guessed.
    for e in of_type(&r, "http") {
        assert!(e["http"].get("http_content_type").is_none(), "{e}");
    }
}

/// Each transaction record's decision (`policy_verdict`): `action rule METHOD url` or
/// `action rule service/method`.
fn judged(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = transactions(r)
        .iter()
        .map(|e| {
            let what = if let Some(g) = e.get("grpc") {
                format!("{}/{}", field(g, "service"), field(g, "method"))
            } else {
                format!(
                    "{} {}",
                    field(&e["http"], "http_method"),
                    field(&e["http"], "url")
                )
            };
            format!(
                "{} {} {what}",
                field(&e["policy_verdict"], "action"),
                field(&e["policy_verdict"], "rule")
            )
        })
        .collect();
    v.sort();
    v
}

fn web_policy(protect: bool) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(data("web-policy.yaml")).unwrap();
    let text = if protect {
        let t = text.replace(
            "web:     {selector: {app: web}, mode: monitor}",
            "web:     {selector: {app: web}}",
        );
        assert_ne!(t, text);
        t
    } else {
        text
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.yaml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn get_allowed_post_to_orders_denied_over_http1_and_http2() {
    // The recordings hold no DELETE: the rule under test denies POST on /api/orders while
    // GET/HEAD everywhere and POST under /upload/ are allowed.
    let (_d, policy) = web_policy(false);
    let inv = data("web-inventory.yaml");
    let r = replay("http1/http1.pcap", &policy, Some(&inv));
    assert_eq!(
        alerts(&r),
        ["deny no-order-post monitor POST /api/orders 10.99.11.2"]
    );
    let j = judged(&r);
    assert_eq!(j.len(), 13, "{j:?}");
    assert_eq!(
        j.iter()
            .filter(|x| x.starts_with("allow web-read "))
            .count(),
        12
    );
    assert!(j.contains(&"deny no-order-post POST /api/orders".to_string()));
    assert!(j.contains(&"allow web-read POST /upload/chunked".to_string()));
    assert!(j.contains(&"allow web-read HEAD /api/orders/7".to_string()));
    // The h2c-upgraded request is judged as HTTP too.
    let up = of_type(&r, "http")
        .into_iter()
        .find(|e| e["src_port"] == 38486)
        .unwrap();
    assert_eq!(up["policy_verdict"]["rule"], "web-read");

    let r = replay("http2/h2.pcap", &policy, Some(&inv));
    assert_eq!(
        alerts(&r),
        [
            "deny no-order-post monitor POST /api/orders 10.99.22.2:8080",
            "deny no-order-post monitor POST /api/orders 10.99.22.2:8080",
        ]
    );
    let j = judged(&r);
    assert_eq!(j.len(), 13, "{j:?}");
    assert_eq!(
        j.iter()
            .filter(|x| *x == "deny no-order-post POST /api/orders")
            .count(),
        2
    );
    assert_eq!(
        j.iter()
            .filter(|x| x.starts_with("allow web-read GET "))
            .count(),
        11
    );
}

#[test]
fn in_protect_mode_the_denied_post_resets_its_connection() {
    let (_d, policy) = web_policy(true);
    let r = replay(
        "http1/http1.pcap",
        &policy,
        Some(&data("web-inventory.yaml")),
    );
    assert_eq!(
        alerts(&r),
        ["deny no-order-post protect POST /api/orders 10.99.11.2"]
    );
    assert!(r.summary["packet_verdicts"]["reset"].as_u64().unwrap() >= 1);
    // The keep-alive connection is cut at the POST: the GET curl sent after it never
    // reaches the server, and the POST is logged without a response.
    let on_60076: Vec<String> = requests(&r, "http")
        .into_iter()
        .filter(|l| l.starts_with("60076 "))
        .collect();
    assert_eq!(
        on_60076,
        sorted(&[
            "60076 http HTTP/1.1 GET /index.html host=orders.shop status=200",
            "60076 http HTTP/1.1 HEAD /api/orders/7 host=10.99.11.2 status=200",
            "60076 http HTTP/1.1 GET /missing host=10.99.11.2 status=404",
            "60076 http HTTP/1.1 POST /api/orders host=10.99.11.2 status=-",
        ])
    );
    // The other connections are untouched.
    assert_eq!(transactions(&r).len(), 12);
    // The POST's alert says it was blocked, with Suricata's IPS verdict: dropped, and the
    // connection reset both ways.
    let post = of_type(&r, "alert")[0];
    assert_eq!(post["alert"]["action"], "blocked");
    assert_eq!(
        post["verdict"],
        serde_json::json!({"action": "drop", "reject-target": "both", "reject": ["tcp-reset"]})
    );
}

#[test]
fn one_grpc_method_allowed_one_denied_one_left_to_the_mode() {
    let r = replay(
        "grpc/grpc.pcap",
        &data("web-policy.yaml"),
        Some(&data("web-inventory.yaml")),
    );
    assert_eq!(
        judged(&r),
        sorted(&[
            "allow echo-say demo.v1.Echo/Say",
            "allow echo-say demo.v1.Echo/Say",
            "alert default demo.v1.Echo/Count",
            "deny echo-no-find demo.v1.Echo/Find",
        ])
    );
    assert_eq!(
        alerts(&r),
        [
            // An `app: grpc` allow rule admits the flow (classified `http2`); Count, which no
            // rule allows, falls to monitor mode's alert on its own.
            "alert default monitor demo.v1.Echo/Count",
            "deny echo-no-find monitor demo.v1.Echo/Find",
        ]
    );
    let find = of_type(&r, "alert")
        .into_iter()
        .find(|e| e["grpc"]["method"] == "Find")
        .unwrap();
    // Severity high is Suricata's 1.
    assert_eq!(find["alert"]["severity"], 1);
    assert_eq!(find["src_workload"]["name"], "echo-client");
    assert_eq!(find["dest_workload"]["group"], "echo");
}
