//! What inspection reports to the pipeline: the protocol it detected, and why it went
//! blind (the cause the policy's `onUninspectable` decision is taken on).

use control::Uninspectable;
use proto_parsers::AppProto;
use proto_parsers::contract::{OpaqueReason, ParserAnomaly};

/// The inspector stopped seeing what the receiver acts on, and why: the worker hands it
/// to the policy's `onUninspectable` decision (when rules could have judged the flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blind {
    pub cause: Uninspectable,
    /// The precise reason, for events and anomaly counters (`applayer.header_too_large`,
    /// `gap_before_detection`, `bad_syntax`...).
    pub detail: &'static str,
    /// Only this datagram could not be judged (a UDP flow keeps being read): the decision
    /// applies to it, not to the flow.
    pub datagram: bool,
}

impl Blind {
    pub const fn new(cause: Uninspectable, detail: &'static str) -> Self {
        Blind {
            cause,
            detail,
            datagram: false,
        }
    }

    /// A parser anomaly that blinds ([`ParserAnomaly::blinds`]), as a cause.
    pub fn from_anomaly(a: ParserAnomaly) -> Option<Self> {
        let cause = match a {
            ParserAnomaly::Ambiguous | ParserAnomaly::BadFraming => Uninspectable::AmbiguousFraming,
            a if a.blinds() => Uninspectable::ParserLimit,
            _ => return None,
        };
        Some(Blind::new(cause, a.as_str()))
    }

    /// A parser that can no longer read the flow ([`Fact::Opaque`]), as a cause, when
    /// requests could follow unseen.
    ///
    /// [`Fact::Opaque`]: proto_parsers::contract::Fact::Opaque
    pub fn from_opaque(app: AppProto, reason: OpaqueReason) -> Option<Self> {
        if !reason.hides_requests(app) {
            return None;
        }
        let cause = match reason {
            OpaqueReason::Encrypted => Uninspectable::Encrypted,
            OpaqueReason::Compressed => Uninspectable::Compressed,
            OpaqueReason::MidStream => Uninspectable::Midstream,
            OpaqueReason::Tunnel | OpaqueReason::Unsupported => Uninspectable::Unsupported,
        };
        Some(Blind::new(cause, reason.as_str()))
    }
}

/// What a chunk changed, for the pipeline to act on: the protocol became known
/// (possibly `Tcp`/`Udp`: unrecognised), and/or inspection went blind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InspectEvent {
    pub detected: Option<AppProto>,
    pub blind: Option<Blind>,
}

impl InspectEvent {
    pub const NOTHING: InspectEvent = InspectEvent {
        detected: None,
        blind: None,
    };

    pub const fn detected(app: AppProto) -> Self {
        InspectEvent {
            detected: Some(app),
            blind: None,
        }
    }

    pub const fn blind(cause: Uninspectable, detail: &'static str) -> Self {
        InspectEvent {
            detected: None,
            blind: Some(Blind::new(cause, detail)),
        }
    }

    pub(super) fn merge(&mut self, o: InspectEvent) {
        self.detected = self.detected.or(o.detected);
        self.blind = self.blind.or(o.blind);
    }

    pub fn is_nothing(&self) -> bool {
        *self == Self::NOTHING
    }
}
