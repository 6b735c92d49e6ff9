//! Capture files in, packets out: classic pcap (both byte orders, micro- and nanosecond) and
//! pcapng, read through a 1 MiB buffer so a replay makes one `read` per MiB, never one per
//! packet.
//!
//! Classic pcap, the format of almost every large capture, is walked here: a record is a
//! 16-byte header and the frame, so finding the next one is four loads. pcapng (and the
//! rare "modified" pcap) go through pcap-parser's streaming readers (its one-shot parser
//! missed packets of big-endian files here). Why not pcap-parser for classic pcap too:
//! behind a `Box<dyn>`, and with each record parsed twice (once to peek at its timestamp
//! for the merge, once to take it), it made the replay reader cost 945 instructions a
//! packet (callgrind, the east-west mix); with the walk here the reader costs 381, most of
//! them copying the frame into its worker's batch (benches/RESULTS.md, issue 7).
//!
//! Several files are merged by timestamp, as if they had been one capture.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::decode::LinkType;

/// Bytes buffered per file. Also the largest record we accept: pcapng blocks are at most
/// a few hundred KiB in practice (snaplen 262144).
const READ_BUFFER: usize = 1 << 20;

/// One packet record, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub linktype: LinkType,
    pub data: &'a [u8],
    /// Length on the wire (may exceed `data.len()` when the capture was truncated by snaplen).
    pub orig_len: u32,
}

/// Why a capture could not be read, with the file and byte offset, so the user knows
/// which file to fix.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open capture: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: empty file; expected a pcap or pcapng capture")]
    Empty { path: PathBuf },
    #[error(
        "{path}: not a pcap or pcapng file (unrecognised header); check the file type, e.g. with `file {path}`"
    )]
    NotACapture { path: PathBuf },
    #[error(
        "{path}: truncated at byte offset {offset}: the last record is incomplete (was the capture still being written?)"
    )]
    Truncated { path: PathBuf, offset: u64 },
    #[error("{path}: corrupt record at byte offset {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error(
        "{path}: link type {linktype} is not supported (supported: Ethernet 1 with 802.1Q/QinQ, Linux cooked SLL 113 and SLL2 276, raw IP 101/228/229, loopback 0/108); re-capture on an Ethernet or `any` interface"
    )]
    UnsupportedLinkType { path: PathBuf, linktype: u32 },
    #[error("{path}: read error at byte offset {offset}")]
    Read { path: PathBuf, offset: u64 },
}

impl CaptureError {
    /// The anomaly event a problem met while reading is reported as.
    pub fn event_name(&self) -> &'static str {
        match self {
            CaptureError::Truncated { .. } => "capture.truncated",
            CaptureError::Corrupt { .. } => "capture.corrupt",
            CaptureError::UnsupportedLinkType { .. } => "capture.unsupported_link_type",
            _ => "capture.read_error",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    offset_s: i64,
}

/// A single capture file read record by record.
pub struct CaptureFile {
    path: PathBuf,
    source: Source,
    /// Bytes consumed so far (for error messages).
    offset: u64,
    done: bool,
}

enum Source {
    /// Classic pcap, walked by [`Classic`].
    Classic(Classic),
    /// pcapng and modified pcap, through pcap-parser.
    Parser {
        reader: Box<dyn PcapReaderIterator + Send>,
        /// What the block guard refused, if it did (reported instead of a bare read error).
        guard_error: Arc<Mutex<Option<String>>>,
        state: SectionState,
    },
}

/// Size of a classic pcap file header and of a record header.
const CLASSIC_FILE_HEADER: usize = 24;
const CLASSIC_RECORD_HEADER: usize = 16;

/// A classic pcap file: its header's facts and a buffer of the bytes read ahead.
struct Classic {
    src: Box<dyn Read + Send>,
    /// `READ_BUFFER` bytes; `buf[start..end]` is read and not yet consumed.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The source returned 0.
    eof: bool,
    big_endian: bool,
    nanos: bool,
    linktype: u32,
    /// The 24-byte file header is still at `start` (checked at the first read, so an
    /// unsupported link type is reported as the other formats report it).
    header_pending: bool,
    /// The record at `start`, parsed by a peek: (timestamp, captured length, original length).
    peeked: Option<(u64, usize, u32)>,
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
    fn sniff(head: &[u8]) -> Option<(bool, bool)> {
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

    fn u32_at(&self, at: usize) -> u32 {
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

/// The bytes read to recognise the format, then the rest of the source: each read fills
/// as much of the caller's buffer as one read of the source would, because pcap-parser
/// decides the format from its first read.
struct Prefixed<R> {
    prefix: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.prefix.get(self.at..).unwrap_or_default();
        if rest.is_empty() {
            return self.inner.read(buf);
        }
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        match buf.get_mut(n..) {
            Some(more) if !more.is_empty() => match self.inner.read(more) {
                Ok(m) => Ok(n + m),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(n),
                Err(e) => Err(e),
            },
            _ => Ok(n),
        }
    }
}

impl CaptureFile {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::from_reader(path, file)
    }

    /// Reads a capture from any byte source; `path` names it in errors.
    pub fn from_reader<R: Read + Send + 'static>(
        path: &Path,
        mut r: R,
    ) -> Result<Self, CaptureError> {
        // Read enough to recognise classic pcap; anything else goes to pcap-parser with these
        // bytes put back in front.
        let mut buf = vec![0u8; READ_BUFFER].into_boxed_slice();
        let mut end = 0usize;
        while end < CLASSIC_FILE_HEADER {
            let Some(space) = buf.get_mut(end..) else {
                break;
            };
            match r.read(space) {
                Ok(0) => break,
                Ok(n) => end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return Err(CaptureError::Read {
                        path: path.to_owned(),
                        offset: 0,
                    });
                }
            }
        }
        if end >= CLASSIC_FILE_HEADER
            && let Some((big_endian, nanos)) = Classic::sniff(&buf)
        {
            let mut classic = Classic {
                src: Box::new(r),
                buf,
                start: 0,
                end,
                eof: false,
                big_endian,
                nanos,
                linktype: 0,
                header_pending: true,
                peeked: None,
            };
            classic.linktype = classic.u32_at(20);
            return Ok(CaptureFile {
                path: path.to_owned(),
                source: Source::Classic(classic),
                offset: 0,
                done: false,
            });
        }
        let prefix = buf.get(..end).unwrap_or_default().to_vec();
        drop(buf);
        Self::with_parser(
            path,
            Prefixed {
                prefix,
                at: 0,
                inner: r,
            },
        )
    }

    /// Reads a capture through pcap-parser (pcapng, modified pcap; classic pcap in tests).
    fn with_parser<R: Read + Send + 'static>(path: &Path, r: R) -> Result<Self, CaptureError> {
        let guard = BlockGuard::new(r);
        let verdict = Arc::clone(&guard.error);
        let reader = match pcap_parser::create_reader(READ_BUFFER, guard) {
            Ok(r) => r,
            Err(PcapError::Eof) => {
                return Err(CaptureError::Empty {
                    path: path.to_owned(),
                });
            }
            Err(PcapError::ReadError) => {
                return Err(match verdict.lock().ok().and_then(|g| g.clone()) {
                    Some(what) => CaptureError::Corrupt {
                        path: path.to_owned(),
                        offset: 0,
                        what,
                    },
                    None => CaptureError::Read {
                        path: path.to_owned(),
                        offset: 0,
                    },
                });
            }
            Err(_) => {
                return Err(CaptureError::NotACapture {
                    path: path.to_owned(),
                });
            }
        };
        Ok(CaptureFile {
            path: path.to_owned(),
            source: Source::Parser {
                reader,
                guard_error: verdict,
                state: SectionState::default(),
            },
            offset: 0,
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_error(&self) -> CaptureError {
        let guard_error = match &self.source {
            Source::Parser { guard_error, .. } => guard_error.lock().ok().and_then(|g| g.clone()),
            Source::Classic(_) => None,
        };
        match guard_error {
            Some(what) => CaptureError::Corrupt {
                path: self.path.clone(),
                offset: self.offset,
                what,
            },
            None => CaptureError::Read {
                path: self.path.clone(),
                offset: self.offset,
            },
        }
    }

    /// Timestamp of the next packet without consuming it; `None` at the end.
    pub fn peek_ts(&mut self) -> Result<Option<u64>, CaptureError> {
        self.advance(false, &mut |_| {})
    }

    /// Hands the next packet to `f` and consumes it. Returns its timestamp, `None` at the end.
    pub fn next_packet(
        &mut self,
        f: &mut dyn FnMut(RawPacket<'_>),
    ) -> Result<Option<u64>, CaptureError> {
        self.advance(true, f)
    }

    /// Skips header and metadata blocks, stops at the next packet record. The packet is only
    /// consumed when `take` is set; peeking re-parses the same record on the next call, which
    /// costs a header decode and no copy.
    fn advance(
        &mut self,
        take: bool,
        f: &mut dyn FnMut(RawPacket<'_>),
    ) -> Result<Option<u64>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        if matches!(self.source, Source::Classic(_)) {
            let r = self.advance_classic(take, f);
            if !matches!(r, Ok(Some(_))) {
                self.done = true;
            }
            return r;
        }
        let Source::Parser {
            reader,
            guard_error: _,
            state,
        } = &mut self.source
        else {
            return Ok(None);
        };
        loop {
            if self.done {
                return Ok(None);
            }
            let (len, outcome) = match reader.next() {
                Ok((len, block)) => (len, state.handle_block(block, take, f)),
                Err(PcapError::Eof) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(PcapError::Incomplete(_)) => {
                    if reader.reader_exhausted() {
                        self.done = true;
                        return Err(CaptureError::Truncated {
                            path: self.path.clone(),
                            offset: self.offset,
                        });
                    }
                    if reader.refill().is_err() {
                        self.done = true;
                        return Err(self.read_error());
                    }
                    continue;
                }
                Err(PcapError::UnexpectedEof) => {
                    self.done = true;
                    return Err(CaptureError::Truncated {
                        path: self.path.clone(),
                        offset: self.offset,
                    });
                }
                Err(PcapError::BufferTooSmall) => {
                    self.done = true;
                    return Err(CaptureError::Corrupt {
                        path: self.path.clone(),
                        offset: self.offset,
                        what: format!("record larger than {READ_BUFFER} bytes"),
                    });
                }
                Err(PcapError::ReadError) => {
                    self.done = true;
                    return Err(self.read_error());
                }
                Err(e) => {
                    self.done = true;
                    return Err(CaptureError::Corrupt {
                        path: self.path.clone(),
                        offset: self.offset,
                        what: format!("{e:?}").chars().take(120).collect(),
                    });
                }
            };
            match outcome {
                Outcome::Skip => {
                    reader.consume(len);
                    self.offset += len as u64;
                }
                Outcome::Packet(ts) => {
                    if take {
                        reader.consume(len);
                        self.offset += len as u64;
                    }
                    return Ok(Some(ts));
                }
                Outcome::Unsupported(linktype) => {
                    self.done = true;
                    return Err(CaptureError::UnsupportedLinkType {
                        path: self.path.clone(),
                        linktype,
                    });
                }
                Outcome::Error(what) => {
                    self.done = true;
                    return Err(CaptureError::Corrupt {
                        path: self.path.clone(),
                        offset: self.offset,
                        what,
                    });
                }
            }
        }
    }
}

impl CaptureFile {
    /// [`Self::advance`] for classic pcap; the caller ends the file on anything but a packet.
    fn advance_classic(
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

/// What the headers seen so far say about the records that follow.
#[derive(Default)]
struct SectionState {
    /// Legacy pcap: one interface; pcapng: the interfaces of the current section.
    interfaces: Vec<Interface>,
    legacy_nanos: bool,
}

impl SectionState {
    fn handle_block(
        &mut self,
        block: PcapBlockOwned<'_>,
        take: bool,
        f: &mut dyn FnMut(RawPacket<'_>),
    ) -> Outcome {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                if !LinkType(h.network.0 as u32).is_supported() {
                    return Outcome::Unsupported(h.network.0 as u32);
                }
                self.legacy_nanos = h.is_nanosecond_precision();
                self.interfaces.clear();
                self.interfaces.push(Interface {
                    linktype: LinkType(h.network.0 as u32),
                    resolution: if self.legacy_nanos {
                        1_000_000_000
                    } else {
                        1_000_000
                    },
                    offset_s: 0,
                });
                Outcome::Skip
            }
            PcapBlockOwned::Legacy(b) => {
                let Some(iface) = self.interfaces.first().copied() else {
                    return Outcome::Error("packet record before the file header".into());
                };
                let frac_ns = if self.legacy_nanos {
                    u64::from(b.ts_usec)
                } else {
                    u64::from(b.ts_usec) * 1000
                };
                let ts = u64::from(b.ts_sec) * 1_000_000_000 + frac_ns;
                if take {
                    let caplen = (b.caplen as usize).min(b.data.len());
                    f(RawPacket {
                        ts_ns: ts,
                        linktype: iface.linktype,
                        data: b.data.get(..caplen).unwrap_or(b.data),
                        orig_len: b.origlen,
                    });
                }
                Outcome::Packet(ts)
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                self.interfaces.clear();
                Outcome::Skip
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                if !LinkType(idb.linktype.0 as u32).is_supported() {
                    return Outcome::Unsupported(idb.linktype.0 as u32);
                }
                let Some(resolution) = idb.ts_resolution() else {
                    return Outcome::Error(format!(
                        "interface {} has an invalid timestamp resolution",
                        self.interfaces.len()
                    ));
                };
                self.interfaces.push(Interface {
                    linktype: LinkType(idb.linktype.0 as u32),
                    resolution,
                    offset_s: idb.ts_offset(),
                });
                Outcome::Skip
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(iface) = self.interfaces.get(epb.if_id as usize).copied() else {
                    return Outcome::Error(format!(
                        "packet names interface {} but the section declares {}",
                        epb.if_id,
                        self.interfaces.len()
                    ));
                };
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ts = ts_to_ns(raw, iface.resolution, iface.offset_s);
                if take {
                    let caplen = (epb.caplen as usize).min(epb.data.len());
                    f(RawPacket {
                        ts_ns: ts,
                        linktype: iface.linktype,
                        data: epb.data.get(..caplen).unwrap_or(epb.data),
                        orig_len: epb.origlen,
                    });
                }
                Outcome::Packet(ts)
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // Simple packets carry no timestamp: they take the previous one's order (0 here
                // sorts them first in a merge, which is the best a reader can do).
                let Some(iface) = self.interfaces.first().copied() else {
                    return Outcome::Error("simple packet block before any interface".into());
                };
                if take {
                    let caplen = (spb.origlen as usize).min(spb.data.len());
                    f(RawPacket {
                        ts_ns: 0,
                        linktype: iface.linktype,
                        data: spb.data.get(..caplen).unwrap_or(spb.data),
                        orig_len: spb.origlen,
                    });
                }
                Outcome::Packet(0)
            }
            PcapBlockOwned::NG(_) => Outcome::Skip,
        }
    }
}

/// Checks every pcapng block's length as the bytes stream past, before pcap-parser sees
/// them: pcap-parser 0.17 trusts a block length below 12 for some block types and
/// underflows (`block_len1 - 12`, a panic in debug builds, a bogus "record too large" in
/// release). A block shorter than its own frame, or not a multiple of 4 as the format
/// requires, ends the file as corrupt. Classic pcap passes through untouched.
struct BlockGuard<R> {
    inner: R,
    /// Bytes of the current block still to pass; 0 at a block boundary.
    left_in_block: u64,
    /// Header bytes of the next block gathered so far (type, length, and for a section
    /// header its byte-order magic, which tells the length's byte order).
    hdr: [u8; 12],
    hdr_len: usize,
    big_endian: bool,
    /// None until the first 4 bytes say pcapng (Some(true)) or not.
    pcapng: Option<bool>,
    offset: u64,
    error: Arc<Mutex<Option<String>>>,
}

const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl<R: Read> BlockGuard<R> {
    fn new(inner: R) -> Self {
        BlockGuard {
            inner,
            left_in_block: 0,
            hdr: [0; 12],
            hdr_len: 0,
            big_endian: false,
            pcapng: None,
            offset: 0,
            error: Arc::new(Mutex::new(None)),
        }
    }

    fn fail(&self, what: String) -> std::io::Error {
        if let Ok(mut e) = self.error.lock() {
            *e = Some(what.clone());
        }
        std::io::Error::new(std::io::ErrorKind::InvalidData, what)
    }

    /// Walks `bytes` (just read), validating each block header met.
    fn check(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut i = 0usize;
        while i < bytes.len() {
            if self.left_in_block > 0 {
                let step = (self.left_in_block.min((bytes.len() - i) as u64)) as usize;
                self.left_in_block -= step as u64;
                i += step;
                continue;
            }
            let Some(&b) = bytes.get(i) else { break };
            if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                *slot = b;
            }
            self.hdr_len += 1;
            i += 1;
            if self.pcapng.is_none() && self.hdr_len == 4 {
                self.pcapng = Some(self.hdr[..4] == SHB_TYPE);
                if self.pcapng == Some(false) {
                    return Ok(());
                }
            }
            let is_shb = self.hdr[..4.min(self.hdr_len)] == SHB_TYPE[..4.min(self.hdr_len)];
            let need = if is_shb { 12 } else { 8 };
            if self.hdr_len < need {
                continue;
            }
            let start = self.offset + i as u64 - need as u64;
            if is_shb {
                let bom = [self.hdr[8], self.hdr[9], self.hdr[10], self.hdr[11]];
                self.big_endian = match bom {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => {
                        return Err(self.fail(format!(
                            "section header at byte offset {start} has no byte-order magic"
                        )));
                    }
                };
            }
            let raw = [self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]];
            let len = if self.big_endian {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            };
            if len < 12 || len % 4 != 0 {
                return Err(self.fail(format!(
                    "pcapng block at byte offset {start} has an invalid length {len} (at least 12, a multiple of 4)"
                )));
            }
            self.left_in_block = u64::from(len) - need as u64;
            self.hdr_len = 0;
        }
        Ok(())
    }
}

impl<R: Read> Read for BlockGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.pcapng != Some(false) {
            self.check(buf.get(..n).unwrap_or_default())?;
        }
        self.offset += n as u64;
        Ok(n)
    }
}

enum Outcome {
    Skip,
    Unsupported(u32),
    Packet(u64),
    Error(String),
}

fn ts_to_ns(raw: u64, resolution: u64, offset_s: i64) -> u64 {
    let resolution = resolution.max(1);
    let secs = (raw / resolution) as i64 + offset_s;
    let frac = raw % resolution;
    let frac_ns = (u128::from(frac) * 1_000_000_000 / u128::from(resolution)) as u64;
    (secs.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(frac_ns)
}

/// Several capture files read as one, in timestamp order (a k-way merge on each file's next
/// timestamp; ties go to the file named first).
pub struct CaptureSet {
    files: Vec<CaptureFile>,
    heads: Vec<Option<u64>>,
    primed: bool,
    /// Errors met so far; the set keeps reading the other files.
    pub errors: Vec<CaptureError>,
}

impl CaptureSet {
    /// Opens every file up front, so a missing file fails before any packet is processed.
    pub fn open(paths: &[PathBuf]) -> Result<Self, CaptureError> {
        let files = paths
            .iter()
            .map(|p| CaptureFile::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut set = Self::from_files(files);
        // Read every file's header now, so a file that is not a usable capture fails before
        // any packet is judged.
        set.prime();
        match set.errors.pop() {
            Some(e) => Err(e),
            None => Ok(set),
        }
    }

    fn prime(&mut self) {
        if !self.primed {
            for i in 0..self.files.len() {
                self.refresh(i);
            }
            self.primed = true;
        }
    }

    pub fn from_files(files: Vec<CaptureFile>) -> Self {
        let n = files.len();
        CaptureSet {
            files,
            heads: vec![None; n],
            primed: false,
            errors: Vec::new(),
        }
    }

    fn refresh(&mut self, i: usize) {
        let Some(file) = self.files.get_mut(i) else {
            return;
        };
        let head = match file.peek_ts() {
            Ok(ts) => ts,
            Err(e) => {
                self.errors.push(e);
                None
            }
        };
        if let Some(h) = self.heads.get_mut(i) {
            *h = head;
        }
    }

    /// Hands the next packet (in timestamp order across files) to `f`; false at the end.
    pub fn next_packet(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> bool {
        self.prime();
        let mut best: Option<(usize, u64)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(ts) = *h
                && best.is_none_or(|(_, b)| ts < b)
            {
                best = Some((i, ts));
            }
        }
        let Some((i, _)) = best else {
            return false;
        };
        if let Some(file) = self.files.get_mut(i)
            && let Err(e) = file.next_packet(f)
        {
            self.errors.push(e);
        }
        self.refresh(i);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pcapng_blocks_are_corrupt_not_a_panic() {
        use base64::Engine;
        // Found by the pcap_reader fuzz target: a section header, then a process
        // information block claiming 8 bytes.
        let data = base64::engine::general_purpose::STANDARD
            .decode("Cg0NChwAAABNPCsaAQAAAP//////////HAAAAAEAAIAIAAAAAAAAAAAAAAA=")
            .unwrap();
        // Small files are read whole when opened, so the guard may refuse at once.
        let opened =
            CaptureFile::from_reader(Path::new("short.pcapng"), std::io::Cursor::new(data));
        let err = match opened {
            Err(e) => e,
            Ok(mut f) => loop {
                match f.next_packet(&mut |_| {}) {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the bad block must be reported"),
                    Err(e) => break e,
                }
            },
        };
        let msg = err.to_string();
        assert!(
            msg.contains("short.pcapng") && msg.contains("invalid length 8"),
            "{msg}"
        );
    }

    #[test]
    fn the_guard_passes_real_captures_through() {
        for name in ["spine-eth.pcapng", "spine-eth.pcap", "spine-eth-be.pcap"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data")
                .join(name);
            let mut f = CaptureFile::open(&p).unwrap();
            let mut n = 0;
            while f.next_packet(&mut |_| n += 1).unwrap().is_some() {}
            assert_eq!(n, 80, "{name}");
        }
    }

    /// Every packet of every recorded classic pcap, read by the walk here and by
    /// pcap-parser: the same timestamps, link types, bytes and original lengths.
    #[test]
    fn the_classic_walk_reads_what_pcap_parser_reads() {
        type Rec = (u64, u32, Vec<u8>, u32);
        fn all(mut f: CaptureFile) -> (Vec<Rec>, Option<String>) {
            let mut v = Vec::new();
            loop {
                match f.next_packet(&mut |p| {
                    v.push((p.ts_ns, p.linktype.0, p.data.to_vec(), p.orig_len))
                }) {
                    Ok(Some(_)) => {}
                    Ok(None) => return (v, None),
                    Err(e) => return (v, Some(e.to_string())),
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
        let mut dirs = vec![root];
        let mut files = 0;
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "pcap") {
                    continue;
                }
                let walk = CaptureFile::open(&p).unwrap();
                assert!(matches!(walk.source, Source::Classic(_)), "{}", p.display());
                let parser = CaptureFile::with_parser(&p, File::open(&p).unwrap()).unwrap();
                let (a, b) = (all(walk), all(parser));
                assert!(!a.0.is_empty(), "{}", p.display());
                assert_eq!(a, b, "{}", p.display());
                // Cut in a record: both report the truncation after the same packets.
                let bytes = std::fs::read(&p).unwrap();
                let cut = bytes[..bytes.len() - 7].to_vec();
                let walk = CaptureFile::from_reader(&p, std::io::Cursor::new(cut.clone()));
                let parser = CaptureFile::with_parser(&p, std::io::Cursor::new(cut));
                let (a, b) = (all(walk.unwrap()), all(parser.unwrap()));
                assert_eq!(a.0, b.0, "{}", p.display());
                assert!(a.1.unwrap().contains("truncated"), "{}", p.display());
                files += 1;
            }
        }
        assert!(files >= 10, "{files}");
    }

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(ts_to_ns(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ts_to_ns(3, 1, 10), 13_000_000_000);
        // 2^-10 units.
        assert_eq!(ts_to_ns(1024 + 512, 1024, 0), 1_500_000_000);
    }
}
