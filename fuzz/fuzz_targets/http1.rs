//! The HTTP/1 parser on arbitrary bytes in both directions, cut at arbitrary points and
//! driven through the data plane's own caller (`proto_parsers::driver`: a carry per
//! direction up to the parser's `max_carry`, fed again while `Done` consumes bytes; the
//! whole flow is given up at the first error, as the data plane gives it up). Never panics,
//! never consumes more than it was given, facts stay within the parser's bounds, and the
//! facts and anomalies do not depend on where the feeds were cut (the same input fed record
//! by record gives the same ones).
//!
//! Input layout (also what `seeds/http1/` holds, made from the recorded conversations; the
//! layout of `palisade_fuzz::run_split_feeds`):
//!   byte 0: cut seed (feeds are cut into pieces of 1..=64 bytes chosen from it, or whole
//!           when it is 0)
//!   byte 1: unused (kept so seeds share the layout of the other parser targets)
//!   then records: u8 direction (bit 0: 0 = to server, 1 = to client; bit 1: a reassembly
//!   gap of `length` bytes in that direction, no bytes follow), u16 big-endian length,
//!   `length` bytes (clipped at the end of the input)
//!
//! Gaps sit between records, so they are at the same place however the feeds are cut, and
//! what the parser finds after one (it looks for the next message head) must not depend
//! on the cuts either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::Direction;
use proto_parsers::contract::{Fact, FactSink, GapOutcome, ParserAnomaly, Progress, StreamParser};
use proto_parsers::driver::{self, Carry, CarryBudget};
use proto_parsers::facts::{RequestDetail, ResponseDetail};
use proto_parsers::http1::{Http1Parser, MAX_HEAD, MAX_SUMMARY};

#[derive(Default)]
struct Check {
    log: Vec<String>,
}

impl FactSink for Check {
    fn fact(&mut self, fact: &Fact<'_>) {
        match fact {
            Fact::Transaction {
                id,
                summary,
                detail,
                ..
            } => {
                assert!(
                    summary.len() <= MAX_SUMMARY,
                    "summary of {} bytes",
                    summary.len()
                );
                let RequestDetail::Http(r) = detail else {
                    panic!("not an HTTP request")
                };
                // Any number of fields, but each takes at least `n:\n` of the head.
                assert!(r.headers.len() <= MAX_HEAD / 3);
                assert!(r.path.len() < MAX_HEAD);
                assert!(!r.method.is_empty() && !r.path.is_empty());
                self.log.push(format!("tx {id} {summary:?} {r:?}"));
            }
            Fact::Response {
                id, status, detail, ..
            } => {
                let ResponseDetail::Http(r) = detail else {
                    panic!("not an HTTP response")
                };
                assert_eq!(*status, Some(u32::from(r.status)));
                self.log.push(format!("rx {id} {r:?}"));
            }
            other => self.log.push(format!("{other:?}")),
        }
    }
    fn anomaly(&mut self, a: ParserAnomaly) {
        self.log.push(a.as_str().to_string());
    }
}

/// The parser as the driver sees it, checking that it never consumes past the end.
struct Checked(Http1Parser);

impl StreamParser for Checked {
    fn proto(&self) -> proto_parsers::AppProto {
        self.0.proto()
    }
    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let p = self.0.feed(dir, data, sink);
        assert!(p.consumed() <= data.len(), "consumed past the end");
        p
    }
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        self.0.gap(dir, len)
    }
    fn end(&mut self, sink: &mut dyn FactSink) {
        self.0.end(sink)
    }
    fn max_carry(&self) -> usize {
        self.0.max_carry()
    }
}

/// One record of the input: bytes of one direction, or bytes lost from it.
enum Record<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u32),
}

/// Runs the records, each cut into pieces per `seed` (whole when 0); returns the log.
fn run(records: &[Record<'_>], seed: u8) -> Vec<String> {
    let mut p = Checked(Http1Parser::default());
    let mut sink = Check::default();
    let mut carry = [Carry::new(), Carry::new()];
    let mut budget = CarryBudget::unlimited();
    let max = p.max_carry();
    let mut roll = seed;
    'records: for record in records {
        let (dir, payload) = match *record {
            Record::Data(dir, payload) => (dir, payload),
            Record::Gap(dir, len) => {
                carry[usize::from(dir == Direction::ToClient)].clear(&mut budget);
                let outcome = p.gap(dir, len);
                sink.log.push(format!("gap {}", outcome.as_str()));
                if outcome == GapOutcome::GiveUp {
                    break 'records;
                }
                continue;
            }
        };
        let c = &mut carry[usize::from(dir == Direction::ToClient)];
        let pieces: Vec<&[u8]> = if seed == 0 {
            vec![payload]
        } else {
            payload.chunks(usize::from(roll % 64) + 1).collect()
        };
        for piece in pieces {
            roll = roll.wrapping_mul(31).wrapping_add(7);
            let fed = c.push(piece, max, &mut budget, |d| {
                driver::drive(&mut p, dir, d, &mut sink)
            });
            if let Err(stop) = fed {
                sink.log.push(stop.as_str().to_string());
                break 'records;
            }
        }
    }
    p.end(&mut sink);
    sink.log
}

fuzz_target!(|data: &[u8]| {
    let Some(&seed) = data.first() else {
        return;
    };
    let mut rest = data.get(2..).unwrap_or_default();
    let mut records = Vec::new();
    while rest.len() >= 3 {
        let dir = if rest[0] & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = u16::from_be_bytes([rest[1], rest[2]]);
        if rest[0] & 2 != 0 {
            records.push(Record::Gap(dir, u32::from(len)));
            rest = &rest[3..];
            continue;
        }
        let end = (3 + usize::from(len)).min(rest.len());
        records.push(Record::Data(dir, &rest[3..end]));
        rest = &rest[end..];
    }
    let whole = run(&records, 0);
    if seed != 0 {
        assert_eq!(
            run(&records, seed),
            whole,
            "facts depend on where feeds are cut"
        );
    }
});
