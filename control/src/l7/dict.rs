//! Policy-wide dictionaries of matcher values, one per (L7 kind, field).
//!
//! Every distinct value a rule lists gets an id: exact values through one hash map, patterns
//! (globs, path patterns, `regex:`) through one anchored multi-pattern DFA. A request value is
//! looked up once per field ([`Dict::lookup`]), whatever the number of rules; tables then map
//! the ids to the clauses that listed them. A dictionary with patterns and only a few exact
//! values compiles those as literal patterns too, so its lookup is a single DFA pass; the
//! DFA is walked byte by byte and read once after the end of the value (every pattern is
//! anchored at both ends), not searched match by match.
//!
//! Patterns are compiled to regular expressions that must match the whole value (the DFA
//! search is anchored at the start and every pattern ends in `$`). Globs are translated to
//! byte-oriented regexes (`(?-u)`, every non-alphanumeric byte escaped as `\xHH`) so that no
//! glob character can be read as regex syntax.

use std::fmt::Write as _;

use foldhash::{HashMap, HashMapExt};
use regex_automata::dfa::{Automaton, OverlappingState, StartKind, dense};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, meta};

/// Distinct ids one lookup records before falling back to re-running the search per table.
pub(crate) const MAX_HITS: usize = 32;
/// Case-insensitive exact values up to this length are hashed; longer ones become
/// case-insensitive literal patterns, so lookups lower-case into a fixed stack buffer.
pub(crate) const FOLD_MAX: usize = 256;
/// Size limit of one dictionary's DFA (and of its determinisation). Above it the
/// dictionary falls back to one lazy regex per pattern: slower, still correct.
const DFA_SIZE_LIMIT: usize = 16 << 20;
const NFA_SIZE_LIMIT: usize = 4 << 20;
/// A dictionary with patterns and at most this many exact values searches the exact
/// values with the same DFA ([`DictBuilder::build_merged`]).
const MERGE_EXACT_MAX: usize = 64;

/// One value a clause lists, before interning.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Exact(Vec<u8>),
    /// A regular expression (see the module doc) matched against the whole value.
    Pattern(String),
}

/// The ids a request value matched.
pub(crate) struct Hits {
    ids: [u32; MAX_HITS],
    len: usize,
    /// More than [`MAX_HITS`] ids: callers search again per table ([`Dict::lookup_each`]).
    pub(crate) overflow: bool,
}

impl Hits {
    pub(crate) const fn new() -> Hits {
        Hits {
            ids: [0; MAX_HITS],
            len: 0,
            overflow: false,
        }
    }

    #[inline]
    fn push(&mut self, id: u32) {
        match self.ids.get_mut(self.len) {
            Some(slot) => {
                *slot = id;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    pub(crate) fn ids(&self) -> &[u32] {
        self.ids.get(..self.len).unwrap_or(&[])
    }
}

pub(crate) struct DictBuilder {
    fold: bool,
    exact: HashMap<Vec<u8>, u32>,
    patterns: HashMap<String, u32>,
    order: Vec<String>,
    next: u32,
}

impl DictBuilder {
    /// `fold`: values compare ASCII case-insensitively (exact keys are stored lower-case,
    /// patterns must carry their own `(?i)`).
    pub(crate) fn new(fold: bool) -> Self {
        DictBuilder {
            fold,
            exact: HashMap::new(),
            patterns: HashMap::new(),
            order: Vec::new(),
            next: 0,
        }
    }

    pub(crate) fn id(&mut self, key: Key) -> u32 {
        match key {
            Key::Exact(mut v) => {
                if self.fold {
                    v.make_ascii_lowercase();
                    if v.len() > FOLD_MAX {
                        return self.id(Key::Pattern(format!("(?i-u){}$", escape_bytes(&v))));
                    }
                }
                let next = &mut self.next;
                *self.exact.entry(v).or_insert_with(|| {
                    let id = *next;
                    *next += 1;
                    id
                })
            }
            Key::Pattern(p) => {
                if let Some(&id) = self.patterns.get(&p) {
                    return id;
                }
                let id = self.next;
                self.next += 1;
                self.patterns.insert(p.clone(), id);
                self.order.push(p);
                id
            }
        }
    }

    /// As [`DictBuilder::build`], but when the dictionary has patterns anyway and few
    /// exact values, those become literal patterns of the same DFA: a lookup is then one
    /// pass over the value instead of a hash of it and a pass. Falls back to
    /// [`DictBuilder::build`] if that DFA cannot be built.
    pub(crate) fn build_merged(self) -> Result<Dict, String> {
        if self.order.is_empty() || self.exact.is_empty() || self.exact.len() > MERGE_EXACT_MAX {
            return self.build();
        }
        let prefix = if self.fold { "(?i-u)" } else { "(?-u)" };
        let mut patterns = self.order.clone();
        let mut ids: Vec<u32> = self
            .order
            .iter()
            .filter_map(|p| self.patterns.get(p).copied())
            .collect();
        for (v, &id) in &self.exact {
            patterns.push(format!("{prefix}{}$", escape_bytes(v)));
            ids.push(id);
        }
        match build_dfa(&patterns) {
            Ok(dfa) if ids.len() == patterns.len() => Ok(Dict {
                fold: self.fold,
                exact: HashMap::new(),
                pats: Pats::Dfa {
                    dfa: Box::new(dfa),
                    ids: ids.into_boxed_slice(),
                },
            }),
            _ => self.build(),
        }
    }

    pub(crate) fn build(self) -> Result<Dict, String> {
        let ids: Box<[u32]> = self
            .order
            .iter()
            .filter_map(|p| self.patterns.get(p).copied())
            .collect();
        let pats = if self.order.is_empty() {
            Pats::None
        } else {
            match build_dfa(&self.order) {
                Ok(dfa) => Pats::Dfa {
                    dfa: Box::new(dfa),
                    ids,
                },
                Err(_) => {
                    let mut each = Vec::with_capacity(self.order.len());
                    for (p, &id) in self.order.iter().zip(ids.iter()) {
                        let re = meta::Regex::builder()
                            .syntax(syntax::Config::new().utf8(false))
                            .configure(
                                meta::Regex::config()
                                    .utf8_empty(false)
                                    .nfa_size_limit(Some(NFA_SIZE_LIMIT)),
                            )
                            .build(p)
                            .map_err(|e| format!("pattern `{p}` does not compile: {e}"))?;
                        each.push((re, id));
                    }
                    Pats::Each(each.into_boxed_slice())
                }
            }
        };
        Ok(Dict {
            fold: self.fold,
            exact: self
                .exact
                .into_iter()
                .map(|(k, v)| (k.into_boxed_slice(), v))
                .collect(),
            pats,
        })
    }
}

fn build_dfa(patterns: &[String]) -> Result<dense::DFA<Vec<u32>>, String> {
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
        )
        .syntax(syntax::Config::new().utf8(false))
        .thompson(
            thompson::Config::new()
                .utf8(false)
                .nfa_size_limit(Some(NFA_SIZE_LIMIT)),
        )
        .build_many(patterns)
        .map_err(|e| e.to_string())
}

enum Pats {
    None,
    Dfa {
        // Boxed: the DFA header is large and most dictionaries have no patterns.
        dfa: Box<dense::DFA<Vec<u32>>>,
        /// Pattern index -> value id.
        ids: Box<[u32]>,
    },
    /// The DFA was too large (or a pattern needs features a DFA lacks, such as a Unicode
    /// word boundary): one lazy regex per pattern.
    Each(Box<[(meta::Regex, u32)]>),
}

/// The compiled dictionary of one field.
pub(crate) struct Dict {
    fold: bool,
    exact: HashMap<Box<[u8]>, u32>,
    pats: Pats,
}

impl std::fmt::Debug for Dict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, n) = match &self.pats {
            Pats::None => ("none", 0),
            Pats::Dfa { ids, .. } => ("dfa", ids.len()),
            Pats::Each(e) => ("each", e.len()),
        };
        f.debug_struct("Dict")
            .field("fold", &self.fold)
            .field("exact", &self.exact.len())
            .field("patterns", &n)
            .field("engine", &kind)
            .finish()
    }
}

impl Dict {
    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && matches!(self.pats, Pats::None)
    }

    /// Records in `hits` the ids `v` matches.
    #[inline]
    pub(crate) fn lookup(&self, v: &[u8], hits: &mut Hits) {
        self.lookup_each(v, |id| hits.push(id));
    }

    /// Calls `f` with every id `v` matches (exact first, then patterns).
    pub(crate) fn lookup_each(&self, v: &[u8], mut f: impl FnMut(u32)) {
        if let Some(id) = self.exact_id(v) {
            f(id);
        }
        match &self.pats {
            Pats::None => {}
            Pats::Dfa { dfa, ids } => {
                // Every pattern must match the whole value (they all end in `$`), so
                // only the matches at the end count: walk the DFA over the value once
                // and read the patterns of the state after the end of input, instead of
                // an overlapping search that stops at every earlier match.
                let input = Input::new(v).anchored(Anchored::Yes);
                // Cannot fail: the search is anchored and anchored starts are compiled
                // in. Should it ever fail, the patterns simply do not match.
                let Ok(mut sid) = dfa.start_state_forward(&input) else {
                    return;
                };
                for &b in v {
                    sid = dfa.next_state(sid, b);
                    if dfa.is_special_state(sid) {
                        if dfa.is_dead_state(sid) {
                            return;
                        }
                        if dfa.is_quit_state(sid) {
                            // No quit bytes are configured; if one ever appears, fall
                            // back to the library's own search.
                            overlapping(dfa, ids, &input, &mut f);
                            return;
                        }
                    }
                }
                sid = dfa.next_eoi_state(sid);
                if dfa.is_match_state(sid) {
                    for i in 0..dfa.match_len(sid) {
                        if let Some(&id) = ids.get(dfa.match_pattern(sid, i).as_usize()) {
                            f(id);
                        }
                    }
                }
            }
            Pats::Each(each) => {
                for (re, id) in each.iter() {
                    if re.is_match(Input::new(v).anchored(Anchored::Yes)) {
                        f(*id);
                    }
                }
            }
        }
    }

    /// The id of `v` as an exact value (lower-cased first when the field folds case).
    #[inline]
    pub(crate) fn exact_id(&self, v: &[u8]) -> Option<u32> {
        if self.exact.is_empty() {
            return None;
        }
        if !self.fold {
            return self.exact.get(v).copied();
        }
        let mut buf = [0u8; FOLD_MAX];
        let lower = buf.get_mut(..v.len())?;
        lower.copy_from_slice(v);
        lower.make_ascii_lowercase();
        self.exact.get(&*lower).copied()
    }
}

/// Every pattern matching the whole input, by the library's overlapping search.
#[cold]
fn overlapping(
    dfa: &dense::DFA<Vec<u32>>,
    ids: &[u32],
    input: &Input<'_>,
    f: &mut impl FnMut(u32),
) {
    let mut state = OverlappingState::start();
    while dfa.try_search_overlapping_fwd(input, &mut state).is_ok() {
        let Some(m) = state.get_match() else {
            break;
        };
        if m.offset() == input.haystack().len()
            && let Some(&id) = ids.get(m.pattern().as_usize())
        {
            f(id);
        }
    }
}

/// Every byte but ASCII letters and digits as `\xHH`: safe inside any regex, and matches
/// that exact byte in `(?-u)` mode.
pub(crate) fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for &c in b {
        if c.is_ascii_alphanumeric() {
            s.push(char::from(c));
        } else {
            let _ = write!(s, "\\x{c:02x}");
        }
    }
    s
}

/// Whether `key` matches the whole of `v`, as a [`Dict`] holding only `key` would say
/// (`fold`: compared case-insensitively, as for names). For checks outside the hot path
/// (the learner's coverage check): compiles the pattern on every call.
pub(crate) fn key_matches(key: &Key, v: &[u8], fold: bool) -> bool {
    match key {
        Key::Exact(e) if fold => e.eq_ignore_ascii_case(v),
        Key::Exact(e) => e.as_slice() == v,
        Key::Pattern(p) => meta::Regex::builder()
            .syntax(syntax::Config::new().utf8(false))
            .configure(
                meta::Regex::config()
                    .utf8_empty(false)
                    .nfa_size_limit(Some(NFA_SIZE_LIMIT)),
            )
            .build(p)
            .is_ok_and(|re| re.is_match(Input::new(v).anchored(Anchored::Yes))),
    }
}

/// A host, SNI or DNS name pattern. Compared case-insensitively without a trailing dot. A
/// label that is exactly `*` stands for **one or more** whole labels (`*.svc.cluster.local`
/// matches `a.svc.cluster.local` and `a.b.svc.cluster.local`, not `svc.cluster.local`); a `*`
/// inside a label (`web-*`) for any run of characters other than `.`.
pub(crate) fn domain_key(p: &str) -> Key {
    let p = p.trim_end_matches('.').to_ascii_lowercase();
    if !p.contains('*') {
        return Key::Exact(p.into_bytes());
    }
    let mut re = String::from("(?i-u)");
    for (i, label) in p.split('.').enumerate() {
        if i > 0 {
            re.push_str(r"\x2e");
        }
        if label == "*" {
            re.push_str(r"[^.]+(?:\x2e[^.]+)*");
        } else {
            for (j, part) in label.split('*').enumerate() {
                if j > 0 {
                    re.push_str("[^.]*");
                }
                re.push_str(&escape_bytes(part.as_bytes()));
            }
        }
    }
    re.push('$');
    Key::Pattern(re)
}

/// A path pattern (see PRODUCT.md): exact; a final `/*` for one or more characters after
/// the slash (`/api/*` matches `/api/x` and `/api/x/y`, not `/api` nor `/api/`); `*` as
/// a whole segment elsewhere for exactly one non-empty segment; or `regex:` followed by a
/// regular expression that must match the whole normalised path (query excluded).
pub(crate) fn path_key(p: &str) -> Key {
    if let Some(re) = p.strip_prefix("regex:") {
        return Key::Pattern(format!("(?:{re})$"));
    }
    if !p.contains('*') {
        return Key::Exact(p.as_bytes().to_vec());
    }
    let segs: Vec<&str> = p.split('/').collect();
    let last = segs.len().saturating_sub(1);
    let mut re = String::from("(?-u)");
    for (i, seg) in segs.iter().enumerate() {
        if i > 0 {
            re.push_str(r"\x2f");
        }
        match *seg {
            "*" if i == last && i > 0 => re.push_str("(?s:.)+"),
            "*" => re.push_str("[^/]+"),
            s => re.push_str(&escape_bytes(s.as_bytes())),
        }
    }
    re.push('$');
    Key::Pattern(re)
}

/// A Redis key glob, as Redis's own `KEYS`: `*` any run of bytes, `?` one byte,
/// `[abc]`/`[^a-z]` a class, `\` escapes the next character. Case-sensitive.
pub(crate) fn redis_key(p: &str) -> Key {
    if !p.contains(['*', '?', '[', '\\']) {
        return Key::Exact(p.as_bytes().to_vec());
    }
    let b = p.as_bytes();
    let mut re = String::from("(?s-u)");
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'*' => re.push_str(".*"),
            b'?' => re.push('.'),
            b'\\' => {
                if let Some(&n) = b.get(i) {
                    re.push_str(&escape_bytes(&[n]));
                    i += 1;
                } else {
                    re.push_str(&escape_bytes(b"\\"));
                }
            }
            b'[' => match b.get(i..).and_then(|rest| {
                // `]` right after `[` or `[^` is a member, as in Redis.
                let skip = usize::from(rest.first() == Some(&b'^'));
                rest.iter()
                    .skip(skip + 1)
                    .position(|&x| x == b']')
                    .map(|p| p + skip + 1)
            }) {
                Some(close) => {
                    let body = b.get(i..i + close).unwrap_or(&[]);
                    re.push('[');
                    let (neg, body) = match body.split_first() {
                        Some((b'^', rest)) => (true, rest),
                        _ => (false, body),
                    };
                    if neg {
                        re.push('^');
                    }
                    for (k, &x) in body.iter().enumerate() {
                        let inner = k > 0 && k + 1 < body.len();
                        if x == b'-' && inner {
                            re.push('-');
                        } else {
                            re.push_str(&escape_bytes(&[x]));
                        }
                    }
                    re.push(']');
                    i += close + 1;
                }
                None => re.push_str(&escape_bytes(b"[")),
            },
            other => re.push_str(&escape_bytes(&[other])),
        }
    }
    re.push('$');
    Key::Pattern(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(fold: bool, keys: &[Key]) -> (Dict, Vec<u32>) {
        let mut b = DictBuilder::new(fold);
        let ids = keys.iter().map(|k| b.id(k.clone())).collect();
        (b.build().unwrap(), ids)
    }

    fn hits(d: &Dict, v: &str) -> Vec<u32> {
        let mut h = Hits::new();
        d.lookup(v.as_bytes(), &mut h);
        let mut v = h.ids().to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn domain_globs() {
        let keys = [
            domain_key("*.svc.cluster.local"),
            domain_key("Orders.Shop."),
            domain_key("web-*.shop"),
        ];
        let (d, ids) = dict(true, &keys);
        assert_eq!(hits(&d, "a.svc.cluster.local"), [ids[0]]);
        assert_eq!(hits(&d, "a.b.SVC.cluster.local"), [ids[0]]);
        assert!(hits(&d, "svc.cluster.local").is_empty());
        assert!(hits(&d, "evil-svc.cluster.local").is_empty());
        assert!(hits(&d, "a.svc.cluster.local.evil").is_empty());
        assert_eq!(hits(&d, "ORDERS.shop"), [ids[1]]);
        assert_eq!(hits(&d, "web-1.shop"), [ids[2]]);
        assert_eq!(hits(&d, "web-.shop"), [ids[2]]);
        assert!(hits(&d, "web-1.x.shop").is_empty());
    }

    #[test]
    fn path_patterns() {
        let keys = [
            path_key("/api/*"),
            path_key("/users/*/orders"),
            path_key("/exact"),
            path_key("regex:/v[0-9]+/.*"),
            path_key("/a.b/*"),
        ];
        let (d, ids) = dict(false, &keys);
        assert_eq!(hits(&d, "/api/x"), [ids[0]]);
        assert_eq!(hits(&d, "/api/x/y"), [ids[0]]);
        assert!(hits(&d, "/api").is_empty());
        assert!(hits(&d, "/api/").is_empty());
        assert!(hits(&d, "/apix/y").is_empty());
        assert_eq!(hits(&d, "/users/7/orders"), [ids[1]]);
        assert!(hits(&d, "/users//orders").is_empty());
        assert!(hits(&d, "/users/7/8/orders").is_empty());
        assert!(hits(&d, "/users/7/orders/x").is_empty());
        assert_eq!(hits(&d, "/exact"), [ids[2]]);
        assert!(hits(&d, "/Exact").is_empty());
        assert_eq!(hits(&d, "/v2/x"), [ids[3]]);
        assert!(
            hits(&d, "/x/v2/x").is_empty(),
            "regex is anchored at the start"
        );
        // `.` in a literal segment is not a regex wildcard.
        assert_eq!(hits(&d, "/a.b/c"), [ids[4]]);
        assert!(hits(&d, "/aXb/c").is_empty());
    }

    #[test]
    fn redis_globs() {
        let keys = [
            redis_key("user:*"),
            redis_key("h?llo"),
            redis_key("h[ae]llo"),
            redis_key("x[^a-c]y"),
            redis_key("lit\\*"),
            redis_key("plain"),
        ];
        let (d, ids) = dict(false, &keys);
        assert_eq!(hits(&d, "user:1"), [ids[0]]);
        assert_eq!(hits(&d, "user:"), [ids[0]]);
        assert!(hits(&d, "User:1").is_empty());
        assert_eq!(hits(&d, "hallo"), [ids[1], ids[2]]);
        assert_eq!(hits(&d, "hxllo"), [ids[1]]);
        assert_eq!(hits(&d, "xdy"), [ids[3]]);
        assert!(hits(&d, "xby").is_empty());
        assert_eq!(hits(&d, "lit*"), [ids[4]]);
        assert!(hits(&d, "litx").is_empty());
        assert_eq!(hits(&d, "plain"), [ids[5]]);
        // Unterminated class and trailing backslash are literals, not errors.
        let (d, ids) = dict(false, &[redis_key("a[b"), redis_key("a\\")]);
        assert_eq!(hits(&d, "a[b"), [ids[0]]);
        assert_eq!(hits(&d, "a\\"), [ids[1]]);
    }

    /// Exact values merged into the pattern DFA are found as the hash map finds them.
    #[test]
    fn merged_exact_values() {
        for fold in [false, true] {
            let keys = [
                Key::Exact(b"/healthz".to_vec()),
                Key::Exact(b"Api.Shop".to_vec()),
                path_key("/api/*"),
                domain_key("*.shop"),
                Key::Exact(b"a.b".to_vec()),
            ];
            let mut b = DictBuilder::new(fold);
            let ids: Vec<u32> = keys.iter().map(|k| b.id(k.clone())).collect();
            let d = b.build_merged().unwrap();
            assert!(d.exact.is_empty() && matches!(d.pats, Pats::Dfa { .. }));
            assert_eq!(hits(&d, "/healthz"), [ids[0]]);
            assert!(hits(&d, "/healthz/").is_empty());
            assert!(hits(&d, "/health").is_empty());
            assert_eq!(hits(&d, "/api/x"), [ids[2]]);
            assert!(hits(&d, "aXb").is_empty(), "`.` is a literal");
            assert_eq!(hits(&d, "a.b"), [ids[4]]);
            // Domain patterns fold case in any dictionary; exact values only in a
            // folding one.
            let upper = hits(&d, "API.SHOP");
            if fold {
                assert_eq!(upper, [ids[1], ids[3]]);
            } else {
                assert_eq!(upper, [ids[3]]);
                assert_eq!(hits(&d, "Api.Shop"), [ids[1], ids[3]]);
            }
        }
    }

    #[test]
    fn folding_and_long_values() {
        let long = "a".repeat(FOLD_MAX + 10);
        let keys = [
            Key::Exact(b"SELECT".to_vec()),
            Key::Exact(long.as_bytes().to_vec()),
        ];
        let (d, ids) = dict(true, &keys);
        assert_eq!(hits(&d, "select"), [ids[0]]);
        assert_eq!(hits(&d, "SeLeCt"), [ids[0]]);
        assert_eq!(hits(&d, &long.to_ascii_uppercase()), [ids[1]]);
        let (d, _) = dict(false, &[Key::Exact(b"GET".to_vec())]);
        assert!(hits(&d, "get").is_empty());
    }

    #[test]
    fn many_hits_overflow() {
        // Distinct spellings of one regex: every one matches.
        let mut keys: Vec<Key> = (0..MAX_HITS + 5)
            .map(|i| Key::Pattern(format!("(?-u)a{}.*$", "(?:)".repeat(i))))
            .collect();
        keys.push(keys[0].clone());
        let (d, ids) = dict(false, &keys);
        assert_eq!(ids[0], ids[MAX_HITS + 5], "identical patterns share an id");
        let mut h = Hits::new();
        d.lookup(b"abc", &mut h);
        assert!(h.overflow);
        assert_eq!(h.ids().len(), MAX_HITS);
        let mut all = Vec::new();
        d.lookup_each(b"abc", |id| all.push(id));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), MAX_HITS + 5);
    }

    #[test]
    fn dfa_fallback_for_unicode_word_boundary() {
        // A Unicode `\b` cannot be compiled into a DFA: the per-pattern fallback serves it.
        let mut b = DictBuilder::new(false);
        let id = b.id(path_key(r"regex:/\bapi\b.*"));
        let d = b.build().unwrap();
        assert!(matches!(d.pats, Pats::Each(_)));
        assert_eq!(hits(&d, "/api/x"), [id]);
        assert!(hits(&d, "/apix").is_empty());
    }
}
