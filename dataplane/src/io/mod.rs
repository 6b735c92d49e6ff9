//! Packet sources and sinks: capture files ([`pcap`]), NFQUEUE over netlink ([`nfqueue`]),
//! AF_PACKET sockets for a tap or a bridge ([`afpacket`]), and the raw sockets that send
//! TCP resets for a refused connection ([`reset`]). The only place `unsafe` is allowed in
//! the data plane (each block with its `// SAFETY:` reasoning).

#[allow(unsafe_code)]
pub mod afpacket;
pub mod nfqueue;
pub mod pcap;
pub mod reset;
