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
//! queue of outstanding commands ([`crate::pending::PendingQueue`]) holds empty entries,
//! which take no memory, and a count past its cap: any pipeline depth is reported and
//! paired; [`MAX_PENDING`] marks a pipelining flood (a non-blinding anomaly, each time the
//! depth goes past it) and bounds how many `Unanswered` facts the end of a flow produces.
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
mod reply;
mod request;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
mod wire;

use crate::contract::{Fact, FactSink, GapOutcome, Invalid, ParserAnomaly, Progress, StreamParser};
use crate::facts::{RedisCommand, RequestDetail};
use crate::pending::{Overflow, PendingQueue};
use crate::{AppProto, Direction};
use reply::{RepState, Top};
use request::{Capture, ReqState};

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

/// Parser of one Redis connection (both directions).
#[derive(Debug)]
pub struct RedisParser {
    req: ReqState,
    rep: RepState,
    next_id: u32,
    /// Commands reported and not yet answered; the oldest has id `reply_id`.
    pending: PendingQueue<()>,
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
            pending: PendingQueue::new(MAX_PENDING as usize, Overflow::EachCrossing),
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
        let pending = u32::try_from(self.pending.len()).unwrap_or(u32::MAX);
        for k in 0..pending.min(MAX_PENDING) {
            sink.fact(&Fact::Unanswered {
                app: AppProto::Redis,
                id: self.reply_id.wrapping_add(k),
            });
        }
        self.reply_id = self.reply_id.wrapping_add(pending);
        self.pending.clear();
    }

    /// Counts a command as outstanding and returns its id.
    fn open_transaction(&mut self, subscribe: bool, sink: &mut dyn FactSink) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if subscribe {
            self.unpaired = true;
        } else if !self.unpaired {
            if self.pending.is_empty() {
                self.reply_id = id;
            }
            // Past MAX_PENDING, a TooManyTransactions; the commands are still counted.
            self.pending.push((), sink);
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
