//! `palisade replay`: captures in, verdicts and events out, a summary at the end.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use control::PolicySnapshot;
use crossbeam_channel::{Sender, bounded};

use super::{Batch, shard_of};
use super::{Worker, WorkerConfig, WorkerStats};
use crate::decode::checksum::{self, ChecksumMode};
use crate::decode::{self, Decoded};
use crate::events::sinks::{AlertSinkStats, AlertSinks, SinkOptions};
use crate::events::{AnomalyObj, Event, EventOutput, EventWriter, PolicyObj, Timestamp};
use crate::inspect::ParserRegistry;
use crate::io::pcap::{CaptureError, CaptureSet};

/// `--swap-at PACKET:POLICY.yaml`: from packet number PACKET (1-based, as tshark counts)
/// on, judge by POLICY.
#[derive(Clone, Debug)]
pub struct SwapAt {
    pub packet: u64,
    pub policy: PathBuf,
}

#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub captures: Vec<PathBuf>,
    pub policy: PathBuf,
    pub inventory: Option<PathBuf>,
    pub events: EventOutput,
    pub workers: usize,
    pub worker: WorkerConfig,
    pub swaps: Vec<SwapAt>,
    /// Judge every flow by this policy too and report verdict changes (`--compare OLD`).
    pub compare: Option<PathBuf>,
    /// Judge every flow and transaction by this candidate too and write a `shadow` record
    /// where it disagrees (`--shadow CANDIDATE`, as `palisade run` does live).
    pub shadow: Option<PathBuf>,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub stats: WorkerStats,
    pub elapsed: Duration,
    pub workers: usize,
    /// Problems in the captures met after their headers were read (a last record cut
    /// short, a corrupt record): every packet before them was judged; each is a warning
    /// and an `anomaly` record, as tcpdump and Suricata read such files. Only a capture
    /// whose header cannot be read is bad input.
    pub capture_warnings: Vec<String>,
    /// Policy loads and rejections, in order: (version or None, source, error).
    pub policy_log: Vec<(Option<u64>, String, Option<String>)>,
    pub events_written: u64,
    /// Where the events went: a file's path, `-` (stdout) or `none` (discarded).
    pub events_to: String,
    /// Whether a comparison policy was given (`--compare`).
    pub compared: bool,
    /// What `--checksum auto` decided: the mode, and (packets sampled, of which failed).
    pub checksums: Option<(ChecksumMode, u32, u32)>,
    /// `--alert-sink`: what each sink delivered, after the flush at exit.
    pub alert_sinks: Option<Arc<AlertSinkStats>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Policy(String),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Worker queue depth in batches: bounded, so a slow worker slows the reader instead of
/// growing memory (a batch holds up to `REPLAY_BATCH_BYTES` of frames).
const QUEUE_BATCHES: usize = 4;

/// Event bytes a replay worker gathers before handing them to the writer, unless its queue
/// runs dry first: one hand-over per few batches instead of one per batch.
const EVENT_FLUSH_BYTES: usize = 64 << 10;

pub fn run_replay(opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    run_replay_with_sinks(opts, None)
}

/// [`run_replay`], with alerts also sent to `sinks` (`--alert-sink`); the sinks are flushed
/// (up to their deadline) before it returns.
pub fn run_replay_with_sinks(
    opts: &ReplayOptions,
    sinks: Option<SinkOptions>,
) -> Result<ReplayReport, ReplayError> {
    let mut report = ReplayReport {
        workers: opts.workers.max(1),
        compared: opts.compare.is_some(),
        ..Default::default()
    };
    // Bad input fails before any output is produced.
    let first = control::load_snapshot(&opts.policy, opts.inventory.as_deref(), 1)
        .map_err(|e| ReplayError::Policy(e.to_string()))?;
    // The comparison policy is version 0: it is never in force, only consulted.
    let counterpart = |p: &Option<PathBuf>| -> Result<_, ReplayError> {
        match p {
            Some(p) => Ok(Some(Arc::new(
                control::load_snapshot(p, opts.inventory.as_deref(), 0)
                    .map_err(|e| ReplayError::Policy(e.to_string()))?,
            ))),
            None => Ok(None),
        }
    };
    let compare = counterpart(&opts.compare)?;
    // A candidate is version 0 too: it never enforces.
    let shadow = counterpart(&opts.shadow)?;
    // A quarantine holds from the matching packet to the end of the run, on every worker.
    let quarantine = Arc::new(crate::verdict::quarantine::QuarantineBoard::in_memory());
    let mut captures = CaptureSet::open(&opts.captures)?;
    let mut worker_cfg = opts.worker.clone();
    if worker_cfg.checksums == ChecksumMode::Auto {
        // Decided before the first packet is judged, from the captures themselves: a
        // capture taken where checksums were offloaded fails most of them.
        let (checked, bad) = sample_checksums(&opts.captures)?;
        worker_cfg.checksums = checksum::auto_decides(checked, bad);
        report.checksums = Some((worker_cfg.checksums, checked, bad));
    }
    let total_bytes: u64 = opts
        .captures
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();

    let sinks = sinks.map(AlertSinks::start).transpose()?;
    report.alert_sinks = sinks.as_ref().map(AlertSinks::stats);
    let writer = EventWriter::start_with_sinks(opts.events.clone(), sinks)?;
    let mut control_events = writer.sender();
    let mut control_buf = Vec::new();
    let current = ArcSwap::from(Arc::new(first));
    policy_event(&mut control_buf, &current.load(), &opts.policy, None);
    report
        .policy_log
        .push((Some(1), opts.policy.display().to_string(), None));
    control_events.flush(&mut control_buf);

    let started = Instant::now();
    let n = report.workers;
    let (recycle_tx, recycle_rx) = bounded::<Batch>(n * (QUEUE_BATCHES + 2));
    let mut senders: Vec<Sender<Batch>> = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = bounded::<Batch>(QUEUE_BATCHES);
        senders.push(tx);
        let cfg = worker_cfg.clone();
        let events = writer.sender();
        let recycle = recycle_tx.clone();
        let compare = compare.clone();
        let shadow = shadow.clone();
        let quarantine = Arc::clone(&quarantine);
        handles.push(
            std::thread::Builder::new()
                .name(format!("palisade-w{i}"))
                .spawn(move || {
                    let mut w = Worker::new(i, cfg, ParserRegistry::builtin(), events);
                    if let Some(old) = compare {
                        w.set_compare(old);
                    }
                    if shadow.is_some() {
                        w.set_shadow(shadow);
                    }
                    w.set_quarantine(quarantine);
                    while let Ok(mut batch) = rx.recv() {
                        let snap = Arc::clone(&batch.snapshot);
                        for m in &batch.packets {
                            w.process(m.ts_ns, m.linktype, batch.frame(m), m.orig_len, &snap);
                        }
                        if w.pending_event_bytes() >= EVENT_FLUSH_BYTES || rx.is_empty() {
                            w.flush_events();
                        }
                        batch.clear();
                        let _ = recycle.try_send(batch);
                    }
                    w.finish();
                    w.stats
                })?,
        );
    }
    drop(recycle_tx);

    let progress = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(total_bytes);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });

    let hasher = foldhash::quality::RandomState::default();
    let mut filling: Vec<Batch> = (0..n).map(|_| Batch::new(current.load_full())).collect();
    let mut swaps = opts.swaps.clone();
    swaps.sort_by_key(|s| s.packet);
    let mut swaps = swaps.into_iter().peekable();
    let mut index = 0u64;
    let mut read_bytes = 0u64;
    let mut last_ts = 0u64;
    let mut version = 1u64;
    let send = |filling: &mut Vec<Batch>, w: usize, snap: &Arc<PolicySnapshot>| {
        let fresh = match recycle_rx.try_recv() {
            Ok(mut b) => {
                b.snapshot = Arc::clone(snap);
                b
            }
            Err(_) => Batch::new(Arc::clone(snap)),
        };
        if let (Some(slot), Some(tx)) = (filling.get_mut(w), senders.get(w)) {
            let full = std::mem::replace(slot, fresh);
            let _ = tx.send(full);
        }
    };
    let mut snap = current.load_full();
    loop {
        // A scripted swap takes effect exactly at its packet: batches already filled keep the
        // snapshot they were made with.
        while swaps.peek().is_some_and(|s| s.packet <= index + 1) {
            let Some(s) = swaps.next() else { break };
            for w in 0..n {
                if filling.get(w).is_some_and(|b| !b.packets.is_empty()) {
                    send(&mut filling, w, &snap);
                }
            }
            match control::load_snapshot(&s.policy, opts.inventory.as_deref(), version + 1) {
                Ok(new) => {
                    version += 1;
                    current.store(Arc::new(new));
                    policy_event(&mut control_buf, &current.load(), &s.policy, None);
                    report
                        .policy_log
                        .push((Some(version), s.policy.display().to_string(), None));
                }
                Err(e) => {
                    let msg = e.to_string();
                    policy_event(&mut control_buf, &current.load(), &s.policy, Some(&msg));
                    report
                        .policy_log
                        .push((None, s.policy.display().to_string(), Some(msg)));
                }
            }
            control_events.flush(&mut control_buf);
            snap = current.load_full();
            for b in filling.iter_mut() {
                b.snapshot = Arc::clone(&snap);
            }
        }
        let mut shard = 0usize;
        let mut full = false;
        let got = captures.next_packet(&mut |p| {
            shard = shard_of(&hasher, n, p.linktype, p.data);
            read_bytes += p.data.len() as u64 + 16;
            last_ts = last_ts.max(p.ts_ns);
            if let Some(b) = filling.get_mut(shard) {
                b.push(p.ts_ns, p.linktype, p.data, p.orig_len);
                full = b.is_full();
            }
        });
        if !got {
            break;
        }
        index += 1;
        if full {
            send(&mut filling, shard, &snap);
            if let Some(pb) = &progress {
                pb.set_position(read_bytes.min(total_bytes));
                // The bar counts bytes read; the packet rate is what the summary reports.
                let secs = started.elapsed().as_secs_f64();
                if secs > 0.0 {
                    pb.set_message(format!("{:.0} pkt/s", index as f64 / secs));
                }
            }
        }
    }
    for w in 0..n {
        if filling.get(w).is_some_and(|b| !b.packets.is_empty()) {
            send(&mut filling, w, &snap);
        }
    }
    drop(senders);
    for h in handles {
        match h.join() {
            Ok(s) => report.stats.merge(&s),
            Err(_) => {
                return Err(ReplayError::Io(std::io::Error::other(
                    "a worker thread panicked",
                )));
            }
        }
    }
    report.elapsed = started.elapsed();
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    report.capture_warnings = captures.errors.iter().map(|e| e.to_string()).collect();
    for (e, msg) in captures.errors.iter().zip(&report.capture_warnings) {
        let mut ev = Event::new(Timestamp(last_ts), "anomaly");
        ev.anomaly = Some(AnomalyObj {
            kind: "decode",
            event: e.event_name(),
            app_proto: None,
        });
        ev.anomaly_detail = Some(msg);
        ev.write_line(&mut control_buf);
        *report.stats.anomalies.entry(e.event_name()).or_default() += 1;
    }
    control_events.flush(&mut control_buf);
    drop(control_events);
    report.events_written = writer.finish()?;
    report.events_to = opts.events.to_string();
    Ok(report)
}

/// Reads the first [`checksum::AUTO_SAMPLE`] TCP/UDP packets of the captures (in replay
/// order) and counts those whose checksums fail: (sampled, failed).
pub fn sample_checksums(paths: &[PathBuf]) -> Result<(u32, u32), ReplayError> {
    let mut set = CaptureSet::open(paths)?;
    let (mut checked, mut bad) = (0u32, 0u32);
    while checked < checksum::AUTO_SAMPLE {
        let got = set.next_packet(&mut |p| {
            if let Ok(Decoded::Ip(ip)) = decode::decode(p.linktype, p.data)
                && matches!(ip.proto, decode::PROTO_TCP | decode::PROTO_UDP)
                && !ip.l4.is_empty()
                && !matches!(ip.transport, decode::Transport::Fragment { .. })
            {
                checked += 1;
                let ok =
                    ip.ip_header.ok() && checksum::l4_checksum_ok(ip.src, ip.dst, ip.proto, ip.l4);
                bad += u32::from(!ok);
            }
        });
        if !got {
            break;
        }
    }
    Ok((checked, bad))
}

/// Writes a `policy` event: a version loaded, or a rejection (with the version that stays).
pub(crate) fn policy_event(
    out: &mut Vec<u8>,
    snap: &PolicySnapshot,
    source: &std::path::Path,
    error: Option<&str>,
) {
    let status = if error.is_some() {
        "rejected"
    } else {
        "loaded"
    };
    // On rejection, the version that stays in force.
    policy_record(
        out,
        status,
        snap,
        &source.display().to_string(),
        error,
        None,
    );
}

/// A `policy` record: `status` loaded, rejected or skipped, naming `snap`'s version (on a
/// rejection or a skip, the one that stays in force); `role` is `shadow` for a candidate.
pub(crate) fn policy_record(
    out: &mut Vec<u8>,
    status: &'static str,
    snap: &PolicySnapshot,
    source: &str,
    error: Option<&str>,
    role: Option<&'static str>,
) {
    let mut e = Event::new(Timestamp::now(), "policy");
    e.policy = Some(PolicyObj {
        status,
        version: Some(snap.version()),
        name: Some(snap.name()),
        source,
        rules: Some(snap.rule_count()),
        error,
        role,
    });
    e.write_line(out);
}
