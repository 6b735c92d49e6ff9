use super::*;
use proto_parsers::contract::{Fact, ParserAnomaly};

type Seen = std::sync::Arc<std::sync::Mutex<Vec<(Direction, Vec<u8>)>>>;

/// Parses newline-terminated lines; proves the carry buffer hands back partial lines whole.
struct Lines {
    seen: Vec<(Direction, Vec<u8>)>,
    out: Seen,
}

impl StreamParser for Lines {
    fn proto(&self) -> AppProto {
        AppProto::Redis
    }
    fn feed(&mut self, dir: Direction, data: &[u8], _: &mut dyn FactSink) -> Progress {
        let mut off = 0;
        while let Some(nl) = data[off..].iter().position(|&b| b == b'\n') {
            self.seen.push((dir, data[off..off + nl].to_vec()));
            off += nl + 1;
        }
        Progress::NeedMore { consumed: off }
    }
    fn gap(&mut self, _: Direction, _: u32) -> bool {
        false
    }
    fn end(&mut self, _: &mut dyn FactSink) {
        self.out.lock().unwrap().extend(self.seen.drain(..));
    }
}

#[derive(Default)]
struct NullSink;
impl FactSink for NullSink {
    fn fact(&mut self, _: &Fact<'_>) {}
    fn anomaly(&mut self, _: ParserAnomaly) {}
}

fn registry(out: &Seen) -> ParserRegistry {
    let mut r = ParserRegistry::empty();
    let o = out.clone();
    r.register(
        AppProto::Redis,
        Arc::new(move |_| {
            Box::new(Lines {
                seen: Vec::new(),
                out: o.clone(),
            }) as Box<dyn StreamParser>
        }),
    );
    r
}

#[test]
fn detection_across_every_split_then_parsing_sees_every_byte() {
    let msg: &[u8] = b"*1\r\n$4\r\nPING\r\n";
    for split in 1..msg.len() {
        let out = Default::default();
        let reg = registry(&out);
        let mut c = InspectCounters::default();
        let mut f = FlowInspector::new(false);
        let (a, b) = msg.split_at(split);
        let e1 = f.on_chunk(
            Direction::ToServer,
            Chunk::Data(a),
            &reg,
            &mut NullSink,
            &mut c,
        );
        let e2 = f.on_chunk(
            Direction::ToServer,
            Chunk::Data(b),
            &reg,
            &mut NullSink,
            &mut c,
        );
        let detected = [e1, e2].contains(&InspectEvent::Detected(AppProto::Redis));
        assert!(detected, "split {split}: {e1:?} {e2:?}");
        f.end(&mut NullSink, &mut c);
        let lines: Vec<Vec<u8>> = out.lock().unwrap().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(
            lines,
            vec![b"*1\r".to_vec(), b"$4\r".to_vec(), b"PING\r".to_vec()],
            "split {split}"
        );
    }
}

#[test]
fn unknown_both_ways_is_tcp_and_stops_inspection() {
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"\x00\x01garbage"),
        &reg,
        &mut NullSink,
        &mut c,
    );
    assert_eq!(
        e,
        InspectEvent::Nothing,
        "the server may still speak a known protocol"
    );
    let e = f.on_chunk(
        Direction::ToClient,
        Chunk::Data(b"\xffmore garbage"),
        &reg,
        &mut NullSink,
        &mut c,
    );
    assert_eq!(e, InspectEvent::Detected(AppProto::Tcp));
    assert!(!f.wants_data());
}

#[test]
fn server_first_protocol_is_detected_from_the_server_side() {
    // A MariaDB greeting: 3-byte length, sequence 0, protocol 10, version string.
    let mut greet = vec![0x4a, 0, 0, 0, 10];
    greet.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
    greet.extend_from_slice(&[0u8; 40]);
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToClient,
        Chunk::Data(&greet),
        &reg,
        &mut NullSink,
        &mut c,
    );
    assert_eq!(e, InspectEvent::Detected(AppProto::Mysql));
}

#[test]
fn gap_before_detection_gives_up_detection() {
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Gap(100),
        &reg,
        &mut NullSink,
        &mut c,
    );
    assert_eq!(e, InspectEvent::Detected(AppProto::Tcp));
    assert_eq!(c.gaps_before_detection, 1);
}

#[test]
fn parser_that_gives_up_on_a_gap_makes_the_flow_opaque() {
    let out = Default::default();
    let reg = registry(&out);
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"PING\r\n"),
        &reg,
        &mut NullSink,
        &mut c,
    );
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Gap(10),
        &reg,
        &mut NullSink,
        &mut c,
    );
    assert_eq!(e, InspectEvent::Opaque("gap"));
    assert!(!f.wants_data());
}

#[test]
fn carry_is_bounded() {
    let out = Default::default();
    let reg = registry(&out);
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(false);
    f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"*1\r\n$4\r\nPING\r\n"),
        &reg,
        &mut NullSink,
        &mut c,
    );
    let big = vec![b'a'; 16 * 1024];
    let mut last = InspectEvent::Nothing;
    for _ in 0..8 {
        last = f.on_chunk(
            Direction::ToServer,
            Chunk::Data(&big),
            &reg,
            &mut NullSink,
            &mut c,
        );
        if last != InspectEvent::Nothing {
            break;
        }
    }
    assert_eq!(last, InspectEvent::Opaque("carry_overflow"));
    assert_eq!(c.carry_overflow, 1);
}

#[test]
fn udp_decides_on_the_first_datagram() {
    let reg = ParserRegistry::empty();
    let mut c = InspectCounters::default();
    let mut f = FlowInspector::new(true);
    let e = f.on_chunk(
        Direction::ToServer,
        Chunk::Data(b"\x01\x02\x03"),
        &reg,
        &mut NullSink,
        &mut c,
    );
    assert_eq!(e, InspectEvent::Detected(AppProto::Udp));
}
