//! Flow capture for forensics: rules with `capture: true` keep the packets of the flows they
//! match in pcap files under `--capture-dir`, one file per flow, named
//! `<flow id>-<rule id>.pcap`, and every alert of the flow names its file.
//!
//! PRODUCT.md asks for the flow's packets "including the ones before the match", but a
//! transaction's rule matches mid-flow. So a flow that some capturing rule covers at L4 (the
//! flow decision's `capture` bit: the rule may still match one of its transactions) is
//! *held*: its packets are copied into a bounded per-flow ring (the pre-match ring) from the
//! first one on. When a decision that captures is reached, the file is created, the held
//! packets are written and every later packet of the flow follows. A held flow that ends
//! without a capturing decision is dropped from memory. Flows no capturing rule covers cost
//! nothing.
//!
//! Limits, each with a counter ([`CaptureCounters`]): packets and bytes held per flow
//! (`--capture-prematch-packets`, `--capture-prematch-bytes`) and bytes held per worker: a
//! ring over its bound drops its oldest packets, so a flow captured later has the packets
//! just before the match (the file then starts mid-flow); capture files open at once per
//! worker (a flow over it is not captured); bytes written per file (the rest of the flow is
//! left out); and the directory's bounds (`--capture-max-files`, `--capture-max-bytes`, see
//! [`store`]), kept by removing the oldest files. A file that cannot be created or written
//! is counted and the flow goes on uncaptured: capture never changes a verdict.
//!
//! Files are classic pcap, little-endian with nanosecond timestamps, with the link type of
//! the flow's first packet; packets of another link type (a replay merging captures of
//! different kinds) are counted and left out. The format is written here (a 24-byte header,
//! 16 bytes before each packet) rather than with `pcap-file`'s `PcapWriter`, which hides its
//! inner writer: a live daemon must flush each file after every packet so the captures of
//! open flows can be read, and that needs the `BufWriter`.

mod start;
pub mod store;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::decode::LinkType;
use crate::events::Event;

pub use store::{CaptureEntry, CaptureStore, DirBounds, INDEX_MAX, Removals, is_capture_name};

/// Bytes one held flow keeps before a capturing decision, by default.
pub const PREMATCH_BYTES: usize = 256 << 10;
/// Packets one held flow keeps before a capturing decision, by default.
pub const PREMATCH_PACKETS: usize = 4096;

/// Where and how much to capture (`--capture-dir` and its bounds).
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    pub dir: PathBuf,
    /// Bytes of packets one held flow keeps before a capturing decision (its pre-match
    /// ring; `--capture-prematch-bytes`).
    pub hold_per_flow: usize,
    /// Packets one held flow keeps before a capturing decision (`--capture-prematch-packets`;
    /// 0: nothing is held, a file starts at the match).
    pub hold_packets: usize,
    /// Bytes held by all flows of one worker.
    pub hold_total: usize,
    /// Capture files one worker keeps open at once.
    pub max_open: usize,
    /// Bytes of packets written to one file; the rest of its flow is left out.
    pub max_file_bytes: u64,
    /// Flush each file after every packet written, so a running daemon's captures can be
    /// read while their flows go on (live sources); replay flushes when a flow ends.
    pub flush_each_packet: bool,
    /// The directory's index and bounds, shared by every worker.
    pub store: Arc<CaptureStore>,
}

impl CaptureConfig {
    /// Capture to `dir` without bounds, not looking at what the directory holds.
    pub fn new(dir: PathBuf) -> Self {
        CaptureConfig {
            store: Arc::new(CaptureStore::new(dir.clone(), DirBounds::default())),
            dir,
            hold_per_flow: PREMATCH_BYTES,
            hold_packets: PREMATCH_PACKETS,
            hold_total: 32 << 20,
            max_open: 256,
            max_file_bytes: 64 << 20,
            flush_each_packet: false,
        }
    }

    /// Capture to `dir` within `bounds`, the capture files already there indexed (they
    /// count toward the bounds). A single file never passes the byte bound.
    pub fn open(dir: PathBuf, bounds: DirBounds) -> std::io::Result<Self> {
        let store = Arc::new(CaptureStore::open(dir.clone(), bounds)?);
        let mut c = CaptureConfig::new(dir);
        if let Some(max) = bounds.max_bytes {
            c.max_file_bytes = c.max_file_bytes.min(max);
        }
        c.store = store;
        Ok(c)
    }
}

/// What capture did, per worker (summed in the summary and the metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureCounters {
    /// Capture files created.
    pub files: u64,
    /// Packets and bytes of packets written.
    pub packets: u64,
    pub bytes: u64,
    /// Flows held because a capturing rule covered them.
    pub held_flows: u64,
    /// Held flows whose pre-match ring overflowed (the per-flow or per-worker bound): they
    /// lost their oldest held packets.
    pub hold_limit: u64,
    /// Held packets dropped from pre-match rings.
    pub hold_dropped: u64,
    /// Flows not captured because the open-file limit was reached.
    pub open_limit: u64,
    /// Files that reached the per-file byte limit, or the directory's byte bound with no
    /// older file left to remove.
    pub truncated: u64,
    /// Packets left out for a link type other than the file's.
    pub other_linktype: u64,
    /// Files that could not be created or written (or removed).
    pub errors: u64,
    /// Capture files removed (with their sidecars) to keep the directory within its
    /// bounds, and their bytes.
    pub removed: u64,
    pub removed_bytes: u64,
    /// New files that found the directory at `--capture-max-files`.
    pub dir_files_limit: u64,
    /// Writes that found the directory at `--capture-max-bytes`.
    pub dir_bytes_limit: u64,
    /// Files removed while their flow was still being written (closed at its next packet).
    pub removed_open: u64,
}

impl CaptureCounters {
    pub fn merge(&mut self, o: &CaptureCounters) {
        self.files += o.files;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.held_flows += o.held_flows;
        self.hold_limit += o.hold_limit;
        self.hold_dropped += o.hold_dropped;
        self.open_limit += o.open_limit;
        self.truncated += o.truncated;
        self.other_linktype += o.other_linktype;
        self.errors += o.errors;
        self.removed += o.removed;
        self.removed_bytes += o.removed_bytes;
        self.dir_files_limit += o.dir_files_limit;
        self.dir_bytes_limit += o.dir_bytes_limit;
        self.removed_open += o.removed_open;
    }

    fn add(&mut self, r: &Removals) {
        self.removed += r.files;
        self.removed_bytes += r.bytes;
        self.dir_files_limit += r.files_limit;
        self.dir_bytes_limit += r.bytes_limit;
        self.errors += r.errors;
    }
}

/// One held packet: (timestamp ns, original length, length of its bytes in the ring).
type HeldRec = (u64, u32, u32);

/// A flow's capture state.
pub enum FlowCapture {
    /// Covered by a capturing rule, none has decided yet: its latest packets, oldest first.
    Holding {
        linktype: Option<LinkType>,
        data: VecDeque<u8>,
        recs: VecDeque<HeldRec>,
        /// The ring has dropped packets (counted once per flow).
        overflowed: bool,
    },
    /// Being written to `path`.
    Writing {
        path: String,
        entry: Arc<CaptureEntry>,
        linktype: Option<LinkType>,
        w: Option<BufWriter<File>>,
        bytes: u64,
    },
    /// Its file failed or the open-file limit was reached: nothing more is kept.
    Off,
}

impl FlowCapture {
    /// The file this flow is written to, for events.
    pub fn file(&self) -> Option<&str> {
        match self {
            FlowCapture::Writing { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// One worker's capture files and limits.
pub struct Captures {
    cfg: CaptureConfig,
    held: usize,
    open: usize,
    pub counters: CaptureCounters,
}

/// Characters a rule id keeps in a file name; others become `_`.
fn file_safe(c: char) -> char {
    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
        c
    } else {
        '_'
    }
}

/// Bytes a packet takes in a pcap file: its record header and its bytes.
const REC_HEAD: u64 = 16;

impl Captures {
    pub fn new(cfg: CaptureConfig) -> Self {
        Captures {
            cfg,
            held: 0,
            open: 0,
            counters: CaptureCounters::default(),
        }
    }

    /// The directory's index, shared with the other workers.
    pub fn store(&self) -> &Arc<CaptureStore> {
        &self.cfg.store
    }

    /// A new state for a flow a capturing rule covers: hold its packets.
    pub fn hold(&mut self) -> Box<FlowCapture> {
        self.counters.held_flows += 1;
        Box::new(FlowCapture::Holding {
            linktype: None,
            data: VecDeque::new(),
            recs: VecDeque::new(),
            overflowed: false,
        })
    }

    /// One packet of a flow with a capture state.
    pub fn packet(
        &mut self,
        fc: &mut FlowCapture,
        ts_ns: u64,
        linktype: LinkType,
        frame: &[u8],
        orig_len: u32,
    ) {
        match fc {
            FlowCapture::Holding {
                linktype: lt,
                data,
                recs,
                overflowed,
            } => {
                if *lt.get_or_insert(linktype) != linktype {
                    self.counters.other_linktype += 1;
                    return;
                }
                let n = frame.len();
                let (per_flow, packets, total) = (
                    self.cfg.hold_per_flow,
                    self.cfg.hold_packets,
                    self.cfg.hold_total,
                );
                let full = |data: &VecDeque<u8>, recs: &VecDeque<HeldRec>, held: usize| {
                    data.len() + n > per_flow || recs.len() + 1 > packets || held + n > total
                };
                let mut dropped = 0u64;
                // The ring: the oldest held packets make room for this one.
                while full(data, recs, self.held) {
                    let Some((_, _, k)) = recs.pop_front() else {
                        break;
                    };
                    let k = (k as usize).min(data.len());
                    data.drain(..k);
                    self.held -= k;
                    dropped += 1;
                }
                let fits = !full(data, recs, self.held);
                if !fits {
                    // Larger than the ring, or the worker's hold is taken by other flows.
                    dropped += 1;
                }
                if dropped > 0 {
                    self.counters.hold_dropped += dropped;
                    if !std::mem::replace(overflowed, true) {
                        self.counters.hold_limit += 1;
                    }
                }
                if fits {
                    data.extend(frame);
                    recs.push_back((ts_ns, orig_len, n as u32));
                    self.held += n;
                }
            }
            FlowCapture::Writing {
                linktype: lt,
                entry,
                w,
                bytes,
                ..
            } => {
                if *lt.get_or_insert(linktype) != linktype {
                    self.counters.other_linktype += 1;
                    return;
                }
                self.write(entry, w, bytes, ts_ns, frame, orig_len);
            }
            FlowCapture::Off => {}
        }
    }

    fn write(
        &mut self,
        entry: &CaptureEntry,
        w: &mut Option<BufWriter<File>>,
        bytes: &mut u64,
        ts_ns: u64,
        frame: &[u8],
        orig_len: u32,
    ) {
        let Some(writer) = w.as_mut() else { return };
        if entry.is_removed() {
            // Another file's growth or creation removed this one to keep the directory
            // within its bounds (counted there).
            self.counters.removed_open += 1;
            self.close(entry, w);
            return;
        }
        if *bytes + frame.len() as u64 > self.cfg.max_file_bytes {
            self.counters.truncated += 1;
            self.close(entry, w);
            return;
        }
        let mut r = Removals::default();
        let room = self
            .cfg
            .store
            .grow(entry, REC_HEAD + frame.len() as u64, &mut r);
        self.counters.add(&r);
        if !room {
            if entry.is_removed() {
                self.counters.removed_open += 1;
            } else {
                self.counters.truncated += 1;
            }
            self.close(entry, w);
            return;
        }
        let t = Duration::from_nanos(ts_ns);
        let mut head = [0u8; 16];
        for (chunk, v) in head.chunks_exact_mut(4).zip([
            t.as_secs() as u32,
            t.subsec_nanos(),
            frame.len() as u32,
            orig_len.max(frame.len() as u32),
        ]) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        match writer
            .write_all(&head)
            .and_then(|()| writer.write_all(frame))
        {
            Ok(()) => {
                *bytes += frame.len() as u64;
                self.counters.packets += 1;
                self.counters.bytes += frame.len() as u64;
                if self.cfg.flush_each_packet && writer.flush().is_err() {
                    self.counters.errors += 1;
                    self.close(entry, w);
                }
            }
            Err(_) => {
                self.counters.errors += 1;
                self.close(entry, w);
            }
        }
    }

    /// Flushes and closes a file (errors counted).
    fn close(&mut self, entry: &CaptureEntry, w: &mut Option<BufWriter<File>>) {
        if let Some(writer) = w.take() {
            self.open -= 1;
            self.cfg.store.close(entry);
            if writer.into_inner().is_err() {
                self.counters.errors += 1;
            }
        }
    }

    /// A decision that captures was reached for flow `flow_id` by rule `rule`: create its
    /// file and write what was held. Nothing happens to a flow already written or given up.
    pub fn start(
        &mut self,
        fc: &mut Option<Box<FlowCapture>>,
        flow_id: u64,
        rule: &str,
        linktype: LinkType,
    ) {
        // The file's link type is the held packets' (else this packet's).
        let (lt, mut data, recs) = match fc.as_deref_mut() {
            Some(FlowCapture::Writing { .. } | FlowCapture::Off) => return,
            Some(FlowCapture::Holding {
                linktype: held,
                data,
                recs,
                ..
            }) => (
                held.unwrap_or(linktype),
                std::mem::take(data),
                std::mem::take(recs),
            ),
            None => (linktype, VecDeque::new(), VecDeque::new()),
        };
        self.held -= data.len();
        if self.open >= self.cfg.max_open {
            self.counters.open_limit += 1;
            *fc = Some(Box::new(FlowCapture::Off));
            return;
        }
        let name: String = rule.chars().map(file_safe).collect();
        let mut r = Removals::default();
        let created = self.cfg.store.create(flow_id, rule, &name, &mut r);
        self.counters.add(&r);
        let (entry, file) = match created {
            Ok(x) => x,
            Err(_) => {
                self.counters.errors += 1;
                *fc = Some(Box::new(FlowCapture::Off));
                return;
            }
        };
        let path = self.cfg.dir.join(&entry.name);
        let mut out = BufWriter::with_capacity(64 << 10, file);
        let header = pcap_header(lt);
        let mut r = Removals::default();
        let room = self.cfg.store.grow(&entry, header.len() as u64, &mut r);
        self.counters.add(&r);
        let mut w = match room.then(|| out.write_all(&header)) {
            Some(Ok(())) => Some(out),
            _ => {
                // No room for even a header: the empty file goes (it is still indexed and
                // taken out with the next removal otherwise).
                self.counters.errors += 1;
                self.cfg.store.close(&entry);
                *fc = Some(Box::new(FlowCapture::Off));
                return;
            }
        };
        self.open += 1;
        self.counters.files += 1;
        let mut bytes = 0u64;
        let mut at = 0usize;
        let data = data.make_contiguous();
        for (ts, orig, n) in recs {
            let end = at + n as usize;
            if let Some(frame) = data.get(at..end) {
                self.write(&entry, &mut w, &mut bytes, ts, frame, orig);
            }
            at = end;
        }
        *fc = Some(Box::new(FlowCapture::Writing {
            path: path.to_string_lossy().into_owned(),
            entry,
            linktype: Some(lt),
            w,
            bytes,
        }));
    }

    /// An event about a flow was written: the first alert naming its file (else its `flow`
    /// record, for a flow captured without an alert) is the file's sidecar, so
    /// `palisadectl captures` (even after a restart) says which alert the file belongs to.
    pub fn note_event(&mut self, fc: Option<&FlowCapture>, e: &Event<'_>) {
        let Some(FlowCapture::Writing { entry, .. }) = fc else {
            return;
        };
        if entry.sidecar().is_some() || !matches!(e.event_type, "alert" | "flow") {
            return;
        }
        let v = sidecar_value(entry, e);
        let mut r = Removals::default();
        let written = self.cfg.store.write_sidecar(entry, v, &mut r);
        self.counters.add(&r);
        if written.is_err() {
            self.counters.errors += 1;
        }
    }

    /// The flow ended: close its file or forget what it held.
    pub fn end(&mut self, fc: Option<Box<FlowCapture>>) {
        match fc.map(|b| *b) {
            Some(FlowCapture::Holding { data, .. }) => self.held -= data.len(),
            Some(FlowCapture::Writing { entry, mut w, .. }) => {
                self.close(&entry, &mut w);
                self.cfg.store.close(&entry);
            }
            Some(FlowCapture::Off) | None => {}
        }
    }

    /// Bytes held now (for tests and status).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Files open now.
    pub fn open_files(&self) -> usize {
        self.open
    }
}

/// Keys of an event a sidecar keeps: who talked to whom, and the alert.
const SIDECAR_KEYS: [&str; 15] = [
    "timestamp",
    "flow_id",
    "event_type",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "proto",
    "app_proto",
    "community_id",
    "src_workload",
    "dest_workload",
    "alert",
    "policy_verdict",
    "capture_file",
];

/// A sidecar: the file, its capturing rule, and the event's identity and alert as eve.json
/// has them.
fn sidecar_value(entry: &CaptureEntry, e: &Event<'_>) -> Value {
    let mut m = Map::new();
    m.insert("file".into(), Value::from(entry.name.as_str()));
    m.insert("capture_rule".into(), Value::from(entry.rule.as_str()));
    if let Ok(Value::Object(ev)) = serde_json::to_value(e) {
        for k in SIDECAR_KEYS {
            if let Some(v) = ev.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
    }
    Value::Object(m)
}

/// Writes the sidecar of a flow's capture file, if it has one and the event is its first
/// alert (or its `flow` record). A function of the fields, not of the worker, so callers
/// holding a flow borrowed from the table can call it.
pub(crate) fn note_event(captures: &mut Option<Captures>, fc: Option<&FlowCapture>, e: &Event<'_>) {
    if let Some(c) = captures.as_mut() {
        c.note_event(fc, e);
    }
}
/// The pcap file header: nanosecond magic, version 2.4, no zone, snap length 256 KiB.
fn pcap_header(lt: LinkType) -> [u8; 24] {
    let mut h = [0u8; 24];
    let fields: [&[u8]; 7] = [
        &0xa1b2_3c4du32.to_le_bytes(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
        &0i32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &(256u32 << 10).to_le_bytes(),
        &lt.0.to_le_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        if let Some(dst) = h.get_mut(at..at + f.len()) {
            dst.copy_from_slice(f);
        }
        at += f.len();
    }
    h
}

#[cfg(test)]
mod tests;
