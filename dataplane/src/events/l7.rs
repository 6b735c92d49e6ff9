//! The protocol objects of events, in Suricata's shape where Suricata has one (`http`,
//! `dns`, `tls`, `pgsql`) and Palisade's own where it has none (`grpc` beside gRPC's `http`,
//! `sql` on every PostgreSQL and MySQL record, `redis`, `tls_alpn`). Built from a parser's
//! borrowed facts only when an event will be written (an alert, or `--log-all`), then
//! completed by the response. Absent values are left out, as Suricata does.

use proto_parsers::facts::{
    HttpVersion, RequestDetail, ResponseDetail, SqlDialect, SqlKind, SqlVerb, dns_qtype_name,
    dns_rcode_name, tls_version_name,
};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Longest string copied into an event from the wire (paths, queries, names).
pub const FIELD_CAP: usize = 1024;

fn text(b: &[u8]) -> String {
    let b = b.get(..FIELD_CAP.min(b.len())).unwrap_or_default();
    String::from_utf8_lossy(b).into_owned()
}

/// An SQL text as the parser kept it for logging (its first `sql::TEXT_MAX` bytes), and
/// whether that may be only the start of it.
fn sql_text(b: &[u8]) -> (String, bool) {
    let max = proto_parsers::sql::TEXT_MAX;
    let kept = b.get(..max.min(b.len())).unwrap_or_default();
    (String::from_utf8_lossy(kept).into_owned(), b.len() >= max)
}

fn opt(b: Option<&[u8]>) -> Option<String> {
    b.map(text)
}

/// Suricata's `http` object.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HttpObj {
    /// The host the request was for, lower-case, without its port (as Suricata logs it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The port of the request's authority, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    /// As sent, query included.
    pub url: String,
    pub http_method: String,
    /// `HTTP/1.0`, `HTTP/1.1` (HTTP/2 has `version` instead, as Suricata logs it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    /// `2` for HTTP/2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    /// The response's `Content-Type` without parameters, as Suricata logs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
}

/// Palisade's `grpc` object, beside the call's `http`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GrpcObj {
    pub service: String,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
}

/// Palisade's `sql` object, on every `pgsql` and `mysql` record (one per statement). A
/// login is verb `LOGIN`; a failed login or statement has `error` (the server's message)
/// with `sqlstate` (PostgreSQL's SQLSTATE, MySQL's `#xxxxx` state without the `#`) and,
/// for MySQL, `error_code` (the server's error number).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SqlObj {
    pub verb: String,
    pub tables: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The statement's text, its first `sql::TEXT_MAX` bytes (classification read it all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `query` holds only the start of a longer text (as Suricata's `rrname_truncated`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub query_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
}

/// Suricata's `pgsql` object: the request as sent (a simple query, a login's startup
/// parameters) and, for a failed one, the error response.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PgsqlObj {
    pub tx_id: u64,
    pub request: PgRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<PgResponse>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PgRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simple_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_parameters: Option<PgStartup>,
    /// What else the request was (Suricata's `message`): `parse`, `execute`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PgStartup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub optional_parameters: Vec<PgParam>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PgParam {
    pub database: String,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PgResponse {
    pub severity_localizable: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Palisade's `redis` object.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RedisObj {
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Suricata's `dns` object (version 2 records): a query, or, once the response is seen,
/// the answer to it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DnsObj {
    pub version: u32,
    /// `query`, or `answer` once the response was seen.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: u16,
    pub rrname: String,
    pub rrtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
}

/// Suricata's `tls` object.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TlsObj {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The negotiated version: `TLS 1.3`, `TLS 1.2`, ... (Suricata's spelling), or
    /// `UNDETERMINED` without a ServerHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One transaction's protocol object(s), ready to print.
#[derive(Clone, Debug, PartialEq)]
pub enum L7Record {
    Http(HttpObj),
    Grpc(HttpObj, GrpcObj),
    Pgsql(PgsqlObj, SqlObj),
    Mysql(SqlObj),
    Redis(RedisObj),
    Dns(DnsObj),
    /// With the offered ALPN protocols (Palisade's `tls_alpn`).
    Tls(TlsObj, Vec<String>),
}

fn verb_name(v: &SqlVerb<'_>) -> String {
    match v {
        SqlVerb::Other(s) => (*s).to_string(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

/// A `Content-Type` cut at its first `;` and trimmed (`text/html; charset=utf-8` ->
/// `text/html`), as Suricata logs it.
fn media_type(ct: &[u8]) -> String {
    let end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
    text(ct.get(..end).unwrap_or_default().trim_ascii())
}

/// The port of an authority (`host:8080`, `[::1]:8443`), if it names a valid one.
fn authority_port(a: &[u8]) -> Option<u16> {
    let after_host = match a.iter().rposition(|&b| b == b']') {
        Some(end) => a.get(end + 1..)?,
        None => a,
    };
    let colon = after_host.iter().rposition(|&b| b == b':')?;
    std::str::from_utf8(after_host.get(colon + 1..)?)
        .ok()?
        .parse()
        .ok()
}

fn http_obj(h: &proto_parsers::facts::HttpRequest<'_>) -> HttpObj {
    let (protocol, version) = match h.version {
        HttpVersion::Http10 => (Some("HTTP/1.0"), None),
        HttpVersion::Http11 => (Some("HTTP/1.1"), None),
        HttpVersion::Http2 => (None, Some("2")),
    };
    let (hostname, http_port) = match h.authority {
        Some(a) => {
            let host = proto_parsers::http::authority_host(a);
            (Some(text(host).to_ascii_lowercase()), authority_port(a))
        }
        None => (None, None),
    };
    HttpObj {
        hostname,
        http_port,
        url: text(h.path),
        http_method: text(h.method),
        protocol,
        version,
        status: None,
        http_user_agent: opt(h.user_agent),
        http_content_type: None,
    }
}

/// Suricata's TLS version names (its `SSLVersionToString`: `TLS 1.3`, but `TLSv1` for
/// 1.0), for the wire value.
fn tls_version(v: u16) -> Option<String> {
    let name = match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => return tls_version_name(v).map(str::to_string),
    };
    Some(name.to_string())
}

impl L7Record {
    /// The record for a request (`id`: its transaction id); `None` for requests without a
    /// typed form.
    pub fn from_request(d: &RequestDetail<'_>, id: u32) -> Option<Self> {
        Some(match d {
            RequestDetail::None => return None,
            RequestDetail::Http(h) => L7Record::Http(http_obj(h)),
            RequestDetail::Grpc(g) => L7Record::Grpc(
                http_obj(&g.http),
                GrpcObj {
                    service: text(g.service),
                    method: text(g.method),
                    status: None,
                },
            ),
            RequestDetail::Sql(q) => {
                let (verb, tables) = match q.kind {
                    SqlKind::Login => ("LOGIN".to_string(), Vec::new()),
                    SqlKind::UseDatabase => ("USE".to_string(), Vec::new()),
                    _ => {
                        // The worker gives each statement its own record (PRODUCT.md: one
                        // event per statement); should a request with several arrive here,
                        // the verbs are joined in order and the tables united, so nothing a
                        // statement did is hidden.
                        let mut verbs: Vec<String> = Vec::new();
                        let mut tables: Vec<String> = Vec::new();
                        for st in q.statements {
                            verbs.push(verb_name(&st.verb));
                            for t in st.tables {
                                if !tables.iter().any(|x| x == t) {
                                    tables.push((*t).to_string());
                                }
                            }
                        }
                        (verbs.join(";"), tables)
                    }
                };
                let (query, query_truncated) = sql_text(q.text);
                let sql = SqlObj {
                    verb,
                    tables,
                    user: opt(q.user),
                    database: opt(q.database),
                    query: (!q.text.is_empty()).then(|| query.clone()),
                    query_truncated,
                    error: None,
                    sqlstate: None,
                    error_code: None,
                };
                match q.dialect {
                    SqlDialect::Postgres => {
                        let request = match q.kind {
                            SqlKind::Login => PgRequest {
                                startup_parameters: Some(PgStartup {
                                    user: opt(q.user),
                                    optional_parameters: q
                                        .database
                                        .map(|d| PgParam { database: text(d) })
                                        .into_iter()
                                        .collect(),
                                }),
                                ..PgRequest::default()
                            },
                            SqlKind::Query => PgRequest {
                                simple_query: Some(query),
                                ..PgRequest::default()
                            },
                            SqlKind::Prepare => PgRequest {
                                message: Some("parse"),
                                ..PgRequest::default()
                            },
                            SqlKind::Execute => PgRequest {
                                message: Some("execute"),
                                ..PgRequest::default()
                            },
                            SqlKind::UseDatabase => PgRequest::default(),
                        };
                        L7Record::Pgsql(
                            PgsqlObj {
                                tx_id: u64::from(id),
                                request,
                                response: None,
                            },
                            sql,
                        )
                    }
                    SqlDialect::Mysql => L7Record::Mysql(sql),
                }
            }
            RequestDetail::Redis(r) => L7Record::Redis(RedisObj {
                command: text(r.command).to_ascii_uppercase(),
                key: opt(r.key),
                error: None,
            }),
            RequestDetail::Dns(q) => L7Record::Dns(DnsObj {
                version: 2,
                kind: "query",
                id: q.msg_id,
                rrname: q.qname.to_string(),
                rrtype: dns_qtype_name(q.qtype)
                    .map_or_else(|| format!("TYPE{}", q.qtype), str::to_string),
                rcode: None,
            }),
            RequestDetail::Tls(t) => L7Record::Tls(
                TlsObj {
                    sni: opt(t.sni),
                    // The negotiated version comes with the ServerHello; until then
                    // Suricata says it is undetermined.
                    version: Some("UNDETERMINED".to_string()),
                },
                t.alpn.iter().map(|a| text(a)).collect(),
            ),
        })
    }

    /// The record's `event_type`: named after its protocol object, as in Suricata.
    pub fn event_type(&self) -> &'static str {
        match self {
            L7Record::Http(_) | L7Record::Grpc(..) => "http",
            L7Record::Pgsql(..) => "pgsql",
            L7Record::Mysql(_) => "mysql",
            L7Record::Redis(_) => "redis",
            L7Record::Dns(_) => "dns",
            L7Record::Tls(..) => "tls",
        }
    }

    /// What the transaction asked, in a few words (for an alert's `signature`):
    /// `GET /admin`, `DROP orders`, `FLUSHALL`, `dns evil.example`, `tls x.evil.test`.
    pub fn summary(&self) -> String {
        match self {
            L7Record::Http(h) | L7Record::Grpc(h, _) => format!("{} {}", h.http_method, h.url),
            L7Record::Pgsql(_, q) | L7Record::Mysql(q) => {
                if q.tables.is_empty() {
                    q.verb.clone()
                } else {
                    format!("{} {}", q.verb, q.tables.join(","))
                }
            }
            L7Record::Redis(r) => match &r.key {
                Some(k) => format!("{} {k}", r.command),
                None => r.command.clone(),
            },
            L7Record::Dns(d) => format!("dns {}", d.rrname),
            L7Record::Tls(t, _) => format!("tls {}", t.sni.as_deref().unwrap_or("(no sni)")),
        }
    }

    /// Completes the record with its response.
    pub fn apply_response(&mut self, status: Option<u32>, d: &ResponseDetail<'_>) {
        match (self, d) {
            (L7Record::Http(h), ResponseDetail::Http(r)) => {
                h.status = Some(u32::from(r.status));
                h.http_content_type = r.content_type.map(media_type);
            }
            (L7Record::Grpc(h, g), ResponseDetail::Grpc(r)) => {
                h.status = Some(u32::from(r.http_status));
                g.status = r.grpc_status;
            }
            (L7Record::Grpc(h, _), ResponseDetail::Http(r)) => {
                h.status = Some(u32::from(r.status));
                h.http_content_type = r.content_type.map(media_type);
            }
            (L7Record::Pgsql(p, q), ResponseDetail::Sql(r)) => {
                apply_sql(q, r);
                if let Some(e) = &q.error {
                    p.response = Some(PgResponse {
                        severity_localizable: "ERROR",
                        code: q.sqlstate.clone(),
                        message: Some(e.clone()),
                    });
                }
            }
            (L7Record::Mysql(q), ResponseDetail::Sql(r)) => apply_sql(q, r),
            (L7Record::Redis(x), ResponseDetail::Redis(r)) => {
                x.error = r.error.map(text);
            }
            (L7Record::Dns(x), ResponseDetail::Dns(a)) => {
                x.kind = "answer";
                x.rcode = Some(
                    dns_rcode_name(a.rcode)
                        .map_or_else(|| format!("RCODE{}", a.rcode), str::to_string),
                );
            }
            (L7Record::Tls(t, _), ResponseDetail::Tls(s)) => {
                if let Some(v) = tls_version(s.version) {
                    t.version = Some(v);
                }
            }
            (L7Record::Http(h), _) => h.status = status,
            _ => {}
        }
    }
}

fn apply_sql(q: &mut SqlObj, r: &proto_parsers::facts::SqlResponse<'_>) {
    q.error = r.error.map(text);
    // Only an error has a state and a number worth printing (MySQL's OK has neither; a
    // successful PostgreSQL command has no SQLSTATE).
    let failed = r.error.is_some();
    q.sqlstate = r.sqlstate.filter(|_| failed).map(text);
    q.error_code = r.code.filter(|_| failed);
}

impl Serialize for L7Record {
    /// Serialises as the map entries to merge into the event (`"http": {...}` etc.).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            L7Record::Http(h) => m.serialize_entry("http", h)?,
            L7Record::Grpc(h, g) => {
                m.serialize_entry("http", h)?;
                m.serialize_entry("grpc", g)?;
            }
            L7Record::Pgsql(p, q) => {
                m.serialize_entry("pgsql", p)?;
                m.serialize_entry("sql", q)?;
            }
            L7Record::Mysql(q) => m.serialize_entry("sql", q)?,
            L7Record::Redis(r) => m.serialize_entry("redis", r)?,
            L7Record::Dns(d) => m.serialize_entry("dns", d)?,
            L7Record::Tls(t, alpn) => {
                m.serialize_entry("tls", t)?;
                if !alpn.is_empty() {
                    m.serialize_entry("tls_alpn", alpn)?;
                }
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn media_types_lose_their_parameters() {
        assert_eq!(media_type(b"text/html; charset=utf-8"), "text/html");
        assert_eq!(media_type(b" application/json "), "application/json");
        assert_eq!(media_type(b"application/grpc"), "application/grpc");
    }

    #[test]
    fn the_port_of_an_authority() {
        assert_eq!(authority_port(b"orders.shop:8080"), Some(8080));
        assert_eq!(authority_port(b"[fd00::1]:8443"), Some(8443));
        assert_eq!(authority_port(b"[fd00::1]"), None);
        assert_eq!(authority_port(b"orders.shop"), None);
        assert_eq!(authority_port(b"orders.shop:http"), None);
        assert_eq!(authority_port(b"orders.shop:99999"), None);
    }
    use super::*;
    use proto_parsers::facts::{SqlRequest, SqlResponse};

    fn login(dialect: SqlDialect) -> L7Record {
        let d = RequestDetail::Sql(SqlRequest {
            dialect,
            kind: SqlKind::Login,
            user: Some(b"shop"),
            database: Some(b"shop"),
            text: b"",
            statements: &[],
        });
        L7Record::from_request(&d, 0).unwrap_or(L7Record::Http(HttpObj::default()))
    }

    fn sql(r: &L7Record) -> &SqlObj {
        match r {
            L7Record::Pgsql(_, q) | L7Record::Mysql(q) => q,
            other => panic!("not SQL: {other:?}"),
        }
    }

    #[test]
    fn sql_errors_carry_their_sqlstate_and_number() {
        let mut r = login(SqlDialect::Mysql);
        let err = ResponseDetail::Sql(SqlResponse {
            sqlstate: Some(b"28000"),
            code: Some(1045),
            error: Some(b"Access denied"),
        });
        r.apply_response(Some(1045), &err);
        let q = sql(&r);
        assert_eq!(q.verb, "LOGIN");
        assert_eq!(q.error.as_deref(), Some("Access denied"));
        assert_eq!(q.sqlstate.as_deref(), Some("28000"));
        assert_eq!(q.error_code, Some(1045));
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["sql"]["sqlstate"], "28000");
        assert_eq!(json["sql"]["error_code"], 1045);

        let mut r = login(SqlDialect::Postgres);
        let err = ResponseDetail::Sql(SqlResponse {
            sqlstate: Some(b"28P01"),
            code: None,
            error: Some(b"password authentication failed"),
        });
        r.apply_response(None, &err);
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["sql"]["sqlstate"], "28P01");
        assert!(json["sql"].get("error_code").is_none());
        assert_eq!(json["pgsql"]["response"]["code"], "28P01");
        assert_eq!(
            json["pgsql"]["request"]["startup_parameters"]["user"],
            "shop"
        );

        // Success: no error, and nothing else either (a state without an error is not
        // printed).
        let mut r = login(SqlDialect::Postgres);
        let ok = ResponseDetail::Sql(SqlResponse {
            sqlstate: Some(b"00000"),
            code: None,
            error: None,
        });
        r.apply_response(None, &ok);
        let json = serde_json::to_value(&r).unwrap_or_default();
        for f in ["error", "sqlstate", "error_code"] {
            assert!(json["sql"].get(f).is_none(), "{f}: {json}");
        }
        assert!(json["pgsql"].get("response").is_none());
    }
}
