//! PostgreSQL v3 (frontend/backend protocol) messages.

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

pub(super) fn cstr(b: &mut Vec<u8>, s: &str) {
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
