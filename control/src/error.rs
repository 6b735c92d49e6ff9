//! Diagnostics: what went wrong, where (file:line:col), and what to do about it.
//!
//! Every problem found while loading, validating or compiling a policy becomes a
//! [`Diagnostic`]. Errors travel as [`PolicyError`] / [`PolicyErrors`] (all of them, not
//! just the first); warnings only appear in a [`crate::CheckReport`].

use std::fmt;
use std::sync::Arc;

use serde_saphyr::Location;

/// The name of the file (or test string) a model value was read from.
///
/// Cheap to clone: every diagnostic about a file shares one allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(Arc<str>);

impl Origin {
    pub fn new(name: &str) -> Self {
        Origin(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Origin {
    fn default() -> Self {
        Origin::new("<memory>")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A position in a source file, 1-based. Line 0 means "the whole file" (I/O errors,
/// values built in code rather than read from YAML).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourcePos {
    pub origin: Origin,
    pub line: u64,
    pub column: u64,
}

impl SourcePos {
    pub fn new(origin: &Origin, loc: Location) -> Self {
        SourcePos {
            origin: origin.clone(),
            line: loc.line(),
            column: loc.column(),
        }
    }

    pub fn file(origin: &Origin) -> Self {
        SourcePos {
            origin: origin.clone(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.origin)
        } else {
            write!(f, "{}:{}:{}", self.origin, self.line, self.column)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// Machine-readable class of a diagnostic, so tools and tests need not match on text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The file could not be read (missing, unreadable, too large, not UTF-8).
    Io,
    /// Not valid YAML, or a value of the wrong type.
    Syntax,
    UnknownField,
    MissingField,
    /// A keyword such as `mode` or `action` with a value outside its set.
    UnknownValue,
    WrongApiVersion,
    WrongKind,
    /// A document of the right kind appears twice, or a required one is missing.
    Documents,
    UnknownGroup,
    InvalidGroup,
    InvalidAddress,
    InvalidPort,
    DuplicateRuleId,
    InvalidRule,
    UnknownApp,
    /// An L7 matcher that does not fit the rule's `app`.
    L7Mismatch,
    InvalidRegex,
    InvalidPattern,
    DuplicateWorkload,
    DuplicateAddress,
    /// A table limit (groups, rules, workloads, file size) was exceeded.
    Limit,
    // Warnings.
    ShadowedRule,
    HostBitsSet,
    /// A group that selects no workload, or selector groups without an inventory.
    EmptyGroup,
    UnaddressedWorkload,
    /// A rule with `capture: true` where no capture is written (no `--capture-dir`).
    CaptureOff,
}

/// One compiler-style message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub code: Code,
    pub pos: SourcePos,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, pos: SourcePos, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Error,
            code,
            pos,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(code: Code, pos: SourcePos, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Warning,
            code,
            pos,
            message: message.into(),
            help: None,
        }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The first line of the display, without the help: `file:line:col: warning: ...`,
    /// for commands that print warnings before their own output.
    pub fn headline(&self) -> String {
        format!("{}: {}: {}", self.pos, self.level.as_str(), self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.pos, self.level.as_str(), self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// One error found in a policy or inventory. Display is the compiler-style text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub Diagnostic);

impl PolicyError {
    pub fn code(&self) -> Code {
        self.0.code
    }

    pub fn diagnostic(&self) -> &Diagnostic {
        &self.0
    }
}

/// Every error found, in file order. Never empty when returned as an `Err`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    pub fn single(d: Diagnostic) -> Self {
        PolicyErrors(vec![PolicyError(d)])
    }

    pub fn from_diagnostics(ds: Vec<Diagnostic>) -> Self {
        PolicyErrors(ds.into_iter().map(PolicyError).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &PolicyError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any error has this code (for tests and tools).
    pub fn has(&self, code: Code) -> bool {
        self.0.iter().any(|e| e.code() == code)
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Edit distance counting insertions, deletions, substitutions and swaps of adjacent
/// characters (optimal string alignment: `wbe` is one edit from `web`), capped at
/// `limit + 1` so that long unrelated strings cost little.
pub(crate) fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    // Out-of-range reads cannot happen (all indices are below b.len() + 1), but reading
    // through `get` keeps this free of panicking paths on user text.
    let at = |row: &[usize], j: usize| row.get(j).copied().unwrap_or(usize::MAX / 2);
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    let mut last_a: Option<char> = None;
    for (i, &ca) in a.iter().enumerate() {
        cur.clear();
        cur.push(i + 1);
        let mut last_b: Option<char> = None;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (at(&prev, j) + cost)
                .min(at(&prev, j + 1) + 1)
                .min(at(&cur, j) + 1);
            if last_a == Some(cb) && last_b == Some(ca) && j > 0 {
                d = d.min(at(&prev2, j - 1) + 1);
            }
            cur.push(d);
            last_b = Some(cb);
        }
        if cur.iter().min().copied().unwrap_or(0) > limit {
            return limit + 1;
        }
        last_a = Some(ca);
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    at(&prev, b.len()).min(limit + 1)
}

/// The closest candidate, if it is close enough to be a plausible typo.
///
/// A case-only difference always counts; otherwise up to a third of the word may differ
/// (at least one edit, as rustc does), but never the whole word. Ties go to the first
/// candidate, so pass candidates in a stable order.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = if c.eq_ignore_ascii_case(word) {
            0
        } else {
            edit_distance(word, c, limit)
        };
        // `d < len`: replacing every letter of `b` to get `a` is not a typo.
        if d <= limit && d < len && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting", 10), 3);
        assert_eq!(edit_distance("", "abc", 10), 3);
        assert_eq!(edit_distance("same", "same", 10), 0);
        assert_eq!(edit_distance("wbe", "web", 10), 1);
        assert_eq!(edit_distance("ab", "ba", 10), 1);
        // Capped: unrelated strings stop early.
        assert_eq!(edit_distance("aaaaaaaa", "bbbbbbbb", 2), 3);
    }

    #[test]
    fn suggestions() {
        let fields = ["mode", "defaultAction", "groups", "rules"];
        assert_eq!(
            did_you_mean("defaultActon", fields.iter().copied()),
            Some("defaultAction")
        );
        assert_eq!(
            did_you_mean("default_action", fields.iter().copied()),
            Some("defaultAction"),
            "snake_case for camelCase is a typo too"
        );
        assert_eq!(did_you_mean("priority", fields.iter().copied()), None);
        assert_eq!(
            did_you_mean("DefaultAction", fields.iter().copied()),
            Some("defaultAction")
        );
        let groups = ["web", "orders", "db", "cache", "world"];
        assert_eq!(did_you_mean("stock", groups.iter().copied()), None);
        assert_eq!(
            did_you_mean("order", groups.iter().copied()),
            Some("orders")
        );
        assert_eq!(did_you_mean("b", ["a"]), None);
        assert_eq!(did_you_mean("dn", ["db"]), Some("db"));
    }

    #[test]
    fn display_is_compiler_like() {
        let o = Origin::new("p.yaml");
        let d = Diagnostic::error(
            Code::UnknownGroup,
            SourcePos {
                origin: o.clone(),
                line: 3,
                column: 9,
            },
            "unknown group `x`",
        )
        .with_help("declare it");
        assert_eq!(
            d.to_string(),
            "p.yaml:3:9: error: unknown group `x`\n  = help: declare it"
        );
        let io = Diagnostic::error(Code::Io, SourcePos::file(&o), "cannot read");
        assert_eq!(io.to_string(), "p.yaml: error: cannot read");
    }
}
