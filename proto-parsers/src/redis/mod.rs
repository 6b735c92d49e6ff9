//! Redis RESP2/RESP3 parser.
//!
//! Client to server: multi-bulk commands (`*N\r\n$len\r\narg\r\n...`) and inline commands (a
//! line split into arguments as redis-server's `sdssplitargs` does: blanks between
//! arguments, `"..."` with backslash and `\xHH` escapes, `'...'`, a quoted part inside an
//! argument). Each command is reported as a [`RedisCommand`] (name, first key, argument
//! count) as soon as its name and first key are known (an inline command once its line is
//! complete: an unbalanced quote anywhere makes the server refuse the whole line), so policy
//! judges a 100 MB `SET` before its value has arrived; every other argument is skipped by
//! counting, never buffered, and so is an inline line of any length. Arguments other than the
//! key are never looked at, which is what keeps `AUTH`/`HELLO` secrets out of facts and
//! summaries.
//!
//! Limits, as redis-server 7 applies them by default: at most 2^31 - 1 arguments (`INT_MAX`)
//! in a multi-bulk command, bulk strings of at most 512 MB (`proto-max-bulk-len`), inline
//! lines of any length (the server's 64 KiB inline limit applies only while no line end has
//! arrived; we never need the line whole). Keys are captured up to [`MAX_KEY`] bytes: a
//! longer one is not reported as its prefix (rules match keys with globs) but as no key, with
//! a blinding [`ParserAnomaly::HeaderTooLarge`].
//!
//! Server to client: every RESP2/RESP3 type, nested aggregates walked with a stack of element
//! counts ([`MAX_DEPTH`] deep), so a reply of any size streams through (`COMMAND DOCS` is
//! 170 KB) without being held, simple strings and errors of any length included. Replies pair
//! with commands by order (Redis answers in order). RESP3 push messages (`>`) and attributes
//! (`|`) answer no command. After `SUBSCRIBE`-like commands and `MONITOR` the server sends
//! messages nobody asked for, so pairing stops (commands are still reported and judged).
//!
//! Pairing needs no memory per command (the n-th reply answers the n-th command), so the
//! "queue" of outstanding commands is a counter: any pipeline depth is reported and paired;
//! [`MAX_PENDING`] marks a pipelining flood (a non-blinding anomaly) and bounds how many
//! `Unanswered` facts the end of a flow produces.
//!
//! # Gaps
//!
//! A gap inside an argument or a reply bulk string being counted through (not the command
//! name, the key or an error text, which are read) is skipped exactly
//! ([`GapOutcome::Skipped`]). Anywhere else:
//!
//! * Commands resynchronise ([`GapOutcome::Resync`]): the command in progress is dropped
//!   and bytes are discarded up to a line start (the byte right after the gap counts as one)
//!   that begins `*<count>\r\n$`, the multi-bulk array of bulk strings every client library
//!   and redis-cli send. Parsing goes on from there as usual. Inline commands are not
//!   looked for (any line is one, so any text would be), so inline commands after a gap go
//!   unreported until a multi-bulk one is found; neither is a bulk value that holds such a
//!   line told apart from a command. The data plane leaves a flow whose commands were cut
//!   by a gap to the policy's uninspectable decision either way.
//! * Replies are not read again: every command waiting for its reply is reported
//!   [`Fact::Unanswered`] (on the next feed), pairing stops as it does after `SUBSCRIBE`,
//!   and the rest of the server's bytes are consumed unread ([`GapOutcome::Resync`], which
//!   does not blind: commands are parsed without any help from replies, so nothing a rule
//!   judges is lost). Replies cannot be framed again soundly: an element of an array reply
//!   (`$5\r\nhello\r\n`, `:1\r\n`) is byte for byte a top-level reply, so after a gap
//!   that cut an aggregate there is no telling which reply answers which command.

mod keys;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use crate::contract::{Fact, FactSink, GapOutcome, Invalid, ParserAnomaly, Progress, StreamParser};
use crate::facts::{RedisCommand, RedisReply, RequestDetail, ResponseDetail};
use crate::{AppProto, Direction};
use keys::KeySpec;

/// Most arguments in one multi-bulk command: redis-server 7 refuses more than `INT_MAX`.
pub const MAX_ARGS: u64 = i32::MAX as u64;
/// Longest bulk string (Redis's `proto-max-bulk-len` default, 512 MB). Longer is refused by
/// the server (it closes the connection), so it is hostile.
pub const MAX_BULK: u64 = 512 * 1024 * 1024;
/// Most elements in one reply aggregate (counting costs nothing; beyond this it is hostile).
pub const MAX_AGGREGATE: u64 = 1 << 32;
/// Deepest nesting of reply aggregates (`COMMAND DOCS` needs about 8; a script can return
/// tables nested about 200 deep). The stack grows with the nesting, 16 bytes a level.
pub const MAX_DEPTH: usize = 1024;
/// Longest `*N` / `$N` header line (the server refuses a count of more than 20 digits).
pub const MAX_HEADER_LINE: usize = 32;
/// Outstanding commands before a pipelining flood is reported.
pub const MAX_PENDING: u32 = 1024;
/// Longest key captured for policy. A longer key is reported as no key, with a blinding
/// anomaly: its prefix is not what the server acts on.
pub const MAX_KEY: usize = 64 * 1024;
/// Longest summary (`SET key`) and error summary.
pub const MAX_SUMMARY: usize = 256;
/// Longest error text (`-ERR ...`, blob error `!len`) kept.
const MAX_ERROR: usize = 256;
/// Most digits of the count of a multi-bulk command looked for after a gap ([`MAX_ARGS`] has
/// ten).
const MAX_COUNT_DIGITS: usize = 10;
/// Longest `numkeys` argument read.
const MAX_NUMBER: usize = 20;
/// Capacity the key scratch keeps between commands; one that a long key grew past it is
/// freed once that command is reported.
const KEEP_KEY: usize = 4096;

/// A bulk string being counted through: its data, then its CRLF.
#[derive(Clone, Copy, Debug)]
struct Body {
    data_left: u64,
    crlf_left: u8,
}

impl Body {
    const fn new(len: u64) -> Self {
        Body {
            data_left: len,
            crlf_left: 2,
        }
    }
}

/// What one step through a body found.
struct BodyStep {
    /// Bytes of `data` used.
    used: usize,
    /// How many of them were bulk data (the rest are the CRLF).
    data: usize,
    finished: bool,
    /// The terminator was not CRLF.
    bad: bool,
}

fn step_body(body: &mut Body, data: &[u8]) -> BodyStep {
    let take = usize::try_from(body.data_left)
        .unwrap_or(usize::MAX)
        .min(data.len());
    body.data_left -= take as u64;
    let mut used = take;
    let mut bad = false;
    while body.data_left == 0 && body.crlf_left > 0 {
        let Some(&b) = data.get(used) else { break };
        let want = if body.crlf_left == 2 { b'\r' } else { b'\n' };
        if b != want {
            bad = true;
            break;
        }
        body.crlf_left -= 1;
        used += 1;
    }
    BodyStep {
        used,
        data: take,
        finished: body.data_left == 0 && body.crlf_left == 0,
        bad,
    }
}

/// A CRLF-terminated line at the start of `data`.
enum Line<'a> {
    /// The line (without CRLF) and the bytes it takes with its CRLF.
    Done(&'a [u8], usize),
    More,
    TooLong,
    /// A bare LF or a CR not followed by LF.
    Bad,
}

fn line(data: &[u8], max: usize) -> Line<'_> {
    let window = data
        .get(..data.len().min(max.saturating_add(2)))
        .unwrap_or(data);
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => match nl.checked_sub(1).and_then(|i| window.get(i)) {
            Some(b'\r') => Line::Done(window.get(..nl - 1).unwrap_or_default(), nl + 1),
            _ => Line::Bad,
        },
        None if data.len() > max.saturating_add(1) => Line::TooLong,
        None => Line::More,
    }
}

/// A strict decimal integer (optional minus sign), as RESP lengths are written.
fn int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

/// Whether `data`, at a line start, begins a multi-bulk command: `*<count>\r\n$` with a
/// count above zero. `None` while `data` is a prefix of one (at most 14 bytes).
fn multibulk_start(data: &[u8]) -> Option<bool> {
    match data.first() {
        None => return None,
        Some(b'*') => {}
        Some(_) => return Some(false),
    }
    let rest = data.get(1..).unwrap_or_default();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_COUNT_DIGITS {
        return Some(false);
    }
    let after = rest.get(digits..).unwrap_or_default();
    if after.is_empty() {
        return None;
    }
    let count = rest.get(..digits).unwrap_or_default();
    if count.iter().all(|&b| b == b'0') {
        // No digits, or `*0`: not a command (Redis ignores `*0`).
        return Some(false);
    }
    for (i, want) in b"\r\n$".iter().enumerate() {
        match after.get(i) {
            None => return None,
            Some(b) if b == want => {}
            Some(_) => return Some(false),
        }
    }
    Some(true)
}

/// Which argument bytes are kept while counting through a bulk or an inline argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    Skip,
    Cmd,
    Key,
    Numkeys,
}

/// Where an inline line's tokenizer is (redis-server's `sdssplitargs`, one byte at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Tok {
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
struct ReqState {
    /// In a multi-bulk command.
    in_command: bool,
    /// In an inline command line.
    in_inline: bool,
    /// Arguments of the multi-bulk command; arguments started so far on an inline line.
    argc: u32,
    /// Arguments read so far (index of the next one).
    idx: u32,
    body: Option<Body>,
    capture: Option<Capture>,
    key_at: Option<u32>,
    numkeys_at: Option<u32>,
    subscribe: bool,
    emitted: bool,
    key_truncated: bool,
    /// Inline tokenizer state.
    tok: Tok,
    /// An inline line's CR, held back until the next byte tells whether it ends the line.
    cr: bool,
    cmd: Vec<u8>,
    key: Vec<u8>,
    num: Vec<u8>,
}

impl ReqState {
    fn reset(&mut self) {
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

/// One open reply aggregate.
#[derive(Clone, Copy, Debug, Default)]
struct Frame {
    left: u64,
    /// An attribute (`|`): metadata before a value, not an element of its parent.
    attr: bool,
}

/// What the top-level reply value being read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Top {
    #[default]
    Reply,
    /// A blob error (`!`), its text captured.
    BlobError,
    Push,
    Attr,
}

/// Server-to-client state.
#[derive(Debug, Default)]
struct RepState {
    /// Open aggregates, outermost first.
    stack: Vec<Frame>,
    top: Top,
    body: Option<Body>,
    /// The type byte of the line value (simple string, error, number...) being read.
    line: Option<u8>,
    /// The last byte of the line read so far was a CR (its end, if an LF follows).
    cr: bool,
    err: Vec<u8>,
}

impl RepState {
    /// One element ended; returns true when that completed the top-level value.
    fn element_done(&mut self) -> bool {
        loop {
            let Some(f) = self.stack.last_mut() else {
                return true;
            };
            f.left = f.left.saturating_sub(1);
            if f.left > 0 {
                return false;
            }
            let attr = f.attr;
            self.stack.pop();
            if attr {
                // An attribute is not one of its parent's elements: the value after it is.
                return self.stack.is_empty();
            }
        }
    }

    /// Reads a line value's bytes up to its end: how many bytes of `data` it took and
    /// whether the line ended, or `Err` for a line end that is not CRLF.
    fn line_bytes(&mut self, kind: u8, data: &[u8]) -> Result<(usize, bool), ()> {
        let nl = data.iter().position(|&b| b == b'\n');
        let text = data.get(..nl.unwrap_or(data.len())).unwrap_or_default();
        let keep = kind == b'-';
        if nl == Some(0) {
            if !self.cr {
                return Err(());
            }
            self.cr = false;
            return Ok((1, true));
        }
        if std::mem::take(&mut self.cr) && keep {
            // The CR held back was text after all.
            push_bounded(&mut self.err, b"\r", MAX_ERROR);
        }
        let (text, cr) = match text.split_last() {
            Some((b'\r', t)) => (t, true),
            _ => (text, false),
        };
        if keep {
            push_bounded(&mut self.err, text, MAX_ERROR);
        }
        match nl {
            Some(n) if cr => Ok((n + 1, true)),
            Some(_) => Err(()),
            None => {
                self.cr = cr;
                Ok((data.len(), false))
            }
        }
    }
}

/// Parser of one Redis connection (both directions).
#[derive(Debug)]
pub struct RedisParser {
    req: ReqState,
    rep: RepState,
    next_id: u32,
    /// Commands reported and not yet answered; the oldest has id `reply_id`.
    pending: u32,
    reply_id: u32,
    /// Replies are no longer paired (pub/sub, MONITOR, replication).
    unpaired: bool,
    resync: [bool; 2],
    summary: Vec<u8>,
    /// Set once either direction is given up.
    failed: bool,
    /// After a gap in the commands: `Some(line_start)` while looking for the next
    /// multi-bulk command, `line_start` telling whether the next byte starts a line.
    hunt: Option<bool>,
    /// After a gap in the replies: they are consumed unread for the rest of the flow.
    replies_lost: bool,
    /// The commands waiting for a reply when the replies were lost are still to be reported
    /// unanswered.
    flush_unanswered: bool,
}

impl Default for RedisParser {
    fn default() -> Self {
        RedisParser {
            req: ReqState {
                cmd: Vec::with_capacity(keys::MAX_NAME + 1),
                key: Vec::with_capacity(256),
                num: Vec::with_capacity(MAX_NUMBER),
                ..ReqState::default()
            },
            rep: RepState {
                err: Vec::with_capacity(MAX_ERROR),
                ..RepState::default()
            },
            next_id: 0,
            pending: 0,
            reply_id: 0,
            unpaired: false,
            resync: [false; 2],
            summary: Vec::with_capacity(MAX_SUMMARY),
            failed: false,
            hunt: None,
            replies_lost: false,
            flush_unanswered: false,
        }
    }
}

fn push_bounded(dst: &mut Vec<u8>, src: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(dst.len());
    dst.extend_from_slice(src.get(..room.min(src.len())).unwrap_or_default());
    src.len() <= room
}

impl RedisParser {
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(&mut self, sink: &mut dyn FactSink, a: ParserAnomaly, why: Invalid) -> Progress {
        sink.anomaly(a);
        self.failed = true;
        Progress::Invalid(why)
    }

    /// Reports every command still waiting for its reply as unanswered. Commands beyond
    /// [`MAX_PENDING`] were flagged when they were sent; at most that many are reported.
    fn report_unanswered(&mut self, sink: &mut dyn FactSink) {
        let n = self.pending.min(MAX_PENDING);
        for k in 0..n {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Redis,
                id: self.reply_id.wrapping_add(k),
            });
        }
        self.reply_id = self.reply_id.wrapping_add(self.pending);
        self.pending = 0;
    }

    /// Counts a command as outstanding and returns its id.
    fn open_transaction(&mut self, subscribe: bool, sink: &mut dyn FactSink) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if subscribe {
            self.unpaired = true;
        } else if !self.unpaired {
            if self.pending == 0 {
                self.reply_id = id;
            }
            self.pending = self.pending.saturating_add(1);
            if self.pending == MAX_PENDING + 1 {
                sink.anomaly(ParserAnomaly::TooManyTransactions);
            }
        }
        id
    }

    /// Reports a command whose name and key are in `cmd`/`key`.
    fn report(
        &mut self,
        cmd: &[u8],
        key: Option<&[u8]>,
        argc: u32,
        subscribe: bool,
        sink: &mut dyn FactSink,
    ) {
        let id = self.open_transaction(subscribe, sink);
        self.summary.clear();
        push_bounded(&mut self.summary, cmd, MAX_SUMMARY);
        if let Some(k) = key {
            push_bounded(&mut self.summary, b" ", MAX_SUMMARY);
            push_bounded(&mut self.summary, k, MAX_SUMMARY);
        }
        sink.fact(&Fact::Transaction {
            app: AppProto::Redis,
            id,
            summary: &self.summary,
            detail: RequestDetail::Redis(RedisCommand {
                command: cmd,
                key,
                argc,
            }),
        });
    }

    /// Reports the command held in the request scratch (`argc` arguments; its key if it
    /// has one among them).
    fn report_command(&mut self, argc: u32, sink: &mut dyn FactSink) {
        self.req.emitted = true;
        let mut req = std::mem::take(&mut self.req);
        let mut key = req
            .key_at
            .filter(|&k| k < req.idx && k < argc)
            .map(|_| req.key.as_slice());
        if key.is_some() && req.key_truncated {
            // Not its prefix: a glob could match the prefix and not the key.
            sink.anomaly(ParserAnomaly::HeaderTooLarge);
            key = None;
        }
        self.report(&req.cmd, key, argc, req.subscribe, sink);
        if req.key.capacity() > KEEP_KEY {
            req.key = Vec::new();
        }
        self.req = req;
    }

    fn feed_request(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Progress {
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

    /// A top-level reply value ended.
    fn reply_done(&mut self, error: Option<&[u8]>, sink: &mut dyn FactSink) {
        match self.rep.top {
            Top::Push | Top::Attr => return,
            Top::Reply | Top::BlobError => {}
        }
        if self.pending == 0 {
            if !self.unpaired {
                sink.anomaly(ParserAnomaly::UnsolicitedResponse);
            }
            return;
        }
        let id = self.reply_id;
        self.reply_id = self.reply_id.wrapping_add(1);
        self.pending -= 1;
        let summary: &[u8] = match error {
            Some(e) => e.get(..MAX_SUMMARY.min(e.len())).unwrap_or(e),
            None => b"",
        };
        sink.fact(&Fact::Response {
            app: AppProto::Redis,
            id,
            status: None,
            summary,
            detail: ResponseDetail::Redis(RedisReply { error }),
        });
    }

    /// An element ended; reports the reply it completed, if it did, with the error text
    /// captured when `error` says there is one.
    fn element_done(&mut self, error: bool, sink: &mut dyn FactSink) {
        if self.rep.element_done() {
            let err = std::mem::take(&mut self.rep.err);
            self.reply_done(error.then_some(err.as_slice()), sink);
            self.rep.err = err;
            if self.rep.stack.capacity() > 64 {
                self.rep.stack = Vec::new();
            }
        }
    }

    fn feed_reply(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        if self.replies_lost {
            return Progress::Done {
                consumed: data.len(),
            };
        }
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: pos };
            }
            if let Some(kind) = self.rep.line {
                let Ok((n, ended)) = self.rep.line_bytes(kind, rest) else {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                };
                pos += n;
                if ended {
                    self.rep.line = None;
                    self.element_done(kind == b'-', sink);
                }
                continue;
            }
            if let Some(mut body) = self.rep.body {
                let step = step_body(&mut body, rest);
                if self.rep.top == Top::BlobError && self.rep.stack.is_empty() {
                    let chunk = rest.get(..step.data).unwrap_or_default();
                    push_bounded(&mut self.rep.err, chunk, MAX_ERROR);
                }
                pos += step.used;
                if step.bad {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                }
                if !step.finished {
                    self.rep.body = Some(body);
                    return Progress::Done { consumed: pos };
                }
                self.rep.body = None;
                let blob_error = self.rep.top == Top::BlobError;
                self.element_done(blob_error, sink);
                continue;
            }
            let Some(&kind) = rest.first() else {
                return Progress::Done { consumed: pos };
            };
            let top = self.rep.stack.is_empty();
            if top {
                self.rep.top = match kind {
                    b'>' => Top::Push,
                    b'|' => Top::Attr,
                    b'!' => Top::BlobError,
                    _ => Top::Reply,
                };
                self.rep.err.clear();
            }
            if matches!(kind, b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_') {
                // A line value, streamed through: it may be of any length.
                if kind == b'-' {
                    self.rep.err.clear();
                }
                self.rep.line = Some(kind);
                self.rep.cr = false;
                pos += 1;
                continue;
            }
            let (l, n) = match line(rest, MAX_HEADER_LINE) {
                Line::Done(l, n) => (l, n),
                Line::More => return Progress::NeedMore { consumed: pos },
                Line::TooLong | Line::Bad => {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                }
            };
            let body = l.get(1..).unwrap_or_default();
            match kind {
                b'$' | b'=' | b'!' => {
                    if body.first() == Some(&b'?') {
                        // RESP3 streamed strings: no server sends them to clients today.
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::Unsupported);
                    }
                    let Some(len) = int(body) else {
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                    };
                    pos += n;
                    if len < 0 {
                        // RESP2 null bulk (`$-1`).
                        self.element_done(false, sink);
                        continue;
                    }
                    if len as u64 > MAX_BULK {
                        return self.fail(sink, ParserAnomaly::MessageTooLarge, Invalid::TooLarge);
                    }
                    self.rep.body = Some(Body::new(len as u64));
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    if body.first() == Some(&b'?') {
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::Unsupported);
                    }
                    let Some(count) = int(body) else {
                        return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                    };
                    pos += n;
                    let pairs = matches!(kind, b'%' | b'|');
                    let elements = if count < 0 {
                        0
                    } else if pairs {
                        (count as u64).saturating_mul(2)
                    } else {
                        count as u64
                    };
                    if elements > MAX_AGGREGATE {
                        return self.fail(sink, ParserAnomaly::MessageTooLarge, Invalid::TooLarge);
                    }
                    let attr = kind == b'|';
                    if elements == 0 {
                        // Empty or null aggregate: complete at once. An empty attribute
                        // is nothing at all.
                        if attr {
                            if top {
                                self.reply_done(None, sink);
                            }
                        } else {
                            self.element_done(false, sink);
                        }
                        continue;
                    }
                    if self.rep.stack.len() >= MAX_DEPTH {
                        return self.fail(sink, ParserAnomaly::MessageTooLarge, Invalid::TooLarge);
                    }
                    self.rep.stack.push(Frame {
                        left: elements,
                        attr,
                    });
                }
                _ => return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax),
            }
        }
    }
}

impl StreamParser for RedisParser {
    fn proto(&self) -> AppProto {
        AppProto::Redis
    }

    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        if self.failed {
            return Progress::Invalid(Invalid::UnexpectedMessage);
        }
        let i = match dir {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        };
        if let Some(r) = self.resync.get_mut(i)
            && std::mem::take(r)
        {
            sink.anomaly(ParserAnomaly::Resync);
        }
        if std::mem::take(&mut self.flush_unanswered) {
            self.report_unanswered(sink);
        }
        match dir {
            Direction::ToServer => self.feed_request(data, sink),
            Direction::ToClient => self.feed_reply(data, sink),
        }
    }

    /// See "Gaps" in the module documentation.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        if self.failed {
            return GapOutcome::GiveUp;
        }
        let len = u64::from(len);
        match dir {
            Direction::ToServer => {
                // Only an argument that is counted through and not read can lose bytes
                // without losing the command.
                let counted = self.hunt.is_none()
                    && !self.req.in_inline
                    && !matches!(
                        self.req.capture,
                        Some(Capture::Cmd | Capture::Key | Capture::Numkeys)
                    );
                if counted
                    && let Some(b) = self.req.body.as_mut()
                    && b.data_left >= len
                {
                    b.data_left -= len;
                    self.resync[0] = true;
                    return GapOutcome::Skipped;
                }
                self.req.reset();
                self.req.in_command = false;
                self.req.in_inline = false;
                self.hunt = Some(true);
                self.resync[0] = true;
                GapOutcome::Resync
            }
            Direction::ToClient => {
                if self.replies_lost {
                    return GapOutcome::Skipped;
                }
                let read = self.rep.line.is_some()
                    || (self.rep.top == Top::BlobError && self.rep.stack.is_empty());
                if !read
                    && let Some(b) = self.rep.body.as_mut()
                    && b.data_left >= len
                {
                    b.data_left -= len;
                    self.resync[1] = true;
                    return GapOutcome::Skipped;
                }
                self.replies_lost = true;
                self.unpaired = true;
                self.flush_unanswered = true;
                self.rep = RepState::default();
                self.resync[1] = true;
                GapOutcome::Resync
            }
        }
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        self.report_unanswered(sink);
    }
}
