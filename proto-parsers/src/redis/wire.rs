//! RESP framing shared by both directions: bulk strings counted through, CRLF lines,
//! integers, and the multi-bulk start a resync looks for.

use super::MAX_COUNT_DIGITS;

/// A bulk string being counted through: its data, then its CRLF.
#[derive(Clone, Copy, Debug)]
pub(super) struct Body {
    pub(super) data_left: u64,
    crlf_left: u8,
}

impl Body {
    pub(super) const fn new(len: u64) -> Self {
        Body {
            data_left: len,
            crlf_left: 2,
        }
    }
}

/// What one step through a body found.
pub(super) struct BodyStep {
    /// Bytes of `data` used.
    pub(super) used: usize,
    /// How many of them were bulk data (the rest are the CRLF).
    pub(super) data: usize,
    pub(super) finished: bool,
    /// The terminator was not CRLF.
    pub(super) bad: bool,
}

pub(super) fn step_body(body: &mut Body, data: &[u8]) -> BodyStep {
    let take = usize::try_from(body.data_left)
        .unwrap_or(usize::MAX)
        .min(data.len());
    body.data_left -= take as u64;
    let mut used = take;
    let mut bad = false;
    while body.data_left == 0 && body.crlf_left > 0 {
        let Some(&b) = data.get(used) else { break };
        let want = if body.crlf_left == 2 { b'\r' } else { b'\n' };
        if b != want {
            bad = true;
            break;
        }
        body.crlf_left -= 1;
        used += 1;
    }
    BodyStep {
        used,
        data: take,
        finished: body.data_left == 0 && body.crlf_left == 0,
        bad,
    }
}

/// A CRLF-terminated line at the start of `data`.
pub(super) enum Line<'a> {
    /// The line (without CRLF) and the bytes it takes with its CRLF.
    Done(&'a [u8], usize),
    More,
    TooLong,
    /// A bare LF or a CR not followed by LF.
    Bad,
}

pub(super) fn line(data: &[u8], max: usize) -> Line<'_> {
    let window = data
        .get(..data.len().min(max.saturating_add(2)))
        .unwrap_or(data);
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => match nl.checked_sub(1).and_then(|i| window.get(i)) {
            Some(b'\r') => Line::Done(window.get(..nl - 1).unwrap_or_default(), nl + 1),
            _ => Line::Bad,
        },
        None if data.len() > max.saturating_add(1) => Line::TooLong,
        None => Line::More,
    }
}

/// A strict decimal integer (optional minus sign), as RESP lengths are written.
pub(super) fn int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

/// Whether `data`, at a line start, begins a multi-bulk command: `*<count>\r\n$` with a
/// count above zero. `None` while `data` is a prefix of one (at most 14 bytes).
pub(super) fn multibulk_start(data: &[u8]) -> Option<bool> {
    match data.first() {
        None => return None,
        Some(b'*') => {}
        Some(_) => return Some(false),
    }
    let rest = data.get(1..).unwrap_or_default();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_COUNT_DIGITS {
        return Some(false);
    }
    let after = rest.get(digits..).unwrap_or_default();
    if after.is_empty() {
        return None;
    }
    let count = rest.get(..digits).unwrap_or_default();
    if count.iter().all(|&b| b == b'0') {
        // No digits, or `*0`: not a command (Redis ignores `*0`).
        return Some(false);
    }
    for (i, want) in b"\r\n$".iter().enumerate() {
        match after.get(i) {
            None => return None,
            Some(b) if b == want => {}
            Some(_) => return Some(false),
        }
    }
    Some(true)
}
