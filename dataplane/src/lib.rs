//! Palisade's data plane: the path from a captured packet to a verdict and events.
//!
//! Modules follow the packet: [`io`] (sources: capture files, NFQUEUE, AF_PACKET; reset
//! sockets) -> [`decode`] -> [`defrag`] -> [`flow`] (table, TCP state, admission and end)
//! -> [`reassembly`] -> [`inspect`] (protocol detection, parser dispatch) -> [`verdict`]
//! (the policy's judgement of flows and transactions) -> [`capture`] (flows written for
//! rules that capture) -> [`events`] (JSON lines), with [`api`] (control socket, metrics)
//! on the side. [`pipeline`] wires the stages into workers that each own their flows, and
//! drives them from a capture (`replay`) or live sources ([`pipeline::live`]).
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
pub mod inventory;
pub mod io;
pub mod learn;
pub mod pipeline;
pub mod reassembly;
pub mod summary;
pub mod verdict;
