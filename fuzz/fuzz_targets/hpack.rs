//! Our HPACK decoder (`proto_parsers::http2::hpack`) against `loona-hpack` on arbitrary header
//! blocks: neither may panic, and the two must decode every block to the same header list or
//! both refuse it, apart from the two places where `loona-hpack` departs from RFC 7541
//! (documented in `proto-parsers/src/http2/hpack/tests.rs`, `Divergence`). A second decoder
//! of ours decodes the same blocks under small limits: it must keep exactly the prefix of the
//! list that fits, within the scratch bound.
//!
//! Input layout (what `seeds/hpack/` holds, made from the recorded conversations and RFC 7541
//! Appendix C):
//!   byte 0: bits 0-1 pick the table size the decoders allow (4096, 256, 0, 65536), bit 2
//!           starts both tables at that size (as if SETTINGS had set it before the first
//!           block), bits 3-7 pick the limits of the limited decoder
//!   then blocks: u16 big-endian length, `length` bytes (clipped at the end of the input),
//!   decoded in order on the same decoders (one direction of one connection)
#![no_main]

use libfuzzer_sys::fuzz_target;
use loona_hpack::Decoder as Loona;
use loona_hpack::decoder::DecoderError;
use proto_parsers::http2::hpack::{Decoder, Error, Field, Limits};

type List = Vec<(Vec<u8>, Vec<u8>)>;

fn decode(
    d: &mut Decoder,
    block: &[u8],
    limits: Limits,
    scratch: &mut Vec<u8>,
) -> Result<List, Error> {
    let mut out: Vec<Field> = Vec::new();
    let r = d.decode(block, scratch, &mut out, limits)?;
    assert!(out.len() <= limits.max_fields && out.len() <= r.fields);
    assert_eq!(r.over_list || r.over_fields, out.len() < r.fields);
    let v = d.view(block, scratch);
    Ok(out
        .iter()
        .map(|f| {
            let (n, val) = v.pair(f);
            assert_eq!((n.len(), val.len()), (f.name as usize, f.value as usize));
            (n.to_vec(), val.to_vec())
        })
        .collect())
}

/// The prefix of `full` that fits `limits` (the fields ours keeps).
fn kept(full: &List, limits: Limits) -> usize {
    let mut size = 0usize;
    for (i, (n, v)) in full.iter().enumerate() {
        size = size.saturating_add(n.len() + v.len() + 32);
        if size > limits.max_list || i >= limits.max_fields {
            return i;
        }
    }
    full.len()
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let allowed = [4096, 256, 0, 65_536][usize::from(cfg & 3)];
    let limits = Limits {
        max_list: [64 * 1024, 4096, 600, 100][usize::from(cfg >> 3 & 3)],
        max_fields: [128, 16, 3, 1][usize::from(cfg >> 5 & 3)],
    };
    let (mut mine, mut limited, mut theirs) = if cfg & 4 != 0 {
        let mut l = Loona::new();
        l.set_max_table_size(allowed);
        l.set_max_allowed_table_size(allowed);
        (
            Decoder::with_table_size(allowed),
            Decoder::with_table_size(allowed),
            l,
        )
    } else {
        let (mut a, mut b) = (Decoder::new(), Decoder::new());
        a.set_max_allowed(allowed);
        b.set_max_allowed(allowed);
        let mut l = Loona::new();
        l.set_max_allowed_table_size(allowed);
        (a, b, l)
    };
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let block = &rest[2..end];
        rest = &rest[end..];
        let a = decode(&mut mine, block, Limits::NONE, &mut s1);
        let b = decode(&mut limited, block, limits, &mut s2);
        match (&a, &b) {
            (Ok(full), Ok(part)) => {
                assert_eq!(part[..], full[..kept(full, limits)]);
                let most = limits.max_list + 2 * limits.max_list.max(65_536);
                assert!(s2.len() <= most, "scratch {} over {most}", s2.len());
            }
            (Err(e), Err(f)) => assert_eq!(e, f),
            _ => panic!("limits changed the outcome: {a:?} / {b:?}"),
        }
        let (size, max) = mine.table_size();
        assert!(size <= max && max <= allowed.max(4096));
        match (a, theirs.decode(block)) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "block {block:02x?}"),
            // Both refused it: a receiver closes the connection.
            (Err(_), Err(_)) => return,
            // Documented: loona applies a size update after a field (RFC 7541 4.2 does not
            // allow it there) ...
            (Err(Error::MisplacedSizeUpdate), Ok(_)) => return,
            // ... and refuses a block of nothing but size updates (an empty header list).
            (Ok(x), Err(DecoderError::SizeUpdateAtEnd)) if x.is_empty() => return,
            (x, y) => panic!("block {block:02x?}: ours {x:?}, loona {y:?}"),
        }
    }
});
