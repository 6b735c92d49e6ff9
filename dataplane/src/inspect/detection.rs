//! The detection phase: each direction's first bytes (buffered while too short to decide)
//! name the flow's protocol, then its parser is made and fed what was buffered.

use control::Uninspectable;
use proto_parsers::contract::FactSink;
use proto_parsers::detect::{self, Detection};
use proto_parsers::driver::CarryBudget;
use proto_parsers::{AppProto, Direction};

use super::{
    Blind, DETECT_BUF, FlowInspector, InspectCounters, InspectEvent, ParserRegistry, Phase,
    UDP_DETECT_DATAGRAMS, ix,
};

impl FlowInspector {
    pub(super) fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        registry: &ParserRegistry,
        sink: &mut dyn FactSink,
        counters: &mut InspectCounters,
        budget: &mut CarryBudget,
    ) -> InspectEvent {
        if data.is_empty() {
            return InspectEvent::NOTHING;
        }
        self.saw_data = true;
        let mut event = InspectEvent::NOTHING;
        if let Phase::Detecting = self.phase {
            if self.udp
                && self.undetected + 1 < UDP_DETECT_DATAGRAMS
                && detect::detect(self.transport(), dir, data) == Detection::Unknown
            {
                // This datagram alone: the next one may still be the protocol.
                self.undetected += 1;
                return InspectEvent {
                    detected: None,
                    blind: Some(Blind {
                        datagram: true,
                        ..Blind::new(Uninspectable::UnknownProtocol, "undetected_datagram")
                    }),
                };
            }
            let (app, why) = match self.detect(dir, data, counters) {
                Some(found) => found,
                None => return InspectEvent::NOTHING,
            };
            let recognised = !matches!(app, AppProto::Tcp | AppProto::Udp);
            counters.detected += u64::from(recognised);
            // A tunnelled connection's protocol is not the flow's, which policy judged.
            if !self.tunnelled {
                event.detected = Some(app);
                if let Some(why) = why {
                    // Bytes that no detector recognised: a rule that expects a protocol
                    // here cannot judge them (the peer may speak it in a form detection
                    // missed).
                    event.blind = Some(Blind::new(Uninspectable::UnknownProtocol, why));
                }
            }
            let buffered = std::mem::take(&mut self.detect_buf);
            self.finish_detection(app);
            let Some(p) = registry.make_parser(app, self.transport()) else {
                return event;
            };
            self.phase = Phase::Parsing(p);
            // Feed everything buffered for detection, in order, before `data`.
            for d in [Direction::ToServer, Direction::ToClient] {
                let Some(b) = buffered.get(ix(d)) else {
                    continue;
                };
                if !b.is_empty() && d != dir {
                    event.merge(self.feed(d, b, registry, sink, counters, budget));
                }
            }
            if let Some(b) = buffered.get(ix(dir))
                && !b.is_empty()
            {
                let mut all = b.clone();
                all.extend_from_slice(data);
                event.merge(self.feed(dir, &all, registry, sink, counters, budget));
                return event;
            }
        }
        if let Phase::Parsing(_) = self.phase {
            event.merge(self.feed(dir, data, registry, sink, counters, budget));
        }
        event
    }

    /// Runs detection for `dir`: once the flow's protocol is decided, the protocol and,
    /// when no detector recognised the bytes, why.
    fn detect(
        &mut self,
        dir: Direction,
        data: &[u8],
        counters: &mut InspectCounters,
    ) -> Option<(AppProto, Option<&'static str>)> {
        let transport = self.transport();
        let i = ix(dir);
        if self.unknown.get(i).copied().unwrap_or(true) {
            return None;
        }
        let buf = self.detect_buf.get_mut(i)?;
        let answer = if buf.is_empty() {
            detect::detect(transport, dir, data)
        } else {
            let pre = buf.len();
            let room = DETECT_BUF.saturating_sub(pre);
            buf.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            let a = detect::detect(transport, dir, buf);
            if let Detection::Proto(_) = a {
                // Keep only what came before `data`: the caller feeds `data` itself.
                buf.truncate(pre);
            }
            a
        };
        match answer {
            Detection::Proto(app) => Some((app, None)),
            Detection::NeedMore => {
                if buf.is_empty() {
                    buf.extend_from_slice(
                        data.get(..DETECT_BUF.min(data.len())).unwrap_or_default(),
                    );
                }
                if buf.len() >= DETECT_BUF {
                    counters.detect_overflow += 1;
                    self.mark_unknown(i, "detect_overflow")
                } else {
                    None
                }
            }
            Detection::Unknown => self.mark_unknown(i, "undetected"),
        }
    }

    /// A direction gave up. For UDP each datagram stands alone, so one unknown decides. For
    /// TCP, a client whose first bytes no detector recognises decides too: those bytes are
    /// on their way to the server now, and no protocol here has its client speak first in
    /// a way only the server's answer would identify (MySQL's client waits for the
    /// greeting). A server's unrecognised first bytes wait for the client (it may still
    /// speak a known protocol).
    fn mark_unknown(
        &mut self,
        i: usize,
        why: &'static str,
    ) -> Option<(AppProto, Option<&'static str>)> {
        if let Some(u) = self.unknown.get_mut(i) {
            *u = true;
        }
        if self.udp || i == ix(Direction::ToServer) || self.unknown == [true, true] {
            Some((self.fallback(), Some(why)))
        } else {
            None
        }
    }
}
