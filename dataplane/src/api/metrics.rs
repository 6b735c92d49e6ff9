//! `/metrics` for `palisade run --metrics ADDR`: the packet threads' published counters in
//! the Prometheus text format, served by the control thread ([`super::ctl`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::pipeline::live::Shared;

pub(super) async fn serve_metrics(
    listener: TcpListener,
    shared: Arc<Shared>,
    clients: Arc<tokio::sync::Semaphore>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&clients).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let sh = Arc::clone(&shared);
        tokio::spawn(async move {
            // Read the request head (bounded), answer, close.
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(line);
            let mut parts = line.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let response = if method == "GET"
                && (target == "/metrics" || target.starts_with("/metrics?"))
            {
                let body = metrics_text(&sh);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n".to_string()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            drop(permit);
        });
    }
}

/// Escapes a label value for the Prometheus text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in the Prometheus text exposition format (0.0.4).
pub fn metrics_text(shared: &Shared) -> String {
    use std::fmt::Write;
    let (s, c) = shared.totals();
    let mut o = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    let one = |v: u64| vec![(String::new(), v)];
    metric(
        "palisade_packets_total",
        "counter",
        "Packets judged.",
        &one(s.packets),
    );
    metric(
        "palisade_bytes_total",
        "counter",
        "Bytes of the packets judged.",
        &one(s.bytes),
    );
    metric(
        "palisade_elapsed_seconds",
        "gauge",
        "Seconds since palisade run started.",
        &one(shared.started.elapsed().as_secs()),
    );
    // The verdicts partition the packets, in the words of `replay --format json`'s
    // `packet_verdicts` and the stop line: a tap's refusals are `would_drop`, never `drop`;
    // Palisade's own connections are `self`.
    metric(
        "palisade_packet_verdicts_total",
        "counter",
        "Packets by verdict: accept, drop (inline, with or without resets), would_drop (a tap: dropped if inline), self (Palisade's own connections, not judged).",
        &[
            ("{verdict=\"accept\"}".into(), s.accepted),
            ("{verdict=\"drop\"}".into(), s.dropped),
            ("{verdict=\"would_drop\"}".into(), s.would_drop),
            ("{verdict=\"self\"}".into(), s.self_packets),
        ],
    );
    metric(
        "palisade_packets_reset_total",
        "counter",
        "Of the dropped packets, those answered with TCP resets (packet_verdicts' reset).",
        &one(s.reset),
    );
    let by_rule = |m: &crate::verdict::VerdictCounts| {
        let mut v: Vec<(String, u64)> = m
            .iter()
            .map(|((a, r), n)| (format!("{{action=\"{a}\",rule=\"{}\"}}", label(r)), *n))
            .collect();
        v.sort();
        v
    };
    metric(
        "palisade_flow_verdicts_total",
        "counter",
        "Ended flows by the action and rule of their final verdict.",
        &by_rule(&s.verdicts),
    );
    metric(
        "palisade_transaction_verdicts_total",
        "counter",
        "Requests, statements and commands by the action and rule that judged them.",
        &by_rule(&s.tx_verdicts),
    );
    metric(
        "palisade_transactions_total",
        "counter",
        "Transactions parsed.",
        &one(s.transactions),
    );
    metric(
        "palisade_alerts_total",
        "counter",
        "Alert events emitted.",
        &one(s.alerts),
    );
    metric(
        "palisade_events_total",
        "counter",
        "Events emitted.",
        &one(s.events),
    );
    metric(
        "palisade_flows_active",
        "gauge",
        "Flows open now.",
        &one(s.open_flows),
    );
    metric(
        "palisade_flows_created_total",
        "counter",
        "Flows created.",
        &one(s.flows.created),
    );
    metric(
        "palisade_flows_evicted_total",
        "counter",
        "Flows evicted because the flow table was full.",
        &one(s.flows.evicted),
    );
    metric(
        "palisade_flow_table_full_total",
        "counter",
        "New flows that found the flow table full (each evicted another flow).",
        &one(s.flows.cap_hits),
    );
    metric(
        "palisade_flows_evicted_by_state_total",
        "counter",
        "Flows evicted from the full flow table, by TCP state (handshake first, established last).",
        &[
            ("{state=\"embryonic\"}".into(), s.flows.evicted_embryonic),
            (
                "{state=\"established\"}".into(),
                s.flows.evicted_established,
            ),
            (
                "{state=\"other\"}".into(),
                s.flows
                    .evicted
                    .saturating_sub(s.flows.evicted_embryonic + s.flows.evicted_established),
            ),
        ],
    );
    metric(
        "palisade_flows_embryonic_unlogged_total",
        "counter",
        "Unanswered SYN flows ended without a flow record of their own (summed up in anomaly records).",
        &one(s.embryonic_unlogged),
    );
    metric(
        "palisade_log_records_cut_total",
        "counter",
        "Transaction records written without their response because too many were waiting.",
        &one(s.log_pending_cut),
    );
    let kinds = |m: &foldhash::HashMap<&'static str, u64>, key: &str| {
        let mut v: Vec<(String, u64)> = m
            .iter()
            .map(|(k, n)| (format!("{{{key}=\"{}\"}}", label(k)), *n))
            .collect();
        v.sort();
        v
    };
    metric(
        "palisade_anomalies_total",
        "counter",
        "Anomalies by kind.",
        &kinds(&s.anomalies, "kind"),
    );
    metric(
        "palisade_events_dropped_total",
        "counter",
        "Event lines dropped because the event writer fell behind (the packet path never waits).",
        &one(shared.events_dropped.load(Ordering::Relaxed)),
    );
    alert_sink_metrics(&mut metric, shared);
    metric(
        "palisade_uninspectable_flows_total",
        "counter",
        "Flows the inspector stopped seeing what the receiver acts on, by cause.",
        &kinds(&s.uninspectable, "cause"),
    );
    let mut decisions: Vec<(String, u64)> = s
        .uninspectable_decisions
        .iter()
        .map(|((cause, action), n)| {
            (
                format!(
                    "{{cause=\"{}\",action=\"{}\"}}",
                    label(cause),
                    label(action)
                ),
                *n,
            )
        })
        .collect();
    decisions.sort();
    metric(
        "palisade_uninspectable_decisions_total",
        "counter",
        "onUninspectable decisions (flows a rule could have judged), by cause and action.",
        &decisions,
    );
    metric(
        "palisade_decode_errors_total",
        "counter",
        "Packets that did not decode, by reason.",
        &kinds(&s.decode_errors, "reason"),
    );
    metric(
        "palisade_parser_errors_total",
        "counter",
        "Flows whose parser rejected the stream or hit a limit.",
        &one(s.inspect.parser_invalid + s.inspect.carry_overflow),
    );
    metric(
        "palisade_app_flows_total",
        "counter",
        "Ended flows by detected application protocol.",
        &kinds(&s.app_protos, "app_proto"),
    );
    metric(
        "palisade_queue_drops_total",
        "counter",
        "Packets lost before judging (kernel queue or socket buffer overflow).",
        &one(c.rx_dropped),
    );
    metric(
        "palisade_resets_sent_total",
        "counter",
        "TCP resets sent.",
        &one(c.resets_sent),
    );
    metric(
        "palisade_resets_failed_total",
        "counter",
        "TCP resets that could not be sent.",
        &one(c.resets_failed),
    );
    metric(
        "palisade_capture_files_total",
        "counter",
        "Flow capture files created (--capture-dir).",
        &one(s.capture.files),
    );
    metric(
        "palisade_capture_packets_total",
        "counter",
        "Packets written to flow capture files.",
        &one(s.capture.packets),
    );
    metric(
        "palisade_capture_limit_total",
        "counter",
        "Flow capture limits reached, by limit.",
        &[
            ("{limit=\"hold\"}".into(), s.capture.hold_limit),
            ("{limit=\"open_files\"}".into(), s.capture.open_limit),
            ("{limit=\"file_bytes\"}".into(), s.capture.truncated),
            ("{limit=\"dir_files\"}".into(), s.capture.dir_files_limit),
            ("{limit=\"dir_bytes\"}".into(), s.capture.dir_bytes_limit),
        ],
    );
    metric(
        "palisade_capture_removed_total",
        "counter",
        "Flow capture files removed (with their sidecars) to keep --capture-dir within --capture-max-files and --capture-max-bytes.",
        &one(s.capture.removed),
    );
    metric(
        "palisade_capture_removed_bytes_total",
        "counter",
        "Bytes of the flow capture files removed to keep --capture-dir within its bounds.",
        &one(s.capture.removed_bytes),
    );
    metric(
        "palisade_capture_hold_dropped_total",
        "counter",
        "Packets dropped from full pre-match rings (held before a capturing rule matched).",
        &one(s.capture.hold_dropped),
    );
    if let Some(store) = &shared.capture_store {
        let (files, bytes) = store.usage();
        metric(
            "palisade_capture_dir_files",
            "gauge",
            "Flow capture files in --capture-dir now (found at start or written since).",
            &one(files as u64),
        );
        metric(
            "palisade_capture_dir_bytes",
            "gauge",
            "Bytes of flow capture files and sidecars in --capture-dir now.",
            &one(bytes),
        );
    }
    metric(
        "palisade_capture_errors_total",
        "counter",
        "Flow capture files that could not be created or written.",
        &one(s.capture.errors),
    );
    metric(
        "palisade_policy_version",
        "gauge",
        "Version of the policy in force.",
        &one(shared.policy.load().version()),
    );
    metric(
        "palisade_policy_rejected_total",
        "counter",
        "Policies that failed to load (the running one stayed).",
        &one(shared.rejected.load(Ordering::Relaxed)),
    );
    if let Some(rt) = &shared.runtime {
        let st = rt.status();
        let c = &rt.counters;
        let n = |a: &std::sync::atomic::AtomicU64| one(a.load(Ordering::Relaxed));
        metric(
            "palisade_inventory_runtime_up",
            "gauge",
            "1 while the container runtime (containerd) is connected and watched.",
            &one(u64::from(st.connected)),
        );
        metric(
            "palisade_inventory_workloads",
            "gauge",
            "Workloads read from the container runtime.",
            &one(st.workloads as u64),
        );
        metric(
            "palisade_inventory_updates_total",
            "counter",
            "Changes of the runtime's workloads (each recompiles the running policy).",
            &n(&c.updates),
        );
        metric(
            "palisade_inventory_errors_total",
            "counter",
            "Lost connections to or failed calls of the container runtime.",
            &n(&c.errors),
        );
        let f = st.findings;
        metric(
            "palisade_inventory_address_conflicts",
            "gauge",
            "Addresses two workloads claim now (two containers, or a container and the file): given to neither.",
            &one(f.address_conflicts + f.file_address_conflicts),
        );
        metric(
            "palisade_inventory_unreadable",
            "gauge",
            "Running containers whose addresses could not be read at the last sync.",
            &one(f.unreadable),
        );
    }
    metric(
        "palisade_quarantined_workloads",
        "gauge",
        "Workloads (or addresses) quarantined now.",
        &one(shared.quarantine.current().entries.len() as u64),
    );
    metric(
        "palisade_quarantine_flows_refused_total",
        "counter",
        "New flows refused because an end is quarantined.",
        &one(s.quarantine_refused),
    );
    metric(
        "palisade_quarantine_flows_reset_total",
        "counter",
        "Open flows refused when an end was quarantined.",
        &one(s.quarantine_reset),
    );
    metric(
        "palisade_quarantine_cap_hits_total",
        "counter",
        "Quarantines not made because the most workloads are quarantined.",
        &one(shared.quarantine.refused.load(Ordering::Relaxed)),
    );
    metric(
        "palisade_shadow_policy_version",
        "gauge",
        "Version of the shadow (candidate) policy judged beside the active one; 0 when none.",
        &one(shared.shadow.load().as_ref().map_or(0, |c| c.version())),
    );
    let mut pairs: Vec<(String, u64)> = s
        .shadow
        .pairs
        .iter()
        .map(|(p, n)| {
            (
                format!(
                    "{{level=\"{}\",active_action=\"{}\",active_rule=\"{}\",shadow_action=\"{}\",shadow_rule=\"{}\",shadow_version=\"{}\"}}",
                    p.level,
                    p.active_action,
                    label(&p.active_rule),
                    p.shadow_action,
                    label(&p.shadow_rule),
                    p.shadow_version
                ),
                *n,
            )
        })
        .collect();
    pairs.sort();
    metric(
        "palisade_shadow_disagreements_total",
        "counter",
        "Flows and transactions the shadow policy judged otherwise than the active one, by rule pair.",
        &pairs,
    );
    metric(
        "palisade_shadow_pairs_cut_total",
        "counter",
        "Disagreements not counted by rule pair because a worker already counts its most pairs.",
        &one(s.shadow.cut),
    );
    o
}

/// `--alert-sink`: per sink (labelled by its URL without credentials) what was delivered,
/// failed, dropped on a full queue and is queued now; what `--alert-rate` held back.
fn alert_sink_metrics(
    metric: &mut impl FnMut(&str, &str, &str, &[(String, u64)]),
    shared: &Shared,
) {
    let sinks = shared.alert_sinks.as_deref();
    let per_sink = |f: &dyn Fn(&crate::events::sinks::SinkStats) -> u64| -> Vec<(String, u64)> {
        sinks
            .map(|a| {
                a.sinks
                    .iter()
                    .map(|s| (format!("{{sink=\"{}\"}}", label(&s.label)), f(s)))
                    .collect()
            })
            .unwrap_or_default()
    };
    metric(
        "palisade_alert_sink_sent_total",
        "counter",
        "Alert records delivered to each --alert-sink.",
        &per_sink(&|s| s.sent.load(Ordering::Relaxed)),
    );
    metric(
        "palisade_alert_sink_failed_total",
        "counter",
        "Alert records a sink could not deliver in its attempts (receiver down, refused).",
        &per_sink(&|s| s.failed.load(Ordering::Relaxed)),
    );
    metric(
        "palisade_alert_sink_dropped_total",
        "counter",
        "Alert records never queued for a sink because its queue was full (slow or dead receiver).",
        &per_sink(&|s| s.dropped.load(Ordering::Relaxed)),
    );
    metric(
        "palisade_alert_sink_queue_depth",
        "gauge",
        "Alert records waiting in each sink's queue.",
        &per_sink(&|s| s.queue_depth() as u64),
    );
    metric(
        "palisade_alert_rate_suppressed_total",
        "counter",
        "Alerts --alert-rate kept from the sinks (the event file has them all).",
        &[(
            String::new(),
            sinks.map_or(0, |a| a.rate_suppressed.load(Ordering::Relaxed)),
        )],
    );
}
