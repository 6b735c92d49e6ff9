//! The throughput harness: traffic generators and `palisade bench`.
//!
//! - [`generate`]: the building blocks (deterministic RNG, TCP conversations with real
//!   sequence numbers, frames back to back, pcap output) and the HTTP-only workloads the
//!   criterion benches use (a keep-alive flow, many short sessions).
//! - [`wire`]: encoders for the protocols of the mix (HTTP/2 and HPACK, gRPC, PostgreSQL,
//!   MySQL, RESP, DNS).
//! - [`eastwest`]: the realistic east-west mix between dozens of workloads, with its
//!   inventory and ~200-rule policy.
//! - [`run`]: `palisade bench`, the whole pipeline over the mix held in memory.

pub mod eastwest;
pub mod generate;
pub mod run;
pub mod wire;

pub use run::{BenchError, BenchOptions, BenchReport, run, to_json, to_text};
