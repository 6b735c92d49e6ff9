//! An HTTP request decision with 10,000 workloads and 10,000 rules, and compiling that
//! policy.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;

use control::{
    Endpoint, FlowRules, PolicySnapshot, Transport, compile, load_inventory_str, load_policy_str,
};
use criterion::{Criterion, Throughput};
use proto_parsers::AppProto;
use proto_parsers::facts::{Header, HttpRequest, HttpVersion, RequestDetail};
use traffic_gen::generate::Rng;

use super::hex;

const TEAMS: u32 = 50;
const SERVICES: u32 = 200;
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const RULE_PATHS: [&str; 10] = [
    "/api/*",
    "/api/v1/users/*/orders",
    "/api/v1/orders/*",
    "/healthz",
    "/p1",
    "regex:/r[0-9]+/x",
    "/static/*",
    "/admin/*",
    "/*",
    "/api/v1/*",
];
const RULE_HOSTS: [&str; 5] = [
    "h1.shop",
    "api.shop",
    "*.cdn.shop",
    "*.shop",
    "img-*.cdn.shop",
];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

fn yaml_list(rng: &mut Rng, xs: &[&str], max: u64) -> String {
    let n = 1 + rng.below(max);
    let mut v: Vec<&str> = (0..n).map(|_| pick(rng, xs)).collect();
    v.sort_unstable();
    v.dedup();
    let q: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}

/// 10,000 workloads (50 teams, 200 services, 5 namespaces) and 10,000 rules: 70% HTTP rules
/// towards a service with 1-2 `http` clauses (methods, paths, hosts, headers), 15% rules of
/// other apps (some with `sql`/`redis` matchers), 15% plain L4 rules. (Larger clause lists
/// run into the YAML loader's 250,000-node budget.)
pub fn http_policy() -> Result<PolicySnapshot, String> {
    let (inv, pol) = http_policy_yaml();
    let p = load_policy_str(&pol, "http-scale.yaml").map_err(|e| e.to_string())?;
    let i = load_inventory_str(&inv, "http-scale-inventory.yaml").map_err(|e| e.to_string())?;
    compile(&p.policy, &i, 1).map_err(|e| e.to_string())
}

/// The inventory and policy YAML of [`http_policy`].
pub fn http_policy_yaml() -> (String, String) {
    const N: u32 = 10_000;
    let mut rng = Rng::new(0x7011);
    let mut inv =
        String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
    for i in 0..N {
        let _ = writeln!(
            inv,
            "  - {{name: w{i}, namespace: ns-{}, labels: {{app: svc-{}, team: t-{}}}, ips: [{}]}}",
            i % 5,
            i % SERVICES,
            i % TEAMS,
            benches::scale::workload_ip(i)
        );
    }
    let mut pol = String::from(
        "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: http-scale}\n\
         spec:\n  mode: protect\n  defaultAction: deny\n  groups:\n",
    );
    let mut sources = Vec::new();
    for t in 0..TEAMS {
        let _ = writeln!(pol, "    team-{t}: {{selector: {{team: t-{t}}}}}");
        sources.push(format!("team-{t}"));
    }
    for a in 0..SERVICES {
        let _ = writeln!(pol, "    svc-{a}: {{selector: {{app: svc-{a}}}}}");
        sources.push(format!("svc-{a}"));
    }
    for n in 0..5 {
        let _ = writeln!(pol, "    ns-{n}: {{namespaces: [ns-{n}]}}");
        sources.push(format!("ns-{n}"));
    }
    pol.push_str("    world: {cidrs: [0.0.0.0/0]}\n  rules:\n");
    sources.push("*".into());
    for r in 0..N {
        let from = (0..1 + u64::from(rng.below(4) == 0))
            .map(|_| format!("\"{}\"", sources[rng.below(sources.len() as u64) as usize]))
            .collect::<Vec<_>>()
            .join(", ");
        let to = format!("\"svc-{}\"", rng.below(u64::from(SERVICES)));
        let kind = rng.below(100);
        let mut extra = String::new();
        let action;
        if kind < 70 {
            if rng.below(2) == 0 {
                extra.push_str(", ports: [8080]");
            }
            extra.push_str(", app: http, http: [");
            for k in 0..1 + rng.below(2) {
                let mut f = Vec::new();
                if rng.below(100) < 60 {
                    f.push(format!("methods: {}", yaml_list(&mut rng, &METHODS, 2)));
                }
                if rng.below(100) < 70 {
                    f.push(format!("paths: {}", yaml_list(&mut rng, &RULE_PATHS, 2)));
                }
                if rng.below(100) < 30 {
                    f.push(format!("hosts: {}", yaml_list(&mut rng, &RULE_HOSTS, 2)));
                }
                if rng.below(100) < 10 || f.is_empty() {
                    f.push(format!("headers: {{x-tenant: t{}}}", rng.below(3)));
                }
                let _ = write!(
                    extra,
                    "{}{{{}}}",
                    if k > 0 { ", " } else { "" },
                    f.join(", ")
                );
            }
            extra.push(']');
            action = pick(&mut rng, &["allow", "allow", "allow", "deny", "alert"]);
        } else if kind < 85 {
            let app = pick(&mut rng, &["grpc", "postgres", "redis", "tls", "dns"]);
            let _ = write!(extra, ", app: {app}");
            match app {
                "postgres" => extra.push_str(", sql: [{verbs: [SELECT], tables: [orders]}]"),
                "redis" => extra.push_str(", redis: [{commands: [GET], keys: [\"user:*\"]}]"),
                _ => {}
            }
            action = pick(&mut rng, &["allow", "allow", "deny"]);
        } else {
            let p = 1 + rng.below(1000);
            let _ = write!(extra, ", ports: [{p}]");
            action = if rng.below(20) == 0 { "deny" } else { "allow" };
        }
        let _ = writeln!(
            pol,
            "    - {{id: r{r}, from: [{from}], to: [{to}]{extra}, action: {action}}}"
        );
    }
    (inv, pol)
}

/// A request as the HTTP/1 parser reports it, owned.
pub struct OwnedRequest {
    method: &'static str,
    path: String,
    host: String,
    headers: Vec<(&'static str, String)>,
}

pub fn http_requests(n: usize, seed: u64) -> Vec<OwnedRequest> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let method =
                ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"][rng.below(7) as usize];
            let id = rng.below(100_000);
            let path = match rng.below(10) {
                0 => format!("/api/v1/users/{id}/orders"),
                1 | 2 => format!("/api/v1/orders/{id}?expand=items"),
                3 => format!("/static/app.{}.js", hex(&mut rng, 8)),
                4 => "/healthz".to_string(),
                5 => format!("/r{}/x", id % 100),
                6 => "/admin/settings".to_string(),
                7 => format!("/api/v2/carts/{id}/../items"),
                8 => "/p1".to_string(),
                _ => format!("/shop/products/{id}"),
            };
            let host = [
                "api.shop",
                "h1.shop",
                "img-3.cdn.shop",
                "api.shop:8080",
                "other.test",
            ][rng.below(5) as usize]
                .to_string();
            let mut headers = vec![
                ("Host", host.clone()),
                ("User-Agent", "okhttp/4.12.0".to_string()),
                ("Accept", "application/json".to_string()),
            ];
            if rng.below(4) == 0 {
                headers.push(("X-Tenant", format!("t{}", rng.below(3))));
            }
            OwnedRequest {
                method,
                path,
                host,
                headers,
            }
        })
        .collect()
}

pub(super) fn bench_policy(c: &mut Criterion) {
    let snap = http_policy().expect("generated HTTP policy compiles");
    let reqs = http_requests(1 << 12, 9);
    let mut rng = Rng::new(77);
    // Flows between random workloads on 8080 that the L4 decision admits (a denied flow is
    // never inspected, so its requests are never judged): endpoints resolved once per flow,
    // as the worker does; the per-request cost is normalising the path and judging.
    let mut flows: Vec<(Endpoint, Endpoint)> = Vec::with_capacity(1 << 12);
    let mut tries = 0u64;
    while flows.len() < 1 << 12 && tries < 10_000_000 {
        tries += 1;
        let ip = |rng: &mut Rng| -> IpAddr {
            IpAddr::V4(benches::scale::workload_ip(rng.below(10_000) as u32))
        };
        let (src, dst) = (snap.resolve(ip(&mut rng)), snap.resolve(ip(&mut rng)));
        let d = snap.judge_flow(&src, &dst, 8080, Transport::Tcp, Some(AppProto::Http));
        if d.action != control::Action::Deny {
            flows.push((src, dst));
        }
    }
    assert!(flows.len() == 1 << 12, "too few admitted flows");

    // Requests in the parser's shape, built beforehand (their header arrays borrow `reqs`).
    let headers: Vec<Vec<Header<'_>>> = reqs
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|(n, v)| Header {
                    name: n.as_bytes(),
                    value: v.as_bytes(),
                })
                .collect()
        })
        .collect();
    let http: Vec<HttpRequest<'_>> = reqs
        .iter()
        .zip(&headers)
        .map(|(r, h)| HttpRequest {
            version: HttpVersion::Http11,
            method: r.method.as_bytes(),
            path: r.path.as_bytes(),
            authority: Some(r.host.as_bytes()),
            user_agent: Some(b"okhttp/4.12.0"),
            content_type: None,
            headers: h,
        })
        .collect();
    let mut path = Vec::with_capacity(256);
    // What the worker's sink does per request: normalise the path, judge.
    // Decision `i` judges request `i mod reqs` on flow `7i + i / reqs`: every pair of
    // request and flow in turn.
    // `rules`: the flow's cache of the flow-only part of the decision; a fresh `None`
    // makes this exactly `judge_transaction`.
    let judge = |h: &HttpRequest<'_>,
                 src: &Endpoint,
                 dst: &Endpoint,
                 rules: &mut Option<FlowRules>,
                 path: &mut Vec<u8>| {
        let norm = proto_parsers::http::normalized_path(h.path, path);
        snap.judge_transaction_cached(
            rules,
            src,
            dst,
            8080,
            Transport::Tcp,
            AppProto::Http,
            &RequestDetail::Http(*h),
            Some(norm),
        )
    };
    let decide_among = |reqs: usize, i: usize, path: &mut Vec<u8>| {
        let h = &http[i & (reqs - 1)];
        let (src, dst) = &flows[(i * 7 + i / reqs) & (flows.len() - 1)];
        judge(h, src, dst, &mut None, path)
    };
    let decide = |i: usize, path: &mut Vec<u8>| decide_among(http.len(), i, path);
    // What the decisions are, printed with the results: rules must decide some of them.
    let (mut by_rule, mut constrained, mut denied) = (0, 0, 0);
    let total = 1 << 14;
    for i in 0..total {
        let d = decide(i, &mut path);
        by_rule += usize::from(d.rule.is_some());
        constrained += usize::from(d.l7_constrained);
        denied += usize::from(d.action == control::Action::Deny);
    }
    eprintln!(
        "policy/judge_http_10k: {} admitted flows of {tries} random workload pairs; of \
         {total} requests on them, {by_rule} decided by a rule, {constrained} allowed by an \
         L7 clause, {denied} denied; {} rules, {} workloads",
        flows.len(),
        snap.rule_count(),
        snap.workload_count()
    );

    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("judge_http_10k", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(decide(i, &mut path))
        })
    });
    // The same decisions as the worker makes them: right after the parser has read the
    // request, so its bytes (path, host, headers) are in cache. Above, each decision
    // reads one of 4,096 requests spread over the heap, and those first touches were
    // about half of its cache misses (callgrind's cache simulation). Here the requests
    // cycle through 64 (about 16 KB, which stay cached); flows, and with them the
    // endpoints' groups and the policy tables reached, still vary over the 4,096 pairs.
    g.bench_function("judge_http_10k_parsed", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(decide_among(64, i, &mut path))
        })
    });
    // As `_parsed`, with the flow-only part of the decision kept beside each flow's
    // endpoints, as the worker keeps it in its flow entry
    // (`PolicySnapshot::judge_transaction_cached`; computed at a flow's first request).
    let mut cached: Vec<(Endpoint, Endpoint, Option<FlowRules>)> =
        flows.iter().map(|&(s, d)| (s, d, None)).collect();
    let n = cached.len();
    g.bench_function("judge_http_10k_flow_cache", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let (src, dst, rules) = &mut cached[(i * 7 + i / 64) & (n - 1)];
            black_box(judge(&http[i & 63], src, dst, rules, &mut path))
        })
    });
    g.finish();

    // Compiling that policy (validation, address tables, L4 and L7 indexes, the pattern
    // DFAs) from its loaded YAML, and the YAML parse plus the compile.
    let (inv, pol) = http_policy_yaml();
    let p = load_policy_str(&pol, "http-scale.yaml").expect("generated policy loads");
    let loaded_inv =
        load_inventory_str(&inv, "http-scale-inventory.yaml").expect("generated inventory loads");
    let mut g = c.benchmark_group("policy");
    g.sample_size(10);
    g.bench_function("compile_http_10k", |b| {
        b.iter(|| black_box(compile(&p.policy, &loaded_inv, 1).expect("compiles")))
    });
    g.bench_function("load_compile_http_10k", |b| {
        b.iter(|| {
            let p = load_policy_str(&pol, "http-scale.yaml").expect("loads");
            let i = load_inventory_str(&inv, "http-scale-inventory.yaml").expect("loads");
            black_box(compile(&p.policy, &i, 1).expect("compiles"))
        })
    });
    g.finish();
}
