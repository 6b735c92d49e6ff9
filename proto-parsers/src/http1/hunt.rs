//! After a gap: the search for the next message head ("Gaps" in the module documentation).

use super::MAX_HEAD;
use super::lines::{Field, field_line, is_ctl, strip_cr};
use crate::contract::Invalid;

/// Where a side looking for the next message head after a gap is. Like [`Scan`], its
/// lengths index the unconsumed bytes, which the caller feeds again from their first byte
/// (the candidate line's start) while the candidate is incomplete.
///
/// [`Scan`]: super::scan::Scan
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hunt {
    /// The first unconsumed byte starts a line: right after the gap, or after an LF.
    line_start: bool,
    /// Bytes of the candidate searched for its next line end.
    pos: usize,
    /// The candidate's start line is one this side accepts and its LF is here; the line
    /// after it is awaited.
    start_lf: Option<usize>,
}

impl Hunt {
    pub(super) const fn after_gap() -> Self {
        Hunt {
            line_start: true,
            pos: 0,
            start_lf: None,
        }
    }

    const fn mid_line() -> Self {
        Hunt {
            line_start: false,
            pos: 0,
            start_lf: None,
        }
    }
}

/// The outcome of one step of the search for the next head.
pub(super) enum Hunted {
    /// These bytes are not (the start of) a head: consume them and go on.
    Skip(usize),
    /// A head starts at the first byte.
    Found,
    /// A candidate is incomplete: wait for more.
    More,
}

/// One step of the search for the next message head in `data` (the unconsumed bytes): a
/// line start whose line `start_line` accepts, followed by an empty line or a field line
/// [`field_line`] reads as valid (a second line that is neither is body text, not a head).
/// Every step consumes bytes or changes `h`, each byte is searched at most twice (as part
/// of a candidate's second line, then as a candidate itself), and a line is never waited
/// for past [`MAX_HEAD`] bytes.
pub(super) fn hunt(
    h: &mut Hunt,
    data: &[u8],
    start_line: fn(&[u8]) -> Result<(), Invalid>,
) -> Hunted {
    let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
    if !h.line_start {
        // In the middle of a line: up to and including its LF is not a head.
        return match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                *h = Hunt::after_gap();
                Hunted::Skip(i + 1)
            }
            None => Hunted::Skip(window.len()),
        };
    }
    if h.pos > window.len() || h.start_lf.is_some_and(|lf| lf >= h.pos) {
        // Not the bytes this search saw (the contract forbids it): start over.
        *h = Hunt::after_gap();
    }
    let rest = window.get(h.pos..).unwrap_or_default();
    let Some(i) = rest.iter().position(|&b| b == b'\n' || is_ctl(b)) else {
        if window.len() >= MAX_HEAD {
            // No line this long is waited for: the first line is not a head's start.
            let skip = h.start_lf.map_or(window.len(), |lf| lf + 1);
            *h = if h.start_lf.is_some() {
                Hunt::after_gap()
            } else {
                Hunt::mid_line()
            };
            return Hunted::Skip(skip);
        }
        h.pos = window.len();
        return Hunted::More;
    };
    let at = h.pos + i;
    let is_lf = window.get(at) == Some(&b'\n');
    match h.start_lf {
        None => {
            let line = strip_cr(window.get(..at).unwrap_or_default());
            if is_lf && start_line(line).is_ok() {
                h.start_lf = Some(at);
                h.pos = at + 1;
                // The second line may be there already.
                return hunt(h, data, start_line);
            }
            // An empty line, a line that is not a start line, or a control byte (no start
            // line holds one: the rest of its line is skipped).
            *h = if is_lf {
                Hunt::after_gap()
            } else {
                Hunt::mid_line()
            };
            Hunted::Skip(at + 1)
        }
        Some(lf) => {
            let next = strip_cr(window.get(lf + 1..at).unwrap_or_default());
            let head = is_lf && (next.is_empty() || matches!(field_line(next), Field::Valid(_)));
            *h = Hunt::after_gap();
            if head {
                Hunted::Found
            } else {
                // Skip the start line only: the line after it may start a head itself.
                Hunted::Skip(lf + 1)
            }
        }
    }
}
