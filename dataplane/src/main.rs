//! `palisade`: argument parsing and wiring only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dataplane::decode::checksum::ChecksumMode;
use dataplane::events::EventOutput;

/// Where `palisade run` writes events without `--events` (PRODUCT.md).
const RUN_EVENTS: &str = "/var/log/palisade/eve.json";
use dataplane::capture::CaptureConfig;
use dataplane::pipeline::live::{RunError, RunOptions, Source};
use dataplane::pipeline::{OnSwap, ReplayOptions, SwapAt, WorkerConfig, run_replay};

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Layer 7 firewall data plane for container nodes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Judge captured traffic against a policy, write events, print a summary.
    Replay {
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
        /// [default: eve.json].
        #[arg(long, value_name = "FILE|-|none")]
        events: Option<String>,
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
        /// Write the flows of rules with `capture: true` here, one pcap per flow.
        #[arg(long, value_name = "DIR")]
        capture_dir: Option<PathBuf>,
        /// Validate IP/TCP/UDP checksums (a packet that fails is dropped, never judged):
        /// `auto` samples the captures first and turns validation off when checksums were
        /// offloaded where they were recorded.
        #[arg(long, value_enum, default_value = "auto")]
        checksum: ChecksumArg,
    },
    /// Judge live traffic: inline from NFQUEUE or a bridge, or passively on a tap.
    Run {
        /// NFQUEUE queue number, or a range `N-M` (one packet thread per queue).
        #[arg(long, value_name = "N[-M]", value_parser = parse_queues, group = "source")]
        nfqueue: Option<(u16, u16)>,
        /// Passive: judge every frame on this interface; denials race with resets only.
        #[arg(long, value_name = "IFACE", group = "source")]
        tap: Option<String>,
        /// Inline: forward allowed frames between two interfaces.
        #[arg(long, value_name = "IFACE_A,IFACE_B", value_parser = parse_bridge, group = "source")]
        bridge: Option<(String, String)>,
        /// The segmentation policy to enforce (YAML; reloaded on SIGHUP, on change, and by
        /// `palisadectl policy apply`).
        #[arg(long, value_name = "POLICY.yaml")]
        policy: PathBuf,
        /// Which workload owns each address (YAML `WorkloadInventory`).
        #[arg(long, value_name = "WORKLOADS.yaml")]
        inventory: Option<PathBuf>,
        /// Where to write JSON-lines events: a file (reopened on SIGHUP), `-` for stdout,
        /// `none` to discard [default: /var/log/palisade/eve.json].
        #[arg(long, value_name = "FILE|-|none")]
        events: Option<String>,
        /// Unix socket for `palisadectl` (created with mode 0600).
        #[arg(long, value_name = "SOCKET")]
        control: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics.
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
        /// Validate IP/TCP/UDP checksums (a packet that fails is dropped, never judged):
        /// `auto` validates on NFQUEUE (the kernel fills in offloaded checksums) and, on
        /// AF_PACKET, samples the first packets to tell whether checksums are offloaded.
        #[arg(long, value_enum, default_value = "auto")]
        checksum: ChecksumArg,
    },
    /// Propose a policy from captured traffic: allow rules for what was observed.
    Learn {
        /// pcap or pcapng files, merged in timestamp order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// Which workload owns each address: groups are proposed per namespace and `app`
        /// label.
        #[arg(long, value_name = "WORKLOADS.yaml")]
        inventory: Option<PathBuf>,
        /// Where to write the proposed policy.
        #[arg(short = 'o', long = "output", value_name = "POLICY.yaml")]
        output: PathBuf,
    },
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Run the bundled example capture through the bundled policy and show what happened.
    Demo,
    /// Measure the whole pipeline on a generated east-west mix held in memory.
    Bench {
        /// Flows in the generated mix (one pass).
        #[arg(long, default_value_t = 2_000)]
        flows: u64,
        /// Run for at least this long (whole passes over the mix).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Worker threads (the mix is sharded by address pair, as replay shards it).
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Judge by this policy instead of the generated ~200-rule one (its embedded
        /// inventory, else the generated inventory).
        #[arg(long, value_name = "POLICY.yaml")]
        policy: Option<PathBuf>,
        /// Write the mix to FILE (pcap) with NAME-inventory.yaml and NAME-policy.yaml next
        /// to it, and exit without running the benchmark.
        #[arg(long, value_name = "FILE")]
        write_pcap: Option<PathBuf>,
        /// The report as text for people or JSON for scripts.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// What changed between two policies, semantically (rule order does not matter).
    Diff {
        /// The policy as it was.
        #[arg(value_name = "OLD.yaml")]
        old: PathBuf,
        /// The policy as it would be.
        #[arg(value_name = "NEW.yaml")]
        new: PathBuf,
    },
    /// Validate a policy (and inventory); prints errors and warnings like a compiler.
    Check {
        /// The policy to check.
        #[arg(value_name = "POLICY.yaml")]
        policy: PathBuf,
        /// Which workload owns each address (the policy's own embedded inventory
        /// otherwise).
        #[arg(long, value_name = "WORKLOADS.yaml")]
        inventory: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OnSwapArg {
    Keep,
    Rejudge,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChecksumArg {
    Auto,
    On,
    Off,
}

impl From<ChecksumArg> for ChecksumMode {
    fn from(a: ChecksumArg) -> Self {
        match a {
            ChecksumArg::Auto => ChecksumMode::Auto,
            ChecksumArg::On => ChecksumMode::Validate,
            ChecksumArg::Off => ChecksumMode::Ignore,
        }
    }
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

/// `--capture-dir`: created if missing; it must be a writable directory.
fn capture_config(dir: Option<PathBuf>) -> Result<Option<CaptureConfig>, String> {
    let Some(dir) = dir else { return Ok(None) };
    std::fs::create_dir_all(&dir).map_err(|e| format!("--capture-dir {}: {e}", dir.display()))?;
    let probe = dir.join(".palisade-write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("--capture-dir {}: not writable: {e}", dir.display()))?;
    Ok(Some(CaptureConfig::new(dir)))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PALISADE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Replay {
            captures,
            policy,
            inventory,
            events,
            workers,
            format,
            swap_at,
            fail_on_deny,
            log_all,
            compare,
            fail_on_change,
            capture_dir,
            checksum,
        } => {
            if workers == 0 || workers > 256 {
                eprintln!("palisade: --workers must be between 1 and 256");
                return ExitCode::from(2);
            }
            let capture = match capture_config(capture_dir) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("palisade: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = ReplayOptions {
                captures,
                policy,
                inventory,
                events: EventOutput::from_arg(events.as_deref(), "eve.json"),
                workers,
                worker: WorkerConfig {
                    log_all,
                    capture,
                    checksums: checksum.into(),
                    ..WorkerConfig::default()
                },
                swaps: swap_at,
                compare,
                progress: true,
            };
            let report = match run_replay(&opts) {
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
                print!("{text}");
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
            if fail_on_change
                && (!report.stats.changes.is_empty() || !report.stats.tx_changes.is_empty())
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Cmd::Learn {
            captures,
            inventory,
            output,
        } => match dataplane::learn::learn(captures, inventory, &output) {
            Ok(r) => {
                println!(
                    "learned {} rule(s) from {} flows and {} transactions -> {}",
                    r.rules,
                    r.flows,
                    r.transactions,
                    output.display()
                );
                if r.skipped > 0 {
                    println!("{} flow(s) of other IP protocols have no rule", r.skipped);
                }
                for e in &r.capture_warnings {
                    eprintln!("palisade learn: warning: {e}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("palisade learn: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Run {
            nfqueue,
            tap,
            bridge,
            policy,
            inventory,
            events,
            control,
            metrics,
            fail_open,
            queue_maxlen,
            log_all,
            on_swap,
            no_watch,
            capture_dir,
            checksum,
        } => {
            let capture = match capture_config(capture_dir) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("palisade run: {e}");
                    return ExitCode::from(2);
                }
            };
            let source = match (nfqueue, tap, bridge) {
                (Some((first, last)), None, None) => Source::Nfqueue { first, last },
                (None, Some(i), None) => Source::Tap(i),
                (None, None, Some((a, b))) => Source::Bridge(a, b),
                _ => {
                    eprintln!("palisade run: give one of --nfqueue, --tap or --bridge");
                    return ExitCode::from(2);
                }
            };
            if events.is_none()
                && let Some(dir) = std::path::Path::new(RUN_EVENTS).parent()
                && let Err(e) = std::fs::create_dir_all(dir)
            {
                eprintln!("palisade: {}: {e}", dir.display());
                return ExitCode::from(2);
            }
            let opts = RunOptions {
                source,
                policy,
                inventory,
                events: EventOutput::from_arg(events.as_deref(), RUN_EVENTS),
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
            };
            match dataplane::pipeline::live::run(&opts) {
                Ok((stats, src)) => {
                    eprintln!(
                        "palisade run: stopped: {} packets ({} dropped, {} resets sent), {} alerts",
                        stats.packets, stats.dropped, src.resets_sent, stats.alerts
                    );
                    ExitCode::SUCCESS
                }
                Err(RunError::Policy(e)) => {
                    eprint!("palisade run: {e}");
                    if !e.ends_with('\n') {
                        eprintln!();
                    }
                    ExitCode::from(2)
                }
                Err(RunError::Io(e)) => {
                    eprintln!("palisade run: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Policy {
            cmd: PolicyCmd::Check { policy, inventory },
        } => {
            let report = control::check(&policy, inventory.as_deref());
            print!("{report}");
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Cmd::Policy {
            cmd: PolicyCmd::Diff { old, new },
        } => {
            let load = |p: &PathBuf| {
                control::load_policy(p).map_err(|e| {
                    eprint!("{e}");
                    ExitCode::from(2)
                })
            };
            let (old, new) = match (load(&old), load(&new)) {
                (Ok(o), Ok(n)) => (o, n),
                (Err(c), _) | (_, Err(c)) => return c,
            };
            let d = control::diff::diff(&old.policy, &new.policy);
            if d.is_empty() {
                println!("no semantic changes");
                ExitCode::SUCCESS
            } else {
                // Exit 1 when the policies differ, as diff(1) does (PRODUCT.md).
                print!("{d}");
                ExitCode::from(1)
            }
        }
        Cmd::Demo => match dataplane::demo::run(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("palisade demo: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Bench {
            flows,
            seconds,
            workers,
            policy,
            write_pcap,
            format,
        } => bench(flows, seconds, workers, policy, write_pcap, format),
    }
}

fn bench(
    flows: u64,
    seconds: f64,
    workers: usize,
    policy: Option<PathBuf>,
    write_pcap: Option<PathBuf>,
    format: Format,
) -> ExitCode {
    use dataplane::bench::{self, BenchError, BenchOptions, eastwest};
    let opts = BenchOptions {
        flows,
        seconds,
        workers,
        policy,
        ..BenchOptions::default()
    };
    if let Some(path) = write_pcap {
        if flows == 0 || flows > bench::run::MAX_FLOWS {
            eprintln!(
                "palisade bench: --flows must be between 1 and {}, got {flows}",
                bench::run::MAX_FLOWS
            );
            return ExitCode::from(2);
        }
        return match eastwest::write_capture(&path, flows, opts.seed) {
            Ok(w) => {
                let s = &w.stats;
                match format {
                    Format::Text => println!(
                        "{}: {} flows, {} packets, {} bytes, {} transactions ({} to be denied)\n\
                         {}: inventory ({} workloads)\n{}: policy",
                        w.pcap.display(),
                        s.total.sessions,
                        s.total.packets,
                        s.total.bytes,
                        s.total.transactions,
                        s.denied,
                        w.inventory.display(),
                        eastwest::workload_count(),
                        w.policy.display()
                    ),
                    Format::Json => {
                        let mut per = serde_json::Map::new();
                        for p in eastwest::Proto::ALL {
                            let c = s.proto(p);
                            per.insert(
                                p.name().into(),
                                serde_json::json!({"flows": c.flows, "transactions": c.transactions,
                                    "packets": c.packets, "bytes": c.bytes}),
                            );
                        }
                        println!(
                            "{}",
                            serde_json::json!({
                                "pcap": w.pcap, "inventory": w.inventory, "policy": w.policy,
                                "flows": s.total.sessions, "packets": s.total.packets,
                                "bytes": s.total.bytes, "transactions": s.total.transactions,
                                "denied_transactions": s.denied, "alerted_transactions": s.alerted,
                                "protocols": per,
                            })
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("palisade bench: {}: {e}", path.display());
                ExitCode::from(2)
            }
        };
    }
    match bench::run(&opts) {
        Ok(r) => {
            match format {
                Format::Text => print!("{}", bench::to_text(&r)),
                Format::Json => println!("{}", bench::to_json(&r)),
            }
            ExitCode::SUCCESS
        }
        Err(BenchError::Policy(e)) => {
            eprint!("palisade bench: {e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("palisade bench: {e}");
            ExitCode::from(2)
        }
    }
}
