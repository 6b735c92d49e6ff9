//! Workloads for the benches and the throughput harness: synthetic TCP traffic with real
//! sequence numbers (a keep-alive flow for steady-state costs, many short sessions written
//! to a pcap for `palisade replay`), and a policy at the scale of a large cluster.
//!
//! Everything is deterministic for a given seed, so runs on different days compare.
//! Criterion benches are in `benches/`, results and commands in `RESULTS.md`.

pub mod evasion;
pub mod generate;
pub mod scale;
