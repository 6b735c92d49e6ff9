//! The control side of `palisade run`, never on the packet path: the control socket that
//! `palisadectl` talks to (with signals and the policy file watch, on one thread, [`ctl`])
//! and the Prometheus metrics endpoint ([`metrics`]).

pub mod ctl;
mod flows;
pub mod metrics;

pub use flows::FlowInfo;
