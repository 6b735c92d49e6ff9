//! Golden tests of diagnostics: the exact text a user sees, with file:line:col.

use control::{
    Code, WorkloadInventory, check, check_policy, compile, load_inventory_str, load_policy_str,
};

const HEAD: &str =
    "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: t}\nspec:\n";

/// Loads `spec` (after the 4 header lines) and returns the full check output.
fn report(spec: &str) -> String {
    let text = format!("{HEAD}{spec}");
    match load_policy_str(&text, "p.yaml") {
        Err(e) => e.to_string(),
        Ok(l) => {
            let inv = l.inventory.unwrap_or_else(WorkloadInventory::empty);
            let out = check_policy(&l.policy, &inv).to_string();
            assert!(out.ends_with('\n'));
            out.trim_end().to_owned()
        }
    }
}

#[test]
fn unknown_field_suggests_the_right_one() {
    assert_eq!(
        report("  mode: protect\n  defaultActon: deny\n"),
        "p.yaml:6:3: error: unknown field `defaultActon`\n  = help: did you mean `defaultAction`?"
    );
    assert_eq!(
        report("  mode: protect\n  colour: red\n"),
        "p.yaml:6:3: error: unknown field `colour`\n  = help: expected one of `mode`, `defaultAction`, `onUninspectable`, `groups`, `rules`"
    );
}

#[test]
fn unknown_keyword_value() {
    assert_eq!(
        report("  mode: protct\n"),
        "p.yaml:5:9: error: unknown value `protct`\n  = help: did you mean `protect`?"
    );
}

#[test]
fn wrong_api_version_and_kind() {
    let e = load_policy_str(
        "apiVersion: palisade.dev/v1beta\nkind: Policy\nmetadata: {name: t}\n",
        "p.yaml",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.yaml:1:13: error: unsupported apiVersion `palisade.dev/v1beta`\n  = help: this version of Palisade reads `apiVersion: palisade.dev/v1`\n\
         p.yaml:2:7: error: unknown kind `Policy`\n  = help: expected `SegmentationPolicy` or `WorkloadInventory`"
    );
}

#[test]
fn all_semantic_errors_are_collected() {
    let spec = r#"  groups:
    web: {selector: {app: web}, cidrs: [10.0.0.0/33]}
  rules:
    - {id: r1, from: [web], to: [web], ports: [0, 80, "90-80", 70000], action: allow}
    - {id: r1, from: [wbe], to: [stock], app: htp, action: deny}
    - {id: r3, from: [web], to: [web], app: redis, sql: [{verbs: [SELECT]}], action: deny}
    - {id: r4, from: [web], to: [web], app: http, http: [{paths: ["regex:/a(", "/v*/x", api]}], action: allow}
    - {id: r5, from: [web], to: [web], dns: [{names: [a.b]}], action: allow}
    - {id: r6, from: [web], to: [web], app: http2, action: allow}
"#;
    let expected = "\
p.yaml:6:41: error: invalid CIDR `10.0.0.0/33` in group `web`
  = help: write an address prefix such as `10.0.0.0/8` or `fd00::/64` (quote IPv6 in flow lists)
p.yaml:8:48: error: port `0` is out of range 1-65535 in rule `r1`
  = help: ports are 1-65535; write a range as \"8000-8100\"
p.yaml:8:55: error: port range `90-80` is empty (90 > 80) in rule `r1`
  = help: ports are 1-65535; write a range as \"8000-8100\"
p.yaml:8:64: error: port `70000` is out of range 1-65535 in rule `r1`
  = help: ports are 1-65535; write a range as \"8000-8100\"
p.yaml:9:12: error: duplicate rule id `r1`
  = help: rule ids must be unique; the first `r1` is at line 8
p.yaml:9:23: error: unknown group `wbe` in `from` of rule `r1`
  = help: did you mean `web`?
p.yaml:9:34: error: unknown group `stock` in `to` of rule `r1`
  = help: declare `stock` under `spec.groups`, or use \"*\" for any endpoint
p.yaml:9:47: error: unknown app `htp` in rule `r1`
  = help: did you mean `http`?
p.yaml:10:57: error: `sql` matchers do not fit `app: redis` in rule `r3`
  = help: `sql` judges app postgres or mysql; for `app: redis` use `redis:`
p.yaml:11:67: error: invalid regex in path pattern `regex:/a(`: unclosed group
  = help: the text after `regex:` is a regular expression (Rust syntax); escape special characters with `\\`
p.yaml:11:80: error: `*` in path pattern `/v*/x` is not a whole segment
  = help: `*` stands for exactly one segment (`/users/*/orders`) or, at the end, everything beneath (`/api/*`); use `regex:` for partial segments
p.yaml:11:89: error: path pattern `api` does not start with `/`
  = help: paths are matched from the root, e.g. `/api/*`; use `regex:` for other forms
p.yaml:12:45: error: `dns` matchers in rule `r5`, which has no `app`
  = help: add `app: dns` so the matchers know what they judge
p.yaml:13:45: error: unknown app `http2` in rule `r6`
  = help: `app: http` covers both HTTP/1.x and HTTP/2
failed: 14 errors, 0 warnings";
    assert_eq!(report(spec), expected);

    // compile() returns the same errors.
    let l = load_policy_str(&format!("{HEAD}{spec}"), "p.yaml").unwrap();
    let e = compile(&l.policy, &WorkloadInventory::empty(), 1).unwrap_err();
    assert_eq!(e.len(), 14);
    assert!(e.has(Code::InvalidRegex) && e.has(Code::L7Mismatch) && e.has(Code::DuplicateRuleId));
}

#[test]
fn shadowed_allow_is_a_warning() {
    let spec = r#"  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
  rules:
    - {id: web-api, from: [web], to: [api], ports: [8080], app: http, action: allow}
    - {id: lockdown, from: ["*"], to: [api], app: tcp, action: deny}
    - {id: l7-deny, from: ["*"], to: [api], app: http, http: [{methods: [DELETE]}], action: deny}
"#;
    assert_eq!(
        report(spec),
        "p.yaml:9:12: warning: allow rule `web-api` never allows anything: deny rule `lockdown` (line 10) matches all its traffic\n  \
         = help: deny wins regardless of order: narrow `lockdown` or remove `web-api`\n\
         p.yaml:11:12: warning: deny rule `l7-deny` never decides anything: the earlier deny rule `lockdown` (line 10) matches all its traffic\n  \
         = help: the first matching deny names the decision: remove `l7-deny`, or narrow `lockdown`\n\
         ok: 2 warnings"
    );
}

#[test]
fn yaml_shape_errors() {
    assert_eq!(
        report("  rules:\n    - {id: a, from: \"*\", to: [\"*\"], action: allow}\n"),
        "p.yaml:6:21: error: expected a list\n  = help: write a list, e.g. `[\"*\"]` or `[web, orders]`"
    );
    assert_eq!(
        report("  groups:\n    a: {selector: {x: y}}\n    a: {selector: {x: z}}\n"),
        "p.yaml:7:5: error: duplicate key `a`\n  = help: each key may appear once in a mapping; merge or rename the entries"
    );
    let missing = report("  rules:\n    - {id: a, from: [\"*\"], to: [\"*\"]}\n");
    assert!(
        missing.starts_with("p.yaml:6:") && missing.contains("error: missing field `action`"),
        "{missing}"
    );
}

#[test]
fn inventory_errors() {
    let inv = load_inventory_str(
        "apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: a, ips: [10.0.0.1, 10.0.0.300]}
  - {name: b, ips: [10.0.0.1], cidrs: [10.1.0.0/16]}
  - {name: a, ips: [10.0.0.0/24]}
  - {name: c}
",
        "inv.yaml",
    )
    .unwrap();
    let l = load_policy_str(&format!("{HEAD}  mode: monitor\n"), "p.yaml").unwrap();
    assert_eq!(
        check_policy(&l.policy, &inv).to_string().trim_end(),
        "inv.yaml:4:31: error: invalid IP address `10.0.0.300` in workload `a`
  = help: write an IPv4 or IPv6 address such as `10.0.1.5` or `\"fd00::2:7\"`
inv.yaml:5:21: error: address `10.0.0.1/32` is already owned by workload `a` (line 4)
  = help: an address belongs to one workload; remove one of the entries
inv.yaml:6:12: error: workload `default/a` is listed twice
  = help: the first `default/a` is at line 4; merge their addresses
inv.yaml:6:21: error: invalid IP address `10.0.0.0/24` in workload `a`
  = help: `ips` lists single addresses; put prefixes under `cidrs`
inv.yaml:7:12: warning: workload `c` has no `ips` or `cidrs`; no traffic can be attributed to it
  = help: add its addresses, or remove it
failed: 4 errors, 1 warning"
    );
}

#[test]
fn check_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.yaml");
    std::fs::write(&p, format!("{HEAD}  mode: monitor\n  rules:\n    - {{id: x, from: [nope], to: [\"*\"], action: allow}}\n")).unwrap();
    let r = check(&p, None);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(
        r.errors[0].to_string(),
        format!(
            "{}:7:22: error: unknown group `nope` in `from` of rule `x`\n  = help: declare `nope` under `spec.groups`, or use \"*\" for any endpoint",
            p.display()
        )
    );
    // A missing inventory file is reported along with the policy's own errors.
    let r = check(&p, Some(&dir.path().join("missing.yaml")));
    let codes: Vec<Code> = r.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, [Code::Io, Code::UnknownGroup]);
    assert!(
        r.to_string()
            .contains("missing.yaml: error: cannot open file")
    );
}

#[test]
fn hostile_inputs_do_not_panic() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let inputs = [
        bomb.to_owned(),
        deep,
        "\u{feff}".to_owned(),
        "---\n---\n".to_owned(),
        format!("{HEAD}  rules: [{{}}]\n"),
        format!(
            "{HEAD}  groups: {{a: {{cidrs: [\"\"]}}}}\n  rules:\n    - {{id: \"\", from: [], to: [], ports: [], action: allow}}\n"
        ),
        format!(
            "{HEAD}  rules:\n    - {{id: a, from: [\"*\"], to: [\"*\"], ports: [99999999999999999999], action: allow}}\n"
        ),
        format!(
            "{HEAD}  rules:\n    - {{id: a, from: [\"*\"], to: [\"*\"], ports: [-5, \"-\", \"1-\", \"x-y\"], action: allow}}\n"
        ),
    ];
    for text in &inputs {
        match load_policy_str(text, "p.yaml") {
            Ok(l) => {
                let _ = compile(&l.policy, &WorkloadInventory::empty(), 1);
                let _ = check_policy(&l.policy, &WorkloadInventory::empty());
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
}

#[test]
fn empty_matcher_lists_are_located() {
    let spec = "  groups: {web: {selector: {app: web}}}
  rules:
    - {id: r, from: [web], to: [web], app: http, http: [{methods: []}], action: allow}
    - {id: s, from: [web], to: [web], app: http, http: [], action: allow}
    - {id: t, from: [web], to: [web], app: http, http: [{methods: [get]}], action: allow}
";
    assert_eq!(
        report(spec),
        "p.yaml:7:67: error: empty `methods` list matches nothing
  = help: remove `methods` to match any value, or list at least one
p.yaml:8:56: error: empty `http` list in rule `s` matches nothing
  = help: remove `http` to judge only at L4, or list at least one matcher
p.yaml:9:68: error: HTTP method `get` is lower-case and will never match
  = help: methods are case-sensitive: write `GET`
failed: 3 errors, 0 warnings"
    );
}

#[test]
fn quarantine_belongs_on_deny_or_alert_rules() {
    let spec = |action: &str| {
        format!(
            "  groups:\n    a: {{cidrs: [10.0.0.0/8]}}\n  rules:\n    - {{id: q, from: [a], to: [a], action: {action}, quarantine: true}}\n"
        )
    };
    assert_eq!(
        report(&spec("allow")),
        "p.yaml:8:43: error: rule `q` has `quarantine: true` but allows\n  = help: quarantine belongs on a deny or alert rule: a match quarantines the source workload\nfailed: 1 error, 0 warnings"
    );
    assert_eq!(report(&spec("deny")), "ok: 0 warnings");
    assert_eq!(report(&spec("alert")), "ok: 0 warnings");
}
