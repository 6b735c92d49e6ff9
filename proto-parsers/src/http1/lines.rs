//! Lines of a head, read as the most lenient of the servers reads them: start lines, field
//! lines, the bytes they may hold, and the list values the framing reads.

use crate::contract::Invalid;
use crate::facts::{Header, HttpVersion};
use crate::http::{is_tchar, is_ws, split_while};

pub(super) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

/// `1*DIGIT` as u64; `None` for anything else (signs, hex, overflow).
pub(super) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `token` appears in the comma-separated list `v` (protocol names may carry `/version`).
pub(super) fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',').any(|t| {
        let t = trim_ows(t);
        let name = t.split(|&b| b == b'/').next().unwrap_or_default();
        name.eq_ignore_ascii_case(token)
    })
}

/// A control byte that no start line holds (CR and LF end lines, HTAB separates).
pub(super) const fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n') || b == 0x7f
}

/// A request target's bytes: visible ASCII and obs-text (what httparse takes too).
const fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// A field value's (or reason phrase's) bytes: HTAB, SP, visible ASCII, obs-text.
const fn is_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | 0x20..=0x7e | 0x80..=0xff)
}

pub(super) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What follows the empty lines (any CR and LF bytes) before a start line.
pub(super) fn skip_empty_lines(head: &[u8]) -> &[u8] {
    split_while(head, |b| b == b'\r' || b == b'\n').1
}

/// The next line of `rest` without its LF or CRLF, and `rest` moved past it.
pub(super) fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let line = rest.get(..nl).unwrap_or_default();
    *rest = rest.get(nl + 1..).unwrap_or_default();
    Some(strip_cr(line))
}

/// `HTTP/1.` and a minor version: 1.0 for `0`, 1.1 for any other (`HTTP/1.2` is served as
/// 1.1 by nginx and Go). Anything else is a version this parser does not read.
fn http_version(v: &[u8]) -> Result<HttpVersion, Invalid> {
    let minor = v.strip_prefix(b"HTTP/1.").ok_or(Invalid::Unsupported)?;
    if minor.is_empty() || minor.len() > 3 || !minor.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Unsupported);
    }
    Ok(if minor.iter().all(|&b| b == b'0') {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    })
}

/// `method 1*(SP / HTAB) target 1*(SP / HTAB) HTTP/1.x *(SP / HTAB)`, its line end
/// stripped: any token as method (Go serves any), runs of spaces and tabs as delimiters
/// (nginx takes runs of spaces, Apache and Envoy tabs too), trailing whitespace (nginx).
/// A line without a version (HTTP/0.9) is refused.
pub(super) fn request_line(line: &[u8]) -> Result<(&[u8], &[u8], HttpVersion), Invalid> {
    let (method, rest) = split_while(line, is_tchar);
    let (ws1, rest) = split_while(rest, is_ws);
    let (target, rest) = split_while(rest, is_target_byte);
    let (ws2, rest) = split_while(rest, is_ws);
    if method.is_empty() || ws1.is_empty() || target.is_empty() || ws2.is_empty() {
        return Err(Invalid::BadSyntax);
    }
    let (version, rest) = split_while(rest, |b| !is_ws(b));
    if !rest.iter().all(|&b| is_ws(b)) {
        return Err(Invalid::BadSyntax);
    }
    Ok((method, target, http_version(version)?))
}

/// `HTTP/1.x 1*(SP / HTAB) 3DIGIT [ (SP / HTAB) reason ]`, its line end stripped.
pub(super) fn status_line(line: &[u8]) -> Result<(HttpVersion, u16), Invalid> {
    let (version, rest) = split_while(line, |b| !is_ws(b));
    let version = http_version(version)?;
    let (ws, rest) = split_while(rest, is_ws);
    let (code, reason) = split_while(rest, |b| b.is_ascii_digit());
    if ws.is_empty() || code.len() != 3 {
        return Err(Invalid::BadSyntax);
    }
    if !(reason.is_empty() || reason.first().is_some_and(|&b| is_ws(b)))
        || !reason.iter().all(|&b| is_value_byte(b))
    {
        return Err(Invalid::BadSyntax);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Ok((version, status))
}

pub(super) fn check_request_line(line: &[u8]) -> Result<(), Invalid> {
    request_line(line).map(|_| ())
}

pub(super) fn check_status_line(line: &[u8]) -> Result<(), Invalid> {
    status_line(line).map(|_| ())
}

/// One header field line as read by [`field_line`]. Every kind but `Valid` is a line that
/// servers read differently (the reason the parser reports the request, then
/// [`ParserAnomaly::Ambiguous`], and stops).
///
/// [`ParserAnomaly::Ambiguous`]: crate::contract::ParserAnomaly::Ambiguous
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Field<'a> {
    /// `token ":" OWS value OWS` (RFC 9112 section 5), split as httparse splits it.
    Valid(Header<'a>),
    /// Whitespace between the name and the colon (`Content-Length : 5`). RFC 9112 says
    /// refuse the request, and current nginx and Go do; older nginx skipped the line and
    /// served the request without the field; other servers and proxies have taken the
    /// field as if the whitespace were not there (the classic smuggling pair), which is
    /// how it is reported.
    Lenient(Header<'a>),
    /// Not a field line. A line that starts with whitespace is obsolete line folding:
    /// current nginx refuses it, Go's textproto, Apache and Node unfold it into the field
    /// before it (RFC 9112 section 5.2 lets a server do either), so the folded value, or
    /// a folded `Transfer-Encoding`, is seen by some and not others. A name that is not a
    /// token (`Ho(st`) is skipped by nginx (`ignore_invalid_headers`) and refused by Go. A
    /// control byte in a value is passed on by nginx and refused by Go. No colon at all is
    /// refused by both; reported the same way, as no server reads it as a field.
    Bad,
}

/// Reads one header field line, its line end stripped.
pub(super) fn field_line(line: &[u8]) -> Field<'_> {
    let (name, rest) = split_while(line, is_tchar);
    let (ws, rest) = split_while(rest, is_ws);
    let Some(value) = rest.strip_prefix(b":") else {
        return Field::Bad;
    };
    let value = trim_ows(value);
    if name.is_empty() || !value.iter().all(|&b| is_value_byte(b)) {
        return Field::Bad;
    }
    let h = Header { name, value };
    if ws.is_empty() {
        Field::Valid(h)
    } else {
        Field::Lenient(h)
    }
}
