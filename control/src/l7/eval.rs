//! Evaluating the index for one request or SQL statement: the source groups, then each
//! field the remaining clauses constrain (looked up once), then the clauses' ports,
//! transport, protocol and headers; and what a flow's later transactions can skip
//! ([`Prepared`]).

use proto_parsers::AppProto;
use proto_parsers::facts::Header;

use super::bits::{self, MAX_WORDS, NARROW_WORDS};
use super::dict::{Dict, Hits};
use super::index::{Clause, FieldIx, L7Index, SqlIx, Table};
use super::{HeaderPair, MAX_FIELDS, NONE, SQL_VERB, host_of};
use crate::rule::{Transport, ports_match};
use crate::snapshot::Decision;
use crate::vocab::{Action, GroupId};

impl FieldIx {
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
}

/// The value(s) of one request field.
#[derive(Clone, Copy)]
pub(super) enum Vals<'a> {
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
pub(super) struct Probe<'a> {
    dict: Option<&'a Dict>,
    vals: Vals<'a>,
}

impl<'a> Probe<'a> {
    pub(super) const ABSENT: Probe<'static> = Probe {
        dict: None,
        vals: Vals::Absent,
    };

    pub(super) fn new(dict: Option<&'a Dict>, vals: Vals<'a>) -> Probe<'a> {
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
pub(super) struct Subject<'a> {
    pub(super) kind: usize,
    pub(super) probes: [Probe<'a>; MAX_FIELDS],
    pub(super) headers: &'a [Header<'a>],
    /// SQL only.
    pub(super) login: bool,
    pub(super) tables: &'a [&'a str],
}

/// Tables a [`Prepared::Tables`] holds.
const PREPARED_TABLES: usize = 2;

/// What is left to judge of a flow's transactions of one L7 kind once the flow is known.
#[derive(Clone, Copy, Debug)]
pub(super) enum Prepared {
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
pub(super) enum Via<'a> {
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
pub(super) struct Best {
    pub(super) deny: u32,
    pub(super) alert: u32,
    pub(super) allow: u32,
    pub(super) capture: bool,
}

impl Best {
    pub(super) const EMPTY: Best = Best {
        deny: NONE,
        alert: NONE,
        allow: NONE,
        capture: false,
    };

    /// No rule at all (what no matching clause leaves).
    pub(super) fn is_empty(&self) -> bool {
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

/// Everything about the flow that a clause's rule must also match.
pub(super) struct FlowCtx<'s> {
    pub(super) src: &'s [GroupId],
    pub(super) dst: &'s [GroupId],
    pub(super) dport: u16,
    pub(super) transport: Transport,
    pub(super) app: AppProto,
}

impl L7Index {
    /// The lowest covering rule without L7 matchers per action, and their capture.
    pub(super) fn l4_best(&self, cx: &FlowCtx<'_>) -> Best {
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

    pub(super) fn subject<'a>(
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
    pub(super) fn has_tables(&self, cx: &FlowCtx<'_>, kind: usize) -> bool {
        cx.dst
            .iter()
            .map(|g| usize::from(g.0))
            .chain([self.groups])
            .any(|slot| !self.tables_for(slot, kind).is_empty())
    }

    /// Adds to `best` the L7 rules whose clauses match `s` and whose groups, port and
    /// protocol match the flow.
    pub(super) fn eval(&self, via: Via<'_>, s: &Subject<'_>, best: &mut Best) {
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
    pub(super) fn prepare(
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
