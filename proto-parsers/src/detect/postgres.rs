//! PostgreSQL openings: a client's untyped first message (startup, SSL, GSSENC or cancel
//! request) and a server's authentication request.

use super::Detection::{self, NeedMore, Proto, Unknown};
use super::{be_prefix_in, be_u32, window};
use crate::AppProto;

/// Codes of the untyped first message a PostgreSQL client sends (protocol docs, "Message
/// Formats"): `(length range, code range)`.
const PG_FIRST: [((u32, u32), (u32, u32)); 4] = [
    // StartupMessage, protocol 3.x (3.0; 3.2 since PostgreSQL 18). The server refuses
    // startup packets over 10000 bytes (MAX_STARTUP_PACKET_LENGTH).
    ((9, 10_000), (0x0003_0000, 0x0003_00ff)),
    // SSLRequest.
    ((8, 8), (80_877_103, 80_877_103)),
    // GSSENCRequest.
    ((8, 8), (80_877_104, 80_877_104)),
    // CancelRequest: process id and a secret key of 4 bytes, or up to 256 with protocol 3.2.
    ((16, 268), (80_877_102, 80_877_102)),
];

pub(super) fn postgres_frontend(b: &[u8]) -> Detection {
    let len = window(b, 0, 4);
    let code = window(b, 4, 4);
    let alive = PG_FIRST.iter().any(|&((llo, lhi), (clo, chi))| {
        be_prefix_in(len, 4, llo, lhi) && be_prefix_in(code, 4, clo, chi)
    });
    if !alive {
        Unknown
    } else if b.len() >= 8 {
        Proto(AppProto::Postgres)
    } else {
        NeedMore
    }
}

/// A server's authentication request: `'R'`, int32 length, int32 method, where the length
/// fits the method.
pub(super) fn postgres_auth(b: &[u8]) -> Detection {
    if b.first() != Some(&b'R')
        || !be_prefix_in(window(b, 1, 4), 4, 8, 2048)
        || !be_prefix_in(window(b, 5, 4), 4, 0, 12)
    {
        return Unknown;
    }
    let (Some(len), Some(method)) = (be_u32(b, 1), be_u32(b, 5)) else {
        return NeedMore;
    };
    let fits = match method {
        // Ok, KerberosV5, CleartextPassword, GSS, SSPI: no payload.
        0 | 2 | 3 | 7 | 9 => len == 8,
        // MD5Password: a 4-byte salt.
        5 => len == 12,
        // GSSContinue, SASL (mechanism list), SASLContinue, SASLFinal: some payload.
        8 | 10..=12 => len > 8,
        _ => false,
    };
    if fits {
        Proto(AppProto::Postgres)
    } else {
        Unknown
    }
}
