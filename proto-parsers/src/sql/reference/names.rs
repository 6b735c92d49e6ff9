//! Names: CTE names, qualified table names, normalised and recorded once per statement.
//! A name part is normalised by the grammar's own rule (`push_name_part`), without the
//! streaming scan's quick copy of the usual name, which this checks.

use super::lexer::{Tok, Token};
use super::{Cte, Expect, MAX_CTES, MAX_TABLES, MAX_TABLES_PER_STATEMENT, Scan, TableEntry};
use crate::sql::grammar::names::push_name_part;

impl Scan<'_, '_> {
    pub(super) fn cte_name(&mut self, t: Token) {
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
            self.d().cte_named(Some(i));
        } else {
            // Too many CTEs: their names will be reported as tables (the safe side).
            self.d().cte_named(None);
        }
    }

    /// Reads a possibly qualified name starting at `t`, then records it by what was
    /// expected.
    pub(super) fn name_at(&mut self, t: Token) {
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
        if push_name_part(&mut self.c.names, text, q, close) {
            self.c.overflow.name = true;
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
