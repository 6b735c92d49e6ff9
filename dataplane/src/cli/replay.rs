//! `palisade replay`: judge captured traffic against a policy, write events, print a
//! summary; exit 1 on `--fail-on-deny` or `--fail-on-change` when they apply.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use dataplane::events::EventOutput;
use dataplane::pipeline::{ReplayOptions, SwapAt, WorkerConfig, run_replay_with_sinks};

use super::capture::{CaptureArgs, capture_config};
use super::{ChecksumArg, Format, event_output, print_policy_warnings};

#[derive(Args)]
pub(super) struct ReplayArgs {
    /// pcap or pcapng files, merged in timestamp order.
    #[arg(required = true)]
    captures: Vec<PathBuf>,
    /// The segmentation policy to judge by (YAML; may embed its inventory).
    #[arg(long, value_name = "POLICY.yaml")]
    policy: PathBuf,
    /// Which workload owns each address (YAML `WorkloadInventory`); overrides one
    /// embedded in the policy file.
    #[arg(long, value_name = "WORKLOADS.yaml")]
    inventory: Option<PathBuf>,
    /// Where to write JSON-lines events: a file, `-` for stdout, `none` to discard
    /// [default: eve.json in --log-dir, else in the current directory].
    #[arg(long, value_name = "FILE|-|none")]
    events: Option<String>,
    /// Directory for the default eve.json (created if missing), as Suricata's `-l`;
    /// `--events` overrides it.
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Worker threads (flows are sharded by address pair).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The end-of-run summary as text for people or JSON for scripts.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// From packet number N on (1-based), judge by another policy: `N:POLICY.yaml`.
    #[arg(long = "swap-at", value_name = "PACKET:POLICY.yaml", value_parser = parse_swap)]
    swap_at: Vec<SwapAt>,
    /// Exit with status 1 if any flow or request was denied.
    #[arg(long)]
    fail_on_deny: bool,
    /// Write a record for every transaction (`http`, `dns`, `pgsql`... with its
    /// response), not only alerts.
    #[arg(long)]
    log_all: bool,
    /// Also judge everything by this (old) policy and report which flows and requests
    /// change verdict.
    #[arg(long, value_name = "OLD_POLICY.yaml")]
    compare: Option<PathBuf>,
    /// With --compare: exit with status 1 if any flow or request changed verdict.
    #[arg(long, requires = "compare")]
    fail_on_change: bool,
    /// Also judge everything by this candidate policy, which never enforces, and write a
    /// `shadow` record wherever it disagrees with --policy (as `palisade run --shadow`).
    #[arg(long, value_name = "CANDIDATE.yaml", conflicts_with = "compare")]
    shadow: Option<PathBuf>,
    /// Write the flows of rules with `capture: true` here, one pcap per flow.
    #[arg(long, value_name = "DIR")]
    capture_dir: Option<PathBuf>,
    #[command(flatten)]
    capture_bounds: CaptureArgs,
    /// Validate IP/TCP/UDP checksums (a packet that fails is dropped, never judged):
    /// `auto` samples the captures first and turns validation off when checksums were
    /// offloaded where they were recorded.
    #[arg(long, value_enum, default_value = "auto")]
    checksum: ChecksumArg,
    #[command(flatten)]
    sinks: super::SinkArgs,
}

pub(super) fn run(args: ReplayArgs) -> ExitCode {
    let ReplayArgs {
        captures,
        policy,
        inventory,
        events,
        log_dir,
        workers,
        format,
        swap_at,
        fail_on_deny,
        log_all,
        compare,
        fail_on_change,
        shadow,
        capture_dir,
        capture_bounds,
        checksum,
        sinks,
    } = args;
    if workers == 0 || workers > 256 {
        eprintln!("palisade: --workers must be between 1 and 256");
        return ExitCode::from(2);
    }
    let capture = match capture_config(capture_dir, &capture_bounds) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("palisade: {e}");
            return ExitCode::from(2);
        }
    };
    let events = match event_output(events.as_deref(), log_dir.as_deref(), Path::new("")) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("palisade: {e}");
            return ExitCode::from(2);
        }
    };
    // Replay waits for the sinks before exiting, so a CI run's notification is sent.
    let alert_sinks = match sinks.options(dataplane::events::sinks::REPLAY_FLUSH) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("palisade: {e}");
            return ExitCode::from(2);
        }
    };
    print_policy_warnings(&policy, inventory.as_deref(), capture.is_some());
    let opts = ReplayOptions {
        captures,
        policy,
        inventory,
        events,
        workers,
        worker: WorkerConfig {
            log_all,
            capture,
            checksums: checksum.into(),
            ..WorkerConfig::default()
        },
        swaps: swap_at,
        compare,
        shadow,
        progress: true,
    };
    let report = match run_replay_with_sinks(&opts, alert_sinks) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade: {e}");
            return ExitCode::from(2);
        }
    };
    // With events on stdout, the summary goes to stderr so the stream stays JSON lines.
    let text = match format {
        Format::Text => dataplane::summary::to_text(&report),
        Format::Json => format!("{}\n", dataplane::summary::to_json(&report)),
    };
    if matches!(opts.events, EventOutput::Stdout) {
        eprint!("{text}");
    } else {
        super::out(&text);
    }
    // Read up to the problem, warned about, recorded as an anomaly: as tcpdump and
    // Suricata read a capture that was still being written.
    for e in &report.capture_warnings {
        eprintln!("palisade: warning: {e}");
    }
    // A denied request counts exactly as a denied flow does (PRODUCT.md).
    let denied = [&report.stats.verdicts, &report.stats.tx_verdicts]
        .iter()
        .any(|v| v.iter().any(|((a, _), n)| *a == "deny" && *n > 0));
    if fail_on_deny && denied {
        return ExitCode::from(1);
    }
    // A changed request counts exactly as a changed flow does (PRODUCT.md).
    if fail_on_change && (!report.stats.changes.is_empty() || !report.stats.tx_changes.is_empty()) {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn parse_swap(s: &str) -> Result<SwapAt, String> {
    let (n, p) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected PACKET:POLICY.yaml, e.g. 1000:new-policy.yaml"))?;
    let packet: u64 = n
        .parse()
        .map_err(|_| format!("`{n}` is not a packet number (1-based)"))?;
    if packet == 0 {
        return Err("packet numbers start at 1".into());
    }
    Ok(SwapAt {
        packet,
        policy: PathBuf::from(p),
    })
}
