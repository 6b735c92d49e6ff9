//! The traffic generators live in the data plane (`dataplane::bench::generate`) so that
//! `palisade bench` can generate traffic in memory; re-exported here for the criterion
//! benches and `gen-pcap`.

pub use dataplane::bench::generate::*;
