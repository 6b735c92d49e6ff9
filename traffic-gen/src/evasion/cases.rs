//! The cases: each trick's name, class, the capture it builds, and what `palisade replay`
//! must do with it under `deny.yaml` and `allow.yaml`.

use super::capture::Capture;
use super::http1::{
    baseline_http1, baseline_http1_delete, http1_70_headers, http1_absolute_host_mismatch,
    http1_absolute_uri, http1_bare_lf, http1_cl_te, http1_conflicting_cl,
    http1_connect_host_mismatch, http1_dot_segments, http1_double_slash, http1_double_space,
    http1_head_24k, http1_head_900k, http1_head_over_limit, http1_leading_empty_lines,
    http1_percent_encoded, http1_pipeline_100, http1_tab, http1_unlisted_method,
};
use super::http2::{baseline_http2, http2_continuation_100, http2_h2c_upgrade};
use super::redis::{
    baseline_redis, baseline_redis_key, redis_big_set_value, redis_inline_hex_escape,
    redis_inline_key_escape, redis_lowercase, redis_pipeline_10000_ping,
};
use super::sql::{
    baseline_mysql, baseline_postgres, sql_mysql_executable_comment, sql_mysql_long_comment,
    sql_pg_1000_selects, sql_pg_dollar_quote, sql_pg_long_comment, sql_pg_string_literal,
};
use super::tcpip::{
    ip_frag_40, ip_frag_overlap, tcp_bad_checksum_decoy, tcp_gap, tcp_midstream, tcp_no_ack_decoy,
    tcp_overlap_ooo, tcp_retransmit_different, tcp_rst_out_of_window, tcp_second_syn,
    tcp_synack_first,
};
use super::tls::{baseline_tls, tls_one_byte_segments, tls_sni_split_records};

/// A fact a receiver acts on, as an event must report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// Method and path (compared after the normalisation PRODUCT.md describes).
    Http(&'static str, &'static str),
    /// Verb and one table the statement touches.
    Sql(&'static str, &'static str),
    /// Command and key (if any).
    Redis(&'static str, Option<&'static str>),
    Tls(&'static str),
}

impl Fact {
    /// `http GET /admin`, `sql DROP t`, `redis GET secret:1`, `tls x.evil.test`.
    pub fn to_text(self) -> String {
        match self {
            Fact::Http(m, p) => format!("http {m} {p}"),
            Fact::Sql(v, t) => format!("sql {v} {t}"),
            Fact::Redis(c, None) => format!("redis {c}"),
            Fact::Redis(c, Some(k)) => format!("redis {c} {k}"),
            Fact::Tls(s) => format!("tls {s}"),
        }
    }
}

/// One acceptable outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// deny.yaml: the request (or its flow) denied by this rule. allow.yaml: unused.
    Rule(&'static str),
    /// The flow became uninspectable for this cause (`control::Uninspectable::as_str`):
    /// under deny.yaml, `onUninspectable` denied it naming the cause; under allow.yaml
    /// (no L7 rules, so no decision), the summary counts the cause.
    Blind(&'static str),
    /// allow.yaml: the event reports this fact.
    Facts(Fact),
}

impl Outcome {
    pub fn to_text(self) -> String {
        match self {
            Outcome::Rule(r) => format!("rule:{r}"),
            Outcome::Blind(c) => format!("blind:{c}"),
            Outcome::Facts(f) => f.to_text(),
        }
    }
}

/// One trick.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// `<class>-<trick>`; the capture is `<name>.pcap`.
    pub name: &'static str,
    pub class: &'static str,
    /// What the trick is.
    pub trick: &'static str,
    /// Under deny.yaml: any of these is the correct outcome.
    pub deny: &'static [Outcome],
    /// Under allow.yaml + `--log-all`: any of these is the correct outcome.
    pub allow: &'static [Outcome],
    /// A fact that must not be reported under allow.yaml unless the flow went blind: the
    /// decoy a receiver never acts on.
    pub absent: Option<Fact>,
    build: fn(&mut Capture),
}

impl Case {
    pub fn capture(&self) -> Capture {
        let mut cap = Capture::for_case(self.name);
        (self.build)(&mut cap);
        cap
    }

    pub fn file(&self) -> String {
        format!("{}.pcap", self.name)
    }
}

use Outcome::{Blind, Facts, Rule};

pub(super) const ADMIN: Fact = Fact::Http("GET", "/admin");
pub(super) const DROP_T: Fact = Fact::Sql("DROP", "t");
pub(super) const FLUSHALL: Fact = Fact::Redis("FLUSHALL", None);
pub(super) const EVIL: Fact = Fact::Tls("x.evil.test");

pub(super) const DENY_ADMIN: &[Outcome] = &[Rule("deny-admin")];
pub(super) const GET_ADMIN: &[Outcome] = &[Facts(ADMIN)];

/// Every case, in index order.
pub const CASES: &[Case] = &[
    // Baselines: the policies and the captures work without a trick.
    Case {
        name: "baseline-http1",
        class: "baseline",
        trick: "none: GET /index.html then GET /admin on one keep-alive connection",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: baseline_http1,
    },
    Case {
        name: "baseline-http1-delete",
        class: "baseline",
        trick: "none: GET /api/items/7 then DELETE /api/items/7",
        deny: &[Rule("deny-delete")],
        allow: &[Facts(Fact::Http("DELETE", "/api/items/7"))],
        absent: None,
        build: baseline_http1_delete,
    },
    Case {
        name: "baseline-http2",
        class: "baseline",
        trick: "none: h2 prior knowledge on 8080, GET /admin in one HEADERS frame",
        deny: &[Rule("deny-h2-admin")],
        allow: GET_ADMIN,
        absent: None,
        build: baseline_http2,
    },
    Case {
        name: "baseline-postgres",
        class: "baseline",
        trick: "none: a SELECT then DROP TABLE t, simple queries",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: baseline_postgres,
    },
    Case {
        name: "baseline-mysql",
        class: "baseline",
        trick: "none: SET autocommit=1 then TRUNCATE TABLE t, COM_QUERY",
        deny: &[Rule("deny-mysql-drop")],
        allow: &[Facts(Fact::Sql("TRUNCATE", "t"))],
        absent: None,
        build: baseline_mysql,
    },
    Case {
        name: "baseline-redis",
        class: "baseline",
        trick: "none: GET counter:7 then FLUSHALL (RESP)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: baseline_redis,
    },
    Case {
        name: "baseline-redis-key",
        class: "baseline",
        trick: "none: GET secret:1 (RESP)",
        deny: &[Rule("deny-redis-secret")],
        allow: &[Facts(Fact::Redis("GET", Some("secret:1")))],
        absent: None,
        build: baseline_redis_key,
    },
    Case {
        name: "baseline-tls",
        class: "baseline",
        trick: "none: a TLS 1.3 ClientHello with SNI x.evil.test in one record and segment",
        deny: &[Rule("deny-evil-sni")],
        allow: &[Facts(EVIL)],
        absent: None,
        build: baseline_tls,
    },
    // HTTP/1 leniency.
    Case {
        name: "http1-leading-empty-lines",
        class: "http1",
        trick: "two empty lines (CRLF CRLF) before the request line (RFC 9112 2.2: servers ignore them)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_leading_empty_lines,
    },
    Case {
        name: "http1-bare-lf",
        class: "http1",
        trick: "every line of the head ends in a bare LF",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_bare_lf,
    },
    Case {
        name: "http1-70-headers",
        class: "http1",
        trick: "70 header fields (more than httparse's usual 64-entry array)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_70_headers,
    },
    Case {
        name: "http1-head-24k",
        class: "http1",
        trick: "a 24 KiB head (padding fields), over 16 segments",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_head_24k,
    },
    Case {
        name: "http1-head-900k",
        class: "http1",
        trick: "a 900 KiB head (16 KiB padding fields), under the 1 MiB + 4 KiB head limit",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_head_900k,
    },
    Case {
        name: "http1-head-over-limit",
        class: "http1",
        trick: "a head of 1 MiB + 12 KiB, over every head limit: must fail closed (the server answers 431)",
        deny: &[Blind("parser_limit"), Blind("carry_overflow")],
        allow: &[Blind("parser_limit"), Blind("carry_overflow")],
        absent: None,
        build: http1_head_over_limit,
    },
    Case {
        name: "http1-unlisted-method",
        class: "http1",
        trick: "PROPFIND /admin (a method no rule lists; the path rule must still deny)",
        deny: DENY_ADMIN,
        allow: &[Facts(Fact::Http("PROPFIND", "/admin"))],
        absent: None,
        build: http1_unlisted_method,
    },
    Case {
        name: "http1-double-space",
        class: "http1",
        trick: "two spaces between method and path (GET  /admin)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_double_space,
    },
    Case {
        name: "http1-tab",
        class: "http1",
        trick: "a tab between method and path (RFC 9112 3: recipients may split on any whitespace)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_tab,
    },
    Case {
        name: "http1-pipeline-100",
        class: "http1",
        trick: "100 pipelined allowed GETs, then GET /admin, sent back to back before any answer",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_pipeline_100,
    },
    Case {
        name: "http1-percent-encoded",
        class: "http1",
        trick: "GET /%61dmin (percent-encoded unreserved character)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_percent_encoded,
    },
    Case {
        name: "http1-dot-segments",
        class: "http1",
        trick: "GET /x/../admin (dot segments)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_dot_segments,
    },
    Case {
        name: "http1-double-slash",
        class: "http1",
        trick: "GET //admin (repeated slashes; nginx merges them)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_double_slash,
    },
    Case {
        name: "http1-absolute-uri",
        class: "http1",
        trick: "GET http://web.test/admin (absolute-form target, which servers must accept)",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: http1_absolute_uri,
    },
    Case {
        name: "http1-absolute-host-mismatch",
        class: "http1",
        trick: "GET http://internal.test/ with Host: web.test (the server routes on the target's authority, a Host-only rule would see web.test)",
        deny: &[Rule("deny-internal-host"), Blind("ambiguous_framing")],
        allow: &[Blind("ambiguous_framing")],
        absent: None,
        build: http1_absolute_host_mismatch,
    },
    Case {
        name: "http1-connect-host-mismatch",
        class: "http1",
        trick: "CONNECT internal.test:80 with Host: web.test (a proxy connects to the target, a Host-only rule would see web.test)",
        deny: &[Rule("deny-internal-host"), Blind("ambiguous_framing")],
        allow: &[Blind("ambiguous_framing")],
        absent: None,
        build: http1_connect_host_mismatch,
    },
    Case {
        name: "http1-cl-te",
        class: "http1",
        trick: "POST with Content-Length and Transfer-Encoding: chunked; the chunked body ends at once and smuggles GET /admin, which Content-Length hides",
        deny: &[Blind("ambiguous_framing"), Rule("deny-admin")],
        allow: &[Blind("ambiguous_framing")],
        absent: None,
        build: http1_cl_te,
    },
    Case {
        name: "http1-conflicting-cl",
        class: "http1",
        trick: "POST with Content-Length: 0 and a second Content-Length covering a smuggled GET /admin (the server refuses with 400)",
        deny: &[
            Blind("ambiguous_framing"),
            Blind("parser_invalid"),
            Rule("deny-admin"),
        ],
        allow: &[Blind("ambiguous_framing"), Blind("parser_invalid")],
        absent: None,
        build: http1_conflicting_cl,
    },
    // HTTP/2.
    Case {
        name: "http2-continuation-100",
        class: "http2",
        trick: "h2 prior knowledge: the header block with :path /admin split over HEADERS and 100 CONTINUATION frames",
        deny: &[Rule("deny-h2-admin")],
        allow: GET_ADMIN,
        absent: None,
        build: http2_continuation_100,
    },
    Case {
        name: "http2-h2c-upgrade",
        class: "http2",
        trick: "GET / with Upgrade: h2c, 101, then GET /admin on stream 3",
        deny: &[Rule("deny-h2-admin")],
        allow: GET_ADMIN,
        absent: None,
        build: http2_h2c_upgrade,
    },
    // SQL.
    Case {
        name: "sql-pg-long-comment",
        class: "sql",
        trick: "PostgreSQL simple Query: a 40 KB comment, then DROP TABLE t",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_pg_long_comment,
    },
    Case {
        name: "sql-pg-1000-selects",
        class: "sql",
        trick: "one PostgreSQL Query: 1,000 SELECT 1; then DROP TABLE t (past any statement limit: judged, or fail closed)",
        deny: &[Rule("deny-pg-drop"), Blind("parser_limit")],
        allow: &[Facts(DROP_T), Blind("parser_limit")],
        absent: None,
        build: sql_pg_1000_selects,
    },
    Case {
        name: "sql-pg-string-literal",
        class: "sql",
        trick: "SELECT 'it''s; DROP TABLE x' AS note; DROP TABLE t (a literal holding a fake statement, then a real one)",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: Some(Fact::Sql("DROP", "x")),
        build: sql_pg_string_literal,
    },
    Case {
        name: "sql-pg-dollar-quote",
        class: "sql",
        trick: "SELECT $q$'$q$ AS a; DROP TABLE t; -- ' (a quote inside a dollar-quoted string; a lexer without dollar quotes sees one string to the end)",
        deny: &[Rule("deny-pg-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_pg_dollar_quote,
    },
    Case {
        name: "sql-mysql-long-comment",
        class: "sql",
        trick: "MySQL COM_QUERY: a 40 KB comment, then DROP TABLE t",
        deny: &[Rule("deny-mysql-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_mysql_long_comment,
    },
    Case {
        name: "sql-mysql-executable-comment",
        class: "sql",
        trick: "MySQL COM_QUERY /*!50000 DROP TABLE t */ (an executable comment the server runs)",
        deny: &[Rule("deny-mysql-drop")],
        allow: &[Facts(DROP_T)],
        absent: None,
        build: sql_mysql_executable_comment,
    },
    // Redis.
    Case {
        name: "redis-pipeline-10000-ping",
        class: "redis",
        trick: "10,000 pipelined PINGs, then FLUSHALL (the server answers as they arrive)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_pipeline_10000_ping,
    },
    Case {
        name: "redis-big-set-value",
        class: "redis",
        trick: "SET with a 1 MiB value, then FLUSHALL",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_big_set_value,
    },
    Case {
        name: "redis-inline-hex-escape",
        class: "redis",
        trick: "inline command \"\\x46LUSHALL\" (sdssplitargs decodes \\xHH inside double quotes: FLUSHALL)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_inline_hex_escape,
    },
    Case {
        name: "redis-inline-key-escape",
        class: "redis",
        trick: "inline GET \"\\x73ecret:1\" (the key is secret:1 once unescaped)",
        deny: &[Rule("deny-redis-secret")],
        allow: &[Facts(Fact::Redis("GET", Some("secret:1")))],
        absent: None,
        build: redis_inline_key_escape,
    },
    Case {
        name: "redis-lowercase",
        class: "redis",
        trick: "flushall in lower case (commands are case-insensitive)",
        deny: &[Rule("deny-redis-cmd")],
        allow: &[Facts(FLUSHALL)],
        absent: None,
        build: redis_lowercase,
    },
    // TCP normalisation.
    Case {
        name: "tcp-bad-checksum-decoy",
        class: "tcp",
        trick: "a decoy GET /index with a bad TCP checksum at the sequence numbers of the real GET /admin, decoy first (receivers drop it)",
        deny: &[Rule("deny-admin"), Blind("overlap_mismatch")],
        allow: &[Facts(ADMIN), Blind("overlap_mismatch")],
        absent: Some(Fact::Http("GET", "/index")),
        build: tcp_bad_checksum_decoy,
    },
    Case {
        name: "tcp-no-ack-decoy",
        class: "tcp",
        trick: "a decoy GET /index without the ACK flag on the established flow at the sequence numbers of the real GET /admin, decoy first (Linux and BSD drop it)",
        deny: &[Rule("deny-admin"), Blind("overlap_mismatch")],
        allow: &[Facts(ADMIN), Blind("overlap_mismatch")],
        absent: Some(Fact::Http("GET", "/index")),
        build: tcp_no_ack_decoy,
    },
    Case {
        name: "tcp-second-syn",
        class: "tcp",
        trick: "after the handshake a SYN with a new ISN (the server sends a challenge ACK), then GET /admin at the original sequence numbers",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: tcp_second_syn,
    },
    Case {
        name: "tcp-synack-first",
        class: "tcp",
        trick: "a SYN-ACK from the client's address and port first (the server resets it), so the flow's direction may be guessed wrong; then the real handshake and GET /admin",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: tcp_synack_first,
    },
    Case {
        name: "tcp-overlap-ooo",
        class: "tcp",
        trick: "GET /adm in order, then two held out-of-order copies of the rest that disagree (x... first, n... second), then the missing byte: /admix or /admin",
        deny: &[Blind("overlap_mismatch"), Rule("deny-admin")],
        allow: &[Blind("overlap_mismatch")],
        absent: None,
        build: tcp_overlap_ooo,
    },
    Case {
        name: "tcp-retransmit-different",
        class: "tcp",
        trick: "GET /aaaaa in order, unacknowledged, then a retransmission of the same range carrying GET /admin, which the server answers",
        deny: &[
            Blind("overlap_mismatch"),
            Blind("unverified_retransmission"),
            Rule("deny-admin"),
        ],
        allow: &[
            Blind("overlap_mismatch"),
            Blind("unverified_retransmission"),
        ],
        absent: None,
        build: tcp_retransmit_different,
    },
    Case {
        name: "tcp-rst-out-of-window",
        class: "tcp",
        trick: "a RST far outside the receive window (the server ignores it), then GET /admin",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: tcp_rst_out_of_window,
    },
    Case {
        name: "tcp-midstream",
        class: "tcp",
        trick: "the capture starts mid-connection (no handshake) with GET /admin",
        deny: &[Rule("deny-admin"), Blind("midstream")],
        allow: &[Facts(ADMIN), Blind("midstream")],
        absent: None,
        build: tcp_midstream,
    },
    Case {
        name: "tcp-gap",
        class: "tcp",
        trick: "the middle segment of GET /admin (\"min HTTP/1.1\\r\\n\") is missing from the capture; the server acknowledges it",
        deny: &[Blind("gap")],
        allow: &[Blind("gap")],
        absent: None,
        build: tcp_gap,
    },
    // IP.
    Case {
        name: "ip-frag-40",
        class: "ip",
        trick: "the segment carrying GET /admin in 40 IPv4 fragments of 8 bytes, in order",
        deny: DENY_ADMIN,
        allow: GET_ADMIN,
        absent: None,
        build: ip_frag_40,
    },
    Case {
        name: "ip-frag-overlap",
        class: "ip",
        trick: "IPv4 fragments of GET /admin where two copies of bytes 24-31 disagree (/Wdmix H first, /admin H second, both checksum-valid); the receiver discards the whole datagram (Linux, RFC 5722), so its fragments are dropped and the request's bytes never arrive: a gap",
        deny: &[Blind("overlap_mismatch"), Blind("gap"), Rule("deny-admin")],
        allow: &[Blind("overlap_mismatch"), Blind("gap")],
        absent: None,
        build: ip_frag_overlap,
    },
    // TLS.
    Case {
        name: "tls-sni-split-records",
        class: "tls",
        trick: "the ClientHello split over two TLS records, the cut inside the server name (x.ev | il.test)",
        deny: &[Rule("deny-evil-sni")],
        allow: &[Facts(EVIL)],
        absent: None,
        build: tls_sni_split_records,
    },
    Case {
        name: "tls-one-byte-segments",
        class: "tls",
        trick: "the ClientHello record sent one byte per TCP segment",
        deny: &[Rule("deny-evil-sni")],
        allow: &[Facts(EVIL)],
        absent: None,
        build: tls_one_byte_segments,
    },
];
