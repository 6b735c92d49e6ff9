//! Syslog messages for the alert sinks: RFC 5424 for the network (UDP as RFC 5426, TCP
//! with RFC 6587 octet counting), and the form glibc's `syslog(3)` writes for a local
//! socket (`/dev/log`), which journald, rsyslog's imuxsock and syslog-ng all read.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME palisade PROCID MSGID - MSG      (RFC 5424, no STRUCTURED-DATA)
//! <PRI>Mmm dd hh:mm:ss palisade[PROCID]: MSG                 (local socket; the daemon adds the host)
//! ```
//!
//! MSG is the human summary followed by the JSON record. A message is at most
//! [`MAX_MESSAGE`] bytes: when the record would not fit, it is left out and the summary
//! says so (the event file has it).

use std::fmt::Write as _;

/// The longest message sent (rsyslog's default `maxMessageSize`, 8 KiB): longer ones are
/// truncated or split by receivers.
pub const MAX_MESSAGE: usize = 8192;

/// RFC 5424 severities used here.
pub const CRIT: u8 = 2;
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;
pub const INFO: u8 = 6;

/// An alert's EVE `severity` (1 critical/high .. 3 low) as a syslog severity: 1 crit,
/// 2 warning, 3 (and anything else) notice.
pub fn severity_of(alert_severity: Option<u64>) -> u8 {
    match alert_severity {
        Some(1) => CRIT,
        Some(2) => WARNING,
        _ => NOTICE,
    }
}

/// What is fixed for the life of a sink: who is speaking.
#[derive(Clone, Debug)]
pub struct Origin {
    pub facility: u8,
    /// RFC 5424 HOSTNAME: printable ASCII, or `-` when unknown.
    pub hostname: String,
    pub procid: u32,
}

impl Origin {
    pub fn new(facility: u8) -> Self {
        Origin {
            facility,
            hostname: local_hostname(),
            procid: std::process::id(),
        }
    }
}

/// This host's name as RFC 5424 wants it (PRINTUSASCII, at most 255), or `-`.
pub fn local_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// A time in ns since the epoch as RFC 3339 in UTC with microseconds
/// (`2026-11-22T06:00:00.123456Z`), and its RFC 3164 form (`Nov 22 06:00:00`).
fn times(ns: u64) -> (String, String) {
    let mut eve = String::with_capacity(32);
    crate::events::Timestamp(ns).write_to(&mut eve);
    // `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000`: the first 26 characters, then `Z`.
    let rfc3339 = format!("{}Z", eve.get(..26).unwrap_or("1970-01-01T00:00:00.000000"));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = eve.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = eve.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let rfc3164 = format!(
        "{} {day:>2} {}",
        MONTHS.get(month.wrapping_sub(1)).unwrap_or(&"Jan"),
        eve.get(11..19).unwrap_or("00:00:00")
    );
    (rfc3339, rfc3164)
}

/// The message body: `text`, then `json` when the whole message stays within
/// [`MAX_MESSAGE`] (`room` bytes are left after the header).
fn body(out: &mut Vec<u8>, text: &str, json: &str, room: usize) {
    let text = clip(text, room.min(2048));
    out.extend_from_slice(text.as_bytes());
    if !json.is_empty() {
        if text.len() + 1 + json.len() <= room {
            out.push(b' ');
            out.extend_from_slice(json.as_bytes());
        } else {
            let note = " (record too long for syslog: see the event file)";
            if text.len() + note.len() <= room {
                out.extend_from_slice(note.as_bytes());
            }
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Writes an RFC 5424 message (no framing) into `out` (cleared first).
pub fn format_rfc5424(
    out: &mut Vec<u8>,
    origin: &Origin,
    severity: u8,
    now_ns: u64,
    msgid: &str,
    text: &str,
    json: &str,
) {
    out.clear();
    let (ts, _) = times(now_ns);
    let pri = u32::from(origin.facility) * 8 + u32::from(severity & 7);
    let mut head = String::with_capacity(96);
    let _ = write!(
        head,
        "<{pri}>1 {ts} {} palisade {} {} - ",
        origin.hostname,
        origin.procid,
        clip(msgid, 32)
    );
    out.extend_from_slice(head.as_bytes());
    body(out, text, json, MAX_MESSAGE.saturating_sub(head.len()));
}

/// Writes the local form (`<PRI>Mmm dd hh:mm:ss palisade[PID]: MSG`) into `out`.
pub fn format_local(
    out: &mut Vec<u8>,
    origin: &Origin,
    severity: u8,
    now_ns: u64,
    text: &str,
    json: &str,
) {
    out.clear();
    let (_, ts) = times(now_ns);
    let pri = u32::from(origin.facility) * 8 + u32::from(severity & 7);
    let head = format!("<{pri}>{ts} palisade[{}]: ", origin.procid);
    out.extend_from_slice(head.as_bytes());
    body(out, text, json, MAX_MESSAGE.saturating_sub(head.len()));
}

/// RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, so a message may hold any byte
/// (a record's newline cannot split it).
pub fn frame_octet_counted(msg: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// Text from a record made safe for one syslog line: control characters become `?`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            facility: DEFAULT_FACILITY_FOR_TESTS,
            hostname: "node-1".into(),
            procid: 4242,
        }
    }
    const DEFAULT_FACILITY_FOR_TESTS: u8 = super::super::url::DEFAULT_FACILITY;
    // 2026-11-22T06:00:00.123456Z
    const T: u64 = 1_795_327_200_123_456_000;

    #[test]
    fn rfc5424_header_and_body() {
        let mut out = Vec::new();
        format_rfc5424(
            &mut out,
            &origin(),
            severity_of(Some(1)),
            T,
            "alert",
            "blocked by rule no-delete",
            r#"{"event_type":"alert"}"#,
        );
        let s = String::from_utf8(out).unwrap();
        // authpriv (10) * 8 + crit (2) = 82.
        assert_eq!(
            s,
            r#"<82>1 2026-11-22T06:00:00.123456Z node-1 palisade 4242 alert - blocked by rule no-delete {"event_type":"alert"}"#
        );
    }

    #[test]
    fn severities_map_from_eve() {
        assert_eq!(severity_of(Some(1)), 2);
        assert_eq!(severity_of(Some(2)), 4);
        assert_eq!(severity_of(Some(3)), 5);
        assert_eq!(severity_of(None), 5);
        assert_eq!(severity_of(Some(9)), 5);
    }

    #[test]
    fn local_form_is_what_syslog3_writes() {
        let mut out = Vec::new();
        let o = Origin {
            facility: 16,
            ..origin()
        };
        format_local(&mut out, &o, WARNING, T, "hello", "");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<132>Nov 22 06:00:00 palisade[4242]: hello"
        );
        // Days are space-padded as in RFC 3164.
        let mut out = Vec::new();
        format_local(&mut out, &o, WARNING, 86_400 * 3 * 1_000_000_000, "x", "");
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains(">Jan  4 00:00:00 ")
        );
    }

    #[test]
    fn a_record_too_long_is_left_out_and_said() {
        let mut out = Vec::new();
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_MESSAGE));
        format_rfc5424(&mut out, &origin(), NOTICE, T, "alert", "summary", &big);
        assert!(out.len() <= MAX_MESSAGE);
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with("summary (record too long for syslog: see the event file)"));
        // A long summary is cut at a character boundary.
        let mut out = Vec::new();
        format_rfc5424(
            &mut out,
            &origin(),
            NOTICE,
            T,
            "alert",
            &"é".repeat(5000),
            "",
        );
        assert!(out.len() <= MAX_MESSAGE);
        assert!(String::from_utf8(out).is_ok());
    }

    #[test]
    fn octet_counting_frames_by_length() {
        let mut out = Vec::new();
        frame_octet_counted(b"<82>1 - - palisade 1 alert - a\nb", &mut out);
        assert_eq!(out, b"32 <82>1 - - palisade 1 alert - a\nb");
        frame_octet_counted(b"", &mut out);
        assert_eq!(out, b"0 ");
        // Two frames back to back split where the counts say.
        let mut stream = Vec::new();
        for m in [&b"hello"[..], "é,ü".as_bytes()] {
            let mut f = Vec::new();
            frame_octet_counted(m, &mut f);
            stream.extend_from_slice(&f);
        }
        assert_eq!(stream, "5 hello5 é,ü".as_bytes());
    }

    #[test]
    fn sanitize_removes_line_breaks() {
        assert_eq!(sanitize("a\nb\r\tc"), "a?b??c");
    }
}
