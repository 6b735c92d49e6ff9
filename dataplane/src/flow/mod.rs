//! Flows: bidirectional keys, orientation (who is the client), TCP state, the per-worker
//! table with idle timeouts and a cap, what the worker keeps per flow ([`FlowCtx`]), and a
//! flow's admission (a SYN replacing a stale flow included) and end.

mod admit;
mod ctx;
mod end;
mod key;
mod table;
mod tcp;

pub use ctx::FlowCtx;
pub(crate) use ctx::{FlowVerdict, dix};
pub use key::FlowKey;
pub use table::{EndReason, FlowConfig, FlowCounters, FlowTable, Handle, TimeoutClass};
pub use tcp::{TcpState, TcpTracker};

use crate::decode::tcp_flags::{ACK, SYN};

/// Decides whether the sender of a flow's first packet is the client.
///
/// From the handshake when there is one: a SYN's sender is the client, a SYN-ACK's sender
/// the server. Mid-stream (or for datagrams) it is a guess: the side on a well-known port
/// (< 1024), else the side on the lower port, is the server; equal ports keep the sender
/// as the client.
pub fn first_sender_is_client(tcp_flags: Option<u8>, sport: u16, dport: u16) -> bool {
    if let Some(f) = tcp_flags
        && f & SYN != 0
    {
        return f & ACK == 0;
    }
    match (sport < 1024, dport < 1024) {
        (true, false) => false,
        (false, true) => true,
        _ => sport >= dport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation() {
        assert!(first_sender_is_client(Some(SYN), 80, 40000));
        assert!(!first_sender_is_client(Some(SYN | ACK), 40000, 80));
        assert!(!first_sender_is_client(Some(ACK), 8080, 40112));
        assert!(first_sender_is_client(Some(ACK), 40112, 8080));
        assert!(!first_sender_is_client(None, 53, 40000));
        assert!(first_sender_is_client(None, 40000, 53));
        assert!(first_sender_is_client(None, 5000, 5000));
    }
}
