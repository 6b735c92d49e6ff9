//! The whole-text tokenizer of the reference classifier (see `super`).

use crate::facts::SqlDialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// A bare word: keyword, identifier or number (`[A-Za-z0-9_$\x80-\xff]+`).
    Word,
    /// A quoted identifier (or, in MySQL, a double-quoted string); `start..end` is the
    /// content between the quotes, the byte is the quote.
    Quoted(u8),
    /// A string literal (any flavour), a dollar-quoted body or a parameter (`$1`, `?`).
    Literal,
    Punct(u8),
    Semi,
    End,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Copyable so the classifier can peek by cloning.
#[derive(Clone, Copy)]
pub(super) struct Lexer<'t> {
    s: &'t [u8],
    pos: usize,
    mysql: bool,
    /// Inside a MySQL `/*! ... */` executable comment: its content is code and its `*/` is
    /// skipped.
    in_exec: bool,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl<'t> Lexer<'t> {
    pub fn new(dialect: SqlDialect, s: &'t [u8]) -> Self {
        Lexer {
            s,
            pos: 0,
            mysql: dialect == SqlDialect::Mysql,
            in_exec: false,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    pub fn text(&self) -> &'t [u8] {
        self.s
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) {
        loop {
            let Some(b) = self.at(self.pos) else { return };
            let next = self.at(self.pos + 1);
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                // MySQL needs whitespace (or the end) after `--`: `1--1` is arithmetic.
                b'-' if next == Some(b'-')
                    && (!self.mysql || self.at(self.pos + 2).is_none_or(|c| c <= b' ')) =>
                {
                    self.skip_line();
                }
                b'#' if self.mysql => self.skip_line(),
                b'/' if next == Some(b'*') => {
                    let third = self.at(self.pos + 2);
                    let fourth = self.at(self.pos + 3);
                    if self.mysql && !self.in_exec && third == Some(b'!') {
                        self.enter_exec(3);
                    } else if self.mysql
                        && !self.in_exec
                        && third == Some(b'M')
                        && fourth == Some(b'!')
                    {
                        // MariaDB's own executable comments.
                        self.enter_exec(4);
                    } else {
                        self.skip_block_comment();
                    }
                }
                b'*' if self.in_exec && next == Some(b'/') => {
                    self.in_exec = false;
                    self.pos += 2;
                }
                _ => return,
            }
        }
    }

    fn enter_exec(&mut self, marker: usize) {
        self.in_exec = true;
        self.pos += marker;
        // An optional version number (`/*!40101 ...`): servers older than it ignore the
        // content, newer ones run it; we read it as code either way (the safe side).
        let mut digits = 0;
        while digits < 6 && self.at(self.pos).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            digits += 1;
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.at(self.pos) {
            self.pos += 1;
            if b == b'\n' {
                return;
            }
        }
    }

    fn skip_block_comment(&mut self) {
        // PostgreSQL nests block comments; MySQL does not. Getting this wrong either way
        // lets code hide in what the other side thinks is a comment.
        let mut depth = 1u32;
        self.pos += 2;
        while let Some(b) = self.at(self.pos) {
            let next = self.at(self.pos + 1);
            if b == b'*' && next == Some(b'/') {
                self.pos += 2;
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else if !self.mysql && b == b'/' && next == Some(b'*') {
                self.pos += 2;
                depth = depth.saturating_add(1);
            } else {
                self.pos += 1;
            }
        }
    }

    /// Moves past a quoted run opened at `self.pos`; returns the content's end. Doubled
    /// quotes always escape; `backslash` adds `\x` escapes. An unterminated quote runs to
    /// the end of the text (the server rejects it; nothing in it is code).
    fn skip_quoted(&mut self, q: u8, backslash: bool) -> usize {
        self.pos += 1;
        while let Some(b) = self.at(self.pos) {
            if backslash && b == b'\\' {
                self.pos += 2;
            } else if b == q {
                if self.at(self.pos + 1) == Some(q) {
                    self.pos += 2;
                } else {
                    let end = self.pos;
                    self.pos += 1;
                    return end;
                }
            } else {
                self.pos += 1;
            }
        }
        self.pos = self.s.len();
        self.pos
    }

    /// `$tag$` at `self.pos` (PostgreSQL): the tag's length including both `$`.
    fn dollar_tag(&self) -> Option<usize> {
        let mut i = self.pos + 1;
        match self.at(i) {
            Some(b'$') => return Some(2),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {}
            _ => return None,
        }
        while let Some(c) = self.at(i) {
            if c == b'$' {
                return Some(i + 1 - self.pos);
            }
            if !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) {
                return None;
            }
            i += 1;
        }
        None
    }

    pub fn next(&mut self) -> Token {
        self.skip_trivia();
        let start = self.pos;
        let tok = |kind, start, end| Token { kind, start, end };
        let Some(b) = self.at(start) else {
            return tok(Tok::End, start, start);
        };
        match b {
            b';' => {
                self.pos += 1;
                tok(Tok::Semi, start, start + 1)
            }
            b'\'' => {
                let end = self.skip_quoted(b'\'', self.mysql);
                tok(Tok::Literal, start + 1, end)
            }
            b'"' | b'`' => {
                // MySQL's default sql_mode makes `"..."` a string with backslash escapes;
                // as a name it is still reported (ANSI_QUOTES servers read it so).
                let end = self.skip_quoted(b, self.mysql && b == b'"');
                tok(Tok::Quoted(b), start + 1, end)
            }
            b'$' if !self.mysql => {
                if let Some(t) = self.dollar_tag() {
                    let tag = self.s.get(start..start + t).unwrap_or_default();
                    let body = start + t;
                    let close = self
                        .s
                        .get(body..)
                        .and_then(|rest| find(rest, tag))
                        .map(|i| body + i);
                    let end = close.unwrap_or(self.s.len());
                    self.pos = close.map_or(self.s.len(), |c| c + t);
                    tok(Tok::Literal, body, end)
                } else if self.at(start + 1).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                    while self.at(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    tok(Tok::Literal, start, self.pos)
                } else {
                    self.pos += 1;
                    tok(Tok::Punct(b'$'), start, start + 1)
                }
            }
            b'?' if self.mysql => {
                self.pos += 1;
                tok(Tok::Literal, start, start + 1)
            }
            _ if is_word_start(b) || (self.mysql && b == b'$') => {
                self.pos += 1;
                while self.at(self.pos).is_some_and(is_word) {
                    self.pos += 1;
                }
                // PostgreSQL's E'...' strings take backslash escapes.
                if !self.mysql
                    && self.pos == start + 1
                    && (b == b'E' || b == b'e')
                    && self.at(self.pos) == Some(b'\'')
                {
                    let body = self.pos + 1;
                    let end = self.skip_quoted(b'\'', true);
                    return tok(Tok::Literal, body, end);
                }
                tok(Tok::Word, start, self.pos)
            }
            _ => {
                self.pos += 1;
                tok(Tok::Punct(b), start, start + 1)
            }
        }
    }

    /// Reads a `[bracketed]` name whose `[` was just returned as punctuation (SQL Server
    /// style, accepted in name position only). Returns the content range.
    pub fn bracketed(&mut self) -> (usize, usize) {
        let start = self.pos;
        while let Some(b) = self.at(self.pos) {
            if b == b']' {
                let end = self.pos;
                self.pos += 1;
                return (start, end);
            }
            self.pos += 1;
        }
        (start, self.s.len())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
