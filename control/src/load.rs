//! Reading policy and inventory files: YAML to model, with positions in every error.
//!
//! A file is a stream of YAML documents. A policy file holds one `SegmentationPolicy`
//! and may also hold `WorkloadInventory` documents; an inventory file holds only
//! `WorkloadInventory` documents (several are concatenated). Syntax and type errors stop
//! the parse of that file at the first one (serde cannot resume), so loading reports at
//! most one of those per file; document-level checks (`apiVersion`, `kind`) are all
//! reported.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::{Error as YamlError, Location, Spanned};

use crate::error::{Code, Diagnostic, Origin, PolicyErrors, SourcePos, did_you_mean};
use crate::model::{
    API_VERSION, KIND_INVENTORY, KIND_POLICY, Metadata, PolicySpec, SegmentationPolicy, Workload,
    WorkloadInventory,
};

/// Policy and inventory files larger than this are refused before parsing: a policy for
/// 10,000 workloads and rules is a few MiB.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// A policy file as read: its policy and, if the file embeds one, its inventory.
#[derive(Clone, Debug)]
pub struct LoadedPolicy {
    pub policy: SegmentationPolicy,
    pub inventory: Option<WorkloadInventory>,
}

/// Every top-level field either kind may have, so one parse serves both kinds and the
/// spans survive (an internally tagged enum would buffer the document and lose them).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDocument {
    api_version: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    metadata: Option<Spanned<Metadata>>,
    spec: Option<Spanned<PolicySpec>>,
    workloads: Option<Spanned<Vec<Workload>>>,
}

enum Document {
    // Boxed: a policy is twice an inventory's size and documents are moved around.
    Policy(Box<SegmentationPolicy>),
    Inventory(WorkloadInventory),
}

/// Reads and parses a policy file.
pub fn load_policy(path: &Path) -> Result<LoadedPolicy, PolicyErrors> {
    let origin = Origin::new(&path.display().to_string());
    let text = read_file(path, &origin)?;
    load_policy_origin(&text, origin)
}

/// Parses policy text; `origin_name` is the file name used in messages.
pub fn load_policy_str(text: &str, origin_name: &str) -> Result<LoadedPolicy, PolicyErrors> {
    load_policy_origin(text, Origin::new(origin_name))
}

/// Reads and parses a workload inventory file.
pub fn load_inventory(path: &Path) -> Result<WorkloadInventory, PolicyErrors> {
    let origin = Origin::new(&path.display().to_string());
    let text = read_file(path, &origin)?;
    load_inventory_origin(&text, origin)
}

/// Parses inventory text; `origin_name` is the file name used in messages.
pub fn load_inventory_str(
    text: &str,
    origin_name: &str,
) -> Result<WorkloadInventory, PolicyErrors> {
    load_inventory_origin(text, Origin::new(origin_name))
}

fn load_policy_origin(text: &str, origin: Origin) -> Result<LoadedPolicy, PolicyErrors> {
    let docs = parse_documents(text, &origin)?;
    let mut errors = Vec::new();
    let mut policy: Option<SegmentationPolicy> = None;
    let mut inventory: Option<WorkloadInventory> = None;
    for (loc, doc) in docs {
        match doc {
            Document::Policy(p) => {
                if let Some(first) = &policy {
                    errors.push(
                        Diagnostic::error(
                            Code::Documents,
                            SourcePos::new(&origin, loc),
                            "a second SegmentationPolicy document in one file",
                        )
                        .with_help(format!(
                            "a policy file holds one policy; the first is at line {}",
                            first.kind.referenced.line()
                        )),
                    );
                } else {
                    policy = Some(*p);
                }
            }
            Document::Inventory(inv) => merge_inventory(&mut inventory, inv),
        }
    }
    let Some(policy) = policy else {
        errors.push(
            Diagnostic::error(
                Code::Documents,
                SourcePos::file(&origin),
                "no `kind: SegmentationPolicy` document in this file",
            )
            .with_help("a policy file needs one document with `kind: SegmentationPolicy`"),
        );
        return Err(PolicyErrors::from_diagnostics(errors));
    };
    if errors.is_empty() {
        Ok(LoadedPolicy { policy, inventory })
    } else {
        Err(PolicyErrors::from_diagnostics(errors))
    }
}

fn load_inventory_origin(text: &str, origin: Origin) -> Result<WorkloadInventory, PolicyErrors> {
    let docs = parse_documents(text, &origin)?;
    let mut errors = Vec::new();
    let mut inventory = None;
    for (loc, doc) in docs {
        match doc {
            Document::Inventory(inv) => merge_inventory(&mut inventory, inv),
            Document::Policy(_) => errors.push(
                Diagnostic::error(
                    Code::Documents,
                    SourcePos::new(&origin, loc),
                    "a SegmentationPolicy document in an inventory file",
                )
                .with_help("pass the policy with --policy, or move it to its own file"),
            ),
        }
    }
    match inventory {
        Some(inv) if errors.is_empty() => Ok(inv),
        Some(_) => Err(PolicyErrors::from_diagnostics(errors)),
        None => {
            errors.push(
                Diagnostic::error(
                    Code::Documents,
                    SourcePos::file(&origin),
                    "no `kind: WorkloadInventory` document in this file",
                )
                .with_help("an inventory file needs a document with `kind: WorkloadInventory`"),
            );
            Err(PolicyErrors::from_diagnostics(errors))
        }
    }
}

/// Several inventory documents (or an embedded and ...) are one inventory: the workload
/// lists are concatenated in file order.
fn merge_inventory(into: &mut Option<WorkloadInventory>, inv: WorkloadInventory) {
    match into {
        Some(existing) => existing.workloads.extend(inv.workloads),
        None => *into = Some(inv),
    }
}

fn read_file(path: &Path, origin: &Origin) -> Result<String, PolicyErrors> {
    let io_err = |what: String| {
        PolicyErrors::single(
            Diagnostic::error(Code::Io, SourcePos::file(origin), what)
                .with_help("check the path and its permissions"),
        )
    };
    let file = File::open(path).map_err(|e| io_err(format!("cannot open file: {e}")))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it", without
    // trusting the size metadata (a FIFO or /proc file has none).
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(format!("cannot read file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(PolicyErrors::single(
            Diagnostic::error(
                Code::Limit,
                SourcePos::file(origin),
                format!("file is larger than {MAX_FILE_BYTES} bytes"),
            )
            .with_help("split the inventory, or check that this is the right file"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        PolicyErrors::single(
            Diagnostic::error(
                Code::Io,
                SourcePos::file(origin),
                format!(
                    "file is not UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
            .with_help("save the file as UTF-8"),
        )
    })
}

fn yaml_options() -> serde_saphyr::Options {
    // Our diagnostics carry line:col themselves; a snippet would be noise.
    let mut o = serde_saphyr::Options::default();
    o.with_snippet = false;
    o
}

fn parse_documents(text: &str, origin: &Origin) -> Result<Vec<(Location, Document)>, PolicyErrors> {
    let raws: Vec<Spanned<RawDocument>> =
        serde_saphyr::from_multiple_with_options(text, yaml_options())
            .map_err(|e| PolicyErrors::single(yaml_error(origin, &e)))?;
    let mut errors = Vec::new();
    let mut docs = Vec::new();
    for raw in raws {
        if let Some(doc) = classify(raw, origin, &mut errors) {
            docs.push(doc);
        }
    }
    if docs.is_empty() && errors.is_empty() {
        errors.push(
            Diagnostic::error(
                Code::Documents,
                SourcePos::file(origin),
                "file has no YAML documents",
            )
            .with_help("a policy starts with `apiVersion: palisade.dev/v1`"),
        );
    }
    if errors.is_empty() {
        Ok(docs)
    } else {
        Err(PolicyErrors::from_diagnostics(errors))
    }
}

/// Checks a document's `apiVersion` and `kind`, and that its fields belong to that kind.
fn classify(
    raw: Spanned<RawDocument>,
    origin: &Origin,
    errors: &mut Vec<Diagnostic>,
) -> Option<(Location, Document)> {
    let doc_loc = raw.referenced;
    let raw = raw.value;
    let before = errors.len();
    match &raw.api_version {
        None => errors.push(
            Diagnostic::error(
                Code::MissingField,
                SourcePos::new(origin, doc_loc),
                "document has no `apiVersion`",
            )
            .with_help(format!("add `apiVersion: {API_VERSION}`")),
        ),
        Some(v) if v.value != API_VERSION => errors.push(
            Diagnostic::error(
                Code::WrongApiVersion,
                SourcePos::new(origin, v.referenced),
                format!("unsupported apiVersion `{}`", v.value),
            )
            .with_help(format!(
                "this version of Palisade reads `apiVersion: {API_VERSION}`"
            )),
        ),
        Some(_) => {}
    }
    let Some(kind) = &raw.kind else {
        errors.push(
            Diagnostic::error(
                Code::MissingField,
                SourcePos::new(origin, doc_loc),
                "document has no `kind`",
            )
            .with_help(format!(
                "add `kind: {KIND_POLICY}` or `kind: {KIND_INVENTORY}`"
            )),
        );
        return None;
    };
    let misplaced = |errors: &mut Vec<Diagnostic>, field: &str, loc: Location, belongs: &str| {
        errors.push(
            Diagnostic::error(
                Code::UnknownField,
                SourcePos::new(origin, loc),
                format!("field `{field}` does not belong in a {}", kind.value),
            )
            .with_help(format!(
                "`{field}` belongs in a {belongs} document; start one with `---`"
            )),
        );
    };
    match kind.value.as_str() {
        KIND_POLICY => {
            if let Some(w) = &raw.workloads {
                misplaced(errors, "workloads", w.referenced, KIND_INVENTORY);
            }
            let missing = |errors: &mut Vec<Diagnostic>, field: &str| {
                errors.push(
                    Diagnostic::error(
                        Code::MissingField,
                        SourcePos::new(origin, kind.referenced),
                        format!("SegmentationPolicy has no `{field}`"),
                    )
                    .with_help(if field == "metadata" {
                        "add `metadata: {name: <policy name>}`".to_owned()
                    } else {
                        "add `spec:` with `mode`, `defaultAction`, `groups` and `rules`".to_owned()
                    }),
                );
            };
            if raw.metadata.is_none() {
                missing(errors, "metadata");
            }
            if raw.spec.is_none() {
                missing(errors, "spec");
            }
            if errors.len() != before {
                return None;
            }
            let (Some(api_version), Some(kind), Some(metadata), Some(spec)) =
                (raw.api_version, raw.kind, raw.metadata, raw.spec)
            else {
                return None;
            };
            Some((
                doc_loc,
                Document::Policy(Box::new(SegmentationPolicy {
                    api_version,
                    kind,
                    metadata: metadata.value,
                    spec: spec.value,
                    origin: origin.clone(),
                })),
            ))
        }
        KIND_INVENTORY => {
            if let Some(s) = &raw.spec {
                misplaced(errors, "spec", s.referenced, KIND_POLICY);
            }
            // `metadata` is tolerated on an inventory (generated ones often carry it)
            // and ignored.
            if errors.len() != before {
                return None;
            }
            let (Some(api_version), Some(kind)) = (raw.api_version, raw.kind) else {
                return None;
            };
            Some((
                doc_loc,
                Document::Inventory(WorkloadInventory {
                    api_version,
                    kind,
                    workloads: raw.workloads.map(|w| w.value).unwrap_or_default(),
                    origin: origin.clone(),
                }),
            ))
        }
        other => {
            let mut d = Diagnostic::error(
                Code::WrongKind,
                SourcePos::new(origin, kind.referenced),
                format!("unknown kind `{other}`"),
            );
            d = match did_you_mean(other, [KIND_POLICY, KIND_INVENTORY]) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!("expected `{KIND_POLICY}` or `{KIND_INVENTORY}`")),
            };
            errors.push(d);
            None
        }
    }
}

fn one_of(expected: &[&str]) -> String {
    let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    format!("expected one of {}", list.join(", "))
}

/// Turns a YAML/serde error into a diagnostic with a suggestion where one is possible.
pub(crate) fn yaml_error(origin: &Origin, e: &YamlError) -> Diagnostic {
    let pos = SourcePos::new(origin, e.location().unwrap_or(Location::UNKNOWN));
    match e {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let d = Diagnostic::error(Code::UnknownField, pos, format!("unknown field `{field}`"));
            match did_you_mean(field, expected.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None if expected.is_empty() => d.with_help("remove it"),
                None => d.with_help(one_of(expected)),
            }
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let d = Diagnostic::error(
                Code::UnknownValue,
                pos,
                format!("unknown value `{variant}`"),
            );
            match did_you_mean(variant, expected.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(one_of(expected)),
            }
        }
        YamlError::SerdeMissingField { field, .. } => {
            Diagnostic::error(Code::MissingField, pos, format!("missing field `{field}`"))
                .with_help(format!("add `{field}:` to the mapping that ends here"))
        }
        YamlError::DuplicateMappingKey { key, .. } => Diagnostic::error(
            Code::Syntax,
            pos,
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_owned(),
            },
        )
        .with_help("each key may appear once in a mapping; merge or rename the entries"),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => Diagnostic::error(
            Code::Syntax,
            pos,
            format!("found {unexpected}, expected {expected}"),
        )
        .with_help(match expected.as_str() {
            e if e.contains("sequence") => "write a list, e.g. `[a, b]`",
            e if e.contains("map") || e.contains("struct") => {
                "write a mapping, e.g. `{key: value}`"
            }
            _ => "check the value's type against the policy reference",
        }),
        YamlError::Unexpected { expected, .. } if expected.contains("sequence") => {
            Diagnostic::error(Code::Syntax, pos, "expected a list")
                .with_help("write a list, e.g. `[\"*\"]` or `[web, orders]`")
        }
        YamlError::Unexpected { expected, .. } if expected.contains("mapping") => {
            Diagnostic::error(Code::Syntax, pos, "expected a mapping")
                .with_help("write a mapping, e.g. `{app: frontend}`")
        }
        YamlError::AliasError { error, .. } => yaml_error(origin, error),
        other => {
            let text = other.without_snippet().to_string();
            Diagnostic::error(Code::Syntax, pos, strip_location_suffix(&text))
                .with_help("fix the YAML syntax at this position")
        }
    }
}

/// serde-saphyr's plain messages end in "at line L column C"; ours lead with it instead.
fn strip_location_suffix(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: t}\nspec:\n  mode: monitor\n  groups:\n    a: {selector: {app: a}}\n  rules: []\n";

    #[test]
    fn loads_minimal_policy() {
        let l = load_policy_str(POLICY, "t.yaml").unwrap();
        assert_eq!(l.policy.metadata.name.value, "t");
        assert_eq!(l.policy.spec.groups.len(), 1);
        assert!(l.inventory.is_none());
        assert_eq!(l.policy.origin.as_str(), "t.yaml");
    }

    #[test]
    fn embedded_inventory_documents_are_merged() {
        let text = format!(
            "{POLICY}---\napiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n  - {{name: a, ips: [10.0.0.1]}}\n---\napiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n  - {{name: b, ips: [10.0.0.2]}}\n"
        );
        let l = load_policy_str(&text, "t.yaml").unwrap();
        let inv = l.inventory.unwrap();
        assert_eq!(inv.workloads.len(), 2);
        assert_eq!(inv.workloads[1].name.value, "b");
    }

    #[test]
    fn label_values_keep_their_text() {
        let inv = load_inventory_str(
            "apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n  - {name: a, labels: {version: 2, canary: true, commit: 0123}}\n",
            "i.yaml",
        )
        .unwrap();
        let labels: Vec<(&str, &str)> = inv.workloads[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("version", "2"), ("canary", "true"), ("commit", "0123")]
        );
    }

    #[test]
    fn wrong_kind_and_api_version_both_reported() {
        let e = load_policy_str(
            "apiVersion: palisade.dev/v2\nkind: SegmentationPolicyy\n",
            "t.yaml",
        )
        .unwrap_err();
        assert!(e.has(Code::WrongApiVersion));
        assert!(e.has(Code::WrongKind));
        let text = e.to_string();
        assert!(
            text.contains("did you mean `SegmentationPolicy`?"),
            "{text}"
        );
    }

    #[test]
    fn policy_in_inventory_file_is_an_error() {
        let e = load_inventory_str(POLICY, "i.yaml").unwrap_err();
        assert!(e.has(Code::Documents));
    }

    #[test]
    fn empty_and_garbage_input() {
        assert!(
            load_policy_str("", "t.yaml")
                .unwrap_err()
                .has(Code::Documents)
        );
        assert!(
            load_policy_str("- [", "t.yaml")
                .unwrap_err()
                .has(Code::Syntax)
        );
        assert!(load_policy_str("\u{0}\u{1}", "t.yaml").is_err());
        assert!(load_policy_str("[1, 2]", "t.yaml").is_err());
    }

    #[test]
    fn missing_file_is_io_error() {
        let e = load_policy(Path::new("/nonexistent/palisade.yaml")).unwrap_err();
        assert!(e.has(Code::Io));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/palisade.yaml: error: cannot open file")
        );
    }
}
