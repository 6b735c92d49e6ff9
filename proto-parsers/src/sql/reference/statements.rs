//! Statements and parentheses: `;`, a statement's verb, nested statements, and what a
//! parenthesis opens and closes.

use super::keywords::{Kw, keyword, known_verb};
use super::lexer::Tok;
use super::{DepthState, MAX_DEPTH, MAX_STATEMENTS, MAX_VERB, Scan, StmtMeta, VerbTag};
use crate::sql::grammar::push_frame;
use crate::sql::grammar::statements::end_frames;

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
        if !push_frame(&mut self.frames, &mut self.nframes, idx, self.depth) {
            self.c.overflow.depth = true;
        }
        true
    }

    pub(super) fn verb_tag(&mut self, w: &[u8], k: Kw) -> VerbTag {
        if let Some(v) = known_verb(k) {
            return VerbTag::Known(v);
        }
        let start = self.c.names.len() as u32;
        for &b in w.iter().take(MAX_VERB) {
            self.c
                .names
                .push(char::from(b.to_ascii_uppercase()).min('\u{7f}'));
        }
        VerbTag::Other(start, self.c.names.len() as u32)
    }

    pub(super) fn open(&mut self) {
        let (from_paren, cte_body) = self.d().open_paren();
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
        let (inner, dml) = DepthState::inside_paren(from_paren, cte_body, k);
        *self.d() = inner;
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
        end_frames(&self.frames, &mut self.nframes, self.depth);
        self.depth -= 1;
        let depth = self.depth as u16;
        // CTEs declared inside the closed parenthesis go out of scope.
        self.c.ctes.retain(|c| c.depth <= depth);
        if let Some(i) = inner.cte_body
            && let Some(c) = self.c.ctes.get_mut(usize::from(i))
        {
            c.in_scope = true;
        }
        self.d().after_paren(inner);
    }

    pub(super) fn comma(&mut self) {
        self.d().comma();
    }
}
