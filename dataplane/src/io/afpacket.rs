//! AF_PACKET sources: a passive tap (`--tap IFACE`) and an inline bridge between two
//! interfaces (`--bridge A,B`, the way NeuVector sits between a pod's veth and the node).
//!
//! Sockets are `socket2` sockets; the two things it has no safe call for are binding to
//! an interface (a `sockaddr_ll`) and waiting on two sockets at once (`poll`). Those two
//! are the only `unsafe` blocks, below, each with its reasoning.
//!
//! Frames we send ourselves (forwarded or resets) come back to every packet socket on that
//! interface as "outgoing"; a classic BPF filter on the socket drops them in the kernel.
//!
//! The interfaces' offloads must be off where frames are forwarded (`ethtool -K IFACE gro
//! off tso off gso off tx off`, as for Suricata's AF_PACKET IPS mode): with GRO the socket
//! receives merged frames larger than the MTU, which cannot be sent on; with checksum
//! offload on the sending peer, frames arrive with checksums still to be filled in.
//!
//! Left for later: a TPACKET_V3 ring (mmap) on receive. A recv per frame costs about one
//! syscall per packet; the inline modes are bounded by the per-packet work today.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, SockFilter, Socket, Type};

use super::Privilege;

const ETH_P_ALL: u16 = 0x0003;
/// Largest frame read (jumbo frames; with GRO off frames are at most the MTU + 18).
pub const FRAME_MAX: usize = 16 * 1024;

pub struct PacketSocket {
    sock: Socket,
    pub name: String,
}

impl PacketSocket {
    /// A raw packet socket bound to `iface`, receiving every frame in and out of it
    /// except the ones sent by packet sockets (ours).
    pub fn open(iface: &str) -> io::Result<Self> {
        let index_path = format!("/sys/class/net/{iface}/ifindex");
        let ifindex: i32 = std::fs::read_to_string(&index_path)
            .map_err(|e| io::Error::new(e.kind(), format!("interface {iface}: {e}")))?
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("interface {iface}: bad ifindex")))?;
        let proto = i32::from(ETH_P_ALL.to_be());
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto)))
            .map_err(|e| super::socket_error(e, "AF_PACKET socket", Privilege::AfPacket))?;
        // Drop frames whose packet type is PACKET_OUTGOING (4): the ones we (or anything
        // else on this host) sent. `ld pkttype` is the ancillary load at SKF_AD_OFF+4.
        let filter = [
            SockFilter::new(0x28, 0, 0, 0xffff_f004), // ldh [SKF_AD_OFF + SKF_AD_PKTTYPE]
            SockFilter::new(0x15, 0, 1, 4),           // jeq #PACKET_OUTGOING, drop, keep
            SockFilter::new(0x06, 0, 0, 0),           // ret #0
            SockFilter::new(0x06, 0, 0, 0x0004_0000), // ret #262144 (whole frame)
        ];
        sock.attach_filter(&filter)?;
        let mut storage = SockAddrStorage::zeroed();
        let len = {
            // SAFETY: `SockAddrStorage` is a zeroed `sockaddr_storage`, large and aligned
            // enough for any socket address, `sockaddr_ll` included; we only write plain
            // integer fields of the view.
            let ll: &mut libc::sockaddr_ll = unsafe { storage.view_as() };
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = ETH_P_ALL.to_be();
            ll.sll_ifindex = ifindex;
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t
        };
        // SAFETY: the storage holds a valid `sockaddr_ll` of `len` bytes, written above.
        let addr = unsafe { SockAddr::new(storage, len) };
        sock.bind(&addr).map_err(|e| {
            super::socket_error(e, &format!("bind to {iface}"), Privilege::AfPacket)
        })?;
        let _ = sock.set_recv_buffer_size(8 << 20);
        sock.set_nonblocking(true)?;
        Ok(PacketSocket {
            sock,
            name: iface.to_string(),
        })
    }

    /// One frame, or None when nothing is waiting.
    #[inline]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        use std::io::Read;
        match (&self.sock).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    #[inline]
    pub fn send(&self, frame: &[u8]) -> bool {
        self.sock.send(frame).is_ok_and(|n| n == frame.len())
    }
}

/// Waits until one of `socks` is readable or `timeout` passes. Returns which are ready.
pub fn wait_readable(socks: &[&PacketSocket], timeout: Duration) -> io::Result<[bool; 2]> {
    let mut fds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 2];
    for (slot, s) in fds.iter_mut().zip(socks) {
        slot.fd = s.sock.as_raw_fd();
    }
    let n = socks.len().min(2);
    // SAFETY: `fds` is a valid array of `n` initialised pollfd structs that outlives the
    // call; poll only writes their `revents`.
    let rc = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            n as libc::nfds_t,
            timeout.as_millis() as i32,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok([false; 2]);
        }
        return Err(e);
    }
    let ready = |i: usize| {
        fds.get(i)
            .is_some_and(|f| f.revents & (libc::POLLIN | libc::POLLERR) != 0)
    };
    Ok([ready(0), ready(1)])
}
