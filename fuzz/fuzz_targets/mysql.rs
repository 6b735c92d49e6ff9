//! The MySQL parser on arbitrary bytes in both directions, cut at arbitrary points, driven
//! as the data plane drives it (see `palisade_fuzz` for the input layout and what is
//! checked); and the SQL classifier on the same bytes in the MySQL dialect, whole and
//! streamed in pieces, which must classify alike. Never panics, never consumes more than it
//! was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::facts::{SqlDialect, SqlStatement};
use proto_parsers::mysql::MysqlParser;
use proto_parsers::sql::{Batch, Classifier};

fn render(st: &[SqlStatement<'_>]) -> Vec<String> {
    st.iter()
        .map(|s| format!("{:?} {:?} {:?}", s.verb, s.tables, s.text))
        .collect()
}

/// Streamed in pieces of a size the input chooses, the text classifies as it does whole.
fn streamed_as_whole(d: SqlDialect, data: &[u8]) {
    let mut c = Classifier::new();
    let whole = c.classify(d, data, render);
    let capped = c.overflow().statements;
    let step = usize::from(data.first().copied().unwrap_or(0)) + 1;
    let mut streamed = Vec::new();
    let mut collect = |b: &Batch<'_>| {
        assert!(b.text.len() <= proto_parsers::sql::TEXT_MAX);
        streamed.extend(render(b.statements));
    };
    c.begin(d);
    for piece in data.chunks(step) {
        c.feed(piece, &mut collect);
    }
    c.finish(&mut collect);
    if !capped {
        assert_eq!(whole, streamed);
    }
}

fuzz_target!(|data: &[u8]| {
    streamed_as_whole(SqlDialect::Mysql, data);
    palisade_fuzz::run_split_feeds(data, |_| Box::new(MysqlParser::default()));
});
