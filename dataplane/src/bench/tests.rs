//! The generated traffic through the data plane: the east-west mix's policy is valid and
//! the pipeline parses and judges every transaction the generator wrote; a generated
//! capture reads back through the product's capture reader. (The generator's own checks,
//! determinism and TCP consistency, are in the `traffic-gen` crate.)

use std::sync::Arc;

use traffic_gen::eastwest::{Proto, generate_frames, inventory_yaml, policy_yaml, workload_count};
use traffic_gen::generate;

use crate::decode::LinkType;
use crate::events::{EventOutput, EventWriter};
use crate::inspect::ParserRegistry;
use crate::pipeline::{Worker, WorkerConfig};

fn snapshot() -> control::PolicySnapshot {
    let p = control::load_policy_str(&policy_yaml(), "eastwest-policy.yaml").unwrap();
    let i = control::load_inventory_str(&inventory_yaml(), "eastwest-inventory.yaml").unwrap();
    control::compile(&p.policy, &i, 1).unwrap()
}

#[test]
fn policy_is_valid_without_warnings_and_has_about_200_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (p, i) = (dir.path().join("p.yaml"), dir.path().join("i.yaml"));
    std::fs::write(&p, policy_yaml()).unwrap();
    std::fs::write(&i, inventory_yaml()).unwrap();
    let report = control::check(&p, Some(&i));
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.warnings.is_empty(), "{report}");
    let s = snapshot();
    assert!(
        (180..=230).contains(&s.rule_count()),
        "{} rules",
        s.rule_count()
    );
    assert_eq!(s.workload_count(), workload_count());
    assert!(workload_count() >= 36, "dozens of workloads");
    let y = policy_yaml();
    for app in ["http", "grpc", "postgres", "mysql", "redis", "dns", "tls"] {
        let key = if matches!(app, "postgres" | "mysql") {
            "sql"
        } else {
            app
        };
        assert!(
            y.lines()
                .any(|l| l.contains(&format!("app: {app},")) && l.contains(&format!("{key}: [{{"))),
            "an L7 rule for {app}"
        );
    }
}

/// The mix through a worker with the generated policy: every protocol is detected and
/// parsed, every transaction the generator wrote is judged, the ones meant to be denied
/// (and only those) are denied by deny rules, and no decision falls to the default.
#[test]
fn the_pipeline_parses_and_judges_every_transaction() {
    let (frames, mix) = generate_frames(1_500, 3);
    let snap = Arc::new(snapshot());
    let writer = EventWriter::start(EventOutput::Discard).unwrap();
    let mut w = Worker::new(
        0,
        WorkerConfig::default(),
        ParserRegistry::builtin(),
        writer.sender(),
    );
    for (ts, f) in frames.iter() {
        w.process(ts, LinkType::ETHERNET, f, f.len() as u32, &snap);
    }
    w.finish();
    let st = &w.stats;
    let anomalies: Vec<_> = st.anomalies.iter().filter(|(_, n)| **n > 0).collect();
    assert!(anomalies.is_empty(), "{anomalies:?}");
    assert_eq!(
        st.transactions, mix.total.transactions,
        "every transaction parsed"
    );
    for p in Proto::ALL {
        if p == Proto::Tcp {
            continue;
        }
        assert_eq!(
            st.app_protos.get(p.detected_as()).copied().unwrap_or(0),
            mix.proto(p).flows,
            "{p:?} flows detected"
        );
    }
    // (Read through `iter()` with this pattern so it does not depend on the table's type.)
    let tx: Vec<(&str, &str, u64)> = st
        .tx_verdicts
        .iter()
        .map(|((a, rule), n)| (*a, rule.as_str(), *n))
        .collect();
    let fl: Vec<(&str, &str, u64)> = st
        .verdicts
        .iter()
        .map(|((a, rule), n)| (*a, rule.as_str(), *n))
        .collect();
    let sum = |v: &[(&str, &str, u64)], action: &str| -> u64 {
        v.iter().filter(|t| t.0 == action).map(|t| t.2).sum()
    };
    let by_default: Vec<_> = tx.iter().filter(|t| t.1 == "default").collect();
    assert!(by_default.is_empty(), "decided by no rule: {by_default:?}");
    assert_eq!(sum(&tx, "deny"), mix.denied, "{tx:?}");
    assert_eq!(sum(&tx, "alert"), mix.alerted, "{tx:?}");
    assert!(mix.denied > 0 && mix.alerted > 0);
    let flows: u64 = fl.iter().map(|t| t.2).sum();
    assert_eq!(flows, mix.total.sessions);
    let flows_by_default: Vec<_> = fl.iter().filter(|t| t.1 == "default").collect();
    assert!(flows_by_default.is_empty(), "{fl:?}");
    drop(w);
    writer.finish().unwrap();
}

#[test]
fn written_pcap_reads_back_little_endian() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.pcap");
    let stats = generate::write_sessions(&path, 50, 1).unwrap();
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(
        &raw[..4],
        &[0x4d, 0x3c, 0xb2, 0xa1],
        "little-endian nanosecond magic"
    );

    let mut f = crate::io::pcap::CaptureFile::open(&path).unwrap();
    let mut frames = Vec::new();
    while f
        .next_packet(&mut |p| frames.push((p.ts_ns, p.data.to_vec())))
        .unwrap()
        .is_some()
    {}
    assert_eq!(frames.len() as u64, stats.packets);
    assert_eq!(frames.first().map(|f| f.0 > generate::START_NS), Some(true));
    let mut again = Vec::new();
    generate::sessions(50, 1, &mut |ts, f| again.push((ts, f.to_vec())));
    assert_eq!(frames, again, "timestamps and bytes survive the file");
}
