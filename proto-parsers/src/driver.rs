//! The caller's half of the parser contract ([`crate::contract`]), written once: the carry
//! buffer of one direction, the loop that feeds a parser until it needs more, the carry
//! limit each parser declares ([`StreamParser::max_carry`]) and a budget that bounds what
//! all the carries of one worker hold together. The data plane's inspector, the fuzz
//! targets, the benches and every parser's tests drive parsers through it, so they all
//! exercise the same caller.
//!
//! Zero copy where it can be: while nothing is carried, a chunk is parsed straight from the
//! caller's slice and only what the parser leaves unconsumed is copied. The carry keeps its
//! allocation up to [`DEFAULT_MAX_CARRY`] (steady state allocates nothing); a larger one,
//! needed only for an unusually large message head, is freed as soon as it empties.

use crate::Direction;
use crate::contract::{DEFAULT_MAX_CARRY, FactSink, GapOutcome, Invalid, Progress, StreamParser};

/// Bytes of carry the flows of one worker may hold beyond [`DEFAULT_MAX_CARRY`] each.
/// Carries up to that size are bounded by the flow table's size; what a parser with a
/// larger limit ([`StreamParser::max_carry`]) holds above it is charged here, so a crowd of
/// flows each sending one huge head cannot take the memory of the host.
#[derive(Debug)]
pub struct CarryBudget {
    cap: usize,
    used: usize,
    /// Most bytes charged at one time.
    pub peak: usize,
    /// Carries refused because the budget was spent.
    pub hits: u64,
}

impl CarryBudget {
    pub const fn new(cap: usize) -> Self {
        CarryBudget {
            cap,
            used: 0,
            peak: 0,
            hits: 0,
        }
    }

    /// A budget that never refuses (tests and tools that drive one flow).
    pub const fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used
    }

    fn try_take(&mut self, n: usize) -> bool {
        match self.used.checked_add(n) {
            Some(u) if u <= self.cap => {
                self.used = u;
                self.peak = self.peak.max(u);
                true
            }
            _ => {
                self.hits = self.hits.saturating_add(1);
                false
            }
        }
    }

    fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }
}

/// Why a direction can no longer be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The parser answered `Invalid`.
    Invalid(Invalid),
    /// The parser left more unconsumed than its [`StreamParser::max_carry`], or the
    /// worker's [`CarryBudget`] could not hold it.
    Overflow,
}

impl Stop {
    pub const fn as_str(self) -> &'static str {
        match self {
            Stop::Invalid(_) => "parser_invalid",
            Stop::Overflow => "carry_overflow",
        }
    }
}

/// The unconsumed bytes of one direction, fed again with what arrives next.
#[derive(Debug, Default)]
pub struct Carry {
    buf: Vec<u8>,
    /// Capacity above [`DEFAULT_MAX_CARRY`] charged to the budget.
    charged: usize,
}

impl Carry {
    pub const fn new() -> Self {
        Carry {
            buf: Vec::new(),
            charged: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Feeds `data`, after whatever is carried, through `drive` (which answers how many
    /// bytes of the slice it was given it consumed), and keeps the rest, at most `max`
    /// bytes. On `Err` the carry is emptied: the direction cannot be parsed on.
    pub fn push(
        &mut self,
        data: &[u8],
        max: usize,
        budget: &mut CarryBudget,
        drive: impl FnOnce(&[u8]) -> Result<usize, Invalid>,
    ) -> Result<(), Stop> {
        self.push_until(data, budget, |d| drive(d).map(|c| (c, max)))
    }

    /// [`Carry::push`] where `drive` also says the limit for what it left: a parser that
    /// handed the flow over to another (HTTP/1 to HTTP/2) leaves the rest to the new
    /// parser, whose limit applies.
    pub fn push_until(
        &mut self,
        data: &[u8],
        budget: &mut CarryBudget,
        drive: impl FnOnce(&[u8]) -> Result<(usize, usize), Invalid>,
    ) -> Result<(), Stop> {
        let r = if self.buf.is_empty() {
            match drive(data) {
                Ok((consumed, max)) => {
                    let rest = data.get(consumed..).unwrap_or_default();
                    if rest.len() > max {
                        Err(Stop::Overflow)
                    } else {
                        self.buf.extend_from_slice(rest);
                        Ok(())
                    }
                }
                Err(why) => Err(Stop::Invalid(why)),
            }
        } else {
            // The parser sees an unfinished message again from its first byte.
            self.buf.extend_from_slice(data);
            match drive(&self.buf) {
                Ok((consumed, max)) => {
                    self.buf.drain(..consumed.min(self.buf.len()));
                    if self.buf.len() > max {
                        Err(Stop::Overflow)
                    } else {
                        Ok(())
                    }
                }
                Err(why) => Err(Stop::Invalid(why)),
            }
        };
        match r {
            Ok(()) if self.settle(budget) => Ok(()),
            Ok(()) => {
                self.clear(budget);
                Err(Stop::Overflow)
            }
            Err(e) => {
                self.clear(budget);
                Err(e)
            }
        }
    }

    /// Feeds what is carried (to a parser that took over the flow) and keeps the rest.
    pub fn refeed(
        &mut self,
        max: usize,
        budget: &mut CarryBudget,
        drive: impl FnOnce(&[u8]) -> Result<usize, Invalid>,
    ) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.push(&[], max, budget, drive)
    }

    /// Takes what is carried out (for a reader that starts afresh on it: the connection
    /// tunnelled through an HTTP `CONNECT`), returning its charge.
    pub fn take(&mut self, budget: &mut CarryBudget) -> Vec<u8> {
        let bytes = std::mem::take(&mut self.buf);
        self.settle(budget);
        bytes
    }

    /// Drops what is carried (a gap, the end of the flow) and returns its charge.
    pub fn clear(&mut self, budget: &mut CarryBudget) {
        self.buf.clear();
        self.settle(budget);
    }

    /// Brings the budget's charge in line with the buffer: capacity above the default is
    /// charged; an empty buffer larger than the default is freed. False when the budget
    /// could not take the growth.
    fn settle(&mut self, budget: &mut CarryBudget) -> bool {
        if self.buf.is_empty() && self.buf.capacity() > DEFAULT_MAX_CARRY {
            self.buf = Vec::new();
        }
        let want = self.buf.capacity().saturating_sub(DEFAULT_MAX_CARRY);
        if want > self.charged {
            if !budget.try_take(want - self.charged) {
                return false;
            }
        } else {
            budget.give(self.charged - want);
        }
        self.charged = want;
        true
    }
}

/// Feeds `data` to `p` until it needs more: how much it consumed in all.
pub fn drive(
    p: &mut dyn StreamParser,
    dir: Direction,
    data: &[u8],
    sink: &mut dyn FactSink,
) -> Result<usize, Invalid> {
    let mut off = 0usize;
    loop {
        let rest = data.get(off..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(off);
        }
        match p.feed(dir, rest, sink) {
            Progress::Done { consumed } if consumed > 0 => off += consumed.min(rest.len()),
            Progress::Done { .. } => return Ok(off),
            Progress::NeedMore { consumed } => return Ok(off + consumed.min(rest.len())),
            Progress::Invalid(why) => return Err(why),
        }
    }
}

const fn ix(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// One parser with both directions' carries: the whole caller side, for tests, fuzzing,
/// benches and tools that parse one conversation.
pub struct Driver<P> {
    pub parser: P,
    carry: [Carry; 2],
    budget: CarryBudget,
    stopped: Option<Stop>,
}

impl<P: StreamParser> Driver<P> {
    pub fn new(parser: P) -> Self {
        Driver {
            parser,
            carry: [Carry::new(), Carry::new()],
            budget: CarryBudget::unlimited(),
            stopped: None,
        }
    }

    /// Feeds bytes of `dir`. After the first `Err`, the flow is given up (as the data plane
    /// gives it up) and later calls return the same error without feeding anything.
    pub fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
    ) -> Result<(), Stop> {
        if let Some(s) = self.stopped {
            return Err(s);
        }
        let max = self.parser.max_carry();
        let Driver {
            parser,
            carry,
            budget,
            ..
        } = self;
        let r = match carry.get_mut(ix(dir)) {
            Some(c) => c.push(data, max, budget, |d| drive(parser, dir, d, sink)),
            None => Ok(()),
        };
        if let Err(s) = r {
            self.stopped = Some(s);
        }
        r
    }

    /// `len` bytes of `dir` are missing: the carry is dropped and the parser told. A parser
    /// that gives up stops the flow, as the data plane stops inspecting it (later feeds
    /// answer `Stop::Invalid(Invalid::UnexpectedMessage)`).
    pub fn gap(&mut self, dir: Direction, len: u32) -> GapOutcome {
        if self.stopped.is_some() {
            return GapOutcome::GiveUp;
        }
        if let Some(c) = self.carry.get_mut(ix(dir)) {
            c.clear(&mut self.budget);
        }
        let outcome = self.parser.gap(dir, len);
        if outcome == GapOutcome::GiveUp {
            self.stopped = Some(Stop::Invalid(Invalid::UnexpectedMessage));
            for c in &mut self.carry {
                c.clear(&mut self.budget);
            }
        }
        outcome
    }

    /// The flow ended: the parser reports what is still open.
    pub fn end(&mut self, sink: &mut dyn FactSink) {
        self.parser.end(sink);
        for c in &mut self.carry {
            c.clear(&mut self.budget);
        }
    }

    /// Bytes carried for `dir` now.
    pub fn carried(&self, dir: Direction) -> usize {
        self.carry.get(ix(dir)).map_or(0, Carry::len)
    }

    /// Why the flow was given up, if it was.
    pub fn stopped(&self) -> Option<Stop> {
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consumes whole `\n`-terminated lines; a line longer than the limit is left whole.
    fn lines(d: &[u8]) -> Result<usize, Invalid> {
        Ok(d.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1))
    }

    #[test]
    fn carry_keeps_the_unfinished_line_and_feeds_it_again() {
        let mut b = CarryBudget::unlimited();
        let mut c = Carry::new();
        let mut seen = Vec::new();
        c.push(b"ab\ncd", 16, &mut b, |d| {
            seen.push(d.to_vec());
            lines(d)
        })
        .unwrap();
        assert_eq!(c.len(), 2);
        c.push(b"e\nf", 16, &mut b, |d| {
            seen.push(d.to_vec());
            lines(d)
        })
        .unwrap();
        assert_eq!(seen, [b"ab\ncd".to_vec(), b"cde\nf".to_vec()]);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn more_than_the_parser_limit_is_an_overflow_and_empties_the_carry() {
        let mut b = CarryBudget::unlimited();
        let mut c = Carry::new();
        assert_eq!(c.push(b"0123456789", 8, &mut b, lines), Err(Stop::Overflow));
        assert!(c.is_empty());
        c.push(b"0123", 8, &mut b, lines).unwrap();
        assert_eq!(c.push(b"45678", 8, &mut b, lines), Err(Stop::Overflow));
    }

    #[test]
    fn large_carries_are_charged_to_the_budget_and_freed_when_empty() {
        let big = DEFAULT_MAX_CARRY * 3;
        let mut b = CarryBudget::new(DEFAULT_MAX_CARRY * 4);
        let mut c = Carry::new();
        let head = vec![b'x'; DEFAULT_MAX_CARRY * 2];
        c.push(&head, big, &mut b, lines).unwrap();
        assert!(b.used() >= DEFAULT_MAX_CARRY);
        c.push(b"\n", big, &mut b, lines).unwrap();
        assert!(c.is_empty());
        assert_eq!(b.used(), 0);

        // A second flow's carry does not fit beside the first.
        let mut tight = CarryBudget::new(DEFAULT_MAX_CARRY / 2);
        let mut c = Carry::new();
        assert_eq!(c.push(&head, big, &mut tight, lines), Err(Stop::Overflow));
        assert_eq!(tight.used(), 0);
        assert_eq!(tight.hits, 1);
    }

    #[test]
    fn invalid_stops_and_clears() {
        let mut b = CarryBudget::unlimited();
        let mut c = Carry::new();
        c.push(b"ab", 8, &mut b, lines).unwrap();
        assert_eq!(
            c.push(b"c", 8, &mut b, |_| Err(Invalid::BadSyntax)),
            Err(Stop::Invalid(Invalid::BadSyntax))
        );
        assert!(c.is_empty());
    }
}
