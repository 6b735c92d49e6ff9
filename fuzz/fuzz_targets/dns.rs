//! The DNS parser (UDP when flags bit 0 is set, else TCP) on arbitrary bytes in both directions, cut at arbitrary points; see
//! `palisade_fuzz` for the input layout and what is checked. Also: the bytes after the two
//! leading ones, taken as one datagram that detection calls a DNS request, are reported by
//! the UDP parser as a transaction or raise a blinding anomaly (a datagram never makes a
//! flow DNS and then slips past its parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::contract::{Fact, FactSink, ParserAnomaly, StreamParser};
use proto_parsers::detect::{Detection, Transport, detect};
use proto_parsers::dns::DnsParser;
use proto_parsers::{AppProto, Direction};

/// Whether the parser reported a transaction or a blinding anomaly.
#[derive(Default)]
struct Seen {
    tx: bool,
    blind: bool,
}

impl FactSink for Seen {
    fn fact(&mut self, fact: &Fact<'_>) {
        self.tx |= matches!(fact, Fact::Transaction { .. });
    }
    fn anomaly(&mut self, a: ParserAnomaly) {
        self.blind |= a.blinds();
    }
}

fuzz_target!(|data: &[u8]| {
    palisade_fuzz::run_split_feeds(data, |flags| {
        Box::new(if flags & 1 == 1 {
            DnsParser::udp()
        } else {
            DnsParser::tcp()
        })
    });
    let datagram = data.get(2..).unwrap_or_default();
    if detect(Transport::Udp, Direction::ToServer, datagram) == Detection::Proto(AppProto::Dns)
        && datagram.get(2).is_some_and(|f| f & 0x80 == 0)
    {
        let mut seen = Seen::default();
        let _ = DnsParser::udp().feed(Direction::ToServer, datagram, &mut seen);
        assert!(seen.tx || seen.blind, "{datagram:02x?}");
    }
});
