//! DNS messages (RFC 1035), with EDNS (RFC 6891).

pub const DNS_A: u16 = 1;
pub const DNS_SOA: u16 = 6;
pub const DNS_AAAA: u16 = 28;
pub const DNS_SRV: u16 = 33;
const DNS_OPT: u16 = 41;

pub const DNS_NOERROR: u8 = 0;
pub const DNS_NXDOMAIN: u8 = 3;

/// A name in wire form (uncompressed).
fn dns_name(b: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        b.push(label.len().min(63) as u8);
        b.extend_from_slice(label.as_bytes().get(..63).unwrap_or(label.as_bytes()));
    }
    b.push(0);
}

fn dns_header(b: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        b.extend_from_slice(&c.to_be_bytes());
    }
}

/// An EDNS(0) OPT pseudo-record advertising a 1232-byte UDP payload.
fn dns_opt(b: &mut Vec<u8>) {
    b.push(0);
    b.extend_from_slice(&DNS_OPT.to_be_bytes());
    b.extend_from_slice(&1232u16.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
}

/// A question and how it is asked.
#[derive(Clone, Copy, Debug)]
pub struct DnsAsk<'a> {
    pub id: u16,
    pub name: &'a str,
    pub qtype: u16,
    /// With an EDNS(0) OPT record.
    pub edns: bool,
}

/// A recursive query.
pub fn dns_query(out: &mut Vec<u8>, q: &DnsAsk<'_>) {
    dns_header(out, q.id, 0x0100, [1, 0, 0, u16::from(q.edns)]);
    dns_name(out, q.name);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if q.edns {
        dns_opt(out);
    }
}

/// One answer record's data.
#[derive(Clone, Debug)]
pub enum DnsData {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// priority, weight, port, target
    Srv(u16, u16, u16, String),
}

/// The response to [`dns_query`]: answers (each owned by the question's name, by a
/// compression pointer) or, for NXDOMAIN, the zone's SOA in the authority section.
pub fn dns_response(
    out: &mut Vec<u8>,
    q: &DnsAsk<'_>,
    rcode: u8,
    answers: &[DnsData],
    soa_zone: &str,
) {
    let (id, name, qtype, edns) = (q.id, q.name, q.qtype, q.edns);
    let nx = rcode != DNS_NOERROR;
    let flags = 0x8180 | u16::from(rcode & 0x0f);
    let an = if nx { 0 } else { answers.len() as u16 };
    dns_header(out, id, flags, [1, an, u16::from(nx), u16::from(edns)]);
    dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if !nx {
        for a in answers {
            // A pointer to the question's name at offset 12.
            out.extend_from_slice(&[0xc0, 0x0c]);
            let (ty, rdata) = match a {
                DnsData::A(ip) => (DNS_A, ip.to_vec()),
                DnsData::Aaaa(ip) => (DNS_AAAA, ip.to_vec()),
                DnsData::Srv(prio, weight, port, target) => {
                    let mut r = Vec::with_capacity(target.len() + 8);
                    r.extend_from_slice(&prio.to_be_bytes());
                    r.extend_from_slice(&weight.to_be_bytes());
                    r.extend_from_slice(&port.to_be_bytes());
                    dns_name(&mut r, target);
                    (DNS_SRV, r)
                }
            };
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&30u32.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
    } else {
        dns_name(out, soa_zone);
        out.extend_from_slice(&DNS_SOA.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&30u32.to_be_bytes());
        let mut r = Vec::with_capacity(64);
        dns_name(&mut r, &format!("ns.dns.{soa_zone}"));
        dns_name(&mut r, &format!("hostmaster.{soa_zone}"));
        for v in [1_795_300_000u32, 7200, 1800, 86_400, 30] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(&r);
    }
    if edns {
        dns_opt(out);
    }
}
