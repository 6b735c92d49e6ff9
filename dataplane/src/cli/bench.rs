//! `palisade bench`: measure the whole pipeline on a generated east-west mix held in
//! memory, or write the mix as a capture.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Format;

#[derive(Args)]
pub(super) struct BenchArgs {
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
    /// Also judge everything by this shadow candidate, as `run --shadow` does (never
    /// enforced; its disagreements are counted).
    #[arg(long, value_name = "CANDIDATE.yaml")]
    shadow: Option<PathBuf>,
    /// Write the mix to FILE (pcap) with NAME-inventory.yaml and NAME-policy.yaml next
    /// to it, and exit without running the benchmark.
    #[arg(long, value_name = "FILE")]
    write_pcap: Option<PathBuf>,
    /// The report as text for people or JSON for scripts.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub(super) fn run(args: BenchArgs) -> ExitCode {
    let BenchArgs {
        flows,
        seconds,
        workers,
        policy,
        shadow,
        write_pcap,
        format,
    } = args;
    bench(
        flows,
        seconds,
        workers,
        (policy, shadow),
        write_pcap,
        format,
    )
}

fn bench(
    flows: u64,
    seconds: f64,
    workers: usize,
    (policy, shadow): (Option<PathBuf>, Option<PathBuf>),
    write_pcap: Option<PathBuf>,
    format: Format,
) -> ExitCode {
    use dataplane::bench::{self, BenchError, BenchOptions, eastwest};
    let opts = BenchOptions {
        flows,
        seconds,
        workers,
        policy,
        shadow,
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
                    Format::Text => super::out(
                        &(format!(
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
                        ) + "\n"),
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
                        super::out(
                            &(format!(
                                "{}",
                                serde_json::json!({
                                    "pcap": w.pcap, "inventory": w.inventory, "policy": w.policy,
                                    "flows": s.total.sessions, "packets": s.total.packets,
                                    "bytes": s.total.bytes, "transactions": s.total.transactions,
                                    "denied_transactions": s.denied, "alerted_transactions": s.alerted,
                                    "protocols": per,
                                })
                            ) + "\n"),
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
                Format::Text => super::out(&bench::to_text(&r)),
                Format::Json => super::out(&(bench::to_json(&r).to_string() + "\n")),
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
