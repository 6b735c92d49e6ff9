//! `palisade policy`: check a policy, or diff two.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(super) enum PolicyCmd {
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

pub(super) fn run(cmd: PolicyCmd) -> ExitCode {
    match cmd {
        PolicyCmd::Check { policy, inventory } => {
            let report = control::check(&policy, inventory.as_deref());
            super::out(&format!("{report}"));
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        PolicyCmd::Diff { old, new } => {
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
                super::out("no semantic changes\n");
                ExitCode::SUCCESS
            } else {
                // Exit 1 when the policies differ, as diff(1) does (PRODUCT.md).
                super::out(&format!("{d}"));
                ExitCode::from(1)
            }
        }
    }
}
