//! `palisade bench`: the JSON report of a short run is complete and consistent with the
//! generated mix; bad arguments exit 2 with a message; `--write-pcap` writes a capture
//! that tshark reads (every protocol dissected, no malformed packet, no TCP analysis
//! warning) with an inventory and policy that `policy check` accepts, and that `replay
//! --log-all` judges: a transaction record (`http`, `pgsql`, `mysql`, `redis`, `dns`) for
//! every generated transaction, every protocol present with its own object, denials
//! exactly where the generator put them, and no decision left to the default.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for k in path.split('.') {
        cur = match k.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[k],
        };
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {cur}"))
}

const L7_PROTOCOLS: [&str; 6] = ["http", "grpc", "postgres", "mysql", "redis", "dns"];

#[test]
fn json_report_has_sane_figures_for_every_protocol() {
    let out = palisade(&[
        "bench",
        "--flows",
        "200",
        "--seconds",
        "1",
        "--format",
        "json",
    ]);
    let r = json_of(&out);
    let packets = num(&r, "packets");
    assert!(packets > 0.0);
    assert!(num(&r, "elapsed_seconds") >= 1.0, "ran at least --seconds");
    for k in [
        "packets_per_sec",
        "gbit_per_sec",
        "ns_per_packet",
        "worker_ns_per_packet",
        "transactions_per_sec",
        "flows_per_sec",
        "bytes",
    ] {
        let v = num(&r, k);
        assert!(v > 0.0 && v.is_finite(), "{k} = {v}");
    }
    // The rates agree with the counts.
    let secs = num(&r, "elapsed_seconds");
    let pps = num(&r, "packets_per_sec");
    assert!((pps * secs - packets).abs() / packets < 1e-6);
    assert!((num(&r, "ns_per_packet") * pps - 1e9).abs() < 1e3);
    let gbit = num(&r, "gbit_per_sec");
    assert!((gbit * 1e9 * secs / 8.0 - num(&r, "bytes")).abs() / num(&r, "bytes") < 1e-6);

    assert_eq!(num(&r, "flows"), 200.0);
    assert_eq!(num(&r, "pass.flows"), 200.0);
    assert_eq!(r["policy"]["source"], "generated");
    let rules = num(&r, "policy.rules");
    assert!((180.0..=230.0).contains(&rules), "{rules} rules");
    // Every transaction of the first pass was parsed and judged, none by the default.
    assert!(num(&r, "transactions") > 0.0);
    assert_eq!(
        num(&r, "transactions_first_pass"),
        num(&r, "pass.transactions")
    );
    assert_eq!(num(&r, "verdicts.transactions_by_default"), 0.0);
    assert_eq!(num(&r, "anomalies"), 0.0);
    // At least one whole pass; flows are counted per pass.
    let passes = num(&r, "per_worker.0.passes");
    assert!(passes >= 1.0);
    assert!(num(&r, "flows_created") >= 200.0 * passes);
    assert_eq!(num(&r, "per_worker.0.packets"), packets);

    for p in L7_PROTOCOLS {
        let pr = &r["protocols"][p];
        assert!(num(pr, "flows_per_pass") > 0.0, "{p}: {pr}");
        assert!(num(pr, "transactions_per_pass") > 0.0, "{p}: {pr}");
        assert!(num(pr, "packets_per_pass") > 0.0, "{p}: {pr}");
        assert_eq!(
            num(pr, "flows_detected_first_pass"),
            num(pr, "flows_per_pass"),
            "{p}: every flow detected"
        );
    }
    let per_proto: f64 = L7_PROTOCOLS
        .iter()
        .map(|p| num(&r["protocols"][*p], "transactions_per_pass"))
        .sum();
    assert_eq!(per_proto, num(&r, "pass.transactions"));

    let mem = &r["memory"];
    let peak = num(mem, "peak_rss_bytes");
    assert!(peak > num(mem, "preloaded_bytes"));
    assert!(peak >= num(mem, "rss_workers_ready_bytes"));
    assert!(num(mem, "peak_flows") > 0.0);
    assert_eq!(mem["peak_is_run_only"], true);
    let per_flow = num(mem, "bytes_per_flow");
    assert!(
        per_flow > 0.0 && per_flow < 1e7,
        "{per_flow} bytes per flow"
    );
}

#[test]
fn text_report_and_two_workers() {
    let out = palisade(&[
        "bench",
        "--flows",
        "150",
        "--seconds",
        "0.5",
        "--workers",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "palisade bench: 150 flows, 2 workers",
        "Mpps",
        "Gbit/s",
        "ns/packet",
        "transactions/s",
        "flows/s",
        "peak RSS",
        "bytes per flow",
    ] {
        assert!(text.contains(want), "no `{want}` in:\n{text}");
    }
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let cases: [(&[&str], &str); 7] = [
        (&["bench", "--flows", "0"], "--flows"),
        (&["bench", "--flows", "many"], "--flows"),
        (&["bench", "--workers", "0"], "--workers"),
        (&["bench", "--seconds=-1"], "--seconds"),
        (&["bench", "--seconds", "0"], "--seconds"),
        (&["bench", "--format", "xml"], "--format"),
        (
            &["bench", "--policy", "/nonexistent/policy.yaml"],
            "/nonexistent/policy.yaml",
        ),
    ];
    for (args, want) in cases {
        let out = palisade(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(want),
            "{args:?}: message does not name `{want}`: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: no report on bad input");
    }
}

#[test]
fn a_bad_policy_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(
        &p,
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - {id: r, from: [nope], to: [\"*\"], action: allow}\n",
    )
    .unwrap();
    let out = palisade(&["bench", "--flows", "10", "--policy", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.yaml:6"), "{err}");
}

/// tshark's protocol hierarchy for `capture` (gRPC's port decoded as HTTP/2): protocol
/// name -> frames.
fn tshark_protocols(capture: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("tshark")
        .args([
            "-n",
            "-d",
            "tcp.port==50051,http2",
            "-q",
            "-z",
            "io,phs",
            "-r",
        ])
        .arg(capture)
        .output()
        .expect("tshark runs (tests/peers/install.sh installs it)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut it = line.split_whitespace();
        if let (Some(name), Some(frames)) = (it.next(), it.next())
            && let Some(n) = frames.strip_prefix("frames:")
        {
            let e = m.entry(name.to_string()).or_insert(0);
            *e = (*e).max(n.parse().unwrap_or(0));
        }
    }
    m
}

fn tshark_count(capture: &Path, filter: &str) -> usize {
    let out = Command::new("tshark")
        .args(["-n", "-d", "tcp.port==50051,http2", "-r"])
        .arg(capture)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn written_capture_reads_in_tshark_and_replays_with_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("mix.pcap");
    let out = palisade(&[
        "bench",
        "--flows",
        "300",
        "--write-pcap",
        pcap.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let w = json_of(&out);
    let inventory = dir.path().join("mix-inventory.yaml");
    let policy = dir.path().join("mix-policy.yaml");
    for f in [&pcap, &inventory, &policy] {
        assert!(f.is_file(), "{} written", f.display());
    }
    let packets = num(&w, "packets") as u64;
    let transactions = num(&w, "transactions") as u64;
    let denied = num(&w, "denied_transactions") as u64;
    assert_eq!(num(&w, "flows"), 300.0);

    // tshark reads every frame and dissects every protocol of the mix.
    let phs = tshark_protocols(&pcap);
    assert_eq!(phs.get("eth").copied(), Some(packets), "{phs:?}");
    for p in ["http", "http2", "grpc", "pgsql", "mysql", "resp", "dns"] {
        assert!(
            phs.get(p).copied().unwrap_or(0) > 0,
            "tshark sees no {p}: {phs:?}"
        );
    }
    assert_eq!(tshark_count(&pcap, "_ws.malformed"), 0, "malformed packets");
    assert_eq!(
        tshark_count(&pcap, "tcp.analysis.flags"),
        0,
        "TCP analysis warnings"
    );

    // The policy is valid against the inventory, without warnings.
    let check = palisade(&[
        "policy",
        "check",
        policy.to_str().unwrap(),
        "--inventory",
        inventory.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("ok: 0 warnings"), "{text}");

    // Replayed with --log-all: a transaction record per transaction, for every protocol.
    let events = dir.path().join("events.json");
    let out = palisade(&[
        "replay",
        pcap.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--inventory",
        inventory.to_str().unwrap(),
        "--log-all",
        "--events",
        events.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let summary = json_of(&out);
    assert_eq!(num(&summary, "packets") as u64, packets);
    assert_eq!(num(&summary, "transactions.total") as u64, transactions);
    let verdicts = summary["transactions"]["verdicts"].as_array().unwrap();
    let count = |pred: &dyn Fn(&Value) -> bool| -> u64 {
        verdicts
            .iter()
            .filter(|v| pred(v))
            .map(|v| v["transactions"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count(&|v| v["rule"] == "default"), 0, "{verdicts:?}");
    assert_eq!(count(&|v| v["action"] == "deny"), denied, "{verdicts:?}");

    let events: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let l7: Vec<&Value> = events
        .iter()
        .filter(|e| {
            ["http", "dns", "tls", "pgsql", "mysql", "redis"]
                .iter()
                .any(|t| e["event_type"] == *t)
        })
        .collect();
    assert_eq!(
        l7.len() as u64,
        transactions,
        "one transaction record per transaction"
    );
    let mut by_proto: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &l7 {
        // gRPC calls travel in flows detected as http2 and carry a `grpc` object beside
        // their `http`. The generator's `postgres` is Suricata's `pgsql` (with Palisade's
        // `sql` beside it); MySQL's object is `sql`.
        let (p, event_type, objects): (&str, &str, &[&str]) = if e.get("grpc").is_some() {
            ("grpc", "http", &["http", "grpc"])
        } else {
            match e["app_proto"].as_str().unwrap() {
                "pgsql" => ("postgres", "pgsql", &["pgsql", "sql"]),
                "mysql" => ("mysql", "mysql", &["sql"]),
                "http" => ("http", "http", &["http"]),
                "redis" => ("redis", "redis", &["redis"]),
                "dns" => ("dns", "dns", &["dns"]),
                "tls" => ("tls", "tls", &["tls"]),
                other => panic!("a transaction record with app_proto {other}: {e}"),
            }
        };
        assert_eq!(e["event_type"], event_type, "{e}");
        for o in objects {
            assert!(e[o].is_object(), "{p} event without its `{o}` object: {e}");
        }
        *by_proto.entry(p).or_default() += 1;
    }
    for p in L7_PROTOCOLS {
        let want = num(&w["protocols"][p], "transactions") as u64;
        assert_eq!(
            by_proto.get(p).copied().unwrap_or(0),
            want,
            "{p}: {by_proto:?}"
        );
    }
    // SQL logins and statements, DNS answers and gRPC statuses are all there.
    // (event type, object): a record of that type whose object passes.
    let has = |t: &str, p: &str, f: &dyn Fn(&Value) -> bool| {
        l7.iter()
            .any(|e| e["event_type"] == t && e[p].is_object() && f(&e[p]))
    };
    assert!(has("pgsql", "sql", &|o| o["verb"] == "LOGIN"));
    assert!(has("pgsql", "sql", &|o| o["verb"] == "SELECT"));
    assert!(has("mysql", "sql", &|o| o["verb"] == "LOGIN"));
    assert!(has("mysql", "sql", &|o| o["verb"] == "UPDATE"));
    assert!(
        has("dns", "dns", &|o| o["rcode"] == "NXDOMAIN")
            || has("dns", "dns", &|o| o["rcode"] == "NOERROR")
    );
    assert!(has("http", "grpc", &|o| o["status"] == 0));
    assert!(has("http", "http", &|o| o["status"] == 200));
    assert!(has("redis", "redis", &|o| o["command"] == "GET"));
}
