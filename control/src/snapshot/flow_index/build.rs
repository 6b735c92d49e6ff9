//! Building the [`FlowIndex`]: each cell's rules swept into port-interval tables per
//! (transport, app class), the tables packed into node trees, slots and cold records,
//! and the plans of which cells each pair of endpoint classes reads.

use std::collections::BTreeMap;

use proto_parsers::AppProto;

use super::{
    ANY_KEY, APPS, CAPTURE, CLASS_GENERIC, CLASS_NONE, CellSlot, FANOUT, FROM_ANY, FlatMap,
    FlowIndex, GENERIC_APP, HAS_ANY_ANY, HAS_DST_ANY, HAS_SRC_ANY, ID_LIMIT, ID_MASK, ID_SHIFT,
    INLINE, MAX_PLAN_ENTRIES, MAX_PLAN_PAIRS, MERGE_LIMIT, NO_TABLE, NOTHING, Node, OFFSET_MASK,
    PlanEntry, Plans, RANK_ALERT, RANK_ALLOW, RANK_ALLOW_L7, RANK_DENY, RANK_NONE, RANK_SHIFT,
    Summary, TABLE_BITS, TO_ANY, TRANSPORTS, app_class, cell_key, table_bit, transport_class,
};
use crate::rule::{CompiledRule, Transport};
use crate::vocab::{Action, Severity};

/// What one rule contributes to a summary.
fn contribution(rule: &CompiledRule, id: u32) -> Summary {
    let rank = match (rule.action, rule.l7.is_some()) {
        (Action::Deny, false) => RANK_DENY,
        (Action::Alert, false) => RANK_ALERT,
        (Action::Allow, false) => RANK_ALLOW,
        (Action::Allow, true) => RANK_ALLOW_L7,
        // Judges transactions, not flows; only its capture counts here.
        (Action::Deny | Action::Alert, true) => RANK_NONE,
    };
    let severity = match rule.severity {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    };
    let decides = if rank == RANK_NONE {
        NOTHING
    } else {
        let from_any = if rule.from.is_none() { FROM_ANY } else { 0 };
        let to_any = if rule.to.is_none() { TO_ANY } else { 0 };
        (rank << RANK_SHIFT) | ((id & ID_MASK) << ID_SHIFT) | from_any | to_any | severity
    };
    if rule.capture {
        decides | CAPTURE
    } else {
        decides
    }
}

/// Folds `b` into `a`.
#[inline]
fn combine(a: Summary, b: Summary) -> Summary {
    (a & !CAPTURE).min(b & !CAPTURE) | ((a | b) & CAPTURE)
}

/// Scratch space for cutting the port space of one set of rules into intervals.
#[derive(Default)]
struct Sweep {
    /// (port, starts (else ends), contribution)
    events: Vec<(u32, bool, Summary)>,
    /// Contributions of the ranges covering the current port, without [`CAPTURE`].
    active: BTreeMap<Summary, u32>,
    /// Interval starts and summaries, the result.
    out: Vec<(u16, Summary)>,
}

impl Sweep {
    /// Fills `out` with the intervals of `rules` (`ports` false: rules with ports do
    /// not match at all, as for ICMP).
    fn run<'r>(&mut self, rules: impl Iterator<Item = (u32, &'r CompiledRule)>, ports: bool) {
        self.events.clear();
        self.active.clear();
        self.out.clear();
        let mut base = NOTHING;
        for (id, rule) in rules {
            let c = contribution(rule, id);
            if c == NOTHING {
                continue;
            }
            if rule.ports.is_empty() {
                base = combine(base, c);
            } else if ports {
                for &(lo, hi) in rule.ports.iter().filter(|(lo, hi)| lo <= hi) {
                    self.events.push((u32::from(lo), true, c));
                    if hi < u16::MAX {
                        self.events.push((u32::from(hi) + 1, false, c));
                    }
                }
            }
        }
        self.out.push((0, base));
        self.events.sort_unstable_by_key(|e| e.0);
        let mut captures = 0u32;
        let mut i = 0;
        while let Some(&(pos, _, _)) = self.events.get(i) {
            while let Some(&(p, starts, c)) = self.events.get(i) {
                if p != pos {
                    break;
                }
                let plain = c & !CAPTURE;
                let has_capture = u32::from(c & CAPTURE != 0);
                if starts {
                    *self.active.entry(plain).or_insert(0) += 1;
                    captures += has_capture;
                } else {
                    if let Some(n) = self.active.get_mut(&plain) {
                        *n -= 1;
                        if *n == 0 {
                            self.active.remove(&plain);
                        }
                    }
                    captures = captures.saturating_sub(has_capture);
                }
                i += 1;
            }
            let mut sum = combine(base, self.active.keys().next().copied().unwrap_or(NOTHING));
            if captures > 0 {
                sum |= CAPTURE;
            }
            // Positions stay below 65536: a range ending at 65535 has no end event.
            let Ok(pos) = u16::try_from(pos) else { break };
            match self.out.last_mut() {
                Some(last) if last.0 == pos => last.1 = sum,
                Some(last) if last.1 == sum => {}
                _ => self.out.push((pos, sum)),
            }
        }
    }
}

/// The node trees under construction.
#[derive(Default)]
struct Nodes {
    nodes: Vec<Node>,
    /// Scratch: the entries of the level being grouped into nodes.
    level: Vec<(u32, u32)>,
}

impl Nodes {
    /// The word for the intervals in `out`: the summary inline, or the root of a new
    /// tree of nodes.
    fn table(&mut self, out: &[(u16, Summary)]) -> Result<u32, ()> {
        match out {
            [] => return Ok(INLINE | NOTHING),
            &[(_, single)] => return Ok(INLINE | single),
            _ => {}
        }
        self.level.clear();
        self.level.extend(
            out.iter()
                .map(|&(bound, sum)| (u32::from(bound), INLINE | sum)),
        );
        // Group the entries eight by eight into nodes, then those nodes' first bounds
        // into parents, until one node remains.
        loop {
            let mut parents = Vec::with_capacity(self.level.len().div_ceil(FANOUT));
            for group in self.level.chunks(FANOUT) {
                let mut node = Node {
                    bounds: [u32::MAX; FANOUT],
                    values: [INLINE | NOTHING; FANOUT],
                };
                for (i, &(bound, value)) in group.iter().enumerate() {
                    if let (Some(b), Some(v)) = (node.bounds.get_mut(i), node.values.get_mut(i)) {
                        *b = bound;
                        *v = value;
                    }
                }
                let index = u32::try_from(self.nodes.len()).map_err(|_| ())?;
                if index & INLINE != 0 {
                    return Err(());
                }
                self.nodes.push(node);
                parents.push((group.first().map_or(0, |&(b, _)| b), index));
            }
            match parents.as_slice() {
                &[(_, root)] => return Ok(root),
                _ => self.level = parents,
            }
        }
    }
}

impl FlowIndex {
    /// `cells`: (destination key, source key, rule ids ascending) of every cell.
    /// Fails only if the tables outgrow their 29-bit offsets or rule ids their 22 bits.
    ///
    /// A flow matches the rules of the cells (d, s) for d among the destination's keys
    /// and `"*"`, s among the source's and `"*"`. Probing all of them costs
    /// (|D| + 1)(|S| + 1) lookups; instead the tables of a cell (d, s) of two groups also
    /// hold the small cells (d, `"*"`), (`"*"`, s) and (`"*"`, `"*"`), and its slot says
    /// so in its flags. [`FlowIndex::judge`] probes the (d, s) cells and only then the
    /// `"*"` cells that no probed one already covered: usually |D| x |S| lookups.
    pub(in crate::snapshot) fn build<'c>(
        rules: &[CompiledRule],
        cells: impl Iterator<Item = (u16, u16, &'c [u32])>,
        seed: u64,
    ) -> Result<FlowIndex, ()> {
        if rules.len() >= ID_LIMIT as usize {
            return Err(());
        }
        let cells: Vec<(u16, u16, &[u32])> = cells.collect();
        let by_key: foldhash::HashMap<(u16, u16), &[u32]> =
            cells.iter().map(|&(d, s, r)| ((d, s), r)).collect();
        let constituent = |d: u16, s: u16| by_key.get(&(d, s)).copied().unwrap_or(&[]);
        let mut nodes = Nodes::default();
        let mut cold: Vec<u32> = Vec::new();
        let mut sweep = Sweep::default();
        let mut items: Vec<(u32, u32)> = Vec::new();
        let mut slots: Vec<CellSlot> = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut cell: Vec<(u32, &CompiledRule)> = Vec::new();
        let mut words: Vec<u32> = Vec::new();
        for &(d, s, refs) in &cells {
            ids.clear();
            ids.extend_from_slice(refs);
            let mut flags = 0;
            let mut fold = |refs: &[u32], flag: u32| {
                if refs.len() <= MERGE_LIMIT {
                    ids.extend_from_slice(refs);
                    flags |= flag;
                }
            };
            if d != ANY_KEY && s != ANY_KEY {
                fold(constituent(d, ANY_KEY), HAS_DST_ANY);
                fold(constituent(ANY_KEY, s), HAS_SRC_ANY);
            }
            if d != ANY_KEY || s != ANY_KEY {
                fold(constituent(ANY_KEY, ANY_KEY), HAS_ANY_ANY);
            }
            ids.sort_unstable();
            ids.dedup();
            cell.clear();
            cell.extend(
                ids.iter()
                    .filter_map(|&r| rules.get(r as usize).map(|rule| (r, rule))),
            );

            // NONE of TCP and UDP go to the slot; every other table to the cold record.
            let mut index = [NO_TABLE; TABLE_BITS];
            let mut set_index = |bit: u32, k: u8| {
                if let Some(slot) = index.get_mut(bit as usize) {
                    *slot = k;
                }
            };
            words.clear();
            let mut slot = CellSlot {
                at: 0,
                tcp: INLINE | NOTHING,
                udp: INLINE | NOTHING,
            };
            for t in TRANSPORTS {
                let tc = transport_class(t);
                let ports = matches!(t, Transport::Tcp | Transport::Udp);
                let matching = |app: Option<AppProto>| {
                    cell.iter()
                        .copied()
                        .filter(move |(_, r)| r.matches_transport_app(t, app))
                };
                sweep.run(matching(None), ports);
                let none = nodes.table(&sweep.out)?;
                match t {
                    Transport::Tcp => slot.tcp = none,
                    Transport::Udp => slot.udp = none,
                    Transport::Icmp | Transport::Other(_) => {
                        set_index(
                            table_bit(tc, CLASS_NONE),
                            u8::try_from(words.len()).map_err(|_| ())?,
                        );
                        words.push(none);
                    }
                }

                sweep.run(matching(Some(GENERIC_APP)), ports);
                let generic_k = u8::try_from(words.len()).map_err(|_| ())?;
                words.push(nodes.table(&sweep.out)?);
                set_index(table_bit(tc, CLASS_GENERIC), generic_k);
                for app in APPS {
                    let differs = cell.iter().any(|(_, r)| {
                        r.matches_transport_app(t, Some(app))
                            != r.matches_transport_app(t, Some(GENERIC_APP))
                    });
                    let k = if differs {
                        sweep.run(matching(Some(app)), ports);
                        let k = u8::try_from(words.len()).map_err(|_| ())?;
                        words.push(nodes.table(&sweep.out)?);
                        k
                    } else {
                        generic_k
                    };
                    set_index(table_bit(tc, app_class(app)), k);
                }
            }
            let at = u32::try_from(cold.len()).map_err(|_| ())?;
            if at >= OFFSET_MASK {
                return Err(());
            }
            let (fours, _) = index.as_chunks::<4>();
            cold.extend(fours.iter().map(|&b| u32::from_le_bytes(b)));
            cold.extend_from_slice(&words);
            slot.at = at | flags;
            items.push((cell_key(d, s), u32::try_from(slots.len()).map_err(|_| ())?));
            slots.push(slot);
        }
        Ok(FlowIndex {
            cells: FlatMap::build(&items, seed),
            slots: slots.into_boxed_slice(),
            plans: None,
            nodes: nodes.nodes.into_boxed_slice(),
            cold: cold.into_boxed_slice(),
            src_any: cells.iter().any(|&(_, s, _)| s == ANY_KEY),
            dst_any: cells.iter().any(|&(d, _, _)| d == ANY_KEY),
        })
    }

    /// Precomputes [`FlowIndex::visit_cells`] for every pair of a destination key list
    /// and a source key list (what endpoints resolve to), unless there are too many:
    /// then flows take the hashing path.
    pub(in crate::snapshot) fn plan<'l>(
        &mut self,
        dst_lists: &[&'l [u16]],
        src_lists: &[&'l [u16]],
    ) {
        let pairs = dst_lists.len().saturating_mul(src_lists.len());
        if pairs > MAX_PLAN_PAIRS {
            return;
        }
        let mut starts = Vec::with_capacity(pairs + 1);
        let mut entries: Vec<PlanEntry> = Vec::new();
        for dst in dst_lists {
            for src in src_lists {
                let Ok(start) = u32::try_from(entries.len()) else {
                    return;
                };
                starts.push(start);
                self.visit_cells(src, dst, |d, s, slot| {
                    if let Some(&slot) = self.slots.get(slot as usize) {
                        entries.push(PlanEntry {
                            slot,
                            key: cell_key(s, d),
                        });
                    }
                });
                if entries.len() > MAX_PLAN_ENTRIES {
                    return;
                }
            }
        }
        let Ok(end) = u32::try_from(entries.len()) else {
            return;
        };
        starts.push(end);
        self.plans = Some(Plans {
            src_lists: u32::try_from(src_lists.len()).unwrap_or(0),
            starts: starts.into_boxed_slice(),
            entries: entries.into_boxed_slice(),
        });
    }

    /// Drops the plans, so that every flow takes the hashing path (tests compare both).
    #[cfg(test)]
    pub(in crate::snapshot) fn forget_plans(&mut self) {
        self.plans = None;
    }
}
