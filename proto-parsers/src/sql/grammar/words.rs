//! What a word does where it is read: a modifier skipped before a name, a keyword that
//! makes the scan expect a table list or one table, the verb of a carried statement.

use super::keywords::{Kw, ends_list, keyword, reserved};
use super::{CteStep, Defer, DepthState, Expect, Scan};
use crate::sql::lexer::{Text, Tok};

impl Scan {
    pub(super) fn word(&mut self, t: Text<'_>) {
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
    pub(super) fn not_a_modifier(&mut self, t: Text<'_>, k: Kw) {
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
            _ => modifier_word(expect, k),
        };
        if candidate { None } else { Some(false) }
    }

    fn keyword_word(&mut self, w: Text<'_>, k: Kw) {
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
            // A table list follows unless `(` does: the next token tells.
            Follow::Using => self.defer = Defer::Using,
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
    pub(super) fn verb_follow(&mut self, k: Kw) {
        self.d().verb_follow(k);
    }
}

/// Words that may sit between a keyword and the table name it introduces when `expect` is
/// expected (`ONLY`, `IF NOT EXISTS`, `TEMP`, ...), skipped if a name still follows them.
/// OUTFILE and EXPLAIN's options are decided apart.
#[inline]
pub(in crate::sql) fn modifier_word(expect: Expect, k: Kw) -> bool {
    match k {
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
    }
}

/// What a keyword read where no name is expected asks of the scan beyond the change to the
/// depth's state ([`DepthState::after_keyword`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::sql) enum Follow {
    Nothing,
    /// The main statement of a WITH begins: the keyword is the statement's verb.
    MainVerb,
    /// EXPLAIN / DESCRIBE / PREPARE carry a statement of their own, begun by the keyword.
    Restart,
    /// DELETE / MERGE .. USING: a table list follows unless `(` does.
    Using,
}

impl DepthState {
    /// What keyword `k`, read at this depth (`depth`) where no name is expected, in a
    /// statement whose first word is `verb`, does to the scan's state. The grammar's rules,
    /// used by the reference classifier (tests only) too; what needs the scan itself (the
    /// next token, a new statement) is returned.
    #[inline]
    pub(in crate::sql) fn after_keyword(&mut self, verb: Kw, depth: usize, k: Kw) -> Follow {
        let cte = self.cte;
        if cte == CteStep::AfterName {
            if k == Kw::As {
                self.cte = CteStep::AfterAs;
            }
            return Follow::Nothing;
        }
        if cte == CteStep::AfterAs {
            // NOT MATERIALIZED / MATERIALIZED before the body.
            return Follow::Nothing;
        }
        if cte == CteStep::AfterBody {
            self.cte = CteStep::None;
            if matches!(
                k,
                Kw::Select | Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge
            ) && verb == Kw::With
            {
                return Follow::MainVerb;
            }
        }
        if self.list && ends_list(k) {
            self.list = false;
        }
        match k {
            Kw::From => {
                let copy_top = verb == Kw::Copy && depth == 0;
                if (self.query || depth == 0) && !copy_top {
                    self.expect = Expect::ListTable;
                    self.list = true;
                }
            }
            Kw::Join | Kw::StraightJoin => {
                self.expect = Expect::ListTable;
                self.list = true;
            }
            Kw::Into
                if matches!(
                    verb,
                    Kw::Select | Kw::Insert | Kw::Replace | Kw::Merge | Kw::Load
                ) || self.query && depth > 0 =>
            {
                self.expect = Expect::OneTable;
            }
            Kw::Using if matches!(verb, Kw::Delete | Kw::Merge) => return Follow::Using,
            Kw::Table | Kw::Tables | Kw::View => match verb {
                Kw::Create | Kw::Alter => self.expect = Expect::OneTable,
                Kw::Drop | Kw::Truncate | Kw::Lock | Kw::Rename | Kw::Other => {
                    self.expect = Expect::ListTable;
                    self.list = true;
                }
                Kw::Show if k == Kw::Table => self.expect = Expect::OneTable,
                // PostgreSQL's `TABLE t` (= SELECT * FROM t) inside a query or UNION.
                Kw::Select | Kw::With | Kw::Insert | Kw::Values | Kw::Table if k == Kw::Table => {
                    self.expect = Expect::ListTable;
                    self.list = true;
                }
                _ => {}
            },
            // `CREATE INDEX i ON t`, `CREATE TRIGGER .. ON t`, `GRANT .. ON t`.
            Kw::On
                if matches!(verb, Kw::Create | Kw::Drop | Kw::Grant | Kw::Revoke) && !self.list =>
            {
                self.expect = Expect::OneTable;
            }
            Kw::References => self.expect = Expect::OneTable,
            Kw::Like if verb == Kw::Create && !self.selected => self.expect = Expect::OneTable,
            Kw::To if matches!(verb, Kw::Rename | Kw::Alter) && depth == 0 => {
                self.expect = Expect::OneTable;
                if verb == Kw::Rename {
                    self.list = true;
                }
            }
            Kw::Select => {
                self.query = true;
                self.selected = true;
                if matches!(verb, Kw::Explain | Kw::Describe | Kw::Prepare) && depth == 0 {
                    return Follow::Restart;
                }
            }
            Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge | Kw::With | Kw::Values => {
                if matches!(verb, Kw::Explain | Kw::Describe | Kw::Prepare) && depth == 0 {
                    return Follow::Restart;
                } else if k == Kw::With {
                    // A WITH inside a statement (`INSERT INTO t WITH x AS ...`).
                    self.query = true;
                    self.expect = Expect::CteName;
                }
            }
            Kw::Create | Kw::Copy if matches!(verb, Kw::Explain | Kw::Prepare) && depth == 0 => {
                return Follow::Restart;
            }
            _ => {}
        }
        Follow::Nothing
    }

    /// What the verb of a (sub)statement makes the scan expect next.
    #[inline]
    pub(in crate::sql) fn verb_follow(&mut self, k: Kw) {
        match k {
            Kw::Insert | Kw::Replace | Kw::Merge | Kw::Copy => self.expect = Expect::OneTable,
            Kw::Update | Kw::Truncate | Kw::Lock | Kw::Table => {
                self.expect = Expect::ListTable;
                self.list = true;
            }
            Kw::Describe | Kw::Explain => self.expect = Expect::OneTable,
            Kw::Use => self.expect = Expect::UseDb,
            Kw::With => self.expect = Expect::CteName,
            _ => {}
        }
    }
}
