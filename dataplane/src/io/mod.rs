//! Packet sources and sinks: capture files ([`pcap`]), NFQUEUE over netlink ([`nfqueue`]),
//! AF_PACKET sockets for a tap or a bridge ([`afpacket`]), and the raw sockets that send
//! TCP resets for a refused connection ([`reset`]), and this host's addresses ([`local`]).
//! The only place `unsafe` is allowed in the data plane (each block with its `// SAFETY:`
//! reasoning).

#[allow(unsafe_code)]
pub mod afpacket;
#[allow(unsafe_code)]
pub mod local;
pub mod nfqueue;
pub mod pcap;
pub mod reset;

use std::io;

/// What a socket needs the privilege for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Binding an NFQUEUE queue over netlink.
    Nfqueue,
    /// An AF_PACKET socket (tap, bridge).
    AfPacket,
    /// The raw IP sockets that send TCP resets.
    RawReset,
    /// The firewall mark (SO_MARK) on the reset sockets.
    SoMark,
}

impl Privilege {
    fn hint(self) -> &'static str {
        match self {
            Privilege::Nfqueue => "needs root or CAP_NET_ADMIN (NFQUEUE)",
            Privilege::AfPacket => "needs root or CAP_NET_RAW (AF_PACKET)",
            Privilege::RawReset => "needs root or CAP_NET_RAW (raw sockets for TCP resets)",
            Privilege::SoMark => "needs root or CAP_NET_ADMIN (SO_MARK on the reset sockets)",
        }
    }
}

/// Whether the kernel refused for lack of privilege (EPERM, EACCES).
pub fn permission_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
        || e.kind() == io::ErrorKind::PermissionDenied
}

/// `what: e`, and when the kernel refused for lack of privilege the privilege it takes,
/// so that the message names the cause instead of a guess.
pub fn socket_error(e: io::Error, what: &str, privilege: Privilege) -> io::Error {
    if permission_denied(&e) {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what}: {e}: {}", privilege.hint()),
        )
    } else {
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_name_the_privilege() {
        let e = socket_error(
            io::Error::from_raw_os_error(libc::EPERM),
            "cannot bind NFQUEUE 0",
            Privilege::Nfqueue,
        );
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            e.to_string()
                .starts_with("cannot bind NFQUEUE 0: Operation not permitted")
                && e.to_string()
                    .ends_with(": needs root or CAP_NET_ADMIN (NFQUEUE)"),
            "{e}"
        );
        let e = socket_error(
            io::Error::from_raw_os_error(libc::EACCES),
            "AF_PACKET socket",
            Privilege::AfPacket,
        );
        assert!(
            e.to_string()
                .ends_with(": needs root or CAP_NET_RAW (AF_PACKET)"),
            "{e}"
        );
        let e = socket_error(
            io::Error::from_raw_os_error(libc::EPERM),
            "raw IPv4 socket",
            Privilege::RawReset,
        );
        assert!(
            e.to_string()
                .ends_with(": needs root or CAP_NET_RAW (raw sockets for TCP resets)"),
            "{e}"
        );
        // Other errors keep their own cause and no privilege hint.
        let e = socket_error(
            io::Error::from_raw_os_error(libc::ENODEV),
            "bind to eth9",
            Privilege::AfPacket,
        );
        assert_eq!(e.raw_os_error(), None);
        assert!(!e.to_string().contains("needs root"), "{e}");
        assert!(e.to_string().starts_with("bind to eth9: "), "{e}");
    }
}
