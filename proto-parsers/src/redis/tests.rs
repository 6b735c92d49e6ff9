use super::testkit::{
    Collect, Conv, Outcome, check_splits, run_chunks, run_wire, segments, sorted,
};
use super::*;
use crate::contract::GapOutcome;

const SESSION: &[u8] = include_bytes!("testdata/redis-0.seg");
const PIPE: &[u8] = include_bytes!("testdata/redis-1.seg");
const RESP3: &[u8] = include_bytes!("testdata/redis-2.seg");
const BIGNUM: &[u8] = include_bytes!("testdata/redis-3.seg");
const ATTRIB: &[u8] = include_bytes!("testdata/redis-4.seg");
const WRONGPASS: &[u8] = include_bytes!("testdata/redis-5.seg");

/// Runs a recorded conversation every way the contract allows and returns the wire-order
/// outcome (all runs must agree).
fn all_ways(fixture: &[u8], stride: usize) -> Outcome {
    let segs = segments(fixture);
    let split = check_splits(RedisParser::new, &segs, stride);
    let wire = run_wire(&mut RedisParser::new(), &segs);
    assert_eq!(sorted(&wire), sorted(&split));
    assert!(wire.alive && split.alive);
    assert!(wire.anomalies.is_empty(), "{:?}", wire.anomalies);
    assert!(split.anomalies.is_empty(), "{:?}", split.anomalies);
    for f in &wire.facts {
        assert!(!f.contains("s3cret"), "a password leaked: {f}");
    }
    wire
}

fn count(o: &Outcome, prefix: &str) -> usize {
    o.facts.iter().filter(|f| f.starts_with(prefix)).count()
}

#[test]
fn interactive_session_with_auth_error_flushall_config() {
    let o = all_ways(SESSION, 1);
    let want = [
        "tx 0 [COMMAND] cmd=COMMAND key=- argc=2",
        "rx 0 None [NOAUTH Authentication required.] error=NOAUTH Authentication required.",
        "tx 1 [COMMAND] cmd=COMMAND key=- argc=1",
        "rx 1 None [NOAUTH Authentication required.] error=NOAUTH Authentication required.",
        "tx 2 [AUTH] cmd=AUTH key=- argc=2",
        "rx 2 None [] error=-",
        "tx 3 [SET greeting] cmd=SET key=greeting argc=3",
        "rx 3 None [] error=-",
        "tx 4 [GET greeting] cmd=GET key=greeting argc=2",
        "rx 4 None [] error=-",
        "tx 5 [INCR greeting] cmd=INCR key=greeting argc=2",
        "rx 5 None [ERR value is not an integer or out of range] error=ERR value is not an integer or out of range",
        "tx 6 [DEL nothing] cmd=DEL key=nothing argc=2",
        "rx 6 None [] error=-",
        "tx 7 [MGET greeting] cmd=MGET key=greeting argc=3",
        "rx 7 None [] error=-",
        "tx 8 [EXPIRE greeting] cmd=EXPIRE key=greeting argc=3",
        "rx 8 None [] error=-",
        "tx 9 [HSET user:1] cmd=HSET key=user:1 argc=6",
        "rx 9 None [] error=-",
        "tx 10 [HGET user:1] cmd=HGET key=user:1 argc=3",
        "rx 10 None [] error=-",
        "tx 11 [LPUSH q] cmd=LPUSH key=q argc=5",
        "rx 11 None [] error=-",
        "tx 12 [LRANGE q] cmd=LRANGE key=q argc=4",
        "rx 12 None [] error=-",
        "tx 13 [CONFIG] cmd=CONFIG key=- argc=3",
        "rx 13 None [] error=-",
        "tx 14 [FLUSHALL] cmd=FLUSHALL key=- argc=1",
        "rx 14 None [] error=-",
        "tx 15 [PING] cmd=PING key=- argc=1",
        "rx 15 None [] error=-",
    ];
    assert_eq!(o.facts, want);
}

#[test]
fn mass_insert_pipe_with_inline_commands_and_a_200k_value() {
    let o = all_ways(PIPE, 257);
    assert_eq!(count(&o, "tx "), 66);
    assert_eq!(count(&o, "rx "), 66);
    assert_eq!(count(&o, "unanswered"), 0);
    assert!(
        o.facts
            .contains(&"tx 41 [SET big] cmd=SET key=big argc=3".to_string())
    );
    // Inline commands, as sent without RESP framing.
    assert!(
        o.facts
            .contains(&"tx 42 [GET key:1] cmd=GET key=key:1 argc=2".to_string())
    );
    assert!(
        o.facts
            .contains(&"tx 43 [SADD tags] cmd=SADD key=tags argc=5".to_string())
    );
    assert!(
        o.facts
            .contains(&"tx 0 [AUTH] cmd=AUTH key=- argc=2".to_string())
    );
    // The 200 KB value is counted through, never carried.
    let mut p = RedisParser::new();
    let mut sink = Collect::default();
    let mut conv = Conv::new(&mut p);
    for (d, b) in segments(PIPE) {
        assert!(conv.push(d, &b, &mut sink));
        assert!(conv.carried(d) < 64, "carried {}", conv.carried(d));
    }
}

#[test]
fn resp3_session_with_command_docs_push_and_every_type() {
    let o = all_ways(RESP3, 263);
    assert_eq!(count(&o, "tx "), 23);
    assert_eq!(count(&o, "rx "), 23);
    assert_eq!(o.facts[0], "tx 0 [AUTH] cmd=AUTH key=- argc=3");
    assert_eq!(o.facts[2], "tx 1 [HELLO] cmd=HELLO key=- argc=2");
    // The 170 KB COMMAND DOCS map is one reply.
    assert_eq!(o.facts[5], "rx 2 None [] error=-");
    assert_eq!(o.facts[6], "tx 3 [HSET h] cmd=HSET key=h argc=6");
    // The invalidation push after `SET tracked` answers no command: pairing holds to the end.
    assert_eq!(
        o.facts[43],
        "rx 21 None [WRONGTYPE Operation against a key holding the wrong kind of value] \
         error=WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(o.facts[45], "rx 22 None [] error=-");
}

#[test]
fn resp3_bignum_and_attribute_replies() {
    for f in [BIGNUM, ATTRIB] {
        let o = all_ways(f, 1);
        assert_eq!(
            o.facts,
            [
                "tx 0 [AUTH] cmd=AUTH key=- argc=3",
                "rx 0 None [] error=-",
                "tx 1 [HELLO] cmd=HELLO key=- argc=2",
                "rx 1 None [] error=-",
                "tx 2 [DEBUG] cmd=DEBUG key=- argc=3",
                "rx 2 None [] error=-",
            ]
        );
    }
}

#[test]
fn wrong_password_then_noauth() {
    let o = all_ways(WRONGPASS, 1);
    assert_eq!(
        o.facts[5],
        "rx 2 None [WRONGPASS invalid username-password pair or user is disabled.] \
         error=WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        o.facts[6],
        "tx 3 [GET greeting] cmd=GET key=greeting argc=2"
    );
    assert!(o.facts[7].contains("error=NOAUTH"));
}

fn run(c: &[u8], s: &[u8]) -> Outcome {
    run_chunks(&mut RedisParser::new(), &[c], &[s])
}

#[test]
fn command_is_reported_when_its_key_is_known_and_the_rest_is_counted() {
    let mut p = RedisParser::new();
    let mut sink = Collect::default();
    let head = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$104857600\r\n";
    let r = p.feed(Direction::ToServer, head, &mut sink);
    assert_eq!(
        r,
        Progress::Done {
            consumed: head.len()
        }
    );
    assert_eq!(sink.facts, ["tx 0 [SET big] cmd=SET key=big argc=3"]);
    // 100 MB of value in 64 KiB segments: all consumed at once, nothing held.
    let chunk = vec![b'v'; 64 * 1024];
    for _ in 0..1600 {
        let r = p.feed(Direction::ToServer, &chunk, &mut sink);
        assert_eq!(
            r,
            Progress::Done {
                consumed: chunk.len()
            }
        );
    }
    let r = p.feed(Direction::ToServer, b"\r\n*1\r\n$4\r\nPING\r\n", &mut sink);
    assert_eq!(r, Progress::Done { consumed: 16 });
    p.feed(Direction::ToClient, b"+OK\r\n", &mut sink);
    p.end(&mut sink);
    assert_eq!(
        sink.facts,
        [
            "tx 0 [SET big] cmd=SET key=big argc=3",
            "tx 1 [PING] cmd=PING key=- argc=1",
            "rx 0 None [] error=-",
            "unanswered 1",
        ]
    );
    assert!(sink.anomalies.is_empty());
}

#[test]
fn keys_by_position_numkeys_and_inline() {
    let o = run(
        b"*4\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$5\r\nmykey\r\n\
          *3\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n0\r\n\
          *3\r\n$6\r\nobject\r\n$8\r\nencoding\r\n$1\r\nk\r\n\
          *2\r\n$3\r\nGET\r\n$0\r\n\r\n\
          *1\r\n$3\r\nGET\r\n\
          *1\r\n$4\r\nAUTH\r\n\
          \r\n  hset  h f v\r\nHELLO 3 AUTH default pw\n",
        b"",
    );
    assert_eq!(
        o.facts,
        [
            "tx 0 [EVAL mykey] cmd=EVAL key=mykey argc=4",
            "tx 1 [EVAL] cmd=EVAL key=- argc=3",
            "tx 2 [object k] cmd=object key=k argc=3",
            "tx 3 [GET ] cmd=GET key= argc=2",
            "tx 4 [GET] cmd=GET key=- argc=1",
            "tx 5 [AUTH] cmd=AUTH key=- argc=1",
            "tx 6 [hset h] cmd=hset key=h argc=4",
            "tx 7 [HELLO] cmd=HELLO key=- argc=5",
            "unanswered 0",
            "unanswered 1",
            "unanswered 2",
            "unanswered 3",
            "unanswered 4",
            "unanswered 5",
            "unanswered 6",
            "unanswered 7",
        ]
    );
    assert!(o.alive && o.anomalies.is_empty());
}

fn bulk_cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn segs(c: &[u8], s: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    vec![
        (Direction::ToServer, c.to_vec()),
        (Direction::ToClient, s.to_vec()),
    ]
}

#[test]
fn a_key_is_judged_whole_up_to_64_kib_and_a_longer_one_blinds() {
    // 60 KiB: captured whole, whatever the cut.
    let key = vec![b'k'; 60 * 1024];
    let c = bulk_cmd(&[b"GET", &key]);
    let o = check_splits(RedisParser::new, &segs(&c, b"$-1\r\n"), 997);
    assert!(o.alive && o.anomalies.is_empty(), "{:?}", o.anomalies);
    assert!(o.facts[0].ends_with(&format!("key={} argc=2", "k".repeat(60 * 1024))));
    assert_eq!(o.facts[1], "rx 0 None [] error=-");

    // 70 KiB: not judged as its prefix (a glob could match the prefix and not the key): the
    // command is reported without a key, with an anomaly that blinds, and the flow goes on.
    let key = [b"user:".to_vec(), vec![b'x'; 70 * 1024]].concat();
    let mut c = bulk_cmd(&[b"SET", &key, b"v"]);
    c.extend(bulk_cmd(&[b"GET", b"next"]));
    let o = check_splits(RedisParser::new, &segs(&c, b"+OK\r\n$-1\r\n"), 997);
    assert!(o.alive, "{o:?}");
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert!(o.anomalies[0].blinds());
    assert_eq!(
        o.facts,
        [
            "tx 0 [SET] cmd=SET key=- argc=3",
            "tx 1 [GET next] cmd=GET key=next argc=2",
            "rx 0 None [] error=-",
            "rx 1 None [] error=-",
        ]
    );

    // The same inline.
    let mut c = b"GET ".to_vec();
    c.extend_from_slice(&key);
    c.extend_from_slice(b"\r\nGET next\r\n");
    let o = run(&c, b"");
    for at in (0..c.len()).step_by(4999).chain(c.len() - 16..c.len()) {
        let (a, b) = c.split_at(at);
        assert_eq!(run_chunks(&mut RedisParser::new(), &[a, b], &[]), o, "{at}");
    }
    assert!(o.alive, "{o:?}");
    assert_eq!(o.anomalies, [ParserAnomaly::HeaderTooLarge]);
    assert_eq!(o.facts[0], "tx 0 [GET] cmd=GET key=- argc=2");
    assert_eq!(o.facts[1], "tx 1 [GET next] cmd=GET key=next argc=2");

    // The key scratch does not keep what a long key grew.
    let mut p = RedisParser::new();
    run_chunks(&mut p, &[&c], &[]);
    assert!(p.req.key.capacity() <= KEEP_KEY);
}

#[test]
fn a_1_mb_set_value_is_counted_and_its_command_judged() {
    let value = vec![b'v'; 1_000_000];
    let mut c = bulk_cmd(&[b"SET", b"cache:big", &value]);
    c.extend(bulk_cmd(&[b"GET", b"cache:big"]));
    let mut s = b"+OK\r\n$1000000\r\n".to_vec();
    s.extend_from_slice(&value);
    s.extend_from_slice(b"\r\n");
    let o = check_splits(RedisParser::new, &segs(&c, &s), 99_991);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        o.facts,
        [
            "tx 0 [SET cache:big] cmd=SET key=cache:big argc=3",
            "tx 1 [GET cache:big] cmd=GET key=cache:big argc=2",
            "rx 0 None [] error=-",
            "rx 1 None [] error=-",
        ]
    );
    // Judged as soon as its key is in, before the value; nothing is carried.
    let mut p = RedisParser::new();
    let mut sink = Collect::default();
    let mut conv = Conv::new(&mut p);
    for chunk in c.chunks(1460) {
        assert!(conv.push(Direction::ToServer, chunk, &mut sink));
        assert!(conv.carried(Direction::ToServer) < 64);
        if sink.facts.is_empty() {
            continue;
        }
        assert_eq!(sink.facts.len(), 1);
        break;
    }
}

#[test]
fn ten_thousand_pipelined_gets_are_all_reported() {
    let mut c = Vec::new();
    for i in 0..10_000 {
        c.extend(bulk_cmd(&[b"GET", format!("k:{i}").as_bytes()]));
    }
    let whole = run(&c, b"");
    assert!(whole.alive, "{whole:?}");
    // Reported, every one; the flood is flagged once, and it does not blind.
    assert_eq!(whole.anomalies, [ParserAnomaly::TooManyTransactions]);
    assert!(!whole.anomalies[0].blinds());
    assert_eq!(count(&whole, "tx "), 10_000);
    assert_eq!(
        whole.facts[9_999],
        "tx 9999 [GET k:9999] cmd=GET key=k:9999 argc=2"
    );
    assert_eq!(count(&whole, "unanswered"), MAX_PENDING as usize);
    // The same through the driver in segments, one byte at a time, and cut at every byte of
    // the first and last commands.
    let segments: Vec<&[u8]> = c.chunks(1460).collect();
    assert_eq!(run_chunks(&mut RedisParser::new(), &segments, &[]), whole);
    let bytes: Vec<&[u8]> = c.chunks(1).collect();
    assert_eq!(run_chunks(&mut RedisParser::new(), &bytes, &[]), whole);
    for at in (0..64).chain(c.len() - 64..c.len()) {
        let (a, b) = c.split_at(at);
        assert_eq!(run_chunks(&mut RedisParser::new(), &[a, b], &[]), whole);
    }

    // Replies still pair in order however deep the pipeline.
    let s = b"$1\r\nx\r\n".repeat(10_000);
    let o = run(&c, &s);
    assert_eq!(count(&o, "rx "), 10_000);
    assert_eq!(o.facts.last().unwrap(), "rx 9999 None [] error=-");
    assert_eq!(count(&o, "unanswered"), 0);
}

#[test]
fn inline_commands_are_split_as_the_server_splits_them() {
    // Quotes and escapes as sdssplitargs reads them: the key judged is the key acted on.
    let c = b"GET \"\\x61dmin\"\r\n\
              SET 'it\\'s' v\r\n\
              GET \"a b\"\r\n\
              GET a\"b c\"\r\n\
              GET \"\"\r\n\
              GET \"\\x41\\x4\\n\"\r\n\
              \x0b GET\x0ck\r\n\
              GET\rk2\r\r\n\
              'hget' \"h\"\t f\n\
              \"GET\" x\"y\" \r\n";
    let o = check_splits(RedisParser::new, &segs(c, b""), 1);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    let tx: Vec<&String> = o.facts.iter().filter(|f| f.starts_with("tx")).collect();
    assert_eq!(
        tx,
        [
            "tx 0 [GET admin] cmd=GET key=admin argc=2",
            "tx 1 [SET it's] cmd=SET key=it's argc=3",
            "tx 2 [GET a b] cmd=GET key=a b argc=2",
            "tx 3 [GET ab c] cmd=GET key=ab c argc=2",
            "tx 4 [GET ] cmd=GET key= argc=2",
            "tx 5 [GET Ax4\n] cmd=GET key=Ax4\n argc=2",
            "tx 6 [GET\x0ck] cmd=GET\x0ck key=- argc=1",
            "tx 7 [GET k2] cmd=GET key=k2 argc=2",
            "tx 8 [hget h] cmd=hget key=h argc=3",
            "tx 9 [GET xy] cmd=GET key=xy argc=2",
        ]
    );

    // Lines the server refuses (and closes the connection on): an unbalanced quote, a
    // closing quote inside an argument, a NUL (the server's `strchr` never finds the line
    // end past it). The commands before are reported; the flow is given up loudly.
    for bad in [
        &b"GET \"unterminated\r\n"[..],
        b"GET 'x\\'\r\n",
        b"GET \"x\"y\r\n",
        b"GET \"x\\\r\n",
        b"GET k\x00 DEL k\r\n",
    ] {
        let c = [&b"PING\r\n"[..], bad].concat();
        let o = check_splits(RedisParser::new, &segs(&c, b""), 1);
        assert!(!o.alive, "{bad:?}");
        assert_eq!(o.anomalies, [ParserAnomaly::BadFraming], "{bad:?}");
        assert_eq!(o.facts[0], "tx 0 [PING] cmd=PING key=- argc=1");
    }

    // An inline line of any length streams through (the server reads one whose end has
    // arrived whatever its length): only the key is kept.
    let mut c = b"SET k ".to_vec();
    c.extend(vec![b'v'; 200 * 1024]);
    c.extend_from_slice(b"\r\n");
    let mut p = RedisParser::new();
    let mut sink = Collect::default();
    let mut conv = Conv::new(&mut p);
    for chunk in c.chunks(1000) {
        assert!(conv.push(Direction::ToServer, chunk, &mut sink));
        assert_eq!(conv.carried(Direction::ToServer), 0);
    }
    assert_eq!(sink.facts, ["tx 0 [SET k] cmd=SET key=k argc=3"]);
}

#[test]
fn replies_of_every_type_nested() {
    let c = b"*1\r\n$1\r\nA\r\n".repeat(13);
    let s = b"+OK\r\n-ERR bad thing\r\n:42\r\n$-1\r\n*-1\r\n_\r\n,3.14\r\n#t\r\n(123456789012345678901234567890\r\n\
              !21\r\nSYNTAX invalid syntax\r\n=15\r\ntxt:Some string\r\n\
              >3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n\
              |1\r\n+ttl\r\n:3\r\n%2\r\n+a\r\n*2\r\n~1\r\n:1\r\n|1\r\n+k\r\n+v\r\n%0\r\n+b\r\n*0\r\n\
              *3\r\n$3\r\nabc\r\n*1\r\n-ERR nested\r\n_\r\n";
    let o = run(&c, s);
    assert!(o.alive, "{o:?}");
    assert!(o.anomalies.is_empty(), "{:?}", o.anomalies);
    let rx: Vec<&String> = o.facts.iter().filter(|f| f.starts_with("rx")).collect();
    assert_eq!(rx.len(), 13, "{rx:?}");
    assert_eq!(rx[1], "rx 1 None [ERR bad thing] error=ERR bad thing");
    assert_eq!(
        rx[9],
        "rx 9 None [SYNTAX invalid syntax] error=SYNTAX invalid syntax"
    );
    assert_eq!(rx[12], "rx 12 None [] error=-");
    // The same split at every point.
    let segs = vec![
        (Direction::ToServer, c.clone()),
        (Direction::ToClient, s.to_vec()),
    ];
    let whole = check_splits(RedisParser::new, &segs, 1);
    assert_eq!(whole, o);
}

#[test]
fn unsolicited_reply_and_push_without_command() {
    let o = run(b"", b">2\r\n+invalidate\r\n*0\r\n+OK\r\n");
    assert_eq!(o.anomalies, [ParserAnomaly::UnsolicitedResponse]);
    assert!(o.facts.is_empty());
}

#[test]
fn subscribe_stops_pairing_but_commands_are_still_reported() {
    let o = run(
        b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\nPING\r\n",
        b"$1\r\nx\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n\
          *3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
    );
    assert_eq!(
        o.facts,
        [
            "tx 0 [GET a] cmd=GET key=a argc=2",
            "tx 1 [SUBSCRIBE] cmd=SUBSCRIBE key=- argc=2",
            "tx 2 [PING] cmd=PING key=- argc=1",
            "rx 0 None [] error=-",
        ]
    );
    assert!(o.anomalies.is_empty());
}

#[test]
fn pipelining_flood_is_flagged_once_and_end_is_bounded() {
    let c = b"PING\r\n".repeat(MAX_PENDING as usize + 10);
    let o = run(&c, b"");
    assert_eq!(o.anomalies, [ParserAnomaly::TooManyTransactions]);
    assert_eq!(count(&o, "tx "), MAX_PENDING as usize + 10);
    assert_eq!(count(&o, "unanswered"), MAX_PENDING as usize);
    assert_eq!(
        o.facts.last().unwrap(),
        &format!("unanswered {}", MAX_PENDING - 1)
    );
}

#[test]
fn oversized_lengths_are_anomalies_and_invalid() {
    let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
    let cases: [(&[u8], &[u8], ParserAnomaly); 5] = [
        (b"*2147483648\r\n", b"", ParserAnomaly::MessageTooLarge),
        (b"*1\r\n$536870913\r\n", b"", ParserAnomaly::MessageTooLarge),
        (
            b"*1\r\n$4\r\nPING\r\n",
            b"$999999999999\r\n",
            ParserAnomaly::MessageTooLarge,
        ),
        (
            b"*1\r\n$4\r\nPING\r\n",
            b"*9999999999999\r\n",
            ParserAnomaly::MessageTooLarge,
        ),
        (
            b"*1\r\n$4\r\nPING\r\n",
            &deep,
            ParserAnomaly::MessageTooLarge,
        ),
    ];
    for (c, s, a) in cases {
        let o = run(c, s);
        assert!(!o.alive, "{c:?} {s:?}");
        assert_eq!(o.anomalies.last(), Some(&a), "{c:?} {s:?}");
    }
    // What redis-server 7 accepts by default is read: 2^31 - 1 arguments, a 512 MB bulk,
    // replies nested as deep as a script makes them.
    let o = run(b"*2147483647\r\n$3\r\nDEL\r\n$1\r\nk\r\n", b"");
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(o.facts[0], "tx 0 [DEL k] cmd=DEL key=k argc=2147483647");
    let o = run(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n", b"");
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    let nested = [b"*1\r\n".repeat(200), b":1\r\n".to_vec()].concat();
    let o = run(b"PING\r\n", &nested);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(o.facts[1], "rx 0 None [] error=-");
}

#[test]
fn bad_framing_is_an_anomaly_and_invalid() {
    let cases: [(&[u8], &[u8]); 9] = [
        (b"*x\r\n", b""),
        (b"*1\r\n+PING\r\n", b""),
        (b"*1\r\n$-5\r\n", b""),
        (b"*1\r\n$4\r\nPINGxx", b""),
        (b"*1\n", b""),
        (b"*1\r\n$4\r\nPING\r\n", b"?what\r\n"),
        (b"*1\r\n$4\r\nPING\r\n", b"$2\r\nabcd\r\n"),
        (b"*1\r\n$4\r\nPING\r\n", b"$?\r\n;4\r\nabcd\r\n"),
        (b"*1\r\n$4\r\nPING\r\n", b"\x00\x01\x02\r\n"),
    ];
    for (c, s) in cases {
        let o = run(c, s);
        assert!(!o.alive, "{c:?} {s:?}");
        assert_eq!(o.anomalies, [ParserAnomaly::BadFraming], "{c:?} {s:?}");
    }
}

#[test]
fn truncated_conversations_end_cleanly() {
    let segs = segments(SESSION);
    let (c, s) = super::testkit::streams(&segs);
    for cut in (0..c.len()).step_by(7) {
        let o = run(&c[..cut], &s[..cut.min(s.len())]);
        assert!(o.alive);
        assert!(
            o.anomalies
                .iter()
                .all(|a| *a == ParserAnomaly::UnsolicitedResponse),
            "{:?}",
            o.anomalies
        );
    }
}

#[test]
fn gap_inside_a_counted_value_resyncs_elsewhere_gives_up() {
    let mut p = RedisParser::new();
    let mut sink = Collect::default();
    p.feed(
        Direction::ToServer,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\nabc",
        &mut sink,
    );
    assert_eq!(p.gap(Direction::ToServer, 900), GapOutcome::Skipped);
    let rest = [vec![b'z'; 97], b"\r\n*1\r\n$4\r\nPING\r\n".to_vec()].concat();
    assert_eq!(
        p.feed(Direction::ToServer, &rest, &mut sink),
        Progress::Done {
            consumed: rest.len()
        }
    );
    assert_eq!(sink.anomalies, [ParserAnomaly::Resync]);
    assert_eq!(sink.facts.len(), 2);
    // Too long a gap, or one in a header or in the key: cannot resync.
    assert_eq!(p.gap(Direction::ToServer, 10), GapOutcome::GiveUp);
    let mut p = RedisParser::new();
    p.feed(
        Direction::ToServer,
        b"*2\r\n$3\r\nGET\r\n$100\r\nab",
        &mut sink,
    );
    assert_eq!(p.gap(Direction::ToServer, 10), GapOutcome::GiveUp);
    let mut p = RedisParser::new();
    p.feed(Direction::ToClient, b"$100\r\nab", &mut sink);
    assert_eq!(p.gap(Direction::ToClient, 100), GapOutcome::GiveUp);
    assert_eq!(p.gap(Direction::ToClient, 98), GapOutcome::Skipped);
}

#[test]
fn garbage_never_panics() {
    let mut x: u32 = 0x1234_5678;
    let mut bytes = Vec::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        // Mostly RESP punctuation, digits and CRLF, so the parser gets deep.
        let alphabet = b"*$+-:_,#(!=%~>|\r\n0123456789-?abcXYZ ";
        bytes.push(alphabet[(x as usize) % alphabet.len()]);
    }
    for chunk in bytes.chunks(997) {
        let _ = run(chunk, chunk);
        let _ = run_chunks(
            &mut RedisParser::new(),
            &chunk.chunks(3).collect::<Vec<_>>(),
            &[],
        );
    }
}
