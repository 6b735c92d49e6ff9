//! The evasion corpus: one small capture per trick an attacker may use to walk a request
//! around a deny rule (HTTP/1 leniency, HTTP/2 framing, SQL lexing, Redis inline
//! commands, TCP/IP normalisation, TLS record splitting), each carrying exactly one request
//! that `deny.yaml` must deny, and the index that says what `palisade replay` must do with
//! it under `deny.yaml` and `allow.yaml`.
//!
//! Everything is deterministic: a case's bytes depend only on its name. `gen-evasion
//! OUT_DIR` writes the corpus (`tests/data/evasion/` in the repository); the data plane's
//! `tests/evasion.rs` replays it (building the cases too large to commit with this
//! module) and `traffic-gen/tests/evasion_corpus.rs` checks that the committed files are
//! what this module writes now.
//!
//! One file per class of trick (`http1`, `http2`, `sql`, `redis`, `tcpip`, `tls`), the
//! frames and connections they are built from (`capture`), the table of cases with what
//! must happen to each (`cases`), and the files on disk (`corpus`).
//!
//! Frames are built here rather than with [`TcpConversation`] because the tricks need what
//! a well-behaved conversation never does: explicit sequence and acknowledgement numbers,
//! segments without ACK, wrong checksums, overlapping segments, IP fragments.
//!
//! [`TcpConversation`]: crate::generate::TcpConversation

use std::net::Ipv4Addr;

mod capture;
mod cases;
mod corpus;
mod http1;
mod http2;
mod redis;
mod sql;
mod tcpip;
mod tls;

pub use capture::{
    Capture, Conn, FIN, PSH, RST, SYN, Side, TcpSeg, ipv4_frame, tcp_bytes, tcp_frame,
};
pub use cases::{CASES, Case, Fact, Outcome};
pub use corpus::{ALLOW_YAML, DENY_YAML, Written, case, index, write_case, write_corpus};
pub use http1::padded_admin;
pub use http2::base64url;
pub use tcpip::admin_of_len;

// ---------------------------------------------------------------------------------------
// Addresses

/// The web server: HTTP/1 on 80, h2c on 8080, TLS on 443.
pub const WEB: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 10);
pub const POSTGRES: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 20);
pub const MYSQL: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 21);
pub const REDIS: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 30);

/// Captures larger than this are not committed: the data plane's test builds them.
pub const COMMIT_LIMIT: usize = 512 * 1024;
