//! `palisade run`: judge live traffic inline (NFQUEUE, a bridge) or passively (a tap)
//! until SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dataplane::capture::CaptureConfig;
use dataplane::inventory::InventoryArg;
use dataplane::pipeline::live::{RunError, RunOptions, Source, SourceCounters};
use dataplane::pipeline::{OnSwap, WorkerConfig, WorkerStats};

use super::capture::{CaptureArgs, capture_config};
use super::{ChecksumArg, event_output, print_policy_warnings};

/// Where `palisade run` writes `eve.json` without `--events` or `--log-dir` (PRODUCT.md).
const RUN_LOG_DIR: &str = "/var/log/palisade";

#[derive(Args)]
pub(super) struct RunArgs {
    /// NFQUEUE queue number, or a range `N-M` (one packet thread per queue).
    #[arg(long, value_name = "N[-M]", value_parser = parse_queues, group = "source")]
    nfqueue: Option<(u16, u16)>,
    /// Passive: judge every frame on this interface and report; nothing is dropped (what
    /// would be is counted as would_drop).
    #[arg(long, value_name = "IFACE", group = "source")]
    tap: Option<String>,
    /// With --tap: race what the policy denies with TCP resets to both ends (off by
    /// default: a tap only observes).
    #[arg(long, requires = "tap")]
    tap_resets: bool,
    /// Inline: forward allowed frames between two interfaces.
    #[arg(long, value_name = "IFACE_A,IFACE_B", value_parser = parse_bridge, group = "source")]
    bridge: Option<(String, String)>,
    /// The segmentation policy to enforce (YAML; reloaded on SIGHUP and on change while
    /// no policy applied over the control socket runs).
    #[arg(long, value_name = "POLICY.yaml")]
    policy: PathBuf,
    /// Which workload owns each address: a YAML `WorkloadInventory` file, or
    /// `containerd[:SOCKET]` for the node's running containers, watched live (default
    /// socket /run/containerd/containerd.sock). Give both to add a file's peers outside
    /// the node to the runtime's workloads.
    #[arg(long, value_name = "WORKLOADS.yaml|containerd[:SOCKET]", value_parser = InventoryArg::parse)]
    inventory: Vec<InventoryArg>,
    /// Where to write JSON-lines events: a file (reopened on SIGHUP), `-` for stdout,
    /// `none` to discard [default: eve.json in --log-dir, else /var/log/palisade/eve.json].
    #[arg(long, value_name = "FILE|-|none")]
    events: Option<String>,
    /// Directory for the default eve.json (created if missing), as Suricata's `-l`;
    /// `--events` overrides it.
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Unix socket for `palisadectl` (created with mode 0600).
    #[arg(long, value_name = "SOCKET")]
    control: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (connections to it are never
    /// judged: counted as `self`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// NFQUEUE: let the kernel accept packets when the queue is full instead of
    /// dropping them.
    #[arg(long)]
    fail_open: bool,
    /// Kernel queue length per NFQUEUE queue.
    #[arg(long, default_value_t = 4096)]
    queue_maxlen: u32,
    /// Write a record for every transaction (`http`, `dns`, `pgsql`...), not only
    /// alerts.
    #[arg(long)]
    log_all: bool,
    /// What a policy swap does to open flows' L4 decision: keep it, or re-judge the
    /// flow at its next packet (resetting flows the new policy denies).
    #[arg(long, value_enum, default_value = "keep")]
    on_swap: OnSwapArg,
    /// Do not watch the policy file for changes (SIGHUP and the control socket still
    /// reload).
    #[arg(long)]
    no_watch: bool,
    /// Write the flows of rules with `capture: true` here, one pcap per flow
    /// (`palisadectl captures` lists them).
    #[arg(long, value_name = "DIR")]
    capture_dir: Option<PathBuf>,
    #[command(flatten)]
    capture_bounds: CaptureArgs,
    /// Validate IP/TCP/UDP checksums (a packet that fails is dropped, never judged):
    /// `auto` validates on NFQUEUE (the kernel fills in offloaded checksums) and, on
    /// AF_PACKET, samples the first packets to tell whether checksums are offloaded.
    #[arg(long, value_enum, default_value = "auto")]
    checksum: ChecksumArg,
    /// Where state that outlives a restart is kept (the quarantine, quarantine.json).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/palisade")]
    state_dir: PathBuf,
    /// A candidate policy judged beside --policy on the same packets, never enforced: a
    /// `shadow` record wherever the two disagree (`palisadectl shadow show|promote|clear`).
    #[arg(long, value_name = "CANDIDATE.yaml")]
    shadow: Option<PathBuf>,
    #[command(flatten)]
    sinks: super::SinkArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnSwapArg {
    Keep,
    Rejudge,
}

pub(super) fn run(args: RunArgs) -> ExitCode {
    let RunArgs {
        nfqueue,
        tap,
        tap_resets,
        bridge,
        policy,
        inventory,
        events,
        log_dir,
        control,
        metrics,
        fail_open,
        queue_maxlen,
        log_all,
        on_swap,
        no_watch,
        capture_dir,
        capture_bounds,
        checksum,
        state_dir,
        shadow,
        sinks,
    } = args;
    let capture = match capture_config(capture_dir, &capture_bounds) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("palisade run: {e}");
            return ExitCode::from(2);
        }
    };
    let alert_sinks = match sinks.options(dataplane::events::sinks::LIVE_FLUSH) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("palisade run: {e}");
            return ExitCode::from(2);
        }
    };
    // clap's `requires` is not enforced for a flag beside an argument group: checked here.
    if tap_resets && tap.is_none() {
        eprintln!(
            "palisade run: --tap-resets needs --tap (an inline source drops and resets by itself)"
        );
        return ExitCode::from(2);
    }
    let source = match (nfqueue, tap, bridge) {
        (Some((first, last)), None, None) => Source::Nfqueue { first, last },
        (None, Some(i), None) => Source::Tap(i),
        (None, None, Some((a, b))) => Source::Bridge(a, b),
        _ => {
            eprintln!("palisade run: give one of --nfqueue, --tap or --bridge");
            return ExitCode::from(2);
        }
    };
    let events = match event_output(
        events.as_deref(),
        log_dir.as_deref(),
        Path::new(RUN_LOG_DIR),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("palisade run: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut file, mut containerd) = (None, None);
    for arg in inventory {
        let (slot, what) = match arg {
            InventoryArg::File(p) => (&mut file, p),
            InventoryArg::Containerd(p) => (&mut containerd, p),
        };
        if slot.replace(what).is_some() {
            eprintln!(
                "palisade run: --inventory: give at most one file and one containerd[:SOCKET]"
            );
            return ExitCode::from(2);
        }
    }
    let inventory = file;
    print_policy_warnings(&policy, inventory.as_deref(), capture.is_some());
    let tap = matches!(source, Source::Tap(_));
    let opts = RunOptions {
        source,
        policy,
        inventory,
        containerd,
        events,
        control,
        metrics,
        fail_open,
        queue_maxlen: queue_maxlen.clamp(1, 1 << 20),
        worker: WorkerConfig {
            log_all,
            on_swap: match on_swap {
                OnSwapArg::Keep => OnSwap::Keep,
                OnSwapArg::Rejudge => OnSwap::Rejudge,
            },
            // A running daemon's captures are readable while their flows go on.
            capture: capture.map(|c| CaptureConfig {
                flush_each_packet: true,
                ..c
            }),
            checksums: checksum.into(),
            ..WorkerConfig::default()
        },
        watch: !no_watch,
        tap_resets,
        state_dir,
        shadow,
        alert_sinks,
    };
    match dataplane::pipeline::live::run(&opts) {
        Ok((stats, src, elapsed)) => {
            eprintln!("palisade run: {}", stop_line(&stats, &src, elapsed, tap));
            ExitCode::SUCCESS
        }
        Err(RunError::Policy(e)) => {
            eprint!("palisade run: {e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(2)
        }
        Err(e @ (RunError::Io(_) | RunError::Inventory(_))) => {
            eprintln!("palisade run: {e}");
            ExitCode::from(2)
        }
    }
}

/// The line `palisade run` ends with, in the words of `replay --format json`,
/// `palisadectl status` and the metrics (docs/internals.md, "Figures"). A tap never
/// claims drops: what the policy refused there is `would_drop`.
fn stop_line(s: &WorkerStats, src: &SourceCounters, elapsed: Duration, tap: bool) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.packets as f64 / secs
    } else {
        0.0
    };
    let verdicts = if tap {
        format!("accept {}, would_drop {}", s.accepted, s.would_drop)
    } else {
        format!(
            "accept {}, drop {}, reset {}",
            s.accepted, s.dropped, s.reset
        )
    };
    format!(
        "stopped after {secs:.3} s: {} packets ({verdicts}, self {}), {} resets sent, {} alerts, {rate:.0} pkt/s",
        s.packets, s.self_packets, src.resets_sent, s.alerts
    )
}

fn parse_queues(s: &str) -> Result<(u16, u16), String> {
    let num = |t: &str| {
        t.parse::<u16>()
            .map_err(|_| format!("`{t}` is not a queue number (0-65535)"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(s)?, num(s)?),
    };
    if a > b {
        return Err(format!("`{s}`: the range is empty"));
    }
    if b - a >= 64 {
        return Err(format!("`{s}`: at most 64 queues"));
    }
    Ok((a, b))
}

fn parse_bridge(s: &str) -> Result<(String, String), String> {
    match s.split_once(',') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && a != b => {
            Ok((a.to_string(), b.to_string()))
        }
        _ => Err(format!(
            "`{s}`: expected two different interfaces, IFACE_A,IFACE_B"
        )),
    }
}
