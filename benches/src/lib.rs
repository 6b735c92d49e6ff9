//! Workloads for the benches that are not traffic: a policy at the scale of a large
//! cluster ([`scale`]). The traffic (a keep-alive flow for steady-state costs, many short
//! sessions, the east-west mix) comes from the `traffic-gen` crate.
//!
//! Everything is deterministic for a given seed, so runs on different days compare.
//! Criterion benches are in `benches/`, results and commands in `RESULTS.md`.

pub mod scale;
