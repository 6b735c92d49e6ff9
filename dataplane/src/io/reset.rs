//! TCP resets for a denied packet, so both ends learn at once that the connection is over:
//! the client sees "connection reset" instead of a hang, the server frees its socket.
//!
//! The resets are built from the dropped packet alone. For a packet client -> server
//! carrying `seq` and `ack`:
//! - to the server: RST from the client with `seq` (the server's next expected byte,
//!   since this packet never arrives);
//! - to the client: RST from the server with `seq = ack` (the client's next expected byte
//!   from the server, exact in request/response protocols where the server has nothing in
//!   flight when a request is denied; Linux ignores a RST that is only in-window and
//!   answers it with a challenge ACK, RFC 5961).
//!
//! A SYN gets one RST+ACK back to its sender (`ack = seq + 1`): the server never saw it.
//!
//! Every packet palisade sends through its raw sockets carries a firewall mark
//! (`SO_MARK`, [`DEFAULT_MARK`] = 0x5041, "PA", or `$PALISADE_MARK`), and
//! `deploy/nfqueue-rules.sh` returns marked packets before they reach the queue. Without
//! it, a reset to an end on palisade's own node (NFQUEUE on INPUT/OUTPUT: the reset
//! passes OUTPUT, and INPUT when the end is local) would be queued again, judged as a
//! packet of the denied flow and dropped, and that end would wait for its timeout.

use std::io;
use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxNetSlice, LaxSlicedPacket, PacketBuilder, TransportSlice};
use socket2::{Domain, Protocol, Socket, Type};

use super::Privilege;

/// The resets for one dropped packet: up to two IP packets, buffers reused.
#[derive(Default)]
pub struct Resets {
    /// (destination address, IP packet): to the packet's sender, then to its receiver.
    pub packets: [(Option<IpAddr>, Vec<u8>); 2],
    /// The dropped frame's Ethernet addresses (src, dst), when it had an Ethernet header.
    pub macs: Option<([u8; 6], [u8; 6])>,
}

const TTL: u8 = 64;

/// The firewall mark on palisade's own packets when nothing else is configured: "PA".
pub const DEFAULT_MARK: u32 = 0x5041;

/// The environment variable that overrides [`DEFAULT_MARK`]: decimal or `0x` hex; `0`
/// sends unmarked packets (only for FORWARD-only steering, where they are never queued).
pub const MARK_ENV: &str = "PALISADE_MARK";

/// Reads a mark as `nfqueue-rules.sh --mark` and iptables take it: decimal or `0x` hex.
pub fn parse_mark(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The mark to put on palisade's packets: `$PALISADE_MARK` when set, else [`DEFAULT_MARK`].
pub fn configured_mark() -> io::Result<u32> {
    match std::env::var(MARK_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MARK),
        Ok(v) => parse_mark(&v).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{MARK_ENV}={v:?}: expected a firewall mark, decimal or 0x hex (e.g. 0x5041)"
                ),
            )
        }),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{MARK_ENV}: {e}"),
        )),
    }
}

impl Resets {
    pub fn clear(&mut self) {
        for p in &mut self.packets {
            p.0 = None;
            p.1.clear();
        }
        self.macs = None;
    }

    /// Builds the resets for `packet` (an IP packet, or an Ethernet frame when `ethernet`).
    /// Returns how many were built: 0 when the packet is not TCP, or is itself a RST.
    pub fn build(&mut self, packet: &[u8], ethernet: bool) -> usize {
        self.clear();
        let sliced = if ethernet {
            LaxSlicedPacket::from_ethernet(packet).ok()
        } else {
            LaxSlicedPacket::from_ip(packet).ok()
        };
        let Some(p) = sliced else { return 0 };
        if ethernet
            && let Some(etherparse::LinkHeader::Ethernet2(h)) =
                p.link.as_ref().and_then(|l| l.to_header())
        {
            self.macs = Some((h.source, h.destination));
        }
        let (src, dst) = match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => (
                IpAddr::from(v4.header().source_addr()),
                IpAddr::from(v4.header().destination_addr()),
            ),
            Some(LaxNetSlice::Ipv6(v6)) => (
                IpAddr::from(v6.header().source_addr()),
                IpAddr::from(v6.header().destination_addr()),
            ),
            _ => return 0,
        };
        let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
            return 0;
        };
        if tcp.rst() {
            return 0;
        }
        let seq = tcp.sequence_number();
        let payload_len = tcp.payload().len() as u32;
        let (sport, dport) = (tcp.source_port(), tcp.destination_port());
        let mut n = 0;
        if tcp.syn() && !tcp.ack() {
            let ack = seq.wrapping_add(1).wrapping_add(payload_len);
            if write_rst(&mut self.packets[0].1, dst, src, dport, sport, 0, Some(ack)) {
                self.packets[0].0 = Some(src);
                n += 1;
            }
            return n;
        }
        // To the sender: as if from the receiver, at the sender's next expected byte.
        let to_sender_seq = if tcp.ack() {
            tcp.acknowledgment_number()
        } else {
            0
        };
        let consumed = payload_len
            .wrapping_add(u32::from(tcp.syn()))
            .wrapping_add(u32::from(tcp.fin()));
        if write_rst(
            &mut self.packets[0].1,
            dst,
            src,
            dport,
            sport,
            to_sender_seq,
            Some(seq.wrapping_add(consumed)),
        ) {
            self.packets[0].0 = Some(src);
            n += 1;
        }
        // To the receiver: as if from the sender, at the byte this packet would have been.
        if write_rst(&mut self.packets[1].1, src, dst, sport, dport, seq, None) {
            self.packets[1].0 = Some(dst);
            n += 1;
        }
        n
    }
}

/// Writes one RST (with ACK when `ack` is given) into `out`. False when the address
/// families differ (cannot happen for one packet) or writing fails.
fn write_rst(
    out: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
) -> bool {
    out.clear();
    let step = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), TTL),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), TTL),
        _ => return false,
    };
    let mut tcp = step.tcp(sport, dport, seq, 0).rst();
    if let Some(a) = ack {
        tcp = tcp.ack(a);
    }
    tcp.write(out, &[]).is_ok()
}

/// Sends IP packets through raw sockets (the kernel routes them and adds the link header).
/// Every packet carries the sender's firewall mark, so the steering rules let it pass
/// without queueing it.
pub struct RawSender {
    v4: Option<Socket>,
    v6: Option<Socket>,
    mark: u32,
    pub sent: u64,
    pub failed: u64,
}

impl RawSender {
    /// Raw sockets marking their packets with [`configured_mark`].
    pub fn open() -> io::Result<Self> {
        Self::open_with_mark(configured_mark()?)
    }

    /// Raw sockets marking their packets with `mark` (0: unmarked).
    pub fn open_with_mark(mark: u32) -> io::Result<Self> {
        // IPPROTO_RAW implies "header included" on Linux, for IPv4 and IPv6.
        let raw = Protocol::from(255);
        let v4 = Socket::new(Domain::IPV4, Type::RAW, Some(raw))
            .map_err(|e| super::socket_error(e, "raw IPv4 socket", Privilege::RawReset))?;
        let v6 = Socket::new(Domain::IPV6, Type::RAW, Some(raw)).ok();
        if mark != 0 {
            // SO_MARK needs CAP_NET_ADMIN, which NFQUEUE needs anyway. An unmarked reset
            // would be queued again on INPUT/OUTPUT and dropped: fail rather than hang.
            let set = |s: &Socket| {
                s.set_mark(mark).map_err(|e| {
                    super::socket_error(
                        e,
                        &format!("setting firewall mark {mark:#x} on the reset socket (SO_MARK)"),
                        Privilege::SoMark,
                    )
                })
            };
            set(&v4)?;
            if let Some(s) = &v6 {
                set(s)?;
            }
        }
        Ok(RawSender {
            v4: Some(v4),
            v6,
            mark,
            sent: 0,
            failed: 0,
        })
    }

    /// The firewall mark on the packets this sender sends (0: none).
    pub fn mark(&self) -> u32 {
        self.mark
    }

    pub fn send(&mut self, resets: &Resets) {
        for (dst, pkt) in &resets.packets {
            let Some(dst) = dst else { continue };
            let sock = match dst {
                IpAddr::V4(_) => self.v4.as_ref(),
                IpAddr::V6(_) => self.v6.as_ref(),
            };
            let ok = sock.is_some_and(|s| {
                s.send_to(pkt, &SocketAddr::new(*dst, 0).into())
                    .is_ok_and(|n| n == pkt.len())
            });
            if ok {
                self.sent += 1;
            } else {
                self.failed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_packet(flags: &str, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 80, seq, 1000);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(ack),
                'P' => b.psh(),
                _ => b,
            };
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn parse(p: &[u8]) -> (IpAddr, IpAddr, u16, u16, u32, Option<u32>, bool) {
        let s = LaxSlicedPacket::from_ip(p).unwrap();
        let (src, dst) = match s.net.unwrap() {
            LaxNetSlice::Ipv4(v4) => (
                IpAddr::from(v4.header().source_addr()),
                IpAddr::from(v4.header().destination_addr()),
            ),
            _ => panic!("v4 expected"),
        };
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!("tcp expected")
        };
        (
            src,
            dst,
            t.source_port(),
            t.destination_port(),
            t.sequence_number(),
            t.ack().then(|| t.acknowledgment_number()),
            t.rst(),
        )
    }

    #[test]
    fn data_packet_resets_both_ends_at_their_next_bytes() {
        let pkt = tcp_packet("AP", 5000, 9000, b"DELETE / HTTP/1.1\r\n\r\n");
        let mut r = Resets::default();
        assert_eq!(r.build(&pkt, false), 2);
        let to_client = parse(&r.packets[0].1);
        assert_eq!(r.packets[0].0, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(to_client.0, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((to_client.2, to_client.3), (80, 40000));
        assert_eq!(
            to_client.4, 9000,
            "client expects the server's byte 9000 next"
        );
        assert_eq!(to_client.5, Some(5000 + 21));
        assert!(to_client.6);
        let to_server = parse(&r.packets[1].1);
        assert_eq!(r.packets[1].0, Some("10.0.0.2".parse().unwrap()));
        assert_eq!((to_server.2, to_server.3), (40000, 80));
        assert_eq!(
            to_server.4, 5000,
            "server expects the dropped packet's byte next"
        );
        assert_eq!(to_server.5, None);
        assert!(to_server.6);
    }

    #[test]
    fn syn_gets_one_rst_ack_to_the_client() {
        let pkt = tcp_packet("S", 777, 0, b"");
        let mut r = Resets::default();
        assert_eq!(r.build(&pkt, false), 1);
        let back = parse(&r.packets[0].1);
        assert_eq!(back.4, 0);
        assert_eq!(back.5, Some(778));
        assert!(back.6);
        assert!(r.packets[1].0.is_none());
    }

    #[test]
    fn marks_parse_as_iptables_takes_them() {
        assert_eq!(parse_mark("0x5041"), Some(DEFAULT_MARK));
        assert_eq!(parse_mark("20545"), Some(DEFAULT_MARK));
        assert_eq!(parse_mark(" 0XfF "), Some(255));
        assert_eq!(parse_mark("0"), Some(0));
        assert_eq!(parse_mark("0x1ffffffff"), None);
        assert_eq!(parse_mark("PA"), None);
        assert_eq!(parse_mark(""), None);
    }

    #[test]
    fn raw_sockets_carry_the_mark() {
        // Raw sockets and SO_MARK need CAP_NET_RAW and CAP_NET_ADMIN: skip without them.
        let Ok(s) = RawSender::open_with_mark(0x5041) else {
            eprintln!("raw_sockets_carry_the_mark: skipped (no CAP_NET_RAW/CAP_NET_ADMIN)");
            return;
        };
        assert_eq!(s.mark(), 0x5041);
        assert_eq!(s.v4.as_ref().unwrap().mark().unwrap(), 0x5041);
        if let Some(v6) = &s.v6 {
            assert_eq!(v6.mark().unwrap(), 0x5041);
        }
        let s = RawSender::open_with_mark(0).unwrap();
        assert_eq!(s.v4.as_ref().unwrap().mark().unwrap(), 0);
    }

    #[test]
    fn no_reset_for_a_reset_or_udp_or_garbage() {
        let mut r = Resets::default();
        let mut rst = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 3, 4)
            .rst()
            .write(&mut rst, &[])
            .unwrap();
        assert_eq!(r.build(&rst, false), 0);
        let mut udp = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut udp, b"x")
            .unwrap();
        assert_eq!(r.build(&udp, false), 0);
        assert_eq!(r.build(b"\x45garbage", false), 0);
        assert_eq!(r.build(&[], true), 0);
    }
}
