//! The SQL tokenizer: just enough lexing to tell code from strings, comments and quoted
//! names, in the two dialects' own rules (where they differ, a bypass hides).
//!
//! It is pushed: a text arrives in chunks of any size and the lexer keeps, between chunks,
//! only the state it is in (inside a string, a quoted name, a dollar quote, a block comment
//! and its PostgreSQL nesting depth, a MySQL executable comment, halfway through a `--`) and
//! the first bytes of the token it is reading. A token is handed to the grammar as soon as
//! its end is known, before the lexer reads on, so the grammar can switch the lexer into the
//! one mode that depends on it (a `[bracketed]` name, read raw). Strings, comments and
//! quoted bodies of any length cost nothing but the bytes scanned.

mod bodies;

use crate::facts::SqlDialect;

/// Bytes kept of a word or quoted name: enough for the grammar's longest use (a name part
/// is normalised up to `MAX_NAME` bytes, and a quoted part collapses at most two bytes into
/// one), and the longest PostgreSQL dollar-quote tag it can match.
pub(super) const TOKEN_CAP: usize = 2 * super::MAX_NAME + 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// A bare word: keyword, identifier or number (`[A-Za-z0-9_$\x80-\xff]+`).
    Word,
    /// A quoted identifier (or, in MySQL, a double-quoted string) whose content is the
    /// token's text; the byte is the quote (`[` for a bracketed name).
    Quoted(u8),
    /// A string literal (any flavour), a dollar-quoted body or a parameter (`$1`, `?`).
    Literal,
    Punct(u8),
    Semi,
    End,
}

/// What a token holds of its bytes: the first [`TOKEN_CAP`] (the content between the
/// quotes for a quoted name), its whole length, and, when `raw` is only a prefix
/// (`len` is larger), whether the whole is valid UTF-8.
#[derive(Clone, Copy, Debug)]
pub(super) struct Text<'a> {
    pub raw: &'a [u8],
    pub len: u64,
    pub utf8: bool,
}

impl Text<'_> {
    pub const EMPTY: Text<'static> = Text {
        raw: &[],
        len: 0,
        utf8: true,
    };
}

/// Receives tokens as the lexer finds them.
pub(super) trait Tokens {
    /// One token. `at` is the offset in `chunk` just past the token's last byte when that
    /// byte is in this chunk (what a `;` needs to cut statement texts). Returns true when
    /// the bytes after this token are a `[bracketed]` name, to be read raw up to `]`.
    fn token(&mut self, tok: Tok, text: Text<'_>, chunk: &[u8], at: usize) -> bool;
}

/// Incremental UTF-8 validation of one token (the rules of `std::str::from_utf8`).
#[derive(Clone, Copy, Debug, Default)]
struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
    bad: bool,
}

impl Utf8 {
    fn step(&mut self, b: u8) {
        if self.bad {
            return;
        }
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                self.bad = true;
                return;
            }
            self.need -= 1;
            self.lo = 0x80;
            self.hi = 0xbf;
            return;
        }
        let (need, lo, hi) = match b {
            0x00..=0x7f => return,
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => {
                self.bad = true;
                return;
            }
        };
        self.need = need;
        self.lo = lo;
        self.hi = hi;
    }

    fn ok(self) -> bool {
        !self.bad && self.need == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Between tokens.
    Normal,
    Word,
    /// Inside a quoted run: its quote, whether `\x` escapes, whether the content is kept
    /// (a name) or not (a string literal).
    Quote {
        q: u8,
        bs: bool,
        keep: bool,
    },
    /// After a backslash inside a quoted run: the next byte is escaped.
    QuoteEsc {
        q: u8,
        bs: bool,
        keep: bool,
    },
    /// After a quote inside a quoted run: doubled if the next byte is the quote again,
    /// else the run ended.
    QuoteClose {
        q: u8,
        bs: bool,
        keep: bool,
    },
    /// A comment to the end of the line.
    Line,
    /// A block comment at nesting `depth`, after a `*` or a `/` that may pair with the
    /// next byte (0 otherwise).
    Block {
        depth: u32,
        prev: u8,
    },
    /// `-`: a comment if another `-` follows.
    Dash,
    /// MySQL `--`: a comment if whitespace (or the end) follows.
    DashDash,
    /// `/`: a comment if `*` follows.
    Slash,
    /// MySQL `/*`: executable if `!` (or `M!`) follows.
    SlashStar,
    SlashStarM,
    /// After `/*!`: the optional version number.
    ExecDigits(u8),
    /// `*` inside an executable comment: its end if `/` follows.
    ExecStar,
    /// PostgreSQL `$`: a dollar quote, a parameter or punctuation.
    Dollar,
    /// `$` and tag characters so far (in the token buffer).
    DollarTag,
    /// Inside a dollar-quoted body: how much of the closing tag was just seen.
    DollarBody {
        matched: u32,
    },
    /// `$` and digits.
    DollarParam,
    /// A `[bracketed]` name, raw up to `]`.
    Bracket,
}

pub(super) struct Lexer {
    mysql: bool,
    /// Inside a MySQL `/*! ... */` executable comment: its content is code and its `*/` is
    /// skipped.
    in_exec: bool,
    st: St,
    buf: Vec<u8>,
    len: u64,
    utf8: Utf8,
    /// A dollar-quote tag was longer than the token buffer: its end cannot be found, the
    /// rest of the text is read as its body.
    pub tag_overflow: bool,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_tag(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl Lexer {
    pub fn new() -> Self {
        Lexer {
            mysql: false,
            in_exec: false,
            st: St::Normal,
            buf: Vec::with_capacity(64),
            len: 0,
            utf8: Utf8::default(),
            tag_overflow: false,
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Starts a new text.
    pub fn reset(&mut self, dialect: SqlDialect) {
        self.mysql = dialect == SqlDialect::Mysql;
        self.in_exec = false;
        self.st = St::Normal;
        self.tag_overflow = false;
        self.start_token();
    }

    fn start_token(&mut self) {
        self.buf.clear();
        self.len = 0;
        self.utf8 = Utf8::default();
    }

    /// Adds bytes to the token: the first TOKEN_CAP are kept (the buffer is always an
    /// exact prefix), all are counted and validated.
    fn push(&mut self, s: &[u8]) {
        if self.len == self.buf.len() as u64 {
            let room = TOKEN_CAP.saturating_sub(self.buf.len());
            self.buf
                .extend_from_slice(s.get(..room.min(s.len())).unwrap_or_default());
        }
        self.len = self.len.saturating_add(s.len() as u64);
        if self.utf8.bad || (self.utf8.need == 0 && s.is_ascii()) {
            return;
        }
        for &b in s {
            self.utf8.step(b);
        }
    }

    fn text(&self) -> Text<'_> {
        Text {
            raw: &self.buf,
            len: self.len,
            utf8: self.utf8.ok(),
        }
    }

    fn emit<T: Tokens>(&mut self, tok: Tok, out: &mut T, chunk: &[u8], at: usize) {
        let text = match tok {
            Tok::Word | Tok::Quoted(_) => self.text(),
            _ => Text::EMPTY,
        };
        if out.token(tok, text, chunk, at) && tok == Tok::Punct(b'[') {
            self.start_token();
            self.st = St::Bracket;
        }
    }

    /// Reads `chunk`, the next bytes of the text.
    pub fn run<T: Tokens>(&mut self, chunk: &[u8], out: &mut T) {
        let mut i = 0usize;
        while let Some(&b) = chunk.get(i) {
            match self.st {
                St::Normal => {
                    i = self.normal(chunk, i, out);
                    if self.st != St::Normal {
                        continue;
                    }
                    let Some(&b) = chunk.get(i) else { break };
                    i += 1;
                    match b {
                        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {}
                        b'-' => self.st = St::Dash,
                        b'#' if self.mysql => self.st = St::Line,
                        b'/' => self.st = St::Slash,
                        b'*' if self.in_exec => self.st = St::ExecStar,
                        b';' => self.emit(Tok::Semi, out, chunk, i),
                        b'\'' => {
                            self.start_token();
                            self.st = St::Quote {
                                q: b,
                                bs: self.mysql,
                                keep: false,
                            };
                        }
                        b'"' | b'`' => {
                            // MySQL's default sql_mode makes `"..."` a string with
                            // backslash escapes; as a name it is still reported
                            // (ANSI_QUOTES servers read it so).
                            self.start_token();
                            self.st = St::Quote {
                                q: b,
                                bs: self.mysql && b == b'"',
                                keep: true,
                            };
                        }
                        b'$' if !self.mysql => {
                            self.start_token();
                            self.push(b"$");
                            self.st = St::Dollar;
                        }
                        b'?' if self.mysql => self.emit(Tok::Literal, out, chunk, i),
                        _ if is_word_start(b) || (self.mysql && b == b'$') => {
                            self.start_token();
                            self.push(&[b]);
                            self.st = St::Word;
                        }
                        _ => self.emit(Tok::Punct(b), out, chunk, i),
                    }
                }
                St::Word => {
                    let rest = chunk.get(i..).unwrap_or_default();
                    let n = rest.iter().position(|&c| !is_word(c)).unwrap_or(rest.len());
                    self.push(rest.get(..n).unwrap_or_default());
                    i += n;
                    if let Some(&c) = chunk.get(i) {
                        // PostgreSQL's E'...' strings take backslash escapes.
                        if !self.mysql
                            && c == b'\''
                            && self.len == 1
                            && matches!(self.buf.first(), Some(b'E' | b'e'))
                        {
                            i += 1;
                            self.start_token();
                            self.st = St::Quote {
                                q: c,
                                bs: true,
                                keep: false,
                            };
                        } else {
                            self.st = St::Normal;
                            self.emit(Tok::Word, out, chunk, i);
                        }
                    }
                }
                St::Quote { q, bs, keep } => {
                    let rest = chunk.get(i..).unwrap_or_default();
                    let n = rest
                        .iter()
                        .position(|&c| c == q || (bs && c == b'\\'))
                        .unwrap_or(rest.len());
                    if keep {
                        self.push(rest.get(..n).unwrap_or_default());
                    }
                    i += n;
                    match chunk.get(i) {
                        Some(&c) if c == q => {
                            i += 1;
                            self.st = St::QuoteClose { q, bs, keep };
                        }
                        Some(&c) => {
                            if keep {
                                self.push(&[c]);
                            }
                            i += 1;
                            self.st = St::QuoteEsc { q, bs, keep };
                        }
                        None => {}
                    }
                }
                St::QuoteEsc { q, bs, keep } => {
                    if keep {
                        self.push(&[b]);
                    }
                    i += 1;
                    self.st = St::Quote { q, bs, keep };
                }
                St::QuoteClose { q, bs, keep } => {
                    if b == q {
                        if keep {
                            self.push(&[q, q]);
                        }
                        i += 1;
                        self.st = St::Quote { q, bs, keep };
                    } else {
                        self.st = St::Normal;
                        let tok = if keep { Tok::Quoted(q) } else { Tok::Literal };
                        self.emit(tok, out, chunk, i);
                    }
                }
                St::Line => match chunk
                    .get(i..)
                    .and_then(|r| r.iter().position(|&c| c == b'\n'))
                {
                    Some(n) => {
                        i += n + 1;
                        self.st = St::Normal;
                    }
                    None => i = chunk.len(),
                },
                St::Block { depth, prev } => {
                    i = self.block(chunk, i, depth, prev);
                }
                St::Dash => {
                    if b == b'-' {
                        i += 1;
                        self.st = if self.mysql { St::DashDash } else { St::Line };
                    } else {
                        self.st = St::Normal;
                        self.emit(Tok::Punct(b'-'), out, chunk, i);
                    }
                }
                St::DashDash => {
                    // MySQL needs whitespace (or the end) after `--`: `1--1` is arithmetic.
                    if b <= b' ' {
                        i += 1;
                        self.st = if b == b'\n' { St::Normal } else { St::Line };
                    } else {
                        // The first `-` is punctuation; the second starts over.
                        self.st = St::Dash;
                        self.emit(Tok::Punct(b'-'), out, chunk, i);
                    }
                }
                St::Slash => {
                    if b == b'*' {
                        i += 1;
                        self.st = if self.mysql && !self.in_exec {
                            St::SlashStar
                        } else {
                            St::Block { depth: 1, prev: 0 }
                        };
                    } else {
                        self.st = St::Normal;
                        self.emit(Tok::Punct(b'/'), out, chunk, i);
                    }
                }
                St::SlashStar => match b {
                    b'!' => {
                        i += 1;
                        self.in_exec = true;
                        self.st = St::ExecDigits(0);
                    }
                    // MariaDB's own executable comments.
                    b'M' => {
                        i += 1;
                        self.st = St::SlashStarM;
                    }
                    _ => self.st = St::Block { depth: 1, prev: 0 },
                },
                St::SlashStarM => {
                    if b == b'!' {
                        i += 1;
                        self.in_exec = true;
                        self.st = St::ExecDigits(0);
                    } else {
                        self.st = St::Block { depth: 1, prev: 0 };
                    }
                }
                St::ExecDigits(n) => {
                    // An optional version number (`/*!40101 ...`): servers older than it
                    // ignore the content, newer ones run it; we read it as code either way
                    // (the safe side).
                    if n < 6 && b.is_ascii_digit() {
                        i += 1;
                        self.st = St::ExecDigits(n + 1);
                    } else {
                        self.st = St::Normal;
                    }
                }
                St::ExecStar => {
                    if b == b'/' {
                        i += 1;
                        self.in_exec = false;
                        self.st = St::Normal;
                    } else {
                        self.st = St::Normal;
                        self.emit(Tok::Punct(b'*'), out, chunk, i);
                    }
                }
                St::Dollar => {
                    if b == b'$' {
                        i += 1;
                        self.push(b"$");
                        self.st = St::DollarBody { matched: 0 };
                    } else if is_tag(b) && !b.is_ascii_digit() {
                        i += 1;
                        self.push(&[b]);
                        self.st = St::DollarTag;
                    } else if b.is_ascii_digit() {
                        i += 1;
                        self.st = St::DollarParam;
                    } else {
                        self.st = St::Normal;
                        self.emit(Tok::Punct(b'$'), out, chunk, i);
                    }
                }
                St::DollarTag => {
                    let rest = chunk.get(i..).unwrap_or_default();
                    let n = rest.iter().position(|&c| !is_tag(c)).unwrap_or(rest.len());
                    self.push(rest.get(..n).unwrap_or_default());
                    i += n;
                    match chunk.get(i) {
                        Some(b'$') => {
                            i += 1;
                            self.push(b"$");
                            if self.len > self.buf.len() as u64 {
                                self.tag_overflow = true;
                            }
                            self.st = St::DollarBody { matched: 0 };
                        }
                        Some(_) => {
                            // Not a tag: `$` is punctuation and what followed it a word.
                            self.not_a_tag(out, chunk, i);
                        }
                        None => {}
                    }
                }
                St::DollarBody { matched } => {
                    i = self.dollar_body(chunk, i, matched, out);
                }
                St::DollarParam => {
                    let rest = chunk.get(i..).unwrap_or_default();
                    let n = rest
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    i += n;
                    if i < chunk.len() {
                        self.st = St::Normal;
                        self.emit(Tok::Literal, out, chunk, i);
                    }
                }
                St::Bracket => {
                    let rest = chunk.get(i..).unwrap_or_default();
                    match rest.iter().position(|&c| c == b']') {
                        Some(n) => {
                            self.push(rest.get(..n).unwrap_or_default());
                            i += n + 1;
                            self.st = St::Normal;
                            self.emit(Tok::Quoted(b'['), out, chunk, i);
                        }
                        None => {
                            self.push(rest);
                            i = chunk.len();
                        }
                    }
                }
            }
        }
    }

    /// Between tokens, the common case read in one tight loop: whitespace, words, quoted
    /// runs and punctuation whose end is in this chunk are handed out straight from it
    /// (no copy). Returns where it stopped: the chunk's end, a byte that needs the general
    /// state machine (comments, `$`, ...), or a token that goes on past the chunk (the
    /// state then says which).
    fn normal<T: Tokens>(&mut self, chunk: &[u8], mut i: usize, out: &mut T) -> usize {
        // Tests in order of frequency, as conditional branches: a jump table on the byte
        // would be an indirect branch that mispredicts at nearly every token.
        while let Some(&b) = chunk.get(i) {
            if b == b' ' {
                i += 1;
                continue;
            }
            if is_word_start(b) || (self.mysql && b == b'$') {
                let rest = chunk.get(i + 1..).unwrap_or_default();
                let end = i + 1 + rest.iter().position(|&c| !is_word(c)).unwrap_or(rest.len());
                let Some(&c) = chunk.get(end) else {
                    // It may go on in the next chunk.
                    self.start_token();
                    self.push(chunk.get(i..).unwrap_or_default());
                    self.st = St::Word;
                    return chunk.len();
                };
                if c == b'\'' && !self.mysql && end == i + 1 && matches!(b, b'E' | b'e') {
                    // PostgreSQL's E'...' strings take backslash escapes.
                    i = self.quoted(chunk, end, c, true, false, out);
                } else {
                    let raw = chunk.get(i..end).unwrap_or_default();
                    let text = Text {
                        raw,
                        len: raw.len() as u64,
                        utf8: true,
                    };
                    out.token(Tok::Word, text, chunk, end);
                    i = end;
                }
            } else if matches!(b, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                i += 1;
                continue;
            } else if b == b';' {
                i += 1;
                self.emit(Tok::Semi, out, chunk, i);
            } else if b == b'\'' {
                i = self.quoted(chunk, i, b, self.mysql, false, out);
            } else if b == b'"' || b == b'`' {
                i = self.quoted(chunk, i, b, self.mysql && b == b'"', true, out);
            } else if b == b'-'
                || b == b'/'
                || (b == b'#' && self.mysql)
                || (b == b'*' && self.in_exec)
                || (b == b'$' && !self.mysql)
                || (b == b'?' && self.mysql)
            {
                // For the general state machine.
                return i;
            } else {
                i += 1;
                self.emit(Tok::Punct(b), out, chunk, i);
            }
            if self.st != St::Normal {
                break;
            }
        }
        i
    }

    /// The text ended: the token being read ends with it (unterminated strings, comments
    /// and quotes end there; nothing in them is code).
    pub fn finish<T: Tokens>(&mut self, out: &mut T) {
        let st = std::mem::replace(&mut self.st, St::Normal);
        let tok = match st {
            St::Normal
            | St::Line
            | St::Block { .. }
            | St::DashDash
            | St::SlashStar
            | St::SlashStarM
            | St::ExecDigits(_) => None,
            St::Dash => Some(Tok::Punct(b'-')),
            St::Slash => Some(Tok::Punct(b'/')),
            St::ExecStar => Some(Tok::Punct(b'*')),
            St::Dollar => Some(Tok::Punct(b'$')),
            St::DollarTag => {
                self.not_a_tag(out, &[], 0);
                self.st = St::Normal;
                Some(Tok::Word)
            }
            St::Word => Some(Tok::Word),
            St::Quote { q, keep, .. }
            | St::QuoteEsc { q, keep, .. }
            | St::QuoteClose { q, keep, .. } => {
                Some(if keep { Tok::Quoted(q) } else { Tok::Literal })
            }
            St::DollarBody { .. } | St::DollarParam => Some(Tok::Literal),
            St::Bracket => Some(Tok::Quoted(b'[')),
        };
        if let Some(tok) = tok {
            let text = match tok {
                Tok::Word | Tok::Quoted(_) => self.text(),
                _ => Text::EMPTY,
            };
            // A bracket asked for at the very end reads nothing.
            let _ = out.token(tok, text, &[], 0);
        }
        self.st = St::Normal;
        self.in_exec = false;
    }
}
