//! The containerd watcher behind `--inventory containerd[:SOCKET]`.
//!
//! Why containerd's own API and not the CRI runtime service: the CRI only knows pods the
//! kubelet created, while containerd's API lists every container of every namespace
//! (`k8s.io` for the kubelet's pods, `default` for nerdctl and ctr, `moby` for Docker);
//! a CRI pod sandbox is a container there too, with the pod's labels and
//! `io.kubernetes.pod.{name,namespace}`. containerd's event stream tells when a task
//! starts or exits (the CRI of containerd 1.6 has no event stream), and containerd 1.6 to
//! 2.x serve the same v1 API.
//!
//! The watcher runs on its own thread with a one-thread tokio runtime. It subscribes to
//! task and container events first and then reads the whole state (namespaces, containers,
//! tasks, then each running task's addresses from `/proc/PID/net`), so no change falls
//! between the read and the subscription. Every event (a burst is taken as one) and a
//! resync every [`RESYNC`] reads the state again; a changed list is published and the
//! policy recompiled against it (`on_change`). A lost connection keeps the last list in
//! force and reconnects with backoff.

pub mod api;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api::{ApiError, CALL_TIMEOUT, Client, task_status};

use super::netns;
use super::{Findings, Observed, RuntimeInventory, SharedNetns, workloads_of};

/// A full read even without events (catches an address a CNI plugin adds after the task
/// started, and events lost while reconnecting).
pub const RESYNC: Duration = Duration::from_secs(2);
/// Events closer than this are read as one change.
const DEBOUNCE: Duration = Duration::from_millis(15);
/// Most containerd namespaces read.
const MAX_NAMESPACES: usize = 1024;
/// Most image digests remembered between syncs.
const MAX_DIGESTS: usize = 4096;

/// What the watcher needs besides the socket.
pub struct Watch {
    pub inventory: Arc<RuntimeInventory>,
    /// `/proc` of the host's PID namespace.
    pub proc_root: PathBuf,
    /// Called after a sync changed the workload list.
    pub on_change: Box<dyn Fn() + Send + Sync>,
    /// Whether the daemon is stopping.
    pub stopped: Box<dyn Fn() -> bool + Send + Sync>,
}

/// State kept between syncs.
#[derive(Default)]
struct Cache {
    digests: HashMap<(String, String), Option<String>>,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The first read, before the daemon starts judging: fails when containerd cannot be
/// reached, so a daemon never starts with an empty runtime inventory it believes.
pub fn initial_sync(inv: &RuntimeInventory, proc_root: &Path) -> Result<(), String> {
    let rt = runtime().map_err(|e| format!("containerd watcher: {e}"))?;
    let sock = inv.socket.display().to_string();
    rt.block_on(async {
        let mut client = tokio::time::timeout(CALL_TIMEOUT, Client::connect(&inv.socket))
            .await
            .map_err(|_| format!("containerd at {sock}: no answer in {CALL_TIMEOUT:?}"))?
            .map_err(|e| format!("containerd at {sock}: {}", chain(&*e)))?;
        sync(&mut client, inv, proc_root, &mut Cache::default())
            .await
            .map_err(|e| format!("containerd at {sock}: {}", chain(&*e)))?;
        inv.connected.store(true, Ordering::Relaxed);
        Ok(())
    })
}

/// Starts the watcher thread.
pub fn spawn(w: Watch) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("containerd-watch".into())
        .spawn(move || match runtime() {
            Ok(rt) => rt.block_on(watch(w)),
            Err(e) => tracing::error!("containerd watcher: {e}"),
        })
}

/// containerd's "no such thing" answer.
fn is_not_found(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<tonic::Status>()
        .is_some_and(|s| s.code() == tonic::Code::NotFound)
}

/// An error and its sources, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

async fn watch(w: Watch) {
    let mut backoff = Duration::from_millis(100);
    let mut cache = Cache::default();
    while !(w.stopped)() {
        match session(&w, &mut cache).await {
            Ok(()) => return,
            Err(e) => {
                let msg = chain(&*e);
                tracing::debug!("containerd at {}: {msg}", w.inventory.socket.display());
                if w.inventory.connected.load(Ordering::Relaxed) {
                    tracing::warn!(
                        "containerd at {}: {msg}; the last known workloads stay in force, reconnecting",
                        w.inventory.socket.display()
                    );
                }
                w.inventory.set_error(msg);
            }
        }
        // Sleep in short steps so a shutdown is seen.
        let mut slept = Duration::ZERO;
        while slept < backoff && !(w.stopped)() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            slept += Duration::from_millis(50);
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Ends the subscription task with the session.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection: subscribe, read, then read again on every event and resync. Returns
/// `Ok` only at shutdown.
///
/// The subscription runs as a task of its own: containerd answers `Subscribe` (sends
/// its response headers) only with the first event, so waiting for it before reading
/// would wait for the next container to start. A change between the subscription and
/// the first read is caught by the read itself or, at the latest, by the resync.
async fn session(w: &Watch, cache: &mut Cache) -> Result<(), ApiError> {
    let inv = &w.inventory;
    let mut client = tokio::time::timeout(CALL_TIMEOUT, Client::connect(&inv.socket))
        .await
        .map_err(|_| "connect: timed out")??;
    // Ok(()) per event; an Err ends the session.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(), String>>(16);
    let mut sub_client = client.clone();
    let _sub = AbortOnDrop(tokio::spawn(async move {
        let r: Result<(), ApiError> = async {
            let mut events = sub_client.subscribe().await?;
            while events.message().await?.is_some() {
                // A full channel already holds a pending change: nothing is lost.
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(Ok(()))
                {
                    return Ok(());
                }
            }
            Err("the event stream ended".into())
        }
        .await;
        if let Err(e) = r {
            let _ = tx.send(Err(format!("events: {}", chain(&*e)))).await;
        }
    }));
    if sync(&mut client, inv, &w.proc_root, cache).await? {
        (w.on_change)();
    }
    if !inv.connected.swap(true, Ordering::Relaxed) {
        tracing::info!("containerd at {}: watching", inv.socket.display());
    }
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            ev = rx.recv() => {
                match ev {
                    Some(Ok(())) => inv.counters.events.fetch_add(1, Ordering::Relaxed),
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err("the event task ended".into()),
                };
                // A burst (create, start, exit, delete) is one change.
                tokio::time::sleep(DEBOUNCE).await;
                while let Ok(next) = rx.try_recv() {
                    match next {
                        Ok(()) => inv.counters.events.fetch_add(1, Ordering::Relaxed),
                        Err(e) => return Err(e.into()),
                    };
                }
            }
            _ = resync.tick() => {}
            _ = stop.tick() => {
                if (w.stopped)() {
                    return Ok(());
                }
                continue;
            }
        }
        if sync(&mut client, inv, &w.proc_root, cache).await? {
            (w.on_change)();
        }
    }
}

/// Reads every namespace's running containers and publishes the workloads. Returns
/// whether the list changed.
async fn sync(
    client: &mut Client,
    inv: &RuntimeInventory,
    proc_root: &Path,
    cache: &mut Cache,
) -> Result<bool, ApiError> {
    /// One call, bounded by [`CALL_TIMEOUT`]; the error names the call and says whether
    /// it is containerd's "not found".
    async fn timed_nf<T>(
        what: &str,
        f: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, (bool, ApiError)> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err((is_not_found(&*e), format!("{what}: {}", chain(&*e)).into())),
            Err(_) => Err((
                false,
                format!("{what}: no answer in {CALL_TIMEOUT:?}").into(),
            )),
        }
    }
    async fn timed<T>(
        what: &str,
        f: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        timed_nf(what, f).await.map_err(|(_, e)| e)
    }
    let mut namespaces = timed("list namespaces", client.namespaces()).await?;
    namespaces.truncate(MAX_NAMESPACES);
    let mut seen = Vec::new();
    let mut found = Findings::default();
    let mut containers_total = 0;
    let mut used_images = std::collections::HashSet::new();
    for ns in &namespaces {
        // A namespace removed since it was listed has nothing running.
        let (containers, tasks) = match (
            timed_nf("list containers", client.containers(ns)).await,
            timed_nf("list tasks", client.tasks(ns)).await,
        ) {
            (Ok(c), Ok(t)) => (c, t),
            (Err(e), _) | (_, Err(e)) if e.0 => continue,
            (Err(e), _) | (_, Err(e)) => return Err(e.1),
        };
        containers_total += containers.len();
        let running: BTreeMap<&str, u32> = tasks
            .iter()
            .filter(|t| {
                t.pid > 0
                    && matches!(
                        t.status,
                        task_status::RUNNING | task_status::PAUSED | task_status::PAUSING
                    )
            })
            // containerd's Tasks.List fills `id` (the container's id for its init
            // process) and leaves `container_id` empty.
            .map(|t| {
                let id = if t.container_id.is_empty() {
                    t.id.as_str()
                } else {
                    t.container_id.as_str()
                };
                (id, t.pid)
            })
            .collect();
        for c in containers {
            let Some(&pid) = running.get(c.id.as_str()) else {
                continue;
            };
            // The namespace's identity needs ptrace-read access to the task (not granted
            // for a task of another uid without CAP_SYS_PTRACE); its addresses do not.
            let netns = netns::netns_of(proc_root, &pid.to_string()).ok();
            let addrs = match netns::addresses(proc_root, pid) {
                Ok(a) => a,
                Err(e) => {
                    // The task ended between the listing and the read (the next event
                    // says so), or /proc is not the host's: no address for it.
                    found.unreadable += 1;
                    tracing::debug!(container = c.id, "addresses unreadable: {e}");
                    Vec::new()
                }
            };
            let key = (ns.clone(), c.image.clone());
            used_images.insert(key.clone());
            let image = if c.image.is_empty() || c.image.contains('@') {
                c.image.clone()
            } else {
                let digest = match cache.digests.get(&key) {
                    Some(d) => d.clone(),
                    None => {
                        let d = timed("get image", client.image_digest(ns, &c.image)).await?;
                        if cache.digests.len() >= MAX_DIGESTS {
                            cache.digests.clear();
                        }
                        cache.digests.insert(key, d.clone());
                        d
                    }
                };
                match digest {
                    Some(d) => format!("{}@{d}", c.image),
                    None => c.image.clone(),
                }
            };
            seen.push(Observed {
                namespace: ns.clone(),
                id: c.id,
                labels: c.labels.into_iter().collect(),
                image,
                created: c.created_at.map_or((0, 0), |t| (t.seconds, t.nanos)),
                netns,
                addrs,
            });
        }
    }
    // An image re-tagged to another digest is read again once nothing runs it.
    cache.digests.retain(|k, _| used_images.contains(k));
    let shared = shared_netns(proc_root);
    let workloads = workloads_of(seen, &shared, &mut found);
    Ok(inv.publish(workloads, namespaces.len(), containers_total, found))
}

/// The network namespaces that are not a container's own, the host's (PID 1's) and
/// palisade's: their identities, and their addresses (a container showing any of those
/// is in one of them even when its namespace's identity cannot be read).
fn shared_netns(proc_root: &Path) -> SharedNetns {
    let mut s = SharedNetns::default();
    for p in ["1", "self"] {
        if let Ok(id) = netns::netns_of(proc_root, p) {
            s.ids.push(id);
        }
        let pid = if p == "1" { 1 } else { std::process::id() };
        if let Ok(a) = netns::addresses(proc_root, pid) {
            s.addrs.extend(a);
        }
    }
    s
}
