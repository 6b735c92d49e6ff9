//! Frames and captures: TCP segments and IPv4 frames with everything explicit (flags,
//! sequence and acknowledgement numbers, checksums, fragments), a [`Capture`] of one case,
//! and [`Conn`], a connection that keeps its sequence numbers but can be told to misbehave.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, TcpHeader, TcpOptionElement,
};

use crate::generate::{MSS, PcapOut, Rng, START_NS, mac_of};

// ---------------------------------------------------------------------------------------
// Frames

/// TCP flags. ACK is set by a segment's `ack` being `Some`.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;

/// One TCP segment over IPv4, everything explicit.
#[derive(Clone, Debug)]
pub struct TcpSeg<'a> {
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub seq: u32,
    /// The acknowledgement number; `None` leaves the ACK flag clear.
    pub ack: Option<u32>,
    /// FIN, SYN, RST, PSH.
    pub flags: u8,
    pub window: u16,
    pub options: &'a [TcpOptionElement],
    pub payload: &'a [u8],
    pub ip_id: u16,
    /// Write a checksum that is off by one (a decoy no receiver accepts).
    pub bad_checksum: bool,
}

/// The IPv4 header of a packet from `src` to `dst` carrying `len` bytes of `proto`.
pub(super) fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: IpNumber, len: usize) -> Ipv4Header {
    // No packet built here carries more than 64 KiB.
    let mut ip =
        Ipv4Header::new(len as u16, 64, proto, src.octets(), dst.octets()).unwrap_or_default();
    ip.dont_fragment = true;
    ip
}

/// The TCP header and payload of `s`, checksummed (or deliberately not).
pub fn tcp_bytes(s: &TcpSeg<'_>) -> Vec<u8> {
    let mut h = TcpHeader::new(s.src.1, s.dst.1, s.seq, s.window);
    h.fin = s.flags & FIN != 0;
    h.syn = s.flags & SYN != 0;
    h.rst = s.flags & RST != 0;
    h.psh = s.flags & PSH != 0;
    if let Some(a) = s.ack {
        h.ack = true;
        h.acknowledgment_number = a;
    }
    // Only well-formed option lists are built here.
    let _ = h.set_options(s.options);
    let sum = h
        .calc_checksum_ipv4_raw(s.src.0.octets(), s.dst.0.octets(), s.payload)
        .unwrap_or_default();
    h.checksum = if s.bad_checksum {
        sum.wrapping_add(1)
    } else {
        sum
    };
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(s.payload);
    out
}

/// An Ethernet frame carrying one IPv4 packet (or fragment: `offset` in bytes, a multiple
/// of 8, and `more` for MF) with `data` as its payload.
pub fn ipv4_frame(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    (offset, more): (usize, bool),
    data: &[u8],
) -> Vec<u8> {
    let mut ip = ipv4_header(src, dst, IpNumber::TCP, data.len());
    ip.identification = id;
    if offset != 0 || more {
        ip.dont_fragment = false;
        ip.more_fragments = more;
        ip.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap_or_default();
    }
    ip.header_checksum = ip.calc_header_checksum();
    let eth = Ethernet2Header {
        source: mac_of(src),
        destination: mac_of(dst),
        ether_type: EtherType::IPV4,
    };
    let mut out = Vec::with_capacity(14 + 20 + data.len());
    out.extend_from_slice(&eth.to_bytes());
    out.extend_from_slice(&ip.to_bytes());
    out.extend_from_slice(data);
    out
}

/// `s` as one Ethernet/IPv4/TCP frame.
pub fn tcp_frame(s: &TcpSeg<'_>) -> Vec<u8> {
    ipv4_frame(s.src.0, s.dst.0, s.ip_id, (0, false), &tcp_bytes(s))
}

// ---------------------------------------------------------------------------------------
// Captures and connections

/// Which end sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub(super) fn i(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
    pub(super) fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Time between two packets of a capture.
pub(super) const STEP_NS: u64 = 100_000;

/// The frames of one case, with their timestamps (the first at [`START_NS`]), and the
/// case's deterministic randomness (seeded by its name).
#[derive(Debug)]
pub struct Capture {
    frames: Vec<(u64, Vec<u8>)>,
    next_ts: u64,
    rng: Rng,
}

/// FNV-1a, for seeds derived from names.
pub(super) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Capture {
    pub fn for_case(name: &str) -> Self {
        Capture {
            frames: Vec::new(),
            next_ts: START_NS,
            rng: Rng::new(fnv(name)),
        }
    }

    pub fn push(&mut self, frame: Vec<u8>) {
        self.frames.push((self.next_ts, frame));
        self.next_ts += STEP_NS;
    }

    /// Lets time pass before the next packet.
    pub fn pause(&mut self, ns: u64) {
        self.next_ts += ns;
    }

    pub fn frames(&self) -> &[(u64, Vec<u8>)] {
        &self.frames
    }

    /// The size of the pcap file (header and per-record headers included).
    pub fn pcap_len(&self) -> usize {
        24 + self.frames.iter().map(|(_, f)| 16 + f.len()).sum::<usize>()
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut out = PcapOut::create(path)?;
        for (ts, f) in &self.frames {
            out.write(*ts, f);
        }
        out.finish()
    }

    /// Random bytes of the case.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for x in &mut b {
            *x = self.rng.next_u64() as u8;
        }
        b
    }

    /// A new connection from a client in 10.1.0.0/16 to `server`, with random ISNs.
    pub fn conn(&mut self, server: (Ipv4Addr, u16)) -> Conn {
        let a = 1 + self.rng.below(250) as u8;
        let b = 1 + self.rng.below(250) as u8;
        let port = 32_768 + self.rng.below(28_000) as u16;
        let isn = [self.rng.next_u64() as u32, self.rng.next_u64() as u32];
        let ids = [self.rng.next_u64() as u16, self.rng.next_u64() as u16];
        Conn {
            ends: [(Ipv4Addr::new(10, 1, a, b), port), server],
            next: isn,
            synced: [false; 2],
            ip_id: ids,
        }
    }
}

/// One TCP connection: both ends' next sequence numbers, so segments follow each other and
/// acknowledge what the peer sent, plus ways to send anything else.
#[derive(Clone, Debug)]
pub struct Conn {
    /// client, server
    ends: [(Ipv4Addr, u16); 2],
    /// The next sequence number each side sends.
    next: [u32; 2],
    /// Whether each side's SYN was sent (the peer acknowledges from then on).
    synced: [bool; 2],
    ip_id: [u16; 2],
}

/// What the SYN and SYN-ACK offer: MSS and SACK, as most stacks do (no window scaling, so
/// the windows below are what they say).
pub(super) const SYN_OPTIONS: [TcpOptionElement; 3] = [
    TcpOptionElement::MaximumSegmentSize(MSS as u16),
    TcpOptionElement::Noop,
    TcpOptionElement::SelectiveAcknowledgementPermitted,
];

pub(super) const WINDOW: u16 = 64_240;

impl Conn {
    pub fn client(&self) -> (Ipv4Addr, u16) {
        self.ends[0]
    }

    pub fn next_seq(&self, side: Side) -> u32 {
        self.next[side.i()]
    }

    /// Pretends both handshakes happened (for captures that start mid-connection).
    pub fn assume_established(&mut self) {
        self.synced = [true; 2];
    }

    pub(super) fn take_id(&mut self, side: Side) -> u16 {
        let id = self.ip_id[side.i()];
        self.ip_id[side.i()] = id.wrapping_add(1);
        id
    }

    /// A segment from `side` with everything given; the connection's state is unchanged
    /// (apart from the IP id).
    pub fn seg_with<'p>(
        &mut self,
        side: Side,
        (seq, ack): (u32, Option<u32>),
        flags: u8,
        payload: &'p [u8],
    ) -> TcpSeg<'p> {
        let id = self.take_id(side);
        TcpSeg {
            src: self.ends[side.i()],
            dst: self.ends[side.peer().i()],
            seq,
            ack,
            flags,
            window: WINDOW,
            options: &[],
            payload,
            ip_id: id,
            bad_checksum: false,
        }
    }

    /// Pushes a segment from `side` with explicit numbers and flags, without changing the
    /// connection's state.
    pub fn raw(
        &mut self,
        cap: &mut Capture,
        side: Side,
        (seq, ack): (u32, Option<u32>),
        flags: u8,
        payload: &[u8],
        bad_checksum: bool,
    ) {
        let mut s = self.seg_with(side, (seq, ack), flags, payload);
        s.bad_checksum = bad_checksum;
        cap.push(tcp_frame(&s));
    }

    /// The acknowledgement `side` sends now (none before the peer's SYN).
    pub fn ack_of(&self, side: Side) -> Option<u32> {
        self.synced[side.peer().i()].then_some(self.next[side.peer().i()])
    }

    /// The next in-order segment from `side`; advances its sequence number.
    pub fn seg(&mut self, cap: &mut Capture, side: Side, flags: u8, payload: &[u8]) {
        let seq = self.next[side.i()];
        let ack = self.ack_of(side);
        let mut s = self.seg_with(side, (seq, ack), flags, payload);
        if flags & SYN != 0 {
            s.options = &SYN_OPTIONS;
        }
        cap.push(tcp_frame(&s));
        let used = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.next[side.i()] = seq.wrapping_add(used);
        if flags & SYN != 0 {
            self.synced[side.i()] = true;
        }
    }

    /// Moves `side`'s next sequence number on by `n` bytes it sent that the capture lacks.
    pub fn skip(&mut self, side: Side, n: usize) {
        self.next[side.i()] = self.next[side.i()].wrapping_add(n as u32);
    }

    pub fn handshake(&mut self, cap: &mut Capture) {
        self.seg(cap, Side::Client, SYN, &[]);
        self.seg(cap, Side::Server, SYN, &[]);
        self.seg(cap, Side::Client, 0, &[]);
    }

    /// A pure ACK from `side`.
    pub fn ack(&mut self, cap: &mut Capture, side: Side) {
        self.seg(cap, side, 0, &[]);
    }

    /// `data` from `side` cut at the MSS, PSH on the last segment; the peer acknowledges
    /// every second segment (delayed ACK), but not the last: its answer will.
    pub fn send(&mut self, cap: &mut Capture, side: Side, data: &[u8]) {
        let n = data.chunks(MSS).count();
        for (k, chunk) in data.chunks(MSS).enumerate() {
            let last = k + 1 == n;
            self.seg(cap, side, if last { PSH } else { 0 }, chunk);
            if !last && k % 2 == 1 {
                self.ack(cap, side.peer());
            }
        }
    }

    /// A request and its answer, and the client's ACK of the answer.
    pub fn exchange(&mut self, cap: &mut Capture, request: &[u8], response: &[u8]) {
        self.send(cap, Side::Client, request);
        self.send(cap, Side::Server, response);
        self.ack(cap, Side::Client);
    }

    /// The client closes, the server closes, the client acknowledges.
    pub fn close(&mut self, cap: &mut Capture) {
        self.seg(cap, Side::Client, FIN, &[]);
        self.seg(cap, Side::Server, FIN, &[]);
        self.ack(cap, Side::Client);
    }
}
