//! Events as JSON lines, field names after Suricata's EVE so SIEM pipelines take them as
//! they are, plus workload identity on both ends (as Hubble does).
//!
//! Workers serialise events into their own buffer (no lock per event); the buffer goes to
//! one writer thread per batch ([`EventWriter`]). Common fields are always present, `null`
//! when not known; the type-specific object (`flow`, `anomaly`, `policy`, ...) only on its
//! own event type.

mod community_id;
pub mod l7;
mod writer;

pub use community_id::{community_id_v1, write_community_id};
pub use writer::{EventOutput, EventSender, EventTap, EventWriter};

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;
use serde::ser::Serializer;

/// A packet timestamp (ns since the epoch) printed as RFC 3339 with microseconds, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_nanos() as u64)
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
    pub fn write_to(&self, out: &mut String) {
        let secs = self.0 / 1_000_000_000;
        let micros = (self.0 % 1_000_000_000) / 1_000;
        let days = (secs / 86_400) as i64;
        let sod = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = String::with_capacity(27);
        self.write_to(&mut buf);
        s.serialize_str(&buf)
    }
}

/// `proto` as EVE names it.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "IPv6-ICMP",
        47 => "GRE",
        132 => "SCTP",
        _ => "OTHER",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadObj<'a> {
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "ser_pairs")]
    pub annotations: &'a [(Box<str>, Box<str>)],
}

fn ser_pairs<S: Serializer>(pairs: &&[(Box<str>, Box<str>)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (&**k, &**v)))
}

#[derive(Clone, Debug, Serialize)]
pub struct VerdictObj<'a> {
    /// allow | deny | alert
    pub action: &'static str,
    /// The rule's id, or "default" when the mode decided.
    pub rule: &'a str,
    pub policy_version: u64,
    pub mode: &'static str,
    /// Whether the packet was (or, offline, would have been) dropped.
    pub enforced: bool,
}

/// Why a flow could not be judged, on the events of a flow the policy's
/// `onUninspectable` decided.
#[derive(Clone, Debug, Serialize)]
pub struct UninspectableObj {
    /// `control::Uninspectable::as_str` (gap, parser_limit, ambiguous_framing, ...).
    pub cause: &'static str,
    /// What exactly (the anomaly or stop reason).
    pub detail: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowObj {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Seconds between the first and last packet.
    pub age: f64,
    /// new | established | closed (EVE), plus the TCP detail in `tcp_state`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_state: Option<&'static str>,
    /// Why the record was written: timeout | forced | reused | shutdown.
    pub reason: &'static str,
    pub alerted: bool,
    pub dropped_pkts: u64,
    /// Reassembly gaps (bytes the inspector never saw).
    pub gap_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AnomalyObj<'a> {
    /// decode | stream | defrag | applayer | limit
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyObj<'a> {
    /// loaded | rejected
    pub status: &'static str,
    pub version: Option<u64>,
    pub name: Option<&'a str>,
    pub source: &'a str,
    pub rules: Option<usize>,
    pub error: Option<&'a str>,
}

/// One event. Borrowed fields keep construction allocation-free apart from the
/// community id, which is computed only when an event is written.
#[derive(Clone, Debug, Serialize)]
pub struct Event<'a> {
    pub timestamp: Timestamp,
    pub event_type: &'static str,
    pub flow_id: Option<u64>,
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dest_ip: Option<IpAddr>,
    pub dest_port: Option<u16>,
    pub proto: Option<&'static str>,
    pub app_proto: Option<&'static str>,
    pub community_id: Option<&'a str>,
    pub src_workload: Option<WorkloadObj<'a>>,
    pub dest_workload: Option<WorkloadObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uninspectable: Option<UninspectableObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_file: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalyObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyObj<'a>>,
    /// The transaction's protocol object(s), merged into the event (`http`, `dns`, ...).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub l7: Option<&'a l7::L7Record>,
}

impl<'a> Event<'a> {
    /// An event with only the timestamp and type set.
    pub fn new(timestamp: Timestamp, event_type: &'static str) -> Self {
        Event {
            timestamp,
            event_type,
            flow_id: None,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            app_proto: None,
            community_id: None,
            src_workload: None,
            dest_workload: None,
            verdict: None,
            severity: None,
            uninspectable: None,
            capture_file: None,
            flow: None,
            anomaly: None,
            policy: None,
            l7: None,
        }
    }

    /// Appends the event as one JSON line.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        // Serialising these types cannot fail: no maps with non-string keys, no floats that
        // are not finite (age is a difference of timestamps).
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let mut s = String::new();
        Timestamp(0).write_to(&mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        s.clear();
        // 2026-11-22T06:00:00.123456Z
        Timestamp(1_795_327_200_123_456_789).write_to(&mut s);
        assert_eq!(s, "2026-11-22T06:00:00.123456Z");
        s.clear();
        Timestamp(951_782_400_000_000_000).write_to(&mut s); // leap day
        assert_eq!(s, "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn alert_shape_matches_product_md() {
        let mut e = Event::new(Timestamp(1_795_327_200_123_456_000), "alert");
        e.flow_id = Some(1234);
        e.src_ip = Some("10.0.1.5".parse().unwrap());
        e.src_port = Some(40112);
        e.dest_ip = Some("10.0.2.7".parse().unwrap());
        e.dest_port = Some(8080);
        e.proto = Some("TCP");
        e.app_proto = Some("http");
        e.community_id = Some("1:abc");
        e.src_workload = Some(WorkloadObj {
            name: Some("frontend-7d9f"),
            namespace: Some("shop"),
            group: Some("web"),
            image: None,
            annotations: &[],
        });
        e.verdict = Some(VerdictObj {
            action: "deny",
            rule: "default",
            policy_version: 3,
            mode: "protect",
            enforced: true,
        });
        e.severity = Some("high");
        e.capture_file = Some(None);
        let mut out = Vec::new();
        e.write_line(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], "2026-11-22T06:00:00.123456Z");
        assert_eq!(v["src_port"], 40112);
        assert_eq!(v["dest_workload"], serde_json::Value::Null);
        assert_eq!(v["src_workload"]["group"], "web");
        assert!(v["src_workload"].get("image").is_none());
        assert_eq!(v["verdict"]["policy_version"], 3);
        assert_eq!(v["capture_file"], serde_json::Value::Null);
        assert!(v.get("flow").is_none());
        assert_eq!(*out.last().unwrap(), b'\n');
    }
}
