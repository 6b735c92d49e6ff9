//! Classic pcap walked in place: a record is a 16-byte header and the frame, read from a
//! 1 MiB buffer that is refilled only when a record would not fit.

use std::io::Read;

use crate::decode::LinkType;

use super::{CaptureError, CaptureFile, READ_BUFFER, RawPacket, Source};

/// Size of a classic pcap file header and of a record header.
pub(super) const CLASSIC_FILE_HEADER: usize = 24;
const CLASSIC_RECORD_HEADER: usize = 16;

/// A classic pcap file: its header's facts and a buffer of the bytes read ahead.
pub(super) struct Classic {
    pub(super) src: Box<dyn Read + Send>,
    /// `READ_BUFFER` bytes; `buf[start..end]` is read and not yet consumed.
    pub(super) buf: Box<[u8]>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// The source returned 0.
    pub(super) eof: bool,
    pub(super) big_endian: bool,
    pub(super) nanos: bool,
    pub(super) linktype: u32,
    /// The 24-byte file header is still at `start` (checked at the first read, so an
    /// unsupported link type is reported as the other formats report it).
    pub(super) header_pending: bool,
    /// The record at `start`, parsed by a peek: (timestamp, captured length, original length).
    pub(super) peeked: Option<(u64, usize, u32)>,
}

/// What [`Classic::record`] found at the read position.
enum ClassicRecord {
    /// A whole record is buffered: timestamp, captured and original length.
    Packet {
        ts: u64,
        caplen: usize,
        orig: u32,
    },
    End,
    Truncated,
    TooLarge,
}

impl Classic {
    /// Whether the first bytes are a classic pcap header, and its byte order and resolution.
    pub(super) fn sniff(head: &[u8]) -> Option<(bool, bool)> {
        let magic: [u8; 4] = head.get(..4)?.try_into().ok()?;
        // (big-endian, nanosecond)
        match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 => Some((false, false)),
            0xa1b2_3c4d => Some((false, true)),
            0xd4c3_b2a1 => Some((true, false)),
            0x4d3c_b2a1 => Some((true, true)),
            _ => None,
        }
    }

    pub(super) fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self
            .buf
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default();
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Makes `need` bytes available at `start` unless the file ends first (false then).
    /// Moves the unconsumed tail to the front of the buffer only when the record would
    /// not fit after it: at most one partial record per MiB is copied.
    #[inline]
    fn fill(&mut self, need: usize) -> std::io::Result<bool> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        self.refill(need)
    }

    #[cold]
    fn refill(&mut self, need: usize) -> std::io::Result<bool> {
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            if self.start + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.src.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The record at the read position, buffered whole. Remembered until it is consumed,
    /// so the merge's peek and the take that follows parse it once.
    #[inline]
    fn record(&mut self) -> std::io::Result<ClassicRecord> {
        if let Some((ts, caplen, orig)) = self.peeked {
            return Ok(ClassicRecord::Packet { ts, caplen, orig });
        }
        if !self.fill(CLASSIC_RECORD_HEADER)? {
            return Ok(if self.start == self.end {
                ClassicRecord::End
            } else {
                ClassicRecord::Truncated
            });
        }
        let header: [u8; CLASSIC_RECORD_HEADER] = self
            .buf
            .get(self.start..self.start + CLASSIC_RECORD_HEADER)
            .and_then(|h| h.try_into().ok())
            .unwrap_or_default();
        let [
            s0,
            s1,
            s2,
            s3,
            f0,
            f1,
            f2,
            f3,
            c0,
            c1,
            c2,
            c3,
            o0,
            o1,
            o2,
            o3,
        ] = header;
        let word = |b: [u8; 4]| {
            if self.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let caplen = word([c0, c1, c2, c3]) as usize;
        if caplen > self.buf.len() - CLASSIC_RECORD_HEADER {
            return Ok(ClassicRecord::TooLarge);
        }
        let sec = u64::from(word([s0, s1, s2, s3]));
        let frac = u64::from(word([f0, f1, f2, f3]));
        let orig = word([o0, o1, o2, o3]);
        if !self.fill(CLASSIC_RECORD_HEADER + caplen)? {
            return Ok(ClassicRecord::Truncated);
        }
        let frac_ns = if self.nanos { frac } else { frac * 1000 };
        let ts = sec * 1_000_000_000 + frac_ns;
        self.peeked = Some((ts, caplen, orig));
        Ok(ClassicRecord::Packet { ts, caplen, orig })
    }
}

impl CaptureFile {
    /// [`Self::advance`] for classic pcap; the caller ends the file on anything but a packet.
    /// (`#[inline]`: the per-packet path, inlined as it was before the reader's split.)
    #[inline]
    pub(super) fn advance_classic(
        &mut self,
        take: bool,
        f: &mut dyn FnMut(RawPacket<'_>),
    ) -> Result<Option<u64>, CaptureError> {
        let Source::Classic(c) = &mut self.source else {
            return Ok(None);
        };
        if c.header_pending {
            if !LinkType(c.linktype).is_supported() {
                return Err(CaptureError::UnsupportedLinkType {
                    path: self.path.clone(),
                    linktype: c.linktype,
                });
            }
            c.start += CLASSIC_FILE_HEADER;
            self.offset += CLASSIC_FILE_HEADER as u64;
            c.header_pending = false;
        }
        let record = match c.record() {
            Ok(r) => r,
            Err(_) => {
                return Err(CaptureError::Read {
                    path: self.path.clone(),
                    offset: self.offset,
                });
            }
        };
        match record {
            ClassicRecord::Packet { ts, caplen, orig } => {
                if take {
                    let from = c.start + CLASSIC_RECORD_HEADER;
                    f(RawPacket {
                        ts_ns: ts,
                        linktype: LinkType(c.linktype),
                        data: c.buf.get(from..from + caplen).unwrap_or_default(),
                        orig_len: orig,
                    });
                    c.start = from + caplen;
                    c.peeked = None;
                    self.offset += (CLASSIC_RECORD_HEADER + caplen) as u64;
                }
                Ok(Some(ts))
            }
            ClassicRecord::End => Ok(None),
            ClassicRecord::Truncated => Err(CaptureError::Truncated {
                path: self.path.clone(),
                offset: self.offset,
            }),
            ClassicRecord::TooLarge => Err(CaptureError::Corrupt {
                path: self.path.clone(),
                offset: self.offset,
                what: format!("record larger than {READ_BUFFER} bytes"),
            }),
        }
    }
}
