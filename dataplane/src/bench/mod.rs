//! `palisade bench`: the throughput harness ([`run`]), the whole pipeline over the
//! east-west mix held in memory.
//!
//! The traffic itself comes from the `traffic-gen` crate, which sits below the data plane:
//! [`eastwest`] (the mix, its inventory and policy) is re-exported here for the command's
//! `--write-pcap`.

pub mod run;
#[cfg(test)]
mod tests;

pub use run::{BenchError, BenchOptions, BenchReport, run, to_json, to_text};
pub use traffic_gen::eastwest;
