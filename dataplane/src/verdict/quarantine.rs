//! Quarantine (`quarantine: true` on a deny or alert rule, PRODUCT.md): when such a rule
//! matches, the flow's source workload is quarantined: its open flows are reset and every
//! later flow from or to it is denied (rule `quarantine`, alert category `quarantine`)
//! until `palisadectl quarantine release`. The quarantine is Palisade's, not the policy's:
//! it survives policy swaps, and (live) restarts through a small state file.
//!
//! One [`QuarantineBoard`] is shared by the workers (and the control thread). Adding or
//! releasing takes its lock and publishes a new immutable [`QuarantineSet`]; workers read
//! the set's version with one atomic load per packet and take the new set only when it
//! changed, then walk their open flows once. A workload is named `namespace/name`; an
//! address no workload owns is quarantined by itself.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use control::{Decision, Endpoint, PolicySnapshot};
use serde::{Deserialize, Serialize};

use crate::flow::Handle;
use crate::pipeline::Worker;

/// Most workloads quarantined at once; further triggers are refused and counted
/// (`QuarantineBoard::refused`), so a storm of matches cannot grow the set without bound.
pub const MAX_QUARANTINED: usize = 4096;
/// Largest state file read at start.
const MAX_STATE_BYTES: u64 = 16 << 20;

/// One quarantined workload (or address).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// `namespace/name`, or the address when no workload owns it.
    pub workload: String,
    /// When it was quarantined (event time form).
    pub since: String,
    /// The rule that quarantined it, and what it matched.
    pub rule: String,
    pub signature: String,
    /// The flow that matched, and its source address.
    pub flow_id: u64,
    pub src_ip: IpAddr,
}

/// The quarantined workloads, immutable once published.
#[derive(Debug, Default)]
pub struct QuarantineSet {
    pub version: u64,
    pub entries: Vec<QuarantineEntry>,
    keys: HashSet<String>,
}

impl QuarantineSet {
    fn new(version: u64, entries: Vec<QuarantineEntry>) -> Self {
        let keys = entries.iter().map(|e| e.workload.clone()).collect();
        QuarantineSet {
            version,
            entries,
            keys,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    quarantined: Vec<QuarantineEntry>,
}

/// The quarantine shared by every worker and the control side.
pub struct QuarantineBoard {
    set: ArcSwap<QuarantineSet>,
    /// The published set's version (read per packet, without touching the `ArcSwap`).
    version: AtomicU64,
    lock: Mutex<()>,
    /// Where the set is kept across restarts (`palisade run --state-dir`).
    state_file: Option<PathBuf>,
    /// The set changed since the state file was written.
    dirty: AtomicBool,
    /// Triggers refused because [`MAX_QUARANTINED`] are quarantined.
    pub refused: AtomicU64,
}

impl QuarantineBoard {
    /// An empty board that keeps nothing across runs (`replay`).
    pub fn in_memory() -> Self {
        QuarantineBoard {
            set: ArcSwap::from_pointee(QuarantineSet::default()),
            version: AtomicU64::new(0),
            lock: Mutex::new(()),
            state_file: None,
            dirty: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        }
    }

    /// The board kept in `path`: what it holds is quarantined again at once. A missing
    /// file is an empty quarantine; a file that cannot be read or parsed is an error (a
    /// quarantine must not be lifted by a corrupt file).
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut board = Self::in_memory();
        board.state_file = Some(path.to_path_buf());
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(board),
            Err(e) => return Err(format!("{}: {e}", path.display())),
            Ok(m) if m.len() > MAX_STATE_BYTES => {
                return Err(format!(
                    "{}: larger than {} MiB; not a quarantine state file",
                    path.display(),
                    MAX_STATE_BYTES >> 20
                ));
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let state: StateFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a quarantine state file: {e}", path.display()))?;
        let mut entries = state.quarantined;
        entries.truncate(MAX_QUARANTINED);
        let n = u64::from(!entries.is_empty());
        board.set.store(Arc::new(QuarantineSet::new(n, entries)));
        board.version.store(n, Ordering::Release);
        Ok(board)
    }

    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Arc<QuarantineSet> {
        self.set.load_full()
    }

    fn publish(&self, entries: Vec<QuarantineEntry>) {
        let v = self.version() + 1;
        self.set.store(Arc::new(QuarantineSet::new(v, entries)));
        self.version.store(v, Ordering::Release);
        self.dirty.store(true, Ordering::Release);
    }

    /// Quarantines `entry.workload`. Returns whether it was new.
    pub fn add(&self, entry: QuarantineEntry) -> bool {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current();
        if cur.contains(&entry.workload) {
            return false;
        }
        if cur.entries.len() >= MAX_QUARANTINED {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut entries = cur.entries.clone();
        entries.push(entry);
        self.publish(entries);
        true
    }

    /// Releases what `what` names: `namespace/name`, a workload name alone (every
    /// namespace), or an address. Returns what was released.
    pub fn release(&self, what: &str) -> Vec<QuarantineEntry> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current();
        let named = |e: &QuarantineEntry| {
            e.workload == what
                || e.workload.rsplit_once('/').is_some_and(|(_, n)| n == what)
                || e.src_ip.to_string() == what
        };
        let (gone, kept): (Vec<_>, Vec<_>) = cur.entries.iter().cloned().partition(named);
        if !gone.is_empty() {
            self.publish(kept);
        }
        gone
    }

    /// Writes the state file if the set changed (atomically: a temporary file, 0600,
    /// renamed over the old one). Called by the control thread.
    pub fn save_if_dirty(&self) -> Result<(), String> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let state = StateFile {
            quarantined: self.current().entries.clone(),
        };
        let text = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            // Try again at the next call.
            self.dirty.store(true, Ordering::Release);
            format!("{}: {e}", path.display())
        })
    }
}

/// The quarantine key of an endpoint: its workload as `namespace/name`, else its address.
pub(crate) fn key_of(snap: &PolicySnapshot, ep: &Endpoint, ip: IpAddr, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    match ep.workload {
        Some(w) => {
            let info = snap.workload(w);
            out.push_str(&info.namespace);
            out.push('/');
            out.push_str(&info.name);
        }
        None => {
            let _ = write!(out, "{ip}");
        }
    }
}

impl Worker {
    /// Judges every flow from or to a quarantined workload as such: `board` is shared with
    /// the other workers and the control side.
    pub fn set_quarantine(&mut self, board: Arc<QuarantineBoard>) {
        self.q_set = board.current();
        self.q_board = Some(board);
    }

    /// Whether either end of a flow is quarantined (`snap` resolved `src`/`dst`).
    #[inline]
    pub(crate) fn is_quarantined(
        &mut self,
        snap: &PolicySnapshot,
        (src, src_ip): (&Endpoint, IpAddr),
        (dst, dst_ip): (&Endpoint, IpAddr),
    ) -> bool {
        if self.q_set.is_empty() {
            return false;
        }
        key_of(snap, src, src_ip, &mut self.q_key);
        if self.q_set.contains(&self.q_key) {
            return true;
        }
        key_of(snap, dst, dst_ip, &mut self.q_key);
        self.q_set.contains(&self.q_key)
    }

    /// Takes a changed quarantine set: open flows from or to a newly quarantined workload
    /// are refused from their next packet (dropped with resets), each with an alert.
    #[inline]
    pub(crate) fn check_quarantine(&mut self, ts_ns: u64) {
        let Some(board) = &self.q_board else { return };
        if board.version() == self.q_set.version {
            return;
        }
        self.q_set = board.current();
        if self.q_set.is_empty() {
            return;
        }
        for h in self.flows.live_handles() {
            self.quarantine_flow(h, ts_ns);
        }
    }

    /// Refuses open flow `h` if an end is quarantined and it is not already refused.
    fn quarantine_flow(&mut self, h: Handle, ts_ns: u64) {
        let Some(flow) = self.flows.value(h) else {
            return;
        };
        // Refused already (the flow that triggered it, a denied one), or over: nothing
        // more of it can pass.
        let refused = flow.verdict.decision.enforce || flow.blocked;
        if refused || flow.tcp.is_some_and(|t| t.is_closed()) {
            return;
        }
        let v = &flow.verdict;
        let snap = Arc::clone(&v.snap);
        let (src, dst, client, server) = (v.src, v.dst, flow.client.0, flow.server.0);
        if !self.is_quarantined(&snap, (&src, client), (&dst, server)) {
            return;
        }
        let Some(flow) = self.flows.value_mut(h) else {
            return;
        };
        let d = &flow.verdict.decision;
        flow.verdict.decision = Decision::quarantined(d.src_group, d.dst_group);
        flow.blocked = true;
        flow.alerted = true;
        let id = flow.id;
        self.stats.quarantine_reset += 1;
        self.alert(id, h, ts_ns);
    }

    /// Rule `d` (of `snap`) matched flow `h` and has `quarantine: true`: its source
    /// workload is quarantined, for every worker from its next packet, here at once.
    pub(crate) fn quarantine_source(
        &mut self,
        h: Handle,
        snap: &PolicySnapshot,
        d: &Decision,
        signature: &str,
        ts_ns: u64,
    ) {
        let Some(board) = self.q_board.clone() else {
            return;
        };
        let Some(flow) = self.flows.value(h) else {
            return;
        };
        let mut key = String::new();
        key_of(
            &flow.verdict.snap,
            &flow.verdict.src,
            flow.client.0,
            &mut key,
        );
        let mut since = String::with_capacity(32);
        crate::events::Timestamp(ts_ns).write_to(&mut since);
        let entry = QuarantineEntry {
            workload: key,
            since,
            rule: super::rule_name(snap, d).to_string(),
            signature: signature.to_string(),
            flow_id: flow.id,
            src_ip: flow.client.0,
        };
        if board.add(entry) {
            self.stats.quarantined += 1;
            tracing::warn!(rule = %super::rule_name(snap, d), "quarantined the source of flow {}", flow.id);
        }
        self.check_quarantine(ts_ns);
    }
}

/// Whether decision `d` of `snap` quarantines (a matching rule with `quarantine: true`).
#[inline]
pub(crate) fn quarantines(snap: &PolicySnapshot, d: &Decision) -> bool {
    d.rule
        .and_then(|r| snap.rule(r))
        .is_some_and(|r| r.quarantine())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(w: &str) -> QuarantineEntry {
        QuarantineEntry {
            workload: w.into(),
            since: "2026-12-07T00:00:00.000000+0000".into(),
            rule: "probe".into(),
            signature: "palisade probe web->db".into(),
            flow_id: 7,
            src_ip: "10.0.0.5".parse().unwrap(),
        }
    }

    #[test]
    fn add_release_and_versions() {
        let b = QuarantineBoard::in_memory();
        assert_eq!(b.version(), 0);
        assert!(b.add(entry("shop/web-1")));
        assert!(!b.add(entry("shop/web-1")), "already quarantined");
        assert_eq!(b.version(), 1);
        assert!(b.current().contains("shop/web-1"));
        assert!(b.release("shop/other").is_empty());
        // A name alone releases it in every namespace; so does its address.
        assert_eq!(b.release("web-1").len(), 1);
        assert!(b.current().is_empty());
        assert!(b.add(entry("shop/web-2")));
        assert_eq!(b.release("10.0.0.5").len(), 1);
        assert_eq!(b.version(), 4);
    }

    #[test]
    fn the_set_is_bounded() {
        let b = QuarantineBoard::in_memory();
        for i in 0..MAX_QUARANTINED + 10 {
            b.add(entry(&format!("ns/w{i}")));
        }
        assert_eq!(b.current().entries.len(), MAX_QUARANTINED);
        assert_eq!(b.refused.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn the_state_file_keeps_it_across_restarts() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quarantine.json");
        let b = QuarantineBoard::open(&path).unwrap();
        assert!(b.current().is_empty(), "no file: nothing quarantined");
        b.add(entry("shop/web-1"));
        b.save_if_dirty().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = QuarantineBoard::open(&path).unwrap();
        assert_eq!(again.current().entries, vec![entry("shop/web-1")]);
        assert!(again.current().contains("shop/web-1"));
        // A corrupt file is an error, never an empty quarantine.
        std::fs::write(&path, b"{not json").unwrap();
        let err = QuarantineBoard::open(&path).err().unwrap();
        assert!(err.contains("not a quarantine state file"), "{err}");
    }
}
