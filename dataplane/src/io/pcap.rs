//! Capture files in, packets out: classic pcap (both byte orders, micro- and nanosecond) and
//! pcapng, read with pcap-parser's streaming readers (its one-shot parser missed packets of
//! big-endian files here) through a large buffer so a replay makes few syscalls.
//!
//! Several files are merged by timestamp, as if they had been one capture.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

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
    reader: Box<dyn PcapReaderIterator + Send>,
    state: SectionState,
    /// Bytes consumed so far (for error messages).
    offset: u64,
    done: bool,
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
    pub fn from_reader<R: Read + Send + 'static>(path: &Path, r: R) -> Result<Self, CaptureError> {
        let reader = match pcap_parser::create_reader(READ_BUFFER, r) {
            Ok(r) => r,
            Err(PcapError::Eof) => {
                return Err(CaptureError::Empty {
                    path: path.to_owned(),
                });
            }
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Read {
                    path: path.to_owned(),
                    offset: 0,
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
            reader,
            state: SectionState::default(),
            offset: 0,
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        loop {
            if self.done {
                return Ok(None);
            }
            let (len, outcome) = match self.reader.next() {
                Ok((len, block)) => (len, self.state.handle_block(block, take, f)),
                Err(PcapError::Eof) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.reader_exhausted() {
                        self.done = true;
                        return Err(CaptureError::Truncated {
                            path: self.path.clone(),
                            offset: self.offset,
                        });
                    }
                    if self.reader.refill().is_err() {
                        self.done = true;
                        return Err(CaptureError::Read {
                            path: self.path.clone(),
                            offset: self.offset,
                        });
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
                    return Err(CaptureError::Read {
                        path: self.path.clone(),
                        offset: self.offset,
                    });
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
                    self.reader.consume(len);
                    self.offset += len as u64;
                }
                Outcome::Packet(ts) => {
                    if take {
                        self.reader.consume(len);
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
    fn pcapng_resolutions() {
        assert_eq!(ts_to_ns(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ts_to_ns(3, 1, 10), 13_000_000_000);
        // 2^-10 units.
        assert_eq!(ts_to_ns(1024 + 512, 1024, 0), 1_500_000_000);
    }
}
