//! The Postgres parser on arbitrary bytes in both directions at arbitrary split points, driven
//! as the inspector drives it (bounded carry per direction); plus the SQL classifier on the
//! same bytes. Never panics, never consumes more than it was given.
//!
//! Input layout: records of one control byte (bit 0 = direction, the rest = length - 1 of
//! the chunk that follows), so the fuzzer chooses both the interleaving and the splits. A
//! seed made from a recorded conversation is its fixture re-chunked this way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::Direction;
use proto_parsers::contract::{Fact, FactSink, ParserAnomaly, Progress, StreamParser};
use proto_parsers::facts::SqlDialect;
use proto_parsers::postgres::PostgresParser;
use proto_parsers::sql::Classifier;

const CARRY_CAP: usize = 64 * 1024;

struct Sink;

impl FactSink for Sink {
    fn fact(&mut self, fact: &Fact<'_>) {
        // Touch what a sink reads.
        if let Fact::Transaction { summary, .. } = fact {
            assert!(summary.len() <= 4096);
        }
    }
    fn anomaly(&mut self, _a: ParserAnomaly) {}
}

fn push(p: &mut PostgresParser, carry: &mut Vec<u8>, dir: Direction, data: &[u8]) -> bool {
    if carry.len() + data.len() > CARRY_CAP {
        return false;
    }
    carry.extend_from_slice(data);
    let mut off = 0;
    loop {
        let rest = &carry[off..];
        if rest.is_empty() {
            break;
        }
        match p.feed(dir, rest, &mut Sink) {
            Progress::Done { consumed } if consumed > 0 => {
                assert!(consumed <= rest.len());
                off += consumed;
            }
            Progress::Done { .. } => break,
            Progress::NeedMore { consumed } => {
                assert!(consumed <= rest.len());
                off += consumed;
                break;
            }
            Progress::Invalid(_) => return false,
        }
    }
    carry.drain(..off);
    true
}

fuzz_target!(|data: &[u8]| {
    let mut c = Classifier::new();
    for d in [SqlDialect::Postgres, SqlDialect::Mysql] {
        c.classify(d, data, |st| st.len());
    }
    let mut p = PostgresParser::default();
    let mut carry = [Vec::new(), Vec::new()];
    let mut rest = data;
    while let Some((&ctl, after)) = rest.split_first() {
        let n = (usize::from(ctl >> 1) + 1).min(after.len());
        let (chunk, next) = after.split_at(n);
        let (dir, i) = if ctl & 1 == 0 {
            (Direction::ToServer, 0)
        } else {
            (Direction::ToClient, 1)
        };
        if !push(&mut p, &mut carry[i], dir, chunk) {
            break;
        }
        if ctl == 0xff {
            let _ = p.gap(dir, 7);
            carry[i].clear();
        }
        rest = next;
    }
    p.end(&mut Sink);
});
