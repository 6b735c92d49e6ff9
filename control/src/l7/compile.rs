//! The L7 compiler: from compiled rules to the [`L7Index`] (clauses, dictionaries,
//! tables, postings and the index of rules without L7 matchers). Runs once per snapshot,
//! inside [`crate::snapshot`]'s build; fails only on limits.

use foldhash::{HashMap, HashMapExt};

use super::bits::{self, Bits, MAX_CLAUSES, NARROW_WORDS, Posting, words_for};
use super::dict::{self, Dict, DictBuilder, Key};
use super::index::{
    CellIndex, Clause, FieldIx, Find, L4Ref, L7Index, NO_ROW, Postings, SqlIx, Table, TableDict,
};
use super::{ANY_KEY, HeaderPairs, KINDS, MAX_FIELDS, host_of, kind_index};
use crate::model::{L7Kind, L7Matchers, Patterns};
use crate::rule::{CompiledRule, TransportApp};
use crate::vocab::Action;

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
pub(super) fn rule_path(p: &str) -> String {
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

const DENSE_SPREAD: usize = 16;

impl Find {
    /// `ids` ascending, distinct.
    pub(super) fn new(ids: &[u32]) -> Find {
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
}

/// A narrow table's ids may spread this much for [`Postings::Direct`] (its memory is then
/// at most this many rows per listed id).
const DIRECT_SPREAD: usize = 8;

impl FieldIx {
    /// `None` when no clause constrains the field (the field is then skipped).
    pub(super) fn build<'a>(
        n: usize,
        per_clause: impl Iterator<Item = Option<&'a [u32]>>,
    ) -> Option<Self> {
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
