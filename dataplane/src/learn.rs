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
    /// Transactions (or flows) held for review: written as comments, allowed by no rule.
    pub held: u64,
}

/// Flows with transactions whose flow record has not arrived yet, at most this many: past
/// it the set is cleared, so a flow whose record comes later may also get an L4 rule
/// (which only widens the proposal).
pub const MAX_OPEN_FLOWS: usize = 1 << 20;

/// Turns EVE records into observations for a [`Learner`]: the offline `palisade learn`
/// reads a replay's events with it, and a live learner can feed it the records of
/// `palisade run` one by one. Memory is bounded: the learner's caps, and at most
/// [`MAX_OPEN_FLOWS`] flows remembered between their transactions and their flow record.
pub struct EventLearner {
    learner: Learner,
    inventory: WorkloadInventory,
    with_transactions: HashSet<u64>,
    path_buf: String,
    pub flows: u64,
    pub transactions: u64,
    /// Flows no rule can express (ICMP, other IP protocols).
    pub skipped: u64,
    /// Times the open-flow set was full and cleared.
    pub open_flows_cleared: u64,
}

impl EventLearner {
    pub fn new(inventory: &WorkloadInventory) -> Self {
        EventLearner {
            learner: Learner::new(inventory),
            inventory: inventory.clone(),
            with_transactions: HashSet::new(),
            path_buf: String::new(),
            flows: 0,
            transactions: 0,
            skipped: 0,
            open_flows_cleared: 0,
        }
    }

    /// Transactions or flows held for review so far.
    pub fn held(&self) -> u64 {
        self.learner.stats().held
    }

    /// Rules proposed so far.
    pub fn rules(&self) -> usize {
        self.learner.rule_count()
    }

    /// The learner's own counters (caps reached, coverage fallbacks).
    pub fn stats(&self) -> control::learn::LearnStats {
        self.learner.stats()
    }

    /// One EVE record: a transaction (`http`, `pgsql`, `mysql`, `redis`, `dns`, `tls`) or
    /// a `flow` record (which comes after its flow's transactions); others are ignored.
    pub fn feed(&mut self, e: &Value) {
        let (Some(from), Some(to), Some(port)) =
            (peer(e, "src"), peer(e, "dest"), e["dest_port"].as_u64())
        else {
            return;
        };
        let port = port as u16;
        match e["event_type"].as_str() {
            Some("http" | "pgsql" | "mysql" | "redis" | "dns" | "tls") => {
                if let Some((app, detail)) = transaction(e, &mut self.path_buf) {
                    self.transactions += 1;
                    if let Some(id) = e["flow_id"].as_u64() {
                        if self.with_transactions.len() >= MAX_OPEN_FLOWS
                            && !self.with_transactions.contains(&id)
                        {
                            self.with_transactions.clear();
                            self.open_flows_cleared += 1;
                        }
                        self.with_transactions.insert(id);
                    }
                    let o = Observation {
                        from,
                        to,
                        port,
                        app,
                        detail,
                    };
                    // What a deny rule of the policy it ran under catches (a group in
                    // learn mode is not enforced) is probing until reviewed, not traffic
                    // to allow.
                    let v = &e["policy_verdict"];
                    match (v["action"].as_str(), v["rule"].as_str()) {
                        (Some("deny"), Some(rule))
                            if rule != "default" && rule != "uninspectable" =>
                        {
                            let why = format!("denied by rule {rule} of the running policy");
                            self.learner.hold(&o, &why);
                        }
                        _ => {
                            self.learner.observe(o);
                        }
                    }
                }
            }
            Some("flow") => {
                self.flows += 1;
                // The flow is over: forget it, whatever it carried.
                if e["flow_id"]
                    .as_u64()
                    .is_some_and(|id| self.with_transactions.remove(&id))
                {
                    return;
                }
                match flow_app(e) {
                    Some(app) => {
                        self.learner.observe(Observation {
                            from,
                            to,
                            port,
                            app,
                            detail: Detail::None,
                        });
                    }
                    None => self.skipped += 1,
                }
            }
            _ => {}
        }
    }

    /// The proposal, `header` as its opening comment; checked to load and compile (a
    /// proposal that does not is a bug, reported rather than returned).
    pub fn proposal(&self, header: &str) -> Result<String, String> {
        let yaml = self.learner.to_yaml("learned", header);
        let loaded = control::load_policy_str(&yaml, "(proposal)")
            .map_err(|e| format!("the proposed policy does not load (a bug): {e}"))?;
        control::compile(&loaded.policy, &self.inventory, 1)
            .map_err(|e| format!("the proposed policy does not compile (a bug): {e}"))?;
        Ok(yaml)
    }
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
                user_agent: text(&h["http_user_agent"]),
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
    let mut learner = EventLearner::new(&inventory);
    let file = std::fs::File::open(&events).map_err(|e| format!("{}: {e}", events.display()))?;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", events.display()))?;
        if let Ok(e) = serde_json::from_str::<Value>(&line) {
            learner.feed(&e);
        }
    }
    report.flows = learner.flows;
    report.transactions = learner.transactions;
    report.skipped = learner.skipped;
    report.rules = learner.rules();
    report.held = learner.held();
    let header = format!(
        "Proposed by `palisade learn` from {}:\n{} flows, {} transactions{}{}.\nEach rule allows \
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
        },
        if report.held > 0 {
            format!("; {} held for review (below), not allowed", report.held)
        } else {
            String::new()
        }
    );
    let yaml = learner
        .proposal(&header)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(out, yaml).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(report)
}
