//! What the packet threads and the control thread share: the policy and the shadow
//! candidate (`ArcSwap`s, loaded and swapped by `lifecycle`), each thread's published
//! counters and flow listings, and the record of policy loads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use control::PolicySnapshot;
use crossbeam_channel::{Receiver, Sender, bounded};

use super::Source;
use super::lifecycle::Lifecycle;
use crate::api::FlowInfo;
use crate::events::{EventSender, EventTap, Timestamp};
use crate::pipeline::WorkerStats;

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
    pub(super) flow_rx: Receiver<(usize, Sender<Vec<FlowInfo>>)>,
}

/// One policy load or rejection, for `status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PolicyLoad {
    pub at: String,
    pub source: String,
    pub trigger: String,
    pub version: Option<u64>,
    pub error: Option<String>,
    /// A reload of the startup file not applied because the running version was applied
    /// from elsewhere (`lifecycle`).
    pub skipped: bool,
}

/// State shared by the packet threads and the control thread.
pub struct Shared {
    pub policy: ArcSwap<PolicySnapshot>,
    /// The shadow candidate, judged beside `policy` and never enforced (`verdict::shadow`).
    pub shadow: ArcSwapOption<PolicySnapshot>,
    /// Where each version came from, the history kept for rollback, the candidate's text.
    pub(super) lifecycle: Mutex<Lifecycle>,
    pub inventory: Option<PathBuf>,
    /// `--inventory containerd`: the runtime's workloads, merged with the file's.
    pub runtime: Option<Arc<crate::inventory::RuntimeInventory>>,
    /// Recompiles of the running policy for an inventory change.
    pub inventory_swaps: AtomicU64,
    pub(super) next_version: AtomicU64,
    /// Serialises loads so versions are handed out in order.
    pub(super) load_lock: Mutex<()>,
    /// The previous snapshot, kept so it is freed here and not on a packet thread.
    pub(super) previous: Mutex<Option<Arc<PolicySnapshot>>>,
    pub loads: Mutex<Vec<PolicyLoad>>,
    pub rejected: AtomicU64,
    pub shutdown: AtomicBool,
    pub slots: Vec<Slot>,
    pub started: Instant,
    /// When the daemon started, as events write time.
    pub started_at: String,
    pub source: Source,
    pub tap: Arc<EventTap>,
    pub(super) events: Mutex<EventSender>,
    /// Its index of capture files and bounds, shared with the workers.
    pub capture_store: Option<Arc<crate::capture::CaptureStore>>,
    /// Event lines dropped because the writer fell behind (the packet path never waits).
    pub events_dropped: Arc<AtomicU64>,
    /// A packet thread ended while the daemon was meant to be running: the daemon stops
    /// (a queue left unbound would be bypassed while status looked healthy).
    pub thread_died: Mutex<Option<String>>,
    /// SIGHUP sets it: the event writer reopens its file (log rotation).
    pub reopen_events: Arc<AtomicBool>,
    /// Quarantined workloads, shared by the workers, kept in `--state-dir`.
    pub quarantine: Arc<crate::verdict::quarantine::QuarantineBoard>,
    /// What groups in `learn` mode observed (`palisadectl learn export`).
    pub learner: std::sync::OnceLock<Arc<super::learner::LiveLearner>>,
    /// `--alert-sink`: each sink's counters and the rate limiter's.
    pub alert_sinks: Option<Arc<crate::events::sinks::AlertSinkStats>>,
}

/// Most policy loads remembered for `status`.
pub(super) const LOADS_KEPT: usize = 32;

impl Shared {
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

pub(crate) fn now_string() -> String {
    let mut s = String::with_capacity(32);
    Timestamp::now().write_to(&mut s);
    s
}
