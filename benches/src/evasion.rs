//! The evasion corpus: one small capture per trick an attacker may use to walk a request
//! around a deny rule (HTTP/1 leniency, HTTP/2 framing, SQL lexing, Redis inline
//! commands, TCP/IP normalisation, TLS record splitting), each carrying exactly one request
//! that `deny.yaml` must deny, and the index that says what `palisade replay` must do with
//! it under `deny.yaml` and `allow.yaml`.
//!
//! Everything is deterministic: a case's bytes depend only on its name. `gen-evasion
//! OUT_DIR` writes the corpus (`tests/data/evasion/` in the repository); the data plane's
//! `tests/evasion.rs` replays it and `benches/tests/evasion_corpus.rs` checks that the
//! committed files are what this module writes now.
//!
//! This file uses nothing from the `benches` crate itself (only `dataplane`, `etherparse`
//! and `std`), so the data plane's integration test can include it with `#[path]` and
//! build the cases that are too large to commit.
//!
//! Frames are built here rather than with [`TcpConversation`] because the tricks need what
//! a well-behaved conversation never does: explicit sequence and acknowledgement numbers,
//! segments without ACK, wrong checksums, overlapping segments, IP fragments.
//!
//! [`TcpConversation`]: dataplane::bench::generate::TcpConversation

use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, TcpHeader, TcpOptionElement,
};
use traffic_gen::generate::{MSS, PcapOut, Rng, START_NS, mac_of};
use traffic_gen::wire;

// ---------------------------------------------------------------------------------------
// Addresses

/// The web server: HTTP/1 on 80, h2c on 8080, TLS on 443.
pub const WEB: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 10);
pub const POSTGRES: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 20);
pub const MYSQL: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 21);
pub const REDIS: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 30);

/// Captures larger than this are not committed: the data plane's test builds them.
pub const COMMIT_LIMIT: usize = 512 * 1024;

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
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: IpNumber, len: usize) -> Ipv4Header {
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
    fn i(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
    fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Time between two packets of a capture.
const STEP_NS: u64 = 100_000;

/// The frames of one case, with their timestamps (the first at [`START_NS`]), and the
/// case's deterministic randomness (seeded by its name).
#[derive(Debug)]
pub struct Capture {
    frames: Vec<(u64, Vec<u8>)>,
    next_ts: u64,
    rng: Rng,
}

/// FNV-1a, for seeds derived from names.
fn fnv(s: &str) -> u64 {
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
const SYN_OPTIONS: [TcpOptionElement; 3] = [
    TcpOptionElement::MaximumSegmentSize(MSS as u16),
    TcpOptionElement::Noop,
    TcpOptionElement::SelectiveAcknowledgementPermitted,
];

const WINDOW: u16 = 64_240;

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

    fn take_id(&mut self, side: Side) -> u16 {
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

// ---------------------------------------------------------------------------------------
// HTTP/1

const HOST: &str = "web.test";

/// A request with the usual headers plus `extra` (each line ending in CRLF).
fn http_req(method: &str, target: &str, extra: &str) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: evasion/1\r\nAccept: */*\r\n{extra}\r\n"
    )
}

fn http_resp(status: u16, reason: &str, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn ok(body: &str) -> String {
    http_resp(200, "OK", body, "")
}

/// A whole HTTP/1 connection to port 80: handshake, one exchange, close.
fn http1_session(cap: &mut Capture, request: &[u8], response: &[u8]) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(cap, request, response);
    c.close(cap);
}

/// A `GET /admin` whose head is `total` bytes, padded with `X-Pad-N` fields of at most
/// `field` bytes each.
pub fn padded_admin(total: usize, field: usize) -> String {
    let base = http_req("GET", "/admin", "");
    let mut extra = String::new();
    let mut n = 0;
    loop {
        let have = base.len() + extra.len();
        if have >= total {
            break;
        }
        let name = format!("X-Pad-{n:03}: ");
        // name, value, CRLF
        let room = total - have;
        let want = room.min(field);
        let value_len = want.saturating_sub(name.len() + 2).max(1);
        extra.push_str(&name);
        // Varied, printable filler (cookies and tokens look like this).
        for k in 0..value_len {
            extra.push((b'a' + ((k * 7 + n * 3) % 26) as u8) as char);
        }
        extra.push_str("\r\n");
        n += 1;
    }
    let s = http_req("GET", "/admin", &extra);
    debug_assert!(s.len() >= total);
    s
}

fn http1_leading_empty_lines(cap: &mut Capture) {
    let req = format!("\r\n\r\n{}", http_req("GET", "/admin", ""));
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_bare_lf(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "").replace("\r\n", "\n");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_70_headers(cap: &mut Capture) {
    let mut extra = String::new();
    for i in 0..67 {
        let _ = write!(
            extra,
            "X-Trace-{i:02}: {:08x}\r\n",
            (i * 2_654_435_761u64) & 0xffff_ffff
        );
    }
    // 67 + Host, User-Agent, Accept = 70 fields.
    let req = http_req("GET", "/admin", &extra);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_head_24k(cap: &mut Capture) {
    let req = padded_admin(24 * 1024, 8 * 1024);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_head_900k(cap: &mut Capture) {
    let req = padded_admin(900 * 1024, 16 * 1024);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_head_over_limit(cap: &mut Capture) {
    let req = padded_admin((1 << 20) + 12 * 1024, 16 * 1024);
    let resp = http_resp(
        431,
        "Request Header Fields Too Large",
        "too large\n",
        "Connection: close\r\n",
    );
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

fn http1_unlisted_method(cap: &mut Capture) {
    let req = http_req("PROPFIND", "/admin", "Depth: 1\r\nContent-Length: 0\r\n");
    let body = "<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\"/>\n";
    let resp = http_resp(207, "Multi-Status", body, "");
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

fn http1_double_space(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "").replacen("GET /admin", "GET  /admin", 1);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_tab(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "").replacen("GET /admin", "GET\t/admin", 1);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_pipeline_100(cap: &mut Capture) {
    let mut req = String::new();
    let mut resp = String::new();
    for i in 0..100 {
        req.push_str(&http_req("GET", &format!("/static/{i}.css"), ""));
        resp.push_str(&ok(&format!("body{{--n:{i}}}\n")));
    }
    req.push_str(&http_req("GET", "/admin", ""));
    resp.push_str(&ok("admin\n"));
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

fn http1_percent_encoded(cap: &mut Capture) {
    let req = http_req("GET", "/%61dmin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_dot_segments(cap: &mut Capture) {
    let req = http_req("GET", "/x/../admin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_double_slash(cap: &mut Capture) {
    let req = http_req("GET", "//admin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_absolute_uri(cap: &mut Capture) {
    let req = http_req("GET", "http://web.test/admin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

fn http1_cl_te(cap: &mut Capture) {
    let smuggled = http_req("GET", "/admin", "");
    let body = format!("0\r\n\r\n{smuggled}");
    let req = http_req(
        "POST",
        "/upload",
        &format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        ),
    ) + &body;
    // The server reads Transfer-Encoding (RFC 9112 section 6.3): an empty upload, then the
    // smuggled request.
    let resp = format!("{}{}", http_resp(201, "Created", "", ""), ok("admin\n"));
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

fn http1_conflicting_cl(cap: &mut Capture) {
    let smuggled = http_req("GET", "/admin", "");
    let req = http_req(
        "POST",
        "/upload",
        &format!(
            "Content-Type: text/plain\r\nContent-Length: 0\r\nContent-Length: {}\r\n",
            smuggled.len()
        ),
    ) + &smuggled;
    // A strict server refuses and closes first; a lenient one (first length wins) would
    // have served the smuggled request.
    let resp = http_resp(400, "Bad Request", "bad request\n", "Connection: close\r\n");
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.send(cap, Side::Client, req.as_bytes());
    c.send(cap, Side::Server, resp.as_bytes());
    c.seg(cap, Side::Server, FIN, &[]);
    c.ack(cap, Side::Client);
    c.seg(cap, Side::Client, FIN, &[]);
    c.ack(cap, Side::Server);
}

fn baseline_http1(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(
        cap,
        http_req("GET", "/index.html", "").as_bytes(),
        ok("hello\n").as_bytes(),
    );
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

fn baseline_http1_delete(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(
        cap,
        http_req("GET", "/api/items/7", "").as_bytes(),
        ok("{\"id\":7}\n").as_bytes(),
    );
    c.exchange(
        cap,
        http_req("DELETE", "/api/items/7", "").as_bytes(),
        http_resp(204, "No Content", "", "").as_bytes(),
    );
    c.close(cap);
}

// ---------------------------------------------------------------------------------------
// HTTP/2

const H2_CONTINUATION: u8 = 0x9;

fn h2_request_block(enc: &mut wire::HpackEncoder, method: &str, path: &str, pad: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", HOST),
        ("user-agent", "evasion/1"),
        ("accept", "*/*"),
    ] {
        enc.header(&mut b, n, v, wire::Indexing::Incremental);
    }
    if pad > 0 {
        let v: String = (0..pad).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        enc.header(&mut b, "x-request-context", &v, wire::Indexing::Without);
    }
    b
}

/// A response on `stream`: HEADERS with `:status` and a DATA frame ending the stream.
fn h2_response(out: &mut Vec<u8>, enc: &mut wire::HpackEncoder, stream: u32, body: &[u8]) {
    let mut b = Vec::new();
    enc.header(&mut b, ":status", "200", wire::Indexing::Incremental);
    enc.header(
        &mut b,
        "content-type",
        "text/plain",
        wire::Indexing::Incremental,
    );
    enc.header(
        &mut b,
        "content-length",
        &body.len().to_string(),
        wire::Indexing::Without,
    );
    wire::h2_frame(out, wire::H2_HEADERS, wire::H2_END_HEADERS, stream, &b);
    wire::h2_frame(out, wire::H2_DATA, wire::H2_END_STREAM, stream, body);
}

/// The client's preface and SETTINGS.
fn h2_client_start(out: &mut Vec<u8>) {
    out.extend_from_slice(wire::H2_PREFACE);
    wire::h2_settings(out, &[(2, 0), (4, 4_194_304), (6, 16_384)]);
    wire::h2_window_update(out, 0, 4_128_769);
}

fn h2_server_settings(out: &mut Vec<u8>) {
    wire::h2_settings(out, &[(3, 128), (4, 65_535), (5, 16_384)]);
}

/// An h2 prior-knowledge connection to 8080 whose one request has its header block
/// split into `continuations` CONTINUATION frames after the HEADERS frame.
fn h2_prior_knowledge(cap: &mut Capture, continuations: usize) {
    let mut c = cap.conn((WEB, 8080));
    c.handshake(cap);
    let mut hello = Vec::new();
    h2_client_start(&mut hello);
    c.send(cap, Side::Client, &hello);
    let mut s = Vec::new();
    h2_server_settings(&mut s);
    wire::h2_settings_ack(&mut s);
    c.send(cap, Side::Server, &s);

    let mut enc = wire::HpackEncoder::new();
    let mut req = Vec::new();
    wire::h2_settings_ack(&mut req);
    let block = h2_request_block(&mut enc, "GET", "/admin", continuations * 4);
    if continuations == 0 {
        wire::h2_frame(
            &mut req,
            wire::H2_HEADERS,
            wire::H2_END_HEADERS | wire::H2_END_STREAM,
            1,
            &block,
        );
    } else {
        let per = block.len().div_ceil(continuations + 1);
        let mut parts = block.chunks(per).collect::<Vec<_>>();
        // Exactly `continuations` CONTINUATION frames, whatever the rounding.
        while parts.len() < continuations + 1 {
            parts.push(&[]);
        }
        let last = parts.len() - 1;
        for (k, p) in parts.iter().enumerate() {
            let (ty, flags) = match k {
                0 => (wire::H2_HEADERS, wire::H2_END_STREAM),
                k if k == last => (H2_CONTINUATION, wire::H2_END_HEADERS),
                _ => (H2_CONTINUATION, 0),
            };
            wire::h2_frame(&mut req, ty, flags, 1, p);
        }
    }
    let mut senc = wire::HpackEncoder::new();
    let mut resp = Vec::new();
    h2_response(&mut resp, &mut senc, 1, b"admin\n");
    c.exchange(cap, &req, &resp);
    let mut bye = Vec::new();
    wire::h2_goaway(&mut bye, 0, 0);
    c.send(cap, Side::Client, &bye);
    c.close(cap);
}

fn http2_continuation_100(cap: &mut Capture) {
    h2_prior_knowledge(cap, 100);
}

fn baseline_http2(cap: &mut Capture) {
    h2_prior_knowledge(cap, 0);
}

/// Base64url without padding (RFC 4648 section 5), for `HTTP2-Settings`.
pub fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, &b)| n | u32::from(b) << (16 - 8 * k));
        for k in 0..=c.len() {
            s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
        }
    }
    s
}

fn http2_h2c_upgrade(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 8080));
    c.handshake(cap);
    let mut settings = Vec::new();
    for (id, v) in [(2u16, 0u32), (4, 4_194_304)] {
        settings.extend_from_slice(&id.to_be_bytes());
        settings.extend_from_slice(&v.to_be_bytes());
    }
    let up = http_req(
        "GET",
        "/",
        &format!(
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {}\r\n",
            base64url(&settings)
        ),
    );
    c.send(cap, Side::Client, up.as_bytes());
    // 101, then the server's preface (SETTINGS) and the answer to the upgraded request,
    // which is stream 1.
    let mut s =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    h2_server_settings(&mut s);
    let mut senc = wire::HpackEncoder::new();
    h2_response(&mut s, &mut senc, 1, b"index\n");
    c.send(cap, Side::Server, &s);
    let mut req = Vec::new();
    h2_client_start(&mut req);
    wire::h2_settings_ack(&mut req);
    let mut enc = wire::HpackEncoder::new();
    let block = h2_request_block(&mut enc, "GET", "/admin", 0);
    wire::h2_frame(
        &mut req,
        wire::H2_HEADERS,
        wire::H2_END_HEADERS | wire::H2_END_STREAM,
        3,
        &block,
    );
    let mut resp = Vec::new();
    wire::h2_settings_ack(&mut resp);
    h2_response(&mut resp, &mut senc, 3, b"admin\n");
    c.exchange(cap, &req, &resp);
    let mut bye = Vec::new();
    wire::h2_goaway(&mut bye, 0, 0);
    c.send(cap, Side::Client, &bye);
    c.close(cap);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// Connects to PostgreSQL (trust authentication) and returns the connection.
fn pg_connect(cap: &mut Capture) -> Conn {
    let mut c = cap.conn((POSTGRES, 5432));
    c.handshake(cap);
    let mut m = Vec::new();
    wire::pg_startup(
        &mut m,
        &[
            ("user", "app"),
            ("database", "shop"),
            ("application_name", "psql"),
            ("client_encoding", "UTF8"),
        ],
    );
    let mut r = Vec::new();
    wire::pg_auth(&mut r, 0, &[]);
    for (k, v) in [
        ("server_version", "16.4"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
    ] {
        wire::pg_parameter_status(&mut r, k, v);
    }
    wire::pg_backend_key(&mut r, 4242, 0x5eed_5eed);
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &m, &r);
    c
}

fn pg_bye(cap: &mut Capture, mut c: Conn) {
    let mut x = Vec::new();
    wire::pg_msg(&mut x, b'X', &[]);
    c.send(cap, Side::Client, &x);
    c.close(cap);
}

/// A simple Query whose statements the server answers with these command tags (and, for
/// `SELECT 1`, its row).
fn pg_simple(cap: &mut Capture, sql: &str, tags: &[&str]) {
    let mut c = pg_connect(cap);
    let mut q = Vec::new();
    wire::pg_query(&mut q, sql);
    let mut r = Vec::new();
    for t in tags {
        if *t == "SELECT 1" {
            wire::pg_row_description(&mut r, 0, &[("?column?", wire::PG_INT4, 4)]);
            wire::pg_data_row(&mut r, &[Some(b"1")]);
        }
        wire::pg_command_complete(&mut r, t);
    }
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &q, &r);
    pg_bye(cap, c);
}

/// About 40 KB of comment text.
fn long_comment() -> String {
    let line = "the quick brown fox jumps over the lazy dog; ";
    let mut s = String::from("/* ");
    let mut k = 0;
    while s.len() < 40_000 {
        let _ = write!(s, "{k:05} {line}");
        k += 1;
    }
    s.push_str("*/ ");
    s
}

fn sql_pg_long_comment(cap: &mut Capture) {
    pg_simple(
        cap,
        &format!("{}DROP TABLE t", long_comment()),
        &["DROP TABLE"],
    );
}

fn sql_pg_1000_selects(cap: &mut Capture) {
    let sql = format!("{}DROP TABLE t", "SELECT 1;".repeat(1000));
    let mut tags = vec!["SELECT 1"; 1000];
    tags.push("DROP TABLE");
    pg_simple(cap, &sql, &tags);
}

fn sql_pg_string_literal(cap: &mut Capture) {
    pg_simple(
        cap,
        "SELECT 'it''s; DROP TABLE x' AS note; DROP TABLE t",
        &["SELECT 1", "DROP TABLE"],
    );
}

fn sql_pg_dollar_quote(cap: &mut Capture) {
    pg_simple(
        cap,
        "SELECT $q$'$q$ AS a; DROP TABLE t; -- '",
        &["SELECT 1", "DROP TABLE"],
    );
}

fn baseline_postgres(cap: &mut Capture) {
    let mut c = pg_connect(cap);
    let mut q = Vec::new();
    wire::pg_query(&mut q, "SELECT id FROM orders WHERE id = 7");
    let mut r = Vec::new();
    wire::pg_row_description(&mut r, 16_384, &[("id", wire::PG_INT4, 4)]);
    wire::pg_data_row(&mut r, &[Some(b"7")]);
    wire::pg_command_complete(&mut r, "SELECT 1");
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &q, &r);
    let mut q = Vec::new();
    wire::pg_query(&mut q, "DROP TABLE t");
    let mut r = Vec::new();
    wire::pg_command_complete(&mut r, "DROP TABLE");
    wire::pg_ready(&mut r, b'I');
    c.exchange(cap, &q, &r);
    pg_bye(cap, c);
}

// ---------------------------------------------------------------------------------------
// MySQL

fn my_connect(cap: &mut Capture) -> Conn {
    let mut c = cap.conn((MYSQL, 3306));
    c.handshake(cap);
    let caps = wire::MY_CLIENT_LONG_PASSWORD
        | wire::MY_CLIENT_FOUND_ROWS
        | wire::MY_CLIENT_LONG_FLAG
        | wire::MY_CLIENT_CONNECT_WITH_DB
        | wire::MY_CLIENT_PROTOCOL_41
        | wire::MY_CLIENT_TRANSACTIONS
        | wire::MY_CLIENT_SECURE_CONNECTION
        | wire::MY_CLIENT_MULTI_STATEMENTS
        | wire::MY_CLIENT_MULTI_RESULTS
        | wire::MY_CLIENT_PLUGIN_AUTH
        | wire::MY_CLIENT_PLUGIN_AUTH_LENENC
        | wire::MY_CLIENT_DEPRECATE_EOF;
    let scramble: [u8; 20] = cap.bytes();
    // Scramble bytes are never 0 (the greeting is NUL-terminated around them).
    let scramble = scramble.map(|b| b.max(1) & 0x7f);
    let mut g = Vec::new();
    wire::my_greeting(&mut g, "8.0.39", 17, &scramble, caps | 0x0800_0000);
    c.send(cap, Side::Server, &g);
    let auth: [u8; 32] = cap.bytes();
    let mut h = Vec::new();
    wire::my_handshake_response(
        &mut h,
        caps,
        "app",
        &auth,
        Some("shop"),
        &[("_client_name", "libmysql")],
    );
    let mut r = Vec::new();
    // caching_sha2_password's fast-auth success, then OK.
    wire::my_packet(&mut r, 2, &[0x01, 0x03]);
    wire::my_ok(&mut r, 3, 0, 0, 0, wire::MY_STATUS_AUTOCOMMIT);
    c.exchange(cap, &h, &r);
    c
}

fn my_query_ok(cap: &mut Capture, c: &mut Conn, sql: &str) {
    let mut q = vec![0x03];
    q.extend_from_slice(sql.as_bytes());
    let mut p = Vec::new();
    wire::my_packet(&mut p, 0, &q);
    let mut r = Vec::new();
    wire::my_ok(&mut r, 1, 0, 0, 0, wire::MY_STATUS_AUTOCOMMIT);
    c.exchange(cap, &p, &r);
}

fn my_bye(cap: &mut Capture, mut c: Conn) {
    let mut p = Vec::new();
    wire::my_packet(&mut p, 0, &[0x01]);
    c.send(cap, Side::Client, &p);
    c.close(cap);
}

fn sql_mysql_long_comment(cap: &mut Capture) {
    let mut c = my_connect(cap);
    my_query_ok(cap, &mut c, &format!("{}DROP TABLE t", long_comment()));
    my_bye(cap, c);
}

fn sql_mysql_executable_comment(cap: &mut Capture) {
    let mut c = my_connect(cap);
    my_query_ok(cap, &mut c, "/*!50000 DROP TABLE t */");
    my_bye(cap, c);
}

fn baseline_mysql(cap: &mut Capture) {
    let mut c = my_connect(cap);
    my_query_ok(cap, &mut c, "SET autocommit=1");
    my_query_ok(cap, &mut c, "TRUNCATE TABLE t");
    my_bye(cap, c);
}

// ---------------------------------------------------------------------------------------
// Redis

fn redis_connect(cap: &mut Capture) -> Conn {
    let mut c = cap.conn((REDIS, 6379));
    c.handshake(cap);
    c
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    wire::resp_command(&mut v, args);
    v
}

fn simple(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    wire::resp_simple(&mut v, s);
    v
}

fn redis_pipeline_10000_ping(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut all = resp(&[b"PING"]).repeat(10_000);
    all.extend_from_slice(&resp(&[b"FLUSHALL"]));
    // The server answers as commands arrive: after every fourth segment, the replies to
    // the commands complete so far.
    let cmd = resp(&[b"PING"]).len();
    let mut answered = 0usize;
    let chunks: Vec<&[u8]> = all.chunks(MSS).collect();
    let mut sent = 0usize;
    for (k, chunk) in chunks.iter().enumerate() {
        let last = k + 1 == chunks.len();
        c.seg(cap, Side::Client, if last { PSH } else { 0 }, chunk);
        sent += chunk.len();
        if k % 4 == 3 || last {
            let done = (sent / cmd).min(10_000);
            let mut r = simple("PONG").repeat(done - answered);
            answered = done;
            if last {
                r.extend_from_slice(&simple("OK"));
            }
            c.send(cap, Side::Server, &r);
        }
    }
    c.ack(cap, Side::Client);
    c.close(cap);
}

fn redis_big_set_value(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let value: Vec<u8> = (0..1usize << 20)
        .map(|k| b'A' + ((k * 31 + k / 977) % 26) as u8)
        .collect();
    c.exchange(cap, &resp(&[b"SET", b"blob:1", &value]), &simple("OK"));
    c.exchange(cap, &resp(&[b"FLUSHALL"]), &simple("OK"));
    c.close(cap);
}

fn redis_inline_hex_escape(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    c.exchange(cap, b"PING\r\n", &simple("PONG"));
    c.exchange(cap, b"\"\\x46LUSHALL\"\r\n", &simple("OK"));
    c.close(cap);
}

fn redis_inline_key_escape(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut r = Vec::new();
    wire::resp_bulk(&mut r, Some(b"hunter2"));
    c.exchange(cap, b"GET \"\\x73ecret:1\"\r\n", &r);
    c.close(cap);
}

fn redis_lowercase(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    c.exchange(cap, &resp(&[b"flushall"]), &simple("OK"));
    c.close(cap);
}

fn baseline_redis(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut r = Vec::new();
    wire::resp_bulk(&mut r, Some(b"42"));
    c.exchange(cap, &resp(&[b"GET", b"counter:7"]), &r);
    c.exchange(cap, &resp(&[b"FLUSHALL"]), &simple("OK"));
    c.close(cap);
}

fn baseline_redis_key(cap: &mut Capture) {
    let mut c = redis_connect(cap);
    let mut r = Vec::new();
    wire::resp_bulk(&mut r, Some(b"hunter2"));
    c.exchange(cap, &resp(&[b"GET", b"secret:1"]), &r);
    c.close(cap);
}

// ---------------------------------------------------------------------------------------
// TCP/IP normalisation (HTTP/1 on port 80)

/// `GET /admin` and a decoy of the same length that deny.yaml allows.
fn admin_and_decoy() -> (String, String) {
    (http_req("GET", "/admin", ""), http_req("GET", "/index", ""))
}

/// A decoy segment (built by `decoy`) at the same sequence numbers as the real request,
/// the real request, the server's answer.
fn decoy_session(cap: &mut Capture, no_ack: bool, bad_checksum: bool) {
    let (real, decoy) = admin_and_decoy();
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = if no_ack { None } else { c.ack_of(Side::Client) };
    c.raw(
        cap,
        Side::Client,
        (seq, ack),
        PSH,
        decoy.as_bytes(),
        bad_checksum,
    );
    c.seg(cap, Side::Client, PSH, real.as_bytes());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

fn tcp_bad_checksum_decoy(cap: &mut Capture) {
    decoy_session(cap, false, true);
}

fn tcp_no_ack_decoy(cap: &mut Capture) {
    decoy_session(cap, true, false);
}

fn tcp_second_syn(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    // A SYN with a new ISN on the established connection; the server answers with a
    // challenge ACK (RFC 5961 section 4) and keeps its state.
    let seq = c.next_seq(Side::Client);
    c.raw(
        cap,
        Side::Client,
        (seq.wrapping_add(0x3c00_0000), None),
        SYN,
        &[],
        false,
    );
    c.ack(cap, Side::Server);
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

fn tcp_synack_first(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    // From the client's address and port: a SYN-ACK nobody asked for. The server resets
    // it (the reset's sequence number is the stray segment's acknowledgement).
    let stray_ack: u32 = 0x1357_9bdf;
    c.raw(
        cap,
        Side::Client,
        (0x2468_ace0, Some(stray_ack)),
        SYN,
        &[],
        false,
    );
    c.raw(cap, Side::Server, (stray_ack, None), RST, &[], false);
    cap.pause(2_000_000);
    c.handshake(cap);
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

fn tcp_overlap_ooo(cap: &mut Capture) {
    let real = http_req("GET", "/admin", "");
    let mut decoy = real.clone().into_bytes();
    // "/admix": allowed. Same length, differs at one byte.
    decoy[9] = b'x';
    let r = real.as_bytes();
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let base = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    // "GET /adm" in order; byte 8 ('i') held back; then two copies of bytes 9.. that
    // disagree ("x ..." first, "n ..." second); then byte 8.
    c.raw(cap, Side::Client, (base, ack), 0, &r[..8], false);
    let at9 = base.wrapping_add(9);
    c.raw(cap, Side::Client, (at9, ack), PSH, &decoy[9..], false);
    c.raw(cap, Side::Client, (at9, ack), PSH, &r[9..], false);
    c.raw(
        cap,
        Side::Client,
        (base.wrapping_add(8), ack),
        0,
        &r[8..9],
        false,
    );
    c.skip(Side::Client, r.len());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

fn tcp_retransmit_different(cap: &mut Capture) {
    let first = http_req("GET", "/aaaaa", "");
    let real = http_req("GET", "/admin", "");
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    c.raw(cap, Side::Client, (seq, ack), PSH, first.as_bytes(), false);
    // No acknowledgement (lost beyond the tap, says the sender's timer): the same range
    // again, other bytes.
    cap.pause(200_000_000);
    c.seg(cap, Side::Client, PSH, real.as_bytes());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

fn tcp_rst_out_of_window(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    // Far outside the server's receive window: the server ignores it (RFC 5961 section 3).
    c.raw(
        cap,
        Side::Client,
        (seq.wrapping_add(0x2000_0000), None),
        RST,
        &[],
        false,
    );
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

fn tcp_midstream(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.assume_established();
    // The connection carried a first exchange before the capture started.
    c.skip(Side::Client, 517);
    c.skip(Side::Server, 2_233);
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

fn tcp_gap(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "");
    let r = req.as_bytes();
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    // "GET /ad", then "min HTTP/1.1\r\n" which the capture lost, then the rest. The
    // server acknowledges all of it.
    c.seg(cap, Side::Client, 0, &r[..7]);
    c.skip(Side::Client, 14);
    c.seg(cap, Side::Client, PSH, &r[21..]);
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

/// A `GET /admin` of exactly `len` bytes.
pub fn admin_of_len(len: usize) -> String {
    let base = http_req("GET", "/admin", "X-Pad: \r\n");
    let pad = "p".repeat(len.saturating_sub(base.len()));
    http_req("GET", "/admin", &format!("X-Pad: {pad}\r\n"))
}

fn ip_frag_40(cap: &mut Capture) {
    // 20 bytes of TCP header + 300 of request = 40 fragments of 8 bytes.
    let req = admin_of_len(300);
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    let s = c.seg_with(Side::Client, (seq, ack), PSH, req.as_bytes());
    let l4 = tcp_bytes(&s);
    debug_assert_eq!(l4.len(), 320);
    for (k, f) in l4.chunks(8).enumerate() {
        let more = (k + 1) * 8 < l4.len();
        cap.push(ipv4_frame(s.src.0, s.dst.0, s.ip_id, (k * 8, more), f));
    }
    c.skip(Side::Client, req.len());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

fn ip_frag_overlap(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "");
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    let s = c.seg_with(Side::Client, (seq, ack), PSH, req.as_bytes());
    let l4 = tcp_bytes(&s);
    // Bytes 24..32 of the segment are "/admin H". The decoy "/Wdmix H" keeps the TCP
    // checksum ('a' - 10 and 'n' + 10 in the same 16-bit column), so whichever copy a
    // receiver keeps, the segment is valid: "/Wdmix" (allowed) or "/admin".
    debug_assert_eq!(&l4[24..32], b"/admin H");
    let mut decoy = l4[24..32].to_vec();
    decoy[1] = b'W';
    decoy[5] = b'x';
    let (src, dst, id) = (s.src.0, s.dst.0, s.ip_id);
    cap.push(ipv4_frame(src, dst, id, (0, true), &l4[..24]));
    cap.push(ipv4_frame(src, dst, id, (24, true), &decoy));
    cap.push(ipv4_frame(src, dst, id, (24, true), &l4[24..32]));
    cap.push(ipv4_frame(src, dst, id, (32, false), &l4[32..]));
    c.skip(Side::Client, req.len());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

// ---------------------------------------------------------------------------------------
// TLS

fn u16be(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn tls_ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&u16be(body.len()));
    out.extend_from_slice(body);
}

/// A handshake message: type, 24-bit length, body.
fn tls_handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// A TLS 1.3 ClientHello handshake message as browsers send it (without the record).
fn client_hello(cap: &mut Capture, sni: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&cap.bytes::<32>());
    b.push(32);
    b.extend_from_slice(&cap.bytes::<32>());
    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    b.extend_from_slice(&u16be(suites.len() * 2));
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    let mut name = vec![0];
    name.extend_from_slice(&u16be(sni.len()));
    name.extend_from_slice(sni.as_bytes());
    let mut list = u16be(name.len()).to_vec();
    list.extend_from_slice(&name);
    tls_ext(&mut ext, 0, &list);
    tls_ext(&mut ext, 23, &[]);
    tls_ext(&mut ext, 65_281, &[0]);
    tls_ext(&mut ext, 10, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    tls_ext(&mut ext, 11, &[1, 0]);
    let alpn = b"\x00\x0c\x02h2\x08http/1.1";
    tls_ext(&mut ext, 16, alpn);
    tls_ext(
        &mut ext,
        13,
        &[
            0, 16, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08,
            0x06, 0x06, 0x01,
        ],
    );
    tls_ext(&mut ext, 43, &[4, 0x03, 0x04, 0x03, 0x03]);
    tls_ext(&mut ext, 45, &[1, 1]);
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&cap.bytes::<32>());
    tls_ext(&mut ext, 51, &ks);
    b.extend_from_slice(&u16be(ext.len()));
    b.extend_from_slice(&ext);
    tls_handshake(1, &b)
}

fn tls_record(out: &mut Vec<u8>, ty: u8, version: u16, body: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&u16be(body.len()));
    out.extend_from_slice(body);
}

/// ServerHello (TLS 1.3), ChangeCipherSpec and the encrypted rest of the server's flight.
fn server_flight(cap: &mut Capture, session: &[u8]) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&cap.bytes::<32>());
    b.push(session.len() as u8);
    b.extend_from_slice(session);
    b.extend_from_slice(&[0x13, 0x01, 0]);
    let mut ext = Vec::new();
    tls_ext(&mut ext, 43, &[0x03, 0x04]);
    let mut ks = vec![0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&cap.bytes::<32>());
    tls_ext(&mut ext, 51, &ks);
    b.extend_from_slice(&u16be(ext.len()));
    b.extend_from_slice(&ext);
    let mut out = Vec::new();
    tls_record(&mut out, 0x16, 0x0303, &tls_handshake(2, &b));
    tls_record(&mut out, 0x14, 0x0303, &[1]);
    let enc: Vec<u8> = (0..2_100).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut out, 0x17, 0x0303, &enc);
    out
}

/// A TLS connection to 443 whose ClientHello (SNI x.evil.test) is sent in one record, or
/// in two cut inside the server name ("x.ev" | "il.test"), in TCP segments of `segment`
/// bytes.
fn tls_session(cap: &mut Capture, split_in_sni: bool, segment: usize) {
    let mut c = cap.conn((WEB, 443));
    c.handshake(cap);
    let sni = "x.evil.test";
    let hello = client_hello(cap, sni);
    // Handshake header 4, version 2, random 32, session id length 1: the id is 39..71.
    let session = hello[39..71].to_vec();
    let mut recs = Vec::new();
    let cut = hello
        .windows(sni.len())
        .position(|w| w == sni.as_bytes())
        .map(|p| p + 4)
        .filter(|_| split_in_sni);
    match cut {
        Some(at) => {
            tls_record(&mut recs, 0x16, 0x0301, &hello[..at]);
            tls_record(&mut recs, 0x16, 0x0301, &hello[at..]);
        }
        None => tls_record(&mut recs, 0x16, 0x0301, &hello),
    }
    let n = recs.chunks(segment).count();
    for (k, part) in recs.chunks(segment).enumerate() {
        let last = k + 1 == n;
        c.seg(cap, Side::Client, if last { PSH } else { 0 }, part);
        if !last && k % 2 == 1 {
            c.ack(cap, Side::Server);
        }
    }
    let flight = server_flight(cap, &session);
    c.send(cap, Side::Server, &flight);
    let mut fin = Vec::new();
    tls_record(&mut fin, 0x14, 0x0303, &[1]);
    let finished: Vec<u8> = (0..53).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut fin, 0x17, 0x0303, &finished);
    let request: Vec<u8> = (0..120).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut fin, 0x17, 0x0303, &request);
    let mut answer = Vec::new();
    let body: Vec<u8> = (0..300).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut answer, 0x17, 0x0303, &body);
    c.exchange(cap, &fin, &answer);
    c.close(cap);
}

fn tls_sni_split_records(cap: &mut Capture) {
    tls_session(cap, true, MSS);
}

fn tls_one_byte_segments(cap: &mut Capture) {
    tls_session(cap, false, 1);
}

fn baseline_tls(cap: &mut Capture) {
    tls_session(cap, false, MSS);
}

// ---------------------------------------------------------------------------------------
// The cases

/// A fact a receiver acts on, as an event must report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// Method and path (compared after the normalisation PRODUCT.md describes).
    Http(&'static str, &'static str),
    /// Verb and one table the statement touches.
    Sql(&'static str, &'static str),
    /// Command and key (if any).
    Redis(&'static str, Option<&'static str>),
    Tls(&'static str),
}

impl Fact {
    /// `http GET /admin`, `sql DROP t`, `redis GET secret:1`, `tls x.evil.test`.
    pub fn to_text(self) -> String {
        match self {
            Fact::Http(m, p) => format!("http {m} {p}"),
            Fact::Sql(v, t) => format!("sql {v} {t}"),
            Fact::Redis(c, None) => format!("redis {c}"),
            Fact::Redis(c, Some(k)) => format!("redis {c} {k}"),
            Fact::Tls(s) => format!("tls {s}"),
        }
    }
}

/// One acceptable outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// deny.yaml: the request (or its flow) denied by this rule. allow.yaml: unused.
    Rule(&'static str),
    /// The flow became uninspectable for this cause (`control::Uninspectable::as_str`):
    /// under deny.yaml, `onUninspectable` denied it naming the cause; under allow.yaml
    /// (no L7 rules, so no decision), the summary counts the cause.
    Blind(&'static str),
    /// allow.yaml: the event reports this fact.
    Facts(Fact),
}

impl Outcome {
    pub fn to_text(self) -> String {
        match self {
            Outcome::Rule(r) => format!("rule:{r}"),
            Outcome::Blind(c) => format!("blind:{c}"),
            Outcome::Facts(f) => f.to_text(),
        }
    }
}

/// One trick.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// `<class>-<trick>`; the capture is `<name>.pcap`.
    pub name: &'static str,
    pub class: &'static str,
    /// What the trick is.
    pub trick: &'static str,
    /// Under deny.yaml: any of these is the correct outcome.
    pub deny: &'static [Outcome],
    /// Under allow.yaml + `--log-all`: any of these is the correct outcome.
    pub allow: &'static [Outcome],
    /// A fact that must not be reported under allow.yaml unless the flow went blind: the
    /// decoy a receiver never acts on.
    pub absent: Option<Fact>,
    build: fn(&mut Capture),
}

impl Case {
    pub fn capture(&self) -> Capture {
        let mut cap = Capture::for_case(self.name);
        (self.build)(&mut cap);
        cap
    }

    pub fn file(&self) -> String {
        format!("{}.pcap", self.name)
    }
}

use Outcome::{Blind, Facts, Rule};

const ADMIN: Fact = Fact::Http("GET", "/admin");
const DROP_T: Fact = Fact::Sql("DROP", "t");
const FLUSHALL: Fact = Fact::Redis("FLUSHALL", None);
const EVIL: Fact = Fact::Tls("x.evil.test");

const DENY_ADMIN: &[Outcome] = &[Rule("deny-admin")];
const GET_ADMIN: &[Outcome] = &[Facts(ADMIN)];

/// Every case, in index order.
pub const CASES: &[Case] = &[
    // Baselines: the policies and the captures work without a trick.
    Case {
        name: "baseline-http1",
        class: "baseline",
        trick: "none: GET /index.html then GET /admin on one keep-alive connection",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: baseline_http1,
    },
    Case {
        name: "baseline-http1-delete",
        class: "baseline",
        trick: "none: GET /api/items/7 then DELETE /api/items/7",
        deny: &[Rule("deny-delete")],
        allow: &[Facts(Fact::Http("DELETE", "/api/items/7"))],
        absent: None,
        build: baseline_http1_delete,
    },
    Case {
        name: "baseline-http2",
        class: "baseline",
        trick: "none: h2 prior knowledge on 8080, GET /admin in one HEADERS frame",
        deny: &[Rule("deny-h2-admin")],
        allow: GET_ADMIN,
        absent: None,
        build: baseline_http2,
    },
    Case {
        name: "baseline-postgres",
        class: "baseline",
        trick: "none: a SELECT then DROP TABLE t, simple queries",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: baseline_postgres,
    },
    Case {
        name: "baseline-mysql",
        class: "baseline",
        trick: "none: SET autocommit=1 then TRUNCATE TABLE t, COM_QUERY",
        deny: &[Rule("deny-mysql-drop")],
        allow: &[Facts(Fact::Sql("TRUNCATE", "t"))],
        absent: None,
        build: baseline_mysql,
    },
    Case {
        name: "baseline-redis",
        class: "baseline",
        trick: "none: GET counter:7 then FLUSHALL (RESP)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: baseline_redis,
    },
    Case {
        name: "baseline-redis-key",
        class: "baseline",
        trick: "none: GET secret:1 (RESP)",
        deny: &[Rule("deny-redis-secret")],
        allow: &[Facts(Fact::Redis("GET", Some("secret:1")))],
        absent: None,
        build: baseline_redis_key,
    },
    Case {
        name: "baseline-tls",
        class: "baseline",
        trick: "none: a TLS 1.3 ClientHello with SNI x.evil.test in one record and segment",
        deny: &[Rule("deny-evil-sni")],
        allow: &[Facts(EVIL)],
        absent: None,
        build: baseline_tls,
    },
    // HTTP/1 leniency.
    Case {
        name: "http1-leading-empty-lines",
        class: "http1",
        trick: "two empty lines (CRLF CRLF) before the request line (RFC 9112 2.2: servers ignore them)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_leading_empty_lines,
    },
    Case {
        name: "http1-bare-lf",
        class: "http1",
        trick: "every line of the head ends in a bare LF",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_bare_lf,
    },
    Case {
        name: "http1-70-headers",
        class: "http1",
        trick: "70 header fields (more than httparse's usual 64-entry array)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_70_headers,
    },
    Case {
        name: "http1-head-24k",
        class: "http1",
        trick: "a 24 KiB head (padding fields), over 16 segments",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_head_24k,
    },
    Case {
        name: "http1-head-900k",
        class: "http1",
        trick: "a 900 KiB head (16 KiB padding fields), under the 1 MiB + 4 KiB head limit",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_head_900k,
    },
    Case {
        name: "http1-head-over-limit",
        class: "http1",
        trick: "a head of 1 MiB + 12 KiB, over every head limit: must fail closed (the server answers 431)",
        deny: &[Blind("parser_limit"), Blind("carry_overflow")],
        allow: &[Blind("parser_limit"), Blind("carry_overflow")],
        absent: None,
        build: http1_head_over_limit,
    },
    Case {
        name: "http1-unlisted-method",
        class: "http1",
        trick: "PROPFIND /admin (a method no rule lists; the path rule must still deny)",
        deny: DENY_ADMIN,
        allow: &[Facts(Fact::Http("PROPFIND", "/admin"))],
        absent: None,
        build: http1_unlisted_method,
    },
    Case {
        name: "http1-double-space",
        class: "http1",
        trick: "two spaces between method and path (GET  /admin)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_double_space,
    },
    Case {
        name: "http1-tab",
        class: "http1",
        trick: "a tab between method and path (RFC 9112 3: recipients may split on any whitespace)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_tab,
    },
    Case {
        name: "http1-pipeline-100",
        class: "http1",
        trick: "100 pipelined allowed GETs, then GET /admin, sent back to back before any answer",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_pipeline_100,
    },
    Case {
        name: "http1-percent-encoded",
        class: "http1",
        trick: "GET /%61dmin (percent-encoded unreserved character)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_percent_encoded,
    },
    Case {
        name: "http1-dot-segments",
        class: "http1",
        trick: "GET /x/../admin (dot segments)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_dot_segments,
    },
    Case {
        name: "http1-double-slash",
        class: "http1",
        trick: "GET //admin (repeated slashes; nginx merges them)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_double_slash,
    },
    Case {
        name: "http1-absolute-uri",
        class: "http1",
        trick: "GET http://web.test/admin (absolute-form target, which servers must accept)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_absolute_uri,
    },
    Case {
        name: "http1-cl-te",
        class: "http1",
        trick: "POST with Content-Length and Transfer-Encoding: chunked; the chunked body ends at once and smuggles GET /admin, which Content-Length hides",
        deny: &[Blind("ambiguous_framing"), Rule("deny-admin")],
        allow: &[Blind("ambiguous_framing")],
        absent: None,
        build: http1_cl_te,
    },
    Case {
        name: "http1-conflicting-cl",
        class: "http1",
        trick: "POST with Content-Length: 0 and a second Content-Length covering a smuggled GET /admin (the server refuses with 400)",
        deny: &[
            Blind("ambiguous_framing"),
            Blind("parser_invalid"),
            Rule("deny-admin"),
        ],
        allow: &[Blind("ambiguous_framing"), Blind("parser_invalid")],
        absent: None,
        build: http1_conflicting_cl,
    },
    // HTTP/2.
    Case {
        name: "http2-continuation-100",
        class: "http2",
        trick: "h2 prior knowledge: the header block with :path /admin split over HEADERS and 100 CONTINUATION frames",
        deny: &[Rule("deny-h2-admin")],
        allow: GET_ADMIN,
        absent: None,
        build: http2_continuation_100,
    },
    Case {
        name: "http2-h2c-upgrade",
        class: "http2",
        trick: "GET / with Upgrade: h2c, 101, then GET /admin on stream 3",
        deny: &[Rule("deny-h2-admin")],
        allow: GET_ADMIN,
        absent: None,
        build: http2_h2c_upgrade,
    },
    // SQL.
    Case {
        name: "sql-pg-long-comment",
        class: "sql",
        trick: "PostgreSQL simple Query: a 40 KB comment, then DROP TABLE t",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_pg_long_comment,
    },
    Case {
        name: "sql-pg-1000-selects",
        class: "sql",
        trick: "one PostgreSQL Query: 1,000 SELECT 1; then DROP TABLE t (past any statement limit: judged, or fail closed)",
        deny: &[Rule("deny-pg-drop"), Blind("parser_limit")],
        allow: &[Facts(DROP_T), Blind("parser_limit")],
        absent: None,
        build: sql_pg_1000_selects,
    },
    Case {
        name: "sql-pg-string-literal",
        class: "sql",
        trick: "SELECT 'it''s; DROP TABLE x' AS note; DROP TABLE t (a literal holding a fake statement, then a real one)",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: Some(Fact::Sql("DROP", "x")),
        build: sql_pg_string_literal,
    },
    Case {
        name: "sql-pg-dollar-quote",
        class: "sql",
        trick: "SELECT $q$'$q$ AS a; DROP TABLE t; -- ' (a quote inside a dollar-quoted string; a lexer without dollar quotes sees one string to the end)",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_pg_dollar_quote,
    },
    Case {
        name: "sql-mysql-long-comment",
        class: "sql",
        trick: "MySQL COM_QUERY: a 40 KB comment, then DROP TABLE t",
        deny: &[Rule("deny-mysql-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_mysql_long_comment,
    },
    Case {
        name: "sql-mysql-executable-comment",
        class: "sql",
        trick: "MySQL COM_QUERY /*!50000 DROP TABLE t */ (an executable comment the server runs)",
        deny: &[Rule("deny-mysql-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_mysql_executable_comment,
    },
    // Redis.
    Case {
        name: "redis-pipeline-10000-ping",
        class: "redis",
        trick: "10,000 pipelined PINGs, then FLUSHALL (the server answers as they arrive)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_pipeline_10000_ping,
    },
    Case {
        name: "redis-big-set-value",
        class: "redis",
        trick: "SET with a 1 MiB value, then FLUSHALL",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_big_set_value,
    },
    Case {
        name: "redis-inline-hex-escape",
        class: "redis",
        trick: "inline command \"\\x46LUSHALL\" (sdssplitargs decodes \\xHH inside double quotes: FLUSHALL)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_inline_hex_escape,
    },
    Case {
        name: "redis-inline-key-escape",
        class: "redis",
        trick: "inline GET \"\\x73ecret:1\" (the key is secret:1 once unescaped)",
        deny: &[Rule("deny-redis-secret")],
        allow: &[Facts(Fact::Redis("GET", Some("secret:1")))],
        absent: None,
        build: redis_inline_key_escape,
    },
    Case {
        name: "redis-lowercase",
        class: "redis",
        trick: "flushall in lower case (commands are case-insensitive)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_lowercase,
    },
    // TCP normalisation.
    Case {
        name: "tcp-bad-checksum-decoy",
        class: "tcp",
        trick: "a decoy GET /index with a bad TCP checksum at the sequence numbers of the real GET /admin, decoy first (receivers drop it)",
        deny: &[Rule("deny-admin"), Blind("overlap_mismatch")],
        allow: &[Facts(ADMIN), Blind("overlap_mismatch")],
        absent: Some(Fact::Http("GET", "/index")),
        build: tcp_bad_checksum_decoy,
    },
    Case {
        name: "tcp-no-ack-decoy",
        class: "tcp",
        trick: "a decoy GET /index without the ACK flag on the established flow at the sequence numbers of the real GET /admin, decoy first (Linux and BSD drop it)",
        deny: &[Rule("deny-admin"), Blind("overlap_mismatch")],
        allow: &[Facts(ADMIN), Blind("overlap_mismatch")],
        absent: Some(Fact::Http("GET", "/index")),
        build: tcp_no_ack_decoy,
    },
    Case {
        name: "tcp-second-syn",
        class: "tcp",
        trick: "after the handshake a SYN with a new ISN (the server sends a challenge ACK), then GET /admin at the original sequence numbers",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: tcp_second_syn,
    },
    Case {
        name: "tcp-synack-first",
        class: "tcp",
        trick: "a SYN-ACK from the client's address and port first (the server resets it), so the flow's direction may be guessed wrong; then the real handshake and GET /admin",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: tcp_synack_first,
    },
    Case {
        name: "tcp-overlap-ooo",
        class: "tcp",
        trick: "GET /adm in order, then two held out-of-order copies of the rest that disagree (x... first, n... second), then the missing byte: /admix or /admin",
        deny: &[Blind("overlap_mismatch"), Rule("deny-admin")],
        allow: &[Blind("overlap_mismatch")],
        absent: None,
        build: tcp_overlap_ooo,
    },
    Case {
        name: "tcp-retransmit-different",
        class: "tcp",
        trick: "GET /aaaaa in order, unacknowledged, then a retransmission of the same range carrying GET /admin, which the server answers",
        deny: &[
            Blind("overlap_mismatch"),
            Blind("unverified_retransmission"),
            Rule("deny-admin"),
        ],
        allow: &[
            Blind("overlap_mismatch"),
            Blind("unverified_retransmission"),
        ],
        absent: None,
        build: tcp_retransmit_different,
    },
    Case {
        name: "tcp-rst-out-of-window",
        class: "tcp",
        trick: "a RST far outside the receive window (the server ignores it), then GET /admin",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: tcp_rst_out_of_window,
    },
    Case {
        name: "tcp-midstream",
        class: "tcp",
        trick: "the capture starts mid-connection (no handshake) with GET /admin",
        deny: &[Rule("deny-admin"), Blind("midstream")],
        allow: &[Facts(ADMIN), Blind("midstream")],
        absent: None,
        build: tcp_midstream,
    },
    Case {
        name: "tcp-gap",
        class: "tcp",
        trick: "the middle segment of GET /admin (\"min HTTP/1.1\\r\\n\") is missing from the capture; the server acknowledges it",
        deny: &[Blind("gap")],
        allow: &[Blind("gap")],
        absent: None,
        build: tcp_gap,
    },
    // IP.
    Case {
        name: "ip-frag-40",
        class: "ip",
        trick: "the segment carrying GET /admin in 40 IPv4 fragments of 8 bytes, in order",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: ip_frag_40,
    },
    Case {
        name: "ip-frag-overlap",
        class: "ip",
        trick: "IPv4 fragments of GET /admin where two copies of bytes 24-31 disagree (/Wdmix H first, /admin H second, both checksum-valid); the receiver discards the whole datagram (Linux, RFC 5722), so its fragments are dropped and the request's bytes never arrive: a gap",
        deny: &[Blind("overlap_mismatch"), Blind("gap"), Rule("deny-admin")],
        allow: &[Blind("overlap_mismatch"), Blind("gap")],
        absent: None,
        build: ip_frag_overlap,
    },
    // TLS.
    Case {
        name: "tls-sni-split-records",
        class: "tls",
        trick: "the ClientHello split over two TLS records, the cut inside the server name (x.ev | il.test)",
        deny: &[Rule("deny-evil-sni")],
        allow: &[Facts(EVIL)],
        absent: None,
        build: tls_sni_split_records,
    },
    Case {
        name: "tls-one-byte-segments",
        class: "tls",
        trick: "the ClientHello record sent one byte per TCP segment",
        deny: &[Rule("deny-evil-sni")],
        allow: &[Facts(EVIL)],
        absent: None,
        build: tls_one_byte_segments,
    },
];

// ---------------------------------------------------------------------------------------
// Policies, index, README

/// The deny policy: every client may reach every server at L4 by app; L7 deny rules.
pub const DENY_YAML: &str = r#"# The evasion corpus's deny policy (generated by gen-evasion; see README.md).
# Clients 10.1.0.0/16 may reach each server at L4 by app; the deny rules judge requests.
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: evasion-deny}
spec:
  mode: protect
  defaultAction: deny
  onUninspectable: deny
  groups:
    clients:  {cidrs: [10.1.0.0/16]}
    web:      {cidrs: [10.2.0.10/32]}
    postgres: {cidrs: [10.2.0.20/32]}
    mysql:    {cidrs: [10.2.0.21/32]}
    redis:    {cidrs: [10.2.0.30/32]}
  rules:
    - {id: web-http, from: [clients], to: [web], ports: [80, 8080], app: http, action: allow}
    - {id: web-grpc, from: [clients], to: [web], ports: [8080], app: grpc, action: allow}
    - {id: web-tls, from: [clients], to: [web], ports: [443], app: tls, action: allow}
    - {id: pg, from: [clients], to: [postgres], ports: [5432], app: postgres, action: allow}
    - {id: my, from: [clients], to: [mysql], ports: [3306], app: mysql, action: allow}
    - {id: cache, from: [clients], to: [redis], ports: [6379], app: redis, action: allow}
    - id: deny-admin
      from: ["*"]
      to: [web]
      ports: [80]
      app: http
      http: [{paths: ["/admin", "/admin/*"]}]
      action: deny
    - id: deny-delete
      from: ["*"]
      to: [web]
      ports: [80, 8080]
      app: http
      http: [{methods: [DELETE]}]
      action: deny
    - id: deny-h2-admin
      from: ["*"]
      to: [web]
      ports: [8080]
      app: http
      http: [{paths: ["/admin", "/admin/*"]}]
      action: deny
    - id: deny-pg-drop
      from: ["*"]
      to: [postgres]
      app: postgres
      sql: [{verbs: [DROP, TRUNCATE]}]
      action: deny
    - id: deny-mysql-drop
      from: ["*"]
      to: [mysql]
      app: mysql
      sql: [{verbs: [DROP, TRUNCATE]}]
      action: deny
    - id: deny-redis-cmd
      from: ["*"]
      to: [redis]
      app: redis
      redis: [{commands: [FLUSHALL, FLUSHDB, CONFIG]}]
      action: deny
    - id: deny-redis-secret
      from: ["*"]
      to: [redis]
      app: redis
      redis: [{keys: ["secret:*"]}]
      action: deny
    - id: deny-evil-sni
      from: ["*"]
      to: [web]
      ports: [443]
      app: tls
      tls: [{sni: ["*.evil.test"]}]
      action: deny
"#;

/// The same without the deny rules.
pub const ALLOW_YAML: &str = r#"# The evasion corpus's allow policy: deny.yaml without its deny rules (generated by
# gen-evasion; see README.md). With no L7 rule, nothing governs a flow that turns
# uninspectable, so onUninspectable decides nothing: such flows are only counted.
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: evasion-allow}
spec:
  mode: protect
  defaultAction: deny
  onUninspectable: deny
  groups:
    clients:  {cidrs: [10.1.0.0/16]}
    web:      {cidrs: [10.2.0.10/32]}
    postgres: {cidrs: [10.2.0.20/32]}
    mysql:    {cidrs: [10.2.0.21/32]}
    redis:    {cidrs: [10.2.0.30/32]}
  rules:
    - {id: web-http, from: [clients], to: [web], ports: [80, 8080], app: http, action: allow}
    - {id: web-grpc, from: [clients], to: [web], ports: [8080], app: grpc, action: allow}
    - {id: web-tls, from: [clients], to: [web], ports: [443], app: tls, action: allow}
    - {id: pg, from: [clients], to: [postgres], ports: [5432], app: postgres, action: allow}
    - {id: my, from: [clients], to: [mysql], ports: [3306], app: mysql, action: allow}
    - {id: cache, from: [clients], to: [redis], ports: [6379], app: redis, action: allow}
"#;

fn outcomes(o: &[Outcome]) -> String {
    o.iter()
        .map(|x| x.to_text())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The index: one line per case, tab-separated, after a `#` header line.
pub fn index(committed: &dyn Fn(&Case) -> bool) -> String {
    let mut s = String::from("# name\tclass\tcommitted\tdeny\tallow\tabsent\ttrick\n");
    for c in CASES {
        let _ = writeln!(
            s,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.name,
            c.class,
            if committed(c) { "yes" } else { "no" },
            outcomes(c.deny),
            outcomes(c.allow),
            c.absent.map_or_else(|| "-".to_string(), |f| f.to_text()),
            c.trick
        );
    }
    s
}

fn readme(committed: &dyn Fn(&Case) -> bool) -> String {
    let mut s = String::from(
        "# Evasion corpus\n\
         \n\
         One small capture per trick an attacker may use to walk a request around a deny rule.\n\
         Every capture carries exactly one request that `deny.yaml` must deny (sometimes after\n\
         allowed ones). Generated by `benches/src/evasion.rs`; do not edit by hand:\n\
         \n\
         ```\n\
         cargo run -p benches --bin gen-evasion -- tests/data/evasion\n\
         ```\n\
         \n\
         `dataplane/tests/evasion.rs` replays each capture with `palisade replay` in protect\n\
         mode: under `deny.yaml` the request must be denied by one of the outcomes of the\n\
         index's `deny` column (`rule:ID`, or `blind:CAUSE`: `onUninspectable` denied the flow\n\
         naming that cause), the exit status must be 0, and 1 with `--fail-on-deny`; under\n\
         `allow.yaml` with `--log-all` one of the `allow` column's outcomes must hold (a fact\n\
         reported in an event: `http METHOD PATH` with the path compared after normalisation,\n\
         `sql VERB TABLE`, `redis COMMAND [KEY]`, `tls SNI`; or `blind:CAUSE`: the summary\n\
         counts the flow as uninspectable for that cause, where the firewall must fail closed),\n\
         and the `absent` fact (a decoy) must not be reported unless the flow went blind.\n\
         `benches/tests/evasion_corpus.rs` checks that these files are what the generator\n\
         writes now.\n\
         \n\
         Addresses: clients in 10.1.0.0/16; web 10.2.0.10 (HTTP/1 on 80, h2c on 8080, TLS on\n\
         443), PostgreSQL 10.2.0.20:5432, MySQL 10.2.0.21:3306, Redis 10.2.0.30:6379. The first\n\
         packet of every capture is at 2026-11-22T06:00:00Z.\n\
         \n\
         Captures over 512 KiB are not committed (listed in `.gitignore`, `committed` = `no` in\n\
         `cases.tsv`): the test builds them into a temporary directory from the same code.\n\
         \n\
         ## Cases\n\
         \n",
    );
    for c in CASES {
        let _ = writeln!(
            s,
            "- `{}`: {}. deny.yaml: {}; allow.yaml: {}{}{}",
            c.name,
            c.trick,
            outcomes(c.deny),
            outcomes(c.allow),
            c.absent
                .map_or_else(String::new, |f| format!("; never `{}`", f.to_text())),
            if committed(c) {
                ""
            } else {
                " (not committed: built by the test)"
            }
        );
    }
    s
}

/// Writes one case's capture into `dir`; returns its path.
pub fn write_case(case: &Case, dir: &Path) -> io::Result<std::path::PathBuf> {
    let path = dir.join(case.file());
    case.capture().write(&path)?;
    Ok(path)
}

pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

/// What the corpus wrote.
#[derive(Clone, Debug, Default)]
pub struct Written {
    pub cases: usize,
    pub committed: usize,
    pub bytes: usize,
}

/// Writes every capture, the index, the README, both policies and a `.gitignore` naming
/// the captures too large to commit.
pub fn write_corpus(dir: &Path) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut big = Vec::new();
    let mut w = Written::default();
    for c in CASES {
        let cap = c.capture();
        cap.write(&dir.join(c.file()))?;
        w.cases += 1;
        w.bytes += cap.pcap_len();
        if cap.pcap_len() > COMMIT_LIMIT {
            big.push(c.name);
        } else {
            w.committed += 1;
        }
    }
    let committed = |c: &Case| !big.contains(&c.name);
    std::fs::write(dir.join("cases.tsv"), index(&committed))?;
    std::fs::write(dir.join("README.md"), readme(&committed))?;
    std::fs::write(dir.join("deny.yaml"), DENY_YAML)?;
    std::fs::write(dir.join("allow.yaml"), ALLOW_YAML)?;
    let mut ignore = String::from("# Built by the tests (over 512 KiB each); see README.md.\n");
    for b in &big {
        let _ = writeln!(ignore, "/{b}.pcap");
    }
    std::fs::write(dir.join(".gitignore"), ignore)?;
    Ok(w)
}
