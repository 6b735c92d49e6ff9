//! Every event Palisade writes is a Suricata 7 EVE record (PRODUCT.md, "Events").
//!
//! Replays every recorded capture under `tests/data/` (each folder's pcap and pcapng files,
//! the evasion corpus included) with the built `palisade replay --log-all` under
//! `tests/data/eve-schema-policy.yaml` here (a deny rule and two alert rules that fire on
//! requests the captures hold) with the candidate `eve-schema-shadow.yaml` beside it (its
//! `shadow` records), adds the events of `palisade demo`, and runs
//! `tests/eve/check_eve.py` over all of them: Suricata 7.0.9's schema from
//! `../shared/reference/` with Palisade's documented additions, plus the rules the schema
//! cannot express (see `tests/eve/README.md`). The test fails with the checker's grouped
//! report. It needs python3 with jsonschema (`bash tests/peers/install.sh` installs
//! `python3-jsonschema`, listed in `tests/peers/packages/eve.txt`) and fails, not skips,
//! without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// Every capture file under `dir`, recursively, in a stable order.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

fn shown(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// python3 and its jsonschema module, or a failure that says how to get them.
fn require_python() {
    let probe = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 has no jsonschema module: run `bash tests/peers/install.sh` \
             (installs python3-jsonschema, tests/peers/packages/eve.txt)\n{}",
            shown(&o)
        ),
        Err(e) => panic!(
            "python3 is needed to check events against Suricata's EVE schema ({e}): \
             run `bash tests/peers/install.sh`"
        ),
    }
}

#[test]
fn every_event_is_suricata_eve() {
    require_python();
    let root = repo();
    let schema = root.join("../shared/reference/suricata-7.0.9-eve-schema.json");
    assert!(
        schema.is_file(),
        "Suricata's EVE schema is read from {} (shared/ beside the repository)",
        schema.display()
    );
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eve-schema-policy.yaml");
    let shadow = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eve-schema-shadow.yaml");
    let tmp = tempfile::tempdir().expect("temporary directory");

    let mut caps = Vec::new();
    captures(&root.join("tests/data"), &mut caps);
    assert!(
        caps.len() >= 60,
        "expected the recorded captures and the evasion corpus under tests/data, found {}",
        caps.len()
    );

    let mut files: Vec<PathBuf> = Vec::new();
    for cap in &caps {
        let rel = cap.strip_prefix(root.join("tests/data")).unwrap_or(cap);
        let name = rel.to_string_lossy().replace(['/', '.'], "_");
        let events = tmp.path().join(format!("{name}.jsonl"));
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("replay")
            .arg(cap)
            .arg("--policy")
            .arg(&policy)
            .arg("--log-all")
            .arg("--shadow")
            .arg(&shadow)
            .arg("--events")
            .arg(&events)
            .output()
            .expect("run palisade replay");
        assert!(
            out.status.success(),
            "palisade replay {} failed\n{}",
            rel.display(),
            shown(&out)
        );
        files.push(events);
    }

    // `palisade demo` writes palisade-demo/eve.json under its current directory.
    let demo_dir = tmp.path().join("demo");
    std::fs::create_dir_all(&demo_dir).expect("demo directory");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("demo")
        .current_dir(&demo_dir)
        .output()
        .expect("run palisade demo");
    assert!(
        out.status.success(),
        "palisade demo failed\n{}",
        shown(&out)
    );
    files.push(demo_dir.join("palisade-demo/eve.json"));

    for f in &files {
        let len = std::fs::metadata(f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .len();
        assert!(len > 0, "{} is empty: no events were written", f.display());
    }

    // The candidate disagrees on flows and on transactions of several protocols.
    let shadow_records: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"event_type\":\"shadow\""))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for key in ["\"pgsql\":", "\"sql\":", "\"tls\":", "\"redis\":"] {
        assert!(
            shadow_records.iter().any(|l| l.contains(key)),
            "no shadow record carries {key} (of {})",
            shadow_records.len()
        );
    }
    assert!(
        shadow_records.iter().any(|l| !l.contains("\"tx_id\"")),
        "no flow-level shadow record"
    );

    let out = Command::new("python3")
        .arg(root.join("tests/eve/check_eve.py"))
        .arg("--schema")
        .arg(&schema)
        .args(
            files
                .iter()
                .map(|f| f.strip_prefix(tmp.path()).unwrap_or(f)),
        )
        .current_dir(tmp.path())
        .output()
        .expect("run tests/eve/check_eve.py");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "events of {} captures and the demo are not Suricata 7 EVE \
         (tests/eve/check_eve.py; file names are relative to a temporary directory):\n{}{}",
        caps.len(),
        report,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
}

/// The checker itself: Suricata-shaped records of every kind Palisade writes (the examples
/// of `tests/eve/SURICATA-EVE.md` with Palisade's additions) pass, and each line of the
/// bad examples is reported.
#[test]
fn checker_accepts_suricata_shapes_and_reports_the_rest() {
    require_python();
    let eve = repo().join("tests/eve");
    let run = |file: &str| {
        Command::new("python3")
            .args(["check_eve.py", "--all", file])
            .current_dir(&eve)
            .output()
            .expect("run tests/eve/check_eve.py")
    };
    let good = run("examples-good.jsonl");
    assert!(
        good.status.success(),
        "good examples rejected\n{}",
        shown(&good)
    );
    let bad = run("examples-bad.jsonl");
    assert_eq!(bad.status.code(), Some(1), "bad examples\n{}", shown(&bad));
    let report = String::from_utf8_lossy(&bad.stdout);
    let lines = std::fs::read_to_string(eve.join("examples-bad.jsonl")).expect("bad examples");
    for n in 1..=lines.lines().count() {
        assert!(
            report.contains(&format!("examples-bad.jsonl:{n}: ")),
            "line {n} of examples-bad.jsonl not reported\n{report}"
        );
    }
}
