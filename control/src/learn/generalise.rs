//! How observed values become the patterns of a proposal, and how they are folded when a
//! cap is reached, so that every pattern still matches every value it stands for.
//!
//! Paths: a segment that is an identifier as a whole (digits, a UUID, 16 or more hex
//! digits) becomes the glob segment `*`; a segment with an identifier inside it
//! (`app.38674.js`, `logo-3f2a9c1b7d.png`, `u_12345`, an embedded UUID) becomes a
//! `regex:` piece in which only the identifier is a character class, the rest literal.
//! Names (`index.html`, `v2`, `orders`) stay. Glob syntax is used whenever it can say the
//! pattern; `regex:` otherwise (a partial segment, or a literal segment holding `*`, `?`
//! or `#`, which a glob cannot say).
//!
//! Folding (a [`PathSet`] or [`NameSet`] past its cap) only ever replaces a pattern with
//! one that matches everything the old one did: `/login/x` becomes `/login/*` but `/login`
//! stays `/login` (`/login/*` needs one character after the slash); past a second cap
//! everything below the root is `/*` and the root `/` stays.

use std::collections::BTreeMap;

/// One segment of a generalised path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// An identifier as a whole segment: glob `*`, regex `[^/]+`.
    Id,
    /// A segment with identifiers inside it: a regex piece matching it.
    Mixed(String),
}

/// Whether a whole path segment looks like an identifier rather than a name.
fn is_id(seg: &str) -> bool {
    let hex = seg.chars().all(|c| c.is_ascii_hexdigit());
    let digits = !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit());
    digits || is_uuid(seg) || (hex && seg.len() >= 16)
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        })
}

/// The regex text matching `s` literally. Only the characters the regex syntax gives a
/// meaning to outside a class are escaped (`\<` would be a word boundary, so no blanket
/// escaping).
pub(crate) fn regex_literal(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
}

const UUID_RE: &str = "[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}";

/// What an alphanumeric run inside a segment becomes: `None` when it is a name.
fn run_class(run: &str, out: &mut String) -> bool {
    let digits = run.bytes().filter(u8::is_ascii_digit).count();
    let letters = run.len() - digits;
    if digits == run.len() {
        // `app.38674.js`, `top-100`; `v2`, `2x` stay.
        if run.len() >= 3 {
            out.push_str("[0-9]+");
            return true;
        }
        return false;
    }
    if run.len() >= 8 && digits >= 1 && run.bytes().all(|b| b.is_ascii_hexdigit()) {
        // `3f2a9c1b7d`, a content hash.
        out.push_str("[0-9A-Fa-f]+");
        return true;
    }
    if run.len() >= 16 && digits >= 2 && letters >= 2 {
        // A random token (`aZ3kQ9...`).
        out.push_str("[0-9A-Za-z]+");
        return true;
    }
    // Digit runs of four or more inside a word (`u12345`, `session20240501`); shorter ones
    // (`v1`, `utf8`, `h264`) are part of the name.
    let mut changed = false;
    let mut piece = String::new();
    let b = run.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let is_digit = b.get(i).is_some_and(u8::is_ascii_digit);
        while b.get(i).is_some_and(|c| c.is_ascii_digit() == is_digit) {
            i += 1;
        }
        let part = run.get(start..i).unwrap_or("");
        if is_digit && part.len() >= 4 {
            piece.push_str("[0-9]+");
            changed = true;
        } else {
            regex_literal(part, &mut piece);
        }
    }
    if changed {
        out.push_str(&piece);
    }
    changed
}

fn segment(s: &str) -> Seg {
    // A segment holding `*` (which a glob cannot say literally) is any segment too.
    if is_id(s) || s.contains('*') {
        return Seg::Id;
    }
    let mut piece = String::with_capacity(s.len() + 8);
    let mut changed = false;
    let mut i = 0;
    while i < s.len() {
        let rest = s.get(i..).unwrap_or("");
        let before_ok = i == 0
            || s.as_bytes()
                .get(i - 1)
                .is_some_and(|c| !c.is_ascii_alphanumeric());
        if before_ok
            && rest.get(..36).is_some_and(is_uuid)
            && !rest
                .as_bytes()
                .get(36)
                .is_some_and(u8::is_ascii_alphanumeric)
        {
            piece.push_str(UUID_RE);
            changed = true;
            i += 36;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        if c.is_ascii_alphanumeric() {
            let len = rest
                .bytes()
                .position(|b| !b.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let run = rest.get(..len).unwrap_or("");
            if run_class(run, &mut piece) {
                changed = true;
            } else {
                regex_literal(run, &mut piece);
            }
            i += len;
        } else {
            regex_literal(&c.to_string(), &mut piece);
            i += c.len_utf8();
        }
    }
    if changed {
        Seg::Mixed(piece)
    } else {
        Seg::Lit(s.to_string())
    }
}

fn segments(path: &str) -> Vec<Seg> {
    path.split('/').map(segment).collect()
}

/// A literal segment a glob pattern can say as itself.
fn glob_safe(s: &str) -> bool {
    !s.contains(['*', '?', '#'])
}

fn render(segs: &[Seg]) -> String {
    let glob = segs.first().is_some_and(|s| *s == Seg::Lit(String::new()))
        && segs.iter().all(|s| match s {
            Seg::Lit(l) => glob_safe(l),
            Seg::Id => true,
            Seg::Mixed(_) => false,
        });
    let mut out = String::new();
    if glob {
        for (i, s) in segs.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match s {
                Seg::Lit(l) => out.push_str(l),
                _ => out.push('*'),
            }
        }
        return out;
    }
    out.push_str("regex:");
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        match s {
            Seg::Lit(l) => regex_literal(l, &mut out),
            Seg::Id => out.push_str("[^/]+"),
            Seg::Mixed(p) => out.push_str(p),
        }
    }
    out
}

/// `/orders/1234/items` -> `/orders/*/items`; `/static/app.38674.js` ->
/// `regex:/static/app\.[0-9]+\.js`. The result matches `path`.
pub fn generalise_path(path: &str) -> String {
    render(&segments(path))
}

/// A path exactly: the path itself when a glob can say it, else an escaped `regex:`.
pub(crate) fn literal_path(path: &str) -> String {
    if path.starts_with('/') && glob_safe(path) {
        path.to_string()
    } else {
        let mut o = String::from("regex:");
        regex_literal(path, &mut o);
        o
    }
}

/// The first-level fold of a path: `/first/...` -> `/first/*` (first generalised as its
/// segment was), a path of one segment (or `/first/`) unchanged.
fn fold1(path: &str) -> String {
    let segs = segments(path);
    let rest_empty = match segs.as_slice() {
        [_, _] => true,
        [_, _, Seg::Lit(l)] => l.is_empty(),
        _ => false,
    };
    match segs.as_slice() {
        [Seg::Lit(root), first, _, ..] if root.is_empty() && !rest_empty => match first {
            Seg::Lit(l) if glob_safe(l) => format!("/{l}/*"),
            Seg::Id => "/*/*".to_string(),
            Seg::Lit(l) => {
                let mut o = String::from("regex:/");
                regex_literal(l, &mut o);
                o.push_str("/(?s:.+)");
                o
            }
            Seg::Mixed(p) => format!("regex:/{p}/(?s:.+)"),
        },
        _ => render(&segs),
    }
}

/// The last fold: the root stays, everything below it is `/*`.
fn fold2(path: &str) -> String {
    if path == "/" {
        "/".into()
    } else if path.starts_with('/') {
        "/*".into()
    } else {
        // Not a path from the root (`*` of `OPTIONS *`): any such target.
        "regex:(?:[^/](?s:.*))?".into()
    }
}

/// Observed values kept as patterns, at most `cap` of them: past the cap every value is
/// folded again one level coarser (`pattern(level, value)`) until they fit or `max_level`
/// is reached. Each pattern keeps one observed value it stands for (the first), for the
/// coverage check.
#[derive(Clone, Debug, Default)]
struct FoldSet {
    level: u8,
    pats: BTreeMap<String, String>,
}

impl FoldSet {
    /// Adds `value`; returns true when a cap made the set fold.
    fn insert(
        &mut self,
        value: &str,
        cap: usize,
        max_level: u8,
        pattern: fn(u8, &str) -> String,
    ) -> bool {
        let p = pattern(self.level, value);
        if self.pats.contains_key(&p) {
            return false;
        }
        self.pats.insert(p, value.to_string());
        let mut folded = false;
        while self.pats.len() > cap && self.level < max_level {
            self.level += 1;
            folded = true;
            let old = std::mem::take(&mut self.pats);
            for ex in old.into_values() {
                self.pats.entry(pattern(self.level, &ex)).or_insert(ex);
            }
        }
        folded
    }
}

/// The patterns of one HTTP method of one rule, at most `cap` of them. Levels: 0
/// generalised paths; 1 first-segment folds; 2 the root and `/*`.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathSet(FoldSet);

impl PathSet {
    fn pattern(level: u8, path: &str) -> String {
        match level {
            0 => generalise_path(path),
            1 => fold1(path),
            _ => fold2(path),
        }
    }

    /// Adds `path`; returns true when a cap made the set fold.
    pub(crate) fn insert(&mut self, path: &str, cap: usize) -> bool {
        self.0.insert(path, cap, 2, Self::pattern)
    }

    /// (pattern, an observed path it stands for).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.pats.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.pats.len()
    }
}

/// DNS names or TLS server names of one rule, at most `cap` of them. Levels: 0 names;
/// 1 `*.<parent>`; 2 `*.<last two labels>`; 3 `*`.
#[derive(Clone, Debug, Default)]
pub(crate) struct NameSet(FoldSet);

impl NameSet {
    fn pattern(level: u8, name: &str) -> String {
        let labels: Vec<&str> = name.split('.').collect();
        match level {
            0 => name.to_string(),
            1 if labels.len() >= 3 => format!("*.{}", labels.get(1..).unwrap_or(&[]).join(".")),
            2 if labels.len() >= 3 => format!(
                "*.{}",
                labels.get(labels.len() - 2..).unwrap_or(&[]).join(".")
            ),
            3.. => "*".to_string(),
            _ => name.to_string(),
        }
    }

    /// Adds `name` (lower-case, no trailing dot, not empty); true when a cap folded the set.
    pub(crate) fn insert(&mut self, name: &str, cap: usize) -> bool {
        self.0.insert(name, cap, 3, Self::pattern)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.pats.iter()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.pats.is_empty()
    }
}
