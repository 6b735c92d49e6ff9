//! Palisade's traffic generators: deterministic synthetic captures for the benches, the
//! throughput harness (`palisade bench`) and the tests. This crate sits below the data
//! plane and knows nothing of it: it writes bytes a real client and server would put on
//! the wire, and a pipeline (or tshark) is what checks them.
//!
//! - [`generate`]: the building blocks (deterministic RNG, TCP conversations with real
//!   sequence numbers, frames back to back, pcap output) and the HTTP-only workloads the
//!   criterion benches use (a keep-alive flow, many short sessions; `gen-pcap`).
//! - [`wire`]: encoders for the protocols of the mix (HTTP/2 and HPACK, gRPC, PostgreSQL,
//!   MySQL, RESP, DNS).
//! - [`eastwest`]: the realistic east-west mix between dozens of workloads, with its
//!   inventory and ~200-rule policy (`palisade bench`).
//! - [`flood`]: a SYN flood with a few real connections inside it (the flood test).
//! - [`evasion`]: the evasion corpus, one capture per trick (`gen-evasion`,
//!   `tests/data/evasion/`).
//!
//! Everything is deterministic for a given seed (or, in the evasion corpus, a case's
//! name): the same arguments give the same bytes on every run.

pub mod eastwest;
pub mod evasion;
pub mod flood;
pub mod generate;
pub mod wire;
