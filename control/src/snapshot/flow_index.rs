//! The L4 rule index behind [`super::PolicySnapshot::judge_flow`].
//!
//! A flow decision needs, over all rules that match the flow, only the lowest rule id of
//! the highest-priority kind (deny, then alert, then allow, then allow with L7 matchers)
//! and whether any matching rule captures. Both combine across rules by a minimum and an
//! or, so each (destination key, source key) *cell* of the rule index precomputes them:
//!
//! - per transport class (TCP, UDP, anything else) and *app class* (`app` not known yet,
//!   `NONE`; an app that no rule of the cell names specifically, `GENERIC`; or one that
//!   some rule does), which of the cell's rules match is fixed, and only the port
//!   varies;
//! - the port space is cut at the rules' range boundaries into intervals, each holding
//!   one [`Summary`] (a `u32` ordered by rank then rule id, so `min` picks the winner,
//!   plus the rule's severity, whether it names `"*"`, and a capture bit). Adjacent
//!   intervals with the same summary are merged. A table of one interval (rules without
//!   ports) is a single word; a longer one is a tree of [`Node`]s, each one cache line
//!   holding 8 bounds and 8 summaries (or children), searched without branches.
//!
//! A small hash map finds a cell's 16-byte slot, which holds what a new flow needs (`app`
//! not known yet) over TCP and UDP; the rest sits in a *cold* record. So the common
//! lookup reads the slot and at most one node:
//!
//! ```text
//! slot:        [key] [cold record | flags] [TCP word] [UDP word]
//! cold record: [36 bytes: per (transport, app class) the index of its word, 0xff none]
//!              [one word per table]
//! word:        INLINE | summary    (one interval)
//!              node index          (a tree of nodes)
//! ```
//!
//! An app class without a table of its own points at the `GENERIC` word, so a lookup
//! never needs a second try.
//!
//! Which cells a flow reads depends only on the lists of groups (that rules name) of its
//! two endpoints, so it is precomputed per pair of such lists ([`FlowIndex::plan`]) as a
//! short array of slot copies: a flow reads its plan and, per cell, at most a node or
//! two, however many rules a cell holds. Without a plan (too many list pairs) a flow
//! finds the cells by hashing, about one probe per (destination group, source group)
//! pair (see [`FlowIndex::build`] for how the `"*"` cells are folded in). Nothing is
//! allocated either way.
//!
//! The tables are derived from [`crate::rule::CompiledRule::matches_transport_app`]
//! and [`crate::rule::CompiledRule::matches_port`], the two halves of `matches_l4`, so
//! the index decides exactly as a scan of the cell's rules would. Building them is in
//! `flow_index/build.rs`; this file holds the layout and the lookups.

mod build;

use proto_parsers::AppProto;

use super::ANY_KEY;
use super::flat::{FlatMap, FlatValue};
use crate::rule::Transport;
use crate::vocab::Severity;

/// The best match of a set of rules, ordered by rank, then rule id:
/// `rank << 26 | rule id << 4 | TO_ANY | FROM_ANY | severity`, with [`CAPTURE`] or-ed
/// in. The bits below the id are the rule's, so they never change the order. Bit 31 is
/// left free for [`INLINE`].
pub(super) type Summary = u32;

pub(super) const CAPTURE: u32 = 1 << 30;
const RANK_SHIFT: u32 = 26;
const ID_SHIFT: u32 = 4;
/// The rule's `from` is `"*"`.
const FROM_ANY: u32 = 1 << 2;
/// The rule's `to` is `"*"`.
const TO_ANY: u32 = 1 << 3;
const ID_MASK: u32 = (1 << 22) - 1;
/// Rule ids must stay below this (checked when building; `MAX_RULES` is far below).
const ID_LIMIT: u32 = ID_MASK;
pub(super) const RANK_DENY: u32 = 0;
pub(super) const RANK_ALERT: u32 = 1;
pub(super) const RANK_ALLOW: u32 = 2;
pub(super) const RANK_ALLOW_L7: u32 = 3;
/// Nothing decides (a deny/alert rule with L7 matchers may still set [`CAPTURE`]).
pub(super) const RANK_NONE: u32 = 4;
/// No match at all: orders after every real match.
pub(super) const NOTHING: Summary = (RANK_NONE << RANK_SHIFT) | (ID_MASK << ID_SHIFT);

/// A table word or node entry holding a summary (else: a node index).
const INLINE: u32 = 1 << 31;

/// The parts of a summary that decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Winner {
    pub(super) rank: u32,
    pub(super) rule: u32,
    pub(super) severity: Severity,
    /// The rule's `from` is `"*"`.
    pub(super) from_any: bool,
    /// The rule's `to` is `"*"`.
    pub(super) to_any: bool,
}

/// `None` when nothing decides.
#[inline]
pub(super) fn winner(s: Summary) -> Option<Winner> {
    let rank = (s >> RANK_SHIFT) & 0x7;
    if rank >= RANK_NONE {
        return None;
    }
    let severity = match s & 0x3 {
        0 => Severity::Low,
        1 => Severity::Medium,
        2 => Severity::High,
        _ => Severity::Critical,
    };
    Some(Winner {
        rank,
        rule: (s >> ID_SHIFT) & ID_MASK,
        severity,
        from_any: s & FROM_ANY != 0,
        to_any: s & TO_ANY != 0,
    })
}

/// Representatives of the transport classes (`Icmp` stands for every non-TCP/UDP
/// protocol: rules cannot tell them apart).
const TRANSPORTS: [Transport; 3] = [Transport::Tcp, Transport::Udp, Transport::Icmp];

const CLASS_NONE: u32 = 0;
const CLASS_GENERIC: u32 = 1;
const CLASSES: u32 = 12;

/// Every application protocol a flow can be classified as.
const APPS: [AppProto; 10] = [
    AppProto::Http,
    AppProto::Http2,
    AppProto::Grpc,
    AppProto::Postgres,
    AppProto::Mysql,
    AppProto::Redis,
    AppProto::Dns,
    AppProto::Tls,
    AppProto::Tcp,
    AppProto::Udp,
];

/// `GENERIC` stands for the apps that no rule of a cell names specifically: `tcp`/`udp`
/// rules match every app on their transport, so a flow classified `tcp` sees exactly
/// the rules every classified flow sees.
const GENERIC_APP: AppProto = AppProto::Tcp;

#[inline]
const fn app_class(app: AppProto) -> u32 {
    2 + match app {
        AppProto::Http => 0,
        AppProto::Http2 => 1,
        AppProto::Grpc => 2,
        AppProto::Postgres => 3,
        AppProto::Mysql => 4,
        AppProto::Redis => 5,
        AppProto::Dns => 6,
        AppProto::Tls => 7,
        AppProto::Tcp => 8,
        AppProto::Udp => 9,
    }
}

#[inline]
const fn transport_class(t: Transport) -> u32 {
    match t {
        Transport::Tcp => 0,
        Transport::Udp => 1,
        Transport::Icmp | Transport::Other(_) => 2,
    }
}

/// The bit of a (transport, app class) table in a cold record's index.
#[inline]
const fn table_bit(transport: u32, class: u32) -> u32 {
    transport * CLASSES + class
}

#[inline]
fn cell_key(dst: u16, src: u16) -> u32 {
    (u32::from(dst) << 16) | u32::from(src)
}

/// Table bits per cold record: 3 transports x 12 app classes.
const TABLE_BITS: usize = 36;
/// Words of a cold record's index bytes.
const INDEX_WORDS: usize = TABLE_BITS / 4;
const NO_TABLE: u8 = 0xff;

/// A constituent cell with at most this many rules is folded into the records that
/// cover it (see [`FlowIndex::build`]); a larger one keeps its own record only, so that
/// folding never multiplies the index size by more than a constant.
const MERGE_LIMIT: usize = 32;

/// Flags of a slot, in the top bits of its cold record offset: the cell's tables
/// already hold the rules of `(d, "*")`, `("*", s)`, `("*", "*")` respectively.
const HAS_DST_ANY: u32 = 1 << 31;
const HAS_SRC_ANY: u32 = 1 << 30;
const HAS_ANY_ANY: u32 = 1 << 29;
const OFFSET_MASK: u32 = (1 << 29) - 1;

/// Entries per node.
const FANOUT: usize = 8;

/// One cache line of a port table: ascending bounds (the first is at most the port
/// searched; unused ones `u32::MAX`), and per bound either `INLINE | summary` for the
/// interval that starts there or the index of the child node that covers it.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Node {
    bounds: [u32; FANOUT],
    values: [u32; FANOUT],
}

impl Node {
    /// The entry of the last bound <= `port` (the first bound is <= it by construction).
    #[inline]
    fn find(&self, port: u32) -> u32 {
        let b = &self.bounds;
        let below = |i: usize| usize::from(b.get(i).is_some_and(|&x| x <= port));
        let mut i = 4 * below(4);
        i += 2 * below(i + 2);
        i += below(i + 1);
        self.values.get(i).copied().unwrap_or(INLINE | NOTHING)
    }
}

/// What the cell map holds per cell.
#[derive(Clone, Copy, Debug)]
struct CellSlot {
    /// Offset of the cold record, or-ed with the `HAS_*` flags.
    at: u32,
    /// The table words of TCP and UDP for flows whose app is not known yet.
    tcp: u32,
    udp: u32,
}

impl FlatValue for CellSlot {
    const EMPTY: Self = CellSlot {
        at: u32::MAX,
        tcp: 0,
        udp: 0,
    };
    #[inline]
    fn is_empty(&self) -> bool {
        self.at == u32::MAX
    }
}

#[derive(Debug)]
pub(super) struct FlowIndex {
    /// (destination key, source key) -> index of the cell's slot.
    cells: FlatMap<u32, u32>,
    slots: Box<[CellSlot]>,
    /// The cells to read per (destination key list, source key list), if small enough.
    plans: Option<Plans>,
    nodes: Box<[Node]>,
    cold: Box<[u32]>,
    /// Some cell has `"*"` as source (destination).
    src_any: bool,
    dst_any: bool,
}

impl FlowIndex {
    /// The summary of a table word for `port`.
    #[inline]
    fn word(&self, mut word: u32, port: u16) -> Summary {
        if word & INLINE != 0 {
            return word & !INLINE;
        }
        let port = u32::from(port);
        // Each level narrows the port range; the depth is bounded by the node count.
        for _ in 0..self.nodes.len() {
            let Some(node) = self.nodes.get(word as usize) else {
                break;
            };
            word = node.find(port);
            if word & INLINE != 0 {
                return word & !INLINE;
            }
        }
        NOTHING
    }

    /// The table word of a cell for the flow (`None`: app not known yet).
    #[inline]
    fn cell_word(&self, slot: CellSlot, transport: u32, app: Option<AppProto>) -> u32 {
        match (app, transport) {
            (None, 0) => slot.tcp,
            (None, 1) => slot.udp,
            _ => {
                let cold = (slot.at & OFFSET_MASK) as usize;
                let bit = table_bit(transport, app.map_or(CLASS_NONE, app_class)) as usize;
                let index = self.cold.get(cold + bit / 4).copied().unwrap_or(u32::MAX);
                // Truncation intended: one byte of the index word.
                let k = (index >> (8 * (bit % 4))) as u8;
                if k == NO_TABLE {
                    return INLINE | NOTHING;
                }
                self.cold
                    .get(cold + INDEX_WORDS + usize::from(k))
                    .copied()
                    .unwrap_or(INLINE | NOTHING)
            }
        }
    }

    /// Calls `visit(d, s, slot)` for the cells a flow must read: (d, s) for d in
    /// `dst_groups` and `"*"`, s in `src_groups` and `"*"` (groups ascending, only those
    /// some cell has on that side), except the `"*"` cells that a visited cell's tables
    /// already hold (its flags say so).
    fn visit_cells(
        &self,
        src_groups: &[u16],
        dst_groups: &[u16],
        mut visit: impl FnMut(u16, u16, u32),
    ) {
        let mut probe = |d: u16, s: u16| -> u32 {
            let Some(k) = self.cells.get(cell_key(d, s)) else {
                return 0;
            };
            visit(d, s, k);
            self.slots
                .get(k as usize)
                .map_or(0, |slot| slot.at & !OFFSET_MASK)
        };
        let (src_any, dst_any) = (self.src_any, self.dst_any);
        if src_groups.len() > 64 {
            // Too many to track which "*" cells were covered: visit them all (a cell
            // folded twice changes nothing).
            let srcs = || src_groups.iter().copied().chain(src_any.then_some(ANY_KEY));
            for d in dst_groups.iter().copied().chain(dst_any.then_some(ANY_KEY)) {
                for s in srcs() {
                    probe(d, s);
                }
            }
            return;
        }
        // Source groups whose ("*", s) cell a visited cell already covered.
        let mut src_covered = 0u64;
        let mut any_any_covered = 0;
        for &d in dst_groups {
            let mut dst_any_covered = 0;
            for (i, &s) in src_groups.iter().enumerate() {
                let flags = probe(d, s);
                dst_any_covered |= flags;
                src_covered |=
                    u64::from((flags & HAS_SRC_ANY) >> HAS_SRC_ANY.trailing_zeros()) << (i & 63);
                any_any_covered |= flags;
            }
            if src_any && dst_any_covered & HAS_DST_ANY == 0 {
                any_any_covered |= probe(d, ANY_KEY);
            }
        }
        if dst_any {
            for (i, &s) in src_groups.iter().enumerate() {
                if src_covered & (1 << (i & 63)) == 0 {
                    any_any_covered |= probe(ANY_KEY, s);
                }
            }
            if src_any && any_any_covered & HAS_ANY_ANY == 0 {
                probe(ANY_KEY, ANY_KEY);
            }
        }
    }

    /// The precomputed cells for the key lists `dst_list` x `src_list`, if planned.
    #[inline]
    fn planned(&self, dst_list: u32, src_list: u32) -> Option<&[PlanEntry]> {
        let plans = self.plans.as_ref()?;
        if src_list >= plans.src_lists {
            return None;
        }
        let pair = dst_list as usize * plans.src_lists as usize + src_list as usize;
        let start = *plans.starts.get(pair)? as usize;
        let end = *plans.starts.get(pair + 1)? as usize;
        plans.entries.get(start..end)
    }

    /// Combines every cell (d, s) for d in `dst_groups` and `"*"`, s in `src_groups` and
    /// `"*"` (see [`FlowIndex::visit_cells`]); `dst_list`/`src_list` name those lists
    /// for [`FlowIndex::plan`]. Returns the winning summary and, of the cells it won in,
    /// the smallest source key and destination key: for a rule that names groups, the
    /// first of the endpoint's groups that it names (the cells holding a rule are the
    /// pairs of its groups among the endpoints', each visited or covered).
    #[inline]
    pub(super) fn judge(
        &self,
        (src_groups, src_list): (&[u16], u32),
        (dst_groups, dst_list): (&[u16], u32),
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
    ) -> (Summary, u16, u16) {
        let t = transport_class(transport);
        let best = match self.planned(dst_list, src_list) {
            Some(plan) => {
                let mut best = Best::new();
                for e in plan {
                    let v = self.word(self.cell_word(e.slot, t, app), dport);
                    best.fold(v, e.key);
                }
                best
            }
            None => self.judge_unplanned(src_groups, dst_groups, dport, t, app),
        };
        // Truncations intended: the packed fields.
        (
            (best.by_src >> 32) as u32 | best.capture,
            best.by_src as u16,
            best.by_dst as u16,
        )
    }

    /// [`FlowIndex::judge`] without a plan: finds the cells by hashing.
    #[inline(never)]
    fn judge_unplanned(
        &self,
        src_groups: &[u16],
        dst_groups: &[u16],
        dport: u16,
        t: u32,
        app: Option<AppProto>,
    ) -> Best {
        let mut best = Best::new();
        self.visit_cells(src_groups, dst_groups, |d, s, slot| {
            if let Some(&slot) = self.slots.get(slot as usize) {
                let v = self.word(self.cell_word(slot, t, app), dport);
                best.fold(v, cell_key(s, d));
            }
        });
        best
    }
}

/// Beyond this many (destination list, source list) pairs, or this many planned cells,
/// no plans are made.
const MAX_PLAN_PAIRS: usize = 1 << 18;
const MAX_PLAN_ENTRIES: usize = 1 << 20;

/// The cells to read for each pair of key lists.
#[derive(Debug)]
struct Plans {
    src_lists: u32,
    /// Per pair (destination list major), where its entries start; one more at the end.
    starts: Box<[u32]>,
    entries: Box<[PlanEntry]>,
}

#[derive(Clone, Copy, Debug)]
struct PlanEntry {
    /// A copy of the cell's slot.
    slot: CellSlot,
    /// `cell_key(s, d)`.
    key: u32,
}

/// The best summary so far and, of the cells it came from, the smallest source key
/// and, independently, the smallest destination key.
struct Best {
    by_src: u64,
    by_dst: u64,
    capture: u32,
}

impl Best {
    fn new() -> Self {
        Best {
            by_src: (u64::from(NOTHING) << 32) | 0xFFFF,
            by_dst: (u64::from(NOTHING) << 32) | 0xFFFF,
            capture: 0,
        }
    }

    /// Folds in the summary of cell `key` (`cell_key(s, d)`).
    #[inline]
    fn fold(&mut self, v: Summary, key: u32) {
        self.capture |= v & CAPTURE;
        let v = u64::from(v & !CAPTURE) << 32;
        self.by_src = self.by_src.min(v | u64::from(key >> 16));
        self.by_dst = self.by_dst.min(v | u64::from(key & 0xFFFF));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_order_by_rank_then_rule() {
        let s = |rank: u32, id: u32| (rank << RANK_SHIFT) | (id << ID_SHIFT) | 3;
        assert!(s(RANK_DENY, 900) < s(RANK_ALERT, 1));
        assert!(s(RANK_ALLOW, 5) < s(RANK_ALLOW, 6));
        assert!(s(RANK_ALLOW_L7, ID_LIMIT - 1) < NOTHING);
        assert_eq!(winner(NOTHING), None);
        assert_eq!(winner(NOTHING | CAPTURE), None);
        assert_eq!(
            winner(s(RANK_ALERT, 7) | CAPTURE),
            Some(Winner {
                rank: RANK_ALERT,
                rule: 7,
                severity: Severity::Critical,
                from_any: false,
                to_any: false,
            })
        );
        assert_eq!(NOTHING & (INLINE | CAPTURE), 0);
        assert_eq!(table_bit(2, CLASSES - 1) as usize, TABLE_BITS - 1);
    }
}
