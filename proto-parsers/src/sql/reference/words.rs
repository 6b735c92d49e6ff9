//! What a word does where it is read: a skipped modifier, a keyword that makes the scan
//! expect a table list or one table, the verb of a carried statement.
//!
//! The grammar's rules are shared, not copied: which words are modifiers
//! ([`modifier_word`]) and what a keyword or a verb does to the depth's state
//! (`DepthState::after_keyword`, `DepthState::verb_follow`). What this scan does its own
//! way is what the streaming one is checked on: it looks ahead in the whole text where the
//! grammar defers a question to the next token (a modifier followed by a name, `USING (`).

use super::keywords::{Kw, keyword, reserved};
use super::lexer::{Tok, Token};
use super::{Expect, Scan};
use crate::sql::grammar::words::{Follow, modifier_word};

impl Scan<'_, '_> {
    pub(super) fn word(&mut self, t: Token) {
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
            _ => modifier_word(expect, k),
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
        match self.d().after_keyword(verb, depth, k) {
            Follow::Nothing => {}
            Follow::MainVerb => {
                // The main statement of a WITH: its verb becomes the statement's.
                let tag = self.verb_tag(w, k);
                if let Some(m) = self.meta() {
                    m.verb = tag;
                    m.word = k;
                }
                self.d().query = true;
                self.verb_follow(k);
            }
            Follow::Restart => self.restart(w, k),
            // Looked ahead here, where the grammar defers to the next token.
            Follow::Using => {
                let mut peek = self.lx;
                if peek.next().kind != Tok::Punct(b'(') {
                    let d = self.d();
                    d.expect = Expect::ListTable;
                    d.list = true;
                }
            }
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
    pub(super) fn verb_follow(&mut self, k: Kw) {
        self.d().verb_follow(k);
    }
}
