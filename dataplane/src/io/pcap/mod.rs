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

mod classic;
mod merge;
mod pcapng;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::PcapError;
use pcap_parser::traits::PcapReaderIterator;

use crate::decode::LinkType;

pub use merge::CaptureSet;

use classic::{CLASSIC_FILE_HEADER, Classic};
use pcapng::{Outcome, Prefixed, SectionState};

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
    #[inline]
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
                // Without the shift: `consume` moves the unread half of the 1 MiB buffer to
                // its front whenever the read position passes the middle (~260 instructions
                // a packet); `refill` shifts when a block does not fit, which is enough.
                Outcome::Skip => {
                    reader.consume_noshift(len);
                    self.offset += len as u64;
                }
                Outcome::Packet(ts) => {
                    if take {
                        reader.consume_noshift(len);
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

#[cfg(test)]
mod tests {
    use super::pcapng::ts_to_ns;
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

    /// A source that returns a few bytes per read after the first (pcap-parser tells the
    /// format from its first read, as `Prefixed` arranges), so block headers straddle reads.
    struct Dribble {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl std::io::Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.step = if self.at == 0 {
                200
            } else {
                self.step % 13 + 1
            };
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn block_headers_split_across_reads_are_checked_and_passed() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/spine-eth.pcapng");
        let bytes = std::fs::read(&p).unwrap();
        let read_all = |data: Vec<u8>| {
            let src = Dribble {
                data,
                at: 0,
                step: 0,
            };
            let mut f = CaptureFile::with_parser(&p, src).unwrap();
            let mut v = Vec::new();
            let end = loop {
                match f.next_packet(&mut |p| v.push((p.ts_ns, p.data.to_vec()))) {
                    Ok(Some(_)) => {}
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                }
            };
            (v, end)
        };
        let mut whole = CaptureFile::open(&p).unwrap();
        let mut want = Vec::new();
        while whole
            .next_packet(&mut |p| want.push((p.ts_ns, p.data.to_vec())))
            .unwrap()
            .is_some()
        {}
        let (got, end) = read_all(bytes.clone());
        assert_eq!(end, None);
        assert_eq!(got, want);
        // The fifth block's length made invalid (not a multiple of 4): reported with its
        // offset however the header arrives.
        let mut at = 0usize;
        for _ in 0..4 {
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            at += len;
        }
        let mut bad = bytes.clone();
        bad[at + 4..at + 8].copy_from_slice(&30u32.to_le_bytes());
        let (got, end) = read_all(bad.clone());
        let end = end.expect("the bad block must be reported");
        assert!(
            end.contains(&format!("byte offset {at}")) && end.contains("invalid length 30"),
            "{end}"
        );
        assert!(got.len() < want.len());
        // The same file in one read (headers taken whole): the same report.
        // (A small file is read whole when opened, so the guard may refuse at once.)
        let whole_end = match CaptureFile::with_parser(&p, std::io::Cursor::new(bad)) {
            Err(e) => e.to_string(),
            Ok(mut f) => loop {
                match f.next_packet(&mut |_| {}) {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the bad block must be reported"),
                    Err(e) => break e.to_string(),
                }
            },
        };
        assert!(
            whole_end.contains(&format!("byte offset {at}"))
                && whole_end.contains("invalid length 30"),
            "{whole_end}"
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
        // Both sides of the u64 / u128 boundary, and a picosecond clock.
        assert_eq!(ts_to_ns(19_999_999_999, 10_000_000_000, 0), 1_999_999_999);
        assert_eq!(ts_to_ns(20_000_000_001, 10_000_000_001, 0), 1_999_999_999);
        assert_eq!(ts_to_ns(u64::MAX, 1 << 40, 0) % 1_000_000_000, 999_999_999);
        assert_eq!(
            ts_to_ns(3_000_000_000_123, 1_000_000_000_000, 0),
            3_000_000_000
        );
    }
}
