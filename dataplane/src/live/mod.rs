//! `palisade run`: the same workers as `replay`, fed by live sources.
//!
//! Threads:
//! - one packet thread per source (an NFQUEUE queue, a tap, or each direction of a
//!   bridge), each owning one [`Worker`]: receive a run of packets, judge them with the
//!   policy snapshot loaded once for the run, give verdicts, send resets. No locks, no
//!   tokio, no allocation per packet on this path; every 100 ms the thread publishes its
//!   counters with a `try_lock` that never waits, answers flow listings, and expires idle
//!   flows by the wall clock.
//! - the event writer thread (as in replay), with followers for `events --follow`;
//! - the control thread ([`crate::api`]): a single-threaded tokio runtime for signals
//!   (SIGHUP reloads, SIGTERM/SIGINT stop), the policy file watch, the control socket and
//!   the metrics endpoint.
//!
//! Policy swaps go through one `ArcSwap<PolicySnapshot>`: a policy that fails to load is
//! rejected with a `policy` event and the running one stays.

mod afpacket;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, Cache};
use control::PolicySnapshot;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::decode::LinkType;
use crate::decode::checksum::ChecksumMode;
use crate::events::{EventOutput, EventSender, EventTap, EventWriter, Timestamp};
use crate::inspect::ParserRegistry;
use crate::io::afpacket::PacketSocket;
use crate::io::nfqueue::{NfQueue, NfVerdict};
use crate::io::reset::{RawSender, Resets};
use crate::pipeline::{FlowInfo, Worker, WorkerConfig, WorkerStats, policy_event};
use crate::verdict::PacketVerdict;

/// Where live packets come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Inline: NFQUEUE queues `first..=last`, one packet thread per queue.
    Nfqueue { first: u16, last: u16 },
    /// Passive: every frame seen on an interface; drops cannot be enforced.
    Tap(String),
    /// Inline: forward what is allowed between two interfaces.
    Bridge(String, String),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Nfqueue { first, last } if first == last => format!("nfqueue {first}"),
            Source::Nfqueue { first, last } => format!("nfqueue {first}-{last}"),
            Source::Tap(i) => format!("tap {i}"),
            Source::Bridge(a, b) => format!("bridge {a},{b}"),
        }
    }

    pub fn is_inline(&self) -> bool {
        !matches!(self, Source::Tap(_))
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub source: Source,
    pub policy: PathBuf,
    pub inventory: Option<PathBuf>,
    pub events: EventOutput,
    pub control: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub fail_open: bool,
    /// Kernel queue length per NFQUEUE queue.
    pub queue_maxlen: u32,
    pub worker: WorkerConfig,
    /// Watch the policy (and inventory) file and reload when it changes.
    pub watch: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Counters of one packet thread's source, besides the worker's own.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct SourceCounters {
    /// Receive-side losses reported by the kernel (NFQUEUE ENOBUFS, ring drops).
    pub rx_dropped: u64,
    pub malformed: u64,
    pub verdict_msgs: u64,
    pub resets_sent: u64,
    pub resets_failed: u64,
    pub forwarded: u64,
    pub forward_failed: u64,
}

/// What a packet thread publishes for the control side.
#[derive(Default)]
pub struct Published {
    pub stats: WorkerStats,
    pub source: SourceCounters,
}

/// A packet thread as the control side sees it.
pub struct Slot {
    pub name: String,
    pub published: Mutex<Published>,
    /// Requests for the thread's open flows, answered within ~100 ms.
    pub flow_requests: Sender<(usize, Sender<Vec<FlowInfo>>)>,
    flow_rx: Receiver<(usize, Sender<Vec<FlowInfo>>)>,
}

/// One policy load or rejection, for `status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PolicyLoad {
    pub at: String,
    pub source: String,
    pub trigger: String,
    pub version: Option<u64>,
    pub error: Option<String>,
}

/// State shared by the packet threads and the control thread.
pub struct Shared {
    pub policy: ArcSwap<PolicySnapshot>,
    /// The file the running policy came from (`policy apply` may change it).
    pub policy_path: Mutex<PathBuf>,
    /// The running policy's text as read when it was loaded (`policy show`).
    pub policy_text: Mutex<String>,
    pub inventory: Option<PathBuf>,
    next_version: AtomicU64,
    /// Serialises loads so versions are handed out in order.
    load_lock: Mutex<()>,
    /// The previous snapshot, kept so it is freed here and not on a packet thread.
    previous: Mutex<Option<Arc<PolicySnapshot>>>,
    pub loads: Mutex<Vec<PolicyLoad>>,
    pub rejected: AtomicU64,
    pub shutdown: AtomicBool,
    pub slots: Vec<Slot>,
    pub started: Instant,
    pub source: Source,
    pub tap: Arc<EventTap>,
    events: Mutex<EventSender>,
    /// `--capture-dir`, listed by `palisadectl captures`.
    pub capture_dir: Option<PathBuf>,
    /// Event lines dropped because the writer fell behind (the packet path never waits).
    pub events_dropped: Arc<AtomicU64>,
    /// A packet thread ended while the daemon was meant to be running: the daemon stops
    /// (a queue left unbound would be bypassed while status looked healthy).
    pub thread_died: Mutex<Option<String>>,
    /// SIGHUP sets it: the event writer reopens its file (log rotation).
    pub reopen_events: Arc<AtomicBool>,
}

/// Held by each packet thread: when the thread ends for any reason (an error, a panic)
/// other than shutdown, the whole daemon stops, loudly.
struct StopAllOnExit<'a> {
    shared: &'a Shared,
    name: String,
}

impl Drop for StopAllOnExit<'_> {
    fn drop(&mut self) {
        if self.shared.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        let why = if std::thread::panicking() {
            format!("packet thread {} panicked", self.name)
        } else {
            format!("packet thread {} stopped", self.name)
        };
        tracing::error!("{why}: stopping palisade");
        if let Ok(mut d) = self.shared.thread_died.lock() {
            d.get_or_insert(why);
        }
    }
}

/// Most policy loads remembered for `status`.
const LOADS_KEPT: usize = 32;

impl Shared {
    /// Loads `path` as the new policy. On success it is in force for the next run of
    /// packets of every thread; on failure the running policy stays. Either way a
    /// `policy` event records it.
    pub fn reload(&self, path: &Path, trigger: &str) -> Result<u64, String> {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let version = self.next_version.load(Ordering::Relaxed);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let result: Result<PolicySnapshot, String> =
            PolicySnapshot::load(path, self.inventory.as_deref(), version)
                .map_err(|e| e.to_string());
        let mut buf = Vec::new();
        let outcome: Result<u64, String> = match result {
            Ok(snap) => {
                self.next_version.store(version + 1, Ordering::Relaxed);
                let new = Arc::new(snap);
                let old = self.policy.swap(Arc::clone(&new));
                if let Ok(mut p) = self.previous.lock() {
                    *p = Some(old);
                }
                if let Ok(mut p) = self.policy_path.lock() {
                    *p = path.to_path_buf();
                }
                if let Ok(mut t) = self.policy_text.lock() {
                    *t = text;
                }
                policy_event(&mut buf, &new, path, None);
                Ok(version)
            }
            Err(msg) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                policy_event(&mut buf, &self.policy.load(), path, Some(&msg));
                Err(msg)
            }
        };
        if let Ok(mut ev) = self.events.lock() {
            ev.flush(&mut buf);
        }
        if let Ok(mut loads) = self.loads.lock() {
            if loads.len() >= LOADS_KEPT {
                loads.remove(0);
            }
            loads.push(PolicyLoad {
                at: now_string(),
                source: path.display().to_string(),
                trigger: trigger.to_string(),
                version: outcome.as_ref().ok().copied(),
                error: outcome.as_ref().err().cloned(),
            });
        }
        match &outcome {
            Ok(v) => {
                tracing::info!(version = v, source = %path.display(), trigger, "policy loaded")
            }
            Err(e) => {
                tracing::warn!(source = %path.display(), trigger, "policy rejected, the running one stays: {e}")
            }
        }
        outcome
    }

    /// Counters of every packet thread, merged.
    pub fn totals(&self) -> (WorkerStats, SourceCounters) {
        let mut stats = WorkerStats::default();
        let mut src = SourceCounters::default();
        for s in &self.slots {
            if let Ok(p) = s.published.lock() {
                stats.merge(&p.stats);
                let c = &p.source;
                src.rx_dropped += c.rx_dropped;
                src.malformed += c.malformed;
                src.verdict_msgs += c.verdict_msgs;
                src.resets_sent += c.resets_sent;
                src.resets_failed += c.resets_failed;
                src.forwarded += c.forwarded;
                src.forward_failed += c.forward_failed;
            }
        }
        (stats, src)
    }

    /// Up to `max` open flows from every packet thread.
    pub fn flows(&self, max: usize) -> Vec<FlowInfo> {
        let mut waiting = Vec::new();
        for s in &self.slots {
            let (tx, rx) = bounded(1);
            if s.flow_requests.try_send((max, tx)).is_ok() {
                waiting.push(rx);
            }
        }
        let mut all = Vec::new();
        for rx in waiting {
            if let Ok(mut f) = rx.recv_timeout(Duration::from_secs(2)) {
                all.append(&mut f);
            }
        }
        all.sort_unstable_by_key(|f| std::cmp::Reverse(f.last_ns));
        all.truncate(max);
        all
    }
}

fn now_string() -> String {
    let mut s = String::with_capacity(32);
    Timestamp::now().write_to(&mut s);
    s
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// How often a packet thread publishes counters and expires idle flows.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The per-thread loop's bookkeeping besides the worker: publishing and flow listings.
struct Housekeeping<'a> {
    slot: &'a Slot,
    last: Instant,
}

impl Housekeeping<'_> {
    fn due(&mut self, w: &mut Worker, src: &SourceCounters, force: bool) {
        if !force && self.last.elapsed() < PUBLISH_EVERY {
            return;
        }
        self.last = Instant::now();
        w.tick(now_ns());
        w.flush_events();
        w.refresh_stats();
        if let Ok(mut p) = self.slot.published.try_lock() {
            p.stats.clone_from(&w.stats);
            p.source = *src;
        }
        while let Ok((max, reply)) = self.slot.flow_rx.try_recv() {
            let _ = reply.try_send(w.list_flows(max));
        }
    }
}

/// Runs until SIGTERM/SIGINT (or a fatal source error). Returns the final counters.
pub fn run(opts: &RunOptions) -> Result<(WorkerStats, SourceCounters), RunError> {
    let first = PolicySnapshot::load(&opts.policy, opts.inventory.as_deref(), 1)
        .map_err(|e| RunError::Policy(e.to_string()))?;
    let tap = Arc::new(EventTap::default());
    let writer = EventWriter::start_live(opts.events.clone(), Arc::clone(&tap))?;

    let thread_names: Vec<String> = match &opts.source {
        Source::Nfqueue { first, last } => {
            (*first..=*last).map(|q| format!("nfqueue-{q}")).collect()
        }
        Source::Tap(i) => vec![format!("tap-{i}")],
        Source::Bridge(a, b) => vec![format!("bridge-{a}-{b}")],
    };
    let slots = thread_names
        .into_iter()
        .map(|name| {
            let (tx, rx) = bounded(4);
            Slot {
                name,
                published: Mutex::new(Published::default()),
                flow_requests: tx,
                flow_rx: rx,
            }
        })
        .collect();
    let shared = Arc::new(Shared {
        policy: ArcSwap::from(Arc::new(first)),
        policy_path: Mutex::new(opts.policy.clone()),
        policy_text: Mutex::new(std::fs::read_to_string(&opts.policy).unwrap_or_default()),
        inventory: opts.inventory.clone(),
        next_version: AtomicU64::new(2),
        load_lock: Mutex::new(()),
        previous: Mutex::new(None),
        loads: Mutex::new(Vec::new()),
        rejected: AtomicU64::new(0),
        shutdown: AtomicBool::new(false),
        slots,
        started: Instant::now(),
        source: opts.source.clone(),
        tap,
        events: Mutex::new(writer.sender()),
        capture_dir: opts.worker.capture.as_ref().map(|c| c.dir.clone()),
        events_dropped: writer.dropped().unwrap_or_default(),
        reopen_events: writer.reopen_handle(),
        thread_died: Mutex::new(None),
    });
    {
        let mut buf = Vec::new();
        policy_event(&mut buf, &shared.policy.load(), &opts.policy, None);
        if let Ok(mut ev) = shared.events.lock() {
            ev.flush(&mut buf);
        }
        if let Ok(mut loads) = shared.loads.lock() {
            loads.push(PolicyLoad {
                at: now_string(),
                source: opts.policy.display().to_string(),
                trigger: "start".into(),
                version: Some(1),
                error: None,
            });
        }
    }

    // Open every source before starting anything, so a bad queue or interface fails the
    // command at once with a clear message.
    let mut worker_cfg = opts.worker.clone();
    worker_cfg.enforcing = opts.source.is_inline();
    let mut handles = Vec::new();
    match &opts.source {
        Source::Nfqueue { first, last } => {
            let mut queues = Vec::new();
            for q in *first..=*last {
                queues.push(NfQueue::open(q, opts.fail_open, opts.queue_maxlen)?);
            }
            if worker_cfg.checksums == ChecksumMode::Auto {
                // The kernel fills in offloaded checksums before it queues a packet (the
                // queue is not opened with NFQA_CFG_F_GSO), so every one can be checked.
                worker_cfg.checksums = ChecksumMode::Validate;
            }
            for (i, q) in queues.into_iter().enumerate() {
                let shared = Arc::clone(&shared);
                let cfg = worker_cfg.clone();
                let events = writer.sender();
                let raw = RawSender::open()?;
                handles.push(
                    std::thread::Builder::new()
                        .name(format!("palisade-q{}", q.num()))
                        .spawn(move || {
                            let _guard = StopAllOnExit {
                                shared: &shared,
                                name: format!("nfqueue-{}", q.num()),
                            };
                            nfqueue_loop(i, q, raw, cfg, events, &shared)
                        })?,
                );
            }
        }
        Source::Tap(iface) => {
            let sock = PacketSocket::open(iface)?;
            let shared = Arc::clone(&shared);
            let cfg = worker_cfg.clone();
            let events = writer.sender();
            handles.push(
                std::thread::Builder::new()
                    .name("palisade-tap".into())
                    .spawn(move || {
                        let _guard = StopAllOnExit {
                            shared: &shared,
                            name: "tap".into(),
                        };
                        afpacket::tap_loop(sock, cfg, events, &shared)
                    })?,
            );
        }
        Source::Bridge(a, b) => {
            let sa = PacketSocket::open(a)?;
            let sb = PacketSocket::open(b)?;
            let shared = Arc::clone(&shared);
            let cfg = worker_cfg.clone();
            let events = writer.sender();
            handles.push(
                std::thread::Builder::new()
                    .name("palisade-bridge".into())
                    .spawn(move || {
                        let _guard = StopAllOnExit {
                            shared: &shared,
                            name: "bridge".into(),
                        };
                        afpacket::bridge_loop(sa, sb, cfg, events, &shared)
                    })?,
            );
        }
    }

    let control = crate::api::ctl::start(Arc::clone(&shared), opts)?;
    tracing::info!(source = %opts.source.describe(), events = %opts.events, "palisade running");

    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some(std::io::Error::other("a packet thread panicked")),
        }
    }
    // Whatever ended the packet threads ends the control side too.
    shared.shutdown.store(true, Ordering::SeqCst);
    if failure.is_none()
        && let Some(why) = shared.thread_died.lock().ok().and_then(|mut d| d.take())
    {
        failure = Some(std::io::Error::other(why));
    }
    control.stop();
    let totals = shared.totals();
    // The last holder of the shared state: dropping it drops the control side's event
    // sender, so the writer can finish.
    drop(shared);
    writer.finish()?;
    match failure {
        Some(e) => Err(RunError::Io(e)),
        None => Ok(totals),
    }
}

fn nfqueue_loop(
    index: usize,
    mut q: NfQueue,
    mut raw: RawSender,
    cfg: WorkerConfig,
    events: EventSender,
    shared: &Shared,
) -> std::io::Result<()> {
    let Some(slot) = shared.slots.get(index) else {
        return Ok(());
    };
    let mut w = Worker::new(index, cfg, ParserRegistry::builtin(), events);
    let mut cache = Cache::new(&shared.policy);
    let mut verdicts: Vec<(u32, NfVerdict)> = Vec::with_capacity(1024);
    let mut resets = Resets::default();
    let mut src = SourceCounters::default();
    let mut hk = Housekeeping {
        slot,
        last: Instant::now(),
    };
    while !shared.shutdown.load(Ordering::Relaxed) {
        verdicts.clear();
        // The snapshot is taken when the run of packets has arrived, not before the
        // receive blocks: a swap made while waiting applies to the very next packet.
        let mut batch: Option<(Arc<PolicySnapshot>, u64)> = None;
        let got = q.recv_batch(&mut |p| {
            let (snap, ts) = &*batch.get_or_insert_with(|| (Arc::clone(cache.load()), now_ns()));
            let len = p.payload.len() as u32;
            let v = w.process(*ts, LinkType::RAW, p.payload, len, snap);
            if v == PacketVerdict::DropReset && resets.build(p.payload, false) > 0 {
                raw.send(&resets);
            }
            let nv = match v {
                PacketVerdict::Accept => NfVerdict::Accept,
                PacketVerdict::Drop | PacketVerdict::DropReset => NfVerdict::Drop,
            };
            verdicts.push((p.id, nv));
        })?;
        if got > 0 {
            // One message per run of equal verdicts: a batch verdict covers every
            // earlier packet of the queue that has none yet.
            let mut i = 0;
            while let Some(&(_, v)) = verdicts.get(i) {
                let mut j = i;
                while verdicts.get(j + 1).is_some_and(|&(_, n)| n == v) {
                    j += 1;
                }
                if let Some(&(id, _)) = verdicts.get(j) {
                    if j == i {
                        q.verdict(id, v)?;
                    } else {
                        q.verdict_batch(id, v)?;
                    }
                }
                i = j + 1;
            }
            w.flush_events();
        }
        src.rx_dropped = q.counters.enobufs;
        src.malformed = q.counters.malformed;
        src.verdict_msgs = q.counters.verdict_msgs;
        src.resets_sent = raw.sent;
        src.resets_failed = raw.failed;
        hk.due(&mut w, &src, false);
    }
    w.finish();
    hk.due(&mut w, &src, true);
    Ok(())
}
