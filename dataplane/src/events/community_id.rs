//! Community ID v1 flow hashing (corelight/community-id-spec), so that an event of ours
//! joins on one string with Zeek's, Suricata's and Arkime's records of the same flow.
//!
//! `1:` then the base64 of SHA-1 over: seed (2 bytes) . lower address . higher address .
//! proto (1) . 0 (1) . lower port (2) . higher port (2), all in network byte order, where
//! "lower" orders the endpoints so both directions of a flow hash alike. Ports are hashed
//! only for TCP, UDP, SCTP, ICMP and ICMPv6; for ICMP the type and code stand in for them
//! as Zeek maps them (see [`icmp_ports`]).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_SCTP: u8 = 132;

/// Length of a v1 id: `1:` and 28 base64 characters (20 bytes of SHA-1, padded).
pub const COMMUNITY_ID_LEN: usize = 30;

/// The Community ID v1 of a flow. For ICMP and ICMPv6 pass the message type as `src_port`
/// and the code as `dst_port`; for protocols without ports the ports are ignored.
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    proto: u8,
) -> String {
    let mut out = String::with_capacity(COMMUNITY_ID_LEN);
    write_community_id(seed, src, dst, src_port, dst_port, proto, &mut out);
    out
}

/// [`community_id_v1`] into a reused buffer: `out` is cleared and refilled, so once it has
/// held one id no further allocation happens (the per-event path in the workers).
pub fn write_community_id(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    out: &mut String,
) {
    let digest = community_id_digest(seed, src, dst, src_port, dst_port, proto);
    out.clear();
    out.reserve(COMMUNITY_ID_LEN);
    out.push_str("1:");
    STANDARD.encode_string(digest, out);
}

/// The raw 20-byte SHA-1 the id renders.
fn community_id_digest(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    proto: u8,
) -> [u8; 20] {
    let (sport, dport, one_way) = match proto {
        PROTO_ICMP | PROTO_ICMPV6 => icmp_ports(proto, src_port, dst_port),
        _ => (src_port, dst_port, false),
    };
    let has_ports = matches!(
        proto,
        PROTO_TCP | PROTO_UDP | PROTO_SCTP | PROTO_ICMP | PROTO_ICMPV6
    );
    let src_b = Octets::of(src);
    let dst_b = Octets::of(dst);
    let (s, d) = (src_b.as_slice(), dst_b.as_slice());
    // The spec orders by address, then port; a one-way ICMP message keeps its direction
    // because no reply will ever share its id.
    let in_order = one_way || s < d || (s == d && has_ports && sport < dport);
    let (a, b, pa, pb) = if in_order {
        (s, d, sport, dport)
    } else {
        (d, s, dport, sport)
    };

    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if has_ports {
        h.update(pa.to_be_bytes());
        h.update(pb.to_be_bytes());
    }
    h.finalize().into()
}

/// An address in network byte order without allocating.
enum Octets {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Octets {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Octets::V4(a.octets()),
            IpAddr::V6(a) => Octets::V6(a.octets()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Octets::V4(a) => a,
            Octets::V6(a) => a,
        }
    }
}

/// Zeek's port equivalents for ICMP: a request/reply type pairs with its counterpart, so both
/// directions of an exchange get one id and the code does not matter; any other type is a
/// one-way message whose code stands in for the destination port and whose direction is
/// kept. Returns `(src port, dst port, one_way)`.
fn icmp_ports(proto: u8, ty: u16, code: u16) -> (u16, u16, bool) {
    let counterpart = if proto == PROTO_ICMPV6 {
        icmpv6_counterpart(ty)
    } else {
        icmpv4_counterpart(ty)
    };
    match counterpart {
        Some(c) => (ty, c, false),
        None => (ty, code, true),
    }
}

fn icmpv4_counterpart(ty: u16) -> Option<u16> {
    Some(match ty {
        8 => 0,   // echo -> echo reply
        0 => 8,   // echo reply -> echo
        13 => 14, // timestamp
        14 => 13,
        15 => 16, // information
        16 => 15,
        10 => 9, // router solicitation -> advertisement
        9 => 10,
        17 => 18, // address mask
        18 => 17,
        _ => return None,
    })
}

fn icmpv6_counterpart(ty: u16) -> Option<u16> {
    Some(match ty {
        128 => 129, // echo request -> reply
        129 => 128,
        130 => 131, // MLD query -> report
        131 => 130,
        133 => 134, // router solicitation -> advertisement
        134 => 133,
        135 => 136, // neighbour solicitation -> advertisement
        136 => 135,
        139 => 140, // node information query -> reply ("who are you")
        140 => 139,
        144 => 145, // home agent address discovery request -> reply
        145 => 144,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(proto, src, dst, src port or ICMP type, dst port or ICMP code, id with seed 0, id
    /// with seed 1)`.
    ///
    /// From corelight/community-id-spec `baseline/baseline_deflt.json` and
    /// `baseline/baseline_seed1.json` (commit c4ec2bc40d65ddbcbdd642582bf5609797a80772),
    /// computed by the reference implementation over the spec's pcaps. The baseline lists
    /// ICMP by its mapped ports; for a request/reply type the second port is the counterpart
    /// type, which the code never changes, so those rows pass code 0 here.
    #[rustfmt::skip]
    const BASELINE: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
        (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 0, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
        (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
        (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.1", "192.168.0.89", 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
        (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        // RSVP (46) has no ports: whatever is passed is left out of the hash.
        (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        (46, "10.1.12.2", "10.1.12.1", 1234, 80, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    ];

    /// From corelight/pycommunityid `tests/communityid_test.py` (commit
    /// 0a1d0bada3cfe07e38a78ece023ef90396f2df17), which pass ICMP as (type, code):
    /// one-way types keep their direction and hash their code; a request/reply type ignores it.
    #[rustfmt::skip]
    const PYCOMMUNITYID: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
        (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.89", "192.168.0.1", 20, 0, "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=", "1:lCXHHxavE1Vq3oX9NH5ladQg02o="),
        (1, "192.168.0.89", "192.168.0.1", 20, 1, "1:tz/fHIDUHs19NkixVVoOZywde+I=", "1:Ie3wmFyxiEyikbsbcO03d2nh+PM="),
        (1, "192.168.0.1", "192.168.0.89", 0, 20, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "3ffe:507:0:1:260:97ff:fe07:69ea", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=", "1:OlOWx9psIbBFi7lOCw/4MhlKR9M="),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:507:0:1:260:97ff:fe07:69ea", 3, 0, "1:/OGBt9BN1ofenrmSPWYicpij2Vc=", "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE="),
        (132, "192.168.170.8", "192.168.170.56", 7, 80, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="),
        (132, "192.168.170.56", "192.168.170.8", 80, 7, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="),
        (6, "10.0.0.1", "10.0.0.2", 10, 11569, "1:SXBGMX1lBOwhhoDrZynfROxnhnM=", "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo="),
        (46, "10.1.24.4", "10.1.12.1", 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="),
        (46, "10.1.12.1", "10.1.24.4", 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="),
    ];

    fn check(table: &[(u8, &str, &str, u16, u16, &str, &str)]) {
        for &(proto, src, dst, sp, dp, seed0, seed1) in table {
            let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(
                community_id_v1(0, s, d, sp, dp, proto),
                seed0,
                "{proto} {src} {dst} {sp} {dp}"
            );
            assert_eq!(
                community_id_v1(1, s, d, sp, dp, proto),
                seed1,
                "seed 1: {proto} {src} {dst} {sp} {dp}"
            );
        }
    }

    #[test]
    fn matches_the_spec_baseline() {
        check(BASELINE);
    }

    #[test]
    fn matches_the_reference_implementation_tests() {
        check(PYCOMMUNITYID);
    }

    #[test]
    fn both_directions_share_an_id_except_one_way_icmp() {
        let a = "10.0.1.5".parse().unwrap();
        let b = "10.0.2.7".parse().unwrap();
        assert_eq!(
            community_id_v1(0, a, b, 40112, 8080, 6),
            community_id_v1(0, b, a, 8080, 40112, 6)
        );
        // Same address on both ends (loopback): the ports decide the order.
        assert_eq!(
            community_id_v1(0, a, a, 40112, 8080, 17),
            community_id_v1(0, a, a, 8080, 40112, 17)
        );
        // Destination unreachable is one-way: the reverse is a different "flow".
        assert_ne!(
            community_id_v1(0, a, b, 3, 1, 1),
            community_id_v1(0, b, a, 3, 1, 1)
        );
        // ICMPv6 echo request and reply pair up whatever their codes.
        let x = "fd00::1".parse().unwrap();
        let y = "fd00::2".parse().unwrap();
        assert_eq!(
            community_id_v1(0, x, y, 128, 0, 58),
            community_id_v1(0, y, x, 129, 7, 58)
        );
    }

    #[test]
    fn the_reused_buffer_is_refilled_without_growing() {
        let a = "192.168.1.52".parse().unwrap();
        let b = "8.8.8.8".parse().unwrap();
        let mut out = String::from("left over from a previous event");
        write_community_id(0, a, b, 54585, 53, 17, &mut out);
        assert_eq!(out, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
        assert_eq!(out.len(), COMMUNITY_ID_LEN);
        let (ptr, cap) = (out.as_ptr(), out.capacity());
        write_community_id(1, a, b, 54585, 53, 17, &mut out);
        assert_eq!(out, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=");
        assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap));
    }
}
