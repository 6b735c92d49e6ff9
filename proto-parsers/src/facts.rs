//! Typed facts: what each protocol's parser reports about a request and its response.
//!
//! Everything borrows from the bytes being fed or from the parser's own bounded scratch
//! (decoded HPACK headers, a DNS name, normalised SQL table names), so a parser allocates
//! nothing per request; the policy engine reads these fields in place and the event writer
//! copies only what it prints. The lifetime ends with the `feed` call that produced them.

use crate::AppProto;

/// One header field, name and value as decoded (HTTP/1 names keep their case as sent;
/// HTTP/2 names are lower-case by the protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
}

/// An HTTP request head (HTTP/1.x or one HTTP/2 stream's request headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    pub version: HttpVersion,
    pub method: &'a [u8],
    /// As sent, query included (`:path` for HTTP/2). Policy matches its normalised form.
    pub path: &'a [u8],
    /// `Host`, or `:authority` for HTTP/2.
    pub authority: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    /// Every header field of the head (pseudo-headers excluded), for `headers:` matchers.
    pub headers: &'a [Header<'a>],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
}

/// A gRPC call: the HTTP/2 request that carries it and the service and method from its path
/// (`/package.Service/Method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcCall<'a> {
    pub http: HttpRequest<'a>,
    pub service: &'a [u8],
    pub method: &'a [u8],
}

/// How a gRPC call ended: `grpc-status` from trailers or a trailers-only response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcResponse<'a> {
    pub http_status: u16,
    pub grpc_status: Option<u32>,
    pub grpc_message: Option<&'a [u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlDialect {
    Postgres,
    Mysql,
}

impl SqlDialect {
    pub const fn app(self) -> AppProto {
        match self {
            SqlDialect::Postgres => AppProto::Postgres,
            SqlDialect::Mysql => AppProto::Mysql,
        }
    }
}

/// What a SQL request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlKind {
    /// The login (startup message / handshake response): judged and logged as verb `LOGIN`.
    Login,
    /// Statement text sent for execution (simple query, COM_QUERY).
    Query,
    /// Statement text prepared for later execution (Parse, COM_STMT_PREPARE).
    Prepare,
    /// Execution of a prepared statement; `text` and `statements` are what it was
    /// prepared with (its classification and the first bytes of its text, kept by the
    /// parser: an execution it cannot match to one raises a blinding anomaly).
    Execute,
    /// Switching the current database (COM_INIT_DB); `database` is the new one.
    UseDatabase,
}

/// A statement's verb, upper-cased by the classifier; unknown verbs are data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlVerb<'a> {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Create,
    Alter,
    Drop,
    Truncate,
    Grant,
    Revoke,
    Copy,
    Begin,
    Commit,
    Rollback,
    Set,
    Show,
    Use,
    Call,
    Explain,
    With,
    /// Anything else, as the classifier upper-cased it (bounded scratch).
    Other(&'a str),
}

/// One statement of a request (a simple query may hold several): its verb and every table
/// it touches, names normalised (unquoted, lower-cased unless quoted, schema kept as
/// `schema.table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqlStatement<'a> {
    pub verb: SqlVerb<'a>,
    pub tables: &'a [&'a str],
    /// The statement's own text, from the request's: the `;`-separated part it was found in,
    /// without surrounding whitespace (a statement nested in another, such as a
    /// data-modifying CTE, has its enclosing statement's text), possibly truncated to the
    /// parser's logging limit (`sql::TEXT_MAX`).
    pub text: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqlRequest<'a> {
    pub dialect: SqlDialect,
    pub kind: SqlKind,
    /// From the login; `None` for a flow picked up mid-stream.
    pub user: Option<&'a [u8]>,
    pub database: Option<&'a [u8]>,
    /// The statement text as sent (empty for a login), possibly truncated to the parser's
    /// logging limit (`sql::TEXT_MAX`); classification always saw the whole text. A request
    /// holding many statements may be reported as several transactions with the same id,
    /// each with the statements of one part of the text (see `sql`): `text` is then that
    /// part's.
    pub text: &'a [u8],
    /// The classified statements of `text` (empty for a login).
    pub statements: &'a [SqlStatement<'a>],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqlResponse<'a> {
    /// SQLSTATE (PostgreSQL) or the `#xxxxx` state (MySQL), when the server reported an error.
    pub sqlstate: Option<&'a [u8]>,
    /// Server error number (MySQL) when known.
    pub code: Option<u32>,
    /// The error message as sent; `None` on success.
    pub error: Option<&'a [u8]>,
}

/// A Redis command. Arguments are never carried: `AUTH`/`HELLO` secrets must not leak into
/// logs, and policy needs only the command and key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisCommand<'a> {
    /// As sent (case kept); policy compares case-insensitively.
    pub command: &'a [u8],
    /// The first key argument for commands that take one (`None` for AUTH, HELLO, PING...).
    pub key: Option<&'a [u8]>,
    pub argc: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisReply<'a> {
    /// The error line of a `-ERR ...` reply.
    pub error: Option<&'a [u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsQuestion<'a> {
    /// Dotted, lower-cased, without the trailing dot (decoded into the parser's scratch).
    pub qname: &'a str,
    pub qtype: u16,
    pub qclass: u16,
    /// The DNS message id, for pairing with the answer.
    pub msg_id: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    pub rcode: u16,
    pub answers: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsClientHello<'a> {
    pub sni: Option<&'a [u8]>,
    /// The ALPN protocols offered, in order (bounded by the parser).
    pub alpn: &'a [&'a [u8]],
    /// The highest version offered (supported_versions if present, else the legacy field),
    /// as the wire value (0x0304 = TLS 1.3).
    pub version: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsServerHello<'a> {
    pub version: u16,
    pub alpn: Option<&'a [u8]>,
}

/// The typed detail of a request. `None` only for parsers that have no typed form yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestDetail<'a> {
    None,
    Http(HttpRequest<'a>),
    Grpc(GrpcCall<'a>),
    Sql(SqlRequest<'a>),
    Redis(RedisCommand<'a>),
    Dns(DnsQuestion<'a>),
    Tls(TlsClientHello<'a>),
}

/// The typed detail of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseDetail<'a> {
    None,
    Http(HttpResponse<'a>),
    Grpc(GrpcResponse<'a>),
    Sql(SqlResponse<'a>),
    Redis(RedisReply<'a>),
    Dns(DnsAnswer),
    Tls(TlsServerHello<'a>),
}

/// DNS resource record type mnemonics for events (`"AAAA"`): every assigned value of IANA's
/// "Resource Record (RR) TYPEs" registry, data types, meta-types (`OPT`, `TSIG`...) and
/// query types (`IXFR`, `AXFR`, `MAILB`, `MAILA`, `*` as `ANY`, the name dig and Suricata
/// print), obsolete and experimental ones included (`MD`, `NULL`, `A6`, `NXT`...). `None`
/// for the unassigned, private-use (65280-65534) and reserved (0, 65535) numbers: callers
/// print those as `TYPE<n>` (RFC 3597), as dig does.
pub fn dns_qtype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        66 => "DSYNC",
        67 => "HHIT",
        68 => "BRID",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        128 => "NXNAME",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        261 => "RESINFO",
        262 => "WALLET",
        263 => "CLA",
        264 => "IPN",
        32768 => "TA",
        32769 => "DLV",
        _ => return None,
    })
}

/// DNS rcode mnemonics for events (`"NXDOMAIN"`): IANA's "DNS RCODEs" registry, the 4-bit
/// header codes and the ones EDNS extends to 12 bits. 16 is both BADVERS (an OPT record's
/// extended rcode, RFC 6891) and BADSIG (a TSIG record's error field, RFC 8945); in a
/// message's rcode it can only be the former. `None` for unassigned and private-use codes.
pub fn dns_rcode_name(r: u16) -> Option<&'static str> {
    Some(match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return None,
    })
}

/// TLS version names for events (`"TLSv1.3"`).
pub fn tls_version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TShark 4.0.17's names for `dns.qry.type` (`tshark -G values`, first word).
    const TSHARK_TYPES: &[(u16, &str)] = &[
        (0, "Unused"),
        (1, "A"),
        (2, "NS"),
        (3, "MD"),
        (4, "MF"),
        (5, "CNAME"),
        (6, "SOA"),
        (7, "MB"),
        (8, "MG"),
        (9, "MR"),
        (10, "NULL"),
        (11, "WKS"),
        (12, "PTR"),
        (13, "HINFO"),
        (14, "MINFO"),
        (15, "MX"),
        (16, "TXT"),
        (17, "RP"),
        (18, "AFSDB"),
        (19, "X25"),
        (20, "ISDN"),
        (21, "RT"),
        (22, "NSAP"),
        (23, "NSAP-PTR"),
        (24, "SIG"),
        (25, "KEY"),
        (26, "PX"),
        (27, "GPOS"),
        (28, "AAAA"),
        (29, "LOC"),
        (30, "NXT"),
        (31, "EID"),
        (32, "NIMLOC"),
        (33, "SRV"),
        (34, "ATMA"),
        (35, "NAPTR"),
        (36, "KX"),
        (37, "CERT"),
        (38, "A6"),
        (39, "DNAME"),
        (40, "SINK"),
        (41, "OPT"),
        (42, "APL"),
        (43, "DS"),
        (44, "SSHFP"),
        (45, "IPSECKEY"),
        (46, "RRSIG"),
        (47, "NSEC"),
        (48, "DNSKEY"),
        (49, "DHCID"),
        (50, "NSEC3"),
        (51, "NSEC3PARAM"),
        (52, "TLSA"),
        (55, "HIP"),
        (57, "RKEY"),
        (58, "TALINK"),
        (59, "CDS"),
        (60, "CDNSKEY"),
        (61, "OPENPGPKEY"),
        (62, "CSYNC"),
        (63, "ZONEMD"),
        (64, "SVCB"),
        (65, "HTTPS"),
        (99, "SPF"),
        (100, "UINFO"),
        (101, "UID"),
        (102, "GID"),
        (103, "UNSPEC"),
        (104, "NID"),
        (105, "L32"),
        (106, "L64"),
        (107, "LP"),
        (108, "EUI48"),
        (109, "EUI64"),
        (249, "TKEY"),
        (250, "TSIG"),
        (251, "IXFR"),
        (252, "AXFR"),
        (253, "MAILB"),
        (254, "MAILA"),
        (255, "*"),
        (256, "URI"),
        (257, "CAA"),
        (32768, "TA"),
        (32769, "DLV"),
        (65281, "WINS"),
        (65282, "WINS-R"),
        (65422, "XPF"),
    ];

    #[test]
    fn dns_types_agree_with_tshark_where_it_knows_them() {
        for &(n, name) in TSHARK_TYPES {
            let want = match n {
                // Reserved: no mnemonic, `TYPE0`.
                0 => None,
                // IANA's mnemonic is `*`; dig and Suricata print ANY.
                255 => Some("ANY"),
                // Private-use numbers Wireshark names after Microsoft's WINS and the
                // withdrawn XPF draft: not IANA assignments.
                65281 | 65282 | 65422 => None,
                _ => Some(name),
            };
            assert_eq!(dns_qtype_name(n), want, "type {n}");
        }
        // Assigned since TShark 4.0 (or missing from it): IANA's mnemonics.
        for (n, name) in [
            (53, "SMIMEA"),
            (56, "NINFO"),
            (66, "DSYNC"),
            (67, "HHIT"),
            (68, "BRID"),
            (128, "NXNAME"),
            (258, "AVC"),
            (259, "DOA"),
            (260, "AMTRELAY"),
            (261, "RESINFO"),
            (262, "WALLET"),
            (263, "CLA"),
            (264, "IPN"),
        ] {
            assert_eq!(dns_qtype_name(n), Some(name), "type {n}");
        }
        // Unassigned, private use, reserved: `TYPE<n>` by the caller (RFC 3597).
        for n in [
            54, 70, 98, 110, 127, 129, 248, 265, 32767, 32770, 65280, 65534, 65535,
        ] {
            assert_eq!(dns_qtype_name(n), None, "type {n}");
        }
        let named = (0..=u16::MAX)
            .filter(|&n| dns_qtype_name(n).is_some())
            .count();
        assert_eq!(named, 97);
    }

    #[test]
    fn dns_rcodes_cover_the_extended_ones() {
        // TShark 4.0.17 names 0..=11 and 16..=23 (`tshark -G values`, dns.flags.rcode).
        let named: Vec<u16> = (0..=4095)
            .filter(|&r| dns_rcode_name(r).is_some())
            .collect();
        let want: Vec<u16> = (0..=11).chain(16..=23).collect();
        assert_eq!(named, want);
        assert_eq!(dns_rcode_name(16), Some("BADVERS"));
        assert_eq!(dns_rcode_name(17), Some("BADKEY"));
        assert_eq!(dns_rcode_name(23), Some("BADCOOKIE"));
        assert_eq!(dns_rcode_name(11), Some("DSOTYPENI"));
        assert_eq!(dns_rcode_name(12), None);
    }
}
