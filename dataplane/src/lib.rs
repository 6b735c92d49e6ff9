//! Palisade's data plane: the path from a captured packet to a verdict and events.
//!
//! Modules follow the packet: [`io`] (sources) -> [`decode`] -> [`defrag`] -> [`flow`]
//! (table, TCP state) -> [`reassembly`] -> [`inspect`] (protocol detection, parser dispatch)
//! -> [`verdict`] (policy snapshot lookup) -> [`events`] (JSON lines). [`pipeline`] wires
//! the stages into workers that each own their flows, and drives them from a capture.
//!
//! Guarantees: hostile packets never panic and never grow memory past the configured caps
//! (each cap has a counter); each packet is judged by exactly one policy version.

pub mod api;
pub mod bench;
pub mod capture;
pub mod decode;
pub mod defrag;
pub mod demo;
pub mod events;
pub mod flow;
pub mod inspect;
pub mod io;
pub mod learn;
pub mod pipeline;
pub mod reassembly;
pub mod summary;
pub mod verdict;
