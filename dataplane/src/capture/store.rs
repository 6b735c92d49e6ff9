//! The capture directory as every worker sees it: one index of the capture files, in the
//! order they were created, with their sizes, shared by the workers (and read by
//! `palisadectl captures`), which keeps the directory within `--capture-max-files` and
//! `--capture-max-bytes`.
//!
//! Files Palisade finds in the directory when it starts are indexed first (oldest
//! modification first), so a restart cannot let the directory grow past its bounds. Only
//! names of Palisade's own pattern (`<flow id>-<rule>.pcap`, and its sidecar
//! `<flow id>-<rule>.pcap.json`) are indexed, counted or ever removed.
//!
//! When a bound is reached the oldest file goes first, but a file whose flow is still being
//! written counts as newer than every closed one: the evidence of what is happening now is
//! the last to go. A removed file that was still open is closed by its worker at its next
//! packet. The byte bound is strict: every byte written (pcap headers, packets, sidecars) is
//! accounted before it is written, and a write that would pass the bound first removes older
//! files; when nothing else is left to remove the file stops there (counted as truncated).
//!
//! The per-packet cost is two atomic additions and a flag load; the index's lock is taken
//! when a file is created or removed, when a sidecar is written, and when a write finds the
//! directory at its byte bound.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Most files the index holds. With a bound set (`--capture-max-files` or
/// `--capture-max-bytes`) it acts as a files bound too: the oldest file is removed to index
/// a new one. Without bounds nothing is ever removed: the oldest entry is forgotten (the file
/// stays) and counted.
pub const INDEX_MAX: usize = 65_536;

/// Largest sidecar read back when the directory is indexed at start.
const SIDECAR_MAX: u64 = 64 << 10;

/// Bounds on the capture directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirBounds {
    /// `--capture-max-files`: capture files kept at once (at least 1).
    pub max_files: Option<usize>,
    /// `--capture-max-bytes`: bytes of capture files and their sidecars kept at once.
    pub max_bytes: Option<u64>,
}

/// What keeping the directory within its bounds did (added to the worker's counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removals {
    /// Files removed (each with its sidecar) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// New files that found the directory at its files bound.
    pub files_limit: u64,
    /// Writes that found the directory at its byte bound.
    pub bytes_limit: u64,
    /// Files that could not be removed (they are no longer indexed).
    pub errors: u64,
}

/// One capture file in the index.
#[derive(Debug)]
pub struct CaptureEntry {
    /// The file's name in the directory.
    pub name: String,
    /// The flow and the capturing rule, from the name (or the sidecar) of a file found
    /// at start.
    pub flow_id: Option<u64>,
    pub rule: String,
    /// Seconds since the epoch: when it was created (modified, for a file found at start).
    pub created: u64,
    /// Found in the directory at start rather than written by this process.
    pub found: bool,
    seq: u64,
    bytes: AtomicU64,
    open: AtomicBool,
    removed: AtomicBool,
    /// The sidecar's content (written once: at the flow's first alert, else at its end).
    sidecar: OnceLock<Value>,
}

impl CaptureEntry {
    /// Bytes accounted to the file and its sidecar.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Its flow is still being written.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Removed to keep the directory within its bounds.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// What its sidecar says (the alert it belongs to), once written or read.
    pub fn sidecar(&self) -> Option<&Value> {
        self.sidecar.get()
    }
}

#[derive(Debug, Default)]
struct Index {
    files: VecDeque<Arc<CaptureEntry>>,
    next_seq: u64,
}

/// The capture directory's index and bounds, shared by every worker.
#[derive(Debug)]
pub struct CaptureStore {
    dir: PathBuf,
    bounds: DirBounds,
    /// Bytes accounted to every indexed file (reserved before they are written).
    total: AtomicU64,
    /// Entries forgotten (not removed) because the index was full and no bound was set.
    forgotten: AtomicU64,
    index: Mutex<Index>,
}

/// Whether `name` is a capture file of Palisade's: `<digits>-<rule>.pcap`, the rule in the
/// characters `file_safe` keeps.
pub fn is_capture_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".pcap") else {
        return false;
    };
    let Some((flow, rule)) = stem.split_once('-') else {
        return false;
    };
    !flow.is_empty()
        && flow.bytes().all(|b| b.is_ascii_digit())
        && !rule.is_empty()
        && rule
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The sidecar of capture file `name`.
pub fn sidecar_name(name: &str) -> String {
    format!("{name}.json")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sub(a: &AtomicU64, n: u64) {
    let _ = a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        Some(v.saturating_sub(n))
    });
}

impl CaptureStore {
    /// A store that has not looked at its directory (tests, the demo's fresh directory).
    pub fn new(dir: PathBuf, bounds: DirBounds) -> Self {
        CaptureStore {
            dir,
            bounds,
            total: AtomicU64::new(0),
            forgotten: AtomicU64::new(0),
            index: Mutex::new(Index::default()),
        }
    }

    /// A store over `dir` with the capture files already there indexed, oldest first.
    pub fn open(dir: PathBuf, bounds: DirBounds) -> io::Result<Self> {
        let store = CaptureStore::new(dir, bounds);
        let mut found = Vec::new();
        for e in std::fs::read_dir(&store.dir)? {
            let Ok(e) = e else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_capture_name(&name) {
                continue;
            }
            // Regular files only: a link is not ours to follow or remove.
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if !m.file_type().is_file() {
                continue;
            }
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let mut bytes = m.len();
            let sidecar_path = store.dir.join(sidecar_name(&name));
            let mut sidecar = None;
            if let Ok(sm) = std::fs::symlink_metadata(&sidecar_path)
                && sm.file_type().is_file()
            {
                bytes += sm.len();
                if sm.len() <= SIDECAR_MAX {
                    sidecar = std::fs::read(&sidecar_path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
                }
            }
            found.push((modified, name, bytes, sidecar));
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let bounded = bounds.max_files.is_some() || bounds.max_bytes.is_some();
        if !bounded && found.len() > INDEX_MAX {
            let drop = found.len() - INDEX_MAX;
            found.drain(..drop);
            store.forgotten.fetch_add(drop as u64, Ordering::SeqCst);
        }
        {
            let mut idx = store.lock();
            for (modified, name, bytes, sidecar) in found {
                let stem = name.trim_end_matches(".pcap");
                let (flow, rule) = stem.split_once('-').unwrap_or((stem, ""));
                let from_sidecar = |k: &str| sidecar.as_ref().and_then(|s| s.get(k)).cloned();
                let entry = CaptureEntry {
                    flow_id: from_sidecar("flow_id")
                        .and_then(|v| v.as_u64())
                        .or_else(|| flow.parse().ok()),
                    rule: from_sidecar("capture_rule")
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_else(|| rule.to_string()),
                    name,
                    created: (modified / 1_000_000_000) as u64,
                    found: true,
                    seq: idx.next_seq,
                    bytes: AtomicU64::new(bytes),
                    open: AtomicBool::new(false),
                    removed: AtomicBool::new(false),
                    sidecar: OnceLock::new(),
                };
                if let Some(s) = sidecar {
                    let _ = entry.sidecar.set(s);
                }
                idx.next_seq += 1;
                store.total.fetch_add(bytes, Ordering::SeqCst);
                idx.files.push_back(Arc::new(entry));
            }
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bounds(&self) -> DirBounds {
        self.bounds
    }

    /// Files indexed and bytes accounted to them now.
    pub fn usage(&self) -> (usize, u64) {
        (self.lock().files.len(), self.total.load(Ordering::SeqCst))
    }

    /// Index entries forgotten without a bound (the files stay).
    pub fn forgotten(&self) -> u64 {
        self.forgotten.load(Ordering::SeqCst)
    }

    /// Up to `max` indexed files, newest first, and how many there are.
    pub fn list(&self, max: usize) -> (Vec<Arc<CaptureEntry>>, usize) {
        let idx = self.lock();
        let all = idx.files.len();
        let mut v: Vec<_> = idx.files.iter().cloned().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.seq));
        v.truncate(max);
        (v, all)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // A worker that panicked holding the lock left the index consistent (every change
        // is a single push, pop or remove): go on with it.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bounded(&self) -> bool {
        self.bounds.max_files.is_some() || self.bounds.max_bytes.is_some()
    }

    /// Creates the file for flow `flow_id` captured by `rule` (`file_rule`: the rule's id
    /// in the characters a file name keeps), first removing the oldest files when the
    /// directory is at its files bound.
    pub fn create(
        &self,
        flow_id: u64,
        rule: &str,
        file_rule: &str,
        out: &mut Removals,
    ) -> io::Result<(Arc<CaptureEntry>, File)> {
        let mut idx = self.lock();
        let cap = self
            .bounds
            .max_files
            .unwrap_or(INDEX_MAX)
            .clamp(1, INDEX_MAX);
        if idx.files.len() >= cap {
            if self.bounded() {
                out.files_limit += 1;
                while idx.files.len() >= cap {
                    let Some(i) = oldest(&idx.files, None) else {
                        break;
                    };
                    self.remove_at(&mut idx, i, out);
                }
            } else {
                while idx.files.len() >= cap {
                    let Some(e) = idx.files.pop_front() else {
                        break;
                    };
                    sub(&self.total, e.bytes.swap(0, Ordering::SeqCst));
                    self.forgotten.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let (path, file) = create_unique(&self.dir, flow_id, file_rule)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = Arc::new(CaptureEntry {
            name,
            flow_id: Some(flow_id),
            rule: rule.to_string(),
            created: now_secs(),
            found: false,
            seq: idx.next_seq,
            bytes: AtomicU64::new(0),
            open: AtomicBool::new(true),
            removed: AtomicBool::new(false),
            sidecar: OnceLock::new(),
        });
        idx.next_seq += 1;
        idx.files.push_back(Arc::clone(&entry));
        Ok((entry, file))
    }

    /// Accounts `n` more bytes to `e` before they are written. At the byte bound, older
    /// files are removed first; false when even that leaves no room (or `e` itself was
    /// removed): the caller writes nothing more to the file.
    pub fn grow(&self, e: &CaptureEntry, n: u64, out: &mut Removals) -> bool {
        if e.is_removed() {
            return false;
        }
        let after = self.total.fetch_add(n, Ordering::SeqCst).saturating_add(n);
        if let Some(max) = self.bounds.max_bytes
            && after > max
        {
            out.bytes_limit += 1;
            let mut idx = self.lock();
            while self.total.load(Ordering::SeqCst) > max {
                let Some(i) = oldest(&idx.files, Some(e)) else {
                    break;
                };
                self.remove_at(&mut idx, i, out);
            }
            if self.total.load(Ordering::SeqCst) > max {
                sub(&self.total, n);
                return false;
            }
        }
        e.bytes.fetch_add(n, Ordering::SeqCst);
        if e.is_removed() {
            // Removed meanwhile by another worker: whichever of us takes the bytes back
            // does so once.
            sub(&self.total, e.bytes.swap(0, Ordering::SeqCst));
            return false;
        }
        true
    }

    /// `e`'s flow is no longer written: it is as old as its creation says.
    pub fn close(&self, e: &CaptureEntry) {
        e.open.store(false, Ordering::SeqCst);
    }

    /// Writes `e`'s sidecar once (mode 0600), its bytes accounted like the file's.
    pub fn write_sidecar(&self, e: &CaptureEntry, v: Value, out: &mut Removals) -> io::Result<()> {
        if e.sidecar.get().is_some() || e.is_removed() {
            return Ok(());
        }
        let mut text = serde_json::to_vec_pretty(&v).map_err(io::Error::other)?;
        text.push(b'\n');
        if !self.grow(e, text.len() as u64, out) {
            return Ok(());
        }
        let _ = e.sidecar.set(v);
        let path = self.dir.join(sidecar_name(&e.name));
        let mut f = create_private(&path, false)?;
        f.write_all(&text)
    }

    /// Removes the entry at `i` with its files (sidecar first: a crash between the two
    /// leaves a pcap without sidecar, never a sidecar without its pcap).
    fn remove_at(&self, idx: &mut Index, i: usize, out: &mut Removals) {
        let Some(e) = idx.files.remove(i) else { return };
        e.removed.store(true, Ordering::SeqCst);
        let bytes = e.bytes.swap(0, Ordering::SeqCst);
        let mut failed = false;
        for name in [sidecar_name(&e.name), e.name.clone()] {
            match std::fs::remove_file(self.dir.join(name)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(_) => failed = true,
            }
        }
        sub(&self.total, bytes);
        if failed {
            out.errors += 1;
        } else {
            out.files += 1;
            out.bytes += bytes;
        }
    }
}

/// Which file goes first: the oldest closed one, else the oldest still being written; never
/// `keep` (the file being grown).
fn oldest(files: &VecDeque<Arc<CaptureEntry>>, keep: Option<&CaptureEntry>) -> Option<usize> {
    let other = |e: &Arc<CaptureEntry>| keep.is_none_or(|k| !std::ptr::eq(k, &**e));
    files
        .iter()
        .position(|e| other(e) && !e.is_open())
        .or_else(|| files.iter().position(other))
}

/// Opens `path` for writing with mode 0600 whatever the umask (a flow's packets are for
/// the operator, not every local user); `new`: fail if it exists.
fn create_private(path: &Path, new: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).mode(0o600);
    if new {
        o.create_new(true);
    } else {
        o.create(true).truncate(true);
    }
    let f = o.open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Creates `<dir>/<flow>-<rule>.pcap`, or `<flow>-<rule>-<n>.pcap` when a file of that name
/// is left from an earlier run (flow ids restart with the process).
pub(super) fn create_unique(dir: &Path, flow_id: u64, rule: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for n in 0..100u32 {
        let name = if n == 0 {
            format!("{flow_id}-{rule}.pcap")
        } else {
            format!("{flow_id}-{rule}-{n}.pcap")
        };
        let path = dir.join(name);
        match create_private(&path, true) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free capture file name")))
}
