//! MySQL classic-protocol packets.

use super::postgres::cstr;

pub const MY_CLIENT_LONG_PASSWORD: u32 = 0x1;
pub const MY_CLIENT_FOUND_ROWS: u32 = 0x2;
pub const MY_CLIENT_LONG_FLAG: u32 = 0x4;
pub const MY_CLIENT_CONNECT_WITH_DB: u32 = 0x8;
pub const MY_CLIENT_PROTOCOL_41: u32 = 0x200;
pub const MY_CLIENT_TRANSACTIONS: u32 = 0x2000;
pub const MY_CLIENT_SECURE_CONNECTION: u32 = 0x8000;
pub const MY_CLIENT_MULTI_STATEMENTS: u32 = 0x1_0000;
pub const MY_CLIENT_MULTI_RESULTS: u32 = 0x2_0000;
pub const MY_CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
pub const MY_CLIENT_CONNECT_ATTRS: u32 = 0x10_0000;
pub const MY_CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
pub const MY_CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;

/// SERVER_STATUS_AUTOCOMMIT.
pub const MY_STATUS_AUTOCOMMIT: u16 = 0x0002;
/// SERVER_STATUS_IN_TRANS.
pub const MY_STATUS_IN_TRANS: u16 = 0x0001;

pub const MY_TYPE_LONG: u8 = 3;
pub const MY_TYPE_LONGLONG: u8 = 8;
pub const MY_TYPE_NEWDECIMAL: u8 = 246;
pub const MY_TYPE_VAR_STRING: u8 = 253;
pub const MY_TYPE_DATETIME: u8 = 12;

/// One packet: 3-byte little-endian length, sequence id, payload.
pub fn my_packet(out: &mut Vec<u8>, seq: u8, payload: &[u8]) {
    let len = (payload.len() as u32).min(0x00ff_ffff);
    out.extend_from_slice(&len.to_le_bytes()[..3]);
    out.push(seq);
    out.extend_from_slice(payload);
}

/// A length-encoded integer.
pub fn my_lenenc(b: &mut Vec<u8>, v: u64) {
    match v {
        0..=250 => b.push(v as u8),
        251..=0xffff => {
            b.push(0xfc);
            b.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            b.push(0xfd);
            b.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            b.push(0xfe);
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A length-encoded string.
pub fn my_lenenc_str(b: &mut Vec<u8>, s: &[u8]) {
    my_lenenc(b, s.len() as u64);
    b.extend_from_slice(s);
}

/// The server's HandshakeV10 (sequence 0).
pub fn my_greeting(
    out: &mut Vec<u8>,
    version: &str,
    thread_id: u32,
    scramble: &[u8; 20],
    caps: u32,
) {
    let mut p = Vec::with_capacity(96);
    p.push(10);
    cstr(&mut p, version);
    p.extend_from_slice(&thread_id.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0xff); // utf8mb4_0900_ai_ci
    p.extend_from_slice(&MY_STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    cstr(&mut p, "caching_sha2_password");
    my_packet(out, 0, &p);
}

/// The client's HandshakeResponse41 (sequence 1).
pub fn my_handshake_response(
    out: &mut Vec<u8>,
    caps: u32,
    user: &str,
    auth: &[u8],
    database: Option<&str>,
    attrs: &[(&str, &str)],
) {
    let mut p = Vec::with_capacity(160);
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&16_777_216u32.to_le_bytes());
    p.push(0xff);
    p.extend_from_slice(&[0; 23]);
    cstr(&mut p, user);
    if caps & MY_CLIENT_PLUGIN_AUTH_LENENC != 0 {
        my_lenenc_str(&mut p, auth);
    } else {
        p.push(auth.len() as u8);
        p.extend_from_slice(auth);
    }
    if caps & MY_CLIENT_CONNECT_WITH_DB != 0 {
        cstr(&mut p, database.unwrap_or_default());
    }
    if caps & MY_CLIENT_PLUGIN_AUTH != 0 {
        cstr(&mut p, "caching_sha2_password");
    }
    if caps & MY_CLIENT_CONNECT_ATTRS != 0 {
        let mut a = Vec::with_capacity(128);
        for (k, v) in attrs {
            my_lenenc_str(&mut a, k.as_bytes());
            my_lenenc_str(&mut a, v.as_bytes());
        }
        my_lenenc_str(&mut p, &a);
    }
    my_packet(out, 1, &p);
}

/// An OK packet (`header` 0x00, or 0xfe where it replaces an EOF).
pub fn my_ok(out: &mut Vec<u8>, seq: u8, header: u8, affected: u64, last_id: u64, status: u16) {
    let mut p = vec![header];
    my_lenenc(&mut p, affected);
    my_lenenc(&mut p, last_id);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    my_packet(out, seq, &p);
}

/// A (pre-DEPRECATE_EOF) EOF packet.
pub fn my_eof(out: &mut Vec<u8>, seq: u8, status: u16) {
    let mut p = vec![0xfe];
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&status.to_le_bytes());
    my_packet(out, seq, &p);
}

/// An ERR packet with SQL state.
pub fn my_err(out: &mut Vec<u8>, seq: u8, code: u16, sqlstate: &str, message: &str) {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(sqlstate.as_bytes());
    p.extend_from_slice(message.as_bytes());
    my_packet(out, seq, &p);
}

/// A ColumnDefinition41 packet.
pub fn my_column(out: &mut Vec<u8>, seq: u8, schema: &str, table: &str, name: &str, ty: u8) {
    let mut p = Vec::with_capacity(64);
    for s in ["def", schema, table, table, name, name] {
        my_lenenc_str(&mut p, s.as_bytes());
    }
    p.push(0x0c);
    let (charset, len): (u16, u32) = if ty == MY_TYPE_VAR_STRING {
        (255, 1020)
    } else {
        (63, 20)
    };
    p.extend_from_slice(&charset.to_le_bytes());
    p.extend_from_slice(&len.to_le_bytes());
    p.push(ty);
    p.extend_from_slice(&0u16.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    my_packet(out, seq, &p);
}

/// A text-protocol result row; `None` is NULL.
pub fn my_row(out: &mut Vec<u8>, seq: u8, vals: &[Option<&[u8]>]) {
    let mut p = Vec::with_capacity(64);
    for v in vals {
        match v {
            Some(b) => my_lenenc_str(&mut p, b),
            None => p.push(0xfb),
        }
    }
    my_packet(out, seq, &p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_lenenc_widths() {
        let mut b = Vec::new();
        for v in [0u64, 250, 251, 65_535, 65_536, 1 << 24] {
            my_lenenc(&mut b, v);
        }
        assert_eq!(b.len(), 1 + 1 + 3 + 3 + 4 + 9);
    }
}
