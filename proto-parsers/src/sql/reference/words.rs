//! What a word does where it is read: a skipped modifier, a keyword that makes the scan
//! expect a table list or one table, the verb of a carried statement.

use super::keywords::{Kw, ends_list, keyword, reserved};
use super::lexer::{Tok, Token};
use super::{CteStep, Expect, Scan};

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
    pub(super) fn verb_follow(&mut self, k: Kw) {
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
}
