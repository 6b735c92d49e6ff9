//! `palisade bench`: the whole pipeline over preloaded packets.
//!
//! The east-west mix is generated into memory, sharded up front with
//! [`crate::pipeline::shard_of`] (as `replay` shards), and each shard is handed to a worker
//! thread that owns a [`Worker`], the same one `replay` and `run` use: decode, flows,
//! reassembly, detection, parsers, per-request policy decisions, events encoded and sent
//! to a writer thread that discards them. Only the loop over the packets is timed.
//!
//! A run lasts at least `--seconds`: each worker replays its shard in whole passes until
//! the time is up, each pass shifted in packet time past every idle timeout so the
//! previous pass's flows expire (and are ended, with their flow events) at the start of
//! the next one and the same tuples open again as new flows.
//!
//! Memory: the kernel's peak-RSS mark is reset (`/proc/self/clear_refs`) once the packets
//! are loaded, so the peak reported is the run's (preloaded packets included); memory per
//! flow is the growth from the moment the workers are built (flow tables, buffers) to the
//! peak, divided by the most flows the tables held at once.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use control::PolicySnapshot;
use traffic_gen::eastwest::{self, MixStats, Proto};
use traffic_gen::generate::Frames;

use crate::decode::LinkType;
use crate::events::{EventOutput, EventWriter};
use crate::inspect::ParserRegistry;
use crate::pipeline::{BATCH_PACKETS, Worker, WorkerConfig, WorkerStats, shard_of};

/// Packet time between passes: past the longest idle timeout (established, 600 s), so
/// every flow of a pass has expired before the same tuples come back.
const PASS_GAP_NS: u64 = 700 * 1_000_000_000;

/// Most flows `--flows` accepts: a million flows of the mix are about 10 GB of frames.
pub const MAX_FLOWS: u64 = 1_000_000;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub flows: u64,
    pub seconds: f64,
    pub workers: usize,
    /// A policy file instead of the generated one (its embedded inventory, else the
    /// generated inventory).
    pub policy: Option<PathBuf>,
    /// A shadow candidate judged beside the policy (`--shadow`), with the same inventory.
    pub shadow: Option<PathBuf>,
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            flows: 2_000,
            seconds: 10.0,
            workers: 1,
            policy: None,
            shadow: None,
            seed: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Args(String),
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One worker's share of a run.
#[derive(Clone, Debug, Default)]
pub struct WorkerRun {
    pub packets: u64,
    /// Packets in this worker's shard (one pass).
    pub shard_packets: u64,
    pub passes: u64,
    pub busy: Duration,
    /// Transactions parsed in the first pass over the shard.
    pub first_pass_transactions: u64,
    /// Flows detected per app protocol in the first pass.
    pub first_pass_detected: foldhash::HashMap<&'static str, u64>,
}

/// What a run measured.
#[derive(Debug)]
pub struct BenchReport {
    pub flows: u64,
    pub seconds: f64,
    pub workers: usize,
    pub seed: u64,
    pub policy_source: String,
    pub policy_name: String,
    /// The shadow candidate (`--shadow`): its file and rule count.
    pub shadow: Option<(String, usize)>,
    pub rules: usize,
    pub workloads: usize,
    /// What one pass holds.
    pub mix: MixStats,
    pub generate_time: Duration,
    /// Wall time from the start signal to the last worker's end.
    pub elapsed: Duration,
    pub stats: WorkerStats,
    pub per_worker: Vec<WorkerRun>,
    pub events_written: u64,
    /// Frame bytes held in memory (all shards).
    pub preloaded_bytes: u64,
    /// VmRSS once the packets were loaded, before the workers started.
    pub rss_before: Option<u64>,
    /// VmRSS once the workers were built (flow tables, buffers), before the first packet.
    pub rss_ready: Option<u64>,
    /// VmHWM at the end: the run's peak if `hwm_reset`, else the process's.
    pub peak_rss: Option<u64>,
    pub hwm_reset: bool,
    pub cpus: usize,
    pub loadavg: (Option<String>, Option<String>),
}

impl BenchReport {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn packets_per_sec(&self) -> f64 {
        self.stats.packets as f64 / self.secs()
    }
    pub fn gbit_per_sec(&self) -> f64 {
        self.stats.bytes as f64 * 8.0 / self.secs() / 1e9
    }
    /// Wall-clock nanoseconds per packet (all workers together).
    pub fn ns_per_packet(&self) -> f64 {
        self.secs() * 1e9 / (self.stats.packets.max(1) as f64)
    }
    /// Busy nanoseconds of a worker per packet it judged, over all workers: the cost of a
    /// packet on one core.
    pub fn worker_ns_per_packet(&self) -> f64 {
        let busy: f64 = self.per_worker.iter().map(|w| w.busy.as_secs_f64()).sum();
        busy * 1e9 / (self.stats.packets.max(1) as f64)
    }
    pub fn transactions_per_sec(&self) -> f64 {
        self.stats.transactions as f64 / self.secs()
    }
    pub fn flows_per_sec(&self) -> f64 {
        self.stats.flows.created as f64 / self.secs()
    }
    /// Transactions parsed in every worker's first pass (one pass over all the packets).
    pub fn transactions_first_pass(&self) -> u64 {
        self.per_worker
            .iter()
            .map(|w| w.first_pass_transactions)
            .sum()
    }
    /// Flows detected as `app` in every worker's first pass.
    pub fn detected_first_pass(&self, app: &str) -> u64 {
        self.per_worker
            .iter()
            .map(|w| w.first_pass_detected.get(app).copied().unwrap_or(0))
            .sum()
    }
    /// Peak RSS growth over the workers' starting point (packets loaded, workers built)
    /// per flow held at the peak.
    pub fn memory_per_flow(&self) -> Option<f64> {
        let (Some(before), Some(peak)) = (self.rss_ready.or(self.rss_before), self.peak_rss) else {
            return None;
        };
        if !self.hwm_reset || self.stats.flows.peak == 0 {
            return None;
        }
        Some(peak.saturating_sub(before) as f64 / self.stats.flows.peak as f64)
    }
}

/// A `kB` line of `/proc/self/status`, in bytes.
fn proc_status(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())?;
    Some(kb * 1024)
}

/// Resets VmHWM to the current RSS (Linux 4.0+).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Compiles the policy to judge the mix by (version `version`), from `file` or else the
/// generated one.
fn snapshot(file: Option<&PathBuf>, version: u64) -> Result<(PolicySnapshot, String), BenchError> {
    let generated_inventory =
        || control::load_inventory_str(&eastwest::inventory_yaml(), "eastwest-inventory.yaml");
    let err = |e: control::PolicyErrors| BenchError::Policy(e.to_string());
    match file {
        None => {
            let p = control::load_policy_str(&eastwest::policy_yaml(), "eastwest-policy.yaml")
                .map_err(err)?;
            let inv = generated_inventory().map_err(err)?;
            let snap = control::compile(&p.policy, &inv, version).map_err(err)?;
            Ok((snap, "generated".into()))
        }
        Some(path) => {
            let p = control::load_policy(path).map_err(err)?;
            let inv = match p.inventory {
                Some(i) => i,
                None => generated_inventory().map_err(err)?,
            };
            let snap = control::compile(&p.policy, &inv, version).map_err(err)?;
            Ok((snap, path.display().to_string()))
        }
    }
}

/// Runs the benchmark.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    if opts.flows == 0 || opts.flows > MAX_FLOWS {
        return Err(BenchError::Args(format!(
            "--flows must be between 1 and {MAX_FLOWS}, got {}",
            opts.flows
        )));
    }
    if !(opts.seconds.is_finite() && opts.seconds > 0.0 && opts.seconds <= 86_400.0) {
        return Err(BenchError::Args(format!(
            "--seconds must be a positive number of seconds (at most 86400), got {}",
            opts.seconds
        )));
    }
    if opts.workers == 0 || opts.workers > 256 {
        return Err(BenchError::Args(format!(
            "--workers must be between 1 and 256, got {}",
            opts.workers
        )));
    }
    // Bad input fails before the (long) generation.
    let (snap, policy_source) = snapshot(opts.policy.as_ref(), 1)?;
    let snap = Arc::new(snap);
    let shadow = match &opts.shadow {
        Some(p) => Some(Arc::new(snapshot(Some(p), 0)?.0)),
        None => None,
    };
    let n = opts.workers;

    let t0 = Instant::now();
    let (frames, mix) = eastwest::generate_frames(opts.flows, opts.seed);
    let shards: Vec<Frames> = if n == 1 {
        vec![frames]
    } else {
        let hasher = foldhash::quality::RandomState::default();
        let mut shards: Vec<Frames> = (0..n).map(|_| Frames::new()).collect();
        for (ts, f) in frames.iter() {
            let w = shard_of(&hasher, n, LinkType::ETHERNET, f);
            if let Some(s) = shards.get_mut(w) {
                s.push(ts, f);
            }
        }
        // Only the shards stay in memory.
        drop(frames);
        shards
    };
    let generate_time = t0.elapsed();
    let preloaded_bytes = shards.iter().map(|s| s.bytes() as u64).sum();
    let span = mix.span_ns + PASS_GAP_NS;

    let writer = EventWriter::start(EventOutput::Discard)?;
    let hwm_reset = reset_peak_rss();
    let rss_before = proc_status("VmRSS:");
    let load_start = loadavg();
    // Workers build their state, then wait for `go` while the main thread reads the RSS.
    let ready = Arc::new(Barrier::new(n + 1));
    let go = Arc::new(Barrier::new(n + 1));
    let seconds = Duration::from_secs_f64(opts.seconds);
    let mut handles = Vec::with_capacity(n);
    for (i, shard) in shards.into_iter().enumerate() {
        let events = writer.sender();
        let snap = Arc::clone(&snap);
        let shadow = shadow.clone();
        let (ready, go) = (Arc::clone(&ready), Arc::clone(&go));
        handles.push(
            std::thread::Builder::new()
                .name(format!("palisade-bench-w{i}"))
                .spawn(move || {
                    let mut w = Worker::new(
                        i,
                        WorkerConfig::default(),
                        ParserRegistry::builtin(),
                        events,
                    );
                    if shadow.is_some() {
                        w.set_shadow(shadow);
                    }
                    let mut run = WorkerRun {
                        shard_packets: shard.len() as u64,
                        ..WorkerRun::default()
                    };
                    ready.wait();
                    go.wait();
                    let start = Instant::now();
                    while !shard.is_empty() {
                        let offset = run.passes * span;
                        for (k, (ts, frame)) in shard.iter().enumerate() {
                            w.process(
                                ts + offset,
                                LinkType::ETHERNET,
                                frame,
                                frame.len() as u32,
                                &snap,
                            );
                            if k % BATCH_PACKETS == BATCH_PACKETS - 1 {
                                w.flush_events();
                            }
                        }
                        w.flush_events();
                        run.passes += 1;
                        if run.passes == 1 {
                            w.fold_counts();
                            run.first_pass_transactions = w.stats.transactions;
                            run.first_pass_detected = w.stats.app_protos.clone();
                        }
                        if start.elapsed() >= seconds {
                            break;
                        }
                    }
                    w.finish();
                    run.busy = start.elapsed();
                    run.packets = w.stats.packets;
                    (w.stats, run)
                })?,
        );
    }
    ready.wait();
    let rss_ready = proc_status("VmRSS:");
    go.wait();
    let start = Instant::now();
    let mut stats = WorkerStats::default();
    let mut per_worker = Vec::with_capacity(n);
    for h in handles {
        match h.join() {
            Ok((s, r)) => {
                stats.merge(&s);
                per_worker.push(r);
            }
            Err(_) => {
                return Err(BenchError::Io(std::io::Error::other(
                    "a worker thread panicked",
                )));
            }
        }
    }
    let elapsed = start.elapsed();
    let peak_rss = proc_status("VmHWM:");
    let events_written = writer.finish()?;
    Ok(BenchReport {
        flows: opts.flows,
        seconds: opts.seconds,
        workers: n,
        seed: opts.seed,
        policy_source,
        policy_name: snap.name().to_string(),
        shadow: opts
            .shadow
            .as_ref()
            .zip(shadow.as_ref())
            .map(|(p, s)| (p.display().to_string(), s.rule_count())),
        rules: snap.rule_count(),
        workloads: snap.workload_count(),
        mix,
        generate_time,
        elapsed,
        stats,
        per_worker,
        events_written,
        preloaded_bytes,
        rss_before,
        rss_ready,
        peak_rss,
        hwm_reset,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        loadavg: (load_start, loadavg()),
    })
}

/// (action, rule, count) of a verdict table. (Written so that it reads `WorkerStats`'
/// verdict tables whether they are maps keyed by (action, rule) or nested by action.)
macro_rules! verdicts {
    ($m:expr) => {
        $m.iter()
            .map(|((a, rule), n)| (*a, rule.as_str(), *n))
            .collect::<Vec<(&str, &str, u64)>>()
    };
}

fn sum_actions(v: &[(&str, &str, u64)]) -> serde_json::Value {
    let mut by: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for (a, _, n) in v {
        *by.entry(*a).or_default() += n;
    }
    serde_json::json!(by)
}

/// Decisions no rule made (the mode's default).
fn by_rule_default(v: &[(&str, &str, u64)]) -> u64 {
    v.iter()
        .filter(|(_, r, _)| *r == "default")
        .map(|(_, _, n)| n)
        .sum()
}

/// The report as one JSON object.
pub fn to_json(r: &BenchReport) -> serde_json::Value {
    let mut protocols = serde_json::Map::new();
    for p in Proto::ALL {
        let c = r.mix.proto(p);
        protocols.insert(
            p.name().to_string(),
            serde_json::json!({
                "flows_per_pass": c.flows,
                "transactions_per_pass": c.transactions,
                "packets_per_pass": c.packets,
                "bytes_per_pass": c.bytes,
                "detected_as": p.detected_as(),
                "flows_detected_first_pass": r.detected_first_pass(p.detected_as()),
                "flows_detected": r.stats.app_protos.get(p.detected_as()).copied().unwrap_or(0),
            }),
        );
    }
    let per_worker: Vec<serde_json::Value> = r
        .per_worker
        .iter()
        .map(|w| {
            serde_json::json!({
                "packets": w.packets,
                "shard_packets": w.shard_packets,
                "passes": w.passes,
                "busy_seconds": w.busy.as_secs_f64(),
                "packets_per_sec": w.packets as f64 / w.busy.as_secs_f64().max(1e-9),
                "first_pass_transactions": w.first_pass_transactions,
            })
        })
        .collect();
    let anomalies: u64 = r.stats.anomalies.values().sum();
    serde_json::json!({
        "flows": r.flows,
        "seconds": r.seconds,
        "workers": r.workers,
        "seed": r.seed,
        "policy": {
            "source": r.policy_source,
            "name": r.policy_name,
            "rules": r.rules,
            "workloads": r.workloads,
        },
        "shadow": r.shadow.as_ref().map(|(p, n)| serde_json::json!({
            "source": p,
            "rules": n,
            "disagreements": r.stats.shadow.total(),
        })),
        "pass": {
            "flows": r.mix.total.sessions,
            "packets": r.mix.total.packets,
            "bytes": r.mix.total.bytes,
            "transactions": r.mix.total.transactions,
            "denied_transactions": r.mix.denied,
            "alerted_transactions": r.mix.alerted,
            "packet_time_seconds": r.mix.span_ns as f64 / 1e9,
        },
        "generate_seconds": r.generate_time.as_secs_f64(),
        "elapsed_seconds": r.elapsed.as_secs_f64(),
        "packets": r.stats.packets,
        "bytes": r.stats.bytes,
        "transactions": r.stats.transactions,
        "transactions_first_pass": r.transactions_first_pass(),
        "flows_created": r.stats.flows.created,
        "packets_per_sec": r.packets_per_sec(),
        "gbit_per_sec": r.gbit_per_sec(),
        "ns_per_packet": r.ns_per_packet(),
        "worker_ns_per_packet": r.worker_ns_per_packet(),
        "transactions_per_sec": r.transactions_per_sec(),
        "flows_per_sec": r.flows_per_sec(),
        "memory": {
            "preloaded_bytes": r.preloaded_bytes,
            "rss_before_run_bytes": r.rss_before,
            "rss_workers_ready_bytes": r.rss_ready,
            "peak_rss_bytes": r.peak_rss,
            "peak_is_run_only": r.hwm_reset,
            "peak_flows": r.stats.flows.peak,
            "bytes_per_flow": r.memory_per_flow(),
        },
        "protocols": protocols,
        "verdicts": {
            "flows": sum_actions(&verdicts!(r.stats.verdicts)),
            "transactions": sum_actions(&verdicts!(r.stats.tx_verdicts)),
            "transactions_by_default": by_rule_default(&verdicts!(r.stats.tx_verdicts)),
        },
        "alerts": r.stats.alerts,
        "events": r.events_written,
        "anomalies": anomalies,
        "packet_verdicts": {"accept": r.stats.accepted, "drop": r.stats.dropped, "reset": r.stats.reset},
        "per_worker": per_worker,
        "machine": {
            "cpus": r.cpus,
            "loadavg_start": r.loadavg.0,
            "loadavg_end": r.loadavg.1,
        },
    })
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The report for people.
pub fn to_text(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let m = &r.mix;
    let _ = writeln!(
        s,
        "palisade bench: {} flows, {} worker{}, at least {} s, policy {} ({} rules, {} workloads)",
        r.flows,
        r.workers,
        if r.workers == 1 { "" } else { "s" },
        r.seconds,
        r.policy_source,
        r.rules,
        r.workloads
    );
    if let Some((p, n)) = &r.shadow {
        let _ = writeln!(
            s,
            "  shadow policy {p} ({n} rules) judged beside it: {} disagreements",
            r.stats.shadow.total()
        );
    }
    let _ = writeln!(
        s,
        "  one pass: {} packets, {:.1} MB, {} transactions ({} to be denied, {} alerts), {:.2} s of packet time; generated in {:.2} s",
        m.total.packets,
        m.total.bytes as f64 / 1e6,
        m.total.transactions,
        m.denied,
        m.alerted,
        m.span_ns as f64 / 1e9,
        r.generate_time.as_secs_f64()
    );
    for p in Proto::ALL {
        let c = m.proto(p);
        let detected = if p == Proto::Tcp {
            "connect probes, no payload".to_string()
        } else {
            format!(
                "first pass: {} flows detected as {}",
                r.detected_first_pass(p.detected_as()),
                p.detected_as()
            )
        };
        let _ = writeln!(
            s,
            "    {:<9} {:>7} flows {:>8} transactions {:>9} packets ({detected})",
            p.name(),
            c.flows,
            c.transactions,
            c.packets,
        );
    }
    let passes: Vec<String> = r.per_worker.iter().map(|w| w.passes.to_string()).collect();
    let _ = writeln!(
        s,
        "  ran {:.2} s: {} packets, {} transactions, {} flows (passes per worker: {}; first pass: {} of {} transactions judged)",
        r.elapsed.as_secs_f64(),
        r.stats.packets,
        r.stats.transactions,
        r.stats.flows.created,
        passes.join(", "),
        r.transactions_first_pass(),
        m.total.transactions
    );
    let _ = writeln!(
        s,
        "  throughput: {:.3} Mpps, {:.2} Gbit/s, {:.0} ns/packet ({:.0} ns/packet per worker), {:.0} transactions/s, {:.0} flows/s",
        r.packets_per_sec() / 1e6,
        r.gbit_per_sec(),
        r.ns_per_packet(),
        r.worker_ns_per_packet(),
        r.transactions_per_sec(),
        r.flows_per_sec()
    );
    let _ = writeln!(
        s,
        "  memory: peak RSS {} ({}), {:.1} MiB before the run ({:.1} MiB of frames), {:.1} MiB with the workers built, {} flows at the peak, {}",
        r.peak_rss
            .map_or("unknown".into(), |b| format!("{:.1} MiB", mib(b))),
        if r.hwm_reset {
            "this run"
        } else {
            "whole process"
        },
        r.rss_before.map_or(0.0, mib),
        mib(r.preloaded_bytes),
        r.rss_ready.map_or(0.0, mib),
        r.stats.flows.peak,
        r.memory_per_flow()
            .map_or("memory per flow unknown".into(), |b| format!(
                "{b:.0} bytes per flow"
            ))
    );
    let txv = verdicts!(r.stats.tx_verdicts);
    let tx = sum_actions(&txv);
    let fl = sum_actions(&verdicts!(r.stats.verdicts));
    let _ = writeln!(
        s,
        "  verdicts: flows {fl}, transactions {tx} ({} by the default), {} alerts, {} events, {} anomalies",
        by_rule_default(&txv),
        r.stats.alerts,
        r.events_written,
        r.stats.anomalies.values().sum::<u64>()
    );
    let _ = writeln!(
        s,
        "  machine: {} cpus, load average {} at the start, {} at the end",
        r.cpus,
        r.loadavg.0.as_deref().unwrap_or("?"),
        r.loadavg.1.as_deref().unwrap_or("?")
    );
    s
}
