//! Redis flows: RESP commands, sometimes pipelined, and their replies.

use super::edges::{R, Reply};
use super::script::{Script, chance, fill, hex, json_value, pick};
use crate::generate::{Rng, Side};
use crate::wire::*;

pub(super) fn redis_reply(rng: &mut Rng, r: &R, args: &[String], out: &mut Vec<u8>) {
    match r.reply {
        Reply::Ok => resp_simple(out, "OK"),
        Reply::Int => resp_int(out, rng.below(100) as i64),
        Reply::MaybeBulk => {
            if chance(rng, 4) {
                resp_bulk(out, None);
            } else {
                resp_bulk(out, Some(json_value(rng, 24, 900).as_bytes()));
            }
        }
        Reply::Array => {
            resp_array_head(out, args.len());
            for _ in args {
                if chance(rng, 5) {
                    resp_bulk(out, None);
                } else {
                    resp_bulk(out, Some(json_value(rng, 24, 300).as_bytes()));
                }
            }
        }
        Reply::Hash => {
            let n = rng.below(8) as usize;
            resp_array_head(out, 2 * n);
            for i in 0..n {
                resp_bulk(out, Some(format!("field{i}").as_bytes()));
                resp_bulk(out, Some(fill("{word}", rng).as_bytes()));
            }
        }
    }
}

pub(super) fn redis_flow(rng: &mut Rng, cmds: &[R], violate: bool, sc: &mut Script) {
    sc.open();
    if chance(rng, 3) {
        let mut c = Vec::new();
        let pw = hex(rng, 32);
        resp_command(&mut c, &[b"AUTH", b"default", pw.as_bytes()]);
        sc.send(Side::Client, &c);
        sc.tx += 1;
        sc.send(Side::Server, b"+OK\r\n");
    }
    let n = 2 + rng.below(12) + u64::from(chance(rng, 4)) * rng.below(30);
    let mut done = 0;
    while done < n {
        // Pipelines of up to five commands now and then.
        let batch = if chance(rng, 5) {
            (2 + rng.below(4)).min(n - done)
        } else {
            1
        };
        let mut c = Vec::new();
        let mut s = Vec::new();
        for _ in 0..batch {
            if chance(rng, 40) {
                resp_command(&mut c, &[b"PING"]);
                resp_simple(&mut s, "PONG");
            } else if chance(rng, 150) {
                let pattern = format!(
                    "{}:*",
                    ["order", "session", "product", "cart"][rng.below(4) as usize]
                );
                resp_command(&mut c, &[b"KEYS", pattern.as_bytes()]);
                sc.alerted += 1;
                resp_array_head(&mut s, 2);
                resp_bulk(&mut s, Some(b"order:1"));
                resp_bulk(&mut s, Some(b"order:2"));
            } else {
                let Some(r) = pick(rng, cmds, |r| r.w) else {
                    break;
                };
                let args: Vec<String> = r.args.split(' ').map(|a| fill(a, rng)).collect();
                let mut argv: Vec<&[u8]> = vec![r.cmd.as_bytes()];
                argv.extend(args.iter().map(|a| a.as_bytes()));
                resp_command(&mut c, &argv);
                // MGET answers one element per key.
                let keys: Vec<String> = if r.cmd == "MGET" {
                    args.clone()
                } else {
                    Vec::new()
                };
                redis_reply(rng, r, &keys, &mut s);
            }
            sc.tx += 1;
        }
        sc.send(Side::Client, &c);
        sc.send(Side::Server, &s);
        done += batch;
        sc.maybe_delayed_ack(rng);
    }
    if violate {
        let mut c = Vec::new();
        resp_command(&mut c, &[b"FLUSHDB", b"ASYNC"]);
        sc.send(Side::Client, &c);
        sc.tx += 1;
        sc.denied += 1;
        sc.send(Side::Server, b"+OK\r\n");
        // The denied command was the last the firewall lets through: the client's
        // connection is reset, so it ends here (no QUIT to count).
        sc.close(Side::Client);
        return;
    }
    let mut c = Vec::new();
    resp_command(&mut c, &[b"QUIT"]);
    sc.send(Side::Client, &c);
    sc.tx += 1;
    sc.send(Side::Server, b"+OK\r\n");
    sc.close(Side::Server);
}
