//! Helpers shared by the dataplane's integration tests.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use control::PolicySnapshot;
use dataplane::decode::{Decoded, LinkType, Transport, decode};
use dataplane::events::{EventOutput, EventWriter};
use dataplane::inspect::ParserRegistry;
use dataplane::io::pcap::CaptureFile;
use dataplane::pipeline::{Worker, WorkerConfig};
use proto_parsers::contract::{FactSink, Progress, StreamParser};
use proto_parsers::{AppProto, Direction};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn snapshot(policy: &str) -> Arc<PolicySnapshot> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(policy);
    Arc::new(control::load_snapshot(&p, None, 1).expect("test policy loads"))
}

/// Every record of a capture: (timestamp ns, link type, frame, original length).
pub fn read_capture(path: &Path) -> Vec<(u64, LinkType, Vec<u8>, u32)> {
    let mut f = CaptureFile::open(path).unwrap();
    let mut out = Vec::new();
    while f
        .next_packet(&mut |p| out.push((p.ts_ns, p.linktype, p.data.to_vec(), p.orig_len)))
        .unwrap()
        .is_some()
    {}
    out
}

/// A parser that keeps every byte it is fed, per direction, and reports both streams when
/// the flow ends: what reassembly delivered, exactly.
/// Both byte streams of one flow: (to server, to client).
pub type Streams = (Vec<u8>, Vec<u8>);

pub struct Recorder {
    streams: [Vec<u8>; 2],
    out: Arc<Mutex<Vec<Streams>>>,
    gaps: Arc<Mutex<u64>>,
}

impl StreamParser for Recorder {
    fn proto(&self) -> AppProto {
        AppProto::Tcp
    }
    fn feed(&mut self, dir: Direction, data: &[u8], _: &mut dyn FactSink) -> Progress {
        let i = usize::from(dir == Direction::ToClient);
        self.streams[i].extend_from_slice(data);
        Progress::Done {
            consumed: data.len(),
        }
    }
    fn gap(&mut self, _: Direction, len: u32) -> proto_parsers::contract::GapOutcome {
        *self.gaps.lock().unwrap() += u64::from(len);
        proto_parsers::contract::GapOutcome::Skipped
    }
    fn end(&mut self, _: &mut dyn FactSink) {
        let s = std::mem::take(&mut self.streams);
        let [a, b] = s;
        self.out.lock().unwrap().push((a, b));
    }
}

/// Runs frames through one worker whose registry records every stream of every protocol.
/// Returns the streams (sorted, so flows compare regardless of order), the gap bytes seen
/// by parsers, and the worker for its counters.
pub fn run_recording(
    frames: &[(u64, LinkType, Vec<u8>, u32)],
    cfg: WorkerConfig,
) -> (Vec<Streams>, u64, Worker) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let gaps = Arc::new(Mutex::new(0u64));
    let mut reg = ParserRegistry::empty();
    for app in [
        AppProto::Http,
        AppProto::Http2,
        AppProto::Grpc,
        AppProto::Postgres,
        AppProto::Mysql,
        AppProto::Redis,
        AppProto::Dns,
        AppProto::Tls,
        AppProto::Tcp,
    ] {
        let (o, g) = (Arc::clone(&out), Arc::clone(&gaps));
        reg.register(
            app,
            Arc::new(move |_| {
                Box::new(Recorder {
                    streams: [Vec::new(), Vec::new()],
                    out: Arc::clone(&o),
                    gaps: Arc::clone(&g),
                }) as Box<dyn StreamParser>
            }),
        );
    }
    let writer = EventWriter::start(EventOutput::Discard).unwrap();
    let snap = snapshot("allow-all.yaml");
    let mut w = Worker::new(0, cfg, reg, writer.sender());
    for (ts, lt, f, len) in frames {
        w.process(*ts, *lt, f, *len, &snap);
    }
    w.finish();
    let mut streams = out.lock().unwrap().clone();
    streams.sort();
    let g = *gaps.lock().unwrap();
    (streams, g, w)
}

/// A TCP segment lifted out of a frame, to be re-encoded with changes.
#[derive(Clone, Debug)]
pub struct Seg {
    pub ts: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: Vec<u8>,
}

pub fn tcp_segments(frames: &[(u64, LinkType, Vec<u8>, u32)]) -> Vec<Seg> {
    let mut out = Vec::new();
    for (ts, lt, f, _) in frames {
        if let Ok(Decoded::Ip(p)) = decode(*lt, f)
            && let Transport::Tcp(t) = p.transport
        {
            out.push(Seg {
                ts: *ts,
                src: p.src,
                dst: p.dst,
                sport: t.sport,
                dport: t.dport,
                seq: t.seq,
                ack: t.ack,
                flags: t.flags,
                window: t.window,
                payload: t.payload.to_vec(),
            });
        }
    }
    out
}

/// The segment as a TCP header plus payload (checksum computed for its addresses).
fn l4_bytes(s: &Seg) -> Vec<u8> {
    let ip = ip_packet(s);
    let hdr = match s.src {
        IpAddr::V4(_) => 20,
        IpAddr::V6(_) => 40,
    };
    ip[hdr..].to_vec()
}

/// The segment as one raw IP packet (LINKTYPE_RAW).
pub fn ip_packet(s: &Seg) -> Vec<u8> {
    use dataplane::decode::tcp_flags::*;
    let b = match (s.src, s.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            etherparse::PacketBuilder::ipv4(a.octets(), b.octets(), 64)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            etherparse::PacketBuilder::ipv6(a.octets(), b.octets(), 64)
        }
        _ => unreachable!(),
    };
    let mut b = b.tcp(s.sport, s.dport, s.seq, s.window);
    if s.flags & ACK != 0 {
        b = b.ack(s.ack);
    }
    if s.flags & SYN != 0 {
        b = b.syn();
    }
    if s.flags & FIN != 0 {
        b = b.fin();
    }
    if s.flags & RST != 0 {
        b = b.rst();
    }
    if s.flags & PSH != 0 {
        b = b.psh();
    }
    let mut out = Vec::new();
    b.write(&mut out, &s.payload).unwrap();
    out
}

/// The segment as IP fragments of `chunk` bytes (a multiple of 8), in reverse order.
pub fn fragments(s: &Seg, chunk: usize, id: u32) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let l4 = l4_bytes(s);
    let mut frags = Vec::new();
    let mut off = 0;
    while off < l4.len() {
        let end = (off + chunk).min(l4.len());
        let more = end < l4.len();
        let data = &l4[off..end];
        let mut p = Vec::new();
        match (s.src, s.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let total = (20 + data.len()) as u16;
                let fo = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
                p.extend_from_slice(&[0x45, 0]);
                p.extend_from_slice(&total.to_be_bytes());
                p.extend_from_slice(&(id as u16).to_be_bytes());
                p.extend_from_slice(&fo.to_be_bytes());
                p.extend_from_slice(&[64, 6, 0, 0]);
                p.extend_from_slice(&a.octets());
                p.extend_from_slice(&b.octets());
                let mut sum = 0u32;
                for w in p.chunks(2) {
                    sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
                }
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                let ck = !(sum as u16);
                p[10..12].copy_from_slice(&ck.to_be_bytes());
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                p.extend_from_slice(&[0x60, 0, 0, 0]);
                p.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
                p.extend_from_slice(&[44, 64]);
                p.extend_from_slice(&a.octets());
                p.extend_from_slice(&b.octets());
                let fo = ((off / 8) as u16) << 3 | u16::from(more);
                p.extend_from_slice(&[6, 0]);
                p.extend_from_slice(&fo.to_be_bytes());
                p.extend_from_slice(&id.to_be_bytes());
            }
            _ => unreachable!(),
        }
        p.extend_from_slice(data);
        frags.push(p);
        off = end;
    }
    frags.reverse();
    frags
}

pub fn raw(ts: u64, p: Vec<u8>) -> (u64, LinkType, Vec<u8>, u32) {
    let len = p.len() as u32;
    (ts, LinkType::RAW, p, len)
}
