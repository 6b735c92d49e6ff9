//! HTTP/1 tricks: leniencies of servers' request parsing, long heads, pipelining, path forms, framing conflicts.

use std::fmt::Write as _;

use super::WEB;
use super::capture::{Capture, FIN, Side};

pub(super) const HOST: &str = "web.test";

/// A request with the usual headers plus `extra` (each line ending in CRLF).
pub(super) fn http_req(method: &str, target: &str, extra: &str) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: evasion/1\r\nAccept: */*\r\n{extra}\r\n"
    )
}

pub(super) fn http_resp(status: u16, reason: &str, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

pub(super) fn ok(body: &str) -> String {
    http_resp(200, "OK", body, "")
}

/// A whole HTTP/1 connection to port 80: handshake, one exchange, close.
pub(super) fn http1_session(cap: &mut Capture, request: &[u8], response: &[u8]) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(cap, request, response);
    c.close(cap);
}

/// A `GET /admin` whose head is `total` bytes, padded with `X-Pad-N` fields of at most
/// `field` bytes each.
pub fn padded_admin(total: usize, field: usize) -> String {
    let base = http_req("GET", "/admin", "");
    let mut extra = String::new();
    let mut n = 0;
    loop {
        let have = base.len() + extra.len();
        if have >= total {
            break;
        }
        let name = format!("X-Pad-{n:03}: ");
        // name, value, CRLF
        let room = total - have;
        let want = room.min(field);
        let value_len = want.saturating_sub(name.len() + 2).max(1);
        extra.push_str(&name);
        // Varied, printable filler (cookies and tokens look like this).
        for k in 0..value_len {
            extra.push((b'a' + ((k * 7 + n * 3) % 26) as u8) as char);
        }
        extra.push_str("\r\n");
        n += 1;
    }
    let s = http_req("GET", "/admin", &extra);
    debug_assert!(s.len() >= total);
    s
}

pub(super) fn http1_leading_empty_lines(cap: &mut Capture) {
    let req = format!("\r\n\r\n{}", http_req("GET", "/admin", ""));
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_bare_lf(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "").replace("\r\n", "\n");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_70_headers(cap: &mut Capture) {
    let mut extra = String::new();
    for i in 0..67 {
        let _ = write!(
            extra,
            "X-Trace-{i:02}: {:08x}\r\n",
            (i * 2_654_435_761u64) & 0xffff_ffff
        );
    }
    // 67 + Host, User-Agent, Accept = 70 fields.
    let req = http_req("GET", "/admin", &extra);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_head_24k(cap: &mut Capture) {
    let req = padded_admin(24 * 1024, 8 * 1024);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_head_900k(cap: &mut Capture) {
    let req = padded_admin(900 * 1024, 16 * 1024);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_head_over_limit(cap: &mut Capture) {
    let req = padded_admin((1 << 20) + 12 * 1024, 16 * 1024);
    let resp = http_resp(
        431,
        "Request Header Fields Too Large",
        "too large\n",
        "Connection: close\r\n",
    );
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

pub(super) fn http1_unlisted_method(cap: &mut Capture) {
    let req = http_req("PROPFIND", "/admin", "Depth: 1\r\nContent-Length: 0\r\n");
    let body = "<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\"/>\n";
    let resp = http_resp(207, "Multi-Status", body, "");
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

pub(super) fn http1_double_space(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "").replacen("GET /admin", "GET  /admin", 1);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_tab(cap: &mut Capture) {
    let req = http_req("GET", "/admin", "").replacen("GET /admin", "GET\t/admin", 1);
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_pipeline_100(cap: &mut Capture) {
    let mut req = String::new();
    let mut resp = String::new();
    for i in 0..100 {
        req.push_str(&http_req("GET", &format!("/static/{i}.css"), ""));
        resp.push_str(&ok(&format!("body{{--n:{i}}}\n")));
    }
    req.push_str(&http_req("GET", "/admin", ""));
    resp.push_str(&ok("admin\n"));
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

pub(super) fn http1_percent_encoded(cap: &mut Capture) {
    let req = http_req("GET", "/%61dmin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_dot_segments(cap: &mut Capture) {
    let req = http_req("GET", "/x/../admin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_double_slash(cap: &mut Capture) {
    let req = http_req("GET", "//admin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

pub(super) fn http1_absolute_uri(cap: &mut Capture) {
    let req = http_req("GET", "http://web.test/admin", "");
    http1_session(cap, req.as_bytes(), ok("admin\n").as_bytes());
}

/// The server routes on an absolute-form target's authority (RFC 9112 3.2.2), whatever
/// `Host` says: `Host: web.test` must not launder a request to internal.test.
pub(super) fn http1_absolute_host_mismatch(cap: &mut Capture) {
    let req = http_req("GET", "http://internal.test/", "");
    http1_session(cap, req.as_bytes(), ok("internal\n").as_bytes());
}

/// A forward proxy connects to CONNECT's target, whatever `Host` says.
pub(super) fn http1_connect_host_mismatch(cap: &mut Capture) {
    let req = http_req("CONNECT", "internal.test:80", "");
    let resp = "HTTP/1.1 200 Connection established\r\n\r\n";
    let inner = "GET / HTTP/1.1\r\nHost: internal.test\r\n\r\n";
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(cap, req.as_bytes(), resp.as_bytes());
    c.exchange(cap, inner.as_bytes(), ok("internal\n").as_bytes());
    c.close(cap);
}

pub(super) fn http1_cl_te(cap: &mut Capture) {
    let smuggled = http_req("GET", "/admin", "");
    let body = format!("0\r\n\r\n{smuggled}");
    let req = http_req(
        "POST",
        "/upload",
        &format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        ),
    ) + &body;
    // The server reads Transfer-Encoding (RFC 9112 section 6.3): an empty upload, then the
    // smuggled request.
    let resp = format!("{}{}", http_resp(201, "Created", "", ""), ok("admin\n"));
    http1_session(cap, req.as_bytes(), resp.as_bytes());
}

pub(super) fn http1_conflicting_cl(cap: &mut Capture) {
    let smuggled = http_req("GET", "/admin", "");
    let req = http_req(
        "POST",
        "/upload",
        &format!(
            "Content-Type: text/plain\r\nContent-Length: 0\r\nContent-Length: {}\r\n",
            smuggled.len()
        ),
    ) + &smuggled;
    // A strict server refuses and closes first; a lenient one (first length wins) would
    // have served the smuggled request.
    let resp = http_resp(400, "Bad Request", "bad request\n", "Connection: close\r\n");
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.send(cap, Side::Client, req.as_bytes());
    c.send(cap, Side::Server, resp.as_bytes());
    c.seg(cap, Side::Server, FIN, &[]);
    c.ack(cap, Side::Client);
    c.seg(cap, Side::Client, FIN, &[]);
    c.ack(cap, Side::Server);
}

pub(super) fn baseline_http1(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(
        cap,
        http_req("GET", "/index.html", "").as_bytes(),
        ok("hello\n").as_bytes(),
    );
    c.exchange(
        cap,
        http_req("GET", "/admin", "").as_bytes(),
        ok("admin\n").as_bytes(),
    );
    c.close(cap);
}

pub(super) fn baseline_http1_delete(cap: &mut Capture) {
    let mut c = cap.conn((WEB, 80));
    c.handshake(cap);
    c.exchange(
        cap,
        http_req("GET", "/api/items/7", "").as_bytes(),
        ok("{\"id\":7}\n").as_bytes(),
    );
    c.exchange(
        cap,
        http_req("DELETE", "/api/items/7", "").as_bytes(),
        http_resp(204, "No Content", "", "").as_bytes(),
    );
    c.close(cap);
}
