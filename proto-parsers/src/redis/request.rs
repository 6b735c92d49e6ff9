//! Client to server: multi-bulk and inline commands, read until their name and first key
//! are known and reported, the rest of their arguments counted through.

use super::keys::KeySpec;
use super::wire::{Body, Line, int, line, multibulk_start, step_body};
use super::{
    MAX_ARGS, MAX_BULK, MAX_HEADER_LINE, MAX_KEY, MAX_NUMBER, RedisParser, keys, push_bounded,
};
use crate::contract::{FactSink, Invalid, ParserAnomaly, Progress};

/// Which argument bytes are kept while counting through a bulk or an inline argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Capture {
    Skip,
    Cmd,
    Key,
    Numkeys,
}

/// Where an inline line's tokenizer is (redis-server's `sdssplitargs`, one byte at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum Tok {
    /// Between arguments, skipping blanks.
    #[default]
    Between,
    /// In an argument, outside quotes.
    Plain,
    /// Inside `"..."`.
    Dq,
    /// After a backslash inside `"..."`.
    DqEsc,
    /// After `\x` inside `"..."`.
    DqHex,
    /// After `\x` and one hex digit inside `"..."`.
    DqHex1(u8),
    /// Inside `'...'`.
    Sq,
    /// After a backslash inside `'...'`.
    SqEsc,
    /// Right after a closing quote: a blank or the end of the line must follow.
    Closed,
}

/// The bytes `isspace` accepts, which separate inline arguments.
const fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

const fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// An inline line the server refuses: an unbalanced quote, or a quote closed in the middle
/// of an argument.
struct Unbalanced;

/// Client-to-server state: the command being read, if any.
#[derive(Debug, Default)]
pub(super) struct ReqState {
    /// In a multi-bulk command.
    pub(super) in_command: bool,
    /// In an inline command line.
    pub(super) in_inline: bool,
    /// Arguments of the multi-bulk command; arguments started so far on an inline line.
    pub(super) argc: u32,
    /// Arguments read so far (index of the next one).
    pub(super) idx: u32,
    pub(super) body: Option<Body>,
    pub(super) capture: Option<Capture>,
    pub(super) key_at: Option<u32>,
    pub(super) numkeys_at: Option<u32>,
    pub(super) subscribe: bool,
    pub(super) emitted: bool,
    pub(super) key_truncated: bool,
    /// Inline tokenizer state.
    pub(super) tok: Tok,
    /// An inline line's CR, held back until the next byte tells whether it ends the line.
    pub(super) cr: bool,
    pub(super) cmd: Vec<u8>,
    pub(super) key: Vec<u8>,
    pub(super) num: Vec<u8>,
}

impl ReqState {
    pub(super) fn reset(&mut self) {
        self.argc = 0;
        self.idx = 0;
        self.body = None;
        self.capture = None;
        self.key_at = None;
        self.numkeys_at = None;
        self.subscribe = false;
        self.emitted = false;
        self.key_truncated = false;
        self.tok = Tok::Between;
        self.cr = false;
        self.cmd.clear();
        self.key.clear();
        self.num.clear();
    }

    fn start(&mut self, argc: u32) {
        self.reset();
        self.in_command = true;
        self.argc = argc;
    }

    fn start_inline(&mut self) {
        self.reset();
        self.in_inline = true;
    }

    fn capture_for(&self, idx: u32) -> Capture {
        if idx == 0 {
            Capture::Cmd
        } else if self.key_at == Some(idx) {
            Capture::Key
        } else if self.numkeys_at == Some(idx) {
            Capture::Numkeys
        } else {
            Capture::Skip
        }
    }

    /// Whether the command's name and first key (if it has one) are known.
    fn ready(&self) -> bool {
        self.idx >= 1
            && self.key_at.is_none_or(|k| self.idx > k)
            && self.numkeys_at.is_none_or(|n| self.idx > n)
    }

    /// Bytes of the argument being read, kept if it is one policy needs.
    fn keep(&mut self, chunk: &[u8]) {
        match self.capture {
            Some(Capture::Cmd) => {
                push_bounded(&mut self.cmd, chunk, keys::MAX_NAME + 1);
            }
            Some(Capture::Key) => {
                if !push_bounded(&mut self.key, chunk, MAX_KEY) {
                    self.key_truncated = true;
                }
            }
            Some(Capture::Numkeys) => {
                push_bounded(&mut self.num, chunk, MAX_NUMBER);
            }
            Some(Capture::Skip) | None => {}
        }
    }

    /// The argument being read is complete: what it tells about where the key is.
    fn argument_end(&mut self) {
        match self.capture {
            Some(Capture::Cmd) => match keys::lookup(&self.cmd) {
                KeySpec::At(n) => self.key_at = Some(n),
                KeySpec::Numkeys(n) => self.numkeys_at = Some(n),
                KeySpec::Subscribe => self.subscribe = true,
                KeySpec::None => {}
            },
            Some(Capture::Numkeys) if int(&self.num).is_some_and(|k| k > 0) => {
                self.key_at = Some(self.idx + 1);
            }
            _ => {}
        }
        self.capture = None;
        self.idx += 1;
    }

    /// One byte of an inline line (never its LF; a CR only when it does not end the line).
    fn inline_byte(&mut self, c: u8) -> Result<(), Unbalanced> {
        loop {
            match self.tok {
                Tok::Between => {
                    if is_space(c) {
                        return Ok(());
                    }
                    self.capture = Some(self.capture_for(self.idx));
                    self.argc = self.argc.saturating_add(1);
                    self.tok = Tok::Plain;
                    continue;
                }
                Tok::Plain => match c {
                    b' ' | b'\t' | b'\r' => {
                        self.argument_end();
                        self.tok = Tok::Between;
                    }
                    b'"' => self.tok = Tok::Dq,
                    b'\'' => self.tok = Tok::Sq,
                    _ => self.keep(&[c]),
                },
                Tok::Dq => match c {
                    b'\\' => self.tok = Tok::DqEsc,
                    b'"' => self.tok = Tok::Closed,
                    _ => self.keep(&[c]),
                },
                Tok::DqEsc => {
                    if c == b'x' {
                        self.tok = Tok::DqHex;
                    } else {
                        let e = match c {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            _ => c,
                        };
                        self.keep(&[e]);
                        self.tok = Tok::Dq;
                    }
                }
                Tok::DqHex => {
                    if hex_val(c).is_some() {
                        self.tok = Tok::DqHex1(c);
                    } else {
                        // `\x` without two hex digits is an escaped `x`.
                        self.keep(b"x");
                        self.tok = Tok::Dq;
                        continue;
                    }
                }
                Tok::DqHex1(h) => match (hex_val(h), hex_val(c)) {
                    (Some(hi), Some(lo)) => {
                        self.keep(&[hi * 16 + lo]);
                        self.tok = Tok::Dq;
                    }
                    _ => {
                        self.keep(&[b'x', h]);
                        self.tok = Tok::Dq;
                        continue;
                    }
                },
                Tok::Sq => match c {
                    b'\\' => self.tok = Tok::SqEsc,
                    b'\'' => self.tok = Tok::Closed,
                    _ => self.keep(&[c]),
                },
                Tok::SqEsc => {
                    self.tok = Tok::Sq;
                    if c == b'\'' {
                        self.keep(b"'");
                    } else {
                        self.keep(b"\\");
                        continue;
                    }
                }
                Tok::Closed => {
                    if !is_space(c) {
                        return Err(Unbalanced);
                    }
                    self.argument_end();
                    self.tok = Tok::Between;
                }
            }
            return Ok(());
        }
    }

    /// The inline line ended.
    fn inline_end(&mut self) -> Result<(), Unbalanced> {
        match self.tok {
            Tok::Between => {}
            Tok::Plain | Tok::Closed => self.argument_end(),
            Tok::Dq | Tok::DqEsc | Tok::DqHex | Tok::DqHex1(_) | Tok::Sq | Tok::SqEsc => {
                return Err(Unbalanced);
            }
        }
        self.tok = Tok::Between;
        Ok(())
    }
}

impl RedisParser {
    pub(super) fn feed_request(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: pos };
            }
            if let Some(line_start) = self.hunt {
                // After a gap: bytes up to the next multi-bulk command are not read.
                if !line_start {
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            pos += i + 1;
                            self.hunt = Some(true);
                        }
                        None => {
                            return Progress::Done {
                                consumed: data.len(),
                            };
                        }
                    }
                    continue;
                }
                match multibulk_start(rest) {
                    Some(true) => self.hunt = None,
                    Some(false) => self.hunt = Some(false),
                    None => return Progress::NeedMore { consumed: pos },
                }
                continue;
            }
            if self.req.in_inline {
                match self.inline_bytes(rest, sink) {
                    Ok(n) => pos += n,
                    Err(a) => return self.fail(sink, a, Invalid::BadSyntax),
                }
                continue;
            }
            if !self.req.in_command {
                if rest.first() != Some(&b'*') {
                    self.req.start_inline();
                    continue;
                }
                match line(rest, MAX_HEADER_LINE) {
                    Line::More => return Progress::NeedMore { consumed: pos },
                    Line::TooLong | Line::Bad => {
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                    }
                    Line::Done(l, n) => {
                        let Some(count) = l.get(1..).and_then(int) else {
                            return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                        };
                        if count > MAX_ARGS as i64 {
                            return self.fail(
                                sink,
                                ParserAnomaly::MessageTooLarge,
                                Invalid::TooLarge,
                            );
                        }
                        pos += n;
                        // Redis ignores `*0` and `*-1` requests.
                        if count > 0 {
                            self.req.start(count as u32);
                        }
                    }
                }
                continue;
            }
            // Inside a multi-bulk command: an argument's body or its `$len` header.
            if let Some(mut body) = self.req.body {
                let step = step_body(&mut body, rest);
                self.req.keep(rest.get(..step.data).unwrap_or_default());
                pos += step.used;
                if step.bad {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                }
                if !step.finished {
                    self.req.body = Some(body);
                    return Progress::Done { consumed: pos };
                }
                self.req.body = None;
                self.argument_done(sink);
                continue;
            }
            match line(rest, MAX_HEADER_LINE) {
                Line::More => return Progress::NeedMore { consumed: pos },
                Line::TooLong | Line::Bad => {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                }
                Line::Done(l, n) => {
                    let len = match l.split_first() {
                        Some((b'$', digits)) => int(digits),
                        _ => None,
                    };
                    let Some(len) = len.filter(|&v| v >= 0) else {
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                    };
                    if len as u64 > MAX_BULK {
                        return self.fail(sink, ParserAnomaly::MessageTooLarge, Invalid::TooLarge);
                    }
                    pos += n;
                    self.req.body = Some(Body::new(len as u64));
                    self.req.capture = Some(self.req.capture_for(self.req.idx));
                }
            }
        }
    }

    /// One multi-bulk argument was read in full.
    fn argument_done(&mut self, sink: &mut dyn FactSink) {
        self.req.argument_end();
        // A key past the last argument is no key: the command is ready without it.
        let argc = self.req.argc;
        self.req.key_at = self.req.key_at.filter(|&k| k < argc);
        self.req.numkeys_at = self.req.numkeys_at.filter(|&k| k < argc);
        let r = &self.req;
        if !r.emitted && (r.ready() || r.idx >= r.argc) {
            self.report_command(r.argc, sink);
        }
        if self.req.idx >= self.req.argc {
            self.req.in_command = false;
        }
    }

    /// Bytes of an inline line, up to and including its LF: how many were taken. The line
    /// is never held, only the arguments policy needs (`keep`).
    fn inline_bytes(
        &mut self,
        data: &[u8],
        sink: &mut dyn FactSink,
    ) -> Result<usize, ParserAnomaly> {
        let nl = data.iter().position(|&b| b == b'\n');
        let text = data.get(..nl.unwrap_or(data.len())).unwrap_or_default();
        if text.contains(&0) {
            // The server looks for the line end with `strchr`, which stops at a NUL: it
            // never runs this line nor anything after it.
            return Err(ParserAnomaly::BadFraming);
        }
        for &c in text {
            if std::mem::take(&mut self.req.cr) {
                // The CR held back is not the line end: an argument separator or quoted.
                self.req
                    .inline_byte(b'\r')
                    .map_err(|_| ParserAnomaly::BadFraming)?;
            }
            if c == b'\r' {
                self.req.cr = true;
                continue;
            }
            self.req
                .inline_byte(c)
                .map_err(|_| ParserAnomaly::BadFraming)?;
        }
        let Some(n) = nl else {
            return Ok(data.len());
        };
        // One CR right before the LF belongs to the line end.
        self.req.cr = false;
        self.req
            .inline_end()
            .map_err(|_| ParserAnomaly::BadFraming)?;
        self.req.in_inline = false;
        // Redis ignores empty lines (clients send them as keep-alives).
        if self.req.argc > 0 {
            self.report_command(self.req.argc, sink);
        }
        Ok(n + 1)
    }
}
