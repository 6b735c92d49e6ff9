//! Frames: the preface, each frame's header and fixed fields, payloads streamed (DATA to
//! the gRPC framer, header block fragments assembled, SETTINGS applied).

use super::headers::decode_block;
use super::{
    ACK, Body, BodyKind, CONTINUATION, DATA, DEFAULT_MAX_FRAME, END_HEADERS, END_STREAM,
    FRAME_HEAD, GOAWAY, HEADERS, Http2Parser, MAX_BLOCK, MAX_FRAME_LIMIT, MAX_HPACK_TABLE, PADDED,
    PING, PREFACE, PRIORITY, PRIORITY_FLAG, PUSH_PROMISE, Pending, RST_STREAM, SETTINGS,
    SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_FRAME_SIZE, Stage, WINDOW_UPDATE, be24, be32, ix,
};
use crate::Direction;
use crate::contract::{FactSink, Invalid, ParserAnomaly, Progress};

impl Http2Parser {
    /// Reads a frame header plus the fixed fields after it (`head` holds all of them) and
    /// sets up the payload that follows. `Err` stops the flow.
    fn on_head(
        &mut self,
        dir: Direction,
        head: &[u8],
        sink: &mut dyn FactSink,
    ) -> Result<(), Invalid> {
        let len = be24(head);
        let ty = head.get(3).copied().unwrap_or(0);
        let flags = head.get(4).copied().unwrap_or(0);
        let stream = be32(head.get(5..).unwrap_or_default()) & 0x7fff_ffff;
        let fixed = head.get(FRAME_HEAD..).unwrap_or_default();
        let (side, _, conn) = self.pair(dir);
        conn.stats.frames += 1;

        if dir == Direction::ToClient && !side.seen_frame && (ty != SETTINGS || flags & ACK != 0) {
            // A server's first frame is its SETTINGS; anything else means we joined late.
            self.go_opaque(sink);
            return Ok(());
        }
        side.seen_frame = true;
        if len > side.max_frame {
            conn.stats.oversized_frames += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
        }
        if let Some(p) = side.pending
            && (ty != CONTINUATION || stream != p.stream)
        {
            // A header block must be finished before any other frame: the receiver would
            // fail the connection, and the HPACK state no longer matches.
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return Err(Invalid::UnexpectedMessage);
        }

        let fixed_len = fixed.len() as u32;
        let padded = matches!(ty, DATA | HEADERS | PUSH_PROMISE) && flags & PADDED != 0;
        let pad = if padded {
            u32::from(fixed.first().copied().unwrap_or(0))
        } else {
            0
        };
        let mut body = Body {
            flags,
            stream,
            left: len.saturating_sub(fixed_len),
            pad: 0,
            kind: BodyKind::Skip,
        };
        // Fixed fields longer than the frame, or padding longer than what follows them.
        let short = u64::from(Self::fixed_want(ty, flags)) > u64::from(len) || pad > body.left;
        if !short {
            body.left -= pad;
            body.pad = pad;
        }
        let mut bad = short;
        if short && matches!(ty, HEADERS | PUSH_PROMISE) {
            // The header block cannot be delimited; the receiver fails the connection.
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            return Err(Invalid::BadLength);
        }
        match ty {
            _ if bad => {}
            DATA => {
                if stream == 0 {
                    bad = true;
                } else {
                    body.kind = BodyKind::Data;
                }
            }
            HEADERS | PUSH_PROMISE => {
                conn.stats.header_blocks += 1;
                side.block.clear();
                side.pending = Some(Pending {
                    stream,
                    end_stream: ty == HEADERS && flags & END_STREAM != 0,
                    push: ty == PUSH_PROMISE,
                    wire: 0,
                });
                body.kind = BodyKind::Fragment;
                if ty == PUSH_PROMISE && dir == Direction::ToServer {
                    // Only servers push; still decoded to keep HPACK in step.
                    bad = true;
                }
            }
            CONTINUATION => {
                conn.stats.continuation_frames += 1;
                match side.pending.as_mut() {
                    Some(p) => {
                        // Counted by its frame header too: empty ones cannot go on forever.
                        p.wire = p.wire.saturating_add(FRAME_HEAD);
                        body.kind = BodyKind::Fragment;
                    }
                    None => bad = true,
                }
            }
            SETTINGS => {
                if stream != 0 || (flags & ACK != 0 && len != 0) || !len.is_multiple_of(6) {
                    bad = true;
                } else {
                    body.kind = BodyKind::Settings;
                }
            }
            RST_STREAM => {
                if len != 4 || stream == 0 {
                    bad = true;
                } else {
                    conn.end_stream_abruptly(stream, sink);
                }
            }
            GOAWAY => {
                if len < 8 || stream != 0 {
                    bad = true;
                } else if dir == Direction::ToClient {
                    conn.goaway(be32(fixed) & 0x7fff_ffff, sink);
                }
            }
            PRIORITY => bad = len != 5 || stream == 0,
            PING => bad = len != 8 || stream != 0,
            WINDOW_UPDATE => bad = len != 4,
            _ => conn.stats.unknown_frames += 1,
        }
        if bad {
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
            if body.kind == BodyKind::Settings || body.kind == BodyKind::Data {
                body.kind = BodyKind::Skip;
            }
        }
        if body.kind == BodyKind::Fragment
            && let Some(p) = side.pending.as_mut()
        {
            // Judged by the length announced, so the outcome does not depend on where the
            // bytes are cut: the receiver would not decode a block this large either.
            p.wire = p.wire.saturating_add(body.left as usize);
            if p.wire > MAX_BLOCK {
                conn.stats.block_too_large += 1;
                sink.anomaly(ParserAnomaly::HeaderTooLarge);
                return Err(Invalid::TooLarge);
            }
        }
        side.stage = Stage::Body(body);
        Ok(())
    }

    /// The last payload byte of a frame went past.
    fn on_frame_end(
        &mut self,
        dir: Direction,
        b: Body,
        sink: &mut dyn FactSink,
    ) -> Result<(), Invalid> {
        match b.kind {
            BodyKind::Data if b.flags & END_STREAM != 0 => {
                self.conn.end_of_stream(dir, b.stream, sink);
            }
            BodyKind::Fragment if b.flags & END_HEADERS != 0 => {
                let (side, _, conn) = self.pair(dir);
                let Some(p) = side.pending.take() else {
                    return Ok(());
                };
                decode_block(side, conn, sink)?;
                match (dir, p.push) {
                    (_, true) => {}
                    (Direction::ToServer, false) => conn.on_request(side, p, sink),
                    (Direction::ToClient, false) => conn.on_response(side, p, sink),
                }
                side.release();
            }
            _ => {}
        }
        Ok(())
    }

    fn on_setting(&mut self, dir: Direction, entry: &[u8], sink: &mut dyn FactSink) {
        let id = u16::from_be_bytes([
            entry.first().copied().unwrap_or(0),
            entry.get(1).copied().unwrap_or(0),
        ]);
        let value = be32(entry.get(2..).unwrap_or_default());
        // A setting tells the *other* side what it may send.
        let (_, other, conn) = self.pair(dir);
        match id {
            SETTINGS_HEADER_TABLE_SIZE => {
                // Lenient: take the largest advertised (a lowered size applies only after
                // the peer's ACK), capped at what we are willing to hold.
                let v = (value as usize).clamp(0, MAX_HPACK_TABLE);
                if v > other.table_allowed {
                    other.table_allowed = v;
                    other.decoder.set_max_allowed(v);
                }
            }
            SETTINGS_MAX_FRAME_SIZE => {
                if !(DEFAULT_MAX_FRAME..=MAX_FRAME_LIMIT).contains(&value) {
                    conn.stats.bad_framing += 1;
                    sink.anomaly(ParserAnomaly::BadFraming);
                } else if value > other.max_frame {
                    other.max_frame = value;
                }
            }
            _ => {}
        }
    }

    fn on_data(&mut self, dir: Direction, stream: u32, bytes: &[u8], sink: &mut dyn FactSink) {
        let conn = &mut self.conn;
        let Some(st) = conn.streams.iter_mut().find(|s| s.id == stream) else {
            return;
        };
        if !st.grpc {
            return;
        }
        let Some(f) = st.framers.get_mut(ix(dir)) else {
            return;
        };
        let ev = f.push(bytes);
        conn.stats.grpc_messages += u64::from(ev.completed);
        conn.stats.grpc_compressed_messages += u64::from(ev.compressed);
        if ev.too_large {
            conn.stats.message_too_large += 1;
            sink.anomaly(ParserAnomaly::MessageTooLarge);
        }
        if ev.bad_flag {
            conn.stats.bad_framing += 1;
            sink.anomaly(ParserAnomaly::BadFraming);
        }
    }

    /// Bytes after the frame header that a frame of this type needs together before its
    /// payload can stream (pad length, priority, promised stream, error codes).
    const fn fixed_want(ty: u8, flags: u8) -> u32 {
        let pad = (flags & PADDED != 0) as u32;
        match ty {
            DATA => pad,
            HEADERS => pad + if flags & PRIORITY_FLAG != 0 { 5 } else { 0 },
            PUSH_PROMISE => pad + 4,
            RST_STREAM => 4,
            GOAWAY => 8,
            _ => 0,
        }
    }

    /// [`Self::fixed_want`], or none for a frame too short to hold them (malformed;
    /// `on_head` reports it and skips the frame).
    fn fixed_len(ty: u8, flags: u8, len: u32) -> usize {
        let n = Self::fixed_want(ty, flags);
        if n > len { 0 } else { n as usize }
    }

    pub(super) fn run(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let mut off = 0usize;
        loop {
            let rest = data.get(off..).unwrap_or_default();
            let stage = self.side(dir).stage;
            match stage {
                Stage::Opaque => {
                    return Progress::Done {
                        consumed: data.len(),
                    };
                }
                Stage::Preface => {
                    if rest.len() < PREFACE.len() {
                        if PREFACE.starts_with(rest) {
                            return Progress::NeedMore { consumed: off };
                        }
                        self.go_opaque(sink);
                        continue;
                    }
                    if rest.get(..PREFACE.len()) == Some(&PREFACE[..]) {
                        off += PREFACE.len();
                        self.side(dir).stage = Stage::Head;
                    } else {
                        self.go_opaque(sink);
                    }
                }
                Stage::Head => {
                    if rest.is_empty() {
                        return Progress::Done { consumed: off };
                    }
                    let Some(h) = rest.get(..FRAME_HEAD) else {
                        return Progress::NeedMore { consumed: off };
                    };
                    let len = be24(h);
                    let ty = h.get(3).copied().unwrap_or(0);
                    let flags = h.get(4).copied().unwrap_or(0);
                    let need = FRAME_HEAD + Self::fixed_len(ty, flags, len);
                    let Some(head) = rest.get(..need) else {
                        return Progress::NeedMore { consumed: off };
                    };
                    if let Err(why) = self.on_head(dir, head, sink) {
                        return self.die(why);
                    }
                    off += need;
                }
                Stage::Body(mut b) => {
                    if b.left == 0 && b.pad == 0 {
                        self.side(dir).stage = Stage::Head;
                        if let Err(why) = self.on_frame_end(dir, b, sink) {
                            return self.die(why);
                        }
                        continue;
                    }
                    if rest.is_empty() {
                        return Progress::Done { consumed: off };
                    }
                    if b.left == 0 {
                        let take = rest.len().min(b.pad as usize);
                        b.pad -= take as u32;
                        off += take;
                        self.side(dir).stage = Stage::Body(b);
                        continue;
                    }
                    let take = rest.len().min(b.left as usize);
                    let chunk = rest.get(..take).unwrap_or_default();
                    match b.kind {
                        BodyKind::Skip => {}
                        BodyKind::Data => self.on_data(dir, b.stream, chunk, sink),
                        BodyKind::Fragment => {
                            // Within MAX_BLOCK: `on_head` counted the whole frame.
                            grow(&mut self.side(dir).block, chunk);
                        }
                        BodyKind::Settings => {
                            let Some(entry) = rest.get(..6) else {
                                return Progress::NeedMore { consumed: off };
                            };
                            self.on_setting(dir, entry, sink);
                            b.left -= 6;
                            off += 6;
                            self.side(dir).stage = Stage::Body(b);
                            continue;
                        }
                    }
                    b.left -= take as u32;
                    off += take;
                    self.side(dir).stage = Stage::Body(b);
                }
            }
        }
    }
}

/// Appends a fragment to the block being assembled. Grows by doubling from the fragment's
/// size, never past [`MAX_BLOCK`] (the caller checked the block fits): what an attacker can
/// make a connection hold is the bytes it sent, not a length it announced.
fn grow(block: &mut Vec<u8>, chunk: &[u8]) {
    let need = block.len().saturating_add(chunk.len());
    if need > block.capacity() {
        let want = need
            .max(block.capacity().saturating_mul(2))
            .min(MAX_BLOCK.max(need));
        block.reserve_exact(want - block.len());
    }
    block.extend_from_slice(chunk);
}
