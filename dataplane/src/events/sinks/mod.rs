//! Alert sinks (`--alert-sink URL`, repeatable): alerts, and only alerts, also go to syslog
//! receivers and webhooks, besides the event file.
//!
//! Off the packet path: the event writer thread hands each buffer it has written to
//! [`AlertSinks::offer`], which picks the `alert` lines, applies `--alert-rate`, and puts
//! each record on every sink's bounded queue without waiting: a full queue (a slow or dead
//! receiver) drops the record for that sink and counts it. Each sink has its own thread
//! (`palisade-sink-N`) that formats and delivers, with bounded retries and backoff. A
//! worker never waits on a sink and the event file always gets its copy.
//!
//! `--alert-rate N` keeps at most N alerts a second per rule (`policy_verdict.rule`, else
//! `alert.signature_id`); what it suppressed is summarised every
//! [`SUMMARY_EVERY`] and at exit, to the log and to the sinks as a record of its own:
//!
//! ```json
//! {"timestamp":"...","event_type":"alert_summary","alert_summary":{"interval_seconds":10,
//!  "rate_limit":1,"suppressed":9,"rules":[{"rule":"no-delete","suppressed":9}]}}
//! ```
//!
//! (`alert_summary` is not an EVE event type, so an EVE reader cannot take it for an
//! alert; syslog carries it with MSGID `alert_summary`.)
//!
//! At exit [`AlertSinks::finish`] waits for the queues to drain, up to a deadline, and
//! counts what was left as `undelivered`.

mod deliver;
pub mod rate;
pub mod syslog;
pub mod url;
pub mod webhook;

pub use deliver::{Item, SinkStats};
pub use url::{SinkTarget, SinkUrl, UrlError, parse_sink_url, unique_labels};

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError, bounded};
use serde_json::Value;

use self::deliver::SyslogTarget;
use self::rate::RateLimiter;

/// Records queued per sink.
pub const QUEUE: usize = 1024;
/// How often a rate-limit summary is sent (when something was suppressed).
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// How long `replay` waits at exit for the sinks to deliver.
pub const REPLAY_FLUSH: Duration = Duration::from_secs(10);
/// How long `run` waits at shutdown (a stopping daemon should not hang on a dead receiver).
pub const LIVE_FLUSH: Duration = Duration::from_secs(2);

/// What `--alert-sink`, `--alert-sink-ca` and `--alert-rate` asked for.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub urls: Vec<SinkUrl>,
    /// Extra CA certificates (DER) for `https` webhooks, besides Mozilla's roots.
    pub ca: Vec<Vec<u8>>,
    /// At most this many alerts a second per rule to the sinks.
    pub rate: Option<u32>,
    /// How long to wait at exit for queued records to be delivered.
    pub flush_deadline: Duration,
}

/// Every sink's counters and the rate limiter's, shared with metrics, status and the
/// replay summary.
#[derive(Debug, Default)]
pub struct AlertSinkStats {
    pub sinks: Vec<Arc<SinkStats>>,
    /// Alerts `--alert-rate` kept from the sinks.
    pub rate_suppressed: AtomicU64,
    /// Alerts counted in the limiter's shared bucket (too many rules tracked).
    pub rate_rules_cut: AtomicU64,
    pub rate: Option<u32>,
}

impl AlertSinkStats {
    /// The figures as JSON (status, replay summary): one object per sink.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.sinks
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "sink": s.label,
                        "sent": s.sent.load(Ordering::Relaxed),
                        "failed": s.failed.load(Ordering::Relaxed),
                        "dropped": s.dropped.load(Ordering::Relaxed),
                        "queue_depth": s.queue_depth(),
                        "undelivered": s.undelivered.load(Ordering::Relaxed),
                    })
                })
                .collect(),
        )
    }
}

/// The writer thread's side of the sinks.
pub struct AlertSinks {
    senders: Vec<Sender<Arc<Item>>>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<AlertSinkStats>,
    limiter: Option<RateLimiter>,
    started: Instant,
    last_summary: Instant,
    flush_deadline: Duration,
}

impl AlertSinks {
    /// Starts one thread per sink.
    pub fn start(opts: SinkOptions) -> std::io::Result<Self> {
        let mut urls = opts.urls;
        unique_labels(&mut urls);
        let agent = urls
            .iter()
            .any(|u| matches!(u.target, SinkTarget::Webhook { .. }))
            .then(|| webhook::agent(&opts.ca));
        let mut senders = Vec::with_capacity(urls.len());
        let mut threads = Vec::with_capacity(urls.len());
        let mut stats = Vec::with_capacity(urls.len());
        for (i, u) in urls.into_iter().enumerate() {
            let (tx, rx) = bounded::<Arc<Item>>(QUEUE);
            let st = Arc::new(SinkStats::new(u.label.clone(), rx.clone()));
            let st2 = Arc::clone(&st);
            let origin = syslog::Origin::new(u.facility);
            let builder = std::thread::Builder::new().name(format!("palisade-sink-{i}"));
            let handle = match u.target {
                SinkTarget::SyslogUdp { host, port } => builder.spawn(move || {
                    deliver::run_syslog(SyslogTarget::Udp(host, port), origin, rx, st2)
                })?,
                SinkTarget::SyslogTcp { host, port } => builder.spawn(move || {
                    deliver::run_syslog(SyslogTarget::Tcp(host, port), origin, rx, st2)
                })?,
                SinkTarget::Unix { path } => builder.spawn(move || {
                    deliver::run_syslog(SyslogTarget::Unix(path), origin, rx, st2)
                })?,
                SinkTarget::Webhook { url, auth, .. } => {
                    let agent = agent.clone().unwrap_or_else(|| webhook::agent(&opts.ca));
                    builder.spawn(move || webhook::run_webhook(url, auth, agent, rx, st2))?
                }
            };
            senders.push(tx);
            threads.push(handle);
            stats.push(st);
        }
        let now = Instant::now();
        Ok(AlertSinks {
            senders,
            threads,
            stats: Arc::new(AlertSinkStats {
                sinks: stats,
                rate: opts.rate,
                ..Default::default()
            }),
            limiter: opts.rate.map(RateLimiter::new),
            started: now,
            last_summary: now,
            flush_deadline: opts.flush_deadline,
        })
    }

    pub fn stats(&self) -> Arc<AlertSinkStats> {
        Arc::clone(&self.stats)
    }

    /// Hands the alert lines of a buffer just written to the event file to the sinks.
    pub fn offer(&mut self, buf: &[u8]) {
        for line in buf.split(|&b| b == b'\n') {
            if is_alert_line(line) {
                self.alert(line);
            }
        }
        self.tick();
    }

    fn alert(&mut self, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if v.get("event_type").and_then(Value::as_str) != Some("alert") {
            return;
        }
        if let Some(l) = &mut self.limiter {
            let sec = self.started.elapsed().as_secs();
            let admitted = l.admit(&rule_of(&v), sec);
            self.stats
                .rate_suppressed
                .store(l.suppressed_total, Ordering::Relaxed);
            self.stats
                .rate_rules_cut
                .store(l.rules_cut, Ordering::Relaxed);
            if !admitted {
                return;
            }
        }
        let item = Item {
            json: text.into(),
            text: describe(&v).into(),
            severity: syslog::severity_of(v.pointer("/alert/severity").and_then(Value::as_u64)),
            msgid: "alert",
        };
        self.fan_out(Arc::new(item));
    }

    /// Queues a record on every sink, never waiting: a full queue drops it for that sink.
    fn fan_out(&self, item: Arc<Item>) {
        for (tx, st) in self.senders.iter().zip(&self.stats.sinks) {
            match tx.try_send(Arc::clone(&item)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    st.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Called by the writer at least every second: sends the rate-limit summary when due.
    pub fn tick(&mut self) {
        if self.limiter.is_some() && self.last_summary.elapsed() >= SUMMARY_EVERY {
            self.summarise();
        }
    }

    fn summarise(&mut self) {
        let Some(l) = &mut self.limiter else { return };
        let interval = self.last_summary.elapsed();
        self.last_summary = Instant::now();
        let rules = l.take_summary(self.started.elapsed().as_secs());
        if rules.is_empty() {
            return;
        }
        let rate = self.stats.rate.unwrap_or(0);
        let (json, text) = summary_record(&rules, interval, rate);
        tracing::warn!("{text}");
        self.fan_out(Arc::new(Item {
            json: json.into(),
            text: text.into(),
            severity: syslog::WARNING,
            msgid: "alert_summary",
        }));
    }

    /// The last summary, then waits (up to the flush deadline) for every queue to drain.
    /// What is left is counted `undelivered` and logged; threads still busy are left
    /// behind (the process is exiting).
    pub fn finish(mut self) {
        self.summarise();
        self.senders.clear();
        let until = Instant::now() + self.flush_deadline;
        while Instant::now() < until && self.threads.iter().any(|t| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for s in &self.stats.sinks {
            s.abandon.store(true, Ordering::Relaxed);
        }
        for (t, s) in std::mem::take(&mut self.threads)
            .into_iter()
            .zip(&self.stats.sinks)
        {
            if t.is_finished() {
                let _ = t.join();
            }
            let left = s.queue_depth() as u64 + s.in_flight.load(Ordering::Relaxed);
            s.undelivered.store(left, Ordering::Relaxed);
            if left > 0 {
                tracing::warn!(
                    sink = %s.label,
                    "{left} alert record(s) not delivered within {:?} at exit",
                    self.flush_deadline
                );
            }
        }
    }
}

/// Whether a line is an alert record: `event_type` comes within the first keys of every
/// record (after `timestamp` and `flow_id`), so only the line's start is searched; the
/// caller parses the line to be sure. Inside a JSON string every `"` is escaped, so the
/// pattern cannot match a string's content.
fn is_alert_line(line: &[u8]) -> bool {
    const PAT: &[u8] = b"\"event_type\":\"alert\"";
    let head = line.get(..line.len().min(160)).unwrap_or_default();
    head.windows(PAT.len()).any(|w| w == PAT)
}

/// The rule an alert counts against for `--alert-rate`.
fn rule_of(v: &Value) -> String {
    if let Some(r) = v.pointer("/policy_verdict/rule").and_then(Value::as_str) {
        return r.to_string();
    }
    match v.pointer("/alert/signature_id") {
        Some(Value::Number(n)) => format!("sid:{n}"),
        _ => "-".into(),
    }
}

/// At most 256 characters of a record's string, safe for one syslog line.
fn field(v: &Value, ptr: &str) -> Option<String> {
    let s = v.pointer(ptr)?;
    let s = match s {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let s: String = s.chars().take(256).collect();
    Some(syslog::sanitize(&s))
}

/// One end of the alert: `client-0 (namespace shop, group client) 10.0.0.1:40112`.
fn end(v: &Value, side: &str, ip: &str, port: &str) -> String {
    let mut o = String::new();
    let w = format!("/{side}_workload");
    if let Some(name) = field(v, &format!("{w}/name")) {
        o.push_str(&name);
        let mut attrs = Vec::new();
        if let Some(ns) = field(v, &format!("{w}/namespace")) {
            attrs.push(format!("namespace {ns}"));
        }
        if let Some(g) = field(v, &format!("{w}/group")) {
            attrs.push(format!("group {g}"));
        }
        if !attrs.is_empty() {
            let _ = write!(o, " ({})", attrs.join(", "));
        }
        o.push(' ');
    }
    match (field(v, ip), field(v, port)) {
        (Some(a), Some(p)) if a.contains(':') => {
            let _ = write!(o, "[{a}]:{p}");
        }
        (Some(a), Some(p)) => {
            let _ = write!(o, "{a}:{p}");
        }
        (Some(a), None) => o.push_str(&a),
        _ => o.push('?'),
    }
    o
}

/// The human summary of an alert that syslog messages start with: the action, the rule,
/// the signature, both workloads and addresses, the protocol.
pub fn describe(v: &Value) -> String {
    let mut o = String::with_capacity(256);
    let action = field(v, "/alert/action").unwrap_or_else(|| "alert".into());
    let rule = field(v, "/policy_verdict/rule").unwrap_or_else(|| "-".into());
    let _ = write!(o, "{action} by rule {rule}");
    if let Some(sig) = field(v, "/alert/signature") {
        let _ = write!(o, ": \"{sig}\"");
    }
    let mut attrs = Vec::new();
    if let Some(sid) = field(v, "/alert/signature_id") {
        attrs.push(format!("sid {sid}"));
    }
    if let Some(s) = field(v, "/alert/severity") {
        attrs.push(format!("severity {s}"));
    }
    if let Some(c) = field(v, "/alert/category") {
        attrs.push(format!("category {c}"));
    }
    if let Some(p) = field(v, "/policy_verdict/policy_version") {
        attrs.push(format!("policy v{p}"));
    }
    if !attrs.is_empty() {
        let _ = write!(o, " ({})", attrs.join(", "));
    }
    let _ = write!(
        o,
        " from {} to {}",
        end(v, "src", "/src_ip", "/src_port"),
        end(v, "dest", "/dest_ip", "/dest_port")
    );
    match (field(v, "/proto"), field(v, "/app_proto")) {
        (Some(p), Some(a)) => {
            let _ = write!(o, " {p}/{a}");
        }
        (Some(p), None) => {
            let _ = write!(o, " {p}");
        }
        _ => {}
    }
    if let (Some(m), Some(u)) = (field(v, "/http/http_method"), field(v, "/http/url")) {
        let _ = write!(o, " {m} {u}");
    }
    o
}

/// The `alert_summary` record and its log/syslog line.
fn summary_record(rules: &[(String, u64)], interval: Duration, rate: u32) -> (String, String) {
    let total: u64 = rules.iter().map(|(_, n)| n).sum();
    let secs = interval.as_secs_f64().round() as u64;
    let mut ts = String::with_capacity(32);
    crate::events::Timestamp::now().write_to(&mut ts);
    // At most 100 rules by name in one record; the total counts them all.
    let shown = &rules[..rules.len().min(100)];
    let json = serde_json::json!({
        "timestamp": ts,
        "event_type": "alert_summary",
        "alert_summary": {
            "interval_seconds": secs,
            "rate_limit": rate,
            "suppressed": total,
            "rules": shown.iter().map(|(r, n)| serde_json::json!({"rule": r, "suppressed": n})).collect::<Vec<_>>(),
            "rules_not_listed": rules.len() - shown.len(),
        }
    })
    .to_string();
    let list: Vec<String> = rules
        .iter()
        .take(20)
        .map(|(r, n)| format!("{} {n}", syslog::sanitize(r)))
        .collect();
    let more = if rules.len() > 20 {
        format!(" and {} more rule(s)", rules.len() - 20)
    } else {
        String::new()
    };
    let text = format!(
        "alert rate limit: {total} alert(s) kept from the sinks over the last {secs} s (--alert-rate {rate} a second per rule): {}{more}",
        list.join(", ")
    );
    (json, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = r#"{"timestamp":"2026-11-22T06:00:00.123456+0000","flow_id":7,"event_type":"alert","src_ip":"10.99.1.2","src_port":40112,"dest_ip":"10.99.2.2","dest_port":80,"proto":"TCP","app_proto":"http","alert":{"action":"blocked","gid":1,"signature_id":2041,"rev":1,"signature":"palisade deny no-delete","category":"segmentation","severity":1},"http":{"http_method":"DELETE","url":"/api/orders/1"},"policy_verdict":{"action":"deny","rule":"no-delete","policy_version":1,"mode":"protect","enforced":true},"src_workload":{"name":"client-0","namespace":"shop","group":"client"},"dest_workload":{"name":"server-0","namespace":"shop","group":"server"}}"#;

    #[test]
    fn the_summary_names_the_rule_both_workloads_and_the_signature() {
        let v: Value = serde_json::from_str(ALERT).unwrap();
        assert_eq!(
            describe(&v),
            "blocked by rule no-delete: \"palisade deny no-delete\" (sid 2041, severity 1, category segmentation, policy v1) from client-0 (namespace shop, group client) 10.99.1.2:40112 to server-0 (namespace shop, group server) 10.99.2.2:80 TCP/http DELETE /api/orders/1"
        );
        assert_eq!(rule_of(&v), "no-delete");
        // No workload, IPv6, a line break smuggled in a URL.
        let v: Value = serde_json::from_str(
            r#"{"event_type":"alert","src_ip":"fd00::1","src_port":1,"dest_ip":"fd00::2","http":{"http_method":"GET","url":"/a\nb"},"alert":{"signature_id":9}}"#,
        )
        .unwrap();
        let d = describe(&v);
        assert_eq!(
            d,
            "alert by rule - (sid 9) from [fd00::1]:1 to fd00::2 GET /a?b"
        );
        assert_eq!(rule_of(&v), "sid:9");
    }

    #[test]
    fn only_alert_lines_are_picked() {
        assert!(is_alert_line(ALERT.as_bytes()));
        assert!(!is_alert_line(
            br#"{"timestamp":"x","event_type":"alerts"}"#
        ));
        assert!(!is_alert_line(br#"{"timestamp":"x","event_type":"flow"}"#));
        // The pattern inside a string is escaped, so never seen.
        assert!(!is_alert_line(
            br#"{"event_type":"http","http":{"url":"\"event_type\":\"alert\""}}"#
        ));
    }

    #[test]
    fn the_summary_record_is_not_an_eve_alert() {
        let (json, text) = summary_record(
            &[("no-delete".into(), 9), ("other".into(), 1)],
            Duration::from_secs(10),
            1,
        );
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event_type"], "alert_summary");
        assert_eq!(v["alert_summary"]["suppressed"], 10);
        assert_eq!(v["alert_summary"]["rules"][0]["rule"], "no-delete");
        assert!(text.contains("10 alert(s) kept from the sinks"), "{text}");
        assert!(text.contains("no-delete 9, other 1"), "{text}");
    }

    /// The hub end to end with a webhook that nobody answers and a syslog UDP receiver:
    /// the rate limit holds, full queues drop and count, finish reports what is left.
    #[test]
    fn rate_limit_and_fan_out_to_a_udp_receiver() {
        let rx_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx_sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let port = rx_sock.local_addr().unwrap().port();
        let mut sinks = AlertSinks::start(SinkOptions {
            urls: vec![
                parse_sink_url(&format!("syslog://127.0.0.1:{port}?facility=local0")).unwrap(),
            ],
            ca: Vec::new(),
            rate: Some(1),
            flush_deadline: Duration::from_secs(5),
        })
        .unwrap();
        let stats = sinks.stats();
        let mut buf = Vec::new();
        for _ in 0..10 {
            buf.extend_from_slice(ALERT.as_bytes());
            buf.push(b'\n');
            buf.extend_from_slice(br#"{"timestamp":"x","event_type":"flow"}"#);
            buf.push(b'\n');
        }
        sinks.offer(&buf);
        assert_eq!(stats.rate_suppressed.load(Ordering::Relaxed), 9);
        sinks.finish();
        let mut got = Vec::new();
        let mut b = [0u8; 9000];
        while let Ok(n) = rx_sock.recv(&mut b) {
            got.push(String::from_utf8_lossy(&b[..n]).to_string());
            if got.len() == 2 {
                break;
            }
        }
        assert_eq!(got.len(), 2, "{got:?}");
        // local0 (16) * 8 + crit (2) = 130.
        assert!(got[0].starts_with("<130>1 "), "{}", got[0]);
        assert!(got[0].contains(" palisade "), "{}", got[0]);
        assert!(
            got[0].contains(" alert - blocked by rule no-delete"),
            "{}",
            got[0]
        );
        assert!(got[0].ends_with(ALERT), "{}", got[0]);
        // The summary at exit: 132 = local0 + warning.
        assert!(got[1].starts_with("<132>1 "), "{}", got[1]);
        assert!(
            got[1].contains(" alert_summary - alert rate limit: 9 alert(s)"),
            "{}",
            got[1]
        );
        let s = &stats.sinks[0];
        assert_eq!(s.sent.load(Ordering::Relaxed), 2);
        assert_eq!(s.undelivered.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        // A webhook to a port nothing listens on: its thread is busy retrying the first
        // batch while the queue behind it fills.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut sinks = AlertSinks::start(SinkOptions {
            urls: vec![parse_sink_url(&format!("http://127.0.0.1:{port}/")).unwrap()],
            ca: Vec::new(),
            rate: None,
            flush_deadline: Duration::from_millis(200),
        })
        .unwrap();
        let stats = sinks.stats();
        let mut line = ALERT.as_bytes().to_vec();
        line.push(b'\n');
        let started = Instant::now();
        for _ in 0..(QUEUE + 300) {
            sinks.offer(&line);
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        let s = Arc::clone(&stats.sinks[0]);
        let dropped = s.dropped.load(Ordering::Relaxed);
        // The thread took at most one batch (100) before the queue filled.
        assert!((200..=300).contains(&dropped), "{dropped}");
        sinks.finish();
        let undelivered = s.undelivered.load(Ordering::Relaxed);
        assert!(undelivered >= QUEUE as u64, "{undelivered}");
        assert_eq!(
            dropped
                + undelivered
                + s.failed.load(Ordering::Relaxed)
                + s.sent.load(Ordering::Relaxed),
            (QUEUE + 300) as u64
        );
    }
}
