//! Wire encoders for the east-west mix ([`super::eastwest`]): HTTP/2 frames with an HPACK
//! encoder, gRPC message framing, PostgreSQL v3 messages, MySQL classic-protocol packets,
//! RESP and DNS. Each writes what a real client or server library puts on the wire, so
//! that the parsers (and tshark) read the generated captures as real traffic.
//!
//! Everything appends to a caller's `Vec<u8>`; nothing here can fail.

use std::collections::VecDeque;

// ---------------------------------------------------------------------------------------
// HTTP/2 (RFC 9113) and HPACK (RFC 7541)

/// The client connection preface.
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const H2_DATA: u8 = 0x0;
pub const H2_HEADERS: u8 = 0x1;
pub const H2_SETTINGS: u8 = 0x4;
pub const H2_PING: u8 = 0x6;
pub const H2_GOAWAY: u8 = 0x7;
pub const H2_WINDOW_UPDATE: u8 = 0x8;

pub const H2_END_STREAM: u8 = 0x1;
pub const H2_ACK: u8 = 0x1;
pub const H2_END_HEADERS: u8 = 0x4;

/// One frame: 9-byte header and payload.
pub fn h2_frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).min(0x00ff_ffff);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A SETTINGS frame with `(identifier, value)` entries.
pub fn h2_settings(out: &mut Vec<u8>, entries: &[(u16, u32)]) {
    let mut p = Vec::with_capacity(entries.len() * 6);
    for &(id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    h2_frame(out, H2_SETTINGS, 0, 0, &p);
}

pub fn h2_settings_ack(out: &mut Vec<u8>) {
    h2_frame(out, H2_SETTINGS, H2_ACK, 0, &[]);
}

pub fn h2_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    h2_frame(
        out,
        H2_WINDOW_UPDATE,
        0,
        stream,
        &(increment & 0x7fff_ffff).to_be_bytes(),
    );
}

pub fn h2_ping(out: &mut Vec<u8>, ack: bool, data: [u8; 8]) {
    h2_frame(out, H2_PING, if ack { H2_ACK } else { 0 }, 0, &data);
}

pub fn h2_goaway(out: &mut Vec<u8>, last_stream: u32, code: u32) {
    let mut p = Vec::with_capacity(8);
    p.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    h2_frame(out, H2_GOAWAY, 0, 0, &p);
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// How a literal header field is represented (RFC 7541 section 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexing {
    /// Added to the dynamic table; later blocks refer to it by index.
    Incremental,
    /// Not added (values that change every request: ids, timeouts).
    Without,
    /// Not added, and intermediaries must not index it either (credentials).
    Never,
}

/// Entry overhead of the dynamic table (RFC 7541 section 4.1).
const ENTRY_OVERHEAD: usize = 32;
/// `SETTINGS_HEADER_TABLE_SIZE` until a peer changes it; the mix never does.
pub const HPACK_TABLE_SIZE: usize = 4096;

/// An HPACK encoder for one direction of one connection: static table lookups, a dynamic
/// table kept exactly as the peer's decoder keeps it (insertion at the front, eviction from
/// the back by the 32-byte-overhead size), string literals without Huffman coding.
#[derive(Clone, Debug)]
pub struct HpackEncoder {
    table: VecDeque<(String, String)>,
    size: usize,
    max: usize,
}

impl Default for HpackEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits being `flags`
/// (RFC 7541 section 5.1; also used by the parser benches' encoder).
pub fn hpack_int(out: &mut Vec<u8>, n: u8, flags: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A string literal, not Huffman-coded.
fn hpack_str(out: &mut Vec<u8>, s: &str) {
    hpack_int(out, 7, 0x00, s.len());
    out.extend_from_slice(s.as_bytes());
}

impl HpackEncoder {
    pub fn new() -> Self {
        HpackEncoder {
            table: VecDeque::new(),
            size: 0,
            max: HPACK_TABLE_SIZE,
        }
    }

    /// Bytes the dynamic table holds, as RFC 7541 counts them.
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Appends one header field's representation to a header block. Names must be
    /// lower-case (HTTP/2 requires it).
    pub fn header(&mut self, out: &mut Vec<u8>, name: &str, value: &str, mode: Indexing) {
        // A full match: one indexed field.
        if let Some(i) = STATIC_TABLE
            .iter()
            .position(|&(n, v)| n == name && v == value && !v.is_empty())
        {
            hpack_int(out, 7, 0x80, i + 1);
            return;
        }
        if mode != Indexing::Never
            && let Some(i) = self.table.iter().position(|(n, v)| n == name && v == value)
        {
            hpack_int(out, 7, 0x80, STATIC_TABLE.len() + 1 + i);
            return;
        }
        let name_index = STATIC_TABLE
            .iter()
            .position(|&(n, _)| n == name)
            .map(|i| i + 1)
            .or_else(|| {
                self.table
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(|i| STATIC_TABLE.len() + 1 + i)
            })
            .unwrap_or(0);
        let (bits, flags) = match mode {
            Indexing::Incremental => (6, 0x40),
            Indexing::Without => (4, 0x00),
            Indexing::Never => (4, 0x10),
        };
        hpack_int(out, bits, flags, name_index);
        if name_index == 0 {
            hpack_str(out, name);
        }
        hpack_str(out, value);
        if mode == Indexing::Incremental {
            self.insert(name, value);
        }
    }

    fn insert(&mut self, name: &str, value: &str) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max {
            // RFC 7541 section 4.4: an entry larger than the table empties it.
            self.table.clear();
            self.size = 0;
            return;
        }
        while self.size + size > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
        self.table.push_front((name.to_owned(), value.to_owned()));
        self.size += size;
    }
}

/// One gRPC length-prefixed message (uncompressed).
pub fn grpc_message(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
}

/// A protobuf varint.
fn pb_varint_raw(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf field `field` as a varint (wire type 0).
pub fn pb_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    pb_varint_raw(out, u64::from(field) << 3);
    pb_varint_raw(out, v);
}

/// Protobuf field `field` as length-delimited bytes (wire type 2): strings, bytes, messages.
pub fn pb_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    pb_varint_raw(out, (u64::from(field) << 3) | 2);
    pb_varint_raw(out, b.len() as u64);
    out.extend_from_slice(b);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL v3 (frontend/backend protocol)

/// PostgreSQL type oids used in row descriptions.
pub const PG_INT4: u32 = 23;
pub const PG_INT8: u32 = 20;
pub const PG_TEXT: u32 = 25;
pub const PG_NUMERIC: u32 = 1700;
pub const PG_TIMESTAMPTZ: u32 = 1184;
pub const PG_BOOL: u32 = 16;

/// A typed message: type byte, int32 length (itself included), body.
pub fn pg_msg(out: &mut Vec<u8>, ty: u8, body: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
}

fn cstr(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
    b.push(0);
}

/// The StartupMessage (protocol 3.0) with its parameters.
pub fn pg_startup(out: &mut Vec<u8>, params: &[(&str, &str)]) {
    let mut body = Vec::with_capacity(128);
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (k, v) in params {
        cstr(&mut body, k);
        cstr(&mut body, v);
    }
    body.push(0);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
}

/// `AuthenticationOk`, or another authentication request (`code`, `data`).
pub fn pg_auth(out: &mut Vec<u8>, code: u32, data: &[u8]) {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(data);
    pg_msg(out, b'R', &body);
}

/// SASLInitialResponse (`mechanism`, client-first-message).
pub fn pg_sasl_initial(out: &mut Vec<u8>, mechanism: &str, data: &[u8]) {
    let mut body = Vec::with_capacity(data.len() + 32);
    cstr(&mut body, mechanism);
    body.extend_from_slice(&(data.len() as u32).to_be_bytes());
    body.extend_from_slice(data);
    pg_msg(out, b'p', &body);
}

pub fn pg_parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    let mut body = Vec::with_capacity(name.len() + value.len() + 2);
    cstr(&mut body, name);
    cstr(&mut body, value);
    pg_msg(out, b'S', &body);
}

pub fn pg_backend_key(out: &mut Vec<u8>, pid: u32, secret: u32) {
    let mut body = pid.to_be_bytes().to_vec();
    body.extend_from_slice(&secret.to_be_bytes());
    pg_msg(out, b'K', &body);
}

/// ReadyForQuery: `I` idle, `T` in a transaction, `E` in a failed transaction.
pub fn pg_ready(out: &mut Vec<u8>, status: u8) {
    pg_msg(out, b'Z', &[status]);
}

/// A simple Query.
pub fn pg_query(out: &mut Vec<u8>, sql: &str) {
    let mut body = Vec::with_capacity(sql.len() + 1);
    cstr(&mut body, sql);
    pg_msg(out, b'Q', &body);
}

/// RowDescription: `(name, type oid, type length)` per column, text format.
pub fn pg_row_description(out: &mut Vec<u8>, table_oid: u32, cols: &[(&str, u32, i16)]) {
    let mut body = (cols.len() as u16).to_be_bytes().to_vec();
    for (i, (name, oid, len)) in cols.iter().enumerate() {
        cstr(&mut body, name);
        body.extend_from_slice(&table_oid.to_be_bytes());
        body.extend_from_slice(&(i as u16 + 1).to_be_bytes());
        body.extend_from_slice(&oid.to_be_bytes());
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
    }
    pg_msg(out, b'T', &body);
}

/// DataRow; `None` is SQL NULL.
pub fn pg_data_row(out: &mut Vec<u8>, vals: &[Option<&[u8]>]) {
    let mut body = (vals.len() as u16).to_be_bytes().to_vec();
    for v in vals {
        match v {
            Some(b) => {
                body.extend_from_slice(&(b.len() as u32).to_be_bytes());
                body.extend_from_slice(b);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    pg_msg(out, b'D', &body);
}

pub fn pg_command_complete(out: &mut Vec<u8>, tag: &str) {
    let mut body = Vec::with_capacity(tag.len() + 1);
    cstr(&mut body, tag);
    pg_msg(out, b'C', &body);
}

/// ErrorResponse with severity, SQLSTATE and message.
pub fn pg_error(out: &mut Vec<u8>, sqlstate: &str, message: &str) {
    let mut body = Vec::with_capacity(message.len() + 40);
    for (f, v) in [
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        body.push(f);
        cstr(&mut body, v);
    }
    body.push(0);
    pg_msg(out, b'E', &body);
}

/// Parse (into the unnamed statement when `name` is empty) with unspecified parameter types.
pub fn pg_parse(out: &mut Vec<u8>, name: &str, sql: &str, params: u16) {
    let mut body = Vec::with_capacity(sql.len() + 16);
    cstr(&mut body, name);
    cstr(&mut body, sql);
    body.extend_from_slice(&params.to_be_bytes());
    for _ in 0..params {
        body.extend_from_slice(&0u32.to_be_bytes());
    }
    pg_msg(out, b'P', &body);
}

/// Bind text-format parameters to `statement` in `portal`.
pub fn pg_bind(out: &mut Vec<u8>, portal: &str, statement: &str, params: &[&[u8]]) {
    let mut body = Vec::with_capacity(64);
    cstr(&mut body, portal);
    cstr(&mut body, statement);
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&(params.len() as u16).to_be_bytes());
    for p in params {
        body.extend_from_slice(&(p.len() as u32).to_be_bytes());
        body.extend_from_slice(p);
    }
    body.extend_from_slice(&0u16.to_be_bytes());
    pg_msg(out, b'B', &body);
}

/// Describe a portal.
pub fn pg_describe_portal(out: &mut Vec<u8>, portal: &str) {
    let mut body = vec![b'P'];
    cstr(&mut body, portal);
    pg_msg(out, b'D', &body);
}

/// Execute `portal` with no row limit.
pub fn pg_execute(out: &mut Vec<u8>, portal: &str) {
    let mut body = Vec::with_capacity(8);
    cstr(&mut body, portal);
    body.extend_from_slice(&0u32.to_be_bytes());
    pg_msg(out, b'E', &body);
}

// ---------------------------------------------------------------------------------------
// MySQL classic protocol

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

// ---------------------------------------------------------------------------------------
// Redis (RESP2)

/// A multi-bulk command.
pub fn resp_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        resp_bulk(out, Some(a));
    }
}

/// A bulk string reply (`None`: the null bulk string).
pub fn resp_bulk(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.push(b'$');
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}

pub fn resp_simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn resp_error(out: &mut Vec<u8>, s: &str) {
    out.push(b'-');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn resp_int(out: &mut Vec<u8>, v: i64) {
    out.push(b':');
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An array header; its elements follow.
pub fn resp_array_head(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------------------------------
// DNS

pub const DNS_A: u16 = 1;
pub const DNS_SOA: u16 = 6;
pub const DNS_AAAA: u16 = 28;
pub const DNS_SRV: u16 = 33;
const DNS_OPT: u16 = 41;

pub const DNS_NOERROR: u8 = 0;
pub const DNS_NXDOMAIN: u8 = 3;

/// A name in wire form (uncompressed).
fn dns_name(b: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        b.push(label.len().min(63) as u8);
        b.extend_from_slice(label.as_bytes().get(..63).unwrap_or(label.as_bytes()));
    }
    b.push(0);
}

fn dns_header(b: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        b.extend_from_slice(&c.to_be_bytes());
    }
}

/// An EDNS(0) OPT pseudo-record advertising a 1232-byte UDP payload.
fn dns_opt(b: &mut Vec<u8>) {
    b.push(0);
    b.extend_from_slice(&DNS_OPT.to_be_bytes());
    b.extend_from_slice(&1232u16.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
}

/// A question and how it is asked.
#[derive(Clone, Copy, Debug)]
pub struct DnsAsk<'a> {
    pub id: u16,
    pub name: &'a str,
    pub qtype: u16,
    /// With an EDNS(0) OPT record.
    pub edns: bool,
}

/// A recursive query.
pub fn dns_query(out: &mut Vec<u8>, q: &DnsAsk<'_>) {
    dns_header(out, q.id, 0x0100, [1, 0, 0, u16::from(q.edns)]);
    dns_name(out, q.name);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if q.edns {
        dns_opt(out);
    }
}

/// One answer record's data.
#[derive(Clone, Debug)]
pub enum DnsData {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// priority, weight, port, target
    Srv(u16, u16, u16, String),
}

/// The response to [`dns_query`]: answers (each owned by the question's name, by a
/// compression pointer) or, for NXDOMAIN, the zone's SOA in the authority section.
pub fn dns_response(
    out: &mut Vec<u8>,
    q: &DnsAsk<'_>,
    rcode: u8,
    answers: &[DnsData],
    soa_zone: &str,
) {
    let (id, name, qtype, edns) = (q.id, q.name, q.qtype, q.edns);
    let nx = rcode != DNS_NOERROR;
    let flags = 0x8180 | u16::from(rcode & 0x0f);
    let an = if nx { 0 } else { answers.len() as u16 };
    dns_header(out, id, flags, [1, an, u16::from(nx), u16::from(edns)]);
    dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if !nx {
        for a in answers {
            // A pointer to the question's name at offset 12.
            out.extend_from_slice(&[0xc0, 0x0c]);
            let (ty, rdata) = match a {
                DnsData::A(ip) => (DNS_A, ip.to_vec()),
                DnsData::Aaaa(ip) => (DNS_AAAA, ip.to_vec()),
                DnsData::Srv(prio, weight, port, target) => {
                    let mut r = Vec::with_capacity(target.len() + 8);
                    r.extend_from_slice(&prio.to_be_bytes());
                    r.extend_from_slice(&weight.to_be_bytes());
                    r.extend_from_slice(&port.to_be_bytes());
                    dns_name(&mut r, target);
                    (DNS_SRV, r)
                }
            };
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&30u32.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
    } else {
        dns_name(out, soa_zone);
        out.extend_from_slice(&DNS_SOA.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&30u32.to_be_bytes());
        let mut r = Vec::with_capacity(64);
        dns_name(&mut r, &format!("ns.dns.{soa_zone}"));
        dns_name(&mut r, &format!("hostmaster.{soa_zone}"));
        for v in [1_795_300_000u32, 7200, 1800, 86_400, 30] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(&r);
    }
    if edns {
        dns_opt(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_follow_rfc7541_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix.
        let mut b = Vec::new();
        hpack_int(&mut b, 5, 0, 10);
        assert_eq!(b, [10]);
        b.clear();
        hpack_int(&mut b, 5, 0, 1337);
        assert_eq!(b, [31, 154, 10]);
    }

    #[test]
    fn hpack_matches_rfc7541_c3_requests_without_huffman() {
        // RFC 7541 C.3: three requests on one connection, no Huffman coding.
        let mut e = HpackEncoder::new();
        let mut b = Vec::new();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ] {
            e.header(&mut b, n, v, Indexing::Incremental);
        }
        let want1: &[u8] = &[
            0x82, 0x86, 0x84, 0x41, 0x0f, b'w', b'w', b'w', b'.', b'e', b'x', b'a', b'm', b'p',
            b'l', b'e', b'.', b'c', b'o', b'm',
        ];
        assert_eq!(b, want1);
        assert_eq!(e.table_size(), 57);

        b.clear();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ] {
            e.header(&mut b, n, v, Indexing::Incremental);
        }
        let want2: &[u8] = &[
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x08, b'n', b'o', b'-', b'c', b'a', b'c', b'h', b'e',
        ];
        assert_eq!(b, want2);
        assert_eq!(e.table_size(), 110);

        b.clear();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ] {
            e.header(&mut b, n, v, Indexing::Incremental);
        }
        let mut want3 = vec![0x82, 0x87, 0x85, 0xbf, 0x40, 0x0a];
        want3.extend_from_slice(b"custom-key");
        want3.push(0x0c);
        want3.extend_from_slice(b"custom-value");
        assert_eq!(b, want3);
        assert_eq!(e.table_size(), 164);
    }

    #[test]
    fn hpack_evicts_like_a_decoder() {
        let mut e = HpackEncoder::new();
        let mut b = Vec::new();
        let v = "x".repeat(1000);
        for i in 0..10 {
            e.header(&mut b, &format!("h{i}"), &v, Indexing::Incremental);
            assert!(e.table_size() <= HPACK_TABLE_SIZE);
        }
        // Each entry is 2 + 1000 + 32 bytes: four fit in 4096.
        assert_eq!(e.table_len(), 3);
        // Larger than the table: empties it.
        e.header(&mut b, "big", &"y".repeat(5000), Indexing::Incremental);
        assert_eq!((e.table_len(), e.table_size()), (0, 0));
    }

    #[test]
    fn mysql_lenenc_widths() {
        let mut b = Vec::new();
        for v in [0u64, 250, 251, 65_535, 65_536, 1 << 24] {
            my_lenenc(&mut b, v);
        }
        assert_eq!(b.len(), 1 + 1 + 3 + 3 + 4 + 9);
    }
}
