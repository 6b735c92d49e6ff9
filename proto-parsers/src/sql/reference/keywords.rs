//! The words the reference scan acts on. They are the grammar's own
//! (`super::super::grammar::keywords`): [`Kw`], the reserved words, the table of how each
//! keyword is spelled and the verbs reported by name define the dialect both classifiers
//! read, and a copy here could only ever agree with them. What the reference checks is the
//! streaming scan. It looks every word up in the spelling table directly, without the
//! grammar's quick reject (`KEYWORD_SHAPES`), so a keyword that the reject loses still
//! shows as a difference.

use crate::sql::grammar::keywords::spelled;
pub(super) use crate::sql::grammar::keywords::{Kw, known_verb, reserved};

/// The keyword `w` spells (any word of 2 to 14 bytes is looked up).
pub(super) fn keyword(w: &[u8]) -> Kw {
    if w.len() > 14 || w.len() < 2 {
        return Kw::Other;
    }
    spelled(w)
}
