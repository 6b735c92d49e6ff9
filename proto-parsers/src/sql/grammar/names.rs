//! Names: CTE names, qualified table names read part by part, normalised, and recorded
//! once per statement (a linear search, then a hash index, for duplicates).

use super::{Cte, Defer, Expect, NameRun, Scan, TableEntry};
use crate::sql::lexer::{Text, Tok};
use crate::sql::{MAX_CTES, MAX_NAME, MAX_SEGMENT_NAMES, MAX_TABLES, MAX_TABLES_PER_STATEMENT};

/// Tables per `;`-separated part found by a linear scan; past this many, by a hash index.
const LINEAR_DEDUP: usize = 16;

fn name_hash(stmt: u16, name: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ u64::from(stmt);
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Scan {
    pub(super) fn cte_name(&mut self, tok: Tok, t: Text<'_>) {
        let (s, e) = self.normalise(tok, t);
        self.d().expect = Expect::Nothing;
        let depth = self.depth as u16;
        // WITH RECURSIVE names are visible in their own bodies.
        let recursive = self.d().recursive;
        if self.ctes.len() < MAX_CTES {
            self.ctes.push(Cte {
                start: s,
                end: e,
                depth,
                in_scope: recursive,
            });
            let i = (self.ctes.len() - 1) as u8;
            self.d().cte_named(Some(i));
        } else {
            // Too many CTEs: their names will be reported as tables (the safe side).
            self.d().cte_named(None);
        }
    }

    /// Starts reading a possibly qualified name at this token; the tokens after it finish
    /// it ([`Defer::NameAfterPart`]), then it is recorded by what was expected.
    pub(super) fn name_at(&mut self, tok: Tok, t: Text<'_>) {
        let expect = self.d().expect;
        let start = self.names.len() as u32;
        self.normalise(tok, t);
        self.defer = Defer::NameAfterPart(NameRun {
            start,
            parts: 1,
            qualified: false,
            expect,
        });
    }

    pub(super) fn name_part(&mut self, run: &mut NameRun, tok: Tok, t: Text<'_>) {
        self.names.push('.');
        run.qualified = true;
        self.normalise(tok, t);
        run.parts += 1;
    }

    pub(super) fn finish_name(&mut self, run: NameRun, before_paren: bool) {
        let (start, end) = (run.start, self.names.len() as u32);
        match run.expect {
            Expect::UseDb => {
                self.use_db.clear();
                self.use_db
                    .push_str(self.names.get(start as usize..).unwrap_or_default());
                self.has_use = true;
                self.d().expect = Expect::Nothing;
                return;
            }
            Expect::ListTable => {
                if before_paren {
                    // A set-returning function (`FROM generate_series(1, 3)`).
                    self.names.truncate(start as usize);
                    self.d().expect = Expect::Nothing;
                    return;
                }
                self.d().expect = Expect::Nothing;
            }
            _ => self.d().expect = Expect::Nothing,
        }
        self.record(start, end, run.qualified);
    }

    /// Appends one name part, normalised: unquoted lower-cased, quoted as is with doubled
    /// quotes collapsed. Returns its range in `names`.
    fn normalise(&mut self, tok: Tok, t: Text<'_>) -> (u32, u32) {
        let start = self.names.len();
        let q = match tok {
            Tok::Quoted(q) => Some(q),
            _ => None,
        };
        let close = match q {
            Some(b'[') => Some(b']'),
            other => other,
        };
        // A token whole is checked here; a longer one keeps a prefix long enough to
        // overflow MAX_NAME, and its validity is the whole token's.
        let text = if t.raw.len() as u64 == t.len {
            std::str::from_utf8(t.raw).unwrap_or("\u{fffd}")
        } else if t.utf8 {
            match std::str::from_utf8(t.raw) {
                Ok(s) => s,
                Err(e) => t
                    .raw
                    .get(..e.valid_up_to())
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .unwrap_or_default(),
            }
        } else {
            "\u{fffd}"
        };
        if text.len() <= MAX_NAME && !text.is_empty() {
            // The usual name: short, ASCII, without quotes to collapse: copied at once.
            match close {
                None if text.is_ascii() => {
                    self.names.push_str(text);
                    if let Some(part) = self.names.get_mut(start..) {
                        part.make_ascii_lowercase();
                    }
                    return (start as u32, self.names.len() as u32);
                }
                Some(c) if !text.as_bytes().contains(&c) => {
                    self.names.push_str(text);
                    return (start as u32, self.names.len() as u32);
                }
                _ => {}
            }
        }
        if push_name_part(&mut self.names, text, q, close) {
            self.flag(|o| o.name = true);
        }
        (start as u32, self.names.len() as u32)
    }

    fn record(&mut self, start: u32, end: u32, qualified: bool) {
        let Some(stmt) = self.frame_stmt() else {
            self.names.truncate(start as usize);
            return;
        };
        let depth = self.depth as u16;
        let name = self
            .names
            .get(start as usize..end as usize)
            .unwrap_or_default();
        let shadowed = !qualified
            && self.ctes.iter().any(|c| {
                c.in_scope
                    && c.depth <= depth
                    && self.names.get(c.start as usize..c.end as usize) == Some(name)
            });
        if shadowed || self.is_dup(stmt as u16, start, end) {
            self.names.truncate(start as usize);
            return;
        }
        let seg_tables = self.tables.len() - self.seg_tables;
        let seg_names = self.names.len() - self.seg_names;
        let Some(m) = self.stmts.get_mut(stmt) else {
            return;
        };
        if usize::from(m.ntables) >= MAX_TABLES_PER_STATEMENT
            || seg_tables >= MAX_TABLES
            || seg_names > MAX_SEGMENT_NAMES
        {
            self.flag(|o| o.tables = true);
            self.names.truncate(start as usize);
            return;
        }
        m.ntables += 1;
        self.tables.push(TableEntry {
            stmt: stmt as u16,
            start,
            end,
        });
        if self.dedup_live {
            self.index_insert(self.tables.len() - 1);
        }
    }

    /// Whether statement `stmt` already has the table named `names[start..end]`. A part's
    /// first tables are searched in place; past LINEAR_DEDUP, through a hash index, so a
    /// statement listing a thousand tables costs no more per table than one listing three.
    fn is_dup(&mut self, stmt: u16, start: u32, end: u32) -> bool {
        let names = self.names.as_bytes();
        let name = names.get(start as usize..end as usize).unwrap_or_default();
        let seg = self.tables.get(self.seg_tables..).unwrap_or_default();
        if !self.dedup_live {
            if seg.len() < LINEAR_DEDUP {
                return seg.iter().any(|t| {
                    t.stmt == stmt && names.get(t.start as usize..t.end as usize) == Some(name)
                });
            }
            self.rebuild_index();
        }
        if self.dedup.len() < 2 * (self.tables.len() - self.seg_tables + 1) {
            // (At most half full, so probes stay short.)
            self.rebuild_index();
        }
        let names = self.names.as_bytes();
        let name = names.get(start as usize..end as usize).unwrap_or_default();
        let mask = self.dedup.len() - 1;
        let mut i = name_hash(stmt, name) as usize & mask;
        loop {
            match self.dedup.get(i).copied() {
                Some(0) | None => return false,
                Some(slot) => {
                    if let Some(t) = self.tables.get(slot as usize - 1)
                        && t.stmt == stmt
                        && names.get(t.start as usize..t.end as usize) == Some(name)
                    {
                        return true;
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// (Re)builds the hash index over the current part's tables, sized for twice as many.
    fn rebuild_index(&mut self) {
        let n = self.tables.len() - self.seg_tables;
        let size = (2 * (n + 1)).next_power_of_two().max(64);
        self.dedup.clear();
        self.dedup.resize(size, 0);
        self.dedup_live = true;
        for i in self.seg_tables..self.tables.len() {
            self.index_insert(i);
        }
    }

    fn index_insert(&mut self, ti: usize) {
        let Some(t) = self.tables.get(ti).copied() else {
            return;
        };
        let name = self
            .names
            .as_bytes()
            .get(t.start as usize..t.end as usize)
            .unwrap_or_default();
        let mask = self.dedup.len().wrapping_sub(1);
        let mut i = name_hash(t.stmt, name) as usize & mask;
        for _ in 0..self.dedup.len() {
            match self.dedup.get_mut(i) {
                Some(slot) if *slot == 0 => {
                    *slot = ti as u32 + 1;
                    return;
                }
                Some(_) => i = (i + 1) & mask,
                None => return,
            }
        }
    }
}

/// Appends one name part, `text`, to `names`: unquoted (`q` is `None`) lower-cased, quoted
/// as is with doubled `close` quotes collapsed, cut at [`MAX_NAME`] bytes, an empty
/// unquoted part as U+FFFD. Returns whether it was cut. [`Scan::normalise`]'s general case;
/// the reference classifier (tests only) normalises every name with it, which checks the
/// grammar's quick copy of the usual name.
pub(in crate::sql) fn push_name_part(
    names: &mut String,
    text: &str,
    q: Option<u8>,
    close: Option<u8>,
) -> bool {
    let start = names.len();
    let mut cut = false;
    let mut prev_quote = false;
    let mut part_len = 0usize;
    for ch in text.chars() {
        if let Some(c) = close
            && ch == char::from(c)
        {
            if prev_quote {
                prev_quote = false;
                continue;
            }
            prev_quote = true;
        } else {
            prev_quote = false;
        }
        if part_len + ch.len_utf8() > MAX_NAME {
            cut = true;
            break;
        }
        part_len += ch.len_utf8();
        names.push(if q.is_none() {
            ch.to_ascii_lowercase()
        } else {
            ch
        });
    }
    if names.len() - start == 0 && q.is_none() {
        names.push('\u{fffd}');
    }
    cut
}
