//! `palisade run`: the same workers as `replay`, fed by live sources.
//!
//! Threads:
//! - one packet thread per source (an NFQUEUE queue, a tap, or each direction of a
//!   bridge), each owning one [`Worker`]: receive a run of packets, judge them with the
//!   policy snapshot loaded once for the run, give verdicts, send resets. No locks, no
//!   tokio, no allocation per packet on this path; every 100 ms the thread publishes its
//!   counters with a `try_lock` that never waits, answers flow listings, and expires idle
//!   flows by the wall clock.
//! - the event writer thread (as in replay), with followers for `events --follow`, and
//!   one thread per `--alert-sink` fed by it;
//! - the control thread ([`crate::api`]): a single-threaded tokio runtime for signals
//!   (SIGHUP reloads, SIGTERM/SIGINT stop), the policy file watch, the control socket and
//!   the metrics endpoint.
//!
//! Policy swaps go through one `ArcSwap<PolicySnapshot>`: a policy that fails to load is
//! rejected with a `policy` event and the running one stays.

mod afpacket;
pub mod learner;
pub mod lifecycle;
mod nfqueue;
mod shared;

pub(crate) use shared::now_string;
pub use shared::{PolicyLoad, Published, Shared, Slot, SourceCounters};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_channel::bounded;

use crate::decode::checksum::ChecksumMode;
use crate::events::{EventOutput, EventTap, EventWriter};
use crate::io::afpacket::PacketSocket;
use crate::io::nfqueue::NfQueue;
use crate::io::reset::RawSender;
use crate::pipeline::{Worker, WorkerConfig, WorkerStats, policy_event};

/// The shared shadow candidate, cached per packet thread.
type ShadowCache<'a> = arc_swap::Cache<
    &'a ArcSwapOption<control::PolicySnapshot>,
    Option<Arc<control::PolicySnapshot>>,
>;

/// Gives the worker the shadow candidate in force (once per batch; a pointer comparison
/// when it has not changed).
#[inline]
fn sync_shadow(w: &mut Worker, cache: &mut ShadowCache<'_>) {
    let cand = cache.load();
    let same = match (cand, w.shadow()) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    if !same {
        w.set_shadow(cand.clone());
    }
}

/// The quarantine kept in `state_dir/quarantine.json` (the directory is made 0700 if
/// missing). What it holds is quarantined again at once.
fn open_quarantine(
    state_dir: &std::path::Path,
) -> Result<crate::verdict::quarantine::QuarantineBoard, String> {
    use std::os::unix::fs::DirBuilderExt;
    if !state_dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| format!("--state-dir {}: {e}", state_dir.display()))?;
    }
    let board =
        crate::verdict::quarantine::QuarantineBoard::open(&state_dir.join("quarantine.json"))?;
    let n = board.current().entries.len();
    if n > 0 {
        tracing::warn!("{n} workload(s) stay quarantined (palisadectl quarantine list)");
    }
    Ok(board)
}

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
    /// `--inventory containerd[:SOCKET]`: the socket of the runtime to watch.
    pub containerd: Option<PathBuf>,
    pub events: EventOutput,
    pub control: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub fail_open: bool,
    /// Kernel queue length per NFQUEUE queue.
    pub queue_maxlen: u32,
    pub worker: WorkerConfig,
    /// A candidate policy judged beside the active one from the start (`--shadow`).
    pub shadow: Option<PathBuf>,
    /// Watch the policy (and inventory) file and reload when it changes.
    pub watch: bool,
    /// A tap races what the policy denies with TCP resets (`--tap-resets`); off, a tap only
    /// observes and reports.
    pub tap_resets: bool,
    /// Where state that outlives a restart is kept (the quarantine).
    pub state_dir: PathBuf,
    /// `--alert-sink`: alerts also go to these (from the event writer thread).
    pub alert_sinks: Option<crate::events::sinks::SinkOptions>,
}

/// The host's `/proc` (the DaemonSet runs with `hostPID: true`): where the containerd
/// watcher reads each container's addresses.
const PROC_ROOT: &str = "/proc";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Policy(String),
    /// `--inventory containerd`: the runtime could not be read at start.
    #[error("--inventory containerd: {0}")]
    Inventory(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
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

#[inline]
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

/// The addresses Palisade's own TCP listener is reached at: the metrics address, or, when
/// it is unspecified (`0.0.0.0:9100`), each of this host's addresses on its port, so that
/// another host's service on that port is still judged (`Worker::is_own`). (The control
/// socket is a Unix socket: never on the wire.)
fn own_endpoints(metrics: Option<SocketAddr>) -> Vec<SocketAddr> {
    let Some(m) = metrics else {
        return Vec::new();
    };
    if !m.ip().is_unspecified() {
        return vec![m];
    }
    match crate::io::local::interface_addresses() {
        // A v4 wildcard is reached on v4 addresses only; a v6 one (dual-stack) on both.
        Ok(addrs) => addrs
            .into_iter()
            .filter(|a| m.is_ipv6() || a.is_ipv4())
            .map(|a| SocketAddr::new(a, m.port()))
            .collect(),
        Err(e) => {
            // Without the list, only loopback is known to be this host: a scrape over
            // another address is judged like any client (never a flow let through because
            // its port matched).
            tracing::warn!(
                "cannot list this host's addresses ({e}): only scrapes over loopback on port {} are taken for Palisade's own",
                m.port()
            );
            let lo: [std::net::IpAddr; 2] = [
                std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::Ipv6Addr::LOCALHOST.into(),
            ];
            lo.into_iter()
                .filter(|a| m.is_ipv6() || a.is_ipv4())
                .map(|a| SocketAddr::new(a, m.port()))
                .collect()
        }
    }
}

/// Runs until SIGTERM/SIGINT (or a fatal source error). Returns the final counters and
/// how long it ran.
pub fn run(opts: &RunOptions) -> Result<(WorkerStats, SourceCounters, Duration), RunError> {
    let first_text = std::fs::read_to_string(&opts.policy)
        .map_err(|e| RunError::Policy(format!("{}: {e}", opts.policy.display())))?;
    // The runtime is read once before anything is judged: a daemon never starts with an
    // empty runtime inventory it believes.
    let runtime = match &opts.containerd {
        Some(sock) => {
            let rt = Arc::new(crate::inventory::RuntimeInventory::new(sock.clone()));
            crate::inventory::containerd::initial_sync(&rt, Path::new(PROC_ROOT))
                .map_err(RunError::Inventory)?;
            Some(rt)
        }
        None => None,
    };
    let first = crate::inventory::compile_live(
        &first_text,
        &opts.policy.display().to_string(),
        opts.inventory.as_deref(),
        runtime.as_deref(),
        1,
    )
    .map_err(RunError::Policy)?;
    let quarantine = Arc::new(open_quarantine(&opts.state_dir).map_err(RunError::Policy)?);
    let tap = Arc::new(EventTap::default());
    let sinks = opts
        .alert_sinks
        .clone()
        .map(crate::events::sinks::AlertSinks::start)
        .transpose()?;
    let alert_sinks = sinks.as_ref().map(crate::events::sinks::AlertSinks::stats);
    let writer = EventWriter::start_live(opts.events.clone(), Arc::clone(&tap), sinks)?;

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
        shadow: ArcSwapOption::empty(),
        lifecycle: Mutex::new(lifecycle::Lifecycle::new(&opts.policy)),
        inventory: opts.inventory.clone(),
        runtime: runtime.clone(),
        inventory_swaps: AtomicU64::new(0),
        next_version: AtomicU64::new(2),
        load_lock: Mutex::new(()),
        previous: Mutex::new(None),
        loads: Mutex::new(Vec::new()),
        rejected: AtomicU64::new(0),
        shutdown: AtomicBool::new(false),
        slots,
        started: Instant::now(),
        started_at: shared::now_string(),
        source: opts.source.clone(),
        tap,
        events: Mutex::new(writer.sender()),
        capture_store: opts.worker.capture.as_ref().map(|c| Arc::clone(&c.store)),
        events_dropped: writer.dropped().unwrap_or_default(),
        reopen_events: writer.reopen_handle(),
        thread_died: Mutex::new(None),
        learner: std::sync::OnceLock::new(),
        quarantine,
        alert_sinks,
    });
    {
        let mut buf = Vec::new();
        policy_event(&mut buf, &shared.policy.load(), &opts.policy, None);
        if let Ok(mut ev) = shared.events.lock() {
            ev.flush(&mut buf);
        }
        shared.started_with(first_text, &shared.policy.load());
    }
    if let Some(candidate) = &opts.shadow {
        shared
            .shadow_apply(candidate, "start")
            .map_err(RunError::Policy)?;
    }

    // Open every source before starting anything, so a bad queue or interface fails the
    // command at once with a clear message.
    let mut worker_cfg = opts.worker.clone();
    worker_cfg.enforcing = opts.source.is_inline();
    worker_cfg.own_endpoints = own_endpoints(opts.metrics);
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
                            nfqueue::nfqueue_loop(i, q, raw, cfg, events, &shared)
                        })?,
                );
            }
        }
        Source::Tap(iface) => {
            let sock = PacketSocket::open(iface)?;
            let tap_resets = opts.tap_resets;
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
                        afpacket::tap_loop(sock, cfg, events, &shared, tap_resets)
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

    let watcher = match &runtime {
        Some(rt) => {
            let on_change = Arc::downgrade(&shared);
            let stopped = Arc::downgrade(&shared);
            Some(crate::inventory::containerd::spawn(
                crate::inventory::containerd::Watch {
                    inventory: Arc::clone(rt),
                    proc_root: PROC_ROOT.into(),
                    on_change: Box::new(move || {
                        if let Some(s) = on_change.upgrade() {
                            s.inventory_changed();
                        }
                    }),
                    stopped: Box::new(move || {
                        stopped
                            .upgrade()
                            .is_none_or(|s| s.shutdown.load(Ordering::Relaxed))
                    }),
                },
            )?)
        }
        None => None,
    };
    let (live_learner, learn_thread) = learner::start(Arc::clone(&shared))?;
    let _ = shared.learner.set(live_learner);
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
    let _ = learn_thread.join();
    if let Some(w) = watcher {
        let _ = w.join();
    }
    let (stats, src) = shared.totals();
    let elapsed = shared.started.elapsed();
    // The last holder of the shared state: dropping it drops the control side's event
    // sender, so the writer can finish.
    drop(shared);
    writer.finish()?;
    match failure {
        Some(e) => Err(RunError::Io(e)),
        None => Ok((stats, src, elapsed)),
    }
}
