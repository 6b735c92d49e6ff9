//! Shared drivers for the parser fuzz targets: feed a parser both directions of arbitrary
//! bytes, cut at arbitrary points, through the same caller the data plane uses
//! (`proto_parsers::driver`: a carry per direction up to the parser's own limit, fed again
//! while `Done` consumes bytes), and check that its facts stay within the parsers'
//! documented bounds.
//!
//! Input layout (what `seeds/<target>/` holds, made from the recorded conversations):
//!   byte 0: cut seed (feeds are cut into pieces of 1..=64 bytes chosen from it, or whole
//!           when it is 0)
//!   byte 1: flags, passed to the target's constructor (bit 0: each record is fed whole;
//!           DNS: bit 0 = UDP, each record is then one datagram; MySQL: bit 1 = start
//!           behind a compressed login, bits 1 and 2 = each record deflated into one
//!           compressed packet)
//!   then records: u8 direction (bit 0: 0 = to server, 1 = to client; bit 1: a reassembly
//!   gap of `length` bytes in that direction, no bytes follow), u16 big-endian length,
//!   `length` bytes (clipped at the end of the input)

use proto_parsers::Direction;
use proto_parsers::contract::{Fact, FactSink, GapOutcome, ParserAnomaly, StreamParser};
use proto_parsers::driver::{self, Carry, CarryBudget};
use proto_parsers::facts::RequestDetail;

pub struct Check;

impl FactSink for Check {
    fn fact(&mut self, fact: &Fact<'_>) {
        if let Fact::Transaction {
            summary, detail, ..
        } = fact
        {
            assert!(summary.len() <= 256, "summary of {} bytes", summary.len());
            match detail {
                RequestDetail::Redis(c) => {
                    assert!(
                        c.key
                            .is_none_or(|k| k.len() <= proto_parsers::redis::MAX_KEY)
                    )
                }
                RequestDetail::Dns(q) => assert!(q.qname.len() <= 255 * 4),
                RequestDetail::Tls(h) => assert!(h.alpn.len() <= 16),
                _ => {}
            }
        }
    }
    fn anomaly(&mut self, _a: ParserAnomaly) {}
}

/// Feeds `data` through the direction's carry; false once the flow is given up.
pub fn push(
    p: &mut dyn StreamParser,
    dir: Direction,
    carry: &mut Carry,
    budget: &mut CarryBudget,
    data: &[u8],
) -> bool {
    let max = p.max_carry();
    carry
        .push(data, max, budget, |d| driver::drive(p, dir, d, &mut Check))
        .is_ok()
}

/// Runs one fuzz input through the parser `make(flags)` builds.
pub fn run_split_feeds(data: &[u8], make: impl FnOnce(u8) -> Box<dyn StreamParser>) {
    let (Some(&seed), Some(&flags)) = (data.first(), data.get(1)) else {
        return;
    };
    let mut p = make(flags);
    let mut carry = [Carry::new(), Carry::new()];
    let mut budget = CarryBudget::unlimited();
    let mut alive = true;
    let mut rest = &data[2..];
    let mut roll = seed;
    while alive && rest.len() >= 3 {
        let dir = if rest[0] & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = u16::from_be_bytes([rest[1], rest[2]]);
        let c = &mut carry[usize::from(dir == Direction::ToClient)];
        if rest[0] & 2 != 0 {
            // Bytes lost: the caller drops its carry and tells the parser.
            rest = &rest[3..];
            c.clear(&mut budget);
            alive = p.gap(dir, u32::from(len)) != GapOutcome::GiveUp;
            continue;
        }
        let end = (3 + usize::from(len)).min(rest.len());
        let payload = &rest[3..end];
        rest = &rest[end..];
        if seed == 0 || flags & 1 == 1 {
            alive = push(p.as_mut(), dir, c, &mut budget, payload);
            continue;
        }
        for piece in payload.chunks(usize::from(roll % 64) + 1) {
            roll = roll.wrapping_mul(31).wrapping_add(7);
            alive = push(p.as_mut(), dir, c, &mut budget, piece);
            if !alive {
                break;
            }
        }
    }
    p.end(&mut Check);
}
