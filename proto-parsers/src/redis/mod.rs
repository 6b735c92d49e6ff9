//! Redis RESP2/RESP3 parser.
//!
//! Client to server: multi-bulk commands (`*N\r\n$len\r\narg\r\n...`) and inline commands (a
//! space-separated line, as typed over telnet). Each command is reported as a
//! [`RedisCommand`] (name, first key, argument count) as soon as its name and first key are
//! known, so policy judges a 100 MB `SET` before its value has arrived; every other argument
//! is skipped by counting, never buffered. Arguments other than the key are never looked at,
//! which is what keeps `AUTH`/`HELLO` secrets out of facts and summaries.
//!
//! Server to client: every RESP2/RESP3 type, nested aggregates walked with a bounded stack
//! of element counts, so a reply of any size streams through (`COMMAND DOCS` is 170 KB)
//! without being held. Replies pair with commands by order (Redis answers in order). RESP3
//! push messages (`>`) and attributes (`|`) answer no command. After `SUBSCRIBE`-like
//! commands and `MONITOR` the server sends messages nobody asked for, so pairing stops
//! (commands are still reported and judged).
//!
//! Pairing needs no memory per command (the n-th reply answers the n-th command), so the
//! "queue" of outstanding commands is a counter; [`MAX_PENDING`] marks a pipelining flood
//! and bounds how many `Unanswered` facts the end of a flow produces.

mod keys;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use crate::contract::{Fact, FactSink, Invalid, ParserAnomaly, Progress, StreamParser};
use crate::facts::{RedisCommand, RedisReply, RequestDetail, ResponseDetail};
use crate::{AppProto, Direction};
use keys::KeySpec;

/// Most arguments in one multi-bulk command (Redis's own default limit).
pub const MAX_ARGS: u64 = 1024 * 1024;
/// Longest bulk string (Redis's `proto-max-bulk-len` default, 512 MB). Longer is hostile.
pub const MAX_BULK: u64 = 512 * 1024 * 1024;
/// Most elements in one reply aggregate (counting costs nothing; beyond this it is hostile).
pub const MAX_AGGREGATE: u64 = 1 << 32;
/// Deepest nesting of reply aggregates (`COMMAND DOCS` needs about 8).
pub const MAX_DEPTH: usize = 32;
/// Longest inline command or reply line (simple string, error, number), below the caller's
/// 64 KiB carry so an unfinished line always fits.
pub const MAX_LINE: usize = 32 * 1024;
/// Longest `*N` / `$N` header line.
pub const MAX_HEADER_LINE: usize = 32;
/// Outstanding commands before a pipelining flood is reported.
pub const MAX_PENDING: u32 = 1024;
/// Longest key kept for policy; a longer one is reported truncated, with an anomaly.
pub const MAX_KEY: usize = 1024;
/// Longest summary (`SET key`) and error summary.
pub const MAX_SUMMARY: usize = 256;
/// Longest blob error (`!len`) text kept.
const MAX_ERROR: usize = 256;
/// Longest `numkeys` argument read.
const MAX_NUMBER: usize = 20;

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

/// Which argument bytes are kept while counting through a bulk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    Skip,
    Cmd,
    Key,
    Numkeys,
}

/// Client-to-server state: the multi-bulk command being read, if any.
#[derive(Debug, Default)]
struct ReqState {
    in_command: bool,
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
    cmd: Vec<u8>,
    key: Vec<u8>,
    num: Vec<u8>,
}

impl ReqState {
    fn start(&mut self, argc: u32) {
        self.in_command = true;
        self.argc = argc;
        self.idx = 0;
        self.body = None;
        self.capture = None;
        self.key_at = None;
        self.numkeys_at = None;
        self.subscribe = false;
        self.emitted = false;
        self.key_truncated = false;
        self.cmd.clear();
        self.key.clear();
        self.num.clear();
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
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    top: Top,
    body: Option<Body>,
    err: Vec<u8>,
}

impl RepState {
    /// One element ended; returns true when that completed the top-level value.
    fn element_done(&mut self) -> bool {
        loop {
            let Some(i) = self.depth.checked_sub(1) else {
                return true;
            };
            let Some(f) = self.stack.get_mut(i) else {
                return true;
            };
            f.left = f.left.saturating_sub(1);
            if f.left > 0 {
                return false;
            }
            let attr = f.attr;
            self.depth = i;
            if attr {
                // An attribute is not one of its parent's elements: the value after it is.
                return self.depth == 0;
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
}

impl Default for RedisParser {
    fn default() -> Self {
        RedisParser {
            req: ReqState {
                cmd: Vec::with_capacity(keys::MAX_NAME + 1),
                key: Vec::with_capacity(MAX_KEY),
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

    /// Reports the multi-bulk command held in the request scratch.
    fn report_multibulk(&mut self, sink: &mut dyn FactSink) {
        self.req.emitted = true;
        if self.req.key_truncated {
            sink.anomaly(ParserAnomaly::HeaderTooLarge);
        }
        let req = std::mem::take(&mut self.req);
        let key = req
            .key_at
            .filter(|&k| k < req.idx)
            .map(|_| req.key.as_slice());
        self.report(&req.cmd, key, req.argc, req.subscribe, sink);
        self.req = req;
    }

    fn feed_request(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: pos };
            }
            if !self.req.in_command {
                if rest.first() == Some(&b'*') {
                    match line(rest, MAX_HEADER_LINE) {
                        Line::More => return Progress::NeedMore { consumed: pos },
                        Line::TooLong | Line::Bad => {
                            return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                        }
                        Line::Done(l, n) => {
                            let Some(count) = l.get(1..).and_then(int) else {
                                return self.fail(
                                    sink,
                                    ParserAnomaly::BadFraming,
                                    Invalid::BadSyntax,
                                );
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
                match line_lf(rest, MAX_LINE) {
                    None if rest.len() > MAX_LINE => {
                        return self.fail(sink, ParserAnomaly::HeaderTooLarge, Invalid::TooLarge);
                    }
                    None => return Progress::NeedMore { consumed: pos },
                    Some((l, n)) => {
                        pos += n;
                        self.inline(l, sink);
                    }
                }
                continue;
            }
            // Inside a multi-bulk command: an argument's body or its `$len` header.
            if let Some(mut body) = self.req.body {
                let step = step_body(&mut body, rest);
                let chunk = rest.get(..step.data).unwrap_or_default();
                match self.req.capture {
                    Some(Capture::Cmd) => {
                        push_bounded(&mut self.req.cmd, chunk, keys::MAX_NAME + 1);
                    }
                    Some(Capture::Key) => {
                        if !push_bounded(&mut self.req.key, chunk, MAX_KEY) {
                            self.req.key_truncated = true;
                        }
                    }
                    Some(Capture::Numkeys) => {
                        push_bounded(&mut self.req.num, chunk, MAX_NUMBER);
                    }
                    Some(Capture::Skip) | None => {}
                }
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
        let r = &mut self.req;
        match r.capture {
            Some(Capture::Cmd) => match keys::lookup(&r.cmd) {
                KeySpec::At(n) => r.key_at = Some(n).filter(|&n| n < r.argc),
                KeySpec::Numkeys(n) => r.numkeys_at = Some(n).filter(|&n| n < r.argc),
                KeySpec::Subscribe => r.subscribe = true,
                KeySpec::None => {}
            },
            Some(Capture::Numkeys) => {
                let next = r.idx + 1;
                if int(&r.num).is_some_and(|k| k > 0) && next < r.argc {
                    r.key_at = Some(next);
                }
            }
            _ => {}
        }
        r.capture = None;
        r.idx += 1;
        if !r.emitted && (r.ready() || r.idx >= r.argc) {
            self.report_multibulk(sink);
        }
        if self.req.idx >= self.req.argc {
            self.req.in_command = false;
        }
    }

    /// An inline command line (without its line end).
    fn inline(&mut self, l: &[u8], sink: &mut dyn FactSink) {
        let mut argc = 0u32;
        let mut cmd: &[u8] = &[];
        for (i, tok) in l
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            if i == 0 {
                cmd = tok;
            }
            argc = argc.saturating_add(1);
        }
        if argc == 0 {
            // Redis ignores empty lines (clients send them as keep-alives).
            return;
        }
        let arg = |n: u32| {
            l.split(|&b| b == b' ' || b == b'\t')
                .filter(|t| !t.is_empty())
                .nth(n as usize)
        };
        let spec = keys::lookup(cmd);
        let key = match spec {
            KeySpec::At(n) => arg(n),
            KeySpec::Numkeys(n) => match arg(n).and_then(int) {
                Some(k) if k > 0 => arg(n + 1),
                _ => None,
            },
            KeySpec::None | KeySpec::Subscribe => None,
        };
        let key = match key {
            Some(k) if k.len() > MAX_KEY => {
                sink.anomaly(ParserAnomaly::HeaderTooLarge);
                k.get(..MAX_KEY)
            }
            k => k,
        };
        self.report(cmd, key, argc, spec == KeySpec::Subscribe, sink);
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

    fn feed_reply(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return Progress::Done { consumed: pos };
            }
            if let Some(mut body) = self.rep.body {
                let step = step_body(&mut body, rest);
                if self.rep.top == Top::BlobError && self.rep.depth == 0 {
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
                if self.rep.element_done() {
                    let err = std::mem::take(&mut self.rep.err);
                    let error = (self.rep.top == Top::BlobError).then_some(err.as_slice());
                    self.reply_done(error, sink);
                    self.rep.err = err;
                }
                continue;
            }
            let Some(&kind) = rest.first() else {
                return Progress::Done { consumed: pos };
            };
            let max = match kind {
                b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => MAX_LINE,
                _ => MAX_HEADER_LINE,
            };
            let (l, n) = match line(rest, max) {
                Line::Done(l, n) => (l, n),
                Line::More => return Progress::NeedMore { consumed: pos },
                Line::TooLong if max == MAX_LINE => {
                    return self.fail(sink, ParserAnomaly::HeaderTooLarge, Invalid::TooLarge);
                }
                Line::TooLong | Line::Bad => {
                    return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax);
                }
            };
            let body = l.get(1..).unwrap_or_default();
            let top = self.rep.depth == 0;
            if top {
                self.rep.top = match kind {
                    b'>' => Top::Push,
                    b'|' => Top::Attr,
                    b'!' => Top::BlobError,
                    _ => Top::Reply,
                };
                self.rep.err.clear();
            }
            match kind {
                b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {
                    pos += n;
                    if self.rep.element_done() {
                        let error = (kind == b'-').then_some(body);
                        self.reply_done(error, sink);
                    }
                }
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
                        if self.rep.element_done() {
                            self.reply_done(None, sink);
                        }
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
                        let done = if attr { top } else { self.rep.element_done() };
                        if done {
                            self.reply_done(None, sink);
                        }
                        continue;
                    }
                    let Some(slot) = self.rep.stack.get_mut(self.rep.depth) else {
                        return self.fail(sink, ParserAnomaly::MessageTooLarge, Invalid::TooLarge);
                    };
                    *slot = Frame {
                        left: elements,
                        attr,
                    };
                    self.rep.depth += 1;
                }
                _ => return self.fail(sink, ParserAnomaly::BadFraming, Invalid::BadSyntax),
            }
        }
    }
}

/// A line ending in LF (CR optional), as inline commands are read: the line without its
/// terminator and the bytes it takes.
fn line_lf(data: &[u8], max: usize) -> Option<(&[u8], usize)> {
    let window = data.get(..data.len().min(max.saturating_add(1)))?;
    let nl = window.iter().position(|&b| b == b'\n')?;
    let l = window.get(..nl)?;
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    Some((l, nl + 1))
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
        match dir {
            Direction::ToServer => self.feed_request(data, sink),
            Direction::ToClient => self.feed_reply(data, sink),
        }
    }

    fn gap(&mut self, dir: Direction, len: u32) -> bool {
        // Only a gap inside a value being counted through can be skipped: anywhere else
        // the next message boundary is unknown.
        let (body, i) = match dir {
            Direction::ToServer => {
                if matches!(
                    self.req.capture,
                    Some(Capture::Cmd | Capture::Key | Capture::Numkeys)
                ) {
                    return false;
                }
                (&mut self.req.body, 0)
            }
            Direction::ToClient => {
                if self.rep.top == Top::BlobError && self.rep.depth == 0 {
                    return false;
                }
                (&mut self.rep.body, 1)
            }
        };
        match body {
            Some(b) if b.data_left >= u64::from(len) => {
                b.data_left -= u64::from(len);
                if let Some(r) = self.resync.get_mut(i) {
                    *r = true;
                }
                true
            }
            _ => false,
        }
    }

    fn end(&mut self, sink: &mut dyn FactSink) {
        // Commands beyond MAX_PENDING were flagged when they were sent; the end of the
        // flow reports at most that many.
        let n = self.pending.min(MAX_PENDING);
        for k in 0..n {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Redis,
                id: self.reply_id.wrapping_add(k),
            });
        }
        self.pending = 0;
    }
}
