//! The search of an unfinished head for its end, resumed where the last search stopped
//! ("Heads" in the module documentation).

use super::lines::{is_ctl, strip_cr};
use crate::contract::Invalid;

/// Where the search for the end of an unfinished head stopped. The caller feeds the head
/// again from its first byte each time more arrives (the contract's carry), so lengths into
/// it stay valid; they make the search resume where it stopped instead of starting over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Scan {
    /// Bytes of the head already searched.
    pub(super) pos: usize,
    /// Where the start line begins (after empty lines), once `stage` is past `Leading`.
    start: usize,
    stage: Stage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Skipping empty lines before the start line.
    Leading,
    /// In the start line, up to its LF.
    StartLine,
    /// In the field lines: `pos` is at or before the LF that may end the head.
    Fields,
}

impl Scan {
    pub(super) const fn new() -> Self {
        Scan {
            pos: 0,
            start: 0,
            stage: Stage::Leading,
        }
    }

    pub(super) const fn is_fresh(&self) -> bool {
        self.pos == 0 && matches!(self.stage, Stage::Leading)
    }
}

/// The outcome of searching a head for its end.
pub(super) enum Scanned {
    /// The head is this many bytes long (its closing empty line included).
    End(usize),
    /// Not all there yet.
    More,
    /// The start line cannot be this side's.
    Bad(Invalid),
}

/// Searches `head` (the unfinished head from its first byte) for its end, from where `s`
/// stopped: empty lines (any mix of CR and LF, as nginx skips them), the start line (checked
/// by `start_line` once its LF arrives, and refused at the first control byte before that),
/// then field lines up to the first empty one.
pub(super) fn scan_head(
    head: &[u8],
    s: &mut Scan,
    start_line: fn(&[u8]) -> Result<(), Invalid>,
) -> Scanned {
    if s.pos > head.len() {
        // Not the bytes this scan saw (the contract forbids it): start over.
        *s = Scan::new();
    }
    loop {
        let rest = head.get(s.pos..).unwrap_or_default();
        match s.stage {
            Stage::Leading => match rest.iter().position(|&b| b != b'\r' && b != b'\n') {
                Some(i) => {
                    s.pos += i;
                    s.start = s.pos;
                    s.stage = Stage::StartLine;
                }
                None => {
                    s.pos = head.len();
                    return Scanned::More;
                }
            },
            Stage::StartLine => match rest.iter().position(|&b| b == b'\n' || is_ctl(b)) {
                Some(i) if rest.get(i) == Some(&b'\n') => {
                    let lf = s.pos + i;
                    let line = head.get(s.start..lf).unwrap_or_default();
                    if let Err(why) = start_line(strip_cr(line)) {
                        return Scanned::Bad(why);
                    }
                    s.pos = lf;
                    s.stage = Stage::Fields;
                }
                Some(_) => return Scanned::Bad(Invalid::BadSyntax),
                None => {
                    s.pos = head.len();
                    return Scanned::More;
                }
            },
            Stage::Fields => {
                let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                    s.pos = head.len();
                    return Scanned::More;
                };
                let lf = s.pos + i;
                match (head.get(lf + 1), head.get(lf + 2)) {
                    (Some(b'\n'), _) => return Scanned::End(lf + 2),
                    (Some(b'\r'), Some(b'\n')) => return Scanned::End(lf + 3),
                    (None, _) | (Some(b'\r'), None) => {
                        s.pos = lf;
                        return Scanned::More;
                    }
                    _ => s.pos = lf + 1,
                }
            }
        }
    }
}
