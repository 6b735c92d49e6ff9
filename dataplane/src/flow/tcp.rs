//! TCP connection state as seen from the middle: enough to orient a flow, pick its timeout
//! class and tell when it is over. The endpoints' own state machines are richer; we follow
//! what the packets prove (a SYN, a SYN-ACK, FINs, a RST) and never what we would expect.

use proto_parsers::Direction;

use super::TimeoutClass;
use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// Client's SYN seen.
    SynSent,
    /// Server's SYN-ACK seen.
    SynReceived,
    Established,
    /// One side sent FIN.
    HalfClosed,
    /// FIN both ways, or a RST.
    Closed,
}

impl TcpState {
    /// EVE's `tcp.state` vocabulary.
    pub const fn as_str(self) -> &'static str {
        match self {
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_recv",
            TcpState::Established => "established",
            TcpState::HalfClosed => "half_closed",
            TcpState::Closed => "closed",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TcpTracker {
    pub state: TcpState,
    fin: [bool; 2],
    pub rst: bool,
    /// Whether the flow was seen from its SYN (false for mid-stream pickup).
    pub from_syn: bool,
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl TcpTracker {
    /// State after the flow's first packet (already oriented: `dir` is its direction).
    pub fn first(dir: Direction, flags: u8) -> Self {
        let syn = flags & SYN != 0;
        let state = match (syn, flags & ACK != 0, dir) {
            (true, false, _) => TcpState::SynSent,
            (true, true, _) => TcpState::SynReceived,
            _ => TcpState::Established,
        };
        let mut t = TcpTracker {
            state,
            fin: [false; 2],
            rst: false,
            from_syn: syn,
        };
        t.closing_flags(dir, flags);
        t
    }

    pub fn on_packet(&mut self, dir: Direction, flags: u8) {
        match self.state {
            TcpState::SynSent
                if flags & SYN != 0 && flags & ACK != 0 && dir == Direction::ToClient =>
            {
                self.state = TcpState::SynReceived;
            }
            TcpState::SynReceived
                if flags & SYN == 0 && flags & ACK != 0 && dir == Direction::ToServer =>
            {
                self.state = TcpState::Established;
            }
            _ => {}
        }
        self.closing_flags(dir, flags);
    }

    fn closing_flags(&mut self, dir: Direction, flags: u8) {
        if flags & RST != 0 {
            self.rst = true;
            self.state = TcpState::Closed;
            return;
        }
        if flags & FIN != 0 {
            if let Some(f) = self.fin.get_mut(idx(dir)) {
                *f = true;
            }
            self.state = if self.fin == [true, true] {
                TcpState::Closed
            } else {
                TcpState::HalfClosed
            };
        }
    }

    pub fn class(&self) -> TimeoutClass {
        match self.state {
            TcpState::SynSent | TcpState::SynReceived => TimeoutClass::New,
            TcpState::Established | TcpState::HalfClosed => TimeoutClass::Established,
            TcpState::Closed => TimeoutClass::Closed,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == TcpState::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    #[test]
    fn handshake_data_fin_fin() {
        let mut t = TcpTracker::first(ToServer, SYN);
        assert_eq!(t.state, TcpState::SynSent);
        t.on_packet(ToClient, SYN | ACK);
        assert_eq!(t.state, TcpState::SynReceived);
        t.on_packet(ToServer, ACK);
        assert_eq!(t.state, TcpState::Established);
        t.on_packet(ToServer, FIN | ACK);
        assert_eq!(t.state, TcpState::HalfClosed);
        assert_eq!(t.class(), TimeoutClass::Established);
        t.on_packet(ToClient, FIN | ACK);
        assert!(t.is_closed());
        assert_eq!(t.class(), TimeoutClass::Closed);
    }

    #[test]
    fn rst_closes_and_midstream_is_established() {
        let mut t = TcpTracker::first(ToServer, ACK);
        assert_eq!(t.state, TcpState::Established);
        assert!(!t.from_syn);
        t.on_packet(ToClient, RST);
        assert!(t.is_closed() && t.rst);
    }
}
