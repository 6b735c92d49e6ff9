//! The MySQL parser on arbitrary bytes in both directions, cut at arbitrary points, driven
//! as the data plane drives it (see `palisade_fuzz` for the input layout and what is
//! checked); and the SQL classifier on the same bytes in the MySQL dialect, whole and
//! streamed in pieces, which must classify alike. Never panics, never consumes more than it
//! was given.
//!
//! The compressed protocol: with flags bit 1 the parser is first taken through the recorded
//! `mariadb --compress` login, so that every record is read by the compression layer (raw
//! bytes: headers, zlib streams, stored packets of the fuzzer's making); with bit 2 as well,
//! the target deflates each record into one compressed packet, so that the packets inside
//! reach the packet parser through valid zlib streams.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_parsers::Direction;
use proto_parsers::contract::StreamParser;
use proto_parsers::facts::{SqlDialect, SqlStatement};
use proto_parsers::mysql::MysqlParser;
use proto_parsers::sql::{Batch, Classifier};

/// Greeting, handshake response with CLIENT_COMPRESS, OK: the first records of the
/// recorded session (proto-parsers' fixture layout: direction byte, u32 big-endian length).
fn compressed_login() -> Vec<(Direction, &'static [u8])> {
    let mut bin: &[u8] = include_bytes!("../../proto-parsers/src/mysql/testdata/my-compress.bin");
    let mut recs = Vec::new();
    while recs.len() < 3 && bin.len() >= 5 {
        let dir = if bin[0] == b'C' {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let n = u32::from_be_bytes([bin[1], bin[2], bin[3], bin[4]]) as usize;
        recs.push((dir, &bin[5..5 + n]));
        bin = &bin[5 + n..];
    }
    recs
}

fn make(flags: u8) -> Box<dyn StreamParser> {
    let mut p = MysqlParser::default();
    if flags & 2 != 0 {
        for (dir, bytes) in compressed_login() {
            let _ = p.feed(dir, bytes, &mut palisade_fuzz::Check);
        }
    }
    Box::new(p)
}

/// The input with each record's bytes deflated into one compressed packet (records whose
/// packet would not fit the 16-bit record length stay as they are).
fn deflate_records(data: &[u8]) -> Vec<u8> {
    let mut out = data[..2].to_vec();
    let mut rest = &data[2..];
    while rest.len() >= 3 {
        let (head, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        if head & 2 != 0 {
            // A gap: no bytes follow.
            out.extend_from_slice(&rest[..3]);
            rest = &rest[3..];
            continue;
        }
        let end = (3 + len).min(rest.len());
        let payload = &rest[3..end];
        rest = &rest[end..];
        let z = miniz_oxide::deflate::compress_to_vec_zlib(payload, 1);
        let n = z.len();
        let mut packet = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, 0];
        packet.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        packet.extend_from_slice(&z);
        let record = if packet.len() <= usize::from(u16::MAX) {
            &packet[..]
        } else {
            payload
        };
        out.push(head);
        out.extend_from_slice(&(record.len() as u16).to_be_bytes());
        out.extend_from_slice(record);
    }
    out
}

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
    if data.get(1).is_some_and(|f| f & 6 == 6) {
        palisade_fuzz::run_split_feeds(&deflate_records(data), make);
    } else {
        palisade_fuzz::run_split_feeds(data, make);
    }
});
