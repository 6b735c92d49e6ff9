//! A deterministic east-west mix: the traffic between the workloads of a small shop
//! (47 pods in five namespaces, plus the kubelets of three nodes), its inventory, and a
//! ~200-rule policy with L7 constraints on every protocol, all derived from one table of
//! who talks to whom (`edges::EDGES`).
//!
//! Each flow is a complete conversation over real framing: TCP handshakes, data cut at the
//! MSS, ACKs (every second full segment, delayed ACKs after responses, piggybacked
//! otherwise) and FIN exchanges from either side; or a UDP exchange for DNS. Flows are
//! interleaved packet by packet, [`CONCURRENT`] in flight at a time. On top:
//! - **HTTP/1.1** keep-alive connections with varied methods, paths (ids, query strings),
//!   host forms, user agents, tracing headers and JSON bodies; responses with
//!   `Content-Length` or chunked bodies, `HEAD`/`204` without; kubelet probes and
//!   Prometheus scrapes with `Connection: close`.
//! - **gRPC over h2c** (prior knowledge): preface, SETTINGS and their ACKs, WINDOW_UPDATE,
//!   PING, HEADERS blocks coded with HPACK (static and dynamic indexing, literals with and
//!   without indexing, never-indexed credentials), length-prefixed messages in DATA
//!   frames, trailers with `grpc-status`; one to three calls in flight per connection.
//! - **PostgreSQL**: startup, trust or SCRAM authentication, parameter status, simple
//!   queries and extended-protocol (Parse/Bind/Describe/Execute/Sync) queries,
//!   transactions, row descriptions and data rows, occasional errors, Terminate.
//! - **MySQL**: greeting, HandshakeResponse41 with connect attributes, caching_sha2 fast
//!   auth, COM_QUERY with result sets (with and without DEPRECATE_EOF), OK/ERR, COM_QUIT.
//! - **Redis**: RESP commands (sometimes pipelined) and every reply type.
//! - **DNS over UDP**: A/AAAA/SRV lookups through the Kubernetes search path (NXDOMAIN with
//!   SOA for the expansions), EDNS on half of them.
//!
//! About one flow in a hundred ends with a request the policy denies (an admin path, gRPC
//! reflection, DDL, FLUSHDB, a tunnelling DNS name), and some requests hit alert rules
//! (DELETE of an order, Redis KEYS); [`MixStats`] counts both, so a replay can be checked
//! against the generator.
//!
//! Layout: `workloads` (apps, pods, the inventory), `edges` and `requests` (the table of
//! conversations and what each asks for), `policy` (the YAML derived from them), `script`
//! (one flow's packets, placeholders), one file per protocol's conversations (`http`,
//! `grpc`, `postgres`, `mysql`, `redis`, `dns`), and here the interleaver.

mod dns;
mod edges;
mod grpc;
mod http;
mod mysql;
mod policy;
mod postgres;
mod redis;
mod requests;
mod script;
mod workloads;

pub use policy::policy_yaml;
pub use workloads::{inventory_yaml, workload_count};

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use self::dns::dns_flow;
use self::edges::{EDGES, Uses};
use self::grpc::grpc_flow;
use self::http::http_flow;
use self::mysql::mysql_flow;
use self::postgres::pg_flow;
use self::redis::redis_flow;
use self::script::{Script, Step, VIOLATION_ONE_IN, chance, pick};
use self::workloads::ips_of;
use crate::generate::{
    Frames, GenStats, PcapOut, Rng, START_NS, Side, TcpConversation, udp_datagram,
};

/// Flows in flight at once: their packets are interleaved.
pub const CONCURRENT: usize = 128;

/// The application protocols of the mix, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Http,
    Grpc,
    Postgres,
    Mysql,
    Redis,
    Dns,
    /// TCP connect probes without payload.
    Tcp,
}

impl Proto {
    pub const ALL: [Proto; 7] = [
        Proto::Http,
        Proto::Grpc,
        Proto::Postgres,
        Proto::Mysql,
        Proto::Redis,
        Proto::Dns,
        Proto::Tcp,
    ];

    /// The `app_proto` name events use (gRPC flows are detected as `http2`; their calls
    /// are `grpc`).
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Http => "http",
            Proto::Grpc => "grpc",
            Proto::Postgres => "postgres",
            Proto::Mysql => "mysql",
            Proto::Redis => "redis",
            Proto::Dns => "dns",
            Proto::Tcp => "tcp",
        }
    }

    /// The name a flow of this protocol is detected as.
    pub const fn detected_as(self) -> &'static str {
        match self {
            Proto::Grpc => "http2",
            p => p.name(),
        }
    }

    const fn ix(self) -> usize {
        self as usize
    }
}

/// What the generator wrote for one protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoCounts {
    pub flows: u64,
    /// Transactions as the parsers count them (logins included; an extended-protocol
    /// PostgreSQL query is a Parse and an Execute).
    pub transactions: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// What [`generate`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixStats {
    pub total: GenStats,
    pub per_proto: [ProtoCounts; 7],
    /// Requests the generated policy denies (one per flow at most, always its last).
    pub denied: u64,
    /// Requests that hit an alert rule.
    pub alerted: u64,
    /// Packet time from the first packet to the last.
    pub span_ns: u64,
}

impl MixStats {
    pub fn proto(&self, p: Proto) -> ProtoCounts {
        self.per_proto.get(p.ix()).copied().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// Sessions and the interleaver

struct Session {
    proto: Proto,
    tcp: Option<TcpConversation>,
    ends: ((Ipv4Addr, u16), (Ipv4Addr, u16)),
    steps: std::vec::IntoIter<Step>,
}

impl Session {
    /// Writes the next packet into `out`; false when the flow is over.
    fn step(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(step) = self.steps.next() else {
            return false;
        };
        match step {
            Step::Tcp(side, flags, payload) => {
                if let Some(c) = self.tcp.as_mut() {
                    c.segment(side, flags, &payload, out);
                }
            }
            Step::Udp(side, payload) => {
                let (c, s) = self.ends;
                match side {
                    Side::Client => udp_datagram(c, s, &payload, out),
                    Side::Server => udp_datagram(s, c, &payload, out),
                }
            }
        }
        true
    }
}

/// Ephemeral ports per client address, cycling through Linux's default range.
struct Ports(BTreeMap<Ipv4Addr, u16>);

impl Ports {
    fn next(&mut self, ip: Ipv4Addr, rng: &mut Rng) -> u16 {
        let p = self
            .0
            .entry(ip)
            .or_insert_with(|| 32_768 + rng.below(28_000) as u16);
        *p = if *p >= 60_999 { 32_768 } else { *p + 1 };
        *p
    }
}

fn new_session(rng: &mut Rng, ports: &mut Ports) -> (Session, Script) {
    let e = pick(rng, &EDGES, |e| e.w).unwrap_or(&EDGES[0]);
    let clients = ips_of(e.client);
    let servers = ips_of(e.server);
    let cip = clients[rng.below(clients.len() as u64) as usize];
    let sip = servers[rng.below(servers.len() as u64) as usize];
    let cport = ports.next(cip, rng);
    let violate = e.client != "nodes" && e.client != "prometheus" && chance(rng, VIOLATION_ONE_IN);
    let mut sc = Script::new();
    match e.uses {
        Uses::Http { hosts, eps } => http_flow(rng, e, hosts, eps, violate, &mut sc),
        Uses::Grpc { service, methods } => grpc_flow(rng, e, service, methods, violate, &mut sc),
        Uses::Sql { user, db, units } => {
            if e.proto == Proto::Postgres {
                pg_flow(rng, e, user, db, units, violate, &mut sc);
            } else {
                mysql_flow(rng, e, user, db, units, violate, &mut sc);
            }
        }
        Uses::Redis(cmds) => redis_flow(rng, cmds, violate, &mut sc),
        Uses::Dns { names, external } => dns_flow(rng, e, names, external, violate, &mut sc),
        Uses::Probe => {
            sc.open();
            sc.close(Side::Client);
        }
    }
    let ends = ((cip, cport), (sip, e.port));
    let tcp = (e.proto != Proto::Dns).then(|| {
        TcpConversation::new(
            ends.0,
            ends.1,
            [rng.next_u64() as u32, rng.next_u64() as u32],
        )
    });
    let steps = std::mem::take(&mut sc.steps).into_iter();
    (
        Session {
            proto: e.proto,
            tcp,
            ends,
            steps,
        },
        sc,
    )
}

/// Generates `flows` flows of the mix, interleaved, handing each frame to `sink` with its
/// timestamp. The same `(flows, seed)` always gives the same bytes.
pub fn generate(flows: u64, seed: u64, sink: &mut dyn FnMut(u64, &[u8])) -> MixStats {
    let mut rng = Rng::new(seed);
    let mut ports = Ports(BTreeMap::new());
    let mut stats = MixStats::default();
    let mut live: Vec<Session> = Vec::with_capacity(CONCURRENT);
    let mut started = 0u64;
    let mut ts = START_NS;
    let mut frame = Vec::with_capacity(2048);
    loop {
        while live.len() < CONCURRENT && started < flows {
            let (s, sc) = new_session(&mut rng, &mut ports);
            if let Some(c) = stats.per_proto.get_mut(s.proto.ix()) {
                c.flows += 1;
                c.transactions += sc.tx;
            }
            stats.total.sessions += 1;
            stats.total.transactions += sc.tx;
            stats.denied += sc.denied;
            stats.alerted += sc.alerted;
            live.push(s);
            started += 1;
        }
        if live.is_empty() {
            break;
        }
        let k = rng.below(live.len() as u64) as usize;
        frame.clear();
        let Some(s) = live.get_mut(k) else { break };
        if s.step(&mut frame) {
            ts += 2_000 + rng.below(28_000);
            sink(ts, &frame);
            stats.total.packets += 1;
            stats.total.bytes += frame.len() as u64;
            if let Some(c) = stats.per_proto.get_mut(s.proto.ix()) {
                c.packets += 1;
                c.bytes += frame.len() as u64;
            }
        } else {
            live.swap_remove(k);
        }
    }
    stats.span_ns = ts - START_NS;
    stats
}

/// [`generate`] into memory.
pub fn generate_frames(flows: u64, seed: u64) -> (Frames, MixStats) {
    let mut frames = Frames::new();
    let stats = generate(flows, seed, &mut |ts, f| frames.push(ts, f));
    (frames, stats)
}

/// Where [`write_capture`] put its files.
#[derive(Clone, Debug)]
pub struct WrittenCapture {
    pub pcap: std::path::PathBuf,
    pub inventory: std::path::PathBuf,
    pub policy: std::path::PathBuf,
    pub stats: MixStats,
}

/// Writes the mix to `pcap` (little-endian, nanosecond), and the inventory and policy
/// next to it (`NAME-inventory.yaml`, `NAME-policy.yaml`, NAME being the capture's file
/// stem).
pub fn write_capture(pcap: &Path, flows: u64, seed: u64) -> io::Result<WrittenCapture> {
    let stem = pcap
        .file_stem()
        .map_or_else(|| "eastwest".into(), |s| s.to_string_lossy().into_owned());
    let dir = pcap.parent().unwrap_or(Path::new(""));
    let inventory = dir.join(format!("{stem}-inventory.yaml"));
    let policy = dir.join(format!("{stem}-policy.yaml"));
    let mut out = PcapOut::create(pcap)?;
    let stats = generate(flows, seed, &mut |ts, f| out.write(ts, f));
    out.finish()?;
    std::fs::write(&inventory, inventory_yaml())?;
    std::fs::write(&policy, policy_yaml())?;
    Ok(WrittenCapture {
        pcap: pcap.to_path_buf(),
        inventory,
        policy,
        stats,
    })
}

#[cfg(test)]
mod tests;
