//! The policy language reference (`docs/policy.md`), the README's policy and `examples/`
//! cannot drift from the parser: every YAML example there passes `palisade policy check`,
//! every field and value the parser accepts is documented, and every example policy
//! checks clean against its inventory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(args: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.args(["policy", "check"]);
    c.args(args);
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The ```yaml blocks of a Markdown file.
fn yaml_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => cur = Some(String::new()),
            (Some(_), "```") => out.extend(cur.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

/// Checks every YAML block of `md`: policies alone, inventories beside the first policy.
fn check_blocks(md: &str, what: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let blocks = yaml_blocks(md);
    let mut first_policy: Option<PathBuf> = None;
    let mut checked = 0;
    for (i, b) in blocks.iter().enumerate() {
        let f = dir.path().join(format!("block{i}.yaml"));
        std::fs::write(&f, b).unwrap();
        if b.contains("kind: SegmentationPolicy") {
            let o = check(&[&f]);
            assert!(o.status.success(), "{what} block {i}:\n{b}\n{}", text(&o));
            first_policy.get_or_insert(f);
            checked += 1;
        }
    }
    for (i, b) in blocks.iter().enumerate() {
        if b.contains("kind: WorkloadInventory") && !b.contains("kind: SegmentationPolicy") {
            let f = dir.path().join(format!("inventory{i}.yaml"));
            std::fs::write(&f, b).unwrap();
            let p = first_policy
                .as_ref()
                .expect("a policy to check the inventory with");
            let o = check(&[p, Path::new("--inventory"), &f]);
            assert!(o.status.success(), "{what} block {i}:\n{b}\n{}", text(&o));
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_yaml_example_of_the_reference_and_the_readme_checks() {
    let docs = std::fs::read_to_string(root().join("docs/policy.md")).unwrap();
    assert!(check_blocks(&docs, "docs/policy.md") >= 8);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        check_blocks(&readme, "README.md") >= 1,
        "the README shows a policy"
    );
}

/// What the parser says it expected instead of a value placed in `yaml`: the list after
/// "expected one of" (backticked or not).
fn expected(yaml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("probe.yaml");
    std::fs::write(&f, yaml).unwrap();
    let o = check(&[&f]);
    assert_eq!(o.status.code(), Some(2), "{yaml}\n{}", text(&o));
    let t = text(&o);
    let list = t
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("no list of expected values for\n{yaml}\n{t}"));
    let list = list.lines().next().unwrap_or_default();
    list.split(", ")
        .map(|v| v.trim().trim_matches('`').to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

const HEAD: &str = "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: p}\n";

fn rule_with(extra: &str) -> String {
    format!(
        "{HEAD}spec:\n  groups:\n    g: {{selector: {{app: a}}}}\n  rules:\n    - id: r\n      from: [g]\n      to: [g]\n{extra}      action: allow\n"
    )
}

#[test]
fn every_field_and_value_the_parser_accepts_is_documented() {
    let docs = std::fs::read_to_string(root().join("docs/policy.md")).unwrap();
    let inv = "apiVersion: palisade.dev/v1\nkind: WorkloadInventory\n";
    let probes: Vec<(&str, String)> = vec![
        ("policy", format!("{HEAD}spec: {{}}\nbogusField: 1\n")),
        (
            "metadata",
            "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: p, bogusField: 1}\nspec: {}\n".into(),
        ),
        ("spec", format!("{HEAD}spec: {{bogusField: 1}}\n")),
        (
            "group",
            format!("{HEAD}spec:\n  groups:\n    g: {{bogusField: 1}}\n"),
        ),
        ("rule", rule_with("      bogusField: 1\n")),
        (
            "http",
            rule_with("      app: http\n      http: [{bogusField: 1}]\n"),
        ),
        (
            "grpc",
            rule_with("      app: grpc\n      grpc: [{bogusField: 1}]\n"),
        ),
        (
            "sql",
            rule_with("      app: postgres\n      sql: [{bogusField: 1}]\n"),
        ),
        (
            "redis",
            rule_with("      app: redis\n      redis: [{bogusField: 1}]\n"),
        ),
        (
            "dns",
            rule_with("      app: dns\n      dns: [{bogusField: 1}]\n"),
        ),
        (
            "tls",
            rule_with("      app: tls\n      tls: [{bogusField: 1}]\n"),
        ),
        ("inventory", format!("{inv}bogusField: 1\n")),
        (
            "workload",
            format!("{inv}workloads:\n  - {{name: w, bogusField: 1}}\n"),
        ),
    ];
    // The first cell of every table row: where a field is documented.
    let documented: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
        .collect();
    let mut missing = Vec::new();
    for (what, yaml) in &probes {
        let fields = expected(yaml);
        assert!(!fields.is_empty(), "{what}");
        for f in fields {
            let name = format!("`{f}`");
            if !documented
                .iter()
                .any(|cell| cell.split(", ").any(|c| c == name))
            {
                missing.push(format!("{what} field `{f}`"));
            }
        }
    }
    let values: Vec<(&str, String)> = vec![
        ("mode", format!("{HEAD}spec: {{mode: bogus}}\n")),
        (
            "defaultAction",
            format!("{HEAD}spec: {{defaultAction: bogus}}\n"),
        ),
        (
            "onUninspectable",
            format!("{HEAD}spec: {{onUninspectable: bogus}}\n"),
        ),
        (
            "action",
            rule_with("").replace("action: allow", "action: bogus"),
        ),
        ("severity", rule_with("      severity: bogus\n")),
        ("app", rule_with("      app: bogus\n")),
    ];
    for (what, yaml) in &values {
        for v in expected(yaml) {
            if !docs.contains(&format!("`{v}`")) {
                missing.push(format!("{what} value `{v}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/policy.md does not document: {missing:?}"
    );
}

#[test]
fn every_example_policy_checks_clean_against_its_inventory() {
    let mut n = 0;
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let (p, i) = (dir.join("policy.yaml"), dir.join("inventory.yaml"));
        let o = check(&[&p, Path::new("--inventory"), &i]);
        assert!(o.status.success(), "{}: {}", dir.display(), text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "ok: 0 warnings",
            "{}",
            dir.display()
        );
        n += 1;
    }
    assert!(n >= 4, "examples/ has {n} policies");
}
