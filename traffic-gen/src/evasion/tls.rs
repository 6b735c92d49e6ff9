//! TLS tricks: the ClientHello's SNI split across records or segments.

use super::WEB;
use super::capture::{Capture, PSH, Side};
use crate::generate::MSS;

pub(super) fn u16be(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

pub(super) fn tls_ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&u16be(body.len()));
    out.extend_from_slice(body);
}

/// A handshake message: type, 24-bit length, body.
pub(super) fn tls_handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// A TLS 1.3 ClientHello handshake message as browsers send it (without the record).
pub(super) fn client_hello(cap: &mut Capture, sni: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&cap.bytes::<32>());
    b.push(32);
    b.extend_from_slice(&cap.bytes::<32>());
    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    b.extend_from_slice(&u16be(suites.len() * 2));
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    let mut name = vec![0];
    name.extend_from_slice(&u16be(sni.len()));
    name.extend_from_slice(sni.as_bytes());
    let mut list = u16be(name.len()).to_vec();
    list.extend_from_slice(&name);
    tls_ext(&mut ext, 0, &list);
    tls_ext(&mut ext, 23, &[]);
    tls_ext(&mut ext, 65_281, &[0]);
    tls_ext(&mut ext, 10, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    tls_ext(&mut ext, 11, &[1, 0]);
    let alpn = b"\x00\x0c\x02h2\x08http/1.1";
    tls_ext(&mut ext, 16, alpn);
    tls_ext(
        &mut ext,
        13,
        &[
            0, 16, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08,
            0x06, 0x06, 0x01,
        ],
    );
    tls_ext(&mut ext, 43, &[4, 0x03, 0x04, 0x03, 0x03]);
    tls_ext(&mut ext, 45, &[1, 1]);
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&cap.bytes::<32>());
    tls_ext(&mut ext, 51, &ks);
    b.extend_from_slice(&u16be(ext.len()));
    b.extend_from_slice(&ext);
    tls_handshake(1, &b)
}

pub(super) fn tls_record(out: &mut Vec<u8>, ty: u8, version: u16, body: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&u16be(body.len()));
    out.extend_from_slice(body);
}

/// ServerHello (TLS 1.3), ChangeCipherSpec and the encrypted rest of the server's flight.
pub(super) fn server_flight(cap: &mut Capture, session: &[u8]) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&cap.bytes::<32>());
    b.push(session.len() as u8);
    b.extend_from_slice(session);
    b.extend_from_slice(&[0x13, 0x01, 0]);
    let mut ext = Vec::new();
    tls_ext(&mut ext, 43, &[0x03, 0x04]);
    let mut ks = vec![0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&cap.bytes::<32>());
    tls_ext(&mut ext, 51, &ks);
    b.extend_from_slice(&u16be(ext.len()));
    b.extend_from_slice(&ext);
    let mut out = Vec::new();
    tls_record(&mut out, 0x16, 0x0303, &tls_handshake(2, &b));
    tls_record(&mut out, 0x14, 0x0303, &[1]);
    let enc: Vec<u8> = (0..2_100).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut out, 0x17, 0x0303, &enc);
    out
}

/// A TLS connection to 443 whose ClientHello (SNI x.evil.test) is sent in one record, or
/// in two cut inside the server name ("x.ev" | "il.test"), in TCP segments of `segment`
/// bytes.
pub(super) fn tls_session(cap: &mut Capture, split_in_sni: bool, segment: usize) {
    let mut c = cap.conn((WEB, 443));
    c.handshake(cap);
    let sni = "x.evil.test";
    let hello = client_hello(cap, sni);
    // Handshake header 4, version 2, random 32, session id length 1: the id is 39..71.
    let session = hello[39..71].to_vec();
    let mut recs = Vec::new();
    let cut = hello
        .windows(sni.len())
        .position(|w| w == sni.as_bytes())
        .map(|p| p + 4)
        .filter(|_| split_in_sni);
    match cut {
        Some(at) => {
            tls_record(&mut recs, 0x16, 0x0301, &hello[..at]);
            tls_record(&mut recs, 0x16, 0x0301, &hello[at..]);
        }
        None => tls_record(&mut recs, 0x16, 0x0301, &hello),
    }
    let n = recs.chunks(segment).count();
    for (k, part) in recs.chunks(segment).enumerate() {
        let last = k + 1 == n;
        c.seg(cap, Side::Client, if last { PSH } else { 0 }, part);
        if !last && k % 2 == 1 {
            c.ack(cap, Side::Server);
        }
    }
    let flight = server_flight(cap, &session);
    c.send(cap, Side::Server, &flight);
    let mut fin = Vec::new();
    tls_record(&mut fin, 0x14, 0x0303, &[1]);
    let finished: Vec<u8> = (0..53).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut fin, 0x17, 0x0303, &finished);
    let request: Vec<u8> = (0..120).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut fin, 0x17, 0x0303, &request);
    let mut answer = Vec::new();
    let body: Vec<u8> = (0..300).map(|_| cap.bytes::<1>()[0]).collect();
    tls_record(&mut answer, 0x17, 0x0303, &body);
    c.exchange(cap, &fin, &answer);
    c.close(cap);
}

pub(super) fn tls_sni_split_records(cap: &mut Capture) {
    tls_session(cap, true, MSS);
}

pub(super) fn tls_one_byte_segments(cap: &mut Capture) {
    tls_session(cap, false, 1);
}

pub(super) fn baseline_tls(cap: &mut Capture) {
    tls_session(cap, false, MSS);
}
