//! Prepared statements of one flow, kept as what executing them needs to be judged: the
//! classification their text got when it was prepared (verbs, tables) and a logging prefix
//! of the text, never the text itself, so a statement of any length can be executed and
//! judged. The table is bounded in entries and bytes; the least recently used entry makes
//! room for a new one. Executing a statement the table does not hold (evicted, too large to
//! keep, or prepared before the parser saw the flow) is for the parser to report as a
//! blinding anomaly.

use super::{Batch, TEXT_MAX, recycle};
use crate::facts::{SqlStatement, SqlVerb};

/// Statements kept per flow.
pub const MAX_PREPARED: usize = 256;
/// Bytes kept per flow, all statements together (names, texts, bookkeeping).
pub const MAX_PREPARED_BYTES: usize = 512 * 1024;
/// Bytes one statement may take; a larger classification is not kept.
pub const MAX_ENTRY_BYTES: usize = 128 * 1024;
/// Bytes of a statement name kept.
pub const MAX_KEY: usize = 256;
/// What an entry costs besides its buffers.
const ENTRY_OVERHEAD: usize = 128;

/// How a prepared statement is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// By the client (PostgreSQL Parse); names longer than [`MAX_KEY`] are cut.
    Name(&'a [u8]),
    /// By the server (MySQL's statement id).
    Id(u32),
    /// Prepared, the server's id not known yet: the request's id.
    Staged(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Name,
    Id(u32),
    Staged(u32),
}

#[derive(Clone, Copy, Debug)]
enum StoredVerb {
    Known(SqlVerb<'static>),
    Other(u32, u32),
}

#[derive(Clone, Copy, Debug)]
struct Stored {
    verb: StoredVerb,
    tables: (u32, u32),
    text: (u32, u32),
}

#[derive(Debug, Default)]
struct Entry {
    kind: Option<KeyKind>,
    name: Vec<u8>,
    serial: u64,
    used: u64,
    /// PostgreSQL portals bound to it: replaced or closed, it is kept (without a name)
    /// while one of them may still run it.
    pins: u32,
    /// The request text's first TEXT_MAX bytes.
    text: Vec<u8>,
    /// Table names and `Other` verbs.
    names: String,
    /// Statement texts.
    texts: Vec<u8>,
    stmts: Vec<Stored>,
    tables: Vec<(u32, u32)>,
}

impl Entry {
    fn matches(&self, key: Key<'_>) -> bool {
        match (self.kind, key) {
            (Some(KeyKind::Name), Key::Name(n)) => self.name == cut(n),
            (Some(KeyKind::Id(a)), Key::Id(b)) | (Some(KeyKind::Staged(a)), Key::Staged(b)) => {
                a == b
            }
            _ => false,
        }
    }

    fn bytes(&self) -> usize {
        ENTRY_OVERHEAD
            + self.name.len()
            + self.text.len()
            + self.names.len()
            + self.texts.len()
            + self.stmts.len() * std::mem::size_of::<Stored>()
            + self.tables.len() * std::mem::size_of::<(u32, u32)>()
    }

    /// Copies a batch in, reusing this entry's buffers.
    fn fill(&mut self, b: &Batch<'_>) {
        self.text.clear();
        self.names.clear();
        self.texts.clear();
        self.stmts.clear();
        self.tables.clear();
        self.text
            .extend_from_slice(b.text.get(..TEXT_MAX.min(b.text.len())).unwrap_or_default());
        let mut last_text: Option<(&[u8], (u32, u32))> = None;
        for st in b.statements {
            let verb = match st.verb {
                SqlVerb::Other(s) => {
                    let start = self.names.len() as u32;
                    self.names.push_str(s);
                    StoredVerb::Other(start, self.names.len() as u32)
                }
                SqlVerb::Select => StoredVerb::Known(SqlVerb::Select),
                SqlVerb::Insert => StoredVerb::Known(SqlVerb::Insert),
                SqlVerb::Update => StoredVerb::Known(SqlVerb::Update),
                SqlVerb::Delete => StoredVerb::Known(SqlVerb::Delete),
                SqlVerb::Merge => StoredVerb::Known(SqlVerb::Merge),
                SqlVerb::Create => StoredVerb::Known(SqlVerb::Create),
                SqlVerb::Alter => StoredVerb::Known(SqlVerb::Alter),
                SqlVerb::Drop => StoredVerb::Known(SqlVerb::Drop),
                SqlVerb::Truncate => StoredVerb::Known(SqlVerb::Truncate),
                SqlVerb::Grant => StoredVerb::Known(SqlVerb::Grant),
                SqlVerb::Revoke => StoredVerb::Known(SqlVerb::Revoke),
                SqlVerb::Copy => StoredVerb::Known(SqlVerb::Copy),
                SqlVerb::Begin => StoredVerb::Known(SqlVerb::Begin),
                SqlVerb::Commit => StoredVerb::Known(SqlVerb::Commit),
                SqlVerb::Rollback => StoredVerb::Known(SqlVerb::Rollback),
                SqlVerb::Set => StoredVerb::Known(SqlVerb::Set),
                SqlVerb::Show => StoredVerb::Known(SqlVerb::Show),
                SqlVerb::Use => StoredVerb::Known(SqlVerb::Use),
                SqlVerb::Call => StoredVerb::Known(SqlVerb::Call),
                SqlVerb::Explain => StoredVerb::Known(SqlVerb::Explain),
                SqlVerb::With => StoredVerb::Known(SqlVerb::With),
            };
            let t0 = self.tables.len() as u32;
            for t in st.tables {
                let start = self.names.len() as u32;
                self.names.push_str(t);
                self.tables.push((start, self.names.len() as u32));
            }
            // Statements of one `;`-separated part share its text: keep it once.
            let text = match last_text {
                Some((prev, range)) if prev == st.text => range,
                _ => {
                    let start = self.texts.len() as u32;
                    self.texts.extend_from_slice(st.text);
                    (start, self.texts.len() as u32)
                }
            };
            last_text = Some((st.text, text));
            self.stmts.push(Stored {
                verb,
                tables: (t0, self.tables.len() as u32),
                text,
            });
        }
    }
}

fn cut(name: &[u8]) -> &[u8] {
    name.get(..name.len().min(MAX_KEY)).unwrap_or_default()
}

/// Size of a batch once kept, before copying it.
fn batch_bytes(b: &Batch<'_>) -> usize {
    let mut n = ENTRY_OVERHEAD + b.text.len().min(TEXT_MAX) + MAX_KEY;
    for st in b.statements {
        n += st.text.len() + std::mem::size_of::<Stored>() + 32;
        for t in st.tables {
            n += t.len() + std::mem::size_of::<(u32, u32)>();
        }
    }
    n
}

/// The prepared statements of one flow.
#[derive(Debug)]
pub struct PreparedStore {
    entries: Vec<Entry>,
    /// An evicted entry's buffers, reused by the next one.
    spare: Option<Entry>,
    bytes: usize,
    tick: u64,
    serial: u64,
    refs: Vec<&'static str>,
    out: Vec<SqlStatement<'static>>,
}

impl Default for PreparedStore {
    fn default() -> Self {
        Self::new()
    }
}

impl PreparedStore {
    pub fn new() -> Self {
        PreparedStore {
            entries: Vec::new(),
            spare: None,
            bytes: 0,
            tick: 0,
            serial: 0,
            refs: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn position(&self, key: Key<'_>) -> Option<usize> {
        self.entries.iter().position(|e| e.matches(key))
    }

    fn take(&mut self, i: usize) -> Entry {
        let e = self.entries.swap_remove(i);
        self.bytes = self.bytes.saturating_sub(e.bytes());
        e
    }

    /// Forgets the statement named `key` (kept by its serial while a portal is bound to it).
    pub fn remove(&mut self, key: Key<'_>) {
        if let Some(i) = self.position(key) {
            self.unname(i);
        }
    }

    /// Takes entry `i` out of the names; frees it unless pinned.
    fn unname(&mut self, i: usize) {
        match self.entries.get_mut(i) {
            Some(e) if e.pins > 0 => e.kind = None,
            Some(_) => {
                let e = self.take(i);
                self.spare = Some(e);
            }
            None => {}
        }
    }

    /// A portal was bound to the entry with this serial.
    pub fn pin(&mut self, serial: Option<u64>) {
        if let Some(e) = self.entries.iter_mut().find(|e| Some(e.serial) == serial) {
            e.pins = e.pins.saturating_add(1);
        }
    }

    /// A portal bound to the entry with this serial is gone or bound elsewhere.
    pub fn unpin(&mut self, serial: Option<u64>) {
        let Some(i) = self.entries.iter().position(|e| Some(e.serial) == serial) else {
            return;
        };
        if let Some(e) = self.entries.get_mut(i) {
            e.pins = e.pins.saturating_sub(1);
            if e.pins == 0 && e.kind.is_none() {
                let e = self.take(i);
                self.spare = Some(e);
            }
        }
    }

    /// Keeps `b` (the whole classification of a prepared text) as `key`, replacing what
    /// had that name and evicting the least recently used entries as needed. Returns the
    /// entry's serial, or `None` when it is too large to keep (what had the name is then
    /// forgotten: executing it must not be judged by an older text).
    pub fn insert(&mut self, key: Key<'_>, b: &Batch<'_>) -> Option<u64> {
        if let Some(i) = self.position(key) {
            self.unname(i);
        }
        // A classification cut by a limit is not kept: executing it must raise the same
        // blinding anomaly again, not pass on half the tables.
        if b.overflow.any() || batch_bytes(b) > MAX_ENTRY_BYTES {
            return None;
        }
        let mut e = self.spare.take().unwrap_or_default();
        e.pins = 0;
        e.fill(b);
        e.name.clear();
        e.kind = Some(match key {
            Key::Name(n) => {
                e.name.extend_from_slice(cut(n));
                KeyKind::Name
            }
            Key::Id(i) => KeyKind::Id(i),
            Key::Staged(i) => KeyKind::Staged(i),
        });
        let need = e.bytes();
        while !self.entries.is_empty()
            && (self.entries.len() >= MAX_PREPARED || self.bytes + need > MAX_PREPARED_BYTES)
        {
            let lru = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map_or(0, |(i, _)| i);
            self.take(lru);
        }
        self.tick += 1;
        self.serial += 1;
        e.used = self.tick;
        e.serial = self.serial;
        self.bytes += need;
        self.entries.push(e);
        Some(self.serial)
    }

    /// Renames a staged statement once the server named it.
    pub fn rekey(&mut self, from: Key<'_>, to: u32) -> bool {
        self.remove(Key::Id(to));
        match self.position(from) {
            Some(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    e.kind = Some(KeyKind::Id(to));
                }
                true
            }
            None => false,
        }
    }

    /// The serial of the statement named `key` (what a PostgreSQL portal is bound to).
    pub fn serial(&self, key: Key<'_>) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.matches(key))
            .map(|e| e.serial)
    }

    /// The entry most recently kept.
    pub fn last_serial(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.serial).max()
    }

    /// Hands `f` the text prefix and statements of the entry with this serial (`None`
    /// when it is not held).
    pub fn with_serial<R>(
        &mut self,
        serial: Option<u64>,
        f: impl FnOnce(Option<(&[u8], &[SqlStatement<'_>])>) -> R,
    ) -> R {
        let i = serial.and_then(|s| self.entries.iter().position(|e| e.serial == s));
        self.with_index(i, f)
    }

    /// As [`PreparedStore::with_serial`], by name.
    pub fn with_key<R>(
        &mut self,
        key: Key<'_>,
        f: impl FnOnce(Option<(&[u8], &[SqlStatement<'_>])>) -> R,
    ) -> R {
        let i = self.position(key);
        self.with_index(i, f)
    }

    fn with_index<R>(
        &mut self,
        i: Option<usize>,
        f: impl FnOnce(Option<(&[u8], &[SqlStatement<'_>])>) -> R,
    ) -> R {
        self.tick += 1;
        let tick = self.tick;
        let Some(e) = i.and_then(|i| self.entries.get_mut(i)) else {
            return f(None);
        };
        e.used = tick;
        let e = &*e;
        let mut refs: Vec<&str> = recycle(std::mem::take(&mut self.refs));
        let mut out: Vec<SqlStatement<'_>> = recycle(std::mem::take(&mut self.out));
        let names = e.names.as_str();
        let name = |(s, t): (u32, u32)| names.get(s as usize..t as usize).unwrap_or_default();
        refs.extend(e.tables.iter().map(|&r| name(r)));
        for st in &e.stmts {
            out.push(SqlStatement {
                verb: match st.verb {
                    StoredVerb::Known(v) => v,
                    StoredVerb::Other(s, t) => SqlVerb::Other(name((s, t))),
                },
                tables: refs
                    .get(st.tables.0 as usize..st.tables.1 as usize)
                    .unwrap_or_default(),
                text: e
                    .texts
                    .get(st.text.0 as usize..st.text.1 as usize)
                    .unwrap_or_default(),
            });
        }
        let r = f(Some((&e.text, &out)));
        self.out = recycle(out);
        self.refs = recycle(refs);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::SqlDialect;
    use crate::sql::Classifier;

    fn keep(store: &mut PreparedStore, key: Key<'_>, text: &str) -> Option<u64> {
        let mut c = Classifier::new();
        c.begin(SqlDialect::Postgres);
        c.feed(text.as_bytes(), &mut |_| {});
        let mut serial = None;
        c.finish(&mut |b| serial = store.insert(key, b));
        serial
    }

    fn show(store: &mut PreparedStore, key: Key<'_>) -> Option<String> {
        store.with_key(key, |e| {
            e.map(|(text, st)| {
                let mut s = String::from_utf8_lossy(text).into_owned();
                for x in st {
                    s += &format!(" {:?}{:?}", x.verb, x.tables);
                }
                s
            })
        })
    }

    #[test]
    fn keeps_the_classification_and_evicts_the_least_recently_used() {
        let mut s = PreparedStore::new();
        keep(&mut s, Key::Name(b"a"), "SELECT * FROM t JOIN u ON true").unwrap();
        assert_eq!(
            show(&mut s, Key::Name(b"a")).unwrap(),
            "SELECT * FROM t JOIN u ON true Select[\"t\", \"u\"]"
        );
        for i in 0..MAX_PREPARED as u32 {
            // `a` is used between inserts: the others go first.
            keep(&mut s, Key::Id(i), "VACUUM x").unwrap();
            assert!(show(&mut s, Key::Name(b"a")).is_some());
        }
        assert_eq!(s.len(), MAX_PREPARED);
        assert!(show(&mut s, Key::Id(0)).is_none());
        assert!(show(&mut s, Key::Id(MAX_PREPARED as u32 - 1)).is_some());
        // Replacing a name keeps one entry; staged entries take the server's id.
        keep(&mut s, Key::Name(b"a"), "DROP TABLE z").unwrap();
        assert_eq!(
            show(&mut s, Key::Name(b"a")).unwrap(),
            "DROP TABLE z Drop[\"z\"]"
        );
        keep(&mut s, Key::Staged(7), "DELETE FROM q").unwrap();
        assert!(s.rekey(Key::Staged(7), 9));
        assert_eq!(
            show(&mut s, Key::Id(9)).unwrap(),
            "DELETE FROM q Delete[\"q\"]"
        );
        assert!(s.bytes() <= MAX_PREPARED_BYTES);
        // Too large to keep: the old entry of that name is gone too.
        let mut big = String::from("SELECT * FROM t0");
        for i in 1..1000 {
            big += &format!(", {}{i}", "x".repeat(200));
        }
        assert!(keep(&mut s, Key::Name(b"a"), &big).is_none());
        assert!(show(&mut s, Key::Name(b"a")).is_none());
    }
}
