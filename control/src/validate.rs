//! Semantic checks on a parsed policy and inventory, producing the typed form that
//! [`crate::snapshot`] compiles. Every problem is collected (not just the first), each
//! with its position and a suggestion.
//!
//! This file runs the checks and holds what they share (limits, the diagnostics
//! context, names, CIDRs); `checked` is their output, `policy` checks groups and rules,
//! `matchers` their L7 matchers, `inventory` the workloads, and `warnings` what is valid
//! but probably not meant.

mod checked;
mod inventory;
mod matchers;
mod policy;
mod warnings;

use std::net::IpAddr;

use ipnet::IpNet;
use serde_saphyr::Spanned;

use crate::error::{Code, Diagnostic, Origin, SourcePos};
use crate::model::{
    API_VERSION, KIND_INVENTORY, KIND_POLICY, Labels, SegmentationPolicy, WorkloadInventory,
};

use inventory::check_workloads;
use policy::{check_groups, check_rules};

pub(crate) use checked::{
    Checked, CheckedGroup, CheckedRule, CheckedWorkload, Peer, Validation, memberships,
};
pub(crate) use warnings::{
    capture_warnings, empty_group_warnings, no_inventory_warnings, shadow_warnings,
};

/// Groups per policy. `GroupId` is a `u16` and `u16::MAX` is the index key of `"*"`.
pub const MAX_GROUPS: usize = 16_384;
/// Rules per policy.
pub const MAX_RULES: usize = 200_000;
/// Workloads per inventory.
pub const MAX_WORKLOADS: usize = 1_000_000;
/// Entries in any one list (ports, CIDRs, addresses, patterns, matchers).
pub const MAX_LIST: usize = 4_096;
/// Compiled size limit of one `regex:` pattern.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// The application protocols a rule's `app` may name.
pub const RULE_APPS: [&str; 9] = [
    "http", "grpc", "postgres", "mysql", "redis", "dns", "tls", "tcp", "udp",
];

struct Ctx<'a> {
    origin: &'a Origin,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn pos<T>(&self, s: &Spanned<T>) -> SourcePos {
        SourcePos::new(self.origin, s.referenced)
    }

    fn error(&mut self, code: Code, pos: SourcePos, msg: String, help: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(code, pos, msg).with_help(help));
    }

    fn warn(&mut self, code: Code, pos: SourcePos, msg: String, help: impl Into<String>) {
        self.warnings
            .push(Diagnostic::warning(code, pos, msg).with_help(help));
    }

    /// Rejects lists that are empty (they would match nothing) or over the size limit.
    fn list_ok<T>(&mut self, what: &str, list: &[T], pos: SourcePos) -> bool {
        if list.is_empty() {
            self.error(
                Code::InvalidRule,
                pos,
                format!("empty `{what}` list matches nothing"),
                format!("remove `{what}` to match any value, or list at least one"),
            );
            false
        } else if list.len() > MAX_LIST {
            self.error(
                Code::Limit,
                pos,
                format!("`{what}` has {} entries (limit {MAX_LIST})", list.len()),
                "split the rule or use wider patterns",
            );
            false
        } else {
            true
        }
    }
}

/// Validates a policy against an inventory.
pub(crate) fn validate(policy: &SegmentationPolicy, inventory: &WorkloadInventory) -> Validation {
    let mut cx = Ctx {
        origin: &policy.origin,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    header(&mut cx, &policy.api_version, &policy.kind, KIND_POLICY);
    let name = policy.metadata.name.value.clone();
    if name.trim().is_empty() {
        let pos = cx.pos(&policy.metadata.name);
        cx.error(
            Code::InvalidRule,
            pos,
            "policy name is empty".into(),
            "set `metadata.name`; it appears in every policy event",
        );
    }
    let groups = check_groups(&mut cx, policy);
    let rules = check_rules(&mut cx, policy, &groups);
    let (mut errors, mut warnings) = (cx.errors, cx.warnings);

    let mut icx = Ctx {
        origin: &inventory.origin,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    header(
        &mut icx,
        &inventory.api_version,
        &inventory.kind,
        KIND_INVENTORY,
    );
    let workloads = check_workloads(&mut icx, inventory);
    errors.extend(icx.errors);
    warnings.extend(icx.warnings);

    Validation {
        checked: Checked {
            name,
            mode: policy.spec.mode(),
            default_action: policy.spec.default_action(),
            on_uninspectable: policy.spec.on_uninspectable.as_ref().map(|u| u.value),
            groups,
            rules,
            workloads,
            policy_origin: policy.origin.clone(),
            inventory_origin: inventory.origin.clone(),
        },
        errors,
        warnings,
    }
}

/// `apiVersion` and `kind` of a value that may have been built in code rather than
/// loaded (loading checks them already).
fn header(cx: &mut Ctx<'_>, api: &Spanned<String>, kind: &Spanned<String>, want: &str) {
    if api.value != API_VERSION {
        let pos = cx.pos(api);
        cx.error(
            Code::WrongApiVersion,
            pos,
            format!("unsupported apiVersion `{}`", api.value),
            format!("use `apiVersion: {API_VERSION}`"),
        );
    }
    if kind.value != want {
        let pos = cx.pos(kind);
        cx.error(
            Code::WrongKind,
            pos,
            format!("expected kind `{want}`, found `{}`", kind.value),
            format!("use `kind: {want}`"),
        );
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

fn sorted_labels(l: &Labels) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = l.iter().map(|(k, v)| (k.0.clone(), v.0.clone())).collect();
    v.sort();
    v
}

/// Parses `10.0.0.0/8`, `fd00::/64`, or a bare address as a host prefix. Warns when host
/// bits are set (`10.0.1.5/24` means `10.0.1.0/24`, which is rarely what was meant).
fn parse_cidr(cx: &mut Ctx<'_>, s: &Spanned<String>, whose: &str) -> Option<IpNet> {
    let text = s.value.trim();
    let pos = cx.pos(s);
    if let Ok(net) = text.parse::<IpNet>() {
        let trunc = net.trunc();
        if trunc != net {
            cx.warn(
                Code::HostBitsSet,
                pos,
                format!("CIDR `{text}` of {whose} has host bits set; it means `{trunc}`"),
                format!("write `{trunc}`, or the address alone for a single host"),
            );
        }
        return Some(trunc);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(IpNet::from(ip.to_canonical()));
    }
    cx.error(
        Code::InvalidAddress,
        pos,
        format!("invalid CIDR `{text}` in {whose}"),
        "write an address prefix such as `10.0.0.0/8` or `fd00::/64` (quote IPv6 in flow lists)",
    );
    None
}
