//! `palisade demo`: the bundled shop capture (recorded from real clients and servers, see
//! `dataplane/demo/README.md`) judged by the bundled policy and inventory, end to end.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::events::EventOutput;
use crate::pipeline::{ReplayOptions, WorkerConfig, run_replay};

const CAPTURE: &[u8] = include_bytes!("../demo/shop.pcap");
const POLICY: &str = include_str!("../demo/policy.yaml");
const INVENTORY: &str = include_str!("../demo/inventory.yaml");

/// Where the demo writes its files: `./palisade-demo` when the current directory is
/// writable, else the system's temporary directory.
fn out_dir() -> std::io::Result<PathBuf> {
    let here = PathBuf::from("palisade-demo");
    if std::fs::create_dir_all(&here).is_ok() {
        return Ok(here);
    }
    let tmp = std::env::temp_dir().join("palisade-demo");
    std::fs::create_dir_all(&tmp)?;
    Ok(tmp)
}

pub fn run(out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let dir = out_dir()?;
    let write = |name: &str, bytes: &[u8]| -> std::io::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, bytes)?;
        Ok(p)
    };
    let capture = write("shop.pcap", CAPTURE)?;
    let policy = write("policy.yaml", POLICY.as_bytes())?;
    let inventory = write("inventory.yaml", INVENTORY.as_bytes())?;
    let events = dir.join("eve.json");
    // The policy's `capture: true` rules write their flows here.
    let captures = dir.join("captures");
    std::fs::create_dir_all(&captures)?;
    // The demo owns this directory: a rerun replaces the previous run's files.
    for e in std::fs::read_dir(&captures)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pcap = name.strip_suffix(".json").unwrap_or(&name);
        if crate::capture::is_capture_name(pcap) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    writeln!(
        out,
        "Palisade demo: a recorded shop (frontend, orders, cache, db) judged by a segmentation policy."
    )?;
    writeln!(out, "  capture    {}", capture.display())?;
    writeln!(out, "  policy     {}", policy.display())?;
    writeln!(out, "  inventory  {}\n", inventory.display())?;
    let opts = ReplayOptions {
        captures: vec![capture],
        policy,
        inventory: Some(inventory),
        events: EventOutput::File(events.clone()),
        workers: 1,
        worker: WorkerConfig {
            capture: Some(crate::capture::CaptureConfig::new(captures.clone())),
            ..WorkerConfig::default()
        },
        swaps: Vec::new(),
        compare: None,
        shadow: None,
        progress: false,
    };
    let report = run_replay(&opts)?;
    show_events(out, &events)?;
    writeln!(out, "\nSummary")?;
    write!(out, "{}", crate::summary::to_text(&report))?;
    writeln!(
        out,
        "\nAll {} events (JSON lines, Suricata EVE field names) are in {}",
        report.events_written,
        events.display()
    )?;
    writeln!(
        out,
        "\nTry it yourself (install both binaries first, as the README says:\n  \
         cargo install --locked --path dataplane --profile dist && cargo install --locked --path control):\n  \
         palisade replay {0}/shop.pcap --policy {0}/policy.yaml --inventory {0}/inventory.yaml --events -\n  \
         palisade policy check {0}/policy.yaml --inventory {0}/inventory.yaml",
        dir.display()
    )?;
    Ok(())
}

fn endpoint(v: &serde_json::Value, ip: &str, port: &str, wl: &str) -> String {
    let ip = v[ip].as_str().unwrap_or("?");
    let port = v[port]
        .as_u64()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let w = &v[wl];
    let who = match (w["name"].as_str(), w["group"].as_str()) {
        (Some(n), Some(g)) => format!(" ({n}, {g})"),
        (None, Some(g)) => format!(" ({g})"),
        (Some(n), None) => format!(" ({n})"),
        (None, None) => String::new(),
    };
    format!("{ip}{port}{who}")
}

fn show_events(out: &mut dyn Write, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    writeln!(out, "Alerts")?;
    for e in events.iter().filter(|e| e["event_type"] == "alert") {
        let v = &e["policy_verdict"];
        writeln!(
            out,
            "  {:<5} {:<8} rule {:<16} {} -> {}  [{}]",
            v["action"].as_str().unwrap_or("?").to_uppercase(),
            v["mode"].as_str().unwrap_or("?"),
            v["rule"].as_str().unwrap_or("?"),
            endpoint(e, "src_ip", "src_port", "src_workload"),
            endpoint(e, "dest_ip", "dest_port", "dest_workload"),
            e["app_proto"].as_str().unwrap_or("-"),
        )?;
        if let Some(sig) = e["alert"]["signature"].as_str() {
            writeln!(out, "        {sig}")?;
        }
        if let Some(f) = e["capture_file"].as_str() {
            writeln!(out, "        packets of this flow: {f} (tshark -r {f})")?;
        }
    }
    writeln!(out, "\nFlows")?;
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let f = &e["flow"];
        let v = &e["policy_verdict"];
        writeln!(
            out,
            "  {:<5} {:<9} {:<5} {} -> {}  {} pkts, {} bytes{}",
            v["action"].as_str().unwrap_or("?"),
            e["app_proto"].as_str().unwrap_or("-"),
            e["proto"].as_str().unwrap_or("?"),
            endpoint(e, "src_ip", "src_port", "src_workload"),
            endpoint(e, "dest_ip", "dest_port", "dest_workload"),
            f["pkts_toserver"].as_u64().unwrap_or(0) + f["pkts_toclient"].as_u64().unwrap_or(0),
            f["bytes_toserver"].as_u64().unwrap_or(0) + f["bytes_toclient"].as_u64().unwrap_or(0),
            if v["dropped_pkts"].as_u64().unwrap_or(0) > 0 {
                format!(", {} dropped", v["dropped_pkts"])
            } else {
                String::new()
            },
        )?;
    }
    Ok(())
}
