//! Statements and parentheses: `;`, a statement's verb, nested statements, and what a
//! parenthesis opens and closes.

use super::keywords::{Kw, keyword, starts_query};
use super::lexer::Tok;
use super::{
    CteStep, DepthState, Expect, MAX_DEPTH, MAX_FRAMES, MAX_STATEMENTS, MAX_VERB, Scan, StmtMeta,
    VerbTag,
};
use crate::facts::SqlVerb;

impl Scan<'_, '_> {
    /// Gives the statements begun since the last `;` their text range, ending at `end`.
    pub(super) fn close_segment(&mut self, end: usize) {
        let span = (self.seg_start as u32, end as u32);
        for m in self.c.stmts.iter_mut().skip(self.seg_first) {
            m.span = span;
        }
        self.seg_first = self.c.stmts.len();
    }

    pub(super) fn end_statement(&mut self) {
        self.depth = 0;
        self.ds = [DepthState::default(); MAX_DEPTH];
        self.ds[0].query = true;
        self.nframes = 0;
        self.c.ctes.clear();
    }

    pub(super) fn begin_statement(&mut self, w: &[u8], k: Kw, nested: bool) -> bool {
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

    pub(super) fn verb_tag(&mut self, w: &[u8], k: Kw) -> VerbTag {
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
