//! TCP connection state as seen from the middle: enough to orient a flow, pick its timeout
//! class and tell when it is over. The endpoints' own state machines are richer; we follow
//! what the packets prove (a SYN, a SYN-ACK, FINs, a RST) and never what we would expect.
//!
//! What the receiving host would ignore is ignored here too (RFC 5961): a RST counts only
//! when its sequence number is the one its receiver expects next, and the caller strips a
//! SYN that arrives after the handshake before it gets here. Each side's next sequence
//! number is the end of the furthest segment it sent.

use proto_parsers::Direction;

use super::TimeoutClass;
#[cfg(test)]
use crate::decode::tcp_flags::PSH;
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
    /// Whether the client's own SYN was seen (false for mid-stream pickup, or a flow whose
    /// first packet was a SYN-ACK): the flow's orientation is then proven, not guessed.
    pub client_syn: bool,
    /// The handshake completed (the client's ACK of the SYN-ACK was seen): from here on a
    /// SYN cannot move the streams.
    pub handshake_done: bool,
    /// Per direction: one past the furthest sequence number sent (SYN and FIN count),
    /// valid once `seen`.
    next: [u32; 2],
    seen: [bool; 2],
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl TcpTracker {
    /// State after the flow's first packet (already oriented: `dir` is its direction),
    /// carrying `len` payload bytes from sequence number `seq`.
    pub fn first(dir: Direction, flags: u8, seq: u32, len: u32) -> Self {
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
            client_syn: syn && flags & ACK == 0 && dir == Direction::ToServer,
            handshake_done: false,
            next: [0; 2],
            seen: [false; 2],
        };
        t.advance(dir, flags, seq, len);
        t.closing_flags(dir, flags);
        t
    }

    pub fn on_packet(&mut self, dir: Direction, flags: u8, seq: u32, len: u32) {
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
                self.handshake_done = true;
            }
            _ => {}
        }
        self.advance(dir, flags, seq, len);
        self.closing_flags(dir, flags);
    }

    /// Whether a RST from `dir` with sequence number `seq` would reset the connection at
    /// its receiver: only at the next sequence number it expects (RFC 5961 section 3.2;
    /// Linux answers anything else with a challenge ACK). `expected` is what the stream's
    /// reassembly expects next, when it tracks that direction. A side that has sent
    /// nothing yet (a RST answering a SYN) cannot be checked and is believed.
    pub fn rst_acceptable(&self, dir: Direction, seq: u32, expected: Option<u32>) -> bool {
        let i = idx(dir);
        if !self.seen.get(i).copied().unwrap_or(false) {
            return true;
        }
        self.next.get(i) == Some(&seq) || expected == Some(seq)
    }

    fn advance(&mut self, dir: Direction, flags: u8, seq: u32, len: u32) {
        if flags & RST != 0 {
            return;
        }
        let i = idx(dir);
        let end = seq
            .wrapping_add(len)
            .wrapping_add(u32::from(flags & SYN != 0))
            .wrapping_add(u32::from(flags & FIN != 0));
        if let (Some(n), Some(s)) = (self.next.get_mut(i), self.seen.get_mut(i)) {
            // Forward only (wrapping): a retransmission does not move it back.
            if !*s || end.wrapping_sub(*n) as i32 > 0 {
                *n = end;
            }
            *s = true;
        }
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
        let mut t = TcpTracker::first(ToServer, SYN, 100, 0);
        assert_eq!(t.state, TcpState::SynSent);
        assert!(t.client_syn && !t.handshake_done);
        t.on_packet(ToClient, SYN | ACK, 500, 0);
        assert_eq!(t.state, TcpState::SynReceived);
        t.on_packet(ToServer, ACK, 101, 0);
        assert_eq!(t.state, TcpState::Established);
        assert!(t.handshake_done);
        t.on_packet(ToServer, FIN | ACK, 101, 10);
        assert_eq!(t.state, TcpState::HalfClosed);
        assert_eq!(t.class(), TimeoutClass::Established);
        t.on_packet(ToClient, FIN | ACK, 501, 0);
        assert!(t.is_closed());
        assert_eq!(t.class(), TimeoutClass::Closed);
    }

    #[test]
    fn rst_closes_and_midstream_is_established() {
        let mut t = TcpTracker::first(ToServer, ACK, 7, 3);
        assert_eq!(t.state, TcpState::Established);
        assert!(!t.client_syn);
        t.on_packet(ToClient, RST, 0, 0);
        assert!(t.is_closed() && t.rst);
        // A SYN-ACK first proves nothing about who the client is.
        assert!(!TcpTracker::first(ToClient, SYN | ACK, 1, 0).client_syn);
    }

    #[test]
    fn a_rst_counts_only_at_the_next_sequence_number() {
        let mut t = TcpTracker::first(ToServer, SYN, 100, 0);
        // Nothing seen from the server yet: its RST answering the SYN is believed.
        assert!(t.rst_acceptable(ToClient, 0, None));
        t.on_packet(ToClient, SYN | ACK, 500, 0);
        t.on_packet(ToServer, ACK, 101, 0);
        t.on_packet(ToServer, ACK | PSH, 101, 50);
        assert!(t.rst_acceptable(ToServer, 151, None));
        assert!(!t.rst_acceptable(ToServer, 150, None));
        assert!(!t.rst_acceptable(ToServer, 151 + 1000, None));
        // Where reassembly waits for a hole, its next byte is what the receiver expects.
        assert!(t.rst_acceptable(ToServer, 120, Some(120)));
        // A retransmission does not move the next sequence number back.
        t.on_packet(ToServer, ACK, 101, 50);
        assert!(t.rst_acceptable(ToServer, 151, None));
    }
}
