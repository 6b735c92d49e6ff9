//! HTTP/1.1 flows: keep-alive connections, probes and scrapes with their bodies.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::edges::{Act, Edge, Ep, ReqBody, ep};
use super::policy::{INGRESS_HOSTS, host_forms};
use super::script::{AGENTS, BROWSERS, Script, WORDS, chance, fill, hex, json_value, pick, uuid};
use super::workloads::ips_of;
use crate::generate::{Rng, Side};

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "OK",
    }
}

pub(super) fn http_body(rng: &mut Rng, kind: &str, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 64);
    match kind {
        "html" => {
            s.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title></head><body><main>");
            while s.len() + 40 < len {
                let _ = write!(
                    s,
                    "<article class=\"p\"><h2>{}</h2><span>{}</span></article>",
                    WORDS[rng.below(WORDS.len() as u64) as usize],
                    rng.below(10_000)
                );
            }
            s.push_str("</main></body></html>");
        }
        "metrics" => {
            let mut i = 0;
            while s.len() + 80 < len {
                let _ = writeln!(
                    s,
                    "http_requests_total{{code=\"200\",handler=\"/api/v1/h{i}\",method=\"get\"}} {}",
                    rng.below(10_000_000)
                );
                i += 1;
            }
        }
        "static" => {
            while s.len() < len {
                let _ = write!(s, "function f{}(a){{return a*{};}}", s.len(), rng.below(97));
            }
        }
        _ => {
            let _ = write!(s, "{{\"id\":{},\"items\":[", rng.below(1_000_000));
            while s.len() + 48 < len {
                let _ = write!(
                    s,
                    "{{\"sku\":\"SKU-{:05}\",\"qty\":{},\"name\":\"{}\"}},",
                    rng.below(100_000),
                    1 + rng.below(5),
                    WORDS[rng.below(WORDS.len() as u64) as usize]
                );
            }
            s.push_str("{\"end\":true}]}");
        }
    }
    s.into_bytes()
}

pub(super) fn http_request(
    rng: &mut Rng,
    e: &Edge,
    ep: &Ep,
    path: &str,
    close: bool,
    hosts: bool,
) -> Vec<u8> {
    let host = if !hosts {
        let ip = ips_of(e.server)
            .first()
            .copied()
            .unwrap_or(Ipv4Addr::LOCALHOST);
        format!("{ip}:{}", e.port)
    } else if e.server == "frontend" {
        INGRESS_HOSTS[rng.below(2) as usize].to_string()
    } else {
        let forms = host_forms(e.server);
        let h = forms[rng.below(4) as usize].clone();
        if chance(rng, 2) {
            format!("{h}:{}", e.port)
        } else {
            h
        }
    };
    let ua = match e.client {
        "nodes" => "kube-probe/1.31",
        "prometheus" => "Prometheus/2.54.1",
        "ingress" => BROWSERS[rng.below(BROWSERS.len() as u64) as usize],
        _ => AGENTS[(rng.below(AGENTS.len() as u64)) as usize],
    };
    let mut s = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n",
        ep.method
    );
    match e.client {
        "prometheus" => s.push_str(
            "Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n",
        ),
        "nodes" => s.push_str("Accept: */*\r\n"),
        "ingress" => {
            let _ = write!(
                s,
                "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.7\r\n\
                 Accept-Encoding: gzip, br\r\nX-Forwarded-For: 198.51.100.{}\r\nX-Forwarded-Proto: https\r\n\
                 Cookie: sid={}\r\n",
                rng.below(250),
                hex(rng, 24)
            );
        }
        _ => {
            s.push_str("Accept: application/json\r\n");
            if chance(rng, 2) {
                s.push_str("Accept-Encoding: gzip\r\n");
            }
            let _ = write!(
                s,
                "X-Request-Id: {}\r\ntraceparent: 00-{}-{}-01\r\n",
                uuid(rng),
                hex(rng, 32),
                hex(rng, 16)
            );
            if chance(rng, 3) {
                let _ = write!(s, "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.{}\r\n", hex(rng, 48));
            }
        }
    }
    if close {
        s.push_str("Connection: close\r\n");
    }
    let body = match ep.body {
        ReqBody::None => Vec::new(),
        ReqBody::Json => json_value(rng, 40, 600).into_bytes(),
        ReqBody::Form => format!(
            "cart={}&shipping=standard&payment=card&csrf={}",
            uuid(rng),
            hex(rng, 32)
        )
        .into_bytes(),
    };
    match ep.body {
        ReqBody::None => {}
        ReqBody::Json => s.push_str("Content-Type: application/json\r\n"),
        ReqBody::Form => s.push_str("Content-Type: application/x-www-form-urlencoded\r\n"),
    }
    if !body.is_empty() {
        let _ = write!(s, "Content-Length: {}\r\n", body.len());
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(&body);
    out
}

pub(super) fn http_response(rng: &mut Rng, e: &Edge, ep: &Ep, close: bool) -> Vec<u8> {
    let (status, kind, len) = match (e.client, ep.method, ep.path) {
        ("nodes", ..) => (200, "text", 2),
        ("prometheus", ..) => (200, "metrics", 4_000 + rng.below(20_000) as usize),
        (_, "HEAD", _) => (200, "html", 0),
        (_, _, p) if e.server == "frontend" && p.starts_with("/static") => {
            (200, "static", 2_000 + rng.below(40_000) as usize)
        }
        (_, "POST", _) if e.server == "frontend" => (303, "html", 0),
        _ if e.server == "frontend" => (200, "html", 3_000 + rng.below(20_000) as usize),
        (_, "DELETE", _) => (204, "json", 0),
        (_, "POST", _) => (
            if chance(rng, 30) { 409 } else { 201 },
            "json",
            60 + rng.below(400) as usize,
        ),
        (_, "GET", _) => {
            let st = match rng.below(100) {
                0..=6 => 404,
                7 => 500,
                _ => 200,
            };
            let len = if st == 200 {
                if chance(rng, 6) {
                    2_000 + rng.below(6_000) as usize
                } else {
                    80 + rng.below(1_200) as usize
                }
            } else {
                40
            };
            (st, "json", len)
        }
        _ => (200, "json", 60 + rng.below(300) as usize),
    };
    let ctype = match kind {
        "html" => "text/html; charset=utf-8",
        "metrics" => "text/plain; version=0.0.4; charset=utf-8",
        "static" => "application/javascript",
        "text" => "text/plain; charset=utf-8",
        _ => "application/json",
    };
    let body = if kind == "text" {
        b"ok".to_vec()
    } else if len == 0 {
        Vec::new()
    } else {
        http_body(rng, kind, len)
    };
    let reason = if status == 303 {
        "See Other"
    } else {
        reason(status)
    };
    let mut s = format!(
        "HTTP/1.1 {status} {reason}\r\nDate: Sun, 22 Nov 2026 06:{:02}:{:02} GMT\r\nContent-Type: {ctype}\r\n",
        rng.below(60),
        rng.below(60)
    );
    if status == 303 {
        s.push_str("Location: /order/confirmation\r\n");
    }
    if e.server == "frontend" && kind == "static" {
        s.push_str("Cache-Control: public, max-age=31536000, immutable\r\nETag: \"");
        s.push_str(&hex(rng, 16));
        s.push_str("\"\r\n");
    }
    if close {
        s.push_str("Connection: close\r\n");
    }
    let head_only = ep.method == "HEAD";
    let chunked = !head_only && status == 200 && kind == "json" && chance(rng, 8);
    let mut out;
    if chunked {
        s.push_str("Transfer-Encoding: chunked\r\n\r\n");
        out = s.into_bytes();
        let mut rest = &body[..];
        while !rest.is_empty() {
            let n = rest.len().min(256 + rng.below(2_000) as usize);
            out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        if status != 204 && status != 304 {
            let len = if head_only { 5_120 } else { body.len() };
            let _ = write!(s, "Content-Length: {len}\r\n");
        }
        s.push_str("\r\n");
        out = s.into_bytes();
        if !head_only {
            out.extend_from_slice(&body);
        }
    }
    out
}

pub(super) fn http_flow(
    rng: &mut Rng,
    e: &Edge,
    hosts: bool,
    eps: &[Ep],
    violate: bool,
    sc: &mut Script,
) {
    sc.open();
    // Probes and scrapes: one request, `Connection: close`, the server closes.
    let single = matches!(e.client, "nodes" | "prometheus");
    let n = if single {
        1
    } else {
        1 + rng.below(8) + u64::from(chance(rng, 4)) * rng.below(12)
    };
    for i in 0..n {
        let last = i + 1 == n;
        let Some(ep) = pick(rng, eps, |e| e.w) else {
            break;
        };
        let path = fill(ep.path, rng);
        let close = single || (last && chance(rng, 5));
        sc.send(Side::Client, &http_request(rng, e, ep, &path, close, hosts));
        sc.tx += 1;
        if ep.act == Act::Alert {
            sc.alerted += 1;
        }
        sc.send(Side::Server, &http_response(rng, e, ep, close));
        if close {
            sc.close(Side::Server);
            return;
        }
        sc.maybe_delayed_ack(rng);
    }
    if violate {
        let bad = ["/admin/config", "/actuator/env", "/debug/pprof/heap"][rng.below(3) as usize];
        let ep = ep("GET", bad, 1);
        sc.send(Side::Client, &http_request(rng, e, &ep, bad, false, hosts));
        sc.tx += 1;
        sc.denied += 1;
        sc.send(
            Side::Server,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found",
        );
    }
    sc.close(Side::Client);
}
