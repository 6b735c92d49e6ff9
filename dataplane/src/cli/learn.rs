//! `palisade learn`: propose a policy from captured traffic; probing is held for review.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub(super) struct LearnArgs {
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
}

pub(super) fn run(args: LearnArgs) -> ExitCode {
    let LearnArgs {
        captures,
        inventory,
        output,
    } = args;
    match dataplane::learn::learn(captures, inventory, &output) {
        Ok(r) => {
            super::out(
                &(format!(
                    "learned {} rule(s) from {} flows and {} transactions -> {}",
                    r.rules,
                    r.flows,
                    r.transactions,
                    output.display()
                ) + "\n"),
            );
            if r.held > 0 {
                super::out(
                    &(format!(
                        "{} transaction(s) or flow(s) held for review (probing?): listed as `# review:` comments, not allowed",
                        r.held
                    ) + "\n"),
                );
            }
            if r.skipped > 0 {
                super::out(
                    &(format!("{} flow(s) of other IP protocols have no rule", r.skipped) + "\n"),
                );
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
    }
}
