//! The words the scan acts on ([`Kw`]), how a word is recognised as one, and the classes
//! of them the grammar asks about (reserved, starting a query, ending a table list). The
//! reference classifier (`super::super::reference`, tests only) reads the same words and
//! classes: they define the dialect both classify, and are kept once, here.

use crate::facts::SqlVerb;
use crate::sql::lexer::Text;

/// Words the scan acts on. Everything else is `Other` (a name, a column, a function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::sql) enum Kw {
    Other,
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Create,
    Alter,
    Drop,
    Truncate,
    Grant,
    Revoke,
    Copy,
    Begin,
    Start,
    Commit,
    End,
    Rollback,
    Abort,
    Set,
    Show,
    Use,
    Call,
    Explain,
    Describe,
    With,
    Values,
    Table,
    Tables,
    Replace,
    Rename,
    Lock,
    Prepare,
    Load,
    From,
    Join,
    StraightJoin,
    Into,
    Using,
    On,
    As,
    To,
    Like,
    References,
    View,
    Index,
    Trigger,
    Recursive,
    Not,
    Materialized,
    // Table-position modifiers, skipped.
    Only,
    Lateral,
    If,
    Exists,
    Temp,
    Ignore,
    LowPriority,
    // Words that end a FROM list or cancel an expected name.
    Where,
    Group,
    Having,
    Order,
    Limit,
    Window,
    Union,
    Intersect,
    Except,
    Returning,
    Offset,
    Fetch,
    For,
    Outfile,
    Database,
    Schema,
    Function,
    Procedure,
    ExplainOpt,
}

/// Every word [`keyword`] knows, for its quick reject.
const KEYWORDS: &[&[u8]] = &[
    b"select",
    b"insert",
    b"update",
    b"delete",
    b"merge",
    b"create",
    b"alter",
    b"drop",
    b"truncate",
    b"grant",
    b"revoke",
    b"copy",
    b"begin",
    b"start",
    b"commit",
    b"end",
    b"rollback",
    b"abort",
    b"set",
    b"show",
    b"use",
    b"call",
    b"explain",
    b"describe",
    b"desc",
    b"with",
    b"values",
    b"table",
    b"tables",
    b"replace",
    b"rename",
    b"lock",
    b"prepare",
    b"load",
    b"from",
    b"join",
    b"straight_join",
    b"into",
    b"using",
    b"on",
    b"as",
    b"to",
    b"like",
    b"references",
    b"view",
    b"index",
    b"trigger",
    b"recursive",
    b"not",
    b"materialized",
    b"only",
    b"lateral",
    b"if",
    b"exists",
    b"temp",
    b"temporary",
    b"unlogged",
    b"ignore",
    b"low_priority",
    b"delayed",
    b"high_priority",
    b"quick",
    b"where",
    b"group",
    b"having",
    b"order",
    b"limit",
    b"window",
    b"union",
    b"intersect",
    b"except",
    b"returning",
    b"offset",
    b"fetch",
    b"for",
    b"outfile",
    b"dumpfile",
    b"database",
    b"schema",
    b"function",
    b"procedure",
    b"analyze",
    b"analyse",
    b"verbose",
    b"extended",
    b"partitions",
    b"format",
];

/// Per first letter, a bit per length that some keyword has: most words are names, and
/// one lookup here tells them from keywords.
const KEYWORD_SHAPES: [u16; 26] = keyword_shapes();

// Evaluated at compile time: an index out of range would fail the build, not a packet.
#[allow(clippy::indexing_slicing)]
const fn keyword_shapes() -> [u16; 26] {
    let mut t = [0u16; 26];
    let mut i = 0;
    while i < KEYWORDS.len() {
        let w = KEYWORDS[i];
        t[(w[0] - b'a') as usize] |= 1 << w.len();
        i += 1;
    }
    t
}

pub(super) fn keyword(t: Text<'_>) -> Kw {
    let w = t.raw;
    if t.len > 14 || t.len < 2 || w.len() as u64 != t.len {
        return Kw::Other;
    }
    let first = w.first().map_or(0, u8::to_ascii_lowercase);
    let shapes = first
        .checked_sub(b'a')
        .and_then(|f| KEYWORD_SHAPES.get(usize::from(f)))
        .copied()
        .unwrap_or(0);
    if shapes & (1 << t.len) == 0 {
        return Kw::Other;
    }
    spelled(w)
}

/// The keyword `w` spells, in any case (at most 14 bytes: longer is `Kw::Other`). The
/// table behind [`keyword`], without its quick reject.
#[inline]
pub(in crate::sql) fn spelled(w: &[u8]) -> Kw {
    let mut buf = [0u8; 14];
    let n = w.len();
    for (d, s) in buf.iter_mut().zip(w) {
        *d = s.to_ascii_lowercase();
    }
    match buf.get(..n).unwrap_or_default() {
        b"select" => Kw::Select,
        b"insert" => Kw::Insert,
        b"update" => Kw::Update,
        b"delete" => Kw::Delete,
        b"merge" => Kw::Merge,
        b"create" => Kw::Create,
        b"alter" => Kw::Alter,
        b"drop" => Kw::Drop,
        b"truncate" => Kw::Truncate,
        b"grant" => Kw::Grant,
        b"revoke" => Kw::Revoke,
        b"copy" => Kw::Copy,
        b"begin" => Kw::Begin,
        b"start" => Kw::Start,
        b"commit" => Kw::Commit,
        b"end" => Kw::End,
        b"rollback" => Kw::Rollback,
        b"abort" => Kw::Abort,
        b"set" => Kw::Set,
        b"show" => Kw::Show,
        b"use" => Kw::Use,
        b"call" => Kw::Call,
        b"explain" => Kw::Explain,
        b"describe" | b"desc" => Kw::Describe,
        b"with" => Kw::With,
        b"values" => Kw::Values,
        b"table" => Kw::Table,
        b"tables" => Kw::Tables,
        b"replace" => Kw::Replace,
        b"rename" => Kw::Rename,
        b"lock" => Kw::Lock,
        b"prepare" => Kw::Prepare,
        b"load" => Kw::Load,
        b"from" => Kw::From,
        b"join" => Kw::Join,
        b"straight_join" => Kw::StraightJoin,
        b"into" => Kw::Into,
        b"using" => Kw::Using,
        b"on" => Kw::On,
        b"as" => Kw::As,
        b"to" => Kw::To,
        b"like" => Kw::Like,
        b"references" => Kw::References,
        b"view" => Kw::View,
        b"index" => Kw::Index,
        b"trigger" => Kw::Trigger,
        b"recursive" => Kw::Recursive,
        b"not" => Kw::Not,
        b"materialized" => Kw::Materialized,
        b"only" => Kw::Only,
        b"lateral" => Kw::Lateral,
        b"if" => Kw::If,
        b"exists" => Kw::Exists,
        b"temp" | b"temporary" | b"unlogged" => Kw::Temp,
        b"ignore" => Kw::Ignore,
        b"low_priority" | b"delayed" | b"high_priority" | b"quick" => Kw::LowPriority,
        b"where" => Kw::Where,
        b"group" => Kw::Group,
        b"having" => Kw::Having,
        b"order" => Kw::Order,
        b"limit" => Kw::Limit,
        b"window" => Kw::Window,
        b"union" => Kw::Union,
        b"intersect" => Kw::Intersect,
        b"except" => Kw::Except,
        b"returning" => Kw::Returning,
        b"offset" => Kw::Offset,
        b"fetch" => Kw::Fetch,
        b"for" => Kw::For,
        b"outfile" | b"dumpfile" => Kw::Outfile,
        b"database" => Kw::Database,
        b"schema" => Kw::Schema,
        b"function" => Kw::Function,
        b"procedure" => Kw::Procedure,
        b"analyze" | b"analyse" | b"verbose" | b"extended" | b"partitions" | b"format" => {
            Kw::ExplainOpt
        }
        _ => Kw::Other,
    }
}

/// The verb a statement's first keyword names, when it is one reported by name (`None`:
/// the verb is the first word itself, upper-cased).
#[inline]
pub(in crate::sql) fn known_verb(k: Kw) -> Option<SqlVerb<'static>> {
    Some(match k {
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
        _ => return None,
    })
}

/// Words that start a (sub)statement: after `(`, they make the parenthesis a query.
pub(in crate::sql) fn starts_query(k: Kw) -> bool {
    matches!(k, Kw::Select | Kw::With | Kw::Values | Kw::Table)
}

/// Words that cannot be a bare table name (reserved in both dialects): seen where a name
/// is expected, the expectation ends and the word is read as a keyword.
pub(in crate::sql) fn reserved(k: Kw) -> bool {
    matches!(
        k,
        Kw::Select
            | Kw::Insert
            | Kw::Update
            | Kw::Delete
            | Kw::With
            | Kw::Values
            | Kw::Set
            | Kw::From
            | Kw::Join
            | Kw::Into
            | Kw::Using
            | Kw::On
            | Kw::As
            | Kw::Where
            | Kw::Group
            | Kw::Having
            | Kw::Order
            | Kw::Limit
            | Kw::Window
            | Kw::Union
            | Kw::Intersect
            | Kw::Except
            | Kw::Returning
            | Kw::For
            | Kw::Outfile
            | Kw::Database
            | Kw::Schema
            | Kw::Function
            | Kw::Procedure
    )
}

/// Words that end a FROM / UPDATE / USING table list.
pub(in crate::sql) fn ends_list(k: Kw) -> bool {
    matches!(
        k,
        Kw::Select
            | Kw::Set
            | Kw::Values
            | Kw::Where
            | Kw::Group
            | Kw::Having
            | Kw::Order
            | Kw::Limit
            | Kw::Window
            | Kw::Union
            | Kw::Intersect
            | Kw::Except
            | Kw::Returning
            | Kw::Offset
            | Kw::Fetch
            | Kw::For
            | Kw::Into
            | Kw::From
            | Kw::With
    )
}
