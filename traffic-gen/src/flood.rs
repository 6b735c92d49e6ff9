//! A SYN flood with a few real connections inside it: `syns` SYNs from spoofed sources
//! (10.200.0.0/16, every port) to one server that never answer, and `keep` HTTP/1.1
//! connections that complete their handshake before the flood and send a request and get
//! a response after it. For the flood test and the flood figures of benches/RESULTS.md.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::generate::{PSH, PcapOut, Rng, SYN, Side, TcpConversation};

/// What [`write_syn_flood`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodStats {
    pub packets: u64,
    pub syns: u64,
    /// Connections that complete and carry one request each.
    pub kept: u64,
}

/// The server every flow goes to.
pub const FLOOD_SERVER: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 2, 7), 8080);
/// The kept connections' client address (ports 40000 and up).
pub const KEPT_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);

/// Writes the flood to `path` (pcap, Ethernet): the kept connections' handshakes, then
/// the SYNs one microsecond apart, then each kept connection's request and response.
pub fn write_syn_flood(path: &Path, syns: u64, keep: u64, seed: u64) -> io::Result<FloodStats> {
    let mut out = PcapOut::create(path)?;
    let mut st = FloodStats::default();
    let mut rng = Rng::new(seed);
    let mut frame = Vec::with_capacity(256);
    let mut ts: u64 = 1_700_000_000_000_000_000;
    let emit = |out: &mut PcapOut, ts: &mut u64, frame: &mut Vec<u8>, st: &mut FloodStats| {
        out.write(*ts, frame);
        frame.clear();
        *ts += 1_000;
        st.packets += 1;
    };
    let mut kept: Vec<TcpConversation> = (0..keep)
        .map(|i| {
            let port = 40_000 + (i as u16);
            let isn = [rng.next_u64() as u32, rng.next_u64() as u32];
            TcpConversation::new((KEPT_CLIENT, port), FLOOD_SERVER, isn)
        })
        .collect();
    for c in &mut kept {
        c.segment(Side::Client, SYN, &[], &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
        c.segment(Side::Server, SYN, &[], &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
        c.segment(Side::Client, 0, &[], &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
    }
    for i in 0..syns {
        let src = Ipv4Addr::new(10, 200, (i >> 16) as u8, (i >> 8) as u8);
        let port = 1024 + ((i & 0xff) as u16) * 251 % 64_000;
        let mut c = TcpConversation::new((src, port), FLOOD_SERVER, [rng.next_u64() as u32, 0]);
        c.segment(Side::Client, SYN, &[], &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
        st.syns += 1;
    }
    for (i, c) in kept.iter_mut().enumerate() {
        let req = format!(
            "GET /api/orders/{i} HTTP/1.1\r\nHost: orders.shop\r\nUser-Agent: flood-test/1\r\n\r\n"
        );
        c.segment(Side::Client, PSH, req.as_bytes(), &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
        let body = "{\"ok\":true}";
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        c.segment(Side::Server, PSH, resp.as_bytes(), &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
        c.segment(Side::Client, 0, &[], &mut frame);
        emit(&mut out, &mut ts, &mut frame, &mut st);
        st.kept += 1;
    }
    out.finish()?;
    Ok(st)
}
