//! The HTTP/2 parser (frames, HPACK, gRPC) on arbitrary bytes in both directions, cut at
//! arbitrary points; see `palisade_fuzz` for the input layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::http2::Http2Parser;

fuzz_target!(|data: &[u8]| {
    palisade_fuzz::run_split_feeds(data, |_| Box::new(Http2Parser::new()));
});
