//! The HTTP/1 parser on arbitrary bytes in both directions, cut at arbitrary points and
//! driven as dataplane::inspect drives it (a carry buffer per direction capped at 64 KiB,
//! fed again while `Done` consumes bytes). Never panics, never consumes more than it was
//! given, facts stay within the parser's bounds, and the facts and anomalies do not depend
//! on where the feeds were cut (the same input fed record by record gives the same ones).
//!
//! Input layout (also what `seeds/http1/` holds, made from the recorded conversations):
//!   byte 0: cut seed (feeds are cut into pieces of 1..=64 bytes chosen from it, or whole
//!           when it is 0)
//!   byte 1: unused (kept so seeds share the layout of the other parser targets)
//!   then records: u8 direction (bit 0: 0 = to server, 1 = to client), u16 big-endian
//!   length, `length` bytes (clipped at the end of the input)
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::Direction;
use proto_parsers::contract::{Fact, FactSink, ParserAnomaly, Progress, StreamParser};
use proto_parsers::facts::{RequestDetail, ResponseDetail};
use proto_parsers::http1::{Http1Parser, MAX_HEAD, MAX_HEADERS, MAX_SUMMARY};

const CARRY_CAP: usize = 64 * 1024;

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
                assert!(r.headers.len() <= MAX_HEADERS);
                assert!(r.path.len() < MAX_HEAD);
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

/// Feeds `data` through the direction's carry; false once the flow is given up.
fn push(
    p: &mut Http1Parser,
    dir: Direction,
    carry: &mut Vec<u8>,
    data: &[u8],
    sink: &mut Check,
) -> bool {
    carry.extend_from_slice(data);
    let mut off = 0;
    let mut ok = true;
    while off < carry.len() {
        let rest = &carry[off..];
        match p.feed(dir, rest, sink) {
            Progress::Done { consumed } => {
                assert!(consumed <= rest.len());
                if consumed == 0 {
                    break;
                }
                off += consumed;
            }
            Progress::NeedMore { consumed } => {
                assert!(consumed <= rest.len());
                off += consumed;
                break;
            }
            Progress::Invalid(_) => {
                ok = false;
                break;
            }
        }
    }
    carry.drain(..off);
    ok && carry.len() <= CARRY_CAP
}

/// Runs the records, each cut into pieces per `seed` (whole when 0); returns the log.
fn run(records: &[(Direction, &[u8])], seed: u8) -> Vec<String> {
    let mut p = Http1Parser::default();
    let mut sink = Check::default();
    let mut carry = [Vec::new(), Vec::new()];
    let mut roll = seed;
    'records: for (dir, payload) in records {
        let c = &mut carry[usize::from(*dir == Direction::ToClient)];
        if seed == 0 {
            if !push(&mut p, *dir, c, payload, &mut sink) {
                break;
            }
            continue;
        }
        for piece in payload.chunks(usize::from(roll % 64) + 1) {
            roll = roll.wrapping_mul(31).wrapping_add(7);
            if !push(&mut p, *dir, c, piece, &mut sink) {
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
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let end = (3 + len).min(rest.len());
        records.push((dir, &rest[3..end]));
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
