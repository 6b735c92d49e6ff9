//! DNS over UDP flows: lookups through the Kubernetes search path.

use super::edges::Edge;
use super::script::{Script, chance, hex};
use super::workloads::{APPS, app_index};
use crate::generate::{Rng, Side};
use crate::wire::*;

/// The ClusterIP of a service.
pub(super) fn service_ip(name: &str) -> [u8; 4] {
    let i = app_index(name).unwrap_or(0) as u8;
    [10, 96, 1 + i / 200, 10 + i]
}

pub(super) fn dns_exchange(
    rng: &mut Rng,
    sc: &mut Script,
    name: &str,
    qtype: u16,
    found: bool,
    edns: bool,
) {
    let ask = DnsAsk {
        id: rng.below(65_536) as u16,
        name,
        qtype,
        edns,
    };
    let mut q = Vec::with_capacity(64);
    dns_query(&mut q, &ask);
    sc.udp(Side::Client, q);
    sc.tx += 1;
    let answers: Vec<DnsData> = match (found, qtype) {
        (false, _) => Vec::new(),
        (true, DNS_A) => {
            let short = name.split('.').next().unwrap_or_default();
            let ip = if name.ends_with("cluster.local") {
                service_ip(short)
            } else {
                [203, 0, 113, 10 + rng.below(200) as u8]
            };
            vec![DnsData::A(ip)]
        }
        (true, DNS_SRV) => vec![DnsData::Srv(
            0,
            100,
            50051,
            name.split_once('.')
                .map_or(name, |(_, rest)| rest)
                .split_once('.')
                .map_or(name, |(_, rest)| rest)
                .to_string(),
        )],
        // AAAA for IPv4-only services: NOERROR, no answer.
        (true, _) => Vec::new(),
    };
    let zone = if name.ends_with("cluster.local") {
        "cluster.local"
    } else {
        name.split_once('.').map_or(name, |(_, z)| z)
    };
    let mut r = Vec::with_capacity(128);
    let rcode = if found { DNS_NOERROR } else { DNS_NXDOMAIN };
    dns_response(&mut r, &ask, rcode, &answers, zone);
    sc.udp(Side::Server, r);
}

pub(super) fn dns_flow(
    rng: &mut Rng,
    e: &Edge,
    names: &[&str],
    external: &[&str],
    violate: bool,
    sc: &mut Script,
) {
    let edns = chance(rng, 2);
    if violate {
        let name = format!("{}.{}.tunnel.example", hex(rng, 30), hex(rng, 12));
        let ask = DnsAsk {
            id: rng.below(65_536) as u16,
            name: &name,
            qtype: DNS_A,
            edns,
        };
        let mut q = Vec::new();
        dns_query(&mut q, &ask);
        sc.udp(Side::Client, q);
        sc.tx += 1;
        sc.denied += 1;
        let mut r = Vec::new();
        dns_response(&mut r, &ask, DNS_NXDOMAIN, &[], "tunnel.example");
        sc.udp(Side::Server, r);
        return;
    }
    let ns = app_index(e.client).map_or("shop", |i| APPS[i].ns);
    let search = [
        format!("{ns}.svc.cluster.local"),
        "svc.cluster.local".to_string(),
        "cluster.local".to_string(),
    ];
    let use_external = !external.is_empty() && chance(rng, 2);
    if use_external {
        let name = external[rng.below(external.len() as u64) as usize];
        // ndots:5 — a name with fewer dots goes through the search list first.
        for domain in &search {
            let fq = format!("{name}.{domain}");
            dns_exchange(rng, sc, &fq, DNS_A, false, edns);
            dns_exchange(rng, sc, &fq, DNS_AAAA, false, edns);
        }
        dns_exchange(rng, sc, name, DNS_A, true, edns);
        dns_exchange(rng, sc, name, DNS_AAAA, true, edns);
    } else {
        let svc = names[rng.below(names.len() as u64) as usize];
        let svc_ns = app_index(svc).map_or("shop", |i| APPS[i].ns);
        if chance(rng, 6) {
            let fq = format!("_grpc._tcp.{svc}.{svc_ns}.svc.cluster.local");
            dns_exchange(rng, sc, &fq, DNS_SRV, true, edns);
        } else {
            let fq = format!("{svc}.{svc_ns}.svc.cluster.local");
            dns_exchange(rng, sc, &fq, DNS_A, true, edns);
            dns_exchange(rng, sc, &fq, DNS_AAAA, true, edns);
        }
    }
}
