//! Wire encoders for the east-west mix ([`super::eastwest`]): HTTP/2 frames with an HPACK
//! encoder, gRPC message framing, PostgreSQL v3 messages, MySQL classic-protocol packets,
//! RESP and DNS. Each writes what a real client or server library puts on the wire, so
//! that the parsers (and tshark) read the generated captures as real traffic.
//!
//! Everything appends to a caller's `Vec<u8>`; nothing here can fail.

mod dns;
mod http2;
mod mysql;
mod postgres;
mod redis;

pub use dns::*;
pub use http2::*;
pub use mysql::*;
pub use postgres::*;
pub use redis::*;
