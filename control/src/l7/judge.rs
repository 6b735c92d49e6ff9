//! The transaction judge: [`PolicySnapshot::judge_request`],
//! [`PolicySnapshot::judge_transaction`] and, for the worker,
//! [`PolicySnapshot::judge_transaction_cached`] with its per-flow [`FlowRules`]; and how a
//! request's fields are read (path, SQL verbs).

use proto_parsers::AppProto;
use proto_parsers::facts::{RequestDetail, SqlKind, SqlRequest, SqlVerb};

use super::eval::{Best, FlowCtx, Prepared, Probe, Subject, Vals, Via};
use super::index::L7Index;
use super::{NONE, SQL_DATABASE, SQL_USER, SQL_VERB, kind_index};
use crate::model::L7Kind;
use crate::rule::Transport;
use crate::snapshot::{Decision, Endpoint, PolicySnapshot};
use crate::vocab::Action;

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
    pub(super) prepared: Option<(usize, Prepared)>,
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
