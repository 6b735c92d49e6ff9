//! Statements and parentheses: `;`, a statement's verb, nested statements, and what a
//! parenthesis opens and closes (a subquery, a CTE body, a join, a function's arguments).

use super::keywords::{Kw, keyword, known_verb, starts_query};
use super::{
    BATCH_STATEMENTS, CteStep, Defer, DepthState, Expect, Resolved, Scan, StmtMeta, VerbTag,
    push_frame,
};
use crate::sql::lexer::{Text, Tok};
use crate::sql::{MAX_DEPTH, MAX_SEGMENT_STATEMENTS, MAX_STATEMENTS, MAX_VERB, TEXT_MAX};

impl Scan {
    pub(super) fn semi(&mut self, chunk: &[u8], at: usize) {
        self.cap.take(chunk, at.saturating_sub(1));
        self.close_segment();
        if self.cap.part.len() < TEXT_MAX {
            self.cap.part.push(b';');
        }
        self.cap.from = at;
        self.end_statement();
        if !self.whole
            && (self.stmts.len() >= BATCH_STATEMENTS
                || self.batch_bytes() >= crate::sql::BATCH_BYTES)
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

    pub(super) fn begin_statement(&mut self, w: Text<'_>, k: Kw, nested: bool) -> bool {
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
        if !push_frame(&mut self.frames, &mut self.nframes, idx, self.depth) {
            self.flag(|o| o.depth = true);
        }
        true
    }

    pub(super) fn verb_tag(&mut self, w: Text<'_>, k: Kw) -> VerbTag {
        if let Some(v) = known_verb(k) {
            return VerbTag::Known(v);
        }
        let start = self.names.len() as u32;
        for &b in w.raw.iter().take(MAX_VERB) {
            self.names
                .push(char::from(b.to_ascii_uppercase()).min('\u{7f}'));
        }
        VerbTag::Other(start, self.names.len() as u32)
    }

    pub(super) fn open(&mut self) {
        let (from_paren, cte_body) = self.d().open_paren();
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
    pub(super) fn opened(
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
        let (inner, dml) = DepthState::inside_paren(from_paren, cte_body, k);
        *self.d() = inner;
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

    pub(super) fn close(&mut self) {
        if self.depth == 0 {
            return;
        }
        let inner = *self.d();
        // A nested statement frame ends with its parenthesis.
        end_frames(&self.frames, &mut self.nframes, self.depth);
        self.depth -= 1;
        let depth = self.depth as u16;
        // CTEs declared inside the closed parenthesis go out of scope.
        self.ctes.retain(|c| c.depth <= depth);
        if let Some(i) = inner.cte_body
            && let Some(c) = self.ctes.get_mut(usize::from(i))
        {
            c.in_scope = true;
        }
        self.d().after_paren(inner);
    }

    pub(super) fn comma(&mut self) {
        self.d().comma();
    }
}

// What parentheses and commas do to the state per depth: the grammar's rules, which the
// reference classifier (tests only) follows too.
impl DepthState {
    /// A `(` read at this depth: what it leaves of this depth's expectations. Returns what
    /// the depth it opens needs to know: whether it stands in a FROM list, and the CTE whose
    /// body it is.
    #[inline]
    pub(in crate::sql) fn open_paren(&mut self) -> (bool, Option<u8>) {
        let from_paren = self.expect == Expect::ListTable;
        let cte_body = if self.cte == CteStep::AfterAs {
            self.cte_pending
        } else {
            None
        };
        if from_paren {
            // `FROM (SELECT ...) alias` or `FROM (a JOIN b)`: the list goes on after it.
            self.expect = Expect::Nothing;
            self.list = true;
        } else if matches!(
            self.expect,
            Expect::OneTable | Expect::UseDb | Expect::CteName
        ) {
            self.expect = Expect::Nothing;
        }
        (from_paren, cte_body)
    }

    /// The state of the depth a `(` opens (see [`DepthState::open_paren`]), whose first
    /// token is the keyword `k` (`Kw::Other` if it is none), and whether `k` begins a
    /// data-modifying statement of its own there.
    #[inline]
    pub(in crate::sql) fn inside_paren(
        from_paren: bool,
        cte_body: Option<u8>,
        k: Kw,
    ) -> (DepthState, bool) {
        let dml = matches!(k, Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge);
        let inner = DepthState {
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
        (inner, dml)
    }

    /// The parenthesis whose state was `inner` closed back to this depth.
    #[inline]
    pub(in crate::sql) fn after_paren(&mut self, inner: DepthState) {
        if inner.cte_body.is_some() {
            self.cte = CteStep::AfterBody;
            self.cte_pending = None;
        }
        if inner.from_paren {
            self.list = true;
        }
    }

    /// A `,` at this depth.
    #[inline]
    pub(in crate::sql) fn comma(&mut self) {
        if self.cte == CteStep::AfterBody {
            self.cte = CteStep::None;
            self.expect = Expect::CteName;
        } else if self.list {
            self.expect = Expect::ListTable;
        }
    }

    /// A CTE's name was read: `AS (` is next. `pending` is its index among the CTEs kept
    /// (`None` if it was not kept).
    #[inline]
    pub(in crate::sql) fn cte_named(&mut self, pending: Option<u8>) {
        self.cte = CteStep::AfterName;
        self.cte_pending = pending;
    }
}

/// Ends the nested statement frames (`frames[..nframes]`: statement index, depth it opened
/// at) opened at `depth` or deeper, when the parenthesis at `depth` closes. The outermost
/// frame stays.
#[inline]
pub(in crate::sql) fn end_frames(frames: &[(u16, u16)], nframes: &mut usize, depth: usize) {
    while *nframes > 1 {
        let top = frames.get(*nframes - 1).map_or(0, |f| usize::from(f.1));
        if top >= depth {
            *nframes -= 1;
        } else {
            break;
        }
    }
}
