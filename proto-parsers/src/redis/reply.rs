//! Server to client: replies walked through nested aggregates and paired with commands
//! by order.

use super::wire::{Body, Line, int, line, step_body};
use super::{
    MAX_AGGREGATE, MAX_BULK, MAX_DEPTH, MAX_ERROR, MAX_HEADER_LINE, MAX_SUMMARY, RedisParser,
    push_bounded,
};
use crate::AppProto;
use crate::contract::{Fact, FactSink, Invalid, ParserAnomaly, Progress};
use crate::facts::{RedisReply, ResponseDetail};

/// One open reply aggregate.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Frame {
    left: u64,
    /// An attribute (`|`): metadata before a value, not an element of its parent.
    attr: bool,
}

/// What the top-level reply value being read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum Top {
    #[default]
    Reply,
    /// A blob error (`!`), its text captured.
    BlobError,
    Push,
    Attr,
}

/// Server-to-client state.
#[derive(Debug, Default)]
pub(super) struct RepState {
    /// Open aggregates, outermost first.
    pub(super) stack: Vec<Frame>,
    pub(super) top: Top,
    pub(super) body: Option<Body>,
    /// The type byte of the line value (simple string, error, number...) being read.
    pub(super) line: Option<u8>,
    /// The last byte of the line read so far was a CR (its end, if an LF follows).
    pub(super) cr: bool,
    pub(super) err: Vec<u8>,
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

impl RedisParser {
    /// A top-level reply value ended.
    fn reply_done(&mut self, error: Option<&[u8]>, sink: &mut dyn FactSink) {
        match self.rep.top {
            Top::Push | Top::Attr => return,
            Top::Reply | Top::BlobError => {}
        }
        if self.pending.pop_front().is_none() {
            if !self.unpaired {
                sink.anomaly(ParserAnomaly::UnsolicitedResponse);
            }
            return;
        }
        let id = self.reply_id;
        self.reply_id = self.reply_id.wrapping_add(1);
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

    pub(super) fn feed_reply(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Progress {
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
