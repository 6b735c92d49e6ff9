//! Where the daemon learns which workload owns each address: a `WorkloadInventory` file,
//! the node's container runtime (`--inventory containerd[:SOCKET]`), or both (the file for
//! peers outside the node).
//!
//! The runtime's view is a list of workloads kept here with an *epoch* that grows with
//! every change. A change recompiles the running policy (and the shadow candidate) from
//! their kept texts against the merged inventory, under the same policy version, and swaps
//! it in (`Shared::inventory_changed`); a worker re-judges an open flow whose endpoints
//! changed owner (`verdict::flow::owners_changed`), so an address a new container reuses is
//! never judged as its old owner.

pub mod containerd;
pub mod netns;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use control::model::{Labels, OrderedMap, Text, Workload, WorkloadInventory, spanned};
use serde::Serialize;

/// The default containerd socket (PRODUCT.md).
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// One `--inventory` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryArg {
    File(PathBuf),
    Containerd(PathBuf),
}

impl InventoryArg {
    /// `containerd`, `containerd:SOCKET`, or a file path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "containerd" {
            return Ok(InventoryArg::Containerd(CONTAINERD_SOCKET.into()));
        }
        if let Some(sock) = s.strip_prefix("containerd:") {
            if sock.is_empty() {
                return Err("`containerd:` needs a socket path, e.g. containerd:/run/containerd/containerd.sock".into());
            }
            return Ok(InventoryArg::Containerd(sock.into()));
        }
        if s.is_empty() {
            return Err("an empty inventory path".into());
        }
        Ok(InventoryArg::File(s.into()))
    }
}

/// Most workloads taken from the runtime (past it, containers are counted and left out:
/// their addresses stay unknown, which a default-deny policy refuses).
pub const MAX_RUNTIME_WORKLOADS: usize = 65_536;

/// The runtime's workloads and the watcher's state, shared with the control side.
pub struct RuntimeInventory {
    pub socket: PathBuf,
    state: Mutex<RuntimeState>,
    /// Grows with every change of the workload list.
    epoch: AtomicU64,
    pub connected: AtomicBool,
    pub counters: RuntimeCounters,
}

#[derive(Default)]
struct RuntimeState {
    workloads: Arc<Vec<Workload>>,
    /// The list as JSON: what a sync compares to tell whether anything changed.
    fingerprint: String,
    last_error: Option<String>,
    last_sync: Option<String>,
    namespaces: usize,
    containers: usize,
    findings: Findings,
}

#[derive(Default, Serialize)]
pub struct RuntimeCounters {
    /// Full reads of the runtime's containers and tasks.
    pub syncs: AtomicU64,
    /// Syncs that changed the workload list (each recompiles the running policy).
    pub updates: AtomicU64,
    /// Runtime events received (each leads to a sync).
    pub events: AtomicU64,
    /// Lost connections and failed calls (the watcher reconnects with backoff; the last
    /// known workloads stay in force meanwhile).
    pub errors: AtomicU64,
}

/// What the last read of the runtime found that cannot be told apart (each case is
/// given no identity: fail closed). Values of the inventory in force, not running totals.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Findings {
    /// Addresses claimed by two running containers: neither gets them.
    pub address_conflicts: u64,
    /// Of two running containers with the same workload name, the older left out.
    pub name_conflicts: u64,
    /// Containers in the host's (or palisade's own) network namespace: no address of
    /// their own, so none is attributed to them.
    pub host_network: u64,
    /// Running containers whose addresses could not be read (the process left between
    /// the listing and the read, or /proc is not the host's).
    pub unreadable: u64,
    /// Containers left out past [`MAX_RUNTIME_WORKLOADS`].
    pub over_limit: u64,
    /// Addresses both the inventory file and a container claim: neither gets them.
    pub file_address_conflicts: u64,
    /// File workloads replaced by a container's of the same name.
    pub file_name_conflicts: u64,
}

/// `status`' view of the runtime inventory.
#[derive(Serialize)]
pub struct RuntimeStatus<'a> {
    pub source: &'static str,
    pub socket: String,
    pub connected: bool,
    pub epoch: u64,
    pub workloads: usize,
    pub namespaces: usize,
    pub containers: usize,
    pub last_sync: Option<String>,
    pub last_error: Option<String>,
    pub counters: &'a RuntimeCounters,
    pub findings: Findings,
}

impl RuntimeInventory {
    pub fn new(socket: PathBuf) -> Self {
        RuntimeInventory {
            socket,
            state: Mutex::new(RuntimeState::default()),
            epoch: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            counters: RuntimeCounters::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RuntimeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The workloads in force and their epoch.
    pub fn current(&self) -> (Arc<Vec<Workload>>, u64) {
        let st = self.state();
        (
            Arc::clone(&st.workloads),
            self.epoch.load(Ordering::Acquire),
        )
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Installs a freshly read list; returns whether it differs from the one in force.
    pub(crate) fn publish(
        &self,
        workloads: Vec<Workload>,
        namespaces: usize,
        containers: usize,
        found: Findings,
    ) -> bool {
        let fingerprint = serde_json::to_string(&workloads).unwrap_or_default();
        let mut st = self.state();
        st.last_sync = Some(crate::pipeline::live::now_string());
        st.last_error = None;
        st.namespaces = namespaces;
        st.containers = containers;
        st.findings = Findings {
            file_address_conflicts: st.findings.file_address_conflicts,
            file_name_conflicts: st.findings.file_name_conflicts,
            ..found
        };
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        if st.fingerprint == fingerprint && self.epoch.load(Ordering::Relaxed) > 0 {
            return false;
        }
        st.fingerprint = fingerprint;
        st.workloads = Arc::new(workloads);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.counters.updates.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub(crate) fn set_error(&self, e: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Relaxed);
        self.state().last_error = Some(e);
    }

    pub fn status(&self) -> RuntimeStatus<'_> {
        let st = self.state();
        RuntimeStatus {
            source: "containerd",
            socket: self.socket.display().to_string(),
            connected: self.connected.load(Ordering::Relaxed),
            epoch: self.epoch(),
            workloads: st.workloads.len(),
            namespaces: st.namespaces,
            containers: st.containers,
            last_sync: st.last_sync.clone(),
            last_error: st.last_error.clone(),
            counters: &self.counters,
            findings: st.findings,
        }
    }

    /// `base` (the file's workloads, or the policy file's own) with the runtime's added.
    /// A workload name both hold is the runtime's (the file's entry is dropped); an
    /// address both claim is taken from both (`Findings::file_*`).
    /// Returns the merged inventory and the runtime epoch it holds.
    pub fn merge_into(&self, mut base: WorkloadInventory) -> (WorkloadInventory, u64) {
        let (runtime, epoch) = self.current();
        if runtime.is_empty() {
            return (base, epoch);
        }
        let names: std::collections::HashSet<(&str, &str)> = runtime
            .iter()
            .map(|w| (w.namespace(), w.name.value.as_str()))
            .collect();
        let before = base.workloads.len();
        base.workloads
            .retain(|w| !names.contains(&(w.namespace(), w.name.value.as_str())));
        let dropped = before - base.workloads.len();
        let file_addrs: std::collections::HashSet<String> = base
            .workloads
            .iter()
            .flat_map(|w| w.ips.iter().map(|s| canonical(&s.value)))
            .collect();
        let run_addrs: std::collections::HashSet<String> = runtime
            .iter()
            .flat_map(|w| w.ips.iter().map(|s| canonical(&s.value)))
            .collect();
        let both: std::collections::HashSet<&String> =
            file_addrs.intersection(&run_addrs).collect();
        {
            let mut st = self.state();
            st.findings.file_name_conflicts = dropped as u64;
            st.findings.file_address_conflicts = both.len() as u64;
        }
        if !both.is_empty() {
            tracing::warn!(
                "{} address(es) claimed by both the inventory file and a container (e.g. {}): neither identity is given to them",
                both.len(),
                both.iter().next().map_or("", |s| s.as_str())
            );
        }
        let strip = |w: &mut Workload| {
            w.ips.retain(|s| !both.contains(&canonical(&s.value)));
        };
        for w in &mut base.workloads {
            strip(w);
        }
        for w in runtime.iter() {
            let mut w = w.clone();
            strip(&mut w);
            base.workloads.push(w);
        }
        (base, epoch)
    }
}

/// Compiles policy `text` against the inventory the daemon judges by: the `--inventory`
/// file (else the policy file's own inventory documents) merged with the runtime's
/// workloads, marked with the runtime's epoch.
pub fn compile_live(
    text: &str,
    origin_name: &str,
    file: Option<&std::path::Path>,
    runtime: Option<&RuntimeInventory>,
    version: u64,
) -> Result<control::PolicySnapshot, String> {
    let Some(rt) = runtime else {
        return control::load_snapshot_str(text, origin_name, file, version)
            .map_err(|e| e.to_string());
    };
    let (loaded, base) = base_inventory(text, origin_name, file)?;
    let (inv, epoch) = rt.merge_into(base);
    control::compile(&loaded.policy, &inv, version)
        .map(|s| s.with_inventory_epoch(epoch))
        .map_err(|e| e.to_string())
}

/// The policy text's parse and the inventory it names: the file, else its own documents.
pub fn base_inventory(
    text: &str,
    origin_name: &str,
    file: Option<&std::path::Path>,
) -> Result<(control::LoadedPolicy, WorkloadInventory), String> {
    let mut loaded = control::load_policy_str(text, origin_name).map_err(|e| e.to_string())?;
    let base = match file {
        Some(p) => control::load_inventory(p).map_err(|e| e.to_string())?,
        None => loaded
            .inventory
            .take()
            .unwrap_or_else(WorkloadInventory::empty),
    };
    Ok((loaded, base))
}

fn canonical(s: &str) -> String {
    s.trim()
        .parse::<IpAddr>()
        .map_or_else(|_| s.trim().to_string(), |a| a.to_canonical().to_string())
}

/// Label keys containerd's CRI plugin and the kubelet set.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const CRI_KIND: &str = "io.cri-containerd.kind";
/// Annotations Palisade adds to a runtime workload (they reach every event about it).
pub const ANN_CONTAINER_ID: &str = "palisade.dev/container-id";
pub const ANN_RUNTIME_NAMESPACE: &str = "palisade.dev/containerd-namespace";

/// The network namespaces that are not a container's own (the host's, palisade's).
#[derive(Clone, Debug, Default)]
pub struct SharedNetns {
    pub ids: Vec<netns::NetnsId>,
    pub addrs: Vec<IpAddr>,
}

impl SharedNetns {
    fn holds(&self, c: &Observed) -> bool {
        c.netns.is_some_and(|n| self.ids.contains(&n))
            || c.addrs.iter().any(|a| self.addrs.contains(a))
    }
}

/// One running container as the runtime shows it.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The containerd namespace.
    pub namespace: String,
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// Its image reference, with `@digest` when known.
    pub image: String,
    /// Creation time (seconds, nanoseconds): the newest wins a name both claim.
    pub created: (i64, i32),
    /// Its network namespace, when it could be read.
    pub netns: Option<netns::NetnsId>,
    pub addrs: Vec<IpAddr>,
}

/// Turns running containers into workloads (PRODUCT.md, `--inventory containerd`):
/// a Kubernetes pod is its sandbox (`io.cri-containerd.kind: sandbox`), named after the
/// pod, with the image of its first application container by name; any other container
/// is a workload of its own, named by its id in its containerd namespace. A container in
/// a namespace that is not its own (`shared`: the host's, palisade's; host networking)
/// gets no address. An address two workloads claim is given to neither.
pub fn workloads_of(
    mut seen: Vec<Observed>,
    shared: &SharedNetns,
    found: &mut Findings,
) -> Vec<Workload> {
    seen.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
    // A pod's application containers lend their image to the pod's sandbox.
    let mut pod_images: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for c in &seen {
        if c.labels.get(CRI_KIND).map(String::as_str) == Some("container")
            && let (Some(pn), Some(pns)) = (c.labels.get(POD_NAME), c.labels.get(POD_NAMESPACE))
        {
            let cname = c
                .labels
                .get("io.kubernetes.container.name")
                .cloned()
                .unwrap_or_else(|| c.id.clone());
            let e = pod_images
                .entry((pns.clone(), pn.clone()))
                .or_insert_with(|| (cname.clone(), c.image.clone()));
            if cname < e.0 {
                *e = (cname, c.image.clone());
            }
        }
    }
    // (namespace, name) -> (created, workload)
    let mut by_name: BTreeMap<(String, String), ((i64, i32), Workload)> = BTreeMap::new();
    for c in seen {
        if c.labels.get(CRI_KIND).map(String::as_str) == Some("container") {
            continue;
        }
        let name = c
            .labels
            .get(POD_NAME)
            .cloned()
            .unwrap_or_else(|| c.id.clone());
        let ns = c
            .labels
            .get(POD_NAMESPACE)
            .cloned()
            .unwrap_or_else(|| c.namespace.clone());
        let image = pod_images
            .get(&(ns.clone(), name.clone()))
            .map(|(_, i)| i.clone())
            .unwrap_or_else(|| c.image.clone());
        let mut addrs = c.addrs.clone();
        if shared.holds(&c) {
            found.host_network += 1;
            addrs.clear();
        }
        let labels: Labels = OrderedMap(
            c.labels
                .iter()
                .map(|(k, v)| (Text(k.clone()), Text(v.clone())))
                .collect(),
        );
        let annotations: Labels = OrderedMap(vec![
            (Text(ANN_CONTAINER_ID.into()), Text(c.id.clone())),
            (
                Text(ANN_RUNTIME_NAMESPACE.into()),
                Text(c.namespace.clone()),
            ),
        ]);
        let w = Workload {
            name: spanned(name.clone()),
            namespace: Some(spanned(ns.clone())),
            labels,
            ips: addrs.iter().map(|a| spanned(a.to_string())).collect(),
            cidrs: Vec::new(),
            image: (!image.is_empty()).then_some(image),
            annotations,
        };
        match by_name.get(&(ns.clone(), name.clone())) {
            Some((created, _)) if *created >= c.created => {
                found.name_conflicts += 1;
            }
            prev => {
                if prev.is_some() {
                    found.name_conflicts += 1;
                }
                by_name.insert((ns, name), (c.created, w));
            }
        }
    }
    // An address claimed from two network namespaces (or by two workloads sharing one)
    // is ambiguous: nobody's.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (_, w) in by_name.values() {
        for ip in &w.ips {
            *owners.entry(ip.value.clone()).or_default() += 1;
        }
    }
    let ambiguous: Vec<&String> = owners
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(a, _)| a)
        .collect();
    if !ambiguous.is_empty() {
        found.address_conflicts = ambiguous.len() as u64;
        tracing::warn!(
            "{} address(es) claimed by two running containers (e.g. {}): neither identity is given to them",
            ambiguous.len(),
            ambiguous[0]
        );
    }
    let mut out: Vec<Workload> = Vec::with_capacity(by_name.len().min(MAX_RUNTIME_WORKLOADS));
    for (_, (_, mut w)) in by_name {
        if out.len() >= MAX_RUNTIME_WORKLOADS {
            found.over_limit += 1;
            continue;
        }
        w.ips.retain(|ip| owners.get(&ip.value).copied() == Some(1));
        out.push(w);
    }
    out
}

#[cfg(test)]
mod tests;
