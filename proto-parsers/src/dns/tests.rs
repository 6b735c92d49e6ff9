use super::*;
use crate::contract::GapOutcome;
use crate::redis::testkit::{Outcome, check_splits, run_chunks, run_wire, segments, sorted};

const UDP: [&[u8]; 7] = [
    include_bytes!("testdata/udp-0.seg"),
    include_bytes!("testdata/udp-1.seg"),
    include_bytes!("testdata/udp-2.seg"),
    include_bytes!("testdata/udp-3.seg"),
    include_bytes!("testdata/udp-4.seg"),
    include_bytes!("testdata/udp-5.seg"),
    include_bytes!("testdata/udp-6.seg"),
];
const TCP_ONE: &[u8] = include_bytes!("testdata/tcp-0.seg");
const TCP_KEEPOPEN: &[u8] = include_bytes!("testdata/tcp-1.seg");

fn facts_without_ids(o: &Outcome) -> Vec<String> {
    // msg_id is random per recording; everything else is fixed by the recording script.
    o.facts
        .iter()
        .map(|f| f.split(" msg_id=").next().unwrap().to_string())
        .collect()
}

#[test]
fn dig_over_udp_a_aaaa_txt_nxdomain_cname_mx() {
    let want: [[&str; 2]; 7] = [
        [
            "tx 0 [a.x A] qname=a.x qtype=1 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
        ],
        [
            "tx 0 [a.x AAAA] qname=a.x qtype=28 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
        ],
        [
            "tx 0 [t.x TXT] qname=t.x qtype=16 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
        ],
        [
            "tx 0 [nope.x A] qname=nope.x qtype=1 qclass=1",
            "rx 0 Some(3) [NXDOMAIN] rcode=3 answers=0",
        ],
        // Asked as WWW.X: reported lower-cased; the answer is a CNAME plus its A record.
        [
            "tx 0 [www.x A] qname=www.x qtype=1 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=2",
        ],
        [
            "tx 0 [x MX] qname=x qtype=15 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
        ],
        [
            "tx 0 [b.x A] qname=b.x qtype=1 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
        ],
    ];
    for (f, w) in UDP.iter().zip(want) {
        let segs = segments(f);
        let o = run_wire(&mut DnsParser::udp(), &segs);
        assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
        assert_eq!(facts_without_ids(&o), w);
        // The response arriving first is unsolicited; the query then waits.
        let rev: Vec<_> = segs.iter().rev().cloned().collect();
        let o = run_wire(&mut DnsParser::udp(), &rev);
        assert_eq!(o.anomalies, [ParserAnomaly::UnsolicitedResponse]);
        assert_eq!(o.facts.last().unwrap(), "unanswered 0");
    }
}

#[test]
fn dig_over_tcp_one_and_several_queries_per_connection() {
    let o = check_splits(DnsParser::tcp, &segments(TCP_ONE), 1);
    assert!(o.alive && o.anomalies.is_empty());
    assert_eq!(
        facts_without_ids(&o),
        [
            "tx 0 [a.x AAAA] qname=a.x qtype=28 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1"
        ]
    );
    let segs = segments(TCP_KEEPOPEN);
    let o = check_splits(DnsParser::tcp, &segs, 1);
    assert!(o.alive && o.anomalies.is_empty());
    let wire = run_wire(&mut DnsParser::tcp(), &segs);
    assert_eq!(sorted(&wire), sorted(&o));
    assert_eq!(
        facts_without_ids(&wire),
        [
            "tx 0 [a.x A] qname=a.x qtype=1 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
            "tx 1 [www.x A] qname=www.x qtype=1 qclass=1",
            "rx 1 Some(0) [NOERROR] rcode=0 answers=2",
            "tx 2 [nope.x TXT] qname=nope.x qtype=16 qclass=1",
            "rx 2 Some(3) [NXDOMAIN] rcode=3 answers=0",
            "tx 3 [t.x TXT] qname=t.x qtype=16 qclass=1",
            "rx 3 Some(0) [NOERROR] rcode=0 answers=1",
        ]
    );
}

fn query(id: u16, qd: u16, name: &[u8]) -> Vec<u8> {
    let mut m = vec![
        (id >> 8) as u8,
        id as u8,
        0x01,
        0x00,
        0,
        qd as u8,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

fn udp(datagrams: &[Vec<u8>]) -> Outcome {
    let segs: Vec<_> = datagrams
        .iter()
        .map(|d| (Direction::ToServer, d.clone()))
        .collect();
    run_wire(&mut DnsParser::udp(), &segs)
}

#[test]
fn names_are_escaped_and_pointers_followed() {
    let o = udp(&[query(1, 1, b"\x03A.b\x04c\\\x01\xff\x00")]);
    assert_eq!(
        o.facts[0],
        "tx 0 [a\\.b.c\\\\\\001\\255 A] qname=a\\.b.c\\\\\\001\\255 qtype=1 qclass=1 msg_id=1"
    );
    // Root name.
    let o = udp(&[query(2, 1, b"\x00")]);
    assert_eq!(o.facts[0], "tx 0 [ A] qname= qtype=1 qclass=1 msg_id=2");
    // A response whose answer name is a pointer back to the question.
    let mut r = query(3, 1, b"\x01a\x01x\x00");
    r[2] = 0x81;
    r[3] = 0x83;
    r[7] = 1;
    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, 1]);
    let o = udp(&[query(3, 1, b"\x01a\x01x\x00"), r]);
    assert!(o.anomalies.is_empty(), "{o:?}");
    assert_eq!(o.facts[1], "rx 0 Some(3) [NXDOMAIN] rcode=3 answers=1");
}

#[test]
fn edns_extends_the_rcode() {
    let mut r = query(9, 1, b"\x01a\x00");
    r[2] = 0x81;
    r[11] = 1; // one additional record: OPT with extended rcode 1 -> 16 (BADVERS)
    r.extend_from_slice(&[0, 0, 41, 0x10, 0, 1, 0, 0, 0, 0, 0]);
    let o = udp(&[query(9, 1, b"\x01a\x00"), r.clone()]);
    assert!(o.anomalies.is_empty(), "{o:?}");
    assert_eq!(o.facts[1], "rx 0 Some(16) [BADVERS] rcode=16 answers=0");
    // BADCOOKIE: 7 in the header (YXRRSET alone), 1 in the OPT record's upper bits -> 23.
    r[3] = 0x07;
    let o = udp(&[query(9, 1, b"\x01a\x00"), r.clone()]);
    assert_eq!(o.facts[1], "rx 0 Some(23) [BADCOOKIE] rcode=23 answers=0");
    // All 12 bits: a private-use code, no name.
    r[3] = 0x0f;
    let n = r.len();
    r[n - 6] = 0xff;
    let o = udp(&[query(9, 1, b"\x01a\x00"), r]);
    assert_eq!(o.facts[1], "rx 0 Some(4095) [] rcode=4095 answers=0");
}

#[test]
fn what_no_server_reads_is_a_resync_and_the_flow_goes_on() {
    let mut iquery = query(1, 1, b"\x01a\x00");
    iquery[2] = 0x08 | 0x01; // opcode IQUERY, RD
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("pointer past the end", query(1, 1, &[0xc0, 40])),
        ("pointer's low byte missing", {
            let mut q = query(1, 1, b"");
            q.truncate(HEADER);
            q.push(0xc0);
            q
        }),
        ("extended label type", query(1, 1, &[0x41, 0])),
        ("reserved label type", query(1, 1, &[0x81, 0])),
        ("label past the end", query(1, 1, b"\x05ab")),
        ("no question", query(1, 0, b"\x01a\x00")),
        ("shorter than a header", vec![0, 1, 2]),
        ("no qtype", query(1, 1, b"\x01a\x00")[..15].to_vec()),
        ("opcode IQUERY", iquery),
        ("opcode STATUS", {
            let mut q = query(1, 1, b"\x01a\x00");
            q[2] = 0x10;
            q
        }),
        ("opcode DSO", {
            let mut q = query(1, 1, b"\x01a\x00");
            q[2] = 0x30;
            q
        }),
        ("opcode 15", {
            let mut q = query(1, 1, b"\x01a\x00");
            q[2] = 0x78;
            q
        }),
    ];
    for (what, c) in &cases {
        // Each, then a real query in the same flow: reported.
        let o = udp(&[c.clone(), query(9, 1, b"\x01b\x00")]);
        assert_eq!(o.anomalies, [ParserAnomaly::Resync], "{what}");
        assert!(!ParserAnomaly::Resync.blinds());
        assert_eq!(
            o.facts,
            [
                "tx 0 [b A] qname=b qtype=1 qclass=1 msg_id=9",
                "unanswered 0"
            ],
            "{what}"
        );
        // The same inside a DNS over TCP stream: the length prefix keeps the framing.
        let mut stream = (c.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(c);
        let q = query(9, 1, b"\x01b\x00");
        stream.extend_from_slice(&(q.len() as u16).to_be_bytes());
        stream.extend_from_slice(&q);
        let o = run_chunks(&mut DnsParser::tcp(), &[&stream], &[]);
        assert_eq!(o.anomalies, [ParserAnomaly::Resync], "{what} over TCP");
        assert_eq!(o.facts.len(), 2, "{what} over TCP");
    }
}

#[test]
fn names_past_the_budgets_blind() {
    let long: Vec<u8> = std::iter::repeat_n(
        &b"\x3fxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"[..],
        5,
    )
    .flatten()
    .copied()
    .chain([0])
    .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Loops: each runs into a budget (no server reads them either, but a budget cannot
        // tell a loop from a long chain that dnsmasq would follow).
        ("pointer to itself", query(1, 1, &[0xc0, 12])),
        ("loop back to its own start", query(1, 1, b"\x01a\xc0\x0c")),
        ("two pointers to each other", {
            let mut q = query(1, 1, &[0xc0, 18, 0, 1, 0, 1, 0xc0, 12]);
            q.truncate(q.len() - 4);
            q
        }),
        // dnsmasq reads names of up to 1025 characters: past MAX_NAME it may act on one.
        ("320 bytes of name", query(1, 1, &long)),
    ];
    for (what, c) in &cases {
        let o = udp(std::slice::from_ref(c));
        assert_eq!(o.anomalies, [ParserAnomaly::BadFraming], "{what}");
        assert!(ParserAnomaly::BadFraming.blinds());
        assert!(o.facts.is_empty() && o.alive, "{what}");
    }
    // A chain of pointers, each to the one before, ending at a real label: MAX_POINTERS
    // jumps are followed, one more is a limit.
    let mut chain = query(7, 1, b"\x01a\x00");
    chain.truncate(HEADER);
    chain.extend_from_slice(b"\x01a\x00");
    let first = chain.len();
    for i in 0..=MAX_POINTERS {
        let target = if i == 0 { HEADER } else { first + 2 * (i - 1) };
        chain.extend_from_slice(&(0xc000 | target as u16).to_be_bytes());
    }
    let last = chain.len() - 2;
    let mut out = String::new();
    assert_eq!(decode_name(&chain, last, &mut out), Err(NameError::Limit));
    assert_eq!(decode_name(&chain, last - 2, &mut out), Ok(last));
    assert_eq!(out, "a");
}

#[test]
fn forward_pointers_are_followed() {
    // The question's name is a pointer to a name stored after the question, in an EDNS
    // option's data (what craft.py sends dnsmasq, which answers it).
    let mut q = query(0x4657, 1, &[0xc0, 0]);
    q[11] = 1;
    let name = b"\x05Admin\x04corp\x00";
    let target = q.len() + 11 + 4;
    q[HEADER + 1] = target as u8;
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&((4 + name.len()) as u16).to_be_bytes());
    q.extend_from_slice(&[0xfd, 0xe9]);
    q.extend_from_slice(&(name.len() as u16).to_be_bytes());
    q.extend_from_slice(name);
    assert_eq!(&q[target..], name);
    let o = udp(&[q.clone()]);
    assert!(o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        o.facts[0],
        "tx 0 [admin.corp A] qname=admin.corp qtype=1 qclass=1 msg_id=18007"
    );
    // A name whose labels are split across a forward and a backward pointer: `a`, then
    // forward to `b` (after the question), then back to `c` (between them).
    let mut q = query(2, 1, b"\x01a\xc0\x18");
    q.extend_from_slice(b"\x01c\x00\xff"); // offset 20
    q.extend_from_slice(b"\x01b\xc0\x14"); // offset 24
    let o = udp(&[q]);
    assert!(o.anomalies.is_empty(), "{o:?}");
    assert!(o.facts[0].starts_with("tx 0 [a.b.c A]"), "{o:?}");
}

#[test]
fn notify_and_update_are_reported_with_their_opcode() {
    let mut notify = query(3, 1, b"\x01x\x00");
    notify[2] = 0x20 | 0x04; // NOTIFY, AA
    notify[HEADER + 4] = 6; // SOA
    let mut update = query(4, 1, b"\x01x\x00");
    update[2] = 0x28; // UPDATE
    update[HEADER + 4] = 6;
    update[9] = 1; // one update: delete old.x A (class ANY, TTL 0, empty RDATA)
    update.extend_from_slice(b"\x03old\xc0\x0c\x00\x01\x00\xff\0\0\0\0\0\0");
    let o = udp(&[notify, update]);
    assert!(o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        &o.facts[..2],
        [
            "tx 0 [NOTIFY x SOA] qname=x qtype=6 qclass=1 msg_id=3",
            "tx 1 [UPDATE x SOA] qname=x qtype=6 qclass=1 msg_id=4",
        ]
    );
}

#[test]
fn several_questions_are_ambiguous() {
    let mut q = query(5, 2, b"\x01a\x00");
    q.extend_from_slice(b"\x01b\x00\x00\x01\x00\x01");
    let o = udp(&[q]);
    assert_eq!(o.anomalies, [ParserAnomaly::Ambiguous]);
    assert!(o.facts[0].starts_with("tx 0 [a A]"));
}

#[test]
fn outstanding_table_is_bounded_and_answers_pair_by_id() {
    let qs: Vec<Vec<u8>> = (0..MAX_OUTSTANDING as u16 + 3)
        .map(|i| query(i, 1, b"\x01a\x00"))
        .collect();
    let o = udp(&qs);
    assert_eq!(o.anomalies, vec![ParserAnomaly::TooManyTransactions; 3]);
    assert_eq!(
        o.facts
            .iter()
            .filter(|f| f.starts_with("unanswered"))
            .count(),
        MAX_OUTSTANDING
    );
    // Answers out of order pair by message id.
    let mut r1 = query(1, 1, b"\x01a\x00");
    r1[2] = 0x81;
    let mut r0 = query(0, 1, b"\x01a\x00");
    r0[2] = 0x81;
    let o = udp(&[query(0, 1, b"\x01a\x00"), query(1, 1, b"\x01b\x00"), r1, r0]);
    assert_eq!(o.facts[2], "rx 1 Some(0) [NOERROR] rcode=0 answers=0");
    assert_eq!(o.facts[3], "rx 0 Some(0) [NOERROR] rcode=0 answers=0");
}

#[test]
fn tcp_framing_zero_length_truncated_and_gap() {
    let q = query(1, 1, b"\x01a\x00");
    let mut stream = vec![0, 0, 0, 3, 1, 2, 3];
    stream.extend_from_slice(&[0, q.len() as u8]);
    stream.extend_from_slice(&q);
    stream.extend_from_slice(&[0, 40, 1, 2]); // truncated message at the end
    let o = run_chunks(&mut DnsParser::tcp(), &[&stream], &[]);
    // Messages shorter than a header: framing intact, nothing a server reads.
    assert_eq!(o.anomalies, [ParserAnomaly::Resync, ParserAnomaly::Resync]);
    assert_eq!(
        o.facts,
        [
            "tx 0 [a A] qname=a qtype=1 qclass=1 msg_id=1",
            "unanswered 0"
        ]
    );
    assert_eq!(
        DnsParser::tcp().gap(Direction::ToServer, 5),
        GapOutcome::GiveUp
    );
    assert_eq!(
        DnsParser::udp().gap(Direction::ToServer, 5),
        GapOutcome::Skipped
    );
    // A bad answer section still pairs, flagged (a client rejects such an answer: nothing
    // policy judges is lost).
    let mut r = query(1, 1, b"\x01a\x00");
    r[2] = 0x81;
    r[7] = 3;
    let o = udp(&[q, r]);
    assert_eq!(o.anomalies, [ParserAnomaly::Resync]);
    assert_eq!(o.facts[1], "rx 0 Some(0) [NOERROR] rcode=0 answers=3");
}

#[test]
fn garbage_never_panics() {
    let mut x: u32 = 0x9e37_79b9;
    let mut buf = Vec::new();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let b = match x % 8 {
            0 => 0xc0,
            1 => 0,
            2 => 12,
            _ => (x >> 8) as u8,
        };
        buf.push(b);
    }
    for chunk in buf.chunks(61) {
        let _ = udp(&[chunk.to_vec()]);
        let mut m = query(1, 1, b"");
        m.truncate(HEADER);
        m[2] = (x & 0x80) as u8;
        m.extend_from_slice(chunk);
        let _ = udp(&[m]);
    }
    let _ = run_chunks(
        &mut DnsParser::tcp(),
        &buf.chunks(5).collect::<Vec<_>>(),
        &[&buf],
    );
}

#[test]
fn a_tcp_message_of_65535_bytes_is_read_whole() {
    // A query padded to the largest length its prefix can say (EDNS padding, RFC 7830): the
    // caller must be able to carry all of it.
    let mut q = query(0x4242, 1, b"\x05admin\x04corp\x00");
    q[11] = 1; // one additional record: OPT with a padding option
    let pad = 65_535 - q.len() - 11 - 4;
    q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&((pad + 4) as u16).to_be_bytes());
    q.extend_from_slice(&[0, 12]);
    q.extend_from_slice(&(pad as u16).to_be_bytes());
    q.extend(std::iter::repeat_n(0u8, pad));
    assert_eq!(q.len(), 65_535);
    let mut stream = (q.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(&q);
    let mut again = query(7, 1, b"\x01b\x00");
    stream.extend_from_slice(&(again.len() as u16).to_be_bytes());
    stream.append(&mut again);
    let segs = vec![(Direction::ToServer, stream.clone())];
    let o = check_splits(DnsParser::tcp, &segs, 4_099);
    assert!(o.alive && o.anomalies.is_empty(), "{o:?}");
    assert_eq!(
        facts_without_ids(&o),
        [
            "tx 0 [admin.corp A] qname=admin.corp qtype=1 qclass=1",
            "tx 1 [b A] qname=b qtype=1 qclass=1",
            "unanswered 0",
            "unanswered 1",
        ]
    );
    assert!(DnsParser::tcp().max_carry() >= MAX_TCP_MESSAGE - 1);
    // In TCP segments through the driver.
    let chunks: Vec<&[u8]> = stream.chunks(1448).collect();
    assert_eq!(run_chunks(&mut DnsParser::tcp(), &chunks, &[]), o);
}

// ---------------------------------------------------------------------------------------
// The captures of `tests/data/dns/record.sh` (see its README), each checked against what
// `tshark -r FILE -T fields -e dns.qry.name -e dns.qry.type -e dns.flags.rcode` (TShark
// 4.0.17) printed for it. Lines of tabs only (TCP segments without DNS, and the junk
// datagrams tshark reads nothing from) are left out.

/// `dns-flags.pcap`.
const TSHARK_FLAGS: &[&str] = &[
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "nope.x\t1\t",
    "nope.x\t1\t3",
    "a.x\t1\t",
    "a.x\t1\t0",
];

/// `dns-edns.pcap`.
const TSHARK_EDNS: &[&str] = &[
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
    "t.x\t16\t",
    "t.x\t16\t0",
    "a.x\t1\t",
    "a.x\t1\t0",
];

/// `dns-types.pcap`.
const TSHARK_TYPES: &[&str] = &[
    "n.x\t10\t",
    "n.x\t10\t0",
    "h.x\t13\t",
    "h.x\t13\t0",
    "s.x\t44\t",
    "s.x\t44\t0",
    "_443._tcp.w.x\t52\t",
    "_443._tcp.w.x\t52\t0",
    "_http._tcp.w.x\t256\t",
    "_http._tcp.w.x\t256\t0",
    "x\t257\t",
    "x\t257\t0",
    "a.x\t44\t",
    "a.x\t44\t0",
    "nope.x\t52\t",
    "nope.x\t52\t3",
    "a.x\t262\t",
    "a.x\t262\t0",
    "a.x\t65280\t",
    "a.x\t65280\t0",
    "x\t255\t",
    "x\t255\t0",
    "s.x\t44\t",
    "s.x\t44\t0",
    "x\t257\t",
    "x\t257\t0",
    "a.x\t65280\t",
    "a.x\t65280\t0",
];

/// `dns-empty.pcap`.
const TSHARK_EMPTY: &[&str] = &[
    "e.x\t10\t",
    "e.x\t10\t0",
    "e.x\t42\t",
    "e.x\t42\t0",
    "e.x\t16\t",
    "e.x\t16\t0",
    "x\t6\t",
    "x\t6\t5",
];

/// `dns-junk.pcap`.
const TSHARK_JUNK: &[&str] = &["\t\t15", "a.x\t1\t", "a.x\t1\t0"];

/// `dns-fwdptr.pcap`.
const TSHARK_FWDPTR: &[&str] = &[
    "a.x\t1\t",
    "a.x\t1\t0",
    "fwd.b.x\t1\t",
    "\t\t0",
    "b.x\t1\t",
    "b.x\t1\t0",
    "fwd.b.x\t1\t",
    "\t\t0",
];

/// Each flow of capture `name` (`<name>-udp-<n>.seg`, then `<name>-tcp-<n>.seg`) run
/// through its parser: (file, TCP?, outcome).
fn capture(name: &str) -> Vec<(String, bool, Outcome)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dns/testdata");
    let mut out = Vec::new();
    for tcp in [false, true] {
        let t = if tcp { "tcp" } else { "udp" };
        for n in 0.. {
            let file = format!("{name}-{t}-{n}.seg");
            let Ok(bytes) = std::fs::read(dir.join(&file)) else {
                break;
            };
            let segs = segments(&bytes);
            let o = if tcp {
                // Split at every byte, and in wire order: the same.
                let o = check_splits(DnsParser::tcp, &segs, 1);
                assert_eq!(sorted(&run_wire(&mut DnsParser::tcp(), &segs)), sorted(&o));
                run_wire(&mut DnsParser::tcp(), &segs)
            } else {
                run_wire(&mut DnsParser::udp(), &segs)
            };
            assert!(o.alive, "{file}");
            out.push((file, tcp, o));
        }
    }
    assert!(!out.is_empty(), "no flows for {name}");
    out
}

fn field<'a>(fact: &'a str, key: &str) -> &'a str {
    fact.split(' ')
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} in {fact}"))
}

/// The parser's facts as tshark's three columns: a query is `name\ttype\t`, its answer
/// `name\ttype\trcode` (the name and type of the query it pairs with).
fn as_tshark(flows: &[(String, bool, Outcome)]) -> Vec<String> {
    let mut lines = Vec::new();
    for (_, _, o) in flows {
        let mut asked = std::collections::HashMap::new();
        for f in &o.facts {
            let id = f.split(' ').nth(1).unwrap().to_string();
            if f.starts_with("tx ") {
                let q = format!("{}\t{}", field(f, "qname="), field(f, "qtype="));
                lines.push(format!("{q}\t"));
                asked.insert(id, q);
            } else if f.starts_with("rx ") {
                lines.push(format!("{}\t{}", asked[&id], field(f, "rcode=")));
            }
        }
    }
    lines
}

/// The parser reports what tshark shows, in the same order. Where tshark could not read a
/// message's question (its name and type columns empty), only an answer's rcode is
/// compared; a message of that kind the parser reports nothing for is skipped.
fn check_against_tshark(name: &str, tshark: &[&str]) -> Vec<(String, bool, Outcome)> {
    let flows = capture(name);
    let ours = as_tshark(&flows);
    let mut i = 0;
    for t in tshark {
        let cols: Vec<&str> = t.split('\t').collect();
        let ok = match ours.get(i) {
            Some(o) if cols[0].is_empty() => {
                if o.ends_with(&format!("\t{}", cols[2])) && !cols[2].is_empty() {
                    true
                } else {
                    continue;
                }
            }
            Some(o) => o == t,
            None => false,
        };
        assert!(
            ok,
            "{name}: tshark {t:?}, parser {:?} (line {i} of {ours:?})",
            ours.get(i)
        );
        i += 1;
    }
    assert_eq!(i, ours.len(), "{name}: the parser reported more: {ours:?}");
    flows
}

fn summaries(flows: &[(String, bool, Outcome)]) -> Vec<String> {
    flows
        .iter()
        .flat_map(|(_, _, o)| &o.facts)
        .filter(|f| f.starts_with("tx "))
        .map(|f| f[f.find('[').unwrap() + 1..f.find(']').unwrap()].to_string())
        .collect()
}

#[test]
fn recorded_header_flags_z_ad_cd_aa() {
    let flows = check_against_tshark("flags", TSHARK_FLAGS);
    for (file, _, o) in &flows {
        assert!(o.anomalies.is_empty(), "{file}: {o:?}");
    }
    assert_eq!(flows.len(), 5);
}

#[test]
fn recorded_edns_cookie_subnet_padding_sizes_options() {
    let flows = check_against_tshark("edns", TSHARK_EDNS);
    for (file, _, o) in &flows {
        assert!(o.anomalies.is_empty(), "{file}: {o:?}");
    }
    assert_eq!(flows.len(), 9);
}

#[test]
fn recorded_record_types_by_their_iana_names() {
    let flows = check_against_tshark("types", TSHARK_TYPES);
    for (file, _, o) in &flows {
        assert!(o.anomalies.is_empty(), "{file}: {o:?}");
    }
    // TShark's Info column says the same (`SSHFP s.x`...), except for 262, assigned to
    // WALLET after TShark 4.0 ("Unknown (262)"); 65280 is private use, TYPE65280 as dig
    // prints it.
    assert_eq!(
        summaries(&flows),
        [
            "n.x NULL",
            "h.x HINFO",
            "s.x SSHFP",
            "_443._tcp.w.x TLSA",
            "_http._tcp.w.x URI",
            "x CAA",
            "a.x SSHFP",
            "nope.x TLSA",
            "a.x WALLET",
            "a.x TYPE65280",
            "x ANY",
            "s.x SSHFP",
            "x CAA",
            "a.x TYPE65280",
        ]
    );
}

#[test]
fn recorded_empty_rdata_and_an_update() {
    let flows = check_against_tshark("empty", TSHARK_EMPTY);
    for (file, _, o) in &flows {
        assert!(o.anomalies.is_empty(), "{file}: {o:?}");
    }
    assert_eq!(
        summaries(&flows),
        ["e.x NULL", "e.x APL", "e.x TXT", "UPDATE x SOA"]
    );
    // Each answer holds its one record with RDLENGTH 0; dnsmasq refuses the update.
    let answers: Vec<&str> = flows
        .iter()
        .flat_map(|(_, _, o)| &o.facts)
        .filter(|f| f.starts_with("rx "))
        .map(|f| f.split("] ").nth(1).unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            "rcode=0 answers=1",
            "rcode=0 answers=1",
            "rcode=0 answers=1",
            "rcode=5 answers=0"
        ]
    );
}

#[test]
fn recorded_junk_datagrams_before_a_query_do_not_end_the_flow() {
    let flows = check_against_tshark("junk", TSHARK_JUNK);
    let [(_, _, o)] = &flows[..] else {
        panic!("one flow: {flows:?}");
    };
    // Text shorter than a header, opcode 10, a "response" that does not add up (and that
    // nothing asked for): nothing a server acts on, nothing that blinds.
    assert_eq!(
        o.anomalies,
        [
            ParserAnomaly::Resync,
            ParserAnomaly::Resync,
            ParserAnomaly::Resync,
            ParserAnomaly::UnsolicitedResponse
        ]
    );
    assert!(o.anomalies.iter().all(|a| !a.blinds()));
    assert_eq!(
        facts_without_ids(o),
        [
            "tx 0 [a.x A] qname=a.x qtype=1 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1"
        ]
    );
}

#[test]
fn recorded_forward_pointer_is_followed_as_dnsmasq_does() {
    let flows = check_against_tshark("fwdptr", TSHARK_FWDPTR);
    for (file, _, o) in &flows {
        assert!(o.anomalies.is_empty(), "{file}: {o:?}");
    }
    assert_eq!(
        facts_without_ids(&flows[0].2),
        [
            "tx 0 [a.x A] qname=a.x qtype=1 qclass=1",
            "rx 0 Some(0) [NOERROR] rcode=0 answers=1",
            "tx 1 [fwd.b.x A] qname=fwd.b.x qtype=1 qclass=1",
            "rx 1 Some(0) [NOERROR] rcode=0 answers=1",
            "tx 2 [b.x A] qname=b.x qtype=1 qclass=1",
            "rx 2 Some(0) [NOERROR] rcode=0 answers=1",
        ]
    );
}

/// Whatever detection calls a DNS request over UDP, the parser reports as a transaction or
/// answers with a blinding anomaly: a datagram never makes a flow DNS and then slips past
/// its parser. Checked on mutations (one to three bytes, mostly in the header and the
/// question) of every recorded query, and on their pointers redirected anywhere.
#[test]
fn every_request_detection_accepts_is_reported_or_blinds() {
    use crate::detect::{Detection, Transport, detect};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dns/testdata");
    let mut queries = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_str().unwrap().contains("udp") {
            for (_, m) in segments(&std::fs::read(&p).unwrap()) {
                if m.len() >= HEADER && m[2] & 0x80 == 0 {
                    queries.push(m);
                }
            }
        }
    }
    assert!(queries.len() > 30, "{}", queries.len());
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut accepted, mut reported) = (0, 0);
    for _ in 0..60_000 {
        let mut m = queries[(next() % queries.len() as u64) as usize].clone();
        for _ in 0..1 + next() % 3 {
            let span = if next() % 4 == 0 {
                m.len()
            } else {
                40.min(m.len())
            };
            let at = (next() % span as u64) as usize;
            m[at] = match next() % 4 {
                0 => 0xc0,
                1 => (next() % 64) as u8,
                _ => next() as u8,
            };
        }
        if detect(Transport::Udp, Direction::ToServer, &m) != Detection::Proto(AppProto::Dns)
            || m[2] & 0x80 != 0
        {
            continue;
        }
        accepted += 1;
        let o = udp(&[m.clone()]);
        let tx = o.facts.iter().any(|f| f.starts_with("tx "));
        reported += usize::from(tx);
        assert!(
            tx || o.anomalies.iter().any(|a| a.blinds()),
            "{m:02x?}: {o:?}"
        );
    }
    assert!(
        accepted > 10_000 && reported == accepted,
        "{accepted} {reported}"
    );
}
