//! The committed evasion corpus (`tests/data/evasion/`) is exactly what `gen-evasion`
//! writes now: regenerate into a temporary directory and compare bytes. A change to the
//! generator must come with the regenerated corpus (README.md there says how).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use traffic_gen::evasion::{self, CASES};

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/evasion")
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The captures the index marks as not committed (built by the data plane's test).
fn not_committed(index: &str) -> BTreeSet<String> {
    index
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(2) == Some(&"no")).then(|| format!("{}.pcap", f[0]))
        })
        .collect()
}

#[test]
fn committed_corpus_is_what_the_generator_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let written = evasion::write_corpus(tmp.path()).unwrap();
    assert_eq!(written.cases, CASES.len());
    let fresh = files(tmp.path());
    let repo = committed_dir();
    let have = files(&repo);
    let index = std::fs::read_to_string(tmp.path().join("cases.tsv")).unwrap();
    let big = not_committed(&index);
    assert_eq!(big.len(), written.cases - written.committed);

    let mut problems = Vec::new();
    for f in &fresh {
        let new = std::fs::read(tmp.path().join(f)).unwrap();
        match std::fs::read(repo.join(f)) {
            Ok(old) if old == new => {}
            Ok(old) => problems.push(format!(
                "{f}: differs from the generator's output ({} bytes committed, {} generated)",
                old.len(),
                new.len()
            )),
            // Large captures are gitignored; present only where someone generated them.
            Err(_) if big.contains(f) => {}
            Err(e) => problems.push(format!("{f}: not in tests/data/evasion ({e})")),
        }
    }
    for f in have.difference(&fresh) {
        problems.push(format!(
            "{f}: in tests/data/evasion but not generated any more"
        ));
    }
    assert!(
        problems.is_empty(),
        "tests/data/evasion is stale; regenerate with \
         `cargo run -p traffic-gen --bin gen-evasion -- tests/data/evasion`:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn generation_is_deterministic() {
    for c in CASES {
        let a = c.capture();
        let b = c.capture();
        assert!(a.frames() == b.frames(), "{}: two runs differ", c.name);
        assert_eq!(
            a.frames().first().map(|f| f.0),
            Some(traffic_gen::generate::START_NS),
            "{}: starts at 2026-11-22T06:00:00Z",
            c.name
        );
    }
}

#[test]
fn cases_are_well_formed() {
    let mut classes = BTreeSet::new();
    for (i, c) in CASES.iter().enumerate() {
        assert!(c.name.starts_with(&format!("{}-", c.class)), "{}", c.name);
        assert!(
            CASES[..i].iter().all(|d| d.name != c.name),
            "{} twice",
            c.name
        );
        assert!(!c.deny.is_empty() && !c.allow.is_empty(), "{}", c.name);
        assert!(!c.trick.contains('\t') && !c.trick.contains('\n'));
        classes.insert(c.class);
    }
    let evasions = CASES.iter().filter(|c| c.class != "baseline").count();
    assert!(evasions >= 30, "{evasions} evasion cases");
    for class in ["http1", "http2", "sql", "redis", "tcp", "ip", "tls"] {
        assert!(classes.contains(class), "no {class} case");
    }
}

#[test]
fn helpers_build_what_they_say() {
    assert_eq!(evasion::base64url(b""), "");
    assert_eq!(evasion::base64url(b"f"), "Zg");
    assert_eq!(evasion::base64url(b"fo"), "Zm8");
    assert_eq!(evasion::base64url(b"foo"), "Zm9v");
    assert_eq!(evasion::base64url(b"foobar"), "Zm9vYmFy");
    assert_eq!(evasion::base64url(&[0xfb, 0xff]), "-_8");
    for (total, field) in [(24 * 1024, 8 * 1024), (300_000, 16 * 1024)] {
        let h = evasion::padded_admin(total, field);
        assert!(h.len() >= total && h.len() < total + 64, "{}", h.len());
        assert!(h.ends_with("\r\n\r\n") && h.starts_with("GET /admin "));
    }
    assert_eq!(evasion::admin_of_len(300).len(), 300);
}
