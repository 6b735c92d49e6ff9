//! The TLS handshake parser on arbitrary bytes in both directions, cut at arbitrary points; see
//! `palisade_fuzz` for the input layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::tls::TlsParser;

fuzz_target!(|data: &[u8]| {
    palisade_fuzz::run_split_feeds(data, |_| Box::new(TlsParser::new()));
});
