//! A running policy's life: which version is in force and where it came from, the versions
//! before it (for `policy rollback` and `policy show --history`), and the shadow candidate.
//!
//! The rule for reloads (PRODUCT.md: an applied policy stays applied): the running policy
//! *follows the startup file* (`--policy`) until a policy is applied from elsewhere (the
//! control socket with another file, a shadow promote, a rollback). From then on a SIGHUP
//! or file-watch reload of the startup file is not applied: it is recorded as `skipped`
//! (a `policy` event and a load in `status`, with the reason and how to follow the file
//! again) and the applied version stays. `palisadectl policy apply STARTUP_FILE` follows
//! the file again.
//!
//! Every version is compiled from the text kept for it, so `policy show` prints exactly
//! what is in force and a rollback returns to exactly what ran, whatever the file holds
//! now. Versions are numbered in load order: a rollback or a promote makes a new version.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use control::PolicySnapshot;
use serde::Serialize;

use super::shared::now_string;
use super::{PolicyLoad, Shared};
use crate::events::{Event, PolicyObj, Timestamp};
use crate::pipeline::policy_record;

/// Versions kept for rollback and `--history` (their texts included).
pub const HISTORY_KEPT: usize = 16;
/// Longest policy text kept per version; a longer file is refused (a policy is a few KiB).
pub const MAX_POLICY_TEXT: usize = 4 << 20;

/// Where a version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The startup file (`--policy`): at start, SIGHUP, the file watch, or applied again.
    File,
    /// `palisadectl policy apply` of another file.
    ControlSocket,
    /// `palisadectl shadow promote`.
    ShadowPromote,
    /// `palisadectl policy rollback`.
    Rollback,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::ControlSocket => "control-socket",
            Origin::ShadowPromote => "shadow-promote",
            Origin::Rollback => "rollback",
        }
    }
}

/// One version that was in force (or the candidate).
#[derive(Clone, Debug, Serialize)]
pub struct VersionRecord {
    pub version: u64,
    pub name: String,
    pub rules: usize,
    pub origin: Origin,
    /// The file its text was read from.
    pub path: String,
    /// What loaded it: start, sighup, file-watch, control-socket, shadow-promote, rollback.
    pub trigger: String,
    pub at: String,
    /// For a rollback: the version whose text it runs again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_of: Option<u64>,
    #[serde(skip)]
    pub text: Arc<str>,
}

/// The active version's history and the shadow candidate.
pub struct Lifecycle {
    /// The startup file, as given and canonicalised (a later apply of it follows it again).
    startup: PathBuf,
    startup_canon: Option<PathBuf>,
    /// Versions in force, oldest first; the last is the running one.
    history: VecDeque<VersionRecord>,
    shadow: Option<VersionRecord>,
}

impl Lifecycle {
    pub fn new(startup: &Path) -> Self {
        Lifecycle {
            startup: startup.to_path_buf(),
            startup_canon: std::fs::canonicalize(startup).ok(),
            history: VecDeque::new(),
            shadow: None,
        }
    }

    pub fn startup(&self) -> &Path {
        &self.startup
    }

    pub fn current(&self) -> Option<&VersionRecord> {
        self.history.back()
    }

    pub fn shadow(&self) -> Option<&VersionRecord> {
        self.shadow.as_ref()
    }

    /// Newest first.
    pub fn history(&self) -> impl Iterator<Item = &VersionRecord> {
        self.history.iter().rev()
    }

    fn push(&mut self, r: VersionRecord) {
        if self.history.len() >= HISTORY_KEPT {
            self.history.pop_front();
        }
        self.history.push_back(r);
    }

    fn is_startup(&self, path: &Path) -> bool {
        path == self.startup
            || std::fs::canonicalize(path)
                .ok()
                .is_some_and(|p| Some(&p) == self.startup_canon.as_ref())
    }
}

/// Reads a policy file's text, bounded.
fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_POLICY_TEXT as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() > MAX_POLICY_TEXT {
        return Err(format!(
            "{}: longer than {} MiB; a policy this large is refused",
            path.display(),
            MAX_POLICY_TEXT >> 20
        ));
    }
    Ok(text)
}

/// What a load did, for the caller's answer.
pub type LoadResult = Result<u64, String>;

impl Shared {
    /// Writes `buf` to the event file (never blocks the packet path).
    fn emit(&self, buf: &mut Vec<u8>) {
        if let Ok(mut ev) = self.events.lock() {
            ev.flush(buf);
        }
    }

    /// Remembers a load for `status` and logs it.
    fn note_load(&self, source: &str, trigger: &str, outcome: &Result<u64, String>, skipped: bool) {
        if let Ok(mut loads) = self.loads.lock() {
            if loads.len() >= super::shared::LOADS_KEPT {
                loads.remove(0);
            }
            loads.push(PolicyLoad {
                at: now_string(),
                source: source.to_string(),
                trigger: trigger.to_string(),
                version: outcome.as_ref().ok().copied(),
                error: outcome.as_ref().err().cloned(),
                skipped,
            });
        }
        match outcome {
            Ok(v) => tracing::info!(version = v, source, trigger, "policy loaded"),
            Err(e) if skipped => tracing::warn!(source, trigger, "{e}"),
            Err(e) => {
                tracing::warn!(
                    source,
                    trigger,
                    "policy rejected, the running one stays: {e}"
                )
            }
        }
    }

    fn compile(
        &self,
        text: &str,
        origin_name: &str,
        version: u64,
    ) -> Result<PolicySnapshot, String> {
        crate::inventory::compile_live(
            text,
            origin_name,
            self.inventory.as_deref(),
            self.runtime.as_deref(),
            version,
        )
    }

    /// The inventory the daemon judges by now (the file's or the policy's, with the
    /// runtime's workloads).
    pub fn inventory_now(&self) -> control::WorkloadInventory {
        let (cur, text) = self.running_text();
        let origin = cur.map(|c| c.path).unwrap_or_default();
        let base = crate::inventory::base_inventory(&text, &origin, self.inventory.as_deref())
            .map(|(_, b)| b)
            .unwrap_or_else(|_| control::WorkloadInventory::empty());
        match &self.runtime {
            Some(rt) => rt.merge_into(base).0,
            None => base,
        }
    }

    /// The runtime's workloads changed: the running version and the shadow candidate are
    /// compiled again from their kept texts against the new inventory, under the same
    /// version numbers, and swapped in. Open flows whose addresses changed owner are
    /// re-judged at their next packet (`verdict::flow::owners_changed`).
    pub fn inventory_changed(&self) {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let lc = self.lifecycle();
        if let Some(cur) = lc.current() {
            match self.compile(&cur.text, &cur.path, cur.version) {
                Ok(snap) => {
                    let old = self.policy.swap(Arc::new(snap));
                    if let Ok(mut p) = self.previous.lock() {
                        *p = Some(old);
                    }
                    self.inventory_swaps.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        version = cur.version,
                        epoch = self.runtime.as_ref().map_or(0, |r| r.epoch()),
                        "inventory changed: policy recompiled"
                    );
                }
                Err(e) => {
                    // Cannot happen with a policy that compiled before (the runtime's
                    // workloads are built valid); the running snapshot stays.
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("inventory changed, the policy failed to recompile: {e}");
                }
            }
        }
        if let Some(cand) = lc.shadow()
            && let Ok(snap) = self.compile(&cand.text, &cand.path, cand.version)
        {
            self.shadow.store(Some(Arc::new(snap)));
        }
    }

    /// Compiles `text` as the next version and puts it in force. The caller holds
    /// `load_lock`.
    fn install(
        &self,
        lc: &mut Lifecycle,
        text: Arc<str>,
        path: &str,
        trigger: &str,
        origin: Origin,
        text_of: Option<u64>,
    ) -> LoadResult {
        let version = self.next_version.load(Ordering::Relaxed);
        let mut buf = Vec::new();
        let outcome = match self.compile(&text, path, version) {
            Ok(snap) => {
                self.next_version.store(version + 1, Ordering::Relaxed);
                let new = Arc::new(snap);
                let old = self.policy.swap(Arc::clone(&new));
                if let Ok(mut p) = self.previous.lock() {
                    *p = Some(old);
                }
                lc.push(VersionRecord {
                    version,
                    name: new.name().to_string(),
                    rules: new.rule_count(),
                    origin,
                    path: path.to_string(),
                    trigger: trigger.to_string(),
                    at: now_string(),
                    text_of,
                    text,
                });
                policy_record(&mut buf, "loaded", &new, path, None, None);
                Ok(version)
            }
            Err(msg) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                policy_record(
                    &mut buf,
                    "rejected",
                    &self.policy.load(),
                    path,
                    Some(&msg),
                    None,
                );
                Err(msg)
            }
        };
        self.emit(&mut buf);
        self.note_load(path, trigger, &outcome, false);
        outcome
    }

    fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the version loaded at start.
    pub(super) fn started_with(&self, text: String, snap: &PolicySnapshot) {
        let mut lc = self.lifecycle();
        let path = lc.startup().display().to_string();
        lc.push(VersionRecord {
            version: snap.version(),
            name: snap.name().to_string(),
            rules: snap.rule_count(),
            origin: Origin::File,
            path: path.clone(),
            trigger: "start".into(),
            at: now_string(),
            text_of: None,
            text: text.into(),
        });
        self.note_load(&path, "start", &Ok(snap.version()), false);
    }

    /// SIGHUP or the file watch: reloads the startup file, unless the running version was
    /// applied from elsewhere (then it stays, and the skip is recorded).
    pub fn reload_startup(&self, trigger: &str) -> LoadResult {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut lc = self.lifecycle();
        let path = lc.startup().display().to_string();
        if let Some(cur) = lc.current().filter(|c| c.origin != Origin::File) {
            let msg = format!(
                "{path} not reloaded: the running version {} was applied by {} ({}); \
                 `palisadectl policy apply {path}` follows the file again",
                cur.version,
                cur.origin.as_str(),
                cur.path
            );
            let mut buf = Vec::new();
            policy_record(
                &mut buf,
                "skipped",
                &self.policy.load(),
                &path,
                Some(&msg),
                None,
            );
            self.emit(&mut buf);
            let outcome = Err(msg);
            self.note_load(&path, trigger, &outcome, true);
            return outcome;
        }
        let text = match read_text(lc.startup()) {
            Ok(t) => t,
            Err(e) => return self.refuse(&path, trigger, e),
        };
        self.install(&mut lc, text.into(), &path, trigger, Origin::File, None)
    }

    /// A load that failed before compiling (the file cannot be read).
    fn refuse(&self, path: &str, trigger: &str, msg: String) -> LoadResult {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut buf = Vec::new();
        policy_record(
            &mut buf,
            "rejected",
            &self.policy.load(),
            path,
            Some(&msg),
            None,
        );
        self.emit(&mut buf);
        let outcome = Err(msg);
        self.note_load(path, trigger, &outcome, false);
        outcome
    }

    /// `palisadectl policy apply FILE`: the file becomes the running policy (the startup
    /// file itself makes the policy follow the file again).
    pub fn apply(&self, path: &Path) -> LoadResult {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut lc = self.lifecycle();
        let name = path.display().to_string();
        let origin = if lc.is_startup(path) {
            Origin::File
        } else {
            Origin::ControlSocket
        };
        let text = match read_text(path) {
            Ok(t) => t,
            Err(e) => return self.refuse(&name, "control-socket", e),
        };
        self.install(&mut lc, text.into(), &name, "control-socket", origin, None)
    }

    /// `palisadectl policy rollback`: the version before the running one is in force
    /// again (as a new version, compiled from its kept text against today's inventory).
    /// The running one leaves the history, so a second rollback goes one further back.
    pub fn rollback(&self) -> LoadResult {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut lc = self.lifecycle();
        let n = lc.history.len();
        let Some(prev) = n.checked_sub(2).and_then(|i| lc.history.get(i)).cloned() else {
            return Err(
                "nothing to roll back to: the running version is the oldest one kept".into(),
            );
        };
        let outcome = self.install(
            &mut lc,
            Arc::clone(&prev.text),
            &prev.path,
            "rollback",
            Origin::Rollback,
            Some(prev.version),
        );
        if outcome.is_ok() {
            // [.., prev, undone, new] -> [.., new]
            let new = lc.history.pop_back();
            lc.history.pop_back();
            lc.history.pop_back();
            if let Some(new) = new {
                lc.history.push_back(new);
            }
        }
        outcome
    }

    /// `--shadow` / `palisadectl shadow apply FILE`: `path` becomes the candidate, judged
    /// beside the active policy from the next batch of packets; it never enforces.
    pub fn shadow_apply(&self, path: &Path, trigger: &str) -> LoadResult {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let name = path.display().to_string();
        let text = match read_text(path) {
            Ok(t) => t,
            Err(e) => return self.refuse_shadow(&name, trigger, e),
        };
        let version = self.next_version.load(Ordering::Relaxed);
        match self.compile(&text, &name, version) {
            Ok(snap) => {
                self.next_version.store(version + 1, Ordering::Relaxed);
                let mut buf = Vec::new();
                policy_record(&mut buf, "loaded", &snap, &name, None, Some("shadow"));
                self.emit(&mut buf);
                let record = VersionRecord {
                    version,
                    name: snap.name().to_string(),
                    rules: snap.rule_count(),
                    origin: Origin::ControlSocket,
                    path: name.clone(),
                    trigger: trigger.to_string(),
                    at: now_string(),
                    text_of: None,
                    text: text.into(),
                };
                self.shadow.store(Some(Arc::new(snap)));
                self.lifecycle().shadow = Some(record);
                self.note_load(&name, &format!("shadow {trigger}"), &Ok(version), false);
                Ok(version)
            }
            Err(e) => self.refuse_shadow(&name, trigger, e),
        }
    }

    fn refuse_shadow(&self, path: &str, trigger: &str, msg: String) -> LoadResult {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut buf = Vec::new();
        match self.shadow.load_full() {
            Some(cur) => {
                policy_record(&mut buf, "rejected", &cur, path, Some(&msg), Some("shadow"))
            }
            None => {
                // No candidate stays in force: the record names none.
                let mut e = Event::new(Timestamp::now(), "policy");
                e.policy = Some(PolicyObj {
                    status: "rejected",
                    version: None,
                    name: None,
                    source: path,
                    rules: None,
                    error: Some(&msg),
                    role: Some("shadow"),
                });
                e.write_line(&mut buf);
            }
        }
        self.emit(&mut buf);
        let outcome = Err(msg);
        self.note_load(path, &format!("shadow {trigger}"), &outcome, false);
        outcome
    }

    /// `palisadectl shadow clear`: no candidate from the next batch on. Returns the
    /// version that was the candidate.
    pub fn shadow_clear(&self) -> Option<u64> {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.shadow.store(None);
        self.lifecycle().shadow.take().map(|r| r.version)
    }

    /// `palisadectl shadow promote`: the candidate becomes the active policy in one swap
    /// (a new version, compiled from the candidate's text), and there is no candidate any
    /// more.
    pub fn shadow_promote(&self) -> LoadResult {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut lc = self.lifecycle();
        let Some(cand) = lc.shadow.clone() else {
            return Err(
                "no shadow policy to promote: `palisadectl shadow apply FILE` first".into(),
            );
        };
        let outcome = self.install(
            &mut lc,
            Arc::clone(&cand.text),
            &cand.path,
            "shadow-promote",
            Origin::ShadowPromote,
            Some(cand.version),
        );
        if outcome.is_ok() {
            self.shadow.store(None);
            lc.shadow = None;
        }
        outcome
    }

    /// What `status` says about the running version and the candidate.
    pub fn lifecycle_summary(&self) -> (Option<VersionRecord>, Option<VersionRecord>, String) {
        let lc = self.lifecycle();
        (
            lc.current().cloned(),
            lc.shadow().cloned(),
            lc.startup().display().to_string(),
        )
    }

    /// The running version's text and record (`policy show`).
    pub fn running_text(&self) -> (Option<VersionRecord>, String) {
        let lc = self.lifecycle();
        let cur = lc.current().cloned();
        let text = cur.as_ref().map(|c| c.text.to_string()).unwrap_or_default();
        (cur, text)
    }

    /// Versions kept, newest first (`policy show --history`).
    pub fn version_history(&self) -> Vec<VersionRecord> {
        self.lifecycle().history().cloned().collect()
    }

    /// The candidate's text and record (`shadow show`).
    pub fn shadow_text(&self) -> Option<(VersionRecord, String)> {
        let lc = self.lifecycle();
        lc.shadow().map(|s| (s.clone(), s.text.to_string()))
    }
}
