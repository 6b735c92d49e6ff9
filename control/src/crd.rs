//! The Kubernetes CustomResourceDefinitions of `SegmentationPolicy` and `WorkloadInventory`
//! (group `palisade.dev`, version `v1`), with an OpenAPI v3 schema generated from the
//! serde types [`crate::load`] deserializes, so that what `kubectl apply` accepts cannot
//! drift from what `palisade policy check` reads.
//!
//! Only built with the `schema` feature, which no shipped binary enables: the CRDs are a
//! file in the repository (`deploy/kubernetes/crds.yaml`), written and guarded by
//! `control/tests/crd.rs`. A test-only generator rather than a subcommand because the
//! file is reviewed in diffs and applied by `kubectl`, never produced on a node, and a
//! subcommand would link schemars into the daemon's tooling for nothing.
//!
//! schemars speaks JSON Schema; Kubernetes wants a *structural* schema, a stricter dialect
//! of OpenAPI v3 ([`kubernetes_dialect`] translates, [`structural_problems`] checks):
//! - no `$ref`: every definition is inlined;
//! - a `type` on every node, except int-or-string ones (a port: `8080` or `"8000-8100"`);
//! - enums instead of `oneOf` lists of constants (the keywords: `mode`, `action`, ...);
//! - no `additionalProperties` beside `properties`. The loader's `deny_unknown_fields`
//!   is kept by Kubernetes' own rules instead: unknown fields of a custom resource are
//!   refused under strict field validation (kubectl's default, `--validate=strict`) and
//!   pruned otherwise, never stored. [`strict_schema`] writes that rule back as
//!   `additionalProperties: false` for validators outside a cluster.
//! - no `default`s (the loader applies them; an object keeps what its author wrote), no
//!   `nullable` (an absent field and a null one both mean "not set" to the loader, and
//!   the API server prunes nulls of non-nullable fields).
//! - `metadata` at the root is Kubernetes' ObjectMeta, which a CRD may not constrain
//!   (beyond `name`); the loader's own `metadata: {name}` check stays in the loader.
//!
//! Where the two still differ, on purpose: label and header values. The loader reads
//! `version: 2` as the text `"2"` (YAML makes it a number); Kubernetes label values are
//! strings, and so is the schema: quote such values in a custom resource.
//! `x-kubernetes-preserve-unknown-fields` is used nowhere: every field is known.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use crate::model::{KIND_INVENTORY, KIND_POLICY, SegmentationPolicy, WorkloadInventory};
use crate::validate::RULE_APPS;

pub const GROUP: &str = "palisade.dev";
pub const VERSION: &str = "v1";

/// A rule's `app`: the loader reads any string (to point at a bad one with a suggestion),
/// the validator accepts these names, and so does the schema.
pub fn app_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": RULE_APPS,
        "description": "Application protocol (detected from the bytes, not the port); absent means any protocol, ICMP included."
    })
}

fn generate<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::openapi3().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let mut v = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    kubernetes_dialect(&mut v);
    // Kubernetes owns a custom resource's metadata (ObjectMeta); a CRD may not constrain
    // it beyond `name`, so the loader's `metadata: {name}` stays the loader's check.
    if let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut)
        && props.contains_key("metadata")
    {
        props.insert(
            "metadata".into(),
            json!({"type": "object", "description": "Kubernetes object metadata; a policy file needs `name`."}),
        );
    }
    v
}

/// The `openAPIV3Schema` of `SegmentationPolicy`.
pub fn policy_schema() -> Value {
    let mut v = generate::<SegmentationPolicy>();
    v["description"] = json!(
        "A Palisade segmentation policy: which workloads may talk to which, over which ports and protocols, and which requests (docs/policy.md)."
    );
    v
}

/// The `openAPIV3Schema` of `WorkloadInventory`. A file may omit `metadata`; a custom
/// resource always has one.
pub fn inventory_schema() -> Value {
    let mut v = generate::<WorkloadInventory>();
    v["description"] = json!(
        "Which workload owns each address: names, namespaces, labels, addresses (PRODUCT.md, Workload inventory)."
    );
    if let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut) {
        // The loader tolerates (and ignores) `metadata` on an inventory.
        props.insert("metadata".into(), json!({"type": "object"}));
    }
    v
}

fn definition(kind: &str, plural: &str, short: &str, schema: Value, columns: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{GROUP}"),
            "labels": {"app.kubernetes.io/name": "palisade", "app.kubernetes.io/part-of": "palisade"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
                "shortNames": [short],
                "categories": ["palisade"],
            },
            // One policy judges every workload of a node, across namespaces (groups select
            // namespaces themselves), and the inventory covers the whole node: cluster-wide
            // objects, as the daemon's ClusterRole reads them.
            "scope": "Cluster",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema},
                "additionalPrinterColumns": columns,
            }],
        },
    })
}

/// Both CustomResourceDefinitions, as `kubectl apply` takes them.
pub fn definitions() -> Vec<Value> {
    let age = json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"});
    vec![
        definition(
            KIND_POLICY,
            "segmentationpolicies",
            "segpol",
            policy_schema(),
            json!([
                {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                {"name": "Default", "type": "string", "jsonPath": ".spec.defaultAction"},
                age,
            ]),
        ),
        definition(
            KIND_INVENTORY,
            "workloadinventories",
            "winv",
            inventory_schema(),
            json!([age]),
        ),
    ]
}

/// `deploy/kubernetes/crds.yaml` as it must read.
pub fn crds_yaml() -> String {
    let mut out = String::from(
        "# GENERATED from control/src/model.rs by control/tests/crd.rs: do not edit.\n\
         # Regenerate after changing the model: PALISADE_BLESS=1 cargo test -p control --test crd\n",
    );
    for d in definitions() {
        out.push_str("---\n");
        // Serializing a JSON value cannot fail.
        out.push_str(&serde_saphyr::to_string(&d).unwrap_or_default());
    }
    out
}

/// Rewrites schemars' JSON Schema into Kubernetes' structural dialect (module docs).
pub fn kubernetes_dialect(v: &mut Value) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    for k in [
        "$schema",
        "title",
        "$defs",
        "definitions",
        "default",
        "nullable",
        "format",
        "examples",
        "example",
    ] {
        obj.remove(k);
    }
    // `type: [X, "null"]`: an Option the loader reads as absent when null.
    if let Some(Value::Array(types)) = obj.get("type") {
        let real: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if let [one] = real.as_slice() {
            obj.insert("type".into(), one.clone());
        }
    }
    // An Option: `anyOf: [T, {enum: [null]}]`, or `null` among an enum's values. The
    // loader reads a null as absent; the API server prunes it.
    let is_null =
        |b: &Value| b.get("enum") == Some(&json!([null])) || b.get("type") == Some(&json!("null"));
    if let Some(Value::Array(branches)) = obj.get_mut("anyOf") {
        branches.retain(|b| !is_null(b));
        if let [only] = branches.as_slice() {
            let only = only.as_object().cloned().unwrap_or_default();
            obj.remove("anyOf");
            for (k, val) in only {
                obj.entry(k).or_insert(val);
            }
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|x| !x.is_null());
    }
    // Doc comments are wrapped at 90 columns; a description is one paragraph per line.
    if let Some(Value::String(d)) = obj.get_mut("description") {
        *d = d
            .split("\n\n")
            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    // A list of constant strings (schemars writes one branch per documented variant).
    for junctor in ["oneOf", "anyOf"] {
        let Some(Value::Array(branches)) = obj.get(junctor) else {
            continue;
        };
        let consts: Option<Vec<Value>> = branches
            .iter()
            .map(|b| match b.get("enum") {
                Some(Value::Array(e)) if b.get("type").is_none_or(|t| t == "string") => {
                    Some(e.clone())
                }
                _ => b.get("const").cloned().map(|c| vec![c]),
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect());
        if let Some(values) = consts {
            obj.remove(junctor);
            obj.insert("type".into(), json!("string"));
            obj.insert("enum".into(), Value::Array(values));
        }
    }
    // integer or string: Kubernetes' own pattern for it.
    if let Some(Value::Array(branches)) = obj.get("anyOf") {
        let types: Vec<&Value> = branches.iter().filter_map(|b| b.get("type")).collect();
        if branches.len() == 2 && types == [&json!("integer"), &json!("string")] {
            obj.insert("x-kubernetes-int-or-string".into(), json!(true));
            obj.insert(
                "anyOf".into(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
        }
    }
    if obj.contains_key("properties") && obj.get("additionalProperties") == Some(&json!(false)) {
        obj.remove("additionalProperties");
    }
    for (key, child) in obj.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Some(props) = child.as_object_mut() {
                    props.values_mut().for_each(kubernetes_dialect);
                }
            }
            "items" | "additionalProperties" | "not" => kubernetes_dialect(child),
            "allOf" | "anyOf" | "oneOf" => {
                if let Some(list) = child.as_array_mut() {
                    list.iter_mut().for_each(kubernetes_dialect);
                }
            }
            _ => {}
        }
    }
}

/// What Kubernetes would refuse in `schema` as a CRD's `openAPIV3Schema` (the structural
/// schema rules, and the mutual exclusion of `properties` and `additionalProperties`),
/// one line per problem with its JSON path.
pub fn structural_problems(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, "", false, &mut out);
    out
}

fn walk(v: &Value, path: &str, in_junctor: bool, out: &mut Vec<String>) {
    let Some(obj) = v.as_object() else {
        out.push(format!("{path}: a schema must be an object"));
        return;
    };
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&json!(true));
    for k in obj.keys() {
        if k.starts_with('$') || k == "definitions" || k == "const" || k == "oneOf" {
            out.push(format!("{path}: `{k}` is not allowed"));
        }
    }
    if in_junctor {
        for k in [
            "description",
            "type",
            "default",
            "additionalProperties",
            "nullable",
        ] {
            // The one exception: int-or-string's `anyOf: [{type: integer}, {type: string}]`.
            if obj.contains_key(k) && !(k == "type" && obj.len() == 1) {
                out.push(format!("{path}: `{k}` inside anyOf/allOf/oneOf/not"));
            }
        }
    } else if !obj.contains_key("type") && !int_or_string {
        out.push(format!("{path}: no `type`"));
    }
    if int_or_string && obj.contains_key("type") {
        out.push(format!("{path}: x-kubernetes-int-or-string with a `type`"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!(
            "{path}: `properties` and `additionalProperties` together"
        ));
    }
    if matches!(obj.get("type"), Some(Value::Array(_))) {
        out.push(format!("{path}: `type` must be one string"));
    }
    if obj.get("type") == Some(&json!("array")) && !obj.get("items").is_some_and(Value::is_object) {
        out.push(format!("{path}: an array needs one `items` schema"));
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (name, p) in props {
            walk(p, &format!("{path}.{name}"), in_junctor, out);
        }
    }
    if let Some(a) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        walk(a, &format!("{path}.*"), in_junctor, out);
    }
    if let Some(i) = obj.get("items") {
        walk(i, &format!("{path}[]"), in_junctor, out);
    }
    for j in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = obj.get(j) {
            for (n, b) in list.iter().enumerate() {
                walk(b, &format!("{path}.{j}[{n}]"), true, out);
            }
        }
    }
    if let Some(n) = obj.get("not") {
        walk(n, &format!("{path}.not"), true, out);
    }
}

/// `schema` with `additionalProperties: false` on every object that lists its
/// properties, below the root's `metadata` (Kubernetes' ObjectMeta, which has none
/// here): what strict field validation does to a custom resource, written as JSON
/// Schema so that a validator outside a cluster refuses a misspelt field as the API
/// server and the loader do.
pub fn strict_schema(schema: &Value) -> Value {
    let mut v = schema.clone();
    close(&mut v);
    v
}

fn close(v: &mut Value) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
        obj.insert("additionalProperties".into(), json!(false));
    }
    for (key, child) in obj.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Some(props) = child.as_object_mut() {
                    props.values_mut().for_each(close);
                }
            }
            "items" | "additionalProperties" | "not" => close(child),
            "allOf" | "anyOf" | "oneOf" => {
                if let Some(list) = child.as_array_mut() {
                    list.iter_mut().for_each(close);
                }
            }
            _ => {}
        }
    }
}

/// The `openAPIV3Schema` that a document of `kind` is checked against, if it is ours.
pub fn schema_for_kind(kind: &str) -> Option<Value> {
    match kind {
        KIND_POLICY => Some(policy_schema()),
        KIND_INVENTORY => Some(inventory_schema()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_schemas_are_structural() {
        for s in [policy_schema(), inventory_schema()] {
            assert_eq!(structural_problems(&s), Vec::<String>::new(), "{s:#}");
        }
    }

    #[test]
    fn keywords_are_enums() {
        let s = policy_schema();
        let spec = &s["properties"]["spec"]["properties"];
        assert_eq!(spec["mode"]["enum"], json!(["learn", "monitor", "protect"]));
        assert_eq!(spec["defaultAction"]["enum"], json!(["allow", "deny"]));
        let rule = &spec["rules"]["items"]["properties"];
        assert_eq!(rule["action"]["enum"], json!(["allow", "deny", "alert"]));
        assert_eq!(rule["app"]["enum"], json!(RULE_APPS));
        assert_eq!(
            rule["ports"]["items"]["x-kubernetes-int-or-string"],
            json!(true)
        );
        assert_eq!(
            s["properties"]["spec"]["required"],
            Value::Null,
            "every spec field has a default"
        );
    }
}
