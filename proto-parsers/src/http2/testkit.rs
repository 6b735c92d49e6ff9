//! Test driver for the HTTP/2 and gRPC tests: loads recorded conversations
//! (`tests/data/redis/segments.py` format), drives the parser through the data plane's own
//! caller ([`crate::driver`]: a carry per direction up to the parser's `max_carry`, fed again
//! while `Done` consumes bytes) and renders facts to strings so runs can be compared.

use crate::contract::{Fact, FactSink, GapOutcome, ParserAnomaly, Progress, StreamParser};
use crate::driver::Driver;
use crate::facts::{HttpRequest, RequestDetail, ResponseDetail};
use crate::{AppProto, Direction};

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

/// Consecutive segments of one direction merged: what one feed per direction turn is.
pub(crate) fn runs(segs: &[(Direction, Vec<u8>)]) -> Vec<(Direction, Vec<u8>)> {
    let mut runs: Vec<(Direction, Vec<u8>)> = Vec::new();
    for (d, b) in segs {
        match runs.last_mut() {
            Some((ld, lb)) if ld == d => lb.extend_from_slice(b),
            _ => runs.push((*d, b.clone())),
        }
    }
    runs
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 60 {
        format!("{}..({} bytes)", &s[..40], b.len())
    } else {
        s.into_owned()
    }
}

fn opt(b: Option<&[u8]>) -> String {
    b.map_or("-".to_string(), lossy)
}

fn http(h: &HttpRequest<'_>) -> String {
    format!(
        "{:?} {} {} authority={} ua={} ct={} headers={}",
        h.version,
        lossy(h.method),
        lossy(h.path),
        opt(h.authority),
        opt(h.user_agent),
        opt(h.content_type),
        h.headers
            .iter()
            .map(|f| format!("{}={}", lossy(f.name), lossy(f.value)))
            .collect::<Vec<_>>()
            .join(",")
    )
}

pub(crate) fn render(f: &Fact<'_>) -> String {
    match f {
        Fact::Transaction {
            app,
            id,
            summary,
            detail,
        } => {
            let d = match detail {
                RequestDetail::Http(h) => format!("http {}", http(h)),
                RequestDetail::Grpc(g) => format!(
                    "grpc {}/{} {}",
                    lossy(g.service),
                    lossy(g.method),
                    http(&g.http)
                ),
                other => format!("{other:?}"),
            };
            format!("tx {} {id} [{}] {d}", app.as_str(), lossy(summary))
        }
        Fact::Response {
            app,
            id,
            status,
            summary,
            detail,
        } => {
            let d = match detail {
                ResponseDetail::Http(r) => format!("http {} ct={}", r.status, opt(r.content_type)),
                ResponseDetail::Grpc(g) => format!(
                    "grpc http={} status={:?} message={}",
                    g.http_status,
                    g.grpc_status,
                    opt(g.grpc_message)
                ),
                other => format!("{other:?}"),
            };
            format!(
                "rx {} {id} {status:?} [{}] {d}",
                app.as_str(),
                lossy(summary)
            )
        }
        Fact::Interim {
            app, id, status, ..
        } => {
            format!("interim {} {id} {status}", app.as_str())
        }
        Fact::Unanswered { app, id } => format!("unanswered {} {id}", app.as_str()),
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

/// A parser lent to a [`Driver`] for one run, so that the test can look at it afterwards.
pub(crate) struct Lent<'a, P>(pub &'a mut P);

impl<P: StreamParser> StreamParser for Lent<'_, P> {
    fn proto(&self) -> AppProto {
        self.0.proto()
    }
    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
        let r = self.0.feed(dir, data, sink);
        assert!(r.consumed() <= data.len(), "consumed past the end");
        r
    }
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        self.0.gap(dir, len)
    }
    fn end(&mut self, sink: &mut dyn FactSink) {
        self.0.end(sink);
    }
    fn max_carry(&self) -> usize {
        self.0.max_carry()
    }
}

/// One parser fed through the data plane's caller ([`Driver`]), borrowed so that a test can
/// keep feeding it and look at it between feeds.
pub(crate) struct Conv<'a, P: StreamParser> {
    d: Driver<Lent<'a, P>>,
}

impl<'a, P: StreamParser> Conv<'a, P> {
    pub(crate) fn new(p: &'a mut P) -> Self {
        Conv {
            d: Driver::new(Lent(p)),
        }
    }

    /// Feeds `data`; false once the flow was given up (by the parser or the carry limit).
    pub(crate) fn push(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> bool {
        self.d.feed(dir, data, sink).is_ok()
    }

    pub(crate) fn carried(&self, dir: Direction) -> usize {
        self.d.carried(dir)
    }

    /// `len` bytes of `dir` are missing (the driver stops the flow if the parser gives up).
    pub(crate) fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        self.d.gap(dir, len)
    }

    pub(crate) fn alive(&self) -> bool {
        self.d.stopped().is_none()
    }

    pub(crate) fn end(&mut self, sink: &mut dyn FactSink) {
        self.d.end(sink);
    }

    pub(crate) fn parser(&mut self) -> &mut P {
        self.d.parser.0
    }
}

/// What one run produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub facts: Vec<String>,
    pub anomalies: Vec<ParserAnomaly>,
    pub alive: bool,
    /// Most bytes the caller ever carried, to show what the parser leans on the carry for.
    pub carried: usize,
}

/// Feeds `feeds` in order through the data plane's caller ([`Driver`]), then ends the flow.
pub(crate) fn run<'a, P: StreamParser>(
    p: &mut P,
    feeds: impl IntoIterator<Item = (Direction, &'a [u8])>,
) -> Outcome {
    let mut sink = Collect::default();
    let mut d = Driver::new(Lent(p));
    let mut carried = 0;
    for (dir, b) in feeds {
        if d.feed(dir, b, &mut sink).is_err() {
            break;
        }
        carried = carried.max(d.carried(dir));
    }
    d.end(&mut sink);
    Outcome {
        facts: sink.facts,
        anomalies: sink.anomalies,
        alive: d.stopped().is_none(),
        carried,
    }
}

/// The contract's check, keeping the wire order between directions (a response must come
/// after its request): each direction's turn is one feed, and the whole conversation is fed
/// as is, with every `stride`-th byte position (all of them for stride 1, and always the
/// first and last 256 bytes) splitting one feed in two, and one byte at a time. All runs must
/// give the same outcome, which is returned.
pub(crate) fn check_splits<P: StreamParser>(
    make: impl Fn() -> P,
    segs: &[(Direction, Vec<u8>)],
    stride: usize,
) -> Outcome {
    let runs = runs(segs);
    let whole = run(&mut make(), runs.iter().map(|(d, b)| (*d, &b[..])));
    let total: usize = runs.iter().map(|(_, b)| b.len()).sum();
    for at in 1..total {
        let edge = if stride == 1 { total } else { 256 };
        if at % stride != 0 && at > edge && at + edge < total {
            continue;
        }
        let mut off = 0;
        let mut feeds: Vec<(Direction, &[u8])> = Vec::with_capacity(runs.len() + 1);
        for (d, b) in &runs {
            if off < at && at < off + b.len() {
                feeds.push((*d, &b[..at - off]));
                feeds.push((*d, &b[at - off..]));
            } else {
                feeds.push((*d, b));
            }
            off += b.len();
        }
        let got = run(&mut make(), feeds);
        assert_eq!(
            (&got.facts, &got.anomalies, got.alive),
            (&whole.facts, &whole.anomalies, whole.alive),
            "split at {at}"
        );
    }
    let bytes = runs
        .iter()
        .flat_map(|(d, b)| b.chunks(1).map(move |x| (*d, x)));
    let one = run(&mut make(), bytes);
    assert_eq!(
        (&one.facts, &one.anomalies, one.alive),
        (&whole.facts, &whole.anomalies, whole.alive),
        "one byte at a time"
    );
    whole
}
