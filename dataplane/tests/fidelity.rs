//! Issue 16, "every capture a peer tool reads": for every capture under `tests/data`, each
//! HTTP method, url, hostname and status, DNS rrname, rrtype and rcode, TLS SNI and SQL
//! statement that tshark reports must be in the records `palisade replay --log-all` writes
//! for the same file. The test computes tshark's facts minus Palisade's and requires the
//! difference to be empty, listing every miss (capture, kind, value, the frames where
//! tshark saw it).
//!
//! Facts are compared as a **multiset** per capture: three `GET /index.html` requests are
//! three facts, and Palisade must report the value three times. A set would hide a request
//! that went unreported when another request of the same capture carries the same values
//! (a keep-alive connection asking for `/` twice, the same DNS name asked twice).
//!
//! tshark's side (`tshark -n -r FILE -T fields`, every occurrence of each field in a frame,
//! so a frame with several pipelined requests or HTTP/2 streams gives each):
//! - HTTP/1: `http.request.method`, `http.request.uri`, `http.host`, `http.response.code`.
//! - HTTP/2: `http2.headers.method`, `.path`, `.authority`, `.status` (the pseudo-headers,
//!   which Palisade reports in the same `http` fields, as Suricata does).
//! - DNS: `dns.qry.name` and `dns.qry.type` of queries (not of responses, which repeat the
//!   question: a transaction's name and type would count twice); `dns.flags.rcode` of
//!   responses, extended by `dns.resp.ext_rcode` (RFC 6891) as Palisade's rcode is.
//! - TLS: `tls.handshake.extensions_server_name`.
//! - SQL: `pgsql.query` (simple Query and Parse messages), `mysql.query` (COM_QUERY,
//!   COM_STMT_PREPARE).
//!
//! Palisade's side: the transaction records (`event_type` `http`, `dns`, `tls`, `pgsql`,
//! `mysql`) of `palisade replay CAPTURE --policy allow-all.yaml --log-all`: `http.
//! {http_method, url, hostname, status}`, `dns.{rrname, rrtype, rcode}`, `tls.sni`,
//! `sql.query`. Alerts are not read: with an allow-all policy a transaction's facts are in
//! its own record, and an alert repeating them would count twice.
//!
//! Normalisations, each applied to both sides where it applies:
//! 1. HTTP status: interim responses (1xx) other than `101 Switching Protocols` are dropped
//!    from tshark's facts. `100 Continue` and `103 Early Hints` are not the response to the
//!    request (RFC 9110 15.2); EVE's `http.status` is the final one, as in Suricata. `101`
//!    is final for the HTTP/1.1 exchange that it upgrades, so it stays.
//! 2. DNS names are compared in ASCII lower case (RFC 4343: names are case-insensitive;
//!    Palisade lower-cases, tshark prints them as sent). tshark's `<Root>` is the root name.
//! 3. DNS rrtype and rcode are compared as numbers: tshark prints numbers with `-T fields`,
//!    Palisade prints IANA mnemonics (`AAAA`, `NXDOMAIN`) or `TYPE<n>` / `RCODE<n>`; its
//!    mnemonics are turned back into numbers with its own tables (`proto_parsers::facts`),
//!    and misses are printed as `28 (AAAA)`.
//! 4. DNS messages with an unassigned opcode (3, 7-15; RFC 6895) are not read from tshark
//!    (`-Y` filter): tshark decodes any datagram on port 53 as a DNS header, including junk
//!    that no server acts on (`dns/dns-junk.pcap`'s `0xdeadbeef` "response" would give an
//!    rcode 15), which Palisade reports as an `applayer.unknown_protocol` anomaly instead.
//! 5. Frames inside ICMP errors are not read (`-Y`): tshark dissects the quoted datagram
//!    of a port-unreachable as DNS or HTTP; it is not a transaction. (No capture today has
//!    one; a late DNS answer to a client that has gone would.)
//! 6. SQL text: runs of whitespace become one space (one newline if they hold a line break,
//!    which ends a `--` comment), whitespace around `;` is dropped, and trailing `;` are
//!    removed. One tshark query (one protocol message) may hold several statements, of
//!    which Palisade writes one record each (PRODUCT.md); a query is found when one
//!    record's query equals it or a run of consecutive records of one flow, joined with
//!    `;`, does, followed by nothing but comments (a trailing `-- ...` is no statement and
//!    gets no record). Each record is used once (multiset). A record whose text Palisade
//!    kept only the start of (`sql.query_truncated`: the parsers keep the first
//!    `sql::TEXT_MAX` bytes of a statement for logging, while classifying all of it)
//!    matches a query that goes on from that start.
//! 7. HTTP hosts are compared in ASCII lower case, with the port: Palisade logs them as
//!    Suricata does (`hostname` lower-case and without the port, `http_port` beside it),
//!    tshark's `http.host` is the Host as sent.
//! 8. An HTTP/1 request's host is the authority the server routes on (RFC 9112 3.2.2,
//!    PRODUCT.md): `CONNECT`'s target, an absolute-form target's authority, else `Host`.
//!    tshark's `http.host` is always the Host header, so for the first two the target
//!    stands in for it (`routed_authority`).
//!
//! tshark is told how to read ports it does not know (`-d`, per capture, from what the
//! capture holds: `DECODE_AS`), so that it decodes every conversation the capture has.
//! Captures whose facts mean nothing are skipped with a written reason (`SKIP`); captures
//! that the tests build instead of committing (listed in a directory's `.gitignore`) are not
//! recordings and are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use proto_parsers::facts::{dns_qtype_name, dns_rcode_name};
use serde_json::Value;

/// The authority an HTTP/1 request's target names, when it names one: the whole target of
/// a `CONNECT`, the authority of an absolute-form target.
fn routed_authority<'a>(method: &str, uri: &'a str) -> Option<&'a str> {
    if method.eq_ignore_ascii_case("CONNECT") {
        return Some(uri);
    }
    let (scheme, rest) = uri.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.get(..end)
        .map(|a| a.rsplit_once('@').map_or(a, |(_, h)| h))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Captures whose facts are meaningless, with why. Kept as short as possible: a capture is
/// here only when tshark's reading is not what the receiving host acted on, so that a
/// "fact" tshark shows is one Palisade must not report.
const SKIP: &[(&str, &str)] = &[
    (
        "evasion/ip-frag-overlap.pcap",
        "overlapping IPv4 fragments that disagree: Linux discards the datagram (RFC 5722), so \
         the request never arrived; tshark reassembles the first copy (GET /Wdmix)",
    ),
    (
        "evasion/tcp-bad-checksum-decoy.pcap",
        "a decoy GET /index with a bad TCP checksum, which the receiver drops: tshark \
         dissects it (with or without tcp.check_checksum) and takes the real GET /admin at \
         the same sequence numbers for a retransmission",
    ),
    (
        "evasion/tcp-no-ack-decoy.pcap",
        "a decoy GET /index without the ACK flag, which Linux drops: tshark dissects it and \
         takes the real request for a retransmission",
    ),
    (
        "http1/http1-gap.pcap",
        "http1.pcap's keep-alive connection with the segment of GET /missing deleted (a \
         capture that lost a packet the server got): tshark reports nginx's 404 to it, a \
         response whose request was never seen, which Palisade does not log on its own; the \
         requests after the gap are checked by dataplane/tests/gaps.rs",
    ),
    (
        "evasion/tcp-gap.pcap",
        "a segment of the request is missing from the capture: tshark reads a Host header \
         out of the remains and pairs the response with them; no request the server got can \
         be told from it (Palisade fails closed: blind:gap)",
    ),
];

/// tshark options per capture (path relative to `tests/data`) for ports it does not decode
/// by itself.
const DECODE_AS: &[(&str, &[&str])] = &[
    // gRPC (HTTP/2 prior knowledge) on 50051.
    ("grpc/grpc.pcap", &["-d", "tcp.port==50051,http2"]),
    // nghttpx's cleartext frontend taking `Upgrade: h2c` on 8081 (h2 on 8080 is known).
    ("http2/h2.pcap", &["-d", "tcp.port==8081,http"]),
    // nghttpx's frontend on 8082 (tshark's heuristics find it too; said explicitly).
    ("http1/http1.pcap", &["-d", "tcp.port==8082,http"]),
    // The TLS cluster on 5433: SSLRequest, `S`, then TLS.
    ("postgres/pg-tls.pcap", &["-d", "tcp.port==5433,pgsql"]),
    // openssl s_server on 4433.
    ("tls/tls.pcap", &["-d", "tcp.port==4433,tls"]),
    // HTTP inside a CONNECT tunnel to shop.test:8000: tshark looks the tunnel's port up
    // in TCP's port table (its heuristics alone find the first request only).
    ("tunnel/connect.pcap", &["-d", "tcp.port==8000,http"]),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    HttpMethod,
    HttpUrl,
    HttpHostname,
    HttpStatus,
    DnsRrname,
    DnsRrtype,
    DnsRcode,
    TlsSni,
    Sql,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::HttpMethod => "http.http_method",
            Kind::HttpUrl => "http.url",
            Kind::HttpHostname => "http.hostname",
            Kind::HttpStatus => "http.status",
            Kind::DnsRrname => "dns.rrname",
            Kind::DnsRrtype => "dns.rrtype",
            Kind::DnsRcode => "dns.rcode",
            Kind::TlsSni => "tls.sni",
            Kind::Sql => "sql.query",
        })
    }
}

/// tshark's facts of one capture: each value with the frames it was seen in (one entry per
/// occurrence).
#[derive(Default)]
struct TsharkFacts {
    bag: BTreeMap<(Kind, String), Vec<u64>>,
    /// SQL queries in capture order, normalised, with their frame.
    sql: Vec<(String, u64)>,
}

impl TsharkFacts {
    fn add(&mut self, kind: Kind, value: String, frame: u64) {
        self.bag.entry((kind, value)).or_default().push(frame);
    }
}

/// Palisade's facts of one capture.
#[derive(Default)]
struct PalisadeFacts {
    bag: BTreeMap<(Kind, String), usize>,
    /// SQL statements per flow, in record order, normalised, each with whether Palisade
    /// kept only its start (`sql.query_truncated`).
    sql: BTreeMap<u64, Vec<(String, bool)>>,
}

impl PalisadeFacts {
    fn add(&mut self, kind: Kind, value: String) {
        *self.bag.entry((kind, value)).or_default() += 1;
    }
}

struct Miss {
    capture: String,
    kind: Kind,
    value: String,
    /// Frames where tshark saw the occurrences Palisade lacks (all of the value's frames
    /// when Palisade reported it fewer times than tshark: which ones are missing is not
    /// knowable from counts).
    frames: Vec<u64>,
    missing: usize,
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Long values (a 40 KB SQL comment) are cut for the listing only.
        const SHOW: usize = 160;
        let value = if self.value.len() > SHOW {
            let mut end = SHOW;
            while !self.value.is_char_boundary(end) {
                end -= 1;
            }
            format!("{:?}... ({} bytes)", &self.value[..end], self.value.len())
        } else {
            format!("{:?}", self.value)
        };
        // Frames once each, with how many occurrences they held when more than one: `12(15)`.
        let mut frames: Vec<(u64, usize)> = Vec::new();
        for &n in &self.frames {
            match frames.last_mut() {
                Some((last, k)) if *last == n => *k += 1,
                _ => frames.push((n, 1)),
            }
        }
        let frames = frames
            .iter()
            .map(|(n, k)| {
                if *k > 1 {
                    format!("{n}({k})")
                } else {
                    n.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        write!(
            f,
            "{}: {} {value} (tshark frames {frames}",
            self.capture, self.kind
        )?;
        if self.missing < self.frames.len() {
            write!(
                f,
                "; tshark {} times, palisade {}",
                self.frames.len(),
                self.frames.len() - self.missing
            )?;
        }
        f.write_str(")")
    }
}

// ---------------------------------------------------------------------------------------
// Normalisation.

fn dns_name(s: &str) -> String {
    if s == "<Root>" || s == "." {
        return String::new();
    }
    s.to_ascii_lowercase()
}

/// `28 (AAAA)`, `65280`: a type number as the misses show it.
fn rrtype_text(n: u16) -> String {
    match dns_qtype_name(n) {
        Some(name) => format!("{n} ({name})"),
        None => n.to_string(),
    }
}

fn rcode_text(n: u16) -> String {
    match dns_rcode_name(n) {
        Some(name) => format!("{n} ({name})"),
        None => n.to_string(),
    }
}

/// Palisade's mnemonic back to its number, with Palisade's own table.
fn mnemonic_number(s: &str, prefix: &str, table: fn(u16) -> Option<&'static str>) -> Option<u16> {
    if let Some(n) = s.strip_prefix(prefix).and_then(|d| d.parse().ok()) {
        return Some(n);
    }
    (0..=u16::MAX).find(|&n| table(n) == Some(s))
}

/// Normalisation 6: a run of whitespace becomes one space, or one newline when it holds a
/// line break (a `--` comment ends there); no whitespace around `;`; no trailing `;`.
fn sql_norm(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap: Option<char> = None;
    for c in s.chars() {
        if c.is_whitespace() {
            if c == '\n' || gap == Some('\n') {
                gap = Some('\n');
            } else {
                gap = Some(' ');
            }
            continue;
        }
        if let Some(g) = gap.take()
            && c != ';'
            && !out.is_empty()
            && !out.ends_with(';')
        {
            out.push(g);
        }
        out.push(c);
    }
    while out.ends_with(';') {
        out.pop();
    }
    out
}

/// Whether what follows the last statement holds no statement: only `;`, whitespace and
/// comments (`-- ...` to the end of its line, `/* ... */`). Palisade writes no record for
/// it (there is no verb), so a query is matched without it: `SELECT 1; -- done`.
fn only_comments(mut rest: &str) -> bool {
    loop {
        rest = rest.trim_start_matches([' ', '\n', ';']);
        if rest.is_empty() {
            return true;
        }
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            match r.split_once("*/") {
                Some((_, after)) => rest = after,
                None => return false,
            }
        } else {
            return false;
        }
    }
}

// ---------------------------------------------------------------------------------------
// tshark.

const FIELDS: &[&str] = &[
    "frame.number",
    "http.request.method",
    "http.request.uri",
    "http.host",
    "http.response.code",
    "http2.headers.method",
    "http2.headers.path",
    "http2.headers.authority",
    "http2.headers.status",
    "dns.flags.response",
    "dns.qry.name",
    "dns.qry.type",
    "dns.flags.rcode",
    "dns.resp.ext_rcode",
    "tls.handshake.extensions_server_name",
    "pgsql.query",
    "mysql.query",
];

/// Separates several occurrences of one field in a frame: a byte no value here holds (a
/// comma, tshark's default, is common in URLs and SQL).
const AGG: char = '\u{1f}';

fn tshark_facts(capture: &Path, rel: &str) -> TsharkFacts {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(capture);
    if let Some((_, opts)) = DECODE_AS.iter().find(|(p, _)| *p == rel) {
        cmd.args(*opts);
    }
    cmd.args([
        "-Y",
        "not icmp and not icmpv6 and not (dns.flags.opcode == 3 or dns.flags.opcode >= 7)",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
    ])
    .arg(format!("aggregator={AGG}"));
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark runs (tests/peers/install.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed on {rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut facts = TsharkFacts::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), FIELDS.len(), "{rel}: tshark line {line:?}");
        let col = |name: &str| -> Vec<&str> {
            let i = FIELDS.iter().position(|f| *f == name).unwrap();
            if cols[i].is_empty() {
                Vec::new()
            } else {
                cols[i].split(AGG).collect()
            }
        };
        let frame: u64 = cols[0].parse().unwrap();
        // Normalisation 8: the authority the server routes on.
        let (methods, uris) = (col("http.request.method"), col("http.request.uri"));
        let hosts = col("http.host");
        if methods.len() == hosts.len() && uris.len() == hosts.len() {
            for ((m, u), h) in methods.iter().zip(&uris).zip(&hosts) {
                let host = routed_authority(m, u).unwrap_or(h);
                facts.add(Kind::HttpHostname, host.to_ascii_lowercase(), frame);
            }
        } else {
            for h in &hosts {
                facts.add(Kind::HttpHostname, h.to_ascii_lowercase(), frame);
            }
        }
        for (field, kind) in [
            ("http.request.method", Kind::HttpMethod),
            ("http.request.uri", Kind::HttpUrl),
            ("http2.headers.method", Kind::HttpMethod),
            ("http2.headers.path", Kind::HttpUrl),
            ("http2.headers.authority", Kind::HttpHostname),
        ] {
            for v in col(field) {
                // Hosts compare without case: Suricata and Palisade log them lower-case.
                let v = if kind == Kind::HttpHostname {
                    v.to_ascii_lowercase()
                } else {
                    v.to_string()
                };
                facts.add(kind, v, frame);
            }
        }
        for field in ["http.response.code", "http2.headers.status"] {
            for v in col(field) {
                let code: u16 = v.parse().unwrap();
                if (100..200).contains(&code) && code != 101 {
                    continue; // normalisation 1
                }
                facts.add(Kind::HttpStatus, code.to_string(), frame);
            }
        }
        // DNS: in one frame every message goes the same way (a TCP segment carries one
        // direction), so the frame is all queries or all responses.
        let responses = col("dns.flags.response");
        if !responses.is_empty() {
            let is_response = responses[0] == "1" || responses[0] == "True";
            assert!(
                responses.iter().all(|r| *r == responses[0]),
                "{rel} frame {frame}: queries and responses in one frame"
            );
            if is_response {
                let rcodes = col("dns.flags.rcode");
                // The OPT records' upper bits. With several messages in the frame they
                // cannot be told apart in tshark's flat list; they must all be 0 then.
                let hi: Vec<u16> = col("dns.resp.ext_rcode")
                    .iter()
                    .map(|e| u16::from_str_radix(e.trim_start_matches("0x"), 16).unwrap())
                    .collect();
                assert!(
                    rcodes.len() == 1 || hi.iter().all(|h| *h == 0),
                    "{rel} frame {frame}: extended rcodes in a frame of {} responses",
                    rcodes.len()
                );
                for r in &rcodes {
                    let low: u16 = r.parse().unwrap();
                    let code = low | hi.first().copied().unwrap_or(0) << 4;
                    facts.add(Kind::DnsRcode, rcode_text(code), frame);
                }
            } else {
                let names = col("dns.qry.name");
                let types = col("dns.qry.type");
                assert_eq!(
                    names.len(),
                    types.len(),
                    "{rel} frame {frame}: question names and types do not pair"
                );
                for (n, t) in names.iter().zip(&types) {
                    facts.add(Kind::DnsRrname, dns_name(n), frame);
                    facts.add(Kind::DnsRrtype, rrtype_text(t.parse().unwrap()), frame);
                }
            }
        }
        for v in col("tls.handshake.extensions_server_name") {
            facts.add(Kind::TlsSni, v.to_string(), frame);
        }
        for field in ["pgsql.query", "mysql.query"] {
            for v in col(field) {
                facts.sql.push((sql_norm(v), frame));
            }
        }
    }
    facts
}

// ---------------------------------------------------------------------------------------
// Palisade.

fn palisade_facts(capture: &Path, rel: &str) -> PalisadeFacts {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("eve.json");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("replay")
        .arg(capture)
        .arg("--policy")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/allow-all.yaml"))
        .arg("--log-all")
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "palisade replay failed on {rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut facts = PalisadeFacts::default();
    let text = std::fs::read_to_string(&events).unwrap();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let s = |x: &Value| x.as_str().map(str::to_string);
        match v["event_type"].as_str().unwrap_or_default() {
            "http" => {
                let h = &v["http"];
                for (key, kind) in [("http_method", Kind::HttpMethod), ("url", Kind::HttpUrl)] {
                    if let Some(x) = s(&h[key]) {
                        facts.add(kind, x);
                    }
                }
                // tshark's `http.host` is the Host as sent; Palisade logs the host and its
                // port apart, as Suricata does (`hostname`, `http_port`).
                if let Some(host) = s(&h["hostname"]) {
                    let host = match h["http_port"].as_u64() {
                        Some(p) if host.contains(':') => format!("[{host}]:{p}"),
                        Some(p) => format!("{host}:{p}"),
                        None if host.contains(':') => format!("[{host}]"),
                        None => host,
                    };
                    facts.add(Kind::HttpHostname, host.to_ascii_lowercase());
                }
                if let Some(code) = h["status"].as_u64() {
                    facts.add(Kind::HttpStatus, code.to_string());
                }
            }
            "dns" => {
                let d = &v["dns"];
                if let Some(n) = s(&d["rrname"]) {
                    facts.add(Kind::DnsRrname, dns_name(&n));
                }
                if let Some(t) = s(&d["rrtype"]) {
                    let value = match mnemonic_number(&t, "TYPE", dns_qtype_name) {
                        Some(n) => rrtype_text(n),
                        None => format!("unknown mnemonic {t}"),
                    };
                    facts.add(Kind::DnsRrtype, value);
                }
                if let Some(r) = s(&d["rcode"]) {
                    let value = match mnemonic_number(&r, "RCODE", dns_rcode_name) {
                        Some(n) => rcode_text(n),
                        None => format!("unknown mnemonic {r}"),
                    };
                    facts.add(Kind::DnsRcode, value);
                }
            }
            "tls" => {
                if let Some(sni) = s(&v["tls"]["sni"]) {
                    facts.add(Kind::TlsSni, sni);
                }
            }
            "pgsql" | "mysql" => {
                if let Some(q) = s(&v["sql"]["query"]) {
                    let flow = v["flow_id"].as_u64().unwrap_or_default();
                    let cut = v["sql"]["query_truncated"] == true;
                    facts.sql.entry(flow).or_default().push((sql_norm(&q), cut));
                }
            }
            _ => {}
        }
    }
    facts
}

// ---------------------------------------------------------------------------------------
// The difference.

/// One flow's statements (text, kept only in part) and which of them a query used.
type FlowStatements = (Vec<(String, bool)>, Vec<bool>);

/// Finds `query` among the unused statements of one flow: one statement equal to it, or a
/// run of consecutive unused ones that, joined with `;`, is. A statement Palisade kept only
/// the start of (`query_truncated`) ends such a run when the query goes on from there with
/// that start. Marks what it used.
fn take_sql(query: &str, flows: &mut [FlowStatements]) -> bool {
    for (stmts, used) in flows.iter_mut() {
        for start in 0..stmts.len() {
            let mut joined = String::new();
            for end in start..stmts.len() {
                if used[end] {
                    break;
                }
                if end > start {
                    joined.push(';');
                }
                let (stmt, cut) = &stmts[end];
                joined.push_str(stmt);
                let rest = query.strip_prefix(joined.as_str());
                if rest
                    .is_some_and(|r| *cut || r.is_empty() || r.starts_with(';') && only_comments(r))
                {
                    used[start..=end].iter_mut().for_each(|u| *u = true);
                    return true;
                }
                if joined.len() >= query.len() {
                    break;
                }
            }
        }
    }
    false
}

fn misses(rel: &str, t: &TsharkFacts, p: &PalisadeFacts) -> Vec<Miss> {
    let mut out = Vec::new();
    for ((kind, value), frames) in &t.bag {
        let have = p.bag.get(&(*kind, value.clone())).copied().unwrap_or(0);
        if frames.len() > have {
            out.push(Miss {
                capture: rel.to_string(),
                kind: *kind,
                value: value.clone(),
                frames: frames.clone(),
                missing: frames.len() - have,
            });
        }
    }
    let mut flows: Vec<FlowStatements> = p
        .sql
        .values()
        .map(|s| (s.clone(), vec![false; s.len()]))
        .collect();
    for (q, frame) in &t.sql {
        if q.is_empty() {
            continue;
        }
        if !take_sql(q, &mut flows) {
            out.push(Miss {
                capture: rel.to_string(),
                kind: Kind::Sql,
                value: q.clone(),
                frames: vec![*frame],
                missing: 1,
            });
        }
    }
    out
}

/// Every `*.pcap` and `*.pcapng` under `dir`, relative to it, sorted; files a directory's
/// `.gitignore` names (`/file`: captures a test builds, too large to commit) are left out.
fn captures(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let ignored: BTreeSet<String> = std::fs::read_to_string(dir.join(".gitignore"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix('/').map(str::to_string))
            .collect();
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(root, &path, out);
            } else if (name.ends_with(".pcap") || name.ends_with(".pcapng"))
                && !ignored.contains(&name)
            {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn every_fact_tshark_reports_is_in_palisades_records() {
    let data = repo().join("tests/data");
    let all = captures(&data);
    assert!(
        all.len() > 50,
        "only {} captures under tests/data",
        all.len()
    );
    for (skip, _) in SKIP {
        assert!(
            all.iter().any(|c| c == skip),
            "SKIP names {skip}, which is not under tests/data"
        );
    }
    let mut all_misses = Vec::new();
    let mut checked = 0usize;
    let mut facts = 0usize;
    for rel in &all {
        if SKIP.iter().any(|(s, _)| s == rel) {
            continue;
        }
        let path = data.join(rel);
        let t = tshark_facts(&path, rel);
        let p = palisade_facts(&path, rel);
        facts += t.bag.values().map(Vec::len).sum::<usize>() + t.sql.len();
        all_misses.extend(misses(rel, &t, &p));
        checked += 1;
    }
    eprintln!(
        "fidelity: {checked} captures, {facts} tshark facts, {} skipped",
        SKIP.len()
    );
    assert!(
        all_misses.is_empty(),
        "{} fact(s) tshark reports are missing from palisade's records:\n{}",
        all_misses.len(),
        all_misses
            .iter()
            .map(|m| format!("  {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn sql_matching_follows_the_documented_normalisation() {
    assert_eq!(sql_norm("  SELECT 1 ;\n SELECT  2;  "), "SELECT 1;SELECT 2");
    assert_eq!(sql_norm("SELECT 1 -- c\n  FROM t"), "SELECT 1 -- c\nFROM t");
    assert!(only_comments(";-- '"));
    assert!(only_comments("; /* x */ ; -- y\n"));
    assert!(!only_comments(";-- c\nDROP TABLE t"));
    assert!(!only_comments(";/* unterminated"));
    let flow = |s: &[&str]| {
        (
            s.iter().map(|x| (sql_norm(x), false)).collect(),
            vec![false; s.len()],
        )
    };
    // One message, two statements, two records; a trailing comment has none.
    let mut flows = vec![flow(&["SELECT $q$'$q$ AS a", "DROP TABLE t"])];
    assert!(take_sql(
        &sql_norm("SELECT $q$'$q$ AS a; DROP TABLE t; -- '"),
        &mut flows
    ));
    assert!(
        !take_sql("DROP TABLE t", &mut flows),
        "each record is used once"
    );
    // A statement hidden after a comment's line end is not a comment.
    let mut flows = vec![flow(&["SELECT 1"])];
    assert!(!take_sql(
        &sql_norm("SELECT 1; -- c\nDROP TABLE t"),
        &mut flows
    ));
    // Runs do not cross flows.
    let mut flows = vec![flow(&["SELECT 1"]), flow(&["SELECT 2"])];
    assert!(!take_sql("SELECT 1;SELECT 2", &mut flows));
    // A statement kept only in part matches a query that goes on from its start, and only
    // such a query.
    let cut = |s: &str| (vec![(sql_norm(s), true)], vec![false]);
    assert!(take_sql("SELECT 'long' FROM t", &mut [cut("SELECT 'lo")]));
    assert!(!take_sql("SELECT 'other' FROM t", &mut [cut("SELECT 'lo")]));
}
