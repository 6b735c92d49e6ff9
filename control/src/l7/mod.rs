//! Per-transaction (L7) decisions: rules' `http`, `grpc`, `sql`, `redis`, `dns` and `tls`
//! matchers compiled into indexes, and [`PolicySnapshot::judge_request`].
//!
//! # Layout
//!
//! Each matcher entry of a rule (one element of its `http:` list, say) is a *clause*: every
//! field it lists must match (AND), any entry of a field's list may (OR), and the rule
//! matches a transaction when any of its clauses does. Clauses are grouped into *tables* per
//! (destination group or `"*"`, L7 kind), at most 4,096 per table. Per
//! (kind, field) one policy-wide dictionary maps every listed value to an id: a hash map for
//! exact values, one anchored multi-pattern DFA for globs, path patterns and `regex:`.
//! Tables map ids to the clauses that list them (postings) and keep, per field, the clauses
//! that do not constrain it. A table of up to 128 clauses (most) keeps those bitsets inline
//! and, when the ids it lists are dense enough, one posting row per id of their span read by
//! the id itself; otherwise the listed ids are found through a dense id-to-row map or a
//! sorted array. A bitmap per kind says which destination groups have tables at all, so a
//! destination's groups that no rule names cost no lookup.
//!
//! A decision, per table of the destination's groups, first intersects on the stack the
//! bitset of clauses whose rule names one of the source's groups (or `"*"`): most clauses
//! fall there, before any request field is looked at. Only then is each field the table
//! constrains looked up, once per request (one DFA pass, plus one hash probe for a
//! dictionary with many exact values), and its clause bitset intersected; a field that
//! none of the clauses still standing constrains is not looked up at all. The surviving
//! clauses carry their rule's ports, transport and protocol inline, so checking them never
//! loads the rule. The cost grows with the number of clauses that match, not with the
//! number of rules. Rules without L7 matchers get their own (destination, source) index, its
//! entries also carrying their L4 conditions inline, so that the L4 part of the decision
//! does not walk the L7 rules either. Nothing allocates per call.
//!
//! The worker judges many transactions per flow
//! ([`PolicySnapshot::judge_transaction_cached`]): at a flow's first one it keeps which rules
//! without L7 matchers cover it; at its second (per L7 kind) which tables and clauses could
//! still change its decision, their groups, ports, transport and protocol already checked
//! (at most two tables of up to 128 clauses, else the index as above), or the decision
//! itself when none can. Later transactions look up only their own fields.
//!
//! # Semantics (PRODUCT.md, plus these decisions)
//!
//! - Deny wins: a matching deny rule (with matching L7 matchers, or without L7 matchers and
//!   covering the flow) gives Deny; else an alert rule gives Alert; else an allow rule
//!   without L7 matchers covering the flow allows every transaction; else an allow rule with
//!   matching L7 matchers allows it; else the mode decides, exactly as in
//!   [`PolicySnapshot::judge_flow`]. The lowest-numbered rule of the winning action names the
//!   decision. `capture` is set if a covering rule without L7 matchers, or a rule whose L7
//!   matchers matched, captures. `l7_constrained` is set when an allow rule with L7
//!   matchers decided.
//! - **http**: `methods` exact and case-sensitive (methods are upper-case by convention,
//!   and validation rejects lower-case standard ones); `paths` against the normalised path
//!   without query: exact; a final `/*` for one or more characters after the slash
//!   (`/api/*` matches `/api/x` and `/api/x/y`, not `/api` nor `/api/`); `*` as a whole
//!   segment elsewhere for exactly one non-empty segment; `regex:` followed by a regular
//!   expression that must match the whole path. Literal and glob rule paths are normalised
//!   as request paths are (`/%7euser` means `/~user`). `hosts` case-insensitive, exact or
//!   a domain glob (below), compared without port, userinfo, IPv6 brackets or trailing dot,
//!   on both the rule and the request side;
//!   `headers`: every listed header must be present, name case-insensitive, value exact.
//!   A request without a `Host` matches no clause that lists `hosts`.
//! - **grpc**: `service` and `methods` exact and case-sensitive.
//! - **sql** (postgres and mysql): each statement of a request is judged as its own
//!   transaction (PRODUCT.md: "each SQL statement") and the request takes the most severe
//!   outcome (deny over alert over allow, the first statement on ties). So `SELECT 1; DROP
//!   TABLE t` is not allowed by a SELECT-only allow and is denied by a deny on DROP.
//!   `verbs` case-insensitive. `databases` and `users` exact (servers treat them as
//!   case-sensitive); a request whose login was not seen matches no clause that lists them.
//!   `tables`, names compared ASCII case-insensitively:
//!   - in **allow** clauses, *every* table a statement touches must be listed (a statement
//!     that touches none, `SELECT 1`, passes);
//!   - in **deny/alert** clauses, the clause matches when the statement touches *any*
//!     listed table (otherwise `DELETE FROM audit USING other` would dodge a deny on
//!     `audit` by touching a second table); a statement that touches none does not match.
//!   - A listed bare name `t` matches `t` and `s.t` in any schema; a listed `s.t` matches
//!     `s.t` and a bare `t` (whose schema the search path decides at run time). A listed
//!     `s.t` never matches `x.t`.
//!   - A **LOGIN** is matched by `users`/`databases` only: by every allow clause whose
//!     users/databases match (an allow for `SELECT` by `svc` lets `svc` log in), but only by
//!     deny/alert clauses that list no `verbs` and no `tables`, or list the verb `LOGIN`
//!     (a deny on `DROP` must not refuse every login).
//!   - A request without statements is judged as one statement with no tables and verb
//!     `USE` for a database switch, no verb otherwise (only clauses without `verbs` match).
//! - **redis**: `commands` case-insensitive, `keys` case-sensitive globs as Redis's own
//!   `KEYS` (`*` any run of bytes, `?` one byte, `[abc]`/`[^a-z]` a class, `\` escapes);
//!   a command without a key matches no clause that lists `keys`.
//! - **dns**: `names` case-insensitive, without trailing dot. **Domain globs** (DNS names,
//!   hosts, SNI): a label that is exactly `*` stands for **one or more** whole labels
//!   (`*.svc.cluster.local` matches `a.svc.cluster.local` and `a.b.svc.cluster.local`, not
//!   `svc.cluster.local`); a `*` inside a label (`web-*`) for any run of characters other
//!   than `.`.
//! - **tls**: `sni` as DNS names; `alpn` exact, matching when any offered protocol is
//!   listed. A ClientHello without SNI (or without ALPN) matches no clause listing `sni`
//!   (or `alpn`).
//! - A transaction whose detail does not fit (no typed detail, or a different kind than the
//!   rule's matchers) matches no L7 clause.

mod bits;
mod dict;
#[cfg(test)]
mod tests;

use std::fmt;

use foldhash::{HashMap, HashMapExt};
use proto_parsers::AppProto;
use proto_parsers::facts::{Header, RequestDetail, SqlKind, SqlRequest, SqlVerb};

use crate::model::{L7Kind, L7Matchers, Patterns};
use crate::rule::{CompiledRule, Transport, TransportApp, ports_match};
use crate::snapshot::{Decision, Endpoint, PolicySnapshot};
use crate::vocab::{Action, GroupId};
use bits::{Bits, MAX_CLAUSES, MAX_WORDS, NARROW_WORDS, Posting, words_for};
use dict::{Dict, DictBuilder, FOLD_MAX, Hits, Key};

const KINDS: usize = 6;
const MAX_FIELDS: usize = 3;
const NONE: u32 = u32::MAX;
/// The `"*"` key; group ids stay below it (see [`crate::validate::MAX_GROUPS`]).
const ANY_KEY: u16 = u16::MAX;

// Field slots per kind: http (method, path, host), grpc (service, method), sql (verb,
// database, user; tables apart), redis (command, key), dns (name), tls (sni, alpn).
const SQL_VERB: usize = 0;
const SQL_DATABASE: usize = 1;
const SQL_USER: usize = 2;

const fn kind_index(k: L7Kind) -> usize {
    match k {
        L7Kind::Http => 0,
        L7Kind::Grpc => 1,
        L7Kind::Sql => 2,
        L7Kind::Redis => 3,
        L7Kind::Dns => 4,
        L7Kind::Tls => 5,
    }
}

/// Whether each field of a kind compares ASCII case-insensitively.
const fn folds(kind: usize) -> [bool; MAX_FIELDS] {
    match kind {
        0 => [false, false, true],  // method, path, host
        2 => [true, false, false],  // verb, database, user
        3 => [true, false, false],  // command, key
        4 => [true, false, false],  // name
        5 => [true, false, false],  // sni, alpn
        _ => [false, false, false], // grpc service, method
    }
}

/// A required header: lower-case name, exact value.
type HeaderPair = (Box<[u8]>, Box<[u8]>);
type HeaderPairs = Box<[HeaderPair]>;

/// One matcher entry of one rule, before indexing.
struct ClauseSpec {
    rule: u32,
    action: Action,
    capture: bool,
    fields: [Option<Vec<Key>>; MAX_FIELDS],
    /// SQL `tables`, lower-cased.
    tables: Option<Vec<Vec<u8>>>,
    /// HTTP `headers`: lower-case name, value.
    headers: HeaderPairs,
    /// SQL: whether a LOGIN can match this clause (see the module doc).
    login_ok: bool,
}

fn keys(p: &Patterns, f: impl Fn(&str) -> Key) -> Option<Vec<Key>> {
    p.as_ref()
        .map(|l| l.value.iter().map(|s| f(&s.value)).collect())
}

fn exact(s: &str) -> Key {
    Key::Exact(s.as_bytes().to_vec())
}

/// A literal or glob path pattern normalised as request paths are (so `/%7euser` in a rule
/// means the `/~user` a request normalises to); `regex:` patterns are kept as written.
fn rule_path(p: &str) -> String {
    if p.starts_with("regex:") {
        return p.to_owned();
    }
    let mut out = String::new();
    if proto_parsers::http::normalize_path(p.as_bytes(), &mut out) {
        out
    } else {
        p.to_owned()
    }
}

fn specs_of(rule: u32, r: &CompiledRule, m: &L7Matchers, out: &mut Vec<ClauseSpec>) {
    let base = |fields: [Option<Vec<Key>>; MAX_FIELDS]| ClauseSpec {
        rule,
        action: r.action(),
        capture: r.capture(),
        fields,
        tables: None,
        headers: Box::default(),
        login_ok: false,
    };
    match m {
        L7Matchers::Http(list) => {
            for h in list {
                let mut c = base([
                    keys(&h.methods, exact),
                    keys(&h.paths, |p| dict::path_key(&rule_path(p))),
                    keys(&h.hosts, |s| {
                        dict::domain_key(&String::from_utf8_lossy(host_of(s.as_bytes())))
                    }),
                ]);
                if let Some(hs) = &h.headers {
                    c.headers = hs
                        .value
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.0.to_ascii_lowercase().into_bytes().into_boxed_slice(),
                                v.0.as_bytes().into(),
                            )
                        })
                        .collect();
                }
                out.push(c);
            }
        }
        L7Matchers::Grpc(list) => {
            for g in list {
                out.push(base([
                    g.service.as_ref().map(|s| vec![exact(&s.value)]),
                    keys(&g.methods, exact),
                    None,
                ]));
            }
        }
        L7Matchers::Sql(list) => {
            for q in list {
                let mut c = base([
                    keys(&q.verbs, exact),
                    keys(&q.databases, exact),
                    keys(&q.users, exact),
                ]);
                c.tables = q.tables.as_ref().map(|l| {
                    l.value
                        .iter()
                        .map(|t| t.value.to_ascii_lowercase().into_bytes())
                        .collect()
                });
                let lists_login = q.verbs.as_ref().is_some_and(|l| {
                    l.value
                        .iter()
                        .any(|v| v.value.eq_ignore_ascii_case("LOGIN"))
                });
                c.login_ok = c.action == Action::Allow
                    || lists_login
                    || (q.verbs.is_none() && q.tables.is_none());
                out.push(c);
            }
        }
        L7Matchers::Redis(list) => {
            for x in list {
                out.push(base([
                    keys(&x.commands, exact),
                    keys(&x.keys, dict::redis_key),
                    None,
                ]));
            }
        }
        L7Matchers::Dns(list) => {
            for x in list {
                out.push(base([keys(&x.names, dict::domain_key), None, None]));
            }
        }
        L7Matchers::Tls(list) => {
            for x in list {
                out.push(base([
                    keys(&x.sni, dict::domain_key),
                    keys(&x.alpn, exact),
                    None,
                ]));
            }
        }
    }
}

/// The clauses of one table that accept each id of one field, and those that accept any
/// value (the field is absent from them).
#[derive(Debug)]
struct FieldIx {
    wild: Bits,
    /// The clauses of each id some clause lists.
    postings: Postings,
}

/// From a dictionary id to its row of postings.
#[derive(Debug)]
enum Find {
    /// `rows[id]`, [`NO_ROW`] for the ids no clause lists: one load instead of a binary
    /// search (ten or so of them per HTTP decision were a tenth of its instructions). Used
    /// when the ids a table lists are dense enough among `0..=max id` (at most
    /// [`DENSE_SPREAD`] slots per listed id), which bounds its memory.
    Dense(Box<[u16]>),
    /// The listed ids, ascending, to binary-search.
    Sorted(Box<[u32]>),
}

const NO_ROW: u16 = u16::MAX;
const DENSE_SPREAD: usize = 16;

impl Find {
    /// `ids` ascending, distinct.
    fn new(ids: &[u32]) -> Find {
        let span = ids.last().map_or(0, |&m| m as usize + 1);
        let rows_fit = ids.len() < usize::from(NO_ROW);
        if rows_fit && span <= DENSE_SPREAD * ids.len() {
            let mut rows = vec![NO_ROW; span];
            for (row, &id) in ids.iter().enumerate() {
                if let (Some(slot), Ok(row)) = (rows.get_mut(id as usize), u16::try_from(row)) {
                    *slot = row;
                }
            }
            Find::Dense(rows.into_boxed_slice())
        } else {
            Find::Sorted(ids.into())
        }
    }

    #[inline]
    fn row(&self, id: u32) -> Option<usize> {
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
enum Postings {
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

/// A narrow table's ids may spread this much for [`Postings::Direct`] (its memory is then
/// at most this many rows per listed id).
const DIRECT_SPREAD: usize = 8;

impl FieldIx {
    /// `None` when no clause constrains the field (the field is then skipped).
    fn build<'a>(n: usize, per_clause: impl Iterator<Item = Option<&'a [u32]>>) -> Option<Self> {
        let mut wild = vec![0u64; words_for(n)];
        let mut by: HashMap<u32, Vec<u16>> = HashMap::new();
        let mut constrained = false;
        for (c, ids) in per_clause.enumerate() {
            let Ok(c16) = u16::try_from(c) else {
                break;
            };
            match ids {
                None => bits::set(&mut wild, c),
                Some(ids) => {
                    constrained = true;
                    for &id in ids {
                        let v = by.entry(id).or_default();
                        if v.last() != Some(&c16) {
                            v.push(c16);
                        }
                    }
                }
            }
        }
        if !constrained {
            return None;
        }
        let mut by_id: Vec<(u32, Vec<u16>)> = by.into_iter().collect();
        by_id.sort_unstable_by_key(|(id, _)| *id);
        let w = words_for(n);
        let ids: Vec<u32> = by_id.iter().map(|&(id, _)| id).collect();
        let span = ids.last().map_or(0, |&m| m as usize + 1);
        let postings = if w <= NARROW_WORDS {
            let direct = span <= DIRECT_SPREAD * ids.len();
            let mut bits = vec![0u64; if direct { span } else { ids.len() } * w];
            for (i, (id, cs)) in by_id.iter().enumerate() {
                let at = if direct { *id as usize } else { i };
                if let Some(row) = bits.get_mut(at * w..(at + 1) * w) {
                    for &c in cs {
                        bits::set(row, usize::from(c));
                    }
                }
            }
            let bits = bits.into_boxed_slice();
            if direct {
                Postings::Direct { w, bits }
            } else {
                Postings::Rows {
                    find: Find::new(&ids),
                    w,
                    bits,
                }
            }
        } else {
            Postings::Each {
                find: Find::new(&ids),
                each: by_id.iter().map(|(_, cs)| Posting::new(cs, n)).collect(),
            }
        };
        Some(FieldIx {
            wild: Bits::new(wild),
            postings,
        })
    }

    // Called for every id of every probed field: keep it in the caller's loop.
    #[inline(always)]
    fn or_id(&self, id: u32, out: &mut [u64]) {
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

    /// `out` = the clauses that accept the probed value(s).
    #[inline(always)]
    fn eval(&self, probe: &Probe<'_>, hits: &Hits, out: &mut [u64]) {
        for (o, w) in out.iter_mut().zip(self.wild.words().iter()) {
            *o = *w;
        }
        match probe.dict {
            Some(dict) if hits.overflow => {
                for_each_value(probe.vals, |v| {
                    dict.lookup_each(v, |id| self.or_id(id, out));
                });
            }
            _ => {
                for &id in hits.ids() {
                    self.or_id(id, out);
                }
            }
        }
    }

    /// `out` = the clauses that accept one of these ids (source groups).
    #[inline]
    fn eval_ids(&self, ids: impl Iterator<Item = u32>, out: &mut [u64]) {
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
struct Clause {
    rule: u32,
    action: Action,
    capture: bool,
    transport_app: TransportApp,
    /// The rule's ports: a range of the table's `ports`.
    ports: (u32, u32),
    headers: HeaderPairs,
}

#[derive(Debug)]
struct SqlIx {
    tables: Option<FieldIx>,
    allow: Bits,
    login_ok: Bits,
}

/// Up to [`MAX_CLAUSES`] clauses of one (destination key, kind).
#[derive(Debug)]
struct Table {
    all: Bits,
    clauses: Box<[Clause]>,
    /// The clauses by their rule's source groups (`from: "*"`: wild); `None` when every
    /// rule has `from: "*"`.
    src: Option<FieldIx>,
    fields: [Option<FieldIx>; MAX_FIELDS],
    sql: Option<SqlIx>,
    /// The clauses' port ranges, back to back.
    ports: Box<[(u16, u16)]>,
}

/// SQL table names: exact ids, plus for a bare name the ids of the listed `schema.name`s.
#[derive(Debug)]
struct TableDict {
    dict: Dict,
    qualified_by_table: HashMap<Box<[u8]>, Box<[u32]>>,
}

impl TableDict {
    fn lookup_each(&self, name: &[u8], mut f: impl FnMut(u32)) {
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
struct CellIndex {
    index: Box<[(u32, u32)]>,
    /// The destination slots whose range in `index` is not empty: one hot bitmap read
    /// instead of a cold `index` entry for each of the destination's groups that no rule
    /// names.
    used: Box<[u64]>,
    cells: Box<[(u16, u32, u32)]>,
    refs: Box<[L4Ref]>,
    /// The refs' port ranges, back to back.
    ports: Box<[(u16, u16)]>,
}

/// A rule without L7 matchers as a transaction's decision reads it: its L4 conditions
/// inline, so that the decision never loads the rule.
#[derive(Clone, Copy, Debug)]
struct L4Ref {
    rule: u32,
    action: Action,
    capture: bool,
    transport_app: TransportApp,
    /// A range of the index's `ports`.
    ports: (u32, u32),
}

impl CellIndex {
    /// `entries`: (destination key, source key, rule), `ANY_KEY` for `"*"`.
    fn build(
        mut entries: Vec<(u16, u16, u32)>,
        groups: usize,
        rules: &[CompiledRule],
    ) -> Result<Self, String> {
        entries.sort_unstable();
        entries.dedup();
        let too_big = |_| "L4 rule index too large".to_owned();
        let mut index = vec![(0u32, 0u32); groups + 1];
        let mut cells: Vec<(u16, u32, u32)> = Vec::new();
        let mut refs = Vec::with_capacity(entries.len());
        let mut ports: Vec<(u16, u16)> = Vec::new();
        let mut i = 0;
        while let Some(&(d, s, _)) = entries.get(i) {
            let start = u32::try_from(refs.len()).map_err(too_big)?;
            while let Some(&(d2, s2, r)) = entries.get(i) {
                if (d2, s2) != (d, s) {
                    break;
                }
                let Some(rule) = rules.get(r as usize) else {
                    return Err("L4 rule index: rule out of range".to_owned());
                };
                let p0 = u32::try_from(ports.len()).map_err(too_big)?;
                ports.extend_from_slice(rule.ports());
                let p1 = u32::try_from(ports.len()).map_err(too_big)?;
                refs.push(L4Ref {
                    rule: r,
                    action: rule.action(),
                    capture: rule.capture(),
                    transport_app: rule.transport_app(),
                    ports: (p0, p1),
                });
                i += 1;
            }
            let end = u32::try_from(refs.len()).map_err(too_big)?;
            let slot = if d == ANY_KEY { groups } else { usize::from(d) };
            let cell = u32::try_from(cells.len()).map_err(too_big)?;
            cells.push((s, start, end));
            if let Some(e) = index.get_mut(slot) {
                if e.1 == 0 {
                    e.0 = cell;
                }
                e.1 = cell + 1;
            }
        }
        let mut used = vec![0u64; words_for(index.len())];
        for (slot, &(a, b)) in index.iter().enumerate() {
            if b > a {
                bits::set(&mut used, slot);
            }
        }
        Ok(CellIndex {
            used: used.into_boxed_slice(),
            index: index.into_boxed_slice(),
            cells: cells.into_boxed_slice(),
            refs: refs.into_boxed_slice(),
            ports: ports.into_boxed_slice(),
        })
    }

    /// Calls `f` with every rule of the cells (d, s), d among `dst` and `"*"`, s among
    /// `src` and `"*"`, and its ports.
    #[inline]
    fn for_each(&self, src: &[GroupId], dst: &[GroupId], mut f: impl FnMut(&L4Ref, &[(u16, u16)])) {
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
    dicts: [Box<[Dict]>; KINDS],
    tables_dict: TableDict,
    /// Per (destination key, kind): a range of `tables`. Destination keys are group ids,
    /// then `"*"`.
    at: Box<[(u32, u32)]>,
    /// Per kind, the destination keys with tables of that kind (as [`CellIndex::used`]).
    at_used: [Box<[u64]>; KINDS],
    tables: Box<[Table]>,
    l4: CellIndex,
    groups: usize,
    /// The widest table's width in words.
    max_words: usize,
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
    /// Compiles the L7 matchers of `rules` (numbered as in the snapshot) for a policy of
    /// `groups` groups. Fails only on limits (a DFA that cannot be built at all).
    pub(crate) fn build(rules: &[CompiledRule], groups: usize) -> Result<L7Index, String> {
        let dst_keys = groups + 1;
        let mut specs: [Vec<ClauseSpec>; KINDS] = Default::default();
        // Per kind, per destination slot: indices into `specs[kind]`.
        let mut per_dst: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); dst_keys]; KINDS];
        let mut l4_entries = Vec::new();
        for (ri, r) in rules.iter().enumerate() {
            let rid = u32::try_from(ri).map_err(|_| "too many rules".to_owned())?;
            let slots: Vec<usize> = match r.to_groups() {
                None => vec![groups],
                Some(gs) => gs.iter().map(|g| usize::from(g.0)).collect(),
            };
            let Some(m) = r.l7() else {
                let srcs: Vec<u16> = match r.from_groups() {
                    None => vec![ANY_KEY],
                    Some(gs) => gs.iter().map(|g| g.0).collect(),
                };
                for &d in &slots {
                    let d = if d == groups {
                        ANY_KEY
                    } else {
                        u16::try_from(d).map_err(|_| "too many groups".to_owned())?
                    };
                    l4_entries.extend(srcs.iter().map(|&s| (d, s, rid)));
                }
                continue;
            };
            let k = kind_index(m.kind());
            let (Some(kind_specs), Some(kind_dst)) = (specs.get_mut(k), per_dst.get_mut(k)) else {
                continue;
            };
            let first = kind_specs.len();
            specs_of(rid, r, m, kind_specs);
            let new: Vec<u32> = (first..kind_specs.len())
                .filter_map(|i| u32::try_from(i).ok())
                .collect();
            for d in slots {
                if let Some(v) = kind_dst.get_mut(d) {
                    v.extend_from_slice(&new);
                }
            }
        }

        // Dictionaries: intern every listed value.
        let mut ids: [Vec<[Option<Vec<u32>>; MAX_FIELDS]>; KINDS] = Default::default();
        let mut dicts: [Box<[Dict]>; KINDS] = Default::default();
        let mut tables_b = DictBuilder::new(true);
        let mut table_ids: Vec<Option<Vec<u32>>> = Vec::new();
        let mut qualified: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        for k in 0..KINDS {
            let fold = folds(k);
            let mut builders = fold.map(DictBuilder::new);
            let kind_ids = ids.get_mut(k).ok_or("kind")?;
            for spec in specs.get(k).map(Vec::as_slice).unwrap_or(&[]) {
                let mut row: [Option<Vec<u32>>; MAX_FIELDS] = Default::default();
                for ((slot, keys), b) in row.iter_mut().zip(&spec.fields).zip(&mut builders) {
                    *slot = keys
                        .as_ref()
                        .map(|ks| ks.iter().map(|key| b.id(key.clone())).collect());
                }
                kind_ids.push(row);
                if k == kind_index(L7Kind::Sql) {
                    table_ids.push(spec.tables.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| {
                                let id = tables_b.id(Key::Exact(t.clone()));
                                if let Some(dot) = t.iter().rposition(|&b| b == b'.')
                                    && let Some(bare) = t.get(dot + 1..)
                                {
                                    let v = qualified.entry(bare.to_vec()).or_default();
                                    if !v.contains(&id) {
                                        v.push(id);
                                    }
                                }
                                id
                            })
                            .collect()
                    }));
                }
            }
            let mut built = Vec::with_capacity(MAX_FIELDS);
            for b in builders {
                built.push(b.build_merged()?);
            }
            if let Some(d) = dicts.get_mut(k) {
                *d = built.into_boxed_slice();
            }
        }
        let tables_dict = TableDict {
            dict: tables_b.build()?,
            qualified_by_table: qualified
                .into_iter()
                .map(|(k, v)| (k.into_boxed_slice(), v.into_boxed_slice()))
                .collect(),
        };

        // Tables per (destination, kind), in chunks of MAX_CLAUSES clauses.
        let mut at = vec![(0u32, 0u32); dst_keys * KINDS];
        let mut tables = Vec::new();
        for k in 0..KINDS {
            let kind_specs = specs.get(k).map(Vec::as_slice).unwrap_or(&[]);
            let kind_ids = ids.get(k).map(Vec::as_slice).unwrap_or(&[]);
            let Some(kind_dst) = per_dst.get(k) else {
                continue;
            };
            for (d, list) in kind_dst.iter().enumerate() {
                if list.is_empty() {
                    continue;
                }
                let start = u32::try_from(tables.len()).map_err(|_| "too many L7 tables")?;
                for chunk in list.chunks(MAX_CLAUSES) {
                    tables.push(build_table(
                        k, chunk, kind_specs, kind_ids, &table_ids, rules,
                    ));
                }
                let end = u32::try_from(tables.len()).map_err(|_| "too many L7 tables")?;
                if let Some(slot) = at.get_mut(d * KINDS + k) {
                    *slot = (start, end);
                }
            }
        }
        let at_used = std::array::from_fn(|k| {
            let mut used = vec![0u64; words_for(dst_keys)];
            for d in 0..dst_keys {
                if at.get(d * KINDS + k).is_some_and(|&(a, b)| b > a) {
                    bits::set(&mut used, d);
                }
            }
            used.into_boxed_slice()
        });
        Ok(L7Index {
            dicts,
            tables_dict,
            at: at.into_boxed_slice(),
            at_used,
            max_words: tables
                .iter()
                .map(|t| t.all.words().len())
                .max()
                .unwrap_or(0),
            tables: tables.into_boxed_slice(),
            l4: CellIndex::build(l4_entries, groups, rules)?,
            groups,
        })
    }

    fn clause_count(&self) -> usize {
        self.tables.iter().map(|t| t.clauses.len()).sum()
    }

    fn tables_for(&self, slot: usize, kind: usize) -> &[Table] {
        let (a, b) = self.table_range(slot, kind);
        self.tables.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// The range of `tables` of (destination key, kind).
    fn table_range(&self, slot: usize, kind: usize) -> (u32, u32) {
        if !self.at_used.get(kind).is_some_and(|u| bits::get(u, slot)) {
            return (0, 0);
        }
        self.at.get(slot * KINDS + kind).copied().unwrap_or((0, 0))
    }
}

fn build_table(
    kind: usize,
    chunk: &[u32],
    specs: &[ClauseSpec],
    ids: &[[Option<Vec<u32>>; MAX_FIELDS]],
    table_ids: &[Option<Vec<u32>>],
    rules: &[CompiledRule],
) -> Table {
    let n = chunk.len();
    let spec = |i: &u32| specs.get(*i as usize);
    let row = |i: &u32| ids.get(*i as usize);
    let fields: [Option<FieldIx>; MAX_FIELDS] = std::array::from_fn(|f| {
        FieldIx::build(
            n,
            chunk
                .iter()
                .map(|i| row(i).and_then(|r| r.get(f)).and_then(|o| o.as_deref())),
        )
    });
    let sql = (kind == kind_index(L7Kind::Sql)).then(|| {
        let mut allow = vec![0u64; words_for(n)];
        let mut login_ok = vec![0u64; words_for(n)];
        for (c, s) in chunk.iter().enumerate() {
            if let Some(s) = spec(s) {
                if s.action == Action::Allow {
                    bits::set(&mut allow, c);
                }
                if s.login_ok {
                    bits::set(&mut login_ok, c);
                }
            }
        }
        SqlIx {
            tables: FieldIx::build(
                n,
                chunk
                    .iter()
                    .map(|i| table_ids.get(*i as usize).and_then(|o| o.as_deref())),
            ),
            allow: Bits::new(allow),
            login_ok: Bits::new(login_ok),
        }
    });
    let rule_of = |s: &ClauseSpec| rules.get(s.rule as usize);
    let from: Vec<Option<Vec<u32>>> = chunk
        .iter()
        .map(|i| {
            spec(i)
                .and_then(rule_of)
                .and_then(|r| r.from_groups())
                .map(|gs| gs.iter().map(|g| u32::from(g.0)).collect())
        })
        .collect();
    let src = FieldIx::build(n, from.iter().map(|o| o.as_deref()));
    let mut ports: Vec<(u16, u16)> = Vec::new();
    let clauses = chunk
        .iter()
        .filter_map(spec)
        .map(|s| {
            let rule = rule_of(s);
            let start = ports.len();
            ports.extend_from_slice(rule.map_or(&[], |r| r.ports()));
            Clause {
                rule: s.rule,
                action: s.action,
                capture: s.capture,
                // A clause always has its rule; a missing one would match no flow.
                transport_app: rule.map_or(TransportApp::NONE, CompiledRule::transport_app),
                ports: (
                    u32::try_from(start).unwrap_or(u32::MAX),
                    u32::try_from(ports.len()).unwrap_or(u32::MAX),
                ),
                headers: s.headers.clone(),
            }
        })
        .collect();
    Table {
        all: bits::ones(n),
        clauses,
        src,
        fields,
        sql,
        ports: ports.into_boxed_slice(),
    }
}

/// The value(s) of one request field.
#[derive(Clone, Copy)]
enum Vals<'a> {
    Absent,
    One(&'a [u8]),
    /// A `Host`/`:authority` value or SNI, matched as its [`host_of`]: cut only if the
    /// field is looked up (most requests are settled without their host).
    Host(&'a [u8]),
    /// Matches if any matches (TLS ALPN offers).
    Any(&'a [&'a [u8]]),
}

/// A request field: its value(s) and the dictionary of its kind and field.
#[derive(Clone, Copy)]
struct Probe<'a> {
    dict: Option<&'a Dict>,
    vals: Vals<'a>,
}

impl<'a> Probe<'a> {
    const ABSENT: Probe<'static> = Probe {
        dict: None,
        vals: Vals::Absent,
    };

    fn new(dict: Option<&'a Dict>, vals: Vals<'a>) -> Probe<'a> {
        Probe {
            dict: dict.filter(|d| !d.is_empty()),
            vals,
        }
    }
}

/// The dictionary ids of a subject's fields, each looked up on first use: most requests
/// are settled by the source groups and never need their path searched. Kept apart from
/// the [`Subject`] (on the evaluating frame's stack) so that building a subject copies no
/// id arrays.
struct Lookups {
    hits: [Hits; MAX_FIELDS],
    done: [bool; MAX_FIELDS],
}

impl Lookups {
    fn new() -> Lookups {
        Lookups {
            hits: [Hits::new(), Hits::new(), Hits::new()],
            done: [false; MAX_FIELDS],
        }
    }

    /// The ids field `f`'s value(s) matched (looked up now if not yet).
    #[inline(always)]
    fn get(&mut self, f: usize, probe: &Probe<'_>) -> Option<&Hits> {
        let (hits, done) = (self.hits.get_mut(f)?, self.done.get_mut(f)?);
        if !*done {
            *done = true;
            if let Some(d) = probe.dict {
                for_each_value(probe.vals, |v| d.lookup(v, hits));
            }
        }
        Some(hits)
    }
}

fn for_each_value(vals: Vals<'_>, mut f: impl FnMut(&[u8])) {
    {
        match vals {
            Vals::Absent => {}
            Vals::One(v) => f(v),
            Vals::Host(a) => f(host_of(a)),
            Vals::Any(vs) => vs.iter().for_each(|v| f(v)),
        }
    }
}

/// What one table evaluation judges: a request, or one SQL statement of it.
struct Subject<'a> {
    kind: usize,
    probes: [Probe<'a>; MAX_FIELDS],
    headers: &'a [Header<'a>],
    /// SQL only.
    login: bool,
    tables: &'a [&'a str],
}

/// What [`FlowRules`] was computed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey {
    version: u64,
    /// The snapshot's L7 index address: two snapshots compiled with the same version number
    /// (`compile(.., 1)` twice) are still told apart while both live.
    index: usize,
    src: Endpoint,
    dst: Endpoint,
    dport: u16,
    transport: Transport,
    app: AppProto,
}

/// The part of a transaction's decision that depends only on its flow, kept by the caller
/// per flow: see [`PolicySnapshot::judge_transaction_cached`].
#[derive(Clone, Copy, Debug)]
pub struct FlowRules {
    key: FlowKey,
    l4: Best,
    /// From the flow's second transaction on: how its transactions of one kind are judged.
    prepared: Option<(usize, Prepared)>,
}

/// Tables a [`Prepared::Tables`] holds.
const PREPARED_TABLES: usize = 2;

/// What is left to judge of a flow's transactions of one L7 kind once the flow is known.
#[derive(Clone, Copy, Debug)]
enum Prepared {
    /// No clause can change the flow's decision: every transaction gets this one.
    Fixed(Decision),
    /// The tables (indexes into `L7Index::tables`) with clauses that can, and those clauses:
    /// their rule's source groups, ports, transport and protocol match the flow, and it
    /// could change the outcome of the flow's rules without L7 matchers
    /// ([`can_change`]). Only the transaction's own fields remain to be matched.
    Tables {
        len: u8,
        at: [(u32, [u64; NARROW_WORDS]); PREPARED_TABLES],
        /// The decision when none of them matches (most transactions): no rule or group
        /// to read then.
        unmatched: Decision,
    },
    /// More tables, or wider ones, than [`Prepared::Tables`] holds: judged through the
    /// index, as a first transaction is.
    Index,
}

/// How the tables of a transaction are found.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// From the flow's groups through the index; clauses' L4 conditions still to check.
    Index(&'a FlowCtx<'a>),
    /// A flow's prepared tables and clauses, and its decision when none matches.
    Prepared(&'a [(u32, [u64; NARROW_WORDS])], &'a Decision),
}

/// Whether a rule's clause, if it matched, could change the decision of a flow whose rules
/// without L7 matchers give `l4` (see how [`PolicySnapshot::combine`] merges them).
fn can_change(l4: &Best, cl: &Clause) -> bool {
    if cl.capture && !l4.capture {
        return true;
    }
    match cl.action {
        Action::Deny => cl.rule < l4.deny,
        Action::Alert => l4.deny == NONE && cl.rule < l4.alert,
        Action::Allow => l4.deny == NONE && l4.alert == NONE && l4.allow == NONE,
    }
}

/// Lowest matching rule per action.
#[derive(Clone, Copy, Debug)]
struct Best {
    deny: u32,
    alert: u32,
    allow: u32,
    capture: bool,
}

impl Best {
    const EMPTY: Best = Best {
        deny: NONE,
        alert: NONE,
        allow: NONE,
        capture: false,
    };

    /// No rule at all (what no matching clause leaves).
    fn is_empty(&self) -> bool {
        self.deny == NONE && self.alert == NONE && self.allow == NONE && !self.capture
    }

    fn slot(&mut self, a: Action) -> &mut u32 {
        match a {
            Action::Deny => &mut self.deny,
            Action::Alert => &mut self.alert,
            Action::Allow => &mut self.allow,
        }
    }
}

/// The host part of a `Host`/`:authority` value: no userinfo, port, IPv6 brackets or
/// trailing dots.
fn host_of(a: &[u8]) -> &[u8] {
    // One pass for the last `@` and, after it, the first `:` and the number of them.
    let (mut at, mut colon, mut colons) = (None, None, 0usize);
    for (i, &b) in a.iter().enumerate() {
        match b {
            b'@' => (at, colon, colons) = (Some(i), None, 0),
            b':' => {
                colon = colon.or(Some(i));
                colons += 1;
            }
            _ => {}
        }
    }
    let start = at.map_or(0, |i| i + 1);
    let a = a.get(start..).unwrap_or(&[]);
    let h = if let Some(rest) = a.strip_prefix(b"[") {
        match rest.iter().position(|&b| b == b']') {
            Some(e) => rest.get(..e).unwrap_or(rest),
            None => rest,
        }
    } else if colons == 1 {
        colon.and_then(|c| a.get(..c - start)).unwrap_or(a)
    } else {
        a
    };
    let mut h = h;
    while let Some(rest) = h.strip_suffix(b".") {
        h = rest;
    }
    h
}

/// The path to match: the normalised one if given (which has no query), else the raw one
/// cut at its query or fragment.
fn path_of<'a>(norm: Option<&'a [u8]>, raw: &'a [u8]) -> &'a [u8] {
    if let Some(p) = norm {
        return p;
    }
    match raw.iter().position(|&b| b == b'?' || b == b'#') {
        Some(i) => raw.get(..i).unwrap_or(raw),
        None => raw,
    }
}

fn verb_name<'a>(v: &SqlVerb<'a>) -> &'a str {
    match v {
        SqlVerb::Select => "SELECT",
        SqlVerb::Insert => "INSERT",
        SqlVerb::Update => "UPDATE",
        SqlVerb::Delete => "DELETE",
        SqlVerb::Merge => "MERGE",
        SqlVerb::Create => "CREATE",
        SqlVerb::Alter => "ALTER",
        SqlVerb::Drop => "DROP",
        SqlVerb::Truncate => "TRUNCATE",
        SqlVerb::Grant => "GRANT",
        SqlVerb::Revoke => "REVOKE",
        SqlVerb::Copy => "COPY",
        SqlVerb::Begin => "BEGIN",
        SqlVerb::Commit => "COMMIT",
        SqlVerb::Rollback => "ROLLBACK",
        SqlVerb::Set => "SET",
        SqlVerb::Show => "SHOW",
        SqlVerb::Use => "USE",
        SqlVerb::Call => "CALL",
        SqlVerb::Explain => "EXPLAIN",
        SqlVerb::With => "WITH",
        SqlVerb::Other(s) => s,
    }
}

fn opt(v: Option<&[u8]>) -> Vals<'_> {
    v.map_or(Vals::Absent, Vals::One)
}

/// Everything about the flow that a clause's rule must also match.
struct FlowCtx<'s> {
    src: &'s [GroupId],
    dst: &'s [GroupId],
    dport: u16,
    transport: Transport,
    app: AppProto,
}

impl L7Index {
    fn dict(&self, kind: usize, field: usize) -> Option<&Dict> {
        self.dicts.get(kind).and_then(|d| d.get(field))
    }

    /// The lowest covering rule without L7 matchers per action, and their capture.
    fn l4_best(&self, cx: &FlowCtx<'_>) -> Best {
        let mut b = Best::EMPTY;
        self.l4.for_each(cx.src, cx.dst, |r, ports| {
            if r.transport_app.matches(cx.transport, Some(cx.app))
                && ports_match(ports, cx.dport, cx.transport)
            {
                b.capture |= r.capture;
                let slot = b.slot(r.action);
                *slot = (*slot).min(r.rule);
            }
        });
        b
    }

    fn subject<'a>(
        &'a self,
        kind: usize,
        vals: [Vals<'a>; MAX_FIELDS],
        headers: &'a [Header<'a>],
    ) -> Subject<'a> {
        let [a, b, c] = vals;
        Subject {
            kind,
            probes: [
                Probe::new(self.dict(kind, 0), a),
                Probe::new(self.dict(kind, 1), b),
                Probe::new(self.dict(kind, 2), c),
            ],
            headers,
            login: false,
            tables: &[],
        }
    }

    /// Whether any rule with `kind` matchers names one of the destination's groups (or
    /// `"*"`): if not, the request's fields need not even be looked up.
    fn has_tables(&self, cx: &FlowCtx<'_>, kind: usize) -> bool {
        cx.dst
            .iter()
            .map(|g| usize::from(g.0))
            .chain([self.groups])
            .any(|slot| !self.tables_for(slot, kind).is_empty())
    }

    /// Adds to `best` the L7 rules whose clauses match `s` and whose groups, port and
    /// protocol match the flow.
    fn eval(&self, via: Via<'_>, s: &Subject<'_>, best: &mut Best) {
        match via {
            // Stack bitsets only as wide as the widest table: most policies have no table
            // of more than 128 clauses, and zeroing the full-width pair cost about 100
            // instructions a decision.
            Via::Index(cx) if self.max_words <= NARROW_WORDS => {
                self.eval_with::<NARROW_WORDS>(cx, s, best);
            }
            Via::Index(cx) => self.eval_with::<MAX_WORDS>(cx, s, best),
            Via::Prepared(tables, _) => self.eval_prepared(tables, s, best),
        }
    }

    /// [`L7Index::eval`] of a flow's prepared tables: no group, index, port or rule to
    /// read, only the transaction's fields.
    fn eval_prepared(
        &self,
        tables: &[(u32, [u64; NARROW_WORDS])],
        s: &Subject<'_>,
        best: &mut Best,
    ) {
        let mut found = Lookups::new();
        let mut tmp = [0u64; NARROW_WORDS];
        for &(ti, clauses) in tables {
            let Some(t) = self.tables.get(ti as usize) else {
                continue;
            };
            let w = t.all.words().len();
            let mut acc = clauses;
            let (Some(acc), Some(tmp)) = (acc.get_mut(..w), tmp.get_mut(..w)) else {
                continue;
            };
            if self.by_fields::<NARROW_WORDS>(s, &mut found, t, acc, tmp) {
                settle(t, acc, None, s, best);
            }
        }
    }

    /// The flow's tables of `kind` with the clauses that could change its decision (see
    /// [`Prepared::Tables`]; `unmatched`: its decision when none matches); `None` when no
    /// clause can.
    fn prepare(
        &self,
        cx: &FlowCtx<'_>,
        kind: usize,
        l4: &Best,
        unmatched: Decision,
    ) -> Option<Prepared> {
        let mut at = [(0u32, [0u64; NARROW_WORDS]); PREPARED_TABLES];
        let mut len = 0u8;
        for slot in cx.dst.iter().map(|g| usize::from(g.0)).chain([self.groups]) {
            let (a, b) = self.table_range(slot, kind);
            for ti in a..b {
                let Some(t) = self.tables.get(ti as usize) else {
                    continue;
                };
                let mut clauses = [0u64; NARROW_WORDS];
                let Some(acc) = clauses.get_mut(..t.all.words().len()) else {
                    return Some(Prepared::Index);
                };
                if !flow_clauses::<NARROW_WORDS>(cx, t, l4, acc) {
                    continue;
                }
                let Some(e) = at.get_mut(usize::from(len)) else {
                    return Some(Prepared::Index);
                };
                *e = (ti, clauses);
                len += 1;
            }
        }
        (len > 0).then_some(Prepared::Tables { len, at, unmatched })
    }

    fn eval_with<const W: usize>(&self, cx: &FlowCtx<'_>, s: &Subject<'_>, best: &mut Best) {
        // One pair of stack bitsets for all tables: zeroing them per table would cost more
        // than evaluating a small table.
        let mut acc = [0u64; W];
        let mut tmp = [0u64; W];
        let mut found = Lookups::new();
        for slot in cx.dst.iter().map(|g| usize::from(g.0)).chain([self.groups]) {
            for t in self.tables_for(slot, s.kind) {
                self.eval_table::<W>(cx, s, &mut found, t, best, &mut acc, &mut tmp);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_table<const W: usize>(
        &self,
        cx: &FlowCtx<'_>,
        s: &Subject<'_>,
        found: &mut Lookups,
        t: &Table,
        best: &mut Best,
        acc: &mut [u64; W],
        tmp: &mut [u64; W],
    ) {
        // `W` is at least the widest table's width (`max_words`), so this never skips one.
        let w = t.all.words().len();
        let (Some(acc), Some(tmp)) = (acc.get_mut(..w), tmp.get_mut(..w)) else {
            debug_assert!(false, "table of {w} words, scratch of {W}");
            return;
        };
        // The source groups first: they rule out most clauses at no lookup cost.
        if by_source(t, cx.src, acc) && self.by_fields::<W>(s, found, t, acc, tmp) {
            settle(t, acc, Some(cx), s, best);
        }
    }

    /// Keeps in `acc` the clauses of `t` whose request fields (and SQL tables) accept
    /// `s`; `false` when none is left.
    fn by_fields<const W: usize>(
        &self,
        s: &Subject<'_>,
        found: &mut Lookups,
        t: &Table,
        acc: &mut [u64],
        tmp: &mut [u64],
    ) -> bool {
        for (f, fx) in t.fields.iter().enumerate() {
            let Some(fx) = fx else {
                continue;
            };
            // A login is judged by users and databases only. And a field that none of the
            // clauses left constrains cannot remove one: no need to look its value up
            // (each lookup is a hash or an automaton pass over the value).
            if (s.login && f == SQL_VERB) || bits::within(acc, fx.wild.words()) {
                continue;
            }
            let Some(probe) = s.probes.get(f) else {
                continue;
            };
            let Some(hits) = found.get(f, probe) else {
                continue;
            };
            fx.eval(probe, hits, tmp);
            bits::and_into(acc, tmp);
            if bits::is_empty(acc) {
                return false;
            }
        }
        if let Some(sq) = &t.sql {
            if s.login {
                bits::and_into(acc, sq.login_ok.words());
            } else if let Some(tx) = &sq.tables {
                self.sql_tables::<W>(tx, sq, s.tables, tmp);
                bits::and_into(acc, tmp);
            }
        }
        true
    }

    /// `out` = clauses whose `tables` accept the statement's tables (module doc: all listed
    /// for allow clauses, any listed for deny/alert clauses), or that list no tables.
    fn sql_tables<const W: usize>(
        &self,
        tx: &FieldIx,
        sq: &SqlIx,
        touched: &[&str],
        out: &mut [u64],
    ) {
        let w = out.len();
        let mut all_buf = [!0u64; W];
        let mut any_buf = [0u64; W];
        let mut one_buf = [0u64; W];
        let (Some(all), Some(any), Some(one)) = (
            all_buf.get_mut(..w),
            any_buf.get_mut(..w),
            one_buf.get_mut(..w),
        ) else {
            return;
        };
        for name in touched {
            one.fill(0);
            self.tables_dict
                .lookup_each(name.as_bytes(), |id| tx.or_id(id, one));
            bits::and_into(all, one);
            bits::or_into(any, one);
        }
        for (i, o) in out.iter_mut().enumerate() {
            let g = |v: &[u64]| v.get(i).copied().unwrap_or(0);
            let allow = g(sq.allow.words());
            *o = g(tx.wild.words()) | (allow & g(all)) | (!allow & g(any));
        }
    }
}

/// `acc` = the clauses of `t` whose rule names one of the source's groups (or `"*"`);
/// `false` when there are none.
#[inline]
fn by_source(t: &Table, src: &[GroupId], acc: &mut [u64]) -> bool {
    match &t.src {
        Some(sx) => {
            sx.eval_ids(src.iter().map(|g| u32::from(g.0)), acc);
            !bits::is_empty(acc)
        }
        None => {
            for (a, b) in acc.iter_mut().zip(t.all.words()) {
                *a = *b;
            }
            true
        }
    }
}

/// Whether the clause's rule's ports, transport and protocol match the flow.
#[inline]
fn fits_flow(t: &Table, cl: &Clause, cx: &FlowCtx<'_>) -> bool {
    let ports = t
        .ports
        .get(cl.ports.0 as usize..cl.ports.1 as usize)
        .unwrap_or(&[]);
    cl.transport_app.matches(cx.transport, Some(cx.app))
        && ports_match(ports, cx.dport, cx.transport)
}

/// `acc` = the clauses of `t` that the flow's transactions could be decided by: source
/// groups, ports, transport and protocol match, and [`can_change`]. `false` when none.
/// `acc` is at most `W` words.
fn flow_clauses<const W: usize>(cx: &FlowCtx<'_>, t: &Table, l4: &Best, acc: &mut [u64]) -> bool {
    if !by_source(t, cx.src, acc) {
        return false;
    }
    let mut seen = [0u64; W];
    for (s, a) in seen.iter_mut().zip(acc.iter()) {
        *s = *a;
    }
    bits::for_each_set(&seen, |c| {
        let keep = t
            .clauses
            .get(c)
            .is_some_and(|cl| fits_flow(t, cl, cx) && can_change(l4, cl));
        if !keep {
            bits::clear(acc, c);
        }
    });
    !bits::is_empty(acc)
}

/// Adds to `best` the clauses left in `acc` whose headers match (and, with `flow`, whose
/// rule's ports, transport and protocol match it; prepared clauses were checked already).
#[inline]
fn settle(t: &Table, acc: &[u64], flow: Option<&FlowCtx<'_>>, s: &Subject<'_>, best: &mut Best) {
    bits::for_each_set(acc, |c| {
        let Some(cl) = t.clauses.get(c) else {
            return;
        };
        let cur = match cl.action {
            Action::Deny => best.deny,
            Action::Alert => best.alert,
            Action::Allow => best.allow,
        };
        if cl.rule >= cur && (best.capture || !cl.capture) {
            return;
        }
        if flow.is_some_and(|cx| !fits_flow(t, cl, cx)) || !headers_match(&cl.headers, s.headers) {
            return;
        }
        best.capture |= cl.capture;
        let slot = best.slot(cl.action);
        *slot = (*slot).min(cl.rule);
    });
}

fn headers_match(want: &[HeaderPair], have: &[Header<'_>]) -> bool {
    want.iter().all(|(name, value)| {
        have.iter()
            .any(|h| h.name.eq_ignore_ascii_case(name) && h.value == &**value)
    })
}

fn rank(a: Action) -> u8 {
    match a {
        Action::Deny => 3,
        Action::Alert => 2,
        Action::Allow => 1,
    }
}

impl PolicySnapshot {
    /// Judges one transaction of a flow between `src` and `dst` on `dport` whose protocol
    /// was classified as `app` (the flow's own L4/app decision comes from
    /// [`PolicySnapshot::judge_flow`] with the same arguments). `norm_path` is the
    /// normalised HTTP path (PRODUCT.md rules), as
    /// [`proto_parsers::http::normalized_path`] gives it: without its query, which is not
    /// looked for again; `None` for non-HTTP requests, or for an HTTP request the caller
    /// could not normalise (the raw path is then used, cut at its query). Semantics in the
    /// [`crate::l7`] module doc. Never allocates.
    ///
    /// The transport is inferred from `app`: UDP for `dns` and `udp`, TCP otherwise. Use
    /// [`PolicySnapshot::judge_transaction`] for DNS over TCP.
    pub fn judge_request(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        app: AppProto,
        req: &RequestDetail<'_>,
        norm_path: Option<&[u8]>,
    ) -> Decision {
        let transport = match app {
            AppProto::Dns | AppProto::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        self.judge_transaction(src, dst, dport, transport, app, req, norm_path)
    }

    /// [`PolicySnapshot::judge_request`] with an explicit transport.
    #[allow(clippy::too_many_arguments)]
    pub fn judge_transaction(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: AppProto,
        req: &RequestDetail<'_>,
        norm_path: Option<&[u8]>,
    ) -> Decision {
        let mut rules = None;
        self.judge_transaction_cached(&mut rules, src, dst, dport, transport, app, req, norm_path)
    }

    /// [`PolicySnapshot::judge_transaction`] for the worker, which judges many
    /// transactions of one flow: `rules` keeps, per flow, the part of the decision that
    /// only depends on the flow. At its first transaction, which rules without L7 matchers
    /// cover it (about a tenth of a request's instructions in the HTTP bench); from its
    /// second, per L7 kind, which tables and clauses could still change its decision (their
    /// groups, ports, transport and protocol match the flow), or the decision itself when
    /// none can. Later transactions then only match their own fields. It is computed again
    /// when it came from another snapshot (version or identity) or other flow arguments, so
    /// any `None` or stale value is safe.
    #[allow(clippy::too_many_arguments)]
    pub fn judge_transaction_cached(
        &self,
        rules: &mut Option<FlowRules>,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: AppProto,
        req: &RequestDetail<'_>,
        norm_path: Option<&[u8]>,
    ) -> Decision {
        let ix = self.l7_index();
        let flow = || FlowCtx {
            src: self.groups_of(src),
            dst: self.groups_of(dst),
            dport,
            transport,
            app,
        };
        let key = FlowKey {
            version: self.version(),
            index: std::ptr::from_ref(ix).addr(),
            src: *src,
            dst: *dst,
            dport,
            transport,
            app,
        };
        let kind = match req {
            RequestDetail::None => None,
            RequestDetail::Http(_) => Some(L7Kind::Http),
            RequestDetail::Grpc(_) => Some(L7Kind::Grpc),
            RequestDetail::Sql(_) => Some(L7Kind::Sql),
            RequestDetail::Redis(_) => Some(L7Kind::Redis),
            RequestDetail::Dns(_) => Some(L7Kind::Dns),
            RequestDetail::Tls(_) => Some(L7Kind::Tls),
        }
        .map(kind_index);
        let r = match rules {
            Some(r) if r.key == key => r,
            _ => {
                // A flow's first transaction (or its first under this snapshot) is judged
                // through the index: a flow with one transaction never pays for preparing.
                let cx = flow();
                let l4 = ix.l4_best(&cx);
                *rules = Some(FlowRules {
                    key,
                    l4,
                    prepared: None,
                });
                return self.judge_via(ix, Via::Index(&cx), &l4, src, dst, kind, req, norm_path);
            }
        };
        let Some(k) = kind else {
            return self.combine(&r.l4, &Best::EMPTY, src, dst);
        };
        if !matches!(r.prepared, Some((pk, _)) if pk == k) {
            let cx = flow();
            let unmatched = self.combine(&r.l4, &Best::EMPTY, src, dst);
            let p = if ix.has_tables(&cx, k) {
                ix.prepare(&cx, k, &r.l4, unmatched)
            } else {
                None
            };
            r.prepared = Some((k, p.unwrap_or(Prepared::Fixed(unmatched))));
        }
        match &r.prepared {
            Some((_, Prepared::Fixed(d))) => *d,
            Some((_, Prepared::Tables { len, at, unmatched })) => {
                let tables = at.get(..usize::from(*len)).unwrap_or(&[]);
                self.judge_via(
                    ix,
                    Via::Prepared(tables, unmatched),
                    &r.l4,
                    src,
                    dst,
                    kind,
                    req,
                    norm_path,
                )
            }
            _ => {
                let cx = flow();
                self.judge_via(ix, Via::Index(&cx), &r.l4, src, dst, kind, req, norm_path)
            }
        }
    }

    /// The decision from the flow's rules without L7 matchers (`l4`) and the transaction's
    /// matching L7 clauses (`l7`): module doc, "Semantics".
    fn combine(&self, l4: &Best, l7: &Best, src: &Endpoint, dst: &Endpoint) -> Decision {
        let capture = l4.capture || l7.capture;
        let deny = l4.deny.min(l7.deny);
        let alert = l4.alert.min(l7.alert);
        let (decided, constrained) = if deny != NONE {
            (deny, false)
        } else if alert != NONE {
            (alert, false)
        } else if l4.allow != NONE {
            (l4.allow, false)
        } else {
            (l7.allow, l7.allow != NONE)
        };
        self.decide(src, dst, decided, constrained, capture)
    }

    /// Judges a transaction of kind `kind` (`None`: no typed detail) whose tables are
    /// found `via` the index or the flow's prepared ones.
    #[allow(clippy::too_many_arguments)]
    fn judge_via(
        &self,
        ix: &L7Index,
        via: Via<'_>,
        l4: &Best,
        src: &Endpoint,
        dst: &Endpoint,
        kind: Option<usize>,
        req: &RequestDetail<'_>,
        norm_path: Option<&[u8]>,
    ) -> Decision {
        let decide = |l7: &Best| match via {
            Via::Prepared(_, unmatched) if l7.is_empty() => *unmatched,
            _ => self.combine(l4, l7, src, dst),
        };
        let mut best = Best::EMPTY;
        let k = match (kind, via) {
            (Some(k), Via::Prepared(..)) => k,
            (Some(k), Via::Index(cx)) if ix.has_tables(cx, k) => k,
            // No L7 rule can apply: the L4 rules decide, as for the flow (and every SQL
            // statement would get this same decision).
            _ => return decide(&best),
        };
        match req {
            RequestDetail::None => {}
            RequestDetail::Http(h) => {
                let s = ix.subject(
                    k,
                    [
                        Vals::One(h.method),
                        Vals::One(path_of(norm_path, h.path)),
                        h.authority.map_or(Vals::Absent, Vals::Host),
                    ],
                    h.headers,
                );
                ix.eval(via, &s, &mut best);
            }
            RequestDetail::Grpc(g) => {
                let s = ix.subject(
                    k,
                    [Vals::One(g.service), Vals::One(g.method), Vals::Absent],
                    &[],
                );
                ix.eval(via, &s, &mut best);
            }
            RequestDetail::Redis(r) => {
                let s = ix.subject(k, [Vals::One(r.command), opt(r.key), Vals::Absent], &[]);
                ix.eval(via, &s, &mut best);
            }
            RequestDetail::Dns(q) => {
                let name = q.qname.trim_end_matches('.');
                let s = ix.subject(
                    k,
                    [Vals::One(name.as_bytes()), Vals::Absent, Vals::Absent],
                    &[],
                );
                ix.eval(via, &s, &mut best);
            }
            RequestDetail::Tls(t) => {
                let s = ix.subject(
                    k,
                    [
                        t.sni.map_or(Vals::Absent, Vals::Host),
                        Vals::Any(t.alpn),
                        Vals::Absent,
                    ],
                    &[],
                );
                ix.eval(via, &s, &mut best);
            }
            RequestDetail::Sql(q) => return self.judge_sql(ix, via, q, decide),
        }
        decide(&best)
    }

    /// One decision per statement; the most severe wins (first statement on ties).
    fn judge_sql(
        &self,
        ix: &L7Index,
        via: Via<'_>,
        q: &SqlRequest<'_>,
        decide: impl Fn(&Best) -> Decision,
    ) -> Decision {
        let k = kind_index(L7Kind::Sql);
        let db = ix.dict(k, SQL_DATABASE);
        let user = ix.dict(k, SQL_USER);
        let db_probe = || Probe::new(db, opt(q.database));
        let user_probe = || Probe::new(user, opt(q.user));
        let judge_one = |verb: &str, tables: &[&str], login: bool| {
            let s = Subject {
                kind: k,
                probes: [
                    if login {
                        Probe::ABSENT
                    } else {
                        Probe::new(ix.dict(k, SQL_VERB), Vals::One(verb.as_bytes()))
                    },
                    db_probe(),
                    user_probe(),
                ],
                headers: &[],
                login,
                tables: &[],
            };
            let s = Subject { tables, ..s };
            let mut best = Best::EMPTY;
            ix.eval(via, &s, &mut best);
            decide(&best)
        };
        if q.kind == SqlKind::Login {
            return judge_one("LOGIN", &[], true);
        }
        if q.statements.is_empty() {
            let verb = if q.kind == SqlKind::UseDatabase {
                "USE"
            } else {
                ""
            };
            return judge_one(verb, &[], false);
        }
        let mut out: Option<Decision> = None;
        let mut capture = false;
        for st in q.statements {
            let d = judge_one(verb_name(&st.verb), st.tables, false);
            capture |= d.capture;
            if out.is_none_or(|o| rank(d.action) > rank(o.action)) {
                out = Some(d);
            }
        }
        let mut d = out.unwrap_or_else(|| judge_one("", &[], false));
        d.capture |= capture;
        d
    }
}
