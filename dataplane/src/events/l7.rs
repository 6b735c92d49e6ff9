//! The L7 objects of events, exactly as PRODUCT.md names them: `http`, `grpc` (beside its
//! `http`), `postgres`/`mysql`, `redis`, `dns`, `tls`. Built from a parser's borrowed facts
//! only when an event will be written (an alert, or `--log-all`), then completed by the
//! response.

use proto_parsers::facts::{
    RequestDetail, ResponseDetail, SqlDialect, SqlKind, SqlVerb, dns_qtype_name, dns_rcode_name,
    tls_version_name,
};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Longest string copied into an event from the wire (paths, queries, names).
pub const FIELD_CAP: usize = 1024;

fn text(b: &[u8]) -> String {
    let b = b.get(..FIELD_CAP.min(b.len())).unwrap_or_default();
    String::from_utf8_lossy(b).into_owned()
}

fn opt(b: Option<&[u8]>) -> Option<String> {
    b.map(text)
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HttpObj {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub status: Option<u32>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GrpcObj {
    pub service: String,
    pub method: String,
    pub status: Option<u32>,
}

/// `postgres` / `mysql`. A login is verb `LOGIN`; a failed login or statement has `error`
/// (the server's message) with `sqlstate` (PostgreSQL's SQLSTATE, MySQL's `#xxxxx` state
/// without the `#`) and, for MySQL, `error_code` (the server's error number, a number).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SqlObj {
    pub user: Option<String>,
    pub database: Option<String>,
    pub verb: String,
    pub tables: Vec<String>,
    pub query: Option<String>,
    pub error: Option<String>,
    pub sqlstate: Option<String>,
    pub error_code: Option<u32>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RedisObj {
    pub command: String,
    pub key: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DnsObj {
    pub qname: String,
    pub qtype: String,
    pub rcode: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TlsObj {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub version: Option<String>,
}

/// One transaction's L7 object(s), ready to print.
#[derive(Clone, Debug, PartialEq)]
pub enum L7Record {
    Http(HttpObj),
    Grpc(HttpObj, GrpcObj),
    Sql(SqlDialect, SqlObj),
    Redis(RedisObj),
    Dns(DnsObj),
    Tls(TlsObj),
}

fn verb_name(v: &SqlVerb<'_>) -> String {
    match v {
        SqlVerb::Other(s) => (*s).to_string(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

fn http_obj(h: &proto_parsers::facts::HttpRequest<'_>) -> HttpObj {
    HttpObj {
        method: text(h.method),
        path: text(h.path),
        host: opt(h.authority),
        status: None,
        user_agent: opt(h.user_agent),
        content_type: opt(h.content_type),
    }
}

impl L7Record {
    /// The record for a request; `None` for requests without a typed form.
    pub fn from_request(d: &RequestDetail<'_>) -> Option<Self> {
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
                L7Record::Sql(
                    q.dialect,
                    SqlObj {
                        user: opt(q.user),
                        database: opt(q.database),
                        verb,
                        tables,
                        query: (!q.text.is_empty()).then(|| text(q.text)),
                        error: None,
                        sqlstate: None,
                        error_code: None,
                    },
                )
            }
            RequestDetail::Redis(r) => L7Record::Redis(RedisObj {
                command: text(r.command).to_ascii_uppercase(),
                key: opt(r.key),
                error: None,
            }),
            RequestDetail::Dns(q) => L7Record::Dns(DnsObj {
                qname: q.qname.to_string(),
                qtype: dns_qtype_name(q.qtype)
                    .map_or_else(|| format!("TYPE{}", q.qtype), str::to_string),
                rcode: None,
            }),
            RequestDetail::Tls(t) => L7Record::Tls(TlsObj {
                sni: opt(t.sni),
                alpn: t.alpn.iter().map(|a| text(a)).collect(),
                version: tls_version_name(t.version).map(str::to_string),
            }),
        })
    }

    /// Completes the record with its response.
    pub fn apply_response(&mut self, status: Option<u32>, d: &ResponseDetail<'_>) {
        match (self, d) {
            (L7Record::Http(h), ResponseDetail::Http(r)) => {
                h.status = Some(u32::from(r.status));
            }
            (L7Record::Grpc(h, g), ResponseDetail::Grpc(r)) => {
                h.status = Some(u32::from(r.http_status));
                g.status = r.grpc_status;
            }
            (L7Record::Grpc(h, _), ResponseDetail::Http(r)) => {
                h.status = Some(u32::from(r.status));
            }
            (L7Record::Sql(_, q), ResponseDetail::Sql(r)) => {
                q.error = r.error.map(text);
                // Only an error has a state and a number worth printing (MySQL's OK has
                // neither; a successful PostgreSQL command has no SQLSTATE).
                let failed = r.error.is_some();
                q.sqlstate = r.sqlstate.filter(|_| failed).map(text);
                q.error_code = r.code.filter(|_| failed);
            }
            (L7Record::Redis(x), ResponseDetail::Redis(r)) => {
                x.error = r.error.map(text);
            }
            (L7Record::Dns(x), ResponseDetail::Dns(a)) => {
                x.rcode = Some(
                    dns_rcode_name(a.rcode)
                        .map_or_else(|| format!("RCODE{}", a.rcode), str::to_string),
                );
            }
            (L7Record::Tls(t), ResponseDetail::Tls(s)) => {
                if let Some(v) = tls_version_name(s.version) {
                    t.version = Some(v.to_string());
                }
            }
            (L7Record::Http(h), _) => h.status = status,
            _ => {}
        }
    }
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
            L7Record::Sql(SqlDialect::Postgres, q) => m.serialize_entry("postgres", q)?,
            L7Record::Sql(SqlDialect::Mysql, q) => m.serialize_entry("mysql", q)?,
            L7Record::Redis(r) => m.serialize_entry("redis", r)?,
            L7Record::Dns(d) => m.serialize_entry("dns", d)?,
            L7Record::Tls(t) => m.serialize_entry("tls", t)?,
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
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
        L7Record::from_request(&d).unwrap_or(L7Record::Http(HttpObj::default()))
    }

    fn sql(r: &L7Record) -> &SqlObj {
        match r {
            L7Record::Sql(_, q) => q,
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
        assert_eq!(json["mysql"]["sqlstate"], "28000");
        assert_eq!(json["mysql"]["error_code"], 1045);

        let mut r = login(SqlDialect::Postgres);
        let err = ResponseDetail::Sql(SqlResponse {
            sqlstate: Some(b"28P01"),
            code: None,
            error: Some(b"password authentication failed"),
        });
        r.apply_response(None, &err);
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["postgres"]["sqlstate"], "28P01");
        assert!(json["postgres"]["error_code"].is_null());

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
            assert!(json["postgres"][f].is_null(), "{f}: {json}");
        }
    }
}
