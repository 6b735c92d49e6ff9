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

use super::lexer::{Text, Tok};
use super::recycle;
use super::{
    Batch, MAX_CTES, MAX_DEPTH, MAX_FRAMES, MAX_NAME, MAX_SEGMENT_NAMES, MAX_SEGMENT_STATEMENTS,
    MAX_STATEMENTS, MAX_TABLES, MAX_TABLES_PER_STATEMENT, MAX_VERB, Overflow, TEXT_MAX,
};
use crate::facts::{SqlStatement, SqlVerb};

/// Words the scan acts on. Everything else is `Other` (a name, a column, a function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Other,
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Create,
    Alter,
    Drop,
    Truncate,
    Grant,
    Revoke,
    Copy,
    Begin,
    Start,
    Commit,
    End,
    Rollback,
    Abort,
    Set,
    Show,
    Use,
    Call,
    Explain,
    Describe,
    With,
    Values,
    Table,
    Tables,
    Replace,
    Rename,
    Lock,
    Prepare,
    Load,
    From,
    Join,
    StraightJoin,
    Into,
    Using,
    On,
    As,
    To,
    Like,
    References,
    View,
    Index,
    Trigger,
    Recursive,
    Not,
    Materialized,
    // Table-position modifiers, skipped.
    Only,
    Lateral,
    If,
    Exists,
    Temp,
    Ignore,
    LowPriority,
    // Words that end a FROM list or cancel an expected name.
    Where,
    Group,
    Having,
    Order,
    Limit,
    Window,
    Union,
    Intersect,
    Except,
    Returning,
    Offset,
    Fetch,
    For,
    Outfile,
    Database,
    Schema,
    Function,
    Procedure,
    ExplainOpt,
}

/// Every word [`keyword`] knows, for its quick reject.
const KEYWORDS: &[&[u8]] = &[
    b"select",
    b"insert",
    b"update",
    b"delete",
    b"merge",
    b"create",
    b"alter",
    b"drop",
    b"truncate",
    b"grant",
    b"revoke",
    b"copy",
    b"begin",
    b"start",
    b"commit",
    b"end",
    b"rollback",
    b"abort",
    b"set",
    b"show",
    b"use",
    b"call",
    b"explain",
    b"describe",
    b"desc",
    b"with",
    b"values",
    b"table",
    b"tables",
    b"replace",
    b"rename",
    b"lock",
    b"prepare",
    b"load",
    b"from",
    b"join",
    b"straight_join",
    b"into",
    b"using",
    b"on",
    b"as",
    b"to",
    b"like",
    b"references",
    b"view",
    b"index",
    b"trigger",
    b"recursive",
    b"not",
    b"materialized",
    b"only",
    b"lateral",
    b"if",
    b"exists",
    b"temp",
    b"temporary",
    b"unlogged",
    b"ignore",
    b"low_priority",
    b"delayed",
    b"high_priority",
    b"quick",
    b"where",
    b"group",
    b"having",
    b"order",
    b"limit",
    b"window",
    b"union",
    b"intersect",
    b"except",
    b"returning",
    b"offset",
    b"fetch",
    b"for",
    b"outfile",
    b"dumpfile",
    b"database",
    b"schema",
    b"function",
    b"procedure",
    b"analyze",
    b"analyse",
    b"verbose",
    b"extended",
    b"partitions",
    b"format",
];

/// Per first letter, a bit per length that some keyword has: most words are names, and
/// one lookup here tells them from keywords.
const KEYWORD_SHAPES: [u16; 26] = keyword_shapes();

// Evaluated at compile time: an index out of range would fail the build, not a packet.
#[allow(clippy::indexing_slicing)]
const fn keyword_shapes() -> [u16; 26] {
    let mut t = [0u16; 26];
    let mut i = 0;
    while i < KEYWORDS.len() {
        let w = KEYWORDS[i];
        t[(w[0] - b'a') as usize] |= 1 << w.len();
        i += 1;
    }
    t
}

fn keyword(t: Text<'_>) -> Kw {
    let w = t.raw;
    if t.len > 14 || t.len < 2 || w.len() as u64 != t.len {
        return Kw::Other;
    }
    let first = w.first().map_or(0, u8::to_ascii_lowercase);
    let shapes = first
        .checked_sub(b'a')
        .and_then(|f| KEYWORD_SHAPES.get(usize::from(f)))
        .copied()
        .unwrap_or(0);
    if shapes & (1 << t.len) == 0 {
        return Kw::Other;
    }
    let mut buf = [0u8; 14];
    let n = w.len();
    for (d, s) in buf.iter_mut().zip(w) {
        *d = s.to_ascii_lowercase();
    }
    match buf.get(..n).unwrap_or_default() {
        b"select" => Kw::Select,
        b"insert" => Kw::Insert,
        b"update" => Kw::Update,
        b"delete" => Kw::Delete,
        b"merge" => Kw::Merge,
        b"create" => Kw::Create,
        b"alter" => Kw::Alter,
        b"drop" => Kw::Drop,
        b"truncate" => Kw::Truncate,
        b"grant" => Kw::Grant,
        b"revoke" => Kw::Revoke,
        b"copy" => Kw::Copy,
        b"begin" => Kw::Begin,
        b"start" => Kw::Start,
        b"commit" => Kw::Commit,
        b"end" => Kw::End,
        b"rollback" => Kw::Rollback,
        b"abort" => Kw::Abort,
        b"set" => Kw::Set,
        b"show" => Kw::Show,
        b"use" => Kw::Use,
        b"call" => Kw::Call,
        b"explain" => Kw::Explain,
        b"describe" | b"desc" => Kw::Describe,
        b"with" => Kw::With,
        b"values" => Kw::Values,
        b"table" => Kw::Table,
        b"tables" => Kw::Tables,
        b"replace" => Kw::Replace,
        b"rename" => Kw::Rename,
        b"lock" => Kw::Lock,
        b"prepare" => Kw::Prepare,
        b"load" => Kw::Load,
        b"from" => Kw::From,
        b"join" => Kw::Join,
        b"straight_join" => Kw::StraightJoin,
        b"into" => Kw::Into,
        b"using" => Kw::Using,
        b"on" => Kw::On,
        b"as" => Kw::As,
        b"to" => Kw::To,
        b"like" => Kw::Like,
        b"references" => Kw::References,
        b"view" => Kw::View,
        b"index" => Kw::Index,
        b"trigger" => Kw::Trigger,
        b"recursive" => Kw::Recursive,
        b"not" => Kw::Not,
        b"materialized" => Kw::Materialized,
        b"only" => Kw::Only,
        b"lateral" => Kw::Lateral,
        b"if" => Kw::If,
        b"exists" => Kw::Exists,
        b"temp" | b"temporary" | b"unlogged" => Kw::Temp,
        b"ignore" => Kw::Ignore,
        b"low_priority" | b"delayed" | b"high_priority" | b"quick" => Kw::LowPriority,
        b"where" => Kw::Where,
        b"group" => Kw::Group,
        b"having" => Kw::Having,
        b"order" => Kw::Order,
        b"limit" => Kw::Limit,
        b"window" => Kw::Window,
        b"union" => Kw::Union,
        b"intersect" => Kw::Intersect,
        b"except" => Kw::Except,
        b"returning" => Kw::Returning,
        b"offset" => Kw::Offset,
        b"fetch" => Kw::Fetch,
        b"for" => Kw::For,
        b"outfile" | b"dumpfile" => Kw::Outfile,
        b"database" => Kw::Database,
        b"schema" => Kw::Schema,
        b"function" => Kw::Function,
        b"procedure" => Kw::Procedure,
        b"analyze" | b"analyse" | b"verbose" | b"extended" | b"partitions" | b"format" => {
            Kw::ExplainOpt
        }
        _ => Kw::Other,
    }
}

/// Words that start a (sub)statement: after `(`, they make the parenthesis a query.
fn starts_query(k: Kw) -> bool {
    matches!(k, Kw::Select | Kw::With | Kw::Values | Kw::Table)
}

/// Words that cannot be a bare table name (reserved in both dialects): seen where a name
/// is expected, the expectation ends and the word is read as a keyword.
fn reserved(k: Kw) -> bool {
    matches!(
        k,
        Kw::Select
            | Kw::Insert
            | Kw::Update
            | Kw::Delete
            | Kw::With
            | Kw::Values
            | Kw::Set
            | Kw::From
            | Kw::Join
            | Kw::Into
            | Kw::Using
            | Kw::On
            | Kw::As
            | Kw::Where
            | Kw::Group
            | Kw::Having
            | Kw::Order
            | Kw::Limit
            | Kw::Window
            | Kw::Union
            | Kw::Intersect
            | Kw::Except
            | Kw::Returning
            | Kw::For
            | Kw::Outfile
            | Kw::Database
            | Kw::Schema
            | Kw::Function
            | Kw::Procedure
    )
}

/// Words that end a FROM / UPDATE / USING table list.
fn ends_list(k: Kw) -> bool {
    matches!(
        k,
        Kw::Select
            | Kw::Set
            | Kw::Values
            | Kw::Where
            | Kw::Group
            | Kw::Having
            | Kw::Order
            | Kw::Limit
            | Kw::Window
            | Kw::Union
            | Kw::Intersect
            | Kw::Except
            | Kw::Returning
            | Kw::Offset
            | Kw::Fetch
            | Kw::For
            | Kw::Into
            | Kw::From
            | Kw::With
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Expect {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum CteStep {
    #[default]
    None,
    /// Name seen, waiting for `AS (`.
    AfterName,
    /// `AS` seen: the next `(` is the body.
    AfterAs,
    /// Body closed: `,` brings another CTE, a verb the main statement.
    AfterBody,
}

#[derive(Clone, Copy, Debug, Default)]
struct DepthState {
    /// A query runs at this depth (top level, or a subquery): its FROM names tables. A
    /// parenthesis of a function call (`EXTRACT(YEAR FROM d)`) is not one.
    query: bool,
    /// Inside a FROM/UPDATE/USING list: `,` and JOIN bring another table.
    list: bool,
    expect: Expect,
    cte: CteStep,
    /// The CTE whose body this depth's next parenthesis is (index into ctes).
    cte_pending: Option<u8>,
    /// This parenthesis is the body of a CTE (when it closes, the name comes into scope).
    cte_body: Option<u8>,
    /// After the parenthesis of this depth closes, the outer depth is in a list (a
    /// parenthesised subquery or join in FROM: an alias and `,` may follow).
    from_paren: bool,
    /// A SELECT ran at this depth (`CREATE TABLE .. AS SELECT .. WHERE a LIKE b` is no
    /// `LIKE t`).
    selected: bool,
    /// WITH RECURSIVE at this depth.
    recursive: bool,
}

#[derive(Clone, Copy, Debug)]
enum VerbTag {
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

#[derive(Clone, Copy, Debug)]
pub(super) struct TableEntry {
    stmt: u16,
    start: u32,
    end: u32,
}

#[derive(Clone, Copy, Debug)]
struct Cte {
    start: u32,
    end: u32,
    depth: u16,
    in_scope: bool,
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

/// The texts of the statements of the batch being built, and of the part of the request it
/// covers: each the first [`TEXT_MAX`] bytes, copied as the bytes stream past.
#[derive(Default)]
pub(super) struct Capture {
    /// The batch's part of the request text, raw, from its first byte.
    pub part: Vec<u8>,
    /// The statements' texts, one run per `;`-separated part, without the whitespace
    /// around it.
    pub texts: Vec<u8>,
    seg_start: usize,
    /// How far into the current chunk the text has been copied.
    from: usize,
    /// The part continues a text reported in earlier batches: it starts at its first
    /// non-blank byte, as a statement's text does.
    trim_part: bool,
}

impl Capture {
    /// Copies the chunk's bytes up to `to`.
    fn take(&mut self, chunk: &[u8], to: usize) {
        let bytes = chunk.get(self.from..to).unwrap_or_default();
        self.from = to.max(self.from);
        if bytes.is_empty() {
            return;
        }
        let part = if self.trim_part && self.part.is_empty() {
            let lead = bytes
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(bytes.len());
            bytes.get(lead..).unwrap_or_default()
        } else {
            bytes
        };
        let room = TEXT_MAX.saturating_sub(self.part.len());
        self.part
            .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        let seg = self.texts.len().saturating_sub(self.seg_start);
        if seg < TEXT_MAX {
            let bytes = if seg == 0 {
                let lead = bytes
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(bytes.len());
                bytes.get(lead..).unwrap_or_default()
            } else {
                bytes
            };
            let room = TEXT_MAX - seg;
            self.texts
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        }
    }

    /// The chunk is read: the rest of it is copied and the next starts at its first byte.
    pub fn take_rest(&mut self, chunk: &[u8]) {
        self.take(chunk, chunk.len());
        self.from = 0;
    }

    /// The current `;`-separated part ends: its text's range, trailing whitespace cut.
    fn end_segment(&mut self) -> (u32, u32) {
        let seg = self.texts.get(self.seg_start..).unwrap_or_default();
        let keep = seg.trim_ascii_end().len();
        self.texts.truncate(self.seg_start + keep);
        let range = (self.seg_start as u32, self.texts.len() as u32);
        self.seg_start = self.texts.len();
        range
    }

    /// The current `;`-separated part ends without a statement: its text is not kept.
    fn drop_segment(&mut self) {
        self.texts.truncate(self.seg_start);
    }

    fn clear(&mut self) {
        self.part.clear();
        self.texts.clear();
        self.seg_start = 0;
    }
}

/// Scratch kept between batches: more (grown by an unusual statement) is freed.
const SHRINK_NAMES: usize = 16 * 1024;
const SHRINK_ENTRIES: usize = 256;

/// Tables per `;`-separated part found by a linear scan; past this many, by a hash index.
const LINEAR_DEDUP: usize = 16;

fn name_hash(stmt: u16, name: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ u64::from(stmt);
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

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
        // Depths past the last tracked one share its state (and set Overflow::depth).
        let i = self.depth.min(MAX_DEPTH - 1);
        let [first, rest @ ..] = &mut self.ds;
        if i == 0 {
            first
        } else {
            rest.get_mut(i - 1).unwrap_or(first)
        }
    }

    fn frame_stmt(&self) -> Option<usize> {
        self.nframes
            .checked_sub(1)
            .and_then(|i| self.frames.get(i))
            .map(|f| usize::from(f.0))
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
        matches!(
            self.d().expect,
            Expect::ListTable | Expect::OneTable | Expect::UseDb | Expect::CteName
        )
    }

    fn semi(&mut self, chunk: &[u8], at: usize) {
        self.cap.take(chunk, at.saturating_sub(1));
        self.close_segment();
        if self.cap.part.len() < TEXT_MAX {
            self.cap.part.push(b';');
        }
        self.cap.from = at;
        self.end_statement();
        if !self.whole
            && (self.stmts.len() >= BATCH_STATEMENTS || self.batch_bytes() >= super::BATCH_BYTES)
        {
            self.flush_due = true;
        }
    }

    /// Gives the statements begun since the last `;` their text, and starts a new part.
    pub fn close_segment(&mut self) {
        if self.stmts.len() > self.seg_first {
            let range = self.cap.end_segment();
            for m in self.stmts.iter_mut().skip(self.seg_first) {
                m.text = range;
            }
        } else {
            self.cap.drop_segment();
        }
        self.seg_first = self.stmts.len();
        self.seg_tables = self.tables.len();
        self.seg_names = self.names.len();
        self.reset_dedup();
    }

    fn end_statement(&mut self) {
        // Depths above 0 are set afresh by the `(` that enters them.
        self.depth = 0;
        self.ds[0] = DepthState {
            query: true,
            ..DepthState::default()
        };
        self.nframes = 0;
        self.ctes.clear();
    }

    fn begin_statement(&mut self, w: Text<'_>, k: Kw, nested: bool) -> bool {
        let full = if self.whole {
            self.stmts.len() >= MAX_STATEMENTS
        } else {
            self.stmts.len() - self.seg_first >= MAX_SEGMENT_STATEMENTS
        };
        if full || self.stmts.len() >= usize::from(u16::MAX) {
            self.flag(|o| o.statements = true);
            if self.whole {
                self.stopped = true;
            }
            return false;
        }
        let verb = self.verb_tag(w, k);
        let idx = self.stmts.len() as u16;
        self.stmts.push(StmtMeta {
            verb,
            ntables: 0,
            word: k,
            text: (0, 0),
            refs: (0, 0),
        });
        if !nested {
            self.nframes = 0;
        }
        if self.nframes < MAX_FRAMES {
            if let Some(f) = self.frames.get_mut(self.nframes) {
                *f = (idx, self.depth as u16);
            }
            self.nframes += 1;
        } else {
            self.flag(|o| o.depth = true);
        }
        true
    }

    fn verb_tag(&mut self, w: Text<'_>, k: Kw) -> VerbTag {
        let v = match k {
            Kw::Select | Kw::Values | Kw::Table => SqlVerb::Select,
            Kw::Insert => SqlVerb::Insert,
            Kw::Update => SqlVerb::Update,
            Kw::Delete => SqlVerb::Delete,
            Kw::Merge => SqlVerb::Merge,
            Kw::Create => SqlVerb::Create,
            Kw::Alter => SqlVerb::Alter,
            Kw::Drop => SqlVerb::Drop,
            Kw::Truncate => SqlVerb::Truncate,
            Kw::Grant => SqlVerb::Grant,
            Kw::Revoke => SqlVerb::Revoke,
            Kw::Copy => SqlVerb::Copy,
            Kw::Begin => SqlVerb::Begin,
            Kw::Commit | Kw::End => SqlVerb::Commit,
            Kw::Rollback | Kw::Abort => SqlVerb::Rollback,
            Kw::Set => SqlVerb::Set,
            Kw::Show => SqlVerb::Show,
            Kw::Use => SqlVerb::Use,
            Kw::Call => SqlVerb::Call,
            Kw::Explain | Kw::Describe => SqlVerb::Explain,
            Kw::With => SqlVerb::With,
            _ => {
                let start = self.names.len() as u32;
                for &b in w.raw.iter().take(MAX_VERB) {
                    self.names
                        .push(char::from(b.to_ascii_uppercase()).min('\u{7f}'));
                }
                return VerbTag::Other(start, self.names.len() as u32);
            }
        };
        VerbTag::Known(v)
    }

    fn open(&mut self) {
        let outer = *self.d();
        let from_paren = outer.expect == Expect::ListTable;
        let cte_body = if outer.cte == CteStep::AfterAs {
            outer.cte_pending
        } else {
            None
        };
        {
            let d = self.d();
            if from_paren {
                // `FROM (SELECT ...) alias` or `FROM (a JOIN b)`: the list goes on after it.
                d.expect = Expect::Nothing;
                d.list = true;
            } else if matches!(d.expect, Expect::OneTable | Expect::UseDb | Expect::CteName) {
                d.expect = Expect::Nothing;
            }
        }
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            self.flag(|o| o.depth = true);
            return;
        }
        // What starts this parenthesis decides what it is: the next token tells.
        self.defer = Defer::Open {
            from_paren,
            cte_body,
        };
    }

    /// The token after `(`.
    fn opened(
        &mut self,
        from_paren: bool,
        cte_body: Option<u8>,
        tok: Tok,
        text: Text<'_>,
    ) -> Resolved {
        let k = if tok == Tok::Word {
            keyword(text)
        } else {
            Kw::Other
        };
        let d = self.d();
        let dml = matches!(k, Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge);
        *d = DepthState {
            query: from_paren || starts_query(k) || dml,
            list: false,
            expect: if from_paren && !starts_query(k) {
                // A parenthesised join: its first word is a table.
                Expect::ListTable
            } else {
                Expect::Nothing
            },
            cte: CteStep::None,
            cte_pending: None,
            cte_body,
            from_paren,
            ..DepthState::default()
        };
        if dml {
            // A data-modifying statement inside a query (PostgreSQL's `WITH d AS (DELETE
            // ...)`): reported as a statement of its own, so its verb is judged.
            if self.begin_statement(text, k, true) {
                self.verb_follow(k);
                return Resolved::Consumed;
            }
        }
        Resolved::Pass
    }

    fn close(&mut self) {
        if self.depth == 0 {
            return;
        }
        let inner = *self.d();
        // A nested statement frame ends with its parenthesis.
        while self.nframes > 1 {
            let top = self
                .frames
                .get(self.nframes - 1)
                .map_or(0, |f| usize::from(f.1));
            if top >= self.depth {
                self.nframes -= 1;
            } else {
                break;
            }
        }
        self.depth -= 1;
        let depth = self.depth as u16;
        // CTEs declared inside the closed parenthesis go out of scope.
        self.ctes.retain(|c| c.depth <= depth);
        if let Some(i) = inner.cte_body {
            if let Some(c) = self.ctes.get_mut(usize::from(i)) {
                c.in_scope = true;
            }
            let d = self.d();
            d.cte = CteStep::AfterBody;
            d.cte_pending = None;
        }
        if inner.from_paren {
            self.d().list = true;
        }
    }

    fn comma(&mut self) {
        let d = self.d();
        if d.cte == CteStep::AfterBody {
            d.cte = CteStep::None;
            d.expect = Expect::CteName;
        } else if d.list {
            d.expect = Expect::ListTable;
        }
    }

    fn word(&mut self, t: Text<'_>) {
        let k = keyword(t);
        if self.frame_stmt().is_none() {
            // The first word of a statement is its verb.
            if self.begin_statement(t, k, false) {
                self.d().query = true;
                self.verb_follow(k);
            }
            return;
        }
        let expect = self.d().expect;
        match expect {
            Expect::ListTable | Expect::OneTable => {
                match self.modifier(expect, k) {
                    Some(true) => {}
                    Some(false) => self.not_a_modifier(t, k),
                    None => {
                        // Skipped only if a name still follows it: the next token tells.
                        let n = t.raw.len().min(self.held.0.len());
                        if let (Some(d), Some(s)) = (self.held.0.get_mut(..n), t.raw.get(..n)) {
                            d.copy_from_slice(s);
                        }
                        self.held.1 = n as u8;
                        self.defer = Defer::Modifier(k);
                    }
                }
                return;
            }
            Expect::UseDb => {
                self.name_at(Tok::Word, t);
                return;
            }
            Expect::CteName => {
                if k == Kw::Recursive {
                    self.d().recursive = true;
                    return;
                }
                self.cte_name(Tok::Word, t);
                return;
            }
            Expect::Nothing => {}
        }
        self.keyword_word(t, k);
    }

    /// A word where a table name is expected that is not a skipped modifier.
    fn not_a_modifier(&mut self, t: Text<'_>, k: Kw) {
        if !reserved(k) {
            self.name_at(Tok::Word, t);
            return;
        }
        self.d().expect = Expect::Nothing;
        self.keyword_word(t, k);
    }

    /// Modifiers that may sit between a keyword and the table name it introduces. Most are
    /// not reserved words (a table may be called `temp`), so one is skipped only when a name
    /// still follows it: `None` means the next token decides.
    fn modifier(&mut self, expect: Expect, k: Kw) -> Option<bool> {
        let candidate = match k {
            Kw::Outfile => {
                self.d().expect = Expect::Nothing;
                return Some(true);
            }
            Kw::ExplainOpt => return Some(self.frame_word() == Kw::Explain),
            Kw::Only
            | Kw::Lateral
            | Kw::If
            | Kw::Not
            | Kw::Exists
            | Kw::Ignore
            | Kw::LowPriority
            | Kw::Table
            | Kw::Tables => true,
            Kw::Into | Kw::Temp | Kw::View | Kw::Materialized => expect == Expect::OneTable,
            _ => false,
        };
        if candidate { None } else { Some(false) }
    }

    fn keyword_word(&mut self, w: Text<'_>, k: Kw) {
        let verb = self.frame_word();
        let depth = self.depth;
        let d = self.d();
        let cte = d.cte;
        if cte == CteStep::AfterName {
            if k == Kw::As {
                d.cte = CteStep::AfterAs;
            }
            return;
        }
        if cte == CteStep::AfterAs {
            // NOT MATERIALIZED / MATERIALIZED before the body.
            return;
        }
        if cte == CteStep::AfterBody {
            d.cte = CteStep::None;
            // The main statement of a WITH: its verb becomes the statement's.
            if matches!(
                k,
                Kw::Select | Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge
            ) && verb == Kw::With
            {
                let tag = self.verb_tag(w, k);
                if let Some(m) = self.meta() {
                    m.verb = tag;
                    m.word = k;
                }
                self.d().query = true;
                self.verb_follow(k);
                return;
            }
        }
        let d = self.d();
        if d.list && ends_list(k) {
            d.list = false;
        }
        match k {
            Kw::From => {
                let copy_top = verb == Kw::Copy && depth == 0;
                if (d.query || depth == 0) && !copy_top {
                    d.expect = Expect::ListTable;
                    d.list = true;
                }
            }
            Kw::Join | Kw::StraightJoin => {
                d.expect = Expect::ListTable;
                d.list = true;
            }
            Kw::Into
                if matches!(
                    verb,
                    Kw::Select | Kw::Insert | Kw::Replace | Kw::Merge | Kw::Load
                ) || d.query && depth > 0 =>
            {
                d.expect = Expect::OneTable;
            }
            // A table list follows unless `(` does: the next token tells.
            Kw::Using if matches!(verb, Kw::Delete | Kw::Merge) => self.defer = Defer::Using,
            Kw::Table | Kw::Tables | Kw::View => match verb {
                Kw::Create | Kw::Alter => d.expect = Expect::OneTable,
                Kw::Drop | Kw::Truncate | Kw::Lock | Kw::Rename | Kw::Other => {
                    d.expect = Expect::ListTable;
                    d.list = true;
                }
                Kw::Show if k == Kw::Table => d.expect = Expect::OneTable,
                // PostgreSQL's `TABLE t` (= SELECT * FROM t) inside a query or UNION.
                Kw::Select | Kw::With | Kw::Insert | Kw::Values | Kw::Table if k == Kw::Table => {
                    d.expect = Expect::ListTable;
                    d.list = true;
                }
                _ => {}
            },
            // `CREATE INDEX i ON t`, `CREATE TRIGGER .. ON t`, `GRANT .. ON t`.
            Kw::On if matches!(verb, Kw::Create | Kw::Drop | Kw::Grant | Kw::Revoke) && !d.list => {
                d.expect = Expect::OneTable;
            }
            Kw::References => d.expect = Expect::OneTable,
            Kw::Like if verb == Kw::Create && !d.selected => d.expect = Expect::OneTable,
            Kw::To if matches!(verb, Kw::Rename | Kw::Alter) && depth == 0 => {
                d.expect = Expect::OneTable;
                if verb == Kw::Rename {
                    d.list = true;
                }
            }
            Kw::Select => {
                d.query = true;
                d.selected = true;
                if matches!(verb, Kw::Explain | Kw::Describe | Kw::Prepare) && depth == 0 {
                    self.restart(w, k);
                }
            }
            Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge | Kw::With | Kw::Values => {
                if matches!(verb, Kw::Explain | Kw::Describe | Kw::Prepare) && depth == 0 {
                    self.restart(w, k);
                } else if k == Kw::With {
                    // A WITH inside a statement (`INSERT INTO t WITH x AS ...`).
                    d.query = true;
                    d.expect = Expect::CteName;
                }
            }
            Kw::Create | Kw::Copy if matches!(verb, Kw::Explain | Kw::Prepare) && depth == 0 => {
                self.restart(w, k)
            }
            _ => {}
        }
    }

    /// EXPLAIN / PREPARE .. AS: the statement they carry is reported as its own.
    fn restart(&mut self, w: Text<'_>, k: Kw) {
        if self.begin_statement(w, k, false) {
            self.d().query = true;
            self.verb_follow(k);
        }
    }

    /// What the verb of a (sub)statement makes the scan expect next.
    fn verb_follow(&mut self, k: Kw) {
        let d = self.d();
        match k {
            Kw::Insert | Kw::Replace | Kw::Merge | Kw::Copy => d.expect = Expect::OneTable,
            Kw::Update | Kw::Truncate | Kw::Lock | Kw::Table => {
                d.expect = Expect::ListTable;
                d.list = true;
            }
            Kw::Describe | Kw::Explain => d.expect = Expect::OneTable,
            Kw::Use => d.expect = Expect::UseDb,
            Kw::With => d.expect = Expect::CteName,
            _ => {}
        }
    }

    fn cte_name(&mut self, tok: Tok, t: Text<'_>) {
        let (s, e) = self.normalise(tok, t);
        self.d().expect = Expect::Nothing;
        let depth = self.depth as u16;
        // WITH RECURSIVE names are visible in their own bodies.
        let recursive = self.d().recursive;
        if self.ctes.len() < MAX_CTES {
            self.ctes.push(Cte {
                start: s,
                end: e,
                depth,
                in_scope: recursive,
            });
            let i = (self.ctes.len() - 1) as u8;
            let d = self.d();
            d.cte = CteStep::AfterName;
            d.cte_pending = Some(i);
        } else {
            // Too many CTEs: their names will be reported as tables (the safe side).
            let d = self.d();
            d.cte = CteStep::AfterName;
            d.cte_pending = None;
        }
    }

    /// Starts reading a possibly qualified name at this token; the tokens after it finish
    /// it ([`Defer::NameAfterPart`]), then it is recorded by what was expected.
    fn name_at(&mut self, tok: Tok, t: Text<'_>) {
        let expect = self.d().expect;
        let start = self.names.len() as u32;
        self.normalise(tok, t);
        self.defer = Defer::NameAfterPart(NameRun {
            start,
            parts: 1,
            qualified: false,
            expect,
        });
    }

    fn name_part(&mut self, run: &mut NameRun, tok: Tok, t: Text<'_>) {
        self.names.push('.');
        run.qualified = true;
        self.normalise(tok, t);
        run.parts += 1;
    }

    fn finish_name(&mut self, run: NameRun, before_paren: bool) {
        let (start, end) = (run.start, self.names.len() as u32);
        match run.expect {
            Expect::UseDb => {
                self.use_db.clear();
                self.use_db
                    .push_str(self.names.get(start as usize..).unwrap_or_default());
                self.has_use = true;
                self.d().expect = Expect::Nothing;
                return;
            }
            Expect::ListTable => {
                if before_paren {
                    // A set-returning function (`FROM generate_series(1, 3)`).
                    self.names.truncate(start as usize);
                    self.d().expect = Expect::Nothing;
                    return;
                }
                self.d().expect = Expect::Nothing;
            }
            _ => self.d().expect = Expect::Nothing,
        }
        self.record(start, end, run.qualified);
    }

    /// Appends one name part, normalised: unquoted lower-cased, quoted as is with doubled
    /// quotes collapsed. Returns its range in `names`.
    fn normalise(&mut self, tok: Tok, t: Text<'_>) -> (u32, u32) {
        let start = self.names.len();
        let q = match tok {
            Tok::Quoted(q) => Some(q),
            _ => None,
        };
        let close = match q {
            Some(b'[') => Some(b']'),
            other => other,
        };
        // A token whole is checked here; a longer one keeps a prefix long enough to
        // overflow MAX_NAME, and its validity is the whole token's.
        let text = if t.raw.len() as u64 == t.len {
            std::str::from_utf8(t.raw).unwrap_or("\u{fffd}")
        } else if t.utf8 {
            match std::str::from_utf8(t.raw) {
                Ok(s) => s,
                Err(e) => t
                    .raw
                    .get(..e.valid_up_to())
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .unwrap_or_default(),
            }
        } else {
            "\u{fffd}"
        };
        if text.len() <= MAX_NAME && !text.is_empty() {
            // The usual name: short, ASCII, without quotes to collapse: copied at once.
            match close {
                None if text.is_ascii() => {
                    self.names.push_str(text);
                    if let Some(part) = self.names.get_mut(start..) {
                        part.make_ascii_lowercase();
                    }
                    return (start as u32, self.names.len() as u32);
                }
                Some(c) if !text.as_bytes().contains(&c) => {
                    self.names.push_str(text);
                    return (start as u32, self.names.len() as u32);
                }
                _ => {}
            }
        }
        let mut prev_quote = false;
        let mut part_len = 0usize;
        for ch in text.chars() {
            if let Some(c) = close
                && ch == char::from(c)
            {
                if prev_quote {
                    prev_quote = false;
                    continue;
                }
                prev_quote = true;
            } else {
                prev_quote = false;
            }
            if part_len + ch.len_utf8() > MAX_NAME {
                self.flag(|o| o.name = true);
                break;
            }
            part_len += ch.len_utf8();
            self.names.push(if q.is_none() {
                ch.to_ascii_lowercase()
            } else {
                ch
            });
        }
        if self.names.len() - start == 0 && q.is_none() {
            self.names.push('\u{fffd}');
        }
        (start as u32, self.names.len() as u32)
    }

    fn record(&mut self, start: u32, end: u32, qualified: bool) {
        let Some(stmt) = self.frame_stmt() else {
            self.names.truncate(start as usize);
            return;
        };
        let depth = self.depth as u16;
        let name = self
            .names
            .get(start as usize..end as usize)
            .unwrap_or_default();
        let shadowed = !qualified
            && self.ctes.iter().any(|c| {
                c.in_scope
                    && c.depth <= depth
                    && self.names.get(c.start as usize..c.end as usize) == Some(name)
            });
        if shadowed || self.is_dup(stmt as u16, start, end) {
            self.names.truncate(start as usize);
            return;
        }
        let seg_tables = self.tables.len() - self.seg_tables;
        let seg_names = self.names.len() - self.seg_names;
        let Some(m) = self.stmts.get_mut(stmt) else {
            return;
        };
        if usize::from(m.ntables) >= MAX_TABLES_PER_STATEMENT
            || seg_tables >= MAX_TABLES
            || seg_names > MAX_SEGMENT_NAMES
        {
            self.flag(|o| o.tables = true);
            self.names.truncate(start as usize);
            return;
        }
        m.ntables += 1;
        self.tables.push(TableEntry {
            stmt: stmt as u16,
            start,
            end,
        });
        if self.dedup_live {
            self.index_insert(self.tables.len() - 1);
        }
    }

    /// Whether statement `stmt` already has the table named `names[start..end]`. A part's
    /// first tables are searched in place; past LINEAR_DEDUP, through a hash index, so a
    /// statement listing a thousand tables costs no more per table than one listing three.
    fn is_dup(&mut self, stmt: u16, start: u32, end: u32) -> bool {
        let names = self.names.as_bytes();
        let name = names.get(start as usize..end as usize).unwrap_or_default();
        let seg = self.tables.get(self.seg_tables..).unwrap_or_default();
        if !self.dedup_live {
            if seg.len() < LINEAR_DEDUP {
                return seg.iter().any(|t| {
                    t.stmt == stmt && names.get(t.start as usize..t.end as usize) == Some(name)
                });
            }
            self.rebuild_index();
        }
        if self.dedup.len() < 2 * (self.tables.len() - self.seg_tables + 1) {
            // (At most half full, so probes stay short.)
            self.rebuild_index();
        }
        let names = self.names.as_bytes();
        let name = names.get(start as usize..end as usize).unwrap_or_default();
        let mask = self.dedup.len() - 1;
        let mut i = name_hash(stmt, name) as usize & mask;
        loop {
            match self.dedup.get(i).copied() {
                Some(0) | None => return false,
                Some(slot) => {
                    if let Some(t) = self.tables.get(slot as usize - 1)
                        && t.stmt == stmt
                        && names.get(t.start as usize..t.end as usize) == Some(name)
                    {
                        return true;
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// (Re)builds the hash index over the current part's tables, sized for twice as many.
    fn rebuild_index(&mut self) {
        let n = self.tables.len() - self.seg_tables;
        let size = (2 * (n + 1)).next_power_of_two().max(64);
        self.dedup.clear();
        self.dedup.resize(size, 0);
        self.dedup_live = true;
        for i in self.seg_tables..self.tables.len() {
            self.index_insert(i);
        }
    }

    fn index_insert(&mut self, ti: usize) {
        let Some(t) = self.tables.get(ti).copied() else {
            return;
        };
        let name = self
            .names
            .as_bytes()
            .get(t.start as usize..t.end as usize)
            .unwrap_or_default();
        let mask = self.dedup.len().wrapping_sub(1);
        let mut i = name_hash(t.stmt, name) as usize & mask;
        for _ in 0..self.dedup.len() {
            match self.dedup.get_mut(i) {
                Some(slot) if *slot == 0 => {
                    *slot = ti as u32 + 1;
                    return;
                }
                Some(_) => i = (i + 1) & mask,
                None => return,
            }
        }
    }
}
