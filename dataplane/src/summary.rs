//! The end-of-run summary of `palisade replay`, as text for people and JSON for scripts.

use serde_json::json;

use crate::pipeline::ReplayReport;

fn sorted<'a, K: Ord + 'a, V: Copy + 'a>(it: impl Iterator<Item = (K, &'a V)>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = it.map(|(k, v)| (k, *v)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub fn to_json(r: &ReplayReport) -> serde_json::Value {
    let s = &r.stats;
    let secs = r.elapsed.as_secs_f64();
    let pps = if secs > 0.0 {
        s.packets as f64 / secs
    } else {
        0.0
    };
    let verdicts: Vec<_> = sorted(
        s.verdicts
            .iter()
            .map(|((a, rule), n)| ((*a, rule.as_str()), n)),
    )
    .into_iter()
    .map(|((action, rule), n)| json!({"action": action, "rule": rule, "flows": n}))
    .collect();
    json!({
        "packets": s.packets,
        "bytes": s.bytes,
        "elapsed_seconds": secs,
        "packets_per_sec": pps,
        "gbit_per_sec": if secs > 0.0 { s.bytes as f64 * 8.0 / secs / 1e9 } else { 0.0 },
        "workers": r.workers,
        "flows": {
            "total": s.flows.created,
            "timed_out": s.flows.timed_out,
            "evicted": s.flows.evicted,
            "cap_hits": s.flows.cap_hits,
            "evicted_embryonic": s.flows.evicted_embryonic,
            "evicted_established": s.flows.evicted_established,
            "embryonic_unlogged": s.embryonic_unlogged,
            "peak_per_worker_sum": s.flows.peak,
        },
        "packet_verdicts": {"accept": s.accepted, "drop": s.dropped, "reset": s.reset},
        "verdicts": verdicts,
        "transactions": {
            "total": s.transactions,
            "verdicts": sorted(s.tx_verdicts.iter().map(|((a, rule), n)| ((*a, rule.as_str()), n)))
                .into_iter()
                .map(|((action, rule), n)| json!({"action": action, "rule": rule, "transactions": n}))
                .collect::<Vec<_>>(),
        },
        "alerts": s.alerts,
        "app_protos": sorted(s.app_protos.iter().map(|(k, v)| (*k, v))).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "anomalies": sorted(s.anomalies.iter().map(|(k, v)| (*k, v))).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "uninspectable": {
            "flows": sorted(s.uninspectable.iter().map(|(k, v)| (*k, v))).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "decisions": sorted(s.uninspectable_decisions.iter().map(|(k, v)| (*k, v)))
                .into_iter()
                .map(|((cause, action), n)| json!({"cause": cause, "action": action, "flows": n}))
                .collect::<Vec<_>>(),
        },
        "decode_errors": sorted(s.decode_errors.iter().map(|(k, v)| (*k, v))).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "not_ip": s.not_ip,
        "fragments": s.fragments,
        "reassembly": {
            "ooo_segments": s.reassembly.ooo_segments,
            "duplicates": s.reassembly.duplicates,
            "overlaps": s.reassembly.overlaps,
            "overlap_mismatches": s.reassembly.overlap_mismatches,
            "gaps": s.reassembly.gaps,
            "gap_bytes": s.reassembly.gap_bytes,
            "stream_cap_hits": s.reassembly.stream_cap_hits,
            "global_cap_hits": s.reassembly.global_cap_hits,
        },
        "changes": changes_json(r),
        "transaction_changes": tx_changes_json(r),
        "shadow": shadow_json(&s.shadow),
        "checksums": {
            "mode": r.checksums.map_or("configured", |(m, _, _)| m.as_str()),
            "sampled": r.checksums.map_or(0, |(_, n, _)| n),
            "sample_failed": r.checksums.map_or(0, |(_, _, b)| b),
            "dropped": s.bad_checksums,
        },
        "normalised": sorted(s.normalised.iter().map(|(k, v)| (*k, v))).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "flow_captures": s.capture,
        "events": r.events_written,
        "events_file": r.events_to,
        "records_cut": s.log_pending_cut,
        "policy": r.policy_log.iter().map(|(v, src, err)| json!({"version": v, "source": src, "error": err})).collect::<Vec<_>>(),
        "capture_warnings": r.capture_warnings,
        "alert_sinks": r.alert_sinks.as_ref().map_or(serde_json::Value::Array(Vec::new()), |a| a.to_json()),
        "alert_rate_suppressed": r.alert_sinks.as_ref().map_or(0, |a| a.rate_suppressed.load(std::sync::atomic::Ordering::Relaxed)),
    })
}

/// Disagreements with a shadow candidate, per rule pair, most frequent first (also
/// `palisadectl shadow show`).
pub fn shadow_json(c: &crate::verdict::ShadowCounts) -> serde_json::Value {
    let mut pairs: Vec<_> = c.pairs.iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    json!({
        "disagreements": c.total(),
        "pairs": pairs.into_iter().map(|(p, n)| json!({
            "level": p.level,
            "active": {"action": p.active_action, "rule": p.active_rule},
            "shadow": {"action": p.shadow_action, "rule": p.shadow_rule, "policy_version": p.shadow_version},
            "count": n,
        })).collect::<Vec<_>>(),
        "pairs_cut": c.cut,
    })
}

/// Verdict changes against `--compare`, most frequent first.
fn changes_sorted(r: &ReplayReport) -> Vec<(&crate::verdict::VerdictChange, u64, &[String])> {
    let mut v: Vec<_> = r
        .stats
        .changes
        .iter()
        .map(|(k, (n, ex))| (k, *n, ex.as_slice()))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

fn changes_json(r: &ReplayReport) -> serde_json::Value {
    changes_sorted(r)
        .into_iter()
        .map(|(k, n, ex)| {
            json!({
                "old": {"action": k.old_action, "enforced": k.old_enforced, "rule": k.old_rule},
                "new": {"action": k.new_action, "enforced": k.new_enforced, "rule": k.new_rule},
                "flows": n,
                "examples": ex,
            })
        })
        .collect()
}

/// A changed transaction verdict, how many requests had it, and examples (flow, objects).
type TxChange<'r> = (
    &'r crate::verdict::VerdictChange,
    u64,
    &'r [(String, serde_json::Value)],
);

/// Transactions whose verdict changes against `--compare`, most frequent first.
fn tx_changes_sorted(r: &ReplayReport) -> Vec<TxChange<'_>> {
    let mut v: Vec<_> = r
        .stats
        .tx_changes
        .iter()
        .map(|(k, (n, ex))| (k, *n, ex.as_slice()))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

fn tx_changes_json(r: &ReplayReport) -> serde_json::Value {
    tx_changes_sorted(r)
        .into_iter()
        .map(|(k, n, ex)| {
            let examples: Vec<serde_json::Value> = ex
                .iter()
                .map(|(flow, objects)| {
                    let mut e = json!({"flow": flow});
                    if let (Some(m), Some(o)) = (e.as_object_mut(), objects.as_object()) {
                        for (key, val) in o {
                            m.insert(key.clone(), val.clone());
                        }
                    }
                    e
                })
                .collect();
            json!({
                "old": {"action": k.old_action, "enforced": k.old_enforced, "rule": k.old_rule},
                "new": {"action": k.new_action, "enforced": k.new_enforced, "rule": k.new_rule},
                "transactions": n,
                "examples": examples,
            })
        })
        .collect()
}

/// A transaction's protocol object(s) in a few words, for the text summary.
fn tx_words(objects: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    if let Some(h) = objects.get("http") {
        let mut w = format!("http {} {}", s(&h["http_method"]), s(&h["url"]));
        if let Some(g) = objects.get("grpc") {
            w = format!("grpc {}/{}", s(&g["service"]), s(&g["method"]));
        }
        return w;
    }
    if let Some(q) = objects.get("sql") {
        let tables: Vec<String> = q["tables"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        let db = if objects.get("pgsql").is_some() {
            "pgsql"
        } else {
            "mysql"
        };
        return format!("{db} {} {}", s(&q["verb"]), tables.join(","))
            .trim_end()
            .to_owned();
    }
    if let Some(r) = objects.get("redis") {
        return format!("redis {} {}", s(&r["command"]), s(&r["key"]))
            .trim_end()
            .to_owned();
    }
    if let Some(d) = objects.get("dns") {
        return format!("dns {} {}", s(&d["rrname"]), s(&d["rrtype"]));
    }
    if let Some(t) = objects.get("tls") {
        return format!("tls sni {}", s(&t["sni"]));
    }
    objects.to_string()
}

pub fn to_text(r: &ReplayReport) -> String {
    use std::fmt::Write;
    let s = &r.stats;
    let secs = r.elapsed.as_secs_f64();
    let pps = if secs > 0.0 {
        s.packets as f64 / secs
    } else {
        0.0
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "packets    {} ({} bytes), {} not IP, {} fragments",
        s.packets, s.bytes, s.not_ip, s.fragments
    );
    let _ = writeln!(
        o,
        "flows      {} ({} timed out, {} evicted at the cap)",
        s.flows.created, s.flows.timed_out, s.flows.evicted
    );
    let _ = writeln!(
        o,
        "packets    accept {}  drop {}  (with reset {})",
        s.accepted, s.dropped, s.reset
    );
    let _ = writeln!(o, "verdicts   (flows, by action and rule)");
    for ((action, rule), n) in sorted(
        s.verdicts
            .iter()
            .map(|((a, rule), n)| ((*a, rule.as_str()), n)),
    ) {
        let _ = writeln!(o, "  {action:<6} {rule:<24} {n}");
    }
    if s.transactions > 0 {
        let _ = writeln!(o, "requests   {} (by action and rule)", s.transactions);
        for ((action, rule), n) in sorted(
            s.tx_verdicts
                .iter()
                .map(|((a, rule), n)| ((*a, rule.as_str()), n)),
        ) {
            let _ = writeln!(o, "  {action:<6} {rule:<24} {n}");
        }
    }
    let _ = writeln!(o, "alerts     {}", s.alerts);
    let changes = changes_sorted(r);
    if s.flows.cap_hits > 0 {
        let _ = writeln!(
            o,
            "flow table full for {} new flows: evicted {} in their handshake, {} established; {} unanswered SYN flows summed up in flow.embryonic_ended records",
            s.flows.cap_hits,
            s.flows.evicted_embryonic,
            s.flows.evicted_established,
            s.embryonic_unlogged
        );
    }
    if !s.changes.is_empty() || r.compared {
        let total: u64 = changes.iter().map(|c| c.1).sum();
        let _ = writeln!(
            o,
            "changes    {total} flow(s) change verdict against the compared policy"
        );
        for (k, n, ex) in changes {
            let verdict = |a: &str, enforced: bool| {
                if a == "deny" && !enforced {
                    "deny (not enforced)".to_string()
                } else {
                    a.to_string()
                }
            };
            let _ = writeln!(
                o,
                "  {} by {} -> {} by {}: {n} flow(s)",
                verdict(k.old_action, k.old_enforced),
                k.old_rule,
                verdict(k.new_action, k.new_enforced),
                k.new_rule
            );
            for e in ex {
                let _ = writeln!(o, "      e.g. {e}");
            }
        }
        let tx = tx_changes_sorted(r);
        let total: u64 = tx.iter().map(|c| c.1).sum();
        let _ = writeln!(
            o,
            "changes    {total} request(s) change verdict against the compared policy"
        );
        for (k, n, ex) in tx {
            let verdict = |a: &str, enforced: bool| {
                if a == "deny" && !enforced {
                    "deny (not enforced)".to_string()
                } else {
                    a.to_string()
                }
            };
            let _ = writeln!(
                o,
                "  {} by {} -> {} by {}: {n} request(s)",
                verdict(k.old_action, k.old_enforced),
                k.old_rule,
                verdict(k.new_action, k.new_enforced),
                k.new_rule
            );
            for (flow, objects) in ex {
                let _ = writeln!(o, "      e.g. {flow} {}", tx_words(objects));
            }
        }
    }
    if s.shadow.total() > 0 {
        let _ = writeln!(
            o,
            "shadow     {} disagreement(s) with the candidate policy (shadow records written)",
            s.shadow.total()
        );
        let mut pairs: Vec<_> = s.shadow.pairs.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (p, n) in pairs {
            let _ = writeln!(
                o,
                "  {} {} by {} -> {} by {}: {n}",
                p.level, p.active_action, p.active_rule, p.shadow_action, p.shadow_rule
            );
        }
    }
    if !s.app_protos.is_empty() {
        let list: Vec<String> = sorted(s.app_protos.iter().map(|(k, v)| (*k, v)))
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "protocols  {}", list.join(", "));
    }
    if !s.uninspectable.is_empty() {
        let total: u64 = s.uninspectable.values().sum();
        let decided: u64 = s.uninspectable_decisions.values().sum();
        let _ = writeln!(
            o,
            "uninspectable {total} flow(s), {decided} decided by onUninspectable (where rules could judge them)"
        );
        for ((cause, action), n) in sorted(s.uninspectable_decisions.iter().map(|(k, v)| (*k, v))) {
            let _ = writeln!(o, "  {action:<6} {cause:<24} {n}");
        }
    }
    let total_anom: u64 = s.anomalies.values().sum();
    let _ = writeln!(o, "anomalies  {total_anom}");
    for (k, n) in sorted(s.anomalies.iter().map(|(k, v)| (*k, v))) {
        let _ = writeln!(o, "  {k:<32} {n}");
    }
    for (v, src, err) in &r.policy_log {
        match (v, err) {
            (Some(v), None) => {
                let _ = writeln!(o, "policy     v{v} loaded from {src}");
            }
            (_, Some(e)) => {
                let _ = writeln!(o, "policy     {src} REJECTED: {e}");
            }
            _ => {}
        }
    }
    let c = &s.capture;
    if c.held_flows > 0 || c.files > 0 || c.errors > 0 {
        let _ = writeln!(
            o,
            "captures   {} file(s), {} packets ({} flows held; limits hit: hold {}, open files {}, file size {}; errors {})",
            c.files, c.packets, c.held_flows, c.hold_limit, c.open_limit, c.truncated, c.errors
        );
    }
    if c.removed > 0 || c.dir_files_limit > 0 || c.dir_bytes_limit > 0 || c.hold_dropped > 0 {
        let _ = writeln!(
            o,
            "captures   {} file(s) removed ({} bytes) to keep the directory's bounds (max files reached {}, max bytes reached {}); {} held packets dropped from full pre-match rings",
            c.removed, c.removed_bytes, c.dir_files_limit, c.dir_bytes_limit, c.hold_dropped
        );
    }
    if let Some((mode, n, bad)) = r.checksums
        && (mode != crate::decode::checksum::ChecksumMode::Validate || bad > 0)
    {
        let _ = writeln!(
            o,
            "checksums  {} ({bad} of the first {n} TCP/UDP packets failed{})",
            if mode == crate::decode::checksum::ChecksumMode::Validate {
                "validated"
            } else {
                "not validated"
            },
            if mode == crate::decode::checksum::ChecksumMode::Validate {
                ""
            } else {
                ": offloaded where the capture was taken"
            }
        );
    }
    if s.bad_checksums > 0 {
        let _ = writeln!(
            o,
            "           {} packet(s) dropped for bad checksums",
            s.bad_checksums
        );
    }
    if r.events_to == "none" {
        let _ = writeln!(
            o,
            "events     {} discarded (--events none)",
            r.events_written
        );
    } else {
        let _ = writeln!(o, "events     {} to {}", r.events_written, r.events_to);
    }
    if s.log_pending_cut > 0 {
        let _ = writeln!(
            o,
            "           {} transaction record(s) written without their response (too many waiting)",
            s.log_pending_cut
        );
    }
    if let Some(a) = &r.alert_sinks {
        use std::sync::atomic::Ordering::Relaxed;
        for sk in &a.sinks {
            let _ = writeln!(
                o,
                "alert sink {}: {} sent, {} failed, {} dropped, {} not delivered at exit",
                sk.label,
                sk.sent.load(Relaxed),
                sk.failed.load(Relaxed),
                sk.dropped.load(Relaxed),
                sk.undelivered.load(Relaxed)
            );
        }
        if let Some(rate) = a.rate {
            let _ = writeln!(
                o,
                "           {} alert(s) kept from the sinks by --alert-rate {rate}",
                a.rate_suppressed.load(Relaxed)
            );
        }
    }
    let _ = writeln!(
        o,
        "elapsed    {:.3} s, {:.0} pkt/s, {} worker(s)",
        secs, pps, r.workers
    );
    for e in &r.capture_warnings {
        let _ = writeln!(o, "warning    {e}");
    }
    o
}
