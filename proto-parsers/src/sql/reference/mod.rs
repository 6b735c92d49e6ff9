//! The whole-text classifier as it was before statements were classified while streaming,
//! kept only for tests: the streaming classifier (`super`) must classify every text the way
//! this one does (same verbs, tables, normalisation and statement texts), within this one's
//! limits. Differential tests feed both the same corpora and random texts.
//!
//! What it shares with the grammar (`super::grammar`) rather than copying: the dialect's
//! words, their classes and the verbs reported by name ([`keywords`]), the state a scan
//! keeps per depth and its statement frames, the rules that change that state on a keyword,
//! a parenthesis or a comma, and how a name part is normalised. A copy of those could only
//! ever agree with them. What it does its own way is what the streaming classifier is
//! checked on: tokenizing the whole text at once ([`lexer`]), looking ahead in it where the
//! streaming scan defers a question to the next token (a modifier followed by a name, what
//! opens a parenthesis, `USING (`, a qualified name), reading names whole rather than
//! captured across chunks, and its own bounds on what it keeps.

mod keywords;
mod lexer;
mod names;
mod statements;
mod words;

use crate::facts::{SqlDialect, SqlStatement, SqlVerb};
use crate::sql::grammar::{
    Cte, DepthState, Expect, TableEntry, VerbTag, depth_state, frame_statement,
};
// The limits it hit, as the streaming classifier reports them.
pub use crate::sql::Overflow;
use keywords::Kw;
use lexer::{Lexer, Tok, Token};

/// Statements kept per text; more set [`Overflow::statements`].
const MAX_STATEMENTS: usize = 64;
/// Tables kept per statement; more set [`Overflow::tables`].
const MAX_TABLES_PER_STATEMENT: usize = 64;
/// Tables kept per text, all statements together.
const MAX_TABLES: usize = 512;
// Bytes of one normalised name part: the grammar's `crate::sql::MAX_NAME`, applied by the
// grammar's `push_name_part`; longer parts are truncated and set [`Overflow::name`].
/// Parenthesis nesting tracked; deeper text is still read but without clause state, and
/// sets [`Overflow::depth`].
const MAX_DEPTH: usize = crate::sql::MAX_DEPTH;
const MAX_CTES: usize = 16;
const MAX_FRAMES: usize = 8;
const MAX_VERB: usize = 32;

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
        depth_state(&mut self.ds, self.depth)
    }

    fn frame_stmt(&self) -> Option<usize> {
        frame_statement(&self.frames, self.nframes)
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
        self.d().expect.is_name()
    }
}
