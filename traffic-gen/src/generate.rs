//! Synthetic TCP traffic that a stateful inspector accepts as real: three-way handshakes,
//! sequence and acknowledgement numbers that follow the bytes sent, HTTP/1.1-looking
//! requests and responses cut at the MSS, and FIN exchanges. The building blocks
//! ([`Rng`], [`Frames`], [`TcpConversation`], [`udp_datagram`], [`PcapOut`]) also serve the
//! east-west mix of [`crate::eastwest`] and the evasion corpus of [`crate::evasion`].
//!
//! (Named `generate`, not `gen`: `gen` is a reserved keyword in edition 2024.)

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// 2026-11-22T06:00:00Z: generated captures start here, like the recorded ones.
pub const START_NS: u64 = 1_795_327_200_000_000_000;

/// Payload bytes per segment (Ethernet MTU 1500 minus IPv4 and TCP headers).
pub const MSS: usize = 1460;

/// TCP flags a [`TcpConversation::segment`] takes (ACK is added by the conversation).
pub const SYN: u8 = 0x02;
pub const FIN: u8 = 0x01;
pub const PSH: u8 = 0x08;

/// xorshift64*: deterministic and dependency-free.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is xorshift's fixed point.
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0), close enough for traffic shapes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Which way a segment goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Frames stored back to back in one buffer (as the pipeline's batches are), so thousands of
/// packets cost two allocations and a replay loop touches memory in order.
#[derive(Clone, Debug, Default)]
pub struct Frames {
    data: Vec<u8>,
    /// (timestamp ns, offset, length)
    meta: Vec<(u64, usize, u32)>,
}

impl Frames {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.meta.clear();
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Total frame bytes.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn push(&mut self, ts_ns: u64, frame: &[u8]) {
        self.meta.push((ts_ns, self.data.len(), frame.len() as u32));
        self.data.extend_from_slice(frame);
    }

    /// (timestamp ns, frame) in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.meta.iter().map(|&(ts, off, len)| {
            (
                ts,
                self.data.get(off..off + len as usize).unwrap_or_default(),
            )
        })
    }

    /// Memory held (capacity of both buffers), for reports.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.meta.capacity() * std::mem::size_of::<(u64, usize, u32)>()
    }
}

/// One TCP connection between two IPv4 endpoints, over Ethernet. Tracks both sequence
/// numbers so every segment it builds is in order and acknowledges what the peer sent.
#[derive(Clone, Debug)]
pub struct TcpConversation {
    client: (Ipv4Addr, u16),
    server: (Ipv4Addr, u16),
    client_mac: [u8; 6],
    server_mac: [u8; 6],
    /// Next sequence number each side sends.
    next_seq: [u32; 2],
    /// Whether each side's SYN has been sent (before that, nothing is acknowledged).
    synced: [bool; 2],
}

/// A locally administered MAC derived from the address, so both ends of every flow have
/// stable, distinct link addresses.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

impl TcpConversation {
    pub fn new(client: (Ipv4Addr, u16), server: (Ipv4Addr, u16), isn: [u32; 2]) -> Self {
        TcpConversation {
            client,
            server,
            client_mac: mac_of(client.0),
            server_mac: mac_of(server.0),
            next_seq: isn,
            synced: [false; 2],
        }
    }

    /// Appends one Ethernet/IPv4/TCP frame to `out`: `flags` (SYN, FIN, PSH; ACK is added
    /// whenever the peer's SYN has been seen) and `payload`, then advances this side's
    /// sequence number by what the segment occupies.
    pub fn segment(&mut self, from: Side, flags: u8, payload: &[u8], out: &mut Vec<u8>) {
        let (me, peer) = match from {
            Side::Client => (0, 1),
            Side::Server => (1, 0),
        };
        let ((src, sport), (dst, dport)) = match from {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        };
        let (smac, dmac) = match from {
            Side::Client => (self.client_mac, self.server_mac),
            Side::Server => (self.server_mac, self.client_mac),
        };
        let seq = self.next_seq[me];
        let mut b = PacketBuilder::ethernet2(smac, dmac)
            .ipv4(src.octets(), dst.octets(), 64)
            .tcp(sport, dport, seq, 64_240);
        if self.synced[peer] {
            b = b.ack(self.next_seq[peer]);
        }
        if flags & SYN != 0 {
            b = b.syn();
        }
        if flags & FIN != 0 {
            b = b.fin();
        }
        if flags & PSH != 0 {
            b = b.psh();
        }
        // Writing to a Vec cannot fail; a payload over 64 KiB would, and none is built here.
        let _ = b.write(out, payload);
        let used = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.next_seq[me] = seq.wrapping_add(used);
        if flags & SYN != 0 {
            self.synced[me] = true;
        }
    }
}

/// Writes an HTTP/1.1 request for order `n` (GET, or a POST with a JSON body).
fn request(n: u64, post: bool, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(256);
    if post {
        let body = format!("{{\"item\":\"mug-{n}\",\"qty\":{}}}", 1 + n % 5);
        let _ = write!(
            s,
            "POST /api/orders HTTP/1.1\r\nHost: orders.shop\r\nUser-Agent: palisade-bench/1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    } else {
        let _ = write!(
            s,
            "GET /api/orders/{n} HTTP/1.1\r\nHost: orders.shop\r\nUser-Agent: palisade-bench/1\r\n\
             Accept: application/json\r\n\r\n"
        );
    }
    out.clear();
    out.extend_from_slice(s.as_bytes());
}

/// Writes a 200 response whose JSON body is `body_len` bytes (at least a few dozen).
fn response(n: u64, body_len: usize, out: &mut Vec<u8>) {
    let mut body = format!("{{\"id\":{n},\"items\":[");
    while body.len() + 24 < body_len {
        let _ = write!(body, "{{\"sku\":{:05}}},", body.len() % 100_000);
    }
    body.push_str("\"end\"]}");
    out.clear();
    let _ = write!(
        StringSink(out),
        "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body.as_bytes());
}

/// `fmt::Write` into a byte vector.
struct StringSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for StringSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// An endless keep-alive HTTP/1.1 connection (10.0.1.5:40112 -> 10.0.2.7:8080): the
/// handshake once, then per transaction a GET from the client, a one-segment response,
/// and the client's ACK. For steady-state per-packet costs.
#[derive(Clone, Debug)]
pub struct KeepAlive {
    conv: TcpConversation,
    ts_ns: u64,
    /// Transactions started; 0 until the handshake is out.
    n: u64,
    handshake_done: bool,
    /// Packets still to emit of the current transaction (request, response, ACK).
    step: u8,
    payload: Vec<u8>,
    frame: Vec<u8>,
}

/// Packet time between two packets of the keep-alive flow: 10 µs keeps a 10-million-packet
/// run far inside the established-flow timeout (600 s).
const KEEPALIVE_STEP_NS: u64 = 10_000;

impl KeepAlive {
    pub fn new() -> Self {
        KeepAlive {
            conv: TcpConversation::new(
                (Ipv4Addr::new(10, 0, 1, 5), 40112),
                (Ipv4Addr::new(10, 0, 2, 7), 8080),
                [0x1000_0000, 0x7000_0000],
            ),
            ts_ns: START_NS,
            n: 0,
            handshake_done: false,
            step: 0,
            payload: Vec::with_capacity(2048),
            frame: Vec::with_capacity(2048),
        }
    }

    /// Replaces the contents of `out` with the next `packets` frames of the flow.
    pub fn fill(&mut self, packets: usize, out: &mut Frames) {
        out.clear();
        if !self.handshake_done {
            for (side, flags) in [(Side::Client, SYN), (Side::Server, SYN), (Side::Client, 0)] {
                self.emit(side, flags, false, out);
            }
            self.handshake_done = true;
        }
        while out.len() < packets {
            match self.step {
                0 => {
                    self.n += 1;
                    request(self.n, false, &mut self.payload);
                    self.emit(Side::Client, PSH, true, out);
                }
                1 => {
                    // Slightly varying sizes, as real responses have.
                    response(self.n, 200 + (self.n % 7) as usize * 16, &mut self.payload);
                    self.emit(Side::Server, PSH, true, out);
                }
                _ => self.emit(Side::Client, 0, false, out),
            }
            self.step = (self.step + 1) % 3;
        }
    }

    fn emit(&mut self, side: Side, flags: u8, with_payload: bool, out: &mut Frames) {
        self.frame.clear();
        let payload: &[u8] = if with_payload { &self.payload } else { &[] };
        self.conv.segment(side, flags, payload, &mut self.frame);
        self.ts_ns += KEEPALIVE_STEP_NS;
        out.push(self.ts_ns, &self.frame);
    }
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self::new()
    }
}

/// What a generator produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    pub sessions: u64,
    pub packets: u64,
    pub bytes: u64,
    pub transactions: u64,
}

/// Sessions in flight at once: the capture interleaves their packets as a busy service's
/// traffic does, so the flow table holds many flows and lookups miss the cache.
const CONCURRENT: usize = 64;

/// One short connection, as a script of segments emitted one at a time.
struct Session {
    conv: TcpConversation,
    /// (side, flags, payload)
    script: Vec<(Side, u8, Vec<u8>)>,
    next: usize,
}

impl Session {
    fn new(i: u64, rng: &mut Rng, stats: &mut GenStats) -> Self {
        // 250 clients and 8 servers; client ports cycle through the ephemeral range so a
        // tuple is reused only long after its previous connection closed.
        let c = (i % 250) as u8;
        let server = Ipv4Addr::new(10, 2, 0, 1 + (rng.below(8) as u8));
        let port = 32_768 + ((i / 250) % 28_000) as u16;
        let isn = [rng.next_u64() as u32, rng.next_u64() as u32];
        let conv = TcpConversation::new(
            (Ipv4Addr::new(10, 1, 0, 1 + c), port),
            (server, if rng.below(4) == 0 { 80 } else { 8080 }),
            isn,
        );
        let mut script = vec![
            (Side::Client, SYN, Vec::new()),
            (Side::Server, SYN, Vec::new()),
            (Side::Client, 0, Vec::new()),
        ];
        let transactions = 1 + rng.below(4);
        let mut buf = Vec::new();
        for t in 0..transactions {
            let n = i * 8 + t;
            request(n, rng.below(5) == 0, &mut buf);
            script.push((Side::Client, PSH, buf.clone()));
            // Mostly small API answers, sometimes a page that spans several segments.
            let body = if rng.below(6) == 0 {
                2_000 + rng.below(6_000) as usize
            } else {
                60 + rng.below(900) as usize
            };
            response(n, body, &mut buf);
            let chunks: Vec<&[u8]> = buf.chunks(MSS).collect();
            let last = chunks.len().saturating_sub(1);
            for (k, chunk) in chunks.into_iter().enumerate() {
                let flags = if k == last { PSH } else { 0 };
                script.push((Side::Server, flags, chunk.to_vec()));
            }
            script.push((Side::Client, 0, Vec::new()));
        }
        script.push((Side::Client, FIN, Vec::new()));
        script.push((Side::Server, FIN, Vec::new()));
        script.push((Side::Client, 0, Vec::new()));
        stats.sessions += 1;
        stats.transactions += transactions;
        Session {
            conv,
            script,
            next: 0,
        }
    }

    /// Writes the next segment into `out`; false when the session is over.
    fn step(&mut self, out: &mut Vec<u8>) -> bool {
        let Some((side, flags, payload)) = self.script.get(self.next) else {
            return false;
        };
        self.conv.segment(*side, *flags, payload, out);
        self.next += 1;
        true
    }
}

/// Generates `sessions` complete TCP sessions (handshake, 1-4 HTTP request/response
/// exchanges, FINs), interleaved, and hands each frame to `sink` with its timestamp.
pub fn sessions(sessions: u64, seed: u64, sink: &mut dyn FnMut(u64, &[u8])) -> GenStats {
    let mut rng = Rng::new(seed);
    let mut stats = GenStats::default();
    let mut live: Vec<Session> = Vec::with_capacity(CONCURRENT);
    let mut started = 0u64;
    let mut ts = START_NS;
    let mut frame = Vec::with_capacity(2048);
    loop {
        while live.len() < CONCURRENT && started < sessions {
            live.push(Session::new(started, &mut rng, &mut stats));
            started += 1;
        }
        if live.is_empty() {
            break;
        }
        let k = rng.below(live.len() as u64) as usize;
        frame.clear();
        let more = live.get_mut(k).is_some_and(|s| s.step(&mut frame));
        if more {
            ts += 1_000 + rng.below(20_000);
            sink(ts, &frame);
            stats.packets += 1;
            stats.bytes += frame.len() as u64;
        } else {
            live.swap_remove(k);
        }
    }
    stats
}

/// One Ethernet/IPv4/UDP datagram from `src` to `dst` appended to `out`.
pub fn udp_datagram(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8], out: &mut Vec<u8>) {
    let b = PacketBuilder::ethernet2(mac_of(src.0), mac_of(dst.0))
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1);
    // Writing to a Vec cannot fail; no datagram built here is over 64 KiB.
    let _ = b.write(out, payload);
}

/// A little-endian, nanosecond-resolution Ethernet pcap being written (the byte order and
/// resolution tcpdump and tshark write on x86).
pub struct PcapOut {
    w: PcapWriter<BufWriter<File>>,
    err: Option<io::Error>,
}

impl PcapOut {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            // pcap-file's default is big-endian; most tools expect the writer's native order.
            endianness: Endianness::Little,
            snaplen: 65_535,
            ..PcapHeader::default()
        };
        let w = PcapWriter::with_header(file, header).map_err(io::Error::other)?;
        Ok(PcapOut { w, err: None })
    }

    /// Appends one frame; the first error is kept and returned by [`PcapOut::finish`].
    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) {
        if self.err.is_none() {
            let p = PcapPacket::new(Duration::from_nanos(ts_ns), frame.len() as u32, frame);
            if let Err(e) = self.w.write_packet(&p) {
                self.err = Some(io::Error::other(e));
            }
        }
    }

    pub fn finish(self) -> io::Result<()> {
        if let Some(e) = self.err {
            return Err(e);
        }
        let mut file = self.w.into_writer();
        io::Write::flush(&mut file)
    }
}

/// Writes [`sessions`] to a little-endian, nanosecond pcap at `path`.
pub fn write_sessions(path: &Path, sessions: u64, seed: u64) -> io::Result<GenStats> {
    let mut out = PcapOut::create(path)?;
    let stats = self::sessions(sessions, seed, &mut |ts, frame| out.write(ts, frame));
    out.finish()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    use super::*;

    type Tuple = (IpAddr, u16, IpAddr, u16);

    /// Every TCP segment: its tuple, seq, ack (if ACK), flags and payload length.
    fn segments(frames: &[(u64, Vec<u8>)]) -> Vec<(Tuple, u32, Option<u32>, u8, usize)> {
        frames
            .iter()
            .map(|(_, f)| {
                let p = SlicedPacket::from_ethernet(f).expect("decodes");
                let Some(NetSlice::Ipv4(ip)) = p.net else {
                    panic!("not IPv4: {:?}", p.net);
                };
                let Some(TransportSlice::Tcp(t)) = p.transport else {
                    panic!("not TCP: {:?}", p.transport);
                };
                let h = ip.header();
                // The flag byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10...).
                let flags = t.header_slice()[13];
                (
                    (
                        IpAddr::V4(h.source_addr()),
                        t.source_port(),
                        IpAddr::V4(h.destination_addr()),
                        t.destination_port(),
                    ),
                    t.sequence_number(),
                    t.ack().then_some(t.acknowledgment_number()),
                    flags,
                    t.payload().len(),
                )
            })
            .collect()
    }

    /// Checks that, per direction of each connection, every segment starts where the
    /// previous one ended and acknowledges everything the peer has sent.
    fn assert_consistent(frames: &[(u64, Vec<u8>)]) -> usize {
        let mut next: HashMap<Tuple, u32> = HashMap::new();
        let segs = segments(frames);
        for (tuple, seq, ack, flags, len) in &segs {
            if let Some(want) = next.get(tuple) {
                assert_eq!(seq, want, "{tuple:?}: sequence gap");
            }
            let used = *len as u32 + u32::from(flags & (SYN | FIN) != 0);
            next.insert(*tuple, seq.wrapping_add(used));
            let rev = (tuple.2, tuple.3, tuple.0, tuple.1);
            match (ack, next.get(&rev)) {
                (Some(a), Some(peer)) => assert_eq!(a, peer, "{tuple:?}: stale ack"),
                (None, Some(_)) => panic!("{tuple:?}: no ACK after the peer's SYN"),
                (Some(_), None) => panic!("{tuple:?}: ACK before the peer said anything"),
                (None, None) => assert_ne!(flags & SYN, 0, "first segment must be a SYN"),
            }
        }
        segs.len()
    }

    #[test]
    fn keepalive_segments_follow_each_other_across_fills() {
        let mut k = KeepAlive::new();
        let mut all = Vec::new();
        let mut f = Frames::new();
        for n in [10, 7, 1, 30] {
            k.fill(n, &mut f);
            assert!(f.len() >= n);
            all.extend(f.iter().map(|(ts, d)| (ts, d.to_vec())));
        }
        assert_eq!(assert_consistent(&all), all.len());
        assert!(
            all.windows(2).all(|w| w[0].0 < w[1].0),
            "timestamps increase"
        );
        let http = all
            .iter()
            .filter(|(_, d)| d.windows(14).any(|w| w == b"GET /api/order"))
            .count();
        assert!(http >= 15, "{http} requests");
    }

    #[test]
    fn sessions_are_complete_and_deterministic() {
        let mut a = Vec::new();
        let stats = sessions(200, 7, &mut |ts, f| a.push((ts, f.to_vec())));
        assert_eq!(stats.sessions, 200);
        assert_eq!(stats.packets as usize, a.len());
        assert_eq!(assert_consistent(&a), a.len());
        let segs = segments(&a);
        let syns = segs.iter().filter(|s| s.3 == SYN).count();
        let fins = segs.iter().filter(|s| s.3 & FIN != 0).count();
        assert_eq!(
            (syns, fins),
            (200, 400),
            "one SYN per client, a FIN each way"
        );
        assert!(segs.iter().all(|s| s.4 <= MSS), "segments fit the MSS");
        assert!(
            segs.iter().any(|s| s.4 == MSS),
            "some responses span segments"
        );

        let mut b = Vec::new();
        assert_eq!(
            sessions(200, 7, &mut |ts, f| b.push((ts, f.to_vec()))),
            stats
        );
        assert_eq!(a, b, "same seed, same capture");
        let mut c = Vec::new();
        sessions(200, 8, &mut |ts, f| c.push((ts, f.to_vec())));
        assert_ne!(a, c, "the seed matters");
    }
}
