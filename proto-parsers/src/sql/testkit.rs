//! Test driver shared by the PostgreSQL and MySQL parser tests: replays recorded
//! conversations through the data plane's own caller ([`crate::driver`]), split in every
//! way the tests ask for.

use crate::Direction;
use crate::contract::{Fact, FactSink, GapOutcome, ParserAnomaly, Progress, StreamParser};
use crate::driver::{Driver, Stop};
use crate::facts::{RequestDetail, ResponseDetail, SqlVerb};

/// Reads a fixture written by tests/data/sql_extract.py: records of one direction byte
/// (`C`/`S`), a 4-byte big-endian length and that many payload bytes.
pub fn load(bin: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < bin.len() {
        let dir = match bin[i] {
            b'C' => Direction::ToServer,
            b'S' => Direction::ToClient,
            other => panic!("bad direction byte {other}"),
        };
        let n = u32::from_be_bytes(bin[i + 1..i + 5].try_into().unwrap()) as usize;
        v.push((dir, bin[i + 5..i + 5 + n].to_vec()));
        i += 5 + n;
    }
    v
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn verb(v: &SqlVerb<'_>) -> String {
    match v {
        SqlVerb::Other(s) => s.to_string(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// One line per fact, every field that matters, so runs compare as strings.
pub fn render(f: &Fact<'_>) -> String {
    match f {
        Fact::Transaction {
            id,
            summary,
            detail,
            ..
        } => {
            let mut s = format!("tx {id} [{}]", lossy(summary));
            if let RequestDetail::Sql(q) = detail {
                s += &format!(
                    " {:?} user={} db={} text={:?}",
                    q.kind,
                    q.user.map(lossy).unwrap_or("-".into()),
                    q.database.map(lossy).unwrap_or("-".into()),
                    lossy(q.text)
                );
                for st in q.statements {
                    s += &format!(" {}{:?}", verb(&st.verb), st.tables);
                }
            }
            s
        }
        Fact::Response {
            id,
            status,
            summary,
            detail,
            ..
        } => {
            let mut s = format!("rx {id} {status:?} [{}]", lossy(summary));
            if let ResponseDetail::Sql(r) = detail {
                s += &format!(
                    " state={} code={:?} error={}",
                    r.sqlstate.map(lossy).unwrap_or("-".into()),
                    r.code,
                    r.error.map(lossy).unwrap_or("-".into())
                );
            }
            s
        }
        Fact::Interim { id, status, .. } => format!("interim {id} {status}"),
        Fact::Unanswered { id, .. } => format!("unanswered {id}"),
        Fact::Opaque { reason, .. } => format!("opaque {}", reason.as_str()),
    }
}

#[derive(Default, Debug)]
pub struct Collect {
    pub facts: Vec<String>,
    pub anomalies: Vec<ParserAnomaly>,
}

impl FactSink for Collect {
    fn fact(&mut self, fact: &Fact<'_>) {
        self.facts.push(render(fact));
    }
    fn anomaly(&mut self, a: ParserAnomaly) {
        self.anomalies.push(a);
    }
}

/// A boxed parser, driven as itself.
struct Dyn(Box<dyn StreamParser>);

impl StreamParser for Dyn {
    fn proto(&self) -> crate::AppProto {
        self.0.proto()
    }
    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let p = self.0.feed(dir, data, sink);
        assert!(p.consumed() <= data.len());
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

/// Replays `recs` into a fresh parser through the data plane's caller
/// ([`crate::driver::Driver`]: a carry per direction up to the parser's `max_carry`), each
/// record cut into pieces by `cuts(i, len)` (the offsets inside record i where a feed
/// ends), then ends the flow. The second value says why the flow was given up, if it was
/// (`invalid` or `carry_overflow`).
pub fn replay(
    make: &dyn Fn() -> Box<dyn StreamParser>,
    recs: &[(Direction, Vec<u8>)],
    cuts: &dyn Fn(usize, usize) -> Vec<usize>,
) -> (Collect, Option<&'static str>) {
    let mut d = Driver::new(Dyn(make()));
    let mut sink = Collect::default();
    for (i, (dir, data)) in recs.iter().enumerate() {
        let mut last = 0;
        for cut in cuts(i, data.len()).into_iter().chain([data.len()]) {
            if cut > last {
                let _ = d.feed(*dir, &data[last..cut], &mut sink);
                last = cut;
            }
        }
    }
    d.end(&mut sink);
    let dead = d.stopped().map(|s| match s {
        Stop::Invalid(_) => "invalid",
        Stop::Overflow => "carry_overflow",
    });
    (sink, dead)
}

/// Feeds the conversation whole (record by record), with the records of each direction run
/// merged, split at every byte position of every record, and one byte at a time; asserts the
/// same facts and anomalies every time and returns them.
pub fn check_all_splits(
    make: &dyn Fn() -> Box<dyn StreamParser>,
    recs: &[(Direction, Vec<u8>)],
) -> Collect {
    let (base, dead) = replay(make, recs, &|_, _| Vec::new());
    assert_eq!(dead, None, "whole replay died: {:?}", base.facts);
    let same = |what: String, (got, dead): (Collect, Option<&'static str>)| {
        assert_eq!(dead, None, "{what}");
        assert_eq!(got.facts, base.facts, "{what}");
        assert_eq!(got.anomalies, base.anomalies, "{what}");
    };
    // Consecutive records of one direction merged into one feed.
    let mut merged: Vec<(Direction, Vec<u8>)> = Vec::new();
    for (d, b) in recs {
        match merged.last_mut() {
            Some((ld, lb)) if ld == d => lb.extend_from_slice(b),
            _ => merged.push((*d, b.clone())),
        }
    }
    same("merged".into(), replay(make, &merged, &|_, _| Vec::new()));
    for (i, (_, data)) in recs.iter().enumerate() {
        for at in 1..data.len() {
            same(
                format!("record {i} split at {at}"),
                replay(make, recs, &|j, _| {
                    if j == i { vec![at] } else { Vec::new() }
                }),
            );
        }
    }
    same(
        "byte by byte".into(),
        replay(make, recs, &|_, len| (1..len).collect()),
    );
    base
}
