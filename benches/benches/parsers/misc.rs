//! Redis, DNS, TLS: a pipelining Redis client, a stub resolver over UDP, and new TLS
//! connections' hellos.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use dataplane::inspect::ParserRegistry;
use proto_parsers::AppProto;
use traffic_gen::generate::Rng;

use super::{C, Conversation, S, Tally, bench_conversation, hex, records};

/// A pipelining client (32 commands per write): GET, SET with 64-256 byte values, INCR,
/// HGET, EXPIRE, DEL over many keys, and the server's replies.
pub fn redis_pipelined(n: usize) -> Conversation {
    let mut rng = Rng::new(0x5245);
    let mut c = Conversation::new("redis_pipelined", AppProto::Redis);
    let mut done = 0;
    fn cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
    fn bulk(out: &mut Vec<u8>, v: &[u8]) {
        out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    while done < n {
        let k = 32.min(n - done);
        let (mut wc, mut ws) = (Vec::new(), Vec::new());
        for _ in 0..k {
            let id = rng.below(100_000);
            let value_len = 64 + rng.below(192) as usize;
            let value = hex(&mut rng, value_len);
            match rng.below(20) {
                0..=9 => {
                    cmd(&mut wc, &[b"GET", format!("user:{id}:profile").as_bytes()]);
                    bulk(&mut ws, value.as_bytes());
                }
                10..=13 => {
                    let key = format!("session:{id}");
                    cmd(
                        &mut wc,
                        &[b"SET", key.as_bytes(), value.as_bytes(), b"EX", b"3600"],
                    );
                    ws.extend_from_slice(b"+OK\r\n");
                }
                14 | 15 => {
                    cmd(
                        &mut wc,
                        &[
                            b"INCR",
                            format!("rate:10.0.{}.{}", id % 256, id / 256).as_bytes(),
                        ],
                    );
                    ws.extend_from_slice(format!(":{}\r\n", rng.below(500)).as_bytes());
                }
                16 | 17 => {
                    cmd(
                        &mut wc,
                        &[b"HGET", format!("user:{id}").as_bytes(), b"email"],
                    );
                    bulk(&mut ws, format!("user{id}@example.com").as_bytes());
                }
                18 => {
                    cmd(
                        &mut wc,
                        &[b"EXPIRE", format!("session:{id}").as_bytes(), b"3600"],
                    );
                    ws.extend_from_slice(b":1\r\n");
                }
                _ => {
                    cmd(&mut wc, &[b"DEL", format!("cache:{id}").as_bytes()]);
                    ws.extend_from_slice(b":0\r\n");
                }
            }
        }
        c.write(C, &wc);
        c.write(S, &ws);
        done += k;
    }
    c.requests = n as u64;
    c.responses = n as u64;
    c
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// Stub resolver traffic over UDP: A and AAAA queries with an EDNS OPT record for cluster
/// and internet names, answered with compression pointers (a CNAME chain for the CDN names).
pub fn dns_udp(n: usize) -> Conversation {
    const NAMES: [&str; 10] = [
        "orders.shop.svc.cluster.local",
        "payments.shop.svc.cluster.local",
        "redis-master.cache.svc.cluster.local",
        "kubernetes.default.svc.cluster.local",
        "api.github.com",
        "www.google.com",
        "s3.eu-west-1.amazonaws.com",
        "registry-1.docker.io",
        "login.microsoftonline.com",
        "ocsp.digicert.com",
    ];
    let mut rng = Rng::new(0x444e);
    let mut c = Conversation::new("dns_udp", AppProto::Dns);
    c.udp = true;
    let opt = [0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
    for i in 0..n {
        let id = rng.below(65_536) as u16;
        let name = NAMES[i % NAMES.len()];
        let qtype: u16 = if i % 3 == 2 { 28 } else { 1 };
        let mut question = Vec::new();
        dns_name(&mut question, name);
        question.extend_from_slice(&qtype.to_be_bytes());
        question.extend_from_slice(&1u16.to_be_bytes());

        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1]);
        q.extend_from_slice(&question);
        q.extend_from_slice(&opt);
        c.write(C, &q);

        let cname = i % NAMES.len() >= 4;
        let mut a = id.to_be_bytes().to_vec();
        a.extend_from_slice(&[0x81, 0x80, 0, 1, 0, if cname { 2 } else { 1 }, 0, 0, 0, 1]);
        a.extend_from_slice(&question);
        let data_len = if qtype == 28 { 16 } else { 4 };
        let mut owner = [0xc0u8, 0x0c];
        if cname {
            // CNAME to edge-N.cdn.example.net, then the address of that name.
            let at = a.len() + 12;
            a.extend_from_slice(&[0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0x0e, 0x10]);
            let mut target = Vec::new();
            dns_name(&mut target, &format!("edge-{}.cdn.example.net", i % 7));
            a.extend_from_slice(&(target.len() as u16).to_be_bytes());
            a.extend_from_slice(&target);
            owner = [0xc0 | (at >> 8) as u8, at as u8];
        }
        a.extend_from_slice(&owner);
        a.extend_from_slice(&qtype.to_be_bytes());
        a.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        a.extend_from_slice(&(data_len as u16).to_be_bytes());
        a.extend((0..data_len).map(|_| rng.below(256) as u8));
        a.extend_from_slice(&opt);
        c.write(S, &a);
    }
    c.requests = n as u64;
    c.responses = n as u64;
    c
}

const TLS_RECORDINGS: [&[u8]; 3] = [
    include_bytes!("../../../proto-parsers/src/tls/testdata/tls-0.seg"),
    include_bytes!("../../../proto-parsers/src/tls/testdata/tls-1.seg"),
    include_bytes!("../../../proto-parsers/src/tls/testdata/tls-3.seg"),
];

/// New TLS connections (openssl TLS 1.3 and 1.2, and a 1.2 KB ClientHello in three records):
/// the ClientHello and the server's first segment (ServerHello onwards) of each.
pub fn tls_hellos() -> Vec<Conversation> {
    TLS_RECORDINGS
        .iter()
        .map(|rec| {
            let segs = records(rec);
            let mut c = Conversation::new("tls_hello", AppProto::Tls);
            c.segs = segs.into_iter().take(2).collect();
            c.requests = 1;
            c.responses = 1;
            c.opaque = 1;
            c
        })
        .collect()
}

pub(super) fn bench_small_protocols(c: &mut Criterion) {
    let reg = ParserRegistry::builtin();
    let mut g = c.benchmark_group("misc");
    let conv = redis_pipelined(2_048);
    conv.check(&reg);
    bench_conversation(&mut g, "redis_pipelined", &conv, &reg);

    // One UDP flow (a stub resolver's source port) with many queries; each datagram alone.
    let conv = dns_udp(1_000);
    conv.check(&reg);
    bench_conversation(&mut g, "dns_udp", &conv, &reg);

    // A new flow per hello: detection, parser set-up, ClientHello, ServerHello.
    let hellos = tls_hellos();
    for h in &hellos {
        h.check(&reg);
    }
    g.throughput(Throughput::ElementsAndBytes {
        elements: hellos.len() as u64,
        bytes: hellos
            .iter()
            .map(|h| h.segs.first().map_or(0, |s| s.1.len() as u64))
            .sum(),
    });
    g.bench_function("tls_client_hello", |b| {
        b.iter(|| {
            let mut t = Tally::default();
            for h in &hellos {
                black_box(h.play(&reg, &mut t)).ok();
            }
            t
        })
    });
    g.finish();
}
