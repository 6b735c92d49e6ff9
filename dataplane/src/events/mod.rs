//! Events as JSON lines: Suricata 7 EVE records (so every tool that reads EVE reads them
//! as they are), plus Palisade's additions as keys Suricata does not define: workload
//! identity on both ends, the policy's decision in its own terms (`policy_verdict`), the
//! protocol objects Suricata has none for (`grpc`, `sql`, `redis`, `mysql`), why a flow
//! could not be judged (`uninspectable`). PRODUCT.md ("Events") is the contract; the test
//! `dataplane/tests/eve_schema.rs` holds every record of every recorded capture against
//! Suricata 7.0.9's own schema.
//!
//! Workers serialise events into their own buffer (no lock per event); the buffer goes to
//! one writer thread per batch ([`EventWriter`]). A key with no value is left out, as
//! Suricata does: every optional field is skipped when absent, never written as `null`.

pub(crate) mod build;
mod community_id;
mod emit;
pub mod json;
pub mod l7;
pub mod sinks;
mod writer;

pub use community_id::{community_id_v1, write_community_id};
pub use writer::{EventOutput, EventSender, EventTap, EventWriter};

pub(crate) use build::{alert_obj, fill_flow_fields};
pub(crate) use emit::AnomalyLimiter;

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::Serializer;

/// A packet timestamp (ns since the epoch), printed as Suricata prints one:
/// `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000` (microseconds, UTC, numeric offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_nanos() as u64)
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000`.
    pub fn write_to(&self, out: &mut String) {
        out.push_str(self.format().as_str());
    }

    /// The text, formatted on the stack digit by digit: every event carries one to three
    /// timestamps, and `core::fmt` with padding cost ~600 instructions each (a flow record's
    /// three were ~8% of writing it).
    pub fn format(&self) -> TimestampText {
        let secs = self.0 / 1_000_000_000;
        let micros = (self.0 % 1_000_000_000) / 1_000;
        let days = (secs / 86_400) as i64;
        let sod = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let mut b = *b"0000-00-00T00:00:00.000000+0000";
        // Years past 9999 (a timestamp field near u64::MAX ns is year 2554) never occur;
        // the four digits keep the shape whatever the value.
        put_digits(&mut b[0..4], y.clamp(0, 9999) as u64);
        put_digits(&mut b[5..7], u64::from(m));
        put_digits(&mut b[8..10], u64::from(d));
        put_digits(&mut b[11..13], sod / 3600);
        put_digits(&mut b[14..16], (sod / 60) % 60);
        put_digits(&mut b[17..19], sod % 60);
        put_digits(&mut b[20..26], micros);
        TimestampText(b)
    }
}

/// A formatted [`Timestamp`] (31 ASCII bytes).
pub struct TimestampText([u8; 31]);

impl TimestampText {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Writes `v`'s last `dst.len()` decimal digits into `dst`, zero-padded.
fn put_digits(dst: &mut [u8], mut v: u64) {
    for c in dst.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
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
        // On the stack: writing an event allocates nothing for its timestamps.
        s.serialize_str(self.format().as_str())
    }
}

/// An address as EVE writes it, formatted on the stack: IPv4 digit by digit (the common
/// case, a quarter of the cost of `Display`), IPv6 through `Display` (RFC 5952 form).
pub fn ser_ip<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
    match ip {
        Some(IpAddr::V4(v4)) => {
            let mut buf = [0u8; 15];
            let mut n = 0usize;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    if let Some(c) = buf.get_mut(n) {
                        *c = b'.';
                    }
                    n += 1;
                }
                let digits: usize = match octet {
                    0..=9 => 1,
                    10..=99 => 2,
                    _ => 3,
                };
                if let Some(dst) = buf.get_mut(n..n + digits) {
                    put_digits(dst, u64::from(octet));
                }
                n += digits;
            }
            s.serialize_str(
                std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default(),
            )
        }
        Some(IpAddr::V6(v6)) => s.collect_str(v6),
        None => s.serialize_none(),
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

/// `app_proto` as Suricata names it (`pgsql`; `failed` when no detector recognised the
/// bytes), and Palisade's own names where Suricata has none (`grpc`, `mysql`, `redis`).
pub fn app_proto_name(app: proto_parsers::AppProto) -> &'static str {
    use proto_parsers::AppProto;
    match app {
        AppProto::Postgres => "pgsql",
        AppProto::Tcp | AppProto::Udp => "failed",
        other => other.as_str(),
    }
}

/// A workload end of a flow (Palisade's `src_workload` / `dest_workload`).
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadObj<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "ser_pairs")]
    pub annotations: &'a [(Box<str>, Box<str>)],
}

fn ser_pairs<S: Serializer>(pairs: &&[(Box<str>, Box<str>)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (&**k, &**v)))
}

/// The policy's decision in Palisade's terms (`policy_verdict`).
#[derive(Clone, Debug, Serialize)]
pub struct PolicyVerdictObj<'a> {
    /// allow | deny | alert
    pub action: &'static str,
    /// The rule's id; "default" when the mode decided; "uninspectable" for the policy's
    /// `onUninspectable` decision.
    pub rule: &'a str,
    pub policy_version: u64,
    pub mode: &'static str,
    /// Whether the packet was (or, offline, would have been) dropped.
    pub enforced: bool,
    /// On a flow record: the flow's packets that were dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_pkts: Option<u64>,
    /// On a flow record of a passive tap, instead of `dropped_pkts`: the flow's packets
    /// an inline Palisade would have dropped (a tap never drops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_drop_pkts: Option<u64>,
}

/// A shadow (candidate) policy's decision where it disagrees with the active one
/// (`shadow` records; the active decision is the record's `policy_verdict`).
#[derive(Clone, Debug, Serialize)]
pub struct ShadowObj<'a> {
    /// allow | deny | alert
    pub action: &'static str,
    pub rule: &'a str,
    pub policy_version: u64,
}

/// Suricata's IPS `verdict`, on records of what was dropped inline.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct IpsVerdict {
    /// `drop`
    pub action: &'static str,
    #[serde(rename = "reject-target", skip_serializing_if = "Option::is_none")]
    pub reject_target: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<[&'static str; 1]>,
}

impl IpsVerdict {
    /// A drop, with TCP resets to both ends when `reset`.
    pub const fn drop(reset: bool) -> Self {
        if reset {
            IpsVerdict {
                action: "drop",
                reject_target: Some("both"),
                reject: Some(["tcp-reset"]),
            }
        } else {
            IpsVerdict {
                action: "drop",
                reject_target: None,
                reject: None,
            }
        }
    }
}

/// Suricata's `alert` object.
#[derive(Clone, Debug, Serialize)]
pub struct AlertObj {
    /// `blocked` when Palisade dropped or reset it, `allowed` otherwise.
    pub action: &'static str,
    pub gid: u32,
    /// Stable for a rule id across reloads ([`signature_id`]).
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    /// segmentation | uninspectable | anomaly | quarantine
    pub category: &'static str,
    /// 1 (critical, high) to 3 (low).
    pub severity: u8,
}

/// The `signature_id` of a rule (or of a pseudo-rule: `default`, `uninspectable:<cause>`):
/// FNV-1a of its id, in the range Suricata leaves to local rules (1,000,000 and up), so it
/// is the same in every run and every policy version that keeps the id.
pub fn signature_id(rule: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in rule.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    1_000_000 + h % 1_000_000_000
}

/// Suricata's 1-3 severity from a rule's.
pub fn severity_number(s: control::Severity) -> u8 {
    match s {
        control::Severity::Critical | control::Severity::High => 1,
        control::Severity::Medium => 2,
        control::Severity::Low => 3,
    }
}

/// Why a flow could not be judged (Palisade's `uninspectable`), on the events of a flow
/// the policy's `onUninspectable` decided.
#[derive(Clone, Debug, Serialize)]
pub struct UninspectableObj {
    /// `control::Uninspectable::as_str` (gap, parser_limit, ambiguous_framing, ...).
    pub cause: &'static str,
    /// What exactly (the anomaly or stop reason).
    pub detail: &'static str,
}

/// Suricata's `flow` object.
#[derive(Clone, Debug, Serialize)]
pub struct FlowObj {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Whole seconds between the first and last packet.
    pub age: u64,
    /// new | established | closed
    pub state: &'static str,
    /// Why the record was written: timeout | forced | shutdown.
    pub reason: &'static str,
    pub alerted: bool,
}

/// Suricata's `tcp` object on a flow record, plus Palisade's `gap_bytes`.
#[derive(Clone, Debug, Serialize)]
pub struct TcpObj {
    /// EVE's vocabulary: syn_sent, syn_recv, established, closed...
    pub state: &'static str,
    /// Bytes missing in the client's / server's stream (never seen by the inspector).
    pub ts_gap: bool,
    pub tc_gap: bool,
    pub gap_bytes: u64,
}

/// Suricata's `anomaly` object.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyObj<'a> {
    /// decode | stream | defrag | applayer
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
}

/// Palisade's `policy` object (event type `policy`: a version loaded or rejected).
#[derive(Clone, Debug, Serialize)]
pub struct PolicyObj<'a> {
    /// loaded | rejected | skipped (a reload of the startup file while a policy applied
    /// over the control socket runs: it stays)
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// `shadow` for a candidate policy (`--shadow`, `palisadectl shadow apply`), which
    /// judges beside the active one and never enforces; absent for the active policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
}

/// One event. Borrowed fields keep construction allocation-free apart from the
/// community id (computed when an event is written) and an alert's signature.
#[derive(Clone, Debug, Serialize)]
pub struct Event<'a> {
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_ip")]
    pub src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_ip")]
    pub dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<IpsVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_verdict: Option<PolicyVerdictObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_workload: Option<WorkloadObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_workload: Option<WorkloadObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uninspectable: Option<UninspectableObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalyObj<'a>>,
    /// Palisade's detail of an anomaly (which limit, what exactly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly_detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowObj<'a>>,
    /// The transaction's protocol object(s), merged into the event (`http`, `dns`, `pgsql`
    /// and `sql`, ...).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub l7: Option<&'a l7::L7Record>,
}

impl<'a> Event<'a> {
    /// An event with only the timestamp and type set.
    pub fn new(timestamp: Timestamp, event_type: &'static str) -> Self {
        Event {
            timestamp,
            flow_id: None,
            event_type,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            app_proto: None,
            tx_id: None,
            community_id: None,
            alert: None,
            verdict: None,
            policy_verdict: None,
            src_workload: None,
            dest_workload: None,
            uninspectable: None,
            capture_file: None,
            flow: None,
            tcp: None,
            anomaly: None,
            anomaly_detail: None,
            policy: None,
            shadow: None,
            l7: None,
        }
    }

    /// Appends the event as one JSON line.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        // Writing these types cannot fail (no maps with keys other than strings); were it
        // to, the partial line is taken back rather than left to corrupt the stream.
        let start = out.len();
        if json::write(out, self).is_ok() {
            out.push(b'\n');
        } else {
            out.truncate(start);
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
        assert_eq!(s, "1970-01-01T00:00:00.000000+0000");
        s.clear();
        // 2026-11-22T06:00:00.123456Z
        Timestamp(1_795_327_200_123_456_789).write_to(&mut s);
        assert_eq!(s, "2026-11-22T06:00:00.123456+0000");
        s.clear();
        Timestamp(951_782_400_000_000_000).write_to(&mut s); // leap day
        assert_eq!(s, "2000-02-29T00:00:00.000000+0000");
    }

    #[test]
    fn timestamps_match_the_formatted_form() {
        // The digit-by-digit form against core::fmt's, across centuries and leap days.
        for ns in [
            0u64,
            1,
            999_999_999,
            86_399_999_999_999,
            951_868_799_999_999_000,
            4_102_444_800_000_001_000,
            u64::MAX,
        ] {
            let secs = ns / 1_000_000_000;
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let sod = secs % 86_400;
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60,
                (ns % 1_000_000_000) / 1_000
            );
            assert_eq!(Timestamp(ns).format().as_str(), want, "{ns}");
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        #[derive(Serialize)]
        struct A {
            #[serde(serialize_with = "ser_ip")]
            ip: Option<IpAddr>,
        }
        let mut x = 0x9e37_79b9u32;
        let mut addrs: Vec<IpAddr> = ["0.0.0.0", "255.255.255.255", "10.0.1.5", "1.22.133.9"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            addrs.push(IpAddr::V4(x.into()));
        }
        addrs.push("fe80::1".parse().unwrap());
        addrs.push("2001:db8::ff00:42:8329".parse().unwrap());
        for ip in addrs {
            let out = serde_json::to_string(&A { ip: Some(ip) }).unwrap();
            assert_eq!(out, format!("{{\"ip\":\"{ip}\"}}"));
        }
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
        e.alert = Some(AlertObj {
            action: "blocked",
            gid: 1,
            signature_id: signature_id("default"),
            rev: 1,
            signature: "palisade default-deny web->orders".into(),
            category: "segmentation",
            severity: 1,
        });
        e.verdict = Some(IpsVerdict::drop(true));
        e.policy_verdict = Some(PolicyVerdictObj {
            action: "deny",
            rule: "default",
            policy_version: 3,
            mode: "protect",
            enforced: true,
            dropped_pkts: None,
            would_drop_pkts: None,
        });
        let mut out = Vec::new();
        e.write_line(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], "2026-11-22T06:00:00.123456+0000");
        assert_eq!(v["src_port"], 40112);
        // Absent values are left out, never null.
        assert!(v.get("dest_workload").is_none());
        assert!(v.get("capture_file").is_none());
        assert!(v["src_workload"].get("image").is_none());
        assert_eq!(v["src_workload"]["group"], "web");
        assert_eq!(v["alert"]["severity"], 1);
        assert_eq!(v["alert"]["action"], "blocked");
        assert_eq!(v["verdict"]["reject-target"], "both");
        assert_eq!(v["verdict"]["reject"][0], "tcp-reset");
        assert_eq!(v["policy_verdict"]["policy_version"], 3);
        assert!(v["policy_verdict"].get("dropped_pkts").is_none());
        assert!(v.get("flow").is_none());
        assert_eq!(*out.last().unwrap(), b'\n');
    }

    #[test]
    fn signature_ids_are_stable_and_in_the_local_range() {
        assert_eq!(signature_id("web-orders"), signature_id("web-orders"));
        assert_ne!(signature_id("web-orders"), signature_id("web-order"));
        for r in [
            "",
            "default",
            "uninspectable:gap",
            "a-very-long-rule-id-indeed",
        ] {
            assert!(signature_id(r) >= 1_000_000);
        }
    }
}
