//! Which parser a detected protocol gets, and the parser of one flow: driven through the
//! sink that holds back HTTP's `101` until the parser says whether it handed the
//! connection over ([`StreamParser::handover`]).

use std::sync::Arc;

use proto_parsers::contract::{FactSink, Handover, Invalid, StreamParser};
use proto_parsers::detect;
use proto_parsers::driver::drive;
use proto_parsers::{AppProto, Direction};

use super::ParserFactory;
use super::handover::{Hold101, Shift};

/// Makes a parser for a detected protocol. Parsers register here as their issues land.
/// Cloned into each worker; the factories are shared.
#[derive(Clone)]
pub struct ParserRegistry {
    factories: Vec<(AppProto, ParserFactory)>,
}

impl Default for ParserRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ParserRegistry {
    /// An empty registry: detection only.
    pub fn empty() -> Self {
        ParserRegistry {
            factories: Vec::new(),
        }
    }

    /// Every parser this build ships. gRPC has no entry: detection says HTTP/2 and the
    /// HTTP/2 parser recognises gRPC calls per stream.
    pub fn builtin() -> Self {
        use proto_parsers::{dns, http1, http2, mysql, postgres, redis, tls};
        let mut r = Self::empty();
        r.register(
            AppProto::Http,
            Arc::new(|_| Box::new(http1::Http1Parser::default())),
        );
        r.register(
            AppProto::Http2,
            Arc::new(|_| Box::new(http2::Http2Parser::default())),
        );
        r.register(
            AppProto::Postgres,
            Arc::new(|_| Box::new(postgres::PostgresParser::default())),
        );
        r.register(
            AppProto::Mysql,
            Arc::new(|_| Box::new(mysql::MysqlParser::default())),
        );
        r.register(
            AppProto::Redis,
            Arc::new(|_| Box::new(redis::RedisParser::default())),
        );
        r.register(
            AppProto::Tls,
            Arc::new(|_| Box::new(tls::TlsParser::default())),
        );
        r.register(
            AppProto::Dns,
            Arc::new(|t| {
                Box::new(match t {
                    detect::Transport::Udp => dns::DnsParser::udp(),
                    detect::Transport::Tcp => dns::DnsParser::tcp(),
                })
            }),
        );
        r
    }

    /// Makes `app`'s parsers with `make` from now on. Any parser is followed through the
    /// hand-overs it reports ([`StreamParser::handover`]).
    pub fn register(&mut self, app: AppProto, make: ParserFactory) {
        self.factories.retain(|(a, _)| *a != app);
        self.factories.push((app, make));
    }

    pub fn make(
        &self,
        app: AppProto,
        transport: detect::Transport,
    ) -> Option<Box<dyn StreamParser>> {
        self.make_parser(app, transport).map(|p| p.0)
    }

    pub(super) fn make_parser(
        &self,
        app: AppProto,
        transport: detect::Transport,
    ) -> Option<Parser> {
        self.factories
            .iter()
            .find(|(a, _)| *a == app)
            .map(|(_, make)| Parser(make(transport)))
    }
}

/// The parser of one flow.
pub(super) struct Parser(pub(super) Box<dyn StreamParser>);

impl Parser {
    pub(super) fn as_dyn(&mut self) -> &mut dyn StreamParser {
        self.0.as_mut()
    }

    /// Feeds `data` until the parser needs more: how much it consumed in all, and the
    /// hand-over it made on the way, if any. The parser's transaction ids are reported
    /// `base` higher (the parser of a tunnelled connection counts from 0).
    pub(super) fn drive(
        &mut self,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn FactSink,
        base: u32,
    ) -> Result<(usize, Option<Handover>), Invalid> {
        let mut shifted;
        let sink: &mut dyn FactSink = if base == 0 {
            sink
        } else {
            shifted = Shift { inner: sink, base };
            &mut shifted
        };
        let parser = self.0.as_mut();
        if parser.proto() != AppProto::Http {
            return drive(parser, dir, data, sink).map(|n| (n, parser.handover()));
        }
        // HTTP's `101` is reported when the parser reads it, before it decides whether the
        // connection switched: it is held back until the parser has said.
        let mut hold = Hold101 {
            inner: sink,
            held: None,
        };
        let r = drive(parser, dir, data, &mut hold);
        let held = hold.held.take();
        let handover = parser.handover();
        if let Some(h) = held {
            match handover {
                // The request's final response will come from HTTP/2 stream 1.
                Some(Handover::Http2 { .. }) => h.deliver_interim(sink),
                _ => h.deliver(sink),
            }
        }
        r.map(|n| (n, handover))
    }

    /// Ends the parser: what is still waiting is reported unanswered, ids `base` higher.
    pub(super) fn end(&mut self, sink: &mut dyn FactSink, base: u32) {
        if base == 0 {
            self.as_dyn().end(sink);
        } else {
            self.as_dyn().end(&mut Shift { inner: sink, base });
        }
    }
}
