use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::decode::{Decoded, LinkType, Transport, decode};
use crate::events::{EventOutput, EventWriter};
use crate::inspect::ParserRegistry;
use crate::pipeline::{Worker, WorkerConfig};

fn frames(flows: u64, seed: u64) -> (Vec<(u64, Vec<u8>)>, MixStats) {
    let mut v = Vec::new();
    let stats = generate(flows, seed, &mut |ts, f| v.push((ts, f.to_vec())));
    (v, stats)
}

fn snapshot() -> control::PolicySnapshot {
    let p = control::load_policy_str(&policy_yaml(), "eastwest-policy.yaml").unwrap();
    let i = control::load_inventory_str(&inventory_yaml(), "eastwest-inventory.yaml").unwrap();
    control::compile(&p.policy, &i, 1).unwrap()
}

#[test]
fn deterministic_for_a_seed() {
    let (a, sa) = frames(300, 5);
    let (b, sb) = frames(300, 5);
    assert_eq!(sa, sb);
    assert!(a == b, "same seed, same bytes");
    let (c, _) = frames(300, 6);
    assert!(a != c, "the seed matters");
    assert_eq!(sa.total.sessions, 300);
    assert_eq!(sa.total.packets as usize, a.len());
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0), "timestamps increase");
}

type Tuple = (IpAddr, u16, IpAddr, u16);

/// Per direction of each TCP connection: every segment starts where the previous one
/// ended and acknowledges all the peer sent; every connection opens with a handshake and
/// ends with a FIN each way. UDP datagrams are DNS to or from port 53.
#[test]
fn tcp_sessions_are_complete_and_consistent() {
    let (v, stats) = frames(600, 11);
    let mut next: HashMap<Tuple, u32> = HashMap::new();
    let mut syns = 0;
    let mut fins = 0;
    let mut udp = 0;
    let mut biggest = 0;
    for (_, f) in &v {
        let Ok(Decoded::Ip(p)) = decode(LinkType::ETHERNET, f) else {
            panic!("does not decode");
        };
        match p.transport {
            Transport::Tcp(t) => {
                let tuple = (p.src, t.sport, p.dst, t.dport);
                if let Some(want) = next.get(&tuple) {
                    assert_eq!(t.seq, *want, "{tuple:?}: sequence gap");
                }
                let syn = t.flags & SYN != 0;
                let fin = t.flags & FIN != 0;
                syns += usize::from(syn && !t.has(0x10));
                fins += usize::from(fin);
                let used = t.payload.len() as u32 + u32::from(syn || fin);
                next.insert(tuple, t.seq.wrapping_add(used));
                let rev = (tuple.2, tuple.3, tuple.0, tuple.1);
                match (t.has(0x10), next.get(&rev)) {
                    (true, Some(peer)) => assert_eq!(t.ack, *peer, "{tuple:?}: stale ack"),
                    (false, None) => assert!(syn, "first segment must be a SYN"),
                    (a, b) => panic!("{tuple:?}: ack {a} with peer {b:?}"),
                }
                biggest = biggest.max(t.payload.len());
            }
            Transport::Udp { sport, dport, .. } => {
                assert!(sport == 53 || dport == 53);
                udp += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let tcp_flows = stats.total.sessions - stats.proto(Proto::Dns).flows;
    assert_eq!(syns as u64, tcp_flows, "one SYN per TCP flow");
    assert_eq!(fins as u64, 2 * tcp_flows, "a FIN each way");
    assert_eq!(udp, stats.proto(Proto::Dns).packets);
    assert_eq!(biggest, MSS, "large responses are cut at the MSS");
    for p in Proto::ALL {
        assert!(stats.proto(p).flows > 0, "{p:?} has flows");
    }
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
