//! MySQL's compressed protocol (`CLIENT_COMPRESS`, zlib), undone under the packet parser.
//!
//! Compression is its own layer, below the MySQL packets and blind to them. Once the client
//! asked for `CLIENT_COMPRESS` in its handshake response, the server offered it and the
//! server's OK has ended authentication (after any auth switch or more-data rounds, which
//! travel uncompressed), every byte after that OK, in both directions, is a compressed
//! packet: a 7-byte header (3-byte little-endian payload length, a compressed sequence id,
//! 3-byte little-endian length of the payload once inflated, 0 when it was stored as is),
//! then the payload, one whole zlib stream (RFC 1950) or the stored bytes. Concatenated,
//! the inflated payloads are the ordinary packet stream: one logical packet may span several
//! compressed packets and one compressed packet may carry several logical packets. When both
//! zlib and MySQL 8's zstd (`CLIENT_ZSTD_COMPRESSION_ALGORITHM`) are negotiated, zlib is
//! used; zstd alone is not undone here and makes the flow opaque (`compressed`).
//!
//! The layer reads the wire as it arrives and inflates it in steps of [`STEP`] bytes into a
//! buffer of the direction ([`Inflater::out`]) that the packet parser reads as it reads the
//! wire uncompressed; what the packet parser leaves is the head of a packet it needs whole,
//! at most its carry limit. So a packet that inflates to 16 MiB is never held whole, and
//! the decompressor and the buffer, made once per direction, are reused for every packet.
//!
//! Fail closed: a packet must inflate to exactly the length its header announces, with
//! nothing after its zlib stream. A stream that would inflate past the announced length
//! stops there ([`ParserAnomaly::DecompressionBomb`]); one that ends short of it
//! ([`ParserAnomaly::BadFraming`]) or cannot be inflated (bad header, bad block, failed
//! checksum, cut short by the end of its packet: [`ParserAnomaly::CompressionError`]) makes
//! the parser give up (`Invalid`): what the server reads of such bytes cannot be known (a
//! MySQL server takes a stream shorter than announced at its real length, an error
//! elsewhere ends the connection), so the flow gets the policy's uninspectable decision.
//! The compressed sequence ids are not checked: a server that finds them out of order ends
//! the connection, and reading the packets anyway hides nothing it runs.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::{MAX_BUFFERED, MysqlParser, ix};
use crate::Direction;
use crate::contract::{FactSink, Invalid, ParserAnomaly, Progress};

/// Header of a compressed packet.
const HEADER: usize = 7;
/// Most bytes one compressed packet may inflate to: the largest length its 3-byte field can
/// announce (16 MiB - 1, a whole MySQL packet). The layer never holds that many: it inflates
/// in [`STEP`]s that the packet parser reads as they come.
pub const MAX_INFLATED: u32 = 0xff_ffff;
/// Bytes inflated (or copied from a stored packet) at a time before the packet parser
/// reads them.
pub const STEP: usize = 8 * 1024;
/// Most inflated bytes a direction holds: the head of a packet the parser needs whole (its
/// carry limit, [`MysqlParser::max_carry`]) and one step.
pub const MAX_HELD: usize = MAX_BUFFERED + 4 + STEP;

/// Why compressed bytes cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// The stream inflates past the length its header announced (zip bomb).
    Bomb,
    /// The stream ended short of the announced length.
    Short,
    /// Not a zlib stream, a bad block or checksum, a stream cut short by the end of its
    /// packet, or bytes after its end.
    Corrupt,
}

impl Fault {
    pub(super) const fn anomaly(self) -> ParserAnomaly {
        match self {
            Fault::Bomb => ParserAnomaly::DecompressionBomb,
            Fault::Short => ParserAnomaly::BadFraming,
            Fault::Corrupt => ParserAnomaly::CompressionError,
        }
    }

    pub(super) const fn invalid(self) -> Invalid {
        match self {
            Fault::Bomb => Invalid::TooLarge,
            Fault::Short => Invalid::BadLength,
            Fault::Corrupt => Invalid::BadSyntax,
        }
    }
}

/// The compressed packet being read.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// Payload bytes still on the wire.
    wire_left: u32,
    /// What the header says the payload inflates to (0: stored as is).
    announced: u32,
    /// Bytes inflated so far.
    produced: u32,
    /// The zlib stream ended (its checksum verified).
    ended: bool,
    /// The last inflate filled the room it was given: it may hold more output.
    full: bool,
}

/// The compression layer of one direction.
pub(super) struct Inflater {
    frame: Option<Frame>,
    /// Made at the first zlib packet (about 43 KiB: the 32 KiB window and the Huffman
    /// tables), reset for each packet after.
    zlib: Option<Box<InflateState>>,
    /// Inflated bytes the packet parser has not consumed yet (at most [`MAX_HELD`]).
    pub(super) out: Vec<u8>,
}

/// What one [`Inflater::pull`] did.
pub(super) struct Pulled {
    /// Wire bytes consumed.
    pub(super) consumed: usize,
    /// Bytes were added to [`Inflater::out`].
    pub(super) inflated: bool,
}

impl Inflater {
    pub(super) const fn new() -> Self {
        Inflater {
            frame: None,
            zlib: None,
            out: Vec::new(),
        }
    }

    /// Reads compressed packets from `wire` until it has added bytes to `out` or needs more
    /// of the wire. When nothing was added, every byte of `wire` was consumed but for the
    /// start of a header.
    pub(super) fn pull(&mut self, wire: &[u8]) -> Result<Pulled, Fault> {
        let held = self.out.len();
        let mut off = 0usize;
        loop {
            if self.out.len() > held {
                return Ok(Pulled {
                    consumed: off,
                    inflated: true,
                });
            }
            let rest = wire.get(off..).unwrap_or_default();
            let Some(mut f) = self.frame else {
                let Some(&[l0, l1, l2, _seq, u0, u1, u2]) = rest.get(..HEADER) else {
                    return Ok(Pulled {
                        consumed: off,
                        inflated: false,
                    });
                };
                off += HEADER;
                let announced = u32::from_le_bytes([u0, u1, u2, 0]);
                if announced > MAX_INFLATED {
                    // (Not reachable with a 3-byte field; the bound is written down here.)
                    return Err(Fault::Bomb);
                }
                if announced > 0 {
                    match self.zlib.as_mut() {
                        // A full reset: nothing of the previous packet's window is left
                        // for a back-reference to read.
                        Some(z) => z.reset(DataFormat::Zlib),
                        None => self.zlib = Some(Box::new(InflateState::new(DataFormat::Zlib))),
                    }
                }
                self.frame = Some(Frame {
                    wire_left: u32::from_le_bytes([l0, l1, l2, 0]),
                    announced,
                    produced: 0,
                    ended: false,
                    full: false,
                });
                continue;
            };
            let avail = rest.len().min(f.wire_left as usize);
            let input = rest.get(..avail).unwrap_or_default();
            if f.announced == 0 {
                // Stored: the payload is the packet stream itself.
                if f.wire_left == 0 {
                    self.frame = None;
                    continue;
                }
                if input.is_empty() {
                    return Ok(Pulled {
                        consumed: off,
                        inflated: false,
                    });
                }
                let n = input.len().min(STEP);
                self.out
                    .extend_from_slice(input.get(..n).unwrap_or_default());
                off += n;
                f.wire_left -= n as u32;
                self.frame = Some(f);
                continue;
            }
            if f.ended || (f.wire_left == 0 && !f.full) {
                // The packet's bytes are all read: its stream must have ended, at exactly
                // the announced length.
                self.frame = None;
                if !f.ended {
                    return Err(Fault::Corrupt);
                }
                if f.produced != f.announced {
                    return Err(Fault::Short);
                }
                continue;
            }
            if input.is_empty() && !f.full {
                return Ok(Pulled {
                    consumed: off,
                    inflated: false,
                });
            }
            let Some(z) = self.zlib.as_mut() else {
                return Err(Fault::Corrupt);
            };
            // One byte more than may still come: a stream that fills it inflates past the
            // announced length.
            let room = STEP.min(f.announced.saturating_sub(f.produced) as usize + 1);
            let at = self.out.len();
            self.out.resize(at + room, 0);
            let r = inflate(
                z,
                input,
                self.out.get_mut(at..).unwrap_or_default(),
                MZFlush::None,
            );
            let written = r.bytes_written.min(room);
            self.out.truncate(at + written);
            let used = r.bytes_consumed.min(input.len());
            off += used;
            f.wire_left -= used as u32;
            f.produced = f.produced.saturating_add(written as u32);
            f.full = written == room;
            if f.produced > f.announced {
                return Err(Fault::Bomb);
            }
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    f.ended = true;
                    if f.wire_left > 0 {
                        // Bytes after the end of the stream.
                        return Err(Fault::Corrupt);
                    }
                }
                Ok(_) if used > 0 || written > 0 => {}
                // Nothing held back after all: more input is needed.
                Ok(_) | Err(MZError::Buf) if input.is_empty() => f.full = false,
                // No progress on input it was given, or a bad stream.
                _ => return Err(Fault::Corrupt),
            }
            self.frame = Some(f);
        }
    }
}

impl MysqlParser {
    /// From the server's OK on, both directions are compressed.
    pub(super) fn start_compression(&mut self, sink: &mut dyn FactSink) {
        if self.inflaters.iter().any(Option::is_some) {
            // A COM_CHANGE_USER's OK: the connection stays compressed.
            return;
        }
        if self.skip.first().is_some_and(|&s| s > 0) || self.continuing.first() == Some(&true) {
            // The client's bytes already read stop inside a packet: the server read the
            // rest of them as compressed packets.
            sink.anomaly(ParserAnomaly::BadFraming);
        }
        self.skip = [0; 2];
        self.continuing = [false; 2];
        self.inflaters = [Some(Inflater::new()), Some(Inflater::new())];
    }

    /// Bytes of a compressed direction: inflated, then read as the packet stream.
    pub(super) fn feed_compressed(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
    ) -> Progress {
        let d = ix(dir);
        let mut off = 0usize;
        loop {
            if self.opaque {
                return Progress::Done {
                    consumed: data.len(),
                };
            }
            let Some(z) = self.inflaters.get_mut(d).and_then(Option::as_mut) else {
                return Progress::Invalid(Invalid::UnexpectedMessage);
            };
            let pulled = match z.pull(data.get(off..).unwrap_or_default()) {
                Ok(p) => p,
                Err(fault) => {
                    sink.anomaly(fault.anomaly());
                    return Progress::Invalid(fault.invalid());
                }
            };
            off += pulled.consumed;
            if !pulled.inflated {
                // All consumed but the start of a header.
                return if off >= data.len() {
                    Progress::Done { consumed: off }
                } else {
                    Progress::NeedMore { consumed: off }
                };
            }
            let mut out = std::mem::take(&mut z.out);
            let used = match self.packets(dir, &out, sink, false) {
                Progress::Invalid(why) => return Progress::Invalid(why),
                p => p.consumed(),
            };
            out.drain(..used.min(out.len()));
            let held = out.len();
            if let Some(z) = self.inflaters.get_mut(d).and_then(Option::as_mut) {
                z.out = out;
            }
            if held > MAX_HELD {
                // (The packet parser never leaves more than its carry limit.)
                sink.anomaly(ParserAnomaly::MessageTooLarge);
                return Progress::Invalid(Invalid::TooLarge);
            }
        }
    }
}
