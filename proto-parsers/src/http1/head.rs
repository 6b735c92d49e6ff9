//! Reading a message head: `httparse` over the bytes as they are (the fast path), else this
//! module's own line parser (the slow path), and what the framing and the facts need from
//! its fields.

use std::mem::MaybeUninit;

use super::lines::{
    Field, check_request_line, check_status_line, field_line, next_line, parse_decimal,
    request_line, skip_empty_lines, status_line, trim_ows,
};
use super::scan::{Scan, Scanned, scan_head};
use super::{
    Http1Parser, KEEP_FIELDS, MAX_HEAD, MAX_SUMMARY, RequestHead, ResponseHead, STACK_HEADERS, Step,
};
use crate::contract::{FactSink, Invalid, ParserAnomaly};
use crate::facts::{Header, HttpVersion};

/// `httparse` set to the leniency of the servers (runs of spaces in start lines).
fn lenient() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    c
}

impl Http1Parser {
    pub(super) fn request_head(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Step {
        let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
        let fresh = self.req.scan.is_fresh();
        if fresh && let Some(step) = self.request_fast(window, sink) {
            return step;
        }
        let len = match scan_head(window, &mut self.req.scan, check_request_line) {
            Scanned::End(len) => len,
            Scanned::More => return partial_head(data.len(), sink),
            Scanned::Bad(why) => return Step::Invalid(why),
        };
        self.req.scan = Scan::new();
        let head = window.get(..len).unwrap_or(window);
        // A head that arrived in pieces has not been through httparse whole yet.
        if !fresh && let Some(step) = self.request_fast(head, sink) {
            return step;
        }
        self.request_slow(head, sink)
    }

    /// httparse over `data`: `Some` once a whole head was parsed and reported, `None` when
    /// the head is incomplete or httparse cannot read it (the scan and the slow path then
    /// take over).
    pub(super) fn request_fast(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Option<Step> {
        // Left uninitialised: httparse fills only the fields it finds.
        let mut hbuf = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match lenient().parse_request_with_uninit_headers(&mut req, data, &mut hbuf) {
            Ok(httparse::Status::Complete(len)) => len,
            _ => return None,
        };
        let mut fields = recycle(std::mem::take(&mut self.fields));
        fields.reserve(req.headers.len());
        fields.extend(req.headers.iter().map(|h| Header {
            name: h.name.as_bytes(),
            value: h.value,
        }));
        let head = RequestHead {
            raw: data.get(..len).unwrap_or(data),
            method: req.method.unwrap_or_default().as_bytes(),
            path: req.path.unwrap_or_default().as_bytes(),
            version: if req.version == Some(0) {
                HttpVersion::Http10
            } else {
                HttpVersion::Http11
            },
            malformed: false,
        };
        Some(self.report_request(&head, fields, sink))
    }

    /// This module's own reading of a whole request head (see the module documentation).
    pub(super) fn request_slow(&mut self, raw: &[u8], sink: &mut dyn FactSink) -> Step {
        let mut rest = skip_empty_lines(raw);
        let Some(line) = next_line(&mut rest) else {
            return Step::Invalid(Invalid::BadSyntax);
        };
        let (method, path, version) = match request_line(line) {
            Ok(parts) => parts,
            Err(why) => return Step::Invalid(why),
        };
        let mut fields = recycle(std::mem::take(&mut self.fields));
        let mut malformed = false;
        while let Some(line) = next_line(&mut rest) {
            if line.is_empty() {
                break;
            }
            match field_line(line) {
                Field::Valid(h) => fields.push(h),
                Field::Lenient(h) => {
                    malformed = true;
                    fields.push(h);
                }
                Field::Bad => malformed = true,
            }
        }
        let head = RequestHead {
            raw,
            method,
            path,
            version,
            malformed,
        };
        self.report_request(&head, fields, sink)
    }

    pub(super) fn response_head(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Step {
        let window = data.get(..MAX_HEAD.min(data.len())).unwrap_or(data);
        let fresh = self.resp.scan.is_fresh();
        if fresh && let Some(step) = self.response_fast(window, sink) {
            return step;
        }
        let len = match scan_head(window, &mut self.resp.scan, check_status_line) {
            Scanned::End(len) => len,
            Scanned::More => return partial_head(data.len(), sink),
            Scanned::Bad(why) => return Step::Invalid(why),
        };
        self.resp.scan = Scan::new();
        let head = window.get(..len).unwrap_or(window);
        if !fresh && let Some(step) = self.response_fast(head, sink) {
            return step;
        }
        self.response_slow(head, sink)
    }

    fn response_fast(&mut self, data: &[u8], sink: &mut dyn FactSink) -> Option<Step> {
        let mut hbuf = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let len = match lenient().parse_response_with_uninit_headers(&mut resp, data, &mut hbuf) {
            Ok(httparse::Status::Complete(len)) => len,
            _ => return None,
        };
        let mut info = HeadInfo::default();
        for h in resp.headers.iter() {
            info.see(&Header {
                name: h.name.as_bytes(),
                value: h.value,
            });
        }
        let head = ResponseHead {
            raw: data.get(..len).unwrap_or(data),
            version: if resp.version == Some(0) {
                HttpVersion::Http10
            } else {
                HttpVersion::Http11
            },
            status: resp.code.unwrap_or(0),
            malformed: false,
        };
        Some(self.report_response(&head, &info, sink))
    }

    fn response_slow(&mut self, raw: &[u8], sink: &mut dyn FactSink) -> Step {
        let mut rest = skip_empty_lines(raw);
        let Some(line) = next_line(&mut rest) else {
            return Step::Invalid(Invalid::BadSyntax);
        };
        let (version, status) = match status_line(line) {
            Ok(parts) => parts,
            Err(why) => return Step::Invalid(why),
        };
        let mut info = HeadInfo::default();
        let mut malformed = false;
        while let Some(line) = next_line(&mut rest) {
            if line.is_empty() {
                break;
            }
            match field_line(line) {
                Field::Valid(h) => info.see(&h),
                Field::Lenient(h) => {
                    malformed = true;
                    info.see(&h);
                }
                Field::Bad => malformed = true,
            }
        }
        let head = ResponseHead {
            raw,
            version,
            status,
            malformed,
        };
        self.report_response(&head, &info, sink)
    }
}

/// What the framing and the facts need from a head's fields.
#[derive(Default)]
pub(super) struct HeadInfo<'a> {
    pub(super) host: Option<&'a [u8]>,
    pub(super) hosts: u32,
    pub(super) user_agent: Option<&'a [u8]>,
    pub(super) content_type: Option<&'a [u8]>,
    pub(super) upgrade: Option<&'a [u8]>,
    /// `Content-Length`: every value seen agreed on this length so far.
    pub(super) content_length: Option<u64>,
    /// Some `Content-Length` was malformed or two disagreed.
    pub(super) bad_length: bool,
    /// `Transfer-Encoding` was present.
    pub(super) te: bool,
    /// The last transfer coding seen is `chunked`.
    pub(super) te_last_chunked: bool,
    /// How many times `chunked` was listed.
    pub(super) te_chunked: u32,
}

impl<'a> HeadInfo<'a> {
    pub(super) fn see(&mut self, h: &Header<'a>) {
        let name = h.name;
        if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
            self.host.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            self.user_agent.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            self.content_type.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 section 8.6: a list of identical values may be taken as one.
            for v in h.value.split(|&b| b == b',') {
                match parse_decimal(trim_ows(v)) {
                    Some(n) if self.content_length.is_none_or(|c| c == n) => {
                        self.content_length = Some(n);
                    }
                    _ => self.bad_length = true,
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te = true;
            for coding in h.value.split(|&b| b == b',') {
                let coding = coding.split(|&b| b == b';').next().unwrap_or_default();
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue;
                }
                let chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.te_chunked += u32::from(chunked);
                self.te_last_chunked = chunked;
            }
        }
    }
}

pub(super) fn partial_head(have: usize, sink: &mut dyn FactSink) -> Step {
    if have >= MAX_HEAD {
        sink.anomaly(ParserAnomaly::HeaderTooLarge);
        Step::Invalid(Invalid::TooLarge)
    } else {
        Step::NeedMore
    }
}

/// Re-types an emptied header list so that its allocation outlives the borrows it held: the
/// in-place `collect` keeps the buffer (same element size and alignment), so after the first
/// head nothing is allocated (as `sql::Classifier` recycles its scratch).
// `filter` would keep the element type; the point is the new lifetime.
#[allow(clippy::unnecessary_filter_map)]
pub(super) fn recycle<'b>(mut v: Vec<Header<'_>>) -> Vec<Header<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// A header list back to the parser: kept for the next head unless a huge head grew it.
pub(super) fn keep(v: Vec<Header<'static>>) -> Vec<Header<'static>> {
    if v.capacity() > KEEP_FIELDS {
        Vec::new()
    } else {
        v
    }
}

/// The start line as sent (leading empty lines skipped), cut at [`MAX_SUMMARY`].
pub(super) fn summary(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let line = head.get(start..).unwrap_or_default();
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len())
        .min(MAX_SUMMARY);
    line.get(..end).unwrap_or_default()
}
