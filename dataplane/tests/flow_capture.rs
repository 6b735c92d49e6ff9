//! Flow capture (`capture: true`, `--capture-dir`) on the recorded redis-cli session: which
//! flows get a file, that tshark reads each one with every packet of its flow from the SYN
//! on, and that alerts and flow events name the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The recorded-session policy with `capture: true` added to the rule whose line is `rule_line`.
fn policy_with_capture(dir: &Path, rule_line: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("dataplane/tests/data/l7-policy.yaml")).unwrap();
    let mut out = String::new();
    let mut in_rule = false;
    let mut done = false;
    for line in text.lines() {
        if line.trim_start().starts_with("- id: ") {
            if in_rule && !done {
                out.push_str("      capture: true\n");
                done = true;
            }
            in_rule = line.trim() == rule_line;
        }
        out.push_str(line);
        out.push('\n');
    }
    if in_rule && !done {
        out.push_str("      capture: true\n");
        done = true;
    }
    assert!(done, "no rule {rule_line}");
    let p = dir.join("policy.yaml");
    std::fs::write(&p, out).unwrap();
    p
}

struct Run {
    events: Vec<Value>,
    summary: Value,
    status: i32,
    stderr: String,
}

fn replay(policy: &Path, capture_dir: Option<&Path>, dir: &Path) -> Run {
    let events = dir.join("events.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.arg("replay")
        .arg(root().join("tests/data/redis/redis.pcap"))
        .arg("--policy")
        .arg(policy)
        .arg("--inventory")
        .arg(root().join("dataplane/tests/data/l7-inventory.yaml"))
        .arg("--events")
        .arg(&events)
        .args(["--format", "json"]);
    if let Some(d) = capture_dir {
        cmd.arg("--capture-dir").arg(d);
    }
    let out = cmd.output().unwrap();
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        events,
        summary: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// tshark's view of a capture file: frame count and the number of SYNs without ACK.
fn tshark(path: &str) -> (usize, usize) {
    let out = Command::new("tshark")
        .args([
            "-r",
            path,
            "-T",
            "fields",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.flags.ack",
        ])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark -r {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let syns = lines
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            matches!(f.as_slice(), [s, a] if (*s == "1" || *s == "True") && (*a == "0" || *a == "False"))
        })
        .count();
    (lines.len(), syns)
}

/// Flow id -> (capture file, packets of the flow) from the flow events (a flow without a
/// file has no `capture_file` key at all).
fn flows(events: &[Value]) -> BTreeMap<u64, (Option<String>, u64)> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| {
            let f = &e["flow"];
            (
                e["flow_id"].as_u64().unwrap(),
                (
                    e.get("capture_file")
                        .map(|c| c.as_str().expect("capture_file is a path").to_string()),
                    f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn a_capturing_l7_rule_writes_the_flows_it_matched_from_their_first_packet() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_with_capture(dir.path(), "- id: no-flush");
    let caps = dir.path().join("captures");
    let r = replay(&policy, Some(&caps), dir.path());
    assert_eq!(r.status, 0, "{}", r.stderr);

    // The alerts: each names its flow's file, which exists.
    let alerts: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 3);
    for a in &alerts {
        assert_eq!(a["policy_verdict"]["rule"], "no-flush");
        let f = a["capture_file"]
            .as_str()
            .expect("alert names its capture file");
        let id = a["flow_id"].as_u64().unwrap();
        assert!(
            f.ends_with(&format!("/{id}-no-flush.pcap")),
            "{f} is not named after flow {id} and the rule"
        );
    }

    // Exactly the flows with a FLUSHALL or CONFIG have a file; each holds every packet of
    // its flow, starting with the SYN that came before the rule could match.
    let flows = flows(&r.events);
    let captured: Vec<(&u64, &(Option<String>, u64))> =
        flows.iter().filter(|(_, (f, _))| f.is_some()).collect();
    let alerted: std::collections::BTreeSet<u64> = alerts
        .iter()
        .map(|a| a["flow_id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        captured
            .iter()
            .map(|(id, _)| **id)
            .collect::<std::collections::BTreeSet<_>>(),
        alerted
    );
    for (id, (file, pkts)) in &captured {
        let file = file.as_deref().unwrap();
        let (frames, syns) = tshark(file);
        assert_eq!(frames as u64, *pkts, "flow {id}: {file}");
        // A flow's packets are for the operator only.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{file}");
        assert_eq!(syns, 1, "flow {id}: {file} starts at the SYN");
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&caps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk.len(), captured.len(), "{on_disk:?}");

    let c = &r.summary["flow_captures"];
    assert_eq!(c["files"], captured.len() as u64);
    assert_eq!(
        c["packets"].as_u64().unwrap(),
        captured.iter().map(|(_, (_, p))| p).sum::<u64>()
    );
    assert_eq!(c["errors"], 0);
}

#[test]
fn a_capturing_l4_rule_writes_every_flow_it_decides() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_with_capture(dir.path(), "- id: worker-cache");
    let caps = dir.path().join("captures");
    let r = replay(&policy, Some(&caps), dir.path());
    assert_eq!(r.status, 0, "{}", r.stderr);
    let flows = flows(&r.events);
    assert!(!flows.is_empty());
    for (id, (file, pkts)) in &flows {
        let file = file
            .as_deref()
            .unwrap_or_else(|| panic!("flow {id} not captured"));
        assert!(
            file.ends_with(&format!("/{id}-worker-cache.pcap")),
            "{file}"
        );
        assert_eq!(tshark(file).0 as u64, *pkts, "flow {id}");
    }
}

#[test]
fn without_a_capture_dir_nothing_is_written_and_alerts_name_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_with_capture(dir.path(), "- id: no-flush");
    let r = replay(&policy, None, dir.path());
    assert_eq!(r.status, 0, "{}", r.stderr);
    let alerts: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 3);
    for a in alerts {
        assert!(a.get("capture_file").is_none(), "{a}");
    }
    assert_eq!(r.summary["flow_captures"]["files"], 0);
}

#[test]
fn a_capture_dir_that_cannot_be_made_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_with_capture(dir.path(), "- id: no-flush");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let r = replay(&policy, Some(&file.join("captures")), dir.path());
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("--capture-dir"), "{}", r.stderr);
    assert!(r.stderr.contains("plain-file"), "{}", r.stderr);
}

/// `palisade demo` writes the flows of its two capturing deny rules and names them.
#[test]
fn the_demo_captures_its_two_denied_flows() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("demo")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for (file, frames) in [("8-no-flush.pcap", 10), ("9-no-web-db.pcap", 12)] {
        let rel = format!("palisade-demo/captures/{file}");
        assert!(text.contains(&rel), "{file} not named in\n{text}");
        let path = dir.path().join(&rel);
        assert_eq!(tshark(path.to_str().unwrap()).0, frames, "{file}");
    }
}

/// `--capture-max-files 2` over the recorded session, with a capturing L4 rule (every flow
/// is captured from its first packet): the directory keeps the files of the two flows
/// captured last, with their sidecars; a capture file left from an earlier run counts and
/// goes first; a file that is not Palisade's is left alone; the summary counts removals.
#[test]
fn replay_keeps_the_capture_dir_within_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_with_capture(dir.path(), "- id: worker-cache");
    let caps = dir.path().join("captures");
    std::fs::create_dir(&caps).unwrap();
    std::fs::write(caps.join("1-earlier-run.pcap"), b"old").unwrap();
    std::fs::write(caps.join("README.txt"), b"mine").unwrap();
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(root().join("tests/data/redis/redis.pcap"))
        .arg("--policy")
        .arg(&policy)
        .arg("--inventory")
        .arg(root().join("dataplane/tests/data/l7-inventory.yaml"))
        .arg("--events")
        .arg(&events)
        .args(["--format", "json", "--capture-max-files", "2"])
        .arg("--capture-dir")
        .arg(&caps)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let evs: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let flows = flows(&evs);
    let captured: Vec<u64> = flows
        .iter()
        .filter(|(_, (f, _))| f.is_some())
        .map(|(id, _)| *id)
        .collect();
    assert!(captured.len() >= 3, "{captured:?}");
    // Flows are captured from their first packet, in the order they began.
    let kept: Vec<String> = captured[captured.len() - 2..]
        .iter()
        .map(|id| format!("{id}-worker-cache.pcap"))
        .collect();
    let mut want: Vec<String> = vec!["README.txt".into()];
    for k in &kept {
        want.push(k.clone());
        want.push(format!("{k}.json"));
    }
    want.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(&caps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, want);
    assert_eq!(std::fs::read(caps.join("README.txt")).unwrap(), b"mine");
    for k in &kept {
        let path = caps.join(k);
        let id: u64 = k.split('-').next().unwrap().parse().unwrap();
        assert_eq!(tshark(path.to_str().unwrap()).0 as u64, flows[&id].1, "{k}");
        let side: Value =
            serde_json::from_slice(&std::fs::read(caps.join(format!("{k}.json"))).unwrap())
                .unwrap();
        assert_eq!(side["flow_id"], id);
        assert_eq!(side["capture_rule"], "worker-cache");
        assert_eq!(
            side["event_type"], "flow",
            "no alert: the flow record is the sidecar"
        );
    }
    let c = &summary["flow_captures"];
    assert_eq!(c["files"], captured.len() as u64);
    // Every flow's file but the last two, and the earlier run's file.
    assert_eq!(c["removed"], captured.len() as u64 - 1);
    assert_eq!(c["dir_files_limit"], captured.len() as u64 - 1);
    assert_eq!(c["errors"], 0);
}
