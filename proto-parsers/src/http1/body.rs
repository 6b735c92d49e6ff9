//! Body framing (RFC 9112 section 6.3): the body a head declares, chunk-size and trailer
//! lines, bodies counted down as they pass.

use super::head::{HeadInfo, partial_head};
use super::lines::strip_cr;
use super::scan::Scan;
use super::{Body, MAX_CHUNK_LINE, MAX_HEAD, Phase, Side, Step};
use crate::contract::{FactSink, Invalid, ParserAnomaly};
use crate::facts::HttpVersion;

/// RFC 9112 section 6.3, the parts shared by requests and responses: `Ok(None)` when the
/// head declares no length (a request then has no body, a response runs to the close).
pub(super) fn message_body(
    info: &HeadInfo<'_>,
    version: HttpVersion,
    sink: &mut dyn FactSink,
) -> Result<Option<Body>, Invalid> {
    if info.te {
        if version == HttpVersion::Http10 || info.content_length.is_some() || info.bad_length {
            // Transfer-Encoding overrides Content-Length, but a hop that reads the length
            // instead would split the stream elsewhere.
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        if info.te_chunked > 1 || (info.te_chunked == 1 && !info.te_last_chunked) {
            sink.anomaly(ParserAnomaly::Ambiguous);
        }
        return Ok(Some(if info.te_last_chunked {
            Body::Chunked
        } else {
            Body::UntilClose
        }));
    }
    if info.bad_length {
        sink.anomaly(ParserAnomaly::Ambiguous);
        return Err(Invalid::BadLength);
    }
    Ok(info.content_length.map(Body::Fixed))
}

pub(super) fn request_body(
    info: &HeadInfo<'_>,
    version: HttpVersion,
    sink: &mut dyn FactSink,
) -> Result<Body, Invalid> {
    match message_body(info, version, sink)? {
        // A request's length cannot run to the close: a transfer coding that does not end
        // in chunked leaves the body's end undefined (RFC 9112 6.3 point 4).
        Some(Body::UntilClose) => {
            sink.anomaly(ParserAnomaly::Ambiguous);
            Err(Invalid::BadSyntax)
        }
        Some(b) => Ok(b),
        None => Ok(Body::None),
    }
}

/// Reads one chunk-size line: `1*HEXDIG [BWS ; ext...] CRLF`.
pub(super) fn chunk_size_line(side: &mut Side, data: &[u8], sink: &mut dyn FactSink) -> Step {
    let window = data.get(..MAX_CHUNK_LINE.min(data.len())).unwrap_or(data);
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if data.len() >= MAX_CHUNK_LINE {
            sink.anomaly(ParserAnomaly::BadFraming);
            return Step::Invalid(Invalid::TooLarge);
        }
        return Step::NeedMore;
    };
    // A bare LF ends the line for nginx and Go alike.
    let line = strip_cr(window.get(..nl).unwrap_or_default());
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let mut size: u64 = 0;
    for &b in line.iter().take(digits) {
        let v = (b as char).to_digit(16).map_or(0, u64::from);
        match size.checked_mul(16).and_then(|s| s.checked_add(v)) {
            Some(s) => size = s,
            None => {
                sink.anomaly(ParserAnomaly::BadFraming);
                return Step::Invalid(Invalid::BadLength);
            }
        }
    }
    let after = line.get(digits..).unwrap_or_default();
    let ext_ok = {
        let after = after
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .and_then(|i| after.get(i..))
            .unwrap_or_default();
        after.is_empty() || after.first() == Some(&b';')
    };
    if digits == 0 || !ext_ok {
        sink.anomaly(ParserAnomaly::BadFraming);
        return Step::Invalid(Invalid::BadSyntax);
    }
    if after.contains(&b'\r') {
        // A CR inside an extension: parsers that end lines at a bare CR disagree with us.
        sink.anomaly(ParserAnomaly::Ambiguous);
    }
    side.phase = if size == 0 {
        Phase::Trailers
    } else {
        Phase::ChunkData(size)
    };
    Step::Consumed(nl + 1)
}

/// Reads one trailer line; an empty one ends the message. A long line is searched for its
/// end once, not again from its start each time more of it arrives.
pub(super) fn trailer_line(side: &mut Side, data: &[u8], sink: &mut dyn FactSink) -> Step {
    let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
    let from = side.scan.pos.min(window.len());
    let rest = window.get(from..).unwrap_or_default();
    let Some(nl) = rest.iter().position(|&b| b == b'\n').map(|i| from + i) else {
        side.scan.pos = window.len();
        return partial_head(data.len(), sink);
    };
    side.scan = Scan::new();
    if strip_cr(window.get(..nl).unwrap_or_default()).is_empty() {
        side.body_done();
    }
    Step::Consumed(nl + 1)
}

/// Takes up to `have` bytes of `remaining`: (bytes taken, bytes still to come).
pub(super) fn count_down(remaining: u64, have: usize) -> (usize, u64) {
    let have64 = u64::try_from(have).unwrap_or(u64::MAX);
    let took = remaining.min(have64);
    let took_usize = usize::try_from(took).unwrap_or(have);
    (took_usize, remaining - took)
}
