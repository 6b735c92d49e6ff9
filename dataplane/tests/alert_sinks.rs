//! `palisade replay --alert-sink`: a CI run's denials reach a webhook before replay exits,
//! a dead receiver is reported rather than waited on for ever, and bad sink options are
//! bad input (exit 2) that names the option.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn replay(args: &[&str], dir: &Path) -> Output {
    let data = root().join("tests/data/evasion");
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(data.join("http1-leading-empty-lines.pcap"))
        .arg("--policy")
        .arg(data.join("deny.yaml"))
        .arg("--events")
        .arg(dir.join("eve.json"))
        .args(args)
        .output()
        .expect("run palisade")
}

/// What the receiver got: (Content-Type, body) of each POST.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A one-request-per-connection HTTP receiver on loopback: each POST body is kept with
/// its Content-Type, and answered 200.
fn receiver() -> (u16, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let (mut len, mut ctype) = (0usize, String::new());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /ci-hook "), "{line}");
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (k, v) = l.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "content-type" => ctype = v.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            g.lock()
                .unwrap()
                .push((ctype, String::from_utf8(body).unwrap()));
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
        }
    });
    (port, got)
}

#[test]
fn replay_delivers_its_alerts_to_a_webhook_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = receiver();
    let url = format!("http://127.0.0.1:{port}/ci-hook");
    let out = replay(&["--alert-sink", &url, "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The process has exited: whatever arrived, arrived before that.
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one batch: {bodies:?}");
    let (ctype, body) = &bodies[0];
    assert_eq!(ctype, "application/json");
    let arr: serde_json::Value = serde_json::from_str(body).unwrap();
    let arr = arr.as_array().expect("a JSON array");
    assert!(!arr.is_empty());
    assert!(arr.iter().all(|r| r["event_type"] == "alert"), "{body}");
    // Exactly the alert lines of the event file, in order.
    let eve = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
    let alerts: Vec<serde_json::Value> = eve
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event_type"] == "alert")
        .collect();
    assert_eq!(arr, &alerts);
    assert!(
        arr.iter()
            .any(|r| r["policy_verdict"]["rule"] == "deny-admin" && r["http"]["url"] == "/admin"),
        "{body}"
    );
    // The summary says what was delivered.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sinks = summary["alert_sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), 1);
    assert_eq!(sinks[0]["sink"], url);
    assert_eq!(sinks[0]["sent"], alerts.len());
    assert_eq!(sinks[0]["failed"], 0);
    assert_eq!(sinks[0]["dropped"], 0);
    assert_eq!(sinks[0]["undelivered"], 0);
    assert_eq!(summary["alert_rate_suppressed"], 0);
}

#[test]
fn replay_reports_a_dead_receiver_and_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/ci-hook");
    let started = Instant::now();
    let out = replay(&["--alert-sink", &url], dir.path());
    // Four tries over 3.5 s, well within the 10 s flush deadline.
    assert!(started.elapsed() < Duration::from_secs(12));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("alert sink "))
        .unwrap_or_else(|| panic!("no sink line in the summary:\n{text}"));
    assert!(
        line.starts_with(&format!("alert sink {url}: 0 sent, ")) && !line.contains(" 0 failed"),
        "{line}"
    );
}

#[test]
fn the_rate_limit_is_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = receiver();
    let url = format!("http://127.0.0.1:{port}/ci-hook");
    let out = replay(
        &[
            "--alert-sink",
            &url,
            "--alert-rate",
            "1",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let eve = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
    let alerts = eve
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .count() as u64;
    let sent = summary["alert_sinks"][0]["sent"].as_u64().unwrap();
    let suppressed = summary["alert_rate_suppressed"].as_u64().unwrap();
    // Every alert was either sent or suppressed; a summary record was sent when any was.
    let summaries = u64::from(suppressed > 0);
    assert_eq!(sent, alerts - suppressed + summaries, "{summary}");
    let bodies = got.lock().unwrap().clone();
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .flat_map(|(_, b)| serde_json::from_str::<Vec<serde_json::Value>>(b).unwrap())
        .collect();
    assert_eq!(records.len() as u64, sent);
    if suppressed > 0 {
        let s = records
            .iter()
            .find(|r| r["event_type"] == "alert_summary")
            .expect("a summary record");
        assert_eq!(s["alert_summary"]["suppressed"], suppressed);
        assert_eq!(s["alert_summary"]["rate_limit"], 1);
    }
}

#[test]
fn bad_sink_options_are_bad_input_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--alert-sink", "ftp://example.org/"], "--alert-sink"),
        (&["--alert-sink", "syslog://host:99999"], "not a port"),
        (
            &["--alert-sink", "gopher://user:pa55word@h/"],
            "unknown scheme",
        ),
        (&["--alert-rate", "5"], "--alert-sink"),
        (
            &[
                "--alert-sink",
                "syslog://127.0.0.1:514",
                "--alert-rate",
                "0",
            ],
            "--alert-rate",
        ),
        (
            &[
                "--alert-sink",
                "https://127.0.0.1/",
                "--alert-sink-ca",
                "/nonexistent/ca.pem",
            ],
            "--alert-sink-ca /nonexistent/ca.pem",
        ),
        (
            &[
                "--alert-sink",
                "http://127.0.0.1/",
                "--alert-sink-ca",
                "/etc/hostname",
            ],
            "no https:// --alert-sink",
        ),
    ];
    for (args, says) in cases {
        let out = replay(args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("pa55word"), "{err}");
    }
    // A file that is not a CA bundle.
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let out = replay(
        &[
            "--alert-sink",
            "https://127.0.0.1/",
            "--alert-sink-ca",
            bad.to_str().unwrap(),
        ],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--alert-sink-ca") && err.contains("no PEM certificate"),
        "{err}"
    );
}
