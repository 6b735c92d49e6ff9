//! What the packet threads and the control thread share: the policy (one `ArcSwap`,
//! loaded and swapped here), each thread's published counters and flow listings, and the
//! record of policy loads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use control::PolicySnapshot;
use crossbeam_channel::{Receiver, Sender, bounded};

use super::Source;
use crate::api::FlowInfo;
use crate::events::{EventSender, EventTap, Timestamp};
use crate::pipeline::{WorkerStats, policy_event};

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
}

/// State shared by the packet threads and the control thread.
pub struct Shared {
    pub policy: ArcSwap<PolicySnapshot>,
    /// The file the running policy came from (`policy apply` may change it).
    pub policy_path: Mutex<PathBuf>,
    /// The running policy's text as read when it was loaded (`policy show`).
    pub policy_text: Mutex<String>,
    pub inventory: Option<PathBuf>,
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
    pub source: Source,
    pub tap: Arc<EventTap>,
    pub(super) events: Mutex<EventSender>,
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
            control::load_snapshot(path, self.inventory.as_deref(), version)
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

pub(super) fn now_string() -> String {
    let mut s = String::with_capacity(32);
    Timestamp::now().write_to(&mut s);
    s
}
