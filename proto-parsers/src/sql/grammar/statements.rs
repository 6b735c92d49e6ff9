//! Statements and parentheses: `;`, a statement's verb, nested statements, and what a
//! parenthesis opens and closes (a subquery, a CTE body, a join, a function's arguments).

use super::keywords::{Kw, keyword, starts_query};
use super::{
    BATCH_STATEMENTS, CteStep, Defer, DepthState, Expect, Resolved, Scan, StmtMeta, VerbTag,
};
use crate::facts::SqlVerb;
use crate::sql::lexer::{Text, Tok};
use crate::sql::{
    MAX_DEPTH, MAX_FRAMES, MAX_SEGMENT_STATEMENTS, MAX_STATEMENTS, MAX_VERB, TEXT_MAX,
};

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

    pub(super) fn verb_tag(&mut self, w: Text<'_>, k: Kw) -> VerbTag {
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

    pub(super) fn open(&mut self) {
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

    pub(super) fn close(&mut self) {
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

    pub(super) fn comma(&mut self) {
        let d = self.d();
        if d.cte == CteStep::AfterBody {
            d.cte = CteStep::None;
            d.expect = Expect::CteName;
        } else if d.list {
            d.expect = Expect::ListTable;
        }
    }
}
