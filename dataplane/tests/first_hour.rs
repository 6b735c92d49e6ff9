//! What a newcomer meets in their first hour (issue 22), as they see it on the terminal:
//! where events go (`--log-dir`), the warnings before a surprise, exit codes of every
//! command, `policy diff`'s lines, and the figures' names in `--format json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn demo(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo").join(f)
}

/// Runs `palisade ARGS` in `cwd`.
fn palisade_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run palisade")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A policy with something to warn about on every line that can be (line numbers are
/// asserted below: keep them).
const WARN_POLICY: &str = "\
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: warn}
spec:
  mode: protect
  groups:
    web:    {selector: {app: frontend}, namespaces: [shop]}
    db:     {selector: {app: postgres}, namespaces: [shop]}
    batch:  {selector: {app: batch}}
  rules:
    - {id: web-db-allow, from: [web], to: [db], ports: [5432], action: allow}
    - {id: batch-alert, from: [batch], to: [db], app: postgres, action: alert}
    - {id: no-db, from: [\"*\"], to: [db], action: deny, capture: true}
    - {id: no-web-db, from: [web], to: [db], ports: [5432], action: deny}
    - {id: web-db-l7, from: [web], to: [db], app: postgres, sql: [{verbs: [SELECT]}], action: deny}
";

const SHADOWED: [&str; 4] = [
    "warn.yaml:11:12: warning: allow rule `web-db-allow` never allows anything: deny rule `no-db` (line 13) matches all its traffic",
    "warn.yaml:12:12: warning: alert rule `batch-alert` never alerts: deny rule `no-db` (line 13) matches all its traffic",
    "warn.yaml:14:12: warning: deny rule `no-web-db` never decides anything: the earlier deny rule `no-db` (line 13) matches all its traffic",
    "warn.yaml:15:12: warning: deny rule `web-db-l7` never decides anything: the earlier deny rule `no-db` (line 13) matches all its traffic",
];

fn warn_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("warn.yaml"), WARN_POLICY).expect("write");
    std::fs::copy(demo("inventory.yaml"), dir.path().join("inventory.yaml")).expect("copy");
    std::fs::copy(demo("shop.pcap"), dir.path().join("shop.pcap")).expect("copy");
    dir
}

/// The `file:line:col: warning: ...` lines of an output.
fn warnings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains(": warning: ")).collect()
}

#[test]
fn policy_check_warns_before_the_surprise() {
    let dir = warn_dir();
    // Without an inventory: every selector group is empty.
    let o = palisade_in(dir.path(), &["policy", "check", "warn.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut want: Vec<&str> = SHADOWED.to_vec();
    want.push(
        "warn.yaml:7:5: warning: no inventory: every selector group is empty without --inventory (`web`, `db`, `batch`)",
    );
    assert_eq!(warnings(&out), want, "{out}");
    assert!(
        out.contains("  = help: give --inventory WORKLOADS.yaml"),
        "{out}"
    );
    assert!(out.ends_with("ok: 5 warnings\n"), "{out}");

    // With one: the group that matches none of its workloads.
    let o = palisade_in(
        dir.path(),
        &[
            "policy",
            "check",
            "warn.yaml",
            "--inventory",
            "inventory.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let mut want: Vec<&str> = SHADOWED.to_vec();
    want.push("warn.yaml:9:5: warning: group `batch` matches no workload in the inventory");
    assert_eq!(warnings(&out), want, "{out}");
    assert!(out.ends_with("ok: 5 warnings\n"), "{out}");
    // `capture: true` is only a surprise where captures could be written: not here.
    assert!(!out.contains("capture-dir"), "{out}");
}

#[test]
fn replay_warns_at_the_start_one_line_each() {
    let dir = warn_dir();
    let args = [
        "replay",
        "shop.pcap",
        "--policy",
        "warn.yaml",
        "--inventory",
        "inventory.yaml",
        "--events",
        "none",
    ];
    let o = palisade_in(dir.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let mut want: Vec<&str> = SHADOWED.to_vec();
    want.push("warn.yaml:9:5: warning: group `batch` matches no workload in the inventory");
    want.push(
        "warn.yaml:13:12: warning: rule `no-db` has `capture: true` but no --capture-dir was given: its flows are not captured",
    );
    assert_eq!(warnings(&err), want, "{err}");
    assert!(!err.contains("= help"), "one line each: {err}");
    // The summary still goes to stdout, untouched.
    assert!(!stdout(&o).contains("warning"), "{}", stdout(&o));

    // With a capture directory, `capture: true` does what it says: no warning about it.
    let mut with_dir = args.to_vec();
    with_dir.extend(["--capture-dir", "caps"]);
    let o = palisade_in(dir.path(), &with_dir);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert_eq!(warnings(&err).len(), 5, "{err}");
    assert!(!err.contains("capture-dir"), "{err}");

    // Without an inventory.
    let o = palisade_in(
        dir.path(),
        &[
            "replay",
            "shop.pcap",
            "--policy",
            "warn.yaml",
            "--events",
            "none",
            "--capture-dir",
            "caps",
        ],
    );
    let err = stderr(&o);
    assert!(
        err.contains("warn.yaml:7:5: warning: no inventory: every selector group is empty without --inventory"),
        "{err}"
    );
    // A clean policy warns about nothing.
    let o = palisade_in(
        dir.path(),
        &[
            "replay",
            "shop.pcap",
            "--policy",
            s(&demo("policy.yaml")),
            "--inventory",
            "inventory.yaml",
            "--events",
            "none",
            "--capture-dir",
            "caps",
        ],
    );
    assert_eq!(warnings(&stderr(&o)), Vec::<&str>::new(), "{}", stderr(&o));
}

#[test]
fn run_warns_before_it_starts() {
    // The warnings come before the source is opened: an interface that does not exist
    // still shows them, then fails as bad input.
    let dir = warn_dir();
    let o = palisade_in(
        dir.path(),
        &[
            "run",
            "--tap",
            "palisade-none0",
            "--policy",
            "warn.yaml",
            "--inventory",
            "inventory.yaml",
            "--events",
            "none",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(warnings(&err).len(), 6, "{err}");
    assert!(err.contains("palisade-none0"), "{err}");
}

#[test]
fn log_dir_holds_the_default_eve_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pcap, policy, inv) = (
        demo("shop.pcap"),
        demo("policy.yaml"),
        demo("inventory.yaml"),
    );
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            s(&pcap),
            "--policy",
            s(&policy),
            "--inventory",
            s(&inv),
        ];
        args.extend_from_slice(extra);
        palisade_in(dir.path(), &args)
    };
    // Created if missing, nested.
    let o = replay(&["--log-dir", "logs/today"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let eve = dir.path().join("logs/today/eve.json");
    let n = std::fs::read_to_string(&eve)
        .expect("eve.json in --log-dir")
        .lines()
        .count();
    assert!(n > 10);
    assert!(
        stdout(&o).contains(&format!("events     {n} to logs/today/eve.json")),
        "the summary names the file: {}",
        stdout(&o)
    );
    assert!(
        !dir.path().join("eve.json").exists(),
        "not in the current directory"
    );
    // --events overrides it.
    let o = replay(&[
        "--log-dir",
        "other",
        "--events",
        "mine.json",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let sum: Value = serde_json::from_slice(&o.stdout).expect("json summary");
    assert_eq!(sum["events_file"], "mine.json");
    assert!(dir.path().join("mine.json").exists());
    assert!(!dir.path().join("other/eve.json").exists());
    // A log directory that cannot be made is bad input, named.
    std::fs::write(dir.path().join("file"), "").expect("write");
    let o = replay(&["--log-dir", "file/sub"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--log-dir file/sub"), "{}", stderr(&o));
}

#[test]
fn policy_diff_names_the_app_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::fs::read_to_string(demo("policy.yaml")).expect("read");
    // Without the FLUSHALL rule (the file's last rule).
    let cut = base
        .find("    # Denies the FLUSHALL")
        .expect("the no-flush rule");
    std::fs::write(dir.path().join("old.yaml"), &base[..cut]).expect("write");
    let o = palisade_in(
        dir.path(),
        &["policy", "diff", "old.yaml", s(&demo("policy.yaml"))],
    );
    assert_eq!(o.status.code(), Some(1), "policies that differ exit 1");
    assert_eq!(
        stdout(&o),
        "+ rule no-flush (deny * -> cache redis [{commands: [CONFIG, DEBUG, FLUSHALL, FLUSHDB]}], capture, severity critical)\n"
    );
}

#[test]
fn exit_codes_as_product_md_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("bad.yaml"), "kind: SegmentationPolicy\nspek: {}\n").expect("write");
    std::fs::write(d.join("bad.pcap"), "not a capture").expect("write");
    let (pcap, policy, inv) = (
        demo("shop.pcap"),
        demo("policy.yaml"),
        demo("inventory.yaml"),
    );
    let (pcap, policy, inv) = (s(&pcap), s(&policy), s(&inv));
    let replay = [
        "replay",
        pcap,
        "--policy",
        policy,
        "--inventory",
        inv,
        "--events",
        "none",
    ];
    let cases: Vec<(Vec<&str>, i32)> = vec![
        // Bad arguments.
        (vec![], 2),
        (vec!["frobnicate"], 2),
        (vec!["replay", "--policy", policy], 2),
        (
            vec!["replay", pcap, "--policy", policy, "--workers", "0"],
            2,
        ),
        (
            vec!["replay", pcap, "--policy", policy, "--fail-on-change"],
            2,
        ),
        (vec!["run", "--policy", policy], 2),
        (
            vec!["run", "--nfqueue", "0", "--tap-resets", "--policy", policy],
            2,
        ),
        (vec!["bench", "--flows", "zero"], 2),
        (vec!["policy", "check"], 2),
        // Bad input: a policy, a capture, an inventory.
        (
            vec!["replay", pcap, "--policy", "bad.yaml", "--events", "none"],
            2,
        ),
        (
            vec!["replay", "bad.pcap", "--policy", policy, "--events", "none"],
            2,
        ),
        (
            vec![
                "replay",
                "missing.pcap",
                "--policy",
                policy,
                "--events",
                "none",
            ],
            2,
        ),
        (
            vec![
                "replay",
                pcap,
                "--policy",
                policy,
                "--inventory",
                "bad.yaml",
                "--events",
                "none",
            ],
            2,
        ),
        (
            vec![
                "run", "--tap", "lo", "--policy", "bad.yaml", "--events", "none",
            ],
            2,
        ),
        (vec!["policy", "check", "bad.yaml"], 2),
        (vec!["policy", "diff", policy, "bad.yaml"], 2),
        (vec!["learn", "bad.pcap", "-o", "learned.yaml"], 2),
        (vec!["bench", "--policy", "bad.yaml", "--seconds", "0.1"], 2),
        // Success, and findings.
        (replay.to_vec(), 0),
        ([&replay[..], &["--fail-on-deny"]].concat(), 1),
        (
            [&replay[..], &["--compare", policy, "--fail-on-change"]].concat(),
            0,
        ),
        (vec!["policy", "check", policy, "--inventory", inv], 0),
        (vec!["policy", "diff", policy, policy], 0),
        (vec!["--version"], 0),
        (vec!["replay", "--help"], 0),
    ];
    let mut wrong = Vec::new();
    for (args, want) in &cases {
        let o = palisade_in(d, args);
        let err = stderr(&o);
        if o.status.code() != Some(*want) {
            wrong.push(format!(
                "palisade {args:?}: exit {:?}, want {want}\n{err}",
                o.status.code()
            ));
        }
        // Bad input never panics, and says what was wrong.
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if *want == 2 {
            // `policy check` prints its report (errors included) on stdout.
            let said = format!("{err}{}", stdout(&o));
            assert!(
                !said.trim().is_empty(),
                "{args:?}: exit 2 without a message"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_figures_have_one_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = palisade_in(
        dir.path(),
        &[
            "replay",
            s(&demo("shop.pcap")),
            "--policy",
            s(&demo("policy.yaml")),
            "--inventory",
            s(&demo("inventory.yaml")),
            "--events",
            "none",
            "--format",
            "json",
        ],
    );
    let replay: Value = serde_json::from_slice(&o.stdout).expect("replay json");
    let o = palisade_in(
        dir.path(),
        &[
            "bench",
            "--flows",
            "20",
            "--seconds",
            "0.1",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bench: Value = serde_json::from_slice(&o.stdout).expect("bench json");
    for key in [
        "packets",
        "bytes",
        "elapsed_seconds",
        "packets_per_sec",
        "gbit_per_sec",
        "alerts",
    ] {
        assert!(replay[key].is_number(), "replay: {key}");
        assert!(bench[key].is_number(), "bench: {key}");
    }
    for key in ["accept", "drop", "reset"] {
        assert!(replay["packet_verdicts"][key].is_u64(), "replay: {key}");
        assert!(bench["packet_verdicts"][key].is_u64(), "bench: {key}");
    }
    for old in ["elapsed_s", "packets_per_s", "gbit_per_s", "dropped"] {
        assert!(
            replay.get(old).is_none() && bench.get(old).is_none(),
            "{old}"
        );
    }
}
