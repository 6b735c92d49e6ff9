//! MySQL / MariaDB openings: the server's protocol-10 greeting.

use super::Detection::{self, NeedMore, Proto, Unknown};
use super::pattern;
use crate::AppProto;

/// The smallest protocol-10 greeting: version byte, a 1-char version and NUL, connection
/// id, 8 bytes of scramble, filler, 2 capability bytes.
const MYSQL_MIN_GREETING: usize = 18;
const MYSQL_MAX_GREETING: usize = 1023;
const MYSQL_MAX_VERSION: usize = 64;

/// A server greeting: 3-byte little-endian payload length, sequence 0, protocol version 10,
/// then a NUL-terminated version string that starts with a digit (`8.0.36`,
/// `5.5.5-10.11.6-MariaDB`).
pub(super) fn mysql_greeting(b: &[u8]) -> Detection {
    if let (Some(&lo), Some(&hi)) = (b.first(), b.get(1)) {
        // The third length byte must be zero, so two bytes already give the length.
        let len = usize::from(lo) | (usize::from(hi) << 8);
        if !(MYSQL_MIN_GREETING..=MYSQL_MAX_GREETING).contains(&len) {
            return Unknown;
        }
    }
    let head: [fn(u8) -> bool; 6] = [
        |_| true,
        |_| true,
        |c| c == 0,
        |c| c == 0,
        |c| c == 10,
        |c| c.is_ascii_digit(),
    ];
    match pattern(b, &head) {
        Some(false) => return Unknown,
        None => return NeedMore,
        Some(true) => {}
    }
    for i in 6..5 + MYSQL_MAX_VERSION {
        match b.get(i) {
            None => return NeedMore,
            Some(0) => return Proto(AppProto::Mysql),
            Some(0x20..=0x7e) => {}
            Some(_) => return Unknown,
        }
    }
    Unknown
}
