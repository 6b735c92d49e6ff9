//! Protocol detection on arbitrary bytes, for every transport and direction: never panics,
//! UDP never asks for more, and TCP answers are monotone (once a prefix is decided, every
//! longer prefix gets the same answer), which is what lets the inspector decide early.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::Direction;
use proto_parsers::detect::{Detection, Transport, detect};

/// Prefixes checked per input; detection decides within a few hundred bytes.
const PREFIX_CHECK: usize = 512;

fuzz_target!(|data: &[u8]| {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let udp = detect(Transport::Udp, dir, data);
        assert_ne!(udp, Detection::NeedMore, "UDP datagrams are whole");

        let full = detect(Transport::Tcp, dir, data);
        let mut decided: Option<(usize, Detection)> = None;
        for n in 0..=data.len().min(PREFIX_CHECK) {
            let prefix = data.get(..n).unwrap_or_default();
            let answer = detect(Transport::Tcp, dir, prefix);
            match decided {
                Some((at, first)) => {
                    assert_eq!(
                        answer, first,
                        "{dir:?}: prefix {at} gave {first:?}, prefix {n} gave {answer:?}"
                    )
                }
                None if answer != Detection::NeedMore => decided = Some((n, answer)),
                None => {}
            }
        }
        if let Some((at, first)) = decided {
            assert_eq!(
                full, first,
                "{dir:?}: prefix {at} gave {first:?}, whole input gave {full:?}"
            );
        }
    }
});
