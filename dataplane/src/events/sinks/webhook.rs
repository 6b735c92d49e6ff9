//! The webhook sink: a POST of a JSON array of records (alert lines exactly as the event
//! file has them, and `alert_summary` objects), in batches of at most [`MAX_BATCH`]
//! records or [`MAX_BATCH_BYTES`], sent when full or [`BATCH_WAIT`] after the first record.
//! A batch is tried [`ATTEMPTS`] times with exponential backoff: connection errors,
//! timeouts, 429 and 5xx are tried again; another status fails the batch at once.
//!
//! `ureq` (synchronous, rustls) on this thread only: never on the packet path. Proxies
//! from the environment are not used: the receiver is reached directly.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::deliver::{Backoff, Item, SinkStats};

/// Records per POST.
pub const MAX_BATCH: usize = 100;
/// Bytes of records per POST (a record larger than this is sent alone).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// How long the first record of a batch waits for company.
pub const BATCH_WAIT: Duration = Duration::from_secs(1);
/// Tries per batch, with waits of 0.5, 1 and 2 s between them.
pub const ATTEMPTS: u32 = 4;
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Reads a PEM bundle of CA certificates (`--alert-sink-ca`): at least one certificate,
/// as DER. Errors say what was wrong with the file.
pub fn load_ca_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c.der().to_vec()),
            Ok(_) => {}
            Err(e) => return Err(format!("not a PEM bundle: {e}")),
        }
    }
    if out.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(out)
}

/// The client for every webhook of a run: Mozilla's roots, plus `extra_ca` (DER) when
/// given. Bounded waits: 3 s to connect, 10 s for a whole exchange; no redirects.
pub fn agent(extra_ca: &[Vec<u8>]) -> ureq::Agent {
    let roots = if extra_ca.is_empty() {
        RootCerts::WebPki
    } else {
        let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        certs.extend(extra_ca.iter().map(|d| Certificate::from_der(d).to_owned()));
        RootCerts::from(certs)
    };
    let config = ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .timeout_connect(Some(Duration::from_secs(3)))
        .timeout_global(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .proxy(None)
        .http_status_as_error(false)
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// The JSON array of a batch: the records spliced in as they are (each is one JSON
/// object), so the receiver gets the event file's bytes.
pub fn batch_body(items: &[Arc<Item>], out: &mut Vec<u8>) {
    out.clear();
    out.push(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(it.json.as_bytes());
    }
    out.push(b']');
}

/// How one POST ended.
enum Outcome {
    Delivered,
    /// Worth another try (transport error, timeout, 429, 5xx).
    Retry(String),
    /// The receiver refused it; another try would be refused too.
    Refused(String),
}

fn post(agent: &ureq::Agent, url: &str, auth: Option<&str>, body: &[u8]) -> Outcome {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    match req.send(body) {
        Ok(resp) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                Outcome::Delivered
            } else if status == 429 || status >= 500 {
                Outcome::Retry(format!("HTTP status {status}"))
            } else {
                Outcome::Refused(format!("HTTP status {status}"))
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// A webhook sink's thread.
pub(super) fn run_webhook(
    url: String,
    auth: Option<String>,
    agent: ureq::Agent,
    rx: Receiver<Arc<Item>>,
    stats: Arc<SinkStats>,
) {
    let mut batch: Vec<Arc<Item>> = Vec::with_capacity(MAX_BATCH);
    let mut carry: Option<Arc<Item>> = None;
    let mut body = Vec::new();
    let mut backoff = Backoff::new();
    let mut open = true;
    while open || carry.is_some() {
        let first = match carry.take() {
            Some(i) => i,
            None => match rx.recv() {
                Ok(i) => i,
                Err(_) => break,
            },
        };
        let mut bytes = first.json.len();
        batch.push(first);
        let until = Instant::now() + BATCH_WAIT;
        while open && batch.len() < MAX_BATCH {
            match rx.recv_deadline(until) {
                Ok(i) => {
                    if bytes + i.json.len() + 1 > MAX_BATCH_BYTES {
                        carry = Some(i);
                        break;
                    }
                    bytes += i.json.len() + 1;
                    batch.push(i);
                }
                Err(RecvTimeoutError::Timeout) => break,
                // The run is ending: send what is here at once.
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        let n = batch.len() as u64;
        stats.in_flight.store(n, Ordering::Relaxed);
        batch_body(&batch, &mut body);
        batch.clear();
        let mut delivered = false;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 && !stats.pause(backoff.wait()) {
                break;
            }
            if stats.abandoned() {
                break;
            }
            match post(&agent, &url, auth.as_deref(), &body) {
                Outcome::Delivered => {
                    if backoff.succeeded() {
                        tracing::info!(sink = %stats.label, "alert sink delivers again");
                    }
                    delivered = true;
                    break;
                }
                Outcome::Retry(e) => {
                    if backoff.failures() == 0 {
                        tracing::warn!(sink = %stats.label, "alert webhook failed: {e}; retrying with backoff");
                    }
                    backoff.failed(BACKOFF_BASE);
                }
                Outcome::Refused(e) => {
                    tracing::warn!(sink = %stats.label, "alert webhook refused a batch of {n}: {e}");
                    backoff.failed(BACKOFF_BASE);
                    break;
                }
            }
        }
        if stats.abandoned() && !delivered {
            // Left for the flush report (undelivered), not counted failed.
            break;
        }
        if delivered {
            stats.sent.fetch_add(n, Ordering::Relaxed);
        } else {
            stats.failed.fetch_add(n, Ordering::Relaxed);
        }
        stats.in_flight.store(0, Ordering::Relaxed);
        // Each batch starts with a fresh backoff of its own; a dead receiver still costs
        // each batch its attempts, so the queue behind fills and drops (counted).
        backoff = Backoff::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> Arc<Item> {
        Arc::new(Item {
            json: json.into(),
            text: "".into(),
            severity: 5,
            msgid: "alert",
        })
    }

    #[test]
    fn a_batch_is_a_json_array_of_the_records_as_written() {
        let mut out = Vec::new();
        batch_body(
            &[
                item(r#"{"event_type":"alert","a":1}"#),
                item(r#"{"b":"x,]"}"#),
            ],
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["a"], 1);
        assert_eq!(v[1]["b"], "x,]");
        batch_body(&[], &mut out);
        assert_eq!(out, b"[]");
    }

    #[test]
    fn ca_bundles_must_hold_a_certificate() {
        assert!(load_ca_pem(b"").unwrap_err().contains("no PEM certificate"));
        assert!(
            load_ca_pem(b"hello")
                .unwrap_err()
                .contains("no PEM certificate")
        );
        let e = load_ca_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(e.contains("not a PEM bundle"), "{e}");
    }
}
