//! Which parser a detected protocol gets, and the parser of one flow: driven through the
//! sinks that notice the HTTP/1 parser handing the connection over.

use std::sync::Arc;

use proto_parsers::contract::{FactSink, Invalid, StreamParser};
use proto_parsers::detect;
use proto_parsers::driver::drive;
use proto_parsers::http1::{Http1Parser, Switch};
use proto_parsers::{AppProto, Direction};

use super::ParserFactory;
use super::handover::{Handover, Shift, Watch};

/// How the registry makes one protocol's parser.
#[derive(Clone)]
enum Maker {
    /// The built-in HTTP/1 parser, made as its concrete type so that the inspector can ask
    /// it whether the connection switched to HTTP/2 (`h2c`).
    Http1,
    Factory(ParserFactory),
}

/// Makes a parser for a detected protocol. Parsers register here as their issues land.
/// Cloned into each worker; the factories are shared.
#[derive(Clone)]
pub struct ParserRegistry {
    factories: Vec<(AppProto, Maker)>,
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
        use proto_parsers::{dns, http2, mysql, postgres, redis, tls};
        let mut r = Self::empty();
        r.set(AppProto::Http, Maker::Http1);
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

    /// Makes `app`'s parsers with `make` from now on. A parser registered for `http` in
    /// place of the built-in one is not followed through an `h2c` upgrade.
    pub fn register(&mut self, app: AppProto, make: ParserFactory) {
        self.set(app, Maker::Factory(make));
    }

    fn set(&mut self, app: AppProto, make: Maker) {
        self.factories.retain(|(a, _)| *a != app);
        self.factories.push((app, make));
    }

    pub fn make(
        &self,
        app: AppProto,
        transport: detect::Transport,
    ) -> Option<Box<dyn StreamParser>> {
        self.make_parser(app, transport).map(Parser::into_dyn)
    }

    pub(super) fn make_parser(
        &self,
        app: AppProto,
        transport: detect::Transport,
    ) -> Option<Parser> {
        self.factories
            .iter()
            .find(|(a, _)| *a == app)
            .map(|(_, m)| match m {
                Maker::Http1 => Parser::Http1 {
                    parser: Box::default(),
                    next_tx: 0,
                },
                Maker::Factory(f) => Parser::Dyn(f(transport)),
            })
    }
}

/// The parser of one flow.
pub(super) enum Parser {
    /// The built-in HTTP/1 parser, which may hand the connection over to HTTP/2.
    Http1 {
        parser: Box<Http1Parser>,
        /// The id its next request will get (ids count from 0 per flow).
        next_tx: u32,
    },
    Dyn(Box<dyn StreamParser>),
}

impl Parser {
    pub(super) fn as_dyn(&mut self) -> &mut dyn StreamParser {
        match self {
            Parser::Http1 { parser, .. } => parser.as_mut(),
            Parser::Dyn(p) => p.as_mut(),
        }
    }

    fn into_dyn(self) -> Box<dyn StreamParser> {
        match self {
            Parser::Http1 { parser, .. } => parser,
            Parser::Dyn(p) => p,
        }
    }

    /// Feeds `data` until the parser needs more: how much it consumed in all, and the
    /// hand-over the HTTP/1 parser made on the way, if any. The parser's transaction ids
    /// are reported `base` higher (the parser of a tunnelled connection counts from 0).
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
        let (parser, next_tx) = match self {
            Parser::Dyn(p) => return drive(p.as_mut(), dir, data, sink).map(|n| (n, None)),
            Parser::Http1 { parser, next_tx } => (parser, next_tx),
        };
        let mut watch = Watch {
            inner: sink,
            next_tx: *next_tx,
            held: None,
        };
        let r = drive(parser.as_mut(), dir, data, &mut watch);
        *next_tx = watch.next_tx;
        let held = watch.held.take();
        match parser.switched() {
            Some(Switch::H2c) => {
                // A `101` with no request waiting (reported as unsolicited): stream 1 gets
                // the next free id, so it cannot be paired with an earlier request.
                let tx = held.as_ref().map_or(*next_tx, |h| h.id);
                if let Some(h) = held {
                    // The request's final response will come from HTTP/2 stream 1.
                    h.deliver_interim(sink);
                }
                r.map(|n| (n, Some(Handover::H2c(tx))))
            }
            Some(Switch::Connect) => r.map(|n| (n, Some(Handover::Connect(*next_tx)))),
            None => {
                if let Some(h) = held {
                    h.deliver(sink);
                }
                r.map(|n| (n, None))
            }
        }
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
