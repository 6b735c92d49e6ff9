//! A rule in compiled form: what the flow index ([`crate::snapshot`]) and the L7 index
//! ([`crate::l7`]) are both built from, and the L4 conditions (ports, transport,
//! application protocol) that both check. Built from validated rules by
//! `snapshot::build`; its fields are crate-visible because the indexes built from it read
//! them directly.

use proto_parsers::AppProto;

use crate::model::L7Matchers;
use crate::vocab::{Action, GroupId, Severity};

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    /// ICMP or ICMPv6.
    Icmp,
    /// Any other IP protocol number.
    Other(u8),
}

impl Transport {
    /// From the IP protocol / IPv6 next-header number.
    pub const fn from_ip_proto(p: u8) -> Self {
        match p {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            1 | 58 => Transport::Icmp,
            other => Transport::Other(other),
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        match self {
            Transport::Tcp => T_TCP,
            Transport::Udp => T_UDP,
            Transport::Icmp | Transport::Other(_) => T_OTHER,
        }
    }
}

const T_TCP: u8 = 1;
const T_UDP: u8 = 2;
const T_OTHER: u8 = 4;
const T_ANY: u8 = T_TCP | T_UDP | T_OTHER;

/// A rule as the dataplane evaluates it.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub(crate) name: Box<str>,
    pub(crate) action: Action,
    pub(crate) severity: Severity,
    pub(crate) capture: bool,
    pub(crate) quarantine: bool,
    pub(crate) app: Option<AppProto>,
    pub(crate) transports: u8,
    /// Sorted, merged inclusive ranges; empty = any port.
    pub(crate) ports: Box<[(u16, u16)]>,
    /// `None` = `"*"`.
    pub(crate) from: Option<Box<[GroupId]>>,
    pub(crate) to: Option<Box<[GroupId]>>,
    pub(crate) l7: Option<L7Matchers>,
}

impl CompiledRule {
    /// The rule's `id` as written.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn action(&self) -> Action {
        self.action
    }
    pub fn severity(&self) -> Severity {
        self.severity
    }
    pub fn capture(&self) -> bool {
        self.capture
    }
    /// A match quarantines the source workload (`quarantine: true`).
    pub fn quarantine(&self) -> bool {
        self.quarantine
    }
    pub fn app(&self) -> Option<AppProto> {
        self.app
    }
    pub fn ports(&self) -> &[(u16, u16)] {
        &self.ports
    }
    /// `None` means `"*"`.
    pub fn from_groups(&self) -> Option<&[GroupId]> {
        self.from.as_deref()
    }
    /// `None` means `"*"`.
    pub fn to_groups(&self) -> Option<&[GroupId]> {
        self.to.as_deref()
    }
    /// The parsed L7 matchers, for the L7 stage to compile.
    pub fn l7(&self) -> Option<&L7Matchers> {
        self.l7.as_ref()
    }
    pub fn has_l7(&self) -> bool {
        self.l7.is_some()
    }

    /// Whether the rule applies to a flow with this port, transport and (possibly not yet
    /// known) application protocol.
    #[inline]
    pub(crate) fn matches_l4(
        &self,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
    ) -> bool {
        self.matches_port(dport, transport) && self.matches_transport_app(transport, app)
    }

    /// The port part of [`CompiledRule::matches_l4`]: rules with ports match only TCP
    /// and UDP flows to one of them.
    #[inline]
    pub(crate) fn matches_port(&self, dport: u16, transport: Transport) -> bool {
        ports_match(&self.ports, dport, transport)
    }

    /// The rest of [`CompiledRule::matches_l4`]: transport and application protocol.
    #[inline]
    pub(crate) fn matches_transport_app(
        &self,
        transport: Transport,
        app: Option<AppProto>,
    ) -> bool {
        self.transport_app().matches(transport, app)
    }

    /// What [`CompiledRule::matches_transport_app`] reads, as a copy that indexes can
    /// keep beside their own entries (so a decision need not load the rule).
    #[inline]
    pub(crate) fn transport_app(&self) -> TransportApp {
        TransportApp {
            transports: self.transports,
            app: self.app,
            allow: self.action == Action::Allow,
        }
    }
}

/// Whether a rule with these ports (sorted ranges; empty = any port) matches: rules with
/// ports match only TCP and UDP flows to one of them.
#[inline]
pub(crate) fn ports_match(ports: &[(u16, u16)], dport: u16, transport: Transport) -> bool {
    ports.is_empty()
        || (matches!(transport, Transport::Tcp | Transport::Udp)
            && ports.iter().any(|&(lo, hi)| lo <= dport && dport <= hi))
}

/// The transport and application protocol part of a rule (see
/// [`CompiledRule::transport_app`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TransportApp {
    pub(crate) transports: u8,
    app: Option<AppProto>,
    allow: bool,
}

impl TransportApp {
    /// Matches no flow.
    pub(crate) const NONE: TransportApp = TransportApp {
        transports: 0,
        app: None,
        allow: false,
    };

    /// Whether the rule applies to a flow with this transport and (possibly not yet
    /// known) application protocol.
    #[inline]
    pub(crate) fn matches(self, transport: Transport, app: Option<AppProto>) -> bool {
        if self.transports & transport.bit() == 0 {
            return false;
        }
        let Some(want) = self.app else {
            return true;
        };
        match app {
            // Not classified yet: `tcp`/`udp` rules already know all they need (the
            // transport matched). Allow rules admit tentatively; deny/alert rules for a
            // specific protocol wait for the classification.
            None => matches!(want, AppProto::Tcp | AppProto::Udp) || self.allow,
            Some(got) => {
                want == got
                    || matches!(want, AppProto::Tcp | AppProto::Udp)
                    || (want == AppProto::Http && got == AppProto::Http2)
            }
        }
    }
}

/// The transports a rule's `app` implies.
pub(crate) fn transports_for(app: Option<AppProto>) -> u8 {
    match app {
        None => T_ANY,
        Some(AppProto::Udp) => T_UDP,
        Some(AppProto::Dns) => T_UDP | T_TCP,
        Some(_) => T_TCP,
    }
}
