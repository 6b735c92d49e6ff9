//! Per-transaction (L7) decisions: rules' `http`, `grpc`, `sql`, `redis`, `dns` and `tls`
//! matchers compiled into indexes, and [`crate::PolicySnapshot::judge_request`].
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
//! ([`crate::PolicySnapshot::judge_transaction_cached`]): at a flow's first one it keeps
//! which rules without L7 matchers cover it; at its second (per L7 kind) which tables and
//! clauses could still change its decision, their groups, ports, transport and protocol
//! already checked (at most two tables of up to 128 clauses, else the index as above), or
//! the decision itself when none can. Later transactions look up only their own fields.
//!
//! # Semantics (PRODUCT.md, plus these decisions)
//!
//! - Deny wins: a matching deny rule (with matching L7 matchers, or without L7 matchers and
//!   covering the flow) gives Deny; else an alert rule gives Alert; else an allow rule
//!   without L7 matchers covering the flow allows every transaction; else an allow rule with
//!   matching L7 matchers allows it; else the mode decides, exactly as in
//!   [`crate::PolicySnapshot::judge_flow`]. The lowest-numbered rule of the winning action
//!   names the decision. `capture` is set if a covering rule without L7 matchers, or a
//!   rule whose L7 matchers matched, captures. `l7_constrained` is set when an allow rule
//!   with L7 matchers decided.
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

// In dependency order: `bits` and `dict` are the building blocks; `index` is the
// compiled form; `compile` builds it from compiled rules (before the snapshot that holds
// it exists); `eval` matches one request against it; `judge` is the snapshot's
// transaction API and its per-flow cache.
mod bits;
mod compile;
mod dict;
mod eval;
pub(crate) mod index;
mod judge;
#[cfg(test)]
mod tests;

use crate::model::L7Kind;

pub use judge::FlowRules;

/// Whether the HTTP path pattern `pattern` (as a rule writes it) matches the normalised
/// request path `path`, with the semantics and the normalisation of a compiled policy.
pub fn path_pattern_matches(pattern: &str, path: &str) -> bool {
    dict::key_matches(
        &dict::path_key(&compile::rule_path(pattern)),
        path.as_bytes(),
        false,
    )
}

/// Whether the DNS name or TLS server name pattern `pattern` (exact or a domain glob)
/// matches `name`, as a compiled policy compares them (case-insensitively, without a
/// trailing dot).
pub fn name_pattern_matches(pattern: &str, name: &str) -> bool {
    dict::key_matches(
        &dict::domain_key(pattern),
        name.trim_end_matches('.').as_bytes(),
        true,
    )
}

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

/// A required header: lower-case name, exact value.
type HeaderPair = (Box<[u8]>, Box<[u8]>);
type HeaderPairs = Box<[HeaderPair]>;

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
