//! Test driver shared by the PostgreSQL and MySQL parser tests: replays recorded
//! conversations the way the dataplane's inspector feeds a parser (bounded carry buffer per
//! direction, `Done`/`NeedMore` loop), split in every way the tests ask for.

use crate::Direction;
use crate::contract::{Fact, FactSink, ParserAnomaly, Progress, StreamParser};
use crate::facts::{RequestDetail, ResponseDetail, SqlVerb};

/// The inspector's carry cap (dataplane::inspect::CARRY_CAP).
pub const CARRY_CAP: usize = 64 * 1024;

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

/// The inspector's side of the contract, both directions.
#[derive(Default)]
pub struct Caller {
    carry: [Vec<u8>; 2],
    /// Set once the parser answered Invalid or the carry would overflow.
    pub dead: Option<&'static str>,
}

impl Caller {
    pub fn push(
        &mut self,
        p: &mut dyn StreamParser,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
    ) {
        if self.dead.is_some() {
            return;
        }
        let carry = &mut self.carry[match dir {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }];
        // As the inspector does: an empty carry feeds `data` in place, a non-empty one
        // takes `data` appended if the sum fits the cap.
        let direct = carry.is_empty();
        if !direct && carry.len() + data.len() > CARRY_CAP {
            self.dead = Some("carry_overflow");
            return;
        }
        if !direct {
            carry.extend_from_slice(data);
        }
        let buf: &[u8] = if direct { data } else { carry };
        let mut off = 0;
        loop {
            let rest = &buf[off..];
            if rest.is_empty() {
                break;
            }
            match p.feed(dir, rest, sink) {
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
                Progress::Invalid(_) => {
                    self.dead = Some("invalid");
                    return;
                }
            }
        }
        if direct {
            if data.len() - off > CARRY_CAP {
                self.dead = Some("carry_overflow");
                return;
            }
            carry.extend_from_slice(&data[off..]);
        } else {
            carry.drain(..off);
        }
    }
}

/// Replays `recs` into a fresh parser, each record cut into pieces by `cuts(i, len)` (the
/// offsets inside record i where a feed ends), then ends the flow.
pub fn replay(
    make: &dyn Fn() -> Box<dyn StreamParser>,
    recs: &[(Direction, Vec<u8>)],
    cuts: &dyn Fn(usize, usize) -> Vec<usize>,
) -> (Collect, Option<&'static str>) {
    let mut p = make();
    let mut sink = Collect::default();
    let mut c = Caller::default();
    for (i, (dir, data)) in recs.iter().enumerate() {
        let mut last = 0;
        for cut in cuts(i, data.len()).into_iter().chain([data.len()]) {
            if cut > last {
                c.push(p.as_mut(), *dir, &data[last..cut], &mut sink);
                last = cut;
            }
        }
    }
    p.end(&mut sink);
    (sink, c.dead)
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
