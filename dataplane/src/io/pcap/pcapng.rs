//! pcapng (and the rare modified pcap) through pcap-parser's streaming reader: the block
//! guard in front of it, and the section state that turns blocks into packets.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::decode::LinkType;

use super::{CaptureError, CaptureFile, READ_BUFFER, RawPacket, Source};

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    offset_s: i64,
}

/// The bytes read to recognise the format, then the rest of the source: each read fills
/// as much of the caller's buffer as one read of the source would, because pcap-parser
/// decides the format from its first read.
pub(super) struct Prefixed<R> {
    pub(super) prefix: Vec<u8>,
    pub(super) at: usize,
    pub(super) inner: R,
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
    /// Reads a capture through pcap-parser (pcapng, modified pcap; classic pcap in tests).
    pub(super) fn with_parser<R: Read + Send + 'static>(
        path: &Path,
        r: R,
    ) -> Result<Self, CaptureError> {
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
}

/// What the headers seen so far say about the records that follow.
#[derive(Default)]
pub(super) struct SectionState {
    /// Legacy pcap: one interface; pcapng: the interfaces of the current section.
    interfaces: Vec<Interface>,
    legacy_nanos: bool,
}

impl SectionState {
    pub(super) fn handle_block(
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
            // A header is gathered a run of bytes at a time (its first 4 bytes say how long
            // it is): byte by byte, this walk cost the reader ~330 instructions a packet.
            // The usual case: a whole header in this read, taken in one fixed-size copy.
            if self.hdr_len == 0
                && self.pcapng == Some(true)
                && let Some(h) = bytes.get(i..i + 12)
            {
                self.hdr.copy_from_slice(h);
                self.hdr_len = if self.hdr[..4] == SHB_TYPE { 12 } else { 8 };
                i += self.hdr_len;
            }
            let Some(rest) = bytes.get(i..) else { break };
            let want = if self.hdr_len < 4 {
                4
            } else if self.hdr[..4] == SHB_TYPE {
                12
            } else {
                8
            };
            let take = (want - self.hdr_len).min(rest.len());
            if let (Some(dst), Some(src)) = (
                self.hdr.get_mut(self.hdr_len..self.hdr_len + take),
                rest.get(..take),
            ) {
                dst.copy_from_slice(src);
            }
            self.hdr_len += take;
            i += take;
            if self.hdr_len < want {
                continue;
            }
            if want == 4 {
                if self.pcapng.is_none() {
                    self.pcapng = Some(self.hdr[..4] == SHB_TYPE);
                    if self.pcapng == Some(false) {
                        return Ok(());
                    }
                }
                continue;
            }
            let is_shb = want == 12;
            let need = want;
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

pub(super) enum Outcome {
    Skip,
    Unsupported(u32),
    Packet(u64),
    Error(String),
}

pub(super) fn ts_to_ns(raw: u64, resolution: u64, offset_s: i64) -> u64 {
    let resolution = resolution.max(1);
    let secs = (raw / resolution) as i64 + offset_s;
    let frac = raw % resolution;
    // frac < resolution: in u64 up to 10^10 units per second (every common resolution),
    // where the product stays under 10^19; the u128 division is a library call.
    let frac_ns = if resolution <= 10_000_000_000 {
        frac * 1_000_000_000 / resolution
    } else {
        (u128::from(frac) * 1_000_000_000 / u128::from(resolution)) as u64
    };
    (secs.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(frac_ns)
}
