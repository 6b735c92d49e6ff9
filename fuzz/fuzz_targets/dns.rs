//! The DNS parser (UDP when flags bit 0 is set, else TCP) on arbitrary bytes in both directions, cut at arbitrary points; see
//! `palisade_fuzz` for the input layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::dns::DnsParser;

fuzz_target!(|data: &[u8]| {
    palisade_fuzz::run_split_feeds(data, |flags| {
        Box::new(if flags & 1 == 1 {
            DnsParser::udp()
        } else {
            DnsParser::tcp()
        })
    });
});
