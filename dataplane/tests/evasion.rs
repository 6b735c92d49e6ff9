//! The evasion corpus (`tests/data/evasion/`, see its README.md): every capture replayed by
//! the built `palisade` in protect mode.
//!
//! - Under `deny.yaml` the one request each capture carries must be denied by one of the
//!   outcomes the index's `deny` column lists (a deny by that rule, of the request or of its
//!   flow, or `onUninspectable`'s deny naming that cause); the exit status must be 0, and 1
//!   with `--fail-on-deny`.
//! - Under `allow.yaml` with `--log-all`, one of the `allow` column's outcomes must hold:
//!   the facts the receiver acts on reported in an event, or (where the firewall must fail
//!   closed) the flow counted as uninspectable for the listed cause; a decoy (`absent`) must
//!   not be reported as a request unless the flow went blind.
//!
//! One test per class; each checks all of its cases and reports every failing one, with
//! what palisade did instead, grouped by how bad it is: WALKED AROUND (deny.yaml denied
//! nothing), DENIED BUT NOT AS EXPECTED (another rule or cause, or failing closed where the
//! request should have been judged), WRONG FACTS (allow.yaml) and EXIT STATUS. Run with
//! `--nocapture` for a line per case saying which outcome held under each policy.
//!
//! Captures too large to commit are built into a temporary directory by the generator
//! itself (`traffic_gen::evasion`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use traffic_gen::evasion as generator;

// ---------------------------------------------------------------------------------------
// Reading palisade's output. Everything that knows the shape of events and of the summary
// is here, so that a change of event format (Suricata's EVE) is adapted in one place; the
// EVE names are accepted already where PRODUCT.md fixes them.

/// One transaction's facts, as an event reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reported {
    Http {
        method: String,
        path: String,
    },
    Sql {
        verbs: Vec<String>,
        tables: Vec<String>,
    },
    Redis {
        command: String,
        key: Option<String>,
    },
    Tls {
        sni: Option<String>,
    },
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reported::Http { method, path } => write!(f, "http {method} {path:?}"),
            Reported::Sql { verbs, tables } => {
                write!(f, "sql {} [{}]", verbs.join(";"), tables.join(","))
            }
            Reported::Redis { command, key } => {
                write!(f, "redis {command} {}", key.as_deref().unwrap_or("-"))
            }
            Reported::Tls { sni } => write!(f, "tls {}", sni.as_deref().unwrap_or("-")),
        }
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The first present of `obj[k]` for each key (today's names, then EVE's).
fn field(obj: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text(&obj[*k]))
}

/// The facts of an event that carries a protocol object (an `l7` record with
/// `--log-all`, an `alert` for a denied request; EVE: `http`, `pgsql`, ... records).
fn reported(e: &Value) -> Option<Reported> {
    let h = &e["http"];
    if h.is_object() {
        return Some(Reported::Http {
            method: field(h, &["method", "http_method"]).unwrap_or_default(),
            path: field(h, &["path", "url"]).unwrap_or_default(),
        });
    }
    // Today `postgres`/`mysql` hold the statement; EVE puts it in `sql` beside them.
    let sql = ["sql", "postgres", "mysql"]
        .iter()
        .map(|k| &e[*k])
        .find(|q| q.is_object() && !q["verb"].is_null());
    if let Some(q) = sql {
        let verbs = text(&q["verb"])
            .unwrap_or_default()
            .split(';')
            .map(|v| v.trim().to_ascii_uppercase())
            .collect();
        let tables = q["tables"]
            .as_array()
            .map(|t| t.iter().filter_map(text).collect())
            .unwrap_or_default();
        return Some(Reported::Sql { verbs, tables });
    }
    let r = &e["redis"];
    if r.is_object() {
        return Some(Reported::Redis {
            command: field(r, &["command"]).unwrap_or_default(),
            key: field(r, &["key"]),
        });
    }
    let t = &e["tls"];
    if t.is_object() {
        return Some(Reported::Tls {
            sni: field(t, &["sni"]),
        });
    }
    None
}

/// (action, rule, count) triples.
type Counts = Vec<(String, String, u64)>;

/// What the JSON summary says about verdicts.
#[derive(Clone, Debug, Default)]
struct Verdicts {
    /// Per flow: `verdicts[] {action, rule, flows}`.
    flows: Counts,
    /// Per request: `transactions.verdicts[] {action, rule, transactions}`.
    transactions: Counts,
    /// `uninspectable.decisions[] {cause, action, flows}` as (action, cause, flows).
    decisions: Counts,
    /// `uninspectable.flows {cause: n}`: flows that went blind, decided or not.
    blind: Vec<(String, u64)>,
    /// `anomalies {name: n}`, for diagnostics.
    anomalies: Vec<(String, u64)>,
}

fn counts(v: &Value, key: &str, count: &str) -> Counts {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        text(&x["action"]).unwrap_or_default(),
                        text(&x[key]).unwrap_or_default(),
                        x[count].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn map_counts(v: &Value) -> Vec<(String, u64)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn verdicts(summary: &Value) -> Verdicts {
    Verdicts {
        flows: counts(&summary["verdicts"], "rule", "flows"),
        transactions: counts(&summary["transactions"]["verdicts"], "rule", "transactions"),
        decisions: counts(&summary["uninspectable"]["decisions"], "cause", "flows"),
        blind: map_counts(&summary["uninspectable"]["flows"]),
        anomalies: map_counts(&summary["anomalies"]),
    }
}

// ---------------------------------------------------------------------------------------
// Running palisade

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus() -> PathBuf {
    root().join("tests/data/evasion")
}

struct Run {
    code: i32,
    verdicts: Verdicts,
    reported: Vec<Reported>,
    stderr: String,
}

fn replay(capture: &Path, policy: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(capture)
        .arg("--policy")
        .arg(corpus().join(policy))
        .arg("--events")
        .arg(&events)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let reported = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| reported(&e))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        verdicts: verdicts(&summary),
        reported,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// The index

/// `http METHOD PATH`, `sql VERB TABLE`, `redis COMMAND [KEY]`, `tls SNI`.
#[derive(Clone, Debug)]
struct Fact(Vec<String>);

#[derive(Clone, Debug)]
enum Expect {
    Rule(String),
    Blind(String),
    Fact(Fact),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Rule(r) => write!(f, "rule:{r}"),
            Expect::Blind(c) => write!(f, "blind:{c}"),
            Expect::Fact(x) => write!(f, "{}", x.0.join(" ")),
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    class: String,
    committed: bool,
    deny: Vec<Expect>,
    allow: Vec<Expect>,
    absent: Option<Fact>,
    trick: String,
}

fn expects(s: &str) -> Vec<Expect> {
    s.split(" | ")
        .map(|e| {
            if let Some(r) = e.strip_prefix("rule:") {
                Expect::Rule(r.to_string())
            } else if let Some(c) = e.strip_prefix("blind:") {
                Expect::Blind(c.to_string())
            } else {
                Expect::Fact(Fact(e.split(' ').map(str::to_string).collect()))
            }
        })
        .collect()
}

fn index() -> Vec<Case> {
    let tsv = std::fs::read_to_string(corpus().join("cases.tsv")).unwrap();
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 7, "cases.tsv: {l:?}");
            Case {
                name: f[0].into(),
                class: f[1].into(),
                committed: f[2] == "yes",
                deny: expects(f[3]),
                allow: expects(f[4]),
                absent: (f[5] != "-").then(|| Fact(f[5].split(' ').map(str::to_string).collect())),
                trick: f[6].into(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Judging

/// A request path as PRODUCT.md says rules see it: without scheme and authority (absolute
/// form), query or fragment; unreserved characters percent-decoded; repeated slashes
/// merged; `.` and `..` segments resolved.
fn normalise(path: &str) -> String {
    let mut p = path;
    if let Some(i) = p.find("://") {
        p = &p[i + 3..];
        p = p.find('/').map_or("/", |j| &p[j..]);
    }
    let p = p.split(['?', '#']).next().unwrap_or_default();
    let b = p.as_bytes();
    let mut dec = String::new();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                dec.push(c as char);
                i += 3;
                continue;
            }
        }
        dec.push(b[i] as char);
        i += 1;
    }
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = dec.split('/').filter(|s| !s.is_empty()).collect();
    for s in &segs {
        match *s {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut n = format!("/{}", out.join("/"));
    if dec.ends_with('/') && n != "/" {
        n.push('/');
    }
    n
}

fn fact_matches(f: &Fact, r: &Reported) -> bool {
    let w: Vec<&str> = f.0.iter().map(String::as_str).collect();
    match (w.as_slice(), r) {
        (["http", m, p], Reported::Http { method, path }) => method == m && normalise(path) == *p,
        (["sql", v, t], Reported::Sql { verbs, tables }) => {
            verbs.iter().any(|x| x.eq_ignore_ascii_case(v))
                && tables.iter().any(|x| {
                    x.rsplit('.')
                        .next()
                        .is_some_and(|n| n.trim_matches('"').eq_ignore_ascii_case(t))
                })
        }
        (["redis", c, rest @ ..], Reported::Redis { command, key }) => {
            command.eq_ignore_ascii_case(c)
                && match rest {
                    [] => true,
                    [k] => key.as_deref() == Some(*k),
                    _ => false,
                }
        }
        (["tls", s], Reported::Tls { sni }) => sni.as_deref() == Some(*s),
        _ => false,
    }
}

fn list(c: &Counts) -> String {
    if c.is_empty() {
        return "-".into();
    }
    c.iter()
        .map(|(a, r, n)| format!("{a} {r} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pairs(c: &[(String, u64)]) -> String {
    if c.is_empty() {
        return "-".into();
    }
    c.iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(v: &Verdicts) -> String {
    format!(
        "flows: {}; requests: {}; onUninspectable: {}; blind: {}; anomalies: {}",
        list(&v.flows),
        list(&v.transactions),
        list(&v.decisions),
        pairs(&v.blind),
        pairs(&v.anomalies)
    )
}

fn denied_by(v: &Verdicts, e: &Expect) -> bool {
    let deny =
        |c: &Counts, what: &str| c.iter().any(|(a, r, n)| a == "deny" && r == what && *n > 0);
    match e {
        Expect::Rule(r) => deny(&v.transactions, r) || deny(&v.flows, r),
        Expect::Blind(c) => deny(&v.decisions, c),
        Expect::Fact(_) => false,
    }
}

fn anything_denied(v: &Verdicts) -> bool {
    [&v.flows, &v.transactions, &v.decisions]
        .iter()
        .any(|c| c.iter().any(|(a, _, n)| a == "deny" && *n > 0))
}

fn blind(v: &Verdicts, cause: &str) -> bool {
    v.blind.iter().any(|(c, n)| c == cause && *n > 0)
}

fn expected(e: &[Expect]) -> String {
    e.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// How a case fails, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// deny.yaml denied nothing: the trick walks the request around the rule.
    WalkedAround,
    /// deny.yaml denied something, but not as the index expects (another rule, another
    /// uninspectable cause, fail-closed where the request should have been judged).
    DeniedOtherwise,
    /// allow.yaml: the facts the receiver acts on are not reported (or a decoy is).
    WrongFacts,
    /// An exit status other than 0 (1 with `--fail-on-deny`).
    ExitStatus,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::WalkedAround,
        Kind::DeniedOtherwise,
        Kind::WrongFacts,
        Kind::ExitStatus,
    ];

    fn short(self) -> &'static str {
        match self {
            Kind::WalkedAround => "EVADED",
            Kind::DeniedOtherwise => "OTHER",
            Kind::WrongFacts => "FACTS",
            Kind::ExitStatus => "EXIT",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::WalkedAround => "WALKED AROUND (deny.yaml denied nothing)",
            Kind::DeniedOtherwise => "DENIED, BUT NOT AS EXPECTED (deny.yaml)",
            Kind::WrongFacts => "WRONG FACTS (allow.yaml --log-all)",
            Kind::ExitStatus => "EXIT STATUS",
        }
    }
}

/// Every failure of one case (its kind and a line naming the case and the policy), and a
/// line saying which outcomes held.
fn check(case: &Case, capture: &Path) -> (Vec<(Kind, String)>, String) {
    let mut fails = Vec::new();
    let name = &case.name;

    // deny.yaml
    let run = replay(capture, "deny.yaml", &[]);
    if run.code != 0 {
        fails.push((
            Kind::ExitStatus,
            format!(
                "{name}: deny.yaml: exit status {} (want 0): {}",
                run.code,
                run.stderr.trim()
            ),
        ));
    }
    let deny_held = case.deny.iter().find(|e| denied_by(&run.verdicts, e));
    if deny_held.is_none() {
        let kind = if anything_denied(&run.verdicts) {
            Kind::DeniedOtherwise
        } else {
            Kind::WalkedAround
        };
        fails.push((
            kind,
            format!(
                "{name}: deny.yaml: want {}; got {}",
                expected(&case.deny),
                describe(&run.verdicts)
            ),
        ));
    }
    let strict = replay(capture, "deny.yaml", &["--fail-on-deny"]);
    if strict.code != 1 {
        fails.push((
            Kind::ExitStatus,
            format!(
                "{name}: deny.yaml --fail-on-deny: exit status {} (want 1; {}) {}",
                strict.code,
                describe(&strict.verdicts),
                strict.stderr.trim()
            ),
        ));
    }

    // allow.yaml
    let run = replay(capture, "allow.yaml", &["--log-all"]);
    if run.code != 0 {
        fails.push((
            Kind::ExitStatus,
            format!(
                "{name}: allow.yaml: exit status {} (want 0): {}",
                run.code,
                run.stderr.trim()
            ),
        ));
    }
    let decoy = case
        .absent
        .as_ref()
        .is_some_and(|f| run.reported.iter().any(|r| fact_matches(f, r)));
    let allow_held = case.allow.iter().find(|e| match e {
        Expect::Fact(f) => !decoy && run.reported.iter().any(|r| fact_matches(f, r)),
        Expect::Blind(c) => blind(&run.verdicts, c),
        Expect::Rule(_) => false,
    });
    if allow_held.is_none() {
        let mut reported: Vec<String> = run.reported.iter().map(|r| r.to_string()).collect();
        if reported.len() > 12 {
            let more = reported.len() - 12;
            reported.truncate(12);
            reported.push(format!("... {more} more"));
        }
        let decoy = match (&case.absent, decoy) {
            (Some(f), true) => format!(" the decoy `{}` is reported;", f.0.join(" ")),
            _ => String::new(),
        };
        fails.push((
            Kind::WrongFacts,
            format!(
                "{name}: allow.yaml:{decoy} want {}; reported [{}]; {}",
                expected(&case.allow),
                reported.join(", "),
                describe(&run.verdicts)
            ),
        ));
    }
    let held = |e: Option<&Expect>| e.map_or_else(|| "NONE".to_string(), |e| e.to_string());
    let worst = fails.iter().map(|f| f.0).min().map_or("ok", Kind::short);
    let line = format!(
        "{worst:6} {name}: deny.yaml {}, allow.yaml {}",
        held(deny_held),
        held(allow_held)
    );
    (fails, line)
}

/// Checks every case of `class`; fails listing every failing case, by kind of failure.
fn class(class: &str) {
    let cases: Vec<Case> = index().into_iter().filter(|c| c.class == class).collect();
    assert!(!cases.is_empty(), "no {class} case in cases.tsv");
    let tmp = tempfile::tempdir().unwrap();
    let mut fails: Vec<(Kind, String)> = Vec::new();
    let mut lines = Vec::new();
    for case in &cases {
        let capture = if case.committed {
            corpus().join(format!("{}.pcap", case.name))
        } else {
            match generator::case(&case.name) {
                Some(c) => generator::write_case(c, tmp.path()).unwrap(),
                None => {
                    fails.push((
                        Kind::ExitStatus,
                        format!("{}: not in the generator", case.name),
                    ));
                    continue;
                }
            }
        };
        let (f, line) = check(case, &capture);
        eprintln!("{line}");
        lines.push(line);
        fails.extend(f);
    }
    if fails.is_empty() {
        return;
    }
    let mut report = format!(
        "{} of {} {class} cases fail\n\n",
        lines.iter().filter(|l| !l.starts_with("ok")).count(),
        cases.len()
    );
    for kind in Kind::ALL {
        let of: Vec<&String> = fails.iter().filter(|f| f.0 == kind).map(|f| &f.1).collect();
        if of.is_empty() {
            continue;
        }
        report += &format!("{}:\n", kind.title());
        for f in of {
            let name = f.split(':').next().unwrap_or_default();
            let trick = cases
                .iter()
                .find(|c| c.name == name)
                .map_or("", |c| c.trick.as_str());
            report += &format!("  {f}\n      trick: {trick}\n");
        }
        report += "\n";
    }
    report += "every case (the worst failure, and which outcome held under each policy):\n  ";
    report += &lines.join("\n  ");
    panic!("{report}");
}

#[test]
fn baseline() {
    class("baseline");
}

#[test]
fn http1() {
    class("http1");
}

#[test]
fn http2() {
    class("http2");
}

#[test]
fn sql() {
    class("sql");
}

#[test]
fn redis() {
    class("redis");
}

#[test]
fn tcp() {
    class("tcp");
}

#[test]
fn ip() {
    class("ip");
}

#[test]
fn tls() {
    class("tls");
}

#[test]
fn index_covers_every_class_and_the_generator() {
    let cases = index();
    assert!(cases.iter().filter(|c| c.class != "baseline").count() >= 30);
    for c in &cases {
        assert!(
            generator::case(&c.name).is_some(),
            "{}: in cases.tsv, not in the generator",
            c.name
        );
        if c.committed {
            assert!(
                corpus().join(format!("{}.pcap", c.name)).exists(),
                "{}.pcap is not committed",
                c.name
            );
        }
    }
    assert_eq!(cases.len(), generator::CASES.len());
}

#[test]
fn paths_normalise_as_product_md_says() {
    for (p, want) in [
        ("/admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/x/../admin", "/admin"),
        ("//admin", "/admin"),
        ("/./admin?x=1", "/admin"),
        ("http://web.test/admin", "/admin"),
        ("/%2fadmin", "/%2fadmin"),
        ("/admin/", "/admin/"),
    ] {
        assert_eq!(normalise(p), want, "{p}");
    }
}
