//! `palisade replay` and `palisade policy check` as a user runs them: verdicts, alerts,
//! per-rule counts, modes, swaps, several files and workers, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
fn demo(f: &str) -> PathBuf {
    manifest().join("demo").join(f)
}
fn data(f: &str) -> PathBuf {
    manifest().join("tests/data").join(f)
}
fn spine(f: &str) -> PathBuf {
    manifest().join("../tests/data").join(f)
}

/// Runs `palisade` in a fresh directory (a replay without `--events` writes `eve.json`
/// where it runs).
fn palisade(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    for a in args {
        c.arg(a);
    }
    c.current_dir(cwd.path()).output().unwrap()
}

/// Replays with events to a file; returns (exit code, events, JSON summary, stderr).
fn replay(captures: &[PathBuf], policy: &Path, extra: &[&str]) -> (i32, Vec<Value>, Value, String) {
    replay_with(captures, policy, &demo("inventory.yaml"), extra)
}

/// [`replay`] with another inventory.
fn replay_with(
    captures: &[PathBuf],
    policy: &Path,
    inventory: &Path,
    extra: &[&str],
) -> (i32, Vec<Value>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.arg("replay").args(captures).arg("--policy").arg(policy);
    c.arg("--inventory").arg(inventory);
    c.arg("--events")
        .arg(&events)
        .args(["--format", "json"])
        .args(extra);
    let out = c.output().unwrap();
    let ev = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        ev,
        summary,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn of_type<'a>(ev: &'a [Value], t: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["event_type"] == t).collect()
}

/// (action, rule, flows) triples from the summary.
fn rule_counts(summary: &Value) -> Vec<(String, String, u64)> {
    summary["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap().into(),
                v["rule"].as_str().unwrap().into(),
                v["flows"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// An alert's Suricata objects say what its `policy_verdict` says: `alert.action` blocked
/// exactly when enforced, with the IPS `verdict` (a drop with resets both ways: these are
/// TCP flows); `signature` names the rule (`default-<action>` when the mode decided) and
/// the groups.
fn suricata_alert_agrees(a: &Value) {
    let (al, pv) = (&a["alert"], &a["policy_verdict"]);
    let enforced = pv["enforced"].as_bool().unwrap();
    assert_eq!(
        (&al["gid"], &al["rev"]),
        (&Value::from(1), &Value::from(1)),
        "{a}"
    );
    assert_eq!(al["category"], "segmentation", "{a}");
    assert_eq!(
        al["action"],
        if enforced { "blocked" } else { "allowed" },
        "{a}"
    );
    assert_eq!(a["proto"], "TCP");
    if enforced {
        assert_eq!(
            a["verdict"],
            serde_json::json!({"action": "drop", "reject-target": "both", "reject": ["tcp-reset"]}),
            "{a}"
        );
    } else {
        assert!(a.get("verdict").is_none(), "{a}");
    }
    let rule = match pv["rule"].as_str().unwrap() {
        "default" => format!("default-{}", pv["action"].as_str().unwrap()),
        r => r.to_string(),
    };
    let sig = format!(
        "palisade {rule} {}->{}",
        a["src_workload"]["group"].as_str().unwrap(),
        a["dest_workload"]["group"].as_str().unwrap()
    );
    assert!(
        al["signature"].as_str().unwrap().starts_with(&sig),
        "{sig}: {a}"
    );
}

fn alert_summary(ev: &[Value]) -> Vec<(String, String, String, bool, String, String)> {
    let mut v: Vec<_> = of_type(ev, "alert")
        .iter()
        .map(|a| {
            suricata_alert_agrees(a);
            (
                a["policy_verdict"]["action"].as_str().unwrap().to_string(),
                a["policy_verdict"]["rule"].as_str().unwrap().to_string(),
                a["policy_verdict"]["mode"].as_str().unwrap().to_string(),
                a["policy_verdict"]["enforced"].as_bool().unwrap(),
                format!(
                    "{}:{}",
                    a["src_ip"].as_str().unwrap(),
                    a["src_workload"]["group"].as_str().unwrap_or("-")
                ),
                format!("{}:{}", a["dest_ip"].as_str().unwrap(), a["dest_port"]),
            )
        })
        .collect();
    v.sort();
    v
}

/// Alerts as `action rule mode enforced src:group -> dst:port`, sorted.
fn alerts(ev: &[Value]) -> Vec<String> {
    alert_summary(ev)
        .into_iter()
        .map(|(a, r, m, e, src, dst)| format!("{a} {r} {m} {e} {src} -> {dst}"))
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn demo_policy_gives_the_expected_alerts_and_rule_counts() {
    let (code, ev, summary, err) = replay(&[demo("shop.pcap")], &demo("policy.yaml"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        alerts(&ev),
        [
            "alert default monitor false 198.51.100.23:world -> 10.0.2.7:8080",
            "deny no-flush protect true 10.0.2.7:orders -> 10.0.3.9:6379",
            "deny no-web-db protect true 10.0.1.5:web -> 10.0.4.11:5432",
        ]
    );
    let deny = of_type(&ev, "alert")
        .into_iter()
        .find(|a| a["policy_verdict"]["rule"] == "no-web-db")
        .unwrap();
    // Severity critical is Suricata's 1.
    assert_eq!(deny["alert"]["severity"], 1);
    assert_eq!(deny["src_workload"]["name"], "frontend-7d9f");
    assert_eq!(deny["src_workload"]["namespace"], "shop");
    assert_eq!(deny["dest_workload"]["group"], "db");
    assert_eq!(deny["proto"], "TCP");
    assert!(deny["community_id"].as_str().unwrap().starts_with("1:"));
    // The FLUSHALL is denied as a request, with its redis object, at once.
    let flush = of_type(&ev, "alert")
        .into_iter()
        .find(|a| a["policy_verdict"]["rule"] == "no-flush")
        .unwrap();
    assert_eq!(flush["redis"]["command"], "FLUSHALL");
    assert_eq!(flush["app_proto"], "redis");
    assert_eq!(
        rule_counts(&summary),
        vec![
            (s("alert"), s("default"), 1),
            (s("allow"), s("dns"), 1),
            (s("allow"), s("orders-cache"), 3),
            (s("allow"), s("orders-db"), 1),
            (s("allow"), s("web-orders"), 3),
            (s("deny"), s("no-web-db"), 1),
        ]
    );
    // Requests are judged one by one: the allowed ones by their L7 rules.
    let tx: Vec<String> = summary["transactions"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "{} {} {}",
                v["action"].as_str().unwrap(),
                v["rule"].as_str().unwrap(),
                v["transactions"]
            )
        })
        .collect();
    assert_eq!(
        tx,
        [
            "alert default 1",
            "allow dns 1",
            "allow orders-cache 2",
            "allow orders-db 3",
            "allow web-orders 4",
            "deny no-flush 1"
        ]
    );
    // Dropped, each with resets: every packet of the denied flow, and the FLUSHALL's packet
    // with the rest of its connection; nothing else.
    assert_eq!(summary["packet_verdicts"]["drop"], 12 + 7);
    assert_eq!(summary["packet_verdicts"]["reset"], 12 + 7);
    let flows = of_type(&ev, "flow");
    assert_eq!(flows.len(), 10);
    let denied = flows
        .iter()
        .find(|f| f["policy_verdict"]["action"] == "deny")
        .unwrap();
    assert_eq!(denied["policy_verdict"]["dropped_pkts"], 12);
    assert_eq!(denied["flow"]["alerted"], true);
    let flush_flow = flows.iter().find(|f| f["src_port"] == 50392).unwrap();
    assert_eq!(flush_flow["policy_verdict"]["dropped_pkts"], 7);
    assert_eq!(flush_flow["flow"]["alerted"], true);
    // Workload provenance from the inventory is on every event about that workload.
    let with_image = flows.iter().filter(|f| {
        f["src_workload"]["image"].is_string() || f["dest_workload"]["image"].is_string()
    });
    assert!(
        with_image.count() > 0,
        "inventory image/annotations should reach events"
    );
    // Protocols detected from bytes, not ports.
    // (A flow that carried no payload has no `app_proto`, as in Suricata.)
    let apps: Vec<&str> = flows
        .iter()
        .filter_map(|f| f["app_proto"].as_str())
        .collect();
    for app in ["http", "redis", "pgsql", "dns"] {
        assert!(apps.contains(&app), "{app} not detected: {apps:?}");
    }
    let policy = of_type(&ev, "policy");
    assert_eq!(policy.len(), 1);
    assert_eq!(policy[0]["policy"]["status"], "loaded");
    assert_eq!(policy[0]["policy"]["version"], 1);
}

#[test]
fn deny_wins_over_allow_regardless_of_rule_order() {
    let (c1, ev1, sum1, e1) = replay(&[demo("shop.pcap")], &data("shop-deny-wins.yaml"), &[]);
    let (c2, ev2, sum2, e2) = replay(
        &[demo("shop.pcap")],
        &data("shop-deny-wins-reversed.yaml"),
        &[],
    );
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    assert_eq!(alert_summary(&ev1), alert_summary(&ev2));
    assert_eq!(rule_counts(&sum1), rule_counts(&sum2));
    assert!(
        alert_summary(&ev1)
            .iter()
            .any(|a| a.1 == "no-web-db" && a.0 == "deny" && a.3)
    );
    assert!(!rule_counts(&sum1).iter().any(|r| r.1 == "web-db-allow"));
}

/// The demo policy with its global mode (and the orders override) changed.
fn demo_with_mode(dir: &Path, mode: &str, default_action: &str) -> PathBuf {
    let text = std::fs::read_to_string(demo("policy.yaml")).unwrap();
    let text = text
        .replace("  mode: protect", &format!("  mode: {mode}"))
        .replace(
            "  defaultAction: deny",
            &format!("  defaultAction: {default_action}"),
        )
        .replace(", mode: monitor}", "}")
        .replace(", mode: protect}", "}");
    let p = dir.join(format!("policy-{mode}-{default_action}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn modes_behave_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let world = "198.51.100.23:world -> 10.0.2.7:8080";
    let web_db = "10.0.1.5:web -> 10.0.4.11:5432";
    let flush = "10.0.2.7:orders -> 10.0.3.9:6379";
    // protect + deny: the outside client's unmatched flow is denied by default and dropped.
    let (_, ev, sum, _) = replay(
        &[demo("shop.pcap")],
        &demo_with_mode(dir.path(), "protect", "deny"),
        &[],
    );
    assert_eq!(
        alerts(&ev),
        [
            format!("deny default protect true {world}"),
            format!("deny no-flush protect true {flush}"),
            format!("deny no-web-db protect true {web_db}"),
        ]
    );
    assert_eq!(sum["packet_verdicts"]["drop"], 12 + 12 + 7);
    // protect + allow: unmatched traffic passes silently; the explicit denies still drop.
    let (_, ev, sum, _) = replay(
        &[demo("shop.pcap")],
        &demo_with_mode(dir.path(), "protect", "allow"),
        &[],
    );
    assert_eq!(
        alerts(&ev),
        [
            format!("deny no-flush protect true {flush}"),
            format!("deny no-web-db protect true {web_db}")
        ]
    );
    assert_eq!(sum["packet_verdicts"]["drop"], 12 + 7);
    // monitor: unmatched traffic alerts, deny rules alert, nothing is dropped.
    let (_, ev, sum, _) = replay(
        &[demo("shop.pcap")],
        &demo_with_mode(dir.path(), "monitor", "deny"),
        &[],
    );
    assert_eq!(
        alerts(&ev),
        [
            format!("alert default monitor false {world}"),
            format!("deny no-flush monitor false {flush}"),
            format!("deny no-web-db monitor false {web_db}"),
        ]
    );
    assert_eq!(sum["packet_verdicts"]["drop"], 0);
    // learn: unmatched traffic is allowed without alerts; deny rules are reported, not enforced.
    let (_, ev, sum, _) = replay(
        &[demo("shop.pcap")],
        &demo_with_mode(dir.path(), "learn", "deny"),
        &[],
    );
    assert_eq!(
        alerts(&ev),
        [
            format!("deny no-flush learn false {flush}"),
            format!("deny no-web-db learn false {web_db}")
        ]
    );
    assert_eq!(sum["packet_verdicts"]["drop"], 0);
    assert!(rule_counts(&sum).contains(&(s("allow"), s("default"), 1)));
}

#[test]
fn fail_on_deny_exits_1() {
    let (code, _, _, _) = replay(
        &[demo("shop.pcap")],
        &demo("policy.yaml"),
        &["--fail-on-deny"],
    );
    assert_eq!(code, 1);
    let (code, _, _, _) = replay(
        &[spine("spine-eth.pcap")],
        &data("allow-all.yaml"),
        &["--fail-on-deny"],
    );
    assert_eq!(code, 0);
}

fn flow_records(ev: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = of_type(ev, "flow")
        .iter()
        .map(|f| {
            let mut f = (*f).clone();
            f.as_object_mut().unwrap().remove("flow_id");
            // Why the record was written depends on what else is in the replay (packet time
            // advances past idle timeouts); what it says about the flow must not.
            f["flow"].as_object_mut().unwrap().remove("reason");
            f.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_workers_give_the_same_flows_as_one() {
    let caps = [demo("shop.pcap"), spine("spine-eth.pcap")];
    let (c1, ev1, s1, _) = replay(&caps, &demo("policy.yaml"), &["--workers", "1"]);
    let (c2, ev2, s2, _) = replay(&caps, &demo("policy.yaml"), &["--workers", "2"]);
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(flow_records(&ev1), flow_records(&ev2));
    assert_eq!(rule_counts(&s1), rule_counts(&s2));
    assert_eq!(s2["workers"], 2);
}

#[test]
fn several_files_are_merged() {
    let (_, ev_a, sa, _) = replay(&[demo("shop.pcap")], &data("allow-all.yaml"), &[]);
    let (_, ev_b, sb, _) = replay(&[spine("spine-eth.pcap")], &data("allow-all.yaml"), &[]);
    let (code, ev, s, _) = replay(
        &[spine("spine-eth.pcap"), demo("shop.pcap")],
        &data("allow-all.yaml"),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(
        s["packets"],
        sa["packets"].as_u64().unwrap() + sb["packets"].as_u64().unwrap()
    );
    let mut both = flow_records(&ev_a);
    both.extend(flow_records(&ev_b));
    both.sort();
    assert_eq!(flow_records(&ev), both);
}

#[test]
fn scripted_swap_changes_the_version_from_that_packet_and_a_bad_policy_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: x}\nspec:\n  mood: protect\n").unwrap();
    let swap1 = format!("40:{}", data("allow-all.yaml").display());
    let swap2 = format!("80:{}", bad.display());
    let (code, ev, sum, err) = replay(
        &[demo("shop.pcap")],
        &demo("policy.yaml"),
        &["--swap-at", &swap1, "--swap-at", &swap2],
    );
    assert_eq!(code, 0, "{err}");
    let pol = of_type(&ev, "policy");
    assert_eq!(pol.len(), 3);
    assert_eq!(
        (
            pol[1]["policy"]["status"].as_str(),
            pol[1]["policy"]["version"].as_u64()
        ),
        (Some("loaded"), Some(2))
    );
    assert_eq!(pol[2]["policy"]["status"], "rejected");
    assert_eq!(pol[2]["policy"]["version"], 2, "the running policy stays");
    assert!(pol[2]["policy"]["error"].as_str().unwrap().contains("mood"));
    let versions: std::collections::BTreeSet<u64> = of_type(&ev, "flow")
        .iter()
        .map(|f| f["policy_verdict"]["policy_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2].into_iter().collect());
    assert_eq!(sum["policy"].as_array().unwrap().len(), 3);
}

fn assert_bad_input(out: &Output, must_name: &str, must_say: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(must_name),
        "stderr should name {must_name}: {err}"
    );
    assert!(
        err.contains(must_say),
        "stderr should say {must_say}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_captures_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pol = data("allow-all.yaml");
    let missing = dir.path().join("missing.pcap");
    assert_bad_input(
        &palisade(&[&"replay", &missing, &"--policy", &pol]),
        "missing.pcap",
        "cannot open",
    );

    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, "this is not a capture\n".repeat(10)).unwrap();
    assert_bad_input(
        &palisade(&[&"replay", &text, &"--policy", &pol]),
        "notes.pcap",
        "not a pcap",
    );

    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert_bad_input(
        &palisade(&[&"replay", &empty, &"--policy", &pol]),
        "empty.pcap",
        "empty",
    );

    let full = std::fs::read(spine("spine-eth.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 30]).unwrap();
    // A capture cut short (copied while tcpdump was writing) is read up to the cut, as
    // tcpdump, tshark and Suricata read it: a warning naming the file, exit 0.
    let out = palisade(&[&"replay", &cut, &"--policy", &pol]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning") && err.contains("cut.pcap") && err.contains("truncated"),
        "{err}"
    );
    // Everything before the cut was still judged and summarised.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("packets    79"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut usb = full[..24].to_vec();
    usb[20..24].copy_from_slice(&189u32.to_le_bytes());
    usb.extend_from_slice(&full[24..]);
    let usb_path = dir.path().join("usb.pcap");
    std::fs::write(&usb_path, &usb).unwrap();
    assert_bad_input(
        &palisade(&[&"replay", &usb_path, &"--policy", &pol]),
        "usb.pcap",
        "link type 189 is not supported",
    );
}

#[test]
fn bad_policies_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("typo.yaml");
    std::fs::write(&p, "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: x}\nspec:\n  mode: protect\n  defaultActon: deny\n").unwrap();
    let cap = spine("spine-eth.pcap");
    let out = palisade(&[&"replay", &cap, &"--policy", &p]);
    assert_bad_input(&out, "typo.yaml:6:3", "defaultAction");
    let out = palisade(&[&"policy", &"check", &p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("typo.yaml:6:3: error"));
    let out = palisade(&[
        &"policy",
        &"check",
        &demo("policy.yaml"),
        &"--inventory",
        &demo("inventory.yaml"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let missing = dir.path().join("nope.yaml");
    assert_bad_input(
        &palisade(&[&"replay", &cap, &"--policy", &missing]),
        "nope.yaml",
        "",
    );
}

/// A classic little-endian pcap with the given Ethernet frames.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn malformed_packets_are_anomalies_and_never_stop_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    // IPv4 header claiming 20 bytes but cut after 10.
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    let mut cut = eth.clone();
    cut.extend_from_slice(&[0x45, 0, 0, 60, 0, 0, 0, 0, 64, 6]);
    frames.push(cut);
    // IPv4 with a header length below the minimum.
    let mut bad_ihl = eth.clone();
    bad_ihl.extend_from_slice(&[
        0x41, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    frames.push(bad_ihl);
    // TCP whose data offset points past the packet.
    let mut tcp = eth.clone();
    tcp.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    tcp.extend_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0xf0, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    frames.push(tcp);
    // Then a good IP frame from a real capture (its first packets are ARP).
    let good = dataplane::io::pcap::CaptureFile::open(&spine("spine-eth.pcap")).map(|mut f| {
        let mut v = Vec::new();
        while v.is_empty()
            && f.next_packet(&mut |p| {
                if matches!(
                    dataplane::decode::decode(p.linktype, p.data),
                    Ok(dataplane::decode::Decoded::Ip(_))
                ) {
                    v = p.data.to_vec();
                }
            })
            .unwrap()
            .is_some()
        {}
        v
    });
    frames.push(good.unwrap());
    let cap = dir.path().join("bad-frames.pcap");
    write_pcap(&cap, &frames);
    let (code, ev, sum, err) = replay(&[cap], &data("allow-all.yaml"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["packets"], 4);
    let anomalies = of_type(&ev, "anomaly");
    assert_eq!(anomalies.len(), 3, "{anomalies:?}");
    for a in &anomalies {
        assert_eq!(a["anomaly"]["type"], "decode");
        assert!(
            a["anomaly"]["event"]
                .as_str()
                .unwrap()
                .starts_with("decode.")
        );
    }
    let total: u64 = sum["anomalies"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    assert_eq!(
        of_type(&ev, "flow").len(),
        1,
        "the good packet still makes its flow"
    );
}

#[test]
fn what_if_lists_exactly_the_changed_verdicts() {
    // Old: everything allowed. New: the demo policy. Exactly two flows change.
    let (code, _, sum, err) = replay(
        &[demo("shop.pcap")],
        &demo("policy.yaml"),
        &[
            "--compare",
            data("allow-all.yaml").to_str().unwrap(),
            "--fail-on-change",
        ],
    );
    assert_eq!(code, 1, "--fail-on-change with changes exits 1: {err}");
    let changes: Vec<(String, String, String, bool, u64, Vec<String>)> = sum["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["old"]["action"].as_str().unwrap().into(),
                c["new"]["action"].as_str().unwrap().into(),
                c["new"]["rule"].as_str().unwrap().into(),
                c["new"]["enforced"].as_bool().unwrap(),
                c["flows"].as_u64().unwrap(),
                c["examples"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                s("allow"),
                s("alert"),
                s("default"),
                false,
                1,
                vec![s("198.51.100.23 -> 10.0.2.7:8080 TCP")]
            ),
            (
                s("allow"),
                s("deny"),
                s("no-web-db"),
                true,
                1,
                vec![s("10.0.1.5 -> 10.0.4.11:5432 TCP")]
            ),
        ]
    );
    // Every request is judged by both policies too: exactly two change, the outside
    // client's GET /admin (now alerted by monitor mode's default) and the FLUSHALL (now
    // denied, enforced), each named by its flow and its protocol object.
    let tx: Vec<String> = sum["transaction_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let examples: Vec<String> = c["examples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let what = match (e.get("http"), e.get("redis")) {
                        (Some(h), None) => format!(
                            "http {} {}",
                            h["http_method"].as_str().unwrap(),
                            h["url"].as_str().unwrap()
                        ),
                        (None, Some(r)) => format!("redis {}", r["command"].as_str().unwrap()),
                        _ => panic!("unexpected example {e}"),
                    };
                    format!("{} {what}", e["flow"].as_str().unwrap())
                })
                .collect();
            format!(
                "{} by {} -> {} (enforced {}) by {}: {} {examples:?}",
                c["old"]["action"].as_str().unwrap(),
                c["old"]["rule"].as_str().unwrap(),
                c["new"]["action"].as_str().unwrap(),
                c["new"]["enforced"],
                c["new"]["rule"].as_str().unwrap(),
                c["transactions"]
            )
        })
        .collect();
    assert_eq!(
        tx,
        [
            r#"allow by default -> alert (enforced false) by default: 1 ["198.51.100.23 -> 10.0.2.7:8080 TCP http GET /admin"]"#,
            r#"allow by default -> deny (enforced true) by no-flush: 1 ["10.0.2.7 -> 10.0.3.9:6379 TCP redis FLUSHALL"]"#,
        ]
    );
    // Same rules in another order: no change, exit 0.
    let (code, _, sum, _) = replay(
        &[demo("shop.pcap")],
        &data("shop-deny-wins-reversed.yaml"),
        &[
            "--compare",
            data("shop-deny-wins.yaml").to_str().unwrap(),
            "--fail-on-change",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(sum["changes"].as_array().unwrap().len(), 0);
    assert_eq!(sum["transaction_changes"].as_array().unwrap().len(), 0);
}

/// Two policies for the recorded HTTP/1 session (tests/data/http1) that differ only in the
/// request-level constraint of one rule: the old `no-order-writes` denies DELETE on the
/// order paths, the new one DELETE and POST. The session's `POST /api/orders` is the only
/// request whose verdict changes; no flow's does.
fn ci_gate_policies(dir: &Path) -> (PathBuf, PathBuf) {
    let old = "apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: ci-gate}
spec:
  mode: protect
  defaultAction: deny
  groups:
    clients: {selector: {app: web-client}}
    web:     {selector: {app: web}}
  rules:
    - id: web-api
      from: [clients]
      to: [web]
      app: http
      http: [{methods: [GET, HEAD, POST], paths: [\"/*\"]}]
      action: allow
    - id: no-order-writes
      from: [clients]
      to: [web]
      app: http
      http: [{methods: [DELETE], paths: [/api/orders, \"/api/orders/*\"]}]
      action: deny
";
    let new = old.replace("methods: [DELETE]", "methods: [DELETE, POST]");
    assert_ne!(new, old);
    let (o, n) = (dir.join("old.yaml"), dir.join("new.yaml"));
    std::fs::write(&o, old).unwrap();
    std::fs::write(&n, new).unwrap();
    (o, n)
}

#[test]
fn a_changed_request_alone_fails_the_ci_gate_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = ci_gate_policies(dir.path());
    let cap = [spine("http1/http1.pcap")];
    let inv = data("web-inventory.yaml");
    let gate = ["--compare", old.to_str().unwrap(), "--fail-on-change"];

    // The old policy against itself: nothing changes, the gate passes.
    let (code, _, sum, err) = replay_with(
        &cap,
        &old,
        &inv,
        &["--compare", old.to_str().unwrap(), "--fail-on-change"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["transaction_changes"], serde_json::json!([]));

    // The new one: no flow changes verdict, one request does, and that fails the gate.
    let (code, _, sum, err) = replay_with(&cap, &new, &inv, &gate);
    assert_eq!(code, 1, "a changed request fails --fail-on-change: {err}");
    assert_eq!(sum["changes"], serde_json::json!([]), "no flow changes");
    let changes = sum["transaction_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let c = &changes[0];
    assert_eq!(
        (&c["old"], &c["new"], &c["transactions"]),
        (
            &serde_json::json!({"action": "allow", "enforced": false, "rule": "web-api"}),
            &serde_json::json!({"action": "deny", "enforced": true, "rule": "no-order-writes"}),
            &serde_json::json!(1)
        )
    );
    let ex = c["examples"].as_array().unwrap();
    assert_eq!(ex.len(), 1, "{ex:#?}");
    assert_eq!(ex[0]["flow"], "10.99.11.1 -> 10.99.11.2:80 TCP");
    assert_eq!(ex[0]["http"]["http_method"], "POST");
    assert_eq!(ex[0]["http"]["url"], "/api/orders");

    // The text summary names it too.
    let events = dir.path().join("events.json");
    let out = palisade(&[
        &"replay",
        &cap[0],
        &"--policy",
        &new,
        &"--inventory",
        &inv,
        &"--events",
        &events,
        &"--compare",
        &old,
        &"--fail-on-change",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("changes    0 flow(s) change verdict"),
        "{text}"
    );
    assert!(
        text.contains("changes    1 request(s) change verdict"),
        "{text}"
    );
    assert!(
        text.contains("allow by web-api -> deny by no-order-writes: 1 request(s)"),
        "{text}"
    );
    assert!(
        text.contains("e.g. 10.99.11.1 -> 10.99.11.2:80 TCP http POST /api/orders\n"),
        "{text}"
    );
}

#[test]
fn fail_on_deny_counts_a_denied_request_in_an_allowed_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = ci_gate_policies(dir.path());
    let cap = [spine("http1/http1.pcap")];
    let inv = data("web-inventory.yaml");
    // The old policy denies nothing: exit 0.
    let (code, _, sum, err) = replay_with(&cap, &old, &inv, &["--fail-on-deny"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rule_counts(&sum), [(s("allow"), s("web-api"), 8)]);
    // The new one denies one request; every flow is still allowed.
    let (code, ev, sum, err) = replay_with(&cap, &new, &inv, &["--fail-on-deny"]);
    assert_eq!(code, 1, "a denied request fails --fail-on-deny: {err}");
    assert_eq!(rule_counts(&sum), [(s("allow"), s("web-api"), 8)]);
    let denied: Vec<&Value> = summary_tx(&sum)
        .into_iter()
        .filter(|v| v["action"] == "deny")
        .collect();
    assert_eq!(
        denied,
        [&serde_json::json!({"action": "deny", "rule": "no-order-writes", "transactions": 1})]
    );
    let alerts = of_type(&ev, "alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["http"]["http_method"], "POST");
    assert_eq!(alerts[0]["http"]["url"], "/api/orders");
}

fn summary_tx(sum: &Value) -> Vec<&Value> {
    sum["transactions"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn policy_diff_is_semantic() {
    let dir = tempfile::tempdir().unwrap();
    let without = dir.path().join("without-web-db-allow.yaml");
    let text = std::fs::read_to_string(data("shop-deny-wins.yaml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.contains("web-db-allow"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&without, text).unwrap();
    let out = palisade(&[&"policy", &"diff", &without, &data("shop-deny-wins.yaml")]);
    // Policies that differ exit 1, as diff(1) does.
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), "+ rule web-db-allow (allow web -> db :5432)");
    let same = data("shop-deny-wins.yaml");
    let out = palisade(&[&"policy", &"diff", &same, &same]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no semantic changes"
    );
    // Reordering rules changes nothing but the name here.
    let out = palisade(&[
        &"policy",
        &"diff",
        &data("shop-deny-wins.yaml"),
        &data("shop-deny-wins-reversed.yaml"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("rule"), "{text}");
    let differ = text.trim() != "no semantic changes";
    assert_eq!(out.status.code(), Some(i32::from(differ)), "{text}");
    // A broken policy is bad input.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: SegmentationPolicy\n").unwrap();
    let out = palisade(&[&"policy", &"diff", &demo("policy.yaml"), &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
}

#[test]
fn events_go_to_eve_json_by_default_and_none_discards_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("replay")
            .arg(demo("shop.pcap"))
            .arg("--policy")
            .arg(demo("policy.yaml"))
            .arg("--inventory")
            .arg(demo("inventory.yaml"))
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0));
    let eve = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
    let lines = eve.lines().count();
    assert!(lines > 10, "{eve}");
    // The summary names the file.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("events     {lines} to eve.json")),
        "{text}"
    );
    std::fs::remove_file(dir.path().join("eve.json")).unwrap();
    let out = run(&["--events", "none", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let sum: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sum["events_file"], "none");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "--events none writes no file"
    );
}

/// `--shadow`: the candidate never enforces; each disagreement is a `shadow` record (with
/// the request's object for a transaction) and counted per rule pair; a candidate equal
/// to the policy writes none.
#[test]
fn shadow_candidate_disagreements_are_records_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(demo("policy.yaml")).unwrap();
    // The candidate forgets the FLUSHALL denial and refuses web -> orders outright.
    let cut = text.find("    - id: no-flush").unwrap();
    let candidate = text[..cut].replace(
        "      app: http\n      http:\n        - {methods: [GET], paths: [\"/api/orders/*\"], hosts: [\"orders.shop\"]}\n        - {methods: [POST], paths: [\"/api/orders\"], headers: {content-type: \"application/json\"}}\n      action: allow",
        "      action: deny",
    );
    assert_ne!(candidate, text[..cut], "the web-orders rule was rewritten");
    let cand = dir.path().join("candidate.yaml");
    std::fs::write(&cand, &candidate).unwrap();
    let same = dir.path().join("same.yaml");
    std::fs::write(&same, &text).unwrap();

    let (code, plain, _, err) = replay(&[demo("shop.pcap")], &demo("policy.yaml"), &[]);
    assert_eq!(code, 0, "{err}");
    let c = cand.display().to_string();
    let (code, ev, summary, err) = replay(
        &[demo("shop.pcap")],
        &demo("policy.yaml"),
        &["--shadow", &c],
    );
    assert_eq!(code, 0, "{err}");
    // Enforcement is the active policy's alone: the same alerts as without a candidate.
    assert_eq!(alerts(&ev), alerts(&plain));
    let shadow = of_type(&ev, "shadow");
    let flush = shadow
        .iter()
        .find(|e| e["redis"]["command"] == "FLUSHALL")
        .expect("a shadow record for the FLUSHALL");
    assert_eq!(flush["policy_verdict"]["action"], "deny");
    assert_eq!(flush["policy_verdict"]["rule"], "no-flush");
    assert_eq!(flush["shadow"]["action"], "allow");
    assert_eq!(flush["shadow"]["rule"], "orders-cache");
    let web = shadow
        .iter()
        .find(|e| e["shadow"]["rule"] == "web-orders" && e.get("tx_id").is_none())
        .expect("a flow-level shadow record for web -> orders");
    assert_eq!(web["shadow"]["action"], "deny");
    assert_eq!(web["src_workload"]["group"], "web");
    let pairs = summary["shadow"]["pairs"].as_array().unwrap();
    let count = |level: &str, rule: &str| {
        pairs
            .iter()
            .filter(|p| p["level"] == level && p["shadow"]["rule"] == rule)
            .map(|p| p["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count("transaction", "orders-cache"), 1, "{summary:#}");
    assert!(count("flow", "web-orders") >= 1, "{summary:#}");
    assert_eq!(
        summary["shadow"]["disagreements"].as_u64().unwrap(),
        shadow.len() as u64
    );

    let s = same.display().to_string();
    let (code, ev, summary, err) = replay(
        &[demo("shop.pcap")],
        &demo("policy.yaml"),
        &["--shadow", &s],
    );
    assert_eq!(code, 0, "{err}");
    assert!(of_type(&ev, "shadow").is_empty());
    assert_eq!(summary["shadow"]["disagreements"], 0);
}
