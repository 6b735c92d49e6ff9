//! The whole-text classifier as it was before statements were classified while streaming,
//! kept only for tests: the streaming classifier (`super`) must classify every text the way
//! this one does (same verbs, tables, normalisation and statement texts), within this one's
//! limits. Differential tests feed both the same corpora and random texts.

mod lexer;

use crate::facts::{SqlDialect, SqlStatement, SqlVerb};
use lexer::{Lexer, Tok, Token};

/// Statements kept per text; more set [`Overflow::statements`].
const MAX_STATEMENTS: usize = 64;
/// Tables kept per statement; more set [`Overflow::tables`].
const MAX_TABLES_PER_STATEMENT: usize = 64;
/// Tables kept per text, all statements together.
const MAX_TABLES: usize = 512;
/// Bytes of one normalised name (`schema.table`); longer names are truncated and set
/// [`Overflow::name`].
const MAX_NAME: usize = 256;
/// Parenthesis nesting tracked; deeper text is still read but without clause state, and
/// sets [`Overflow::depth`].
const MAX_DEPTH: usize = 32;
const MAX_CTES: usize = 16;
const MAX_FRAMES: usize = 8;
const MAX_VERB: usize = 32;

/// Limits a text hit while it was classified: the statements reported are then incomplete
/// and the caller raises an anomaly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overflow {
    pub statements: bool,
    pub tables: bool,
    pub name: bool,
    pub depth: bool,
}

#[derive(Clone, Copy, Debug)]
enum VerbTag {
    Known(SqlVerb<'static>),
    Other(u32, u32),
}

#[derive(Clone, Copy, Debug)]
struct StmtMeta {
    verb: VerbTag,
    /// Tables recorded for this statement (bounded by MAX_TABLES_PER_STATEMENT).
    ntables: u16,
    /// The upper-cased first word, to tell `RENAME` from `REPLACE` among `Other` verbs.
    word: Kw,
    /// Byte range in the text of the `;`-separated statement this one belongs to (a nested
    /// statement shares its enclosing statement's range).
    span: (u32, u32),
}

#[derive(Clone, Copy, Debug)]
struct TableEntry {
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

/// Classifies SQL texts into statements (verb + tables). Owns bounded scratch reused by every
/// call: after the first few texts it allocates nothing.
pub struct Classifier {
    names: String,
    tables: Vec<TableEntry>,
    stmts: Vec<StmtMeta>,
    ctes: Vec<Cte>,
    refs: Vec<&'static str>,
    out: Vec<SqlStatement<'static>>,
    overflow: Overflow,
    use_target: Option<(u32, u32)>,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

/// Re-types an emptied vector of borrows so its allocation outlives them: the in-place
/// `collect` keeps the buffer (same element size and alignment), so no allocation happens.
fn recycle<'b, T>(mut v: Vec<T>) -> Vec<T::To>
where
    T: Rebind<'b>,
{
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

trait Rebind<'b> {
    type To;
}
impl<'b> Rebind<'b> for &str {
    type To = &'b str;
}
impl<'a, 'b> Rebind<'b> for SqlStatement<'a> {
    type To = SqlStatement<'b>;
}

impl Classifier {
    pub fn new() -> Self {
        Classifier {
            names: String::with_capacity(1024),
            tables: Vec::with_capacity(32),
            stmts: Vec::with_capacity(8),
            ctes: Vec::with_capacity(MAX_CTES),
            refs: Vec::with_capacity(32),
            out: Vec::with_capacity(8),
            overflow: Overflow::default(),
            use_target: None,
        }
    }

    /// Classifies `text` and hands its statements to `f`. The statements borrow this
    /// classifier's scratch, hence the callback (their lifetime ends with it).
    pub fn classify<R>(
        &mut self,
        dialect: SqlDialect,
        text: &[u8],
        f: impl FnOnce(&[SqlStatement<'_>]) -> R,
    ) -> R {
        self.scan(dialect, text);
        let mut refs: Vec<&str> = recycle(std::mem::take(&mut self.refs));
        let mut out: Vec<SqlStatement<'_>> = recycle(std::mem::take(&mut self.out));
        let names = self.names.as_str();
        let name = |s: u32, e: u32| names.get(s as usize..e as usize).unwrap_or_default();
        // Tables are grouped by statement (a nested statement's tables interleave with its
        // parent's), first into `refs`, then sliced per statement.
        let mut bounds = [(0u32, 0u32); MAX_STATEMENTS];
        for ((i, m), b) in self.stmts.iter().enumerate().zip(bounds.iter_mut()) {
            let start = refs.len();
            if m.ntables > 0 {
                for t in self.tables.iter().filter(|t| usize::from(t.stmt) == i) {
                    refs.push(name(t.start, t.end));
                }
            }
            *b = (start as u32, refs.len() as u32);
        }
        for (m, &(s, e)) in self.stmts.iter().zip(bounds.iter()) {
            let verb = match m.verb {
                VerbTag::Known(v) => v,
                VerbTag::Other(s, e) => SqlVerb::Other(name(s, e)),
            };
            let tables = refs.get(s as usize..e as usize).unwrap_or_default();
            let (a, b) = m.span;
            let text = text
                .get(a as usize..b as usize)
                .unwrap_or_default()
                .trim_ascii();
            out.push(SqlStatement { verb, tables, text });
        }
        let r = f(&out);
        self.out = recycle(out);
        self.refs = recycle(refs);
        r
    }

    /// What the last text overflowed, if anything.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// The database named by the last text's `USE db` statement, normalised like a table
    /// name (MySQL clients may switch databases by query instead of COM_INIT_DB).
    pub fn use_database(&self) -> Option<&str> {
        let (s, e) = self.use_target?;
        self.names.get(s as usize..e as usize)
    }

    fn scan(&mut self, dialect: SqlDialect, text: &[u8]) {
        self.names.clear();
        self.tables.clear();
        self.stmts.clear();
        self.ctes.clear();
        self.overflow = Overflow::default();
        self.use_target = None;
        let mut s = Scan {
            c: self,
            lx: Lexer::new(dialect, text),
            depth: 0,
            ds: [DepthState::default(); MAX_DEPTH],
            frames: [(0, 0); MAX_FRAMES],
            nframes: 0,
            seg_start: 0,
            seg_first: 0,
        };
        s.ds[0].query = true;
        s.run();
        s.close_segment(text.len());
    }
}

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

fn keyword(w: &[u8]) -> Kw {
    if w.len() > 14 || w.len() < 2 {
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

struct Scan<'c, 't> {
    c: &'c mut Classifier,
    lx: Lexer<'t>,
    depth: usize,
    ds: [DepthState; MAX_DEPTH],
    /// Statement frames: (statement index, depth it opened at). Nested frames are
    /// data-modifying statements inside parentheses (PostgreSQL CTEs).
    frames: [(u16, u16); MAX_FRAMES],
    nframes: usize,
    /// Where the current `;`-separated statement began, and its first statement's index.
    seg_start: usize,
    seg_first: usize,
}

impl Scan<'_, '_> {
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
        self.c.stmts.get_mut(i)
    }

    fn frame_word(&self) -> Kw {
        self.frame_stmt()
            .and_then(|i| self.c.stmts.get(i))
            .map_or(Kw::Other, |m| m.word)
    }

    fn run(&mut self) {
        loop {
            let t = self.lx.next();
            match t.kind {
                Tok::End => return,
                Tok::Semi => {
                    self.close_segment(t.start);
                    self.seg_start = t.end;
                    self.end_statement();
                }
                Tok::Punct(b'(') => self.open(),
                Tok::Punct(b')') => self.close(),
                Tok::Punct(b',') => self.comma(),
                Tok::Punct(b'[') if self.expecting_name() => {
                    let (s, e) = self.lx.bracketed();
                    self.name_at(Token {
                        kind: Tok::Quoted(b'['),
                        start: s,
                        end: e,
                    });
                }
                Tok::Word => self.word(t),
                Tok::Quoted(_) if self.d().expect == Expect::CteName => self.cte_name(t),
                Tok::Quoted(_) if self.expecting_name() => self.name_at(t),
                Tok::Quoted(_) => {}
                _ => {
                    // Anything else where a name was expected (`INTO @var`, a string) means
                    // there is no name there.
                    self.d().expect = Expect::Nothing;
                }
            }
            if self.c.overflow.statements {
                return;
            }
        }
    }

    fn expecting_name(&mut self) -> bool {
        matches!(
            self.d().expect,
            Expect::ListTable | Expect::OneTable | Expect::UseDb | Expect::CteName
        )
    }

    /// Gives the statements begun since the last `;` their text range, ending at `end`.
    fn close_segment(&mut self, end: usize) {
        let span = (self.seg_start as u32, end as u32);
        for m in self.c.stmts.iter_mut().skip(self.seg_first) {
            m.span = span;
        }
        self.seg_first = self.c.stmts.len();
    }

    fn end_statement(&mut self) {
        self.depth = 0;
        self.ds = [DepthState::default(); MAX_DEPTH];
        self.ds[0].query = true;
        self.nframes = 0;
        self.c.ctes.clear();
    }

    fn begin_statement(&mut self, w: &[u8], k: Kw, nested: bool) -> bool {
        if self.c.stmts.len() >= MAX_STATEMENTS {
            self.c.overflow.statements = true;
            return false;
        }
        let verb = self.verb_tag(w, k);
        let idx = self.c.stmts.len() as u16;
        self.c.stmts.push(StmtMeta {
            verb,
            ntables: 0,
            word: k,
            span: (0, 0),
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
            self.c.overflow.depth = true;
        }
        true
    }

    fn verb_tag(&mut self, w: &[u8], k: Kw) -> VerbTag {
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
                let start = self.c.names.len() as u32;
                for &b in w.iter().take(MAX_VERB) {
                    self.c
                        .names
                        .push(char::from(b.to_ascii_uppercase()).min('\u{7f}'));
                }
                return VerbTag::Other(start, self.c.names.len() as u32);
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
            self.c.overflow.depth = true;
            return;
        }
        // Peek: what starts this parenthesis decides what it is.
        let mut peek = self.lx;
        let t = peek.next();
        let k = if t.kind == Tok::Word {
            keyword(self.lx.text().get(t.start..t.end).unwrap_or_default())
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
            let w = self.lx.text().get(t.start..t.end).unwrap_or_default();
            if self.begin_statement(w, k, true) {
                self.lx = peek;
                self.verb_follow(k);
            }
        }
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
        self.c.ctes.retain(|c| c.depth <= depth);
        if let Some(i) = inner.cte_body {
            if let Some(c) = self.c.ctes.get_mut(usize::from(i)) {
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

    fn word(&mut self, t: Token) {
        let w = self.lx.text().get(t.start..t.end).unwrap_or_default();
        let k = keyword(w);
        if self.frame_stmt().is_none() {
            // The first word of a statement is its verb.
            if self.begin_statement(w, k, false) {
                self.d().query = true;
                self.verb_follow(k);
            }
            return;
        }
        let expect = self.d().expect;
        match expect {
            Expect::ListTable | Expect::OneTable => {
                if self.skip_modifier(expect, k) {
                    return;
                }
                if !reserved(k) {
                    self.name_at(t);
                    return;
                }
                self.d().expect = Expect::Nothing;
            }
            Expect::UseDb => {
                self.name_at(t);
                return;
            }
            Expect::CteName => {
                if k == Kw::Recursive {
                    self.d().recursive = true;
                    return;
                }
                self.cte_name(t);
                return;
            }
            Expect::Nothing => {}
        }
        self.keyword_word(w, k);
    }

    /// Modifiers that may sit between a keyword and the table name it introduces. Most are
    /// not reserved words (a table may be called `temp`), so one is skipped only when a name
    /// still follows it.
    fn skip_modifier(&mut self, expect: Expect, k: Kw) -> bool {
        let candidate = match k {
            Kw::Outfile => {
                self.d().expect = Expect::Nothing;
                return true;
            }
            Kw::ExplainOpt => return self.frame_word() == Kw::Explain,
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
        if !candidate {
            return false;
        }
        let mut peek = self.lx;
        let t = peek.next();
        match t.kind {
            Tok::Word => {
                let next = keyword(self.lx.text().get(t.start..t.end).unwrap_or_default());
                // `IGNORE INTO t`, `TEMP TABLE t`: another modifier may follow.
                !reserved(next) || next == Kw::Into
            }
            Tok::Quoted(_) | Tok::Punct(b'[') => true,
            Tok::Punct(b'(') => k == Kw::Lateral,
            _ => false,
        }
    }

    fn keyword_word(&mut self, w: &[u8], k: Kw) {
        let verb = self.frame_word();
        let depth = self.depth;
        let d = self.d();
        let cte = d.cte;
        if cte == CteStep::AfterName {
            match k {
                Kw::As => {
                    d.cte = CteStep::AfterAs;
                    return;
                }
                _ => return,
            }
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
            Kw::Using if matches!(verb, Kw::Delete | Kw::Merge) => {
                let mut peek = self.lx;
                if peek.next().kind != Tok::Punct(b'(') {
                    let d = self.d();
                    d.expect = Expect::ListTable;
                    d.list = true;
                }
            }
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
    fn restart(&mut self, w: &[u8], k: Kw) {
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

    fn cte_name(&mut self, t: Token) {
        let (s, e) = self.normalise(t, &mut None);
        self.d().expect = Expect::Nothing;
        let depth = self.depth as u16;
        // WITH RECURSIVE names are visible in their own bodies.
        let recursive = self.d().recursive;
        if self.c.ctes.len() < MAX_CTES {
            self.c.ctes.push(Cte {
                start: s,
                end: e,
                depth,
                in_scope: recursive,
            });
            let i = (self.c.ctes.len() - 1) as u8;
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

    /// Reads a possibly qualified name starting at `t`, then records it by what was
    /// expected.
    fn name_at(&mut self, t: Token) {
        let expect = self.d().expect;
        let start = self.c.names.len() as u32;
        let mut quoted_any = None;
        let mut first = t;
        let mut parts = 0;
        let mut qualified = false;
        loop {
            if parts > 0 {
                self.c.names.push('.');
                qualified = true;
            }
            self.normalise(first, &mut quoted_any);
            parts += 1;
            let mut peek = self.lx;
            if peek.next().kind != Tok::Punct(b'.') || parts >= 4 {
                break;
            }
            let mut after = peek;
            let nt = after.next();
            match nt.kind {
                Tok::Word | Tok::Quoted(_) => {
                    self.lx = after;
                    first = nt;
                }
                Tok::Punct(b'*') => {
                    // `db.*` (GRANT): keep the star.
                    self.lx = after;
                    self.c.names.push_str(".*");
                    break;
                }
                Tok::Punct(b'[') => {
                    self.lx = after;
                    let (s, e) = self.lx.bracketed();
                    first = Token {
                        kind: Tok::Quoted(b'['),
                        start: s,
                        end: e,
                    };
                }
                _ => break,
            }
        }
        let end = self.c.names.len() as u32;
        match expect {
            Expect::UseDb => {
                self.c.use_target = Some((start, end));
                self.d().expect = Expect::Nothing;
                return;
            }
            Expect::ListTable => {
                let mut peek = self.lx;
                if peek.next().kind == Tok::Punct(b'(') {
                    // A set-returning function (`FROM generate_series(1, 3)`).
                    self.c.names.truncate(start as usize);
                    self.d().expect = Expect::Nothing;
                    return;
                }
                self.d().expect = Expect::Nothing;
            }
            _ => self.d().expect = Expect::Nothing,
        }
        self.record(start, end, qualified);
    }

    /// Appends one name part, normalised: unquoted lower-cased, quoted as is with doubled
    /// quotes collapsed. Returns its range in `names`.
    fn normalise(&mut self, t: Token, quoted: &mut Option<u8>) -> (u32, u32) {
        let start = self.c.names.len();
        let raw = self.lx.text().get(t.start..t.end).unwrap_or_default();
        let q = match t.kind {
            Tok::Quoted(q) => {
                *quoted = Some(q);
                Some(q)
            }
            _ => None,
        };
        let close = match q {
            Some(b'[') => Some(b']'),
            other => other,
        };
        let text = std::str::from_utf8(raw).unwrap_or("\u{fffd}");
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
                self.c.overflow.name = true;
                break;
            }
            part_len += ch.len_utf8();
            self.c.names.push(if q.is_none() {
                ch.to_ascii_lowercase()
            } else {
                ch
            });
        }
        if self.c.names.len() - start == 0 && q.is_none() {
            self.c.names.push('\u{fffd}');
        }
        (start as u32, self.c.names.len() as u32)
    }

    fn record(&mut self, start: u32, end: u32, qualified: bool) {
        let Some(stmt) = self.frame_stmt() else {
            self.c.names.truncate(start as usize);
            return;
        };
        let name = self
            .c
            .names
            .get(start as usize..end as usize)
            .unwrap_or_default();
        let depth = self.depth as u16;
        let shadowed = !qualified
            && self.c.ctes.iter().any(|c| {
                c.in_scope
                    && c.depth <= depth
                    && self.c.names.get(c.start as usize..c.end as usize) == Some(name)
            });
        let dup = self.c.tables.iter().any(|t| {
            usize::from(t.stmt) == stmt
                && self.c.names.get(t.start as usize..t.end as usize) == Some(name)
        });
        if shadowed || dup {
            self.c.names.truncate(start as usize);
            return;
        }
        let Some(m) = self.c.stmts.get_mut(stmt) else {
            return;
        };
        if usize::from(m.ntables) >= MAX_TABLES_PER_STATEMENT || self.c.tables.len() >= MAX_TABLES {
            self.c.overflow.tables = true;
            self.c.names.truncate(start as usize);
            return;
        }
        m.ntables += 1;
        self.c.tables.push(TableEntry {
            stmt: stmt as u16,
            start,
            end,
        });
    }
}
