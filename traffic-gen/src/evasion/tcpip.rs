//! TCP/IP normalisation tricks (HTTP/1 on port 80): decoys the receiver discards, SYN and RST
//! out of place, overlaps, retransmissions that differ, gaps, IP fragments.

use super::WEB;
use super::capture::{Capture, PSH, RST, SYN, Side, ipv4_frame, tcp_bytes};
use super::http1::{http_req, ok};

/// `GET /admin` and a decoy of the same length that deny.yaml allows.
pub(super) fn admin_and_decoy() -> (String, String) {
    (http_req("GET", "/admin", ""), http_req("GET", "/index", ""))
}

/// A decoy segment (built by `decoy`) at the same sequence numbers as the real request,
/// the real request, the server's answer.
pub(super) fn decoy_session(cap: &mut Capture, no_ack: bool, bad_checksum: bool) {
    let (real, decoy) = admin_and_decoy();
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = if no_ack { None } else { c.ack_of(Side::Client) };
    c.raw(
        cap,
        Side::Client,
        (seq, ack),
        PSH,
        decoy.as_bytes(),
        bad_checksum,
    );
    c.seg(cap, Side::Client, PSH, real.as_bytes());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

pub(super) fn tcp_bad_checksum_decoy(cap: &mut Capture) {
    decoy_session(cap, false, true);
}

pub(super) fn tcp_no_ack_decoy(cap: &mut Capture) {
    decoy_session(cap, true, false);
}

pub(super) fn tcp_second_syn(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    // A SYN with a new ISN on the established connection; the server answers with a
    // challenge ACK (RFC 5961 section 4) and keeps its state.
    let seq = c.next_seq(Side::Client);
    c.raw(
        cap,
        Side::Client,
        (seq.wrapping_add(0x3c00_0000), None),
        SYN,
        &[],
        false,
    );
    c.ack(cap, Side::Server);
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

pub(super) fn tcp_synack_first(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    // From the client's address and port: a SYN-ACK nobody asked for. The server resets
    // it (the reset's sequence number is the stray segment's acknowledgement).
    let stray_ack: u32 = 0x1357_9bdf;
    c.raw(
        cap,
        Side::Client,
        (0x2468_ace0, Some(stray_ack)),
        SYN,
        &[],
        false,
    );
    c.raw(cap, Side::Server, (stray_ack, None), RST, &[], false);
    cap.pause(2_000_000);
    c.handshake(cap);
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

pub(super) fn tcp_overlap_ooo(cap: &mut Capture) {
    let real = http_req("GET", "/admin", "");
    let mut decoy = real.clone().into_bytes();
    // "/admix": allowed. Same length, differs at one byte.
    decoy[9] = b'x';
    let r = real.as_bytes();
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let base = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    // "GET /adm" in order; byte 8 ('i') held back; then two copies of bytes 9.. that
    // disagree ("x ..." first, "n ..." second); then byte 8.
    c.raw(cap, Side::Client, (base, ack), 0, &r[..8], false);
    let at9 = base.wrapping_add(9);
    c.raw(cap, Side::Client, (at9, ack), PSH, &decoy[9..], false);
    c.raw(cap, Side::Client, (at9, ack), PSH, &r[9..], false);
    c.raw(
        cap,
        Side::Client,
        (base.wrapping_add(8), ack),
        0,
        &r[8..9],
        false,
    );
    c.skip(Side::Client, r.len());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

pub(super) fn tcp_retransmit_different(cap: &mut Capture) {
    let first = http_req("GET", "/aaaaa", "");
    let real = http_req("GET", "/admin", "");
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    c.raw(cap, Side::Client, (seq, ack), PSH, first.as_bytes(), false);
    // No acknowledgement (lost beyond the tap, says the sender's timer): the same range
    // again, other bytes.
    cap.pause(200_000_000);
    c.seg(cap, Side::Client, PSH, real.as_bytes());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

pub(super) fn tcp_rst_out_of_window(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    // Far outside the server's receive window: the server ignores it (RFC 5961 section 3).
    c.raw(
        cap,
        Side::Client,
        (seq.wrapping_add(0x2000_0000), None),
        RST,
        &[],
        false,
    );
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

pub(super) fn tcp_midstream(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.assume_established();
    // The connection carried a first exchange before the capture started.
    c.skip(Side::Client, 517);
    c.skip(Side::Server, 2_233);
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

pub(super) fn tcp_gap(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "");
    let r = req.as_bytes();
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    // "GET /ad", then "min HTTP/1.1\r\n" which the capture lost, then the rest. The
    // server acknowledges all of it.
    c.seg(cap, Side::Client, 0, &r[..7]);
    c.skip(Side::Client, 14);
    c.seg(cap, Side::Client, PSH, &r[21..]);
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

/// A `GET /admin` of exactly `len` bytes.
pub fn admin_of_len(len: usize) -> String {
    let base = http_req("GET", "/admin", "X-Pad: \r\n");
    let pad = "p".repeat(len.saturating_sub(base.len()));
    http_req("GET", "/admin", &format!("X-Pad: {pad}\r\n"))
}

pub(super) fn ip_frag_40(cap: &mut Capture) {
    // 20 bytes of TCP header + 300 of request = 40 fragments of 8 bytes.
    let req = admin_of_len(300);
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    let s = c.seg_with(Side::Client, (seq, ack), PSH, req.as_bytes());
    let l4 = tcp_bytes(&s);
    debug_assert_eq!(l4.len(), 320);
    for (k, f) in l4.chunks(8).enumerate() {
        let more = (k + 1) * 8 < l4.len();
        cap.push(ipv4_frame(s.src.0, s.dst.0, s.ip_id, (k * 8, more), f));
    }
    c.skip(Side::Client, req.len());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}

pub(super) fn ip_frag_overlap(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "");
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    let seq = c.next_seq(Side::Client);
    let ack = c.ack_of(Side::Client);
    let s = c.seg_with(Side::Client, (seq, ack), PSH, req.as_bytes());
    let l4 = tcp_bytes(&s);
    // Bytes 24..32 of the segment are "/admin H". The decoy "/Wdmix H" keeps the TCP
    // checksum ('a' - 10 and 'n' + 10 in the same 16-bit column), so whichever copy a
    // receiver keeps, the segment is valid: "/Wdmix" (allowed) or "/admin".
    debug_assert_eq!(&l4[24..32], b"/admin H");
    let mut decoy = l4[24..32].to_vec();
    decoy[1] = b'W';
    decoy[5] = b'x';
    let (src, dst, id) = (s.src.0, s.dst.0, s.ip_id);
    cap.push(ipv4_frame(src, dst, id, (0, true), &l4[..24]));
    cap.push(ipv4_frame(src, dst, id, (24, true), &decoy));
    cap.push(ipv4_frame(src, dst, id, (24, true), &l4[24..32]));
    cap.push(ipv4_frame(src, dst, id, (32, false), &l4[32..]));
    c.skip(Side::Client, req.len());
    c.send(cap, Side::Server, ok("admin\n").as_bytes());
    c.ack(cap, Side::Client);
    c.close(cap);
}
