//! Vectors are the first bytes real clients and servers send, written out from the
//! protocol specifications and the clients' documented behaviour (curl, psql, redis-cli,
//! dig, MariaDB 10.11, MySQL 8.0, OpenSSL 3 TLS 1.3 hellos).

use super::*;
use Direction::{ToClient, ToServer};
use Transport::{Tcp, Udp};

fn with_len_be32(body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// psql 16's StartupMessage for `psql -U postgres postgres`.
fn psql_startup() -> Vec<u8> {
    let mut body = vec![0x00, 0x03, 0x00, 0x00];
    body.extend_from_slice(
        b"user\0postgres\0database\0postgres\0application_name\0psql\0client_encoding\0UTF8\0\0",
    );
    with_len_be32(&body)
}

fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

/// MariaDB 10.11's protocol-10 greeting (with the `5.5.5-` prefix it keeps for old clients).
fn mariadb_greeting() -> Vec<u8> {
    let mut p = vec![0x0a];
    p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    p.extend_from_slice(&[0x1f, 0, 0, 0]);
    p.extend_from_slice(b"K'Dv6M:E\0");
    p.extend_from_slice(&[0xfe, 0xf7, 0x2d, 0x02, 0x00, 0xff, 0x81, 0x15]);
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x1d, 0, 0, 0]);
    p.extend_from_slice(b"Z/7%Dk-S:r:u\0mysql_native_password\0");
    mysql_packet(0, &p)
}

/// MySQL 8.0's greeting: 74 bytes of payload, so its first byte is `J`.
fn mysql8_greeting() -> Vec<u8> {
    let mut p = vec![0x0a];
    p.extend_from_slice(b"8.0.36\0");
    p.extend_from_slice(&[0x08, 0, 0, 0]);
    p.extend_from_slice(b"\x1bF\x0cp_T\x05{\0");
    p.extend_from_slice(&[0xff, 0xff, 0xff, 0x02, 0x00, 0xff, 0xdf, 0x15]);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"\x15Wb7%\x1a\x19~a\x02x\x18\0caching_sha2_password\0");
    let v = mysql_packet(0, &p);
    assert_eq!(v[0], b'J');
    v
}

/// `dig +tcp example.com`: A query with RD and AD, an OPT record with a client cookie.
fn dig_query() -> Vec<u8> {
    let mut m = vec![0x9a, 0x3c, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[
        0, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0, 0x0c, 0x00, 0x0a, 0x00, 0x08,
    ]);
    m.extend_from_slice(&[0x5e, 0x1f, 0x42, 0x07, 0x9c, 0xa4, 0x30, 0x11]);
    m
}

fn with_len_be16(m: &[u8]) -> Vec<u8> {
    let mut v = (m.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(m);
    v
}

/// The answer to [`dig_query`]: one A record, compressed name pointer, OPT.
fn dns_response() -> Vec<u8> {
    let mut m = vec![0x9a, 0x3c, 0x81, 0xa0, 0, 1, 0, 1, 0, 0, 0, 1];
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[
        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 215, 14,
    ]);
    m.extend_from_slice(&[0, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    m
}

/// [`dig_query`] with its two flag bytes replaced.
fn dig_query_flags(f1: u8, f2: u8) -> Vec<u8> {
    let mut m = dig_query();
    m[2] = f1;
    m[3] = f2;
    m
}

/// `dig +subnet=10.99.0.0/24 +nsid +expire +padding=468 +ednsopt=65001:c0ffee`: an OPT
/// record with a cookie, client subnet, NSID, EXPIRE, an unknown option and padding up to
/// 468 bytes, a 16 KiB UDP size and the DO bit.
fn dig_query_many_options() -> Vec<u8> {
    let mut m = vec![0x51, 0x0e, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    let mut opts = Vec::new();
    opts.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]); // COOKIE
    opts.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 10, 99, 0]); // ECS 10.99.0.0/24
    opts.extend_from_slice(&[0, 3, 0, 0, 0, 9, 0, 0]); // NSID, EXPIRE
    opts.extend_from_slice(&[0xfd, 0xe9, 0, 3, 0xc0, 0xff, 0xee]);
    let pad = 468 - (m.len() + 11 + opts.len() + 4);
    opts.extend_from_slice(&[0, 12]);
    opts.extend_from_slice(&(pad as u16).to_be_bytes());
    opts.extend(std::iter::repeat_n(0u8, pad));
    m.extend_from_slice(&[0, 0, 41, 0x40, 0x00, 0, 0, 0x80, 0]);
    m.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    m.extend_from_slice(&opts);
    assert_eq!(m.len(), 468);
    m
}

/// `nsupdate`: zone `x`, delete `old.x A` (class ANY, empty RDATA), add `new.x A`.
fn nsupdate_message() -> Vec<u8> {
    let mut m = vec![0x41, 0x8c, 0x28, 0x00, 0, 1, 0, 0, 0, 2, 0, 0];
    m.extend_from_slice(b"\x01x\x00\x00\x06\x00\x01");
    m.extend_from_slice(b"\x03old\xc0\x0c\x00\x01\x00\xff\0\0\0\0\0\0");
    m.extend_from_slice(b"\x03new\xc0\x0c\x00\x01\x00\x01\0\0\0\x3c\0\x04\x0a\x63\x08\x1e");
    m
}

/// A query whose name is a compression pointer forward, to a name in an EDNS option's
/// data (what `tests/data/dns/craft.py fwdptr` sends; dnsmasq answers it).
fn forward_pointer_query() -> Vec<u8> {
    let mut m = vec![
        0x46, 0x57, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 0xc0, 33, 0, 1, 0, 1,
    ];
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 13, 0xfd, 0xe9, 0, 9]);
    m.extend_from_slice(b"\x03fwd\x01b\x01x\x00");
    assert_eq!(&m[33..34], b"\x03");
    m
}

/// The first 100 bytes of an OpenSSL 3 TLS 1.3 ClientHello (record 0x0301, 512 bytes).
fn tls13_client_hello() -> Vec<u8> {
    let mut v = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    v.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    v.push(0x20);
    v.extend((0..32u8).map(|i| i.wrapping_mul(91)));
    v.extend_from_slice(&[
        0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30,
    ]);
    v.extend_from_slice(&[
        0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b, 0xc0, 0x2f,
    ]);
    v
}

/// A whole TLS 1.3 ServerHello record (122 bytes): suite 0x1302, supported_versions 1.3,
/// an x25519 key share.
fn tls13_server_hello() -> Vec<u8> {
    let mut v = vec![
        0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03,
    ];
    v.extend((0..32u8).map(|i| i.wrapping_mul(53)));
    v.push(0x20);
    v.extend((0..32u8).map(|i| i.wrapping_mul(91)));
    v.extend_from_slice(&[
        0x13, 0x02, 0x00, 0x00, 0x2e, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
    ]);
    v.extend_from_slice(&[0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
    v.extend((0..32u8).map(|i| i.wrapping_mul(13)));
    assert_eq!(v.len(), 5 + 0x7a);
    v
}

/// `curl --http2-prior-knowledge`: the preface, then its SETTINGS frame.
fn h2_prior_knowledge() -> Vec<u8> {
    let mut v = H2_PREFACE.to_vec();
    v.extend_from_slice(&[0, 0, 0x12, 0x04, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 3, 0, 0, 0, 100, 0, 4, 0, 0xa0, 0, 0, 0, 2, 0, 0, 0, 0]);
    v
}

/// nghttpd's first frame: SETTINGS with max concurrent streams and initial window size.
fn h2_server_settings_frame() -> Vec<u8> {
    vec![
        0, 0, 0x0c, 0x04, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff,
    ]
}

/// Every positive vector: transport, direction, bytes, expected protocol.
fn vectors() -> Vec<(&'static str, Transport, Direction, Vec<u8>, AppProto)> {
    use AppProto::{Dns, Http, Http2, Mysql, Postgres, Redis, Tls};
    let s = |b: &[u8]| b.to_vec();
    vec![
        // redis-server splits inline commands as a shell would: blanks before the verb,
        // and a verb in quotes with escapes, are commands to it.
        ("redis_inline_escaped_verb", Tcp, ToServer, s(b"\"\\x46LUSHALL\"\r\n"), Redis),
        ("redis_inline_single_quoted", Tcp, ToServer, s(b"'flushall'\r\n"), Redis),
        ("redis_inline_leading_blanks", Tcp, ToServer, s(b"  \tFLUSHALL\r\n"), Redis),
        ("redis_inline_quoted_then_arg", Tcp, ToServer, s(b"\"get\" key\r\n"), Redis),
        // HTTP servers refuse a request line that starts with a blank (nginx and Go answer
        // 400); to redis-server it is an inline GET.
        ("space_before_method", Tcp, ToServer, s(b" GET /admin HTTP/1.1\r\n"), Redis),
        ("crlf_then_space", Tcp, ToServer, s(b"\r\n GET /admin HTTP/1.1\r\n"), Redis),
        (
            "curl_get",
            Tcp,
            ToServer,
            s(b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
            Http,
        ),
        (
            "post_json",
            Tcp,
            ToServer,
            s(b"POST /api/orders HTTP/1.1\r\nHost: orders.shop\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
            Http,
        ),
        ("put", Tcp, ToServer, s(b"PUT /api/orders/7 HTTP/1.1\r\n"), Http),
        ("delete", Tcp, ToServer, s(b"DELETE /api/orders/7 HTTP/1.1\r\n"), Http),
        ("head", Tcp, ToServer, s(b"HEAD / HTTP/1.0\r\n\r\n"), Http),
        ("options", Tcp, ToServer, s(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), Http),
        ("patch", Tcp, ToServer, s(b"PATCH /a HTTP/1.1\r\n"), Http),
        ("connect", Tcp, ToServer, s(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), Http),
        ("trace", Tcp, ToServer, s(b"TRACE / HTTP/1.1\r\n"), Http),
        ("proxy_get", Tcp, ToServer, s(b"GET http://example.com/ HTTP/1.1\r\n"), Http),
        // What lenient servers serve: each must be HTTP, never unknown or Redis.
        ("crlf_before_get", Tcp, ToServer, s(b"\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"), Http),
        ("lf_before_get", Tcp, ToServer, s(b"\n\n\nGET /admin HTTP/1.1\r\n"), Http),
        ("cr_before_get", Tcp, ToServer, s(b"\r\r\nGET /admin HTTP/1.1\r\n"), Http),
        ("crlf_before_post", Tcp, ToServer, s(b"\r\nPOST /admin HTTP/1.1\r\n"), Http),
        ("two_spaces", Tcp, ToServer, s(b"GET  /admin HTTP/1.1\r\n"), Http),
        ("tab_delimiters", Tcp, ToServer, s(b"GET\t/admin\tHTTP/1.1\r\n"), Http),
        ("spaces_everywhere", Tcp, ToServer, s(b"GET \t /admin \t HTTP/1.1\r\n"), Http),
        ("propfind", Tcp, ToServer, s(b"PROPFIND /admin HTTP/1.1\r\nDepth: 1\r\n"), Http),
        ("unlisted_method", Tcp, ToServer, s(b"FOO /admin HTTP/1.1\r\n"), Http),
        ("digit_method", Tcp, ToServer, s(b"1GET /admin HTTP/1.1\r\n"), Http),
        ("star_method", Tcp, ToServer, s(b"*GET /admin HTTP/1.1\r\n"), Http),
        ("lowercase_get", Tcp, ToServer, s(b"get /admin HTTP/1.1\r\n"), Http),
        ("lowercase_post", Tcp, ToServer, s(b"post /x HTTP/1.1\r\n"), Http),
        ("mixed_case_get", Tcp, ToServer, s(b"Get /admin HTTP/1.1\r\n"), Http),
        ("redis_verb_with_http_version", Tcp, ToServer, s(b"DEL /tmp HTTP/1.1\r\n"), Http),
        ("lowercase_get_absolute", Tcp, ToServer, s(b"get http://a/admin HTTP/1.1\r\n"), Http),
        ("get_scheme_relative", Tcp, ToServer, s(b"GET a:/admin HTTP/1.1\r\n"), Http),
        ("get_absolute_upper", Tcp, ToServer, s(b"GET HTTP://a/admin HTTP/1.1\r\n"), Http),
        ("unlisted_absolute", Tcp, ToServer, s(b"FOO https://a/admin HTTP/1.1\r\n"), Http),
        ("options_star_spaces", Tcp, ToServer, s(b"OPTIONS  *  HTTP/1.1\r\n"), Http),
        ("m_search_star", Tcp, ToServer, s(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"), Http),
        ("connect_tab", Tcp, ToServer, s(b"CONNECT\texample.com:443 HTTP/1.1\r\n"), Http),
        ("unlisted_authority", Tcp, ToServer, s(b"FOO example.com:443 HTTP/1.1\r\n"), Http),
        ("pri_http11", Tcp, ToServer, s(b"PRI * HTTP/1.1\r\n\r\n"), Http),
        ("http_1_2", Tcp, ToServer, s(b"get /admin HTTP/1.2\r\n"), Http),
        ("h2_prior_knowledge", Tcp, ToServer, h2_prior_knowledge(), Http2),
        ("tls13_client_hello", Tcp, ToServer, tls13_client_hello(), Tls),
        ("psql_startup", Tcp, ToServer, psql_startup(), Postgres),
        ("pg_ssl_request", Tcp, ToServer, s(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), Postgres),
        ("pg_gssenc_request", Tcp, ToServer, s(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]), Postgres),
        (
            "pg_cancel_request",
            Tcp,
            ToServer,
            s(&[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x1f, 0x90, 0x12, 0x34, 0x56, 0x78]),
            Postgres,
        ),
        ("redis_cli_ping", Tcp, ToServer, s(b"*1\r\n$4\r\nPING\r\n"), Redis),
        ("redis_cli_set", Tcp, ToServer, s(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"), Redis),
        ("redis_inline_ping", Tcp, ToServer, s(b"PING\r\n"), Redis),
        ("redis_inline_lower", Tcp, ToServer, s(b"ping\r\n"), Redis),
        ("redis_inline_get", Tcp, ToServer, s(b"GET key\r\n"), Redis),
        ("redis_inline_get_h", Tcp, ToServer, s(b"GET hello\r\n"), Redis),
        ("redis_inline_get_slash_lower", Tcp, ToServer, s(b"get /not/http\r\n"), Redis),
        ("redis_inline_config", Tcp, ToServer, s(b"config get maxmemory\r\n"), Redis),
        ("redis_inline_flushall", Tcp, ToServer, s(b"FLUSHALL\r\n"), Redis),
        ("redis_inline_setex_lf", Tcp, ToServer, s(b"SETEX k 10 v\n"), Redis),
        // A first argument that looks like a path: decided by the rest of the line.
        ("redis_inline_del_path", Tcp, ToServer, s(b"DEL /tmp\r\n"), Redis),
        ("redis_inline_set_path", Tcp, ToServer, s(b"SET /k v\r\n"), Redis),
        ("redis_inline_get_path_lower", Tcp, ToServer, s(b"get /x\n"), Redis),
        ("redis_inline_keys_star", Tcp, ToServer, s(b"KEYS *\r\n"), Redis),
        ("redis_inline_get_url_lower", Tcp, ToServer, s(b"get http://a/\r\n"), Redis),
        ("redis_inline_after_empty_line", Tcp, ToServer, s(b"\r\nPING\r\n"), Redis),
        ("redis_resp_after_empty_line", Tcp, ToServer, s(b"\r\n*1\r\n$4\r\nPING\r\n"), Redis),
        ("dns_tcp_query", Tcp, ToServer, with_len_be16(&dig_query()), Dns),
        // Header bits dig sets on request (`+zflag`, `+cdflag`, `+noadflag +aaflag`), and
        // all of them at once.
        ("dns_udp_zflag", Udp, ToServer, dig_query_flags(0x01, 0x60), Dns),
        ("dns_udp_cdflag", Udp, ToServer, dig_query_flags(0x01, 0x30), Dns),
        ("dns_udp_aaflag", Udp, ToServer, dig_query_flags(0x05, 0x00), Dns),
        ("dns_udp_all_flags", Udp, ToServer, dig_query_flags(0x07, 0xf0), Dns),
        ("dns_tcp_zflag", Tcp, ToServer, with_len_be16(&dig_query_flags(0x01, 0x70)), Dns),
        ("dns_udp_edns_options", Udp, ToServer, dig_query_many_options(), Dns),
        ("dns_tcp_edns_options", Tcp, ToServer, with_len_be16(&dig_query_many_options()), Dns),
        ("dns_udp_update", Udp, ToServer, nsupdate_message(), Dns),
        ("dns_tcp_update", Tcp, ToServer, with_len_be16(&nsupdate_message()), Dns),
        ("dns_udp_notify", Udp, ToServer, {
            let mut m = dig_query_flags(0x24, 0x00);
            m[30] = 6; // SOA
            m
        }, Dns),
        ("dns_udp_forward_pointer", Udp, ToServer, forward_pointer_query(), Dns),
        // Responses: rcodes past 5 (NOTAUTH; BADCOOKIE's low bits), truncated, Z set.
        ("dns_udp_response_notauth", Udp, ToClient, {
            let mut m = dns_response();
            m[2] = 0xa8;
            m[3] = 0x09;
            m
        }, Dns),
        ("dns_udp_response_badcookie", Udp, ToClient, {
            let mut m = dns_response();
            m[3] = 0x07;
            let n = m.len();
            m[n - 6] = 1; // extended rcode 1: 16 + 7 = 23
            m
        }, Dns),
        ("dns_udp_response_tc_z", Udp, ToClient, {
            let mut m = dns_response();
            m[2] = 0x83;
            m[3] = 0xc0;
            m
        }, Dns),
        ("dns_udp_query", Udp, ToServer, dig_query(), Dns),
        ("dns_udp_response", Udp, ToClient, dns_response(), Dns),
        // A flow picked up at its response: the first datagram seen is the answer.
        ("dns_udp_response_first", Udp, ToServer, dns_response(), Dns),
        ("mariadb_greeting", Tcp, ToClient, mariadb_greeting(), Mysql),
        ("mysql8_greeting", Tcp, ToClient, mysql8_greeting(), Mysql),
        ("http_response", Tcp, ToClient, s(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"), Http),
        ("http10_404", Tcp, ToClient, s(b"HTTP/1.0 404 Not Found\r\n\r\n"), Http),
        ("h2_server_settings", Tcp, ToClient, h2_server_settings_frame(), Http2),
        ("tls13_server_hello", Tcp, ToClient, tls13_server_hello(), Tls),
        ("redis_pong", Tcp, ToClient, s(b"+PONG\r\n"), Redis),
        ("redis_ok", Tcp, ToClient, s(b"+OK\r\n"), Redis),
        (
            "redis_err",
            Tcp,
            ToClient,
            s(b"-ERR unknown command 'FOO', with args beginning with: \r\n"),
            Redis,
        ),
        ("redis_noauth", Tcp, ToClient, s(b"-NOAUTH Authentication required.\r\n"), Redis),
        ("redis_int", Tcp, ToClient, s(b":1\r\n"), Redis),
        ("redis_neg_int", Tcp, ToClient, s(b":-5\r\n"), Redis),
        ("redis_bulk", Tcp, ToClient, s(b"$5\r\nhello\r\n"), Redis),
        ("redis_null_bulk", Tcp, ToClient, s(b"$-1\r\n"), Redis),
        ("redis_array", Tcp, ToClient, s(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"), Redis),
        ("redis_empty_array", Tcp, ToClient, s(b"*0\r\n"), Redis),
        ("redis_null_array", Tcp, ToClient, s(b"*-1\r\n"), Redis),
        ("redis_hello3_map", Tcp, ToClient, s(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), Redis),
        ("pg_auth_ok", Tcp, ToClient, s(b"R\0\0\0\x08\0\0\0\0"), Postgres),
        ("pg_auth_md5", Tcp, ToClient, s(b"R\0\0\0\x0c\0\0\0\x05\x9a\x1b\x33\x07"), Postgres),
        ("pg_auth_sasl", Tcp, ToClient, s(b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"), Postgres),
    ]
}

/// Bytes no detector should claim, with the transport and direction they are fed in.
fn negatives() -> Vec<(&'static str, Transport, Direction, Vec<u8>)> {
    let s = |b: &[u8]| b.to_vec();
    let mut pg2 = psql_startup();
    pg2[5] = 0x02; // protocol 2.0
    let mut dns_status = dig_query();
    dns_status[2] = 0x10; // opcode STATUS
    let mut dns_no_question = dig_query();
    dns_no_question[5] = 0;
    let mut tls_bad_version = tls13_client_hello();
    tls_bad_version[2] = 0x05;
    let mut dns_ptr_qname = dig_query();
    dns_ptr_qname[12] = 0xc0;
    let mut dns_iquery = dig_query();
    dns_iquery[2] = 0x08;
    let mut dns_two_questions = dig_query();
    dns_two_questions[5] = 2;
    let mut dns_counts_past_the_end = dig_query();
    dns_counts_past_the_end[7] = 3; // three answers in a 52-byte query: they cannot fit
    let mut dns_pointer_loop = dig_query();
    dns_pointer_loop[12] = 0xc0;
    dns_pointer_loop[13] = 12;
    let mut dns_qtype_0 = dig_query();
    dns_qtype_0[26] = 0;
    vec![
        ("quoted_non_verb", Tcp, ToServer, s(b"\"xyzzy\" world\r\n")),
        ("quoted_verb_glued", Tcp, ToServer, s(b"\"GET\"x\r\n")),
        (
            "ssh_client",
            Tcp,
            ToServer,
            s(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"),
        ),
        (
            "ssh_server",
            Tcp,
            ToClient,
            s(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"),
        ),
        (
            "smtp_banner",
            Tcp,
            ToClient,
            s(b"220 mail.example.com ESMTP Postfix\r\n"),
        ),
        (
            "smtp_ehlo",
            Tcp,
            ToServer,
            s(b"EHLO client.example.com\r\n"),
        ),
        ("smtp_helo", Tcp, ToServer, s(b"HELO x\r\n")),
        ("get_tab", Tcp, ToServer, s(b"GET\tfoo\r\n")),
        ("token_then_word", Tcp, ToServer, s(b"FOO bar baz\r\n")),
        (
            "long_method",
            Tcp,
            ToServer,
            [vec![b'A'; MAX_METHOD + 1], b" /admin HTTP/1.1\r\n".to_vec()].concat(),
        ),
        ("rtsp_options", Tcp, ToServer, s(b"OPTIONS_ * RTSP/1.0\r\n")),
        (
            "sip_invite",
            Tcp,
            ToServer,
            s(b"INVITE sip:bob@example.com SIP/2.0\r\n"),
        ),
        ("redis_resp_after_crlf_bad", Tcp, ToServer, s(b"\r\n*x\r\n")),
        ("pg_protocol_2", Tcp, ToServer, pg2),
        ("dns_status", Tcp, ToServer, with_len_be16(&dns_status)),
        ("dns_no_question_udp", Udp, ToServer, dns_no_question),
        ("dns_compressed_qname", Udp, ToServer, dns_ptr_qname),
        ("dns_iquery", Udp, ToServer, dns_iquery),
        ("dns_two_questions", Udp, ToServer, dns_two_questions),
        (
            "dns_counts_past_the_end",
            Udp,
            ToServer,
            dns_counts_past_the_end,
        ),
        ("dns_pointer_loop", Udp, ToServer, dns_pointer_loop),
        ("dns_qtype_0", Udp, ToServer, dns_qtype_0),
        // What craft.py sends before a query in dns-junk.pcap: text shorter than a header,
        // an HTTP request line (opcode 10), 0xdeadbeef (a "response" whose counts cannot
        // fit).
        ("junk_text", Udp, ToServer, s(b"hello\n")),
        ("junk_http10", Udp, ToServer, s(b"GET / HTTP/1.0\r\n\r\n")),
        (
            "junk_deadbeef",
            Udp,
            ToServer,
            b"\xde\xad\xbe\xef".repeat(5),
        ),
        (
            "dns_response_over_tcp_to_server",
            Tcp,
            ToServer,
            with_len_be16(&dns_response()),
        ),
        ("tls_version_3_5", Tcp, ToServer, tls_bad_version),
        (
            "client_hello_from_server",
            Tcp,
            ToClient,
            tls13_client_hello(),
        ),
        (
            "server_hello_from_client",
            Tcp,
            ToServer,
            tls13_server_hello(),
        ),
        ("http_to_udp", Udp, ToServer, s(b"GET / HTTP/1.1\r\n\r\n")),
        ("short_udp", Udp, ToServer, s(b"\x12\x34\x01\x00\x00\x01")),
        ("greeting_protocol_9", Tcp, ToClient, {
            let mut g = mariadb_greeting();
            g[4] = 9;
            g
        }),
        ("redis_lowercase_error", Tcp, ToClient, s(b"-err nope\r\n")),
        ("redis_simple_bad_cr", Tcp, ToClient, s(b"+OK\rX")),
        (
            "pg_auth_bad_len",
            Tcp,
            ToClient,
            s(b"R\0\0\0\x09\0\0\0\0\0"),
        ),
        ("http_2_0_status", Tcp, ToClient, s(b"HTTP/2.0 200 OK\r\n")),
        ("empty_udp", Udp, ToServer, Vec::new()),
    ]
}

/// The answers for every prefix of `b`, shortest first (including the empty prefix).
fn prefix_answers(t: Transport, d: Direction, b: &[u8]) -> Vec<Detection> {
    (0..=b.len()).map(|n| detect(t, d, &b[..n])).collect()
}

/// Monotonicity: once a prefix is decided (`Proto` or `Unknown`), every longer prefix gets
/// the same answer. Returns a description of the first violation.
fn check_monotone(t: Transport, d: Direction, b: &[u8]) -> Result<(), String> {
    let answers = prefix_answers(t, d, b);
    let mut decided: Option<(usize, Detection)> = None;
    for (n, a) in answers.iter().enumerate() {
        if t == Udp && *a == Detection::NeedMore {
            return Err(format!("UDP answered NeedMore at {n}"));
        }
        match decided {
            Some((at, first)) if t == Tcp && *a != first => {
                return Err(format!(
                    "prefix {at} gave {first:?}, prefix {n} gave {a:?} for {b:02x?}"
                ));
            }
            None if *a != Detection::NeedMore && t == Tcp => decided = Some((n, *a)),
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn every_vector_is_detected() {
    for (name, t, d, bytes, want) in vectors() {
        assert_eq!(detect(t, d, &bytes), Detection::Proto(want), "{name}");
    }
}

#[test]
fn every_prefix_is_need_more_or_the_same_answer() {
    for (name, t, d, bytes, want) in vectors() {
        for (n, a) in prefix_answers(t, d, &bytes).into_iter().enumerate() {
            let ok = match t {
                Tcp => a == Detection::NeedMore || a == Detection::Proto(want),
                // Datagrams are whole: a cut one is not a promise of more.
                Udp => a == Detection::Unknown || a == Detection::Proto(want),
            };
            assert!(ok, "{name}: prefix of {n} bytes gave {a:?}, want {want:?}");
        }
        check_monotone(t, d, &bytes).unwrap();
    }
}

#[test]
fn tcp_prefixes_stay_need_more_until_decided() {
    // A few exact expectations, so that "NeedMore everywhere" cannot pass the prefix test.
    assert_eq!(detect(Tcp, ToServer, b""), Detection::NeedMore);
    assert_eq!(detect(Tcp, ToServer, b"GE"), Detection::NeedMore);
    assert_eq!(detect(Tcp, ToServer, b"GET "), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, b"GET /"),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(detect(Tcp, ToServer, b"GET ht"), Detection::NeedMore);
    // `GET hx` may still be `GET hx:/admin HTTP/1.1`: the line decides.
    assert_eq!(detect(Tcp, ToServer, b"GET hx"), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, b"GET hx\r"),
        Detection::Proto(AppProto::Redis)
    );
    assert_eq!(detect(Tcp, ToServer, b"\r\n\r\n"), Detection::NeedMore);
    assert_eq!(detect(Tcp, ToServer, b"\n\nG"), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, b"\r\n\r\nGET /"),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(detect(Tcp, ToServer, b"GET  \t "), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, b"GET  \t /"),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(
        detect(Tcp, ToServer, b"PROPFIND /"),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(
        detect(Tcp, ToServer, b"POST\t"),
        Detection::Proto(AppProto::Http)
    );
    // A Redis verb with a path waits for the line: an inline `DEL /tmp` or HTTP.
    assert_eq!(detect(Tcp, ToServer, b"DEL /tmp"), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, b"DEL /tmp HTTP/1"),
        Detection::NeedMore
    );
    assert_eq!(
        detect(Tcp, ToServer, b"DEL /tmp HTTP/1."),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(
        detect(Tcp, ToServer, b"DEL /tmp\r"),
        Detection::Proto(AppProto::Redis)
    );
    assert_eq!(detect(Tcp, ToServer, b"get /admin"), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, b"get /admin HTTP/1."),
        Detection::Proto(AppProto::Http)
    );
    let method = vec![b'X'; MAX_METHOD];
    assert_eq!(detect(Tcp, ToServer, &method), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, &[&method[..], b" /"].concat()),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(
        detect(Tcp, ToServer, &[&method[..], b"X"].concat()),
        Detection::Unknown
    );
    assert_eq!(
        detect(Tcp, ToServer, b"POST "),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(
        detect(Tcp, ToServer, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r"),
        Detection::NeedMore
    );
    // `PRI` is a token like any other: only the preface itself is HTTP/2.
    assert_eq!(
        detect(Tcp, ToServer, b"PRI * HTTP/1.1"),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(detect(Tcp, ToServer, b"PRI * HTTP/1"), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToServer, &[0, 0, 0, 8, 0x04, 0xd2, 0x16]),
        Detection::NeedMore
    );
    assert_eq!(
        detect(Tcp, ToServer, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
        Detection::NeedMore
    );
    assert_eq!(detect(Tcp, ToClient, b"HTTP/1."), Detection::NeedMore);
    assert_eq!(
        detect(Tcp, ToClient, b"HTTP/1.1"),
        Detection::Proto(AppProto::Http)
    );
    assert_eq!(detect(Tcp, ToClient, b"+PONG\r"), Detection::NeedMore);
}

#[test]
fn vectors_with_anything_after_them_keep_their_answer() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for (name, t, d, bytes, want) in vectors() {
        for _ in 0..50 {
            let mut v = bytes.clone();
            let extra = (rng.next() % 64) as usize;
            v.extend((0..extra).map(|_| rng.next() as u8));
            assert_eq!(
                detect(t, d, &v),
                Detection::Proto(want),
                "{name} + {extra} bytes"
            );
        }
    }
}

#[test]
fn negatives_are_unknown() {
    for (name, t, d, bytes) in negatives() {
        assert_eq!(detect(t, d, &bytes), Detection::Unknown, "{name}");
        check_monotone(t, d, &bytes).unwrap();
    }
}

#[test]
fn dns_over_tcp_decides_after_its_lookahead_on_long_names() {
    // A query whose first label is 63 bytes: decided before the name ends.
    let mut m = vec![0x00, 0x01, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..3 {
        m.push(63);
        m.extend_from_slice(&[b'a'; 63]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let v = with_len_be16(&m);
    assert_eq!(
        detect(Tcp, ToServer, &v[..2 + DNS_LOOKAHEAD]),
        Detection::Proto(AppProto::Dns)
    );
    assert_eq!(
        detect(Tcp, ToServer, &v[..2 + DNS_LOOKAHEAD - 1]),
        Detection::NeedMore
    );
    check_monotone(Tcp, ToServer, &v).unwrap();
    // A length prefix too short for the question it claims to carry.
    let mut short = with_len_be16(&dig_query());
    short[1] = 20;
    assert_eq!(detect(Tcp, ToServer, &short), Detection::Unknown);
}

/// A tiny deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const ALL: [(Transport, Direction); 4] = [
    (Tcp, ToServer),
    (Tcp, ToClient),
    (Udp, ToServer),
    (Udp, ToClient),
];

#[test]
fn random_garbage_is_unknown_and_never_breaks_monotonicity() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut unknown = [0usize; 4];
    const N: usize = 5_000;
    for _ in 0..N {
        let len = 64;
        let v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        for (i, (t, d)) in ALL.iter().enumerate() {
            check_monotone(*t, *d, &v).unwrap();
            if detect(*t, *d, &v) == Detection::Unknown {
                unknown[i] += 1;
            }
        }
    }
    for (i, n) in unknown.iter().enumerate() {
        // Random bytes look like a protocol opening essentially never; a handful of
        // accidental matches per thousand would already mean a detector is too loose.
        assert!(
            *n * 1000 >= N * 998,
            "{:?}: only {n} of {N} unknown",
            ALL[i]
        );
    }
}

#[test]
fn random_inputs_seeded_from_vectors_keep_monotonicity() {
    // Mutations of real openings reach deeper into the matchers than uniform noise.
    let mut rng = XorShift(0xdead_beef_cafe_f00d);
    let vs = vectors();
    for _ in 0..4_000 {
        let (_, _, _, base, _) = &vs[(rng.next() % vs.len() as u64) as usize];
        let mut v = base.clone();
        v.truncate(96);
        for _ in 0..1 + rng.next() % 3 {
            if v.is_empty() {
                break;
            }
            let at = (rng.next() % v.len() as u64) as usize;
            v[at] = rng.next() as u8;
        }
        for (t, d) in ALL {
            check_monotone(t, d, &v).unwrap();
        }
    }
}

#[test]
fn request_lines_of_any_shape_keep_monotonicity() {
    // Random openings built from the pieces the HTTP and Redis matchers look at.
    let pieces: [&[u8]; 24] = [
        b"\r",
        b"\n",
        b"\r\n",
        b" ",
        b"\t",
        b"GET",
        b"get",
        b"DEL",
        b"POST",
        b"FOO",
        b"PRI",
        b"*",
        b"/",
        b"/admin",
        b"http://",
        b"HTTP/1.",
        b"HTTP/2.0",
        b"1",
        b"a:",
        b"key",
        b"$4",
        b"\x00",
        b"\x80",
        b"PING",
    ];
    let mut rng = XorShift(0x0bad_cafe_dead_f00d);
    let mut http = 0;
    for _ in 0..20_000 {
        let mut v = Vec::new();
        for _ in 0..1 + rng.next() % 10 {
            v.extend_from_slice(pieces[(rng.next() % pieces.len() as u64) as usize]);
        }
        for (t, d) in ALL {
            check_monotone(t, d, &v).unwrap();
        }
        http += usize::from(detect(Tcp, ToServer, &v) == Detection::Proto(AppProto::Http));
    }
    assert!(http > 100, "{http}");
}

#[test]
fn whitespace_and_empty_lines_never_make_a_request_unknown() {
    // Every combination of empty lines before, delimiters inside and method spelling of a
    // request the servers serve is HTTP.
    for pre in ["", "\r\n", "\n", "\r\n\r\n", "\r", "\n\r\n\r"] {
        for d1 in [" ", "  ", "\t", " \t ", "        "] {
            for d2 in [" ", "   ", "\t"] {
                for method in ["GET", "get", "Get", "POST", "PROPFIND", "FOO", "DEL", "x"] {
                    for target in ["/admin", "http://a/admin", "a:/admin", "*"] {
                        let line = format!("{pre}{method}{d1}{target}{d2}HTTP/1.1\r\n\r\n");
                        assert_eq!(
                            detect(Tcp, ToServer, line.as_bytes()),
                            Detection::Proto(AppProto::Http),
                            "{line:?}"
                        );
                        check_monotone(Tcp, ToServer, line.as_bytes()).unwrap();
                    }
                }
            }
        }
    }
}

/// Writes every vector as a fuzzing seed when `PALISADE_WRITE_SEEDS` names a directory
/// (`PALISADE_WRITE_SEEDS=$PWD/fuzz/seeds/detect cargo test -p proto-parsers write_seeds`).
#[test]
fn write_seeds() {
    let Some(dir) = std::env::var_os("PALISADE_WRITE_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, _, _, bytes, _) in vectors() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    for (name, _, _, bytes) in negatives() {
        std::fs::write(dir.join(format!("neg_{name}")), bytes).unwrap();
    }
}

/// Every message of the recorded dig <-> dnsmasq captures (`tests/data/dns/record.sh`: Z,
/// AD, CD and AA bits, EDNS cookies, client subnets, padding, odd UDP sizes, several
/// options, EDNS version 1, record types of every kind, empty RDATA, an UPDATE, a query
/// with a forward compression pointer) is DNS in the direction it travelled, and in the
/// other (a flow picked up at its answer). The exceptions are what tshark calls malformed
/// too: the junk datagrams sent ahead of a query, and dnsmasq's answers to the forward
/// pointer query, whose question still holds the pointer but no longer what it points to.
#[test]
fn recorded_dns_is_detected() {
    use crate::redis::testkit::segments;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dns/testdata");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (mut udp, mut tcp, mut malformed) = (0, 0, 0);
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let segs = segments(&std::fs::read(&f).unwrap());
        if name.contains("tcp") {
            let (c, _) = crate::redis::testkit::streams(&segs);
            assert_eq!(
                detect(Tcp, ToServer, &c),
                Detection::Proto(AppProto::Dns),
                "{name}"
            );
            check_monotone(Tcp, ToServer, &c).unwrap();
            tcp += 1;
            continue;
        }
        for (i, (d, m)) in segs.iter().enumerate() {
            let junk = name.starts_with("junk") && *d == ToServer && i < 3;
            let unreadable = name.starts_with("fwdptr") && *d == ToClient && m[0] == 0x46;
            let want = if junk || unreadable {
                malformed += 1;
                Detection::Unknown
            } else {
                udp += 1;
                Detection::Proto(AppProto::Dns)
            };
            for dir in [ToServer, ToClient] {
                assert_eq!(detect(Udp, dir, m), want, "{name} datagram {i}");
            }
        }
    }
    assert_eq!((udp, tcp, malformed), (74, 6, 5));
}
