use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::*;
use crate::generate::MSS;

fn frames(flows: u64, seed: u64) -> (Vec<(u64, Vec<u8>)>, MixStats) {
    let mut v = Vec::new();
    let stats = generate(flows, seed, &mut |ts, f| v.push((ts, f.to_vec())));
    (v, stats)
}

#[test]
fn deterministic_for_a_seed() {
    let (a, sa) = frames(300, 5);
    let (b, sb) = frames(300, 5);
    assert_eq!(sa, sb);
    assert!(a == b, "same seed, same bytes");
    let (c, _) = frames(300, 6);
    assert!(a != c, "the seed matters");
    assert_eq!(sa.total.sessions, 300);
    assert_eq!(sa.total.packets as usize, a.len());
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0), "timestamps increase");
}

type Tuple = (IpAddr, u16, IpAddr, u16);

/// Per direction of each TCP connection: every segment starts where the previous one
/// ended and acknowledges all the peer sent; every connection opens with a handshake and
/// ends with a FIN each way. UDP datagrams are DNS to or from port 53.
#[test]
fn tcp_sessions_are_complete_and_consistent() {
    let (v, stats) = frames(600, 11);
    let mut next: HashMap<Tuple, u32> = HashMap::new();
    let mut syns = 0;
    let mut fins = 0;
    let mut udp = 0;
    let mut biggest = 0;
    for (_, f) in &v {
        let p = SlicedPacket::from_ethernet(f).expect("decodes");
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4: {:?}", p.net);
        };
        let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
        match p.transport {
            Some(TransportSlice::Tcp(t)) => {
                let tuple: Tuple = (
                    IpAddr::V4(src),
                    t.source_port(),
                    IpAddr::V4(dst),
                    t.destination_port(),
                );
                let seq = t.sequence_number();
                if let Some(want) = next.get(&tuple) {
                    assert_eq!(seq, *want, "{tuple:?}: sequence gap");
                }
                let (syn, fin) = (t.syn(), t.fin());
                syns += usize::from(syn && !t.ack());
                fins += usize::from(fin);
                let used = t.payload().len() as u32 + u32::from(syn || fin);
                next.insert(tuple, seq.wrapping_add(used));
                let rev = (tuple.2, tuple.3, tuple.0, tuple.1);
                match (t.ack(), next.get(&rev)) {
                    (true, Some(peer)) => {
                        assert_eq!(t.acknowledgment_number(), *peer, "{tuple:?}: stale ack")
                    }
                    (false, None) => assert!(syn, "first segment must be a SYN"),
                    (a, b) => panic!("{tuple:?}: ack {a} with peer {b:?}"),
                }
                biggest = biggest.max(t.payload().len());
            }
            Some(TransportSlice::Udp(u)) => {
                assert!(u.source_port() == 53 || u.destination_port() == 53);
                udp += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let tcp_flows = stats.total.sessions - stats.proto(Proto::Dns).flows;
    assert_eq!(syns as u64, tcp_flows, "one SYN per TCP flow");
    assert_eq!(fins as u64, 2 * tcp_flows, "a FIN each way");
    assert_eq!(udp, stats.proto(Proto::Dns).packets);
    assert_eq!(biggest, MSS, "large responses are cut at the MSS");
    for p in Proto::ALL {
        assert!(stats.proto(p).flows > 0, "{p:?} has flows");
    }
}
