//! Palisade's policy language: typed model, YAML loading with `file:line:col` errors,
//! validation, and compilation into an immutable, versioned [`PolicySnapshot`].
//!
//! Layer: between `proto-parsers` (whose [`proto_parsers::AppProto`] names protocols
//! here) and `dataplane`, which never parses YAML and only queries snapshots.
//!
//! Guarantees:
//! - Hostile or broken input never panics; every problem comes back as a
//!   [`Diagnostic`] that names the file, line and column, says what is wrong and what to
//!   do. Semantic errors are all collected; YAML syntax/type errors stop at the first
//!   per file, because serde cannot resume after one.
//! - A snapshot is immutable, `Send + Sync`, without interior mutability; lookups
//!   ([`PolicySnapshot::resolve`], [`PolicySnapshot::judge_flow`],
//!   [`PolicySnapshot::judge_request`]) never allocate.
//! - Every table has a limit ([`validate::MAX_GROUPS`], [`validate::MAX_RULES`],
//!   [`validate::MAX_WORKLOADS`], [`validate::MAX_LIST`], [`load::MAX_FILE_BYTES`]);
//!   exceeding one is a [`Code::Limit`] error, not growth.
//!
//! YAML is read with `serde-saphyr`: `serde_yaml` is archived and `serde_yml` is unsound
//! (RUSTSEC-2025-0067/0068). serde-saphyr's `Spanned` gives every value its position,
//! and its parser enforces budgets (alias expansion, depth) against YAML bombs.
//!
//! # Semantics
//!
//! PRODUCT.md's rules, plus these decisions:
//! - **Group membership.** A workload is in every group whose `selector` labels all
//!   match its labels and whose `namespaces` (if given) contains its namespace
//!   (`selector: {}` selects every workload; a workload without `namespace` is in
//!   `default`). A group's `cidrs` contain addresses inside them that no inventory
//!   workload owns: cluster endpoints are selected by labels, not by address (as
//!   Cilium's CIDR identities). A group with both contains both. An address in several
//!   group CIDRs is in all of them.
//! - **Resolution** is one longest-prefix match over workload addresses (host prefixes),
//!   workload CIDRs and group CIDRs; membership is precomputed per prefix.
//! - **`"*"`** in `from`/`to` matches any endpoint, including unknown addresses.
//! - **`app`** implies the transport: `http`, `grpc`, `postgres`, `mysql`, `redis`,
//!   `tls`, `tcp` need TCP; `udp` needs UDP; `dns` UDP or TCP; no `app` matches any
//!   transport, ICMP included. Once the flow's protocol is known, a rule matches only
//!   its own protocol, except that `tcp`/`udp` match any protocol on that transport and
//!   `http` also matches HTTP/2 (PRODUCT.md's rule apps have no `http2`: `http` means
//!   HTTP of any version; gRPC is separate). Before classification (`app == None`, e.g.
//!   at the SYN) allow rules count as covering if the transport fits (tentative
//!   admission) while deny/alert rules for a specific protocol wait for the protocol.
//! - **Ports** narrow on the destination port; absent = any. Rules with ports never
//!   match ICMP or other non-TCP/UDP traffic.
//! - **Deny wins**: any matching deny gives Deny (the first in declaration order names
//!   the rule), else any alert gives Alert, else any allow gives Allow, whatever the rule
//!   order. An allow rule without L7 matchers is preferred over one with them (it
//!   admits every transaction); if only the latter match, the decision is
//!   `l7_constrained`. Deny and alert rules *with* L7 matchers judge transactions, not
//!   flows, so they do not decide at L4 (they still set `capture`).
//! - **Severity**: the deciding rule's, else High for deny, Medium for alert, Low for
//!   allow. **capture** is set if any matching rule captures.
//! - **No rule matched**: the mode decides. The mode is that of the destination's first
//!   group (declaration order) with a `mode`, else the source's, else `spec.mode`
//!   (default `protect`). `protect` applies `defaultAction` (default `deny`): deny is
//!   enforced; `monitor` gives Alert; `learn` gives Allow. A matching deny rule under
//!   `monitor` or `learn` reports Deny with `enforce == false`: only Deny in `protect`
//!   drops.
//! - **Transactions** ([`PolicySnapshot::judge_request`]): L7 matchers are compiled into
//!   per-destination indexes; their exact semantics (globs, SQL tables and statements,
//!   logins, case rules) are in the [`l7`] module doc.
//! - **Diff** ([`diff::diff`]): groups by name, rules by id, sets compared as sets, rule
//!   order ignored (deny wins, so order never changes a verdict).
//!
//! # Modules, in dependency order
//!
//! Each imports only modules above it (`use crate::` lines), in the order of the
//! pipeline YAML -> model -> checked -> compiled -> judged:
//! 1. [`vocab`]: the words the language and the snapshot share (`Action`, `Mode`,
//!    `Severity`, `OnUninspectable`, `DefaultAction`, `GroupId`). Imports nothing.
//! 2. [`error`]: diagnostics with positions. Imports nothing.
//! 3. [`model`]: the language as written (serde types). Imports vocab, error.
//! 4. [`load`]: YAML files to model. Imports model, error.
//! 5. [`validate`]: model to its checked, typed form (`validate/checked.rs`). Imports
//!    model, error, vocab.
//! 6. `rule`: the compiled rule both indexes are built from. Imports model, vocab.
//! 7. `l7/index.rs` and `l7/compile.rs` (with `bits`, `dict`): the L7 index and its
//!    compiler, from compiled rules. Import rule, model, vocab.
//! 8. [`snapshot`]: checked form to [`PolicySnapshot`] (`build.rs`), the flow index
//!    (`flow_index/`) and the flow judge (`judge.rs`). Imports validate (its output),
//!    l7's index, rule, error, vocab; not load, not model.
//! 9. `l7/eval.rs` and `l7/judge.rs`: the transaction judge on the snapshot
//!    ([`PolicySnapshot::judge_transaction_cached`], [`FlowRules`]). Import snapshot,
//!    rule, model, vocab.
//! 10. [`mod@diff`] (model, vocab) and [`learn`] (model): tools on the language.
//! 11. This file: [`compile`], [`load_snapshot`], [`check`], tying the stages together.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::Path;

#[cfg(feature = "schema")]
pub mod crd;
pub mod diff;
pub mod error;
pub mod l7;
pub mod learn;
pub mod load;
pub mod model;
mod rule;
pub mod snapshot;
pub mod validate;
pub mod vocab;

pub use diff::{PolicyDiff, diff};
pub use error::{Code, Diagnostic, Level, Origin, PolicyError, PolicyErrors, SourcePos};
pub use l7::FlowRules;
pub use load::{LoadedPolicy, load_inventory, load_inventory_str, load_policy, load_policy_str};
pub use model::{SegmentationPolicy, WorkloadInventory};
pub use snapshot::{
    CompiledRule, Decision, Endpoint, PolicySnapshot, RuleId, Transport, Uninspectable, WorkloadId,
    WorkloadInfo,
};
pub use vocab::{Action, GroupId, Mode, OnUninspectable, Severity};

/// Validates and compiles a policy against an inventory into snapshot `version`.
pub fn compile(
    policy: &SegmentationPolicy,
    inventory: &WorkloadInventory,
    version: u64,
) -> Result<PolicySnapshot, PolicyErrors> {
    let v = validate::validate(policy, inventory);
    if !v.errors.is_empty() {
        return Err(PolicyErrors::from_diagnostics(v.errors));
    }
    snapshot::build(v.checked, version)
}

/// Loads, validates and compiles: the inventory comes from `inventory_path`, else
/// from the policy file's own `WorkloadInventory` documents, else is empty.
pub fn load_snapshot(
    policy_path: &Path,
    inventory_path: Option<&Path>,
    version: u64,
) -> Result<PolicySnapshot, PolicyErrors> {
    snapshot_of(load_policy(policy_path), inventory_path, version)
}

/// [`load_snapshot`] of policy text already read (`origin_name` names it in messages): a
/// daemon compiles exactly the text it keeps for `policy show` and rollback.
pub fn load_snapshot_str(
    text: &str,
    origin_name: &str,
    inventory_path: Option<&Path>,
    version: u64,
) -> Result<PolicySnapshot, PolicyErrors> {
    snapshot_of(load_policy_str(text, origin_name), inventory_path, version)
}

fn snapshot_of(
    loaded: Result<LoadedPolicy, PolicyErrors>,
    inventory_path: Option<&Path>,
    version: u64,
) -> Result<PolicySnapshot, PolicyErrors> {
    let separate = inventory_path.map(load_inventory);
    let (loaded, separate) = match (loaded, separate) {
        (Ok(l), None) => (l, None),
        (Ok(l), Some(Ok(i))) => (l, Some(i)),
        (Err(e), None | Some(Ok(_))) | (Ok(_), Some(Err(e))) => return Err(e),
        (Err(mut a), Some(Err(b))) => {
            a.0.extend(b.0);
            return Err(a);
        }
    };
    let inventory = separate
        .or(loaded.inventory)
        .unwrap_or_else(WorkloadInventory::empty);
    compile(&loaded.policy, &inventory, version)
}

/// The outcome of `palisade policy check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.errors.iter().chain(&self.warnings) {
            writeln!(f, "{d}")?;
        }
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        // Ends in a newline: the report is meant to be printed as is.
        if self.errors.is_empty() {
            writeln!(f, "ok: {}", plural(self.warnings.len(), "warning"))
        } else {
            writeln!(
                f,
                "failed: {}, {}",
                plural(self.errors.len(), "error"),
                plural(self.warnings.len(), "warning")
            )
        }
    }
}

/// Loads, validates and compiles a policy (with the inventory from `inventory_path`,
/// else the one embedded in the policy file, else none), reporting every error and
/// warning: what `palisade policy check` prints.
pub fn check(policy_path: &Path, inventory_path: Option<&Path>) -> CheckReport {
    check_files(policy_path, inventory_path, None, true)
}

/// What a command that is about to judge traffic by a policy should warn about before it
/// starts (`palisade replay`, `palisade run`): [`check`]'s warnings, plus the rules with
/// `capture: true` when `capture_dir` is false. The policy is validated, not compiled
/// (the command compiles it itself and reports its errors), so `errors` may be
/// incomplete; read `warnings`.
pub fn lint(policy_path: &Path, inventory_path: Option<&Path>, capture_dir: bool) -> CheckReport {
    check_files(policy_path, inventory_path, Some(capture_dir), false)
}

fn check_files(
    policy_path: &Path,
    inventory_path: Option<&Path>,
    capture_dir: Option<bool>,
    build: bool,
) -> CheckReport {
    let mut report = CheckReport::default();
    let loaded = match load_policy(policy_path) {
        Ok(l) => Some(l),
        Err(e) => {
            report.errors.extend(e.0.into_iter().map(|e| e.0));
            None
        }
    };
    let separate = match inventory_path.map(load_inventory) {
        Some(Ok(i)) => Some(i),
        Some(Err(e)) => {
            report.errors.extend(e.0.into_iter().map(|e| e.0));
            None
        }
        None => None,
    };
    let Some(loaded) = loaded else {
        return report;
    };
    let given = inventory_path.is_some() || loaded.inventory.is_some();
    // An inventory that failed to load was reported; still check the policy itself
    // (against no workloads) so that all of its errors show in one run.
    let inventory = separate
        .or(loaded.inventory)
        .unwrap_or_else(WorkloadInventory::empty);
    let sub = check_checked(
        validate::validate(&loaded.policy, &inventory),
        Some(given),
        capture_dir,
        build,
    );
    report.errors.extend(sub.errors);
    report.warnings.extend(sub.warnings);
    report
}

/// [`check`] on already loaded documents. An empty `inventory` counts as one that was
/// given: there is no warning that the selector groups have none to select from.
pub fn check_policy(policy: &SegmentationPolicy, inventory: &WorkloadInventory) -> CheckReport {
    check_checked(validate::validate(policy, inventory), None, None, true)
}

/// The warnings on a valid policy, and (with `build`) the errors only compiling finds.
/// `inventory_given`: `None` when not known (no warning about a missing inventory).
fn check_checked(
    v: validate::Validation,
    inventory_given: Option<bool>,
    capture_dir: Option<bool>,
    build: bool,
) -> CheckReport {
    let mut report = CheckReport {
        errors: v.errors,
        warnings: v.warnings,
    };
    if report.errors.is_empty() {
        let c = &v.checked;
        report.warnings.extend(validate::shadow_warnings(c));
        report.warnings.extend(validate::empty_group_warnings(c));
        if let Some(given) = inventory_given {
            report
                .warnings
                .extend(validate::no_inventory_warnings(c, given));
        }
        if capture_dir == Some(false) {
            report.warnings.extend(validate::capture_warnings(c));
        }
        if build && let Err(e) = snapshot::build(v.checked, 0) {
            report.errors.extend(e.0.into_iter().map(|e| e.0));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn snapshot_is_send_sync() {
        assert_send_sync::<PolicySnapshot>();
        assert_send_sync::<PolicyErrors>();
    }
}
