//! Pure streaming parsers for the application protocols Palisade inspects.
//!
//! Layer: below `control` and `dataplane`. No I/O, no threads, no policy. Every parser
//! takes bytes of one direction of one flow as they arrive and never panics on hostile
//! input.
#![forbid(unsafe_code)]

pub mod contract;
pub mod detect;
pub mod driver;
pub mod facts;
pub mod pending;

pub mod dns;
pub mod grpc;
pub mod http;
pub mod http1;
pub mod http2;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod sql;
pub mod tls;

/// Application protocol of a flow, as detected from its bytes (never from the port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppProto {
    Http,
    Http2,
    Grpc,
    Postgres,
    Mysql,
    Redis,
    Dns,
    Tls,
    /// TCP payload that no detector recognised.
    Tcp,
    /// UDP payload that no detector recognised.
    Udp,
}

impl AppProto {
    /// The name used in policies and events (`app_proto`).
    pub const fn as_str(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Http2 => "http2",
            AppProto::Grpc => "grpc",
            AppProto::Postgres => "postgres",
            AppProto::Mysql => "mysql",
            AppProto::Redis => "redis",
            AppProto::Dns => "dns",
            AppProto::Tls => "tls",
            AppProto::Tcp => "tcp",
            AppProto::Udp => "udp",
        }
    }

    /// Parses the policy/event name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "http" => AppProto::Http,
            "http2" => AppProto::Http2,
            "grpc" => AppProto::Grpc,
            "postgres" => AppProto::Postgres,
            "mysql" => AppProto::Mysql,
            "redis" => AppProto::Redis,
            "dns" => AppProto::Dns,
            "tls" => AppProto::Tls,
            "tcp" => AppProto::Tcp,
            "udp" => AppProto::Udp,
            _ => return None,
        })
    }
}

/// Direction of bytes within a flow, relative to the side that opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}
