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

mod flat;
mod flow_index;

use std::net::IpAddr;

use foldhash::HashMap;
use foldhash::HashMapExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use proto_parsers::AppProto;

use crate::error::{Code, Diagnostic, Origin, PolicyErrors, SourcePos};
use crate::rule::transports_for;
pub use crate::rule::{CompiledRule, Transport};
use crate::validate::{Checked, Peer};
use crate::vocab::DefaultAction;
pub use crate::vocab::{Action, GroupId, Mode, OnUninspectable, Severity};

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
    l7: crate::l7::L7Index,
}

impl PolicySnapshot {
    pub fn version(&self) -> u64 {
        self.version
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

    pub(crate) fn l7_index(&self) -> &crate::l7::L7Index {
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

    /// The mode for a flow between these endpoints when no rule decides it: the
    /// destination's first group with an override, else the source's, else `spec.mode`.
    pub fn mode_for(&self, src: &Endpoint, dst: &Endpoint) -> Mode {
        self.set_info(dst.set)
            .and_then(|s| s.mode)
            .or_else(|| self.set_info(src.set).and_then(|s| s.mode))
            .unwrap_or(self.mode)
    }

    /// Calls `f` with every rule whose groups, port, transport and application protocol
    /// match the flow, in ascending rule order (a rule may be visited more than once
    /// when the endpoints are in several of its groups). L4 only: L7 matchers are not
    /// evaluated, and deny/alert rules for a specific protocol are skipped while `app`
    /// is `None`.
    pub fn for_each_matching_rule(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
        mut f: impl FnMut(RuleId, &CompiledRule),
    ) {
        let src_set = self.set_slice(src.set);
        let dst_set = self.set_slice(dst.set);
        let any_dst = self.groups.len();
        for d in dst_set.iter().map(|g| usize::from(g.0)).chain([any_dst]) {
            let cells = self.cells_of(d);
            if cells.is_empty() {
                continue;
            }
            for g in src_set {
                if let Ok(i) = cells.binary_search_by_key(&g.0, |c| c.src)
                    && let Some(cell) = cells.get(i)
                {
                    self.visit_cell(cell, dport, transport, app, &mut f);
                }
            }
            if let Some(cell) = cells.last()
                && cell.src == ANY_KEY
            {
                self.visit_cell(cell, dport, transport, app, &mut f);
            }
        }
    }

    fn cells_of(&self, dst_key: usize) -> &[Cell] {
        self.index
            .get(dst_key)
            .and_then(|&(a, b)| self.cells.get(a as usize..b as usize))
            .unwrap_or(&[])
    }

    #[inline]
    fn visit_cell(
        &self,
        cell: &Cell,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
        f: &mut impl FnMut(RuleId, &CompiledRule),
    ) {
        let refs = self
            .rule_refs
            .get(cell.start as usize..cell.end as usize)
            .unwrap_or(&[]);
        for &r in refs {
            if let Some(rule) = self.rules.get(r as usize)
                && rule.matches_l4(dport, transport, app)
            {
                f(RuleId(r), rule);
            }
        }
    }

    /// Judges a flow at L4 (and by application protocol once known). Deny wins over
    /// alert over allow, regardless of rule order; with no rule, the mode decides. Call
    /// again when the application protocol is classified: a tentative admission at the
    /// SYN (`app == None`) may turn into a deny.
    pub fn judge_flow(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
    ) -> Decision {
        // The same outcome as folding `for_each_matching_rule` (the lowest id of deny,
        // else alert, else allow, else allow with L7 matchers) and then `decide`, read
        // from the precompiled cells (see `flow_index`) without touching the rules. A
        // deny/alert rule with L7 matchers judges transactions, not the flow (`deny
        // FLUSHALL` must not cut the whole Redis connection): only its `capture` counts.
        let src_info = self.set_info(src.set);
        let dst_info = self.set_info(dst.set);
        // The key lists, for the index's hashing path (flows between endpoint classes
        // without a precomputed plan).
        let (src_keys, _) = self.cell_keys(src_info);
        let (_, dst_keys) = self.cell_keys(dst_info);
        // An unknown set (an endpoint from another snapshot) has no list: u32::MAX.
        let src_list = src_info.map_or(u32::MAX, |s| s.src_list);
        let dst_list = dst_info.map_or(u32::MAX, |s| s.dst_list);
        let (sum, src_key, dst_key) = self.flow_index.judge(
            (src_keys, src_list),
            (dst_keys, dst_list),
            dport,
            transport,
            app,
        );
        let capture = sum & flow_index::CAPTURE != 0;
        let mode = dst_info
            .and_then(|s| s.mode)
            .or_else(|| src_info.and_then(|s| s.mode))
            .unwrap_or(self.mode);
        let src_first = src_info.and_then(|s| s.first);
        let dst_first = dst_info.and_then(|s| s.first);
        // The first of the endpoint's groups that the rule names; for `"*"` the first.
        let named = |any: bool, key: u16, first: Option<GroupId>| {
            if any || key == ANY_KEY {
                first
            } else {
                Some(GroupId(key))
            }
        };
        match flow_index::winner(sum) {
            Some(w) => {
                let action = match w.rank {
                    flow_index::RANK_DENY => Action::Deny,
                    flow_index::RANK_ALERT => Action::Alert,
                    _ => Action::Allow,
                };
                Decision {
                    action,
                    rule: Some(RuleId(w.rule)),
                    mode,
                    enforce: action == Action::Deny && mode == Mode::Protect,
                    severity: w.severity,
                    capture,
                    l7_constrained: w.rank == flow_index::RANK_ALLOW_L7,
                    src_group: named(w.from_any, src_key, src_first),
                    dst_group: named(w.to_any, dst_key, dst_first),
                    uninspectable: None,
                }
            }
            None => self.default_decision(mode, capture, src_first, dst_first),
        }
    }

    /// What `onUninspectable` says for a flow between these endpoints: the destination's
    /// first group that sets it, else the source's, else `spec`, else the default of the
    /// flow's mode.
    pub fn on_uninspectable(&self, src: &Endpoint, dst: &Endpoint) -> OnUninspectable {
        self.set_info(dst.set)
            .and_then(|s| s.on_uninspectable)
            .or_else(|| self.set_info(src.set).and_then(|s| s.on_uninspectable))
            .or(self.on_uninspectable)
            .unwrap_or_else(|| OnUninspectable::default_for(self.mode_for(src, dst)))
    }

    /// The decision for a flow that cannot be judged, for `cause`. Its mode softens it
    /// as any decision's: a deny drops only in `protect`.
    pub fn judge_uninspectable(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        cause: Uninspectable,
    ) -> Decision {
        let mode = self.mode_for(src, dst);
        let (action, severity) = match self.on_uninspectable(src, dst) {
            OnUninspectable::Deny => (Action::Deny, Severity::High),
            OnUninspectable::Alert => (Action::Alert, Severity::Medium),
            OnUninspectable::Allow => (Action::Allow, Severity::Low),
        };
        Decision {
            action,
            rule: None,
            mode,
            enforce: action == Action::Deny && mode == Mode::Protect,
            severity,
            capture: false,
            l7_constrained: false,
            src_group: self.set_slice(src.set).first().copied(),
            dst_group: self.set_slice(dst.set).first().copied(),
            uninspectable: Some(cause),
        }
    }

    /// Whether rules could judge what a flow carries, so that not being able to read it
    /// matters: some rule covering the flow's groups, port and transport has L7 matchers
    /// for its protocol (`app`: the detected one; any while it is still unknown), or,
    /// when no detector recognised the bytes (`app` is `tcp`/`udp`), names an application
    /// protocol at all: a peer could be speaking it in a form detection missed. Off the
    /// packet path: called when a flow becomes uninspectable, once.
    pub fn l7_governed(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
    ) -> bool {
        let mut governed = false;
        self.for_each_candidate(src, dst, |rule| {
            if governed || !rule.matches_port(dport, transport) {
                return;
            }
            let t = rule.transport_app();
            if t.transports & transport.bit() == 0 {
                return;
            }
            governed = match app {
                None => rule.has_l7() || rule.app.is_some_and(is_l7_app),
                Some(AppProto::Tcp | AppProto::Udp) => rule.app.is_some_and(is_l7_app),
                Some(a) => rule.has_l7() && t.matches(transport, Some(a)),
            };
        });
        governed
    }

    /// Every rule in the cells of this endpoint pair (each may come more than once).
    fn for_each_candidate(&self, src: &Endpoint, dst: &Endpoint, mut f: impl FnMut(&CompiledRule)) {
        let src_set = self.set_slice(src.set);
        let dst_set = self.set_slice(dst.set);
        let any_dst = self.groups.len();
        let mut visit = |cell: &Cell| {
            let refs = self
                .rule_refs
                .get(cell.start as usize..cell.end as usize)
                .unwrap_or(&[]);
            for &r in refs {
                if let Some(rule) = self.rules.get(r as usize) {
                    f(rule);
                }
            }
        };
        for d in dst_set.iter().map(|g| usize::from(g.0)).chain([any_dst]) {
            let cells = self.cells_of(d);
            for g in src_set {
                if let Ok(i) = cells.binary_search_by_key(&g.0, |c| c.src)
                    && let Some(cell) = cells.get(i)
                {
                    visit(cell);
                }
            }
            if let Some(cell) = cells.last()
                && cell.src == ANY_KEY
            {
                visit(cell);
            }
        }
    }

    /// What the mode decides when no rule does.
    fn default_decision(
        &self,
        mode: Mode,
        capture: bool,
        src_group: Option<GroupId>,
        dst_group: Option<GroupId>,
    ) -> Decision {
        let (action, enforce, severity) = match (mode, self.default_action) {
            (Mode::Protect, DefaultAction::Deny) => (Action::Deny, true, Severity::High),
            (Mode::Protect, DefaultAction::Allow) | (Mode::Learn, _) => {
                (Action::Allow, false, Severity::Low)
            }
            (Mode::Monitor, _) => (Action::Alert, false, Severity::Medium),
        };
        Decision {
            action,
            rule: None,
            mode,
            enforce,
            severity,
            capture,
            l7_constrained: false,
            src_group,
            dst_group,
            uninspectable: None,
        }
    }

    /// The decision of rule `decided` (`u32::MAX`: none, the mode decides), shared by the
    /// flow and the transaction judges so that both render outcomes the same way.
    pub(crate) fn decide(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        decided: u32,
        l7_constrained: bool,
        capture: bool,
    ) -> Decision {
        let mode = self.mode_for(src, dst);
        let src_set = self.set_slice(src.set);
        let dst_set = self.set_slice(dst.set);
        match self.rules.get(decided as usize) {
            Some(rule) => Decision {
                action: rule.action,
                rule: Some(RuleId(decided)),
                mode,
                enforce: rule.action == Action::Deny && mode == Mode::Protect,
                severity: rule.severity,
                capture,
                l7_constrained,
                src_group: named_group(rule.from.as_deref(), src_set),
                dst_group: named_group(rule.to.as_deref(), dst_set),
                uninspectable: None,
            },
            None => self.default_decision(
                mode,
                capture,
                src_set.first().copied(),
                dst_set.first().copied(),
            ),
        }
    }
}

/// An application protocol that a parser reads (not bare `tcp`/`udp`).
const fn is_l7_app(a: AppProto) -> bool {
    !matches!(a, AppProto::Tcp | AppProto::Udp)
}

/// The first of the endpoint's groups that the rule names; for `"*"`, the endpoint's
/// first group.
fn named_group(named: Option<&[GroupId]>, endpoint: &[GroupId]) -> Option<GroupId> {
    match named {
        None => endpoint.first().copied(),
        Some(named) => endpoint
            .iter()
            .find(|g| named.binary_search(g).is_ok())
            .copied()
            .or_else(|| endpoint.first().copied()),
    }
}

/// Interns group sets so that endpoints with the same membership share one slice.
struct SetInterner {
    ids: HashMap<Box<[GroupId]>, u32>,
    sets: Vec<SetInfo>,
    members: Vec<GroupId>,
}

impl SetInterner {
    fn new() -> Self {
        let mut s = SetInterner {
            ids: HashMap::new(),
            sets: Vec::new(),
            members: Vec::new(),
        };
        // Set 0 is the empty set (EMPTY_SET).
        s.sets.push(SetInfo {
            start: 0,
            len: 0,
            mode: None,
            on_uninspectable: None,
            first: None,
            src_keys: (0, 0),
            dst_keys: (0, 0),
            src_list: 0,
            dst_list: 0,
        });
        s.ids.insert(Box::from([]), EMPTY_SET);
        s
    }

    /// `set` must be sorted and deduplicated.
    fn intern(&mut self, set: &[GroupId], groups: &[GroupInfo]) -> Result<u32, ()> {
        if let Some(&id) = self.ids.get(set) {
            return Ok(id);
        }
        // u32::MAX stays free: it marks empty slots of the address table.
        let id = u32::try_from(self.sets.len())
            .ok()
            .filter(|&id| id != u32::MAX)
            .ok_or(())?;
        let start = u32::try_from(self.members.len()).map_err(|_| ())?;
        let len = u32::try_from(set.len()).map_err(|_| ())?;
        let mode = set
            .iter()
            .find_map(|g| groups.get(usize::from(g.0)).and_then(|gi| gi.mode));
        let on_uninspectable = set.iter().find_map(|g| {
            groups
                .get(usize::from(g.0))
                .and_then(|gi| gi.on_uninspectable)
        });
        self.members.extend_from_slice(set);
        self.sets.push(SetInfo {
            start,
            len,
            mode,
            on_uninspectable,
            first: set.first().copied(),
            src_keys: (0, 0),
            dst_keys: (0, 0),
            src_list: 0,
            dst_list: 0,
        });
        self.ids.insert(Box::from(set), id);
        Ok(id)
    }
}

fn limit_error(origin: &Origin, what: &str) -> PolicyErrors {
    PolicyErrors::single(
        Diagnostic::error(Code::Limit, SourcePos::file(origin), what.to_owned())
            .with_help("split the policy or inventory"),
    )
}

/// Builds the snapshot from validated input. Fails only on table limits.
pub(crate) fn build(c: Checked, version: u64) -> Result<PolicySnapshot, PolicyErrors> {
    let groups: Box<[GroupInfo]> = c
        .groups
        .iter()
        .map(|g| GroupInfo {
            name: g.name.as_str().into(),
            mode: g.mode,
            on_uninspectable: g.on_uninspectable,
        })
        .collect();
    let group_ids = || (0..c.groups.len()).filter_map(|i| u16::try_from(i).ok().map(GroupId));

    let mut interner = SetInterner::new();
    let mut v4: PrefixMap<Ipv4Net, Endpoint> = PrefixMap::new();
    let mut v6: PrefixMap<Ipv6Net, Endpoint> = PrefixMap::new();
    let mut workloads = Vec::with_capacity(c.workloads.len());
    let mut scratch: Vec<GroupId> = Vec::new();

    let members = crate::validate::memberships(&c);
    for (wi, (w, gs)) in c.workloads.iter().zip(&members).enumerate() {
        let id = WorkloadId(
            u32::try_from(wi)
                .map_err(|_| limit_error(&c.inventory_origin, "too many workloads"))?,
        );
        let set = interner
            .intern(gs, &groups)
            .map_err(|()| limit_error(&c.inventory_origin, "too many group sets"))?;
        let ep = Endpoint {
            workload: Some(id),
            set,
        };
        for ip in &w.ips {
            insert(&mut v4, &mut v6, IpNet::from(*ip), ep);
        }
        for net in &w.cidrs {
            insert(&mut v4, &mut v6, *net, ep);
        }
        workloads.push(WorkloadInfo {
            name: w.name.as_str().into(),
            namespace: w.namespace.as_str().into(),
            image: w.image.as_deref().map(Box::from),
            annotations: w
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
            labels: w
                .labels
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        });
    }

    // Group CIDRs: addresses outside the inventory. Each distinct prefix carries the
    // union of every group CIDR covering it, so the longest match alone decides.
    let mut g4: PrefixMap<Ipv4Net, Vec<GroupId>> = PrefixMap::new();
    let mut g6: PrefixMap<Ipv6Net, Vec<GroupId>> = PrefixMap::new();
    for (gid, g) in group_ids().zip(c.groups.iter()) {
        for net in &g.cidrs {
            match net {
                IpNet::V4(n) => g4.entry(*n).or_default().push(gid),
                IpNet::V6(n) => g6.entry(*n).or_default().push(gid),
            }
        }
    }
    let mut pending4 = Vec::new();
    for (net, _) in g4.iter() {
        // Inside a workload's prefix: the workload owns these addresses (cluster
        // endpoints are selected by labels, not by CIDR), so the group prefix adds
        // nothing.
        if v4.cover(&net).any(|(_, e)| e.workload.is_some()) {
            continue;
        }
        scratch.clear();
        scratch.extend(g4.cover(&net).flat_map(|(_, gs)| gs.iter().copied()));
        scratch.sort_unstable();
        scratch.dedup();
        let set = interner
            .intern(&scratch, &groups)
            .map_err(|()| limit_error(&c.policy_origin, "too many group sets"))?;
        pending4.push((net, set));
    }
    for (net, set) in pending4 {
        v4.insert(
            net,
            Endpoint {
                workload: None,
                set,
            },
        );
    }
    let mut pending6 = Vec::new();
    for (net, _) in g6.iter() {
        if v6.cover(&net).any(|(_, e)| e.workload.is_some()) {
            continue;
        }
        scratch.clear();
        scratch.extend(g6.cover(&net).flat_map(|(_, gs)| gs.iter().copied()));
        scratch.sort_unstable();
        scratch.dedup();
        let set = interner
            .intern(&scratch, &groups)
            .map_err(|()| limit_error(&c.policy_origin, "too many group sets"))?;
        pending6.push((net, set));
    }
    for (net, set) in pending6 {
        v6.insert(
            net,
            Endpoint {
                workload: None,
                set,
            },
        );
    }

    // Rules and their index.
    let mut rules = Vec::with_capacity(c.rules.len());
    let mut entries: Vec<(u16, u16, u32)> = Vec::new();
    for (ri, r) in c.rules.iter().enumerate() {
        let rid = u32::try_from(ri).map_err(|_| limit_error(&c.policy_origin, "too many rules"))?;
        let dst_keys: Vec<u16> = match &r.to {
            Peer::Any => vec![ANY_KEY],
            Peer::Groups(gs) => gs.iter().map(|g| g.0).collect(),
        };
        let src_keys: Vec<u16> = match &r.from {
            Peer::Any => vec![ANY_KEY],
            Peer::Groups(gs) => gs.iter().map(|g| g.0).collect(),
        };
        for &d in &dst_keys {
            for &s in &src_keys {
                entries.push((d, s, rid));
            }
        }
        let default_severity = match r.action {
            Action::Deny => Severity::High,
            Action::Alert => Severity::Medium,
            Action::Allow => Severity::Low,
        };
        rules.push(CompiledRule {
            name: r.id.as_str().into(),
            action: r.action,
            severity: r.severity.unwrap_or(default_severity),
            capture: r.capture,
            app: r.app,
            transports: transports_for(r.app),
            ports: r.ports.clone().into_boxed_slice(),
            from: r.from.groups().map(Box::from),
            to: r.to.groups().map(Box::from),
            l7: r.l7.clone(),
        });
    }
    // ANY_KEY sorts after every group id, so the `"*"` destination bucket is last and the
    // `"*"` source cell is the last of its bucket.
    entries.sort_unstable();
    let dst_count = groups.len() + 1;
    let mut index = vec![(0u32, 0u32); dst_count];
    let mut cells: Vec<Cell> = Vec::new();
    let mut rule_refs: Vec<u32> = Vec::with_capacity(entries.len());
    let too_big = || limit_error(&c.policy_origin, "rule index too large");
    // (destination key, source key, range into rule_refs) of every cell.
    let mut cell_keys: Vec<(u16, u16, u32, u32)> = Vec::new();
    let mut i = 0;
    while let Some(&(d, s, _)) = entries.get(i) {
        let dst_slot = if d == ANY_KEY {
            groups.len()
        } else {
            usize::from(d)
        };
        let cell_start = u32::try_from(cells.len()).map_err(|_| too_big())?;
        let mut j = i;
        while let Some(&(d2, s2, r)) = entries.get(j) {
            if d2 != d || s2 != s {
                break;
            }
            rule_refs.push(r);
            j += 1;
        }
        let start = u32::try_from(rule_refs.len() - (j - i)).map_err(|_| too_big())?;
        let end = u32::try_from(rule_refs.len()).map_err(|_| too_big())?;
        cells.push(Cell { src: s, start, end });
        cell_keys.push((d, s, start, end));
        if let Some(slot) = index.get_mut(dst_slot) {
            if slot.1 == 0 {
                slot.0 = cell_start;
            }
            slot.1 = u32::try_from(cells.len()).map_err(|_| too_big())?;
        }
        i = j;
    }

    let seed = flat::random_seed();
    let mut flow_index = flow_index::FlowIndex::build(
        &rules,
        cell_keys.iter().map(|&(d, s, start, end)| {
            let refs = rule_refs.get(start as usize..end as usize).unwrap_or(&[]);
            (d, s, refs)
        }),
        seed,
    )
    .map_err(|()| too_big())?;
    let (set_keys, src_lists, dst_lists) =
        cell_keys_of_sets(&mut interner, &cell_keys, groups.len()).map_err(|()| too_big())?;
    let list = |&(start, len): &(u32, u32)| {
        set_keys
            .get(start as usize..start as usize + len as usize)
            .unwrap_or(&[])
    };
    let src_lists: Vec<&[u16]> = src_lists.iter().map(list).collect();
    let dst_lists: Vec<&[u16]> = dst_lists.iter().map(list).collect();
    flow_index.plan(&dst_lists, &src_lists);
    let addrs = flat::AddrTable::build(&v4, &v6, seed.rotate_left(32));

    let l7 = crate::l7::L7Index::build(&rules, groups.len())
        .map_err(|e| limit_error(&c.policy_origin, &format!("L7 matchers: {e}")))?;
    Ok(PolicySnapshot {
        version,
        name: c.name.as_str().into(),
        mode: c.mode,
        default_action: c.default_action,
        on_uninspectable: c.on_uninspectable,
        groups,
        workloads: workloads.into_boxed_slice(),
        unknown_workload: WorkloadInfo {
            name: "unknown".into(),
            namespace: "".into(),
            image: None,
            annotations: Vec::new(),
            labels: Vec::new(),
        },
        sets: interner.sets.into_boxed_slice(),
        set_members: interner.members.into_boxed_slice(),
        v4,
        v6,
        addrs,
        rules: rules.into_boxed_slice(),
        index: index.into_boxed_slice(),
        cells: cells.into_boxed_slice(),
        rule_refs: rule_refs.into_boxed_slice(),
        set_keys,
        flow_index,
        l7,
    })
}

/// Fills every set's `src_keys`/`dst_keys`: its groups that some cell names as source
/// (destination), stored once per distinct list, and the lists' ids. Returns the keys'
/// storage and the ranges of the distinct source and destination lists, by id.
#[allow(clippy::type_complexity)]
fn cell_keys_of_sets(
    interner: &mut SetInterner,
    cell_keys: &[(u16, u16, u32, u32)],
    group_count: usize,
) -> Result<(Box<[u16]>, Vec<(u32, u32)>, Vec<(u32, u32)>), ()> {
    // `"*"` (ANY_KEY) is out of range here: the flow index keeps it apart.
    let mut src_used = vec![false; group_count];
    let mut dst_used = vec![false; group_count];
    for &(d, s, _, _) in cell_keys {
        if let Some(u) = dst_used.get_mut(usize::from(d)) {
            *u = true;
        }
        if let Some(u) = src_used.get_mut(usize::from(s)) {
            *u = true;
        }
    }
    struct Lists {
        ids: HashMap<Vec<u16>, u32>,
        ranges: Vec<(u32, u32)>,
    }
    let mut keys: Vec<u16> = Vec::new();
    let mut scratch: Vec<u16> = Vec::new();
    let mut intern =
        |members: &[GroupId], used: &[bool], lists: &mut Lists| -> Result<((u32, u32), u32), ()> {
            scratch.clear();
            scratch.extend(
                members
                    .iter()
                    .filter(|g| used.get(usize::from(g.0)).copied().unwrap_or(false))
                    .map(|g| g.0),
            );
            if let Some(&id) = lists.ids.get(&scratch) {
                let range = lists.ranges.get(id as usize).copied().ok_or(())?;
                return Ok((range, id));
            }
            let id = u32::try_from(lists.ranges.len()).map_err(|_| ())?;
            let range = (
                u32::try_from(keys.len()).map_err(|_| ())?,
                u32::try_from(scratch.len()).map_err(|_| ())?,
            );
            keys.extend_from_slice(&scratch);
            lists.ranges.push(range);
            lists.ids.insert(scratch.clone(), id);
            Ok((range, id))
        };
    let mut src_lists = Lists {
        ids: HashMap::new(),
        ranges: Vec::new(),
    };
    let mut dst_lists = Lists {
        ids: HashMap::new(),
        ranges: Vec::new(),
    };
    for set in &mut interner.sets {
        let start = set.start as usize;
        let members = interner
            .members
            .get(start..start + set.len as usize)
            .unwrap_or(&[]);
        (set.src_keys, set.src_list) = intern(members, &src_used, &mut src_lists)?;
        (set.dst_keys, set.dst_list) = intern(members, &dst_used, &mut dst_lists)?;
    }
    Ok((keys.into_boxed_slice(), src_lists.ranges, dst_lists.ranges))
}

fn insert(
    v4: &mut PrefixMap<Ipv4Net, Endpoint>,
    v6: &mut PrefixMap<Ipv6Net, Endpoint>,
    net: IpNet,
    ep: Endpoint,
) {
    match net {
        IpNet::V4(n) => {
            v4.insert(n, ep);
        }
        IpNet::V6(n) => {
            v6.insert(n, ep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(policy: &str, inventory: &str) -> PolicySnapshot {
        let p = crate::load_policy_str(policy, "p.yaml").unwrap();
        let i = crate::load_inventory_str(inventory, "i.yaml").unwrap();
        crate::compile(&p.policy, &i, 1).unwrap()
    }

    /// The hashing path (no plan) decides exactly as the planned one, with `"*"` cells
    /// both folded into group cells and kept apart (more than `MERGE_LIMIT` rules).
    #[test]
    fn unplanned_flows_decide_as_planned() {
        let mut inv =
            String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
        for i in 0..12 {
            inv.push_str(&format!(
                "  - {{name: w{i}, namespace: n{}, labels: {{app: a{}, tier: t{}}}, ips: [10.0.0.{}]}}\n",
                i % 2,
                i % 4,
                i % 3,
                i + 1
            ));
        }
        let mut pol = String::from(
            "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: t}\nspec:\n  mode: monitor\n  groups:\n",
        );
        let names = ["a0", "a1", "a2", "a3", "t0", "t1", "t2", "n0", "n1", "out"];
        for n in &names[..4] {
            pol.push_str(&format!("    {n}: {{selector: {{app: {n}}}}}\n"));
        }
        for n in &names[4..7] {
            pol.push_str(&format!(
                "    {n}: {{selector: {{tier: {n}}}, mode: protect}}\n"
            ));
        }
        pol.push_str("    n0: {namespaces: [n0]}\n    n1: {namespaces: [n1]}\n");
        pol.push_str("    out: {cidrs: [0.0.0.0/0]}\n  rules:\n");
        let peers = ["a0", "a1", "t0", "t2", "n1", "out", "*"];
        let actions = ["allow", "deny", "alert", "allow"];
        let apps = [
            "",
            ", app: http",
            ", app: redis",
            ", app: udp",
            ", app: dns",
        ];
        let mut r = 0;
        for (i, from) in peers.iter().enumerate() {
            for (j, to) in peers.iter().enumerate() {
                // Many "*" rules, so that some "*" cells exceed MERGE_LIMIT.
                let copies = if *from == "*" || *to == "*" { 40 } else { 1 };
                for k in 0..copies {
                    let port = 1 + ((i * 7 + j * 3 + k) % 9) as u16 * 100;
                    let ports = match (i + j + k) % 3 {
                        0 => String::new(),
                        1 => format!(", ports: [{port}]"),
                        _ => format!(", ports: [\"{port}-{}\"]", port + 150),
                    };
                    pol.push_str(&format!(
                        "    - {{id: r{r}, from: [\"{from}\"], to: [\"{to}\"]{ports}{}, action: {}{}}}\n",
                        apps[(i + k) % apps.len()],
                        actions[(j + k) % actions.len()],
                        if k % 5 == 0 { ", capture: true" } else { "" },
                    ));
                    r += 1;
                }
            }
        }
        let planned = snapshot(&pol, &inv);
        let mut hashed = snapshot(&pol, &inv);
        hashed.flow_index.forget_plans();
        let addrs: Vec<IpAddr> = (1..=13)
            .map(|i| IpAddr::from([10, 0, 0, i]))
            .chain([IpAddr::from([8, 8, 8, 8]), "2001:db8::1".parse().unwrap()])
            .collect();
        let apps = [
            None,
            Some(AppProto::Http),
            Some(AppProto::Redis),
            Some(AppProto::Dns),
        ];
        let mut by_rule = 0;
        for &a in &addrs {
            for &b in &addrs {
                for port in [1, 100, 150, 250, 401, 800, 9999] {
                    for t in [Transport::Tcp, Transport::Udp, Transport::Icmp] {
                        for app in apps {
                            let (s1, d1) = (planned.resolve(a), planned.resolve(b));
                            let (s2, d2) = (hashed.resolve(a), hashed.resolve(b));
                            let x = planned.judge_flow(&s1, &d1, port, t, app);
                            let y = hashed.judge_flow(&s2, &d2, port, t, app);
                            assert_eq!(x, y, "{a} -> {b}:{port} {t:?} {app:?}");
                            by_rule += usize::from(x.rule.is_some());
                        }
                    }
                }
            }
        }
        assert!(by_rule > 1000, "{by_rule}");
    }
}
