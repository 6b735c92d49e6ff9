//! The learner's promise on generated east-west traffic (issue 18): for captures of several
//! seeds and sizes, `palisade learn` proposes a policy that, switched to `mode: protect`,
//! admits every flow and every transaction it was learned from, except the transactions it
//! held for review as probing, which it must refuse. Run through the real binary, as a
//! user would: `learn`, then `replay --policy proposal --fail-on-deny`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

/// Held-for-review count from `palisade learn`'s summary (0 when the line is absent).
fn held(stdout: &str) -> u64 {
    stdout
        .lines()
        .find(|l| l.contains("held for review"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn learn_then_protect(dir: &Path, flows: u64, seed: u64) {
    let pcap = dir.join(format!("ew-{seed}.pcap"));
    let written = traffic_gen::eastwest::write_capture(&pcap, flows, seed).unwrap();
    let out = dir.join(format!("learned-{seed}.yaml"));
    let o = palisade()
        .arg("learn")
        .arg(&pcap)
        .arg("--inventory")
        .arg(&written.inventory)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let held = held(&said);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.matches("\n# review: ").count() > 0,
        held > 0,
        "{said}\n{text}"
    );
    let protect = dir.join(format!("protect-{seed}.yaml"));
    std::fs::write(&protect, text.replace("mode: monitor", "mode: protect")).unwrap();
    let r = palisade()
        .arg("replay")
        .arg(&pcap)
        .arg("--policy")
        .arg(&protect)
        .arg("--inventory")
        .arg(&written.inventory)
        .args(["--format", "json", "--events", "none", "--fail-on-deny"])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&r.stdout).unwrap();
    let what = format!("seed {seed}, {flows} flows, {held} held: {said}");
    // Only held transactions are refused (fewer when one reset the flow that carried the
    // next); every flow is admitted.
    let denied: u64 = s["transactions"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["action"] != "allow")
        .map(|v| v["transactions"].as_u64().unwrap())
        .sum();
    assert!(
        denied <= held && (denied > 0) == (held > 0),
        "{what}: {denied} denied\n{:#}",
        s["transactions"]
    );
    for v in s["verdicts"].as_array().unwrap() {
        assert_eq!(v["action"], "allow", "{what}: {v}");
    }
    assert_eq!(
        r.status.code(),
        Some(if held > 0 { 1 } else { 0 }),
        "{what}: --fail-on-deny"
    );
}

#[test]
fn a_proposal_admits_the_generated_traffic_it_was_learned_from() {
    let dir = tempfile::tempdir().unwrap();
    for (flows, seed) in [(300, 1), (1_000, 7), (2_500, 42), (4_000, 2024)] {
        learn_then_protect(dir.path(), flows, seed);
    }
}
