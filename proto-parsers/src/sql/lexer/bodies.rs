//! Runs the lexer skips through in one go where a chunk holds them: quoted strings and
//! names, block comments, dollar-quoted bodies (and a `$` that opens none).

use super::{Lexer, St, Text, Tok, Tokens};

impl Lexer {
    /// A quoted run opened at `at`: handed out whole if it ends in this chunk, else left
    /// to the state machine (which keeps a name's first bytes) from the byte after the
    /// quote.
    pub(super) fn quoted<T: Tokens>(
        &mut self,
        chunk: &[u8],
        at: usize,
        q: u8,
        bs: bool,
        keep: bool,
        out: &mut T,
    ) -> usize {
        let mut j = at + 1;
        loop {
            let rest = chunk.get(j..).unwrap_or_default();
            let Some(p) = rest.iter().position(|&c| c == q || (bs && c == b'\\')) else {
                break;
            };
            let k = j + p;
            if chunk.get(k) != Some(&q) {
                // A backslash: the next byte is escaped.
                if k + 1 < chunk.len() {
                    j = k + 2;
                    continue;
                }
                break;
            }
            match chunk.get(k + 1) {
                Some(&c) if c == q => j = k + 2,
                Some(_) => {
                    let tok = if keep { Tok::Quoted(q) } else { Tok::Literal };
                    let raw = if keep {
                        chunk.get(at + 1..k).unwrap_or_default()
                    } else {
                        &[]
                    };
                    let text = Text {
                        raw,
                        len: raw.len() as u64,
                        utf8: true,
                    };
                    out.token(tok, text, chunk, k + 1);
                    return k + 1;
                }
                None => break,
            }
        }
        self.start_token();
        self.st = St::Quote { q, bs, keep };
        at + 1
    }

    /// `$` then tag characters then something else: the `$` is punctuation and the
    /// characters a word (they are all word characters), which goes on from here.
    pub(super) fn not_a_tag<T: Tokens>(&mut self, out: &mut T, chunk: &[u8], at: usize) {
        self.st = St::Normal;
        self.emit(Tok::Punct(b'$'), out, chunk, at);
        // Dropping the `$` keeps the buffer an exact prefix of the word (and short of it
        // if the tag characters overflowed it, so it stops growing).
        if !self.buf.is_empty() {
            self.buf.remove(0);
        }
        self.len = self.len.saturating_sub(1);
        self.st = St::Word;
    }

    pub(super) fn block(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        mut depth: u32,
        mut prev: u8,
    ) -> usize {
        // PostgreSQL nests block comments; MySQL does not. Getting this wrong either way
        // lets code hide in what the other side thinks is a comment.
        let nests = !self.mysql;
        while let Some(&b) = chunk.get(i) {
            match prev {
                b'*' => {
                    prev = 0;
                    if b == b'/' {
                        i += 1;
                        depth -= 1;
                        if depth == 0 {
                            self.st = St::Normal;
                            return i;
                        }
                    }
                }
                b'/' => {
                    prev = 0;
                    if b == b'*' {
                        i += 1;
                        depth = depth.saturating_add(1);
                    }
                }
                _ => {
                    let rest = chunk.get(i..).unwrap_or_default();
                    match rest.iter().position(|&c| c == b'*' || (nests && c == b'/')) {
                        Some(n) => {
                            i += n + 1;
                            prev = rest.get(n).copied().unwrap_or(0);
                        }
                        None => i = chunk.len(),
                    }
                }
            }
        }
        self.st = St::Block { depth, prev };
        i
    }

    pub(super) fn dollar_body<T: Tokens>(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        mut matched: u32,
        out: &mut T,
    ) -> usize {
        if self.tag_overflow && self.len > self.buf.len() as u64 {
            // The tag is not known whole: nothing can end this body.
            return chunk.len();
        }
        let tag_len = self.buf.len();
        while let Some(&b) = chunk.get(i) {
            if matched == 0 {
                let rest = chunk.get(i..).unwrap_or_default();
                match rest.iter().position(|&c| c == b'$') {
                    Some(n) => i += n,
                    None => {
                        i = chunk.len();
                        break;
                    }
                }
                matched = 1;
                i += 1;
            } else if self.buf.get(matched as usize) == Some(&b) {
                matched += 1;
                i += 1;
            } else {
                // The tag's inner characters are never `$`: a new match can start only
                // at this byte.
                matched = u32::from(b == b'$');
                i += 1;
            }
            if matched as usize == tag_len {
                self.st = St::Normal;
                self.emit(Tok::Literal, out, chunk, i);
                return i;
            }
        }
        self.st = St::DollarBody { matched };
        i
    }
}
