//! The policy over the mix (YAML): an allow rule for every endpoint, gRPC method, SQL rule,
//! Redis command class and DNS client of [`super::edges::EDGES`], and the deny and alert
//! rules for what the mix must not do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Proto;
use super::edges::{Act, EDGES, Q, RClass, ReqBody, Uses};
use super::requests::MYSQL_SESSION;
use super::workloads::{APPS, NODES_CIDR};

/// `/api/v1/orders/{id}?page={n}` -> `/api/v1/orders/*`.
pub(super) fn path_pattern(template: &str) -> String {
    let path = template.split('?').next().unwrap_or(template);
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// A rule-id-friendly slug of a path template.
pub(super) fn slug(method: &str, template: &str) -> String {
    let path = template.split('?').next().unwrap_or(template);
    let mut s = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg == "api" || seg == "v1" {
            continue;
        }
        s.push('-');
        if seg.starts_with('{') {
            s.push_str("one");
        } else {
            s.extend(seg.chars().filter(|c| c.is_ascii_alphanumeric()));
        }
    }
    if !path.split('/').any(|s| !s.is_empty()) {
        s.push_str("-root");
    }
    s
}

pub(super) fn host_forms(server: &str) -> [String; 4] {
    [
        server.to_string(),
        format!("{server}.shop"),
        format!("{server}.shop.svc"),
        format!("{server}.shop.svc.cluster.local"),
    ]
}

pub(super) const INGRESS_HOSTS: [&str; 2] = ["shop.example.com", "www.shop.example.com"];

pub(super) fn yaml_list<S: AsRef<str>>(items: &[S]) -> String {
    let v: Vec<String> = items
        .iter()
        .map(|s| {
            let s = s.as_ref();
            if s.contains(['*', ':', '{', '}', '@', ' ', '\'', '#']) || s.starts_with('/') {
                format!("\"{s}\"")
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("[{}]", v.join(", "))
}

/// The policy (YAML) over the mix: protect mode, default deny, an allow rule for every
/// endpoint, gRPC method, SQL rule, Redis command class and DNS client the mix uses, and
/// deny/alert rules for what it must not do.
pub fn policy_yaml() -> String {
    let mut y = String::from(
        "# Segmentation policy for the generated east-west mix (palisade bench): one rule per\n\
         # endpoint, gRPC method, SQL and Redis rule and DNS client of the mix, denies for\n\
         # admin paths, reflection, DDL, cache administration and tunnelling names.\n\
         # Each gRPC client/server pair also has an `app: http` rule on the service's paths that\n\
         # admits the HTTP/2 connection itself (the `grpc` allow rules admit it too since\n\
         # control's judge_detected_flow); each call is judged by the `app: grpc` rules.\n\
         apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: eastwest-bench}\n\
         spec:\n  mode: protect\n  defaultAction: deny\n  groups:\n",
    );
    for a in &APPS {
        let mode = if a.name == "reporting" {
            ", mode: monitor"
        } else {
            ""
        };
        let _ = writeln!(
            y,
            "    {}: {{selector: {{app: {}}}, namespaces: [{}]{mode}}}",
            a.name, a.name, a.ns
        );
    }
    let _ = writeln!(y, "    nodes: {{cidrs: [{NODES_CIDR}]}}");
    y.push_str("    world: {cidrs: [0.0.0.0/0]}\n  rules:\n");
    let mut n = 0usize;
    let mut rule = |y: &mut String, body: String| {
        n += 1;
        y.push_str("    - ");
        y.push_str(&body);
        y.push('\n');
    };
    let mut grpc_l4: Vec<(&str, &str, &str)> = Vec::new();
    for e in &EDGES {
        let (c, s, p) = (e.client, e.server, e.port);
        match e.uses {
            Uses::Http { hosts, eps } => {
                for ep in eps {
                    let mut clause = format!(
                        "methods: [{}], paths: [\"{}\"]",
                        ep.method,
                        path_pattern(ep.path)
                    );
                    if hosts {
                        let hs: Vec<String> = if s == "frontend" {
                            INGRESS_HOSTS.iter().map(|h| h.to_string()).collect()
                        } else {
                            host_forms(s).to_vec()
                        };
                        let _ = write!(clause, ", hosts: {}", yaml_list(&hs));
                    }
                    if ep.body == ReqBody::Json {
                        clause.push_str(", headers: {content-type: application/json}");
                    }
                    let (action, sev) = match ep.act {
                        Act::Allow => ("allow", ""),
                        Act::Alert => ("alert", ", severity: medium"),
                    };
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{}, from: [{c}], to: [{s}], ports: [{p}], app: http, \
                             http: [{{{clause}}}], action: {action}{sev}}}",
                            slug(ep.method, ep.path)
                        ),
                    );
                }
            }
            Uses::Grpc { service, methods } => {
                if !grpc_l4
                    .iter()
                    .any(|&(a, b, sv)| a == c && b == s && sv == service)
                {
                    grpc_l4.push((c, s, service));
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-h2c, from: [{c}], to: [{s}], ports: [{p}], app: http, \
                             http: [{{methods: [POST], paths: [\"/{service}/*\"], \
                             headers: {{content-type: application/grpc}}}}], action: allow}}"
                        ),
                    );
                }
                for m in methods {
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{}, from: [{c}], to: [{s}], ports: [{p}], app: grpc, \
                             grpc: [{{service: {service}, methods: [{m}]}}], action: allow}}",
                            m.to_ascii_lowercase()
                        ),
                    );
                }
            }
            Uses::Sql { user, db, units } => {
                let app = e.proto.name();
                let mut by_rule: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
                let mut add = |q: &Q| {
                    let e = by_rule.entry(q.rule).or_default();
                    if !e.0.contains(&q.verb) {
                        e.0.push(q.verb);
                    }
                    for t in q.tables {
                        if !e.1.contains(t) {
                            e.1.push(t);
                        }
                    }
                };
                for u in units {
                    for q in u.stmts {
                        add(q);
                    }
                }
                if e.proto == Proto::Mysql {
                    add(&MYSQL_SESSION);
                }
                if units.iter().any(|u| u.tx) {
                    by_rule.insert("tx", (vec!["BEGIN", "COMMIT", "ROLLBACK"], Vec::new()));
                }
                for (name, (verbs, tables)) in by_rule {
                    let mut clause = format!("verbs: {}", yaml_list(&verbs));
                    if !tables.is_empty() {
                        let _ = write!(clause, ", tables: {}", yaml_list(&tables));
                    }
                    let _ = write!(clause, ", users: [{user}], databases: [{db}]");
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{name}, from: [{c}], to: [{s}], ports: [{p}], app: {app}, \
                             sql: [{{{clause}}}], action: allow}}"
                        ),
                    );
                }
            }
            Uses::Redis(cmds) => {
                for (class, name) in [(RClass::Read, "read"), (RClass::Write, "write")] {
                    let mut commands: Vec<&str> = Vec::new();
                    let mut keys: Vec<String> = Vec::new();
                    for cmd in cmds.iter().filter(|r| r.class == class) {
                        if !commands.contains(&cmd.cmd) {
                            commands.push(cmd.cmd);
                        }
                        let first = cmd.args.split(' ').next().unwrap_or_default();
                        let prefix = first.split(':').next().unwrap_or_default();
                        let glob = format!("{prefix}:*");
                        if !keys.contains(&glob) {
                            keys.push(glob);
                        }
                    }
                    if commands.is_empty() {
                        continue;
                    }
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-{s}-{name}, from: [{c}], to: [{s}], ports: [{p}], app: redis, \
                             redis: [{{commands: {}, keys: {}}}], action: allow}}",
                            yaml_list(&commands),
                            yaml_list(&keys)
                        ),
                    );
                }
                rule(
                    &mut y,
                    format!(
                        "{{id: {c}-{s}-conn, from: [{c}], to: [{s}], ports: [{p}], app: redis, \
                         redis: [{{commands: [AUTH, PING, SELECT, CLIENT, QUIT]}}], action: allow}}"
                    ),
                );
            }
            Uses::Dns { external, .. } => {
                rule(
                    &mut y,
                    format!(
                        "{{id: {c}-dns, from: [{c}], to: [{s}], ports: [{p}], app: dns, \
                         dns: [{{names: [\"*.cluster.local\"]}}], action: allow}}"
                    ),
                );
                if !external.is_empty() {
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-dns-external, from: [{c}], to: [{s}], ports: [{p}], app: dns, \
                             dns: [{{names: {}}}], action: allow}}",
                            yaml_list(external)
                        ),
                    );
                    // The egress the lookup is for.
                    rule(
                        &mut y,
                        format!(
                            "{{id: {c}-egress-tls, from: [{c}], to: [world], ports: [443], app: tls, \
                             tls: [{{sni: {}}}], action: allow}}",
                            yaml_list(external)
                        ),
                    );
                }
            }
            Uses::Probe => {
                rule(
                    &mut y,
                    format!(
                        "{{id: {c}-{s}-tcp-probe, from: [{c}], to: [{s}], ports: [{p}], app: tcp, \
                         action: allow}}"
                    ),
                );
            }
        }
    }
    let http_servers: Vec<&str> = EDGES
        .iter()
        .filter(|e| matches!(e.uses, Uses::Http { hosts: true, .. }))
        .map(|e| e.server)
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    rule(
        &mut y,
        format!(
            "{{id: deny-admin-paths, from: [\"*\"], to: {}, app: http, \
             http: [{{paths: [\"/admin/*\", \"/actuator/*\", \"/debug/pprof/*\"]}}], action: deny, \
             severity: high}}",
            yaml_list(&http_servers)
        ),
    );
    rule(
        &mut y,
        "{id: deny-grpc-reflection, from: [\"*\"], to: [stock, pricing, payments, shipping, auth], \
         app: grpc, grpc: [{service: grpc.reflection.v1alpha.ServerReflection}, \
         {service: grpc.reflection.v1.ServerReflection}], action: deny, severity: high}"
            .to_string(),
    );
    for (app, dbs) in [
        ("postgres", "[orders-db, users-db]"),
        ("mysql", "[catalog-db, reviews-db]"),
    ] {
        rule(
            &mut y,
            format!(
                "{{id: deny-{app}-ddl, from: [\"*\"], to: {dbs}, app: {app}, \
                 sql: [{{verbs: [DROP, TRUNCATE, ALTER, GRANT, REVOKE, CREATE]}}], action: deny, \
                 severity: critical}}"
            ),
        );
    }
    rule(
        &mut y,
        "{id: deny-redis-admin, from: [\"*\"], to: [cache, cart-cache], app: redis, \
         redis: [{commands: [FLUSHALL, FLUSHDB, CONFIG, DEBUG, SHUTDOWN, REPLICAOF, SLAVEOF, MODULE]}], \
         action: deny, severity: critical, capture: true}"
            .to_string(),
    );
    rule(
        &mut y,
        "{id: alert-redis-keys, from: [\"*\"], to: [cache, cart-cache], app: redis, \
         redis: [{commands: [KEYS]}], action: alert, severity: low}"
            .to_string(),
    );
    rule(
        &mut y,
        "{id: deny-dns-tunnel, from: [\"*\"], to: [kube-dns], app: dns, \
         dns: [{names: [\"*.tunnel.example\"]}], action: deny, severity: high}"
            .to_string(),
    );
    let _ = writeln!(y, "  # {n} rules");
    y
}
