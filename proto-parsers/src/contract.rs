//! The one streaming contract every protocol parser implements.
//!
//! # Buffers
//!
//! A parser never owns the stream. The caller (the dataplane's inspector) feeds it the bytes
//! of one direction as reassembly releases them, and answers to [`Progress`]:
//!
//! * `Done { consumed }`: one or more whole messages were parsed. The caller drops the first
//!   `consumed` bytes and, if bytes remain, feeds the rest again at once (it may hold the
//!   next message). `Done { consumed: 0 }` means "nothing to do with these bytes now" and
//!   stops the loop without dropping anything.
//! * `NeedMore { consumed }`: the first `consumed` bytes were parsed; what follows is the
//!   start of a message that is not complete yet. The caller drops `consumed` bytes, keeps
//!   the rest in its carry buffer for this direction and, when more bytes arrive, feeds the
//!   carry with the new bytes appended. The parser therefore sees an unfinished message again
//!   from its first byte: it must not remember pointers or offsets into an earlier `data`,
//!   only its own small state (which message kind it is in, lengths it has decoded).
//! * `Invalid(reason)`: these bytes cannot be this protocol. The caller stops inspecting the
//!   flow (it becomes opaque) and counts it.
//!
//! The caller's carry buffer is bounded by [`StreamParser::max_carry`] (the largest message
//! head the parser needs whole: [`DEFAULT_MAX_CARRY`] unless the parser says otherwise) and
//! by a budget shared by all flows of a worker ([`crate::driver::CarryBudget`]). A parser that
//! would need more than that to make progress must consume the bytes it does not need (a
//! body it skips, a statement it classifies as it streams past) or report a blinding
//! anomaly ([`ParserAnomaly::blinds`]) and answer `Invalid(TooLarge)`. The caller's side of
//! all this is written once, in [`crate::driver`]. `consumed` is never larger than
//! `data.len()`.
//!
//! # Leniency and blindness
//!
//! A parser reads as leniently as the servers it stands in front of do (empty lines before
//! an HTTP request, bare LF line ends, any number of headers, any pipeline depth), so that
//! the bytes policy judges are the bytes the server acts on. Where it cannot know what the
//! receiver will act on (a limit hit, framing two implementations read differently, a mode
//! it cannot decode), it says so with an anomaly that [`ParserAnomaly::blinds`] or a
//! [`Fact::Opaque`]; the data plane then applies the policy's `onUninspectable` decision
//! instead of letting the flow through unjudged.
//!
//! # Facts
//!
//! What a parser finds goes to a [`FactSink`] as a [`Fact`] that borrows from the bytes just
//! fed: no allocation per header or per request on the parser's side. The sink decides what
//! to keep (the policy engine reads the borrowed fields; the event writer copies only what it
//! prints). A fact must be delivered while its bytes are still borrowed, that is, from within
//! the `feed` call that saw them.
//!
//! # Hand-over
//!
//! A connection may stop being the protocol its parser reads while staying inspectable:
//! HTTP/1 after the server accepted `Upgrade: h2c` (HTTP/2 from then on) or a `CONNECT`
//! (a tunnelled connection of its own). The parser then consumes nothing more and says so
//! through [`StreamParser::handover`]; the caller replaces it with the reader of what the
//! connection became ([`Handover`]) and feeds that one both directions' unconsumed bytes.

use crate::facts::{RequestDetail, ResponseDetail};
use crate::{AppProto, Direction};

/// Why bytes cannot be the protocol a parser expects. Small and `Copy`: reasons are counted
/// and logged, never formatted per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// A fixed marker (magic, preface, version byte) is wrong.
    BadMagic,
    /// A length field contradicts the framing (negative, shorter than its own header).
    BadLength,
    /// A length or count is larger than the parser's limit allows.
    TooLarge,
    /// A protocol version or feature this parser does not implement.
    Unsupported,
    /// Bytes that break the protocol's grammar (bad token, bad delimiter).
    BadSyntax,
    /// A well-formed message where the protocol's state machine does not allow it.
    UnexpectedMessage,
}

impl Invalid {
    pub const fn as_str(self) -> &'static str {
        match self {
            Invalid::BadMagic => "bad_magic",
            Invalid::BadLength => "bad_length",
            Invalid::TooLarge => "too_large",
            Invalid::Unsupported => "unsupported",
            Invalid::BadSyntax => "bad_syntax",
            Invalid::UnexpectedMessage => "unexpected_message",
        }
    }
}

/// The answer to one [`StreamParser::feed`]; see the module documentation for what the
/// caller does with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Done { consumed: usize },
    NeedMore { consumed: usize },
    Invalid(Invalid),
}

impl Progress {
    /// Bytes the caller may drop (none for `Invalid`: the flow is given up anyway).
    pub const fn consumed(self) -> usize {
        match self {
            Progress::Done { consumed } | Progress::NeedMore { consumed } => consumed,
            Progress::Invalid(_) => 0,
        }
    }
}

/// What a parser made of bytes missing in one direction ([`StreamParser::gap`]). The
/// caller acts on it: nothing for `Skipped`; for `Resync` it keeps feeding the parser, and
/// when the bytes lost were the client's (they may have held requests no rule saw) it hands
/// the flow to the policy's uninspectable decision; for `GiveUp` it stops inspecting the
/// flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapOutcome {
    /// Nothing a rule could judge was lost and the parser is exactly in step: the gap lay
    /// inside bytes it was counting through unread (a body of known length, a record it
    /// skips) or in a direction it no longer reads (a tunnel, an encrypted stream).
    Skipped,
    /// The parser dropped whatever it was in the middle of and looks for the start of the
    /// next message in the bytes that follow (HTTP/1: the next request or status line;
    /// Redis: the next multi-bulk command). The lost bytes may have held whole messages:
    /// requests nobody saw, responses that now pair with nothing. A parser may also answer
    /// this for a direction whose messages no rule judges when it stops reading that
    /// direction and keeps reading the other (Redis replies after a gap).
    Resync,
    /// The parser cannot find its place again (length-prefixed framing, header compression
    /// state, a protocol switch whose answer was lost): the flow becomes opaque.
    GiveUp,
}

impl GapOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            GapOutcome::Skipped => "skipped",
            GapOutcome::Resync => "resync",
            GapOutcome::GiveUp => "give_up",
        }
    }
}

/// A parser of one flow: both directions, with the per-direction state inside. Created once
/// the flow's protocol is detected, dropped with the flow. Never panics on any input.
pub trait StreamParser: Send {
    /// The protocol this parser reads (a gRPC-capable HTTP/2 parser may say `Grpc` once a
    /// call's content-type told it so).
    fn proto(&self) -> AppProto;

    /// Parses bytes of direction `dir`, delivering what it finds to `sink`.
    fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress;

    /// `len` bytes are missing in `dir` (a reassembly gap); the caller has already dropped
    /// its carry for `dir`. The parser says what it made of them ([`GapOutcome`]): skipped
    /// exactly, resynchronising on the next message, or given up (the flow then becomes
    /// opaque). It cannot report facts here (no sink): what the gap costs (requests
    /// reported unanswered, a [`ParserAnomaly::Resync`]) is reported on the next `feed` or
    /// at `end`.
    fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome;

    /// The flow ended; flush pending transactions (requests that saw no response).
    fn end(&mut self, sink: &mut dyn FactSink) {
        let _ = sink;
    }

    /// Most bytes this parser may leave unconsumed in one direction: the largest message
    /// head it needs whole, as large as the servers of its protocol accept by default. The
    /// caller's carry grows up to this (charged to its budget); a parser must never need
    /// more.
    fn max_carry(&self) -> usize {
        DEFAULT_MAX_CARRY
    }

    /// What the connection became, once the parser handed it over (see "Hand-over" in the
    /// module documentation): from then on it consumes nothing, and both directions'
    /// unconsumed bytes belong to the connection's next reader. `None` for a parser that
    /// never hands over, which is most of them.
    fn handover(&self) -> Option<Handover> {
        None
    }
}

/// What a connection became when its parser handed it over ([`StreamParser::handover`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handover {
    /// HTTP/2, after a `101 Switching Protocols` to `h2c`: the upgrade request, transaction
    /// `stream1` of the parser that handed over, is HTTP/2's stream 1 (its final response
    /// comes over HTTP/2). When no request was waiting for the `101` (it was reported
    /// unsolicited), `stream1` is the parser's next unused id, so that it pairs with none.
    Http2 { stream1: u32 },
    /// A tunnelled connection, after a `2xx` to `CONNECT`: the bytes that follow are its own
    /// from its first byte (a TLS ClientHello, an HTTP request...). `next_tx` is the first
    /// transaction id the parser that handed over did not use: the tunnelled connection's
    /// transactions are numbered from there on, so ids stay unique on the flow.
    Tunnel { next_tx: u32 },
}

/// The carry limit of a parser that does not set its own ([`StreamParser::max_carry`]).
pub const DEFAULT_MAX_CARRY: usize = 64 * 1024;

/// Receives what parsers find. Facts borrow from the fed bytes (zero copy); the sink
/// materialises only what it keeps.
pub trait FactSink {
    fn fact(&mut self, fact: &Fact<'_>);
    fn anomaly(&mut self, a: ParserAnomaly);

    /// A fact about a connection tunnelled through this one (the bytes after an accepted
    /// HTTP `CONNECT`): the caller reports it, but it is not a request to this
    /// connection's server, so a sink that judges requests may treat it apart.
    fn tunnelled(&mut self, fact: &Fact<'_>) {
        self.fact(fact);
    }

    /// An anomaly of a tunnelled connection's parser (see [`FactSink::tunnelled`]).
    fn tunnelled_anomaly(&mut self, a: ParserAnomaly) {
        self.anomaly(a);
    }
}

/// Something a parser learnt about the flow. Protocol parsers add their own typed variants
/// (HTTP request heads, SQL statements, DNS questions, TLS ClientHellos); the generic ones
/// below let the dataplane count and log transactions of any protocol.
///
/// Transactions are numbered per flow by the parser (`id`, from 0, wrapping) so that a
/// request and its response pair up even when the request's bytes are long gone: a request
/// is reported when it is seen (policy judges it at once), its outcome when the response
/// arrives or the flow ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact<'a> {
    /// A request, command, query or handshake that policy judges. `summary` is its first
    /// line or an equivalent short rendering as sent (`GET /x HTTP/1.1`, `SELECT ...`,
    /// `SET key`): bytes from the wire, not necessarily UTF-8, possibly truncated by the
    /// parser to its summary limit.
    Transaction {
        app: AppProto,
        id: u32,
        summary: &'a [u8],
        /// The protocol's typed fields (what L7 rules match and events print).
        detail: RequestDetail<'a>,
    },
    /// The response to transaction `id`. `status` is the protocol's number for the outcome
    /// where it has one (HTTP status, gRPC status, DNS rcode, MySQL error number); `summary`
    /// its status line or error message as sent, empty when it has none.
    Response {
        app: AppProto,
        id: u32,
        status: Option<u32>,
        summary: &'a [u8],
        detail: ResponseDetail<'a>,
    },
    /// An interim answer to transaction `id` that is reported on its own while the final
    /// response is still to come, under the same id: HTTP's `101 Switching Protocols` to
    /// `h2c`, after which the request's real response arrives over HTTP/2 (its stream 1).
    Interim {
        app: AppProto,
        id: u32,
        status: u32,
        summary: &'a [u8],
    },
    /// Transaction `id` was still waiting for its response when the flow ended.
    Unanswered { app: AppProto, id: u32 },
    /// From here on the parser cannot read the flow, for a reason that is not an attack by
    /// itself (encryption was negotiated, a mode it does not decode). The parser keeps
    /// consuming the bytes without looking at them.
    Opaque { app: AppProto, reason: OpaqueReason },
}

impl Fact<'_> {
    pub const fn app(&self) -> AppProto {
        match self {
            Fact::Transaction { app, .. }
            | Fact::Response { app, .. }
            | Fact::Interim { app, .. }
            | Fact::Unanswered { app, .. }
            | Fact::Opaque { app, .. } => *app,
        }
    }
}

/// Why a flow stopped being readable without being malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpaqueReason {
    /// TLS (or the protocol's own encryption, e.g. PostgreSQL after `SSLRequest` was accepted).
    Encrypted,
    /// Compression the parser does not undo (e.g. MySQL's compressed protocol).
    Compressed,
    /// Picked up mid-stream where state from the start is required (HPACK tables).
    MidStream,
    /// A protocol switch the parser does not follow (HTTP `Upgrade`, `CONNECT` tunnel).
    Tunnel,
    /// A protocol version or mode this parser does not implement.
    Unsupported,
}

impl OpaqueReason {
    /// Whether requests the policy could judge may follow unseen in a flow of `app`: not
    /// after a protocol switch the server confirmed (the upgraded or tunnelled bytes are no
    /// longer `app`'s requests), nor after a TLS handshake (its ClientHello was judged);
    /// yes for encryption or compression negotiated inside a protocol whose requests rules
    /// judge (PostgreSQL `SSLRequest`, MySQL `CLIENT_SSL`), a picked-up stream, an
    /// unsupported mode.
    pub const fn hides_requests(self, app: AppProto) -> bool {
        match self {
            OpaqueReason::Tunnel => false,
            OpaqueReason::Encrypted => !matches!(app, AppProto::Tls),
            OpaqueReason::Compressed | OpaqueReason::MidStream | OpaqueReason::Unsupported => true,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            OpaqueReason::Encrypted => "encrypted",
            OpaqueReason::Compressed => "compressed",
            OpaqueReason::MidStream => "mid_stream",
            OpaqueReason::Tunnel => "tunnel",
            OpaqueReason::Unsupported => "unsupported",
        }
    }
}

/// Malformed or evasive traffic, or a limit reached: something an attacker can cause. Each
/// is an event that policy can alert or deny on, and a counter; never a panic, never growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParserAnomaly {
    /// A message head (HTTP header block, startup packet) exceeds the parser's limit.
    HeaderTooLarge,
    /// More header fields than the parser keeps.
    TooManyHeaders,
    /// A whole message exceeds the parser's limit.
    MessageTooLarge,
    /// More outstanding transactions in one flow than the parser tracks for pairing with
    /// their responses. Every request is still reported and judged (servers accept any
    /// pipeline depth); only the pairing of the oldest is given up.
    TooManyTransactions,
    /// More concurrent streams than the parser tracks (HTTP/2).
    TooManyStreams,
    /// Lengths or delimiters that do not add up (chunk sizes, frame lengths, packet lengths).
    BadFraming,
    /// Header compression state that is invalid or would expand past its limit (HPACK bomb).
    CompressionError,
    /// A decompressed body would exceed its limit (zip bomb).
    DecompressionBomb,
    /// Messages that are ambiguous between implementations (request smuggling: both
    /// `Content-Length` and `Transfer-Encoding`, conflicting lengths). Only for what real
    /// servers read differently: what they all accept (bare LF line ends) is not ambiguous.
    Ambiguous,
    /// A response with no request waiting for it.
    UnsolicitedResponse,
    /// A gap was skipped and the parser resynchronised; facts around it may be missing.
    Resync,
}

impl ParserAnomaly {
    /// The anomaly's event name (`anomaly.event` in EVE-style output).
    pub const fn as_str(self) -> &'static str {
        match self {
            ParserAnomaly::HeaderTooLarge => "applayer.header_too_large",
            ParserAnomaly::TooManyHeaders => "applayer.too_many_headers",
            ParserAnomaly::MessageTooLarge => "applayer.message_too_large",
            ParserAnomaly::TooManyTransactions => "applayer.too_many_transactions",
            ParserAnomaly::TooManyStreams => "applayer.too_many_streams",
            ParserAnomaly::BadFraming => "applayer.bad_framing",
            ParserAnomaly::CompressionError => "applayer.compression_error",
            ParserAnomaly::DecompressionBomb => "applayer.decompression_bomb",
            ParserAnomaly::Ambiguous => "applayer.ambiguous",
            ParserAnomaly::UnsolicitedResponse => "applayer.unsolicited_response",
            ParserAnomaly::Resync => "applayer.resync",
        }
    }

    /// Whether the parser may now see something other than what the receiver acts on: a
    /// limit cut a message short, framing that implementations read differently, state it
    /// could not keep. The data plane applies the policy's uninspectable decision to a flow
    /// that reports one. The others lose only bookkeeping (a response that cannot be paired,
    /// a counted body skipped over a gap) and never a judged field.
    pub const fn blinds(self) -> bool {
        match self {
            ParserAnomaly::HeaderTooLarge
            | ParserAnomaly::TooManyHeaders
            | ParserAnomaly::MessageTooLarge
            | ParserAnomaly::TooManyStreams
            | ParserAnomaly::BadFraming
            | ParserAnomaly::CompressionError
            | ParserAnomaly::DecompressionBomb
            | ParserAnomaly::Ambiguous => true,
            ParserAnomaly::TooManyTransactions
            | ParserAnomaly::UnsolicitedResponse
            | ParserAnomaly::Resync => false,
        }
    }

    /// Every anomaly, for counters indexed by kind.
    pub const ALL: [ParserAnomaly; 11] = [
        ParserAnomaly::HeaderTooLarge,
        ParserAnomaly::TooManyHeaders,
        ParserAnomaly::MessageTooLarge,
        ParserAnomaly::TooManyTransactions,
        ParserAnomaly::TooManyStreams,
        ParserAnomaly::BadFraming,
        ParserAnomaly::CompressionError,
        ParserAnomaly::DecompressionBomb,
        ParserAnomaly::Ambiguous,
        ParserAnomaly::UnsolicitedResponse,
        ParserAnomaly::Resync,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal line protocol written against the contract as a real parser would be:
    /// one transaction per `\n`-terminated line to the server, one response per line back.
    /// It checks that the contract's buffer rules are enough to parse a stream split at any
    /// point, with the caller behaving as documented.
    struct LineParser {
        next_req: u32,
        next_resp: u32,
        max_line: usize,
    }

    impl StreamParser for LineParser {
        fn proto(&self) -> AppProto {
            AppProto::Tcp
        }

        fn feed(&mut self, dir: Direction, data: &[u8], sink: &mut dyn FactSink) -> Progress {
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                if data.len() > self.max_line {
                    sink.anomaly(ParserAnomaly::HeaderTooLarge);
                    return Progress::Invalid(Invalid::TooLarge);
                }
                return Progress::NeedMore { consumed: 0 };
            };
            let line = data.get(..nl).unwrap_or_default();
            match dir {
                Direction::ToServer => {
                    sink.fact(&Fact::Transaction {
                        app: AppProto::Tcp,
                        id: self.next_req,
                        summary: line,
                        detail: RequestDetail::None,
                    });
                    self.next_req = self.next_req.wrapping_add(1);
                }
                Direction::ToClient => {
                    if self.next_resp == self.next_req {
                        sink.anomaly(ParserAnomaly::UnsolicitedResponse);
                    } else {
                        sink.fact(&Fact::Response {
                            app: AppProto::Tcp,
                            id: self.next_resp,
                            status: None,
                            summary: line,
                            detail: ResponseDetail::None,
                        });
                        self.next_resp = self.next_resp.wrapping_add(1);
                    }
                }
            }
            Progress::Done { consumed: nl + 1 }
        }

        fn gap(&mut self, _dir: Direction, _len: u32) -> GapOutcome {
            GapOutcome::GiveUp
        }

        fn end(&mut self, sink: &mut dyn FactSink) {
            while self.next_resp != self.next_req {
                sink.fact(&Fact::Unanswered {
                    app: AppProto::Tcp,
                    id: self.next_resp,
                });
                self.next_resp = self.next_resp.wrapping_add(1);
            }
        }
    }

    #[derive(Default)]
    struct Collect {
        facts: Vec<String>,
        anomalies: Vec<ParserAnomaly>,
    }

    impl FactSink for Collect {
        fn fact(&mut self, fact: &Fact<'_>) {
            let s = match fact {
                Fact::Transaction { id, summary, .. } => {
                    format!("tx {id} {}", String::from_utf8_lossy(summary))
                }
                Fact::Response { id, summary, .. } => {
                    format!("rx {id} {}", String::from_utf8_lossy(summary))
                }
                Fact::Interim { id, status, .. } => format!("interim {id} {status}"),
                Fact::Unanswered { id, .. } => format!("unanswered {id}"),
                Fact::Opaque { reason, .. } => format!("opaque {}", reason.as_str()),
            };
            self.facts.push(s);
        }
        fn anomaly(&mut self, a: ParserAnomaly) {
            self.anomalies.push(a);
        }
    }

    /// The caller's side of the contract, as documented at the top of this module.
    struct Caller {
        carry: Vec<u8>,
        cap: usize,
    }

    impl Caller {
        fn push(
            &mut self,
            p: &mut dyn StreamParser,
            dir: Direction,
            data: &[u8],
            sink: &mut dyn FactSink,
        ) -> bool {
            self.carry.extend_from_slice(data);
            if self.carry.len() > self.cap {
                return false;
            }
            let mut off = 0;
            loop {
                let rest = &self.carry[off..];
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
                    Progress::Invalid(_) => return false,
                }
            }
            self.carry.drain(..off);
            true
        }
    }

    #[test]
    fn every_split_point_gives_the_same_facts() {
        let conversation = b"GET a\nGET b\nSET c 1\n";
        let reply = b"1\n2\n";
        let mut expected: Option<Vec<String>> = None;
        for split in 0..=conversation.len() {
            let mut p = LineParser {
                next_req: 0,
                next_resp: 0,
                max_line: 64,
            };
            let mut sink = Collect::default();
            let mut c2s = Caller {
                carry: Vec::new(),
                cap: 64,
            };
            let mut s2c = Caller {
                carry: Vec::new(),
                cap: 64,
            };
            let (a, b) = conversation.split_at(split);
            assert!(c2s.push(&mut p, Direction::ToServer, a, &mut sink));
            assert!(c2s.push(&mut p, Direction::ToServer, b, &mut sink));
            assert!(s2c.push(&mut p, Direction::ToClient, reply, &mut sink));
            p.end(&mut sink);
            assert!(sink.anomalies.is_empty());
            assert!(c2s.carry.is_empty());
            match &expected {
                None => expected = Some(sink.facts),
                Some(e) => assert_eq!(e, &sink.facts, "split at {split}"),
            }
        }
        assert_eq!(
            expected.unwrap_or_default(),
            [
                "tx 0 GET a",
                "tx 1 GET b",
                "tx 2 SET c 1",
                "rx 0 1",
                "rx 1 2",
                "unanswered 2"
            ]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_anomaly_and_invalid() {
        let mut p = LineParser {
            next_req: 0,
            next_resp: 0,
            max_line: 8,
        };
        let mut sink = Collect::default();
        let mut caller = Caller {
            carry: Vec::new(),
            cap: 64,
        };
        assert!(!caller.push(&mut p, Direction::ToServer, b"0123456789abcdef", &mut sink));
        assert_eq!(sink.anomalies, [ParserAnomaly::HeaderTooLarge]);
        let mut sink = Collect::default();
        assert!(p.feed(Direction::ToClient, b"x\n", &mut sink) == Progress::Done { consumed: 2 });
        assert_eq!(sink.anomalies, [ParserAnomaly::UnsolicitedResponse]);
    }

    #[test]
    fn names_are_distinct_and_prefixed() {
        let names: Vec<&str> = ParserAnomaly::ALL.iter().map(|a| a.as_str()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with("applayer."), "{n}");
            assert!(!names[..i].contains(n), "duplicate {n}");
        }
        assert_eq!(Progress::Invalid(Invalid::BadMagic).consumed(), 0);
        assert_eq!(Progress::NeedMore { consumed: 3 }.consumed(), 3);
        let f = Fact::Opaque {
            app: AppProto::Tls,
            reason: OpaqueReason::Encrypted,
        };
        assert_eq!(f.app(), AppProto::Tls);
    }
}
