//! SQL statement classification shared by the PostgreSQL and MySQL parsers.
//!
//! A hand-written tokenizer and a small grammar-aware scan (no full parser: `sqlparser`
//! costs ~16 us a statement, this aims at well under 1 us) that finds, for each statement of
//! a text, its verb and every table it touches. It errs on the side of reporting: a word it
//! cannot place is reported as a table rather than dropped, because policy requires every
//! touched table to be allowed, so a missed table is a bypass and an extra one only a
//! denial. Where the dialects lex differently (nested comments, `#` and `--` comments,
//! MySQL executable comments, backslash escapes, dollar quotes) each is read by its own rules.
//!
//! # Streaming
//!
//! A statement may be as long as the server accepts (1 GB), so texts are never buffered: the
//! parsers push a request's text through [`Classifier::feed`] as its bytes arrive, and the
//! lexer and the scan keep only their state between chunks (see `lexer` and `grammar`).
//! What the classifier keeps is a few KiB: the verb and tables of the statements not yet
//! reported, and the first [`TEXT_MAX`] bytes of their texts for logging. A statement that
//! lists hundreds of long table names may grow it to about 128 KiB while it is read (the
//! limits below bound it), given back once it is reported.
//!
//! Statements are reported in batches ([`Batch`]): all of a request's statements at once
//! when the request ends (the usual case: one fact per request, as small requests always
//! were), or, for a request holding many statements, a batch each time one fills
//! ([`BATCH_STATEMENTS`] statements or [`BATCH_BYTES`] of scratch) at a `;`. Every batch
//! becomes one transaction fact with the request's id, so no statement is ever dropped for
//! a count, memory stays bounded, and each statement is judged before the server could run
//! it (the server reads a whole message before running any of it, and a batch is reported
//! at the latest when the message ends).
//!
//! What a limit still cuts (more tables in one statement than [`MAX_TABLES_PER_STATEMENT`],
//! a name longer than [`MAX_NAME`], nesting deeper than [`MAX_DEPTH`]) is flagged in
//! [`Overflow`] and reported by the parsers as a blinding anomaly, never silently.
//!
//! Assumptions (server settings the wire does not show): PostgreSQL with
//! `standard_conforming_strings` on (the default since 9.1); MySQL with the default sql_mode
//! (backslash escapes on, `ANSI_QUOTES` off).

mod grammar;
mod lexer;
pub mod pending;
pub mod prepared;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use pending::{Pending, PendingQueue};
pub use prepared::PreparedStore;

use crate::contract::{Fact, FactSink, ParserAnomaly};
use crate::facts::{RequestDetail, SqlDialect, SqlKind, SqlRequest, SqlStatement};
use grammar::Scan;
use lexer::{Lexer, Text, Tok, Tokens};

/// Statements [`Classifier::classify`] keeps of one text (it hands them all to one
/// callback); more set [`Overflow::statements`]. The parsers, which stream, have no such
/// limit.
pub const MAX_STATEMENTS: usize = 64;
/// Statements of a streamed text reported together at most (see the module documentation).
pub const BATCH_STATEMENTS: usize = 64;
/// Bytes of scratch (names, texts, entries) after which a batch is reported at the next `;`.
pub const BATCH_BYTES: usize = 16 * 1024;
/// Statements found in one `;`-separated part (EXPLAIN's and PREPARE's own, data-modifying
/// CTEs); more set [`Overflow::statements`].
pub const MAX_SEGMENT_STATEMENTS: usize = 256;
/// Tables kept per statement; more set [`Overflow::tables`].
pub const MAX_TABLES_PER_STATEMENT: usize = 1024;
/// Tables kept per `;`-separated part, all its statements together.
pub const MAX_TABLES: usize = 1024;
/// Bytes of normalised names kept per `;`-separated part; more set [`Overflow::tables`].
pub const MAX_SEGMENT_NAMES: usize = 64 * 1024;
/// Bytes of one normalised name (`schema.table`); longer names are truncated and set
/// [`Overflow::name`].
pub const MAX_NAME: usize = 256;
/// Parenthesis nesting tracked; deeper text is still read but without clause state, and
/// sets [`Overflow::depth`].
pub const MAX_DEPTH: usize = 32;
/// Bytes of a request's or a statement's text kept for logging (`SqlRequest::text`,
/// `SqlStatement::text`); classification always sees the whole text.
pub const TEXT_MAX: usize = 4096;
/// Bytes of statement text used as a transaction's summary.
pub const SUMMARY_MAX: usize = 256;
const MAX_CTES: usize = 16;
const MAX_FRAMES: usize = 8;
const MAX_VERB: usize = 32;

/// Limits a text hit while it was classified: the statements reported are then incomplete
/// and the caller raises a blinding anomaly ([`report_overflow`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overflow {
    /// More statements than kept: [`MAX_STATEMENTS`] for a whole text,
    /// [`MAX_SEGMENT_STATEMENTS`] in one `;`-separated part of a streamed one.
    pub statements: bool,
    /// More tables (or name bytes) in a statement or part than kept.
    pub tables: bool,
    /// A name longer than [`MAX_NAME`], or a dollar-quote tag too long to match.
    pub name: bool,
    /// Nesting deeper than tracked.
    pub depth: bool,
}

impl Overflow {
    pub fn any(self) -> bool {
        self.statements || self.tables || self.name || self.depth
    }

    fn union(self, o: Overflow) -> Overflow {
        Overflow {
            statements: self.statements || o.statements,
            tables: self.tables || o.tables,
            name: self.name || o.name,
            depth: self.depth || o.depth,
        }
    }
}

/// Statements of a text reported together; they borrow the classifier's scratch.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The part of the text these statements come from, its first [`TEXT_MAX`] bytes: the
    /// whole text as sent when `whole`; for a later batch, from the first non-blank byte
    /// after the previous batch's last `;`.
    pub text: &'a [u8],
    pub statements: &'a [SqlStatement<'a>],
    /// Limits hit since the previous batch.
    pub overflow: Overflow,
    /// The batch holds every statement of the text (the text ended and nothing was
    /// reported before).
    pub whole: bool,
}

/// Classifies SQL texts into statements (verb + tables), whole ([`Classifier::classify`])
/// or streamed ([`Classifier::begin`], [`Classifier::feed`], [`Classifier::finish`]). Owns
/// bounded scratch reused by every text: after the first few it allocates nothing.
pub struct Classifier {
    lex: Lexer,
    scan: Scan,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The lexer's tokens into the scan, and the scan's full batches out to the reporter.
struct Feed<'s, 'r> {
    scan: &'s mut Scan,
    report: &'r mut dyn FnMut(&Batch<'_>),
}

impl Tokens for Feed<'_, '_> {
    fn token(&mut self, tok: Tok, text: Text<'_>, chunk: &[u8], at: usize) -> bool {
        let bracket = self.scan.token(tok, text, chunk, at);
        if self.scan.flush_due {
            self.scan.flush_due = false;
            let report = &mut *self.report;
            self.scan.with_batch(false, |b| report(b));
        }
        bracket
    }
}

impl Classifier {
    pub fn new() -> Self {
        Classifier {
            lex: Lexer::new(),
            scan: Scan::new(),
        }
    }

    /// Starts a streamed text.
    pub fn begin(&mut self, dialect: SqlDialect) {
        self.lex.reset(dialect);
        self.scan.reset(false);
    }

    /// The next bytes of the text begun last. Batches that fill up are handed to `report`
    /// from within this call (their statements borrow the scratch until it returns).
    pub fn feed(&mut self, chunk: &[u8], report: &mut dyn FnMut(&Batch<'_>)) {
        let mut feed = Feed {
            scan: &mut self.scan,
            report,
        };
        self.lex.run(chunk, &mut feed);
        self.scan.cap.take_rest(chunk);
    }

    /// The text ended: its last statements are handed to `report` (once, and even when
    /// there are none, if nothing was reported before: a request without statements is
    /// still a request).
    pub fn finish(&mut self, report: &mut dyn FnMut(&Batch<'_>)) {
        self.end_text(report);
        if self.scan.parts == 0 || !self.scan.stmts.is_empty() {
            let whole = self.scan.parts == 0;
            self.scan.with_batch(whole, |b| report(b));
        }
    }

    fn end_text(&mut self, report: &mut dyn FnMut(&Batch<'_>)) {
        let mut feed = Feed {
            scan: &mut self.scan,
            report,
        };
        self.lex.finish(&mut feed);
        feed.token(Tok::End, Text::EMPTY, &[], 0);
        self.scan.close_segment();
        if self.lex.tag_overflow {
            self.scan.batch_overflow.name = true;
            self.scan.overflow.name = true;
        }
    }

    /// Classifies a whole `text` and hands its statements (at most [`MAX_STATEMENTS`]) to
    /// `f`. The statements borrow this classifier's scratch, hence the callback (their
    /// lifetime ends with it).
    pub fn classify<R>(
        &mut self,
        dialect: SqlDialect,
        text: &[u8],
        f: impl FnOnce(&[SqlStatement<'_>]) -> R,
    ) -> R {
        self.lex.reset(dialect);
        self.scan.reset(true);
        let mut none = |_: &Batch<'_>| {};
        self.feed(text, &mut none);
        self.end_text(&mut none);
        self.scan.with_batch(true, |b| f(b.statements))
    }

    /// Bytes of scratch allocated (tests check it stays bounded and stops growing).
    #[cfg(test)]
    pub(crate) fn scratch_capacity(&self) -> usize {
        self.lex.capacity() + self.scan.capacity()
    }

    /// Whether a batch of the current text was reported already.
    pub fn reported(&self) -> bool {
        self.scan.parts > 0
    }

    /// What the last text overflowed, if anything (all of it, whatever its batches said).
    pub fn overflow(&self) -> Overflow {
        self.scan.overflow.union(self.scan.batch_overflow)
    }

    /// The database named by the last text's `USE db` statement, normalised like a table
    /// name (MySQL clients may switch databases by query instead of COM_INIT_DB).
    pub fn use_database(&self) -> Option<&str> {
        self.scan.has_use.then_some(self.scan.use_db.as_str())
    }
}

/// Re-types an emptied vector of borrows so its allocation outlives them: the in-place
/// `collect` keeps the buffer (same element size and alignment), so no allocation happens.
pub(crate) fn recycle<'b, T>(mut v: Vec<T>) -> Vec<T::To>
where
    T: Rebind<'b>,
{
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

pub(crate) trait Rebind<'b> {
    type To;
}
impl<'b> Rebind<'b> for &str {
    type To = &'b str;
}
impl<'a, 'b> Rebind<'b> for SqlStatement<'a> {
    type To = SqlStatement<'b>;
}

/// Raises the blinding anomaly for each limit a batch hit (the data plane then applies the
/// policy's uninspectable decision: what was cut cannot have been judged). Returns whether
/// any was.
pub fn report_overflow(o: Overflow, sink: &mut dyn FactSink) -> bool {
    if o.statements {
        sink.anomaly(ParserAnomaly::MessageTooLarge);
    }
    if o.tables || o.depth {
        sink.anomaly(ParserAnomaly::TooManyHeaders);
    }
    if o.name {
        sink.anomaly(ParserAnomaly::HeaderTooLarge);
    }
    o.any()
}

/// Who sent an SQL request and what it is: the fields of its facts other than the text.
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    pub dialect: SqlDialect,
    pub id: u32,
    pub kind: SqlKind,
    pub user: Option<&'a [u8]>,
    pub database: Option<&'a [u8]>,
}

/// Reports one batch of a request: its limits as anomalies, then a transaction with the
/// request's id holding the batch's statements (the first of several such facts when a
/// request is reported in parts).
pub fn report_batch(info: &RequestInfo<'_>, b: &Batch<'_>, sink: &mut dyn FactSink) {
    report_overflow(b.overflow, sink);
    report_statements(info, b.text, b.statements, sink);
}

/// Reports a transaction with these statements, `text` its (bounded) text.
pub fn report_statements(
    info: &RequestInfo<'_>,
    text: &[u8],
    statements: &[SqlStatement<'_>],
    sink: &mut dyn FactSink,
) {
    let summary = text.get(..SUMMARY_MAX.min(text.len())).unwrap_or_default();
    sink.fact(&Fact::Transaction {
        app: info.dialect.app(),
        id: info.id,
        summary,
        detail: RequestDetail::Sql(SqlRequest {
            dialect: info.dialect,
            kind: info.kind,
            user: info.user,
            database: info.database,
            text,
            statements,
        }),
    });
}
