//! The compiled L7 index, as a snapshot holds it: per (destination key, kind) tables of
//! clauses with their per-field postings, the dictionaries, and the (destination,
//! source) index of rules without L7 matchers, plus the lookups into them. `compile`
//! builds it; `eval` and `judge` read it.

use std::fmt;

use foldhash::HashMap;

use super::bits::{self, Bits, Posting};
use super::dict::{Dict, FOLD_MAX};
use super::{ANY_KEY, HeaderPairs, KINDS, MAX_FIELDS};
use crate::rule::TransportApp;
use crate::vocab::{Action, GroupId};

/// The clauses of one table that accept each id of one field, and those that accept any
/// value (the field is absent from them).
#[derive(Debug)]
pub(super) struct FieldIx {
    pub(super) wild: Bits,
    /// The clauses of each id some clause lists.
    pub(super) postings: Postings,
}

/// From a dictionary id to its row of postings.
#[derive(Debug)]
pub(super) enum Find {
    /// `rows[id]`, [`NO_ROW`] for the ids no clause lists: one load instead of a binary
    /// search (ten or so of them per HTTP decision were a tenth of its instructions). Used
    /// when the ids a table lists are dense enough among `0..=max id` (at most
    /// [`DENSE_SPREAD`] slots per listed id), which bounds its memory.
    Dense(Box<[u16]>),
    /// The listed ids, ascending, to binary-search.
    Sorted(Box<[u32]>),
}

pub(super) const NO_ROW: u16 = u16::MAX;

impl Find {
    #[inline]
    pub(super) fn row(&self, id: u32) -> Option<usize> {
        match self {
            Find::Dense(rows) => match rows.get(id as usize) {
                Some(&r) if r != NO_ROW => Some(usize::from(r)),
                _ => None,
            },
            Find::Sorted(ids) => ids.binary_search(&id).ok(),
        }
    }
}

#[derive(Debug)]
pub(super) enum Postings {
    /// Narrow tables whose listed ids fill enough of `0..=max id` (at most
    /// [`DIRECT_SPREAD`] ids per listed one): `w` words for every id of that span, indexed
    /// by the id itself (all zero for ids no clause lists): one load per id, no map to
    /// read first.
    Direct { w: usize, bits: Box<[u64]> },
    /// Other narrow tables: `w` words per listed id, back to back, in the order of `find`.
    Rows {
        find: Find,
        w: usize,
        bits: Box<[u64]>,
    },
    /// Wide tables: a posting per listed id, in the order of `find`.
    Each { find: Find, each: Box<[Posting]> },
}

impl FieldIx {
    // Called for every id of every probed field: keep it in the caller's loop.
    #[inline(always)]
    pub(super) fn or_id(&self, id: u32, out: &mut [u64]) {
        match &self.postings {
            Postings::Direct { w, bits } => {
                let i = id as usize;
                if let Some(row) = bits.get(i * w..(i + 1) * w) {
                    bits::or_into(out, row);
                }
            }
            Postings::Rows { find, w, bits } => {
                if let Some(i) = find.row(id)
                    && let Some(row) = bits.get(i * w..(i + 1) * w)
                {
                    bits::or_into(out, row);
                }
            }
            Postings::Each { find, each } => {
                if let Some(p) = find.row(id).and_then(|i| each.get(i)) {
                    p.or_into(out);
                }
            }
        }
    }

    /// `out` = the clauses that accept one of these ids (source groups).
    #[inline]
    pub(super) fn eval_ids(&self, ids: impl Iterator<Item = u32>, out: &mut [u64]) {
        for (o, w) in out.iter_mut().zip(self.wild.words().iter()) {
            *o = *w;
        }
        for id in ids {
            self.or_id(id, out);
        }
    }
}

/// A clause with the L4 part of its rule kept inline, so that checking a clause that
/// survived the bitsets reads this entry and its table's port list, never the rule.
#[derive(Debug)]
pub(super) struct Clause {
    pub(super) rule: u32,
    pub(super) action: Action,
    pub(super) capture: bool,
    pub(super) transport_app: TransportApp,
    /// The rule's ports: a range of the table's `ports`.
    pub(super) ports: (u32, u32),
    pub(super) headers: HeaderPairs,
}

#[derive(Debug)]
pub(super) struct SqlIx {
    pub(super) tables: Option<FieldIx>,
    pub(super) allow: Bits,
    pub(super) login_ok: Bits,
}

/// Up to [`MAX_CLAUSES`] clauses of one (destination key, kind).
#[derive(Debug)]
pub(super) struct Table {
    pub(super) all: Bits,
    pub(super) clauses: Box<[Clause]>,
    /// The clauses by their rule's source groups (`from: "*"`: wild); `None` when every
    /// rule has `from: "*"`.
    pub(super) src: Option<FieldIx>,
    pub(super) fields: [Option<FieldIx>; MAX_FIELDS],
    pub(super) sql: Option<SqlIx>,
    /// The clauses' port ranges, back to back.
    pub(super) ports: Box<[(u16, u16)]>,
}

/// SQL table names: exact ids, plus for a bare name the ids of the listed `schema.name`s.
#[derive(Debug)]
pub(super) struct TableDict {
    pub(super) dict: Dict,
    pub(super) qualified_by_table: HashMap<Box<[u8]>, Box<[u32]>>,
}

impl TableDict {
    pub(super) fn lookup_each(&self, name: &[u8], mut f: impl FnMut(u32)) {
        let mut buf = [0u8; FOLD_MAX];
        let Some(lower) = buf.get_mut(..name.len()) else {
            // Longer than any listed name could be hashed: only patterns could match, and
            // table names are never patterns.
            return;
        };
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        let lower = &*lower;
        if let Some(id) = self.dict.exact_id(lower) {
            f(id);
        }
        match lower.iter().rposition(|&b| b == b'.') {
            Some(dot) => {
                if let Some(id) = lower.get(dot + 1..).and_then(|t| self.dict.exact_id(t)) {
                    f(id);
                }
            }
            None => {
                if let Some(ids) = self.qualified_by_table.get(lower) {
                    ids.iter().for_each(|&id| f(id));
                }
            }
        }
    }
}

/// Rules by (destination key, source key), as the snapshot's own index, for rules without
/// L7 matchers only.
#[derive(Debug, Default)]
pub(super) struct CellIndex {
    pub(super) index: Box<[(u32, u32)]>,
    /// The destination slots whose range in `index` is not empty: one hot bitmap read
    /// instead of a cold `index` entry for each of the destination's groups that no rule
    /// names.
    pub(super) used: Box<[u64]>,
    pub(super) cells: Box<[(u16, u32, u32)]>,
    pub(super) refs: Box<[L4Ref]>,
    /// The refs' port ranges, back to back.
    pub(super) ports: Box<[(u16, u16)]>,
}

/// A rule without L7 matchers as a transaction's decision reads it: its L4 conditions
/// inline, so that the decision never loads the rule.
#[derive(Clone, Copy, Debug)]
pub(super) struct L4Ref {
    pub(super) rule: u32,
    pub(super) action: Action,
    pub(super) capture: bool,
    pub(super) transport_app: TransportApp,
    /// A range of the index's `ports`.
    pub(super) ports: (u32, u32),
}

impl CellIndex {
    /// Calls `f` with every rule of the cells (d, s), d among `dst` and `"*"`, s among
    /// `src` and `"*"`, and its ports.
    #[inline]
    pub(super) fn for_each(
        &self,
        src: &[GroupId],
        dst: &[GroupId],
        mut f: impl FnMut(&L4Ref, &[(u16, u16)]),
    ) {
        let any = self.index.len().saturating_sub(1);
        for d in dst.iter().map(|g| usize::from(g.0)).chain([any]) {
            if !bits::get(&self.used, d) {
                continue;
            }
            let cells = self
                .index
                .get(d)
                .and_then(|&(a, b)| self.cells.get(a as usize..b as usize))
                .unwrap_or(&[]);
            if cells.is_empty() {
                continue;
            }
            let mut visit = |&(_, a, b): &(u16, u32, u32)| {
                for r in self.refs.get(a as usize..b as usize).unwrap_or(&[]) {
                    let ports = self
                        .ports
                        .get(r.ports.0 as usize..r.ports.1 as usize)
                        .unwrap_or(&[]);
                    f(r, ports);
                }
            };
            for g in src {
                if let Ok(i) = cells.binary_search_by_key(&g.0, |c| c.0)
                    && let Some(c) = cells.get(i)
                {
                    visit(c);
                }
            }
            if let Some(c) = cells.last()
                && c.0 == ANY_KEY
            {
                visit(c);
            }
        }
    }
}

/// The compiled L7 matchers of a snapshot.
pub(crate) struct L7Index {
    pub(super) dicts: [Box<[Dict]>; KINDS],
    pub(super) tables_dict: TableDict,
    /// Per (destination key, kind): a range of `tables`. Destination keys are group ids,
    /// then `"*"`.
    pub(super) at: Box<[(u32, u32)]>,
    /// Per kind, the destination keys with tables of that kind (as [`CellIndex::used`]).
    pub(super) at_used: [Box<[u64]>; KINDS],
    pub(super) tables: Box<[Table]>,
    pub(super) l4: CellIndex,
    pub(super) groups: usize,
    /// The widest table's width in words.
    pub(super) max_words: usize,
}

impl fmt::Debug for L7Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L7Index")
            .field("dicts", &self.dicts)
            .field("tables", &self.tables.len())
            .field("clauses", &self.clause_count())
            .finish()
    }
}

impl L7Index {
    pub(super) fn dict(&self, kind: usize, field: usize) -> Option<&Dict> {
        self.dicts.get(kind).and_then(|d| d.get(field))
    }

    fn clause_count(&self) -> usize {
        self.tables.iter().map(|t| t.clauses.len()).sum()
    }

    pub(super) fn tables_for(&self, slot: usize, kind: usize) -> &[Table] {
        let (a, b) = self.table_range(slot, kind);
        self.tables.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// The range of `tables` of (destination key, kind).
    pub(super) fn table_range(&self, slot: usize, kind: usize) -> (u32, u32) {
        if !self.at_used.get(kind).is_some_and(|u| bits::get(u, slot)) {
            return (0, 0);
        }
        self.at.get(slot * KINDS + kind).copied().unwrap_or((0, 0))
    }
}
