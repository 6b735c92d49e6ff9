//! The control side of `palisade run`, on one thread with a single-threaded tokio runtime
//! (never on the packet path): signals, the policy file watch, the control socket that
//! `palisadectl` talks to, and the Prometheus metrics endpoint.
//!
//! Control protocol: JSON lines over a Unix socket (mode 0600). Each request is one line,
//! `{"cmd": "status" | "policy_show" | "policy_apply" | "policy_rollback" | "shadow_apply" |
//! "shadow_show" | "shadow_promote" | "shadow_clear" | "learn_export" | "quarantine_list" |
//! "quarantine_release" | "flows" | "captures" | "events"}` (`workload` for
//! `quarantine_release`)
//! with `path` for `policy_apply` and `shadow_apply`, `history` for `policy_show` and `max`
//! for `flows`; each answer is one line
//! `{"ok": true, ...}` or `{"ok": false, "error": "..."}`. `events` answers with the event
//! lines themselves, as they are written, until the client hangs up.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener, UnixStream};

use super::metrics::serve_metrics;
use crate::pipeline::live::{RunOptions, Shared};

pub struct ControlHandle {
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl ControlHandle {
    /// Asks the control thread to stop and waits for it.
    pub fn stop(mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Longest control request line; longer ones are refused.
const MAX_REQUEST: usize = 64 * 1024;
/// Most control connections served at once.
const MAX_CLIENTS: usize = 64;

pub fn start(shared: Arc<Shared>, opts: &RunOptions) -> io::Result<ControlHandle> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Bind before returning, so a bad socket path or address fails the command.
    let control = match &opts.control {
        Some(p) => Some((bind_control(&rt, p)?, p.clone())),
        None => None,
    };
    let metrics = match opts.metrics {
        Some(a) => Some(
            rt.block_on(TcpListener::bind(a))
                .map_err(|e| io::Error::new(e.kind(), format!("--metrics {a}: {e}")))?,
        ),
        None => None,
    };
    let watch_paths: Vec<PathBuf> = if opts.watch {
        std::iter::once(opts.policy.clone())
            .chain(opts.inventory.clone())
            .collect()
    } else {
        Vec::new()
    };
    let sh = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("palisade-control".into())
        .spawn(move || {
            rt.block_on(async move {
                let clients = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
                let mut tasks = tokio::task::JoinSet::new();
                let mut socket_path = None;
                if let Some((listener, path)) = control {
                    socket_path = Some(path);
                    tasks.spawn(serve_control(
                        listener,
                        Arc::clone(&sh),
                        Arc::clone(&clients),
                    ));
                }
                if let Some(listener) = metrics {
                    let sh = Arc::clone(&sh);
                    let clients = Arc::clone(&clients);
                    tasks.spawn(serve_metrics(listener, sh, clients));
                }
                tasks.spawn(signals(Arc::clone(&sh)));
                if !watch_paths.is_empty() {
                    tasks.spawn(watch(Arc::clone(&sh), watch_paths));
                }
                while !sh.shutdown.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    save_quarantine(&sh);
                }
                save_quarantine(&sh);
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                if let Some(p) = socket_path {
                    let _ = std::fs::remove_file(p);
                }
            });
        })?;
    Ok(ControlHandle {
        thread: Some(thread),
        shared,
    })
}

/// Writes the quarantine's state file when it changed (a packet thread never writes it).
fn save_quarantine(shared: &Shared) {
    if let Err(e) = shared.quarantine.save_if_dirty() {
        tracing::error!("cannot keep the quarantine across restarts: {e}");
    }
}

fn bind_control(rt: &tokio::runtime::Runtime, path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    // A socket file left by a daemon that died is replaced; a live one is not stolen.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another palisade is listening there", path.display()),
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let _enter = rt.enter();
    let l = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("--control {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

async fn signals(shared: Arc<Shared>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // Log rotation: the events file is reopened with the next events.
                shared.reopen_events.store(true, Ordering::SeqCst);
                let sh = Arc::clone(&shared);
                let _ = tokio::task::spawn_blocking(move || sh.reload_startup("sighup")).await;
            }
            _ = term.recv() => { shared.shutdown.store(true, Ordering::SeqCst); }
            _ = int.recv() => { shared.shutdown.store(true, Ordering::SeqCst); }
        }
    }
}

/// Watches the policy's (and inventory's) directory, not the file: editors replace files
/// by rename and Kubernetes ConfigMaps swap a symlink, and both lose a watch on the file.
/// Changes are debounced and a reload happens only when the contents differ.
async fn watch(shared: Arc<Shared>, files: Vec<PathBuf>) {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.try_send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("policy file watch unavailable: {e}");
            return;
        }
    };
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|f| match f.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
            tracing::error!("cannot watch {}: {e}", d.display());
        }
    }
    let mut last = fingerprint(&files);
    while rx.recv().await.is_some() {
        // Let a burst of writes settle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rx.try_recv().is_ok() {}
        let now = fingerprint(&files);
        if now == last {
            continue;
        }
        last = now;
        let sh = Arc::clone(&shared);
        let _ = tokio::task::spawn_blocking(move || sh.reload_startup("file-watch")).await;
    }
    drop(watcher);
}

/// The files' contents, hashed (None for a file that cannot be read right now).
fn fingerprint(files: &[PathBuf]) -> Vec<Option<u64>> {
    use std::hash::{BuildHasher, Hasher};
    let state = foldhash::fast::FixedState::default();
    files
        .iter()
        .map(|f| {
            std::fs::read(f).ok().map(|b| {
                let mut h = state.build_hasher();
                h.write(&b);
                h.finish()
            })
        })
        .collect()
}

async fn serve_control(
    listener: UnixListener,
    shared: Arc<Shared>,
    clients: Arc<tokio::sync::Semaphore>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&clients).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let sh = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = handle_client(stream, sh).await;
            drop(permit);
        });
    }
}

async fn handle_client(stream: UnixStream, shared: Arc<Shared>) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r.take(u64::MAX));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut r)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST {
            let msg =
                json!({"ok": false, "error": format!("request longer than {MAX_REQUEST} bytes")});
            w.write_all(format!("{msg}\n").as_bytes()).await?;
            return Ok(());
        }
        let req: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => {
                let msg = json!({"ok": false, "error": format!("not a JSON request: {e}")});
                w.write_all(format!("{msg}\n").as_bytes()).await?;
                continue;
            }
        };
        if req.get("cmd").and_then(Value::as_str) == Some("events") {
            return follow_events(&shared, &mut w).await;
        }
        let sh = Arc::clone(&shared);
        let answer = tokio::task::spawn_blocking(move || answer(&sh, &req))
            .await
            .unwrap_or_else(|_| json!({"ok": false, "error": "internal error"}));
        w.write_all(format!("{answer}\n").as_bytes()).await?;
    }
}

async fn follow_events(
    shared: &Shared,
    w: &mut tokio::net::unix::OwnedWriteHalf,
) -> io::Result<()> {
    let rx = shared.tap.follow();
    w.write_all(b"{\"ok\":true,\"following\":true}\n").await?;
    loop {
        if shared.shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The follower's channel is crossbeam's (the writer thread is not async): poll it.
        match rx.try_recv() {
            Ok(buf) => w.write_all(&buf).await?,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => return Ok(()),
        }
    }
}

/// Most capture files `captures` lists (newest first).
const CAPTURES_LISTED: usize = 10_000;

/// The capture files of `--capture-dir`, newest first (the index the workers keep, with the
/// files found there at start): each file's size and the alert it belongs to (from its
/// sidecar: flow, rules, signature, time, addresses and workloads), the directory's bounds
/// and usage, and the capture counters.
fn captures(shared: &Shared, req: &Value) -> Value {
    let Some(store) = &shared.capture_store else {
        return json!({
            "ok": false,
            "error": "flow capture is off: start palisade run with --capture-dir DIR"
        });
    };
    let max = req
        .get("max")
        .and_then(Value::as_u64)
        .map_or(CAPTURES_LISTED, |m| (m as usize).min(CAPTURES_LISTED));
    let (entries, total) = store.list(max);
    let dir = store.dir();
    let files: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({
                "file": e.name,
                "path": dir.join(&e.name).display().to_string(),
                "bytes": e.bytes(),
                "open": e.is_open(),
                "found_at_start": e.found,
                "created": e.created,
                "flow_id": e.flow_id,
                "capture_rule": e.rule,
            });
            if let (Some(Value::Object(side)), Value::Object(out)) = (e.sidecar(), &mut v) {
                for (k, x) in side {
                    if !matches!(k.as_str(), "file" | "capture_rule" | "capture_file") {
                        out.insert(k.clone(), x.clone());
                    }
                }
            }
            v
        })
        .collect();
    let (indexed, bytes) = store.usage();
    let b = store.bounds();
    let (s, _) = shared.totals();
    json!({
        "ok": true,
        "dir": dir.display().to_string(),
        "total": total,
        "usage": {"files": indexed, "bytes": bytes, "forgotten": store.forgotten()},
        "bounds": {"max_files": b.max_files, "max_bytes": b.max_bytes},
        "captures": files,
        "counters": s.capture,
    })
}

fn answer(shared: &Shared, req: &Value) -> Value {
    let cmd = req.get("cmd").and_then(Value::as_str).unwrap_or("");
    match cmd {
        "status" => status(shared),
        "policy_show" => policy_show(shared, req),
        "policy_apply" => {
            let Some(path) = req.get("path").and_then(Value::as_str) else {
                return json!({"ok": false, "error": "policy_apply needs \"path\""});
            };
            loaded(shared, shared.apply(Path::new(path)))
        }
        "policy_rollback" => loaded(shared, shared.rollback()),
        "shadow_apply" => {
            let Some(path) = req.get("path").and_then(Value::as_str) else {
                return json!({"ok": false, "error": "shadow_apply needs \"path\""});
            };
            match shared.shadow_apply(Path::new(path), "control-socket") {
                Ok(v) => json!({"ok": true, "shadow_version": v}),
                Err(e) => json!({"ok": false, "error": e}),
            }
        }
        "shadow_show" => shadow_show(shared),
        "learn_export" => learn_export(shared),
        "quarantine_list" => json!({
            "ok": true,
            "quarantined": shared.quarantine.current().entries,
            "refused_at_cap": shared.quarantine.refused.load(Ordering::Relaxed),
        }),
        "quarantine_release" => {
            let Some(w) = req.get("workload").and_then(Value::as_str) else {
                return json!({"ok": false, "error": "quarantine_release needs \"workload\""});
            };
            let gone = shared.quarantine.release(w);
            save_quarantine(shared);
            if gone.is_empty() {
                json!({"ok": false, "error": format!("{w} is not quarantined (palisadectl quarantine list)")})
            } else {
                tracing::info!("released from quarantine: {w}");
                json!({"ok": true, "released": gone})
            }
        }
        "shadow_promote" => loaded(shared, shared.shadow_promote()),
        "shadow_clear" => match shared.shadow_clear() {
            Some(v) => json!({"ok": true, "cleared": v}),
            None => json!({"ok": false, "error": "no shadow policy is loaded"}),
        },
        "flows" => {
            let max = req
                .get("max")
                .and_then(Value::as_u64)
                .unwrap_or(100)
                .min(10_000) as usize;
            json!({"ok": true, "flows": shared.flows(max)})
        }
        "captures" => captures(shared, req),
        other => json!({
            "ok": false,
            "error": format!("unknown command {other:?}; known: status, policy_show, policy_apply, policy_rollback, shadow_apply, shadow_show, shadow_promote, shadow_clear, learn_export, quarantine_list, quarantine_release, flows, captures, events")
        }),
    }
}

/// The answer to a load: the version now in force, or why the running one stays.
fn loaded(shared: &Shared, r: Result<u64, String>) -> Value {
    match r {
        Ok(v) => json!({"ok": true, "version": v}),
        Err(e) => json!({"ok": false, "error": e, "version": shared.policy.load().version()}),
    }
}

/// `policy show`: the running version, its origin and text; with `history`, the versions
/// kept for rollback, newest first.
fn policy_show(shared: &Shared, req: &Value) -> Value {
    let snap = shared.policy.load();
    let (cur, text) = shared.running_text();
    let mut v = json!({
        "ok": true,
        "version": snap.version(),
        "name": snap.name(),
        "rules": snap.rule_count(),
        "source": cur.as_ref().map(|c| c.path.clone()),
        "origin": cur.as_ref().map(|c| c.origin.as_str()),
        "text": text,
    });
    if req.get("history").and_then(Value::as_bool) == Some(true) {
        v["history"] = json!(shared.version_history());
    }
    v
}

/// `shadow show`: the candidate and its disagreements with the active policy, per rule
/// pair (the candidate's own counts: an earlier candidate's are not mixed in).
fn shadow_show(shared: &Shared) -> Value {
    let Some((record, text)) = shared.shadow_text() else {
        return json!({"ok": false, "error": "no shadow policy is loaded: `palisadectl shadow apply FILE`"});
    };
    let (s, _) = shared.totals();
    let counts = s.shadow.of_version(record.version);
    json!({
        "ok": true,
        "shadow": record,
        "active_version": shared.policy.load().version(),
        "counts": crate::summary::shadow_json(&counts),
        "text": text,
    })
}

/// `learn export`: the allow rules proposed from what groups in `learn` mode observed so
/// far, as `palisade learn` writes them (the client writes the file).
fn learn_export(shared: &Shared) -> Value {
    let Some(live) = shared.learner.get() else {
        return json!({"ok": false, "error": "the learner is not running"});
    };
    let records = live.records.load(Ordering::Relaxed);
    let Ok(learner) = live.learner.lock() else {
        return json!({"ok": false, "error": "internal error"});
    };
    let header = format!(
        "Proposed by `palisadectl learn export` from what groups in learn mode observed on \
         this node since {} ({records} records).\nEach rule allows what was observed; review \
         it, then set `mode: protect`.",
        shared.started_at
    );
    match learner.proposal(&header) {
        Ok(yaml) => json!({
            "ok": true,
            "records": records,
            "learning": shared.policy.load().uses_mode(control::Mode::Learn),
            "counts": {"rules": learner.rules(), "flows": learner.flows,
                       "transactions": learner.transactions, "held_for_review": learner.held(),
                       "skipped": learner.skipped},
            "policy": yaml,
        }),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

/// Where workloads come from: the file, and the runtime watcher's state.
fn inventory_status(shared: &Shared) -> Value {
    json!({
        "file": shared.inventory.as_ref().map(|p| p.display().to_string()),
        "runtime": shared.runtime.as_ref().map(|r| r.status()),
        "recompiles": shared.inventory_swaps.load(Ordering::Relaxed),
    })
}

fn status(shared: &Shared) -> Value {
    let (s, c) = shared.totals();
    let snap = shared.policy.load();
    let loads = shared.loads.lock().map(|l| l.clone()).unwrap_or_default();
    let (cur, cand, startup) = shared.lifecycle_summary();
    json!({
        "ok": true,
        "source": shared.source.describe(),
        "enforcing": shared.source.is_inline(),
        "policy": {"version": snap.version(), "name": snap.name(), "rules": snap.rule_count(),
                   "rejected": shared.rejected.load(Ordering::Relaxed),
                   "origin": cur.as_ref().map(|c| c.origin.as_str()),
                   "source": cur.as_ref().map(|c| c.path.clone()),
                   "trigger": cur.as_ref().map(|c| c.trigger.clone()),
                   "follows_file": cur.as_ref().is_some_and(|c| c.origin == crate::pipeline::live::lifecycle::Origin::File),
                   "startup_file": startup},
        "shadow": cand.map(|c| json!({"version": c.version, "name": c.name, "rules": c.rules,
                                       "source": c.path, "disagreements": s.shadow.of_version(c.version).pairs
                                           .iter().map(|(_, n)| n).sum::<u64>()})),
        "policy_loads": loads,
        "elapsed_seconds": shared.started.elapsed().as_secs_f64(),
        "packets": s.packets, "bytes": s.bytes,
        "packet_verdicts": {"accept": s.accepted, "drop": s.dropped, "reset": s.reset,
                            "would_drop": s.would_drop, "self": s.self_packets},
        "alerts": s.alerts,
        "transactions": s.transactions, "events": s.events,
        "flows": {"open": s.open_flows, "created": s.flows.created, "ended": s.flows_ended,
                  "evicted": s.flows.evicted, "timed_out": s.flows.timed_out},
        "anomalies": s.anomalies,
        "quarantine": {"workloads": shared.quarantine.current().entries.len(),
                       "quarantined": s.quarantined, "flows_refused": s.quarantine_refused,
                       "flows_reset": s.quarantine_reset,
                       "refused_at_cap": shared.quarantine.refused.load(Ordering::Relaxed)},
        "uninspectable": s.uninspectable,
        "inventory": inventory_status(shared),
        "flow_captures": s.capture,
        "source_counters": c,
        "events_follower_lag": shared.tap.lagged.load(Ordering::Relaxed),
        "events_dropped": shared.events_dropped.load(Ordering::Relaxed),
        "alert_sinks": shared.alert_sinks.as_ref().map_or(Value::Array(Vec::new()), |a| a.to_json()),
        "alert_rate_suppressed": shared.alert_sinks.as_ref().map_or(0, |a| a.rate_suppressed.load(Ordering::Relaxed)),
        "threads": shared.slots.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
    })
}
