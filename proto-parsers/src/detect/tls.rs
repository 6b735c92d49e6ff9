//! TLS openings: a handshake record carrying a ClientHello or a ServerHello.

use super::Detection::{self, NeedMore, Unknown};
use super::{be_prefix_in, decided, pattern, window};
use crate::AppProto;

pub(super) const HS_CLIENT_HELLO: u8 = 1;
pub(super) const HS_SERVER_HELLO: u8 = 2;
/// A ServerHello body is at least version, random, session id length, suite, compression:
/// 38 bytes, plus the 4-byte handshake header. A ClientHello is longer still.
const TLS_MIN_RECORD: u32 = 42;
/// RFC 8446 section 5.2: a record never exceeds 2^14 + 2048 bytes.
const TLS_MAX_RECORD: u32 = (1 << 14) + 2048;

/// A handshake record (type 22) whose first message is `hs_type`, with a record version
/// 3.0..=3.4 (TLS 1.3 puts 0x0301 or 0x0303 here) and a hello version 3.0..=3.4 (TLS 1.3
/// keeps 0x0303 and negotiates in an extension).
pub(super) fn tls_hello(b: &[u8], hs_type: u8) -> Detection {
    if !be_prefix_in(window(b, 3, 2), 2, TLS_MIN_RECORD, TLS_MAX_RECORD) {
        return Unknown;
    }
    let checks: [fn(u8) -> bool; 5] = [
        |c| c == 0x16,
        |c| c == 0x03,
        |c| c <= 0x04,
        |_| true,
        |_| true,
    ];
    match pattern(b, &checks) {
        Some(false) => return Unknown,
        None => return NeedMore,
        Some(true) => {}
    }
    match b.get(5) {
        None => return NeedMore,
        Some(&t) if t != hs_type => return Unknown,
        Some(_) => {}
    }
    // Handshake length (3 bytes): a hello under 64 KiB, so its top byte is zero. Then the
    // hello's own version.
    let rest: [fn(u8) -> bool; 5] = [|c| c == 0, |_| true, |_| true, |c| c == 0x03, |c| c <= 0x04];
    decided(
        pattern(b.get(6..).unwrap_or_default(), &rest),
        AppProto::Tls,
    )
}
