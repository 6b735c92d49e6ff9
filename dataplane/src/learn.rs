//! `palisade learn CAPTURE... [--inventory WORKLOADS.yaml] -o POLICY.yaml`: replays the
//! captures under a policy in `learn` mode (the inventory's groups, no rules: everything is
//! allowed and every transaction logged), turns the events into observations and writes
//! the allow rules `control::learn` proposes for them. The proposal is compiled before it
//! is written, so what lands in the file always loads.
//!
//! Reading the replay's own events keeps one source of truth: the proposal is built from
//! exactly the fields users see in `l7` and `flow` events (workload groups, ports, the
//! detected app, the L7 objects), judged by the same pipeline.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use control::learn::{Detail, Learner, Observation, Peer, learning_policy};
use control::model::WorkloadInventory;
use serde_json::Value;

use crate::events::EventOutput;
use crate::pipeline::{ReplayOptions, WorkerConfig, run_replay};

/// What `palisade learn` did.
#[derive(Debug, Default)]
pub struct LearnReport {
    pub flows: u64,
    pub transactions: u64,
    pub rules: usize,
    /// Flows no rule can express (ICMP, other IP protocols).
    pub skipped: u64,
    /// Problems met reading the captures (the proposal covers what was read before them).
    pub capture_warnings: Vec<String>,
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn peer(e: &Value, side: &str) -> Option<Peer> {
    let w = &e[format!("{side}_workload")];
    if let Some(g) = w["group"].as_str() {
        return Some(Peer::Group(g.to_string()));
    }
    let ip: IpAddr = e[format!("{side}_ip")].as_str()?.parse().ok()?;
    Some(Peer::Addr(ip))
}

/// The observation a transaction's record (`http`, `pgsql`, `mysql`, `redis`, `dns`,
/// `tls`) stands for.
fn transaction(e: &Value, path_buf: &mut String) -> Option<(String, Detail)> {
    if let Some(g) = e.get("grpc") {
        return Some((
            "grpc".into(),
            Detail::Grpc {
                service: text(&g["service"])?,
                method: text(&g["method"])?,
            },
        ));
    }
    if let Some(h) = e.get("http") {
        path_buf.clear();
        proto_parsers::http::normalize_path(h["url"].as_str()?.as_bytes(), path_buf);
        return Some((
            "http".into(),
            Detail::Http {
                method: text(&h["http_method"])?,
                path: path_buf.clone(),
            },
        ));
    }
    if let Some(q) = e.get("sql") {
        let app = if e.get("pgsql").is_some() {
            "postgres"
        } else {
            "mysql"
        };
        let tables = q["tables"]
            .as_array()
            .map(|a| a.iter().filter_map(text).collect())
            .unwrap_or_default();
        return Some((
            app.into(),
            Detail::Sql {
                verb: text(&q["verb"]).unwrap_or_default(),
                tables,
                user: text(&q["user"]),
                database: text(&q["database"]),
            },
        ));
    }
    if let Some(r) = e.get("redis") {
        return Some((
            "redis".into(),
            Detail::Redis {
                command: text(&r["command"])?,
            },
        ));
    }
    if let Some(d) = e.get("dns") {
        return Some((
            "dns".into(),
            Detail::Dns {
                name: text(&d["rrname"])?,
            },
        ));
    }
    if let Some(t) = e.get("tls") {
        return Some((
            "tls".into(),
            Detail::Tls {
                sni: text(&t["sni"]),
            },
        ));
    }
    None
}

/// The rule `app` of a flow with no transaction: its detected protocol (HTTP/2 is `http`,
/// Suricata's `pgsql` is `postgres`), else its transport.
fn flow_app(e: &Value) -> Option<String> {
    match e["app_proto"].as_str() {
        Some("http2") => Some("http".into()),
        Some("pgsql") => Some("postgres".into()),
        Some("failed") | None if e["proto"] == "TCP" => Some("tcp".into()),
        Some("failed") | None if e["proto"] == "UDP" => Some("udp".into()),
        Some(p) if e["proto"] == "TCP" || e["proto"] == "UDP" => Some(p.to_string()),
        _ => None,
    }
}

pub fn learn(
    captures: Vec<PathBuf>,
    inventory_path: Option<PathBuf>,
    out: &Path,
) -> Result<LearnReport, String> {
    let inventory: WorkloadInventory = match &inventory_path {
        Some(p) => control::load_inventory(p).map_err(|e| e.to_string())?,
        None => control::load_inventory_str(
            "apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads: []\n",
            "(no inventory)",
        )
        .map_err(|e| e.to_string())?,
    };
    let dir = std::env::temp_dir().join(format!("palisade-learn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scratch = Scratch(dir);
    let policy = scratch.0.join("learning.yaml");
    let events = scratch.0.join("events.json");
    std::fs::write(&policy, learning_policy(&inventory))
        .map_err(|e| format!("{}: {e}", policy.display()))?;
    let names: Vec<String> = captures.iter().map(|p| p.display().to_string()).collect();
    let replay = run_replay(&ReplayOptions {
        captures,
        policy,
        inventory: inventory_path,
        events: EventOutput::File(events.clone()),
        workers: 1,
        worker: WorkerConfig {
            log_all: true,
            ..WorkerConfig::default()
        },
        swaps: Vec::new(),
        compare: None,
        shadow: None,
        progress: true,
    })
    .map_err(|e| e.to_string())?;

    let mut report = LearnReport {
        capture_warnings: replay.capture_warnings,
        ..LearnReport::default()
    };
    let mut learner = Learner::new(&inventory);
    let mut with_transactions: HashSet<u64> = HashSet::new();
    let mut path_buf = String::new();
    let file = std::fs::File::open(&events).map_err(|e| format!("{}: {e}", events.display()))?;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", events.display()))?;
        let Ok(e) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(from), Some(to), Some(port)) =
            (peer(&e, "src"), peer(&e, "dest"), e["dest_port"].as_u64())
        else {
            continue;
        };
        let port = port as u16;
        match e["event_type"].as_str() {
            Some("http" | "pgsql" | "mysql" | "redis" | "dns" | "tls") => {
                if let Some((app, detail)) = transaction(&e, &mut path_buf) {
                    report.transactions += 1;
                    if let Some(id) = e["flow_id"].as_u64() {
                        with_transactions.insert(id);
                    }
                    learner.observe(Observation {
                        from,
                        to,
                        port,
                        app,
                        detail,
                    });
                }
            }
            // Flow events come after their flow's transactions.
            Some("flow") => {
                report.flows += 1;
                if e["flow_id"]
                    .as_u64()
                    .is_some_and(|id| with_transactions.contains(&id))
                {
                    continue;
                }
                match flow_app(&e) {
                    Some(app) => learner.observe(Observation {
                        from,
                        to,
                        port,
                        app,
                        detail: Detail::None,
                    }),
                    None => report.skipped += 1,
                }
            }
            _ => {}
        }
    }
    report.rules = learner.rule_count();
    let header = format!(
        "Proposed by `palisade learn` from {}:\n{} flows, {} transactions{}.\nEach rule allows \
         what was observed; review it, then set `mode: protect`.",
        names.join(", "),
        report.flows,
        report.transactions,
        if report.skipped > 0 {
            format!(
                "; {} flows of other IP protocols (ICMP...) have no rule",
                report.skipped
            )
        } else {
            String::new()
        }
    );
    let yaml = learner.to_yaml("learned", &header);
    // A proposal that does not load is our bug, not the user's: say so rather than write it.
    let loaded = control::load_policy_str(&yaml, &out.display().to_string())
        .map_err(|e| format!("the proposed policy does not load (a bug): {e}"))?;
    control::compile(&loaded.policy, &inventory, 1)
        .map_err(|e| format!("the proposed policy does not compile (a bug): {e}"))?;
    std::fs::write(out, yaml).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(report)
}
