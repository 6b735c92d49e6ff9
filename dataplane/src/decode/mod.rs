//! Decode: link layer to transport header, with etherparse doing the IP and transport work,
//! except for plain Ethernet/IPv4/TCP, which is read by offsets (see `ethernet_ipv4_tcp`).
//!
//! Link types: Ethernet (with 802.1Q / 802.1ad QinQ tags), Linux cooked SLL and SLL2 (what
//! `tcpdump -i any` writes), raw IPv4/IPv6 and BSD loopback. etherparse has no SLL2 slicer,
//! so its 20-byte header is skipped here by hand. Nothing here panics or allocates; every
//! failure is a [`DecodeError`] that the pipeline counts and reports as an `anomaly` event.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice, err::Layer};

pub mod checksum;

/// A pcap LINKTYPE_ value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW_OLD: LinkType = LinkType(12);
    pub const RAW_OLD2: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    pub fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276)
    }
}

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Why a packet could not be decoded. Small and `Copy`: it is counted per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    UnsupportedLinkType,
    TruncatedLink,
    MalformedIp,
    TruncatedIp,
    MalformedTransport,
    TruncatedTransport,
}

impl DecodeError {
    /// Stable name used in anomaly events and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType => "decode.unsupported_link_type",
            DecodeError::TruncatedLink => "decode.truncated_link_header",
            DecodeError::MalformedIp => "decode.malformed_ip",
            DecodeError::TruncatedIp => "decode.truncated_ip",
            DecodeError::MalformedTransport => "decode.malformed_transport",
            DecodeError::TruncatedTransport => "decode.truncated_transport",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: &'a [u8],
}

impl TcpInfo<'_> {
    #[inline]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The transport layer of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(TcpInfo<'a>),
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    /// ICMP or ICMPv6 (`proto` says which).
    Icmp {
        ty: u8,
        code: u8,
    },
    /// A fragment of a datagram: the transport header is elsewhere or incomplete.
    Fragment {
        id: u32,
        offset: u32,
        more: bool,
        payload: &'a [u8],
    },
    /// Another IP protocol (GRE, SCTP, ...): counted in flows by address pair.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    pub transport: Transport<'a>,
    /// The IPv4 header, for its checksum (checked only where checksums are validated).
    pub ip_header: IpHeader<'a>,
    /// The transport header and its data, as the datagram carries them; empty when the
    /// capture cut the datagram short (its checksum cannot be checked).
    pub l4: &'a [u8],
}

/// An IP header as far as its checksum goes. Two are equal when their checksums agree
/// (the fast path keeps the bytes, etherparse's path the answer).
#[derive(Clone, Copy, Debug, Eq)]
pub enum IpHeader<'a> {
    /// An IPv4 header's bytes, checksum not computed yet.
    V4(&'a [u8]),
    /// Already known (IPv6 has no header checksum: true).
    Checked(bool),
}

impl PartialEq for IpHeader<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.ok() == other.ok()
    }
}

impl IpHeader<'_> {
    /// Whether the header's checksum holds.
    pub fn ok(&self) -> bool {
        match self {
            IpHeader::V4(h) => checksum::ipv4_header_ok(h),
            IpHeader::Checked(ok) => *ok,
        }
    }
}

/// What one frame decoded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Ip(Packet<'a>),
    /// A valid frame that carries no IP (ARP, LLDP, ...): counted, not an anomaly.
    NotIp,
}

/// Decodes one captured frame.
pub fn decode(linktype: LinkType, frame: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    if linktype == LinkType::ETHERNET
        && let Some(p) = ethernet_ipv4_tcp(frame)
    {
        return Ok(Decoded::Ip(p));
    }
    decode_sliced(linktype, frame)
}

/// The common frame read by offsets: untagged Ethernet, IPv4 (options allowed) neither
/// fragmented nor behind an AH header, its total length within the frame (Ethernet padding
/// after it is ignored, as etherparse does), TCP with its header within the datagram. `None`
/// sends anything else, and anything malformed, through etherparse, whose answer this
/// matches for every frame it takes (`tests::fast_path_agrees_with_etherparse` mutates
/// every header byte to check).
///
/// Why not etherparse for these too, measured: in the `palisade bench` profile (east-west
/// mix, 1 worker) `LaxSlicedPacket::from_ethernet` was 14.7% of the worker's time, a third
/// of it moving its ~500-byte result struct around, and `decode/ethernet_ipv4_tcp_512B`
/// took 105-124 ns; this path reads the headers in place in 12-13 ns.
fn ethernet_ipv4_tcp(frame: &[u8]) -> Option<Packet<'_>> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ip_header: [u8; 20] = ip.get(..20)?.try_into().ok()?;
    let [
        version_ihl,
        _,
        len_hi,
        len_lo,
        _,
        _,
        flags_frag_hi,
        frag_lo,
        _,
        proto,
        _,
        _,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ] = ip_header;
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    // More fragments, or a fragment offset: the defragmenter's path.
    let fragmented = flags_frag_hi & 0x3f != 0 || frag_lo != 0;
    if version_ihl >> 4 != 4
        || header_len < 20
        || total_len < header_len
        || total_len > ip.len()
        || fragmented
        || proto != PROTO_TCP
    {
        return None;
    }
    let tcp = ip.get(header_len..total_len)?;
    let tcp_header: [u8; 20] = tcp.get(..20)?.try_into().ok()?;
    let [
        sp0,
        sp1,
        dp0,
        dp1,
        q0,
        q1,
        q2,
        q3,
        a0,
        a1,
        a2,
        a3,
        offset,
        flags,
        w0,
        w1,
        ..,
    ] = tcp_header;
    let data_offset = usize::from(offset >> 4) * 4;
    if data_offset < 20 {
        return None;
    }
    let payload = tcp.get(data_offset..)?;
    Some(Packet {
        src: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        dst: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        proto: PROTO_TCP,
        ip_header: IpHeader::V4(ip.get(..header_len)?),
        l4: tcp,
        transport: Transport::Tcp(TcpInfo {
            sport: u16::from_be_bytes([sp0, sp1]),
            dport: u16::from_be_bytes([dp0, dp1]),
            seq: u32::from_be_bytes([q0, q1, q2, q3]),
            ack: u32::from_be_bytes([a0, a1, a2, a3]),
            flags: flags
                & (tcp_flags::FIN
                    | tcp_flags::SYN
                    | tcp_flags::RST
                    | tcp_flags::PSH
                    | tcp_flags::ACK),
            window: u16::from_be_bytes([w0, w1]),
            payload,
        }),
    })
}

/// Decodes one frame through etherparse (every link type, VLANs, IPv6, errors).
fn decode_sliced(linktype: LinkType, frame: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let sliced = match linktype {
        LinkType::ETHERNET => {
            LaxSlicedPacket::from_ethernet(frame).map_err(|_| DecodeError::TruncatedLink)?
        }
        LinkType::LINUX_SLL => {
            // 16-byte header; protocol type (an EtherType for IP) in its last two bytes.
            let (proto, payload) = split_be16(frame, 14, 16)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), payload)
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte header; protocol type in its first two bytes.
            let (proto, payload) = split_be16(frame, 0, 20)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), payload)
        }
        LinkType::RAW
        | LinkType::RAW_OLD
        | LinkType::RAW_OLD2
        | LinkType::IPV4
        | LinkType::IPV6 => {
            LaxSlicedPacket::from_ip(frame).map_err(|_| DecodeError::MalformedIp)?
        }
        LinkType::NULL | LinkType::LOOP => {
            // 4-byte address family in the writer's byte order: 2 is IPv4, 24/28/30 are IPv6.
            let hdr: [u8; 4] = frame
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or(DecodeError::TruncatedLink)?;
            let payload = frame.get(4..).ok_or(DecodeError::TruncatedLink)?;
            let fam_le = u32::from_le_bytes(hdr);
            let fam_be = u32::from_be_bytes(hdr);
            let fam = if fam_le < 256 { fam_le } else { fam_be };
            match fam {
                2 => LaxSlicedPacket::from_ether_type(EtherType::IPV4, payload),
                24 | 28 | 30 => LaxSlicedPacket::from_ether_type(EtherType::IPV6, payload),
                _ => return Ok(Decoded::NotIp),
            }
        }
        _ => return Err(DecodeError::UnsupportedLinkType),
    };
    from_sliced(&sliced)
}

fn split_be16(frame: &[u8], at: usize, hdr_len: usize) -> Result<(u16, &[u8]), DecodeError> {
    let b: [u8; 2] = frame
        .get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::TruncatedLink)?;
    let payload = frame.get(hdr_len..).ok_or(DecodeError::TruncatedLink)?;
    Ok((u16::from_be_bytes(b), payload))
}

fn stop_error(layer: Layer, err: &etherparse::err::packet::SliceError) -> DecodeError {
    use etherparse::err::packet::SliceError;
    let truncated = matches!(err, SliceError::Len(_));
    match (layer, truncated) {
        (Layer::TcpHeader | Layer::UdpHeader | Layer::Icmpv4 | Layer::Icmpv6, true) => {
            DecodeError::TruncatedTransport
        }
        (Layer::TcpHeader | Layer::UdpHeader | Layer::Icmpv4 | Layer::Icmpv6, false) => {
            DecodeError::MalformedTransport
        }
        (_, true) => DecodeError::TruncatedIp,
        (_, false) => DecodeError::MalformedIp,
    }
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>) -> Result<Decoded<'a>, DecodeError> {
    let (src, dst, payload, frag, ip_header) = match &p.net {
        None => {
            // A frame whose payload is not IP (or whose IP header was cut short).
            return match &p.stop_err {
                Some((err, layer)) => Err(stop_error(*layer, err)),
                None => Ok(Decoded::NotIp),
            };
        }
        Some(LaxNetSlice::Arp(_)) => return Ok(Decoded::NotIp),
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let frag = v4.is_payload_fragmented().then(|| {
                (
                    u32::from(h.identification()),
                    u32::from(h.fragments_offset().value()) * 8,
                    h.more_fragments(),
                )
            });
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                v4.payload(),
                frag,
                IpHeader::Checked(checksum::ipv4_header_ok(h.slice())),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let frag = if v6.is_payload_fragmented() {
                v6.extensions()
                    .clone()
                    .into_iter()
                    .find_map(|ext| match ext {
                        etherparse::Ipv6ExtensionSlice::Fragment(f) => Some((
                            f.identification(),
                            u32::from(f.fragment_offset().value()) * 8,
                            f.more_fragments(),
                        )),
                        _ => None,
                    })
            } else {
                None
            };
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                v6.payload(),
                frag,
                IpHeader::Checked(true),
            )
        }
    };
    let proto = payload.ip_number.0;
    let l4 = if payload.incomplete {
        &[][..]
    } else {
        payload.payload
    };
    if let Some((id, offset, more)) = frag {
        return Ok(Decoded::Ip(Packet {
            src,
            dst,
            proto,
            transport: Transport::Fragment {
                id,
                offset,
                more,
                payload: payload.payload,
            },
            ip_header,
            l4: &[],
        }));
    }
    let transport = match &p.transport {
        Some(t) => transport_of(t),
        None => {
            if let Some((err, layer)) = &p.stop_err {
                return Err(stop_error(*layer, err));
            }
            Transport::Other
        }
    };
    Ok(Decoded::Ip(Packet {
        src,
        dst,
        proto,
        transport,
        ip_header,
        l4,
    }))
}

fn transport_of<'a>(t: &TransportSlice<'a>) -> Transport<'a> {
    match t {
        TransportSlice::Tcp(tcp) => {
            let mut flags = 0u8;
            for (set, bit) in [
                (tcp.fin(), tcp_flags::FIN),
                (tcp.syn(), tcp_flags::SYN),
                (tcp.rst(), tcp_flags::RST),
                (tcp.psh(), tcp_flags::PSH),
                (tcp.ack(), tcp_flags::ACK),
            ] {
                if set {
                    flags |= bit;
                }
            }
            Transport::Tcp(TcpInfo {
                sport: tcp.source_port(),
                dport: tcp.destination_port(),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags,
                window: tcp.window_size(),
                payload: tcp.payload(),
            })
        }
        TransportSlice::Udp(udp) => Transport::Udp {
            sport: udp.source_port(),
            dport: udp.destination_port(),
            payload: udp.payload(),
        },
        TransportSlice::Icmpv4(icmp) => Transport::Icmp {
            ty: icmp.type_u8(),
            code: icmp.code_u8(),
        },
        TransportSlice::Icmpv6(icmp) => Transport::Icmp {
            ty: icmp.type_u8(),
            code: icmp.code_u8(),
        },
        TransportSlice::Igmp(_) => Transport::Other,
    }
}

/// Decodes the transport of a datagram that defragmentation put back together
/// (`data` is the whole IP payload: transport header and data).
pub fn decode_reassembled(proto: u8, data: &[u8]) -> Result<Transport<'_>, DecodeError> {
    match proto {
        PROTO_TCP => etherparse::TcpSlice::from_slice(data)
            .map(|t| transport_of(&TransportSlice::Tcp(t)))
            .map_err(|_| DecodeError::MalformedTransport),
        PROTO_UDP => {
            // The UDP length field may disagree with a reassembled payload; take the header's ports
            // and everything after the 8-byte header.
            let h: [u8; 8] = data
                .get(..8)
                .and_then(|h| h.try_into().ok())
                .ok_or(DecodeError::TruncatedTransport)?;
            let [s0, s1, d0, d1, ..] = h;
            Ok(Transport::Udp {
                sport: u16::from_be_bytes([s0, s1]),
                dport: u16::from_be_bytes([d0, d1]),
                payload: data.get(8..).unwrap_or_default(),
            })
        }
        PROTO_ICMP | PROTO_ICMPV6 => match data {
            [ty, code, ..] => Ok(Transport::Icmp {
                ty: *ty,
                code: *code,
            }),
            _ => Err(DecodeError::TruncatedTransport),
        },
        _ => Ok(Transport::Other),
    }
}

#[cfg(test)]
mod tests;
