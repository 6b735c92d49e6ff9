//! The policy language as written: serde types for `SegmentationPolicy` and
//! `WorkloadInventory` documents.
//!
//! Values that a later check may reject are kept as written (strings for addresses and
//! patterns, [`PortSpec`] for ports) and wrapped in [`Spanned`] so that validation can
//! point at their line and column and report every problem, not only the first one
//! serde would stop at. Unknown fields are rejected at parse time
//! (`deny_unknown_fields`): a misspelt `defaultActon` must never silently mean "absent".
//!
//! The types also serialize, so `palisade learn` can write a policy; spans are ignored
//! on output ([`spanned`] builds values that were never read from a file).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use serde_saphyr::{Location, Spanned};

use crate::error::Origin;
// Re-exported so that the language's words keep their `model::` paths.
pub use crate::vocab::{Action, DefaultAction, Mode, OnUninspectable, Severity};

pub const API_VERSION: &str = "palisade.dev/v1";
pub const KIND_POLICY: &str = "SegmentationPolicy";
pub const KIND_INVENTORY: &str = "WorkloadInventory";

/// Wraps a value built in code (no source position).
pub fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// A YAML mapping that keeps its entries in file order.
///
/// Order matters: group declaration order decides [`crate::PolicySnapshot::groups_of`]
/// and which group's mode override applies. Duplicate keys are rejected by the YAML
/// loader before this type sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedMap<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<K, V> OrderedMap<K, V> {
    pub fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for V_<K, V> {
            type Value = OrderedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                // `labels:` with nothing after it is an empty map, not an error.
                Ok(OrderedMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                // The hint comes from the input: cap it so a lying size cannot reserve
                // gigabytes up front.
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = m.next_entry()? {
                    v.push(entry);
                }
                Ok(OrderedMap(v))
            }
        }
        d.deserialize_map(V_(PhantomData))
    }
}

impl<K: Serialize, V: Serialize> Serialize for OrderedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A label or annotation value. YAML reads `version: 2` or `canary: true` as a number or
/// a boolean; Kubernetes labels are strings, so any scalar is taken as its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TV;
        impl Visitor<'_> for TV {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        // deserialize_str hands us the scalar's text as written, so `commit: 0123`
        // stays "0123" rather than becoming the number 123.
        d.deserialize_str(TV)
    }
}

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// The schema of a mapping whose keys are names: an object of V (keys are strings in YAML
// and JSON alike, whatever K the loader reads them into).
#[cfg(feature = "schema")]
impl<K, V: schemars::JsonSchema> schemars::JsonSchema for OrderedMap<K, V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "object", "additionalProperties": g.subschema_for::<V>()})
    }
}

/// `key: value` pairs in file order (labels, selectors, annotations, headers).
pub type Labels = OrderedMap<Text, Text>;

/// One entry of a rule's `ports`: a number (`8080`) or a range (`"8000-8100"`), kept as
/// written so that every bad port in a file is reported, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    Number(i64),
    Text(String),
}

impl PortSpec {
    /// The inclusive range this entry denotes, or what is wrong with it.
    pub fn range(&self) -> Result<(u16, u16), String> {
        fn one(v: i64, raw: &str) -> Result<u16, String> {
            match u16::try_from(v) {
                Ok(p) if p != 0 => Ok(p),
                _ => Err(format!("port `{raw}` is out of range 1-65535")),
            }
        }
        fn parse(s: &str) -> Result<u16, String> {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(v) => one(v, t),
                Err(_) => Err(format!("`{t}` is not a port number")),
            }
        }
        match self {
            PortSpec::Number(n) => one(*n, &n.to_string()).map(|p| (p, p)),
            PortSpec::Text(s) => match s.split_once('-') {
                None => parse(s).map(|p| (p, p)),
                Some((a, b)) => {
                    let lo = parse(a)?;
                    let hi = parse(b)?;
                    if lo > hi {
                        Err(format!("port range `{s}` is empty ({lo} > {hi})"))
                    } else {
                        Ok((lo, hi))
                    }
                }
            },
        }
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PV;
        impl Visitor<'_> for PV {
            type Value = PortSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a range like \"8000-8100\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortSpec, E> {
                Ok(PortSpec::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortSpec, E> {
                Ok(PortSpec::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortSpec, E> {
                Ok(PortSpec::Text(v.to_owned()))
            }
        }
        d.deserialize_any(PV)
    }
}

// What the deserializer above takes: a number or a string (the range is checked later,
// with the entry's position). `crate::crd` turns this into Kubernetes' int-or-string.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for PortSpec {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PortSpec".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    }
}

impl Serialize for PortSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PortSpec::Number(n) => s.serialize_i64(*n),
            PortSpec::Text(t) => s.serialize_str(t),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inventory

#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadInventory {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub api_version: Spanned<String>,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// The file this was read from (for diagnostics).
    #[serde(skip)]
    pub origin: Origin,
}

impl WorkloadInventory {
    /// No workloads: every address is unknown or matched only by group CIDRs.
    pub fn empty() -> Self {
        WorkloadInventory {
            api_version: spanned(API_VERSION.to_owned()),
            kind: spanned(KIND_INVENTORY.to_owned()),
            workloads: Vec::new(),
            origin: Origin::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Spanned<String>,
    /// Absent means `default`, as in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub namespace: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub ips: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub cidrs: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub annotations: Labels,
}

impl Workload {
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_ref()
            .map_or("default", |n| n.value.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// Policy

#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SegmentationPolicy {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub api_version: Spanned<String>,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    pub spec: PolicySpec,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Spanned<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// Absent means `protect`: a firewall that was not told otherwise enforces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Mode>"))]
    pub mode: Option<Spanned<Mode>>,
    /// Absent means `deny` (fail closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<DefaultAction>"))]
    pub default_action: Option<Spanned<DefaultAction>>,
    /// What happens to a flow Palisade cannot judge (a parser limit or error, bytes it
    /// never saw, ambiguous framing, an unknown protocol where rules expect one). Absent
    /// means `deny` in `protect` mode, `alert` in `monitor`, `allow` in `learn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<OnUninspectable>"))]
    pub on_uninspectable: Option<Spanned<OnUninspectable>>,
    #[serde(default)]
    pub groups: OrderedMap<Spanned<String>, Group>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl PolicySpec {
    pub fn mode(&self) -> Mode {
        self.mode.as_ref().map_or(Mode::Protect, |m| m.value)
    }
    pub fn default_action(&self) -> DefaultAction {
        self.default_action
            .as_ref()
            .map_or(DefaultAction::Deny, |a| a.value)
    }
}

/// A named set of endpoints: workloads chosen by labels/namespaces, and/or addresses
/// outside the inventory chosen by CIDR.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Group {
    /// Every listed label must match. `selector: {}` selects every workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Labels>"))]
    pub selector: Option<Spanned<Labels>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub namespaces: Option<Vec<Spanned<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub cidrs: Option<Vec<Spanned<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Mode>"))]
    pub mode: Option<Spanned<Mode>>,
    /// Overrides `spec.onUninspectable` for flows to (else from) this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<OnUninspectable>"))]
    pub on_uninspectable: Option<Spanned<OnUninspectable>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub id: Spanned<String>,
    /// Group names, or `"*"` for any endpoint.
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub from: Spanned<Vec<Spanned<String>>>,
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub to: Spanned<Vec<Spanned<String>>>,
    /// Destination ports; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<PortSpec>>"))]
    pub ports: Option<Spanned<Vec<Spanned<PortSpec>>>>,
    /// Application protocol name (`http`, `grpc`, `postgres`, `mysql`, `redis`, `dns`,
    /// `tls`, `tcp`, `udp`); absent means any protocol, including ICMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::crd::app_schema"))]
    pub app: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<HttpMatch>>"))]
    pub http: Option<Spanned<Vec<HttpMatch>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<GrpcMatch>>"))]
    pub grpc: Option<Spanned<Vec<GrpcMatch>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<SqlMatch>>"))]
    pub sql: Option<Spanned<Vec<SqlMatch>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<RedisMatch>>"))]
    pub redis: Option<Spanned<Vec<RedisMatch>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<DnsMatch>>"))]
    pub dns: Option<Spanned<Vec<DnsMatch>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<TlsMatch>>"))]
    pub tls: Option<Spanned<Vec<TlsMatch>>>,
    #[cfg_attr(feature = "schema", schemars(with = "Action"))]
    pub action: Spanned<Action>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture: bool,
    /// On a deny or alert rule: a match quarantines the source workload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quarantine: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Severity>"))]
    pub severity: Option<Spanned<Severity>>,
}

impl Rule {
    /// The rule's L7 matcher lists, whichever kinds are present, with their positions.
    pub fn l7_lists(&self) -> Vec<(L7Kind, Location, usize)> {
        let mut v = Vec::new();
        let mut push = |k: L7Kind, loc: Location, n: usize| v.push((k, loc, n));
        if let Some(m) = &self.http {
            push(L7Kind::Http, m.referenced, m.value.len());
        }
        if let Some(m) = &self.grpc {
            push(L7Kind::Grpc, m.referenced, m.value.len());
        }
        if let Some(m) = &self.sql {
            push(L7Kind::Sql, m.referenced, m.value.len());
        }
        if let Some(m) = &self.redis {
            push(L7Kind::Redis, m.referenced, m.value.len());
        }
        if let Some(m) = &self.dns {
            push(L7Kind::Dns, m.referenced, m.value.len());
        }
        if let Some(m) = &self.tls {
            push(L7Kind::Tls, m.referenced, m.value.len());
        }
        v
    }

    /// The parsed matchers, if the rule has exactly one kind of them.
    pub fn l7(&self) -> Option<L7Matchers> {
        let mut found = None;
        let mut n = 0;
        let mut take = |m: L7Matchers| {
            n += 1;
            found = Some(m);
        };
        if let Some(m) = &self.http {
            take(L7Matchers::Http(m.value.clone()));
        }
        if let Some(m) = &self.grpc {
            take(L7Matchers::Grpc(m.value.clone()));
        }
        if let Some(m) = &self.sql {
            take(L7Matchers::Sql(m.value.clone()));
        }
        if let Some(m) = &self.redis {
            take(L7Matchers::Redis(m.value.clone()));
        }
        if let Some(m) = &self.dns {
            take(L7Matchers::Dns(m.value.clone()));
        }
        if let Some(m) = &self.tls {
            take(L7Matchers::Tls(m.value.clone()));
        }
        if n == 1 { found } else { None }
    }
}

/// Which kind of L7 matcher list a rule carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L7Kind {
    Http,
    Grpc,
    Sql,
    Redis,
    Dns,
    Tls,
}

impl L7Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            L7Kind::Http => "http",
            L7Kind::Grpc => "grpc",
            L7Kind::Sql => "sql",
            L7Kind::Redis => "redis",
            L7Kind::Dns => "dns",
            L7Kind::Tls => "tls",
        }
    }

    /// The rule apps this matcher kind can judge.
    pub const fn apps(self) -> &'static [&'static str] {
        match self {
            L7Kind::Http => &["http"],
            L7Kind::Grpc => &["grpc"],
            L7Kind::Sql => &["postgres", "mysql"],
            L7Kind::Redis => &["redis"],
            L7Kind::Dns => &["dns"],
            L7Kind::Tls => &["tls"],
        }
    }
}

/// A rule's L7 matchers as parsed, kept in the compiled rule for the L7 stage to compile.
#[derive(Clone, Debug)]
pub enum L7Matchers {
    Http(Vec<HttpMatch>),
    Grpc(Vec<GrpcMatch>),
    Sql(Vec<SqlMatch>),
    Redis(Vec<RedisMatch>),
    Dns(Vec<DnsMatch>),
    Tls(Vec<TlsMatch>),
}

impl L7Matchers {
    pub fn kind(&self) -> L7Kind {
        match self {
            L7Matchers::Http(_) => L7Kind::Http,
            L7Matchers::Grpc(_) => L7Kind::Grpc,
            L7Matchers::Sql(_) => L7Kind::Sql,
            L7Matchers::Redis(_) => L7Kind::Redis,
            L7Matchers::Dns(_) => L7Kind::Dns,
            L7Matchers::Tls(_) => L7Kind::Tls,
        }
    }
}

/// A list-valued matcher field: absent = any value; present = one of these.
pub type Patterns = Option<Spanned<Vec<Spanned<String>>>>;

/// One HTTP request matcher; every present field must match.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub methods: Patterns,
    /// Exact, trailing `/*`, `*` as one whole segment, or `regex:`-prefixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub paths: Patterns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub hosts: Patterns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Labels>"))]
    pub headers: Option<Spanned<Labels>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcMatch {
    /// Fully qualified service, e.g. `stock.v1.Stock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub service: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub methods: Patterns,
}

/// Serves both `postgres` and `mysql`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SqlMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub verbs: Patterns,
    /// Every table a statement touches must be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub tables: Patterns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub databases: Patterns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub users: Patterns,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedisMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub commands: Patterns,
    /// Globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub keys: Patterns,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsMatch {
    /// Globs such as `*.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub names: Patterns,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsMatch {
    /// Globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub sni: Patterns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub alpn: Patterns,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(PortSpec::Number(8080).range(), Ok((8080, 8080)));
        assert_eq!(PortSpec::Text("8000-8100".into()).range(), Ok((8000, 8100)));
        assert_eq!(PortSpec::Text(" 53 ".into()).range(), Ok((53, 53)));
        assert!(PortSpec::Number(0).range().is_err());
        assert!(PortSpec::Number(65536).range().is_err());
        assert!(PortSpec::Number(-1).range().is_err());
        assert!(PortSpec::Text("9-1".into()).range().is_err());
        assert!(PortSpec::Text("http".into()).range().is_err());
        assert!(PortSpec::Text("1-70000".into()).range().is_err());
    }
}
