//! The compiled, immutable form of a policy plus inventory, queried by the dataplane.
//!
//! Built once per policy version, then shared read-only between worker threads (the
//! dataplane holds it in an `ArcSwap`). No interior mutability, no locks; lookups never
//! allocate.
//!
//! Layout, chosen so that an L4 decision touches a handful of cache lines:
//! - every address resolves, by one longest-prefix lookup, to an [`Endpoint`]: an
//!   optional workload and an index into a table of interned *group sets* (sorted
//!   slices of [`GroupId`], shared by all endpoints with the same membership);
//! - rules are indexed by (destination group, source group), with `"*"` as its own key,
//!   so [`PolicySnapshot::judge_flow`] looks only at rules that name the flow's groups;
//! - for [`PolicySnapshot::judge_flow`], each such cell is precompiled into per
//!   (transport, application) port-interval tables of the winning rule (see
//!   `flow_index`), and which cells a flow reads is precomputed per pair of endpoint
//!   classes (the lists of groups that rules name), so a decision reads a few cells and
//!   a cache line of port bounds each, however many rules there are;
//! - addresses resolve through a hash per distinct prefix length (`flat`), longest
//!   first, with the tries as the reference and the fallback for many lengths.

mod build;
mod flat;
mod flow_index;
mod judge;

use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use crate::l7::index::L7Index;
pub use crate::rule::{CompiledRule, Transport};
use crate::vocab::DefaultAction;
pub use crate::vocab::{Action, GroupId, Mode, OnUninspectable, Severity};

pub(crate) use build::build;

/// Why a flow could not be judged: every way the data plane can stop seeing what the
/// receiver acts on ends in one of these, and the policy's `onUninspectable` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Uninspectable {
    /// Bytes no detector recognises (or that never decide) where a rule expects an
    /// application protocol.
    UnknownProtocol,
    /// Bytes that break the detected protocol's grammar.
    ParserInvalid,
    /// A parser limit cut a message short (head, message, streams, header compression).
    ParserLimit,
    /// Framing that implementations read differently (request smuggling).
    AmbiguousFraming,
    /// A message head larger than the inspector may buffer, or its buffer budget spent.
    CarryOverflow,
    /// Bytes missing from the stream (lost in the capture, or given up by reassembly)
    /// where a message the policy judges may have been.
    Gap,
    /// Two different copies of the same stream bytes (decoys, overlapping segments).
    OverlapMismatch,
    /// A retransmission of bytes that were no longer kept to compare with.
    UnverifiedRetransmission,
    /// The flow was picked up without its handshake (a restart, state evicted by a full
    /// table): its earlier bytes were never seen.
    Midstream,
    /// Encryption negotiated inside a protocol whose requests rules judge.
    Encrypted,
    /// Compression the parser does not undo.
    Compressed,
    /// A protocol mode the parser does not implement.
    Unsupported,
}

impl Uninspectable {
    pub const ALL: [Uninspectable; 12] = [
        Uninspectable::UnknownProtocol,
        Uninspectable::ParserInvalid,
        Uninspectable::ParserLimit,
        Uninspectable::AmbiguousFraming,
        Uninspectable::CarryOverflow,
        Uninspectable::Gap,
        Uninspectable::OverlapMismatch,
        Uninspectable::UnverifiedRetransmission,
        Uninspectable::Midstream,
        Uninspectable::Encrypted,
        Uninspectable::Compressed,
        Uninspectable::Unsupported,
    ];

    /// The name events, metrics and counters use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Uninspectable::UnknownProtocol => "unknown_protocol",
            Uninspectable::ParserInvalid => "parser_invalid",
            Uninspectable::ParserLimit => "parser_limit",
            Uninspectable::AmbiguousFraming => "ambiguous_framing",
            Uninspectable::CarryOverflow => "carry_overflow",
            Uninspectable::Gap => "gap",
            Uninspectable::OverlapMismatch => "overlap_mismatch",
            Uninspectable::UnverifiedRetransmission => "unverified_retransmission",
            Uninspectable::Midstream => "midstream",
            Uninspectable::Encrypted => "encrypted",
            Uninspectable::Compressed => "compressed",
            Uninspectable::Unsupported => "unsupported",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadId(pub u32);

/// A rule, numbered in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleId(pub u32);

/// What an address resolves to. Copy, small; indexes into the snapshot that made it, so
/// resolve again after a policy swap (an endpoint from another snapshot never panics, it
/// only resolves to wrong or empty groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub workload: Option<WorkloadId>,
    set: u32,
}

impl Endpoint {
    /// An address that neither the inventory nor any group CIDR knows.
    pub const UNKNOWN: Endpoint = Endpoint {
        workload: None,
        set: EMPTY_SET,
    };
}

const EMPTY_SET: u32 = 0;

/// Identity of a workload, copied into every event about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadInfo {
    pub name: Box<str>,
    pub namespace: Box<str>,
    pub image: Option<Box<str>>,
    pub annotations: Vec<(Box<str>, Box<str>)>,
    /// Sorted by key.
    pub labels: Vec<(Box<str>, Box<str>)>,
}

impl WorkloadInfo {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .and_then(|i| self.labels.get(i))
            .map(|(_, v)| &**v)
    }
}

/// The verdict of [`PolicySnapshot::judge_flow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The policy decision, before the mode softens enforcement.
    pub action: Action,
    /// `None`: no rule matched, the default applied (events print `"default"`).
    pub rule: Option<RuleId>,
    /// The mode that applied.
    pub mode: Mode,
    /// The packet/flow must be dropped: only `Deny` in `Protect` mode.
    pub enforce: bool,
    pub severity: Severity,
    pub capture: bool,
    /// Admitted by an allow rule with L7 matchers: its transactions are judged later.
    pub l7_constrained: bool,
    /// The group the deciding rule named (else the endpoint's first group).
    pub src_group: Option<GroupId>,
    pub dst_group: Option<GroupId>,
    /// Set when this is the policy's `onUninspectable` decision (no rule, no default):
    /// why the flow could not be judged.
    pub uninspectable: Option<Uninspectable>,
    /// Set when an end of the flow is quarantined (a `quarantine: true` rule matched it
    /// earlier): the flow is refused whatever the rules say (events print `"quarantine"`).
    pub quarantine: bool,
}

impl Decision {
    /// The decision for a flow from or to a quarantined workload: denied and enforced in
    /// every mode (a quarantine is a response someone asked for), severity critical.
    pub fn quarantined(src_group: Option<GroupId>, dst_group: Option<GroupId>) -> Decision {
        Decision {
            action: Action::Deny,
            rule: None,
            mode: Mode::Protect,
            enforce: true,
            severity: Severity::Critical,
            capture: false,
            l7_constrained: false,
            src_group,
            dst_group,
            uninspectable: None,
            quarantine: true,
        }
    }
}

#[derive(Clone, Debug)]
struct GroupInfo {
    name: Box<str>,
    mode: Option<Mode>,
    on_uninspectable: Option<OnUninspectable>,
}

#[derive(Clone, Copy, Debug)]
struct SetInfo {
    start: u32,
    len: u32,
    /// The first group of the set (declaration order) that overrides the mode.
    mode: Option<Mode>,
    /// The same for `onUninspectable`.
    on_uninspectable: Option<OnUninspectable>,
    /// The first group of the set (what a default decision names).
    first: Option<GroupId>,
    /// The set's groups that some rule names in `from`: range into `set_keys`. Only
    /// these (and `"*"`) can key cells holding rules for a flow from this set.
    src_keys: (u32, u32),
    /// The same for `to`.
    dst_keys: (u32, u32),
    /// Ids of those two lists (sets with the same list share it), for the flow index's
    /// plans.
    src_list: u32,
    dst_list: u32,
}

/// One (destination key, source key) cell of the rule index.
#[derive(Clone, Copy, Debug)]
struct Cell {
    src: u16,
    start: u32,
    end: u32,
}

/// The key of `"*"` in the rule index. Group ids stay below it (see
/// [`crate::validate::MAX_GROUPS`]) and it sorts last.
const ANY_KEY: u16 = u16::MAX;

/// An immutable compiled policy: address resolution, group membership and L4 rules.
#[derive(Debug)]
pub struct PolicySnapshot {
    version: u64,
    name: Box<str>,
    mode: Mode,
    default_action: DefaultAction,
    on_uninspectable: Option<OnUninspectable>,
    groups: Box<[GroupInfo]>,
    workloads: Box<[WorkloadInfo]>,
    unknown_workload: WorkloadInfo,
    sets: Box<[SetInfo]>,
    set_members: Box<[GroupId]>,
    v4: PrefixMap<Ipv4Net, Endpoint>,
    v6: PrefixMap<Ipv6Net, Endpoint>,
    /// The tries' content as hashed prefixes: what [`PolicySnapshot::resolve`] asks.
    addrs: flat::AddrTable,
    rules: Box<[CompiledRule]>,
    /// Per destination key (group id, then `"*"` last): range into `cells`.
    index: Box<[(u32, u32)]>,
    /// Per destination key, sorted by source key (`"*"` last): range into `rule_refs`.
    cells: Box<[Cell]>,
    /// Rule indices, ascending within a cell.
    rule_refs: Box<[u32]>,
    /// Per group set: the keys `SetInfo::src_keys`/`dst_keys` point at.
    set_keys: Box<[u16]>,
    /// The cells precompiled for [`PolicySnapshot::judge_flow`].
    flow_index: flow_index::FlowIndex,
    /// The rules' L7 matchers, compiled for [`PolicySnapshot::judge_request`].
    l7: L7Index,
    /// Which list of a live inventory (the container runtime's) this was compiled
    /// against: a snapshot recompiled for an inventory change keeps its policy version
    /// and gets the next epoch.
    inventory_epoch: u64,
    /// Unique to this snapshot in the process: what tells two snapshots of one policy
    /// version apart (endpoints and cached rule sets belong to one snapshot).
    generation: u64,
}

/// The next [`PolicySnapshot::generation`].
pub(crate) static NEXT_GENERATION: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(1);

impl PolicySnapshot {
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Unique per compiled snapshot: equal generations mean the same snapshot, so an
    /// endpoint resolved in one may be used with the other. Versions name policies (a
    /// snapshot recompiled for an inventory change keeps its version).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn inventory_epoch(&self) -> u64 {
        self.inventory_epoch
    }

    /// The same snapshot, marked as compiled against inventory epoch `epoch`.
    pub fn with_inventory_epoch(mut self, epoch: u64) -> Self {
        self.inventory_epoch = epoch;
        self
    }

    /// `metadata.name` of the policy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy-wide mode (`spec.mode`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn workload_count(&self) -> usize {
        self.workloads.len()
    }

    /// Longest-prefix match over workload addresses (host prefixes), workload CIDRs and
    /// group CIDRs. IPv4-mapped IPv6 addresses resolve as their IPv4 address.
    pub fn resolve(&self, ip: IpAddr) -> Endpoint {
        let hit = match ip.to_canonical() {
            IpAddr::V4(a) => match self.addrs.lookup4(u32::from(a)) {
                Some(hit) => hit,
                None => self.resolve_in_trie(IpAddr::V4(a)),
            },
            IpAddr::V6(a) => match self.addrs.lookup6(u128::from(a)) {
                Some(hit) => hit,
                None => self.resolve_in_trie(IpAddr::V6(a)),
            },
        };
        hit.unwrap_or(Endpoint::UNKNOWN)
    }

    /// The tries' answer, for families with too many prefix lengths to probe.
    #[cold]
    #[inline(never)]
    fn resolve_in_trie(&self, ip: IpAddr) -> Option<Endpoint> {
        match ip {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, e)| *e),
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, e)| *e),
        }
    }

    /// The workload's identity. An id from another snapshot that is out of range yields
    /// a placeholder named `unknown`, never a panic.
    pub fn workload(&self, id: WorkloadId) -> &WorkloadInfo {
        self.get_workload(id).unwrap_or(&self.unknown_workload)
    }

    pub fn get_workload(&self, id: WorkloadId) -> Option<&WorkloadInfo> {
        self.workloads.get(id.0 as usize)
    }

    /// The endpoint's groups, in declaration order.
    pub fn groups_of(&self, ep: &Endpoint) -> &[GroupId] {
        self.set_slice(ep.set)
    }

    /// The group's name (`"unknown"` for an id out of range).
    pub fn group_name(&self, g: GroupId) -> &str {
        self.groups
            .get(usize::from(g.0))
            .map_or("unknown", |gi| &gi.name)
    }

    /// Whether any traffic can be judged in `mode` (the policy's own, or a group's).
    pub fn uses_mode(&self, mode: Mode) -> bool {
        self.mode == mode || self.groups.iter().any(|g| g.mode == Some(mode))
    }

    /// The group's `mode` override, if any.
    pub fn group_mode(&self, g: GroupId) -> Option<Mode> {
        self.groups.get(usize::from(g.0)).and_then(|gi| gi.mode)
    }

    /// The group named so, if declared.
    pub fn group_by_name(&self, name: &str) -> Option<GroupId> {
        self.groups
            .iter()
            .position(|g| &*g.name == name)
            .and_then(|i| u16::try_from(i).ok())
            .map(GroupId)
    }

    /// The rule's `id` (`"unknown"` for an id out of range).
    pub fn rule_name(&self, r: RuleId) -> &str {
        self.rule(r).map_or("unknown", |c| &c.name)
    }

    pub fn rule(&self, r: RuleId) -> Option<&CompiledRule> {
        self.rules.get(r.0 as usize)
    }

    /// The rule whose `id` is `name`.
    pub fn rule_by_name(&self, name: &str) -> Option<RuleId> {
        self.rules
            .iter()
            .position(|r| &*r.name == name)
            .and_then(|i| u32::try_from(i).ok())
            .map(RuleId)
    }

    pub(crate) fn l7_index(&self) -> &L7Index {
        &self.l7
    }

    fn set_info(&self, set: u32) -> Option<&SetInfo> {
        self.sets.get(set as usize)
    }

    /// The named source and destination keys of a set (empty for an unknown set).
    #[inline]
    fn cell_keys(&self, set: Option<&SetInfo>) -> (&[u16], &[u16]) {
        let slice = |(start, len): (u32, u32)| {
            let start = start as usize;
            self.set_keys
                .get(start..start + len as usize)
                .unwrap_or(&[])
        };
        match set {
            Some(s) => (slice(s.src_keys), slice(s.dst_keys)),
            None => (&[], &[]),
        }
    }

    fn set_slice(&self, set: u32) -> &[GroupId] {
        self.set_info(set)
            .and_then(|s| {
                let start = s.start as usize;
                self.set_members.get(start..start + s.len as usize)
            })
            .unwrap_or(&[])
    }
}
