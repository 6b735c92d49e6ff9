//! The grammar-aware scan behind [`super::Classifier`]: it takes tokens one at a time from
//! the lexer and finds, for each statement, its verb and every table it touches.
//!
//! Where the scan needs to know what follows a token (is this word a modifier or a name, is
//! a name followed by `.` or `(`, what starts a parenthesis), it does not look ahead in the
//! text: it records the open question ([`Defer`]) and answers it with the next token. So it
//! never needs more of the text than the token at hand, and a statement of any length is
//! classified as its bytes stream past, with the same answers as a scan of the whole text.
//!
//! What it keeps per `;`-separated part of the text is bounded (statements, tables, name
//! bytes, nesting): a limit hit sets an [`Overflow`] flag that the parsers report as a
//! blinding anomaly.

mod capture;
pub(super) mod keywords;
pub(super) mod names;
pub(super) mod statements;
pub(super) mod words;

use super::lexer::{Text, Tok};
use super::{Batch, MAX_CTES, MAX_DEPTH, MAX_FRAMES, Overflow, recycle};
use crate::facts::{SqlStatement, SqlVerb};
use capture::Capture;
use keywords::{Kw, keyword, reserved};

// The scan's state per depth and its statement frames. The reference classifier (tests
// only) keeps the same state: it uses these types and accessors rather than copies.

/// What the scan expects next at a depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum Expect {
    #[default]
    Nothing,
    /// A table reference in a query list: a name followed by `(` is a function, a word
    /// after it an alias, `,` and JOIN bring the next one.
    ListTable,
    /// One table name (INTO, DDL, COPY): may be followed by a column list.
    OneTable,
    /// The database of `USE`.
    UseDb,
    /// A CTE name after WITH or `,`.
    CteName,
}

/// Where the scan is in a WITH list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum CteStep {
    #[default]
    None,
    /// Name seen, waiting for `AS (`.
    AfterName,
    /// `AS` seen: the next `(` is the body.
    AfterAs,
    /// Body closed: `,` brings another CTE, a verb the main statement.
    AfterBody,
}

/// The scan's state at one parenthesis depth.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DepthState {
    /// A query runs at this depth (top level, or a subquery): its FROM names tables. A
    /// parenthesis of a function call (`EXTRACT(YEAR FROM d)`) is not one.
    pub(super) query: bool,
    /// Inside a FROM/UPDATE/USING list: `,` and JOIN bring another table.
    pub(super) list: bool,
    pub(super) expect: Expect,
    pub(super) cte: CteStep,
    /// The CTE whose body this depth's next parenthesis is (index into ctes).
    pub(super) cte_pending: Option<u8>,
    /// This parenthesis is the body of a CTE (when it closes, the name comes into scope).
    pub(super) cte_body: Option<u8>,
    /// After the parenthesis of this depth closes, the outer depth is in a list (a
    /// parenthesised subquery or join in FROM: an alias and `,` may follow).
    pub(super) from_paren: bool,
    /// A SELECT ran at this depth (`CREATE TABLE .. AS SELECT .. WHERE a LIKE b` is no
    /// `LIKE t`).
    pub(super) selected: bool,
    /// WITH RECURSIVE at this depth.
    pub(super) recursive: bool,
}

impl Expect {
    /// Whether a name is expected (a table, a database, a CTE).
    #[inline]
    pub(super) fn is_name(self) -> bool {
        matches!(
            self,
            Expect::ListTable | Expect::OneTable | Expect::UseDb | Expect::CteName
        )
    }
}

/// The state of depth `depth` in `ds`. Depths past the last tracked one share its state
/// (and set Overflow::depth).
#[inline]
pub(super) fn depth_state(ds: &mut [DepthState; MAX_DEPTH], depth: usize) -> &mut DepthState {
    let i = depth.min(MAX_DEPTH - 1);
    let [first, rest @ ..] = ds;
    if i == 0 {
        first
    } else {
        rest.get_mut(i - 1).unwrap_or(first)
    }
}

/// The statement of the innermost of the statement frames `frames[..nframes]` (statement
/// index, depth it opened at).
#[inline]
pub(super) fn frame_statement(frames: &[(u16, u16)], nframes: usize) -> Option<usize> {
    nframes
        .checked_sub(1)
        .and_then(|i| frames.get(i))
        .map(|f| usize::from(f.0))
}

/// Opens a statement frame for statement `idx` at `depth`; `false` if `frames` is full.
#[inline]
pub(super) fn push_frame(
    frames: &mut [(u16, u16)],
    nframes: &mut usize,
    idx: u16,
    depth: usize,
) -> bool {
    if *nframes < frames.len() {
        if let Some(f) = frames.get_mut(*nframes) {
            *f = (idx, depth as u16);
        }
        *nframes += 1;
        true
    } else {
        false
    }
}

/// A statement's verb: a known one, or its first word upper-cased (a range of the names).
#[derive(Clone, Copy, Debug)]
pub(super) enum VerbTag {
    Known(SqlVerb<'static>),
    Other(u32, u32),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct StmtMeta {
    verb: VerbTag,
    /// Tables recorded for this statement (bounded by MAX_TABLES_PER_STATEMENT).
    ntables: u16,
    /// The upper-cased first word, to tell `RENAME` from `REPLACE` among `Other` verbs.
    word: Kw,
    /// Range in `Capture::texts` of the text of the `;`-separated part this statement
    /// belongs to (a nested statement shares its enclosing statement's).
    text: (u32, u32),
    /// Range of its tables in the output, while a batch is built.
    refs: (u32, u32),
}

/// A table recorded for statement `stmt`: its name, a range of the names.
#[derive(Clone, Copy, Debug)]
pub(super) struct TableEntry {
    pub(super) stmt: u16,
    pub(super) start: u32,
    pub(super) end: u32,
}

/// A CTE's name (a range of the names), the depth it was declared at, and whether it is in
/// scope (its body closed, or WITH RECURSIVE).
#[derive(Clone, Copy, Debug)]
pub(super) struct Cte {
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) depth: u16,
    pub(super) in_scope: bool,
}

/// A name being read: where it starts in `names`, its parts so far, and what was expected.
#[derive(Clone, Copy, Debug)]
struct NameRun {
    start: u32,
    parts: u8,
    qualified: bool,
    expect: Expect,
}

/// A question about the token at hand that only the next token answers.
#[derive(Clone, Copy, Debug, Default)]
enum Defer {
    #[default]
    None,
    /// `(` was read: what starts the parenthesis decides what it is.
    Open {
        from_paren: bool,
        cte_body: Option<u8>,
    },
    /// A word that may be a modifier before a name (`TEMP`, `IF NOT EXISTS`, `ONLY`): it is
    /// skipped if a name follows. Such words are keywords, at most 14 bytes, held in
    /// `Scan::held`.
    Modifier(Kw),
    /// `USING` of DELETE/MERGE: a table list follows unless `(` does.
    Using,
    /// `[` where a name is expected: the next token is its raw content.
    Bracket,
    /// A name part was read: `.` may bring another (unless four were read), `(` after a
    /// listed name makes it a function.
    NameAfterPart(NameRun),
    /// `.` after a name part.
    NameAfterDot(NameRun),
    /// `.[` after a name part: the next token is the bracketed part.
    NameBracket(NameRun),
}

/// What resolving a [`Defer`] did with the token that answered it.
enum Resolved {
    /// The token was part of the answer.
    Consumed,
    /// The token is read on as usual (against any new question the answer raised).
    Pass,
}

/// Scratch kept between batches: more (grown by an unusual statement) is freed.
const SHRINK_NAMES: usize = 16 * 1024;
const SHRINK_ENTRIES: usize = 256;

/// The scan's state, kept across chunks and reused across texts (after the first few texts
/// it allocates nothing).
pub(super) struct Scan {
    /// Normalised names and `Other` verbs of the batch.
    pub names: String,
    pub tables: Vec<TableEntry>,
    pub stmts: Vec<StmtMeta>,
    ctes: Vec<Cte>,
    /// Hash index over the current part's tables (table index + 1; 0 = free), used once
    /// the part has more than LINEAR_DEDUP tables.
    dedup: Vec<u32>,
    dedup_live: bool,
    depth: usize,
    ds: [DepthState; MAX_DEPTH],
    /// Statement frames: (statement index, depth it opened at). Nested frames are
    /// data-modifying statements inside parentheses (PostgreSQL CTEs).
    frames: [(u16, u16); MAX_FRAMES],
    nframes: usize,
    /// The current `;`-separated part: its first statement, table and name byte.
    seg_first: usize,
    seg_tables: usize,
    seg_names: usize,
    defer: Defer,
    /// The word of a [`Defer::Modifier`].
    held: ([u8; 16], u8),
    pub cap: Capture,
    /// Limits hit since the last batch, and in the whole text.
    pub batch_overflow: Overflow,
    pub overflow: Overflow,
    /// The database of the text's last `USE db`.
    pub use_db: String,
    pub has_use: bool,
    /// Classifying one whole text (`Classifier::classify`): one batch of at most
    /// MAX_STATEMENTS statements, after which the scan stops.
    whole: bool,
    stopped: bool,
    /// Batches reported for the current text.
    pub parts: u32,
    /// The batch is full: report it before reading on.
    pub flush_due: bool,
    pub refs: Vec<&'static str>,
    pub out: Vec<SqlStatement<'static>>,
}

/// Statements per batch before it is reported (see `super::BATCH_BYTES` for the other
/// bound).
const BATCH_STATEMENTS: usize = super::BATCH_STATEMENTS;

impl Scan {
    pub fn new() -> Self {
        Scan {
            names: String::with_capacity(256),
            tables: Vec::with_capacity(16),
            stmts: Vec::with_capacity(4),
            ctes: Vec::with_capacity(MAX_CTES),
            dedup: Vec::new(),
            dedup_live: false,
            depth: 0,
            ds: [DepthState::default(); MAX_DEPTH],
            frames: [(0, 0); MAX_FRAMES],
            nframes: 0,
            seg_first: 0,
            seg_tables: 0,
            seg_names: 0,
            defer: Defer::None,
            held: ([0; 16], 0),
            cap: Capture::default(),
            batch_overflow: Overflow::default(),
            overflow: Overflow::default(),
            use_db: String::new(),
            has_use: false,
            whole: false,
            stopped: false,
            parts: 0,
            flush_due: false,
            refs: Vec::with_capacity(16),
            out: Vec::with_capacity(4),
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.names.capacity()
            + self.tables.capacity() * std::mem::size_of::<TableEntry>()
            + self.stmts.capacity() * std::mem::size_of::<StmtMeta>()
            + self.ctes.capacity() * std::mem::size_of::<Cte>()
            + self.dedup.capacity() * 4
            + self.cap.part.capacity()
            + self.cap.texts.capacity()
            + self.refs.capacity() * std::mem::size_of::<&str>()
            + self.out.capacity() * std::mem::size_of::<SqlStatement<'_>>()
            + self.use_db.capacity()
    }

    /// Starts a new text.
    pub fn reset(&mut self, whole: bool) {
        self.clear_batch();
        self.ctes.clear();
        self.depth = 0;
        self.ds[0] = DepthState {
            query: true,
            ..DepthState::default()
        };
        self.nframes = 0;
        self.defer = Defer::None;
        self.cap.from = 0;
        self.cap.trim_part = false;
        self.batch_overflow = Overflow::default();
        self.overflow = Overflow::default();
        self.use_db.clear();
        self.has_use = false;
        self.whole = whole;
        self.stopped = false;
        self.parts = 0;
        self.flush_due = false;
    }

    fn clear_batch(&mut self) {
        // A batch that needed unusually much scratch (a statement listing hundreds of
        // tables) gives it back, so a long-lived flow keeps only what ordinary ones need.
        if self.names.capacity() > SHRINK_NAMES {
            self.names = String::with_capacity(256);
        }
        if self.tables.capacity() > SHRINK_ENTRIES {
            self.tables = Vec::with_capacity(16);
        }
        if self.refs.capacity() > SHRINK_ENTRIES {
            self.refs = Vec::with_capacity(16);
        }
        if self.dedup.capacity() > SHRINK_ENTRIES {
            self.dedup = Vec::new();
            self.dedup_live = false;
        }
        self.names.clear();
        self.tables.clear();
        self.stmts.clear();
        self.cap.clear();
        self.seg_first = 0;
        self.seg_tables = 0;
        self.seg_names = 0;
        self.reset_dedup();
    }

    fn reset_dedup(&mut self) {
        if self.dedup_live {
            self.dedup.fill(0);
            self.dedup_live = false;
        }
    }

    fn flag(&mut self, f: impl Fn(&mut Overflow)) {
        f(&mut self.batch_overflow);
        f(&mut self.overflow);
    }

    /// Builds the batch (the statements read since the last one) and hands it to `f`;
    /// `whole` says it covers the whole text. The batch's scratch is then emptied.
    pub fn with_batch<R>(&mut self, whole: bool, f: impl FnOnce(&Batch<'_>) -> R) -> R {
        let mut refs: Vec<&str> = recycle(std::mem::take(&mut self.refs));
        let mut out: Vec<SqlStatement<'_>> = recycle(std::mem::take(&mut self.out));
        let names = self.names.as_str();
        let name = |s: u32, e: u32| names.get(s as usize..e as usize).unwrap_or_default();
        // Tables are grouped by statement (a nested statement's tables interleave with its
        // parent's): each statement's slot range first, then every table into its slot.
        let mut acc = 0u32;
        for m in self.stmts.iter_mut() {
            m.refs = (acc, acc);
            acc += u32::from(m.ntables);
        }
        refs.resize(acc as usize, "");
        for t in &self.tables {
            if let Some(m) = self.stmts.get_mut(usize::from(t.stmt)) {
                if let Some(slot) = refs.get_mut(m.refs.1 as usize) {
                    *slot = name(t.start, t.end);
                }
                m.refs.1 += 1;
            }
        }
        let texts = self.cap.texts.as_slice();
        for m in &self.stmts {
            let verb = match m.verb {
                VerbTag::Known(v) => v,
                VerbTag::Other(s, e) => SqlVerb::Other(name(s, e)),
            };
            out.push(SqlStatement {
                verb,
                tables: refs
                    .get(m.refs.0 as usize..m.refs.1 as usize)
                    .unwrap_or_default(),
                text: texts
                    .get(m.text.0 as usize..m.text.1 as usize)
                    .unwrap_or_default(),
            });
        }
        let r = f(&Batch {
            text: &self.cap.part,
            statements: &out,
            overflow: self.batch_overflow,
            whole,
        });
        self.out = recycle(out);
        self.refs = recycle(refs);
        self.batch_overflow = Overflow::default();
        self.parts = self.parts.saturating_add(1);
        self.clear_batch();
        self.cap.trim_part = true;
        r
    }

    /// Bytes the batch holds (names, texts, table entries).
    fn batch_bytes(&self) -> usize {
        self.names.len()
            + self.cap.texts.len()
            + self.tables.len() * std::mem::size_of::<TableEntry>()
            + self.stmts.len() * std::mem::size_of::<StmtMeta>()
    }

    // ---- tokens -----------------------------------------------------------------------

    /// One token from the lexer (`End` once the text ended). Returns true when the bytes
    /// after it are a bracketed name.
    pub fn token(&mut self, tok: Tok, text: Text<'_>, chunk: &[u8], at: usize) -> bool {
        if self.stopped {
            return false;
        }
        let mut bracket = false;
        while !matches!(self.defer, Defer::None) {
            let d = std::mem::replace(&mut self.defer, Defer::None);
            match self.resolve(d, tok, text, &mut bracket) {
                Resolved::Consumed => return bracket,
                Resolved::Pass => {}
            }
        }
        match tok {
            Tok::End => {}
            Tok::Semi => self.semi(chunk, at),
            Tok::Punct(b'(') => self.open(),
            Tok::Punct(b')') => self.close(),
            Tok::Punct(b',') => self.comma(),
            Tok::Punct(b'[') if self.expecting_name() => {
                self.defer = Defer::Bracket;
                return true;
            }
            Tok::Word => self.word(text),
            Tok::Quoted(_) if self.d().expect == Expect::CteName => self.cte_name(tok, text),
            Tok::Quoted(_) if self.expecting_name() => self.name_at(tok, text),
            Tok::Quoted(_) => {}
            _ => {
                // Anything else where a name was expected (`INTO @var`, a string) means
                // there is no name there.
                self.d().expect = Expect::Nothing;
            }
        }
        bracket
    }

    fn resolve(&mut self, d: Defer, tok: Tok, text: Text<'_>, bracket: &mut bool) -> Resolved {
        match d {
            Defer::None => Resolved::Pass,
            Defer::Open {
                from_paren,
                cte_body,
            } => self.opened(from_paren, cte_body, tok, text),
            Defer::Modifier(k) => {
                let skip = match tok {
                    Tok::Word => {
                        let next = keyword(text);
                        // `IGNORE INTO t`, `TEMP TABLE t`: another modifier may follow.
                        !reserved(next) || next == Kw::Into
                    }
                    Tok::Quoted(_) | Tok::Punct(b'[') => true,
                    Tok::Punct(b'(') => k == Kw::Lateral,
                    _ => false,
                };
                if !skip {
                    let held = self.held;
                    let raw = held.0.get(..usize::from(held.1)).unwrap_or_default();
                    let held = Text {
                        raw,
                        len: raw.len() as u64,
                        utf8: true,
                    };
                    self.not_a_modifier(held, k);
                }
                Resolved::Pass
            }
            Defer::Using => {
                if tok != Tok::Punct(b'(') {
                    let d = self.d();
                    d.expect = Expect::ListTable;
                    d.list = true;
                }
                Resolved::Pass
            }
            Defer::Bracket => {
                if matches!(tok, Tok::Quoted(b'[')) {
                    self.name_at(tok, text);
                    Resolved::Consumed
                } else {
                    Resolved::Pass
                }
            }
            Defer::NameAfterPart(run) => {
                if tok == Tok::Punct(b'.') && run.parts < 4 {
                    self.defer = Defer::NameAfterDot(run);
                    Resolved::Consumed
                } else {
                    self.finish_name(run, tok == Tok::Punct(b'('));
                    Resolved::Pass
                }
            }
            Defer::NameAfterDot(mut run) => match tok {
                Tok::Word | Tok::Quoted(_) => {
                    self.name_part(&mut run, tok, text);
                    self.defer = Defer::NameAfterPart(run);
                    Resolved::Consumed
                }
                Tok::Punct(b'*') => {
                    // `db.*` (GRANT): keep the star; the name ends there.
                    self.names.push_str(".*");
                    run.parts = 4;
                    self.defer = Defer::NameAfterPart(run);
                    Resolved::Consumed
                }
                Tok::Punct(b'[') => {
                    self.defer = Defer::NameBracket(run);
                    *bracket = true;
                    Resolved::Consumed
                }
                _ => {
                    // The `.` was not part of the name; read as punctuation it would only
                    // clear an expectation the finished name already cleared.
                    self.finish_name(run, false);
                    Resolved::Pass
                }
            },
            Defer::NameBracket(mut run) => {
                if matches!(tok, Tok::Quoted(b'[')) {
                    self.name_part(&mut run, tok, text);
                    self.defer = Defer::NameAfterPart(run);
                    Resolved::Consumed
                } else {
                    self.finish_name(run, false);
                    Resolved::Pass
                }
            }
        }
    }

    fn d(&mut self) -> &mut DepthState {
        depth_state(&mut self.ds, self.depth)
    }

    fn frame_stmt(&self) -> Option<usize> {
        frame_statement(&self.frames, self.nframes)
    }

    fn meta(&mut self) -> Option<&mut StmtMeta> {
        let i = self.frame_stmt()?;
        self.stmts.get_mut(i)
    }

    fn frame_word(&self) -> Kw {
        self.frame_stmt()
            .and_then(|i| self.stmts.get(i))
            .map_or(Kw::Other, |m| m.word)
    }

    fn expecting_name(&mut self) -> bool {
        self.d().expect.is_name()
    }
}
