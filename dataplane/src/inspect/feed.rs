//! Feeding the flow's parser through each direction's bounded carry, and what stops it.

use control::Uninspectable;
use proto_parsers::Direction;
use proto_parsers::contract::{FactSink, Handover, Invalid};
use proto_parsers::driver::{CarryBudget, Stop};

use super::{FlowInspector, InspectCounters, InspectEvent, ParserRegistry, Phase, ix, other};

impl FlowInspector {
    /// Feeds a parser through the direction's carry. Any way the parser or the carry
    /// gives up is a [`Blind`](super::Blind): inspection stops there.
    pub(super) fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        match self.feed_parser(dir, data, sink, budget) {
            Ok(None) => InspectEvent::NOTHING,
            Ok(Some(next_tx)) => self.enter_tunnel(next_tx, registry, sink, counters, budget),
            Err(_) if self.tunnelled => {
                // What the tunnelled connection carries is not a request to the flow's
                // server: reading it stops, nothing the policy judges was hidden.
                self.stop(budget);
                InspectEvent::NOTHING
            }
            Err(Stop::Overflow) => {
                counters.carry_overflow += 1;
                self.stop(budget);
                InspectEvent::blind(Uninspectable::CarryOverflow, "carry_overflow")
            }
            Err(Stop::Invalid(why)) => {
                counters.parser_invalid += 1;
                self.stop(budget);
                // A limit the parser hit is not a malformed stream.
                let cause = if why == Invalid::TooLarge {
                    Uninspectable::ParserLimit
                } else {
                    Uninspectable::ParserInvalid
                };
                InspectEvent::blind(cause, why.as_str())
            }
        }
    }

    /// Feeds the parser through the direction's carry. `Some(next_tx)` when the proxy
    /// accepted a `CONNECT` on the way: the carries hold the tunnelled connection's first
    /// bytes, and its transactions count from `next_tx`.
    fn feed_parser(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
        budget: &mut CarryBudget,
    ) -> Result<Option<u32>, Stop> {
        let base = self.tx_base;
        let Phase::Parsing(parser) = &mut self.phase else {
            return Ok(None);
        };
        let Some(carry) = self.carry.get_mut(ix(dir)) else {
            return Ok(None);
        };
        if self.udp {
            // A datagram is a whole message: whatever the parser left is not the start of
            // the next one.
            return parser
                .drive(dir, data, sink, base)
                .map(|_| None)
                .map_err(Stop::Invalid);
        }
        let mut switched = None;
        carry.push_until(data, budget, |d| {
            parser.drive(dir, d, sink, base).map(|(consumed, s)| {
                switched = s;
                // After a hand-over the rest is the next reader's: it is fed again to it
                // below, so it only has to fit under that one's limit.
                let max = match s {
                    Some(_) => usize::MAX,
                    None => parser.as_dyn().max_carry(),
                };
                (consumed, max)
            })
        })?;
        match switched {
            Some(Handover::Http2 { stream1 }) => {
                self.hand_over(stream1, sink);
                self.refeed(other(dir), sink, budget)?;
                self.refeed(dir, sink, budget)?;
                Ok(None)
            }
            Some(Handover::Tunnel { next_tx }) => Ok(Some(next_tx)),
            None => Ok(None),
        }
    }

    /// Feeds what the carry of `dir` holds to the current parser.
    fn refeed(
        &mut self,
        dir: Direction,
        sink: &mut dyn FactSink,
        budget: &mut CarryBudget,
    ) -> Result<(), Stop> {
        let Phase::Parsing(parser) = &mut self.phase else {
            return Ok(());
        };
        let Some(carry) = self.carry.get_mut(ix(dir)) else {
            return Ok(());
        };
        let max = parser.as_dyn().max_carry();
        let base = self.tx_base;
        carry.refeed(max, budget, |d| {
            parser
                .drive(dir, d, sink, base)
                .map(|(consumed, _)| consumed)
        })
    }
}
