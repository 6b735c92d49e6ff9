//! Test driver shared by the Redis, DNS and TLS parser tests: loads recorded conversations
//! (`tests/data/redis/segments.py` format), drives a parser through the data plane's own
//! caller ([`crate::driver`]: a carry per direction up to the parser's `max_carry`, fed again
//! while `Done` consumes bytes) and renders facts to strings so runs can be compared.

use crate::Direction;
use crate::contract::{Fact, FactSink, ParserAnomaly, StreamParser};
use crate::facts::{RequestDetail, ResponseDetail};
pub(crate) use crate::http2::testkit::Conv;

/// Reads `dir:u8 | len:u32 BE | payload` records.
pub(crate) fn segments(bytes: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let dir = if bytes[i] == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = u32::from_be_bytes(bytes[i + 1..i + 5].try_into().unwrap()) as usize;
        out.push((dir, bytes[i + 5..i + 5 + len].to_vec()));
        i += 5 + len;
    }
    out
}

/// Each direction's bytes concatenated.
pub(crate) fn streams(segs: &[(Direction, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
    let (mut c, mut s) = (Vec::new(), Vec::new());
    for (d, b) in segs {
        match d {
            Direction::ToServer => c.extend_from_slice(b),
            Direction::ToClient => s.extend_from_slice(b),
        }
    }
    (c, s)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opt(b: Option<&[u8]>) -> String {
    b.map_or("-".to_string(), lossy)
}

pub(crate) fn render(f: &Fact<'_>) -> String {
    match f {
        Fact::Transaction {
            id,
            summary,
            detail,
            ..
        } => {
            let d = match detail {
                RequestDetail::Redis(c) => format!(
                    "cmd={} key={} argc={}",
                    lossy(c.command),
                    opt(c.key),
                    c.argc
                ),
                RequestDetail::Dns(q) => format!(
                    "qname={} qtype={} qclass={} msg_id={}",
                    q.qname, q.qtype, q.qclass, q.msg_id
                ),
                RequestDetail::Tls(h) => format!(
                    "sni={} alpn=[{}] version={:#06x}",
                    opt(h.sni),
                    h.alpn
                        .iter()
                        .map(|a| lossy(a))
                        .collect::<Vec<_>>()
                        .join(","),
                    h.version
                ),
                other => format!("{other:?}"),
            };
            format!("tx {id} [{}] {d}", lossy(summary))
        }
        Fact::Response {
            id,
            status,
            summary,
            detail,
            ..
        } => {
            let d = match detail {
                ResponseDetail::Redis(r) => format!("error={}", opt(r.error)),
                ResponseDetail::Dns(a) => format!("rcode={} answers={}", a.rcode, a.answers),
                ResponseDetail::Tls(h) => {
                    format!("version={:#06x} alpn={}", h.version, opt(h.alpn))
                }
                other => format!("{other:?}"),
            };
            format!("rx {id} {status:?} [{}] {d}", lossy(summary))
        }
        Fact::Interim { id, status, .. } => format!("interim {id} {status}"),
        Fact::Unanswered { id, .. } => format!("unanswered {id}"),
        Fact::Opaque { reason, .. } => format!("opaque {}", reason.as_str()),
    }
}

#[derive(Default, Debug)]
pub(crate) struct Collect {
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

/// What one run produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub facts: Vec<String>,
    pub anomalies: Vec<ParserAnomaly>,
    pub alive: bool,
}

/// Feeds the segments in wire order, each as the reassembler would release it.
pub(crate) fn run_wire<P: StreamParser>(p: &mut P, segs: &[(Direction, Vec<u8>)]) -> Outcome {
    let mut sink = Collect::default();
    let mut c = Conv::new(p);
    for (d, b) in segs {
        if !c.push(*d, b, &mut sink) {
            break;
        }
    }
    c.end(&mut sink);
    Outcome {
        facts: sink.facts,
        anomalies: sink.anomalies,
        alive: c.alive(),
    }
}

/// Feeds the client stream in `chunks_c`, then the server stream in `chunks_s`.
pub(crate) fn run_chunks<P: StreamParser>(
    p: &mut P,
    chunks_c: &[&[u8]],
    chunks_s: &[&[u8]],
) -> Outcome {
    let mut sink = Collect::default();
    let mut c = Conv::new(p);
    let feeds = chunks_c
        .iter()
        .map(|b| (Direction::ToServer, b))
        .chain(chunks_s.iter().map(|b| (Direction::ToClient, b)));
    for (d, b) in feeds {
        if !c.push(d, b, &mut sink) {
            break;
        }
    }
    c.end(&mut sink);
    Outcome {
        facts: sink.facts,
        anomalies: sink.anomalies,
        alive: c.alive(),
    }
}

/// The contract's check: the client stream then the server stream, fed whole, split in two
/// at every `stride`-th byte position (every position for stride 1; the first and last
/// 2 KB always), and one byte at a time, give the same outcome. Returns it.
pub(crate) fn check_splits<P: StreamParser>(
    make: impl Fn() -> P,
    segs: &[(Direction, Vec<u8>)],
    stride: usize,
) -> Outcome {
    let (c, s) = streams(segs);
    let whole = run_chunks(&mut make(), &[&c], &[&s]);
    let longest = c.len().max(s.len());
    for at in 0..=longest {
        if at % stride != 0 && at > 2048 && at + 2048 < longest {
            continue;
        }
        let (c1, c2) = c.split_at(at.min(c.len()));
        let (s1, s2) = s.split_at(at.min(s.len()));
        let got = run_chunks(&mut make(), &[c1, c2], &[s1, s2]);
        assert_eq!(got, whole, "split at {at}");
    }
    let bytes_c: Vec<&[u8]> = c.chunks(1).collect();
    let bytes_s: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(
        run_chunks(&mut make(), &bytes_c, &bytes_s),
        whole,
        "one byte at a time"
    );
    whole
}

/// Facts of a run sorted, for comparing wire order with direction-by-direction order.
pub(crate) fn sorted(o: &Outcome) -> Vec<String> {
    let mut v = o.facts.clone();
    v.sort();
    v
}

/// Like [`check_splits`] but keeping the wire order between directions (for protocols whose
/// state depends on what the other side said first): consecutive segments of one direction
/// are merged into one feed, then that sequence is fed as is, with the feed holding every
/// `stride`-th byte position split in two, and one byte at a time. All must agree.
pub(crate) fn check_wire_splits<P: StreamParser>(
    make: impl Fn() -> P,
    segs: &[(Direction, Vec<u8>)],
    stride: usize,
) -> Outcome {
    let mut runs: Vec<(Direction, Vec<u8>)> = Vec::new();
    for (d, b) in segs {
        match runs.last_mut() {
            Some((ld, lb)) if ld == d => lb.extend_from_slice(b),
            _ => runs.push((*d, b.clone())),
        }
    }
    let whole = run_wire(&mut make(), &runs);
    let total: usize = runs.iter().map(|(_, b)| b.len()).sum();
    for at in 1..total {
        if at % stride != 0 && at > 512 && at + 512 < total {
            continue;
        }
        let mut feeds = Vec::new();
        let mut off = 0;
        for (d, b) in &runs {
            if off < at && at < off + b.len() {
                feeds.push((*d, b[..at - off].to_vec()));
                feeds.push((*d, b[at - off..].to_vec()));
            } else {
                feeds.push((*d, b.clone()));
            }
            off += b.len();
        }
        assert_eq!(run_wire(&mut make(), &feeds), whole, "split at {at}");
    }
    let bytes: Vec<(Direction, Vec<u8>)> = runs
        .iter()
        .flat_map(|(d, b)| b.iter().map(move |&x| (*d, vec![x])))
        .collect();
    assert_eq!(run_wire(&mut make(), &bytes), whole, "one byte at a time");
    whole
}
